/* os_linux.c — Linux implementation of os.h: mmap, mremap, madvise, brk and raw write. */
#define _GNU_SOURCE
#include "os/os.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <dirent.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static _Atomic size_t mapped_bytes;
#define PRIVATE_FDS 16 /* the descriptors at the top that hg_os_private_fd hands out */

/* A fresh mapping of `bytes` at an address that is `phase` (page-aligned) modulo `modulus` (a
 * power of two, at least a page): the kernel gives page alignment only, so it over-maps by
 * modulus - page and trims both ends. */
static void *map_phased(size_t bytes, size_t modulus, uintptr_t phase)
{
	size_t slack = modulus - HG_OS_PAGE_BYTES;
	if (bytes + slack < bytes)
		return NULL;
	char *raw = mmap(NULL, bytes + slack, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		return NULL;
	char *p = raw + ((phase - (uintptr_t)raw) & (modulus - 1));
	if (p > raw)
		munmap(raw, (size_t)(p - raw));
	if (p + bytes < raw + bytes + slack)
		munmap(p + bytes, (size_t)(raw + bytes + slack - (p + bytes)));
	atomic_fetch_add_explicit(&mapped_bytes, bytes, memory_order_relaxed);
	return p;
}

void *hg_os_map(size_t bytes, size_t align)
{
	return map_phased(bytes, align < HG_OS_PAGE_BYTES ? HG_OS_PAGE_BYTES : align, 0);
}

void *hg_os_map_like(size_t bytes, const void *from)
{
	return map_phased(bytes, HG_OS_HUGE_PAGE_BYTES, (uintptr_t)from & ~(uintptr_t)(HG_OS_PAGE_BYTES - 1));
}

void hg_os_unmap(void *p, size_t bytes)
{
	munmap(p, bytes);
	atomic_fetch_sub_explicit(&mapped_bytes, bytes, memory_order_relaxed);
}

int hg_os_resize(void *p, size_t old_bytes, size_t new_bytes)
{
	int saved = errno;
	if (mremap(p, old_bytes, new_bytes, 0) == MAP_FAILED) {
		errno = saved;
		return 0;
	}
	atomic_fetch_add_explicit(&mapped_bytes, new_bytes - old_bytes, memory_order_relaxed);
	return 1;
}

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4 /* Linux 5.7; older headers lack it */
#endif

static int keep_refused; /* the kernel has no MREMAP_DONTUNMAP */

int hg_os_keeps(void)
{
	return !__atomic_load_n(&keep_refused, __ATOMIC_RELAXED);
}

/* The kernel moves and keeps no more than it had, and the rest of a larger `to` would stay a
 * mapping of its own, which the pages moved never merge with (the block's next move, of one
 * mapping at most, failed). So `to` is cut to the pages' length, they move, and it grows back
 * in place: one move of the page tables (moving onto a place as long, then growing onto `to`,
 * took two: a block grown by realloc 64 KiB at a time, 21 % more time). Only when another
 * thread's mapping came into that tail meanwhile do the pages go back, and the move fails. */
int hg_os_move_keep(void *p, size_t old_bytes, size_t new_bytes, void *to)
{
	if (!hg_os_keeps()) {
		hg_os_unmap(to, new_bytes);
		return 0;
	}
	int saved = errno;
	size_t moving = old_bytes < new_bytes ? old_bytes : new_bytes;
	int grow = new_bytes > old_bytes;
	if (grow)
		mremap(to, new_bytes, old_bytes, 0); /* a shrink in place: never refused */
	int moved = mremap(p, moving, moving, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, to) != MAP_FAILED;
	if (!moved && errno == EINVAL)
		__atomic_store_n(&keep_refused, 1, __ATOMIC_RELAXED);
	if (moved && grow && mremap(to, old_bytes, new_bytes, 0) == MAP_FAILED) {
		/* Back as it was; copied where even that move is refused (near vm.max_map_count):
		 * the range at p is mapped still, and the block's bytes must not stay behind. */
		if (mremap(to, old_bytes, old_bytes, MREMAP_MAYMOVE | MREMAP_FIXED, p) == MAP_FAILED) {
			for (size_t i = 0; i < old_bytes / sizeof(uint64_t); i++)
				((uint64_t *)p)[i] = ((const uint64_t *)to)[i];
			munmap(to, old_bytes);
		}
		moved = 0;
	} else if (!moved) {
		munmap(to, moving);
	}
	if (moved) {
		if (old_bytes > moving) /* a shrink: the tail's pages stayed behind */
			madvise((char *)p + moving, old_bytes - moving, MADV_DONTNEED);
		mprotect(p, old_bytes, PROT_NONE);
	}
	atomic_fetch_sub_explicit(&mapped_bytes, moved ? old_bytes : new_bytes, memory_order_relaxed);
	errno = saved;
	return moved;
}

int hg_os_move(void *p, size_t old_bytes, size_t new_bytes, void *to)
{
	if (mremap(p, old_bytes, new_bytes, MREMAP_MAYMOVE | MREMAP_FIXED, to) == MAP_FAILED)
		return 0;
	atomic_fetch_sub_explicit(&mapped_bytes, old_bytes, memory_order_relaxed);
	return 1;
}

/* Clears one batch of pages: its resident runs by writing zeros; the others read as zero
 * already, unless the system has swap (`swap`), where a page swapped out still holds its
 * data: those are handed back. A batch mostly not resident was used sparsely: handing all its
 * whole pages back in one call beats clearing them, which would keep them resident for every
 * later user too. */
static void zero_batch(char *page, size_t npages, char *from_min, char *to_max, int swap)
{
	enum { BATCH_PAGES = 4096 };
	unsigned char resident[BATCH_PAGES];
	if (mincore(page, npages * HG_OS_PAGE_BYTES, resident) != 0)
		memset(resident, 1, npages); /* cannot tell: clear them all */
	size_t count = 0;
	for (size_t i = 0; i < npages; i++)
		count += resident[i] & 1;
	char *whole_from = page < from_min ? page + HG_OS_PAGE_BYTES : page;
	char *whole_to = page + npages * HG_OS_PAGE_BYTES;
	if (whole_to > to_max)
		whole_to -= HG_OS_PAGE_BYTES;
	int sparse = count * 2 < npages && whole_from < whole_to;
	if (sparse)
		madvise(whole_from, (size_t)(whole_to - whole_from), MADV_DONTNEED);
	for (size_t i = 0; i < npages;) {
		size_t j = i;
		while (j < npages && (resident[j] & 1) == (resident[i] & 1))
			j++;
		char *from = page + i * HG_OS_PAGE_BYTES, *to = page + j * HG_OS_PAGE_BYTES;
		if (sparse) { /* only the partial pages at the ends are left */
			from = from < whole_from ? from : whole_to;
			to = to > whole_to ? to : whole_from;
		}
		from = from < from_min ? from_min : from;
		to = to > to_max ? to_max : to;
		if (!(resident[i] & 1) && swap && !sparse) { /* hand back its whole pages */
			char *lo = from < whole_from ? whole_from : from, *hi = to > whole_to ? whole_to : to;
			if (lo < hi) {
				madvise(lo, (size_t)(hi - lo), MADV_DONTNEED);
				memset(from, 0, (size_t)(lo - from));
				from = hi;
			}
		}
		if (from < to && ((resident[i] & 1) || swap))
			memset(from, 0, (size_t)(to - from));
		i = j;
	}
}

void hg_os_zero(void *p, size_t bytes)
{
	enum { BATCH_PAGES = 4096 };
	char *a = p, *end = a + bytes;
	char *page = (char *)((uintptr_t)a & ~(uintptr_t)(HG_OS_PAGE_BYTES - 1));
	int saved = errno;
	int swap = hg_os_has_swap();
	while (page < end) {
		size_t n = (size_t)(end - page + HG_OS_PAGE_BYTES - 1) / HG_OS_PAGE_BYTES;
		if (n > BATCH_PAGES)
			n = BATCH_PAGES;
		zero_batch(page, n, a, end, swap);
		page += n * HG_OS_PAGE_BYTES;
	}
	errno = saved;
}

void hg_os_purge(void *p, size_t bytes)
{
	madvise(p, bytes, MADV_DONTNEED);
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14; older headers lack it */
#endif

void hg_os_populate(void *p, size_t bytes)
{
	int saved = errno;
	madvise(p, bytes, MADV_POPULATE_WRITE);
	errno = saved;
}

int hg_os_has_swap(void)
{
	struct sysinfo si;
	int saved = errno;
	int swap = sysinfo(&si) != 0 || si.totalswap != 0;
	errno = saved;
	return swap;
}

unsigned hg_os_resident(const void *p, unsigned npages)
{
	unsigned char vec[64];
	unsigned in = 0;
	int saved = errno;
	if (npages <= sizeof vec && mincore((void *)p, (size_t)npages * HG_OS_PAGE_BYTES, vec) == 0)
		for (unsigned i = 0; i < npages; i++)
			in += vec[i] & 1;
	errno = saved;
	return in;
}

int hg_os_resident_runs(char *p, size_t bytes, hg_os_run_fn fn, void *arg)
{
	enum { CHUNK_PAGES = 512 };
	unsigned char vec[CHUNK_PAGES];
	char *end = p + bytes;
	int saved = errno, go = 1;
	while (go && p < end) {
		char *page = (char *)((uintptr_t)p & ~(uintptr_t)(HG_OS_PAGE_BYTES - 1));
		size_t pages = ((size_t)(end - page) + HG_OS_PAGE_BYTES - 1) / HG_OS_PAGE_BYTES;
		pages = pages < CHUNK_PAGES ? pages : CHUNK_PAGES;
		char *chunk_end = page + pages * HG_OS_PAGE_BYTES < end ? page + pages * HG_OS_PAGE_BYTES : end;
		if (mincore(page, pages * HG_OS_PAGE_BYTES, vec) != 0) {
			go = fn(p, chunk_end, arg);
			p = chunk_end;
			continue;
		}
		for (size_t i = 0, j; go && i < pages; i = j) {
			for (j = i + 1; j < pages && (vec[j] & 1) == (vec[i] & 1); j++)
				;
			char *lo = page + i * HG_OS_PAGE_BYTES, *hi = page + j * HG_OS_PAGE_BYTES;
			if (vec[i] & 1)
				go = fn(lo > p ? lo : p, hi < chunk_end ? hi : chunk_end, arg);
		}
		p = chunk_end;
	}
	errno = saved;
	return go;
}

void *hg_os_brk(size_t bytes, size_t align)
{
	char *cur = sbrk(0);
	if (cur == (char *)-1)
		return NULL;
	size_t pad = (size_t)(-(uintptr_t)cur & (align - 1));
	if (bytes + pad < bytes || bytes + pad > (size_t)INTPTR_MAX)
		return NULL;
	/* The break moves only forward here; another sbrk user in between just costs a retry. */
	char *got = sbrk((intptr_t)(bytes + pad));
	if (got == (char *)-1)
		return NULL;
	if (got != cur) {
		size_t pad2 = (size_t)(-(uintptr_t)got & (align - 1));
		if (pad2 > pad) {
			/* Someone moved the break between our two calls: the aligned block no longer fits. */
			return NULL;
		}
		pad = pad2;
	}
	atomic_fetch_add_explicit(&mapped_bytes, bytes + pad, memory_order_relaxed);
	return got + pad;
}

int hg_os_brk_trim(void *p, size_t bytes)
{
	int saved = errno;
	int done = sbrk(0) == (char *)p + bytes && brk(p) == 0;
	errno = saved;
	if (done)
		atomic_fetch_sub_explicit(&mapped_bytes, bytes, memory_order_relaxed);
	return done;
}

size_t hg_os_mapped_bytes(void)
{
	return atomic_load_explicit(&mapped_bytes, memory_order_relaxed);
}

void *hg_os_reserve(size_t bytes)
{
	int saved = errno;
	void *p = mmap(NULL, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	errno = saved;
	return p == MAP_FAILED ? NULL : p;
}

int hg_os_protect(void *p, size_t bytes, int writable)
{
	int saved = errno;
	int ok = mprotect(p, bytes, writable ? PROT_READ | PROT_WRITE : PROT_NONE) == 0;
	errno = saved;
	return ok;
}

void hg_os_unreserve(void *p, size_t bytes)
{
	int saved = errno;
	munmap(p, bytes);
	errno = saved;
}

void hg_os_decommit(void *p, size_t bytes)
{
	/* Same flags as hg_os_reserve, so the new pages merge back into the reservation's
	 * mapping instead of costing one more. */
	int saved = errno;
	mmap(p, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
	errno = saved;
}

/* 1 when n bytes written to fd would pass the file size limit (RLIMIT_FSIZE: a program's
 * `ulimit -f`), where the kernel raises SIGXFSZ, which ends the process by default. */
static int past_size_limit(int fd, const struct stat *st, size_t n)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_FSIZE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return 0;
	int flags = fcntl(fd, F_GETFL);
	off_t at = flags >= 0 && (flags & O_APPEND) ? st->st_size : lseek(fd, 0, SEEK_CUR);
	return at < 0 || (uint64_t)at + n > (uint64_t)rl.rlim_cur;
}

/* A write must not end the program by a signal it would not have had: past the file size
 * limit the kernel raises SIGXFSZ (such a write is not made), and into a pipe or socket whose
 * reader has gone SIGPIPE (blocked for the write, and the one it raised taken back; one that
 * was pending already stays). Both end a process by default. */
int hg_os_write(int fd, const char *s, size_t n)
{
	int saved = errno;
	struct stat st;
	int is_pipe = 0;
	if (fstat(fd, &st) == 0) {
		if (S_ISREG(st.st_mode) && past_size_limit(fd, &st, n)) {
			errno = saved;
			return 0;
		}
		is_pipe = S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode);
	}
	sigset_t pipe_only, old, pending;
	int had_pipe = 1;
	if (is_pipe) {
		sigemptyset(&pipe_only);
		sigaddset(&pipe_only, SIGPIPE);
		pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
		had_pipe = sigpending(&pending) != 0 || sigismember(&pending, SIGPIPE);
	}
	while (n > 0) {
		ssize_t w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		s += w;
		n -= (size_t)w;
	}
	if (is_pipe) {
		static const struct timespec now = { 0, 0 };
		if (!had_pipe && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE))
			sigtimedwait(&pipe_only, NULL, &now);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	errno = saved;
	return n == 0;
}

/* Without O_CREAT first: a sandbox's seccomp filter may refuse any open that could create a
 * file (man-db's, for the filters it runs, with ENOSYS), and the file is there already. */
int hg_os_open_append(const char *path)
{
	int saved = errno;
	int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	errno = saved;
	return fd;
}

/* The top of the first 1,024 descriptors (of fewer, under a lower limit): scripts name low
 * ones (`exec 200>lock; flock 200` is the lock idiom; bash moved its own descriptor out of
 * the way and back over the program's file when ours was 200) and programs take the lowest
 * free; select() reaches 1,023. Under a limit of 200 or so, none: the program may need them
 * all. */
int hg_os_private_fd(int fd)
{
	int saved = errno;
	struct rlimit rl;
	long top = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 1024 ? (long)rl.rlim_cur : 1024;
	int copy = top - PRIVATE_FDS >= 200 ? fcntl(fd, F_DUPFD_CLOEXEC, top - PRIVATE_FDS) : -1;
	errno = saved;
	return copy >= 0 ? copy : fd;
}

void *hg_os_map_huge(size_t bytes, int first)
{
	void *p = hg_os_map(bytes, HG_OS_HUGE_PAGE_BYTES);
	size_t head = first ? HG_OS_HUGE_PAGE_BYTES : 0;
	if (p && bytes > head) {
		int saved = errno;
		madvise((char *)p + head, bytes - head, MADV_HUGEPAGE);
		errno = saved;
	}
	return p;
}

void hg_os_small_pages(void *p, size_t bytes)
{
	int saved = errno;
	madvise(p, bytes, MADV_NOHUGEPAGE);
	errno = saved;
}

void hg_os_close(int fd)
{
	int saved = errno;
	close(fd);
	errno = saved;
}

int hg_os_file_id(int fd, dev_t *dev, ino_t *ino, unsigned long *links)
{
	int saved = errno;
	struct stat st;
	int ok = fstat(fd, &st) == 0;
	errno = saved;
	if (ok) {
		*dev = st.st_dev;
		*ino = st.st_ino;
		*links = (unsigned long)st.st_nlink;
	}
	return ok;
}

uint64_t hg_os_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* /proc/thread-self before /proc/self: once main has called pthread_exit, /proc/self is the
 * exited leader's, whose maps read empty and whose exe link is gone. Raw calls: the checker
 * interposes read and open's kin. */
int hg_os_open_proc(const char *name)
{
	static const char *const dirs[] = { "/proc/thread-self/", "/proc/self/" }; /* 2nd: Linux < 3.17 */
	int saved = errno, fd = -1;
	for (unsigned i = 0; i < 2 && fd < 0; i++) {
		char path[64];
		size_t at = strlen(dirs[i]), n = strlen(name);
		if (at + n >= sizeof path)
			break;
		memcpy(path, dirs[i], at);
		memcpy(path + at, name, n + 1);
		fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
	}
	errno = saved;
	return fd;
}

long hg_os_map_count(void)
{
	int fd = hg_os_open_proc("maps");
	if (fd < 0)
		return -1;
	char buf[4096];
	long lines = 0, n;
	while ((n = syscall(SYS_read, fd, buf, sizeof buf)) > 0)
		for (long i = 0; i < n; i++)
			lines += buf[i] == '\n';
	syscall(SYS_close, fd);
	return lines;
}

/* The file open on fd (closed after), as much as fits, NUL-terminated in buf; its length, or
 * -1 when fd is -1 or the first read fails. */
static long read_text(int fd, char *buf, size_t size)
{
	long got = 0, n = fd >= 0 ? 1 : -1;
	while (fd >= 0 && got < (long)size - 1 && (n = syscall(SYS_read, fd, buf + got, size - 1 - (size_t)got)) > 0)
		got += n;
	if (fd >= 0)
		syscall(SYS_close, fd);
	buf[got] = 0;
	return got ? got : n < 0 ? -1 : 0;
}

#define PM_PRESENT (1ull << 63)
#define PM_SWAPPED (1ull << 62)
#define PM_EXCLUSIVE (1ull << 56) /* mapped by this process alone */

int hg_os_pages_own(struct hg_os_pagemap *pm, const void *p, size_t bytes)
{
	if (pm->fd == -1) {
		pm->fd = hg_os_open_proc("pagemap");
		if (pm->fd < 0)
			pm->fd = -2;
	}
	if (pm->fd < 0 || !bytes)
		return 1;
	uintptr_t page = (uintptr_t)p / HG_OS_PAGE_BYTES, last = ((uintptr_t)p + bytes - 1) / HG_OS_PAGE_BYTES;
	for (; page <= last; page++) {
		if (page < pm->first || page >= pm->first + pm->n) {
			int saved = errno;
			long got = syscall(SYS_pread64, pm->fd, pm->e, sizeof pm->e, (off_t)(page * sizeof *pm->e));
			errno = saved;
			if (got < (long)sizeof *pm->e)
				return 1;
			pm->first = page;
			pm->n = (size_t)got / sizeof *pm->e;
		}
		uint64_t e = pm->e[page - pm->first];
		if ((e & PM_SWAPPED) || ((e & PM_PRESENT) && (e & PM_EXCLUSIVE)))
			return 1;
	}
	return 0;
}

void hg_os_pagemap_close(struct hg_os_pagemap *pm)
{
	if (pm->fd >= 0)
		syscall(SYS_close, pm->fd);
	pm->fd = -1;
	pm->n = 0;
}

const char *hg_os_getenv(const char *name)
{
	if (environ)
		return getenv(name);
	/* The kernel's copy, read once into pages that stay (ARG_MAX bounds it; untouched pages
	 * cost nothing). */
	enum { ENV_MAX = 2 << 20 };
	static char *env;
	static long env_len;
	if (!env) {
		char *buf = hg_os_map(ENV_MAX, 0);
		if (!buf)
			return NULL;
		long n = read_text(hg_os_open_proc("environ"), buf, ENV_MAX);
		env_len = n > 0 ? n : 0;
		env = buf;
	}
	size_t len = strlen(name);
	for (long at = 0; at < env_len; at += (long)strlen(env + at) + 1)
		if (strncmp(env + at, name, len) == 0 && env[at + (long)len] == '=')
			return env + at + len + 1;
	return NULL;
}

size_t hg_os_address_space_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > SIZE_MAX)
		return SIZE_MAX;
	return (size_t)rl.rlim_cur;
}

