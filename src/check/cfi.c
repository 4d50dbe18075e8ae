/* cfi.c — where a caller's frame and its saved frame pointer lie at a return address, read from
 * its call frame information (.eh_frame), for the stack cache of stack.c. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "check/check.h"
#include "os/os.h"

/* DWARF pointer encodings (DW_EH_PE_*) and call frame instructions (DW_CFA_*) used here. */
enum { PE_ABSPTR = 0x00, PE_ULEB = 0x01, PE_UDATA2 = 0x02, PE_UDATA4 = 0x03, PE_UDATA8 = 0x04,
       PE_SLEB = 0x09, PE_SDATA2 = 0x0a, PE_SDATA4 = 0x0b, PE_SDATA8 = 0x0c, PE_PCREL = 0x10,
       PE_DATAREL = 0x30, PE_INDIRECT = 0x80 };
#define DW_RBP 6
#define DW_RSP 7
#define DW_RA 16 /* the return address's column */
#define MAX_STATES 8 /* DW_CFA_remember_state nesting */

struct reader {
	const uint8_t *p, *end;
	int bad;
};

static uint64_t uleb(struct reader *r)
{
	uint64_t v = 0;
	for (unsigned shift = 0; r->p < r->end && shift < 64; shift += 7) {
		uint8_t b = *r->p++;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return v;
	}
	r->bad = 1;
	return 0;
}

static int64_t sleb(struct reader *r)
{
	uint64_t v = 0;
	unsigned shift = 0;
	uint8_t b = 0x80;
	while (r->p < r->end && shift < 64 && (b & 0x80)) {
		b = *r->p++;
		v |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
	}
	if (b & 0x80)
		r->bad = 1;
	else if (shift < 64 && (b & 0x40))
		v |= ~(uint64_t)0 << shift; /* sign-extend */
	return (int64_t)v;
}

static uint64_t fixed(struct reader *r, unsigned bytes)
{
	if ((size_t)(r->end - r->p) < bytes) {
		r->bad = 1;
		return 0;
	}
	uint64_t v = 0;
	memcpy(&v, r->p, bytes); /* little-endian */
	r->p += bytes;
	return v;
}

/* A pointer encoded with enc; `data` is the base of DW_EH_PE_datarel (.eh_frame_hdr's start). */
static uintptr_t encoded(struct reader *r, uint8_t enc, uintptr_t data)
{
	uintptr_t at = (uintptr_t)r->p, v;
	switch (enc & 0x0f) {
	case PE_ABSPTR: case PE_UDATA8: case PE_SDATA8: v = (uintptr_t)fixed(r, 8); break;
	case PE_UDATA4: v = (uintptr_t)(uint32_t)fixed(r, 4); break;
	case PE_SDATA4: v = (uintptr_t)(int64_t)(int32_t)fixed(r, 4); break;
	case PE_UDATA2: v = (uintptr_t)(uint16_t)fixed(r, 2); break;
	case PE_SDATA2: v = (uintptr_t)(int64_t)(int16_t)fixed(r, 2); break;
	case PE_ULEB: v = (uintptr_t)uleb(r); break;
	case PE_SLEB: v = (uintptr_t)sleb(r); break;
	default: r->bad = 1; return 0;
	}
	switch (enc & 0x70) {
	case 0: break;
	case PE_PCREL: v += at; break;
	case PE_DATAREL: v += data; break;
	default: r->bad = 1; return 0;
	}
	if (enc & PE_INDIRECT)
		r->bad = 1; /* not met in .eh_frame_hdr tables or FDE addresses */
	return v;
}

/* The FDE covering pc in the .eh_frame_hdr at hdr, by its binary search table; NULL if none. */
static const uint8_t *find_fde(const uint8_t *hdr, uintptr_t pc, uintptr_t *start)
{
	struct reader r = { hdr + 4, hdr + 4 + 16, 0 }; /* two encoded values: 16 bytes at most */
	if (hdr[0] != 1 || hdr[3] != (PE_DATAREL | PE_SDATA4))
		return NULL; /* the table layout every linker writes: 4-byte entries from hdr */
	encoded(&r, hdr[1], (uintptr_t)hdr); /* .eh_frame's address: unused */
	uint64_t count = encoded(&r, hdr[2], (uintptr_t)hdr);
	if (r.bad || count == 0)
		return NULL;
	const int32_t *table = (const int32_t *)(const void *)r.p;
	size_t lo = 0, hi = (size_t)count;
	while (hi - lo > 1) { /* the last entry whose start is <= pc */
		size_t mid = (lo + hi) / 2;
		if ((uintptr_t)hdr + (intptr_t)table[2 * mid] <= pc)
			lo = mid;
		else
			hi = mid;
	}
	*start = (uintptr_t)hdr + (intptr_t)table[2 * lo];
	if (*start > pc)
		return NULL;
	return hdr + table[2 * lo + 1];
}

struct cie {
	uint64_t code_align;
	int64_t data_align;
	uint8_t fde_enc;
	int has_aug_data;
	struct reader insns; /* the initial instructions */
};

