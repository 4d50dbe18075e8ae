/* init.c — the one ordered initialization: options, thread-exit key, fork handlers. */
#include <pthread.h>
#include <stdlib.h>

#include "alloc/tcache.h"
#include "api/stats.h"
#include "base/fmt.h"
#include "base/options.h"
#include "os/os.h"
#ifdef HG_CHECK
#include "check/check.h"
#endif

static pthread_once_t once = PTHREAD_ONCE_INIT;

/* Runs inside the first malloc slow path: nothing here may allocate. */
static void init_once(void)
{
	hg_options_parse(hg_os_getenv("HEAPGUARD_OPTIONS"));
	hg_tcache_init();
	hg_stats_on = (int)hg_opt.stats;
	/* Statistics print at exit, after programs like coreutils have closed stderr. */
	if (hg_stats_on) {
		hg_log_to(2);
#ifndef HG_CHECK
		hg_free_hook = hg_stats_free; /* before any thread cache: every free passes it */
		hg_fast_sizes = 0;            /* every malloc passes heap_alloc_other */
#endif
	}
#ifdef HG_CHECK
	hgc_init();
#endif
}

void hg_init(void)
{
	pthread_once(&once, init_once);
}

static void fork_prepare(void)
{
#ifdef HG_CHECK
	hgc_fork_prepare();
#endif
	hg_tcache_fork_prepare();
	hg_central_fork_prepare();
	hg_large_fork_prepare();
}

static void fork_parent(void)
{
	hg_large_fork_parent();
	hg_central_fork_parent();
	hg_tcache_fork_parent();
#ifdef HG_CHECK
	hgc_fork_parent();
#endif
}

static void fork_child(void)
{
	hg_large_fork_child();
	hg_central_fork_child();
	hg_tcache_fork_child();
#ifdef HG_CHECK
	hgc_fork_child();
#endif
}

/* pthread_atfork may allocate, so it runs here, after libc is up, not in the malloc path. */
__attribute__((constructor)) static void init_at_load(void)
{
	hg_init();
	pthread_atfork(fork_prepare, fork_parent, fork_child);
#ifdef HG_CHECK
	/* dlsym and sigaction may allocate: only now that the heap works. */
	hgc_intercept_init();
	hgc_syscalls_init();
	hgc_new_delete_init();
	hgc_signal_init();
	hgc_ready = 1;
#endif
}
