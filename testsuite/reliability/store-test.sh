#!/bin/bash
# The snapshot store under stress (issue 12): two esky-shell sessions on one
# store at once, and a store on a read-only or full file system. Nothing
# lost or corrupted: the tree lists every snapshot a session said it took,
# and only those; every image opens; errors are one line and the session
# goes on.
# usage: store-test.sh ESKY ESKY_SHELL COUNTER CASE
#
#   concurrent  two sessions started together on one --store, each taking
#               manual snapshots, timer snapshots (every 20ms) and
#               rewinding to its own snapshots, driven in step; then the
#               ids each said are disjoint, their union is the tree and the
#               files, every image passes esky info, parents are listed
#   readonly    a store of two snapshots bind-mounted read-only (a user and
#               mount namespace): tree, rewind, continue work; snapshot,
#               every, forget fail in one line each; export to elsewhere
#               works; the store is unchanged
#   full        a store on a 256 KiB tmpfs: snapshots until it is full, timer
#               snapshots too; each failure one line, the session goes on,
#               every snapshot the tree lists opens, no file left over
#
# Exit 0 pass, 1 fail, 77 skip, 99 harness error.
set -u
esky=$1 shell=$2 counter=$3 case=$4
tmp=$(mktemp -d /tmp/esky-store.XXXXXX) || exit 99
pids=
cleanup() {
	for p in $pids; do kill -KILL "$p" 2>/dev/null; done
	[ -n "${STORE_KEEP:-}" ] && echo "store-test: kept $tmp" >&2 || rm -rf "$tmp"
}
trap cleanup EXIT
cd "$tmp" || exit 99

fail() { echo "store-test $case: FAIL: $*" >&2; exit 1; }
# Wait (polling, 60 s at most) until FILE has at least N lines matching RE.
wait_count() {
	local i=0
	while [ "$(grep -c -- "$2" "$1" 2>/dev/null)" -lt "$3" ]; do
		i=$((i + 1))
		[ $i -le 6000 ] || { tail -n 20 "$1" >&2; fail "timed out waiting for '$2' x$3 in $1"; }
		sleep 0.01
	done
}
# The ids a session's output says it took (manual and timer; a timer
# snapshot is said when taken, and its recording may fail afterwards).
ids_said() {
	sed -n 's/^snapshot \([0-9]*\) could not be recorded: .*/\1/p' "$1" | sort > "$1.unrecorded"
	sed -n 's/^Snapshot \([0-9]*\) at .*/\1/p; s/^snapshot \([0-9]*\) (timer) at .*/\1/p' "$1" | sort |
		comm -23 - "$1.unrecorded"
}
# The ids the store's tree lists, and their parents ("ID PARENT").
tree_of() { "$shell" --store "$1" --batch -ex 'info snapshots' 2> /dev/null | awk -F '\t' 'NR > 1 { print $1, $2 }'; }
# Every image of store DIR opens (esky info checks all of it, parents included).
images_open() {
	for f in "$1"/snap-*.img; do
		[ -e "$f" ] || continue
		"$esky" info "$f" > /dev/null 2> info.err || { cat info.err >&2; fail "$f does not open"; }
	done
}
# The tree of DIR names exactly the images in it, and each parent is listed.
tree_consistent() {
	tree_of "$1" > tree.list
	awk '{ print $1 }' tree.list | sort > tree.ids
	(cd "$1" && ls snap-*.img 2> /dev/null) | sed 's/^snap-\(.*\)\.img$/\1/' | sort > file.ids
	cmp -s tree.ids file.ids || { diff tree.ids file.ids >&2; fail "$1: the tree and the images differ (<: tree, >: files)"; }
	awk '$2 != "-" { print $2 }' tree.list | sort -u | comm -23 - tree.ids > orphans
	[ ! -s orphans ] || fail "$1: parents not in the tree: $(tr '\n' ' ' < orphans)"
	leftovers=$(ls -A "$1" | grep -v '^snap-[0-9]*\.img$\|^tree$\|^lock$')
	[ -z "$leftovers" ] || fail "$1: files left over: $leftovers"
}
# Only one-line messages a session may print on stderr (RE: the ones allowed).
errors_only() {
	grep -v '^esky-shell: snapshots go to \|^esky-shell: program ' "$1" > "$1.rest"
	[ -z "$2" ] || grep -v -- "$2" "$1.rest" > "$1.other" || true
	[ -z "$2" ] || [ ! -s "$1.other" ] || { cat "$1.other" >&2; fail "unexpected messages in $1"; }
	[ -n "$2" ] || [ ! -s "$1.rest" ] || { cat "$1.rest" >&2; fail "unexpected messages in $1"; }
}
# Run CMD in a user and mount namespace (skip where that is not allowed).
in_ns() {
	command -v unshare > /dev/null || { echo "store-test $case: SKIP: no unshare" >&2; exit 77; }
	unshare -Urm true 2> /dev/null || { echo "store-test $case: SKIP: no user namespace" >&2; exit 77; }
	unshare -Urm "$@"
}

