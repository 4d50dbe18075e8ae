/* threads.c — the allocator under threads: random churn, cross-thread frees, thread exit and churn, fork. */
#define _GNU_SOURCE
#include "util.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ASSERT_NO_THREAD_FAILURE() CHECK(!atomic_load(&tu_failed), "%s", tu_failure)

/* Mostly small sizes, some medium, a rare large one: the mix real programs have. */
static size_t random_size(uint64_t *s)
{
	uint64_t r = tu_random(s) % 1000;

	if (r < 900)
		return 1 + tu_random(s) % 256;
	if (r < 995)
		return 257 + tu_random(s) % 8000;
	return 8257 + tu_random(s) % (512 * 1024);
}

static uint64_t key_of(const void *p, size_t n) { return (uintptr_t)p * 31 + n; }

/* Checks a block filled with tu_fill(p, n, key_of(p, n)); returns 0 and records a failure if not. */
static int verify(const char *what, const void *p, size_t n)
{
	size_t bad = tu_check(p, n, key_of(p, n));

	if (bad != n)
		tu_thread_fail("%s: block %p of %zu bytes changed at offset %zu", what, p, n, bad);
	return bad == n;
}

struct churn_arg {
	uint64_t seed;
	int ops;
};

static void *churn_thread(void *argp)
{
	enum { SLOTS = 512 };
	struct churn_arg *arg = argp;
	struct { char *p; size_t n; } slot[SLOTS] = {{0}};
	uint64_t s = arg->seed;

	for (int op = 0; op < arg->ops && !atomic_load(&tu_failed); op++) {
		int i = (int)(tu_random(&s) % SLOTS);

		if (slot[i].p != NULL) {
			verify("churn", slot[i].p, slot[i].n);
			if (tu_random(&s) % 4 == 0) {
				size_t n = random_size(&s);
				char *q = realloc(slot[i].p, n);

				if (q == NULL) {
					tu_thread_fail("realloc(%zu) failed", n);
					break;
				}
				slot[i].p = q;
				slot[i].n = n;
				tu_fill(q, n, key_of(q, n));
				continue;
			}
			free(slot[i].p);
			slot[i].p = NULL;
			continue;
		}
		slot[i].n = random_size(&s);
		slot[i].p = malloc(slot[i].n);
		if (slot[i].p == NULL) {
			tu_thread_fail("malloc(%zu) failed", slot[i].n);
			break;
		}
		tu_fill(slot[i].p, slot[i].n, key_of(slot[i].p, slot[i].n));
	}
	for (int i = 0; i < SLOTS; i++)
		if (slot[i].p != NULL) {
			verify("churn at exit", slot[i].p, slot[i].n);
			free(slot[i].p);
		}
	return NULL;
}

/* A producer thread allocates 4 blocks a round and a consumer thread frees them. */
enum { ROUNDS = 200, PER_ROUND = 4, HANDOFF_BYTES = 1000 };
static void *handoff[PER_ROUND];
static pthread_barrier_t handed, freed;

static void *consume_rounds(void *arg)
{
	(void)arg;
	for (int r = 0; r < ROUNDS; r++) {
		pthread_barrier_wait(&handed);
		for (int i = 0; i < PER_ROUND; i++)
			free(handoff[i]);
		pthread_barrier_wait(&freed);
	}
	return NULL;
}

static void *produce_rounds(void *arg)
{
	void **seen = arg; /* ROUNDS * PER_ROUND addresses */

	for (int r = 0; r < ROUNDS; r++) {
		for (int i = 0; i < PER_ROUND; i++) {
			handoff[i] = seen[r * PER_ROUND + i] = malloc(HANDOFF_BYTES);
			if (handoff[i] == NULL)
				tu_thread_fail("malloc(%d) failed", HANDOFF_BYTES);
			else
				memset(handoff[i], r, HANDOFF_BYTES);
		}
		pthread_barrier_wait(&handed);
		pthread_barrier_wait(&freed);
	}
	return NULL;
}

/* Blocks another thread freed are used again before the allocating thread touches fresh
 * memory: over 200 rounds of 4 blocks the producer sees a handful of addresses, not the
 * 64 blocks of its whole span. Runs first, so that the producer's thread cache is new. */
