/* span.h — the allocator's data model: spans of equal blocks, their out-of-band metadata, and
 * the page map from any address to its span. */
#ifndef HG_SPAN_H
#define HG_SPAN_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc/sizeclass.h"
#include "base/util.h"

/*
 * Type map
 *   arena   4 MiB of address space from the OS (mmap or brk), cut into 64 slices of 64 KiB.
 *   span    a run of slices holding blocks of one size class, owned by one thread cache;
 *           or one block of 256 KiB-2 MiB (medium: slices of its own), or one larger block
 *           in a mapping of its own (large).
 *   tcache  a thread's spans: the current one and the partly free ones, per class.
 *   pagemap 64 KiB granule -> span. Every pointer free() gets is checked through it.
 *
 * No metadata lives next to the blocks: a block's state is one bit in its span's
 * bitmap, kept in a separate mapping, so an overflow cannot corrupt the allocator and
 * a double or interior free is always seen.
 */

struct hg_tcache;

enum hg_span_state {
	HG_SPAN_CUR,          /* tcache->cur[class]: the fast path allocates from it */
	HG_SPAN_AVAIL,        /* on the owner's avail list: has free blocks */
	HG_SPAN_FULL,         /* (nearly) no free block: on no list until hg_span_refill_live */
	HG_SPAN_LARGE,        /* a large block in use */
	HG_SPAN_LARGE_CACHED, /* a freed large block kept mapped for reuse */
};

/* owner of large spans: never a real thread cache, so free() takes the slow path */
#define HG_OWNER_LARGE ((struct hg_tcache *)1)
/* owner of the spans the page map names for slices no span holds any more: those of a span
 * of small blocks (hg_freed_span: a pointer there on the 16-byte grid may have been a block),
 * and those of a block that had its own slices, its first (hg_freed_block) and the others
 * (hg_freed_block_rest), so that a pointer inside it is told from its start */
#define HG_OWNER_FREED ((struct hg_tcache *)2)
extern struct hg_span hg_freed_span, hg_freed_block, hg_freed_block_rest;
#define HG_SPAN_WORDS (HG_SPAN_MAX_SLOTS / 64)
#define HG_META_ALIGN 128 /* metadata records and their parts start on 128-byte boundaries */

struct hg_span {
	/* fast path: one cache line (checked below) */
	uint64_t nonempty;       /* bit w set => bits[w] has a free block; malloc takes the lowest
				    block of the lowest such word, with no loop. free() leaves it
				    alone (words it refills are flagged again when the span seems
				    empty), so a malloc/free pair stores nothing here */
	int32_t live;            /* blocks not free in bits[]; right only off CUR: malloc does
				    not count, free counts down in every state (no test of the
				    state), and leaving CUR sets it anew */
	uint32_t size;           /* block bytes (large: 0) */
	uint32_t recip;          /* floor(2^32/size)+1, so off*recip>>32 == off/size for multiples */
	uint32_t extended;       /* blocks [extended, capacity) were never handed out and have no
				    free bit yet: a CUR span gets a page's worth more at a time,
				    after taking back other threads' frees, so fresh pages are
				    touched only when no freed block is left. Off CUR it equals
				    capacity. Other threads read it (free checks idx < extended) */
	char *start;             /* first block */
	struct hg_tcache *owner; /* the only thread that allocates from it / writes bits[] */
	uint8_t cls;
	uint8_t state;           /* enum hg_span_state */
	uint16_t nwords;         /* words of bits[] in use */
	int32_t settle_live;     /* free() calls hg_span_settle once live drops to this: 0 when
				    AVAIL (empty: release), the refill mark when FULL, never when
				    CUR; one predictable branch instead of tests on the state */
	union {
		size_t limit;    /* small: extended * size: a free below it on the thread's last
				    span needs no other range test (tcache.h) */
		uintptr_t moved; /* large: how far mremap moved its pages from where they were
				    mapped (wrapping). mremap resizes or moves no range across two
				    of the kernel's mappings, which merge where their pages moved
				    as far (page offsets that continue): the cache merges only
				    neighbours that did */
	};
	struct hg_span_remote *remote; /* small spans: what other threads write (past bits[]) */

