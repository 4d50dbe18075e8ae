#!/usr/bin/env python3
"""check_heap.py — the checked heap under libheapguard-check.so: each error kind found at free,
realloc or exit, with the block, offsets and stacks asserted; exit statuses; the examples
through the heapguard command. Prints TAP. Usage: tests/check_heap.py [BUILD_DIR]"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hgreport  # noqa: E402
from checklib import BUILD, OUT, Tap, build, src  # noqa: E402
import checklib  # noqa: E402

tap = Tap()
check = tap.check


def run(argv, options="leak_check=no", env_extra=None, preload=True):
    return checklib.run(argv, options, preload, env_extra, timeout=60)


def expect_error(r, kind, access=None, size=None, func=None, relation=None, distance=None,
                 block_size=None, top=None, alloc_top=None, free_top=None, detail=None):
    """The reasons the only error of report r differs from the expectation."""
    return hgreport.mismatches(r, kind=kind, access=access, size=size, func=func, relation=relation,
                               distance=distance, block_size=block_size, top=top, alloc_top=alloc_top,
                               free_top=free_top, detail=detail)


def summary_is(r, errors, contexts):
    s = r["error_summary"]
    return [] if s == {"errors": errors, "contexts": contexts} else ["error summary %r" % s]


def ended(rc, out, want_out, want_rc=0):
    """The reasons a case's exit status and stdout differ from the expected ones."""
    return [] if rc == want_rc and out == want_out else ["rc %r out %r" % (rc, out)]


def last_number(out):
    """The number a case printed last on stdout (resident KiB), 0 when none."""
    return int(out.split()[-1]) if out.split() else 0


def peak_kib(case, options):
    """The peak resident KiB that `case` prints, and its report."""
    rc, out, err, r = run([cases, case], options)
    return last_number(out), r


def check_clean_and_small(name, case, stdout_start, max_kib):
    """`case` runs clean, starts its stdout with stdout_start and ends it with under max_kib."""
    rc, out, err, r = run([cases, case], "leak_check=no")
    kib = last_number(out)
    check(name, ([] if out.startswith(stdout_start) else ["stdout %r" % out]) +
          ([] if kib < max_kib else ["%d KiB resident" % kib]) + summary_is(r, 0, 0))


def quarantine_growth(case):
    """What a 64M quarantine adds to `case`'s peak over none, as problems for check (it must
    hold 32-64 MiB more), and the report of the 64M run."""
    none, _ = peak_kib(case, "leak_check=no:quarantine=0")
    full, r = peak_kib(case, "leak_check=no:quarantine=64M")
    grown = (full - none) << 10
    return ([] if 32 << 20 <= grown <= 64 << 20 else ["grew by %.1f MiB" % (grown / 2**20)]), r


cases = build(src("heap_cases.c"), ("-fno-builtin", "-pthread"))
mismatch = build(src("heap_mismatch.cc"), ("-fno-builtin", "-pthread"), compiler="g++")
own_new = build(src("heap_own_new.cc"), ("-fno-builtin",), compiler="g++")
lib_new_so = os.path.join(OUT, "libheap_lib_new.so")
subprocess.run(["g++", "-g", "-O2", "-DLIB", "-fPIC", "-shared", "-Wl,-Bsymbolic", "-o", lib_new_so,
                src("heap_lib_new.cc")], check=True)
plug_so = os.path.join(OUT, "libheap_plug.so")
subprocess.run(["g++", "-g", "-O2", "-DPLUG", "-fPIC", "-shared", "-o", plug_so, src("heap_lib_new.cc")], check=True)
lib_new = os.path.join(OUT, "heap_lib_new")
subprocess.run(["g++", "-g", "-O0", "-o", lib_new, src("heap_lib_new.cc"), lib_new_so, "-Wl,-rpath," + OUT],
               check=True)

rc, out, err, r = run([cases, "overflow"])
check("overflow found at free: offset, size, stacks",
      expect_error(r, "heap-buffer-overflow", "write", 4, None, "after", 0, 40, "release_it",
                   "make_array", None, "freed") + summary_is(r, 1, 1))

rc, out, err, r = run([cases, "underflow"])
check("underflow found at free", expect_error(r, "heap-buffer-overflow", "write", 1, None, "before", 1, 16,
                                              "release_it", "main"))

rc, out, err, r = run([cases, "aligned-underflow"])
check("underflow of a 4096-aligned block found at free",
      expect_error(r, "heap-buffer-overflow", "write", 1, None, "before", 1, 100, "release_it", "main"))

# The gap an alignment leaves before a block is not filled, past the 64 bytes of redzone that
# are: 200 2 MiB-aligned pages took 400 MB when all of it was.
kib, r = peak_kib("aligned-sparse", "leak_check=no")
check("2 MiB-aligned pages cost their pages, not their gaps",
      ([] if 0 < kib < 64 << 10 else ["peak %d KiB" % kib]) + summary_is(r, 0, 0))

# A small aligned block sits at the first aligned place past a redzone in a plain block: a
# 100-byte block aligned to 4 KiB took an 8 KiB one, a page aligned into it.
rc, out, err, r = run([cases, "aligned-small"])
kib = [int(x) for x in out.split()]
check("4000 page-aligned blocks of 100 bytes add under 6 KiB each",
      ([] if len(kib) == 2 and kib[1] - kib[0] < 4000 * 6 else ["peak KiB before and after %r" % kib]) +
      summary_is(r, 0, 0))

rc, out, err, r = run([cases, "use-after-free"])
check("write after free found at exit, its free's stack said to be that",
      expect_error(r, "heap-use-after-free", "write", 1, None, "inside", 8, 32, "release_it", "main",
                   "release_it", "found at exit; the stack above is its free's, the write came after it"))

# A forked child checks at its exit only the blocks on pages it no longer shares with its parent
# (which checks the others): each subshell of a bash with a full quarantine compared all of it.
rc, out, err, r = run([cases, "use-after-free-in-child"])
why = expect_error(r, "heap-use-after-free", "write", 1, None, "inside", 8, 32, "release_it", "main",
                   "release_it", "found at exit")
