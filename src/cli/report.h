/* report.h — the command's data model: what a run's record stream (check/records.h) becomes once
 * read and symbolized — processes, stacks of named frames, error contexts, leak groups and
 * summaries — and the contracts of the files that build it and write it out. */
#ifndef HG_CLI_REPORT_H
#define HG_CLI_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "util.h"

/*
 * Type map:
 *   hg_report      one run: every process's records merged
 *     hg_process   one process image (pid; an exec starts a new image under the same pid)
 *     hg_error     one error context: (kind, symbolized stack) across all processes, counted
 *     hg_leak      one leak group of one process (its allocation stack)
 *     hg_event     the order in which the above appeared, for the live text report
 *   hg_stack       interned: equal symbolized stacks share one object, so contexts compare
 *                  stacks by address
 *     hg_frame     one named frame; inlined calls are frames of their own at the same pc
 * Strings in these structures are interned (util.h) and live as long as the command.
 */

struct hg_frame {
	uint64_t pc;          /* as recorded: a return address (or the faulting pc) */
	const char *module;   /* path of the ELF object holding pc; NULL when in none */
	uint64_t offset;      /* pc - the module's load address */
	const char *function; /* demangled name; NULL when unknown */
	const char *linkage;  /* the name as linked (a C++ mangled name) when it differs, else NULL */
	const char *alias;    /* the name valgrind gives it when it differs, else NULL: an inlined
				 call's DW_AT_name (C++: unqualified), or of the symbols at the
				 function's start the one with the fewest leading underscores
				 (getdelim for glibc's __GI___getdelim); suppressions match it too */
	const char *file;     /* source file; NULL when unknown (no debug information) */
	unsigned line;        /* source line; 0 when unknown */
	int inlined;          /* 1: code inlined into the next frame, at the same pc */
};

struct hg_stack {
	size_t count;
	struct hg_frame *frames; /* innermost first */
};

struct hg_suppression; /* suppress.c */

struct hg_error {
	const char *kind;       /* heap-buffer-overflow, heap-use-after-free, ... (check.h) */
	const char *access;     /* read, write, free, realloc; NULL when none */
	const char *func;       /* the API or intercepted call; NULL when none */
	const char *detail;     /* one more line of explanation; NULL when none */
	int pid;                /* the process that reported it first */
	unsigned thread;
	uint64_t address, size; /* the bad address; bytes accessed (0: unknown, or a free); for a
				   request (hg_is_request), the bytes asked for and no address */
	const struct hg_stack *stack;
	int has_block;
	uint64_t block_address, block_size;
	unsigned alloc_thread, free_thread; /* free_thread 0: the block was not freed */
	const struct hg_stack *alloc_stack, *free_stack;
	uint64_t count;         /* times seen, all processes together */
	const struct hg_suppression *suppressed_by; /* NULL: shown */
};

/* A call that asked for too much (allocation-size-too-big): a function but no access, where a
 * fault of unknown direction has neither. */
static inline int hg_is_request(const struct hg_error *e)
{
	return !e->access && e->func;
}

struct hg_leak {
	const char *kind; /* definitely-lost, indirectly-lost, possibly-lost, still-reachable */
	int pid;
	uint64_t bytes, blocks;
	const struct hg_stack *stack; /* where the blocks were allocated */
	const char *call;             /* the function that allocated them: malloc, strdup, ... */
	const struct hg_suppression *suppressed_by;
	/* Its check's summary came (closed); a later check of the process came too (superseded:
	 * the files list the last check's leaks only, as the counts are that check's). */
	int closed, superseded;
};

enum { HG_HEAP_ALLOCS, HG_HEAP_FREES, HG_HEAP_BYTES, HG_HEAP_IN_USE_BYTES, HG_HEAP_IN_USE_BLOCKS,
       HG_HEAP_FIELDS };
/* The X record's order: bytes then blocks for each kind. */
enum { HG_LOST_DEFINITE, HG_LOST_INDIRECT, HG_LOST_POSSIBLE, HG_LOST_REACHABLE, HG_LOST_KINDS };
/* Every kind id a report has (README's table): the error kinds of check.h, then the leak
 * kinds in HG_LOST_* order. */
#define HG_ERROR_KINDS 9
#define HG_KINDS (HG_ERROR_KINDS + HG_LOST_KINDS)
extern const char *const hg_kind_ids[HG_KINDS];
/* The leak kinds in that order: their ids in reports (the tail of hg_kind_ids), their words in
 * LEAK SUMMARY, and valgrind's words for them (match-leak-kinds:, --show-leak-kinds), for
 * hg_word_mask. */
