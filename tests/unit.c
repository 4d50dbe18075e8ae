/* unit.c — unit tests of internal modules: the size-class table, the central heap's decay, the
 * options parser, the formatter, the frame sizes read from call frame information, the files
 * named in /proc/self/maps. */
#include "util.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc/sizeclass.h"
#include "alloc/span.h"
#include "base/fmt.h"
#include "base/options.h"
#include "check/check.h"
#include "os/os.h"

/* Every request size maps to the smallest class that holds it. */
static void test_size_class_is_smallest_fit(void **state)
{
	(void)state;
	for (size_t n = 0; n <= HG_SMALL_MAX_BYTES; n++) {
		unsigned c = hg_size_class(n);
		assert_true(c < HG_NCLASSES);
		assert_true(hg_classes[c].size >= n);
		if (c > 0)
			assert_true(hg_classes[c - 1].size < n);
	}
	assert_int_equal(hg_classes[HG_NCLASSES - 1].size, HG_SMALL_MAX_BYTES);
}

/* 16-byte aligned sizes, growing, wasting at most 1/9 of a block above 128 bytes. */
static void test_size_classes_shape(void **state)
{
	(void)state;
	for (unsigned c = 0; c < HG_NCLASSES; c++) {
		uint32_t size = hg_classes[c].size;
		assert_int_equal(size % 16, 0);
		if (c > 0)
			assert_true(size > hg_classes[c - 1].size);
		if (c > 0 && size > 128) {
			uint32_t worst = size - (hg_classes[c - 1].size + 1); /* bytes unused by the smallest fit */
			assert_true((uint64_t)worst * 9 <= size);
		}
	}
}

/* Each class's span holds `count` blocks, at most 4096, and wastes at most 1/32 of itself. */
static void test_span_shapes(void **state)
{
	(void)state;
	for (unsigned c = 0; c < HG_NCLASSES; c++) {
		const struct hg_class *k = &hg_classes[c];
		size_t span = (size_t)k->slices * HG_SLICE_BYTES;
		assert_true(k->count >= 1 && k->count <= HG_SPAN_MAX_SLOTS);
		assert_int_equal(k->count, span / k->size);
		/* at most 4 slices, so that spans fit the holes freed spans leave in an arena;
		 * the span's tail past its last block is at most a quarter of it */
		assert_true(k->slices >= 1 && k->slices <= 4);
		assert_true((span - (size_t)k->count * k->size) * 4 <= span);
	}
}

/* A freed run of slices goes back to the OS decay_ms to twice that after its free, while its
 * arena keeps taking and freeing other spans: a time of the arena's last free, renewed by each,
 * kept the run resident for good. The central heap runs here on its own, its first arena
 * cut into 16 + 16 + 28 slices and a last run of 4 that comes and goes. */
static void test_decay_in_a_busy_arena(void **state)
{
	enum { MiB = 1 << 20, BUSY = 4 * 65536 };
	(void)state;
	hg_opt.decay_ms = 100;
	struct hg_span *freed = hg_medium_new(MiB), *kept = hg_medium_new(MiB);
	struct hg_span *rest = hg_medium_new(28 * 65536), *busy = hg_medium_new(BUSY);
	assert_true(freed && kept && rest && busy);
	assert_true(kept->arena == freed->arena && rest->arena == freed->arena);
	assert_true(busy->arena == freed->arena);
	char *start = freed->start, *busy_start = busy->start;
	memset(start, 1, MiB);
	memset(busy_start, 1, BUSY);
	hg_span_release(freed, 0);
	hg_span_release(busy, 0);
	assert_int_equal(tu_resident_pages(start, MiB), MiB / 4096);
	uint64_t t0 = hg_os_now_ms(), waited = 0;
	while (tu_resident_pages(start, MiB) && waited < 2000) {
		busy = hg_medium_new(BUSY);
		assert_non_null(busy);
		assert_ptr_equal(busy->start, busy_start); /* its own place: the best fit */
		memset(busy->start, 2, 4096);
		hg_span_release(busy, 0); /* runs the decay every 100 ms */
		usleep(5000);
		waited = hg_os_now_ms() - t0;
	}
	assert_int_equal(tu_resident_pages(start, MiB), 0);
	assert_true(waited >= 100); /* not before decay_ms */
	hg_span_release(kept, 0);
	hg_span_release(rest, 0);
	hg_opt.decay_ms = 1000;
}

