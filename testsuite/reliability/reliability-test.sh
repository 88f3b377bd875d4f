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
#   owner-refused      (root) a checkpoint of uid 65534 is refused by esky
#                      resume, info, check and core, through a symbolic link
#                      too; --force accepts it with a warning; as 65534, a
#                      checkpoint of root's, and one taken as root but given
#                      to 65534, are refused, --force or not
#   setuid-refused     (root) a set-user-ID program of uid 65534 is refused
#                      at esky start's SIGUSR1, by esky checkpoint PID and
#                      by esky-shell's snapshot: one line, it carries on
#   setuid-refused.user  the same as uid 65534, the program root's
#   store-owner        (root) esky-shell refuses a store of uid 65534 (and
#                      an image of it linked into root's own store), esky
#                      resume a snapshot of it; esky-shell --force opens it
#   tree-escape        tree files whose ids would name a path outside the
#                      store are refused as damaged; nothing outside made
#   umask              with umask 000, checkpoints, chains, snaps, exports
#                      and cores are 0600, stores and their folders 0700
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
owner-refused)
	# Another user's checkpoint: refused before a byte of it is read.
	[ "$(id -u)" -eq 0 ] || { echo "reliability-test $case: SKIP: not root" >&2; exit 77; }
	command -v setpriv > /dev/null || { echo "reliability-test $case: SKIP: no setpriv" >&2; exit 77; }
	mkdir u && cp "$esky" "$(dirname "$esky")/esky-agent" "$counter" u/ &&
		chown -R 65534:65534 u && chmod 711 "$tmp" || exit 99
	nobody="setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all"
	# ck_of FILE ESKY...: start counter under ESKY..., SIGUSR1, wait for FILE.
	ck_of() {
		f=$1
		shift
		rm -f c.out c.err
		"$@" start -q -o "$f" "$counter" 0 20 > c.out 2> c.err &
		e=$!
		pids="$pids $e"
		wait_for c.out '^3$'
		kill -USR1 $e
		i=0
		while [ ! -e "$f" ]; do
			i=$((i + 1))
			[ $i -le 2000 ] || { cat c.err >&2; fail "no checkpoint $f"; }
			sleep 0.01
		done
		kill -TERM $e
		wait $e 2> /dev/null
	}
	# A checkpoint taken by uid 65534 of its counter.
	ck_of u/ck $nobody u/esky
	[ "$(stat -c %u u/ck)" = 65534 ] || fail "u/ck is not uid 65534's"
	ln -s u/ck mine.ckpt || exit 99
	# refused LINE CMD...: status 1, the one line, nothing on stdout.
	refused() {
		want=$1
		shift
		timeout -s KILL 10 "$@" > out 2> err
		st=$?
		[ $st -eq 1 ] || { cat err >&2; fail "$*: exit status $st, expected 1"; }
		printf '%s\n' "$want" > err.want
		cmp -s err.want err || { diff err.want err >&2; fail "$*: message"; }
		[ ! -s out ] || { cat out >&2; fail "$*: printed on stdout (the program ran?)"; }
	}
	other="belongs to another user, nobody (uid 65534): refused; --force uses it anyway"
	refused "esky: resume: u/ck $other" "$esky" resume -f u/ck -o new.ckpt
	refused "esky: info: u/ck $other" "$esky" info u/ck
	refused "esky: check: u/ck $other" "$esky" check u/ck
	refused "esky: core: u/ck $other" "$esky" core u/ck -o new.core
	refused "esky: resume: mine.ckpt $other" "$esky" resume -f mine.ckpt -o new.ckpt
	refused "esky: info: mine.ckpt $other" "$esky" info mine.ckpt
	[ ! -e new.ckpt ] && [ ! -e new.core ] || fail "a refused command wrote a file"
	# Root's --force: a warning, then as usual.
	"$esky" info --force u/ck > info.out 2> info.err || { cat info.err >&2; fail "esky info --force"; }
	has info.err '^esky: warning: u/ck belongs to another user, nobody (uid 65534); using it anyway (--force)$'
	has info.out '^checkpoint  u/ck '
	"$esky" check --force -q u/ck 2> check.err || { cat check.err >&2; fail "esky check --force"; }
	"$esky" core --force -q u/ck -o f.core 2> core.err || { cat core.err >&2; fail "esky core --force"; }
	"$esky" resume --force -f u/ck -o new.ckpt > res.out 2> res.err &
	r=$!
	pids="$pids $r"
	wait_for res.out '^[0-9]'
	kill -TERM $r
	wait $r
	has res.err '^esky: warning: u/ck was taken as nobody (uid 65534), gid 65534; resuming it as root (uid 0), gid 0 (--force)$'
	# As uid 65534: root's checkpoint (readable by all) is refused, --force
	# too; one taken as root and given to 65534 is not resumed by it.
	ck_of root.ckpt "$esky"
	cp root.ckpt u/given.ckpt && chown 65534:65534 u/given.ckpt && chmod 644 root.ckpt || exit 99
	mine="belongs to another user, root (uid 0): refused (only root may use it, with --force)"
	refused "esky: resume: root.ckpt $mine" $nobody u/esky resume -f root.ckpt -o x.ckpt
	refused "esky: resume: root.ckpt $mine" $nobody u/esky resume --force -f root.ckpt -o x.ckpt
	refused "esky: info: root.ckpt $mine" $nobody u/esky info --force root.ckpt
	taken="was taken as root (uid 0), gid 0, not as you, nobody (uid 65534), gid 65534: refused (resume it as the user who took it)"
	refused "esky: resume: u/given.ckpt $taken" $nobody u/esky resume --force -f u/given.ckpt -o x.ckpt
	refused "esky: check: u/given.ckpt $taken" $nobody u/esky check u/given.ckpt
	[ ! -e x.ckpt ] || fail "a refused resume wrote a file"
	# Its own checkpoint still resumes as 65534 (the control).
	$nobody u/esky resume -q -f u/ck -o u/again.ckpt > own.out 2> own.err &
	r=$!
	pids="$pids $r"
	wait_for own.out '^[0-9]'
	kill -TERM $r
	wait $r 2> /dev/null
	;;
