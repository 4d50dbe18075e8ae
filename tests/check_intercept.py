#!/usr/bin/env python3
"""check_intercept.py — the libc interceptors of libheapguard-check.so: each bad call reported at
the call with its kind, access, size and block; uninitialized heap bytes in output; correct
calls silent and unchanged. Prints TAP. Usage: tests/check_intercept.py [BUILD_DIR]"""
import os
import re
import signal
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hgreport  # noqa: E402
from checklib import Tap, build, src  # noqa: E402
import checklib  # noqa: E402

HBO, UAF, UNINIT = "heap-buffer-overflow", "heap-use-after-free", "uninitialized-read"
OVERLAP = "param-overlap"

# (case, kind, access, func, size, relation, distance, block size, function of frame #0 of
#  both the access and the allocated-by stacks[, freed-by #0[, access #0 when it differs]])
ERRORS = [
    ("strcpy", HBO, "write", "strcpy", 10, "after", 0, 9, "duplicate"),
    ("memcpy", HBO, "write", "memcpy", 20, "after", 0, 16, "copy_bytes"),
    ("memcpy-before", HBO, "read", "memcpy", 8, "before", 4, 16, "copy_before"),
    ("memset", HBO, "write", "memset", 25, "after", 0, 24, "fill"),
    # a block of size 0: its first byte is past its end, as valgrind says it
    ("memset-empty", HBO, "write", "memset", 1, "after", 0, 0, "fill_empty"),
    ("strcat", HBO, "write", "strcat", 5, "after", 0, 8, "append"),
    ("strncat", HBO, "write", "strncat", 4, "after", 0, 8, "append_n"),
    ("strncpy", HBO, "write", "strncpy", 12, "after", 0, 8, "copy_n"),
    ("memmove", HBO, "write", "memmove", 16, "after", 0, 16, "shift"),
    ("strlen", HBO, "read", "strlen", 10, "after", 0, 9, "measure"),
    ("strdup", HBO, "read", "strdup", 7, "after", 0, 6, "clone_string"),
    ("memcmp", HBO, "read", "memcmp", 12, "after", 0, 8, "compare"),
    ("snprintf", HBO, "write", "snprintf", 13, "after", 0, 8, "format"),
    # wide characters: 13 of 4 bytes; through vswprintf the 9 that fit n = 10
    ("swprintf", HBO, "write", "swprintf", 52, "after", 0, 32, "wide_format"),
    ("vswprintf", HBO, "write", "vswprintf", 36, "after", 0, 32, "wide_vformat", None, "wide_vformat_into"),
    ("read", HBO, "write", "read", 16, "after", 0, 8, "read_into"),
    ("fgets", HBO, "write", "fgets", 16, "after", 0, 8, "read_line"),
    ("fread", HBO, "write", "fread", 16, "after", 0, 8, "read_block"),
    ("wcscpy", HBO, "write", "wcscpy", 20, "after", 0, 16, "wide_copy"),
    ("wmemset", HBO, "write", "wmemset", 20, "after", 0, 16, "wide_fill"),
    ("wmemcpy", HBO, "write", "wmemcpy", 24, "after", 0, 16, "wide_move"),
    ("use-after-free", UAF, "read", "memcpy", 8, "inside", 0, 16, "use_after_free", "release"),
    ("pread", HBO, "write", "pread", 16, "after", 0, 8, "pread_into"),
    ("recv", HBO, "write", "recv", 16, "after", 0, 8, "recv_into"),
    ("readv", HBO, "write", "readv", 16, "after", 0, 8, "readv_into"),
    ("getcwd", HBO, "write", "getcwd", 16, "after", 0, 8, "getcwd_into"),
    ("stat", HBO, "write", "stat", 144, "after", 0, 136, "stat_into"),
    ("writev", HBO, "read", "writev", 16, "after", 0, 8, "writev_from"),
    ("sprintf", HBO, "write", "sprintf", 11, "after", 0, 8, "print_into"),
    ("stpcpy", HBO, "write", "stpcpy", 10, "after", 0, 9, "copy_to_end"),
    ("mempcpy", HBO, "write", "mempcpy", 20, "after", 0, 16, "copy_bytes_to_end"),
    ("sscanf", HBO, "write", "sscanf", 12, "after", 0, 8, "scan_word"),
    ("fscanf", HBO, "write", "fscanf", 6, "after", 0, 4, "scan_chars"),
    ("fgets_unlocked", HBO, "write", "fgets_unlocked", 16, "after", 0, 8, "read_line_unlocked"),
    ("fread_unlocked", HBO, "write", "fread_unlocked", 16, "after", 0, 8, "read_block_unlocked"),
    # the first byte past the block decides: "abcdefgh" then the redzone, against "...i"
    ("strcmp", HBO, "read", "strcmp", 9, "after", 0, 8, "unterminated", None, "compare_past"),
    ("strncmp", HBO, "read", "strncmp", 9, "after", 0, 8, "unterminated", None, "compare_n_past"),
    ("strchr", HBO, "read", "strchr", 9, "after", 0, 8, "unterminated", None, "search_past"),
    ("strrchr", HBO, "read", "strrchr", 9, "after", 0, 8, "unterminated", None, "search_last_past"),
    ("memchr", HBO, "read", "memchr", 16, "after", 0, 8, "unterminated", None, "search_bytes_past"),
    ("strstr", HBO, "read", "strstr", 9, "after", 0, 8, "unterminated", None, "find_past"),
    ("strcasecmp", HBO, "read", "strcasecmp", 9, "after", 0, 8, "unterminated", None, "compare_case_past"),
    ("strnlen", HBO, "read", "strnlen", 9, "after", 0, 8, "unterminated", None, "measure_n_past"),
    # the destination is reported, inside its block; the source in the detail line
    ("memcpy-overlap", OVERLAP, "write", "memcpy", 20, "inside", 4, 64, "shift_in_place"),
    ("strcpy-overlap", OVERLAP, "write", "strcpy", 8, "inside", 0, 32, "unquote"),
]
# Uninitialized output: (case, func, size output from the block, offset of the first
# never-written byte = distance inside the block, block size, function)
UNINITS = [
    # (case, func, size: the never-written bytes from the first one on, within the output and
    # the block; distance; block size; frame #0)
    ("write", "write", 12, 4, 16, "emit_write"),
    ("fwrite", "fwrite", 32, 0, 32, "emit_fwrite"),
    ("puts", "puts", 13, 2, 16, "emit_puts"),
    ("printf", "printf", 10, 5, 16, "emit_printf"),
    ("fprintf", "fprintf", 3, 0, 8, "emit_fprintf"),
    ("copied", "write", 22, 2, 24, "emit_copied"),
    ("after-read", "write", 26, 6, 32, "emit_after_read"),
    ("one-byte", "write", 1, 5, 16, "emit_one_byte"),
    ("pwrite", "pwrite", 12, 4, 16, "emit_pwrite"),
    ("writev", "writev", 12, 4, 16, "emit_writev"),
    ("sendto", "sendto", 12, 4, 16, "emit_sendto"),
    ("sendmsg", "sendmsg", 12, 4, 16, "emit_sendmsg"),
    ("syslog", "syslog", 13, 2, 16, "emit_syslog"),
    ("warnx", "warnx", 13, 2, 16, "emit_warnx"),
    ("error", "error", 13, 2, 16, "emit_error"),
    ("fwrite_unlocked", "fwrite_unlocked", 32, 0, 32, "emit_fwrite_unlocked"),
    ("fputs_unlocked", "fputs_unlocked", 13, 2, 16, "emit_fputs_unlocked"),
    ("perror", "perror", 13, 2, 16, "emit_perror"),
    # wide output: 15 wide characters of 4 bytes, 2 written; a char string through %s
    ("fputws", "fputws", 52, 8, 64, "emit_fputws"),
    ("wprintf", "wprintf", 52, 8, 64, "emit_wprintf"),
    ("fwprintf", "fwprintf", 13, 2, 16, "emit_fwprintf"),
]
CLEAN = ["memory", "strings", "format", "input", "output", "binary", "wide-output"]
# Built with -O2 -D_FORTIFY_SOURCE=2, the program calls the _chk forms: (case, the _chk symbol,
# kind, access, func, size, relation, distance, block size, frame #0 of the access, of the
# allocation[, of the free])
FORTIFIED = [
    ("printf", "__printf_chk", UNINIT, "read", "printf", 10, "inside", 5, 16, "emit_printf", "emit_printf"),
    ("fprintf", "__fprintf_chk", UNINIT, "read", "fprintf", 3, "inside", 0, 8, "emit_fprintf", "emit_fprintf"),
    ("dprintf", "__dprintf_chk", UNINIT, "read", "dprintf", 13, "inside", 2, 16, "emit_dprintf", "emit_dprintf"),
    ("vfprintf", "__vfprintf_chk", UNINIT, "read", "vfprintf", 12, "inside", 3, 16, "say", "emit_vfprintf"),
    ("syslog", "__syslog_chk", UNINIT, "read", "syslog", 13, "inside", 2, 16, "emit_syslog", "emit_syslog"),
    ("wprintf", "__wprintf_chk", UNINIT, "read", "wprintf", 52, "inside", 8, 64, "emit_wprintf", "emit_wprintf"),
    ("snprintf", "__snprintf_chk", HBO, "write", "snprintf", 14, "after", 0, 8, "format", "format"),
    ("swprintf", "__swprintf_chk", HBO, "write", "swprintf", 56, "after", 0, 32, "wide_format", "wide_format"),
    ("sprintf", "__sprintf_chk", HBO, "write", "sprintf", 14, "after", 0, 8, "print_into", "print_into"),
    ("vsprintf", "__vsprintf_chk", HBO, "write", "vsprintf", 13, "after", 0, 8, "put", "vprint_into"),
    ("memcpy", "__memcpy_chk", HBO, "read", "memcpy", 24, "after", 0, 16, "copy_from", "copy_from"),
    ("memmove", "__memmove_chk", HBO, "read", "memmove", 24, "after", 0, 16, "move_from", "move_from"),
    ("strcpy", "__strcpy_chk", UAF, "read", "strcpy", 17, "inside", 0, 16, "copy_freed", "copy_freed",
     "copy_freed"),
    ("strcat", "__strcat_chk", HBO, "read", "strcat", 5, "after", 0, 4, "append_unterminated",
     "append_unterminated"),
    ("strncpy", "__strncpy_chk", HBO, "read", "strncpy", 5, "after", 0, 4, "copy_n_unterminated",
     "copy_n_unterminated"),
    ("mempcpy", "__mempcpy_chk", HBO, "read", "mempcpy", 24, "after", 0, 16, "mem_copy_to_end",
     "mem_copy_to_end"),
    ("wmemcpy", "__wmemcpy_chk", HBO, "read", "wmemcpy", 24, "after", 0, 16, "wide_copy_from", "wide_copy_from"),
    ("wmemmove", "__wmemmove_chk", HBO, "read", "wmemmove", 24, "after", 0, 16, "wide_move_from",
     "wide_move_from"),
    # a heap destination or source of a size the compiler knows, freed: used within that size
    ("wcscpy", "__wcscpy_chk", UAF, "read", "wcscpy", 68, "inside", 0, 64, "wide_copy_freed", "wide_copy_freed",
     "wide_copy_freed"),
    ("wcsncpy", "__wcsncpy_chk", UAF, "read", "wcsncpy", 24, "inside", 0, 64, "wide_copy_n_freed",
     "wide_copy_n_freed", "wide_copy_n_freed"),
    ("wcscat", "__wcscat_chk", UAF, "read", "wcscat", 36, "inside", 0, 32, "wide_append_freed",
     "wide_append_freed", "wide_append_freed"),
    ("wcsncat", "__wcsncat_chk", UAF, "read", "wcsncat", 24, "inside", 0, 32, "wide_append_n_freed",
     "wide_append_n_freed", "wide_append_n_freed"),
    ("memset", "__memset_chk", UAF, "write", "memset", 16, "inside", 0, 16, "clear_freed", "clear_freed",
     "clear_freed"),
    ("wmemset", "__wmemset_chk", UAF, "write", "wmemset", 16, "inside", 0, 16, "wide_clear_freed",
     "wide_clear_freed", "wide_clear_freed"),
    ("read", "__read_chk", UAF, "write", "read", 16, "inside", 0, 16, "read_freed", "read_freed", "read_freed"),
    ("pread", "__pread_chk", UAF, "write", "pread", 16, "inside", 0, 16, "pread_freed", "pread_freed",
     "pread_freed"),
    ("recv", "__recv_chk", UAF, "write", "recv", 16, "inside", 0, 16, "recv_freed", "recv_freed", "recv_freed"),
    ("fread", "__fread_chk", UAF, "write", "fread", 16, "inside", 0, 16, "fread_freed", "fread_freed",
     "fread_freed"),
    ("fgets", "__fgets_chk", UAF, "write", "fgets", 16, "inside", 0, 16, "fgets_freed", "fgets_freed",
     "fgets_freed"),
    ("getcwd", "__getcwd_chk", UAF, "write", "getcwd", 64, "inside", 0, 64, "getcwd_freed", "getcwd_freed",
     "getcwd_freed"),
    ("readlink", "__readlink_chk", UAF, "write", "readlink", 16, "inside", 0, 16, "readlink_freed",
     "readlink_freed", "readlink_freed"),
    ("memcpy-overlap", "__memcpy_chk", OVERLAP, "write", "memcpy", 20, "inside", 4, 64, "shift_in_place",
     "shift_in_place"),
]


