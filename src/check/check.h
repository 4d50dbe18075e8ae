/* check.h — checking mode's data model: block records, fill bytes, stacks, error records. */
#ifndef HG_CHECK_H
#define HG_CHECK_H

#include <stdatomic.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <ucontext.h>

#include "base/util.h"
#include "heapguard.h"

/*
 * Checked block layout (a block of the core allocator, or a guard slot):
 *
 *   core                      user = core + left             user + size        core + core_bytes
 *   | left redzone (>= 16 B)  | the program's bytes          | right redzone (>= 16 B)    |
 *     HGC_REDZONE               HGC_UNINIT_WORD after malloc   HGC_REDZONE
 *                               (zero after calloc),
 *                               HGC_FREED while quarantined
 *
 * The record of each block lives out of band, in an array that hangs off its span (block.c),
 * so an overflow can neither corrupt it nor hide. A freed block keeps its record and stays
 * allocated in the core while it waits in the quarantine; only then is it checked (poison
 * and redzones intact) and given back.
 */
/* malloc'd, not yet written: a read of it is a bug. The word repeats from the block's first
 * byte, so byte i of a block is byte i % 8 of the word (little-endian), and an 8-byte load at
 * an aligned offset reads the word itself. Not one repeated byte: data is full of runs of one
 * value (a light-gray pixel is 0xbe 0xbe 0xbe, binaries hold such runs), and output with a
 * run of the old fill byte 0xbe was taken for never-written bytes (`cat /usr/bin/perl`). No
 * byte of it is ASCII, 0 or 0xff, and each 4 in a row hold one that UTF-8 never has. */
#define HGC_UNINIT_WORD HEAPGUARD_UNINIT_WORD
/* The word, made by hgc_init from two other constants: no object file of the library holds
 * it, since an assembler or linker writing one out (heapguard built under the command) would
 * be writing the word itself, in its place now and then: never-written bytes, by our test. */
extern uint64_t hgc_uninit_word;
static inline unsigned char hgc_uninit_byte(size_t offset)
{
	return (unsigned char)(hgc_uninit_word >> (offset % 8 * 8));
}
#define HGC_FREED 0xdd   /* freed, in quarantine */
#define HGC_REDZONE 0xfa /* around every block */
/* Which fill v is, a word of never-written heap bytes, freed or redzone bytes (HGC_FILL_*),
 * or 0: a pointer the program read from such bytes explains a fault, or a free of an address
 * that is no block's. */
enum { HGC_FILL_UNINIT = 1, HGC_FILL_FREED, HGC_FILL_REDZONE };
int hgc_fill_of(uint64_t v);
#define HGC_REDZONE_BYTES 16u
#define HGC_RIGHT_REDZONE_MAX_BYTES 4096u /* slack of large blocks checked beyond the end */
#define HGC_ALIGN_MAX ((size_t)1 << 30)    /* a larger alignment fails with ENOMEM */

/* ---- libc's copy and fill (see intercept.c's real functions) ----
 * The library exports memcpy, memmove and memset as checking versions, and its own calls
 * would reach them too (a page-map lookup and an own-code test each: 7 % of a malloc loop's
 * time in check mode). Its copies call glibc's by names it does not export (__mempcpy, and
 * bcopy, which is memmove with its arguments swapped; __memcpy_chk and __memmove_chk are
 * ours, for fortified programs). memset has no other name (__memset_chk is ours too): its
 * fills go to glibc's memset as dlsym found it at load, to a byte loop before that. */
void *real_mempcpy(void *, const void *, size_t) __asm__("__mempcpy");
void real_bcopy(const void *, void *, size_t) __asm__("bcopy");
extern HG_HIDDEN void *(*hgc_real_memset)(void *, int, size_t);
static inline void hgc_memset(void *d, int c, size_t n) { hgc_real_memset(d, c, n); }
static inline void hgc_memcpy(void *d, const void *s, size_t n) { real_mempcpy(d, s, n); }
static inline void hgc_memmove(void *d, const void *s, size_t n) { real_bcopy(s, d, n); }

/* heapguard's own work (a report, a record, libunwind's reads) must not become a
 * cancellation point: a thread with a cancel pending that reported an error was cancelled in
 * it, its locks held, and every later report waited for ever. Off while that work runs. */
