/* heapguard.c — the heapguard command: PROGRAM run as a child with the checking library
 * preloaded, its record stream read and rendered as it runs, the reports written at its end
 * (or, with --fast, PROGRAM executed in place with the fast library). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check/records.h"
#include "launch.h"
#include "options.h"
#include "report.h"

#define POLL_MS 50 /* how often the stream is read while the program runs */

/* What the wait loop's poll needs. */
struct session {
	struct timespec start; /* when the program was started, for the XML's times */
	struct hg_reader reader;
	struct hg_report report;
	struct hg_render_options render;
	size_t next_event;
};

static void poll_records(void *arg)
{
	struct session *s = arg;
	hg_records_read(&s->reader, &s->report);
	hg_render_events(&s->report, &s->render, &s->next_event);
}

static char records_dir[PATH_MAX], records_path[PATH_MAX + 16];

/* A private directory (mode 0700) holds the stream, so that no other user can read it or
 * slip records into it; its path is absolute because the program may chdir(). In $TMPDIR, or
 * the first of the usual places that takes it (a stale TMPDIR, a read-only /tmp). */
static int make_records_file(void)
{
	const char *tmp = getenv("TMPDIR");
	const char *places[] = { tmp && tmp[0] == '/' ? tmp : NULL, "/tmp", "/var/tmp", "/dev/shm" };
	int made = 0, err = 0;
	for (size_t i = 0; i < sizeof places / sizeof places[0] && !made; i++) {
		char pattern[PATH_MAX];
		if (!places[i])
			continue;
		snprintf(pattern, sizeof pattern, "%s/heapguard.XXXXXX", places[i]);
		made = mkdtemp(pattern) != NULL;
		err = made ? 0 : errno;
		if (made && realpath(pattern, records_dir) == NULL) {
			err = errno;
			rmdir(pattern);
			made = 0;
		}
	}
	if (!made) {
		fprintf(stderr, "heapguard: cannot make a directory for the record stream in $TMPDIR, /tmp, "
			"/var/tmp or /dev/shm: %s\n", strerror(err));
		return -1;
	}
	snprintf(records_path, sizeof records_path, "%s/records", records_dir);
	int fd = open(records_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "heapguard: cannot create %s: %s\n", records_path, strerror(errno));
		rmdir(records_dir);
		return -1;
	}
	if (setenv(HG_RECORDS_ENV, records_path, 1) < 0) {
		fprintf(stderr, "heapguard: cannot set %s: %s\n", HG_RECORDS_ENV, strerror(errno));
		return -1;
	}
	return fd;
}

static void remove_records_file(void)
{
	unlink(records_path);
	rmdir(records_dir);
}

/* A program the library did not run in: LD_PRELOAD does not reach a static or set-user-ID
 * program, nor one executed with an environment without it. pid 0: the command's own.
 * elsewhere: it was executed with another heapguard command's records file, and that command
 * (one the checked program ran, as heapguard heapguard ./prog) checks it and reports it. */
static void add_unchecked(struct hg_report *rep, int pid, const char *program, const char *executed_by,
			  int elsewhere)
{
	struct hg_unchecked *u = hg_xcalloc(1, sizeof *u);
	int as_asked = executed_by && !hg_settings.trace_children;
	const char *why = as_asked ? "--trace-children=no" : hg_preload_blocker(program);
	u->pid = pid ? pid : rep->main_pid;
	u->program = program;
	u->executed_by = executed_by;
	struct hg_text text = { 0 };
	hg_text_add_name(&text, program);
	if (pid)
		hg_text_printf(&text, " (pid %d)", pid);
	if (executed_by) {
		hg_text_add(&text, ", executed by ");
		hg_text_add_name(&text, executed_by);
		hg_text_add(&text, ",");
	}
	if (elsewhere) {
		hg_text_add(&text, " is checked by another heapguard command, which reports it");
		u->text = hg_intern(text.s);
		free(text.s);
		hg_vec_push(&rep->elsewhere, u);
		return;
	}
	u->reason = why ? why : "LD_PRELOAD did not load it, or it could not write its records";
	hg_text_printf(&text, " ran without libheapguard-check.so (%s): its heap was not checked", u->reason);
	u->text = hg_intern(text.s);
	free(text.s);
	if (!pid) {
		rep->unchecked = u->text;
		rep->unchecked_as_asked = as_asked;
	}
	hg_vec_push(&rep->not_checked, u);
}

