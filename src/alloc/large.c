/* large.c — blocks above 256 KiB: up to 2 MiB a span of their own in the arenas; above, a
 * mapping each, resized with mremap, and a small cache of freed mappings so that programs
 * cycling big buffers do not fault their pages in each time. */
#include <errno.h>
#include <string.h>

#include "alloc/span.h"
#include "base/fmt.h"
#include "base/lock.h"
#include "base/options.h"
#include "os/os.h"

#define CACHE_MAX_BLOCKS 16
#define CACHE_MAX_BYTES (96 * HG_MiB)

/* Freed mappings, kept resident for reuse like a page heap: a request takes the best fit
 * and leaves the rest cached; a freed block merges with cached neighbours (span.h: moved). */
static hg_lock_t large_lock = HG_LOCK_INIT;
static struct hg_span *cache_head, *cache_tail; /* newest first */
static unsigned cache_blocks;
static size_t cache_bytes;

/* The starts of the last mapped blocks freed: a block whose pages merged with a freed
 * neighbour's, or went back to the system, is still known, and a second free of it is told
 * a double free. */
#define FREED_STARTS 256
static const void *freed_starts[FREED_STARTS]; /* written under large_lock */
static unsigned freed_next;

static void remember_freed_locked(const void *p) { freed_starts[freed_next++ % FREED_STARTS] = p; }

int hg_large_freed_start(const void *p)
{
	for (unsigned i = 0; i < FREED_STARTS; i++)
		if (__atomic_load_n(&freed_starts[i], __ATOMIC_RELAXED) == p)
			return 1;
	return 0;
}

static void cache_unlink_locked(struct hg_span *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		cache_head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		cache_tail = s->prev;
	cache_blocks--;
	cache_bytes -= s->bytes;
}

static void cache_push_locked(struct hg_span *s)
{
	s->prev = NULL;
	s->next = cache_head;
	if (cache_head)
		cache_head->prev = s;
	else
		cache_tail = s;
	cache_head = s;
	cache_blocks++;
	cache_bytes += s->bytes;
}

/* Absorbs cached neighbours of s (unlinked) into s; returns the absorbed records, whose
 * metadata the caller frees after the unlock. */
static struct hg_span *cache_merge_locked(struct hg_span *s)
{
	struct hg_span *absorbed = NULL;
	for (struct hg_span *c = cache_head, *next; c; c = next) {
		next = c->next;
		if ((c->start + c->bytes != s->start && s->start + s->bytes != c->start) || c->moved != s->moved)
			continue;
		cache_unlink_locked(c);
		if (c->start < s->start)
			s->start = c->start;
		s->bytes += c->bytes;
		c->next = absorbed;
		absorbed = c;
		next = cache_head; /* s grew: look again */
	}
	if (absorbed) {
		hg_pagemap_set(s->start, s->bytes, s);
		s->large_request = s->bytes;
	}
	return absorbed;
}

/* Caches a freed mapping (a block the program freed, or the rest of a cached one). The oldest
 * blocks beyond the cache's bounds come back in *evict (to unmap), the records merged into s
 * in *absorbed (to free), both after the unlock. */
static void cache_put(struct hg_span *s, int freed, uint64_t now, struct hg_span **evict,
		      struct hg_span **absorbed)
{
	hg_lock(&large_lock);
	s->state = HG_SPAN_LARGE_CACHED;
	s->freed_ms = now;
	if (freed)
		remember_freed_locked(s->start);
	*absorbed = cache_merge_locked(s);
	cache_push_locked(s);
	*evict = NULL;
	while (cache_blocks > CACHE_MAX_BLOCKS || cache_bytes > CACHE_MAX_BYTES) {
		struct hg_span *old = cache_tail;
		cache_unlink_locked(old);
		old->next = *evict;
		*evict = old;
	}
	hg_unlock(&large_lock);
}

static void large_destroy(struct hg_span *s);

/* An address-space limit refused a mapping: what the heap keeps goes back first; 1 when some
 * did. */
static int room_made(void)
{
	return hg_central_purge(1) != 0;
}

