#!/usr/bin/env python3
"""check_guard.py — guard mode (guard=N) and the SIGSEGV/SIGBUS reporter of libheapguard-check.so:
overflows onto guard pages, reads of freed guarded blocks, first uses that read (guard_uninit),
NULL and wild pointers, a program's own handler, the guard budget, threads. Prints TAP.
Usage: tests/check_guard.py [BUILD_DIR]"""
import os
import re
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hgreport  # noqa: E402
from checklib import ROOT, Tap, build, run  # noqa: E402
import checklib  # noqa: E402

GUARD = "guard=1:leak_check=no"
PLAIN = "leak_check=no"
SIGSEGV = -signal.SIGSEGV

tap = Tap()
check = tap.check


def expect_error(r, kind, access=None, relation=None, distance=None, block_size=None, top=None,
                 free_top=None, detail=None, thread=None, count=1):
    """Why the report's errors (count of them, all alike: the first is checked) differ."""
    return hgreport.mismatches(r, count, detail, kind=kind, access=access, relation=relation,
                               distance=distance, block_size=block_size, top=top, free_top=free_top,
                               thread=thread)


def killed_by_segv(rc):
    return [] if rc == SIGSEGV else ["exit status %r, expected %d (SIGSEGV)" % (rc, SIGSEGV)]


def exited_ok(rc, err):
    return [] if rc == 0 else ["exit status %r; stderr tail: %s" % (rc, err[-600:])]


def src(name):
    return checklib.src(name + ".c")


exe = {n: build(src(n)) for n in ("guard_overflow", "guard_underflow", "guard_use_after_free",
                                   "guard_wild", "guard_own_handler", "guard_many", "guard_thread",
                                   "guard_api", "guard_churn", "guard_sample", "guard_uninit", "guard_first_use", "guard_maps",
                                   "guard_altstack", "guard_protect", "guard_cases")}
strcpy_null = build(os.path.join(ROOT, "examples", "unallocated-strcpy.c"))

# 1. a store one past the end, onto the guard page
rc, out, err, r = run([exe["guard_overflow"]], GUARD)
check("guard: a store past the end faults on the guard page",
      expect_error(r, "heap-buffer-overflow", access="write", relation="after", distance=0,
                   block_size=64, top="fill") + killed_by_segv(rc) +
      (["the program went on after the fault"] if "survived" in err else []))

rc, out, err, r = run([exe["guard_overflow"]], GUARD.replace("guard=1", "guard=all"))
check("preloaded alone, guard=all is guard=1 (the command's spelling, shown in the README)",
      ([] if "bad value" not in err else ["warning: %r" % err[:200]]) +
      expect_error(r, "heap-buffer-overflow", access="write", relation="after", distance=0,
                   block_size=64, top="fill") + killed_by_segv(rc))

# 2. guard_side=left: a store before the start
rc, out, err, r = run([exe["guard_underflow"]], GUARD + ":guard_side=left")
check("guard_side=left: a store before the start faults",
      expect_error(r, "heap-buffer-overflow", access="write", relation="before", distance=8,
                   block_size=64, top="store_before") + killed_by_segv(rc))

# 3. a read of a freed guarded block
rc, out, err, r = run([exe["guard_use_after_free"]], GUARD)
check("guard: a read after free faults, with the freeing stack",
      expect_error(r, "heap-use-after-free", access="read", relation="inside", distance=10,
                   block_size=100, top="peek", free_top="release") + killed_by_segv(rc))

rc, out, err, r = run([exe["guard_use_after_free"], "neighbour"], GUARD)
check("guard: a read past a guard page into a freed block's slot is an overflow, not a use after free",
      expect_error(r, "heap-buffer-overflow", access="read", top="peek_far") + killed_by_segv(rc))

# 4. strcpy through NULL, without guard mode
rc, out, err, r = run([strcpy_null], PLAIN)
check("NULL strcpy: invalid-access in the NULL page, death by SIGSEGV",
      expect_error(r, "invalid-access", access="write", top="main",
                   detail="address 0x0 is in the NULL page") + killed_by_segv(rc))

# 5. a wild pointer
rc, out, err, r = run([exe["guard_wild"]], PLAIN)
check("wild pointer: invalid-access, not in any mapped block",
      expect_error(r, "invalid-access", access="write", top="poke",
                   detail="is not in any mapped block") + killed_by_segv(rc))