static void test_cross_thread_frees_reused_before_fresh_blocks(void **state)
{
	static void *seen[ROUNDS * PER_ROUND];
	pthread_t producer, consumer;
	int distinct = 0;

	(void)state;
	tu_reset_failure();
	pthread_barrier_init(&handed, NULL, 2);
	pthread_barrier_init(&freed, NULL, 2);
	assert_int_equal(pthread_create(&consumer, NULL, consume_rounds, NULL), 0);
	assert_int_equal(pthread_create(&producer, NULL, produce_rounds, seen), 0);
	pthread_join(producer, NULL);
	pthread_join(consumer, NULL);
	pthread_barrier_destroy(&handed);
	pthread_barrier_destroy(&freed);
	ASSERT_NO_THREAD_FAILURE();
	for (int i = 0; i < ROUNDS * PER_ROUND; i++) {
		int j = 0;
		while (j < i && seen[j] != seen[i])
			j++;
		distinct += j == i;
	}
	CHECK(distinct <= 2 * PER_ROUND, "%d distinct addresses over %d rounds of %d blocks", distinct, ROUNDS,
	      PER_ROUND);
}

/* The main thread builds a table and waits in pthread_join while a worker frees it all and
 * builds its own: the table's memory must serve the worker, not stay resident beside its. */
enum { TABLE_BLOCKS = 128 * 1024, TABLE_BLOCK_BYTES = 256 };
static char **table;

static void *free_table_and_rebuild(void *arg)
{
	(void)arg;
	for (int i = 0; i < TABLE_BLOCKS; i++)
		free(table[i]);
	for (int i = 0; i < TABLE_BLOCKS; i++) {
		table[i] = malloc(TABLE_BLOCK_BYTES);
		if (table[i] == NULL) {
			tu_thread_fail("malloc(%d) failed in the worker", TABLE_BLOCK_BYTES);
			return NULL;
		}
		memset(table[i], 2, TABLE_BLOCK_BYTES);
	}
	return NULL;
}

static void test_blocks_freed_by_others_reused_while_owner_waits(void **state)
{
	pthread_t worker;
	size_t before, after;

	(void)state;
	tu_reset_failure();
	table = malloc(TABLE_BLOCKS * sizeof *table);
	assert_non_null(table);
	for (int i = 0; i < TABLE_BLOCKS; i++) {
		table[i] = malloc(TABLE_BLOCK_BYTES);
		assert_non_null(table[i]);
		memset(table[i], 1, TABLE_BLOCK_BYTES);
	}
	before = tu_rss_bytes();
	assert_int_equal(pthread_create(&worker, NULL, free_table_and_rebuild, NULL), 0);
	pthread_join(worker, NULL);
	after = tu_rss_bytes();
	ASSERT_NO_THREAD_FAILURE();
	for (int i = 0; i < TABLE_BLOCKS; i++)
		free(table[i]);
	free(table);
	/* Without the reuse the worker's table would add its whole 32 MiB. */
	CHECK(after < before + 8 * MIB, "RSS %zu MiB with the first table, %zu MiB after the worker rebuilt it",
	      before / MIB, after / MIB);
}

/* Rounds in which half the threads allocate and the other half free what the first half
 * allocated the round before, while the allocators of that round wait at the barrier: the
 * sweep that releases spans of waiting owners runs all the time, next to owners that wake
 * up, and every block is checked before it is freed. */
enum { SWAP_THREADS = 8, SWAP_ROUNDS = 60, SWAP_BLOCKS = 2000 };
static struct { char *p; size_t n; } swap_blocks[SWAP_THREADS][SWAP_BLOCKS];
static pthread_barrier_t swap_barrier;

static void *swap_rounds(void *arg)
{
	int me = (int)(uintptr_t)arg;
	uint64_t s = 0x5eed + (uint64_t)me;

	for (int r = 0; r < SWAP_ROUNDS; r++) {
		if ((me + r) % 2 == 0) {
			for (int i = 0; i < SWAP_BLOCKS; i++) {
				size_t n = 1 + tu_random(&s) % (tu_random(&s) % 8 == 0 ? 20000 : 600);
				char *p = malloc(n);

				if (p == NULL) {
					tu_thread_fail("malloc(%zu) failed", n);
					break;
				}
				tu_fill(p, n, key_of(p, n));
				swap_blocks[me][i].p = p;
				swap_blocks[me][i].n = n;
			}
		} else if (r > 0) {
			int from = (me + 2) % SWAP_THREADS; /* allocated in round r - 1 */
			for (int i = 0; i < SWAP_BLOCKS; i++) {
				verify("swapped", swap_blocks[from][i].p, swap_blocks[from][i].n);
				free(swap_blocks[from][i].p);
				swap_blocks[from][i].p = NULL;
			}
		}
		pthread_barrier_wait(&swap_barrier);
	}
	return NULL;
}

