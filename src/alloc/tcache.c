/* tcache.c — thread caches: slow paths of malloc and free, cross-thread frees, thread exit, fork. */
#include "alloc/tcache.h"

#include <errno.h>
#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <sched.h>
#include <sys/auxv.h>

#include "base/fmt.h"
#include "base/lock.h"
#include "os/os.h"

struct hg_span hg_empty_span; /* no free bit: the fast path always misses on it */
struct hg_tcache hg_empty_tcache = { .cur = { [0 ... HG_NCLASSES - 1] = &hg_empty_span },
				     .last = &hg_empty_span };
__thread struct hg_tcache *hg_tc = &hg_empty_tcache;

static hg_lock_t tc_lock = HG_LOCK_INIT;
static struct hg_tcache *tc_all, *tc_pool;
static struct hg_tcache *tc_orphans; /* under tc_lock: see pool_dead_orphans */
static __thread int tc_exited;       /* this thread's exit (its key destructor) ran */
static pthread_key_t tc_key;
/* Caches made: the most threads alive at once. Past this many, no huge pages (span.h). */
static unsigned tc_made;
#define HUGE_PAGES_THREADS_MAX 16

/* ---------------- span lists ---------------- */

/* At the tail: the slow path takes the head, the span that became AVAIL longest ago, which
 * has had the most time to gather free blocks. At the head, a FULL span that had just
 * crossed its refill mark (one free block of a span of 16) came next, and random sizes
 * took the slow path for one malloc in three. */
static void avail_push(struct hg_tcache *tc, struct hg_span *s)
{
	unsigned c = s->cls;
	hg_span_set_state(s, HG_SPAN_AVAIL);
	s->next = NULL;
	s->prev = tc->avail_tail[c];
	if (s->prev)
		s->prev->next = s;
	else
		tc->avail[c] = s;
	tc->avail_tail[c] = s;
}

static void avail_unlink(struct hg_tcache *tc, struct hg_span *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		tc->avail[s->cls] = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		tc->avail_tail[s->cls] = s->prev;
}

/* Only the owner releases its spans, so only its `last` can point at one. */
static void span_release(struct hg_tcache *tc, struct hg_span *s)
{
	if (tc->last == s)
		tc->last = &hg_empty_span;
	hg_span_release(s, 0);
}

/* Before a span's release: takes it from `listed` (1: held or taken off the list; 0: on no
 * list) to unlisted with the next generation. 0 when a free from another thread listed it
 * first: it stays, and comes back through the remote list. */
static int span_retire(struct hg_span *s, uint32_t listed)
{
	struct hg_span_remote *r = hg_span_remote(s);
	uint32_t st = atomic_load_explicit(&r->state, memory_order_relaxed);
	return (st & 1u) == listed &&
	       atomic_compare_exchange_strong_explicit(&r->state, &st, (st | 1u) + 1u, memory_order_acq_rel,
						       memory_order_relaxed);
}

void hg_span_settle(struct hg_span *s)
{
	struct hg_tcache *tc = s->owner;
	if (s->state == HG_SPAN_FULL) {
		if (s->live > hg_span_refill_live(s))
			return;
		avail_push(tc, s);
	}
	if (s->live == 0 && s->state == HG_SPAN_AVAIL && span_retire(s, 0)) {
		avail_unlink(tc, s);
		span_release(tc, s);
	}
}

/* Moves the bits other threads published in s's remote words to its own; returns how many.
 * Sequentially consistent against the unlisting before it (free_remote says why). */
static int32_t take_remote_words(struct hg_span *s)
{
	struct hg_span_remote *r = hg_span_remote(s);
	int32_t freed = 0;
	for (uint32_t w = 0; w < s->nwords; w++) {
		if (!atomic_load_explicit(&r->words[w], memory_order_seq_cst))
			continue;
		uint64_t x = atomic_exchange_explicit(&r->words[w], 0, memory_order_acquire);
		if (x & s->bits[w]) {
			uint32_t i = w * 64 + (uint32_t)__builtin_ctzll(x & s->bits[w]);
			hg_fatal("free", "double free", s->start + (size_t)i * s->size, NULL, 0);
		}
		s->bits[w] |= x;
		s->nonempty |= 1ull << w;
		freed += __builtin_popcountll(x);
	}
	return freed;
}

