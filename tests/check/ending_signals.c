/* ending_signals: signals whose default action ends the process.
 *   term       loses 100 bytes, writes one byte past a block of 10, then raises SIGTERM
 *   child      the same in a forked child; the parent prints the child's signal
 *   view       what the program sees and sets: SIG_DFL at the start, its own handler, SIG_IGN,
 *              SIG_DFL again, then raises SIGINT
 *   inherited  raises SIGHUP, which the program was started ignoring (nohup)
 *   roundtrip  sets SIGTERM's SIG_DFL with flags and a mask, prints what sigaction reads back
 *   small      loses 100 bytes, then a thread of a 16 KiB stack raises SIGTERM to itself
 *   segv       loses 100 bytes, writes one byte past a block of 10, then crash() holds a block
 *              of 30 in its frame only and stores through a NULL pointer (SIGSEGV)
 *   segv-small loses 100 bytes, then a thread of a 16 KiB stack stores through NULL
 *   abort      loses 100 bytes, writes one byte past a block of 10, then calls abort()
 *   twice      loses 100 bytes, then frees a block twice (run with abort_on_error=1)
 *   race       loses 100 bytes, keeps 300,000 blocks, then a thread stores through NULL while
 *              main calls exit(0) as the checks run
 *   recurse    loses 100 bytes, then a thread that never allocates recurses without end
 *   term-deep  loses 100 bytes, then a thread of a 16 KiB stack with 8 KiB of it in use takes
 *              the SIGTERM the process sends itself
 *   busy       loses 100 bytes, prints "ready", then mallocs and frees without end (the test
 *              sends SIGINT twice)
 *   divide     loses 100 bytes, then divides an integer by zero (SIGFPE)
 *   exiting    returns from main with a million blocks in use; the parent of this test sends
 *              SIGTERM while the checks at exit run (it prints "exiting" first) */
#define _GNU_SOURCE
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

static void *volatile sink;

__attribute__((noinline)) static void lose(void)
{
	sink = malloc(100);
	sink = NULL;
}

__attribute__((noinline)) static void overflow(void)
{
	char *p = malloc(10);
	p[10] = 1;
	sink = p;
}

__attribute__((noinline)) static void crash(void)
{
	char *volatile held = malloc(30); /* only this frame holds it: a root when it faults */
	held[0] = 1;
	*(volatile int *)(uintptr_t)16 = 1;
	sink = held;
}

static void *crash_thread(void *arg)
{
	(void)arg;
	*(volatile int *)(uintptr_t)16 = 1;
	return NULL;
}

static atomic_int crashing;

static void *crash_late(void *arg)
{
	(void)arg;
	atomic_store(&crashing, 1);
	*(volatile int *)(uintptr_t)16 = 1;
	return NULL;
}

__attribute__((noinline)) static int recurse(int n)
{
	volatile char frame[256];
	frame[0] = (char)n;
	return recurse(n + 1) + frame[0];
}

static void *recurse_thread(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)recurse(0);
}

__attribute__((noinline)) static void *deep_wait(void *arg)
{
	(void)arg;
	volatile char used[8 << 10];
	used[0] = 1;
	for (;;)
		pause();
	return NULL;
}

static void *raise_term(void *arg)
{
	(void)arg;
	pthread_kill(pthread_self(), SIGTERM);
	return NULL;
}

static void on_term(int sig)
{
	printf("caught %d\n", sig);
}

