/* util.c — allocation, interned strings, the pointer map, arrays, text buffers and globbing. */
#include "util.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "launch.h"

static void __attribute__((noreturn)) out_of_memory(void)
{
	fputs("heapguard: out of memory\n", stderr);
	exit(HG_EXIT_LAUNCHER);
}

void *hg_xmalloc(size_t bytes)
{
	void *p = malloc(bytes ? bytes : 1);
	if (p == NULL)
		out_of_memory();
	return p;
}

void *hg_xcalloc(size_t n, size_t bytes)
{
	void *p = calloc(n ? n : 1, bytes ? bytes : 1);
	if (p == NULL)
		out_of_memory();
	return p;
}

void *hg_xrealloc(void *p, size_t bytes)
{
	p = realloc(p, bytes ? bytes : 1);
	if (p == NULL)
		out_of_memory();
	return p;
}

char *hg_xstrdup(const char *s)
{
	size_t len = strlen(s) + 1;
	return memcpy(hg_xmalloc(len), s, len);
}

/* FNV-1a: short keys (paths, names), no adversary. */
uint64_t hg_hash_bytes(const void *p, size_t len)
{
	const unsigned char *b = p;
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < len; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

/* Mixes a key so that aligned pointers and small ids spread over the table. */
static size_t slot_of(uint64_t key, size_t cap)
{
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdull;
	key ^= key >> 33;
	return (size_t)key & (cap - 1);
}

void *hg_map_get(const struct hg_map *m, uint64_t key)
{
	if (m->cap == 0)
		return NULL;
	for (size_t i = slot_of(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
		if (m->keys[i] == key)
			return m->values[i];
		if (m->keys[i] == 0)
			return NULL;
	}
}

static void map_grow(struct hg_map *m)
{
	struct hg_map bigger = { .cap = m->cap ? m->cap * 2 : 64 };
	bigger.keys = hg_xcalloc(bigger.cap, sizeof *bigger.keys);
	bigger.values = hg_xcalloc(bigger.cap, sizeof *bigger.values);
	for (size_t i = 0; i < m->cap; i++)
		if (m->keys[i])
			hg_map_put(&bigger, m->keys[i], m->values[i]);
	hg_map_free(m);
	*m = bigger;
}

void hg_map_put(struct hg_map *m, uint64_t key, void *value)
{
	if (2 * (m->count + 1) > m->cap) /* at most half full: probes stay short */
		map_grow(m);
	size_t i = slot_of(key, m->cap);
	while (m->keys[i] != 0 && m->keys[i] != key)
		i = (i + 1) & (m->cap - 1);
	if (m->keys[i] == 0)
		m->count++;
	m->keys[i] = key;
	m->values[i] = value;
}

void hg_map_free(struct hg_map *m)
{
	free(m->keys);
	free(m->values);
	*m = (struct hg_map){ 0 };
}

/* Interned strings: a map from the string's hash to a chain of strings with that hash. */
struct interned {
	struct interned *next;
	char text[];
};
static struct hg_map interned_strings;

const char *hg_intern_len(const char *s, size_t len)
{
	if (s == NULL)
		return NULL;
	uint64_t h = hg_hash_bytes(s, len) | 1; /* | 1: never the empty key 0 */
	struct interned *head = hg_map_get(&interned_strings, h);
	for (struct interned *e = head; e; e = e->next)
		if (strncmp(e->text, s, len) == 0 && e->text[len] == '\0')
			return e->text;
	struct interned *e = hg_xmalloc(sizeof *e + len + 1);
	memcpy(e->text, s, len);
	e->text[len] = '\0';
	e->next = head;
	hg_map_put(&interned_strings, h, e);
	return e->text;
}

const char *hg_intern(const char *s)
{
	return s ? hg_intern_len(s, strlen(s)) : NULL;
}

void hg_vec_push(struct hg_vec *v, void *item)
{
	if (v->count == v->cap) {
		v->cap = v->cap ? 2 * v->cap : 16;
		v->items = hg_xrealloc(v->items, v->cap * sizeof *v->items);
	}
	v->items[v->count++] = item;
}

void hg_text_addn(struct hg_text *t, const char *s, size_t len)
{
	if (t->len + len + 1 > t->cap) {
		t->cap = (t->len + len + 1) * 2;
		t->s = hg_xrealloc(t->s, t->cap);
	}
	memcpy(t->s + t->len, s, len);
	t->len += len;
	t->s[t->len] = '\0';
}

void hg_text_add(struct hg_text *t, const char *s)
{
	hg_text_addn(t, s, strlen(s));
}

void hg_text_add_name(struct hg_text *t, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 || c == 0x7f)
			hg_text_printf(t, "\\x%02x", c);
		else
			hg_text_addn(t, s, 1);
	}
}

void hg_text_printf(struct hg_text *t, const char *fmt, ...)
{
	char small[256]; /* most report lines fit: one formatting pass */
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof small) {
		hg_text_addn(t, small, (size_t)n);
		return;
	}
	char *s = hg_xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	hg_text_addn(t, s, (size_t)n);
	free(s);
}

/* Iterative with one backtrack point: the last '*' seen, as in most shells' fnmatch. */
int hg_glob(const char *p, const char *s)
{
	const char *star = NULL, *resume = NULL;
	while (*s) {
		if (*p == '*') {
			star = p++;
			resume = s;
		} else if (*p == '?' || *p == *s) {
			p++;
			s++;
		} else if (star) {
			p = star + 1;
			s = ++resume;
		} else {
			return 0;
		}
	}
	while (*p == '*')
		p++;
	return *p == '\0';
}

int hg_word_mask(const char *words, const char *value)
{
	int mask = 0;
	for (;;) {
		size_t n = strcspn(value, ","), len = 0;
		int k = 0;
		const char *w = words;
		for (; *w; w += len + (w[len] == ','), k++) {
			len = strcspn(w, ",");
			if (n == len && strncmp(w, value, n) == 0)
				break;
		}
		if (*w == '\0')
			return -1;
		mask |= 1 << k;
		if (value[n] == '\0')
			return mask;
		value += n + 1;
	}
}

int hg_utf8_length(const unsigned char *p)
{
	/* RFC 3629's table: the second byte's range keeps out overlong forms, the surrogates
	 * (ED A0..BF) and code points past U+10FFFF (F4 90.. and up). */
	unsigned char lo = 0x80, hi = 0xbf;
	int n = 4;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, lo = p[0] == 0xe0 ? 0xa0 : 0x80, hi = p[0] == 0xed ? 0x9f : 0xbf;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		lo = p[0] == 0xf0 ? 0x90 : 0x80, hi = p[0] == 0xf4 ? 0x8f : 0xbf;
	else
		return 0;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (int i = 2; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return n;
}
