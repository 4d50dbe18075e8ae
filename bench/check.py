# Runs scaled-down benchmark workloads under heapguard's checking modes and the other heap checkers, and writes the comparison table.
"""Usage: python3 bench/check.py [--runs N] [--only NAME,...] [--tools NAME,...] [--timeout S] [--out FILE]

Normally started by `make bench-check` and by `make bench` (after bench/run.py).
Every workload runs --runs times under every tool, the tools alternating
(round-robin, the first one rotated each run), through build/bench/runone,
which reports wall time and peak RSS. The table shows medians and their ratio
to plain glibc. The workloads are a subset of bench/run.py's, scaled down so
that valgrind (20-50x slower) and Electric Fence (up to 1000x on malloc churn)
can finish: a run that takes longer than --timeout is killed, and the cell
says "> TIMEOUT s". A tool whose package is missing shows "n/a"; a failed run
shows FAIL with its reason, listed under the tables. Every single run is
written next to --out as check-runs.csv.
"""
import argparse
import csv
import fnmatch
import os
import re
import shutil
import statistics
import subprocess
import sys

sys.dont_write_bytecode = True  # no bench/__pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  bench/run.py: workloads, runone driver, table helpers

ROOT = run.ROOT

# The workloads of this table: run.py's names (what they measure and their environment come
# from run.WORKLOADS), with smaller arguments. {bin} = build/bench, {bench} = bench/.
SCALED = [
    ("churn-256", "{bin}/churn 256 2000000"),
    ("random-1t", "{bin}/random 1 20000 100000"),
    ("larson-4t", "{bin}/larson 4 8000 20000 4"),
    ("tree", "{bin}/tree 18 2"),
    ("realloc", "{bin}/realloc 1 65536 65536"),
    ("calloc-large", "{bin}/calloc_large 60 8"),
    ("calloc-dense", "{bin}/calloc_large 30 8 4096"),
    ("python", f"{run.PYTHON} {{bench}}/churn.py 1"),
    ("python-malloc", f"{run.PYTHON} {{bench}}/churn.py 1"),
    # big-check.c: bench/gen_big_c.py with fewer functions than run.py's big.c (bench.mk).
    ("gcc", f"{run.GCC} -O2 -c {{bin}}/big-check.c -o /dev/null"),
]
# Real programs, against which the tighter time target applies.
PROGRAMS = {"python", "python-malloc", "gcc"}

# The targets for check mode, as ratios to plain glibc.
TARGET_TIME_PROGRAM = 1.5
TARGET_TIME_ALLOC = 3.0
TARGET_RSS = 2.0  # plus the quarantine
DEFAULT_QUARANTINE = 256 << 20  # used when `heapguard --help` does not say

BASELINE = "glibc"
CHECK = "heapguard check"
GUARD = "heapguard guard"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3, help="runs per workload and tool (default 3)")
    p.add_argument("--only", default="", help="comma-separated workload names or globs")
    p.add_argument("--tools", default="", help="comma-separated subset of the tool columns "
                   "(names as in --list, e.g. glibc,check,valgrind)")
    p.add_argument("--timeout", type=int, default=120, help="seconds before one run is killed (default 120)")
    p.add_argument("--quarantine", default="", help="heapguard --quarantine=SIZE for both heapguard "
                   "columns (default: heapguard's own default)")
    p.add_argument("--build", default=os.path.join(ROOT, "build"), help="build directory")
    p.add_argument("--out", default="", help="results file (default BUILD/bench/check-results.md)")
    p.add_argument("--list", action="store_true", help="list the workloads and tools and exit")
    return p.parse_args()


def workloads():
    """(name, what, scaled command, run.py's command, environment) for every workload here."""
    known = {w[0]: w for w in run.WORKLOADS}
    out = []
    for name, cmd in SCALED:
        _, what, full, env = known[name]
        out.append((name, what, cmd, full, env))
    return out


def select_workloads(only):
    names = [w[0] for w in workloads()]
    if not only:
        return names
    patterns = [s.strip() for s in only.split(",") if s.strip()]
    chosen = [n for n in names if any(fnmatch.fnmatch(n, pat) for pat in patterns)]
    if not chosen:
        # `make bench ONLY=pair` passes run.py's selection on: not an error when run.py knows it.
        others = [w[0] for w in run.WORKLOADS] + [run.PAIR[0]]
        if any(fnmatch.fnmatch(n, pat) for n in others for pat in patterns):
            print(f"bench-check: --only {only!r} selects none of this table's workloads "
                  f"({' '.join(names)}); nothing to do", file=sys.stderr)
            sys.exit(0)
        sys.exit(f"bench-check: --only {only!r} matches no workload; known: {' '.join(names)}")
    return chosen


