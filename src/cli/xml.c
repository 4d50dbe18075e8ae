/* xml.c — the --xml-file document: valgrind memcheck's XML output (protocol 4), so that the
 * tools that read valgrind's XML (CI plugins, IDEs) read heapguard's reports. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report.h"

/* valgrind's error kinds for heapguard's. */
static const char *memcheck_kind(const struct hg_error *e)
{
	static const struct {
		const char *kind, *memcheck;
	} KINDS[] = {
		{ "double-free", "InvalidFree" },
		{ "invalid-free", "InvalidFree" },
		{ "alloc-dealloc-mismatch", "MismatchedFree" },
		{ "uninitialized-read", "SyscallParam" },
		{ "param-overlap", "Overlap" },
		{ "allocation-size-too-big", "FishyValue" },
	};
	for (size_t i = 0; i < sizeof KINDS / sizeof KINDS[0]; i++)
		if (strcmp(e->kind, KINDS[i].kind) == 0)
			return KINDS[i].memcheck;
	/* overflows, uses after free, faults: by the access */
	return e->access && strcmp(e->access, "write") == 0 ? "InvalidWrite" : "InvalidRead";
}

/* valgrind's kinds of leak errors, by HG_LOST_* index. */
static const char *const LEAK_KINDS[HG_LOST_KINDS] = {
	"Leak_DefinitelyLost", "Leak_IndirectlyLost", "Leak_PossiblyLost", "Leak_StillReachable",
};

/* s[0..n) with XML's five special characters escaped, tab, newline and carriage return as
 * character references; what XML 1.0 cannot hold (other control bytes, bytes of no valid
 * UTF-8 sequence, U+FFFE and U+FFFF) becomes U+FFFD, so that the document stays well-formed. */
static void text_n(FILE *out, const char *s, size_t n)
{
	const unsigned char *end = (const unsigned char *)s + n;
	for (const unsigned char *p = (const unsigned char *)s; p < end; p++) {
		int len = *p >= 0x80 && end - p >= 2 ? hg_utf8_length(p) : 0;
		if (len > end - p)
			len = 0;
		if (len == 3 && p[0] == 0xef && p[1] == 0xbf && p[2] >= 0xbe) { /* U+FFFE, U+FFFF */
			fputs("\xef\xbf\xbd", out);
			p += 2;
			continue;
		}
		switch (*p) {
		case '<': fputs("&lt;", out); break;
		case '>': fputs("&gt;", out); break;
		case '&': fputs("&amp;", out); break;
		case '"': fputs("&quot;", out); break;
		case '\'': fputs("&apos;", out); break;
		case '\t': fputs("&#9;", out); break;
		case '\n': fputs("&#10;", out); break;
		case '\r': fputs("&#13;", out); break;
		default:
			if (*p < 0x20 || (*p >= 0x80 && !len)) {
				fputs("\xef\xbf\xbd", out);
			} else if (len) {
				fwrite(p, 1, (size_t)len, out);
				p += len - 1;
			} else {
				fputc(*p, out);
			}
		}
	}
}

static void text(FILE *out, const char *s)
{
	text_n(out, s, strlen(s));
}

static void element(FILE *out, const char *indent, const char *name, const char *value)
{
	fprintf(out, "%s<%s>", indent, name);
	text(out, value);
	fprintf(out, "</%s>\n", name);
}

static void stack(FILE *out, const struct hg_stack *s)
{
	fputs("  <stack>\n", out);
	for (size_t i = 0; s && i < s->count; i++) {
		const struct hg_frame *f = &s->frames[i];
		fprintf(out, "    <frame>\n      <ip>0x%llX</ip>\n", (unsigned long long)f->pc);
		if (f->module)
			element(out, "      ", "obj", f->module);
		if (f->function)
			element(out, "      ", "fn", f->function);
		if (f->file) { /* valgrind splits the path into its directory and its name */
			const char *slash = strrchr(f->file, '/');
			if (slash) {
				fputs("      <dir>", out);
				text_n(out, f->file, (size_t)(slash - f->file));
				fputs("</dir>\n", out);
			}
			element(out, "      ", "file", slash ? slash + 1 : f->file);
			if (f->line)
				fprintf(out, "      <line>%u</line>\n", f->line);
		}
		fputs("    </frame>\n", out);
	}
	fputs("  </stack>\n", out);
}

