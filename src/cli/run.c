/* run.c — the program as a child: fork and exec, wait while the report is read, pass on the
 * signals sent to the command, and end the command the way the program ended. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "launch.h"

/* Held blocked in the command and taken with sigtimedwait, so that the wait can also poll. */
static sigset_t waited;
static sigset_t original_mask;

int hg_run_start(char *const argv[], pid_t *pid)
{
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		fprintf(stderr, "heapguard: pipe: %s\n", strerror(errno));
		return HG_EXIT_LAUNCHER;
	}
	/* Every signal sent to the command goes on to the program, but the ones a fault raises
	 * (blocked, they would kill the command at once) and job control's (the command stops
	 * with its group). SIGUSR1 used to end the command and, through the program's death
	 * signal, the program, with no report. */
	static const int WAITED[] = { SIGCHLD, SIGHUP,   SIGINT,    SIGQUIT, SIGABRT,  SIGUSR1, SIGUSR2,
				      SIGALRM, SIGTERM,  SIGSTKFLT, SIGURG,  SIGXCPU,  SIGXFSZ, SIGVTALRM,
				      SIGPROF, SIGWINCH, SIGIO,     SIGPWR };
	sigemptyset(&waited);
	for (size_t i = 0; i < sizeof WAITED / sizeof WAITED[0]; i++)
		sigaddset(&waited, WAITED[i]);
	for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++)
		sigaddset(&waited, sig);
	sigprocmask(SIG_BLOCK, &waited, &original_mask);
	fflush(NULL);
	pid_t command = getpid();
	*pid = fork();
	if (*pid < 0) {
		fprintf(stderr, "heapguard: fork: %s\n", strerror(errno));
		return HG_EXIT_LAUNCHER;
	}
	if (*pid == 0) {
		/* The program goes with the command: one killed (SIGKILL is not passed on) left it
		 * running on, its reports unread (valgrind's program is its own process). */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != command)
			_exit(HG_EXIT_LAUNCHER);
		sigprocmask(SIG_SETMASK, &original_mask, NULL);
		close(pipefd[0]);
		execvp(argv[0], argv);
		/* The pipe is close-on-exec: the parent reads EOF on success, errno on failure. */
		int err = errno;
		if (write(pipefd[1], &err, sizeof err) < 0)
			_exit(HG_EXIT_LAUNCHER);
		_exit(HG_EXIT_NOT_FOUND);
	}
	/* A reader of the report that goes away (heapguard prog 2>&1 | head) must not kill the
	 * command before it removes the record stream and ends as the program did. */
	signal(SIGPIPE, SIG_IGN);
	close(pipefd[1]);
	int err;
	ssize_t got;
	while ((got = read(pipefd[0], &err, sizeof err)) < 0 && errno == EINTR)
		;
	close(pipefd[0]);
	if (got != (ssize_t)sizeof err)
		return 0;
	waitpid(*pid, NULL, 0);
	return hg_exec_failed(argv[0], err);
}

/* A signal a process sent to the command alone is passed on; one from the terminal (the
 * kernel) already reached the program too, as the whole foreground group gets it. */
static void forward(pid_t pid, int sig, const siginfo_t *si)
{
	if (sig != SIGCHLD && si->si_code <= 0)
		kill(pid, sig);
}

int hg_run_wait(pid_t pid, unsigned poll_ms, void (*poll)(void *arg), void *arg)
{
	const struct timespec interval = { poll_ms / 1000, (long)(poll_ms % 1000) * 1000000L };
	int status = HG_EXIT_LAUNCHER << 8; /* as if exited with 125, should waitpid fail */
	for (;;) {
		poll(arg);
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid || (r < 0 && errno != EINTR))
			break;
		siginfo_t si;
		int sig = sigtimedwait(&waited, &si, &interval);
		if (sig > 0)
			forward(pid, sig, &si);
	}
	poll(arg);
	return status;
}

void hg_exit_as(int status)
{
	fflush(NULL);
	if (!WIFSIGNALED(status))
		exit(WIFEXITED(status) ? WEXITSTATUS(status) : HG_EXIT_LAUNCHER);
	int sig = WTERMSIG(status);
	/* The program's core dump, if any, was written; one of the command would mislead. */
	struct rlimit no_core = { 0, 0 };
	setrlimit(RLIMIT_CORE, &no_core);
	signal(sig, SIG_DFL);
	sigset_t only;
	sigemptyset(&only);
	sigaddset(&only, sig);
	sigprocmask(SIG_UNBLOCK, &only, NULL);
	raise(sig);
	exit(128 + sig); /* a signal whose default action is not to terminate */
}
