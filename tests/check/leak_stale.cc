// leak_stale.cc — a std::string never deleted, main's pointer to it dead once main returns:
// lost (valgrind and LSan say so), though the constructor's calls left copies of the pointer
// in the stack that exit's frames reuse unset.
#include <string>

int main()
{
	std::string *leak = new std::string(200, 'z');
	(void)leak;
	return 0;
}