static void test_threads_freeing_for_waiting_owners(void **state)
{
	pthread_t t[SWAP_THREADS];

	(void)state;
	tu_reset_failure();
	pthread_barrier_init(&swap_barrier, NULL, SWAP_THREADS);
	for (int i = 0; i < SWAP_THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, swap_rounds, (void *)(uintptr_t)i), 0);
	for (int i = 0; i < SWAP_THREADS; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&swap_barrier);
	ASSERT_NO_THREAD_FAILURE();
	for (int i = 0; i < SWAP_THREADS; i++)
		for (int j = 0; j < SWAP_BLOCKS; j++)
			if (swap_blocks[i][j].p != NULL) {
				CHECK(verify("left", swap_blocks[i][j].p, swap_blocks[i][j].n), "%s", tu_failure);
				free(swap_blocks[i][j].p);
			}
}

static void test_random_churn_2_to_16_threads(void **state)
{
	static const int counts[] = {2, 4, 8, 16};
	pthread_t t[16];
	struct churn_arg args[16];

	(void)state;
	tu_reset_failure();
	for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
		for (int i = 0; i < counts[c]; i++) {
			args[i].seed = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1) + c;
			args[i].ops = 800000 / counts[c];
			assert_int_equal(pthread_create(&t[i], NULL, churn_thread, &args[i]), 0);
		}
		for (int i = 0; i < counts[c]; i++)
			pthread_join(t[i], NULL);
		ASSERT_NO_THREAD_FAILURE();
	}
}

/* A bounded queue: producers allocate, consumers verify and free, so nearly every free is remote. */
enum { QUEUE_CAP = 1024, PRODUCERS = 2, CONSUMERS = 2, PER_PRODUCER = 200000 };
static struct {
	pthread_mutex_t lock;
	pthread_cond_t not_empty, not_full;
	struct { char *p; size_t n; } item[QUEUE_CAP];
	int head, count, producers_left;
} queue = {.lock = PTHREAD_MUTEX_INITIALIZER, .not_empty = PTHREAD_COND_INITIALIZER,
	   .not_full = PTHREAD_COND_INITIALIZER};

static void *producer(void *arg)
{
	uint64_t s = (uintptr_t)arg * 7919 + 1;

	for (int i = 0; i < PER_PRODUCER && !atomic_load(&tu_failed); i++) {
		size_t n = random_size(&s);
		char *p = malloc(n);

		if (p == NULL) {
			tu_thread_fail("producer: malloc(%zu) failed", n);
			break;
		}
		tu_fill(p, n, key_of(p, n));
		pthread_mutex_lock(&queue.lock);
		while (queue.count == QUEUE_CAP)
			pthread_cond_wait(&queue.not_full, &queue.lock);
		queue.item[(queue.head + queue.count++) % QUEUE_CAP].p = p;
		queue.item[(queue.head + queue.count - 1) % QUEUE_CAP].n = n;
		pthread_cond_signal(&queue.not_empty);
		pthread_mutex_unlock(&queue.lock);
	}
	pthread_mutex_lock(&queue.lock);
	queue.producers_left--;
	pthread_cond_broadcast(&queue.not_empty);
	pthread_mutex_unlock(&queue.lock);
	return NULL;
}

static void *consumer(void *arg)
{
	(void)arg;
	for (;;) {
		char *p;
		size_t n;

		pthread_mutex_lock(&queue.lock);
		while (queue.count == 0 && queue.producers_left > 0)
			pthread_cond_wait(&queue.not_empty, &queue.lock);
		if (queue.count == 0) {
			pthread_mutex_unlock(&queue.lock);
			return NULL;
		}
		p = queue.item[queue.head].p;
		n = queue.item[queue.head].n;
		queue.head = (queue.head + 1) % QUEUE_CAP;
		queue.count--;
		pthread_cond_signal(&queue.not_full);
		pthread_mutex_unlock(&queue.lock);
		verify("cross-thread", p, n);
		free(p);
	}
}