why += [] if len(r["pids"]) == 2 and r["errors"] and r["errors"][0]["summary"] else ["pids %r" % r["pids"]]
check("a write by a forked child into a block its parent freed is found at the child's exit", why)
rc, out, err, r = run([cases, "use-after-free-then-forks"])
check("a write after free before 5 forks is found once, by the parent, not again by each child",
      expect_error(r, "heap-use-after-free", "write", 1, None, "inside", 8, 32, "release_it", "main",
                   "release_it", "found at exit") + ([] if err.count("ERROR SUMMARY") == 6 else
                                                    ["%d error summaries" % err.count("ERROR SUMMARY")]))

rc, out, err, r = run([cases, "use-after-free-read-then-write"])
errs = r["errors"]
why = summary_is(r, 2, 2)
if len(errs) == 2:
    why += hgreport.mismatches({"errors": errs[:1]}, kind="heap-use-after-free", access="read", size=4,
                               func="memcpy", relation="inside", distance=0, block_size=32, top="read_freed")
    why += hgreport.mismatches({"errors": errs[1:]}, kind="heap-use-after-free", access="write", size=1,
                               relation="inside", distance=8, block_size=32, top="release_it", detail="at exit")
check("a read of a freed block by memcpy, then a store into it: two reports", why and why + err.splitlines()[:40])

rc, out, err, r = run([cases, "use-after-free-thread-copy"])
why = expect_error(r, "heap-use-after-free", "write", 11, "strcpy", "inside", 0, 32, "copy_into", "main",
                   "release_it") + summary_is(r, 1, 1)
why += [] if r["errors"] and r["errors"][0]["thread"] == 2 else ["not thread 2"]
check("strcpy into a freed block in another thread: reported there, once", why and why + err.splitlines()[:40])

rc, out, err, r = run([cases, "use-after-free-freed-by-thread"])
why = expect_error(r, "heap-use-after-free", "write", 1, None, "inside", 8, 32, "first_free", "main",
                   "first_free", "at exit")
why += [] if r["errors"] and r["errors"][0]["thread"] == 2 else ["headline not of thread 2, the freeing one"]
check("a store found at exit is headed by the thread of the free stack it shows", why and why + err.splitlines()[:40])

rc, out, err, r = run([cases, "overflows-freed-together"])
errs = r["errors"]
why = summary_is(r, 2, 2)
if len(errs) == 2:
    why += hgreport.mismatches({"errors": errs[:1]}, kind="heap-buffer-overflow", access="write", size=1,
                               relation="after", distance=0, block_size=10, top="release_it", alloc_top="make_name")
    why += hgreport.mismatches({"errors": errs[1:]}, kind="heap-buffer-overflow", access="write", size=1,
                               relation="before", distance=1, block_size=40, top="release_it",
                               alloc_top="make_table")
check("overflows of blocks from two allocation sites freed at one line: two contexts",
      why and why + err.splitlines()[:40])

rc, out, err, r = run([cases, "underscore-exit"], "leak_check=full")
why = expect_error(r, "heap-use-after-free", "write", 1, None, "inside", 8, 32, "release_it", "main",
                   "release_it", "at exit")
why += [] if [(l["kind"], l["bytes"]) for l in r["leaks"]] == [("definitely-lost", 10)] else ["leaks %r" % r["leaks"]]
why += [] if rc == 4 and r["error_summary"] else ["status %s, summary %r" % (rc, r["error_summary"])]
check("_exit: the store after free and the leak are found, the status kept", why and why + err.splitlines()[:40])

why = []
for attempt in range(3):
    rc, out, err, r = run([cases, "exit-in-handler"], "leak_check=full")
    why += [] if rc == 7 else ["run %d: status %s (None: hung)" % (attempt, rc)]
check("_exit from a signal handler that interrupted malloc ends the process", why and why + err.splitlines()[:20])

rc, out, err, r = run([cases, "many-threads-small-pages"])
check("past 16 threads at once the heap's arenas stop asking for huge pages",
      ([] if out == "huge pages asked 1, then 0, refused 1\n" else ["out %r" % out]) + summary_is(r, 0, 0))

rc, out, err, r = run([cases, "malloc-in-handler"], "leak_check=full")
check("malloc and free in a signal handler that interrupted them: no hang, no false report",
      ([] if rc == 0 and out == "alarms=2000\n" else ["status %s (None: hung), out %r" % (rc, out)]) +
      ([] if r["leaks"] == [] else ["leaks %r" % r["leaks"]]) + summary_is(r, 0, 0))

why = []
for attempt in range(8):  # before the fix 1 run in 4 hung
    rc, out, err, r = run([cases, "exit-in-handler", "exit"], "leak_check=full")
    # The handler lands inside the heap (then the checks are skipped, and it says so) or not.
    said = "no checks at exit (malloc and free are not async-signal-safe)" in err
    why += [] if rc == 3 else ["run %d: status %s (None: hung)" % (attempt, rc)]
    why += [] if said != bool(r["error_summary"]) else ["run %d: summary %r, notice %s" % (attempt, r["error_summary"], said)]
check("exit from a signal handler that interrupted malloc: no hang, a summary or a notice",
      why and why + err.splitlines()[:20])

rc, out, err, r = run([cases, "vfork-exit"], "leak_check=full")
why = [] if rc == 0 and out == "3\n" and len(r["pids"]) == 1 else ["status %s, out %r, pids %r" % (rc, out, r["pids"])]
check("the _exit of a vfork child checks nothing", why and why + err.splitlines()[:40])

rc, out, err, r = run([cases, "use-after-free-deep"])
check("write after free 9000 bytes into a block of 10000: offset and length",
      expect_error(r, "heap-use-after-free", "write", 2, None, "inside", 9000, 10000, "release_it", "main",
                   "release_it", "at exit"))

# A report written to a stderr whose reader has gone fails quietly: SIGPIPE ended the
# program, which wrote nothing there itself.
env = dict(os.environ, LD_PRELOAD=checklib.LIB, HEAPGUARD_OPTIONS="leak_check=no")
env.pop("HEAPGUARD_RECORDS", None)
p = subprocess.Popen([cases, "report-into-closed-pipe"], env=env, stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE)
p.stderr.close()
out = p.stdout.read()
rc = p.wait()
check("a report into a pipe whose reader has gone does not end the program",
      [] if rc == 0 and out == b"finished\n" else ["status %d, stdout %r" % (rc, out)])

