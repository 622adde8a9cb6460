#!/bin/sh
# run.sh - gemwatch's performance benchmark (issues 7, 11); not part of make check.
#
#   tests/bench/run.sh [bench.py options]     or     make bench
#
# Needs a built tree (gemwatch; tests/gemserver from make check but for the
# geminispace section), python3, valgrind, wrk, dnsmasq and
# prometheus-blackbox-exporter (apt-get install -y wrk valgrind dnsmasq-base
# prometheus-blackbox-exporter). Builds tests/bench/rawloop and
# tests/bench/geminispace with cc and pkg-config when make has not, then runs
# bench.py, which starts everything on loopback and prints a Markdown table
# of figures and goals (exit 1 when a goal is missed). Useful options:
# --sections cpu,scale,profile,memory,endpoint,geminispace; --capsules N;
# --interval S; --full (fill the 10,000-capsule history instead of
# extrapolating); --quick (the geminispace section at 500 capsules, in about
# two minutes); --json FILE. GEMWATCH, GEMSERVER, RAWLOOP, GEMINISPACE and
# BUILDDIR override where programs are.
set -eu

src=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$src/../.." && pwd)
build=${BUILDDIR:-$top}
gemwatch=${GEMWATCH:-$build/gemwatch}
gemserver=${GEMSERVER:-$build/tests/gemserver}
rawloop=${RAWLOOP:-$build/tests/bench/rawloop}
geminispace=${GEMINISPACE:-$build/tests/bench/geminispace}

[ -x "$gemwatch" ] || { echo "run.sh: $gemwatch missing (build first)" >&2
	exit 2; }
if [ ! -x "$rawloop" ] || [ "$src/rawloop.c" -nt "$rawloop" ]; then
	mkdir -p "$(dirname "$rawloop")"
	# shellcheck disable=SC2046
	${CC:-cc} -O2 -o "$rawloop" "$src/rawloop.c" \
	    $(pkg-config --cflags --libs gnutls)
fi
if [ ! -x "$geminispace" ] || [ "$src/geminispace.c" -nt "$geminispace" ]
then
	mkdir -p "$(dirname "$geminispace")"
	# shellcheck disable=SC2046
	${CC:-cc} -O2 -D_GNU_SOURCE -o "$geminispace" "$src/geminispace.c" \
	    $(pkg-config --cflags --libs gnutls)
fi
exec python3 "$src/bench.py" --gemwatch "$gemwatch" \
    --gemserver "$gemserver" --rawloop "$rawloop" \
    --geminispace "$geminispace" "$@"
