/* leak.c — the leak check: a conservative mark-and-sweep from the roots over a snapshot of the
 * live blocks, valgrind's classification, and the grouped report. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "alloc/span.h"
#include "alloc/tcache.h"
#include "base/fmt.h"
#include "base/options.h"
#include "check/check.h"
#include "check/guard.h"
#include "check/sort.h"
#include "heapguard.h"
#include "os/os.h"

/*
 * The check, in the order it runs (valgrind's mc_leakcheck.c, LSan's lsan_common.cpp):
 *
 *  1. snapshot  every live block's (user, size, stack) into `ents`, sorted by address;
 *  2. roots     scanned word by word (8-byte aligned), conservatively:
 *               - the writable PT_LOAD segments of every module but ours (dl_iterate_phdr);
 *               - the calling thread's static TLS blocks (dl_iterate_phdr's dlpi_tls_data);
 *               - every private read-write anonymous mapping in /proc/self/maps. That covers
 *                 other threads' stacks, whole (their dead frames too: we cannot stop them and
 *                 read their stack pointers), their TLS and TCB (glibc puts both at the top of
 *                 the thread's stack mapping), ld.so's early allocations, and memory programs
 *                 take from mmap themselves (python's arenas), as valgrind does; but of a
 *                 thread that has ended, only the descriptor and TLS while it waits to be
 *                 joined, and nothing once joined or if detached (scan_anon);
 *               - the calling thread's own stack only from the check's entry frame up, where
 *                 its registers were spilled: a pointer left in a dead frame is no root;
 *               - every other thread's general registers, read by a tracer process that stops
 *                 each for a moment (ptrace; where it is refused, as under a debugger or a
 *                 seccomp filter, they are not read: scan_registers);
 *               - the blocks ld.so allocated, which it may reach by interior pointers only
 *                 (mark_ldso_blocks).
 *               Never scanned: heapguard's heap (the page map), guard slots, our own module,
 *               the block records (they hold no pointers: hgc_record_ranges), the stack
 *               cache (stale words of the program's stacks) and this check's own buffers.
 *  3. mark      a start pointer from a root or a reachable block makes a block reachable; an
 *               interior pointer, or any pointer from a possibly-reached block, makes it
 *               possibly lost; marked blocks are scanned in turn;
 *  4. cliques   each unreached block, in address order, scans what it points to: unreached
 *               blocks found so become indirectly lost (an earlier clique's leader too), so a
 *               lost cycle has one definitely lost block and the rest indirect;
 *  5. report    blocks grouped by (kind, allocation stack), largest bytes first.
 *
 * Other threads keep running meanwhile (at exit too: exit() does not stop them), so what they
 * change during the scan may be missed or seen twice, and a pointer a running thread moves
 * into its registers after they were read is not seen: the check is conservative, not exact.
 * Unreached blocks that another thread freed during the scan are dropped before the report
 * (drop_freed).
 * Memory that can vanish under us (mappings read from /proc/self/maps, guard slots and large
 * blocks that another thread frees) is read through process_vm_readv, which fails instead of
 * faulting; where the kernel refuses it (seccomp), memory is read in place.
 */

enum leak_kind { K_DEFINITE, K_INDIRECT, K_POSSIBLE, K_REACHABLE, K_COUNT };
enum mark { M_UNREACHED, M_REACHABLE, M_POSSIBLE, M_INDIRECT, M_GONE /* freed during the scan */ };

static const char *const KIND_IDS[K_COUNT] = { "definitely-lost", "indirectly-lost", "possibly-lost",
					       "still-reachable" };
static const char *const KIND_WORDS[K_COUNT] = { "definitely lost", "indirectly lost", "possibly lost",
						 "still reachable" };

#define FRAGILE_MIN_BYTES ((size_t)64 << 10) /* large blocks: their own mapping, may be unmapped */
#define BOUNCE_BYTES ((size_t)64 << 10)      /* process_vm_readv copies this much at a time */
#define MAX_BLOCKS 4096                      /* thread stack blocks told apart in one mapping */
#define MODULE_RANGES_MAX 4096u               /* writable segments and TLS blocks; loaded
						 segments; executable ones */
#define VTABLE_WORDS 20 /* a vtable's first words where the heuristic looks for 2 functions */
#define MAPS_MIN_BYTES ((size_t)256 << 10)
#define MAPS_MAX_BYTES ((size_t)64 << 20)
#define NO_MAPS_STACK_BYTES ((size_t)8 << 20) /* without /proc/self/maps: stack scanned */
#define SNAPSHOT_TRIES 4                     /* the heap may grow between counting and copying */
#define REGISTERS_TIMEOUT_MS 1000            /* a thread that will not stop keeps its registers */
#define RADIX_BITS 11                        /* digit of the radix sorts: 2048 counters */

/* A live block, as the snapshot saw it. Sorted by user while marking; afterwards sorted by
 * (kind, stack) and folded in place into struct group entries at the front of the array. */
struct ent {
	uintptr_t user;
	size_t size;
	uint32_t stack;
	uint8_t mark;     /* enum mark */
	uint8_t fragile;  /* guarded or large: read it through process_vm_readv */
	uint8_t new_array;/* allocated by new[]: a pointer past its count cookie is a start pointer */
	uint8_t call;     /* hgc_alloc_calls' index */
};

struct group {
	size_t bytes;
	size_t blocks;
	uint32_t stack;
	uint8_t kind;     /* enum leak_kind */
	uint8_t call;     /* hgc_alloc_calls' index (a stack calls one function: a safeguard) */
};

struct range {
	uintptr_t lo, hi;
};

/*
 * The work area: one mapping per check (nothing here calls malloc), 48 bytes per block:
 *   ents     cap entries
 *   scratch  as large as ents: the radix sort's buffer; while marking, the mark stack
 *            (2 * cap: a block is pushed at most twice) and the bucket index (<= 2 * cap + 1)
 * plus the bounce buffer and the module ranges. The skip list is mapped apart, once its
 * length is known.
 */
struct work {
	struct ent *ents;
	size_t n, cap;
	int overflow;
	void *scratch;
	uint32_t *stack;
	size_t depth;
	uint32_t *index;           /* bucket b: the first entry with user >= lo + (b << shift) */
	unsigned shift;
	struct range *skip;        /* sorted, disjoint: never scanned as roots */
	size_t nskip, skip_bytes;
	struct range *mods;        /* module segments and TLS blocks */
	size_t nmods;
	struct range *images, *code; /* every module's loaded and its executable segments, sorted */
	size_t nimages, ncode;
	uintptr_t own_lo, own_hi;  /* our module */
	unsigned char *bounce;     /* BOUNCE_BYTES */
	uintptr_t *block_ends;     /* MAX_BLOCKS: thread stack blocks in one mapping (scan_anon) */
	uintptr_t lo, hi;          /* extent of all blocks: the cheap filter before the search */
	int skip_absent;           /* no swap: pages not resident were never written (or were
				      handed back) and hold no pointer; skipping them spares
				      faulting in heapguard's own metadata reservations (tens of
				      MiB, mostly untouched) at every check */
	void *map;
	size_t map_bytes;
};

