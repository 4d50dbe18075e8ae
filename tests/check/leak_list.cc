// leak_list.cc — a std::list of 1000 heap strings, its only pointer dropped: the list object
// definitely lost, its nodes and strings indirectly (valgrind says so). libstdc++'s code made
// the nodes with one of them in a callee-saved register, which the stack cache kept.
#include <list>
#include <string>

__attribute__((noinline)) static void leak(int n)
{
	auto *l = new std::list<std::string>(n, std::string(20, 'q'));
	(void)l;
}

int main()
{
	leak(1000);
	return 0;
}