/* A CUR span is held: its listed bit stays set while it is on no list, so a free from another
 * thread publishes its bit and returns without pushing the span onto this thread's list (a
 * contended compare-and-swap that the owner's next collect undid: xthread pushed a span for
 * one free in four). The owner reads a held span's words itself when the span runs dry and
 * when it leaves CUR. A span taken while on the list is held by the collect that takes it
 * off. */
static void span_hold(struct hg_span *s)
{
	uint32_t old = atomic_fetch_or_explicit(&hg_span_remote(s)->state, 1u, memory_order_acq_rel);
	s->held = !(old & 1u);
}

/* Before s leaves CUR: once its listed bit is clear, other threads' frees list it again, and
 * the bits published before that are taken here. */
static void span_unhold(struct hg_span *s)
{
	if (!s->held)
		return;
	s->held = 0;
	atomic_fetch_and_explicit(&hg_span_remote(s)->state, ~1u, memory_order_seq_cst);
	take_remote_words(s);
}

/* Takes back the blocks other threads freed into tc's listed spans; the caller holds its
 * list (sweeping) and is its owner, or tc is in the pool. */
static void collect_held(struct hg_tcache *tc)
{
	struct hg_span *s = atomic_exchange_explicit(&tc->remote_head, NULL, memory_order_acquire);
	atomic_store_explicit(&tc->collects, tc->collects + 1, memory_order_relaxed);
	while (s) {
		struct hg_span_remote *r = hg_span_remote(s);
		struct hg_span *next = r->next;
		if (s->state == HG_SPAN_CUR)
			s->held = 1; /* off the list, its listed bit kept */
		else
			atomic_fetch_and_explicit(&r->state, ~1u, memory_order_seq_cst);
		int32_t freed = take_remote_words(s);
		if (freed && s->state != HG_SPAN_CUR) {
			s->live -= freed;
			hg_span_settle(s);
		}
		s = next;
	}
}

/* The owner's collection; 0 when another thread is sweeping the list (reclaim_freed_spans),
 * and the blocks wait for a later slow path. */
static int collect_remote(struct hg_tcache *tc)
{
	if (atomic_exchange_explicit(&tc->sweeping, 1, memory_order_acquire))
		return 0;
	collect_held(tc);
	atomic_store_explicit(&tc->sweeping, 0, memory_order_release);
	return 1;
}

/* A cache in the pool has no thread to take back what other threads free into its spans,
 * and they stayed resident until a new thread adopted it (workers that handed 64 MiB of
 * blocks to main and exited: all of it resident 4 s after main freed them). So the thread
 * whose free listed a span of a pooled cache collects for it. An adopting thread first clears
 * `pooled`, then waits for the list (tcache_attach); a collector takes the list, then tests
 * `pooled`: sequentially consistent both, one of them sees the other. A collector that finds
 * the list taken leaves the spans to the sweeper, whose walk may have begun before they came:
 * they wait for the next free, the adoption or malloc_trim. */
static void collect_pooled(struct hg_tcache *tc)
{
	while (atomic_load_explicit(&tc->pooled, memory_order_relaxed) &&
	       atomic_load_explicit(&tc->remote_head, memory_order_relaxed)) {
		if (atomic_exchange_explicit(&tc->sweeping, 1, memory_order_seq_cst))
			return;
		int pooled = atomic_load_explicit(&tc->pooled, memory_order_seq_cst);
		if (pooled)
			collect_held(tc);
		atomic_store_explicit(&tc->sweeping, 0, memory_order_release);
		if (!pooled)
			return;
	}
}

/* ---------------- spans freed entirely by other threads ---------------- */

static _Atomic int reclaim_busy; /* one sweeper at a time; fork waits for it */

/* Every block of s was freed by other threads. Acquire: the owner's last change of s->state
 * came before it handed out those blocks, so a test of the state after this one sees it. */
static int span_remote_full(struct hg_span *s)
{
	struct hg_span_remote *r = hg_span_remote(s);
	for (uint32_t w = 0; w < s->nwords; w++) {
		uint32_t left = s->capacity - w * 64;
		if (atomic_load_explicit(&r->words[w], memory_order_acquire) != hg_bit_run(left < 64 ? left : 64, 0))
			return 0;
	}
	return 1;
}

