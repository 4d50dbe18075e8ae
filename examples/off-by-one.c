/* off-by-one: a loop stores one element past the end of an array */
/*
 * The bug: the loop runs while i <= n, so its last pass writes a[n], the element just after
 * the n that were allocated.
 */
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
	size_t n = 10;
	int *a = malloc(n * sizeof *a);
	if (a == NULL)
		return 1;
	for (size_t i = 0; i <= n; i++) /* BUG: i < n */
		a[i] = (int)i;
	fprintf(stderr, "filled %zu elements\n", n);
	free(a);
	return 0;
}