setuid-refused | setuid-nonroot)
	# A set-user-ID program is never frozen: checkpoint, SIGUSR1, esky-shell.
	# As root: a copy owned by 65534 (it runs with euid 65534 when not
	# traced, and under a root esky too); setuid-nonroot (run by
	# setuid-refused.user as 65534): ./suid given, owned by root.
	if [ $case = setuid-refused ]; then
		[ "$(id -u)" -eq 0 ] || { echo "reliability-test $case: SKIP: not root" >&2; exit 77; }
		cp "$counter" suid && chown 65534:65534 suid && chmod 4755 suid || exit 99
		owner="owner uid 65534, gid 65534"
		suid=$tmp/suid
	else
		suid=$(cd "$(dirname "$0")" && pwd)/suid
		[ -u "$suid" ] || { echo "reliability-test: no set-user-ID $suid" >&2; exit 99; }
		owner="owner uid 0, gid 0"
	fi
	why="a set-user-ID program ($owner): refused (esky does not freeze privileged programs)"
	# esky start, then SIGUSR1: one line, the program carries on, no file.
	"$esky" start -o ck "$suid" 0 20 > s.out 2> s.err &
	e=$!
	pids="$pids $e"
	wait_for s.out '^3$'
	p=$(pgrep -P $e | head -n 1)
	pids="$pids $p"
	kill -USR1 $e
	wait_for s.err '^esky: checkpoint: '
	has s.err "^esky: checkpoint: pid $p runs $suid, $why\$"
	n=$(wc -l < s.out)
	wait_lines s.out $((n + 3)) "the program stopped after the refused checkpoint"
	[ ! -e ck ] && [ -z "$(tmp_files .)" ] || fail "a refused checkpoint left a file"
	kill -TERM $e
	wait $e 2> /dev/null
	# esky checkpoint PID of the program running on its own (set-id at work
	# as root: euid 65534; as 65534, root's program runs with euid 0).
	"$suid" 0 20 > p.out 2> /dev/null &
	p=$!
	pids="$pids $p"
	wait_for p.out '^3$'
	# (As 65534, /proc/PID/exe of the program running as root is out of
	# reach: its ids tell.)
	if [ $case = setuid-refused ]; then
		cwhy="runs $suid, $why"
	else
		cwhy="runs with mixed credentials (uid 65534, euid 0, suid 0, gid 65534, egid 65534, sgid 65534): refused (a set-id program, or one that changed its ids; esky does not freeze privileged programs)"
	fi
	"$esky" checkpoint $p -o ck2 > c.out 2> c.err
	expect_status 1 $? "esky checkpoint of a set-user-ID program"
	[ "$(wc -l < c.err)" -eq 1 ] || { cat c.err >&2; fail "not one line"; }
	has c.err "^esky: checkpoint: pid $p $cwhy\$"
	"$esky" checkpoint --force $p -o ck2 > c.out 2> c.err
	expect_status 1 $? "esky checkpoint --force of a set-user-ID program"
	has c.err "^esky: checkpoint: pid $p $cwhy\$"
	grep -q '^TracerPid:[[:space:]]*0$' /proc/$p/status || fail "the program is traced"
	n=$(wc -l < p.out)
	wait_lines p.out $((n + 3)) "the program stopped after esky checkpoint"
	[ ! -e ck2 ] || fail "esky checkpoint wrote ck2"
	kill -TERM $p
	# esky-shell: snapshot refused, the session (and the program) go on.
	cat > s.esky <<-EOF
	break counter.c:59
	run
	snapshot
	continue
	info snapshots
	quit
	EOF
	"$shell" --batch -x s.esky --store store "$suid" 5 1 > shell.out 2>&1
	has shell.out "pid [0-9]* runs $suid, $why"
	[ -z "$(ls store | grep '^snap-')" ] || fail "esky-shell wrote a snapshot of a set-user-ID program"
	[ "$(grep -c 'runs .*set-user-ID' shell.out)" -eq 1 ] || { cat shell.out >&2; fail "not one line"; }
	;;
