/* signal.c — the SIGSEGV/SIGBUS reporter: names the block a fault hit, reports it, then hands
 * the signal to the program's own handler or lets the fault kill the process. The checks at
 * exit before a signal such as SIGTERM ends it. And the way out of any handler by longjmp. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <ucontext.h>

#include "alloc/tcache.h"
#include "base/fmt.h"
#include "base/lock.h"
#include "base/options.h"
#include "check/check.h"
#include "check/guard.h"
#include "os/os.h"

/* libc's own sigaction: ours below interposes the public name. */
extern int __sigaction(int sig, const struct sigaction *act, struct sigaction *old);

#define ALTSTACK_BYTES (64u << 10) /* unwinding and symbolizing a report fit with room to spare */
#define PAGE_BYTES HG_OS_PAGE_BYTES
#define STACK_NEAR_BYTES (64u << 10) /* a fault this close to the stack pointer: stack overflow */
#define VECTOR_BYTES 64u             /* the widest load a string function makes (AVX-512) */
#define X86_TRAP_PF 14               /* page fault: REG_ERR holds the access */
#define X86_PF_WRITE 2u
#define X86_PF_FETCH 16u
#ifndef SA_RESTORER
#define SA_RESTORER 0x04000000 /* what glibc's sigaction adds to every action it sets (x86-64) */
#endif

/* libc's pthread_sigmask: ours (below) keeps SIGSEGV and SIGBUS deliverable. */
static int (*next_pthread_sigmask)(int, const sigset_t *, sigset_t *);

/* ---- the program's handlers: it sees its own, ours stays installed ---- */
enum { SEGV, BUS, SIGNALS };
/* Written under handlers_lock; the fault handler reads single fields without it (a handler
 * changed while a fault is being handled on another thread is a race in the program anyway). */
static struct sigaction program[SIGNALS];
static hg_lock_t handlers_lock = HG_LOCK_INIT;
static _Atomic int installed;

static int index_of(int sig)
{
	return sig == SIGSEGV ? SEGV : sig == SIGBUS ? BUS : -1;
}

static int has_program_handler(int i)
{
	void (*h)(int) = program[i].sa_handler;
	return h != SIG_DFL && h != SIG_IGN; /* an ignored fault kills all the same */
}

/* Sets sig's action to SIG_DFL in the kernel. */
static void to_default(int sig)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigemptyset(&dfl.sa_mask);
	__sigaction(sig, &dfl, NULL);
}

/* After the report: the program's handler, with its mask and flags, as the kernel would have
 * called it; or else the default action. */
static void chain(int i, int sig, siginfo_t *si, void *ctx, int deliverable)
{
	if (deliverable) {
		int flags = program[i].sa_flags;
		void (*h)(int) = program[i].sa_handler;
		void (*hi)(int, siginfo_t *, void *) = program[i].sa_sigaction;
		/* The mask the kernel would have set; ours blocks every signal (hgc_signal_init). */
		sigset_t mask = ((const ucontext_t *)ctx)->uc_sigmask;
		for (int s = 1; s < NSIG; s++)
			if (sigismember(&program[i].sa_mask, s) == 1 || (s == sig && !(flags & SA_NODEFER)))
				sigaddset(&mask, s);
		if (flags & SA_RESETHAND)
			program[i].sa_handler = SIG_DFL;
		next_pthread_sigmask(SIG_SETMASK, &mask, NULL); /* the kernel restores the old mask at return */
		if (flags & SA_SIGINFO)
			hi(sig, si, ctx);
		else
			h(sig);
		return;
	}
	hgc_checks_before_fault(sig, ctx);
	to_default(sig);
	/* A fault happens again when we return, now fatal; a signal sent by kill() must be sent
	 * again (it stays blocked until we return). */
	if (si->si_code <= 0)
		raise(sig);
}

/* ---- classification ---- */
static void text_terminate(struct hg_buf *d)
{
	if (d->len >= sizeof d->text)
		d->len = sizeof d->text - 1;
	d->text[d->len] = 0;
}

/* Bytes from addr to the block's bytes (0 inside). */
static uintptr_t distance(uintptr_t addr, const struct hgc_block *b)
{
	uintptr_t user = (uintptr_t)b->user, end = user + b->size;
	return addr < user ? user - addr : addr >= end ? addr - end : 0;
}

