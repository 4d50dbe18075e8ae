/* guard_altstack: a program with its own alternate signal stack. argv[1] "malloc": the stack
 * is a block it malloc'd and never wrote (vim's), then a block's first use, a write (a fault
 * under guard_uninit, delivered onto that stack); "small": a static stack of 8 KiB (the
 * classic SIGSTKSZ), then a NULL read. Either way sigaltstack must give back what was set. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char small[8192];

__attribute__((noinline)) int peek(volatile int *p)
{
	return *p;
}

int main(int argc, char **argv)
{
	int use_malloc = argc > 1 && !strcmp(argv[1], "malloc");
	size_t size = use_malloc ? 4 * 8192 : sizeof small;
	stack_t ss = { .ss_sp = use_malloc ? malloc(size) : small, .ss_size = size }, got;
	if (sigaltstack(&ss, NULL) != 0 || sigaltstack(NULL, &got) != 0)
		return 2;
	if (got.ss_sp != ss.ss_sp || got.ss_size != size || (got.ss_flags & SS_DISABLE))
		printf("sigaltstack gave back another stack\n");
	if (use_malloc) {
		char *p = malloc(64);
		strcpy(p, "hello");
		printf("%s\n", p);
		free(p);
		return 0;
	}
	fflush(stdout);
	return peek(NULL);
}
