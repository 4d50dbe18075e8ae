# Thread scaling: throughput of the cross-thread workloads at 1..N threads under every allocator, one run.
"""Usage: python3 bench/scale.py [--threads 1,2,4,8,16] [--runs N] [--workloads W,..] [--libdir DIR] [--out FILE] [--checked]

Normally started by `make bench-scale`. Weak scaling: every thread does the same work
whatever the thread count, so an allocator that scales perfectly keeps the time flat and
its throughput grows with the threads. Each workload times its threaded phase itself and
prints `ops=N seconds=S` on stderr; throughput is ops / seconds. Allocators alternate
(round-robin, first one rotated per run); medians of --runs runs.

--checked measures check mode instead: glibc beside the checking library
(libheapguard-check.so, no leak check, no summary), on xthread and larson with less work per
thread (CHECKED_COMMANDS); no target. Where libunwind8 is missing (the lent machines), carry
libunwind.so.8 and point LD_LIBRARY_PATH at it.

The issue's target (on a 16-core machine): heapguard's throughput at 16 threads is at least
12x its throughput at 1 thread on both workloads. Peer libraries are looked up in --libdir
(default: Debian's), so a copy can be carried to a machine without the packages;
DIR/VERSIONS (lines `name version`) names their versions there.
"""
import argparse
import csv
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402  (bench/run.py: runone, allocator list, machine description)

WORKLOADS = [
    ("xthread", "ring of threads: each allocates 64-block batches (16 B-1 KiB, 1/16 up to 8 KiB) "
     "and passes them to the next thread, which frees them; 1 thread frees its own",
     "{bin}/xthread {n} 8000000"),
    ("larson", "larson: each thread replaces random 16-512 B slots of an 8000-slot array, "
     "arrays change hands every epoch, so most frees are of another thread's blocks",
     "{bin}/larson {n} 8000 200000 20"),
    # Not a target: the same work with no hand-off, so what the machine and the allocator
    # give when no block crosses threads, against which the two above can be read.
    ("larson-local", "control: larson with each thread keeping its own array, so every free "
     "is of the thread's own block (no target)",
     "{bin}/larson {n} 8000 200000 20 0"),
    ("larson-l1", "control: larson-local with 64 slots per thread, so each thread's blocks stay in "
     "its core's first-level cache and memory is out of the picture (no target)",
     "{bin}/larson {n} 64 1000000 20 0"),
    ("cpu", "control: no allocation at all, each thread steps a PRNG in registers, so what the "
     "machine gives 16 threads of plain computation (ops: million PRNG steps, not pairs; "
     "no target)",
     "{bin}/cpu {n} 600000000"),
]
CONTROLS = {"larson-local", "larson-l1", "cpu"}
# --checked: the same workloads with a tenth to an eighth of the work, the checking library's
# environment, and glibc beside it.
CHECKED_COMMANDS = {
    "xthread": "{bin}/xthread {n} 1000000",
    "larson": "{bin}/larson {n} 8000 100000 4",
    "larson-local": "{bin}/larson {n} 8000 100000 4 0",
}
CHECKED_ENV = {"HEAPGUARD_OPTIONS": "quiet=1:leak_check=no"}
TARGET_SPEEDUP = 12.0
TARGET_THREADS = 16


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", default="1,2,4,8,16", help="comma-separated thread counts")
    p.add_argument("--runs", type=int, default=3, help="runs per point and allocator (default 3)")
    p.add_argument("--allocators", default="", help="comma-separated subset, e.g. glibc,heapguard")
    p.add_argument("--workloads", default="", help="comma-separated subset, e.g. larson,larson-local")
    p.add_argument("--also", action="append", default=[], metavar="NAME=LIB",
                   help="one more library to preload, e.g. an older heapguard build to compare with")
    p.add_argument("--libdir", default=bench.LIBDIR, help="where the peer libraries are")
    p.add_argument("--build", default=os.path.join(bench.ROOT, "build"), help="build directory")
    p.add_argument("--out", default="", help="results file (default BUILD/bench/scale-results.md)")
    p.add_argument("--timeout", type=int, default=120, help="seconds before one run is killed")
    p.add_argument("--checked", action="store_true", help="check mode: glibc and the checking library")
    return p.parse_args()


