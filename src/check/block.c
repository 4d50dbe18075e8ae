/* block.c — the out-of-band records of checked blocks: one slot per block in an array that
 * hangs off its span (or its guard class), found from any address inside it through the
 * allocator's page map. */
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#include "alloc/span.h"
#include "base/fmt.h"
#include "base/lock.h"
#include "base/options.h"
#include "check/check.h"
#include "check/table.h"
#include "os/os.h"

#define STRIPES 64                       /* locks, by the key's hash */
#define ARRAY_STEPS 8     /* array sizes per doubling of the record count */
#define ARRAY_CLASSES 88  /* arrays of 1, 2, ... 8, then 9, 10, ... 16, 18, 20 ... up to 8192 */
#define POOL_CHUNK_BYTES ((size_t)4 << 20)

/*
 * A block's record sits at a fixed place: slot i of its span's array (span->check_records),
 * or of its guard class's. Finding it costs the page-map lookup that finding the span costs
 * anyway, and half a cache line: a record is 32 bytes, and arrays are 64-byte aligned. (A
 * hash table keyed by the block walked chains of cold records: 30-45 % of check-mode time on
 * malloc-bound programs.) The place gives the block's core and the room the allocator gave
 * it, so the record stores neither (struct hgc_rec).
 *
 * A span gets its array at its first checked block, sized for its capacity; a span struct
 * used again for another size class keeps it when it is large enough, else swaps it for a
 * larger one. Arrays are never unmapped, and a record is cleared when its block goes back to
 * the allocator, so a reader with a stale span pointer reads a record whose key does not
 * match at worst, never a hole.
 *
 * Writers hold the lock of the key's stripe. Lookups, which every intercepted memcpy makes,
 * take no lock: they read the stripe's seq, copy the record, and retry when seq was odd or
 * moved (a seqlock). The odd seq is the writers' lock as well: one atomic operation per
 * write, where a mutex around the seqlock's two took four (a fifth of the table's
 * instructions, 4 % of a malloc-bound program's, in callgrind).
 */
struct stripe {
	_Atomic uint32_t seq;     /* odd while a writer holds the stripe */
	size_t live_blocks, live_bytes;
	size_t allocs, frees, allocated_bytes; /* totals, here rather than in shared atomics */
} __attribute__((aligned(64)));

struct array {
	struct array *all_next;   /* every array, for hgc_blocks_foreach */
	struct array *free_next;  /* unused arrays of one size */
	struct hg_span *span;     /* the span struct it hangs off (foreach finds the blocks so) */
	uint32_t slots;
	unsigned cls;
	char pad[64 - 3 * sizeof(void *) - 2 * sizeof(uint32_t)];
	struct hgc_rec recs[];    /* 64-byte aligned */
};
_Static_assert(sizeof(struct array) == 64, "records start on a cache line");
_Static_assert(sizeof(struct hgc_rec) == 32, "two records to a cache line");

static struct stripe stripes[STRIPES];
static hg_lock_t arrays_lock = HG_LOCK_INIT; /* all of the following */
static struct array *all_arrays, *free_arrays[ARRAY_CLASSES];
static char *pool_cursor, *pool_end;
#define POOL_CHUNKS_MAX 4096u /* 16 GiB of records: past that, chunks are not listed */
static char *pool_chunks[POOL_CHUNKS_MAX]; /* for hgc_record_ranges */
static unsigned pool_chunks_n;

static inline struct stripe *stripe_of(const char *core)
{
	uint64_t h = (uintptr_t)core >> 4;
	h ^= h >> 31;
	h *= 0xbf58476d1ce4e5b9ull;
	return &stripes[(h >> 40) & (STRIPES - 1)];
}

/* Makes seq odd. The holders' sections are a record's few stores, so a waiter spins briefly,
 * then yields: with more threads than cores the holder may be off its core. */
static void write_begin(struct stripe *st)
{
	for (unsigned spins = 0;; spins++) {
		uint32_t seq = atomic_load_explicit(&st->seq, memory_order_relaxed);
		if (!(seq & 1) && atomic_compare_exchange_weak_explicit(&st->seq, &seq, seq + 1, memory_order_acquire,
									 memory_order_relaxed))
			break;
		if (spins < 64)
			__builtin_ia32_pause();
		else
			sched_yield();
	}
	atomic_thread_fence(memory_order_release); /* seq odd before the record's stores */
}

static void write_end(struct stripe *st)
{
	atomic_store_explicit(&st->seq, atomic_load_explicit(&st->seq, memory_order_relaxed) + 1,
			      memory_order_release);
}