/* The block of a guard page hit: a live neighbour before a freed one, then the nearer. */
static int guard_page_block(uintptr_t addr, char *below, char *above, struct hgc_block *out)
{
	struct hgc_block nb[2];
	int have[2] = { below && hgc_lookup(below, &nb[0]), above && hgc_lookup(above, &nb[1]) };
	int pick = -1;
	for (int k = 0; k < 2; k++) {
		if (!have[k])
			continue;
		if (pick < 0 || (nb[k].state == HGC_LIVE && nb[pick].state != HGC_LIVE) ||
		    (nb[k].state == nb[pick].state && distance(addr, &nb[k]) < distance(addr, &nb[pick])))
			pick = k;
	}
	if (pick >= 0)
		*out = nb[pick];
	return pick >= 0;
}

/* Fills e for a fault in or next to a known block: freed, in a redzone or slack, or inside a
 * live one. 0 for the last: the page's protection is the program's own (mprotect), and so is
 * the fault. */
static int block_error(uintptr_t addr, const struct hgc_block *b, struct hgc_error *e, struct hg_buf *d)
{
	e->has_block = 1;
	e->block = *b;
	/* Outside a block's bytes, as ASan's redzone: an overflow from the block next to it, not a
	 * use of the freed one; but in a freed guarded block's slot, its neighbours a guard page
	 * away, the vector word of a string call that holds its first or last byte is a use of it
	 * (glibc's strchr reads from the 32 bytes before a string). */
	int in_bytes = addr >= (uintptr_t)b->user && addr < (uintptr_t)b->user + b->size;
	int at_bytes = b->guarded && addr >= (uintptr_t)b->core && addr < (uintptr_t)b->core + b->core_bytes &&
		       distance(addr, b) < VECTOR_BYTES;
	if (b->state != HGC_LIVE && (in_bytes || at_bytes)) {
		e->kind = "heap-use-after-free";
	} else if (!in_bytes) {
		e->kind = "heap-buffer-overflow";
	} else {
		e->kind = "invalid-access";
		hg_buf_str(d, "the block is live, yet its page refused the access");
		return 0;
	}
	return 1;
}

/* A register holding a fill byte repeated, or the never-written word, looks like a pointer
 * read from such memory: the usual source of a general protection fault, whose address the
 * kernel does not give. */
static void fill_pointer_hint(const ucontext_t *uc, struct hg_buf *d)
{
	static const char *const NAMES[NGREG] = {
		[REG_RAX] = "rax", [REG_RBX] = "rbx", [REG_RCX] = "rcx", [REG_RDX] = "rdx",
		[REG_RSI] = "rsi", [REG_RDI] = "rdi", [REG_RBP] = "rbp", [REG_R8] = "r8",
		[REG_R9] = "r9", [REG_R10] = "r10", [REG_R11] = "r11", [REG_R12] = "r12",
		[REG_R13] = "r13", [REG_R14] = "r14", [REG_R15] = "r15",
	};
	static const char *const SOURCES[] = { [HGC_FILL_UNINIT] = ", read from uninitialized heap memory?",
					       [HGC_FILL_FREED] = ", read from a freed block?",
					       [HGC_FILL_REDZONE] = ", read from a redzone?" };
	for (int r = 0; r < NGREG; r++) {
		uint64_t v = (uint64_t)uc->uc_mcontext.gregs[r];
		int fill = NAMES[r] ? hgc_fill_of(v) : 0;
		if (!fill)
			continue;
		hg_buf_str(d, "; ");
		hg_buf_str(d, NAMES[r]);
		hg_buf_str(d, " = ");
		hg_buf_hex(d, v);
		hg_buf_str(d, SOURCES[fill]);
		return;
	}
}

static int near_stack_pointer(uintptr_t addr, const ucontext_t *uc)
{
	uintptr_t sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
	return addr + STACK_NEAR_BYTES > sp && addr < sp + STACK_NEAR_BYTES;
}

/* Fills e for the fault at si; returns 1 when it concerns heapguard's blocks (a program's
 * own handler is then called after the report; other faults are left to it alone). */
