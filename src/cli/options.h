/* options.h — the command's settings, as its options and HEAPGUARD_OPTIONS give them. */
#ifndef HG_CLI_OPTIONS_H
#define HG_CLI_OPTIONS_H

/* What the command itself does with the report; the library's options go straight into
 * HEAPGUARD_OPTIONS while they are parsed. */
struct hg_settings {
	const char *log_file, *json_file, *sarif_file, *xml_file; /* NULL: not asked for */
	int xml;               /* --xml=yes: needs --xml-file */
	int error_exitcode;    /* 0: the program's own status (valgrind's default too) */
	unsigned error_leak_kinds; /* bit k: leak kind k (report.h's HG_LOST_*) counts for it */
	int quiet, gen_suppressions;
	int show_used;         /* -s: list the suppressions used */
	int trace_children;    /* 0: --trace-children=no */
	int fast;              /* --fast, --stats or --backend: exec the fast library instead */
	int leaks_count;       /* leaks count for --error-exitcode: the leak check is full */
};
extern struct hg_settings hg_settings;

/* Applies the command's keys of HEAPGUARD_OPTIONS, then the command line; returns the index of
 * PROGRAM in argv. Exits 0 after --help or --version, 2 after a usage error. */
int hg_parse_command_line(int argc, char **argv);

/* Bad command lines: one line saying what is wrong, then the usage, then exit status 2. */
void __attribute__((noreturn, format(printf, 1, 2))) hg_usage_error(const char *fmt, ...);

#endif
