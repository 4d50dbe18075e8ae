/* clean: a correct program, for comparison */
/*
 * Every block is sized for its contents, initialized before use and freed exactly once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
	const char *words[] = { "heap", "guard" };
	size_t n = sizeof words / sizeof words[0];
	char **copies = calloc(n, sizeof *copies);
	if (copies == NULL)
		return 1;
	for (size_t i = 0; i < n; i++) {
		copies[i] = malloc(strlen(words[i]) + 1);
		if (copies[i] == NULL)
			return 1;
		strcpy(copies[i], words[i]);
	}
	fprintf(stderr, "copied \"%s\" and \"%s\"\n", copies[0], copies[1]);
	for (size_t i = 0; i < n; i++)
		free(copies[i]);
	free(copies);
	return 0;
}
