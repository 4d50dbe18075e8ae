#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
static void *lost;
int main(int argc, char **argv) {
	void *h = dlopen(argv[1], RTLD_NOW);
	if (!h) { puts(dlerror()); return 1; }
	void (*leak)(void **) = (void (*)(void **))dlsym(h, "lib_leak");
	void (*ovf)(void) = (void (*)(void))dlsym(h, "lib_overflow");
	leak(&lost);
	ovf();
	dlclose(h);
	lost = NULL;
	return 0;
}
