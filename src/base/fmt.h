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
/* s with its control characters as \xNN: a name or path that must stay on its line. */
void hg_buf_name(struct hg_buf *b, const char *s);
void hg_buf_dec(struct hg_buf *b, uint64_t v);
void hg_buf_hex(struct hg_buf *b, uint64_t v); /* 0x-prefixed */
/* Messages go to a private copy of fd from now on (stderr until this is called): programs
 * like coreutils close stderr before the reports at exit. The program may close the copy, or
 * put a file of its own on its number (closefrom(3); `exec 200>lock` in a shell script): each
 * write checks that the copy is still the file fd was, copies fd again if that still is, and
 * else writes nothing rather than into the program's file. */
void hg_log_to(int fd);
/* Writes n bytes of s where messages go. */
void hg_log_write(const char *s, size_t n);

/* Writes the buffer where messages go and empties it. */
void hg_buf_flush(struct hg_buf *b);

/* Starts a line "heapguard: prog(pid): " naming the running program. */
void hg_buf_prog(struct hg_buf *b);

/* Hardening failure: "heapguard: prog(pid): FUNC(): WHAT of 0xPTR", followed by
 * " (inside a block of size N at 0x..., offset K)" when `block` is not NULL; then abort(). */
__attribute__((noreturn, cold)) void hg_fatal(const char *func, const char *what, const void *ptr,
					      const void *block, size_t block_bytes);

#endif
