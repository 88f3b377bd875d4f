#!/bin/bash
# shell-bench.sh: esky-shell's timer snapshots and rewinds (issue 10,
# "snapshot pauses that do not grow with memory"), with gdb's `checkpoint`
# on the same program as a reference for the pause. The program is
# heartbeat.c holding SIZE MiB of random data, beating every 2 ms and
# changing 5 pages a beat (250 pages, ~1 MiB, per 100 ms) spread over its
# memory: `heartbeat -p 2 -t 0 -W 5 SIZE`. Prints one table on stdout.
#
# usage: shell-bench.sh [-s LIST] [-d SECS] [-r N] [-m MODES] [-k]
#                       [--esky-shell PATH] [--heartbeat PATH] [--gdb PATH]
#                       [--worker PATH] [-u UNITS]
#
#   -s LIST       sizes in MiB, comma-separated (default 64,1024,4096)
#   -d SECS       how long each program runs once it is ready (default 20)
#   -r N          runs of each mode at each size (default 1)
#   -m MODES      among esky,gdb,slow, comma-separated (default all)
#   -u UNITS      units of work of the slowdown runs (default 50000, ~5 s)
#   -k            keep the temporary folder (outputs and logs of every run;
#                 the snapshot stores are deleted after each run all the same)
#   --esky-shell PATH   default $ESKY_SHELL, else build/bin/esky-shell of
#                       this source tree
#   --heartbeat PATH    default $HEARTBEAT, else build/testsuite/bench/heartbeat
#   --gdb PATH          default $GDB, else gdb in $PATH
#   --worker PATH       default $WORKER, else build/testsuite/bench/worker
#
# How to run it:
#   cmake --build build --target bench-shell   the full run (64, 1024 and
#                                   4096 MiB, 20 s each; 4096 MiB needs
#                                   ~12 GiB of RAM free and ~5 GiB of disk)
#   ctest --test-dir build -R bench.shell-smoke   32 MiB for 2 s: checks
#                                   that this script works, never times
#   testsuite/bench/shell-bench.sh -s 64,1024 -d 10 -r 3
#
# Modes (rows of the table), each run from a fresh program, in a fresh
# temporary folder (esky-shell writes its store to ./.esky/ there):
#   esky-shell every 100ms   `esky-shell -x SCRIPT heartbeat ...` with
#                            ESKY_DEBUG=1, SCRIPT: break main, run, delete,
#                            every 100ms, continue. SECS after heartbeat's
#                            "ready" (a 4096 MiB fill takes ~10 s, with
#                            timer snapshots all along), a SIGINT to
#                            esky-shell interrupts the program, as
#                            `timeout -s INT` would; then come, on its
#                            standard input:
#   esky-shell rewind        every off, rewind N-1, rewind N, rewind N-1,
#                            rewind N, for N the last timer snapshot: each
#                            goes back one or two snapshots, so only what
#                            the program wrote in ~200 ms differs (at most
#                            ~2 MiB: heartbeat changes a word in each page
#                            it writes)
#   gdb checkpoint           `gdb -batch` runs heartbeat; a Python loop in
#                            gdb answers each stop with `checkpoint` (a fork
#                            of the program, kept in memory, nothing on
#                            disk) and `continue`; from here a SIGINT stops
#                            the program 100 ms after the previous
#                            checkpoint is done (one sent during a
#                            checkpoint would interrupt the calls gdb makes
#                            in the program: fork, lseek)
#
# Only the steady state counts: from the 3rd snapshot (or checkpoint) that
# follows "ready" on, that one excluded, to the interrupt.
#
# Figures:
#   n           snapshots (checkpoints, rewinds) counted
#   own ms      the tool's own measure, min/median/p95/max: esky's ESKY_DEBUG
#               "snapshot N: the program stood X ms" (the whole stop as esky
#               sees it), "rewind to snapshot N: X ms"; for gdb, the time of
#               the `checkpoint` command in gdb's Python (not the SIGINT stop
#               around it)
#   pause ms    the pause as the program sees it: heartbeat's gaps minus
#               its 2 ms period. med: the median over snapshots of the
#               longest gap around each one; p99 and max over every steady
#               beat (one beat in ~50 carries a snapshot, so p99 lies within
#               the snapshots' pauses)
#   >5ms        beats whose pause was over 5 ms (the issue's target)
#   MiB/snap    store growth per snapshot: the snapshots' image files
#               (snap-N.img, apparent size) of the steady state, divided by
#               their number
#   note        esky: the written pages the last snapshot read (`info
#               store`) and the size of the store at the end (the first
#               snapshot holds all the memory); rewind: how (thaw: a new
#               process; in place: the pages that differ written back)
#
# n, >5ms and MiB/snap are min/median of the runs (one value for one run);
# the times pool all runs' steady-state samples. After the table, one line
# per target of the issue: met, or missed by how much.
#
# Exit status: 0; 1 when an esky-shell run failed; 2 usage or set-up error.
# A gdb that is missing or fails is reported as not measured.
set -u
export LC_ALL=C