static void lock_all(void)
{
	for (unsigned s = 0; s < STRIPES; s++)
		write_begin(&stripes[s]);
}

static void unlock_all(void)
{
	for (unsigned s = 0; s < STRIPES; s++)
		write_end(&stripes[s]);
}

/* Array sizes step by an eighth of a power of two, so that an array holding a span's
 * capacity (585 blocks of 112 bytes, say) leaves at most an eighth unused: with sizes in
 * powers of two it was up to 3/4, and the pools sit on huge pages, resident whole (records
 * were 88 of python3's 216 MB in check mode). The smallest class of at least `slots`. */
static unsigned array_class(uint32_t slots)
{
	if (slots <= ARRAY_STEPS)
		return slots ? slots - 1 : 0;
	unsigned k = 31u - (unsigned)__builtin_clz(slots - 1); /* 2^k < slots <= 2^(k+1) */
	unsigned step_shift = k - 3;                           /* steps of 2^k / 8 */
	unsigned i = ((slots - (1u << k)) + (1u << step_shift) - 1) >> step_shift; /* 1..8 */
	return ARRAY_STEPS + (k - 3) * ARRAY_STEPS + i - 1;
}

static uint32_t array_class_slots(unsigned cls)
{
	if (cls < ARRAY_STEPS)
		return cls + 1;
	unsigned k = 3 + (cls - ARRAY_STEPS) / ARRAY_STEPS, i = (cls - ARRAY_STEPS) % ARRAY_STEPS + 1;
	return (1u << k) + (i << (k - 3));
}

/* An array of at least `slots` records, all clear; NULL when out of memory. Under arrays_lock. */
static struct array *array_new_locked(uint32_t slots)
{
	unsigned cls = array_class(slots);
	if (cls >= ARRAY_CLASSES)
		return NULL;
	struct array *a = free_arrays[cls];
	if (a) {
		free_arrays[cls] = a->free_next;
		return a;
	}
	size_t bytes = sizeof *a + sizeof(struct hgc_rec) * array_class_slots(cls);
	if (pool_cursor + bytes > pool_end) {
		pool_cursor = hg_os_map_huge(POOL_CHUNK_BYTES, !all_arrays); /* records are read at random */
		pool_end = pool_cursor ? pool_cursor + POOL_CHUNK_BYTES : NULL;
		if (!pool_cursor)
			return NULL;
		if (pool_chunks_n < POOL_CHUNKS_MAX)
			pool_chunks[pool_chunks_n++] = pool_cursor;
	}
	a = (struct array *)pool_cursor;
	pool_cursor += bytes;
	a->slots = array_class_slots(cls);
	a->cls = cls;
	a->all_next = all_arrays;
	all_arrays = a;
	return a;
}

/* A span's check_records word: the array with its slot count beside the address, so that a
 * lookup tests the count on the span's line rather than on the array's header, a line of its
 * own that most lookups missed (2 % of the samples of python3 via malloc in check mode). */
#define SLOTS_SHIFT 48
/* The largest array, 2^(3 + (ARRAY_CLASSES - ARRAY_STEPS) / ARRAY_STEPS) slots, and user
 * addresses below 2^48 (the page map's too) leave the top bits free. */
_Static_assert(3 + (ARRAY_CLASSES - ARRAY_STEPS) / ARRAY_STEPS < 64 - SLOTS_SHIFT, "slot count fits");

static inline struct array *records_array(uintptr_t w)
{
	return (struct array *)(w & (((uintptr_t)1 << SLOTS_SHIFT) - 1));
}

static inline uint32_t records_slots(uintptr_t w)
{
	return (uint32_t)(w >> SLOTS_SHIFT);
}

/* Gives span s an array with room for its `slots` blocks; returns block idx's record. Only
 * the span's owner allocates from it, but lookups from other threads may be reading its old
 * array: that one is cleared already (its blocks went back before the span was made again)
 * and only goes back to the free list. */
static HG_NOINLINE struct hgc_rec *attach(struct hg_span *s, uint32_t idx, uint32_t slots)
{
	hg_lock(&arrays_lock);
	struct array *old = records_array(atomic_load_explicit(&s->check_records, memory_order_relaxed));
	struct array *a = old;
	if (!a || a->slots < slots) {
		a = array_new_locked(slots);
		if (a) {
			if (old) {
				old->free_next = free_arrays[old->cls];
				free_arrays[old->cls] = old;
			}
			a->span = s;
			atomic_store_explicit(&s->check_records, (uintptr_t)a | (uintptr_t)a->slots << SLOTS_SHIFT,
					      memory_order_release);
		}
	}
	hg_unlock(&arrays_lock);
	return a && idx < a->slots ? &a->recs[idx] : NULL;
}