def allocators(args):
    allocs = [(name, lib and os.path.join(args.libdir, os.path.basename(lib)), pkg)
              for name, lib, pkg in bench.PEERS]
    lib = "libheapguard-check.so" if args.checked else "libheapguard.so"
    allocs.append((bench.SUBJECT, os.path.join(os.path.abspath(args.build), lib), None))
    if args.checked:
        allocs = [a for a in allocs if a[0] in ("glibc", bench.SUBJECT)]
    if args.allocators:
        wanted = {s.strip() for s in args.allocators.split(",") if s.strip()}
        allocs = [a for a in allocs if a[0] in wanted]
    for spec in args.also:
        name, sep, lib = spec.partition("=")
        if not sep or not name or not lib:
            sys.exit(f"scale: --also {spec!r}: expected NAME=LIB")
        allocs.append((name, os.path.abspath(lib), None))
    for name, lib, _ in allocs:
        if lib and not os.path.exists(lib):
            sys.exit(f"scale: {name}: {lib} is missing (install the package or pass --libdir)")
    return allocs


def versions(allocs, libdir):
    known = {}
    path = os.path.join(libdir, "VERSIONS")
    if os.path.exists(path):
        with open(path) as f:
            known = dict(line.split(None, 1) for line in f.read().splitlines() if line.strip())
    out = []
    peer_names = {p[0] for p in bench.PEERS}
    for name, lib, pkg in allocs:
        v = known.get(name, "").strip()
        if not v and name not in peer_names and name != bench.SUBJECT:
            v = f"({lib})"  # an --also library
        if not v and pkg:
            v = bench.command_output(["dpkg-query", "-W", "-f=${Version}", pkg])
        if not v and pkg == "libc6":
            v = os.confstr("CS_GNU_LIBC_VERSION")
        if not v and not pkg:
            v = bench.command_output(["git", "-C", bench.ROOT, "describe", "--always", "--dirty"])
        out.append(f"{name} {v or '?'}")
    return out


def throughput(err):
    """Mops/s from the workload's `ops=N seconds=S` line (its last stderr line)."""
    fields = dict(kv.split("=", 1) for kv in err.splitlines()[-1].split())
    return int(fields["ops"]) / float(fields["seconds"]) / 1e6


def measure(name, cmd, threads, allocs, args, runone, log, log_file):
    """{allocator: {threads: [Mops/s per run]}}; a failed allocator is reported and left out."""
    res = {a[0]: {n: [] for n in threads} for a in allocs}
    failed = set()
    for n in threads:
        argv = cmd.format(bin=os.path.join(os.path.abspath(args.build), "bench"), n=n)
        for r in range(args.runs):
            for aname, lib, _ in bench.rotated(allocs, r):
                if aname in failed:
                    continue
                env = CHECKED_ENV if args.checked and lib else {}  # every library but glibc
                wall, rss, cpu, status, _, err = bench.run_once(runone, lib, argv, env, args.timeout)
                if status != "ok":
                    failed.add(aname)
                    bench.report_failure(f"{name} {n}t", aname, status, err)
                    continue
                mops = throughput(err)
                res[aname][n].append(mops)
                log.writerow([name, n, aname, r + 1, f"{mops:.3f}", f"{wall:.6f}", rss, f"{cpu:.6f}"])
                log_file.flush()  # a run cut short by a time limit keeps what it measured
        print(f"scale: {name} {n:2}t " + "  ".join(
            f"{a}={statistics.median(v[n]):.1f}" for a, v in res.items() if v[n]) + " Mops/s",
            file=sys.stderr)
    return res, failed


def medians(res):
    return {a: {n: statistics.median(v) for n, v in d.items() if v} for a, d in res.items()}


