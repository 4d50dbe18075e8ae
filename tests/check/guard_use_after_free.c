/* guard_use_after_free: a read of a block after it was freed; with "neighbour", a read past
 * a live block's guard page into the slot of a freed block (an overflow, not a use of that
 * one). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) void release(char *p)
{
	free(p);
}

__attribute__((noinline)) int peek(const char *p)
{
	return p[10]; /* BUG: p was freed */
}

__attribute__((noinline)) int peek_far(const char *p)
{
	return p[4200]; /* BUG: past the block, its guard page and into the next slot */
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "neighbour")) {
		char *a = malloc(32), *b = malloc(32);
		memset(a, 1, 32);
		memset(b, 1, 32);
		release(b);
		fprintf(stderr, "survived %d\n", peek_far(a));
		return 0;
	}
	char *p = malloc(100);
	for (int i = 0; i < 100; i++)
		p[i] = (char)i;
	release(p);
	int v = peek(p);
	fprintf(stderr, "survived %d\n", v);
	return 0;
}
