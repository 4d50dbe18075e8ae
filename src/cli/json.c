/* json.c — the --json document (README, "Report format"): the run, its errors and leaks with
 * symbolized frames, and the summary. Unknown parts of a frame are left out. */
#include <errno.h>
#include <string.h>

#include "report.h"

#ifndef HG_VERSION
#error "HG_VERSION comes from the Makefile (-DHG_VERSION=...)"
#endif

/* Paths and names are bytes, not always UTF-8: a byte that is not part of a valid sequence is
 * written as the code point of the same value, so that the document stays valid JSON. */
void hg_json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		int n = *p >= 0x80 ? hg_utf8_length(p) : 1;
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", out);
		else if (*p < 0x20 || *p == 0x7f || n == 0)
			fprintf(out, "\\u%04x", *p);
		else {
			fwrite(p, 1, (size_t)n, out);
			p += n - 1;
		}
	}
	fputc('"', out);
}

static void key(FILE *out, const char *k)
{
	hg_json_string(out, k);
	fputc(':', out);
}

static void frames(FILE *out, const struct hg_stack *s)
{
	fputc('[', out);
	for (size_t i = 0; s && i < s->count; i++) {
		const struct hg_frame *f = &s->frames[i];
		fprintf(out, "%s{\"pc\":\"0x%llx\"", i ? "," : "", (unsigned long long)f->pc);
		if (f->module) {
			fputc(',', out);
			key(out, "module");
			hg_json_string(out, f->module);
		}
		if (f->function) {
			fputc(',', out);
			key(out, "function");
			hg_json_string(out, f->function);
		}
		if (f->file) {
			fputc(',', out);
			key(out, "file");
			hg_json_string(out, f->file);
		}
		if (f->line)
			fprintf(out, ",\"line\":%u", f->line);
		fputc('}', out);
	}
	fputc(']', out);
}

static void error_object(FILE *out, const struct hg_error *e)
{
	fputs("{\"kind\":", out);
	hg_json_string(out, e->kind);
	if (e->access) {
		fputs(",\"access\":", out);
		hg_json_string(out, e->access);
	}
	if (!hg_is_request(e)) /* a request concerns a size, not an address */
		fprintf(out, ",\"address\":\"0x%llx\"", (unsigned long long)e->address);
	if (e->size) /* 0: a free, or a fault of unknown width */
		fprintf(out, ",\"size\":%llu", (unsigned long long)e->size);
	fprintf(out, ",\"thread\":%u,\"count\":%llu,\"pid\":%d", e->thread, (unsigned long long)e->count,
		e->pid);
	if (e->detail) {
		fputs(",\"detail\":", out);
		hg_json_string(out, e->detail);
	}
	fputs(",\"stack\":", out);
	frames(out, e->stack);
	if (e->has_block) {
		/* offset: from the block's start, negative before it */
		fprintf(out, ",\"block\":{\"address\":\"0x%llx\",\"size\":%llu,\"offset\":%lld",
			(unsigned long long)e->block_address, (unsigned long long)e->block_size,
			(long long)(e->address - e->block_address));
		fputs(",\"alloc_stack\":", out);
		frames(out, e->alloc_stack);
		if (e->free_thread) {
			fputs(",\"free_stack\":", out);
			frames(out, e->free_stack);
		}
		fputc('}', out);
	}
	fputc('}', out);
}

static void summary(FILE *out, const struct hg_report *rep)
{
	struct hg_totals t;
	hg_report_totals(rep, &t);
	fprintf(out, "{\"errors\":%llu,\"contexts\":%llu", (unsigned long long)t.errors,
		(unsigned long long)t.contexts);
	if (t.main) {
		const uint64_t *h = t.main->heap;
		fprintf(out, ",\"allocs\":%llu,\"frees\":%llu,\"bytes_allocated\":%llu,"
			"\"in_use_at_exit\":{\"bytes\":%llu,\"blocks\":%llu}",
			(unsigned long long)h[HG_HEAP_ALLOCS], (unsigned long long)h[HG_HEAP_FREES],
			(unsigned long long)h[HG_HEAP_BYTES], (unsigned long long)h[HG_HEAP_IN_USE_BYTES],
			(unsigned long long)h[HG_HEAP_IN_USE_BLOCKS]);
	}
	fputc('}', out);
}

/* The members of a list of struct hg_unchecked, with why each ran unchecked (with_reason). */
static void unchecked_array(FILE *out, const struct hg_vec *list, int with_reason)
{
	for (size_t i = 0; i < list->count; i++) {
		const struct hg_unchecked *u = list->items[i];
		fprintf(out, "%s{\"pid\":%d,\"program\":", i ? "," : "", u->pid);
		hg_json_string(out, u->program);
		if (u->executed_by) {
			fputs(",\"executed_by\":", out);
			hg_json_string(out, u->executed_by);
		}
		if (with_reason) {
			fputs(",\"reason\":", out);
			hg_json_string(out, u->reason);
		}
		fputc('}', out);
	}
}

int hg_write_json(const char *path, const struct hg_report *rep, char *const argv[],
		  const struct hg_exit *ex)
{
	FILE *out = fopen(path, "w");
	if (out == NULL) {
		fprintf(stderr, "heapguard: cannot write %s: %s\n", path, strerror(errno));
		return -1;
	}
	fputs("{\"tool\":\"heapguard\",\"version\":\"" HG_VERSION "\",\"command\":[", out);
	for (int i = 0; argv[i]; i++) {
		if (i)
			fputc(',', out);
		hg_json_string(out, argv[i]);
	}
	if (ex->signal)
		fprintf(out, "],\n\"exit\":{\"signal\":%d},\n", ex->signal);
	else
		fprintf(out, "],\n\"exit\":{\"code\":%d},\n", ex->code);
	fprintf(out, "\"checked\":%s,\n\"not_checked\":[", rep->unchecked ? "false" : "true");
	unchecked_array(out, &rep->not_checked, 1);
	fputs("],\n\"checked_elsewhere\":[", out);
	unchecked_array(out, &rep->elsewhere, 0);
	fputs("],\n\"still_running\":[", out);
	for (size_t i = 0; i < rep->running.count; i++) {
		const struct hg_process *p = rep->running.items[i];
		fprintf(out, "%s{\"pid\":%d,\"program\":", i ? "," : "", p->pid);
		hg_json_string(out, p->exec_to ? p->exec_to : p->exe ? p->exe : "");
		fputc('}', out);
	}
	fputs("],\n\"errors\":[", out);
	int first = 1;
	for (size_t i = 0; i < rep->errors.count; i++) {
		const struct hg_error *e = rep->errors.items[i];
		if (e->suppressed_by)
			continue;
		fputs(first ? "\n" : ",\n", out);
		first = 0;
		error_object(out, e);
	}
	fputs("],\n\"leaks\":[", out);
	first = 1;
	for (size_t i = 0; i < rep->leaks.count; i++) {
		const struct hg_leak *l = rep->leaks.items[i];
		if (l->suppressed_by || l->superseded)
			continue;
		fputs(first ? "\n{\"kind\":" : ",\n{\"kind\":", out);
		first = 0;
		hg_json_string(out, l->kind);
		fprintf(out, ",\"bytes\":%llu,\"blocks\":%llu,\"pid\":%d,\"stack\":",
			(unsigned long long)l->bytes, (unsigned long long)l->blocks, l->pid);
		frames(out, l->stack);
		fputc('}', out);
	}
	fputs("],\n\"summary\":", out);
	summary(out, rep);
	fputs("}\n", out);
	if (fclose(out) != 0) {
		fprintf(stderr, "heapguard: cannot write %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}
