/* intercept_errors.c — one bad libc call per case (argv[1]), for check_intercept.py. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <wchar.h>

#include "cases.h"

/* Each case allocates in its own function and misuses the block there, so both the access
 * stack and the allocated-by stack start at the case's name. Block sizes leave the overflows
 * inside the 16-byte right redzone. */
static char sink[64];

void duplicate(void)
{
	const char *s = "abcdefghi";
	char *d = malloc(9); /* strlen(s): no room for the NUL */
	strcpy(d, s);
}

void copy_bytes(void)
{
	char src[32] = "0123456789abcdefghijklmnopqrstu";
	char *d = malloc(16);
	memcpy(d, src, 20);
}

void copy_before(void)
{
	char *p = malloc(16);
	memset(p, 'x', 16);
	memcpy(sink, p - 4, 8);
}

/* Both ends wrong: the copy reads past one block and writes past the other. */
void copy_both(void)
{
	char *s = malloc(40), *d = malloc(40);
	memset(s, 'x', 40);
	memcpy(d, s, 48);
}

void fill(void)
{
	char *d = malloc(24);
	memset(d, 0, 25);
}

void fill_empty(void)
{
	char *d = malloc(0);
	memset(d, 0, 1);
}

void append(void)
{
	char *d = malloc(8);
	strcpy(d, "abcd");
	strcat(d, "efgh");
}

void append_n(void)
{
	char *d = malloc(8);
	strcpy(d, "abcdef");
	strncat(d, "ghijkl", 3);
}

void copy_n(void)
{
	char *d = malloc(8);
	strncpy(d, "abc", 12);
}

void shift(void)
{
	char *d = malloc(16);
	memset(d, 'y', 16);
	memmove(d + 4, d, 16);
}

void measure(void)
{
	char *p = malloc(9);
	memcpy(p, "abcdefghi", 9);
	sink[0] = (char)strlen(p);
}

void clone_string(void)
{
	char *p = malloc(6);
	memcpy(p, "abcdef", 6);
	free(strdup(p));
}

void compare(void)
{
	char *a = malloc(8), *b = malloc(16);
	memset(a, 'z', 8);
	memset(b, 'z', 16);
	sink[0] = (char)memcmp(a, b, 12);
}

void format(void)
{
	char *d = malloc(8);
	snprintf(d, 32, "%s", "hello world!");
}

/* 12 wide characters and the NUL into a block of 8: 20 bytes past it. */
void wide_format(void)
{
	wchar_t *d = malloc(8 * sizeof *d);
	swprintf(d, 32, L"%ls", L"hello world!");
}

/* Through the v-form; the output does not fit n = 10: the 9 characters written pass. */
static void wide_vformat_into(wchar_t *d, size_t n, const wchar_t *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vswprintf(d, n, fmt, ap);
	va_end(ap);
}

void wide_vformat(void)
{
	wchar_t *d = malloc(8 * sizeof *d);
	wide_vformat_into(d, 10, L"%ls", L"hello world!");
}

void print_into(void)
{
	char *d = malloc(8);
	sprintf(d, "%d-%s", 42, "abcdefg"); /* 10 bytes and the NUL */
}

void scan_word(void)
{
	char *d = malloc(8);
	int n = 0;
	sink[0] = (char)sscanf("7 overflowing rest", "%d %s", &n, d); /* 11 bytes and the NUL */
}

void scan_chars(void)
{
	char *d = malloc(4);
	FILE *f = fopen("/dev/zero", "r");
	sink[0] = (char)fscanf(f, "%6c", d);
	fclose(f);
}

void copy_to_end(void)
{
	char *d = malloc(9);
	sink[0] = *stpcpy(d, "abcdefghi");
}

void copy_bytes_to_end(void)
{
	char src[32] = "0123456789abcdefghijklmnopqrstu";
	char *d = malloc(16);
	sink[0] = *(char *)mempcpy(d, src, 20);
}

void read_into(void)
{
	int fd = open("/dev/zero", O_RDONLY);
	char *p = malloc(8);
	sink[0] = (char)read(fd, p, 16);
	close(fd);
}

void read_line(void)
{
	FILE *f = fopen("/dev/zero", "r");
	char *p = malloc(8);
	fgets(p, 16, f);
	fclose(f);
}

void read_block(void)
{
	FILE *f = fopen("/dev/zero", "r");
	char *p = malloc(8);
	sink[0] = (char)fread(p, 4, 4, f);
	fclose(f);
}

void read_line_unlocked(void)
{
	FILE *f = fopen("/dev/zero", "r");
	char *p = malloc(8);
	fgets_unlocked(p, 16, f);
	fclose(f);
}

void read_block_unlocked(void)
{
	FILE *f = fopen("/dev/zero", "r");
	char *p = malloc(8);
	sink[0] = (char)(fread_unlocked)(p, 4, 4, f);
	fclose(f);
}

/* Searches and comparisons that read an unterminated block past its end. */
static char *unterminated(void)
{
	char *p = malloc(8);
	memcpy(p, "abcdefgh", 8);
	return p;
}

void compare_past(void)
{
	sink[0] = (char)strcmp(unterminated(), "abcdefghij");
}

void compare_n_past(void)
{
	sink[0] = (char)strncmp(unterminated(), "abcdefghij", 10);
}

void search_past(void)
{
	sink[0] = strchr(unterminated(), 'z') != NULL;
}

void search_last_past(void)
{
	sink[0] = strrchr(unterminated(), 'a') != NULL;
}

void search_bytes_past(void)
{
	sink[0] = memchr(unterminated(), 'z', 16) != NULL;
}

void find_past(void)
{
	sink[0] = strstr(unterminated(), "xyz") != NULL;
}

