/* Runs one command with a chosen LD_PRELOAD and prints its wall time, peak RSS, CPU time and how it ended. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pid_t child_pid;
static volatile sig_atomic_t stop_signal;

/* The child runs in its own process group so that a timeout or a Ctrl-C kills
 * its helpers (gcc's cc1) too: a hung allocator must not stall the suite. */
static void on_stop(int sig)
{
	stop_signal = sig;
	kill(-child_pid, SIGKILL);
}

static void usage(void)
{
	fprintf(stderr, "usage: runone [-p PRELOAD] [-t TIMEOUT_S] -- COMMAND [ARG...]\n"
			"  -p  library for LD_PRELOAD; without it LD_PRELOAD is removed\n"
			"prints: WALL_S MAXRSS_KIB CPU_S STATUS   (CPU_S: user + system;\n"
			"        STATUS: ok, exit=N, signal=N, timeout)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *preload = NULL;
	unsigned timeout_s = 0;
	int opt;

	while ((opt = getopt(argc, argv, "+p:t:")) != -1) {
		if (opt == 'p')
			preload = optarg;
		else if (opt == 't')
			timeout_s = (unsigned)atoi(optarg);
		else
			usage();
	}
	if (optind >= argc)
		usage();

	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	child_pid = fork();
	if (child_pid < 0) {
		perror("runone: fork");
		return 2;
	}
	if (child_pid == 0) {
		setpgid(0, 0);
		if (preload)
			setenv("LD_PRELOAD", preload, 1);
		else
			unsetenv("LD_PRELOAD");
		execvp(argv[optind], argv + optind);
		fprintf(stderr, "runone: exec %s: %s\n", argv[optind], strerror(errno));
		_exit(127);
	}

	setpgid(child_pid, child_pid);
	signal(SIGALRM, on_stop);
	signal(SIGINT, on_stop);
	signal(SIGTERM, on_stop);
	alarm(timeout_s);
	int status;
	struct rusage ru;
	while (wait4(child_pid, &status, 0, &ru) < 0) {
		if (errno != EINTR) {
			perror("runone: wait4");
			return 2;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	alarm(0);
	if (stop_signal == SIGINT || stop_signal == SIGTERM)
		return 128 + stop_signal;

	/* The child's own peak, or the largest of its waited-for descendants
	 * (gcc's cc1): RUSAGE_CHILDREN keeps the maximum over all of them. */
	struct rusage children;
	getrusage(RUSAGE_CHILDREN, &children);
	long maxrss_kib = ru.ru_maxrss > children.ru_maxrss ? ru.ru_maxrss : children.ru_maxrss;

	double wall_s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	/* CPU time, unlike wall time, barely moves when other work shares the machine. */
	double cpu_s = (double)(children.ru_utime.tv_sec + children.ru_stime.tv_sec) +
		       (double)(children.ru_utime.tv_usec + children.ru_stime.tv_usec) / 1e6;
	printf("%.6f %ld %.6f ", wall_s, maxrss_kib, cpu_s);
	if (stop_signal == SIGALRM)
		printf("timeout\n");
	else if (WIFSIGNALED(status))
		printf("signal=%d\n", WTERMSIG(status));
	else if (WEXITSTATUS(status) != 0)
		printf("exit=%d\n", WEXITSTATUS(status));
	else
		printf("ok\n");
	return 0;
}