/* At most QUEUE_CAP blocks are live, so remote frees that are never reclaimed show up as RSS growth
 * (400000 blocks of ~1 KiB average would be ~400 MiB). */
static void test_cross_thread_frees(void **state)
{
	pthread_t t[PRODUCERS + CONSUMERS];
	size_t before, after;

	(void)state;
	tu_reset_failure();
	before = tu_rss_bytes();
	queue.producers_left = PRODUCERS;
	for (int i = 0; i < PRODUCERS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, producer, (void *)(uintptr_t)i), 0);
	for (int i = 0; i < CONSUMERS; i++)
		assert_int_equal(pthread_create(&t[PRODUCERS + i], NULL, consumer, NULL), 0);
	for (int i = 0; i < PRODUCERS + CONSUMERS; i++)
		pthread_join(t[i], NULL);
	after = tu_rss_bytes();
	ASSERT_NO_THREAD_FAILURE();
	CHECK(after < before + 96 * MIB, "RSS grew from %zu MiB to %zu MiB", before / MIB, after / MIB);
}

/* A ring of threads, each passing half of its blocks of 4-12 KiB (spans of 5-16 blocks) to
 * the next one and freeing the other half itself, so that its spans drain and go back to the
 * central heap while frees from the previous thread are still arriving: a free from another
 * thread that loses the race with a release must leave the span, and whatever the record
 * becomes next, alone. */
enum { RING = 8, RING_BOX = 64, RING_ROUNDS = 3000 };
static struct ring_box {
	pthread_mutex_t lock;
	int count;
	struct { char *p; size_t n; } item[RING_BOX];
} ring_box[RING];

static void *ring_thread(void *arg)
{
	int me = (int)(uintptr_t)arg;
	struct ring_box *next = &ring_box[(me + 1) % RING], *mine = &ring_box[me];
	uint64_t s = (uint64_t)me * 104729 + 7;

	for (int r = 0; r < RING_ROUNDS && !atomic_load(&tu_failed); r++) {
		char *own[4];
		size_t own_n[4];
		for (int i = 0; i < 4; i++) {
			size_t n = 4096 + tu_random(&s) % 8192;
			char *p = malloc(n);
			if (p == NULL) {
				tu_thread_fail("malloc(%zu) failed", n);
				return NULL;
			}
			tu_fill(p, n, key_of(p, n));
			own[i] = p;
			own_n[i] = n;
		}
		pthread_mutex_lock(&next->lock);
		for (int i = 0; i < 2; i++)
			if (next->count < RING_BOX) {
				next->item[next->count].p = own[i];
				next->item[next->count++].n = own_n[i];
				own[i] = NULL;
			}
		pthread_mutex_unlock(&next->lock);
		for (int i = 0; i < 4; i++)
			if (own[i] != NULL) {
				verify("ring, own", own[i], own_n[i]);
				free(own[i]);
			}
		pthread_mutex_lock(&mine->lock);
		int n = mine->count;
		struct { char *p; size_t n; } got[RING_BOX];
		memcpy(got, mine->item, (size_t)n * sizeof got[0]);
		mine->count = 0;
		pthread_mutex_unlock(&mine->lock);
		for (int i = 0; i < n; i++) {
			verify("ring, passed", got[i].p, got[i].n);
			free(got[i].p);
		}
	}
	return NULL;
}

/* 3000 rounds of 8 threads pass ~190 MiB along the ring: blocks freed by the next thread
 * that never came back to their owner would show as RSS growth. */
static void test_spans_released_under_remote_frees(void **state)
{
	pthread_t t[RING];
	size_t before, after;

	(void)state;
	tu_reset_failure();
	before = tu_rss_bytes();
	for (int i = 0; i < RING; i++) {
		pthread_mutex_init(&ring_box[i].lock, NULL);
		ring_box[i].count = 0;
	}
	for (int i = 0; i < RING; i++)
		assert_int_equal(pthread_create(&t[i], NULL, ring_thread, (void *)(uintptr_t)i), 0);
	for (int i = 0; i < RING; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < RING; i++) /* what the last rounds left in the boxes */
		for (int j = 0; j < ring_box[i].count; j++) {
			verify("ring, left", ring_box[i].item[j].p, ring_box[i].item[j].n);
			free(ring_box[i].item[j].p);
		}
	after = tu_rss_bytes();
	ASSERT_NO_THREAD_FAILURE();
	CHECK(after < before + 64 * MIB, "RSS grew from %zu MiB to %zu MiB", before / MIB, after / MIB);
}

