#!/bin/bash
# Bugs found by trying esky (issue 12), each a case that failed before its fix.
# usage: reliability-test.sh ESKY ESKY_SHELL HEARTBEAT COUNTER CASE [THREADED]
#
#   chain-dir          esky start --chain DIR: incremental checkpoints on
#                      SIGUSR1, the last one resumed; a used DIR refused
#   killed-checkpoint  esky checkpoint SIGKILLed while it writes: the program
#                      carries on unharmed, and the next checkpoint to the
#                      same place removes the temporary file left behind
#   resume-default     a snapshot of an esky-shell store (incremental or in a
#                      store) resumed without -o: SIGUSR1 writes ./checkpoint,
#                      never over the snapshot, and the resume says so
#   output-refused     -o naming a file of a store, the snapshot resumed or its
#                      parent is refused before anything starts (resume, start,
#                      checkpoint, core); the store is left as it was
#   userns-refused     where user namespaces are not allowed, esky resume of a
#                      threaded checkpoint (THREADED: core-threads) fails with
#                      one line naming the cause and leaves nothing running; a
#                      single-threaded checkpoint still resumes there
#   userns-refused.user  the same as uid and gid 65534 (root only; else skip)
#
# Exit 0 pass, 1 fail, 77 skip, 99 harness error.
set -u
esky=$1 shell=$2 heartbeat=$3 counter=$4 case=$5 threaded=${6:-}
tmp=$(mktemp -d /tmp/esky-reliability.XXXXXX) || exit 99
pids=
cleanup() {
	for p in $pids; do kill -KILL "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
cd "$tmp" || exit 99

fail() { echo "reliability-test $case: FAIL: $*" >&2; exit 1; }
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

# A store of counter stopped at its printf twice: snap-1.img (full) and
# snap-2.img (incremental, parent snap-1.img); copies kept to compare.
make_store() {
	cat > s.esky <<-EOF
	break counter.c:59
	run
	snapshot
	continue
	snapshot
	quit
	EOF
	"$shell" --batch -x s.esky --store store "$counter" 0 20 > shell.out 2>&1 ||
		{ cat shell.out >&2; fail "esky-shell could not take the snapshots"; }
	[ -f store/snap-2.img ] || { cat shell.out >&2; fail "no snapshots"; }
	mkdir orig && cp -p store/* orig/ || exit 99
}
store_unchanged() {
	for f in orig/*; do
		cmp -s "$f" "store/${f#orig/}" || fail "$1: store/${f#orig/} changed"
	done
	[ -z "$(tmp_files store)" ] || fail "$1: temporary files in the store: $(tmp_files store)"
}

case $case in
chain-dir)
	# esky start --chain DIR (issue 10): each SIGUSR1 writes DIR/NNNN.ckpt,
	# the first whole, the next ones only what changed (their parent the
	# one before); the last one checks and resumes; a directory holding a
	# chain, or -o with --chain, is refused before anything starts.
	"$esky" start --chain d -- "$heartbeat" -b 64 > hb.out 2> hb.err &
	e=$!
	pids="$pids $e"
	wait_for hb.err '^ready$'
	for k in 1 2 3; do
		wait_for hb.out '^beat '
		kill -USR1 $e
		wait_for hb.err "^esky: checkpoint written to d/000$k\.ckpt "
	done
	prog=$(pgrep -P $e | head -n 1)
	kill -KILL $e $prog
	wait $e 2>/dev/null
	full=$(stat -c %s d/0001.ckpt)
	for k in 2 3; do
		sz=$(stat -c %s d/000$k.ckpt)
		[ "$sz" -lt $((full / 10)) ] || fail "d/000$k.ckpt is $sz bytes, the whole one $full: not incremental"
	done
	"$esky" info d/0003.ckpt > info.out || fail "esky info d/0003.ckpt"
	has info.out '^parent      0002\.ckpt '
	"$esky" check -q d/0003.ckpt || fail "d/0003.ckpt does not check"
	"$esky" resume -q -f d/0003.ckpt -o again.ckpt > res.out 2> res.err &
	r=$!
	pids="$pids $r"
	wait_for res.out '^beat '
	kill -TERM $r
	wait $r
	expect_status 143 $? "the resumed chain"
	"$esky" start --chain d -- "$heartbeat" -b 1 > /dev/null 2> again.err
	expect_status 1 $? "esky start --chain into a directory that holds a chain"
	has again.err '^esky: start: d already holds a chain of checkpoints (0001\.ckpt): give another directory$'
	"$esky" start -o x --chain e -- "$heartbeat" -b 1 > /dev/null 2> both.err
	expect_status 2 $? "esky start -o and --chain"
	[ ! -e e ] && [ ! -e x ] || fail "-o with --chain made files"
	;;
monitor-death)
	# esky start's monitor killed with SIGKILL: the program (no breakpoint
	# in it) runs on, untraced; esky checkpoint PID freezes it again.
	"$esky" start -q -o ck -- "$heartbeat" -b 16 > hb.out 2> hb.err &
	e=$!
	pids="$pids $e"
	wait_for hb.err '^ready$'
	wait_for hb.out '^beat '
	prog=$(pgrep -P $e | head -n 1)
	[ -n "$prog" ] || fail "no program under esky"
	pids="$pids $prog"
	kill -KILL $e
	wait $e 2>/dev/null
	n=$(wc -l < hb.out)
	wait_lines hb.out $((n + 3)) "the program stopped beating when its monitor died"
	grep -q '^TracerPid:	0$' /proc/$prog/status || fail "the program is still traced"
	"$esky" checkpoint -q "$prog" -o again.ckpt || fail "esky checkpoint of the orphaned program"
	"$esky" check -q again.ckpt || fail "its checkpoint does not check"
	n=$(wc -l < hb.out)
	wait_lines hb.out $((n + 3)) "the program stopped beating after esky checkpoint"
	;;
killed-checkpoint)
	# A program holding 384 MiB: writing it takes long enough to be caught.
	# Without the fds we inherited (CTest's pipe): esky would refuse it.
	# (255: bash reads this script through it; it is close-on-exec.)
	(
		for f in /proc/self/fd/*; do
			n=${f##*/}
			case $n in 0|1|2|255|*[!0-9]*) continue ;; esac
			eval "exec $n>&-" 2>/dev/null
		done
		exec "$heartbeat" -b -x restored 384
	) >> hb.out 2> hb.err &
	hb=$!
	pids="$pids $hb"
	wait_for hb.err '^ready$'
	"$esky" checkpoint "$hb" -o ck 2> ck1.err &
	e=$!
	pids="$pids $e"
	# Kill esky while its temporary file grows: past the first MiB, it
	# writes pages (the syscalls it runs inside the program are done).
	i=0
	while :; do
		f=$(tmp_files .) && [ -n "$f" ] && [ "$(stat -c %b "$f" 2>/dev/null || echo 0)" -gt 2048 ] && break
		kill -0 $e 2>/dev/null || { cat ck1.err >&2; fail "esky checkpoint ended before it was caught writing"; }
		i=$((i + 1))
		[ $i -le 4000 ] || fail "no temporary file of ck appeared"
		sleep 0.005
	done
	kill -KILL $e
	wait $e 2> /dev/null
	expect_status 137 $? "the killed esky checkpoint"
	[ -n "$(tmp_files .)" ] || fail "the killed esky left no temporary file (nothing to test)"
	[ ! -e ck ] || fail "ck exists after the killed checkpoint"
	# The kernel detached the program: it beats on, untraced.
	n=$(wc -l < hb.out)
	wait_lines hb.out $((n + 3)) "the program does not carry on after esky was killed"
	grep -q '^TracerPid:[[:space:]]*0$' /proc/$hb/status || fail "the program is still traced"
	# The next checkpoint to the same file removes what the killed one left.
	left=$(tmp_files .)
	"$esky" checkpoint "$hb" -o ck 2> ck2.err
	expect_status 0 $? "the second esky checkpoint"
	has ck2.err "^esky: removed \./$left ([0-9.]* MiB), left by an interrupted checkpoint$"
	[ -z "$(tmp_files .)" ] || fail "temporary files remain: $(tmp_files .)"
	"$esky" check ck > check.out 2>&1 || { cat check.out >&2; fail "esky check ck"; }
	# The original, still running, has its memory intact ...
	n=$(wc -l < hb.out)
	wait_lines hb.out $((n + 3)) "the program does not carry on after the second checkpoint"
	touch restored
	wait $hb
	expect_status 0 $? "the original heartbeat checking its memory"
	has hb.out '^memory ok$'
	# ... and so has the one resumed from ck, whose stdout is hb.out again
	# (opened O_APPEND: the checkpoint saved it as a file of its own).
	"$esky" resume -q -f ck > res.out 2> res.err
	expect_status 0 $? "esky resume -f ck"
	has hb.out '^resumed '
	[ "$(grep -c '^memory ok$' hb.out)" -eq 2 ] || { cat res.err >&2; fail "the resumed program did not check its memory"; }
	;;
