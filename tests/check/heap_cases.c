/* heap_cases.c — one checked-heap scenario per argv[1], for tests/check_heap.py. Each bug sits
 * in a function of its own so that the test can name it in the reported stacks. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../include/heapguard.h"

/* Byte i of a block malloc has not written (heapguard.h). */
#define UNINIT_BYTE(i) ((unsigned char)(HEAPGUARD_UNINIT_WORD >> ((i) % 8 * 8)))

static char global_buffer[16];
static void *volatile sink;

__attribute__((noinline)) static int *make_array(size_t n) { return malloc(n * sizeof(int)); }
__attribute__((noinline)) static void fill_past_end(int *a, size_t n)
{
	for (size_t i = 0; i <= n; i++) /* one too many */
		a[i] = (int)i;
}
__attribute__((noinline)) static void release_it(void *p) { free(p); }
__attribute__((noinline)) static void release_last(void *p) { free(p); }
__attribute__((noinline)) static void first_free(void *p) { free(p); }
__attribute__((noinline)) static void second_free(void *p) { free(p); }
__attribute__((noinline)) static void *alloc_ten(void) { return malloc(10); }

static FILE *cancel_stream;

static void *read_forever(void *arg)
{
	(void)arg;
	for (;;)
		getc(cancel_stream);
	return NULL;
}
__attribute__((noinline)) static void *alloc_twenty(void) { return malloc(20); }
__attribute__((noinline)) static void write_before(char *p) { p[-1] = 'x'; }
__attribute__((noinline)) static void write_after_free(char *p) { p[8] = 1; }
/* Past the first page of a large block, and past a long slack: the checks compare whole
 * pages of fill bytes first, then search the page that differs. */
__attribute__((noinline)) static void write_deep_after_free(char *p) { p[9000] = 1, p[9001] = 2; }
__attribute__((noinline)) static void write_into_slack(char *p) { p[1100] = 'x'; }
__attribute__((noinline)) static char *make_name(void) { return malloc(10); }
__attribute__((noinline)) static char *make_table(void) { return malloc(40); }
__attribute__((noinline)) static void read_freed(char *p) { char b[4]; memcpy(b, p, 4); sink = b; }
__attribute__((noinline)) static void copy_into(char *p) { strcpy(p, "late write"); }

/* Prints the process's peak (VmHWM) or current (VmRSS) resident kilobytes on stdout. */
static void print_kb(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, field, strlen(field)))
			printf("%ld\n", strtol(line + strlen(field), NULL, 10));
	if (f)
		fclose(f);
}

static void print_peak_kb(void)
{
	print_kb("VmHWM:");
}

/* A 64 MiB buffer of which the program writes 1 MiB at 32 MiB, freed; then a write at `at`:
 * into a page it never touched, or into one it wrote (of a zero byte, which a page that was
 * not resident at the free holds too). stdout gets the resident kilobytes after the free; the
 * churn pushes the block out of a 128 MiB quarantine. */
__attribute__((noinline)) static void write_sparse_after_free(char *p, size_t at, char v) { p[at] = v; }
static void sparse_after_free(size_t at, char v)
{
	char *p = malloc((size_t)64 << 20);
	memset(p + ((size_t)32 << 20), 'w', (size_t)1 << 20);
	release_it(p);
	volatile char never = p[(size_t)48 << 20]; /* a read of a page never touched: no write */
	(void)never;
	print_kb("VmRSS:");
	write_sparse_after_free(p, at, v);
	for (int i = 0; i < 160; i++)
		free(malloc((size_t)1 << 20));
	fprintf(stderr, "churned\n");
}

/* A profiling-timer handler that blocks a signal with sigprocmask and reads the mask back:
 * signals land during heapguard's stack captures too, where libunwind's own sigprocmask
 * calls are skipped but the handler's must not be. */
static volatile sig_atomic_t handled, mask_wrong;
static void on_prof(int sig)
{
	(void)sig;
	sigset_t block, cur, old;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR2);
	sigfillset(&cur);
	if (sigprocmask(SIG_BLOCK, &block, &old) || sigprocmask(SIG_SETMASK, NULL, &cur) ||
	    !sigismember(&cur, SIGUSR2) || sigismember(&cur, SIGTERM))
		mask_wrong++;
	sigprocmask(SIG_SETMASK, &old, NULL);
	handled++;
}

static void *thread_free(void *p)
{
	first_free(p);
	return NULL;
}

static void exit_from_handler(int sig)
{
	(void)sig;
	_exit(7);
}

/* Whether the VmFlags in /proc/self/smaps of the mapping holding p have `flag` (hg: huge
 * pages asked for, nh: refused). */
static int mapping_flagged(const void *p, const char *flag)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	int in = 0, found = 0;
	while (f && fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, ' ') == line + strcspn(line, " "))
			in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
		else if (in && !strncmp(line, "VmFlags:", 8))
			for (char *w = strtok(line + 8, " \n"); w; w = strtok(NULL, " \n"))
				found |= !strcmp(w, flag);
	}
	if (f)
		fclose(f);
	return found;
}

/* Threads free 1 MiB blocks in a loop, so that much of their time goes to the poison of a
 * freed block, and with more threads than cores one is often preempted inside it: forks land
 * there. A race: before the children poisoned such blocks again, 4 runs in 6 of this case
 * had a child report a write after free. */
static volatile int churn_stop;

static void *free_big_blocks(void *arg)
{
	(void)arg;
	while (!churn_stop) {
		char *p = malloc(1 << 20);
		memset(p, 1, 1 << 20);
		free(p);
	}
	return NULL;
}

/* Children forked while the blocks are freed end at once: none may find a write after free. */
static int fork_while_freeing(void)
{
	pthread_t t[4];
	int failed = 0;
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, free_big_blocks, NULL);
	usleep(20000);
	for (int k = 0; k < 40; k++) {
		pid_t pid = fork();
		int st;
		if (pid == 0)
			_exit(0);
		waitpid(pid, &st, 0);
		failed += st != 0;
	}
	churn_stop = 1;
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	return failed;
}