/* Only the ends of each block carry a pattern: enough to see two threads handed the same block. */
static void check_ends(const char *p, size_t n)
{
	if (tu_check(p, 64, key_of(p, n)) != 64 || tu_check(p + n - 64, 64, key_of(p, n) + 1) != 64)
		tu_thread_fail("large: block %p of %zu bytes changed at one of its ends", (const void *)p, n);
}

static void *large_block_churn(void *arg)
{
	uint64_t s = (uintptr_t)arg * 7919 + 1;
	struct { char *p; size_t n; } slot[16] = {{0}};

	for (int op = 0; op < 40000 && !atomic_load(&tu_failed); op++) {
		int i = (int)(tu_random(&s) % 16);

		if (slot[i].p != NULL) {
			check_ends(slot[i].p, slot[i].n);
			free(slot[i].p);
		}
		slot[i].n = 8192 + tu_random(&s) % MIB;
		slot[i].p = malloc(slot[i].n);
		if (slot[i].p == NULL) {
			tu_thread_fail("malloc(%zu) failed", slot[i].n);
			break;
		}
		tu_fill(slot[i].p, 64, key_of(slot[i].p, slot[i].n));
		tu_fill(slot[i].p + slot[i].n - 64, 64, key_of(slot[i].p, slot[i].n) + 1);
	}
	for (int i = 0; i < 16; i++)
		if (slot[i].p != NULL) {
			check_ends(slot[i].p, slot[i].n);
			free(slot[i].p);
		}
	return NULL;
}

/* Medium and large blocks (8 KiB .. 1 MiB) allocated and freed by several threads at once. */
static void test_concurrent_large_blocks(void **state)
{
	pthread_t t[4];

	(void)state;
	tu_reset_failure();
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, large_block_churn, (void *)(uintptr_t)i), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	ASSERT_NO_THREAD_FAILURE();
}

enum { EXITING_THREADS = 8, BLOCKS_PER_EXITING_THREAD = 2000 };
static struct { char *p; size_t n; } orphans[EXITING_THREADS][BLOCKS_PER_EXITING_THREAD];

static void *allocate_and_exit(void *arg)
{
	int t = (int)(uintptr_t)arg;
	uint64_t s = (uint64_t)t * 1000003 + 17;

	for (int i = 0; i < BLOCKS_PER_EXITING_THREAD; i++) {
		size_t n = i % 100 == 0 ? 100000 + (size_t)i : random_size(&s);

		orphans[t][i].p = malloc(n);
		orphans[t][i].n = n;
		if (orphans[t][i].p == NULL) {
			tu_thread_fail("malloc(%zu) failed", n);
			return NULL;
		}
		tu_fill(orphans[t][i].p, n, key_of(orphans[t][i].p, n));
	}
	return NULL;
}

/* A thread's current spans of large blocks (4-64 KiB) go back to the arenas once other
 * threads freed every block in them and the thread has moved on to other sizes, as they do
 * after its own frees: the remote frees that wait in those spans count. */
enum { LARGE_PER_SIZE = 4, SMALL_BLOCKS = 200000 };
static void *large_blocks[64];
static int large_count;
static void *small_blocks[SMALL_BLOCKS];
static size_t rss_base, rss_with, rss_after;

static void *free_large_blocks(void *arg)
{
	(void)arg;
	for (int i = 0; i < large_count; i++)
		free(large_blocks[i]);
	return NULL;
}

static void *own_large_blocks(void *arg)
{
	pthread_t freer;

	(void)arg;
	memset(small_blocks, 1, sizeof small_blocks);
	malloc_trim(0);
	rss_base = tu_rss_bytes();
	large_count = 0;
	for (size_t size = 4096; size <= 65536; size += size / 4)
		for (int i = 0; i < LARGE_PER_SIZE; i++) {
			large_blocks[large_count] = malloc(size);
			if (large_blocks[large_count] == NULL) {
				tu_thread_fail("malloc(%zu) failed", size);
				return NULL;
			}
			memset(large_blocks[large_count++], 1, size);
		}
	rss_with = tu_rss_bytes();
	if (pthread_create(&freer, NULL, free_large_blocks, NULL) != 0 || pthread_join(freer, NULL) != 0) {
		tu_thread_fail("no freeing thread");
		return NULL;
	}
	/* New spans for small blocks, twice over: each looks at the current spans of large ones. */
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < SMALL_BLOCKS; i++)
			small_blocks[i] = malloc(24 + 8 * (size_t)(i % 4));
		for (int i = 0; i < SMALL_BLOCKS; i++)
			free(small_blocks[i]);
	}
	malloc_trim(0);
	rss_after = tu_rss_bytes();
	return NULL;
}

