#!/bin/bash
# bootstrap.sh: set up a Debian or Ubuntu machine to build and test gemwatch,
# then build it.
#
#   contrib/bootstrap.sh [CONFIGURE-ARGS...]      e.g. --enable-werror
#
# As root, installs whatever is missing of the packages below (apt-get update
# only when something is missing). As another user, prints the apt-get command
# to run and goes on only if nothing is missing. Then, in the source
# directory: autoreconf -fi, ./configure "$@", make -j$(nproc).
# Running it again is harmless: installed packages are left alone and the
# build is only brought up to date.
set -eu

PACKAGES=(build-essential autoconf automake libtool pkg-config
	libgnutls28-dev libmicrohttpd-dev libjansson-dev libsystemd-dev
	libc-ares-dev python3 valgrind clang clang-format gnutls-bin prometheus molly-brown
	wrk curl ca-certificates mandoc chromium debhelper lintian
	exim4-daemon-light shellcheck cppcheck nginx libnginx-mod-stream)

srcdir=$(cd "$(dirname "$0")/.." && pwd)

say() {
	printf 'bootstrap: %s\n' "$*"
}

run() {
	say "+ $*"
	"$@"
}

installed() {
	# "install ok installed" only; "deinstall ok config-files" and
	# unknown packages count as missing.
	status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
	[ "$status" = "install ok installed" ]
}

if [ -f /etc/debian_version ] || command -v apt-get >/dev/null 2>&1; then
	missing=""
	for p in "${PACKAGES[@]}"; do
		installed "$p" || missing="$missing $p"
	done
	if [ -z "$missing" ]; then
		say "all required packages are installed"
	elif [ "$(id -u)" -eq 0 ]; then
		say "missing packages:$missing"
		export DEBIAN_FRONTEND=noninteractive
		run apt-get update
		# shellcheck disable=SC2086
		run apt-get install -y --no-install-recommends $missing
	else
		say "missing packages:$missing"
		say "run as root:"
		say "  apt-get update && apt-get install -y --no-install-recommends$missing"
		exit 1
	fi
else
	say "not a Debian or Ubuntu system: install the equivalents of"
	say "  ${PACKAGES[*]}"
	say "yourself; trying to build anyway"
fi

jobs=$(nproc 2>/dev/null || echo 2)
run cd "$srcdir"
run autoreconf -fi
run ./configure "$@"
run make -j"$jobs"
say "done: $srcdir/gemwatch is built; 'make check' runs the tests"