usage() # STATUS: print the usage part of the comment above
{
	sed -n '9,22p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit "$1"
}

die() # MESSAGE: a set-up error
{
	echo "shell-bench: $*" >&2
	exit 2
}

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
sizes=64,1024,4096
dur=20
reps=1
mode_list=esky,gdb,slow
units=50000
keep=0
shell=${ESKY_SHELL:-$root/build/bin/esky-shell}
hb=${HEARTBEAT:-$root/build/testsuite/bench/heartbeat}
gdb=${GDB:-gdb}
worker=${WORKER:-$root/build/testsuite/bench/worker}

while [ $# -gt 0 ]; do
	case $1 in
	-s) sizes=${2:-}; shift 2 || usage 2 ;;
	-d) dur=${2:-}; shift 2 || usage 2 ;;
	-r) reps=${2:-}; shift 2 || usage 2 ;;
	-m) mode_list=${2:-}; shift 2 || usage 2 ;;
	-k) keep=1; shift ;;
	--esky-shell) shell=${2:-}; shift 2 || usage 2 ;;
	--heartbeat) hb=${2:-}; shift 2 || usage 2 ;;
	--gdb) gdb=${2:-}; shift 2 || usage 2 ;;
	--worker) worker=${2:-}; shift 2 || usage 2 ;;
	-u) units=${2:-}; shift 2 || usage 2 ;;
	-h|--help) usage 0 ;;
	*) usage 2 ;;
	esac
done
size_args=()
for s in ${sizes//,/ }; do
	case $s in *[!0-9]*|0) die "-s: want sizes in MiB, not '$sizes'" ;; esac
	size_args+=("$s")
done
[ ${#size_args[@]} -gt 0 ] || die "-s: no size in '$sizes'"
case $dur in ''|*[!0-9]*|0) die "-d: want seconds, not '$dur'" ;; esac
case $reps in ''|*[!0-9]*|0) die "-r: want a number of runs, not '$reps'" ;; esac
case ,$mode_list, in *,esky,*|*,gdb,*|*,slow,*) ;; *) die "-m: no known mode in '$mode_list'" ;; esac
case $units in ''|*[!0-9]*|0) die "-u: want a number of units, not '$units'" ;; esac
[ -x "$shell" ] || die "no esky-shell at $shell (build it, or give --esky-shell)"
[ -x "$hb" ] || die "no heartbeat at $hb (build it, or give --heartbeat)"

# shellcheck source=bench-lib.sh
. "$here/bench-lib.sh"
close_inherited_fds

work=$(mktemp -d "${TMPDIR:-/tmp}/esky-shell-bench.XXXXXX") || die "cannot create a temporary folder"
period_ms=2
hbopts="-p $period_ms -t 0 -W 5"	# every beat reported, ~1 MiB changed per 100 ms
skip=3				# snapshots after "ready" left out, the 3rd included
pids=()				# processes to kill when we exit
esky_failed=0

# Kill the processes we started and what they started.
kill_ours() { kill_tracked; }