/* Only the owner takes back its remote frees, so a thread that stops allocating (one waiting
 * in pthread_join while workers free what it allocated) would keep those spans resident for
 * good. A thread about to take a new span first sweeps the remote lists of caches whose
 * owner has not collected since the last sweep came by, for FULL spans whose every block
 * other threads freed: their owner holds no block of them and has them on no list, so with
 * its list held (sweeping) they can be released from here. */
static void sweep_cache(struct hg_tcache *self, struct hg_tcache *o)
{
	uint32_t collects = atomic_load_explicit(&o->collects, memory_order_relaxed);
	int busy_owner = collects != o->collects_swept;
	o->collects_swept = collects;
	if (o == self || busy_owner || !atomic_load_explicit(&o->remote_head, memory_order_relaxed) ||
	    atomic_exchange_explicit(&o->sweeping, 1, memory_order_acquire))
		return;
	struct hg_span *s = atomic_exchange_explicit(&o->remote_head, NULL, memory_order_acquire);
	struct hg_span *keep = NULL, *tail = NULL;
	while (s) {
		struct hg_span_remote *r = hg_span_remote(s);
		struct hg_span *next = r->next;
		if (span_remote_full(s) && __atomic_load_n(&s->state, __ATOMIC_RELAXED) == HG_SPAN_FULL &&
		    __atomic_load_n(&o->last, __ATOMIC_RELAXED) != s && span_retire(s, 1)) {
			hg_span_release(s, 0);
		} else {
			r->next = keep;
			keep = s;
			tail = tail ? tail : s;
		}
		s = next;
	}
	if (keep) {
		struct hg_span *head = atomic_load_explicit(&o->remote_head, memory_order_relaxed);
		do
			hg_span_remote(tail)->next = head;
		while (!atomic_compare_exchange_weak_explicit(&o->remote_head, &head, keep, memory_order_release,
							      memory_order_relaxed));
	}
	atomic_store_explicit(&o->sweeping, 0, memory_order_release);
}

/* A sweep visits SWEEP_CACHES caches, from where the last one stopped (the list's head after
 * its end): every cache that ever was stays listed, and after 10,000 threads had run at once
 * each new span walked them all (a loop of 64 KiB mallocs took 2.2 s, 0.4 s under glibc). */
#define SWEEP_CACHES 32
static struct hg_tcache *sweep_next; /* under reclaim_busy; NULL: the head */

static void reclaim_freed_spans(struct hg_tcache *self)
{
	if (atomic_exchange_explicit(&reclaim_busy, 1, memory_order_acquire))
		return;
	struct hg_tcache *o = sweep_next ? sweep_next : __atomic_load_n(&tc_all, __ATOMIC_ACQUIRE);
	for (unsigned i = 0; i < SWEEP_CACHES && o; i++, o = o->all_next)
		sweep_cache(self, o);
	sweep_next = o;
	atomic_store_explicit(&reclaim_busy, 0, memory_order_release);
}

/* A free from a thread that does not own the span: publish the bit, then make sure the span
 * is listed. The block is live until the bit is published, so the span cannot go before;
 * after, the owner may take the bit and release the span, and its record may serve another
 * span: the generation read before publishing tells, and the state word is all that is
 * touched then. One atomic operation when the span is listed already, as a CUR one is. */
