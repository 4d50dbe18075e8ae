/* options.c — the command's options: one table behind the parser, the usage text and the
 * command's keys of HEAPGUARD_OPTIONS; library options are passed on in HEAPGUARD_OPTIONS. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "launch.h"
#include "options.h"
#include "report.h"

#ifndef HG_VERSION
#error "HG_VERSION comes from the Makefile (-DHG_VERSION=...)"
#endif

enum option_action {
	SHOW_HELP, SHOW_VERSION,
	SET_LIBRARY_OPTION, /* passed on in HEAPGUARD_OPTIONS */
	SET_FAST_OPTION,    /* passed on, and runs the fast library (no checking, no report) */
	SET_COMMAND_OPTION, /* the command's own: how the report is written */
};

struct hg_settings hg_settings = { .trace_children = 1,
				   .error_leak_kinds = 1 << HG_LOST_DEFINITE | 1 << HG_LOST_POSSIBLE, /* valgrind's */
				   .leaks_count = 1 };
/* An option of the checking library, named in the message when it meets --fast: given on
 * the command line ([0]) or in HEAPGUARD_OPTIONS ([1]), which only conflicts with a fast=1 of
 * its own (the command line's --fast overrides it). */
static const char *checking_option[2];
static int fast_from_env;
static const char *guard_option;    /* --guard-side or --guard-uninit, which need --guard */
static int guard_on, xml_no;        /* --guard=N with N > 0; --xml=no */

#define LEAK_HEURISTICS "stdstring,length64,newarray,multipleinheritance" /* its leak_heuristics */
#define STACK_DEPTH_MAX "64" /* its stack_depth's, the frames it records at most */

/* One row per option; both parse_options() and print_usage() walk this table, so an option
 * cannot be accepted without being documented, or documented without being accepted. */
struct option_spec {
	char short_name;        /* 0: long form only */
	const char *long_name;
	const char *choices;    /* values accepted, '|'-separated, where N stands for a number,
				   LO-HI for one in that range, SIZE for bytes with an optional
				   K, M or G, FILE for a path, KINDS or HEURISTICS for a list;
				   NULL: takes no value */
	enum option_action action;
	const char *setting;    /* library options: "key=value" for a flag, "key" otherwise */
	void (*apply)(const char *value); /* SET_COMMAND_OPTION; value NULL for a flag */
	const char *help;
};

/* The setters of the command's options; a flag gets NULL (on) or "0" (off, from the
 * environment). */
static int is_on(const char *v)
{
	return v == NULL || strcmp(v, "0") != 0;
}

static void set_error_exitcode(const char *v)
{
	hg_settings.error_exitcode = atoi(v);
}

static void set_errors_for_leak_kinds(const char *v)
{
	int all = (1 << HG_LOST_KINDS) - 1; /* v is checked: "all", "none" or a list */
	hg_settings.error_leak_kinds = (unsigned)(strcmp(v, "all") == 0 ? all : strcmp(v, "none") == 0 ? 0 : hg_word_mask(HG_LEAK_WORDS, v));
}

/* A report file's name with valgrind's escapes: %p the pid (the command's: its report holds
 * every process), %q{NAME} the environment variable NAME, %% a '%'. */
static const char *file_name(const char *v)
{
	struct hg_text t = { 0 };
	hg_text_add(&t, "");
	for (const char *c = v; *c; c++) {
		if (*c != '%') {
			hg_text_addn(&t, c, 1);
			continue;
		}
		if (c[1] == '%') {
			hg_text_add(&t, "%");
		} else if (c[1] == 'p') {
			hg_text_printf(&t, "%d", (int)getpid());
		} else if (c[1] == 'q' && c[2] == '{' && strchr(c + 3, '}')) {
			const char *end = strchr(c + 3, '}');
			char name[256];
			snprintf(name, sizeof name, "%.*s", (int)(end - c - 3), c + 3);
			const char *value = getenv(name);
			if (!name[0] || !value) /* as valgrind: a name that is empty or not set is an error */
				hg_usage_error("'%s': %%q{%s} names no environment variable that is set", v, name);
			hg_text_add(&t, value);
			c = end - 1;
		} else {
			hg_usage_error("'%s': '%%' is followed by p, q{NAME} or %% in a file name", v);
		}
		c++;
	}
	return t.s;
}