def parse_size(text):
    m = re.fullmatch(r"\s*(\d+)\s*([kKmMgG]?)[iI]?[bB]?\s*", text)
    if not m:
        return None
    return int(m.group(1)) << {"": 0, "k": 10, "m": 20, "g": 30}[m.group(2).lower()]


def dpkg_file(pkg, pattern):
    """The first file of an installed Debian package whose path matches pattern, or None."""
    listing = run.command_output(["dpkg", "-L", pkg])
    for path in listing.splitlines():
        if re.search(pattern, path) and os.path.exists(path):
            return path
    return None


class Tool:
    """One column: how a workload runs under it, or why it does not.

    key: the short name for --tools; pkg: the Debian package (version, and the n/a hint);
    missing: why the tool cannot run at all, or None; wrap(name, cmd) returns
    (LD_PRELOAD library or None, command) or a string saying why this workload is n/a.
    """

    def __init__(self, name, key, pkg, how, wrap, missing=None):
        self.name, self.key, self.pkg, self.how, self.wrap, self.missing = name, key, pkg, how, wrap, missing


def make_tools(build, quarantine):
    build = os.path.abspath(build)
    bindir = os.path.join(build, "bench")
    tools = [Tool(BASELINE, "glibc", "libc6", "plain: no preload", lambda n, c: (None, c))]

    # heapguard through its command. A snapshot of the command and the checking library, so that
    # a rebuild during the run cannot mix two versions in one table; the command finds the
    # library next to itself.
    hg, hglib = os.path.join(build, "heapguard"), os.path.join(build, "libheapguard-check.so")
    snapdir = os.path.join(bindir, "check-under-test")
    missing = None
    if not os.path.exists(hg) or not os.path.exists(hglib):
        missing = "n/a (not built: run `make all`)"
    else:
        os.makedirs(snapdir, exist_ok=True)
        for src in (hg, hglib):
            dst = os.path.join(snapdir, os.path.basename(src))
            shutil.copyfile(src, dst + ".tmp")
            os.chmod(dst + ".tmp", 0o755)
            os.replace(dst + ".tmp", dst)
    snap = os.path.join(snapdir, "heapguard")
    q = f" --quarantine={quarantine}" if quarantine else ""
    tools.append(Tool(CHECK, "check", None, f"`build/heapguard --leak-check=full{q} -- CMD` (a copy of the command and library taken at the start: build/bench/check-under-test/)",
                      lambda n, c: (None, f"{snap} --leak-check=full{q} -- {c}"), missing))
    tools.append(Tool(GUARD, "guard", None, f"`build/heapguard --guard=all{q} -- CMD` (the same copy)",
                      lambda n, c: (None, f"{snap} --guard=all{q} -- {c}"), missing))

    vg = shutil.which("valgrind")
    # --trace-children: gcc's work is done in cc1, a child of the driver; the other
    # workloads start no children.
    tools.append(Tool("valgrind memcheck", "valgrind", "valgrind",
                      "`valgrind --tool=memcheck --leak-check=full -q --trace-children=yes CMD`",
                      lambda n, c: (None, f"{vg} --tool=memcheck --leak-check=full -q --trace-children=yes {c}"),
                      None if vg else "n/a (package missing)"))

    for name, key, pkg, pattern in (("Electric Fence", "efence", "electric-fence", r"/libefence\.so\.0$"),
                                    ("DUMA", "duma", "duma", r"/libduma\.so\.0$")):
        lib = dpkg_file(pkg, pattern)
        tools.append(Tool(name, key, pkg, f"`LD_PRELOAD={lib or '(' + pkg + ')'} CMD`, default settings",
                          lambda n, c, lib=lib: (lib, c), None if lib else "n/a (package missing)"))

    # AddressSanitizer: the C workloads rebuilt with -fsanitize=address (bench.mk); python and gcc
    # would need their own rebuild.
    asandir = os.path.join(bindir, "asan")

    def asan(name, cmd):
        if not cmd.startswith("{bin}/"):
            return "n/a (not rebuilt)"
        prog = cmd.split()[0].replace("{bin}/", "")
        if not os.path.exists(os.path.join(asandir, prog)):
            return "n/a (not built: run `make bench-check-bins`)"
        return None, cmd.replace("{bin}/", asandir + "/", 1)

    tools.append(Tool("ASan", "asan", "libasan8",
                      "the C workloads rebuilt with `-fsanitize=address -O2 -g` (build/bench/asan/), "
                      "default ASAN_OPTIONS (leak check at exit included)", asan))
    return tools


