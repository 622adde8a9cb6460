"""A slow render does not stall the scheduler: /healthz stays 200.

The store is restored from a snapshot that tests/bench_store writes: 200
capsules with 5,000 results each (they are probed once an hour), so a
render of the status page, which walks every history for the uptime
column, holds the store's read lock for a good tenth of a second. Four
clients on four listen addresses (one libmicrohttpd thread each) ask for
the page back to back, so some render always holds the read lock, and
four more capsules are probed every second: each finished probe waits for
the store's write lock. That wait must not reach the main loop. It did
when the result was published under the scheduler's mutex: the main
thread blocked on that mutex, its heartbeat went stale and /healthz, asked
on a fifth address every half second, said "scheduler stalled" after 10 s.
The page is asked for 20 s; afterwards the probes go on.

Skipped under valgrind, which runs one thread at a time: the contention
this test needs cannot happen there (tests/test_sched checks the same
rule, publishing outside the scheduler's lock, without threads racing).
"""
import http.client
import os
import subprocess
import threading
import time

from gemtest import (WRAPPER, Daemon, GemServer, diag, done, free_port, is_,
                     metric, ok, skip_all, tmpdir)

if WRAPPER:
    skip_all("needs threads running at once, which valgrind serialises")

CAPSULES, HISTORY = 200, 5000
READERS = 4
HAMMER = 20      # seconds of back-to-back renders; the heartbeat is stale at 10
FAST = ["fast%d" % i for i in range(4)]

BENCH_STORE = os.path.join(os.environ.get("TOP_BUILDDIR", "."),
                           "tests", "bench_store")
srv = GemServer()
state = os.path.join(tmpdir(), "state")
os.makedirs(state)
subprocess.run([BENCH_STORE, "-h", str(HISTORY), "-s", state, "-k",
                str(CAPSULES)], check=True, capture_output=True, timeout=120)

ports = [free_port() for _ in range(READERS + 1)]
conf = "".join("listen 127.0.0.1:%d\n" % p for p in ports)
conf += ("state-dir %s\nhistory %d\ninterval 1h\nconcurrency 16\n" %
         (state, HISTORY))
for i in range(CAPSULES):      # bench_store's names
    conf += "capsule %s name=capsule-%05d\n" % (srv.url("/ok"), i)
for name in FAST:
    conf += "capsule %s name=%s interval=1s timeout=1s\n" % (srv.url("/ok"),
                                                              name)
d = Daemon(conf, port=ports[-1])    # /healthz and the checks on the last
page = d.json("/api/v1/capsules/capsule-00000")
is_(len(page["history"]), HISTORY, "the snapshot's histories are restored")

stop = threading.Event()
renders, health = [], []


def reader(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    while not stop.is_set():
        t = time.monotonic()
        c.request("GET", "/")
        r = c.getresponse()
        r.read()
        renders.append((r.status, time.monotonic() - t))
    c.close()


def healthz():
    while not stop.is_set():
        t = time.monotonic()
        try:
            status, _, body = d.get("/healthz", timeout=30)
        except OSError as e:
            status, body = repr(e), b""
        health.append((round(t - t0, 1), status, body.strip()))
        stop.wait(0.5)


def probes(m):
    return sum(metric(m, "gemini_probes_total", capsule=n, check="page") or 0
               for n in FAST)


before = probes(d.metrics())
threads = [threading.Thread(target=reader, args=(p,))
           for p in ports[:READERS]] + [threading.Thread(target=healthz)]
t0 = time.monotonic()
for th in threads:
    th.start()
time.sleep(HAMMER)
stop.set()
for th in threads:
    th.join(timeout=60)

ok(len(renders) > 0 and all(s == 200 for s, _ in renders),
   "the page was rendered back to back (%d renders)" % len(renders))
if renders:
    diag("renders: %d, mean %.3f s, longest %.3f s" %
         (len(renders), sum(r for _, r in renders) / len(renders),
          max(r for _, r in renders)))
ok(len(health) >= HAMMER, "/healthz asked throughout (%d times)" %
   len(health))
is_([h for h in health if h[1] != 200], [],
    "/healthz answered 200 while the page was rendered")
mid = probes(d.metrics())
m = d.wait_for(lambda m: probes(m) >= mid + 2 * len(FAST), timeout=15,
               what="probes after the renders")
ok(probes(m) >= mid + 2 * len(FAST),
   "the probes go on after the renders (%d, %d, then %d)" %
   (before, mid, probes(m)))
ok(d.alive(), "daemon alive")
rc, _ = d.stop()
is_(rc, 0, "exit 0")
done()
