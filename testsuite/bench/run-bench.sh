#!/bin/bash
# run-bench.sh: esky against CRIU and DMTCP in the same run, on one program
# (heartbeat.c) that holds SIZE MiB of random data and beats every 20 ms.
# Prints one table of figures (min/median of R runs) on stdout.
#
# usage: run-bench.sh [-s MIB] [-r N] [-t TOOLS] [-k] [--esky PATH]
#                     [--heartbeat PATH] [--criu PATH] [--dmtcp TGZ]
#
#   -s MIB        memory the program holds (default 1024)
#   -r N          runs of each mode (default 3)
#   -t LIST       tools, comma-separated, among esky,criu,dmtcp (default all)
#   -k            keep the temporary folder (outputs and logs of every run;
#                 images are deleted after each run all the same: a GiB of
#                 kept page cache per run changes what the next runs measure)
#   --esky PATH   default $ESKY, else build/bin/esky of this source tree
#   --heartbeat PATH   default $HEARTBEAT, else build/testsuite/bench/heartbeat
#   --criu PATH   default $CRIU, else /work/shared/anchors/criu
#   --dmtcp TGZ   DMTCP install tree (dmtcp-strip/bin), default $DMTCP_TGZ,
#                 else /work/shared/anchors/dmtcp.tgz; extracted to the
#                 temporary folder
#
# How to run it:
#   cmake --build build --target bench     the full run (1024 MiB, 3 runs)
#   ctest --test-dir build -R bench.smoke  32 MiB, 1 run: checks this script
#                                          and a verified restore, never times
#   cmake -S . -B build -DESKY_BENCH=ON && ctest --test-dir build -L bench
#                                          the full run as the test bench.full
#                                          (not registered without the option)
#   testsuite/bench/run-bench.sh -s 256 -r 5 -t esky,criu
#
# Modes (rows of the table), each run from a fresh program:
#   esky start + SIGUSR1   `esky start -o F -- heartbeat`, `kill -USR1 esky`:
#                          the program runs on (esky takes a copy-on-write
#                          fork and writes from the copy)
#   CRIU --leave-running   `criu dump --leave-running`: the program runs on
#   DMTCP                  `dmtcp_command --bcheckpoint`, DMTCP_GZIP=0: the
#                          program runs on
#   esky checkpoint --kill `esky checkpoint PID --kill` (attach, no fork)
#   esky ... resume --lazy the same checkpoint, resumed with `esky resume
#                          --lazy`: the program runs while its memory comes
#                          in (needs root here; otherwise a whole resume)
#   CRIU dump              `criu dump`: the program is killed
# Every run then kills the program (if alive) and restores the image.
# CRIU needs root and a passing `criu check`; its program is started with
# setsid. A tool that is missing or does not work is skipped with a line
# saying why; a CRIU or DMTCP run that fails is reported and does not stop
# the others.
#
# Figures:
#   checkpoint  from the command (the SIGUSR1, `esky checkpoint`, `criu dump`,
#               `dmtcp_command`) to the image complete: esky's file appears
#               under its name only once written, fsynced and renamed (polled
#               every 5 ms); the other commands return when they are done
#   fsync       the part of esky's checkpoint spent in fsync (esky's
#               ESKY_DEBUG log); esky has no option to skip it
#   unsynced    dirty and writeback page cache (/proc/meminfo) right after
#               the checkpoint, after a `sync` before it: image data not yet
#               on disk (CRIU and DMTCP do not fsync their images)
#   stopped     the longest heartbeat gap overlapping the checkpoint: the
#               time the program did not run, plus up to one period (a
#               program never stopped shows 20 ms); "killed" where the
#               checkpoint ends the program
#   image       disk usage (du) of the image files
#   restore     from the restore command to the restored program's first beat
#               (its "resumed" line; under CRIU's time namespace that beat
#               can come up to one period late)
#   esky RSS    esky's own peak memory (VmHWM) during the checkpoint: the
#               monitor of esky start (read after the checkpoint), esky
#               checkpoint --kill (getrusage of its process; python3 runs it)
#   +run        from the restore command to the end of the restored
#               program's check of all its memory (its "memory" line): the
#               restore and the program's first work, end to end (a lazy
#               resume starts the program early, then brings its pages in
#               as it reads them)
#   memory      the restored program compared all its data with the
#               generator: ok, BAD (damaged), or failed (no restore)
#
# Exit status: 0; 1 when an esky run failed or a restored program's memory
# was damaged (esky's or another tool's); 2 usage or set-up error.
set -u
export LC_ALL=C

