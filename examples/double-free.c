/* double-free: free the same block twice */
/*
 * The bug: two owners both believe they must release the buffer. With a plain allocator the
 * second free() corrupts the free lists and a later malloc() can return the block twice.
 */
#include <stdio.h>
#include <stdlib.h>

/* gcc 12 spots this one at compile time; the example is about catching it at run time. */
#pragma GCC diagnostic ignored "-Wuse-after-free"

int main(void)
{
	char *buffer = malloc(64);
	fprintf(stderr, "first free\n");
	free(buffer);
	fprintf(stderr, "second free\n");
	free(buffer); /* BUG: already freed */
	fprintf(stderr, "still running after the double free\n");
	return 0;
}
