#!/bin/sh
# The interactive REPL of esky-shell, driven through a pseudo-terminal by
# tmux (send-keys, capture-pane). Every step waits for what the screen must
# show, polling with a time limit: no sleep decides anything.
#
# usage: repl.sh --shell ESKY_SHELL --examples DIR CASE
#   basic      the prompt, a command, history recall with Up (in the
#              session and in the next one), completion of a command name
#              and of a function after break/tbreak/snap, the history
#              file written at quit and Ctrl-D, ~/.esky_history by default
#   interrupt  Ctrl-C while the program runs stops it; Ctrl-C at the
#              prompt does not disturb the next run, and discards the line
#              typed so far
#   file-completion
#              break wal<Tab> completes the source file as walk.c:, ready
#              for the line number
#
# Exit status: 0 pass, 1 fail, 77 skip (no tmux), 99 harness error.
set -u

shell_bin= examples=
while [ $# -gt 1 ]; do
	case $1 in
	--shell) shell_bin=$2; shift 2 ;;
	--examples) examples=$2; shift 2 ;;
	*) break ;;
	esac
done
[ $# -eq 1 ] && [ -n "$shell_bin" ] && [ -n "$examples" ] ||
	{ echo "usage: repl.sh --shell F --examples D basic|interrupt|file-completion" >&2; exit 99; }
case=$1

command -v tmux > /dev/null || { echo "SKIP: tmux is not installed" >&2; exit 77; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/esky-repl-test.XXXXXX") || exit 99
# The server's socket is in our own folder: no name shared with another test.
tm() {
	env -u TMUX tmux -S "$WORK/tmux.sock" -f /dev/null "$@"
}
trap 'tm kill-server 2> /dev/null; rm -rf "$WORK"' EXIT
# A signal (CTest's timeout, a closed pipe) exits through the EXIT trap too.
trap 'exit 99' HUP INT PIPE TERM
mkdir "$WORK/home" || exit 99
TIMEOUT=${REPL_TIMEOUT:-15}	# seconds, for each thing the screen must show

fail() {
	echo "FAIL: repl $case: $*" >&2
	if [ -s "$WORK/screen" ]; then
		echo "--- the screen:" >&2
		cat "$WORK/screen" >&2
	fi
	exit 1
}

# start NAME ENV...: esky-shell on walk in a new tmux session; its exit
# status goes to $WORK/NAME.status.
start() {
	name=$1
	shift
	tm new-session -d -s "$name" -x 200 -y 50 \
		"cd '$WORK' && env $* INPUTRC=/dev/null TERM=screen '$shell_bin' --store '$WORK/store' '$examples/walk' --steps 3; echo \$? > '$WORK/$name.status'" ||
		{ echo "repl: tmux cannot start a session" >&2; exit 99; }
	target=$name
}

keys() {
	tm send-keys -t "$target" "$@" || fail "tmux send-keys $*"
}

# screen: the pane and its history, wrapped lines joined, without trailing
# blanks, into $WORK/screen.
screen() {
	tm capture-pane -p -J -S - -t "$target" 2> /dev/null | sed 's/[[:space:]]*$//' > "$WORK/screen"
}

# last_line: the last line of the screen with something on it.
last_line() {
	awk 'NF { l = $0 } END { print l }' "$WORK/screen"
}

# wait_for WHAT TEST...: poll the screen until the command TEST... succeeds.
wait_for() {
	what=$1
	shift
	deadline=$(($(date +%s) + TIMEOUT))
	while :; do
		screen
		"$@" && return 0
		[ "$(date +%s)" -lt "$deadline" ] || fail "timed out waiting for $what"
		sleep 0.05
	done
}
shows() { grep -q -E -- "$1" "$WORK/screen"; }
at_prompt() { [ "$(last_line)" = "(esky) $1" ] || { [ -z "$1" ] && [ "$(last_line)" = "(esky)" ]; }; }

# ended NAME: wait until the session's esky-shell exited; its status in $status.
ended() {
	wait_for "esky-shell to exit" test -s "$WORK/$1.status"
	status=$(cat "$WORK/$1.status")
}

case $case in
basic)
	hist=$WORK/history
	start one "HOME='$WORK/home' ESKY_HISTORY='$hist'"
	wait_for "the store announced" shows '^esky-shell: snapshots go to '
	wait_for "the prompt" at_prompt ''
	keys 'break main' Enter
	wait_for "the answer to break main" shows '^Breakpoint 1 at main at walk\.c:[0-9]+$'
	wait_for "a new prompt" at_prompt ''

	# Up recalls the command; Enter runs it again.
	keys Up
	wait_for "break main recalled by Up" at_prompt 'break main'
	keys Enter
	wait_for "the recalled command to run" shows '^Breakpoint 2 at main at walk\.c:[0-9]+$'
	wait_for "a new prompt" at_prompt ''

	# A command name: inf<Tab> is info (and a space).
	keys 'inf' Tab
	wait_for "inf completed to info" at_prompt 'info'
	keys 'breakpoints' Enter
	wait_for "info breakpoints" shows '^2 +breakpoint +0 +main at walk\.c:[0-9]+'
	wait_for "a new prompt" at_prompt ''
	# Ambiguous: s<Tab><Tab> lists the commands starting with s.
	keys 's' Tab Tab
	wait_for "the commands starting with s" shows '^set +show +snap +snap-on-write +snapshot +start +step +stepi$'
	keys C-u
	wait_for "an empty prompt" at_prompt ''

	# A function after break, tbreak and snap.
	keys 'tbreak ins' Tab
	wait_for "ins completed to inside" at_prompt 'tbreak inside'
	keys Enter
	wait_for "the tbreak" shows '^Temporary breakpoint 3 at inside at walk\.c:77$'
	wait_for "a new prompt" at_prompt ''
	keys 'snap sco' Tab
	wait_for "sco completed to score" at_prompt 'snap score'
	keys '1' Enter
	wait_for "the snap point" shows '^Snapshot point 4 at score at walk\.c:67, at most 1 snapshots$'
	wait_for "a new prompt" at_prompt ''
	keys 'b rng' Tab
	wait_for "rng completed to rng_next" at_prompt 'b rng_next'
	keys C-u 'delete 1 2' Enter
	wait_for "a new prompt" at_prompt ''

	# The program runs on the terminal.
	keys 'run' Enter
	wait_for "the tbreak to stop" shows '^Temporary breakpoint 3, inside at walk\.c:77$'
	wait_for "a new prompt" at_prompt ''
	keys 'continue' Enter
	wait_for "the program to finish" shows '^\[program exited with status 0\]$'
	shows '^snapshot 1 \(break\) at score at walk\.c:67$' || fail "the snap point took no snapshot"
	shows '^step  3: at \(5,1\) facing E, score 32$' || fail "the program's output is not on the terminal"
	wait_for "a new prompt" at_prompt ''
	keys 'quit' Enter
	ended one
	[ "$status" = 0 ] || fail "esky-shell exited with status $status after quit"
	cp "$hist" "$WORK/history.1"

	# The next session recalls the last one's commands; Ctrl-D quits.
	start two "HOME='$WORK/home' ESKY_HISTORY='$hist'"
	wait_for "the prompt of session 2" at_prompt ''
	keys Up
	wait_for "quit recalled in session 2" at_prompt 'quit'
	keys Up Up
	wait_for "run recalled in session 2" at_prompt 'run'
	keys C-u C-d
	ended two
	[ "$status" = 0 ] || fail "esky-shell exited with status $status after Ctrl-D"

	# Without ESKY_HISTORY: ~/.esky_history, created by the first session.
	start three "HOME='$WORK/home'"
	wait_for "the prompt of session 3" at_prompt ''
	keys 'info store' Enter
	wait_for "the answer to info store" shows "^$WORK/store\$"
	wait_for "a new prompt" at_prompt ''
	keys 'quit' Enter
	ended three
	printf '%s\n' 'info store' quit > "$WORK/home-history.expected"
	diff "$WORK/home-history.expected" "$WORK/home/.esky_history" > "$WORK/history.diff" ||
		fail "~/.esky_history (- expected, + found): $(cat "$WORK/history.diff")"

	# The history file of the first session, in order, as Up shows it:
	# break main once (Up and Enter ran it again, and Up shows it once).
	# Trailing blanks do not matter (completion puts one after a word).
	printf '%s\n' 'break main' 'info breakpoints' 'tbreak inside' 'snap score 1' \
		'delete 1 2' run continue quit > "$WORK/history.expected"
	sed 's/[[:space:]]*$//' "$WORK/history.1" > "$WORK/history.found"
	diff "$WORK/history.expected" "$WORK/history.found" > "$WORK/history.diff" ||
		fail "the history file of session 1 (- expected, + found): $(cat "$WORK/history.diff")"
	;;

interrupt)
	start one "HOME='$WORK/home' ESKY_HISTORY='$WORK/history'"
	wait_for "the prompt" at_prompt ''
	# Ctrl-C while the program runs: it stops, the prompt comes back.
	keys 'run --slow --steps 200' Enter
	wait_for "the slow walk to run" shows '^step  3: '
	keys C-c
	wait_for "the program to be interrupted" shows 'Interrupted, '
	wait_for "the prompt after the interrupt" at_prompt ''
	keys 'where' Enter
	wait_for "where after the interrupt" shows ' \(0x[0-9a-f]+\)$'
	keys 'kill' Enter
	wait_for "the program killed" shows '^\[program killed\]$'
	wait_for "a new prompt" at_prompt ''

	# Ctrl-C at an empty prompt does not disturb the next run: it is not
	# stopped at once, and does not hang.
	keys C-c
	keys 'run --steps 2' Enter
	wait_for "the program to run to its end after a Ctrl-C at the prompt" \
		shows '^\[program exited with status 0\]$|Interrupted, .*ld-linux'
	shows 'Interrupted, .*ld-linux' &&
		fail "the Ctrl-C typed at the prompt interrupted the next run"
	wait_for "a new prompt" at_prompt ''

	# Ctrl-C at the prompt discards the line typed so far, as in gdb and
	# bash.
	keys 'break ste'
	wait_for "break ste typed" at_prompt 'break ste'
	keys C-c
	wait_for "a fresh prompt after Ctrl-C at the prompt" at_prompt ''
	keys 'info breakpoints' Enter
	wait_for "info breakpoints" shows '^No breakpoints\.$|steinfo'
	shows 'steinfo' && fail "Ctrl-C at the prompt did not discard the line: break steinfo breakpoints ran"
	keys 'quit' Enter
	ended one
	[ "$status" = 0 ] || fail "esky-shell exited with status $status after quit"
	;;

