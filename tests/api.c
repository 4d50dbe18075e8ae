/* api.c — POSIX/glibc semantics of every exported malloc-family entry point; built preloaded, linked and static. */
#define _GNU_SOURCE
#include "util.h"

#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <heapguard.h>

#define PAGE_BYTES ((size_t)sysconf(_SC_PAGESIZE))

/* mallinfo is deprecated but still exported and called by old programs, so it is tested too. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static struct mallinfo (*const MALLINFO)(void) = mallinfo;
#pragma GCC diagnostic pop

static size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;

	return x < y ? -1 : x > y;
}

/* The preloaded build finds the library through the dynamic linker; the linked builds call it. */
static const char *(*version_fn(void))(void)
{
#ifdef HG_LINKED
	return heapguard_version;
#else
	return (const char *(*)(void))dlsym(RTLD_DEFAULT, "heapguard_version");
#endif
}

static void test_version(void **state)
{
	const char *(*fn)(void) = version_fn();

	(void)state;
	CHECK(fn != NULL, "heapguard_version not found: is libheapguard loaded?");
	CHECK(strcmp(fn(), HG_EXPECT_VERSION) == 0, "version '%s', expected '%s'", fn(), HG_EXPECT_VERSION);
}

/* Every exported name must resolve, for the program and for libc alike, to the object holding
 * heapguard_version; one left to glibc would mix two heaps. */
static void test_symbols_resolve_to_heapguard(void **state)
{
	static const struct { const char *name; void *direct; } syms[] = {
		{"malloc", (void *)malloc}, {"free", (void *)free}, {"calloc", (void *)calloc},
		{"realloc", (void *)realloc}, {"reallocarray", (void *)reallocarray},
		{"posix_memalign", (void *)posix_memalign}, {"aligned_alloc", (void *)aligned_alloc},
		{"memalign", (void *)memalign}, {"valloc", (void *)valloc}, {"pvalloc", (void *)pvalloc},
		{"malloc_usable_size", (void *)malloc_usable_size}, {"malloc_trim", (void *)malloc_trim},
		{"mallopt", (void *)mallopt}, {"mallinfo", (void *)MALLINFO}, {"mallinfo2", (void *)mallinfo2},
		{"malloc_stats", (void *)malloc_stats}, {"malloc_info", (void *)malloc_info},
	};
	const char *(*fn)(void) = version_fn();
	Dl_info lib, got;
	size_t i;

	(void)state;
	CHECK(fn != NULL, "heapguard_version not found");
	assert_true(dladdr((void *)fn, &lib) != 0);
	for (i = 0; i < sizeof syms / sizeof syms[0]; i++) {
		void *sym = dlsym(RTLD_DEFAULT, syms[i].name);

		CHECK(sym != NULL, "%s is not exported", syms[i].name);
		CHECK(dladdr(sym, &got) != 0 && got.dli_fbase == lib.dli_fbase,
		      "%s resolves to %s, not to heapguard's %s", syms[i].name, got.dli_fname, lib.dli_fname);
		CHECK(sym == syms[i].direct, "%s: the program calls %p, the dynamic linker resolves %p",
		      syms[i].name, syms[i].direct, sym);
	}
}

/* Programs built before glibc 2.26 call cfree@GLIBC_2.2.5, which glibc still exports: it must
 * land in heapguard's free, or glibc's free aborts on heapguard's block. This call is bound as
 * such a program's is. (A static build has its own cfree, found first.) */
#ifndef HG_STATIC
__asm__(".symver cfree,cfree@GLIBC_2.2.5");
extern void cfree(void *p);
#endif

static void test_old_cfree(void **state)
{
	(void)state;
#ifndef HG_STATIC
	for (size_t n = 100; n <= 1000000; n *= 100) {
		char *p = malloc(n);
		tu_fill(p, n, 9);
		cfree(p);
	}
#endif
}

/* Pointers that libc allocates internally are released with our free: abort or crash means two heaps. */
static void test_libc_internal_allocations(void **state)
{
	char *s = strdup("heapguard"), *a = NULL, *path, *line = NULL, *buf = NULL;
	size_t cap = 0, len = 0;
	FILE *in, *out;

	(void)state;
	assert_non_null(s);
	assert_true(malloc_usable_size(s) >= 10);
	free(s);
	assert_int_equal(asprintf(&a, "%0500d", 7), 500);
	assert_true(malloc_usable_size(a) >= 501);
	free(a);
	path = realpath("/", NULL);
	assert_string_equal(path, "/");
	free(path);
	in = fmemopen((char[]){"first line\nsecond\n"}, 18, "r");
	assert_non_null(in);
	assert_int_equal(getline(&line, &cap, in), 11);
	assert_string_equal(line, "first line\n");
	fclose(in);
	free(line);
	out = open_memstream(&buf, &len);
	assert_non_null(out);
	for (int i = 0; i < 10000; i++)
		fprintf(out, "%d,", i);
	fclose(out);
	assert_true(len > 40000);
	assert_memory_equal(buf, "0,1,2,3,", 8);
	free(buf);
}

/* The dynamic linker allocates for every dlopen and dlerror message, and frees on dlclose, all
 * through the program's malloc; libz is not loaded by this program, so it is really mapped each time. */
static void test_dlopen_dlclose_dlerror(void **state)
{
	(void)state;
	for (int i = 0; i < 200; i++) {
		void *h = dlopen("libz.so.1", RTLD_NOW | RTLD_LOCAL);
		const char *err;

		CHECK(h != NULL, "dlopen(libz.so.1): %s", dlerror());
		CHECK(dlsym(h, "zlibVersion") != NULL, "zlibVersion not found: %s", dlerror());
		assert_int_equal(dlclose(h), 0);
		CHECK(dlopen("/nonexistent/libheapguard-test.so", RTLD_NOW) == NULL, "a missing library opened");
		err = dlerror();
		CHECK(err != NULL && strstr(err, "libheapguard-test.so") != NULL, "dlerror() = %s", err ? err : "NULL");
	}
}

static void test_malloc_zero_unique(void **state)
{
	enum { N = 1000 };
	void *p[N];
	int i;

	(void)state;
	for (i = 0; i < N; i++) {
		p[i] = malloc(0);
		CHECK(p[i] != NULL, "malloc(0) #%d returned NULL", i);
	}
	qsort(p, N, sizeof p[0], cmp_ptr);
	for (i = 1; i < N; i++)
		CHECK(p[i] != p[i - 1], "malloc(0) returned %p twice", p[i]);
	for (i = 0; i < N; i++)
		free(p[i]);
}

static void test_free_null(void **state)
{
	(void)state;
	errno = 77;
	free(NULL);
	assert_int_equal(errno, 77);
}

