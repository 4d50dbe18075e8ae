/* Small-object build and teardown: a complete binary tree, freed bottom-up, several times over. */
#include "bench.h"

struct node {
	struct node *left, *right;
	uint64_t value;
};

static struct node *build(int depth, uint64_t value)
{
	struct node *n = xmalloc(sizeof *n);
	n->value = value;
	n->left = depth > 1 ? build(depth - 1, 2 * value) : NULL;
	n->right = depth > 1 ? build(depth - 1, 2 * value + 1) : NULL;
	return n;
}

/* Frees in post-order while build allocated in pre-order: a node is freed after its whole subtree. */
static uint64_t teardown(struct node *n)
{
	if (n == NULL)
		return 0;
	uint64_t sum = n->value + teardown(n->left) + teardown(n->right);
	free(n);
	return sum;
}

int main(int argc, char **argv)
{
	int depth = (int)arg_long(argc, argv, 1, 20);
	long rounds = arg_long(argc, argv, 2, 8);
	uint64_t sum = 0;

	for (long r = 0; r < rounds; r++)
		sum += teardown(build(depth, 1));
	printf("tree %d %ld sum=%llu\n", depth, rounds, (unsigned long long)sum);
	return 0;
}
