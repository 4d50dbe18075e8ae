/* guard_uninit.c — first uses of guarded blocks: one plain read of never-written heap memory
 * (reported), and uses that are not: a write first, calloc, read() and fgets() into a fresh
 * block, strcmp and memchr of one, realloc of an unused block, a block freed unused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../include/heapguard.h"

/* noinline: the report must name this function as the reader. */
__attribute__((noinline)) static int first_read(const int *v)
{
	return v[3];
}

__attribute__((noinline)) static void write_then_read(void)
{
	char *p = malloc(64);
	p[0] = 'w';
	printf("written %c\n", p[0]);
	free(p);
}

int main(void)
{
	int *v = malloc(10 * sizeof *v); /* BUG: v[3] is read before any write */
	int x = first_read(v);
	/* v[3]: bytes 12-15 of the block, the high half of the word (heapguard.h) */
	printf("read %s\n", x == (int)(HEAPGUARD_UNINIT_WORD >> 32) ? "the poison pattern" : "something else");
	write_then_read();

	int *z = calloc(4, sizeof *z);
	printf("calloc %d\n", z[2]);

	int fds[2];
	char *buf = malloc(16);
	if (pipe(fds) || write(fds[1], "through a pipe", 15) != 15 || read(fds[0], buf, 16) != 15)
		return 1; /* read() into an unused block must work, not fail with EFAULT */
	printf("read() %s\n", buf);

	FILE *f = fopen("/proc/self/cmdline", "r");
	char *line = malloc(256);
	if (!f || !fgets(line, 256, f))
		return 2;
	printf("fgets ok\n");
	fclose(f);

	char *fresh = malloc(16); /* searched and compared unwritten: library calls, as memcpy */
	printf("strcmp %d %d\n", strcmp(fresh, "x") != 0, memchr(fresh, 'x', 16) == NULL);
	free(fresh);

	char *unused = malloc(100);
	unused = realloc(unused, 200);
	strcpy(unused, "grown");
	printf("realloc %s\n", unused);
	free(malloc(32)); /* freed unused */
	free(unused);
	free(line);
	free(buf);
	free(z);
	free(v);
	return 0;
}
