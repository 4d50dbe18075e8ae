/* symbols.c — names for return addresses without the command: the module from ld.so's
 * _dl_find_object, its file from /proc/self/maps, and its functions from that file's .symtab
 * (or .dynsym), sorted. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <string.h>
#include <unistd.h>

#include "base/lock.h"
#include "check/sort.h"
#include "check/symbols.h"
#include "os/os.h"

/* A function symbol: module-relative start, size, name in the string table, binding. */
struct fn {
	uintptr_t value;
	uint32_t size;
	uint32_t name;
	uint8_t bind;
};
_Static_assert(sizeof(struct fn) % 8 == 0, "hgc_sort moves whole words");

/* dladdr scans a module's every dynamic symbol for each address: 1,700 frames of a leak report
 * in libLLVM (tens of thousands of symbols) took it 0.4 s. Here each module's functions are
 * sorted once, and an address costs a binary search. */
struct module {
	uintptr_t bias;            /* l_addr: symbol values + bias = addresses */
	uintptr_t base;            /* its first mapping's start, dladdr's dli_fbase: offsets count from it */
	const char *name;          /* ld.so's (l_name), by which the module is known again */
	const char *path;          /* the file mapped at base: reports name it, symbols come from it */
	const struct fn *fns;      /* sorted by value; NULL when none could be read */
	size_t nfns;
	const char *strs;
	int tried;
};

/* Indexes stay with the (bias, name) they were given to, for the process's life: the records
 * for the command name modules by index. */
static struct module modules[HGC_MAX_MODULES];
static unsigned nmodules;
static hg_lock_t sym_lock = HG_LOCK_INIT;
static char path_buf[HG_OS_MAPS_LINE_BYTES]; /* under sym_lock */

/* The file mapped at base, a module's first mapping, as /proc/self/maps names it: its real,
 * absolute path. ld.so's name for the module is the path it was opened by: relative to a
 * directory the program may have left since ("./libplug.so"), through links where valgrind and
 * its suppressions' obj: lines name the file itself, and "" for the program, which
 * /proc/self/exe is not when ld.so was run as a command (ld.so PROG). That name, or
 * /proc/self/exe for "", stands where maps names none (the vdso; no /proc). */
static const char *module_path(uintptr_t base, const char *name)
{
	if (hg_os_mapped_path(base, path_buf, sizeof path_buf))
		return path_buf;
	if (name[0])
		return name;
	hg_os_exe_path(path_buf, sizeof path_buf);
	return path_buf;
}

/* A copy of path that outlives its module: ld.so frees the name at dlclose, and the records
 * for the command keep naming the module by it. The first paths go into the library's own
 * bytes: a process at vm.max_map_count has no mapping left to give, and its reports named no
 * module at all. */
static const char *keep_path(const char *path)
{
	static char first[16384];
	static char *cursor = first, *end = first + sizeof first;
	size_t n = strlen(path) + 1;
	if (n > (size_t)(end - cursor)) {
		size_t chunk = n > 65536 ? n : 65536;
		cursor = hg_os_map(chunk, 0);
		if (!cursor) {
			end = NULL;
			return NULL;
		}
		end = cursor + chunk;
	}
	char *copy = memcpy(cursor, path, n);
	cursor += n;
	return copy;
}

/* Where the module with link map lm starts: its lowest PT_LOAD, a page down (dladdr's
 * dli_fbase, which the command's offsets count from; _dl_find_object's map start is another
 * segment's for a program that is not PIE). */
struct base_query {
	const struct link_map *lm;
	uintptr_t base;
};

static int find_base(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	struct base_query *q = arg;
	if (info->dlpi_addr != q->lm->l_addr || info->dlpi_name != q->lm->l_name)
		return 0;
	uintptr_t lowest = UINTPTR_MAX;
	for (unsigned i = 0; i < info->dlpi_phnum; i++)
		if (info->dlpi_phdr[i].p_type == PT_LOAD && info->dlpi_phdr[i].p_vaddr < lowest)
			lowest = info->dlpi_phdr[i].p_vaddr;
	q->base = info->dlpi_addr + (lowest & ~(uintptr_t)(HG_OS_PAGE_BYTES - 1));
	return 1;
}