static void test_realloc_null_is_malloc(void **state)
{
	static const size_t sizes[] = {0, 1, 100, 5000, 1 << 20, 10 << 20};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		char *p = realloc(NULL, sizes[i]);

		CHECK(p != NULL, "realloc(NULL, %zu) returned NULL", sizes[i]);
		assert_true(malloc_usable_size(p) >= sizes[i]);
		tu_fill(p, sizes[i], sizes[i]);
		assert_int_equal(tu_check(p, sizes[i], sizes[i]), sizes[i]);
		free(p);
	}
}

/* glibc's realloc(p, 0) frees p: a leak here would grow RSS by the whole loop's 800 MB. */
static void test_realloc_zero_frees(void **state)
{
	size_t before, after;
	int i;

	(void)state;
	before = tu_rss_bytes();
	for (i = 0; i < 100000; i++) {
		char *p = malloc(8000);

		assert_non_null(p);
		memset(p, 1, 8000);
		CHECK(realloc(p, 0) == NULL, "realloc(p, 0) did not return NULL");
	}
	after = tu_rss_bytes();
	CHECK(after < before + 64 * MIB, "RSS grew from %zu to %zu over 100000 realloc(p, 0)", before, after);
}

static const struct { size_t n, size; } OVERFLOWS[] = {
	{2, SIZE_MAX / 2 + 1}, {SIZE_MAX / 2 + 1, 2}, {(size_t)1 << 32, (size_t)1 << 32},
	{SIZE_MAX, SIZE_MAX}, {SIZE_MAX / 4096 + 2, 4096}, {3, SIZE_MAX / 3 + 1},
	/* wraps to exactly 2 GiB, which would succeed if the product were not checked */
	{((size_t)1 << 33) + 1, (size_t)1 << 31},
};

static void test_calloc_overflow(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof OVERFLOWS / sizeof OVERFLOWS[0]; i++) {
		errno = 0;
		void *p = calloc(OVERFLOWS[i].n, OVERFLOWS[i].size);
		CHECK(p == NULL && errno == ENOMEM, "calloc(%zu, %zu) = %p, errno %d",
		      OVERFLOWS[i].n, OVERFLOWS[i].size, p, errno);
	}
}

static void test_reallocarray(void **state)
{
	char *p = reallocarray(NULL, 10, 10), *q;
	size_t i;

	(void)state;
	assert_non_null(p);
	tu_fill(p, 100, 42);
	q = reallocarray(p, 1000, 10);
	assert_non_null(q);
	assert_int_equal(tu_check(q, 100, 42), 100);
	tu_fill(q, 100, 42);
	for (i = 0; i < sizeof OVERFLOWS / sizeof OVERFLOWS[0]; i++) {
		errno = 0;
		p = reallocarray(tu_launder(q), OVERFLOWS[i].n, OVERFLOWS[i].size);
		CHECK(p == NULL && errno == ENOMEM, "reallocarray(q, %zu, %zu) = %p, errno %d",
		      OVERFLOWS[i].n, OVERFLOWS[i].size, (void *)p, errno);
		CHECK(tu_check(q, 100, 42) == 100, "failed reallocarray changed the block");
		errno = 0;
		p = reallocarray(NULL, OVERFLOWS[i].n, OVERFLOWS[i].size);
		CHECK(p == NULL && errno == ENOMEM, "reallocarray(NULL, %zu, %zu) = %p, errno %d",
		      OVERFLOWS[i].n, OVERFLOWS[i].size, (void *)p, errno);
	}
	free(q);
}

static const size_t IMPOSSIBLE[] = {
	SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 4095, SIZE_MAX - MIB, (size_t)PTRDIFF_MAX + 1,
	(size_t)PTRDIFF_MAX + 4097,
};

#define EXPECT_ENOMEM(call, size)                                                        \
	do {                                                                             \
		errno = 0;                                                               \
		void *r_ = (call);                                                       \
		CHECK(r_ == NULL && errno == ENOMEM, "%s with size %zu = %p, errno %d", \
		      #call, (size_t)(size), r_, errno);                                 \
	} while (0)

static void test_impossible_sizes_fail_cleanly(void **state)
{
	char *keep = malloc(64);
	size_t i;

	(void)state;
	tu_fill(keep, 64, 7);
	for (i = 0; i < sizeof IMPOSSIBLE / sizeof IMPOSSIBLE[0]; i++) {
		size_t n = IMPOSSIBLE[i];
		void *r = (void *)1;

		EXPECT_ENOMEM(malloc(n), n);
		EXPECT_ENOMEM(calloc(1, n), n);
		EXPECT_ENOMEM(calloc(n, 1), n);
		EXPECT_ENOMEM(realloc(keep, n), n);
		CHECK(tu_check(keep, 64, 7) == 64, "failed realloc(p, %zu) changed p", n);
		EXPECT_ENOMEM(memalign(64, n), n);
		EXPECT_ENOMEM(memalign(MIB, n), n);
		EXPECT_ENOMEM(aligned_alloc(4096, n), n);
		EXPECT_ENOMEM(valloc(n), n);
		EXPECT_ENOMEM(pvalloc(n), n);
		int rc = posix_memalign(&r, 64, n);
		CHECK(rc == ENOMEM, "posix_memalign(64, %zu) returned %d", n, rc);
	}
	free(keep);
}

/* Sizes the machine may or may not provide: either a usable block or NULL with ENOMEM. */
static void test_huge_sizes_fail_or_work(void **state)
{
	static const size_t sizes[] = {(size_t)1 << 40, (size_t)1 << 44, (size_t)1 << 46, (size_t)PTRDIFF_MAX / 2};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		errno = 0;
		char *p = malloc(sizes[i]);

		if (p == NULL) {
			CHECK(errno == ENOMEM, "malloc(%zu) failed with errno %d", sizes[i], errno);
			continue;
		}
		p[0] = 1;
		p[sizes[i] - 1] = 2;
		assert_true(p[0] == 1 && p[sizes[i] - 1] == 2);
		free(p);
	}
	/* A block in a mapping of its own grown past the 47 bits of user space: NULL, block kept
	 * (the page map's leaves were reserved for the range first, past the map's end: SIGSEGV). */
	char *big = malloc(4 * MIB);
	assert_non_null(big);
	tu_fill(big, 4 * MIB, 11);
	for (i = 48; i <= 50; i++) {
		errno = 0;
		CHECK(realloc(big, (size_t)1 << i) == NULL && errno == ENOMEM, "realloc to 2^%zu: errno %d", i, errno);
	}
	CHECK(tu_check(big, 4 * MIB, 11) == 4 * MIB, "the block changed");
	free(big);
}