def select_tools(tools, spec):
    if not spec:
        return tools
    wanted = [s.strip() for s in spec.split(",") if s.strip()]
    keys = {t.key for t in tools} | {t.name for t in tools}
    unknown = [w for w in wanted if w not in keys]
    if unknown:
        sys.exit(f"bench-check: unknown tool(s): {' '.join(unknown)}; known: {' '.join(t.key for t in tools)}")
    chosen = [t for t in tools if t.key in wanted or t.name in wanted]
    if not any(t.name == BASELINE for t in chosen):
        chosen.insert(0, tools[0])  # the ratios need the baseline
    return chosen


def quarantine_bytes(snap, override):
    """The quarantine heapguard holds in these runs: --quarantine, or the default its --help names."""
    if override:
        size = parse_size(override)
        if size is None:
            sys.exit(f"bench-check: --quarantine {override!r}: expected a size like 64M")
        return size
    if os.path.exists(snap):
        m = re.search(r"--quarantine=SIZE.*?\(default (\w+)\)", run.command_output([snap, "--help"]))
        if m and parse_size(m.group(1)) is not None:
            return parse_size(m.group(1))
    return DEFAULT_QUARANTINE


def failure_reason(status, err):
    """The status and the most telling stderr line of a failed run: the first that names an
    error, else the last one."""
    lines = [l.strip() for l in err.splitlines() if l.strip()]
    telling = [l for l in lines if re.search(r"error|fail|fatal|abort|exiting|cannot|ERROR|SUMMARY", l, re.I)]
    line = (telling or lines or [""])[0 if telling else -1]
    return status + (f": {line[:200]}" if line else "")


def measure(runone, lib, cmd, env, timeout):
    """run.run_once, with a failure of runone itself as one more failed status, never an exit."""
    try:
        return run.run_once(runone, lib, cmd, env, timeout)
    except SystemExit as e:
        return 0.0, 0, 0.0, "runone-failed", "", str(e.code)


def bench_workload(name, cmd, env, tools, cmds, args, runone, log, failures):
    """Every run of one workload: {tool name: run.Cell}. cmds: {tool name: (lib, cmd) or n/a text}."""
    cells = {t.name: run.Cell() for t in tools}
    ready = [t for t in tools if not isinstance(cmds[t.name], str)]
    for r in range(args.runs):
        for tool in run.rotated(ready, r):
            cell = cells[tool.name]
            if cell.failure:
                continue  # a crash or a timeout is reported once, not RUNS times
            lib, tcmd = cmds[tool.name]
            wall, rss, cpu, status, out, err = measure(runone, lib, tcmd, env, args.timeout)
            log.writerow([name, tool.name, r + 1, f"{wall:.6f}", rss, f"{cpu:.6f}", status])
            if status != "ok":
                cell.failure = status
                if status != "timeout":
                    failures.append((name, tool.name, failure_reason(status, err)))
                run.report_failure(name, tool.name, status, err)
                continue
            cell.walls.append(wall)
            cell.rsss.append(rss)
            cell.outputs.append(out)
    # The workloads are deterministic: every tool must print what glibc printed.
    ref = next((c.outputs[0] for c in cells.values() if c.ok()), None)
    for cell in cells.values():
        cell.wrong = cell.ok() and any(o != ref for o in cell.outputs)
    return cells


def ratio_text(r):
    return f"{r:.1f}×" if r >= 10 else f"{r:.2f}×"


def cell_text(tool, na, cell, value, base, digits, timeout, is_time):
    """A table cell: value and ratio to glibc, or n/a, FAIL, timeout."""
    if na:
        return na
    if cell.failure == "timeout":
        if is_time:
            return f"> {timeout} s" + (f" (> {ratio_text(timeout / base)})" if base else "")
        return "timeout"
    if cell.failure:
        return f"FAIL ({cell.failure})"
    text = run.fmt(value, digits)
    if tool != BASELINE and value is not None and base:
        text += f" ({ratio_text(value / base)})"
    return text + " (wrong output)" if cell.wrong else text