static inline uint32_t key_of(const char *core)
{
	return (uint32_t)((uintptr_t)core >> 4);
}

/* Room the allocator gave the block of a span: its class size, or a large block's mapping. */
static inline size_t span_room(const struct hg_span *s)
{
	return s->owner != HG_OWNER_LARGE && s->size ? s->size : s->bytes;
}

/* The key of the block whose extent may hold addr (its guard slot, or its core block found
 * through the page map), the room it has there, and the slot for its record; NULL when addr
 * is in no block's place. Another thread may be changing the span: a stale key only misses.
 * `create`: give the span an array when it has none large enough (else such a block has no
 * record: NULL). */
static struct hgc_rec *locate(const void *addr, char **key, size_t *room, int create)
{
	char *slot = unlikely(hg_opt.guard) ? hgc_guard_slot_of(addr) : NULL; /* no slots without it */
	if (slot) {
		*key = slot;
		return hgc_guard_record(slot, room);
	}
	struct hg_span *s = hg_pagemap_get((uintptr_t)addr);
	if (!s || s->owner == HG_OWNER_FREED || !s->start)
		return NULL;
	size_t off = (size_t)((const char *)addr - s->start);
	if (off >= s->bytes)
		return NULL;
	uint32_t idx = 0, slots = 1;
	if (s->owner != HG_OWNER_LARGE && s->size) {
		/* off / size without a division (a fifth of this function's time): the span's
		 * reciprocal is exact at block starts and at most one too high inside a block. */
		idx = (uint32_t)((off * s->recip) >> 32);
		idx -= (size_t)idx * s->size > off;
		slots = s->capacity;
		if (idx >= slots)
			return NULL;
	}
	*key = s->start + (size_t)idx * s->size;
	*room = span_room(s);
	/* Room for every block of the span, not just this one: an array too small for the span
	 * is one of an earlier use of the span struct, and is replaced before any of its slots
	 * is used again. */
	uintptr_t w = atomic_load_explicit(&s->check_records, memory_order_acquire);
	if (likely(slots <= records_slots(w)))
		return &records_array(w)->recs[idx];
	return create ? attach(s, idx, slots) : NULL;
}

/* The record r of the block at core with `room` bytes there, whole; 0 when r holds none. */
static int expand(const struct hgc_rec *r, char *core, size_t room, struct hgc_block *b)
{
	if (!r->state || r->key != key_of(core))
		return 0;
	b->core = core;
	b->user = core + r->left;
	b->size = r->size;
	b->core_bytes = r->guarded ? room : hgc_core_bytes(r->left, r->size, room); /* as alloc_block */
	b->alloc_stack = r->alloc_stack;
	b->free_stack = r->free_stack;
	b->alloc_thread = r->alloc_thread;
	b->free_thread = r->free_thread;
	b->state = (uint8_t)r->state;
	b->kind = (uint8_t)r->kind;
	b->call = (uint8_t)r->call;
	b->guarded = (uint8_t)r->guarded;
	b->reported = (uint8_t)r->reported;
	return 1;
}

static void pack(const struct hgc_block *b, struct hgc_rec *r)
{
	*r = (struct hgc_rec){ .key = key_of(b->core), .left = (uint32_t)(b->user - b->core),
			       .size = b->size, .state = b->state, .kind = b->kind,
			       .call = b->call, .guarded = b->guarded, .reported = b->reported,
			       .alloc_stack = b->alloc_stack, .free_stack = b->free_stack,
			       .alloc_thread = b->alloc_thread, .free_thread = b->free_thread };
}

struct hgc_slot hgc_table_find(const void *addr)
{
	struct hgc_slot at = { NULL, NULL, 0 };
	at.rec = locate(addr, &at.key, &at.room, 0);
	if (at.rec)
		__builtin_prefetch(at.rec, 1);
	return at;
}

int hgc_table_insert(const struct hgc_block *rec, struct hgc_slot at)
{
	char *key = at.key;
	size_t room;
	struct hgc_rec *r = at.rec && key == rec->core ? at.rec : locate(rec->core, &key, &room, 1);
	if (!r || key != rec->core)
		return 0;
	struct stripe *st = stripe_of(key);
	write_begin(st);
	pack(rec, r);
	st->live_blocks++;
	st->live_bytes += rec->size;
	st->allocs++;
	st->allocated_bytes += rec->size;
	write_end(st);
	return 1;
}

