/* heap.c — the checked heap: redzones, fill bytes, alloc/free records and checks, the
 * quarantine, and the summary at exit. The exported API calls it in the checking library. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <ucontext.h>
#include <unistd.h>

#include "alloc/span.h"
#include "alloc/tcache.h"
#include "api/stats.h"
#include "base/fmt.h"
#include "base/lock.h"
#include "base/options.h"
#include "check/check.h"
#include "check/guard.h"
#include "check/symbols.h"
#include "check/table.h"
#include "os/os.h"

#define MAX_REQUEST_BYTES ((size_t)1 << 47) /* above: allocation-size-too-big */

int hgc_ready;

static const char *const KIND_NAMES[] = { "malloc()", "operator new", "operator new[]" };
static const char *const FREE_NAMES[] = { "free()", "operator delete", "operator delete[]" };

const char *const hgc_alloc_calls[HGC_ALLOC_CALLS] = {
	"malloc",  "calloc",  "realloc", "memalign", "aligned_alloc", "posix_memalign",
	"valloc",  "pvalloc", "strdup",  "strndup",  "operator new",  "operator new[]",
};

/* func's index in hgc_alloc_calls (0, malloc, for one not there). The linker merges equal
 * string constants, so the pointer usually tells; the strings decide. */
static uint8_t call_of(const char *func)
{
	if (likely(func == hgc_alloc_calls[0]))
		return 0;
	for (uint8_t i = 0; i < HGC_ALLOC_CALLS; i++)
		if (func[0] == hgc_alloc_calls[i][0] && strcmp(func, hgc_alloc_calls[i]) == 0)
			return i;
	return 0;
}

/* ---------------- fill bytes and their checks ---------------- */

/* glibc's vectorized equality test (2.35+; memcmp is the library's checking version). */
int __memcmpeq(const void *a, const void *b, size_t n);

#define PATTERN_BYTES 4096
/* A page of each fill byte that whole blocks are checked against (filled by hgc_init). */
static unsigned char freed_pattern[PATTERN_BYTES], redzone_pattern[PATTERN_BYTES];
/* HGC_UNINIT_WORD repeated, 8 bytes more so that a fill may start at any phase. */
static unsigned char uninit_pattern[PATTERN_BYTES + 8];

static inline uint64_t load_word(const unsigned char *p)
{
	uint64_t w;
	memcpy(&w, p, 8); /* one unaligned load */
	return w;
}

/* Offset of the first byte of [p, p+n) that is not `byte` (HGC_FREED or HGC_REDZONE), or n.
 * Blocks leaving the quarantine are checked whole: glibc's compare against a page of the
 * byte finds the page that differs at 32 bytes a step (a byte loop took 9 % of a malloc
 * loop's time in check mode), and only that page is searched. */
static HG_NOINLINE size_t first_not_search(const unsigned char *p, size_t n, unsigned char byte)
{
	uint64_t w = 0x0101010101010101ull * byte;
	size_t i = 0, end = n;
	if (n >= 64) {
		const unsigned char *pat = byte == HGC_FREED ? freed_pattern : redzone_pattern;
		for (; i < n; i += PATTERN_BYTES) {
			end = n - i < PATTERN_BYTES ? n : i + PATTERN_BYTES;
			if (__memcmpeq(p + i, pat, end - i))
				break;
		}
		if (i >= n)
			return n;
	}
	/* [i, end): what differs, a word at a time, then its byte. */
	while (i + 8 <= end && load_word(p + i) == w)
		i += 8;
	for (; i < end; i++)
		if (p[i] != byte)
			return i;
	return n;
}

/* The same, inline for a redzone (8 to 63 bytes at any alignment): its words, the last one
 * overlapping, and the search only when one differs. A byte loop to align, and a call, made
 * the redzones' checks at free and at the quarantine's end 7 % of python3's instructions. */
static inline size_t first_not(const unsigned char *p, size_t n, unsigned char byte)
{
	if (n - 8 < 56) {
		uint64_t w = 0x0101010101010101ull * byte;
		size_t k = 0;
		while (k + 8 < n && load_word(p + k) == w)
			k += 8;
		if (k + 8 >= n && load_word(p + n - 8) == w)
			return n;
	}
	return first_not_search(p, n, byte);
}

/* Length of the run of bytes different from `byte` starting at p, at most n. */
static size_t run_not(const unsigned char *p, size_t n, unsigned char byte)
{
	size_t i = 0;
	while (i < n && p[i] != byte)
		i++;
	return i;
}

/* A block larger than this gets the uninitialized pattern on its first FILL_MAX bytes only,
 * on memory that reads as zero past them: GNU sort mallocs 1.7 GB for a 27 MB file and writes
 * a few percent of it, and filling it whole took 1.7 GB of RSS and seconds. */
#define FILL_MAX ((size_t)2 << 20)

/* Past FILL_MAX, a block's pages that are not resident were never written since its malloc,
 * and read as zero: without swap, where such a page may instead hold data swapped out. Its
 * free poisons, its check reads and realloc copies the resident ones only, so that a buffer
 * used sparsely stays so (a checked GNU sort of a 1 MB file freed a 64 MiB buffer it had used
 * 3 MiB of: poisoning it whole took the run to 67 MB, plain 3 MB). */
static int no_swap = -1; /* hg_os_has_swap, asked once */

static int sparse_tail(const struct hgc_block *b)
{
	if (b->guarded || b->size <= FILL_MAX)
		return 0;
	if (no_swap < 0)
		no_swap = !hg_os_has_swap();
	return no_swap;
}

static int poison_run(char *lo, char *hi, void *arg)
{
	(void)arg;
	hgc_memset(lo, HGC_FREED, (size_t)(hi - lo));
	return 1;
}

/* Fills b with the free poison (its tail's resident pages only, when sparse_tail). */
static void poison_block(const struct hgc_block *b)
{
	size_t head = sparse_tail(b) ? FILL_MAX : b->size;
	hgc_memset(b->user, HGC_FREED, head);
	if (head < b->size)
		hg_os_resident_runs(b->user + head, b->size - head, poison_run, NULL);
}

/* The first byte written since the free in a run of resident pages of a sparse tail; *arg is
 * a `const char *[2]`, set to that byte and the end of the run of written bytes there (in its
 * page: the next one may hold zeros, not the poison), and left alone when there is none. */
static int written_after_free(char *lo, char *hi, void *arg)
{
	const char **found = arg;
	for (char *p = lo; p < hi;) {
		char *next = (char *)(((uintptr_t)p | (HG_OS_PAGE_BYTES - 1)) + 1);
		next = next < hi ? next : hi;
		size_t n = (size_t)(next - p), k = first_not((const unsigned char *)p, n, HGC_FREED);
		unsigned char was = HGC_FREED; /* what the page held at the free */
		if (k == 0 && run_not((const unsigned char *)p, n, HGC_FREED) == n) {
			was = 0; /* no poison: not resident then, and zero unless written since */
			while (k < n && !p[k])
				k++;
		}
		if (k < n) {
			const char *end = p + k;
			while (end < next && (unsigned char)*end != was)
				end++;
			found[0] = p + k;
			found[1] = end;
			return 0;
		}
		p = next;
	}
	return 1;
}

/* The first byte of quarantined block b written since its free, and in *run the length of
 * the run of written bytes there; NULL when there is none. A page of a sparse tail that was
 * resident at the free and then zeroed whole passes for one that was not. */
static const char *freed_damage(const struct hgc_block *b, size_t *run)
{
	size_t head = sparse_tail(b) ? FILL_MAX : b->size;
	size_t at = first_not((const unsigned char *)b->user, head, HGC_FREED);
	if (at < head) {
		*run = run_not((const unsigned char *)b->user + at, b->size - at, HGC_FREED);
		return b->user + at;
	}
	const char *found[2] = { NULL, NULL };
	if (head < b->size)
		hg_os_resident_runs(b->user + head, b->size - head, written_after_free, found);
	*run = (size_t)(found[1] - found[0]);
	return found[0];
}

/* The start of b's left redzone as filled and checked: the LEFT_FILL_MAX bytes before the
 * block at most, unless it is guarded (its slot's gap is a page at most). An aligned block's
 * core starts an alignment before it, and filling all of that (2 MiB for a 2 MiB alignment)
 * wrote pages the program never uses: 200 2 MiB-aligned pages peaked at 424 MB. */
#define LEFT_FILL_MAX 64u
static inline char *left_fill(const struct hgc_block *b)
{
	return b->guarded || b->user - b->core <= LEFT_FILL_MAX ? b->core : b->user - LEFT_FILL_MAX;
}

/* Fills b's redzones, and unless zero its bytes from `from` (the caller writes the ones
 * before at once: realloc's copy) up to `end`. */
static void fill_block_from(const struct hgc_block *b, int zero, size_t from, size_t end)
{
	hgc_memset(left_fill(b), HGC_REDZONE, (size_t)(b->user - left_fill(b)));
	for (size_t i = from; !zero && i < end;) { /* i % 8 stays from % 8: the phase */
		size_t n = end - i < PATTERN_BYTES ? end - i : PATTERN_BYTES;
		hgc_memcpy(b->user + i, uninit_pattern + i % 8, n);
		i += n;
	}
	hgc_memset(b->user + b->size, HGC_REDZONE, (size_t)(b->core + b->core_bytes - (b->user + b->size)));
}

void hgc_fill_block(const struct hgc_block *b, int zero)
{
	fill_block_from(b, zero, 0, b->size > FILL_MAX ? FILL_MAX : b->size);
}

/* The first overwritten redzone byte of b (the right redzone first: overflows are the common
 * case) and the length of the run there; NULL when both redzones are intact. */
static const unsigned char *redzone_damage(const struct hgc_block *b, size_t *run)
{
	const unsigned char *lo = (const unsigned char *)left_fill(b), *user = (const unsigned char *)b->user;
	const unsigned char *end = user + b->size, *hi = (const unsigned char *)b->core + b->core_bytes;
	const unsigned char *bad = end + first_not(end, (size_t)(hi - end), HGC_REDZONE), *limit = hi;
	if (bad == hi) {
		bad = lo + first_not(lo, (size_t)(user - lo), HGC_REDZONE);
		limit = user;
		if (bad == user)
			return NULL;
	}
	*run = run_not(bad, (size_t)(limit - bad), HGC_REDZONE);
	return bad;
}

