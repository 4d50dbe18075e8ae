#!/bin/bash
# options.sh — HEAPGUARD_OPTIONS: stats, help, unknown keys and backend=brk, checked on optprog's known allocations.
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/tap.sh
BUILD=${1:-build}
LIB=$(cd "$BUILD" && pwd)/libheapguard.so
PROG=$BUILD/tests/optprog
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

# run OPTIONS ARGS...: runs optprog preloaded, leaving $W/out, $W/err and $W/rc.
run() {
	local options=$1
	shift
	# timeout stays outside the preload: its own exit report would be mixed into optprog's
	timeout 60 env HEAPGUARD_OPTIONS="$options" LD_PRELOAD="$LIB" "$PROG" "$@" >"$W/out" 2>"$W/err"
	echo $? >"$W/rc"
}

# because TEXT: adds TEXT, unless empty, as one reason for the current test's failure.
because() { if [ -n "$*" ]; then why+="$*"$'\n'; fi; }

# check_ran_normally: starts a test's reasons with whatever made the last run end unlike optprog's own.
check_ran_normally() {
	why=
	[ "$(cat "$W/rc")" = 0 ] || because "exit status $(cat "$W/rc"); stderr: $(cat "$W/err")"
	[ "$(tail -n 1 "$W/out")" = 'done' ] || because "stdout does not end with 'done': $(cat "$W/out")"
}

tap_plan 11

# without arguments optprog never calls heapguard_print_stats itself
run ""
check_ran_normally
grep -q 'heapguard stats:' "$W/err" && because "stats printed without stats=1: $(cat "$W/err")"
tap_result stats_off_by_default "$why"

# heapguard_print_stats (and malloc_stats) without stats=1: says the counters are off, no zeros
run "" stats
check_ran_normally
[ "$(grep '^heapguard stats:' "$W/err")" = "$(grep -E '^heapguard stats: mapped=[1-9][0-9]* \(allocations are counted with HEAPGUARD_OPTIONS=stats=1\)$' "$W/err")" ] &&
	[ "$(grep -c '^heapguard stats:' "$W/err")" = 1 ] ||
	because "expected one line saying the counters are off: $(cat "$W/err")"
tap_result stats_print_without_counters "$why"

# optprog prints stats once mid-run (after 1000 x malloc(100)) and the library again at exit.
run stats=1 stats
check_ran_normally
summary='^heapguard stats: allocs=([0-9]+) frees=([0-9]+) requested=([0-9]+) peak_in_use=([0-9]+) mapped=([0-9]+)$'
because "$(grep '^heapguard stats:' "$W/err" | awk -v re="$summary" '
	$0 ~ re { n++; split($0, f, /[ =]/); allocs[n] = f[4]; frees[n] = f[6]; req[n] = f[8]; peak[n] = f[10]; mapped[n] = f[12] }
	END {
		if (n != 2) { print "expected 2 summary lines (heapguard_print_stats, exit), found " n; exit }
		if (allocs[1] < 1000) print "mid-run allocs=" allocs[1] " < 1000"
		if (req[1] < 100000) print "mid-run requested=" req[1] " < 100000"
		if (allocs[2] < 1010 || frees[2] < 1010) print "at exit allocs=" allocs[2] " frees=" frees[2] ", expected >= 1010 each"
		if (frees[2] <= frees[1]) print "frees did not grow between the reports: " frees[1] " then " frees[2]
		if (req[2] < 100000 + 10 * 8388608) print "at exit requested=" req[2] " < " 100000 + 10 * 8388608
		if (peak[2] < 10 * 8388608) print "peak_in_use=" peak[2] " < the 80 MiB held at once"
		if (mapped[2] <= 0) print "mapped=" mapped[2]
	}')"
[ -n "$why" ] && because "stderr:"$'\n'"$(cat "$W/err")"
tap_result stats_summary_lines "$why"

