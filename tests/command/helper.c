/* helper.c — one small program per situation the heapguard command must survive, chosen by
 * argv[1]; tests/command.py runs it. Each heap error sits on a line marked ERROR-<NAME>, which
 * the test finds by grepping this file. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static char *block(void)
{
	return malloc(8); /* ALLOC-BLOCK */
}

/* memset is intercepted: the overflow is reported where it happens. */
static void overflow(char *p, size_t n)
{
	memset(p, 'x', n); /* ERROR-OVERFLOW */
}

static int children(const char *exec_path)
{
	char *p = block();
	printf("parent %d\n", (int)getpid());
	fflush(stdout);
	pid_t child = fork();
	if (child == 0) {
		printf("child %d\n", (int)getpid());
		fflush(stdout);
		memset(p, 'c', 9); /* ERROR-CHILD */
		_exit(0);
	}
	waitpid(child, NULL, 0);
	pid_t execd = fork();
	if (execd == 0) {
		printf("exec %d\n", (int)getpid());
		fflush(stdout);
		execl(exec_path, exec_path, (char *)NULL);
		_exit(127);
	}
	waitpid(execd, NULL, 0);
	memset(p, 'p', 10); /* ERROR-PARENT */
	free(p);
	return 0;
}

/* Closes every descriptor, then opens files that take the low numbers, the ones the library
 * may have used: its records must reach the command, never these files. */
static int close_all(int use_closefrom, const char *dir)
{
#ifdef __GLIBC__
	if (use_closefrom)
		closefrom(0);
	else
#endif
		for (int fd = 0; fd < 1024; fd++)
			close(fd);
	for (int i = 0; i < 8; i++) {
		char path[4096];
		snprintf(path, sizeof path, "%s/file%d", dir, i);
		if (open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600) < 0)
			return 1;
	}
	overflow(block(), 11);
	return 0;
}

/* A daemon's way: the child starts its own session and outlives the program; once the
 * program (a pipe) and the command (its record file) have gone, it overflows a block. The
 * program waits for the child's first word, so that the child exists (and the library wrote
 * its record) first. */
static int daemon_child(void)
{
	int started[2], gone[2];
	char c = 0;
	if (pipe(started) || pipe(gone))
		return 1;
	pid_t pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		setsid();
		close(started[0]);
		close(gone[1]);
		printf("daemon %d\n", (int)getpid());
		fflush(stdout);
		if (write(started[1], &c, 1) != 1 || read(gone[0], &c, 1) != 0) /* EOF: the program ended */
			_exit(1);
		/* and the command too, once its record file is gone (10 s at most) */
		const char *records = getenv("HEAPGUARD_RECORDS");
		for (int i = 0; records && access(records, F_OK) == 0 && i < 1000; i++)
			usleep(10000);
		overflow(block(), 9); /* ERROR-DAEMON */
		return 0;
	}
	close(started[1]);
	close(gone[0]);
	if (read(started[0], &c, 1) != 1)
		return 1;
	return 0; /* the gone pipe's last writer closes as the program exits */
}

/* A job left in the background: the child executes argv[0..] and the program ends once the
 * exec is done (the pipe's write end closes on exec), before or after the new program loads. */
static int background_exec(char **argv)
{
	int done[2];
	char c;
	if (pipe2(done, O_CLOEXEC))
		return 1;
	pid_t pid = fork();
	if (pid == 0) {
		printf("child %d\n", (int)getpid());
		fflush(stdout);
		execv(argv[0], argv);
		_exit(127);
	}
	close(done[1]);
	return pid < 0 || read(done[0], &c, 1) != 0;
}

/* The lowest free descriptor is the program's; then an overflow, found at the free. A
 * function of its own: main's frame keeps the other cases' pointers where they were. */
static int open_fd(void)
{
	printf("fd=%d\n", open("/dev/null", O_RDONLY));
	fflush(stdout);
	overflow(block(), 9);
	return 0;
}

/* Two overflows and their block's malloc on one line (a function of its own: main's frame
 * stays as the leak modes expect it). */
__attribute__((noinline)) static int same_line(void)
{
	const char *volatile s = "0123456789";
	char *d; d = malloc(4); strcpy(d, s); puts(d); free(d); /* ERROR-SAME-LINE */
	return 0;
}

/* Executes argv[0..] under a seccomp filter that fails every open with O_CREAT (ENOSYS), as
 * man-db's sandbox does for the filters it runs. */
static int sandboxed(char **argv)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2])),
		BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, O_CREAT, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof f / sizeof f[0], f };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
		return 126;
	execv(argv[0], argv);
	return 127;
}