static void free_remote(struct hg_span *s, void *p, uint32_t idx, const char *func)
{
	struct hg_span_remote *r = hg_span_remote(s);
	uint64_t bit = 1ull << (idx % 64);
	/* Its owner freed it, or took back an earlier free of it: the block is free. A block the
	 * owner handed out again has its bit clear before the program could pass it here. */
	if (__atomic_load_n(&s->bits[idx / 64], __ATOMIC_RELAXED) & bit)
		hg_fatal(func, "double free", p, NULL, 0);
	uint32_t gen = atomic_load_explicit(&r->state, memory_order_relaxed) | 1u;
	struct hg_tcache *o = s->owner;
	if (atomic_fetch_or_explicit(&r->words[idx / 64], bit, memory_order_seq_cst) & bit)
		hg_fatal(func, "double free", p, NULL, 0);
	/* The owner unlists a span before it takes its words, so a listed state read after the
	 * bit went out means the owner's next take sees the bit (both sequentially consistent). */
	uint32_t st = atomic_load_explicit(&r->state, memory_order_seq_cst);
	do
		if ((st | 1u) != gen || (st & 1u))
			return; /* listed, or released since */
	while (!atomic_compare_exchange_weak_explicit(&r->state, &st, st | 1u, memory_order_seq_cst,
						      memory_order_relaxed));
	struct hg_span *head = atomic_load_explicit(&o->remote_head, memory_order_relaxed);
	do
		r->next = head;
	while (!atomic_compare_exchange_weak_explicit(&o->remote_head, &head, s, memory_order_release,
						      memory_order_relaxed));
	if (atomic_load_explicit(&o->pooled, memory_order_relaxed))
		collect_pooled(o);
}

/* p lies in the slices of a freed block that had slices of its own: its start is freed a second
 * time, any other address never was a block's. Its first slice, found going back, bounds it. */
static __attribute__((noreturn, cold)) void free_in_freed_block(void *p, const char *func)
{
	const uintptr_t slice = HG_SLICE_BYTES, max = HG_MEDIUM_MAX_BYTES;
	uintptr_t start = (uintptr_t)p & ~(slice - 1), end;
	while (hg_pagemap_get(start) == &hg_freed_block_rest && (uintptr_t)p - start < max)
		start -= slice;
	if (hg_pagemap_get(start) != &hg_freed_block) /* its first slice serves another span now */
		hg_fatal(func, "invalid free", p, NULL, 0);
	if ((uintptr_t)p == start)
		hg_fatal(func, "double free", p, NULL, 0);
	for (end = start + slice; hg_pagemap_get(end) == &hg_freed_block_rest && end - start < max; end += slice)
		;
	hg_fatal(func, "invalid free", p, (void *)start, end - start);
}

void hg_free_slow(struct hg_span *s, void *p, uint32_t idx, const char *func)
{
	size_t off = (size_t)((char *)p - s->start);
	if (s == &hg_freed_block || s == &hg_freed_block_rest)
		free_in_freed_block(p, func);
	/* Slices of a span of small blocks that no span holds: p was a block's start, or inside
	 * one. Every block starts on 16 bytes, so a pointer off them never was one; on them,
	 * nothing tells. */
	if (s->owner == HG_OWNER_FREED)
		hg_fatal(func, (uintptr_t)p % 16 ? "invalid free" : "double free", p, NULL, 0);
	if (s->owner == HG_OWNER_LARGE) {
		hg_large_free(s, p, func);
		return;
	}
	uint32_t extended = hg_span_extended(s);
	if ((size_t)idx * s->size != off || idx >= extended) {
		size_t i = off / s->size;
		hg_fatal(func, "invalid free", p, i < extended ? s->start + i * s->size : NULL, s->size);
	}
	if (s->owner == hg_tc)
		hg_fatal(func, "double free", p, NULL, 0);
	free_remote(s, p, idx, func);
}

/* ---------------- allocation slow path ---------------- */

static void thread_exit(void *arg);
static void pool_dead_orphans(void);

