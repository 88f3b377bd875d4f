#!/bin/bash
# Long runs (issue 12): many checkpoint/resume cycles of one program, and
# many snapshot/rewind cycles in one esky-shell session. The program's
# transcript must be exactly that of a plain run, and esky's own open fds,
# memory and threads must stay flat: the test prints them at intervals and
# fails when they grow.
# usage: soak-test.sh ESKY ESKY_SHELL SOAK CASE N
#
#   checkpoint N  esky start's monitor takes N checkpoints (SIGUSR1), each
#                 between two steps of the program; then N cycles of esky
#                 resume of the last checkpoint, one step, SIGUSR1, the
#                 program killed. Printed: the fds, threads, VmRSS and
#                 VmHWM of the one monitor as it goes, and of each resume's
#                 monitor before its program is killed.
#   shell N       one esky-shell session, N cycles of: snapshot, continue
#                 (one step), print counter, rewind to the snapshot, print
#                 counter, continue (the same step again). Printed: the
#                 fds, threads, VmRSS and VmHWM of esky-shell.
#   shell-thaw N  the same with ESKY_REWIND=thaw (a new process each rewind)
#   chain-fds N   under ulimit -n 64, a chain of N snapshots (each the
#                 child of the one before), then rewind N and export N:
#                 each works, or fails in one line that names the cause
#                 (too many open files: each image of the chain holds one)
#
# Bounds, after a warm-up of a tenth of the cycles (at least 2): the same
# fds and threads, VmRSS within RSS_SLACK KiB (4096) and VmHWM within
# HWM_SLACK KiB (8192) of the warm-up's. Runs under ulimit -n 1024, the
# usual default, so that a leak of fds or a chain of images kept open
# shows as a failure.
#
# Exit 0 pass, 1 fail, 77 skip, 99 harness error.
set -u
esky=$1 shell=$2 soak=$3 case=$4 n=$5
RSS_SLACK=${RSS_SLACK:-4096} HWM_SLACK=${HWM_SLACK:-8192}
tmp=$(mktemp -d /tmp/esky-soak.XXXXXX) || exit 99
pids=
cleanup() {
	for p in $pids; do kill -KILL "$p" 2>/dev/null; done
	[ -n "${SOAK_KEEP:-}" ] && echo "soak-test: kept $tmp" >&2 || rm -rf "$tmp"
}
trap cleanup EXIT
cd "$tmp" || exit 99
ulimit -n 1024 || exit 99

fail() { echo "soak-test $case: FAIL: $*" >&2; exit 1; }
# Wait (polling, 60 s at most) until FILE has at least N lines matching RE.
wait_count() {
	local i=0
	while [ "$(grep -c -- "$2" "$1" 2>/dev/null)" -lt "$3" ]; do
		i=$((i + 1))
		[ $i -le 6000 ] || {
			tail -n 5 "$1" >&2
			[ -z "${WHY:-}" ] || { echo "--- $WHY:" >&2; cat "$WHY" >&2; ps -ef | grep -v grep | grep "$soak" >&2; }
			fail "timed out waiting for '$2' x$3 in $1"
		}
		sleep 0.01
	done
}
# "fds F threads T rss R hwm H" of process PID (KiB).
usage_of() {
	local fds threads rss hwm
	fds=$(ls /proc/$1/fd | wc -l)
	threads=$(ls /proc/$1/task | wc -l)
	rss=$(awk '/^VmRSS:/ { print $2 }' /proc/$1/status)
	hwm=$(awk '/^VmHWM:/ { print $2 }' /proc/$1/status)
	echo "fds $fds threads $threads rss $rss hwm $hwm"
}
# check_flat WHAT CYCLE "fds F threads T rss R hwm H": against the warm-up's.
base=
check_flat() {
	set -- "$1" "$2" $3
	if [ -z "$base" ]; then
		base="$4 $6 $8 ${10}"
		return
	fi
	set -- "$1" "$2" "$4" "$6" "$8" "${10}" $base
	[ "$3" -eq "$7" ] || fail "$1: $3 fds at cycle $2, $7 after the warm-up"
	[ "$4" -eq "$8" ] || fail "$1: $4 threads at cycle $2, $8 after the warm-up"
	[ "$5" -le $(($9 + RSS_SLACK)) ] || fail "$1: VmRSS $5 KiB at cycle $2, ${9} KiB after the warm-up"
	[ "$6" -le $((${10} + HWM_SLACK)) ] || fail "$1: VmHWM $6 KiB at cycle $2, ${10} KiB after the warm-up"
}
# lap: dt is the time since the last lap (s).
t_last=$(date +%s.%N)
lap() {
	local now
	now=$(date +%s.%N)
	dt=$(awk -v a="$t_last" -v b="$now" 'BEGIN { printf "%.1f", b - a }')
	t_last=$now
}
warm=$((n / 10))
[ $warm -ge 2 ] || warm=2
every=$((n / 10))
[ $every -ge 1 ] || every=1
# Print at the warm-up, every tenth of the run and at the end; check from the warm-up on.
report() {
	local u
	[ "$2" -ge $warm ] || return 0
	[ "$2" -eq $warm ] || [ $(($2 % every)) -eq 0 ] || [ "$2" -eq "$n" ] || return 0
	u=$(usage_of "$3") || fail "$1: cannot read /proc/$3"
	echo "soak $case: $1 cycle $2: $u"
	check_flat "$1" "$2" "$u"
}

