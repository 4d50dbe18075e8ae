#!/bin/bash
# cli.sh — the heapguard command: help, version, bad options, exit statuses, library lookup, preloading
# (the report itself: tests/command.py).
# shellcheck disable=SC2016 # single quotes on purpose: the program under test expands them
set -u
cd "$(dirname "$0")/.." || exit 1
# shellcheck source=tests/tap.sh
. tests/tap.sh
BUILD=${1:-build}
B=$(cd "$BUILD" && pwd)
HG=$B/heapguard
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

# run ARGS...: runs the command, leaving $W/out, $W/err and the status in $rc.
run() {
	timeout 60 "$@" >"$W/out" 2>"$W/err"
	rc=$?
}

# expect STATUS [OUT_REGEX [ERR_REGEX]]: the reasons the last run differs, empty when it matches.
expect() {
	local why=
	[ "$rc" = "$1" ] || why+="exit status $rc, expected $1; stderr: $(cat "$W/err")"$'\n'
	if [ -n "${2-}" ] && ! grep -Eq -- "$2" "$W/out"; then why+="stdout lacks /$2/: $(cat "$W/out")"$'\n'; fi
	if [ -n "${3-}" ] && ! grep -Eq -- "$3" "$W/err"; then why+="stderr lacks /$3/: $(cat "$W/err")"$'\n'; fi
	printf '%s' "$why"
}

tap_plan 31

run "$HG" --help
tap_result help "$(expect 0 '^Usage: heapguard \[OPTIONS\] \[--\] PROGRAM' && expect 0 '--backend=mmap\|brk' && expect 0 '--json=FILE' && expect 0 '--trace-children=yes\|no')"

run "$HG" --version
tap_result version "$(expect 0 '^heapguard [0-9]+\.[0-9]+\.[0-9]+$')"

run "$HG" --bogus /bin/true
tap_result unknown_option_is_usage_error "$(expect 2 '' "unknown option '--bogus'" && expect 2 '' 'Usage:')"

run "$HG"
tap_result missing_program "$(expect 2 '' 'no PROGRAM given')"

run "$HG" --backend=foo /bin/true
tap_result bad_choice "$(expect 2 '' "invalid value 'foo' for --backend")"

run "$HG" --trace-children=maybe /bin/true
tap_result bad_command_option_choice "$(expect 2 '' "invalid value 'maybe' for --trace-children")"

# a flag also takes valgrind's =yes, =all or =no; one that sets nothing takes none
run "$HG" --show-reachable=no --gen-suppressions=all --abort-on-error=yes /bin/sh -c 'echo "$HEAPGUARD_OPTIONS"'
why="$(expect 0 '^show_reachable=0:abort_on_error=1$')"
run "$HG" --fast=yes /bin/true
why+="$(expect 2 '' "option '--fast' takes no value")"
run "$HG" --quiet=maybe /bin/true
tap_result flags_take_yes_or_no "$why$(expect 2 '' "invalid value 'maybe' for --quiet \(expected nothing, yes or no\)")"

# report file names take valgrind's %p (the command's pid), %q{VAR} and %%
run env HG_TEST_NAME=abc "$HG" --log-file="$W/log-%q{HG_TEST_NAME}-%%-%p.txt" /bin/true
why="$(expect 0)"
ls "$W"/log-abc-%-[0-9]*.txt >/dev/null 2>&1 || why+="no log-abc-%-PID.txt in $(ls "$W")"$'\n'
run "$HG" --json="$W/r-%x.json" /bin/true
tap_result report_file_name_escapes "$why$(expect 2 '' "'%' is followed by p, q\{NAME\} or %")"

# valgrind's --xml=yes writes to --xml-file only
run "$HG" --xml=yes /bin/true
tap_result xml_needs_a_file "$(expect 2 '' '--xml=yes needs --xml-file=FILE')"

# valgrind's --tool: memcheck only
run "$HG" --tool=helgrind /bin/true
tap_result other_valgrind_tool "$(expect 2 '' "invalid value 'helgrind' for --tool \(expected memcheck\)")"