/* ---------------- radix sorting, without malloc (comparison sorting: sort.c) ---------------- */

typedef uint64_t (*key_fn)(const void *elem);

static size_t radix_counts[1u << RADIX_BITS]; /* static: one check at a time */

static void copy_words(uint64_t *d, const uint64_t *s, size_t words)
{
	for (size_t i = 0; i < words; i++)
		d[i] = s[i];
}

/* LSD radix sort by key through tmp (as large as base), over the digits in which the keys
 * differ only: a million entries sort in tens of milliseconds, where a comparison sort takes
 * ten times that. */
static void radix_sort(void *base, void *tmp, size_t n, size_t size, key_fn key)
{
	size_t w = size / 8;
	uint64_t min = UINT64_MAX, max = 0;
	char *src = base, *dst = tmp;
	for (size_t i = 0; i < n; i++) {
		uint64_t k = key(src + i * size);
		min = k < min ? k : min;
		max = k > max ? k : max;
	}
	const size_t mask = ((size_t)1 << RADIX_BITS) - 1;
	for (unsigned shift = 0; n > 1 && shift < 64 && (max - min) >> shift; shift += RADIX_BITS) {
		for (size_t d = 0; d <= mask; d++)
			radix_counts[d] = 0;
		for (size_t i = 0; i < n; i++)
			radix_counts[((key(src + i * size) - min) >> shift) & mask]++;
		size_t sum = 0;
		for (size_t d = 0; d <= mask; d++) {
			size_t c = radix_counts[d];
			radix_counts[d] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++) {
			size_t at = radix_counts[((key(src + i * size) - min) >> shift) & mask]++;
			copy_words((uint64_t *)(void *)(dst + at * size), (const uint64_t *)(void *)(src + i * size), w);
		}
		char *t = src;
		src = dst;
		dst = t;
	}
	if (src != base)
		copy_words(base, (const uint64_t *)(void *)src, n * w);
}

static uint64_t ent_user_key(const void *e)
{
	return ((const struct ent *)e)->user;
}

static int range_less(const void *a, const void *b)
{
	return ((const struct range *)a)->lo < ((const struct range *)b)->lo;
}

static unsigned kind_of(const struct ent *e)
{
	static const uint8_t BY_MARK[] = { [M_UNREACHED] = K_DEFINITE, [M_REACHABLE] = K_REACHABLE,
					   [M_POSSIBLE] = K_POSSIBLE, [M_INDIRECT] = K_INDIRECT,
					   [M_GONE] = K_COUNT };
	return BY_MARK[e->mark];
}

static uint64_t ent_group_key(const void *e)
{
	const struct ent *x = e;
	return (uint64_t)kind_of(x) << 40 | (uint64_t)x->call << 32 | x->stack;
}

/* Largest first; ties in kind order, then by stack id, so the report is stable. */
static int group_by_bytes(const void *a, const void *b)
{
	const struct group *x = a, *y = b;
	if (x->bytes != y->bytes)
		return x->bytes > y->bytes;
	if (x->kind != y->kind)
		return x->kind < y->kind;
	return x->stack != y->stack ? x->stack < y->stack : x->call < y->call;
}

_Static_assert(sizeof(struct ent) % 8 == 0 && sizeof(struct group) <= sizeof(struct ent) &&
		       sizeof(struct ent) >= 6 * sizeof(uint32_t),
	       "groups are folded into the entry array; scratch holds 6 uint32_t per entry");

/* ---------------- reading memory that may vanish ---------------- */

static int vm_read_broken; /* process_vm_readv refused (ENOSYS, EPERM): read in place */
static pid_t checking_tid; /* the thread running the check: the process's leader may have exited */
/* hgc_leak_roots: the context whose stack and registers are this thread's roots, and the
 * ranges that are not. */
static const ucontext_t *roots_uc;
static struct range roots_skip[2];
#define RED_ZONE_BYTES 128 /* below the stack pointer: a leaf function's locals (x86-64 ABI) */

/* Copies what it can of [src, src+n) (within one BOUNCE_BYTES chunk) into dst; returns the
 * bytes copied, 0 when the first page is gone. -1 when the call is unavailable. */
static ssize_t read_self(void *dst, uintptr_t src, size_t n)
{
	struct iovec local = { dst, n }, remote = { (void *)src, n };
	ssize_t r = syscall(SYS_process_vm_readv, (long)checking_tid, &local, 1L, &remote, 1L, 0L);
	if (r >= 0)
		return r;
	if (errno == EFAULT || errno == ESRCH)
		return 0;
	vm_read_broken = 1;
	return -1;
}

/* ---------------- marking ---------------- */

/* Index of the block whose user bytes hold p (a zero-size block: p at its start), or -1. */
static inline long find_block(const struct work *wk, uintptr_t p)
{
	if (p - wk->lo >= wk->hi - wk->lo)
		return -1;
	size_t b = (p - wk->lo) >> wk->shift;
	size_t lo = wk->index[b], hi = wk->index[b + 1];
	/* The answer is the last entry with user <= p: in the bucket, or the one before it. */
	if (lo == hi || wk->ents[lo].user > p) {
		if (!lo)
			return -1;
		lo--;
		hi = lo + 1;
	}
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;
		if (wk->ents[mid].user <= p)
			lo = mid;
		else
			hi = mid;
	}
	const struct ent *e = &wk->ents[lo];
	if (p < e->user || (p - e->user >= e->size && !(e->size == 0 && p == e->user)))
		return -1;
	return (long)lo;
}

/* The word at a, inside block e; 0 when it cannot be read. */
static int read_word(const struct ent *e, uintptr_t a, uintptr_t *out)
{
	if (!e->fragile || vm_read_broken) {
		*out = *(const uintptr_t *)a;
		return 1;
	}
	return read_self(out, a, sizeof *out) == (ssize_t)sizeof *out;
}

/* The range of sorted, disjoint r[0..n) that holds a, or NULL. */
static const struct range *range_of(const struct range *r, size_t n, uintptr_t a)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (a < r[mid].lo)
			hi = mid;
		else if (a >= r[mid].hi)
			lo = mid + 1;
		else
			return &r[mid];
	}
	return NULL;
}

/* A vtable, as valgrind tells one: a word in a module's image whose first VTABLE_WORDS words
 * hold at least two addresses of code, and nothing else but NULLs before the second. */
static int is_vtable(const struct work *wk, uintptr_t a)
{
	const struct range *img = (a & 7) ? NULL : range_of(wk->images, wk->nimages, a);
	if (!img)
		return 0;
	unsigned fns = 0;
	for (unsigned i = 0; i < VTABLE_WORDS && a + 8 * i + 8 <= img->hi; i++) {
		uintptr_t f = *(const uintptr_t *)(a + 8 * i);
		if (!f)
			continue;
		if (!range_of(wk->code, wk->ncode, f))
			return 0;
		if (++fns == 2)
			return 1;
	}
	return 0;
}

