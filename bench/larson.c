/* Larson-style server: threads replace random slots of a slot array, and the arrays change hands every epoch. */
#include "bench.h"
#include <pthread.h>

/* Larson's original run used blocks of 10..400 bytes; this keeps that shape. */
#define MIN_BYTES 16
#define MAX_BYTES 512

struct block {
	uint32_t size;
	uint32_t tag;
};

struct shared {
	long nthreads, slots, steps, epochs;
	long handoff; /* 1: arrays change hands every epoch; 0: each thread keeps its own */
	struct block ***arrays; /* nthreads arrays of slots pointers */
	pthread_barrier_t barrier;
};

struct worker {
	pthread_t thread;
	struct shared *sh;
	long id;
	uint64_t sum; /* of the tags read back before each free */
};

static struct block *new_block(uint64_t *rng)
{
	uint32_t size = (uint32_t)rng_range(rng, MIN_BYTES, MAX_BYTES);
	struct block *b = xmalloc(size);
	b->size = size;
	b->tag = (uint32_t)rng_next(rng);
	((unsigned char *)b)[size - 1] = (unsigned char)b->tag;
	return b;
}

static uint64_t free_block(struct block *b)
{
	check(((unsigned char *)b)[b->size - 1] == (unsigned char)b->tag, "larson block tail");
	uint64_t tag = b->tag;
	free(b);
	return tag;
}

/* In epoch e thread t works on array (t + e) mod n, so most frees hit blocks
 * that another thread allocated: the hand-off larson's thread respawn gives.
 * Without the hand-off every free is local: the same work, as a control. */
static void *run(void *arg)
{
	struct worker *w = arg;
	struct shared *sh = w->sh;
	uint64_t rng = 0x5eed00 + (uint64_t)w->id;
	uint64_t sum = 0; /* in a register: the workers' structs share cache lines */

	for (long e = 0; e < sh->epochs; e++) {
		struct block **a = sh->arrays[(w->id + e * sh->handoff) % sh->nthreads];
		for (long i = 0; i < sh->steps; i++) {
			long k = (long)(rng_next(&rng) % (uint64_t)sh->slots);
			sum += free_block(a[k]);
			a[k] = new_block(&rng);
		}
		pthread_barrier_wait(&sh->barrier);
	}
	w->sum = sum;
	return NULL;
}

int main(int argc, char **argv)
{
	struct shared sh = {
		.nthreads = arg_long(argc, argv, 1, 4),
		.slots = arg_long(argc, argv, 2, 8000),
		.steps = arg_long(argc, argv, 3, 100000),
		.epochs = arg_long(argc, argv, 4, 20),
		.handoff = arg_long(argc, argv, 5, 1) != 0,
	};
	struct worker *w = xmalloc((size_t)sh.nthreads * sizeof *w);
	uint64_t rng = 0x5eed;
	uint64_t sum = 0;

	sh.arrays = xmalloc((size_t)sh.nthreads * sizeof *sh.arrays);
	for (long t = 0; t < sh.nthreads; t++) {
		sh.arrays[t] = xmalloc((size_t)sh.slots * sizeof **sh.arrays);
		for (long i = 0; i < sh.slots; i++)
			sh.arrays[t][i] = new_block(&rng);
	}
	pthread_barrier_init(&sh.barrier, NULL, (unsigned)sh.nthreads);
	double t0 = now_s();
	for (long t = 0; t < sh.nthreads; t++) {
		w[t] = (struct worker){ .sh = &sh, .id = t };
		if (pthread_create(&w[t].thread, NULL, run, &w[t]) != 0)
			check(0, "pthread_create");
	}
	for (long t = 0; t < sh.nthreads; t++) {
		pthread_join(w[t].thread, NULL);
		sum += w[t].sum;
	}
	double elapsed = now_s() - t0;
	for (long t = 0; t < sh.nthreads; t++) {
		for (long i = 0; i < sh.slots; i++)
			sum += free_block(sh.arrays[t][i]);
		free(sh.arrays[t]);
	}
	pthread_barrier_destroy(&sh.barrier);
	free(sh.arrays);
	free(w);
	printf("larson %ld %ld %ld %ld sum=%llu\n", sh.nthreads, sh.slots, sh.steps, sh.epochs,
	       (unsigned long long)sum);
	/* On stderr: stdout must be the same under every allocator (bench/run.py compares it). */
	fprintf(stderr, "ops=%ld seconds=%.6f\n", sh.nthreads * sh.epochs * sh.steps, elapsed);
	return 0;
}