# 6. the program's own handler recovers from its NULL reads: no report, exit 0
rc, out, err, r = run([exe["guard_own_handler"], "null"], PLAIN)
check("own SIGSEGV handler: called, the program recovers and exits normally",
      exited_ok(rc, err) + ([] if out.strip().endswith("caught 11") and "no fault" not in out
                            and "sigaction" not in out and "previous" not in out
                            else ["stdout %r" % out]) +
      (["reported %d errors" % len(r["errors"])] if r["errors"] else []))

# 6b. the same built with _FORTIFY_SOURCE, whose siglongjmp is __longjmp_chk (heapguard
# interposes both, to end a heap call a handler interrupted)
fortified = build(src("guard_own_handler"), ("-O2", "-D_FORTIFY_SOURCE=2"), name="guard_own_handler_fortified")
symbols = subprocess.run(["nm", "-D", fortified], capture_output=True, text=True).stdout
rc, out, err, r = run([fortified, "null"], PLAIN)
check("own SIGSEGV handler, fortified: __longjmp_chk passes through heapguard's",
      exited_ok(rc, err) + ([] if "__longjmp_chk" in symbols else ["no __longjmp_chk in %s" % fortified]) +
      ([] if out.strip().endswith("caught 11") else ["stdout %r" % out]) +
      (["reported %d errors" % len(r["errors"])] if r["errors"] else []))

# 6c. built in strict ISO C mode, where signal() is System V's __sysv_signal: the program's
# handler, set by it, must not replace heapguard's
sysv = build(src("guard_own_handler"), ("-std=c11",), name="guard_own_handler_sysv")
symbols = subprocess.run(["nm", "-D", sysv], capture_output=True, text=True).stdout
rc, out, err, r = run([sysv, "heap", "signal"], GUARD)
check("own SIGSEGV handler set by __sysv_signal: the guard page fault is reported, then it recovers",
      exited_ok(rc, err) + ([] if "__sysv_signal" in symbols else ["no __sysv_signal in %s" % sysv]) +
      ([] if out.strip().endswith("caught 11") and "previous" not in out else ["stdout %r" % out]) +
      expect_error(r, "heap-buffer-overflow", access="read", relation="after", distance=0,
                   top="probe") +
      ([] if r["error_summary"] == {"errors": 3, "contexts": 1}
       else ["error summary %r" % r["error_summary"]]))

# 6d. the program's own alternate signal stack: one it malloc'd and never wrote, where the
# kernel could not deliver the first-use fault and killed it (vim); one of 8 KiB, where the
# report overflowed it and the fault went unreported
rc, out, err, r = run([exe["guard_altstack"], "malloc"], GUARD + ":guard_uninit=1")
check("guard_uninit: a program's malloc'd alternate stack takes the first-use fault",
      exited_ok(rc, err) + ([] if out == "hello\n" else ["stdout %r" % out]) +
      (["reported %d errors" % len(r["errors"])] if r["errors"] else []))
rc, out, err, r = run([exe["guard_altstack"], "small"], PLAIN)
check("a program's 8 KiB alternate stack: the NULL read is reported, then kills",
      expect_error(r, "invalid-access", access="read", top="peek",
                   detail="address 0x0 is in the NULL page") + killed_by_segv(rc) +
      ([] if out == "" else ["stdout %r" % out]))

# 7. ... and a heap overflow onto a guard page is reported before its handler runs
rc, out, err, r = run([exe["guard_own_handler"], "heap"], GUARD)
check("own SIGSEGV handler: a guard page fault is reported, then the handler recovers",
      exited_ok(rc, err) + ([] if out.strip().endswith("caught 11") else ["stdout %r" % out]) +
      expect_error(r, "heap-buffer-overflow", access="read", relation="after", distance=0,
                   top="probe") +
      ([] if r["error_summary"] == {"errors": 3, "contexts": 1}
       else ["error summary %r" % r["error_summary"]]))

# 8. more live blocks than the guard budget: the rest get redzones, nothing aborts
rc, out, err, r = run([exe["guard_many"]], GUARD)
check("guard=1 with 100000 live blocks: budget fallback, right output",
      exited_ok(rc, err) + ([] if out == "sum -4999950000\n" else ["stdout %r" % out]) +
      (["reported %d errors" % len(r["errors"])] if r["errors"] else []))