static int classify(int sig, const siginfo_t *si, const ucontext_t *uc, struct hgc_error *e, struct hg_buf *d)
{
	uintptr_t addr = (uintptr_t)si->si_addr;
	const greg_t *g = uc->uc_mcontext.gregs;
	int known_access = g[REG_TRAPNO] == X86_TRAP_PF;
	e->kind = "invalid-access";
	e->addr = addr;
	e->access = known_access && (g[REG_ERR] & X86_PF_WRITE) ? "write" : "read";
	if (sig == SIGSEGV && si->si_code == SI_KERNEL) {
		e->access = NULL;
		hg_buf_str(d, "general protection fault: a non-canonical address, which the kernel does "
			      "not report (0x0 above)");
		fill_pointer_hint(uc, d);
		return 0;
	}
	struct hgc_block b;
	char *slot, *below, *above;
	switch (hgc_guard_place(si->si_addr, &slot, &below, &above)) {
	case HGC_GUARD_IN_PAGE:
		if (guard_page_block(addr, below, above, &b))
			return block_error(addr, &b, e, d);
		hg_buf_str(d, "the address is in a guard page, next to no block");
		return 1;
	case HGC_GUARD_IN_SLOT:
		if (hgc_lookup(si->si_addr, &b))
			return block_error(addr, &b, e, d);
		if (hgc_guard_slot_state(slot) == HGC_SLOT_RELEASED) {
			e->kind = "heap-use-after-free";
			hg_buf_str(d, "the address is in a guard slot whose block was freed and has left "
				      "the quarantine (no record of it is left)");
		} else {
			hg_buf_str(d, "the address is in a guard slot holding no block");
		}
		return 1;
	case HGC_GUARD_OUTSIDE:
		break;
	}
	if (hgc_lookup(si->si_addr, &b) || hgc_vacated_block(si->si_addr, &b, NULL))
		return block_error(addr, &b, e, d);
	hg_buf_str(d, "address ");
	hg_buf_hex(d, addr);
	if (addr < PAGE_BYTES) {
		hg_buf_str(d, " is in the NULL page");
	} else if (near_stack_pointer(addr, uc)) {
		hg_buf_str(d, " is next to the stack pointer: a stack overflow");
	} else if (sig == SIGBUS) {
		hg_buf_str(d, " is mapped but has no page behind it (a file truncated under its mapping?)");
	} else if (si->si_code == SEGV_ACCERR) {
		hg_buf_str(d, known_access && (g[REG_ERR] & X86_PF_FETCH) ?
			      " is mapped but not executable" :
			      " is mapped but forbids the access, and is in no heap block");
	} else {
		hg_buf_str(d, " is not in any mapped block");
	}
	return 0;
}

/* guard_uninit: the first use of a block whose slot is still inaccessible. A read is reported
 * as uninitialized-read; either way the slot becomes read-write, filled like a new block, and
 * the access is retried. */
static int first_use(const siginfo_t *si, const ucontext_t *uc)
{
	int done = hgc_guard_touch(si->si_addr);
	if (!done)
		return 0;
	const greg_t *g = uc->uc_mcontext.gregs;
	struct hgc_block b;
	if (done == 2 && g[REG_TRAPNO] == X86_TRAP_PF && !(g[REG_ERR] & X86_PF_WRITE) &&
	    hgc_lookup(si->si_addr, &b)) {
		struct hgc_error e = { .kind = "uninitialized-read", .access = "read",
				       .addr = (uintptr_t)si->si_addr, .has_block = 1, .block = b,
				       .detail = "the block's first use since it was allocated is this read" };
		e.context = uc;
		hgc_report(&e);
	}
	return 1;
}

/* A read or write through a stale pointer into the old place of a block that realloc moved by
 * its pages, or of a freed one that had a mapping of its own: reported the first time, as
 * block_error tells it (a use after free, or past the old block's end), then the access is
 * retried on the zeros now there. */
static int stale_use(const siginfo_t *si, const ucontext_t *uc)
{
	struct hgc_block b;
	const greg_t *g = uc->uc_mcontext.gregs;
	if (g[REG_TRAPNO] == X86_TRAP_PF && (g[REG_ERR] & X86_PF_FETCH))
		return 0; /* a jump through the pointer: no zeros serve it (classify reports it) */
	int freed;
	int use = hgc_vacated_use(si->si_addr, &b, &freed);
	if (use == 2) {
		struct hgc_error e = { .addr = (uintptr_t)si->si_addr, .fault = 1, .context = uc };
		struct hg_buf d = { .len = 0 };
		e.access = g[REG_TRAPNO] == X86_TRAP_PF && (g[REG_ERR] & X86_PF_WRITE) ? "write" : "read";
		block_error(e.addr, &b, &e, &d);
		e.detail = freed ? "the block was freed; its place reads as zeros from now on"
				 : "realloc moved the block; its old place reads as zeros from now on";
		hgc_report(&e);
	}
	return use != 0;
}

/* Its own frame: its 4 KiB of text are gone before chain() runs the checks at exit, on the
 * stack of a thread that may have 16 KiB in all. */