static inline int hgc_cancel_off(void)
{
	int old;
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
	return old;
}

static inline void hgc_cancel_restore(int old)
{
	pthread_setcancelstate(old, NULL);
}

/* How a block was allocated, so that the matching release can be checked. */
enum hgc_alloc_kind { HGC_BY_MALLOC, HGC_BY_NEW, HGC_BY_NEW_ARRAY };
/* The functions a block can come from, by the names the API passes as `func`: a leak's
 * record names it, for valgrind's suppressions, whose stacks start with it (heap.c). */
#define HGC_ALLOC_CALLS 12
extern const char *const hgc_alloc_calls[HGC_ALLOC_CALLS];
enum hgc_state { HGC_LIVE = 1, HGC_QUARANTINED = 2 };

/* A block's record as the checker reads it: what struct hgc_rec stores, with the fields that
 * follow from where the block sits filled in. */
struct hgc_block {
	char *core;                   /* key: the core block or guard slot */
	char *user;                   /* what the program got */
	size_t size;                  /* bytes the program asked for */
	size_t core_bytes;            /* bytes of the core block (the extent checked) */
	uint32_t alloc_stack, free_stack; /* stack depot ids, 0 = none */
	uint32_t alloc_thread, free_thread;
	uint8_t state;                /* enum hgc_state */
	uint8_t kind;                 /* enum hgc_alloc_kind */
	uint8_t call;                 /* the function it came from: hgc_alloc_calls[call] */
	uint8_t guarded;              /* in a guard slot (guard.c) instead of the core heap */
	uint8_t reported;             /* an overflow of it was reported: say it once */
};

/* The extent of a core block that is checked: the room the allocator gave it, or for a block
 * with much more room, only HGC_RIGHT_REDZONE_MAX_BYTES past its end. */
static inline size_t hgc_core_bytes(size_t left, size_t size, size_t room)
{
	size_t cap = hg_align_up(left + size, 16) + HGC_RIGHT_REDZONE_MAX_BYTES;
	return room < cap ? room : cap;
}

/* A record as stored: 32 bytes, two to a cache line (at 64 they were a third of a
 * malloc-bound program's memory in check mode). core is the record's place (slot i of a span
 * of blocks, or a guard slot) and core_bytes follows from the block's size and the space the
 * allocator gave it (block.c); key tells a record from a stale one of another block. */
struct hgc_rec {
	uint32_t key;                 /* core >> 4, truncated */
	uint32_t left;                /* user - core: a redzone, or an alignment (<= HGC_ALIGN_MAX) */
	uint64_t size : 48;           /* < 2^47: larger requests fail */
	uint64_t state : 2, kind : 2, guarded : 1, reported : 1, call : 4;
	uint32_t alloc_stack, free_stack;
	uint32_t alloc_thread, free_thread;
};

/* ---- block records (block.c) ---- */
/* Copies the record of the block (live or quarantined) whose extent [core, core+core_bytes)
 * holds addr into *out; 0 when addr is in no block heapguard handed out. */
int hgc_lookup(const void *addr, struct hgc_block *out);
/* A use of addr in the old place of a block that realloc moved by its pages, or of a freed
 * block that had a mapping of its own (heap.c): 2 when this use opened the place (*b: the
 * block as its move or free freed it, *freed unless NULL: 1 for a free; the place reads as
 * zeros from then on), 1 when another thread is opening it (retry), 0 when addr is in no such
 * place or the place is open already or could not be opened (a fault there then is no use
 * zeros serve). */
int hgc_vacated_use(const void *addr, struct hgc_block *b, int *freed);
/* The same place's block, whether or not it was used since; 0 when addr is in none. */
int hgc_vacated_block(const void *addr, struct hgc_block *b, int *freed);
extern HG_HIDDEN _Atomic unsigned hgc_vacated_live;
extern HG_HIDDEN _Atomic uintptr_t hgc_vacated_lo, hgc_vacated_hi;
/* 1 when [a, z] may touch such a place: a test for the interceptors' filter, for accesses too
 * long to have an end in one (the page map names the places). */
