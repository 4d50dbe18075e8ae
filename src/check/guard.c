/* guard.c — guard mode: sampled blocks on their own pages, against an inaccessible guard page. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "base/fmt.h"
#include "base/lock.h"
#include "base/options.h"
#include "check/check.h"
#include "check/guard.h"
#include "os/os.h"

/*
 * The guard region, reserved inaccessible at the first guarded allocation (GWP-ASan's pool,
 * with size classes). Class k owns 2^span_shift bytes of it (1 GiB, less under ulimit -v),
 * cut into slots of 2^k data pages, each between two guard pages (a guard page serves the
 * slots on both sides):
 *
 *   class base
 *   | G | slot 0: 2^k pages | G | slot 1 | G | ...  | slot n-1 | G | unused to the span's end
 *
 * guard_side=right: user = slot end - round_up(size, 16), so the block ends against the next G
 *   (closer than that would break malloc's 16-byte alignment). Up to 15 bytes of slack lie
 *   between the block's end and G, and [slot, user) before it: heap.c checks both as redzone at
 *   free, as for any block.
 * guard_side=left: user = slot start, just after the previous G; the slack is after the block.
 *
 * A slot is read-write only while its block is live. hgc_guard_retire swaps its pages for fresh
 * inaccessible ones (any access faults, and the memory goes back to the kernel); the slot waits
 * in heap.c's quarantine, then hgc_guard_release queues it for reuse, oldest first. A released
 * slot waits behind REUSE_DEPTH others (fresh slots serve meanwhile), so that a dangling
 * pointer keeps faulting long after the quarantine let the block go.
 *
 * Budget: a live slot splits the region's mapping into up to 2 more, against vm.max_map_count
 * (65530 by default, for the whole process). LIVE_SLOTS_MAX live slots cost at most 32769
 * mappings, half of it. Retired slots merge back into the reservation and cost none. A program
 * that maps much itself leaves less: at the first slot and then (count_due) the mappings are
 * counted and the live slots capped so that an eighth of the limit stays for the
 * program and the heap (with 56,000 mappings of a program's own, guarded blocks took the rest,
 * and then the heap's own mappings failed: malloc returned NULL), less the mappings the
 * program makes at its pace between two counts (one that made two for each guarded block
 * passed the cap before a count saw it, and 3,600 of its mallocs returned NULL). A block
 * that finds no budget or no free slot of its class, is over CLASS_MAX_BYTES or asks for an
 * alignment over a page is not guarded:
 * hgc_guard_alloc returns 0 and heap.c gives it a redzone block. Never an abort.
 */
#define PAGE_BYTES HG_OS_PAGE_BYTES
#define CLASSES 13                               /* slots of 1, 2, 4 ... 4096 pages */
#define CLASS_MAX_BYTES ((size_t)PAGE_BYTES << (CLASSES - 1)) /* 16 MiB: larger blocks are not guarded */
#define SPAN_SHIFT_MAX 30                        /* 1 GiB of address space per class: 13 GiB */
#define SPAN_SHIFT_MIN 25                        /* 32 MiB: one slot of the largest class */
#define CLASS_SLOTS_MAX 131072u                  /* live + quarantined + free, per class:
						    more than live + a full default quarantine */
#define REUSE_DEPTH 4096u                        /* released slots queued before one is reused */
#define LIVE_SLOTS_MAX 16384                     /* read-write slots at once, all classes */
#define MAPS_LOOK_EVERY 1024u                    /* slots handed out between counts of the mappings */
#define MIN_ALIGN_BYTES 16                       /* malloc's alignment */
#define NO_SLOT UINT32_MAX
/* One mapping for every class's records, next[] and state[], records first. */
#define TABLE_BYTES ((size_t)CLASSES * CLASS_SLOTS_MAX * (sizeof(struct hgc_rec) + sizeof(uint32_t) + 1))

struct guard_class {
	hg_lock_t lock;          /* guards fresh, head, tail, queued and next[] */
	char *base;              /* slot 0's first byte */
	size_t slot_bytes;       /* data bytes per slot: 2^k pages */
	size_t stride_bytes;     /* slot_bytes + its guard page */
	uint32_t capacity;       /* slots in the span */
	uint32_t fresh;          /* slots [fresh, capacity) were never used */
	uint32_t head, tail;     /* released slots, oldest first, linked by next[]; NO_SLOT: none */
	uint32_t queued;         /* how many */
	uint32_t *next;          /* capacity entries */
	_Atomic uint8_t *state;  /* capacity entries, enum hgc_slot_state */
	struct hgc_rec *records; /* capacity entries: block.c's record of each slot */
} __attribute__((aligned(64)));

