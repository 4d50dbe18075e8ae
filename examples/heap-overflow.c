/* heap-overflow: copy a string into a block one byte too small */
/*
 * The bug: duplicate() sizes the copy with strlen(s), forgetting the terminating NUL, so
 * strcpy writes one byte past the end of the block.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *duplicate(const char *s)
{
	char *copy = malloc(strlen(s)); /* BUG: needs strlen(s) + 1 */
	if (copy != NULL)
		strcpy(copy, s);
	return copy;
}

int main(void)
{
	char *name = duplicate("heapguard");
	fprintf(stderr, "copied \"%s\"\n", name);
	free(name);
	return 0;
}
