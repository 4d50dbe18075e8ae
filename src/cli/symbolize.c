/* symbolize.c — names for module offsets with elfutils libdw: function, source file and line,
 * inlined calls as frames of their own, demangled C++ names; module+offset stays as the only
 * information for code without symbols. One Dwfl per module, results cached per address. */
#include <dwarf.h>
#include <elfutils/libdwfl.h>
#include <gelf.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

#define MAX_INLINED 32 /* frames one address expands to, at most */
#define PAGE_BYTES 4096u /* ld.so maps a module from its first PT_LOAD rounded down to a page */

/* libstdc++'s demangler, declared here so that the command stays a C program. */
extern char *__cxa_demangle(const char *mangled, char *buf, size_t *len, int *status);

struct module {
	Dwfl *dwfl;          /* NULL when the file could not be read as ELF */
	Dwfl_Module *mod;
	uint64_t offset_base; /* dwfl address of module offset 0 */
	struct hg_map cache; /* offset + 1 -> struct cached */
	struct hg_map cus;   /* CU DIE offset + 1 -> struct range_index of its functions */
	struct range_index *units; /* every unit's ranges, once an address was in none by .debug_aranges */
	struct symbol *symbols; /* the symbols addresses are named by, sorted, once one was looked up */
	size_t nsymbols;
	bool indexed;
	struct hg_map unsized;  /* libdwfl's names for addresses in no sized symbol (symbol_name) */
};

/* For code without debug information the name is the symbol's, and dwfl_module_addrname
 * reads the whole symbol table for each address: libLLVM's 1,700 frames of leaks took the
 * command 0.35 s. Here the symbols are sorted by address once, and an address costs a binary
 * search. */
struct symbol {
	uint64_t addr, size;
	uint64_t reach; /* the furthest end of this symbol and those before it */
	const char *name;
	unsigned bind;
};

/* The functions of one compilation unit sorted by address, so that finding the one holding an
 * address is a binary search instead of dwarf_getscopes' walk over the whole unit, which made
 * symbolizing a large program's reports quadratic. A module's units are indexed the same way
 * where .debug_aranges does not list them. */
struct die_range {
	uint64_t low, high; /* [low, high) in the DWARF's addresses */
	Dwarf_Off die;
};
struct range_index {
	struct die_range *ranges;
	size_t count, cap;
};

struct cached {
	size_t count;
	struct hg_frame frames[];
};

static struct hg_map modules; /* interned path -> struct module */

static char *debuginfo_path; /* NULL: the standard places (/usr/lib/debug, build-ids) */
static const Dwfl_Callbacks CALLBACKS = {
	.find_elf = dwfl_build_id_find_elf,
	.find_debuginfo = dwfl_standard_find_debuginfo,
	.section_address = dwfl_offline_section_address,
	.debuginfo_path = &debuginfo_path,
};

const char *hg_demangle(const char *name)
{
	if (name == NULL || strncmp(name, "_Z", 2) != 0)
		return hg_intern(name);
	int status;
	char *plain = __cxa_demangle(name, NULL, NULL, &status);
	if (plain == NULL || status != 0)
		return hg_intern(name);
	const char *s = hg_intern(plain);
	free(plain);
	return s;
}

/* The dwfl address of the module's first mapped byte: records give offsets from where ld.so
 * mapped the module (dladdr's dli_fbase), which is the first PT_LOAD rounded down to a page. */
static uint64_t find_offset_base(Dwfl_Module *mod)
{
	GElf_Addr bias;
	Elf *elf = dwfl_module_getelf(mod, &bias);
	size_t n;
	if (elf == NULL || elf_getphdrnum(elf, &n) != 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		GElf_Phdr ph;
		if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_LOAD)
			return (ph.p_vaddr & ~(uint64_t)(PAGE_BYTES - 1)) + bias;
	}
	return 0;
}

static struct module *module_for(const char *path)
{
	struct module *m = hg_map_get(&modules, (uintptr_t)path);
	if (m != NULL)
		return m;
	m = hg_xcalloc(1, sizeof *m);
	hg_map_put(&modules, (uintptr_t)path, m);
	m->dwfl = dwfl_begin(&CALLBACKS);
	if (m->dwfl == NULL)
		return m;
	dwfl_report_begin(m->dwfl);
	/* Base 0: a PIE or library then has dwfl addresses equal to its offsets. */
	m->mod = dwfl_report_elf(m->dwfl, path, path, -1, 0, false);
	dwfl_report_end(m->dwfl, NULL, NULL);
	if (m->mod == NULL) {
		dwfl_end(m->dwfl);
		m->dwfl = NULL;
		return m;
	}
	m->offset_base = find_offset_base(m->mod);
	return m;
}

