/* death.c — hardened-mode death tests: each invalid free/realloc aborts the child with one exact line. */
#define _GNU_SOURCE
#include "util.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static char global_buffer[64];

/* The parent prepares the pointers before fork, so it knows the address the report must name. */
struct death_case {
	const char *name;
	void (*setup)(struct death_case *c);
	void (*misuse)(struct death_case *c);
	const char *function; /* "free" or "realloc" */
	const char *kind;     /* "double free" or "invalid free" */
	void *block;          /* a valid block the misuse involves, if any */
	void *other;          /* a second valid block, if any */
	void *reported;       /* the address the report must print */
	char detail[96];      /* when set, what the report must say after the address */
	int child_sends_address; /* reported is only known in the child, which writes it to address_pipe */
};

/* The child sends the stack address it frees through this pipe: only the child's frame has it. */
static int address_pipe[2];

static void setup_small(struct death_case *c)
{
	c->block = malloc(64);
	c->reported = c->block;
}

static void setup_pair(struct death_case *c)
{
	c->block = malloc(64);
	c->other = malloc(64);
	c->reported = c->block;
}

static void setup_medium(struct death_case *c)
{
	c->block = malloc(3000);
	c->reported = c->block;
}

/* 1 MiB lives in a span of its own in an arena, 8 MiB in a mapping of its own. */
static void setup_mib(struct death_case *c)
{
	c->block = malloc(MIB);
	c->reported = c->block;
}

static void setup_8mib(struct death_case *c)
{
	c->block = malloc(8 * MIB);
	c->reported = c->block;
}

/* Two 8 MiB blocks side by side: one 16 MiB mapping, freed, serves both. */
static void setup_8mib_neighbours(struct death_case *c)
{
	free(tu_launder(malloc(16 * MIB)));
	c->other = malloc(8 * MIB);
	c->block = malloc(8 * MIB);
	assert_ptr_equal(c->block, (char *)c->other + 8 * MIB);
	c->reported = c->block;
}

static void setup_interior(struct death_case *c)
{
	c->block = malloc(64);
	c->reported = (char *)c->block + 8;
}

static void setup_large_interior(struct death_case *c)
{
	c->block = malloc(MIB);
	c->reported = (char *)c->block + 4096;
}

/* A pointer off the 16-byte grid inside a freed block of its own slices, which no span holds
 * any more: never a block's start, so not a double free. */
static void setup_freed_interior(struct death_case *c)
{
	c->block = malloc(MIB);
	free(c->block);
	c->reported = (char *)c->block + 4100;
}

/* Pointers on the 16-byte grid inside a freed block of its own slices, in its first slice
 * and in a later one: the report names the block they were inside. */
static void setup_freed_interior_grid(struct death_case *c, size_t offset)
{
	c->block = malloc(MIB);
	free(c->block);
	c->reported = (char *)c->block + offset;
	snprintf(c->detail, sizeof c->detail, " (inside a block of size %zu at %p, offset %zu)", (size_t)MIB,
		 c->block, offset);
}

static void setup_freed_interior_page(struct death_case *c)
{
	setup_freed_interior_grid(c, 4096);
}

static void setup_freed_interior_slice(struct death_case *c)
{
	setup_freed_interior_grid(c, 3 * 65536);
}

/* The case table is static, so this address is a global's. */
static void setup_global(struct death_case *c)
{
	c->reported = global_buffer + 16;
}

static void setup_mmap(struct death_case *c)
{
	void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	assert_true(page != MAP_FAILED);
	c->reported = page;
}

static void free_twice(struct death_case *c)
{
	free(tu_launder(c->block));
	free(tu_launder(c->block));
}

/* Freeing another block in between defeats a check that only compares with the last free. */
static void free_with_other_between(struct death_case *c)
{
	free(tu_launder(c->block));
	free(tu_launder(c->other));
	free(tu_launder(c->block));
}

/* malloc_trim unmaps the freed block at once, as time would. */
static void free_trim_free(struct death_case *c)
{
	free(tu_launder(c->block));
	malloc_trim(0);
	free(tu_launder(c->block));
}

