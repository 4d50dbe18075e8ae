"""hgreport.py — parses the text reports of libheapguard-check.so, for the check-mode tests.

The format (README, "Report format"); every line starts with "==PID== ":
  ERROR: KIND: ACCESS[ of size N] at 0xADDR[ by FUNC()] (thread T)   an access (no size: unknown;
                                                                     ACCESS "read or write": unknown)
  ERROR: KIND: FUNC() of 0xADDR (thread T)                           a free/realloc
  ERROR: KIND: FUNC() of N bytes (thread T)                          a request (size N, no address)
      #I 0xPC in FUNCTION (MODULE+0xOFF)                               the access stack
      #I 0xPC in FUNCTION FILE:LINE                                    (the heapguard command,
                                                                       with debug information)
    0xADDR is N bytes after|before|inside a block of size M at 0xB   the block
    DETAIL TEXT                                                      optional, one line
    freed by thread T:                                               + stack
    allocated by thread T:                                           + stack
  SUMMARY: KIND in FUNCTION
  LEAK: KIND: B bytes in N blocks                                    + allocation stack
  LEAK SUMMARY: definitely lost: B bytes in N blocks; indirectly lost: ...; possibly lost: ...;
                still reachable: ...
  HEAP SUMMARY: in use at exit: B bytes in N blocks; total: A allocs, F frees, X bytes allocated
  ERROR SUMMARY: N errors from M contexts (suppressed: S from T)    (the command's: leaks count)
"""
import re

LINE = re.compile(r"^==(\d+)== (.*)$")
HEAD_ACCESS = re.compile(r"^ERROR: ([a-z-]+): (read|write|read or write)(?: of size (\d+))? at (0x[0-9a-f]+)"
                         r"(?: by ([\w\[\] ]+)\(\))? \(thread (\d+)\)$")
HEAD_CALL = re.compile(r"^ERROR: ([a-z-]+): ([\w\[\] ]+)\(\) of (?:(0x[0-9a-f]+)|(\d+) bytes) \(thread (\d+)\)$")
# FUNCTION may hold spaces (demangled C++), so it ends at the last " (" or " FILE:LINE".
FRAME = re.compile(r"^ +#(\d+) (0x[0-9a-f]+) in (.+?) (?:\((.*)\)|(\S+:\d+))$")
BLOCK = re.compile(r"^ +(0x[0-9a-f]+) is (\d+) bytes (after|before|inside) a block of size (\d+) at (0x[0-9a-f]+)$")
WHO = re.compile(r"^ +(freed|allocated) by thread (\d+):$")
LEAK = re.compile(r"^LEAK: ([a-z-]+): (\d+) bytes in (\d+) blocks$")
SUM_PART = re.compile(r"(definitely lost|indirectly lost|possibly lost|still reachable): (\d+) bytes in (\d+) blocks")
HEAP_SUM = re.compile(r"^HEAP SUMMARY: in use at exit: (\d+) bytes in (\d+) blocks; total: (\d+) allocs, (\d+) frees, (\d+) bytes allocated$")
ERR_SUM = re.compile(r"^ERROR SUMMARY: (\d+) errors from (\d+) contexts(?: \(suppressed: (\d+) from (\d+)\))?$")


