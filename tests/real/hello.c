/* hello.c — input for the gcc real-program test: gcc compiles it with and without heapguard. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct entry {
	char name[16];
	int value;
};

static int by_value(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	return x->value != y->value ? (x->value > y->value) - (x->value < y->value) : strcmp(x->name, y->name);
}

int main(void)
{
	struct entry e[64];
	unsigned s = 12345;

	for (int i = 0; i < 64; i++) {
		s = s * 1103515245u + 12345u;
		snprintf(e[i].name, sizeof e[i].name, "item%02d", i);
		e[i].value = (int)(s >> 16) % 1000;
	}
	qsort(e, 64, sizeof e[0], by_value);
	for (int i = 0; i < 64; i += 8)
		printf("%s=%d\n", e[i].name, e[i].value);
	return 0;
}