static HG_NOINLINE void report_fault(int sig, siginfo_t *si, ucontext_t *ctx, int deliverable)
{
	struct hgc_error e = { 0 };
	struct hg_buf d = { .len = 0 };
	int is_heap = classify(sig, si, ctx, &e, &d);
	text_terminate(&d);
	e.detail = d.len ? d.text : NULL;
	e.fault = 1;
	e.context = ctx;
	/* A program with its own handler may fault on purpose (a JIT, a GC barrier, a probe): its
	 * faults outside the heap, or in a live block's bytes on a page it protected, are its
	 * business. A write already reported (by an interceptor, before the copy that faults
	 * here) is said once. */
	int said = e.has_block && e.block.reported;
	if ((is_heap || !deliverable) && !said)
		hgc_report(&e);
}

static int program_has_altstack(void);

static void on_fault(int sig, siginfo_t *si, void *ctx)
{
	int saved = errno;
	int i = sig == SIGBUS ? BUS : SEGV; /* installed for these two only */
	if (sig == SIGSEGV && si->si_code > 0 && hg_opt.guard_uninit && first_use(si, ctx)) {
		errno = saved;
		return;
	}
	if (sig == SIGSEGV && si->si_code == SEGV_ACCERR && stale_use(si, ctx)) {
		errno = saved;
		return;
	}
	/* A stack overflow's handler needs an alternate stack of the program's: without one the
	 * kernel kills the process. Run on ours, a handler that returned faulted again forever. */
	int deliverable = has_program_handler(i) &&
			  !(sig == SIGSEGV && si->si_code > 0 && near_stack_pointer((uintptr_t)si->si_addr, ctx) &&
			    !((program[i].sa_flags & SA_ONSTACK) && program_has_altstack()));
	/* Only faults the kernel raised are reported; kill() and raise() (si_code <= 0) just pass. */
	if (si->si_code > 0)
		report_fault(sig, si, ctx, deliverable);
	chain(i, sig, si, ctx, deliverable);
	errno = saved;
}

/* ---- leaving a signal handler by longjmp ---- */
/* A handler that jumps out never returns to the heap call it interrupted: that call is over
 * for this thread's later calls, which must not be taken for calls from inside it (heap.c's
 * calls from signal handlers). A lock it held stays held, as glibc's malloc's would. */
static void (*next_siglongjmp)(struct __jmp_buf_tag *, int);
static void (*next_longjmp_chk)(struct __jmp_buf_tag *, int);

static __attribute__((noreturn)) void jump(void (**next)(struct __jmp_buf_tag *, int), const char *name,
					   struct __jmp_buf_tag *env, int val)
{
	hgc_in_heap = 0;
	if (!*next) /* a jump before our initialization: a constructor's */
		*(void **)next = dlsym(RTLD_NEXT, name);
	(*next)(env, val);
	__builtin_unreachable();
}

HG_EXPORT void siglongjmp(sigjmp_buf env, int val)
{
	jump(&next_siglongjmp, "siglongjmp", env, val);
}

HG_EXPORT void longjmp(jmp_buf env, int val)
{
	jump(&next_siglongjmp, "siglongjmp", env, val);
}

HG_EXPORT void _longjmp(jmp_buf env, int val)
{
	jump(&next_siglongjmp, "siglongjmp", env, val);
}

/* What fortified programs call for longjmp. */
HG_EXPORT __attribute__((noreturn)) void __longjmp_chk(jmp_buf env, int val);
HG_EXPORT void __longjmp_chk(jmp_buf env, int val)
{
	jump(&next_longjmp_chk, "__longjmp_chk", env, val);
}

/* ---- masks: a fault must reach the checker ---- */
/* The kernel kills a thread that faults with SIGSEGV or SIGBUS blocked, whatever the
 * handler: no report, and under --guard-uninit a correct program died at its first use of a
 * block (a worker thread started with every signal blocked, as servers do). So the two stay
 * deliverable in every mask the program sets (stack.c's sigprocmask comes here too). The
 * cost: one sent by kill() while the program believes it blocked arrives at once. */
static const sigset_t *keep_faults(int how, const sigset_t *set, sigset_t *copy)
{
	if (!set || how == SIG_UNBLOCK)
		return set;
	*copy = *set;
	sigdelset(copy, SIGSEGV);
	sigdelset(copy, SIGBUS);
	return copy;
}

HG_EXPORT int pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
{
	if (!next_pthread_sigmask) /* before our initialization: a constructor's */
		*(void **)&next_pthread_sigmask = dlsym(RTLD_NEXT, "pthread_sigmask");
	sigset_t copy;
	return next_pthread_sigmask(how, keep_faults(how, set, &copy), old);
}

