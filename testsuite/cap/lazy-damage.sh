#!/bin/bash
# A lazy resume (esky resume --lazy) of a checkpoint whose page data was
# damaged after it was written: the damaged page is found when it is
# served, after the program started; the program never sees it (killed),
# esky says which page in one line and exits 1. Without --lazy the same
# checkpoint is refused before anything runs. And a SIGUSR1 checkpoint
# taken while the pages still come in holds them all. Root only: an ordinary user
# gets no userfaultfd for a lazy resume here (skip).
# usage: lazy-damage.sh ESKY HEARTBEAT
# Exit 0 pass, 1 fail, 77 skip, 99 harness error.
set -u
esky=$1 heartbeat=$2
[ "$(id -u)" = 0 ] || { echo "lazy-damage: not root: lazy resume needs CAP_SYS_PTRACE here"; exit 77; }
tmp=$(mktemp -d /tmp/esky-lazy-damage.XXXXXX) || exit 99
pids=
cleanup() {
	for p in $pids; do kill -KILL "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
cd "$tmp" || exit 99
fail() { echo "lazy-damage: FAIL: $*" >&2; exit 1; }
wait_for() {
	i=0
	while ! grep -q -- "$2" "$1" 2>/dev/null; do
		i=$((i + 1))
		[ $i -le 2000 ] || { cat "$1" >&2; fail "timed out waiting for '$2' in $1"; }
		sleep 0.01
	done
}

# heartbeat holding 32 MiB, checkpointed by SIGUSR1, then killed.
"$esky" start -o ck.img -- "$heartbeat" -p 20 -x "$tmp/marker" 32 > out 2> err &
monitor=$!
pids="$monitor"
wait_for err '^ready$'
kill -USR1 "$monitor"
wait_for err 'checkpoint written to'
kill -KILL "$monitor"
pkill -KILL -f "$heartbeat -p 20 -x $tmp/marker" 2>/dev/null
wait "$monitor" 2>/dev/null

# One byte of page data in the middle of the 32 MiB changed.
cp ck.img good.img
size=$(stat -c %s ck.img)
at=$((size / 2))
# The byte's bits all turned (a constant could be the byte it replaces).
byte=$(od -An -tu1 -j $at -N1 ck.img | tr -d ' ')
printf "\\$(printf %03o $((byte ^ 255)))" | dd of=ck.img bs=1 seek=$at conv=notrunc status=none
cmp -s ck.img good.img && fail "the byte at $at did not change"
touch marker

# Whole: refused before the program runs.
"$esky" resume -f ck.img > out.whole 2> err.whole
st=$?
[ $st -ne 0 ] || fail "esky resume of the damaged checkpoint exited 0"
grep -q 'checksum mismatch' err.whole || { cat err.whole >&2; fail "no checksum message (whole)"; }
grep -q '^resumed' out.whole && fail "the program ran (whole resume)"

# Lazy: the program starts, the page is refused when served, the program killed.
"$esky" resume --lazy -f ck.img > out.lazy 2> err.lazy
st=$?
[ $st -eq 1 ] || { cat err.lazy >&2; fail "esky resume --lazy exited $st, expected 1"; }
grep -Eq '^esky: (resume: )?ck.img: damaged: page data for 0x[0-9a-f]* \(file offset [0-9]*\) checksum mismatch; the program was killed$' err.lazy ||
	{ cat err.lazy >&2; fail "no one-line message naming the damaged page (lazy)"; }
grep -q '^memory' out.lazy && { cat out.lazy >&2; fail "the program saw its memory (lazy)"; }
[ "$(grep -c . err.lazy)" -eq 1 ] || { cat err.lazy >&2; fail "more than one line on stderr (lazy)"; }

# The undamaged checkpoint resumes lazily, its memory whole.
"$esky" resume --lazy -f good.img > out.good 2> err.good
st=$?
[ $st -eq 0 ] || { cat err.good >&2; fail "esky resume --lazy of the good checkpoint exited $st"; }
grep -q '^memory ok$' out.good || { cat out.good err.good >&2; fail "the program's memory is not whole (lazy)"; }
# SIGUSR1 at once after a lazy resume: the checkpoint waits for every page.
rm -f marker
"$esky" resume --lazy -f good.img -o again.img > out.again 2> err.again &
monitor=$!
pids="$monitor"
# Once esky blocks SIGUSR1 (from the start of its main), before the pages are in.
i=0
until [ $(( 0x$(awk '/^SigBlk:/ { print $2 }' /proc/$monitor/status 2>/dev/null || echo 0) & 0x200 )) -ne 0 ]; do
	i=$((i + 1))
	[ $i -le 2000 ] || fail "esky resume --lazy never blocked SIGUSR1"
	sleep 0.001
done
kill -USR1 "$monitor"
wait_for err.again 'checkpoint written to again.img'
kill -KILL "$monitor"
pkill -KILL -f "$heartbeat -p 20 -x $tmp/marker" 2>/dev/null
wait "$monitor" 2>/dev/null
touch marker
"$esky" resume -f again.img > out.again2 2> err.again2
st=$?
[ $st -eq 0 ] || { cat err.again err.again2 >&2; fail "the checkpoint taken during a lazy resume did not resume ($st)"; }
grep -q '^memory ok$' out.again2 || { cat out.again2 err.again2 >&2; fail "the checkpoint taken during a lazy resume lacks pages"; }
echo "lazy-damage: ok"
exit 0
