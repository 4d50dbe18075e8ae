/* fmt.c — signal-safe formatting over write(2) and the one-line fatal error of hardened mode. */
#define _GNU_SOURCE
#include "base/fmt.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "os/os.h"

void hg_buf_str(struct hg_buf *b, const char *s)
{
	while (*s && b->len < sizeof b->text)
		b->text[b->len++] = *s++;
}

void hg_buf_name(struct hg_buf *b, const char *s)
{
	for (; *s && b->len + 4 <= sizeof b->text; s++) {
		unsigned char c = (unsigned char)*s;
		if (c >= 0x20 && c != 0x7f) {
			b->text[b->len++] = (char)c;
			continue;
		}
		b->text[b->len++] = '\\';
		b->text[b->len++] = 'x';
		b->text[b->len++] = "0123456789abcdef"[c >> 4];
		b->text[b->len++] = "0123456789abcdef"[c & 15];
	}
}

void hg_buf_dec(struct hg_buf *b, uint64_t v)
{
	char tmp[24];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n > 0 && b->len < sizeof b->text)
		b->text[b->len++] = tmp[--n];
}

void hg_buf_hex(struct hg_buf *b, uint64_t v)
{
	char tmp[16];
	int n = 0;
	do {
		tmp[n++] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	hg_buf_str(b, "0x");
	while (n > 0 && b->len < sizeof b->text)
		b->text[b->len++] = tmp[--n];
}

static int log_fd = 2;
static int log_source = -1; /* the descriptor log_fd copies; -1: none, log_fd is written as is */
static dev_t log_dev;       /* the file both were open on */
static ino_t log_ino;

static int is_log_file(int fd)
{
	dev_t dev;
	ino_t ino;
	unsigned long links;
	return fd >= 0 && hg_os_file_id(fd, &dev, &ino, &links) && dev == log_dev && ino == log_ino;
}

void hg_log_to(int fd)
{
	unsigned long links;
	log_fd = hg_os_private_fd(fd);
	log_source = log_fd != fd && hg_os_file_id(log_fd, &log_dev, &log_ino, &links) ? fd : -1;
}

/* The copy, if the program left it alone; a new one if it did not but left the source. */
static int log_fd_now(void)
{
	if (log_source < 0 || is_log_file(log_fd))
		return log_fd;
	if (!is_log_file(log_source))
		return -1;
	log_fd = hg_os_private_fd(log_source);
	return log_fd;
}

void hg_log_write(const char *s, size_t n)
{
	int fd = log_fd_now();
	if (fd >= 0)
		hg_os_write(fd, s, n);
}

void hg_buf_flush(struct hg_buf *b)
{
	hg_log_write(b->text, b->len);
	b->len = 0;
}

void hg_buf_prog(struct hg_buf *b)
{
	hg_buf_str(b, "heapguard: ");
	hg_buf_str(b, program_invocation_short_name ? program_invocation_short_name : "?");
	hg_buf_str(b, "(");
	hg_buf_dec(b, (uint64_t)getpid());
	hg_buf_str(b, "): ");
}

void hg_fatal(const char *func, const char *what, const void *ptr, const void *block,
	      size_t block_bytes)
{
	struct hg_buf b = { .len = 0 };
	hg_buf_prog(&b);
	hg_buf_str(&b, func);
	hg_buf_str(&b, "(): ");
	hg_buf_str(&b, what);
	hg_buf_str(&b, " of ");
	hg_buf_hex(&b, (uintptr_t)ptr);
	if (block) {
		hg_buf_str(&b, " (inside a block of size ");
		hg_buf_dec(&b, block_bytes);
		hg_buf_str(&b, " at ");
		hg_buf_hex(&b, (uintptr_t)block);
		hg_buf_str(&b, ", offset ");
		hg_buf_dec(&b, (uint64_t)((const char *)ptr - (const char *)block));
		hg_buf_str(&b, ")");
	}
	hg_buf_str(&b, "\n");
	hg_buf_flush(&b);
	abort();
}