/* A process of the program's that is still there: it outlived the program. A zombie is
 * not (killed, its parent has not waited for it yet), though kill() still finds it. */
static int still_running(int pid)
{
	char path[64], stat[512];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	FILE *f = fopen(path, "re");
	size_t n = f ? fread(stat, 1, sizeof stat - 1, f) : 0;
	if (f)
		fclose(f);
	stat[n] = 0;
	const char *state = strrchr(stat, ')'); /* after the name, which may hold ')' */
	if (state && state[1] == ' ')
		return state[2] != 'Z' && state[2] != 'X';
	return kill(pid, 0) == 0 || errno == EPERM;
}

/* Process pid executed (or was spawned to run) program, which may still be loading the
 * library: it runs on, and program is one LD_PRELOAD reaches. */
static int load_pending(int pid, const char *program)
{
	return still_running(pid) && !hg_preload_blocker(program);
}

/* The library writes a P record as it loads, an A record before an exec and a B record
 * after posix_spawn: a program that wrote no P record, or whose last image executed one that
 * did not write its own, or a spawned child that wrote none, was not checked, and a report
 * of no errors would be false. The program's own is said instead of its summary; its
 * children's, before it. */
static void find_unchecked(struct hg_report *rep, const char *program)
{
	const struct hg_process *main_image = hg_map_get(&rep->live, (uint64_t)rep->main_pid + 1);
	if (!main_image)
		add_unchecked(rep, 0, program, NULL, 0);
	else if (main_image->exec_to)
		add_unchecked(rep, 0, main_image->exec_to, main_image->exe, main_image->exec_elsewhere);
	for (size_t i = 0; i < rep->processes.count && hg_settings.trace_children; i++) {
		const struct hg_process *p = rep->processes.items[i]; /* else unchecked as asked */
		/* no P record from what it ran; one still loading is named as still running */
		if (p->pid != rep->main_pid && p->exec_to && hg_map_get(&rep->live, (uint64_t)p->pid + 1) == p &&
		    (p->exec_elsewhere || !load_pending(p->pid, p->exec_to)))
			add_unchecked(rep, p->pid, p->exec_to, p->exe, p->exec_elsewhere);
	}
	for (size_t i = 0; i < rep->spawned.count; i++) {
		const struct hg_unchecked *s = rep->spawned.items[i];
		if (!hg_map_get(&rep->live, (uint64_t)s->pid + 1) && /* posix_spawn's child wrote nothing */
		    (s->elsewhere || !load_pending(s->pid, s->program)))
			add_unchecked(rep, s->pid, s->program, s->executed_by, s->elsewhere);
	}
}

/* Checked processes that outlive the program (a daemon, a job left in the background): no
 * summary yet, and still there, or executing a program that has not loaded the library yet.
 * The file goes as the command ends, and they report on their own stderr from then on (the
 * library asks before each report). */
static void find_running(struct hg_report *rep)
{
	if (!hg_settings.trace_children)
		return; /* an exec leaves no record then: a child still there may run unchecked */
	for (size_t i = 0; i < rep->processes.count; i++) {
		struct hg_process *p = rep->processes.items[i];
		if (p->pid != rep->main_pid && !p->has_heap && hg_map_get(&rep->live, (uint64_t)p->pid + 1) == p &&
		    (p->exec_to ? !p->exec_elsewhere && load_pending(p->pid, p->exec_to) : still_running(p->pid)))
			hg_vec_push(&rep->running, p);
	}
	for (size_t i = 0; i < rep->spawned.count; i++) { /* posix_spawn's, not loaded yet */
		const struct hg_unchecked *s = rep->spawned.items[i];
		if (!hg_map_get(&rep->live, (uint64_t)s->pid + 1) && !s->elsewhere && load_pending(s->pid, s->program)) {
			struct hg_process *p = hg_xcalloc(1, sizeof *p);
			p->pid = s->pid;
			p->exec_to = s->program;
			hg_vec_push(&rep->running, p);
		}
	}
}