/* Gives this thread a cache: an abandoned one if any (with its spans), else a new one. */
static struct hg_tcache *tcache_attach(void)
{
	hg_init();
	pool_dead_orphans();
	hg_lock(&tc_lock);
	struct hg_tcache *tc = tc_pool;
	if (tc)
		tc_pool = tc->pool_next;
	hg_unlock(&tc_lock);
	if (!tc) {
		tc = hg_os_map(hg_align_up(sizeof *tc, HG_OS_PAGE_BYTES), HG_OS_PAGE_BYTES);
		if (!tc)
			return NULL;
		for (unsigned c = 0; c < HG_NCLASSES; c++)
			tc->cur[c] = &hg_empty_span;
		tc->last = &hg_empty_span;
		hg_lock(&tc_lock);
		tc->all_next = tc_all;
		__atomic_store_n(&tc_all, tc, __ATOMIC_RELEASE); /* reclaim_freed_spans reads it unlocked */
		int many = ++tc_made == HUGE_PAGES_THREADS_MAX + 1;
		hg_unlock(&tc_lock);
		if (many && hg_arena_huge_pages)
			hg_arena_small_pages();
	}
	if (tc_exited) { /* a destructor after ours: maybe in the last round */
		hg_lock(&tc_lock);
		tc->orphan_tid = hg_os_thread_id();
		tc->orphan_next = tc_orphans;
		tc_orphans = tc;
		hg_unlock(&tc_lock);
	}
	/* Now ours: a collector of the pool's (collect_pooled) finishes first. */
	atomic_store_explicit(&tc->pooled, 0, memory_order_seq_cst);
	while (atomic_exchange_explicit(&tc->sweeping, 1, memory_order_seq_cst))
		sched_yield();
	atomic_store_explicit(&tc->sweeping, 0, memory_order_release);
	hg_tc = tc;
	pthread_setspecific(tc_key, tc); /* may call malloc: this thread has its cache already */
	return tc;
}

/* Every this many bitmap words a thread's mallocs empty, the central heap's decay gets a
 * look at the clock: a program that went on allocating from its current spans after freeing
 * its peak took no other slow path, and kept the peak resident for good (64 MiB freed, then
 * 64 blocks of 48 bytes taken and freed in a loop: 68 MB after 4 s; glibc, jemalloc,
 * tcmalloc and mimalloc kept it too). */
#define DECAY_EVERY_WORDS 64

void *hg_alloc_word_emptied(struct hg_span *s, uint32_t i, uint64_t w)
{
	s->nonempty &= ~(1ull << i);
	/* Now and then: blocks other threads freed are taken back before new ones are used. */
	struct hg_tcache *tc = hg_tc;
	if (atomic_load_explicit(&tc->remote_head, memory_order_relaxed))
		collect_remote(tc);
	if (++tc->words_emptied % DECAY_EVERY_WORDS == 0)
		hg_central_tick(hg_os_now_ms());
	return hg_span_block(s, i, w);
}

/* Flags every word that has a free block; 0 when the span has none. */
static uint64_t span_flag_words(struct hg_span *s)
{
	uint64_t words = 0;
	for (uint32_t w = 0; w < s->nwords; w++)
		words |= (uint64_t)(s->bits[w] != 0) << w;
	return s->nonempty = words;
}

#define EXTEND_BYTES 4096 /* a CUR span gets free bits for about a page of blocks at a time */

/* Gives blocks [extended, upto) of s their free bits; 0 when there were none to give. Only
 * bits change: the blocks' pages are touched when the program uses them. */
static int span_extend(struct hg_span *s, uint32_t upto)
{
	uint32_t from = s->extended;
	if (upto > s->capacity)
		upto = s->capacity;
	if (from >= upto)
		return 0;
	for (uint32_t w = from / 64; w * 64 < upto; w++) {
		uint32_t lo = w * 64 > from ? 0 : from % 64, hi = upto - w * 64 >= 64 ? 64 : upto % 64;
		s->bits[w] |= hg_bit_run(hi - lo, lo);
		s->nonempty |= 1ull << w;
	}
	__atomic_store_n(&s->extended, upto, __ATOMIC_RELAXED);
	s->limit = (size_t)upto * s->size;
	return 1;
}

/* The next page's worth of blocks of a CUR span that has no free block left. */
static int span_extend_page(struct hg_span *s)
{
	return span_extend(s, s->extended + (EXTEND_BYTES + s->size - 1) / s->size);
}

/* Pops the lowest free block of a span with a flagged word, as the fast path does. */
static void *span_pop(struct hg_span *s)
{
	uint32_t i = (uint32_t)__builtin_ctzll(s->nonempty);
	uint64_t w = s->bits[i], rest = w & (w - 1);
	s->bits[i] = rest;
	if (!rest)
		s->nonempty &= ~(1ull << i);
	return hg_span_block(s, i, w);
}

#define BIG_BLOCK 4096 /* spans of blocks this large hold at most 64: their bits fit in bits[0] */

