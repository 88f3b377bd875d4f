#!/bin/bash
# Faults, each tried many times (issue 12): esky and esky-shell killed at
# random moments, a full disk and a file size limit, a program that dies
# while it is being checkpointed.
# usage: faults-test.sh ESKY ESKY_SHELL FAULTPROG REAPER CASE [N]
#
#   kill-checkpoint N  esky killed (SIGKILL) at a random moment of a
#                      checkpoint, N times: esky start's SIGUSR1 (with its
#                      copy-on-write copy) and esky checkpoint PID in turn.
#                      Afterwards the checkpoint's file is the previous
#                      complete one or the new complete one (esky info and
#                      check accept it, it resumes with its memory intact);
#                      at most one temporary file is left and the next
#                      checkpoint removes it; the program runs on untraced,
#                      without esky's signal mask or scratch mapping, or was
#                      killed by SIGKILL (never a crash); no other process
#                      of it (the copy) is left
#   kill-snapshot N    esky-shell killed at a random moment of its timer
#                      snapshots and of manual ones, N times, on one store:
#                      the store opens, every snapshot its tree names is
#                      complete (esky check) and rewinds with its memory
#                      intact; the next session removes the temporary
#                      files; the program (which holds breakpoints) died
#                      with esky-shell, nothing of it is left
#   disk-full          checkpoints (esky start's SIGUSR1, esky checkpoint
#                      PID), esky-shell snapshots (manual and every),
#                      export and esky snap onto a full tmpfs (a user and
#                      mount namespace of our own): one line naming the
#                      file and the cause, nothing half-written, earlier
#                      files intact, the program runs on with its output
#                      right
#   fsize              the same under a file size limit (ulimit -f):
#                      esky is not killed by SIGXFSZ
#   disk-full.user, fsize.user  the same as uid 65534 (root only; else skip)
#   program-dies N     the program ends while esky checkpoints it, N
#                      times: it exits, crashes (SIGSEGV) or gets SIGKILL at
#                      a random moment of esky start's SIGUSR1, of esky
#                      checkpoint PID and of an esky-shell snapshot: esky
#                      says how it ended, leaves no process and no
#                      temporary file, and a file under the checkpoint's
#                      name is complete
#
# Exit 0 pass, 1 fail, 77 skip, 99 harness error.
set -u
esky=$1 shell=$2 prog=$3 reaper=$4 case=$5 iters=${6:-10}
# The case runs under the reaper (a child subreaper): the orphans of a
# killed esky come to it, and it logs how each ended to $tmp/reaped.
if [ -z "${FAULTS_TMP:-}" ]; then
	tmp=$(mktemp -d /tmp/esky-faults.XXXXXX) || exit 99
	self=$(cd "$(dirname "$0")" && pwd)/${0##*/}
	FAULTS_TMP=$tmp "$reaper" "$tmp/reaped" "$self" "$@"
	st=$?
	for d in /proc/[0-9]*; do
		[ "$(readlink "$d/exe" 2> /dev/null)" = "$tmp/hb" ] && kill -KILL "${d#/proc/}" 2> /dev/null
	done
	rm -rf "$tmp"
	exit $st
fi
tmp=$FAULTS_TMP
pids=
cleanup() {
	for p in $pids; do kill -KILL "$p" 2>/dev/null; done
}
trap cleanup EXIT
cd "$tmp" || exit 99

fail() { echo "faults-test $case: FAIL: $*" >&2; exit 1; }
skip() { echo "faults-test $case: SKIP: $*" >&2; exit 77; }
expect_status() { [ "$2" -eq "$1" ] || fail "$3: exit status $2, expected $1"; }
has() { grep -q -- "$2" "$1" || { echo "--- $1:" >&2; cat "$1" >&2; fail "no '$2' in $1"; }; }
# Wait (polling, 20 s at most) until FILE has a line matching RE.
wait_for() {
	i=0
	while ! grep -q -- "$2" "$1" 2>/dev/null; do
		i=$((i + 1))
		[ $i -le 2000 ] || { cat "$1" >&2; fail "timed out waiting for '$2' in $1"; }
		sleep 0.01
	done
}
# Wait until FILE has more than N lines.
wait_lines() {
	i=0
	while [ "$(wc -l < "$1")" -le "$2" ]; do
		i=$((i + 1))
		[ $i -le 2000 ] || fail "$1 did not grow past $2 lines: $3"
		sleep 0.01
	done
}
# The temporary files esky leaves in DIR (none when all is well).
tmp_files() { ls -A "$1" | grep '\.esky-tmp\.' ; }
# A random delay for sleep, in seconds: half of them in the first 10 ms
# (the program stopped, syscalls run in it), the rest up to MS ms.
rand_delay() {
	if [ $((RANDOM % 2)) = 0 ]; then
		printf '0.%03d' $((RANDOM % 10))
	else
		printf '0.%03d' $((RANDOM % $1))
	fi
}
# The processes running our copy of the program, ./hb.
hb_procs() {
	for d in /proc/[0-9]*; do
		[ "$(readlink "$d/exe" 2> /dev/null)" = "$tmp/hb" ] && echo "${d#/proc/}"
	done
}
# The program PID after its monitor was killed: either it runs on as
# itself (untraced, esky's signal mask and scratch mapping gone), or it
# was killed (SIGKILL: esky had it run syscalls, PTRACE_O_EXITKILL) and
# the reaper saw it end so. Nothing else of ./hb runs. Prints "alive" or
# "gone".
after_kill() {
	local p=$1 what=$2 others
	others=$(hb_procs | grep -v -x "$p")
	[ -z "$others" ] || fail "$what: other processes of the program are left: $others ($(cat /proc/$others/status 2>/dev/null | grep -E '^(State|PPid|TracerPid)' | tr '\n' ' '))"
	if [ -d /proc/$p ] && ! grep -q '^State:[[:space:]]*Z' /proc/$p/status; then
		grep -q '^TracerPid:[[:space:]]*0$' /proc/$p/status || fail "$what: pid $p is still traced"
		grep -q '^SigBlk:[[:space:]]*0*$' /proc/$p/status ||
			fail "$what: pid $p was left with signals blocked: $(grep SigBlk /proc/$p/status)"
		! grep -q ' r-xp 00000000 00:00 0 *$' /proc/$p/maps ||
			fail "$what: pid $p was left with esky's scratch mapping: $(grep ' r-xp 00000000 00:00 0 *$' /proc/$p/maps)"
		echo alive
		return
	fi
	i=0
	while ! grep -q "^$p " reaped; do
		i=$((i + 1))
		[ $i -le 500 ] || fail "$what: pid $p is gone but was not reaped"
		sleep 0.01
	done
	grep -q "^$p signal 9$" reaped || fail "$what: pid $p ended: $(grep "^$p " reaped) (not SIGKILL: esky's state?)"
	echo gone
}
# After a killed checkpoint, the file ck is the last complete one (kept in
# prev.ckpt), or none if there was none, or a new complete one (esky info
# and esky check accept it; it becomes prev.ckpt).
check_ck() {
	if [ ! -e ck ]; then
		[ ! -e prev.ckpt ] || fail "$1: ck is gone"
		return
	fi
	cmp -s ck prev.ckpt && return
	"$esky" info ck > info.out 2>&1 || { cat info.out >&2; fail "$1: esky info refuses ck"; }
	"$esky" check -q ck > check.out 2>&1 || { cat check.out >&2; fail "$1: esky check refuses ck"; }
	cp ck prev.ckpt || exit 99
	good=$((good + 1))
}
# Every process the reaper saw end: the programs (exit 0 after their
# memory check) and what EXITKILL killed; never a crash.
reaped_clean() {
	if grep -v -E '^[0-9]+ (exit 0|signal 9)$' reaped; then
		fail "a process of the program ended badly (above; see reaped)"
	fi
}

# The program's copy: its processes are found by /proc/PID/exe.
cp "$prog" hb || exit 99

case $case in
kill-checkpoint)
	good=0 alive=0 killed=0 k=0 mib=16
	while [ $k -lt "$iters" ]; do
		# A: esky start, SIGUSR1, esky killed.
		k=$((k + 1))
		rm -f restored
		out=hb.$k.out
		"$esky" start -o ck ./hb -x restored $mib >> $out 2> st.$k.err &
		e=$!
		pids="$pids $e"
		wait_for st.$k.err '^ready$'
		prog=$(pgrep -P $e | head -n 1)
		[ -n "$prog" ] || fail "no program under esky"
		pids="$pids $prog"
		wait_for $out '^beat '
		[ "$(tmp_files . | wc -l)" -le 1 ] || fail "iteration $k: temporary files: $(tmp_files .)"
		kill -USR1 $e
		sleep "$(rand_delay 150)"
		kill -KILL $e 2> /dev/null
		wait $e 2> /dev/null
		check_ck "iteration $k (esky start, SIGUSR1)"
		state=$(after_kill $prog "iteration $k (esky start, SIGUSR1)") || exit 1
		# B: esky checkpoint PID of the program orphaned, esky killed.
		if [ "$state" = alive ] && [ $k -lt "$iters" ]; then
			k=$((k + 1))
			n=$(wc -l < $out)
			wait_lines $out $((n + 1)) "iteration $k: the program does not run on"
			"$esky" checkpoint $prog -o ck 2> ck.$k.err &
			e=$!
			pids="$pids $e"
			sleep "$(rand_delay 150)"
			kill -KILL $e 2> /dev/null
			wait $e 2> /dev/null
			check_ck "iteration $k (esky checkpoint PID)"
			state=$(after_kill $prog "iteration $k (esky checkpoint PID)") || exit 1
		fi
		# The program, if it ran on, checks its memory and ends (exit 0).
		if [ "$state" = alive ]; then
			alive=$((alive + 1))
			touch restored
			i=0
			while [ -d /proc/$prog ]; do
				i=$((i + 1))
				[ $i -le 1000 ] || fail "iteration $k: the program does not end"
				sleep 0.01
			done
			grep -q "^$prog exit 0$" reaped || fail "iteration $k: the program ran on with its memory damaged: $(grep "^$prog " reaped)"
		else
			killed=$((killed + 1))
		fi
		# What the file holds resumes with its memory intact.
		if [ -e ck ]; then
			touch restored
			timeout -s KILL 60 "$esky" resume -q -f ck -o r.ckpt > res.out 2> res.err
			st=$?
			[ $st -eq 0 ] || { cat res.err >&2; fail "iteration $k: esky resume -f ck: exit status $st"; }
		fi
	done
	# The next uninterrupted checkpoint removes what the last kill left.
	rm -f restored
	"$esky" start -o ck ./hb -x restored $mib >> hb.end.out 2> end.err &
	e=$!
	pids="$pids $e"
	wait_for end.err '^ready$'
	kill -USR1 $e
	wait_for end.err '^esky: checkpoint written to ck '
	kill -TERM $e
	wait $e 2> /dev/null
	[ -z "$(tmp_files .)" ] || fail "temporary files remain after a complete checkpoint: $(tmp_files .)"
	reaped_clean
	[ -z "$(hb_procs)" ] || fail "processes of the program are left: $(hb_procs)"
	echo "faults-test $case: $iters kills: $good complete checkpoints kept, the program ran on $alive times, was killed $killed times"
	;;