/* The module holding addr (ld.so's answer, as for the unwinder's rules in cfi.c): the entry of
 * its load bias and path, made on first sight. Under sym_lock. */
static struct module *module_at(uintptr_t addr)
{
	struct dl_find_object obj;
	if (_dl_find_object((void *)addr, &obj) != 0 || !obj.dlfo_link_map)
		return NULL;
	const struct link_map *lm = obj.dlfo_link_map;
	const char *name = lm->l_name ? lm->l_name : "";
	for (unsigned i = 0; i < nmodules; i++)
		if (modules[i].bias == lm->l_addr && !strcmp(modules[i].name, name))
			return &modules[i];
	if (nmodules == HGC_MAX_MODULES)
		return NULL;
	struct base_query q = { lm, (uintptr_t)obj.dlfo_map_start };
	dl_iterate_phdr(find_base, &q);
	const char *path = module_path(q.base, name);
	if (!(name = keep_path(name)) || !(path = strcmp(path, name) ? keep_path(path) : name))
		return NULL;
	struct module *m = &modules[nmodules++];
	m->bias = lm->l_addr;
	m->base = q.base;
	m->name = name;
	m->path = path;
	return m;
}

static int fn_before(const void *a, const void *b)
{
	return ((const struct fn *)a)->value < ((const struct fn *)b)->value;
}

/* A symbol that names code: a function, defined here. .dynsym's locals are not its to name
 * (dladdr's rule). */
static int is_function(const ElfW(Sym) *s, int dynamic)
{
	unsigned type = ELF64_ST_TYPE(s->st_info), bind = ELF64_ST_BIND(s->st_info);
	return (type == STT_FUNC || type == STT_GNU_IFUNC) && s->st_shndx != SHN_UNDEF && s->st_value &&
	       (!dynamic || bind == STB_GLOBAL || bind == STB_WEAK);
}

/* Reads m's functions from its file: .symtab (static functions of a program built without
 * -rdynamic too), else .dynsym, which stripped libraries keep. */
static void load_functions(struct module *m)
{
	m->tried = 1;
	size_t bytes;
	const char *f = hg_os_map_file(m->path, &bytes);
	if (!f || bytes < sizeof(ElfW(Ehdr)) || memcmp(f, ELFMAG, SELFMAG))
		return;
	const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)f;
	if (eh->e_shoff + (size_t)eh->e_shnum * sizeof(ElfW(Shdr)) > bytes)
		return;
	const ElfW(Shdr) *sh = (const ElfW(Shdr) *)(f + eh->e_shoff), *tab = NULL;
	for (unsigned i = 0; i < eh->e_shnum; i++)
		if ((sh[i].sh_type == SHT_SYMTAB || (sh[i].sh_type == SHT_DYNSYM && !tab)) &&
		    sh[i].sh_link < eh->e_shnum)
			tab = &sh[i];
	if (!tab)
		return;
	const ElfW(Shdr) *str = &sh[tab->sh_link];
	if (tab->sh_offset + tab->sh_size > bytes || str->sh_offset + str->sh_size > bytes)
		return;
	const ElfW(Sym) *syms = (const ElfW(Sym) *)(f + tab->sh_offset);
	size_t nsyms = tab->sh_size / sizeof *syms, n = 0;
	int dynamic = tab->sh_type == SHT_DYNSYM;
	for (size_t i = 0; i < nsyms; i++)
		n += is_function(&syms[i], dynamic) && syms[i].st_name < str->sh_size;
	struct fn *fns = n ? hg_os_map(n * sizeof *fns, 0) : NULL;
	if (!fns)
		return;
	n = 0;
	for (size_t i = 0; i < nsyms; i++)
		if (is_function(&syms[i], dynamic) && syms[i].st_name < str->sh_size)
			fns[n++] = (struct fn){ .value = syms[i].st_value,
						.size = syms[i].st_size > UINT32_MAX ? UINT32_MAX : (uint32_t)syms[i].st_size,
						.name = syms[i].st_name, .bind = (uint8_t)ELF64_ST_BIND(syms[i].st_info) };
	hgc_sort(fns, n, sizeof *fns, fn_before);
	m->fns = fns;
	m->nfns = n;
	m->strs = f + str->sh_offset;
}

