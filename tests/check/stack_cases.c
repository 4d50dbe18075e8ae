/* stack_cases.c — stacks that stack.c's cache could confuse, for tests/check_leak.py: one
 * malloc reached from two callers in turn, in one thread and in four, and through a frame whose
 * size varies. Built with -O2: frames without a frame pointer, which the cache keeps. Each
 * case leaks its blocks, and the leak report's stacks must name the caller of each. */
#include <pthread.h>
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
	} else {
		static const char usage[] = "usage: stack_cases two-callers|two-callers-threads|deep|vla\n";
		write(2, usage, sizeof usage - 1);
		return 2;
	}
	return 0;
}
