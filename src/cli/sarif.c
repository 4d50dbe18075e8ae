/* sarif.c — the --sarif log: SARIF 2.1.0, one result per error context or leak group, located
 * at its first frame with a source line, with its stacks, for code-scanning tools. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report.h"

#define SARIF_SCHEMA "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
#define SRCROOT "SRCROOT" /* base of relative URIs: the directory heapguard ran in */

struct rule {
	const char *text, *level;
};

/* Indexed as hg_kind_ids: ruleIndex is the position here. */
static const struct rule RULES[] = {
	{ "Access outside the bounds of a heap block", "error" },
	{ "Access to a heap block after it was freed", "error" },
	{ "A heap block freed twice", "error" },
	{ "Free of a pointer that is not the start of a heap block", "error" },
	{ "Block released by a function that does not match its allocation", "error" },
	{ "Use of heap memory that was never written", "error" },
	{ "Access to memory that is neither heap nor mapped", "error" },
	{ "An allocation request larger than any heap can serve", "error" },
	{ "A copy whose source and destination overlap", "error" },
	{ "Heap memory leaked: no pointer to it is left", "error" },
	{ "Heap memory leaked: reachable only from leaked blocks", "error" },
	{ "Heap memory only reachable through interior pointers", "warning" },
	{ "Heap memory not freed at exit but still pointed to", "note" },
};
#define RULE_COUNT (sizeof RULES / sizeof RULES[0])
_Static_assert(RULE_COUNT == HG_KINDS, "a rule per kind");

static char cwd[PATH_MAX];

static int rule_index(const char *kind)
{
	for (size_t i = 0; i < RULE_COUNT; i++)
		if (strcmp(hg_kind_ids[i], kind) == 0)
			return (int)i;
	return -1;
}

/* A URI path: unreserved characters and '/' as they are, anything else %XX (RFC 3986). */
static void uri_path(FILE *out, const char *path)
{
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    strchr("-._~/", *p))
			fputc(*p, out);
		else
			fprintf(out, "%%%02X", *p);
	}
}

/* A source file below the working directory is given relative to SRCROOT, which code-scanning
 * tools map to the checkout, and so is a relative name (debug information without its
 * compilation directory); any other as an absolute file: URI. */
static void artifact_location(FILE *out, const char *file)
{
	size_t n = strlen(cwd);
	fputs("\"artifactLocation\":{\"uri\":\"", out);
	if (file[0] != '/' || (n > 1 && strncmp(file, cwd, n) == 0 && file[n] == '/')) {
		const char *rel = file[0] == '/' ? file + n + 1 : file;
		while (rel[0] == '.' && rel[1] == '/')
			rel += 2;
		uri_path(out, rel);
		fputs("\",\"uriBaseId\":\"" SRCROOT "\"}", out);
	} else {
		fputs("file://", out);
		uri_path(out, file);
		fputs("\"}", out);
	}
}

/* A location object for frame f: its source line (when known), its address and function. */
static void location(FILE *out, const struct hg_frame *f, const char *message)
{
	fputs("{", out);
	if (message) {
		fputs("\"message\":{\"text\":", out);
		hg_json_string(out, message);
		fputs("},", out);
	}
	fputs("\"physicalLocation\":{", out);
	if (f->file) {
		artifact_location(out, f->file);
		if (f->line)
			fprintf(out, ",\"region\":{\"startLine\":%u}", f->line);
		fputc(',', out);
	}
	fprintf(out, "\"address\":{\"absoluteAddress\":%llu}}", (unsigned long long)f->pc);
	if (f->function) {
		fputs(",\"logicalLocations\":[{\"fullyQualifiedName\":", out);
		hg_json_string(out, f->function);
		fputs(",\"kind\":\"function\"}]", out);
	}
	fputc('}', out);
}

/* The innermost frame with a source line: where a reader should look first. */
static const struct hg_frame *source_frame(const struct hg_stack *s)
{
	for (size_t i = 0; s && i < s->count; i++)
		if (s->frames[i].file && s->frames[i].line)
			return &s->frames[i];
	return s && s->count ? &s->frames[0] : NULL;
}

static void stack_object(FILE *out, const struct hg_stack *s, const char *message)
{
	fputs("{\"message\":{\"text\":", out);
	hg_json_string(out, message);
	fputs("},\"frames\":[", out);
	for (size_t i = 0; s && i < s->count; i++) {
		fputs(i ? ",{\"location\":" : "{\"location\":", out);
		location(out, &s->frames[i], NULL);
		if (s->frames[i].module) {
			fputs(",\"module\":", out);
			hg_json_string(out, s->frames[i].module);
		}
		fputc('}', out);
	}
	fputs("]}", out);
}

