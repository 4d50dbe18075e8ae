/* ending_signals: signals whose default action ends the process.
 *   term       loses 100 bytes, writes one byte past a block of 10, then raises SIGTERM
 *   child      the same in a forked child; the parent prints the child's signal
 *   view       what the program sees and sets: SIG_DFL at the start, its own handler, SIG_IGN,
 *              SIG_DFL again, then raises SIGINT
 *   inherited  raises SIGHUP, which the program was started ignoring (nohup) */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