# A block's right redzone ends where its room does: a medium block's record took its room
# from a size class (there is none) and filled 4 KiB past its 84 bytes of slack.
rc, out, err, r = run([cases, "medium-neighbours"], "leak_check=no:quarantine=0")
check("a medium block made again in a freed one's place leaves the block above it alone",
      ([] if out.startswith("kept=1") else ["stdout %r" % out]) + summary_is(r, 0, 0))

rc, out, err, r = run([cases, "overflow-into-slack"])
check("store 100 bytes past a block of 1000 found at free",
      expect_error(r, "heap-buffer-overflow", "write", 1, None, "after", 100, 1000, "release_it", "main",
                   None, "freed"))

rc, out, err, r = run([cases, "use-after-free-quarantine"], "leak_check=no:quarantine=4K")
e = r["errors"][0] if r["errors"] else {}
check("write after free found when the block leaves the quarantine",
      expect_error(r, "heap-use-after-free", "write", 1, None, "inside", 8, 32, None, "main",
                   "release_it", "left the quarantine; the stack above is its free's") +
      ([] if err.find("churned") > err.find("ERROR: heap-use-after-free") >= 0 else
       ["reported after the program's last line, not when the block left the quarantine"]))

# quarantine=0 holds nothing back, not even the batch a thread gathers before queueing: the
# block went back at its free, before the write, and nothing finds the write later.
rc, out, err, r = run([cases, "use-after-free-quarantine"], "leak_check=no:quarantine=0")
check("quarantine=0: a freed block goes back at once", summary_is(r, 0, 0))

# Blocks over 2 MiB keep the quarantine's way in guard mode (sampled: these are too large for
# a guard slot): their free poisons them, and a write is found when they leave.
rc, out, err, r = run([cases, "use-after-free-huge"], "leak_check=no:quarantine=64M:guard=100000")
check("guard mode: write after free into a 40 MiB block found when it leaves the quarantine",
      expect_error(r, "heap-use-after-free", "write", 2, None, "inside", 9000, 40 << 20, None, "main",
                   "release_it", "left the quarantine") +
      ([] if err.find("churned") > err.find("ERROR: heap-use-after-free") >= 0 else
       ["reported after the program's last line, not when the block left the quarantine"]))

# A block over 2 MiB gets the uninitialized pattern on its first 2 MiB only, and one larger
# than the whole quarantine goes back at its free, unpoisoned: a 512 MiB buffer written in 8
# MiB of it costs about 10 MiB, not 512 (filled whole at malloc and poisoned whole at free,
# it did).
check_clean_and_small("a 512 MiB buffer the program writes 8 MiB of: its first 2 MiB hold the pattern, "
                      "the rest reads zero, and it costs no more than it touched",
                      "big-sparse", "pattern=1 zero=1", 64 << 10)

# Past its first 2 MiB, a freed block's pages that are not resident were never written: its
# free poisons the resident ones only (a 64 MiB buffer written in 1 MiB stays about 3 MiB; it
# was poisoned whole), a read of an untouched page since is no write, and a write is found at
# its byte whether its page was untouched (no poison there: zero, and the write) or written.
for case, at, size, what in (("sparse-untouched-after-free", (56 << 20) + 100, 1, "a page it never touched"),
                             ("sparse-written-after-free", (32 << 20) + 5, 1, "a page it wrote, of a zero")):
    rc, out, err, r = run([cases, case], "leak_check=no:quarantine=128M:guard=100000")
    kib = last_number(out)
    check("guard mode: a 64 MiB buffer written in 1 MiB and freed: a write after free into %s is found at its byte, "
          "and the free poisoned the resident pages only" % what,
          expect_error(r, "heap-use-after-free", "write", size, None, "inside", at, 64 << 20, None,
                       "sparse_after_free",
                       "release_it", "left the quarantine") +
          ([] if kib < 16 << 10 else ["%d KiB resident after the free" % kib]))

# realloc copies a sparse block's resident pages only: the rest reads zero in both.
check_clean_and_small("a 64 MiB buffer written in 1 MiB, grown to 128 MiB: contents kept, the rest zero, "
                      "and the copy touched what was resident only", "sparse-realloc", "kept=1 zero=1", 24 << 10)

# --quarantine=SIZE bounds what freed blocks keep: their heap room, their records and the
# queue's entries all count (records alone were 64 bytes per block: a 64M quarantine of
# 40-byte blocks held 119 MB).
problems, r = quarantine_growth("quarantine-budget")
found = {(e["free_stack"] or ["?"])[0]: e["detail"] or "" for e in r["errors"]}
check("a million frees: the oldest freed block leaves the quarantine, the newest waits until exit",
      [] if len(r["errors"]) == 2 and "left the quarantine" in found.get("release_it", "") and
      "at exit" in found.get("release_last", "") else ["errors by free function: %r" % found])
check("a 64M quarantine holds 32-64 MiB more than none (peak resident)", problems)

# A block alone in its span holds the whole span back: a 64M quarantine of 50 KB blocks, each
# in a 64 KiB span, held 76 MiB more than none when it counted the blocks' class size alone.
check("a 64M quarantine of 50 KB blocks holds 32-64 MiB more than none (peak resident)",
      quarantine_growth("quarantine-tails")[0])

# Out of address space (ulimit -v), the quarantine gives its blocks back and the malloc is
# tried again: a program that runs plainly runs checked (the 121st malloc failed before).
rc, out, err, r = run([cases, "address-limit"], "leak_check=no")
check("under an address-space limit, a malloc that finds no memory empties the quarantine first",
      ([] if rc == 0 and out.strip() == "done" else ["status %d, stdout %r" % (rc, out[-200:])]) +
      (["errors: %r" % r["errors"]] if r["errors"] else []))
rc, out, err, r = run([cases, "address-limit-2m"], "leak_check=no")
check("100 blocks of 2 MiB and a byte live under a limit 300 MiB above the process (their mappings "
      "are not rounded to 4 MiB)", ended(rc, out, "done\n") + summary_is(r, 0, 0))
rc, out, err, r = run([cases, "address-limit-big"], "leak_check=no")
check("the same with blocks of 8 MiB, whose free moves their pages and keeps their place",
      ([] if rc == 0 and out.strip() == "done" else ["status %d, stdout %r" % (rc, out[-200:])]) +
      (["errors: %r" % r["errors"]] if r["errors"] else []))

