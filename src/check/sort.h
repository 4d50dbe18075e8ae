/* sort.h — sorting without malloc (sort.c). */
#ifndef HG_CHECK_SORT_H
#define HG_CHECK_SORT_H

#include <stddef.h>

typedef int (*hgc_less_fn)(const void *a, const void *b);
/* Sorts n elements of `size` bytes, a whole number of 8-byte words, by less; not stable. */
void hgc_sort(void *base, size_t n, size_t size, hgc_less_fn less);

#endif
