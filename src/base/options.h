/* options.h — every HEAPGUARD_OPTIONS key, declared once as (type, name, default, help). */
#ifndef HG_OPTIONS_H
#define HG_OPTIONS_H

#include <stdint.h>

/* X(type, field, default, help). type is BOOL, UINT, UPTO(max) (a number at most max), SIZE
 * (bytes, with an optional K, M or G suffix), a CHOICE list "a|b" (value = index) or a SET
 * "a|b" (a comma-separated subset, all or none; value = bit i for word i). The fast
 * library reads the first four; the rest belong to the checking library
 * (libheapguard-check.so). */
#define HG_OPTION_TABLE(X)                                                                   \
	X(CHOICE("mmap|brk"), backend, 0,                                                    \
	  "where the heap comes from: mmap, or brk/sbrk (falls back to mmap when the break cannot grow)") \
	X(UINT, decay_ms, 1000, "milliseconds a freed region stays mapped (at most twice that) before it goes back to the OS") \
	X(BOOL, stats, 0, "print allocation statistics to stderr at exit")                   \
	X(BOOL, help, 0, "print this table to stderr")                                        \
	X(SIZE, quarantine, 256 << 20, "memory freed blocks hold back (poisoned) before reuse, records included") \
	X(UPTO(64), stack_depth, 16, "frames recorded per allocation, free and error")         \
	X(CHOICE("no|summary|full"), leak_check, 2, "leak check at exit: none, totals, or every leak") \
	X(BOOL, show_reachable, 0, "list still-reachable blocks in the leak report")           \
	X(SET("definite|indirect|possible|reachable"), show_leak_kinds, 7,                    \
	  "leak kinds listed one by one (the summary counts them all); reachable as show_reachable=1") \
	X(SET("stdstring|length64|newarray|multipleinheritance"), leak_heuristics, 15,        \
	  "interior pointers that count as start pointers in the leak check (valgrind's heuristics)") \
	X(SAMPLE, guard, 0, "guard pages: 0 off, 1 or all every block, N one block in N")               \
	X(CHOICE("right|left"), guard_side, 0, "which side of a guarded block the PROT_NONE page is on") \
	X(BOOL, guard_uninit, 0, "guard mode: a guarded block stays inaccessible until its first use, and a first use that reads is reported") \
	X(BOOL, abort_on_error, 0, "abort after the first error report")                     \
	X(UINT, log_fd, 2, "file descriptor the reports go to (heapguard --log-file opens it)")   \
	X(BOOL, quiet, 0, "no summaries at exit when nothing was found")                     \
	X(BOOL, trace_children, 1, "check the programs this one executes (0: they run unchecked)") \
	X(UPTO(255), error_exitcode, 0, "exit status when errors or leaks were reported (0: keep the program's)")

struct hg_options {
#define HG_OPTION_FIELD(type, name, def, help) uint64_t name;
	HG_OPTION_TABLE(HG_OPTION_FIELD)
#undef HG_OPTION_FIELD
};

enum { HG_BACKEND_MMAP = 0, HG_BACKEND_BRK = 1 };

extern struct hg_options hg_opt;

/* Parses `text` ("key=value:key=value", may be NULL) over the defaults; warns on stderr
 * about unknown keys and bad values, prints the table when help=1. */
void hg_options_parse(const char *text);

#endif
