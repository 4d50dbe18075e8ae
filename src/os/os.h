/* os.h — the contract between heapguard and the kernel: every system call the allocator makes. */
#ifndef HG_OS_H
#define HG_OS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Fresh, zero-filled, read-write anonymous memory; NULL on failure. `align` is a
 * power of two; the result is aligned to it (at least to the page). */
void *hg_os_map(size_t bytes, size_t align);
void hg_os_unmap(void *p, size_t bytes);
/* Resizes a mapping made by hg_os_map without moving it (shrinking always works);
 * 0 when the pages after it are taken. A new tail reads as zero. */
int hg_os_resize(void *p, size_t old_bytes, size_t new_bytes);
/* A mapping of `bytes` for hg_os_move to move the pages at `from` onto: its address lies as
 * far past a huge-page boundary as `from` does, so that the kernel moves whole page tables
 * (a mapping of 3 MiB moved each time: 6.5 ms to write 2 MiB of it after a move, 0.6 so;
 * this VM pays at the next touch for each page-table entry that changed). NULL on failure. */
void *hg_os_map_like(size_t bytes, const void *from);
/* Moves a mapping's pages (no copy) onto `to`, a mapping of new_bytes made by hg_os_map or
 * hg_os_map_like, which it replaces; the tail beyond old_bytes reads as zero. 0 on failure. */
int hg_os_move(void *p, size_t old_bytes, size_t new_bytes, void *to);
/* As hg_os_move, but leaves the range at p mapped, empty and inaccessible (a reservation, for
 * hg_os_unreserve): unmapped, it could be another thread's mapping before the checker kept the
 * place of the block that was there. 0 on failure: the block as it was, `to` unmapped (Linux
 * before 5.7 cannot). */
int hg_os_move_keep(void *p, size_t old_bytes, size_t new_bytes, void *to);
/* 0 once the kernel refused hg_os_move_keep's move (Linux before 5.7), which fails from then on. */
int hg_os_keeps(void);
/* Zeroes [p, p+bytes) of an anonymous mapping by clearing only its resident pages: the
 * others read as zero already, and touching them would fault them in. */
void hg_os_zero(void *p, size_t bytes);
/* As hg_os_map, aligned to a huge page and asking for transparent huge pages (a hint:
 * ignored where THP is off). For memory read at random, where TLB misses cost. `first`:
 * the caller's first such mapping, whose first huge page's worth stays on small pages: a
 * short-lived process touches a few pages of it, and zeroing 2 MiB for each took ~2 ms of
 * a checked `echo`. */
void *hg_os_map_huge(size_t bytes, int first);
#define HG_OS_HUGE_PAGE_BYTES ((size_t)2 << 20)
/* Takes back hg_os_map_huge's hint: pages faulted from now on are small ones. */
void hg_os_small_pages(void *p, size_t bytes);
/* Hands the pages back to the kernel; the range stays mapped and reads as zero. */
void hg_os_purge(void *p, size_t bytes);
/* Faults in [p, p+bytes) of an anonymous mapping for writing, all in one call (a hint: a
 * kernel before 5.14 or short of memory leaves it to the page faults). */
void hg_os_populate(void *p, size_t bytes);
/* 1 when the system has swap (or cannot tell): a page that is not resident may then hold
 * data, swapped out; without, it reads as zero (or as its file's bytes). */
int hg_os_has_swap(void);
/* How many of the npages pages at p (page aligned, npages <= 64) are resident; an unmapped
 * one counts as not. */
unsigned hg_os_resident(const void *p, unsigned npages);
/* Calls fn on each run of [p, p+bytes) whose pages are resident, in address order (a part of
 * it that mincore cannot tell about, an unmapped hole, counts as resident); stops when fn
 * returns 0, and returns 0 then, else 1. */
typedef int (*hg_os_run_fn)(char *lo, char *hi, void *arg);
int hg_os_resident_runs(char *p, size_t bytes, hg_os_run_fn fn, void *arg);
/* What a forked process shares with its parent, from /proc/self/pagemap, read a window of
 * pages at a time (fd -1: not open yet, -2: unreadable). */
struct hg_os_pagemap {
	int fd;
	uintptr_t first;  /* the window's first page number */
	size_t n;         /* entries read */
	uint64_t e[512];
};
#define HG_OS_PAGEMAP_INIT { -1, 0, 0, { 0 } }
/* 0 when every page of [p, p+bytes) is still shared with the process this one forked from,
 * copy-on-write, or not resident and not swapped: its bytes are the other's too. 1 otherwise,
 * or when pagemap cannot tell. */
int hg_os_pages_own(struct hg_os_pagemap *pm, const void *p, size_t bytes);
void hg_os_pagemap_close(struct hg_os_pagemap *pm);
/* Grows the program break by `bytes` aligned to `align`; NULL when it cannot. */
void *hg_os_brk(size_t bytes, size_t align);
/* Lowers the break to p when it stands at p + bytes (memory hg_os_brk gave); 0 when it does
 * not (another user of sbrk moved it) or the kernel refused. */