/* A new span takes freed slices whose pages are still resident before clean ones: best fit
 * alone took the first of two holes of the same length, purged, and touched its pages while
 * the other's stayed resident beside it. */
static void test_dirty_slices_serve_first(void **state)
{
	enum { RUN = 16 * 65536 };
	struct hg_span *s[4];
	(void)state;
	hg_central_purge(1); /* whole free arenas go: a fresh one for the spans below */
	for (int i = 0; i < 4; i++) {
		s[i] = hg_medium_new(RUN);
		assert_non_null(s[i]);
		memset(s[i]->start, 1, RUN);
	}
	for (int i = 1; i < 4; i++)
		assert_true(s[i]->arena == s[0]->arena && s[i]->start == s[i - 1]->start + RUN);
	char *clean = s[0]->start, *dirty = s[2]->start;
	hg_span_release(s[0], 0);
	hg_central_purge(1);
	hg_span_release(s[2], 0);
	assert_int_equal(tu_resident_pages(clean, RUN), 0);
	struct hg_span *next = hg_medium_new(RUN);
	assert_non_null(next);
	assert_ptr_equal(next->start, dirty);
	hg_span_release(next, 0);
	hg_span_release(s[1], 0);
	hg_span_release(s[3], 0);
	hg_central_purge(1);
}

/* Runs the parser with its warnings captured; returns what it wrote. */
static const char *parse_capturing(const char *text)
{
	static char out[4096];
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	int saved = dup(2); /* messages go to stderr: this binary never moves them */
	dup2(fds[1], 2);
	close(fds[1]);
	hg_options_parse(text);
	dup2(saved, 2);
	close(saved);
	ssize_t n = read(fds[0], out, sizeof out - 1);
	close(fds[0]);
	out[n > 0 ? n : 0] = '\0';
	return out;
}

static void test_options_defaults(void **state)
{
	(void)state;
	assert_string_equal(parse_capturing(NULL), "");
	assert_int_equal(hg_opt.backend, HG_BACKEND_MMAP);
	assert_int_equal(hg_opt.decay_ms, 1000);
	assert_int_equal(hg_opt.stats, 0);
	assert_int_equal(hg_opt.help, 0);
}

static void test_options_values(void **state)
{
	(void)state;
	assert_string_equal(parse_capturing("stats=1:decay_ms=250:backend=brk"), "");
	assert_int_equal(hg_opt.stats, 1);
	assert_int_equal(hg_opt.decay_ms, 250);
	assert_int_equal(hg_opt.backend, HG_BACKEND_BRK);
	/* the last value of a key counts; empty items are skipped */
	assert_string_equal(parse_capturing("decay_ms=5::decay_ms=7"), "");
	assert_int_equal(hg_opt.decay_ms, 7);
}

static void test_options_unknown_key_warns(void **state)
{
	(void)state;
	const char *out = parse_capturing("bogus=1:stats=1");
	assert_non_null(strstr(out, "unknown option 'bogus'"));
	assert_non_null(strstr(out, "valid options: backend decay_ms stats help"));
	assert_int_equal(hg_opt.stats, 1); /* the rest still applies */
}

static void test_options_bad_values_keep_defaults(void **state)
{
	(void)state;
	const char *out = parse_capturing("stats=2:decay_ms=ten:backend=sbrk");
	assert_non_null(strstr(out, "bad value for option 'stats' (expected 0 or 1)"));
	assert_non_null(strstr(out, "bad value for option 'decay_ms' (expected a number)"));
	assert_non_null(strstr(out, "bad value for option 'backend'"));
	assert_int_equal(hg_opt.stats, 0);
	assert_int_equal(hg_opt.decay_ms, 1000);
	assert_int_equal(hg_opt.backend, HG_BACKEND_MMAP);
}

