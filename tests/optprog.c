/* optprog.c — a program with known allocations, run by options.sh under different HEAPGUARD_OPTIONS. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { SMALL_COUNT = 1000, SMALL_BYTES = 100, LARGE_COUNT = 10, LARGE_BYTES = 8 << 20 };

/* 1000 blocks of 100 bytes and 10 of 8 MiB, all live at once within each group; calls
 * heapguard_print_stats (found through the dynamic linker) between the groups. */
static int known_allocations(void)
{
	static char *small[SMALL_COUNT], *large[LARGE_COUNT];
	void (*print_stats)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "heapguard_print_stats");
	int i;

	for (i = 0; i < SMALL_COUNT; i++)
		memset(small[i] = malloc(SMALL_BYTES), 1, SMALL_BYTES);
	if (print_stats == NULL) {
		fprintf(stderr, "optprog: heapguard_print_stats not found\n");
		return 1;
	}
	print_stats();
	for (i = 0; i < SMALL_COUNT; i++)
		free(small[i]);
	for (i = 0; i < LARGE_COUNT; i++)
		memset(large[i] = malloc(LARGE_BYTES), 2, LARGE_BYTES);
	for (i = 0; i < LARGE_COUNT; i++)
		free(large[i]);
	return 0;
}

/* start_brk, field 47 of /proc/self/stat: where the heap began before anything, the library
 * included, moved the break. */
static uintptr_t start_brk(void)
{
	char buf[4096], *p;
	FILE *f = fopen("/proc/self/stat", "r");
	size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
	int field;

	if (f)
		fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	/* the text after ')' starts at field 3 */
	for (field = 2; p != NULL && field < 47; field++)
		p = strchr(p + 1, ' ');
	return p ? (uintptr_t)strtoull(p + 1, NULL, 10) : 0;
}

/* Prints how many of 1000 small blocks lie in the brk heap [start_brk, sbrk(0)). */
static int count_in_brk_heap(void)
{
	enum { N = 1000 };
	static void *p[N];
	uintptr_t lo = start_brk(), hi;
	int i, inside = 0;

	for (i = 0; i < N; i++)
		p[i] = malloc(16 + (size_t)i % 1000);
	hi = (uintptr_t)sbrk(0);
	for (i = 0; i < N; i++)
		inside += (uintptr_t)p[i] >= lo && (uintptr_t)p[i] < hi;
	for (i = 0; i < N; i++)
		free(p[i]);
	printf("in_brk=%d of %d (start_brk %#lx, brk %#lx)\n", inside, N, (unsigned long)lo, (unsigned long)hi);
	return lo == 0;
}

int main(int argc, char **argv)
{
	int rc = 0;

	if (argc > 1 && strcmp(argv[1], "stats") == 0)
		rc = known_allocations();
	else if (argc > 1 && strcmp(argv[1], "brk") == 0)
		rc = count_in_brk_heap();
	printf("done\n");
	return rc;
}