static void test_two_gib_works(void **state)
{
	const size_t n = (size_t)1 << 31;
	size_t off;
	char *p = malloc(n), *q;

	(void)state;
	CHECK(p != NULL, "malloc(2^31) failed, errno %d", errno);
	for (off = 0; off < n; off += MIB)
		p[off] = (char)(off >> 20);
	p[n - 1] = 0x5a;
	q = realloc(p, n + 4096);
	CHECK(q != NULL, "realloc to 2^31+4096 failed");
	for (off = 0; off < n; off += MIB)
		CHECK(q[off] == (char)(off >> 20), "byte %zu lost across realloc", off);
	assert_int_equal(q[n - 1], 0x5a);
	q[n + 4095] = 1;
	free(q);

	p = calloc(n, 1);
	CHECK(p != NULL, "calloc(2^31, 1) failed");
	/* sampled: a read fault per page would cost seconds on this machine */
	for (off = 0; off < n; off += MIB / 2 + 8)
		CHECK(p[off] == 0, "calloc'd byte %zu is %d", off, p[off]);
	CHECK(tu_first_nonzero(p + n - 8192, 8192) == 8192, "calloc'd tail not zero");
	free(p);
	p = memalign(2 * MIB, n);
	CHECK(p != NULL && (uintptr_t)p % (2 * MIB) == 0, "memalign(2 MiB, 2^31) = %p", (void *)p);
	p[n - 1] = 1;
	free(p);
}

static void test_posix_memalign_einval(void **state)
{
	static const size_t bad[] = {0, 1, 2, 4, 3, 12, 24, 48, 4095, 4097, MIB + 8, SIZE_MAX};
	size_t i;
	void *p;

	(void)state;
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = posix_memalign(&p, bad[i], 64);

		CHECK(rc == EINVAL, "posix_memalign(alignment %zu) returned %d, expected EINVAL", bad[i], rc);
	}
}

/* An alignment that is not a power of two fails, as in C23 and glibc 2.38 (2.36 rounds it up). */
static void test_aligned_alloc_einval(void **state)
{
	static const size_t bad[] = {0, 3, 12, 24, 48, 4095, 4097, MIB + 8, SIZE_MAX};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		errno = 0;
		void *p = aligned_alloc(bad[i], 64);

		CHECK(p == NULL && errno == EINVAL, "aligned_alloc(alignment %zu) returned %p, errno %d", bad[i], p,
		      errno);
	}
}

static void test_posix_memalign_keeps_errno(void **state)
{
	static const size_t sizes[] = {1, 100, 4096, MIB, 64 * MIB};
	size_t i;
	void *p;

	(void)state;
	for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		errno = 4321;
		assert_int_equal(posix_memalign(&p, 256, sizes[i]), 0);
		CHECK(errno == 4321, "posix_memalign(256, %zu) changed errno to %d", sizes[i], errno);
		assert_int_equal((uintptr_t)p % 256, 0);
		free(p);
	}
}

struct block {
	char *p;
	size_t usable;
};

static int higher_address_first(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)((const struct block *)a)->p, y = (uintptr_t)((const struct block *)b)->p;

	return x < y ? 1 : x > y ? -1 : 0;
}

/* Fills every live block to its usable size, highest address first, then checks them all: a usable
 * size that overstates a block overwrites the neighbour above it, which was already filled.
 * Frees the blocks; returns 0 after reporting the first damaged one. */
static int fill_check_free(struct block *b, size_t count, const char *what)
{
	size_t i, bad;
	int ok = 1;

	qsort(b, count, sizeof b[0], higher_address_first);
	for (i = 0; i < count; i++)
		tu_fill(b[i].p, b[i].usable, (uintptr_t)b[i].p);
	for (i = 0; i < count; i++) {
		bad = tu_check(b[i].p, b[i].usable, (uintptr_t)b[i].p);
		if (bad != b[i].usable && ok) {
			tu_note("%s: block %p, usable %zu, overwritten at offset %zu", what, (void *)b[i].p,
				b[i].usable, bad);
			ok = 0;
		}
		free(b[i].p);
	}
	return ok;
}

enum { ALIGN_FN_ALIGNED_ALLOC, ALIGN_FN_MEMALIGN, ALIGN_FN_POSIX_MEMALIGN, ALIGN_FNS };

static void *align_call(int fn, size_t align, size_t size)
{
	void *p = NULL;

	switch (fn) {
	case ALIGN_FN_ALIGNED_ALLOC:
		return aligned_alloc(align, size);
	case ALIGN_FN_MEMALIGN:
		return memalign(align, size);
	default:
		return posix_memalign(&p, align, size) == 0 ? p : NULL;
	}
}

/* All blocks of one alignment stay live until verified, so overlapping blocks corrupt each other. */
static void test_every_alignment(void **state)
{
	static const char *const names[] = {"aligned_alloc", "memalign", "posix_memalign"};
	struct block live[64];
	char what[64];

	(void)state;
	for (size_t a = 1; a <= 4 * MIB; a *= 2) {
		const size_t sizes[] = {0, 1, 8, 24, a / 2, a - 1, a, a + 1, 2 * a + 8, 1000, 4099, 70000, MIB + 1};
		size_t nlive = 0;

		for (int fn = 0; fn < ALIGN_FNS; fn++) {
			if (fn == ALIGN_FN_POSIX_MEMALIGN && a < sizeof(void *))
				continue;
			for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
				char *p = align_call(fn, a, sizes[s]);

				CHECK(p != NULL, "%s(%zu, %zu) returned NULL", names[fn], a, sizes[s]);
				CHECK((uintptr_t)p % a == 0, "%s(%zu, %zu) = %p is misaligned", names[fn], a, sizes[s],
				      (void *)p);
				live[nlive].p = p;
				live[nlive].usable = malloc_usable_size(p);
				CHECK(live[nlive].usable >= sizes[s], "%s(%zu, %zu): usable size %zu", names[fn], a,
				      sizes[s], live[nlive].usable);
				nlive++;
			}
		}
		snprintf(what, sizeof what, "alignment %zu", a);
		CHECK(fill_check_free(live, nlive, what), "blocks of alignment %zu overlap", a);
	}
}

static void test_valloc_pvalloc(void **state)
{
	static const size_t sizes[] = {0, 1, 100, 4095, 4096, 4097, 10000, MIB, MIB + 1};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		char *v = valloc(sizes[i]), *pv = pvalloc(sizes[i]);
		size_t rounded = round_up(sizes[i] ? sizes[i] : 1, PAGE_BYTES);

		CHECK(v != NULL && (uintptr_t)v % PAGE_BYTES == 0, "valloc(%zu) = %p", sizes[i], (void *)v);
		CHECK(malloc_usable_size(v) >= sizes[i], "valloc(%zu): usable %zu", sizes[i], malloc_usable_size(v));
		CHECK(pv != NULL && (uintptr_t)pv % PAGE_BYTES == 0, "pvalloc(%zu) = %p", sizes[i], (void *)pv);
		CHECK(malloc_usable_size(pv) >= rounded, "pvalloc(%zu): usable %zu, expected >= %zu",
		      sizes[i], malloc_usable_size(pv), rounded);
		tu_fill(v, sizes[i], 1);
		tu_fill(pv, rounded, 2);
		assert_int_equal(tu_check(v, sizes[i], 1), sizes[i]);
		assert_int_equal(tu_check(pv, rounded, 2), rounded);
		free(v);
		free(pv);
	}
}