/* Reports a write into a redzone, found where `where` says; 1 when there was one. */
static int check_redzones(const struct hgc_block *b, uint32_t stack, uint32_t thread, int interrupted,
			  const char *where)
{
	size_t run;
	const unsigned char *bad = redzone_damage(b, &run);
	if (!bad)
		return 0;
	if (b->reported)
		return 1;
	struct hgc_error e = { .kind = "heap-buffer-overflow", .access = "write", .addr = (uintptr_t)bad,
			       .size = run, .stack = stack, .thread = thread, .place = b->alloc_stack,
			       .has_block = 1, .block = *b, .detail = where, .interrupted = interrupted };
	hgc_report(&e);
	hgc_mark_reported(b->core);
	return 1;
}

/* ---------------- allocation ---------------- */

static int q_give_back(void);

/* The allocator's block for a checked block of `total` bytes; *fresh_zero set when it comes
 * zeroed (from its byte zero_from on) from fresh pages. */
static inline char *core_alloc(size_t total, size_t align, int zero, size_t zero_from, int *fresh_zero)
{
	if (zero && total > HG_SMALL_MAX_BYTES) {
		*fresh_zero = 1; /* fresh pages: no memset touching them all */
		return hg_large_alloc_zero_from(total, align > HGC_REDZONE_BYTES ? align : 0, zero_from);
	}
	return align > HGC_REDZONE_BYTES ? hg_alloc_aligned(align, total) : hg_alloc(total);
}

/* A checked block of n bytes; `copied` of them (from the start) the caller fills at once. */
static void *alloc_block(size_t n, size_t align, int zero, size_t copied, enum hgc_alloc_kind kind,
			 const char *func, const uintptr_t *slot)
{
	uint32_t thread = hgc_thread_id();
	if (n > MAX_REQUEST_BYTES) {
		struct hgc_error e = { .kind = "allocation-size-too-big", .func = func, .size = n,
				       .stack = hgc_stack_capture(NULL), .detail = "requested size exceeds 2^47 bytes" };
		hgc_report(&e);
		errno = ENOMEM;
		return NULL;
	}
	if (align > HGC_ALIGN_MAX) {
		errno = ENOMEM;
		return NULL;
	}
	struct hgc_block rec = { .size = n, .alloc_thread = thread, .state = HGC_LIVE, .kind = (uint8_t)kind,
				 .call = call_of(func) };
	struct hgc_slot at = { NULL, NULL, 0 };
	int fresh_zero = 0, untouched = 0;
	if (hg_opt.guard) {
		/* guard_uninit leaves out blocks that libraries allocate for themselves (stdio
		 * buffers, iostreams): the kernel fills those, and would meet an inaccessible page. */
		rec.alloc_stack = hgc_stack_capture(slot);
		untouched = hg_opt.guard_uninit && !zero && hgc_stack_from_program(rec.alloc_stack);
	}
	if (!(hg_opt.guard && hgc_guard_alloc(n, align, untouched, &rec))) {
		untouched = 0;
		size_t left = align > HGC_REDZONE_BYTES ? align : HGC_REDZONE_BYTES;
		size_t total = left + n + HGC_REDZONE_BYTES;
		/* A small aligned block goes at the first aligned place past a redzone in a plain
		 * block of `total` bytes: the gap before it is the alignment at most. Aligned
		 * itself, the core took a class of a multiple of the alignment and the block sat an
		 * alignment into it: 128 KiB for 100 bytes aligned to 64 KiB, 8 KiB to 4 KiB. */
		size_t core_align = total <= HG_SMALL_MAX_BYTES ? 0 : align;
		int zeroed = zero || n > FILL_MAX; /* past FILL_MAX it must read as zero */
		size_t zero_from = zero ? 0 : left + FILL_MAX; /* before it: the fill's */
		char *core = core_alloc(total, core_align, zeroed, zero_from, &fresh_zero);
		if (unlikely(!core) && q_give_back())
			core = core_alloc(total, core_align, zeroed, zero_from, &fresh_zero);
		if (!core) {
			errno = ENOMEM;
			return NULL;
		}
		size_t usable = total <= HG_SMALL_MAX_BYTES && !fresh_zero ? hg_classes[hg_size_class(total)].size
									   : hg_usable_size(core);
		rec.core = core;
		rec.user = core_align ? core + left : (char *)hg_align_up((uintptr_t)core + HGC_REDZONE_BYTES, left);
		rec.core_bytes = hgc_core_bytes((size_t)(rec.user - core), n, usable);
		if (!hg_opt.guard) { /* the capture hides the record's cache miss */
			at = hgc_table_find(core);
			rec.alloc_stack = hgc_stack_capture(slot);
		}
	}
	if (zero && !fresh_zero && !rec.guarded) /* a guarded slot's pages are fresh */
		hgc_memset(rec.user, 0, n);
	if (!untouched) /* an untouched slot is filled on its first use (hgc_guard_touch) */
		fill_block_from(&rec, zero, copied, n > FILL_MAX ? FILL_MAX : n);
	if (!hgc_table_insert(&rec, at)) {
		if (rec.guarded)
			hgc_guard_release(&rec);
		else
			hg_free(rec.core, "free");
		errno = ENOMEM;
		return NULL;
	}
	if (unlikely(hg_stats_on))
		hg_stats_checked(rec.core, 1, n);
	return rec.user;
}

HG_HIDDEN __thread int hgc_in_heap;

/* ---------------- calls from a signal handler that interrupted the heap ---------------- */

/* malloc and free are not async-signal-safe, yet programs call them from signal handlers (a
 * SIGINT handler that calls exit, whose destructors free; a timer's handler that allocates),
 * and glibc's thread cache mostly lets them. The checked heap holds a lock or a record's
 * sequence far more often: such a call, interrupting this thread inside the heap, waited for
 * it forever (a malloc loop with a timer whose handler mallocs hung within a second; one
 * whose SIGINT handler calls exit, in 2 runs of 8). So while this thread is inside the heap,
 * a call touches none of its structures: an allocation gets a mapping of its own, unchecked
 * and listed here, and a free of a checked block waits here until the interrupted call ends.
 * The unwinder's own allocations during a capture hold no lock of ours: they pass. */
#define NESTED_MAX 1024  /* such mappings at once; past that such an allocation fails */
#define DEFERRED_MAX 256 /* frees waiting at once; past that the block stays allocated */

struct nested {
	_Atomic uintptr_t user; /* 0: free; 1: being filled or emptied */
	size_t size, bytes;     /* the request, the mapping's length */
};
static struct nested nested[NESTED_MAX];
static _Atomic unsigned nested_live;

struct deferred {
	_Atomic uintptr_t p; /* 0: free; 1: being filled or emptied */
	size_t sized;
	const char *func;
	uint32_t thread;
	uint8_t kind;
};
static struct deferred deferred[DEFERRED_MAX];
static _Atomic unsigned deferred_live;

static int nested_call(void)
{
	return unlikely(hgc_in_heap) && !hgc_stack_capturing();
}

static void *nested_alloc(size_t n, size_t align)
{
	size_t bytes = hg_align_up(n ? n : 1, HG_OS_PAGE_BYTES);
	char *p = n <= MAX_REQUEST_BYTES && align <= HGC_ALIGN_MAX ? hg_os_map(bytes, align) : NULL;
	for (unsigned i = 0; p && i < NESTED_MAX; i++) {
		uintptr_t none = 0;
		if (atomic_compare_exchange_strong(&nested[i].user, &none, 1)) {
			nested[i].size = n;
			nested[i].bytes = bytes;
			atomic_fetch_add(&nested_live, 1);
			atomic_store_explicit(&nested[i].user, (uintptr_t)p, memory_order_release);
			return p;
		}
	}
	if (p)
		hg_os_unmap(p, bytes);
	errno = ENOMEM;
	return NULL;
}

/* The entry of p when p is such a mapping, emptied (1) for nested_release; NULL otherwise. */
static struct nested *nested_claim(const void *p)
{
	for (unsigned i = 0; i < NESTED_MAX && atomic_load_explicit(&nested_live, memory_order_relaxed); i++) {
		uintptr_t u = (uintptr_t)p;
		if (atomic_load_explicit(&nested[i].user, memory_order_relaxed) == u &&
		    atomic_compare_exchange_strong(&nested[i].user, &u, 1))
			return &nested[i];
	}
	return NULL;
}

static void nested_release(struct nested *e, void *p)
{
	hg_os_unmap(p, e->bytes);
	atomic_fetch_sub(&nested_live, 1);
	atomic_store_explicit(&e->user, 0, memory_order_release);
}

/* Moves such a mapping p (its entry e, claimed) into q, n bytes long, and returns q; a NULL
 * q leaves p as it was. */
static void *nested_move(struct nested *e, void *p, void *q, size_t n)
{
	if (q) {
		hgc_memcpy(q, p, e->size < n ? e->size : n);
		nested_release(e, p);
	} else {
		atomic_store_explicit(&e->user, (uintptr_t)p, memory_order_release);
	}
	return q;
}

/* Frees p when it is such a mapping; 0 otherwise. */
static int nested_free(void *p)
{
	struct nested *e = nested_claim(p);
	if (e)
		nested_release(e, p);
	return e != NULL;
}

/* The request of such a mapping p; 0 when p is none. */
static size_t nested_size(const void *p)
{
	for (unsigned i = 0; i < NESTED_MAX && atomic_load_explicit(&nested_live, memory_order_relaxed); i++)
		if (atomic_load_explicit(&nested[i].user, memory_order_acquire) == (uintptr_t)p)
			return nested[i].size;
	return 0;
}

static void defer_free(void *p, enum hgc_alloc_kind kind, size_t sized, const char *func)
{
	for (unsigned i = 0; i < DEFERRED_MAX; i++) {
		uintptr_t none = 0;
		if (atomic_compare_exchange_strong(&deferred[i].p, &none, 1)) {
			deferred[i].sized = sized;
			deferred[i].func = func;
			deferred[i].kind = (uint8_t)kind;
			deferred[i].thread = hgc_thread_id();
			atomic_fetch_add(&deferred_live, 1);
			atomic_store_explicit(&deferred[i].p, (uintptr_t)p, memory_order_release);
			return;
		}
	}
}

static int free_checked(void *p, enum hgc_alloc_kind kind, size_t sized, const char *func,
			const uintptr_t *slot);

/* Frees what signal handlers freed while this thread (every thread: at exit) was inside the
 * heap; the free's stack is not known. */