static void set_log_file(const char *v) { hg_settings.log_file = file_name(v); }
static void set_json(const char *v) { hg_settings.json_file = file_name(v); }
static void set_sarif(const char *v) { hg_settings.sarif_file = file_name(v); }
static void set_xml(const char *v)
{
	hg_settings.xml = strcmp(v, "yes") == 0;
	xml_no = !hg_settings.xml;
}
static void set_xml_file(const char *v) { hg_settings.xml_file = file_name(v); }
static void set_gen_suppressions(const char *v) { hg_settings.gen_suppressions = is_on(v); }
static void set_quiet(const char *v) { hg_settings.quiet = is_on(v); }
static void set_show_used(const char *v) { hg_settings.show_used = is_on(v); }
static void set_trace_children(const char *v) { hg_settings.trace_children = !strcmp(v, "yes"); }

/* valgrind's options that ask for what heapguard does anyway: --track-origins (it always
 * knows where never-written bytes come from), --tool=memcheck, --verbose, --error-limit (it
 * shows every context), --leak-resolution (it groups leaks by whole stacks), and the ones it
 * takes only in their default, off, form (--track-fds, --child-silent-after-fork). */
static void accept_valgrind_option(const char *v)
{
	(void)v;
}

/* --undef-value-errors=no: an entry of the session's suppressions hides every
 * uninitialized-read, as valgrind then finds none. */
static void set_undef_value_errors(const char *v)
{
	if (strcmp(v, "no") == 0)
		hg_suppressions_hide_kind("uninitialized-read");
}

static void add_suppressions(const char *v)
{
	if (hg_suppressions_load(v) < 0)
		exit(HG_EXIT_USAGE);
}