static void cache_put_and_drop(struct hg_span *s, int freed)
{
	struct hg_span *evict, *absorbed;
	cache_put(s, freed, hg_os_now_ms(), &evict, &absorbed);
	for (struct hg_span *next; absorbed; absorbed = next) {
		next = absorbed->next;
		hg_meta_free(absorbed);
	}
	for (struct hg_span *next; evict; evict = next) {
		next = evict->next;
		large_destroy(evict);
	}
}

/* Takes the smallest cached block that holds `bytes` at an `align` boundary, and gives
 * back to the cache what it has beyond `bytes`; with none, when `smaller`, the largest one
 * short of it (for the caller to grow). */
static struct hg_span *cache_take(size_t bytes, size_t align, int smaller)
{
	struct hg_span *best = NULL, *below = NULL;
	hg_lock(&large_lock);
	for (struct hg_span *s = cache_head; s; s = s->next) {
		if ((uintptr_t)s->start & (align - 1))
			continue;
		if (s->bytes >= bytes && (!best || s->bytes < best->bytes))
			best = s;
		else if (s->bytes < bytes && (!below || s->bytes > below->bytes))
			below = s;
	}
	if (!best && smaller)
		best = below;
	if (best)
		cache_unlink_locked(best);
	hg_unlock(&large_lock);
	struct hg_span *tail = best && best->bytes > bytes ? hg_meta_new() : NULL;
	if (tail) {
		hg_span_init_block(tail, best->start + bytes, best->bytes - bytes, NULL);
		tail->moved = best->moved;
		tail->large_request = best->large_request > bytes ? best->large_request - bytes : 0;
		best->bytes = bytes;
		cache_put_and_drop(tail, 0);
	}
	return best;
}

/* Unmaps a large span and frees its metadata. */
static void large_destroy(struct hg_span *s)
{
	hg_pagemap_set(s->start, s->bytes, NULL);
	hg_os_unmap(s->start, s->bytes);
	hg_meta_free(s);
}

/* Moves a large span's pages onto a new mapping of `bytes` (no copy), which s then describes
 * but for its size; the old range is left unmapped, or when `keep` reserved and inaccessible
 * (hg_os_move_keep). 0 (block unchanged) when the OS refuses. */
static int large_relocate(struct hg_span *s, size_t bytes, int keep)
{
	char *old = s->start;
	size_t old_bytes = s->bytes;
	char *to = hg_os_map_like(bytes, old);
	if (!to && room_made())
		to = hg_os_map_like(bytes, old);
	if (!to || !hg_pagemap_reserve(to, bytes)) {
		if (to)
			hg_os_unmap(to, bytes);
		return 0;
	}
	hg_pagemap_set(old, old_bytes, NULL);
	if (keep ? !hg_os_move_keep(old, old_bytes, bytes, to) : !hg_os_move(old, old_bytes, bytes, to)) {
		hg_pagemap_set(old, old_bytes, s);
		if (!keep) /* hg_os_move_keep unmapped it: in part, where it lost its tail */
			hg_os_unmap(to, bytes);
		return 0;
	}
	hg_pagemap_set(to, bytes, s);
	s->moved += (uintptr_t)to - (uintptr_t)old;
	s->start = to;
	hg_lock(&large_lock);
	remember_freed_locked(old); /* realloc freed it */
	hg_unlock(&large_lock);
	return 1;
}

/* Resizes a large span's mapping to `bytes`, moving its pages if it cannot grow in place;
 * 0 (block unchanged) when the OS refuses. Page-map entries of a range are cleared before
 * the range leaves our hands: once unmapped, another thread may get it and register it. */
