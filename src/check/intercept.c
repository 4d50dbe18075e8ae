/* intercept.c — libc calls that check the heap ranges they touch; never-written output. */
#define _GNU_SOURCE
#include <ctype.h>
#include <dlfcn.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include <wchar.h>

#include "alloc/span.h"
#include "base/fmt.h"
#include "base/options.h"
#include "check/check.h"
#include "os/os.h"

/*
 * What a report of these calls says (hgc_check_access decides, block.c): `addr` is the first
 * byte of the access outside the block's live bytes — the first byte past the block for an
 * overflow, the access start for an underflow, the first freed byte for a use after free —
 * and `size` is the whole access as the call makes it: memcpy(d, s, 12) into an 8-byte block
 * is a "write of size 12 at d+8". A string that runs off its block (no NUL before the end)
 * has no known length without reading past the block, so the access reported is what the
 * call is certain to touch, [s, first byte past the block]: strlen of 9 unterminated bytes
 * is a "read of size 10 at s+9", and a copy of that string is not checked further.
 * vsnprintf reports after the call, on the bytes it wrote (as ASan does).
 *
 * Cost: the fast path is one page-map lookup per range end (two loads each; one when both
 * ends share a 64 KiB granule), a load of the guard option, and a tail call into glibc. Only
 * a range whose first or last byte the page map names (or that lies in a guard slot) goes out
 * of line to hgc_check_access: a record lookup under a lock, ~15 ns a range.
 */

/* ---- the real functions ----
 * glibc's _IO_ and __ aliases reach its implementations and never come back through our
 * exported symbols. The fortified entry points (__memcpy_chk and so on) are ours too, for
 * fortified programs; with an unknown object size ((size_t)-1) they are the plain
 * functions, and `real` below reaches glibc's. */
/* real_mempcpy, real_bcopy, hgc_real_memset: check.h */
ssize_t real_read(int, void *, size_t) __asm__("__read");
ssize_t real_write(int, const void *, size_t) __asm__("__write");
ssize_t real_send(int, const void *, size_t, int) __asm__("__send");
size_t real_fread(void *, size_t, size_t, FILE *) __asm__("_IO_fread");
size_t real_fwrite(const void *, size_t, size_t, FILE *) __asm__("_IO_fwrite");
char *real_fgets(char *, int, FILE *) __asm__("_IO_fgets");
int real_fputs(const char *, FILE *) __asm__("_IO_fputs");
int real_puts(const char *) __asm__("_IO_puts");

/* Those without such an entry point come from dlsym once the heap works (dlsym allocates);
 * until then these loops serve, kept loops: gcc would turn them back into library calls. */
#define PLAIN_LOOP __attribute__((optimize("no-tree-loop-distribute-patterns"), noinline))

PLAIN_LOOP static size_t loop_strnlen(const char *s, size_t max)
{
	size_t i = 0;
	while (i < max && s[i])
		i++;
	return i;
}
PLAIN_LOOP static size_t loop_wcsnlen(const wchar_t *s, size_t max)
{
	size_t i = 0;
	while (i < max && s[i])
		i++;
	return i;
}
static size_t loop_strlen(const char *s) { return loop_strnlen(s, SIZE_MAX); }
static size_t loop_wcslen(const wchar_t *s) { return loop_wcsnlen(s, SIZE_MAX); }
PLAIN_LOOP static void *loop_memmove(void *d, const void *s, size_t n)
{
	unsigned char *x = d;
	const unsigned char *y = s;
	if (x < y)
		for (size_t i = 0; i < n; i++)
			x[i] = y[i];
	else
		for (size_t i = n; i > 0; i--)
			x[i - 1] = y[i - 1];
	return d;
}
PLAIN_LOOP static void *loop_memset(void *d, int c, size_t n)
{
	unsigned char *x = d;
	for (size_t i = 0; i < n; i++)
		x[i] = (unsigned char)c;
	return d;
}
PLAIN_LOOP static int loop_memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;
	for (size_t i = 0; i < n; i++)
		if (x[i] != y[i])
			return x[i] - y[i];
	return 0;
}

static struct {
	size_t (*strlen)(const char *);
	size_t (*strnlen)(const char *, size_t);
	size_t (*wcslen)(const wchar_t *);
	size_t (*wcsnlen)(const wchar_t *, size_t);
	int (*memcmp)(const void *, const void *, size_t);
	void *(*memcpy)(void *, const void *, size_t);
	void *(*memmove)(void *, const void *, size_t);
	/* The scanf family has no other name to reach glibc's by, and the _chk forms of the
	 * string and printf functions are our own too (fortified programs call them): NULL until
	 * resolved (NEXT). */
	int (*__isoc99_vsscanf)(const char *, const char *, va_list);
	int (*__isoc99_vfscanf)(FILE *, const char *, va_list);
	int (*vsscanf)(const char *, const char *, va_list);
	int (*vfscanf)(FILE *, const char *, va_list);
	int (*__vfprintf_chk)(FILE *, int, const char *, va_list);
	int (*__vprintf_chk)(int, const char *, va_list);
	int (*__vdprintf_chk)(int, int, const char *, va_list);
	int (*__vsnprintf_chk)(char *, size_t, int, size_t, const char *, va_list);
	int (*__vsprintf_chk)(char *, int, size_t, const char *, va_list);
	int (*__vswprintf_chk)(wchar_t *, size_t, int, size_t, const wchar_t *, va_list);
	int (*__vfwprintf_chk)(FILE *, int, const wchar_t *, va_list);
	int (*__vwprintf_chk)(int, const wchar_t *, va_list);
	int (*fputws)(const wchar_t *, FILE *);
	int (*fputws_unlocked)(const wchar_t *, FILE *);
	void *(*__memcpy_chk)(void *, const void *, size_t, size_t);
	void *(*__memmove_chk)(void *, const void *, size_t, size_t);
	void *(*__mempcpy_chk)(void *, const void *, size_t, size_t);
	void *(*__memset_chk)(void *, int, size_t, size_t);
	wchar_t *(*__wmemcpy_chk)(wchar_t *, const wchar_t *, size_t, size_t);
	wchar_t *(*__wmemmove_chk)(wchar_t *, const wchar_t *, size_t, size_t);
	wchar_t *(*__wmemset_chk)(wchar_t *, wchar_t, size_t, size_t);
	wchar_t *(*__wcscpy_chk)(wchar_t *, const wchar_t *, size_t);
	wchar_t *(*__wcsncpy_chk)(wchar_t *, const wchar_t *, size_t, size_t);
	wchar_t *(*__wcscat_chk)(wchar_t *, const wchar_t *, size_t);
	wchar_t *(*__wcsncat_chk)(wchar_t *, const wchar_t *, size_t, size_t);
	ssize_t (*__read_chk)(int, void *, size_t, size_t);
	size_t (*__fread_chk)(void *, size_t, size_t, size_t, FILE *);
	size_t (*__fread_unlocked_chk)(void *, size_t, size_t, size_t, FILE *);
	char *(*__fgets_chk)(char *, size_t, int, FILE *);
	char *(*__fgets_unlocked_chk)(char *, size_t, int, FILE *);
	char *(*__strcpy_chk)(char *, const char *, size_t);
	char *(*__stpcpy_chk)(char *, const char *, size_t);
	char *(*__strncpy_chk)(char *, const char *, size_t, size_t);
	char *(*__strcat_chk)(char *, const char *, size_t);
	char *(*__strncat_chk)(char *, const char *, size_t, size_t);
	void (*__vsyslog_chk)(int, int, const char *, va_list);
	void (*vwarn)(const char *, va_list);
	void (*vwarnx)(const char *, va_list);
	void (*verr)(int, const char *, va_list);
	void (*verrx)(int, const char *, va_list);
	void (*error)(int, int, const char *, ...);
	void (*error_at_line)(int, int, const char *, unsigned, const char *, ...);
	size_t (*fread_unlocked)(void *, size_t, size_t, FILE *);
	char *(*fgets_unlocked)(char *, int, FILE *);
	size_t (*fwrite_unlocked)(const void *, size_t, size_t, FILE *);
	int (*fputs_unlocked)(const char *, FILE *);
	void (*perror)(const char *);
	char *(*strchr)(const char *, int);
	char *(*strrchr)(const char *, int);
	void *(*memchr)(const void *, int, size_t);
	char *(*strstr)(const char *, const char *);
	int (*strcmp)(const char *, const char *);
	int (*strncmp)(const char *, const char *, size_t);
	int (*strcasecmp)(const char *, const char *);
	int (*strncasecmp)(const char *, const char *, size_t);
	int (*fclose)(FILE *);
	int (*closedir)(DIR *);
	struct dirent *(*readdir)(DIR *);
	struct dirent64 *(*readdir64)(DIR *);
	void (*rewinddir)(DIR *);
} real = { .strlen = loop_strlen, .strnlen = loop_strnlen, .wcslen = loop_wcslen, .wcsnlen = loop_wcsnlen,
	    .memcmp = loop_memcmp, .memcpy = loop_memmove, .memmove = loop_memmove };

