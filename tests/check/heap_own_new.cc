// heap_own_new.cc — a program that replaces operator new (with malloc, as the standard allows)
// and keeps the library's operator delete, for tests/check_heap.py: its blocks reach delete as
// malloc's, which is no mismatch there; new[] released by delete still is one.
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

int main()
{
	for (int i = 0; i < 3; i++)
		drop(new int(i));
	drop(new int[4]); // should be delete[]
	std::printf("news=%d\n", news);
	return 0;
}
