#!/bin/sh
# deps.sh — install the Debian packages named as arguments, or say how to when not root.
# Usage: scripts/deps.sh PKG...   (quiet when every package is already installed)
set -eu

missing=
for pkg in "$@"; do
	status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	if [ "$status" != "install ok installed" ]; then
		missing="$missing $pkg"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "heapguard: missing packages; run: sudo apt-get install -y$missing" >&2
	exit 1
fi

# One index refresh for the whole list: a fresh container has no package lists at all.
apt-get update -qq >/dev/null
# shellcheck disable=SC2086 # the list is meant to split into words
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