/* Every block is filled to its usable size while all are live: see fill_check_free. */
static void test_usable_size_writable(void **state)
{
	static const size_t big[] = {8191, 65537, 131071, MIB, MIB + 1, 3 * MIB, 32 * MIB};
	enum { SMALL = 4200, N = SMALL + sizeof big / sizeof big[0] };
	static struct block b[N];
	size_t i, want;

	(void)state;
	assert_int_equal(malloc_usable_size(NULL), 0);
	for (i = 0; i < N; i++) {
		want = i < SMALL ? i : big[i - SMALL];
		b[i].p = malloc(want);
		CHECK(b[i].p != NULL, "malloc(%zu) failed", want);
		b[i].usable = malloc_usable_size(b[i].p);
		CHECK(b[i].usable >= want, "malloc(%zu): usable %zu", want, b[i].usable);
	}
	CHECK(fill_check_free(b, N, "malloc"), "blocks filled to their usable size overlap");
}

/* realloc between every pair of sizes, with a live neighbour allocated in between so some moves happen. */
static void test_realloc_keeps_contents(void **state)
{
	static const size_t sizes[] = {1, 15, 16, 17, 100, 1000, 4095, 4096, 4097, 65536, 200000, MIB, 5 * MIB};
	const size_t n = sizeof sizes / sizeof sizes[0];

	(void)state;
	for (size_t a = 0; a < n; a++) {
		for (size_t b = 0; b < n; b++) {
			char *p = malloc(sizes[a]), *neighbour = malloc(sizes[a]), *q;
			size_t keep = sizes[a] < sizes[b] ? sizes[a] : sizes[b];

			assert_true(p != NULL && neighbour != NULL);
			tu_fill(p, sizes[a], a * 100 + b);
			tu_fill(neighbour, sizes[a], 99);
			q = realloc(p, sizes[b]);
			CHECK(q != NULL, "realloc(%zu -> %zu) failed", sizes[a], sizes[b]);
			size_t bad = tu_check(q, keep, a * 100 + b);
			CHECK(bad == keep, "realloc(%zu -> %zu): byte %zu changed", sizes[a], sizes[b], bad);
			CHECK(tu_check(neighbour, sizes[a], 99) == sizes[a], "realloc(%zu -> %zu) hit its neighbour",
			      sizes[a], sizes[b]);
			memset(q, 0xee, sizes[b]);
			free(q);
			free(neighbour);
		}
	}
}

/* One block carried through a chain of sizes: small -> large -> small, large -> larger, shrinking in place. */
static void test_realloc_chains(void **state)
{
	static const size_t chain[] = {24, 100000, 5 * MIB, 40, 8, MIB, 2 * MIB, 4 * MIB, 16 * MIB, 64 * MIB,
				       1000, 999, 500, 1000, 4000, 3000, 4000};
	size_t i, have = chain[0];
	char *p = malloc(have);

	(void)state;
	tu_fill(p, have, 0);
	for (i = 1; i < sizeof chain / sizeof chain[0]; i++) {
		size_t keep = have < chain[i] ? have : chain[i];
		char *q = realloc(p, chain[i]);

		CHECK(q != NULL, "realloc(%zu -> %zu) failed", have, chain[i]);
		size_t bad = tu_check(q, keep, i - 1);
		CHECK(bad == keep, "step %zu, realloc(%zu -> %zu): byte %zu changed", i, have, chain[i], bad);
		tu_fill(q, chain[i], i);
		p = q;
		have = chain[i];
	}
	free(p);
}

static void test_calloc_zeroes_reused_memory(void **state)
{
	static const size_t sizes[] = {1, 24, 100, 1000, 4000, 40000, 300000, MIB, 3 * MIB, 10 * MIB, 25 * MIB};
	size_t i;
	int round;

	(void)state;
	for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		for (round = 0; round < 20; round++) {
			char *dirty = malloc(sizes[i]), *z;

			memset(dirty, 0xa5, malloc_usable_size(dirty));
			free(dirty);
			z = round % 2 ? calloc(sizes[i], 1) : calloc(1, sizes[i]);
			CHECK(z != NULL, "calloc(%zu) failed", sizes[i]);
			size_t bad = tu_first_nonzero(z, sizes[i]);
			CHECK(bad == sizes[i], "calloc(%zu), round %d: byte %zu is 0x%02x", sizes[i], round, bad,
			      (unsigned char)z[bad]);
			memset(z, 0x5a, malloc_usable_size(z));
			free(z);
		}
	}
}

/* A malloc larger than every freed mapping grows one (its pages serve the new block): the block
 * is writable whole, and a calloc that gets those pages next reads zeros. */
static void test_grown_mapping_then_calloc(void **state)
{
	static const size_t sizes[] = {3 * MIB, 5 * MIB, 8 * MIB, 13 * MIB};

	(void)state;
	for (int round = 0; round < 4; round++) {
		for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
			char *a = malloc(sizes[i]);
			CHECK(a != NULL, "malloc(%zu) failed", sizes[i]);
			memset(a, 0xa5, malloc_usable_size(a));
			free(a);
			char *b = malloc(sizes[i] + MIB);
			CHECK(b != NULL, "malloc(%zu) failed", sizes[i] + MIB);
			memset(b, 0x5a, malloc_usable_size(b));
			free(b);
			char *z = calloc(1, sizes[i] + MIB / 2);
			CHECK(z != NULL, "calloc(%zu) failed", sizes[i] + MIB / 2);
			size_t bad = tu_first_nonzero(z, sizes[i] + MIB / 2);
			CHECK(bad == sizes[i] + MIB / 2, "calloc(%zu), round %d: byte %zu is 0x%02x", sizes[i] + MIB / 2,
			      round, bad, (unsigned char)z[bad]);
			free(z);
		}
	}
}

/* Many small blocks dirtied and freed at once, then handed back by calloc from the same spans. */
static void test_calloc_zeroes_many_small(void **state)
{
	enum { N = 5000 };
	static char *p[N];
	int i, round;

	(void)state;
	for (round = 0; round < 5; round++) {
		for (i = 0; i < N; i++) {
			p[i] = malloc(48);
			memset(p[i], 0xff, 48);
		}
		for (i = 0; i < N; i++)
			free(p[i]);
		for (i = 0; i < N; i++) {
			p[i] = calloc(6, 8);
			CHECK(tu_first_nonzero(p[i], 48) == 48, "calloc(6, 8) #%d, round %d: not zero", i, round);
		}
		for (i = 0; i < N; i++)
			free(p[i]);
	}
}

/* Allocates blocks of one size until the limit stops it, which must be NULL + ENOMEM; frees them
 * and allocates one again. The list lives in the blocks, so the test itself needs no memory. */
