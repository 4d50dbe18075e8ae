/* intercept_clean.c — every intercepted call used correctly on heap blocks (argv[1]: a group). */
/* check_intercept.py wants no report and the same output as without heapguard. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wchar.h>

#include "cases.h"
#include "../../include/heapguard.h"

static void clean_memory(void)
{
	char *a = malloc(32), *b = malloc(32);
	memset(a, 'a', 32);
	memcpy(b, a, 32);
	memmove(b + 1, b, 31);
	b[0] = 'b';
	memcpy(b, b, 0);          /* empty ranges are no access */
	memcpy(NULL, NULL, 0);
	memcpy(b, b, 32);         /* one pointer for both: gcc's struct self-assignment */
	memcpy(a + 16, a, 16);    /* adjacent, not overlapping */
	printf("memcmp %d %d\n", memcmp(a, b, 32) < 0, memcmp(a + 1, b + 1, 31));
	wchar_t *w = malloc(8 * sizeof(wchar_t)), *v = malloc(8 * sizeof(wchar_t));
	wmemset(w, L'w', 8);
	wmemcpy(v, w, 8);
	wmemmove(v + 1, v, 7);
	printf("wide %d\n", wmemcmp(v, w, 8));
	free(a), free(b), free(w), free(v);
}

static void clean_strings(void)
{
	char *s = malloc(6);
	strcpy(s, "hello");                 /* the NUL is the block's last byte */
	char *d = malloc(11);
	strncpy(d, s, 11);                  /* pads to the end */
	strcat(d, "12345");
	char *e = malloc(9);
	strcpy(e, "ab");
	strncat(e, "cdefghijkl", 6);        /* 8 bytes and the NUL */
	char *u = malloc(4);
	memcpy(u, "wxyz", 4);               /* not terminated: only bounded calls read it */
	char *nd = strndup(u, 4);
	char *dup = strdup(d);
	printf("%s %s %s %zu %zu %s %s\n", s, d, e, strlen(s), strlen(e), nd, dup);
	/* Searches and comparisons that stop inside u before its end */
	printf("%d %d %d %c %p %d\n", strcmp(u, "wxa") > 0, strncmp(u, "wxyzq", 4), strncmp(u, "w", 1),
	       *strchr(u, 'y'), memchr(u, 'q', 4), strcmp(s, dup) < 0);
	printf("%s %s %s %d %zu\n", strrchr(d, 'l'), strstr(d, "lo12"), strstr(s, "xyz") ? "found" : "none",
	       strcasecmp(u, "WXA") > 0, strnlen(u, 4));
	wchar_t *w = malloc(6 * sizeof(wchar_t)), *x = malloc(9 * sizeof(wchar_t));
	wcscpy(w, L"abcde");
	wcsncpy(x, w, 9);
	wcscat(x, L"fgh");
	wcsncat(w, L"zz", 0);
	printf("%zu %zu %ls %ls\n", wcslen(w), wcslen(x), w, x);
	free(s), free(d), free(e), free(u), free(nd), free(dup), free(w), free(x);
}

static int vformat(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vsnprintf(buf, n, fmt, ap);
	va_end(ap);
	return r;
}

static void clean_format(void)
{
	char *b = malloc(8);
	int r1 = snprintf(b, 8, "%s-%d", "truncated", 12345); /* cut to 7 bytes and the NUL */
	char *c = malloc(12);
	int r2 = vformat(c, 12, "%05d|%x", 42, 255);
	char *name = strdup("heap string");
	char *e = malloc(11), *f = malloc(12);
	int r3 = sprintf(e, "%05d|%s", 7, "abcd"); /* exactly 10 bytes and the NUL */
	char *end = stpcpy(f, "stpcpy");
	end = mempcpy(end, "-mem", 5);
	printf("%d %s %d %s %d %s %d\n", r1, b, r2, c, r3, e, (int)(end - f));
	/* scanf: strings that fit, a set, suppressed and counted conversions, one it allocates,
	 * and arguments after a failed match that it never wrote */
	char *w = malloc(6), *set = malloc(4), *chars = malloc(3), *alloced = NULL, *unwritten = malloc(2);
	int num = 0, pos = 0;
	int got = sscanf("12 hello abc xyz!! more", "%d %5s %*s %3[a-z]%n %3c %ms", &num, w, set, &pos, chars,
			 &alloced);
	int partial = sscanf("5 x", "%d %d %s", &num, &num, unwritten);
	printf("%d %d %s %s %d %.3s %s %d\n", got, num, w, set, pos, chars, alloced, partial);
	free(alloced);
	printf("%s|%.4s|%10s|%-12s|\n", name, name, "x", name);
	fprintf(stdout, "%s %ls %5.1f %lld %c%%\n", name, L"wide", 2.5, 1LL << 40, 'k');
	fflush(stdout);
	dprintf(1, "dprintf %s\n", name);
	fputs(name, stdout);
	puts("");
	puts(name);
	free(b), free(c), free(name);
}

static void clean_input(void)
{
	struct stat st; /* fstat of AT_FDCWD (-100) is EBADF, as any negative descriptor */
	errno = 0;
	int bad = fstat(AT_FDCWD, &st);
	printf("fstat(AT_FDCWD) %d %s\n", bad, errno == EBADF ? "EBADF" : "not EBADF");
	int fd = open("/dev/zero", O_RDONLY);
	char *r = malloc(16);
	ssize_t got = read(fd, r, 16);
	close(fd);
	FILE *f = fopen("/dev/zero", "r");
	char *g = malloc(16), *h = malloc(16);
	char *line = fgets(g, 16, f);
	size_t items = fread(h, 4, 4, f);
	fclose(f);
	printf("read %zd %d fgets %d fread %zu %d\n", got, r[15], line == g, items, h[15]);
	free(r), free(g), free(h);
}