/* ---- signals that end the process: the checks at exit first ---- */
/* Those whose default action ends the process, but SIGSEGV and SIGBUS (on_fault): sent ones
 * (abort() sends SIGABRT), and SIGFPE and SIGILL, which a faulting instruction raises (an
 * integer division by zero). Where the program leaves one at SIG_DFL, our handler stands in:
 * the program sees SIG_DFL, and sets anything else straight in the kernel (SIG_IGN must
 * outlive an exec, as nohup's SIGHUP does; a handler must run as the program set it). */
static const int ENDING[] = { SIGHUP, SIGINT, SIGQUIT, SIGILL, SIGABRT, SIGFPE, SIGTERM, SIGPIPE, SIGALRM,
			      SIGUSR1, SIGUSR2, SIGXCPU, SIGXFSZ, SIGVTALRM, SIGPROF };
static uint64_t ending_ours;               /* bit sig: ours stands in; under handlers_lock */
static struct sigaction ending_view[NSIG]; /* the SIG_DFL action the program set, as it set it */

static int is_ending(int sig)
{
	for (size_t i = 0; i < sizeof ENDING / sizeof *ENDING; i++)
		if (ENDING[i] == sig)
			return 1;
	return 0;
}

static void on_ending(int sig, siginfo_t *si, void *ctx)
{
	int saved = errno;
	if ((sig == SIGFPE || sig == SIGILL) && si->si_code > 0) {
		/* The instruction runs again when this returns, at SIG_DFL then: nothing can wait. */
		hgc_checks_before_fault(sig, ctx);
		to_default(sig);
	} else {
		hgc_end_by_signal(sig, ctx); /* returns only when it waits for a heap call to end */
	}
	errno = saved;
}

/* Under handlers_lock. On the alternate stack: a thread of 16 KiB with half of it used had no
 * room for the handler's own frames (the checks run on a stack of theirs). */
static int ending_install(int sig)
{
	struct sigaction act = { .sa_sigaction = on_ending, .sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK };
	sigemptyset(&act.sa_mask);
	for (size_t i = 0; i < sizeof ENDING / sizeof *ENDING; i++) /* one ending at a time */
		sigaddset(&act.sa_mask, ENDING[i]);
	if (__sigaction(sig, &act, NULL) != 0)
		return -1;
	ending_ours |= 1ull << sig;
	return 0;
}

void hgc_die_of(int sig)
{
	to_default(sig);
	sigset_t one;
	sigemptyset(&one);
	sigaddset(&one, sig);
	raise(sig);
	next_pthread_sigmask(SIG_UNBLOCK, &one, NULL); /* blocked in its handler: delivered here */
	hgc_exit_now(128 + sig);                       /* not reached */
}

void hgc_signal_init(void)
{
	*(void **)&next_siglongjmp = dlsym(RTLD_NEXT, "siglongjmp");
	*(void **)&next_longjmp_chk = dlsym(RTLD_NEXT, "__longjmp_chk");
	*(void **)&next_pthread_sigmask = dlsym(RTLD_NEXT, "pthread_sigmask");
	if (atomic_load(&installed))
		return;
	hg_lock(&handlers_lock);
	static const int SIGS[SIGNALS] = { [SEGV] = SIGSEGV, [BUS] = SIGBUS };
	for (int i = 0; i < SIGNALS; i++) {
		/* A handler set before ours (by a constructor that ran first) becomes the program's.
		 * Every signal waits while ours runs: a program's handler that came in the middle of
		 * a first use (guard_uninit) and met an untouched block of its own faulted with
		 * SIGSEGV blocked, which killed the process unreported. */
		struct sigaction act = { .sa_sigaction = on_fault, .sa_flags = SA_SIGINFO | SA_ONSTACK };
		sigfillset(&act.sa_mask);
		__sigaction(SIGS[i], &act, &program[i]);
	}
	for (size_t i = 0; i < sizeof ENDING / sizeof *ENDING; i++) {
		struct sigaction cur;
		if (__sigaction(ENDING[i], NULL, &cur) == 0 && cur.sa_handler == SIG_DFL) /* not nohup's */
			ending_install(ENDING[i]);
	}
	atomic_store(&installed, 1);
	hg_unlock(&handlers_lock);
	hgc_signal_thread_init();
}

