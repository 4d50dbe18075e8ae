# Runs the benchmark workloads under glibc, the peer allocators and heapguard, and writes the results table.
"""Usage: python3 bench/run.py [--runs N] [--only NAME,...] [--allocators NAME,...] [--out FILE]

Normally started by `make bench` (RUNS=, ONLY= are passed through). Each
workload runs --runs times under every allocator, round-robin, through
build/bench/runone, which reports wall time and peak RSS. The table shows
medians; every single run is also written next to --out as runs.csv.
"""
import argparse
import csv
import datetime
import fnmatch
import math
import os
import shutil
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIBDIR = "/usr/lib/x86_64-linux-gnu"

# (name, library or None for glibc itself, Debian package that ships it).
PEERS = [
    ("glibc", None, "libc6"),
    ("jemalloc", f"{LIBDIR}/libjemalloc.so.2", "libjemalloc2"),
    ("mimalloc", f"{LIBDIR}/libmimalloc.so.2", "libmimalloc2.0"),
    ("tcmalloc", f"{LIBDIR}/libtcmalloc_minimal.so.4", "libtcmalloc-minimal4"),
]
SUBJECT = "heapguard"

# The interpreter is pinned so every allocator runs the same binary (a pyenv
# shim would add a shell and another exec under the preloaded allocator).
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
GCC = shutil.which("gcc") or "gcc"

# name, what it measures, command ({bin} = build/bench, {bench} = bench/), extra environment.
WORKLOADS = [
    ("churn-16", "malloc/free of 16 B, one at a time", "{bin}/churn 16 70000000", {}),
    ("churn-256", "malloc/free of 256 B, one at a time", "{bin}/churn 256 70000000", {}),
    ("batch-64", "1000 x malloc(64), then free them in order", "{bin}/churn 64 50000000 1000", {}),
    ("random-1t", "100k live slots, random 8 B-4 KiB (1/64 up to 64 KiB), replace a random slot",
     "{bin}/random 1 100000 1500000", {}),
    ("random-2t", "random-1t split over 2 threads", "{bin}/random 2 100000 1500000", {}),
    ("random-8t", "random-1t split over 8 threads", "{bin}/random 8 100000 1500000", {}),
    ("realloc", "strings grown by exact-size realloc to <=1 MiB, vectors doubled to <=2 MiB",
     "{bin}/realloc 3", {}),
    ("prodcons", "2 producers malloc, 2 consumers free, 64-block batches via a bounded queue",
     "{bin}/prodcons 2 2000000", {}),
    ("larson-4t", "larson: 4 threads replace random 16-512 B slots, arrays change hands each epoch",
     "{bin}/larson 4 8000 200000 20", {}),
    ("calloc-large", "calloc 1-25 MiB, 8 live, touch 1 page in 16", "{bin}/calloc_large 120 8", {}),
    ("calloc-dense", "calloc 1-25 MiB, 8 live, touch every page", "{bin}/calloc_large 60 8 4096", {}),
    ("tree", "binary tree of 2M 24 B nodes built and freed, 10 times", "{bin}/tree 21 10", {}),
    ("lists", "1M nodes of 16-128 B on 256 interleaved lists, freed list by list, twice",
     "{bin}/lists 256 1000000 2", {}),
    ("python", "python3 dict/list/string churn (pymalloc for small objects)",
     f"{PYTHON} {{bench}}/churn.py 6", {}),
    ("python-malloc", "the same with PYTHONMALLOC=malloc: every object via malloc",
     f"{PYTHON} {{bench}}/churn.py 6", {"PYTHONMALLOC": "malloc"}),
    ("gcc", "gcc -O2 -c of a generated C file of many functions (cc1 included)",
     f"{GCC} -O2 -c {{bin}}/big.c -o /dev/null", {}),
]
PAIR = ("pair", "warm malloc+free pair, 1M pairs x 11 repetitions per size",
        "{bin}/pair 1000000 11 16 32 64 128 256")

