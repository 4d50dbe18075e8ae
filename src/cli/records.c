/* records.c — reads the record stream of check/records.h into the report: per-process module
 * and stack tables, symbolized and interned stacks, error contexts merged across processes,
 * leak groups and summaries, each new item queued as an event for the live text report. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report.h"

#define MAX_FIELDS 80      /* an S record: type, pid, id and up to 64 frames */
#define MAX_STACK_FRAMES 512 /* frames of one stack once inlined calls are expanded */
#define READ_BYTES 65536

const char *const hg_kind_ids[HG_KINDS] = {
	"heap-buffer-overflow", "heap-use-after-free", "double-free", "invalid-free", "alloc-dealloc-mismatch",
	"uninitialized-read", "invalid-access", "allocation-size-too-big", "param-overlap",
	"definitely-lost", "indirectly-lost", "possibly-lost", "still-reachable",
};
const char *const *const hg_lost_ids = hg_kind_ids + HG_ERROR_KINDS;
const char *const hg_lost_words[HG_LOST_KINDS] = {
	"definitely lost", "indirectly lost", "possibly lost", "still reachable",
};

/* ---------------- stacks ---------------- */

static struct hg_map stacks_by_key; /* interned key -> struct hg_stack */

/* A name or path with its control characters as \xNN, as the library writes them: a newline
 * in a path would end the report's line. */
void hg_frame_text(const struct hg_frame *f, struct hg_text *out)
{
	hg_text_add_name(out, f->function ? f->function : "??");
	hg_text_add(out, " ");
	if (f->file != NULL) {
		hg_text_add_name(out, f->file);
		hg_text_printf(out, ":%u", f->line);
	} else if (f->module != NULL) {
		hg_text_add(out, "(");
		hg_text_add_name(out, f->module);
		hg_text_printf(out, "+0x%llx)", (unsigned long long)f->offset);
	} else
		hg_text_printf(out, "(0x%llx)", (unsigned long long)f->pc);
}

const struct hg_stack *hg_stack_intern(const struct hg_frame *frames, size_t count)
{
	struct hg_text text = { 0 }, id = { 0 };
	hg_text_add(&text, "");
	hg_text_add(&id, "");
	/* A stack is its frames' text and their places in their modules: two calls on one
	 * source line (malloc then strcpy, strcpy then puts) are two stacks, as in valgrind; by
	 * the text alone the second error's context merged into the first's and went unshown,
	 * and the first stack's pcs stood for both. Module offsets, not pcs, so that one error
	 * in processes loaded at different addresses still makes one context. */
	for (size_t i = 0; i < count; i++) {
		hg_frame_text(&frames[i], &text);
		hg_text_add(&text, "\n");
		if (frames[i].module)
			hg_text_printf(&id, "%s+0x%llx\n", frames[i].module, (unsigned long long)frames[i].offset);
		else
			hg_text_printf(&id, "0x%llx\n", (unsigned long long)frames[i].pc);
	}
	hg_text_add(&id, text.s);
	const char *k = hg_intern(id.s);
	free(id.s);
	struct hg_stack *s = hg_map_get(&stacks_by_key, (uintptr_t)k);
	if (s == NULL) {
		s = hg_xmalloc(sizeof *s);
		s->count = count;
		s->frames = hg_xmalloc(count * sizeof *frames);
		memcpy(s->frames, frames, count * sizeof *frames);
		hg_map_put(&stacks_by_key, (uintptr_t)k, s);
	}
	free(text.s);
	return s;
}

/* ---------------- fields ---------------- */

struct fields {
	char *f[MAX_FIELDS];
	int n;
	int bad; /* a field was missing or malformed */
};

static int split(char *line, struct fields *fs)
{
	fs->n = 0;
	fs->bad = 0;
	for (char *save = NULL, *tok = strtok_r(line, " ", &save); tok;
	     tok = strtok_r(NULL, " ", &save)) {
		if (fs->n == MAX_FIELDS)
			return -1;
		fs->f[fs->n++] = tok;
	}
	return 0;
}