def run(argv, preload=True):
    return checklib.run(argv, preload=preload)


def expect(r, kind, access, func, size, relation, distance, block_size, top, free_top=None, access_top=None):
    """Why the report r is not the one error expected (empty when it is). top: frame #0 of the
    allocation stack, and of the access stack unless access_top says otherwise."""
    errs = r["errors"]
    if len(errs) != 1:
        return ["expected 1 error, got %d: %s"
                % (len(errs), [(e["kind"], e["func"]) for e in errs])]
    why = hgreport.mismatches(r, kind=kind, access=access, func=func, size=size, relation=relation,
                              distance=distance, block_size=block_size, top=access_top or top, alloc_top=top,
                              free_top=free_top)
    e, b = errs[0], errs[0]["block"] or {}
    # addr is the first bad byte: the block start plus or minus the distance
    if b and e["addr"] != b["address"] + {"after": b["size"] + distance, "inside": distance,
                                          "before": -distance}[relation]:
        why.append("addr 0x%x does not match the block line" % e["addr"])
    return why


def main():
    tap = Tap()
    tap.plan(len(ERRORS) + 4 + 1 + 1 + len(UNINITS) + 2 * len(CLEAN) + 1 + len(FORTIFIED) + 4)
    # -w: gcc sees some of the bugs these programs commit on purpose
    errors, uninit, clean = (build(src(n + ".c"), ("-fno-builtin", "-w"))
                             for n in ("intercept_errors", "intercept_uninit", "intercept_clean"))

    for case, *exp in ERRORS:
        rc, out, err, r = run([errors, case])
        why = expect(r, *exp) + ([] if rc == 0 else ["exit status %d" % rc])
        tap.check("%s: %s by %s()" % (case, exp[0], exp[2]), why and why + err.splitlines()[:40])
    # a closed stdio or directory handle: reported, and the call fails instead of reading it
    for case, func, top, printed in (("fclose-twice", "fclose", "close_twice", "-1\n"),
                                     ("fgets-closed", "fgets", "read_closed", "null\n"),
                                     ("fprintf-closed", "fprintf", "print_closed", "-1\n"),
                                     ("readdir-closed", "readdir", "list_closed", "null\n")):
        rc, out, err, r = run([errors, case])
        why = hgreport.mismatches(r, kind=UAF, access="read", func=func, size=4, relation="inside", distance=0,
                                  top=top)
        why += [] if out == printed and rc == 0 else ["stdout %r, exit status %d" % (out, rc)]
        tap.check("%s: %s by %s(), which fails" % (case, UAF, func), why and why + err.splitlines()[:40])
    # a copy past the end of both blocks: two errors, two contexts (the write was counted as a
    # repeat of the read's context, from the same stack, and never shown)
    rc, out, err, r = run([errors, "memcpy-both"])
    r_read, r_write = dict(r, errors=r["errors"][:1]), dict(r, errors=r["errors"][1:])
    why = (hgreport.mismatches(r_read, kind=HBO, access="read", func="memcpy", size=48, relation="after",
                               distance=0, block_size=40, top="copy_both") +
           hgreport.mismatches(r_write, kind=HBO, access="write", func="memcpy", size=48, relation="after",
                               distance=0, block_size=40, top="copy_both") +
           ([] if r["error_summary"] == {"errors": 2, "contexts": 2} else ["summary %r" % r["error_summary"]]))
    tap.check("memcpy-both: a read and a write %s by one memcpy(), two contexts" % HBO,
              why and why + err.splitlines()[:40])
    # an overlap outside the heap: no block, the source in the detail line
    rc, out, err, r = run([errors, "memcpy-overlap-stack"])
    why = hgreport.mismatches(r, kind=OVERLAP, access="write", func="memcpy", size=16, top="shift_on_stack",
                              detail="the source, 16 bytes at 0x")
    e = r["errors"][0] if r["errors"] else {}
    why += [] if e.get("block", 1) is None else ["a block line for stack memory: %r" % (e.get("block"),)]
    m = re.search(r"the source, 16 bytes at (0x[0-9a-f]+),", e.get("detail") or "")
    why += [] if m and int(m.group(1), 16) == e.get("addr", 0) - 1 else ["the source is not the destination - 1"]
    tap.check("memcpy-overlap-stack: %s by memcpy() of stack memory" % OVERLAP, why and why + err.splitlines()[:40])
    for case, func, size, distance, block_size, top in UNINITS:
        rc, out, err, r = run([uninit, case])
        why = expect(r, UNINIT, "read", func, size, "inside", distance, block_size, top)
        tap.check("%s: %s by %s()" % (case, UNINIT, func), why and why + err.splitlines()[:40])
    # The same calls through their fortified forms (__printf_chk, __strncat_chk, ...) as well
    clean_fortified = build(src("intercept_clean.c"), ("-O2", "-D_FORTIFY_SOURCE=2", "-w"),
                            name="intercept_clean_fortified")
    for prog, case in [(p, c) for p in (clean, clean_fortified) for c in CLEAN]:
        rc0, plain, _, _ = run([prog, case], preload=False)
        rc, out, err, r = run([prog, case])
        why = ["%s: %s by %s()" % (e["kind"], e["access"], e["func"]) for e in r["errors"]]
        if "ERROR:" in err:
            why.append("an ERROR line")
        if r["error_summary"] is None:
            why.append("no ERROR SUMMARY: the library did not run")
        if out != plain or rc != rc0:
            why.append("stdout or status differs from the run without heapguard (%d/%d bytes)"
                       % (len(out), len(plain)))
        tap.check("clean %s%s: no report, same output" % (case, " (fortified)" if prog == clean_fortified else ""),
                  why and why + err.splitlines()[:40])

    # the GNU sscanf: %as allocates, so the overflow is the next conversion's
    gnu = build(src("scan_gnu.c"), ("-std=gnu89", "-fno-builtin", "-w"))
    rc, out, err, r = run([gnu])
    why = expect(r, HBO, "write", "sscanf", 12, "after", 0, 8, "main")
    why += [] if out == "2 first\n" else ["stdout %r" % out]
    tap.check("GNU sscanf: %as allocates, the next %s overflows", why and why + err.splitlines()[:40])

    # No tail calls or clones, so that each call keeps the frame the table names
    fortified = build(src("intercept_fortified.c"), ("-O2", "-D_FORTIFY_SOURCE=2", "-fno-optimize-sibling-calls",
                                                     "-fno-ipa-cp", "-w"))
    imported = subprocess.run(["nm", "-u", fortified], capture_output=True, text=True).stdout
    for case, sym, kind, access, func, size, relation, distance, block_size, top, alloc_top, *free_top in FORTIFIED:
        rc, out, err, r = run([fortified, case])
        why = [] if re.search(r"\b%s\b" % sym, imported) else ["the build does not call %s" % sym]
        why += hgreport.mismatches(r, kind=kind, access=access, func=func, size=size, relation=relation,
                                   distance=distance, block_size=block_size, top=top, alloc_top=alloc_top,
                                   free_top=free_top[0] if free_top else None)
        why += [] if rc == 0 else ["exit status %d" % rc]
        tap.check("fortified %s (%s): %s by %s()" % (case, sym, kind, func), why and why + err.splitlines()[:40])
    # Output of heapguard's own build (as, ld) is output like any other: the library's file must
    # not hold the fill word, or assembling and linking it would write never-written bytes.
    with open(os.path.join(checklib.ROOT, "include", "heapguard.h")) as f:
        word = struct.pack("<Q", int(re.search(r"define HEAPGUARD_UNINIT_WORD (0x[0-9a-f]+)", f.read()).group(1), 16))
    with open(checklib.LIB, "rb") as f:
        held = f.read().count(word)
    tap.check("the checking library's file does not hold the fill word", ["%d copies" % held] if held else [])

    # glibc's own check stays: a size the compiler knows to be too small still ends the process,
    # after the report of the bytes the call would have written (13 and the NUL into 8)
    for case, func, top in (("glibc-check", "snprintf", "glibc_check"), ("sprintf-known", "sprintf", "print_past_known")):
        rc, out, err, r = run([fortified, case])
        why = hgreport.mismatches(r, kind=HBO, access="write", func=func, size=14, relation="after", distance=0,
                                  block_size=8, top=top, alloc_top=top)
        why += [] if rc == -signal.SIGABRT else ["exit status %s, not SIGABRT" % rc]
        why += [] if "buffer overflow detected" in err else ["no message from glibc's check"]
        tap.check("fortified %s into a block of known size: reported, then glibc's check aborts" % func,
                  why and why + err.splitlines()[:40])
    # __memset_chk past a block of a size the compiler knows: the report, then glibc's abort
    rc, out, err, r = run([fortified, "memset-known"])
    why = hgreport.mismatches(r, kind=HBO, access="write", func="memset", size=20, relation="after", distance=0,
                              block_size=16, top="clear_past_known", alloc_top="clear_past_known")
    why += [] if rc == -signal.SIGABRT and "buffer overflow detected" in err else ["rc %s: not glibc's abort" % rc]
    tap.check("fortified memset past a block of known size: reported, then glibc's check aborts",
              why and why + err.splitlines()[:40])

    return tap.finish()


if __name__ == "__main__":
    sys.exit(main())
