/* guard_many: 100000 live small blocks at once, then a checksum: more than any guard budget. */
#include <stdio.h>
#include <stdlib.h>

#define BLOCKS 100000

int main(void)
{
	static int *blocks[BLOCKS];
	for (int i = 0; i < BLOCKS; i++) {
		blocks[i] = malloc(2 * sizeof(int));
		if (!blocks[i]) {
			printf("malloc failed at %d\n", i);
			return 1;
		}
		blocks[i][0] = i;
		blocks[i][1] = -i;
	}
	long long sum = 0;
	for (int i = 0; i < BLOCKS; i++)
		sum += blocks[i][0] + 2LL * blocks[i][1];
	for (int i = 0; i < BLOCKS; i++)
		free(blocks[i]);
	printf("sum %lld\n", sum);
	return 0;
}
