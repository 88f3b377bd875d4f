#!/bin/sh
# A scripted esky-shell session as a golden test.
#
# usage: run-session.sh --shell ESKY_SHELL --esky ESKY --examples DIR
#                       [--programs DIR] --src DIR [--update] NAME
#
# NAME.esky is a session script. Lines starting with "#:" are directives
# for this driver (esky-shell takes them for comments):
#   #: program walk --steps 5   the program (from the examples, else from
#                               --programs: this folder's own, built) and its
#                               arguments; none without this line
#   #: status 1                 the exit status esky-shell must return (0)
#   #: store PATH|none          --store PATH (default @WORK@/store); none:
#                               no --store (the shell makes ./.esky/...)
#   #: options ...              more options, before the program (words
#                               split as by sh, "quotes" group)
#   #: input stdin              the script on standard input, without
#                               --batch (default: --batch -x NAME.esky)
#   #: wait SECONDS             (a line of the script, with input stdin) the
#                               driver stops feeding the script for SECONDS
#                               there: the shell waits at its prompt
#   #: setup COMMAND            a sh command run in @WORK@ before the session
#   #: user                     run the session as uid/gid 65534 from copies
#                               of the programs (as root: needs setpriv, else
#                               the test is skipped; as another user: as is)
# In the script and the directives, @WORK@ is the test's fresh directory
# (also the session's working directory), @SRC@ this folder, @EXAMPLES@ the
# examples' build folder, @PROGRAMS@ the --programs folder. NAME.2.esky,
# NAME.3.esky... are later sessions on the same store and directory.
#
# The sessions' standard output and error go to one file (the program's
# output interleaves with the shell's answers: the shell flushes before it
# lets the program run). What truly varies is replaced (normalise()), and
# the transcript, with a "--- session N" line before each later session,
# must equal NAME.expected when it exists. Then NAME.check, if any, is
# sourced for what a golden file cannot say (see the helpers below).
# --update writes NAME.expected instead of comparing: review it.
#
# Exit status: 0 pass, 1 fail, 77 skip, 99 harness error.
set -u

shell_bin= esky_bin= examples= programs= src= update=0
while [ $# -gt 1 ]; do
	case $1 in
	--shell) shell_bin=$2; shift 2 ;;
	--esky) esky_bin=$2; shift 2 ;;
	--examples) examples=$2; shift 2 ;;
	--programs) programs=$2; shift 2 ;;
	--src) src=$2; shift 2 ;;
	--update) update=1; shift ;;
	*) break ;;
	esac
done
[ $# -eq 1 ] && [ -n "$shell_bin" ] && [ -n "$esky_bin" ] && [ -n "$examples" ] &&
	[ -n "$src" ] || { echo "usage: run-session.sh --shell F --esky F --examples D --src D [--update] NAME" >&2; exit 99; }
name=$1
[ -f "$src/$name.esky" ] || { echo "run-session: no $src/$name.esky" >&2; exit 99; }
src=$(cd "$src" && pwd)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/esky-shell-test.XXXXXX") || exit 99
trap 'chmod -R u+rwx "$WORK" 2>/dev/null; rm -rf "$WORK"' EXIT
# A signal (CTest's timeout, a closed pipe) exits through the EXIT trap too.
trap 'exit 99' HUP INT PIPE TERM
# One name for the directory, whatever links lead to it.
WORK=$(cd "$WORK" && pwd -P)
SRC=$src
EXAMPLES=$examples
PROGRAMS=${programs:-$examples}
ESKY=$esky_bin
SHELL_BIN=$shell_bin
export WORK SRC EXAMPLES PROGRAMS ESKY SHELL_BIN

checking=0
fail() {
	if [ $checking = 1 ]; then
		for f in "$WORK"/out.*; do
			echo "--- ${f##*/}, the output of session ${f##*.} (first 300 lines):" >&2
			head -n 300 "$f" >&2
		done
	fi
	echo "FAIL: $name: $*" >&2
	exit 1
}
skip() {
	echo "SKIP: $name: $*" >&2
	exit 77
}

# subst FILE: @WORK@, @SRC@, @EXAMPLES@, @PROGRAMS@ replaced by their values.
subst() {
	sed -e "s|@WORK@|$WORK|g" -e "s|@SRC@|$SRC|g" -e "s|@EXAMPLES@|$EXAMPLES|g" \
	    -e "s|@PROGRAMS@|$PROGRAMS|g" "$1"
}

# feed FILE: the script on stdout, pausing at each "#: wait SECONDS" line.
feed() {
	while IFS= read -r line || [ -n "$line" ]; do
		case $line in
		"#: wait "*) sleep "${line#"#: wait "}" ;;
		esac
		printf '%s\n' "$line"
	done < "$1"
}

