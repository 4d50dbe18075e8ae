/* leak_cases.c — one leak scenario per argument, for tests/check_leak.py: blocks lost in each
 * way the leak check classifies, and blocks kept alive by each kind of root. */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <error.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))

/* Defined by libheapguard-check.so; NULL without it. */
extern size_t heapguard_check_leaks(void) __attribute__((weak));

struct node {
	struct node *next;
	char pad[16];
};

static void *global_ptr;          /* reachable from a global */
static void **global_holder;      /* a block holding the only pointer to another */
static char *global_interior;     /* points into the middle of a block only */
static __thread void *tls_ptr;    /* reachable from TLS only */

/* Clears the stack below the caller, so that no dead frame keeps a copy of a lost pointer
 * (the check scans the stack above its own frames conservatively). */
static NOINLINE void scrub_stack(void)
{
	volatile char buf[64 << 10];
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = 0;
}

static void say(const char *s)
{
	write(2, s, strlen(s));
}

/* ---- lost ---- */
static NOINLINE void lose_definite(void)
{
	char *volatile p = malloc(111);
	memset(p, 1, 111);
	p = malloc(7); /* overwrites the only pointer to the first block */
	global_ptr = p;
}

static NOINLINE struct node *alloc_head(void)
{
	struct node *h = malloc(64);
	memset(h, 0, 64);
	return h;
}

static NOINLINE struct node *alloc_node(void)
{
	struct node *n = malloc(24);
	memset(n, 0, 24);
	return n;
}

/* A list head (64 bytes) and three nodes (24 bytes each), all lost with the head. */
static NOINLINE void lose_list(void)
{
	struct node *volatile head = alloc_head();
	struct node *prev = head;
	for (int i = 0; i < 3; i++) {
		prev->next = alloc_node();
		prev = prev->next;
	}
	head = NULL;
	prev = NULL;
}

static NOINLINE struct node *alloc_cycle_node(void)
{
	struct node *n = malloc(40);
	memset(n, 0, 40);
	return n;
}

/* A -> B -> C -> A, all lost. One call site, so that the three share a stack. */
static NOINLINE void lose_cycle(void)
{
	struct node *volatile n[3];
	for (int i = 0; i < 3; i++)
		n[i] = alloc_cycle_node();
	for (int i = 0; i < 3; i++)
		n[i]->next = n[(i + 1) % 3];
	for (int i = 0; i < 3; i++)
		n[i] = NULL;
}

static NOINLINE void keep_interior(void)
{
	char *volatile p = malloc(200);
	memset(p, 2, 200);
	global_interior = p + 50;
	p = NULL;
}

/* ---- reachable ---- */
static NOINLINE void keep_global(void)
{
	global_ptr = malloc(130);
}

/* Blocks whose only pointers lie in mappings of a file, private and shared (the JVM maps its
 * class-data archive writable and keeps blocks from there), and in shared anonymous memory. */
static NOINLINE void keep_in_maps(void)
{
	char path[] = "/tmp/hg-leak-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0 || unlink(path) || ftruncate(fd, 4096))
		exit(3);
	void **priv = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	void **shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	void **anon = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (priv == MAP_FAILED || shared == MAP_FAILED || anon == MAP_FAILED)
		exit(3);
	close(fd);
	priv[1] = malloc(1010);
	shared[2] = malloc(1020);
	anon[3] = malloc(1030);
}

static NOINLINE void keep_held(void **holder)
{
	holder[0] = malloc(150);
}

static NOINLINE void keep_holder(void)
{
	global_holder = malloc(16);
	global_holder[1] = NULL;
	keep_held(global_holder);
}

static NOINLINE void keep_tls(void)
{
	tls_ptr = malloc(170);
}

/* ---- a thread holding the only pointer on its stack while main exits ---- */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int ready;

/* Says the thread holds its block, and blocks for good. */
static NOINLINE void ready_then_wait(void)
{
	pthread_mutex_lock(&mu);
	ready = 1;
	pthread_cond_broadcast(&cv);
	for (;;)
		pthread_cond_wait(&cv, &mu); /* never signalled again */
}

static void wait_ready(void)
{
	pthread_mutex_lock(&mu);
	while (!ready)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
}

static NOINLINE void *hold_in_thread(void *arg)
{
	void *volatile p = malloc(190);
	memset(p, 3, 190);
	ready_then_wait();
	return arg;
}

/* A thread blocked in a system call with the only pointer to a block in a register, never on
 * any stack (r12 on x86-64): a thread's registers are roots (valgrind: still reachable). The
 * address is kept XORed meanwhile, which is no pointer. */
