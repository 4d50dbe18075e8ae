/* leak_own_start.c — a program with its own _start (built -nostartfiles) that ends by exit():
 * libc's start code never runs, so neither does ld.so's destructor runner, which glibc
 * registers there. Loses 18 bytes, prints a line, exits with status 3. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) static void lose_before_exit(void)
{
	char *volatile p = malloc(18);
	memset(p, 1, 18);
	p = NULL;
}

void start_c(void)
{
	lose_before_exit();
	printf("own start\n");
	exit(3);
}

__asm__(".globl _start\n_start:\n\tand $-16, %rsp\n\tcall start_c\n\thlt\n");
