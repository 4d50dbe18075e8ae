/* intercept_uninit.c — output of never-written malloc bytes, one call per case (argv[1]). */
#include <err.h>
#include <error.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <syslog.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>

#include "cases.h"

void emit_write(void)
{
	char *p = malloc(16);
	memcpy(p, "abcd", 4);
	write(1, p, 16);
}

void emit_fwrite(void)
{
	char *p = malloc(32);
	fwrite(p, 1, 32, stdout);
}

void emit_puts(void)
{
	char *p = malloc(16);
	memcpy(p, "hi", 2);
	p[15] = 0;
	puts(p);
}

void emit_printf(void)
{
	char *p = malloc(16);
	memcpy(p, "hello", 5);
	p[15] = 0;
	printf("[%d] %s\n", 7, p);
}

/* The %s comes after arguments of every other class, and its precision cuts it to 3 bytes,
 * all never written: shorter than a run, but nothing else. */
void emit_fprintf(void)
{
	char *p = malloc(8);
	fprintf(stdout, "%5.2f %*d %lu %c %p %-3s|%.3s|\n", 1.5, 4, 7, 9UL, 'c', (void *)p, "ab", p);
}

/* One never-written byte in the middle of never-written ones. */
void emit_one_byte(void)
{
	char *p = malloc(16);
	memcpy(p, "abc", 3);
	write(1, p + 5, 1);
}

/* Never-written bytes copied into another block are still never written; and a read that
 * filled only the start of a block leaves the rest so. */
void emit_copied(void)
{
	char *p = malloc(24), *q = malloc(24);
	memcpy(p, "xy", 2);
	memcpy(q, p, 24);
	write(1, q, 24);
}

void emit_after_read(void)
{
	int fd = open("/dev/zero", O_RDONLY);
	char *p = malloc(32);
	read(fd, p, 6);
	close(fd);
	write(1, p, 32);
}

/* The system-call wrappers that send a buffer out (syscalls.c): 4 of 16 bytes written. */
void emit_pwrite(void)
{
	char *p = malloc(16);
	memcpy(p, "abcd", 4);
	int fd = open("/dev/null", O_WRONLY);
	pwrite(fd, p, 16, 0);
	close(fd);
}

void emit_writev(void)
{
	char *p = malloc(16);
	memcpy(p, "abcd", 4);
	struct iovec v[2] = { { "xy", 2 }, { p, 16 } };
	writev(1, v, 2);
}

void emit_sendto(void)
{
	char *p = malloc(16);
	memcpy(p, "abcd", 4);
	int sv[2];
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	sendto(sv[0], p, 16, 0, NULL, 0);
}

void emit_sendmsg(void)
{
	char *p = malloc(16);
	memcpy(p, "abcd", 4);
	int sv[2];
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	struct iovec v = { p, 16 };
	struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1 };
	sendmsg(sv[0], &m, 0);
}

/* Logged: the message goes out through the log socket (or nowhere without one). */
void emit_syslog(void)
{
	char *p = malloc(16);
	memcpy(p, "ab", 2);
	p[15] = 0;
	syslog(LOG_USER | LOG_DEBUG, "heapguard test: %s", p);
}

void emit_fwrite_unlocked(void)
{
	char *p = malloc(32);
	(fwrite_unlocked)(p, 1, 32, stdout);
}

void emit_fputs_unlocked(void)
{
	char *p = malloc(16);
	memcpy(p, "hi", 2);
	p[15] = 0;
	fputs_unlocked(p, stdout);
}

void emit_perror(void)
{
	char *p = malloc(16);
	memcpy(p, "ab", 2);
	p[15] = 0;
	perror(p);
}

/* Messages to stderr through err.h's and error.h's functions. */
void emit_warnx(void)
{
	char *p = malloc(16);
	memcpy(p, "ab", 2);
	p[15] = 0;
	warnx("heapguard test: %s", p);
}

void emit_error(void)
{
	char *p = malloc(16);
	memcpy(p, "ab", 2);
	p[15] = 0;
	error(0, 0, "heapguard test: %s", p);
}

/* Wide output: a wide string of 15 characters, 2 written (stdout turns wide-oriented). */
void emit_fputws(void)
{
	wchar_t *p = malloc(16 * sizeof *p);
	wmemcpy(p, L"hi", 2);
	p[15] = 0;
	fputws(p, stdout);
}

void emit_wprintf(void)
{
	wchar_t *p = malloc(16 * sizeof *p);
	wmemcpy(p, L"ab", 2);
	p[15] = 0;
	wprintf(L"[%d] %ls\n", 7, p);
}

/* %s in a wide format takes a char string, as printf's does. */
void emit_fwprintf(void)
{
	char *p = malloc(16);
	memcpy(p, "ab", 2);
	p[15] = 0;
	fwprintf(stdout, L"%d %s\n", 7, p);
}

static const struct test_case CASES[] = {
	{ "write", emit_write }, { "fwrite", emit_fwrite }, { "puts", emit_puts },
	{ "printf", emit_printf }, { "fprintf", emit_fprintf }, { "copied", emit_copied },
	{ "after-read", emit_after_read }, { "one-byte", emit_one_byte }, { "pwrite", emit_pwrite }, { "writev", emit_writev },
	{ "sendto", emit_sendto }, { "sendmsg", emit_sendmsg }, { "syslog", emit_syslog },
	{ "warnx", emit_warnx }, { "error", emit_error }, { "fwrite_unlocked", emit_fwrite_unlocked },
	{ "fputs_unlocked", emit_fputs_unlocked }, { "perror", emit_perror }, { "fputws", emit_fputws },
	{ "wprintf", emit_wprintf }, { "fwprintf", emit_fwprintf },
};

int main(int argc, char **argv)
{
	return run_case(argc, argv, CASES, sizeof CASES / sizeof CASES[0]);
}
