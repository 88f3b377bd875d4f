#!/bin/sh
# Benchmark: the test time of examples/regression plainly (each test case
# runs regress's set-up) and resumed from its snapshot (one esky check of
# the snapshot, then one esky resume a case), and the ratio. Prints figures,
# never fails on a slow machine; fails (1) only when a test of the example
# fails, 99 when it cannot be built.
#
# usage: regression-bench.sh SOURCE_DIR BUILD_DIR [RECORDS] [REPEATS]
#   RECORDS: regress's set-up size (6000000, about 3 s here, by default)
#   REPEATS: runs of each kind; the fastest counts (3)
# The example is built against BUILD_DIR's esky (its build-tree config),
# in a temporary directory; the tests run one at a time (ctest -j1).
set -u
src=$1 build=$2 records=${3:-6000000} repeats=${4:-3}

work=$(mktemp -d /tmp/esky-regression-bench.XXXXXX) || exit 99
trap 'rm -rf "$work"' EXIT
trap 'exit 99' INT TERM HUP
b=$work/b

now() {
	date +%s.%N
}
# Wall time of a ctest run of the example with these arguments; exits 1
# if a test failed.
timed_ctest() {
	t0=$(now)
	ctest --test-dir "$b" -j1 --output-on-failure "$@" > "$work/ctest.log" 2>&1 || {
		sed 's/^/  | /' "$work/ctest.log" >&2
		echo "regression-bench: ctest $* failed" >&2
		exit 1
	}
	t1=$(now)
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'
}
# The set-up test's time in the last run.
setup_time() {
	awk '$0 ~ "Test +#[0-9]+: regress.snapshot " { print $(NF - 1) }' "$work/ctest.log"
}
min() {
	awk -v a="$1" -v b="$2" 'BEGIN { print (a == "" || b < a) ? b : a }'
}

cmake -S "$src/examples/regression" -B "$b" -DCMAKE_PREFIX_PATH="$build" \
	-DREGRESS_RECORDS="$records" > "$work/configure.log" 2>&1 &&
	cmake --build "$b" > "$work/build.log" 2>&1 || {
	cat "$work/configure.log" "$work/build.log" >&2
	echo "regression-bench: cannot build examples/regression against $build" >&2
	exit 99
}
ncases=$(ctest --test-dir "$b" -N -L plain | sed -n 's/^Total Tests: //p')

# The first run: the set-up test takes the snapshot, the cases resume it.
first=$(timed_ctest -L snapshot -E oneshot) || exit 1
take=$(setup_time)
grep -q "taking the snapshot: there is none yet" "$b/Testing/Temporary/LastTest.log" || {
	echo "regression-bench: the first run did not take the snapshot" >&2
	exit 1
}
size=$(stat -c %s "$b/esky-snapshots/regress/snapshot.ckpt")

plain= resumed= check=
i=0
while [ "$i" -lt "$repeats" ]; do
	t=$(timed_ctest -L plain) || exit 1
	plain=$(min "$plain" "$t")
	t=$(timed_ctest -L snapshot -E oneshot) || exit 1
	resumed=$(min "$resumed" "$t")
	check=$(min "$check" "$(setup_time)")
	grep -q "esky-snapshot: regress: reusing" "$b/Testing/Temporary/LastTest.log" || {
		echo "regression-bench: the snapshot was not reused" >&2
		exit 1
	}
	i=$((i + 1))
done

awk -v n="$ncases" -v rec="$records" -v rep="$repeats" -v plain="$plain" -v res="$resumed" \
	-v first="$first" -v take="$take" -v check="$check" -v size="$size" \
	-v load="$(cut -d' ' -f1-3 /proc/loadavg)" 'BEGIN {
	printf "examples/regression: regress with %d records, %d test cases, ctest -j1, fastest of %d runs (load %s)\n", rec, n, rep, load
	printf "  %-40s %7.2f s  %6.3f s a case\n", "plainly (each case runs the set-up)", plain, plain / n
	printf "  %-40s %7.2f s  %6.3f s a case + esky check %.2f s\n", "resumed from the snapshot (reused)", res, (res - check) / n, check
	printf "  %-40s %7.1fx\n", "ratio plain / resumed", plain / res
	printf "  %-40s %7.2f s  (taking it %.2f s), ratio %.1fx\n", "first run: snapshot taken, then resumed", first, take, plain / first
	printf "  %-40s %7.1f MiB\n", "snapshot", size / 1048576
}'
