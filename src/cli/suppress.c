/* suppress.c — suppressions: reading the Valgrind-like file format, matching a kind and a
 * symbolized stack, and generating a ready entry for a report (--gen-suppressions).
 *
 *   # a comment
 *   {
 *      a name, any text
 *      heapguard:KIND            the error or leak kind, a pattern
 *      fun:PATTERN               a frame's function (demangled)
 *      obj:PATTERN               a frame's module path
 *      src:PATTERN               a frame's FILE:LINE
 *      ...                       any number of frames, none included
 *   }
 *
 * Patterns use '*' (any characters) and '?' (one character). The frame lines match the
 * stack from its innermost frame on (the access stack of an error, the allocation stack of a
 * leak); frames after the last line do not matter. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

enum frame_match { MATCH_FUN, MATCH_OBJ, MATCH_SRC, MATCH_ANY_FRAMES };

struct frame_pattern {
	enum frame_match what;
	const char *pattern;
};

struct hg_suppression {
	const char *name;
	const char *kind;                /* pattern */
	struct frame_pattern *frames;
	size_t count;
};

static struct hg_vec suppressions; /* struct hg_suppression *, in file order */

/* Strips leading and trailing white space in place. */
static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

static int parse_frame(char *line, struct frame_pattern *fp)
{
	static const struct {
		const char *prefix;
		enum frame_match what;
	} KINDS[] = { { "fun:", MATCH_FUN }, { "obj:", MATCH_OBJ }, { "src:", MATCH_SRC } };
	if (strcmp(line, "...") == 0) {
		*fp = (struct frame_pattern){ MATCH_ANY_FRAMES, NULL };
		return 0;
	}
	for (size_t i = 0; i < sizeof KINDS / sizeof KINDS[0]; i++)
		if (strncmp(line, KINDS[i].prefix, 4) == 0 && line[4] != '\0') {
			*fp = (struct frame_pattern){ KINDS[i].what, hg_xstrdup(line + 4) };
			return 0;
		}
	return -1;
}

/* The parser's states, one per line of an entry. */
enum state { OUTSIDE, NAME, KIND, FRAMES };

int hg_suppressions_load(const char *path)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		fprintf(stderr, "heapguard: cannot read suppressions %s: %s\n", path, strerror(errno));
		return -1;
	}
	char buf[4096];
	enum state state = OUTSIDE;
	struct hg_suppression *s = NULL;
	const char *why = NULL;
	int lineno = 0;
	while (why == NULL && fgets(buf, sizeof buf, f)) {
		lineno++;
		char *line = trim(buf);
		if (line[0] == '#' || line[0] == '\0')
			continue;
		switch (state) {
		case OUTSIDE:
			if (strcmp(line, "{") != 0)
				why = "expected '{' to start an entry";
			s = hg_xcalloc(1, sizeof *s);
			state = NAME;
			break;
		case NAME:
			s->name = hg_xstrdup(line);
			state = strcmp(line, "}") == 0 ? OUTSIDE : KIND;
			if (state == OUTSIDE)
				why = "an entry needs a name and a kind line";
			break;
		case KIND:
			if (strncmp(line, "heapguard:", 10) != 0 || line[10] == '\0')
				why = "expected 'heapguard:KIND' on the line after the name";
			else
				s->kind = hg_xstrdup(line + 10);
			state = FRAMES;
			break;
		case FRAMES:
			if (strcmp(line, "}") == 0) {
				hg_vec_push(&suppressions, s);
				state = OUTSIDE;
				break;
			}
			s->frames = hg_xrealloc(s->frames, (s->count + 1) * sizeof *s->frames);
			if (parse_frame(line, &s->frames[s->count++]) < 0)
				why = "expected 'fun:', 'obj:', 'src:', '...' or '}'";
			break;
		}
	}
	fclose(f);
	if (why == NULL && state != OUTSIDE)
		why = "the last entry has no closing '}'";
	if (why != NULL) {
		fprintf(stderr, "heapguard: %s:%d: %s\n", path, lineno, why);
		return -1;
	}
	return 0;
}

static int frame_matches(const struct frame_pattern *fp, const struct hg_frame *f)
{
	switch (fp->what) {
	case MATCH_FUN:
		return hg_glob(fp->pattern, f->function ? f->function : "??");
	case MATCH_OBJ:
		return hg_glob(fp->pattern, f->module ? f->module : "?");
	case MATCH_SRC: {
		if (f->file == NULL)
			return 0;
		char where[4096 + 16];
		snprintf(where, sizeof where, "%s:%u", f->file, f->line);
		return hg_glob(fp->pattern, where);
	}
	case MATCH_ANY_FRAMES:
		break;
	}
	return 1;
}

/* Whether the patterns match the start of the frames; "..." tries every number of frames. */
static int frames_match(const struct frame_pattern *p, size_t np, const struct hg_frame *f,
			size_t nf)
{
	for (; np > 0; p++, np--, f++, nf--) {
		if (p->what == MATCH_ANY_FRAMES) {
			for (size_t skip = 0; skip <= nf; skip++)
				if (frames_match(p + 1, np - 1, f + skip, nf - skip))
					return 1;
			return 0;
		}
		if (nf == 0 || !frame_matches(p, f))
			return 0;
	}
	return 1;
}

const struct hg_suppression *hg_suppression_match(const char *kind, const struct hg_stack *stack)
{
	for (size_t i = 0; i < suppressions.count; i++) {
		const struct hg_suppression *s = suppressions.items[i];
		if (hg_glob(s->kind, kind) &&
		    frames_match(s->frames, s->count, stack ? stack->frames : NULL,
				 stack ? stack->count : 0))
			return s;
	}
	return NULL;
}

const char *hg_suppression_name(const struct hg_suppression *s)
{
	return s->name;
}

/* Frames after main are the C library's start-up code, the same for every report and
 * different from one libc to the next: the entry stops at main. */
void hg_suppression_generate(const char *kind, const struct hg_stack *stack, struct hg_text *out)
{
	const struct hg_frame *first = stack && stack->count ? &stack->frames[0] : NULL;
	hg_text_printf(out, "{\n   %s in %s\n   heapguard:%s\n", kind,
		       first && first->function ? first->function : "??", kind);
	for (size_t i = 0; stack && i < stack->count; i++) {
		const struct hg_frame *f = &stack->frames[i];
		if (f->function)
			hg_text_printf(out, "   fun:%s\n", f->function);
		else if (f->module)
			hg_text_printf(out, "   obj:%s\n", f->module);
		else
			hg_text_add(out, "   fun:*\n");
		if (f->function && strcmp(f->function, "main") == 0)
			break;
	}
	hg_text_add(out, "}\n");
}
