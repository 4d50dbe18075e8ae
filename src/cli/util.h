/* util.h — the command's small helpers: allocation that cannot fail, interned strings, a map
 * from 64-bit keys to pointers, a growable array and a text buffer. */
#ifndef HG_CLI_UTIL_H
#define HG_CLI_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The command is short-lived and its data is the report: out of memory ends it (status 125). */
void *hg_xmalloc(size_t bytes);
void *hg_xcalloc(size_t n, size_t bytes);
void *hg_xrealloc(void *p, size_t bytes);
char *hg_xstrdup(const char *s);

/* One copy of each distinct string, kept for the whole run: interned strings compare by
 * address and serve as map keys. NULL stays NULL. */
const char *hg_intern(const char *s);
const char *hg_intern_len(const char *s, size_t len);

/* Open addressing from a key (any value but 0) to a pointer. */
struct hg_map {
	uint64_t *keys;
	void **values;
	size_t cap;   /* a power of two, or 0 before the first put */
	size_t count;
};
void *hg_map_get(const struct hg_map *m, uint64_t key);
void hg_map_put(struct hg_map *m, uint64_t key, void *value);
void hg_map_free(struct hg_map *m);
uint64_t hg_hash_bytes(const void *p, size_t len);

/* A growable array of pointers. */
struct hg_vec {
	void **items;
	size_t count, cap;
};
void hg_vec_push(struct hg_vec *v, void *item);

/* A growable text buffer, always NUL-terminated. */
struct hg_text {
	char *s;
	size_t len, cap;
};
void hg_text_add(struct hg_text *t, const char *s);
void hg_text_addn(struct hg_text *t, const char *s, size_t len);
/* s with its control characters as \xNN: a name or path that must stay on its line. */
void hg_text_add_name(struct hg_text *t, const char *s);
void hg_text_printf(struct hg_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Whether text matches a pattern where '*' stands for any run of characters (none included)
 * and '?' for any one character. */
int hg_glob(const char *pattern, const char *text);
/* The bits of value, a comma-separated list of some of the comma-separated `words` (bit k:
 * word k); -1 when one is empty or not among them. */
int hg_word_mask(const char *words, const char *value);
/* Length of the valid UTF-8 sequence at p (a byte of 0x80 or more), or 0 when it is not one. */
int hg_utf8_length(const unsigned char *p);

#endif