/* Whether p, a pointer into block e, counts as a start pointer: p is e's start, or one of
 * the interior pointers that common layouts keep in place of the start, the heuristics that
 * valgrind applies by default (memcheck's --leak-check-heuristics=all; leak_heuristics):
 *   newarray             new[] of a class with a destructor: the start plus an 8-byte count
 *                        that divides the bytes after it;
 *   length64             the start plus an 8-byte header holding the length that follows
 *                        (sqlite's allocations);
 *   stdstring            the characters of a copy-on-write std::string (libstdc++'s old ABI),
 *                        after length, capacity and reference count;
 *   multipleinheritance  a base class's part of an object (its vtable pointer) when the object
 *                        starts with a vtable pointer too: a C++ object through its second
 *                        base class, or through the object in a std::make_shared block. */
enum { H_STDSTRING = 1, H_LENGTH64 = 2, H_NEWARRAY = 4, H_MULTIPLE = 8 }; /* leak_heuristics */

static int is_start(const struct work *wk, const struct ent *e, uintptr_t p)
{
	/* The second byte too: glibc's tsearch trees, where setenv keeps the strings it made,
	 * link a node's left child as its address plus the node's colour in bit 0. Every
	 * program that set a few variables had possibly lost nodes; valgrind frees that tree
	 * with __libc_freeres before its check. */
	if (p - e->user <= 1)
		return 1;
	uint64_t on = hg_opt.leak_heuristics;
	size_t off = p - e->user;
	uintptr_t w0, w1;
	if (!on || (p & 7) || off + 8 > e->size || !read_word(e, e->user, &w0))
		return 0;
	/* newarray on every block, as valgrind tests it (the count divides what follows): an
	 * array's operator new[] may be a class's own over malloc, as ICU's in node (100 arrays
	 * of 413 KB possibly lost in one Intl call); ours told new[]'s blocks apart already. */
	if (off == 8 && w0 && (on & H_NEWARRAY) && (e->new_array ? w0 <= e->size - 8 : (e->size - 8) % w0 == 0))
		return 1;
	if (off == 8 && w0 && (on & H_LENGTH64) && w0 == e->size - 8)
		return 1;
	if ((on & H_STDSTRING) && off == 24 && read_word(e, e->user + 8, &w1) && w1 == e->size - 25 && w0 <= w1)
		return 1;
	return (on & H_MULTIPLE) && read_word(e, p, &w1) && is_vtable(wk, w1) && is_vtable(wk, w0);
}

static inline void push(struct work *wk, size_t i)
{
	wk->stack[wk->depth++] = (uint32_t)i;
}

/* Phase 3: a word seen in a root (definite) or in a marked block. */
static inline void mark_word(struct work *wk, uintptr_t p, int from_definite)
{
	long i = find_block(wk, p);
	if (i < 0)
		return;
	struct ent *e = &wk->ents[i];
	if (from_definite && e->mark != M_REACHABLE && is_start(wk, e, p)) {
		e->mark = M_REACHABLE;
		push(wk, (size_t)i);
	} else if (e->mark == M_UNREACHED) {
		e->mark = M_POSSIBLE;
		push(wk, (size_t)i);
	}
}

/* Phase 4: a word seen in a block of the clique led by `leader`. */
static inline void clique_word(struct work *wk, uintptr_t p, size_t leader)
{
	long i = find_block(wk, p);
	if (i < 0 || (size_t)i == leader || wk->ents[i].mark != M_UNREACHED)
		return;
	wk->ents[i].mark = M_INDIRECT;
	push(wk, (size_t)i);
}

/* Calls mark_word (leader < 0) or clique_word on each aligned word of [p, p+n), n a multiple
 * of 8, p readable. */
static void scan_words(struct work *wk, const uintptr_t *p, size_t words, int from_definite, long leader)
{
	for (size_t i = 0; i < words; i++) {
		uintptr_t v = p[i];
		if (v - wk->lo >= wk->hi - wk->lo)
			continue;
		if (leader < 0)
			mark_word(wk, v, from_definite);
		else
			clique_word(wk, v, (size_t)leader);
	}
}

/* Scans [lo, hi) (8-byte aligned), in place or through the bounce buffer; pages that vanished
 * are skipped. */
static void scan_range(struct work *wk, uintptr_t lo, uintptr_t hi, int fragile, int from_definite,
		       long leader)
{
	if (!fragile || vm_read_broken) {
		scan_words(wk, (const uintptr_t *)lo, (hi - lo) / 8, from_definite, leader);
		return;
	}
	while (lo < hi) {
		size_t n = hi - lo < BOUNCE_BYTES ? hi - lo : BOUNCE_BYTES;
		ssize_t got = read_self(wk->bounce, lo, n);
		if (got < 0) { /* unavailable: in place from here on */
			scan_words(wk, (const uintptr_t *)lo, (hi - lo) / 8, from_definite, leader);
			return;
		}
		scan_words(wk, (const uintptr_t *)(void *)wk->bounce, (size_t)got / 8, from_definite, leader);
		lo += (size_t)got;
		if ((size_t)got < n) /* the page at lo is gone: go on after it */
			lo = (lo | (HG_OS_PAGE_BYTES - 1)) + 1;
	}
}

static void scan_block(struct work *wk, size_t i, long leader)
{
	const struct ent *e = &wk->ents[i];
	uintptr_t lo = hg_align_up(e->user, 8), hi = (e->user + e->size) & ~(uintptr_t)7;
	if (lo < hi)
		scan_range(wk, lo, hi, e->fragile, e->mark == M_REACHABLE, leader);
}

static void drain(struct work *wk, long leader)
{
	while (wk->depth)
		scan_block(wk, wk->stack[--wk->depth], leader);
}

/* ---------------- roots ---------------- */

static int scan_run(char *lo, char *hi, void *wk)
{
	scan_range(wk, (uintptr_t)lo, (uintptr_t)hi, 1, 1, -1);
	return 1;
}

/* Scans the root [lo, hi), its resident pages only when skip_absent. */
static void scan_resident(struct work *wk, uintptr_t lo, uintptr_t hi)
{
	if (wk->skip_absent)
		hg_os_resident_runs((char *)lo, hi - lo, scan_run, wk);
	else
		scan_range(wk, lo, hi, 1, 1, -1);
}

/* Scans [lo, hi) as a root, less the skip ranges and heapguard's heap. */
static void scan_root(struct work *wk, uintptr_t lo, uintptr_t hi)
{
	lo = hg_align_up(lo, 8);
	hi &= ~(uintptr_t)7;
	/* The first skip range that ends after lo. */
	size_t s = 0, e = wk->nskip;
	while (s < e) {
		size_t m = (s + e) / 2;
		if (wk->skip[m].hi <= lo)
			s = m + 1;
		else
			e = m;
	}
	while (lo < hi) {
		if (s < wk->nskip && wk->skip[s].lo <= lo) {
			lo = wk->skip[s++].hi;
			continue;
		}
		uintptr_t end = s < wk->nskip && wk->skip[s].lo < hi ? wk->skip[s].lo : hi;
		/* Cut out heap slices (64 KiB granules of the page map). */
		while (lo < end) {
			uintptr_t g = (lo | (HG_SLICE_BYTES - 1)) + 1;
			uintptr_t stop = g < end ? g : end;
			if (!hg_pagemap_get(lo)) {
				while (stop < end && !hg_pagemap_get(stop))
					stop = stop + HG_SLICE_BYTES < end ? stop + HG_SLICE_BYTES : end;
				scan_resident(wk, lo, stop);
			}
			lo = stop;
		}
	}
}

