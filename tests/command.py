#!/usr/bin/env python3
"""command.py — the heapguard command end to end (TAP): the JSON report field by field against
the examples, SARIF 2.1.0, the text report, suppressions, exit statuses, children after fork and
exec, programs killed or crashing, closing their descriptors or changing directory, stdout left
alone, and the time to symbolize 1,000 stacks.

Usage: tests/command.py BUILD_DIR   (BUILD_DIR holds heapguard, the libraries and examples/)
Expected line numbers come from grepping the sources for their BUG or ERROR- comments.
The SARIF log is checked field by field, and validated against the schema too when
HG_SARIF_SCHEMA names a copy of the SARIF 2.1.0 JSON schema (python3-jsonschema needed).
"""
import json
import os
import re
import resource
import signal
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build"))
HG = os.path.join(BUILD, "heapguard")
EXAMPLES = os.path.join(BUILD, "examples")
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
import hgreport  # noqa: E402

WORK = tempfile.mkdtemp(prefix="hg-command-")
HELPER_SRC = os.path.join(HERE, "command", "helper.c")
HELPER = os.path.join(WORK, "helper")
TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


def run(args, env=None, timeout=60, cwd=None):
    """Runs args; returns (status, stdout, stderr), status negative for a signal."""
    e = dict(os.environ)
    e.pop("HEAPGUARD_OPTIONS", None)
    e.update(env or {})
    p = subprocess.run(args, capture_output=True, text=True, errors="replace", env=e,
                       timeout=timeout, cwd=cwd)
    return p.returncode, p.stdout, p.stderr


def hg_json(program, *options, env=None):
    """Runs program under heapguard with --json; returns (status, stdout, stderr, document)."""
    path = os.path.join(WORK, "report.json")
    if os.path.exists(path):
        os.unlink(path)
    rc, out, err = run([HG, "--json=" + path, *options, "--", *program], env=env)
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError) as ex:
        doc = {"unreadable": str(ex)}
    return rc, out, err, doc


def source_line(path, marker, nth=0):
    """The number of the nth line of path holding marker."""
    with open(path) as f:
        hits = [i + 1 for i, line in enumerate(f) if marker in line]
    return hits[nth] if len(hits) > nth else -1


def compiled(name, source, compiler="gcc", opt="-O0"):
    """Writes source to WORK/name (.c, or .cc for g++), builds it with -g and opt; returns the executable."""
    src = os.path.join(WORK, name + (".cc" if compiler == "g++" else ".c"))
    with open(src, "w") as f:
        f.write(source)
    exe = os.path.join(WORK, name)
    subprocess.run([compiler, "-g", opt, "-o", exe, src], check=True)
    return exe


def example(name):
    return os.path.join(EXAMPLES, name)


def example_src(name):
    return os.path.join(ROOT, "examples", name + ".c")


def frame_is(where, frame, function, src, line):
    """Reasons why frame is not function at src:line."""
    if frame is None:
        return ["%s: no such frame" % where]
    got = (frame.get("function"), frame.get("file"), frame.get("line"))
    ok = (got[0] == function and got[1] is not None and os.path.realpath(got[1]) == os.path.realpath(src)
          and got[2] == line and frame.get("pc", "").startswith("0x") and frame.get("module"))
    return [] if ok else ["%s: %r, expected %s %s:%d" % (where, frame, function, src, line)]


def nth(stack, i):
    return stack[i] if stack and len(stack) > i else None


def fields(where, obj, expected):
    """Reasons why obj's fields differ from the expected ones."""
    return ["%s.%s = %r, expected %r" % (where, k, obj.get(k), v) for k, v in expected.items()
            if obj.get(k) != v]


def one_error(doc, kind):
    errs = [e for e in doc.get("errors", []) if e.get("kind") == kind]
    return errs[0] if errs else None


# ---------------------------------------------------------------- JSON, per example

def check_document(doc, argv):
    why = fields("document", doc, {"tool": "heapguard", "command": argv, "checked": True})
    if not re.match(r"^\d+\.\d+\.\d+$", str(doc.get("version"))):
        why.append("version %r" % doc.get("version"))
    for key in ("errors", "leaks"):
        if not isinstance(doc.get(key), list):
            why.append("%s is not a list" % key)
    s = doc.get("summary", {})
    if not all(isinstance(s.get(k), int) for k in ("errors", "contexts")):
        why.append("summary %r" % s)
    return why


@test
def json_heap_overflow():
    src = example_src("heap-overflow")
    rc, _, err, doc = hg_json([example("heap-overflow")])
    e = one_error(doc, "heap-buffer-overflow") or {}
    why = check_document(doc, [example("heap-overflow")]) + fields("exit", doc.get("exit", {}), {"code": 0})
    why += fields("error", e, {"access": "write", "size": 10, "thread": 1, "count": 1})
    why += fields("block", e.get("block", {}), {"size": 9, "offset": 9})
    if int(e.get("address", "0"), 16) - int(e.get("block", {}).get("address", "0"), 16) != 9:
        why.append("address and block address are not 9 bytes apart: %r" % e)
    why += frame_is("stack[0]", nth(e.get("stack"), 0), "duplicate", src, source_line(src, "strcpy(copy, s)"))
    why += frame_is("stack[1]", nth(e.get("stack"), 1), "main", src, source_line(src, 'duplicate("heapguard")'))
    why += frame_is("alloc_stack[0]", nth(e.get("block", {}).get("alloc_stack"), 0), "duplicate", src,
                    source_line(src, "BUG"))
    if "free_stack" in e.get("block", {}):
        why.append("a free_stack for a live block")
    s = doc.get("summary", {})
    why += fields("summary", s, {"allocs": 1, "frees": 1, "bytes_allocated": 9,
                                 "in_use_at_exit": {"bytes": 0, "blocks": 0}})
    if s.get("errors") != len(doc.get("errors", [])) or s.get("contexts") != len(doc.get("errors", [])):
        why.append("summary %r for %d errors" % (s, len(doc.get("errors", []))))
    return why


@test
def json_same_line_calls_are_separate_contexts():
    """malloc, strcpy and puts on one source line: two errors in two contexts, and the block's
    allocation frame has malloc's return address, not strcpy's (stacks told apart by their
    text alone merged them)."""
    _, _, _, doc = hg_json([HELPER, "same-line"])
    errs = doc.get("errors", [])
    why = fields("summary", doc.get("summary", {}), {"errors": 2, "contexts": 2})
    by = {e.get("access"): e for e in errs}
    w, r = by.get("write", {}), by.get("read", {})  # strcpy's, then puts's
    why += fields("strcpy's error", w, {"kind": "heap-buffer-overflow", "size": 11})
    why += fields("puts's error", r, {"kind": "heap-buffer-overflow"})
    pcs = [(nth(e.get("stack"), 0) or {}).get("pc") for e in (w, r)]
    alloc = [(nth(e.get("block", {}).get("alloc_stack"), 0) or {}).get("pc") for e in (w, r)]
    if None in pcs or None in alloc or len(set(pcs)) != 2 or alloc[0] != alloc[1] or alloc[0] in pcs:
        why.append("access pcs %r, allocation pcs %r" % (pcs, alloc))
    return why


@test
def json_off_by_one():
    src = example_src("off-by-one")
    _, _, _, doc = hg_json([example("off-by-one")])
    e = one_error(doc, "heap-buffer-overflow") or {}
    why = fields("error", e, {"access": "write", "size": 4}) + fields("block", e.get("block", {}), {"size": 40, "offset": 40})
    # The store is plain code: it is found when the block is freed, which is where it is reported.
    why += frame_is("stack[0]", nth(e.get("stack"), 0), "main", src, source_line(src, "free(a)"))
    why += frame_is("alloc_stack[0]", nth(e.get("block", {}).get("alloc_stack"), 0), "main", src,
                    source_line(src, "malloc(n * sizeof"))
    return why


@test
def json_overlapping_copy():
    src = example_src("overlapping-copy")
    _, _, err, doc = hg_json([example("overlapping-copy")])
    e = one_error(doc, "param-overlap") or {}
    b = e.get("block", {})
    # "    indented text": strcpy writes the 13 bytes of "indented text" and its NUL at the start
    why = fields("error", e, {"access": "write", "size": 14}) + fields("block", b, {"size": 64, "offset": 0})
    why += [] if re.match(r"the source, 14 bytes at 0x[0-9a-f]+, overlaps the destination$", e.get("detail", "")) \
        else ["detail %r" % e.get("detail")]
    why += frame_is("stack[0]", nth(e.get("stack"), 0), "trim_left", src, source_line(src, "BUG"))
    why += frame_is("alloc_stack[0]", nth(b.get("alloc_stack"), 0), "main", src, source_line(src, "malloc(64)"))
    return why + ([] if 'trimmed: "indented text"' in err else ["the program's output: %r" % err])


@test
def json_use_after_free():
    src = example_src("use-after-free")
    _, _, _, doc = hg_json([example("use-after-free")])
    e = one_error(doc, "heap-use-after-free") or {}
    b = e.get("block", {})
    why = fields("error", e, {"access": "write"}) + fields("block", b, {"size": 32, "offset": 0})
    f = nth(e.get("stack"), 0) or {}
    # A plain store to freed memory is found when its poison is checked: at the free's line or
    # the faulty lines, depending on when the check runs.
    lines = {source_line(src, "free(r)"), source_line(src, "BUG"), source_line(src, "BUG", 1)}
    why += frame_is("stack[0]", f, "main", src, f.get("line") if f.get("line") in lines else -1)
    why += frame_is("free_stack[0]", nth(b.get("free_stack"), 0), "main", src, source_line(src, "free(r)"))
    why += frame_is("alloc_stack[0]", nth(b.get("alloc_stack"), 0), "main", src, source_line(src, "malloc(sizeof *r)"))
    return why


@test
def json_double_free():
    src = example_src("double-free")
    _, _, _, doc = hg_json([example("double-free")])
    e = one_error(doc, "double-free") or {}
    b = e.get("block", {})
    why = fields("error", e, {"access": "free", "count": 1}) + fields("block", b, {"size": 64, "offset": 0})
    why += ["a free has no access size, yet size is %r" % e["size"]] if "size" in e else []
    why += frame_is("stack[0]", nth(e.get("stack"), 0), "main", src, source_line(src, "BUG"))
    why += frame_is("free_stack[0]", nth(b.get("free_stack"), 0), "main", src, source_line(src, "free(buffer)"))
    why += frame_is("alloc_stack[0]", nth(b.get("alloc_stack"), 0), "main", src, source_line(src, "malloc(64)"))
    return why


@test
def json_invalid_free_interior():
    src = example_src("invalid-free-interior")
    _, _, _, doc = hg_json([example("invalid-free-interior")])
    e = one_error(doc, "invalid-free") or {}
    b = e.get("block", {})
    why = fields("error", e, {"access": "free"}) + fields("block", b, {"size": 128, "offset": 16})
    why += frame_is("stack[0]", nth(e.get("stack"), 0), "main", src, source_line(src, "BUG"))
    why += frame_is("alloc_stack[0]", nth(b.get("alloc_stack"), 0), "main", src, source_line(src, "malloc(128)"))
    return why


@test
def json_invalid_free_stack():
    src = example_src("invalid-free-stack")
    _, _, _, doc = hg_json([example("invalid-free-stack")])
    e = one_error(doc, "invalid-free") or {}
    why = fields("error", e, {"access": "free"}) + (["a block for a stack address"] if "block" in e else [])
    why += frame_is("stack[0]", nth(e.get("stack"), 0), "main", src, source_line(src, "BUG"))
    return why


@test
def json_uninitialized_read():
    src = example_src("uninitialized-read")
    _, _, _, doc = hg_json([example("uninitialized-read")])
    e = one_error(doc, "uninitialized-read") or {}
    b = e.get("block", {})
    why = fields("error", e, {"access": "read", "size": 19}) + fields("block", b, {"size": 32, "offset": 13})
    why += frame_is("stack[0]", nth(e.get("stack"), 0), "save", src, source_line(src, "fwrite(h"))
    why += frame_is("stack[1]", nth(e.get("stack"), 1), "main", src, source_line(src, 'save(out, "demo")'))
    why += frame_is("alloc_stack[0]", nth(b.get("alloc_stack"), 0), "save", src, source_line(src, "BUG"))
    return why


@test
def json_unallocated_strcpy_dies_by_sigsegv():
    src = example_src("unallocated-strcpy")
    rc, _, _, doc = hg_json([example("unallocated-strcpy")])
    e = one_error(doc, "invalid-access") or {}
    why = fields("error", e, {"access": "write", "address": "0x0"}) + fields("exit", doc.get("exit", {}), {"signal": 11})
    why += frame_is("stack[0]", nth(e.get("stack"), 0), "main", src, source_line(src, "strcpy(name"))
    return why + ([] if rc == -signal.SIGSEGV else ["status %d, expected death by SIGSEGV" % rc])


@test
def json_allocation_size_too_big():
    """A request's size is a decimal size field (the text said malloc() of 0x1000000000000 and
    the JSON gave it as the error's address); there is no address."""
    src = os.path.join(WORK, "too-big.c")
    exe = compiled("too-big", "#include <stdlib.h>\n"
                   "int main(void) { return malloc((size_t)1 << 48) != NULL; }\n")
    rc, _, err, doc = hg_json([exe])
    e = one_error(doc, "allocation-size-too-big") or {}
    why = fields("error", e, {"size": 1 << 48, "thread": 1, "count": 1,
                              "detail": "requested size exceeds 2^47 bytes"})
    why += ["address %r, access %r" % (e.get("address"), e.get("access"))] if "address" in e or "access" in e else []
    why += frame_is("stack[0]", nth(e.get("stack"), 0), "main", src, 2)
    if not re.search(r"^==\d+== ERROR: allocation-size-too-big: malloc\(\) of 281474976710656 bytes \(thread 1\)$",
                     err, re.M):
        why.append("headline: %r" % err[:300])
    return why + ([] if rc == 0 else ["status %d" % rc])


@test
def json_leak():
    src = example_src("leak")
    _, _, _, doc = hg_json([example("leak")])
    leaks = [l for l in doc.get("leaks", []) if l.get("kind") == "definitely-lost"]
    if not leaks:
        return ["no definitely-lost leak: %r" % doc.get("leaks")]
    l = leaks[0]
    why = [] if l.get("bytes") == 100 * l.get("blocks", 0) and l.get("blocks", 0) >= 9 else ["leak %r" % l]
    why += frame_is("leak stack[0]", nth(l.get("stack"), 0), "main", src, source_line(src, "BUG"))
    return why


@test
def libc_start_code_named_without_source_lines():
    # The frames below main are libc's start code, named from its symbol table: with
    # libc6-dbg installed their source lines cost 40 ms of inflating libc's DWARF per run.
    _, _, _, doc = hg_json([example("leak")])
    stack = next((l.get("stack", []) for l in doc.get("leaks", []) if l.get("kind") == "definitely-lost"), [])
    names = [f.get("function") for f in stack]
    if "main" not in names:
        return ["no main in the leak's stack: %r" % stack]
    below = [f for f in stack[names.index("main") + 1:] if "libc.so" in f.get("module", "")]
    # Without libc6-dbg, __libc_start_call_main is in no symbol table libdw reads (None).
    named = [f.get("function") for f in below if f.get("function")]
    ok = below and all(f.get("file") is None for f in below) and "__libc_start_main" in named and \
        all(n.startswith("__libc_start") for n in named)
    return [] if ok else ["libc frames below main: %r" % below]


