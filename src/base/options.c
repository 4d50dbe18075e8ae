/* options.c — parser, defaults and help text generated from the one option table. */
#include "base/options.h"

#include <stddef.h>
#include <string.h>

#include "base/fmt.h"

enum type { T_BOOL, T_UINT, T_SIZE, T_CHOICE, T_SET, T_SAMPLE };
#define BOOL T_BOOL, NULL, 1
#define UINT T_UINT, NULL, UINT64_MAX
#define UPTO(max) T_UINT, NULL, max
#define SIZE T_SIZE, NULL, UINT64_MAX
#define CHOICE(list) T_CHOICE, list, 0
#define SAMPLE T_SAMPLE, NULL, UINT64_MAX /* N: one in N; all: 1, as the command spells it */
#define SET(list) T_SET, list, 0

struct option {
	const char *name;
	enum type type;
	const char *choices;
	uint64_t max; /* the largest number it takes */
	uint64_t def;
	size_t offset;
	const char *help;
};

#define HG_OPTION_ROW(type, field, dflt, text) \
	{ #field, type, dflt, offsetof(struct hg_options, field), text },
static const struct option table[] = { HG_OPTION_TABLE(HG_OPTION_ROW) };
#undef HG_OPTION_ROW
#define NOPTIONS (sizeof table / sizeof table[0])

struct hg_options hg_opt;

/* Length of the key or value starting at s, up to '=', ':' or end. */
static size_t token_len(const char *s)
{
	size_t n = 0;
	while (s[n] && s[n] != '=' && s[n] != ':')
		n++;
	return n;
}

static int token_is(const char *s, size_t n, const char *word)
{
	size_t i = 0;
	for (; i < n && word[i]; i++)
		if (s[i] != word[i])
			return 0;
	return i == n && word[i] == 0;
}

/* Index of `v` (length n) in the "a|b|c" list, or -1. */
static int choice_index(const char *list, const char *v, size_t n)
{
	int idx = 0;
	for (const char *w = list;; idx++) {
		size_t len = 0;
		while (w[len] && w[len] != '|')
			len++;
		size_t i = 0;
		while (i < n && i < len && v[i] == w[i])
			i++;
		if (i == n && n == len)
			return idx;
		if (!w[len])
			return -1;
		w += len + 1;
	}
}

/* A SET's value: the bits of the comma-separated words of v[0..n) in the list, all of
 * them for "all", none for "none"; 0 when a word is not in the list. */
static int parse_set(const char *list, const char *v, size_t n, uint64_t *out)
{
	if (token_is(v, n, "none") || token_is(v, n, "all")) {
		int words = 1;
		for (const char *w = list; *w; w++)
			words += *w == '|';
		*out = v[0] == 'a' ? ((uint64_t)1 << words) - 1 : 0;
		return 1;
	}
	*out = 0;
	for (size_t at = 0; at <= n;) {
		size_t len = 0;
		while (at + len < n && v[at + len] != ',')
			len++;
		int i = choice_index(list, v + at, len);
		if (i < 0)
			return 0;
		*out |= (uint64_t)1 << i;
		at += len + 1;
	}
	return 1;
}

static int parse_value(const struct option *o, const char *v, size_t n, uint64_t *out)
{
	if (o->type == T_CHOICE) {
		int i = choice_index(o->choices, v, n);
		*out = (uint64_t)i;
		return i >= 0;
	}
	if (o->type == T_SET)
		return parse_set(o->choices, v, n, out);
	if (o->type == T_SAMPLE && n == 3 && !memcmp(v, "all", 3)) {
		*out = 1;
		return 1;
	}
	unsigned shift = 0;
	if (o->type == T_SIZE && n > 1) {
		const char *units = "KMG";
		for (unsigned u = 0; u < 3; u++)
			if (v[n - 1] == units[u] || v[n - 1] == units[u] + ('a' - 'A'))
				shift = 10 * (u + 1);
		n -= shift != 0;
	}
	if (n == 0 || n > 12)
		return 0;
	uint64_t x = 0;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return 0;
		x = x * 10 + (uint64_t)(v[i] - '0');
	}
	/* the bytes must fit, not just the number before the suffix: 2^34 G wrapped to 0 */
	if (x > o->max >> shift)
		return 0;
	*out = x << shift;
	return 1;
}

/* before, "0-max", then after, into out (48 bytes; before and after short). */
static const char *range_text(char *out, const char *before, uint64_t max, const char *after)
{
	char digits[24];
	size_t n = 0, len = 0;
	do
		digits[n++] = (char)('0' + max % 10);
	while ((max /= 10) != 0);
	for (const char *p = before; *p; p++)
		out[len++] = *p;
	out[len++] = '0';
	out[len++] = '-';
	while (n)
		out[len++] = digits[--n];
	for (const char *p = after; *p; p++)
		out[len++] = *p;
	out[len] = 0;
	return out;
}

