/* Random sizes over a live set: each thread replaces random slots of its share of the set. */
#include "bench.h"
#include <pthread.h>
#include <string.h>

/* Sizes 8..4096 bytes, with one allocation in 64 from a tail up to 64 KiB. */
#define SMALL_MAX_BYTES 4096
#define TAIL_MAX_BYTES 65536
#define TAIL_ONE_IN 64

struct worker {
	pthread_t thread;
	uint64_t seed;
	long slots;
	long steps;
	uint64_t sum; /* of the tags read back before each free */
};

struct slot {
	unsigned char *p;
	size_t size;
};

static size_t random_size(uint64_t *rng)
{
	if (rng_next(rng) % TAIL_ONE_IN == 0)
		return rng_range(rng, SMALL_MAX_BYTES + 1, TAIL_MAX_BYTES);
	return rng_range(rng, 8, SMALL_MAX_BYTES);
}

/* Tags the first and last byte so a block handed out twice, or moved, is noticed. */
static void fill(struct slot *s, uint64_t *rng)
{
	s->size = random_size(rng);
	s->p = xmalloc(s->size);
	s->p[0] = (unsigned char)s->size;
	s->p[s->size - 1] = (unsigned char)(s->size >> 8);
}

static uint64_t drain(struct slot *s)
{
	check(s->p[0] == (unsigned char)s->size && s->p[s->size - 1] == (unsigned char)(s->size >> 8),
	      "random slot tags");
	free(s->p);
	return s->size;
}

static void *run(void *arg)
{
	struct worker *w = arg;
	uint64_t rng = w->seed;
	struct slot *slots = xmalloc((size_t)w->slots * sizeof *slots);
	uint64_t sum = 0; /* in a register: the workers' structs share cache lines */

	for (long i = 0; i < w->slots; i++)
		fill(&slots[i], &rng);
	for (long i = 0; i < w->steps; i++) {
		struct slot *s = &slots[rng_next(&rng) % (uint64_t)w->slots];
		sum += drain(s);
		fill(s, &rng);
	}
	for (long i = 0; i < w->slots; i++)
		sum += drain(&slots[i]);
	free(slots);
	w->sum = sum;
	return NULL;
}

int main(int argc, char **argv)
{
	long nthreads = arg_long(argc, argv, 1, 1);
	long total_slots = arg_long(argc, argv, 2, 100000);
	long total_steps = arg_long(argc, argv, 3, 4000000);
	struct worker *w = xmalloc((size_t)nthreads * sizeof *w);
	uint64_t sum = 0;

	/* The live set and the work are split so every thread count does the same total. */
	for (long t = 0; t < nthreads; t++) {
		memset(&w[t], 0, sizeof w[t]);
		w[t].seed = 0x5eed0000u + (uint64_t)t;
		w[t].slots = total_slots / nthreads;
		w[t].steps = total_steps / nthreads;
		if (pthread_create(&w[t].thread, NULL, run, &w[t]) != 0)
			check(0, "pthread_create");
	}
	for (long t = 0; t < nthreads; t++) {
		pthread_join(w[t].thread, NULL);
		sum += w[t].sum;
	}
	free(w);
	printf("random %ld %ld %ld sum=%llu\n", nthreads, total_slots, total_steps, (unsigned long long)sum);
	return 0;
}