@test
def json_any_argument_bytes():
    # a byte of no valid UTF-8 sequence is the code point of its value: valid JSON, told apart
    odd = [b"bad\xffutf", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", "\U0010ffff".encode()]
    path = os.path.join(WORK, "odd.json")
    subprocess.run([HG, "-q", "--json=" + path, HELPER, "exit", "0", *odd], capture_output=True)
    try:
        with open(path, encoding="utf-8", errors="strict") as f:
            command = json.load(f).get("command")
    except (OSError, ValueError) as ex:
        return ["not valid JSON in UTF-8: %s" % ex]
    want = ["bad\u00ffutf", "\u00e0\u0080\u00af", "\u00ed\u00a0\u0080", "\u00f4\u0090\u0080\u0080", "\U0010ffff"]
    return [] if command[-len(odd):] == want else ["command %r" % command]


@test
def json_clean():
    rc, _, _, doc = hg_json([example("clean")])
    why = fields("document", doc, {"errors": [], "leaks": [], "exit": {"code": 0}})
    why += fields("summary", doc.get("summary", {}), {"errors": 0, "contexts": 0, "allocs": 3, "frees": 3})
    return why + ([] if rc == 0 else ["status %d" % rc])


# ---------------------------------------------------------------- text report

@test
def text_report_parses_with_source_lines():
    src = example_src("heap-overflow")
    rc, _, err = run([HG, example("heap-overflow")])
    r = hgreport.parse(err)
    why = [] if r["errors"] else ["no error parsed from: " + err[-2000:]]
    e = r["errors"][0] if r["errors"] else {"frames": [], "alloc_stack": []}
    want = ("duplicate", os.path.realpath(src), str(source_line(src, "strcpy(copy, s)")))
    got = e["frames"][0] if e["frames"] else (0, "", ":")
    path, line = got[2].rsplit(":", 1)
    if (got[1], os.path.realpath(path), line) != want:
        why.append("first frame %r, expected %s %s:%s" % (got, *want))
    if e["alloc_stack"][:2] != ["duplicate", "main"]:
        why.append("allocation stack %r" % e["alloc_stack"])
    if r["error_summary"] != {"errors": len(r["errors"]), "contexts": len(r["errors"])}:
        why.append("error summary %r" % r["error_summary"])
    if not r["heap_summary"] or r["heap_summary"]["allocs"] != 1:
        why.append("heap summary %r" % r["heap_summary"])
    lines = [l for l in err.splitlines() if l.startswith("==")]
    if not all(l.startswith("==%d== " % next(iter(r["pids"]))) for l in lines) or len(r["pids"]) != 1:
        why.append("lines with other prefixes: %r" % r["pids"])
    return why


@test
def quiet_prints_reports_only():
    _, _, err = run([HG, "-q", example("heap-overflow")])
    r = hgreport.parse(err)
    why = [] if r["errors"] else ["no error report"]
    if r["error_summary"] or r["heap_summary"] or r["leak_summary"]:
        why.append("summaries with -q: " + err[-1000:])
    _, _, err = run([HG, "--quiet", example("clean")])
    return why + ([] if "==" not in err else ["output for a clean program with -q: " + err])


@test
def newline_in_a_path_stays_on_its_line():
    # the program's path is in its frames: a newline there is written \x0a
    d = os.path.join(WORK, "new\nline")
    os.makedirs(d, exist_ok=True)
    exe = os.path.join(d, "prog")
    shutil.copy(example("heap-overflow"), exe)
    why = []
    for how, cmd in (("command", [HG, exe]),
                     ("library", ["env", "LD_PRELOAD=" + os.path.join(BUILD, "libheapguard-check.so"), exe])):
        _, _, err = run(cmd)
        stray = [l for l in err.splitlines() if not l.startswith("==") and not l.startswith("copied ")]
        framed = [l for l in err.splitlines() if "(%s+0x" % exe.replace("\n", "\\x0a") in l]
        why += ["%s: lines %r" % (how, stray)] if stray or not framed else []
    return why


@test
def descriptors_stay_the_programs():
    # a script's lock idiom on 200 and 201, and the first free descriptor: as in a plain run
    why = []
    script = "exec 200>a; echo x >&200; exec 200>&-; exec 201>b; echo y >&201; exec 201>&-"
    for how in ([], [HG, "-q", "--leak-check=no", "--"]):
        for name in ("a", "b"):
            if os.path.exists(os.path.join(WORK, name)):
                os.unlink(os.path.join(WORK, name))
        rc, out, err = run(how + ["bash", "-c", script], cwd=WORK)
        got = [open(os.path.join(WORK, n)).read() if os.path.exists(os.path.join(WORK, n)) else None
               for n in ("a", "b")]
        if rc != 0 or got != ["x\n", "y\n"] or err:
            why.append("%s: status %d, files %r, stderr %r" % ("checked" if how else "plain", rc, got, err[-300:]))
    rc, out, _ = run([HG, "-q", "--leak-check=no", "--", "python3", "-c", "import os; print(os.open('/dev/null', 0))"])
    return why + ([] if out == "3\n" else ["python3's first descriptor: %r" % out])


@test
def a_killed_child_not_yet_waited_for_is_not_running():
    # its parent sleeps on, the zombie waits: only the parent outlived the program
    cpid, ppid = os.path.join(WORK, "cpid"), os.path.join(WORK, "ppid")
    _, _, err = run([HG, "-q", "--", "bash", "-c", "( sleep 5 & echo $! > %s; kill -9 $!; echo $BASHPID > %s; "
                     "exec sleep 2 ) & sleep 0.5" % (cpid, ppid)])
    with open(cpid) as f, open(ppid) as g:
        child, parent = int(f.read()), int(g.read())
    running = [int(m) for m in re.findall(r"STILL RUNNING: \S+ \(pid (\d+)\)", err)]
    return [] if running == [parent] else ["STILL RUNNING for %r (parent %d, killed child %d)" % (running, parent, child)]


@test
def a_sandbox_that_refuses_creating_files_is_checked():
    # the records file exists: opening it needs no O_CREAT, which the filter fails
    rc, _, err, doc = hg_json([HELPER, "sandboxed", HELPER, "repeat"], "--error-exitcode=9")
    why = [] if rc == 9 and "NOT CHECKED" not in err else ["status %d: %r" % (rc, err[-400:])]
    return why + ([] if [e.get("count") for e in doc.get("errors", [])] == [5] else ["errors %r" % doc.get("errors")])


@test
def log_file_takes_the_report():
    log = os.path.join(WORK, "log.txt")
    _, _, err = run([HG, "--log-file", log, example("heap-overflow")])
    with open(log) as f:
        r = hgreport.parse(f.read())
    why = [] if r["errors"] and r["error_summary"] else ["log file report %r" % r]
    why += ["report on stderr too: " + err] if "ERROR" in err else []
    # the program does not get the log file open: it is heapguard's
    _, out, _ = run([HG, "--log-file", log, "--", "sh", "-c", "for f in /proc/$$/fd/*; do readlink $f; done"])
    return why + (["the program has the log file open: " + out] if log in out else [])


@test
def repeated_error_counted_once_shown():
    src = HELPER_SRC
    _, _, err, doc = hg_json([HELPER, "repeat"])
    errs = doc.get("errors", [])
    why = [] if len(errs) == 1 else ["%d error contexts, expected 1" % len(errs)]
    if errs:
        why += fields("error", errs[0], {"count": 5})
        why += frame_is("stack[0]", nth(errs[0].get("stack"), 0), "main", src, source_line(src, "ERROR-REPEAT"))
    why += fields("summary", doc.get("summary", {}), {"errors": 5, "contexts": 1})
    r = hgreport.parse(err)
    return why + ([] if r["error_summary"] == {"errors": 5, "contexts": 1} and len(r["errors"]) == 1
                  else ["text: %r, %d reports" % (r["error_summary"], len(r["errors"]))])


@test
def reports_appear_while_the_program_runs():
    _, _, err = run([HG, HELPER, "live"])
    report = err.find("ERROR: heap-buffer-overflow")
    marker = err.find("program still running")
    return [] if 0 <= report < marker else ["report at %d, program's last line at %d" % (report, marker)]


# ---------------------------------------------------------------- SARIF

def sarif_schema_problems(doc):
    """Validation against the official schema, when a copy and jsonschema are at hand."""
    path = os.environ.get("HG_SARIF_SCHEMA")
    if not path:
        return None
    import jsonschema  # noqa: WPS433 (only needed here)
    with open(path) as f:
        schema = json.load(f)
    cls = jsonschema.validators.validator_for(schema)  # the draft the schema names
    v = cls(schema, format_checker=jsonschema.FormatChecker())
    return ["schema: %s at %s" % (e.message, list(e.absolute_path)) for e in v.iter_errors(doc)][:5]


@test
def sarif_2_1_0():
    src = example_src("heap-overflow")
    path = os.path.join(WORK, "report.sarif")
    rc, _, _ = run([HG, "--sarif=" + path, example("heap-overflow")])
    with open(path) as f:
        doc = json.load(f)
    why = fields("log", doc, {"version": "2.1.0"})
    if "sarif-schema-2.1.0.json" not in doc.get("$schema", ""):
        why.append("$schema %r" % doc.get("$schema"))
    run0 = (doc.get("runs") or [{}])[0]
    driver = run0.get("tool", {}).get("driver", {})
    why += fields("driver", driver, {"name": "heapguard"})
    rules = [r.get("id") for r in driver.get("rules", [])]
    results = run0.get("results", [])
    if not results:
        return why + ["no results"]
    base = run0.get("originalUriBaseIds", {})
    for i, res in enumerate(results):
        if res.get("ruleId") not in rules or rules.index(res["ruleId"]) != res.get("ruleIndex"):
            why.append("result %d: ruleId %r / ruleIndex %r" % (i, res.get("ruleId"), res.get("ruleIndex")))
        if not res.get("message", {}).get("text"):
            why.append("result %d: no message text" % i)
        if res.get("level") not in ("error", "warning", "note"):
            why.append("result %d: level %r" % (i, res.get("level")))
    first = results[0]
    loc = ((first.get("locations") or [{}])[0]).get("physicalLocation", {})
    art = loc.get("artifactLocation", {})
    uri = art.get("uri", "")
    if art.get("uriBaseId"):
        uri = base.get(art["uriBaseId"], {}).get("uri", "?") + uri
    if uri != "file://" + os.path.realpath(src):
        why.append("uri %r, expected file://%s" % (uri, src))
    if loc.get("region", {}).get("startLine") != source_line(src, "strcpy(copy, s)"):
        why.append("region %r" % loc.get("region"))
    frames = ((first.get("stacks") or [{}])[0]).get("frames", [])
    names = [f.get("location", {}).get("logicalLocations", [{}])[0].get("fullyQualifiedName") for f in frames]
    if names[:2] != ["duplicate", "main"]:
        why.append("stack frames %r" % names)
    schema = sarif_schema_problems(doc)
    if schema is not None:
        why += schema
    return why


@test
def sarif_relative_source_names():
    # debug information with relative names (-fdebug-prefix-map=DIR=.): relative to SRCROOT
    d = os.path.join(WORK, "relsrc")
    os.makedirs(d, exist_ok=True)
    shutil.copy(example_src("heap-overflow"), os.path.join(d, "overflow.c"))
    subprocess.run(["gcc", "-g", "-O0", "-fdebug-prefix-map=%s=." % d, "-o", "overflow", "overflow.c"],
                   cwd=d, check=True)
    path = os.path.join(WORK, "relative.sarif")
    run([HG, "--sarif=" + path, "./overflow"], cwd=d)
    with open(path) as f:
        run0 = (json.load(f).get("runs") or [{}])[0]
    arts = [l.get("physicalLocation", {}).get("artifactLocation") for r in run0.get("results", [])
            for l in r.get("locations", [])]
    base = run0.get("originalUriBaseIds", {}).get("SRCROOT", {}).get("uri")
    why = [] if arts and all(a == {"uri": "overflow.c", "uriBaseId": "SRCROOT"} for a in arts) else \
        ["artifact locations %r" % arts]
    return why + ([] if base == "file://%s/" % d else ["SRCROOT is %r" % base])


@test
def sarif_srcroot_in_the_root_directory():
    # run in /: SRCROOT is file:/// (not file:////), and an absolute source name stays one
    path = os.path.join(WORK, "root.sarif")
    run([HG, "--sarif=" + path, example("heap-overflow")], cwd="/")
    with open(path) as f:
        run0 = (json.load(f).get("runs") or [{}])[0]
    base = run0.get("originalUriBaseIds", {}).get("SRCROOT", {}).get("uri")
    arts = [l.get("physicalLocation", {}).get("artifactLocation") for r in run0.get("results", [])
            for l in r.get("locations", [])]
    why = [] if base == "file:///" else ["SRCROOT is %r" % base]
    want = {"uri": "file://" + os.path.realpath(example_src("heap-overflow"))}
    return why + ([] if arts and all(a == want for a in arts) else ["artifact locations %r" % arts])


@test
def sarif_fault_message_as_the_text_says_it():
    # a fault tells no size, and may not tell read from write: the message says neither
    path = os.path.join(WORK, "fault.sarif")
    cases = os.path.join(WORK, "heap_cases")
    subprocess.run(["gcc", "-g", "-O0", "-fno-builtin", "-pthread", "-o", cases,
                    os.path.join(ROOT, "tests", "check", "heap_cases.c")], check=True)
    why = []
    for program, want in (([example("unallocated-strcpy")], r"invalid-access: write at 0x0 \(address 0x0 is in the NULL page\)$"),
                          ([cases, "uninit-pointer"], r"invalid-access: read or write at 0x[0-9a-f]+ \(")):
        _, _, err = run([HG, "--sarif=" + path, *program])
        with open(path) as f:
            texts = [r.get("message", {}).get("text", "") for r in (json.load(f).get("runs") or [{}])[0].get("results", [])]
        if len(texts) != 1 or not re.match(want, texts[0]):
            why.append("%s: messages %r, expected /%s/" % (program[-1], texts, want))
            continue
        head = [l for l in err.splitlines() if " ERROR: " in l]
        if not head or "ERROR: " + texts[0].split(" (")[0] + " (thread " not in head[0]:
            why.append("%s: the text says %r" % (program[-1], head))
    return why


@test
def sarif_fingerprints_survive_moves_and_edits():
    # code-scanning tools follow a result by its partialFingerprints: the same bug must keep
    # it when the binary runs from elsewhere or lines above it change, and bugs differ, two
    # of one kind in one function too
    src = "#include <stdlib.h>\n#include <string.h>\n%s" \
          "__attribute__((noinline)) void fill(char *p, const char *s) { strcpy(p, s); strcpy(p + 1, s); }\n" \
          "int main(void) { char *p = malloc(4); fill(p, \"toolong\"); free(p); free(p); return 0; }\n"
    first = compiled("fp_first", src % "")
    shifted = compiled("fp_shifted", src % "/* a comment\n   of two lines */\n")
    moved_dir = os.path.join(WORK, "fp_moved")
    os.makedirs(moved_dir, exist_ok=True)
    moved = os.path.join(moved_dir, "fp_first")
    shutil.copy(first, moved)
    prints = []
    for exe in (first, shifted, moved):
        path = os.path.join(WORK, "fp.sarif")
        run([HG, "--sarif=" + path, exe])
        with open(path) as f:
            results = (json.load(f).get("runs") or [{}])[0].get("results", [])
        prints.append([(r.get("ruleId"), list(r.get("partialFingerprints", {}).values())) for r in results])
    kinds = [k for k, _ in prints[0]]
    why = [] if kinds == ["heap-buffer-overflow"] * 2 + ["double-free"] else ["results %r" % prints[0]]
    why += [] if prints[0] == prints[1] == prints[2] else ["fingerprints moved: %r" % prints]
    fps = [fp[0] for _, fp in prints[0] if fp]
    return why + ([] if len(set(fps)) == 3 else ["three bugs (two alike in one function), fingerprints %r" % fps])


# ---------------------------------------------------------------- suppressions

def suppressions_file(text):
    path = os.path.join(WORK, "supp-%d.txt" % hash(text))
    with open(path, "w") as f:
        f.write(text)
    return path


def generated_entries(err):
    """The entries --gen-suppressions printed: from a '{' line to the next '}' line."""
    return re.findall(r"^\{\n(?:.*\n)*?\}$", err, re.M)


@test
def gen_suppressions_round_trip():
    _, _, err, before = hg_json([example("heap-overflow")], "--gen-suppressions")
    entries = generated_entries(err)
    why = [] if len(entries) == len(before.get("errors", [])) > 0 else \
        ["%d entries for %d errors: %s" % (len(entries), len(before.get("errors", [])), err[-1500:])]
    supp = suppressions_file("# generated\n" + "\n".join(entries) + "\n")
    rc, _, err, after = hg_json([example("heap-overflow")], "--suppressions=" + supp)
    why += fields("suppressed run", after, {"errors": []})
    why += fields("summary", after.get("summary", {}), {"errors": 0, "contexts": 0})
    r = hgreport.parse(err)
    if r["errors"] or r["error_summary"] != {"errors": 0, "contexts": 0}:
        why.append("text after suppression: %r %r" % (r["errors"], r["error_summary"]))
    n = len(before.get("errors", []))
    if "ERROR SUMMARY: 0 errors from 0 contexts (suppressed: %d from %d)" % (n, n) not in err:
        why.append("no count of the suppressed: " + err[-500:])
    return why


@test
def gen_suppressions_without_frames_gives_no_entry():
    # an entry without frame lines would hide every report of its kind: a comment says why none
    why = []
    for name, kind in (("heap-overflow", "heap-buffer-overflow"), ("leak", "definitely-lost")):
        _, _, err, doc = hg_json([example(name)], "--stack-depth=0", "--gen-suppressions")
        want = "# no suppression entry: no stack was recorded (as with --stack-depth=0), and an entry " \
               "without frame lines would hide every %s report" % kind
        notes = [l for l in err.splitlines() if l.startswith("# ")]
        if generated_entries(err) or notes != [want] * len(doc.get("errors", []) + doc.get("leaks", [])) or not notes:
            why.append("%s: entries %r, comments %r" % (name, generated_entries(err), notes))
    return why


@test
def suppression_hides_only_what_it_matches():
    supp = suppressions_file("{\n  strcpy in duplicate\n  heapguard:heap-buffer-overflow\n"
                             "  fun:dup*\n  fun:main\n}\n")
    _, _, _, doc = hg_json([example("heap-overflow")], "--suppressions", supp)
    _, _, _, full = hg_json([example("heap-overflow")])
    left = [nth(e["stack"], 0).get("function") for e in doc.get("errors", [])]
    want = [nth(e["stack"], 0).get("function") for e in full.get("errors", []) if nth(e["stack"], 0).get("function") != "duplicate"]
    why = [] if left == want and len(left) < len(full.get("errors", [])) else ["left %r, expected %r" % (left, want)]
    # The same frames under another kind, or a frame that is not there, hide nothing.
    other = suppressions_file("{\n  x\n  heapguard:double-free\n  fun:duplicate\n}\n"
                              "{\n  y\n  heapguard:heap-*\n  ...\n  fun:no_such_function\n}\n")
    _, _, _, doc = hg_json([example("heap-overflow")], "--suppressions=" + other)
    if len(doc.get("errors", [])) != len(full.get("errors", [])):
        why.append("non-matching entries hid errors: %r" % doc.get("errors"))
    # "..." and '?' reach down the stack: this one matches every error of the example.
    every = suppressions_file("{\n  z\n  heapguard:heap-buffer-overfl?w\n  ...\n  fun:main\n}\n")
    _, _, _, doc = hg_json([example("heap-overflow")], "--suppressions=" + other, "--suppressions=" + every)
    return why + ([] if doc.get("errors") == [] else ["'...' entry left %r" % doc.get("errors")])


@test
def many_ellipses_on_a_deep_stack():
    # 30 "..." over 48 frames: trying every split at each would never end
    exe = compiled("deep", "#include <stdlib.h>\nvoid *volatile sink;\n"
                   "__attribute__((noinline)) int down(int n) { if (n) return down(n - 1) + 1;"
                   " sink = malloc(7); sink = 0; return 0; }\nint main(void) { return down(44); }\n")
    why = []
    for last, left in (("no_such_function", [7]), ("main", [])):
        supp = suppressions_file("{\n  x\n  heapguard:*\n" + "  ...\n  fun:down\n" * 30 + "  ...\n  fun:%s\n}\n" % last)
        try:
            _, _, _, doc = hg_json([exe], "--num-callers=48", "--suppressions=" + supp)
        except subprocess.TimeoutExpired:
            why.append("fun:%s: still matching after 60 s" % last)
            continue
        got = [l.get("bytes") for l in doc.get("leaks", [])]
        why += [] if got == left else ["fun:%s: leaks %r, expected %r" % (last, got, left)]
    return why


@test
def leak_suppression():
    supp = suppressions_file("{\n  lines\n  heapguard:definitely-lost\n  fun:main\n}\n")
    rc, _, err, doc = hg_json([example("leak")], "--suppressions=" + supp, "--error-exitcode=9")
    why = fields("document", doc, {"leaks": []})
    r = hgreport.parse(err)
    if r["leaks"] or r["leak_summary"].get("definitely lost", (0, 0))[0] != 0:
        why.append("text after suppression: %r %r" % (r["leaks"], r["leak_summary"]))
    return why + ([] if rc == 0 else ["status %d: a suppressed leak counted" % rc])


@test
def valgrind_suppressions_work_as_they_are():
    supp = suppressions_file(
        "# valgrind's format, as --gen-suppressions=all writes it\n"
        "{\n   <insert_a_suppression_name_here>\n   Helgrind:Race\n   fun:duplicate\n}\n"
        "{\n   leak\n   Memcheck:Leak\n   match-leak-kinds: definite\n   fun:malloc\n   fun:main\n}\n"
        "{\n   overflow\n   Memcheck:Addr1\n   fun:strcpy\n   fun:duplicate\n   fun:main\n}\n")
    _, _, err, doc = hg_json([example("leak")], "--suppressions=" + supp)
    why = fields("leak run", doc, {"leaks": []})
    if "suppressed: 1000 bytes in 10 blocks" not in err:
        why.append("leak summary: %r" % [l for l in err.splitlines() if "LEAK SUMMARY" in l])
    _, _, _, doc = hg_json([example("heap-overflow")], "--suppressions=" + supp)
    _, _, _, full = hg_json([example("heap-overflow")])
    left = [nth(e["stack"], 0).get("function") for e in doc.get("errors", [])]
    want = [nth(e["stack"], 0).get("function") for e in full.get("errors", [])
            if nth(e["stack"], 0).get("function") != "duplicate"]
    if left != want or len(left) == len(full.get("errors", [])):
        why.append("heap-overflow: left %r, expected %r" % (left, want))
    # valgrind finds fprintf's overread in its strlen, heapguard at the call: the entry
    # valgrind 3.19 wrote for it matches from the line after the libc functions
    deep = suppressions_file("{\n   <insert_a_suppression_name_here>\n   Memcheck:Addr1\n   fun:strlen\n"
                             "   fun:__vfprintf_internal\n   fun:buffered_vfprintf\n   fun:fprintf\n"
                             "   fun:main\n}\n")
    _, _, _, doc = hg_json([example("heap-overflow")], "--suppressions=" + supp, "--suppressions=" + deep)
    if doc.get("errors"):
        why.append("valgrind's fprintf entry left %r" % doc.get("errors"))
    # kinds heapguard has no report for load, and hide nothing
    inert = suppressions_file("{\n a\n Memcheck:ReallocZero\n fun:main\n}\n{\n b\n Memcheck:ClientCheck\n}\n")
    _, _, _, doc = hg_json([example("double-free")], "--suppressions=" + inert)
    if len(doc.get("errors", [])) != 1:
        why.append("ReallocZero and ClientCheck entries: errors %r" % doc.get("errors"))
    # match-leak-kinds narrows an entry: the definite leak stays
    narrow = suppressions_file("{\n x\n Memcheck:Leak\n match-leak-kinds: possible,reachable\n"
                               " fun:malloc\n fun:main\n}\n")
    _, _, _, doc = hg_json([example("leak")], "--suppressions=" + narrow)
    if not any(l.get("kind") == "definitely-lost" for l in doc.get("leaks", [])):
        why.append("match-leak-kinds: possible,reachable hid a definite leak: %r" % doc.get("leaks"))
    return why


@test
def src_lines_match_the_file_as_valgrind_prints_it():
    # valgrind compares src: with the file's base name, and without ":LINE" with any line
    line = source_line(example_src("leak"), "BUG: the previous line")
    why = []
    for frames, hidden in (("src:leak.c:%d" % line, True), ("src:leak.c", True), ("src:le*.c", True),
                           ("src:*/examples/leak.c:%d" % line, True), ("src:" + example_src("leak"), True),
                           ("src:leak.c:%d" % (line + 1), False), ("src:examples/leak.c:%d" % line, False),
                           ("src:other.c", False)):
        for head in ("heapguard:definitely-lost", "Memcheck:Leak\n  fun:malloc"):
            supp = suppressions_file("{\n  x\n  %s\n  %s\n}\n" % (head, frames))
            _, _, _, doc = hg_json([example("leak")], "--suppressions=" + supp)
            if (doc.get("leaks") == []) != hidden:
                why.append("%s / %s: leaks of %r bytes" % (head.replace("\n  ", " / "), frames,
                                                            [l.get("bytes") for l in doc.get("leaks", [])]))
    return why


@test
def valgrind_entries_match_its_first_frame_as_valgrind_does():
    # Each entry hides what valgrind 3.19 hides with it, and nothing else. Valgrind's stack of
    # a leak, or of an error in a function its preload object replaces, starts with that
    # function: a first line matching it (obj:*, fun:*) stands for it, and a first line is
    # never the program's frame. An error in fprintf is deeper in libc there, and a fault in
    # main has no such frame.
    line = source_line(example_src("leak"), "BUG: the previous line")
    cases = [("leak", "Memcheck:Leak", frames, hides) for frames, hides in (
        ("obj:*|fun:main", 1), ("fun:*|fun:main", 1), ("fun:*alloc|fun:main", 1),
        ("obj:*vgpreload*|fun:main", 1), ("obj:*|src:leak.c:%d" % line, 1), ("...|fun:main", 1),
        ("fun:malloc|fun:main", 1), ("fun:main", 0), ("obj:*|fun:nope", 0), ("obj:*libc*|fun:main", 0),
        ("obj:*|obj:*|fun:main", 0), ("fun:malloc|obj:*|fun:main", 0))]
    cases += [("heap-overflow", "Memcheck:Addr1", "obj:*|fun:duplicate", 1),
              ("heap-overflow", "Memcheck:Addr1", "fun:*|fun:main", 0),
              ("heap-overflow", "Memcheck:Addr1", "fun:duplicate", 0),
              ("double-free", "Memcheck:Free", "obj:*|fun:main", 1),
              ("double-free", "Memcheck:Free", "fun:main", 0),
              ("overlapping-copy", "Memcheck:Overlap", "fun:*|fun:trim_left", 1),
              ("unallocated-strcpy", "Memcheck:Addr8", "obj:*|fun:main", 0),
              ("unallocated-strcpy", "Memcheck:Addr8", "fun:main", 1)]
    items = lambda d: len(d.get("errors", [])) + len(d.get("leaks", []))
    shown = {name: items(hg_json([example(name)])[3]) for name in {c[0] for c in cases}}
    why = []
    for name, kind, frames, hides in cases:
        supp = suppressions_file("{\n  x\n  %s\n  %s\n}\n" % (kind, frames.replace("|", "\n  ")))
        _, _, _, doc = hg_json([example(name)], "--suppressions=" + supp)
        if shown[name] - items(doc) != hides:
            why.append("%s, %s / %s: hid %d of %d, expected %d" % (name, kind, frames, shown[name] - items(doc),
                                                                 shown[name], hides))
    return why


@test
def valgrind_entries_skip_only_the_reports_call():
    # Valgrind's stack starts with the call the report was made in (malloc, strdup's malloc and
    # strdup, strcpy); heapguard's at its caller. An entry's leading lines are skipped only up
    # to the one naming that call: a skipped strdup line hid every leak, a strcpy line a
    # memcpy overflow in the same function, and an ncurses.supp entry (its _nc_printf_string
    # matched "*printf*") every leak of the program.
    leaks = compiled("alloc_calls", "#include <stdlib.h>\n#include <string.h>\nchar *volatile g;\n"
                     "__attribute__((noinline)) void lose_buffer(void) { g = malloc(64); g = 0; }\n"
                     "__attribute__((noinline)) void lose_copy(void) { g = strdup(\"hello\"); g = 0; }\n"
                     "__attribute__((noinline)) void lose_zeroed(void) { g = calloc(3, 8); g = 0; }\n"
                     "int main(void) { lose_buffer(); lose_copy(); lose_zeroed(); return 0; }\n")
    calls = compiled("two_overflows", "#include <stdlib.h>\n#include <string.h>\n"
                     "__attribute__((noinline)) void work(const char *s) {\n"
                     "  char *p = malloc(4); strcpy(p, s);\n  volatile size_t n = 12; char *q = malloc(8); memcpy(q, s, n);\n"
                     "  free(p); free(q);\n}\nint main(void) { work(\"0123456789a\"); return 0; }\n")
    cases = [(leaks, "Memcheck:Leak", "fun:malloc|fun:strdup|...", [64, 24]),
             (leaks, "Memcheck:Leak", "fun:malloc|fun:_nc_doalloc|fun:_nc_printf_string", [64, 24, 6]),
             (leaks, "Memcheck:Leak", "fun:calloc|fun:lose_zeroed", [64, 6]),
             (leaks, "Memcheck:Leak", "fun:calloc|fun:lose_buffer", [64, 24, 6]),
             (leaks, "Memcheck:Leak", "obj:*|fun:lose_buffer", [24, 6]),
             (calls, "Memcheck:Addr1", "fun:strcpy|fun:work|fun:main", [8]),
             (calls, "Memcheck:Addr1", "fun:memcpy@@GLIBC_2.14|fun:work", [4]),
             (calls, "Memcheck:Addr1", "fun:__memcpy_chk|fun:work", [4])]
    why = []
    for exe, kind, frames, left in cases:
        supp = suppressions_file("{\n  x\n  %s\n  %s\n}\n" % (kind, frames.replace("|", "\n  ")))
        _, _, err, doc = hg_json([exe], "--suppressions=" + supp)
        got = [l.get("bytes") for l in doc.get("leaks", []) if l.get("kind") == "definitely-lost"] \
            if exe == leaks else [e.get("block", {}).get("size") for e in doc.get("errors", [])]
        if got != left:
            why.append("%s / %s: left %r, expected %r %s" % (kind, frames, got, left, err[-300:]))
    # heapguard's own entries name the call: the strcpy one leaves the memcpy overflow (block
    # sizes 4 and 8)
    _, _, err, _ = hg_json([calls], "--gen-suppressions")
    mine = [e for e in generated_entries(err) if "\n   call:strcpy\n" in e]
    _, _, _, doc = hg_json([calls], "--suppressions=" + suppressions_file("\n".join(mine) + "\n"))
    if len(mine) != 1 or [e.get("block", {}).get("size") for e in doc.get("errors", [])] != [8]:
        why.append("generated strcpy entry %r left %r" % (mine, doc.get("errors")))
    return why


@test
def leaks_count_in_the_error_summary_as_in_valgrind():
    # valgrind's ERROR SUMMARY counts each leak listed of --errors-for-leak-kinds' kinds in a
    # full check; a CI step that greps "ERROR SUMMARY: 0 errors" passed a leaking program
    exe = compiled("three_leaks", "#include <stdlib.h>\nchar *volatile g;\n"
                   "__attribute__((noinline)) void a(void) { g = malloc(10); g = 0; }\n"
                   "__attribute__((noinline)) void b(void) { g = malloc(20); g = 0; }\n"
                   "int main(void) { a(); b(); b(); g = malloc(30); return 0; }\n")
    supp = suppressions_file("{\n  b's\n  Memcheck:Leak\n  fun:malloc\n  fun:b\n}\n")
    # b's two calls are two stacks; main's block is still reachable
    cases = [((), "3 errors from 3 contexts (suppressed: 0 from 0)", {"errors": 3, "contexts": 3}),
             (("--errors-for-leak-kinds=all",), "4 errors from 4 contexts (suppressed: 0 from 0)", None),
             (("--errors-for-leak-kinds=none",), "0 errors from 0 contexts (suppressed: 0 from 0)", None),
             (("--leak-check=summary",), "0 errors from 0 contexts (suppressed: 0 from 0)", None),
             (("--suppressions=" + supp,), "1 errors from 1 contexts (suppressed: 2 from 2)", None)]
    why = []
    for options, line, summary in cases:
        _, _, err, doc = hg_json([exe], "--show-reachable", *options)
        if not re.search(r"^==\d+== ERROR SUMMARY: %s$" % re.escape(line), err, re.M):
            why.append("%s: no %r in %r" % (" ".join(options), line, err[-200:]))
        got = {k: doc.get("summary", {}).get(k) for k in ("errors", "contexts")}
        if summary and got != summary:
            why.append("%s: JSON summary %r" % (" ".join(options), got))
    return why


@test
def show_error_list_names_the_suppressions_used():
    # valgrind's -s, which its own output suggests: a used_suppression line per entry that hid
    # something, with its count and FILE:LINE, and the XML's suppcounts
    import xml.etree.ElementTree as ET
    supp = suppressions_file("# two entries\n{\n  unused\n  heapguard:double-free\n}\n"
                             "{\n  the overflow\n  heapguard:heap-buffer-overflow\n}\n")
    xml_path = os.path.join(WORK, "used.xml")
    rc, _, err = run([HG, "-s", "--suppressions=" + supp, "--xml=yes", "--xml-file=" + xml_path, "--",
                      example("heap-overflow")])
    lines = re.findall(r"^==\d+== used_suppression: +(\d+) (.*)$", err, re.M)
    why = [] if lines == [("2", "the overflow %s:6" % supp)] else ["used lines %r: %s" % (lines, err[-400:])]
    pairs = [(p.findtext("count"), p.findtext("name")) for p in ET.parse(xml_path).getroot().iter("pair")]
    why += [] if pairs == [("2", "the overflow")] else ["suppcounts %r" % pairs]
    rc, _, err = run([HG, "--show-error-list=no", "--suppressions=" + supp, "--", example("heap-overflow")])
    return why + ([] if rc == 0 and "used_suppression" not in err else ["--show-error-list=no: %d %r" % (rc, err[-300:])])


@test
def a_bad_realloc_is_a_realloc_access():
    # the JSON's access names the call, as the README's list of values has it
    exe = compiled("bad_realloc", "#include <stdlib.h>\nint main(void) { char *volatile p = malloc(16);\n"
                   "  volatile int k = 4; void *volatile q = realloc(p + k, 100); free(p); free(p); return q != 0; }\n")
    _, _, err, doc = hg_json([exe])
    got = [(e.get("kind"), e.get("access")) for e in doc.get("errors", [])]
    return [] if got == [("invalid-free", "realloc"), ("double-free", "free")] else ["errors %r" % got]


@test
def valgrind_entries_match_the_names_valgrind_gives():
    # valgrind names a libc function by its exported symbol (getdelim, asprintf), where libc6-dbg's
    # debug information says __GI___getdelim and ___asprintf, and an inlined C++ call by its
    # DW_AT_name (leakv), where heapguard shows leakv(): their entries hid nothing
    c = compiled("libc_leaks", "#define _GNU_SOURCE\n#include <stdio.h>\n#include <stdlib.h>\n"
                 "__attribute__((noinline)) void gl(void) { char *l = 0; size_t n = 0;\n"
                 "  FILE *f = fopen(\"/etc/passwd\", \"r\"); getline(&l, &n, f); fclose(f); l = 0; }\n"
                 "__attribute__((noinline)) void as(void) { char *s; asprintf(&s, \"%d\", 42); s = 0; }\n"
                 "int main(void) { gl(); as(); return 0; }\n")
    cxx = compiled("inlined_leak", "#include <vector>\n"
                   "std::vector<int> *leakv() { auto *v = new std::vector<int>; v->resize(100); return v; }\n"
                   "__attribute__((noinline)) void lose() { std::vector<int> *v = leakv(); v = nullptr; }\n"
                   "int main() { lose(); return 0; }\n", "g++", "-O2")
    cases = [(c, "fun:malloc|fun:getdelim|fun:gl|fun:main", 1), (c, "fun:malloc|fun:getline|fun:gl", 0),
             (c, "fun:malloc|fun:__vasprintf_internal|fun:asprintf|fun:as|fun:main", 1),
             (cxx, "fun:_Znwm|fun:leakv|fun:_Z4losev|fun:main", 1), (cxx, "fun:_Znwm|fun:lose", 0)]
    why = []
    for exe, frames, hides in cases:
        supp = suppressions_file("{\n  x\n  Memcheck:Leak\n  match-leak-kinds: definite\n  %s\n}\n"
                                 % frames.replace("|", "\n  "))
        _, _, err, doc = hg_json([exe], "--suppressions=" + supp)
        m = re.search(r"ERROR SUMMARY: .*\(suppressed: (\d+) from", err)
        used = int(m.group(1)) if m else -1
        if used != hides:
            why.append("%s: hid %d, expected %d: %s" % (frames, used, hides, err[-300:]))
    return why


@test
def valgrind_entries_with_an_argument_line_load():
    # FishyValue entries name the argument on a line of their own, as Param entries do;
    # match-leak-kinds: none is valgrind's too
    exe = compiled("fishy", "#include <stdlib.h>\nint main(void) { volatile long n = -1; "
                   "return malloc((size_t)n) != 0; }\n")
    supp = suppressions_file("{\n  <insert_a_suppression_name_here>\n  Memcheck:FishyValue\n  malloc(size)\n"
                             "  fun:malloc\n  fun:main\n}\n{\n  n\n  Memcheck:Leak\n  match-leak-kinds: none\n"
                             "  ...\n}\n")
    rc, _, err, doc = hg_json([exe], "--suppressions=" + supp)
    if rc == 2 or doc.get("errors"):
        return ["status %d, errors %r: %s" % (rc, doc.get("errors"), err[-300:])]
    return []


@test
def gen_suppressions_name_only_their_function():
    # keep(int*) as a pattern would match keep(int, long) too: '*' is a wildcard there
    exe = compiled("overloads", "char *volatile sink;\n"
                   "__attribute__((noinline)) void keep(int *) { sink = new char[10]; sink = 0; }\n"
                   "__attribute__((noinline)) void keep(int, long) { sink = new char[20]; sink = 0; }\n"
                   "int main() { keep((int *)0); keep(1, 2L); return 0; }\n", "g++")
    _, _, err, before = hg_json([exe], "--gen-suppressions")
    mine = [e for e in generated_entries(err) if " in keep(int*)\n" in e]
    if len(mine) != 1 or len(before.get("leaks", [])) != 2:
        return ["entries %r for leaks %r" % (generated_entries(err), before.get("leaks"))]
    _, _, err, after = hg_json([exe], "--suppressions=" + suppressions_file(mine[0] + "\n"))
    left = [l.get("bytes") for l in after.get("leaks", [])]
    return [] if left == [20] else ["leaks left %r (expected keep(int, long)'s 20 bytes)" % left]


@test
def valgrind_suppressions_match_mangled_names():
    exe = compiled("mangled", "namespace app {\n__attribute__((noinline)) void leak() { int *p = new int[10]; p[0] = 1; }\n}\n"
                   "int main() { app::leak(); return 0; }\n", "g++")
    why = []
    for frame in ("_ZN3app4leakEv", "_ZN3app*", "app::leak()"):
        supp = suppressions_file("{\n  x\n  Memcheck:Leak\n  fun:_Znam\n  fun:%s\n  fun:main\n}\n" % frame)
        _, _, err, doc = hg_json([exe], "--suppressions=" + supp)
        if doc.get("leaks") or "suppressed: 40 bytes in 1 blocks" not in err:
            why.append("fun:%s: leaks %r" % (frame, doc.get("leaks")))
    return why


@test
def functions_templated_on_lambdas_keep_their_class():
    # GCC gives them no linkage name in DWARF: DW_AT_name alone lost the class (make<...>,
    # build<main()::<lambda()> >) and valgrind's suppressions, which name them mangled, missed.
    exe = compiled("lambda_names", "struct Box { template <class F> static __attribute__((noinline)) int *build(F f)"
                   " { return new int(f()); } };\n"
                   "int *volatile sink;\n"
                   "int main() { sink = Box::build([] { return 7; }); sink = 0; return 0; }\n", "g++")
    _, _, err, doc = hg_json([exe])
    leaks = doc.get("leaks", [])
    top = nth(leaks[0].get("stack") if leaks else None, 0) or {}
    why = [] if top.get("function") == "int* Box::build<main::{lambda()#1}>(main::{lambda()#1})" else \
        ["frame #0 %r" % top]
    supp = suppressions_file("{\n  x\n  Memcheck:Leak\n  fun:_Znwm\n  fun:_ZN3Box5buildIZ4mainEUlvE_EEPiT_\n}\n")
    _, _, err, doc = hg_json([exe], "--suppressions=" + supp)
    return why + ([] if not doc.get("leaks") and "suppressed: 4 bytes in 1 blocks" in err else
                  ["valgrind's entry: leaks %r" % doc.get("leaks")])


@test
def valgrind_xml():
    import xml.etree.ElementTree as ET
    path = os.path.join(WORK, "report.xml")

    def doc(program):
        rc, _, err = run([HG, "--xml=yes", "--xml-file=" + path, *program])
        return rc, ET.parse(path).getroot()
    why = []
    _, root = doc([example("heap-overflow")])
    if root.tag != "valgrindoutput" or root.findtext("protocolversion") != "4" or root.findtext("tool") != "memcheck":
        why.append("header: %s %r %r" % (root.tag, root.findtext("protocolversion"), root.findtext("tool")))
    errors = root.findall("error")
    e = errors[0] if errors else None
    if e is None or e.findtext("kind") != "InvalidWrite" or not e.findtext("what", "").startswith("Invalid write of size 10"):
        why.append("first error: %r" % (e is not None and ET.tostring(e)[:300]))
    else:
        top = e.find("stack/frame")
        if (top.findtext("fn"), top.findtext("file"), top.findtext("line")) != ("duplicate", "heap-overflow.c", "14"):
            why.append("top frame %r" % ET.tostring(top))
        if e.findtext("auxwhat", "").find("is 0 bytes after a block of size 9 alloc'd") < 0:
            why.append("auxwhat %r" % e.findtext("auxwhat"))
        if len(e.findall("stack")) != 2:
            why.append("an overflow has its access and allocation stacks: %d" % len(e.findall("stack")))
    counts = [(p.findtext("count"), p.findtext("unique")) for p in root.findall("errorcounts/pair")]
    if counts != [("1", "0x0"), ("1", "0x1")]:
        why.append("errorcounts %r" % counts)
    # the protocol's status has the time since the start, DD:HH:MM:SS.mmm
    status = [(st.findtext("state"), st.findtext("time")) for st in root.findall("status")]
    if [st for st, _ in status] != ["RUNNING", "FINISHED"] or \
            not all(re.match(r"^\d\d:\d\d:\d\d:\d\d\.\d\d\d $", t or "") for _, t in status):
        why.append("status %r" % status)
    _, root = doc([example("double-free")])
    e = root.find("error")
    if e is None or e.findtext("kind") != "InvalidFree" or len(e.findall("stack")) != 3 or \
            "free'd" not in e.findtext("auxwhat", ""):
        why.append("double free: %r" % (e is not None and ET.tostring(e)[:400]))
    # a fault: valgrind's kind, and no size where the access has none known
    _, root = doc([example("unallocated-strcpy")])
    e = root.find("error")
    if e is None or e.findtext("kind") != "InvalidWrite" or \
            not e.findtext("what", "").startswith("Invalid write (invalid-access): address 0x0"):
        why.append("fault: %r" % (e is not None and ET.tostring(e)[:300]))
    _, root = doc([example("leak")])
    leaks = [(x.findtext("kind"), x.findtext("xwhat/leakedbytes"), x.findtext("xwhat/leakedblocks"),
              x.findtext("stack/frame/fn")) for x in root.findall("error")]
    if leaks != [("Leak_DefinitelyLost", "1000", "10", "main")]:
        why.append("leaks %r" % leaks)
    # arguments of any bytes: the document stays well-formed, valid UTF-8 and newlines kept
    # (an overlong form, a surrogate, past U+10FFFF: each byte is replaced; U+FFFF as a whole)
    odd = [b"bad\xff\xfeutf", b"new\nline", "\u00e9".encode(), b"\xe0\x80\xaf", b"\xed\xa0\x80",
           b"\xf4\x90\x80\x80", b"\xef\xbf\xbf", "\U0010ffff".encode()]
    subprocess.run([HG, "-q", "--xml-file=" + path, HELPER, "exit", "0", *odd], capture_output=True)
    try:
        args = [a.text for a in ET.parse(path).getroot().iter("arg")][-len(odd):]
    except ET.ParseError as ex:
        args = ["not well-formed: %s" % ex]
    if args != ["bad\ufffd\ufffdutf", "new\nline", "\u00e9", "\ufffd" * 3, "\ufffd" * 3, "\ufffd" * 4,
                "\ufffd", "\U0010ffff"]:
        why.append("odd arguments: %r" % args)
    return why


@test
def bad_suppressions_file_is_usage_error():
    supp = suppressions_file("{\n  name\n  Memcheck:Leek\n}\n")
    rc, _, err = run([HG, "--suppressions=" + supp, example("clean")])
    why = [] if rc == 2 and "%s:3:" % supp in err else ["status %d, stderr %r" % (rc, err)]
    rc, _, err = run([HG, "--suppressions=" + os.path.join(WORK, "none"), example("clean")])
    why += [] if rc == 2 and "cannot read suppressions" in err else ["missing file: %d %r" % (rc, err)]
    rc, _, err = run([HG, "--suppressions=" + WORK, example("clean")])
    why += [] if rc == 2 and "Is a directory" in err else ["a directory: %d %r" % (rc, err)]
    # a heapguard kind that names nothing (a typo) is an error, with its line
    supp = suppressions_file("{\n  name\n  heapguard:heap-overflow\n  ...\n}\n")
    rc, _, err = run([HG, "--suppressions=" + supp, example("clean")])
    why += [] if rc == 2 and "%s:3: 'heapguard:' names no kind" % supp in err else ["typo kind: %d %r" % (rc, err)]
    # sizes valgrind has not, and a Param entry without its argument line (its first frame
    # line was taken for it, and the entry matched more than it says), as valgrind rejects them
    for body, line in (("Memcheck:Addr3\n  fun:main", 3), ("Memcheck:Param\n  fun:write\n  fun:main", 4)):
        supp = suppressions_file("{\n  name\n  %s\n}\n" % body)
        rc, _, err = run([HG, "--suppressions=" + supp, example("clean")])
        why += [] if rc == 2 and "%s:%d:" % (supp, line) in err else ["%r: %d %r" % (body, rc, err)]
    # a tool line with an empty tool name is a mistake, not another tool's entry
    for line in (":Leak", "Memcheck,:Leak"):
        supp = suppressions_file("{\n  name\n  %s\n  fun:main\n}\n" % line)
        rc, _, err = run([HG, "--suppressions=" + supp, example("clean")])
        why += [] if rc == 2 and "%s:3: an empty tool name" % supp in err else ["%s: %d %r" % (line, rc, err)]
    # a frame line longer than any buffer is one line: the error is on the next line, line 6
    supp = suppressions_file("{\n  name\n  heapguard:*\n  fun:%s\n  fun:main\n  bogus\n}\n" % ("x" * 9000))
    rc, _, err = run([HG, "--suppressions=" + supp, example("clean")])
    return why + ([] if rc == 2 and "%s:6: expected 'fun:'" % supp in err else ["long line: %d %r" % (rc, err)])


@test
def report_files_checked():
    why = []
    same = os.path.join(WORK, "same.json")
    rc, _, err = run([HG, "--json=" + same, "--sarif=" + same, example("clean")])
    why += [] if rc == 2 and "--json and --sarif name the same file" in err else ["same file: %d %r" % (rc, err)]
    # ... however the two names spell it: another path to it, or a link to it
    other = os.path.join(WORK, ".", "same.json")
    rc, _, err = run([HG, "--log-file=" + same, "--json=" + other, example("clean")])
    why += [] if rc == 2 and "--log-file and --json name the same file" in err else ["./: %d %r" % (rc, err)]
    with open(same, "w"):
        pass
    link = os.path.join(WORK, "same-link.json")
    if not os.path.lexists(link):
        os.symlink(same, link)
    rc, _, err = run([HG, "--log-file=" + link, "--xml-file=" + same, example("clean")])
    why += [] if rc == 2 and "--log-file and --xml-file name the same file" in err else ["link: %d %r" % (rc, err)]
    # ... a link to a file not there yet, relative or absolute, through a chain of links
    links = os.path.join(WORK, "links")
    os.makedirs(links, exist_ok=True)
    target = os.path.join(links, "target.z")
    for name, to in (("dangling.z", "target.z"), ("up.z", "../links/target.z"), ("absolute.z", target),
                     ("chain.z", "dangling.z")):
        if not os.path.lexists(os.path.join(links, name)):
            os.symlink(to, os.path.join(links, name))
        rc, _, err = run([HG, "--json=" + os.path.join(links, name), "--sarif=" + target, example("clean")])
        why += [] if rc == 2 and "--json and --sarif name the same file" in err else ["%s: %d %r" % (name, rc, err[-200:])]
        if os.path.lexists(target):
            why.append("%s: the run made the link's target" % name)
            os.unlink(target)
    rc, _, err = run([HG, "-q", "--log-file=/dev/full", example("leak")])
    why += [] if rc == 125 and "cannot write /dev/full" in err else ["log on /dev/full: %d %r" % (rc, err)]
    # a value never comes from the next option: --json -- PROGRAM is missing its file
    rc, _, err = run([HG, "--json", "--", example("clean")])
    why += [] if rc == 2 and "'--json' needs a value" in err else ["--json --: %d %r" % (rc, err)]
    for name in ("%q{}", "%q{HG_TEST_UNSET_VARIABLE}"):
        rc, _, err = run([HG, "--log-file=" + os.path.join(WORK, "log" + name), example("clean")])
        why += [] if rc == 2 and "names no environment variable" in err else ["%s: %d %r" % (name, rc, err)]
    return why


# ---------------------------------------------------------------- exit statuses

@test
def exit_status_is_the_programs():
    rc, _, _ = run([HG, HELPER, "exit", "3"])
    why = [] if rc == 3 else ["status %d, expected 3" % rc]
    rc, _, _ = run([HG, example("heap-overflow")])
    return why + ([] if rc == 0 else ["status %d for an error without --error-exitcode" % rc])


@test
def error_exitcode():
    why = []
    for program, want in (([example("heap-overflow")], 42), ([example("clean")], 0),
                          ([example("leak")], 42), ([HELPER, "exit", "3"], 3)):
        rc, _, _ = run([HG, "--error-exitcode=42", *program])
        if rc != want:
            why.append("%s: status %d, expected %d" % (program[0], rc, want))
    # 0 is valgrind's default: the program's own status, errors or not (it was 0 whatever
    # the program returned), and on the command line it overrides HEAPGUARD_OPTIONS's
    exe = compiled("double-free-then-4", "#include <stdlib.h>\n"
                   "int main(void) { char *p = malloc(8); free(p); free(p); return 4; }\n")
    for env in ({}, {"HEAPGUARD_OPTIONS": "error_exitcode=7"}):
        rc, _, err = run([HG, "--error-exitcode=0", exe], env=env)
        if rc != 4 or not re.search(r"^==\d+== ERROR: double-free: free\(\) of 0x[0-9a-f]+ \(thread 1\)$", err, re.M):
            why.append("--error-exitcode=0 %r: status %d, expected 4: %r" % (env, rc, err[-300:]))
    return why


@test
def errors_for_leak_kinds():
    why = []
    # a block only an interior pointer reaches: possibly lost, which counts by default as in
    # valgrind (definite,possible; it was definite,indirect, and a CI gate passed it)
    possible = compiled("possibly-lost", "#include <stdlib.h>\nstatic char *inside;\n"
                        "int main(void) { inside = (char *)malloc(300) + 100; return inside == NULL; }\n")
    for opts, program, want in (((), [example("leak")], 42),
                                ((), [possible], 42),
                                (("--errors-for-leak-kinds=definite,indirect",), [possible], 0),
                                (("--errors-for-leak-kinds=possible",), [example("leak")], 0),
                                (("--errors-for-leak-kinds=definite,possible",), [example("leak")], 42),
                                (("--errors-for-leak-kinds=none",), [example("leak")], 0),
                                (("--errors-for-leak-kinds=possible",), [HELPER, "kinds"], 42),
                                (("--errors-for-leak-kinds=reachable", "--show-leak-kinds=none"), [HELPER, "kinds"], 42),
                                # as in valgrind, leaks count only in a full leak check
                                (("--leak-check=summary",), [example("leak")], 0),
                                (("--leak-check=summary",), [example("heap-overflow")], 42)):
        rc, _, _ = run([HG, "--error-exitcode=42", *opts, *program])
        if rc != want:
            why.append("%s %s: status %d, expected %d" % (" ".join(opts), program[-1], rc, want))
    return why


def static_helper():
    """The helper, linked statically (LD_PRELOAD cannot reach it), built once."""
    static = os.path.join(WORK, "helper-static")
    if not os.path.exists(static):
        subprocess.run(["gcc", "-static", "-g", "-O0", "-o", static, HELPER_SRC], check=True)
    return static


@test
def static_program_said_unchecked():
    """LD_PRELOAD cannot reach a static program: its glibc malloc runs, and no summary of zero
    errors may stand for a check that never happened."""
    static = static_helper()
    rc, _, err, doc = hg_json([static, "exit", "3"])
    why = [] if rc == 3 else ["status %d, expected the program's 3" % rc]
    if not re.search(r"^==\d+== NOT CHECKED: \S*helper-static ran without libheapguard-check.so "
                     r"\(it is statically linked\)", err, re.M):
        why.append("no NOT CHECKED line naming the static link: %r" % err)
    if "ERROR SUMMARY" in err:
        why.append("an ERROR SUMMARY for a run that was not checked")
    why += fields("document", doc, {"checked": False})
    nc = doc.get("not_checked") or [{}]
    why += fields("not_checked[0]", nc[0], {"program": static, "reason": "it is statically linked"})
    why += [] if "executed_by" not in nc[0] else ["executed_by for the command's own child: %r" % nc[0]]
    sarif = os.path.join(WORK, "static.sarif")
    rc, _, err = run([HG, "--error-exitcode=42", "-q", "--sarif=" + sarif, static, "exit", "0"])
    why += [] if rc == 125 else ["--error-exitcode: status %d, expected 125 (nothing checked)" % rc]
    with open(sarif) as f:
        inv = json.load(f)["runs"][0]["invocations"][0]
    notes = [n.get("message", {}).get("text", "") for n in inv.get("toolExecutionNotifications", [])]
    if inv.get("executionSuccessful") is not False or not any("statically linked" in t for t in notes):
        why.append("SARIF invocation does not say the run went unchecked: %r" % inv)
    why += [] if "NOT CHECKED" in err else ["--quiet hid the NOT CHECKED line"]
    rc, _, err = run([HG, "--fast", static, "exit", "4"])
    if rc != 4 or "will run without libheapguard.so (it is statically linked)" not in err:
        why.append("--fast: status %d, no warning before the exec: %r" % (rc, err))
    # A checked program killed before it reported anything was checked all the same.
    rc, _, err, doc = hg_json([HELPER, "quietkill"])
    why += [] if "NOT CHECKED" not in err else ["a checked program killed early said unchecked: %r" % err]
    return why + fields("killed early", doc, {"checked": True})


@test
def exec_into_static_program_said_unchecked():
    """A wrapper that executes a static program (env, sh -c 'exec ...') was checked, the program
    was not: the report says so, not the wrapper's zero errors. A child that does it, or that
    posix_spawn or system() starts, gets its line before the summary; execs that fail leave
    the program checked."""
    static = static_helper()
    rc, _, err, doc = hg_json(["/usr/bin/env", static, "exit", "3"])
    why = [] if rc == 3 else ["env: status %d, expected the program's 3" % rc]
    if not re.search(r"^==\d+== NOT CHECKED: %s, executed by /usr/bin/env, ran without "
                     r"libheapguard-check.so \(it is statically linked\)" % re.escape(static), err, re.M):
        why.append("env: no NOT CHECKED line naming the program and env: %r" % err)
    why += ["env: an ERROR SUMMARY for a run that was not checked"] if "ERROR SUMMARY" in err else []
    why += fields("env", doc, {"checked": False})
    nc = doc.get("not_checked") or [{}]
    why += fields("env not_checked[0]", nc[0], {"program": static, "executed_by": "/usr/bin/env",
                                                 "reason": "it is statically linked"})
    rc, _, err = run([HG, "--error-exitcode=42", "-q", "/bin/sh", "-c", "exec %s exit 0" % static])
    why += [] if rc == 125 else ["sh -c exec: status %d, expected 125 (nothing checked)" % rc]
    why += [] if "NOT CHECKED: %s, executed by" % static in err else ["sh -c exec: no NOT CHECKED line: %r" % err]
    rc, _, err, doc = hg_json(["/bin/sh", "-c", "%s exit 0; exit 0" % static])
    if not re.search(r"^==\d+== NOT CHECKED: %s \(pid \d+\), executed by /\S+, ran without" % re.escape(static),
                     err, re.M):
        why.append("sh -c: no NOT CHECKED line for the child, naming the shell: %r" % err)
    why += [] if "ERROR SUMMARY" in err else ["sh -c: no ERROR SUMMARY for the checked shell"]
    why += fields("sh -c", doc, {"checked": True})
    nc = doc.get("not_checked") or [{}]
    why += [] if len(nc) == 1 and isinstance(nc[0].get("pid"), int) else ["sh -c: not_checked %r" % nc]
    why += fields("sh -c not_checked[0]", nc[0], {"program": static, "reason": "it is statically linked"})
    sarif = os.path.join(WORK, "child-static.sarif")
    rc, _, err = run([HG, "-q", "--sarif=" + sarif, "/bin/sh", "-c", "%s exit 0; exit 0" % static])
    if not re.search(r"^==\d+== NOT CHECKED: %s \(pid \d+\), executed by /\S+, ran without" % re.escape(static),
                     err, re.M) or "ERROR SUMMARY" in err:
        why.append("sh -c with --quiet: the child's NOT CHECKED line only, no summary: %r" % err)
    with open(sarif) as f:
        inv = json.load(f)["runs"][0]["invocations"][0]
    notes = inv.get("toolExecutionNotifications", [])
    if inv.get("executionSuccessful") is not True or [n.get("level") for n in notes] != ["warning"] \
            or static not in notes[0].get("message", {}).get("text", ""):
        why.append("sh -c: SARIF invocation does not warn of the child: %r" % inv)
    rc, _, err, doc = hg_json([HELPER, "spawn", static, "exit", "0"])
    if not re.search(r"^==\d+== NOT CHECKED: %s \(pid \d+\), executed by %s, ran without"
                     % (re.escape(static), re.escape(HELPER)), err, re.M):
        why.append("posix_spawn: no NOT CHECKED line for the child: %r" % err)
    why += fields("posix_spawn", doc, {"checked": True})
    rc, _, err, doc = hg_json([HELPER, "fexecve", static, "exit", "5"])
    why += [] if rc == 5 else ["fexecve: status %d, expected the program's 5" % rc]
    why += [] if "NOT CHECKED: %s, executed by %s," % (static, HELPER) in err else ["fexecve: %r" % err]
    rc, _, err, doc = hg_json([HELPER, "system", "%s exit 0" % static])
    if not re.search(r"^==\d+== NOT CHECKED: %s \(pid \d+\), executed by /\S+, ran without" % re.escape(static),
                     err, re.M):
        why.append("system(): no NOT CHECKED line for what the shell ran: %r" % err)
    rc, _, err, doc = hg_json([HELPER, "spawn", "/bin/true"])
    why += [] if "NOT CHECKED" not in err else ["posix_spawn of a checked program: %r" % err]
    rc, _, err, doc = hg_json([HELPER, "exec-fails"])
    why += [] if "NOT CHECKED" not in err else ["failed execs said unchecked: %r" % err]
    why += fields("exec-fails", doc, {"not_checked": []})
    e = one_error(doc, "heap-buffer-overflow") or {}
    why += frame_is("exec-fails stack[0]", nth(e.get("stack"), 0), "overflow", HELPER_SRC,
                    source_line(HELPER_SRC, "ERROR-OVERFLOW"))
    return why + fields("exec-fails", doc, {"checked": True})


@test
def fortify_wrapper_is_not_a_frame():
    """Built with -O2 -D_FORTIFY_SOURCE=2, printf is an inline wrapper in bits/stdio2.h that
    calls __printf_chk; the compiler marks it artificial. The first frame is the program's line
    that called printf, as a debugger shows it, not a line of a system header."""
    src = os.path.join(HERE, "check", "intercept_fortified.c")
    exe = os.path.join(WORK, "fortified")
    subprocess.run(["gcc", "-g", "-O2", "-D_FORTIFY_SOURCE=2", "-fno-optimize-sibling-calls", "-w",
                    "-o", exe, src], check=True)
    rc, _, err, doc = hg_json([exe, "printf"])
    e = one_error(doc, "uninitialized-read") or {}
    why = frame_is("stack[0]", nth(e.get("stack"), 0), "emit_printf", src, source_line(src, "FORTIFIED-PRINTF"))
    if "stdio2.h" in err:
        why.append("a frame in bits/stdio2.h: %r" % err)
    return why


LAMBDA_SRC = """#include <algorithm>
#include <cstdio>
#include <vector>
int main()
{
	std::vector<int> v{3, 1, 2};
	std::for_each(v.begin(), v.end(), [](int x) { int *p = new int[x]; delete p; }); // LAMBDA-MISMATCH
	puts("done");
}
"""


@test
def lambda_body_is_a_frame_and_start_has_no_line():
    """At -O2 g++ inlines a lambda's operator() into std::for_each and marks it artificial, as
    it marks glibc's fortify wrappers: the lambda is the first frame all the same, at its line.
    _start, right after main in this program, had the last line of the unit before it."""
    src = os.path.join(WORK, "lambda.cc")
    with open(src, "w") as f:
        f.write(LAMBDA_SRC)
    exe = os.path.join(WORK, "lambda")
    subprocess.run(["g++", "-g", "-O2", "-o", exe, src], check=True)
    rc, out, err, doc = hg_json([exe])
    e = one_error(doc, "alloc-dealloc-mismatch") or {}
    stack = e.get("stack") or []
    why = frame_is("stack[0]", nth(stack, 0), "operator()", src, source_line(src, "LAMBDA-MISMATCH"))
    start = [f for f in stack if f.get("function") == "_start"]
    if not start or start[0].get("file") is not None:
        why.append("_start frame %r, expected one without a source line" % start)
    return why


INLINED_SRC = """#include <stdlib.h>
void *volatile sink;
static inline __attribute__((always_inline)) void grab(int n)
{
	sink = malloc(n); /* INLINED-MALLOC */
}
__attribute__((noinline)) void outer(int n)
{
	grab(n); /* CALLS-GRAB */
	sink = 0;
}
int main(void)
{
	outer(24); /* CALLS-OUTER */
	return 0;
}
"""


def inlined_leak_why(name, build, strip=()):
    """Builds INLINED_SRC as WORK/name with the command build (compiler and flags), less the
    sections strip; reasons why its leak's stack under heapguard is not grab (inlined into
    outer), outer, main, each at its line."""
    src = os.path.join(WORK, name + ".c")
    with open(src, "w") as f:
        f.write(INLINED_SRC)
    exe = os.path.join(WORK, name)
    subprocess.run(build + ["-o", exe, src], check=True)
    for section in strip:
        subprocess.run(["objcopy", "--remove-section", section, exe], check=True)
    _, _, _, doc = hg_json([exe])
    stack = next((l.get("stack", []) for l in doc.get("leaks", []) if l.get("kind") == "definitely-lost"), [])
    why = []
    for i, (function, marker) in enumerate((("grab", "INLINED-MALLOC"), ("outer", "CALLS-GRAB"),
                                            ("main", "CALLS-OUTER"))):
        why += frame_is("%s stack[%d]" % (name, i), nth(stack, i), function, src, source_line(src, marker))
    return why


@test
def clang_binary_has_lines_and_inlined_frames():
    """clang writes no .debug_aranges, from which libdw 0.188 finds a unit: its frames had a
    function name from the symbol table only, no file, no line, no inlined frame."""
    if shutil.which("clang") is None:
        return "SKIP clang is not installed"
    return (inlined_leak_why("clang_dwarf4", ["clang", "-g", "-O2", "-gdwarf-4"]) +
            inlined_leak_why("clang_dwarf5", ["clang", "-g", "-O2", "-gdwarf-5"]))


@test
def unit_missing_from_aranges_has_lines_and_inlined_frames():
    """The same program built by gcc, its .debug_aranges removed: clang's case without clang."""
    return inlined_leak_why("no_aranges", ["gcc", "-g", "-O2"], strip=[".debug_aranges"])


@test
def killed_by_sigkill_still_reported():
    src = HELPER_SRC
    rc, _, err, doc = hg_json([HELPER, "kill"])
    e = one_error(doc, "heap-buffer-overflow") or {}
    why = frame_is("stack[0]", nth(e.get("stack"), 0), "overflow", src, source_line(src, "ERROR-OVERFLOW"))
    why += fields("exit", doc.get("exit", {}), {"signal": 9})
    if not hgreport.parse(err)["errors"]:
        why.append("no text report")
    return why + ([] if rc == -signal.SIGKILL else ["status %d, expected death by SIGKILL" % rc])


@test
def crash_by_sigsegv_still_reported():
    src = HELPER_SRC
    rc, _, err, doc = hg_json([HELPER, "segv"])
    e = one_error(doc, "heap-buffer-overflow") or {}
    why = frame_is("stack[0]", nth(e.get("stack"), 0), "overflow", src, source_line(src, "ERROR-OVERFLOW"))
    why += fields("exit", doc.get("exit", {}), {"signal": 11})
    why += [] if "Process terminated by signal 11 (SIGSEGV)" in err else ["the text report does not say the signal"]
    return why + ([] if rc == -signal.SIGSEGV else ["status %d, expected death by SIGSEGV" % rc])


@test
def abort_on_error_dies_by_sigabrt():
    rc, _, err = run([HG, "--abort-on-error", example("double-free")])
    why = [] if rc == -signal.SIGABRT else ["status %d, expected death by SIGABRT" % rc]
    return why + ([] if hgreport.parse(err)["errors"] else ["no report before the abort"])


@test
def program_not_found_and_not_executable():
    rc, _, err = run([HG, "no-such-program-xyz"])
    why = [] if rc == 127 and "command not found" in err else ["not found: %d %r" % (rc, err)]
    rc, _, err = run([HG, "/tmp"])
    why += [] if rc == 126 and "Is a directory" in err and "ERROR SUMMARY" not in err else \
        ["a directory: %d %r" % (rc, err)]
    # a missing interpreter: the one its #! line names, or the one that one's own names, or a
    # program's dynamic loader
    script, outer = os.path.join(WORK, "bad-interpreter"), os.path.join(WORK, "bad-interpreter-user")
    with open(script, "w") as f:
        f.write("#!/no/such/interpreter\n")
    with open(outer, "w") as f:
        f.write("#! %s -x\necho ran\n" % script)
    os.chmod(script, 0o755)
    os.chmod(outer, 0o755)
    loaderless = os.path.join(WORK, "loaderless")
    subprocess.run(["gcc", "-o", loaderless, "-x", "c", "-", "-Wl,--dynamic-linker=/no/such/ld.so"],
                   input="int main(void) { return 0; }\n", text=True, check=True)
    uses_loaderless = os.path.join(WORK, "loaderless-user")
    with open(uses_loaderless, "w") as f:
        f.write("#!%s\n" % loaderless)
    os.chmod(uses_loaderless, 0o755)
    for program, says in (
            (script, "its #! line names /no/such/interpreter, which does not exist"),
            (outer, "its #! line names %s, whose own #! line names /no/such/interpreter, which does not exist"
             % script),
            (loaderless, "the dynamic loader it was linked for does not exist"),
            (uses_loaderless, "its #! line names %s, which exists, but not the dynamic loader it was linked for"
             % loaderless)):
        rc, _, err = run([HG, program])
        if rc != 127 or err != "heapguard: %s: bad interpreter: %s\n" % (program, says):
            why.append("%s: %d %r" % (os.path.basename(program), rc, err))
    # the script found in PATH: it was "command not found"
    rc, _, err = run([HG, os.path.basename(script)], env={"PATH": WORK + ":" + os.environ.get("PATH", "")})
    if rc != 127 or err != "heapguard: %s: bad interpreter: its #! line names /no/such/interpreter, " \
            "which does not exist\n" % script:
        why.append("bad-interpreter in PATH: %d %r" % (rc, err))
    return why


# ---------------------------------------------------------------- processes

@test
def children_after_fork_and_exec_have_their_pids():
    src = HELPER_SRC
    rc, out, err, doc = hg_json([HELPER, "children", example("double-free")])
    pids = dict(l.split() for l in out.splitlines() if l.split()[0] in ("parent", "child", "exec"))
    pids = {k: int(v) for k, v in pids.items()}
    by = {}
    for e in doc.get("errors", []):
        by.setdefault(e.get("pid"), []).append(e)
    why = [] if len(pids) == 3 else ["program output %r" % out]
    for who, kind, marker in (("parent", "heap-buffer-overflow", "ERROR-PARENT"),
                              ("child", "heap-buffer-overflow", "ERROR-CHILD"),
                              ("exec", "double-free", None)):
        errs = by.get(pids.get(who), [])
        if not errs or errs[0].get("kind") != kind:
            why.append("%s (pid %s): errors %r" % (who, pids.get(who), errs))
        elif marker:
            why += frame_is(who, nth(errs[0].get("stack"), 0), "children", src, source_line(src, marker))
    text_pids = hgreport.parse(err)["pids"]
    if not set(pids.values()) <= text_pids:
        why.append("text report pids %r, program's %r" % (text_pids, pids))
    return why


@test
def signals_sent_to_the_command_reach_the_program():
    """SIGUSR1 and its kin went unwaited-for: they ended the command (and the program, by its
    death signal) with no report. Each now reaches the program, once."""
    p = subprocess.Popen([HG, "-q", "--", HELPER, "signals"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env={k: v for k, v in os.environ.items() if k != "HEAPGUARD_OPTIONS"})
    why = [] if p.stdout.readline() == "ready\n" else ["no ready line"]
    for sig in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM, signal.SIGRTMIN + 1):
        p.send_signal(sig)
        time.sleep(0.2)
    try:
        out, err = p.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        return why + ["the program did not get all four: %r" % p.communicate()[0]]
    why += [] if p.returncode == 0 else ["status %d: %r" % (p.returncode, err[-300:])]
    return why + ([] if out == "USR1\nUSR2\nALRM\nRTMIN+1\n" else ["program output %r" % out])


@test
def a_log_file_that_is_stderr_keeps_the_programs_output():
    """--log-file=/dev/stderr opened the file apart and emptied it after the program started:
    what the program wrote there was gone."""
    path = os.path.join(WORK, "both.txt")
    with open(path, "w") as f:
        subprocess.run([HG, "--log-file=/dev/stderr", "--", "sh", "-c",
                        "echo program-line-1 >&2; sleep 0.2; echo program-line-2 >&2"], stderr=f, timeout=60,
                       env={k: v for k, v in os.environ.items() if k != "HEAPGUARD_OPTIONS"})
    with open(path) as f:
        text = f.read()
    why = [] if "program-line-1\nprogram-line-2\n" in text else ["the program's lines are gone: %r" % text]
    return why + ([] if "ERROR SUMMARY" in text else ["no report in the file: %r" % text])


@test
def an_unchecked_program_still_names_its_children_and_counts_their_errors():
    """A static program (unchecked) that runs checked ones: its NOT CHECKED line came alone,
    without the STILL RUNNING line of a child that outlived it or the count of its children's
    errors; a newline in a program's name split such lines."""
    static = static_helper()
    rc, out, err = run([HG, "--", static, "spawn", HELPER, "children", "/bin/true"])
    why = [] if re.search(r"^==\d+== NOT CHECKED: \S*helper-static ran without", err, re.M) else \
        ["no NOT CHECKED line: %r" % err[-500:]]
    why += [] if re.search(r"^==\d+== ERROR SUMMARY: 2 errors from 2 contexts \(suppressed: 0 from 0\)$", err, re.M) else \
        ["no count of the children's 2 errors: %r" % err[-500:]]
    rc, out, err = run([HG, "--", static, "spawn", HELPER, "daemon"])
    why += [] if re.search(r"^==\d+== STILL RUNNING: \S*helper \(pid \d+\) outlived", err, re.M) else \
        ["no STILL RUNNING line: %r" % err[-500:]]
    odd = os.path.join(WORK, "helper\nstatic")
    shutil.copy(static, odd)
    rc, out, err = run([HG, "--", odd, "exit", "0"])
    why += [] if re.search(r"^==\d+== NOT CHECKED: \S*helper\\x0astatic ran without", err, re.M) else \
        ["a newline in the name not escaped: %r" % err[-300:]]
    return why


CHECKS_ON_DEMAND_SOURCE = r"""
#include <stdlib.h>
#include "heapguard.h"
static void *volatile sink;
int main(void)
{
	heapguard_check_leaks();
	sink = malloc(100);
	sink = 0;
	heapguard_check_leaks();
	sink = malloc(1000);
	sink = 0;
	heapguard_check_leaks();
	return 0;
}
"""


@test
def each_leak_check_on_demand_sums_up_its_own_state():
    """Every LEAK SUMMARY of a program that calls heapguard_check_leaks() showed the counts of
    its last check, and the JSON listed each check's leaks again."""
    src = os.path.join(WORK, "on_demand.c")
    with open(src, "w") as f:
        f.write(CHECKS_ON_DEMAND_SOURCE)
    exe = os.path.join(WORK, "on_demand")
    subprocess.run(["gcc", "-g", "-I", os.path.join(ROOT, "include"), "-o", exe, src, "-L", BUILD,
                    "-lheapguard", "-Wl,-rpath," + BUILD], check=True)
    rc, _, err, doc = hg_json([exe])
    lost = [int(m) for m in re.findall(r"LEAK SUMMARY: definitely lost: (\d+) bytes", err)]
    why = [] if lost == [0, 100, 1100, 1100] else ["definitely lost in the summaries %r" % lost]
    got = sorted(l.get("bytes") for l in doc.get("leaks", []))
    return why + ([] if got == [100, 1000] else ["JSON leaks %r, expected the last check's 100 and 1000" % got])


PREINIT_SOURCE = r"""
#include <stdio.h>
#include <stdlib.h>
static char *early;
static void first(int argc, char **argv, char **envp)
{
	(void)argc, (void)argv, (void)envp;
	early = malloc(11); /* before libc has set environ up */
	early[0] = 'e';
}
__attribute__((section(".preinit_array"), used)) static void (*first_p)(int, char **, char **) = first;
int main(void)
{
	char *volatile lost = malloc(7); /* LOST */
	lost = 0;
	printf("early %c\n", early[0]);
	free(early);
	return 0;
}
"""


@test
def a_malloc_in_preinit_array_reads_the_options():
    """A program whose .preinit_array function mallocs: environ was NULL then, so the library
    read no options and no records file: its report came in the library's own form, --quiet
    and --error-exitcode ignored, and the command said it ran unchecked."""
    exe = compiled("preinit", PREINIT_SOURCE)
    rc, out, err = run([HG, "-q", "--error-exitcode=9", "--", exe])
    line = source_line(os.path.join(WORK, "preinit.c"), "LOST")
    why = [] if rc == 9 and out == "early e\n" else ["status %d, output %r" % (rc, out)]
    why += [] if re.search(r"LEAK: definitely-lost: 7 bytes in 1 blocks\n==\d+==     #0 0x[0-9a-f]+ in main "
                           r"\S*preinit.c:%d" % line, err) else ["no symbolized leak: %r" % err[-400:]]
    why += ["said unchecked: %r" % err[-300:]] if "NOT CHECKED" in err else []
    rc, out, err = run([HG, "-q", "--leak-check=no", "--", exe])
    return why + ([] if rc == 0 and err == "" else ["--leak-check=no -q: status %d, stderr %r" % (rc, err[-300:])])


@test
def a_process_that_outlives_the_program_reports_on_its_own():
    """A daemon's child goes on after the program and the command end: the command names it as
    still running, and its overflow, found later, is reported on its own stderr (it went into
    the command's removed record file, unread, before)."""
    rc, out, err, doc = hg_json([HELPER, "daemon"])
    m = re.search(r"daemon (\d+)", out)
    if not m:
        return ["program output %r" % out]
    pid = int(m.group(1))
    running = [p.get("pid") for p in doc.get("still_running", [])]
    why = [] if rc == 0 else ["status %d" % rc]
    if running != [pid]:
        why.append("JSON still_running %r, the daemon is %d" % (running, pid))
    if not re.search(r"STILL RUNNING: \S*helper \(pid %d\) outlived the program" % pid, err):
        why.append("no STILL RUNNING line for pid %d" % pid)
    own = [l for l in err.splitlines() if l.startswith("==%d== " % pid)]
    # its overflow, and its lost block of 8 bytes (a leak group is an error context there too)
    if not any("ERROR: heap-buffer-overflow: write of size 9" in l and "by memset()" in l for l in own) or \
       not any("LEAK: definitely-lost: 8 bytes in 1 blocks" in l for l in own) or \
       not any("ERROR SUMMARY: 2 errors from 2 contexts" in l for l in own):
        why.append("the daemon's own report: %r" % own)
    if doc.get("errors"):
        why.append("the command reported errors it could not have seen: %r" % doc["errors"])
    return why


@test
def a_program_under_an_inner_heapguard_is_checked_elsewhere():
    # heapguard heapguard ./leak: the inner command checks leak and reports it; the outer
    # says so, not that leak ran unchecked
    leak = example("leak")
    rc, _, err, doc = hg_json([HG, leak])
    pid = [l.get("pid") for l in doc.get("checked_elsewhere", [])]
    line = "CHECKED ELSEWHERE: %s (pid %s), executed by %s, is checked by another heapguard command, " \
           "which reports it" % (leak, pid[0] if pid else "?", HG)
    why = fields("document", doc, {"checked": True, "not_checked": [],
                                   "checked_elsewhere": [{"pid": pid[0] if pid else None, "program": leak,
                                                          "executed_by": HG}]})
    why += [] if line in err and "NOT CHECKED" not in err else ["text: %s" % err[-600:]]
    why += [] if "LEAK: definitely-lost: 1000 bytes in 10 blocks" in err else ["no report from the inner command"]
    # a program spawned with another command's records file, and one that the main process
    # becomes by an exec so
    records = os.path.join(WORK, "other.records")
    open(records, "w").close()
    _, _, err, doc = hg_json([HELPER, "spawn-records", records, leak])
    if [(l.get("program"), l.get("executed_by")) for l in doc.get("checked_elsewhere", [])] != [(leak, HELPER)] or \
            doc.get("not_checked") != [] or "CHECKED ELSEWHERE: %s (pid " % leak not in err:
        why.append("posix_spawn: %r %r" % (doc.get("checked_elsewhere"), doc.get("not_checked")))
    with open(records) as f:
        if not re.search(r"^P \d+ ", f.read(), re.M):
            why.append("the spawned program wrote no records into its own file")
    _, _, err, doc = hg_json(["/bin/sh", "-c", "HEAPGUARD_RECORDS=%s exec %s" % (records, leak)])
    if [l.get("program") for l in doc.get("checked_elsewhere", [])] != [leak] or doc.get("checked") is not True or \
            "NO SUMMARY" in err or "NOT CHECKED" in err:
        why.append("exec: %r, %s" % (doc.get("checked_elsewhere"), err[-400:]))
    return why


@test
def a_job_left_running_is_named_not_called_unchecked():
    """A child that executed a program and runs on after the program: whether or not the new
    program has loaded the library when the command ends, it is named as still running (it
    was called NOT CHECKED when its program had not loaded yet)."""
    sleep = subprocess.run(["sh", "-c", "command -v sleep"], capture_output=True, text=True).stdout.strip()
    rc, out, err, doc = hg_json([HELPER, "background-exec", sleep, "2"])
    m = re.search(r"child (\d+)", out)
    if not m:
        return ["program output %r" % out]
    pid = int(m.group(1))
    why = [] if rc == 0 else ["status %d" % rc]
    if "NOT CHECKED" in err:
        why.append("NOT CHECKED in %r" % err)
    if not re.search(r"STILL RUNNING: %s \(pid %d\)" % (re.escape(sleep), pid), err):
        why.append("no STILL RUNNING line for %s (pid %d): %r" % (sleep, pid, err))
    if [p.get("program") for p in doc.get("still_running", [])] != [sleep]:
        why.append("JSON still_running %r" % doc.get("still_running"))
    # --trace-children=no: the exec leaves no record and the program runs unchecked, so no
    # claim that it reports on its own (it was named, as its parent's image, before).
    rc, out, err, doc = hg_json([HELPER, "background-exec", sleep, "2"], "--trace-children=no")
    if "STILL RUNNING" in err or doc.get("still_running"):
        why.append("--trace-children=no: %r, %r" % (err, doc.get("still_running")))
    return why


@test
def a_file_size_limit_does_not_kill_the_program():
    """A program under `ulimit -f 0` ran on when its records could not be written (SIGXFSZ
    ended it, status 153): it reports on its own stderr, and the command says so."""
    rc, out, err, doc = hg_json(["/bin/sh", "-c", "ulimit -f 0; exec \"$0\" overflow-store", HELPER])
    why = [] if rc == 0 else ["status %d: %r" % (rc, err)]
    if not re.search(r"ERROR: heap-buffer-overflow: write of size 1 at", err):
        why.append("no report of the overflow on the program's stderr: %r" % err)
    if "NO SUMMARY: " not in err:
        why.append("no NO SUMMARY line: %r" % err)
    return why


@test
def a_descriptor_limit_leaves_the_program_its_numbers():
    """Under `ulimit -n 4` the program's first open() gets 3, as it does plain (the library
    held 3 for its records, and the open failed); the overflow is still reported."""
    rc, out, err, doc = hg_json(["/bin/sh", "-c", "ulimit -n 4; exec \"$0\" open-fd", HELPER])
    why = [] if rc == 0 and out.startswith("fd=3") else ["status %d, stdout %r" % (rc, out)]
    if not re.search(r"ERROR: heap-buffer-overflow: write of size 9 at", err):
        why.append("no report of the overflow: %r" % err)
    return why


@test
def a_stale_tmpdir_falls_back_to_tmp():
    """TMPDIR naming a directory that is gone: the record stream goes to /tmp (the command
    failed with status 125 before)."""
    rc, out, err, doc = hg_json([HELPER, "overflow-store"], env={"TMPDIR": os.path.join(WORK, "gone")})
    why = [] if rc == 0 else ["status %d: %r" % (rc, err)]
    return why + ([] if re.search(r"ERROR: heap-buffer-overflow", err) else ["no report: %r" % err])


def library_knows(key):
    _, _, err = run(["env", "LD_PRELOAD=" + os.path.join(BUILD, "libheapguard-check.so"),
                     "HEAPGUARD_OPTIONS=help=1", "true"])
    return key in err


@test
def trace_children_no_stops_at_exec():
    if not library_knows("trace_children"):
        return "SKIP the library has no trace_children option yet"
    rc, out, err, doc = hg_json([HELPER, "children", example("double-free")], "--trace-children=no")
    pids = {l.split()[0]: int(l.split()[1]) for l in out.splitlines() if len(l.split()) == 2}
    kinds = {(e.get("pid"), e.get("kind")) for e in doc.get("errors", [])}
    why = [] if (pids.get("child"), "heap-buffer-overflow") in kinds else ["forked child not checked: %r" % kinds]
    return why + ([] if all(k != "double-free" for _, k in kinds) else ["exec'd program checked: %r" % kinds])


@test
def trace_children_no_hands_down_the_users_environment():
    """--trace-children=no: what the program executes gets LD_PRELOAD and HEAPGUARD_OPTIONS as
    the user gave them, or no such variables where the user had none (it got both set and
    empty, the user's own values lost), and none of the command's."""
    show = "/usr/bin/env | grep -E '^(LD_PRELOAD|HEAPGUARD_)' | sort; echo end"
    why = []
    for env, want in ((["-u", "LD_PRELOAD"], "end\n"),
                      (["LD_PRELOAD=/x.so", "HEAPGUARD_OPTIONS=decay_ms=5:quiet=1"],
                       "HEAPGUARD_OPTIONS=decay_ms=5:quiet=1\nLD_PRELOAD=/x.so\nend\n")):
        rc, out, err = run(["env", *env, HG, "--trace-children=no", "/bin/sh", "-c", show])
        if rc != 0 or out != want:
            why.append("%s: status %d, the executed env saw %r, expected %r" % (" ".join(env), rc, out, want))
    return why


@test
def trace_children_no_says_what_ran_unchecked():
    """--trace-children=no: a program that executes another says it ran unchecked, as asked
    (it was a NO SUMMARY line blaming the records before), without making the run fail under
    --error-exitcode; children that execute something are not listed."""
    rc, out, err, doc = hg_json(["/bin/sh", "-c", "exec true"], "--trace-children=no", "--error-exitcode=9")
    why = [] if rc == 0 else ["status %d: %r" % (rc, err)]
    if not re.search(r"NOT CHECKED: \S*true, executed by \S+, ran without libheapguard-check.so "
                     r"\(--trace-children=no\)", err) or "NO SUMMARY" in err:
        why.append("exec: %r" % err)
    if doc.get("checked") is not False:
        why.append("JSON checked %r" % doc.get("checked"))
    rc, out, err, doc = hg_json(["/bin/sh", "-c", "/bin/true; echo done"], "--trace-children=no")
    if rc != 0 or "NOT CHECKED" in err or "NO SUMMARY" in err or doc.get("checked") is not True:
        why.append("children: status %d, %r, checked %r" % (rc, err, doc.get("checked")))
    return why


@test
def a_small_stack_limit_is_the_programs_only():
    """`ulimit -s 160` (soft and hard): the command's symbolizer recursed past it and died by
    SIGSEGV, the report lost; the command's work has a stack of its own now."""
    rc, out, err = run(["/bin/sh", "-c", "ulimit -s 160 && exec \"$0\" -- \"$1\"", HG, example("double-free")])
    why = [] if rc == 0 else ["status %d: %r" % (rc, err[-300:])]
    return why + ([] if re.search(r"ERROR: double-free: free\(\) of 0x", err) and
                  "ERROR SUMMARY: 1 errors from 1 contexts" in err else ["no report: %r" % err[-300:]])


def running(pid):
    """Whether pid is there and not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def children_of(pid):
    kids = []
    for task in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                kids += [int(k) for k in f.read().split()]
        except OSError:
            pass
    return kids


@test
def the_program_goes_with_a_killed_command():
    """SIGKILL to the command (`timeout -s KILL`): the program ran on, unchecked; it is
    killed with it now."""
    p = subprocess.Popen([HG, "--", "sleep", "30"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kids, deadline = [], time.time() + 10
    while not kids and time.time() < deadline:
        kids = children_of(p.pid)
        time.sleep(0.02)
    p.kill()
    p.wait()
    if not kids:
        return ["no child of the command seen"]
    deadline = time.time() + 5
    while running(kids[0]) and time.time() < deadline:
        time.sleep(0.02)
    return ["the program (pid %d) runs on" % kids[0]] if running(kids[0]) else []


@test
def closed_descriptors_still_reported():
    src = HELPER_SRC
    why = []
    for mode in ("closefds", "closefrom"):
        d = tempfile.mkdtemp(dir=WORK)
        rc, _, _, doc = hg_json([HELPER, mode, d])
        e = one_error(doc, "heap-buffer-overflow") or {}
        why += frame_is(mode, nth(e.get("stack"), 0), "overflow", src, source_line(src, "ERROR-OVERFLOW"))
        if "allocs" not in doc.get("summary", {}):
            why.append("%s: no heap summary %r" % (mode, doc.get("summary")))
        for name in os.listdir(d):
            with open(os.path.join(d, name), errors="replace") as f:
                if f.read():
                    why.append("%s: records written into the program's file %s" % (mode, name))
    return why


@test
def chdir_still_reported():
    src = HELPER_SRC
    rc, _, _, doc = hg_json([HELPER, "chdir"])
    e = one_error(doc, "heap-buffer-overflow") or {}
    why = frame_is("stack[0]", nth(e.get("stack"), 0), "overflow", src, source_line(src, "ERROR-OVERFLOW"))
    return why + fields("block", e.get("block", {}), {"size": 8, "offset": 8})


PLUGIN_SRC = """#include <stdlib.h>
void *volatile plug_sink;
__attribute__((noinline)) void plug_leak(void)
{
	plug_sink = malloc(40); /* PLUGIN-MALLOC */
	plug_sink = 0;
}
"""
DECOY_SRC = "void decoy(char *p) { for (int i = 0; i < 4096; i++) p[i] = (char)(i * i); }\n"
PLUGIN_HOST_SRC = """#include <dlfcn.h>
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	(void)argc;
	if (chdir(argv[1]) != 0)
		return 2;
	void *plugin = dlopen("./libplug.so.1", RTLD_NOW);
	if (!plugin) {
		fprintf(stderr, "%s\\n", dlerror());
		return 3;
	}
	((void (*)(void))dlsym(plugin, "plug_leak"))(); /* CALLS-PLUGIN */
	return 0;
}
"""


def plugin_leak():
    """Builds libplug.so.1.0.0 (soname libplug.so.1, and a link of that name to it) into
    WORK/plugins, and a program that changes into that directory and dlopens ./libplug.so.1;
    runs it under heapguard from WORK/elsewhere, which holds another ./libplug.so.1. Returns
    (doc, the real plugin's path, its source, the program's source)."""
    plugins, elsewhere = os.path.join(WORK, "plugins"), os.path.join(WORK, "elsewhere")
    real = os.path.join(plugins, "libplug.so.1.0.0")
    if not os.path.exists(real):
        for d, name, text in ((plugins, "plug.c", PLUGIN_SRC), (elsewhere, "decoy.c", DECOY_SRC)):
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
        subprocess.run(["gcc", "-g", "-O0", "-shared", "-fPIC", "-Wl,-soname,libplug.so.1", "-o", real,
                        os.path.join(plugins, "plug.c")], check=True)
        os.symlink("libplug.so.1.0.0", os.path.join(plugins, "libplug.so.1"))
        subprocess.run(["gcc", "-O0", "-shared", "-fPIC", "-o", os.path.join(elsewhere, "libplug.so.1"),
                        os.path.join(elsewhere, "decoy.c")], check=True)
    host = compiled("plugin_host", PLUGIN_HOST_SRC)
    path = os.path.join(WORK, "plugin.json")
    run([HG, "--json=" + path, "--", host, plugins], cwd=elsewhere)
    with open(path) as f:
        return json.load(f), real, os.path.join(plugins, "plug.c"), host + ".c"


def plugin_stack(doc):
    return next((l.get("stack", []) for l in doc.get("leaks", []) if l.get("bytes") == 40), [])


@test
def plugin_dlopened_by_a_relative_path_after_chdir():
    """A plugin dlopened as ./libplug.so.1 after a chdir: the command read ./libplug.so.1 in its
    own directory, another file, and named the plugin's frames from that file's functions."""
    doc, _, plug_src, host_src = plugin_leak()
    stack = plugin_stack(doc)
    return (frame_is("stack[0]", nth(stack, 0), "plug_leak", plug_src, source_line(plug_src, "PLUGIN-MALLOC")) +
            frame_is("stack[1]", nth(stack, 1), "main", host_src, source_line(host_src, "CALLS-PLUGIN")))


@test
def modules_are_named_by_the_files_mapped():
    """A module is named by the file mapped, as valgrind names it and as its suppressions'
    obj: lines match: the plugin opened through its soname link by libplug.so.1.0.0, libc by its
    real path (/usr/lib/x86_64-linux-gnu/libc.so.6 on a merged /usr, not ld.so's /lib/...)."""
    doc, real, _, _ = plugin_leak()
    stack = plugin_stack(doc)
    why = [] if nth(stack, 0) and stack[0].get("module") == real else \
        ["stack[0] %r, expected the module %s" % (nth(stack, 0), real)]
    libc = [f.get("module") for f in stack if f.get("function") == "__libc_start_main"]
    if not libc or libc[0] != os.path.realpath(libc[0]):
        why.append("libc's frames are in %r, expected its real path" % libc)
    return why


@test
def program_started_by_the_dynamic_loader():
    """`heapguard -- ld.so PROG`: ld.so names the program "" in its link map as always, but
    /proc/self/exe is ld.so: the program's frames were named from ld.so's functions, by the
    command and by the library preloaded alone."""
    found = re.search(r"interpreter: ([^\]]+)\]", run(["readelf", "-l", HELPER])[1])
    if not found:
        return ["no interpreter in %s" % HELPER]
    _, _, _, doc = hg_json([found.group(1), HELPER, "chdir"])
    e = one_error(doc, "heap-buffer-overflow") or {}
    why = frame_is("stack[0]", nth(e.get("stack"), 0), "overflow", HELPER_SRC, source_line(HELPER_SRC, "ERROR-OVERFLOW"))
    _, _, err = run([found.group(1), HELPER, "chdir"],
                    env={"LD_PRELOAD": os.path.join(BUILD, "libheapguard-check.so")})
    if not re.search(r"#0 0x[0-9a-f]+ in overflow \(" + re.escape(HELPER) + r"\+0x", err):
        why.append("preloaded alone, the first frame is not overflow in %s: %r" % (HELPER, err))
    return why


@test
def stdout_identical_to_a_plain_run():
    rc1, plain, _ = run([HELPER, "stdout"])
    rc2, checked, err = run([HG, HELPER, "stdout"])
    why = [] if plain == checked and rc1 == rc2 == 0 else \
        ["stdout differs (%d vs %d bytes), status %d vs %d" % (len(plain), len(checked), rc1, rc2)]
    return why + ([] if "ERROR: heap-buffer-overflow" in err else ["no report"])


@test
def binary_data_is_not_taken_for_never_written_bytes():
    """cat of a binary holding runs of one byte (0xbe, the old fill byte, among them) and data
    that zlib inflates: no uninitialized-read, the same bytes out."""
    data = bytes(range(256)) * 64 + b"\xbe" * 134 + bytes(1000) + b"\xff" * 64
    path = os.path.join(WORK, "binary.bin")
    with open(path, "wb") as f:
        f.write(data)
    why = []
    p = subprocess.run([HG, "--error-exitcode=9", "cat", path], capture_output=True)
    if p.returncode != 0 or p.stdout != data:
        why.append("cat: status %d, %d bytes out of %d" % (p.returncode, len(p.stdout), len(data)))
    py = "import sys, zlib; sys.stdout.buffer.write(zlib.decompress(zlib.compress(open(sys.argv[1], 'rb').read())))"
    p = subprocess.run([HG, "--error-exitcode=9", "/usr/bin/python3", "-c", py, path], capture_output=True)
    if p.returncode != 0 or p.stdout != data:
        why.append("python3 zlib: status %d, %d bytes out of %d" % (p.returncode, len(p.stdout), len(data)))
    return why


@test
def record_stream_removed_even_when_the_reader_goes_away():
    tmp = tempfile.mkdtemp(dir=WORK)
    rc, out, _ = run(["sh", "-c", '"$0" "$1" 2>&1 | head -n 1',
                      HG, example("heap-overflow")], env={"TMPDIR": tmp})
    rc2, _, _ = run([HG, example("clean")], env={"TMPDIR": tmp})
    left = os.listdir(tmp)
    return ([] if not left else ["left in TMPDIR: %r" % left]) + \
        ([] if rc == 0 and rc2 == 0 and out.count("\n") >= 1 else ["status %d/%d, output %r" % (rc, rc2, out)])


# ---------------------------------------------------------------- options and speed

@test
def options_from_heapguard_options():
    path = os.path.join(WORK, "env.json")
    rc, _, err = run([HG, example("heap-overflow")],
                     env={"HEAPGUARD_OPTIONS": "json=%s:error_exitcode=7:quiet=1:leak_check=full" % path})
    why = [] if rc == 7 else ["status %d, expected 7" % rc]
    why += [] if os.path.exists(path) else ["no JSON from json= in HEAPGUARD_OPTIONS"]
    why += [] if "ERROR SUMMARY" not in err else ["quiet=1 ignored"]
    rc, _, _ = run([HG, "--error-exitcode=8", example("heap-overflow")], env={"HEAPGUARD_OPTIONS": "error_exitcode=7"})
    why += [] if rc == 8 else ["command line lost to HEAPGUARD_OPTIONS: %d" % rc]
    why += ["library warned: " + err] if "unknown" in err.lower() else []
    # every option of the command, by its name: valgrind's, flags as yes/no/1/0, guard=all
    rc, _, _, doc = hg_json([example("double-free")], env={"HEAPGUARD_OPTIONS": "num_callers=1:show_reachable=yes:trace_children=1"})
    e = one_error(doc, "double-free") or {}
    why += [] if rc == 0 and len(e.get("stack", [])) == 1 else ["num_callers=1: %d %r" % (rc, e)]
    rc, _, err = run([HG, HELPER, "exit", "0"], env={"HEAPGUARD_OPTIONS": "guard=all:guard_uninit=yes"})
    why += [] if rc == 0 and "unknown" not in err and "invalid" not in err else ["guard=all: %d %r" % (rc, err)]
    rc, _, err = run([HG, example("leak")], env={"HEAPGUARD_OPTIONS": "fast=1"})
    why += [] if rc == 0 and "LEAK" not in err else ["fast=1 still checked: %d %r" % (rc, err)]
    # however many keys of the command come, each is the command's (the last one wins)
    many = os.path.join(WORK, "many.json")
    rc, _, err = run([HG, example("clean")], env={"HEAPGUARD_OPTIONS": "trace_children=1:" * 70 + "json=" + many})
    why += [] if rc == 0 and os.path.exists(many) else ["json= after 70 keys: %d %r" % (rc, err[-300:])]
    rc, _, err = run([HG, example("clean")], env={"HEAPGUARD_OPTIONS": "json="})
    return why + ([] if rc == 2 and "for json in HEAPGUARD_OPTIONS" in err else ["json=: %d %r" % (rc, err)])


@test
def flags_off_in_heapguard_options():
    """Every flag of the command set to 0 or no in HEAPGUARD_OPTIONS is off: fast=0 ran the
    program unchecked (the fast library's one-line abort in place of the report)."""
    why = []
    for off in ("0", "no"):
        options = ":".join(k + "=" + off for k in ("fast", "quiet", "gen_suppressions", "show_reachable",
                                                   "abort_on_error", "guard_uninit", "verbose"))
        rc, _, err = run([HG, example("double-free")], env={"HEAPGUARD_OPTIONS": options})
        if rc != 0 or not re.search(r"^==\d+== ERROR: double-free: free\(\) of 0x[0-9a-f]+ \(thread 1\)$", err, re.M):
            why.append("%s: status %d, no double-free report: %r" % (options, rc, err[-300:]))
        elif not re.search(r"^==\d+== ERROR SUMMARY: 1 errors from 1 contexts \(suppressed: 0 from 0\)$", err, re.M) or "{" in err:
            why.append("%s: quiet or gen_suppressions still on: %r" % (options, err[-300:]))
    return why


@test
def leak_check_levels():
    why = []
    for level, want_leaks in (("full", True), ("summary", False), ("no", False)):
        rc, _, err, doc = hg_json([example("leak")], "--leak-check=" + level)
        has = any(l.get("kind") == "definitely-lost" for l in doc.get("leaks", []))
        if has != want_leaks:
            why.append("--leak-check=%s: leaks %r" % (level, doc.get("leaks")))
        if ("LEAK SUMMARY" in err) != (level != "no"):
            why.append("--leak-check=%s: LEAK SUMMARY %s" % (level, "missing" if level != "no" else "printed"))
    return why


@test
def show_reachable_lists_reachable_blocks():
    prog = [HELPER, "reachable"]
    _, _, _, plain = hg_json(prog)
    _, _, _, shown = hg_json(prog, "--show-reachable")
    kinds = lambda doc: {l.get("kind") for l in doc.get("leaks", [])}
    why = [] if "still-reachable" not in kinds(plain) else ["still-reachable listed without --show-reachable"]
    reach = [l for l in shown.get("leaks", []) if l.get("kind") == "still-reachable" and l.get("bytes", 0) >= 4242]
    return why + ([] if reach else ["--show-reachable: %r" % shown.get("leaks")])


@test
def guard_all_stops_at_the_store():
    # Without guards a plain store past the end is found at free(); on a guard page it faults
    # at the store itself, and the program dies by SIGSEGV. (64 bytes: a guarded block ends
    # against its guard page when its size is a multiple of 16.)
    rc, _, _, doc = hg_json([HELPER, "overflow-store"], "--guard=all")
    e = one_error(doc, "heap-buffer-overflow")
    if e is None:
        return ["no heap-buffer-overflow: %r" % doc.get("errors")]
    why = fields("error", e, {"access": "write"}) + fields("block", e.get("block", {}), {"size": 64, "offset": 64})
    why += frame_is("stack[0]", nth(e.get("stack"), 0), "main", HELPER_SRC,
                    source_line(HELPER_SRC, "ERROR-OVERFLOW-STORE"))
    return why + ([] if rc == -signal.SIGSEGV else ["status %d, expected death by SIGSEGV" % rc])


@test
def a_fault_is_shown_at_its_own_line():
    # Frame #0 of a fault is the faulting instruction, not a return address. Looked up one
    # byte before, as return addresses are, a store right after a call (-O2) got the call's line.
    exe = compiled("fault_line", r"""
#include <stdlib.h>
__attribute__((noipa)) void release(char *p) { free(p); }
__attribute__((noipa)) void touch(int *p) { (void)p; }
int main(int argc, char **argv)
{
	char *p = malloc(64);
	int *none = argc > 5 ? malloc(4) : NULL;
	if (argc > 1) {
		release(p);
		p[3] = (char)argc; /* USE-AFTER-FREE */
	}
	touch(none);
	*none = argc; /* NULL-STORE */
	return 0;
}
""", opt="-O2")
    src = os.path.join(WORK, "fault_line.c")
    why = []
    for args, opts, kind, marker in (([exe, "uaf"], ["--guard=all"], "heap-use-after-free", "USE-AFTER-FREE"),
                                      ([exe], [], "invalid-access", "NULL-STORE")):
        rc, _, _, doc = hg_json(args, *opts)
        e = one_error(doc, kind)
        if e is None:
            why.append("%s: no %s: %r" % (args, kind, doc.get("errors")))
            continue
        why += frame_is("%s stack[0]" % kind, nth(e.get("stack"), 0), "main", src, source_line(src, marker))
        why += [] if rc == -signal.SIGSEGV else ["%s: status %d" % (args, rc)]
    return why


@test
def damage_found_at_a_crash_is_shown_at_the_crash_line():
    # The checks before a crash find a redzone store; its stack is the crash's, whose first
    # frame is the faulting instruction: looked up one byte before, it got the line before
    exe = compiled("crash_line", r"""
#include <stdlib.h>
int other;
__attribute__((noipa)) void f(int *p, int *q)
{
	q[0] = 5;
	p[0] = 1; /* CRASH */
}
char *volatile keep;
int main(void)
{
	volatile int at = 12;
	char *b = malloc(10);
	b[at] = 1;
	keep = b;
	int *volatile np = 0;
	f(np, &other);
	return 0;
}
""", opt="-O2")
    src = os.path.join(WORK, "crash_line.c")
    _, _, _, doc = hg_json([exe])
    e = one_error(doc, "heap-buffer-overflow")
    if e is None:
        return ["no heap-buffer-overflow: %r" % doc.get("errors")]
    return frame_is("overflow stack[0]", nth(e.get("stack"), 0), "f", src, source_line(src, "CRASH"))


@test
def functions_defined_in_functions_keep_their_inlined_calls():
    # a local class's method and a GCC nested function: the index of a unit's functions
    # skipped them, so the call inlined into them was lost and its line shown as theirs
    cxx = compiled("local_class", """#include <cstdlib>
static inline __attribute__((always_inline)) int *mk(int n) { return new int[n]; } // MK
int *volatile keep;
int main(int argc, char **argv) {
	struct Local {
		__attribute__((noinline, noclone)) static void go(int n) { keep = mk(n); } // GO
	};
	Local::go(argc + 3);
	keep = nullptr;
	return 0;
}
""", "g++", "-O2")
    c = compiled("nested_function", """#include <stdlib.h>
static inline __attribute__((always_inline)) char *mk(int n) { return malloc(n); } /* MK */
char *volatile keep;
int main(int argc, char **argv) {
	__attribute__((noinline)) void inner(int n) { keep = mk(n); } /* INNER */
	inner(argc + 3);
	keep = 0;
	return 0;
}
""", opt="-O2")
    why = []
    for exe, src, outer in ((cxx, "local_class.cc", "main::Local::go(int)"), (c, "nested_function.c", "inner")):
        path = os.path.join(WORK, src)
        _, _, _, doc = hg_json([exe])
        leak = next((l for l in doc.get("leaks", []) if l.get("kind") == "definitely-lost"), None)
        if leak is None:
            why.append("%s: no leak %r" % (src, doc.get("leaks")))
            continue
        stack = leak.get("stack", [])
        why += frame_is(src + " #0", nth(stack, 0), "mk", path, source_line(path, "MK"))
        got = nth(stack, 1) or {}
        if not (got.get("function") or "").startswith(outer) or got.get("line") != source_line(path, "GO" if exe == cxx else "INNER"):
            why.append("%s #1: %r" % (src, got))
    return why


@test
def code_the_linker_discarded_names_no_frame():
    """lld --gc-sections writes a dropped function's DWARF addresses as from 0: trusted, its
    6,000 lines named every frame below them, _start included, as that function's."""
    if shutil.which("ld.lld") is None:
        return "SKIP lld is not installed"
    big = os.path.join(WORK, "discarded.c")
    with open(big, "w") as f:
        f.write("long unused_big(long x) {\n  long s = 0;\n" +
                "".join("  s += x * %d; x ^= s >> 3;\n" % (i + 1) for i in range(3000)) +
                "  return s;\n}\nint used(int x) { return x + 1; }\n")
    main = os.path.join(WORK, "discarded_main.c")
    with open(main, "w") as f:
        f.write("#include <stdlib.h>\nint used(int);\nvoid *volatile keep;\n"
                "int main(void) { keep = malloc(used(20)); keep = 0; return 0; }\n")
    exe = os.path.join(WORK, "discarded")
    subprocess.run(["gcc", "-g", "-O2", "-ffunction-sections", "-fuse-ld=lld", "-Wl,--gc-sections", "-o", exe,
                    main, big], check=True)
    _, _, _, doc = hg_json([exe])
    leak = next((l for l in doc.get("leaks", []) if l.get("kind") == "definitely-lost"), None)
    names = [f.get("function") for f in (leak or {}).get("stack", [])]
    return [] if names and names[0] == "main" and names[-1] == "_start" and "unused_big" not in names else \
        ["frames %r" % names]


@test
def guard_side_left_catches_underflow():
    rc, _, _, doc = hg_json([HELPER, "underflow"], "--guard=all", "--guard-side=left")
    e = one_error(doc, "heap-buffer-overflow")
    if e is None:
        return ["no heap-buffer-overflow: %r" % doc.get("errors")]
    return fields("block", e.get("block", {}), {"size": 64, "offset": -1}) + \
        ([] if rc == -signal.SIGSEGV else ["status %d, expected death by SIGSEGV" % rc])


@test
def guard_uninit_reports_a_first_read():
    src = os.path.join(ROOT, "tests", "check", "guard_uninit.c")
    exe = os.path.join(WORK, "guard_uninit")
    subprocess.run(["gcc", "-g", "-O0", "-o", exe, src], check=True)
    rc, _, _, doc = hg_json([exe], "--guard=all", "--guard-uninit")
    e = one_error(doc, "uninitialized-read")
    if e is None:
        return ["no uninitialized-read: %r" % doc.get("errors")]
    why = fields("error", e, {"access": "read"}) + fields("block", e.get("block", {}), {"size": 40, "offset": 12})
    why += frame_is("stack[0]", nth(e.get("stack"), 0), "first_read", src, source_line(src, "return v[3];"))
    return why + ([] if rc == 0 else ["status %d, expected 0" % rc])


@test
def quarantine_size_sets_when_a_freed_write_is_found():
    # A write after free is found when the block leaves the quarantine: with 4K while the
    # program runs on, with the default 256M only at exit.
    why = []
    for opts, when in ((["--quarantine=4K"], "found when the block left the quarantine"), ([], "found at exit")):
        _, _, err, doc = hg_json([HELPER, "write-after-free-churn"], *opts)
        e = one_error(doc, "heap-use-after-free")
        if e is None or when not in err:
            why.append("%s: no report %r:\n%s" % (opts, when, err[-800:]))
        elif e.get("block", {}).get("offset") != 8:
            why.append("%s: block %r" % (opts, e.get("block")))
    return why


@test
def show_leak_kinds_selects_the_kinds_listed():
    prog = [HELPER, "kinds"]
    listed = lambda doc: sorted({l.get("kind") for l in doc.get("leaks", [])})
    want = {
        (): ["definitely-lost", "indirectly-lost", "possibly-lost"],
        ("--show-leak-kinds=definite,reachable",): ["definitely-lost", "still-reachable"],
        ("--show-leak-kinds=all",): ["definitely-lost", "indirectly-lost", "possibly-lost", "still-reachable"],
        ("--show-leak-kinds=none",): [],
    }
    why = []
    for opts, kinds in want.items():
        _, _, err, doc = hg_json(prog, *opts)
        if listed(doc) != kinds:
            why.append("%s: listed %s, expected %s" % (opts, listed(doc), kinds))
        # the summary counts every kind whatever is listed
        if "definitely lost: 24 bytes in 1 blocks; indirectly lost: 32 bytes in 2 blocks; " \
           "possibly lost: 300 bytes in 1 blocks" not in err:
            why.append("%s: summary %r" % (opts, [l for l in err.splitlines() if "LEAK SUMMARY" in l]))
    return why


@test
def valgrind_option_names():
    _, _, _, doc = hg_json([example("double-free")], "--num-callers=2")
    e = one_error(doc, "double-free")
    why = [] if e is not None and 1 <= len(e.get("stack", [])) <= 2 else \
        ["--num-callers=2: %r" % (e or doc.get("errors"))]
    _, _, _, doc = hg_json([HELPER, "kinds"], "--leak-check-heuristics=none", "--show-leak-kinds=possible")
    if [l.get("bytes") for l in doc.get("leaks", [])] != [300]:
        why.append("--leak-check-heuristics=none: %r" % doc.get("leaks"))
    _, _, _, doc = hg_json([example("leak")], "--leak-check=yes")
    if not any(l.get("kind") == "definitely-lost" and l.get("blocks") == 10 for l in doc.get("leaks", [])):
        why.append("--leak-check=yes: %r" % doc.get("leaks"))
    rc, _, _, doc = hg_json([example("uninitialized-read")], "--tool=memcheck", "--track-origins=yes")
    e = one_error(doc, "uninitialized-read")
    if e is None or not (e.get("block") or {}).get("alloc_stack"):
        why.append("--track-origins=yes: %r (status %d)" % (doc.get("errors"), rc))
    # the classic memcheck command line runs as it is
    rc, _, err, doc = hg_json([example("uninitialized-read")], "-v", "--verbose", "--error-limit=no",
                              "--leak-resolution=high", "--track-fds=no", "--child-silent-after-fork=no",
                              "--undef-value-errors=no")
    if rc != 0 or doc.get("errors") != []:
        why.append("--undef-value-errors=no: %r (status %d)" % (doc.get("errors"), rc))
    if "ERROR SUMMARY: 0 errors from 0 contexts (suppressed: 0 from 0)" not in err:
        why.append("--undef-value-errors=no counted as suppressed, where valgrind finds none: %r" % err[-200:])
    _, _, _, doc = hg_json([HELPER, "kinds"], "--show-possibly-lost=no")
    if sorted({l.get("kind") for l in doc.get("leaks", [])}) != ["definitely-lost", "indirectly-lost"]:
        why.append("--show-possibly-lost=no: %r" % doc.get("leaks"))
    rc, _, err = run([HG, "--track-fds=yes", example("clean")])
    why += [] if rc == 2 and "invalid value 'yes' for --track-fds" in err else ["--track-fds=yes: %d" % rc]
    for opts, msg in ((("--fast", "--quarantine=1M"), "--quarantine needs the checking library"),
                      (("--guard-side=left",), "--guard-side needs --guard"),
                      (("--xml=no", "--xml-file=" + os.path.join(WORK, "x.xml")), "opposite")):
        rc, _, err = run([HG, *opts, example("clean")])
        why += [] if rc == 2 and msg in err else ["%s: %d %r" % (" ".join(opts), rc, err[:200])]
    return why


@test
def stack_depth_limits_frames():
    """N frames exactly, also where heapguard's own frame below main (leak.c's main_returns,
    hidden) would be the Nth: it took a place, and --stack-depth=2 showed main alone. The
    whole stack is 4 frames."""
    why = []
    for depth in (2, 3, 4, 5):
        _, _, _, doc = hg_json([example("double-free")], "--stack-depth=%d" % depth)
        e = one_error(doc, "double-free")
        if e is None:
            return ["no double-free: %r" % doc.get("errors")]
        for what, stack in (("stack", e.get("stack")), ("alloc_stack", e.get("block", {}).get("alloc_stack")),
                            ("free_stack", e.get("block", {}).get("free_stack"))):
            names = [f.get("function") for f in stack or []]
            if len(names) != min(depth, 4) or "main" not in names:  # main and libc's 3 below
                why.append("--stack-depth=%d: %s %r" % (depth, what, names))
    return why


@test
def names_a_stripped_library_from_its_symbol_table():
    # Without debug information a frame is named by the symbol holding it (symbolize.c's own
    # index of the symbol table): the stripped library's exported function, and nothing for
    # its static one; with debug information, both with their lines.
    lib_src = os.path.join(ROOT, "tests", "check", "leak_lib.c")
    exe = os.path.join(WORK, "leak_cases")
    subprocess.run(["gcc", "-g", "-O0", "-o", exe, os.path.join(ROOT, "tests", "check", "leak_cases.c")],
                   check=True)
    libs = []
    for name, nbytes, strip in (("leak_lib.so", 1111, []), ("leak_lib_stripped.so", 2222, ["-s"])):
        libs.append(os.path.join(WORK, name))
        subprocess.run(["gcc", "-g", "-O0", "-shared", "-fPIC", "-DLEAK_BYTES=%d" % nbytes, *strip, "-o",
                        libs[-1], lib_src], check=True)
    rc, _, _, doc = hg_json([exe, "libs", *libs])
    stacks = {l.get("bytes"): l.get("stack", []) for l in doc.get("leaks", []) if l.get("kind") == "definitely-lost"}
    if set(stacks) != {1111, 2222}:
        return ["definitely-lost leaks of %s bytes, expected 1111 and 2222" % sorted(stacks)]
    why = frame_is("1111 stack[0]", nth(stacks[1111], 0), "leak_lib_inner", lib_src, source_line(lib_src, "malloc"))
    got = [(f.get("function"), os.path.basename(f.get("module", "")), f.get("line")) for f in stacks[2222][:2]]
    if got != [(None, "leak_lib_stripped.so", None), ("leak_lib_lose", "leak_lib_stripped.so", None)]:
        why.append("2222 stack: %r" % got)
    return why + ([] if rc == 0 else ["status %d" % rc])


@test
def names_frames_in_a_100th_module():
    """Modules past the 64th (python3 with numpy loads over 200) had unnamed frames: ?? and an
    address, no function, file or line."""
    main_src = os.path.join(HERE, "command", "many_modules.c")
    lib_src = os.path.join(HERE, "command", "many_modules_lib.c")
    exe = os.path.join(WORK, "many_modules")
    subprocess.run(["gcc", "-g", "-O0", "-o", exe, main_src, "-ldl"], check=True)
    lib = os.path.join(WORK, "many_modules_lib.so")
    subprocess.run(["gcc", "-g", "-O0", "-shared", "-fPIC", "-o", lib, lib_src], check=True)
    libs = []
    for i in range(100):  # copies are modules of their own: ld.so tells files apart by inode
        libs.append(os.path.join(WORK, "libmany%d.so" % i))
        shutil.copyfile(lib, libs[-1])
    rc, _, _, doc = hg_json([exe, *libs])
    lost = [l for l in doc.get("leaks", []) if l.get("kind") == "definitely-lost"]
    modules = {os.path.basename(l.get("stack", [{}])[0].get("module") or "") for l in lost}
    why = [] if len(lost) == 100 and modules == {os.path.basename(x) for x in libs} else \
        ["%d definitely-lost groups from %d modules, expected 100 from 100" % (len(lost), len(modules))]
    for l in lost:
        why += frame_is("leak stack[0]", nth(l.get("stack"), 0), "make", lib_src, source_line(lib_src, "MAKE-MALLOC"))
    return why[:5] + ([] if rc == 0 else ["status %d" % rc])


@test
def names_frames_of_a_process_at_vm_max_map_count():
    """A process that took every mapping the kernel allows had its report's frames unnamed:
    the library had no mapping left to keep its modules' paths in."""
    src = os.path.join(HERE, "command", "many_modules.c")
    exe = os.path.join(WORK, "many_modules_full")
    subprocess.run(["gcc", "-g", "-O0", "-o", exe, src, "-ldl"], check=True)
    rc, _, _, doc = hg_json([exe, "full"])
    e = one_error(doc, "invalid-access") or {}
    why = frame_is("stack[0]", nth(e.get("stack"), 0), "main", src, source_line(src, "NULL-WRITE"))
    return why + ([] if rc == -signal.SIGSEGV else ["status %d, expected death by SIGSEGV" % rc])


@test
def symbolizes_1000_stacks_in_under_a_second():
    n = 1000
    src = os.path.join(WORK, "many.c")
    with open(src, "w") as f:
        f.write("#include <stdlib.h>\n")
        for i in range(n):  # each invalid free is its own context: a distinct stack
            f.write("__attribute__((noinline)) void f%d(void) { char c; free(&c + %d); }\n" % (i, i % 7))
        f.write("int main(void) {\n%s\treturn 0;\n}\n" % "".join("\tf%d();\n" % i for i in range(n)))
    exe = os.path.join(WORK, "many")
    subprocess.run(["gcc", "-w", "-g", "-O0", "-o", exe, src], check=True)
    records = os.path.join(WORK, "many.records")

    def timed(args):
        """Runs args; returns (wall seconds, CPU seconds of it and its children)."""
        cpu0, wall0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
        result = hg_json(args) if args[0] != "env" else run(args)
        cpu1, wall1 = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
        cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
        return wall1 - wall0, cpu, result

    bare_wall, bare_cpu, _ = timed(["env", "LD_PRELOAD=" + os.path.join(BUILD, "libheapguard-check.so"),
                                    "HEAPGUARD_RECORDS=" + records, exe])
    full_wall, full_cpu, (rc, _, _, doc) = timed([exe])
    lines = {nth(e.get("stack"), 0).get("line") for e in doc.get("errors", []) if e.get("stack")}
    why = [] if len(doc.get("errors", [])) == n and len(lines) == n else \
        ["%d errors, %d distinct lines" % (len(doc.get("errors", [])), len(lines))]
    # CPU time, not wall time, is compared: the machine may be busy with other work.
    print("# %d stacks: the command added %.2f s of CPU time, %.2f s of wall time (%.2f s in all)"
          % (n, full_cpu - bare_cpu, full_wall - bare_wall, full_wall))
    return why + ([] if full_cpu - bare_cpu < 1.0 else ["the command took %.2f s of CPU" % (full_cpu - bare_cpu)])


def main():
    subprocess.run(["gcc", "-g", "-O0", "-Wall", "-o", HELPER, HELPER_SRC], check=True)
    print("1..%d" % len(TESTS))
    failed = 0
    for i, fn in enumerate(TESTS, 1):
        try:
            why = fn()
        except Exception as ex:  # a crash of the check is a failure of the test, not the script
            why = ["%s: %s" % (type(ex).__name__, ex)]
        name = fn.__name__
        if isinstance(why, str):  # a SKIP: what the library has yet to provide
            print("not ok %d - %s # %s" % (i, name, why))
            continue
        print("%s %d - %s" % ("not ok" if why else "ok", i, name))
        for w in why:
            for line in str(w).splitlines():
                print("# " + line)
        failed += bool(why)
    subprocess.run(["rm", "-rf", WORK])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
