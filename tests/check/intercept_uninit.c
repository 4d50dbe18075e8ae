/* intercept_uninit.c — output of never-written malloc bytes, one call per case (argv[1]). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cases.h"

void emit_write(void)
{
	char *p = malloc(16);
	memcpy(p, "abcd", 4);
	write(1, p, 16);
}

void emit_fwrite(void)
{
	char *p = malloc(32);
	fwrite(p, 1, 32, stdout);
}

void emit_puts(void)
{
	char *p = malloc(16);
	memcpy(p, "hi", 2);
	p[15] = 0;
	puts(p);
}

void emit_printf(void)
{
	char *p = malloc(16);
	memcpy(p, "hello", 5);
	p[15] = 0;
	printf("[%d] %s\n", 7, p);
}

/* The %s comes after arguments of every other class, and its precision cuts it to 3 bytes,
 * all never written: shorter than a run, but nothing else. */
void emit_fprintf(void)
{
	char *p = malloc(8);
	fprintf(stdout, "%5.2f %*d %lu %c %p %-3s|%.3s|\n", 1.5, 4, 7, 9UL, 'c', (void *)p, "ab", p);
}

static const struct test_case CASES[] = {
	{ "write", emit_write }, { "fwrite", emit_fwrite }, { "puts", emit_puts },
	{ "printf", emit_printf }, { "fprintf", emit_fprintf },
};

int main(int argc, char **argv)
{
	return run_case(argc, argv, CASES, sizeof CASES / sizeof CASES[0]);
}