/* ---- the program's view of SIGSEGV and SIGBUS ---- */
/* The program's view of a signal that ends the process. */
static int ending_sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	struct sigaction view, copy;
	int rc = 0;
	hg_lock(&handlers_lock);
	int ours = (int)(ending_ours >> sig & 1);
	if (ours)
		view = ending_view[sig];
	else if (__sigaction(sig, NULL, &view) != 0)
		rc = -1;
	if (rc == 0 && act && act->sa_handler == SIG_DFL) {
		if (!ours)
			rc = ending_install(sig);
		if (rc == 0) { /* read back as the kernel gives it: glibc's flag, no unblockable signal */
			ending_view[sig] = *act;
			ending_view[sig].sa_flags |= SA_RESTORER;
			sigdelset(&ending_view[sig].sa_mask, SIGKILL);
			sigdelset(&ending_view[sig].sa_mask, SIGSTOP);
		}
	} else if (rc == 0 && act) {
		copy = *act;
		keep_faults(SIG_BLOCK, &act->sa_mask, &copy.sa_mask);
		rc = __sigaction(sig, &copy, NULL);
		if (rc == 0)
			ending_ours &= ~(1ull << sig);
	}
	hg_unlock(&handlers_lock);
	if (rc == 0 && old)
		*old = view;
	return rc;
}

HG_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	int i = index_of(sig);
	if (i < 0 && is_ending(sig) && atomic_load(&installed))
		return ending_sigaction(sig, act, old);
	if (i < 0 || !atomic_load(&installed)) {
		/* A handler's mask holds while it runs: a fault inside must still be seen. */
		struct sigaction copy;
		if (act) {
			copy = *act;
			keep_faults(SIG_BLOCK, &act->sa_mask, &copy.sa_mask);
			act = &copy;
		}
		return __sigaction(sig, act, old);
	}
	hg_lock(&handlers_lock);
	if (old)
		*old = program[i];
	if (act)
		program[i] = *act;
	hg_unlock(&handlers_lock);
	return 0;
}

/* glibc's signal() calls its internal sigaction, which ours cannot see: BSD semantics redone. */
HG_EXPORT sighandler_t signal(int sig, sighandler_t handler)
{
	struct sigaction act = { .sa_handler = handler, .sa_flags = SA_RESTART }, old;
	sigemptyset(&act.sa_mask);
	if (handler == SIG_ERR || sig < 1 || sig >= NSIG || sigaddset(&act.sa_mask, sig) < 0) {
		errno = EINVAL;
		return SIG_ERR;
	}
	return sigaction(sig, &act, &old) < 0 ? SIG_ERR : old.sa_handler;
}

HG_EXPORT sighandler_t bsd_signal(int sig, sighandler_t handler)
{
	return signal(sig, handler);
}

HG_EXPORT sighandler_t ssignal(int sig, sighandler_t handler) __attribute__((alias("signal"), copy(signal)));

/* System V semantics: one-shot, not blocked while it runs. What signal() is in a program
 * built in strict ISO C mode (gcc -std=c11: __sysv_signal). */
HG_EXPORT sighandler_t sysv_signal(int sig, sighandler_t handler)
{
	struct sigaction act = { .sa_handler = handler, .sa_flags = SA_RESETHAND | SA_NODEFER }, old;
	sigemptyset(&act.sa_mask);
	if (handler == SIG_ERR || sig < 1 || sig >= NSIG) {
		errno = EINVAL;
		return SIG_ERR;
	}
	return sigaction(sig, &act, &old) < 0 ? SIG_ERR : old.sa_handler;
}

HG_EXPORT sighandler_t __sysv_signal(int sig, sighandler_t handler)
	__attribute__((alias("sysv_signal"), copy(sysv_signal)));

/* XSI's sigset: a handler that stays, SIG_HOLD to block. libc's own calls its internal
 * sigaction, which ours cannot see; the other signals go to it, and so does SIG_HOLD of one
 * that ends the process. SIGSEGV and SIGBUS are never held (see keep_faults). */
HG_EXPORT sighandler_t sigset(int sig, sighandler_t disp)
{
	static sighandler_t (*next)(int, sighandler_t);
	if (index_of(sig) < 0 && (!is_ending(sig) || disp == SIG_HOLD)) {
		if (!next)
			*(void **)&next = dlsym(RTLD_NEXT, "sigset");
		return next(sig, disp);
	}
	struct sigaction act = { .sa_handler = disp }, old;
	sigemptyset(&act.sa_mask);
	if (disp == SIG_ERR) {
		errno = EINVAL;
		return SIG_ERR;
	}
	if (sigaction(sig, disp == SIG_HOLD ? NULL : &act, &old) < 0)
		return SIG_ERR;
	if (is_ending(sig)) { /* as libc's: the signal is not held any more */
		sigset_t one;
		sigemptyset(&one);
		sigaddset(&one, sig);
		next_pthread_sigmask(SIG_UNBLOCK, &one, NULL);
	}
	return old.sa_handler;
}

