/* suppress.c — suppressions: reading the Valgrind-like file format (and valgrind's own
 * Memcheck entries), matching a kind and a symbolized stack, and generating a ready entry for
 * a report (--gen-suppressions).
 *
 *   # a comment
 *   {
 *      a name, any text
 *      heapguard:KIND            the error or leak kind, a pattern
 *      call:PATTERN              optional: the call the report was made in (strcpy, free,
 *                                malloc, ...), which its stack leaves out
 *      fun:PATTERN               a frame's function (demangled, or as linked)
 *      obj:PATTERN               a frame's module path
 *      src:PATTERN               a frame's FILE:LINE or FILE (its base name when PATTERN
 *                                has no '/')
 *      ...                       any number of frames, none included
 *   }
 *
 * Patterns use '*' (any characters) and '?' (one character). The frame lines match the
 * stack from its innermost frame on (the access stack of an error, the allocation stack of a
 * leak); frames after the last line do not matter.
 *
 * A valgrind file works as it is. Its Memcheck entries ("Memcheck:Leak" with an optional
 * "match-leak-kinds:" line, "Memcheck:Addr4", "Memcheck:Param" and its parameter line, ...)
 * stand for the heapguard kinds that report the same errors (MEMCHECK below); entries of
 * valgrind's other tools are skipped. Valgrind's stack of a report made in a call (a leak's
 * malloc, an overflow's strcpy, a double free's free) starts with that call's frames, where
 * heapguard's starts at their caller: an entry matches such a report from the line after one
 * of its leading lines that names the report's call, when every line before it names a frame
 * heapguard leaves out too (HIDDEN_FUNCTIONS: libc's frames under printf, or strdup's malloc),
 * and from its first line only when that is "...". A call that valgrind's preload object
 * replaces (PRELOAD_CALLS) is one frame there, and a first line whose pattern matches it
 * (obj:*, fun:*) stands for it too. Where valgrind finds an error later than
 * heapguard (never-written bytes at the write() of fclose, heapguard at the fwrite() before),
 * the stacks differ and the entry does not match. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "report.h"

enum frame_match { MATCH_FUN, MATCH_OBJ, MATCH_SRC, MATCH_ANY_FRAMES };

struct frame_pattern {
	enum frame_match what;
	const char *pattern;
};

struct hg_suppression {
	const char *name;
	const char *kinds[8];            /* patterns; the entry covers a kind any of them matches */
	size_t nkinds;
	int memcheck;                    /* valgrind's: leading lines may name hidden frames */
	const char *call;                /* heapguard's call: line, or NULL */
	const char *where;               /* FILE:LINE of its '{'; NULL for hg_suppressions_hide_kind's */
	uint64_t uses;                   /* hg_suppressions_used's count */
	struct frame_pattern *frames;
	size_t count;
};

/* The heapguard kinds each Memcheck kind of suppression stands for. */
static const struct {
	const char *memcheck; /* a pattern over valgrind's kind names */
	const char *kinds[4];
} MEMCHECK[] = {
	{ "Addr*", { "heap-buffer-overflow", "heap-use-after-free", "invalid-access" } },
	{ "Jump", { "invalid-access" } },
	{ "Value*", { "uninitialized-read" } },
	{ "Cond", { "uninitialized-read" } },
	{ "Param", { "uninitialized-read", "heap-buffer-overflow", "heap-use-after-free" } },
	{ "Free", { "double-free", "invalid-free", "alloc-dealloc-mismatch" } },
	{ "Overlap", { "param-overlap" } },
	{ "FishyValue", { "allocation-size-too-big" } },
	{ "Leak", { "definitely-lost", "indirectly-lost", "possibly-lost", "still-reachable" } },
	/* valgrind's client requests, and realloc(p, 0), which heapguard takes as glibc does:
	 * no report of heapguard's is theirs, so their entries match nothing */
	{ "ClientCheck", { NULL } },
	{ "ReallocZero", { NULL } },
};