struct phdr_ctx {
	struct work *wk;
	uintptr_t own_pc;
};

static void add_module_range(struct work *wk, uintptr_t lo, uintptr_t hi)
{
	if (wk->nmods < MODULE_RANGES_MAX && lo < hi)
		wk->mods[wk->nmods++] = (struct range){ lo, hi };
}

/* Collects every module's writable segments (to the page's end: ld.so's start-up allocator
 * uses the rest of its last page) and this thread's TLS blocks, every module's loaded and
 * executable segments (for is_vtable); finds our own module. */
static int phdr_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	struct phdr_ctx *c = arg;
	uintptr_t lo = UINTPTR_MAX, hi = 0;
	int own = 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t a = info->dlpi_addr + ph->p_vaddr, b = a + ph->p_memsz;
		if (ph->p_type != PT_LOAD)
			continue;
		lo = a < lo ? a : lo;
		hi = b > hi ? b : hi;
		own |= c->own_pc >= a && c->own_pc < b;
	}
	if (own) {
		c->wk->own_lo = lo & ~(uintptr_t)(HG_OS_PAGE_BYTES - 1);
		c->wk->own_hi = hg_align_up(hi, HG_OS_PAGE_BYTES);
		return 0;
	}
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t a = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type == PT_LOAD && ph->p_memsz && c->wk->nimages < MODULE_RANGES_MAX)
			c->wk->images[c->wk->nimages++] = (struct range){ a, a + ph->p_memsz };
		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && ph->p_memsz && c->wk->ncode < MODULE_RANGES_MAX)
			c->wk->code[c->wk->ncode++] = (struct range){ a, a + ph->p_memsz };
		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_W))
			add_module_range(c->wk, a & ~(uintptr_t)(HG_OS_PAGE_BYTES - 1),
					 hg_align_up(a + ph->p_memsz, HG_OS_PAGE_BYTES));
		else if (ph->p_type == PT_TLS && info->dlpi_tls_data)
			add_module_range(c->wk, (uintptr_t)info->dlpi_tls_data,
					 (uintptr_t)info->dlpi_tls_data + ph->p_memsz);
	}
	return 0;
}

/* /proc/self/maps, whole, into a mapping of its own; NULL when it cannot be read. */
static char *read_maps(size_t *len, size_t *map_bytes)
{
	for (size_t cap = MAPS_MIN_BYTES; cap <= MAPS_MAX_BYTES; cap *= 2) {
		char *buf = hg_os_map(cap, 0);
		if (!buf)
			return NULL;
		int fd = hg_os_open_proc("maps");
		if (fd < 0) {
			hg_os_unmap(buf, cap);
			return NULL;
		}
		size_t n = 0;
		ssize_t r;
		while (n < cap && (r = syscall(SYS_read, fd, buf + n, cap - n)) > 0)
			n += (size_t)r;
		syscall(SYS_close, fd);
		if (n < cap) {
			*len = n;
			*map_bytes = cap;
			return buf;
		}
		hg_os_unmap(buf, cap); /* did not fit: again, twice as large */
	}
	return NULL;
}

/* Private read-write mappings that are anonymous: no path, or a bracketed name ([heap],
 * [stack], [anon:...]). */
static int is_anon_rw(const char *perms, const char *path, const char *eol)
{
	if (perms[0] != 'r' || perms[1] != 'w' || perms[3] != 'p')
		return 0;
	return path == eol || *path == '[';
}

/* A loop: the string functions are the library's checking ones (check.h). */
static int starts(const char *s, const char *eol, const char *prefix)
{
	for (; *prefix; s++, prefix++)
		if (s == eol || *s != *prefix)
			return 0;
	return 1;
}

/* The other read-write mappings that valgrind reads as roots too: a file's, private or shared
 * (the JVM maps its class-data archive so, and keeps blocks from there: 92 of them looked lost
 * in `java -version`), and shared anonymous memory (/dev/zero, /SYSV..., /memfd:...). The
 * modules' own are read again, a few pages. Never a device's, which a read may change or hang
 * on (memory files under /dev/shm and /dev/hugepages are read), nor an anon_inode's (io_uring's
 * rings, perf's buffers). */
static int is_file_rw(const char *perms, const char *path, const char *eol)
{
	if (perms[0] != 'r' || perms[1] != 'w' || path == eol || *path != '/')
		return 0;
	return !starts(path, eol, "/dev/") || starts(path, eol, "/dev/zero") || starts(path, eol, "/dev/shm/") ||
	       starts(path, eol, "/dev/hugepages/");
}

/* Live guard slots are blocks, scanned as such. */
static int is_guard_region(uintptr_t a)
{
	char *slot, *below, *above;
	return hgc_guard_place((const void *)a, &slot, &below, &above) != HGC_GUARD_OUTSIDE;
}

/* ---- thread stacks ----
 * A thread's stack block ends with its descriptor (struct pthread), whose first words are the
 * TCB header: `tcb` (word 0) and `self` (word 2) both point at it; its static TLS lies just
 * below it. When the thread ends, the kernel clears the descriptor's tid (CLONE_CHILD_CLEARTID:
 * 0), and glibc keeps the block for the next thread. Its old frames are no roots (valgrind
 * does not scan them either): a block only they point to is lost. Until the thread is joined
 * (tid -1 then), its descriptor keeps its result and the block its TLS, which valgrind counts
 * as roots; a detached thread (`joinid`, somewhere past the header, points at the descriptor
 * itself) is never joined. One mapping may hold several blocks: glibc's with no guard page,
 * or a program's pool of stacks for pthread_attr_setstack. Each block ends on a page, its
 * descriptor as far below its end as the mapping's topmost one is. The tid's place is found
 * in this thread's own descriptor, where it holds gettid(); -1 when it cannot be told. */
static long tid_offset(void)
{
	const char *self = (const char *)pthread_self();
	const uintptr_t *w = (const uintptr_t *)self;
	if (w[0] != (uintptr_t)self || w[2] != (uintptr_t)self)
		return -1;
	pid_t tid = (pid_t)hg_os_thread_id();
	for (long off = 24; off < 4096; off += 4) {
		pid_t v;
		__builtin_memcpy(&v, self + off, sizeof v);
		if (v == tid)
			return off;
	}
	return -1;
}

static int lowest_tls(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	uintptr_t *low = arg, t = (uintptr_t)info->dlpi_tls_data, self = (uintptr_t)pthread_self();
	if (t && t < *low && self - t < ((size_t)1 << 20)) /* static TLS, not a dlopen'd module's */
		*low = t;
	return 0;
}

/* How far below a descriptor its thread's static TLS begins. */
static uintptr_t static_tls_bytes(void)
{
	uintptr_t self = (uintptr_t)pthread_self(), low = self;
	dl_iterate_phdr(lowest_tls, &low);
	return self - low;
}

