/* guard_maps: a program that takes most of vm.max_map_count itself (a mapping split into
 * 28,000 read-write pages between read-only ones, 56,000 mappings), then makes 20,000 small
 * blocks and uses each. With argv[1] "growing" it splits its mapping as it goes, one page for
 * each block: its mappings grow as fast as guard mode's. Prints "fails=F own=O sum=S": F
 * mallocs returned NULL, O of its own mprotect calls failed; S is 60000 when every block kept
 * its two bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define PAGES 56000
#define BLOCKS 20000

int main(int argc, char **argv)
{
	int growing = argc > 1 && !strcmp(argv[1], "growing");
	char *base = mmap(NULL, (size_t)PAGES * 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED)
		return 1;
	for (long i = 0; i < PAGES && !growing; i += 2)
		if (mprotect(base + i * 4096, 4096, PROT_READ | PROT_WRITE))
			return 1;
	char **v = malloc(BLOCKS * sizeof *v);
	long fails = 0, own = 0, sum = 0;
	for (long i = 0; i < BLOCKS; i++) {
		if (growing && mprotect(base + i * 2 * 4096, 4096, PROT_READ | PROT_WRITE))
			own++;
		v[i] = malloc(100);
		if (!v[i]) {
			fails++;
			continue;
		}
		v[i][0] = 1;
		v[i][99] = 2;
	}
	for (long i = 0; i < BLOCKS; i++)
		sum += v[i] ? v[i][0] + v[i][99] : 0;
	printf("fails=%ld own=%ld sum=%ld\n", fails, own, sum);
	return 0;
}
