/* malloc.c — the exported C allocation API with glibc's semantics, over the core in alloc/. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "api/heap.h"
#include "base/options.h"
#include "heapguard.h"
#include "os/os.h"

#define API HG_EXPORT

API void *malloc(size_t n)
{
	return heap_alloc(n, HEAP_BY_MALLOC, "malloc");
}

API void free(void *p)
{
	heap_free(p, HEAP_BY_MALLOC, "free");
}

/* Gone from glibc's headers since 2.26, still exported: programs built before call it. */
API void cfree(void *p) __attribute__((alias("free"), copy(free)));

API void *calloc(size_t nmemb, size_t size)
{
	size_t n;
	if (__builtin_mul_overflow(nmemb, size, &n)) {
		errno = ENOMEM;
		return NULL;
	}
	return heap_calloc(n);
}

API void *realloc(void *p, size_t n)
{
	if (!p)
		return malloc(n);
	if (n == 0) {
		free(p);
		return NULL;
	}
	return heap_realloc(p, n);
}

API void *reallocarray(void *p, size_t nmemb, size_t size)
{
	size_t n;
	if (__builtin_mul_overflow(nmemb, size, &n)) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(p, n);
}

/* memalign's contract: any alignment; glibc rounds one that is not a power of two up, and
 * refuses one past the largest power of two (EINVAL). */
static void *aligned(size_t align, size_t n, const char *func)
{
	if (align > SIZE_MAX / 2 + 1) {
		errno = EINVAL;
		return NULL;
	}
	if (!hg_is_pow2(align))
		align = align < 2 ? 1 : (size_t)1 << (64 - __builtin_clzll(align - 1));
	return heap_aligned(align, n, HEAP_BY_MALLOC, func);
}

API void *memalign(size_t align, size_t n) { return aligned(align, n, "memalign"); }

API void *aligned_alloc(size_t align, size_t n)
{
	if (!hg_is_pow2(align)) {
		errno = EINVAL;
		return NULL;
	}
	return aligned(align, n, "aligned_alloc");
}

API int posix_memalign(void **out, size_t align, size_t n)
{
	if (!hg_is_pow2(align) || align % sizeof(void *))
		return EINVAL;
	int saved = errno;
	void *p = aligned(align, n, "posix_memalign");
	errno = saved;
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

API void *valloc(size_t n) { return aligned(HG_OS_PAGE_BYTES, n, "valloc"); }

API void *pvalloc(size_t n)
{
	if (n > PTRDIFF_MAX) {
		errno = ENOMEM;
		return NULL;
	}
	return aligned(HG_OS_PAGE_BYTES, n ? hg_align_up(n, HG_OS_PAGE_BYTES) : HG_OS_PAGE_BYTES, "pvalloc");
}

API size_t malloc_usable_size(void *p) { return heap_usable(p); }

/* 1 when memory went back to the kernel, as glibc's. */
API int malloc_trim(size_t pad)
{
	(void)pad;
	hg_tcache_trim();
	return hg_central_purge(1) != 0;
}

/* glibc's tuning knobs mean nothing here; accepting them keeps programs that set them working.
 * They get glibc's answers: 0 only where it refuses a value. */
API int mallopt(int param, int value)
{
	if (param == M_MXFAST)
		return value >= 0 && value <= 80 * (int)sizeof(size_t) / 4; /* glibc's MAX_FAST_SIZE */
	return 1; /* glibc 2.36 takes every other value, even an M_MMAP_THRESHOLD above 32 MiB */
}

API struct mallinfo2 mallinfo2(void)
{
	struct mallinfo2 m = { 0 };
	m.arena = hg_os_mapped_bytes();
	m.uordblks = heap_in_use();
	m.fordblks = m.arena > m.uordblks ? m.arena - m.uordblks : 0;
	return m;
}

API struct mallinfo mallinfo(void)
{
	struct mallinfo2 m2 = mallinfo2();
	struct mallinfo m = { 0 };
	m.arena = (int)m2.arena;
	m.uordblks = (int)m2.uordblks;
	m.fordblks = (int)m2.fordblks;
	return m;
}

API void malloc_stats(void) { hg_stats_print(); }

API int malloc_info(int options, FILE *fp)
{
	if (options != 0)
		return EINVAL; /* as glibc: the error is the result */
	fprintf(fp, "<malloc version=\"heapguard-%s\">\n<system type=\"current\" size=\"%zu\"/>\n</malloc>\n",
		HG_VERSION, hg_os_mapped_bytes());
	return 0;
}

API const char *heapguard_version(void) { return HG_VERSION; }
#ifndef HG_CHECK
/* The fast library checks nothing: a program linked with -lheapguard still links and runs. */
API size_t heapguard_check_leaks(void) { return 0; }
#endif
API void heapguard_print_stats(void) { hg_stats_print(); }

/* Programs and libraries that call glibc's internal names must land in the same heap. */
API void *__libc_malloc(size_t n) __attribute__((alias("malloc"), copy(malloc)));
API void __libc_free(void *p) __attribute__((alias("free"), copy(free)));
API void *__libc_calloc(size_t a, size_t b) __attribute__((alias("calloc"), copy(calloc)));
API void *__libc_realloc(void *p, size_t n) __attribute__((alias("realloc"), copy(realloc)));
API void *__libc_memalign(size_t a, size_t n) __attribute__((alias("memalign"), copy(memalign)));
API void *__libc_valloc(size_t n) __attribute__((alias("valloc"), copy(valloc)));
API void *__libc_pvalloc(size_t n) __attribute__((alias("pvalloc"), copy(pvalloc)));