#define DESCRIPTOR_AREA 8192 /* where the topmost descriptor is looked for: the mapping's last bytes */
enum thread_state { T_NONE, T_LIVE, T_UNJOINED, T_GONE };

struct stacks {
	struct work *wk;
	long tid_off;
	uintptr_t lo, d;           /* the mapping's start; a descriptor's distance below its block's end */
	uintptr_t *ends;           /* block ends found, ascending, the state in the low bits */
	size_t n;
};

/* What the descriptor copied at desc (n bytes, up to its block's end) tells of its thread. */
static enum thread_state descriptor_state(const char *desc, uintptr_t at, size_t n, long tid_off)
{
	const uintptr_t *w = (const uintptr_t *)(const void *)desc;
	if (n < (size_t)tid_off + 4 || w[0] != at || w[2] != at)
		return T_NONE;
	pid_t tid;
	__builtin_memcpy(&tid, desc + tid_off, sizeof tid);
	if (tid != 0)
		return tid > 0 ? T_LIVE : T_GONE;
	for (size_t i = 3; i < n / 8; i++)
		if (w[i] == at)
			return T_GONE; /* detached */
	return T_UNJOINED;
}

/* The state of the block ending at end, its descriptor read through the bounce buffer: a
 * detached thread ending now unmaps its stack (read in place, a third of the runs of a program
 * that kept starting threads as it exited died). T_GONE when the memory is. */
static enum thread_state block_state(struct stacks *st, uintptr_t end)
{
	uintptr_t at = end - st->d;
	const char *copy = (const char *)at;
	if (!vm_read_broken) {
		ssize_t got = read_self(st->wk->bounce, at, st->d);
		if (got >= 0 && (size_t)got < st->d)
			return T_GONE;
		if (got > 0)
			copy = (const char *)st->wk->bounce;
	}
	return descriptor_state(copy, at, st->d, st->tid_off);
}

/* The topmost descriptor's distance below hi, 0 when the mapping ends with none (or it is
 * gone: ~0). */
static uintptr_t top_descriptor(struct work *wk, uintptr_t lo, uintptr_t hi, long tid_off)
{
	if (tid_off < 0 || hi - lo < 2 * DESCRIPTOR_AREA)
		return 0;
	uintptr_t top = hi - DESCRIPTOR_AREA;
	const char *copy = (const char *)top;
	if (!vm_read_broken) {
		ssize_t got = read_self(wk->bounce, top, DESCRIPTOR_AREA);
		if (got >= 0 && got < DESCRIPTOR_AREA)
			return ~(uintptr_t)0;
		if (got > 0)
			copy = (const char *)wk->bounce;
	}
	for (size_t off = 0; off + (size_t)tid_off + 4 <= DESCRIPTOR_AREA; off += 8) {
		const uintptr_t *w = (const uintptr_t *)(const void *)(copy + off);
		if (w[0] == top + off && w[2] == top + off)
			return DESCRIPTOR_AREA - off;
	}
	return 0;
}

/* Looks for block ends on the pages of a resident run (their descriptors are written). */
static int find_blocks(char *run_lo, char *run_hi, void *arg)
{
	struct stacks *st = arg;
	uintptr_t first = hg_align_up((uintptr_t)run_lo + st->d, HG_OS_PAGE_BYTES);
	for (uintptr_t end = first; end <= (uintptr_t)run_hi; end += HG_OS_PAGE_BYTES) {
		enum thread_state t = end - st->d >= st->lo ? block_state(st, end) : T_NONE;
		if (t == T_NONE)
			continue;
		if (st->n == MAX_BLOCKS)
			return 0;
		st->ends[st->n++] = end | t;
	}
	return 1;
}

/* Scans an anonymous mapping: whole, or, when it holds thread stack blocks, the live threads'
 * (the calling thread's from sp up) and what an unjoined thread left (descriptor and TLS). */
static void scan_anon(struct work *wk, uintptr_t lo, uintptr_t hi, uintptr_t sp, long tid_off, uintptr_t tls)
{
	uintptr_t d = top_descriptor(wk, lo, hi, tid_off);
	if (d == ~(uintptr_t)0)
		return;
	struct stacks st = { wk, tid_off, lo, d, wk->block_ends, 0 };
	if (d) { /* blocks ending below the top one: on resident pages only where nothing is swapped */
		int all = wk->skip_absent ? hg_os_resident_runs((char *)lo, hi - lo, find_blocks, &st)
					  : find_blocks((char *)lo, (char *)hi, &st);
		if (!all || !st.n || (st.ends[st.n - 1] & ~(uintptr_t)3) != hi)
			st.n = 0; /* too many, or the top one gone meanwhile: scanned whole */
	}
	if (!st.n)
		scan_root(wk, sp >= lo && sp < hi ? sp : lo, hi);
	for (size_t i = 0, below = lo; i < st.n; i++) {
		uintptr_t end = st.ends[i] & ~(uintptr_t)3, from = end;
		enum thread_state t = (enum thread_state)(st.ends[i] & 3);
		if (t == T_LIVE)
			from = sp >= below && sp < end ? sp : below;
		else if (t == T_UNJOINED)
			from = end - d - tls > below ? end - d - tls : below;
		if (from < end)
			scan_root(wk, from, end);
		below = end;
	}
}

/* Scans every anonymous read-write mapping but exited threads' stacks, the calling thread's
 * stack from sp up only; then the files' (is_file_rw): through process_vm_readv, which fails
 * where a page lies past the file's end, a read in place would end in SIGBUS. */
static void scan_maps(struct work *wk, const char *text, size_t len, uintptr_t sp)
{
	long tid_off = tid_offset();
	uintptr_t tls = static_tls_bytes();
	const char *p = text, *end = text + len;
	while (p < end) {
		const char *eol = p;
		while (eol < end && *eol != '\n')
			eol++;
		struct hg_os_maps_line m;
		hg_os_maps_line(p, eol, &m);
		if (m.perms + 4 <= eol && m.lo < m.hi && is_anon_rw(m.perms, m.path, eol) && !is_guard_region(m.lo))
			scan_anon(wk, m.lo, m.hi, sp, tid_off, tls);
		else if (m.perms + 4 <= eol && m.lo < m.hi && is_file_rw(m.perms, m.path, eol) && !vm_read_broken)
			scan_root(wk, m.lo, m.hi);
		p = eol + 1;
	}
}

/* ---------------- snapshot ---------------- */

static int take(const struct hgc_block *b, void *arg)
{
	struct work *wk = arg;
	if (wk->n == wk->cap) {
		wk->overflow = 1;
		return 0;
	}
	struct ent *e = &wk->ents[wk->n];
	e->user = (uintptr_t)b->user;
	e->size = b->size;
	e->stack = b->alloc_stack;
	e->mark = M_UNREACHED;
	e->fragile = b->guarded || b->size >= FRAGILE_MIN_BYTES;
	e->new_array = b->kind == HGC_BY_NEW_ARRAY;
	e->call = b->call;
	wk->n++;
	return 1;
}

