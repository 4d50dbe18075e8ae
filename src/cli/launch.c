/* launch.c — finds libheapguard.so, prepares the program's environment and executes it. */
#include "launch.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check/records.h"
#include "util.h"

/* Copies the directory holding this executable into dir; /proc/self/exe rather than argv[0]
 * because the command may have been found through PATH or a symlink. */
static int get_exe_dir(char *dir, size_t size)
{
	ssize_t len = readlink("/proc/self/exe", dir, size - 1);
	if (len < 0) {
		fprintf(stderr, "heapguard: cannot read /proc/self/exe: %s\n", strerror(errno));
		return -1;
	}
	dir[len] = '\0';
	char *slash = strrchr(dir, '/');
	if (slash != NULL)
		*slash = '\0';
	return 0;
}

/* ld.so splits LD_PRELOAD at spaces and colons, so a path holding either cannot be preloaded. */
static int is_preloadable(const char *path)
{
	return strpbrk(path, ": ") == NULL;
}

int hg_find_library(const char *name, char path[PATH_MAX])
{
	/* The build tree first, so that a developer runs the library just built. */
	static const char *const CANDIDATES[] = { "%s/%s", "%s/../lib/%s" };
	char dir[PATH_MAX], candidate[2 * PATH_MAX];

	if (get_exe_dir(dir, sizeof dir) < 0)
		return -1;
	for (size_t i = 0; i < sizeof CANDIDATES / sizeof CANDIDATES[0]; i++) {
		snprintf(candidate, sizeof candidate, CANDIDATES[i], dir, name);
		if (realpath(candidate, path) == NULL)
			continue;
		if (is_preloadable(path))
			return 0;
		fprintf(stderr, "heapguard: cannot preload %s: LD_PRELOAD paths may not contain "
			"spaces or colons\n", path);
		return -1;
	}
	fprintf(stderr, "heapguard: %s not found in %s or %s/../lib\n", name, dir, dir);
	return -1;
}

/* Sets the variable name to first and second joined by ':', the separator of both variables
 * we touch; no colon when either part is empty, since an empty item would be one more entry. */
static int join_env(const char *name, const char *first, const char *second)
{
	size_t len = strlen(first) + 1 + strlen(second) + 1;
	char *value = malloc(len);
	if (value == NULL) {
		fprintf(stderr, "heapguard: out of memory\n");
		return -1;
	}
	snprintf(value, len, "%s%s%s", first, *first && *second ? ":" : "", second);
	int rc = setenv(name, value, 1);
	free(value);
	if (rc < 0)
		fprintf(stderr, "heapguard: cannot set %s: %s\n", name, strerror(errno));
	return rc;
}

static const char *const USER_ENV_NAMES[] = HG_USER_ENV_NAMES;
#define USER_ENV_COUNT (sizeof USER_ENV_NAMES / sizeof USER_ENV_NAMES[0])
static char *user_env[USER_ENV_COUNT]; /* "NAME=value", NULL where the user had none */

void hg_keep_user_env(void)
{
	for (size_t i = 0; i < USER_ENV_COUNT; i++) {
		const char *v = getenv(USER_ENV_NAMES[i]);
		struct hg_text entry = { 0 };
		if (v)
			hg_text_printf(&entry, "%s=%s", USER_ENV_NAMES[i], v);
		user_env[i] = entry.s;
	}
}

int hg_hand_down_user_env(void)
{
	for (size_t i = 0; i < USER_ENV_COUNT; i++) {
		char name[64];
		snprintf(name, sizeof name, "%s%s", HG_USER_ENV_PREFIX, USER_ENV_NAMES[i]);
		if (setenv(name, user_env[i] ? user_env[i] : "", 1) < 0) {
			fprintf(stderr, "heapguard: cannot set %s: %s\n", name, strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* Our settings go after the user's: the library keeps the last value of a key, so the command
 * line wins. */
int hg_add_library_option(const char *setting)
{
	const char *old = getenv("HEAPGUARD_OPTIONS");
	return join_env("HEAPGUARD_OPTIONS", old ? old : "", setting);
}

/* The library goes first so that its malloc interposes any other preloaded one. */
int hg_set_preload(const char *library)
{
	const char *old = getenv("LD_PRELOAD");
	return join_env("LD_PRELOAD", library, old ? old : "");
}

/* The file execvp(argv0) runs, into file: argv0 itself when it holds a slash, else the first
 * executable regular file of that name in PATH. 0 when there is none. */
static int program_file(const char *argv0, char file[PATH_MAX], struct stat *st)
{
	if (strchr(argv0, '/'))
		return snprintf(file, PATH_MAX, "%s", argv0) < PATH_MAX && stat(argv0, st) == 0;
	const char *path = getenv("PATH");
	for (const char *dir = path ? path : "/usr/bin:/bin"; *dir;) {
		size_t len = strcspn(dir, ":");
		if (snprintf(file, PATH_MAX, "%.*s/%s", (int)len, len ? dir : ".", argv0) < PATH_MAX &&
		    stat(file, st) == 0 && S_ISREG(st->st_mode) && access(file, X_OK) == 0)
			return 1;
		dir += len + (dir[len] == ':');
	}
	return 0;
}

static int open_program(const char *argv0, struct stat *st)
{
	char file[PATH_MAX];
	return program_file(argv0, file, st) ? open(file, O_RDONLY | O_CLOEXEC) : -1;
}

/* 1 when the 64-bit ELF file fd has no PT_INTERP: no dynamic loader runs, so none reads
 * LD_PRELOAD (a static-pie executable has none either). */
static int is_static_elf(int fd)
{
	Elf64_Ehdr eh;
	if (pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(Elf64_Phdr))
		return 0;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + i * sizeof ph)) != (ssize_t)sizeof ph)
			return 0;
		if (ph.p_type == PT_INTERP)
			return 0;
	}
	return 1;
}

