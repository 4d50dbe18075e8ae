// heap_lib_new.cc — for tests/check_heap.py: a shared library (built with -DLIB, -O2 and
// -Bsymbolic) with its own operator new and delete over malloc and free, bound to its own
// calls as libLLVM.so binds its; and a program whose new and delete are the checker's. Blocks
// cross between the two forms both ways: no mismatch. With "array", the library's new[]
// released by the program's scalar delete still is one. With -DPLUG, a plugin for "dlclosed".
#include <cstdio>
#include <dlfcn.h>
#include <cstdlib>
#include <new>

#ifdef PLUG
// A plugin whose block outlives it: its allocation stack names code unloaded since.
extern "C" void *plug_make() { return std::malloc(100); }
#elif defined LIB
void *operator new(std::size_t n)
{
	void *p = std::malloc(n ? n : 1);
	if (!p)
		throw std::bad_alloc();
	return p;
}
void *operator new[](std::size_t n) { return operator new(n); }
// At -O2 these tail-call free: no frame of theirs is left on the free's stack.
void operator delete(void *p) noexcept { std::free(p); }
void operator delete(void *p, std::size_t) noexcept { std::free(p); }
void operator delete[](void *p) noexcept { std::free(p); }

static volatile int calls;
__attribute__((noinline)) int *lib_make() { return new int(7); }
__attribute__((noinline)) int *lib_make_array() { return new int[4]; }
__attribute__((noinline)) void lib_drop(int *p)
{
	delete p;
	calls = calls + 1; // keeps the delete a call, not a jump
}
#else
int *lib_make();
int *lib_make_array();
void lib_drop(int *p);

__attribute__((noinline)) static void drop(int *p) { delete p; }

int main(int argc, char **argv)
{
	if (argc > 2) { // "dlclosed" PLUGIN: its malloc'd block deleted after dlclose
		void *h = dlopen(argv[2], RTLD_NOW);
		void *(*make)() = h ? reinterpret_cast<void *(*)()>(dlsym(h, "plug_make")) : nullptr;
		if (!make)
			return 2;
		char *p = static_cast<char *>(make());
		dlclose(h);
		delete p; // should be free
		std::printf("survived\n");
		return 0;
	}
	if (argc > 1) {
		drop(lib_make_array()); // should be delete[]
		return 0;
	}
	int *made = lib_make();
	std::printf("%d\n", *made);
	drop(made);
	lib_drop(new int(5));
	return 0;
}
#endif
