#!/bin/sh
# The README's main job, as a test: esky-shell runs examples/walk.esky on
# walk in a fresh folder (the store goes to ./.esky there), must succeed
# and answer as the script expects; the snapshot it exports, resumed by
# esky, must print the rest of the plain run from step 6 on.
# usage: check-main-job.sh SOURCE_DIR BUILD_DIR
set -eu
src=$1
build=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail() { echo "check-main-job: $*" >&2; exit 1; }

sed "s|/tmp/walk-after-5-steps.ckpt|$work/walk.ckpt|" "$src/examples/walk.esky" > "$work/walk.esky"
(cd "$work" && "$build/bin/esky-shell" --batch -x walk.esky "$build/examples/walk") \
	> "$work/out" 2> "$work/err" || { cat "$work/out" "$work/err"; fail "esky-shell failed"; }
cat "$work/out"

"$build/examples/walk" > "$work/plain"
# Steps 1 to 20 and the summary once, then steps 1-3 again after the rewind.
grep -E '^(step +[0-9]+:|done:)' "$work/out" > "$work/program"
{ cat "$work/plain"; sed -n 1,3p "$work/plain"; } | cmp -s - "$work/program" ||
	fail "the program's output is not the plain run followed by steps 1-3"
for want in 'Snapshot 1 at step at walk.c:105' 'snapshot 5 (break) at step at walk.c:83' \
	'Rewound to snapshot 1' '^\*   #6  manual  step at walk.c:105 .*"a branch from the start"' \
	'^2	1	manual	step at walk.c:105	[0-9]*$' 'Snapshot 2 written to'; do
	grep -q "$want" "$work/out" || fail "no line matching '$want'"
done
grep -q "snapshots go to .esky/" "$work/err" || fail "the store is not announced"
[ -d "$work/.esky" ] || fail "no store under ./.esky"

"$build/bin/esky" resume -f "$work/walk.ckpt" > "$work/resumed" || fail "esky resume failed"
sed -n '6,$p' "$work/plain" | cmp -s - "$work/resumed" ||
	fail "the exported snapshot does not go on from step 6"
echo "check-main-job: ok"
