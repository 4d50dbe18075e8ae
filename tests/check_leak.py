#!/usr/bin/env python3
"""check_leak.py — the leak check of libheapguard-check.so: each kind of loss and each kind of
root, the report options, the on-demand check, and real programs without false positives.
Prints TAP. Usage: tests/check_leak.py [BUILD_DIR]"""
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hgreport  # noqa: E402
from checklib import OUT, ROOT, Tap, build, src  # noqa: E402
import checklib  # noqa: E402

KINDS = ("definitely lost", "indirectly lost", "possibly lost", "still reachable")
tap = Tap()
check = tap.check


def run(argv, options="", records=None):
    rc, _, err, r = checklib.run(argv, options, env_extra={"HEAPGUARD_RECORDS": records} if records else None)
    return rc, err, r


def leaks_of(r, kind):
    return [l for l in r["leaks"] if l["kind"] == kind]


def expect_group(r, kind, nbytes, blocks, top):
    """Reasons why report r has no group (kind, nbytes, blocks) allocated in function top."""
    groups = leaks_of(r, kind)
    for g in groups:
        if g["bytes"] == nbytes and g["blocks"] == blocks and g["stack"][:1] == [top]:
            return []
    return ["no %s group of %d bytes in %d blocks allocated in %s; got %s" %
            (kind, nbytes, blocks, top, [(g["bytes"], g["blocks"], g["stack"][:1]) for g in groups])]


def expect_summary(r, **want):
    """want: definitely=(bytes, blocks), ... for the kinds given."""
    s = r["leak_summary"]
    if not s:
        return ["no LEAK SUMMARY line"]
    why = []
    for key, exp in want.items():
        kind = key + (" reachable" if key == "still" else " lost")
        if s.get(kind) != exp:
            why.append("summary %s: got %r, expected %r" % (kind, s.get(kind), exp))
    return why


def no_group(r, kind):
    got = leaks_of(r, kind)
    return ["unexpected %s groups: %s" % (kind, [(g["bytes"], g["blocks"], g["stack"][:1]) for g in got])] if got else []


cases = build(src("leak_cases.c"))

# ---- each kind of loss ----
rc, err, r = run([cases, "definite"])
check("definitely lost: overwritten pointer", expect_group(r, "definitely-lost", 111, 1, "lose_definite") +
      expect_summary(r, definitely=(111, 1), indirectly=(0, 0), possibly=(0, 0)))
check("still-reachable hidden by default", no_group(r, "still-reachable") +
      (["the 7-byte block kept in a global is not counted reachable"]
       if r["leak_summary"].get("still reachable", (0, 0))[1] < 1 else []))

rc, err, r = run([cases, "indirect"])
check("indirectly lost: lost list head and its 3 nodes",
      expect_group(r, "definitely-lost", 64, 1, "alloc_head") +
      expect_group(r, "indirectly-lost", 72, 3, "alloc_node") +
      expect_summary(r, definitely=(64, 1), indirectly=(72, 3), possibly=(0, 0)))
check("leak groups print largest first",
      [] if [l["bytes"] for l in r["leaks"]] == sorted([l["bytes"] for l in r["leaks"]], reverse=True)
      else ["order %s" % [l["bytes"] for l in r["leaks"]]])

# As valgrind counts its leaks there: each group that counts for error_exitcode (definitely or
# indirectly lost, preloaded alone) is one error and context, in a full check only
summaries = [run([cases, "indirect"], o)[2]["error_summary"] for o in ("", "leak_check=summary")]
summaries.append(run([cases, "possible"])[2]["error_summary"])
check("ERROR SUMMARY counts the lost groups of a full check, as errors",
      [] if summaries == [{"errors": 2, "contexts": 2}, {"errors": 0, "contexts": 0}, {"errors": 0, "contexts": 0}]
      else ["summaries (full, summary, possibly lost only) %r" % summaries])

rc, err, r = run([cases, "indirect"], "show_leak_kinds=indirect")
check("show_leak_kinds=indirect lists the indirect group only; the summary counts both",
      expect_group(r, "indirectly-lost", 72, 3, "alloc_node") + no_group(r, "definitely-lost") +
      expect_summary(r, definitely=(64, 1), indirectly=(72, 3)))
rc, err, r = run([cases, "indirect"], "show_leak_kinds=definite,bogus")
check("show_leak_kinds with a word that is no kind: a warning, and the default list",
      ([] if "bad value for option 'show_leak_kinds'" in err else ["no warning: %r" % err[-300:]]) +
      expect_group(r, "definitely-lost", 64, 1, "alloc_head") +
      expect_group(r, "indirectly-lost", 72, 3, "alloc_node"))