/* The end of a checked run: the closing lines, the JSON and SARIF files, then the exit
 * status: --error-exitcode's when something was reported, 125 under it when nothing could be
 * checked, else the program's own. */
static void __attribute__((noreturn)) finish(struct session *s, char **argv, int status)
{
	find_unchecked(&s->report, argv[0]);
	find_running(&s->report);
	s->render.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	hg_render_end(&s->report, &s->render);
	if (s->report.bad_records)
		fprintf(stderr, "heapguard: %zu records could not be read\n", s->report.bad_records);
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	struct hg_exit ex = { .signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0,
			      .code = WIFEXITED(status) ? WEXITSTATUS(status) : 0,
			      .ms = (uint64_t)((now.tv_sec - s->start.tv_sec) * 1000 + (now.tv_nsec - s->start.tv_nsec) / 1000000) };
	int failed = 0;
	if (hg_settings.json_file)
		failed |= hg_write_json(hg_settings.json_file, &s->report, argv, &ex) < 0;
	if (hg_settings.sarif_file)
		failed |= hg_write_sarif(hg_settings.sarif_file, &s->report, argv, &ex) < 0;
	if (hg_settings.xml_file)
		failed |= hg_write_xml(hg_settings.xml_file, &s->report, argv, &ex) < 0;
	FILE *out = s->render.out;
	if (out != stderr && (ferror(out) | (out == stdout ? fflush(out) : fclose(out)))) {
		fprintf(stderr, "heapguard: cannot write %s: %s\n", hg_settings.log_file, strerror(errno));
		failed = 1;
	}
	if (failed) /* a report was lost: that comes first */
		exit(HG_EXIT_LAUNCHER);
	struct hg_totals t;
	hg_report_totals(&s->report, &t);
	uint64_t lost_blocks = 0; /* of the kinds --errors-for-leak-kinds names, in a full check */
	for (int k = 0; k < HG_LOST_KINDS && hg_settings.leaks_count; k++)
		lost_blocks += (hg_settings.error_leak_kinds >> k & 1) ? t.lost[k][1] : 0;
	if (hg_settings.error_exitcode && (t.errors || lost_blocks))
		exit(hg_settings.error_exitcode);
	if (hg_settings.error_exitcode && s->report.unchecked && !s->report.unchecked_as_asked)
		exit(HG_EXIT_LAUNCHER);
	hg_exit_as(status);
}

/* The report files are opened before PROGRAM starts, so that a path that cannot be written
 * fails at once, and are left as they were should it not start (not found, not executable):
 * one this made is removed again, one that was there keeps its contents (the log file is
 * emptied once PROGRAM runs, the others are written over at the end). */
#define REPORT_FILES_MAX 4
static char *made_files[REPORT_FILES_MAX]; /* resolved paths of the files made; NULL: none */
static size_t made_count;