long hg_os_map_count_max(void)
{
	long max = 65530; /* the kernel's default */
	int saved = errno;
	char buf[32];
	long n = read_text((int)syscall(SYS_openat, AT_FDCWD, "/proc/sys/vm/max_map_count", O_RDONLY | O_CLOEXEC),
			   buf, sizeof buf);
	if (n > 0) {
		long v = 0;
		for (long i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++)
			v = v * 10 + (buf[i] - '0');
		if (v > 0)
			max = v;
	}
	errno = saved;
	return max;
}

size_t hg_os_exe_path(char *buf, size_t size)
{
	int saved = errno;
	ssize_t n = readlink("/proc/thread-self/exe", buf, size - 1);
	if (n <= 0)
		n = readlink("/proc/self/exe", buf, size - 1);
	errno = saved;
	buf[n > 0 ? n : 0] = 0;
	return n > 0 ? (size_t)n : 0;
}

static const char *parse_hex(const char *s, const char *end, uintptr_t *v)
{
	for (*v = 0; s < end; s++) {
		unsigned c = (unsigned char)*s | 0x20, d = c - '0' < 10 ? c - '0' : c - 'a' < 6 ? c - 'a' + 10 : 16;
		if (d == 16)
			break;
		*v = *v << 4 | d;
	}
	return s;
}

