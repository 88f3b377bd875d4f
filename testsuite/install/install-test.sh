#!/bin/sh
# After `cmake --install`, the installed esky finds its agent by itself
# (PREFIX/libexec/esky/esky-agent) with no ESKY_AGENT set: a capability
# program is checkpointed, killed and resumed with the installed esky.
# usage: install-test.sh BUILD_DIR HARNESS PROGRAM
set -eu
build=$1 harness=$2 program=$3
prefix=$(mktemp -d /tmp/esky-install.XXXXXX)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" > /dev/null || exit 99
[ -x "$prefix/bin/esky" ] && [ -x "$prefix/libexec/esky/esky-agent" ] || {
	echo "install-test: esky or esky-agent not installed where expected" >&2
	exit 1
}
unset ESKY_AGENT
exec "$harness" --esky "$prefix/bin/esky" -- "$program"
