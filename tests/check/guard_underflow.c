/* guard_underflow: a store one element before the start of a block (run with guard_side=left). */
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) void store_before(long *a)
{
	a[-1] = 42; /* BUG */
}

int main(void)
{
	long *a = malloc(8 * sizeof *a);
	store_before(a);
	fprintf(stderr, "survived\n");
	free(a);
	return 0;
}