static void exhaust_and_recover(size_t block_bytes)
{
	const size_t max_blocks = 20000000;
	void **chain = NULL, **node;
	size_t count;

	for (count = 0; count < max_blocks; count++) {
		errno = 0;
		node = malloc(block_bytes);
		if (node == NULL)
			break;
		*node = chain;
		chain = node;
	}
	CHILD_CHECK(count < max_blocks && errno == ENOMEM);
	while (chain != NULL) {
		node = *chain;
		free(chain);
		chain = node;
	}
	node = malloc(block_bytes);
	CHILD_CHECK(node != NULL);
	free(node);
}

/* Runs under a lowered RLIMIT_AS: every failure must be NULL + ENOMEM, never an abort. */
static void rlimit_child(void *arg)
{
	const size_t budget = 256 * MIB, big = 512 * MIB;
	struct rlimit rl;
	char *keep = malloc(100), *p;
	void *r;

	(void)arg;
	tu_fill(keep, 100, 3);
	CHILD_CHECK(getrlimit(RLIMIT_AS, &rl) == 0);
	rl.rlim_cur = tu_vm_bytes() + budget;
	CHILD_CHECK(setrlimit(RLIMIT_AS, &rl) == 0);

	errno = 0;
	CHILD_CHECK(malloc(big) == NULL && errno == ENOMEM);
	errno = 0;
	CHILD_CHECK(calloc(1, big) == NULL && errno == ENOMEM);
	errno = 0;
	CHILD_CHECK(realloc(keep, big) == NULL && errno == ENOMEM);
	CHILD_CHECK(tu_check(keep, 100, 3) == 100);
	/* A block in a mapping of its own that cannot grow to 16 TiB stays, and the refusal
	 * takes no address space (it once mapped page-map leaves for the range until the limit). */
	char *mapped = malloc(4 * MIB);
	CHILD_CHECK(mapped != NULL);
	tu_fill(mapped, 4 * MIB, 5);
	size_t vm_before = tu_vm_bytes();
	errno = 0;
	CHILD_CHECK(realloc(mapped, (size_t)1 << 44) == NULL && errno == ENOMEM);
	CHILD_CHECK(tu_vm_bytes() <= vm_before + MIB);
	CHILD_CHECK(tu_check(mapped, 4 * MIB, 5) == 4 * MIB);
	free(mapped);
	errno = 0;
	CHILD_CHECK(memalign(MIB, big) == NULL && errno == ENOMEM);
	errno = 0;
	CHILD_CHECK(aligned_alloc(4096, big) == NULL && errno == ENOMEM);
	errno = 0;
	CHILD_CHECK(valloc(big) == NULL && errno == ENOMEM);
	CHILD_CHECK(posix_memalign(&r, 4096, big) == ENOMEM);

	exhaust_and_recover(MIB);
	exhaust_and_recover(64);

	/* only the soft limit was lowered, so it can be raised again without privileges */
	rl.rlim_cur = rl.rlim_max;
	CHILD_CHECK(setrlimit(RLIMIT_AS, &rl) == 0);
	p = malloc(big);
	CHILD_CHECK(p != NULL);
	memset(p, 1, big);
	free(p);
	free(keep);
}

/* Runs fn in a child process (its own address-space limit) and asserts it ended well. */
static void child_passes(void (*fn)(void *))
{
	struct tu_child c;

	tu_run_child(fn, NULL, 60, &c);
	tu_assert_child_ok(&c);
}

static void test_enomem_under_rlimit_as(void **state)
{
	(void)state;
	child_passes(rlimit_child);
}

/* Under an address-space limit of 256 MiB more than the child holds, `bytes` (SIZE_MAX: until
 * the limit) of 1000-byte blocks, made, freed but for a block of another size made after them
 * when `pin` (stdout's buffer at the first printf), then one large block of `big` bytes. */
static void freed_memory_serves(size_t bytes, int pin, size_t big)
{
	struct rlimit rl;
	char *list = NULL, *p;

	CHILD_CHECK(getrlimit(RLIMIT_AS, &rl) == 0);
	rl.rlim_cur = tu_vm_bytes() + 256 * MIB;
	CHILD_CHECK(setrlimit(RLIMIT_AS, &rl) == 0);
	/* The blocks chained through their first word. */
	for (size_t made = 0; made < bytes && (p = malloc(1000)) != NULL; made += 1000) {
		memset(p, 1, 1000);
		*(char **)p = list;
		list = p;
	}
	char *last = pin ? malloc(3000) : NULL;
	CHILD_CHECK(!pin || last != NULL);
	while ((p = list) != NULL) {
		list = *(char **)p;
		free(p);
	}
	char *large = malloc(big);
	CHILD_CHECK(large != NULL);
	memset(large, 2, big);
	free(large);
	free(last);
}

/* Memory freed by small blocks serves a large block: the heap gives back what it keeps before
 * a mapping fails (with backend=brk, arenas from the break, which only its top can give back:
 * they once stayed, and the large block failed). */
static void freed_memory_child(void *arg)
{
	(void)arg;
	freed_memory_serves(SIZE_MAX, 0, 128 * MIB);
}

static void test_freed_memory_serves_under_rlimit_as(void **state)
{
	(void)state;
	child_passes(freed_memory_child);
}

/* The same with a block still in use made after the freed ones: with backend=brk the break's
 * top stays, and the arenas freed below it once stayed mapped too. */
static void freed_below_a_live_block_child(void *arg)
{
	(void)arg;
	freed_memory_serves(150 * MIB, 1, 200 * MIB);
}

static void test_freed_below_a_live_block_serves_under_rlimit_as(void **state)
{
	(void)state;
	child_passes(freed_below_a_live_block_child);
}

/* With the address space nearly all taken, a megabyte left still serves blocks of sizes
 * the heap had no span for: less than a whole arena fits, and it once failed them all. */
static void last_megabyte_child(void *arg)
{
	static const size_t sizes[] = { 3000, 5000, 7000 };
	struct rlimit rl;
	size_t n = 0;

	(void)arg;
	CHILD_CHECK(getrlimit(RLIMIT_AS, &rl) == 0);
	rl.rlim_cur = tu_vm_bytes() + 64 * MIB;
	CHILD_CHECK(setrlimit(RLIMIT_AS, &rl) == 0);
	/* Every arena full of 100-byte blocks (free arenas the parent left count too), left
	 * allocated: the child ends here. */
	while (n < 100000000 && malloc(100) != NULL)
		n++;
	CHILD_CHECK(n < 100000000 && errno == ENOMEM);
	rl.rlim_cur = tu_vm_bytes() + MIB;
	CHILD_CHECK(setrlimit(RLIMIT_AS, &rl) == 0);
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		char *q = malloc(sizes[i]);
		CHILD_CHECK(q != NULL);
		memset(q, 1, sizes[i]);
	}
}

static void test_last_megabyte_serves_new_sizes(void **state)
{
	(void)state;
	child_passes(last_megabyte_child);
}

/* An arena across a 4 GiB line of the address space, used below the line only: a medium
 * block grown across it, then the arena handed back whole. The page map's leaf above the
 * line was never made, and both wrote into it (SIGSEGV). PROT_NONE placeholders steer the
 * kernel's next mappings to end 2 MiB above a line with nothing of ours beyond it. */