# The checking library's own tables take address space as they fill: the stack depot's table
# of stacks by id, mapped whole (32 MiB), could not be had under a 40 MB limit, and every
# report said "(no stack recorded)".
rc, out, err, r = checklib.run(["/bin/sh", "-c", 'ulimit -v 40000; exec "$0" overflow', cases], "leak_check=no")
check("under a 40 MB address-space limit a report still has its stacks",
      expect_error(r, "heap-buffer-overflow", "write", 4, None, "after", 0, 40, "release_it",
                   "make_array", None, "freed"))

# Free runs too short for a span go back before the heap grows: 32 MiB of one-slice holes left
# by 50 KB blocks, then 300 blocks of two slices each. 102 MiB when the holes stayed.
kb, _ = peak_kib("holes", "leak_check=no:quarantine=0")
check("holes too short for new spans are given back before the heap grows (peak under 85 MiB)",
      [] if 0 < kb < 85 << 10 else ["peak %.1f MiB" % (kb / 1024)])

# A short program stays small: heapguard's first arena, record pool and stack depot start on
# small pages (on transparent huge pages from the start they made any checked process 8.5 MB).
kb, _ = peak_kib("small", "leak_check=full")
check("a short checked program peaks under 5 MiB resident",
      [] if 0 < kb < 5 << 10 else ["peak %d KiB" % kb])

# stats=1 counts what the program allocates and frees in check mode too (it printed zeros): a
# block of 1000 bytes has a core of 1032, class 32 (1152 bytes); guarded blocks have a row.
rc, out, err, r = run([cases, "stats"], "leak_check=no:stats=1")
total = re.search(r"heapguard stats: allocs=(\d+) frees=(\d+) requested=(\d+) peak_in_use=(\d+)", err)
counts = [int(x) for x in total.groups()] if total else []
check("stats=1 in check mode: the program's blocks by class, its peak in use",
      ([] if "heapguard stats: class=32 size=1152 allocs=100 frees=100 requested=100000\n" in err else
       ["no class 32 line in %r" % err[-600:]]) +
      ([] if counts and counts[0] >= 101 and counts[1] >= 100 and counts[2] >= 100100 and
       counts[3] >= 100000 else ["totals %r" % counts]))
rc, out, err, r = run([cases, "stats"], "leak_check=no:stats=1:guard=1")
guarded = re.search(r"heapguard stats: class=guarded allocs=(\d+) frees=(\d+) ", err)
check("stats=1 with guard pages: the guarded blocks have their row",
      [] if guarded and int(guarded.group(1)) >= 101 and int(guarded.group(2)) >= 100
      else ["no guarded row of 101 blocks in %r" % err[-600:]])

# A realloc of a block over 2 MiB refused under an address-space limit: the block stays live, and
# stats=1 counts it so (its free was counted, and the block was in use at exit by one less).
rc, out, err, r = run([cases, "stats-realloc-refused"], "leak_check=no:stats=1")
total = re.search(r"heapguard stats: allocs=(\d+) frees=(\d+) ", err)
live = re.search(r"in use at exit: \d+ bytes in (\d+) blocks", err)
check("stats=1: a realloc refused under ulimit -v leaves the counts of blocks in use right",
      ([] if total and live and int(total.group(1)) - int(total.group(2)) == int(live.group(1)) else
       ["stats %r, in use %r" % (total and total.groups(), live and live.group(1))]) +
      ended(rc, out, "refused 1\n"))

# mallinfo2's uordblks in check mode: the bytes of live blocks, which the checker counts anyway.
rc, out, err, r = run([cases, "mallinfo"])
used = [int(x) for x in out.split()]
check("mallinfo2 counts the bytes in use in check mode",
      [] if len(used) == 3 and used[1] - used[0] == 100000 and used[2] == used[0] else ["uordblks %r" % used])

rc, out, err, r = run([cases, "double-free"])
check("double free: three stacks, program goes on",
      expect_error(r, "double-free", None, 0, "free", "inside", 0, 24, "second_free", "main", "first_free") +
      ended(rc, out, "survived\n"))

# Linked in, libunwind's copy of libgcc's _Unwind_* API served libgcc's own unwinding of a
# cancelled thread: glibc's cleanup that unlocks the stream was skipped, and main hung on it.
rc, out, err, r = checklib.run([cases, "cancel-getc"], "leak_check=no", timeout=20)
check("a thread cancelled while it waits in getc leaves the stream usable",
      ended(rc, out, "getc after cancel: -1\n"))
rc, out, err, r = run([cases, "double-free-sites"])
check("double frees from one stack of blocks from two places: two contexts, both shown",
      ([] if [(e["kind"], (e["block"] or {}).get("size"), e["alloc_stack"][:1]) for e in r["errors"]] ==
       [("double-free", 10, ["alloc_ten"]), ("double-free", 20, ["alloc_twenty"])] else
       ["errors %r" % [(e["kind"], e["block"], e["alloc_stack"][:1]) for e in r["errors"]]]) +
      summary_is(r, 2, 2) + ended(rc, out, "survived\n"))

# With no quarantine the block's record goes back with it at the first free: the second is
# still a double free (it was "not in any block heapguard allocated"), without its stacks.
# Small stacks: a coroutine's 8 KiB one (makecontext), a PTHREAD_STACK_MIN thread's. libunwind
# took every capture on a context's stack (its trampoline stopped our unwinder) and 8 KiB more
# of it; reports took 16 KiB of the caller's stack: past a malloc'd stack's end, a false
# overflow of it, or in the thread the report lost ("internal error while reporting").
small = build(src("small_stacks.c"))
for size in ("6144", "8192"):
    rc, out, err, r = run([small, "coroutine", size])
    check("malloc and free on a coroutine's %s-byte stack: no report" % size,
          ended(rc, out, "ok\n") +
          (["errors %r" % r["errors"]] if r["errors"] else []))
# On a stack mapped apart, above the thread's, libunwind ran on it and took 10 KiB: a stack of
# 8 KiB overflowed into its guard page. It now runs on the thread's alternate signal stack.
for size in ("4096", "8192"):
    rc, out, err, r = run([small, "coroutine-mmap", size])
    check("malloc and free on a mapped coroutine stack of %s bytes: no report" % size,
          ([] if rc == 0 and out == "ok\n" else ["rc %d out %r: %r" % (rc, out, err[-300:])]) +
          (["errors %r" % r["errors"]] if r["errors"] else []))