/* "Invalid write of size 10 (heap-buffer-overflow by strcpy())" as valgrind says it, or the
 * text report's headline for the other kinds ("double-free: free() of 0x..."). A fault's
 * access has no size. */
static void what(FILE *out, const struct hg_error *e, const char *kind)
{
	struct hg_text t = { 0 };
	int access = e->access && (!strcmp(e->access, "read") || !strcmp(e->access, "write"));
	char size[40] = "";
	if (e->size)
		snprintf(size, sizeof size, " of size %llu", (unsigned long long)e->size);
	if (!strncmp(kind, "Invalid", 7) && access)
		hg_text_printf(&t, "Invalid %s%s (%s", e->access, size, e->kind);
	else if (access)
		hg_text_printf(&t, "%s: %s%s", e->kind, e->access, size);
	else if (hg_is_request(e))
		hg_text_printf(&t, "%s: %s() of %llu bytes", e->kind, e->func ? e->func : "?",
			       (unsigned long long)e->size);
	else
		hg_text_printf(&t, "%s: %s() of 0x%llx", e->kind, e->func ? e->func : "?",
			       (unsigned long long)e->address);
	if (access && e->func)
		hg_text_printf(&t, " by %s()", e->func);
	if (!strncmp(kind, "Invalid", 7) && access)
		hg_text_add(&t, ")");
	if (e->detail)
		hg_text_printf(&t, ": %s", e->detail);
	element(out, "  ", "what", t.s);
	free(t.s);
}

static void error(FILE *out, const struct hg_error *e, size_t unique)
{
	const char *kind = memcheck_kind(e);
	fprintf(out, "<error>\n  <unique>0x%zx</unique>\n  <tid>%u</tid>\n", unique, e->thread);
	element(out, "  ", "kind", kind);
	what(out, e, kind);
	stack(out, e->stack);
	if (e->has_block) {
		struct hg_text t = { 0 };
		int64_t off = (int64_t)(e->address - e->block_address);
		hg_text_printf(&t, "Address 0x%llx is %lld bytes %s a block of size %llu %s",
			       (unsigned long long)e->address,
			       (long long)(off < 0 ? -off : off >= (int64_t)e->block_size ? off - (int64_t)e->block_size : off),
			       off < 0 ? "before" : off >= (int64_t)e->block_size ? "after" : "inside",
			       (unsigned long long)e->block_size, e->free_thread ? "free'd" : "alloc'd");
		element(out, "  ", "auxwhat", t.s);
		free(t.s);
		if (e->free_thread) {
			stack(out, e->free_stack);
			element(out, "  ", "auxwhat", "Block was alloc'd at");
		}
		stack(out, e->alloc_stack);
	}
	fputs("</error>\n", out);
}

static void leak(FILE *out, const struct hg_leak *l, size_t unique, size_t record, size_t records)
{
	int k = hg_lost_index(l->kind);
	k = k < 0 ? HG_LOST_DEFINITE : k; /* the library writes only the four */
	const char *kind = LEAK_KINDS[k], *words = hg_lost_words[k];
	fprintf(out, "<error>\n  <unique>0x%zx</unique>\n  <tid>1</tid>\n", unique);
	element(out, "  ", "kind", kind);
	fprintf(out, "  <xwhat>\n    <text>%llu bytes in %llu blocks are %s in loss record %zu of %zu</text>\n"
		"    <leakedbytes>%llu</leakedbytes>\n    <leakedblocks>%llu</leakedblocks>\n  </xwhat>\n",
		(unsigned long long)l->bytes, (unsigned long long)l->blocks, words, record, records,
		(unsigned long long)l->bytes, (unsigned long long)l->blocks);
	stack(out, l->stack);
	fputs("</error>\n", out);
}