/* Parses the CIE at c (its length field); 0 when it is not one we can read. */
static int read_cie(const uint8_t *c, struct cie *out)
{
	uint32_t len;
	memcpy(&len, c, 4);
	if (len == 0 || len == 0xffffffffu)
		return 0;
	struct reader r = { c + 4, c + 4 + len, 0 };
	if (fixed(&r, 4) != 0)
		return 0; /* a CIE's id is 0 in .eh_frame */
	uint8_t version = (uint8_t)fixed(&r, 1);
	const char *aug = (const char *)r.p;
	size_t aug_len = strnlen(aug, (size_t)(r.end - r.p));
	r.p += aug_len + 1;
	out->code_align = uleb(&r);
	out->data_align = sleb(&r);
	if (version == 1)
		fixed(&r, 1);
	else
		uleb(&r);
	out->fde_enc = PE_ABSPTR;
	out->has_aug_data = aug[0] == 'z';
	if (out->has_aug_data) {
		uint64_t n = uleb(&r);
		const uint8_t *after = r.p + n;
		for (size_t i = 1; i < aug_len && !r.bad; i++) {
			if (aug[i] == 'R')
				out->fde_enc = (uint8_t)fixed(&r, 1);
			else if (aug[i] == 'P') {
				uint8_t enc = (uint8_t)fixed(&r, 1);
				encoded(&r, enc & 0x7f, 0);
			} else if (aug[i] == 'L')
				fixed(&r, 1);
			else
				return 0; /* 'S' (a signal frame) or unknown */
		}
		r.p = after;
	} else if (aug_len) {
		return 0;
	}
	out->insns = r;
	return !r.bad && r.p <= r.end;
}

struct state {
	unsigned reg;   /* the frame's address: reg + off */
	int64_t off;
	int rbp_saved;  /* the caller's rbp is at the frame's address + rbp_off; else unchanged */
	int64_t rbp_off;
	int last;       /* no return address: no caller */
};

static void set_saved(struct state *st, uint64_t reg, int64_t off)
{
	if (reg == DW_RBP) {
		st->rbp_saved = 1;
		st->rbp_off = off;
	}
}

/* Runs call frame instructions from loc until the row for target; 0 on one we cannot follow. */
static int run_insns(struct reader *r, const struct cie *cie, uintptr_t *loc, uintptr_t target,
		     struct state *st, struct state *saved, unsigned *nsaved)
{
	while (r->p < r->end && !r->bad) {
		uint8_t op = *r->p++;
		uint64_t reg;
		switch (op >> 6) {
		case 1: /* advance_loc */
			*loc += (op & 0x3f) * cie->code_align;
			if (*loc > target)
				return 1;
			continue;
		case 2: /* offset */
			set_saved(st, op & 0x3f, (int64_t)uleb(r) * cie->data_align);
			continue;
		case 3: /* restore: every register's first rule is "unchanged" on x86-64 */
			if ((op & 0x3f) == DW_RBP)
				st->rbp_saved = 0;
			continue;
		}
		switch (op) {
		case 0x00: break; /* nop */
		case 0x01: *loc = encoded(r, cie->fde_enc, 0); if (*loc > target) return 1; break;
		case 0x02: *loc += fixed(r, 1) * cie->code_align; if (*loc > target) return 1; break;
		case 0x03: *loc += fixed(r, 2) * cie->code_align; if (*loc > target) return 1; break;
		case 0x04: *loc += fixed(r, 4) * cie->code_align; if (*loc > target) return 1; break;
		case 0x05: reg = uleb(r); set_saved(st, reg, (int64_t)uleb(r) * cie->data_align); break; /* offset_extended */
		case 0x06: case 0x08: /* restore_extended, same_value */
			if (uleb(r) == DW_RBP)
				st->rbp_saved = 0;
			break;
		case 0x07: /* undefined */
			reg = uleb(r);
			if (reg == DW_RBP)
				return 0;
			if (reg == DW_RA)
				st->last = 1; /* the outermost frame: _start, a thread's clone */
			break;
		case 0x0a: /* remember_state */
			if (*nsaved == MAX_STATES)
				return 0;
			saved[(*nsaved)++] = *st;
			break;
		case 0x0b: /* restore_state */
			if (!*nsaved)
				return 0;
			*st = saved[--*nsaved];
			break;
		case 0x0c: st->reg = (unsigned)uleb(r); st->off = (int64_t)uleb(r); break; /* def_cfa */
		case 0x0d: st->reg = (unsigned)uleb(r); break;                               /* def_cfa_register */
		case 0x0e: st->off = (int64_t)uleb(r); break;                                /* def_cfa_offset */
		case 0x11: reg = uleb(r); set_saved(st, reg, sleb(r) * cie->data_align); break; /* offset_extended_sf */
		case 0x12: st->reg = (unsigned)uleb(r); st->off = sleb(r) * cie->data_align; break; /* def_cfa_sf */
		case 0x13: st->off = sleb(r) * cie->data_align; break;                      /* def_cfa_offset_sf */
		case 0x2e: uleb(r); break;                                                   /* GNU_args_size */
		default:
			/* def_cfa_expression (the frame's address is computed), register, expression and
			 * val_* (a register, perhaps the return address, kept in an unusual way), or an
			 * opcode we do not know: not followed */
			return 0;
		}
	}
	return !r->bad;
}

