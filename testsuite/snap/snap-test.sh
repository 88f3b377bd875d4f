#!/bin/sh
# esky snap and esky check, as a script or a test suite uses them (issue 8).
# usage: snap-test.sh ESKY EXAMPLES_DIR VICTIM CASE
# Exit 0 pass, 1 fail, 77 skip, 99 harness error.
set -u
esky=$1 examples=$2 victim=$3 case=$4
walk=$examples/walk
tmp=$(mktemp -d /tmp/esky-snap-test.XXXXXX) || exit 99
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 99

fail() { echo "snap-test $case: FAIL: $*" >&2; exit 1; }
# expect_status WANT GOT WHAT
expect_status() { [ "$2" -eq "$1" ] || fail "$3: exit status $2, expected $1"; }
# A line of a file, or fail.
has() { grep -q -- "$2" "$1" || { echo "--- $1:" >&2; cat "$1" >&2; fail "no '$2' in $1"; }; }
no_tmp_files() {
	left=$(ls -A "$1" | grep -v '^[0-9][0-9][0-9][0-9]-.*\.ckpt$')
	[ -z "$left" ] || fail "$1 holds more than complete checkpoints: $left"
}
# Wait (polling, 20 s at most) until FILE has a line matching RE.
wait_for() {
	i=0
	while ! grep -q -- "$2" "$1" 2>/dev/null; do
		i=$((i + 1))
		[ $i -le 2000 ] || fail "timed out waiting for '$2' in $1"
		sleep 0.01
	done
}