# The exit report: summary first, then class lines; the smallest class holding 100 bytes saw all 1000.
why=
because "$(awk '
	/^heapguard stats: allocs=/ { block = ""; nblock++; next }
	/^heapguard stats:/ { block = block $0 "\n" }
	END { printf "%s", block }' "$W/err" | awk '
	/^heapguard stats: class=[0-9]+ size=[0-9]+ allocs=[0-9]+ frees=[0-9]+ requested=[0-9]+$/ {
		split($0, f, /[ =]/); size = f[6]; allocs = f[8]; frees = f[10]; req = f[12]
		if (req > allocs * size) print "requested " req " exceeds allocs*size in: " $0
		if (size >= 100 && (best == "" || size < best)) { best = size; ba = allocs; bf = frees; br = req }
		classes++; next
	}
	/^heapguard stats: class=large / { large = $0; next }
	{ print "malformed line: " $0 }
	END {
		if (classes == 0) { print "no class lines"; exit }
		if (ba < 1000 || bf < 1000 || br < 100000)
			print "class of size " best " (for 100 bytes): allocs=" ba " frees=" bf " requested=" br ", expected >= 1000, 1000, 100000"
		if (large == "") { print "no class=large line"; exit }
		if (match(large, /allocs=[0-9]+/) == 0 || substr(large, RSTART + 7, RLENGTH - 7) < 10)
			print "class=large line does not count the 10 large blocks: " large
	}')"
[ -n "$why" ] && because "stderr:"$'\n'"$(cat "$W/err")"
tap_result stats_class_lines "$why"

run help=1
check_ran_normally
for name in backend stats help; do
	grep -q "$name" "$W/err" || because "help=1 does not list '$name'; stderr: $(cat "$W/err")"
done
tap_result help_lists_options "$why"

run bogus=1:=nameless
check_ran_normally
grep -q "unknown option '=nameless' (no name before '=')" "$W/err" || because "no warning for '=nameless'"
grep -q "unknown option 'bogus'" "$W/err" || because "no \"unknown option 'bogus'\" warning"
grep "unknown option 'bogus'" "$W/err" | grep -q backend || because "the warning does not list 'backend'"
grep "unknown option 'bogus'" "$W/err" | grep -q stats || because "the warning does not list 'stats'"
[ -n "$why" ] && because "stderr: $(cat "$W/err")"
tap_result unknown_option_warns "$why"

run stats=2:decay_ms=soon:stack_depth=65:stats=1
check_ran_normally
grep -q "bad value for option 'stats' (expected 0 or 1)" "$W/err" || because "no warning for stats=2"
grep -q "bad value for option 'decay_ms' (expected a number)" "$W/err" || because "no warning for decay_ms=soon"
grep -q "bad value for option 'stack_depth' (expected 0-64)" "$W/err" || because "no warning for stack_depth=65"
grep -q '^heapguard stats: allocs=' "$W/err" || because "the good stats=1 after them was lost"
[ -n "$why" ] && because "stderr: $(cat "$W/err")"
tap_result bad_values_warn_with_what_is_expected "$why"

# optprog counts how many of 1000 small blocks lie between start_brk and sbrk(0).
run backend=brk brk
check_ran_normally
grep -q '^in_brk=1000 of 1000' "$W/out" || because "backend=brk: $(head -n 1 "$W/out")"
tap_result backend_brk_uses_the_break "$why"

run "" brk
check_ran_normally
grep -q '^in_brk=0 of 1000' "$W/out" || because "default backend: $(head -n 1 "$W/out")"
tap_result default_backend_avoids_the_break "$why"

run stats=1:backend=brk brk
check_ran_normally
grep -q '^in_brk=1000 of 1000' "$W/out" || because "backend=brk ignored after ':': $(head -n 1 "$W/out")"
grep -q '^heapguard stats: allocs=' "$W/err" || because "stats=1 ignored before ':'; stderr: $(cat "$W/err")"
tap_result colon_separated_options "$why"

run backend=brk:bogus=1:stats=1 brk
check_ran_normally
grep -q '^in_brk=1000 of 1000' "$W/out" || because "backend=brk lost next to an unknown key: $(head -n 1 "$W/out")"
grep -q '^heapguard stats: allocs=' "$W/err" || because "stats=1 lost after an unknown key; stderr: $(cat "$W/err")"
tap_result unknown_key_keeps_the_others "$why"
