/* guard_sample: 3000 live 64-byte blocks; prints how many end against a page end (guarded). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define BLOCKS 3000

int main(void)
{
	static char *p[BLOCKS];
	int guarded = 0;
	for (int i = 0; i < BLOCKS; i++) {
		p[i] = malloc(64);
		p[i][0] = 1;
		guarded += ((uintptr_t)(p[i] + 64) & 4095) == 0;
	}
	for (int i = 0; i < BLOCKS; i++)
		free(p[i]);
	printf("guarded %d\n", guarded);
	return 0;
}