static void work_free(struct work *wk)
{
	if (wk->map)
		hg_os_unmap(wk->map, wk->map_bytes);
	if (wk->skip)
		hg_os_unmap(wk->skip, wk->skip_bytes);
	wk->map = NULL;
	wk->skip = NULL;
	wk->nskip = 0;
}

/* Maps the work area for cap blocks; 0 when out of memory. */
static int work_alloc(struct work *wk, size_t cap)
{
	size_t bytes = 2 * cap * sizeof(struct ent) + 3 * MODULE_RANGES_MAX * sizeof(struct range) + BOUNCE_BYTES +
		       MAX_BLOCKS * sizeof(uintptr_t);
	bytes = hg_align_up(bytes, HG_OS_PAGE_BYTES);
	char *m = hg_os_map(bytes, 0);
	if (!m)
		return 0;
	wk->map = m;
	wk->map_bytes = bytes;
	wk->cap = cap;
	wk->bounce = (unsigned char *)m; /* first: page aligned */
	m += BOUNCE_BYTES;
	wk->block_ends = (uintptr_t *)(void *)m;
	m += MAX_BLOCKS * sizeof(uintptr_t);
	wk->ents = (struct ent *)(void *)m;
	m += cap * sizeof(struct ent);
	wk->scratch = m;
	m += cap * sizeof(struct ent);
	wk->mods = (struct range *)(void *)m;
	wk->images = wk->mods + MODULE_RANGES_MAX;
	wk->code = wk->images + MODULE_RANGES_MAX;
	return 1;
}

/* Copies the live blocks, sorted by address; 0 when the work area cannot be mapped. */
static int snapshot(struct work *wk)
{
	for (int tries = 0; tries < SNAPSHOT_TRIES; tries++) {
		size_t blocks, bytes;
		hgc_blocks_in_use(&blocks, &bytes);
		if (!work_alloc(wk, blocks + blocks / 8 + 1024))
			return 0;
		wk->n = 0;
		wk->overflow = 0;
		struct hgc_foreach_at from = { 0 };
		hgc_blocks_foreach(take, wk, 1u << HGC_LIVE, &from);
		if (!wk->overflow || tries == SNAPSHOT_TRIES - 1)
			break; /* the last try keeps what fitted */
		work_free(wk);
	}
	radix_sort(wk->ents, wk->scratch, wk->n, sizeof *wk->ents, ent_user_key);
	wk->lo = wk->n ? wk->ents[0].user : 1;
	wk->hi = wk->n ? wk->ents[wk->n - 1].user + wk->ents[wk->n - 1].size + 1 : 1;
	return 1;
}

static void count_range(uintptr_t lo, uintptr_t hi, void *arg)
{
	(void)lo, (void)hi;
	++*(size_t *)arg;
}

struct skip_fill {
	struct range *at;
	size_t n, cap;
};

static void add_skip(uintptr_t lo, uintptr_t hi, void *arg)
{
	struct skip_fill *f = arg;
	if (f->n < f->cap) /* record chunks other threads mapped since the count are scanned */
		f->at[f->n++] = (struct range){ lo, hi };
}

/* The skip list: the block records, the stack cache, the alternate signal stacks, our module,
 * the work area, the maps text. The stack cache keeps words of the program's stacks, a saved
 * register among them: a list's node that libstdc++ had in rbp while the nodes were made kept
 * a lost std::list of 200 strings possibly lost, where valgrind says definitely and
 * indirectly. */
static void build_skips(struct work *wk, uintptr_t maps, size_t maps_bytes)
{
	size_t ranges = 0;
	hgc_record_ranges(count_range, &ranges);
	hgc_stack_cache_ranges(count_range, &ranges);
	hgc_altstack_ranges(count_range, &ranges);
	wk->skip_bytes = hg_align_up((ranges + 6) * sizeof(struct range), HG_OS_PAGE_BYTES);
	wk->skip = hg_os_map(wk->skip_bytes, 0);
	if (!wk->skip)
		return; /* then the records are scanned too: they hold no pointers, only time */
	struct skip_fill fill = { wk->skip, 0, ranges };
	hgc_record_ranges(add_skip, &fill);
	hgc_stack_cache_ranges(add_skip, &fill);
	hgc_altstack_ranges(add_skip, &fill);
	size_t k = fill.n;
	wk->skip[k++] = roots_skip[0];
	wk->skip[k++] = roots_skip[1];
	wk->skip[k++] = (struct range){ wk->own_lo, wk->own_hi };
	wk->skip[k++] = (struct range){ (uintptr_t)wk->map, (uintptr_t)wk->map + wk->map_bytes };
	wk->skip[k++] = (struct range){ (uintptr_t)wk->skip, (uintptr_t)wk->skip + wk->skip_bytes };
	if (maps)
		wk->skip[k++] = (struct range){ maps, maps + maps_bytes };
	hgc_sort(wk->skip, k, sizeof *wk->skip, range_less);
	size_t m = 0;
	for (size_t i = 0; i < k; i++) {
		if (wk->skip[i].lo >= wk->skip[i].hi)
			continue;
		if (m && wk->skip[i].lo <= wk->skip[m - 1].hi) {
			if (wk->skip[i].hi > wk->skip[m - 1].hi)
				wk->skip[m - 1].hi = wk->skip[i].hi;
		} else {
			wk->skip[m++] = wk->skip[i];
		}
	}
	wk->nskip = m;
}

/* Buckets of 2^shift bytes over [lo, hi), at most 2n of them, each pointing at its first
 * entry: a lookup searches one bucket instead of the whole array. */
static void build_index(struct work *wk)
{
	size_t nb = 1;
	while (nb < wk->n)
		nb <<= 1;
	unsigned shift = 0;
	while ((wk->hi - wk->lo - 1) >> shift >= nb)
		shift++;
	wk->shift = shift;
	wk->stack = wk->scratch;
	wk->index = wk->stack + 2 * wk->cap;
	size_t i = 0;
	for (size_t b = 0; b <= nb; b++) {
		uintptr_t start = wk->lo + ((uintptr_t)b << shift);
		while (i < wk->n && wk->ents[i].user < start)
			i++;
		wk->index[b] = (uint32_t)i;
	}
}

/* Blocks that ld.so allocated are its own until the process ends, and it keeps some only
 * through interior pointers: a thread's DTV through dtv + 1 in the thread's TCB, a
 * dl_find_object segment (every dlopen) through its start rounded up to 128 bytes. They are
 * roots, as LSan has them; valgrind frees the second kind with __libc_freeres before its
 * check and reports the first as possibly lost. */
static void mark_ldso_blocks(struct work *wk)
{
	for (size_t i = 0; i < wk->n; i++) {
		uintptr_t pc;
		if (hgc_stack_get(wk->ents[i].stack, &pc, 1) && hg_is_ldso_pointer((const void *)pc)) {
			wk->ents[i].mark = M_REACHABLE;
			push(wk, i);
		}
	}
}

/* The other threads' registers are roots: a pointer that one holds only there (blocked in a
 * system call with it in a callee-saved register) keeps its block, as valgrind's does. Each
 * thread is stopped for the moment its registers are read, then goes on. */