static void free_deferred(int every_thread)
{
	uint32_t me = hgc_thread_id();
	hgc_in_heap++;
	for (unsigned i = 0; i < DEFERRED_MAX && atomic_load_explicit(&deferred_live, memory_order_relaxed); i++) {
		uintptr_t p = atomic_load_explicit(&deferred[i].p, memory_order_acquire);
		if (p <= 1 || (!every_thread && deferred[i].thread != me) ||
		    !atomic_compare_exchange_strong(&deferred[i].p, &p, 1))
			continue;
		struct deferred d = { .sized = deferred[i].sized, .func = deferred[i].func, .kind = deferred[i].kind };
		atomic_fetch_sub(&deferred_live, 1);
		atomic_store_explicit(&deferred[i].p, 0, memory_order_release);
		free_checked((void *)p, (enum hgc_alloc_kind)d.kind, d.sized, d.func, NULL);
	}
	hgc_in_heap--;
}

/* After a call into the heap: the frees that waited for it, and a signal that ends the
 * process. */
static inline void heap_left(void)
{
	if (unlikely(atomic_load_explicit(&deferred_live, memory_order_relaxed)) && !hgc_in_heap)
		free_deferred(0);
	if (unlikely(hgc_ending_signal) && !hgc_in_heap)
		hgc_end_by_signal(hgc_ending_signal, NULL);
}

void *hgc_alloc(size_t n, size_t align, int zero, enum hgc_alloc_kind kind, const char *func,
		const uintptr_t *slot)
{
	if (nested_call())
		return nested_alloc(n, align); /* zero-filled */
	hgc_in_heap++;
	void *p = alloc_block(n, align, zero, 0, kind, func, slot);
	hgc_in_heap--;
	heap_left();
	return p;
}

/* ---------------- the quarantine: freed blocks wait here, poisoned, oldest first ---------------- */

/* The queue holds the blocks in chunks of Q_CHUNK_ENTRIES, each with what it costs the
 * budget: its room in the heap, its record and its entry, all it keeps from the program. An
 * entry packs core >> 4 (cores are 16-byte aligned, below 2^47) and the cost in 16-byte
 * units below 32 MiB (0 for a larger block, whose room block.c gives again when it leaves). */
#define Q_CHUNK_ENTRIES 4093u /* a chunk is 32 KiB */
#define Q_CORE_BITS 43
#define Q_COST_UNITS_MAX ((1u << (64 - Q_CORE_BITS)) - 1)
struct q_chunk {
	struct q_chunk *next;
	uint32_t head, tail;  /* entry[head, tail) wait */
	uint64_t entry[Q_CHUNK_ENTRIES];
};
_Static_assert(sizeof(struct q_chunk) <= 32768, "a chunk is 32 KiB");

static hg_lock_t q_lock = HG_LOCK_INIT;
static struct q_chunk *q_first, *q_last, *q_spare;
static size_t q_bytes;

static uint64_t q_entry(const char *core, size_t room)
{
	size_t units = (room + sizeof(struct hgc_rec) + sizeof(uint64_t) + 15) / 16;
	return (uintptr_t)core >> 4 | (uint64_t)(units <= Q_COST_UNITS_MAX ? units : 0) << Q_CORE_BITS;
}

static char *q_core(uint64_t e)
{
	return (char *)(uintptr_t)((e & ((1ull << Q_CORE_BITS) - 1)) << 4);
}

static size_t q_cost(uint64_t e)
{
	size_t units = (size_t)(e >> Q_CORE_BITS);
	return units ? units * 16 : hgc_table_room(q_core(e)) + sizeof(struct hgc_rec) + sizeof(uint64_t);
}

/* The report of damage found in a quarantined block shows its free's stack, as the write's own
 * is not known: the detail says so. */
#define AFTER_FREE "the stack above is its free's, the write came after it"

/* Reports a write after free or into the redzones of quarantined block b, found `where`. */
static void q_check(const struct hgc_block *b, const char *where)
{
	if (b->guarded || b->reported)
		return; /* any access faulted and was reported, or an interceptor reported a write */
	size_t run;
	const char *bad = freed_damage(b, &run);
	if (bad) {
		struct hgc_error e = {
			.kind = "heap-use-after-free", .access = "write", .addr = (uintptr_t)bad, .size = run,
			.stack = b->free_stack, .thread = b->free_thread, .place = b->alloc_stack,
			.has_block = 1, .block = *b, .detail = where };
		hgc_report(&e);
	}
	check_redzones(b, b->free_stack, b->free_thread, 0, where);
}

/* The block at core leaves the quarantine: checked, then its memory goes back to the
 * allocator. */
static void q_release(char *core, const char *where)
{
	struct hgc_block b;
	if (!hgc_table_take(core, &b))
		return; /* cannot happen: a quarantined block keeps its record until here */
	q_check(&b, where);
	if (b.guarded)
		hgc_guard_release(&b);
	else
		hg_free(core, "free");
}

#define PREFETCH_LINES 8 /* of a block; longer ones are streamed by the hardware */

/* Starts loading the first lines of the block at core. */
static void prefetch_bytes(const char *core)
{
	for (unsigned i = 0; i < PREFETCH_LINES; i++)
		__builtin_prefetch(core + 64 * i);
}

/* The oldest block's entry, taken off the queue; 0 when empty. Under q_lock. */
static uint64_t q_pop_locked(void)
{
	struct q_chunk *c = q_first;
	if (!c || c->head == c->tail)
		return 0;
	uint64_t e = c->entry[c->head++];
	if (c->head == c->tail && c->head == Q_CHUNK_ENTRIES) {
		q_first = c->next;
		if (!q_first)
			q_last = NULL;
		if (q_spare)
			hg_os_unmap(c, sizeof *c);
		else
			q_spare = c;
	}
	return e;
}

/* Queues entry e; 0 when no chunk could be mapped. Under q_lock. */
static int q_append_locked(uint64_t e)
{
	struct q_chunk *c = q_last;
	if (!c || c->tail == Q_CHUNK_ENTRIES) {
		c = q_spare ? q_spare : hg_os_map(sizeof *c, 0);
		if (!c)
			return 0;
		q_spare = c == q_spare ? NULL : q_spare;
		c->next = NULL;
		c->head = c->tail = 0;
		if (q_last)
			q_last->next = c;
		else
			q_first = c;
		q_last = c;
	}
	c->entry[c->tail++] = e;
	return 1;
}

/* Blocks let out per hold of q_lock: as many as a thread's batch queues (Q_STAGE_ENTRIES), so
 * that a batch in takes one hold, not five. At 8, 16 threads of checked larson and xthread
 * spent a fifth of their time in the kernel's futex spinlock; at 32 they ran 1.55x faster
 * (the lent 16-core machine, CHECK-RESULTS.md). */
#define Q_RELEASE_BATCH 32

/* What the quarantine holds stays this far under its budget (8 MiB, or a sixteenth of it):
 * the arenas and record pools it fills are touched in 2 MiB pages, whose last ones count
 * whole, partly used (a 256 MiB quarantine of 256-byte blocks held 259.9 MiB, 255.8 with
 * 2 MiB less), and free slices stay resident in huge pages mostly used (central.c's
 * huge_page_purge: the realloc bench peaked at 279.8 MiB with 4 MiB here, 276.2 with 8).
 * Set by hgc_init. */
static size_t q_limit;

/* Up to Q_RELEASE_BATCH blocks that leave the quarantine now, so that it keeps within
 * `limit` bytes, and in *next the block that leaves after them (NULL: none). Under q_lock. */
static size_t q_take_excess_locked(char **out, char **next, size_t limit)
{
	size_t k = 0;
	while (k < Q_RELEASE_BATCH && q_bytes > limit) {
		uint64_t e = q_pop_locked();
		if (!e)
			break;
		q_bytes -= q_cost(e);
		out[k++] = q_core(e);
	}
	*next = k && q_first && q_first->head < q_first->tail ? q_core(q_first->entry[q_first->head]) : NULL;
	return k;
}

/* Lets the oldest blocks out until the quarantine holds at most `limit` bytes. Called with
 * q_lock held; returns with it released. */
static void q_let_out_unlock(size_t limit)
{
	char *out[Q_RELEASE_BATCH];
	for (;;) {
		char *next;
		size_t k = q_take_excess_locked(out, &next, limit);
		hg_unlock(&q_lock);
		/* The next block to leave was freed 256 MiB ago: its bytes start loading now, to
		 * arrive before its turn. */
		if (next)
			prefetch_bytes(next);
		for (size_t i = 0; i < k; i++)
			q_release(out[i], "found when the block left the quarantine; " AFTER_FREE);
		if (k < Q_RELEASE_BATCH)
			break;
		hg_lock(&q_lock); /* a large block may push many small ones out */
	}
}

/* Queues entries e[0..n) of freed blocks, then lets out the oldest blocks past the budget. */
static void q_queue(const uint64_t *e, uint32_t n)
{
	uint32_t queued = 0;
	hg_lock(&q_lock);
	for (; queued < n && q_append_locked(e[queued]); queued++)
		q_bytes += q_cost(e[queued]);
	q_let_out_unlock(q_limit);
	for (; queued < n; queued++) /* no memory for the queue: checked and back at once */
		q_release(q_core(e[queued]), "found when the block was freed");
}

static size_t vacated_give_back(void);

/* The heap has no memory left for a block: every block the quarantine holds is checked and
 * goes back to the allocator, and free memory to the kernel, the old places of moved blocks
 * too, before the allocation is tried again. Under an address-space limit (ulimit -v) a
 * program that runs plainly would otherwise fail checked, for the quarantine's 256 MiB. 0
 * when it held nothing. */
static int q_give_back(void)
{
	size_t held = vacated_give_back();
	hg_lock(&q_lock);
	held += q_bytes;
	q_let_out_unlock(0);
	hg_central_purge(1);
	return held > 0;
}

/* Each thread gathers its frees and queues them a batch at a time: one lock per free made
 * four threads of larson wait in futex calls (check mode 0.246 s, 0.139 with batches). 32
 * entries rather than 64 took nothing from larson or the 256 B loop (11 runs) and a quarter
 * KiB from every thread's stack, where thread-local data lives (a 16 KiB stack recursing to
 * its end faulted checked, not plain). A
 * batch holds at most 256 KiB beyond the budget, and a sixteenth of it (none with
 * quarantine=0). Its blocks are quarantined in their records, which the check at exit reads. */
#define Q_STAGE_ENTRIES 32
#define Q_STAGE_BYTES_MAX ((size_t)256 << 10)
static size_t q_stage_bytes; /* set by hgc_init */
enum { STAGE_NONE, STAGE_OPEN, STAGE_CLOSED /* the thread is exiting: frees queue at once */ };
struct q_stage {
	uint64_t entry[Q_STAGE_ENTRIES];
	uint32_t n;
	int state;
	size_t bytes;
};
static __thread struct q_stage q_mine;
static pthread_key_t q_key;
static pthread_once_t q_key_once = PTHREAD_ONCE_INIT;

