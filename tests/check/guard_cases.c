/* guard_cases: guard mode's cases from an audit, one per argument: first uses that a fork or a
 * signal handler interrupts (guard_uninit), a freed guarded string handed to strlen and
 * strchr, big sparse blocks, system calls that fill fresh blocks, a lost block whose pointer a
 * first use's fault left in a register, an address-space limit; and (unguarded) a stack
 * overflow that a program's handler would catch. */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

/* A thread makes 15 MiB blocks and uses each at once (a first use fills the whole slot); each
 * child forked meanwhile reads the block of the moment. Prints "hung=N": children still
 * waiting after 5 s, on a first use the parent's thread had under way at the fork. */
static _Atomic(char *) current;
static atomic_int stop;

static void *toucher(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		char *p = malloc(15u << 20);
		atomic_store(&current, p);
		p[0] = 1;
		atomic_store(&current, NULL);
		free(p);
	}
	return NULL;
}

static int fork_touching(void)
{
	pthread_t t;
	pthread_create(&t, NULL, toucher, NULL);
	int hung = 0;
	for (int k = 0; k < 40;) {
		char *p = atomic_load(&current);
		if (!p)
			continue;
		k++;
		pid_t pid = fork();
		if (pid == 0) {
			alarm(5);
			volatile char c = p[100]; /* freed meanwhile or not: a report, never a wait */
			(void)c;
			_exit(0);
		}
		int st;
		waitpid(pid, &st, 0);
		hung += WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM;
	}
	atomic_store(&stop, 1);
	pthread_join(t, NULL);
	printf("hung=%d\n", hung);
	return 0;
}

/* A timer's handler writes first into fresh blocks of its own while the main thread's first
 * uses of 8 MiB blocks are being filled. */
static char *pool[4000];
static volatile int next_block;

static void use_next(int sig)
{
	(void)sig;
	if (next_block < 4000)
		pool[next_block++][0] = 1;
}

static int signal_first_use(void)
{
	for (int i = 0; i < 4000; i++)
		pool[i] = malloc(64);
	signal(SIGALRM, use_next);
	struct itimerval every = { { 0, 500 }, { 0, 500 } }, off = { { 0, 0 }, { 0, 0 } };
	setitimer(ITIMER_REAL, &every, NULL);
	for (int i = 0; i < 100; i++) {
		char *p = malloc(8u << 20);
		p[0] = 1;
		free(p);
	}
	setitimer(ITIMER_REAL, &off, NULL);
	printf("done\n");
	for (int i = 0; i < 4000; i++)
		free(pool[i]);
	return 0;
}

static __attribute__((noinline)) char *freed_string(void)
{
	char *p = malloc(16);
	strcpy(p, "hello");
	free(p);
	return p;
}

/* n blocks of mib MiB (calloc'd with "calloc"), their first and last bytes used; prints the
 * peak RSS in MiB. */
static int sparse(int n, size_t mib, int zero)
{
	size_t bytes = mib << 20;
	char **a = malloc((size_t)n * sizeof *a);
	long sum = 0;
	for (int i = 0; i < n; i++) {
		a[i] = zero ? calloc(1, bytes) : malloc(bytes);
		a[i][0] = (char)i;
		a[i][bytes - 1] = (char)i;
		sum += a[i][0];
	}
	for (int i = 0; i < n; i++)
		free(a[i]);
	free(a);
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	printf("sum=%ld peak_mib=%ld\n", sum, ru.ru_maxrss / 1024);
	return 0;
}

/* Fresh blocks handed to system calls that fill them. */
static int syscalls(void)
{
	char *buf = malloc(64);
	ssize_t got = getrandom(buf, 64, 0);
	int *sv = malloc(2 * sizeof *sv);
	int pair = socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLOUT, .data.fd = sv[0] };
	epoll_ctl(ep, EPOLL_CTL_ADD, sv[0], &ev);
	struct epoll_event *evs = malloc(16 * sizeof *evs);
	int ready = epoll_wait(ep, evs, 16, 100);
	struct sockaddr_storage *addr = malloc(sizeof *addr);
	socklen_t len = sizeof *addr;
	int named = getsockname(sv[0], (struct sockaddr *)addr, &len);
	printf("getrandom=%zd socketpair=%d epoll_wait=%d getsockname=%d\n", got, pair, ready, named);
	return 0;
}

static __attribute__((noinline)) void make_lost(void)
{
	void **lost = malloc(32);
	lost[0] = malloc(77);
}

static __attribute__((noinline)) void clobber_stack(void)
{
	volatile char b[20000];
	memset((char *)b, 0, sizeof b);
}

/* A stack overflow with a SIGSEGV handler of the program's: without an alternate stack of its
 * own the kernel cannot run it and kills the process; with one (and SA_ONSTACK) it runs. */
static sigjmp_buf overflowed;
static volatile int handled;

static void on_overflow(int sig)
{
	(void)sig;
	handled++;
	if (handled > 1000) /* run on a stack the program has not: faulting again and again */
		_exit(3);
	siglongjmp(overflowed, 1);
}

static __attribute__((noinline)) int recurse(int depth)
{
	volatile char frame[256];
	frame[0] = (char)depth;
	return recurse(depth + 1) + frame[0];
}

static int stack_overflow(int own_stack)
{
	struct sigaction sa = { .sa_handler = on_overflow };
	if (own_stack) {
		stack_t ss = { .ss_sp = malloc(1 << 20), .ss_size = 1 << 20 };
		sigaltstack(&ss, NULL);
		sa.sa_flags = SA_ONSTACK;
	}
	sigaction(SIGSEGV, &sa, NULL);
	if (sigsetjmp(overflowed, 1) == 0)
		recurse(0);
	printf("handled=%d\n", handled);
	return 0;
}

int main(int argc, char **argv)
{
	const char *c = argc > 1 ? argv[1] : "";
	if (!strcmp(c, "fork-touching"))
		return fork_touching();
	if (!strcmp(c, "signal-first-use"))
		return signal_first_use();
	if (!strcmp(c, "stack-overflow-handled"))
		return stack_overflow(0);
	if (!strcmp(c, "stack-overflow-own-stack"))
		return stack_overflow(1);
	if (!strcmp(c, "strlen-freed"))
		printf("%zu\n", strlen(freed_string()));
	else if (!strcmp(c, "strchr-freed"))
		printf("%p\n", (void *)strchr(freed_string(), 'z'));
	else if (!strcmp(c, "sparse"))
		return sparse(40, 15, 0);
	else if (!strcmp(c, "sparse-calloc"))
		return sparse(40, 15, 1);
	else if (!strcmp(c, "syscalls"))
		return syscalls();
	else if (!strcmp(c, "lost")) {
		make_lost();
		clobber_stack();
		puts("end");
	} else if (!strcmp(c, "overflow-under-limit")) {
		char *p = malloc(64);
		p[64] = 1; /* guarded: faults here */
		puts("survived");
		free(p);
	} else {
		fprintf(stderr, "unknown case %s\n", c);
		return 2;
	}
	return 0;
}