rc, out, err, r = run([small, "coroutine-double-free"])
check("a double free on a coroutine's 8 KiB stack is reported, the coroutine named",
      expect_error(r, "double-free", func="free", top="free_twice") +
      ([] if r["errors"] and "on_coroutine" in r["errors"][0]["stack"][:2] else ["stack %r" % (r["errors"][:1],)]) +
      ended(rc, out, "ok\n"))
rc, out, err, r = run([small, "thread-double-free"])
check("a double free in a thread with a PTHREAD_STACK_MIN stack is reported",
      expect_error(r, "double-free", func="free", top="free_twice") +
      ([] if rc == 0 and out == "ok\n" else ["rc %d out %r: %r" % (rc, out, err[-300:])]))

taken = os.path.join(OUT, "program-file.txt")
rc, out, err, r = run([cases, "double-free-fds", taken])
with open(taken) as f:
    held = f.read()
check("preloaded: the program's own file on the library's copy of stderr gets no report, stderr does",
      expect_error(r, "double-free", func="free", top="second_free") +
      ([] if held == "payload\n" else ["the program's file holds %r" % held[:200]]) +
      ended(rc, out, "survived\n"))
rc, out, err, r = run([cases, "double-free-fds", "closed"])
check("preloaded: every descriptor past 2 closed (closefrom(3)), reports still reach stderr",
      expect_error(r, "double-free", func="free", top="second_free") +
      ended(rc, out, "survived\n"))
rc, out, err, r = run([cases, "double-free"], "leak_check=no:quarantine=0")
check("double free with quarantine=0: still a double free, where the block began",
      expect_error(r, "double-free", func="free", top="second_free", detail="freed before") +
      ended(rc, out, "survived\n"))

rc, out, err, r = run([cases, "double-free-threads"])
e = r["errors"][0] if r["errors"] else {}
check("double free across threads names both threads",
      expect_error(r, "double-free", free_top="first_free", top="second_free") +
      ([] if e.get("free_thread") == 2 and e.get("thread") == 1 else ["threads %r" % e]))

rc, out, err, r = run([cases, "interior"])
check("interior free: offset 16 in a block of 128",
      expect_error(r, "invalid-free", None, 0, "free", "inside", 16, 128, "release_it", "main", None,
                   "not the start"))

rc, out, err, r = run([cases, "global"])
check("free of a global", expect_error(r, "invalid-free", func="free", top="release_it", detail="not in any block"))

rc, out, err, r = run([cases, "stack"])
check("free of a stack address", expect_error(r, "invalid-free", func="free", top="release_it", detail="stack"))

rc, out, err, r = run([cases, "fork-while-freeing"], "leak_check=no:quarantine=4M")
check("children forked while other threads free find no write after free",
      ["%s in %s" % (e["kind"], e.get("stack", [{}])[:1]) for e in r["errors"]] +
      ([] if out == "failed children: 0\n" else ["out %r" % out]))

rc, out, err, r = run([cases, "pointer-from-freed"])
check("free of a pointer read from a freed block: the detail names the fill",
      expect_error(r, "invalid-free", func="free", top="release_it",
                   detail="the fill of freed blocks: a pointer read from a freed block?"))

rc, out, err, r = run([cases, "realloc-moves"])
check("realloc always moves; the old block is quarantined",
      expect_error(r, "heap-use-after-free", "write", block_size=16, free_top="main", top="main") +
      ([] if out == "moved=1 kept=1\n" else ["out %r" % out]))

rc, out, err, r = run([cases, "span-reuse"], "leak_check=no:quarantine=0")
check("blocks in reused span structs are found: no false invalid-free",
      ([] if out == "found=12288\n" else ["out %r" % out]) + summary_is(r, 0, 0))

rc, out, err, r = run([cases, "sigprocmask-in-handler"])
check("sigprocmask works in a signal handler that interrupts a stack capture",
      ([] if out == "handled=1 wrong=0\n" else ["out %r" % out]) + summary_is(r, 0, 0))

rc, out, err, r = run([cases, "realloc-invalid"])
check("realloc of a stack address is an invalid free and returns NULL",
      expect_error(r, "invalid-free", func="realloc", top="main") + ([] if out == "null=1\n" else [out]))

rc, out, err, r = run([cases, "usable-size"])
check("malloc_usable_size is the requested size", ([] if out == "usable=13\n" else [out]) + summary_is(r, 0, 0))

rc, out, err, r = run([cases, "fill"])
check("malloc fills with HEAPGUARD_UNINIT_WORD, calloc zeroes, realloc keeps and fills",
      [] if out == "uninit=1 zero=1 kept=1 tail=1\n" else [out])

rc, out, err, r = run([cases, "uninit-pointer"])
check("a pointer loaded from never-written bytes: the fault names the register that holds the word",
      ([] if rc == -11 else ["status %r, expected death by SIGSEGV" % rc]) +
      ([] if re.search(r"r[a-z0-9]+ = 0x%x, read from uninitialized heap memory\?" % 0xbef9e3c0fdd9f7c1, err)
       else ["no hint at uninitialized heap memory: %r" % err[-600:]]) +
      ([] if [e["access"] for e in r["errors"]] == ["read or write"] else
       ["the kernel does not tell read from write: %r" % [e["access"] for e in r["errors"]]]))

rc, out, err, r = run([cases, "too-big"])
# the size asked for, in decimal, and no address (it was "malloc() of 0x1000000000000")
check("allocation-size-too-big: reported with the size asked for, NULL and ENOMEM",
      expect_error(r, "allocation-size-too-big", func="malloc", size=1 << 48, top="main") +
      ([] if out == "null=1 enomem=1\n" else [out]))

rc, out, err, r = run([cases, "calloc-overflow"])
check("calloc overflow: NULL and ENOMEM, not an error", ([] if out == "null=1 enomem=1\n" else [out]) + summary_is(r, 0, 0))

rc, out, err, r = run([cases, "aligned"])
check("alignments 16 B to 4 MiB", ([] if out == "aligned=1\n" else [out]) + summary_is(r, 0, 0))

rc, out, err, r = run([cases, "threads"])
hs = r["heap_summary"] or {"allocs": -1, "frees": 0, "blocks": 0}
check("4 threads churning: no error, every block freed",
      ([] if out == "done\n" else [out]) + summary_is(r, 0, 0) +
      ([] if hs.get("allocs") == hs.get("frees") + hs.get("blocks", -1) else ["heap summary %r" % hs]))