/* Queues the batch from a copy, so that a free in a signal handler meanwhile starts the next. */
static void stage_flush(struct q_stage *st)
{
	uint64_t batch[Q_STAGE_ENTRIES];
	uint32_t n = st->n;
	hgc_memcpy(batch, st->entry, n * sizeof *batch);
	st->n = 0;
	st->bytes = 0;
	q_queue(batch, n);
}

/* At thread exit (a key's destructor): the batch is queued, and later frees queue at once. */
static void stage_close(void *arg)
{
	struct q_stage *st = arg;
	stage_flush(st);
	st->state = STAGE_CLOSED;
}

static void stage_key_create(void)
{
	if (pthread_key_create(&q_key, stage_close) != 0)
		q_key = (pthread_key_t)-1;
}

/* The thread's first free: the key is set, so that the thread's exit queues its batch. */
static int stage_open(struct q_stage *st)
{
	pthread_once(&q_key_once, stage_key_create);
	if (q_key == (pthread_key_t)-1)
		return 0;
	st->state = STAGE_OPEN; /* first: pthread_setspecific may allocate */
	if (pthread_setspecific(q_key, st) == 0)
		return 1;
	st->state = STAGE_CLOSED; /* no key, no exit to queue its batch: frees queue at once */
	return 0;
}

/* What a block with `room` bytes in the heap holds back there. A block of a class span holds
 * its share of the span's tail too, where no block fits: a 52 KiB block has a 64 KiB span to
 * itself, and with the arenas on huge pages that tail is resident (counting the class size
 * alone, the realloc bench peaked at 323.8 MiB; 286.6 with the tails). */
static size_t heap_share(size_t room)
{
	if (room > HG_SMALL_MAX_BYTES)
		return room; /* a span or mapping of its own, in whole slices or pages */
	const struct hg_class *c = &hg_classes[hg_size_class(room)];
	return ((size_t)c->slices << HG_SLICE_SHIFT) / c->count;
}

/* Puts the freed block at core, with `room` bytes in the heap, in the quarantine. */
static void q_push(char *core, size_t room)
{
	uint64_t e = q_entry(core, room);
	struct q_stage *st = &q_mine;
	if (unlikely(st->state != STAGE_OPEN) && (st->state == STAGE_CLOSED || !stage_open(st))) {
		q_queue(&e, 1);
		return;
	}
	st->entry[st->n++] = e;
	st->bytes += q_cost(e);
	if (st->n == Q_STAGE_ENTRIES || st->bytes >= q_stage_bytes)
		stage_flush(st);
}

/* ---------------- free ---------------- */

enum verdict { FREE_OK, FREE_MISMATCH, FREE_INTERIOR, FREE_DOUBLE, FREE_GONE };

struct free_ctx {
	const char *p;
	enum hgc_alloc_kind kind;
	size_t sized; /* the size a sized operator delete was given; 0: none */
	uint32_t stack, thread;
	struct hgc_block copy;
};

/* The program defines operator new or delete itself, scalar (HGC_BY_NEW) or array: its own
 * take memory from malloc or give it to free, so malloc's blocks and that form's mix. */
static int program_defines[HGC_BY_NEW_ARRAY + 1]; /* hgc_new_delete_init */

void hgc_new_delete_init(void)
{
	static const struct {
		const char *name;
		enum hgc_alloc_kind kind;
	} FORMS[] = { { "_Znwm", HGC_BY_NEW }, { "_ZdlPv", HGC_BY_NEW }, { "_Znam", HGC_BY_NEW_ARRAY },
		      { "_ZdaPv", HGC_BY_NEW_ARRAY } };
	for (size_t i = 0; i < sizeof FORMS / sizeof *FORMS; i++) {
		void *f = dlsym(RTLD_DEFAULT, FORMS[i].name);
		if (f && !hgc_is_own_pc((uintptr_t)f))
			program_defines[FORMS[i].kind] = 1;
	}
}

static int kinds_agree(enum hgc_alloc_kind a, enum hgc_alloc_kind b)
{
	return a == b || (a == HGC_BY_MALLOC && program_defines[b]) || (b == HGC_BY_MALLOC && program_defines[a]);
}

/* Under the record's lock: the check and the state change are one step, so two threads
 * freeing one block see one free and one double free. */
static int judge_free(struct hgc_block *b, void *arg)
{
	struct free_ctx *c = arg;
	if (!b)
		return FREE_GONE;
	c->copy = *b;
	if (b->user != c->p)
		return FREE_INTERIOR;
	if (b->state != HGC_LIVE)
		return FREE_DOUBLE;
	b->state = HGC_QUARANTINED;
	b->free_stack = c->stack;
	b->free_thread = c->thread;
	c->copy = *b;
	b->reported = 0; /* its overflow was reported; a write after the free is another error */
	return kinds_agree(b->kind, c->kind) && (!c->sized || c->sized == b->size) ? FREE_OK : FREE_MISMATCH;
}

/* The form of a malloc or free that another module's own C++ operator made, as the first frame
 * of its stack shows (stack: a block's allocation, or this free), else kind as it came. Such a
 * module binds its calls to its operators, which call malloc and free, while the program's
 * reach ours: libLLVM.so, rustc's, links its C++ runtime in, and rust-lld deleted blocks that
 * libLLVM's operator new made (13 reports of one link; valgrind, which replaces no operator
 * there, sees malloc and free on both sides). Asked only of a mismatch: it names code. */
static enum hgc_alloc_kind through_operator(enum hgc_alloc_kind kind, uint32_t stack)
{
	uintptr_t ra;
	if (kind != HGC_BY_MALLOC || hgc_stack_get(stack, &ra, 1) != 1)
		return kind;
	switch (hgc_cxx_operator(ra)) {
	case HGC_OP_NEW:
	case HGC_OP_DELETE:
		return HGC_BY_NEW;
	case HGC_OP_NEW_ARRAY:
	case HGC_OP_DELETE_ARRAY:
		return HGC_BY_NEW_ARRAY;
	default:
		return kind;
	}
}

static void report_bad_free(const char *kind, const char *func, const void *p, uint32_t stack,
			    const struct hgc_block *b, const char *detail)
{
	struct hgc_error e = { .kind = kind, .access = strcmp(func, "realloc") ? "free" : "realloc", .func = func,
			       .addr = (uintptr_t)p, .stack = stack, .place = b ? b->alloc_stack : 0, .detail = detail };
	if (b) {
		e.has_block = 1;
		e.block = *b;
	}
	hgc_report(&e);
}

/* Out of line: its message buffer would make every free's frame 4 KiB deeper, too deep for a
 * coroutine's 8 KiB stack. Or a sized delete told another size: a class deleted through a
 * base pointer whose destructor is not virtual (ASan's new-delete-type-mismatch). */
static HG_NOINLINE void report_mismatch(const char *func, const void *p, uint32_t stack, const struct hgc_block *b,
					enum hgc_alloc_kind kind, size_t sized)
{
	struct hg_buf d = { .len = 0 };
	hg_buf_str(&d, "allocated with ");
	hg_buf_str(&d, KIND_NAMES[b->kind]);
	if (kinds_agree(b->kind, kind)) { /* the sizes differ */
		hg_buf_str(&d, " for ");
		hg_buf_dec(&d, b->size);
		hg_buf_str(&d, " bytes, released with ");
		hg_buf_str(&d, FREE_NAMES[kind]);
		hg_buf_str(&d, " for ");
		hg_buf_dec(&d, sized);
		hg_buf_str(&d, " bytes");
	} else {
		hg_buf_str(&d, ", released with ");
		hg_buf_str(&d, FREE_NAMES[kind]);
	}
	d.text[d.len] = 0; /* short: never full */
	/* The block as this free found it: its free is the error's own stack, no freed-by one */
	struct hgc_block live = *b;
	live.state = HGC_LIVE;
	live.free_stack = live.free_thread = 0;
	report_bad_free("alloc-dealloc-mismatch", func, p, stack, &live, d.text);
}

int hgc_fill_of(uint64_t v)
{
	uint8_t top = (uint8_t)(v >> 56);
	if (v == hgc_uninit_word)
		return HGC_FILL_UNINIT;
	if ((top != HGC_FREED && top != HGC_REDZONE) || (v >> 16) != 0x010101010101ull * top)
		return 0; /* the 6 high bytes: the fill byte */
	return top == HGC_FREED ? HGC_FILL_FREED : HGC_FILL_REDZONE;
}

/* A second delete of an object that holds a pointer (a std::string) frees what its
 * destructor read from the freed object: the fill, which the detail names. */
static const char *describe_foreign(const void *p)
{
	static const char *const FILLS[] = {
		[HGC_FILL_UNINIT] = "the address is the fill of never-written heap bytes: a pointer read "
				    "from a block before it was written?",
		[HGC_FILL_FREED] = "the address is the fill of freed blocks: a pointer read from a freed block?",
		[HGC_FILL_REDZONE] = "the address is the fill of redzones: a pointer read from past a block's end?",
	};
	char probe;
	uintptr_t a = (uintptr_t)p, sp = (uintptr_t)&probe;
	int fill = hgc_fill_of(a);
	if (fill)
		return FILLS[fill];
	if (a - sp < ((size_t)8 << 20)) /* within 8 MiB above our frame: this thread's stack */
		return "the address is on the stack";
	return "the address is not in any block heapguard allocated (a global, or memory from elsewhere)";
}

/* The block each thread is freeing, from before its record says freed until its poison is
 * whole: a child forked meanwhile (by another thread) has the block freed and its poison cut
 * short, and its check at exit reported a write after free of the rest (4 threads
 * reallocating, 200 children: errors in 8 runs of 8). The child poisons those blocks again
 * (hgc_fork_child). Slot by thread id, a line each: past 4096 threads two may share one. */
#define FREEING_SLOTS 4096
static struct {
	_Atomic uintptr_t p;
} __attribute__((aligned(64))) freeing[FREEING_SLOTS];

/* A second free of p while another thread frees it by its pages (free_by_pages takes the
 * record before the place is kept) waits for that free's end, so that it finds the place and
 * reports the block's stacks: two threads freeing one 8 MiB block, 200 times, gave a third
 * of the reports without them. */
