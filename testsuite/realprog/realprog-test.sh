#!/bin/bash
# Real programs of the machine, not written by us, checkpointed mid-run,
# killed and resumed with the output of a plain run (issue 9).
# usage: realprog-test.sh ESKY SRCDIR CASE [user]
#
#   cow           python3 and a child sharing 32 MiB copy-on-write since a
#                 fork (cow.py): the child's image refers to the parent's
#                 pages, the file holds them once; resumed, the same output
#   python        python3 with five threading threads (threads.py), each
#                 half-way through a loop of its work: spinning on the GIL,
#                 in Event.wait, in a timed Condition.wait, in a sleep loop;
#                 checkpointed under esky start (SIGUSR1), killed, resumed.
#                 The same pid and native thread ids after the resume (the
#                 script prints comparisons); esky info lists the threads.
#   python.norst  the same checkpoint, but the original carries on to its
#                 end instead of being killed; then the checkpoint resumes.
#   chain         python3 threads.py through 10 checkpoint-resume cycles:
#                 each resumed process checkpointed again at the next stage
#                 and killed; the outputs joined are the plain run's.
#   xz            xz -T2 -1 -k compressing 64 MiB under esky start,
#                 checkpointed after its first MiB of output, killed; the
#                 output file cut back to where the checkpoint left it; the
#                 resumed xz writes the rest: the same bytes as a plain
#                 xz -T2 -1, which decompress to the input. The checkpoint
#                 must show xz mid-run (its output position short of the
#                 end), or the test fails.
#   xz.attach     xz -T2 -1 -c > FILE started outside esky, frozen by
#                 esky checkpoint PID --kill after its first MiB; resumed.
#   pipeline      sh -c 'seq 1 60000000 | grep 7 | wc -l' (a tree of four
#                 processes and two pipes) under esky start, checkpointed
#                 once seq has written 32 MiB, killed, resumed: the output
#                 of a plain run. The checkpoint must show the pipeline
#                 mid-run (seq, grep and wc still running after it was
#                 written, no output yet), or the test fails; esky info
#                 lists the four processes.
#   pipeline.attach  the same pipeline started outside esky, its output to
#                 a file, frozen by esky checkpoint PID --kill (the whole
#                 tree) after seq's 32 MiB, resumed: the file gets the
#                 plain run's output.
#
# With "user": as uid/gid 65534 (from root with setpriv, from copies of
# esky and its agent in the work directory; as another user, as is).
# Exit 0 pass, 1 fail, 77 skip, 99 harness error.
set -u
esky=$1 src=$2 case=$3 user=${4:-}
name=$case${user:+.$user}
case $esky in /*) ;; *) esky=$PWD/$esky ;; esac
case $src in /*) ;; *) src=$PWD/$src ;; esac
tmp=$(mktemp -d /tmp/esky-realprog.XXXXXX) || exit 99
roots=		# process trees we started and have not killed or reaped
cleanup() {
	for r in $roots; do kill_tree "$r"; done
	rm -rf "$tmp"
}
# PID is reaped: never kill it again (its number may be another's now).
forget() {
	set -- "$1" $roots
	roots=
	p=$1
	shift
	for r; do [ "$r" = "$p" ] || roots="$roots $r"; done
}
trap cleanup EXIT
cd "$tmp" || exit 99

fail() { echo "realprog-test $name: FAIL: $*" >&2; exit 1; }
skip() { echo "realprog-test $name: SKIP: $*" >&2; exit 77; }
expect_status() { [ "$2" -eq "$1" ] || fail "$3: exit status $2, expected $1"; }
has() { grep -q -- "$2" "$1" || { echo "--- $1:" >&2; cat "$1" >&2; fail "no '$2' in $1"; }; }
show() { echo "--- $1:" >&2; cat "$1" >&2; }
# Wait (polling, 30 s at most) until FILE has a line matching RE; fail
# early if process PID (a monitor we started) is gone meanwhile.
wait_for() {
	i=0
	while ! grep -q -- "$2" "$1" 2>/dev/null; do
		if ! kill -0 "$3" 2>/dev/null; then
			grep -q -- "$2" "$1" 2>/dev/null && return 0
			show "$1"
			fail "pid $3 ended before '$2' appeared in $1"
		fi
		i=$((i + 1))
		[ $i -le 3000 ] || { show "$1"; fail "timed out waiting for '$2' in $1"; }
		sleep 0.01
	done
}
# Wait until FILE has at least N bytes; fail if PID is gone first.
wait_size() {
	i=0
	while [ "$(stat -c %s "$1" 2>/dev/null || echo 0)" -lt "$2" ]; do
		kill -0 "$3" 2>/dev/null ||
			fail "pid $3 ended before $1 had $2 bytes: $4"
		i=$((i + 1))
		[ $i -le 3000 ] || fail "$1 did not reach $2 bytes in 30 s"
		sleep 0.01
	done
}
# PID and all its descendants, parents first.
tree() {
	echo "$1"
	for c in $(pgrep -P "$1"); do tree "$c"; done
}
# Kill PID and its descendants (a monitor, the namespace init of a
# threaded resume, the program), all at once, and wait until every one
# has exited: a killed xz must not write after its output is cut back.
kill_tree() {
	forget "$1"
	set -- $(tree "$1")
	kill -KILL "$@" 2>/dev/null
	wait "$1" 2>/dev/null
	i=0
	for p in "$@"; do
		while [ -e /proc/$p ] && [ "$(sed 's/^.*) //' /proc/$p/stat 2>/dev/null | cut -c1)" != Z ]; do
			i=$((i + 1))
			[ $i -le 3000 ] || fail "pid $p still runs 30 s after SIGKILL"
			sleep 0.01
		done
	done
}

# ---- the tools, and who runs them ----

python=/usr/bin/python3
[ -x $python ] || skip "no $python (Debian's python3) to run the scripts"
case $case in
xz*)	command -v xz > /dev/null || skip "no xz (Debian's xz-utils) installed" ;;
pipeline*)
	for t in seq grep wc; do
		command -v $t > /dev/null || skip "no $t installed"
	done ;;
esac
cp "$src/threads.py" "$src/gen-input.py" "$src/cow.py" . || exit 99
as=
if [ -n "$user" ] && [ "$(id -u)" -eq 0 ]; then
	command -v setpriv > /dev/null || skip "no setpriv to run as uid 65534"
	mkdir bin && cp "$esky" "$(dirname "$esky")/esky-agent" bin/ || exit 99
	esky=$tmp/bin/$(basename "$esky")
	as="setpriv --reuid=65534 --regid=65534 --clear-groups --"
	chmod 755 "$tmp" && chown -R 65534:65534 "$tmp" || exit 99
	for p in "$esky" $python; do
		$as test -x "$p" || skip "uid 65534 cannot run $p"
	done
fi
[ -z "$user" ] || [ "$($as id -u)" -ne 0 ] || fail "still root"
# Files made later belong to the user who runs the programs.
own() { [ -z "$as" ] || chown 65534:65534 "$@" || exit 99; }

# ---- python3 threads ----

# A stage's marker line on stderr: "@@stage S pid PID tids T1 ... T5".
marker_ids() { sed -n "s/^@@stage $2 pid \([0-9]*\) tids \(.*\)\$/\1 \2/p" "$1"; }

# Start threads.py STAGES under esky start, stdin a FIFO that never gives
# a line, and checkpoint it at stage 1 to ck.1: sets $orig (esky's pid),
# $prog, $ids ("PID TID..." of stage 1) and $marker (the marker's tail, to
# be the same at every stage in every resumed process).
start_python() {
	mkfifo stdin.0 && exec 3<> stdin.0 || exit 99
	$as "$esky" start -o ck.1 -- $python threads.py "$1" < stdin.0 > out.0 2> err.0 &
	orig=$!
	roots="$roots $orig"
	wait_for err.0 '^@@stage 1 ' $orig
	ids=$(marker_ids err.0 1)
	marker="pid ${ids%% *} tids ${ids#* }"
	prog=$(pgrep -P $orig)
	[ "${ids%% *}" = "$prog" ] || { show err.0; fail "the marker's pid is not esky's child $prog"; }
	kill -USR1 $orig
	wait_for err.0 '^esky: checkpoint written to ck\.1 ' $orig
	kill -0 $prog 2> /dev/null || fail "python ended before it was killed"
	$as "$esky" info ck.1 > info.1 || fail "esky info ck.1"
	has info.1 "^threads  *6 (tids $ids)\$"
}
plain_python() {
	yes go | head -n "$1" > go.all
	$as $python threads.py "$1" < go.all > plain.out 2> plain.err ||
		{ show plain.err; exit 99; }
	[ "$(grep -c '^@@stage ' plain.err)" -eq "$1" ] || { show plain.err; exit 99; }
}
# The joined outputs OUT... are the plain run's.
same_output() {
	cat "$@" > joined.out
	cmp -s plain.out joined.out || { diff plain.out joined.out >&2; fail "output differs from the plain run (< plain, > $*)"; }
	grep -q 'False' joined.out && fail "a comparison printed False"
	return 0
}

case $case in
cow)
	# Pages a child shares copy-on-write with its parent are stored once.
	echo go | $as $python cow.py > plain.out 2> plain.err || { show plain.err; exit 99; }
	mkfifo stdin.0 && exec 3<> stdin.0 || exit 99
	$as "$esky" start -o ck.1 -- $python cow.py < stdin.0 > out.0 2> err.0 &
	orig=$!
	roots="$roots $orig"
	wait_for err.0 '^ready$' $orig
	kill -USR1 $orig
	wait_for err.0 '^esky: checkpoint written to ck\.1 ' $orig
	kill_tree $orig
	exec 3>&-
	$as "$esky" info -v ck.1 > info.1 || fail "esky info -v ck.1"
	has info.1 '^processes   2: '
	# The child's image: at least 7000 of its pages (28 MiB) from the parent's.
	shared=$(sed -n 's/^memory .* \([0-9]*\) pages from the parent$/\1/p' info.1 | head -n 1)
	[ -n "$shared" ] && [ "$shared" -ge 7000 ] ||
		{ show info.1; fail "the child's image does not refer to its parent's pages"; }
	[ "$(stat -c %s ck.1)" -lt $((48 * 1024 * 1024)) ] ||
		fail "ck.1 is $(stat -c %s ck.1) bytes: the shared pages are stored twice"
	echo go > go.1
	timeout -k 5 30 $as "$esky" resume -q -f ck.1 < go.1 > out.1 2> err.1
	st=$?
	[ $st -eq 0 ] || { show err.1; fail "esky resume -f ck.1: exit status $st"; }
	cmp -s plain.out out.1 || { diff plain.out out.1 >&2; fail "output differs from the plain run"; }
	;;
python)
	plain_python 2
	start_python 2
	kill_tree $orig
	exec 3>&-
	printf 'go\ngo\n' > go.1
	timeout -k 5 30 $as "$esky" resume -q -f ck.1 < go.1 > out.1 2> err.1
	st=$?
	[ $st -eq 0 ] || { show err.1; fail "esky resume -f ck.1: exit status $st"; }
	has err.1 "^@@stage 2 $marker\$"
	same_output out.0 out.1
	;;
python.norst)
	plain_python 2
	start_python 2
	# The original, checkpointed, goes on: both stages, to its end.
	echo go >&3 && echo go >&3
	wait $orig
	expect_status 0 $? "the checkpointed original's esky"
	forget $orig
	exec 3>&-
	has err.0 "^@@stage 2 $marker\$"
	same_output out.0
	# Its output up to the checkpoint, then the resumed one's.
	sed -n '1,/^stage 1: all /p' out.0 > head.0
	timeout -k 5 30 $as "$esky" resume -q -f ck.1 < go.all > out.1 2> err.1
	st=$?
	[ $st -eq 0 ] || { show err.1; fail "esky resume -f ck.1 after the original ended: exit status $st"; }
	has err.1 "^@@stage 2 $marker\$"
	same_output head.0 out.1
	;;
chain)
	n=10
	plain_python $n
	start_python $n
	kill_tree $orig
	exec 3>&-
	# Cycle k: resume ck.k (its stdin a FIFO fed one "go"), wait for stage
	# k+1, checkpoint to ck.k+1, kill.
	outs=out.0
	for k in $(seq 1 $((n - 1))); do
		mkfifo stdin.$k && exec 3<> stdin.$k || exit 99
		$as "$esky" resume -f ck.$k -o ck.$((k + 1)) < stdin.$k > out.$k 2> err.$k &
		r=$!
		roots="$roots $r"
		echo go >&3
		wait_for err.$k "^@@stage $((k + 1)) " $r
		has err.$k "^@@stage $((k + 1)) $marker\$"
		kill -USR1 $r
		wait_for err.$k "^esky: checkpoint written to ck\.$((k + 1)) " $r
		kill_tree $r
		exec 3>&-
		outs="$outs out.$k"
	done
	$as "$esky" info ck.$n > info.$n || fail "esky info ck.$n"
	has info.$n "^threads  *6 (tids $ids)\$"
	echo go > go.$n
	timeout -k 5 30 $as "$esky" resume -q -f ck.$n < go.$n > out.$n 2> err.$n
	st=$?
	[ $st -eq 0 ] || { show err.$n; fail "esky resume -f ck.$n: exit status $st"; }
	same_output $outs out.$n
	;;

# ---- xz -T2 ----

xz | xz.attach)
	mib=64
	first=$((1 << 20))	# output bytes before the checkpoint
	$python gen-input.py $mib > in || exit 99
	own in
	$as xz -T2 -1 -c in > plain.xz || exit 99
	total=$(stat -c %s plain.xz)
	[ "$total" -gt $((4 * first)) ] || { echo "plain.xz: only $total bytes" >&2; exit 99; }
	if [ "$case" = xz ]; then
		out=in.xz
		$as "$esky" start -o ck -- xz -T2 -1 -k in < /dev/null > start.out 2> start.err &
		orig=$!
		roots="$roots $orig"
		wait_size $out $first $orig "xz was too quick"
		prog=$(pgrep -P $orig)
		kill -USR1 $orig
		wait_for start.err '^esky: checkpoint written to ck ' $orig
		kill_tree $orig
	else
		out=out.xz
		: > $out && : > xz.err && own $out xz.err
		# Without the fds it would inherit (CTest's): esky would refuse them.
		(
			for f in /proc/self/fd/*; do
				n=${f##*/}
				case $n in 0|1|2|255|*[!0-9]*) continue ;; esac
				eval "exec $n>&-" 2>/dev/null
			done
			exec $as xz -T2 -1 -c in
		) < /dev/null > $out 2> xz.err &
		prog=$!
		roots="$roots $prog"
		wait_size $out $first $prog "xz was too quick"
		# (bash's note of xz's death, "Killed", goes to /dev/null.)
		{
			$as "$esky" checkpoint -q $prog -o ck --kill 2> ck.err
			st=$?
			wait $prog
			xz_st=$?
		} 2> /dev/null
		forget $prog
		[ $st -eq 0 ] || { show ck.err; fail "esky checkpoint $prog --kill: exit status $st"; }
		expect_status 137 $xz_st "xz after esky checkpoint --kill (0: it had finished)"
	fi
	$as "$esky" info -v ck > info || fail "esky info -v ck"
	# Main thread and two compressing threads.
	has info "^threads  *3 (tids $prog [0-9]* [0-9]*)\$"
	pos=$(sed -n "s|^  fd [0-9]*  *$tmp/$out  .*  pos \([0-9]*\)\$|\1|p" info)
	inpos=$(sed -n "s|^  fd [0-9]*  *$tmp/in  .*  pos \([0-9]*\)\$|\1|p" info)
	[ -n "$pos" ] && [ -n "$inpos" ] || { show info; fail "no positions of in and $out in esky info"; }
	# The checkpoint is of xz mid-run: it had written part of its output.
	[ "$pos" -ge "$first" ] && [ "$pos" -lt "$total" ] ||
		fail "checkpoint not mid-run: $out at $pos of $total bytes"
	if [ "$case" = xz ]; then
		# What the killed original wrote past the checkpoint goes: the
		# resumed xz must write all the rest itself.
		truncate -s "$pos" $out || exit 99
	else
		[ "$(stat -c %s $out)" -eq "$pos" ] || fail "$out has $(stat -c %s $out) bytes, the checkpoint's position is $pos"
	fi
	timeout -k 5 60 $as "$esky" resume -q -f ck < /dev/null > res.out 2> res.err
	st=$?
	[ $st -eq 0 ] || { show res.err; fail "esky resume -f ck: exit status $st"; }
	[ ! -s res.out ] && [ ! -s res.err ] || { show res.out; show res.err; fail "output from the resumed xz"; }
	cmp plain.xz $out >&2 || fail "$out differs from plain xz -T2 -1's output (checkpoint at $pos of $total bytes)"
	xz -dc $out | cmp - in >&2 || fail "$out does not decompress to the input"
	echo "realprog-test $name: checkpoint at output $pos of $total, input $inpos of $((mib << 20))"
	;;