# 9. a real program
py = [sys.executable, "-c", "import json; print(json.dumps(list(range(10))))"]
rc, out, err, r = run(py, GUARD)
plain = subprocess.run(py, capture_output=True, text=True, timeout=30).stdout
check("guard=1 under python3: same output as without",
      exited_ok(rc, err) + ([] if out == plain and out.startswith("[0, 1") else
                            ["stdout %r, expected %r" % (out, plain)]) +
      (["reported %d errors" % len(r["errors"])] if r["errors"] else []))

# 10. a fault on another thread
rc, out, err, r = run([exe["guard_thread"]], GUARD)
check("guard: an overflow on a second thread is reported as thread 2",
      expect_error(r, "heap-buffer-overflow", access="write", relation="after", distance=0,
                   block_size=32, top="overrun", thread=2) + killed_by_segv(rc) +
      ([] if r["errors"] and "worker" in r["errors"][0]["stack"] else ["worker not in the stack"]))

# 10b. ... on a worker started with every signal blocked, SIGSEGV included: the kernel kills a
# thread that faults so, before any handler runs, and nothing was reported
rc, out, err, r = run([exe["guard_thread"], "blocked"], GUARD)
check("guard: an overflow on a thread that blocks every signal is reported all the same",
      expect_error(r, "heap-buffer-overflow", access="write", relation="after", distance=0,
                   block_size=32, top="overrun", thread=2) + killed_by_segv(rc))

# 11. the allocation calls keep their contracts on guarded blocks
rc, out, err, r = run([exe["guard_api"]], GUARD)
check("guard=1: alignment, realloc, calloc, memalign, big blocks",
      exited_ok(rc, err) + ([] if out == "ok\n" else ["stdout %r" % out]) +
      (["reported %d errors" % len(r["errors"])] if r["errors"] else []))

# 12. churn through a small quarantine (64 slots): slots are retired, released, queued behind
# 4096 others and reused, so the last blocks are still guarded
rc, out, err, r = run([exe["guard_churn"], "12000"], GUARD + ":quarantine=256K")
check("guard=1 churn: slots come back from the quarantine and are reused",
      exited_ok(rc, err) + ([] if out == "guarded 1000 of the last 1000, reused\n" else ["stdout %r" % out]) +
      (["reported %d errors" % len(r["errors"])] if r["errors"] else []))

# 13. sampling: guard=3 guards about one block in 3, and the calls keep their contracts
rc, out, err, r = run([exe["guard_sample"]], "guard=3:leak_check=no")
m = re.match(r"guarded (\d+)$", out.strip())
check("guard=3 guards about one block in three",
      exited_ok(rc, err) + ([] if m and 700 <= int(m.group(1)) <= 1300 else ["stdout %r" % out]))
rc, out, err, r = run([exe["guard_api"]], "guard=3:leak_check=no")
check("guard=3: the allocation calls keep their contracts",
      exited_ok(rc, err) + ([] if out == "ok\n" else ["stdout %r" % out]))

# 14. guard_uninit: the one plain read of a never-written block is reported at the read; a
# write first, calloc, read()/fgets() into a fresh block, strcmp/memchr of one, realloc and
# free of unused blocks are not, and the kernel never meets an inaccessible page (read() would fail with EFAULT)
UNINIT_OUT = ("read the poison pattern\nwritten w\ncalloc 0\nread() through a pipe\nfgets ok\n"
              "strcmp 1 1\nrealloc grown\n")
rc, out, err, r = run([exe["guard_uninit"]], GUARD + ":guard_uninit=1")
check("guard_uninit: a block's first use that reads is uninitialized-read, at the read",
      exited_ok(rc, err) + ([] if out == UNINIT_OUT else ["stdout %r" % out]) +
      expect_error(r, "uninitialized-read", access="read", relation="inside", distance=12,
                   block_size=40, top="first_read", detail="first use") +
      ([] if r["errors"] and r["errors"][0]["alloc_stack"][:1] and "main" in r["errors"][0]["alloc_stack"][0]
       else ["allocation stack does not start in main"]))