static uint64_t num(struct fields *fs, int i)
{
	if (i >= fs->n) {
		fs->bad = 1;
		return 0;
	}
	char *end;
	errno = 0;
	uint64_t v = strtoull(fs->f[i], &end, 0); /* base 0: decimal, or 0x-hex addresses */
	if (errno || *end || end == fs->f[i])
		fs->bad = 1;
	return v;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
		: c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* A string field: "-" is absent, %XX an escaped byte (records.h). Returns it interned. */
static const char *str(struct fields *fs, int i)
{
	if (i >= fs->n) {
		fs->bad = 1;
		return NULL;
	}
	char *s = fs->f[i], *w = s;
	if (strcmp(s, "-") == 0)
		return NULL;
	for (char *r = s; *r; r++) {
		if (*r == '%' && hexval(r[1]) >= 0 && hexval(r[2]) >= 0) {
			*w++ = (char)(hexval(r[1]) * 16 + hexval(r[2]));
			r += 2;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
	return hg_intern(s);
}

/* ---------------- processes ---------------- */

static struct hg_process *new_image(struct hg_report *rep, int pid, int ppid, const char *exe)
{
	struct hg_process *p = hg_xcalloc(1, sizeof *p);
	p->pid = pid;
	p->ppid = ppid;
	p->exe = exe;
	hg_vec_push(&rep->processes, p);
	hg_map_put(&rep->live, (uint64_t)pid + 1, p);
	return p;
}

/* The current image of pid; one is made up when its P record is missing. */
static struct hg_process *process(struct hg_report *rep, int pid)
{
	struct hg_process *p = hg_map_get(&rep->live, (uint64_t)pid + 1);
	return p ? p : new_image(rep, pid, 0, NULL);
}

static void add_event(struct hg_report *rep, enum hg_event_type type, void *what)
{
	struct hg_event *ev = hg_xmalloc(sizeof *ev);
	ev->type = type;
	ev->what = what;
	hg_vec_push(&rep->events, ev);
}

/* ---------------- records ---------------- */

/* S pid id frame...: frame = pc:module-index:offset */
static void read_stack(struct hg_process *p, struct fields *fs)
{
	uint64_t id = num(fs, 2);
	static struct hg_frame frames[MAX_STACK_FRAMES];
	size_t n = 0;
	for (int i = 3; i < fs->n && n < MAX_STACK_FRAMES; i++) {
		char *colon1 = strchr(fs->f[i], ':'), *colon2 = colon1 ? strchr(colon1 + 1, ':') : NULL;
		if (colon2 == NULL) {
			fs->bad = 1;
			return;
		}
		*colon1 = *colon2 = '\0';
		uint64_t pc = strtoull(fs->f[i], NULL, 16), off = strtoull(colon2 + 1, NULL, 16);
		long index = strtol(colon1 + 1, NULL, 10);
		const char *module = index >= 0 ? hg_map_get(&p->modules, (uint64_t)index + 1) : NULL;
		if (module == NULL) /* in no module: the pc is all there is */
			off = pc;
		n += hg_symbolize(module, pc, off, 0, frames + n, MAX_STACK_FRAMES - n);
	}
	if (!fs->bad && id != 0)
		hg_map_put(&p->stacks, id, (void *)hg_stack_intern(frames, n));
}

static const struct hg_stack *stack_of(struct hg_process *p, uint64_t id)
{
	return id ? hg_map_get(&p->stacks, id) : NULL;
}

struct context_node {
	struct hg_error *e;
	uint64_t where; /* the place, or the address of an error without a stack */
	struct context_node *next;
};

/* A context is (kind, access, symbolized stack, place); without a stack, the address stands
 * for the place (as in the library). Kinds, accesses and stacks are interned, so their
 * addresses identify them. */
static struct hg_error **find_context(struct hg_report *rep, const struct hg_error *e,
				      const struct hg_stack *place)
{
	uint64_t where = e->stack ? (uintptr_t)place : e->address;
	uint64_t key[4] = { (uintptr_t)e->kind, (uintptr_t)e->access, (uintptr_t)e->stack, where };
	uint64_t h = hg_hash_bytes(key, sizeof key) | 1;
	struct context_node *head = hg_map_get(&rep->contexts, h);
	for (struct context_node *c = head; c; c = c->next)
		if (c->e->kind == e->kind && c->e->access == e->access && c->e->stack == e->stack &&
		    c->where == where)
			return &c->e;
	struct context_node *c = hg_xcalloc(1, sizeof *c);
	c->where = where;
	c->next = head;
	hg_map_put(&rep->contexts, h, c);
	return &c->e;
}

static uint64_t process_context_key(const char *kind, const char *access, uint64_t stack_id,
				    uint64_t place_id)
{
	uint64_t key[4] = { (uintptr_t)kind, (uintptr_t)access, stack_id, place_id };
	return hg_hash_bytes(key, sizeof key) | 1;
}

/* A fault's stack: its first frame is the faulting instruction, not a return address, and
 * looked up at its own address (the line before it was shown: the previous statement). Its
 * frames, inlined calls included, are those of the first pc. */
static const struct hg_stack *fault_stack(const struct hg_stack *s)
{
	if (s == NULL || s->count == 0 || s->frames[0].module == NULL)
		return s;
	static struct hg_frame frames[MAX_STACK_FRAMES];
	const struct hg_frame *f = &s->frames[0];
	size_t first = 1;
	while (first < s->count && s->frames[first].pc == f->pc)
		first++;
	size_t n = hg_symbolize(f->module, f->pc, f->offset, 1, frames, MAX_STACK_FRAMES);
	for (size_t i = first; i < s->count && n < MAX_STACK_FRAMES; i++)
		frames[n++] = s->frames[i];
	return hg_stack_intern(frames, n);
}

/* E pid kind access func addr size thread stack place detail has-block
 *   [user bytes alloc-thread alloc-stack free-thread free-stack]
 * has-block: 1 when the block's fields follow, plus 2 for a fault's stack. */
static void read_error(struct hg_report *rep, struct hg_process *p, struct fields *fs)
{
	uint64_t has = num(fs, 11);
	struct hg_error e = {
		.pid = p->pid, .kind = str(fs, 2), .access = str(fs, 3), .func = str(fs, 4),
		.address = num(fs, 5), .size = num(fs, 6), .thread = (unsigned)num(fs, 7),
		.detail = str(fs, 10), .has_block = (int)(has & 1), .count = 1,
	};
	uint64_t stack_id = num(fs, 8), place_id = num(fs, 9);
	e.stack = stack_of(p, stack_id);
	if (has & 2)
		e.stack = fault_stack(e.stack);
	if (e.has_block) {
		e.block_address = num(fs, 12);
		e.block_size = num(fs, 13);
		e.alloc_thread = (unsigned)num(fs, 14);
		e.alloc_stack = stack_of(p, num(fs, 15));
		e.free_thread = (unsigned)num(fs, 16);
		e.free_stack = stack_of(p, num(fs, 17));
	}
	if (fs->bad || e.kind == NULL)
		return;
	struct hg_error **slot = find_context(rep, &e, stack_of(p, place_id));
	if (*slot != NULL) { /* the same error from the same place, in another process */
		(*slot)->count++;
	} else {
		*slot = hg_xmalloc(sizeof e);
		**slot = e;
		(*slot)->suppressed_by = hg_suppression_match(e.kind, e.stack, e.func);
		hg_vec_push(&rep->errors, *slot);
		if (!(*slot)->suppressed_by)
			add_event(rep, HG_EV_ERROR, *slot);
	}
	hg_map_put(&p->contexts, process_context_key(e.kind, e.access, stack_id, place_id), *slot);
}

/* C pid kind access stack place count: the context's total in this process, its E record
 * counting 1. */
static void read_count(struct hg_process *p, struct fields *fs)
{
	const char *kind = str(fs, 2), *access = str(fs, 3);
	uint64_t stack_id = num(fs, 4), place_id = num(fs, 5), count = num(fs, 6);
	struct hg_error *e = hg_map_get(&p->contexts, process_context_key(kind, access, stack_id, place_id));
	if (!fs->bad && e != NULL && count > 1)
		e->count += count - 1;
}

int hg_lost_index(const char *id)
{
	for (int i = 0; i < HG_LOST_KINDS; i++)
		if (id && strcmp(id, hg_lost_ids[i]) == 0)
			return i;
	return -1;
}

/* L pid kind bytes blocks stack call */
static void read_leak(struct hg_report *rep, struct hg_process *p, struct fields *fs)
{
	struct hg_leak l = { .pid = p->pid, .kind = str(fs, 2), .bytes = num(fs, 3),
			     .blocks = num(fs, 4), .call = str(fs, 6) };
	l.stack = stack_of(p, num(fs, 5));
	if (fs->bad || l.kind == NULL)
		return;
	struct hg_leak *leak = hg_xmalloc(sizeof l);
	*leak = l;
	leak->suppressed_by = hg_suppression_match(l.kind, l.stack, l.call);
	hg_vec_push(&rep->leaks, leak);
	int k = hg_lost_index(l.kind);
	if (leak->suppressed_by && k >= 0) {
		p->suppressed_lost[k][0] += l.bytes;
		p->suppressed_lost[k][1] += l.blocks;
	} else if (!leak->suppressed_by) {
		if (k >= 0) {
			p->shown_lost[k][0] += l.bytes;
			p->shown_lost[k][1] += l.blocks;
		}
		add_event(rep, HG_EV_LEAK, leak);
	}
}

/* X pid (bytes blocks) per kind: the summary of p's leak check, with its suppressed groups;
 * its leaks closed and the earlier checks' superseded; the next check starts from zero. */
static void end_leak_check(struct hg_report *rep, struct hg_process *p, struct fields *fs)
{
	struct hg_leak_summary *sum = hg_xcalloc(1, sizeof *sum);
	sum->pid = p->pid;
	for (int i = 0; i < HG_LOST_KINDS; i++) {
		sum->lost[i][0] = num(fs, 2 + 2 * i);
		sum->lost[i][1] = num(fs, 3 + 2 * i);
	}
	if (fs->bad) {
		free(sum);
		return;
	}
	memcpy(sum->suppressed, p->suppressed_lost, sizeof sum->suppressed);
	for (size_t i = 0; i < rep->leaks.count; i++) {
		struct hg_leak *l = rep->leaks.items[i];
		if (l->pid != p->pid || l->superseded)
			continue;
		if (l->closed)
			l->superseded = 1;
		else
			l->closed = 1;
	}
	memset(p->suppressed_lost, 0, sizeof p->suppressed_lost);
	memset(p->shown_lost, 0, sizeof p->shown_lost);
	p->leak_summary = sum;
	add_event(rep, HG_EV_LEAK_SUMMARY, sum);
}

void hg_records_line(struct hg_report *rep, char *line)
{
	struct fields fs;
	if (split(line, &fs) < 0 || fs.n < 2 || strlen(fs.f[0]) != 1) {
		rep->bad_records++;
		return;
	}
	int pid = (int)num(&fs, 1);
	if (fs.bad) {
		rep->bad_records++;
		return;
	}
	char type = fs.f[0][0];
	struct hg_process *p = type == 'P' ? NULL : process(rep, pid);
	switch (type) {
	case 'P': /* a new process, or a new image after exec: its tables start empty */
		new_image(rep, pid, (int)num(&fs, 2), str(&fs, 3));
		break;
	case 'M': {
		uint64_t index = num(&fs, 2);
		const char *path = str(&fs, 3);
		if (!fs.bad && path)
			hg_map_put(&p->modules, index + 1, (void *)path);
		break;
	}
	case 'S':
		read_stack(p, &fs);
		break;
	case 'E':
		read_error(rep, p, &fs);
		break;
	case 'C':
		read_count(p, &fs);
		break;
	case 'L':
		read_leak(rep, p, &fs);
		break;
	case 'A': /* "-": the exec failed, and this image goes on */
		p->exec_to = str(&fs, 2);
		if (!p->exe && fs.n > 3) /* a fork child that wrote no P record */
			p->exe = str(&fs, 3);
		p->exec_elsewhere = fs.n > 4 && num(&fs, 4);
		break;
	case 'B': { /* checked at the end: did the child write records of its own? */
		struct hg_unchecked *u = hg_xcalloc(1, sizeof *u);
		u->pid = (int)num(&fs, 2);
		u->program = str(&fs, 3);
		u->executed_by = p->exe;
		u->elsewhere = fs.n > 4 && num(&fs, 4);
		if (!fs.bad && u->program)
			hg_vec_push(&rep->spawned, u);
		else
			free(u);
		break;
	}
	case 'H':
		for (int i = 0; i < HG_HEAP_FIELDS; i++)
			p->heap[i] = num(&fs, 2 + i);
		if (!fs.bad) {
			p->has_heap = 1;
			add_event(rep, HG_EV_HEAP_SUMMARY, p);
		}
		break;
	case 'X':
		end_leak_check(rep, p, &fs);
		break;
	default: /* a newer library's record: skipped, so that old commands keep working */
		return;
	}
	if (fs.bad)
		rep->bad_records++;
}

void hg_records_read(struct hg_reader *r, struct hg_report *rep)
{
	static char buf[READ_BYTES];
	ssize_t got;
	while ((got = read(r->fd, buf, sizeof buf)) > 0 || (got < 0 && errno == EINTR)) {
		if (got < 0)
			continue;
		hg_text_addn(&r->pending, buf, (size_t)got);
	}
	/* Only whole lines: a writer's line is one write(2), but we may read in the middle. */
	size_t start = 0;
	for (size_t i = 0; i < r->pending.len; i++) {
		if (r->pending.s[i] != '\n')
			continue;
		r->pending.s[i] = '\0';
		hg_records_line(rep, r->pending.s + start);
		start = i + 1;
	}
	if (start > 0) {
		memmove(r->pending.s, r->pending.s + start, r->pending.len - start + 1);
		r->pending.len -= start;
	}
}

uint64_t hg_lost_shown(const struct hg_leak_summary *s, int kind, int blocks)
{
	uint64_t all = s->lost[kind][blocks], hidden = s->suppressed[kind][blocks];
	return all > hidden ? all - hidden : 0;
}

/* One context of count errors, shown or hidden by `by`. */
static void tally(struct hg_totals *t, const struct hg_suppression *by, uint64_t count)
{
	if (!by) {
		t->errors += count;
		t->contexts++;
	} else if (hg_suppression_counts(by)) {
		t->suppressed_errors += count;
		t->suppressed_contexts++;
	}
}

void hg_report_totals(const struct hg_report *rep, struct hg_totals *t)
{
	*t = (struct hg_totals){ 0 };
	for (size_t i = 0; i < rep->errors.count; i++) {
		const struct hg_error *e = rep->errors.items[i];
		tally(t, e->suppressed_by, e->count);
	}
	for (size_t i = 0; i < rep->leaks.count; i++) {
		const struct hg_leak *l = rep->leaks.items[i];
		int k = hg_lost_index(l->kind);
		if (!l->superseded && k >= 0 && (rep->leak_error_kinds >> k & 1))
			tally(t, l->suppressed_by, 1);
	}
	for (size_t i = 0; i < rep->processes.count; i++) {
		const struct hg_process *p = rep->processes.items[i];
		for (int k = 0; k < HG_LOST_KINDS; k++)
			for (int b = 0; b < 2; b++) /* ended before its leak summary: the groups it wrote */
				t->lost[k][b] += p->leak_summary ? hg_lost_shown(p->leak_summary, k, b) : p->shown_lost[k][b];
		if (p->pid == rep->main_pid && p->has_heap)
			t->main = p;
	}
}