usage() # STATUS: print the usage part of the comment above
{
	sed -n '6,20p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit "$1"
}

die() # MESSAGE: a set-up error
{
	echo "run-bench: $*" >&2
	exit 2
}

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
size=1024
reps=3
tools=esky,criu,dmtcp
keep=0
esky=${ESKY:-$root/build/bin/esky}
hb=${HEARTBEAT:-$root/build/testsuite/bench/heartbeat}
criu=${CRIU:-/work/shared/anchors/criu}
dmtcp_tgz=${DMTCP_TGZ:-/work/shared/anchors/dmtcp.tgz}

while [ $# -gt 0 ]; do
	case $1 in
	-s) size=${2:-}; shift 2 || usage 2 ;;
	-r) reps=${2:-}; shift 2 || usage 2 ;;
	-t) tools=${2:-}; shift 2 || usage 2 ;;
	-k) keep=1; shift ;;
	--esky) esky=${2:-}; shift 2 || usage 2 ;;
	--heartbeat) hb=${2:-}; shift 2 || usage 2 ;;
	--criu) criu=${2:-}; shift 2 || usage 2 ;;
	--dmtcp) dmtcp_tgz=${2:-}; shift 2 || usage 2 ;;
	-h|--help) usage 0 ;;
	*) usage 2 ;;
	esac
done
case $size in ''|*[!0-9]*|0) die "-s: want a size in MiB, not '$size'" ;; esac
case $reps in ''|*[!0-9]*|0) die "-r: want a number of runs, not '$reps'" ;; esac
[ -x "$esky" ] || die "no esky at $esky (build it, or give --esky)"
[ -x "$hb" ] || die "no heartbeat at $hb (build it, or give --heartbeat)"

# shellcheck source=bench-lib.sh
. "$here/bench-lib.sh"
close_inherited_fds

work=$(mktemp -d "${TMPDIR:-/tmp}/esky-bench.XXXXXX") || die "cannot create a temporary folder"
tmo=$((30 + size / 16))		# seconds any one step may take
settle=0.3			# beats before a checkpoint, seconds
hbopts="-t 0"			# the program reports every beat
pids=()				# processes to kill when we exit
ports=()			# DMTCP coordinators to stop when we exit
esky_failed=0
bad_memory=0

# Kill the processes we started and what they started, and the DMTCP
# coordinators.
kill_ours()
{
	local p
	kill_tracked
	for p in "${ports[@]}"; do
		timeout 5 "$dmtcp_bin/dmtcp_command" -p "$p" --quit >/dev/null 2>&1
	done
	ports=()
}

