/* use-after-free: read and write a block after freeing it */
/*
 * The bug: the record is still used after free(). Without checking, the read usually returns
 * stale data, and the write silently corrupts whatever the allocator reused the memory for.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct record {
	int id;
	char name[28];
};

/* gcc 12 spots this one at compile time; the example is about catching it at run time. */
#pragma GCC diagnostic ignored "-Wuse-after-free"

int main(void)
{
	struct record *r = malloc(sizeof *r);
	if (r == NULL)
		return 1;
	r->id = 42;
	strcpy(r->name, "answer");
	free(r);
	fprintf(stderr, "id after free: %d\n", r->id); /* BUG: read of freed memory */
	r->id = 7;                                      /* BUG: write to freed memory */
	return 0;
}