/* ---- alternate signal stacks: one per thread, recycled when the thread exits ---- */
/* libc's sigaltstack: ours below interposes the public name. */
static int sigaltstack_next(const stack_t *ss, stack_t *old)
{
	static int (*next)(const stack_t *, stack_t *);
	if (!next)
		*(void **)&next = dlsym(RTLD_NEXT, "sigaltstack");
	return next(ss, old);
}

static pthread_key_t altstack_key;
static pthread_once_t altstack_once = PTHREAD_ONCE_INIT;
static hg_lock_t altstack_lock = HG_LOCK_INIT;
static void *altstack_free; /* stacks of exited threads, linked through their first word */
static __thread int altstack_done;

/* Every stack ever mapped, for hgc_altstack_ranges: pages of entries, newest first. */
#define ALTSTACKS_PER_PAGE (PAGE_BYTES / sizeof(char *) - 2)
struct altstack_page {
	struct altstack_page *next;
	_Atomic size_t n;
	char *mem[ALTSTACKS_PER_PAGE];
};
static struct altstack_page *_Atomic altstacks;

/* Under altstack_lock: lists mem; 0 when no page for the list could be mapped. */
static int altstack_list_locked(char *mem)
{
	struct altstack_page *p = atomic_load_explicit(&altstacks, memory_order_relaxed);
	if (!p || atomic_load_explicit(&p->n, memory_order_relaxed) == ALTSTACKS_PER_PAGE) {
		struct altstack_page *fresh = hg_os_map(sizeof *fresh, 0);
		if (!fresh)
			return 0;
		fresh->next = p;
		atomic_store_explicit(&altstacks, fresh, memory_order_release);
		p = fresh;
	}
	size_t n = atomic_load_explicit(&p->n, memory_order_relaxed);
	p->mem[n] = mem;
	atomic_store_explicit(&p->n, n + 1, memory_order_release);
	return 1;
}

void hgc_altstack_ranges(void (*fn)(uintptr_t lo, uintptr_t hi, void *arg), void *arg)
{
	for (struct altstack_page *p = atomic_load_explicit(&altstacks, memory_order_acquire); p; p = p->next) {
		size_t n = atomic_load_explicit(&p->n, memory_order_acquire);
		for (size_t i = 0; i < n; i++)
			fn((uintptr_t)p->mem[i], (uintptr_t)p->mem[i] + PAGE_BYTES + ALTSTACK_BYTES, arg);
	}
}

/* This thread's stack, while it has one of ours (altstack_key's value, readable before the
 * key is made and from a signal handler). */
static __thread char *thread_altstack;

char *hgc_side_stack(size_t *bytes)
{
	*bytes = ALTSTACK_BYTES;
	return thread_altstack ? thread_altstack + PAGE_BYTES : NULL;
}

/* At thread exit: stop using the stack (unless the program put its own in place) and keep it
 * for the next thread. Later destructors fault on the thread's own stack, still reported. */
static void altstack_release(void *mem)
{
	thread_altstack = NULL;
	stack_t cur;
	if (sigaltstack_next(NULL, &cur) == 0 && cur.ss_sp == (char *)mem + PAGE_BYTES) {
		stack_t off = { .ss_flags = SS_DISABLE };
		sigaltstack_next(&off, NULL);
	}
	hg_lock(&altstack_lock);
	*(void **)((char *)mem + PAGE_BYTES) = altstack_free;
	altstack_free = mem;
	hg_unlock(&altstack_lock);
}

static void altstack_key_create(void)
{
	pthread_key_create(&altstack_key, altstack_release);
}

/* Gives this thread heapguard's alternate stack (its own from before, or one from the pool,
 * or a new one); 0 when none could be mapped or installed. */
static int altstack_install(void)
{
	pthread_once(&altstack_once, altstack_key_create);
	char *mem = thread_altstack;
	if (!mem) {
		hg_lock(&altstack_lock);
		mem = altstack_free;
		if (mem)
			altstack_free = *(void **)(mem + PAGE_BYTES);
		hg_unlock(&altstack_lock);
	}
	if (!mem) {
		/* A guard page below: an overflow of the handler's own stack faults, not corrupts. */
		mem = hg_os_map(PAGE_BYTES + ALTSTACK_BYTES, 0);
		hg_lock(&altstack_lock);
		int listed = mem && altstack_list_locked(mem);
		hg_unlock(&altstack_lock);
		if (!listed) {
			if (mem)
				hg_os_unmap(mem, PAGE_BYTES + ALTSTACK_BYTES);
			return 0;
		}
		hg_os_protect(mem, PAGE_BYTES, 0);
	}
	stack_t ss = { .ss_sp = mem + PAGE_BYTES, .ss_size = ALTSTACK_BYTES };
	if (sigaltstack_next(&ss, NULL) != 0) {
		if (!thread_altstack)
			altstack_release(mem);
		return 0;
	}
	pthread_setspecific(altstack_key, mem);
	thread_altstack = mem;
	return 1;
}