rc, err, r = run([cases, "possible"])
check("possibly lost: only an interior pointer in a global",
      expect_group(r, "possibly-lost", 200, 1, "keep_interior") +
      expect_summary(r, definitely=(0, 0), indirectly=(0, 0), possibly=(200, 1)))

rc, err, r = run([cases, "setenv"])
check("setenv's strings: libc's tsearch tree links left children with a colour bit, not lost",
      expect_summary(r, definitely=(0, 0), indirectly=(0, 0), possibly=(0, 0)))

rc, err, r = run([cases, "cycle"])
check("lost cycle: one definite, the rest indirect",
      expect_group(r, "definitely-lost", 40, 1, "alloc_cycle_node") +
      expect_group(r, "indirectly-lost", 80, 2, "alloc_cycle_node") +
      expect_summary(r, definitely=(40, 1), indirectly=(80, 2), possibly=(0, 0)))

# ---- each kind of root ----
rc, err, r = run([cases, "reachable"])
check("reachable blocks are not listed by default", no_group(r, "still-reachable") +
      expect_summary(r, definitely=(0, 0), indirectly=(0, 0), possibly=(0, 0)))
rc, err, r = run([cases, "reachable"], "show_reachable=1")
check("reachable from a global (show_reachable=1)", expect_group(r, "still-reachable", 130, 1, "keep_global"))
check("reachable from a heap block reachable from a global",
      expect_group(r, "still-reachable", 16, 1, "keep_holder") +
      expect_group(r, "still-reachable", 150, 1, "keep_held"))
check("reachable from TLS (__thread)", expect_group(r, "still-reachable", 170, 1, "keep_tls") +
      expect_summary(r, definitely=(0, 0), indirectly=(0, 0), possibly=(0, 0)))

rc, err, r = run([cases, "file-maps"], "show_reachable=1")
check("reachable from a file's private and shared mappings and from shared anonymous memory",
      expect_group(r, "still-reachable", 1010, 1, "keep_in_maps") +
      expect_group(r, "still-reachable", 1020, 1, "keep_in_maps") +
      expect_group(r, "still-reachable", 1030, 1, "keep_in_maps") +
      expect_summary(r, definitely=(0, 0), indirectly=(0, 0), possibly=(0, 0)))

rc, err, r = run([cases, "thread"], "show_reachable=1")
check("reachable from another thread's stack while main exits",
      expect_group(r, "still-reachable", 190, 1, "hold_in_thread") +
      expect_summary(r, definitely=(0, 0), indirectly=(0, 0)) + ([] if rc == 0 else ["exit status %d" % rc]))
check("the running thread's DTV, which ld.so reaches through dtv + 1, is not possibly lost",
      expect_summary(r, possibly=(0, 0)))

rc, err, r = run([cases, "exited-thread"], "show_reachable=1")
check("a block only the frames of a thread that has exited point to is definitely lost",
      expect_group(r, "definitely-lost", 77, 1, "lose_in_thread") + ([] if rc == 0 else ["exit status %d" % rc]))

rc, err, r = run([cases, "main-exits"], "show_reachable=1")
check("main ends with pthread_exit, another thread exits last: globals and libc's data are roots, "
      "the program's functions named", expect_group(r, "definitely-lost", 77, 1, "lose_in_thread") +
      expect_group(r, "still-reachable", 130, 1, "keep_global") +
      expect_summary(r, definitely=(77, 1), indirectly=(0, 0), possibly=(0, 0)) +
      ([] if rc == 0 else ["exit status %d" % rc]))

rc, err, r = run([cases, "error-exit"], "show_reachable=1")
check("error() with a status: no block of heapguard's own left in the program's heap",
      expect_summary(r, definitely=(0, 0), indirectly=(0, 0), possibly=(0, 0), still=(0, 0)) +
      ([] if rc == 3 and "stopping at 7" in err else ["exit status %s, %r" % (rc, err[-200:])]))
rc, err, r = run([cases, "register"], "show_reachable=1")
check("a thread blocked in a system call holds the only pointer in a register: registers are roots",
      expect_group(r, "still-reachable", 151, 1, "keep_hidden") +
      expect_summary(r, definitely=(0, 0)) + ([] if rc == 0 else ["exit status %s" % rc]))
rc, err, r = run([cases, "seccomp"], "show_reachable=1")
check("under a seccomp filter that kills at clone(), registers are not read and the program lives",
      expect_summary(r, definitely=(151, 1)) + ([] if rc == 0 else ["exit status %s" % rc]))
