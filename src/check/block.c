/* block.c — the out-of-band records of checked blocks: a hash table keyed by the core block,
 * found again from any address inside it through the allocator's page map. */
#include <stdatomic.h>
#include <string.h>

#include "alloc/span.h"
#include "base/fmt.h"
#include "base/lock.h"
#include "base/options.h"
#include "check/check.h"
#include "check/table.h"
#include "os/os.h"

#define STRIPES 64               /* locks, by the hash's low bits */
#define FIRST_BUCKET_BITS 12     /* 32 KiB of buckets to start: most processes are small */
#define POOL_CHUNK_BYTES (256u << 10)

struct stripe {
	hg_lock_t lock;
	_Atomic uint32_t seq;     /* odd while a writer changes a chain or a record of it */
	struct hgc_block *free;   /* unused records */
	char *cursor, *end;       /* bump area for new ones */
	size_t live_blocks, live_bytes;
} __attribute__((aligned(64)));

/* The table grows by 4x when it holds twice as many records as buckets. A record's stripe
 * depends on its hash only, so the lock that guards it is the same before and after; the
 * table itself changes only while every stripe lock is held.
 *
 * Lookups, which every intercepted memcpy makes, take no lock: they read a stripe's seq,
 * walk the chain, and retry when seq was odd or moved (a seqlock). Records and bucket arrays
 * are never unmapped, so a racing reader reads stale memory at worst, never a hole. */
static struct hgc_block **buckets;
static unsigned bucket_bits;
static _Atomic size_t records;
static struct stripe stripes[STRIPES];

/* The blocks of one 64 KiB slice take consecutive buckets, from a random start per slice:
 * blocks allocated one after another share bucket lines, a stripe, and that stripe's record
 * pool. The bucket is the low bits of the hash, the stripe bits 6-11: the stripe of a record
 * stays the same when the table grows. */
static inline uint64_t hash_of(const char *core)
{
	uint64_t slice = (uintptr_t)core >> 16;
	slice ^= slice >> 31;
	slice *= 0xbf58476d1ce4e5b9ull;
	slice ^= slice >> 29;
	return slice + (((uintptr_t)core >> 4) & 0xfff);
}

static inline struct stripe *stripe_of(uint64_t h)
{
	return &stripes[(h >> 6) & (STRIPES - 1)];
}

static inline size_t bucket_index(uint64_t h, unsigned bits)
{
	return h & (((size_t)1 << bits) - 1);
}

static inline struct hgc_block **bucket_of(uint64_t h)
{
	return &buckets[bucket_index(h, bucket_bits)];
}

void hgc_table_init(void)
{
	for (unsigned i = 0; i < STRIPES; i++)
		stripes[i].lock = (hg_lock_t)HG_LOCK_INIT;
	bucket_bits = FIRST_BUCKET_BITS;
	buckets = hg_os_map(sizeof *buckets << bucket_bits, 0);
	if (!buckets)
		hg_fatal("heapguard", "cannot map the block table", NULL, NULL, 0);
}