case $case in
checkpoint)
	total=$((2 * n))
	"$soak" $total > plain.out || fail "the plain run failed"
	mkdir g
	: > out
	# (One step more than the cycles take: the program never ends by itself.)
	"$esky" start -o ck -- "$soak" -g g $((total + 1)) >> out 2> start.err &
	mon=$!
	pids="$pids $mon"
	for k in $(seq 1 "$n"); do
		: > g/go.$k
		WHY=resume.err wait_count out "^step $k " 1
		kill -USR1 $mon
		wait_count start.err '^esky: checkpoint written to ck ' $k
		report "esky start's monitor" $k $mon
	done
	lap
	echo "soak $case: $n checkpoints by one monitor in $dt s"
	prog=$(pgrep -P $mon)
	[ -n "$prog" ] || fail "no program under esky start"
	kill -KILL $prog
	wait $mon 2>/dev/null
	base=
	for c in $(seq 1 "$n"); do
		k=$((n + c))
		"$esky" resume -f ck >> out 2> resume.err &
		mon=$!
		pids="$pids $mon"
		: > g/go.$k
		WHY=resume.err wait_count out "^step $k " 1
		kill -USR1 $mon
		wait_count resume.err '^esky: checkpoint written to ck ' 1
		report "esky resume's monitor" $c $mon
		prog=$(pgrep -P $mon)
		[ -n "$prog" ] || fail "no program under esky resume (cycle $c)"
		kill -KILL $prog
		wait $mon 2>/dev/null
		[ $? -eq 137 ] || { cat resume.err >&2; fail "esky resume (cycle $c) did not end with its program"; }
	done
	cmp -s plain.out out || { diff plain.out out | head >&2; fail "the transcript differs from a plain run's"; }
	lap
	echo "soak $case: $n resume/checkpoint cycles in $dt s; transcript of $total steps right"
	;;
shell | shell-thaw)
	[ $case = shell ] || export ESKY_REWIND=thaw
	steps=$((n + 2))
	"$soak" $steps > plain.out || fail "the plain run failed"
	mkfifo in || exit 99
	"$shell" --store store "$soak" $steps < in > sh.out 2> sh.err &
	sh=$!
	pids="$pids $sh"
	exec 3> in
	printf 'break step_done\nrun\n' >&3
	wait_count sh.out '^Breakpoint 1, ' 1
	for c in $(seq 1 "$n"); do
		printf 'snapshot\ncontinue\nprint counter\nrewind %d\nprint counter\ncontinue\n' $c >&3
		if [ $c -ge $warm ] && { [ $c -eq $warm ] || [ $((c % every)) -eq 0 ] || [ $c -eq $n ]; }; then
			printf 'print %d\n' $((1000000000 + c)) >&3
			wait_count sh.out "^$((1000000000 + c)) (0x" 1
			report esky-shell $c $sh
		fi
	done
	printf 'quit\n' >&3
	exec 3>&-
	wait $sh
	st=$?
	[ $st -eq 0 ] || { tail sh.err >&2; fail "esky-shell exited with status $st"; }
	! grep -v '^esky-shell: snapshots go to store$' sh.err > errors ||
		{ head errors >&2; fail "esky-shell wrote errors"; }
	# The transcript expected, from the plain run's lines and the place of the breakpoint.
	where=$(sed -n 's/^Breakpoint 1, //p' sh.out | head -n 1)
	awk -v n=$n -v where="$where" '
		{ line[NR] = $0 }
		END {
			print line[1]; print "Breakpoint 1, " where
			for (c = 1; c <= n; c++) {
				print "Snapshot " c " at " where
				print line[c + 1]; print "Breakpoint 1, " where
				printf "%d (0x%x)\n", c + 1, c + 1
				print "Rewound to snapshot " c ", " where
				printf "%d (0x%x)\n", c, c
				print line[c + 1]; print "Breakpoint 1, " where
			}
		}' plain.out > expected
	grep -v '^Breakpoint 1 at \|^10[0-9]\{8\} (0x' sh.out > got
	cmp -s expected got || { diff expected got | head -n 20 >&2; fail "the session's transcript is not what it should be"; }
	lap
	echo "soak $case: $n snapshot/rewind cycles in $dt s; transcript right"
	;;
chain-fds)
	ulimit -n 64 || exit 99
	{
		printf 'break step_done\nrun\n'
		for c in $(seq 1 "$n"); do printf 'snapshot\ncontinue\n'; done
		printf 'rewind %d\nprint counter\nexport %d x.ckpt\n' "$n" "$n"
	} > s.esky
	"$shell" --store store --batch -x s.esky "$soak" $((n + 10)) > sh.out 2> sh.err
	[ "$(grep -c '^Snapshot ' sh.out)" -eq "$n" ] || { tail sh.err >&2; fail "not $n snapshots"; }
	grep -v '^esky-shell: snapshots go to store$' sh.err > errors
	if grep -q "^Rewound to snapshot $n, " sh.out; then
		grep -q "^$n (0x" sh.out || fail "rewind $n worked, but counter is not $n"
	else
		grep -q "^store/snap-[0-9]*\.img: Too many open files (each image of a chain of snapshots holds one: raise ulimit -n, or export the snapshot)\$" errors ||
			{ cat errors >&2; fail "rewind $n failed without saying why"; }
	fi
	[ -s x.ckpt ] || grep -q 'Too many open files (each image' errors ||
		{ cat errors >&2; fail "export $n failed without saying why"; }
	[ "$(grep -vc 'Too many open files (each image\|^the program is not running' errors)" -eq 0 ] ||
		{ cat errors >&2; fail "other errors than the open-file limit"; }
	echo "soak $case: $n snapshots in a chain under ulimit -n 64: $(grep -c . errors) error lines, each naming the cause"
	;;
*)
	echo "soak-test: unknown case $case" >&2
	exit 99
	;;
esac
exit 0