rc, out, err, r = checklib.run([cases, "waiting"], "leak_check=summary")
check("threads in poll(), nanosleep(), epoll_wait() and sigwaitinfo() while the check reads their registers: "
      "no EINTR, no early wake",
      ([] if sorted(out.split("\n")) == ["", "epoll_wait: woken", "nanosleep: slept", "poll: woken",
                                          "sigwaitinfo: woken"] else ["output %r" % out]) +
      ([] if rc == 0 and err.count("LEAK SUMMARY") == 4 else ["exit status %s, %r" % (rc, err[-300:])]))
rc, err, r = run([cases, "unjoined"], "show_reachable=1")
check("a thread ended but not joined: its result, which pthread_join can still return, is reachable "
      "(valgrind's verdict)", expect_group(r, "still-reachable", 123, 1, "return_block") +
      expect_summary(r, definitely=(0, 0), indirectly=(0, 0)) + ([] if rc == 0 else ["exit status %s" % rc]))
rc, err, r = run([cases, "detached-tls"], "show_reachable=1")
check("a detached thread that has ended: its TLS is no root", expect_group(r, "definitely-lost", 170, 1, "keep_tls") +
      ([] if rc == 0 else ["exit status %s" % rc]))
rc, err, r = run([cases, "pool"], "show_reachable=1")
check("stacks from one mapping (a pool, no guard page): a running thread's is a root though the one "
      "above it has ended", expect_group(r, "still-reachable", 200, 1, "hold_in_pool") +
      expect_summary(r, definitely=(0, 0), indirectly=(0, 0)) + ([] if rc == 0 else ["exit status %s" % rc]))

rc, out, err, r = checklib.run([cases, "daemon"], "")
parent = out.strip()
check("daemon(): the parent, which glibc ends inside it, runs its checks at exit",
      ([] if re.search(r"==%s== LEAK SUMMARY: definitely lost: 111 bytes in 1 blocks" % parent, err)
       else ["no summary of the parent (pid %r): %r" % (parent, err[-600:])]) +
      ([] if rc == 0 else ["exit status %s" % rc]))

why = []
for attempt in range(8):
    rc, err, r = run([cases, "spawning"])
    why += ["run %d: exit status %s, %s" % (attempt, rc, err[-200:])] if rc != 0 else []
    why += expect_group(r, "definitely-lost", 111, 1, "lose_definite") if rc == 0 else []
check("threads that start and end (unmapping their stacks) during the check at exit: "
      "no crash, the leak found", why)

# ld.so's blocks are roots (LSan's rule): it keeps some through interior pointers only.
rc, err, r = run([cases, "dlopen"])
check("dlopen: ld.so's dl_find_object segment, kept by a pointer into it, is no leak",
      expect_summary(r, definitely=(0, 0), indirectly=(0, 0), possibly=(0, 0)) +
      ([] if rc == 0 else ["exit status %d" % rc]))

# ---- names without the command (symbols.c): a library loaded by dlopen, after another was
# loaded and unloaded, names its own functions from its .symtab; stripped, it has only the
# exported ones in .dynsym, and the other is "??". Every frame names the library's file. ----
libs = []
for name, nbytes, strip in (("leak_lib.so", 1111, []), ("leak_lib_stripped.so", 2222, ["-s"])):
    path = os.path.join(OUT, name)
    subprocess.run(["gcc", "-g", "-O0", "-shared", "-fPIC", "-DLEAK_BYTES=%d" % nbytes, *strip, "-o", path,
                    src("leak_lib.c")], check=True)
    libs.append(path)


def lib_group(r, nbytes, names, module):
    """Reasons why report r has no definitely-lost group of nbytes whose first frames are names,
    in module."""
    for g in leaks_of(r, "definitely-lost"):
        if g["bytes"] != nbytes:
            continue
        got = [f[1] for f in g["frames"][:len(names)]]
        mods = [os.path.basename(f[2].rsplit("+", 1)[0]) for f in g["frames"][:len(names) - 1]]
        return ([] if got == names else ["%d bytes: frames %s, expected %s" % (nbytes, got, names)]) + \
            ([] if mods == [module] * (len(names) - 1) else ["%d bytes: modules %s" % (nbytes, mods)])
    return ["no definitely-lost group of %d bytes: %s" % (nbytes, [(g["bytes"], g["stack"][:2]) for g in r["leaks"]])]


rc, err, r = run([cases, "libs", *libs])
check("a dlopen'd library's static function is named from its .symtab",
      lib_group(r, 1111, ["leak_lib_inner", "leak_lib_lose", "main"], "leak_lib.so") +
      ([] if rc == 0 else ["exit status %d: %s" % (rc, err[-300:])]))
