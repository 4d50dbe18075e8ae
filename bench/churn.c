/* Same-size churn: malloc/free of one small size, one at a time or in batches freed in allocation order. */
#include "bench.h"

int main(int argc, char **argv)
{
	size_t size = (size_t)arg_long(argc, argv, 1, 64);
	long iters = arg_long(argc, argv, 2, 10000000);
	long batch = arg_long(argc, argv, 3, 1);
	unsigned char **blocks = xmalloc((size_t)batch * sizeof *blocks);
	uint64_t sum = 0;

	for (long i = 0; i < iters; i += batch) {
		for (long j = 0; j < batch; j++) {
			blocks[j] = xmalloc(size);
			blocks[j][0] = (unsigned char)(i + j);
			blocks[j][size - 1] = (unsigned char)j;
			escape(blocks[j]);
		}
		for (long j = 0; j < batch; j++) {
			check(blocks[j][size - 1] == (unsigned char)j, "churn tail byte");
			sum += blocks[j][0];
			free(blocks[j]);
		}
	}
	free(blocks);
	printf("churn %zu %ld %ld sum=%llu\n", size, iters, batch, (unsigned long long)sum);
	return 0;
}
