/* tcache.h — per-thread caches and the malloc/free fast paths: no lock, no atomic operation. */
#ifndef HG_TCACHE_H
#define HG_TCACHE_H

#include "alloc/span.h"

struct hg_tcache {
	struct hg_span *cur[HG_NCLASSES];   /* never NULL: &hg_empty_span when the class has none */
	struct hg_span *avail[HG_NCLASSES]; /* owned spans with free blocks, besides cur */
	struct hg_span *avail_tail[HG_NCLASSES]; /* the lists' ends: a span that becomes AVAIL queues last */
	struct hg_span *last;               /* span of the last local free; never NULL */
	_Atomic(struct hg_span *) remote_head; /* spans other threads freed into (Treiber stack) */
	_Atomic int sweeping;               /* 1 while a thread walks remote_head's list */
	_Atomic uint32_t collects;          /* the owner's collections of remote frees */
	uint32_t collects_swept;            /* `collects` at the last sweep's visit */
	uint32_t new_spans;                 /* spans this cache took new (tcache.c: looks) */
	uint32_t words_emptied;             /* by malloc (tcache.c: the decay's clock) */
	struct hg_tcache *all_next;         /* every tcache ever made, for fork */
	struct hg_tcache *pool_next;        /* abandoned tcaches waiting for a new thread */
	_Atomic int pooled;                 /* 1 while in the pool: other threads' frees collect */
	int32_t orphan_tid;                 /* taken after its thread's exit ran (a key destructor
					       that allocates in glibc's last round): that thread,
					       until its end is seen (tcache.c); 0 otherwise */
	struct hg_tcache *orphan_next;
};

extern HG_HIDDEN struct hg_span hg_empty_span;
extern struct hg_tcache hg_empty_tcache;
extern __thread struct hg_tcache *hg_tc;

void *hg_alloc_slow(size_t n);
/* The end of a malloc whose block was the last free one of bitmap word i (w: the word before). */
void *hg_alloc_word_emptied(struct hg_span *s, uint32_t i, uint64_t w);
void hg_free_slow(struct hg_span *s, void *p, uint32_t idx, const char *func);
/* Frees p after it failed the page-map check: NULL, foreign or ld.so's. */
void hg_free_unknown(void *p, const char *func);
/* Set before the first thread cache exists (stats=1): sees every free, since with it set
 * no thread has a last span and every free takes hg_free_hooked. */
extern HG_HIDDEN void (*hg_free_hook)(const void *p);
void hg_free_hooked(void *p, const char *func);
/* After blocks came back to a span of this thread that is not CUR: a FULL one becomes
 * AVAIL, an empty one goes back to the central heap. */
void hg_span_settle(struct hg_span *s);
/* 1 when p lies in ld.so's image: its start-up allocator's blocks may reach free(). */
int hg_is_ldso_pointer(const void *p);

/* The block that the lowest set bit of w, bitmap word i of s, stands for. */
HG_INLINE void *hg_span_block(const struct hg_span *s, uint32_t i, uint64_t w)
{
	return s->start + (size_t)(i * 64 + (uint32_t)__builtin_ctzll(w)) * s->size;
}

/* Allocates a block of class c: pops the lowest free block of the lowest flagged word of
 * the thread's current span for the class, without a loop. When no word is flagged, the
 * slow path (given the request n) flags the words that frees refilled, or moves on to
 * another span. */
HG_INLINE void *hg_alloc_class(unsigned c, size_t n)
{
	struct hg_span *s = hg_tc->cur[c];
	uint64_t words = s->nonempty;
	if (unlikely(!words))
		return hg_alloc_slow(n);
	uint32_t i = (uint32_t)__builtin_ctzll(words);
	uint64_t w = s->bits[i], rest = w & (w - 1);
	s->bits[i] = rest;
	if (unlikely(!rest))
		return hg_alloc_word_emptied(s, i, w); /* a tail call: no frame here */
	return hg_span_block(s, i, w);
}

