/* guard_thread: a heap overflow onto a guard page on a thread other than main. argv[1]
 * "blocked": the worker starts with every signal blocked (main blocks them around
 * pthread_create, as servers do), SIGSEGV included. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) void overrun(char *p, int n)
{
	for (int i = 0; i <= n; i++) /* BUG: <= */
		p[i] = 'x';
}

static void *worker(void *arg)
{
	(void)arg;
	char *p = malloc(32);
	overrun(p, 32);
	free(p);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t;
	sigset_t all, old;
	int blocked = argc > 1 && !strcmp(argv[1], "blocked");
	free(malloc(1)); /* main allocates first: the worker is thread 2 */
	sigfillset(&all);
	if (blocked)
		sigprocmask(SIG_BLOCK, &all, &old);
	pthread_create(&t, NULL, worker, NULL);
	if (blocked)
		sigprocmask(SIG_SETMASK, &old, NULL);
	pthread_join(t, NULL);
	fprintf(stderr, "survived\n");
	return 0;
}