static void scan_registers(struct work *wk)
{
	enum { MAX_THREADS = 1 << 16 };
	size_t tid_bytes = MAX_THREADS * sizeof(int);
	int *tids = hg_os_map(tid_bytes, 0);
	if (!tids)
		return;
	size_t n = hg_os_threads(tids, MAX_THREADS), k = 0;
	for (size_t i = 0; i < n; i++)
		if (tids[i] != checking_tid)
			tids[k++] = tids[i];
	size_t bytes = k * (sizeof(uintptr_t[HG_OS_REGS_WORDS]) + 1);
	uintptr_t(*regs)[HG_OS_REGS_WORDS] = k ? hg_os_map(bytes, 0) : NULL;
	if (regs) {
		unsigned char *got = (unsigned char *)(regs + k);
		hg_os_thread_registers(tids, k, regs, got, REGISTERS_TIMEOUT_MS);
		for (size_t i = 0; i < k; i++)
			if (got[i])
				scan_words(wk, regs[i], HG_OS_REGS_WORDS, 1, -1);
		hg_os_unmap(regs, bytes);
	}
	hg_os_unmap(tids, tid_bytes);
}

/* Phases 2-4. sp: where the scan of this thread's stack starts. */
static void mark_all(struct work *wk, uintptr_t sp)
{
	struct phdr_ctx pc = { wk, (uintptr_t)&mark_all };
	dl_iterate_phdr(phdr_cb, &pc);
	hgc_sort(wk->images, wk->nimages, sizeof *wk->images, range_less);
	hgc_sort(wk->code, wk->ncode, sizeof *wk->code, range_less);
	size_t maps_len = 0, maps_bytes = 0;
	char *maps = read_maps(&maps_len, &maps_bytes);
	build_skips(wk, (uintptr_t)maps, maps_bytes);
	build_index(wk);
	wk->skip_absent = !hg_os_has_swap();
	mark_ldso_blocks(wk);
	for (size_t i = 0; i < wk->nmods; i++)
		scan_root(wk, wk->mods[i].lo, wk->mods[i].hi);
	scan_registers(wk);
	if (roots_uc)
		scan_words(wk, (const uintptr_t *)roots_uc->uc_mcontext.gregs, NGREG, 1, -1);
	if (maps) {
		scan_maps(wk, maps, maps_len, sp);
		hg_os_unmap(maps, maps_bytes);
	} else {
		/* No /proc: at least this thread's stack, up to the environment strings on the main
		 * thread's, else a bounded stretch (the rest of a thread stack, then pages that
		 * fail to read). Other threads' stacks and mmap'd memory are missed. */
		uintptr_t top = sp + NO_MAPS_STACK_BYTES;
		if ((uintptr_t)environ > sp && (uintptr_t)environ < top)
			top = (uintptr_t)environ;
		scan_root(wk, sp, top);
	}
	drain(wk, -1);
	for (size_t i = 0; i < wk->n; i++) {
		if (wk->ents[i].mark != M_UNREACHED)
			continue;
		scan_block(wk, i, (long)i);
		drain(wk, (long)i);
	}
}

/* Another thread may have freed a block since the snapshot, and dropped its last pointer
 * with it: such a block is no leak. Unreached blocks are checked again against the live
 * records (reachable ones need not be: their count may only be a little stale). */
static void drop_freed(struct work *wk)
{
	for (size_t i = 0; i < wk->n; i++) {
		struct ent *e = &wk->ents[i];
		struct hgc_block b;
		if (e->mark == M_REACHABLE)
			continue;
		if (!hgc_lookup((const void *)e->user, &b) || b.state != HGC_LIVE ||
		    (uintptr_t)b.user != e->user || b.size != e->size || b.alloc_stack != e->stack)
			e->mark = M_GONE;
	}
}

/* ---------------- report ---------------- */

struct totals {
	size_t bytes[K_COUNT], blocks[K_COUNT];
};

static void put_bytes_blocks(struct hg_buf *b, size_t bytes, size_t blocks)
{
	hg_buf_dec(b, bytes);
	hg_buf_str(b, " bytes in ");
	hg_buf_dec(b, blocks);
	hg_buf_str(b, " blocks");
}

/* Folds the entries into groups by (kind, stack, call) at the front of the array, totals them, and
 * sorts the groups largest first; returns how many. */
static size_t group(struct work *wk, struct totals *t)
{
	radix_sort(wk->ents, wk->scratch, wk->n, sizeof *wk->ents, ent_group_key);
	struct group *g = (struct group *)(void *)wk->ents;
	size_t ng = 0;
	for (size_t i = 0; i < wk->n; i++) {
		/* Read the entry before group ng (ng <= i) may overwrite it. */
		unsigned kind = kind_of(&wk->ents[i]);
		uint32_t stack = wk->ents[i].stack;
		uint8_t call = wk->ents[i].call;
		size_t size = wk->ents[i].size;
		if (kind == K_COUNT)
			break; /* the M_GONE entries sort last */
		t->bytes[kind] += size;
		t->blocks[kind]++;
		if (!ng || g[ng - 1].kind != kind || g[ng - 1].stack != stack || g[ng - 1].call != call) {
			struct group fresh = { .bytes = 0, .blocks = 0, .stack = stack, .kind = (uint8_t)kind,
					       .call = call };
			g[ng++] = fresh;
		}
		g[ng - 1].bytes += size;
		g[ng - 1].blocks++;
	}
	hgc_sort(g, ng, sizeof *g, group_by_bytes);
	return ng;
}

/* The groups of definitely or indirectly lost blocks the last full check listed: the leaks
 * that count for error_exitcode, each an error context in ERROR SUMMARY, as valgrind counts
 * its leaks there (through the command, --errors-for-leak-kinds says which). */
static size_t lost_groups;

size_t hgc_leak_error_contexts(void)
{
	return lost_groups;
}

static void print_groups(const struct group *g, size_t ng)
{
	for (size_t i = 0; i < ng; i++) {
		/* enum leak_kind is the order of show_leak_kinds' words */
		if (!(hg_opt.show_leak_kinds >> g[i].kind & 1) && !(g[i].kind == K_REACHABLE && hg_opt.show_reachable))
			continue;
		if (hgc_records_on()) { /* the command renders it */
			hgc_record_leak(KIND_IDS[g[i].kind], g[i].bytes, g[i].blocks, g[i].stack,
					hgc_alloc_calls[g[i].call]);
			continue;
		}
		struct hg_buf b = { .len = 0 };
		hgc_line_start(&b);
		hg_buf_str(&b, "LEAK: ");
		hg_buf_str(&b, KIND_IDS[g[i].kind]);
		hg_buf_str(&b, ": ");
		put_bytes_blocks(&b, g[i].bytes, g[i].blocks);
		hg_buf_str(&b, "\n");
		hg_buf_flush(&b);
		hgc_print_stack(g[i].stack);
	}
}

