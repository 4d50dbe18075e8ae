// heap_mismatch.cc — new[]/delete, malloc/delete and new/free crossed, a sized delete told the
// wrong size, and new[] of a size too big, for tests/check_heap.py.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

__attribute__((noinline)) static void drop_array(int *a) { delete a; } // should be delete[]
__attribute__((noinline)) static void drop_malloced(int *p) { delete p; } // should be free

// g++ passes sizeof(Shape) to the sized operator delete: its destructor is not virtual.
struct Shape { int kind; ~Shape() {} };
struct Circle : Shape { double x, y, r; };
__attribute__((noinline)) static void drop_shape(Shape *s) { delete s; } // the destructor should be virtual

// The same through a virtual destructor, and arrays with a cookie: the sizes agree.
struct Node { int kind; virtual ~Node() {} };
struct Leaf : Node { double value[3]; };
__attribute__((noinline)) static void drop_node(Node *n) { delete n; }

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "malloc-delete"))
		drop_malloced(static_cast<int *>(malloc(sizeof(int))));
	else if (argc > 1 && !strcmp(argv[1], "sized-delete"))
		drop_shape(new Circle);
	else if (argc > 1 && !strcmp(argv[1], "too-big")) { // one new[] and one aligned new[], each 2^48 bytes
		volatile size_t big = (size_t)1 << 48; // not a constant the compiler could refuse
		size_t n = big;
		for (int aligned = 0; aligned < 2; aligned++) {
			try {
				char *p = aligned ? new (std::align_val_t(64)) char[n] : new char[n];
				printf("got %p\n", (void *)p);
			} catch (const std::bad_alloc &) {
				printf("bad_alloc\n");
			}
		}
	} else if (argc > 1 && !strcmp(argv[1], "sized-clean")) {
		drop_node(new Leaf);
		std::string *s = new std::string[3]{ "a", std::string(40, 'b'), "c" };
		delete[] s;
		delete new Shape;
	} else
		drop_array(new int[4]);
	return 0;
}