/* Allocates n bytes. */
HG_INLINE void *hg_alloc(size_t n)
{
	if (likely(n <= HG_CLASS_TABLE_MAX_BYTES)) /* one test on the way to the table */
		return hg_alloc_class(hg_size_class_table(n), n);
	if (n <= HG_SMALL_MAX_BYTES)
		return hg_alloc_class(hg_size_class(n), n);
	return hg_alloc_slow(n);
}

/* The end of a free of block idx of s, a span of this thread's, once p is known to be its
 * start: a free bit already set, here or in the words other threads write, is a second free. */
HG_INLINE void hg_free_owned(struct hg_span *s, void *p, uint32_t idx, const char *func)
{
	uint32_t w = idx / 64;
	uint64_t bit = 1ull << (idx % 64);
	if (unlikely((s->bits[w] | atomic_load_explicit(&hg_span_remote(s)->words[w], memory_order_relaxed)) &
		     bit)) {
		hg_free_slow(s, p, idx, func); /* double free */
		return;
	}
	s->bits[w] |= bit;
	/* Off CUR this counts the live blocks. On CUR it only drifts (malloc counts nothing),
	 * its threshold is INT32_MIN, and it is set anew when the span leaves CUR. */
	int32_t live = (int32_t)((uint32_t)s->live - 1u);
	s->live = live;
	if (unlikely(live <= s->settle_live))
		hg_span_settle(s);
}

/* Frees p through the page map; remember: make its span the thread's last one. */
HG_INLINE void hg_free_mapped(struct hg_tcache *tc, void *p, const char *func, int remember)
{
	struct hg_span *s = hg_pagemap_get((uintptr_t)p);
	if (unlikely(!s)) {
		hg_free_unknown(p, func);
		return;
	}
	size_t off = (size_t)((char *)p - s->start);
	uint32_t idx = (uint32_t)((off * s->recip) >> 32);
	if (unlikely((size_t)idx * s->size != off || idx >= hg_span_extended(s) || s->owner != tc)) {
		hg_free_slow(s, p, idx, func);
		return;
	}
	if (remember)
		tc->last = s;
	hg_free_owned(s, p, idx, func);
}

/* Frees p. Every pointer is checked: it must map to a span, sit at a block boundary and be
 * in use, else the process ends with one line. `func` names the API call for that line. */
HG_INLINE void hg_free(void *p, const char *func)
{
	/* Frees come in runs on one span. The thread's last one is its own, and p below its
	 * limit lies in a block it handed out: one range check stands for the page-map
	 * lookup, the owner's test and the test that the block was ever handed out. */
	struct hg_tcache *tc = hg_tc;
	struct hg_span *s = tc->last;
	size_t off = (size_t)((char *)p - s->start);
	if (unlikely(off >= s->limit)) {
		if (unlikely(hg_free_hook))
			hg_free_hooked(p, func); /* a tail call: no frame here */
		else
			hg_free_mapped(tc, p, func, 1);
		return;
	}
	uint32_t idx = (uint32_t)((off * s->recip) >> 32);
	if (unlikely((size_t)idx * s->size != off)) {
		hg_free_slow(s, p, idx, func); /* interior pointer */
		return;
	}
	hg_free_owned(s, p, idx, func);
}

/* Usable bytes of the block at p (0 for NULL or a pointer that is not a block's start). */
size_t hg_usable_size(const void *p);
/* The live block starting at p and its usable size; NULL for NULL, foreign, interior or
 * free pointers. */
struct hg_span *hg_block_of(const void *p, size_t *usable);
void *hg_alloc_aligned(size_t align, size_t n);
/* malloc_trim: the caches of exited threads, waiting in the pool for a new thread, take back
 * the frees other threads made into their spans, so that spans left empty go back. */
void hg_tcache_trim(void);
void hg_tcache_fork_prepare(void);
void hg_tcache_fork_parent(void);
void hg_tcache_fork_child(void);
void hg_tcache_init(void);
void hg_init(void); /* api/init: reads options once; called by the first slow path */

#endif
