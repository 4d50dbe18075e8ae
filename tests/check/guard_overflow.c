/* guard_overflow: a loop stores one element past the end of a block (i <= n). */
#include <stdio.h>
#include <stdlib.h>

#define N 16 /* 16 ints: 64 bytes, so the block ends right at the guard page */

__attribute__((noinline)) void fill(int *a, int n)
{
	for (int i = 0; i <= n; i++) /* BUG: <= */
		a[i] = i;
}

int main(void)
{
	int *a = malloc(N * sizeof *a);
	fprintf(stderr, "block at %p\n", (void *)a);
	fill(a, N);
	fprintf(stderr, "survived\n");
	free(a);
	return 0;
}
