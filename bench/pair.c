/* Warm malloc+free pair: median nanoseconds of thread CPU time per pair, per size, over repeated timed loops. */
#include "bench.h"
#include <time.h>

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* noinline keeps the loop identical for every size: the size is not a constant in it. */
/* Thread CPU time, not wall time: on a shared machine a preemption would
 * otherwise land in one loop's figure. */
static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

__attribute__((noinline)) static void pairs(size_t size, long n)
{
	for (long i = 0; i < n; i++) {
		void *p = malloc(size);
		escape(p);
		free(p);
	}
}

int main(int argc, char **argv)
{
	long n = arg_long(argc, argv, 1, 2000000);
	long reps = arg_long(argc, argv, 2, 11);
	double ns[reps];

	if (argc < 4) {
		fprintf(stderr, "usage: pair PAIRS_PER_REP REPS SIZE...\n");
		return 2;
	}
	for (int a = 3; a < argc; a++) {
		size_t size = (size_t)strtoul(argv[a], NULL, 0);
		pairs(size, n); /* warm: the size class, the thread cache and the branch predictors */
		for (long r = 0; r < reps; r++) {
			uint64_t t0 = thread_cpu_ns();
			pairs(size, n);
			ns[r] = (double)(thread_cpu_ns() - t0) / (double)n;
		}
		qsort(ns, (size_t)reps, sizeof ns[0], cmp_double);
		printf("pair %zu %.2f\n", size, ns[reps / 2]);
	}
	return 0;
}