static int large_resize(struct hg_span *s, size_t bytes)
{
	char *old = s->start;
	size_t old_bytes = s->bytes;
	if (bytes == old_bytes)
		return 1;
	if (bytes < old_bytes) {
		hg_pagemap_set(old + bytes, old_bytes - bytes, NULL);
		hg_os_resize(old, old_bytes, bytes);
	} else if (hg_os_resize(old, old_bytes, bytes)) {
		/* The page map's leaves come after the pages: reserved first, a request the OS
		 * then refused (realloc to 16 TiB) left a leaf per 4 GiB of it mapped, up to the
		 * address-space limit. */
		if (!hg_pagemap_reserve(old, bytes)) {
			hg_os_resize(old, bytes, old_bytes);
			return 0;
		}
		hg_pagemap_set(old + old_bytes, bytes - old_bytes, s);
	} else if (!large_relocate(s, bytes, 0)) {
		return 0;
	}
	s->bytes = bytes;
	if (s->large_request > bytes)
		s->large_request = bytes;
	return 1;
}

/* A fresh mapping's pages fault in one at a time as the program touches them, and twice
 * where it reads a calloc'd page before writing it (the zero page, then a copy): 88,000
 * faults for the 44,000 pages of calloc'd buffers read and written whole (bench
 * calloc-dense, 1.2x tcmalloc's time, which writes every page of a calloc'd block itself).
 * When the last fresh block was used whole, the next one is faulted in by one call, but for
 * a few probe windows whose pages tell, at the next fresh block, whether the program still
 * touches its blocks whole. Blocks it touches a page in 16 of keep coming on demand (their
 * RSS is the point of bench calloc-large); a first block, or one not yet touched when the
 * next comes, counts as sparse. */
#define PROBES 4
#define PROBE_PAGES 16
#define POPULATE_MAX_BYTES (64 * HG_MiB) /* a wrong guess costs at most this much RSS */
static char *last_fresh;                 /* under large_lock */
static size_t last_fresh_bytes;

static char *probe_at(char *start, size_t bytes, unsigned i)
{
	size_t at = bytes / PROBES * i + bytes / (2 * PROBES);
	return start + (at & ~(size_t)(HG_OS_PAGE_BYTES - 1));
}

/* Took the program three in four of the probe pages of the block at start (mapped by
 * large_fresh; possibly freed and unmapped since, which reads as untouched)? */
static int used_whole(char *start, size_t bytes)
{
	unsigned in = 0;
	for (unsigned i = 0; start && i < PROBES; i++)
		in += hg_os_resident(probe_at(start, bytes, i), PROBE_PAGES);
	return in * 4 >= PROBES * PROBE_PAGES * 3;
}

static void populate_but_probes(char *start, size_t bytes)
{
	char *from = start;
	for (unsigned i = 0; i < PROBES; i++) {
		char *probe = probe_at(start, bytes, i);
		hg_os_populate(from, (size_t)(probe - from));
		from = probe + PROBE_PAGES * HG_OS_PAGE_BYTES;
	}
	hg_os_populate(from, (size_t)(start + bytes - from));
}

static struct hg_span *large_fresh(size_t bytes, size_t align)
{
	/* Only mappings past the medium sizes: an aligned request may map as little as a slice,
	 * short of the probe windows. */
	int sampled = bytes > HG_MEDIUM_MAX_BYTES;
	hg_lock(&large_lock);
	char *last = last_fresh;
	size_t last_bytes = last_fresh_bytes;
	hg_unlock(&large_lock);
	int populate = sampled && bytes <= POPULATE_MAX_BYTES && used_whole(last, last_bytes);

	if (hg_arena_huge_pages && align < HG_OS_HUGE_PAGE_BYTES)
		align = HG_OS_HUGE_PAGE_BYTES; /* check mode: see large_bytes */
	char *p = hg_os_map(bytes, align);
	if (!p && room_made())
		p = hg_os_map(bytes, align);
	if (!p)
		return NULL;
	struct hg_span *s = hg_meta_new();
	if (!s || !hg_pagemap_reserve(p, bytes)) {
		if (s)
			hg_meta_free(s);
		hg_os_unmap(p, bytes);
		return NULL;
	}
	hg_span_init_block(s, p, bytes, NULL);
	if (populate)
		populate_but_probes(p, bytes);
	if (sampled) {
		hg_lock(&large_lock);
		last_fresh = p;
		last_fresh_bytes = bytes;
		hg_unlock(&large_lock);
	}
	return s;
}

