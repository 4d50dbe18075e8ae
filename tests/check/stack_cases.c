/* stack_cases.c — stacks that stack.c's cache could confuse, for tests/check_leak.py: one
 * malloc reached from two callers in turn, in one thread and in four, and through a frame whose
 * size varies. Built with -O2: frames without a frame pointer, which the cache keeps. Each
 * case leaks its blocks, and the leak report's stacks must name the caller of each; nocfi-fds
 * has a caller without unwind information. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))
#define ROUNDS 600 /* past each thread's first 256 captures, which the cache skips */

static void *volatile sink;

static NOINLINE void *alloc_at_leaf(size_t n)
{
	void *p = malloc(n);
	memset(p, 2, n);
	return p;
}

/* ---- the same depth, two callers ---- */
static NOINLINE void lose_from_first(void)
{
	sink = alloc_at_leaf(11);
}

static NOINLINE void lose_from_second(void)
{
	sink = alloc_at_leaf(22);
}

static NOINLINE void lose_from_two_callers(void)
{
	for (int i = 0; i < ROUNDS; i++)
		(i & 1 ? lose_from_second : lose_from_first)();
	sink = NULL;
}

static void *two_callers_thread(void *arg)
{
	(void)arg;
	lose_from_two_callers();
	return NULL;
}

/* ---- a frame whose size varies: the malloc's slot is at the same address in both chains,
 * and the larger caller's untouched locals hold the other chain's return address exactly
 * where that chain had it ---- */
static NOINLINE void through_vla(size_t len, size_t n)
{
	volatile char buf[len];
	buf[0] = 1;
	sink = alloc_at_leaf(n);
	(void)buf[0];
}

static NOINLINE void vla_caller_small(void)
{
	volatile char pad[64];
	pad[0] = 1;
	through_vla(512, 11);
	(void)pad[0];
}

static NOINLINE void vla_caller_big(void)
{
	volatile char pad[64 + 448];
	pad[0] = 1;
	through_vla(64, 22);
	(void)pad[0];
}

/* ---- a stack deeper than the 16 frames kept: three functions calling each other in turn,
 * whose every frame the stack must name in order ---- */
static NOINLINE void deep_a(int n);
static NOINLINE void deep_b(int n);
static NOINLINE void deep_c(int n)
{
	if (n == 0)
		sink = alloc_at_leaf(33);
	else
		deep_a(n - 1);
	__asm__ volatile("" ::: "memory"); /* no tail call */
}

static NOINLINE void deep_b(int n)
{
	deep_c(n - 1);
	__asm__ volatile("" ::: "memory");
}

static NOINLINE void deep_a(int n)
{
	deep_b(n - 1);
	__asm__ volatile("" ::: "memory");
}

/* ---- a caller without unwind information: libunwind follows it, with its pipe ---- */
/* nocfi_alloc(n): malloc(n) from a frame with no .eh_frame entry, placed by its frame pointer. */
#define NOCFI_ALLOC(name)                                                                        \
	__asm__(".text\n.globl " #name "\n.type " #name ", @function\n" #name ":\n"                 \
		"\tpush %rbp\n\tmov %rsp, %rbp\n\tcall malloc@PLT\n\tpop %rbp\n\tret\n"          \
		".size " #name ", .-" #name "\n");                                                  \
	void *name(size_t n)
NOCFI_ALLOC(nocfi_alloc);
NOCFI_ALLOC(nocfi_alloc_too); /* another, unwound for the first time after the descriptors changed */

/* The first unwinding opens libunwind's pipe; from 16 KiB further down the stack, so that
 * the pages it checks then are not those checked later (it remembers those). */
static NOINLINE void nocfi_deep(void)
{
	volatile char pad[16384];
	pad[0] = 0;
	free(nocfi_alloc(10));
	__asm__ volatile("" : : "r"(pad) : "memory");
}

/* The program's descriptors 3 and 4 are its files, whatever the unwinder opened before: file
 * a keeps its offset, b gets no byte (libunwind's memory check reads and writes its pipe). */
static int nocfi_keeps_descriptors(void)
{
	nocfi_deep();
	int first = open("/dev/null", O_RDONLY);
	close(3);
	close(4);
	char name_a[] = "/tmp/hg-stack-a-XXXXXX", name_b[] = "/tmp/hg-stack-b-XXXXXX";
	int a = mkstemp(name_a), b = mkstemp(name_b);
	if (write(a, "fifteen bytes.\n", 15) != 15 || lseek(a, 0, SEEK_SET) != 0)
		return 3;
	for (int i = 0; i < 5; i++)
		free(nocfi_alloc_too(10 + (size_t)i));
	char buf[64];
	ssize_t got = read(a, buf, sizeof buf);
	off_t b_bytes = lseek(b, 0, SEEK_END);
	printf("first free descriptor %d; files on %d and %d; read back %zd; b holds %lld\n", first, a, b,
	       got, (long long)b_bytes);
	unlink(name_a);
	unlink(name_b);
	return 0;
}

int main(int argc, char **argv)
{
	const char *c = argc > 1 ? argv[1] : "";
	if (!strcmp(c, "two-callers")) {
		lose_from_two_callers();
	} else if (!strcmp(c, "two-callers-threads")) {
		pthread_t t[4];
		for (int i = 0; i < 4; i++)
			pthread_create(&t[i], NULL, two_callers_thread, NULL);
		for (int i = 0; i < 4; i++)
			pthread_join(t[i], NULL);
	} else if (!strcmp(c, "deep")) {
		for (int i = 0; i < ROUNDS; i++)
			deep_a(20); /* 21 frames of deep_* below main, deep_c(0) the last */
		sink = NULL;
	} else if (!strcmp(c, "vla")) {
		for (int i = 0; i < ROUNDS; i++)
			(i & 1 ? vla_caller_big : vla_caller_small)();
		sink = NULL;
	} else if (!strcmp(c, "nocfi-fds")) {
		return nocfi_keeps_descriptors();
	} else {
		static const char usage[] = "usage: stack_cases two-callers|two-callers-threads|deep|vla|nocfi-fds\n";
		write(2, usage, sizeof usage - 1);
		return 2;
	}
	return 0;
}
