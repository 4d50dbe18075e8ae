"""checklib.py — what the check-mode test scripts share: their paths, building a test program,
running one under libheapguard-check.so, and the TAP they print."""
import os
import subprocess
import sys

import hgreport

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build"))
LIB = os.path.join(BUILD, "libheapguard-check.so")
SRC = os.path.join(ROOT, "tests", "check")  # the test programs
OUT = os.path.join(BUILD, "tests", "check")  # and where they are built
os.makedirs(OUT, exist_ok=True)


def src(name):
    return os.path.join(SRC, name)


def build(path, flags=("-pthread",), name=None, compiler="gcc"):
    """Compiles path with -g -O0 and flags into OUT; returns the executable."""
    exe = os.path.join(OUT, name or os.path.splitext(os.path.basename(path))[0])
    subprocess.run([compiler, "-g", "-O0", *flags, "-o", exe, path], check=True)
    return exe


def run(argv, options="leak_check=no", preload=True, env_extra=None, timeout=30):
    """Runs argv with the checking library preloaded and HEAPGUARD_OPTIONS=options (preload=False:
    without heapguard). Returns (status, stdout, stderr, parsed report); status None on timeout.
    stdout keeps every byte (surrogateescape), so outputs compare exactly."""
    env = dict(os.environ)
    for var in ("LD_PRELOAD", "HEAPGUARD_OPTIONS", "HEAPGUARD_RECORDS"):
        env.pop(var, None)
    if preload:
        env.update(LD_PRELOAD=LIB, HEAPGUARD_OPTIONS=options)
    env.update(env_extra or {})
    try:
        p = subprocess.run(argv, env=env, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "", "timed out", hgreport.parse("")
    err = p.stderr.decode("utf-8", "replace")
    return p.returncode, p.stdout.decode("utf-8", "surrogateescape"), err, hgreport.parse(err)


class Tap:
    """Collects named results (a list of reasons each: empty passes) and prints them as TAP."""

    def __init__(self):
        self.results = []
        self.planned = False

    def plan(self, n):
        """Announces n results up front, so that the runner counts those never printed."""
        print("1..%d" % n, flush=True)
        self.planned = True

    def check(self, name, why):
        self.results.append((name, [w for w in why if w]))

    def finish(self):
        """Prints the results; returns the exit status (1 when any failed)."""
        if not self.planned:
            print("1..%d" % len(self.results))
        for i, (name, why) in enumerate(self.results, 1):
            print("%s %d - %s" % ("not ok" if why else "ok", i, name))
            for w in why:
                for line in str(w).splitlines():
                    print("# " + line)
        return 1 if any(why for _, why in self.results) else 0