cleanup()
{
	trap - EXIT INT TERM HUP
	kill_ours
	if [ $keep = 1 ]; then
		echo "run-bench: outputs and logs kept in $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

now() { local t=$EPOCHREALTIME; NOW=$((10#${t%[.,]*}${t#*[.,]} * 1000)); }

ms() # NS: in ms, for a progress line
{
	case $1 in
	*[!0-9]*|'') echo "$1" ;;
	*) echo "$(($1 / 1000000)) ms" ;;
	esac
}

dirty_kib() { awk '/^(Dirty|Writeback):/ { s += $2 } END { print s + 0 }' /proc/meminfo; }

size_kib() { du -skc "$@" 2>/dev/null | awk 'END { print $1 + 0 }'; }

# esky's ESKY_DEBUG log says "esky: FILE: fsync 306.8 ms": in ns.
fsync_ns() { awk '/: fsync [0-9.]+ ms$/ { v = $(NF - 1) } END { if (v != "") printf "%.0f\n", v * 1e6; else print "-" }' "$1"; }

# heartbeat's "gap START LEN" lines: a beat LEN ns after the one at START.
beat_after() # T FILE: whether a beat that started at or after T was reported
{
	awk -v t="$1" '$1 == "gap" && $2 + 0 >= t + 0 { f = 1 } END { exit !f }' "$2"
}

max_gap() # T0 T1 FILE: the longest gap overlapping [T0, T1], in ns, or -
{
	awk -v a="$1" -v b="$2" '$1 == "gap" && $2 + 0 <= b + 0 && $2 + $3 >= a + 0 &&
		(m == "" || $3 + 0 > m + 0) { m = $3 } END { print (m == "" ? "-" : m) }' "$3"
}

# Start a program (or a checkpointer that execs or runs it) in the
# background with its stdout and stderr in DIR/out and DIR/err, appended
# (a restored program's stdout keeps the offset of the checkpoint: with
# O_APPEND it adds to the file instead of writing over it), and wait until
# the program has filled its memory and beaten a few times. Sets tpid.
start_target() # DIR COMMAND...
{
	local d=$1 end
	shift
	"$@" >>"$d/out" 2>>"$d/err" </dev/null &
	tpid=$!
	disown $tpid		# killed on purpose: no "Killed" message from bash
	track $tpid
	end=$((SECONDS + tmo))
	until grep -q '^ready$' "$d/err" 2>/dev/null; do
		gone $tpid && { fail="the program exited before it was ready: $(last_line "$d/err")"; return 1; }
		[ $SECONDS -ge $end ] && { fail="the program was not ready after ${tmo} s"; return 1; }
		sleep 0.01
	done
	sleep $settle
}

# After a checkpoint that leaves the program running: wait until the
# program beats again, and set f_stop.
ran_on() # DIR T0 T1
{
	local end=$((SECONDS + 10))
	until beat_after "$3" "$1/out"; do
		[ $SECONDS -ge $end ] && { fail="the program did not run on after the checkpoint"; return 1; }
		sleep 0.01
	done
	f_stop=$(max_gap "$2" "$3" "$1/out")
}

# Create the marker that tells heartbeat it was restored (the original is
# gone by now), run the restore command in the background with its stdout
# in STDOUT, and wait for the restored program's verdict, in DIR/out or in
# STDOUT (CRIU reopens the program's stdout file; DMTCP may do that or give
# it dmtcp_restart's). Sets f_rest, f_mem; rrc is the restore command's exit
# status when it ended.
restore_phase() # DIR STDOUT COMMAND...
{
	local d=$1 o=$2 rp t2 end line
	shift 2
	rrc=
	: > "$d/marker"
	now
	t2=$NOW
	"$@" >>"$o" 2>>"$d/rerr" </dev/null &
	rp=$!
	track $rp
	end=$((SECONDS + tmo))
	until grep -q '^memory ' "$d/out" "$o" 2>/dev/null; do
		if [ -z "$rrc" ] && gone $rp; then
			wait $rp
			rrc=$?
			untrack $rp
			[ $rrc -ne 0 ] && { fail="the restore exited with $rrc: $(last_line "$d/rerr")"; return 1; }
		fi
		[ $SECONDS -ge $end ] && { fail="no restored program after ${tmo} s: $(last_line "$d/rerr")"; return 1; }
		sleep 0.005
	done
	now
	f_whole=$((NOW - t2))
	line=$(grep -h -m1 '^resumed ' "$d/out" "$o" 2>/dev/null)
	set -- $line
	[ $# -ge 2 ] && f_rest=$(($2 - t2))
	if grep -q '^memory ok$' "$d/out" "$o" 2>/dev/null; then f_mem=ok; else f_mem=BAD; fi
	# The restored program exits after its check, and so does a restore
	# command that stays with it (esky resume, dmtcp_restart).
	if [ -z "$rrc" ]; then
		if wait_gone $rp 30; then
			wait $rp
			rrc=$?
		else
			kill -9 $(descendants $rp) $rp 2>/dev/null
			fail="the restore command did not end after the program exited"
		fi
	fi
	return 0
}

run_esky_start() # DIR
{
	local d=$1 e p t0 t1 end
	start_target "$d" env ESKY_DEBUG=1 "$esky" start -o "$d/image" -- \
		"$hb" $hbopts -x "$d/marker" "$size" || return
	e=$tpid
	p=$(cat /proc/$e/task/*/children 2>/dev/null)
	p=${p%% *}
	[ -n "$p" ] || { fail="esky start has no child"; return 1; }
	track $p
	sync
	now
	t0=$NOW
	kill -USR1 $e
	end=$((SECONDS + tmo))
	until [ -e "$d/image" ]; do
		gone $e && { fail="esky start exited: $(last_line "$d/err")"; return 1; }
		[ $SECONDS -ge $end ] && { fail="no image after ${tmo} s: $(last_line "$d/err")"; return 1; }
		sleep 0.005
	done
	now
	t1=$NOW
	f_dirty=$(dirty_kib)
	f_ckpt=$((t1 - t0))
	f_size=$(size_kib "$d/image")
	ran_on "$d" $t0 $t1 || return
	f_fsync=$(fsync_ns "$d/err")
	f_rss=$(awk '/^VmHWM:/ { print $2 }' /proc/$e/status 2>/dev/null)
	kill -9 $p
	wait_gone $p 10 && wait_gone $e 10 || { fail="esky start did not end with its program"; return 1; }
	restore_phase "$d" "$d/out" "$esky" resume -f "$d/image" || return
	[ "$rrc" = 0 ] || fail="esky resume exited with ${rrc:-?} after the program's check"
}

run_esky_kill() # DIR [--lazy]
{
	local d=$1 lazy=${2:-} p t0 t1 rc
	start_target "$d" "$hb" $hbopts -x "$d/marker" "$size" || return
	p=$tpid
	sync
	now
	t0=$NOW
	if command -v python3 >/dev/null 2>&1; then
		# esky's peak RSS: the only child of python3 (the program is not esky's child).
		ESKY_DEBUG=1 python3 -c 'import resource, subprocess, sys
rc = subprocess.run(sys.argv[2:]).returncode
open(sys.argv[1], "w").write("%d\n" % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(rc)' "$d/rss" "$esky" checkpoint $p -o "$d/image" --kill >>"$d/cerr" 2>&1
		rc=$?
		f_rss=$(cat "$d/rss" 2>/dev/null)
	else
		ESKY_DEBUG=1 "$esky" checkpoint $p -o "$d/image" --kill >>"$d/cerr" 2>&1
		rc=$?
	fi
	now
	t1=$NOW
	[ $rc -eq 0 ] || { fail="esky checkpoint exited with $rc: $(last_line "$d/cerr")"; return 1; }
	[ -e "$d/image" ] || { fail="esky checkpoint wrote no image"; return 1; }
	f_dirty=$(dirty_kib)
	f_ckpt=$((t1 - t0))
	f_fsync=$(fsync_ns "$d/cerr")
	f_size=$(size_kib "$d/image")
	f_stop=killed
	wait_gone $p 10 || { fail="the program still runs after esky checkpoint --kill"; return 1; }
	restore_phase "$d" "$d/out" "$esky" resume $lazy -f "$d/image" || return
	[ "$rrc" = 0 ] || fail="esky resume exited with ${rrc:-?} after the program's check"
}

run_criu() # DIR MODE (criu-lr: --leave-running; criu-kill)
{
	local d=$1 p t0 t1 rc lr=
	[ "$2" = criu-lr ] && lr=--leave-running
	mkdir "$d/img"
	start_target "$d" setsid "$hb" $hbopts -x "$d/marker" "$size" || return
	p=$tpid
	sync
	now
	t0=$NOW
	"$criu" dump -t $p -D "$d/img" -o "$d/dump.log" $lr >>"$d/cerr" 2>&1
	rc=$?
	now
	t1=$NOW
	[ $rc -eq 0 ] || { fail="criu dump exited with $rc: $(grep -m1 Error "$d/dump.log" 2>/dev/null || last_line "$d/cerr")"; return 1; }
	f_dirty=$(dirty_kib)
	f_ckpt=$((t1 - t0))
	f_size=$(size_kib "$d"/img/*.img)
	if [ -n "$lr" ]; then
		ran_on "$d" $t0 $t1 || return
		kill -9 $p
	else
		f_stop=killed
	fi
	wait_gone $p 10 || { fail="the program still runs after criu dump"; return 1; }
	track $p	# restored with its pid, reparented to init
	restore_phase "$d" "$d/rout" "$criu" restore -D "$d/img" -d -o "$d/restore.log" || return
	wait_gone $p 30 || { fail="the restored program did not exit"; return 1; }
}

run_dmtcp() # DIR
{
	local d=$1 p t0 t1 rc img port
	mkdir "$d/img" "$d/tmp"
	start_target "$d" env DMTCP_GZIP=0 DMTCP_TMPDIR="$d/tmp" \
		"$dmtcp_bin/dmtcp_launch" --new-coordinator -p 0 --port-file "$d/port" \
		--ckptdir "$d/img" "$hb" $hbopts -x "$d/marker" "$size" || return
	p=$tpid		# dmtcp_launch execs the program
	port=$(cat "$d/port" 2>/dev/null)	# no newline
	[ -n "$port" ] || { fail="dmtcp_launch wrote no port"; return 1; }
	ports+=("$port")
	sync
	now
	t0=$NOW
	DMTCP_TMPDIR="$d/tmp" "$dmtcp_bin/dmtcp_command" -p "$port" --bcheckpoint >>"$d/cerr" 2>&1
	rc=$?
	now
	t1=$NOW
	set -- "$d"/img/ckpt_*.dmtcp
	img=$1
	[ $rc -eq 0 ] && [ -e "$img" ] || { fail="dmtcp_command --bcheckpoint exited with $rc, image: $img"; return 1; }
	f_dirty=$(dirty_kib)
	f_ckpt=$((t1 - t0))
	f_size=$(size_kib "$img")
	ran_on "$d" $t0 $t1 || return
	DMTCP_TMPDIR="$d/tmp" "$dmtcp_bin/dmtcp_command" -p "$port" --kill >>"$d/cerr" 2>&1
	wait_gone $p 10 || { kill -9 $p; fail="the program still ran after dmtcp_command --kill"; return 1; }
	restore_phase "$d" "$d/rout" env DMTCP_TMPDIR="$d/tmp" "$dmtcp_bin/dmtcp_restart" \
		--new-coordinator -p 0 --port-file "$d/port2" "$img" || return
	port=$(cat "$d/port2" 2>/dev/null)
	[ -z "$port" ] || ports+=("$port")
}

# ---- which tools run ----

modes=()
skips=()
dmtcp_bin=$work/dmtcp/dmtcp-strip/bin
case ,$tools, in *,esky,*) modes+=(esky-start esky-kill esky-lazy) ;; esac
case ,$tools, in *,criu,*)
	if [ "$(id -u)" != 0 ]; then
		skips+=("CRIU: skipped: needs root")
	elif [ ! -x "$criu" ]; then
		skips+=("CRIU: skipped: no criu at $criu")
	elif ! out=$("$criu" check 2>&1); then
		skips+=("CRIU: skipped: criu check fails: $(echo "$out" | tail -1)")
	else
		modes+=(criu-lr criu-kill)
	fi ;;
esac
case ,$tools, in *,dmtcp,*)
	if [ ! -r "$dmtcp_tgz" ]; then
		skips+=("DMTCP: skipped: no $dmtcp_tgz")
	elif ! mkdir "$work/dmtcp" || ! tar -xzf "$dmtcp_tgz" -C "$work/dmtcp" 2>/dev/null; then
		skips+=("DMTCP: skipped: cannot extract $dmtcp_tgz")
	elif ! "$dmtcp_bin/dmtcp_launch" --version >/dev/null 2>&1; then
		skips+=("DMTCP: skipped: $dmtcp_bin/dmtcp_launch does not run")
	else
		modes+=(dmtcp)
	fi ;;
esac
case ,$tools, in *,esky,*|*,criu,*|*,dmtcp,*) ;; *) die "-t: no known tool in '$tools'" ;; esac

label() # MODE
{
	case $1 in
	esky-start) echo "esky start + SIGUSR1" ;;
	esky-kill) echo "esky checkpoint --kill" ;;
	esky-lazy) echo "esky ... resume --lazy" ;;
	criu-lr) echo "CRIU dump --leave-running" ;;
	criu-kill) echo "CRIU dump" ;;
	dmtcp) echo "DMTCP (DMTCP_GZIP=0)" ;;
	esac
}

# ---- the runs, interleaved so that a drift of the machine hits every tool ----

results=$work/results
: > "$results"
read -r load0 _ < /proc/loadavg
for rep in $(seq "$reps"); do
	for mode in "${modes[@]}"; do
		d=$work/$mode.$rep
		mkdir "$d"
		f_ckpt=- f_fsync=- f_dirty=- f_stop=- f_size=- f_rest=- f_mem=- fail= f_whole=- f_rss=-
		case $mode in
		esky-start) run_esky_start "$d" ;;
		esky-kill) run_esky_kill "$d" ;;
		esky-lazy) run_esky_kill "$d" --lazy ;;
		criu-*) run_criu "$d" $mode ;;
		dmtcp) run_dmtcp "$d" ;;
		esac
		[ -n "$fail" ] || [ "$f_mem" = ok ] || [ "$f_mem" = BAD ] || fail="no memory verdict"
		if [ "$f_mem" = BAD ]; then
			bad_memory=1
			[ -n "$fail" ] || fail="the restored program's memory is damaged: $(cat "$d/out" "$d/rout" 2>/dev/null | grep -m1 '^memory')"
		fi
		case $mode in esky-*) [ -z "$fail" ] || esky_failed=1 ;; esac
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$rep" "$f_ckpt" \
			"$f_fsync" "$f_dirty" "$f_stop" "$f_size" "$f_rest" "$f_mem" "$fail" \
			"$f_whole" "${f_rss:--}" >> "$results"
		printf 'run-bench: %s, run %s: checkpoint %s, stopped %s, restore %s, memory %s%s\n' \
			"$(label $mode)" "$rep" "$(ms $f_ckpt)" "$(ms $f_stop)" "$(ms $f_rest)" "$f_mem" \
			"${fail:+; FAILED: $fail}" >&2
		# Kill what is left of this run, free the page cache of its images.
		kill_ours
		rm -rf "$d/image" "$d/img"
		sync
	done
done

# ---- the table ----

versions="esky: $("$esky" --version 2>&1 | head -1)"
case " ${modes[*]} " in *" criu-"*) versions="$versions; CRIU: $("$criu" --version 2>&1 | head -1)" ;; esac
case " ${modes[*]} " in *" dmtcp "*)
	versions="$versions; DMTCP: $("$dmtcp_bin/dmtcp_launch" --version 2>&1 | head -1)" ;;
esac
echo "esky benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'): heartbeat holding $size MiB of random data, $reps run(s) per mode, min/median"
echo "machine: $(nproc) cpus, Linux $(uname -r), $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM;" \
	"temporary folder on $(df -PT "$work" | awk 'NR == 2 { print $2 }')"
echo "$versions"
echo "load average (1 min) before the runs: $load0, after: $(cut -d' ' -f1 /proc/loadavg)"
echo
for mode in esky-start criu-lr dmtcp esky-kill esky-lazy criu-kill; do
	case " ${modes[*]} " in *" $mode "*) ;; *) continue ;; esac
	awk -F '\t' -v mode="$mode" -v label="$(label $mode)" -v reps="$reps" '
	function sort(a, n,   i, j, t) {
		for (i = 2; i <= n; i++)
			for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) {
				t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
			}
	}
	# min/median of column c over the runs that have it, scaled by div
	function fig(c, div, fmt,   a, n, i, med) {
		n = 0
		for (i = 1; i <= nr; i++)
			if (col[i, c] != "-" && col[i, c] != "")
				a[++n] = col[i, c]
		if (n == 0)
			return "-"
		sort(a, n)
		med = n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
		return sprintf(fmt "/" fmt, a[1] / div, med / div)
	}
	$1 == mode {
		nr++
		for (c = 3; c <= 12; c++)
			col[nr, c] = $c
		if ($9 == "ok") ok++
		else if ($9 == "BAD") bad++
	}
	END {
		stop = fig(6, 1e6, "%.0f")
		for (i = 1; i <= nr; i++)
			if (col[i, 6] == "killed")
				stop = "killed"
		mem = bad ? sprintf("BAD %d/%d", bad, nr) : sprintf("ok %d/%d", ok, nr)
		if (ok + bad < nr)
			mem = mem sprintf(", %d failed", nr - ok - bad)
		printf "%-27s %-13s %-13s %-9s %-9s %-13s %-13s %-13s %-9s %s\n", label,
			fig(3, 1e9, "%.3f"), fig(4, 1e9, "%.3f"), fig(5, 1024, "%.0f"), stop,
			fig(7, 1024, "%.1f"), fig(8, 1e9, "%.3f"), fig(11, 1e9, "%.3f"),
			fig(12, 1024, "%.0f"), mem
	}' "$results"
done | {
	printf '%-27s %-13s %-13s %-9s %-9s %-13s %-13s %-13s %-9s %s\n' mode "checkpoint" "fsync" \
		"unsynced" "stopped" "image" "restore" "+run" "esky RSS" "memory"
	printf '%-27s %-13s %-13s %-9s %-9s %-13s %-13s %-13s %-9s %s\n' "" "s" "s" \
		"MiB" "ms" "MiB" "s" "s" "MiB" "verified"
	cat
}
echo
awk -F '\t' '$10 != "" { print $1 ", run " $2 ": failed: " $10 }' "$results" |
	while read -r line; do
		mode=${line%%,*}
		echo "$(label "$mode")${line#"$mode"}"
	done
for s in "${skips[@]}"; do
	echo "$s"
done
echo "stopped: longest gap between 20 ms beats (a program never stopped shows 20); unsynced: dirty page cache right after the checkpoint (not on disk yet); checkpoint includes esky's fsync, shown apart; +run: restore and the program's check of all its memory"

# ---- issue 10's targets for the full checkpoint and the resume, against CRIU in this run ----

# The median of column C (ns) over MODE's runs, or -.
med() # MODE C
{
	awk -F '\t' -v m="$1" -v c="$2" '$1 == m && $c != "-" && $c != "" { a[++n] = $c }
	END {
		if (!n) { print "-"; exit }
		for (i = 2; i <= n; i++)
			for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
		print (n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2)
	}' "$results"
}

# "X s vs Y s (ratio R): met|missed by D s", for X <= Y wanted.
versus() # ESKY_NS REF_NS
{
	awk -v e="$1" -v r="$2" 'BEGIN {
		if (e == "-" || r == "-") { print "not measured"; exit }
		printf "%.3f s vs %.3f s (ratio %.2f): %s\n", e / 1e9, r / 1e9, e / r,
			e <= r ? "met" : sprintf("missed by %.3f s", (e - r) / 1e9)
	}'
}

case " ${modes[*]} " in *" esky-lazy "*)
	echo
	echo "targets of issue 10 ($size MiB, medians):"
	r=$(med esky-lazy 8)
	printf '  lazy resume: the program beats again within 50 ms: %s\n' \
		"$(awk -v r="$r" 'BEGIN { if (r == "-") print "not measured"; else printf "%.1f ms: %s\n", r / 1e6, r <= 5e7 ? "met" : sprintf("missed by %.1f ms", r / 1e6 - 50) }')"
	printf '  lazy resume + run no slower than CRIU restore + run: %s\n' "$(versus "$(med esky-lazy 11)" "$(med criu-kill 11)")"
	printf '  whole resume + run, for comparison (esky resume): %s\n' "$(versus "$(med esky-kill 11)" "$(med criu-kill 11)")"
	printf '  full checkpoint of a program left running no later than CRIU dump --leave-running: %s\n' \
		"$(versus "$(med esky-start 3)" "$(med criu-lr 3)")"
	r=$(med esky-kill 12)
	printf '  esky checkpoint --kill: peak RSS <= 64 MiB: %s\n' \
		"$(awk -v r="$r" 'BEGIN { if (r == "-") print "not measured"; else printf "%.0f MiB: %s\n", r / 1024, r <= 65536 ? "met" : "missed" }')"
	;;
esac

[ $esky_failed = 0 ] && [ $bad_memory = 0 ] || exit 1
exit 0
