"""Stopping with probes in flight: an abandoned probe is not a result.

64 capsules on a test server that accepts and never answers (never-speak),
interval and timeout T, concurrency 64: the first probes spread over the
first interval and each hangs until its deadline. Once 52 of them are in
flight (connections to the server established, read from /proc/net/tcp)
and none has finished, SIGTERM: the daemon abandons them. (Many probes in
flight make the old race, a worker storing its abandoned result before
the scheduler said it was stopping, show every time: with 8 it rarely did.)
None of them may count. The log has no "probe abandoned" line, and after
a start on the same state-dir (the snapshot is written at shutdown) every
capsule has gemini_probes_total 0, no failure counted, and an empty
history. The second run probes once an hour, so its own first probe is
still hanging while it is checked.
"""
import os
import time

from gemtest import (SLOW, Daemon, GemServer, diag, done, find, is_, metric,
                     ok, tmpdir)

N = 64
T = int(20 * SLOW)
IN_FLIGHT = 52

srv = GemServer("-m", "never-speak")
state = os.path.join(tmpdir(), "state")
NAMES = ["c%02d" % i for i in range(N)]


def conf(interval):
    text = ("state-dir %s\ninterval %s\ntimeout %ds\nconcurrency %d\n" %
            (state, interval, T, N))
    for i, name in enumerate(NAMES):
        # Distinct URLs: the server sees one connection per probe.
        text += "capsule %s name=%s\n" % (srv.url("/%d" % i), name)
    return text


def established(port):
    """TCP connections established to 127.0.0.1:port (client side)."""
    n = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            rem, st = fields[2], fields[3]
            if st == "01" and int(rem.split(":")[1], 16) == port:
                n += 1
    return n


def counted(m, name):
    """gemini_probes_total and the sum of the failure counters."""
    probes = metric(m, "gemini_probes_total", capsule=name, check="page")
    fails = sum(v for _, v in find(m, "gemini_probe_failures_total",
                                   capsule=name))
    return (probes or 0), fails


# ---- first run: stop while probes hang ------------------------------------
d = Daemon(conf("%ds" % T))
end = time.monotonic() + T * 0.95
while established(srv.port) < IN_FLIGHT and time.monotonic() < end:
    time.sleep(0.1)
flying = established(srv.port)
ok(flying >= IN_FLIGHT, "%d probes in flight before SIGTERM" % flying)
m = d.metrics()
is_(sum(counted(m, n)[0] for n in NAMES), 0,
    "no probe has finished before SIGTERM")
rc, took = d.stop()
is_(rc, 0, "SIGTERM exits 0")
ok(took < T, "the hanging probes were abandoned (stopped in %.1f s)" % took)
log = d.logtext()
ok("probe abandoned" not in log, "no \"probe abandoned\" in the log",
   "\n".join(l for l in log.splitlines() if "abandoned" in l))
ok(": down (" not in log,
   "no capsule logged down")
ok(os.path.exists(os.path.join(state, "history.snapshot")),
   "the snapshot is written at shutdown")

# ---- second run, same state-dir -------------------------------------------
d2 = Daemon(conf("1h"))
m = d2.metrics()
bad = {n: counted(m, n) for n in NAMES if counted(m, n) != (0, 0)}
is_(bad, {}, "after restart: no probe and no failure counted")
api = d2.json("/api/v1/capsules")
is_(sorted(c["name"] for c in api["capsules"] if c["last"] is not None), [],
    "after restart: no capsule has a latest result")
hist = {n: len(d2.json("/api/v1/capsules/" + n)["history"]) for n in NAMES}
is_({n: h for n, h in hist.items() if h}, {},
    "after restart: every history is empty")
ok(d2.alive(), "daemon alive")
rc, _ = d2.stop()
is_(rc, 0, "second run exits 0")
diag("%d probes were in flight at SIGTERM" % flying)
done()