	size_t bytes;            /* extent: slices * 64 KiB, or the large mapping's length */
	struct hg_span *next, *prev; /* avail list, large cache or meta free list */
	void *arena;            /* central.c's arena holding the slices; NULL for a large mapping */
	size_t large_request;   /* large: bytes the program asked for (dirty prefix for calloc) */
	uint64_t freed_ms;      /* large cached: when it was freed */
	uint32_t capacity;      /* blocks in the span */
	uint8_t meta_size;      /* central.c: room for 16 * meta_size bitmap words (and as many
				   remote ones); records are reused by this size */
	uint8_t held;           /* CUR, listed bit set but on no list (tcache.c: span_hold) */
	/* The checking library's records of the span's blocks (check/block.c), one per block:
	 * the array's address, its slot count in the top 16 bits. Past what a reinitialization
	 * clears: a span struct used again keeps its array, and the checker reuses it when it
	 * is large enough. */
	_Atomic uintptr_t check_records;

	/* nwords words, 1 = block free; then struct hg_span_remote (hg_span_remote). A span of
	 * large blocks has a record of 512 bytes, one of 16-byte blocks 1280. */
	uint64_t bits[] __attribute__((aligned(HG_META_ALIGN)));
};

_Static_assert(offsetof(struct hg_span, remote) + sizeof(void *) <= 64,
	       "malloc's and free's fields of a span fill one cache line");

/* What other threads write: a free from another thread sets its block's bit in words[] and
 * makes sure the span is on its owner's remote list. state: bit 0 = listed (on the list, or
 * held by the owner, tcache.c), bits 1.. = the span's generation, advanced when the span is
 * released: a free that set its bit and then finds another generation lists nothing. */
struct hg_span_remote {
	_Atomic uint32_t state;
	struct hg_span *next;     /* the owner's remote list */
	_Atomic uint64_t words[];
};

/* Past bits[], 128-byte aligned: the adjacent-line prefetcher fetches lines in 128-byte
 * pairs, and a pair holding both the owner's bits and other threads' words would bounce
 * between their caches (prodcons took 22 % longer at 64-byte alignment). */
static inline struct hg_span_remote *hg_span_remote(struct hg_span *s)
{
	return s->remote;
}

/* Blocks below this index have had a free bit, so they may have been handed out. */
static inline uint32_t hg_span_extended(const struct hg_span *s)
{
	return __atomic_load_n(&s->extended, __ATOMIC_RELAXED);
}

/* A FULL span returns to AVAIL once a sixteenth of it is free: a span with a single hole
 * would give one block per slow path. */
static inline int32_t hg_span_refill_live(const struct hg_span *s)
{
	return (int32_t)(s->capacity - (s->capacity + 15) / 16);
}

/* Sets a small span's state and the free() threshold that goes with it. */
static inline void hg_span_set_state(struct hg_span *s, enum hg_span_state state)
{
	s->state = (uint8_t)state;
	s->settle_live = state == HG_SPAN_AVAIL ? 0
			 : state == HG_SPAN_FULL ? hg_span_refill_live(s)
						 : INT32_MIN;
}

/* Makes s the record of one block of `bytes` at start (arena NULL for a mapping of its own)
 * and points the page map at it. recip stays 0, so only the block's first byte passes
 * free()'s boundary check. */
void hg_span_init_block(struct hg_span *s, char *start, size_t bytes, void *arena);

/* ---- page map: 48-bit address -> span, at 64 KiB granularity ---- */
#define HG_MAP_LEAF_BITS 16
#define HG_MAP_TOP_BITS (48 - HG_SLICE_SHIFT - HG_MAP_LEAF_BITS)
extern HG_HIDDEN struct hg_span **hg_pagemap_top[1u << HG_MAP_TOP_BITS];

static inline struct hg_span *hg_pagemap_get(uintptr_t a)
{
	if (unlikely(a >> 48))
		return NULL;
	struct hg_span **leaf = __atomic_load_n(&hg_pagemap_top[a >> (HG_SLICE_SHIFT + HG_MAP_LEAF_BITS)],
						__ATOMIC_ACQUIRE);
	if (unlikely(!leaf))
		return NULL;
	return __atomic_load_n(&leaf[(a >> HG_SLICE_SHIFT) & ((1u << HG_MAP_LEAF_BITS) - 1)],
			       __ATOMIC_RELAXED);
}