static void wait_other_free(const void *p)
{
	_Atomic uintptr_t *mine = &freeing[hgc_thread_id() % FREEING_SLOTS].p;
	for (unsigned i = 0; i < FREEING_SLOTS; i++)
		for (unsigned spins = 0; &freeing[i].p != mine && spins < 100000 &&
					 atomic_load_explicit(&freeing[i].p, memory_order_acquire) == (uintptr_t)p;
		     spins++)
			sched_yield();
}

/* The first half of a free of p, allocated by `kind` (and of `sized` bytes, when not 0): the
 * record says freed, the errors are reported, the redzones checked. 1 when p was a live
 * block, with *cp and *atp for the second half; 0 when there is nothing more to do. */
static int free_judged(void *p, enum hgc_alloc_kind kind, size_t sized, const char *func, const uintptr_t *slot,
		       struct free_ctx *cp, struct hgc_slot *atp)
{
	struct free_ctx c = { .p = p, .kind = kind, .sized = sized, .thread = hgc_thread_id() };
	struct hgc_slot at = hgc_table_find(p); /* the capture hides the record's cache miss */
	c.stack = slot ? hgc_stack_capture(slot) : 0; /* none: a free that waited (free_deferred) */
	int v = hgc_table_update(at, judge_free, &c);
	switch (v) {
	case FREE_GONE:
		if (hg_is_ldso_pointer(p) || nested_free(p))
			return 0;
		/* Where a block's bytes began in a slot of the heap that holds none now: a block
		 * freed there before, whose record went back with it, no quarantine holding it. */
		struct hgc_block moved;
		int freed;
		wait_other_free(p);
		if (hgc_vacated_block(p, &moved, &freed) && (const char *)p == moved.user)
			report_bad_free("double-free", func, p, c.stack, &moved,
					freed ? NULL : "realloc moved the block before: this is its old place");
		else if ((at.rec && (const char *)p == at.key + HGC_REDZONE_BYTES) ||
			 hg_large_freed_start((const char *)p - HGC_REDZONE_BYTES))
			report_bad_free("double-free", func, p, c.stack, NULL,
					"the address is where a block began that was freed before, not kept "
					"in the quarantine (--quarantine=0, or a block larger than it): its "
					"stacks went with it");
		else if (hgc_guard_slot_of(p) && hgc_guard_slot_state(hgc_guard_slot_of(p)) == HGC_SLOT_RELEASED)
			report_bad_free("double-free", func, p, c.stack, NULL,
					"the address is in the guard page slot of a block freed before, no "
					"longer in the quarantine: its stacks went with it");
		else
			report_bad_free("invalid-free", func, p, c.stack, NULL, describe_foreign(p));
		return 0;
	case FREE_INTERIOR:
		report_bad_free("invalid-free", func, p, c.stack, &c.copy,
				"the pointer is not the start of a block");
		return 0;
	case FREE_DOUBLE:
		report_bad_free("double-free", func, p, c.stack, &c.copy, NULL);
		return 0;
	case FREE_MISMATCH: {
		struct hgc_block made = c.copy;
		made.kind = (uint8_t)through_operator(made.kind, made.alloc_stack);
		enum hgc_alloc_kind by = through_operator(kind, c.stack);
		/* Such operators tail-call each other (new[] jumps to new, delete[] to delete), so
		 * their array and scalar forms cannot be told apart: both are C++'s. */
		int foreign = made.kind != c.copy.kind || by != kind;
		int agree = kinds_agree(made.kind, by) || (foreign && made.kind != HGC_BY_MALLOC && by != HGC_BY_MALLOC);
		if (!agree || (sized && sized != made.size))
			report_mismatch(func, p, c.stack, &made, by, sized);
		break;
	}
	}
	if (unlikely(hg_stats_on)) /* while its core is still the allocator's block */
		hg_stats_checked(c.copy.core, 0, c.copy.size);
	if (!hgc_guard_untouched(&c.copy)) /* never used: nothing to check */
		check_redzones(&c.copy, c.stack, 0, 0, "found when the block was freed");
	*cp = c;
	*atp = at;
	return 1;
}

static int free_by_pages(const struct hgc_block *b);

/* Frees p, allocated by `kind` (and of `sized` bytes, when not 0); returns 1 when it was a
 * live block (now in the quarantine, or its place kept: free_by_pages). */
static int free_checked_body(void *p, enum hgc_alloc_kind kind, size_t sized, const char *func,
			     const uintptr_t *slot)
{
	struct free_ctx c;
	struct hgc_slot at;
	if (!free_judged(p, kind, sized, func, slot, &c, &at))
		return 0;
	size_t share = c.copy.guarded ? at.room : heap_share(at.room);
	if (!c.copy.guarded && share + sizeof(struct hgc_rec) + sizeof(uint64_t) > hg_opt.quarantine) {
		/* More than the whole quarantine holds: it could only push every other block out
		 * and leave at once. Poisoning it would write every page of it (GNU sort's 1.7 GB
		 * buffer, mostly never touched), and the check as it left would read them back. */
		struct hgc_block b;
		if (hgc_table_take(c.copy.core, &b))
			hg_free(b.core, "free");
		return 1;
	}
	if (c.copy.guarded) {
		hgc_guard_retire(&c.copy);
	} else if (free_by_pages(&c.copy)) {
		return 1;
	} else {
		poison_block(&c.copy);
		if (c.copy.reported) /* the overflow reported before: its redzone fill comes back */
			fill_block_from(&c.copy, 1, 0, 0);
	}
	q_push(c.copy.core, share);
	return 1;
}

static int free_checked(void *p, enum hgc_alloc_kind kind, size_t sized, const char *func,
			const uintptr_t *slot)
{
	_Atomic uintptr_t *mine = &freeing[hgc_thread_id() % FREEING_SLOTS].p;
	atomic_store_explicit(mine, (uintptr_t)p, memory_order_relaxed);
	atomic_thread_fence(memory_order_release); /* the slot before the record says freed */
	int freed = free_checked_body(p, kind, sized, func, slot);
	atomic_store_explicit(mine, 0, memory_order_release); /* after the poison */
	return freed;
}

/* In a child: the blocks other threads were freeing at the fork get their poison whole. */
static void repoison_freeing(void)
{
	for (unsigned i = 0; i < FREEING_SLOTS; i++) {
		uintptr_t p = atomic_load_explicit(&freeing[i].p, memory_order_relaxed);
		struct hgc_block b;
		if (!p)
			continue;
		atomic_store_explicit(&freeing[i].p, 0, memory_order_relaxed);
		if (hgc_lookup((void *)p, &b) && b.user == (char *)p && b.state == HGC_QUARANTINED && !b.guarded)
			poison_block(&b);
	}
}

void hgc_free(void *p, enum hgc_alloc_kind kind, size_t sized, const char *func, const uintptr_t *slot)
{
	if (!p)
		return;
	int saved = errno;
	if (nested_call()) {
		if (!nested_free(p))
			defer_free(p, kind, sized, func);
	} else {
		hgc_in_heap++;
		free_checked(p, kind, sized, func, slot);
		hgc_in_heap--;
		heap_left();
	}
	errno = saved;
}

struct copy_to {
	ptrdiff_t delta; /* destination - source */
};

static int copy_run(char *lo, char *hi, void *arg)
{
	hgc_memcpy(lo + ((struct copy_to *)arg)->delta, lo, (size_t)(hi - lo));
	return 1;
}

/* ---------------- a block with a mapping of its own: its pages move ---------------- */

/* Such a block (over 2 MiB) moves by its pages (hg_large_relocate), never copied, when realloc
 * resizes it or free frees it: a buffer grown by realloc 64 KiB at a time was copied, poisoned
 * and checked whole at every step (to 16 MiB: 8.2 s, 0.22 s so, 0.15 s plain; valgrind 18 s).
 * Its old range is kept reserved and inaccessible while the ranges so kept fit in the
 * quarantine's budget (address space only): a read or write through a stale pointer faults at
 * once and is reported as a use after free, with the block's stacks (stale_use in signal.c);
 * the range then reads as zeros and the program goes on. */
#define VACATED_MAX 64
struct vacated {
	_Atomic uintptr_t lo;   /* 0: none */
	uintptr_t hi;
	struct hgc_block b;     /* the block as its move or free freed it */
	int freed;              /* by free; 0: moved by realloc */
	_Atomic uint32_t state; /* its fill's number << 2 | a VACATED_ state: a use that found
				   the entry opens the range only if it was not refilled since */
};
enum { VACATED_CLOSED, VACATED_OPENING, VACATED_OPEN, VACATED_GONE };
#define VACATED_STATE(w) ((w) & 3u)
static struct vacated vacated[VACATED_MAX];
static unsigned vacated_next; /* the oldest entry: the next to go; under vacated_lock */
static size_t vacated_bytes;
static uint32_t vacated_fills;
static hg_lock_t vacated_lock = HG_LOCK_INIT;
/* What the page map names for a kept place: a span of no blocks (locate finds no record), so
 * that the interceptors' filter, one page-map read, sees an access there. A span around the
 * places instead sent every intercepted call between them to the slow path: memcpy on a
 * thread's stack, between two freed blocks, took 28x longer. */
static struct hg_span vacated_span = { .owner = HG_OWNER_FREED };
HG_HIDDEN _Atomic unsigned hgc_vacated_live; /* entries filled: 0 spares the lookups */
HG_HIDDEN _Atomic uintptr_t hgc_vacated_lo = UINTPTR_MAX, hgc_vacated_hi; /* their span */

/* The span of the entries' ranges, anew. Under vacated_lock. */
static void vacated_bounds_locked(void)
{
	uintptr_t lo = UINTPTR_MAX, hi = 0;
	for (unsigned i = 0; i < VACATED_MAX; i++) {
		uintptr_t l = atomic_load_explicit(&vacated[i].lo, memory_order_relaxed);
		if (l && l < lo)
			lo = l;
		if (l && vacated[i].hi > hi)
			hi = vacated[i].hi;
	}
	atomic_store_explicit(&hgc_vacated_lo, lo, memory_order_relaxed);
	atomic_store_explicit(&hgc_vacated_hi, hi, memory_order_relaxed);
}

/* Gives back v's range, if any. Under vacated_lock. */
static void vacated_evict_locked(struct vacated *v)
{
	uintptr_t lo = atomic_load_explicit(&v->lo, memory_order_relaxed);
	if (!lo)
		return;
	atomic_store_explicit(&v->lo, 0, memory_order_release);
	atomic_fetch_sub_explicit(&hgc_vacated_live, 1, memory_order_relaxed);
	vacated_bytes -= v->hi - lo;
	uint32_t was = atomic_exchange_explicit(&v->state, VACATED_GONE, memory_order_acq_rel);
	hg_pagemap_set((void *)lo, v->hi - lo, NULL);
	/* A fault handler opening it (its mprotect, or a fork that cut it short) keeps the range:
	 * unmapped, another mapping could come there before that mprotect. */
	if (VACATED_STATE(was) != VACATED_OPENING)
		hg_os_unreserve((void *)lo, v->hi - lo);
}