/* The freed neighbours' pages become one cached range, which starts at the other block. */
static void free_neighbours_then_one_again(struct death_case *c)
{
	free(tu_launder(c->block));
	free(tu_launder(c->other));
	free(tu_launder(c->block));
}

static void *free_in_thread(void *p)
{
	free(tu_launder(p));
	return NULL;
}

static void free_in_other_thread(void *p)
{
	pthread_t t;

	if (pthread_create(&t, NULL, free_in_thread, p) != 0 || pthread_join(t, NULL) != 0)
		_exit(102);
}

/* Another thread's free puts the block's bit in the span's remote words, where the owner
 * takes it later; a second free by the owner must not take the block for free meanwhile (it
 * would be handed out twice once the remote bit is taken). */
static void free_remotely_then_locally(struct death_case *c)
{
	free_in_other_thread(c->block);
	free(tu_launder(c->block));
}

/* The owner's own free set the block's bit; another thread's free of it is the second. */
static void free_locally_then_remotely(struct death_case *c)
{
	free(tu_launder(c->block));
	free_in_other_thread(c->block);
}

static void free_reported(struct death_case *c)
{
	free(tu_launder(c->reported));
}

static void free_stack(struct death_case *c)
{
	char on_stack[64];

	memset(on_stack, 1, sizeof on_stack);
	c->reported = on_stack + 8;
	if (write(address_pipe[1], &c->reported, sizeof c->reported) != sizeof c->reported)
		_exit(101);
	free(tu_launder(c->reported));
}

static void realloc_reported(struct death_case *c)
{
	void *r = realloc(tu_launder(c->reported), 128);

	tu_launder(r);
}

static struct death_case CASES[] = {
	{.name = "double_free_small", .setup = setup_small, .misuse = free_twice,
	 .function = "free", .kind = "double free"},
	{.name = "double_free_medium", .setup = setup_medium, .misuse = free_twice,
	 .function = "free", .kind = "double free"},
	{.name = "double_free_1mib", .setup = setup_mib, .misuse = free_twice,
	 .function = "free", .kind = "double free"},
	{.name = "double_free_8mib", .setup = setup_8mib, .misuse = free_twice,
	 .function = "free", .kind = "double free"},
	{.name = "double_free_8mib_after_unmap", .setup = setup_8mib, .misuse = free_trim_free,
	 .function = "free", .kind = "double free"},
	{.name = "double_free_8mib_merged_with_freed_neighbour", .setup = setup_8mib_neighbours,
	 .misuse = free_neighbours_then_one_again, .function = "free", .kind = "double free"},
	{.name = "double_free_with_free_between", .setup = setup_pair, .misuse = free_with_other_between,
	 .function = "free", .kind = "double free"},
	{.name = "double_free_other_thread_first", .setup = setup_small, .misuse = free_remotely_then_locally,
	 .function = "free", .kind = "double free"},
	{.name = "double_free_other_thread_second", .setup = setup_small, .misuse = free_locally_then_remotely,
	 .function = "free", .kind = "double free"},
	{.name = "interior_pointer_free", .setup = setup_interior, .misuse = free_reported,
	 .function = "free", .kind = "invalid free"},
	{.name = "interior_pointer_free_large_block", .setup = setup_large_interior, .misuse = free_reported,
	 .function = "free", .kind = "invalid free"},
	{.name = "interior_pointer_of_freed_block", .setup = setup_freed_interior, .misuse = free_reported,
	 .function = "free", .kind = "invalid free"},
	{.name = "page_of_freed_block", .setup = setup_freed_interior_page, .misuse = free_reported,
	 .function = "free", .kind = "invalid free"},
	{.name = "later_slice_of_freed_block", .setup = setup_freed_interior_slice, .misuse = free_reported,
	 .function = "free", .kind = "invalid free"},
	{.name = "free_of_stack_address", .misuse = free_stack, .child_sends_address = 1,
	 .function = "free", .kind = "invalid free"},
	{.name = "free_of_global", .setup = setup_global, .misuse = free_reported,
	 .function = "free", .kind = "invalid free"},
	{.name = "free_of_foreign_mmap_page", .setup = setup_mmap, .misuse = free_reported,
	 .function = "free", .kind = "invalid free"},
	{.name = "realloc_of_interior_pointer", .setup = setup_interior, .misuse = realloc_reported,
	 .function = "realloc", .kind = "invalid free"},
};