rc, out, err, r = run([exe["guard_uninit"]], GUARD)
check("guard without guard_uninit: the same program runs clean",
      exited_ok(rc, err) + ([] if out == UNINIT_OUT else ["stdout %r" % out]) +
      (["reported %d errors" % len(r["errors"])] if r["errors"] else []))

# A guarded block freed twice, the first free out of the quarantine: a double free, as unguarded
# (it was reported as a free of memory heapguard never allocated).
heap_cases = build(checklib.src("heap_cases.c"))
rc, out, err, r = run([heap_cases, "double-free"], GUARD + ":quarantine=0")
check("guard: a double free after the block left the quarantine is a double free",
      expect_error(r, "double-free", top="second_free", detail="guard page slot") +
      ([] if rc == 0 and out == "survived\n" else ["rc %d out %r" % (rc, out)]))

# A program that takes most of vm.max_map_count itself: guarded blocks took the rest and the
# heap's own mappings failed (malloc returned NULL 15,000 times), or under guard_uninit a
# block's first use found no mapping left and was reported as a wild access.
for label, options in (("guard", GUARD), ("guard_uninit", GUARD + ":guard_uninit=1")):
    rc, out, err, r = run([exe["guard_maps"]], options)
    check("%s: a program near vm.max_map_count gets all its blocks, none reported" % label,
          exited_ok(rc, err) + ([] if out == "fails=0 own=0 sum=60000\n" else ["stdout %r" % out]) +
          (["reported %r" % [(e["kind"], e["detail"]) for e in r["errors"]]] if r["errors"] else []))
# The same program making its mappings as it goes, two for each block: the counts once a second
# saw it too late, and 3,600 of its mallocs returned NULL. Its own mprotect calls may fail
# (README, Limits); its mallocs may not.
rc, out, err, r = run([exe["guard_maps"], "growing"], GUARD)
check("guard: a program whose own mappings grow with its blocks gets all its blocks",
      exited_ok(rc, err) + ([] if re.fullmatch(r"fails=0 own=\d+ sum=60000\n", out) else ["stdout %r" % out]) +
      (["reported %r" % [(e["kind"], e["detail"]) for e in r["errors"]]] if r["errors"] else []))

# 15. guard_uninit with threads: the first uses of one block by several threads at once. One
# that faulted while another made the slot accessible was reported as a wild access and
# killed; a store between the slot's unprotecting and its fill was lost.
rc, out, err, r = run([exe["guard_first_use"]], GUARD + ":guard_uninit=1")
check("guard_uninit: threads using a fresh block at once lose no store and get no report",
      exited_ok(rc, err) + ([] if out == "bad=0\n" else ["stdout %r" % out]) +
      (["reported %r" % [(e["kind"], e["detail"]) for e in r["errors"]]] if r["errors"] else []))

# 16. a heap page the program protected itself (mprotect). Under guard_uninit its fault on a
# live slot was taken for another thread's first use and retried forever, at full CPU.
for label, options in (("guard_uninit", GUARD + ":guard_uninit=1"), ("guard", GUARD), ("check", PLAIN)):
    rc, out, err, r = run([exe["guard_protect"], "barrier"], options, timeout=20)
    check("%s: a write barrier (own handler opens the page it protected) runs, unreported" % label,
          exited_ok(rc, err) + ([] if out == "read 0\nwrote 1 after 1 barrier faults\n" else ["stdout %r" % out]) +
          (["reported %r" % [(e["kind"], e["detail"]) for e in r["errors"]]] if r["errors"] else []))
    rc, out, err, r = run([exe["guard_protect"], "die"], options, timeout=20)
    check("%s: a write to a heap page the program protected is invalid-access, death by SIGSEGV" % label,
          expect_error(r, "invalid-access", access="write", relation="inside", distance=5,
                       block_size=8192, top="store", detail="its page refused the access") +
          killed_by_segv(rc))

# 17. from an audit of guard mode (each failed before its fix).
UNINIT = GUARD + ":guard_uninit=1"
cases = exe["guard_cases"]
rc, out, err, r = run([cases, "fork-touching"], UNINIT, timeout=120)
check("guard_uninit: a child forked while another thread made a slot accessible does not wait for it",
      exited_ok(rc, err) + ([] if out == "hung=0\n" else ["stdout %r" % out]))

