/* heap_open_race.c — a kept place opened by a fault while another thread's free takes its entry.
 *
 * 65 blocks of 3 MiB: 64 freed, their places kept (the checker's table is full), then a read
 * through the oldest faults and the checker opens that place (mprotect). This program's own
 * mprotect, which the preloaded checker calls (-rdynamic), holds that call until another
 * thread has freed the 65th block, whose place takes the oldest one's entry. Then a read
 * through the 65th block's pointer: reported as a use after free as well, and the program
 * goes on (it once found the entry marked open by the first fault, and died). stdout: the
 * two bytes read, then "went on". */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static char *oldest, *last;
static atomic_int hold, go_free, freed_last;

int mprotect(void *p, size_t n, int prot)
{
	if (atomic_load(&hold) && prot == (PROT_READ | PROT_WRITE) && (char *)p <= oldest && oldest < (char *)p + n) {
		atomic_store(&hold, 0);
		atomic_store(&go_free, 1);
		while (!atomic_load(&freed_last))
			;
	}
	return (int)syscall(SYS_mprotect, p, n, prot);
}

static void *free_last(void *arg)
{
	(void)arg;
	while (!atomic_load(&go_free))
		;
	free(last);
	atomic_store(&freed_last, 1);
	return NULL;
}

__attribute__((noinline)) static int read_oldest(void) { return *(volatile char *)oldest; }
__attribute__((noinline)) static int read_last(void) { return *(volatile char *)last; }

int main(void)
{
	char *p[64];
	for (int i = 0; i < 64; i++) {
		p[i] = malloc(3 << 20);
		memset(p[i], 1, 4096);
	}
	last = malloc(3 << 20);
	memset(last, 1, 4096);
	for (int i = 0; i < 64; i++)
		free(p[i]);
	oldest = p[0];
	pthread_t t;
	pthread_create(&t, NULL, free_last, NULL);
	atomic_store(&hold, 1);
	int a = read_oldest();
	pthread_join(t, NULL);
	int b = read_last();
	printf("%d %d\nwent on\n", a, b);
	return 0;
}