cleanup()
{
	trap - EXIT INT TERM HUP
	exec 3>&-
	kill_ours
	if [ $keep = 1 ]; then
		echo "shell-bench: outputs and logs kept in $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# Wait until FILE has a line matching the extended regex RE: 0; 1 if PID
# is gone first, 2 after SECONDS.
wait_line() # FILE RE PID SECONDS
{
	local end=$((SECONDS + $4))
	until grep -Eq "$2" "$1" 2>/dev/null; do
		gone "$3" && ! grep -Eq "$2" "$1" 2>/dev/null && return 1
		[ $SECONDS -ge $end ] && return 2
		sleep 0.01
	done
}

ended() # PID: "exited with N" or "was killed by SIGNAME", for a message
{
	local rc
	wait "$1"
	rc=$?
	untrack "$1"
	if [ $rc -gt 128 ]; then
		echo "was killed by SIG$(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128)))"
	else
		echo "exited with $rc"
	fi
}

# ---- esky-shell: timer snapshots, then rewinds ----

# Parse a finished esky-shell run in DIR: fill DIR/own, DIR/pause,
# DIR/gaps, DIR/rewind (one sample a line, ms) and set f_n, f_over, f_grow,
# f_note, f_rn, f_how.
parse_esky() # DIR
{
	local d=$1 k3 store ids id sz total=0 cnt=0 w t
	# Snapshots in esky's order of stderr: the ones after "ready".
	k3=$(awk -v skip=$skip '/^ready$/ { r = 1; next }
		r && /^snapshot [0-9]+: the program stood / { sub(":", "", $2); if (++n == skip) { print $2; exit } }' "$d/err")
	[ -n "$k3" ] || { fail="fewer than $skip snapshots after the program was ready: $(last_line "$d/err")"; return 1; }
	awk -v k3="$k3" '/^snapshot [0-9]+: the program stood / {
		id = $2; sub(":", "", id); if (id + 0 > k3 + 0) print $6 }' "$d/err" > "$d/own"
	ids=$(awk -v k3="$k3" '$1 == "snapshot" && $3 == "(timer)" && $2 + 0 > k3 + 0 { print $2 }' "$d/out")
	f_n=$(wc -l < "$d/own")
	[ "$f_n" -gt 0 ] || { fail="no snapshot after the ${skip}rd one after ready"; return 1; }
	# heartbeat's gaps, in the order of the shared stdout: a snapshot's own
	# gap is the first one after its "snapshot N (timer)" line.
	awk -v k3="$k3" -v p="$period_ms" '
		$1 == "snapshot" && $3 == "(timer)" {
			if (on && cur != "" && m != "") print m > pf
			if ($2 + 0 == k3 + 0) { seen = 1; first = 1; next }
			if (seen) { on = 1; cur = $2; m = "" }
			next
		}
		/^Interrupted/ { if (on && cur != "" && m != "") print m > pf; on = 0; cur = ""; seen = 0; next }
		$1 == "gap" && seen {
			if (first) { first = 0; next }	# snapshot k3s own gap
			v = $3 / 1e6 - p
			print v > gf
			if (cur != "" && (m == "" || v > m)) m = v
		}' pf="$d/pause" gf="$d/gaps" "$d/out"
	[ -s "$d/pause" ] || : > "$d/pause"
	[ -s "$d/gaps" ] || : > "$d/gaps"
	f_over=$(awk '$1 > 5 { n++ } END { print n + 0 }' "$d/gaps")
	store=$(ls -d "$d"/.esky/*/ 2>/dev/null | head -1)
	for id in $ids; do
		sz=$(stat -c %s "$store/snap-$id.img" 2>/dev/null) || continue
		total=$((total + sz))
		cnt=$((cnt + 1))
	done
	[ $cnt -gt 0 ] && f_grow=$(awk -v t=$total -v c=$cnt 'BEGIN { printf "%.4f", t / c / 1048576 }')
	w=$(sed -n 's/.*the last snapshot read \([0-9]*\) written pages of \([0-9]*\) tracked.*/\1 of \2/p' "$d/out" | tail -1)
	t=$(du -sm "$store" 2>/dev/null | cut -f1)
	f_note="$(awk '$1 == "snapshot" && $3 == "(timer)" { n++ } END { print n + 0 }' "$d/out") taken; ${w:+last read $w pages; }store ${t:-?} MiB"
	# Rewinds: "rewind to snapshot N: X ms (thaw)", "(in place)".
	sed -n 's/^rewind to snapshot [0-9]*: \([0-9.]*\) ms (\(.*\))$/\1 \2/p' "$d/err" > "$d/rw"
	cut -d' ' -f1 "$d/rw" > "$d/rewind"
	f_rn=$(wc -l < "$d/rewind")
	f_how=$(cut -d' ' -f2- "$d/rw" | sort -u | paste -sd, -)
	w=$(sed -n 's/^rewind in place: done (\([0-9]*\) pages written.*/\1/p' "$d/err" | paste -sd/ -)
	[ -n "$w" ] && f_how="$f_how, $w pages written"
	[ "$f_rn" -gt 0 ] && f_how="$f_how in $(paste -sd/ - < "$d/rewind") ms"
	[ "$f_rn" = 4 ] || { [ "$f_rn" = 0 ] && f_rn=-; fail="$f_rn rewinds of 4: $(grep -i -m1 -E 'rewind|error|cannot' "$d/err" | grep -v '^rewind to' || last_line "$d/err")"; return 1; }
	return 0
}

run_esky() # DIR SIZE
{
	local d=$1 size=$2 p n rc
	mkfifo "$d/cmds" || { fail="cannot create a fifo in $d"; return 1; }
	printf '%s\n' 'break main' run delete 'every 100ms' continue > "$d/script.esky"
	# Our end of esky-shell's stdin, open for reading and writing so that
	# opening it does not wait; the shell must not inherit it (nor the
	# program, which would then hold a pipe that is not its stdio).
	exec 3<>"$d/cmds"
	(cd "$d" && ESKY_DEBUG=1 exec "$shell" -x script.esky "$hb" $hbopts "$size" \
		<cmds >>out 2>>err 3>&-) &
	p=$!
	track $p
	wait_line "$d/err" '^ready$' $p $tmo
	case $? in
	1) fail="esky-shell $(ended $p) before the program was ready: $(last_line "$d/err")"; exec 3>&-; return 1 ;;
	2) fail="the program was not ready after $tmo s"; exec 3>&-; return 1 ;;
	esac
	sleep "$dur"
	if gone $p; then
		fail="esky-shell $(ended $p) while the program ran: $(last_line "$d/err")"
		exec 3>&-
		return 1
	fi
	kill -INT $p
	if ! wait_line "$d/out" '^Interrupted' $p $tmo; then
		fail="no \"Interrupted\" after the SIGINT: esky-shell $(gone $p && ended $p || echo "still runs"): $(last_line "$d/err")"
		exec 3>&-
		return 1
	fi
	n=$(awk '$1 == "snapshot" && $3 == "(timer)" { n = $2 } END { print n + 0 }' "$d/out")
	if [ "$n" -ge 2 ]; then
		printf '%s\n' 'every off' 'info store' "rewind $((n - 1))" "rewind $n" \
			"rewind $((n - 1))" "rewind $n" quit >&3
	else
		printf '%s\n' 'info store' quit >&3
	fi
	exec 3>&-
	if ! wait_gone $p $tmo; then
		fail="esky-shell did not end after quit: $(last_line "$d/err")"
		return 1
	fi
	wait $p
	rc=$?
	untrack $p
	[ $rc = 0 ] || fail="esky-shell exited with $rc: $(grep -m1 -v -E '^(snapshot|rewind|restore|ready|esky-shell:|\.esky/)' "$d/err" || last_line "$d/err")"
	parse_esky "$d" || return 1
	[ -z "$fail" ]
}