static inline int hgc_vacated_near(uintptr_t a, uintptr_t z)
{
	return unlikely(atomic_load_explicit(&hgc_vacated_live, memory_order_relaxed)) &&
	       a < atomic_load_explicit(&hgc_vacated_hi, memory_order_relaxed) &&
	       z >= atomic_load_explicit(&hgc_vacated_lo, memory_order_relaxed);
}
/* Checks an access of n bytes at p made by an intercepted function `func` (is_write: 1 for a
 * store); reports heap-buffer-overflow or heap-use-after-free when it leaves a live block or
 * touches a freed one. Accesses outside the heap are not its business. */
void hgc_check_access(const void *p, size_t n, int is_write, const char *func);
/* Marks the block's overflow as reported, so that its broken redzone is not reported again. */
void hgc_mark_reported(const char *core);
/* Calls fn on each block whose state is in `states` (bits 1 << HGC_LIVE, 1 << HGC_QUARANTINED),
 * in the order of the records (by span, then address), from *at on (zeroed: from the start),
 * until fn returns 0; returns 1 then, with *at where to go on. The table's locks are held
 * during the calls: fn must not allocate nor call back into heapguard. */
struct hgc_foreach_at {
	struct array *array; /* block.c's record array walked (NULL: the first) */
	uint32_t i;          /* the record in it, or in the guard class */
	unsigned guards;     /* 0: in the arrays; k + 1: in guard class k */
};
typedef int (*hgc_foreach_fn)(const struct hgc_block *b, void *arg);
int hgc_blocks_foreach(hgc_foreach_fn fn, void *arg, unsigned states, struct hgc_foreach_at *at);
/* Calls fn on each range of memory that holds block records and nothing else (block.c's
 * pools, guard.c's table): no pointer of the program's is there. */
void hgc_record_ranges(void (*fn)(uintptr_t lo, uintptr_t hi, void *arg), void *arg);
/* Number of live blocks and their bytes. */
void hgc_blocks_in_use(size_t *blocks, size_t *bytes);
/* Allocations, frees and bytes allocated since the start. */
void hgc_blocks_totals(size_t *allocs, size_t *frees, size_t *bytes);

/* ---- guard slots (guard.c): a sampled block on its own pages against a PROT_NONE page ---- */
/* A guard slot for n bytes aligned to align, or NULL when not sampled or out of budget;
 * fills *b's core, user, core_bytes, guarded. */
int hgc_guard_alloc(size_t n, size_t align, int untouched, struct hgc_block *b);
/* guard_uninit: the slot holding addr, if still untouched, made read-write and filled like a
 * new block. 2: this call did it; 1: another thread did meanwhile (the access is retried, but
 * once: a second fault there meets the program's own protection); 0: addr is in no untouched
 * slot. Async-signal-safe: the SIGSEGV handler calls it on a block's first use. */
int hgc_guard_touch(const void *addr) __attribute__((access(none, 1)));
/* The same for the slots holding the first and the last byte of [p, p+n): an intercepted call
 * uses the range, and the kernel must not meet an inaccessible page there (EFAULT). */
void hgc_guard_touch_range(const void *p, size_t n) __attribute__((access(none, 1)));
/* 1 while b is a guarded block never used yet (its slot's pages are inaccessible). */
int hgc_guard_untouched(const struct hgc_block *b);
/* Fills a new block's redzones with HGC_REDZONE and, unless zero, its bytes (the first 2 MiB
 * of them) with HGC_UNINIT_WORD. */
void hgc_fill_block(const struct hgc_block *b, int zero);
/* Makes the slot inaccessible (it waits in the quarantine like any freed block). */
void hgc_guard_retire(const struct hgc_block *b);
/* Gives the slot back for reuse, when it leaves the quarantine. */
void hgc_guard_release(const struct hgc_block *b);
/* The slot holding addr, or NULL: the key for hgc_lookup's table. */
char *hgc_guard_slot_of(const void *addr);
/* The record of the guard slot starting at slot (block.c's) and in *bytes the slot's size, or
 * NULL when slot is none. */
