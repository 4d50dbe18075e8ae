/* heapguard.c — the heapguard command: reads its options, runs PROGRAM with the library preloaded. */
#include "launch.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef HG_VERSION
#error "HG_VERSION comes from the Makefile (-DHG_VERSION=...)"
#endif

enum option_action { SHOW_HELP, SHOW_VERSION, SET_LIBRARY_OPTION };

/* One row per option; both parse_options() and print_usage() walk this table, so an option
 * cannot be accepted without being documented, or documented without being accepted. */
struct option_spec {
	char short_name;        /* 0: long form only */
	const char *long_name;
	const char *choices;    /* values accepted, '|'-separated; NULL: takes no value */
	enum option_action action;
	const char *setting;    /* SET_LIBRARY_OPTION: "key=value" for a flag, "key" otherwise */
	const char *help;
};

static const struct option_spec OPTIONS[] = {
	{ 'h', "help", NULL, SHOW_HELP, NULL, "show this help and exit" },
	{ 0, "version", NULL, SHOW_VERSION, NULL, "print the version and exit" },
	{ 0, "stats", NULL, SET_LIBRARY_OPTION, "stats=1",
	  "print allocation statistics on stderr when PROGRAM exits" },
	{ 0, "backend", "mmap|brk", SET_LIBRARY_OPTION, "backend",
	  "where the heap gets memory from the kernel (default mmap)" },
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
	      "Run PROGRAM with the heapguard allocator (libheapguard.so) preloaded.\n\nOptions:\n",
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
	fputs("\nOptions end at '--' or at PROGRAM. Library options are added to the\n"
	      "HEAPGUARD_OPTIONS environment variable (key=value:...). See heapguard(1).\n", out);
}

/* Bad command lines: one line saying what is wrong, then the usage, then exit status 2. */
static void __attribute__((noreturn, format(printf, 1, 2))) usage_error(const char *fmt, ...)
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

/* Whether value is one of the '|'-separated choices, compared whole. */
static int is_choice(const char *choices, const char *value)
{
	size_t len = strlen(value);
	for (const char *p = choices; ; p++) {
		if (strncmp(p, value, len) == 0 && (p[len] == '|' || p[len] == '\0'))
			return 1;
		p = strchr(p, '|');
		if (p == NULL)
			return 0;
	}
}

static void apply_option(const struct option_spec *opt, const char *value)
{
	switch (opt->action) {
	case SHOW_HELP:
		print_usage(stdout);
		exit(0);
	case SHOW_VERSION:
		printf("heapguard %s\n", HG_VERSION);
		exit(0);
	case SET_LIBRARY_OPTION:
		break;
	}
	char setting[128]; /* holds any key=choice of the table: values are checked first */
	if (value != NULL && !is_choice(opt->choices, value))
		usage_error("invalid value '%s' for --%s (expected %s)", value, opt->long_name,
			    opt->choices);
	snprintf(setting, sizeof setting, "%s%s%s", opt->setting, value ? "=" : "",
		 value ? value : "");
	if (hg_add_library_option(setting) < 0)
		exit(HG_EXIT_LAUNCHER);
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
			usage_error("unknown option '%s'", arg);
		if (opt->choices == NULL && value != NULL)
			usage_error("option '--%s' takes no value", opt->long_name);
		if (opt->choices != NULL && value == NULL) {
			if (i == argc)
				usage_error("option '--%s' needs a value (%s)", opt->long_name,
					    opt->choices);
			value = argv[i++];
		}
		apply_option(opt, value);
	}
	return i;
}

int main(int argc, char **argv)
{
	int program = parse_options(argc, argv);
	if (program == argc)
		usage_error("no PROGRAM given");

	char library[PATH_MAX];
	if (hg_find_library(library) < 0)
		return HG_EXIT_LAUNCHER;
	return hg_exec_preloaded(library, argv + program);
}