# ---- gdb: checkpoint at a SIGINT every 100 ms ----

# gdb's Python: continue; at each stop, take a checkpoint and log
# "checkpoint N T LEN" (T: CLOCK_REALTIME ns when it began, LEN ns), until
# the file $BENCH_STOP exists.
cat > "$work/gdb-drive.py" <<'EOF'
import gdb, os, time
stop_file = os.environ["BENCH_STOP"]
log = open(os.environ["BENCH_LOG"], "a", buffering=1)
n = 0
while True:
    try:
        gdb.execute("continue", to_string=True)
    except gdb.error as e:
        log.write("error %s\n" % e)
        break
    if gdb.selected_inferior().pid == 0:
        log.write("error the program is gone\n")
        break
    if os.path.exists(stop_file):
        break
    t0 = time.time_ns()
    try:
        gdb.execute("checkpoint", to_string=True)
    except gdb.error as e:
        log.write("error checkpoint: %s\n" % e)
        break
    n += 1
    log.write("checkpoint %d %d %d\n" % (n, t0, time.time_ns() - t0))
log.write("done %d\n" % n)
# gdb's rewind: restart the last checkpoints but one, as esky-shell's rewinds.
for k in (n - 1, n, n - 1, n):
    if k < 1:
        break
    t0 = time.time_ns()
    try:
        gdb.execute("restart %d" % k, to_string=True)
    except gdb.error as e:
        log.write("error restart: %s\n" % e)
        break
    log.write("restart %d %d\n" % (k, time.time_ns() - t0))
EOF

parse_gdb() # DIR
{
	local d=$1 t3 tend
	t3=$(awk -v skip=$skip '$1 == "checkpoint" && $2 == skip { print $3 }' "$d/log")
	[ -n "$t3" ] || { fail="fewer than $skip checkpoints: $(grep -m1 '^error' "$d/log" || last_line "$d/err")"; return 1; }
	tend=$(cat "$d/tend")
	awk -v skip=$skip '$1 == "checkpoint" && $2 > skip { printf "%.3f\n", $4 / 1e6 }' "$d/log" > "$d/own"
	f_n=$(wc -l < "$d/own")
	[ "$f_n" -gt 0 ] || { fail="no checkpoint after the ${skip}rd one"; return 1; }
	# The gaps that began after checkpoint 3 and before the last SIGINT;
	# a checkpoint's pause is the gap that holds its start.
	awk -v t3="$t3" -v tend="$tend" -v p="$period_ms" -v skip=$skip '
		FNR == NR { if ($1 == "checkpoint" && $2 > skip) ck[++nk] = $3; next }
		$1 == "gap" && $2 > t3 && $2 < tend {
			v = $3 / 1e6 - p
			print v > gf
			for (i = 1; i <= nk; i++)
				if (ck[i] >= $2 && ck[i] <= $2 + $3 && (!(i in m) || v > m[i]))
					m[i] = v
		}
		END { for (i = 1; i <= nk; i++) if (i in m) print m[i] > pf }
	' pf="$d/pause" gf="$d/gaps" "$d/log" "$d/out"
	[ -s "$d/gaps" ] || : > "$d/gaps"
	[ -s "$d/pause" ] || : > "$d/pause"
	f_over=$(awk '$1 > 5 { n++ } END { print n + 0 }' "$d/gaps")
	f_note="fork in memory, nothing on disk"
	awk '$1 == "restart" { printf "%.3f\n", $3 / 1e6 }' "$d/log" > "$d/rewind"
	f_rn=$(wc -l < "$d/rewind")
	f_how="restart of a checkpoint (a fork in memory)"
	return 0
}