/* Every range back: address space an allocation needs (ulimit -v). */
static size_t vacated_give_back(void)
{
	hg_lock(&vacated_lock);
	size_t bytes = vacated_bytes;
	for (unsigned i = 0; i < VACATED_MAX; i++)
		vacated_evict_locked(&vacated[i]);
	vacated_bounds_locked();
	hg_unlock(&vacated_lock);
	return bytes;
}

/* Keeps [lo, lo + bytes), reserved and inaccessible, the place of b (freed: by free, else moved
 * by realloc), within the budget; gives it back when it is too large for that. */
static void vacate(char *lo, size_t bytes, const struct hgc_block *b, int freed)
{
	if (bytes > hg_opt.quarantine) {
		hg_os_unreserve(lo, bytes);
		return; /* a stale pointer then meets whatever comes there */
	}
	hg_lock(&vacated_lock);
	/* The oldest go: the entry to fill, and those after it while the budget needs. (Testing
	 * the entry after each one given back gave back all 64 once the table was full.) */
	for (unsigned i = 0; i < VACATED_MAX && (i == 0 || vacated_bytes + bytes > hg_opt.quarantine); i++)
		vacated_evict_locked(&vacated[(vacated_next + i) % VACATED_MAX]);
	struct vacated *v = &vacated[vacated_next];
	vacated_next = (vacated_next + 1) % VACATED_MAX;
	v->hi = (uintptr_t)lo + bytes;
	v->b = *b;
	v->freed = freed;
	atomic_store_explicit(&v->state, ++vacated_fills << 2 | VACATED_CLOSED, memory_order_release);
	atomic_store_explicit(&v->lo, (uintptr_t)lo, memory_order_release);
	atomic_fetch_add_explicit(&hgc_vacated_live, 1, memory_order_relaxed);
	hg_pagemap_set(lo, bytes, &vacated_span);
	vacated_bytes += bytes;
	vacated_bounds_locked();
	hg_unlock(&vacated_lock);
}

/* The entry whose range holds addr, with *b its block, *freed (unless NULL) how it went, *lo
 * and *hi its range and *state its state word as they were together; NULL when none.
 * Lock-free: a fault handler asks. */
static struct vacated *vacated_find(const void *addr, struct hgc_block *b, int *freed, uintptr_t *lo,
				    uintptr_t *hi, uint32_t *state)
{
	uintptr_t a = (uintptr_t)addr;
	for (unsigned i = 0; i < VACATED_MAX && atomic_load_explicit(&hgc_vacated_live, memory_order_relaxed); i++) {
		struct vacated *v = &vacated[i];
		*state = atomic_load_explicit(&v->state, memory_order_acquire);
		*lo = atomic_load_explicit(&v->lo, memory_order_acquire);
		*hi = v->hi;
		if (!*lo || a < *lo || a >= *hi || VACATED_STATE(*state) == VACATED_GONE)
			continue;
		*b = v->b;
		if (freed)
			*freed = v->freed;
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&v->state, memory_order_relaxed) >> 2 == *state >> 2 &&
		    atomic_load_explicit(&v->lo, memory_order_relaxed) == *lo)
			return v;
	}
	return NULL;
}

int hgc_vacated_use(const void *addr, struct hgc_block *b, int *freed)
{
	uintptr_t lo, hi;
	uint32_t was;
	struct vacated *v = vacated_find(addr, b, freed, &lo, &hi, &was);
	if (!v || VACATED_STATE(was) == VACATED_OPEN)
		return 0; /* open and faulting still: not a use the zeros can serve (a jump there) */
	if (VACATED_STATE(was) == VACATED_OPENING)
		return 1; /* another thread opens it: retried */
	uint32_t fill = was >> 2;
	if (!atomic_compare_exchange_strong_explicit(&v->state, &was, (was & ~3u) | VACATED_OPENING,
						     memory_order_acq_rel, memory_order_acquire))
		return was >> 2 == fill && (VACATED_STATE(was) == VACATED_OPENING || VACATED_STATE(was) == VACATED_OPEN);
	/* Zeros from now on; the entry still gives the range back when it goes. One that went
	 * meanwhile left the range mapped for this access (vacated_evict_locked), and may hold
	 * another place now, whose state this must not touch: that place's next use then read as
	 * open, and the fault killed the process. The range stays this access's, for good. */
	int opened = hg_os_protect((void *)lo, hi - lo, 1);
	uint32_t opening = (was & ~3u) | VACATED_OPENING;
	atomic_compare_exchange_strong_explicit(&v->state, &opening, (was & ~3u) | VACATED_OPEN,
						memory_order_release, memory_order_relaxed);
	return opened ? 2 : 0;
}

int hgc_vacated_block(const void *addr, struct hgc_block *b, int *freed)
{
	uintptr_t lo, hi;
	uint32_t state;
	return vacated_find(addr, b, freed, &lo, &hi, &state) != NULL;
}

/* Moves live block b (p) to n bytes by its pages when it has a mapping of its own and keeps
 * one; NULL with *done 0 when it has not, or the OS refused the move (nothing changed), NULL
 * with *done 1 when the free of p found an error, which it reported. */