rc, out, err, r = run([cases, "signal-first-use"], UNINIT, timeout=60)
check("guard_uninit: a signal handler's first use of its block, during another first use, survives",
      exited_ok(rc, err) + ([] if out == "done\n" else ["stdout %r" % out]) +
      (["reported %r" % [(e["kind"], e["detail"]) for e in r["errors"]]] if r["errors"] else []))

rc, out, err, r = run([cases, "strlen-freed"], GUARD)
check("guard: strlen of a freed guarded string is a use after free by strlen(), then SIGSEGV, checks at exit kept",
      expect_error(r, "heap-use-after-free", access="read", relation="inside", distance=0, block_size=16,
                   top="main", free_top="freed_string") + killed_by_segv(rc) +
      (["said no checks at exit"] if "no checks at exit" in err else []) +
      ([] if r["heap_summary"] else ["no heap summary"]))

rc, out, err, r = run([cases, "strchr-freed"], GUARD)
check("guard: strchr of a freed guarded string faults as a use after free (its word before the string too)",
      expect_error(r, "heap-use-after-free", access="read", block_size=16, free_top="freed_string") +
      killed_by_segv(rc))

for case, limit in (("sparse", 200), ("sparse-calloc", 200)):
    rc, out, err, r = run([cases, case], GUARD)
    m = re.fullmatch(r"sum=780 peak_mib=(\d+)\n", out)
    check("guard: 40 blocks of 15 MiB, their ends used (%s), fill 2 MiB each: under %d MiB" % (case, limit),
          exited_ok(rc, err) + ([] if m and int(m.group(1)) < limit else ["stdout %r" % out]) +
          (["reported %r" % [(e["kind"], e["detail"]) for e in r["errors"]]] if r["errors"] else []))

rc, out, err, r = run([cases, "syscalls"], UNINIT)
check("guard_uninit: getrandom, socketpair, epoll_wait and getsockname fill fresh blocks",
      exited_ok(rc, err) +
      ([] if out == "getrandom=64 socketpair=0 epoll_wait=1 getsockname=0\n" else ["stdout %r" % out]) +
      (["reported %r" % [(e["kind"], e["detail"]) for e in r["errors"]]] if r["errors"] else []))

rc, out, err, r = run([cases, "lost"], UNINIT.replace("leak_check=no", "leak_check=full"))
check("guard_uninit: a lost block is lost, though a first use's fault had its pointer in a register",
      exited_ok(rc, err) +
      ([] if r["leak_summary"].get("definitely lost") == (32, 1) and r["leak_summary"].get("indirectly lost") == (77, 1)
       else ["leak summary %r" % r["leak_summary"]]))

for kib, guarded in ((2000000, False), (4000000, True)):
    rc, out, err, r = run(["/bin/sh", "-c", 'ulimit -v %d; exec "$0" overflow-under-limit' % kib, cases], GUARD)
    said = "guard mode is off: no room for its region" in err
    why = expect_error(r, "heap-buffer-overflow", access="write", relation="after", distance=0, block_size=64)
    if guarded:
        why += killed_by_segv(rc) + (["said off %r" % err[-300:]] if said else [])
    else:
        why += exited_ok(rc, err) + ([] if said else ["no line saying guard mode is off: %r" % err[-300:]])
    check("guard under ulimit -v %d: %s" % (kib, "the region fits an eighth of it" if guarded else
                                             "off, and a line says so; the overflow found at free"), why)

# A program's SIGSEGV handler ran on heapguard's alternate stack where the kernel has none to
# run it on (a stack overflow, the program without its own): one that returned faulted again
# forever, one that jumped out survived a crash.
rc, out, err, r = run([cases, "stack-overflow-handled"], PLAIN, timeout=60)
check("a stack overflow, the program's handler without a stack of its own: reported, death by SIGSEGV",
      expect_error(r, "invalid-access", access="write", top="recurse", detail="a stack overflow") +
      killed_by_segv(rc) + ([] if out == "" else ["stdout %r" % out]))
rc, out, err, r = run([cases, "stack-overflow-own-stack"], PLAIN, timeout=60)
check("a stack overflow caught on the program's own alternate stack: its handler runs, unreported",
      exited_ok(rc, err) + ([] if out == "handled=1\n" else ["stdout %r" % out]) +
      (["reported %r" % [e["kind"] for e in r["errors"]]] if r["errors"] else []))

sys.exit(tap.finish())
