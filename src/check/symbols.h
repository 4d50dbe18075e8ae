/* symbols.h — what the library itself can say about a return address (the command says more). */
#ifndef HG_CHECK_SYMBOLS_H
#define HG_CHECK_SYMBOLS_H

#include <stdint.h>

struct hgc_symbol {
	const char *function; /* NULL when unknown */
	const char *module;   /* path of the object holding pc; NULL when none */
	uintptr_t offset;     /* pc - the module's load address */
};

/* Modules tracked: a program that loads more (a python3 with numpy and scipy loads over 200
 * extensions) gets its frames in the later ones unnamed. */
#define HGC_MAX_MODULES 1024

void hgc_symbolize(uintptr_t pc, struct hgc_symbol *out);

/* C++'s global allocation operators, by their mangled names (any overload). */
enum hgc_cxx_op { HGC_OP_NONE, HGC_OP_NEW, HGC_OP_NEW_ARRAY, HGC_OP_DELETE, HGC_OP_DELETE_ARRAY };
/* The operator whose code holds the return address ra, or else the one the call that returns to
 * ra called directly: an operator delete that tail-calls free leaves no frame of its own. */
enum hgc_cxx_op hgc_cxx_operator(uintptr_t ra);
/* The index (0..HGC_MAX_MODULES-1) of the module holding pc, its path and pc's offset in it;
 * -1 when pc is in no module (or past those tracked). Indexes are stable for the process's
 * life. */
int hgc_module_of(uintptr_t pc, uintptr_t *offset, const char **path);

#endif