static void test_large_blocks_freed_by_others_released(void **state)
{
	pthread_t owner;

	(void)state;
	tu_reset_failure();
	assert_int_equal(pthread_create(&owner, NULL, own_large_blocks, NULL), 0);
	pthread_join(owner, NULL);
	ASSERT_NO_THREAD_FAILURE();
	/* Kept, the spans hold most of it: +888-920 of +1208-1240 KiB before, +172-216 now. */
	/* Compared as sums: RSS may end below where it started, and size_t differences would wrap. */
	CHECK(rss_after < rss_base + (rss_with - rss_base) / 2,
	      "RSS %zu KiB at first, %zu KiB with %d large blocks, %zu KiB after another thread freed them",
	      rss_base >> 10, rss_with >> 10, large_count, rss_after >> 10);
}

/* Blocks outlive the thread that allocated them; main verifies and frees them, then reuses the memory. */
static void test_blocks_outlive_their_thread(void **state)
{
	pthread_t t[EXITING_THREADS];

	(void)state;
	tu_reset_failure();
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < EXITING_THREADS; i++)
			assert_int_equal(pthread_create(&t[i], NULL, allocate_and_exit, (void *)(uintptr_t)i), 0);
		for (int i = 0; i < EXITING_THREADS; i++)
			pthread_join(t[i], NULL);
		ASSERT_NO_THREAD_FAILURE();
		for (int i = 0; i < EXITING_THREADS; i++)
			for (int j = 0; j < BLOCKS_PER_EXITING_THREAD; j++) {
				CHECK(verify("orphan", orphans[i][j].p, orphans[i][j].n), "round %d: %s", round, tu_failure);
				free(orphans[i][j].p);
			}
	}
}

static void *short_lived(void *arg)
{
	char *p[300];
	int i;

	(void)arg;
	for (i = 0; i < 300; i++) {
		size_t n = 8 + (size_t)i * 37 % 3000 + (i % 50 == 0 ? 40000 : 0);

		p[i] = malloc(n);
		if (p[i] == NULL) {
			tu_thread_fail("malloc(%zu) failed in a short-lived thread", n);
			return NULL;
		}
		memset(p[i], i, n);
	}
	/* freed in a different order from allocation, leaving partially used spans in the thread cache */
	for (i = 0; i < 300; i += 2)
		free(p[i]);
	for (i = 1; i < 300; i += 2)
		free(p[i]);
	return NULL;
}

static void run_short_lived_threads(int count)
{
	enum { BATCH = 8 };
	pthread_t t[BATCH];

	for (int done = 0; done < count; done += BATCH) {
		for (int i = 0; i < BATCH; i++)
			assert_int_equal(pthread_create(&t[i], NULL, short_lived, NULL), 0);
		for (int i = 0; i < BATCH; i++)
			pthread_join(t[i], NULL);
	}
}

/* Workers build 64 MiB of blocks for main and exit; main frees them all and goes on
 * allocating. The memory must go back to the OS after the decay (1 s by default), without
 * malloc_trim: the exited threads' caches wait in a pool for a new thread, and what main
 * freed into them stayed resident for good (+64 MiB after 4 s; now back within 2 s). */
enum { HANDING_WORKERS = 4, HANDED_BYTES = 16 << 20, HANDED_BLOCK_BYTES = 200 };

static void *build_chain_and_exit(void *arg)
{
	void **chain = NULL;

	for (size_t total = 0; total < HANDED_BYTES; total += HANDED_BLOCK_BYTES) {
		void **node = malloc(HANDED_BLOCK_BYTES);
		if (node == NULL) {
			tu_thread_fail("malloc(%d) failed in a worker", HANDED_BLOCK_BYTES);
			break;
		}
		memset(node, 5, HANDED_BLOCK_BYTES);
		*node = chain;
		chain = node;
	}
	*(void ***)arg = chain;
	return NULL;
}

