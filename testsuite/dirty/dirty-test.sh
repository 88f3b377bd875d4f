#!/bin/sh
# Incremental snapshots found by dirty-page tracking are right (issue 10):
# patterns takes 50 steps, writing memory in ways the tracking must not
# miss, with a snapshot at each report(); then every snapshot is rewound
# to, and the program's lines from there must be the plain run's. Then,
# with a breakpoint in report() keeping the program alive, it is rewound
# back one snapshot at a time and forward by three: those rewinds are made
# in place (only what differs written into the live program) wherever the
# program still has the snapshot's mappings, and each must print the
# plain run's line. Run with tracking (uffd), with content hashes
# (ESKY_DIRTY=hash: every rewind thaws) and with tracking but rewinds
# that always thaw (ESKY_REWIND=thaw).
# usage: dirty-test.sh ESKY_SHELL PATTERNS MODE   (MODE: uffd, hash or thaw)
# Exit 0 pass, 1 fail, 99 harness error.
set -u
shell=$1 prog=$2 mode=$3
tmp=$(mktemp -d /tmp/esky-dirty-test.XXXXXX) || exit 99
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 99
fail() { echo "dirty-test $mode: FAIL: $*" >&2; exit 1; }
# Each mode its own, whatever the caller's environment says (the whole
# suite is also run with ESKY_DIRTY=hash: these two need the tracking).
unset ESKY_DIRTY ESKY_REWIND
# Every rewind's page hashes derived from the lineage's are checked against the whole computation.
export ESKY_CHECK_HASHES=1
[ "$mode" = hash ] && export ESKY_DIRTY=hash
[ "$mode" = thaw ] && export ESKY_REWIND=thaw
export ESKY_DEBUG=1 # says how each rewind was made
back=$(seq 49 -1 1) forward=$(seq 1 3 49)

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
	echo "break report"
	for k in $back $forward; do
		echo "rewind $k"
		echo "continue"
	done
} > s.esky
"$shell" --store st --batch -x s.esky "$prog" > out 2> err || { cat err >&2; fail "esky-shell failed"; }
rewinds=$(grep -c '^Rewound to snapshot' out)
[ "$rewinds" -eq 116 ] || { cat err >&2; fail "$rewinds rewinds, not 116"; }
in_place=$(grep -c '^rewind to snapshot .*(in place)$' err)
if [ "$mode" = uffd ]; then
	# One in nine steps moves a mapping (mremap): those rewinds thaw.
	[ "$in_place" -ge 40 ] || fail "only $in_place of 116 rewinds were made in place"
else
	[ "$in_place" -eq 0 ] || fail "$in_place rewinds were made in place"
fi
if [ "$mode" != hash ]; then
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
	for k in $back $forward; do
		sed -n "${k}p" plain.out
	done
} > want
cmp -s want got || { diff want got | head -20 >&2; fail "the program's lines after the rewinds differ from the plain run's"; }
echo "dirty-test $mode: 50 snapshots, 116 rewinds ($in_place in place): ok ($(du -sk st | cut -f1) KiB in the store)"
