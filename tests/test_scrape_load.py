"""/healthz answers at once while scrapers keep the renderers busy.

1,000 capsules with 1,000 results each (a snapshot tests/bench_store
writes; they are probed once an hour) and four more probed every second,
so the store changes every second and /metrics is rendered anew as often.
20 clients fetch /metrics back to back and 20 fetch the status page (a
tenth of a second's render each), for 15 s, while /healthz is asked every
0.1 s on a connection of its own. Renders used to run on libmicrohttpd's
one thread per listen address, so /healthz waited behind every render
queued before it: p50 1.8 s, worst 2.2 s. Renders now run on two render
threads while their connection waits, and /healthz is answered by the
thread that only moves bytes: p50 and worst a few milliseconds, asserted
as p50 under 0.25 s and p90 under a quarter of a page fetch's median,
which queues behind the renders (the figures are printed; a worst case
is left to the benchmark, as a loaded machine stretches it). The
scrapers get every answer whole and the probes go on. At the end SIGTERM
comes with 30 page renders queued: the daemon exits at once, each client
answered (503 "stopping" for a render not started) or closed.

Skipped under valgrind, which runs one thread at a time.
"""
import http.client
import os
import subprocess
import threading
import time

from gemtest import (WRAPPER, Daemon, GemServer, diag, done, is_, metric, ok,
                     skip_all, tmpdir)

if WRAPPER:
    skip_all("needs threads running at once, which valgrind serialises")

CAPSULES, HISTORY = 1000, 1000
SCRAPERS, PAGERS = 20, 20
HAMMER = 15
FAST = ["fast%d" % i for i in range(4)]

BENCH_STORE = os.path.join(os.environ.get("TOP_BUILDDIR", "."),
                           "tests", "bench_store")
srv = GemServer()
state = os.path.join(tmpdir(), "state")
os.makedirs(state)
subprocess.run([BENCH_STORE, "-h", str(HISTORY), "-s", state, "-k",
                str(CAPSULES)], check=True, capture_output=True, timeout=120)

conf = "state-dir %s\nhistory %d\ninterval 1h\n" % (state, HISTORY)
for i in range(CAPSULES):      # bench_store's names
    conf += "capsule %s name=capsule-%05d\n" % (srv.url("/ok"), i)
for name in FAST:
    conf += "capsule %s name=%s interval=1s timeout=1s\n" % (srv.url("/ok"),
                                                              name)
d = Daemon(conf)
page = d.json("/api/v1/capsules/capsule-00000")
is_(len(page["history"]), HISTORY, "the snapshot's histories are restored")

stop = threading.Event()
scrapes, health = [], []
whole = [True]


def scraper(path):
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=120)
    while not stop.is_set():
        t = time.monotonic()
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        if r.status != 200 or (path == "/metrics" and
                               not body.endswith(b"\n")):
            whole[0] = False
        scrapes.append((path, time.monotonic() - t))
    c.close()


def healthz():
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=120)
    while not stop.is_set():
        t = time.monotonic()
        c.request("GET", "/healthz")
        r = c.getresponse()
        r.read()
        health.append((r.status, time.monotonic() - t))
        stop.wait(0.1)
    c.close()


def probes(m):
    return sum(metric(m, "gemini_probes_total", capsule=n, check="page") or 0
               for n in FAST)


before = probes(d.metrics())
threads = ([threading.Thread(target=scraper, args=("/metrics",))
            for _ in range(SCRAPERS)] +
           [threading.Thread(target=scraper, args=("/",))
            for _ in range(PAGERS)] + [threading.Thread(target=healthz)])
for th in threads:
    th.start()
time.sleep(HAMMER)
stop.set()
for th in threads:
    th.join(timeout=120)


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p * len(v)))] if v else float("nan")


lat = [t for _, t in health]
for path in ("/metrics", "/"):
    s = [t for p, t in scrapes if p == path]
    diag("%s: %d fetches, p50 %.3f s, max %.3f s" %
         (path, len(s), pct(s, 0.5), max(s) if s else 0))
diag("/healthz: %d asked, p50 %.3f s, p99 %.3f s, max %.3f s" %
     (len(lat), pct(lat, 0.5), pct(lat, 0.99), max(lat) if lat else 0))
ok(len(scrapes) > SCRAPERS and whole[0],
   "the scrapers got whole answers (%d)" % len(scrapes))
ok(len(health) >= HAMMER, "/healthz asked throughout (%d times)" %
   len(health))
is_([s for s, _ in health if s != 200], [], "/healthz answered 200")
ok(pct(lat, 0.5) < 0.25, "/healthz's median answer under 0.25 s (%.3f s)" %
   pct(lat, 0.5))
pages = [t for p, t in scrapes if p == "/"]
ok(lat and pct(lat, 0.9) < pct(pages, 0.5) / 4,
   "/healthz's p90 (%.3f s) under a quarter of a page fetch's median "
   "(%.3f s): it does not wait behind renders" %
   (pct(lat, 0.9), pct(pages, 0.5)))
m = d.wait_for(lambda m: probes(m) >= before + 2 * len(FAST), timeout=15,
               what="probes")
ok(probes(m) >= before + 2 * len(FAST), "the probes go on (%d, then %d)" %
   (before, probes(m)))
ok(d.alive(), "daemon alive")

# Stopping with renders queued: each is answered ("stopping" or the page)
# or its connection closed, and the daemon exits at once.
answers = []


def one_page():
    try:
        c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=60)
        c.request("GET", "/")
        r = c.getresponse()
        r.read()
        answers.append(r.status)
    except (OSError, http.client.HTTPException):
        answers.append("closed")


threads = [threading.Thread(target=one_page) for _ in range(30)]
for th in threads:
    th.start()
time.sleep(0.3)
rc, took = d.stop()
for th in threads:
    th.join(timeout=60)
is_(rc, 0, "stopped with renders queued: exit 0")
ok(took < 5, "and at once (%.2f s)" % took)
ok(len(answers) == 30 and set(answers) <= {200, 503, "closed"},
   "each queued render answered or closed (%s)" %
   sorted(set(map(str, answers))))
done()