static void test_exited_threads_memory_returns_without_trim(void **state)
{
	void **chains[HANDING_WORKERS];
	pthread_t t;
	size_t before, peak, now = 0;
	double waited = 0;

	(void)state;
	tu_reset_failure();
	malloc_trim(0); /* the workers' blocks on fresh pages, not on what earlier tests freed */
	before = tu_rss_bytes();
	for (int i = 0; i < HANDING_WORKERS; i++) { /* one at a time: each adopts no cache of theirs */
		assert_int_equal(pthread_create(&t, NULL, build_chain_and_exit, &chains[i]), 0);
		assert_int_equal(pthread_join(t, NULL), 0);
	}
	ASSERT_NO_THREAD_FAILURE();
	peak = tu_rss_bytes();
	CHECK(peak > before + HANDING_WORKERS * (HANDED_BYTES / 2), "RSS %zu MiB before, %zu MiB with the blocks",
	      before / MIB, peak / MIB);
	for (int i = 0; i < HANDING_WORKERS; i++)
		while (chains[i] != NULL) {
			void **next = *chains[i];
			free(chains[i]);
			chains[i] = next;
		}
	/* Going on: medium blocks come and go, and their slow paths run the decay. */
	for (; waited < 4.0; waited += 0.01) {
		void *p = malloc(300 << 10);
		assert_non_null(p);
		memset(p, 6, 4096);
		free(p);
		now = tu_rss_bytes();
		if (now + HANDING_WORKERS * (HANDED_BYTES * 3 / 4) < peak)
			break;
		usleep(10000);
	}
	CHECK(now + HANDING_WORKERS * (HANDED_BYTES * 3 / 4) < peak,
	      "RSS %zu MiB before, %zu MiB with the workers' blocks, %zu MiB %.1f s after main freed them",
	      before / MIB, peak / MIB, now / MIB, waited);
}

/* Each exiting thread must hand its cache back: 4000 leaked caches would be hundreds of MiB. */
static void test_thread_churn_memory_bounded(void **state)
{
	size_t warm, after;

	(void)state;
	tu_reset_failure();
	run_short_lived_threads(400);
	warm = tu_rss_bytes();
	run_short_lived_threads(4000);
	after = tu_rss_bytes();
	ASSERT_NO_THREAD_FAILURE();
	CHECK(after < warm + 32 * MIB, "RSS after 400 threads %zu MiB, after 4000 more %zu MiB", warm / MIB,
	      after / MIB);
}

/* A thread-specific destructor that allocates runs after (or before) the allocator's own cleanup:
 * the thread must still be able to allocate and free there, for every destructor round. */
static pthread_key_t late_key;
static atomic_int late_allocations;

static void late_destructor(void *value)
{
	char *p = value;

	if (tu_check(p, 100, 100) != 100)
		tu_thread_fail("block handed to the destructor changed");
	free(p);
	if (atomic_fetch_add(&late_allocations, 1) % 4 < 3) {
		p = malloc(100);
		if (p == NULL) {
			tu_thread_fail("malloc in a thread destructor failed");
			return;
		}
		tu_fill(p, 100, 100);
		pthread_setspecific(late_key, p);
	}
}

static void *thread_with_late_allocation(void *arg)
{
	char *p = malloc(100);

	(void)arg;
	tu_fill(p, 100, 100);
	pthread_setspecific(late_key, p);
	return NULL;
}

static void test_allocation_in_thread_destructor(void **state)
{
	pthread_t t;

	(void)state;
	tu_reset_failure();
	assert_int_equal(pthread_key_create(&late_key, late_destructor), 0);
	for (int i = 0; i < 50; i++) {
		assert_int_equal(pthread_create(&t, NULL, thread_with_late_allocation, NULL), 0);
		pthread_join(t, NULL);
	}
	pthread_key_delete(late_key);
	ASSERT_NO_THREAD_FAILURE();
	assert_int_equal(atomic_load(&late_allocations), 200);
}

/* A destructor that allocates, and sets its key again, every round: glibc stops after its
 * last round, and the cache the thread took then had no exit to hand it back (3000 threads
 * kept 14 MiB, and every new span walked them all). */
static pthread_key_t every_round_key;

static void every_round_destructor(void *value)
{
	free(value);
	pthread_setspecific(every_round_key, malloc(64));
}

static void *thread_with_every_round_allocation(void *arg)
{
	(void)arg;
	pthread_setspecific(every_round_key, malloc(32));
	return NULL;
}

