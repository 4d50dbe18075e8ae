/* report.c — the one renderer of error records, one report at a time, never allocating; and
 * the error counts by context (kind + stack) behind the ERROR SUMMARY. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

#include "base/fmt.h"
#include "base/options.h"
#include "check/check.h"
#include "check/symbols.h"
#include "os/os.h"

#define CONTEXTS 4096 /* distinct (kind, access, stack, place) remembered; later ones count, shown each */

/* The access is part of a context, as in valgrind: a memcpy that overreads one block and
 * overwrites another made two errors from one stack, and the write was counted, unshown. */
struct context {
	const char *kind;
	const char *access; /* "read", "write", ...: a string literal, compared by its text */
	uint32_t stack;
	uintptr_t addr; /* the error's place (hgc_error); for errors without a stack, the address */
	size_t count;
};

static struct context contexts[CONTEXTS];
static size_t n_errors, n_contexts;
static _Atomic uint32_t reporter; /* thread number holding the report "lock", 0 when free */

void hgc_line_start(struct hg_buf *b)
{
	hg_buf_str(b, "==");
	hg_buf_dec(b, (uint64_t)getpid());
	hg_buf_str(b, "== ");
}

static int same_text(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

/* Counts the error; 1 when its context is new and so is shown. */
static int count_context(const struct hgc_error *e)
{
	n_errors++;
	uintptr_t addr = e->stack ? e->place : e->addr;
	size_t h = ((uintptr_t)e->kind * 31 + (e->access ? (uintptr_t)e->access[0] : 0) +
		    e->stack * 0x9e3779b9u + addr) % CONTEXTS;
	for (size_t i = 0; i < CONTEXTS; i++, h = (h + 1) % CONTEXTS) {
		struct context *c = &contexts[h];
		if (!c->kind) {
			*c = (struct context){ e->kind, e->access, e->stack, addr, 1 };
			n_contexts++;
			return 1;
		}
		if (c->kind == e->kind && same_text(c->access, e->access) && c->stack == e->stack &&
		    c->addr == addr) {
			c->count++;
			return 0;
		}
	}
	n_contexts++;
	return 1;
}

void hgc_report_counts(void)
{
	for (size_t i = 0; i < CONTEXTS; i++)
		if (contexts[i].kind && contexts[i].count > 1)
			hgc_record_count(contexts[i].kind, contexts[i].access, contexts[i].stack, (uint32_t)contexts[i].addr,
					 contexts[i].count);
}

void hgc_error_counts(size_t *errors, size_t *ctx)
{
	*errors = n_errors;
	*ctx = n_contexts;
}

static const char *first_function(uint32_t stack)
{
	uintptr_t pc;
	struct hgc_symbol s;
	if (hgc_stack_get(stack, &pc, 1) != 1)
		return "??";
	hgc_symbolize(pc, &s);
	return s.function ? s.function : "??";
}

void hgc_print_stack(uint32_t id)
{
	uintptr_t pcs[64];
	int n = hgc_stack_get(id, pcs, 64);
	struct hg_buf b = { .len = 0 };
	if (n == 0) {
		hgc_line_start(&b);
		hg_buf_str(&b, "    (no stack recorded)\n");
		hg_buf_flush(&b);
	}
	for (int i = 0; i < n; i++) {
		struct hgc_symbol s;
		hgc_symbolize(pcs[i], &s);
		hgc_line_start(&b);
		hg_buf_str(&b, "    #");
		hg_buf_dec(&b, (uint64_t)i);
		hg_buf_str(&b, " ");
		hg_buf_hex(&b, pcs[i]);
		hg_buf_str(&b, " in ");
		hg_buf_name(&b, s.function ? s.function : "??");
		hg_buf_str(&b, " (");
		hg_buf_name(&b, s.module ? s.module : "?");
		hg_buf_str(&b, "+");
		hg_buf_hex(&b, s.offset);
		hg_buf_str(&b, ")\n");
		hg_buf_flush(&b);
	}
}

static void print_headline(const struct hgc_error *e, uint32_t thread)
{
	struct hg_buf b = { .len = 0 };
	hgc_line_start(&b);
	hg_buf_str(&b, "ERROR: ");
	hg_buf_str(&b, e->kind);
	hg_buf_str(&b, ": ");
	if (e->access && (!strcmp(e->access, "read") || !strcmp(e->access, "write"))) {
		hg_buf_str(&b, e->access);
		if (e->size) {
			hg_buf_str(&b, " of size ");
			hg_buf_dec(&b, e->size);
		}
		hg_buf_str(&b, " at ");
		hg_buf_hex(&b, e->addr);
		if (e->func) {
			hg_buf_str(&b, " by ");
			hg_buf_str(&b, e->func);
			hg_buf_str(&b, "()");
		}
	} else if (!e->func) { /* a fault whose direction the kernel does not tell */
		hg_buf_str(&b, "read or write at ");
		hg_buf_hex(&b, e->addr);
	} else if (!e->access) { /* a request (allocation-size-too-big): its size, no address */
		hg_buf_str(&b, e->func);
		hg_buf_str(&b, "() of ");
		hg_buf_dec(&b, e->size);
		hg_buf_str(&b, " bytes");
	} else {
		hg_buf_str(&b, e->func);
		hg_buf_str(&b, "() of ");
		hg_buf_hex(&b, e->addr);
	}
	hg_buf_str(&b, " (thread ");
	hg_buf_dec(&b, thread);
	hg_buf_str(&b, ")\n");
	hg_buf_flush(&b);
}

static void print_block(const struct hgc_error *e)
{
	const struct hgc_block *k = &e->block;
	uintptr_t user = (uintptr_t)k->user, end = user + k->size;
	struct hg_buf b = { .len = 0 };
	hgc_line_start(&b);
	hg_buf_str(&b, "  ");
	hg_buf_hex(&b, e->addr);
	hg_buf_str(&b, " is ");
	if (e->addr < user) {
		hg_buf_dec(&b, user - e->addr);
		hg_buf_str(&b, " bytes before");
	} else if (e->addr >= end) {
		hg_buf_dec(&b, e->addr - end);
		hg_buf_str(&b, " bytes after");
	} else {
		hg_buf_dec(&b, e->addr - user);
		hg_buf_str(&b, " bytes inside");
	}
	hg_buf_str(&b, " a block of size ");
	hg_buf_dec(&b, k->size);
	hg_buf_str(&b, " at ");
	hg_buf_hex(&b, user);
	hg_buf_str(&b, "\n");
	hg_buf_flush(&b);
}

static void print_who(const char *what, uint32_t thread, uint32_t stack)
{
	struct hg_buf b = { .len = 0 };
	hgc_line_start(&b);
	hg_buf_str(&b, "  ");
	hg_buf_str(&b, what);
	hg_buf_str(&b, " by thread ");
	hg_buf_dec(&b, thread);
	hg_buf_str(&b, ":\n");
	hg_buf_flush(&b);
	hgc_print_stack(stack);
}

/* The block this thread's last intercepted access reported: the real function then faults on
 * its guard page, and that fault is the same error. */
static __thread const char *last_intercepted;

/* Reports run on a stack of their own (one at a time, under `reporter`): they take some 16
 * KiB (lines are built in 4 KiB buffers, stacks written through the records), past the end of
 * a coroutine's 8 KiB stack or a PTHREAD_STACK_MIN thread's, where the report was lost or
 * memory below the stack overwritten. Where no stack could be mapped, on the caller's. */
#define REPORT_STACK_BYTES ((size_t)256 << 10)
static char *report_stack;
static ucontext_t report_ctx, caller_ctx;
static struct hgc_error *report_arg;
static uint32_t report_thread;

static void report_locked(void)
{
	struct hgc_error *e = report_arg;
	uint32_t thread = report_thread;
	if (!e->stack && e->context)
		e->stack = hgc_stack_capture_context(e->context, 1);
	int is_new = count_context(e);
	if (is_new)
		hgc_records_check_reader();
	if (is_new && hgc_records_on()) {
		hgc_record_error(e, thread);
	} else if (is_new) {
		print_headline(e, thread);
		hgc_print_stack(e->stack);
		if (e->has_block)
			print_block(e);
		struct hg_buf b = { .len = 0 };
		if (e->detail) {
			hgc_line_start(&b);
			hg_buf_str(&b, "  ");
			hg_buf_str(&b, e->detail);
			hg_buf_str(&b, "\n");
			hg_buf_flush(&b);
		}
		if (e->has_block && e->block.free_thread)
			print_who("freed", e->block.free_thread, e->block.free_stack);
		if (e->has_block)
			print_who("allocated", e->block.alloc_thread, e->block.alloc_stack);
		hgc_line_start(&b);
		hg_buf_str(&b, "SUMMARY: ");
		hg_buf_str(&b, e->kind);
		hg_buf_str(&b, " in ");
		hg_buf_name(&b, first_function(e->stack));
		hg_buf_str(&b, "\n");
		hg_buf_flush(&b);
	}
}

static void run_on_report_stack(void)
{
	if (!report_stack)
		report_stack = hg_os_map(REPORT_STACK_BYTES, 0);
	if (!report_stack || getcontext(&report_ctx) < 0) {
		report_locked();
		return;
	}
	report_ctx.uc_stack.ss_sp = report_stack;
	report_ctx.uc_stack.ss_size = REPORT_STACK_BYTES;
	report_ctx.uc_link = &caller_ctx;
	makecontext(&report_ctx, report_locked, 0);
	if (swapcontext(&caller_ctx, &report_ctx) < 0)
		report_locked();
}

void hgc_report(struct hgc_error *e)
{
	uint32_t self = hgc_thread_id(), thread = e->thread ? e->thread : self;
	if (e->fault && e->has_block && e->block.core == last_intercepted)
		return;
	last_intercepted = e->has_block && e->func ? e->block.core : NULL;
	int cs = hgc_cancel_off();
	if (!e->stack && !e->context)
		e->stack = hgc_stack_capture(NULL);
	uint32_t expected = 0;
	while (!atomic_compare_exchange_weak(&reporter, &expected, self)) {
		if (expected == self) { /* a fault inside our own reporting */
			static const char LINE[] = "heapguard: internal error while reporting; exiting\n";
			hg_log_write(LINE, sizeof LINE - 1);
			hgc_exit_now(99);
		}
		expected = 0;
		sched_yield();
	}
	report_arg = e;
	report_thread = thread;
	run_on_report_stack();
	atomic_store(&reporter, 0);
	hgc_cancel_restore(cs);
	if (hg_opt.abort_on_error) {
		hgc_no_checks_at_exit();
		abort();
	}
}
