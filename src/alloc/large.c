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

#define CACHE_MAX_BLOCKS 8
#define CACHE_MAX_BYTES (256 * HG_MiB)

static hg_lock_t large_lock = HG_LOCK_INIT;
static struct hg_span *cache_head, *cache_tail; /* newest first */
static unsigned cache_blocks;
static size_t cache_bytes;

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

/* Best fit among cached blocks that are aligned enough: the smallest that holds `bytes`,
 * else the largest (to be grown in place or moved by mremap, keeping its resident pages). */
static struct hg_span *cache_take(size_t bytes, size_t align)
{
	struct hg_span *best = NULL, *largest = NULL;
	hg_lock(&large_lock);
	for (struct hg_span *s = cache_head; s; s = s->next) {
		if ((uintptr_t)s->start & (align - 1))
			continue;
		if (s->bytes >= bytes && (!best || s->bytes < best->bytes))
			best = s;
		if (!largest || s->bytes > largest->bytes)
			largest = s;
	}
	if (!best && align <= HG_SLICE_BYTES)
		best = largest;
	if (best)
		cache_unlink_locked(best);
	hg_unlock(&large_lock);
	return best;
}

/* Unmaps a large span and frees its metadata. */
static void large_destroy(struct hg_span *s)
{
	hg_pagemap_set(s->start, s->bytes, NULL);
	hg_os_unmap(s->start, s->bytes);
	hg_meta_free(s);
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
	} else if (hg_pagemap_reserve(old, bytes) && hg_os_resize(old, old_bytes, bytes)) {
		hg_pagemap_set(old + old_bytes, bytes - old_bytes, s);
	} else {
		char *to = hg_os_map(bytes, HG_SLICE_BYTES);
		if (!to || !hg_pagemap_reserve(to, bytes)) {
			if (to)
				hg_os_unmap(to, bytes);
			return 0;
		}
		hg_pagemap_set(old, old_bytes, NULL);
		if (!hg_os_move(old, old_bytes, bytes, to)) {
			hg_pagemap_set(old, old_bytes, s);
			hg_os_unmap(to, bytes);
			return 0;
		}
		hg_pagemap_set(to, bytes, s);
		s->start = to;
	}
	s->bytes = bytes;
	if (s->large_request > bytes)
		s->large_request = bytes;
	return 1;
}

static struct hg_span *large_fresh(size_t bytes, size_t align)
{
	char *p = hg_os_map(bytes, align);
	if (!p)
		return NULL;
	struct hg_span *s = hg_meta_new();
	if (!s || !hg_pagemap_reserve(p, bytes)) {
		if (s)
			hg_meta_free(s);
		hg_os_unmap(p, bytes);
		return NULL;
	}
	memset(s, 0, offsetof(struct hg_span, bits));
	s->start = p;
	s->bytes = bytes;
	s->owner = HG_OWNER_LARGE; /* recip = 0: only the block's first byte passes free()'s check */
	hg_pagemap_set(p, bytes, s);
	return s;
}

void *hg_large_alloc(size_t n, size_t align, int zero)
{
	if (n > PTRDIFF_MAX - HG_SLICE_BYTES) {
		errno = ENOMEM;
		return NULL;
	}
	size_t bytes = n ? hg_align_up(n, HG_SLICE_BYTES) : HG_SLICE_BYTES;
	if (align <= HG_SLICE_BYTES && bytes <= HG_MEDIUM_MAX_BYTES) {
		struct hg_span *m = hg_medium_new(bytes);
		if (!m) {
			errno = ENOMEM;
			return NULL;
		}
		if (zero)
			hg_os_zero(m->start, n); /* slices freed earlier may still hold data */
		m->state = HG_SPAN_LARGE;
		return m->start;
	}
	if (align < HG_SLICE_BYTES)
		align = HG_SLICE_BYTES;
	struct hg_span *s = cache_take(bytes, align);
	if (s) {
		/* Trim a block much larger than asked: its tail pages would stay resident unused. */
		size_t keep = s->bytes > bytes + bytes / 4 ? bytes : s->bytes;
		if (keep != s->bytes || s->bytes < bytes) {
			if (!large_resize(s, bytes > s->bytes ? bytes : keep)) {
				large_destroy(s);
				s = NULL;
			}
		}
	}
	if (s) {
		/* large_request bounds what the last user may have written; the rest is fresh zero */
		if (zero)
			hg_os_zero(s->start, n < s->large_request ? n : s->large_request);
	} else if (!(s = large_fresh(bytes, align))) {
		errno = ENOMEM;
		return NULL;
	}
	s->state = HG_SPAN_LARGE;
	s->large_request = s->bytes;
	hg_central_tick(hg_os_now_ms());
	return s->start;
}

void hg_large_free(struct hg_span *s, const void *p, const char *func)
{
	if (s->state != HG_SPAN_LARGE)
		hg_fatal(func, "double free", p, NULL, 0);
	int saved = errno;
	if (s->arena) {
		hg_span_release(s);
		errno = saved;
		return;
	}
	uint64_t now = hg_os_now_ms();
	struct hg_span *evict = NULL;
	hg_lock(&large_lock);
	s->state = HG_SPAN_LARGE_CACHED;
	s->freed_ms = now;
	s->prev = NULL;
	s->next = cache_head;
	if (cache_head)
		cache_head->prev = s;
	else
		cache_tail = s;
	cache_head = s;
	cache_blocks++;
	cache_bytes += s->bytes;
	/* Evict the oldest beyond the cache's bounds; they are unmapped after the unlock. */
	while (cache_blocks > CACHE_MAX_BLOCKS || cache_bytes > CACHE_MAX_BYTES) {
		struct hg_span *old = cache_tail;
		cache_unlink_locked(old);
		old->next = evict;
		evict = old;
	}
	hg_unlock(&large_lock);
	while (evict) {
		struct hg_span *next = evict->next;
		large_destroy(evict);
		evict = next;
	}
	errno = saved;
}

/* A medium block grows into the free slices after it, else moves (copying at most 2 MiB). */
static void *medium_realloc(struct hg_span *s, size_t n)
{
	size_t bytes = hg_align_up(n, HG_SLICE_BYTES);
	if (bytes <= s->bytes || (bytes <= HG_MEDIUM_MAX_BYTES && hg_medium_grow(s, bytes)))
		return s->start;
	char *q = hg_large_alloc(n, 0, 0);
	if (!q)
		return NULL;
	memcpy(q, s->start, s->bytes);
	hg_large_free(s, s->start, "realloc");
	return q;
}

void *hg_large_realloc(struct hg_span *s, size_t n)
{
	if (n > PTRDIFF_MAX - HG_SLICE_BYTES) {
		errno = ENOMEM;
		return NULL;
	}
	if (s->arena)
		return medium_realloc(s, n);
	if (!large_resize(s, hg_align_up(n, HG_SLICE_BYTES))) {
		errno = ENOMEM;
		return NULL;
	}
	s->large_request = s->bytes;
	return s->start;
}

void hg_large_purge(uint64_t now_ms, int force)
{
	struct hg_span *expired = NULL;
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
		large_destroy(expired);
		expired = next;
	}
}

void hg_large_fork_prepare(void) { hg_lock(&large_lock); }
void hg_large_fork_parent(void) { hg_unlock(&large_lock); }
void hg_large_fork_child(void) { hg_lock_reset(&large_lock); }
