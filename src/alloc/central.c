/* central.c — the shared heap behind the thread caches: arenas, slices, span metadata, page map. */
#include <errno.h>
#include <string.h>

#include "alloc/span.h"
#include "base/lock.h"
#include "base/options.h"
#include "os/os.h"

#define ARENA_SLICES 64
#define ARENA_BYTES (ARENA_SLICES * HG_SLICE_BYTES)
#define META_CHUNK_BYTES (1 * HG_MiB)
#define PURGE_INTERVAL_MS 100 /* how often the slow path looks for memory to return */

struct arena {
	char *base;
	uint64_t free_mask;  /* 1 = slice not in any span */
	uint64_t dirty_mask; /* free slices whose pages may still be resident */
	uint64_t aged_mask;  /* dirty slices that stayed free since aged_ms: next to go back */
	uint64_t aged_ms;
	int from_brk;        /* brk memory is never unmapped */
	int huge;            /* asked for transparent huge pages, and listed in huge_arenas_list */
	struct arena *next;  /* list of arenas with a free slice */
	struct arena *huge_next;
};

/* An arena lives in a metadata record (hg_meta_new) and must leave its size field alone. */
_Static_assert(sizeof(struct arena) <= offsetof(struct hg_span, meta_size), "arena overlaps meta_size");
/* The header is one 128-byte pair of lines, the owner's (see hg_span_remote). */
_Static_assert(offsetof(struct hg_span, bits) == HG_META_ALIGN, "span header past one line pair");

struct hg_span **hg_pagemap_top[1u << HG_MAP_TOP_BITS];
struct hg_span hg_freed_span = { .owner = HG_OWNER_FREED };
struct hg_span hg_freed_block = { .owner = HG_OWNER_FREED };
struct hg_span hg_freed_block_rest = { .owner = HG_OWNER_FREED };

static hg_lock_t central_lock = HG_LOCK_INIT;
static hg_lock_t brk_lock = HG_LOCK_INIT; /* sbrk is not thread-safe: one grower at a time */
static struct arena *nonfull;  /* arenas with at least one free slice */
#define META_WORDS 16 /* bitmap words per step of record size: 128 bytes */
static struct hg_span *meta_free[HG_SPAN_WORDS / META_WORDS + 1]; /* by meta_size */
static char *meta_cursor, *meta_end;
static uint64_t last_purge_ms;

/* ---------------- page map ---------------- */