static void child_misuse(void *arg)
{
	struct death_case *c = arg;
	struct rlimit no_core = {0, 0};

	setrlimit(RLIMIT_CORE, &no_core);
	c->misuse(c);
	/* still alive: the misuse went unnoticed, and the child's exit status 0 makes the test fail */
}

static void test_death(void **state)
{
	struct death_case *c = *state;
	const char *pattern = "^heapguard: (.+)\\(([0-9]+)\\): ([a-z_]+)\\(\\): (double free|invalid free) "
			      "of 0x([0-9a-f]+)( .*)?\n$";
	struct tu_child child;
	regmatch_t m[7];
	regex_t re;
	char word[128];

	if (c->setup != NULL)
		c->setup(c);
	assert_int_equal(pipe(address_pipe), 0);
	tu_run_child(child_misuse, c, 20, &child);
	close(address_pipe[1]);
	if (c->child_sends_address)
		CHECK(read(address_pipe[0], &c->reported, sizeof c->reported) == sizeof c->reported,
		      "child sent no address");
	close(address_pipe[0]);

	CHECK(!child.timed_out, "%s: child hung; stderr: %s", c->name, child.err);
	CHECK(WIFSIGNALED(child.status) && WTERMSIG(child.status) == SIGABRT,
	      "%s: child %s %d instead of SIGABRT; stderr: '%s'", c->name,
	      WIFEXITED(child.status) ? "exited with status" : "was killed by signal",
	      WIFEXITED(child.status) ? WEXITSTATUS(child.status) : WTERMSIG(child.status), child.err);
	CHECK(strchr(child.err, '\n') == child.err + child.err_len - 1,
	      "%s: expected exactly one stderr line, got '%s'", c->name, child.err);
	assert_int_equal(regcomp(&re, pattern, REG_EXTENDED), 0);
	int rc = regexec(&re, child.err, 7, m, 0);
	regfree(&re);
	CHECK(rc == 0, "%s: stderr '%s' does not match %s", c->name, child.err, pattern);

#define GROUP(i) (int)(m[i].rm_eo - m[i].rm_so), child.err + m[i].rm_so
	snprintf(word, sizeof word, "%.*s", GROUP(1));
	CHECK(strcmp(word, program_invocation_short_name) == 0, "%s: program '%s', expected '%s'", c->name, word,
	      program_invocation_short_name);
	CHECK(strtol(child.err + m[2].rm_so, NULL, 10) == child.pid, "%s: pid %.*s, expected %d", c->name, GROUP(2),
	      (int)child.pid);
	snprintf(word, sizeof word, "%.*s", GROUP(3));
	CHECK(strcmp(word, c->function) == 0, "%s: function %s(), expected %s()", c->name, word, c->function);
	snprintf(word, sizeof word, "%.*s", GROUP(4));
	CHECK(strcmp(word, c->kind) == 0, "%s: kind '%s', expected '%s'", c->name, word, c->kind);
	uintptr_t printed = (uintptr_t)strtoull(child.err + m[5].rm_so, NULL, 16);
	CHECK(printed == (uintptr_t)c->reported, "%s: address 0x%lx printed, %p passed", c->name,
	      (unsigned long)printed, c->reported);
	if (m[6].rm_so >= 0)
		snprintf(word, sizeof word, "%.*s", GROUP(6));
	else
		word[0] = 0;
	CHECK(!c->detail[0] || strcmp(word, c->detail) == 0, "%s: '%s' after the address, expected '%s'", c->name,
	      word, c->detail);
#undef GROUP
}

int main(void)
{
	enum { N = sizeof CASES / sizeof CASES[0] };
	struct CMUnitTest tests[N];

	for (size_t i = 0; i < N; i++)
		tests[i] = (struct CMUnitTest){.name = CASES[i].name, .test_func = test_death,
					       .initial_state = &CASES[i]};
	tu_init();
	return _cmocka_run_group_tests("death", tests, N, NULL, NULL);
}
