/* guard_api: the allocation calls on guarded blocks keep their contracts (alignment, contents,
 * sizes), and blocks too big for a guard slot still work. */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

static void expect(int ok, const char *what)
{
	if (!ok) {
		printf("FAIL %s\n", what);
		failures++;
	}
}

int main(void)
{
	char *z = malloc(0);
	expect(z != NULL && ((uintptr_t)z & 15) == 0, "malloc(0)");
	free(z);
	for (size_t n = 1; n <= 9000; n = n * 3 + 1) {
		unsigned char *p = malloc(n);
		expect(p && ((uintptr_t)p & 15) == 0, "malloc aligned to 16");
		memset(p, 0x5a, n);
		expect(malloc_usable_size(p) == n, "malloc_usable_size");
		unsigned char *q = realloc(p, n * 2);
		expect(q && q[0] == 0x5a && q[n - 1] == 0x5a, "realloc keeps the bytes");
		free(q);
	}
	int *c = calloc(1000, sizeof *c);
	int zero = 1;
	for (int i = 0; i < 1000; i++)
		zero &= c[i] == 0;
	expect(zero, "calloc zeroes");
	free(c);
	size_t aligns[] = { 32, 64, 4096, 65536 };
	for (unsigned i = 0; i < 4; i++) {
		void *a = NULL;
		expect(posix_memalign(&a, aligns[i], 100) == 0 && ((uintptr_t)a & (aligns[i] - 1)) == 0,
		       "posix_memalign");
		memset(a, 1, 100);
		free(a);
	}
	char *big = malloc(1 << 20);
	memset(big, 7, 1 << 20);
	expect(big[(1 << 20) - 1] == 7, "1 MiB block");
	free(big);
	char *huge = malloc(20 << 20); /* over the largest slot: not guarded */
	memset(huge, 7, 20 << 20);
	expect(huge[(20 << 20) - 1] == 7, "20 MiB block");
	free(huge);
	printf(failures ? "failed\n" : "ok\n");
	return failures != 0;
}