/* The function of m whose extent holds addr (a zero-sized one: that starts there), or NULL: of
 * several, the one starting last, then the most global (a weak alias, strdup, before its
 * strong one, __strdup), then the shortest, as the command's symbolizer chooses. */
static const char *function_at(const struct module *m, uintptr_t addr)
{
	uintptr_t rel = addr - m->bias;
	size_t lo = 0, hi = m->nfns; /* the functions starting at or before rel are those below lo */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (m->fns[mid].value <= rel)
			lo = mid + 1;
		else
			hi = mid;
	}
	const struct fn *best = NULL;
	for (size_t i = lo, seen = 0; i-- > 0 && seen < 64; seen++) { /* nested functions are few */
		const struct fn *f = &m->fns[i];
		if (best && f->value < best->value)
			break;
		if ((rel - f->value < f->size || rel == f->value) &&
		    (!best || f->bind > best->bind || (f->bind == best->bind && f->size < best->size)))
			best = f;
	}
	return best ? m->strs + best->name : NULL;
}

/* The name of the function of module m (NULL: none) holding addr; NULL when unknown. Under
 * sym_lock. */
static const char *function_named(struct module *m, uintptr_t addr)
{
	if (m && !m->tried)
		load_functions(m);
	return m && m->fns ? function_at(m, addr) : NULL;
}

void hgc_symbolize(uintptr_t pc, struct hgc_symbol *out)
{
	memset(out, 0, sizeof *out);
	hg_lock(&sym_lock);
	/* pc is a return address: pc - 1 lies in the call instruction, inside the caller. */
	struct module *m = module_at(pc - 1);
	if (m) {
		out->module = m->path;
		out->offset = pc - m->base;
		out->function = function_named(m, pc - 1);
	}
	hg_unlock(&sym_lock);
}

static enum hgc_cxx_op op_named(const char *name)
{
	static const char CODES[][3] = { [HGC_OP_NEW] = "nw", [HGC_OP_NEW_ARRAY] = "na", [HGC_OP_DELETE] = "dl",
					 [HGC_OP_DELETE_ARRAY] = "da" };
	for (unsigned op = HGC_OP_NEW; name && !strncmp(name, "_Z", 2) && op <= HGC_OP_DELETE_ARRAY; op++)
		if (!strncmp(name + 2, CODES[op], 2))
			return (enum hgc_cxx_op)op;
	return HGC_OP_NONE;
}

enum hgc_cxx_op hgc_cxx_operator(uintptr_t ra)
{
	hg_lock(&sym_lock);
	struct module *m = module_at(ra - 1);
	enum hgc_cxx_op op = op_named(function_named(m, ra - 1));
	/* A direct call (e8 rel32) ends at ra; its target needs no read, only a name. Its five
	 * bytes are read only where a module is loaded now (an allocation's stack may be from
	 * one closed since) and on ra's own page. */
	const unsigned char *c = (const unsigned char *)ra;
	if (!op && m && (ra & (HG_OS_PAGE_BYTES - 1)) >= 5 && c[-5] == 0xe8) {
		int32_t rel;
		memcpy(&rel, c - 4, sizeof rel);
		uintptr_t to = ra + (uintptr_t)(intptr_t)rel;
		op = op_named(function_named(module_at(to), to));
	}
	hg_unlock(&sym_lock);
	return op;
}

int hgc_module_of(uintptr_t pc, uintptr_t *offset, const char **path)
{
	hg_lock(&sym_lock);
	struct module *m = module_at(pc - 1);
	if (m) {
		*offset = pc - m->base;
		*path = m->path;
	}
	hg_unlock(&sym_lock);
	return m ? (int)(m - modules) : -1;
}
