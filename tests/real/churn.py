"""churn.py — deterministic dict/list/str churn plus C-extension imports, compared with and without heapguard."""
import bz2
import collections
import ctypes
import decimal
import hashlib
import json
import lzma
import re
import sqlite3
import ssl
import struct
import zlib


def rng(seed):
    """A fixed xorshift generator, so the output never depends on the interpreter's hashing."""
    x = seed
    while True:
        x ^= (x << 13) & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 7
        x ^= (x << 17) & 0xFFFFFFFFFFFFFFFF
        yield x


def main():
    r = rng(88172645463325252)
    table = {}
    words = []
    for round_ in range(8):
        for i in range(30000):
            n = next(r)
            word = "".join(chr(97 + (n >> s) % 26) for s in range(0, 5 * (1 + n % 8), 5))
            words.append(word)
            table.setdefault(word[:3], []).append(i)
        # drop half the words so freed memory gets reused
        words = words[len(words) // 2:]
        for key in [k for k in table if len(table[k]) % 2 == 0]:
            del table[key]
        counts = collections.Counter(w[0] for w in words)
        blob = json.dumps({"round": round_, "keys": sorted(table)[:50], "counts": sorted(counts.items())})
        digest = hashlib.sha256(zlib.compress(blob.encode())).hexdigest()
        print(round_, len(words), len(table), digest)

    db = sqlite3.connect(":memory:")
    db.execute("create table w (word text, n integer)")
    db.executemany("insert into w values (?, ?)", ((w, len(w)) for w in words))
    for row in db.execute("select n, count(*), min(word) from w group by n order by n"):
        print(*row)
    total = sum((decimal.Decimal(len(w)) / 7 for w in words), decimal.Decimal(0))
    print(total.quantize(decimal.Decimal("0.0001")))
    print(len(re.findall(r"[aeiou]{2,}", " ".join(words))), struct.pack("<q", len(words)).hex())
    # the compression and TLS modules are C extensions over shared libraries: each import is a dlopen
    text = "\n".join(words).encode()
    print(bz2.decompress(bz2.compress(text)) == text, lzma.decompress(lzma.compress(text)) == text)
    print(ctypes.sizeof(ctypes.c_long), ssl.create_default_context().verify_mode)


main()