static void arena_across_line_child(void *arg)
{
	static char maps[1 << 20];
	static uintptr_t lo[8192], hi[8192];
	const uintptr_t line = (uintptr_t)1 << 32;
	uintptr_t lowest = UINTPTR_MAX;
	size_t len = 0, n = 0;
	malloc_trim(0); /* no cached large block: the next arenas are fresh mappings */
	FILE *f = fopen("/proc/self/maps", "r");

	(void)arg;
	CHILD_CHECK(f != NULL);
	len = fread(maps, 1, sizeof maps - 1, f);
	fclose(f);
	maps[len] = 0;
	for (char *l = maps; l && *l && n < 8192; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		unsigned long a, b;
		if (sscanf(l, "%lx-%lx", &a, &b) == 2 && a >= 0x700000000000ul) {
			lo[n] = a;
			hi[n++] = b;
			lowest = a < lowest ? a : lowest;
		}
	}
	uintptr_t top = (lowest & ~(line - 1)) - line + 2 * MIB;
	CHILD_CHECK(mmap((void *)top, lowest - top, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
			 MAP_FIXED_NOREPLACE, -1, 0) != MAP_FAILED);
	for (size_t i = 0; i < n; i++) { /* the holes between mappings above */
		uintptr_t next = UINTPTR_MAX;
		for (size_t j = 0; j < n; j++)
			if (lo[j] >= hi[i] && lo[j] < next)
				next = lo[j];
		if (next != UINTPTR_MAX && next - hi[i] >= MIB)
			mmap((void *)hi[i], next - hi[i], PROT_NONE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
	}
	char *a = NULL;
	for (int k = 0; k < 1024 && !a; k++) { /* 1.5 MiB blocks until one is in the arena below the line:
						  earlier tests left room in the arenas above */
		char *p = malloc(3 * MIB / 2 - 100);
		CHILD_CHECK(p != NULL);
		if ((uintptr_t)p < top && (uintptr_t)p >= top - 8 * MIB)
			a = p;
	}
	CHILD_CHECK(a != NULL);
	char *b = malloc(MIB / 2 - 100);
	CHILD_CHECK(b != NULL);
	tu_fill(b, MIB / 2 - 100, 9);
	char *c = realloc(b, MIB - 100);
	CHILD_CHECK(c != NULL && tu_check(c, MIB / 2 - 100, 9) == MIB / 2 - 100);
	free(c);
	free(a);
	malloc_trim(0);
}

static void test_arena_across_4gib_line(void **state)
{
	const char *options = getenv("HEAPGUARD_OPTIONS");
	(void)state;
	if (options && strstr(options, "backend=brk"))
		skip(); /* its arenas come from the break, far below the mappings steered here */
	child_passes(arena_across_line_child);
}

/* free must keep errno, including when it gives memory back to the kernel. */
static void test_free_preserves_errno(void **state)
{
	static const size_t sizes[] = {16, 1000, 100000, MIB, 64 * MIB, 256 * MIB};
	enum { N = 100000 };
	static char *p[N];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		char *b = malloc(sizes[i]);

		memset(b, 1, sizes[i]);
		errno = 1234 + (int)i;
		free(b);
		CHECK(errno == 1234 + (int)i, "free of a %zu-byte block changed errno to %d", sizes[i], errno);
	}
	for (i = 0; i < N; i++) {
		p[i] = malloc(100 + i % 3000);
		memset(p[i], 2, 100);
	}
	for (i = 0; i < N; i++) {
		errno = ENOENT;
		free(p[i]);
		CHECK(errno == ENOENT, "free #%zu of %d small blocks changed errno to %d", i, N, errno);
	}
	errno = EINTR;
	malloc_trim(0);
	char *after = malloc(32);
	errno = EAGAIN;
	free(after);
	assert_int_equal(errno, EAGAIN);
}

/* After a 500 MiB peak of small and medium blocks is freed, malloc_trim(0) brings RSS well down. */
/* Frees a chain of blocks linked through their first word, then trims; returns the RSS after. */
static size_t free_chain_and_trim(void **chain)
{
	while (chain != NULL) {
		void **next = *chain;
		free(chain);
		chain = next;
	}
	malloc_trim(0);
	return tu_rss_bytes();
}

/* A thread allocates 64 MiB of small blocks and exits; another thread frees them. */
static void *allocate_chain(void *arg)
{
	void **chain = NULL, **node;

	for (size_t total = 0; total < 64 * MIB; total += 200) {
		node = malloc(200);
		memset(node, 4, 200);
		*node = chain;
		chain = node;
	}
	*(void ***)arg = chain;
	return NULL;
}

/* The exited thread's cache waits for a new thread to adopt it: malloc_trim(0) must still
 * give back the spans that other threads' frees emptied there (it kept 54 of 56 MB). */