static void test_options_sizes(void **state)
{
	(void)state;
	assert_string_equal(parse_capturing("quarantine=4K"), "");
	assert_int_equal(hg_opt.quarantine, 4096);
	assert_string_equal(parse_capturing("quarantine=17179869183G"), "");
	assert_true(hg_opt.quarantine == (((uint64_t)1 << 34) - 1) << 30);
	/* 2^34 G is 2^64 bytes: it wrapped to 0, and no freed block was held back */
	const char *out = parse_capturing("quarantine=17179869184G");
	assert_non_null(strstr(out, "bad value for option 'quarantine' (expected bytes, e.g. 64M)"));
	assert_int_equal(hg_opt.quarantine, 256 << 20);
}

static void test_options_help_lists_every_key(void **state)
{
	(void)state;
	const char *out = parse_capturing("help=1");
	assert_non_null(strstr(out, "backend=mmap|brk (default mmap)"));
	assert_non_null(strstr(out, "decay_ms=N (default 1000)"));
	assert_non_null(strstr(out, "stats=0|1 (default 0)"));
	assert_non_null(strstr(out, "help=0|1 (default 0)"));
}

static void test_fmt_numbers(void **state)
{
	(void)state;
	struct hg_buf b = { .len = 0 };
	hg_buf_dec(&b, 0);
	hg_buf_str(&b, " ");
	hg_buf_dec(&b, UINT64_MAX);
	hg_buf_str(&b, " ");
	hg_buf_hex(&b, 0xdeadbeef);
	hg_buf_str(&b, " ");
	hg_buf_hex(&b, 0);
	assert_int_equal(b.len, strlen("0 18446744073709551615 0xdeadbeef 0x0"));
	assert_memory_equal(b.text, "0 18446744073709551615 0xdeadbeef 0x0", b.len);
}

/* A message longer than the buffer is cut, never written past it. */
static void test_fmt_bounded(void **state)
{
	(void)state;
	struct hg_buf b = { .len = 0 };
	char big[sizeof b.text + 1000]; /* longer than the buffer, whatever its size */
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	hg_buf_str(&b, big);
	hg_buf_dec(&b, 12345);
	assert_int_equal(b.len, sizeof b.text);
}

/* ---- cfi.c: frame sizes at a call, against the compiler's own frame addresses ---- */
#define SP_FRAMES __attribute__((noipa, optimize("O2", "omit-frame-pointer")))
static uintptr_t callee_ra, callee_cfa;

SP_FRAMES static void note_caller(void)
{
	callee_ra = (uintptr_t)__builtin_return_address(0);
	callee_cfa = (uintptr_t)__builtin_dwarf_cfa();
	__asm__ volatile("" ::: "memory");
}

/* Returns its frame's address (CFA); note_caller's return address is in its frame. */
SP_FRAMES static uintptr_t fixed_frame(void)
{
	volatile char pad[200];
	pad[0] = 1;
	note_caller();
	(void)pad[0];
	return (uintptr_t)__builtin_dwarf_cfa();
}

static uintptr_t vla_fp, vla_cfa;

/* A frame whose size varies: placed by its frame pointer, which it saved its caller's below. */
SP_FRAMES static void variable_frame(size_t n)
{
	volatile char vla[n];
	vla[0] = 1;
	note_caller();
	vla_fp = (uintptr_t)__builtin_frame_address(0);
	vla_cfa = (uintptr_t)__builtin_dwarf_cfa();
	(void)vla[0];
}

/* A fixed frame's address is the stack pointer at the call plus its size (its CFA minus the
 * callee's); a frame with a variable-length array's is its frame pointer plus 16, with the
 * caller's frame pointer saved 16 bytes below; data has no rule. */