case $case in
concurrent)
	rounds=${ROUNDS:-6}
	for s in a b; do
		mkfifo in.$s || exit 99
		"$shell" --store store "$counter" 0 5 < in.$s > out.$s 2> err.$s &
		pids="$pids $!"
		eval "sh_$s=$!"
	done
	exec 3> in.a 4> in.b
	printf 'break counter.c:59\nrun\nevery 20ms\n' >&3
	printf 'break counter.c:59\nrun\nevery 20ms\n' >&4
	for r in $(seq 1 $rounds); do
		# A manual snapshot each, at once.
		printf 'snapshot a%d\n' $r >&3
		printf 'snapshot b%d\n' $r >&4
		wait_count out.a '^Snapshot [0-9]* at ' $r
		wait_count out.b '^Snapshot [0-9]* at ' $r
		ida=$(sed -n 's/^Snapshot \([0-9]*\) at .*/\1/p' out.a | tail -n 1)
		idb=$(sed -n 's/^Snapshot \([0-9]*\) at .*/\1/p' out.b | tail -n 1)
		# Both run (timer snapshots: 5 ms a line, 20 ms a snapshot), then rewind.
		printf 'continue 12\nrewind %d\nprint %d\n' $ida $((1000 + r)) >&3
		printf 'continue 12\nrewind %d\nprint %d\n' $idb $((1000 + r)) >&4
		wait_count out.a "^$((1000 + r)) (0x" 1
		wait_count out.b "^$((1000 + r)) (0x" 1
		grep -q "^Rewound to snapshot $ida, " out.a || fail "session a: rewind $ida did not work"
		grep -q "^Rewound to snapshot $idb, " out.b || fail "session b: rewind $idb did not work"
	done
	printf 'quit\n' >&3
	printf 'quit\n' >&4
	exec 3>&- 4>&-
	wait $sh_a || { cat err.a >&2; fail "session a exited with status $?"; }
	wait $sh_b || { cat err.b >&2; fail "session b exited with status $?"; }
	# (A temporary file gets its name with its lock held: no session takes
	# the other's for a leftover, and says nothing of it.)
	errors_only err.a ''
	errors_only err.b ''
	ids_said out.a > ids.a
	ids_said out.b > ids.b
	[ -z "$(comm -12 ids.a ids.b)" ] || fail "ids said by both sessions: $(comm -12 ids.a ids.b | tr '\n' ' ')"
	[ "$(grep -c '(timer)' out.a)" -gt 0 ] && [ "$(grep -c '(timer)' out.b)" -gt 0 ] ||
		fail "no timer snapshot in a session (nothing tested)"
	sort ids.a ids.b > ids.said
	tree_consistent store
	cmp -s ids.said tree.ids || { diff ids.said tree.ids >&2; fail "the tree is not what the sessions said they took (<: said, >: tree)"; }
	images_open store
	echo "store-test $case: $(wc -l < ids.a) + $(wc -l < ids.b) snapshots, ids 1-$(sort -n tree.ids | tail -n 1), all listed and opening"
	;;
