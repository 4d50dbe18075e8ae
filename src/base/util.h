/* util.h — compiler hints and small arithmetic helpers shared by every layer. */
#ifndef HG_UTIL_H
#define HG_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define HG_EXPORT __attribute__((visibility("default")))
#define HG_NOINLINE __attribute__((noinline))
/* On a declaration of our own data that the hot paths read: a direct load, no GOT entry. */
#define HG_HIDDEN __attribute__((visibility("hidden")))
#define HG_INLINE static inline __attribute__((always_inline))

#define HG_MiB ((size_t)1 << 20)

static inline size_t hg_align_up(size_t n, size_t align)
{
	return (n + align - 1) & ~(align - 1);
}

/* The mask of n bits from bit i (n + i <= 64): runs of slices in an arena, of blocks in a
 * bitmap word. */
static inline uint64_t hg_bit_run(unsigned n, unsigned i)
{
	return (n == 64 ? ~0ull : (1ull << n) - 1) << i;
}

static inline int hg_is_pow2(size_t n)
{
	return n != 0 && (n & (n - 1)) == 0;
}

#endif