# a list of leak kinds: each word one of them, none empty
run "$HG" --show-leak-kinds=definite,,possible /bin/true
why="$(expect 2 '' "invalid value 'definite,,possible' for --show-leak-kinds")"
run "$HG" --show-leak-kinds=definite,lost /bin/true
why+="$(expect 2 '' "invalid value 'definite,lost' for --show-leak-kinds")"
# a valid list too long to pass on is refused, not cut short
run "$HG" --show-leak-kinds="$(printf 'definite,%.0s' {1..20})possible" /bin/true
tap_result bad_leak_kinds "$why$(expect 2 '' "value too long for --show-leak-kinds: definite,definite")"

# an exit status above 255 would wrap, and so would a quarantine of 2^64 bytes (to none);
# more frames than the library records would be cut
run "$HG" --error-exitcode=300 /bin/true
why="$(expect 2 '' "invalid value '300' for --error-exitcode \(expected 0-255\)")"
run "$HG" --quarantine=17179869184G /bin/true
why+="$(expect 2 '' "invalid value '17179869184G' for --quarantine \(expected SIZE\)")"
run env HEAPGUARD_OPTIONS=quarantine=17179869184G "$HG" /bin/true
why+="$(expect 2 '' "invalid value '17179869184G' for quarantine in HEAPGUARD_OPTIONS \(expected SIZE\)")"
run "$HG" --quarantine=17179869183G /bin/sh -c 'echo "$HEAPGUARD_OPTIONS"'
why+="$(expect 0 '^quarantine=17179869183G$')"
run "$HG" --stack-depth=65 /bin/true
tap_result numbers_out_of_range "$why$(expect 2 '' "invalid value '65' for --stack-depth \(expected 0-64\)")"

# valgrind's --num-callers takes 1-500 (a valgrind command line with 100 was refused); the
# library records 64 frames at most
run "$HG" --num-callers=100 /bin/sh -c 'echo "$HEAPGUARD_OPTIONS"'
why="$(expect 0 '^stack_depth=64$')"
run env HEAPGUARD_OPTIONS=num_callers=500 "$HG" /bin/sh -c 'echo "$HEAPGUARD_OPTIONS"'
why+="$(expect 0 '^stack_depth=64$')"
run "$HG" --num-callers=64 /bin/sh -c 'echo "$HEAPGUARD_OPTIONS"'
why+="$(expect 0 '^stack_depth=64$')"
run "$HG" --num-callers=501 /bin/true
why+="$(expect 2 '' "invalid value '501' for --num-callers \(expected 1-500\)")"
run "$HG" --num-callers=0 /bin/true
tap_result num_callers_takes_valgrinds_range "$why$(expect 2 '' "invalid value '0' for --num-callers \(expected 1-500\)")"

# report files are created before the program runs: an unwritable path fails at once
run "$HG" --json=/nonexistent-dir/r.json /bin/sh -c 'echo ran'
why="$(expect 125 '' 'cannot write /nonexistent-dir/r.json')"
[ -s "$W/out" ] && why+="the program ran: $(cat "$W/out")"$'\n'
run "$HG" --sarif=/nonexistent-dir/r.sarif /bin/true
why+="$(expect 125 '' 'cannot write /nonexistent-dir/r.sarif')"
run "$HG" --xml-file=/nonexistent-dir/r.xml /bin/true
tap_result unwritable_report_file_fails_first "$why$(expect 125 '' 'cannot write /nonexistent-dir/r.xml')"