setuid-refused.user)
	# The case above as uid and gid 65534, the set-user-ID program root's.
	[ "$(id -u)" -eq 0 ] || { echo "reliability-test $case: SKIP: not root" >&2; exit 77; }
	command -v setpriv > /dev/null || { echo "reliability-test $case: SKIP: no setpriv" >&2; exit 77; }
	case $0 in /*) ;; *) echo "reliability-test: give its own path absolute, as the others" >&2; exit 99 ;; esac
	mkdir u && cp "$0" "$esky" "$(dirname "$esky")/esky-agent" "$shell" "$counter" u/ &&
		chown -R 65534:65534 u && chmod 711 "$tmp" || exit 99
	cp "$counter" u/suid && chown 0:0 u/suid && chmod 4755 u/suid || exit 99
	setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all \
		"$tmp/u/${0##*/}" "$tmp/u/${esky##*/}" "$tmp/u/${shell##*/}" "$heartbeat" \
		"$tmp/u/${counter##*/}" setuid-nonroot
	exit $?
	;;
store-owner)
	# Another user's store, as root: refused; --force opens it.
	[ "$(id -u)" -eq 0 ] || { echo "reliability-test $case: SKIP: not root" >&2; exit 77; }
	command -v setpriv > /dev/null || { echo "reliability-test $case: SKIP: no setpriv" >&2; exit 77; }
	mkdir u && cp "$shell" "$esky" "$(dirname "$esky")/esky-agent" "$counter" u/ &&
		chown -R 65534:65534 u && chmod 711 "$tmp" || exit 99
	cat > u/s.esky <<-EOF
	break counter.c:59
	run
	snapshot
	continue
	snapshot
	quit
	EOF
	chown 65534:65534 u/s.esky
	(cd u && setpriv --reuid=65534 --regid=65534 --clear-groups \
		./esky-shell --batch -x s.esky --store store ./counter 0 20 > shell.out 2>&1) ||
		{ cat u/shell.out >&2; fail "esky-shell as 65534"; }
	[ -f u/store/snap-2.img ] || fail "no store of 65534"
	printf 'tree\nquit\n' > t.esky
	"$shell" --batch -x t.esky --store u/store > o.out 2> o.err
	expect_status 1 $? "esky-shell on another user's store"
	[ "$(wc -l < o.err)" -eq 1 ] || { cat o.err >&2; fail "not one line"; }
	has o.err '^esky-shell: the store u/store belongs to another user, nobody (uid 65534): refused; --force uses it anyway$'
	ln -s u/store st || exit 99
	"$shell" --batch -x t.esky --store st > o.out 2> o.err
	expect_status 1 $? "esky-shell on a symbolic link to another user's store"
	has o.err '^esky-shell: the store st belongs to another user'
	"$esky" resume -f u/store/snap-2.img -o x.ckpt > r.out 2> r.err
	expect_status 1 $? "esky resume of another user's snapshot"
	has r.err '^esky: resume: u/store/snap-2.img belongs to another user, nobody (uid 65534): refused; --force uses it anyway$'
	# One image of it linked into root's own store: the store is refused.
	"$shell" --batch -x u/s.esky --store mine "$counter" 0 20 > m.out 2>&1 ||
		{ cat m.out >&2; fail "esky-shell as root"; }
	rm mine/snap-2.img && ln -s ../u/store/snap-2.img mine/snap-2.img || exit 99
	"$shell" --batch -x t.esky --store mine > o.out 2> o.err
	expect_status 1 $? "esky-shell on a store holding another user's image"
	has o.err '^esky-shell: mine/snap-2.img belongs to another user, nobody (uid 65534): refused; --force uses it anyway$'
	# --force: one warning, and the store is used.
	printf 'tree\nexport 2 exported.ckpt\nquit\n' > f.esky
	"$shell" --force --batch -x f.esky --store u/store > f.out 2> f.err ||
		{ cat f.err >&2; fail "esky-shell --force"; }
	has f.err '^warning: the store u/store belongs to another user, nobody (uid 65534); using it anyway (--force)$'
	[ "$(grep -c 'warning' f.err)" -eq 1 ] || { cat f.err >&2; fail "more than one warning"; }
	"$esky" check -q exported.ckpt 2> /dev/null && fail "root's export of 65534's snapshot checks without --force"
	"$esky" check -q --force exported.ckpt 2> /dev/null || fail "the export does not check"
	;;