static void run_every_round_threads(int count)
{
	pthread_t t;

	for (int i = 0; i < count; i++) {
		assert_int_equal(pthread_create(&t, NULL, thread_with_every_round_allocation, NULL), 0);
		pthread_join(t, NULL);
	}
}

static void test_allocation_in_the_last_destructor_round(void **state)
{
	size_t warm, after;

	(void)state;
	assert_int_equal(pthread_key_create(&every_round_key, every_round_destructor), 0);
	run_every_round_threads(200);
	warm = tu_rss_bytes();
	run_every_round_threads(3000);
	after = tu_rss_bytes();
	pthread_key_delete(every_round_key);
	CHECK(after < warm + 4 * MIB, "RSS after 200 threads %zu KiB, after 3000 more %zu KiB", warm >> 10,
	      after >> 10);
}

static atomic_int stop_hammering;

static void *hammer(void *arg)
{
	uint64_t s = (uintptr_t)arg + 99;
	char *p[64] = {0};

	while (!atomic_load(&stop_hammering)) {
		int i = (int)(tu_random(&s) % 64);

		free(p[i]);
		p[i] = malloc(random_size(&s));
		if (p[i] == NULL) {
			tu_thread_fail("hammer: malloc failed");
			break;
		}
		p[i][0] = 1;
	}
	for (int i = 0; i < 64; i++)
		free(p[i]);
	return NULL;
}

static void *child_thread(void *arg)
{
	uint64_t s = 5;

	(void)arg;
	for (int i = 0; i < 20000; i++)
		free(malloc(random_size(&s)));
	return arg;
}

/* In the child of a multithreaded parent only one thread exists; every lock must be usable. */
static void fork_child(void *arg)
{
	enum { N = 2000 };
	static char *p[N];
	uint64_t s = (uintptr_t)arg;
	pthread_t t;

	for (int round = 0; round < 5; round++) {
		for (int i = 0; i < N; i++) {
			size_t n = random_size(&s);

			p[i] = malloc(n);
			CHILD_CHECK(p[i] != NULL);
			tu_fill(p[i], n, n);
			p[i] = realloc(p[i], n + 10);
			CHILD_CHECK(p[i] != NULL && tu_check(p[i], n, n) == n);
		}
		for (int i = 0; i < N; i++)
			free(p[i]);
	}
	CHILD_CHECK(pthread_create(&t, NULL, child_thread, NULL) == 0);
	CHILD_CHECK(pthread_join(t, NULL) == 0);
}

static void test_fork_while_threads_allocate(void **state)
{
	enum { HAMMERS = 3 };
	pthread_t t[HAMMERS];
	struct tu_child c;

	(void)state;
	tu_reset_failure();
	atomic_store(&stop_hammering, 0);
	for (int i = 0; i < HAMMERS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer, (void *)(uintptr_t)i), 0);
	for (int i = 0; i < 20; i++) {
		tu_run_child(fork_child, (void *)(uintptr_t)(i + 1), 30, &c);
		if (c.timed_out || !WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0) {
			tu_note("fork #%d failed", i);
			break;
		}
	}
	atomic_store(&stop_hammering, 1);
	for (int i = 0; i < HAMMERS; i++)
		pthread_join(t[i], NULL);
	tu_assert_child_ok(&c);
	ASSERT_NO_THREAD_FAILURE();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cross_thread_frees_reused_before_fresh_blocks),
		cmocka_unit_test(test_large_blocks_freed_by_others_released), /* early: caches of its sizes are new */
		cmocka_unit_test(test_blocks_freed_by_others_reused_while_owner_waits),
		cmocka_unit_test(test_threads_freeing_for_waiting_owners),
		cmocka_unit_test(test_concurrent_large_blocks),
		cmocka_unit_test(test_random_churn_2_to_16_threads),
		cmocka_unit_test(test_cross_thread_frees),
		cmocka_unit_test(test_spans_released_under_remote_frees),
		cmocka_unit_test(test_blocks_outlive_their_thread),
		cmocka_unit_test(test_thread_churn_memory_bounded),
		cmocka_unit_test(test_exited_threads_memory_returns_without_trim),
		cmocka_unit_test(test_allocation_in_thread_destructor),
		cmocka_unit_test(test_allocation_in_the_last_destructor_round),
		cmocka_unit_test(test_fork_while_threads_allocate),
	};

	tu_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