static const struct option_spec OPTIONS[] = {
	{ 'h', "help", NULL, SHOW_HELP, NULL, NULL, "show this help and exit" },
	{ 0, "version", NULL, SHOW_VERSION, NULL, NULL, "print the version and exit" },
	{ 0, "leak-check", "no|summary|full|yes", SET_LIBRARY_OPTION, "leak_check", NULL,
	  "leak report at exit: none, totals only, or every leak (default full; yes: full, as in valgrind)" },
	{ 0, "show-reachable", NULL, SET_LIBRARY_OPTION, "show_reachable=1", NULL,
	  "also list blocks still reachable at exit (default off)" },
	{ 0, "leak-check-heuristics", "HEURISTICS|all|none", SET_LIBRARY_OPTION, "leak_heuristics", NULL,
	  "interior pointers that count as start pointers, HEURISTICS a comma-separated list of "
	  LEAK_HEURISTICS " (default all, as in valgrind)" },
	{ 0, "show-leak-kinds", "KINDS|all|none", SET_LIBRARY_OPTION, "show_leak_kinds", NULL,
	  "leak kinds listed one by one, KINDS a comma-separated list of " HG_LEAK_WORDS
	  " (default: the first three; the summary counts every kind)" },
	{ 0, "show-possibly-lost", "yes|no", SET_LIBRARY_OPTION, "show_leak_kinds", NULL,
	  "valgrind's: no is --show-leak-kinds=definite,indirect" },
	{ 0, "leak-resolution", "low|med|high", SET_COMMAND_OPTION, NULL, accept_valgrind_option,
	  "valgrind's: taken; leaks are grouped by their whole allocation stack (high)" },
	{ 0, "error-exitcode", "0-255", SET_COMMAND_OPTION, NULL, set_error_exitcode,
	  "exit with this status when errors or leaks were reported (default 0: the program's own, as in valgrind)" },
	{ 0, "errors-for-leak-kinds", "KINDS|all|none", SET_COMMAND_OPTION, NULL, set_errors_for_leak_kinds,
	  "the leak kinds that count for --error-exitcode and in ERROR SUMMARY (default definite,possible, as in valgrind)" },
	{ 0, "log-file", "FILE", SET_COMMAND_OPTION, NULL, set_log_file,
	  "write the text report to FILE instead of stderr" },
	{ 0, "json", "FILE", SET_COMMAND_OPTION, NULL, set_json,
	  "also write the report to FILE as one JSON document" },
	{ 0, "sarif", "FILE", SET_COMMAND_OPTION, NULL, set_sarif,
	  "also write the report to FILE as SARIF 2.1.0, for code-scanning tools" },
	{ 0, "xml", "yes|no", SET_COMMAND_OPTION, NULL, set_xml,
	  "valgrind's: with --xml-file, the report in memcheck's XML (default no)" },
	{ 0, "xml-file", "FILE", SET_COMMAND_OPTION, NULL, set_xml_file,
	  "also write the report to FILE as valgrind memcheck's XML (protocol 4), for its tools" },
	{ 0, "suppressions", "FILE", SET_COMMAND_OPTION, NULL, add_suppressions,
	  "hide the errors and leaks FILE describes (repeatable)" },
	{ 0, "gen-suppressions", NULL, SET_COMMAND_OPTION, NULL, set_gen_suppressions,
	  "print a suppression entry after each report (default off)" },
	{ 's', "show-error-list", NULL, SET_COMMAND_OPTION, NULL, set_show_used,
	  "valgrind's -s: list the suppressions used, with their counts, before ERROR SUMMARY "
	  "(the errors are shown as they come)" },
	{ 0, "guard", "all|N", SET_LIBRARY_OPTION, "guard", NULL,
	  "put every block (all) or one in N against a PROT_NONE page (default 0: none)" },
	{ 0, "guard-side", "right|left", SET_LIBRARY_OPTION, "guard_side", NULL,
	  "side of a guarded block the PROT_NONE page is on (default right)" },
	{ 0, "guard-uninit", NULL, SET_LIBRARY_OPTION, "guard_uninit=1", NULL,
	  "with --guard: report a guarded block whose first use is a read (default off)" },
	{ 0, "quarantine", "SIZE", SET_LIBRARY_OPTION, "quarantine", NULL,
	  "memory freed blocks hold back before reuse, records included (default 256M)" },
	{ 0, "stack-depth", "0-" STACK_DEPTH_MAX, SET_LIBRARY_OPTION, "stack_depth", NULL,
	  "frames recorded per allocation, free and error (default 16)" },
	{ 0, "num-callers", "1-500", SET_LIBRARY_OPTION, "stack_depth", NULL,
	  "valgrind's name for --stack-depth, taking valgrind's range (above " STACK_DEPTH_MAX ": " STACK_DEPTH_MAX " frames)" },
	{ 0, "track-origins", "yes|no", SET_COMMAND_OPTION, NULL, accept_valgrind_option,
	  "valgrind's: taken and unneeded, an uninitialized read always shows its block's allocation" },
	{ 0, "undef-value-errors", "yes|no", SET_COMMAND_OPTION, NULL, set_undef_value_errors,
	  "valgrind's: no hides the uninitialized-read reports" },
	{ 0, "error-limit", "yes|no", SET_COMMAND_OPTION, NULL, accept_valgrind_option,
	  "valgrind's: taken; heapguard shows every error context, without a limit" },
	{ 'v', "verbose", NULL, SET_COMMAND_OPTION, NULL, accept_valgrind_option,
	  "valgrind's: taken; the reports are the same" },
	{ 0, "track-fds", "no", SET_COMMAND_OPTION, NULL, accept_valgrind_option,
	  "valgrind's, taken as no: heapguard does not track file descriptors" },
	{ 0, "child-silent-after-fork", "no", SET_COMMAND_OPTION, NULL, accept_valgrind_option,
	  "valgrind's, taken as no: a forked child's errors are reported with its pid" },
	{ 0, "tool", "memcheck", SET_COMMAND_OPTION, NULL, accept_valgrind_option,
	  "valgrind's: memcheck's checks are what heapguard makes" },
	{ 0, "abort-on-error", NULL, SET_LIBRARY_OPTION, "abort_on_error=1", NULL,
	  "abort after the first error report (default off)" },
	{ 0, "trace-children", "yes|no", SET_COMMAND_OPTION, NULL, set_trace_children,
	  "check the programs PROGRAM executes too (default yes; forks always are)" },
	{ 'q', "quiet", NULL, SET_COMMAND_OPTION, NULL, set_quiet,
	  "print the error and leak reports only: no summaries" },
	{ 0, "fast", NULL, SET_FAST_OPTION, NULL, NULL,
	  "no checking: run with the fast allocator (libheapguard.so)" },
	{ 0, "stats", NULL, SET_FAST_OPTION, "stats=1", NULL,
	  "print allocation statistics on stderr when PROGRAM exits (implies --fast)" },
	{ 0, "backend", "mmap|brk", SET_FAST_OPTION, "backend", NULL,
	  "where the heap gets memory from the kernel (default mmap; implies --fast)" },
};
static const size_t OPTION_COUNT = sizeof OPTIONS / sizeof OPTIONS[0];

