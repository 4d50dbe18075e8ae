/* intercept_fortified.c — the printf family and the string functions as a program built with
 * -O2 -D_FORTIFY_SOURCE=2 calls them (__printf_chk, __memcpy_chk, ...): one bad call per case
 * (argv[1]). The string functions take the _chk form when the destination's size is known,
 * here an array: their heap block is the source. A heap destination of a size the compiler
 * knows gets the _chk form too: freed, it is written within that size, which glibc's own
 * check lets pass. */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>
#include <wchar.h>

#include "cases.h"

/* The compiler no longer knows the block's size: with it, glibc's own check would stop
 * snprintf before it writes (which is fortify's job, not the one tested here). */
#define HIDE_SIZE(p) __asm__("" : "+r"(p))

/* Arguments the compiler cannot fold: a constant "%s" argument turns snprintf into stores. */
static volatile int seven = 7;

static int open_zero(void)
{
	int fd = open("/dev/zero", O_RDONLY);
	if (fd < 0)
		abort();
	return fd;
}
static const char *volatile word = "hello world";

void emit_printf(void)
{
	char *p = malloc(16);
	memcpy(p, "hello", 5);
	p[15] = 0;
	printf("[%d] %s\n", seven, p); /* FORTIFIED-PRINTF */
}

void emit_fprintf(void)
{
	char *p = malloc(8);
	fprintf(stdout, "%d %.3s|\n", seven, p);
}

void emit_dprintf(void)
{
	char *p = malloc(16);
	memcpy(p, "ab", 2);
	p[15] = 0;
	dprintf(1, "%d:%s\n", seven, p);
}

static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
}

void emit_vfprintf(void)
{
	char *p = malloc(16);
	memcpy(p, "abc", 3);
	p[15] = 0;
	say("%d %s\n", seven, p);
}

void emit_wprintf(void)
{
	wchar_t *p = malloc(16 * sizeof *p);
	wmemcpy(p, L"hi", 2);
	p[15] = 0;
	wprintf(L"[%d] %ls\n", seven, p);
}

void emit_syslog(void)
{
	char *p = malloc(16);
	memcpy(p, "ab", 2);
	p[15] = 0;
	syslog(LOG_USER | LOG_DEBUG, "heapguard test %d: %s", seven, p);
}

void format(void)
{
	char *d = malloc(8);
	HIDE_SIZE(d);
	snprintf(d, 32, "%s-%d", word, seven); /* 13 bytes and the NUL */
}

void wide_format(void)
{
	wchar_t *d = malloc(8 * sizeof *d);
	HIDE_SIZE(d);
	swprintf(d, 32, L"%s-%d", word, seven); /* 13 wide characters and the NUL */
}

void print_into(void)
{
	char *d = malloc(8);
	HIDE_SIZE(d);
	sprintf(d, "%d-%s", seven, word); /* 13 bytes and the NUL */
}

static void put(char *d, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsprintf(d, fmt, ap);
	va_end(ap);
}

void vprint_into(void)
{
	char *d = malloc(8);
	HIDE_SIZE(d);
	put(d, "%s!", word); /* 12 bytes and the NUL */
}

static volatile size_t twenty_four = 24, twelve = 12;
char sink[64];

void copy_from(void)
{
	char buf[32];
	char *p = malloc(16);
	memset(p, 1, 16);
	memcpy(buf, p, twenty_four);
	sink[0] = buf[0];
}

void move_from(void)
{
	char buf[32];
	char *p = malloc(16);
	memset(p, 1, 16);
	memmove(buf, p, twenty_four);
	sink[0] = buf[0];
}

/* The real call reads on past the block, into its redzone and the unused block after it (zeros):
 * the arrays have room for that much, or glibc's own check would end the process. */
void copy_freed(void)
{
	char buf[64];
	char *s = malloc(16);
	strcpy(s, word);
	free(s);
	strcpy(buf, s);
	sink[0] = buf[0];
}

void append_unterminated(void)
{
	char buf[64] = { (char)seven }; /* a string of unknown length: strcat stays strcat */
	char *s = malloc(4);
	memcpy(s, word, 4);
	strcat(buf, s);
	sink[0] = buf[0];
}

void copy_n_unterminated(void)
{
	char buf[32];
	char *s = malloc(4);
	memcpy(s, word, 4);
	strncpy(buf, s, twelve);
	sink[0] = buf[0];
}

static volatile size_t six = 6, sixteen = 16, twenty = 20;
static const wchar_t *volatile wide = L"hello world";

/* gcc and clang make a fortified mempcpy __memcpy_chk plus an addition; glibc exports
 * __mempcpy_chk all the same, for compilers that call it. */
void *__mempcpy_chk(void *, const void *, size_t, size_t);

void mem_copy_to_end(void)
{
	char buf[32];
	char *p = malloc(16);
	memset(p, 1, 16);
	char *end = __mempcpy_chk(buf, p, twenty_four, sizeof buf);
	sink[0] = end[-1];
}

void wide_copy_from(void)
{
	wchar_t buf[8];
	wchar_t *p = malloc(4 * sizeof(wchar_t));
	wmemset(p, L'x', 4);
	wmemcpy(buf, p, six);
	sink[0] = (char)buf[0];
}

void wide_move_from(void)
{
	wchar_t buf[8];
	wchar_t *p = malloc(4 * sizeof(wchar_t));
	wmemset(p, L'x', 4);
	wmemmove(buf, p, six);
	sink[0] = (char)buf[0];
}

