/* invalid-free-stack: free the address of a local variable */
/*
 * The bug: the buffer lives on the stack, not on the heap, so it must not be passed to free().
 * Such code usually comes from a function that sometimes returns malloc'd memory and
 * sometimes a local fallback.
 */
#include <stdio.h>
#include <stdlib.h>

/* gcc 12 spots this one at compile time; the example is about catching it at run time. */
#pragma GCC diagnostic ignored "-Wfree-nonheap-object"

int main(void)
{
	char local[32] = "on the stack";
	char *p = local;
	fprintf(stderr, "freeing a stack address\n");
	free(p); /* BUG: p was never returned by malloc */
	fprintf(stderr, "still running after the invalid free\n");
	return 0;
}
