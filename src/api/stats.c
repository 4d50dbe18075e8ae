/* stats.c — the counters behind stats=1 and malloc_stats(): per size class, peak in use, OS bytes. */
#include "api/stats.h"

#include <stdatomic.h>
#include <stdint.h>

#include "alloc/tcache.h"
#include "base/fmt.h"
#include "base/options.h"
#include "os/os.h"

struct counters {
	_Atomic uint64_t allocs, frees, requested;
};

int hg_stats_on;
size_t hg_fast_sizes = HG_CLASS_TABLE_MAX_BYTES;
/* By class, then large blocks, then (check mode) guarded ones. */
#define ROW_LARGE HG_NCLASSES
#define ROW_GUARDED (HG_NCLASSES + 1)
static struct counters by_class[HG_NCLASSES + 2];
static _Atomic int64_t in_use, peak;

/* Counter row and usable size of a live block. */
static struct counters *row_of(const void *p, size_t *usable)
{
	struct hg_span *s = hg_block_of(p, usable);
	if (!s)
		return NULL;
	return &by_class[s->owner == HG_OWNER_LARGE ? ROW_LARGE : s->cls];
}

static void count_alloc(struct counters *c, size_t requested, size_t bytes)
{
	atomic_fetch_add_explicit(&c->allocs, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->requested, requested, memory_order_relaxed);
	int64_t now = atomic_fetch_add_explicit(&in_use, (int64_t)bytes, memory_order_relaxed) + (int64_t)bytes;
	int64_t old = atomic_load_explicit(&peak, memory_order_relaxed);
	while (now > old && !atomic_compare_exchange_weak_explicit(&peak, &old, now, memory_order_relaxed,
								    memory_order_relaxed))
		;
}

static void count_free(struct counters *c, size_t bytes)
{
	atomic_fetch_add_explicit(&c->frees, 1, memory_order_relaxed);
	atomic_fetch_sub_explicit(&in_use, (int64_t)bytes, memory_order_relaxed);
}

void hg_stats_alloc(const void *p, size_t requested)
{
	size_t usable;
	struct counters *c = p ? row_of(p, &usable) : NULL;
	if (c)
		count_alloc(c, requested, usable);
}

void hg_stats_free(const void *p)
{
	size_t usable;
	struct counters *c = p ? row_of(p, &usable) : NULL;
	if (c)
		count_free(c, usable);
}

void hg_stats_checked(const void *core, int alloc, size_t size)
{
	size_t usable;
	struct counters *c = row_of(core, &usable);
	if (!c)
		c = &by_class[ROW_GUARDED];
	if (alloc)
		count_alloc(c, size, size);
	else
		count_free(c, size);
}

size_t hg_stats_in_use(void)
{
	int64_t v = atomic_load_explicit(&in_use, memory_order_relaxed);
	return v > 0 ? (size_t)v : 0;
}

static void line_counts(struct hg_buf *b, struct counters *c)
{
	hg_buf_str(b, " allocs=");
	hg_buf_dec(b, atomic_load_explicit(&c->allocs, memory_order_relaxed));
	hg_buf_str(b, " frees=");
	hg_buf_dec(b, atomic_load_explicit(&c->frees, memory_order_relaxed));
	hg_buf_str(b, " requested=");
	hg_buf_dec(b, atomic_load_explicit(&c->requested, memory_order_relaxed));
}

void hg_stats_print(void)
{
	if (!hg_stats_on) { /* malloc_stats() without the counters: say so, not zeros */
		struct hg_buf b = { .len = 0 };
		hg_buf_str(&b, "heapguard stats: mapped=");
		hg_buf_dec(&b, hg_os_mapped_bytes());
		hg_buf_str(&b, " (allocations are counted with HEAPGUARD_OPTIONS=stats=1)\n");
		hg_buf_flush(&b);
		return;
	}
	struct counters total = { 0 };
	for (unsigned i = 0; i <= ROW_GUARDED; i++) {
		total.allocs += by_class[i].allocs;
		total.frees += by_class[i].frees;
		total.requested += by_class[i].requested;
	}
	struct hg_buf b = { .len = 0 };
	hg_buf_str(&b, "heapguard stats:");
	line_counts(&b, &total);
	hg_buf_str(&b, " peak_in_use=");
	hg_buf_dec(&b, (uint64_t)atomic_load_explicit(&peak, memory_order_relaxed));
	hg_buf_str(&b, " mapped=");
	hg_buf_dec(&b, hg_os_mapped_bytes());
	hg_buf_str(&b, "\n");
	hg_buf_flush(&b);
	for (unsigned i = 0; i <= ROW_GUARDED; i++) {
		if (!by_class[i].allocs && !by_class[i].frees)
			continue;
		hg_buf_str(&b, "heapguard stats: class=");
		if (i >= ROW_LARGE) {
			hg_buf_str(&b, i == ROW_LARGE ? "large" : "guarded");
		} else {
			hg_buf_dec(&b, i);
			hg_buf_str(&b, " size=");
			hg_buf_dec(&b, hg_classes[i].size);
		}
		line_counts(&b, &by_class[i]);
		hg_buf_str(&b, "\n");
		hg_buf_flush(&b);
	}
}

__attribute__((destructor)) static void stats_at_exit(void)
{
	if (hg_stats_on)
		hg_stats_print();
}