int hg_pagemap_reserve(const void *start, size_t bytes)
{
	uintptr_t a = (uintptr_t)start, end = a + bytes;
	uintptr_t leaf_span = (uintptr_t)1 << (HG_SLICE_SHIFT + HG_MAP_LEAF_BITS);
	if (end < a || end > (uintptr_t)1 << 48) /* past the map's 48 bits: no memory there */
		return 0;
	for (a &= ~(leaf_span - 1); a < end; a += leaf_span) {
		struct hg_span ***top = &hg_pagemap_top[a >> (HG_SLICE_SHIFT + HG_MAP_LEAF_BITS)];
		if (__atomic_load_n(top, __ATOMIC_ACQUIRE))
			continue;
		size_t leaf_bytes = sizeof(struct hg_span *) << HG_MAP_LEAF_BITS;
		struct hg_span **fresh = hg_os_map(leaf_bytes, HG_OS_PAGE_BYTES), **none = NULL;
		if (!fresh)
			return 0;
		if (!__atomic_compare_exchange_n(top, &none, fresh, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			hg_os_unmap(fresh, leaf_bytes); /* another thread installed one */
	}
	return 1;
}

void hg_pagemap_set(const void *start, size_t bytes, struct hg_span *span)
{
	for (uintptr_t a = (uintptr_t)start, end = a + bytes; a < end; a += HG_SLICE_BYTES) {
		struct hg_span **leaf = hg_pagemap_top[a >> (HG_SLICE_SHIFT + HG_MAP_LEAF_BITS)];
		__atomic_store_n(&leaf[(a >> HG_SLICE_SHIFT) & ((1u << HG_MAP_LEAF_BITS) - 1)], span,
				 __ATOMIC_RELEASE);
	}
}

void hg_span_init_block(struct hg_span *s, char *start, size_t bytes, void *arena)
{
	memset(s, 0, offsetof(struct hg_span, meta_size));
	s->start = start;
	s->bytes = bytes;
	s->arena = arena;
	s->owner = HG_OWNER_LARGE;
	hg_pagemap_set(start, bytes, s);
}

/* ---------------- metadata (central lock held) ---------------- */

/* A record with room for 16 * size bitmap words and as many remote ones (size 0: none, for
 * large blocks and arenas): a span of few large blocks does not pay for the 64 words of
 * one of 4096 small ones. */
static struct hg_span *meta_new_locked(unsigned size)
{
	struct hg_span *s = meta_free[size];
	if (s) {
		meta_free[size] = s->next;
		return s;
	}
	size_t words = (size_t)size * META_WORDS * sizeof(uint64_t);
	size_t bytes = offsetof(struct hg_span, bits) +
		       (size ? words + hg_align_up(sizeof(struct hg_span_remote) + words, HG_META_ALIGN) : 0);
	if (meta_cursor + bytes > meta_end) {
		/* A system call under the lock, but only once per 800-2000 records. Near an
		 * address-space limit, a smaller chunk, as arenas get (arena_partial): with half a
		 * megabyte left, a new size's span had its slices and no record. */
		size_t chunk_bytes = META_CHUNK_BYTES;
		char *chunk = hg_os_map(chunk_bytes, HG_OS_PAGE_BYTES);
		while (!chunk && chunk_bytes / 2 >= bytes && chunk_bytes > HG_OS_PAGE_BYTES)
			chunk = hg_os_map(chunk_bytes /= 2, HG_OS_PAGE_BYTES);
		if (!chunk)
			return NULL;
		meta_cursor = chunk;
		meta_end = chunk + chunk_bytes;
	}
	s = (struct hg_span *)meta_cursor;
	meta_cursor += bytes;
	s->meta_size = (uint8_t)size;
	return s;
}

static void meta_free_locked(struct hg_span *s)
{
	s->next = meta_free[s->meta_size];
	meta_free[s->meta_size] = s;
}

struct hg_span *hg_meta_new(void)
{
	hg_lock(&central_lock);
	struct hg_span *s = meta_new_locked(0);
	hg_unlock(&central_lock);
	return s;
}

void hg_meta_free(struct hg_span *s)
{
	hg_lock(&central_lock);
	meta_free_locked(s);
	hg_unlock(&central_lock);
}

/* ---------------- arenas and slices ---------------- */

static void nonfull_remove(struct arena *a)
{
	for (struct arena **pp = &nonfull; *pp; pp = &(*pp)->next)
		if (*pp == a) {
			*pp = a->next;
			return;
		}
}

/* Takes n slices from an arena with room: where the most of them are dirty, so that freed
 * pages serve again before clean ones are touched and the rest ages out (bench/threadchurn,
 * threads passing blocks on: peak RSS 188 → 79 MB, medians of 9 runs); then best fit, the
 * smallest free run that holds them (the oldest arena's on a tie), so that the long runs stay
 * for spans of many slices. The caller holds the lock. */
static char *slices_take_locked(unsigned n, struct arena **arena, unsigned *clean_out)
{
	struct arena *best = NULL;
	unsigned best_at = 0, best_len = ARENA_SLICES + 1, best_clean = n + 1;
	for (struct arena *a = nonfull; a && (best_len != n || best_clean); a = a->next) {
		for (uint64_t m = a->free_mask; m;) {
			unsigned at = (unsigned)__builtin_ctzll(m);
			uint64_t rest = ~(m >> at);
			unsigned len = rest ? (unsigned)__builtin_ctzll(rest) : ARENA_SLICES - at;
			if (len >= n) {
				uint64_t dirty = a->dirty_mask & hg_bit_run(n, at);
				unsigned clean = n - (unsigned)__builtin_popcountll(dirty);
				if (clean < best_clean || (clean == best_clean && len <= best_len)) {
					best = a;
					best_at = at;
					best_len = len;
					best_clean = clean;
					if (len == n && !clean)
						break;
				}
			}
			m &= ~hg_bit_run(len, at);
		}
	}
	if (!best)
		return NULL;
	*clean_out = best_clean;
	uint64_t run = hg_bit_run(n, best_at);
	best->free_mask &= ~run;
	best->dirty_mask &= ~run;
	best->aged_mask &= ~run;
	if (!best->free_mask)
		nonfull_remove(best);
	*arena = best;
	return best->base + (size_t)best_at * HG_SLICE_BYTES;
}

int hg_arena_huge_pages;
static _Atomic unsigned huge_arenas; /* arenas mapped for huge pages so far */
static struct arena *huge_arenas_list; /* those still mapped, until small_pages */
static int small_pages;                /* hg_arena_small_pages was called */

void hg_arena_small_pages(void)
{
	hg_lock(&central_lock);
	__atomic_store_n(&small_pages, 1, __ATOMIC_RELAXED);
	for (struct arena *a = huge_arenas_list; a; a = a->huge_next) {
		hg_os_small_pages(a->base, ARENA_BYTES); /* under the lock: still mapped */
		a->huge = 0;
	}
	huge_arenas_list = NULL;
	hg_unlock(&central_lock);
}

/* The record of an arena of k slices at base, just taken from the OS (the break: from_brk),
 * the slices past k marked in use for good; NULL, and the memory back unless from the break,
 * when there is no memory for the record. The page map's leaves are reserved for the whole
 * arena now: a span reserving its own slices' leaves left those of an arena across a 4 GiB
 * line half missing, and the arena's unmapping, or a medium block grown across the line,
 * wrote into a leaf never mapped. */
static struct arena *arena_record(char *base, unsigned k, int from_brk, int huge)
{
	size_t bytes = (size_t)k * HG_SLICE_BYTES;
	struct arena *a = hg_pagemap_reserve(base, bytes) ? (struct arena *)hg_meta_new() : NULL;
	if (!a) {
		if (!from_brk)
			hg_os_unmap(base, bytes);
		return NULL;
	}
	*a = (struct arena){ .base = base, .free_mask = hg_bit_run(k, 0), .from_brk = from_brk, .huge = huge };
	return a;
}

/* Gets a new arena from the OS, outside the lock; NULL when the OS refuses. */
static struct arena *arena_grow(void)
{
	/* The fast library's next arena comes from the cache of freed large blocks when it can:
	 * their pages are resident already (dirty: taken first, and given back by the decay if
	 * left unused). */
	char *base = hg_arena_huge_pages ? NULL : hg_large_take_cached(ARENA_BYTES);
	if (base) {
		struct arena *a = arena_record(base, ARENA_SLICES, 0, 0);
		if (a) {
			a->dirty_mask = ~0ull;
			a->aged_ms = hg_os_now_ms();
		}
		return a;
	}
	int from_brk = 0;
	if (hg_opt.backend == HG_BACKEND_BRK) {
		hg_lock(&brk_lock);
		base = hg_os_brk(ARENA_BYTES, HG_SLICE_BYTES);
		hg_unlock(&brk_lock);
		from_brk = base != NULL;
	}
	int huge = !base && hg_arena_huge_pages && !__atomic_load_n(&small_pages, __ATOMIC_RELAXED);
	if (!base)
		base = huge ? hg_os_map_huge(ARENA_BYTES, !atomic_fetch_add(&huge_arenas, 1))
			    : hg_os_map(ARENA_BYTES, HG_SLICE_BYTES);
	return base ? arena_record(base, ARENA_SLICES, from_brk, huge) : NULL;
}

/* An arena of k slices mapped now; NULL when refused. */
static struct arena *arena_of(unsigned k)
{
	char *base = hg_os_map((size_t)k * HG_SLICE_BYTES, HG_SLICE_BYTES);
	return base ? arena_record(base, k, 0, 0) : NULL;
}

/* Near an address-space limit (ulimit -v), where no whole arena fits: the largest smaller
 * one that fits and has `need` slices. Without it, a program that had taken nearly all the
 * space in big blocks failed every small malloc of a new size while megabytes were left
 * (glibc's heap served 41,000 more blocks of 100 bytes). Never whole, it is never unmapped:
 * its free slices are purged. */
static struct arena *arena_partial(unsigned need)
{
	struct arena *a = NULL;
	for (unsigned k = ARENA_SLICES / 2; !a && k >= need; k /= 2)
		a = arena_of(k);
	return a || !(need & (need - 1)) ? a : arena_of(need); /* 3 slices: after 4, 3 */
}

/* Returns slices to their arena, their pages resident (dirty) or given back; the caller holds
 * the lock. */
static void slices_give_locked(struct arena *a, char *p, unsigned n, int dirty)
{
	unsigned i = (unsigned)((p - a->base) >> HG_SLICE_SHIFT);
	uint64_t run = hg_bit_run(n, i);
	if (!a->free_mask) {
		a->next = nonfull;
		nonfull = a;
	}
	a->free_mask |= run;
	a->dirty_mask = dirty ? a->dirty_mask | run : a->dirty_mask & ~run;
	a->aged_mask &= ~run;
}

/* Turns a record from slices_new into a span of class cls owned by owner. */
static void span_init(struct hg_span *s, unsigned cls, struct hg_tcache *owner)
{
	const struct hg_class *c = &hg_classes[cls];
	s->nwords = (uint16_t)((c->count + 63) / 64);
	s->nonempty = 0;
	s->live = 0;
	s->size = c->size;
	s->recip = (uint32_t)((1ull << 32) / c->size + 1);
	s->owner = owner;
	s->cls = (uint8_t)cls;
	hg_span_set_state(s, HG_SPAN_CUR);
	s->capacity = c->count;
	__atomic_store_n(&s->extended, 0, __ATOMIC_RELAXED); /* the owner extends it (tcache.c) */
	s->limit = 0;
	s->next = s->prev = NULL;
	/* Where the record's room for bitmap words ends: the same place whatever the class, so
	 * that a free from another thread still at its state word after the span's release
	 * finds a state word there in every later use of the record. Its generation stays. */
	struct hg_span_remote *r = (struct hg_span_remote *)((char *)s->bits +
							     (size_t)s->meta_size * META_WORDS * sizeof(uint64_t));
	s->remote = r;
	s->held = 0;
	r->next = NULL;
	for (unsigned w = 0; w < s->nwords; w++) {
		s->bits[w] = 0;
		atomic_store_explicit(&r->words[w], 0, memory_order_relaxed);
	}
}

static size_t purge_arenas(uint64_t now, int force);

/* A metadata record of meta_size (see meta_new_locked) and n slices for it, page map
 * reserved; NULL when out of memory. */
static struct hg_span *slices_new(unsigned n, unsigned meta_size)
{
	struct arena *a = NULL;
	unsigned clean = 0;
	hg_lock(&central_lock);
	char *p = slices_take_locked(n, &a, &clean);
	/* Clean slices would be faulted in while freed large blocks wait resident in their cache:
	 * an arena made of those serves first (a program that freed its big buffers, then went on
	 * with small blocks, peaked at the two together: 2x glibc's RSS). */
	if (p && clean == n && !hg_arena_huge_pages && hg_large_has_cached(ARENA_BYTES)) {
		slices_give_locked(a, p, n, 0);
		p = NULL;
	}
	struct hg_span *s = p ? meta_new_locked(meta_size) : NULL;
	hg_unlock(&central_lock);
	if (!p) {
		/* In check mode (huge-page arenas) the dirty free runs, none long enough for this
		 * request, go back before a new arena comes: the quarantine puts most spans on
		 * fresh pages there anyway, and runs waiting out decay_ms kept the realloc bench's
		 * peak 3 MiB higher. The fast library keeps them for its next spans (purged here,
		 * its realloc bench took 20 % longer). */
		if (hg_arena_huge_pages)
			purge_arenas(hg_os_now_ms(), 1);
		struct arena *fresh = arena_grow();
		if (!fresh && hg_central_purge(1)) /* an address-space limit: free arenas go first */
			fresh = arena_grow();
		if (!fresh)
			fresh = arena_partial(n);
		if (!fresh)
			return NULL;
		hg_lock(&central_lock);
		fresh->next = nonfull;
		nonfull = fresh;
		if (fresh->huge && !small_pages) {
			fresh->huge_next = huge_arenas_list;
			huge_arenas_list = fresh;
		} else if (fresh->huge) { /* mapped as the switch came */
			hg_os_small_pages(fresh->base, ARENA_BYTES);
			fresh->huge = 0;
		}
		p = slices_take_locked(n, &a, &clean);
		s = meta_new_locked(meta_size);
		hg_unlock(&central_lock);
	}
	if (!s) {
		/* out of memory for metadata: put the slices back */
		hg_lock(&central_lock);
		slices_give_locked(a, p, n, 1);
		hg_unlock(&central_lock);
		return NULL;
	}
	s->start = p;
	s->arena = a;
	s->bytes = (size_t)n << HG_SLICE_SHIFT;
	return s;
}

struct hg_span *hg_span_new(unsigned cls, struct hg_tcache *owner)
{
	unsigned words = (hg_classes[cls].count + 63u) / 64u;
	struct hg_span *s = slices_new(hg_classes[cls].slices, (words + META_WORDS - 1) / META_WORDS);
	if (!s)
		return NULL;
	span_init(s, cls, owner);
	hg_pagemap_set(s->start, s->bytes, s);
	return s;
}

struct hg_span *hg_medium_new(size_t bytes)
{
	struct hg_span *s = slices_new((unsigned)(bytes >> HG_SLICE_SHIFT), 0);
	if (s)
		hg_span_init_block(s, s->start, bytes, s->arena);
	return s;
}

int hg_medium_grow(struct hg_span *s, size_t bytes)
{
	struct arena *a = s->arena;
	unsigned first = (unsigned)((s->start - a->base) >> HG_SLICE_SHIFT);
	unsigned have = (unsigned)(s->bytes >> HG_SLICE_SHIFT), want = (unsigned)(bytes >> HG_SLICE_SHIFT);
	if (first + want > ARENA_SLICES)
		return 0;
	uint64_t more = hg_bit_run(want - have, first + have);
	hg_lock(&central_lock);
	int ok = (a->free_mask & more) == more;
	if (ok) {
		a->free_mask &= ~more;
		a->dirty_mask &= ~more;
		a->aged_mask &= ~more;
		if (!a->free_mask)
			nonfull_remove(a);
	}
	hg_unlock(&central_lock);
	if (ok) {
		hg_pagemap_set(s->start + s->bytes, bytes - s->bytes, s);
		s->bytes = bytes;
	}
	return ok;
}

void hg_span_release(struct hg_span *s, int purge)
{
	if (purge)
		hg_os_purge(s->start, s->bytes);
	if (s->owner == HG_OWNER_LARGE) { /* a medium block */
		hg_pagemap_set(s->start, HG_SLICE_BYTES, &hg_freed_block);
		hg_pagemap_set(s->start + HG_SLICE_BYTES, s->bytes - HG_SLICE_BYTES, &hg_freed_block_rest);
	} else {
		hg_pagemap_set(s->start, s->bytes, &hg_freed_span);
	}
	uint64_t now = hg_os_now_ms();
	hg_lock(&central_lock);
	slices_give_locked(s->arena, s->start, (unsigned)(s->bytes >> HG_SLICE_SHIFT), !purge);
	meta_free_locked(s);
	hg_unlock(&central_lock);
	hg_central_tick(now);
}

void hg_central_tick(uint64_t now_ms)
{
	if (now_ms - __atomic_load_n(&last_purge_ms, __ATOMIC_RELAXED) >= PURGE_INTERVAL_MS)
		hg_central_purge(0);
}

struct purge_job {
	struct arena *arena;
	uint64_t mask; /* slices being purged (taken out of free_mask meanwhile) */
	int unmap;     /* the whole arena goes back to the OS */
};

/* What a purge of due gives back in an arena on transparent huge pages (check mode): the huge
 * pages free whole that hold a due slice, and the due slices of those at least half free.
 * Giving back part of a huge page splits it into small pages, and this VM then read the
 * rest of it at 0.4-1 GB/s, 25 GB/s whole: with every free run given back, the quarantine's
 * checks made the checked realloc bench take 2.74 s, 0.26 s so (as fast with whole pages
 * only, but then 500 one-slice holes stayed resident: 105 MB against 73). The dirty rest
 * stays, and the next spans take it first. */
static uint64_t huge_page_purge(uint64_t due, uint64_t free_mask)
{
	const unsigned per = (unsigned)(HG_OS_HUGE_PAGE_BYTES / HG_SLICE_BYTES);
	uint64_t purge = 0;
	for (unsigned i = 0; i < ARENA_SLICES; i += per) {
		uint64_t page = hg_bit_run(per, i);
		if ((free_mask & page) == page && (due & page))
			purge |= page;
		else if ((unsigned)__builtin_popcountll(free_mask & page) >= per / 2)
			purge |= due & page;
	}
	return purge;
}

/* Picks what is due under the lock: slices dirty and free since the arena's last look, at
 * least decay_ms ago (so a slice goes back decay_ms to twice that after its last free, however
 * busy its arena: a time of the arena's last free kept an arena that freed now and then
 * resident for good), and whole arenas free. The rest is aged for the next look. */
static unsigned purge_collect_locked(struct purge_job *jobs, unsigned max, uint64_t now, int force)
{
	unsigned n = 0;
	for (struct arena **pp = &nonfull; *pp && n < max;) {
		struct arena *a = *pp;
		if (!a->dirty_mask || (!force && now - a->aged_ms < hg_opt.decay_ms)) {
			pp = &a->next;
			continue;
		}
		uint64_t due = force || !hg_opt.decay_ms ? a->dirty_mask : a->aged_mask;
		if (a->huge)
			due = huge_page_purge(due, a->free_mask); /* may add clean slices */
		int whole = a->free_mask == ~0ull && !(a->dirty_mask & ~due) && !a->from_brk;
		a->aged_mask = a->dirty_mask & ~due;
		a->aged_ms = now;
		if (!due) {
			pp = &a->next;
			continue;
		}
		if (whole && a->huge) /* about to be unmapped: off the list */
			for (struct arena **h = &huge_arenas_list; *h; h = &(*h)->huge_next)
				if (*h == a) {
					*h = a->huge_next;
					break;
				}
		jobs[n] = (struct purge_job){ a, due, whole };
		a->free_mask = jobs[n].unmap ? 0 : a->free_mask & ~due;
		a->dirty_mask &= ~due;
		n++;
		if (!a->free_mask)
			*pp = a->next; /* nothing free while the pages are handed back */
		else
			pp = &a->next;
	}
	return n;
}

/* Gives back the arenas' dirty slices that are due (all of them when forced); the bytes. */
static size_t purge_arenas(uint64_t now, int force)
{
	int saved = errno;
	struct purge_job jobs[64];
	unsigned n;
	size_t bytes = 0;
	do {
		hg_lock(&central_lock);
		__atomic_store_n(&last_purge_ms, now, __ATOMIC_RELAXED);
		n = purge_collect_locked(jobs, 64, now, force);
		hg_unlock(&central_lock);
		/* The system calls run unlocked: the slices are in no free mask meanwhile. */
		for (unsigned j = 0; j < n; j++) {
			struct arena *a = jobs[j].arena;
			if (jobs[j].unmap) {
				hg_pagemap_set(a->base, ARENA_BYTES, NULL);
				hg_os_unmap(a->base, ARENA_BYTES);
				bytes += ARENA_BYTES;
				continue;
			}
			bytes += (size_t)__builtin_popcountll(jobs[j].mask) * HG_SLICE_BYTES;
			for (uint64_t m = jobs[j].mask; m;) {
				unsigned i = (unsigned)__builtin_ctzll(m);
				uint64_t rest = ~(m >> i);
				unsigned len = rest ? (unsigned)__builtin_ctzll(rest) : 64 - i;
				hg_os_purge(a->base + (size_t)i * HG_SLICE_BYTES, (size_t)len * HG_SLICE_BYTES);
				m &= ~hg_bit_run(len, i);
			}
		}
		hg_lock(&central_lock);
		for (unsigned j = 0; j < n; j++) {
			struct arena *a = jobs[j].arena;
			if (jobs[j].unmap) {
				meta_free_locked((struct hg_span *)a); /* its record from hg_meta_new */
				continue;
			}
			if (!a->free_mask) {
				a->next = nonfull;
				nonfull = a;
			}
			a->free_mask |= jobs[j].mask;
		}
		hg_unlock(&central_lock);
	} while (n == 64);
	errno = saved;
	return bytes;
}

/* When forced (malloc_trim, an address-space limit), arenas from the break with every slice
 * free go back: from its top by lowering it, one after another (glibc trims its heap's top
 * too), and below a busy one (a block of stdout's buffer made last) by unmapping them, a hole
 * the break does not mind. Kept, they left a program under a limit that had freed everything
 * unable to get one large block. The bytes given back. */
static size_t brk_trim(void)
{
	size_t bytes = 0;
	for (;;) {
		struct arena *a = NULL, **at = NULL;
		hg_lock(&central_lock);
		for (struct arena **pp = &nonfull; *pp; pp = &(*pp)->next) /* the highest one free */
			if ((*pp)->from_brk && (*pp)->free_mask == ~0ull && (!a || (*pp)->base > a->base)) {
				a = *pp;
				at = pp;
			}
		if (a)
			*at = a->next; /* off the list: no slice of it can be taken meanwhile */
		hg_unlock(&central_lock);
		if (!a)
			return bytes;
		hg_pagemap_set(a->base, ARENA_BYTES, NULL);
		hg_lock(&brk_lock);
		if (!hg_os_brk_trim(a->base, ARENA_BYTES))
			hg_os_unmap(a->base, ARENA_BYTES);
		hg_unlock(&brk_lock);
		hg_lock(&central_lock);
		meta_free_locked((struct hg_span *)a);
		hg_unlock(&central_lock);
		bytes += ARENA_BYTES;
	}
}

size_t hg_central_purge(int force)
{
	uint64_t now = hg_os_now_ms();
	size_t bytes = purge_arenas(now, force);
	if (force && hg_opt.backend == HG_BACKEND_BRK)
		bytes += brk_trim();
	return bytes + hg_large_purge(now, force);
}

/* A small span's blocks in use: those handed out (below `extended`) whose bit is clear in
 * both bitmaps. Read without the owner's lock: a count, not a snapshot. */
static size_t span_in_use(struct hg_span *s)
{
	struct hg_span_remote *r = s->remote;
	uint32_t extended = hg_span_extended(s);
	size_t out = extended;
	for (uint32_t w = 0; w < s->nwords && w * 64u < extended; w++) {
		uint64_t bits = __atomic_load_n(&s->bits[w], __ATOMIC_RELAXED) |
				atomic_load_explicit(&r->words[w], memory_order_relaxed);
		uint32_t below = extended - w * 64u;
		out -= (size_t)__builtin_popcountll(below >= 64 ? bits : bits & hg_bit_run(below, 0));
	}
	return out * s->size;
}

size_t hg_central_in_use(void)
{
	size_t bytes = 0;
	const struct hg_span *last = NULL;
	for (size_t t = 0; t < (1u << HG_MAP_TOP_BITS); t++) {
		struct hg_span **leaf = __atomic_load_n(&hg_pagemap_top[t], __ATOMIC_ACQUIRE);
		for (size_t i = 0; leaf && i < (1u << HG_MAP_LEAF_BITS); i++) {
			struct hg_span *s = __atomic_load_n(&leaf[i], __ATOMIC_RELAXED);
			if (!s || s == last || s->owner == HG_OWNER_FREED)
				continue;
			last = s; /* a span covers its slices in a row */
			if (s->owner == HG_OWNER_LARGE)
				bytes += s->state == HG_SPAN_LARGE ? s->bytes : 0;
			else
				bytes += span_in_use(s);
		}
	}
	return bytes;
}

void hg_central_fork_prepare(void)
{
	hg_lock(&brk_lock);
	hg_lock(&central_lock);
}

void hg_central_fork_parent(void)
{
	hg_unlock(&central_lock);
	hg_unlock(&brk_lock);
}

void hg_central_fork_child(void)
{
	hg_lock_reset(&central_lock);
	hg_lock_reset(&brk_lock);
}