/* Frames a valgrind stack has and heapguard's do not: the allocation functions, and the libc
 * calls whose checks heapguard makes on entry and reports at their caller, with the libc
 * functions inside them where valgrind may find the same error (fprintf's strlen). */
static const char *const HIDDEN_FUNCTIONS[] = {
	"malloc", "calloc", "realloc", "reallocarray", "free", "memalign", "posix_memalign",
	"aligned_alloc", "valloc", "pvalloc", "_Znw*", "_Zna*", "_Zdl*", "_Zda*", "operator new*",
	"operator delete*", "mem*", "str*", "stp*", "wcs*", "wmem*", "bcmp", "index", "rindex",
	"__GI_*", "__*_chk", "*printf*", "*scanf*", "puts", "fputs*", "fwrite*", "fread*",
	"fgets*", "read", "write", "pread*", "pwrite*", "readv", "writev", "send*", "recv*", "_IO_*",
};
#define LEAD_LINES_MAX 8 /* leading lines of a valgrind entry that may name hidden frames */

/* Valgrind's preload object, where Debian 12 and older releases install it. */
static const char *const VALGRIND_PRELOADS[] = {
	"/usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so",
	"/usr/lib/x86_64-linux-gnu/valgrind/vgpreload_memcheck-amd64-linux.so",
};
/* The calls that object replaces, so that valgrind's stack of a report made in one has that
 * one frame above heapguard's first: the allocation functions and the string and memory
 * functions, not strdup and strndup (which copy with libc's own). In a stdio or printf
 * function, valgrind finds the error in libc's frames under it. */
static const char *const PRELOAD_CALLS[] = {
	"malloc", "calloc", "realloc", "free", "memalign", "posix_memalign", "aligned_alloc", "valloc",
	"pvalloc", "operator new*", "operator delete*", "mem*", "str*", "stp*", "wcscpy", "wcslen",
};

static struct hg_vec suppressions; /* struct hg_suppression *, in file order */

/* Whether the pattern of a heapguard:KIND line matches a kind: a typo would match nothing. */
static int names_a_kind(const char *pattern)
{
	for (size_t i = 0; i < HG_KINDS; i++)
		if (hg_glob(pattern, hg_kind_ids[i]))
			return 1;
	return 0;
}

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

/* The parser's states, one per line of an entry (a Memcheck entry may have one more line
 * after its kind: LEAK_KINDS or PARAM). */
enum state { OUTSIDE, NAME, KIND, LEAK_KINDS_LINE, PARAM, FRAMES, SKIP };

/* Takes valgrind's "TOOLS:KIND" line: s gets the kinds of a Memcheck entry; *next the state
 * after it (SKIP: another tool's entry). NULL, or why the line is wrong. */
static const char *memcheck_kind(const char *line, struct hg_suppression *s, enum state *next)
{
	const char *colon = strchr(line, ':');
	int ours = 0; /* "Memcheck" among the comma-separated tools */
	*next = SKIP;
	for (const char *t = line; t <= colon; t += strcspn(t, ",:") + 1) {
		size_t n = strcspn(t, ",:");
		if (n == 0)
			return "an empty tool name before ':' (expected TOOL:KIND, as Memcheck:Leak)";
		ours |= n == 8 && strncmp(t, "Memcheck", 8) == 0;
	}
	if (!ours)
		return NULL;
	/* AddrN and ValueN: the sizes valgrind has */
	const char *size = !strncmp(colon + 1, "Addr", 4) ? colon + 5 : !strncmp(colon + 1, "Value", 5) ? colon + 6 : NULL;
	if (size && strcmp(size, "1") && strcmp(size, "2") && strcmp(size, "4") && strcmp(size, "8") &&
	    strcmp(size, "16") && strcmp(size, "32"))
		return "a Memcheck kind heapguard does not know";
	for (size_t i = 0; i < sizeof MEMCHECK / sizeof MEMCHECK[0]; i++) {
		if (!hg_glob(MEMCHECK[i].memcheck, colon + 1))
			continue;
		for (size_t k = 0; k < 4 && MEMCHECK[i].kinds[k]; k++)
			s->kinds[s->nkinds++] = MEMCHECK[i].kinds[k];
		s->memcheck = 1;
		/* Param and FishyValue entries name the argument on the next line */
		*next = strcmp(colon + 1, "Leak") == 0 ? LEAK_KINDS_LINE
			: strcmp(colon + 1, "Param") == 0 || strcmp(colon + 1, "FishyValue") == 0 ? PARAM
												 : FRAMES;
		return NULL;
	}
	return "a Memcheck kind heapguard does not know";
}