/* Opens path for writing, not emptied; NULL after saying why ("cannot " what path). */
static FILE *open_report_file(const char *path, const char *what)
{
	struct stat st;
	int existed = stat(path, &st) == 0; /* as open() sees it: a link's target */
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (f == NULL) {
		fprintf(stderr, "heapguard: cannot %s%s: %s\n", what, path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if (!existed)
		made_files[made_count++] = realpath(path, NULL);
	return f;
}

/* The log file; stdout or stderr when it is the file they write to (--log-file=/dev/stderr,
 * or the same file named twice): opened apart and emptied once the program ran, it erased
 * what the program wrote there. */
static FILE *open_log_file(const char *path)
{
	FILE *f = open_report_file(path, "open log file ");
	struct stat log, st;
	if (!f || fstat(fileno(f), &log) != 0)
		return f;
	FILE *const std[] = { stderr, stdout };
	for (size_t i = 0; i < sizeof std / sizeof *std; i++) {
		if (fstat(fileno(std[i]), &st) == 0 && st.st_dev == log.st_dev && st.st_ino == log.st_ino) {
			fclose(f);
			return std[i];
		}
	}
	return f;
}

static void remove_made_files(void)
{
	for (size_t i = 0; i < made_count; i++)
		if (made_files[i])
			unlink(made_files[i]);
}

/* Runs argv checked: the report is read and rendered while it runs, written at its end. */
static int run_checked(char **argv)
{
	char library[PATH_MAX];
	if (hg_find_library("libheapguard-check.so", library) < 0 || hg_set_preload(library) < 0)
		return HG_EXIT_LAUNCHER;
	if (!hg_settings.trace_children && (hg_add_library_option("trace_children=0") < 0 || hg_hand_down_user_env() < 0))
		return HG_EXIT_LAUNCHER;
	/* A process that outlives the command reports on its own (find_running), as asked. */
	if (hg_settings.quiet && hg_add_library_option("quiet=1") < 0)
		return HG_EXIT_LAUNCHER;
	static struct session s;
	s.render = (struct hg_render_options){ .out = stderr, .quiet = hg_settings.quiet,
					       .gen_suppressions = hg_settings.gen_suppressions,
					       .show_used = hg_settings.show_used };
	if (hg_settings.log_file && !(s.render.out = open_log_file(hg_settings.log_file)))
		return HG_EXIT_LAUNCHER;
	const char *files[] = { hg_settings.json_file, hg_settings.sarif_file, hg_settings.xml_file };
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		FILE *f = files[i] ? open_report_file(files[i], "write ") : NULL;
		if (files[i] && !f) {
			remove_made_files();
			return HG_EXIT_LAUNCHER;
		}
		if (f)
			fclose(f);
	}
	s.reader.fd = make_records_file();
	if (s.reader.fd < 0) {
		remove_made_files();
		return HG_EXIT_LAUNCHER;
	}
	pid_t pid;
	clock_gettime(CLOCK_MONOTONIC, &s.start);
	int rc = hg_run_start(argv, &pid);
	if (rc != 0) {
		remove_records_file();
		remove_made_files();
		return rc;
	}
	struct stat st;
	if (s.render.out != stderr && s.render.out != stdout && fstat(fileno(s.render.out), &st) == 0 &&
	    S_ISREG(st.st_mode) &&
	    ftruncate(fileno(s.render.out), 0) < 0)
		fprintf(stderr, "heapguard: cannot empty %s: %s\n", hg_settings.log_file, strerror(errno));
	s.report.main_pid = (int)pid;
	s.report.leak_error_kinds = hg_settings.leaks_count ? hg_settings.error_leak_kinds : 0;
	int status = hg_run_wait(pid, POLL_MS, poll_records, &s);
	remove_records_file();
	poll_records(&s); /* what came before the file lost its name: after, each writes its own */
	finish(&s, argv, status);
}

static int command(int argc, char **argv)
{
	hg_keep_user_env();
	int program = hg_parse_command_line(argc, argv);
	if (!hg_settings.fast)
		return run_checked(argv + program);

	char library[PATH_MAX];
	if (hg_find_library("libheapguard.so", library) < 0)
		return HG_EXIT_LAUNCHER;
	return hg_exec_preloaded(library, argv + program);
}

/* The command runs on a thread whose stack size is its own: the stack limit it passes on to
 * the program (`ulimit -s`) was the command's too, and libdw's line tables recurse deeper
 * than 160 KiB let them (the command died by SIGSEGV, the report lost). The first thread
 * blocks every signal, so that the command's thread takes them as before. */
#define COMMAND_STACK_BYTES ((size_t)64 << 20)

struct command_args {
	int argc, status;
	char **argv;
	sigset_t mask;
};

static void *command_thread(void *arg)
{
	struct command_args *a = arg;
	pthread_sigmask(SIG_SETMASK, &a->mask, NULL);
	a->status = command(a->argc, a->argv);
	return NULL;
}

int main(int argc, char **argv)
{
	struct command_args a = { .argc = argc, .argv = argv };
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &a.mask);
	pthread_attr_t attr;
	pthread_t t;
	int started = pthread_attr_init(&attr) == 0 && pthread_attr_setstacksize(&attr, COMMAND_STACK_BYTES) == 0 &&
		      pthread_create(&t, &attr, command_thread, &a) == 0;
	if (!started) { /* no room for that stack: on this one */
		pthread_sigmask(SIG_SETMASK, &a.mask, NULL);
		return command(argc, argv);
	}
	pthread_join(t, NULL);
	return a.status;
}
