/* malloc.c — the exported C allocation API with glibc's semantics, over the core in alloc/. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "alloc/tcache.h"
#include "api/stats.h"
#include "base/options.h"
#include "heapguard.h"
#include "os/os.h"

#define API HG_EXPORT

static void *counted(void *p, size_t n)
{
	if (unlikely(hg_stats_on))
		hg_stats_alloc(p, n);
	return p;
}

static HG_NOINLINE void *malloc_counted(size_t n)
{
	return counted(hg_alloc(n), n);
}

/* The stats flag is tested first so the fast path needs no stack frame. */
API void *malloc(size_t n)
{
	if (unlikely(hg_stats_on))
		return malloc_counted(n);
	return hg_alloc(n);
}

static HG_NOINLINE void free_counted(void *p)
{
	hg_stats_free(p);
	hg_free(p, "free");
}

API void free(void *p)
{
	if (unlikely(hg_stats_on))
		free_counted(p);
	else
		hg_free(p, "free");
}

API void *calloc(size_t nmemb, size_t size)
{
	size_t n;
	if (__builtin_mul_overflow(nmemb, size, &n)) {
		errno = ENOMEM;
		return NULL;
	}
	if (n > HG_SMALL_MAX_BYTES)
		return counted(hg_large_alloc(n, 0, 1), n);
	void *p = hg_alloc(n);
	if (p)
		memset(p, 0, n);
	return counted(p, n);
}

/* Moves the block to a new one of n bytes; the old one is freed only on success. */
static void *realloc_move(void *p, size_t old_usable, size_t n)
{
	void *q = hg_alloc(n);
	if (!q)
		return NULL;
	memcpy(q, p, old_usable < n ? old_usable : n);
	hg_free(p, "realloc");
	return q;
}

API void *realloc(void *p, size_t n)
{
	if (!p)
		return malloc(n);
	if (n == 0) {
		free(p);
		return NULL;
	}
	size_t usable;
	struct hg_span *s = hg_block_of(p, &usable);
	if (!s) {
		hg_free(p, "realloc"); /* not a live block: this reports it */
		errno = EINVAL;
		return NULL;
	}
	if (unlikely(hg_stats_on))
		hg_stats_free(p);
	void *q;
	if (s->owner == HG_OWNER_LARGE && n > HG_SMALL_MAX_BYTES)
		q = hg_large_realloc(s, n); /* mremap: no copy */
	else if (s->owner != HG_OWNER_LARGE && n <= usable && hg_size_class(n) + 8 > s->cls)
		q = p; /* fits, and shrinks by less than half: stay */
	else
		q = realloc_move(p, usable, n);
	if (unlikely(hg_stats_on))
		hg_stats_alloc(q ? q : p, q ? n : usable);
	return q;
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

/* memalign's contract: any alignment; glibc rounds one that is not a power of two up. */
static void *aligned(size_t align, size_t n)
{
	if (!hg_is_pow2(align)) {
		if (align > ((size_t)1 << 62)) {
			errno = ENOMEM;
			return NULL;
		}
		align = align < 2 ? 1 : (size_t)1 << (64 - __builtin_clzll(align - 1));
	}
	return counted(hg_alloc_aligned(align, n), n);
}

API void *memalign(size_t align, size_t n) { return aligned(align, n); }

API void *aligned_alloc(size_t align, size_t n)
{
	if (!hg_is_pow2(align)) {
		errno = EINVAL;
		return NULL;
	}
	return aligned(align, n);
}

API int posix_memalign(void **out, size_t align, size_t n)
{
	if (!hg_is_pow2(align) || align % sizeof(void *))
		return EINVAL;
	int saved = errno;
	void *p = aligned(align, n);
	errno = saved;
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

API void *valloc(size_t n) { return aligned(HG_OS_PAGE_BYTES, n); }

API void *pvalloc(size_t n)
{
	if (n > PTRDIFF_MAX) {
		errno = ENOMEM;
		return NULL;
	}
	return aligned(HG_OS_PAGE_BYTES, n ? hg_align_up(n, HG_OS_PAGE_BYTES) : HG_OS_PAGE_BYTES);
}

API size_t malloc_usable_size(void *p) { return hg_usable_size(p); }

API int malloc_trim(size_t pad)
{
	(void)pad;
	hg_central_purge(1);
	return 1;
}

/* glibc's tuning knobs mean nothing here; accepting them keeps programs that set them working. */
API int mallopt(int param, int value)
{
	(void)param;
	(void)value;
	return 1;
}

API struct mallinfo2 mallinfo2(void)
{
	struct mallinfo2 m = { 0 };
	m.arena = hg_os_mapped_bytes();
	m.uordblks = hg_stats_in_use();
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
	if (options != 0) {
		errno = EINVAL;
		return -1;
	}
	fprintf(fp, "<malloc version=\"heapguard-%s\">\n<system type=\"current\" size=\"%zu\"/>\n</malloc>\n",
		HG_VERSION, hg_os_mapped_bytes());
	return 0;
}

API const char *heapguard_version(void) { return HG_VERSION; }
API void heapguard_print_stats(void) { hg_stats_print(); }

/* Programs and libraries that call glibc's internal names must land in the same heap. */
API void *__libc_malloc(size_t n) __attribute__((alias("malloc"), copy(malloc)));
API void __libc_free(void *p) __attribute__((alias("free"), copy(free)));
API void *__libc_calloc(size_t a, size_t b) __attribute__((alias("calloc"), copy(calloc)));
API void *__libc_realloc(void *p, size_t n) __attribute__((alias("realloc"), copy(realloc)));
API void *__libc_memalign(size_t a, size_t n) __attribute__((alias("memalign"), copy(memalign)));
API void *__libc_valloc(size_t n) __attribute__((alias("valloc"), copy(valloc)));
API void *__libc_pvalloc(size_t n) __attribute__((alias("pvalloc"), copy(pvalloc)));
