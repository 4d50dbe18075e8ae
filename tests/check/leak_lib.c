/* leak_lib.c — a library that leaks a block from a function of its own that it does not
 * export, for tests/check_leak.py: built with its symbol table and stripped, then loaded with
 * dlopen by leak_cases, so that the report's names come from .symtab or from .dynsym. */
#include <stdlib.h>
#include <string.h>

static void *lost;

static __attribute__((noinline)) void leak_lib_inner(void)
{
	lost = malloc(LEAK_BYTES);
	memset(lost, 1, LEAK_BYTES);
	lost = NULL;
}

void leak_lib_lose(void)
{
	leak_lib_inner();
}