/* Width of "--name=choices", the widest of which sets the column of the help texts. */
static int usage_name_width(const struct option_spec *opt)
{
	int width = 2 + (int)strlen(opt->long_name);
	return opt->choices ? width + 1 + (int)strlen(opt->choices) : width;
}

static void print_usage(FILE *out)
{
	int column = 0;
	for (size_t i = 0; i < OPTION_COUNT; i++)
		if (usage_name_width(&OPTIONS[i]) > column)
			column = usage_name_width(&OPTIONS[i]);

	fputs("Usage: heapguard [OPTIONS] [--] PROGRAM [ARGS...]\n"
	      "Run PROGRAM with heapguard's checking allocator (libheapguard-check.so) preloaded:\n"
	      "heap errors and leaks are reported on stderr, with function, file and line.\n\nOptions:\n",
	      out);
	for (size_t i = 0; i < OPTION_COUNT; i++) {
		const struct option_spec *opt = &OPTIONS[i];
		if (opt->short_name)
			fprintf(out, "  -%c, ", opt->short_name);
		else
			fputs("      ", out);
		fprintf(out, "--%s%s%s", opt->long_name, opt->choices ? "=" : "",
			opt->choices ? opt->choices : "");
		fprintf(out, "%*s  %s\n", column - usage_name_width(opt), "", opt->help);
	}
	fputs("\nOptions end at '--' or at PROGRAM. Each can also be set in the HEAPGUARD_OPTIONS\n"
	      "environment variable as key=value, dashes written as underscores, items separated\n"
	      "by ':' (HEAPGUARD_OPTIONS=leak_check=summary:json=run.json); the command line wins.\n"
	      "Exit status: the program's own (or its signal), N with --error-exitcode=N (not 0)\n"
	      "when something was reported, 2 for a bad command line, 126/127 when PROGRAM cannot\n"
	      "be run, 125 when heapguard itself fails. See heapguard(1).\n", out);
}

/* Bad command lines: one line saying what is wrong, then the usage, then exit status 2. */
void hg_usage_error(const char *fmt, ...)
{
	va_list ap;
	fputs("heapguard: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n\n", stderr);
	print_usage(stderr);
	exit(HG_EXIT_USAGE);
}

/* Matches "-h", "--name" or "--name=value"; sets *value to the text after '=', if any. */
static const struct option_spec *find_option(const char *arg, const char **value)
{
	*value = NULL;
	for (size_t i = 0; i < OPTION_COUNT; i++) {
		const struct option_spec *opt = &OPTIONS[i];
		if (arg[1] != '-') {
			if (opt->short_name && arg[1] == opt->short_name && arg[2] == '\0')
				return opt;
			continue;
		}
		size_t len = strlen(opt->long_name);
		if (strncmp(arg + 2, opt->long_name, len) != 0)
			continue;
		if (arg[2 + len] == '\0')
			return opt;
		if (arg[2 + len] == '=') {
			*value = arg + 3 + len;
			return opt;
		}
	}
	return NULL;
}

/* Whether value matches the choice word of length len: itself, or N, LO-HI, SIZE, FILE,
 * KINDS or HEURISTICS. */
static int matches(const char *word, size_t len, const char *value)
{
	if (len == 5 && strncmp(word, "KINDS", 5) == 0)
		return hg_word_mask(HG_LEAK_WORDS, value) >= 0;
	if (len == 10 && strncmp(word, "HEURISTICS", 10) == 0)
		return hg_word_mask(LEAK_HEURISTICS, value) >= 0;
	size_t digits = strspn(value, "0123456789");
	if (len == 1 && word[0] == 'N')
		return digits > 0 && digits < 10 && value[digits] == '\0';
	size_t lo_digits = strspn(word, "0123456789");
	if (lo_digits && lo_digits < len && word[lo_digits] == '-') {
		unsigned long v = strtoul(value, NULL, 10);
		return digits > 0 && digits < 10 && value[digits] == '\0' &&
		       v >= strtoul(word, NULL, 10) && v <= strtoul(word + lo_digits + 1, NULL, 10);
	}
	if (len == 4 && strncmp(word, "SIZE", 4) == 0) {
		static const char UNITS[] = "KMGkmg";
		const char *unit = value[digits] ? strchr(UNITS, value[digits]) : NULL;
		unsigned shift = unit ? 10 * (unsigned)((unit - UNITS) % 3 + 1) : 0;
		/* the bytes must fit in 64 bits: 2^34 G wrapped to 0 */
		return digits > 0 && digits < 13 && (value[digits] == '\0' || (unit && value[digits + 1] == '\0')) &&
		       strtoull(value, NULL, 10) <= UINT64_MAX >> shift;
	}
	if (len == 4 && strncmp(word, "FILE", 4) == 0)
		return value[0] != '\0';
	return strlen(value) == len && strncmp(word, value, len) == 0;
}