tree-escape)
	# A tree file is read strictly: each snapshot id is a number 1..10^9,
	# so snap-N.img never names a file outside the store.
	mkdir out || exit 99
	printf 'tree\nrewind 1\nexport 1 x.ckpt\nquit\n' > t.esky
	for id in '../out/x' '1/../../out/x' '-1' '0' '1000000001' '2147483648' ' 1' '1 ' '0x1' '+1' '1e3' '01/..'; do
		rm -rf store && mkdir store || exit 99
		printf 'esky-store 1\ncurrent\t1\nnext\t2\n%s\t0\tmanual\t0\t0\t0\tat x\t\n' "$id" > store/tree
		"$shell" --batch -x t.esky --store store "$counter" 1 1 > o.out 2> o.err
		st=$?
		[ $st -eq 1 ] || { cat o.err >&2; fail "id '$id': exit status $st, expected 1"; }
		[ "$(wc -l < o.err)" -eq 1 ] || { cat o.err >&2; fail "id '$id': not one line"; }
		has o.err '^esky-shell: store/tree:[0-9]*: damaged'
		[ -z "$(ls -A out)" ] || fail "id '$id': a file appeared outside the store: $(ls -A out)"
		[ ! -e x.ckpt ] || fail "id '$id': an export was written"
	done
	;;
umask)
	# Whatever the umask, what holds a program's memory is the user's alone.
	umask 000
	mode() { [ "$(stat -c %a "$1")" = "$2" ] || fail "$1: mode $(stat -c %a "$1"), expected $2"; }
	"$esky" start -q -o ck "$counter" 0 20 > c.out 2> c.err &
	e=$!
	pids="$pids $e"
	wait_for c.out '^3$'
	kill -USR1 $e
	i=0
	while [ ! -e ck ]; do
		i=$((i + 1))
		[ $i -le 2000 ] || { cat c.err >&2; fail "no checkpoint"; }
		sleep 0.01
	done
	kill -TERM $e
	wait $e 2> /dev/null
	mode ck 600
	"$esky" core -q ck -o ck.core || fail "esky core"
	mode ck.core 600
	"$esky" start -q --chain chain "$counter" 0 20 > h.out 2> h.err &
	e=$!
	pids="$pids $e"
	wait_for h.out '^3$'
	kill -USR1 $e
	i=0
	while [ ! -e chain/0001.ckpt ]; do
		i=$((i + 1))
		[ $i -le 2000 ] || { cat h.err >&2; fail "no chain"; }
		sleep 0.01
	done
	kill -TERM $e
	wait $e 2> /dev/null
	mode chain 700
	mode chain/0001.ckpt 600
	"$esky" snap -q --at counter.c:59 --count 1 -o snaps -- "$counter" 2 1 > /dev/null 2> snap.err ||
		{ cat snap.err >&2; fail "esky snap"; }
	mode snaps 700
	for f in snaps/*; do mode "$f" 600; done
	cat > s.esky <<-EOF
	break counter.c:59
	run
	snapshot
	export 1 exported.ckpt
	gcore 1 snap.core
	quit
	EOF
	"$shell" --batch -x s.esky --store store "$counter" 0 20 > shell.out 2>&1 ||
		{ cat shell.out >&2; fail "esky-shell --store store"; }
	"$shell" --batch -x s.esky "$counter" 0 20 > shell2.out 2>&1 ||
		{ cat shell2.out >&2; fail "esky-shell with a fresh store"; }
	mode store 700
	for f in store/*; do mode "$f" 600; done
	mode .esky 700
	for d in .esky/*; do
		mode "$d" 700
		for f in "$d"/*; do mode "$f" 600; done
	done
	mode exported.ckpt 600
	mode snap.core 600
	;;
*)
	echo "reliability-test: unknown case $case" >&2
	exit 99
	;;
esac
exit 0
