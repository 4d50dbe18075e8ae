/* sort.c — sorting without malloc, for the checker's tables (leak groups and ranges, a
 * module's functions): everything here may run inside malloc. */
#include "check/sort.h"

#include <stdint.h>

static void swap_words(uint64_t *a, uint64_t *b, size_t words)
{
	for (size_t i = 0; i < words; i++) {
		uint64_t t = a[i];
		a[i] = b[i];
		b[i] = t;
	}
}

/* Quicksort (median of three, insertion sort below 16): recursion only into the smaller part,
 * so the depth stays under log2(n). Elements are a whole number of words. */
void hgc_sort(void *base, size_t n, size_t size, hgc_less_fn less)
{
	char *a = base;
	size_t w = size / 8;
#define AT(i) (a + (i) * size)
#define SWAP(i, j) swap_words((uint64_t *)(void *)AT(i), (uint64_t *)(void *)AT(j), w)
	while (n > 16) {
		size_t mid = n / 2;
		if (less(AT(mid), AT(0)))
			SWAP(mid, 0);
		if (less(AT(n - 1), AT(0)))
			SWAP(n - 1, 0);
		if (less(AT(n - 1), AT(mid)))
			SWAP(n - 1, mid);
		SWAP(mid, n - 2); /* the pivot waits at n - 2; a[0] <= pivot <= a[n-1] */
		size_t i = 0, j = n - 2;
		for (;;) {
			while (less(AT(++i), AT(n - 2)))
				;
			while (less(AT(n - 2), AT(--j)))
				;
			if (i >= j)
				break;
			SWAP(i, j);
		}
		SWAP(i, n - 2);
		if (i < n - i - 1) {
			hgc_sort(a, i, size, less);
			a = AT(i + 1);
			n = n - i - 1;
		} else {
			hgc_sort(AT(i + 1), n - i - 1, size, less);
			n = i;
		}
	}
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && less(AT(j), AT(j - 1)); j--)
			SWAP(j, j - 1);
#undef AT
#undef SWAP
}