static struct guard_class classes[CLASSES];
static char *region;                    /* set once, never unmapped */
static unsigned span_shift;             /* each class's share: 2^span_shift bytes, set with region */
static _Atomic size_t region_bytes;     /* 0 until reserved: every address is outside */
static int region_failed;
static hg_lock_t region_lock = HG_LOCK_INIT;
static _Atomic int live_slots;
static _Atomic int live_cap = LIVE_SLOTS_MAX; /* live slots the mappings left allow */
static _Atomic unsigned handed_out;
static long maps_max, maps_other; /* vm.max_map_count; mappings not ours at the last count */
static long other_pace;           /* mappings not ours made per MAPS_LOOK_EVERY slots handed out
				     between the last two counts (0 when they fell) */
static unsigned counts, counted_at; /* counts made; handed_out at the last one */
static uint64_t counted_ms;       /* when that was */

/* Counting reads /proc/self/maps, long with live slots (two lines each: python3 under guard
 * mode 4.5 -> 7.1 s counting every 1,024 slots): a count is due once a second, or sooner when
 * the last one's estimate, with the program's pace, puts the live slots near their cap. The
 * second count comes at the first look after the first, to learn that pace. */
static int count_due(unsigned handed)
{
	long other = maps_other + other_pace * (long)(handed - counted_at) / MAPS_LOOK_EVERY;
	long spare = maps_max - maps_max / 8 - other - 2L * atomic_load(&live_slots);
	return counts < 2 || spare < 4L * MAPS_LOOK_EVERY + other_pace || hg_os_now_ms() - counted_ms >= 1000;
}

static void count_maps(unsigned handed)
{
	long now = hg_os_map_count();
	if (!maps_max)
		maps_max = hg_os_map_count_max();
	if (now < 0)
		return;
	long live = atomic_load(&live_slots), other = now - 2 * live;
	if (counts++ && handed != counted_at) {
		long pace = (other - maps_other) * (long)MAPS_LOOK_EVERY / (long)(handed - counted_at);
		other_pace = pace > 0 ? pace : 0;
	}
	maps_other = other;
	counted_at = handed;
	counted_ms = hg_os_now_ms();
	/* Until the next look, the program makes other_pace more. */
	long cap = live + (maps_max - maps_max / 8 - now - other_pace) / 2;
	atomic_store(&live_cap, (int)(cap < 0 ? 0 : cap > LIVE_SLOTS_MAX ? LIVE_SLOTS_MAX : cap));
}

/* ---- sampling: guard=N takes one allocation in N per thread, at random gaps ---- */
static __thread uint32_t until_sample; /* allocations left before the next guarded one; 0: not drawn */
static __thread uint32_t rng;

/* A gap uniform in [1, 2N-1] (mean N): a fixed period could keep missing the same call site
 * of a loop that allocates a few blocks per round. */
static uint32_t draw_gap(uint64_t every)
{
	if (!rng)
		rng = ((uint32_t)((uintptr_t)&rng >> 4) ^ (uint32_t)hg_os_now_ms() * 2654435761u) | 1;
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	uint64_t span = every * 2 - 1;
	if (span > UINT32_MAX)
		span = UINT32_MAX;
	return 1 + (uint32_t)(rng % span);
}

static inline int is_sampled(void)
{
	uint64_t every = hg_opt.guard;
	if (every == 1)
		return 1;
	if (likely(until_sample > 1)) {
		until_sample--;
		return 0;
	}
	int hit = until_sample == 1;
	until_sample = draw_gap(every);
	return hit;
}

/* ---- the region ---- */
static inline char *slot_at(const struct guard_class *c, uint32_t i)
{
	return c->base + (size_t)i * c->stride_bytes;
}

static void fork_prepare(void)
{
	for (unsigned k = 0; k < CLASSES; k++)
		hg_lock(&classes[k].lock);
}

static void fork_parent(void)
{
	for (unsigned k = 0; k < CLASSES; k++)
		hg_unlock(&classes[k].lock);
}

/* A first use that another thread of the parent had under way never ends in the child, whose
 * accesses to the slot then waited for it forever: the slot starts over, untouched. */
static void fork_child(void)
{
	for (unsigned k = 0; k < CLASSES; k++) {
		struct guard_class *c = &classes[k];
		hg_lock_reset(&c->lock);
		for (uint32_t i = 0; hg_opt.guard_uninit && i < c->fresh; i++) {
			if (atomic_load_explicit(&c->state[i], memory_order_relaxed) != HGC_SLOT_TOUCHING)
				continue;
			hg_os_decommit(slot_at(c, i), c->slot_bytes);
			atomic_store_explicit(&c->state[i], HGC_SLOT_UNTOUCHED, memory_order_relaxed);
		}
	}
}