static void *realloc_by_pages(const struct hgc_block *b, size_t n, const uintptr_t *slot, int *done)
{
	struct hg_span *s = hg_pagemap_get((uintptr_t)b->core);
	size_t left = (size_t)(b->user - b->core), total = left + n + HGC_REDZONE_BYTES;
	*done = 0;
	if (hg_opt.guard || b->guarded || !s || s->owner != HG_OWNER_LARGE || s->arena || s->start != b->core ||
	    n > MAX_REQUEST_BYTES || total <= HG_MEDIUM_MAX_BYTES)
		return NULL;
	struct free_ctx c;
	struct hgc_slot at;
	*done = 1;
	/* Freed in its record, not yet taken out: a fork or the checks at exit meanwhile must
	 * not read its unpoisoned bytes as written after a free (free_checked's slots). */
	_Atomic uintptr_t *mine = &freeing[hgc_thread_id() % FREEING_SLOTS].p;
	atomic_store_explicit(mine, (uintptr_t)b->user, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	int live = free_judged(b->user, HGC_BY_MALLOC, 0, "realloc", slot, &c, &at);
	char *old = c.copy.core;
	size_t old_bytes = s->bytes;
	struct hgc_block gone;
	int had = live && hgc_table_take(old, &gone);
	atomic_store_explicit(mine, 0, memory_order_release);
	if (!live)
		return NULL;
	/* A kernel that cannot keep the place (before 5.7) has it unmapped, as glibc's mremap
	 * would: copying instead took 70 times as long. */
	int keep = hg_os_keeps();
	char *core = hg_large_relocate(s, total, keep);
	if (!core && keep && !hg_os_keeps())
		core = hg_large_relocate(s, total, keep = 0);
	if (!core) /* another thread's mapping came where it was to grow (hg_os_move_keep) */
		core = hg_large_relocate(s, total, keep);
	if (!core && q_give_back()) /* an address-space limit: the old places kept go first */
		core = hg_large_relocate(s, total, keep);
	if (!core) { /* the block stays as it was: live again, and counted so (stats=1) */
		*done = 0;
		if (unlikely(hg_stats_on))
			hg_stats_checked(old, 1, c.copy.size);
		if (had) {
			gone.state = HGC_LIVE;
			gone.free_stack = gone.free_thread = 0;
			gone.kind = HGC_BY_MALLOC; /* a mismatch was reported: not twice */
			hgc_table_insert(&gone, (struct hgc_slot){ NULL, NULL, 0 });
		}
		return NULL;
	}
	struct hgc_block nb = { .core = core, .user = core + left, .size = n, .alloc_thread = c.thread,
				.alloc_stack = c.stack, .state = HGC_LIVE, .kind = HGC_BY_MALLOC,
				.call = call_of("realloc") };
	nb.core_bytes = hgc_core_bytes(left, n, hg_usable_size(core));
	if (n > c.copy.size) {
		/* The old redzone and the rest of the old mapping (a cached one may hold an older
		 * block's bytes there) lie inside the block now: zero, then the fill up to
		 * FILL_MAX; past the old mapping the pages are fresh zeros already. */
		size_t was_end = old_bytes - left, from = c.copy.size;
		hg_os_zero(nb.user + from, (n < was_end ? n : was_end) - from);
		fill_block_from(&nb, 0, from, n < FILL_MAX ? n : FILL_MAX);
	} else {
		fill_block_from(&nb, 1, 0, 0); /* the redzones only */
	}
	hgc_table_insert(&nb, (struct hgc_slot){ NULL, NULL, 0 });
	if (unlikely(hg_stats_on))
		hg_stats_checked(core, 1, n);
	if (keep)
		vacate(old, old_bytes, &c.copy, 0);
	return nb.user;
}

/* Frees b, judged and checked, when it has a mapping of its own: its pages move to a new
 * place, which the allocator's cache of mappings hands to the next large block, and its place
 * is kept inaccessible. Neither poisoned nor queued: such blocks held the quarantine's memory
 * resident, and every next one came on fresh pages (bench calloc-large, buffers of 1-25 MiB
 * in a rolling window: 2.02 s and 85 MiB checked, 0.53 s and 20 MiB so; plain 1.17 s). 0
 * (nothing done) when it has no such mapping, the place would not fit in the quarantine's
 * budget, or the OS refused; never with --guard, as realloc_by_pages. */
static int free_by_pages(const struct hgc_block *b)
{
	struct hg_span *s = hg_pagemap_get((uintptr_t)b->core);
	if (hg_opt.guard || !s || s->owner != HG_OWNER_LARGE || s->arena || s->start != b->core ||
	    s->bytes <= HG_MEDIUM_MAX_BYTES || s->bytes > hg_opt.quarantine || !hg_os_keeps())
		return 0;
	size_t bytes = s->bytes;
	/* The record goes first: a child forked from here on finds no block to poison again
	 * (repoison_freeing) where its pages are gone. */
	struct hgc_block gone;
	if (!hgc_table_take(b->core, &gone))
		return 0; /* cannot happen: judged live a moment ago */
	char *core = hg_large_move_keep(s);
	if (!core) {
		hgc_table_insert(&gone, (struct hgc_slot){ NULL, NULL, 0 });
		return 0;
	}
	vacate(b->core, bytes, b, 1);
	hg_free(core, "free");
	return 1;
}

/* Always moves the block, as valgrind does, so that a stale pointer to the old one lands in
 * the quarantine (over 2 MiB: in the old place kept, realloc_by_pages) and is caught. */
static void *realloc_checked(void *p, size_t n, const uintptr_t *slot)
{
	struct hgc_block b;
	if (!hgc_lookup(p, &b) || b.user != (char *)p || b.state != HGC_LIVE) {
		struct nested *e = nested_claim(p);
		if (e) /* a signal handler's block: checked from now on */
			return nested_move(e, p, alloc_block(n, 0, 0, e->size < n ? e->size : n, HGC_BY_MALLOC,
							      "realloc", slot), n);
		free_checked(p, HGC_BY_MALLOC, 0, "realloc", slot); /* reports it */
		errno = EINVAL;
		return NULL;
	}
	int done;
	void *moved = realloc_by_pages(&b, n, slot, &done);
	if (moved || done) {
		if (!moved)
			errno = EINVAL;
		return moved;
	}
	/* The copy fills the new block's first bytes: they need no fill before it. An untouched
	 * guarded block was never written: nothing to copy. */
	size_t keep = hgc_guard_untouched(&b) ? 0 : b.size < n ? b.size : n;
	void *q = alloc_block(n, 0, 0, keep, HGC_BY_MALLOC, "realloc", slot);
	if (!q)
		return NULL;
	struct hgc_block nb;
	size_t head = keep > FILL_MAX && sparse_tail(&b) && hgc_lookup(q, &nb) && sparse_tail(&nb) ? FILL_MAX : keep;
	hgc_memcpy(q, p, head);
	if (head < keep) { /* both tails read as zero where not resident */
		struct copy_to to = { (char *)q - (char *)p };
		hg_os_resident_runs(b.user + head, keep - head, copy_run, &to);
	}
	free_checked(p, HGC_BY_MALLOC, 0, "realloc", slot);
	return q;
}

/* From a signal handler that interrupted the heap: a checked block's size cannot be read
 * there (its record may be half written), so such a block is not moved (ENOMEM). */
static void *realloc_nested(void *p, size_t n)
{
	if (!p)
		return nested_alloc(n, 0);
	struct nested *e = nested_claim(p);
	if (!e) {
		errno = ENOMEM;
		return NULL;
	}
	return nested_move(e, p, nested_alloc(n, 0), n);
}

void *hgc_realloc(void *p, size_t n, const uintptr_t *slot)
{
	if (nested_call())
		return realloc_nested(p, n);
	hgc_in_heap++;
	void *q = realloc_checked(p, n, slot);
	hgc_in_heap--;
	heap_left();
	return q;
}

size_t hgc_usable_size(const void *p)
{
	struct hgc_block b;
	if (p && !nested_call() && hgc_lookup(p, &b))
		return b.user == p && b.state == HGC_LIVE ? b.size : 0;
	return p ? nested_size(p) : 0;
}

/* ---------------- exit: the last checks and the summaries ---------------- */

/* The check at exit reads every record in address order (the quarantine's order, with a
 * lookup per block, took 54 ms of python3's run: 1 M blocks). It holds the table's locks,
 * which a report takes: the blocks it finds damaged wait here, and it goes on after them. */
#define EXIT_BATCH 64
struct exit_scan {
	struct hgc_block bad[EXIT_BATCH];
	unsigned n;
	struct hg_os_pagemap pages; /* in a forked child */
};

/* This process was forked (and has not executed since): it shares its parent's pages. */
static int forked;

static int scan_at_exit(const struct hgc_block *b, void *arg)
{
	struct exit_scan *s = arg;
	size_t run;
	if (b->guarded || b->reported) /* faulted at once, or an interceptor reported its write */
		return 1;
	/* A forked child checks only blocks on pages it no longer shares: the others hold its
	 * parent's bytes, which its parent checks. Every subshell of a bash that had freed 200,000
	 * strings compared all 256 MiB of quarantine again: 100 of them took 26 s, 1 s plain. */
	if (forked && !hg_os_pages_own(&s->pages, b->core, b->core_bytes))
		return 1;
	int bad = b->state == HGC_QUARANTINED && freed_damage(b, &run);
	if (bad || redzone_damage(b, &run))
		s->bad[s->n++] = *b;
	return s->n < EXIT_BATCH;
}

/* The context of the code that ends the process while the checks run on a stack of their own
 * (checks_on_own_stack): the one a signal interrupted, or else checks_caller, saved by the
 * switch; NULL otherwise. */
static const ucontext_t *exit_context;
static ucontext_t checks_ctx, checks_caller;

/* The process ends in a signal (a crash, abort): its stack starts at the instruction. */
static int exit_interrupted(void)
{
	return exit_context && exit_context != &checks_caller;
}

/* Where the process ends, for damage found then: captured at the first (0 on the caller's
 * stack: hgc_report captures that one). */
static uint32_t exit_stack(void)
{
	static uint32_t id;
	if (!id && exit_context)
		id = hgc_stack_capture_context(exit_context, exit_interrupted());
	return id;
}

/* Whether some thread is freeing the block at user now (free_checked's slots). */
static int being_freed(const char *user)
{
	for (unsigned i = 0; i < FREEING_SLOTS; i++)
		if (atomic_load_explicit(&freeing[i].p, memory_order_acquire) == (uintptr_t)user)
			return 1;
	return 0;
}

struct recheck {
	const struct hgc_block *was;
	int bad;
};

/* Under the record's lock: b is still the block found damaged, and still is. */
static int recheck_damage(struct hgc_block *b, void *arg)
{
	struct recheck *r = arg;
	size_t run;
	r->bad = b && b->state == r->was->state && b->user == r->was->user && b->size == r->was->size &&
		 b->alloc_stack == r->was->alloc_stack && b->free_stack == r->was->free_stack &&
		 ((b->state == HGC_QUARANTINED && freed_damage(b, &run)) || redzone_damage(b, &run));
	return 0;
}

/* Other threads run on while the checks at exit do (a detached thread's loop, a thread's
 * exit()): a block found damaged may have been in a free between its record saying freed and
 * its poison being whole (or its release, past the quarantine's size), or may have left the
 * quarantine and come back as another block since. It is reported when no thread frees it now
 * and its record, under its lock, still shows the same block and the damage: 30 % of runs of
 * 8 threads allocating in a loop while main returned, with --quarantine=0, reported false
 * writes after free. */
static int still_damaged(const struct hgc_block *b)
{
	if (being_freed(b->user))
		return 0;
	struct recheck r = { b, 0 };
	hgc_table_update(hgc_table_find(b->core), recheck_damage, &r);
	return r.bad;
}

/* At exit: every live block's redzones, and every quarantined block whole, are checked. The
 * quarantine is left as it is, so that later frees let nothing out of it (the process ends;
 * giving 256 MiB of blocks back one by one took 5-10 % of a malloc-bound program's run). */
static void check_blocks_at_exit(void)
{
	static struct exit_scan scan = { .pages = HG_OS_PAGEMAP_INIT }; /* too big for a late destructor's stack */
	hg_lock(&q_lock);
	q_first = q_last = NULL;
	q_bytes = 0;
	hg_unlock(&q_lock);
	struct hgc_foreach_at at = { 0 };
	int more;
	do {
		scan.n = 0;
		more = hgc_blocks_foreach(scan_at_exit, &scan, 1u << HGC_LIVE | 1u << HGC_QUARANTINED, &at);
		for (unsigned i = 0; i < scan.n; i++) {
			if (!still_damaged(&scan.bad[i]))
				continue;
			if (scan.bad[i].state == HGC_QUARANTINED)
				q_check(&scan.bad[i], "found at exit; " AFTER_FREE);
			else
				check_redzones(&scan.bad[i], exit_stack(), 0, exit_interrupted(), "found at exit");
		}
	} while (more);
	hg_os_pagemap_close(&scan.pages);
}

static void print_summaries(void)
{
	size_t blocks, bytes, errors, contexts, allocs, frees, allocated;
	hgc_blocks_in_use(&blocks, &bytes);
	hgc_blocks_totals(&allocs, &frees, &allocated);
	hgc_error_counts(&errors, &contexts);
	if (hgc_records_on()) {
		uint64_t v[] = { allocs, frees, allocated, bytes, blocks };
		hgc_report_counts();
		hgc_record_numbers("H", v, 5);
		return;
	}
	struct hg_buf b = { .len = 0 };
	hgc_line_start(&b);
	hg_buf_str(&b, "HEAP SUMMARY: in use at exit: ");
	hg_buf_dec(&b, bytes);
	hg_buf_str(&b, " bytes in ");
	hg_buf_dec(&b, blocks);
	hg_buf_str(&b, " blocks; total: ");
	hg_buf_dec(&b, allocs);
	hg_buf_str(&b, " allocs, ");
	hg_buf_dec(&b, frees);
	hg_buf_str(&b, " frees, ");
	hg_buf_dec(&b, allocated);
	hg_buf_str(&b, " bytes allocated\n");
	hgc_line_start(&b);
	hg_buf_str(&b, "ERROR SUMMARY: ");
	hg_buf_dec(&b, errors + hgc_leak_error_contexts());
	hg_buf_str(&b, " errors from ");
	hg_buf_dec(&b, contexts + hgc_leak_error_contexts());
	hg_buf_str(&b, " contexts\n");
	hg_buf_flush(&b);
}

static pid_t exit_pid;         /* the process whose heap this is: set at init and by fork */
static _Atomic int exit_checked; /* the checks at exit ran (once: a destructor or _exit) */

/* The checks at exit, once their caller claimed them (checks_at_exit); returns the status to
 * exit with, given the program's. */
static int checks_body(int status)
{
	free_deferred(1);
	hgc_in_heap++; /* the checks hold the heap's locks: a signal handler's calls must not wait */
	hgc_records_check_reader();
	check_blocks_at_exit();
	size_t lost = hgc_leak_check(1);
	size_t errors, contexts;
	hgc_error_counts(&errors, &contexts);
	if (!hg_opt.quiet || errors || lost || hgc_records_on())
		print_summaries();
	hgc_in_heap--;
	if (hgc_ending_signal) /* it came during the checks: the program ends by it, as it would have */
		hgc_die_of(hgc_ending_signal);
	return hg_opt.error_exitcode && (errors || lost) ? (int)hg_opt.error_exitcode : status;
}

/* The checks at exit run on a stack of their own: a thread of a small fixed stack (16 KiB)
 * overflowed its own and died by SIGSEGV unreported, and a signal handler's alternate stack
 * (64 KiB) is no bigger. The leak scan then takes this thread's stack and registers from
 * `uc`, the context a signal interrupted, or else from the caller's, saved by the switch.
 * Where no stack can be mapped, on the caller's. */
#define CHECK_STACK_BYTES ((size_t)256 << 10)
static int checks_status;

static void checks_entry(void)
{
	checks_status = checks_body(checks_status);
}

static int checks_on_own_stack(int status, const ucontext_t *uc, uintptr_t here)
{
	char *stack = hg_os_map(CHECK_STACK_BYTES, 0);
	if (!stack || getcontext(&checks_ctx) < 0)
		return checks_body(status);
	checks_ctx.uc_stack.ss_sp = stack;
	checks_ctx.uc_stack.ss_size = CHECK_STACK_BYTES;
	checks_ctx.uc_link = &checks_caller;
	makecontext(&checks_ctx, checks_entry, 0);
	checks_status = status;
	exit_context = uc ? uc : &checks_caller;
	hgc_leak_roots(exit_context, (uintptr_t)stack, (uintptr_t)stack + CHECK_STACK_BYTES, uc ? here : 0,
		       (uintptr_t)uc);
	if (swapcontext(&checks_caller, &checks_ctx) < 0)
		checks_entry();
	exit_context = NULL;
	hgc_leak_roots(NULL, 0, 0, 0, 0);
	hg_os_unmap(stack, CHECK_STACK_BYTES);
	return checks_status;
}

/* The checks end the process, whichever way they came: another thread that comes to its end
 * meanwhile waits for that (main's exit(0) while a crashed thread checked made the crash exit
 * 0; a second crash cut the checks short), and a fatal signal it brings ends the process after
 * them, as it would have. A signal that ends the process and comes to the checking thread
 * before they are under way waits for them too (hgc_end_by_signal). */
static _Atomic pid_t checks_tid;     /* the thread that runs them, once claimed */
static _Atomic int checks_running;   /* 1 while they run */
static _Atomic int death_waiting;    /* a fatal signal another thread brought meanwhile */

static void wait_for_the_end(int sig)
{
	int none = 0;
	if (sig)
		atomic_compare_exchange_strong(&death_waiting, &none, sig);
	for (;;)
		pause();
}

/* Runs the checks once per process, for a process ending by status or by signal sig (0: none);
 * uc: the context sig interrupted, if any. */
static int checks_at_exit(int status, const ucontext_t *uc, int sig)
{
	volatile char here = 0; /* a signal handler's frames, from here up to uc, are no roots */
	if (!hgc_ready)
		return status;
	pid_t self = (pid_t)hg_os_thread_id();
	if (atomic_exchange(&exit_checked, 1)) {
		pid_t owner = atomic_load(&checks_tid);
		if (owner && owner != self)
			wait_for_the_end(sig);
		return status;
	}
	atomic_store(&checks_tid, self);
	atomic_store(&checks_running, 1);
	status = checks_on_own_stack(status, uc, (uintptr_t)&here);
	atomic_store(&checks_running, 0);
	int waiting = atomic_load(&death_waiting);
	if (waiting)
		hgc_die_of(waiting);
	return status;
}

void hgc_exit_now(int status)
{
	for (;;)
		syscall(SYS_exit_group, status);
}

static HG_NOINLINE void say_no_checks(const char *why)
{
	struct hg_buf b = { .len = 0 };
	hgc_line_start(&b);
	hg_buf_str(&b, why);
	hg_buf_flush(&b);
}

/* Whether the checks at exit may run. Not in the child of a vfork or of a clone without
 * fork's handlers (another pid than the heap's): it shares its parent's memory, which the
 * checks must not change; nor from a signal handler that interrupted this thread inside the
 * heap or a check, whose locks may be held: that is said (why_not), since no summary comes. */
static int checks_may_run(const char *why_not)
{
	if (getpid() != exit_pid)
		return 0;
	if (!hgc_in_heap && !hgc_intercept_busy())
		return 1;
	if (!atomic_exchange(&exit_checked, 1))
		say_no_checks(why_not); /* its buffer out of this frame: a small stack may run this */
	return 0;
}

#define FROM_HANDLER "heapguard: the program ends from a signal handler that interrupted malloc, free " \
		     "or a checked call: no checks at exit (malloc and free are not async-signal-safe)\n"

/* exit(), or main's return. */
__attribute__((destructor)) static void check_at_exit(void)
{
	if (!checks_may_run(FROM_HANDLER))
		return;
	int status = checks_at_exit(0, NULL, 0);
	if (status)
		hgc_exit_now(status);
}

/* A program that ends by _exit (or _Exit) or quick_exit runs no destructor: the checks run
 * there, when they may. exit() ends with glibc's own _exit, which does not come here. */
HG_EXPORT void _exit(int status)
{
	if (checks_may_run(FROM_HANDLER))
		status = checks_at_exit(status, NULL, 0);
	hgc_exit_now(status);
}

HG_EXPORT void _Exit(int status)
{
	_exit(status);
}

__thread int hgc_ending_signal;

/* A program ended by SIGTERM, SIGINT (Ctrl-C), abort() and the like got no leak check and no
 * check of its blocks: valgrind runs them before such a death, and a server stopped that way
 * is how its leaks are usually asked for. Inside the heap or a check, whose locks this thread
 * may hold, they wait for the call to return (heap_left, intercept.c's leave, the checks at
 * exit themselves). */
void hgc_end_by_signal(int sig, const ucontext_t *uc)
{
	if (hgc_in_heap || hgc_intercept_busy() ||
	    (atomic_load(&checks_running) && atomic_load(&checks_tid) == (pid_t)hg_os_thread_id())) {
		hgc_ending_signal = sig;
		return;
	}
	if (getpid() == exit_pid)
		checks_at_exit(0, uc, sig);
	hgc_die_of(sig);
}

/* A fault whose default action ends the process (SIGSEGV, SIGBUS): the checks at exit first,
 * as valgrind runs them; then the fault repeats, fatal. Inside the heap or a check they
 * cannot wait for the call: there are none. */
void hgc_checks_before_fault(int sig, const ucontext_t *uc)
{
	if (checks_may_run("heapguard: the fault came inside malloc, free or a checked call: no checks at exit\n"))
		checks_at_exit(0, uc, sig);
}

/* abort_on_error: the process ends at the first report, as it asked, with no more checks. */
void hgc_no_checks_at_exit(void)
{
	atomic_store(&exit_checked, 1);
}

/* glibc's daemon() ends the parent by a call of its own _exit, which does not come here: the
 * parent's checks never ran, and the command said it wrote no summary. glibc's steps, with
 * the parent's end through ours. */
HG_EXPORT int daemon(int nochdir, int noclose)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0)
		_exit(0);
	if (setsid() < 0)
		return -1;
	if (!nochdir)
		(void)!chdir("/"); /* as glibc: one that cannot stays where it is */
	if (noclose)
		return 0;
	int fd = open("/dev/null", O_RDWR);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		close(fd); /* as glibc: EBADF when there was none */
		return -1;
	}
	if (!S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3)) {
		close(fd);
		errno = ENODEV; /* as glibc: /dev/null is not the null device */
		return -1;
	}
	for (int i = 0; i < 3; i++)
		dup2(fd, i);
	if (fd > 2)
		close(fd);
	return 0;
}

