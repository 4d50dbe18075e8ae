/* sizeclass.h — size classes: request size → class index, and each class's span shape. */
#ifndef HG_SIZECLASS_H
#define HG_SIZECLASS_H

#include <stddef.h>
#include <stdint.h>

#include "base/util.h"

#define HG_NCLASSES 96
#define HG_SMALL_MAX_BYTES ((size_t)256 << 10) /* larger requests get a span or mapping of their own */
#define HG_MEDIUM_MAX_BYTES ((size_t)2 << 20)  /* up to here that span comes from the arenas */
#define HG_SLICE_SHIFT 16                      /* spans are made of 64 KiB slices */
#define HG_SLICE_BYTES ((size_t)1 << HG_SLICE_SHIFT)
#define HG_SPAN_MAX_SLOTS 4096                 /* 64 KiB of 16-byte blocks */

struct hg_class {
	uint32_t size;   /* block size in bytes, a multiple of 16 */
	uint16_t slices; /* span length in slices */
	uint16_t count;  /* blocks per span */
};

#define HG_CLASS_TABLE_MAX_BYTES 1024 /* sizes up to here find their class in a table */
#define HG_CLASS_TABLE_ENTRIES (HG_CLASS_TABLE_MAX_BYTES / 16 + 1)

extern HG_HIDDEN const struct hg_class hg_classes[HG_NCLASSES];
extern HG_HIDDEN const uint8_t hg_class_of_small[HG_CLASS_TABLE_ENTRIES];

/* Class of n bytes, n <= HG_CLASS_TABLE_MAX_BYTES. */
static inline unsigned hg_size_class_table(size_t n)
{
	return hg_class_of_small[(n + 15) >> 4];
}

/* Class of the smallest block that holds n bytes (n <= HG_SMALL_MAX_BYTES). Up to 128
 * bytes classes step by 16; above, 8 classes split each power of two (2^k, 2^(k+1)]:
 * up to 1 KiB a table says which, beyond it the arithmetic does. */
static inline unsigned hg_size_class(size_t n)
{
	if (n <= HG_CLASS_TABLE_MAX_BYTES)
		return hg_size_class_table(n);
	unsigned k = 63u - (unsigned)__builtin_clzll(n - 1);
	return (k - 7) * 8 + (unsigned)((n - 1) >> (k - 3));
}

#endif
