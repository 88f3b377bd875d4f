#!/bin/sh
# sanitize.reports: fails when a sanitized process of the test suite wrote
# a report into DIR (see sanitize.cmake), and prints each one.
# Usage: reports.sh DIR
dir=$1
[ -d "$dir" ] || { echo "reports.sh: $dir: no report folder (was ctest's sanitize-env.cmake read?)"; exit 99; }
n=0
for f in "$dir"/*; do
	[ -f "$f" ] || continue
	n=$((n + 1))
	echo "=== $f"
	cat "$f"
done
if [ "$n" -ne 0 ]; then
	echo "$n sanitizer report(s) in $dir"
	exit 1
fi
echo "no sanitizer report in $dir"
