/* uninitialized-read: use malloc'd memory before writing it */
/*
 * The bug: malloc() does not clear memory, yet the counters are summed before being set.
 * The result depends on what the block held before (here: a scratch buffer freed just
 * earlier); calloc() or a memset was meant.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { COUNTERS = 16 };

/* gcc 12 spots this one at compile time; the example is about catching it at run time. */
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

int main(void)
{
	char *scratch = malloc(COUNTERS * sizeof(long));
	if (scratch == NULL)
		return 1;
	memset(scratch, 0x11, COUNTERS * sizeof(long));
	free(scratch);

	long *counters = malloc(COUNTERS * sizeof *counters); /* BUG: calloc() was meant */
	if (counters == NULL)
		return 1;
	long total = 0;
	for (size_t i = 0; i < COUNTERS; i++)
		total += counters[i];
	fprintf(stderr, "total of never-written counters: %ld\n", total);
	free(counters);
	return 0;
}
