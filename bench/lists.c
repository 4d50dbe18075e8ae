/* Small-object build and teardown: many linked lists grown interleaved, then freed one list at a time. */
#include "bench.h"

struct node {
	struct node *next;
	uint32_t size; /* bytes allocated for this node, 16..128 */
	uint32_t value;
};

int main(int argc, char **argv)
{
	long nlists = arg_long(argc, argv, 1, 256);
	long nodes = arg_long(argc, argv, 2, 1000000);
	long rounds = arg_long(argc, argv, 3, 6);
	struct node **heads = xmalloc((size_t)nlists * sizeof *heads);
	uint64_t rng = 0x5eed;
	uint64_t sum = 0;

	for (long r = 0; r < rounds; r++) {
		for (long l = 0; l < nlists; l++)
			heads[l] = NULL;
		/* Consecutive allocations go to random lists, so freeing a list
		 * later touches blocks scattered over the whole heap. */
		for (long i = 0; i < nodes; i++) {
			uint32_t size = (uint32_t)rng_range(&rng, sizeof(struct node), 128);
			struct node *n = xmalloc(size);
			long l = (long)(rng_next(&rng) % (uint64_t)nlists);
			n->size = size;
			n->value = (uint32_t)i;
			((unsigned char *)n)[size - 1] = (unsigned char)i;
			n->next = heads[l];
			heads[l] = n;
		}
		for (long l = 0; l < nlists; l++) {
			while (heads[l] != NULL) {
				struct node *n = heads[l];
				check(((unsigned char *)n)[n->size - 1] == (unsigned char)n->value, "list node tail");
				heads[l] = n->next;
				sum += n->value;
				free(n);
			}
		}
	}
	free(heads);
	printf("lists %ld %ld %ld sum=%llu\n", nlists, nodes, rounds, (unsigned long long)sum);
	return 0;
}
