// heap_own_new.cc — a program that replaces operator new (with malloc, as the standard allows)
// and keeps the library's operator delete, for tests/check_heap.py: its blocks reach delete as
// malloc's, which is no mismatch there; new[] released by delete still is one, and with
// "array", malloc's block released by delete[] (the array forms are the library's).
#include <cstdio>
#include <cstdlib>
#include <new>

static int news;

void *operator new(std::size_t n)
{
	news++;
	void *p = std::malloc(n ? n : 1);
	if (!p)
		throw std::bad_alloc();
	return p;
}

__attribute__((noinline)) static void drop(int *p) { delete p; }

__attribute__((noinline)) static void drop_array(char *p) { delete[] p; }

int main(int argc, char **)
{
	if (argc > 1) {
		drop_array(static_cast<char *>(std::malloc(10))); // should be free
		return 0;
	}
	for (int i = 0; i < 3; i++)
		drop(new int(i));
	drop(new int[4]); // should be delete[]
	std::printf("news=%d\n", news);
	return 0;
}