void wide_copy_freed(void)
{
	wchar_t buf[64];
	wchar_t *s = malloc(16 * sizeof(wchar_t));
	wcscpy(s, wide);
	free(s);
	wcscpy(buf, s);
	sink[0] = (char)buf[0];
}

void wide_copy_n_freed(void)
{
	wchar_t buf[64];
	wchar_t *s = malloc(16 * sizeof(wchar_t));
	wcscpy(s, wide);
	free(s);
	wcsncpy(buf, s, six);
	sink[0] = (char)buf[0];
}

void wide_append_freed(void)
{
	wchar_t buf[64] = { (wchar_t)seven };
	wchar_t *s = malloc(8 * sizeof(wchar_t));
	wcscpy(s, L"abc");
	free(s);
	wcscat(buf, s);
	sink[0] = (char)buf[0];
}

void wide_append_n_freed(void)
{
	wchar_t buf[64] = { (wchar_t)seven };
	wchar_t *s = malloc(8 * sizeof(wchar_t));
	wcscpy(s, L"abc");
	free(s);
	wcsncat(buf, s, six);
	sink[0] = (char)buf[0];
}

void clear_freed(void)
{
	char *p = malloc(16);
	free(p);
	memset(p, 0, sixteen);
	__asm__ volatile("" : : "r"(p) : "memory"); /* not a dead store */
}

void wide_clear_freed(void)
{
	wchar_t *p = malloc(4 * sizeof(wchar_t));
	free(p);
	wmemset(p, L'y', sixteen / sizeof(wchar_t));
	__asm__ volatile("" : : "r"(p) : "memory");
}

void read_freed(void)
{
	int fd = open_zero();
	char *p = malloc(16);
	free(p);
	sink[0] = (char)read(fd, p, sixteen);
}

void pread_freed(void)
{
	int fd = open_zero();
	char *p = malloc(16);
	free(p);
	sink[0] = (char)pread(fd, p, sixteen, 0);
}

void recv_freed(void)
{
	int sv[2];
	char *p = malloc(16);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) || write(sv[1], "0123456789abcdef", 16) != 16)
		abort();
	free(p);
	sink[0] = (char)recv(sv[0], p, sixteen, 0);
}

void fread_freed(void)
{
	FILE *f = fopen("/dev/zero", "r");
	char *p = malloc(16);
	free(p);
	sink[0] = (char)fread(p, 1, sixteen, f);
}

void fgets_freed(void)
{
	FILE *f = fopen("/dev/zero", "r");
	char *p = malloc(16);
	free(p);
	sink[0] = fgets(p, (int)sixteen, f) != NULL;
}

void getcwd_freed(void)
{
	char *p = malloc(64);
	free(p);
	sink[0] = getcwd(p, sixteen * 4) != NULL;
}

void readlink_freed(void)
{
	char *p = malloc(16);
	free(p);
	sink[0] = (char)readlink("/proc/self/exe", p, sixteen);
}

/* Within a block of a size the compiler knows: memmove's job. */
void shift_in_place(void)
{
	char *p = malloc(64);
	memset(p, 'o', 64);
	memcpy(p + 4, p, twenty);
	sink[0] = p[4];
}

/* The compiler knows the block's size here: glibc's own check still stops the call, after
 * heapguard's report of what it would have written. */
void glibc_check(void)
{
	char *d = malloc(8);
	snprintf(d, 32, "%s-%d", word, seven);
	sink[0] = d[0];
}

/* The same for sprintf, whose check glibc makes as it writes. */
void print_past_known(void)
{
	char *d = malloc(8);
	sprintf(d, "%d-%s", seven, word);
	sink[0] = d[0];
}

/* The same for __memset_chk, which heapguard reports before glibc's check ends the process. */
void clear_past_known(void)
{
	char *p = malloc(16);
	memset(p, 0, sixteen + 4);
	sink[0] = p[0];
}

static const struct test_case CASES[] = {
	{ "printf", emit_printf }, { "fprintf", emit_fprintf }, { "dprintf", emit_dprintf },
	{ "vfprintf", emit_vfprintf }, { "wprintf", emit_wprintf }, { "syslog", emit_syslog }, { "snprintf", format }, { "swprintf", wide_format }, { "sprintf", print_into },
	{ "vsprintf", vprint_into }, { "memcpy", copy_from }, { "memmove", move_from },
	{ "strcpy", copy_freed }, { "strcat", append_unterminated }, { "strncpy", copy_n_unterminated },
	{ "mempcpy", mem_copy_to_end }, { "wmemcpy", wide_copy_from }, { "wmemmove", wide_move_from },
	{ "wcscpy", wide_copy_freed }, { "wcsncpy", wide_copy_n_freed }, { "wcscat", wide_append_freed },
	{ "wcsncat", wide_append_n_freed }, { "memset", clear_freed }, { "wmemset", wide_clear_freed },
	{ "read", read_freed }, { "pread", pread_freed }, { "recv", recv_freed }, { "fread", fread_freed },
	{ "fgets", fgets_freed }, { "getcwd", getcwd_freed }, { "readlink", readlink_freed },
	{ "memcpy-overlap", shift_in_place }, { "glibc-check", glibc_check }, { "sprintf-known", print_past_known },
	{ "memset-known", clear_past_known },
};

int main(int argc, char **argv)
{
	return run_case(argc, argv, CASES, sizeof CASES / sizeof CASES[0]);
}