check("a stripped library's exported function is named from .dynsym, its static one is ??",
      lib_group(r, 2222, ["??", "leak_lib_lose", "main"], "leak_lib_stripped.so"))

# ---- stacks cached by call site (stack.c): one malloc reached from two callers in turn ----
stack_cases = build(src("stack_cases.c"), ("-pthread", "-O2"))


def callers(r, sizes, total):
    """Every group allocated in alloc_at_leaf, of any kind, has the block size its caller
    allocates (sizes: caller -> bytes), and the groups hold `total` blocks."""
    why, seen = [], 0
    for g in r["leaks"]:
        if g["stack"][:1] != ["alloc_at_leaf"]:
            continue
        caller = g["stack"][1] if len(g["stack"]) > 1 else None
        if caller == "through_vla":
            caller = g["stack"][2] if len(g["stack"]) > 2 else None
        if caller not in sizes or g["bytes"] != sizes[caller] * g["blocks"]:
            why.append("group of %d bytes in %d blocks attributed to %s" % (g["bytes"], g["blocks"], caller))
        seen += g["blocks"]
    return why + ([] if seen == total else ["%d blocks from alloc_at_leaf listed, expected %d" % (seen, total)])


# Kinds vary with what the stacks (the exited threads' ones too) still hold; the stacks may not.
TWO = {"lose_from_first": 11, "lose_from_second": 22}
rc, err, r = run([stack_cases, "two-callers"], "show_reachable=1")
check("a malloc reached from two callers in turn records each caller's stack", callers(r, TWO, 600))
rc, err, r = run([stack_cases, "two-callers-threads"], "show_reachable=1")
check("... in four threads at once, sharing the stack cache", callers(r, TWO, 2400))
rc, err, r = run([stack_cases, "vla"], "show_reachable=1")
check("... through a frame whose size varies, the callers' frames making up the difference",
      callers(r, {"vla_caller_small": 11, "vla_caller_big": 22}, 600))


def deep(r):
    """One group of 600 blocks of 33 bytes whose 16 frames are alloc_at_leaf, then deep_c,
    deep_b, deep_a in turn (deep_a(20) recurses to deep_c(0))."""
    want = ["alloc_at_leaf"] + ["deep_c", "deep_b", "deep_a"] * 5
    groups = [g for g in r["leaks"] if g["stack"][:1] == ["alloc_at_leaf"]]
    if len(groups) != 1 or groups[0]["blocks"] != 600 or groups[0]["bytes"] != 600 * 33:
        return ["groups %s" % [(g["bytes"], g["blocks"]) for g in groups]]
    return [] if groups[0]["stack"] == want else ["stack %s" % groups[0]["stack"]]


rc, err, r = run([stack_cases, "deep"], "show_reachable=1")
check("a stack deeper than 16 frames names each of the 16 in order", deep(r))
# -O0: every frame placed by its frame pointer.
stack_cases_O0 = build(src("stack_cases.c"), ("-pthread", "-O0"), name="stack_cases_O0")
rc, err, r = run([stack_cases_O0, "two-callers"], "show_reachable=1")
check("... built -O0, every frame placed by its frame pointer", callers(r, TWO, 600))
rc, err, r = run([stack_cases_O0, "deep"], "show_reachable=1")
check("... built -O0, a stack deeper than 16 frames", deep(r))
rc, err, r = run([stack_cases_O0, "vla"], "show_reachable=1")
check("... built -O0, through a frame whose size varies",
      callers(r, {"vla_caller_small": 11, "vla_caller_big": 22}, 600))

rc, out, err, r = checklib.run([stack_cases, "nocfi-fds"], "leak_check=no")
check("libunwind, through a frame without unwind information, keeps off the program's descriptors",
      [] if rc == 0 and out == "first free descriptor 3; files on 3 and 4; read back 15; b holds 0\n"
      else ["status %s, output %r, %s" % (rc, out, err[-300:])])

# ---- the on-demand check, from the caller's stack pointer up ----
rc, err, r = run([cases, "mid"], "show_reachable=1")
mid, _, at_exit = err.partition("MID-CHECK-RETURNED")
m = re.match(r" (\d+)", at_exit)
rm, rx = hgreport.parse(mid), hgreport.parse(at_exit)
check("heapguard_check_leaks() mid-program reports the lost blocks",
      expect_group(rm, "definitely-lost", 230, 1, "lose_mid") +
      expect_summary(rm, indirectly=(0, 0), possibly=(0, 0)) +
      ([] if m else ["no MID-CHECK-RETURNED line"]))