#define HIDE 0x5a5a5a5a5a5a5a5aull
static uintptr_t hidden;

static NOINLINE void keep_hidden(void)
{
	char *p = malloc(151);
	memset(p, 9, 151);
	hidden = (uintptr_t)p ^ HIDE;
}

static NOINLINE void *hold_in_register(void *arg)
{
	uintptr_t h = hidden;
	pthread_mutex_lock(&mu);
	ready = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
#if defined(__x86_64__)
	__asm__ volatile("mov %0, %%r12\n\txor %1, %%r12\n"
			 "1:\tmov $34, %%eax\n\tsyscall\n\tjmp 1b" /* pause() for good */
			 : : "r"(h), "r"((uintptr_t)HIDE) : "r12", "rax", "rcx", "r11", "memory");
#endif
	return arg;
}

/* Starts the thread that holds keep_hidden's block in r12 alone. */
static void start_register_holder(void)
{
	pthread_t t;
	keep_hidden();
	pthread_create(&t, NULL, hold_in_register, NULL);
	wait_ready();
	hidden = 0;
}

/* Threads waiting in poll(), nanosleep(), epoll_wait() and sigwaitinfo() while the check
 * reads their registers: their calls go on as if nothing happened (a signal would have made
 * poll fail with EINTR, and a stop alone makes the last two fail so). */
static int wake[2], wake_epoll[2];

static NOINLINE void *wait_in_poll(void *arg)
{
	struct pollfd p = { .fd = wake[0], .events = POLLIN };
	int r = poll(&p, 1, -1);
	printf("poll: %s\n", r == 1 ? "woken" : r < 0 && errno == EINTR ? "EINTR" : "failed");
	return arg;
}

static NOINLINE void *wait_in_sleep(void *arg)
{
	struct timespec t = { 0, 300 * 1000000 };
	int r = nanosleep(&t, &t);
	printf("nanosleep: %s\n", r == 0 ? "slept" : errno == EINTR ? "EINTR" : "failed");
	return arg;
}

static NOINLINE void *wait_in_epoll(void *arg)
{
	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = wake_epoll[0] };
	epoll_ctl(ep, EPOLL_CTL_ADD, wake_epoll[0], &ev);
	int r = epoll_wait(ep, &ev, 1, -1);
	printf("epoll_wait: %s\n", r == 1 ? "woken" : r < 0 && errno == EINTR ? "EINTR" : "failed");
	return arg;
}

static NOINLINE void *wait_in_sigwait(void *arg)
{
	sigset_t usr1;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	int r = sigwaitinfo(&usr1, NULL);
	printf("sigwaitinfo: %s\n", r == SIGUSR1 ? "woken" : r < 0 && errno == EINTR ? "EINTR" : "failed");
	return arg;
}

static void run_waiting(void)
{
	pthread_t a, b, c, d;
	sigset_t usr1;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL); /* for sigwaitinfo, in every thread */
	if (pipe(wake) != 0 || pipe(wake_epoll) != 0)
		exit(3);
	pthread_create(&a, NULL, wait_in_poll, NULL);
	pthread_create(&b, NULL, wait_in_sleep, NULL);
	pthread_create(&c, NULL, wait_in_epoll, NULL);
	pthread_create(&d, NULL, wait_in_sigwait, NULL);
	usleep(50000);
	for (int i = 0; i < 3; i++)
		heapguard_check_leaks();
	pthread_join(b, NULL);
	if (write(wake[1], "x", 1) != 1 || write(wake_epoll[1], "x", 1) != 1)
		exit(3);
	pthread_kill(d, SIGUSR1);
	pthread_join(a, NULL);
	pthread_join(c, NULL);
	pthread_join(d, NULL);
}

/* Leaves the only pointer to its block in its own frames and exits: glibc keeps the stack for
 * the next thread, and those frames are no root (valgrind: definitely lost). */
static NOINLINE void *lose_in_thread(void *arg)
{
	void *volatile p = malloc(77);
	memset(p, 6, 77);
	return arg;
}

/* ---- main ends with pthread_exit while a thread runs on ---- */
/* 1 once the process's first thread has exited: /proc/self/stat then says Z (zombie). */
static int leader_gone(void)
{
	char buf[512];
	FILE *f = fopen("/proc/self/stat", "r");
	size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = 0;
	const char *paren = strrchr(buf, ')');
	return paren && paren[1] == ' ' && paren[2] == 'Z';
}