def table(name, what, res, failed, threads, allocs):
    """res: {allocator: {threads: [Mops/s per run]}}."""
    med = medians(res)
    names = [a[0] for a in allocs]
    peers = [n for n in names if n in {p[0] for p in bench.PEERS}]
    lines = [f"## {name}", "", what + ".", "",
             "Throughput in million malloc+free pairs per second (median), and in brackets the "
             "speedup over the same allocator at 1 thread. Bold: the best peer. Run spread: the "
             "largest max/min of one allocator's runs on the row; ratios inside it are noise.", "",
             "| threads | " + " | ".join(names) + " | heapguard ÷ best peer | run spread |",
             "|---:" + "|---:" * (len(names) + 2) + "|"]
    for n in threads:
        best = max((med[p][n] for p in peers if n in med[p]), default=None)
        row = [str(n)]
        for a in names:
            if a in failed or n not in med[a]:
                row.append("FAIL" if a in failed else "—")
                continue
            text = f"{med[a][n]:.1f}"
            if a in peers and med[a][n] == best:
                text = f"**{text}**"
            base = med[a].get(threads[0])
            row.append(f"{text} ({med[a][n] / base:.1f}×)" if base else text)
        hg = med.get(bench.SUBJECT, {}).get(n)
        row.append(f"{hg / best:.2f}×" if hg and best else "—")
        spreads = [max(d[n]) / min(d[n]) for d in res.values() if len(d.get(n, [])) > 1]
        row.append(f"{max(spreads):.2f}×" if spreads else "—")
        lines.append("| " + " | ".join(row) + " |")
    return lines + [""]


def main():
    args = parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    allocs = allocators(args)
    _, runone, out = bench.bench_paths(args.build, args.out, "scale-results.md", "scale", "make bench-bins")
    load_before = bench.load_average()
    vers = versions(allocs, args.libdir)
    doc = ["# heapguard thread-scaling results" + (": check mode" if args.checked else ""), ""]
    workloads = [(name, what, CHECKED_COMMANDS[name]) for name, what, _ in WORKLOADS
                 if name in CHECKED_COMMANDS] if args.checked else WORKLOADS
    doc += bench.machine_lines(vers, args, load_before)[:3]
    doc += [f"- method: weak scaling (the same work per thread at every count), {args.runs} run(s) "
            "per point, allocators alternating; the workload times its threaded phase itself",
            f"- load average (1, 5, 15 min) before: {load_before}; after: {{after}}", ""]
    verdicts = []
    with open(os.path.splitext(out)[0] + "-runs.csv", "w", newline="") as f:
        log = csv.writer(f)
        log.writerow(["workload", "threads", "allocator", "run", "mops", "wall_s", "maxrss_kib", "cpu_s"])
        wanted = {w.strip() for w in args.workloads.split(",") if w.strip()}
        for name, what, cmd in workloads:
            if wanted and name not in wanted:
                continue
            res, failed = measure(name, cmd, threads, allocs, args, runone, log, f)
            doc += table(name, what, res, failed, threads, allocs)
            hg = medians(res).get(bench.SUBJECT, {})
            top = threads[-1]
            if name not in CONTROLS and not args.checked and bench.SUBJECT not in failed and \
                    threads[0] == 1 and hg.get(1) and hg.get(top):
                sp = hg[top] / hg[1]
                verdict = "met" if sp >= TARGET_SPEEDUP else "MISSED"
                if top != TARGET_THREADS:
                    verdict = f"not judged: the target is for {TARGET_THREADS} threads"
                verdicts.append(f"- {name}: {top} threads ÷ 1 thread = {sp:.1f}× "
                                f"(target ≥ {TARGET_SPEEDUP:g}× at {TARGET_THREADS}): {verdict}")
    doc += ["## heapguard against its target", ""] + (verdicts or ["- check mode: no target"]) + [""]
    doc += ["## Commands", ""] + [f"- {name}: `{cmd.format(bin='build/bench', n='THREADS')}`"
                                   for name, _, cmd in workloads if not wanted or name in wanted] + [""]
    bench.write_results([line.replace("{after}", bench.load_average()) for line in doc], out, "scale")


if __name__ == "__main__":
    main()