resume-default)
	make_store
	# The incremental snapshot of the store, without -o.
	"$esky" resume -f store/snap-2.img > res.out 2> res.err &
	r=$!
	pids="$pids $r"
	wait_for res.err "^esky: store/snap-2.img is a snapshot of an esky-shell store: SIGUSR1 (kill -USR1 $r) writes checkpoints to \./checkpoint, not over it (-o FILE chooses)$"
	wait_lines res.out 0 "the resumed counter prints nothing"
	kill -USR1 $r
	wait_for res.err '^esky: checkpoint written to checkpoint '
	kill -TERM $r
	wait $r
	expect_status 143 $? "the resumed counter, terminated"
	store_unchanged "after a checkpoint of the resumed snap-2.img"
	"$esky" check store/snap-2.img checkpoint > check.out 2>&1 ||
		{ cat check.out >&2; fail "esky check of the store and ./checkpoint"; }
	"$esky" info checkpoint > info.out || fail "esky info checkpoint"
	if grep -q -i 'parent' info.out; then cat info.out >&2; fail "./checkpoint is not standalone"; fi
	# The full snap-1.img of the store: the same.
	rm checkpoint
	"$esky" resume -f store/snap-1.img > res1.out 2> res1.err &
	r=$!
	pids="$pids $r"
	wait_for res1.err "^esky: store/snap-1.img is a snapshot of an esky-shell store: .* writes checkpoints to \./checkpoint"
	kill -TERM $r
	wait $r
	# An incremental snapshot outside a store (copied with its parent).
	mkdir chain && cp store/snap-1.img store/snap-2.img chain/ || exit 99
	"$esky" resume -f chain/snap-2.img > res2.out 2> res2.err &
	r=$!
	pids="$pids $r"
	wait_for res2.err "^esky: chain/snap-2.img is an incremental snapshot: SIGUSR1 (kill -USR1 $r) writes checkpoints to \./checkpoint, not over it"
	kill -TERM $r
	wait $r
	store_unchanged "after the resumes"
	;;
