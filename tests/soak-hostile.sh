#!/bin/sh
# soak-hostile.sh - run the daemon for a long time against every behaviour of
# the test Gemini server and watch its memory and file descriptors.
#
# Starts one tests/gemserver per server mode and certificate shape, writes a
# configuration of N capsules probed every second that cycle through every
# path of the normal server and every other server (plus a refused port and
# some error-path checks), runs the daemon for DURATION seconds and samples,
# every SAMPLE seconds, its resident memory (VmRSS), open fds (the least of
# five readings, as probes in flight hold sockets), threads,
# probes finished and the /healthz latency. It prints a table as it goes,
# then the first sample after warm-up and the last, and exits 0 when RSS and
# fds are flat (fds within FD_SLACK, RSS within RSS_SLACK_KB) and the daemon
# stopped cleanly, 1 otherwise (then the daemon's log is kept and named).
# Not part of `make check`: run it by hand from the build directory,
#   DURATION=1800 N=200 tests/soak-hostile.sh
# Everything runs on 127.0.0.1 and stops by itself after DURATION.

set -u

DURATION=${DURATION:-3600}
N=${N:-200}
SAMPLE=${SAMPLE:-60}
WARMUP=${WARMUP:-600}	# history rings fill up first
HISTORY=${HISTORY:-120}
TIMEOUT=${TIMEOUT:-1s}	# the configuration wants timeout <= interval
CONCURRENCY=${CONCURRENCY:-64}
FD_SLACK=${FD_SLACK:-4}
RSS_SLACK_KB=${RSS_SLACK_KB:-8192}
GEMWATCH=${GEMWATCH:-./gemwatch}
GEMSERVER=${GEMSERVER:-./tests/gemserver}

for p in "$GEMWATCH" "$GEMSERVER"; do
	if [ ! -x "$p" ]; then
		echo "soak-hostile: $p not found (run from the build" \
		    "directory after make check, or set GEMWATCH/GEMSERVER)" >&2
		exit 2
	fi
done
command -v curl >/dev/null || { echo "soak-hostile: needs curl" >&2; exit 2; }

dir=$(mktemp -d /tmp/gemwatch-soak-hostile.XXXXXX) || exit 2
pids=
keep=
spid=
cleanup() {
	[ -n "$spid" ] && kill "$spid" 2>/dev/null
	for p in $pids; do
		kill "$p" 2>/dev/null
	done
	for p in $pids; do
		wait "$p" 2>/dev/null
	done
	if [ -n "$keep" ]; then
		cp "$dir/gemwatch.log" "$keep" 2>/dev/null &&
		    echo "soak-hostile: the daemon's log is in $keep"
	fi
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# start_server NAME ARGS...: a gemserver; its port ends up in $dir/NAME.port
start_server() {
	name=$1
	shift
	"$GEMSERVER" -P "$dir/$name.port" "$@" >/dev/null 2>&1 &
	pids="$pids $!"
}

start_server normal
start_server chain50 -c chain50
start_server huge -c huge
start_server expired -c expired
start_server notyet -c notyet
start_server tls12 -m tls12
start_server plain -m plain
start_server stallhs -m stall-handshake
start_server acceptclose -m accept-close
start_server neverspeak -m never-speak
start_server neverread -m never-read
for name in normal chain50 huge expired notyet tls12 plain stallhs \
    acceptclose neverspeak neverread; do
	i=0
	while [ ! -s "$dir/$name.port" ]; do
		i=$((i + 1))
		if [ $i -gt 300 ]; then
			echo "soak-hostile: gemserver $name did not start" >&2
			exit 2
		fi
		sleep 0.1
	done
done
port() { cat "$dir/$1.port"; }

# A port nothing listens on: bind one and let it go.
free_port() {
	python3 -c 'import socket; s = socket.socket()
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
refused=$(free_port)
http=$(free_port)

n=$(port normal)
targets="
gemini://127.0.0.1:$n/ok
gemini://127.0.0.1:$n/premature
gemini://127.0.0.1:$n/midrecord
gemini://127.0.0.1:$n/reset
gemini://127.0.0.1:$n/stall-header
gemini://127.0.0.1:$n/stall-body
gemini://127.0.0.1:$n/trickle?ms=500
gemini://127.0.0.1:$n/trickle?ms=50&n=10
gemini://127.0.0.1:$n/malformed
gemini://127.0.0.1:$n/malformed2
gemini://127.0.0.1:$n/badstatus
gemini://127.0.0.1:$n/meta1024
gemini://127.0.0.1:$n/meta1025
gemini://127.0.0.1:$n/nocrlf
gemini://127.0.0.1:$n/lfonly
gemini://127.0.0.1:$n/nothing
gemini://127.0.0.1:$n/nothing-premature
gemini://127.0.0.1:$n/status/51
gemini://127.0.0.1:$n/status/31
gemini://127.0.0.1:$n/error-premature/51
gemini://127.0.0.1:$n/big?bytes=1073741824
gemini://127.0.0.1:$n/big?bytes=100000
gemini://localhost:$n/sni
gemini://127.0.0.1:$n/request
gemini://127.0.0.1:$n/garbage-after-close
gemini://127.0.0.1:$n/alert-mid-body
gemini://127.0.0.1:$n/keyupdate-flood
gemini://127.0.0.1:$n/endless-header
gemini://127.0.0.1:$n/body?text=hello
gemini://127.0.0.1:$n/slow-header?ms=300
gemini://127.0.0.1:$(port chain50)/
gemini://127.0.0.1:$(port huge)/
gemini://127.0.0.1:$(port expired)/
gemini://127.0.0.1:$(port notyet)/
gemini://127.0.0.1:$(port tls12)/
gemini://127.0.0.1:$(port plain)/
gemini://127.0.0.1:$(port stallhs)/
gemini://127.0.0.1:$(port acceptclose)/
gemini://127.0.0.1:$(port neverspeak)/
gemini://127.0.0.1:$(port neverread)/
gemini://127.0.0.1:$refused/
"
ntargets=$(echo "$targets" | grep -c .)

conf=$dir/gemwatch.conf
{
	echo "listen 127.0.0.1:$http"
	echo "state-dir $dir/state"
	echo "interval 1s"
	echo "timeout $TIMEOUT"
	echo "concurrency $CONCURRENCY"
	echo "history $HISTORY"
	i=0
	while [ "$i" -lt "$N" ]; do
		url=$(echo "$targets" | grep . | sed -n "$((i % ntargets + 1))p")
		case $url in
		*\?*) url="$url&soak=$i" ;;
		*) url="$url?soak=$i" ;;
		esac
		extra=
		# every seventh capsule also checks an error page
		[ $((i % 7)) -eq 3 ] && extra=" error-path=/no-such-page"
		echo "capsule \"$url\" name=c$i$extra"
		i=$((i + 1))
	done
} >"$conf"