/* quick_exit ends with glibc's own _exit: the checks run as the last of its handlers (the
 * first one registered), after the program's. exit's too, for a program whose own _start
 * (-nostartfiles) never registers ld.so's destructor runner: registered before it, they run
 * after it, finding the checks done when it ran. */
__attribute__((constructor)) static void register_exit_handlers(void)
{
	at_quick_exit(check_at_exit);
	atexit(check_at_exit);
}

uint64_t hgc_uninit_word;

void hgc_init(void)
{
	/* The xor goes to run time: folded, it would put the word in this object (check.h). */
	uint64_t half = HGC_UNINIT_WORD ^ 0x5a5a5a5a5a5a5a5aull;
	__asm__("" : "+r"(half));
	hgc_uninit_word = half ^ 0x5a5a5a5a5a5a5a5aull;
	hgc_memset(freed_pattern, HGC_FREED, PATTERN_BYTES);
	for (size_t i = 0; i < sizeof uninit_pattern; i++)
		uninit_pattern[i] = hgc_uninit_byte(i);
	hgc_memset(redzone_pattern, HGC_REDZONE, PATTERN_BYTES);
	hg_arena_huge_pages = 1; /* before the first arena: see span.h */
	size_t q = hg_opt.quarantine;
	q_limit = q - (q / 16 < ((size_t)8 << 20) ? q / 16 : (size_t)8 << 20);
	q_stage_bytes = q / 16 < Q_STAGE_BYTES_MAX ? q / 16 : Q_STAGE_BYTES_MAX;
	hgc_records_init();
	exit_pid = getpid();
	if (!hg_opt.trace_children)
		hgc_untrace_children();
	/* Reports come last, after programs like coreutils have closed stderr. */
	hg_log_to((int)hg_opt.log_fd);
}

void hgc_fork_prepare(void)
{
	hg_lock(&q_lock);
	hg_lock(&vacated_lock);
	hgc_table_fork_prepare();
	hgc_stack_fork_prepare();
}

void hgc_fork_parent(void)
{
	hgc_stack_fork_parent();
	hgc_table_fork_parent();
	hg_unlock(&vacated_lock);
	hg_unlock(&q_lock);
}

void hgc_fork_child(void)
{
	forked = 1;
	exit_pid = getpid();
	atomic_store(&checks_tid, 0); /* forked while another thread checked: none here to wait for */
	atomic_store(&checks_running, 0);
	atomic_store(&death_waiting, 0);
	hgc_stack_fork_child();
	hgc_table_fork_child();
	hgc_records_fork_child();
	hg_lock_reset(&q_lock);
	hg_lock_reset(&vacated_lock);
	for (unsigned i = 0; i < VACATED_MAX; i++) { /* a handler's opening the fork cut short */
		uint32_t w = atomic_load_explicit(&vacated[i].state, memory_order_relaxed);
		if (VACATED_STATE(w) == VACATED_OPENING)
			atomic_store_explicit(&vacated[i].state, (w & ~3u) | VACATED_CLOSED, memory_order_relaxed);
	}
	repoison_freeing();
}
