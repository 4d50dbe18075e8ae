/* overlapping-copy: strcpy from a buffer into itself */
/*
 * The bug: the leading blanks of a line are dropped by copying the rest of it over them with
 * strcpy, whose source and destination must not overlap (memmove's job). glibc copies with
 * vector instructions, forwards or backwards as the length and alignment suit it, so the
 * result can change from one machine or glibc to the next.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void trim_left(char *line)
{
	size_t blanks = strspn(line, " \t");
	strcpy(line, line + blanks); /* BUG: memmove(line, line + blanks, strlen(line + blanks) + 1) */
}

int main(void)
{
	char *line = malloc(64);
	if (line == NULL)
		return 1;
	strcpy(line, "    indented text");
	trim_left(line);
	fprintf(stderr, "trimmed: \"%s\"\n", line);
	free(line);
	return 0;
}
