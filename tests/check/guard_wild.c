/* guard_wild: a store through a pointer that points nowhere. */
#include <stdint.h>
#include <stdio.h>

__attribute__((noinline)) void poke(int *p)
{
	*p = 1; /* BUG */
}

int main(void)
{
	fprintf(stderr, "writing through a wild pointer\n");
	poke((int *)(uintptr_t)0x100000000123ull);
	fprintf(stderr, "survived\n");
	return 0;
}