/* For a return address pc whose byte before no function covers: the outermost frame's rule when
 * a function starts at pc, which no call came before: makecontext's trampoline
 * (__start_context) heads a context's frames, and libunwind stops there (a call of a noreturn
 * function that ends its caller covers the byte before); else 0. */
static uint64_t not_after_a_call(const uint8_t *hdr, uintptr_t pc)
{
	uintptr_t start;
	return find_fde(hdr, pc, &start) && start == pc ? HGC_RULE_KNOWN | HGC_RULE_LAST | (uint64_t)8 << 2 : 0;
}

/* The rule at the call before return address pc, packed (see hgc_frame_rule); 0 when the frame's
 * address is neither rsp nor rbp plus a constant, or there is no unwind information. */
static uint64_t lookup_rule(uintptr_t pc)
{
	struct dl_find_object obj;
	if (_dl_find_object((void *)pc, &obj) != 0 || !obj.dlfo_eh_frame)
		return 0;
	uintptr_t target = pc - 1, start; /* the call instruction's row */
	const uint8_t *fde = find_fde(obj.dlfo_eh_frame, target, &start);
	if (!fde)
		return not_after_a_call(obj.dlfo_eh_frame, pc);
	uint32_t len, cie_off;
	memcpy(&len, fde, 4);
	memcpy(&cie_off, fde + 4, 4);
	if (len == 0 || len == 0xffffffffu || cie_off == 0)
		return 0;
	struct cie cie;
	if (!read_cie(fde + 4 - cie_off, &cie))
		return 0;
	struct reader r = { fde + 8, fde + 4 + len, 0 };
	start = encoded(&r, cie.fde_enc, 0);
	uintptr_t range = encoded(&r, cie.fde_enc & 0x0f, 0);
	if (r.bad)
		return 0;
	if (target < start || target - start >= range)
		return not_after_a_call(obj.dlfo_eh_frame, pc);
	if (cie.has_aug_data)
		r.p += uleb(&r);
	struct state st = { DW_RSP, 8, 0, 0, 0 }, saved[MAX_STATES];
	unsigned nsaved = 0;
	uintptr_t loc = start;
	struct reader init = cie.insns;
	if (!run_insns(&init, &cie, &loc, UINTPTR_MAX, &st, saved, &nsaved))
		return 0;
	loc = start;
	if (!run_insns(&r, &cie, &loc, target, &st, saved, &nsaved))
		return 0;
	if ((st.reg != DW_RSP && st.reg != DW_RBP) || st.off < 8 || st.off >= (1 << 28) || (st.off & 7) ||
	    (st.rbp_saved && (st.rbp_off >= 0 || st.rbp_off < -(1 << 20) || (st.rbp_off & 7))))
		return 0;
	return HGC_RULE_KNOWN | (st.reg == DW_RBP ? HGC_RULE_CFA_RBP : 0) | (st.last ? HGC_RULE_LAST : 0) |
	       (st.rbp_saved ? HGC_RULE_RBP_SAVED | (uint64_t)(-st.rbp_off) << 32 : 0) | (uint64_t)st.off << 2;
}

/* Rules by return address, two words each: the rule is written before the address, and read
 * between two reads of it. Mapped at the first use: short processes never make one. */
#define RULES_BITS 15
struct rule_entry {
	_Atomic uintptr_t pc;
	_Atomic uint64_t rule;
};
static struct rule_entry *_Atomic rules;

uint64_t hgc_frame_rule(uintptr_t pc)
{
	struct rule_entry *t = atomic_load_explicit(&rules, memory_order_acquire);
	if (!t) {
		struct rule_entry *fresh = hg_os_map(sizeof *t << RULES_BITS, 0), *none = NULL;
		if (!fresh)
			return lookup_rule(pc);
		if (atomic_compare_exchange_strong(&rules, &none, fresh))
			t = fresh;
		else {
			hg_os_unmap(fresh, sizeof *t << RULES_BITS);
			t = none;
		}
	}
	struct rule_entry *e = &t[(pc * 0x9e3779b97f4a7c15ull) >> (64 - RULES_BITS)];
	if (atomic_load_explicit(&e->pc, memory_order_acquire) == pc) {
		uint64_t v = atomic_load_explicit(&e->rule, memory_order_acquire);
		if (atomic_load_explicit(&e->pc, memory_order_relaxed) == pc)
			return v;
	}
	uint64_t v = lookup_rule(pc);
	atomic_store_explicit(&e->pc, 0, memory_order_relaxed);
	atomic_store_explicit(&e->rule, v, memory_order_release);
	atomic_store_explicit(&e->pc, pc, memory_order_release);
	return v;
}
