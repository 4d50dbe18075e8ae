/* util.h — helpers shared by the cmocka test programs: notes, memory readings, child processes, patterns. */
#ifndef HG_TEST_UTIL_H
#define HG_TEST_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <sys/types.h>

#define MIB ((size_t)1 << 20)

/* cmocka's TAP output drops fail_msg() text, so diagnostics are printed as TAP comments first. */
void tu_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define CHECK(cond, ...)                                                     \
	do {                                                                 \
		if (!(cond)) {                                               \
			tu_note("%s:%d: check failed: %s", __FILE__, __LINE__, #cond); \
			tu_note(__VA_ARGS__);                                \
			fail();                                              \
		}                                                            \
	} while (0)

/* In a forked child cmocka's longjmp target belongs to the parent's test: report and _exit instead. */
#define CHILD_CHECK(cond)                                                    \
	do {                                                                 \
		if (!(cond))                                                 \
			tu_child_fail(__FILE__, __LINE__, #cond);            \
	} while (0)
void tu_child_fail(const char *file, int line, const char *what) __attribute__((noreturn));

/* Resident and virtual size of this process from /proc/self/statm. */
size_t tu_rss_bytes(void);
size_t tu_vm_bytes(void);
/* Pages of [p, p + bytes) in memory (p page aligned, bytes a multiple of 4 KiB); (size_t)-1
 * when mincore fails. */
size_t tu_resident_pages(const void *p, size_t bytes);

struct tu_child {
	pid_t pid;
	int status;       /* waitpid status; meaningless when timed_out */
	int timed_out;    /* the child was killed after the deadline */
	char err[16384];  /* what the child wrote to stderr, NUL-terminated, truncated */
	size_t err_len;
};

/* Runs fn(arg) in a forked child whose stderr is captured; the child _exits 0 when fn returns.
 * A child still alive after timeout_s seconds is SIGKILLed, so a deadlock fails instead of hanging. */
void tu_run_child(void (*fn)(void *), void *arg, int timeout_s, struct tu_child *out);

/* Asserts that the child ran to completion with exit status 0, printing its stderr otherwise. */
void tu_assert_child_ok(const struct tu_child *c);

/* A byte pattern keyed by (key, offset) so that two blocks sharing memory overwrite each other's
 * values detectably; the key is usually the block's address and size. */
void tu_fill(void *p, size_t n, uint64_t key);
/* Returns the first offset < n whose byte differs from tu_fill's, or n when all match. */
size_t tu_check(const void *p, size_t n, uint64_t key);
/* Returns the first offset < n holding a non-zero byte, or n. */
size_t tu_first_nonzero(const void *p, size_t n);

/* Hides a pointer's origin from the compiler, so deliberate misuse compiles without warnings
 * and cannot be folded away. */
void *tu_launder(void *p);

/* Line-buffers stdout so TAP lines survive a crash of the test program, and applies the
 * HG_TEST_ONLY / HG_TEST_SKIP name patterns (cmocka's '*' and '?' wildcards) for debugging. */
void tu_init(void);

/* The first failure seen by any thread: threads record it and stop, the test function
 * reports it from the main thread, where cmocka's fail() is allowed. */
extern char tu_failure[512];
extern _Atomic int tu_failed;
void tu_thread_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tu_reset_failure(void);

/* xorshift64: a fast, seedable generator for the random tests. */
static inline uint64_t tu_random(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

#endif