# ---- a shell pipeline ----

pipeline | pipeline.attach)
	cmd='seq 1 60000000 | grep 7 | wc -l'
	mid=$((32 << 20))	# bytes seq has written before the checkpoint
	$as /bin/sh -c "$cmd" < /dev/null > plain.out || exit 99
	[ "$(wc -l < plain.out)" -eq 1 ] || { show plain.out; exit 99; }
	# pipeline_pids ROOT: wait until seq, grep and wc run below ROOT and
	# seq has written $mid bytes; sets $pids ("PID:COMM ...").
	pipeline_pids() {
		i=0
		while :; do
			pids= seq_pid=
			for p in $(tree "$1"); do
				c=$(cat /proc/$p/comm 2>/dev/null)
				case $c in seq|grep|wc) pids="$pids $p:$c" ;; esac
				[ "$c" = seq ] && seq_pid=$p
			done
			if [ -n "$seq_pid" ] && [ "$(echo $pids | wc -w)" -eq 3 ]; then
				w=$(sed -n 's/^wchar: //p' /proc/$seq_pid/io 2>/dev/null)
				[ "${w:-0}" -ge $mid ] && return 0
			fi
			kill -0 "$1" 2>/dev/null || fail "pid $1 ended before seq had written $mid bytes: the pipeline was too quick"
			i=$((i + 1))
			[ $i -le 3000 ] || fail "no pipeline below pid $1 with seq past $mid bytes in 30 s (found:$pids)"
			sleep 0.01
		done
	}
	# Every one of $pids runs (not a zombie, not gone).
	pipeline_alive() {
		for pc in $pids; do
			st=$(sed 's/^.*) //' /proc/${pc%%:*}/stat 2>/dev/null | cut -c1)
			[ -n "$st" ] && [ "$st" != Z ] ||
				fail "${pc#*:} (pid ${pc%%:*}) had ended $1: the checkpoint is not of the pipeline mid-run"
		done
	}
	if [ "$case" = pipeline ]; then
		$as "$esky" start -o ck -- /bin/sh -c "$cmd" < /dev/null > out.0 2> err.0 &
		orig=$!
		roots="$roots $orig"
		pipeline_pids $orig
		kill -USR1 $orig
		wait_for err.0 '^esky: checkpoint written to ck ' $orig
		# Still running after the checkpoint: it was taken mid-run.
		pipeline_alive "when the checkpoint was written"
		kill_tree $orig
		[ ! -s out.0 ] || { show out.0; fail "the original printed before it was killed: the checkpoint is not of the pipeline mid-run"; }
		$as "$esky" info ck > info || fail "esky info ck"
		# sh and the three commands of its pipeline.
		grep -q '^processes  *4\b' info || { show info; fail "esky info ck: no line 'processes 4 ...'"; }
		out=out.1
		timeout -k 5 60 $as "$esky" resume -q -f ck < /dev/null > $out 2> res.err
		st=$?
		[ $st -eq 0 ] || { show res.err; fail "esky resume -f ck: exit status $st"; }
	else
		out=out.file
		: > $out && : > sh.err && own $out sh.err
		# Without the fds it would inherit (CTest's): esky would refuse them.
		(
			for f in /proc/self/fd/*; do
				n=${f##*/}
				case $n in 0|1|2|255|*[!0-9]*) continue ;; esac
				eval "exec $n>&-" 2>/dev/null
			done
			exec $as /bin/sh -c "$cmd"
		) < /dev/null > $out 2> sh.err &
		prog=$!
		roots="$roots $prog"
		pipeline_pids $prog
		pipeline_alive "before esky checkpoint"
		{
			$as "$esky" checkpoint -q $prog -o ck --kill 2> ck.err
			st=$?
			wait $prog
			sh_st=$?
		} 2> /dev/null
		forget $prog
		[ $st -eq 0 ] || { show ck.err; fail "esky checkpoint $prog --kill: exit status $st"; }
		expect_status 137 $sh_st "sh after esky checkpoint --kill (0: the pipeline had finished)"
		# The whole tree is killed with it (within 1 s: seq alone has
		# seconds of work left), and none of it printed.
		i=0
		for pc in $pids; do
			while [ -e /proc/${pc%%:*} ] && [ "$(sed 's/^.*) //' /proc/${pc%%:*}/stat 2>/dev/null | cut -c1)" != Z ]; do
				i=$((i + 1))
				[ $i -le 100 ] || fail "${pc#*:} (pid ${pc%%:*}) still runs 1 s after esky checkpoint --kill: the tree must be killed whole"
				sleep 0.01
			done
		done
		[ ! -s $out ] || { show $out; fail "the pipeline printed before it was killed: the checkpoint is not of it mid-run"; }
		$as "$esky" info ck > info || fail "esky info ck"
		# sh and the three commands of its pipeline.
		grep -q '^processes  *4\b' info || { show info; fail "esky info ck: no line 'processes 4 ...'"; }
		timeout -k 5 60 $as "$esky" resume -q -f ck < /dev/null > res.out 2> res.err
		st=$?
		[ $st -eq 0 ] || { show res.err; fail "esky resume -f ck: exit status $st"; }
		[ ! -s res.out ] && [ ! -s res.err ] || {
			for f in res.out res.err; do echo "--- $f (its first lines):" >&2; head -n 10 $f >&2; done
			fail "output from the resumed pipeline on esky's stdio (it goes to $out)"
		}
	fi
	cmp -s plain.out $out || {
		diff plain.out $out | head -n 20 >&2
		fail "output differs from the plain run (< plain, > resumed: $(wc -l < $out) lines, the first 20 of the diff above)"
	}
	echo "realprog-test $name: pipeline checkpointed after seq's first $mid bytes; $(cat $out) lines counted"
	;;
*)
	echo "realprog-test: unknown case $case" >&2
	exit 99
	;;
esac
exit 0
