#!/bin/sh
# SIGINT sent to esky-shell (kill -INT), commands on a FIFO: while the
# program runs it stops the program (Interrupted, ...) and the shell goes
# on; while the shell waits for a command it changes nothing, and the next
# run is not interrupted. Every step waits for the answer it needs in the
# output, polling with a time limit.
#
# usage: sigint.sh --shell ESKY_SHELL --examples DIR
# Exit status: 0 pass, 1 fail, 99 harness error.
set -u

shell_bin= examples=
while [ $# -gt 0 ]; do
	case $1 in
	--shell) shell_bin=$2; shift 2 ;;
	--examples) examples=$2; shift 2 ;;
	*) echo "usage: sigint.sh --shell F --examples D" >&2; exit 99 ;;
	esac
done
[ -n "$shell_bin" ] && [ -n "$examples" ] || { echo "usage: sigint.sh --shell F --examples D" >&2; exit 99; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/esky-sigint-test.XXXXXX") || exit 99
pid=
trap '[ -n "$pid" ] && kill "$pid" 2> /dev/null; rm -rf "$WORK"' EXIT
# A signal (CTest's timeout, a closed pipe) exits through the EXIT trap too.
trap 'exit 99' HUP INT PIPE TERM
TIMEOUT=${SIGINT_TIMEOUT:-15}	# seconds, for each answer

fail() {
	echo "FAIL: sigint: $*" >&2
	echo "--- the output:" >&2
	cat "$WORK/out" >&2
	exit 1
}

# wait_for WHAT ERE: poll the output until a line matches.
wait_for() {
	deadline=$(($(date +%s) + TIMEOUT))
	until grep -q -E -- "$2" "$WORK/out"; do
		[ "$(date +%s)" -lt "$deadline" ] || fail "timed out waiting for $1"
		sleep 0.05
	done
}

mkfifo "$WORK/in" || exit 99
"$shell_bin" --store "$WORK/store" "$examples/walk" --slow --steps 200 \
	< "$WORK/in" > "$WORK/out" 2>&1 &
pid=$!
exec 3> "$WORK/in"

# While the program runs: it stops, as if Ctrl-C had been typed.
echo run >&3
wait_for "the slow walk to run" '^step  3: '
kill -INT "$pid"
wait_for "the program to be interrupted" '^Interrupted, '
echo where >&3
wait_for "where after the interrupt" ' \(0x[0-9a-f]+\)$'
echo kill >&3
wait_for "the program killed" '^\[program killed\]$'

# While the shell waits for a command (it has answered kill: it reads
# again): nothing runs, so nothing is to stop, now or later.
kill -INT "$pid"
echo 'run --steps 2' >&3
wait_for "the next run to end" '^\[program exited with status 0\]$|^Interrupted, .* in ld-linux'
grep -q -E '^Interrupted, .* in ld-linux' "$WORK/out" &&
	fail "a SIGINT received between commands interrupted the next run at its first instruction"
kill -0 "$pid" 2> /dev/null || fail "esky-shell died of a SIGINT received between commands"

echo quit >&3
exec 3>&-
wait "$pid"
status=$?
pid=
[ "$status" = 0 ] || fail "esky-shell exited with status $status"
echo "PASS: sigint"
exit 0