static void print_summary(const struct totals *t)
{
	if (hgc_records_on()) {
		uint64_t v[2 * K_COUNT];
		for (unsigned k = 0; k < K_COUNT; k++) {
			v[2 * k] = t->bytes[k];
			v[2 * k + 1] = t->blocks[k];
		}
		hgc_record_numbers("X", v, 2 * K_COUNT);
		return;
	}
	struct hg_buf b = { .len = 0 };
	hgc_line_start(&b);
	hg_buf_str(&b, "LEAK SUMMARY: ");
	for (unsigned k = 0; k < K_COUNT; k++) {
		hg_buf_str(&b, k ? "; " : "");
		hg_buf_str(&b, KIND_WORDS[k]);
		hg_buf_str(&b, ": ");
		put_bytes_blocks(&b, t->bytes[k], t->blocks[k]);
	}
	hg_buf_str(&b, "\n");
	hg_buf_flush(&b);
}

static void print_failure(void)
{
	struct hg_buf b = { .len = 0 };
	hgc_line_start(&b);
	hg_buf_str(&b, "LEAK CHECK FAILED: cannot map memory for the scan\n");
	hg_buf_flush(&b);
}

/* ---------------- the check ---------------- */

/* One check at a time. Holds the owner's pid: a fork child inherits a held lock from a parent
 * thread that does not exist in it, and takes it over. */
static _Atomic int busy_pid;

static void check_lock(void)
{
	int self = (int)getpid();
	for (;;) {
		int cur = 0;
		if (__atomic_compare_exchange_n(&busy_pid, &cur, self, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			return;
		if (cur != self && __atomic_compare_exchange_n(&busy_pid, &cur, self, 0, __ATOMIC_ACQUIRE,
							     __ATOMIC_RELAXED))
			return; /* held by our parent before fork */
		sched_yield();
	}
}

static void check_unlock(void)
{
	__atomic_store_n(&busy_pid, 0, __ATOMIC_RELEASE);
}

/* detail: 2 every group and the summary, 1 the summary only. */
static HG_NOINLINE size_t run_check(unsigned detail, int quiet, uintptr_t sp)
{
	/* Static, in our own module, which is never scanned: wk.lo is a block's address and
	 * must not turn up as a root anywhere. check_lock serializes the users. */
	static struct work wk;
	static struct totals t;
	wk.map = NULL;
	wk.skip = NULL;
	wk.nmods = wk.nskip = wk.depth = wk.nimages = wk.ncode = 0;
	wk.own_lo = wk.own_hi = 0;
	for (unsigned k = 0; k < K_COUNT; k++)
		t.bytes[k] = t.blocks[k] = 0;
	if (!snapshot(&wk)) {
		print_failure();
		return 0;
	}
	if (wk.n) {
		mark_all(&wk, sp);
		drop_freed(&wk);
	}
	size_t ng = group(&wk, &t);
	size_t lost = t.bytes[K_DEFINITE] + t.bytes[K_INDIRECT];
	int found = lost || t.blocks[K_POSSIBLE];
	lost_groups = 0;
	if (detail >= 2) {
		const struct group *g = (const struct group *)(void *)wk.ents;
		print_groups(g, ng);
		for (size_t i = 0; i < ng; i++)
			lost_groups += g[i].kind == K_DEFINITE || g[i].kind == K_INDIRECT;
	}
	if (!quiet || found)
		print_summary(&t);
	work_free(&wk);
	return lost;
}

/* ---- where the exiting thread's stack is the program's ---- */
/* The check at exit runs under exit's frames (exit, its handlers, ld.so's _dl_fini, our
 * destructor), whose unset slots hold stale words of the program's earlier calls: a pointer
 * that one of main's callees left there kept a lost block reachable (a C++ program's `new
 * std::string` never deleted, which valgrind and LSan report lost). Once main has returned,
 * its frame and all below it are dead: that thread's scan starts above it. */
static uintptr_t after_main_sp;
static pthread_t main_thread;
static int (*program_main)(int, char **, char **);

/* main, called by libc's start code through us; the frame stack.c drops from stacks. */
static int main_returns(int argc, char **argv, char **envp)
{
	int status = program_main(argc, argv, envp);
	volatile uintptr_t anchor = 0;
	main_thread = pthread_self();
	__atomic_store_n(&after_main_sp, (uintptr_t)&anchor, __ATOMIC_RELEASE);
	return status;
}

HG_EXPORT int __libc_start_main(int (*main)(int, char **, char **), int argc, char **argv, void (*init)(void),
				void (*fini)(void), void (*rtld_fini)(void), void *stack_end)
{
	int (*next)(int (*)(int, char **, char **), int, char **, void (*)(void), void (*)(void),
		    void (*)(void), void *);
	*(void **)&next = dlsym(RTLD_NEXT, "__libc_start_main");
	program_main = main;
	return next(main_returns, argc, argv, init, fini, rtld_fini, stack_end);
}

/* Spills the callee-saved registers into this frame, and scans this thread's stack from its
 * lowest local up: the spilled registers and the program's frames are roots; the frames of
 * the check itself, below, hold stale words of earlier calls (a pointer the program dropped
 * in free() or memset()) and are not. GCC places locals below the register saves. At exit
 * after main returned, main's thread's from above main's frame (above). On a stack of the
 * checks' own (hgc_leak_roots), from the saved context's stack pointer. */
static HG_NOINLINE size_t check_with_registers(unsigned detail, int quiet, int at_exit)
{
	__builtin_unwind_init();
	volatile uintptr_t anchor = 0;
	uintptr_t sp = (uintptr_t)&anchor, left = __atomic_load_n(&after_main_sp, __ATOMIC_ACQUIRE);
	if (roots_uc)
		sp = (uintptr_t)roots_uc->uc_mcontext.gregs[REG_RSP] - RED_ZONE_BYTES;
	if (at_exit && left > sp && pthread_equal(main_thread, pthread_self()))
		sp = left;
	size_t lost = run_check(detail, quiet, sp);
	__asm__ volatile("" ::: "memory"); /* keeps this frame (and its spills) alive until here */
	return lost;
}

void hgc_leak_roots(const ucontext_t *uc, uintptr_t lo, uintptr_t hi, uintptr_t lo2, uintptr_t hi2)
{
	roots_uc = uc;
	roots_skip[0] = (struct range){ lo, hi };
	roots_skip[1] = (struct range){ lo2, hi2 };
}

size_t hgc_leak_check(int at_exit)
{
	unsigned detail = (unsigned)hg_opt.leak_check;
	if (at_exit && detail == 0) {
		lost_groups = 0; /* an earlier check on demand counts for nothing at exit */
		return 0;
	}
	if (detail == 0)
		detail = 2; /* leak_check=no turns off the check at exit only */
	int saved = errno, cs = hgc_cancel_off(); /* it reads, writes and waits for its tracer */
	check_lock();
	checking_tid = (pid_t)hg_os_thread_id();
	size_t lost = check_with_registers(detail, at_exit && hg_opt.quiet, at_exit);
	check_unlock();
	hgc_cancel_restore(cs);
	errno = saved;
	return lost;
}

HG_EXPORT size_t heapguard_check_leaks(void)
{
	if (!hgc_ready)
		return 0;
	hgc_in_heap++;
	size_t lost = hgc_leak_check(0);
	hgc_in_heap--;
	return lost;
}