def metric_table(title, note, metric, digits, results, tools, na, timeout, is_time):
    names = [t.name for t in tools]
    lines = [f"## {title}", "", note, "",
             "| workload | " + " | ".join(names) + " |", "|---" + "|---:" * len(names) + "|"]
    ratios = {n: [] for n in names}
    for wname, cells in results:
        base_cell = cells[BASELINE]
        base = metric(base_cell) if base_cell.ok() else None
        row = [wname]
        for n in names:
            cell = cells[n]
            value = metric(cell) if cell.ok() else None
            row.append(cell_text(n, na[wname][n], cell, value, base, digits, timeout, is_time))
            if value is not None and base and not cell.wrong:
                ratios[n].append(value / base)
        lines.append("| " + " | ".join(row) + " |")
    gm = ["**geomean ÷ glibc**"]
    for n in names:
        g = run.geomean(ratios[n])
        gm.append("—" if g is None else f"{ratio_text(g)} ({len(ratios[n])} of {len(results)})")
    lines += ["| " + " | ".join(gm) + " |", ""]
    return lines


def targets_table(results, quarantine):
    """heapguard check against the issue's targets, workload by workload."""
    qmib = quarantine / (1 << 20)
    lines = ["## heapguard check against the targets", "",
             f"Targets (ratios to plain glibc): wall time ≤ {TARGET_TIME_PROGRAM:g}× on the python3 and "
             f"gcc workloads, ≤ {TARGET_TIME_ALLOC:g}× on the allocation-bound ones; peak RSS ≤ "
             f"{TARGET_RSS:g}× glibc's plus the quarantine ({qmib:g} MiB: freed blocks held back "
             "before reuse).", "",
             "| workload | kind | time ÷ glibc | time target | met | RSS MiB | RSS limit MiB | met |",
             "|---|---|---:|---:|---|---:|---:|---|"]
    missed, measured = [], 0
    for wname, cells in results:
        base, check = cells[BASELINE], cells[CHECK]
        program = wname in PROGRAMS
        kind = "program" if program else "allocation-bound"
        target = TARGET_TIME_PROGRAM if program else TARGET_TIME_ALLOC
        if not base.ok() or not (check.ok() or check.failure):
            lines.append(f"| {wname} | {kind} | — | ≤ {target:g}× | not measured | — | — | not measured |")
            continue
        measured += 1
        if not check.ok() or check.wrong:
            why = "wrong output" if check.wrong else check.failure
            lines.append(f"| {wname} | {kind} | {why} | ≤ {target:g}× | MISSED | — | — | MISSED |")
            missed.append(f"{wname} ({why})")
            continue
        t = check.time() / base.time()
        limit = TARGET_RSS * base.rss() + qmib
        t_ok, r_ok = t <= target, check.rss() <= limit
        lines.append(f"| {wname} | {kind} | {ratio_text(t)} | ≤ {target:g}× | {'met' if t_ok else 'MISSED'} | "
                     f"{check.rss():.1f} | {limit:.1f} | {'met' if r_ok else 'MISSED'} |")
        if not t_ok:
            missed.append(f"{wname} time {ratio_text(t)}")
        if not r_ok:
            missed.append(f"{wname} RSS {check.rss():.1f} MiB")
    lines.append("")
    if measured == 0:
        lines.append("- not measured: heapguard check did not run")
    elif missed:
        lines.append(f"- measured on {measured} of {len(results)} workloads; MISSED: {', '.join(missed)}")
    else:
        lines.append(f"- measured on {measured} of {len(results)} workloads: all targets met")
    return lines + [""]


def failure_list(failures, timeouts, timeout):
    if not failures and not timeouts:
        return []
    lines = ["## Failed runs", ""]
    for wname, tool, reason in failures:
        lines.append(f"- {tool} on {wname}: {reason}")
    if timeouts:
        lines.append(f"- killed after {timeout} s (shown as > {timeout} s): "
                     + ", ".join(f"{t} on {w}" for w, t in timeouts))
    return lines + ["- a failed or timed-out run is not repeated in later runs", ""]


def workload_list(chosen):
    lines = ["## Workloads", "",
             "run.py's workloads (`make bench`), scaled down so that the slow checkers finish.", "",
             "| name | what (run.py's workload) | command here | run.py's command |", "|---|---|---|---|"]
    for name, what, cmd, full, env in workloads():
        if name in chosen:
            envtext = "".join(f"{k}={v} " for k, v in env.items())

            def shown(c):
                return "`" + envtext + c.replace("{bin}", "build/bench").replace("{bench}", "bench") + "`"
            lines.append(f"| {name} | {what} | {shown(cmd)} | {shown(full)} |")
    return lines + [""]


