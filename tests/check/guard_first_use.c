/* guard_first_use: threads whose first uses of one fresh block come at once, for guard_uninit:
 * each thread sets and counts its own slot of a block main allocated. Prints "bad=N", the
 * slots whose count came out wrong (0 when every store survived). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define THREADS 4
#define ROUNDS 200
#define COUNTS 1000

static long *counters; /* one slot per thread, 64 bytes apart */

static void *count(void *arg)
{
	long id = (long)arg;
	counters[id * 8] = 0;
	for (int i = 0; i < COUNTS; i++)
		counters[id * 8]++;
	return NULL;
}

int main(void)
{
	int bad = 0;
	for (int round = 0; round < ROUNDS; round++) {
		counters = malloc(THREADS * 8 * sizeof(long));
		pthread_t t[THREADS];
		for (long i = 0; i < THREADS; i++)
			pthread_create(&t[i], NULL, count, (void *)i);
		for (int i = 0; i < THREADS; i++)
			pthread_join(t[i], NULL);
		for (int i = 0; i < THREADS; i++)
			bad += counters[i * 8] != COUNTS;
		free(counters);
	}
	printf("bad=%d\n", bad);
	return 0;
}
