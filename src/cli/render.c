/* render.c — the text report, in the shape the library prints when preloaded alone
 * (tests/hgreport.py parses both): every line "==PID== ", frames with source lines. */
#define _GNU_SOURCE /* sigabbrev_np */
#include <string.h>
#include <stdlib.h>

#include "report.h"

static void stack_lines(struct hg_text *t, int pid, const struct hg_stack *s)
{
	if (s == NULL || s->count == 0) {
		hg_text_printf(t, "==%d==     (no stack recorded)\n", pid);
		return;
	}
	for (size_t i = 0; i < s->count; i++) {
		hg_text_printf(t, "==%d==     #%zu 0x%llx in ", pid, i, (unsigned long long)s->frames[i].pc);
		hg_frame_text(&s->frames[i], t);
		hg_text_add(t, "\n");
	}
}

static void headline(struct hg_text *t, const struct hg_error *e)
{
	hg_text_printf(t, "==%d== ERROR: %s: ", e->pid, e->kind);
	if (e->access && (!strcmp(e->access, "read") || !strcmp(e->access, "write"))) {
		hg_text_add(t, e->access);
		if (e->size)
			hg_text_printf(t, " of size %llu", (unsigned long long)e->size);
		hg_text_printf(t, " at 0x%llx", (unsigned long long)e->address);
		if (e->func)
			hg_text_printf(t, " by %s()", e->func);
	} else if (hg_is_request(e)) { /* its size, and no address */
		hg_text_printf(t, "%s() of %llu bytes", e->func, (unsigned long long)e->size);
	} else if (!e->func) { /* a fault whose direction the kernel does not tell */
		hg_text_printf(t, "read or write at 0x%llx", (unsigned long long)e->address);
	} else {
		hg_text_printf(t, "%s() of 0x%llx", e->func, (unsigned long long)e->address);
	}
	hg_text_printf(t, " (thread %u)\n", e->thread);
}

/* "0xA is N bytes after|before|inside a block of size M at 0xB", as the library says it. */
static void block_line(struct hg_text *t, const struct hg_error *e)
{
	uint64_t user = e->block_address, end = user + e->block_size, a = e->address;
	hg_text_printf(t, "==%d==   0x%llx is ", e->pid, (unsigned long long)a);
	if (a < user)
		hg_text_printf(t, "%llu bytes before", (unsigned long long)(user - a));
	else if (a >= end)
		hg_text_printf(t, "%llu bytes after", (unsigned long long)(a - end));
	else
		hg_text_printf(t, "%llu bytes inside", (unsigned long long)(a - user));
	hg_text_printf(t, " a block of size %llu at 0x%llx\n", (unsigned long long)e->block_size,
		       (unsigned long long)user);
}

static void error_report(struct hg_text *t, const struct hg_error *e)
{
	headline(t, e);
	stack_lines(t, e->pid, e->stack);
	if (e->has_block)
		block_line(t, e);
	if (e->detail)
		hg_text_printf(t, "==%d==   %s\n", e->pid, e->detail);
	if (e->has_block && e->free_thread) {
		hg_text_printf(t, "==%d==   freed by thread %u:\n", e->pid, e->free_thread);
		stack_lines(t, e->pid, e->free_stack);
	}
	if (e->has_block) {
		hg_text_printf(t, "==%d==   allocated by thread %u:\n", e->pid, e->alloc_thread);
		stack_lines(t, e->pid, e->alloc_stack);
	}
	hg_text_printf(t, "==%d== SUMMARY: %s in ", e->pid, e->kind);
	if (e->stack && e->stack->count)
		hg_frame_text(&e->stack->frames[0], t);
	else
		hg_text_add(t, "??");
	hg_text_add(t, "\n");
}

static void leak_summary(struct hg_text *t, const struct hg_leak_summary *sum)
{
	uint64_t sup_bytes = 0, sup_blocks = 0;
	hg_text_printf(t, "==%d== LEAK SUMMARY: ", sum->pid);
	for (int k = 0; k < HG_LOST_KINDS; k++) {
		uint64_t bytes = hg_lost_shown(sum, k, 0), blocks = hg_lost_shown(sum, k, 1);
		sup_bytes += sum->suppressed[k][0];
		sup_blocks += sum->suppressed[k][1];
		hg_text_printf(t, "%s%s: %llu bytes in %llu blocks", k ? "; " : "", hg_lost_words[k],
			       (unsigned long long)bytes, (unsigned long long)blocks);
	}
	if (sup_blocks)
		hg_text_printf(t, "; suppressed: %llu bytes in %llu blocks",
			       (unsigned long long)sup_bytes, (unsigned long long)sup_blocks);
	hg_text_add(t, "\n");
}