#define RESOLVE(field)                                        \
	do {                                                  \
		void *f_ = dlsym(RTLD_NEXT, #field);          \
		if (f_)                                       \
			*(void **)&real.field = f_;           \
	} while (0)

void *(*hgc_real_memset)(void *, int, size_t) = loop_memset;

void hgc_intercept_init(void)
{
	void *f = dlsym(RTLD_NEXT, "memset");
	if (f)
		*(void **)&hgc_real_memset = f;
	RESOLVE(strlen);
	RESOLVE(strnlen);
	RESOLVE(wcslen);
	RESOLVE(wcsnlen);
	RESOLVE(memcmp);
	RESOLVE(memcpy);
	RESOLVE(memmove);
	RESOLVE(__isoc99_vsscanf);
	RESOLVE(__isoc99_vfscanf);
	RESOLVE(vsscanf);
	RESOLVE(vfscanf);
	RESOLVE(__vfprintf_chk);
	RESOLVE(__vprintf_chk);
	RESOLVE(__vdprintf_chk);
	RESOLVE(__vsnprintf_chk);
	RESOLVE(__vsprintf_chk);
	RESOLVE(__vswprintf_chk);
	RESOLVE(__vfwprintf_chk);
	RESOLVE(__vwprintf_chk);
	RESOLVE(fputws);
	RESOLVE(fputws_unlocked);
	RESOLVE(__memcpy_chk);
	RESOLVE(__memmove_chk);
	RESOLVE(__mempcpy_chk);
	RESOLVE(__memset_chk);
	RESOLVE(__wmemcpy_chk);
	RESOLVE(__wmemmove_chk);
	RESOLVE(__wmemset_chk);
	RESOLVE(__wcscpy_chk);
	RESOLVE(__wcsncpy_chk);
	RESOLVE(__wcscat_chk);
	RESOLVE(__wcsncat_chk);
	RESOLVE(__read_chk);
	RESOLVE(__fread_chk);
	RESOLVE(__fread_unlocked_chk);
	RESOLVE(__fgets_chk);
	RESOLVE(__fgets_unlocked_chk);
	RESOLVE(__strcpy_chk);
	RESOLVE(__stpcpy_chk);
	RESOLVE(__strncpy_chk);
	RESOLVE(__strcat_chk);
	RESOLVE(__strncat_chk);
	RESOLVE(__vsyslog_chk);
	RESOLVE(vwarn);
	RESOLVE(vwarnx);
	RESOLVE(verr);
	RESOLVE(verrx);
	RESOLVE(error);
	RESOLVE(error_at_line);
	RESOLVE(fread_unlocked);
	RESOLVE(fgets_unlocked);
	RESOLVE(fwrite_unlocked);
	RESOLVE(fputs_unlocked);
	RESOLVE(perror);
	RESOLVE(strchr);
	RESOLVE(strrchr);
	RESOLVE(memchr);
	RESOLVE(strstr);
	RESOLVE(strcmp);
	RESOLVE(strncmp);
	RESOLVE(strcasecmp);
	RESOLVE(strncasecmp);
	RESOLVE(fclose);
	RESOLVE(closedir);
	RESOLVE(readdir);
	RESOLVE(readdir64);
	RESOLVE(rewinddir);
}

/* The real function, resolved now if a call came before hgc_intercept_init. */
#define NEXT(name) (real.name ? real.name : (*(void **)&real.name = dlsym(RTLD_NEXT, #name), real.name))

/* ---- the fast test and the gate to the slow path ---- */
#define RET __builtin_return_address(0)
#define UNINIT_RUN_BYTES 4 /* a shorter run of the never-written pattern is taken for data */
#define WSIZE sizeof(wchar_t)

/* Guard slots are whole pages, so one page holds no slot boundary. */
static HG_NOINLINE int in_guard_slot(uintptr_t a, uintptr_t z)
{
	return hgc_guard_slot_of((void *)a) ||
	       ((a ^ z) / HG_OS_PAGE_BYTES && hgc_guard_slot_of((void *)z));
}

/* 1 when [p, p+n) may touch a block heapguard handed out: the page map names a span for its
 * first or last byte (or a kept place of a block that moved or was freed, heap.c), one of them
 * lies in a guard slot (outside the page map), or it spans whole slices around a kept place.
 * n > 0. */
HG_INLINE int may_be_heap(const void *p, size_t n)
{
	uintptr_t a = (uintptr_t)p, z = a + n - 1;
	if (hg_pagemap_get(a) || (((a ^ z) >> HG_SLICE_SHIFT) && hg_pagemap_get(z)) ||
	    (n > HG_SLICE_BYTES && hgc_vacated_near(a, z)))
		return 1;
	return unlikely(hg_opt.guard != 0) && in_guard_slot(a, z);
}

static __thread int in_check;    /* this thread is inside a check: the calls it makes pass */
static __thread int saved_errno; /* a report writes; the program's errno must not change */

/* 0 when the call must pass unchecked: before init, from heapguard's own code (its memset of
 * a block it just freed is no use after free), or from inside a check or a report. */
static int enter(const void *ret)
{
	if (!hgc_ready || in_check || hgc_is_own_pc((uintptr_t)ret))
		return 0;
	in_check = 1;
	saved_errno = errno;
	return 1;
}

static void leave(void)
{
	errno = saved_errno;
	in_check = 0;
	if (unlikely(hgc_ending_signal))
		hgc_end_by_signal(hgc_ending_signal, NULL); /* it came during the check */
}

int hgc_intercept_busy(void)
{
	return in_check;
}

/* The memory calls' slow path: a read of [r, r+nr) (or of two ranges, both_read), then a
 * write of [w, w+nw); a size of 0 checks nothing. */
static HG_NOINLINE void check2(const void *r, size_t nr, void *w, size_t nw, int both_read,
			       const char *func, const void *ret)
{
	if (!enter(ret))
		return;
	hgc_check_access(r, nr, 0, func);
	hgc_check_access(w, nw, !both_read, func);
	leave();
}

/* ---- overlapping copies ----
 * memcpy, strcpy and their kin are undefined when what they write overlaps what they read
 * (memmove is not): glibc's vector copies go forwards or backwards by size and alignment, so
 * the result changes from machine to machine. Every memcpy is tested (two subtractions); the
 * string copies where a heap string made the check measure them. One pointer for both, as
 * gcc's code for a struct assigned to itself passes, is let through, as ASan does. */
HG_INLINE int overlap(const void *d, size_t nd, const void *s, size_t ns)
{
	uintptr_t a = (uintptr_t)d, b = (uintptr_t)s;
	return a != b && nd && ns && (a - b < ns || b - a < nd);
}

/* Reports the copy; inside a check. The block is the destination's, else the source's. */
static HG_NOINLINE void overlap_report(const void *d, size_t nd, const void *s, size_t ns, const char *func)
{
	struct hgc_error e = { .kind = "param-overlap", .access = "write", .func = func,
			       .addr = (uintptr_t)d, .size = nd };
	e.has_block = hgc_lookup(d, &e.block) || hgc_lookup(s, &e.block);
	struct hg_buf text = { .len = 0 };
	hg_buf_str(&text, "the source, ");
	hg_buf_dec(&text, ns);
	hg_buf_str(&text, " bytes at ");
	hg_buf_hex(&text, (uintptr_t)s);
	hg_buf_str(&text, ", overlaps the destination");
	text.text[text.len] = 0; /* short: never full */
	e.detail = text.text;
	hgc_report(&e);
}

static HG_NOINLINE void overlap_slow(const void *d, size_t nd, const void *s, size_t ns, const char *func,
				     const void *ret)
{
	if (!enter(ret))
		return;
	overlap_report(d, nd, s, ns, func);
	leave();
}

/* ---- strings ---- */

/* Length of the string at s, in units of `unit` bytes, at most max, as the real function
 * finds it. */
static size_t plain_len(const void *s, size_t max, size_t unit)
{
	if (unit == 1)
		return max == SIZE_MAX ? real.strlen(s) : real.strnlen(s, max);
	return max == SIZE_MAX ? real.wcslen(s) : real.wcsnlen(s, max);
}

/* Length of the string at s (units of `unit` bytes, at most max), read by func. Within a
 * heap block the scan stops at the block's end: a string that reaches it, or lies in a freed
 * block or a redzone, is reported (see the top) and *bad set. The length returned is always
 * the real function's, so that the program behaves as it would without us. */
static size_t str_extent(const void *s, size_t max, size_t unit, const char *func, int *bad)
{
	struct hgc_block b;
	*bad = 0;
	if (hg_opt.guard_uninit)
		hgc_guard_touch(s); /* measured here: a library call's use, as in hgc_check_access */
	if (!hgc_lookup(s, &b))
		return plain_len(s, max, unit);
	if (b.guarded && b.state != HGC_LIVE) {
		/* Its slot is inaccessible: the scan would fault inside the check. Reported here,
		 * the string is measured once the check is over, where the fault ends the program
		 * as any access to a freed guarded block does (*bad 2). */
		hgc_check_access(s, unit, 0, func);
		*bad = 2;
		return 0;
	}
	const char *p = s, *end = b.user + b.size;
	size_t room = p < end ? (size_t)(end - p) / unit : 0;
	size_t lim = room < max ? room : max;
	size_t len = plain_len(s, lim, unit);
	size_t access;
	if (len < lim)
		access = (len + 1) * unit; /* up to its NUL */
	else if (lim == max)
		access = max * unit;       /* stopped by max, no NUL read */
	else
		access = (room + 1) * unit; /* runs off the block */
	if (b.state == HGC_LIVE && p >= b.user && access <= (size_t)(end - p))
		return len;
	hgc_check_access(s, access, 0, func);
	*bad = 1;
	return len < lim || lim == max ? len : plain_len(s, max, unit);
}

enum str_op {
	STR_READ,   /* strlen, strdup: the string only */
	STR_COPY,   /* strcpy: writes the string and its NUL at d */
	STR_COPY_N, /* strncpy: writes max units at d */
	STR_APPEND, /* strcat, strncat: writes the string and a NUL after the string at d */
};

/* The string calls' slow path; returns the length of s (at most max units). */
static HG_NOINLINE size_t str_check(enum str_op op, void *d, const void *s, size_t max, size_t unit,
				    const char *func, const void *ret)
{
	if (!enter(ret))
		return plain_len(s, max, unit);
	int bad = 0, dbad = 0;
	size_t dlen = op == STR_APPEND ? str_extent(d, SIZE_MAX, unit, func, &dbad) : 0;
	size_t len = str_extent(s, max, unit, func, &bad);
	if (op != STR_READ) {
		/* What it reads of s (the NUL too, when it comes before max), and writes at w: the
		 * string and a NUL, or (strncpy) max units. */
		size_t nread = (len < max ? len + 1 : len) * unit;
		char *w = (char *)d + dlen * unit;
		size_t nwrite = (op == STR_COPY_N ? max : len + 1) * unit;
		if (overlap(w, nwrite, s, nread))
			overlap_report(w, nwrite, s, nread, func);
		if (op == STR_COPY_N || (!bad && !dbad))
			hgc_check_access(w, nwrite, 1, func);
	}
	leave();
	return bad == 2 ? plain_len(s, max, unit) : len;
}

/* 1 when either string may be in the heap (NULL: none). */
HG_INLINE int may_be_heap_str(const void *a, const void *b)
{
	return may_be_heap(a, 1) || (b && may_be_heap(b, 1));
}

/* ---- uninitialized bytes in output ---- */

/* The first byte of a run of need never-written bytes (HGC_UNINIT_WORD in phase with the block
 * that starts at base) in [lo, hi); NULL when there is none. A word aligned on the block's
 * start with no byte of the pattern in its place, as ordinary data has, is passed in one step. */
static const char *pattern_run(const char *lo, const char *hi, const char *base, size_t need)
{
	const unsigned char *p = (const unsigned char *)lo, *e = (const unsigned char *)hi, *start = NULL;
	size_t run = 0;
	while (p < e) {
		size_t off = (size_t)(p - (const unsigned char *)base);
		if (off % 8 == 0 && e - p >= 8) {
			uint64_t x;
			__builtin_memcpy(&x, p, 8);
			x ^= hgc_uninit_word;
			if (x == 0 || !((x - 0x0101010101010101ull) & ~x & 0x8080808080808080ull)) {
				start = x || run ? start : p;
				run = x ? 0 : run + 8;
				if (run >= need)
					return (const char *)start;
				p += 8;
				continue;
			}
		}
		if (*p == hgc_uninit_byte(off)) {
			start = run++ ? start : p;
			if (run >= need)
				return (const char *)start;
		} else {
			run = 0;
		}
		p++;
	}
	return NULL;
}

/* The first never-written byte of the output [lo, hi) of the block [base, end), or NULL. It
 * takes a run of UNINIT_RUN_BYTES of them in the output: data may hold a byte or two that
 * match the pattern in their place, not four. An output shorter than that counts when all of
 * it is never written and so are enough of its neighbours in the block to make the run, or
 * the whole block (not its neighbours for a longer one, where the last byte of the data
 * written and the never-written rest of the buffer after it would make a run). One byte must
 * have never-written ones on both sides: data matches its place once in 256, and a byte read
 * into a buffer's start before its never-written rest looked so (`cat` of a 1-byte file
 * holding 0xc1, `dd bs=1`). */
static const char *uninit_run(const char *lo, const char *hi, const char *base, const char *end)
{
	size_t n = (size_t)(hi - lo);
	if (n >= UNINIT_RUN_BYTES)
		return pattern_run(lo, hi, base, UNINIT_RUN_BYTES);
	for (const char *p = lo; p < hi; p++)
		if ((unsigned char)*p != hgc_uninit_byte((size_t)(p - base)))
			return NULL;
	size_t before = 0, after = 0, left = (size_t)(lo - base), right = (size_t)(end - hi);
	while (before < left && before < UNINIT_RUN_BYTES &&
	       (unsigned char)lo[-(ptrdiff_t)before - 1] == hgc_uninit_byte(left - before - 1))
		before++;
	while (after < right && after < UNINIT_RUN_BYTES &&
	       (unsigned char)hi[after] == hgc_uninit_byte((size_t)(hi - base) + after))
		after++;
	if (n == 1 && (!before || !after))
		return NULL;
	size_t need = (size_t)(end - base) < UNINIT_RUN_BYTES ? (size_t)(end - base) : UNINIT_RUN_BYTES;
	return n + before + after >= need ? lo : NULL;
}

/* Reports uninitialized bytes among those of [p, p+n) in the live block holding p. */
static void uninit_check(const void *p, size_t n, const char *func)
{
	struct hgc_block b;
	if (!n || !hgc_lookup(p, &b) || b.state != HGC_LIVE)
		return;
	const char *lo = p, *hi = lo + n, *end = b.user + b.size;
	if (lo < b.user)
		lo = b.user;
	if (hi > end)
		hi = end;
	const char *u = lo < hi ? uninit_run(lo, hi, b.user, end) : NULL;
	if (!u)
		return;
	/* The access is the run of never-written bytes from u: the output's length from u ran
	 * past the block's end (size 32 at offset 13 of a block of 32). */
	size_t run = 1;
	while (u + run < hi && (unsigned char)u[run] == hgc_uninit_byte((size_t)(u + run - b.user)))
		run++;
	struct hgc_error e = { .kind = "uninitialized-read", .access = "read", .func = func,
			       .addr = (uintptr_t)u, .size = run, .has_block = 1, .block = b };
	hgc_report(&e);
}

/* The output calls' slow path for a range: it is read (overflow, use after free), and its
 * heap bytes must have been written. */
static HG_NOINLINE void out_check(const void *p, size_t n, const char *func, const void *ret)
{
	if (!enter(ret))
		return;
	hgc_check_access(p, n, 0, func);
	uninit_check(p, n, func);
	leave();
}

/* The same for a string (at most max units), e.g. the argument of puts or of a %s. */
static HG_NOINLINE void out_str_check(const void *s, size_t max, size_t unit, const char *func,
				      const void *ret)
{
	if (!enter(ret))
		return;
	int bad;
	size_t len = str_extent(s, max, unit, func, &bad);
	if (!bad)
		uninit_check(s, len * unit, func);
	leave();
}

static int is_digit(unsigned c) { return c - '0' < 10; }

/* Checks the %s and %ls arguments of a printf format of `unit`-byte characters (char, or
 * wchar_t for the wprintf family, whose conversions take the same arguments), taking the
 * others off a copy of the argument list. Stops at what it cannot follow: positional
 * arguments (%1$s), conversions it does not know (register_printf_function's). */
static void check_format(const void *fmt, size_t unit, va_list ap, const char *func, const void *ret)
{
	enum { NONE, HH, H, L, LL, BIG_L, J, Z, T };
	const unsigned char *f = fmt;
#define AT(k) (unit == 1 ? (unsigned)f[(k)] : (unsigned)((const wchar_t *)(const void *)f)[(k)])
#define NEXT_CH() (f += unit, AT(0))
	va_list aq;
	va_copy(aq, ap);
	for (;;) {
		while (AT(0) && AT(0) != '%')
			f += unit;
		if (!AT(0))
			break;
		unsigned c = NEXT_CH();
		while (c == '-' || c == '+' || c == ' ' || c == '#' || c == '0' || c == '\'' || c == 'I')
			c = NEXT_CH();
		if (c == '*') {
			if (is_digit(c = NEXT_CH()))
				break; /* *N$ */
			(void)va_arg(aq, int);
		}
		while (is_digit(c))
			c = NEXT_CH();
		if (c == '$')
			break;
		long prec = -1;
		if (c == '.') {
			if ((c = NEXT_CH()) == '*') {
				if (is_digit(c = NEXT_CH()))
					break;
				prec = va_arg(aq, int);
			} else {
				for (prec = 0; is_digit(c); c = NEXT_CH())
					prec = prec < 100000000 ? prec * 10 + (c - '0') : prec;
			}
		}
		int len = NONE;
		switch (c) {
		case 'h': len = NEXT_CH() == 'h' ? (f += unit, HH) : H; break;
		case 'l': len = NEXT_CH() == 'l' ? (f += unit, LL) : L; break;
		case 'q': case 'L': len = BIG_L; f += unit; break;
		case 'j': len = J; f += unit; break;
		case 'z': case 'Z': len = Z; f += unit; break;
		case 't': len = T; f += unit; break;
		}
		size_t max = prec < 0 ? SIZE_MAX : (size_t)prec;
		const void *s;
		c = AT(0);
		f += unit;
		switch (c) {
		case '%': case 'm':
			break;
		case 'd': case 'i': case 'o': case 'u': case 'x': case 'X': case 'b': case 'B':
			if (len == L || len == LL || len == BIG_L || len == J || len == Z || len == T)
				(void)va_arg(aq, long long);
			else
				(void)va_arg(aq, int);
			break;
		case 'c': case 'C':
			(void)va_arg(aq, int); /* int or wint_t */
			break;
		case 'a': case 'A': case 'e': case 'E': case 'f': case 'F': case 'g': case 'G':
			if (len == BIG_L)
				(void)va_arg(aq, long double);
			else
				(void)va_arg(aq, double);
			break;
		case 'p': case 'n':
			(void)va_arg(aq, void *);
			break;
		case 's': case 'S':
			s = va_arg(aq, const void *);
			if (s && may_be_heap(s, 1))
				out_str_check(s, max, len == L || c == 'S' ? WSIZE : 1, func, ret);
			break;
		default:
			goto done;
		}
	}
done:
	va_end(aq);
#undef AT
#undef NEXT_CH
}

/* ---- memory ----
 * The hot four keep their checks in a separate function, tail-called like glibc, so that the
 * fast path needs no stack frame. */

static HG_NOINLINE void *memcpy_slow(void *d, const void *s, size_t n, const void *ret)
{
	check2(s, n, d, n, 0, "memcpy", ret);
	return real.memcpy(d, s, n);
}

HG_EXPORT void *memcpy(void *restrict d, const void *restrict s, size_t n)
{
	if (unlikely(overlap(d, n, s, n)))
		overlap_slow(d, n, s, n, "memcpy", RET);
	if (n && (may_be_heap(s, n) || may_be_heap(d, n)))
		return memcpy_slow(d, s, n, RET);
	return real.memcpy(d, s, n);
}

/* The fortified forms (and the string ones' below) leave their size check to glibc's: the
 * report comes first, then glibc's abort when the compiler knew the object too small. */
HG_INLINE void copy_check(void *d, const void *s, size_t bytes, int may_overlap, const char *func,
			  const void *ret)
{
	if (unlikely(!may_overlap && overlap(d, bytes, s, bytes)))
		overlap_slow(d, bytes, s, bytes, func, ret);
	if (bytes && (may_be_heap(s, bytes) || may_be_heap(d, bytes)))
		check2(s, bytes, d, bytes, 0, func, ret);
}

#define COPY_CHK(name, type, unit, may_overlap)                                                \
	HG_EXPORT type *__##name##_chk(type *restrict d, const type *restrict s, size_t n, size_t size) \
	{                                                                                      \
		copy_check(d, s, n * (unit), may_overlap, #name, RET);                         \
		return NEXT(__##name##_chk)(d, s, n, size);                                    \
	}
/* Those without a fast path of their own: the plain function is the _chk one, size unknown. */
#define COPY_FUNCS(name, type, unit, may_overlap)                                              \
	HG_EXPORT type *name(type *restrict d, const type *restrict s, size_t n)               \
	{                                                                                      \
		copy_check(d, s, n * (unit), may_overlap, #name, RET);                         \
		return NEXT(__##name##_chk)(d, s, n, (size_t)-1);                              \
	}                                                                                      \
	COPY_CHK(name, type, unit, may_overlap)
COPY_CHK(memcpy, void, 1, 0)
COPY_FUNCS(mempcpy, void, 1, 0)

static HG_NOINLINE void *memmove_slow(void *d, const void *s, size_t n, const void *ret)
{
	check2(s, n, d, n, 0, "memmove", ret);
	return real.memmove(d, s, n);
}

HG_EXPORT void *memmove(void *d, const void *s, size_t n)
{
	if (n && (may_be_heap(s, n) || may_be_heap(d, n)))
		return memmove_slow(d, s, n, RET);
	return real.memmove(d, s, n);
}

COPY_CHK(memmove, void, 1, 1)
COPY_FUNCS(wmemcpy, wchar_t, WSIZE, 0)
COPY_FUNCS(wmemmove, wchar_t, WSIZE, 1)

static HG_NOINLINE void *memset_slow(void *d, int c, size_t n, const void *ret)
{
	check2(NULL, 0, d, n, 0, "memset", ret);
	return hgc_real_memset(d, c, n);
}

HG_EXPORT void *memset(void *d, int c, size_t n)
{
	if (n && may_be_heap(d, n))
		return memset_slow(d, c, n, RET);
	return hgc_real_memset(d, c, n);
}

void hgc_check_write(void *p, size_t n, const char *func, const void *ret)
{
	if (n && may_be_heap(p, n))
		check2(NULL, 0, p, n, 0, func, ret);
}

HG_EXPORT void *__memset_chk(void *d, int c, size_t n, size_t size)
{
	hgc_check_write(d, n, "memset", RET);
	return NEXT(__memset_chk)(d, c, n, size);
}

HG_EXPORT wchar_t *wmemset(wchar_t *d, wchar_t c, size_t n)
{
	hgc_check_write(d, n * WSIZE, "wmemset", RET);
	return NEXT(__wmemset_chk)(d, c, n, (size_t)-1);
}

HG_EXPORT wchar_t *__wmemset_chk(wchar_t *d, wchar_t c, size_t n, size_t size)
{
	hgc_check_write(d, n * WSIZE, "wmemset", RET);
	return NEXT(__wmemset_chk)(d, c, n, size);
}

static HG_NOINLINE int memcmp_slow(const void *a, const void *b, size_t n, const void *ret)
{
	check2(a, n, (void *)b, n, 1, "memcmp", ret);
	return real.memcmp(a, b, n);
}

HG_EXPORT int memcmp(const void *a, const void *b, size_t n)
{
	if (n && (may_be_heap(a, n) || may_be_heap(b, n)))
		return memcmp_slow(a, b, n, RET);
	return real.memcmp(a, b, n);
}

/* ---- strings ---- */

HG_EXPORT size_t strlen(const char *s)
{
	if (may_be_heap(s, 1))
		return str_check(STR_READ, NULL, s, SIZE_MAX, 1, "strlen", RET);
	return real.strlen(s);
}

/* The searches and comparisons read what they read before they stop: the byte they found
 * or the NUL, the first difference, or n. Only that much is checked, so a search that stops
 * inside its block passes even when the string runs on past it. */
static HG_NOINLINE void read_check(const void *a, size_t na, const void *b, size_t nb, int strings,
				   const char *func, const void *ret)
{
	if (!enter(ret))
		return;
	const void *p[2] = { a, b };
	size_t n[2] = { na, nb };
	for (int i = 0; i < 2; i++) {
		struct hgc_block blk;
		/* A string read past its block: what the call is certain to touch, as for strlen */
		if (strings && n[i] && hgc_lookup(p[i], &blk) && (const char *)p[i] >= blk.user &&
		    (size_t)(blk.user + blk.size - (const char *)p[i]) < n[i])
			n[i] = (size_t)(blk.user + blk.size - (const char *)p[i]) + 1;
		hgc_check_access(p[i], n[i], 0, func);
	}
	leave();
}

HG_EXPORT size_t strnlen(const char *s, size_t max)
{
	if (max && may_be_heap(s, 1))
		return str_check(STR_READ, NULL, s, max, 1, "strnlen", RET);
	return real.strnlen(s, max);
}

/* Under guard_uninit a guarded block stays inaccessible until its first use: a search or a
 * comparison is a library call's use, as in hgc_check_access, and opens it before reading. */
static inline void open_for_read(const void *a, const void *b)
{
	if (unlikely(hg_opt.guard_uninit)) {
		hgc_guard_touch(a);
		if (b)
			hgc_guard_touch(b);
	}
}

/* strcmp and strncmp (at most n bytes), and with fold their case-blind twins (by the locale's
 * tolower, as glibc's): compared here, byte by byte as the C standard words it, so that the
 * extent read is known. */
static HG_NOINLINE int compare_slow(const char *a, const char *b, size_t n, int fold, const char *func,
				    const void *ret)
{
	open_for_read(a, b);
	size_t i = 0;
	int d = 0;
	while (i < n && !(d = fold ? tolower((unsigned char)a[i]) - tolower((unsigned char)b[i])
				   : (unsigned char)a[i] - (unsigned char)b[i]) && a[i])
		i++;
	size_t read = i < n ? i + 1 : n;
	read_check(a, read, b, read, 1, func, ret);
	return i < n ? d : 0;
}

#define COMPARE_FUNCS(name, n_name, fold)                                               \
	HG_EXPORT int name(const char *a, const char *b)                                \
	{                                                                               \
		if (may_be_heap_str(a, b))                                              \
			return compare_slow(a, b, SIZE_MAX, fold, #name, RET);         \
		return NEXT(name)(a, b);                                                \
	}                                                                               \
	HG_EXPORT int n_name(const char *a, const char *b, size_t n)                    \
	{                                                                               \
		if (n && may_be_heap_str(a, b))                                         \
			return compare_slow(a, b, n, fold, #n_name, RET);              \
		return NEXT(n_name)(a, b, n);                                           \
	}
COMPARE_FUNCS(strcmp, strncmp, 0)
COMPARE_FUNCS(strcasecmp, strncasecmp, 1)

HG_EXPORT char *strchr(const char *s, int c)
{
	open_for_read(s, NULL);
	char *r = NEXT(strchr)(s, c);
	if (may_be_heap(s, 1))
		read_check(s, r ? (size_t)(r - s) + 1 : real.strlen(s) + 1, NULL, 0, 1, "strchr", RET);
	return r;
}

HG_EXPORT char *strrchr(const char *s, int c)
{
	open_for_read(s, NULL);
	if (may_be_heap(s, 1))
		read_check(s, real.strlen(s) + 1, NULL, 0, 1, "strrchr", RET);
	return NEXT(strrchr)(s, c);
}

HG_EXPORT void *memchr(const void *s, int c, size_t n)
{
	open_for_read(s, NULL);
	void *r = NEXT(memchr)(s, c, n);
	if (n && may_be_heap(s, n))
		read_check(s, r ? (size_t)((const char *)r - (const char *)s) + 1 : n, NULL, 0, 0, "memchr", RET);
	return r;
}

HG_EXPORT char *strstr(const char *h, const char *needle)
{
	open_for_read(h, needle);
	char *r = NEXT(strstr)(h, needle);
	if (may_be_heap_str(h, needle)) {
		size_t nl = real.strlen(needle);
		read_check(h, r ? (size_t)(r - h) + nl : real.strlen(h) + 1, needle, nl + 1, 1, "strstr", RET);
	}
	return r;
}

/* Each with its fortified form: `size` is the destination's, when the compiler knew it. */
#define STR_FUNCS(name, type, how, n_param, n_arg, n_test, n_max)                              \
	HG_EXPORT type *name(type *restrict d, const type *restrict s n_param)                  \
	{                                                                                       \
		if (n_test may_be_heap_str(d, s))                                               \
			str_check(how, d, s, n_max, sizeof(type), #name, RET);                  \
		return NEXT(__##name##_chk)(d, s n_arg, (size_t)-1);                            \
	}                                                                                       \
	HG_EXPORT type *__##name##_chk(type *restrict d, const type *restrict s n_param, size_t size) \
	{                                                                                       \
		if (n_test may_be_heap_str(d, s))                                               \
			str_check(how, d, s, n_max, sizeof(type), #name, RET);                  \
		return NEXT(__##name##_chk)(d, s n_arg, size);                                  \
	}
#define N_PARAM , size_t n
#define N_ARG , n
#define N_TEST n &&
STR_FUNCS(strcpy, char, STR_COPY, , , , SIZE_MAX)
STR_FUNCS(stpcpy, char, STR_COPY, , , , SIZE_MAX)
STR_FUNCS(strncpy, char, STR_COPY_N, N_PARAM, N_ARG, N_TEST, n)
STR_FUNCS(strcat, char, STR_APPEND, , , , SIZE_MAX)
STR_FUNCS(strncat, char, STR_APPEND, N_PARAM, N_ARG, , n)
STR_FUNCS(wcscpy, wchar_t, STR_COPY, , , , SIZE_MAX)
STR_FUNCS(wcsncpy, wchar_t, STR_COPY_N, N_PARAM, N_ARG, N_TEST, n)
STR_FUNCS(wcscat, wchar_t, STR_APPEND, , , , SIZE_MAX)
STR_FUNCS(wcsncat, wchar_t, STR_APPEND, N_PARAM, N_ARG, , n)
#undef N_PARAM
#undef N_ARG
#undef N_TEST

/* The copy's allocation stack starts at the caller: slot is its call's (HGC_SLOT). */
HG_INLINE char *dup_n(const char *s, size_t n, const char *func, const uintptr_t *slot)
{
	char *d = hgc_alloc(n + 1, 0, 0, HGC_BY_MALLOC, func, slot);
	if (d) {
		hgc_memcpy(d, s, n);
		d[n] = 0;
	}
	return d;
}

HG_EXPORT char *strdup(const char *s)
{
	size_t n = may_be_heap(s, 1) ? str_check(STR_READ, NULL, s, SIZE_MAX, 1, "strdup", RET)
				     : real.strlen(s);
	return dup_n(s, n, "strdup", HGC_SLOT);
}

HG_EXPORT char *strndup(const char *s, size_t max)
{
	size_t n = may_be_heap(s, 1) ? str_check(STR_READ, NULL, s, max, 1, "strndup", RET)
				     : real.strnlen(s, max);
	return dup_n(s, n, "strndup", HGC_SLOT);
}

HG_EXPORT size_t wcslen(const wchar_t *s)
{
	if (may_be_heap(s, 1))
		return str_check(STR_READ, NULL, s, SIZE_MAX, WSIZE, "wcslen", RET);
	return real.wcslen(s);
}

/* ---- formatted strings: the destination is the bytes written, NUL included ----
 * Each function has its fortified twin (__snprintf_chk and so on), which programs built with
 * _FORTIFY_SOURCE=2 call for every snprintf and sprintf: it takes glibc's own checks along
 * (flag, and the destination's size when the compiler knew it, slen). Where glibc's check
 * fails it ends the process at once (a bound n above slen) or midway (sprintf's output past
 * slen): the call is made within slen, the bytes the program's call would have written are
 * checked, and then the process ends as glibc's check ends it. */

void __chk_fail(void) __attribute__((noreturn));

HG_INLINE int vsnprintf_checked(char *s, size_t n, int flag, size_t slen, const char *fmt, va_list ap,
				const char *func, const void *ret)
{
	int r = NEXT(__vsnprintf_chk)(s, n > slen ? slen : n, flag, slen, fmt, ap);
	if (n && r >= 0 && may_be_heap(s, n))
		check2(NULL, 0, s, (size_t)r + 1 < n ? (size_t)r + 1 : n, 0, func, ret);
	if (n > slen)
		__chk_fail();
	return r;
}

/* The wide snprintf, checked likewise in wide characters: r + 1 written, or when the output
 * did not fit (-1), the n - 1 that did (glibc leaves the last one unwritten). */
HG_INLINE int vswprintf_checked(wchar_t *s, size_t n, int flag, size_t slen, const wchar_t *fmt, va_list ap,
				const char *func, const void *ret)
{
	int r = NEXT(__vswprintf_chk)(s, n > slen ? slen : n, flag, slen, fmt, ap);
	size_t units = r >= 0 ? ((size_t)r + 1 < n ? (size_t)r + 1 : n) : n ? n - 1 : 0;
	if (units && may_be_heap(s, units * WSIZE))
		check2(NULL, 0, s, units * WSIZE, 0, func, ret);
	if (n > slen)
		__chk_fail();
	return r;
}

/* The four of each: the v-form, the form with `...`, and their fortified twins. */
#define SNPRINTF_FUNCS(name, vname, ch, checked)                                                    \
	HG_EXPORT int vname(ch *restrict s, size_t n, const ch *restrict fmt, va_list ap)           \
	{                                                                                           \
		return checked(s, n, 0, (size_t)-1, fmt, ap, #vname, RET);                          \
	}                                                                                           \
	HG_EXPORT int __##vname##_chk(ch *restrict s, size_t n, int flag, size_t slen,              \
				      const ch *restrict fmt, va_list ap)                           \
	{                                                                                           \
		return checked(s, n, flag, slen, fmt, ap, #vname, RET);                             \
	}                                                                                           \
	HG_EXPORT int name(ch *restrict s, size_t n, const ch *restrict fmt, ...)                   \
	{                                                                                           \
		va_list ap;                                                                         \
		va_start(ap, fmt);                                                                  \
		int r = checked(s, n, 0, (size_t)-1, fmt, ap, #name, RET);                          \
		va_end(ap);                                                                         \
		return r;                                                                           \
	}                                                                                           \
	HG_EXPORT int __##name##_chk(ch *restrict s, size_t n, int flag, size_t slen,               \
				     const ch *restrict fmt, ...)                                   \
	{                                                                                           \
		va_list ap;                                                                         \
		va_start(ap, fmt);                                                                  \
		int r = checked(s, n, flag, slen, fmt, ap, #name, RET);                             \
		va_end(ap);                                                                         \
		return r;                                                                           \
	}
SNPRINTF_FUNCS(snprintf, vsnprintf, char, vsnprintf_checked)
SNPRINTF_FUNCS(swprintf, vswprintf, wchar_t, vswprintf_checked)

/* sprintf has no bound to check before: like vsnprintf, the bytes it wrote are checked after
 * (a report then comes before the program goes on with the damage). */
HG_INLINE int vsprintf_checked(char *s, int flag, size_t slen, const char *fmt, va_list ap, const char *func,
			       const void *ret)
{
	if (slen != (size_t)-1 && slen <= INT_MAX) { /* fortified, to a destination of known size */
		int r = NEXT(__vsnprintf_chk)(s, slen, flag, slen, fmt, ap);
		if (r >= 0 && (size_t)r >= slen) {
			if (may_be_heap(s, (size_t)r + 1))
				check2(NULL, 0, s, (size_t)r + 1, 0, func, ret);
			__chk_fail();
		}
		return r;
	}
	int r = NEXT(__vsprintf_chk)(s, flag, slen, fmt, ap);
	if (r >= 0 && may_be_heap(s, (size_t)r + 1))
		check2(NULL, 0, s, (size_t)r + 1, 0, func, ret);
	return r;
}

HG_EXPORT int vsprintf(char *restrict s, const char *restrict fmt, va_list ap)
{
	return vsprintf_checked(s, 0, (size_t)-1, fmt, ap, "vsprintf", RET);
}

HG_EXPORT int __vsprintf_chk(char *restrict s, int flag, size_t slen, const char *restrict fmt, va_list ap)
{
	return vsprintf_checked(s, flag, slen, fmt, ap, "vsprintf", RET);
}

HG_EXPORT int sprintf(char *restrict s, const char *restrict fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vsprintf_checked(s, 0, (size_t)-1, fmt, ap, "sprintf", RET);
	va_end(ap);
	return r;
}

HG_EXPORT int __sprintf_chk(char *restrict s, int flag, size_t slen, const char *restrict fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vsprintf_checked(s, flag, slen, fmt, ap, "sprintf", RET);
	va_end(ap);
	return r;
}

/* ---- input: the destination is all the call may write (hgc_check_write) ---- */

HG_EXPORT ssize_t read(int fd, void *buf, size_t n)
{
	hgc_check_write(buf, n, "read", RET);
	return real_read(fd, buf, n);
}

/* The fortified forms: the check, then glibc's of the size the compiler knew. */
HG_EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t size)
{
	hgc_check_write(buf, n, "read", RET);
	return NEXT(__read_chk)(fd, buf, n, size);
}

/* ---- stdio and directory handles: fclose and closedir free them ----
 * glibc reads a handle's lock and flags first, so a closed one, its block filled with the
 * freed pattern, made a second fclose abort ("invalid stdio handle") and a readdir wait
 * forever for a lock that looked taken, both with no report. A handle in a freed block is
 * reported as a read of its first word, and the call fails (EBADF) without touching it:
 * fclose, the directory calls, and the stdio and fprintf calls that are checked anyway. */
static HG_NOINLINE int handle_freed(const void *h, const char *func, const void *ret)
{
	struct hgc_block b;
	if (!enter(ret))
		return 0;
	int freed = hgc_lookup(h, &b) && b.state == HGC_QUARANTINED;
	if (freed)
		hgc_check_access(h, sizeof(int), 0, func);
	leave();
	if (freed)
		errno = EBADF;
	return freed;
}

/* The records are asked only when the handle's first word is the freed fill, which a live
 * one's (a FILE's flags, a DIR's descriptor) never is: asked on every call, a loop of fgets
 * took 16 ns more a line. Under --guard a freed block may not be readable: they are asked. */
HG_INLINE int handle_gone(const void *h, const char *func, const void *ret)
{
	uint32_t first;
	if (!h || !may_be_heap(h, 1))
		return 0;
	if (likely(!hg_opt.guard)) {
		__builtin_memcpy(&first, h, sizeof first);
		if (first != 0x01010101u * HGC_FREED)
			return 0;
	}
	return handle_freed(h, func, ret);
}

/* The stdio calls each have an _unlocked twin (gnulib's unlocked-io makes coreutils call
 * those): the same checks. stdio.h makes some of them macros when optimizing. */
#undef fread_unlocked
#undef fwrite_unlocked
HG_INLINE void fread_check(void *p, size_t size, size_t n, const char *func, const void *ret)
{
	size_t bytes;
	if (!__builtin_mul_overflow(size, n, &bytes))
		hgc_check_write(p, bytes, func, ret);
}

#define FREAD_FUNCS(name, real_name)                                                           \
	HG_EXPORT size_t name(void *restrict p, size_t size, size_t n, FILE *restrict fp)      \
	{                                                                                      \
		if (handle_gone(fp, #name, RET))                                               \
			return 0;                                                              \
		fread_check(p, size, n, #name, RET);                                           \
		return real_name(p, size, n, fp);                                              \
	}                                                                                      \
	HG_EXPORT size_t __##name##_chk(void *restrict p, size_t room, size_t size, size_t n,  \
					FILE *restrict fp)                                     \
	{                                                                                      \
		if (handle_gone(fp, #name, RET))                                               \
			return 0;                                                              \
		fread_check(p, size, n, #name, RET);                                           \
		return NEXT(__##name##_chk)(p, room, size, n, fp);                             \
	}
FREAD_FUNCS(fread, real_fread)
FREAD_FUNCS(fread_unlocked, NEXT(fread_unlocked))

#define FGETS_FUNCS(name, real_name)                                                           \
	HG_EXPORT char *name(char *restrict s, int n, FILE *restrict fp)                       \
	{                                                                                      \
		if (handle_gone(fp, #name, RET))                                               \
			return NULL;                                                           \
		if (n > 0)                                                                     \
			hgc_check_write(s, (size_t)n, #name, RET);                             \
		return real_name(s, n, fp);                                                    \
	}                                                                                      \
	HG_EXPORT char *__##name##_chk(char *restrict s, size_t size, int n, FILE *restrict fp) \
	{                                                                                      \
		if (handle_gone(fp, #name, RET))                                               \
			return NULL;                                                           \
		if (n > 0)                                                                     \
			hgc_check_write(s, (size_t)n, #name, RET);                             \
		return NEXT(__##name##_chk)(s, size, n, fp);                                   \
	}
FGETS_FUNCS(fgets, real_fgets)
FGETS_FUNCS(fgets_unlocked, NEXT(fgets_unlocked))

HG_EXPORT int fclose(FILE *fp)
{
	return handle_gone(fp, "fclose", RET) ? EOF : NEXT(fclose)(fp);
}

HG_EXPORT int closedir(DIR *d)
{
	return handle_gone(d, "closedir", RET) ? -1 : NEXT(closedir)(d);
}

HG_EXPORT struct dirent *readdir(DIR *d)
{
	return handle_gone(d, "readdir", RET) ? NULL : NEXT(readdir)(d);
}

HG_EXPORT struct dirent64 *readdir64(DIR *d)
{
	return handle_gone(d, "readdir64", RET) ? NULL : NEXT(readdir64)(d);
}

HG_EXPORT void rewinddir(DIR *d)
{
	if (!handle_gone(d, "rewinddir", RET))
		NEXT(rewinddir)(d);
}

/* ---- output: what leaves the process must have been written ---- */

void hgc_check_kernel_read(const void *p, size_t n, const char *func, const void *ret)
{
	if (n && may_be_heap(p, n))
		out_check(p, n, func, ret);
}

HG_EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
	hgc_check_kernel_read(buf, n, "write", RET);
	return real_write(fd, buf, n);
}

HG_EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags)
{
	hgc_check_kernel_read(buf, n, "send", RET);
	return real_send(fd, buf, n, flags);
}

HG_INLINE void fwrite_check(const void *p, size_t size, size_t n, const char *func, const void *ret)
{
	size_t bytes;
	if (!__builtin_mul_overflow(size, n, &bytes))
		hgc_check_kernel_read(p, bytes, func, ret);
}

HG_EXPORT size_t fwrite(const void *restrict p, size_t size, size_t n, FILE *restrict fp)
{
	if (handle_gone(fp, "fwrite", RET))
		return 0;
	fwrite_check(p, size, n, "fwrite", RET);
	return real_fwrite(p, size, n, fp);
}

HG_EXPORT size_t fwrite_unlocked(const void *restrict p, size_t size, size_t n, FILE *restrict fp)
{
	if (handle_gone(fp, "fwrite_unlocked", RET))
		return 0;
	fwrite_check(p, size, n, "fwrite_unlocked", RET);
	return NEXT(fwrite_unlocked)(p, size, n, fp);
}

/* fputs and fputws, and their _unlocked twins: the string that goes out. */
#define FPUTS_FUNC(name, type, real_name)                                                      \
	HG_EXPORT int name(const type *restrict s, FILE *restrict fp)                          \
	{                                                                                      \
		if (handle_gone(fp, #name, RET))                                               \
			return EOF;                                                            \
		if (may_be_heap(s, 1))                                                         \
			out_str_check(s, SIZE_MAX, sizeof(type), #name, RET);                  \
		return real_name(s, fp);                                                       \
	}
FPUTS_FUNC(fputs, char, real_fputs)
FPUTS_FUNC(fputs_unlocked, char, NEXT(fputs_unlocked))
FPUTS_FUNC(fputws, wchar_t, NEXT(fputws))
FPUTS_FUNC(fputws_unlocked, wchar_t, NEXT(fputws_unlocked))

HG_EXPORT void perror(const char *s)
{
	if (s && may_be_heap(s, 1))
		out_str_check(s, SIZE_MAX, 1, "perror", RET);
	NEXT(perror)(s);
}

HG_EXPORT int puts(const char *s)
{
	if (may_be_heap(s, 1))
		out_str_check(s, SIZE_MAX, 1, "puts", RET);
	return real_puts(s);
}

/* ---- the scanf family: the strings and characters it stored must fit their blocks ---- */

static int one_of(const char *set, unsigned c)
{
	for (; *set; set++)
		if ((unsigned char)*set == c)
			return 1;
	return 0;
}

/* After a scanf call that assigned r items: each %s, %[ and %c it stored into a heap block is
 * checked as a write of what it stored (the string and its NUL, or the width's characters),
 * as the printf family's output is after the call. The walk stops at the r-th assignment (the
 * later arguments were not written) and at what it cannot follow: positional arguments. The
 * GNU names' %as (sscanf without __isoc99_: it allocates, as %m does) is read as a %a and a
 * literal s, which takes the same argument and checks none. */
static void scan_check(const char *fmt, va_list ap, int r, const char *func, const void *ret)
{
	if (r <= 0 || !enter(ret))
		return;
	va_list aq;
	va_copy(aq, ap);
	const unsigned char *f = (const unsigned char *)fmt;
	for (int assigned = 0; *f && assigned < r;) {
		if (*f++ != '%')
			continue;
		if (*f == '%') {
			f++;
			continue;
		}
		int suppress = *f == '*', alloc = 0, wide = 0;
		f += suppress;
		size_t width = 0;
		while (is_digit(*f))
			width = width * 10 + (size_t)(*f++ - '0');
		if (*f == '$')
			break;
		if (*f == 'm') {
			alloc = 1;
			f++;
		}
		for (; *f && one_of("hlLqjzt", *f); f++)
			wide |= *f == 'l';
		unsigned conv = *f;
		if (!conv)
			break;
		f++;
		if (conv == '[') { /* a set: "]" or "^]" first is a member, not the end */
			f += *f == '^';
			f += *f == ']';
			while (*f && *f != ']')
				f++;
			f += *f == ']';
		}
		if (suppress)
			continue;
		void *arg = va_arg(aq, void *);
		if (conv == 'n')
			continue; /* stores a count, and is no assignment */
		assigned++;
		size_t unit = wide || conv == 'C' || conv == 'S' ? sizeof(wchar_t) : 1, bytes;
		if (alloc || !arg || !one_of("sSc[C", conv))
			continue;
		if (conv == 'c' || conv == 'C')
			bytes = (width ? width : 1) * unit;
		else
			bytes = (unit == 1 ? real.strlen(arg) : real.wcslen(arg) * unit) + unit;
		hgc_check_access(arg, bytes, 1, func);
	}
	va_end(aq);
	leave();
}

/* stdio.h renames sscanf to __isoc99_sscanf and so on: each interceptor has a name of its own
 * and the symbol it stands for in asm; `shown` names it in reports. `src` is the string or
 * stream, or nothing for the stdin forms (STDIN). */
#define SCAN_V(cname, sym, shown, real_name, src_decl, src)                                    \
	HG_EXPORT int cname(src_decl const char *restrict fmt, va_list ap) __asm__(sym);        \
	HG_EXPORT int cname(src_decl const char *restrict fmt, va_list ap)                      \
	{                                                                                       \
		va_list aq;                                                                     \
		va_copy(aq, ap);                                                                \
		int r = NEXT(real_name)(src, fmt, ap);                                          \
		scan_check(fmt, aq, r, shown, RET);                                             \
		va_end(aq);                                                                     \
		return r;                                                                       \
	}
#define SCAN_DOTS(cname, sym, shown, real_name, src_decl, src)                                 \
	HG_EXPORT int cname(src_decl const char *restrict fmt, ...) __asm__(sym);               \
	HG_EXPORT int cname(src_decl const char *restrict fmt, ...)                             \
	{                                                                                       \
		va_list ap, aq;                                                                 \
		va_start(ap, fmt);                                                              \
		va_copy(aq, ap);                                                                \
		int r = NEXT(real_name)(src, fmt, ap);                                          \
		scan_check(fmt, aq, r, shown, RET);                                             \
		va_end(aq);                                                                     \
		va_end(ap);                                                                     \
		return r;                                                                       \
	}
#define STR const char *restrict s,
#define STREAM FILE *restrict fp,
#define STDIN
SCAN_V(scan_isoc99_vsscanf, "__isoc99_vsscanf", "vsscanf", __isoc99_vsscanf, STR, s)
SCAN_V(scan_isoc99_vfscanf, "__isoc99_vfscanf", "vfscanf", __isoc99_vfscanf, STREAM, fp)
SCAN_V(scan_isoc99_vscanf, "__isoc99_vscanf", "vscanf", __isoc99_vfscanf, STDIN, stdin)
SCAN_DOTS(scan_isoc99_sscanf, "__isoc99_sscanf", "sscanf", __isoc99_vsscanf, STR, s)
SCAN_DOTS(scan_isoc99_fscanf, "__isoc99_fscanf", "fscanf", __isoc99_vfscanf, STREAM, fp)
SCAN_DOTS(scan_isoc99_scanf, "__isoc99_scanf", "scanf", __isoc99_vfscanf, STDIN, stdin)
SCAN_V(scan_vsscanf, "vsscanf", "vsscanf", vsscanf, STR, s)
SCAN_V(scan_vfscanf, "vfscanf", "vfscanf", vfscanf, STREAM, fp)
SCAN_V(scan_vscanf, "vscanf", "vscanf", vfscanf, STDIN, stdin)
SCAN_DOTS(scan_sscanf, "sscanf", "sscanf", vsscanf, STR, s)
SCAN_DOTS(scan_fscanf, "fscanf", "fscanf", vfscanf, STREAM, fp)
SCAN_DOTS(scan_scanf, "scanf", "scanf", vfscanf, STDIN, stdin)
#undef STR
#undef STREAM
#undef STDIN

/* The printf family, the wprintf family, and their fortified twins (__printf_chk and so on: a
 * program built with _FORTIFY_SOURCE=2 calls them for every printf). The format walk runs only
 * once the checks are on. Flag 0 makes the _chk forms the plain functions. */
#define CHECK_FORMAT(fmt, ap, func)                                      \
	do {                                                             \
		if (hgc_ready)                                           \
			check_format(fmt, sizeof *(fmt), ap, func, RET); \
	} while (0)

/* A closed stream handed to the stream forms: reported, and the call fails (handle_gone). */
#define STREAM_GONE(shown)                       \
	do {                                     \
		if (handle_gone(fp, shown, RET)) \
			return -1;               \
	} while (0)
#define NOT_STREAM(shown) ((void)0)

/* The v-forms; `params` declares what comes before the format, `args` passes it on; `ch` is
 * the format's character type; `gone` is STREAM_GONE for the stream forms. */
#define PRINTF_V(name, shown, params, args, ch, gone)                           \
	HG_EXPORT int name(params const ch *restrict fmt, va_list ap)           \
	{                                                                       \
		gone(shown);                                                    \
		CHECK_FORMAT(fmt, ap, shown);                                   \
		return NEXT(__##name##_chk)(args 0, fmt, ap);                   \
	}                                                                       \
	HG_EXPORT int __##name##_chk(params int flag, const ch *restrict fmt, va_list ap) \
	{                                                                       \
		gone(shown);                                                    \
		CHECK_FORMAT(fmt, ap, shown);                                   \
		return NEXT(__##name##_chk)(args flag, fmt, ap);                \
	}

/* The forms with `...`, through their v-form's real function. */
#define PRINTF_DOTS(name, vname, params, args, ch, gone)                        \
	HG_EXPORT int name(params const ch *restrict fmt, ...)                  \
	{                                                                       \
		gone(#name);                                                    \
		va_list ap;                                                     \
		va_start(ap, fmt);                                              \
		CHECK_FORMAT(fmt, ap, #name);                                   \
		int r = NEXT(__##vname##_chk)(args 0, fmt, ap);                 \
		va_end(ap);                                                     \
		return r;                                                       \
	}                                                                       \
	HG_EXPORT int __##name##_chk(params int flag, const ch *restrict fmt, ...) \
	{                                                                       \
		gone(#name);                                                    \
		va_list ap;                                                     \
		va_start(ap, fmt);                                              \
		CHECK_FORMAT(fmt, ap, #name);                                   \
		int r = NEXT(__##vname##_chk)(args flag, fmt, ap);              \
		va_end(ap);                                                     \
		return r;                                                       \
	}

/* What comes before the format, declared and passed on (for PRINTF_ and WARN_FUNCS). */
#define STREAM FILE *restrict fp,
#define TO_STREAM fp,
#define FD int fd,
#define TO_FD fd,
#define STATUS int status,
#define TO_STATUS status,
#define NONE
PRINTF_V(vfprintf, "vfprintf", STREAM, TO_STREAM, char, STREAM_GONE)
PRINTF_V(vprintf, "vprintf", NONE, NONE, char, NOT_STREAM)
PRINTF_V(vdprintf, "vdprintf", FD, TO_FD, char, NOT_STREAM)
PRINTF_DOTS(fprintf, vfprintf, STREAM, TO_STREAM, char, STREAM_GONE)
PRINTF_DOTS(printf, vprintf, NONE, NONE, char, NOT_STREAM)
PRINTF_DOTS(dprintf, vdprintf, FD, TO_FD, char, NOT_STREAM)
PRINTF_V(vfwprintf, "vfwprintf", STREAM, TO_STREAM, wchar_t, STREAM_GONE)
PRINTF_V(vwprintf, "vwprintf", NONE, NONE, wchar_t, NOT_STREAM)
PRINTF_DOTS(fwprintf, vfwprintf, STREAM, TO_STREAM, wchar_t, STREAM_GONE)
PRINTF_DOTS(wprintf, vwprintf, NONE, NONE, wchar_t, NOT_STREAM)

/* err.h's warn and err and their kin write their message to stderr as fprintf does. */
#define WARN_FUNCS(name, vname, params, args)                                   \
	HG_EXPORT void vname(params const char *fmt, va_list ap)                \
	{                                                                       \
		CHECK_FORMAT(fmt, ap, #vname);                                  \
		NEXT(vname)(args fmt, ap);                                      \
	}                                                                       \
	HG_EXPORT void name(params const char *fmt, ...)                        \
	{                                                                       \
		va_list ap;                                                     \
		va_start(ap, fmt);                                              \
		CHECK_FORMAT(fmt, ap, #name);                                   \
		NEXT(vname)(args fmt, ap);                                      \
		va_end(ap);                                                     \
	}
WARN_FUNCS(warn, vwarn, NONE, NONE)
WARN_FUNCS(warnx, vwarnx, NONE, NONE)
WARN_FUNCS(err, verr, STATUS, TO_STATUS)
WARN_FUNCS(errx, verrx, STATUS, TO_STATUS)
#undef STREAM
#undef TO_STREAM
#undef FD
#undef TO_FD
#undef STATUS
#undef TO_STATUS
#undef NONE

/* error() and error_at_line() have no v-form to pass the arguments on to: the message is
 * formatted here and handed over as "%s" (glibc then adds what it adds: the program's name,
 * the file and line, the errno text). */
/* Their message, checked and formatted into buf, or past its size into a block the caller
 * frees; NULL when out of memory. In buf as a rule: error() with a status ends the process
 * before the free, and the block was left in the program's heap (still reachable). */
#define MESSAGE_BYTES 1024
static char *message(char *buf, const char *fmt, va_list ap, const char *func, const void *ret)
{
	if (hgc_ready)
		check_format(fmt, 1, ap, func, ret);
	va_list again;
	va_copy(again, ap);
	int n = vsnprintf(buf, MESSAGE_BYTES, fmt, again);
	va_end(again);
	char *msg = NULL;
	if (n >= 0 && n < MESSAGE_BYTES)
		return buf;
	return vasprintf(&msg, fmt, ap) >= 0 ? msg : NULL;
}

HG_EXPORT void error(int status, int errnum, const char *fmt, ...)
{
	char buf[MESSAGE_BYTES];
	va_list ap;
	va_start(ap, fmt);
	char *msg = message(buf, fmt, ap, "error", RET);
	va_end(ap);
	NEXT(error)(status, errnum, "%s", msg ? msg : fmt);
	if (msg != buf)
		free(msg);
}

HG_EXPORT void error_at_line(int status, int errnum, const char *file, unsigned line, const char *fmt, ...)
{
	char buf[MESSAGE_BYTES];
	va_list ap;
	va_start(ap, fmt);
	char *msg = message(buf, fmt, ap, "error_at_line", RET);
	va_end(ap);
	NEXT(error_at_line)(status, errnum, file, line, "%s", msg ? msg : fmt);
	if (msg != buf)
		free(msg);
}

/* syslog and its kin send the message out to the log as printf sends its output. */
HG_EXPORT void vsyslog(int priority, const char *fmt, va_list ap)
{
	CHECK_FORMAT(fmt, ap, "vsyslog");
	NEXT(__vsyslog_chk)(priority, 0, fmt, ap);
}

HG_EXPORT void __vsyslog_chk(int priority, int flag, const char *fmt, va_list ap)
{
	CHECK_FORMAT(fmt, ap, "vsyslog");
	NEXT(__vsyslog_chk)(priority, flag, fmt, ap);
}

HG_EXPORT void syslog(int priority, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	CHECK_FORMAT(fmt, ap, "syslog");
	NEXT(__vsyslog_chk)(priority, 0, fmt, ap);
	va_end(ap);
}

HG_EXPORT void __syslog_chk(int priority, int flag, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	CHECK_FORMAT(fmt, ap, "syslog");
	NEXT(__vsyslog_chk)(priority, flag, fmt, ap);
	va_end(ap);
}
