/* heapguard.h — public interface of libheapguard beyond the standard malloc API. */
#ifndef HEAPGUARD_H
#define HEAPGUARD_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* In libheapguard-check.so, malloc fills a block with this word repeated from its first byte
 * (byte i of the block is byte i % 8 of the word, little-endian): an 8-byte load at an aligned
 * offset of never-written memory reads the word, a 4-byte one half of it. */
#define HEAPGUARD_UNINIT_WORD 0xbef9e3c0fdd9f7c1ull

/* Library version, e.g. "0.1.0". */
const char *heapguard_version(void);

/* Writes the allocation statistics (the same lines as HEAPGUARD_OPTIONS=stats=1
 * prints at exit) to stderr now. Counters are collected only when stats=1; without it,
 * one line gives the bytes mapped and says so. */
void heapguard_print_stats(void);

/* Runs the leak check now (in libheapguard-check.so; the fast library returns 0): the live blocks no root reaches are
 * reported on the log as at exit ("LEAK: KIND: ..." groups, then "LEAK SUMMARY: ..."), with
 * the detail leak_check asks for (leak_check=no turns off the check at exit only). Returns
 * the bytes definitely and indirectly lost, 0 when none (and before the first allocation).
 * Programs that may run without the library can declare it weak, or find it with dlsym. */
size_t heapguard_check_leaks(void);

#ifdef __cplusplus
}
#endif
#endif