/* The mapping's length for a block of n bytes: whole slices. In check mode, past the medium
 * sizes, from a huge-page boundary (large_fresh) and whole huge pages long where that adds at
 * most an eighth (address space only, no huge pages; a block of 2 MiB and a byte took 4 MiB,
 * and under ulimit -v 74 of them failed where plainly 100 fit): the checker moves a block's
 * pages at its free and its realloc (heap.c), and the kernel then moves whole page tables
 * instead of each entry, of which this VM makes the next touch cost ~5-9 us a page. */
static size_t large_bytes(size_t n)
{
	size_t bytes = n ? hg_align_up(n, HG_SLICE_BYTES) : HG_SLICE_BYTES;
	size_t whole = hg_align_up(bytes, HG_OS_HUGE_PAGE_BYTES);
	return hg_arena_huge_pages && bytes > HG_MEDIUM_MAX_BYTES && whole - bytes <= bytes / 8 ? whole : bytes;
}

void *hg_large_alloc(size_t n, size_t align, int zero)
{
	return hg_large_alloc_zero_from(n, align, zero ? 0 : SIZE_MAX);
}

void *hg_large_alloc_zero_from(size_t n, size_t align, size_t from)
{
	int zero = from < n;
	if (n > PTRDIFF_MAX - HG_SLICE_BYTES) {
		errno = ENOMEM;
		return NULL;
	}
	size_t bytes = large_bytes(n);
	if (align <= HG_SLICE_BYTES && bytes <= HG_MEDIUM_MAX_BYTES) {
		struct hg_span *m = hg_medium_new(bytes);
		if (!m) {
			errno = ENOMEM;
			return NULL;
		}
		if (zero)
			hg_os_zero(m->start + from, n - from); /* slices freed earlier may still hold data */
		m->state = HG_SPAN_LARGE;
		return m->start;
	}
	if (align < HG_SLICE_BYTES)
		align = HG_SLICE_BYTES;
	/* For a malloc, a cached block too small grows (mremap, moving its pages if it must):
	 * its resident pages serve the new one, where a fresh mapping faults each page in (a
	 * block of 8 MiB after one of 7 MiB was freed, checked: 512 faults for its fill of 2 MiB;
	 * buffers of 1-25 MiB, 8 at a time, a page in 16 written: 21 % less time and RSS). Not
	 * for a calloc, which would clear the old bytes (the same buffers calloc'd and written
	 * whole took 38 % longer so). */
	struct hg_span *s = cache_take(bytes, align, align <= HG_SLICE_BYTES && from > 0);
	if (s && s->bytes < bytes && !large_resize(s, bytes)) {
		cache_put_and_drop(s, 0);
		s = NULL;
	}
	if (s) {
		/* large_request bounds what the last user may have written; the rest is fresh zero */
		size_t dirty = n < s->large_request ? n : s->large_request;
		if (zero && from < dirty)
			hg_os_zero(s->start + from, dirty - from);
	} else if (!(s = large_fresh(bytes, align))) {
		errno = ENOMEM;
		return NULL;
	}
	s->state = HG_SPAN_LARGE;
	s->large_request = s->bytes;
	hg_central_tick(hg_os_now_ms());
	return s->start;
}

/* p is no live block's start: inside a live block, or in the cached pages of freed ones,
 * which may hold a freed block's start past their own (merged with a neighbour). */
static __attribute__((noreturn, cold)) void large_bad_free(struct hg_span *s, const void *p, const char *func)
{
	if (s->state == HG_SPAN_LARGE)
		hg_fatal(func, "invalid free", p, s->start, s->bytes);
	hg_fatal(func, p == s->start || hg_large_freed_start(p) ? "double free" : "invalid free", p, NULL, 0);
}

static void large_release(struct hg_span *s, int purge)
{
	int saved = errno;
	if (s->arena)
		hg_span_release(s, purge);
	else
		cache_put_and_drop(s, 1);
	errno = saved;
}