/* The demangled name of the symbol `linked`; *linkage gets `linked` when that differs. */
static const char *names(const char *linked, const char **linkage)
{
	const char *plain = hg_demangle(linked);
	*linkage = plain != NULL && strcmp(plain, linked) != 0 ? hg_intern(linked) : NULL;
	return plain;
}

/* Whether a, not NULL, is another name than b. */
static bool differs(const char *a, const char *b)
{
	return a != NULL && (b == NULL || strcmp(a, b) != 0);
}

/* A DIE's name: the demangled linkage name (which qualifies C++ names), else DW_AT_name;
 * both looked for through DW_AT_abstract_origin and DW_AT_specification. *linkage: the
 * mangled name, when there is one; *plain: DW_AT_name, when it differs from both. */
static const char *die_name(Dwarf_Die *die, const char **linkage, const char **plain)
{
	Dwarf_Attribute attr;
	const char *s = NULL, *name = NULL;
	*linkage = NULL;
	if (dwarf_attr_integrate(die, DW_AT_name, &attr))
		name = hg_intern(dwarf_formstring(&attr));
	if (dwarf_attr_integrate(die, DW_AT_linkage_name, &attr) ||
	    dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr))
		s = dwarf_formstring(&attr);
	const char *shown = s != NULL ? names(s, linkage) : name;
	*plain = differs(name, shown) && differs(name, *linkage) ? name : NULL;
	return shown;
}

/* An absolute path for a source file name: relative ones are relative to the CU's directory. */
static const char *source_path(Dwarf_Die *cudie, const char *name)
{
	if (name == NULL)
		return NULL;
	Dwarf_Attribute attr;
	const char *dir = NULL;
	if (name[0] != '/' && cudie && dwarf_attr(cudie, DW_AT_comp_dir, &attr))
		dir = dwarf_formstring(&attr);
	if (dir == NULL)
		return hg_intern(name);
	struct hg_text t = { 0 };
	hg_text_printf(&t, "%s/%s", dir, name);
	const char *s = hg_intern(t.s);
	free(t.s);
	return s;
}

/* An inlined call of a function the compiler calls artificial: glibc's _FORTIFY_SOURCE
 * wrappers (printf calling __printf_chk, at a line of bits/stdio2.h) and implicit C++
 * members. Debuggers step over them; a report goes on to the line that called them. Not a
 * lambda's body: g++ 12 marks its operator() artificial too, and the program's line in it
 * went missing (a `new` in a lambda that std::for_each or std::thread calls, at -O2). */
static int artificial(Dwarf_Die *inlined)
{
	Dwarf_Attribute attr;
	bool flag;
	const char *name;
	return dwarf_attr_integrate(inlined, DW_AT_artificial, &attr) && dwarf_formflag(&attr, &flag) == 0 && flag &&
	       !(dwarf_attr_integrate(inlined, DW_AT_name, &attr) && (name = dwarf_formstring(&attr)) &&
		 strcmp(name, "operator()") == 0);
}

/* Where an inlined call was made: its DW_AT_call_file and DW_AT_call_line. */
static void call_site(Dwarf_Die *cudie, Dwarf_Die *inlined, const char **file, unsigned *line)
{
	Dwarf_Attribute attr;
	Dwarf_Word value;
	Dwarf_Files *files;
	size_t nfiles;
	*file = NULL;
	*line = 0;
	if (dwarf_attr(inlined, DW_AT_call_line, &attr) && dwarf_formudata(&attr, &value) == 0)
		*line = (unsigned)value;
	if (dwarf_attr(inlined, DW_AT_call_file, &attr) && dwarf_formudata(&attr, &value) == 0 &&
	    dwarf_getsrcfiles(cudie, &files, &nfiles) == 0 && value < nfiles)
		*file = source_path(cudie, dwarf_filesrc(files, value, NULL, NULL));
}