"$GEMWATCH" -n -f "$conf" >/dev/null || { echo "soak-hostile: bad conf" >&2; \
    cat "$conf" >&2; exit 2; }
"$GEMWATCH" -f "$conf" 2>"$dir/gemwatch.log" &
gw=$!
pids="$pids $gw"
i=0
until curl -s -o /dev/null -m 1 "http://127.0.0.1:$http/healthz"; do
	i=$((i + 1))
	if [ $i -gt 100 ] || ! kill -0 $gw 2>/dev/null; then
		echo "soak-hostile: daemon did not start" >&2
		cat "$dir/gemwatch.log" >&2
		exit 2
	fi
	sleep 0.1
done

echo "soak-hostile: $N capsules over $ntargets behaviours, interval 1s," \
    "timeout $TIMEOUT, concurrency $CONCURRENCY, $DURATION s, pid $gw"

# sample ELAPSED: one table row
sample() {
	rss=$(awk '/^VmRSS:/ { print $2 }' /proc/$gw/status)
	threads=$(awk '/^Threads:/ { print $2 }' /proc/$gw/status)
	# probes in flight hold sockets: the least of five readings
	fds=
	for i in 1 2 3 4 5; do
		n=$(ls /proc/$gw/fd | wc -l)
		[ -z "$fds" ] || [ "$n" -lt "$fds" ] && fds=$n
		sleep 0.2
	done
	hz=$(curl -s -o /dev/null -m 5 -w '%{http_code} %{time_total}' \
	    "http://127.0.0.1:$http/healthz")
	probes=$(curl -s -m 10 "http://127.0.0.1:$http/metrics" |
	    awk '/^gemini_probes_total/ { s += $2 } END { printf "%d", s }')
	printf '%8d %10s %6s %8s %10s %6s %9s\n' "$1" "$rss" "$fds" \
	    "$threads" "$probes" $hz
}

header=$(printf '%8s %10s %6s %8s %10s %6s %9s' elapsed rss_kB fds threads \
    probes hz hz_s)
echo "$header"
start=$(date +%s)
first=
last=
while :; do
	now=$(date +%s)
	elapsed=$((now - start))
	if ! kill -0 $gw 2>/dev/null; then
		echo "soak-hostile: the daemon died" >&2
		tail -20 "$dir/gemwatch.log" >&2
		keep=$dir.log
		exit 1
	fi
	row=$(sample $elapsed)
	echo "$row"
	if [ -z "$first" ] && [ $elapsed -ge "$WARMUP" ]; then
		first=$row
	fi
	last=$row
	[ $elapsed -ge "$DURATION" ] && break
	left=$((DURATION - elapsed))
	# in the background, so that a signal ends the wait at once
	sleep $((left < SAMPLE ? left : SAMPLE)) &
	spid=$!
	wait $spid
	spid=
done
[ -n "$first" ] || first=$last

echo
echo "first sample after warm-up and last sample:"
echo "$header"
echo "$first"
echo "$last"

set -- $first
rss0=$2 fd0=$3
set -- $last
rss1=$2 fd1=$3
status=0
# fewer fds at the end is fine (fewer probes in flight), more is a leak
if [ $((fd1 - fd0)) -gt "$FD_SLACK" ]; then
	echo "soak-hostile: fds grew from $fd0 to $fd1"
	status=1
fi
if [ $((rss1 - rss0)) -gt "$RSS_SLACK_KB" ]; then
	echo "soak-hostile: RSS grew from $rss0 kB to $rss1 kB"
	status=1
fi
kill -TERM $gw
wait $gw
rc=$?
if [ $rc -ne 0 ]; then
	echo "soak-hostile: the daemon exited with status $rc"
	status=1
fi
pids=$(echo "$pids" | sed "s/ $gw\$//")
if grep -q " fatal: " "$dir/gemwatch.log"; then
	echo "soak-hostile: the daemon logged a fatal error:"
	grep " fatal: " "$dir/gemwatch.log" | head -5
	status=1
fi
set -- $first
t0=$1
set -- $last
if [ "$1" -gt "$t0" ]; then
	echo "soak-hostile: RSS moved $((rss1 - rss0)) kB in $(($1 - t0)) s" \
	    "($(((rss1 - rss0) * 3600 / ($1 - t0))) kB/hour)"
fi
if [ $status -eq 0 ]; then
	echo "soak-hostile: RSS and fds are flat"
else
	keep=$dir.log
fi
exit $status
