// heap_mismatch.cc — new[]/delete, malloc/delete and new/free crossed, for tests/check_heap.py.
#include <cstdlib>
#include <cstring>

__attribute__((noinline)) static void drop_array(int *a) { delete a; } // should be delete[]
__attribute__((noinline)) static void drop_malloced(int *p) { delete p; } // should be free

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "malloc-delete"))
		drop_malloced(static_cast<int *>(malloc(sizeof(int))));
	else
		drop_array(new int[4]);
	return 0;
}
