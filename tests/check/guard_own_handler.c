/* guard_own_handler: a program that catches its own SIGSEGV and recovers with siglongjmp.
 * argv[1] "null": the fault is a NULL read; "heap": a heap overflow onto a guard page.
 * argv[2] "signal": the handler is set by signal(), System V's one-shot one when built in
 * strict ISO mode (gcc -std=c11: __sysv_signal), and sets itself again. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static sigjmp_buf env;
static volatile sig_atomic_t caught;

static void on_segv(int sig, siginfo_t *si, void *ctx)
{
	(void)si;
	(void)ctx;
	caught = sig;
	siglongjmp(env, 1);
}

static void on_segv_plain(int sig)
{
	signal(SIGSEGV, on_segv_plain);
	caught = sig;
	siglongjmp(env, 1);
}

__attribute__((noinline)) int probe(volatile int *p, int i)
{
	return p[i];
}

int main(int argc, char **argv)
{
	int heap = argc > 1 && !strcmp(argv[1], "heap");
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_segv;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (argc > 2 && !strcmp(argv[2], "signal")) {
		if (signal(SIGSEGV, on_segv_plain) != SIG_DFL)
			printf("previous handler was not SIG_DFL\n");
	} else {
		if (sigaction(SIGSEGV, &sa, &old) != 0)
			return 2;
		if (old.sa_handler != SIG_DFL)
			printf("previous handler was not SIG_DFL\n");
		sigaction(SIGSEGV, NULL, &old);
		if (old.sa_sigaction != on_segv)
			printf("sigaction does not return the handler set\n");
	}
	int *a = malloc(16 * sizeof *a);
	for (int round = 0; round < 3; round++) {
		if (sigsetjmp(env, 1) == 0) {
			probe(heap ? a : NULL, heap ? 16 : 0);
			printf("no fault\n");
		}
	}
	free(a);
	printf("caught %d\n", (int)caught);
	return 0;
}