# a PROGRAM that cannot be run leaves the report files as they were: none made, none emptied
U=(--json="$W/u.json" --sarif="$W/u.sarif" --xml-file="$W/u.xml" --log-file="$W/u.log")
run "$HG" "${U[@]}" no-such-program-xyz
why="$(expect 127 '' 'no-such-program-xyz: command not found')"
for f in "$W"/u.*; do [ -e "$f" ] && why+="made $f"$'\n'; done
for f in json sarif xml log; do echo old >"$W/u.$f"; done
run "$HG" "${U[@]}" /tmp
why+="$(expect 126 '' '/tmp: Is a directory')"
for f in json sarif xml log; do [ "$(cat "$W/u.$f")" = old ] || why+="u.$f now holds: $(head -c 80 "$W/u.$f")"$'\n'; done
ln -s u-target.json "$W/u-link.json"
run "$HG" --json="$W/u-link.json" no-such-program-xyz
[ -e "$W/u-target.json" ] && why+="made the target of a dangling link"$'\n'
[ -L "$W/u-link.json" ] || why+="removed the link"$'\n'
# once the program runs, the log file holds its report alone
run "$HG" "${U[@]}" /bin/true
why+="$(expect 0)"
grep -q '^old$' "$W/u.log" && why+="the log file kept its old lines: $(cat "$W/u.log")"$'\n'
grep -q 'ERROR SUMMARY: 0 errors' "$W/u.log" || why+="no report in the log file: $(cat "$W/u.log")"$'\n'
tap_result report_files_untouched_when_program_cannot_run "$why"

run "$HG" --fast --json=x.json /bin/true
tap_result report_option_needs_checking "$(expect 2 '' "json needs the checking library")"

run "$HG" no-such-program-xyz
tap_result program_not_found_127 "$(expect 127 '' 'no-such-program-xyz: command not found')"

run "$HG" /tmp
tap_result not_executable_126 "$(expect 126)"

run "$HG" -- /bin/echo hi
tap_result runs_the_program "$(expect 0 '^hi$')"

run "$HG" /bin/sh -c 'exit 7'
tap_result exit_status_is_the_programs "$(expect 7)"

run "$HG" /usr/bin/printf '%s\n' --help
tap_result options_stop_at_program "$(expect 0 '^--help$')"

run env LD_PRELOAD=/x.so "$HG" /bin/sh -c 'echo "$LD_PRELOAD"'
tap_result library_first_in_ld_preload "$(expect 0 "^$B/libheapguard-check.so:/x.so$")"

run env LD_PRELOAD=/x.so "$HG" --fast /bin/sh -c 'echo "$LD_PRELOAD"'
tap_result fast_preloads_the_fast_library "$(expect 0 "^$B/libheapguard.so:/x.so$")"

# the records go to a fresh file in a private directory, by absolute path (the program may chdir)
run "$HG" /bin/sh -c 'echo "$HEAPGUARD_RECORDS"; stat -c %a "$(dirname "$HEAPGUARD_RECORDS")"'
tap_result records_in_a_private_file "$(expect 0 '^/.*/heapguard\.[A-Za-z0-9]{6}/records$' && expect 0 '^700$')"

run env HEAPGUARD_OPTIONS=quarantine=1M "$HG" --leak-check=summary --guard=all /bin/sh -c 'echo "$HEAPGUARD_OPTIONS"'
tap_result checking_options_reach_the_library "$(expect 0 '^quarantine=1M:leak_check=summary:guard=1$')"

run env HEAPGUARD_OPTIONS=decay_ms=5 "$HG" --stats --backend brk /bin/sh -c 'echo "$HEAPGUARD_OPTIONS"'
tap_result options_reach_the_library "$(expect 0 '^decay_ms=5:stats=1:backend=brk$')"

# fast=1 with a checking option in HEAPGUARD_OPTIONS is the conflict it is on the command line
# (the JSON was dropped, silently); a bare flag key sets the flag, as a bare --flag does
run env HEAPGUARD_OPTIONS=fast=1:json="$W/x.json" "$HG" /bin/true
why="$(expect 2 '' '--json needs the checking library')"
run env HEAPGUARD_OPTIONS=quiet "$HG" /bin/true
why+="$(expect 0)"
grep -q 'ERROR SUMMARY' "$W/err" && why+="a bare quiet key left the summaries on: $(cat "$W/err")"
tap_result environment_options_as_the_command_lines "$why"

