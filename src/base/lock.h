/* lock.h — the allocator's one lock type: a mutex that fork handlers can take and reset. */
#ifndef HG_LOCK_H
#define HG_LOCK_H

#include <pthread.h>

/* pthread mutexes never allocate and sleep instead of spinning, which matters
 * when threads outnumber the two cores. */
typedef pthread_mutex_t hg_lock_t;
#define HG_LOCK_INIT PTHREAD_MUTEX_INITIALIZER

static inline void hg_lock(hg_lock_t *l) { pthread_mutex_lock(l); }
static inline int hg_trylock(hg_lock_t *l) { return pthread_mutex_trylock(l) == 0; }
static inline void hg_unlock(hg_lock_t *l) { pthread_mutex_unlock(l); }
/* In a fork child the lock may be held by a thread that no longer exists. */
static inline void hg_lock_reset(hg_lock_t *l) { pthread_mutex_init(l, NULL); }

#endif