static pthread_barrier_t all_started;
static void *small_churn(void *arg)
{
	free(malloc(16));
	pthread_barrier_wait(&all_started); /* alive at once */
	for (int i = 0; i < 100; i++)
		free(malloc(16 + (size_t)i * 24));
	return arg;
}

/* A timer's handler that frees one of main's blocks and replaces one of its own each time:
 * most land while main is inside malloc or free. */
#define FROM_MAIN 2000
static void *volatile from_main[FROM_MAIN], *volatile in_handler[64];
static volatile sig_atomic_t alarms;
static void alloc_in_handler(int sig)
{
	(void)sig;
	int k = alarms;
	if (k >= FROM_MAIN)
		return;
	free(from_main[k]);
	free(in_handler[k % 64]);
	char *p = malloc(40 + k % 100);
	if (p)
		memset(p, 7, 40 + k % 100);
	in_handler[k % 64] = p;
	alarms = k + 1;
}

static void exit_3_from_handler(int sig)
{
	(void)sig;
	exit(3);
}

static void *thread_copy_into(void *p)
{
	copy_into(p);
	return NULL;
}

/* Frees its block, says so on the pipe and waits for ever: its last frees are still its own
 * batch when the process exits. */
static int freed_pipe[2];
static void *release_and_wait(void *p)
{
	release_it(p);
	for (int i = 0; i < 10; i++)
		free(malloc(48));
	char c = 1;
	if (write(freed_pipe[1], &c, 1) != 1)
		abort();
	for (;;)
		pause();
	return NULL;
}

static atomic_int cancel_go;

/* Frees its block twice once main says go, a cancel pending since before. */
static void *free_twice_when_told(void *arg)
{
	char *p = malloc(32);
	while (!atomic_load(&cancel_go))
		;
	release_it(p);
	release_it(p);
	return arg;
}

/* Allocates, fills and frees blocks of 16 B-5 KB forever. */
static void *churn_forever(void *arg)
{
	unsigned s = (unsigned)(uintptr_t)arg;
	for (;;) {
		s = s * 1103515245u + 12345u;
		size_t n = (s >> 16) % 5000 + 16;
		char *p = malloc(n);
		memset(p, 1, n);
		free(p);
	}
	return NULL;
}

static void *churn(void *arg)
{
	void **slots = calloc(64, sizeof *slots);
	for (int i = 0; i < 20000; i++) {
		int k = (i * 7 + (int)(intptr_t)arg) & 63;
		free(slots[k]);
		slots[k] = malloc((size_t)(16 + (i & 255)));
		memset(slots[k], i, 16);
	}
	for (int k = 0; k < 64; k++)
		free(slots[k]);
	free(slots);
	return NULL;
}

static long vm_size_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "VmSize: %ld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

/* Sets an address-space limit `extra` bytes above what the process maps now; 0 on failure. */
static int limit_address_space(unsigned long extra)
{
	long kb = vm_size_kb();
	struct rlimit lim = { ((unsigned long)kb << 10) + extra, ((unsigned long)kb << 10) + extra };
	return kb > 0 && setrlimit(RLIMIT_AS, &lim) == 0;
}

/* Another thread's blocks of 8 MiB, mapped and freed until big_churn_stop, one for each of
 * main's rounds (big_round): never so many that the places main's frees keep are pushed out. */
static atomic_int big_churn_stop, big_round;
static void *churn_big(void *arg)
{
	(void)arg;
	for (int seen = 0, now; !atomic_load(&big_churn_stop); seen = now) {
		while ((now = atomic_load(&big_round)) <= seen && !atomic_load(&big_churn_stop))
			sched_yield();
		char *q = malloc(8 << 20);
		memset(q, 'B', 64);
		sink = q;
		for (volatile int k = 0; k < 20000; k++) /* held a while: its mapping meets the frees */
			;
		free(q);
	}
	return NULL;
}