readonly)
	printf 'break counter.c:59\nrun\nsnapshot\ncontinue 3\nsnapshot\n' > make.esky
	"$shell" --store store --batch -x make.esky "$counter" 0 5 > make.out 2>&1 || { cat make.out >&2; fail "could not make the store"; }
	cp -a store orig || exit 99
	cat > ro.esky <<-EOF
	break counter.c:59
	tree
	rewind 1
	continue 2
	snapshot
	every 20ms
	continue 10
	forget 2
	rewind 2
	export 2 $tmp/x.ckpt
	tree
	EOF
	in_ns sh -c 'mount --bind store store && mount -o remount,ro,bind store &&
		exec "$0" --store store --batch -x ro.esky > ro.out 2> ro.err' "$shell"
	st=$?
	[ $st -eq 1 ] || { cat ro.out ro.err >&2; fail "the session's status is $st, expected 1 (failed commands)"; }
	grep -q '^Rewound to snapshot 1, ' ro.out || { cat ro.out ro.err >&2; fail "rewind 1 in a read-only store"; }
	grep -q '^Rewound to snapshot 2, ' ro.out || { cat ro.out ro.err >&2; fail "rewind 2 in a read-only store"; }
	"$esky" info x.ckpt > /dev/null 2>&1 || fail "export to a writable place did not work"
	# What may be said: each failure one line naming the read-only store.
	errors_only ro.err 'Read-only file system'
	n=$(grep -c . ro.err.rest)
	[ "$n" -ge 2 ] || { cat ro.err >&2; fail "snapshot and forget did not fail"; }
	for f in orig/*; do
		cmp -s "$f" "store/${f#orig/}" || fail "store/${f#orig/} changed"
	done
	[ "$(ls -A store | wc -l)" -eq "$(ls -A orig | wc -l)" ] || fail "files appeared in the store: $(ls -A store)"
	# The two trees the session printed are the one before.
	grep -c '^ *\*\? *#[0-9]' ro.out > /dev/null
	echo "store-test $case: $n one-line errors, rewinds and export worked, the store unchanged"
	;;
full)
	mkdir store || exit 99
	cat > full.esky <<-EOF
	break counter.c:59
	run
	EOF
	for i in $(seq 1 12); do printf 'snapshot\ncontinue 2\n' >> full.esky; done
	printf 'every 20ms\ncontinue 20\nevery off\nrewind 1\ncontinue\ntree\n' >> full.esky
	in_ns sh -c 'mount -t tmpfs -o size=256k,mode=0700 tmpfs store &&
		"$0" --store store --batch -x full.esky "$1" 0 5 > full.out 2> full.err; st=$?
		# What the store holds, before the tmpfs goes.
		cp -a store kept; exit $st' "$shell" "$counter"
	st=$?
	[ $st -eq 1 ] || { cat full.out full.err >&2; fail "the session's status is $st, expected 1 (failed commands)"; }
	grep -q 'No space left on device' full.err || { cat full.err >&2; fail "the store never filled up (nothing tested)"; }
	errors_only full.err 'No space left on device'
	grep -q '^Rewound to snapshot 1, ' full.out || { cat full.out full.err >&2; fail "rewind 1 in a full store"; }
	tree_consistent kept
	ids_said full.out > ids.said
	cmp -s ids.said tree.ids || { diff ids.said tree.ids >&2; fail "the tree is not what the session said it took (<: said, >: tree)"; }
	images_open kept
	echo "store-test $case: $(wc -l < tree.ids) snapshots kept, $(grep -c . full.err.rest) one-line errors"
	;;
*)
	echo "store-test: unknown case $case" >&2
	exit 99
	;;
esac
exit 0
