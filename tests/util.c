/* util.c — implementation of the helpers declared in util.h. */
#define _GNU_SOURCE
#include "util.h"

#include <errno.h>
#include <stdatomic.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void tu_note(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

void tu_child_fail(const char *file, int line, const char *what)
{
	dprintf(2, "child check failed at %s:%d: %s (errno %d)\n", file, line, what, errno);
	_exit(100);
}

static size_t statm_field(int index)
{
	unsigned long v[2] = {0, 0};
	FILE *f = fopen("/proc/self/statm", "r");

	if (f == NULL)
		return 0;
	if (fscanf(f, "%lu %lu", &v[0], &v[1]) != 2)
		v[0] = v[1] = 0;
	fclose(f);
	return (size_t)v[index] * (size_t)sysconf(_SC_PAGESIZE);
}

size_t tu_rss_bytes(void) { return statm_field(1); }
size_t tu_vm_bytes(void) { return statm_field(0); }

size_t tu_resident_pages(const void *p, size_t bytes)
{
	unsigned char vec[256];
	size_t in = 0;

	for (size_t done = 0; done < bytes; done += sizeof vec * 4096) {
		size_t n = (bytes - done) / 4096 < sizeof vec ? (bytes - done) / 4096 : sizeof vec;

		if (mincore((char *)p + done, n * 4096, vec) != 0)
			return (size_t)-1;
		for (size_t i = 0; i < n; i++)
			in += vec[i] & 1;
	}
	return in;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reads the child's stderr until EOF or the deadline. */
static void drain(int fd, struct tu_child *out, double deadline)
{
	for (;;) {
		double left = deadline - now_s();
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		char buf[4096];
		ssize_t n;

		if (left <= 0)
			return;
		if (poll(&pfd, 1, (int)(left * 1000) + 1) <= 0)
			continue;
		n = read(fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		if (out->err_len + (size_t)n >= sizeof out->err)
			n = (ssize_t)(sizeof out->err - 1 - out->err_len);
		memcpy(out->err + out->err_len, buf, (size_t)n);
		out->err_len += (size_t)n;
	}
}

void tu_run_child(void (*fn)(void *), void *arg, int timeout_s, struct tu_child *out)
{
	int fds[2];
	double deadline = now_s() + timeout_s;

	memset(out, 0, sizeof *out);
	assert_int_equal(pipe(fds), 0);
	fflush(stdout);
	out->pid = fork();
	assert_true(out->pid >= 0);
	if (out->pid == 0) {
		/* cmocka's crash handlers would longjmp into the parent's test and run the rest of the
		 * suite in the child: a crash must kill the child instead. */
		static const int caught[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGSYS};
		for (size_t i = 0; i < sizeof caught / sizeof caught[0]; i++)
			signal(caught[i], SIG_DFL);
		close(fds[0]);
		dup2(fds[1], 2);
		close(fds[1]);
		fn(arg);
		_exit(0);
	}
	close(fds[1]);
	drain(fds[0], out, deadline);
	close(fds[0]);
	/* EOF can come before exit (stderr closed) and a stuck child never gives EOF: poll the exit too. */
	while (waitpid(out->pid, &out->status, WNOHANG) == 0) {
		if (now_s() > deadline) {
			kill(out->pid, SIGKILL);
			waitpid(out->pid, &out->status, 0);
			out->timed_out = 1;
			break;
		}
		usleep(2000);
	}
	out->err[out->err_len] = '\0';
}

void tu_assert_child_ok(const struct tu_child *c)
{
	CHECK(!c->timed_out, "child %d timed out (deadlock?); stderr: %s", (int)c->pid, c->err);
	CHECK(WIFEXITED(c->status) && WEXITSTATUS(c->status) == 0,
	      "child %d: %s %d; stderr: %s", (int)c->pid,
	      WIFEXITED(c->status) ? "exit status" : "killed by signal",
	      WIFEXITED(c->status) ? WEXITSTATUS(c->status) : WTERMSIG(c->status), c->err);
}

static inline uint64_t mix(uint64_t x)
{
	x ^= x >> 31;
	x *= 0x9e3779b97f4a7c15ull;
	x ^= x >> 29;
	return x;
}

/* Word i holds mix(key) + i * odd constant: cheap to produce, and different for every key and offset. */
void tu_fill(void *p, size_t n, uint64_t key)
{
	uint64_t base = mix(key), w;
	unsigned char *b = p;
	size_t i, words = n / 8;

	for (i = 0; i < words; i++) {
		w = base + i * 0xff51afd7ed558ccdull;
		memcpy(b + i * 8, &w, 8);
	}
	w = base + words * 0xff51afd7ed558ccdull;
	memcpy(b + words * 8, &w, n % 8);
}

size_t tu_check(const void *p, size_t n, uint64_t key)
{
	uint64_t base = mix(key), w, have = 0;
	const unsigned char *b = p;
	size_t i, j, words = n / 8;

	for (i = 0; i <= words; i++) {
		size_t len = i < words ? 8 : n % 8;

		w = base + i * 0xff51afd7ed558ccdull;
		memcpy(&have, b + i * 8, len);
		if (memcmp(&have, &w, len) == 0)
			continue;
		for (j = 0; ((const unsigned char *)&have)[j] == ((const unsigned char *)&w)[j]; j++)
			;
		return i * 8 + j;
	}
	return n;
}

size_t tu_first_nonzero(const void *p, size_t n)
{
	const unsigned char *b = p;
	size_t i = 0;
	uint64_t w;

	for (; i + 8 <= n; i += 8) {
		memcpy(&w, b + i, 8);
		if (w != 0)
			break;
	}
	for (; i < n; i++)
		if (b[i] != 0)
			return i;
	return n;
}

void *tu_launder(void *p)
{
	void *volatile v = p;

	return v;
}

void tu_init(void)
{
	const char *only = getenv("HG_TEST_ONLY"), *skip = getenv("HG_TEST_SKIP");

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (only != NULL)
		cmocka_set_test_filter(only);
	if (skip != NULL)
		cmocka_set_skip_filter(skip);
}

char tu_failure[512];
_Atomic int tu_failed;

void tu_thread_fail(const char *fmt, ...)
{
	va_list ap;

	if (atomic_exchange(&tu_failed, 1))
		return;
	va_start(ap, fmt);
	vsnprintf(tu_failure, sizeof tu_failure, fmt, ap);
	va_end(ap);
}

void tu_reset_failure(void)
{
	atomic_store(&tu_failed, 0);
	tu_failure[0] = '\0';
}