kill-snapshot)
	mib=8 k=0 checked=0 orphans=0
	{
		echo 'break beat'
		echo 'run'
		for i in $(seq 100); do printf 'snapshot\ncontinue\n'; done
	} > manual.esky
	while [ $k -lt "$iters" ]; do
		k=$((k + 1))
		# A new store every 10 sessions: each begins with a whole snapshot.
		[ $((k % 10)) != 1 ] || { rm -rf st && checked=0; }
		rm -f restored
		if [ $((k % 2)) = 1 ]; then
			how="every 20ms"
			"$shell" --batch --store st -ex 'every 20ms' -ex run ./hb -x restored $mib > sh.$k.out 2> sh.$k.err &
		else
			how="snapshot at a breakpoint"
			"$shell" --batch --store st -x manual.esky ./hb -x restored $mib > sh.$k.out 2> sh.$k.err &
		fi
		s=$!
		pids="$pids $s"
		wait_for sh.$k.err '^ready$'
		sleep "$(rand_delay 400)"
		kill -KILL $s
		wait $s 2> /dev/null
		what="iteration $k ($how)"
		# The program, which held breakpoints, died with esky-shell.
		i=0
		while [ -n "$(hb_procs)" ]; do
			i=$((i + 1))
			[ $i -le 200 ] || fail "$what: the program is left: $(hb_procs)"
			sleep 0.01
		done
		# The next session opens the store and removes the temporary files.
		"$shell" --batch --store st -ex 'info snapshots' > info.out 2> info.err ||
			{ cat info.err >&2; fail "$what: the store does not open"; }
		[ -z "$(tmp_files st)" ] || fail "$what: temporary files left in the store: $(tmp_files st)"
		ids=$(awk 'NR > 1 { print $1 }' info.out)
		# Every snapshot the tree names is complete.
		for id in $ids; do
			[ "$id" -gt $checked ] || continue
			[ -f st/snap-$id.img ] || fail "$what: the tree names snapshot $id, st/snap-$id.img is missing"
			"$esky" check -q st/snap-$id.img > check.out 2>&1 ||
				{ cat check.out >&2; fail "$what: snapshot $id does not check"; }
			checked=$id
		done
		# An image the tree does not name (the kill came between its
		# rename and its record): the next session removed it, with a note.
		for f in st/snap-*.img; do
			[ -e "$f" ] || continue
			id=${f#st/snap-}
			id=${id%.img}
			echo "$ids" | grep -q -x "$id" || fail "$what: $f is left, the tree does not name it"
		done
		grep -q 'a snapshot its session did not record' info.err && orphans=$((orphans + 1))
		# The newest snapshot rewinds, its memory intact.
		[ -n "$ids" ] || continue
		last=$(echo "$ids" | sort -n | tail -n 1)
		touch restored
		"$shell" --batch --store st -ex "rewind $last" -ex continue > rw.out 2> rw.err ||
			{ cat rw.out rw.err >&2; fail "$what: rewind $last"; }
		has rw.out '^memory ok$'
		has rw.out '^\[program exited with status 0\]$'
	done
	reaped_clean
	echo "faults-test $case: $iters kills, $checked snapshots in the last store checked, $orphans unrecorded images removed by the next session"
	;;
disk-full | fsize)
	# The files go to d/: a 24 MiB tmpfs that fill() fills (disk-full, in
	# a user and mount namespace of our own), or a folder where lim runs
	# a command under a 1 MiB file size limit (fsize).
	if [ $case = disk-full ]; then
		command -v unshare > /dev/null || skip "no unshare"
		if [ -z "${FAULTS_NS:-}" ]; then
			FAULTS_NS=1 unshare -Urm "$0" "$@"
			exit $?
		fi
		mkdir d && mount -t tmpfs -o size=24m,mode=0700 tmpfs d ||
			skip "cannot mount a tmpfs in a user namespace"
		why='No space left on device'
		fill() {
			dd if=/dev/zero of=d/fill bs=64K 2> /dev/null
			sync
		}
		unfill() { rm -f d/fill; }
		lim() { "$@"; }
		limit_pid() { :; }
	else
		command -v prlimit > /dev/null || skip "no prlimit"
		mkdir d || exit 99
		why='File too large'
		fill() { :; }
		unfill() { :; }
		lim() { prlimit --fsize=1048576 "$@"; }
		limit_pid() { prlimit --pid "$1" --fsize=1048576; }
	fi
	# one_line FILE RE: FILE is one line matching RE.
	one_line() {
		[ "$(wc -l < "$1")" -eq 1 ] || { cat "$1" >&2; fail "$1: not one line"; }
		has "$1" "$2"
	}
	nothing_left() {
		[ -z "$(tmp_files d)" ] || fail "$1: temporary files left: $(tmp_files d)"
		[ -z "$(ls -A d/st 2> /dev/null | grep '\.esky-tmp\.')" ] || fail "$1: temporary files left in the store"
	}
	# 1. esky start: a complete checkpoint, then SIGUSR1 with the limit.
	"$esky" start -o d/ck ./hb -x restored 8 >> hb.out 2>> st.err &
	e=$!
	pids="$pids $e"
	wait_for st.err '^ready$'
	p=$(pgrep -P $e | head -n 1)
	kill -USR1 $e
	wait_for st.err '^esky: checkpoint written to d/ck '
	cp d/ck ck.orig || exit 99
	fill
	limit_pid $e
	kill -USR1 $e
	wait_for st.err '^esky: checkpoint: '
	grep -v -e '^ready$' -e '^esky: checkpoint written to' -e '^esky: checkpoint of pid .* taken' st.err > st.msgs
	one_line st.msgs "^esky: checkpoint: cannot write d/ck: $why\$"
	cmp -s d/ck ck.orig || fail "esky start: d/ck changed by the failed checkpoint"
	nothing_left "esky start's failed checkpoint"
	n=$(wc -l < hb.out)
	wait_lines hb.out $((n + 2)) "the program stopped after the failed checkpoint"
	# 2. esky checkpoint PID of the same program, its monitor gone.
	kill -KILL $e
	wait $e 2> /dev/null
	lim "$esky" checkpoint $p -o d/ck 2> ck.err
	expect_status 1 $? "esky checkpoint PID with the limit"
	one_line ck.err "^esky: checkpoint: cannot write d/ck: $why\$"
	cmp -s d/ck ck.orig || fail "esky checkpoint: d/ck changed by the failed checkpoint"
	nothing_left "esky checkpoint PID's failed checkpoint"
	n=$(wc -l < hb.out)
	wait_lines hb.out $((n + 2)) "the program stopped after esky checkpoint"
	touch restored
	while [ -d /proc/$p ]; do sleep 0.01; done
	grep -q "^$p exit 0$" reaped || fail "the program ended: $(grep "^$p " reaped)"
	has hb.out '^memory ok$'
	rm -f restored
	# 3. esky-shell: a store with snapshot 1, then a session with the
	# limit: snapshot, export and timer snapshots fail, each in one line;
	# the program goes on to check its memory (memory ok).
	unfill
	"$shell" --batch --store d/st -ex 'break beat' -ex run -ex snapshot ./hb -x restored 8 \
		> s1.out 2> s1.err || { cat s1.err >&2; fail "esky-shell: the first snapshot"; }
	cp -p d/st/tree tree.orig && cp -p d/st/snap-1.img snap1.orig || exit 99
	fill
	cat > s2.esky <<-EOF
	break beat
	run
	snapshot
	export 1 d/ex.ckpt
	delete
	every 20ms
	continue
	EOF
	lim "$shell" --batch --store d/st -x s2.esky ./hb -x restored 8 > s2.out 2> s2.err &
	s=$!
	pids="$pids $s"
	# (The timer's line is on stdout, between the program's.)
	wait_for s2.out 'timer snapshot'
	touch restored
	wait $s
	expect_status 1 $? "esky-shell with the limit"
	grep "$why" s2.err s2.out > s2.msgs
	# (A timer snapshot that fails when it is completed, after the program
	# ran on, is announced, then "could not be recorded ...; timer
	# snapshots off": one line of the failure.)
	[ "$(grep -c '^s2.err:' s2.msgs)" -eq 2 ] && [ "$(grep -c '^s2.out:' s2.msgs)" -eq 1 ] ||
		{ cat s2.err s2.out >&2; fail "esky-shell: not one line per failure"; }
	has s2.msgs "^s2.err:cannot write d/st/\(snap-2\.img\|tree\): $why\$"
	has s2.msgs "^s2.err:cannot write d/ex\.ckpt: $why\$"
	has s2.msgs "^s2.out:\(timer snapshot refused\|snapshot [0-9]* could not be recorded\): cannot write d/st/\(snap-[0-9]*\.img\|tree\): $why; timer snapshots off\$"
	has s2.out '^memory ok$'
	has s2.out '^\[program exited with status 0\]$'
	# (The ids the failures took are not given again: "next" may grow.)
	[ "$(grep -v '^next' d/st/tree)" = "$(grep -v '^next' tree.orig)" ] && cmp -s d/st/snap-1.img snap1.orig || { diff tree.orig d/st/tree >&2; ls -la d/st >&2; fail "esky-shell: the store changed"; }
	[ ! -e d/ex.ckpt ] || fail "esky-shell: a failed export left d/ex.ckpt"
	nothing_left "esky-shell's failed snapshots"
	# 4. esky snap: the first snapshot fails; the program runs to its end
	# (it ends itself after 200 ms: status 3), nothing is left.
	rm -f restored
	lim "$esky" snap --at beat --count 2 -o d/snaps -- ./hb -d 200:exit 8 > sn.out 2> sn.err
	expect_status 3 $? "esky snap with the limit (the program's status)"
	grep "$why" sn.err > sn.msgs
	one_line sn.msgs "d/snaps/0001-beat-.*: $why"
	[ "$(grep -c '^beat ' sn.out)" -ge 5 ] || fail "esky snap: the program did not run on"
	[ -z "$(ls -A d/snaps 2> /dev/null)" ] || fail "esky snap: files left: $(ls -A d/snaps)"
	unfill
	reaped_clean
	echo "faults-test $case: each failed in one line ($why), nothing left, the program ran on"
	;;