run_gdb() # DIR SIZE
{
	local d=$1 size=$2 g p end t f forks k=0 wend
	: > "$d/log"
	(cd "$d" && BENCH_STOP="$d/stop" BENCH_LOG="$d/log" exec "$gdb" -q -batch -nx \
		-ex 'set pagination off' -ex 'set confirm off' \
		-ex 'handle SIGINT stop print nopass' -ex 'break main' -ex run -ex delete \
		-ex "source $work/gdb-drive.py" -ex kill --args "$hb" $hbopts "$size" \
		</dev/null >>out 2>>err) &
	g=$!
	track $g
	wait_line "$d/err" '^ready$' $g $tmo
	case $? in
	1) fail="gdb exited before the program was ready: $(last_line "$d/err")"; return 1 ;;
	2) fail="the program was not ready after $tmo s"; return 1 ;;
	esac
	p=$(cat /proc/$g/task/*/children 2>/dev/null)
	p=${p%% *}
	[ -n "$p" ] || { fail="gdb has no child"; return 1; }
	t=$EPOCHREALTIME
	end=$(( ${t%.*} + dur ))
	while [ "${EPOCHREALTIME%.*}" -lt $end ] && ! gone $p; do
		kill -INT $p 2>/dev/null
		k=$((k + 1))
		wend=$((SECONDS + tmo))
		until [ "$(grep -c '^checkpoint ' "$d/log")" -ge $k ]; do
			grep -q '^error' "$d/log" && break 2
			gone $p && break 2
			[ $SECONDS -ge $wend ] && { fail="gdb took no checkpoint in $tmo s"; return 1; }
			sleep 0.005
		done
		sleep 0.1
	done
	t=$EPOCHREALTIME
	echo "${t%.*}${t#*.}000" > "$d/tend"
	# The checkpoints are the program's children: should gdb leave one
	# behind when it kills the program, it would hold all its memory.
	forks=$(descendants $p)
	: > "$d/stop"
	kill -INT $p 2>/dev/null
	if ! wait_gone $g $tmo; then
		fail="gdb did not end: $(last_line "$d/err")"
		return 1
	fi
	untrack $g
	for f in $forks; do
		[ "$(cat /proc/$f/comm 2>/dev/null)" = "${hb##*/}" ] && kill -9 $f 2>/dev/null
	done
	parse_gdb "$d"
}

# min/med/p95/max (nearest rank) of the numbers on stdin, or -
dist() # FORMAT FIGURES...: FIGURES among min med p95 p99 max
{
	sort -g | awk -v fmt="$1" -v figs="${*:2}" '
	function rank(q,   i) { i = int(q * n); if (i < q * n) i++; return a[i < 1 ? 1 : i] }
	{ a[++n] = $1 }
	END {
		if (n == 0) { print "-"; exit }
		k = split(figs, f, " ")
		for (i = 1; i <= k; i++) {
			if (f[i] == "min") v = a[1]
			else if (f[i] == "max") v = a[n]
			else if (f[i] == "med") v = rank(0.5)
			else if (f[i] == "p95") v = rank(0.95)
			else v = rank(0.99)
			s = s (i > 1 ? "/" : "") sprintf(fmt, v)
		}
		print s
	}'
}

label() # MODE
{
	case $1 in
	esky) echo "esky-shell every 100ms" ;;
	rewind) echo "esky-shell rewind" ;;
	gdb) echo "gdb checkpoint" ;;
	gdb-restart) echo "gdb restart" ;;
	esac
}

# ---- the runs: sizes in the order given, modes interleaved ----

modes=()
notes=()
case ,$mode_list, in *,esky,*) modes+=(esky) ;; esac
case ,$mode_list, in *,gdb,*)
	if ! command -v "$gdb" >/dev/null 2>&1; then
		notes+=("gdb checkpoint: not measured (no gdb at $gdb)")
	elif ! "$gdb" -q -batch -nx -ex 'python import gdb' >/dev/null 2>&1; then
		notes+=("gdb checkpoint: not measured ($gdb has no Python)")
	else
		modes+=(gdb)
	fi ;;
esac

# A size the machine cannot hold twice over (the program and gdb's or
# esky's copies of what it writes, the page cache of the store) is skipped.
avail=$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo)
run_sizes=()
for size in "${size_args[@]}"; do
	if [ $((2 * size + 1024)) -gt "$avail" ]; then
		notes+=("$size MiB: skipped: $avail MiB of memory available, want $((2 * size + 1024))")
	else
		run_sizes+=("$size")
	fi