extern const char *const *const hg_lost_ids;
extern const char *const hg_lost_words[HG_LOST_KINDS];
#define HG_LEAK_WORDS "definite,indirect,possible,reachable"
/* The HG_LOST_* index of a leak kind's id; -1 for none. */
int hg_lost_index(const char *id);

struct hg_process {
	int pid, ppid;
	const char *exe;
	int has_heap;                       /* an H record arrived */
	const char *exec_to;                /* an A record: the program it executed, no P since */
	int exec_elsewhere;                 /* ... with another heapguard command's records file */
	uint64_t heap[HG_HEAP_FIELDS];
	/* Its last leak check's summary (the X record that ends it); NULL when none came. A check
	 * on demand (heapguard_check_leaks) ends with one of its own, and the next one starts. */
	const struct hg_leak_summary *leak_summary;
	/* [kind][0 bytes, 1 blocks] of the check going on: its leak groups suppressed, and those
	 * shown (the count of a process that ends before its summary). */
	uint64_t suppressed_lost[HG_LOST_KINDS][2];
	uint64_t shown_lost[HG_LOST_KINDS][2];
	/* Raw tables of this image, by the ids its records use. */
	struct hg_map modules;              /* index + 1 -> interned path */
	struct hg_map stacks;               /* stack id -> const struct hg_stack * */
	struct hg_map contexts;             /* (stack id, kind) -> struct hg_error *, for C records */
};

/* A leak check's summary as it came: later checks of the process change its counts. */
struct hg_leak_summary {
	int pid;
	uint64_t lost[HG_LOST_KINDS][2], suppressed[HG_LOST_KINDS][2];
};

enum hg_event_type { HG_EV_ERROR, HG_EV_LEAK, HG_EV_LEAK_SUMMARY, HG_EV_HEAP_SUMMARY };
struct hg_event {
	enum hg_event_type type;
	void *what; /* struct hg_error *, struct hg_leak *, struct hg_leak_summary *, struct hg_process * */
};

/* A process whose last program ran without the checking library, or reports to another
 * heapguard command (one the checked program ran: heapguard heapguard ./prog). */
struct hg_unchecked {
	int pid;
	const char *program;     /* what it ran last */
	const char *executed_by; /* the checked program that executed it; NULL: none, or unknown */
	const char *reason;      /* "it is statically linked", ...; NULL for one checked elsewhere */
	const char *text;        /* the NOT CHECKED (CHECKED ELSEWHERE) line's text */
	int elsewhere;           /* B records: its environment names another command's records */
};

struct hg_report {
	struct hg_vec errors;    /* struct hg_error *, in order of first report */
	struct hg_vec leaks;     /* struct hg_leak * */
	struct hg_vec processes; /* struct hg_process *, in order of first record, all images */
	struct hg_vec events;    /* struct hg_event *, in order of arrival */
	struct hg_map contexts;  /* hash of (kind, stack, address) -> chain of struct hg_error * */
	struct hg_map live;      /* pid -> the process's current image */
	int main_pid;            /* the process the command started */
	const char *unchecked;   /* set at the end when the library never ran in main_pid, or
				    not in the program it executed last: what to tell the user;
				    NULL for a checked run */
	int unchecked_as_asked;  /* ... because --trace-children=no left what it executed so */
	struct hg_vec not_checked; /* struct hg_unchecked *: every process so, main_pid's first */
	struct hg_vec elsewhere;   /* struct hg_unchecked *: every process checked by another
				      heapguard command, which reports it */
	struct hg_vec spawned;     /* struct hg_unchecked *: B records (pid, program, executed_by) */
	struct hg_vec running;     /* struct hg_process *: checked, still running at the end (a
				      daemon, a background job), or executing a program that has
				      not loaded the library yet: it reports on its own stderr */
	size_t bad_records;      /* lines that did not parse */
	unsigned leak_error_kinds; /* bit k: a listed leak of kind k (HG_LOST_*) is an error
				      context, as valgrind counts them in a full check */
};

/* ---- symbolize.c: names for module offsets (elfutils libdw) ---- */
/* Fills out[0..] with the frames at offset in module (the innermost inlined call first,
 * the function holding the code last) and returns how many (at least 1, at most max).
 * pc and offset are copied into each frame; results are cached per (module, offset). The
 * code looked up is the call before a return address, or with `exact` (a fault's first
 * frame) the instruction at offset itself. */
size_t hg_symbolize(const char *module, uint64_t pc, uint64_t offset, int exact, struct hg_frame *out,
		    size_t max);