job-control)
	# Ctrl-Z and fg of esky-shell itself, from an interactive shell: at the
	# prompt (the prompt is drawn again and a typed line echoed once) and
	# while the program runs (it goes on after fg).
	tm new-session -d -s jc -x 200 -y 50 \
		"cd '$WORK' && env HOME='$WORK/home' ESKY_HISTORY='$WORK/history' INPUTRC=/dev/null TERM=screen PS1='jc\$ ' bash --norc --noprofile -i" ||
		{ echo "repl: tmux cannot start a session" >&2; exit 99; }
	target=jc
	at_shell() { [ "$(last_line)" = 'jc$' ]; }
	wait_for "the shell's prompt" at_shell
	keys "'$shell_bin' --store '$WORK/store' '$examples/walk' --slow --steps 200" Enter
	wait_for "the prompt" at_prompt ''
	keys C-z
	wait_for "esky-shell stopped at its prompt" at_shell
	shows 'Stopped' || fail "no job stopped"
	keys 'fg' Enter
	wait_for "the prompt drawn again after fg" at_prompt ''
	keys 'info store' Enter
	wait_for "info store after fg" shows "^$WORK/store\$"
	[ "$(grep -c 'info store' "$WORK/screen")" = 1 ] ||
		fail "the line typed after fg was echoed twice (the terminal's modes were not readline's)"
	wait_for "a new prompt" at_prompt ''
	keys 'run' Enter
	wait_for "the slow walk to run" shows '^step  3: '
	keys C-z
	wait_for "esky-shell stopped while the program runs" at_shell
	keys 'fg' Enter
	wait_for "the walk to go on after fg" shows '^step  9: '
	keys C-c
	wait_for "the program to be interrupted" shows 'Interrupted, '
	wait_for "the prompt after the interrupt" at_prompt ''
	keys 'quit' Enter
	wait_for "the shell's prompt after quit" at_shell
	;;

file-completion)
	start one "HOME='$WORK/home' ESKY_HISTORY='$WORK/history'"
	wait_for "the prompt" at_prompt ''
	keys 'break wal' Tab
	wait_for "wal completed to walk.c:" at_prompt 'break walk.c:'
	keys '105' Enter
	wait_for "the breakpoint" shows '^Breakpoint 1 at step at walk\.c:105$|^usage: '
	shows '^usage: ' && fail "break walk.c:105 typed with completion was refused"
	keys 'quit' Enter
	ended one
	[ "$status" = 0 ] || fail "esky-shell exited with status $status after quit"
	;;

*)
	echo "repl: unknown case $case" >&2
	exit 99
	;;
esac
echo "PASS: repl $case"
exit 0
