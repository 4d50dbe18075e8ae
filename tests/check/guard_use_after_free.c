/* guard_use_after_free: a read of a block after it was freed. */
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) void release(char *p)
{
	free(p);
}

__attribute__((noinline)) int peek(const char *p)
{
	return p[10]; /* BUG: p was freed */
}

int main(void)
{
	char *p = malloc(100);
	for (int i = 0; i < 100; i++)
		p[i] = (char)i;
	release(p);
	int v = peek(p);
	fprintf(stderr, "survived %d\n", v);
	return 0;
}