static void clean_output(void)
{
	char *z = calloc(1, 24);          /* calloc'd: zeros are written bytes */
	write(1, z, 24);
	fwrite(z, 1, 24, stdout);
	unsigned char *bin = malloc(64);  /* data with lone 0xbe bytes and runs of three */
	for (int i = 0; i < 64; i++)
		bin[i] = (unsigned char)(i % 5 == 0 ? 0xbe : i);
	memset(bin + 40, 0xbe, 3);
	fflush(stdout);
	write(1, bin, 64);
	fwrite(bin, 1, 64, stdout);
	fwrite(bin + 40, 1, 4, stdout);   /* 0xbe 0xbe 0xbe 0x2b */
	fflush(stdout);
	int sv[2];
	char back[64];
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	send(sv[0], bin, 64, 0);
	ssize_t n = recv(sv[1], back, sizeof back, 0);
	printf("\nsend %zd %d\n", n, memcmp(back, bin, 64));
	free(z), free(bin);
}

/* Data that holds runs of the byte malloc fills blocks with (0xbe), as binaries do: read in,
 * copied on, moved by realloc and written out, it was written by the program all along. */
static void clean_binary(void)
{
	char path[] = "/tmp/hg-binary-XXXXXX";
	int fd = mkstemp(path);
	unsigned char data[48];
	for (int i = 0; i < 48; i++)
		data[i] = i >= 8 && i < 24 ? 0xbe : (unsigned char)i;
	write(fd, data, sizeof data); /* from the stack: not checked */
	lseek(fd, 0, SEEK_SET);
	char *r = malloc(64), *f = malloc(64), *c = malloc(48), *s = malloc(48);
	ssize_t got = read(fd, r, 64);
	FILE *in = fdopen(fd, "r");
	rewind(in);
	size_t items = fread(f, 1, 48, in);
	fclose(in);
	unlink(path);
	memcpy(c, r, 48);                 /* from a block that came in */
	memmove(s, data, 48);             /* from the program's own stack */
	r = realloc(r, 4096);             /* moved with its data */
	fflush(stdout);
	write(1, r, 48);
	fwrite(f, 1, 48, stdout);
	fwrite(c, 1, 48, stdout);
	fwrite(s, 1, 48, stdout);
	printf("\nread %zd fread %zu\n", got, items);
	free(r), free(f), free(c), free(s);
	/* Bytes that equal the never-written pattern in their place by chance, among written
	 * ones: alone in the output, they are still data. */
	unsigned char *k = malloc(16);
	memset(k, 'k', 16);
	for (int i = 0; i < 16; i += 5)
		k[i] = (unsigned char)(HEAPGUARD_UNINIT_WORD >> (i % 8 * 8));
	fflush(stdout);
	write(1, k, 1);
	write(1, k + 5, 1);
	fwrite(k + 10, 1, 1, stdout);
	printf("\n");
	free(k);
	/* A buffer filled only in part, and written out up to what was filled: its last byte of
	 * data matches the pattern in its place, and never-written bytes follow. */
	unsigned char *t = malloc(32);
	memset(t, 't', 9);
	t[9] = (unsigned char)(HEAPGUARD_UNINIT_WORD >> 8); /* byte 9: phase 1 */
	fflush(stdout);
	write(1, t, 10);
	printf("\n");
	free(t);
	/* One byte of data read into a buffer's start, the rest never written, written out (`cat`
	 * of a 1-byte file, `dd bs=1`); a 1-byte block; both bytes matching their place. */
	unsigned char *b = malloc(64), *one = malloc(1);
	b[0] = one[0] = (unsigned char)HEAPGUARD_UNINIT_WORD;
	fflush(stdout);
	write(1, b, 1);
	write(1, one, 1);
	fwrite(b, 1, 1, stdout);
	printf("\n");
	free(b);
	free(one);
}

/* Wide output of written heap strings, wide and not (stdout turns wide-oriented). */
static void clean_wide_output(void)
{
	wchar_t *w = malloc(8 * sizeof *w);
	wcscpy(w, L"wide");
	char *c = malloc(8);
	strcpy(c, "narrow");
	fputws(w, stdout);
	wprintf(L" [%ls|%s|%5.2ls|%.3s]\n", w, c, w, c);
	fwprintf(stdout, L"%d %ls\n", 7, w);
	wchar_t *f = malloc(16 * sizeof *f);
	swprintf(f, 16, L"%ls=%d|", w, 42);
	fputws(f, stdout);
	int r = swprintf(f, 4, L"%s", c); /* does not fit: 3 characters written, -1 */
	f[3] = 0;
	wprintf(L"%d %ls\n", r, f);
	free(f);
	free(w);
	free(c);
}

static const struct test_case CASES[] = {
	{ "memory", clean_memory }, { "strings", clean_strings }, { "format", clean_format },
	{ "input", clean_input }, { "output", clean_output }, { "binary", clean_binary },
	{ "wide-output", clean_wide_output },
};

int main(int argc, char **argv)
{
	return run_case(argc, argv, CASES, sizeof CASES / sizeof CASES[0]);
}