# The same through a 64 KiB quarantine: the threads push and release blocks at once, and the
# queue's chunks (4093 entries) fill, empty and come back while they do.
rc, out, err, r = run([cases, "threads"], "leak_check=full:quarantine=64K")
hs = r["heap_summary"] or {"allocs": -1, "frees": 0, "blocks": 0}
check("4 threads churning through a small quarantine: no error, every block freed",
      ([] if out == "done\n" else [out]) + summary_is(r, 0, 0) +
      ([] if hs.get("allocs") == hs.get("frees") + hs.get("blocks", -1) else ["heap summary %r" % hs]))

rc, out, err, r = run([cases, "fork"])
check("fork while another thread allocates; the child allocates",
      ([] if out == "child=7\n" else [out, err[-500:]]) + summary_is(r, 0, 0))

rc, out, err, r = run([cases, "many-damaged-at-exit"])
kinds = sorted(e["kind"] for e in r["errors"])
check("at exit, 100 overflowed live blocks and 100 written freed ones are all counted",
      summary_is(r, 200, 2) + ([] if kinds == ["heap-buffer-overflow", "heap-use-after-free"] else [kinds]))

# Each thread queues its frees a batch at a time: at exit the batches of threads that ended
# and of threads still running are checked as the queue is.
rc, out, err, r = run([cases, "use-after-free-thread-exited"])
e = r["errors"][0] if r["errors"] else {}
check("write after a free by a thread that has exited, found at exit",
      expect_error(r, "heap-use-after-free", "write", 1, None, "inside", 8, 32, "first_free", "main",
                   "first_free", "at exit") + ([] if e.get("free_thread") == 2 else ["threads %r" % e]))

rc, out, err, r = run([cases, "use-after-free-thread-running"])
e = r["errors"][0] if r["errors"] else {}
check("write after a free by a thread still running at exit, found at exit",
      expect_error(r, "heap-use-after-free", "write", 1, None, "inside", 8, 32, "release_it", "main",
                   "release_it", "at exit") + ([] if e.get("free_thread") == 2 and rc == 0 else
                                                ["rc %d threads %r" % (rc, e)]))

rc, out, err, r = run([cases, "fork-threads-freed"])
check("fork after another thread freed; the child's threads free, then it exits through the check",
      ([] if out == "child=5\n" and rc == 0 else [rc, out, err[-500:]]) +
      ([] if "ERROR" not in err.replace("ERROR SUMMARY: 0 errors", "") else [err[-500:]]))

# libunwind's reads and the report's writes are cancellation points: the thread was cancelled
# inside the report, its lock held, and main's report waited for ever
rc, out, err, r = run([cases, "cancel-pending-report"])
check("a double free in a thread with a cancel pending is reported, and then main's",
      ([] if out == "joined\n" and rc == 0 else ["rc %s out %r %s" % (rc, out, err[-400:])]) +
      ([] if [e["kind"] for e in r["errors"]] == ["double-free", "double-free"] else ["errors %r" % r["errors"]]))

# The checks at exit meet blocks other threads are freeing (their records say freed before
# their poison is whole) or reusing: 30 % of these runs reported false writes after free.
false = []
for attempt in range(20):
    for quarantine in ("0", "64K"):
        rc, out, err, r = run([cases, "exit-while-threads-free"], "leak_check=no:quarantine=" + quarantine)
        if r["errors"] or rc != 0:
            false.append("quarantine=%s, run %d: status %d %s" % (quarantine, attempt, rc, err[-300:]))
check("main returns while detached threads allocate and free: no report (40 runs)", false[:2])

# Blocks over 2 MiB move by their pages on realloc; their old place stays inaccessible.
rc, out, err, r = run([cases, "realloc-pages"])
check("realloc of a block over 2 MiB, 980 steps of 64 KiB to 64 MiB then down and up: it moves each time, "
      "its bytes kept", summary_is(r, 0, 0) + ended(rc, out, "kept\n"))
# On a kernel before 5.7 (mremap refuses MREMAP_DONTUNMAP) realloc still moves such a block by its
# pages, its old place unmapped as glibc's mremap leaves it: copying took 70 times as long (this
# case timed out), and the first refusal emptied the quarantine.
mremap_refused = build(src("mremap_refused.c"))
rc, out, err, r = run([mremap_refused, "dontunmap", cases, "realloc-pages"])
check("without MREMAP_DONTUNMAP: realloc of a block over 2 MiB, 980 steps to 64 MiB and back, keeps its "
      "bytes", summary_is(r, 0, 0) + ended(rc, out, "kept\n"))
rc, out, err, r = run([mremap_refused, "dontunmap", cases, "realloc-big-quarantine"])
check("without MREMAP_DONTUNMAP: a realloc of 3 MiB to 5 MiB leaves the quarantine as it was (a write "
      "after free into a small block found at exit)",
      expect_error(r, "heap-use-after-free", "write", None, None, "inside", 0, 100, None, None, "release_it") +
      ended(rc, out, "done\n"))
# A block growing by its pages needs room past its new place, which another thread's mapping may
# take in the moment: the move then fails and the pages go back, copied where the kernel refuses
# that move too (near vm.max_map_count: here a filter refuses every plain move). They stayed at
# the new place, and the block read as zeros.
for how, name in (([], "while another thread maps"), ([mremap_refused, "move"], "and plain moves refused")):
    rc, out, err, r = run(how + [cases, "big-realloc-hole"])
    check("a block grown by realloc 64 KiB at a time to 40 MiB %s: its bytes kept" % name,
          summary_is(r, 0, 0) + ended(rc, out, "bad 0\n"))
