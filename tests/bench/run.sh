#!/bin/sh
# run.sh - gemwatch's performance benchmark (issue 7); not part of make check.
#
#   tests/bench/run.sh [bench.py options]     or     make bench
#
# Needs a built tree (gemwatch, tests/gemserver from make check), python3,
# valgrind, wrk and prometheus-blackbox-exporter (apt-get install -y wrk
# valgrind prometheus-blackbox-exporter). Builds tests/bench/rawloop with cc
# and pkg-config when make has not, then runs bench.py, which starts
# everything on loopback and prints a Markdown table of figures and goals
# (exit 1 when a goal is missed). Useful options: --sections cpu,scale,
# profile,memory,endpoint; --capsules N; --interval S; --full (fill the
# 10,000-capsule history instead of extrapolating); --json FILE.
# GEMWATCH, GEMSERVER, RAWLOOP and BUILDDIR override where programs are.
set -eu

src=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$src/../.." && pwd)
build=${BUILDDIR:-$top}
gemwatch=${GEMWATCH:-$build/gemwatch}
gemserver=${GEMSERVER:-$build/tests/gemserver}
rawloop=${RAWLOOP:-$build/tests/bench/rawloop}

for prog in "$gemwatch" "$gemserver"; do
	[ -x "$prog" ] || { echo "run.sh: $prog missing (build, then make" \
	    "check builds tests/gemserver)" >&2; exit 2; }
done
if [ ! -x "$rawloop" ] || [ "$src/rawloop.c" -nt "$rawloop" ]; then
	mkdir -p "$(dirname "$rawloop")"
	# shellcheck disable=SC2046
	${CC:-cc} -O2 -o "$rawloop" "$src/rawloop.c" \
	    $(pkg-config --cflags --libs gnutls)
fi
exec python3 "$src/bench.py" --gemwatch "$gemwatch" \
    --gemserver "$gemserver" --rawloop "$rawloop" "$@"
