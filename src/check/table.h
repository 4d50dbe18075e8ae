/* table.h — block.c's record table as heap.c uses it: insert, update under the lock, remove. */
#ifndef HG_CHECK_TABLE_H
#define HG_CHECK_TABLE_H

#include "check/check.h"

void hgc_table_init(void);
/* Starts loading the record of the block holding addr, which the caller will update soon:
 * records are cold (the quarantine hands out blocks freed long ago), and a stack capture
 * in between hides the cache miss. */
void hgc_table_prefetch(const void *addr);
/* Stores a copy of rec (keyed by rec->core); NULL when out of memory. */
struct hgc_block *hgc_table_insert(const struct hgc_block *rec);
/* Runs fn on the record of the block whose place holds addr (NULL when there is none) under
 * its lock, so that a check and a state change are one step; returns what fn returns. */
int hgc_table_update(const void *addr, int (*fn)(struct hgc_block *b, void *arg), void *arg);
void hgc_table_remove(const char *core);
void hgc_table_fork_prepare(void);
void hgc_table_fork_parent(void);
void hgc_table_fork_child(void);

#endif
