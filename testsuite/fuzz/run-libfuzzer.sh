#!/bin/sh
# Build the image reader's fuzz target with clang's libFuzzer (plus ASan and
# UBSan) and run it, starting from the standalone driver's corpus: the
# seeds written by the image writer and 300 mutations of them.
#
#   testsuite/fuzz/run-libfuzzer.sh [SECONDS [WORKDIR [JOBS]]]
#
# Crashes land in WORKDIR as crash-*, leak-*, timeout-*; reproduce one with
# WORKDIR/image_fuzz FILE, or with the CTest driver: image_fuzz_driver FILE.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-300}
work=${2:-/tmp/esky-libfuzzer}
jobs=${3:-1}
cc=${CLANG:-clang}

mkdir -p "$work/corpus"
inc="-I$top/src -I$top/src/arch/x86_64 -I$top/agent -I$top/testsuite/fuzz"
reader="$top/src/image.c $top/src/hash.c $top/src/util.c $top/src/log.c"
# shellcheck disable=SC2086
$cc -g -O1 -std=c11 -D_GNU_SOURCE -DESKY_VERSION='"fuzz"' -DESKY_LIBFUZZER \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all $inc \
	"$top/testsuite/fuzz/image_fuzz.c" $reader -lpthread -o "$work/image_fuzz"
# shellcheck disable=SC2086
$cc -g -O1 -std=c11 -D_GNU_SOURCE -DESKY_VERSION='"fuzz"' $inc \
	"$top/testsuite/fuzz/image_fuzz_driver.c" "$top/testsuite/fuzz/image_fuzz.c" \
	$reader -lpthread -o "$work/image_fuzz_driver"
"$work/image_fuzz_driver" --write-corpus "$work/corpus"
cd "$work"
exec ./image_fuzz -max_total_time="$secs" -timeout=10 -max_len=262144 \
	-jobs="$jobs" -workers="$jobs" -print_final_stats=1 corpus