void hg_os_maps_line(const char *line, const char *eol, struct hg_os_maps_line *out)
{
	const char *q = parse_hex(line, eol, &out->lo);
	if (q < eol && *q == '-')
		q = parse_hex(q + 1, eol, &out->hi);
	else
		out->hi = out->lo;
	const char *path = out->perms = q + 1;
	for (int field = 0; field < 4 && path < eol; field++) { /* perms offset dev inode */
		while (path < eol && *path != ' ')
			path++;
		while (path < eol && *path == ' ')
			path++;
	}
	out->path = path < eol ? path : eol;
}

/* The path on the maps line [line, eol) when its mapping holds addr and is a file's: where it
 * starts, its length in *len; NULL when not. *past: the mapping starts above addr. */
static const char *maps_line_path(const char *line, const char *eol, uintptr_t addr, size_t *len, int *past)
{
	static const char deleted[] = " (deleted)";
	struct hg_os_maps_line m;
	hg_os_maps_line(line, eol, &m);
	*past = m.lo > addr;
	if (addr < m.lo || addr >= m.hi)
		return NULL;
	size_t n = (size_t)(eol - m.path), tail = sizeof deleted - 1;
	if (n > tail && memcmp(eol - tail, deleted, tail) == 0)
		n -= tail;
	*len = n;
	return n && *m.path == '/' ? m.path : NULL;
}