check("heapguard_check_leaks() returns the bytes lost",
      [] if m and int(m.group(1)) == 440 else ["returned %s, expected 440" % (m and m.group(1))])
check("a pointer in a dead frame below the stack pointer keeps nothing alive",
      expect_group(rm, "definitely-lost", 210, 1, "leave_in_dead_frame") +
      expect_summary(rm, definitely=(440, 2)))
check("a pointer in the caller's live frame is a root",
      expect_group(rm, "still-reachable", 240, 1, "keep_local"))
check("the check at exit still runs after the on-demand one",
      expect_summary(rx, definitely=(440, 2)) + no_group(rx, "still-reachable")[:0] +
      (["block freed after the mid check still listed"] if
       expect_group(rx, "still-reachable", 240, 1, "keep_local") == [] else []))

# ---- guard mode: live guard slots are blocks, not roots; they are read through process_vm_readv ----
rc, err, r = run([cases, "indirect"], "guard=1")
check("guard=1: lost list head and nodes in guard slots",
      expect_group(r, "definitely-lost", 64, 1, "alloc_head") +
      expect_group(r, "indirectly-lost", 72, 3, "alloc_node") +
      expect_summary(r, definitely=(64, 1), indirectly=(72, 3), possibly=(0, 0)))
rc, err, r = run([cases, "reachable"], "guard=1:show_reachable=1")
check("guard=1: blocks reachable from a global, a guarded block and TLS",
      expect_group(r, "still-reachable", 130, 1, "keep_global") +
      expect_group(r, "still-reachable", 150, 1, "keep_held") +
      expect_group(r, "still-reachable", 170, 1, "keep_tls") +
      expect_summary(r, definitely=(0, 0), indirectly=(0, 0), possibly=(0, 0)))

# ---- the stack at exit: exit's frames hold stale copies of pointers main's callees had ----
stale = build(src("leak_stale.cc"), compiler="g++")
rc, err, r = run([stale])
check("a std::string leaked in main is lost once main returns, as valgrind says",
      expect_group(r, "definitely-lost", 32, 1, "main") + expect_summary(r, definitely=(32, 1), indirectly=(201, 1)))

lst = build(src("leak_list.cc"), compiler="g++")
rc, err, r = run([lst])
check("a lost std::list of 1000 strings: the list definitely lost, nodes and strings indirectly",
      expect_summary(r, definitely=(24, 1), indirectly=(69000, 2000), possibly=(0, 0)))

# ---- interior pointers that common layouts keep (valgrind's default heuristics) ----
heur = build(src("leak_heuristics.cc"), ("-pthread",), compiler="g++")
rc, err, r = run([heur, "heuristics"], "show_reachable=1")
check("an object kept through its second base class (multiple inheritance) is reachable",
      expect_group(r, "still-reachable", 112, 1, "keep_both"))
check("a new[] array of a class with a destructor, kept past its count, is reachable",
      expect_group(r, "still-reachable", 128, 1, "keep_counted"))
check("a block kept past an 8-byte header holding its length (sqlite's) is reachable",
      expect_group(r, "still-reachable", 48, 1, "alloc_length64"))
check("a copy-on-write std::string's block, kept by its characters, is reachable",
      expect_group(r, "still-reachable", 55, 1, "alloc_cow_string") +
      expect_summary(r, definitely=(0, 0), indirectly=(0, 0), possibly=(0, 0)))
rc, err, r = run([heur, "heuristics"], "leak_heuristics=none")
check("leak_heuristics=none: the four layouts are possibly lost",
      expect_group(r, "possibly-lost", 112, 1, "keep_both") + expect_group(r, "possibly-lost", 55, 1, "alloc_cow_string") +
      expect_summary(r, definitely=(0, 0), indirectly=(0, 0), possibly=(343, 4)))
rc, err, r = run([heur, "heuristics"], "leak_heuristics=stdstring,length64,newarray")
check("leak_heuristics without multipleinheritance: only the object through its second base is possibly lost",
      expect_group(r, "possibly-lost", 112, 1, "keep_both") + expect_summary(r, possibly=(112, 1)))
rc, err, r = run([heur, "heuristics"], "guard=1")
check("guard=1: the same blocks in guard slots, read through process_vm_readv, are reachable",
      expect_summary(r, definitely=(0, 0), indirectly=(0, 0), possibly=(0, 0)))