/* The current spans of large blocks that sat entirely free since the last look go back to
 * the arenas: each is 64-256 KiB, and a program that grows strings by exact-size realloc
 * passes through every class and kept one resident for each (bench realloc: 75.5 -> 67.8 MB).
 * A span found free but flagged may be in use, its blocks freed between the program's
 * mallocs: it loses its flags, so that its next malloc takes the slow path and flags it
 * again, and it stays until a look finds it unflagged. Releasing every free one at once sent
 * blocks of 4-8 KiB passed between threads through the central heap at each new span
 * (xthread, 2 threads: 0.25 -> 0.38 s). The caller is about to take a new span for class
 * `except`; a look comes with every LOOK_EVERY-th new span of the thread. With a look at
 * every new span, a thread that allocates one 4-8 KiB block in 16 across ~24 classes
 * (xthread at 1 thread) released and remade a span every 35 blocks, through the central
 * heap's lock: a class it used once in a few hundred blocks looked unused between looks. */
#define LOOK_EVERY 8

static void release_idle_cur_spans(struct hg_tcache *tc, unsigned except)
{
	if (++tc->new_spans % LOOK_EVERY)
		return;
	for (unsigned c = 0; c < HG_NCLASSES; c++) {
		struct hg_span *s = tc->cur[c];
		if (hg_classes[c].size < BIG_BLOCK || c == except || s == &hg_empty_span)
			continue;
		if (s->held) /* blocks other threads freed count as free here too */
			take_remote_words(s);
		if ((uint32_t)__builtin_popcountll(s->bits[0]) != s->extended)
			continue;
		/* On no list: held, or not listed at all. */
		if ((atomic_load_explicit(&hg_span_remote(s)->state, memory_order_relaxed) & 1u) != s->held)
			continue;
		if (s->nonempty) {
			s->nonempty = 0;
			continue;
		}
		if (!span_retire(s, s->held))
			continue;
		s->held = 0;
		tc->cur[c] = &hg_empty_span;
		span_release(tc, s);
	}
}

/* The current span has no free block left, after other threads' frees came back: its fresh
 * blocks come next, then another span's free ones, then a new span. */
static void *alloc_small_slow(struct hg_tcache *tc, unsigned c)
{
	if (atomic_load_explicit(&tc->remote_head, memory_order_relaxed))
		collect_remote(tc);
	struct hg_span *s = tc->cur[c];
	if (s != &hg_empty_span) {
		if (s->held)
			take_remote_words(s);
		if (span_flag_words(s) || span_extend_page(s))
			return span_pop(s);
		span_unhold(s);
		if (span_flag_words(s))
			return span_pop(s);
		hg_span_set_state(s, HG_SPAN_FULL);
		s->live = (int32_t)s->capacity; /* no free bit: every block is out */
	}
	hg_central_tick(hg_os_now_ms());
	while ((s = tc->avail[c])) {
		avail_unlink(tc, s);
		if (span_flag_words(s))
			break;
		hg_span_set_state(s, HG_SPAN_FULL); /* its last free blocks went to the program before an exit */
	}
	if (!s) {
		release_idle_cur_spans(tc, c);
		reclaim_freed_spans(tc);
		if (!(s = hg_span_new(c, tc))) {
			tc->cur[c] = &hg_empty_span;
			errno = ENOMEM;
			return NULL;
		}
		span_extend_page(s);
	}
	hg_span_set_state(s, HG_SPAN_CUR);
	span_hold(s);
	tc->cur[c] = s;
	return span_pop(s);
}

void *hg_alloc_slow(size_t n)
{
	if (n > HG_SMALL_MAX_BYTES)
		return hg_large_alloc(n, 0, 0);
	struct hg_tcache *tc = hg_tc;
	if (unlikely(tc == &hg_empty_tcache) && !(tc = tcache_attach())) {
		errno = ENOMEM;
		return NULL;
	}
	return alloc_small_slow(tc, hg_size_class(n));
}

void *hg_alloc_aligned(size_t align, size_t n)
{
	if (align <= 16)
		return hg_alloc(n);
	if (n <= HG_SMALL_MAX_BYTES && align <= HG_SLICE_BYTES) {
		/* Spans start on a 64 KiB boundary: a class whose size is a multiple of align
		 * has every block aligned. The power-of-two classes guarantee one exists. */
		for (unsigned c = hg_size_class(n); c < HG_NCLASSES; c++)
			if (hg_classes[c].size % align == 0)
				return hg_alloc(hg_classes[c].size);
	}
	return hg_large_alloc(n, align, 0);
}

