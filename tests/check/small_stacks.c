/* small_stacks.c — heap calls and errors on small stacks, for tests/check_heap.py:
 *   coroutine SIZE        malloc and free on a makecontext stack of SIZE bytes (a malloc'd
 *                         one, so that running past its end is an overflow of that block)
 *   coroutine-mmap SIZE   the same on a stack mapped apart, a guard page below it (above the
 *                         thread's: unknown to the stack cache, unwound by libunwind)
 *   coroutine-double-free the same on 8 KiB, freeing a block twice
 *   thread-double-free    a double free in a thread with a PTHREAD_STACK_MIN stack */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>

#define NOINLINE __attribute__((noinline))

static ucontext_t main_ctx, co_ctx;
static int twice;

static NOINLINE void free_twice(char *p)
{
	free(p);
	free(p);
}

static NOINLINE void on_coroutine(void)
{
	for (int i = 0; i < 100; i++) {
		char *volatile p = malloc(16 + (size_t)i * 8);
		free(p);
	}
	if (twice)
		free_twice(malloc(24));
}

static NOINLINE void *in_small_thread(void *arg)
{
	free_twice(malloc(24));
	return arg;
}

int main(int argc, char **argv)
{
	const char *c = argc > 1 ? argv[1] : "";
	if (!strncmp(c, "coroutine", 9)) {
		twice = !strcmp(c, "coroutine-double-free");
		size_t size = argc > 2 ? strtoul(argv[2], NULL, 0) : 8192;
		int mapped = !strcmp(c, "coroutine-mmap");
		char *stack = mapped ? mmap(NULL, size + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
					    -1, 0) : malloc(size);
		if (mapped) {
			mprotect(stack, 4096, PROT_NONE);
			stack += 4096;
		}
		getcontext(&co_ctx);
		co_ctx.uc_stack.ss_sp = stack;
		co_ctx.uc_stack.ss_size = size;
		co_ctx.uc_link = &main_ctx;
		makecontext(&co_ctx, on_coroutine, 0);
		swapcontext(&main_ctx, &co_ctx);
		if (!mapped)
			free(stack);
	} else if (!strcmp(c, "thread-double-free")) {
		pthread_attr_t attr;
		pthread_t t;
		pthread_attr_init(&attr);
		pthread_attr_setstacksize(&attr, PTHREAD_STACK_MIN);
		pthread_create(&t, &attr, in_small_thread, NULL);
		pthread_join(t, NULL);
	} else {
		fprintf(stderr, "usage: small_stacks coroutine [SIZE]|coroutine-mmap SIZE|coroutine-double-free|thread-double-free\n");
		return 2;
	}
	printf("ok\n");
	return 0;
}