rc, err, r = run([heur, "own-array-new"], "show_reachable=1")
check("a new[] array from a class's own operator new[] over malloc, kept past its count, is reachable",
      expect_group(r, "still-reachable", 8 + 12 * 64, 1, "_ZN8OwnArraynaEm") +
      expect_summary(r, definitely=(0, 0), indirectly=(0, 0), possibly=(0, 0)))
rc, err, r = run([heur, "make-shared"])
check("a std::make_shared block kept by a raw pointer to its object is no leak",
      expect_summary(r, definitely=(0, 0), indirectly=(0, 0), possibly=(0, 0)))
rc, err, r = run([heur, "look-alikes"])
check("look-alikes of those layouts stay possibly lost: a wrong length, a wrong capacity, no vtables",
      expect_group(r, "possibly-lost", 48, 1, "alloc_length64") +
      expect_group(r, "possibly-lost", 63, 1, "alloc_cow_string") +
      expect_group(r, "possibly-lost", 96, 1, "keep_interior_only") +
      expect_summary(r, definitely=(0, 0), indirectly=(0, 0), possibly=(207, 3)))

# ---- the record stream for the heapguard command (records.h: L and X records) ----
rec = os.path.join(OUT, "leak_records.txt")
if os.path.exists(rec):
    os.remove(rec)
rc, err, r = run([cases, "indirect"], records=rec)
lines = open(rec).read().split("\n") if os.path.exists(rec) else []
got_l = sorted(tuple(l.split()[2:5]) for l in lines if l.startswith("L "))
got_x = [l.split()[2:] for l in lines if l.startswith("X ")]
check("HEAPGUARD_RECORDS: L records per group and an X summary, no text",
      (["L records %s" % got_l] if got_l != [("definitely-lost", "64", "1"), ("indirectly-lost", "72", "3")] else []) +
      (["X records %s" % got_x] if got_x != [["64", "1", "72", "3", "0", "0", "0", "0"]] else []) +
      (["text LEAK lines with records on"] if r["leaks"] or r["leak_summary"] else []))

# ---- options ----
rc, err, r = run([cases, "quick-exit"])
check("quick_exit: the leak check runs as it ends (it ran no check, no summary, before)",
      expect_group(r, "definitely-lost", 111, 1, "lose_definite") +
      expect_summary(r, definitely=(111, 1), indirectly=(0, 0), possibly=(0, 0)))

own_start = build(src("leak_own_start.c"), flags=("-nostartfiles",))
rc, err, r = run([own_start])
check("a program with its own _start that calls exit: the checks run, its status kept",
      expect_group(r, "definitely-lost", 18, 1, "lose_before_exit") +
      expect_summary(r, definitely=(18, 1), indirectly=(0, 0), possibly=(0, 0)) +
      ([] if rc == 3 else ["exit status %s" % rc]))

rc, err, r = run([cases, "definite"], "leak_check=summary")
check("leak_check=summary: the summary line only",
      ["LEAK lines: %d" % len(r["leaks"])] * bool(r["leaks"]) + expect_summary(r, definitely=(111, 1)))
rc, err, r = run([cases, "definite"], "leak_check=no")
check("leak_check=no: no leak report",
      ["LEAK lines: %d" % len(r["leaks"])] * bool(r["leaks"]) +
      (["a LEAK SUMMARY line"] if r["leak_summary"] else []))

rc, err, r = run([cases, "clean"])
check("clean program: no LEAK line, all-zero summary",
      ["LEAK lines: %s" % r["leaks"]] * bool(r["leaks"]) +
      expect_summary(r, definitely=(0, 0), indirectly=(0, 0), possibly=(0, 0), still=(0, 0)))

# ---- valgrind's answer on the example: main has returned, so `line` is dead ----
example = build(os.path.join(ROOT, "examples", "leak.c"), name="example_leak")
rc, err, r = run([example])
check("examples/leak.c: 10 blocks of 100 definitely lost, as valgrind says",
      expect_group(r, "definitely-lost", 1000, 10, "main") +
      expect_summary(r, definitely=(1000, 10), indirectly=(0, 0), possibly=(0, 0)))

# ---- real programs: libc's and ld.so's own blocks are reachable from their data ----
FRAME = re.compile(r"^==\d+==  +#0 0x[0-9a-f]+ in \S+ \((.*)\+0x[0-9a-f]+\)$")


def libc_losses(text):
    """Lost groups whose allocating frame lies in libc or ld.so."""
    bad, kind = [], None
    for line in text.splitlines():
        h = re.match(r"^==\d+== LEAK: ([a-z-]+): (.*)$", line)
        if h:
            kind = h.group(1) if h.group(1) in ("definitely-lost", "indirectly-lost") else None
            what = h.group(2)
            continue
        f = FRAME.match(line)
        if f and kind:
            mod = os.path.basename(f.group(1))
            if mod.startswith("libc.so") or mod.startswith("ld-linux"):
                bad.append("%s %s allocated in %s" % (kind, what, mod))
            kind = None
    return bad


py = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
rc, err, r = run([py, "-c", "print(1)"])
check("python3 -c 'print(1)': nothing definitely or indirectly lost",
      libc_losses(err) + expect_summary(r, definitely=(0, 0), indirectly=(0, 0)) +
      ([] if rc == 0 else ["exit status %d" % rc]))

data = os.path.join(OUT, "leak_sort_input.txt")
with open(data, "w") as f:
    f.write("".join("line %d\n" % (i * 7919 % 1000) for i in range(1000)))
sort = shutil.which("sort") or "/usr/bin/sort"
rc, err, r = run([sort, data])
check("sort: no lost block allocated by libc or ld.so", libc_losses(err) + (["no LEAK SUMMARY"] if not r["leak_summary"] else []) +
      ([] if rc == 0 else ["exit status %d" % rc]))

# ---- a signal ends the program: SIGTERM, SIGINT (Ctrl-C) and the like ----
# It died with no leak check and its blocks unchecked; valgrind runs both first, and stopping a
# server that way is how its leaks are usually asked for.
ending = build(src("ending_signals.c"))
rc, stdout, err, r = checklib.run([ending, "term"], "")
check("SIGTERM: the leak check and the blocks' check run, then the signal ends the program",
      expect_group(r, "definitely-lost", 100, 1, "lose") +
      hgreport.mismatches(r, kind="heap-buffer-overflow", access="write", relation="after", distance=0,
                          block_size=10, detail="found at exit") +
      ([] if rc == -15 and stdout == "" else ["exit status %r, stdout %r" % (rc, stdout)]))
rc, stdout, err, r = checklib.run([ending, "child"], "")
check("SIGTERM in a forked child: the child's leak check runs",
      expect_group(r, "definitely-lost", 100, 1, "lose") +
      ([] if rc == 0 and stdout == "child: signal 15\n" else ["exit status %r, stdout %r" % (rc, stdout)]))
rc, stdout, err, r = checklib.run([ending, "view"], "")
check("the program sees SIG_DFL, its own handler runs, SIG_IGN ignores; at SIG_DFL again SIGINT checks, then ends it",
      expect_group(r, "definitely-lost", 100, 1, "lose") +
      ([] if rc == -2 and stdout == "start: SIG_DFL\nreplaced: SIG_DFL\ncaught 15\nignore SIGINT, was SIG_DFL\n"
       "handler back: yes\nnow: SIG_DFL\n" else ["exit status %r, stdout %r" % (rc, stdout)]))
plain = subprocess.run([ending, "roundtrip"], capture_output=True, text=True).stdout
rc, stdout, err, r = checklib.run([ending, "roundtrip"], "")
check("SIGTERM's SIG_DFL reads back as the kernel gives it (glibc's SA_RESTORER, no SIGKILL in the mask)",
      [] if stdout == plain and "SIG_DFL 1" in plain else ["%r, plain %r" % (stdout, plain)])
def ends_by(mode, sig, more=lambda r: []):
    """Why ending_signals MODE did not report the 100 bytes lose() lost (and what more(report)
    says), then die by signal sig with nothing on stdout."""
    rc, stdout, err, r = checklib.run([ending, mode], "")
    return (expect_group(r, "definitely-lost", 100, 1, "lose") + more(r) +
            ([] if rc == -sig and stdout == "" else ["exit status %r, stdout %r" % (rc, stdout)]))


# The checks run on a stack of their own: on the thread's they overflowed it (SIGSEGV, unreported).
check("SIGTERM on a thread of a 16 KiB stack: the checks run, then the signal ends the program",
      ends_by("small", 15))

# ---- a crash or abort() ends the program: the checks at exit first, as valgrind runs them ----
def found_at_exit(r, top):
    """Why report r lacks the store one byte past a block of 10, found at exit where `top` ended."""
    errs = [e for e in r["errors"] if e["kind"] == "heap-buffer-overflow"]
    if len(errs) != 1:
        return ["expected one heap-buffer-overflow, got %s" % [(e["kind"], e["detail"]) for e in r["errors"]]]
    e = errs[0]
    b = e["block"] or {}
    why = [] if (b.get("relation"), b.get("distance"), b.get("size")) == ("after", 0, 10) else ["block %r" % b]
    why += [] if "found at exit" in (e["detail"] or "") else ["detail %r" % e["detail"]]
    return why + ([] if top in e["stack"][:8] else ["access stack %r lacks %s" % (e["stack"], top)])