struct hg_span *hg_block_of(const void *p, size_t *usable)
{
	struct hg_span *s = hg_pagemap_get((uintptr_t)p);
	if (!s)
		return NULL;
	size_t off = (size_t)((const char *)p - s->start);
	if (s->owner == HG_OWNER_LARGE) {
		*usable = s->bytes;
		return off == 0 && s->state == HG_SPAN_LARGE ? s : NULL;
	}
	uint32_t idx = (uint32_t)((off * s->recip) >> 32);
	if ((size_t)idx * s->size != off || idx >= hg_span_extended(s))
		return NULL;
	/* Another thread may own the span: the words are read relaxed, and a live block's bit
	 * cannot change under us in a valid program. */
	uint64_t bit = 1ull << (idx % 64);
	if ((__atomic_load_n(&s->bits[idx / 64], __ATOMIC_RELAXED) |
	     atomic_load_explicit(&hg_span_remote(s)->words[idx / 64], memory_order_relaxed)) & bit)
		return NULL;
	*usable = s->size;
	return s;
}

size_t hg_usable_size(const void *p)
{
	size_t n = 0;
	return hg_block_of(p, &n) ? n : 0;
}

/* ld.so's image: its start-up allocator hands out memory there before ours is bound, and
 * such a pointer can reach free() in a valid program. */
static uintptr_t ldso_start, ldso_end;

int hg_is_ldso_pointer(const void *p)
{
	return (uintptr_t)p >= ldso_start && (uintptr_t)p < ldso_end;
}

void hg_free_unknown(void *p, const char *func)
{
	if (!p || hg_is_ldso_pointer(p))
		return;
	hg_fatal(func, hg_large_freed_start(p) ? "double free" : "invalid free", p, NULL, 0);
}

void (*hg_free_hook)(const void *p);

void hg_free_hooked(void *p, const char *func)
{
	hg_free_hook(p);
	hg_free_mapped(hg_tc, p, func, 0);
}

/* ---------------- thread exit and fork ---------------- */

/* A cache's thread is done with it: empty spans go back to the central heap, the rest wait with
 * it in the pool for the next thread, which adopts the whole cache. */
static void retire_spans(struct hg_tcache *tc)
{
	while (!collect_remote(tc))
		sched_yield(); /* a sweep holds the list for a moment */
	for (unsigned c = 0; c < HG_NCLASSES; c++) {
		struct hg_span *s = tc->cur[c];
		tc->cur[c] = &hg_empty_span;
		if (s != &hg_empty_span) {
			span_unhold(s);
			span_extend(s, s->capacity); /* off CUR every block has its bit */
			s->live = (int32_t)s->capacity;
			for (uint32_t w = 0; w < s->nwords; w++)
				s->live -= __builtin_popcountll(s->bits[w]);
			if (s->live == (int32_t)s->capacity)
				hg_span_set_state(s, HG_SPAN_FULL);
			else
				avail_push(tc, s);
		}
		for (s = tc->avail[c]; s;) {
			struct hg_span *next = s->next;
			if (s->live == 0 && span_retire(s, 0)) {
				avail_unlink(tc, s);
				span_release(tc, s);
			}
			s = next;
		}
	}
}

static void unlink_orphan_locked(struct hg_tcache *tc)
{
	for (struct hg_tcache **at = &tc_orphans; *at; at = &(*at)->orphan_next)
		if (*at == tc) {
			*at = tc->orphan_next;
			break;
		}
	tc->orphan_tid = 0;
}

static void pool(struct hg_tcache *tc)
{
	hg_lock(&tc_lock);
	if (tc->orphan_tid)
		unlink_orphan_locked(tc);
	tc->pool_next = tc_pool;
	tc_pool = tc;
	atomic_store_explicit(&tc->pooled, 1, memory_order_release);
	hg_unlock(&tc_lock);
	collect_pooled(tc); /* frees listed since the collection above */
}