case $case in
walk)
	# A checkpoint at each of the first 3 hits of walk.c:105, in order, each
	# resuming into the rest of the plain run; the run's stdout is the plain one.
	"$walk" > plain.out || exit 99
	"$esky" snap --at walk.c:105 --count 3 -o out --tsv=table.tsv -- "$walk" > snap.out 2> snap.err
	expect_status 0 $? "esky snap of walk"
	cmp -s plain.out snap.out || { diff plain.out snap.out >&2; fail "stdout under esky snap differs from the plain run"; }
	ls out > files
	printf '0001-step-walk.c-105.ckpt\n0002-step-walk.c-105.ckpt\n0003-step-walk.c-105.ckpt\n' > files.want
	cmp -s files files.want || { diff files.want files >&2; fail "checkpoint files"; }
	has table.tsv "^file	location	hit	run time	bytes$"
	[ "$(wc -l < table.tsv)" -eq 4 ] || fail "table.tsv has not 1+3 lines"
	for k in 1 2 3; do
		f=out/000$k-step-walk.c-105.ckpt
		has table.tsv "^$f	walk.c:105	$k	[0-9.]*	$(stat -c %s $f)$"
		"$esky" resume -q -f $f > resumed.out 2> resumed.err
		expect_status 0 $? "esky resume of $f"
		tail -n +$k plain.out > want.out
		cmp -s want.out resumed.out || { diff want.out resumed.out >&2; fail "$f resumes into other output"; }
	done
	has snap.err "3 checkpoints in out"
	"$esky" check out/*.ckpt > check.out || fail "esky check of fresh checkpoints"
	[ "$(grep -c ': ok$' check.out)" -eq 3 ] || fail "esky check: not 3 ok lines"
	no_tmp_files out
	;;
stdio)
	# stdin, stdout, stderr and the exit status are the program's own.
	printf 'a\nbb\nccc\n' | "$victim" > plain.out 2> plain.err
	plain=$?
	expect_status 3 $plain "plain victim"
	printf 'a\nbb\nccc\n' | "$esky" snap -q --at handle -o out -- "$victim" > snap.out 2> snap.err
	expect_status $plain $? "esky snap of the victim"
	cmp -s plain.out snap.out || fail "stdout differs"
	cmp -s plain.err snap.err || { diff plain.err snap.err >&2; fail "stderr differs (-q)"; }
	[ "$(ls out | wc -l)" -eq 3 ] || fail "not 3 checkpoints for 3 lines"
	# A snapshot at the first line, resumed with other input after it: the
	# resumed program reads the resuming esky's stdin.
	printf 'a\n' | "$esky" snap -q --at handle -o one -- "$victim" > /dev/null 2>&1
	expect_status 1 $? "esky snap of the victim fed one line"
	printf 'zz\nexit 42\n' | "$esky" resume -q -f one/0001-handle-snapvictim.c-*.ckpt > res.out 2> res.err
	expect_status 42 $? "resume with 'exit 42' fed"
	printf '1: a (total 1)\n2: zz (total 3)\n' > want.out
	cmp -s want.out res.out || { diff want.out res.out >&2; fail "resumed output"; }
	# The program's own failure status comes through unchanged.
	printf 'exit 5\n' | "$esky" snap -q --at main -o out5 -- "$victim" > /dev/null 2>&1
	expect_status 5 $? "program exiting 5"
	;;
every)
	# Timer snapshots on run time, at most --count of them, named timer-.
	"$esky" snap -q --every 50ms --count 2 -o out --tsv=t.tsv -- "$walk" --slow --steps 8 > snap.out
	expect_status 0 $? "esky snap --every"
	[ "$(ls out | grep -c '^000[12]-timer-.*\.ckpt$')" -eq 2 ] || { ls out >&2; fail "2 timer checkpoints"; }
	[ "$(ls out | wc -l)" -eq 2 ] || fail "more than --count timer checkpoints"
	has t.tsv "	timer	2	"
	"$esky" check out/* > /dev/null || fail "esky check of timer checkpoints"
	;;
errors)
	# Every mistake: one line, nonzero, nothing run, nothing written.
	"$esky" snap --at nosuchfunction -o out -- "$walk" > o 2> e
	expect_status 2 $? "unknown location"
	has e "esky: snap: --at nosuchfunction: "
	[ "$(wc -l < e)" -eq 1 ] || fail "more than one line for an unknown location"
	[ ! -s o ] || fail "the program ran although a location does not exist"
	"$esky" snap --at walk.c:9999 -o out -- "$walk" > o 2> e
	expect_status 2 $? "line without code"
	[ ! -s o ] || fail "the program ran although a line does not exist"
	[ -z "$(ls out 2>/dev/null)" ] || fail "files written for a failed esky snap"
	"$esky" snap --at main -o out -- /nonexistent/prog 2> e
	expect_status 127 $? "missing program"
	has e "/nonexistent/prog"
	"$esky" snap -- "$walk" 2> e; expect_status 2 $? "no --at"
	has e "give --at LOCATION or --every DURATION"
	"$esky" snap --at main --count 0 -- "$walk" 2> e; expect_status 2 $? "--count 0"
	"$esky" snap --every soon -- "$walk" 2> e; expect_status 2 $? "--every soon"
	has e "--every soon: give a duration"
	"$esky" snap --at main 2> e; expect_status 2 $? "no program"
	"$esky" snap --bogus 2> e; expect_status 2 $? "bad option"
	has e "unknown option --bogus"
	echo x > afile
	"$esky" snap --at main -o afile -- "$walk" 2> e; expect_status 2 $? "-o a file"
	has e "afile: not a directory"
	# A location never reached: reported, and exit 3 although the program succeeded.
	"$esky" snap --at main --at nap -o nr -- "$walk" > o 2> e
	expect_status 3 $? "never reached"
	has e "esky: snap: --at nap was never reached"
	[ "$(ls nr | wc -l)" -eq 1 ] || fail "the reached location's checkpoint is missing"
	# Old checkpoints in -o DIR are not mixed with new ones.
	"$esky" snap -q --at main -o nr -- "$walk" > o 2> e
	expect_status 2 $? "-o DIR with an earlier run"
	has e "already holds checkpoints of an earlier run"
	"$esky" snap -q --replace --at step --count 2 -o nr -- "$walk" > o 2> e
	expect_status 0 $? "--replace"
	[ "$(ls nr | sed 's/[0-9]*\.ckpt$//')" = "0001-step-walk.c-
0002-step-walk.c-" ] || { ls nr >&2; fail "--replace left old files or named new ones wrong"; }
	;;
interrupt)
	# Ctrl-C (SIGINT to the foreground group) ends the program as without
	# esky; the checkpoints taken so far are complete.
	mkfifo in || exit 99
	# setsid: a group of our own, as a terminal's foreground job has.
	# (A background job of a script is no group leader: setsid makes a new
	# session without forking, so $! is the new group's id. Such a job
	# starts with SIGINT ignored, which esky would keep for the program, as
	# nohup: perl sets it back to the default a terminal's job has.)
	setsid perl -e '$SIG{INT} = "DEFAULT"; exec @ARGV or exit 99' \
		"$esky" snap --at handle -o out -- "$victim" --wait < in > out.txt 2> err.txt &
	pgid=$!
	exec 3> in
	echo first >&3
	wait_for out.txt '^waiting$'
	kill -INT "-$pgid"
	wait $pgid
	expect_status 130 $? "esky snap after Ctrl-C"
	exec 3>&-
	[ "$(ls out | wc -l)" -eq 1 ] || fail "the checkpoint taken before Ctrl-C is missing"
	no_tmp_files out
	"$esky" check out/* > /dev/null || fail "the checkpoint before Ctrl-C is not complete"
	# kill from another process, sent to esky, goes on to the program.
	mkfifo in2 || exit 99
	"$esky" snap --at handle -o out2 -- "$victim" --wait < in2 > out2.txt 2> err2.txt &
	pid=$!
	exec 3> in2
	echo first >&3
	wait_for out2.txt '^waiting$'
	kill -TERM $pid
	wait $pid
	expect_status 143 $? "esky snap after kill -TERM to esky"
	exec 3>&-
	"$esky" check out2/* > /dev/null || fail "the checkpoint before SIGTERM is not complete"
	no_tmp_files out2
	;;
stale)
	# esky check names what changed since the checkpoint.
	cp "$walk" ./prog || exit 99
	"$esky" snap -q --at main -o out -- ./prog > /dev/null || fail "esky snap of a copy of walk"
	"$esky" check out/*.ckpt > /dev/null 2> e || { cat e >&2; fail "fresh checkpoint refused"; }
	printf 'x' >> ./prog
	"$esky" check out/*.ckpt > o 2> e
	expect_status 1 $? "esky check of a changed program"
	has e "esky: check: $tmp/prog changed since the checkpoint"
	[ "$(wc -l < e)" -eq 1 ] || fail "more than one line"
	"$esky" check nothing-here.ckpt 2> e
	expect_status 2 $? "esky check of a missing file"
	head -c 5000 out/*.ckpt > damaged.ckpt
	"$esky" check damaged.ckpt 2> e
	expect_status 1 $? "esky check of a damaged file"
	has e "damaged.ckpt"
	;;
*)
	echo "snap-test: unknown case $case" >&2
	exit 99
	;;
esac
exit 0