static void test_malloc_trim_after_owner_exits(void **state)
{
	void **chain;
	pthread_t t;
	size_t peak, after;

	(void)state;
	assert_int_equal(pthread_create(&t, NULL, allocate_chain, &chain), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	peak = tu_rss_bytes();
	after = free_chain_and_trim(chain);
	CHECK(after + 48 * MIB < peak, "RSS %zu MiB after malloc_trim, %zu MiB at the peak", after / MIB, peak / MIB);
}

static void test_malloc_trim_returns_memory(void **state)
{
	static const size_t sizes[] = {64, 200, 1000, 3000, 20000};
	void **chain = NULL, **node;
	size_t base, peak, after, total = 0, i = 0;

	(void)state;
	base = tu_rss_bytes();
	while (total < 500 * MIB) {
		size_t n = sizes[i++ % 5];

		node = malloc(n);
		assert_non_null(node);
		memset(node, 3, n);
		*node = chain;
		chain = node;
		total += n;
	}
	peak = tu_rss_bytes();
	after = free_chain_and_trim(chain);
	CHECK(peak > base + 400 * MIB, "peak RSS %zu vs base %zu: the blocks were not resident", peak, base);
	CHECK(after < base + 128 * MIB, "RSS base %zu MiB, peak %zu MiB, after free+trim %zu MiB",
	      base / MIB, peak / MIB, after / MIB);
}

/* A program that frees its peak and goes on allocating from the spans it has gets the
 * peak's pages back within the decay (1 s, at most 2): it takes no other slow path, and the
 * 64 MiB stayed resident for good (glibc, jemalloc, tcmalloc and mimalloc keep it too). */
static void test_freed_peak_returns_while_allocating(void **state)
{
	enum { BIG_BLOCKS = 64 << 10, BIG_BYTES = 1000, SMALL_BLOCKS = 64 };
	void **big = malloc(BIG_BLOCKS * sizeof *big), *small[SMALL_BLOCKS];
	size_t peak, now = 0;
	struct timespec t0, t;
	double waited = 0;

	(void)state;
	assert_non_null(big);
	for (int i = 0; i < BIG_BLOCKS; i++) {
		big[i] = malloc(BIG_BYTES);
		assert_non_null(big[i]);
		memset(big[i], 1, BIG_BYTES);
	}
	peak = tu_rss_bytes();
	for (int i = 0; i < BIG_BLOCKS; i++)
		free(big[i]);
	free(big);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long round = 0; waited < 4.0; round++) {
		for (int i = 0; i < SMALL_BLOCKS; i++) {
			small[i] = malloc(48);
			assert_non_null(small[i]);
			*(volatile char *)small[i] = 1;
		}
		for (int i = 0; i < SMALL_BLOCKS; i++)
			free(small[i]);
		if (round % 1000 == 0) {
			now = tu_rss_bytes();
			if (now + 48 * MIB < peak)
				break;
			clock_gettime(CLOCK_MONOTONIC, &t);
			waited = (double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9;
		}
	}
	CHECK(now + 48 * MIB < peak, "RSS %zu MiB at the peak, %zu MiB %.1f s after it was freed",
	      peak / MIB, now / MIB, waited);
}

/* Freed big blocks (cached, resident) serve the next arenas, and a medium block that grows
 * into a mapping of its own gives its pages back: a program that changes phase peaks near its
 * larger phase, not at the two together (each was 2x glibc's RSS). */
static void test_next_phase_reuses_freed_memory(void **state)
{
	enum { BIG = 5 << 19, NBIG = 16, SMALL = 1000, NSMALL = 40000, NGROW = 50, GROWN = 2100000 };
	void *big[NBIG], **small = malloc(NSMALL * sizeof *small), *grow[NGROW];
	size_t base, rss;

	(void)state;
	assert_non_null(small);
	malloc_trim(0);
	base = tu_rss_bytes();
	for (int i = 0; i < NBIG; i++) {
		big[i] = malloc(BIG);
		assert_non_null(big[i]);
		memset(big[i], 1, BIG);
	}
	for (int i = 0; i < NBIG; i++)
		free(big[i]);
	for (int i = 0; i < NSMALL; i++) {
		small[i] = malloc(SMALL);
		assert_non_null(small[i]);
		memset(small[i], 2, SMALL);
	}
	rss = tu_rss_bytes();
	CHECK(rss < base + 56 * MIB, "40 MiB of big blocks freed, then 40 MB of small ones: RSS up %zu MiB",
	      (rss - base) / MIB);
	for (int i = 0; i < NSMALL; i++)
		free(small[i]);
	free(small);
	malloc_trim(0);
	base = tu_rss_bytes();
	for (int i = 0; i < NGROW; i++) {
		grow[i] = malloc(2 * MIB);
		assert_non_null(grow[i]);
		memset(grow[i], 3, 2 * MIB);
	}
	for (int i = 0; i < NGROW; i++) {
		grow[i] = realloc(grow[i], GROWN);
		assert_non_null(grow[i]);
		memset((char *)grow[i] + 2 * MIB, 4, GROWN - 2 * MIB);
	}
	rss = tu_rss_bytes();
	CHECK(rss < base + 130 * MIB, "50 blocks of 2 MiB grown to 2.1 MB: RSS up %zu MiB", (rss - base) / MIB);
	for (int i = 0; i < NGROW; i++) {
		CHECK(((unsigned char *)grow[i])[MIB] == 3, "block %d lost its contents", i);
		free(grow[i]);
	}
}

/* A fresh big block comes faulted in by one call when the program used the last one whole
 * (a calloc'd page read before it is written faults twice), and page by page when it
 * touched one page in 16 of the last one: those blocks' RSS stays what the program uses. */
static void test_big_blocks_faulted_in_as_used(void **state)
{
	enum { BIG = 8 << 20, PAGES = BIG / 4096 };
	(void)state;
	malloc_trim(0); /* no cached mapping: each block below is a fresh one */
	char *whole = malloc(BIG), *next, *after_sparse;
	assert_non_null(whole);
	memset(whole, 1, BIG);
	next = malloc(BIG);
	assert_non_null(next);
	size_t in_next = tu_resident_pages(next, BIG);
	for (size_t off = 0; off < BIG; off += 16 * 4096)
		next[off] = 2;
	after_sparse = calloc(1, BIG);
	assert_non_null(after_sparse);
	size_t in_after = tu_resident_pages(after_sparse, BIG);
	for (size_t off = 0; off < BIG; off += 4096)
		assert_int_equal(after_sparse[off], 0);
	free(whole);
	free(next);
	free(after_sparse);
	CHECK(in_next >= PAGES * 9 / 10, "%zu of %d pages of a fresh block resident after a block used whole",
	      in_next, PAGES);
	CHECK(in_after <= PAGES / 16, "%zu of %d pages of a fresh block resident after one used sparsely",
	      in_after, PAGES);
}

/* 32 strings grown together by exact-size realloc, 37 bytes a step, to 256 KiB: each passes
 * through every size class, and the memory of the classes it left must serve the next ones.
 * Runs in a thread of its own, so that no earlier test's spans are there to be reused. */
enum { GROWN = 32, GROWN_TOP = 256 * 1024, GROWN_STEP = 37 };

static void *grow_strings(void *arg)
{
	size_t *rss_growth = arg, before = tu_rss_bytes(), len = 0;
	char *s[GROWN] = {NULL};

	while (len + GROWN_STEP <= GROWN_TOP) {
		len += GROWN_STEP;
		for (int i = 0; i < GROWN; i++) {
			char *q = realloc(s[i], len);

			if (q == NULL)
				return NULL;
			memset(q + len - GROWN_STEP, i, GROWN_STEP);
			s[i] = q;
		}
	}
	*rss_growth = tu_rss_bytes() - before;
	int intact = 1;
	for (int i = 0; i < GROWN; i++) {
		intact &= s[i][0] == i && s[i][len / 2] == i && s[i][len - 1] == i;
		free(s[i]);
	}
	return intact ? arg : NULL; /* NULL: a realloc failed or lost contents */
}

static void test_realloc_growth_reuses_memory(void **state)
{
	size_t growth = 0, live = GROWN * (GROWN_TOP / GROWN_STEP * GROWN_STEP);
	pthread_t t;
	void *done;

	(void)state;
	assert_int_equal(pthread_create(&t, NULL, grow_strings, &growth), 0);
	pthread_join(t, &done);
	CHECK(done != NULL, "a realloc failed or a string lost its contents");
	/* heapguard 1.3 x the 8 MiB that stay live, 2.0 x before the current spans of large
	 * blocks went back to the arenas once free; glibc 1.3 x in a main thread, 1.8 x here. */
	CHECK(growth < live + live / 2, "RSS grew %zu KiB for %zu KiB of strings", growth / 1024, live / 1024);
}

/* 32 vectors of 8-byte elements grown together by push_back, 16 elements a turn, each
 * doubling its capacity to 2 MiB for 1-2 MiB of elements: the blocks a doubling left behind
 * must not stay resident beside the larger ones. For 47 MiB of elements RSS grew 63 MiB
 * in a process of its own, 77 after this file's earlier tests, before blocks of 1 MiB or
 * more gave their pages back on moving; now 50 and 57 (glibc 48). In a thread of its own,
 * as grow_strings. */
static void *grow_vectors(void *arg)
{
	enum { NVEC = 32, TURN = 16 };
	struct { uint64_t *p; size_t len, cap, target; } v[NVEC];
	size_t *growth_used = arg, before = tu_rss_bytes(), used = 0;
	uint64_t rng = 12345;
	int unfinished = NVEC, intact = 1;

	for (int i = 0; i < NVEC; i++) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		v[i].p = NULL;
		v[i].len = v[i].cap = 0;
		v[i].target = (128 << 10) + (rng >> 33) % (128 << 10);
	}
	while (unfinished > 0)
		for (int i = 0; i < NVEC; i++) {
			if (v[i].len >= v[i].target)
				continue;
			for (int k = 0; k < TURN; k++, v[i].len++) {
				if (v[i].len == v[i].cap) {
					v[i].cap = v[i].cap ? 2 * v[i].cap : 4;
					if (!(v[i].p = realloc(v[i].p, v[i].cap * sizeof *v[i].p)))
						return NULL;
				}
				v[i].p[v[i].len] = v[i].len;
			}
			unfinished -= v[i].len >= v[i].target;
		}
	growth_used[0] = tu_rss_bytes() - before;
	for (int i = 0; i < NVEC; i++) {
		used += v[i].len * sizeof *v[i].p;
		intact &= v[i].p[0] == 0 && v[i].p[v[i].len - 1] == v[i].len - 1;
		free(v[i].p);
	}
	growth_used[1] = used;
	return intact ? arg : NULL; /* NULL: a realloc failed or lost contents */
}