const char *hg_preload_blocker(const char *argv0)
{
	struct stat st;
	int fd = open_program(argv0, &st);
	if (fd < 0)
		return NULL;
	const char *why = NULL;
	if (is_static_elf(fd))
		why = "it is statically linked";
	else if ((st.st_mode & S_ISUID && st.st_uid != geteuid()) || (st.st_mode & S_ISGID && st.st_gid != getegid()))
		why = "it is set-user-ID or set-group-ID"; /* ld.so's secure mode drops LD_PRELOAD */
	close(fd);
	return why;
}

#define SHEBANG_BYTES 256 /* the most of a #! line the kernel reads (BINPRM_BUF_SIZE) */
#define SCRIPT_DEPTH_MAX 16 /* deeper than the kernel follows #! (5 scripts, then ELOOP) */

/* The program the #! line of the file at path names, in buf; NULL when it has none. */
static const char *shebang(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, size - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n < 2 || buf[0] != '#' || buf[1] != '!')
		return NULL;
	buf[n] = '\0';
	char *name = buf + 2 + strspn(buf + 2, " \t");
	name[strcspn(name, " \t\n")] = '\0';
	return *name ? name : NULL;
}

/* An existing program whose exec failed with ENOENT: a program it needs is missing. Says
 * which: the interpreter its #! line names, or the one that interpreter's own #! line names
 * (and so on), or else the dynamic loader of the last of them. */
static void say_bad_interpreter(const char *argv0)
{
	char lines[2][SHEBANG_BYTES]; /* the interpreter named, and the one it names */
	const char *interp = shebang(argv0, lines[0], sizeof lines[0]);
	fprintf(stderr, "heapguard: %s: bad interpreter: ", argv0);
	if (interp == NULL) {
		fputs("the dynamic loader it was linked for does not exist\n", stderr);
		return;
	}
	fprintf(stderr, "its #! line names %s", interp);
	struct stat st;
	for (int depth = 1; depth < SCRIPT_DEPTH_MAX; depth++) {
		if (stat(interp, &st) < 0) {
			fputs(", which does not exist\n", stderr);
			return;
		}
		const char *next = shebang(interp, lines[depth % 2], sizeof lines[0]);
		if (next == NULL)
			break;
		fprintf(stderr, ", whose own #! line names %s", next);
		interp = next;
	}
	fputs(", which exists, but not the dynamic loader it was linked for\n", stderr);
}

/* Same wording and statuses as a shell: a bare name is looked up in PATH; a file that exists
 * but "does not" misses a program it needs to start (one found in PATH too: a script there
 * whose interpreter is missing was said not to be found). */
int hg_exec_failed(const char *argv0, int err)
{
	struct stat st;
	char file[PATH_MAX];
	int exists = program_file(argv0, file, &st);
	if (err == ENOENT && exists) {
		say_bad_interpreter(file);
		return HG_EXIT_NOT_FOUND; /* bash's, dash's and env's status */
	}
	if (err == ENOENT && strchr(argv0, '/') == NULL) {
		fprintf(stderr, "heapguard: %s: command not found\n", argv0);
		return HG_EXIT_NOT_FOUND;
	}
	if (exists && S_ISDIR(st.st_mode))
		err = EISDIR;
	fprintf(stderr, "heapguard: %s: %s\n", argv0, strerror(err));
	return err == ENOENT ? HG_EXIT_NOT_FOUND : HG_EXIT_CANNOT_EXEC;
}

int hg_exec_preloaded(const char *library, char *const argv[])
{
	if (hg_set_preload(library) < 0)
		return HG_EXIT_LAUNCHER;
	/* Replaced by the program, the command cannot tell afterwards: it says so before. */
	const char *why = hg_preload_blocker(argv[0]);
	if (why)
		fprintf(stderr, "heapguard: warning: %s will run without %s (%s)\n", argv[0],
			strrchr(library, '/') ? strrchr(library, '/') + 1 : library, why);
	execvp(argv[0], argv);
	return hg_exec_failed(argv[0], errno);
}