/* Demangles a C++ symbol; returns an interned string, or name itself when not mangled. */
const char *hg_demangle(const char *name);

/* ---- stacks (records.c) ---- */
/* The interned stack of these frames (copied). */
const struct hg_stack *hg_stack_intern(const struct hg_frame *frames, size_t count);
/* "function file:line" for frame f, or "function (module+0xoff)" without a source line. */
void hg_frame_text(const struct hg_frame *f, struct hg_text *out);

/* ---- records.c: reading the stream into the report ---- */
struct hg_reader {
	int fd;
	struct hg_text pending; /* the part of a line not yet terminated */
};
/* Reads what was appended since the last call and adds it to the report. */
void hg_records_read(struct hg_reader *r, struct hg_report *rep);
/* Parses one record line (without its newline); exposed for tests of the parser. */
void hg_records_line(struct hg_report *rep, char *line);

/* ---- report totals (records.c) ---- */
struct hg_totals {
	uint64_t errors, contexts;                      /* shown (not suppressed); a leak listed of
							   leak_error_kinds is one of each */
	uint64_t suppressed_errors, suppressed_contexts;
	uint64_t lost[HG_LOST_KINDS][2];                /* shown: [kind][0 bytes, 1 blocks] */
	const struct hg_process *main;                  /* the started process's last image
							   with a heap summary; NULL when none */
};
void hg_report_totals(const struct hg_report *rep, struct hg_totals *t);
/* The bytes (blocks 0) or blocks (1) of a leak kind in a summary, less the suppressed. */
uint64_t hg_lost_shown(const struct hg_leak_summary *s, int kind, int blocks);

/* ---- suppress.c ---- */
/* Reads a suppressions file; on error prints "heapguard: FILE:LINE: why" and returns -1. */
int hg_suppressions_load(const char *path);
/* Adds an entry that hides every report of kind (--undef-value-errors=no). */
void hg_suppressions_hide_kind(const char *kind);
/* The first suppression matching kind and stack, or NULL. call: the function the report was
 * made in, whose frame the stack leaves out and valgrind's has first (an error's intercepted
 * call, a leak's allocation function); NULL for none. */
const struct hg_suppression *hg_suppression_match(const char *kind, const struct hg_stack *stack,
						  const char *call);
/* Name of a suppression. */
const char *hg_suppression_name(const struct hg_suppression *s);
/* Whether what s hides counts as suppressed: it comes from a file, not from an option that
 * turns a check off (--undef-value-errors=no: valgrind then finds nothing to suppress). */
int hg_suppression_counts(const struct hg_suppression *s);
/* Calls fn for each suppression of the files that hid something in rep, in file order, with
 * its name, its FILE:LINE and how many errors and leak records it hid. */
void hg_suppressions_used(const struct hg_report *rep,
			  void (*fn)(const char *name, const char *where, uint64_t count, void *arg), void *arg);
/* Appends a ready suppression entry for kind, stack and call (as hg_suppression_match's). */
void hg_suppression_generate(const char *kind, const struct hg_stack *stack, const char *call,
			     struct hg_text *out);

/* ---- render.c: the text report ---- */
struct hg_render_options {
	FILE *out;
	int quiet;           /* reports only: no summaries */
	int gen_suppressions;
	int show_used;       /* used_suppression lines before ERROR SUMMARY */
	int signal;          /* the signal that ended PROGRAM, said before ERROR SUMMARY; 0: none */
};
/* Writes the events that arrived since the last call. */
void hg_render_events(const struct hg_report *rep, const struct hg_render_options *o, size_t *next);
/* The closing lines: the signal that ended PROGRAM, ERROR SUMMARY (and the suppressed counts). */
void hg_render_end(const struct hg_report *rep, const struct hg_render_options *o);

/* ---- json.c, sarif.c, xml.c ---- */
struct hg_exit {
	int signal; /* the signal that killed the program, or 0 */
	int code;   /* its exit status when signal is 0 */
	uint64_t ms; /* how long it ran */
};
/* Each returns 0, or -1 after saying why on stderr. */
int hg_write_json(const char *path, const struct hg_report *rep, char *const argv[],
		  const struct hg_exit *ex);
int hg_write_sarif(const char *path, const struct hg_report *rep, char *const argv[],
		   const struct hg_exit *ex);
int hg_write_xml(const char *path, const struct hg_report *rep, char *const argv[],
		 const struct hg_exit *ex);
/* JSON string escaping, shared by both writers. */
void hg_json_string(FILE *out, const char *s);

#endif