program-dies)
	hows=(exit segv kill)
	declare -A want=([exit]=3 [segv]=139 [kill]=137)
	# no_trace WHAT: nothing of the program runs, no temporary file, and
	# a file ck (if any) is complete.
	no_trace() {
		i=0
		while [ -n "$(hb_procs)" ]; do
			i=$((i + 1))
			[ $i -le 200 ] || fail "$1: processes of the program are left: $(hb_procs)"
			sleep 0.01
		done
		[ -z "$(tmp_files .)" ] || fail "$1: temporary files left: $(tmp_files .)"
		if [ -e ck ]; then
			"$esky" check -q ck > check.out 2>&1 || { cat check.out >&2; fail "$1: ck does not check"; }
			rm -f ck
		fi
	}
	# one_error FILE WHAT: at most one line of esky's besides its notes.
	one_error() {
		grep -v -e '^ready$' -e '^esky: checkpoint written to' -e '^esky: checkpoint of pid .* \(taken\|written\)' \
			-e '^esky-shell: snapshots go to' "$1" > errs
		[ "$(wc -l < errs)" -le 1 ] || { cat "$1" >&2; fail "$2: more than one line"; }
	}
	done_ck=0 failed_ck=0
	for k in $(seq "$iters"); do
		how=${hows[$((k % 3))]}
		d=$((RANDOM % 150))
		# esky start: SIGUSR1 at once, the program ends D ms after ready.
		"$esky" start -o ck ./hb -d $d:$how 16 > st.out 2> st.err &
		e=$!
		pids="$pids $e"
		wait_for st.err '^ready$'
		kill -USR1 $e
		wait $e
		st=$?
		what="iteration $k (esky start, the program's $how after $d ms)"
		[ $st -eq ${want[$how]} ] || { cat st.err >&2; fail "$what: esky's status $st, expected ${want[$how]}"; }
		one_error st.err "$what"
		[ -e ck ] && done_ck=$((done_ck + 1)) || failed_ck=$((failed_ck + 1))
		no_trace "$what"
		# esky checkpoint PID (no copy: the program stopped throughout;
		# it ends when esky lets it go, or at once from SIGKILL).
		(
			for f in /proc/self/fd/*; do
				n=${f##*/}
				case $n in 0|1|2|255|*[!0-9]*) continue ;; esac
				eval "exec $n>&-" 2>/dev/null
			done
			exec ./hb -d $d:$how 16
		) > p.out 2> p.err &
		p=$!
		pids="$pids $p"
		wait_for p.err '^ready$'
		"$esky" checkpoint $p -o ck > c.out 2> c.err &
		c=$!
		[ $how != kill ] || { sleep "$(rand_delay 80)"; kill -KILL $p 2> /dev/null; }
		wait $c
		st=$?
		wait $p 2> /dev/null
		what="iteration $k (esky checkpoint PID, the program's $how)"
		one_error c.err "$what"
		if [ $st -eq 0 ]; then
			done_ck=$((done_ck + 1))
		else
			failed_ck=$((failed_ck + 1))
			has c.err "^esky: checkpoint: .*$p"
		fi
		no_trace "$what"
		# esky-shell: timer snapshots while the program ends.
		"$shell" --batch --store st -ex 'every 10ms' -ex run ./hb -d $d:$how 8 > sh.out 2> sh.err
		what="iteration $k (esky-shell, the program's $how after $d ms)"
		case $how in
		exit) has sh.out '^\[program exited with status 3\]$' ;;
		*) has sh.out '^\(\[program .*\|Program received \)SIG\(SEGV\|KILL\)' ;;
		esac
		one_error sh.err "$what"
		no_trace "$what"
		[ -z "$(ls -A st | grep '\.esky-tmp\.')" ] || fail "$what: temporary files in the store"
		"$shell" --batch --store st -ex 'info snapshots' > info.out 2> info.err ||
			{ cat info.err >&2; fail "$what: the store does not open"; }
		for id in $(awk 'NR > 1 { print $1 }' info.out); do
			"$esky" check -q st/snap-$id.img > check.out 2>&1 ||
				{ cat check.out >&2; fail "$what: snapshot $id does not check"; }
		done
		rm -rf st
	done
	reaped_clean
	echo "faults-test $case: $iters times 3: $done_ck checkpoints complete, $failed_ck said why not"
	;;
disk-full.user | fsize.user)
	# The case above as uid and gid 65534, from copies it can reach.
	[ "$(id -u)" -eq 0 ] || skip "not root"
	command -v setpriv > /dev/null || skip "no setpriv"
	mkdir u && cp "$0" "$esky" "$(dirname "$esky")/esky-agent" "$shell" "$prog" "$reaper" u/ &&
		chown -R 65534:65534 u && chmod 711 "$tmp" || exit 99
	env -u FAULTS_TMP setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all \
		"$tmp/u/${0##*/}" "$tmp/u/${esky##*/}" "$tmp/u/${shell##*/}" "$tmp/u/${prog##*/}" \
		"$tmp/u/${reaper##*/}" ${case%.user}
	exit $?
	;;
*)
	echo "faults-test: unknown case $case" >&2
	exit 99
	;;
esac
exit 0