static void event_text(struct hg_text *t, const struct hg_event *ev, const struct hg_render_options *o)
{
	const struct hg_error *e = ev->what;
	const struct hg_leak *l = ev->what;
	const struct hg_process *p = ev->what;
	switch (ev->type) {
	case HG_EV_ERROR:
		error_report(t, e);
		if (o->gen_suppressions)
			hg_suppression_generate(e->kind, e->stack, e->func, t);
		hg_text_printf(t, "==%d== \n", e->pid);
		break;
	case HG_EV_LEAK:
		hg_text_printf(t, "==%d== LEAK: %s: %llu bytes in %llu blocks\n", l->pid, l->kind,
			       (unsigned long long)l->bytes, (unsigned long long)l->blocks);
		stack_lines(t, l->pid, l->stack);
		if (o->gen_suppressions)
			hg_suppression_generate(l->kind, l->stack, l->call, t);
		hg_text_printf(t, "==%d== \n", l->pid);
		break;
	case HG_EV_LEAK_SUMMARY:
		if (!o->quiet)
			leak_summary(t, ev->what);
		break;
	case HG_EV_HEAP_SUMMARY:
		if (!o->quiet)
			hg_text_printf(t, "==%d== HEAP SUMMARY: in use at exit: %llu bytes in %llu blocks; "
				       "total: %llu allocs, %llu frees, %llu bytes allocated\n", p->pid,
				       (unsigned long long)p->heap[HG_HEAP_IN_USE_BYTES],
				       (unsigned long long)p->heap[HG_HEAP_IN_USE_BLOCKS],
				       (unsigned long long)p->heap[HG_HEAP_ALLOCS],
				       (unsigned long long)p->heap[HG_HEAP_FREES],
				       (unsigned long long)p->heap[HG_HEAP_BYTES]);
		break;
	}
}

/* One write per batch of events, so that a report is not cut by the program's own output. */
void hg_render_events(const struct hg_report *rep, const struct hg_render_options *o, size_t *next)
{
	struct hg_text t = { 0 };
	for (; *next < rep->events.count; (*next)++)
		event_text(&t, rep->events.items[*next], o);
	if (t.len) {
		fwrite(t.s, 1, t.len, o->out);
		fflush(o->out);
	}
	free(t.s);
}

struct used_line {
	struct hg_text *t;
	int pid;
};

/* valgrind's -s line: "used_suppression:  COUNT NAME FILE:LINE" */
static void used_line(const char *name, const char *where, uint64_t count, void *arg)
{
	struct used_line *u = arg;
	hg_text_printf(u->t, "==%d== used_suppression: %6llu %s %s\n", u->pid, (unsigned long long)count, name,
		       where);
}

void hg_render_end(const struct hg_report *rep, const struct hg_render_options *o)
{
	struct hg_totals tot;
	hg_report_totals(rep, &tot);
	struct hg_text t = { 0 };
	int pid = rep->main_pid;
	/* Also with --quiet: what they ran went unchecked, and silence would say that all was
	 * checked. The program's own comes first, and stands for a summary of zero errors. */
	if (rep->unchecked)
		hg_text_printf(&t, "==%d== NOT CHECKED: %s\n", pid, rep->unchecked);
	for (size_t i = 0; i < rep->not_checked.count; i++)
		if (((const struct hg_unchecked *)rep->not_checked.items[i])->text != rep->unchecked)
			hg_text_printf(&t, "==%d== NOT CHECKED: %s\n", pid,
				       ((const struct hg_unchecked *)rep->not_checked.items[i])->text);
	for (size_t i = 0; i < rep->elsewhere.count && !o->quiet; i++)
		hg_text_printf(&t, "==%d== CHECKED ELSEWHERE: %s\n", pid,
			       ((const struct hg_unchecked *)rep->elsewhere.items[i])->text);
	/* Also with --quiet: an exit with no summary means the rest of the report went elsewhere
	 * (the library writes it to the process's stderr once it cannot write records), unless
	 * the program executed one that another heapguard command reports. */
	const struct hg_process *m = hg_map_get(&rep->live, (uint64_t)pid + 1);
	if (m && !m->has_heap && !m->exec_elsewhere && !o->signal && !rep->unchecked) {
		hg_text_printf(&t, "==%d== NO SUMMARY: ", pid);
		hg_text_add_name(&t, m->exe ? m->exe : "the program");
		hg_text_add(&t, " ended without writing its heap summary here: it could not write its "
			    "records (a file size or descriptor limit, a full disk) and reported since on "
			    "its own standard error, or it ended from a signal handler that interrupted "
			    "malloc or free (it says so there), or by a raw exit system call, past the "
			    "checks\n");
	}
	/* Also with --quiet: their reports come later, elsewhere. */
	for (size_t i = 0; i < rep->running.count; i++) {
		const struct hg_process *p = rep->running.items[i];
		hg_text_printf(&t, "==%d== STILL RUNNING: ", pid);
		hg_text_add_name(&t, p->exec_to ? p->exec_to : p->exe ? p->exe : "?");
		hg_text_printf(&t, " (pid %d) outlived the program: it reports on its own standard error "
			       "when it ends\n", p->pid);
	}
	if (!o->quiet && !(rep->unchecked && !tot.errors)) {
		if (o->signal) {
			const char *abbrev = sigabbrev_np(o->signal);
			hg_text_printf(&t, "==%d== Process terminated by signal %d (SIG%s)\n", pid, o->signal,
				       abbrev ? abbrev : "?");
		}
		if (o->show_used) {
			struct used_line u = { &t, pid };
			hg_suppressions_used(rep, used_line, &u);
		}
		hg_text_printf(&t, "==%d== ERROR SUMMARY: %llu errors from %llu contexts (suppressed: %llu from %llu)\n",
			       pid, (unsigned long long)tot.errors, (unsigned long long)tot.contexts,
			       (unsigned long long)tot.suppressed_errors,
			       (unsigned long long)tot.suppressed_contexts);
	}
	if (t.len)
		fwrite(t.s, 1, t.len, o->out);
	fflush(o->out);
	free(t.s);
}
