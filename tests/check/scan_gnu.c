/* scan_gnu.c — the GNU sscanf (built -std=gnu89, so the symbol sscanf, not __isoc99_sscanf),
 * where %as allocates: the word after it overflows an 8-byte block, and that is the one
 * report check_intercept.py wants. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
	char *alloced = NULL;
	char *d = malloc(8);
	int r = sscanf("first overflowing", "%as %s", &alloced, d); /* 11 bytes and the NUL */
	printf("%d %s\n", r, alloced);
	free(alloced);
	return 0;
}
