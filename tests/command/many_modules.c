/* many_modules: dlopens each library named on the command line and calls its make(), which
 * returns a block that is then lost. With "full", it takes every mapping vm.max_map_count
 * allows after its first malloc, then writes through NULL. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static void *volatile sink;

int main(int argc, char **argv)
{
	int full = argc > 1 && !strcmp(argv[1], "full");
	long pairs = 0;
	void *volatile early = full ? malloc(30) : NULL; /* the heap's first arena, before the rest */
	for (; full; pairs++) {
		char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED || mprotect(m, 4096, PROT_READ))
			break;
	}
	for (int i = 1 + full; i < argc; i++) {
		void *lib = dlopen(argv[i], RTLD_NOW);
		void *(*make)(void) = lib ? (void *(*)(void))dlsym(lib, "make") : NULL;
		if (!make) {
			printf("%s: %s\n", argv[i], dlerror());
			return 1;
		}
		sink = make();
		sink = NULL;
	}
	if (full) {
		printf("%ld pairs\n", pairs); /* stdout's buffer: the last mapping there was */
		fflush(stdout);
		*(volatile int *)NULL = 1; /* NULL-WRITE */
		free(early);
	}
	return 0;
}