done
[ ${#run_sizes[@]} -gt 0 ] || die "no size fits in $avail MiB of available memory"
size_args=("${run_sizes[@]}")

results=$work/results
: > "$results"
read -r load0 _ < /proc/loadavg
for rep in $(seq "$reps"); do
	for size in "${size_args[@]}"; do
		tmo=$((30 + size / 16))		# seconds any one step may take
		for mode in "${modes[@]}"; do
			d=$work/$mode.$size.$rep
			mkdir "$d"
			f_n=- f_over=- f_grow=- f_note= f_rn=- f_how= fail=
			: > "$d/own"; : > "$d/pause"; : > "$d/gaps"; : > "$d/rewind"
			case $mode in
			esky) run_esky "$d" "$size" ;;
			gdb) run_gdb "$d" "$size" ;;
			esac
			[ $mode = esky ] && [ -n "$fail" ] && esky_failed=1
			printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$size" "$rep" \
				"$f_n" "$f_over" "$f_grow" "$f_rn" "$f_how" "$f_note" "$fail" >> "$results"
			printf 'shell-bench: %s, %s MiB, run %s: %s steady, own median %s ms, pause median %s ms%s%s\n' \
				"$(label $mode)" "$size" "$rep" "$f_n" "$(dist "%.1f" med < "$d/own")" \
				"$(dist "%.1f" med < "$d/pause")" \
				"$([ $mode = esky ] && echo ", rewinds $(dist "%.1f" med < "$d/rewind") ms")" \
				"${fail:+; FAILED: $fail}" >&2
			kill_ours
			rm -rf "$d/.esky"
			sync
		done
	done
done

# ---- slowdown: the CPU time of a fixed work, without esky and under esky-shell ----

# worker's "work U units cpu NS wall NS" line of FILE: NS of CPU, or -.
work_cpu() { awk '$1 == "work" { print $5; f = 1 } END { if (!f) print "-" }' "$1" 2>/dev/null; }

# Three runs of worker at SIZE: plain, under esky-shell (run: no snapshot,
# no breakpoint) and under esky-shell every 100ms. Appends "SIZE REP PLAIN
# SHELL EVERY SNAPSHOTS" (ns of CPU) to $slow.
run_slow() # DIR SIZE REP
{
	local d=$1 size=$2 rep=$3 a b c n
	mkdir -p "$d"
	"$worker" -u "$units" "$size" > "$d/plain.out" 2> "$d/plain.err" < /dev/null
	printf '%s\n' run > "$d/run.esky"
	printf '%s\n' 'break main' run delete 'every 100ms' continue > "$d/every.esky"
	(cd "$d" && exec "$shell" --batch -x run.esky "$worker" -u "$units" "$size" \
		> shell.out 2> shell.err < /dev/null)
	rm -rf "$d/.esky"
	(cd "$d" && exec "$shell" --batch -x every.esky "$worker" -u "$units" "$size" \
		> every.out 2> every.err < /dev/null)
	rm -rf "$d/.esky"
	a=$(work_cpu "$d/plain.out") b=$(work_cpu "$d/shell.out") c=$(work_cpu "$d/every.out")
	n=$(grep -c '^snapshot [0-9]* (timer)' "$d/every.out")
	echo "$size $rep $a $b $c $n" >> "$slow"
	printf 'shell-bench: worker, %s MiB, run %s: CPU %s / %s / %s s (plain / esky-shell / every 100ms, %s snapshots)\n' \
		"$size" "$rep" "$(awk -v v="$a" 'BEGIN { print v == "-" ? "-" : sprintf("%.3f", v / 1e9) }')" \
		"$(awk -v v="$b" 'BEGIN { print v == "-" ? "-" : sprintf("%.3f", v / 1e9) }')" \
		"$(awk -v v="$c" 'BEGIN { print v == "-" ? "-" : sprintf("%.3f", v / 1e9) }')" "$n" >&2
	[ "$a" != - ] && [ "$b" != - ] && [ "$c" != - ] || esky_failed=1
}

slow=$work/slow
: > "$slow"
case ,$mode_list, in *,slow,*)
	if [ ! -x "$worker" ]; then
		notes+=("slowdown: not measured (no worker at $worker)")
	else
		for rep in $(seq "$reps"); do
			for size in "${size_args[@]}"; do
				run_slow "$work/slow.$size.$rep" "$size" "$rep"
			done
		done
	fi ;;
esac

# ---- the table ----

# Samples of FILE (one number a line) in all runs of MODE at SIZE.
pool() # MODE SIZE FILE
{
	local r
	for r in $(seq "$reps"); do
		cat "$work/$1.$2.$r/$3" 2>/dev/null
	done
}

