/* records.c — writes the record stream of records.h for the heapguard command (raw addresses
 * and module offsets, one line per write(2), as things happen), and reads what it hands down. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/fmt.h"
#include "base/lock.h"
#include "base/options.h"
#include "check/check.h"
#include "check/records.h"
#include "check/symbols.h"
#include "os/os.h"

#define STACK_BITS (1u << 22) /* stack ids the "already written" bitmap covers */

static char path[4096];
static int fd = -1;
static dev_t fd_dev;  /* what fd must still be: a program may close every descriptor and */
static ino_t fd_ino;  /* open its own files, which then get our old number */
static pid_t written_pid;   /* the process the "already written" sets below belong to */
static uint64_t modules_written[HGC_MAX_MODULES / 64];
static uint64_t *stacks_written; /* bitmap by stack id, mapped at init */
static hg_lock_t records_lock = HG_LOCK_INIT;

/* The lock, with the thread's cancellation off while it is held: a write is a cancellation
 * point, and a thread cancelled in one held the lock for ever (the next record waited). */
static int records_lock_take(void)
{
	int cs = hgc_cancel_off();
	hg_lock(&records_lock);
	return cs;
}

static void records_lock_give(int cs)
{
	hg_unlock(&records_lock);
	hgc_cancel_restore(cs);
}
/* No high descriptor to be had (RLIMIT_NOFILE under 216): the file is opened for each write
 * and closed after, so that the program does not find a number it counts on taken (under
 * `ulimit -n 4` its open() of a file failed). */
static int transient;

/* Opens the records file again by its absolute path (no chdir() changes it), on a high
 * close-on-exec descriptor; fd is -1 when that fails (the command removed the file and its
 * directory as it ended). */
static void reopen(void)
{
	unsigned long links;
	int low = hg_os_open_append(path);
	fd = low < 0 ? -1 : hg_os_private_fd(low);
	if (fd != low)
		hg_os_close(low);
	else if (fd >= 0)
		transient = 1;
	if (fd >= 0 && !hg_os_file_id(fd, &fd_dev, &fd_ino, &links)) {
		hg_os_close(fd);
		fd = -1;
	}
}

/* Closes the file again when it is opened for each write. */
static void done_locked(void)
{
	if (transient && fd >= 0) {
		hg_os_close(fd);
		fd = -1;
	}
}

/* 1 while the command reads the file: fd is ours (opened again when the program closed or
 * reused it) and the file still has its name, which the command removes as it ends. */
static int reader_there_locked(void)
{
	dev_t dev;
	ino_t ino;
	unsigned long links = 0;
	if (fd < 0 || !hg_os_file_id(fd, &dev, &ino, &links) || dev != fd_dev || ino != fd_ino) {
		reopen();
		links = 1;
	}
	return fd >= 0 && links > 0;
}

static int records_on;
static void begin_process_locked(void);

int hgc_records_on(void)
{
	return records_on;
}

void hgc_records_check_reader(void)
{
	if (!records_on)
		return;
	int cs = records_lock_take();
	records_on = reader_there_locked();
	done_locked();
	records_lock_give(cs);
}

void hgc_records_init(void)
{
	const char *p = hg_os_getenv(HG_RECORDS_ENV);
	if (!p || !*p || p[0] != '/' || strlen(p) >= sizeof path)
		return;
	strcpy(path, p);
	stacks_written = hg_os_map(STACK_BITS / 8, 0);
	if (stacks_written)
		reopen();
	records_on = fd >= 0;
	/* The P record at load, not with the first report: the command tells a process that
	 * was checked and reported nothing from one that the library never ran in. */
	if (records_on) {
		int cs = records_lock_take();
		begin_process_locked();
		records_lock_give(cs);
	}
}

/* Removes entry (one of the ':'- or ' '-separated items) from list, in place. */
static void remove_item(char *list, const char *entry)
{
	size_t n = strlen(entry);
	for (char *p = list; *p;) {
		size_t len = strcspn(p, ": ");
		if (len == n && !strncmp(p, entry, n)) {
			char *next = p + len + (p[len] != 0);
			memmove(p, next, strlen(next) + 1);
			continue;
		}
		p += len + (p[len] != 0);
	}
}

/* The slot of environ that holds the variable prefix followed by name, or NULL. */
static char **env_slot(const char *prefix, const char *name)
{
	size_t p = strlen(prefix), n = strlen(name);
	for (char **e = environ; e && *e; e++)
		if (!strncmp(*e, prefix, p) && !strncmp(*e + p, name, n) && (*e)[p + n] == '=')
			return e;
	return NULL;
}

/* Takes a slot out of environ, as unsetenv does. */
static void env_drop(char **slot)
{
	for (; *slot; slot++)
		slot[0] = slot[1];
}

/* Preloaded by hand, with no values handed down: this library out of LD_PRELOAD, the
 * others emptied. */
static void untrace_by_hand(const char *name)
{
	Dl_info self;
	char *v = getenv(name);
	if (v && strcmp(name, "LD_PRELOAD") != 0)
		*v = 0;
	else if (v && dladdr((void *)hgc_untrace_children, &self) && self.dli_fname)
		remove_item(v, self.dli_fname);
}