static int view(void)
{
	struct sigaction old;
	sigaction(SIGTERM, NULL, &old);
	printf("start: %s\n", old.sa_handler == SIG_DFL ? "SIG_DFL" : "not SIG_DFL");
	struct sigaction act = { .sa_handler = on_term };
	sigemptyset(&act.sa_mask);
	sigaction(SIGTERM, &act, &old);
	printf("replaced: %s\n", old.sa_handler == SIG_DFL ? "SIG_DFL" : "not SIG_DFL");
	raise(SIGTERM);
	printf("ignore SIGINT, was %s\n", signal(SIGINT, SIG_IGN) == SIG_DFL ? "SIG_DFL" : "not SIG_DFL");
	raise(SIGINT);
	printf("handler back: %s\n", signal(SIGTERM, SIG_DFL) == on_term ? "yes" : "no");
	sigaction(SIGTERM, NULL, &old);
	printf("now: %s\n", old.sa_handler == SIG_DFL ? "SIG_DFL" : "not SIG_DFL");
	fflush(stdout);
	signal(SIGINT, SIG_DFL);
	lose();
	raise(SIGINT);
	printf("not reached\n");
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "term";
	if (!strcmp(mode, "view"))
		return view();
	if (!strcmp(mode, "roundtrip")) {
		struct sigaction act = { .sa_handler = SIG_DFL, .sa_flags = SA_RESTART | SA_NODEFER }, back;
		sigemptyset(&act.sa_mask);
		sigaddset(&act.sa_mask, SIGUSR1);
		sigaddset(&act.sa_mask, SIGKILL); /* the kernel drops it */
		sigaction(SIGTERM, &act, NULL);
		sigaction(SIGTERM, NULL, &back);
		printf("flags %#x, SIGUSR1 %d, SIGKILL %d, SIG_DFL %d\n", (unsigned)back.sa_flags,
		       sigismember(&back.sa_mask, SIGUSR1), sigismember(&back.sa_mask, SIGKILL),
		       back.sa_handler == SIG_DFL);
		return 0;
	}
	if (!strcmp(mode, "small") || !strcmp(mode, "segv-small")) {
		lose();
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setstacksize(&attr, 16384);
		pthread_t t;
		pthread_create(&t, &attr, mode[0] == 's' && mode[1] == 'm' ? raise_term : crash_thread, NULL);
		pthread_join(t, NULL);
		printf("not reached\n");
		return 0;
	}
	if (!strcmp(mode, "exiting")) {
		static void *kept[1000000];
		for (int i = 0; i < 1000000; i++)
			kept[i] = malloc(16);
		printf("exiting\n");
		fflush(stdout);
		return 0;
	}
	if (!strcmp(mode, "segv") || !strcmp(mode, "abort")) {
		lose();
		overflow();
		if (mode[0] == 's')
			crash();
		else
			abort();
		printf("not reached\n");
		return 0;
	}
	if (!strcmp(mode, "race")) {
		lose();
		static void *kept[300000];
		for (int i = 0; i < 300000; i++)
			kept[i] = malloc(16);
		pthread_t t;
		pthread_create(&t, NULL, crash_late, NULL);
		while (!atomic_load(&crashing))
			;
		usleep(20000); /* the checks take longer */
		exit(0);
	}
	if (!strcmp(mode, "recurse") || !strcmp(mode, "term-deep")) {
		lose();
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		if (mode[0] == 't')
			pthread_attr_setstacksize(&attr, 16384);
		pthread_t t;
		pthread_create(&t, &attr, mode[0] == 'r' ? recurse_thread : deep_wait, NULL);
		if (mode[0] == 't') {
			sigset_t term;
			sigemptyset(&term);
			sigaddset(&term, SIGTERM);
			pthread_sigmask(SIG_BLOCK, &term, NULL);
			usleep(50000);
			kill(getpid(), SIGTERM);
		}
		pthread_join(t, NULL);
		printf("not reached\n");
		return 0;
	}
	if (!strcmp(mode, "divide")) {
		lose();
		volatile int zero = argc - 2;
		printf("%d\n", 10 / zero);
		return 0;
	}
	if (!strcmp(mode, "busy")) {
		lose();
		printf("ready\n");
		fflush(stdout);
		for (;;)
			free(malloc(64));
	}
	if (!strcmp(mode, "twice")) {
		lose();
		char *volatile p = malloc(20);
		free(p);
		free(p);
		printf("not reached\n");
		return 0;
	}
	if (!strcmp(mode, "inherited")) {
		raise(SIGHUP);
		printf("alive\n");
		return 0;
	}
	pid_t pid = strcmp(mode, "child") ? 0 : fork();
	if (pid == 0) {
		lose();
		overflow();
		raise(SIGTERM);
		printf("not reached\n");
		return 0;
	}
	int status;
	waitpid(pid, &status, 0);
	printf("child: signal %d\n", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	return 0;
}
