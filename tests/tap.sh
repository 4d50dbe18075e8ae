# tap.sh — TAP output helpers sourced by the shell test scripts (options.sh, real_programs.sh).
# shellcheck shell=bash

tap_count=0

# tap_plan N: announces N results, so run.sh counts any that never appear as failures.
tap_plan() { echo "1..$1"; }

# tap_result NAME WHY: passes when WHY is empty or blank, otherwise fails and prints WHY as comments.
tap_result() {
	tap_count=$((tap_count + 1))
	if [ -z "${2//[[:space:]]/}" ]; then
		echo "ok $tap_count - $1"
	else
		echo "not ok $tap_count - $1"
		printf '%s\n' "$2" | sed -e '/^$/d' -e 's/^/# /'
	fi
}