# The targets for heapguard, checked in the summary.
TARGET_TIME_GEOMEAN = 1.05
TARGET_TIME_WORST = 1.25
TARGET_RSS_WORST = 1.15
TARGET_PAIR_NS = 10.0


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5, help="runs per workload and allocator (default 5)")
    p.add_argument("--only", default="", help="comma-separated workload names or globs (pair included)")
    p.add_argument("--allocators", default="", help="comma-separated subset, e.g. glibc,jemalloc")
    p.add_argument("--build", default=os.path.join(ROOT, "build"), help="build directory")
    p.add_argument("--out", default="", help="results file (default BUILD/bench/results.md)")
    p.add_argument("--timeout", type=int, default=120, help="seconds before one run is killed")
    p.add_argument("--list", action="store_true", help="list the workloads and exit")
    return p.parse_args()


def select_workloads(only):
    names = [w[0] for w in WORKLOADS] + [PAIR[0]]
    if not only:
        return names
    patterns = [s.strip() for s in only.split(",") if s.strip()]
    chosen = [n for n in names if any(fnmatch.fnmatch(n, pat) for pat in patterns)]
    if not chosen:
        sys.exit(f"bench: --only {only!r} matches no workload; known: {' '.join(names)}")
    return chosen


def select_allocators(spec, build):
    allocs = PEERS + [(SUBJECT, os.path.join(os.path.abspath(build), "libheapguard.so"), None)]
    if spec:
        wanted = [s.strip() for s in spec.split(",") if s.strip()]
        unknown = set(wanted) - {a[0] for a in allocs}
        if unknown:
            sys.exit(f"bench: unknown allocator(s): {' '.join(sorted(unknown))}")
        allocs = [a for a in allocs if a[0] in wanted]
    for name, lib, pkg in allocs:
        if lib and not os.path.exists(lib):
            hint = f"install {pkg} (scripts/deps.sh {pkg})" if pkg else "run `make all`"
            sys.exit(f"bench: {name}: {lib} is missing: {hint}")
    # Preload a copy, so that a rebuild during the run cannot mix two versions in one table.
    snapshot = os.path.join(os.path.abspath(build), "bench", "libheapguard-under-test.so")
    for i, (name, lib, pkg) in enumerate(allocs):
        if name == SUBJECT:
            shutil.copyfile(lib, snapshot)
            allocs[i] = (name, snapshot, pkg)
    return allocs


def run_once(runone, lib, cmd, env_extra, timeout):
    """One measured run: (wall_s, maxrss_kib, cpu_s, status, workload stdout, stderr tail)."""
    argv = [runone, "-t", str(timeout)] + (["-p", lib] if lib else []) + ["--"] + cmd.split()
    env = dict(os.environ)
    for inherited in ("LD_PRELOAD", "PYTHONMALLOC"):
        env.pop(inherited, None)
    env.update(env_extra)
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, errors="replace")
    lines = proc.stdout.splitlines()
    if proc.returncode != 0 or not lines:
        sys.exit(f"bench: runone failed ({proc.returncode}): {proc.stderr.strip()}")
    wall, rss, cpu, status = lines[-1].split()
    return float(wall), int(rss), float(cpu), status, "\n".join(lines[:-1]), proc.stderr.strip()[-500:]


def report_failure(workload, allocator, status, err):
    print(f"bench: {workload} under {allocator}: {status}" + (f"\n{err}" if err else ""), file=sys.stderr)


class Cell:
    """All runs of one workload under one allocator."""

    def __init__(self):
        self.walls, self.rsss, self.outputs = [], [], []
        self.failure = None  # the first non-ok status from runone
        self.wrong = False   # output differs from the reference allocator's

    def ok(self):
        return self.failure is None and bool(self.walls)

    def time(self):
        return statistics.median(self.walls) if self.ok() else None

    def rss(self):
        return statistics.median(self.rsss) / 1024 if self.ok() else None

    def spread(self):
        """Interquartile range of the wall times over their median: how far apart
        the middle half of the runs lie, to judge a small ratio by."""
        if not self.ok() or len(self.walls) < 4:
            return None
        q1, _, q3 = statistics.quantiles(self.walls, n=4)
        return (q3 - q1) / statistics.median(self.walls)


