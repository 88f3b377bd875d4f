#!/bin/sh
# The hand-off to gdb (issue 8): esky resume --gdb and --detach, and
# esky-shell's gdb and gcore, checked through what gdb prints.
# usage: handoff-test.sh ESKY ESKY_SHELL EXAMPLES_DIR VICTIM CASE
# Exit 0 pass, 1 fail, 77 skip (no gdb), 99 harness error.
set -u
esky=$1 shell=$2 examples=$3 victim=$4 case=$5
walk=$examples/walk
command -v gdb > /dev/null || { echo "handoff-test: no gdb" >&2; exit 77; }
tmp=$(mktemp -d /tmp/esky-handoff-test.XXXXXX) || exit 99
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 99

fail() { echo "handoff-test $case: FAIL: $*" >&2; exit 1; }
has() { grep -q -- "$2" "$1" || { echo "--- $1:" >&2; cat "$1" >&2; fail "no '$2' in $1"; }; }
hasnt() { ! grep -q -- "$2" "$1" || { echo "--- $1:" >&2; cat "$1" >&2; fail "'$2' in $1"; }; }
wait_for() {
	i=0
	while ! grep -q -- "$2" "$1" 2>/dev/null; do
		i=$((i + 1))
		[ $i -le 2000 ] || fail "timed out waiting for '$2' in $1"
		sleep 0.01
	done
}

# A checkpoint of walk at its second stop in step(), before step 2 moves.
"$walk" --steps 6 > plain.out || exit 99
"$esky" snap -q --at walk.c:105 --count 2 -o ck -- "$walk" --steps 6 > /dev/null || exit 99
ckpt=ck/0002-step-walk.c-105.ckpt
[ -f $ckpt ] || exit 99

case $case in
resume-gdb)
	# gdb sees the program stopped at the checkpoint's instruction; what it
	# changes is what the program carries on with.
	printf '%s\n' bt 'print w->steps' 'print dir_names' 'info registers rip' \
		'print w->steps = 40' quit |
		"$esky" resume --gdb -f $ckpt > out 2> err
	st=$?
	cat err >> out
	[ $st -eq 0 ] || { cat out >&2; fail "exit status $st"; }
	has out '#0  step (w=0x[0-9a-f]*) at .*walk.c:105$'
	has out '#1  0x[0-9a-f]* in main (argc=3, argv=0x[0-9a-f]*)'
	has out '\$1 = 1$'
	has out '\$2 = "NESW"$'
	has out 'rip  *0x[0-9a-f]*  *0x[0-9a-f]* <step+[0-9]*>$'
	has out '\$3 = 40$'
	has out "gdb is done; pid [0-9]* goes on under esky"
	# The program went on from gdb's change: step 41 is printed next.
	# Steps 2 to 6 of the plain run, numbered on from 40.
	has out '^step 41: '
	has out '^done: 45 steps'
	hasnt out '^step  2: '
	;;
resume-gdb-missing)
	# No gdb: said so, and the program goes on under esky.
	ESKY_GDB=/nonexistent/gdb "$esky" resume --gdb -f $ckpt > out 2> err
	[ $? -eq 0 ] || { cat out err >&2; fail "exit status"; }
	has err "cannot run /nonexistent/gdb"
	tail -n +2 plain.out > want
	cmp -s want out || { diff want out >&2; fail "output after a failed gdb"; }
	;;
detach)
	# --detach: nothing traces the program any more; gdb attaches; esky
	# checkpoint PID freezes it again; it runs to its end.
	mkfifo in || exit 99
	printf 'first\n' | "$esky" snap -q --at handle --count 1 -o vk -- "$victim" > /dev/null 2>&1
	"$esky" resume --detach -f vk/0001-handle-*.ckpt < in > vout 2> verr &
	exec 3> in
	wait $! || { cat verr >&2; fail "esky resume --detach failed"; }
	has verr "pid [0-9]* resumed from .*, detached"
	pid=$(sed -n 's/.*pid \([0-9]*\) resumed.*/\1/p' verr)
	[ -d /proc/$pid ] || fail "the program is gone"
	grep -q '^TracerPid:	0$' /proc/$pid/status || fail "still traced: $(grep TracerPid /proc/$pid/status)"
	gdb -batch -nx -p $pid -ex 'print total' > g.out 2>&1
	has g.out '^\$1 = 5$'
	"$esky" checkpoint -q $pid -o again.ckpt || fail "esky checkpoint of the detached program"
	"$esky" check -q again.ckpt || fail "its checkpoint does not check"
	printf 'abc\nexit 7\n' >&3
	exec 3>&-
	i=0
	while [ -d /proc/$pid ] && [ $i -lt 2000 ]; do i=$((i + 1)); sleep 0.01; done
	has vout '^1: first (total 5)$'
	has vout '^2: abc (total 8)$'
	# The later checkpoint resumes too, with its own input.
	printf 'x\nexit 3\n' | "$esky" resume -q -f again.ckpt > aout
	[ $? -eq 3 ] || fail "resume of the second checkpoint: status"
	# It was taken in the read after line 1, writing to vout (a file of its
	# own, not esky's stdio: it goes on writing there, at its offset).
	[ ! -s aout ] || fail "output on the resuming esky's stdout: $(cat aout)"
	has vout '^1: first (total 5)$'
	has vout '^2: x (total 6)$'
	"$esky" resume --detach --gdb -f again.ckpt 2> e
	[ $? -eq 2 ] || fail "--detach --gdb accepted"
	;;
