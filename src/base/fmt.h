/* fmt.h — message formatting that never calls malloc: a fixed buffer written with one write(2). */
#ifndef HG_FMT_H
#define HG_FMT_H

#include <stddef.h>
#include <stdint.h>

struct hg_buf {
	char text[4096]; /* a record line of 64 frames fits */
	size_t len;
};

void hg_buf_str(struct hg_buf *b, const char *s);
void hg_buf_dec(struct hg_buf *b, uint64_t v);
void hg_buf_hex(struct hg_buf *b, uint64_t v); /* 0x-prefixed */
/* Where messages go: stderr, or a private copy of it (see hg_os_private_fd). */
extern int hg_log_fd;

/* Writes the buffer to hg_log_fd and empties it. */
void hg_buf_flush(struct hg_buf *b);

/* Starts a line "heapguard: prog(pid): " naming the running program. */
void hg_buf_prog(struct hg_buf *b);

/* Hardening failure: "heapguard: prog(pid): FUNC(): WHAT of 0xPTR", followed by
 * " (inside a block of size N at 0x..., offset K)" when `block` is not NULL; then abort(). */
__attribute__((noreturn, cold)) void hg_fatal(const char *func, const char *what, const void *ptr,
					      const void *block, size_t block_bytes);

#endif
