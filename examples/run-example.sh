#!/bin/sh
# run-example.sh — one step of `make demo`: runs an example under heapguard, says what it reported.
# Usage, from the repository root once `make all examples` has run: sh examples/run-example.sh NAME
name=$1
title=$(sed -n '1s|^/\* \(.*\) \*/$|\1|p' "examples/$name.c")
log=$(mktemp) || exit 1
trap 'rm -f "$log"' EXIT

echo "== $title =="
# The program's stdout and stderr go to the log, interleaved. The shell's own "Aborted" notice
# goes to /dev/null, the stderr of the group that waits: the verdict below names the signal.
# No core files: the aborts and crashes are the point of the demo.
# shellcheck disable=SC3045 # ulimit -c: both dash and bash have it
{
	(ulimit -c 0; exec build/heapguard -- "build/examples/$name" >"$log" 2>&1)
	status=$?
} 2>/dev/null
sed 's/^/   | /' "$log"

if [ "$status" -gt 128 ]; then
	outcome="was killed by SIG$(kill -l $((status - 128)))"
else
	outcome="exited with status $status"
fi
# A report starts "==PID== ERROR: kind" (or "LEAK: kind" for leaks), as valgrind's do.
if [ "$status" -ge 125 ] && [ "$status" -le 127 ]; then
	echo "-> the example did not run (exit status $status): see the message above"
elif kinds=$(sed -n 's/^==[0-9]*== \(ERROR\|LEAK\): \([a-z-]*\):.*/\2/p' "$log" | sort -u | tr '\n' ' ') && [ -n "$kinds" ]; then
	echo "-> reported by heapguard: ${kinds% }; the program $outcome"
elif [ "$name" = clean ]; then
	echo "-> no report, as expected for a correct program; it $outcome"
else
	echo "-> NOT DETECTED: no heapguard report; the program $outcome"
fi
echo
