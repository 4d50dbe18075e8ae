/* Cross-thread ring: each thread allocates batches and hands them to the next thread, which frees them. */
#define _GNU_SOURCE
#include "bench.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#define BATCH_BLOCKS 64 /* blocks per hand-over */
#define BOX_BATCHES 8   /* a mailbox holds this many batches; the sender waits when it is full */

/* One mailbox per thread, written by its predecessor alone: a single-producer,
 * single-consumer ring, so the benchmark's own hand-over takes no lock and scales,
 * leaving the allocator's cross-thread free as what is measured. With one thread
 * the ring closes on itself and every free is local: the baseline. */
struct mailbox {
	_Atomic long sent __attribute__((aligned(64)));
	_Atomic long taken __attribute__((aligned(64)));
	unsigned char *batches[BOX_BATCHES][BATCH_BLOCKS] __attribute__((aligned(64)));
};

struct worker {
	pthread_t thread;
	struct mailbox *in, *out;
	uint64_t seed;
	long rounds;
	uint64_t sum; /* of the sizes read back before each free */
} __attribute__((aligned(64)));

/* Spin briefly, then yield: with more threads than cores a pure spin would stall. */
static void wait_a_little(int *spins)
{
	if (++*spins < 64)
		__builtin_ia32_pause();
	else
		sched_yield();
}

/* Sizes 16..1024 bytes, one in sixteen up to 8 KiB, as in prodcons; the size is stored in the block. */
static void fill_batch(unsigned char **batch, uint64_t *rng)
{
	for (int i = 0; i < BATCH_BLOCKS; i++) {
		size_t size = rng_next(rng) % 16 == 0 ? rng_range(rng, 1025, 8192) : rng_range(rng, 16, 1024);
		unsigned char *p = xmalloc(size);
		*(uint32_t *)p = (uint32_t)size;
		p[size - 1] = (unsigned char)size;
		batch[i] = p;
	}
}

static void *run(void *arg)
{
	struct worker *w = arg;
	uint64_t rng = w->seed;

	for (long n = 0; n < w->rounds; n++) {
		int spins = 0;
		/* Fill the next slot of the successor's box, then announce it. */
		while (n - atomic_load_explicit(&w->out->taken, memory_order_acquire) >= BOX_BATCHES)
			wait_a_little(&spins);
		fill_batch(w->out->batches[n % BOX_BATCHES], &rng);
		atomic_store_explicit(&w->out->sent, n + 1, memory_order_release);

		spins = 0;
		while (atomic_load_explicit(&w->in->sent, memory_order_acquire) <= n)
			wait_a_little(&spins);
		unsigned char **batch = w->in->batches[n % BOX_BATCHES];
		for (int i = 0; i < BATCH_BLOCKS; i++) {
			uint32_t size = *(uint32_t *)batch[i];
			check(batch[i][size - 1] == (unsigned char)size, "block received from the ring");
			w->sum += size;
			free(batch[i]);
		}
		atomic_store_explicit(&w->in->taken, n + 1, memory_order_release);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	long nthreads = arg_long(argc, argv, 1, 2);
	long blocks = arg_long(argc, argv, 2, 2000000); /* per thread */
	struct mailbox *boxes = aligned_alloc(64, (size_t)nthreads * sizeof *boxes);
	struct worker *w = aligned_alloc(64, (size_t)nthreads * sizeof *w);
	uint64_t sum = 0;

	check(boxes && w, "setup allocation");
	memset(boxes, 0, (size_t)nthreads * sizeof *boxes);
	double t0 = now_s();
	for (long t = 0; t < nthreads; t++) {
		w[t] = (struct worker){ .in = &boxes[t], .out = &boxes[(t + 1) % nthreads],
					.seed = 0x5eed + (uint64_t)t, .rounds = blocks / BATCH_BLOCKS };
		if (pthread_create(&w[t].thread, NULL, run, &w[t]) != 0)
			check(0, "pthread_create");
	}
	for (long t = 0; t < nthreads; t++) {
		pthread_join(w[t].thread, NULL);
		sum += w[t].sum;
	}
	double elapsed = now_s() - t0;
	free(boxes);
	free(w);
	printf("xthread %ld %ld sum=%llu\n", nthreads, blocks, (unsigned long long)sum);
	/* On stderr: stdout must be the same under every allocator (bench/run.py compares it). */
	fprintf(stderr, "ops=%ld seconds=%.6f\n", nthreads * (blocks / BATCH_BLOCKS) * BATCH_BLOCKS, elapsed);
	return 0;
}