int hg_os_brk_trim(void *p, size_t bytes);
/* Bytes the allocator holds from the kernel now (mapped or taken from the break). */
size_t hg_os_mapped_bytes(void);

/* Address space only: an inaccessible, uncommitted mapping (guard slots are carved from it);
 * NULL on failure. Page aligned. */
void *hg_os_reserve(size_t bytes);
/* Makes whole pages read-write (writable 1) or inaccessible (0); 0 on failure (e.g. ENOMEM
 * when the split would pass vm.max_map_count). errno is preserved. */
int hg_os_protect(void *p, size_t bytes, int writable);
/* Gives back a reservation (hg_os_reserve, hg_os_move_keep), whatever its pages became. */
void hg_os_unreserve(void *p, size_t bytes);
/* Swaps whole pages for fresh inaccessible ones in one call: their memory goes back to the
 * kernel and a later hg_os_protect(.., 1) finds them zeroed. */
void hg_os_decommit(void *p, size_t bytes);

/* Writes all n bytes (retrying short writes); 0 when the descriptor fails, errno kept. A
 * write that would pass the file size limit (SIGXFSZ: the program's `ulimit -f`) is not
 * made: 0; one into a pipe whose reader has gone fails without SIGPIPE. */
int hg_os_write(int fd, const char *s, size_t n);
/* Opens path for appending (created 0600 if missing, close-on-exec); -1 on failure. */
int hg_os_open_append(const char *path);
void hg_os_close(int fd);
/* The device and inode fd is open on, and how many names the file has (0: removed); 0 when
 * fd is not open. */
int hg_os_file_id(int fd, dev_t *dev, ino_t *ino, unsigned long *links);
/* A close-on-exec copy of fd numbered high (from 1,008, or 16 below a lower descriptor
 * limit), or fd itself if that fails or the limit is under 216. */
int hg_os_private_fd(int fd);
uint64_t hg_os_now_ms(void);

/* Opens a file of this process's /proc directory ("maps") read-only; -1 when it cannot. */
int hg_os_open_proc(const char *name);
/* The process's mappings now (-1 when they cannot be counted), and the most it may have
 * (vm.max_map_count). */
long hg_os_map_count(void);
long hg_os_map_count_max(void);
/* getenv, also before libc has set environ up: a program's .preinit_array functions run
 * with environ NULL, and one that mallocs there read no options. Never allocates. */
const char *hg_os_getenv(const char *name);
/* The address space the process may map (RLIMIT_AS, `ulimit -v`); SIZE_MAX without a limit. */
size_t hg_os_address_space_limit(void);
/* The main program's path into buf (NUL-terminated, "" when unknown); its length. */
size_t hg_os_exe_path(char *buf, size_t size);
/* The path of the file mapped at addr, as /proc/self/maps names it (absolute, links resolved,
 * without a " (deleted)" suffix, a newline unescaped), into buf (NUL-terminated); its length,
 * 0 when addr is in no mapping of a file or its line does not fit. buf is the scratch the lines
 * are read into: HG_OS_MAPS_LINE_BYTES holds any. */
#define HG_OS_MAPS_LINE_BYTES 8192u
/* A /proc/self/maps line [line, eol) ("lo-hi perms offset device inode path"): its range,
 * where its permissions begin, and where its path begins (eol when it has none). */
struct hg_os_maps_line {
	uintptr_t lo, hi;
	const char *perms, *path;
};
void hg_os_maps_line(const char *line, const char *eol, struct hg_os_maps_line *out);
size_t hg_os_mapped_path(uintptr_t addr, char *buf, size_t size);

/* The calling thread's id (gettid). */
int hg_os_thread_id(void);
/* Whether thread tid of this process has ended (errno kept). */
int hg_os_thread_gone(int tid);
/* This process's threads (from /proc/self/task), up to max of them into tids; how many. */
size_t hg_os_threads(int *tids, size_t max);
/* The general registers of the threads tids[0..n) of this process (not the caller's) into
 * regs[i], got[i] = 1 where they could be read: each thread is stopped for a moment by a
 * tracer process that shares our memory (ptrace, as LSan stops the world), its system call
 * restarted afterwards. 0 where none could be (no ptrace: a debugger already attached; a
 * seccomp filter, which may kill for it, is not tried), or when it took over timeout_ms (a
 * thread in an uninterruptible sleep). */
#define HG_OS_REGS_WORDS 27 /* struct user_regs_struct on x86-64 */
int hg_os_thread_registers(const int *tids, size_t n, uintptr_t (*regs)[HG_OS_REGS_WORDS],
			   unsigned char *got, unsigned timeout_ms);

/* A private read-only mapping of the whole file at path (its size in *bytes); NULL when it
 * cannot be opened or mapped. */
const void *hg_os_map_file(const char *path, size_t *bytes);

#define HG_OS_PAGE_BYTES 4096u

#endif