# min/median over the runs of column C of the results, for MODE at SIZE
over_runs() # MODE SIZE C FORMAT
{
	awk -F '\t' -v m="$1" -v s="$2" -v c="$3" -v fmt="$4" '
	$1 == m && $2 == s && $c != "-" && $c != "" { a[++n] = $c }
	END {
		if (n == 0) { print "-"; exit }
		for (i = 2; i <= n; i++)
			for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
		med = n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
		print (n == 1 ? sprintf(fmt, a[1]) : sprintf(fmt "/" fmt, a[1], med))
	}' "$results"
}

# med/p99/max of the pause: med over the snapshots, p99 and max over the beats
pause_fig() # MODE SIZE
{
	local m g
	m=$(pool "$1" "$2" pause | dist "%.1f" med)
	g=$(pool "$1" "$2" gaps | dist "%.1f" p99 max)
	[ "$m" = - ] && [ "$g" = - ] && { echo -; return; }
	echo "$m/$g"
}

row() { printf '%-24s %5s  %-7s %-24s %-18s %-7s %-9s %s\n' "$@"; }

versions="esky-shell: $("$shell" --version 2>&1 | head -1)"
case " ${modes[*]} " in *" gdb "*) versions="$versions; gdb: $("$gdb" --version 2>&1 | head -1)" ;; esac
echo "esky-shell benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'): heartbeat $hbopts SIZE (2 ms beats, ~1 MiB written per 100 ms), $dur s per run once ready, $reps run(s)"
echo "machine: $(nproc) cpus, Linux $(uname -r), $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM;" \
	"temporary folder on $(df -PT "$work" | awk 'NR == 2 { print $2 }')"
echo "$versions"
echo "load average (1 min) before the runs: $load0, after: $(cut -d' ' -f1 /proc/loadavg)"
echo
row mode MiB n "own ms" "pause ms" ">5ms" "MiB/snap" note
row "" "" "" "min/med/p95/max" "med/p99/max" "" "" ""
for mode in esky rewind gdb gdb-restart; do
	src=$mode
	[ $mode = rewind ] && src=esky
	[ $mode = gdb-restart ] && src=gdb
	case " ${modes[*]} " in *" $src "*) ;; *) continue ;; esac
	for size in "${size_args[@]}"; do
		case $mode in
		esky|gdb)
			grow=$(over_runs $mode "$size" 6 "%.3f")
			[ $mode = gdb ] && grow=-
			row "$(label $mode)" "$size" "$(over_runs $mode "$size" 4 "%d")" \
				"$(pool $mode "$size" own | dist "%.1f" min med p95 max)" \
				"$(pause_fig $mode "$size")" \
				"$(over_runs $mode "$size" 5 "%d")" "$grow" \
				"$(awk -F '\t' -v m=$mode -v s="$size" '$1 == m && $2 == s { l = $9 } END { print l }' "$results")"
			;;
		rewind|gdb-restart)
			row "$(label $mode)" "$size" "$(over_runs $src "$size" 7 "%d")" \
				"$(pool $src "$size" rewind | dist "%.1f" min med p95 max)" - - - \
				"$(awk -F '\t' -v m=$src -v s="$size" '$1 == m && $2 == s && $8 != "" { l = $8 } END { print l }' "$results")"
			;;
		esac
	done
done
echo

# ---- the issue's targets ----

verdict() # VALUE LIMIT UNIT: met, or missed by how much
{
	awk -v v="$1" -v l="$2" -v u="$3" 'BEGIN {
		if (v == "" || v == "-") print "not measured"
		else if (v + 0 <= l + 0) print "met"
		else printf "missed by %.1f %s\n", v - l, u
	}'
}