/* Reserves the region and maps the slot tables; a one-time init, so the system calls under
 * region_lock hold nobody up for long. */
static HG_NOINLINE int region_init(void)
{
	hg_lock(&region_lock);
	if (atomic_load(&region_bytes) || region_failed)
		goto out;
	/* The reservation counts against an address-space limit (ulimit -v): it takes an eighth
	 * of it at most. 13 GiB under a 16 GB limit left a program's malloc of 3 GB failing. */
	size_t limit = hg_os_address_space_limit() / 8;
	span_shift = SPAN_SHIFT_MAX;
	while (span_shift > SPAN_SHIFT_MIN && (size_t)CLASSES << span_shift > limit)
		span_shift--;
	size_t bytes = (size_t)CLASSES << span_shift;
	char *r = bytes <= limit ? hg_os_reserve(bytes) : NULL;
	char *tables = r ? hg_os_map(TABLE_BYTES, 0) : NULL;
	if (!tables) {
		if (r)
			hg_os_unmap(r, bytes);
		region_failed = 1;
		struct hg_buf m = { .len = 0 };
		hg_buf_prog(&m);
		hg_buf_str(&m, "guard mode is off: no room for its region of ");
		hg_buf_dec(&m, bytes >> 20);
		hg_buf_str(&m, " MiB of address space (ulimit -v?); blocks get redzones instead\n");
		hg_buf_flush(&m);
		goto out;
	}
	struct hgc_rec *all_records = (struct hgc_rec *)(void *)tables;
	uint32_t *all_next = (uint32_t *)(all_records + (size_t)CLASSES * CLASS_SLOTS_MAX);
	_Atomic uint8_t *all_state = (_Atomic uint8_t *)(all_next + (size_t)CLASSES * CLASS_SLOTS_MAX);
	for (unsigned k = 0; k < CLASSES; k++) {
		struct guard_class *c = &classes[k];
		c->lock = (hg_lock_t)HG_LOCK_INIT;
		c->base = r + ((size_t)k << span_shift) + PAGE_BYTES;
		c->slot_bytes = (size_t)PAGE_BYTES << k;
		c->stride_bytes = c->slot_bytes + PAGE_BYTES;
		size_t fit = (((size_t)1 << span_shift) - PAGE_BYTES) / c->stride_bytes;
		c->capacity = fit < CLASS_SLOTS_MAX ? (uint32_t)fit : CLASS_SLOTS_MAX;
		c->head = c->tail = NO_SLOT;
		c->records = all_records + (size_t)k * CLASS_SLOTS_MAX;
		c->next = all_next + (size_t)k * CLASS_SLOTS_MAX;
		c->state = all_state + (size_t)k * CLASS_SLOTS_MAX;
	}
	/* glibc keeps its first 48 fork handlers in static storage: this does not allocate. */
	pthread_atfork(fork_prepare, fork_parent, fork_child);
	region = r;
	atomic_store(&region_bytes, bytes);
out:
	hg_unlock(&region_lock);
	return atomic_load(&region_bytes) != 0;
}

static inline unsigned class_of(size_t bytes)
{
	size_t pages = (bytes + PAGE_BYTES - 1) / PAGE_BYTES;
	return pages <= 1 ? 0 : 64u - (unsigned)__builtin_clzll(pages - 1);
}

/* The class and index of the slot starting exactly at p; 0 when p is no slot. */
static int slot_index(const void *p, struct guard_class **cp, uint32_t *ip)
{
	char *slot, *below, *above;
	if (hgc_guard_place(p, &slot, &below, &above) != HGC_GUARD_IN_SLOT || slot != p)
		return 0;
	size_t off = (size_t)(slot - region);
	struct guard_class *c = &classes[off >> span_shift];
	*cp = c;
	*ip = (uint32_t)((size_t)(slot - c->base) / c->stride_bytes);
	return 1;
}

static uint32_t take_locked(struct guard_class *c)
{
	if (c->fresh < c->capacity && c->queued < REUSE_DEPTH)
		return c->fresh++;
	uint32_t i = c->head;
	if (i != NO_SLOT) {
		c->head = c->next[i];
		if (c->head == NO_SLOT)
			c->tail = NO_SLOT;
		c->queued--;
	}
	return i;
}

static void put_locked(struct guard_class *c, uint32_t i)
{
	c->next[i] = NO_SLOT;
	if (c->tail == NO_SLOT)
		c->head = i;
	else
		c->next[c->tail] = i;
	c->tail = i;
	c->queued++;
}

