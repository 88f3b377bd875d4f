#!/bin/sh
# examples/regression built against esky's CMake package and run with its
# own CTest, end to end: every test passes; a second run reuses the
# snapshot (no set-up, the same file, much less time); a rebuilt library
# and a changed program each make it taken again, with esky check's reason
# shown; a wrong expected output and a wrong exit status fail the tests
# that should fail, plain and resumed alike; a deleted snapshot is taken
# again when one resumed test is run alone; a changed DEPENDS file or AT
# makes it taken again too.
#
# usage: regression-test.sh SOURCE_DIR BUILD_DIR installed|build-tree [RECORDS]
#   installed:  cmake --install BUILD_DIR into a temporary prefix, and find
#               esky there (CMAKE_PREFIX_PATH=prefix)
#   build-tree: find esky in BUILD_DIR itself (CMAKE_PREFIX_PATH, and
#               esky_DIR in a second configure)
# RECORDS: regress's set-up size (2000000: about 1 s here).
# Exit status: 0 pass, 1 fail, 99 harness error (a step that is not under
# test, such as building the example, failed).
set -u
src=$1 build=$2 mode=$3 records=${4:-2000000}
case $mode in installed|build-tree) ;; *) echo "usage: $0 SOURCE_DIR BUILD_DIR installed|build-tree [RECORDS]" >&2; exit 99 ;; esac

work=$(mktemp -d /tmp/esky-regression.XXXXXX) || exit 99
trap 'rm -rf "$work"' EXIT
trap 'exit 99' INT TERM HUP

fail() {
	echo "regression-test ($mode): FAIL: $*" >&2
	exit 1
}
harness() {
	echo "regression-test ($mode): harness error: $*" >&2
	exit 99
}
# A step's log on failure.
show() {
	sed 's/^/  | /' "$1" >&2
}

# The test's output in the last ctest run (LastTest.log holds them all).
output_of() {
	awk -v t="$1" '/ Testing: / { on = ($NF == t) } on { print } on && /^<end of output>/ { exit }' \
		"$b/Testing/Temporary/LastTest.log"
}
# The test's time in seconds, from ctest's summary line in log $2.
time_of() {
	awk -v t="$1" '$0 ~ "Test +#[0-9]+: " && $4 == t { print $(NF - 1) }' "$2"
}
# Runs ctest on the example with the arguments given; its output in $work/$run.log.
ctest_run() {
	run=$1
	shift
	ctest --test-dir "$b" --output-on-failure "$@" > "$work/$run.log" 2>&1
}
# Each test of the ctest run passed, and there were $2 of them.
all_passed() {
	grep -q "100% tests passed, 0 tests failed out of $2\$" "$work/$1.log" || {
		show "$work/$1.log"
		fail "$1: expected $2 tests, all passed"
	}
}
ckpt_id() {
	stat -c '%i %y' "$b/esky-snapshots/regress/snapshot.ckpt" 2>/dev/null
}

# A copy of the example: the test changes its expected outputs later.
cp -R "$src/examples/regression" "$work/src" || harness "cannot copy the example"
b=$work/b

if [ "$mode" = installed ]; then
	prefix=$work/prefix
	cmake --install "$build" --prefix "$prefix" > "$work/install.log" 2>&1 || {
		show "$work/install.log"
		harness "cmake --install $build failed"
	}
	config=$(ls "$prefix"/lib*/cmake/esky/esky-config.cmake 2>/dev/null | head -n 1)
	[ -n "$config" ] || fail "cmake --install put no esky-config.cmake in $prefix/lib*/cmake/esky"
	for f in esky-config-version.cmake EskySnapshotTest.cmake esky-snapshot-driver.cmake; do
		[ -f "$(dirname "$config")/$f" ] || fail "$f is not installed next to $config"
	done
	want_dir=$(dirname "$config")
	want_esky=$prefix/bin/esky
else
	prefix=$build
	want_dir=$build
	want_esky=$build/bin/esky
	# esky_DIR alone finds the build tree's config too.
	cmake -S "$work/src" -B "$work/b-dir" -Desky_DIR="$build" -DREGRESS_RECORDS="$records" \
		> "$work/configure-dir.log" 2>&1 || {
		show "$work/configure-dir.log"
		fail "configuring the example with esky_DIR=$build failed"
	}
	grep -q "ESKY_EXECUTABLE \[=*\[$want_esky\]" "$work/b-dir/CMakeFiles/esky/regress-.cmake" ||
		fail "with esky_DIR=$build, the snapshot tests do not run $want_esky"
	rm -rf "$work/b-dir"
fi

