/* guard_churn: malloc/free of 64-byte blocks in a loop. Prints how many of the last 1000 blocks
 * ended against a page end (guarded) and whether an address of the first 100 came back (with a
 * small quarantine, guard slots are released and reused); with -t, the ns per malloc/free. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FIRST 100

int main(int argc, char **argv)
{
	long rounds = argc > 1 ? atol(argv[1]) : 12000;
	int timed = argc > 2 && !strcmp(argv[2], "-t");
	uintptr_t first[FIRST];
	long at_page_end = 0;
	int reused = 0;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < rounds; i++) {
		unsigned char *p = malloc(64);
		memset(p, (int)i, 64);
		if (i < FIRST)
			first[i] = (uintptr_t)p;
		else if (!timed)
			for (int k = 0; k < FIRST && !reused; k++)
				reused = first[k] == (uintptr_t)p;
		if (i >= rounds - 1000 && ((uintptr_t)(p + 64) & 4095) == 0)
			at_page_end++;
		free(p);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / (double)rounds;
	if (timed)
		fprintf(stderr, "%.0f ns per malloc/free\n", ns);
	printf("guarded %ld of the last 1000, %s\n", at_page_end, reused ? "reused" : "not reused");
	return 0;
}
