/* guard_thread: a heap overflow onto a guard page on a thread other than main. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

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

int main(void)
{
	pthread_t t;
	free(malloc(1)); /* main allocates first: the worker is thread 2 */
	pthread_create(&t, NULL, worker, NULL);
	pthread_join(t, NULL);
	fprintf(stderr, "survived\n");
	return 0;
}
