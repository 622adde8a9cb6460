"""expect-body within the probe's deadline.

glibc's regexec is quadratic on patterns that start with a repetition:
".+foo" against a 200 kB body that does not match takes minutes. The
match is part of the probe, so the probe's deadline covers it: the probe
fails with reason body, saying the match was cut off, about when its
timeout ends; /probe?capsule= likewise; and SIGTERM during such a match
stops the daemon at once instead of waiting for it.
"""
import time
import urllib.parse

from gemtest import (SLOW, Daemon, GemServer, diag, done, is_, metric, ok,
                     parse_metrics)

TIMEOUT = 2
MARGIN = 2.0 * SLOW     # generous: the deadline itself is what is tested
BIG = "/big?bytes=200000"

srv = GemServer()
dm = Daemon('interval 5s\n'
            'capsule %s name=slow timeout=%ds expect-body=".+foo"\n'
            'capsule %s name=fine timeout=%ds expect-body="^0123"\n'
            % (srv.url(BIG), TIMEOUT, srv.url(BIG), TIMEOUT))


def last(name):
    return dm.json("/api/v1/capsules/" + name)["last"]


def wait_last(name, timeout=30):
    end = time.monotonic() + timeout * SLOW
    while time.monotonic() < end:
        r = last(name)
        if r is not None:
            return r
        time.sleep(0.2)
    return None


r = wait_last("slow")
ok(r is not None, "a result for the quadratic match arrives")
r = r or {"error": None, "durations": {}}
err = r["error"] or {}
is_(err.get("reason"), "body", "it fails with reason body")
is_(err.get("stage"), "body", "at stage body")
ok("cut off" in (err.get("message") or "") and
   "deadline" in (err.get("message") or ""),
   "the message says the match was cut off at the deadline",
   err.get("message"))
total = r["durations"].get("total") or 1e9
ok(total < TIMEOUT + MARGIN, "the probe took about its timeout (%.2fs)"
   % total)
is_(r.get("body_bytes"), 200000, "the whole body was read")
r = wait_last("fine")
ok(r is not None and r["success"], "a pattern that matches still matches",
   r)

# /probe?capsule= runs the same check and ends by the same deadline.
t0 = time.monotonic()
try:
    status, _, body = dm.get("/probe?" + urllib.parse.urlencode(
        {"capsule": "slow"}), timeout=30)
except OSError as e:
    status, body = str(e), b""
took = time.monotonic() - t0
is_(status, 200, "/probe?capsule=slow answers 200")
m = parse_metrics(body.decode())
is_(metric(m, "probe_success"), 0.0, "/probe?capsule=slow: probe_success 0")
ok(took < TIMEOUT + MARGIN, "/probe?capsule=slow answers by the deadline "
   "(%.2fs)" % took)
ok(dm.alive(), "daemon alive")
rc, _ = dm.stop()
is_(rc, 0, "daemon exits 0")

# SIGTERM while a long match runs: the daemon does not wait for it.
dm = Daemon('interval 60s\n'
            'capsule %s name=slow timeout=50s expect-body=".+foo"\n'
            % srv.url(BIG))
# The only capsule is probed at once; its body is read within
# milliseconds, then the match runs for minutes.
time.sleep(1.5 * SLOW)
ok(dm.alive(), "daemon alive while the match runs")
rc, took = dm.stop(timeout=30)
diag("SIGTERM to exit: %.2fs" % took)
is_(rc, 0, "SIGTERM during a match: exit 0")
ok(took < 3 * SLOW, "SIGTERM during a match: the daemon stops at once "
   "(%.2fs)" % took)
done()