/* Whether one of die's ranges holds pc. One that starts at 0 is code the linker discarded:
 * lld's --gc-sections writes a dropped function's DWARF addresses as from 0, and code never
 * sits at 0 in a linked module (its ELF header does). Trusted, such a function of 6,000
 * lines took every frame below it as its own (_start was named unused_big a.c:270). */
static bool covers(Dwarf_Die *die, uint64_t pc)
{
	Dwarf_Addr base, low, high;
	ptrdiff_t off = 0;
	while ((off = dwarf_ranges(die, off, &base, &low, &high)) > 0)
		if (low != 0 && low <= pc && pc < high)
			return true;
	return false;
}

static void add_ranges(struct range_index *ix, Dwarf_Die *die)
{
	Dwarf_Addr base, low, high;
	ptrdiff_t off = 0;
	while ((off = dwarf_ranges(die, off, &base, &low, &high)) > 0) {
		if (low == 0)
			continue; /* discarded (see covers) */
		if (ix->count == ix->cap) {
			ix->cap = ix->cap ? 2 * ix->cap : 64;
			ix->ranges = hg_xrealloc(ix->ranges, ix->cap * sizeof *ix->ranges);
		}
		ix->ranges[ix->count++] = (struct die_range){ low, high, dwarf_dieoffset(die) };
	}
}

/* Functions with code sit at the top of a unit, inside namespaces (C++), or inside what a
 * function defines: a local class's methods, a lambda's in a template, a GCC nested
 * function (looked for in the functions' blocks and types, not in their inlined calls). */
static void index_functions(struct range_index *ix, Dwarf_Die *parent)
{
	Dwarf_Die child;
	if (dwarf_child(parent, &child) != 0)
		return;
	do {
		int tag = dwarf_tag(&child);
		if (tag == DW_TAG_subprogram)
			add_ranges(ix, &child);
		if (tag == DW_TAG_subprogram || tag == DW_TAG_namespace || tag == DW_TAG_module ||
		    tag == DW_TAG_lexical_block || tag == DW_TAG_structure_type || tag == DW_TAG_class_type ||
		    tag == DW_TAG_union_type)
			index_functions(ix, &child);
	} while (dwarf_siblingof(&child, &child) == 0);
}

static int by_low(const void *a, const void *b)
{
	const struct die_range *x = a, *y = b;
	return x->low < y->low ? -1 : x->low > y->low;
}

static struct range_index *cu_index_of(struct module *m, Dwarf_Die *cudie)
{
	uint64_t key = dwarf_dieoffset(cudie) + 1;
	struct range_index *ix = hg_map_get(&m->cus, key);
	if (ix == NULL) {
		ix = hg_xcalloc(1, sizeof *ix);
		index_functions(ix, cudie);
		qsort(ix->ranges, ix->count, sizeof *ix->ranges, by_low);
		hg_map_put(&m->cus, key, ix);
	}
	return ix;
}

