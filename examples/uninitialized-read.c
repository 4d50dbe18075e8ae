/* uninitialized-read: write a record whose bytes were never set */
/*
 * The bug: save() fills the header's magic, version and name, but malloc() does not clear
 * memory, so the unused tail of name[] goes to the file as whatever the heap held before:
 * the output changes from run to run, and may leak data. calloc() or a memset was meant.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct header {
	char magic[4];
	int version;
	char name[24];
};

static int save(FILE *out, const char *name)
{
	struct header *h = malloc(sizeof *h); /* BUG: calloc() was meant */
	if (h == NULL)
		return -1;
	memcpy(h->magic, "HGRD", 4);
	h->version = 1;
	strcpy(h->name, name); /* fills 5 of the 24 bytes */
	size_t n = fwrite(h, sizeof *h, 1, out);
	free(h);
	return n == 1 ? 0 : -1;
}

int main(void)
{
	FILE *out = fopen("/dev/null", "wb");
	if (out == NULL)
		return 1;
	int rc = save(out, "demo");
	fclose(out);
	fprintf(stderr, "saved a header of %zu bytes\n", sizeof(struct header));
	return rc == 0 ? 0 : 1;
}
