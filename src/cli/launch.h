/* launch.h — contract between the heapguard command's option parser and its program launcher. */
#ifndef HG_CLI_LAUNCH_H
#define HG_CLI_LAUNCH_H

#include <limits.h>

/* Exit statuses of the command itself, following env(1) and the shell: 125 means heapguard
 * could not do its own job, 126 and 127 mean the program could not be run. Once the program
 * runs, its own exit status is the command's, because exec replaces us. */
enum {
	HG_EXIT_USAGE = 2,
	HG_EXIT_LAUNCHER = 125,
	HG_EXIT_CANNOT_EXEC = 126,
	HG_EXIT_NOT_FOUND = 127,
};

/* Writes the absolute path of libheapguard.so into path: the build tree keeps it next to the
 * command, an installation in ../lib. Returns 0, or -1 after printing why on stderr. */
int hg_find_library(char path[PATH_MAX]);

/* Appends "key=value" to HEAPGUARD_OPTIONS. Returns 0, or -1 after printing why on stderr. */
int hg_add_library_option(const char *setting);

/* Preloads the library into argv[0] and executes it; returns only on failure, with the exit
 * status to use after the message has been printed. */
int hg_exec_preloaded(const char *library, char *const argv[]);

#endif
