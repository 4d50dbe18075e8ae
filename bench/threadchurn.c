/* Thread per task: short-lived threads, at most 64 alive, each allocating and handing blocks on to later ones. */
#include "bench.h"
#include <pthread.h>
#include <string.h>

#define ALIVE 64        /* threads at once: the main thread joins the oldest before a new one */
#define HANDED_MAX 8192 /* blocks waiting for a later thread */
#define TAKEN_MAX 64    /* blocks a thread takes from the earlier ones */

struct handed {
	unsigned char *p;
	size_t n;
};

static struct handed handed[HANDED_MAX];
static int nhanded;
static pthread_mutex_t handed_lock = PTHREAD_MUTEX_INITIALIZER;
static long per_thread;

/* 70 % of 8-264 bytes, 25 % of 256 B-8.2 KiB, 5 % of 8-300 KiB: small objects, buffers, a few big ones. */
static size_t task_size(uint64_t *rng)
{
	uint64_t r = rng_next(rng) % 100;
	return r < 70 ? rng_range(rng, 8, 264) : r < 95 ? rng_range(rng, 256, 8448) : rng_range(rng, 8192, 308000);
}

static void fill(struct handed *h)
{
	memset(h->p, (int)(h->n & 0xff), h->n);
}

static void verify_and_free(const struct handed *h)
{
	check(h->p[0] == (unsigned char)h->n && h->p[h->n - 1] == (unsigned char)h->n, "block handed between threads");
	free(h->p);
}

/* Allocates its blocks, frees those earlier threads handed on, hands on about a quarter of
 * its own and frees the rest. */
static void *task(void *arg)
{
	uint64_t rng = 0x5eed0000 + (uint64_t)(uintptr_t)arg;
	struct handed mine[1024], taken[TAKEN_MAX];
	long n = per_thread < 1024 ? per_thread : 1024;
	int ntaken = 0;

	for (long i = 0; i < n; i++) {
		mine[i].n = task_size(&rng);
		mine[i].p = xmalloc(mine[i].n);
		fill(&mine[i]);
	}
	pthread_mutex_lock(&handed_lock);
	while (ntaken < TAKEN_MAX && nhanded > 0)
		taken[ntaken++] = handed[--nhanded];
	for (long i = 0; i < n; i++)
		if (rng_next(&rng) % 4 == 0 && nhanded < HANDED_MAX) {
			handed[nhanded++] = mine[i];
			mine[i].p = NULL;
		}
	pthread_mutex_unlock(&handed_lock);
	for (int i = 0; i < ntaken; i++)
		verify_and_free(&taken[i]);
	for (long i = 0; i < n; i++)
		if (mine[i].p)
			verify_and_free(&mine[i]);
	return NULL;
}

int main(int argc, char **argv)
{
	long threads = arg_long(argc, argv, 1, 20000);
	per_thread = arg_long(argc, argv, 2, 200);
	pthread_t ring[ALIVE];

	for (long k = 0; k < threads; k++) {
		if (k >= ALIVE)
			check(pthread_join(ring[k % ALIVE], NULL) == 0, "pthread_join");
		check(pthread_create(&ring[k % ALIVE], NULL, task, (void *)(uintptr_t)k) == 0, "pthread_create");
	}
	for (long k = threads > ALIVE ? threads - ALIVE : 0; k < threads; k++)
		check(pthread_join(ring[k % ALIVE], NULL) == 0, "pthread_join");
	for (int i = 0; i < nhanded; i++)
		verify_and_free(&handed[i]);
	printf("threadchurn %ld %ld\n", threads, per_thread);
	return 0;
}