# A stale pointer into the place of a block over 2 MiB that realloc moved or free freed (its
# pages moved on, its place kept inaccessible): reported at once, with the block's stacks.
# Before free did so, a stale read of such a block was not seen at all, a write only at exit.
for case, name, want, stdout in (
        ("realloc-stale", "a write through the old pointer of a block realloc moved by its pages: reported at "
         "once, with its stacks; the read after it goes on, on zeros",
         ("heap-use-after-free", "write", None, None, "inside", 100, 3 << 20, "stale_write", "big_make",
          "big_grow", "realloc moved the block"), "went on, read 0, kept 1\n"),
        ("realloc-pages-free-old", "the old pointer of a block realloc moved by its pages, freed: a double free, "
         "with the block's stacks",
         ("double-free", None, None, "free", None, None, 3 << 20, "release_it", "big_make", "big_grow",
          "realloc moved the block before"), "went on\n"),
        ("big-free-stale", "a read through the pointer of a freed 8 MiB block: reported at once, with its "
         "stacks; the write after it goes on, on zeros",
         ("heap-use-after-free", "read", None, None, "inside", 200, 8 << 20, "stale_read", "big_make",
          "release_it", "the block was freed"), "went on, read 0\n"),
        ("big-free-many", "70 blocks of 3 MiB freed: the places of the last 64 stay kept (the 65th once "
         "gave back all the others), a read through the oldest of them reported",
         ("heap-use-after-free", "read", None, None, "inside", 200, 3 << 20, "stale_read", "big_make",
          "release_it", "the block was freed"), "read 0, kept 64\n"),
        ("big-free-stale-write", "a write through the pointer of a freed 8 MiB block: reported at once, at the "
         "write",
         ("heap-use-after-free", "write", None, None, "inside", 100, 8 << 20, "stale_write", "big_make",
          "release_it", "the block was freed"), "went on\n")):
    rc, out, err, r = run([cases, case])
    check(name, expect_error(r, *want) + ended(rc, out, stdout))
rc, out, err, r = run([cases, "realloc-pages-free-old"], "leak_check=no:quarantine=0")
check("with --quarantine=0 (no old place kept), that free is still a double free",
      expect_error(r, "double-free", None, None, "free", top="release_it", detail="freed before, not kept") +
      ended(rc, out, "went on\n"))
rc, out, err, r = run([cases, "realloc-stale-syscall"])
check("read() into the old place of a block realloc moved: reported by read(), and the call goes on",
      expect_error(r, "heap-use-after-free", "write", 10, "read", "inside", 0, 3 << 20, None, "big_make", "big_grow") +
      ended(rc, out, "read 10\n"))
rc, out, err, r = run([cases, "realloc-stale-jump"])
check("a call through the old pointer of a block realloc moved: one report, then the fault ends the process",
      expect_error(r, "heap-use-after-free", None, None, None, "inside", 0, 3 << 20, None, "big_make", "big_grow") +
      ended(rc, out, "", -11))
# The place a free or realloc keeps is never unmapped on the way (the kernel's MREMAP_DONTUNMAP):
# another thread's mapping came there in the moment, and a stale pointer reached its memory.
for how in ("free", "realloc"):
    rc, out, err, r = run([cases, "big-%s-others-map" % how], "leak_check=no:quarantine=1G")
    check("8 MiB blocks %s while two threads map their own: their places never become another's block" %
          ("freed" if how == "free" else "moved by realloc"),
          summary_is(r, 0, 0) + ended(rc, out, "another's 0, open 0\n"))
# A fault that opens a kept place while another thread's free takes its entry for another place:
# the second place still reports its use (the first once marked it open, and its fault killed).
open_race = build(src("heap_open_race.c"), ("-pthread", "-rdynamic"))
rc, out, err, r = run([open_race])
second = r["errors"][1:2]
check("a kept place opened by a fault while another free takes its entry: both uses reported, and the "
      "program goes on",
      hgreport.mismatches(r, 2, "the block was freed", kind="heap-use-after-free", access="read",
                          block_size=3 << 20, top="read_oldest") +
      ([] if second and second[0]["kind"] == "heap-use-after-free" and "read_last" in (second[0]["stack"] or [])
       else ["second error %r" % [(e["kind"], e["stack"]) for e in second]]) +
      ended(rc, out, "0 0\nwent on\n"))
rc, out, err, r = run([cases, "big-free-together"])
bare = [e for e in r["errors"] if e["kind"] != "double-free" or "first_free" not in (e["free_stack"] or []) +
        (e["stack"] or []) or "second_free" not in (e["free_stack"] or []) + (e["stack"] or [])]
check("two threads freeing one 8 MiB block at once: 100 double frees, each with both frees' stacks",
      summary_is(r, 100, len(r["errors"])) + ["%s: %s" % (e["kind"], e["detail"]) for e in bare[:2]] +
      ended(rc, out, "done\n"))
rc, out, err, r = run([cases, "big-free-twice"])
check("an 8 MiB block freed twice: a double free, with its allocation and first free",
      expect_error(r, "double-free", None, None, "free", None, None, 8 << 20, "release_last", "big_make",
                   "release_it") +
      ([] if "realloc" not in (r["errors"][0]["detail"] or "") else ["detail names realloc"]) +
      ended(rc, out, "went on\n"))
rc, out, err, r = run([cases, "big-free-memcpy"])
check("memcpy from a freed 8 MiB block: reported by memcpy, and the call goes on",
      expect_error(r, "heap-use-after-free", "read", 4, "memcpy", "inside", 4096, 8 << 20, "read_freed",
                   "big_make", "release_it") +
      ended(rc, out, "went on\n"))
rc, out, err, r = run([cases, "big-free-churn"])
kib = last_number(out)
check("200 blocks of 8 MiB written and freed hold no memory back (the quarantine held 256 MiB of them); "
      "the next one's first 2 MiB hold the pattern, its redzone catches a write past its end",
      expect_error(r, "heap-buffer-overflow", "write", 1, None, "after", 0, 8 << 20, "release_it", "main") +
      ([] if out.startswith("pattern=1\n") and 0 < kib < 64 << 10 else ["out %r" % out]))

rc, out, err, r = run([cases, "trim-after-decay"], "leak_check=no:quarantine=0:decay_ms=100")
kb = [int(x) for x in out.split()] if len(out.split()) == 2 else [0, 0]
check("arenas freed whole go back after decay and malloc_trim in check mode (their huge pages whole)",
      [] if kb[0] - kb[1] >= 16384 else ["address space %r KiB before, after" % kb])
rc, out, err, r = run([cases, "realloc-pages-overflow"])
check("a block grown and shrunk by its pages keeps redzones at its new end: a write past it found at free",
      expect_error(r, "heap-buffer-overflow", "write", 1, None, "after", 0, 3 << 20, "release_it", "big_grow"))
rc, out, err, r = run([cases, "realloc-pages-limit"])
check("the same growth under an address-space limit 160 MiB above the process: the old places give way",
      summary_is(r, 0, 0) + ended(rc, out, "kept\n"))

