#!/bin/sh
# Incremental snapshots found by dirty-page tracking are right (issue 10):
# patterns takes 50 steps, writing memory in ways the tracking must not
# miss, with a snapshot at each report(); then every snapshot is rewound
# to, and the program's lines from there must be the plain run's. Run
# with tracking (default) and with content hashes (ESKY_DIRTY=hash).
# usage: dirty-test.sh ESKY_SHELL PATTERNS MODE   (MODE: uffd or hash)
# Exit 0 pass, 1 fail, 99 harness error.
set -u
shell=$1 prog=$2 mode=$3
tmp=$(mktemp -d /tmp/esky-dirty-test.XXXXXX) || exit 99
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 99
fail() { echo "dirty-test $mode: FAIL: $*" >&2; exit 1; }
[ "$mode" = hash ] && export ESKY_DIRTY=hash

"$prog" > plain.out || exit 99
{
	echo "snap report 50"
	echo "run"
	echo "info store"
	echo "delete"
	k=1
	while [ $k -le 50 ]; do
		echo "rewind $k"
		echo "continue"
		k=$((k + 1))
	done
} > s.esky
"$shell" --store st --batch -x s.esky "$prog" > out 2> err || { cat err >&2; fail "esky-shell failed"; }
[ "$(grep -c '^Rewound to snapshot' out)" -eq 50 ] || { cat err >&2; fail "not 50 rewinds"; }
if [ "$mode" = uffd ]; then
	grep -q '^changed pages: userfaultfd write-protect' out ||
		fail "dirty-page tracking was not used: $(grep '^changed pages' out)"
else
	grep -q '^changed pages: content hashes' out || fail "hashes were not used"
fi
# The first run, then after rewind k the lines of steps k-1 to the end.
grep -E '^(step|done)' out > got
{
	cat plain.out
	k=1
	while [ $k -le 50 ]; do
		tail -n +$k plain.out
		k=$((k + 1))
	done
} > want
cmp -s want got || { diff want got | head -20 >&2; fail "the program's lines after the rewinds differ from the plain run's"; }
echo "dirty-test $mode: 50 snapshots, 50 rewinds: ok ($(du -sk st | cut -f1) KiB in the store)"
