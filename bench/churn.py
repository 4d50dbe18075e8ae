# Python workload for the allocator benchmark: dict, list and string churn with a deterministic seed.
import random
import sys


def main(rounds):
    rng = random.Random(1234)
    total = 0
    for r in range(rounds):
        # A dict of records replaced at random, the shape of a cache or a symbol table.
        table = {}
        for i in range(60000):
            key = "k%d" % rng.randrange(40000)
            table[key] = [i, str(i) * (i % 7 + 1), {"n": i, "r": r}]
        # String building and splitting: many short-lived strings of mixed length.
        words = [("w%x" % rng.getrandbits(24)) * rng.randrange(1, 20) for _ in range(30000)]
        text = " ".join(words)
        total += len(text.split())
        total += sum(len(s) for s in sorted(words)[:1000])
        # Lists grown, sliced and dropped; tuples as dict keys.
        grid = {(x, y): [x * y] * (x % 5) for x in range(150) for y in range(150)}
        total += len(table) + len(grid)
        del table, words, text, grid
    print("python churn", rounds, total)


main(int(sys.argv[1]) if len(sys.argv) > 1 else 8)