/* Whether value is one of the '|'-separated choices. */
static int is_choice(const char *choices, const char *value)
{
	for (const char *p = choices;;) {
		size_t len = strcspn(p, "|");
		if (matches(p, len, value))
			return 1;
		if (p[len] == '\0')
			return 0;
		p += len + 1;
	}
}

static void apply_option(const struct option_spec *opt, const char *value, int from_env)
{
	if (opt->choices != NULL && !is_choice(opt->choices, value)) {
		if (from_env)
			hg_usage_error("invalid value '%s' for %s in HEAPGUARD_OPTIONS (expected %s)", value,
				       opt->long_name, opt->choices);
		hg_usage_error("invalid value '%s' for --%s (expected %s)", value, opt->long_name,
			       opt->choices);
	}
	const char *name = opt->long_name;
	if (strcmp(name, "guard") == 0)
		guard_on = strcmp(value, "0") != 0;
	else if (strcmp(name, "guard-side") == 0 || (strcmp(name, "guard-uninit") == 0 && value == NULL))
		guard_option = name;
	else if (strcmp(name, "leak-check") == 0) /* valgrind counts leaks only in a full check */
		hg_settings.leaks_count = strcmp(value, "full") == 0 || strcmp(value, "yes") == 0;
	if (opt->action == SET_COMMAND_OPTION || opt->action == SET_LIBRARY_OPTION)
		checking_option[from_env] = name;
	switch (opt->action) {
	case SHOW_HELP:
		print_usage(stdout);
		exit(0);
	case SHOW_VERSION:
		printf("heapguard %s\n", HG_VERSION);
		exit(0);
	case SET_COMMAND_OPTION:
		opt->apply(value);
		return;
	case SET_FAST_OPTION: /* fast=0 in HEAPGUARD_OPTIONS turns it off; --stats, --backend on */
		hg_settings.fast = opt->choices != NULL || is_on(value);
		fast_from_env = from_env;
		break;
	case SET_LIBRARY_OPTION:
		break;
	}
	if (opt->setting == NULL)
		return;
	if (opt->choices == NULL && value != NULL) { /* a library flag turned off: key=0 */
		char off[64];
		snprintf(off, sizeof off, "%.*s=0", (int)strcspn(opt->setting, "="), opt->setting);
		if (hg_add_library_option(off) < 0)
			exit(HG_EXIT_LAUNCHER);
		return;
	}
	if (value != NULL && strcmp(opt->long_name, "guard") == 0 && strcmp(value, "all") == 0)
		value = "1"; /* --guard=all: one block in 1 */
	if (value != NULL && strcmp(opt->long_name, "leak-check") == 0 && strcmp(value, "yes") == 0)
		value = "full"; /* valgrind's word */
	if (value != NULL && strcmp(opt->long_name, "num-callers") == 0 && atoi(value) > atoi(STACK_DEPTH_MAX))
		value = STACK_DEPTH_MAX; /* valgrind's command lines ask for up to 500 */
	if (value != NULL && strcmp(opt->long_name, "show-possibly-lost") == 0)
		value = strcmp(value, "no") == 0 ? "definite,indirect" : "definite,indirect,possible";
	char setting[128]; /* holds any key=choice of the table; a list repeating its words may not fit */
	if (snprintf(setting, sizeof setting, "%s%s%s", opt->setting, value ? "=" : "",
		     value ? value : "") >= (int)sizeof setting)
		hg_usage_error("value too long for --%s: %.40s...", opt->long_name, value);
	if (hg_add_library_option(setting) < 0)
		exit(HG_EXIT_LAUNCHER);
}

/* A flag written as valgrind writes its flags, --gen-suppressions=yes|all|no: NULL for on,
 * "0" for off. Only the flags that set something take a value. */
