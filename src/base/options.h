/* options.h — every HEAPGUARD_OPTIONS key, declared once as (type, name, default, help). */
#ifndef HG_OPTIONS_H
#define HG_OPTIONS_H

#include <stdint.h>

/* X(type, field, default, help). type is BOOL, UINT or a CHOICE list "a|b" (value = index). */
#define HG_OPTION_TABLE(X)                                                                   \
	X(CHOICE("mmap|brk"), backend, 0,                                                    \
	  "where the heap comes from: mmap, or brk/sbrk (falls back to mmap when the break cannot grow)") \
	X(UINT, decay_ms, 1000, "milliseconds a freed region stays mapped before it goes back to the OS") \
	X(BOOL, stats, 0, "print allocation statistics to stderr at exit")                   \
	X(BOOL, help, 0, "print this table to stderr")

struct hg_options {
#define HG_OPTION_FIELD(type, name, def, help) uint32_t name;
	HG_OPTION_TABLE(HG_OPTION_FIELD)
#undef HG_OPTION_FIELD
};

enum { HG_BACKEND_MMAP = 0, HG_BACKEND_BRK = 1 };

extern struct hg_options hg_opt;

/* Parses `text` ("key=value:key=value", may be NULL) over the defaults; warns on stderr
 * about unknown keys and bad values, prints the table when help=1. */
void hg_options_parse(const char *text);

#endif