if case " ${modes[*]} " in *" esky "*) true ;; *) false ;; esac; then
	echo "targets of issue 10 (steady state; pauses: medians; rewinds: the slowest):"
	for size in "${size_args[@]}"; do
		own=$(pool esky "$size" own | dist "%.2f" med)
		seen=$(pool esky "$size" pause | dist "%.2f" med)
		printf '  pause per snapshot <= 5 ms at %s MiB: %s (program sees %s ms, esky measures %s ms)\n' \
			"$size" "$(verdict "$seen" 5 ms)" "$seen" "$own"
	done
	lo=$(printf '%s\n' "${size_args[@]}" | sort -n | head -1)
	hi=$(printf '%s\n' "${size_args[@]}" | sort -n | tail -1)
	if [ "$lo" != "$hi" ]; then
		a=$(pool esky "$lo" pause | dist "%.2f" med)
		b=$(pool esky "$hi" pause | dist "%.2f" med)
		diff=$(awk -v a="$a" -v b="$b" 'BEGIN { if (a == "-" || b == "-") print "-"; else printf "%.2f\n", b - a }')
		printf '  the same pause at %s MiB as at %s MiB (within 1 ms): %s (%s vs %s ms)\n' \
			"$hi" "$lo" "$(verdict "$diff" 1 ms)" "$b" "$a"
	fi
	for size in "${size_args[@]}"; do
		g=$(over_runs esky "$size" 6 "%.3f")
		g=${g#*/}
		printf '  store growth <= 2 MiB per snapshot at %s MiB: %s (%s MiB)\n' "$size" "$(verdict "$g" 2 MiB)" "$g"
	done
	big=0
	for size in "${size_args[@]}"; do
		[ "$size" -ge 1024 ] || continue
		big=1
		r=$(pool esky "$size" rewind | dist "%.1f" max)
		printf '  rewind <= 50 ms when <= 10 MiB differ at %s MiB: %s (slowest %s ms, median %s ms)\n' \
			"$size" "$(verdict "$r" 50 ms)" "$r" "$(pool esky "$size" rewind | dist "%.1f" med)"
	done
	[ $big = 1 ] || echo "  rewind <= 50 ms at 1024 and 4096 MiB: not measured (no size of 1024 MiB or more)"
	case " ${modes[*]} " in *" gdb "*)
		echo "against gdb in this run (medians; ratio esky/gdb):"
		for size in "${size_args[@]}"; do
			awk -v s="$size" -v ep="$(pool esky "$size" pause | dist "%.2f" med)" \
				-v gp="$(pool gdb "$size" pause | dist "%.2f" med)" \
				-v er="$(pool esky "$size" rewind | dist "%.2f" med)" \
				-v gr="$(pool gdb "$size" rewind | dist "%.2f" med)" 'BEGIN {
				printf "  %s MiB: pause per snapshot %s ms vs checkpoint %s ms%s; rewind %s ms vs restart %s ms%s\n", s,
					ep, gp, (ep != "-" && gp != "-" && gp > 0) ? sprintf(" (ratio %.2f)", ep / gp) : "",
					er, gr, (er != "-" && gr != "-" && gr > 0) ? sprintf(" (ratio %.2f)", er / gr) : ""
			}'
		done ;;
	esac
	echo
fi
if [ -s "$slow" ]; then
	echo "slowdown: CPU time of $units units of work (worker, ~1 MiB written per 100 ms), min/median of the runs, and the median's ratio to the plain run"
	printf '  %-6s %-19s %-26s %-26s %s\n' MiB "plain s" "esky-shell, nothing set" "every 100ms" snapshots
	for size in "${size_args[@]}"; do
		awk -v s="$size" '
		function mm(c,   a, n, i, j, t) {
			n = 0
			for (i = 1; i <= nr; i++) if (v[i, c] != "-") a[++n] = v[i, c]
			if (!n) return "-"
			for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
			med[c] = n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
			return sprintf("%.3f/%.3f", a[1] / 1e9, med[c] / 1e9)
		}
		$1 == s { nr++; for (c = 3; c <= 6; c++) v[nr, c] = $c }
		END {
			if (!nr) exit
			p = mm(3); q = mm(4); r = mm(5)
			qr = (3 in med && 4 in med) ? sprintf(" (x%.3f)", med[4] / med[3]) : ""
			rr = (3 in med && 5 in med) ? sprintf(" (x%.3f)", med[5] / med[3]) : ""
			printf "  %-6s %-19s %-26s %-26s %s\n", s, p, q qr, r rr, v[nr, 6]
			if ((3 in med) && (5 in med))
				printf "  runs <= 2%% slower between snapshots at %s MiB: %s\n", s,
					med[5] <= 1.02 * med[3] ? "met" : sprintf("missed by %.1f%%", 100 * (med[5] / med[3] - 1.02))
			if ((3 in med) && (4 in med))
				printf "  full speed under esky-shell with nothing set at %s MiB (within 1%%): %s\n", s,
					med[4] <= 1.01 * med[3] ? "met" : sprintf("%.1f%% slower", 100 * (med[4] / med[3] - 1))
		}' "$slow"
	done
	echo
fi
awk -F '\t' '$10 != "" { print $1 ", " $2 " MiB, run " $3 ": " ($1 == "gdb" ? "not measured" : "failed") ": " $10 }' "$results" |
	while read -r line; do
		mode=${line%%,*}
		echo "$(label "$mode")${line#"$mode"}"
	done
for s in "${notes[@]}"; do
	echo "$s"
done
echo "own: esky's own measure of the stop (ESKY_DEBUG), gdb's checkpoint command; pause: heartbeat's gap minus its ${period_ms} ms period; >5ms: steady beats paused over 5 ms"

[ $esky_failed = 0 ] || exit 1
exit 0