static const char *flag_value(const struct option_spec *opt, const char *value)
{
	int settable = opt->action == SET_COMMAND_OPTION ||
		       (opt->action == SET_LIBRARY_OPTION && opt->setting && strchr(opt->setting, '='));
	if (!settable)
		hg_usage_error("option '--%s' takes no value", opt->long_name);
	if (strcmp(value, "yes") == 0 || strcmp(value, "all") == 0)
		return NULL;
	if (strcmp(value, "no") != 0)
		hg_usage_error("invalid value '%s' for --%s (expected nothing, yes or no)", value,
			       opt->long_name);
	return "0";
}

/* Applies the options in order and returns the index of PROGRAM in argv. Options end at "--"
 * or at the first argument that is not one, so PROGRAM's own options are left alone. */
static int parse_options(int argc, char **argv)
{
	int i = 1;
	while (i < argc && argv[i][0] == '-' && argv[i][1] != '\0') {
		const char *arg = argv[i++], *value;
		if (strcmp(arg, "--") == 0)
			break;
		const struct option_spec *opt = find_option(arg, &value);
		if (opt == NULL)
			hg_usage_error("unknown option '%s'", arg);
		if (opt->choices == NULL && value != NULL)
			value = flag_value(opt, value);
		if (opt->choices != NULL && value == NULL) {
			/* the next argument, unless it is another option or the end of them */
			if (i == argc || strncmp(argv[i], "--", 2) == 0)
				hg_usage_error("option '--%s' needs a value (%s)", opt->long_name,
					    opt->choices);
			value = argv[i++];
		}
		apply_option(opt, value, 0);
	}
	return i;
}

/* The option whose key (its long name, '_' for '-') is item[0..len), or NULL. */
static const struct option_spec *command_key(const char *item, size_t len)
{
	for (size_t i = 0; i < OPTION_COUNT; i++) {
		const char *name = OPTIONS[i].long_name;
		/* stats and backend are the library's own keys too: in the environment they stay
		 * its, and do not turn checking off */
		enum option_action a = OPTIONS[i].action;
		if (a == SHOW_HELP || a == SHOW_VERSION || (a == SET_FAST_OPTION && OPTIONS[i].setting) ||
		    strlen(name) != len)
			continue;
		size_t k = 0;
		while (k < len && (item[k] == name[k] || (item[k] == '_' && name[k] == '-')))
			k++;
		if (k == len)
			return &OPTIONS[i];
	}
	return NULL;
}

/* The keys of HEAPGUARD_OPTIONS that name an option of the table (json=FILE, guard=all,
 * show_reachable=yes...) are applied here as the command line's are, and taken out; the
 * library sees the rest (its own keys, such as decay_ms). The command line, applied later,
 * still wins. A flag takes 1, yes or all for on, 0 or no for off; a yes|no option takes 1
 * and 0 too. */
static void take_command_keys_from_env(void)
{
	const char *env = getenv("HEAPGUARD_OPTIONS");
	if (env == NULL)
		return;
	/* copy stays allocated: the settings point into it (json's FILE, ...) */
	char *copy = hg_xstrdup(env), *save = NULL;
	struct hg_text kept = { 0 };
	hg_text_add(&kept, "");
	size_t items = 1;
	for (const char *c = env; *c; c++)
		items += *c == ':';
	struct taken { const struct option_spec *opt; const char *value; } *taken = hg_xmalloc(items * sizeof *taken);
	size_t ntaken = 0;
	for (char *item = strtok_r(copy, ":", &save); item; item = strtok_r(NULL, ":", &save)) {
		char *eq = strchr(item, '=');
		int klen = eq ? (int)(eq - item) : (int)strlen(item);
		const struct option_spec *opt = klen ? command_key(item, (size_t)klen) : NULL;
		const char *value = eq ? eq + 1 : NULL;
		if (opt == NULL) {
			hg_text_printf(&kept, "%s%s", kept.len ? ":" : "", item);
			continue;
		}
		int on = !value || !strcmp(value, "1") || !strcmp(value, "yes") || !strcmp(value, "all");
		int off = value && (!strcmp(value, "0") || !strcmp(value, "no"));
		if (opt->choices == NULL && value && !on && !off)
			hg_usage_error("invalid value '%s' for %.*s in HEAPGUARD_OPTIONS (expected 1, yes, 0 or no)",
				       value, klen, item);
		if (opt->choices != NULL && value == NULL)
			hg_usage_error("%.*s in HEAPGUARD_OPTIONS needs a value (%s)", klen, item,
				       opt->choices);
		if (opt->choices == NULL)
			value = on ? NULL : "0"; /* a flag: as on the command line, a bare key sets it */
		else if (strcmp(opt->choices, "yes|no") == 0 && (!strcmp(value, "1") || !strcmp(value, "0")))
			value = value[0] == '1' ? "yes" : "no";
		taken[ntaken].opt = opt;
		taken[ntaken++].value = value;
	}
	/* first the library's keys, then the options taken, which add theirs after them */
	setenv("HEAPGUARD_OPTIONS", kept.s, 1);
	free(kept.s);
	for (size_t i = 0; i < ntaken; i++)
		apply_option(taken[i].opt, taken[i].value, 1);
	free(taken);
}

