/* Helpers shared by the benchmark workloads: a seeded PRNG, an optimisation barrier, checked allocation. */
#ifndef HG_BENCH_H
#define HG_BENCH_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* splitmix64: fast, and the same sequence on every run and every allocator. */
static inline uint64_t rng_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [lo, hi]; the modulo bias is irrelevant for a workload. */
static inline size_t rng_range(uint64_t *state, size_t lo, size_t hi)
{
	return lo + (size_t)(rng_next(state) % (hi - lo + 1));
}

/* Makes the compiler believe p is read and the memory behind it may change,
 * so a malloc/free pair is neither removed nor merged. */
static inline void escape(void *p)
{
	__asm__ volatile("" : : "r"(p) : "memory");
}

static inline void *xmalloc(size_t n)
{
	void *p = malloc(n);
	if (p == NULL) {
		fprintf(stderr, "bench: malloc(%zu) failed\n", n);
		exit(2);
	}
	return p;
}

/* Every workload verifies what it wrote; a mismatch means the allocator broke a block. */
static inline void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "bench: corrupted data: %s\n", what);
		exit(3);
	}
}

/* Monotonic seconds: the multi-thread workloads time their threaded phase with it. */
static inline double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static inline long arg_long(int argc, char **argv, int i, long dflt)
{
	return i < argc ? strtol(argv[i], NULL, 0) : dflt;
}

#endif
