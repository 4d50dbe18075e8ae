#!/bin/bash
# run.sh — runs every heapguard test program; the last line is "N passed, N failed" (", N skipped" if any).
# Usage: tests/run.sh [BUILD_DIR]   (the test binaries are in BUILD_DIR/tests, built by make test)
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${1:-build}
B=$(cd "$BUILD" && pwd)
LIB=$B/libheapguard.so
export CMOCKA_MESSAGE_OUTPUT=TAP

# Every component gets at most its own limit and never more than what is left of this budget,
# so a hung allocator still ends make test within its 10 minutes.
BUDGET_S=570
start=$SECONDS
passed=0 failed=0 skipped=0
failures=()

# component NAME LIMIT_S COMMAND...: runs a TAP-printing command and counts its results. Results
# its plan announced but that never came (a crash, a timeout) count as failures, and so does a
# non-zero exit with no failure reported.
component() {
	local name=$1 limit=$2 out rc counts p f s planned missing
	shift 2
	local left=$((BUDGET_S - (SECONDS - start)))
	[ "$limit" -gt "$left" ] && limit=$left
	echo "== $name"
	if [ "$limit" -le 0 ]; then
		failed=$((failed + 1))
		failures+=("$name: not run, the time budget is spent")
		return
	fi
	out=$(mktemp)
	local began=$SECONDS
	timeout -k 5 "$limit" "$@" >"$out" 2>&1
	rc=$?
	cat "$out"
	echo "# $name: $((SECONDS - began)) s"
	counts=$(awk '
		/^1\.\.[0-9]+/ && !plan { plan = substr($0, 4) + 0 }
		/^ok [0-9]+/ { p++ }
		/^not ok [0-9]+ # SKIP/ { s++; next }
		/^not ok [0-9]+/ { f++ }
		END { print p + 0, f + 0, s + 0, plan + 0 }' "$out")
	read -r p f s planned <<<"$counts"
	while read -r line; do
		failures+=("$name: $line")
	done < <(grep -E '^not ok [0-9]+' "$out" | grep -v '# SKIP')
	rm -f "$out"
	missing=$((planned - p - f - s))
	if [ "$missing" -gt 0 ]; then
		f=$((f + missing))
		failures+=("$name: $missing test(s) never reported (exit status $rc$([ $rc = 124 ] && echo ', timed out'))")
	elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		failures+=("$name: exit status $rc with no failing test reported")
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	skipped=$((skipped + s))
}

T=$B/tests
component unit 60 "$T/unit"
component api 120 env LD_PRELOAD="$LIB" "$T/api"
component api-linked 120 "$T/api-linked"
component api-static 120 "$T/api-static"
component api-backend-brk 120 env LD_PRELOAD="$LIB" HEAPGUARD_OPTIONS=backend=brk "$T/api"
component threads 180 env LD_PRELOAD="$LIB" "$T/threads"
component threads-backend-brk 180 env LD_PRELOAD="$LIB" HEAPGUARD_OPTIONS=backend=brk "$T/threads"
component fork-children 120 env LD_PRELOAD="$LIB" "$T/fork_children" 300 1
component death 60 env LD_PRELOAD="$LIB" "$T/death"
component stress 120 env LD_PRELOAD="$LIB" "$T/stress"
component stress-backend-brk 120 env LD_PRELOAD="$LIB" HEAPGUARD_OPTIONS=backend=brk "$T/stress"
component cxx 60 env LD_PRELOAD="$LIB" "$T/cxx"
component options 120 tests/options.sh "$BUILD"
component cli 120 tests/cli.sh "$BUILD"
component check-heap 120 tests/check_heap.py "$BUILD"
component check-intercept 120 tests/check_intercept.py "$BUILD"
component check-leak 120 tests/check_leak.py "$BUILD"
component check-guard 120 tests/check_guard.py "$BUILD"
component command 120 tests/command.py "$BUILD"
component real-programs 420 tests/real_programs.sh "$BUILD"

if [ ${#failures[@]} -gt 0 ]; then
	echo "== failures"
	printf '%s\n' "${failures[@]}"
fi
if [ "$skipped" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
