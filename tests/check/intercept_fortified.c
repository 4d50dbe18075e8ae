/* intercept_fortified.c — the printf family and the string functions as a program built with
 * -O2 -D_FORTIFY_SOURCE=2 calls them (__printf_chk, __memcpy_chk, ...): one bad call per case
 * (argv[1]). The string functions take the _chk form when the destination's size is known,
 * here an array: their heap block is the source. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "cases.h"

/* The compiler no longer knows the block's size: with it, glibc's own check would stop
 * snprintf before it writes (which is fortify's job, not the one tested here). */
#define HIDE_SIZE(p) __asm__("" : "+r"(p))

/* Arguments the compiler cannot fold: a constant "%s" argument turns snprintf into stores. */
static volatile int seven = 7;
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

/* The compiler knows the block's size here: glibc's own check still stops the call. */
void glibc_check(void)
{
	char *d = malloc(8);
	snprintf(d, 32, "%s-%d", word, seven);
	sink[0] = d[0];
}

static const struct test_case CASES[] = {
	{ "printf", emit_printf }, { "fprintf", emit_fprintf }, { "dprintf", emit_dprintf },
	{ "vfprintf", emit_vfprintf }, { "syslog", emit_syslog }, { "snprintf", format }, { "sprintf", print_into },
	{ "vsprintf", vprint_into }, { "memcpy", copy_from }, { "memmove", move_from },
	{ "strcpy", copy_freed }, { "strcat", append_unterminated }, { "strncpy", copy_n_unterminated },
	{ "glibc-check", glibc_check },
};

int main(int argc, char **argv)
{
	return run_case(argc, argv, CASES, sizeof CASES / sizeof CASES[0]);
}
