/* heapguard.h — public interface of libheapguard beyond the standard malloc API. */
#ifndef HEAPGUARD_H
#define HEAPGUARD_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Library version, e.g. "0.1.0". */
const char *heapguard_version(void);

/* Writes the allocation statistics (the same lines as HEAPGUARD_OPTIONS=stats=1
 * prints at exit) to stderr now. Counters are collected only when stats=1. */
void heapguard_print_stats(void);

#ifdef __cplusplus
}
#endif
#endif