static void warn(const char *what, const char *s, size_t n, const char *tail)
{
	struct hg_buf b = { .len = 0 };
	hg_buf_prog(&b);
	hg_buf_str(&b, what);
	hg_buf_str(&b, " '");
	for (size_t i = 0; i < n && b.len < sizeof b.text; i++)
		b.text[b.len++] = s[i];
	hg_buf_str(&b, "'");
	hg_buf_str(&b, tail);
	if (what[0] == 'u') {
		hg_buf_str(&b, "; valid options:");
		for (size_t i = 0; i < NOPTIONS; i++) {
			hg_buf_str(&b, " ");
			hg_buf_str(&b, table[i].name);
		}
	}
	hg_buf_str(&b, "\n");
	hg_buf_flush(&b);
}

static void print_help(void)
{
	struct hg_buf b = { .len = 0 };
	hg_buf_str(&b, "heapguard options (HEAPGUARD_OPTIONS=key=value:key=value):\n");
	hg_buf_flush(&b);
	for (size_t i = 0; i < NOPTIONS; i++) {
		const struct option *o = &table[i];
		hg_buf_str(&b, "  ");
		hg_buf_str(&b, o->name);
		hg_buf_str(&b, "=");
		char range[48];
		if (o->type == T_SET)
			hg_buf_str(&b, "LIST of ");
		hg_buf_str(&b, o->type == T_CHOICE || o->type == T_SET ? o->choices : o->type == T_BOOL ? "0|1" :
			   o->type == T_SIZE ? "BYTES[K|M|G]" : o->type == T_SAMPLE ? "N|all" : o->max == UINT64_MAX ? "N" :
			   range_text(range, "", o->max, ""));
		hg_buf_str(&b, " (default ");
		if (o->type == T_CHOICE || o->type == T_SET) {
			/* a CHOICE's word number def; a SET's words whose bits def has */
			unsigned k = 0, listed = 0;
			for (const char *w = o->choices; *w; k++) {
				size_t len = 0;
				while (w[len] && w[len] != '|')
					len++;
				if (o->type == T_CHOICE ? k == o->def : (o->def >> k & 1)) {
					hg_buf_str(&b, listed++ ? "," : "");
					for (size_t i = 0; i < len && b.len < sizeof b.text; i++)
						b.text[b.len++] = w[i];
				}
				w += len + (w[len] == '|');
			}
		} else {
			hg_buf_dec(&b, o->def);
		}
		hg_buf_str(&b, "): ");
		hg_buf_str(&b, o->help);
		hg_buf_str(&b, "\n");
		hg_buf_flush(&b);
	}
}

void hg_options_parse(const char *text)
{
	for (size_t i = 0; i < NOPTIONS; i++)
		*(uint64_t *)((char *)&hg_opt + table[i].offset) = table[i].def;
	for (const char *s = text; s && *s;) {
		size_t klen = token_len(s);
		const char *v = s[klen] == '=' ? s + klen + 1 : s + klen;
		size_t vlen = s[klen] == '=' ? token_len(v) : 0;
		const struct option *o = NULL;
		for (size_t i = 0; i < NOPTIONS; i++)
			if (token_is(s, klen, table[i].name))
				o = &table[i];
		uint64_t val;
		if (klen == 0 && s[0] == '=') {
			warn("unknown option", s, 1 + vlen, " (no name before '=')");
		} else if (klen == 0) {
			/* empty item, e.g. "a=1::b=2" */
		} else if (!o) {
			warn("unknown option", s, klen, "");
		} else if (!parse_value(o, v, vlen, &val)) {
			char range[48];
			warn("bad value for option", s, klen, o->type == T_BOOL ? " (expected 0 or 1)" :
				 o->type == T_UINT ? (o->max == UINT64_MAX ? " (expected a number)" :
						      range_text(range, " (expected ", o->max, ")")) :
				 o->type == T_SIZE ? " (expected bytes, e.g. 64M)" :
				 o->type == T_SAMPLE ? " (expected a number or all)" :
				 o->type == T_SET ? " (expected a comma-separated list, all or none: see help=1)" :
						    " (see help=1)");
		} else {
			*(uint64_t *)((char *)&hg_opt + o->offset) = val;
		}
		s = v + vlen;
		while (*s && *s != ':')
			s++;
		if (*s == ':')
			s++;
	}
	if (hg_opt.help)
		print_help();
}