# directive KEY FILE: the value of "#: KEY ..." (empty if absent), set in $value;
# returns 1 when absent.
directive() {
	value=$(subst "$2" | sed -n "s/^#: $1\( \(.*\)\)\{0,1\}\$/\2/p" | head -n 1)
	subst "$2" | grep -q "^#: $1\( \|\$\)"
}

# normalise: stdin to stdout, what varies from run to run replaced.
# Program paths first (they hold @WORK@ in a --user session), then
# @WORK@; the default store's name (.esky/YYYYMMDD-HHMMSS); times of the tree (0.007 s) and sizes (107.8 KiB, 512 B); the
# bytes column of info snapshots; register values (info registers);
# addresses (12 hex digits: PIE code, libraries, stack; the 16-digit words
# of x are kept); the lines naming a thread ([thread N], shown when the
# thread changes: which does varies) and the rows of info threads (their
# order and places vary): NAME.check looks at them.
normalise() {
	sed -e "s|$EXAMPLES|@EXAMPLES@|g" -e "s|$PROGRAMS|@PROGRAMS@|g" -e "s|$WORK|@WORK@|g" \
	    -e 's|\.esky/[0-9]\{8\}-[0-9]\{6\}\(-[0-9]\{1,\}\)\{0,1\}|.esky/@STAMP@|g' \
	    -e 's/[0-9][0-9]*\.[0-9][0-9]* s\b/@TIME@ s/g' \
	    -e 's/\b[0-9][0-9]*\(\.[0-9]\)\{0,1\} \(B\|KiB\|MiB\|GiB\)\b/@SIZE@/g' \
	    -e 's/^\([0-9][0-9]*	\([0-9][0-9]*\|-\)	[a-z]*	.*	\)[0-9][0-9]*$/\1@BYTES@/' \
	    -e 's/^\([a-z][a-z0-9_]*\) \{1,\}0x[0-9a-f]\{1,16\} \{1,\}-\{0,1\}[0-9]\{1,\}$/\1 @REG@/' \
	    -e 's/0x[0-9a-f]\{12\}\b/@ADDR@/g' \
	    -e 's/\bpid [0-9][0-9]*/pid @PID@/g' \
	    -e '/^\[thread [0-9][0-9]*\]$/d' \
	    -e 's/^[* ] [0-9][0-9]* .* ([^)]*)$/@THREAD@/' \
	    -e 's/^changed pages: .*/changed pages: @MODE@/'
}

# ---- helpers for NAME.check ----

# program_lines [FILE]: the lines walk prints (FILE or stdin).
program_lines() {
	grep -E '^(step +[0-9]+:|done:)' "${1:--}"
}
# after REGEX [FILE]: the lines after the first line matching REGEX.
after() {
	awk -v re="$1" 'found { print } !found && $0 ~ re { found = 1 }' "${2:--}"
}
# before REGEX [FILE]: the lines before the first line matching REGEX.
before() {
	awk -v re="$1" '$0 ~ re { exit } { print }' "${2:--}"
}
# same WHAT EXPECTED_FILE FOUND_FILE: fail with a diff unless equal.
same() {
	if ! cmp -s "$2" "$3"; then
		echo "$1: expected (<) and found (>):" >&2
		diff "$2" "$3" >&2
		fail "$1"
	fi
}

# ---- the sessions ----

