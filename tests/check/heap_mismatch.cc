// heap_mismatch.cc — new[]/delete, malloc/delete and new/free crossed, and a sized delete
// told the wrong size, for tests/check_heap.py.
#include <cstdlib>
#include <cstring>
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
	else if (argc > 1 && !strcmp(argv[1], "sized-clean")) {
		drop_node(new Leaf);
		std::string *s = new std::string[3]{ "a", std::string(40, 'b'), "c" };
		delete[] s;
		delete new Shape;
	} else
		drop_array(new int[4]);
	return 0;
}