struct hgc_rec *hgc_guard_record(const char *slot, size_t *bytes);
/* guard.c's table of records and slot states, mapped once; 0 before the first guarded block. */
int hgc_guard_table(uintptr_t *lo, uintptr_t *hi);
/* Guard class k's records; in *n how many slots it ever used, in *slot0 the first slot, in
 * *stride the distance between slots and in *bytes a slot's size. NULL past the last class
 * or before the first guarded block. */
struct hgc_rec *hgc_guard_records(unsigned k, uint32_t *n, char **slot0, size_t *stride, size_t *bytes);

/* ---- stacks (stack.c) ---- */
/* Captures the caller's stack without heapguard's own frames and stores it once in the depot;
 * returns its id (0 when capture is off or failed). For a malloc or free entered from the
 * program, `slot` is the exported function's return-address slot (HGC_SLOT), under which
 * stack.c caches the stack; NULL elsewhere (reports). */
uint32_t hgc_stack_capture(const uintptr_t *slot);
/* The same for the stack of a saved context: one a signal interrupted (signal_frame 1: its
 * first frame is the interrupted instruction), or one getcontext or swapcontext saved. */
uint32_t hgc_stack_capture_context(const ucontext_t *uc, int signal_frame);
/* Calls fn on each table of the stack cache: its entries keep words of the program's stacks
 * (the registers its frames saved among them), which are no roots for the leak check. */
void hgc_stack_cache_ranges(void (*fn)(uintptr_t lo, uintptr_t hi, void *arg), void *arg);
/* fork: the depot's lock is held across it; the child starts its stack cache cold, so that a
 * short-lived child does not copy the parent's cache pages by writing to them. */
void hgc_stack_fork_prepare(void);
void hgc_stack_fork_parent(void);
void hgc_stack_fork_child(void);
/* The rule of the frame that return address pc returns into, at that call (cfi.c, from its
 * .eh_frame): the frame's address is rsp (the stack pointer at the call) or rbp (the frame
 * pointer's value there) plus HGC_RULE_CFA_OFF bytes; with HGC_RULE_RBP_SAVED the caller's rbp
 * is saved HGC_RULE_RBP_BELOW bytes below that address, else rbp is the caller's too;
 * HGC_RULE_LAST: the outermost frame. 0: not known, or a frame this cannot follow. */
uint64_t hgc_frame_rule(uintptr_t pc);
#define HGC_RULE_KNOWN 1u
#define HGC_RULE_CFA_RBP 2u
#define HGC_RULE_LAST ((uint64_t)1 << 30) /* the outermost frame: it has no caller */
#define HGC_RULE_RBP_SAVED ((uint64_t)1 << 31)
#define HGC_RULE_CFA_OFF(v) ((uint32_t)((v) >> 2) & ((1u << 28) - 1))
#define HGC_RULE_RBP_BELOW(v) ((uint32_t)((v) >> 32))
/* The return-address slot of the function this is expanded in (of the exported function an
 * always-inline helper is inlined into), its stack's first frame. The function gets a frame
 * pointer for it, so the word below the slot holds its caller's rbp; HGC_KEEP_FRAME after the
 * call that passes the slot keeps that frame (no tail call) while stack.c reads it. */
#define HGC_SLOT ((const uintptr_t *)__builtin_frame_address(0) + 1)
#define HGC_KEEP_FRAME() __asm__ volatile("" ::: "memory")
/* Copies up to max return addresses of stack `id`; returns how many. */
int hgc_stack_get(uint32_t id, uintptr_t *pcs, int max);
/* The calling thread's number: 1 for the main thread, then 2, 3... in order of first use. */
uint32_t hgc_thread_id(void);
/* 1 when the stack's first frame lies in the main program's executable, not in a library. */
int hgc_stack_from_program(uint32_t id);
/* 1 while this thread is inside the unwinder: an allocation then is the unwinder's own. */
int hgc_stack_capturing(void);
/* 1 when ret, a return address, lies in libunwind's code during a capture: a call it made. */
int hgc_from_unwinder(const void *ret);
/* 1 when pc lies in heapguard's own code (stack capture drops such frames). */
int hgc_is_own_pc(uintptr_t pc);