/* Narrows a Leak entry to "match-leak-kinds: definite,possible" (or all). */
static const char *match_leak_kinds(const char *list, struct hg_suppression *s)
{
	while (isspace((unsigned char)*list))
		list++;
	if (strcmp(list, "all") == 0)
		return NULL;
	if (strcmp(list, "none") == 0) { /* valgrind's: the entry suppresses no leak */
		s->nkinds = 0;
		return NULL;
	}
	if (!*list)
		return "match-leak-kinds: needs a kind";
	int mask = hg_word_mask(HG_LEAK_WORDS, list);
	if (mask < 0)
		return "expected definite, indirect, possible, reachable or all after match-leak-kinds:";
	s->nkinds = 0;
	for (int k = 0; k < HG_LOST_KINDS; k++)
		if (mask >> k & 1)
			s->kinds[s->nkinds++] = hg_lost_ids[k];
	return NULL;
}

int hg_suppressions_load(const char *path)
{
	FILE *f = fopen(path, "r");
	struct stat st;
	if (f && fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
		fclose(f);
		f = NULL;
		errno = EISDIR;
	}
	if (f == NULL) {
		fprintf(stderr, "heapguard: cannot read suppressions %s: %s\n", path, strerror(errno));
		return -1;
	}
	char *buf = NULL;
	size_t cap = 0;
	enum state state = OUTSIDE;
	struct hg_suppression *s = NULL;
	const char *why = NULL;
	int lineno = 0;
	while (why == NULL && getline(&buf, &cap, f) >= 0) {
		lineno++;
		char *line = trim(buf);
		if (line[0] == '#' || line[0] == '\0')
			continue;
		switch (state) {
		case OUTSIDE:
			if (strcmp(line, "{") != 0)
				why = "expected '{' to start an entry";
			s = hg_xcalloc(1, sizeof *s);
			char where[PATH_MAX + 16];
			snprintf(where, sizeof where, "%s:%d", path, lineno);
			s->where = hg_xstrdup(where);
			state = NAME;
			break;
		case NAME:
			s->name = hg_xstrdup(line);
			state = strcmp(line, "}") == 0 ? OUTSIDE : KIND;
			if (state == OUTSIDE)
				why = "an entry needs a name and a kind line";
			break;
		case KIND:
			state = FRAMES;
			if (strncmp(line, "heapguard:", 10) == 0 && names_a_kind(line + 10))
				s->kinds[s->nkinds++] = hg_xstrdup(line + 10);
			else if (strncmp(line, "heapguard:", 10) == 0)
				why = "'heapguard:' names no kind heapguard reports (see the README's table)";
			else if (strchr(line, ':') && strchr(line, ':')[1] != '\0')
				why = memcheck_kind(line, s, &state);
			else
				why = "expected 'heapguard:KIND' (or valgrind's 'Memcheck:KIND') on the line after the name";
			break;
		case PARAM: /* the parameter, as "write(buf)" or "malloc(size)": any of them here */
			state = FRAMES;
			if (strcmp(line, "}") == 0 || strcmp(line, "...") == 0 ||
			    (strlen(line) > 4 && (!strncmp(line, "fun:", 4) || !strncmp(line, "obj:", 4) ||
						  !strncmp(line, "src:", 4))))
				why = "expected the argument line after Memcheck:Param or FishyValue (as write(buf))";
			break;
		case SKIP: /* another tool's entry */
			if (strcmp(line, "}") == 0) {
				free(s);
				state = OUTSIDE;
			}
			break;
		case LEAK_KINDS_LINE: /* "match-leak-kinds: ..." may follow Memcheck:Leak */
			state = FRAMES;
			if (strncmp(line, "match-leak-kinds:", 17) == 0) {
				why = match_leak_kinds(line + 17, s);
				break;
			}
			__attribute__((fallthrough)); /* a frame line */
		case FRAMES:
			if (!s->memcheck && !s->call && s->count == 0 && strncmp(line, "call:", 5) == 0 &&
			    line[5] != '\0') {
				s->call = hg_xstrdup(line + 5);
				break;
			}
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
	if (why == NULL && ferror(f))
		why = strerror(errno);
	fclose(f);
	free(buf);
	if (why == NULL && state != OUTSIDE)
		why = "the last entry has no closing '}'";
	if (why != NULL) {
		fprintf(stderr, "heapguard: %s:%d: %s\n", path, lineno, why);
		return -1;
	}
	return 0;
}

void hg_suppressions_hide_kind(const char *kind)
{
	struct hg_suppression *s = hg_xcalloc(1, sizeof *s);
	s->name = kind;
	s->kinds[s->nkinds++] = kind;
	s->frames = hg_xcalloc(1, sizeof *s->frames);
	s->frames[s->count++] = (struct frame_pattern){ MATCH_ANY_FRAMES, NULL };
	hg_vec_push(&suppressions, s);
}

static int frame_matches(const struct frame_pattern *fp, const struct hg_frame *f)
{
	switch (fp->what) {
	case MATCH_FUN:
		return hg_glob(fp->pattern, f->function ? f->function : "??") ||
		       (f->linkage && hg_glob(fp->pattern, f->linkage)) || (f->alias && hg_glob(fp->pattern, f->alias));
	case MATCH_OBJ:
		return hg_glob(fp->pattern, f->module ? f->module : "?");
	case MATCH_SRC: {
		if (f->file == NULL)
			return 0;
		/* A pattern without '/' names the file as valgrind prints it, by its base name;
		 * without a line it matches any line, as valgrind's "src:FILE" does. */
		const char *slash = strrchr(f->file, '/');
		const char *file = strchr(fp->pattern, '/') || !slash ? f->file : slash + 1;
		char where[4096 + 16];
		snprintf(where, sizeof where, "%s:%u", file, f->line);
		return hg_glob(fp->pattern, where) || hg_glob(fp->pattern, file);
	}
	case MATCH_ANY_FRAMES:
		break;
	}
	return 1;
}

/* Whether the patterns match the start of the frames. "..." stands for any number of frames:
 * as '*' in a glob, only the last one met is tried further on a mismatch, which keeps the
 * work to patterns x frames (trying every split at each made it exponential). */
static int frames_match(const struct frame_pattern *p, size_t np, const struct hg_frame *f,
			size_t nf)
{
	size_t i = 0, j = 0, star = 0, resume = 0; /* star: the pattern after the last "...", 0: none yet */
	while (i < np) {
		if (p[i].what == MATCH_ANY_FRAMES) {
			star = ++i;
			resume = j;
		} else if (j < nf && frame_matches(&p[i], &f[j])) {
			i++;
			j++;
		} else if (star && resume < nf) {
			i = star;
			j = ++resume;
		} else {
			return 0;
		}
	}
	return 1;
}

static int is_preload_call(const char *call)
{
	if (call == NULL || strcmp(call, "strdup") == 0 || strcmp(call, "strndup") == 0)
		return 0;
	for (size_t i = 0; i < sizeof PRELOAD_CALLS / sizeof PRELOAD_CALLS[0]; i++)
		if (hg_glob(PRELOAD_CALLS[i], call))
			return 1;
	return 0;
}

/* Whether a valgrind line names a frame heapguard's stacks do not have (HIDDEN_FUNCTIONS, or
 * valgrind's preload object). With any_match, a pattern that would match such a frame counts
 * too (obj:*, fun:*alloc): for the first line, where valgrind's first frame is sure to be a
 * replaced call's; further down, such a pattern may stand for one of the program's frames. */
static int names_hidden_frame(const struct frame_pattern *fp, int any_match)
{
	if (fp->what == MATCH_OBJ) {
		for (size_t i = 0; any_match && i < sizeof VALGRIND_PRELOADS / sizeof *VALGRIND_PRELOADS; i++)
			if (hg_glob(fp->pattern, VALGRIND_PRELOADS[i]))
				return 1;
		return hg_glob("*vgpreload*", fp->pattern);
	}
	if (fp->what != MATCH_FUN)
		return 0;
	for (size_t i = 0; i < sizeof HIDDEN_FUNCTIONS / sizeof HIDDEN_FUNCTIONS[0]; i++)
		if (hg_glob(HIDDEN_FUNCTIONS[i], fp->pattern) ||
		    (any_match && hg_glob(fp->pattern, HIDDEN_FUNCTIONS[i])))
			return 1;
	return 0;
}

/* name without a leading "__", a trailing "_chk" or a version ("memcpy@@GLIBC_2.14"), into
 * buf: valgrind names the call as linked, heapguard by the function the program meant. */
static const char *plain_name(const char *name, char *buf, size_t cap)
{
	if (strncmp(name, "__", 2) == 0)
		name += 2;
	size_t n = strcspn(name, "@");
	if (n >= 4 && strncmp(name + n - 4, "_chk", 4) == 0)
		n -= 4;
	snprintf(buf, cap, "%.*s", (int)n, name);
	return buf;
}

/* Whether a frame line names the call a report was made in (see the top): the call itself as
 * valgrind names it, memcpy by its replacement's name (memmove), operator new and delete by
 * any of their mangled or demangled forms, a replaced call by valgrind's preload object. */
static int names_call(const struct frame_pattern *fp, const char *call)
{
	if (fp->what == MATCH_OBJ)
		return is_preload_call(call) && names_hidden_frame(fp, 1);
	if (fp->what != MATCH_FUN)
		return 0;
	static const struct {
		const char *call, *mangled;
	} CXX[] = { { "operator new[]", "_Zna*" }, { "operator new", "_Znw*" },
		    { "operator delete[]", "_Zda*" }, { "operator delete", "_Zdl*" } };
	char pbuf[256], cbuf[256];
	const char *pat = plain_name(fp->pattern, pbuf, sizeof pbuf), *name = plain_name(call, cbuf, sizeof cbuf);
	if (hg_glob(fp->pattern, call) || hg_glob(pat, name))
		return 1;
	if (strcmp(name, "memcpy") == 0 && hg_glob(pat, "memmove"))
		return 1;
	for (size_t i = 0; i < sizeof CXX / sizeof *CXX; i++) {
		size_t n = strlen(CXX[i].call);
		if (strcmp(name, CXX[i].call) == 0)
			return hg_glob(CXX[i].mangled, pat) || (strncmp(pat, name, n) == 0 && pat[n] == '(');
	}
	return 0;
}

static int covers_kind(const struct hg_suppression *s, const char *kind)
{
	for (size_t k = 0; k < s->nkinds; k++)
		if (hg_glob(s->kinds[k], kind))
			return 1;
	return 0;
}

const struct hg_suppression *hg_suppression_match(const char *kind, const struct hg_stack *stack,
						  const char *call)
{
	const struct hg_frame *frames = stack ? stack->frames : NULL;
	size_t nframes = stack ? stack->count : 0;
	for (size_t i = 0; i < suppressions.count; i++) {
		const struct hg_suppression *s = suppressions.items[i];
		if (!covers_kind(s, kind) || (s->call && (!call || !hg_glob(s->call, call))))
			continue;
		int from_start = !s->memcheck || !call || s->count == 0 || s->frames[0].what == MATCH_ANY_FRAMES;
		if (from_start && frames_match(s->frames, s->count, frames, nframes))
			return s;
		/* A valgrind entry may also match after a leading line that names the call, all
		 * lines before it naming frames heapguard has not (see the top). */
		for (size_t k = 0; s->memcheck && call && k < s->count && k < LEAD_LINES_MAX; k++) {
			const struct frame_pattern *fp = &s->frames[k];
			if (fp->what == MATCH_ANY_FRAMES || !names_hidden_frame(fp, k == 0 && is_preload_call(call)))
				break;
			if (names_call(fp, call) && frames_match(s->frames + k + 1, s->count - k - 1, frames, nframes))
				return s;
		}
	}
	return NULL;
}

const char *hg_suppression_name(const struct hg_suppression *s)
{
	return s->name;
}

int hg_suppression_counts(const struct hg_suppression *s)
{
	return s->where != NULL;
}

void hg_suppressions_used(const struct hg_report *rep,
			  void (*fn)(const char *name, const char *where, uint64_t count, void *arg), void *arg)
{
	for (size_t i = 0; i < suppressions.count; i++)
		((struct hg_suppression *)suppressions.items[i])->uses = 0;
	for (size_t i = 0; i < rep->errors.count; i++) {
		const struct hg_error *e = rep->errors.items[i];
		if (e->suppressed_by)
			((struct hg_suppression *)e->suppressed_by)->uses += e->count;
	}
	for (size_t i = 0; i < rep->leaks.count; i++) {
		const struct hg_leak *l = rep->leaks.items[i];
		if (l->suppressed_by && !l->superseded)
			((struct hg_suppression *)l->suppressed_by)->uses++;
	}
	for (size_t i = 0; i < suppressions.count; i++) {
		const struct hg_suppression *s = suppressions.items[i];
		if (s->uses && s->where)
			fn(s->name, s->where, s->uses, arg);
	}
}

/* Frames after main are the C library's start-up code, the same for every report and
 * different from one libc to the next: the entry stops at main. A C++ function is named as
 * linked, as valgrind does: its demangled name may hold '*' or '?', which would match others.
 * A report without frames gets a comment instead: an entry without frame lines would hide
 * every report of its kind. The call line keeps the entry to the same call: two bad calls in
 * one function have the same frame lines. */
void hg_suppression_generate(const char *kind, const struct hg_stack *stack, const char *call,
			     struct hg_text *out)
{
	if (stack == NULL || stack->count == 0) {
		hg_text_printf(out, "# no suppression entry: no stack was recorded (as with --stack-depth=0), and an "
			       "entry without frame lines would hide every %s report\n", kind);
		return;
	}
	const struct hg_frame *first = &stack->frames[0];
	hg_text_printf(out, "{\n   %s in %s\n   heapguard:%s\n", kind, first->function ? first->function : "??",
		       kind);
	if (call)
		hg_text_printf(out, "   call:%s\n", call);
	for (size_t i = 0; i < stack->count; i++) {
		const struct hg_frame *f = &stack->frames[i];
		if (f->function)
			hg_text_printf(out, "   fun:%s\n", f->linkage ? f->linkage : f->function);
		else if (f->module)
			hg_text_printf(out, "   obj:%s\n", f->module);
		else
			hg_text_add(out, "   fun:*\n");
		if (f->function && strcmp(f->function, "main") == 0)
			break;
	}
	hg_text_add(out, "}\n");
}