static void test_doubling_vectors_leave_no_holes(void **state)
{
	size_t growth_used[2];
	pthread_t t;
	void *done;

	(void)state;
	malloc_trim(0); /* the earlier tests' freed memory goes back first, not during the test */
	assert_int_equal(pthread_create(&t, NULL, grow_vectors, growth_used), 0);
	pthread_join(t, &done);
	CHECK(done != NULL, "a realloc failed or a vector lost its contents");
	CHECK(growth_used[0] < growth_used[1] + growth_used[1] / 4, "RSS grew %zu KiB for %zu KiB of vectors",
	      growth_used[0] >> 10, growth_used[1] >> 10);
}

/* The glibc extras do not crash, and leave the heap usable. */
static void test_glibc_extras(void **state)
{
	FILE *f = tmpfile();
	struct mallinfo2 mi2;
	char *p = malloc(1000);

	(void)state;
	assert_non_null(f);
	char *held = malloc(100000);
	tu_fill(held, 100000, 7);
	mi2 = mallinfo2();
	CHECK(mi2.uordblks >= 100000, "mallinfo2: %zu bytes in use with 100 KB live", mi2.uordblks);
	CHECK(MALLINFO().uordblks >= 100000, "mallinfo: %d bytes in use with 100 KB live", MALLINFO().uordblks);
	free(held);
	/* glibc's answers: the values it refuses, and malloc_info's error as its result */
	assert_int_equal(mallopt(M_TRIM_THRESHOLD, 128 * 1024), 1);
	assert_int_equal(mallopt(M_MXFAST, 64), 1);
	assert_int_equal(mallopt(M_MXFAST, 100000), 0);
	assert_int_equal(mallopt(M_MMAP_THRESHOLD, 64 << 20), 1);
	assert_int_equal(mallopt(M_MMAP_THRESHOLD, -1), 1);
	assert_int_equal(malloc_info(0, f), 0);
	assert_int_equal(malloc_info(1, f), EINVAL);
	fclose(f);
	errno = 0;
	CHECK(memalign(SIZE_MAX, 16) == NULL && errno == EINVAL, "memalign(SIZE_MAX): errno %d", errno);
	/* malloc_trim says whether memory went back */
	char *big = malloc(64 * MIB);
	memset(big, 1, 64 * MIB);
	free(big);
	CHECK(malloc_trim(0) == 1, "malloc_trim after freeing 64 MiB gave nothing back");
	CHECK(malloc_trim(0) == 0, "a second malloc_trim said it gave memory back again");
	tu_fill(p, 1000, 5);
	assert_int_equal(tu_check(p, 1000, 5), 1000);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* first: the heap as a fresh process has it, so that the last block lands on top */
		cmocka_unit_test(test_freed_below_a_live_block_serves_under_rlimit_as),
		cmocka_unit_test(test_version),
		cmocka_unit_test(test_symbols_resolve_to_heapguard),
		cmocka_unit_test(test_old_cfree),
		cmocka_unit_test(test_libc_internal_allocations),
		cmocka_unit_test(test_dlopen_dlclose_dlerror),
		cmocka_unit_test(test_malloc_zero_unique),
		cmocka_unit_test(test_free_null),
		cmocka_unit_test(test_realloc_null_is_malloc),
		cmocka_unit_test(test_realloc_zero_frees),
		cmocka_unit_test(test_calloc_overflow),
		cmocka_unit_test(test_reallocarray),
		cmocka_unit_test(test_impossible_sizes_fail_cleanly),
		cmocka_unit_test(test_huge_sizes_fail_or_work),
		cmocka_unit_test(test_two_gib_works),
		cmocka_unit_test(test_posix_memalign_einval),
		cmocka_unit_test(test_aligned_alloc_einval),
		cmocka_unit_test(test_posix_memalign_keeps_errno),
		cmocka_unit_test(test_every_alignment),
		cmocka_unit_test(test_valloc_pvalloc),
		cmocka_unit_test(test_usable_size_writable),
		cmocka_unit_test(test_realloc_keeps_contents),
		cmocka_unit_test(test_realloc_chains),
		cmocka_unit_test(test_calloc_zeroes_reused_memory),
		cmocka_unit_test(test_grown_mapping_then_calloc),
		cmocka_unit_test(test_calloc_zeroes_many_small),
		cmocka_unit_test(test_enomem_under_rlimit_as),
		cmocka_unit_test(test_free_preserves_errno),
		cmocka_unit_test(test_malloc_trim_returns_memory),
		cmocka_unit_test(test_malloc_trim_after_owner_exits),
		cmocka_unit_test(test_big_blocks_faulted_in_as_used),
		cmocka_unit_test(test_freed_peak_returns_while_allocating),
		cmocka_unit_test(test_next_phase_reuses_freed_memory),
		cmocka_unit_test(test_freed_memory_serves_under_rlimit_as),
		cmocka_unit_test(test_last_megabyte_serves_new_sizes),
		cmocka_unit_test(test_arena_across_4gib_line),
		cmocka_unit_test(test_realloc_growth_reuses_memory),
		cmocka_unit_test(test_doubling_vectors_leave_no_holes),
		cmocka_unit_test(test_glibc_extras),
	};

	tu_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