def tool_list(tools, versions):
    lines = ["## Tools", "", "| column | how CMD runs | version |", "|---|---|---|"]
    for t, v in zip(tools, versions):
        v = v[len(t.name):].strip() if v.startswith(t.name) else v
        lines.append(f"| {t.name} | {t.how} | {t.missing or v} |")
    return lines + [""]


def main():
    args = parse_args()
    tools = make_tools(args.build, args.quarantine) if not args.list else []
    if args.list:
        for name, what, cmd, *_ in workloads():
            print(f"{name:14} {what}")
        print("tools: glibc check guard valgrind efence duma asan")
        return
    chosen = select_workloads(args.only)
    tools = select_tools(tools, args.tools)
    bindir, runone, out = run.bench_paths(args.build, args.out, "check-results.md", "bench-check",
                                          "make bench-check")
    quarantine = quarantine_bytes(os.path.join(bindir, "check-under-test", "heapguard"), args.quarantine)
    # Only the settings each column names: none inherited from the caller's environment.
    for var in ("HEAPGUARD_OPTIONS", "ASAN_OPTIONS", "LSAN_OPTIONS", "MALLOC_CHECK_", "MALLOC_PERTURB_"):
        os.environ.pop(var, None)
    for var in [v for v in os.environ if v.startswith(("EF_", "DUMA_", "VALGRIND_"))]:
        os.environ.pop(var)

    def expand(cmd):
        return cmd.format(bin=bindir, bench=os.path.join(ROOT, "bench"))

    load_before = run.load_average()
    versions = run.describe_allocators([(t.name, None, t.pkg) for t in tools])
    results, na, failures, timeouts = [], {}, [], []
    with open(os.path.join(os.path.dirname(os.path.abspath(out)), "check-runs.csv"), "w", newline="") as f:
        log = csv.writer(f)
        log.writerow(["workload", "tool", "run", "wall_s", "maxrss_kib", "cpu_s", "status"])
        for name, _, cmd, _, env in workloads():
            if name not in chosen:
                continue
            cmds = {}
            for t in tools:
                wrapped = t.missing or t.wrap(name, cmd)
                cmds[t.name] = wrapped if isinstance(wrapped, str) else (wrapped[0], expand(wrapped[1]))
            na[name] = {t.name: cmds[t.name] if isinstance(cmds[t.name], str) else None for t in tools}
            cells = bench_workload(name, cmd, env, tools, cmds, args, runone, log, failures)
            timeouts += [(name, n) for n, c in cells.items() if c.failure == "timeout"]
            results.append((name, cells))
            print(f"bench-check: {name:14} " + "  ".join(
                f"{n}={run.fmt(c.time())}s" if c.ok() else f"{n}={c.failure or 'n/a'}"
                for n, c in cells.items()), file=sys.stderr)

    machine = [l.replace("allocators", "tools").replace("allocator", "tool")
               for l in run.machine_lines([v for t, v in zip(tools, versions) if t.name != GUARD],
                                          args, load_before)]
    doc = ["# heapguard checkers benchmark results", ""] + machine + [
        f"- each run is killed after {args.timeout} s (--timeout); heapguard's quarantine: "
        f"{quarantine / (1 << 20):g} MiB", ""]
    doc += metric_table(
        "Wall time (median seconds; ratio to glibc)",
        "Ratios are to plain glibc on the same workload; the geomean row is over the workloads the "
        "tool completed with the right output (how many of them in brackets).",
        run.Cell.time, 3, results, tools, na, args.timeout, True)
    doc += metric_table(
        "Peak RSS (median MiB; ratio to glibc)",
        "The larger of the command's ru_maxrss and its children's (gcc's cc1); valgrind's includes "
        "its own memory.",
        run.Cell.rss, 1, results, tools, na, args.timeout, False)
    if any(t.name == CHECK for t in tools):
        doc += targets_table(results, quarantine)
    doc += failure_list(failures, timeouts, args.timeout)
    doc += ["## Notes", "",
            "- A timed-out cell is a lower bound: the run was killed at the timeout and not repeated.",
            "- Every tool runs with its own defaults, as a user would start it; only heapguard's leak "
            "check and guard settings are named. Leak reports and error reports go to stderr and count "
            "in the time; the workloads' output (stdout) must match glibc's, or the cell says so.",
            "- Run spread is not shown: on a shared machine single runs of the fast columns move by "
            "10-30 %; the ratios here are mostly far larger than that.", ""]
    doc += workload_list(chosen) + tool_list(tools, versions)
    run.write_results(doc, out, "bench-check")


if __name__ == "__main__":
    main()
