/* unallocated-strcpy: strcpy into a pointer that was never allocated */
/*
 * The bug: the destination pointer was declared but the malloc() that should have given it
 * memory is missing, so strcpy writes through a NULL pointer.
 */
#include <stdio.h>
#include <string.h>

int main(void)
{
	char *name = NULL; /* BUG: name = malloc(sizeof "heapguard") is missing */
	fprintf(stderr, "copying into an unallocated pointer\n");
	strcpy(name, "heapguard");
	fprintf(stderr, "copied \"%s\"\n", name);
	return 0;
}