cmake -S "$work/src" -B "$b" -DCMAKE_PREFIX_PATH="$prefix" -DREGRESS_RECORDS="$records" \
	> "$work/configure.log" 2>&1 || {
	show "$work/configure.log"
	fail "configuring the example against $prefix failed"
}
found=$(sed -n 's/^esky_DIR:PATH=//p' "$b/CMakeCache.txt")
[ "$found" = "$want_dir" ] || fail "find_package(esky) found $found, expected $want_dir"
grep -q "ESKY_EXECUTABLE \[=*\[$want_esky\]" "$b/CMakeFiles/esky/regress-.cmake" ||
	fail "the snapshot tests do not run $want_esky"
cmake --build "$b" > "$work/build.log" 2>&1 || {
	show "$work/build.log"
	harness "building the example failed"
}

# 1. Everything passes; the snapshot is taken; the resumed tests start at
# ready(), after the set-up.
ctest_run run1 -j2 || { show "$work/run1.log"; fail "the example's first ctest run failed"; }
all_passed run1 10
setup=$(output_of regress.snapshot)
echo "$setup" | grep -q "esky-snapshot: regress: taking the snapshot: there is none yet" ||
	fail "run 1: the set-up test did not say it takes a new snapshot: $setup"
echo "$setup" | grep -q "regress: building an index of $records records" ||
	fail "run 1: the set-up test did not run regress's set-up"
for c in lookup ranges mixed bad; do
	out=$(output_of regress.resumed.$c)
	echo "$out" | grep -q "regress: ready: $records records" ||
		fail "run 1: regress.resumed.$c did not resume at ready(): $out"
	if echo "$out" | grep -q "regress: building"; then
		fail "run 1: regress.resumed.$c ran the set-up again: $out"
	fi
done
t1=$(time_of regress.snapshot "$work/run1.log")
id1=$(ckpt_id)
[ -n "$id1" ] || fail "run 1: no $b/esky-snapshots/regress/snapshot.ckpt"

# 2. Nothing changed: reused, the same file, no set-up, much less time.
ctest_run run2 -j2 -L snapshot || { show "$work/run2.log"; fail "the second ctest run failed"; }
all_passed run2 6
setup=$(output_of regress.snapshot)
echo "$setup" | grep -q "esky-snapshot: regress: reusing $b/esky-snapshots/regress/snapshot.ckpt" ||
	fail "run 2: the snapshot was not reused: $setup"
if echo "$setup" | grep -q "regress: building"; then
	fail "run 2: the set-up ran again although the snapshot was reused"
fi
[ "$(ckpt_id)" = "$id1" ] || fail "run 2: the snapshot file changed ($id1 -> $(ckpt_id))"
t2=$(time_of regress.snapshot "$work/run2.log")
echo "regression-test ($mode): set-up test: snapshot taken in $t1 s, reused in $t2 s"
awk -v a="$t1" -v b="$t2" 'BEGIN { exit !(b * 3 < a) }' ||
	fail "run 2: reusing the snapshot took $t2 s, taking it $t1 s: expected much less"

