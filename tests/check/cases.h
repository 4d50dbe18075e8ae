/* cases.h — main() for the test programs that run one named case per invocation: `prog CASE`. */
#ifndef HG_TEST_CASES_H
#define HG_TEST_CASES_H

#include <stdio.h>
#include <string.h>

struct test_case {
	const char *name;
	void (*run)(void);
};

/* Runs the case argv[1] names and returns 0; without one, prints the usage and returns 2. */
static int run_case(int argc, char **argv, const struct test_case *cases, size_t n)
{
	for (size_t i = 0; argc > 1 && i < n; i++)
		if (strcmp(argv[1], cases[i].name) == 0) {
			cases[i].run();
			return 0;
		}
	fprintf(stderr, "usage: %s CASE\n", argv[0]);
	return 2;
}

#endif