void hg_large_free(struct hg_span *s, const void *p, const char *func)
{
	if (s->state != HG_SPAN_LARGE || p != s->start)
		large_bad_free(s, p, func);
	large_release(s, 0);
}

/* Moves a block to a new one of n bytes (copying), freeing the old one on success. A medium
 * block that grew into a mapping of its own, or one of 1 MiB or more, gives its pages back at
 * once, as glibc's mapped chunks do: the blocks around it grow too, past what its slices
 * hold, and those slices waiting out the decay raised the peak (50 blocks of 2 MiB realloc'd
 * to 2.1 MB: 209 MB, glibc 104; bench realloc's vectors doubled to 2 MiB: 67.6 MB, now 58.6,
 * glibc 54.1, for 10 % more time in refaulted pages). Smaller ones stay resident: strings
 * grown by exact-size realloc move every few slices, and their slices serve the next ones
 * (purged from 512 KiB, bench realloc took 24 % longer). */
static void *large_move(struct hg_span *s, size_t n)
{
	char *q = hg_large_alloc(n, 0, 0);
	if (!q)
		return NULL;
	memcpy(q, s->start, s->bytes < n ? s->bytes : n);
	large_release(s, s->arena && (n > HG_MEDIUM_MAX_BYTES || s->bytes >= HG_MiB));
	return q;
}

int hg_large_has_cached(size_t bytes)
{
	int has = 0;
	hg_lock(&large_lock);
	for (struct hg_span *s = cache_head; s && !has; s = s->next)
		has = s->bytes >= bytes;
	hg_unlock(&large_lock);
	return has;
}

char *hg_large_take_cached(size_t bytes)
{
	struct hg_span *s = cache_take(bytes, HG_SLICE_BYTES, 0);
	if (!s)
		return NULL;
	char *p = s->start;
	hg_pagemap_set(p, bytes, NULL);
	hg_meta_free(s);
	return p;
}

/* A medium block grows into the free slices after it, else moves (copying at most 2 MiB);
 * a mapped one is resized by mremap, and copied only where mremap cannot. */
void *hg_large_realloc(struct hg_span *s, size_t n)
{
	if (n > PTRDIFF_MAX - HG_SLICE_BYTES) {
		errno = ENOMEM;
		return NULL;
	}
	size_t bytes = large_bytes(n);
	if (s->arena) {
		if (bytes <= s->bytes || (bytes <= HG_MEDIUM_MAX_BYTES && hg_medium_grow(s, bytes)))
			return s->start;
		return large_move(s, n);
	}
	if (!large_resize(s, bytes))
		return large_move(s, n);
	s->large_request = s->bytes;
	return s->start;
}

void *hg_large_relocate(struct hg_span *s, size_t n, int keep)
{
	size_t bytes = large_bytes(n);
	if (s->arena || n > PTRDIFF_MAX - HG_SLICE_BYTES || bytes <= HG_MEDIUM_MAX_BYTES || !large_relocate(s, bytes, keep))
		return NULL;
	s->bytes = bytes;
	s->large_request = bytes;
	return s->start;
}

char *hg_large_move_keep(struct hg_span *s)
{
	return !s->arena && large_relocate(s, s->bytes, 1) ? s->start : NULL;
}

size_t hg_large_purge(uint64_t now_ms, int force)
{
	struct hg_span *expired = NULL;
	size_t bytes = 0;
	hg_lock(&large_lock);
	while (cache_tail && (force || now_ms - cache_tail->freed_ms >= hg_opt.decay_ms)) {
		struct hg_span *old = cache_tail;
		cache_unlink_locked(old);
		old->next = expired;
		expired = old;
	}
	hg_unlock(&large_lock);
	while (expired) {
		struct hg_span *next = expired->next;
		bytes += expired->bytes;
		large_destroy(expired);
		expired = next;
	}
	return bytes;
}

void hg_large_fork_prepare(void) { hg_lock(&large_lock); }
void hg_large_fork_parent(void) { hg_unlock(&large_lock); }
void hg_large_fork_child(void) { hg_lock_reset(&large_lock); }
