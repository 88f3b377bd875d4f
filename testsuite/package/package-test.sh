#!/bin/sh
# `cpack -G DEB` in the build folder makes esky_VERSION_amd64.deb: its
# control fields (Depends from dpkg-shlibdeps), its files (binaries, agent,
# man pages, the CMake package when the project installs one), and, once
# extracted, an esky that finds its agent by itself (usr/bin/../libexec/esky)
# and checkpoints and resumes a capability program; the man pages render
# without warnings and document every command the binaries list.
# usage: package-test.sh BUILD_DIR CPACK VERSION HARNESS PROGRAM
# Exit status: 0 pass, 1 fail, 77 skip (no dpkg tools), 99 harness error.
set -u
build=$1 cpack=$2 version=$3 harness=$4 program=$5

fail() {
	echo "package-test: $*" >&2
	exit 1
}

# CPack's DEB generator runs `file` on every installed file and
# dpkg-shlibdeps (dpkg-dev) on the dynamic ELF ones.
for tool in "$cpack" dpkg-deb dpkg-shlibdeps file; do
	command -v "$tool" > /dev/null 2>&1 || {
		echo "package-test: $tool not found (apt-get install dpkg-dev file); skipped" >&2
		exit 77
	}
done

tmp=$(mktemp -d /tmp/esky-package.XXXXXX) || exit 99
trap 'rm -rf "$tmp"' EXIT
# The packaged install must not lean on an agent named from outside.
unset ESKY_AGENT

# 1. Build the package as a user would, in the build folder.
(cd "$build" && "$cpack" -G DEB -B "$tmp/pkg") > "$tmp/cpack.log" 2>&1 || {
	cat "$tmp/cpack.log" >&2
	fail "cpack -G DEB failed in $build (log above)"
}
deb=$tmp/pkg/esky_${version}_amd64.deb
[ -f "$deb" ] || fail "expected $(basename "$deb"), cpack made: $(ls "$tmp/pkg" | tr '\n' ' ')"

# 2. Control fields.
field() {
	dpkg-deb -f "$deb" "$1"
}
[ "$(field Package)" = esky ] || fail "Package: expected esky, found '$(field Package)'"
[ "$(field Version)" = "$version" ] || fail "Version: expected $version, found '$(field Version)'"
[ "$(field Architecture)" = amd64 ] || fail "Architecture: expected amd64, found '$(field Architecture)'"
[ "$(field Section)" = devel ] || fail "Section: expected devel, found '$(field Section)'"
[ -n "$(field Maintainer)" ] || fail "no Maintainer field"
depends=$(field Depends)
for lib in libc6 libdwarf1 libelf1 libreadline8; do
	case ", $depends," in
	*", $lib "* | *", $lib,"*) ;;
	*) fail "Depends: expected $lib in it, found '$depends'" ;;
	esac
done

# 3. Files. GNUInstallDirs gives the CMake package lib/ or
# lib/x86_64-linux-gnu/ depending on the prefix the build was configured
# with; either is on find_package's path under /usr.
dpkg-deb -c "$deb" | awk '{ print $NF }' | sed 's|^\./|/|' > "$tmp/files" ||
	fail "dpkg-deb -c $deb failed"
for f in /usr/bin/esky /usr/bin/esky-shell /usr/libexec/esky/esky-agent \
	 /usr/share/man/man1/esky.1 /usr/share/man/man1/esky-shell.1; do
	grep -qx "$f\(\.gz\)\?" "$tmp/files" || fail "expected $f in the package; it holds: $(tr '\n' ' ' < "$tmp/files")"
done
if grep -rqi --include=cmake_install.cmake 'esky-config\.cmake' "$build"; then
	grep -qx '/usr/lib\(/x86_64-linux-gnu\)\?/cmake/esky/esky-config\.cmake' "$tmp/files" ||
		fail "the project installs esky-config.cmake but the package has no usr/lib[/x86_64-linux-gnu]/cmake/esky/esky-config.cmake"
