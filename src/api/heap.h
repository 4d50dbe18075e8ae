/* heap.h — the heap behind the exported API: the fast core, or in the checking library
 * (HG_CHECK) the checked heap of src/check/. One API source serves both libraries. */
#ifndef HG_API_HEAP_H
#define HG_API_HEAP_H

#include <string.h>

#include "alloc/tcache.h"
#include "api/stats.h"

#ifdef HG_CHECK
#include "check/check.h"

#define HEAP_BY_MALLOC HGC_BY_MALLOC
#define HEAP_BY_NEW HGC_BY_NEW
#define HEAP_BY_NEW_ARRAY HGC_BY_NEW_ARRAY

/* HGC_SLOT: the exported function's return-address slot, the stack cache's key (stack.c),
 * with HGC_KEEP_FRAME after the call that passes it. */
HG_INLINE void *heap_alloc(size_t n, int kind, const char *func)
{
	void *p = hgc_alloc(n, 0, 0, (enum hgc_alloc_kind)kind, func, HGC_SLOT);
	HGC_KEEP_FRAME();
	return p;
}
HG_INLINE void *heap_aligned(size_t align, size_t n, int kind, const char *func)
{
	void *p = hgc_alloc(n, align, 0, (enum hgc_alloc_kind)kind, func, HGC_SLOT);
	HGC_KEEP_FRAME();
	return p;
}
HG_INLINE void *heap_calloc(size_t n)
{
	void *p = hgc_alloc(n, 0, 1, HGC_BY_MALLOC, "calloc", HGC_SLOT);
	HGC_KEEP_FRAME();
	return p;
}
HG_INLINE void heap_free(void *p, int kind, const char *func)
{
	hgc_free(p, (enum hgc_alloc_kind)kind, 0, func, HGC_SLOT);
	HGC_KEEP_FRAME();
}
/* A sized operator delete: n must be the size the block was allocated with. */
HG_INLINE void heap_free_sized(void *p, size_t n, int kind, const char *func)
{
	hgc_free(p, (enum hgc_alloc_kind)kind, n, func, HGC_SLOT);
	HGC_KEEP_FRAME();
}
HG_INLINE void *heap_realloc(void *p, size_t n)
{
	void *q = hgc_realloc(p, n, HGC_SLOT);
	HGC_KEEP_FRAME();
	return q;
}
static inline size_t heap_usable(const void *p) { return hgc_usable_size(p); }
/* Bytes in live blocks: the checked heap keeps the count anyway. */
static inline size_t heap_in_use(void)
{
	size_t blocks, bytes;
	hgc_blocks_in_use(&blocks, &bytes);
	return bytes;
}

#else /* the fast library */

#define HEAP_BY_MALLOC 0
#define HEAP_BY_NEW 0
#define HEAP_BY_NEW_ARRAY 0

static inline void *heap_counted(void *p, size_t n)
{
	if (unlikely(hg_stats_on))
		hg_stats_alloc(p, n);
	return p;
}

static HG_NOINLINE void *heap_alloc_counted(size_t n)
{
	return heap_counted(hg_alloc(n), n);
}

/* The flag is tested first, so that hg_alloc's slow paths stay tail calls. */
static HG_NOINLINE void *heap_alloc_other(size_t n)
{
	if (unlikely(hg_stats_on))
		return heap_alloc_counted(n);
	return hg_alloc(n);
}

/* n - 1 < hg_fast_sizes: 1 to 1 KiB unless counting; 0 wraps around to the other path. */
HG_INLINE void *heap_alloc(size_t n, int kind, const char *func)
{
	(void)kind;
	(void)func;
	if (likely(n - 1 < hg_fast_sizes))
		return hg_alloc_class(hg_size_class_table(n), n);
	return heap_alloc_other(n);
}

static inline void *heap_aligned(size_t align, size_t n, int kind, const char *func)
{
	(void)kind;
	(void)func;
	return heap_counted(hg_alloc_aligned(align, n), n);
}

static inline void *heap_calloc(size_t n)
{
	if (n > HG_SMALL_MAX_BYTES)
		return heap_counted(hg_large_alloc(n, 0, 1), n);
	void *p = hg_alloc(n);
	if (p)
		memset(p, 0, n);
	return heap_counted(p, n);
}

/* With stats=1, hg_free_hook counts every free (init.c). */
HG_INLINE void heap_free(void *p, int kind, const char *func)
{
	(void)kind;
	hg_free(p, func);
}
#define heap_free_sized(p, n, kind, func) ((void)(n), heap_free(p, kind, func))

/* Moves the block to a new one of n bytes; the old one is freed only on success. */
static inline void *heap_realloc_move(void *p, size_t old_usable, size_t n)
{
	void *q = hg_alloc(n);
	if (!q)
		return NULL;
	memcpy(q, p, old_usable < n ? old_usable : n);
	hg_free(p, "realloc");
	return q;
}

/* p is not NULL and n not 0: the API sorted those out. */
static inline void *heap_realloc(void *p, size_t n)
{
	size_t usable;
	struct hg_span *s = hg_block_of(p, &usable);
	if (!s) {
		hg_free(p, "realloc"); /* not a live block: this reports it */
		return NULL;
	}
	int large = s->owner == HG_OWNER_LARGE;
	/* Stays: a large block that stays large (mremap: no copy), or a small one that fits
	 * and shrinks by less than half. Else it moves, and its free counts in hg_free_hook. */
	if (large ? n <= HG_SMALL_MAX_BYTES : n > usable || hg_size_class(n) + 8 <= s->cls)
		return heap_counted(heap_realloc_move(p, usable, n), n);
	if (unlikely(hg_stats_on))
		hg_stats_free(p);
	void *q = large ? hg_large_realloc(s, n) : p;
	if (unlikely(hg_stats_on))
		hg_stats_alloc(q ? q : p, q ? n : usable);
	return q;
}

static inline size_t heap_usable(const void *p) { return hg_usable_size(p); }
/* Bytes in live blocks: counted with stats=1; else the spans are walked (counting would cost
 * the fast path). */
static inline size_t heap_in_use(void) { return hg_stats_on ? hg_stats_in_use() : hg_central_in_use(); }

#endif
#endif