/* What lets code-scanning tools follow one result from run to run: its kind and its stack's
 * functions down to main, by linkage name (a module's base name where none is known), and
 * for results alike so far, how many came before it. No lines, paths or offsets: hashed
 * whole, they changed with every edit above the line, every build directory and every libc
 * update. */
static struct hg_map prints_seen; /* fingerprint -> results with it so far */

static uint64_t fingerprint(const char *kind, const struct hg_stack *s)
{
	struct hg_text t = { 0 };
	hg_text_add(&t, kind);
	for (size_t i = 0; s && i < s->count; i++) {
		const struct hg_frame *f = &s->frames[i];
		const char *name = f->linkage ? f->linkage : f->function, *slash;
		if (name == NULL && f->module)
			name = (slash = strrchr(f->module, '/')) ? slash + 1 : f->module;
		hg_text_printf(&t, "\n%s", name ? name : "?");
		if (f->function && strcmp(f->function, "main") == 0)
			break;
	}
	uint64_t h = hg_hash_bytes(t.s, t.len) | 1, before = (uintptr_t)hg_map_get(&prints_seen, h);
	hg_map_put(&prints_seen, h, (void *)(uintptr_t)(before + 1));
	if (before) {
		uint64_t pair[2] = { h, before };
		h = hg_hash_bytes(pair, sizeof pair);
	}
	free(t.s);
	return h;
}

/* One result. stacks[0] locates it; the others are related locations (free, allocation). */
static void result(FILE *out, int *first, const char *kind, const char *message, uint64_t count,
		   int pid, const struct hg_stack *const stacks[3], const char *const names[3])
{
	int rule = rule_index(kind);
	fputs(*first ? "\n{" : ",\n{", out);
	*first = 0;
	fputs("\"ruleId\":", out);
	hg_json_string(out, kind);
	if (rule >= 0)
		fprintf(out, ",\"ruleIndex\":%d,\"level\":\"%s\"", rule, RULES[rule].level);
	fputs(",\"message\":{\"text\":", out);
	hg_json_string(out, message);
	fputs("},\"locations\":[", out);
	const struct hg_frame *where = source_frame(stacks[0]);
	if (where)
		location(out, where, NULL);
	fputs("],\"relatedLocations\":[", out);
	for (int i = 1, n = 0; i < 3; i++) {
		const struct hg_frame *f = source_frame(stacks[i]);
		if (f == NULL)
			continue;
		fprintf(out, "%s", n++ ? "," : "");
		location(out, f, names[i]);
	}
	fputs("],\"stacks\":[", out);
	for (int i = 0, n = 0; i < 3; i++)
		if (stacks[i]) {
			fprintf(out, "%s", n++ ? "," : "");
			stack_object(out, stacks[i], names[i]);
		}
	fprintf(out, "],\"partialFingerprints\":{\"heapguardContext/v2\":\"%016llx\"}",
		(unsigned long long)fingerprint(kind, stacks[0]));
	fprintf(out, ",\"properties\":{\"count\":%llu,\"pid\":%d}}", (unsigned long long)count, pid);
}

static void error_result(FILE *out, int *first, const struct hg_error *e)
{
	struct hg_text msg = { 0 };
	hg_text_printf(&msg, "%s", e->kind);
	/* as the text report's headline: no size where a fault does not tell it */
	if (e->access && (!strcmp(e->access, "read") || !strcmp(e->access, "write"))) {
		hg_text_printf(&msg, ": %s", e->access);
		if (e->size)
			hg_text_printf(&msg, " of size %llu", (unsigned long long)e->size);
		hg_text_printf(&msg, " at 0x%llx", (unsigned long long)e->address);
	} else if (hg_is_request(e)) {
		hg_text_printf(&msg, ": %s() of %llu bytes", e->func ? e->func : "?",
			       (unsigned long long)e->size);
	} else if (!e->func) { /* a fault whose direction the kernel does not tell */
		hg_text_printf(&msg, ": read or write at 0x%llx", (unsigned long long)e->address);
	} else {
		hg_text_printf(&msg, ": %s() of 0x%llx", e->func, (unsigned long long)e->address);
	}
	if (e->has_block)
		hg_text_printf(&msg, ", %lld bytes from the start of a block of size %llu",
			       (long long)(e->address - e->block_address),
			       (unsigned long long)e->block_size);
	if (e->detail)
		hg_text_printf(&msg, " (%s)", e->detail);
	const struct hg_stack *stacks[3] = { e->stack, e->has_block && e->free_thread ? e->free_stack : NULL,
					     e->has_block ? e->alloc_stack : NULL };
	const char *const names[3] = { "where it happened", "freed here", "allocated here" };
	result(out, first, e->kind, msg.s, e->count, e->pid, stacks, names);
	free(msg.s);
}

