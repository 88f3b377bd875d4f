#!/bin/sh
# The checkpointer on a bundled example: start `counter` under esky, take a
# checkpoint when it has printed 5 lines, kill it and its monitor, and
# resume it from the file: it carries on from 6.
# usage: examples/checkpoint-demo.sh [BUILD_DIR]
set -eu
build=${1:-build}
esky=$build/bin/esky
counter=$build/examples/counter
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

: > "$work/out"
"$esky" start -o "$work/counter.ckpt" "$counter" 10 200 >> "$work/out" &
pid=$!
# Wait, on the program's own output, until it has printed 5 lines.
while [ "$(wc -l < "$work/out")" -lt 5 ]; do sleep 0.05; done
kill -USR1 "$pid"
# The checkpoint appears under its name only when complete.
while [ ! -f "$work/counter.ckpt" ]; do sleep 0.05; done
kill -KILL "$pid"
wait "$pid" 2>/dev/null || true
echo "--- the program's output until it was killed:"
cat "$work/out"
echo "--- esky info:"
"$esky" info "$work/counter.ckpt" | head -4
echo "--- resumed from the checkpoint:"
"$esky" resume -f "$work/counter.ckpt"