void hgc_signal_thread_init(void)
{
	if (altstack_done)
		return;
	altstack_done = 1; /* first: pthread_setspecific may allocate, and allocation calls us */
	stack_t cur;
	if (sigaltstack_next(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE))
		return; /* the program has its own */
	altstack_install();
}

/* A thread gets its alternate stack as it starts: one that never allocated had none, and its
 * stack overflow killed it unreported (the kernel had no stack to run the handler on). */
struct thread_start {
	void *(*fn)(void *);
	void *arg;
};

static void *thread_start(void *p)
{
	struct thread_start t = *(struct thread_start *)p;
	hg_free(p, "free");
	hgc_signal_thread_init();
	return t.fn(t.arg); /* a tail call: no frame of ours under the thread's */
}

HG_EXPORT int pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
	typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
	static create_fn resolved; /* a constructor's thread may come before our init */
	create_fn next = __atomic_load_n(&resolved, __ATOMIC_ACQUIRE);
	if (!next) {
		*(void **)&next = dlsym(RTLD_NEXT, "pthread_create");
		__atomic_store_n(&resolved, next, __ATOMIC_RELEASE);
	}
	/* From the heap under the checked one: no block of the program's, no stack captured (a
	 * free from our frame took libunwind, whose first use in a thread maps and fills a
	 * cache: 2,000 threads took 1.7 s instead of 0.37). */
	struct thread_start *t = hg_alloc(sizeof *t);
	if (!t)
		return next(thread, attr, fn, arg);
	*t = (struct thread_start){ fn, arg };
	int err = next(thread, attr, thread_start, t);
	if (err)
		hg_free(t, "free");
	return err;
}

/* The program's own alternate stack. Its handlers and ours run on the one installed, and our
 * report of a fault needs more than the classic 8 KiB (SIGSTKSZ), where it overflowed and the
 * fault went unreported: a smaller stack than ours stays the program's view only, and its
 * handlers run on ours. A stack the program malloc'd (vim's) is a block it never wrote, so
 * under --guard-uninit the kernel could not deliver the first fault onto it and killed the
 * program: its pages are made accessible first. */
static __thread stack_t program_stack = { .ss_flags = SS_DISABLE };
static __thread int program_stack_kept; /* program_stack is only the program's view */

/* This thread has an alternate stack of the program's: one it installed, or one kept as its
 * view while ours runs its handlers. */
static int program_has_altstack(void)
{
	stack_t cur;
	if (sigaltstack_next(NULL, &cur) != 0 || (cur.ss_flags & SS_DISABLE))
		return 0;
	if (!thread_altstack || cur.ss_sp != thread_altstack + PAGE_BYTES)
		return 1;
	return program_stack_kept && !(program_stack.ss_flags & SS_DISABLE);
}

HG_EXPORT int sigaltstack(const stack_t *ss, stack_t *old)
{
	stack_t cur;
	if (sigaltstack_next(NULL, &cur) != 0)
		return -1;
	int ours = thread_altstack && cur.ss_sp == thread_altstack + PAGE_BYTES && !(cur.ss_flags & SS_DISABLE);
	if (old) {
		*old = ours ? program_stack : cur;
		if (ours && !program_stack_kept)
			*old = (stack_t){ .ss_flags = SS_DISABLE };
		old->ss_flags |= cur.ss_flags & SS_ONSTACK;
	}
	if (!ss)
		return 0;
	if (cur.ss_flags & SS_ONSTACK) {
		errno = EPERM;
		return -1;
	}
	int disable = ss->ss_flags & SS_DISABLE;
	if (!disable)
		hgc_guard_touch_range(ss->ss_sp, ss->ss_size);
	if (disable || ss->ss_size < ALTSTACK_BYTES) {
		/* The kernel judges the stack (too small: ENOMEM), then ours goes back. */
		if (sigaltstack_next(ss, NULL) != 0)
			return -1;
		program_stack = *ss;
		program_stack_kept = altstack_install();
		return 0;
	}
	program_stack_kept = 0;
	return sigaltstack_next(ss, NULL);
}