void compare_case_past(void)
{
	sink[0] = (char)strcasecmp(unterminated(), "ABCDEFGHIJ");
}

void measure_n_past(void)
{
	sink[0] = (char)strnlen(unterminated(), 16);
}

/* The wrappers of system calls that fill the program's buffers (syscalls.c). */
void pread_into(void)
{
	int fd = open("/dev/zero", O_RDONLY);
	char *p = malloc(8);
	sink[0] = (char)pread(fd, p, 16, 0);
	close(fd);
}

void recv_into(void)
{
	int sv[2];
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	sink[1] = (char)write(sv[0], "0123456789abcdef", 16);
	char *p = malloc(8);
	sink[0] = (char)recv(sv[1], p, 16, 0);
	close(sv[0]);
	close(sv[1]);
}

void readv_into(void)
{
	int fd = open("/dev/zero", O_RDONLY);
	char *p = malloc(8);
	struct iovec v = { p, 16 };
	sink[0] = (char)readv(fd, &v, 1);
	close(fd);
}

void getcwd_into(void)
{
	char *p = malloc(8);
	sink[0] = getcwd(p, 16) != NULL;
}

void writev_from(void)
{
	char *p = malloc(8);
	memcpy(p, "12345678", 8);
	struct iovec v = { p, 16 };
	int fd = open("/dev/null", O_WRONLY);
	sink[0] = (char)writev(fd, &v, 1);
	close(fd);
}

void stat_into(void)
{
	struct stat *st = malloc(sizeof *st - 8); /* a struct cut short */
	sink[0] = (char)stat("/", st);
}

void wide_copy(void)
{
	wchar_t *d = malloc(4 * sizeof(wchar_t));
	wcscpy(d, L"abcd");
}

void wide_fill(void)
{
	wchar_t *d = malloc(4 * sizeof(wchar_t));
	wmemset(d, L'x', 5);
}

void wide_move(void)
{
	wchar_t *d = malloc(4 * sizeof(wchar_t));
	wchar_t src[8] = L"abcdefg";
	wmemcpy(d, src, 6);
}

void release(char *p)
{
	free(p);
}

void shift_in_place(void)
{
	char *p = malloc(64);
	memset(p, 'o', 64);
	memcpy(p + 4, p, 20); /* memmove's job */
}

void unquote(void)
{
	char *s = malloc(32);
	strcpy(s, "\"quoted\"");
	strcpy(s, s + 1); /* 8 bytes and the NUL, each read before it is overwritten or not */
}

void shift_on_stack(void)
{
	char buf[32] = "0123456789abcdefghijklmnopqrstu";
	memcpy(buf + 1, buf, 16);
	sink[0] = buf[1];
}

void use_after_free(void)
{
	char *p = malloc(16);
	memset(p, 'q', 16);
	release(p);
	memcpy(sink, p, 8);
}

/* A handle used after the call that freed it: glibc read its freed lock and flags (a second
 * fclose aborted, a readdir waited forever), now the call reports and fails. */
void close_twice(void)
{
	FILE *f = fopen("/dev/null", "w");
	fclose(f);
	printf("%d\n", fclose(f)); /* EOF */
}

void read_closed(void)
{
	FILE *f = fopen("/dev/null", "r");
	fclose(f);
	printf("%s\n", fgets(sink, 8, f) ? "line" : "null");
}

void print_closed(void)
{
	FILE *f = fopen("/dev/null", "w");
	fclose(f);
	printf("%d\n", fprintf(f, "%d", 5)); /* -1 */
}

void list_closed(void)
{
	DIR *d = opendir("/");
	closedir(d);
	printf("%s\n", readdir(d) ? "entry" : "null");
}

static const struct test_case CASES[] = {
	{ "fclose-twice", close_twice }, { "fgets-closed", read_closed }, { "fprintf-closed", print_closed },
	{ "readdir-closed", list_closed },
	{ "strcpy", duplicate }, { "memcpy", copy_bytes }, { "memcpy-before", copy_before },
	{ "memcpy-both", copy_both },
	{ "memset", fill }, { "memset-empty", fill_empty }, { "strcat", append }, { "strncat", append_n }, { "strncpy", copy_n },
	{ "memmove", shift }, { "strlen", measure }, { "strdup", clone_string },
	{ "memcmp", compare }, { "snprintf", format }, { "swprintf", wide_format },
	{ "vswprintf", wide_vformat }, { "read", read_into },
	{ "fgets", read_line }, { "fread", read_block }, { "wcscpy", wide_copy },
	{ "wmemset", wide_fill }, { "wmemcpy", wide_move }, { "use-after-free", use_after_free },
	{ "pread", pread_into }, { "recv", recv_into }, { "readv", readv_into },
	{ "getcwd", getcwd_into }, { "stat", stat_into }, { "writev", writev_from },
	{ "sprintf", print_into }, { "stpcpy", copy_to_end }, { "mempcpy", copy_bytes_to_end },
	{ "sscanf", scan_word }, { "fscanf", scan_chars }, { "fgets_unlocked", read_line_unlocked },
	{ "fread_unlocked", read_block_unlocked }, { "strcmp", compare_past }, { "strncmp", compare_n_past },
	{ "strchr", search_past }, { "strrchr", search_last_past }, { "memchr", search_bytes_past },
	{ "strstr", find_past }, { "strcasecmp", compare_case_past }, { "strnlen", measure_n_past },
	{ "memcpy-overlap", shift_in_place }, { "strcpy-overlap", unquote }, { "memcpy-overlap-stack", shift_on_stack },
};

int main(int argc, char **argv)
{
	return run_case(argc, argv, CASES, sizeof CASES / sizeof CASES[0]);
}