/* The protocol's status: the state, and the time since the start as DD:HH:MM:SS.mmm. */
static void status(FILE *out, const char *state, uint64_t ms)
{
	uint64_t s = ms / 1000;
	fprintf(out, "<status>\n  <state>%s</state>\n  <time>%02llu:%02llu:%02llu:%02llu.%03llu </time>\n</status>\n\n",
		state, (unsigned long long)(s / 86400), (unsigned long long)(s / 3600 % 24),
		(unsigned long long)(s / 60 % 60), (unsigned long long)(s % 60), (unsigned long long)(ms % 1000));
}

/* memcheck's suppcounts entry for a suppression that hid something */
static void supp_pair(const char *name, const char *where, uint64_t count, void *arg)
{
	(void)where;
	fprintf(arg, "  <pair>\n    <count>%llu</count>\n", (unsigned long long)count);
	element(arg, "    ", "name", name);
	fputs("  </pair>\n", arg);
}

int hg_write_xml(const char *path, const struct hg_report *rep, char *const argv[],
		 const struct hg_exit *ex)
{
	FILE *out = fopen(path, "w");
	if (out == NULL) {
		fprintf(stderr, "heapguard: cannot write %s: %s\n", path, strerror(errno));
		return -1;
	}
	fputs("<?xml version=\"1.0\"?>\n\n<valgrindoutput>\n\n<protocolversion>4</protocolversion>\n"
	      "<protocoltool>memcheck</protocoltool>\n\n<preamble>\n", out);
	element(out, "  ", "line", "heapguard, a heap error detector, in memcheck's XML (protocol 4)");
	fprintf(out, "</preamble>\n\n<pid>%d</pid>\n<ppid>%d</ppid>\n<tool>memcheck</tool>\n\n"
		"<args>\n  <vargv>\n    <exe>heapguard</exe>\n  </vargv>\n  <argv>\n", rep->main_pid,
		(int)getpid());
	for (int i = 0; argv[i]; i++)
		element(out, "    ", i ? "arg" : "exe", argv[i]);
	fputs("  </argv>\n</args>\n\n", out);
	status(out, "RUNNING", 0);
	size_t unique = 0, shown = 0, records = 0;
	struct hg_text counts = { 0 };
	hg_text_add(&counts, "");
	for (size_t i = 0; i < rep->errors.count; i++) {
		const struct hg_error *e = rep->errors.items[i];
		if (e->suppressed_by)
			continue;
		error(out, e, unique);
		hg_text_printf(&counts, "  <pair>\n    <count>%llu</count>\n    <unique>0x%zx</unique>\n  </pair>\n",
			       (unsigned long long)e->count, unique);
		unique++;
	}
	fputc('\n', out);
	status(out, "FINISHED", ex->ms);
	for (size_t i = 0; i < rep->leaks.count; i++) {
		const struct hg_leak *l = rep->leaks.items[i];
		records += !l->suppressed_by && !l->superseded;
	}
	for (size_t i = 0; i < rep->leaks.count; i++) {
		const struct hg_leak *l = rep->leaks.items[i];
		if (!l->suppressed_by && !l->superseded)
			leak(out, l, unique++, ++shown, records);
	}
	fprintf(out, "\n<errorcounts>\n%s</errorcounts>\n\n<suppcounts>\n", counts.s);
	hg_suppressions_used(rep, supp_pair, out);
	fputs("</suppcounts>\n\n</valgrindoutput>\n", out);
	free(counts.s);
	if (fclose(out) != 0) {
		fprintf(stderr, "heapguard: cannot write %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}