/* ---- errors (report.c) ---- */
struct hg_buf;
/* Starts a report line: "==PID== ". */
void hgc_line_start(struct hg_buf *b);
struct hgc_error {
	const char *kind;      /* stable id: heap-buffer-overflow, heap-use-after-free, double-free,
				  invalid-free, alloc-dealloc-mismatch, uninitialized-read,
				  invalid-access, allocation-size-too-big, param-overlap */
	const char *access;    /* "read", "write", "free", "realloc", or NULL */
	const char *func;      /* the API or intercepted call, or NULL */
	uintptr_t addr;        /* the bad address; 0 for a request (a func, no access) */
	size_t size;           /* bytes accessed (0: unknown, or a free); for a request
				  (allocation-size-too-big), the bytes asked for */
	uint32_t stack;        /* where it happened; 0: captured by hgc_report itself */
	uint32_t thread;       /* the thread of `stack` when another one reports it; 0: this one */
	uint32_t place;        /* with kind and stack, what tells contexts apart: the allocation
				  stack of a block whose damage was found later (its frees may share
				  one line, its writes did not) or that was freed badly (two static
				  destructors' tail calls to delete share a stack); 0: nothing */
	int has_block;
	struct hgc_block block; /* the block it concerns, when has_block */
	const char *detail;    /* one more line, or NULL */
	int fault;             /* raised by a fault (signal.c) */
	int interrupted;       /* `stack` starts at an instruction a signal interrupted, not at a
				  return address: the command looks it up as it is, not the call
				  before it */
	const ucontext_t *context; /* a fault's: `stack` is captured from it, on the report's
				      own stack (a thread of 16 KiB has no room for libunwind) */
};
/* Prints the error (one report at a time, never allocating) and counts it; the same kind
 * from the same place is shown once and counted. Honours abort_on_error. */
/* 1 while this thread is inside an interceptor's check (intercept.c). */
int hgc_intercept_busy(void);
/* Ends the process now, without the checks at exit (the program's _exit runs them). */
void hgc_exit_now(int status) __attribute__((noreturn));
void hgc_report(struct hgc_error *e);
/* Errors reported and distinct contexts, for the summary at exit. */
void hgc_error_counts(size_t *errors, size_t *contexts);
/* Writes "    #N 0xPC in function (module+0xOFF)" lines for stack id. */
void hgc_print_stack(uint32_t id);

/* ---- the record stream for the command (records.c, format in records.h) ---- */
void hgc_records_init(void);
/* 1 when the command collects records: then no text report is printed. */
int hgc_records_on(void);
/* Turns the records off once the command has ended (it removes their file): a process that
 * outlives it, a daemon or a job left in the background, then reports on its own stderr as
 * the library preloaded alone does. Asked before each new report and at exit. */
void hgc_records_check_reader(void);
void hgc_record_error(const struct hgc_error *e, uint32_t thread);
void hgc_record_count(const char *kind, const char *access, uint32_t stack, uint32_t place, size_t count);
void hgc_record_leak(const char *kind, size_t bytes, size_t blocks, uint32_t stack, const char *call);
/* A summary record: type "H" or "X" and its n numbers (records.h). */
void hgc_record_numbers(const char *type, const uint64_t *v, int n);
void hgc_records_fork_child(void);
/* Before an exec: the A record naming the program (absolute, or as given) and whether envp,
 * its environment, sends its records to another heapguard command; NULL after the exec
 * failed (this image goes on). Touches nothing a vfork parent shares but the lock. */
void hgc_record_exec(const char *program, char *const envp[]);
/* After posix_spawn: the B record naming the child, its program, and the same. */
void hgc_record_spawn(int child, const char *program, char *const envp[]);
/* Takes heapguard out of the environment the program's exec'd children inherit. */
void hgc_untrace_children(void);
/* At exit: the counts of contexts seen more than once, as C records. */
void hgc_report_counts(void);

/* ---- the checked heap (heap.c): what api/ calls in the check build ---- */
/* This thread is inside the checked heap (or a check that holds its locks): a signal handler
 * that interrupted it must not wait for them (heap.c). */
extern HG_HIDDEN __thread int hgc_in_heap;
/* A signal that ends the process came while this thread was inside the heap or a check: the
 * checks at exit, then the signal's default action, wait for the call to return (heap.c). */