else
	echo "package-test: note: the project installs no esky-config.cmake yet; not checked" >&2
fi

# 4. The extracted tree: usr/bin next to usr/libexec, as installed.
root=$tmp/root
dpkg-deb -x "$deb" "$root" || fail "dpkg-deb -x $deb failed"
got=$("$root/usr/bin/esky" --version) || fail "esky --version failed"
[ "$got" = "esky $version" ] || fail "esky --version: expected 'esky $version', found '$got'"
got=$("$root/usr/bin/esky-shell" --version) || fail "esky-shell --version failed"
[ "$got" = "esky-shell $version" ] || fail "esky-shell --version: expected 'esky-shell $version', found '$got'"

# 5. The man pages: the version filled in, no warning from groff, and
# every command that esky --help and esky-shell's help list has its entry.
for page in esky esky-shell; do
	src=$root/usr/share/man/man1/$page.1
	[ -f "$src" ] || src=$src.gz
	if [ "${src%.gz}" != "$src" ]; then
		gzip -dc "$src" > "$tmp/$page.1" || fail "$src: not gzip"
	else
		cp "$src" "$tmp/$page.1"
	fi
	grep -q '@[A-Z_]*@' "$tmp/$page.1" && fail "$page.1: a @VARIABLE@ was not filled in: $(grep -m1 '@[A-Z_]*@' "$tmp/$page.1")"
	grep -q "^\.TH .*\"esky $version\"" "$tmp/$page.1" ||
		fail "$page.1: expected \"esky $version\" in the .TH line, found: $(grep -m1 '^\.TH' "$tmp/$page.1")"
	if command -v man > /dev/null 2>&1; then
		MANWIDTH=80 LC_ALL=C.UTF-8 man --warnings -l "$src" > "$tmp/$page.txt" 2> "$tmp/$page.warn"
		render=man
	elif command -v groff > /dev/null 2>&1; then
		groff -man -Tutf8 -ww "$tmp/$page.1" > "$tmp/$page.txt" 2> "$tmp/$page.warn"
		render=groff
	else
		echo "package-test: note: neither man nor groff here; $page.1 not rendered" >&2
		continue
	fi
	[ -s "$tmp/$page.warn" ] && fail "$render $page.1 warns: $(cat "$tmp/$page.warn")"
	grep -q '^NAME' "$tmp/$page.txt" || fail "$render $page.1 rendered no NAME section"
done
"$root/usr/bin/esky" --help | sed -n 's/^\(usage:\)\? *esky \([a-z][a-z-]*\) .*/\2/p' > "$tmp/esky.cmds"
[ -s "$tmp/esky.cmds" ] || fail "esky --help lists no command"
while read -r cmd; do
	grep -q "^\.SS esky $cmd" "$tmp/esky.1" || fail "esky.1: no section for 'esky $cmd' (esky --help lists it)"
done < "$tmp/esky.cmds"
"$root/usr/bin/esky-shell" --batch --store "$tmp/store" -ex help 2> /dev/null |
	sed -n 's/^  \([a-z]\+\).*/\1/p' > "$tmp/shell.cmds"
[ -s "$tmp/shell.cmds" ] || fail "esky-shell's help lists no command"
while read -r cmd; do
	grep -q "^\.B[IR]\? $cmd\( \|$\)" "$tmp/esky-shell.1" ||
		fail "esky-shell.1: no entry for '$cmd' (esky-shell's help lists it)"
done < "$tmp/shell.cmds"

# 6. A real checkpoint, kill and resume with the extracted esky.
"$harness" --esky "$root/usr/bin/esky" -- "$program"
status=$?
[ $status -eq 0 ] || fail "checkpoint/resume with the packaged esky: esky-testrun exited $status"
echo "package-test: $(basename "$deb") ok: Depends: $depends"