/* ---- the interface of check.h ---- */
static HG_NOINLINE int guard_alloc(size_t n, size_t align, int untouched, struct hgc_block *b)
{
	if (align < MIN_ALIGN_BYTES)
		align = MIN_ALIGN_BYTES;
	if (align > PAGE_BYTES || n > CLASS_MAX_BYTES)
		return 0;
	size_t need = n ? hg_align_up(n, align) : align; /* malloc(0) too gets a byte-less slot */
	if (!atomic_load_explicit(&region_bytes, memory_order_acquire) && !region_init())
		return 0;
	unsigned handed = atomic_fetch_add(&handed_out, 1);
	if (handed % MAPS_LOOK_EVERY == 0 && count_due(handed))
		count_maps(handed);
	if (atomic_fetch_add(&live_slots, 1) >= atomic_load_explicit(&live_cap, memory_order_relaxed))
		goto no_slot;
	struct guard_class *c = &classes[class_of(need)];
	hg_lock(&c->lock);
	uint32_t i = take_locked(c);
	hg_unlock(&c->lock);
	if (i == NO_SLOT)
		goto no_slot; /* every slot of the class is live or quarantined */
	char *slot = slot_at(c, i);
	if (!untouched && !hg_os_protect(slot, c->slot_bytes, 1)) {
		/* Out of mappings all the same: give it back, and no more until the next count. */
		atomic_store(&live_cap, atomic_load(&live_slots) - 1);
		hg_lock(&c->lock);
		put_locked(c, i);
		hg_unlock(&c->lock);
		goto no_slot;
	}
	atomic_store_explicit(&c->state[i], untouched ? HGC_SLOT_UNTOUCHED : HGC_SLOT_LIVE,
			      memory_order_relaxed);
	b->core = slot;
	b->core_bytes = c->slot_bytes;
	b->user = hg_opt.guard_side == 0 ? slot + c->slot_bytes - need : slot;
	b->guarded = 1;
	return 1;
no_slot:
	atomic_fetch_sub(&live_slots, 1);
	return 0;
}

int hgc_guard_alloc(size_t n, size_t align, int untouched, struct hgc_block *b)
{
	if (likely(!hg_opt.guard) || !is_sampled())
		return 0;
	return guard_alloc(n, align, untouched, b);
}

/* A slot that is live, used or not. */
static int is_live(uint8_t state)
{
	return state == HGC_SLOT_LIVE || state == HGC_SLOT_UNTOUCHED || state == HGC_SLOT_TOUCHING;
}

int hgc_guard_touch(const void *addr)
{
	char *slot, *below, *above;
	struct guard_class *c;
	uint32_t i;
	if (hgc_guard_place(addr, &slot, &below, &above) != HGC_GUARD_IN_SLOT || !slot_index(slot, &c, &i))
		return 0;
	/* The address of this thread's last access retried on a slot another thread made live. */
	static __thread const void *retried;
	uint8_t state = HGC_SLOT_UNTOUCHED;
	if (!atomic_compare_exchange_strong(&c->state[i], &state, HGC_SLOT_TOUCHING)) {
		/* Another thread's first use, under way or done since this access faulted: the
		 * access is retried, once. Faulting again at the same address, it meets a
		 * protection the program set itself (mprotect), which retrying would meet forever. */
		while (state == HGC_SLOT_TOUCHING)
			sched_yield(), state = atomic_load(&c->state[i]);
		if (state != HGC_SLOT_LIVE || retried == addr) {
			retried = NULL;
			return 0;
		}
		retried = addr;
		return 1;
	}
	retried = NULL;
	/* The pages are filled elsewhere and moved onto the slot in one step: made accessible
	 * first and filled after, the fill overwrote what another thread stored meanwhile (its
	 * store found the page accessible and did not fault). Out of mappings, the slot stays
	 * inaccessible: the access then faults as a wild one. */
	char *fresh = hg_os_map(c->slot_bytes, 0);
	int ok = 0;
	if (fresh) {
		struct hgc_block b;
		if (hgc_lookup(slot, &b)) {
			b.user = fresh + (b.user - b.core);
			b.core = fresh;
			hgc_fill_block(&b, 0);
		}
		ok = hg_os_move(fresh, c->slot_bytes, c->slot_bytes, slot);
		if (!ok)
			hg_os_unmap(fresh, c->slot_bytes);
	}
	atomic_store(&c->state[i], ok ? HGC_SLOT_LIVE : HGC_SLOT_UNTOUCHED);
	return ok ? 2 : 0;
}

