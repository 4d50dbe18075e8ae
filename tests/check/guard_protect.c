/* guard_protect: a heap page the program protects itself (mprotect), then writes.
 * argv[1] "barrier": its own SIGSEGV handler opens the page again and returns, as a garbage
 * collector's write barrier does; the write then succeeds. "die": no handler, the write
 * faults. Built for --guard-uninit, which once retried such a fault forever. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static char *page;
static volatile sig_atomic_t barriers;

static void on_segv(int sig, siginfo_t *si, void *ctx)
{
	(void)sig;
	(void)ctx;
	if ((char *)si->si_addr < page || (char *)si->si_addr >= page + 4096)
		abort();
	barriers++;
	mprotect(page, 4096, PROT_READ | PROT_WRITE);
}

__attribute__((noinline)) void store(volatile char *p)
{
	*p = 1;
}

int main(int argc, char **argv)
{
	int barrier = argc > 1 && !strcmp(argv[1], "barrier");
	if (posix_memalign((void **)&page, 4096, 8192))
		return 2;
	memset(page, 0, 8192);
	if (barrier) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_sigaction = on_segv;
		sa.sa_flags = SA_SIGINFO;
		sigaction(SIGSEGV, &sa, NULL);
	}
	if (mprotect(page, 4096, PROT_READ))
		return 3;
	printf("read %d\n", page[5]);
	fflush(stdout);
	store(page + 5);
	printf("wrote %d after %d barrier faults\n", page[5], (int)barriers);
	free(page);
	return 0;
}