/* trace_children=0: the programs this one executes run unchecked, in the environment the user
 * gave the command (records.h). environ is edited in place (setenv would allocate, and this
 * runs inside the first malloc); a fork child keeps this process's heap, so it stays checked. */
void hgc_untrace_children(void)
{
	static const char *const NAMES[] = HG_USER_ENV_NAMES;
	for (unsigned i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++) {
		char **saved = env_slot(HG_USER_ENV_PREFIX, NAMES[i]);
		if (!saved) {
			untrace_by_hand(NAMES[i]);
			continue;
		}
		size_t n = strlen(NAMES[i]);
		char *entry = *saved + strlen(HG_USER_ENV_PREFIX) + n + 1; /* "NAME=value" or "" */
		char **ours = env_slot("", NAMES[i]);
		if (ours)
			env_drop(ours);
		saved = env_slot(HG_USER_ENV_PREFIX, NAMES[i]); /* it moved down if ours came first */
		if (!strncmp(entry, NAMES[i], n) && entry[n] == '=')
			*saved = entry;
		else
			env_drop(saved); /* the user had none */
	}
}

/* A number field: " N". */
static void put_dec(struct hg_buf *l, uint64_t v)
{
	hg_buf_str(l, " ");
	hg_buf_dec(l, v);
}

/* An address field: " 0xN". */
static void put_hex(struct hg_buf *l, uint64_t v)
{
	hg_buf_str(l, " ");
	hg_buf_hex(l, v);
}

/* A string field: escaped as records.h says, "-" when absent. */
static void put_str(struct hg_buf *l, const char *s)
{
	hg_buf_str(l, " ");
	if (!s || !*s) {
		hg_buf_str(l, "-");
		return;
	}
	for (; *s && l->len + 3 <= sizeof l->text; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '%' || c < 0x21 || c >= 0x7f) {
			l->text[l->len++] = '%';
			l->text[l->len++] = "0123456789ABCDEF"[c >> 4];
			l->text[l->len++] = "0123456789ABCDEF"[c & 15];
		} else {
			l->text[l->len++] = (char)c;
		}
	}
}

static void start(struct hg_buf *l, const char *type)
{
	l->len = 0;
	hg_buf_str(l, type);
	put_dec(l, (uint64_t)getpid());
}

/* Ends and writes the line, to our file only: records are rare (a new error context, the
 * summaries), so checking the descriptor's identity each time costs nothing that matters. */
static void emit(struct hg_buf *l)
{
	if (l->len == sizeof l->text)
		l->len--; /* a cut line still ends */
	l->text[l->len++] = '\n';
	/* A record that cannot be written (a file size limit the program set, a full disk):
	 * this process reports on its own from then on. */
	if (reader_there_locked() && !hg_os_write(fd, l->text, l->len))
		records_on = 0;
	done_locked();
}

/* Records are per process: after fork the child starts its own sets (and its P record). */
static void begin_process_locked(void)
{
	pid_t pid = getpid();
	if (pid == written_pid)
		return;
	if (written_pid) /* a fork child: the parent's sets are not ours. Handed back, the pages
			  * read zero: clearing them copied 512 KiB in each child (0.3 ms a fork) */
		hg_os_purge(stacks_written, STACK_BITS / 8);
	written_pid = pid;
	memset(modules_written, 0, sizeof modules_written);
	char exe[1024];
	hg_os_exe_path(exe, sizeof exe);
	struct hg_buf l;
	start(&l, "P");
	put_dec(&l, (uint64_t)getppid());
	put_str(&l, exe);
	emit(&l);
}

static void write_stack_locked(uint32_t id)
{
	if (!id || id >= STACK_BITS || (stacks_written[id / 64] >> (id % 64) & 1))
		return;
	stacks_written[id / 64] |= 1ull << (id % 64);
	uintptr_t pcs[64], offs[64];
	int mods[64];
	int n = hgc_stack_get(id, pcs, 64);
	for (int i = 0; i < n; i++) {
		const char *mpath = NULL;
		mods[i] = hgc_module_of(pcs[i], &offs[i], &mpath);
		if (mods[i] >= 0 && !(modules_written[mods[i] / 64] >> (mods[i] % 64) & 1)) {
			modules_written[mods[i] / 64] |= 1ull << (mods[i] % 64);
			struct hg_buf m;
			start(&m, "M");
			put_dec(&m, (uint64_t)mods[i]);
			put_str(&m, mpath);
			emit(&m);
		}
	}
	struct hg_buf l;
	start(&l, "S");
	put_dec(&l, id);
	for (int i = 0; i < n; i++) {
		put_hex(&l, pcs[i]);
		hg_buf_str(&l, ":");
		if (mods[i] < 0)
			hg_buf_str(&l, "-1");
		else
			hg_buf_dec(&l, (uint64_t)mods[i]);
		hg_buf_str(&l, ":");
		hg_buf_hex(&l, mods[i] < 0 ? 0 : offs[i]);
	}
	emit(&l);
}

