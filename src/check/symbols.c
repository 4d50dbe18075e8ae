/* symbols.c — names for return addresses without the command: dladdr, then the module's own
 * .symtab read from its file (static functions of a program built without -rdynamic). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <string.h>
#include <unistd.h>

#include "base/lock.h"
#include "check/symbols.h"
#include "os/os.h"

#define MAX_MODULES 64

struct module {
	uintptr_t bias;            /* link_map l_addr: symbol values + bias = addresses */
	const char *path;
	const ElfW(Sym) *syms;     /* .symtab, or NULL when stripped or unreadable */
	size_t nsyms;
	const char *strs;
	int tried;
};

static struct module modules[MAX_MODULES];
static unsigned nmodules;
static hg_lock_t sym_lock = HG_LOCK_INIT;
static char exe_path[4096];

/* The path of the main program: ld.so names it "" in its link map. */
static const char *main_path(void)
{
	if (!exe_path[0]) {
		ssize_t n = readlink("/proc/self/exe", exe_path, sizeof exe_path - 1);
		exe_path[n > 0 ? n : 0] = 0;
	}
	return exe_path;
}

static void load_symtab(struct module *m)
{
	m->tried = 1;
	size_t bytes;
	const char *f = hg_os_map_file(m->path, &bytes);
	if (!f || bytes < sizeof(ElfW(Ehdr)) || memcmp(f, ELFMAG, SELFMAG))
		return;
	const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)f;
	if (eh->e_shoff + (size_t)eh->e_shnum * sizeof(ElfW(Shdr)) > bytes)
		return;
	const ElfW(Shdr) *sh = (const ElfW(Shdr) *)(f + eh->e_shoff);
	for (unsigned i = 0; i < eh->e_shnum; i++) {
		if (sh[i].sh_type != SHT_SYMTAB || sh[i].sh_link >= eh->e_shnum)
			continue;
		const ElfW(Shdr) *str = &sh[sh[i].sh_link];
		if (sh[i].sh_offset + sh[i].sh_size > bytes || str->sh_offset + str->sh_size > bytes)
			return;
		m->syms = (const ElfW(Sym) *)(f + sh[i].sh_offset);
		m->nsyms = sh[i].sh_size / sizeof(ElfW(Sym));
		m->strs = f + str->sh_offset;
		return;
	}
}

static struct module *module_of(const struct link_map *lm)
{
	const char *path = lm->l_name && lm->l_name[0] ? lm->l_name : main_path();
	for (unsigned i = 0; i < nmodules; i++)
		if (modules[i].bias == lm->l_addr && !strcmp(modules[i].path, path))
			return &modules[i];
	if (nmodules == MAX_MODULES)
		return NULL;
	struct module *m = &modules[nmodules++];
	m->bias = lm->l_addr;
	m->path = path;
	return m;
}

static const char *symtab_name(const struct module *m, uintptr_t addr)
{
	uintptr_t rel = addr - m->bias;
	for (size_t i = 0; i < m->nsyms; i++) {
		const ElfW(Sym) *s = &m->syms[i];
		if (ELF64_ST_TYPE(s->st_info) == STT_FUNC && s->st_value <= rel && rel < s->st_value + s->st_size)
			return m->strs + s->st_name;
	}
	return NULL;
}

void hgc_symbolize(uintptr_t pc, struct hgc_symbol *out)
{
	Dl_info info;
	struct link_map *lm = NULL;
	memset(out, 0, sizeof *out);
	/* pc is a return address: pc - 1 lies in the call instruction, inside the caller. */
	if (!dladdr1((void *)(pc - 1), &info, (void **)&lm, RTLD_DL_LINKMAP) || !lm)
		return;
	out->module = lm->l_name && lm->l_name[0] ? lm->l_name : main_path();
	out->offset = pc - (uintptr_t)info.dli_fbase;
	if (info.dli_sname && info.dli_saddr)
		out->function = info.dli_sname;
	hg_lock(&sym_lock);
	struct module *m = module_of(lm);
	if (m && !m->tried)
		load_symtab(m);
	const char *name = m && m->syms ? symtab_name(m, pc - 1) : NULL;
	hg_unlock(&sym_lock);
	if (name)
		out->function = name;
}

int hgc_module_of(uintptr_t pc, uintptr_t *offset, const char **path)
{
	Dl_info info;
	struct link_map *lm = NULL;
	if (!dladdr1((void *)(pc - 1), &info, (void **)&lm, RTLD_DL_LINKMAP) || !lm)
		return -1;
	*offset = pc - (uintptr_t)info.dli_fbase;
	hg_lock(&sym_lock);
	struct module *m = module_of(lm);
	hg_unlock(&sym_lock);
	if (!m)
		return -1;
	*path = m->path;
	return (int)(m - modules);
}
