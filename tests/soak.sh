#!/bin/sh
# soak.sh - run the daemon for a while against one local test server and
# watch its resources. Not part of make check.
#
#   tests/soak.sh [CAPSULES [SECONDS [INTERVAL]]]     (defaults 50 600 1s)
#
# Starts tests/gemserver and gemwatch with CAPSULES capsules (/ok paths with
# distinct query strings) at INTERVAL, waits 30 s, then every minute (and
# at the end) prints resident memory (VmRSS), open descriptors, probes
# finished so far and the average /metrics render time over 20 requests.
# GEMWATCH and GEMSERVER name the programs (default: the build tree).
set -eu

n=${1:-50}
duration=${2:-600}
interval=${3:-1s}
top=$(cd "$(dirname "$0")/.." && pwd)
gemwatch=${GEMWATCH:-$top/gemwatch}
gemserver=${GEMSERVER:-$top/tests/gemserver}

for prog in "$gemwatch" "$gemserver"; do
	[ -x "$prog" ] || { echo "soak.sh: $prog missing (make check builds" \
	    "tests/gemserver)" >&2; exit 2; }
done

dir=$(mktemp -d /tmp/gemwatch-soak.XXXXXX)
srv_pid=
gw_pid=
cleanup() {
	[ -n "$gw_pid" ] && kill "$gw_pid" 2>/dev/null || true
	[ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM

# The server prints its port on its first line.
mkfifo "$dir/srvout"
"$gemserver" >"$dir/srvout" 2>/dev/null &
srv_pid=$!
read -r port <"$dir/srvout"

http_port=$(python3 -c 'import socket; s=socket.socket(); \
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
{
	echo "listen 127.0.0.1:$http_port"
	echo "state-dir $dir/state"
	echo "interval $interval"
	echo "timeout 1s"
	i=1
	while [ "$i" -le "$n" ]; do
		echo "capsule gemini://127.0.0.1:$port/ok?c=$i name=c$i"
		i=$((i + 1))
	done
} >"$dir/gemwatch.conf"
"$gemwatch" -f "$dir/gemwatch.conf" 2>"$dir/gemwatch.log" &
gw_pid=$!
base=http://127.0.0.1:$http_port

rss() { awk '/^VmRSS/ { print $2 }' "/proc/$gw_pid/status"; }
fds() { ls "/proc/$gw_pid/fd" | wc -l; }
probes() {
	curl -fsS "$base/metrics" |
	    awk '/^gemini_probes_total/ { s += $2 } END { printf "%d", s }'
}
render() {
	k=0
	while [ $k -lt 20 ]; do
		curl -fsS -o /dev/null -w '%{time_total}\n' "$base/metrics"
		k=$((k + 1))
	done | awk '{ s += $1 } END { printf "%.2f", s / NR * 1000 }'
}
sample() {
	kill -0 "$gw_pid" 2>/dev/null || { echo "gemwatch died" >&2; exit 1; }
	printf '%7s %10s %6s %9s %12s\n' "$1" "$(rss)" "$(fds)" \
	    "$(probes)" "$(render)"
}

echo "gemwatch soak: $n capsules, interval $interval, ${duration}s"
warmup=${SOAK_WARMUP:-30}
sleep "$warmup"
printf '%7s %10s %6s %9s %12s\n' time_s rss_kB fds probes render_ms
start=$(date +%s)
sample "$warmup"
elapsed=$warmup
while [ "$elapsed" -lt "$duration" ]; do
	step=60
	[ $((elapsed + step)) -gt "$duration" ] && step=$((duration - elapsed))
	sleep "$step"
	elapsed=$((elapsed + step))
	sample "$elapsed"
done
end=$(date +%s)
echo "measured over $((end - start))s; last log lines (the start line aside):"
grep -v " started: " "$dir/gemwatch.log" | tail -5 || true
kill "$gw_pid"
wait "$gw_pid" && echo "gemwatch exited 0" || echo "gemwatch exit status $?"
gw_pid=