static void test_cfi_frame_offsets(void **state)
{
	(void)state;
	uintptr_t cfa = fixed_frame();
	assert_true(cfa > callee_cfa);
	uint64_t rule = hgc_frame_rule(callee_ra);
	assert_true(rule & HGC_RULE_KNOWN);
	assert_false(rule & HGC_RULE_CFA_RBP);
	assert_int_equal(HGC_RULE_CFA_OFF(rule), cfa - callee_cfa);
	assert_int_equal(hgc_frame_rule(callee_ra), rule); /* from the memo */
	variable_frame(100);
	rule = hgc_frame_rule(callee_ra);
	assert_true(rule & HGC_RULE_CFA_RBP);
	assert_int_equal(vla_fp + HGC_RULE_CFA_OFF(rule), vla_cfa);
	assert_true(rule & HGC_RULE_RBP_SAVED);
	assert_int_equal(HGC_RULE_RBP_BELOW(rule), 16);
	assert_int_equal(hgc_frame_rule((uintptr_t)&callee_ra), 0); /* data, not code */
}

/* ---- os_linux.c: the file mapped at an address ---- */
/* A file mapped through a link is named by its real path (a newline in it, which maps writes
 * \012, unescaped), from anywhere in its mapping, also once removed (without maps'
 * " (deleted)"); an anonymous mapping, or a line longer than the buffer, names none. */
static void test_os_mapped_path(void **state)
{
	(void)state;
	char dir[] = "/tmp/hg-unit-XXXXXX", file[PATH_MAX], link[PATH_MAX], real[PATH_MAX];
	static char page[2 * HG_OS_PAGE_BYTES];
	char buf[HG_OS_MAPS_LINE_BYTES], tiny[16];
	assert_non_null(mkdtemp(dir));
	snprintf(file, sizeof file, "%s/mapped\nfile", dir);
	snprintf(link, sizeof link, "%s/link", dir);
	FILE *f = fopen(file, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(page, 1, sizeof page, f), sizeof page);
	fclose(f);
	assert_int_equal(symlink("mapped\nfile", link), 0);
	assert_non_null(realpath(file, real));
	size_t bytes;
	const char *p = hg_os_map_file(link, &bytes);
	assert_non_null(p);
	assert_int_equal(hg_os_mapped_path((uintptr_t)p, buf, sizeof buf), strlen(real));
	assert_string_equal(buf, real);
	assert_int_equal(hg_os_mapped_path((uintptr_t)p + HG_OS_PAGE_BYTES + 5, tiny, sizeof tiny), 0);
	assert_int_equal(unlink(link), 0);
	assert_int_equal(unlink(file), 0);
	assert_int_equal(rmdir(dir), 0);
	assert_int_equal(hg_os_mapped_path((uintptr_t)p + HG_OS_PAGE_BYTES + 5, buf, sizeof buf), strlen(real));
	assert_string_equal(buf, real);
	char *anon = hg_os_map(HG_OS_PAGE_BYTES, 0);
	assert_int_equal(hg_os_mapped_path((uintptr_t)anon, buf, sizeof buf), 0);
	hg_os_unmap(anon, HG_OS_PAGE_BYTES);
	hg_os_unmap((void *)p, bytes);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_size_class_is_smallest_fit),
		cmocka_unit_test(test_size_classes_shape),
		cmocka_unit_test(test_span_shapes),
		cmocka_unit_test(test_decay_in_a_busy_arena),
		cmocka_unit_test(test_dirty_slices_serve_first),
		cmocka_unit_test(test_options_defaults),
		cmocka_unit_test(test_options_values),
		cmocka_unit_test(test_options_unknown_key_warns),
		cmocka_unit_test(test_options_bad_values_keep_defaults),
		cmocka_unit_test(test_options_sizes),
		cmocka_unit_test(test_options_help_lists_every_key),
		cmocka_unit_test(test_fmt_numbers),
		cmocka_unit_test(test_fmt_bounded),
		cmocka_unit_test(test_cfi_frame_offsets),
		cmocka_unit_test(test_os_mapped_path),
	};
	tu_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