extern HG_HIDDEN __thread int hgc_ending_signal;
/* The checks at exit (when they may run in this process), then sig's default action; inside
 * the heap or a check, after it. uc: the context the signal interrupted (NULL: the caller's). */
void hgc_end_by_signal(int sig, const ucontext_t *uc);
/* The checks at exit before a fault's default action ends the process, where they may run. */
void hgc_checks_before_fault(int sig, const ucontext_t *uc);
/* No checks at exit from now on (abort_on_error's abort). */
void hgc_no_checks_at_exit(void);
void *hgc_alloc(size_t n, size_t align, int zero, enum hgc_alloc_kind kind, const char *func,
		const uintptr_t *slot);
/* sized: the size a sized operator delete was given, which must be the block's (0: none). */
void hgc_free(void *p, enum hgc_alloc_kind kind, size_t sized, const char *func, const uintptr_t *slot);
void *hgc_realloc(void *p, size_t n, const uintptr_t *slot);
/* The requested size of the live block at p (0 when p is not one): programs that trust
 * malloc_usable_size then never write into the redzone. */
size_t hgc_usable_size(const void *p);
/* Called by the first allocation's init (api/init.c): nothing may allocate. */
void hgc_init(void);
void hgc_fork_prepare(void);
void hgc_fork_parent(void);
void hgc_fork_child(void);
/* A program that replaces operator new or delete itself, with malloc and free inside as the
 * standard allows, mixes them with ours: its new's blocks reach our delete as malloc's. Then
 * malloc's and new's blocks may be released either way (new's and new[]'s still not). Once
 * the program's modules are loaded; dlsym may allocate. */
void hgc_new_delete_init(void);

/* ---- leaks (leak.c) ---- */
/* The conservative scan from the roots; prints the leak report. Returns bytes definitely and
 * indirectly lost. */
size_t hgc_leak_check(int at_exit);
/* The leak groups the last full check found that count as errors (definitely or indirectly
 * lost). */
size_t hgc_leak_error_contexts(void);
/* For the checks run on a stack of their own (heap.c): this thread's stack is scanned from
 * uc's stack pointer and its registers are roots; [lo, hi) and [lo2, hi2) are not (that stack,
 * a signal handler's frames). NULL: the caller's own again. */
void hgc_leak_roots(const ucontext_t *uc, uintptr_t lo, uintptr_t hi, uintptr_t lo2, uintptr_t hi2);

/* ---- libc interceptors (intercept.c) ---- */
/* Resolves the libc functions behind the interceptors; called once the heap works. */
void hgc_intercept_init(void);
/* The same for the system-call wrappers of syscalls.c. */
void hgc_syscalls_init(void);
/* n bytes at p that `func` may write, a fill or the system call behind it (syscalls.c):
 * reported when they run off their block or into a freed one. ret: the caller's return
 * address. */
void hgc_check_write(void *p, size_t n, const char *func, const void *ret);
/* A buffer of n bytes that the system call behind `func` sends out: checked as write()'s is,
 * for bytes outside its block and bytes never written. */
void hgc_check_kernel_read(const void *p, size_t n, const char *func, const void *ret);

/* ---- faults (signal.c) ---- */
/* Installs the SIGSEGV/SIGBUS reporter (chaining to the program's own handlers), and the
 * handler that runs the checks at exit before a signal ends the process (SIGTERM, SIGINT...)
 * where the program leaves that signal's default action. */
void hgc_signal_init(void);
/* Ends the process by sig's default action, now. */
void hgc_die_of(int sig) __attribute__((noreturn));
/* Gives the calling thread an alternate signal stack; stack.c calls it on a thread's first
 * allocation, so that a stack overflow is still reported. */
void hgc_signal_thread_init(void);
/* The calling thread's alternate signal stack of heapguard's (NULL: none), for work that
 * needs more stack than the one the thread runs on (stack.c); *bytes its size. */
char *hgc_side_stack(size_t *bytes);
/* Calls fn on each alternate signal stack heapguard gave a thread: the signal frames left on
 * them hold stale register values, which are no roots for the leak check. */
void hgc_altstack_ranges(void (*fn)(uintptr_t lo, uintptr_t hi, void *arg), void *arg);

/* Set once init is done; before that the interceptors pass straight through. */
extern int hgc_ready;

#endif
