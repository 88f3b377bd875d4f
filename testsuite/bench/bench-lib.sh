# bench-lib.sh: what run-bench.sh and shell-bench.sh share, sourced by
# both: the processes a benchmark started (pids, an array the script
# declares), how to tell one is gone, and the fds not to hand down.

# An fd inherited from whoever runs us (CTest's pipe, a terminal
# multiplexer's) would be inherited by the program, and esky refuses to
# checkpoint a program holding a pipe that is not its stdio. Keep 0-2, and
# 255 (bash reads the script through it; it is close-on-exec).
close_inherited_fds()
{
	local f n
	for f in /proc/$$/fd/*; do
		n=${f##*/}
		case $n in 0|1|2|255|*[!0-9]*) continue ;; esac
		eval "exec $n>&-" 2>/dev/null
	done
}

# All processes started by the script, and what they started, die with it.
descendants() # PID: print the descendants of PID
{
	local c f
	for f in /proc/$1/task/*/children; do
		[ -r "$f" ] || continue
		for c in $(cat "$f" 2>/dev/null); do
			descendants "$c"
			echo "$c"
		done
	done
}

track() { pids+=("$@"); }

untrack() # PID: one that has ended and been waited for (its number may be reused)
{
	local i
	for i in "${!pids[@]}"; do
		[ "${pids[$i]}" = "$1" ] && unset "pids[$i]"
	done
}

# Kill the tracked processes and what they started, the children first, so
# that their parent (esky) reaps them rather than an init that may not
# (gdb's checkpoints are children of the program).
kill_tracked()
{
	local p kids=()
	for p in "${pids[@]}"; do
		kids+=($(descendants "$p"))
	done
	if [ ${#kids[@]} -gt 0 ]; then
		kill -9 "${kids[@]}" 2>/dev/null
		sleep 0.1
	fi
	[ ${#pids[@]} -gt 0 ] && kill -9 "${pids[@]}" 2>/dev/null
	pids=()
}

# A process that no longer exists, or a zombie (a restored program that was
# reparented to an init that does not reap), is gone.
gone() # PID
{
	local s
	{ read -r s < "/proc/$1/stat"; } 2>/dev/null || return 0
	s=${s##*) }
	[ "${s%% *}" = Z ]
}

wait_gone() # PID SECONDS: 0 once PID is gone (untracked), 1 if it is still there after SECONDS
{
	local end=$((SECONDS + $2))
	until gone "$1"; do
		[ $SECONDS -ge $end ] && return 1
		sleep 0.01
	done
	untrack "$1"
}

last_line() # FILE: its last non-empty line, for a message
{
	awk 'NF { l = $0 } END { print l }' "$1" 2>/dev/null
}
