/* Large zero-filled buffers: calloc 1-25 MiB blocks in a rolling window, check and touch a few bytes of each. */
#include "bench.h"

#define MIB (1024 * 1024)
#define DEFAULT_STRIDE_BYTES (64 * 1024) /* one page in sixteen: light use, as big buffers often get */

int main(int argc, char **argv)
{
	long iters = arg_long(argc, argv, 1, 300);
	long window = arg_long(argc, argv, 2, 8);
	size_t stride = (size_t)arg_long(argc, argv, 3, DEFAULT_STRIDE_BYTES); /* 4096: every page */
	unsigned char **live = xmalloc((size_t)window * sizeof *live);
	size_t *sizes = xmalloc((size_t)window * sizeof *sizes);
	uint64_t rng = 0x5eed;
	uint64_t touched = 0;

	for (long i = 0; i < window; i++)
		live[i] = NULL;
	for (long i = 0; i < iters; i++) {
		long k = i % window; /* the oldest block */
		free(live[k]);
		sizes[k] = rng_range(&rng, 1 * MIB, 25 * MIB);
		live[k] = calloc(1, sizes[k]);
		check(live[k] != NULL, "calloc");
		unsigned char *p = live[k];
		for (size_t off = rng_range(&rng, 0, stride - 1); off < sizes[k]; off += stride) {
			check(p[off] == 0, "calloc memory is not zero");
			p[off] = 1;
			touched++;
		}
		check(p[sizes[k] - 1] == 0, "calloc memory is not zero at the end");
		p[sizes[k] - 1] = 1;
	}
	for (long i = 0; i < window; i++)
		free(live[i]);
	free(live);
	free(sizes);
	printf("calloc_large %ld %ld touched=%llu\n", iters, window, (unsigned long long)touched);
	return 0;
}