void hgc_guard_touch_range(const void *p, size_t n)
{
	if (!n || !atomic_load_explicit(&region_bytes, memory_order_relaxed))
		return;
	hgc_guard_touch(p);
	hgc_guard_touch((const char *)p + n - 1);
}

int hgc_guard_untouched(const struct hgc_block *b)
{
	if (!b->guarded)
		return 0;
	int state = hgc_guard_slot_state(b->core);
	return state == HGC_SLOT_UNTOUCHED || state == HGC_SLOT_TOUCHING;
}

void hgc_guard_retire(const struct hgc_block *b)
{
	struct guard_class *c;
	uint32_t i;
	if (!slot_index(b->core, &c, &i) || !is_live(atomic_load(&c->state[i])))
		return;
	atomic_store(&c->state[i], HGC_SLOT_RETIRED);
	hg_os_decommit(b->core, c->slot_bytes);
	atomic_fetch_sub(&live_slots, 1);
}

void hgc_guard_release(const struct hgc_block *b)
{
	struct guard_class *c;
	uint32_t i;
	if (!slot_index(b->core, &c, &i))
		return;
	if (is_live(atomic_load(&c->state[i])))
		hgc_guard_retire(b); /* released without a retire: still make it inaccessible */
	if (atomic_load(&c->state[i]) != HGC_SLOT_RETIRED)
		return; /* released twice: queueing it again would hand it out twice */
	atomic_store(&c->state[i], HGC_SLOT_RELEASED);
	hg_lock(&c->lock);
	put_locked(c, i);
	hg_unlock(&c->lock);
}

char *hgc_guard_slot_of(const void *addr)
{
	char *slot, *below, *above;
	return hgc_guard_place(addr, &slot, &below, &above) == HGC_GUARD_IN_SLOT ? slot : NULL;
}

struct hgc_rec *hgc_guard_record(const char *slot, size_t *bytes)
{
	struct guard_class *c;
	uint32_t i;
	if (!slot_index(slot, &c, &i))
		return NULL;
	*bytes = c->slot_bytes;
	return &c->records[i];
}

int hgc_guard_table(uintptr_t *lo, uintptr_t *hi)
{
	if (!atomic_load_explicit(&region_bytes, memory_order_acquire))
		return 0;
	*lo = (uintptr_t)classes[0].records;
	*hi = *lo + TABLE_BYTES;
	return 1;
}

struct hgc_rec *hgc_guard_records(unsigned k, uint32_t *n, char **slot0, size_t *stride, size_t *bytes)
{
	if (k >= CLASSES || !atomic_load_explicit(&region_bytes, memory_order_acquire))
		return NULL;
	struct guard_class *c = &classes[k];
	*n = __atomic_load_n(&c->fresh, __ATOMIC_RELAXED); /* slots ever handed out */
	*slot0 = c->base;
	*stride = c->stride_bytes;
	*bytes = c->slot_bytes;
	return c->records;
}

/* ---- for signal.c ---- */
enum hgc_guard_place hgc_guard_place(const void *addr, char **slot, char **below, char **above)
{
	size_t bytes = atomic_load_explicit(&region_bytes, memory_order_acquire); /* then region */
	size_t off = (size_t)((uintptr_t)addr - (uintptr_t)region);
	if (likely(off >= bytes))
		return HGC_GUARD_OUTSIDE;
	const struct guard_class *c = &classes[off >> span_shift];
	*slot = *below = *above = NULL;
	size_t in_span = off & (((size_t)1 << span_shift) - 1);
	if (in_span < PAGE_BYTES) { /* the guard page before slot 0 */
		*above = c->base;
		return HGC_GUARD_IN_PAGE;
	}
	size_t i = (in_span - PAGE_BYTES) / c->stride_bytes;
	size_t in_stride = (in_span - PAGE_BYTES) % c->stride_bytes;
	if (i >= c->capacity)
		return HGC_GUARD_IN_PAGE;
	if (in_stride < c->slot_bytes) {
		*slot = slot_at(c, (uint32_t)i);
		return HGC_GUARD_IN_SLOT;
	}
	*below = slot_at(c, (uint32_t)i);
	if (i + 1 < c->capacity)
		*above = slot_at(c, (uint32_t)i + 1);
	return HGC_GUARD_IN_PAGE;
}

int hgc_guard_slot_state(const char *slot)
{
	struct guard_class *c;
	uint32_t i;
	if (!slot_index(slot, &c, &i))
		return HGC_SLOT_UNUSED;
	return atomic_load_explicit(&c->state[i], memory_order_relaxed);
}