/* Reads maps in buf-sized pieces, line by line: a process at vm.max_map_count has megabytes of
 * them, and no allocation is allowed here. Lines come in address order: the search stops at the
 * first mapping above addr. Raw calls: the checker interposes read. */
size_t hg_os_mapped_path(uintptr_t addr, char *buf, size_t size)
{
	int saved = errno, fd = hg_os_open_proc("maps"), past = 0;
	size_t at = 0, have = 0, len = 0;
	while (fd >= 0 && !past && !len) {
		size_t eol = at;
		while (eol < have && buf[eol] != '\n')
			eol++;
		if (eol == have) { /* no whole line left: the rest to the front, then more after it */
			memmove(buf, buf + at, have - at);
			have -= at;
			at = 0;
			long n = have < size ? syscall(SYS_read, fd, buf + have, size - have) : 0;
			if (n <= 0)
				break; /* the end, or a line longer than buf */
			have += (size_t)n;
			continue;
		}
		size_t n;
		const char *path = maps_line_path(buf + at, buf + eol, addr, &n, &past);
		/* To the front, ending before eol: room for the NUL. The kernel writes a newline in
		 * a name as \012 (a backslash as itself: a name holding "\012" reads as a newline). */
		if (path != NULL) {
			for (size_t i = 0; i < n; i++)
				if (n - i >= 4 && memcmp(path + i, "\\012", 4) == 0) {
					buf[len++] = '\n';
					i += 3;
				} else {
					buf[len++] = path[i];
				}
			buf[len] = 0;
		}
		at = eol + 1;
	}
	if (fd >= 0)
		syscall(SYS_close, fd);
	errno = saved;
	return len;
}