# A --user session: as root, copies of the programs owned by 65534 in
# @WORK@ (the build folder need not be readable by that user).
as_user=
user_setup() {
	[ -n "$as_user" ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		as_user=self
		return 0
	fi
	command -v setpriv > /dev/null || skip "no setpriv to run as uid 65534"
	mkdir -p "$WORK/bin" "$WORK/examples" || exit 99
	agent=$(dirname "$SHELL_BIN")/esky-agent
	cp "$SHELL_BIN" "$ESKY" "$agent" "$WORK/bin/" || exit 99
	cp "$EXAMPLES"/walk* "$WORK/examples/" || exit 99
	SHELL_BIN=$WORK/bin/$(basename "$SHELL_BIN")
	ESKY=$WORK/bin/$(basename "$ESKY")
	EXAMPLES=$WORK/examples
	chmod 755 "$WORK"
	as_user=setpriv
}

session=0
SESSION_TIMEOUT=${SESSION_TIMEOUT:-40}	# seconds
: > "$WORK/transcript"
for script in "$src/$name.esky" "$src/$name".[0-9]*.esky; do
	[ -f "$script" ] || continue
	session=$((session + 1))
	if directive user "$script"; then
		user_setup
	fi
	subst "$script" > "$WORK/session.$session.esky"
	run=
	if [ "$as_user" = setpriv ] && directive user "$script"; then
		run="setpriv --reuid=65534 --regid=65534 --clear-groups"
	fi
	status=0
	directive status "$script" && status=$value
	set --
	if directive store "$script"; then
		[ "$value" = none ] || set -- --store "$value"
	else
		set -- --store "$WORK/store"
	fi
	if directive options "$script"; then
		eval "set -- \"\$@\" $value"
	fi
	input=batch
	directive input "$script" && input=$value
	if [ "$input" = batch ]; then
		set -- "$@" --batch -x "$WORK/session.$session.esky"
	fi
	if directive program "$script"; then
		prog=${value%% *}
		args=
		[ "$prog" = "$value" ] || args=${value#* }
		dir=$EXAMPLES
		[ -e "$EXAMPLES/$prog" ] || dir=$PROGRAMS
		eval "set -- \"\$@\" \"\$dir/\$prog\" $args"
	fi
	if directive setup "$script"; then
		(cd "$WORK" && eval "$value") || { echo "run-session: setup failed: $value" >&2; exit 99; }
	fi
	if [ "$as_user" = setpriv ]; then
		chown -R 65534:65534 "$WORK" || exit 99
	fi
	[ $session -gt 1 ] && echo "--- session $session" >> "$WORK/transcript"
	# A hung session is killed (status 124) before CTest's own limit.
	stdin=/dev/null
	[ "$input" = stdin ] && stdin=$WORK/session.$session.esky
	if [ "$input" = stdin ] && grep -q '^#: wait ' "$stdin"; then
		feed "$stdin" | (cd "$WORK" && timeout -k 5 "$SESSION_TIMEOUT" $run "$SHELL_BIN" "$@" \
			> "$WORK/out.$session" 2>&1)
	else
		(cd "$WORK" && timeout -k 5 "$SESSION_TIMEOUT" $run "$SHELL_BIN" "$@" < "$stdin" \
			> "$WORK/out.$session" 2>&1)
	fi
	got=$?
	[ "$got" = 124 ] && { cat "$WORK/out.$session" >&2; fail "session $session: timed out after $SESSION_TIMEOUT s"; }
	normalise < "$WORK/out.$session" >> "$WORK/transcript"
	if [ "$got" != "$status" ]; then
		echo "--- session $session: esky-shell $* (in $WORK)" >&2
		cat "$WORK/out.$session" >&2
		fail "session $session: exit status $got, expected $status"
	fi
done

if [ $update = 1 ]; then
	cp "$WORK/transcript" "$src/$name.expected"
	echo "run-session: wrote $src/$name.expected"
elif [ -f "$src/$name.expected" ]; then
	if ! diff -u "$src/$name.expected" "$WORK/transcript" > "$WORK/diff"; then
		cat "$WORK/diff" >&2
		fail "the transcript differs from $name.expected (- expected, + found)"
	fi
fi
if [ -f "$src/$name.check" ]; then
	checking=1
	. "$src/$name.check"
fi
echo "PASS: $name ($session session(s))"
exit 0