static void write_begin(struct stripe *st)
{
	atomic_fetch_add_explicit(&st->seq, 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
}

static void write_end(struct stripe *st)
{
	atomic_fetch_add_explicit(&st->seq, 1, memory_order_release);
}

static void lock_all(void)
{
	for (unsigned s = 0; s < STRIPES; s++) {
		hg_lock(&stripes[s].lock);
		write_begin(&stripes[s]);
	}
}

static void unlock_all(void)
{
	for (unsigned s = 0; s < STRIPES; s++) {
		write_end(&stripes[s]);
		hg_unlock(&stripes[s].lock);
	}
}

static void grow(void)
{
	lock_all();
	unsigned bits = bucket_bits + 2;
	struct hgc_block **old = buckets, **fresh = NULL;
	size_t old_n = (size_t)1 << bucket_bits;
	if (atomic_load(&records) > (old_n << 1) && bits < 40)
		fresh = hg_os_map(sizeof *fresh << bits, 0);
	if (fresh) {
		for (size_t i = 0; i < old_n; i++) {
			for (struct hgc_block *b = old[i], *next; b; b = next) {
				next = b->hash_next;
				struct hgc_block **head = &fresh[bucket_index(hash_of(b->core), bits)];
				b->hash_next = *head;
				*head = b;
			}
		}
		buckets = fresh;
		bucket_bits = bits;
	}
	unlock_all();
	(void)old; /* kept mapped for lock-free readers; the old arrays sum to 1/3 of the new */
}

/* The key of the block whose extent holds addr: its guard slot, or its core block found
 * through the page map. Another thread may be changing the span; a stale key only misses. */
char *hgc_key_of(const void *addr)
{
	char *slot = hgc_guard_slot_of(addr);
	if (slot)
		return slot;
	struct hg_span *s = hg_pagemap_get((uintptr_t)addr);
	if (!s || s->owner == HG_OWNER_FREED || !s->start)
		return NULL;
	size_t off = (size_t)((const char *)addr - s->start);
	if (off >= s->bytes)
		return NULL;
	if (s->owner == HG_OWNER_LARGE || !s->size)
		return s->start;
	size_t idx = off / s->size;
	return idx < s->capacity ? s->start + idx * s->size : NULL;
}

static struct hgc_block *find_locked(uint64_t h, const char *core)
{
	for (struct hgc_block *b = *bucket_of(h); b; b = b->hash_next)
		if (b->core == core)
			return b;
	return NULL;
}

struct hgc_block *hgc_table_insert(const struct hgc_block *rec)
{
	uint64_t h = hash_of(rec->core);
	struct stripe *st = stripe_of(h);
	hg_lock(&st->lock);
	struct hgc_block *b = st->free;
	if (b) {
		st->free = b->hash_next;
	} else {
		if (st->cursor + sizeof *b > st->end) {
			st->cursor = hg_os_map(POOL_CHUNK_BYTES, 0);
			st->end = st->cursor ? st->cursor + POOL_CHUNK_BYTES : NULL;
		}
		if (!st->cursor) {
			hg_unlock(&st->lock);
			return NULL;
		}
		b = (struct hgc_block *)st->cursor;
		st->cursor += sizeof *b;
	}
	write_begin(st);
	*b = *rec;
	struct hgc_block **head = bucket_of(h);
	b->hash_next = *head;
	*head = b;
	write_end(st);
	st->live_blocks++;
	st->live_bytes += rec->size;
	hg_unlock(&st->lock);
	if (atomic_fetch_add_explicit(&records, 1, memory_order_relaxed) + 1 > ((size_t)2 << bucket_bits))
		grow();
	return b;
}

int hgc_table_update(const char *core, int (*fn)(struct hgc_block *b, void *arg), void *arg)
{
	uint64_t h = hash_of(core);
	struct stripe *st = stripe_of(h);
	hg_lock(&st->lock);
	struct hgc_block *b = find_locked(h, core);
	int was_live = b && b->state == HGC_LIVE;
	write_begin(st);
	int r = fn(b, arg);
	write_end(st);
	if (was_live && b->state != HGC_LIVE) {
		st->live_blocks--;
		st->live_bytes -= b->size;
	}
	hg_unlock(&st->lock);
	return r;
}

void hgc_table_remove(const char *core)
{
	uint64_t h = hash_of(core);
	struct stripe *st = stripe_of(h);
	hg_lock(&st->lock);
	for (struct hgc_block **pp = bucket_of(h); *pp; pp = &(*pp)->hash_next) {
		struct hgc_block *b = *pp;
		if (b->core != core)
			continue;
		write_begin(st);
		*pp = b->hash_next;
		b->hash_next = st->free;
		b->core = NULL;
		write_end(st);
		st->free = b;
		atomic_fetch_sub_explicit(&records, 1, memory_order_relaxed);
		break;
	}
	hg_unlock(&st->lock);
}

int hgc_lookup(const void *addr, struct hgc_block *out)
{
	if (!buckets)
		return 0;
	char *core = hgc_key_of(addr);
	if (!core)
		return 0;
	uint64_t h = hash_of(core);
	struct stripe *st = stripe_of(h);
	struct hgc_block *b = NULL;
	for (int tries = 0; tries < 4; tries++) {
		uint32_t seq = atomic_load_explicit(&st->seq, memory_order_acquire);
		if (seq & 1)
			continue;
		/* A chain changing under us may lead anywhere, even in a circle: a bounded walk. */
		unsigned steps = 0;
		for (b = *bucket_of(h); b && b->core != core && steps < 256; b = b->hash_next)
			steps++;
		if (steps == 256)
			break;
		if (b)
			*out = *b;
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&st->seq, memory_order_relaxed) == seq)
			goto found;
	}
	hg_lock(&st->lock); /* writers keep coming: wait for them */
	b = find_locked(h, core);
	if (b)
		*out = *b;
	hg_unlock(&st->lock);
found:
	return b && (const char *)addr < out->core + out->core_bytes;
}

void hgc_check_access(const void *p, size_t n, int is_write, const char *func)
{
	if (!n || !hgc_ready)
		return;
	if (hg_opt.guard_uninit) /* a library call's use is not the program's read of the bytes */
		hgc_guard_touch_range(p, n);
	struct hgc_block b;
	const char *a = p, *last = a + n - 1;
	if (!hgc_lookup(a, &b) && !hgc_lookup(last, &b))
		return;
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
	if (is_write && b.state == HGC_LIVE)
		hgc_mark_reported(b.core); /* its redzone is overwritten now: one report is enough */
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
	hgc_table_update(core, set_reported, NULL);
}

void hgc_blocks_foreach(void (*fn)(const struct hgc_block *b, void *arg), void *arg)
{
	if (!buckets)
		return;
	lock_all();
	for (size_t i = 0; i < ((size_t)1 << bucket_bits); i++)
		for (struct hgc_block *b = buckets[i]; b; b = b->hash_next)
			if (b->state == HGC_LIVE)
				fn(b, arg);
	unlock_all();
}

void hgc_blocks_in_use(size_t *blocks, size_t *bytes)
{
	*blocks = *bytes = 0;
	for (unsigned s = 0; s < STRIPES; s++) {
		*blocks += __atomic_load_n(&stripes[s].live_blocks, __ATOMIC_RELAXED);
		*bytes += __atomic_load_n(&stripes[s].live_bytes, __ATOMIC_RELAXED);
	}
}

void hgc_table_fork_prepare(void)
{
	lock_all();
}

void hgc_table_fork_parent(void)
{
	unlock_all();
}

void hgc_table_fork_child(void)
{
	for (unsigned s = 0; s < STRIPES; s++)
		hg_lock_reset(&stripes[s].lock);
}
