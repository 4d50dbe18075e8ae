/* Scaling control with no memory traffic: each thread steps the benchmarks' PRNG in registers. */
#include "bench.h"
#include <pthread.h>

struct worker {
	pthread_t thread;
	long steps;
	uint64_t sum;
} __attribute__((aligned(64)));

static void *run(void *arg)
{
	struct worker *w = arg;
	uint64_t rng = (uint64_t)w->steps, sum = 0;
	for (long i = 0; i < w->steps; i++)
		sum += rng_next(&rng);
	w->sum = sum;
	return NULL;
}

int main(int argc, char **argv)
{
	long nthreads = arg_long(argc, argv, 1, 1);
	long steps = arg_long(argc, argv, 2, 100000000); /* per thread */
	struct worker *w = aligned_alloc(64, (size_t)nthreads * sizeof *w);
	uint64_t sum = 0;

	check(w != NULL, "setup allocation");
	double t0 = now_s();
	for (long t = 0; t < nthreads; t++) {
		w[t] = (struct worker){ .steps = steps };
		if (pthread_create(&w[t].thread, NULL, run, &w[t]) != 0)
			check(0, "pthread_create");
	}
	for (long t = 0; t < nthreads; t++) {
		pthread_join(w[t].thread, NULL);
		sum += w[t].sum;
	}
	double elapsed = now_s() - t0;
	free(w);
	printf("cpu %ld %ld sum=%llu\n", nthreads, steps, (unsigned long long)sum);
	/* On stderr, as the other scaling workloads: ops here are PRNG steps, not malloc+free pairs. */
	fprintf(stderr, "ops=%ld seconds=%.6f\n", nthreads * steps, elapsed);
	return 0;
}