static NOINLINE void *outlive_main(void *arg)
{
	for (int i = 0; i < 5000 && !leader_gone(); i++)
		usleep(1000);
	lose_in_thread(arg);
	scrub_stack();
	return NULL; /* the last thread: glibc calls exit(0) */
}

static NOINLINE void *end_at_once(void *arg)
{
	return arg;
}

/* ---- threads that have ended, not joined ---- */
/* The number of threads of this process, from /proc/self/task. */
static int threads_now(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/task");
	for (struct dirent *e; d && (e = readdir(d));)
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

static void wait_threads(int n)
{
	for (int i = 0; i < 5000 && threads_now() != n; i++)
		usleep(1000);
}

/* Runs fn in a thread and waits until it has ended, without joining it. */
static void run_and_end(void *(*fn)(void *), int detach_state)
{
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, detach_state);
	pthread_create(&t, &attr, fn, NULL);
	wait_threads(1);
	scrub_stack();
}

/* Its result waits in its descriptor for pthread_join (valgrind: still reachable). */
static NOINLINE void *return_block(void *arg)
{
	char *p = malloc(123);
	memset(p, 7, 123);
	return arg ? p : p;
}

/* A detached thread's TLS, once it has ended: no root (valgrind: definitely lost). */
static NOINLINE void *keep_tls_and_end(void *arg)
{
	keep_tls();
	return arg;
}

/* Two threads on stacks from one mapping with no guard page between them (a program's pool):
 * the upper one ends, the lower one holds the only pointer to its block. */
#define POOL_STACK (256 << 10)
static NOINLINE void *hold_in_pool(void *arg)
{
	void *volatile p = malloc(200);
	memset(p, 8, 200);
	ready_then_wait();
	return arg;
}