rc, out, err, r = run([cases, "errno"])
check("free keeps errno", [] if out == "errno=1234\n" else [out])

rc, out, err, r = run([mismatch])
check("new[] released with delete: the block as allocated, no freed-by stack (the error's is that free)",
      expect_error(r, "alloc-dealloc-mismatch", None, 0, "operator delete", top="drop_array", alloc_top="main",
                   detail="allocated with operator new[], released with operator delete") +
      ([] if "freed by" not in err else ["a freed-by stack: " + err[-600:]]))
rc, out, err, r = run([mismatch, "malloc-delete"])
check("malloc released with delete",
      expect_error(r, "alloc-dealloc-mismatch", top="drop_malloced",
                   detail="allocated with malloc(), released with operator delete"))
imports = subprocess.run(["nm", "-u", mismatch], capture_output=True, text=True).stdout
sized = [] if "_ZdlPvm" in imports else ["the build calls no sized operator delete"]
rc, out, err, r = run([mismatch, "sized-delete"])
check("a class deleted through a base without a virtual destructor: the sized delete's size",
      sized + expect_error(r, "alloc-dealloc-mismatch", None, 0, "operator delete", relation="inside", distance=0,
                           block_size=32, top="drop_shape", alloc_top="main",
                           detail="allocated with operator new for 32 bytes, released with operator delete for 4 bytes"))
rc, out, err, r = run([own_new])
check("a program's own operator new (malloc inside) with our delete: no mismatch; new[] with delete still one",
      expect_error(r, "alloc-dealloc-mismatch", top="drop",
                   detail="allocated with operator new[], released with operator delete") +
      ended(rc, out, "news=3\n"))
rc, out, err, r = run([own_new, "array"])
check("a program's own scalar operator new: malloc's block released by delete[] is still a mismatch",
      expect_error(r, "alloc-dealloc-mismatch", top="drop_array",
                   detail="allocated with malloc(), released with operator delete[]"))
rc, out, err, r = run([lib_new])
check("a library's own operator new and delete (malloc and free inside, bound to its calls) and ours "
      "take each other's blocks: no mismatch",
      summary_is(r, 0, 0) + ended(rc, out, "7\n"))
rc, out, err, r = run([lib_new, "array"])
check("that library's new[] of 4 ints released with the program's sized delete of one: still a mismatch",
      expect_error(r, "alloc-dealloc-mismatch", top="drop", block_size=16,
                   detail="bytes, released with operator delete for 4 bytes"))
rc, out, err, r = run([lib_new, "dlclosed", plug_so])
check("a plugin's malloc'd block deleted after its dlclose: the mismatch reported, no hang on its unloaded code",
      expect_error(r, "alloc-dealloc-mismatch", top="main", detail="allocated with malloc(), released with operator delete") +
      ended(rc, out, "survived\n"))
rc, out, err, r = run([mismatch, "too-big"])
big = [e for e in r["errors"] if e["kind"] == "allocation-size-too-big"]
check("new[] of 2^48 bytes, plain and aligned: one error each, as operator new[], then bad_alloc",
      ([] if [(e["func"], e["size"]) for e in big] == [("operator new[]", 1 << 48)] * 2 else
       ["errors %r" % [(e["func"], e["size"]) for e in big]]) + summary_is(r, 2, 2) +
      ([] if out == "bad_alloc\nbad_alloc\n" else [out]))
rc, out, err, r = run([mismatch, "sized-clean"])
check("sized deletes of the right size (a virtual destructor, arrays with a cookie): no error",
      sized + ([] if not r["errors"] and rc == 0 else ["rc %d, errors %r" % (rc, r["errors"])]))

rc, out, err, r = run([cases, "double-free"], "leak_check=no:error_exitcode=23")
check("error_exitcode=23 after an error", [] if rc == 23 else ["rc %d" % rc])
rc, out, err, r = run([cases, "clean"], "leak_check=no:error_exitcode=23")
check("error_exitcode keeps a clean program's status", [] if rc == 0 and out == "fine\n" else ["rc %d" % rc])
rc, out, err, r = run([cases, "double-free"], "leak_check=no:abort_on_error=1")
check("abort_on_error stops at the first report", ended(rc, out, "", -6))
rc, out, err, r = run([cases, "clean"], "leak_check=no:quiet=1")
check("quiet: nothing printed for a clean run", [] if err == "" and out == "fine\n" else [err])
rc, out, err, r = run([cases, "double-free"], "leak_check=no:stack_depth=0")
check("stack_depth=0 still reports", expect_error(r, "double-free", block_size=24))

# Examples through the command, as `make demo` runs them.
HG = os.path.join(BUILD, "heapguard")
EX = os.path.join(BUILD, "examples")
for name, kind, want in [
        ("off-by-one", "heap-buffer-overflow", dict(access="write", size=4, relation="after", distance=0,
                                                    block_size=40, top="main", alloc_top="main")),
        ("use-after-free", "heap-use-after-free", dict(access="write", relation="inside", distance=0,
                                                       block_size=32, free_top="main")),
        ("double-free", "double-free", dict(func="free", block_size=64, top="main", free_top="main")),
        ("invalid-free-interior", "invalid-free", dict(func="free", relation="inside", distance=16,
                                                       block_size=128, top="main")),
        ("invalid-free-stack", "invalid-free", dict(func="free", top="main", detail="stack"))]:
    rc, out, err, r = run([HG, "--leak-check=no", "--", os.path.join(EX, name)], preload=False)
    check("example %s through the command" % name, expect_error(r, kind, **want))
rc, out, err, r = run([HG, "--", os.path.join(EX, "clean")], preload=False)
check("example clean: no error, no leak", summary_is(r, 0, 0) + [e["kind"] for e in r["errors"]] +
      ([] if err.startswith('copied "heap" and "guard"\n') else [err]))
log = os.path.join(OUT, "log.txt")
rc, out, err, r = run([HG, "--log-file=" + log, "--leak-check=no", "--", os.path.join(EX, "double-free")],
                      preload=False)
check("--log-file gets the report, stderr keeps the program's own",
      expect_error(hgreport.parse(open(log).read()), "double-free") +
      ([] if "ERROR" not in err and "second free" in err else [err]))

sys.exit(tap.finish())
