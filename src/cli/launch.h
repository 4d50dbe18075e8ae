/* launch.h — contract between the heapguard command's option parser and its program launcher. */
#ifndef HG_CLI_LAUNCH_H
#define HG_CLI_LAUNCH_H

#include <limits.h>
#include <sys/types.h>

/* Exit statuses of the command itself, following env(1) and the shell: 125 means heapguard
 * could not do its own job, 126 and 127 mean the program could not be run. Once the program
 * runs, the command ends the way the program did (run.c), or with --error-exitcode. */
enum {
	HG_EXIT_USAGE = 2,
	HG_EXIT_LAUNCHER = 125,
	HG_EXIT_CANNOT_EXEC = 126,
	HG_EXIT_NOT_FOUND = 127,
};

/* ---- launch.c: the program's environment ---- */
/* Writes the absolute path of the library `name` into path: the build tree keeps it next to
 * the command, an installation in ../lib. Returns 0, or -1 after printing why on stderr. */
int hg_find_library(const char *name, char path[PATH_MAX]);

/* Keeps the user's values of the variables the command sets (check/records.h's
 * HG_USER_ENV_NAMES); called before it sets any. */
void hg_keep_user_env(void);

/* For --trace-children=no: hands the kept values down to the library (check/records.h), which
 * puts them back for the programs PROGRAM executes. Returns 0, or -1 after printing why on
 * stderr. */
int hg_hand_down_user_env(void);

/* Appends "key=value" to HEAPGUARD_OPTIONS. Returns 0, or -1 after printing why on stderr. */
int hg_add_library_option(const char *setting);

/* Puts the library first in LD_PRELOAD. Returns 0, or -1 after printing why on stderr. */
int hg_set_preload(const char *library);

/* Why LD_PRELOAD cannot bring a library into the program argv0 (looked up in PATH as execvp
 * does): "it is statically linked", "it is set-user-ID or set-group-ID", or NULL when its
 * file shows no reason. */
const char *hg_preload_blocker(const char *argv0);

/* Says why execvp(argv0) failed with err, as a shell would; returns the exit status to use. */
int hg_exec_failed(const char *argv0, int err);

/* Preloads the library into argv[0] and executes it; returns only on failure, with the exit
 * status to use after the message has been printed. */
int hg_exec_preloaded(const char *library, char *const argv[]);

/* ---- run.c: the program as a child ---- */
/* Forks and executes argv (environment already prepared). Returns 0 with *pid set, or the
 * exit status to use (126, 127, 125) after the message has been printed. */
int hg_run_start(char *const argv[], pid_t *pid);
/* Waits for the child, calling poll(arg) about every poll_ms milliseconds and once more
 * after it ended; forwards the termination signals sent to the command. Returns the wait
 * status. */
int hg_run_wait(pid_t pid, unsigned poll_ms, void (*poll)(void *arg), void *arg);
/* Ends the command as the child ended: its exit status, or death by its signal (re-raised,
 * without a core dump of the command itself). */
void __attribute__((noreturn)) hg_exit_as(int status);

#endif