output-refused)
	make_store
	mkdir chain && cp store/snap-1.img store/snap-2.img chain/ || exit 99
	ln -s store st || exit 99
	# refused F ARGS...: esky ARGS fails with status 2 and the one line F,
	# and the program never ran (it would print numbers; a resumed counter
	# runs for ever: the timeout).
	refused() {
		want=$1
		shift
		timeout -s KILL 10 "$esky" "$@" > out 2> err
		st=$?
		[ $st -eq 2 ] || { cat err >&2; fail "esky $*: exit status $st, expected 2"; }
		printf '%s\n' "$want" > err.want
		cmp -s err.want err || { diff err.want err >&2; fail "esky $*: message"; }
		[ ! -s out ] || fail "esky $*: the program ran"
	}
	for f in snap-1.img snap-2.img tree lock; do
		refused "esky: resume: store/$f is a file of the esky-shell store store: a checkpoint must not replace it; give another -o FILE" \
			resume -f store/snap-2.img -o store/$f
	done
	refused "esky: resume: st/snap-1.img is a file of the esky-shell store st: a checkpoint must not replace it; give another -o FILE" \
		resume -f chain/snap-2.img -o st/snap-1.img
	refused "esky: resume: chain/snap-2.img is the checkpoint being resumed: a checkpoint must not replace it; give another -o FILE" \
		resume -f chain/snap-2.img -o chain/snap-2.img
	refused "esky: resume: chain/snap-1.img is a parent of the snapshot being resumed: a checkpoint must not replace it; give another -o FILE" \
		resume -f chain/snap-2.img -o chain/snap-1.img
	refused "esky: start: store/snap-3.img is a file of the esky-shell store store: a checkpoint must not replace it; give another -o FILE" \
		start -o store/snap-3.img "$counter" 3 1
	refused "esky: checkpoint: store/tree is a file of the esky-shell store store: a checkpoint must not replace it; give another -o FILE" \
		checkpoint $$ -o store/tree
	refused "esky: core: store/snap-2.img is a file of the esky-shell store store: a core must not replace it; give another -o FILE" \
		core store/snap-2.img -o store/snap-2.img
	refused "esky: core: chain/snap-2.img is the checkpoint being read: a core must not replace it; give another -o FILE" \
		core chain/snap-2.img -o chain/snap-2.img
	store_unchanged "after the refusals"
	cmp -s chain/snap-1.img store/snap-1.img && cmp -s chain/snap-2.img store/snap-2.img ||
		fail "chain/ changed"
	# Other names are fine, in the store's directory too.
	"$esky" core -q store/snap-2.img -o store/mine.core || fail "esky core -o store/mine.core"
	;;