def rotated(allocs, r):
    """Round-robin with the starting allocator rotated per run, so none always runs first."""
    k = r % len(allocs)
    return allocs[k:] + allocs[:k]


def bench_workload(name, cmd, env, allocs, args, runone, log):
    cells = {a[0]: Cell() for a in allocs}
    for r in range(args.runs):
        for aname, lib, _ in rotated(allocs, r):
            cell = cells[aname]
            if cell.failure:
                continue  # a crash or hang is reported once, not RUNS times
            wall, rss, cpu, status, out, err = run_once(runone, lib, cmd, env, args.timeout)
            if status != "ok":
                cell.failure = status
                report_failure(name, aname, status, err)
                continue
            cell.walls.append(wall)
            cell.rsss.append(rss)
            cell.outputs.append(out)
            log.writerow([name, aname, r + 1, f"{wall:.6f}", rss, f"{cpu:.6f}", status])
    # The workloads are deterministic: every allocator must print what the reference printed.
    ref = next((c.outputs[0] for c in cells.values() if c.ok()), None)
    for cell in cells.values():
        cell.wrong = cell.ok() and any(o != ref for o in cell.outputs)
    return cells


def bench_pair(cmd, allocs, args, runone):
    """Median over runs of each run's in-process median ns per pair: {alloc: {size: ns}}."""
    samples = {a[0]: {} for a in allocs}
    failures = {}
    for r in range(args.runs):
        for aname, lib, _ in rotated(allocs, r):
            if aname in failures:
                continue
            _, _, _, status, out, err = run_once(runone, lib, cmd, {}, args.timeout)
            if status != "ok":
                failures[aname] = status
                report_failure("pair", aname, status, err)
                continue
            for line in out.splitlines():
                _, size, ns = line.split()
                samples[aname].setdefault(int(size), []).append(float(ns))
    medians = {a: {s: statistics.median(v) for s, v in d.items()} for a, d in samples.items()}
    return medians, failures


def geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def fmt(x, digits=3):
    return "—" if x is None else f"{x:.{digits}f}"


