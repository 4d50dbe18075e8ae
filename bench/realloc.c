/* Realloc growth: strings appended a few bytes at a time, then vectors doubled, all interleaved. */
#include "bench.h"
#include <string.h>

/* The expected byte at offset i of every string, so the copy made by a moving realloc is checked. */
static unsigned char pattern(size_t i)
{
	return (unsigned char)(i ^ (i >> 9));
}

struct str {
	unsigned char *p;
	size_t len;
	size_t target;
};

/* Naive string building: realloc to the exact new length on every append. */
static uint64_t grow_strings(uint64_t *rng, int nstr, size_t max_bytes)
{
	struct str s[nstr];
	uint64_t sum = 0;
	int unfinished = nstr;

	for (int i = 0; i < nstr; i++)
		s[i] = (struct str){ NULL, 0, rng_range(rng, max_bytes / 4, max_bytes) };
	while (unfinished > 0) {
		for (int i = 0; i < nstr; i++) {
			if (s[i].len >= s[i].target)
				continue;
			size_t add = rng_range(rng, 1, 64);
			unsigned char *p = realloc(s[i].p, s[i].len + add + 1);
			check(p != NULL, "realloc string");
			for (size_t k = s[i].len; k < s[i].len + add; k++)
				p[k] = pattern(k);
			s[i].p = p;
			s[i].len += add;
			unfinished -= s[i].len >= s[i].target;
		}
	}
	for (int i = 0; i < nstr; i++) {
		for (size_t k = 0; k < s[i].len; k += 61)
			check(s[i].p[k] == pattern(k), "string contents after realloc");
		sum += s[i].len;
		free(s[i].p);
	}
	return sum;
}

/* Vector push_back: capacity doubles, contents must survive every move. */
static uint64_t grow_vectors(uint64_t *rng, int nvec, size_t max_elems)
{
	struct { uint64_t *p; size_t len, cap, target; } v[nvec];
	uint64_t sum = 0;
	int unfinished = nvec;

	for (int i = 0; i < nvec; i++) {
		v[i].p = NULL;
		v[i].len = v[i].cap = 0;
		v[i].target = rng_range(rng, max_elems / 4, max_elems);
	}
	while (unfinished > 0) {
		for (int i = 0; i < nvec; i++) {
			if (v[i].len >= v[i].target)
				continue;
			/* Push a short run at a time so the vectors' growth interleaves. */
			for (int k = 0; k < 16; k++) {
				if (v[i].len == v[i].cap) {
					v[i].cap = v[i].cap ? 2 * v[i].cap : 4;
					v[i].p = realloc(v[i].p, v[i].cap * sizeof *v[i].p);
					check(v[i].p != NULL, "realloc vector");
				}
				v[i].p[v[i].len] = v[i].len;
				v[i].len++;
			}
			unfinished -= v[i].len >= v[i].target;
		}
	}
	for (int i = 0; i < nvec; i++) {
		for (size_t k = 0; k < v[i].len; k += 97)
			check(v[i].p[k] == k, "vector contents after realloc");
		sum += v[i].len;
		free(v[i].p);
	}
	return sum;
}

int main(int argc, char **argv)
{
	long rounds = arg_long(argc, argv, 1, 10);
	/* Optional limits, smaller for the checkers' benchmark (bench/check.py): exact-size
	 * growth copies O(length^2) bytes under an allocator that always moves. */
	size_t max_string = (size_t)arg_long(argc, argv, 2, 1 << 20);
	size_t max_elems = (size_t)arg_long(argc, argv, 3, 256 << 10);
	uint64_t rng = 0x5eed;
	uint64_t sum = 0;

	for (long r = 0; r < rounds; r++) {
		sum += grow_strings(&rng, 32, max_string);
		sum += grow_vectors(&rng, 32, max_elems);
	}
	printf("realloc %ld sum=%llu\n", rounds, (unsigned long long)sum);
	return 0;
}