shell-gdb)
	# esky-shell's gdb: gdb gets the program as it stands, without our
	# breakpoints in its code; afterwards the session goes on from gdb's
	# change, and the breakpoints are back.
	printf '%s\n' 'break walk.c:105' run 'continue 2' gdb where continue 'delete' continue > s.esky
	printf '%s\n' 'x/1bx $pc' 'print w->steps' 'print w->steps = 40' quit |
		"$shell" --store st --batch -x s.esky "$walk" --steps 6 > out 2>&1
	st=$?
	[ $st -eq 0 ] || { cat out >&2; fail "esky-shell exit status $st"; }
	# Our int3 (0xcc) is not what gdb reads at the breakpoint's address.
	hasnt out '0xcc$'
	has out '\$1 = 2$'
	has out '^Back from gdb, step at walk.c:105$'
	# The breakpoint still stops it: once more at step 41.
	awk '/^Back from gdb/ { back = 1 } back && /^Breakpoint 1, step at walk.c:105$/ { ok = 1 } END { exit !ok }' out ||
		{ cat out >&2; fail "the breakpoint did not stop the program after gdb"; }
	has out '^step 41: '
	has out '^done: 44 steps'
	has out '^\[program exited with status 0\]$'
	;;
shell-gcore)
	# gcore N FILE and gcore FILE: cores gdb reads as the live program.
	printf '%s\n' 'break walk.c:105' run 'continue 2' snapshot 'continue' 'gcore now.core' \
		'gcore 1 snap1.core' 'gcore 9 x.core' 'gcore /nonexistent/dir/y.core' gcore \
		'gcore 1 st/tree' 'export 1 st/snap-1.img' > s.esky
	"$shell" --store st --batch -x s.esky "$walk" --steps 6 > out 2>&1
	[ $? -eq 1 ] || { cat out >&2; fail "esky-shell: the failing gcore commands did not make status 1"; }
	has out '^Core of the program written to now.core'
	has out '^Core of snapshot 1 written to snap1.core'
	has out '^no snapshot 9'
	has out '^cannot write /nonexistent/dir/y.core: No such file or directory$'
	has out '^usage: gcore'
	# The store's own files are never written over (issue 12).
	has out '^st/tree is a file of the store st: give another file name$'
	has out '^st/snap-1.img is a file of the store st: give another file name$'
	[ "$(head -n 1 st/tree)" = "esky-store 1" ] || fail "the store's tree was written over"
	"$(dirname "$shell")/esky" check -q st/snap-1.img || fail "snap-1.img was written over"
	[ ! -e x.core ] || fail "a core for a snapshot that does not exist"
	[ -z "$(ls -A st | grep -v '^lock$\|^tree$\|^snap-1.img$')" ] || fail "leftovers in the store: $(ls -A st)"
	[ "$(stat -c %a now.core)" = 600 ] || fail "core mode $(stat -c %a now.core)"
	gdb -batch -nx -ex bt -ex 'print w->steps' "$walk" snap1.core > g1 2>&1
	has g1 '^#0  step (w=0x[0-9a-f]*) at .*walk.c:105$'
	has g1 '^\$1 = 2$'
	gdb -batch -nx -ex bt -ex 'print w->steps' "$walk" now.core > g2 2>&1
	has g2 '^#1  0x[0-9a-f]* in main'
	has g2 '^\$1 = 3$'
	;;
*)
	echo "handoff-test: unknown case $case" >&2
	exit 99
	;;
esac
exit 0