userns-refused)
	# A threaded program resumes in a user namespace of its own (its
	# threads get their tids back in a PID namespace made there). Forbid
	# them as an ordinary user can: in a user namespace of our own (our
	# uid mapped to itself), lower its user.max_user_namespaces to 0 (the
	# limit is per namespace, its owner may lower it); clone3 of another
	# then fails (ENOSPC on 6.18), as where the system allows none.
	[ -n "$threaded" ] || { echo "reliability-test: userns-refused needs THREADED" >&2; exit 99; }
	command -v unshare > /dev/null && command -v setpriv > /dev/null ||
		{ echo "reliability-test $case: SKIP: no unshare or setpriv" >&2; exit 77; }
	cp "$threaded" thr && cp "$counter" counter || exit 99
	if unshare -U -c true 2> /dev/null; then
		allowed=1
		# restricted CMD...: CMD there, without capabilities.
		restricted() {
			unshare -U -c --keep-caps sh -c 'echo 0 > /proc/sys/user/max_user_namespaces &&
				exec setpriv --inh-caps=-all --ambient-caps=-all "$@"' sh "$@"
		}
		probe=$(restricted sh -c 'unshare -U true 2> /dev/null; echo $?')
		case $probe in
		'') echo "reliability-test $case: SKIP: cannot lower user.max_user_namespaces in a user namespace" >&2
		    exit 77 ;;
		0) echo "reliability-test $case: user namespaces still allowed with user.max_user_namespaces 0" >&2
		   exit 99 ;;
		esac
	else
		# Not allowed here already: nothing to forbid.
		allowed=0
		restricted() { "$@"; }
	fi
	# A checkpoint of core-threads (four threads, waiting in usleep loops).
	"$esky" start -q -o thr.ckpt ./thr > thr.out 2> thr.err &
	e=$!
	pids="$pids $e"
	wait_for thr.err '^ready$'
	prog=$(pgrep -P $e | head -n 1)
	[ -n "$prog" ] || fail "no program under esky"
	pids="$pids $prog"
	kill -USR1 $e
	i=0
	while [ ! -e thr.ckpt ]; do
		i=$((i + 1))
		[ $i -le 2000 ] || { cat thr.err >&2; fail "no checkpoint of core-threads"; }
		sleep 0.01
	done
	kill -KILL $e $prog
	wait $e 2> /dev/null
	"$esky" info thr.ckpt > info.out || fail "esky info thr.ckpt"
	has info.out '^threads     4 (tids '
	# Where they are allowed, it resumes (the control).
	if [ $allowed = 1 ]; then
		"$esky" resume -q -f thr.ckpt -o thr2.ckpt > ok.out 2> ok.err &
		r=$!
		pids="$pids $r"
		i=0
		until [ -n "$(pgrep -P $r)" ] && [ -n "$(pgrep -P "$(pgrep -P $r | head -n 1)")" ]; do
			i=$((i + 1))
			[ $i -le 2000 ] || { cat ok.err >&2; fail "the threaded checkpoint does not resume where user namespaces are allowed"; }
			sleep 0.01
		done
		sleep 0.2
		kill -TERM $r
		wait $r
		expect_status 143 $? "the threaded program resumed where user namespaces are allowed"
	fi
	# Forbidden: one line, nonzero status, the program never ran.
	restricted timeout -s KILL 30 "$esky" resume -f thr.ckpt -o thr3.ckpt > res.out 2> res.err
	st=$?
	[ $st -ne 0 ] || fail "esky resume of threads without user namespaces: exit status 0"
	[ $st -ne 137 ] || fail "esky resume of threads without user namespaces: timed out"
	[ "$(wc -l < res.err)" -eq 1 ] || { cat res.err >&2; fail "not one line on stderr"; }
	has res.err '^esky: resume: .*user namespaces are not allowed'
	[ ! -s res.out ] || fail "the resume printed on stdout"
	[ ! -e thr3.ckpt ] || fail "a checkpoint was written"
	# Nothing left: no process of ./thr, no esky (or its namespace's init) on thr.ckpt.
	sleep 0.2
	for d in /proc/[0-9]*; do
		[ "$(readlink "$d/exe" 2> /dev/null)" = "$tmp/thr" ] &&
			fail "a process of the program is left: ${d#/proc/} ($(cat "$d/comm" 2> /dev/null))"
		tr '\0' ' ' < "$d/cmdline" 2> /dev/null | grep -q -- '-f thr\.ckpt -o thr3\.ckpt' &&
			fail "esky or its init is left: ${d#/proc/} ($(cat "$d/comm" 2> /dev/null))"
	done
	# A single-threaded checkpoint is resumed plainly: it still works there.
	"$esky" start -q -o one.ckpt ./counter 6 100 > one.out 2> one.err &
	e=$!
	pids="$pids $e"
	wait_for one.out '^2$'
	prog=$(pgrep -P $e | head -n 1)
	pids="$pids $prog"
	kill -USR1 $e
	i=0
	while [ ! -e one.ckpt ]; do
		i=$((i + 1))
		[ $i -le 2000 ] || { cat one.err >&2; fail "no checkpoint of counter"; }
		sleep 0.01
	done
	kill -KILL $e $prog
	wait $e 2> /dev/null
	restricted timeout -s KILL 30 "$esky" resume -q -f one.ckpt -o one2.ckpt > one.res 2> one.rerr
	expect_status 0 $? "esky resume of a single-threaded checkpoint without user namespaces"
	[ ! -s one.rerr ] || { cat one.rerr >&2; fail "the single-threaded resume printed on stderr"; }
	[ "$(tail -n 1 one.res)" = 6 ] || { cat one.res >&2; fail "the resumed counter did not count to 6"; }
	;;
userns-refused.user)
	# The case above as uid and gid 65534, from copies it can reach.
	[ "$(id -u)" -eq 0 ] || { echo "reliability-test $case: SKIP: not root" >&2; exit 77; }
	[ -n "$threaded" ] || { echo "reliability-test: userns-refused.user needs THREADED" >&2; exit 99; }
	command -v setpriv > /dev/null || { echo "reliability-test $case: SKIP: no setpriv" >&2; exit 77; }
	case $0 in /*) ;; *) echo "reliability-test: give its own path absolute, as the others" >&2; exit 99 ;; esac
	mkdir u && cp "$0" "$esky" "$(dirname "$esky")/esky-agent" "$counter" "$threaded" u/ &&
		chown -R 65534:65534 u && chmod 711 "$tmp" || exit 99
	setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all \
		"u/${0##*/}" "$tmp/u/${esky##*/}" "$shell" "$heartbeat" \
		"$tmp/u/${counter##*/}" userns-refused "$tmp/u/${threaded##*/}"
	exit $?
	;;
*)
	echo "reliability-test: unknown case $case" >&2
	exit 99
	;;
esac
exit 0