void hgc_record_error(const struct hgc_error *e, uint32_t thread)
{
	const struct hgc_block *b = &e->block;
	int cs = records_lock_take();
	begin_process_locked();
	write_stack_locked(e->stack);
	if (e->has_block) {
		write_stack_locked(b->alloc_stack);
		write_stack_locked(b->free_stack);
	}
	struct hg_buf l;
	start(&l, "E");
	put_str(&l, e->kind);
	put_str(&l, e->access);
	put_str(&l, e->func);
	put_hex(&l, e->addr);
	put_dec(&l, e->size);
	put_dec(&l, thread);
	put_dec(&l, e->stack);
	put_dec(&l, e->place);
	put_str(&l, e->detail);
	put_dec(&l, (uint64_t)e->has_block | (e->context || e->interrupted ? 2 : 0)); /* 2: a fault's stack */
	if (e->has_block) {
		put_hex(&l, (uintptr_t)b->user);
		put_dec(&l, b->size);
		put_dec(&l, b->alloc_thread);
		put_dec(&l, b->alloc_stack);
		put_dec(&l, b->free_thread);
		put_dec(&l, b->free_stack);
	}
	emit(&l);
	records_lock_give(cs);
}

void hgc_record_count(const char *kind, const char *access, uint32_t stack, uint32_t place, size_t count)
{
	int cs = records_lock_take();
	begin_process_locked();
	struct hg_buf l;
	start(&l, "C");
	put_str(&l, kind);
	put_str(&l, access);
	put_dec(&l, stack);
	put_dec(&l, place);
	put_dec(&l, count);
	emit(&l);
	records_lock_give(cs);
}

void hgc_record_leak(const char *kind, size_t bytes, size_t blocks, uint32_t stack, const char *call)
{
	int cs = records_lock_take();
	begin_process_locked();
	write_stack_locked(stack);
	struct hg_buf l;
	start(&l, "L");
	put_str(&l, kind);
	put_dec(&l, bytes);
	put_dec(&l, blocks);
	put_dec(&l, stack);
	put_str(&l, call);
	emit(&l);
	records_lock_give(cs);
}

/* n numbers after the type and pid: the H and X summaries. */
void hgc_record_numbers(const char *type, const uint64_t *v, int n)
{
	int cs = records_lock_take();
	begin_process_locked();
	struct hg_buf l;
	start(&l, type);
	for (int i = 0; i < n; i++)
		put_dec(&l, v[i]);
	emit(&l);
	records_lock_give(cs);
}

/* The lock, for the exec and spawn records: a signal handler may exec while its thread
 * writes a record. Never waits long: the record is then left out, and the program goes
 * unmentioned rather than the process hanging. */
static int lock_briefly(int *cs)
{
	*cs = hgc_cancel_off();
	for (int i = 0; i < 1000; i++) {
		if (hg_trylock(&records_lock))
			return 1;
		sched_yield();
	}
	hgc_cancel_restore(*cs);
	return 0;
}

/* Whether envp names a records file other than this process's: a heapguard command run
 * inside the checked program (heapguard make check, whose tests run under heapguard) set it
 * for the programs it checks, and reports them itself. An empty value is trace_children=0's. */
static int records_elsewhere(char *const envp[])
{
	static const char KEY[] = HG_RECORDS_ENV "=";
	for (size_t i = 0; envp && envp[i]; i++)
		if (strncmp(envp[i], KEY, sizeof KEY - 1) == 0)
			return envp[i][sizeof KEY - 1] == '/' && strcmp(envp[i] + sizeof KEY - 1, path) != 0;
	return 0;
}

void hgc_record_exec(const char *program, char *const envp[])
{
	if (!records_on)
		return; /* trace_children=0 too: the command says the program's last ran unchecked */
	/* No begin_process_locked: in a vfork child it would rewrite the parent's sets. The
	 * command makes up the image of a pid whose first record this is. */
	char exe[1024]; /* a fork child wrote no P record: what it was is said here */
	exe[0] = 0;
	if (program)
		hg_os_exe_path(exe, sizeof exe);
	int cs;
	if (!lock_briefly(&cs))
		return;
	struct hg_buf l;
	start(&l, "A");
	put_str(&l, program);
	put_str(&l, exe);
	put_dec(&l, program && records_elsewhere(envp));
	emit(&l);
	records_lock_give(cs);
}

void hgc_record_spawn(int child, const char *program, char *const envp[])
{
	int cs;
	if (!records_on || !hg_opt.trace_children || !lock_briefly(&cs))
		return;
	begin_process_locked();
	struct hg_buf l;
	start(&l, "B");
	put_dec(&l, (uint64_t)child);
	put_str(&l, program);
	put_dec(&l, records_elsewhere(envp));
	emit(&l);
	records_lock_give(cs);
}

/* The child's P record at once, not with its first report: the command then knows of a
 * child that outlives the program (a daemon forks and its parent exits). */
void hgc_records_fork_child(void)
{
	hg_lock_reset(&records_lock);
	if (!records_on)
		return;
	int cs = records_lock_take();
	begin_process_locked();
	records_lock_give(cs);
}
