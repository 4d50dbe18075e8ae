/* stats.h — allocation counters kept when HEAPGUARD_OPTIONS has stats=1. */
#ifndef HG_STATS_H
#define HG_STATS_H

#include <stddef.h>

#include "base/util.h"

/* Set once at init. malloc's and free's inline paths do not test it (hg_fast_sizes,
 * hg_free_hook); the API's other paths do. */
extern HG_HIDDEN int hg_stats_on;
/* Sizes 1..hg_fast_sizes take malloc's inline path: HG_CLASS_TABLE_MAX_BYTES, or none with
 * stats=1, so that one test on the size also sends every malloc to the counting path. */
extern HG_HIDDEN size_t hg_fast_sizes;

void hg_stats_alloc(const void *p, size_t requested);
void hg_stats_free(const void *p);
/* The checking library's count of a block of `size` bytes allocated (alloc=1) or freed by the
 * program, in the row of its core block at core (guarded blocks have a row of their own);
 * in use counts the size, as the block's usable size is its size there. */
void hg_stats_checked(const void *core, int alloc, size_t size);
void hg_stats_print(void);
size_t hg_stats_in_use(void);

#endif