/* posix_spawn argv[0..] and wait. */
static int spawn(char **argv)
{
	pid_t child;
	if (posix_spawn(&child, argv[0], NULL, NULL, argv, environ))
		return 126;
	int status;
	waitpid(child, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* Says "ready", then names each of SIGUSR1, SIGUSR2, SIGALRM and SIGRTMIN+1 as it comes, until
 * all four came. */
static volatile sig_atomic_t came;

static void note(int sig)
{
	const char *name = sig == SIGUSR1 ? "USR1\n" : sig == SIGUSR2 ? "USR2\n" : sig == SIGALRM ? "ALRM\n" : "RTMIN+1\n";
	if (write(1, name, strlen(name)) < 0)
		_exit(1);
	came++;
}

static int signals(void)
{
	const int sigs[] = { SIGUSR1, SIGUSR2, SIGALRM, SIGRTMIN + 1 };
	for (int i = 0; i < 4; i++)
		signal(sigs[i], note);
	free(block());
	printf("ready\n");
	fflush(stdout);
	while (came < 4)
		pause();
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	if (!strcmp(mode, "signals"))
		return signals();
	if (!strcmp(mode, "open-fd"))
		return open_fd();
	if (!strcmp(mode, "daemon"))
		return daemon_child();
	if (!strcmp(mode, "sandboxed")) /* argv[2..] under a seccomp filter */
		return sandboxed(argv + 2);
	if (!strcmp(mode, "background-exec"))
		return background_exec(argv + 2);
	if (!strcmp(mode, "children"))
		return children(argv[2]);
	if (!strcmp(mode, "spawn"))
		return spawn(argv + 2);
	if (!strcmp(mode, "spawn-records")) /* argv[3..] records into argv[2], as another command's */
		return setenv("HEAPGUARD_RECORDS", argv[2], 1) ? 126 : spawn(argv + 3);
	if (!strcmp(mode, "fexecve")) { /* executes the file argv[2] by its descriptor */
		int fd = open(argv[2], O_RDONLY);
		fexecve(fd, argv + 2, environ);
		return 126;
	}
	if (!strcmp(mode, "system")) /* the shell runs argv[2] */
		return system(argv[2]) == 0 ? 0 : 1;
	if (!strcmp(mode, "exec-fails")) { /* execs that fail leave this program checked */
		execlp("no-such-program-here", "no-such-program-here", (char *)NULL);
		execl("/no/such/program", "program", (char *)NULL);
		overflow(block(), 12); /* ERROR-AFTER-EXEC */
		return 0;
	}
	if (!strcmp(mode, "kill") || !strcmp(mode, "segv")) {
		overflow(block(), 9);
		fflush(stdout);
		if (!strcmp(mode, "kill"))
			kill(getpid(), SIGKILL);
		*(volatile int *)16 = 1; /* ERROR-SEGV */
		return 0;
	}
	if (!strcmp(mode, "quietkill")) /* checked, and killed before it reported anything */
		kill(getpid(), SIGKILL);
	if (!strcmp(mode, "closefds") || !strcmp(mode, "closefrom"))
		return close_all(!strcmp(mode, "closefrom"), argv[2]);
	if (!strcmp(mode, "chdir")) {
		if (chdir("/") != 0)
			return 1;
		overflow(block(), 12);
		return 0;
	}
	if (!strcmp(mode, "stdout")) { /* a lot of output around an error */
		for (int i = 0; i < 20000; i++) {
			printf("line %d of the program's own output\n", i);
			if (i == 10000)
				overflow(block(), 9);
		}
		return 0;
	}
	if (!strcmp(mode, "exit")) {
		return atoi(argv[2]);
	}
	if (!strcmp(mode, "repeat")) { /* one context, five errors */
		char *p = block();
		for (int i = 0; i < 5; i++)
			memset(p, 'r', 9); /* ERROR-REPEAT */
		free(p);
		return 0;
	}
	if (!strcmp(mode, "live")) { /* the report must come out while the program still runs */
		overflow(block(), 9);
		usleep(600 * 1000);
		fprintf(stderr, "program still running\n");
		return 0;
	}
	if (!strcmp(mode, "kinds")) { /* one leak of each kind: 24+2*16 lost, 300 possibly, 500 reachable */
		static void *keep, *inside;
		void **head = malloc(24);
		head[0] = malloc(16);
		head[1] = malloc(16);
		head = NULL;
		inside = (char *)malloc(300) + 100;
		keep = malloc(500);
		return keep == NULL || inside == NULL;
	}
	if (!strcmp(mode, "reachable")) { /* a block a global still points to at exit */
		static void *keep;
		keep = malloc(4242);
		return keep == NULL;
	}
	if (!strcmp(mode, "same-line"))
		return same_line();
	if (!strcmp(mode, "overflow-store")) { /* a plain store just past a block */
		char *volatile p = malloc(64);
		p[64] = 'o'; /* ERROR-OVERFLOW-STORE */
		free(p);
		return 0;
	}
	if (!strcmp(mode, "underflow")) { /* a plain store just before a block */
		char *volatile p = malloc(64);
		p[-1] = 'u'; /* ERROR-UNDERFLOW */
		free(p);
		return 0;
	}
	if (!strcmp(mode, "write-after-free-churn")) {
		char *volatile p = malloc(32);
		free(p);
		p[8] = 'w'; /* ERROR-WRITE-AFTER-FREE */
		for (int i = 0; i < 1000; i++) /* pushes p out of a small quarantine */
			free(malloc(64));
		fprintf(stderr, "churn done\n");
		return 0;
	}
	fprintf(stderr, "helper: unknown mode '%s'\n", mode);
	return 2;
}
