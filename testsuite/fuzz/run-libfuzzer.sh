#!/bin/sh
# Build a fuzz target with clang's libFuzzer (plus ASan and UBSan) and run
# it, starting from its standalone driver's corpus (the seeds, 300
# mutations of them and, for tree and shell, the regression inputs of
# regress/TARGET) and, for tree and shell, the driver's dictionary.
#
#   testsuite/fuzz/run-libfuzzer.sh [SECONDS [WORKDIR [JOBS [TARGET]]]]
#
# TARGET: image (the image reader, the default), tree (the store's tree
# file) or shell (esky-shell's command lines, locations, expressions).
# WORKDIR defaults to /tmp/esky-libfuzzer-TARGET. CLANG names the compiler
# (clang-14 here). Crashes land in WORKDIR as crash-*, leak-*, timeout-*;
# reproduce one with WORKDIR/TARGET_fuzz FILE, or with the CTest driver:
# TARGET_fuzz_driver FILE.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-300}
target=${4:-image}
work=${2:-/tmp/esky-libfuzzer-$target}
jobs=${3:-1}
cc=${CLANG:-clang}
fuzz=$top/testsuite/fuzz
src=$top/src

inc="-I$src -I$src/arch/x86_64 -I$top/agent -I$fuzz -I$top/shell -I/usr/include/libdwarf"
cflags="-g -O1 -std=c11 -D_GNU_SOURCE -DESKY_VERSION=\"fuzz\""
libs="-lpthread"
extra=""
# store.c's open checks who owns the store (trust.c), not reached by the parse
store="$src/store.c $src/util.c $src/log.c"
[ -f "$src/trust.c" ] && store="$store $src/trust.c"
case $target in
image)
	files="$fuzz/image_fuzz.c $src/image.c $src/hash.c $src/util.c $src/log.c"
	driver="$fuzz/image_fuzz_driver.c"
	maxlen=262144
	;;
tree)
	files="$fuzz/tree_fuzz.c $store"
	driver="$fuzz/text_fuzz_driver.c"
	maxlen=16384
	;;
shell)
	files="$fuzz/shell_fuzz.c $fuzz/session_stub.c $top/shell/commands.c $src/debuginfo.c
		$src/expr.c $store"
	driver="$fuzz/text_fuzz_driver.c"
	libs="-ldwarf -lelf -lpthread"
	maxlen=4096
	# the shell prints on every line: libFuzzer keeps its own and the reports
	extra="-close_fd_mask=3"
	;;
*)
	echo "run-libfuzzer.sh: no target $target (image, tree or shell)" >&2
	exit 2
	;;
esac

mkdir -p "$work/corpus"
# shellcheck disable=SC2086
$cc $cflags -DESKY_LIBFUZZER -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	$inc $files $libs -o "$work/${target}_fuzz"
# shellcheck disable=SC2086
$cc $cflags $inc "$driver" "$fuzz/fuzz_guard.c" $files $libs -o "$work/${target}_fuzz_driver"
"$work/${target}_fuzz_driver" --write-corpus "$work/corpus"
if [ -d "$fuzz/regress/$target" ]; then
	cp "$fuzz/regress/$target"/* "$work/corpus/" 2>/dev/null || true
fi
[ -f "$work/corpus.dict" ] && extra="$extra -dict=corpus.dict"
# One job runs here (its output on stderr), more each log to WORKDIR/fuzz-N.log.
[ "$jobs" -gt 1 ] && extra="$extra -jobs=$jobs -workers=$jobs"
cd "$work"
# shellcheck disable=SC2086
exec ./${target}_fuzz -max_total_time="$secs" -timeout=10 -max_len=$maxlen \
	-print_final_stats=1 $extra corpus
