#!/bin/bash
# real_programs.sh — real programs print the same bytes plain, under the fast library, and in check and guard mode (with no report).
# shellcheck disable=SC2016 # $RUN, $OUT and $ROOT in single quotes are for the bash -c inside pair
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/tap.sh
BUILD=${1:-build}
BUILD_DIR=$(cd "$BUILD" && pwd)
LIB=$BUILD_DIR/libheapguard.so
CHECK_LIB=$BUILD_DIR/libheapguard-check.so
ROOT=$PWD
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

# Deterministic inputs shared by both runs.
export LC_ALL=C PYTHONHASHSEED=0 PERL_HASH_SEED=0 PERL_PERTURB_KEYS=0 PYTHONDONTWRITEBYTECODE=1
export GIT_CONFIG_NOSYSTEM=1 HOME=$W/home
mkdir -p "$W/home"

# ~50 MB of pseudo-random lines from a fixed LCG.
awk 'BEGIN { x = 12345; for (i = 0; i < 1600000; i++) {
	x = (x * 1103515245 + 12345) % 2147483648; y = (x * 69069 + 1) % 2147483648
	printf "%010d %08x line %d %s\n", x, y, i, substr("abcdefghijklmnopqrstuvwxyz", x % 20 + 1, 7) } }' >"$W/sort.in"

# A small repository with fixed authors and dates, so git log prints the same text every time.
git init -q "$W/repo"
for i in $(seq 1 40); do
	printf 'line %d\n' $(seq 1 "$i") >"$W/repo/file$((i % 7)).txt"
	git -C "$W/repo" add -A
	GIT_AUTHOR_NAME=Tester GIT_AUTHOR_EMAIL=t@example.org GIT_COMMITTER_NAME=Tester \
	GIT_COMMITTER_EMAIL=t@example.org GIT_AUTHOR_DATE="2020-01-01T00:00:$((i % 60))Z" \
	GIT_COMMITTER_DATE="2020-01-01T00:00:$((i % 60))Z" git -C "$W/repo" commit -q -m "commit $i"
done

# pair NAME COMMAND: runs COMMAND (a bash snippet) plain, with $RUN empty, then with $RUN
# preloading heapguard three ways: the fast library with stats=1 (the stats line proves it
# ran), the checking library (quiet: a correct program gets no report at all), and the
# checking library with every block guarded. These programs leak at exit by design (perl and
# python leave their arenas, sort and git a few blocks: valgrind reports the same), so the
# leak check is off here; tests/check_leak.py tests it. $OUT is a fresh directory per run.
pair() {
	local name=$1 script=$2 why= run
	local -A how=([plain]= [fast]="env LD_PRELOAD=$LIB HEAPGUARD_OPTIONS=stats=1"
		[check]="env LD_PRELOAD=$CHECK_LIB HEAPGUARD_OPTIONS=quiet=1:leak_check=no"
		[guard]="env LD_PRELOAD=$CHECK_LIB HEAPGUARD_OPTIONS=quiet=1:leak_check=no:guard=1")
	for run in plain fast check guard; do
		mkdir -p "$W/$name.$run"
		RUN=${how[$run]} OUT=$W/$name.$run ROOT=$ROOT timeout 240 bash -c "$script" \
			>"$W/$name.$run.out" 2>"$W/$name.$run.err"
		echo $? >"$W/$name.$run.rc"
	done
	local p=$W/$name.plain
	[ "$(cat "$p.rc")" = 0 ] || why+="plain run failed with status $(cat "$p.rc"): $(head -c 2000 "$p.err")"$'\n'
	for run in fast check guard; do
		local q=$W/$name.$run
		[ "$(cat "$q.rc")" = 0 ] || why+="$run run failed with status $(cat "$q.rc"): $(head -c 2000 "$q.err")"$'\n'
		cmp -s "$p.out" "$q.out" || why+="$run: stdout differs: $(diff "$p.out" "$q.out" | head -n 10)"$'\n'
		grep -v '^heapguard stats:' "$q.err" | cmp -s - "$p.err" ||
			why+="$run: stderr differs: $(grep -v '^heapguard stats:' "$q.err" | diff "$p.err" - | head -n 20)"$'\n'
	done
	grep -Eq '^heapguard stats: allocs=[1-9]' "$W/$name.fast.err" ||
		why+="no 'heapguard stats: allocs=N' line with N > 0 from the fast run"$'\n'
	tap_result "$name" "$why"
}

tap_plan 6
pair python3 '$RUN python3 "$ROOT/tests/real/churn.py"'
pair perl '$RUN perl "$ROOT/tests/real/churn.pl"'
# the assembly shows what the compiler decided; the linked program shows the object works
pair gcc '$RUN gcc -O2 -S -o - "$ROOT/tests/real/hello.c" &&
	$RUN gcc -O2 -o "$OUT/hello" "$ROOT/tests/real/hello.c" && "$OUT/hello"'
pair sort "\$RUN sort -S 16M --parallel=2 -T \"\$OUT\" '$W/sort.in'"
pair git_log "\$RUN git -C '$W/repo' log --stat --patch"
pair cxx_containers "\$RUN '$BUILD_DIR/tests/containers'"