/* Runs at thread exit, glibc's key destructor. */
static void thread_exit(void *arg)
{
	struct hg_tcache *tc = arg;
	tc_exited = 1;
	retire_spans(tc);
	hg_tc = &hg_empty_tcache;
	pool(tc);
}

/* glibc runs key destructors four rounds at most: a cache taken in the last one (a destructor
 * of the program's that allocates, and sets its key again, every round) had no exit to pool
 * it, and every such thread left one more cache out for good (16,000 threads: 74 MB, 18 s
 * where glibc took 1 s). Such caches are orphans of their thread; a thread taking a cache
 * pools those whose thread is gone (tgkill finds no such thread). */
static void pool_dead_orphans(void)
{
	if (!__atomic_load_n(&tc_orphans, __ATOMIC_RELAXED))
		return;
	struct hg_tcache *dead = NULL;
	hg_lock(&tc_lock);
	for (struct hg_tcache **at = &tc_orphans; *at;) {
		struct hg_tcache *o = *at;
		if (hg_os_thread_gone(o->orphan_tid)) {
			*at = o->orphan_next;
			o->orphan_tid = 0;
			o->orphan_next = dead;
			dead = o;
		} else {
			at = &o->orphan_next;
		}
	}
	hg_unlock(&tc_lock);
	while (dead) {
		struct hg_tcache *next = dead->orphan_next;
		retire_spans(dead);
		pool(dead);
		dead = next;
	}
}

void hg_tcache_trim(void)
{
	hg_lock(&tc_lock); /* no thread adopts a pooled cache meanwhile */
	for (struct hg_tcache *tc = tc_pool; tc; tc = tc->pool_next)
		collect_remote(tc); /* spans emptied by other threads' frees go back */
	hg_unlock(&tc_lock);
}

void hg_tcache_init(void)
{
	pthread_key_create(&tc_key, thread_exit);
	unsigned long base = getauxval(AT_BASE);
	if (base) {
		const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)base;
		const ElfW(Phdr) *ph = (const ElfW(Phdr) *)(base + eh->e_phoff);
		uintptr_t end = 0;
		for (unsigned i = 0; i < eh->e_phnum; i++)
			if (ph[i].p_type == PT_LOAD && ph[i].p_vaddr + ph[i].p_memsz > end)
				end = ph[i].p_vaddr + ph[i].p_memsz;
		ldso_start = base;
		ldso_end = hg_align_up(base + end, HG_OS_PAGE_BYTES);
	}
}

/* The pool's caches are held too: a collector of theirs (collect_pooled) may be changing one,
 * and the child adopts them. Before the central heap's lock, which such a collector takes. */
void hg_tcache_fork_prepare(void)
{
	hg_lock(&tc_lock);
	while (atomic_exchange_explicit(&reclaim_busy, 1, memory_order_acquire))
		sched_yield();
	for (struct hg_tcache *tc = tc_pool; tc; tc = tc->pool_next)
		while (atomic_exchange_explicit(&tc->sweeping, 1, memory_order_acquire))
			sched_yield();
}

void hg_tcache_fork_parent(void)
{
	for (struct hg_tcache *tc = tc_pool; tc; tc = tc->pool_next)
		atomic_store_explicit(&tc->sweeping, 0, memory_order_release);
	atomic_store_explicit(&reclaim_busy, 0, memory_order_release);
	hg_unlock(&tc_lock);
}

/* The child has one thread. The caches that other threads were using at the fork are left
 * unused for good: their threads take no lock on their fast and slow paths, so one may have
 * been copied halfway through a change (a list being relinked), and a thread that adopted it
 * handed out blocks still in use (1 child in 12 of a program forking while 8 threads
 * allocate). Their blocks stay valid; the memory their free blocks hold is the child's loss.
 * The pool's caches, whole since their threads exited, are still adopted. */
void hg_tcache_fork_child(void)
{
	hg_lock_reset(&tc_lock);
	tc_orphans = NULL; /* their threads' caches, as the others' */
	atomic_store_explicit(&reclaim_busy, 0, memory_order_relaxed);
	for (struct hg_tcache *tc = tc_all; tc; tc = tc->all_next)
		atomic_store_explicit(&tc->sweeping, 0, memory_order_relaxed); /* its thread is gone */
}