def crash_reported(r):
    faults = [e for e in r["errors"] if e["kind"] == "invalid-access"]
    return (([] if len(faults) == 1 and faults[0]["stack"][:1] == ["crash"] else ["invalid-access: %r" % faults]) +
            found_at_exit(r, "crash") + expect_summary(r, definitely=(100, 1)) +
            ([] if not [g for g in r["leaks"] if g["bytes"] == 30] else ["the block crash() held is lost"]))


def overflow_reported(r):
    overflow = [e for e in r["errors"] if e["kind"] == "invalid-access" and "stack overflow" in (e["detail"] or "")]
    return [] if len(overflow) == 1 else ["errors %r" % [(e["kind"], e["detail"]) for e in r["errors"]]]


check("SIGSEGV: reported, then the leak check and the blocks' check run, then the fault ends the program",
      ends_by("segv", 11, crash_reported))
check("SIGSEGV on a thread of a 16 KiB stack: the checks run, then the fault ends the program",
      ends_by("segv-small", 11))
check("abort(): the leak check and the blocks' check run, then SIGABRT ends the program",
      ends_by("abort", 6, lambda r: found_at_exit(r, "main")))
check("an integer division by zero: the checks run, then SIGFPE ends the program", ends_by("divide", 8))
# Another thread's exit(0) during a crashed thread's checks ended the process with status 0.
check("a crash in a thread while main calls exit(0): the checks run, the crash ends the program",
      ends_by("race", 11))
# A thread that never allocated had no alternate stack: its stack overflow died unreported.
check("a stack overflow in a thread that never allocated: reported, the checks run, SIGSEGV ends it",
      ends_by("recurse", 11, overflow_reported))
# The handler itself ran on the thread's stack: no room for it there, and a SIGSEGV death.
check("SIGTERM to a thread of a 16 KiB stack with 8 KiB in use: the checks run, SIGTERM ends it",
      ends_by("term-deep", 15, lambda r: [] if not r["errors"] else ["errors %r" % r["errors"]]))
# Ctrl-C reaches the command and the program, and the command forwards it: two SIGINTs. The
# second, coming as the checks the first had waited for (inside malloc) started, cut them short:
# no summary in half the runs.
why = []
for attempt in range(4):
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "HEAPGUARD_OPTIONS")}
    p = subprocess.Popen([os.path.join(checklib.BUILD, "heapguard"), "--", ending, "busy"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    p.stdout.readline()
    time.sleep(0.05)
    os.killpg(p.pid, 2)
    _, err = p.communicate(timeout=60)
    r = hgreport.parse(err)
    why += ["attempt %d: %s" % (attempt, w) for w in expect_group(r, "definitely-lost", 100, 1, "lose")]
    why += [] if p.returncode == -2 else ["attempt %d: exit status %r" % (attempt, p.returncode)]
check("two SIGINTs to a program busy in malloc: the checks run once, whole, then SIGINT ends it", why)
rc, stdout, err, r = checklib.run([ending, "twice"], "abort_on_error=1")
check("abort_on_error=1: the first report aborts, with no checks at exit",
      hgreport.mismatches(r, kind="double-free") +
      ([] if not r["leaks"] and not r["leak_summary"] else ["leak report: %r" % r["leaks"]]) +
      ([] if rc == -6 and stdout == "" else ["exit status %r, stdout %r" % (rc, stdout)]))
# A SIGTERM while the checks at exit run waited for them, and was then lost: exit status 0.
env = dict(os.environ, LD_PRELOAD=checklib.LIB, HEAPGUARD_OPTIONS="")
p = subprocess.Popen([ending, "exiting"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
line = p.stdout.readline()
time.sleep(0.05)
p.send_signal(15)
p.communicate(timeout=60)
check("SIGTERM while the checks at exit run: the program still dies by it",
      [] if line == "exiting\n" and p.returncode == -15 else ["stdout %r, exit status %r" % (line, p.returncode)])
rc = subprocess.run(["sh", "-c", 'trap "" HUP; LD_PRELOAD="$1" "$2" inherited', "sh", checklib.LIB, ending],
                    capture_output=True, text=True)
check("a signal the program was started ignoring (nohup's SIGHUP) stays ignored",
      [] if rc.returncode == 0 and rc.stdout == "alive\n" else ["exit status %r, stdout %r" % (rc.returncode, rc.stdout)])

sys.exit(tap.finish())