run "$HG" --stats -- /bin/ls /
tap_result stats_from_the_program "$(expect 0 '' '^heapguard stats: allocs=[1-9][0-9]* ')"

# make install: every file in its place; bin/heapguard finds ../lib/libheapguard-check.so and
# ../lib/libheapguard.so; pkg-config's flags build a program that links our malloc
P=$W/prefix
run sh -c "umask 077 && make -s install PREFIX='$P' BUILD='$B'"
why=$(expect 0)
[ "$(stat -c %a "$P/lib/pkgconfig/heapguard.pc" 2>/dev/null)" = 644 ] ||
	why+="heapguard.pc's mode follows the umask: $(stat -c %a "$P/lib/pkgconfig/heapguard.pc" 2>&1)"$'\n'
# a PREFIX that LD_PRELOAD could not take is refused, nothing written (into the tree, unquoted)
run make -s install PREFIX="$W/a b" BUILD="$B"
why+=$(expect 2 '' "PREFIX '$W/a b' has a space or a colon")
[ ! -e b ] && [ ! -e "$W/a b" ] || why+="make install wrote for a PREFIX it refused"$'\n'
for f in lib/libheapguard.so lib/libheapguard-check.so lib/libheapguard.a include/heapguard.h bin/heapguard \
	share/man/man1/heapguard.1 lib/pkgconfig/heapguard.pc; do
	[ -f "$P/$f" ] || why+="make install left out $f"$'\n'
done
run "$P/bin/heapguard" /bin/sh -c 'echo "$LD_PRELOAD"'
why+=$(expect 0 "^$P/lib/libheapguard-check.so$")
run "$P/bin/heapguard" --fast /bin/sh -c 'echo "$LD_PRELOAD"'
why+=$(expect 0 "^$P/lib/libheapguard.so$")
printf '#include <heapguard.h>\n#include <stdio.h>\n#include <stdlib.h>\nint main(void) { free(malloc(9)); printf("%%s\\n", heapguard_version()); return 0; }\n' >"$W/pc.c"
run sh -c "PKG_CONFIG_PATH='$P/lib/pkgconfig' && export PKG_CONFIG_PATH && cc -o '$W/pc' '$W/pc.c' \$(pkg-config --cflags --libs heapguard) -Wl,-rpath,'$P/lib' && HEAPGUARD_OPTIONS=stats=1 '$W/pc'"
tap_result make_install "$why$(expect 0 '^[0-9]+\.[0-9]+\.[0-9]+$' '^heapguard stats: allocs=[1-9]')"

# the static archive: a C++ program calling only new[] and delete[] gets our malloc too (stdio's
# buffer counted: 2 allocations), and one defining an hg_ name of its own keeps ours apart
printf '#include <cstdio>\nint main() { char *p = new char[100]; p[0] = 1; delete[] p; std::puts("ok"); return 0; }\n' >"$W/new.cc"
run sh -c "g++ -o '$W/new' '$W/new.cc' '$P/lib/libheapguard.a' -pthread && HEAPGUARD_OPTIONS=stats=1 '$W/new'"
why=$(expect 0 '^ok$' '^heapguard stats: allocs=2 frees=1 ')
printf '#include <stdio.h>\n#include <stdlib.h>\nint hg_init(void) { return 42; }\nint main(void) { free(malloc(10)); printf("%%d\\n", hg_init()); return 0; }\n' >"$W/clash.c"
run sh -c "cc -o '$W/clash' '$W/clash.c' '$P/lib/libheapguard.a' -pthread && HEAPGUARD_OPTIONS=stats=1 '$W/clash'"
tap_result static_archive_is_whole_and_private "$why$(expect 0 '^42$' '^heapguard stats: allocs=[1-9]')"

# make uninstall takes back every file install put there, and only those
touch "$P/bin/other-tool"
run make -s uninstall PREFIX="$P"
why=$(expect 0)
left=$(cd "$P" && find . -type f | sort | tr '\n' ' ')
[ "$left" = "./bin/other-tool " ] || why+="left after uninstall: $left"$'\n'
tap_result make_uninstall "$why"
