/* invalid-free-interior: free a pointer into the middle of a block */
/*
 * The bug: the pointer was advanced past a header before being freed; free() must be given
 * exactly what malloc() returned.
 */
#include <stdio.h>
#include <stdlib.h>

/* gcc 12 spots this one at compile time; the example is about catching it at run time. */
#pragma GCC diagnostic ignored "-Wfree-nonheap-object"

int main(void)
{
	char *packet = malloc(128);
	if (packet == NULL)
		return 1;
	char *payload = packet + 16;
	fprintf(stderr, "freeing the payload instead of the packet\n");
	free(payload); /* BUG: should be free(packet) */
	fprintf(stderr, "still running after the invalid free\n");
	return 0;
}