def command_output(argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def load_average():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def describe_allocators(allocs):
    """Versions, taken when the run starts: the tree may change while it runs."""
    versions = []
    for name, _, pkg in allocs:
        if pkg:
            versions.append(f"{name} {command_output(['dpkg-query', '-W', '-f=${Version}', pkg]) or '?'}")
        else:
            rev = command_output(["git", "-C", ROOT, "describe", "--always", "--dirty"])
            versions.append(f"{name} {rev or '(no commit yet)'}")
    return versions


def machine_lines(versions, args, load_before):
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    u = os.uname()
    return [
        f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {u.sysname} {u.release} {u.machine}; CPU: {cpu}; {os.cpu_count()} CPUs; "
        f"{mem_kib / 1024 / 1024:.1f} GiB memory",
        f"- allocators: {', '.join(versions)}",
        f"- programs: {command_output([PYTHON, '--version'])} ({PYTHON}), gcc {command_output([GCC, '-dumpfullversion'])}",
        f"- method: {args.runs} run(s) per workload and allocator, allocators alternating "
        "(round-robin, the first one rotated each run); medians shown; peak RSS is the larger of "
        "the command's ru_maxrss and its children's (gcc's cc1)",
        f"- load average (1, 5, 15 min) before: {load_before}; after: {load_average()} "
        "(other work on the machine shows up as run spread)",
    ]


def bench_paths(build, out, default_name, tag, make_target):
    """(workload binaries' folder, runone, results file): runone must have been built, and the
    results file's folder is made."""
    bindir = os.path.join(os.path.abspath(build), "bench")
    runone = os.path.join(bindir, "runone")
    if not os.path.exists(runone):
        sys.exit(f"{tag}: {runone} is missing: run `{make_target}` (it builds the workloads)")
    out = out or os.path.join(bindir, default_name)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    return bindir, runone, out


def write_results(doc, out, tag):
    """Prints the results document (a list of lines) and writes it to out."""
    text = "\n".join(doc)
    print(text)
    with open(out, "w") as f:
        f.write(text)
    print(f"{tag}: wrote {out}", file=sys.stderr)


def cell_text(cell, value, digits):
    if cell.failure:
        return f"FAIL ({cell.failure})"
    text = fmt(value, digits)
    return text + " (wrong output)" if cell.wrong else text


def metric_table(title, unit_note, metric, digits, results, allocs, with_spread=False):
    """One table: a row per workload, then geomean and worst ratio to the best peer.
    with_spread adds the largest run-to-run spread of the row, to judge small ratios by."""
    names = [a[0] for a in allocs]
    peers = [n for n in names if n != SUBJECT]
    has_subject = SUBJECT in names
    head = ["workload"] + names + ([f"{SUBJECT} ÷ best peer"] if has_subject else [])
    head += ["run spread"] if with_spread else []
    lines = [f"## {title}", "", unit_note, "",
             "| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    ratios = {n: [] for n in names}  # (ratio, workload) per allocator
    for wname, cells in results:
        values = {n: metric(cells[n]) for n in names}
        peer_values = [values[n] for n in peers if values[n] is not None]
        best = min(peer_values) if peer_values else None
        row = [wname]
        for n in names:
            text = cell_text(cells[n], values[n], digits)
            if n in peers and values[n] is not None and values[n] == best:
                text = f"**{text}**"
            row.append(text)
            if values[n] is not None and best:
                ratios[n].append((values[n] / best, wname))
        if has_subject:
            v = values[SUBJECT]
            row.append(fmt(v / best, 2) + "×" if v is not None and best else "—")
        if with_spread:
            spreads = [c.spread() for c in cells.values() if c.spread() is not None]
            row.append(f"{100 * max(spreads):.0f}%" if spreads else "—")
        lines.append("| " + " | ".join(row) + " |")
    gm = ["**geomean ÷ best peer**"] + [fmt(geomean([r for r, _ in ratios[n]]), 2) for n in names]
    worst = ["**worst ÷ best peer**"] + [
        f"{max(ratios[n])[0]:.2f} ({max(ratios[n])[1]})" if ratios[n] else "—" for n in names]
    padding = [""] * (len(head) - len(gm))
    gm += padding
    worst += padding
    lines += ["| " + " | ".join(gm) + " |", "| " + " | ".join(worst) + " |", ""]
    return lines, ratios


def pair_table(medians, failures, allocs):
    names = [a[0] for a in allocs]
    sizes = sorted({s for d in medians.values() for s in d})
    lines = ["## Warm malloc+free pair (median ns per pair)", "",
             "`p = malloc(size); escape(p); free(p);` in one thread, timed in thread CPU time; "
             "median of 11 loops of 1M pairs inside the process, then the median over runs.", "",
             "| size (B) | " + " | ".join(names) + " |", "|---:" + "|---:" * len(names) + "|"]
    for s in sizes:
        row = [str(s)] + [f"FAIL ({failures[n]})" if n in failures else fmt(medians[n].get(s), 1)
                          for n in names]
        lines.append("| " + " | ".join(row) + " |")
    return lines + [""]


def targets(time_ratios, rss_ratios, pair, results):
    """The issue's targets for heapguard, measured against the best peer."""
    if SUBJECT not in time_ratios:
        return []
    lines = ["## heapguard against its targets", ""]
    failed = [w for w, cells in results if not cells[SUBJECT].ok() or cells[SUBJECT].wrong]
    if failed:
        lines.append(f"- failed or wrong output on: {', '.join(failed)} (left out of the ratios below)")

    def check(label, value, target, where=""):
        if value is None:
            return
        verdict = "met" if value <= target else "MISSED"
        lines.append(f"- {label}: {value:.2f}{where} (target ≤ {target:g}): {verdict}")

    good_time = [(r, w) for r, w in time_ratios[SUBJECT] if w not in failed]
    good_rss = [(r, w) for r, w in rss_ratios[SUBJECT] if w not in failed]
    check("time, geomean ÷ best peer", geomean([r for r, _ in good_time]), TARGET_TIME_GEOMEAN)
    if good_time:
        r, w = max(good_time)
        check("time, worst ÷ best peer", r, TARGET_TIME_WORST, f" on {w}")
    if good_rss:
        r, w = max(good_rss)
        check("peak RSS, worst ÷ smallest peer", r, TARGET_RSS_WORST, f" on {w}")
    if pair and pair[SUBJECT]:
        size, ns = max(pair[SUBJECT].items(), key=lambda kv: kv[1])
        check("warm pair, slowest size", ns, TARGET_PAIR_NS, f" ns at {size} B")
    return lines + [""]


def workload_list(chosen):
    lines = ["## Workloads", "", "| name | what | command |", "|---|---|---|"]
    for name, what, cmd, env in WORKLOADS + [PAIR + ({},)]:
        if name in chosen:
            envtext = "".join(f"{k}={v} " for k, v in env.items())
            shown = cmd.replace("{bin}", "build/bench").replace("{bench}", "bench")
            lines.append(f"| {name} | {what} | `{envtext}{shown}` |")
    return lines + [""]


def main():
    args = parse_args()
    if args.list:
        for name, what, *_ in WORKLOADS + [PAIR]:
            print(f"{name:14} {what}")
        return
    chosen = select_workloads(args.only)
    allocs = select_allocators(args.allocators, args.build)
    bindir, runone, out = bench_paths(args.build, args.out, "results.md", "bench", "make bench")

    def expand(cmd):
        return cmd.format(bin=bindir, bench=os.path.join(ROOT, "bench"))

    load_before = load_average()
    versions = describe_allocators(allocs)
    results = []
    with open(os.path.join(os.path.dirname(os.path.abspath(out)), "runs.csv"), "w", newline="") as f:
        log = csv.writer(f)
        log.writerow(["workload", "allocator", "run", "wall_s", "maxrss_kib", "cpu_s", "status"])
        for name, _, cmd, env in WORKLOADS:
            if name not in chosen:
                continue
            cells = bench_workload(name, expand(cmd), env, allocs, args, runone, log)
            results.append((name, cells))
            print(f"bench: {name:14} " + "  ".join(
                f"{a}={fmt(c.time())}s" if c.ok() else f"{a}=FAIL" for a, c in cells.items()),
                file=sys.stderr)
    pair, pair_failures = (bench_pair(expand(PAIR[2]), allocs, args, runone)
                           if PAIR[0] in chosen else (None, {}))

    doc = ["# heapguard benchmark results", ""] + machine_lines(versions, args, load_before) + [""]
    time_ratios = rss_ratios = {}
    if results:
        t_lines, time_ratios = metric_table(
            "Wall time (median seconds)",
            "Bold: the best peer. Ratios are to the best of glibc, jemalloc, mimalloc and tcmalloc "
            "on each workload; the geomean row is over workloads, for every allocator alike. "
            "Run spread: the largest interquartile range / median of any allocator on the row "
            "(needs RUNS >= 4).",
            Cell.time, 3, results, allocs, with_spread=True)
        r_lines, rss_ratios = metric_table(
            "Peak RSS (median MiB)", "Bold: the smallest peer; ratios as above.",
            Cell.rss, 1, results, allocs)
        doc += t_lines + r_lines
    if pair:
        doc += pair_table(pair, pair_failures, allocs)
    doc += targets(time_ratios, rss_ratios, pair, results)
    doc += workload_list(chosen)
    write_results(doc, out, "bench")


if __name__ == "__main__":
    main()