/* The directory part of path ("." for none) in buf, and its last part. */
static const char *split_path(const char *path, char *buf, size_t size)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) + 1 : 0;
	snprintf(buf, size, "%.*s", n ? (int)n : 1, n ? path : ".");
	return slash ? slash + 1 : path;
}

#define LINK_HOPS_MAX 40 /* the kernel's limit on a chain of links (ELOOP) */

/* path in buf, with the links its last part names followed: a dangling link stands for the
 * file that writing through it makes. */
static const char *follow_links(const char *path, char *buf, size_t size)
{
	char target[4096];
	snprintf(buf, size, "%s", path);
	for (int hops = 0; hops < LINK_HOPS_MAX; hops++) {
		ssize_t n = readlink(buf, target, sizeof target - 1);
		if (n < 0)
			break;
		target[n] = '\0';
		/* a relative target is in the link's directory */
		const char *slash = strrchr(buf, '/');
		size_t dir = target[0] != '/' && slash ? (size_t)(slash - buf) + 1 : 0;
		if (dir + (size_t)n >= size) /* longer than a path can be */
			break;
		memcpy(buf + dir, target, (size_t)n + 1);
	}
	return buf;
}

/* 1 when a and b name one file: the same text, one existing file (by a link, or written
 * ./x and x), or one name in one directory for a file not there yet (also by a link). */
static int same_file(const char *a, const char *b)
{
	struct stat sa, sb;
	char fa[4096], fb[4096];
	if (strcmp(a, b) == 0)
		return 1;
	a = follow_links(a, fa, sizeof fa);
	b = follow_links(b, fb, sizeof fb);
	if (stat(a, &sa) == 0 && stat(b, &sb) == 0)
		return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
	char da[4096], db[4096];
	const char *na = split_path(a, da, sizeof da), *nb = split_path(b, db, sizeof db);
	return strcmp(na, nb) == 0 && stat(da, &sa) == 0 && stat(db, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

int hg_parse_command_line(int argc, char **argv)
{
	take_command_keys_from_env();
	int program = parse_options(argc, argv);
	if (program == argc)
		hg_usage_error("no PROGRAM given");
	if (hg_settings.xml && !hg_settings.xml_file)
		hg_usage_error("--xml=yes needs --xml-file=FILE (heapguard writes no XML to a descriptor or socket)");
	if (xml_no && hg_settings.xml_file)
		hg_usage_error("--xml=no and --xml-file ask for opposite things");
	if (guard_option && !guard_on)
		hg_usage_error("--%s needs --guard=all or --guard=N", guard_option);
	const char *conflict = checking_option[0] ? checking_option[0] : fast_from_env ? checking_option[1] : NULL;
	if (hg_settings.fast && conflict)
		hg_usage_error("--%s needs the checking library: it does nothing with --fast, --stats "
			       "or --backend", conflict);
	/* two reports written to one file: the one written last would be all it holds, however
	 * the two names spell it */
	const char *files[] = { hg_settings.log_file, hg_settings.json_file, hg_settings.sarif_file,
				hg_settings.xml_file };
	const char *names[] = { "--log-file", "--json", "--sarif", "--xml-file" };
	for (int a = 0; a < 4; a++)
		for (int b = a + 1; b < 4; b++)
			if (files[a] && files[b] && same_file(files[a], files[b]))
				hg_usage_error("%s and %s name the same file, %s", names[a], names[b], files[a]);
	return program;
}