const void *hg_os_map_file(const char *path, size_t *bytes)
{
	int saved = errno;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		errno = saved;
		return NULL;
	}
	off_t end = lseek(fd, 0, SEEK_END);
	void *p = end > 0 ? mmap(NULL, (size_t)end, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
	close(fd);
	errno = saved;
	if (p == MAP_FAILED)
		return NULL;
	*bytes = (size_t)end;
	return p;
}

int hg_os_thread_id(void)
{
	return (int)syscall(SYS_gettid);
}

int hg_os_thread_gone(int tid)
{
	int saved = errno, gone = syscall(SYS_tgkill, getpid(), tid, 0) < 0 && errno == ESRCH;
	errno = saved;
	return gone;
}

size_t hg_os_threads(int *tids, size_t max)
{
	int saved = errno;
	int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	size_t n = 0;
	char buf[4096] __attribute__((aligned(8)));
	long got;
	while (fd >= 0 && (got = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0)
		for (long at = 0; at < got;) {
			const struct dirent64 *d = (const struct dirent64 *)(buf + at);
			at += d->d_reclen;
			int tid = 0;
			for (const char *c = d->d_name; *c >= '0' && *c <= '9'; c++)
				tid = tid * 10 + (*c - '0');
			if (tid > 0 && n < max)
				tids[n++] = tid;
		}
	if (fd >= 0)
		syscall(SYS_close, fd);
	errno = saved;
	return n;
}

#if defined(__x86_64__)
_Static_assert(sizeof(struct user_regs_struct) == HG_OS_REGS_WORDS * sizeof(uintptr_t), "register words");

struct tracer {
	const int *tids;
	size_t n;
	uintptr_t (*regs)[HG_OS_REGS_WORDS];
	unsigned char *got;
	_Atomic int go; /* the caller has let us trace it (Yama's ptrace_scope 1) */
};

/* A thread the interrupt took out of epoll_wait, sigwaitinfo, semop and the other calls that
 * fail with EINTR after a stop (signal(7)), even with no handler run, is put back into it, as
 * the kernel restarts the others: the syscall instruction before its rip is run again. A
 * worker that took that EINTR for an error ended the process at its exit. */
static void restart_interrupted(long tid, const struct user_regs_struct *r)
{
	long word;
	if ((long)r->orig_rax < 0 || (long)r->rax != -EINTR || r->rip < 2 ||
	    syscall(SYS_ptrace, PTRACE_PEEKTEXT, tid, r->rip - 2, &word) != 0 || (word & 0xffff) != 0x050f)
		return;
	struct user_regs_struct again = *r;
	again.rax = again.orig_rax;
	again.rip -= 2;
	syscall(SYS_ptrace, PTRACE_SETREGS, tid, 0, &again);
}

/* The tracer: a process of its own (a thread of ours cannot trace its siblings) on our
 * memory and our TLS, so raw system calls only. Each thread is seized, interrupted, read and
 * let go at once: a syscall it was in restarts, as no handler ran (a signal would have
 * made poll fail with EINTR; restart_interrupted sees to epoll_wait and its kin). A signal
 * that stopped it instead goes back to it. */
static int tracer_main(void *arg)
{
	struct tracer *t = arg;
	syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	while (!atomic_load(&t->go))
		syscall(SYS_sched_yield);
	for (size_t i = 0; i < t->n; i++) {
		long tid = t->tids[i], sig = 0;
		int status;
		if (syscall(SYS_ptrace, PTRACE_SEIZE, tid, 0, 0) != 0)
			continue;
		if (syscall(SYS_ptrace, PTRACE_INTERRUPT, tid, 0, 0) == 0 &&
		    syscall(SYS_wait4, tid, &status, __WALL, NULL) == tid && WIFSTOPPED(status)) {
			if (status >> 16 != PTRACE_EVENT_STOP)
				sig = WSTOPSIG(status); /* a signal-delivery stop */
			struct user_regs_struct r;
			if (syscall(SYS_ptrace, PTRACE_GETREGS, tid, 0, &r) == 0) {
				memcpy(t->regs[i], &r, sizeof r);
				t->got[i] = 1;
				if (!sig)
					restart_interrupted(tid, &r);
			}
		}
		syscall(SYS_ptrace, PTRACE_DETACH, tid, 0, sig);
	}
	return 0;
}

/* Under a seccomp filter (or strict mode): clone or ptrace may be what it kills the process
 * for. */
static int under_seccomp(void)
{
	char buf[4096];
	if (read_text(hg_os_open_proc("status"), buf, sizeof buf) <= 0)
		return 1; /* cannot tell */
	const char *at = strstr(buf, "\nSeccomp:");
	return !at || at[strspn(at + 9, " \t") + 9] != '0';
}

int hg_os_thread_registers(const int *tids, size_t n, uintptr_t (*regs)[HG_OS_REGS_WORDS],
			   unsigned char *got, unsigned timeout_ms)
{
	enum { STACK_BYTES = 64 << 10 };
	int saved = errno, done = 0;
	memset(got, 0, n);
	if (under_seccomp()) {
		errno = saved;
		return 0;
	}
	struct tracer *t = hg_os_map(sizeof *t + STACK_BYTES, 0);
	if (!t)
		return 0;
	*t = (struct tracer){ .tids = tids, .n = n, .regs = regs, .got = got };
	/* exit signal 0: no SIGCHLD for the program, and no wait(-1) of its reaps the tracer */
	int pid = clone(tracer_main, (char *)t + sizeof *t + STACK_BYTES, CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_UNTRACED, t);
	if (pid > 0) {
		prctl(PR_SET_PTRACER, pid, 0, 0, 0); /* fails where there is no Yama: no matter */
		atomic_store(&t->go, 1);
		int status;
		for (unsigned waited = 0; !done; waited++) {
			done = syscall(SYS_wait4, pid, &status, __WALL | WNOHANG, NULL) != 0;
			if (!done && waited >= timeout_ms) {
				kill(pid, SIGKILL); /* its tracees go free */
				syscall(SYS_wait4, pid, &status, __WALL, NULL);
				memset(got, 0, n);
				break;
			}
			if (!done)
				nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
		}
		prctl(PR_SET_PTRACER, 0, 0, 0, 0);
	}
	hg_os_unmap(t, sizeof *t + STACK_BYTES);
	errno = saved;
	size_t read = 0;
	for (size_t i = 0; i < n; i++)
		read += got[i];
	return read > 0;
}
#else
int hg_os_thread_registers(const int *tids, size_t n, uintptr_t (*regs)[HG_OS_REGS_WORDS],
			   unsigned char *got, unsigned timeout_ms)
{
	(void)tids, (void)regs, (void)timeout_ms;
	memset(got, 0, n);
	return 0;
}
#endif