/* Makes sure the leaves covering [start, start+bytes) exist; 0 when one cannot be mapped. */
int hg_pagemap_reserve(const void *start, size_t bytes);
/* Points every granule of [start, start+bytes), already reserved, at span (or NULL). */
void hg_pagemap_set(const void *start, size_t bytes, struct hg_span *span);

/* ---- central heap (central.c): arenas, spans, metadata; one lock ---- */
/* Set by the checking library before its first allocation: arenas are then 2 MiB-aligned
 * and asked for transparent huge pages. Its quarantine makes most allocations land on fresh
 * pages, and one fault per 2 MiB instead of per 4 KiB took 3-4x fewer faults and 7-20 % of
 * the time off gcc and malloc loops in check mode. The fast library keeps 4 KiB pages: RSS. */
extern int hg_arena_huge_pages;
/* Many threads at once spread their spans thin: huge pages then fault in far more than the
 * threads use (1,000 threads of a checked program: 567 MB resident, 338 MB on small pages,
 * and three times the time). The arenas go back to small pages for good. */
void hg_arena_small_pages(void);
struct hg_span *hg_span_new(unsigned cls, struct hg_tcache *owner);
/* Releases a small span or a medium block: its slices go back to their arena. */
void hg_span_release(struct hg_span *s, int purge);
/* A medium block (256 KiB - 2 MiB): a span of `bytes` (whole slices) holding one block, in
 * an arena, so that its pages are reused resident instead of faulted in from a new mapping. */
struct hg_span *hg_medium_new(size_t bytes);
/* Grows a medium block in place when the slices after it are free; 0 otherwise. */
int hg_medium_grow(struct hg_span *s, size_t bytes);
struct hg_span *hg_meta_new(void);
void hg_meta_free(struct hg_span *s);
/* Returns free slices and cached large blocks older than decay_ms (all when force) to the
 * kernel; the bytes given back. */
size_t hg_central_purge(int force);
/* Bytes of the blocks in use, found by walking every span (for mallinfo; not exact while other
 * threads allocate). */
size_t hg_central_in_use(void);
/* Purges if the last purge is PURGE_INTERVAL_MS old: slow paths call it now and then. */
void hg_central_tick(uint64_t now_ms);
void hg_central_fork_prepare(void);
void hg_central_fork_parent(void);
void hg_central_fork_child(void);

/* ---- large blocks (large.c) ---- */
void *hg_large_alloc(size_t n, size_t align, int zero);
/* The same, where only the bytes from `from` on must read as zero (the checker fills the
 * ones before: zeroing them too, of a cached block used in part, gave its resident pages
 * back, which the fill then faulted in again). */
void *hg_large_alloc_zero_from(size_t n, size_t align, size_t from);
/* Frees the large block s starts with; any other p (inside it, or freed) ends the process. */
void hg_large_free(struct hg_span *s, const void *p, const char *func);
/* Was p the start of one of the last 256 mapped blocks freed? */
int hg_large_freed_start(const void *p);
/* Does the cache of freed mappings hold a block of bytes or more? */
int hg_large_has_cached(size_t bytes);
/* bytes (slice-aligned) of resident memory from the cache of freed mappings, which no longer
 * holds them; NULL when it has no block that large. */
char *hg_large_take_cached(size_t bytes);
void *hg_large_realloc(struct hg_span *s, size_t n);
/* Moves the block of s, a mapping of its own (over 2 MiB), to a new place n bytes long by
 * its pages, never copying: the checker's realloc, whose block must change address. The old
 * range is left unmapped, or with `keep` reserved and inaccessible (hg_os_unreserve gives it
 * back); NULL (block unchanged) when it is no such block or the OS refuses. */
void *hg_large_relocate(struct hg_span *s, size_t n, int keep);
/* The same to a place as long: the checker's free, which keeps the place. */
char *hg_large_move_keep(struct hg_span *s);
size_t hg_large_purge(uint64_t now_ms, int force);
void hg_large_fork_prepare(void);
void hg_large_fork_parent(void);
void hg_large_fork_child(void);

#endif