int hgc_table_update(struct hgc_slot at, int (*fn)(struct hgc_block *b, void *arg), void *arg)
{
	if (!at.rec)
		return fn(NULL, arg);
	struct stripe *st = stripe_of(at.key);
	struct hgc_block b;
	write_begin(st);
	int have = expand(at.rec, at.key, at.room, &b);
	int was_live = have && b.state == HGC_LIVE;
	int r = fn(have ? &b : NULL, arg);
	if (have) { /* the fields fn may change */
		at.rec->state = b.state & 3u;
		at.rec->reported = b.reported & 1u;
		at.rec->free_stack = b.free_stack;
		at.rec->free_thread = b.free_thread;
	}
	if (was_live && b.state != HGC_LIVE) {
		st->live_blocks--;
		st->live_bytes -= b.size;
		st->frees++;
	}
	write_end(st);
	return r;
}

int hgc_table_take(char *core, struct hgc_block *out)
{
	char *key;
	size_t room;
	struct hgc_rec *r = locate(core, &key, &room, 0);
	if (!r || key != core)
		return 0;
	struct stripe *st = stripe_of(core);
	write_begin(st);
	int have = expand(r, core, room, out);
	if (have)
		*r = (struct hgc_rec){ 0 };
	write_end(st);
	return have;
}

size_t hgc_table_room(const char *core)
{
	char *key;
	size_t room = 0;
	return locate(core, &key, &room, 0) && key == core ? room : 0;
}

/* A consistent copy of the record at at.rec, without the lock but when writers keep coming. */
static void copy_rec(struct hgc_slot at, struct hgc_rec *copy)
{
	struct stripe *st = stripe_of(at.key);
	for (int tries = 0; tries < 4; tries++) {
		uint32_t seq = atomic_load_explicit(&st->seq, memory_order_acquire);
		if (seq & 1)
			continue;
		*copy = *at.rec;
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&st->seq, memory_order_relaxed) == seq)
			return;
	}
	write_begin(st);
	*copy = *at.rec;
	write_end(st);
}

int hgc_table_read(struct hgc_slot at, struct hgc_block *out)
{
	if (!at.rec)
		return 0;
	struct hgc_rec copy;
	copy_rec(at, &copy);
	return expand(&copy, at.key, at.room, out);
}

int hgc_lookup(const void *addr, struct hgc_block *out)
{
	struct hgc_slot at = { NULL, NULL, 0 };
	at.rec = locate(addr, &at.key, &at.room, 0);
	return hgc_table_read(at, out) && (const char *)addr < out->core + out->core_bytes;
}

void hgc_check_access(const void *p, size_t n, int is_write, const char *func)
{
	if (!n || !hgc_ready || hgc_in_heap) /* a signal handler's call: records may be half written */
		return;
	if (hg_opt.guard_uninit) /* a library call's use is not the program's read of the bytes */
		hgc_guard_touch_range(p, n);
	struct hgc_block b;
	const char *a = p, *last = a + n - 1;
	struct hgc_slot at = { NULL, NULL, 0 };
	at.rec = locate(a, &at.key, &at.room, 0);
	if (at.rec) {
		/* Most accesses lie inside one live block: its record says so, not unpacked (half
		 * of this function's instructions on python3's memcpy calls). */
		struct hgc_rec r;
		copy_rec(at, &r);
		const char *user = at.key + r.left;
		if (r.state == HGC_LIVE && r.key == key_of(at.key) && a >= user && last < user + r.size)
			return;
		if (!(expand(&r, at.key, at.room, &b) && a < b.core + b.core_bytes) && !hgc_lookup(last, &b))
			return;
	} else if (!hgc_lookup(last, &b) &&
		   !(unlikely(atomic_load_explicit(&hgc_vacated_live, memory_order_relaxed)) &&
		     hgc_vacated_use(a, &b, NULL) == 2)) { /* a moved or freed block's place: open now */
		return;
	}
	const char *bad;
	const char *kind = "heap-buffer-overflow";
	if (b.state == HGC_QUARANTINED) {
		kind = "heap-use-after-free";
		bad = a > b.user ? a : b.user;
	} else if (a < b.user) {
		bad = a;
	} else if (last >= b.user + b.size) {
		bad = a > b.user + b.size ? a : b.user + b.size;
	} else {
		return;
	}
	struct hgc_error e = { .kind = kind, .access = is_write ? "write" : "read", .func = func,
			       .addr = (uintptr_t)bad, .size = n, .has_block = 1, .block = b };
	hgc_report(&e);
	/* Its redzone or freed bytes are overwritten now, or (guarded) the call's access faults
	 * next: one report is enough. */
	if (is_write || b.guarded)
		hgc_mark_reported(b.core);
}

