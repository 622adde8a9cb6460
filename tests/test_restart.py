"""Nothing is lost on restart: the daemon saves its history and counters to
state-dir/history.snapshot when it stops and loads them when it starts.

Two capsules on the test Gemini server (one with an error page, one that
ends without close_notify) are probed a few times; after SIGTERM and a
start on the same state-dir, each capsule's JSON has the same history
(older entries unchanged, as many or more), counters at least as high, and
gemini_probes_total carries on from the saved value. A corrupt snapshot is
reported, moved aside to history.snapshot.corrupt, and the daemon starts
with an empty history; without a usable state-dir it runs in memory.
"""
import json
import os

from gemtest import Daemon, GemServer, diag, done, is_, metric, ok, tmpdir

srv = GemServer()
state = os.path.join(tmpdir(), "state")
snapshot = os.path.join(state, "history.snapshot")
CONF = """state-dir %s
interval 1s
timeout 1s
history 120
capsule %s name=good error-path=/nope
capsule %s name=bad
""" % (state, srv.url("/ok"), srv.url("/premature"))
NAMES = ("good", "bad")


def probes(m, name, check="page"):
    return metric(m, "gemini_probes_total", capsule=name, check=check) or 0


def capsule(d, name):
    return d.json("/api/v1/capsules/" + name)


def readlog(d):
    with open(d.log) as f:
        return f.read()


# ---- first run -------------------------------------------------------------
d = Daemon(CONF)
m = d.wait_for(lambda m: all(probes(m, n) >= 4 for n in NAMES) and
               probes(m, "good", "error_page") >= 4,
               timeout=30, what="four probes of each check")
ok(all(probes(m, n) >= 4 for n in NAMES), "first run: probes done")
before = {n: capsule(d, n) for n in NAMES}
before_total = probes(d.metrics(), "good")
rc, _ = d.stop()
is_(rc, 0, "first run: SIGTERM exits 0")
ok(os.path.exists(snapshot), "the snapshot is written at shutdown")
ok(not os.path.exists(snapshot + ".tmp"), "no temporary file left")
ok(os.path.getsize(snapshot) > 100, "the snapshot holds something",
   os.path.getsize(snapshot))
# What was saved is at least what the API showed before SIGTERM.
saved_probes = before["good"]["counters"]["probes"]

# ---- second run, same state-dir ---------------------------------------------
d2 = Daemon(CONF)
after = {n: capsule(d2, n) for n in NAMES}
m2 = d2.metrics()
for n in NAMES:
    a, b = after[n], before[n]
    h_a, h_b = a["history"], b["history"]
    ok(len(h_a) >= len(h_b) > 0, "%s: history as long as before" % n,
       "%d < %d" % (len(h_a), len(h_b)))
    # New probes may have landed in front: the old ones follow unchanged.
    k = len(h_a) - len(h_b)
    ok(h_a[k:] == h_b, "%s: the saved history is back, entry for entry" % n,
       json.dumps({"before": h_b[:2], "after": h_a[k:k + 2]}, indent=1))
    ok(a["counters"]["probes"] >= b["counters"]["probes"],
       "%s: probes counter kept" % n,
       "%d < %d" % (a["counters"]["probes"], b["counters"]["probes"]))
    ok(all(a["counters"]["failures"][r] >= v
           for r, v in b["counters"]["failures"].items()),
       "%s: failure counters kept" % n)
    ok(all(a["counters"]["ends"][e] >= v
           for e, v in b["counters"]["ends"].items()),
       "%s: end counters kept" % n)
    ok(a["last"] is not None, "%s: a last result at once" % n)
is_(after["bad"]["counters"]["failures"]["close_notify"] >=
    before["bad"]["counters"]["failures"]["close_notify"] > 0, True,
    "bad: close_notify failures carried over")
ok(len(after["good"]["error_page"]["history"]) >=
   len(before["good"]["error_page"]["history"]) > 0,
   "good: the error page's history is back too")
ok(probes(m2, "good") >= before_total,
   "gemini_probes_total continues from the saved value, not 0",
   "%s < %s" % (probes(m2, "good"), before_total))
m2 = d2.wait_for(lambda m: probes(m, "good") > saved_probes, timeout=20,
                 what="a new probe")
ok(probes(m2, "good") > saved_probes, "and goes on counting")
status, _, body = d2.get("/")
ok(status == 200 and b"good" in body, "the page renders")
ok("snapshot %s: loaded" % snapshot in readlog(d2), "the load is logged")
ok(d2.alive(), "second run: still running")
rc, _ = d2.stop()
is_(rc, 0, "second run: SIGTERM exits 0")

# ---- a corrupt snapshot --------------------------------------------------------
with open(snapshot, "r+b") as f:
    f.seek(40)
    f.write(b"\xff\xfe garbage \x00\x01")
d3 = Daemon(CONF)
a = capsule(d3, "good")
ok(a["counters"]["probes"] < saved_probes,
   "corrupt snapshot: the daemon starts empty", a["counters"]["probes"])
log = readlog(d3)
ok("warning: snapshot %s: checksum mismatch" % snapshot in log,
   "corrupt snapshot: a warning names the file and the problem", log)
ok(os.path.exists(snapshot + ".corrupt"), "moved aside to .corrupt")
ok(d3.alive(), "third run: still running")
rc, _ = d3.stop()
is_(rc, 0, "third run: SIGTERM exits 0")
ok(os.path.exists(snapshot), "a fresh snapshot is written")
diag("snapshot: %d bytes" % os.path.getsize(snapshot))

# ---- no usable state-dir: the daemon runs in memory ------------------------------
d4 = Daemon(CONF.replace("state-dir %s" % state, "state-dir /dev/null/state"))
d4.wait_for(lambda m: probes(m, "good") >= 1, timeout=20, what="a probe")
ok(d4.alive(), "unusable state-dir: the daemon runs")
rc, _ = d4.stop()
is_(rc, 0, "unusable state-dir: SIGTERM exits 0")
log = readlog(d4)
ok("state-dir /dev/null/state" in log and "memory only" in log,
   "unusable state-dir: a warning says the state stays in memory", log)
ok("snapshot" not in log, "and no snapshot is tried", log)
done()