if [ "$mode" = installed ]; then
	# 3. The library rebuilt with another constant: taken again, esky check says why.
	cmake -S "$work/src" -B "$b" -DREGRESS_TABLE_SLACK=3 > "$work/configure3.log" 2>&1 &&
		cmake --build "$b" > "$work/build3.log" 2>&1 || harness "rebuilding libregress-index failed"
	ctest_run run3 -j2 -L snapshot || { show "$work/run3.log"; fail "the third ctest run failed"; }
	all_passed run3 6
	setup=$(output_of regress.snapshot)
	echo "$setup" | grep -q "esky-snapshot: regress: taking the snapshot again: esky: check: $b/libregress-index.so changed since the checkpoint (build-id " ||
		fail "run 3: a rebuilt library did not make the snapshot taken again with esky check's reason: $setup"
	echo "$setup" | grep -q "regress: building an index" || fail "run 3: the set-up did not run"
	id3=$(ckpt_id)
	[ "$id3" != "$id1" ] || fail "run 3: the snapshot file is the old one"

	# 4. The program changed (one more byte): taken again.
	size=$(stat -c %s "$b/regress")
	printf '\n' >> "$b/regress"
	ctest_run run4 -j2 -L snapshot || { show "$work/run4.log"; fail "the fourth ctest run failed"; }
	all_passed run4 6
	setup=$(output_of regress.snapshot)
	echo "$setup" | grep -q "esky-snapshot: regress: taking the snapshot again: esky: check: $b/regress changed since the checkpoint (size $size -> $((size + 1)))" ||
		fail "run 4: a changed program did not make the snapshot taken again with esky check's reason: $setup"
	[ "$(ckpt_id)" != "$id3" ] || fail "run 4: the snapshot file is the old one"

	# 5. Wrong expectations fail, plainly and resumed: another answer in
	# ranges.out, exit status 0 expected of bad.in. The snapshot is reused.
	sed -i '1s/49904504479/49904504478/' "$work/src/cases/ranges.out"
	sed -i 's/^set(REGRESS_EXIT_bad 1)/set(REGRESS_EXIT_bad 0)/' "$work/src/CMakeLists.txt"
	grep -q '^set(REGRESS_EXIT_bad 0)' "$work/src/CMakeLists.txt" || harness "cannot edit the example's CMakeLists.txt"
	cmake -S "$work/src" -B "$b" > "$work/configure5.log" 2>&1 || harness "configuring again failed"
	if ctest_run run5 -j2 -R 'ranges|bad'; then
		show "$work/run5.log"
		fail "run 5: the tests passed with a wrong expected output and a wrong exit status"
	fi
	grep -q "20% tests passed, 4 tests failed out of 5" "$work/run5.log" ||
		{ show "$work/run5.log"; fail "run 5: expected 4 failures of 5 tests"; }
	for t in regress.plain.ranges regress.resumed.ranges regress.plain.bad regress.resumed.bad; do
		grep -Eq "^[[:space:]]+[0-9]+ - $t \(Failed\)" "$work/run5.log" || fail "run 5: $t did not fail"
	done
	grep -q "regress.resumed.ranges: resumed from .*: the output differs from $work/src/cases/ranges.out" "$work/run5.log" ||
		fail "run 5: regress.resumed.ranges did not say that its output differs"
	grep -q "^-sum 0 99999: 49904504478 over 100000 records" "$work/run5.log" ||
		fail "run 5: no diff of the expected and the actual output"
	grep -q "regress.resumed.bad: resumed from .*: exit status 1, expected 0" "$work/run5.log" ||
		fail "run 5: regress.resumed.bad did not report the exit status"
	output_of regress.snapshot | grep -q "esky-snapshot: regress: reusing" ||
		fail "run 5: the snapshot was taken again although nothing it depends on changed"

	# 6. The snapshot's directory deleted: one resumed test alone brings
	# its set-up test along (a CTest fixture), which takes it anew.
	rm -rf "$b/esky-snapshots/regress"
	ctest_run run6 -R '^regress\.resumed\.lookup$' || { show "$work/run6.log"; fail "the sixth ctest run failed"; }
	all_passed run6 2
	output_of regress.snapshot | grep -q "esky-snapshot: regress: taking the snapshot: there is none yet" ||
		fail "run 6: the set-up test did not take the deleted snapshot again"

	# 7. DEPENDS: a file whose contents changed makes the snapshot taken
	# again, by its SHA-256; another AT too.
	cat >> "$work/src/CMakeLists.txt" <<-'EOF'
	set(DEP_AT ready CACHE STRING "")
	esky_add_snapshot_fixture(NAME dep COMMAND regress 100000 AT ${DEP_AT} DEPENDS cases/mixed.in)
	EOF
	cmake -S "$work/src" -B "$b" > "$work/configure7.log" 2>&1 || harness "configuring with DEPENDS failed"
	ctest_run run7a -R '^dep\.snapshot$' && ctest_run run7b -R '^dep\.snapshot$' ||
		fail "the DEPENDS fixture failed"
	output_of dep.snapshot | grep -q "esky-snapshot: dep: reusing" || fail "run 7: the DEPENDS fixture was not reused"
	echo '# one more line' >> "$work/src/cases/mixed.in"
	ctest_run run7c -R '^dep\.snapshot$' || fail "the DEPENDS fixture failed after a change"
	output_of dep.snapshot | grep -q "esky-snapshot: dep: taking the snapshot again: $work/src/cases/mixed.in changed since the snapshot (sha256 " ||
		fail "run 7: a changed DEPENDS file did not make the snapshot taken again: $(output_of dep.snapshot)"
	cmake -S "$work/src" -B "$b" -DDEP_AT=regress.c:154 > "$work/configure7.log" 2>&1 || harness "configuring with DEP_AT failed"
	ctest_run run7d -R '^dep\.snapshot$' || fail "the DEPENDS fixture failed after another AT"
	output_of dep.snapshot | grep -q "esky-snapshot: dep: taking the snapshot again: AT was 'ready', now 'regress.c:154'" ||
		fail "run 7: another AT did not make the snapshot taken again: $(output_of dep.snapshot)"
fi
echo "regression-test ($mode): PASS"
exit 0