static int set_reported(struct hgc_block *b, void *arg)
{
	(void)arg;
	if (b)
		b->reported = 1;
	return 0;
}

void hgc_mark_reported(const char *core)
{
	hgc_table_update(hgc_table_find(core), set_reported, NULL);
}

/* Records recs[*i..n) of blocks at slot0 + i * stride, with `room` bytes each, whose state
 * is in `states`; 1 when fn asked to stop, *i then past its block. */
static int foreach_in(const struct hgc_rec *recs, uint32_t n, char *slot0, size_t stride, size_t room,
		      unsigned states, hgc_foreach_fn fn, void *arg, uint32_t *i)
{
	struct hgc_block b;
	while (*i < n) {
		uint32_t k = (*i)++;
		if ((states >> recs[k].state & 1) && expand(&recs[k], slot0 + (size_t)k * stride, room, &b) &&
		    !fn(&b, arg))
			return 1;
	}
	return 0;
}

int hgc_blocks_foreach(hgc_foreach_fn fn, void *arg, unsigned states, struct hgc_foreach_at *at)
{
	int stopped = 0;
	lock_all();
	if (!at->guards) {
		hg_lock(&arrays_lock);
		/* A live record's span is in use, as the block's class or large mapping: its start
		 * and size are the ones the record was made with; a quarantined one's too, since
		 * its block holds the span. Blocks past `extended` were never handed out (a short
		 * program's spans are mostly such: reading their records took a checked `echo`
		 * 0.3 ms at exit). New arrays go in at the head: a walk resumed goes on in its own. */
		struct array *a = at->array ? at->array : all_arrays;
		for (; a && !stopped; a = stopped ? a : a->all_next) {
			const struct hg_span *s = a->span;
			if (s && s->start) {
				uint32_t n = s->owner != HG_OWNER_LARGE && s->size ? hg_span_extended(s) : 1;
				stopped = foreach_in(a->recs, n < a->slots ? n : a->slots, s->start, s->size,
						     span_room(s), states, fn, arg, &at->i);
			}
			if (!stopped)
				at->i = 0;
		}
		at->array = a;
		at->guards = !stopped;
		hg_unlock(&arrays_lock);
	}
	struct hgc_rec *recs;
	uint32_t n;
	char *slot0;
	size_t stride, room;
	for (; !stopped && (recs = hgc_guard_records(at->guards - 1, &n, &slot0, &stride, &room)); at->guards++)
		if (!(stopped = foreach_in(recs, n, slot0, stride, room, states, fn, arg, &at->i)))
			at->i = 0;
	unlock_all();
	return stopped;
}

void hgc_record_ranges(void (*fn)(uintptr_t lo, uintptr_t hi, void *arg), void *arg)
{
	hg_lock(&arrays_lock);
	for (unsigned i = 0; i < pool_chunks_n; i++)
		fn((uintptr_t)pool_chunks[i], (uintptr_t)pool_chunks[i] + POOL_CHUNK_BYTES, arg);
	hg_unlock(&arrays_lock);
	uintptr_t lo, hi;
	if (hgc_guard_table(&lo, &hi))
		fn(lo, hi, arg);
}

void hgc_blocks_in_use(size_t *blocks, size_t *bytes)
{
	*blocks = *bytes = 0;
	for (unsigned s = 0; s < STRIPES; s++) {
		*blocks += __atomic_load_n(&stripes[s].live_blocks, __ATOMIC_RELAXED);
		*bytes += __atomic_load_n(&stripes[s].live_bytes, __ATOMIC_RELAXED);
	}
}

void hgc_blocks_totals(size_t *allocs, size_t *frees, size_t *bytes)
{
	*allocs = *frees = *bytes = 0;
	for (unsigned s = 0; s < STRIPES; s++) {
		*allocs += __atomic_load_n(&stripes[s].allocs, __ATOMIC_RELAXED);
		*frees += __atomic_load_n(&stripes[s].frees, __ATOMIC_RELAXED);
		*bytes += __atomic_load_n(&stripes[s].allocated_bytes, __ATOMIC_RELAXED);
	}
}

void hgc_table_fork_prepare(void)
{
	lock_all();
	hg_lock(&arrays_lock);
}

void hgc_table_fork_parent(void)
{
	hg_unlock(&arrays_lock);
	unlock_all();
}

void hgc_table_fork_child(void)
{
	hg_lock_reset(&arrays_lock);
	unlock_all(); /* the child's one thread held them all across fork */
}
