/* leak: lose the last pointer to blocks that were never freed */
/*
 * The bug: each pass allocates a line and overwrites the only pointer to the previous one,
 * so nine of the ten blocks are unreachable at exit and the last one is never freed either.
 */
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
	char *line = NULL;
	for (int i = 0; i < 10; i++) {
		line = malloc(100); /* BUG: the previous line is never freed */
		if (line == NULL)
			return 1;
		snprintf(line, 100, "line %d", i);
	}
	fprintf(stderr, "last: %s\n", line);
	return 0; /* BUG: line is not freed either */
}