/* The DIE (function or unit) whose range holds pc, or 0 when the index has none. */
static int die_at(struct range_index *ix, Dwarf *dbg, uint64_t pc, Dwarf_Die *out)
{
	size_t lo = 0, hi = ix->count;
	while (lo < hi) { /* the last range starting at or before pc */
		size_t mid = (lo + hi) / 2;
		if (ix->ranges[mid].low <= pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* Ranges do not nest, but a function may start before a shorter one ends: look back. */
	for (size_t i = lo; i-- > 0 && lo - i <= 8;)
		if (pc < ix->ranges[i].high)
			return dwarf_offdie(dbg, ix->ranges[i].die, out) != NULL;
	return 0;
}

/* The unit holding dwfl address a, or NULL; *bias: dwfl addresses less the DWARF's. libdw
 * 0.188 finds units by .debug_aranges alone, which clang does not write: a unit it does not
 * name is looked for in the units' own ranges, indexed once per module. */
static Dwarf_Die *unit_at(struct module *m, uint64_t a, Dwarf_Addr *bias, Dwarf_Die *mem)
{
	Dwarf_Die *cudie = dwfl_module_addrdie(m->mod, a, bias);
	/* libdw answers with the unit before a when none covers a: _start, right after a program's
	 * last function, was at a line of std_thread.h. */
	if (cudie != NULL && covers(cudie, a - *bias))
		return cudie;
	Dwarf *dbg = dwfl_module_getdwarf(m->mod, bias);
	if (dbg == NULL)
		return NULL;
	if (m->units == NULL) {
		m->units = hg_xcalloc(1, sizeof *m->units);
		Dwarf_CU *cu = NULL;
		Dwarf_Die unit;
		while (dwarf_get_units(dbg, cu, &cu, NULL, NULL, &unit, NULL) == 0)
			add_ranges(m->units, &unit);
		qsort(m->units->ranges, m->units->count, sizeof *m->units->ranges, by_low);
	}
	return die_at(m->units, dbg, a - *bias, mem) ? mem : NULL;
}

/* dwarf_getscopes' answer, for a function the index missed (one nested in a type, say). */
static int scopes_by_walk(Dwarf_Die *cudie, uint64_t pc, Dwarf_Die *scopes)
{
	Dwarf_Die *all = NULL;
	int n = dwarf_getscopes(cudie, pc, &all), count = 0;
	for (int i = 0; i < n && count < MAX_INLINED; i++) {
		int tag = dwarf_tag(&all[i]);
		if (tag == DW_TAG_inlined_subroutine || tag == DW_TAG_subprogram)
			scopes[count++] = all[i];
		if (tag == DW_TAG_subprogram)
			break;
	}
	free(all);
	return count > 0 && dwarf_tag(&scopes[count - 1]) == DW_TAG_subprogram ? count : 0;
}

/* The scopes around pc, innermost first: the inlined calls, then the function. Returns how
 * many (0 when no function is known). */
static int scopes_at(struct module *m, Dwarf_Die *cudie, uint64_t pc, Dwarf_Die *scopes)
{
	Dwarf_Addr bias;
	Dwarf *dbg = dwfl_module_getdwarf(m->mod, &bias);
	Dwarf_Die path[MAX_INLINED];
	int n = 0;
	if (dbg == NULL)
		return 0;
	if (!die_at(cu_index_of(m, cudie), dbg, pc, &path[n++]))
		return scopes_by_walk(cudie, pc, scopes);
	/* Down through the blocks and inlined calls that hold pc. */
	for (int found = 1; found && n < MAX_INLINED;) {
		Dwarf_Die child;
		found = 0;
		if (dwarf_child(&path[n - 1], &child) != 0)
			break;
		do {
			int tag = dwarf_tag(&child);
			if ((tag == DW_TAG_inlined_subroutine || tag == DW_TAG_lexical_block) &&
			    dwarf_haspc(&child, pc) == 1) {
				path[n++] = child;
				found = 1;
			}
		} while (!found && dwarf_siblingof(&child, &child) == 0);
	}
	int count = 0;
	for (int i = n; i-- > 0;)
		if (i == 0 || dwarf_tag(&path[i]) == DW_TAG_inlined_subroutine)
			scopes[count++] = path[i];
	return count;
}

static int by_addr(const void *a, const void *b)
{
	const struct symbol *x = a, *y = b;
	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* The symbols dwfl_module_addrname weighs: named, defined, not a section's, a file's or a
 * thread-local variable's. */
static void index_symbols(struct module *m)
{
	m->indexed = true;
	int n = dwfl_module_getsymtab(m->mod);
	if (n <= 1)
		return;
	m->symbols = hg_xmalloc((size_t)n * sizeof *m->symbols);
	for (int i = 1; i < n; i++) {
		GElf_Sym sym;
		GElf_Addr addr;
		GElf_Word shndx;
		const char *name = dwfl_module_getsym_info(m->mod, i, &sym, &addr, &shndx, NULL, NULL);
		unsigned type = GELF_ST_TYPE(sym.st_info);
		if (name == NULL || name[0] == '\0' || sym.st_shndx == SHN_UNDEF || type == STT_SECTION ||
		    type == STT_FILE || type == STT_TLS)
			continue;
		/* A versioned definition (__libc_start_main@GLIBC_2.2.5 in libc6-dbg's symbol
		 * table) is named as the dynamic symbol table names it, without the version. */
		const char *at = strchr(name, '@');
		if (at != NULL && at > name)
			name = hg_intern_len(name, (size_t)(at - name));
		m->symbols[m->nsymbols++] = (struct symbol){ .addr = addr, .size = sym.st_size, .name = name,
							     .bind = GELF_ST_BIND(sym.st_info) };
	}
	qsort(m->symbols, m->nsymbols, sizeof *m->symbols, by_addr);
	for (size_t i = 0, reach = 0; i < m->nsymbols; i++) {
		struct symbol *sym = &m->symbols[i];
		if (sym->addr + sym->size > reach)
			reach = sym->addr + sym->size;
		sym->reach = reach;
	}
}

/* The index of the section holding dwfl address a, or SHN_ABS, as libdwfl finds it. */
static unsigned section_of(struct module *m, uint64_t a)
{
	GElf_Addr bias;
	Elf *elf = dwfl_module_getelf(m->mod, &bias);
	Elf_Scn *scn = NULL;
	while (elf != NULL && (scn = elf_nextscn(elf, scn)) != NULL) {
		GElf_Shdr shdr;
		if (gelf_getshdr(scn, &shdr) != NULL && a - bias >= shdr.sh_addr && a - bias < shdr.sh_addr + shdr.sh_size)
			return (unsigned)elf_ndxscn(scn);
	}
	return SHN_ABS;
}

/* The index of the first symbol starting after dwfl address a. */
static size_t symbols_after(const struct module *m, uint64_t a)
{
	size_t lo = 0, hi = m->nsymbols;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (m->symbols[mid].addr <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The name of the symbol at dwfl address a, as dwfl_module_addrname chooses it: of the sized
 * symbols holding a, the one starting last, then the most global, then the shortest. Symbols
 * starting between it and a are few; past a few dozen, libdwfl decides. When none holds a,
 * only an assembly label (a symbol without a size) at or past the end of every symbol below
 * a can name it; where there is one, libdwfl's choice depends only on the symbols starting
 * at or below a and on a's section, and it is asked once for each such pair. */
static const char *symbol_name(struct module *m, uint64_t a)
{
	static const char none[] = "";
	if (!m->indexed)
		index_symbols(m);
	size_t lo = symbols_after(m, a);
	if (lo == 0)
		return NULL; /* no symbol starts at or below a */
	if (m->symbols[lo - 1].reach > a) { /* a sized symbol holds a */
		const struct symbol *best = NULL;
		for (size_t i = lo, seen = 0; i-- > 0 && seen < 64; seen++) {
			const struct symbol *s = &m->symbols[i];
			if (best != NULL && s->addr < best->addr)
				break;
			if (a - s->addr < s->size &&
			    (best == NULL || s->bind > best->bind || (s->bind == best->bind && s->size < best->size)))
				best = s;
		}
		return best != NULL ? best->name : dwfl_module_addrname(m->mod, a);
	}
	const struct symbol *last = &m->symbols[lo - 1];
	bool label = false;
	for (size_t i = lo; i-- > 0 && m->symbols[i].addr == last->addr;)
		label |= m->symbols[i].size == 0;
	if (!label || last->addr != last->reach)
		return NULL;
	uint64_t key = ((uint64_t)lo << 16 | (section_of(m, a) & 0xffffu)) + 1;
	const char *name = hg_map_get(&m->unsized, key);
	if (name == NULL) {
		name = dwfl_module_addrname(m->mod, a);
		hg_map_put(&m->unsized, key, (void *)(name != NULL ? name : none));
	}
	return name != none ? name : NULL;
}

/* Of the sized symbols starting where the one holding dwfl address a starts, the name valgrind
 * shows: the fewest leading underscores, then the most global, then the shortest (an exported
 * getdelim over __getdelim and glibc's internal __GI___getdelim, which its debug information
 * names). NULL when no sized symbol holds a. */
static const char *valgrind_name(struct module *m, uint64_t a)
{
	if (!m->indexed)
		index_symbols(m);
	const struct symbol *best = NULL;
	size_t lo = symbols_after(m, a);
	uint64_t start = 0;
	for (size_t i = lo, seen = 0; i-- > 0 && seen < 64; seen++) {
		const struct symbol *s = &m->symbols[i];
		if (a - s->addr >= s->size)
			continue;
		if (best != NULL && s->addr != start)
			break;
		start = s->addr;
		size_t u = strspn(s->name, "_"), bu = best ? strspn(best->name, "_") : 0;
		if (best == NULL || u < bu || (u == bu && (s->bind > best->bind ||
							   (s->bind == best->bind && strlen(s->name) < strlen(best->name)))))
			best = s;
	}
	return best != NULL ? best->name : NULL;
}

/* The frames at dwfl address a: one per inlined call around it, then the function. libc's
 * start code, which calls main, is named from the symbol table alone: a name is all a reader
 * wants of it (valgrind hides those frames), and its source line would open libc's DWARF,
 * which libc6-dbg ships compressed: inflating it took 40 ms, 9-13 % of a checked gcc or
 * python3 run. */
static size_t lookup(struct module *m, uint64_t a, struct hg_frame *out)
{
	const char *sym = symbol_name(m, a), *linkage = NULL, *plain = NULL;
	if (sym && strncmp(sym, "__libc_start", 12) == 0) {
		out[0] = (struct hg_frame){ .function = names(sym, &linkage), .linkage = linkage };
		return 1;
	}
	size_t n = 0;
	const char *file = NULL;
	unsigned line = 0;
	Dwarf_Addr bias = 0;
	Dwarf_Die unit;
	Dwarf_Die *cudie = unit_at(m, a, &bias, &unit);
	Dwarf_Line *l = cudie != NULL ? dwarf_getsrc_die(cudie, a - bias) : NULL;
	int lineno = 0;
	if (l != NULL) {
		file = source_path(cudie, dwarf_linesrc(l, NULL, NULL));
		line = dwarf_lineno(l, &lineno) == 0 && lineno > 0 ? (unsigned)lineno : 0;
	}
	Dwarf_Die scopes[MAX_INLINED];
	int nscopes = cudie ? scopes_at(m, cudie, a - bias, scopes) : 0;
	const char *function = NULL;
	for (int i = 0; i < nscopes; i++) {
		if (i == nscopes - 1) { /* the function itself */
			function = die_name(&scopes[i], &linkage, &plain);
			/* GCC gives no linkage name to a function templated on a lambda or a local
			 * type: its DW_AT_name lacks class and namespace (make<main()::<lambda()> >),
			 * and valgrind's suppressions name it mangled. The symbol table's serves. */
			if (linkage == NULL && sym != NULL && strncmp(sym, "_Z", 2) == 0)
				function = names(sym, &linkage);
			break;
		}
		if (!artificial(&scopes[i])) {
			const char *inlined = die_name(&scopes[i], &linkage, &plain);
			out[n++] = (struct hg_frame){ .function = inlined, .linkage = linkage, .alias = plain,
						      .file = file, .line = line, .inlined = 1 };
		}
		call_site(cudie, &scopes[i], &file, &line);
	}
	if (function == NULL) /* no debug information: the symbol table, or nothing */
		function = sym ? names(sym, &linkage) : NULL;
	const char *alias = valgrind_name(m, a);
	if (!differs(alias, function) || !differs(alias, linkage))
		alias = NULL;
	out[n++] = (struct hg_frame){ .function = function, .linkage = linkage, .alias = alias, .file = file,
				      .line = line };
	return n;
}

size_t hg_symbolize(const char *module, uint64_t pc, uint64_t offset, int exact, struct hg_frame *out,
		    size_t max)
{
	struct hg_frame unknown = { 0 };
	const struct hg_frame *found = &unknown;
	size_t n = 1;
	module = hg_intern(module);
	struct module *m = module ? module_for(module) : NULL;
	if (m != NULL && m->mod != NULL) {
		uint64_t key = (offset + 1) | (uint64_t)(exact != 0) << 63;
		struct cached *c = hg_map_get(&m->cache, key);
		if (c == NULL) {
			struct hg_frame tmp[MAX_INLINED];
			/* offset - 1: a return address follows the call, maybe on the next line */
			size_t count = lookup(m, m->offset_base + offset - (!exact && offset > 0), tmp);
			c = hg_xmalloc(sizeof *c + count * sizeof c->frames[0]);
			c->count = count;
			memcpy(c->frames, tmp, count * sizeof tmp[0]);
			hg_map_put(&m->cache, key, c);
		}
		found = c->frames;
		n = c->count;
	}
	if (n > max)
		n = max;
	for (size_t i = 0; i < n; i++) {
		out[i] = found[i];
		out[i].pc = pc;
		out[i].offset = offset;
		out[i].module = module;
	}
	return n;
}