static void run_pool(void)
{
	char *pool = mmap(NULL, 2 * POOL_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	pthread_attr_t attr;
	pthread_t holder, quick;
	pthread_attr_init(&attr);
	pthread_attr_setstack(&attr, pool, POOL_STACK);
	pthread_create(&holder, &attr, hold_in_pool, NULL);
	wait_ready();
	pthread_attr_setstack(&attr, pool + POOL_STACK, POOL_STACK);
	pthread_create(&quick, &attr, end_at_once, NULL);
	pthread_join(quick, NULL);
	scrub_stack();
}

/* ---- threads starting and ending while the process exits ---- */

static NOINLINE void *keep_spawning(void *arg)
{
	for (;;) {
		pthread_t t;
		if (pthread_create(&t, NULL, end_at_once, NULL) == 0)
			pthread_detach(t); /* it unmaps its own stack as it ends */
	}
	return arg;
}

/* ---- mid-program check ---- */
static NOINLINE void lose_mid(void)
{
	char *volatile p = malloc(230);
	memset(p, 4, 230);
	p = NULL;
}

/* Leaves the only pointer in a dead frame far below the caller's stack pointer: the check,
 * called later from main, scans from its own stack pointer up and must not see it. */
static NOINLINE void leave_in_dead_frame(void)
{
	void *volatile slots[8192];
	slots[0] = malloc(210);
	memset(slots[0], 5, 210);
	slots[1] = NULL;
}

static NOINLINE void *keep_local(void)
{
	void *p = malloc(240);
	memset(p, 6, 240);
	return p;
}

static void run_mid(void)
{
	char line[64];
	void *volatile local = keep_local(); /* on main's stack: reachable */
	lose_mid();
	leave_in_dead_frame();
	size_t lost = heapguard_check_leaks ? heapguard_check_leaks() : (size_t)-1;
	snprintf(line, sizeof line, "MID-CHECK-RETURNED %zu\n", lost);
	say(line);
	free(local);
}

/* Allocates and frees everything, without stdio: nothing is left at exit. */
static void run_clean(void)
{
	void *p[64];
	for (int i = 0; i < 64; i++)
		p[i] = malloc((size_t)i * 8 + 1);
	for (int i = 0; i < 64; i++)
		free(p[i]);
	p[0] = realloc(NULL, 100);
	p[0] = realloc(p[0], 300);
	free(p[0]);
}

int main(int argc, char **argv)
{
	const char *c = argc > 1 ? argv[1] : "";
	if (!strcmp(c, "definite")) {
		lose_definite();
	} else if (!strcmp(c, "quick-exit")) { /* no destructor runs: the checks must all the same */
		lose_definite();
		quick_exit(0);
	} else if (!strcmp(c, "indirect")) {
		lose_list();
	} else if (!strcmp(c, "possible")) {
		keep_interior();
	} else if (!strcmp(c, "setenv")) { /* libc's tree of the strings it made */
		char name[16];
		for (int i = 0; i < 16; i++) {
			snprintf(name, sizeof name, "HG_VAR%d", i);
			setenv(name, "value", 1);
		}
	} else if (!strcmp(c, "cycle")) {
		lose_cycle();
	} else if (!strcmp(c, "reachable")) {
		keep_global();
		keep_holder();
		keep_tls();
	} else if (!strcmp(c, "file-maps")) {
		keep_in_maps();
		scrub_stack();
	} else if (!strcmp(c, "thread")) {
		pthread_t t;
		pthread_create(&t, NULL, hold_in_thread, NULL);
		wait_ready();
		scrub_stack();
		exit(0); /* the thread still runs: its stack is a root */
	} else if (!strcmp(c, "register")) {
		start_register_holder();
		usleep(20000); /* into its system call */
		scrub_stack();
		exit(0);
	} else if (!strcmp(c, "seccomp")) {
		/* A filter that kills the process at a clone(): the check must not try one. */
		start_register_holder();
		struct sock_filter f[] = {
			BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 0, 1),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		};
		struct sock_fprog prog = { sizeof f / sizeof f[0], f };
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
			return 3;
		usleep(20000);
		scrub_stack();
		exit(0);
	} else if (!strcmp(c, "waiting")) {
		run_waiting();
	} else if (!strcmp(c, "exited-thread")) {
		pthread_t t;
		pthread_create(&t, NULL, lose_in_thread, NULL);
		pthread_join(t, NULL);
		scrub_stack();
	} else if (!strcmp(c, "main-exits")) {
		/* Once the first thread has gone, /proc/self is its: empty maps, no exe link, and
		 * process_vm_readv of its pid fails. The check at exit reads through the last
		 * thread's. stdout's buffer is kept by libc's data, the global's block by ours. */
		keep_global();
		printf("main leaves first\n");
		pthread_t t;
		pthread_create(&t, NULL, outlive_main, NULL);
		pthread_exit(NULL);
	} else if (!strcmp(c, "error-exit")) {
		error(3, 0, "stopping at %d", 7); /* exits: the message heapguard formats is no block left */
	} else if (!strcmp(c, "unjoined")) {
		run_and_end(return_block, PTHREAD_CREATE_JOINABLE);
	} else if (!strcmp(c, "detached-tls")) {
		run_and_end(keep_tls_and_end, PTHREAD_CREATE_DETACHED);
	} else if (!strcmp(c, "pool")) {
		run_pool();
	} else if (!strcmp(c, "daemon")) {
		/* The parent, whose pid goes to stdout, ends inside daemon(). */
		lose_definite();
		printf("%d\n", (int)getpid());
		fflush(stdout);
		if (daemon(1, 0) < 0)
			return 3;
	} else if (!strcmp(c, "spawning")) {
		pthread_t t;
		pthread_create(&t, NULL, keep_spawning, NULL);
		usleep(30000);
		lose_definite();
	} else if (!strcmp(c, "dlopen")) {
		/* ld.so allocates a dl_find_object segment for the new library and keeps only a
		 * pointer into it: no leak of the program's. */
		void *libm = dlopen("libm.so.6", RTLD_NOW);
		double (*cosine)(double) = libm ? (double (*)(double))dlsym(libm, "cos") : NULL;
		printf("cos(0) = %g\n", cosine ? cosine(0.0) : -1.0);
	} else if (!strcmp(c, "libs")) {
		/* Each library named after the mode leaks from a function it does not export. One
		 * loaded and unloaded before changes the list of modules the names are looked up in. */
		void *libm = dlopen("libm.so.6", RTLD_NOW);
		if (libm)
			dlclose(libm);
		for (int i = 2; i < argc; i++) {
			void *lib = dlopen(argv[i], RTLD_NOW);
			void (*lose)(void) = lib ? (void (*)(void))dlsym(lib, "leak_lib_lose") : NULL;
			if (!lose) {
				say("leak_cases: cannot load ");
				say(argv[i]);
				say("\n");
				return 1;
			}
			lose();
		}
	} else if (!strcmp(c, "mid")) {
		run_mid();
	} else if (!strcmp(c, "clean")) {
		run_clean();
		return 0;
	} else {
		say("usage: leak_cases definite|indirect|possible|cycle|reachable|thread|register|seccomp|waiting|exited-thread|main-exits|error-exit|unjoined|detached-tls|pool|daemon|spawning|dlopen|libs LIB...|mid|clean\n");
		return 2;
	}
	scrub_stack();
	return 0;
}