def parse(text):
    """Returns {"errors": [...], "leaks": [...], "leak_summary": {...}, "heap_summary": {...},
    "error_summary": {...}, "pids": set()}. Each error is a dict with kind, access, size, addr
    (None for a request), func, thread, stack (function names), frames ((pc, function, "module+0xoff" or "file:line")
    tuples), block
    (relation, distance, size, address) or None, detail, free_stack, alloc_stack, free_thread,
    alloc_thread, summary. Each leak: kind, bytes, blocks, stack."""
    out = {"errors": [], "leaks": [], "leak_summary": {}, "heap_summary": None,
           "error_summary": None, "pids": set()}
    cur = None      # the error or leak being read
    target = None   # the list its frames go to
    for raw in text.splitlines():
        m = LINE.match(raw)
        if not m:
            continue
        out["pids"].add(int(m.group(1)))
        body = m.group(2)
        h = HEAD_ACCESS.match(body)
        if h:
            cur = {"kind": h.group(1), "access": h.group(2), "size": int(h.group(3) or 0),
                   "addr": int(h.group(4), 16), "func": h.group(5), "thread": int(h.group(6))}
        else:
            h = HEAD_CALL.match(body)
            if h:
                cur = {"kind": h.group(1), "access": None, "size": int(h.group(4) or 0), "func": h.group(2),
                       "addr": int(h.group(3), 16) if h.group(3) else None, "thread": int(h.group(5))}
        if h:
            cur.update(stack=[], frames=[], block=None, detail=None, free_stack=[],
                       alloc_stack=[], free_thread=None, alloc_thread=None, summary=None)
            out["errors"].append(cur)
            target = cur["stack"]
            continue
        f = FRAME.match(body)
        if f and target is not None:
            target.append(f.group(3))
            if cur is not None and target is cur.get("stack"):
                cur["frames"].append((int(f.group(2), 16), f.group(3), f.group(4) or f.group(5)))
            continue
        b = BLOCK.match(body)
        if b and cur is not None and "block" in cur:
            cur["block"] = {"relation": b.group(3), "distance": int(b.group(2)),
                            "size": int(b.group(4)), "address": int(b.group(5), 16)}
            target = None
            continue
        w = WHO.match(body)
        if w and cur is not None and "block" in cur:
            cur["free_thread" if w.group(1) == "freed" else "alloc_thread"] = int(w.group(2))
            target = cur["free_stack" if w.group(1) == "freed" else "alloc_stack"]
            continue
        l = LEAK.match(body)
        if l:
            cur = {"kind": l.group(1), "bytes": int(l.group(2)), "blocks": int(l.group(3)), "stack": [],
                   "frames": []}
            out["leaks"].append(cur)
            target = cur["stack"]
            continue
        if body.startswith("SUMMARY: ") and cur is not None and "block" in cur:
            cur["summary"] = body[len("SUMMARY: "):]
            target = None
            continue
        if body.startswith("LEAK SUMMARY: "):
            for k, b_, n in SUM_PART.findall(body):
                out["leak_summary"][k] = (int(b_), int(n))
            target = None
            continue
        hs = HEAP_SUM.match(body)
        if hs:
            out["heap_summary"] = dict(zip(("bytes", "blocks", "allocs", "frees", "allocated"),
                                           map(int, hs.groups())))
            target = None
            continue
        es = ERR_SUM.match(body)
        if es:
            out["error_summary"] = {"errors": int(es.group(1)), "contexts": int(es.group(2))}
            target = None
            continue
        if cur is not None and "block" in cur and body.startswith("  ") and cur["detail"] is None:
            cur["detail"] = body.strip()
            target = None
    return out


FIELDS = {  # expectation keyword -> (label, how to read it from an error)
    "kind": ("kind", lambda e: e["kind"]),
    "access": ("access", lambda e: e["access"]),
    "size": ("size", lambda e: e["size"]),
    "func": ("func", lambda e: e["func"]),
    "thread": ("thread", lambda e: e["thread"]),
    "relation": ("relation", lambda e: (e["block"] or {}).get("relation")),
    "distance": ("distance", lambda e: (e["block"] or {}).get("distance")),
    "block_size": ("block size", lambda e: (e["block"] or {}).get("size")),
    "top": ("access stack #0", lambda e: (e["stack"] or ["(none)"])[0]),
    "alloc_top": ("allocated-by #0", lambda e: (e["alloc_stack"] or ["(none)"])[0]),
    "free_top": ("freed-by #0", lambda e: (e["free_stack"] or ["(none)"])[0]),
}


def _frame_matches(got, exp):
    # Without the command C++ names stay mangled: _ZL10drop_arrayPi holds drop_array.
    return got == exp or (got.startswith("_Z") and exp in got)


def mismatches(r, count=1, detail=None, **want):
    """Why the errors of report r (count of them; the first is checked) differ from the
    expected fields (keywords of FIELDS; None = not checked) and detail (a substring)."""
    errs = r["errors"]
    if len(errs) != count:
        return ["expected %d error(s), got %d: %s" % (count, len(errs), [(e["kind"], e["func"]) for e in errs])]
    e, why = errs[0], []
    for key, exp in want.items():
        if exp is None:
            continue
        label, read = FIELDS[key]
        got = read(e)
        if not (_frame_matches(got, exp) if key.endswith("top") else got == exp):
            why.append("%s: got %r, expected %r" % (label, got, exp))
    if detail is not None and detail not in (e["detail"] or ""):
        why.append("detail %r lacks %r" % (e["detail"], detail))
    return why