static void leak_result(FILE *out, int *first, const struct hg_leak *l)
{
	struct hg_text msg = { 0 };
	hg_text_printf(&msg, "%s: %llu bytes in %llu blocks", l->kind, (unsigned long long)l->bytes,
		       (unsigned long long)l->blocks);
	const struct hg_stack *stacks[3] = { l->stack, NULL, NULL };
	const char *const names[3] = { "allocated here", NULL, NULL };
	result(out, first, l->kind, msg.s, 1, l->pid, stacks, names);
	free(msg.s);
}

static void driver(FILE *out)
{
	fputs("{\"name\":\"heapguard\",\"version\":\"" HG_VERSION "\",\"rules\":[", out);
	for (size_t i = 0; i < RULE_COUNT; i++) {
		fprintf(out, "%s{\"id\":\"%s\",\"shortDescription\":{\"text\":", i ? "," : "", hg_kind_ids[i]);
		hg_json_string(out, RULES[i].text);
		fprintf(out, "},\"defaultConfiguration\":{\"level\":\"%s\"}}", RULES[i].level);
	}
	fputs("]}", out);
}

static void invocation(FILE *out, char *const argv[], const struct hg_exit *ex, const struct hg_report *rep)
{
	fputs("[{\"arguments\":[", out);
	for (int i = 0; argv[i]; i++) {
		if (i)
			fputc(',', out);
		hg_json_string(out, argv[i]);
	}
	/* Successful: heapguard did its job, whatever the program did; not when the library
	 * never ran in the program. A child that ran unchecked is a warning; one that another
	 * heapguard command reports, a note. */
	fprintf(out, "],\"executionSuccessful\":%s,", rep->unchecked ? "false" : "true");
	if (rep->not_checked.count || rep->elsewhere.count) {
		fputs("\"toolExecutionNotifications\":[", out);
		for (size_t i = 0; i < rep->not_checked.count + rep->elsewhere.count; i++) {
			int unchecked = i < rep->not_checked.count;
			const struct hg_unchecked *u = unchecked ? rep->not_checked.items[i] :
								   rep->elsewhere.items[i - rep->not_checked.count];
			fprintf(out, "%s{\"level\":\"%s\",\"message\":{\"text\":", i ? "," : "",
				!unchecked ? "note" : u->text == rep->unchecked ? "error" : "warning");
			hg_json_string(out, u->text);
			fputs("}}", out);
		}
		fputs("],", out);
	}
	if (ex->signal)
		fprintf(out, "\"exitSignalNumber\":%d}]", ex->signal);
	else
		fprintf(out, "\"exitCode\":%d}]", ex->code);
}

int hg_write_sarif(const char *path, const struct hg_report *rep, char *const argv[],
		   const struct hg_exit *ex)
{
	FILE *out = fopen(path, "w");
	if (out == NULL) {
		fprintf(stderr, "heapguard: cannot write %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (getcwd(cwd, sizeof cwd) == NULL)
		cwd[0] = '\0';
	fputs("{\"$schema\":\"" SARIF_SCHEMA "\",\"version\":\"2.1.0\",\"runs\":[{\"tool\":{\"driver\":", out);
	driver(out);
	fputs("},\"invocations\":", out);
	invocation(out, argv, ex, rep);
	if (cwd[0]) { /* a directory's URI ends in '/': the root's is file:/// */
		fputs(",\"originalUriBaseIds\":{\"" SRCROOT "\":{\"uri\":\"file://", out);
		uri_path(out, cwd);
		fputs(strcmp(cwd, "/") == 0 ? "\"}}" : "/\"}}", out);
	}
	fputs(",\"results\":[", out);
	int first = 1;
	for (size_t i = 0; i < rep->errors.count; i++) {
		const struct hg_error *e = rep->errors.items[i];
		if (!e->suppressed_by)
			error_result(out, &first, e);
	}
	for (size_t i = 0; i < rep->leaks.count; i++) {
		const struct hg_leak *l = rep->leaks.items[i];
		if (!l->suppressed_by && !l->superseded)
			leak_result(out, &first, l);
	}
	fputs("]}]}\n", out);
	if (fclose(out) != 0) {
		fprintf(stderr, "heapguard: cannot write %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}
