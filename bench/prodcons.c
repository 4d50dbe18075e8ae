/* Cross-thread producer/consumer: producers allocate, consumers free, through one bounded queue of batches. */
#include "bench.h"
#include <pthread.h>
#include <string.h>

#define BATCH_BLOCKS 64 /* blocks handed over per queue operation */
#define QUEUE_BATCHES 16 /* bound: producers block when this many batches wait */

/* A mutex and condition variables rather than spinning: with more threads than
 * cores, spin-yield loops make the time depend on the scheduler, not the allocator.
 * Batches keep the lock off the per-block path. */
struct queue {
	pthread_mutex_t lock;
	pthread_cond_t not_full, not_empty;
	long head, count;
	unsigned char *slots[QUEUE_BATCHES][BATCH_BLOCKS];
};

struct worker {
	pthread_t thread;
	struct queue *q;
	uint64_t seed;
	long batches;
	uint64_t sum; /* consumers: of the sizes read back before each free */
};

static void push(struct queue *q, unsigned char **batch)
{
	pthread_mutex_lock(&q->lock);
	while (q->count == QUEUE_BATCHES)
		pthread_cond_wait(&q->not_full, &q->lock);
	memcpy(q->slots[(q->head + q->count) % QUEUE_BATCHES], batch, sizeof q->slots[0]);
	q->count++;
	pthread_cond_signal(&q->not_empty);
	pthread_mutex_unlock(&q->lock);
}

static void pop(struct queue *q, unsigned char **batch)
{
	pthread_mutex_lock(&q->lock);
	while (q->count == 0)
		pthread_cond_wait(&q->not_empty, &q->lock);
	memcpy(batch, q->slots[q->head], sizeof q->slots[0]);
	q->head = (q->head + 1) % QUEUE_BATCHES;
	q->count--;
	pthread_cond_signal(&q->not_full);
	pthread_mutex_unlock(&q->lock);
}

/* Sizes 16..1024 bytes, one in sixteen up to 8 KiB; the size is stored in the block. */
static void *produce(void *arg)
{
	struct worker *w = arg;
	uint64_t rng = w->seed;
	unsigned char *batch[BATCH_BLOCKS];

	for (long b = 0; b < w->batches; b++) {
		for (int i = 0; i < BATCH_BLOCKS; i++) {
			size_t size = rng_next(&rng) % 16 == 0 ? rng_range(&rng, 1025, 8192)
							       : rng_range(&rng, 16, 1024);
			unsigned char *p = xmalloc(size);
			*(uint32_t *)p = (uint32_t)size;
			p[size - 1] = (unsigned char)size;
			batch[i] = p;
		}
		push(w->q, batch);
	}
	return NULL;
}

static void *consume(void *arg)
{
	struct worker *w = arg;
	unsigned char *batch[BATCH_BLOCKS];
	uint64_t sum = 0; /* in a register: the workers' structs share cache lines */

	for (long b = 0; b < w->batches; b++) {
		pop(w->q, batch);
		for (int i = 0; i < BATCH_BLOCKS; i++) {
			uint32_t size = *(uint32_t *)batch[i];
			check(batch[i][size - 1] == (unsigned char)size, "block received from producer");
			sum += size;
			free(batch[i]);
		}
	}
	w->sum = sum;
	return NULL;
}

int main(int argc, char **argv)
{
	long npairs = arg_long(argc, argv, 1, 2);
	long blocks = arg_long(argc, argv, 2, 5000000); /* per producer */
	struct queue *q = xmalloc(sizeof *q);
	struct worker *w = xmalloc(2 * (size_t)npairs * sizeof *w);
	uint64_t sum = 0;

	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->not_full, NULL);
	pthread_cond_init(&q->not_empty, NULL);
	q->head = q->count = 0;
	/* Workers 0..n-1 produce, n..2n-1 consume; a consumer takes batches from any producer. */
	for (long i = 0; i < 2 * npairs; i++) {
		w[i] = (struct worker){ .q = q, .seed = 0x5eed + (uint64_t)i, .batches = blocks / BATCH_BLOCKS };
		if (pthread_create(&w[i].thread, NULL, i < npairs ? produce : consume, &w[i]) != 0)
			check(0, "pthread_create");
	}
	for (long i = 0; i < 2 * npairs; i++) {
		pthread_join(w[i].thread, NULL);
		sum += w[i].sum;
	}
	pthread_cond_destroy(&q->not_full);
	pthread_cond_destroy(&q->not_empty);
	pthread_mutex_destroy(&q->lock);
	free(q);
	free(w);
	printf("prodcons %ld %ld sum=%llu\n", npairs, blocks, (unsigned long long)sum);
	return 0;
}