/* Maps and unmaps 64 ranges of 256 KiB (each written) until big_churn_stop. */
static void *map_small(void *arg)
{
	(void)arg;
	void *m[64];
	while (!atomic_load(&big_churn_stop)) {
		for (int i = 0; i < 64; i++) {
			m[i] = mmap(NULL, 256 << 10, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (m[i] != MAP_FAILED)
				*(char *)m[i] = 1;
		}
		for (int i = 0; i < 64; i++)
			if (m[i] != MAP_FAILED)
				munmap(m[i], 256 << 10);
	}
	return NULL;
}

/* The byte at a, -1 when it cannot be read (process_vm_readv: no fault, nothing the checker
 * sees). */
static int peek_byte(const char *a)
{
	unsigned char c;
	struct iovec local = { &c, 1 }, remote = { (void *)a, 1 };
	return syscall(SYS_process_vm_readv, getpid(), &local, 1, &remote, 1, 0) == 1 ? c : -1;
}

static pthread_barrier_t both;
static char *volatile shared_block;
static void *free_shared(void *arg)
{
	(void)arg;
	for (int i = 0; i < 100; i++) {
		pthread_barrier_wait(&both);
		second_free(shared_block);
		pthread_barrier_wait(&both);
	}
	return NULL;
}

/* Blocks over 2 MiB that realloc moves by their pages (heap.c): their bytes, and their old
 * place for a stale pointer. */
static unsigned char pattern_at(size_t i) { return (unsigned char)(i * 7 + (i >> 12)); }

__attribute__((noinline)) static unsigned char *big_make(size_t n)
{
	unsigned char *p = malloc(n);
	for (size_t i = 0; i < n; i++)
		p[i] = pattern_at(i);
	return p;
}
__attribute__((noinline)) static unsigned char *big_grow(unsigned char *p, size_t n) { return realloc(p, n); }
__attribute__((noinline)) static void stale_write(volatile unsigned char *p) { p[100] = 'z'; }
__attribute__((noinline)) static int stale_read(volatile unsigned char *p) { return p[200]; }

/* Grows a block from 3 MiB by 64 KiB steps to `to` bytes, checking every step's address
 * moves and the bytes stay; shrinks it to 3 MiB and grows it once more. 0 when all held. */
static int big_realloc_steps(size_t to)
{
	size_t len = 3 << 20;
	unsigned char *p = big_make(len);
	for (; len < to; len += 64 << 10) {
		unsigned char *q = big_grow(p, len + (64 << 10));
		if (!q || q == p) {
			printf("step at %zu: %s\n", len, q ? "did not move" : "failed");
			return 1;
		}
		for (size_t i = len; i < len + (64 << 10); i++)
			q[i] = pattern_at(i);
		p = q;
	}
	p = big_grow(p, 3 << 20);
	p = big_grow(p, 5 << 20);
	for (size_t i = 0; i < (3u << 20); i += 509)
		if (p[i] != pattern_at(i)) {
			printf("byte %zu lost\n", i);
			return 1;
		}
	free(p);
	return 0;
}

int main(int argc, char **argv)
{
	const char *c = argc > 1 ? argv[1] : "";
	if (!strcmp(c, "overflow")) {
		int *a = make_array(10);
		fill_past_end(a, 10);
		release_it(a);
	} else if (!strcmp(c, "underflow")) {
		char *p = malloc(16);
		write_before(p);
		release_it(p);
	} else if (!strcmp(c, "aligned-underflow")) {
		char *p = aligned_alloc(4096, 100);
		write_before(p);
		release_it(p);
	} else if (!strcmp(c, "aligned-sparse")) {
		/* 2 MiB-aligned pages, each with a 2 MiB gap before it: stdout gets the peak
		 * resident kilobytes. */
		char *b[200];
		for (int i = 0; i < 200; i++) {
			b[i] = aligned_alloc((size_t)2 << 20, 4096);
			b[i][0] = 1;
		}
		for (int i = 0; i < 200; i++)
			free(b[i]);
		print_peak_kb();
	} else if (!strcmp(c, "aligned-small")) {
		/* 4000 blocks of 100 bytes aligned to a page, kept: stdout gets what they added to
		 * the peak resident kilobytes. */
		static char *b[4000];
		print_peak_kb();
		for (int i = 0; i < 4000; i++) {
			if (posix_memalign((void **)&b[i], 4096, 100) || (uintptr_t)b[i] % 4096)
				return 1;
			memset(b[i], 1, 100);
		}
		print_peak_kb();
		for (int i = 0; i < 4000; i++)
			free(b[i]);
	} else if (!strcmp(c, "use-after-free")) {
		char *p = malloc(32);
		release_it(p);
		write_after_free(p);
	} else if (!strcmp(c, "use-after-free-in-child")) {
		/* freed before a fork, written by the child: found at the child's exit */
		char *p = malloc(32);
		release_it(p);
		pid_t pid = fork();
		if (pid == 0) {
			write_after_free(p);
			exit(0);
		}
		waitpid(pid, NULL, 0);
	} else if (!strcmp(c, "use-after-free-then-forks")) {
		/* written before 5 forks: found by the parent, not again by each child */
		char *p = malloc(32);
		release_it(p);
		write_after_free(p);
		for (int i = 0; i < 5; i++) {
			pid_t pid = fork();
			if (pid == 0)
				exit(0);
			waitpid(pid, NULL, 0);
		}
	} else if (!strcmp(c, "use-after-free-read-then-write")) {
		/* two errors: the read that memcpy does at once, the store found at exit */
		char *p = malloc(32);
		release_it(p);
		read_freed(p);
		write_after_free(p);
	} else if (!strcmp(c, "use-after-free-thread-copy")) {
		/* strcpy into a freed block in another thread: reported there, once */
		char *p = malloc(32);
		release_it(p);
		pthread_t t;
		pthread_create(&t, NULL, thread_copy_into, p);
		pthread_join(t, NULL);
	} else if (!strcmp(c, "use-after-free-freed-by-thread")) {
		/* found at exit: the headline names the thread whose free stack it shows */
		char *p = malloc(32);
		pthread_t t;
		pthread_create(&t, NULL, thread_free, p);
		pthread_join(t, NULL);
		write_after_free(p);
	} else if (!strcmp(c, "overflows-freed-together")) {
		/* two blocks of two allocation sites damaged, freed at one line: two reports */
		char *name = make_name(), *table = make_table();
		name[10] = 'x';
		write_before(table);
		char *blocks[] = { name, table };
		for (int i = 0; i < 2; i++)
			release_it(blocks[i]);
	} else if (!strcmp(c, "underscore-exit")) {
		/* _exit runs no destructor: the checks at exit run all the same */
		sink = make_name();
		sink = NULL;
		char *p = malloc(32);
		release_it(p);
		write_after_free(p);
		_exit(4);
	} else if (!strcmp(c, "exit-in-handler")) {
		/* a handler's _exit (or exit, whose destructors run in the handler: "exit") most
		 * likely lands inside malloc or free: no hang on their locks */
		signal(SIGALRM, argc > 2 && !strcmp(argv[2], "exit") ? exit_3_from_handler : exit_from_handler);
		struct itimerval every = { { 0, 20000 }, { 0, 20000 } };
		setitimer(ITIMER_REAL, &every, NULL);
		for (;;)
			free(malloc(64));
	} else if (!strcmp(c, "many-threads-small-pages")) {
		/* the heap's arenas ask for huge pages until more than 16 threads run at once */
		char *p = NULL;
		for (int i = 0; i < 64; i++) /* past the first arena's first 2 MiB, on small pages */
			free(p = malloc(60000));
		p = malloc(100);
		int before = mapping_flagged(p, "hg");
		pthread_t t[40];
		pthread_barrier_init(&all_started, NULL, 40);
		for (int i = 0; i < 40; i++)
			pthread_create(&t[i], NULL, small_churn, NULL);
		for (int i = 0; i < 40; i++)
			pthread_join(t[i], NULL);
		printf("huge pages asked %d, then %d, refused %d\n", before, mapping_flagged(p, "hg"),
		       mapping_flagged(p, "nh"));
		free(p);
	} else if (!strcmp(c, "malloc-in-handler")) {
		/* no hang on the heap's locks, nothing lost, nothing called invalid */
		for (int i = 0; i < FROM_MAIN; i++)
			from_main[i] = malloc(24);
		signal(SIGALRM, alloc_in_handler);
		struct itimerval every = { { 0, 200 }, { 0, 200 } }, off = { { 0, 0 }, { 0, 0 } };
		setitimer(ITIMER_REAL, &every, NULL);
		for (long i = 0; alarms < FROM_MAIN && i < 200000000; i++)
			free(malloc(64 + i % 64));
		setitimer(ITIMER_REAL, &off, NULL);
		for (int i = 0; i < 64; i++)
			free(in_handler[i]);
		printf("alarms=%d\n", (int)alarms);
	} else if (!strcmp(c, "vfork-exit")) {
		/* a vfork child shares the heap: its _exit must not check (or change) it */
		pid_t pid = vfork();
		if (pid == 0)
			_exit(3);
		int st;
		waitpid(pid, &st, 0);
		printf("%d\n", WEXITSTATUS(st));
	} else if (!strcmp(c, "use-after-free-deep")) {
		char *p = malloc(10000);
		release_it(p);
		write_deep_after_free(p);
	} else if (!strcmp(c, "report-into-closed-pipe")) {
		/* stderr's reader goes away first (the test closes it), then an overflow is found
		 * at the free: its report must not end the program with SIGPIPE. */
		usleep(300000);
		int *a = make_array(10);
		fill_past_end(a, 10);
		release_it(a);
		printf("finished\n");
	} else if (!strcmp(c, "medium-neighbours")) {
		/* Blocks of their own slices with 84 bytes of slack: one made again where a freed
		 * one was (quarantine=0) must leave the block above it alone. stdout: whether that
		 * one kept its bytes. */
		size_t n = 5 * ((size_t)64 << 10) - 132;
		char *a = malloc(n), *b = malloc(n);
		memset(b, 'b', n);
		free(a);
		char *again = malloc(n);
		size_t kept = 0;
		while (kept < n && b[kept] == 'b')
			kept++;
		printf("kept=%d\n", kept == n);
		free(again);
		free(b);
	} else if (!strcmp(c, "overflow-into-slack")) {
		char *p = malloc(1000); /* a 1152-byte core block: 136 bytes of right redzone */
		write_into_slack(p);
		release_it(p);
	} else if (!strcmp(c, "use-after-free-quarantine")) {
		char *p = malloc(32);
		release_it(p);
		write_after_free(p);
		for (int i = 0; i < 1000; i++) /* pushes p out of a 4 KiB quarantine */
			free(malloc(64));
		fprintf(stderr, "churned\n");
	} else if (!strcmp(c, "use-after-free-huge")) {
		/* A block over 32 MiB: its place in the quarantine costs more than a queue entry
		 * holds, so the queue asks for it again when the block leaves. */
		char *p = malloc((size_t)40 << 20);
		release_it(p);
		write_deep_after_free(p);
		for (int i = 0; i < 80; i++) /* pushes p out of a 64 MiB quarantine */
			free(malloc((size_t)1 << 20));
		fprintf(stderr, "churned\n");
	} else if (!strcmp(c, "quarantine-budget")) {
		/* A million blocks freed after the first one (through 245 chunks of the queue):
		 * it leaves the quarantine, the last one waits there until exit; stdout gets the
		 * peak resident kilobytes. */
		char *first = malloc(40);
		release_it(first);
		write_after_free(first);
		for (int i = 0; i < 1000000; i++)
			free(malloc(40));
		char *last = malloc(40);
		release_last(last);
		write_after_free(last);
		print_peak_kb();
	} else if (!strcmp(c, "quarantine-tails")) {
		/* 200 MB of 50 KB blocks, each alone in a 64 KiB span (huge pages make the span's
		 * tail resident): stdout gets the peak resident kilobytes. */
		for (int i = 0; i < 4000; i++)
			free(malloc(50000));
		print_peak_kb();
	} else if (!strcmp(c, "address-limit")) {
		/* Under an address-space limit 160 MiB above what the process maps now, 600 blocks
		 * of 1 MiB come and go: plainly they need 1 MiB, the default quarantine would hold
		 * 256 MiB of them. Prints "done" when every malloc succeeded. */
		if (!limit_address_space(160ul << 20))
			return 2;
		for (int i = 0; i < 600; i++) {
			char *p = malloc(1 << 20);
			if (!p) {
				printf("malloc %d failed\n", i);
				return 1;
			}
			memset(p, i, 1 << 20);
			free(p);
		}
		printf("done\n");
	} else if (!strcmp(c, "address-limit-big")) {
		/* The same with 300 blocks of 8 MiB, each freed by its pages (a new mapping for
		 * them, its old place kept), then 12 of them live at once: 96 MiB. */
		if (!limit_address_space(160ul << 20))
			return 2;
		static char *live[12];
		for (int i = 0; i < 300 + 12; i++) {
			char *p = malloc(8 << 20);
			if (!p) {
				printf("malloc %d failed\n", i);
				return 1;
			}
			memset(p, i, 8 << 20);
			if (i < 300)
				free(p);
			else
				live[i - 300] = p;
		}
		for (int i = 0; i < 12; i++)
			free(live[i]);
		printf("done\n");
	} else if (!strcmp(c, "realloc-pages")) {
		if (big_realloc_steps(64 << 20) == 0)
			printf("kept\n");
	} else if (!strcmp(c, "big-realloc-hole")) {
		/* A block grown by realloc 64 KiB at a time from 3 to 40 MiB while another thread
		 * maps and unmaps 256 KiB at a time: its mappings now and then come where the block
		 * was to grow. stdout: the steps that found a byte changed. */
		pthread_t t;
		atomic_store(&big_churn_stop, 0);
		pthread_create(&t, NULL, map_small, NULL);
		long bad = 0;
		size_t n = 3 << 20;
		unsigned char *p = malloc(n);
		for (size_t o = 0; o < n; o += 4096)
			p[o] = (unsigned char)(o >> 12);
		for (; n < (40u << 20); n += 64 << 10) {
			p = realloc(p, n + (64 << 10));
			size_t o = 0;
			while (o < n && p[o] == (unsigned char)(o >> 12))
				o += 4096;
			bad += o < n;
			for (o = n; o < n + (64 << 10); o += 4096)
				p[o] = (unsigned char)(o >> 12);
		}
		free(p);
		atomic_store(&big_churn_stop, 1);
		pthread_join(t, NULL);
		printf("bad %ld\n", bad);
	} else if (!strcmp(c, "realloc-big-quarantine")) {
		/* A block of 100 bytes freed (its thread's batch pushed on into the quarantine), a
		 * block of 3 MiB realloc'd to 5 MiB, then a write into the small one: found as it
		 * leaves the quarantine, at exit, unless the realloc emptied it. */
		unsigned char *big = big_make(3 << 20), *small = malloc(100);
		release_it(small);
		for (int i = 0; i < 200; i++)
			free(malloc(100));
		big = big_grow(big, 5 << 20);
		small[0] = 7;
		free(big);
		printf("done\n");
	} else if (!strcmp(c, "realloc-stale")) {
		/* A 3 MiB block moved by realloc; then a write and a read through the old pointer. */
		unsigned char *p = big_make(3 << 20);
		unsigned char *q = big_grow(p, 4 << 20);
		stale_write(p);
		int v = stale_read(p);
		printf("went on, read %d, kept %d\n", v, q[100] == pattern_at(100));
		free(q);
	} else if (!strcmp(c, "realloc-pages-free-old")) {
		/* The old pointer of a block realloc moved by its pages, freed: a double free. */
		unsigned char *p = big_make(3 << 20);
		unsigned char *q = big_grow(p, 4 << 20);
		release_it(p);
		release_last(q);
		printf("went on\n");
	} else if (!strcmp(c, "realloc-stale-syscall")) {
		/* read() into the old place of a moved block: reported, and the call goes on. */
		unsigned char *p = big_make(3 << 20);
		unsigned char *q = big_grow(p, 4 << 20);
		int fds[2];
		if (pipe(fds) || write(fds[1], "0123456789", 10) != 10)
			return 2;
		ssize_t got = read(fds[0], p, 10);
		printf("read %zd\n", got);
		free(q);
	} else if (!strcmp(c, "realloc-stale-jump")) {
		/* A call through the old pointer: reported once, then the fault ends the process. */
		unsigned char *p = big_make(3 << 20);
		big_grow(p, 4 << 20);
		alarm(20);
		((void (*)(void))p)();
		printf("returned\n");
	} else if (!strcmp(c, "big-free-stale")) {
		/* An 8 MiB block freed (its pages move on, its place is kept inaccessible); then a
		 * read and a write through the stale pointer. */
		unsigned char *p = big_make(8 << 20);
		release_it(p);
		int v = stale_read(p);
		stale_write(p);
		printf("went on, read %d\n", v);
	} else if (!strcmp(c, "big-free-stale-write")) {
		unsigned char *p = big_make(8 << 20);
		release_it(p);
		stale_write(p);
		printf("went on\n");
	} else if (!strcmp(c, "big-free-twice")) {
		unsigned char *p = big_make(8 << 20);
		release_it(p);
		release_last(p);
		printf("went on\n");
	} else if (!strcmp(c, "big-free-many")) {
		/* 70 blocks of 3 MiB freed one at a time: the checker keeps the places of the last
		 * 64 (its table's size; 200 MiB, within the quarantine's 256). stdout: how many of
		 * those are still mapped (mincore fails on an unmapped page), after a read through
		 * the oldest of them. */
		unsigned char *p[70];
		for (int i = 0; i < 70; i++) {
			p[i] = big_make(3 << 20);
			release_it(p[i]);
		}
		int v = stale_read(p[6]), kept = 0;
		unsigned char vec;
		for (int i = 6; i < 70; i++)
			kept += mincore((void *)((uintptr_t)p[i] & ~(uintptr_t)4095), 4096, &vec) == 0;
		printf("read %d, kept %d\n", v, kept);
	} else if (!strcmp(c, "big-free-memcpy")) {
		/* An intercepted call reading a freed 8 MiB block. */
		unsigned char *p = big_make(8 << 20);
		release_it(p);
		read_freed((char *)p + 4096);
		printf("went on\n");
	} else if (!strcmp(c, "big-free-churn")) {
		/* 200 blocks of 8 MiB written whole and freed, one at a time, then one more whose
		 * first 2 MiB must hold the never-written pattern (the pages it gets held an older
		 * block's bytes) and whose redzone still catches a write past its end. stdout gets
		 * what the pattern check found and the peak resident kilobytes. */
		size_t n = 8 << 20;
		for (int i = 0; i < 200; i++) {
			unsigned char *p = malloc(n);
			memset(p, 'a' + i % 26, n);
			free(p);
		}
		unsigned char *q = malloc(n);
		int pattern = 1;
		for (size_t i = 0; i < (2u << 20); i += 4093)
			pattern &= q[i] == UNINIT_BYTE(i);
		printf("pattern=%d\n", pattern);
		q[n] = 1;
		release_it(q);
		print_peak_kb();
	} else if (!strcmp(c, "big-free-others-map") || !strcmp(c, "big-realloc-others-map")) {
		/* 2,000 blocks of 8 MiB freed (or 1,000 moved by realloc, then freed: three sizes
		 * keep the cache of mappings short of fitting blocks, and the fresh pages cost) while
		 * two threads map and free their own: the last three places left never hold
		 * another's block (its first bytes 'B'; read with process_vm_readv, which faults
		 * nowhere; run with a quarantine of 1G, so that only the 64 places kept at most push
		 * one out). stdout: how many reads found another's block, and how many places could
		 * still be read just after the block left (none: each is kept inaccessible). */
		int by_realloc = c[4] == 'r', rounds = by_realloc ? 1000 : 2000;
		pthread_t t[2];
		atomic_store(&big_churn_stop, 0);
		for (int k = 0; k < 2; k++)
			pthread_create(&t[k], NULL, churn_big, NULL);
		char *old[3] = { NULL, NULL, NULL };
		long readable = 0, open = 0;
		for (int i = 0; i < rounds; i++) {
			atomic_fetch_add(&big_round, 1);
			char *p = malloc(8 << 20), *left = p;
			p[0] = 1;
			if (by_realloc) /* larger and smaller in turn */
				p = realloc(p, i % 2 ? (8 << 20) + (1 << 20) : (7 << 20));
			else
				free(p);
			old[2] = old[1], old[1] = old[0], old[0] = left;
			open += peek_byte(left) != -1; /* kept inaccessible, not left as it was */
			for (int k = 0; k < 3; k++)
				readable += old[k] && peek_byte(old[k]) == 'B';
			if (by_realloc)
				free(p);
		}
		atomic_store(&big_churn_stop, 1);
		for (int k = 0; k < 2; k++)
			pthread_join(t[k], NULL);
		printf("another's %ld, open %ld\n", readable, open);
	} else if (!strcmp(c, "big-free-together")) {
		/* Two threads free one 8 MiB block at the same moment, 100 times. */
		pthread_t t;
		pthread_barrier_init(&both, NULL, 2);
		pthread_create(&t, NULL, free_shared, NULL);
		for (int i = 0; i < 100; i++) {
			shared_block = malloc(8 << 20);
			shared_block[0] = 1;
			pthread_barrier_wait(&both);
			first_free(shared_block);
			pthread_barrier_wait(&both);
		}
		pthread_join(t, NULL);
		printf("done\n");
	} else if (!strcmp(c, "address-limit-2m")) {
		/* 100 blocks of 2 MiB and a byte, live at once, under an address-space limit 300 MiB
		 * above the process: plainly 200 MiB. */
		if (!limit_address_space(300ul << 20))
			return 2;
		static char *b[100];
		for (int i = 0; i < 100; i++)
			if (!(b[i] = malloc((2u << 20) + 1))) {
				printf("malloc %d failed\n", i);
				return 1;
			}
		printf("done\n");
	} else if (!strcmp(c, "trim-after-decay")) {
		/* Run with quarantine=0:decay_ms=100. 48 blocks of 300 KiB freed in two halves, the
		 * first half aged by one look of the purge before the second: the arenas they filled
		 * are all free, and go back (unmapped) by the looks that follow and malloc_trim. The
		 * address space before the frees and after goes to stdout, in KiB. */
		static char *b[48], *keep[6];
		for (int i = 0; i < 48; i++)
			memset(b[i] = malloc(300 << 10), 1, 300 << 10);
		for (int i = 0; i < 6; i++)
			memset(keep[i] = malloc(300 << 10), 1, 4096);
		long before = vm_size_kb();
		for (int i = 0; i < 48; i += 2)
			free(b[i]);
		usleep(20000);
		free(keep[0]); /* a look: the first half ages */
		for (int i = 1; i < 48; i += 2)
			free(b[i]);
		for (int k = 1; k < 6; k++) {
			usleep(110000);
			free(keep[k]);
		}
		malloc_trim(0);
		printf("%ld %ld\n", before, vm_size_kb());
	} else if (!strcmp(c, "realloc-pages-overflow")) {
		/* Grown to 4 MiB, shrunk to 3 MiB, then one byte written past the end. */
		unsigned char *q = big_grow(big_grow(big_make(3 << 20), 4 << 20), 3 << 20);
		q[3 << 20] = 1;
		release_it(q);
	} else if (!strcmp(c, "realloc-pages-limit")) {
		/* The same growth under an address-space limit 160 MiB above what the process maps
		 * now: the old places kept inaccessible must give way. */
		if (!limit_address_space(160ul << 20))
			return 2;
		if (big_realloc_steps(64 << 20) == 0)
			printf("kept\n");
	} else if (!strcmp(c, "holes")) {
		/* 1000 blocks of 50 KB, each in a 64 KiB span; every other one freed leaves 32 MiB
		 * of one-span holes, too short for the 300 blocks of 100 KB (two slices each) that
		 * come next. Run with quarantine=0; stdout gets the peak resident kilobytes. */
		static char *small[1000], *big[300];
		for (int i = 0; i < 1000; i++)
			small[i] = malloc(50000);
		for (int i = 0; i < 1000; i += 2)
			free(small[i]);
		for (int i = 0; i < 300; i++)
			big[i] = malloc(100000);
		print_peak_kb();
	} else if (!strcmp(c, "stats")) {
		/* 100 blocks of 1000 bytes, all live at once, then freed; one of 100 stays. */
		static char *blocks[100];
		for (int i = 0; i < 100; i++)
			blocks[i] = malloc(1000);
		for (int i = 0; i < 100; i++)
			free(blocks[i]);
		blocks[0] = calloc(10, 10);
	} else if (!strcmp(c, "stats-realloc-refused")) {
		/* A block of 3 MiB that realloc cannot move to 200 MiB under an address-space
		 * limit: NULL, the block as it was, then freed. */
		unsigned char *p = big_make(3 << 20);
		if (!limit_address_space(50ul << 20))
			return 1;
		unsigned char *q = realloc(p, 200 << 20);
		printf("refused %d\n", q == NULL);
		release_it(q ? q : p);
	} else if (!strcmp(c, "mallinfo")) {
		/* mallinfo2's bytes in use, before and after a block of 100000 bytes. */
		size_t before = mallinfo2().uordblks;
		char *p = malloc(100000);
		size_t during = mallinfo2().uordblks;
		free(p);
		printf("%zu %zu %zu\n", before, during, mallinfo2().uordblks);
	} else if (!strcmp(c, "small")) {
		/* A short program: a few hundred blocks, some of them freed. */
		static void *blocks[300];
		for (int i = 0; i < 300; i++)
			blocks[i] = malloc((size_t)(i % 7 + 1) * 24);
		for (int i = 0; i < 300; i += 2)
			free(blocks[i]);
		print_peak_kb();
	} else if (!strcmp(c, "span-reuse")) {
		/* Spans of a few large blocks go back, and their structs come again for spans of
		 * many small ones (and back): every block must still be found by free. */
		static char *blocks[4096];
		int found = 0;
		for (int round = 0; round < 3; round++) {
			for (int i = 0; i < 64; i++)
				blocks[i] = malloc(100000);
			for (int i = 0; i < 64; i++)
				free(blocks[i]);
			for (int i = 0; i < 4096; i++)
				blocks[i] = malloc(16);
			for (int i = 0; i < 4096; i++)
				found += malloc_usable_size(blocks[i]) == 16;
			for (int i = 0; i < 4096; i++)
				free(blocks[i]);
		}
		printf("found=%d\n", found);
	} else if (!strcmp(c, "sigprocmask-in-handler")) {
		signal(SIGPROF, on_prof);
		struct itimerval every = { { 0, 200 }, { 0, 200 } }, off = { { 0, 0 }, { 0, 0 } };
		setitimer(ITIMER_PROF, &every, NULL);
		for (long i = 0; handled < 200 && i < 20000000; i++) {
			sink = malloc(32);
			free(sink);
		}
		setitimer(ITIMER_PROF, &off, NULL);
		printf("handled=%d wrong=%d\n", handled >= 200, (int)mask_wrong);
	} else if (!strcmp(c, "double-free")) {
		char *p = malloc(24);
		first_free(p);
		second_free(p);
		printf("survived\n");
	} else if (!strcmp(c, "cancel-getc")) {
		/* a thread cancelled while it waits in getc: the stream's lock goes with it */
		int fds[2];
		if (pipe(fds) != 0 || !(cancel_stream = fdopen(fds[0], "r")))
			return 1;
		pthread_t t;
		pthread_create(&t, NULL, read_forever, NULL);
		usleep(100000);
		pthread_cancel(t);
		pthread_join(t, NULL);
		close(fds[1]);
		printf("getc after cancel: %d\n", getc(cancel_stream));
	} else if (!strcmp(c, "double-free-sites")) {
		/* two blocks from two places, both freed twice by one free: one stack for both */
		void *two[2] = { alloc_ten(), alloc_twenty() };
		for (int round = 0; round < 2; round++)
			for (int i = 0; i < 2; i++)
				second_free(two[i]);
		printf("survived\n");
	} else if (!strcmp(c, "double-free-fds") && argc > 2) {
		/* The library's copy of stderr sits among the 16 descriptors below 1,024 (or below a
		 * lower limit): a file of the program's put on those numbers (argv[2], a path), or
		 * every descriptor past 2 closed, first. */
		if (!strcmp(argv[2], "closed")) {
			closefrom(3);
		} else {
			struct rlimit rl;
			int top = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 1024 ? (int)rl.rlim_cur : 1024;
			int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0600);
			for (int n = top - 16; n < top; n++)
				dup2(fd, n);
			write(top - 16, "payload\n", 8);
		}
		char *p = malloc(24);
		first_free(p);
		second_free(p);
		printf("survived\n");
	} else if (!strcmp(c, "double-free-threads")) {
		char *p = malloc(24);
		pthread_t t;
		pthread_create(&t, NULL, thread_free, p);
		pthread_join(t, NULL);
		second_free(p);
	} else if (!strcmp(c, "interior")) {
		char *p = malloc(128);
		release_it(p + 16);
		free(p);
	} else if (!strcmp(c, "global")) {
		release_it(global_buffer);
	} else if (!strcmp(c, "stack")) {
		char local[32];
		sink = local;
		release_it(local);
	} else if (!strcmp(c, "fork-while-freeing")) {
		printf("failed children: %d\n", fork_while_freeing());
	} else if (!strcmp(c, "pointer-from-freed")) { /* a second delete of an owner of a block */
		char **owner = malloc(sizeof *owner);
		*owner = malloc(40);
		free(*owner);
		free(owner);
		release_it(*(char *volatile *)owner); /* the freed fill, not the block */
	} else if (!strcmp(c, "realloc-moves")) {
		char *p = malloc(16);
		memset(p, 'a', 16);
		char *q = realloc(p, 16);
		printf("moved=%d kept=%d\n", q != p, q[15] == 'a');
		write_after_free(p);
		free(q);
	} else if (!strcmp(c, "realloc-invalid")) {
		char local[16];
		sink = local;
		errno = 0;
		void *q = realloc(local, 32);
		printf("null=%d\n", q == NULL);
	} else if (!strcmp(c, "usable-size")) {
		char *p = malloc(13);
		printf("usable=%zu\n", malloc_usable_size(p));
		free(p);
	} else if (!strcmp(c, "uninit-pointer")) {
		struct link { struct link *next; int value; } *l = malloc(sizeof *l);
		l->value = 1;
		printf("%d\n", l->next->value); /* next was never written: a general protection fault */
	} else if (!strcmp(c, "fill")) {
		unsigned char *m = malloc(64), *z = calloc(64, 1), *r = malloc(8);
		int uninit = 1, zero = 1;
		for (int i = 0; i < 64; i++) {
			uninit &= m[i] == UNINIT_BYTE(i);
			zero &= z[i] == 0;
		}
		memset(r, 'r', 8);
		r = realloc(r, 4096);
		printf("uninit=%d zero=%d kept=%d tail=%d\n", uninit, zero, r[7] == 'r', r[8] == UNINIT_BYTE(8));
		free(m);
		free(z);
		free(r);
	} else if (!strcmp(c, "big-sparse")) {
		/* GNU sort's way: a 512 MiB buffer of which the program writes a few pages, freed;
		 * stdout gets what its bytes read (the pattern in the first 2 MiB, zero past them)
		 * and the peak resident kilobytes. */
		size_t size = (size_t)512 << 20;
		unsigned char *b = malloc(size);
		int pattern = b[0] == UNINIT_BYTE(0) && b[(2 << 20) - 1] == UNINIT_BYTE((2 << 20) - 1);
		int zero = b[2 << 20] == 0 && b[size - 1] == 0;
		for (size_t i = 0; i < ((size_t)8 << 20); i += 4096)
			b[i] = 1;
		free(b);
		printf("pattern=%d zero=%d\n", pattern, zero);
		print_peak_kb();
	} else if (!strcmp(c, "sparse-untouched-after-free")) {
		sparse_after_free(((size_t)56 << 20) + 100, 1);
	} else if (!strcmp(c, "sparse-written-after-free")) {
		sparse_after_free(((size_t)32 << 20) + 5, 0);
	} else if (!strcmp(c, "sparse-realloc")) {
		/* Grown from 64 to 128 MiB: the copy keeps the written MiB and the pattern of the
		 * first 2 MiB, the rest reads zero; stdout gets the resident kilobytes after it. */
		unsigned char *p = malloc((size_t)64 << 20);
		memset(p + ((size_t)32 << 20), 'w', (size_t)1 << 20);
		unsigned char *q = realloc(p, (size_t)128 << 20);
		int kept = q[(size_t)32 << 20] == 'w' && q[((size_t)33 << 20) - 1] == 'w' &&
			   q[0] == UNINIT_BYTE(0) && q[(2 << 20) - 1] == UNINIT_BYTE((2 << 20) - 1);
		int zero = q[2 << 20] == 0 && q[(size_t)33 << 20] == 0 && q[((size_t)64 << 20) - 1] == 0 &&
			   q[((size_t)128 << 20) - 1] == 0;
		printf("kept=%d zero=%d\n", kept, zero);
		print_kb("VmRSS:");
		free(q);
	} else if (!strcmp(c, "too-big")) {
		errno = 0;
		void *p = malloc((size_t)1 << 48);
		printf("null=%d enomem=%d\n", p == NULL, errno == ENOMEM);
	} else if (!strcmp(c, "calloc-overflow")) {
		errno = 0;
		volatile size_t half = SIZE_MAX / 2;
		void *p = calloc(half, 4);
		printf("null=%d enomem=%d\n", p == NULL, errno == ENOMEM);
	} else if (!strcmp(c, "aligned")) {
		int ok = 1;
		for (size_t a = 16; a <= ((size_t)1 << 22); a <<= 2) {
			void *p;
			if (posix_memalign(&p, a, 100) || (uintptr_t)p % a)
				ok = 0;
			memset(p, 1, 100);
			free(p);
		}
		printf("aligned=%d\n", ok);
	} else if (!strcmp(c, "threads")) {
		pthread_t t[4];
		for (intptr_t i = 0; i < 4; i++)
			pthread_create(&t[i], NULL, churn, (void *)i);
		for (int i = 0; i < 4; i++)
			pthread_join(t[i], NULL);
		printf("done\n");
	} else if (!strcmp(c, "fork")) {
		pthread_t t;
		pthread_create(&t, NULL, churn, NULL);
		pid_t pid = fork();
		if (pid == 0) {
			char *p = malloc(100);
			strcpy(p, "child");
			free(p);
			_exit(7);
		}
		int st;
		waitpid(pid, &st, 0);
		pthread_join(t, NULL);
		printf("child=%d\n", WEXITSTATUS(st));
	} else if (!strcmp(c, "many-damaged-at-exit")) {
		/* More damaged blocks than the exit check holds at a time (64): it goes on after
		 * reporting them. Live ones overflowed, freed ones written. */
		for (int i = 0; i < 100; i++) {
			int *a = make_array(10);
			fill_past_end(a, 10);
			char *p = malloc(32);
			release_it(p);
			write_after_free(p);
		}
	} else if (!strcmp(c, "use-after-free-thread-exited")) {
		char *p = malloc(32);
		pthread_t t;
		pthread_create(&t, NULL, thread_free, p);
		pthread_join(t, NULL);
		write_after_free(p);
	} else if (!strcmp(c, "use-after-free-thread-running")) {
		char *p = malloc(32), ready;
		pthread_t t;
		if (pipe(freed_pipe) || pthread_create(&t, NULL, release_and_wait, p) ||
		    read(freed_pipe[0], &ready, 1) != 1)
			return 3;
		write_after_free(p);
		exit(0); /* the thread still waits */
	} else if (!strcmp(c, "cancel-pending-report")) {
		/* the double free is reported in a thread with a cancel pending, then one in main */
		pthread_t t;
		if (pthread_create(&t, NULL, free_twice_when_told, NULL) || pthread_cancel(t))
			return 3;
		atomic_store(&cancel_go, 1);
		pthread_join(t, NULL);
		char *y = malloc(10);
		release_it(y);
		release_it(y);
		printf("joined\n");
	} else if (!strcmp(c, "exit-while-threads-free")) {
		/* main returns while 8 detached threads go on allocating and freeing */
		for (uintptr_t i = 0; i < 8; i++) {
			pthread_t t;
			if (pthread_create(&t, NULL, churn_forever, (void *)i) || pthread_detach(t))
				return 3;
		}
		usleep(50000);
	} else if (!strcmp(c, "fork-threads-freed")) {
		/* The child inherits a thread's batch of frees, not the thread; its own new thread
		 * may get that thread's stack, and frees there, before the child's exit check. */
		char ready;
		pthread_t t;
		if (pipe(freed_pipe) || pthread_create(&t, NULL, release_and_wait, malloc(32)) ||
		    read(freed_pipe[0], &ready, 1) != 1)
			return 3;
		pid_t pid = fork();
		if (pid == 0) {
			for (int i = 0; i < 3; i++) {
				pthread_t u;
				pthread_create(&u, NULL, churn, (void *)(intptr_t)i);
				pthread_join(u, NULL);
			}
			exit(5);
		}
		int st;
		waitpid(pid, &st, 0);
		printf("child=%d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	} else if (!strcmp(c, "errno")) {
		void *p = malloc(10);
		errno = 1234;
		free(p);
		printf("errno=%d\n", errno);
	} else if (!strcmp(c, "clean")) {
		char *p = malloc(10);
		strcpy(p, "fine");
		puts(p);
		free(p);
	} else {
		fprintf(stderr, "unknown case %s\n", c);
		return 2;
	}
	return 0;
}
