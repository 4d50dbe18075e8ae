/* table.h — block.c's record table as heap.c uses it: insert, update under the lock, remove. */
#ifndef HG_CHECK_TABLE_H
#define HG_CHECK_TABLE_H

#include "check/check.h"

/* Where the record of the block holding an address sits, the block's key (its core), and
 * the room the allocator gave it. */
struct hgc_slot {
	struct hgc_rec *rec;
	char *key;
	size_t room;
};
/* Finds the record of the block holding addr, which the caller will insert or update soon,
 * and starts loading it: records are cold (the quarantine hands out blocks freed long ago),
 * and a stack capture in between hides the cache miss. rec is NULL when there is none yet. */
struct hgc_slot hgc_table_find(const void *addr);
/* Copies the record at `at` (from hgc_table_find) into *out without a lock (a seqlock read);
 * 0 when it holds no record of its block. */
int hgc_table_read(struct hgc_slot at, struct hgc_block *out);
/* Stores rec (keyed by rec->core) at `at` when hgc_table_find gave it for that block, else
 * where it belongs; 0 when out of memory. */
int hgc_table_insert(const struct hgc_block *rec, struct hgc_slot at);
/* Runs fn on the record at `at` (from hgc_table_find) under its lock, NULL when it does not
 * hold its block's record, so that a check and a state change are one step, and stores the
 * fields fn may change: state, reported, free_stack and free_thread. Returns what fn
 * returns. */
int hgc_table_update(struct hgc_slot at, int (*fn)(struct hgc_block *b, void *arg), void *arg);
/* Copies the record of the block at core into *out and clears it: the block is going back
 * to the allocator. 0 when core has no record. */
int hgc_table_take(char *core, struct hgc_block *out);
/* The room the allocator gave the block at core; 0 when core is no block's start. */
size_t hgc_table_room(const char *core);
void hgc_table_fork_prepare(void);
void hgc_table_fork_parent(void);
void hgc_table_fork_child(void);

#endif
