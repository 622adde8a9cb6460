"""Hostile Gemini servers: the probe and the daemon against each of them.

First `gemwatch probe -j -t 2` meets every hostile behaviour of the test
server once and must end within its 2-second deadline (plus a margin) with
the end and reason we expect (each choice is justified next to its case).
Then the daemon probes all of them as capsules for about 20 seconds while a
background thread asks /healthz every 0.5 s: it must keep answering (200
within 1 s each time), every capsule must have a result with its expected
reason in /metrics, and fds and resident memory must not grow between the
end of the warm-up and the end of the run.
"""
import json
import threading
import time

from gemtest import (Daemon, GemServer, SANITIZED, SLOW, WRAPPER, diag,
                     done, find, is_,
                     metric, ok, probe_json)

# -t 2, longer under valgrind (where reading 4 MB alone can take seconds).
DEADLINE = 2 * SLOW
MARGIN = 1.0 * SLOW

srv = GemServer()
chain50 = GemServer("-c", "chain50")
huge = GemServer("-c", "huge")
never_read = GemServer("-m", "never-read")
accept_close = GemServer("-m", "accept-close")
never_speak = GemServer("-m", "never-speak")

LEAF = "O=gemwatch test,CN=localhost"

# (name, url, end, reason or None for success, status, stage, fast)
# "fast" cases must end well before the deadline: the server gives the
# probe something that ends it at once, so reaching the deadline would be a
# bug (e.g. waiting for the end of an endless header).
CASES = [
    # The header line never ends: "20 " then 'a' forever. The probe must
    # give up as soon as META passes 1024 bytes (SPEC §4: reason header),
    # not wait for a CRLF until the deadline. No header, so no status and
    # no end: the body was never reached.
    ("endless-header", srv.url("/endless-header"), None, "header", None,
     "header", True),
    # 1 GiB body: the probe stops reading just past max-body (4M by
    # default), end "limit", reason body (SPEC §1, §4), in a fraction of
    # a second rather than after a gigabyte.
    ("1 GiB body", srv.url("/big?bytes=1073741824"), "limit", "body", 20,
     "body", True),
    # One byte every 500 ms: every read makes progress, but the whole-probe
    # deadline (SPEC §4: "the deadline covers the whole probe") ends it:
    # end timeout, reason timeout, during the body.
    ("trickle 500 ms", srv.url("/trickle?ms=500"), "timeout", "timeout", 20,
     "body", False),
    # close_notify, then 64 bytes that are not TLS records. The response
    # ended with close_notify (gnutls_record_recv returned 0) and nothing
    # after it is read: a success.
    ("garbage after close_notify", srv.url("/garbage-after-close"),
     "close_notify", None, 20, None, True),
    # A fatal internal_error alert in the middle of the body: "any other
    # fatal TLS error or alert" is end error, reason tls (SPEC §1, §4).
    ("fatal alert mid-body", srv.url("/alert-mid-body"), "error", "tls", 20,
     "body", True),
    # A KeyUpdate before each of 2000 lines. GnuTLS 3.7 accepts at most 8
    # KeyUpdates per second and then fails the session with
    # GNUTLS_E_TOO_MANY_HANDSHAKE_PACKETS: a fatal TLS error, so end error,
    # reason tls, quickly (verified with GnuTLS 3.7.9).
    ("KeyUpdate flood", srv.url("/keyupdate-flood"), "error", "tls", 20,
     "body", True),
    # A 50-certificate chain: the handshake completes and the facts are
    # those of the leaf (subject CN=localhost, issued by intermediate 48),
    # not of a CA further up; the response is a normal success.
    ("50-certificate chain", chain50.url("/"), "close_notify", None, 20,
     None, True),
    # A leaf with a 60 kB extension: accepted, facts of that leaf.
    ("huge certificate", huge.url("/"), "close_notify", None, 20, None,
     True),
    # Never reads the request: our request line is small enough to sit in
    # the socket buffer, so the wait is for the header: end timeout
    # (no response ended, but the deadline passed), reason timeout.
    ("never reads the request", never_read.url("/"), "timeout", "timeout",
     None, "header", False),
    # TCP accept then FIN before any TLS: the handshake fails with
    # "non-properly terminated", reason tls at stage tls; no TLS, no end.
    ("accept and close", accept_close.url("/"), None, "tls", None, "tls",
     True),
    # Accepts and never sends a byte: the handshake waits until the
    # deadline: reason timeout at stage tls.
    ("accept and never speak", never_speak.url("/"), None, "timeout", None,
     "tls", False),
]


def check_probe(name, url, end, reason, status, stage, fast):
    code, r, elapsed = probe_json(url, "-t", "%g" % DEADLINE)
    is_(r["end"], end, "%s: end" % name)
    if reason is None:
        ok(r["success"] is True and r["error"] is None, "%s: success" % name,
           r["error"])
        is_(code, 0, "%s: exit status 0" % name)
    else:
        is_(r["success"], False, "%s: success false" % name)
        is_((r["error"] or {}).get("reason"), reason,
            "%s: error.reason %s" % (name, reason))
        is_((r["error"] or {}).get("stage"), stage, "%s: error.stage" % name)
        is_(code, 1, "%s: exit status 1" % name)
    is_(r["status"], status, "%s: status" % name)
    # A fast case must end before its deadline could have fired (its end
    # and reason, asserted above, say why); the others within it plus a
    # margin for starting the process on a busy machine.
    limit = DEADLINE if fast and not WRAPPER else DEADLINE + MARGIN
    ok(elapsed < limit, "%s: ended within %.1fs (took %.2fs)"
       % (name, limit, elapsed))
    return r


results = {}
for c in CASES:
    results[c[0]] = check_probe(*c)

r = results["endless-header"]
ok("1024" in r["error"]["message"], "endless header: the message names "
   "the 1024-byte limit", r["error"]["message"])
r = results["1 GiB body"]
ok(4 * 1024 * 1024 < r["body_bytes"] < 5 * 1024 * 1024,
   "1 GiB body: stopped just past max-body", r["body_bytes"])
r = results["trickle 500 ms"]
ok(1 <= r["body_bytes"] <= DEADLINE * 2 + 1,
   "trickle: the bytes that came are counted", r["body_bytes"])
r = results["garbage after close_notify"]
is_(r["body_bytes"], 56, "garbage after close_notify: only the body counted")
r = results["fatal alert mid-body"]
is_(r["body_bytes"], 45, "alert: the body before the alert is counted")
ok("alert" in r["error"]["message"].lower(),
   "alert: the message says alert", r["error"]["message"])
r = results["KeyUpdate flood"]
ok("Too many handshake packets" in r["error"]["message"],
   "KeyUpdate flood: GnuTLS's limit ends it", r["error"]["message"])
for name in ("50-certificate chain", "huge certificate"):
    r = results[name]
    is_(r["cert"]["subject"], LEAF, "%s: the leaf's subject" % name)
    is_(r["tls"]["version"], "TLS1.3", "%s: TLS 1.3" % name)
is_(results["50-certificate chain"]["cert"]["issuer"],
    "O=gemwatch test,CN=gemserver test intermediate 48",
    "50-certificate chain: the leaf's issuer")
is_(results["50-certificate chain"]["cert"]["self_signed"], False,
    "50-certificate chain: leaf not self-signed")
is_(results["huge certificate"]["cert"]["self_signed"], True,
    "huge certificate: self-signed leaf")
is_(results["accept and close"]["tls"], None, "accept and close: tls null")
is_(results["never reads the request"]["tls"]["version"], "TLS1.3",
    "never reads: the handshake completed")

# ---- the daemon with all of them as capsules -------------------------------
# The configuration refuses a timeout beyond the interval, so the daemon
# probes every second with a 1-second deadline (scaled under valgrind).
T = max(1, int(SLOW))
# A short history fills up during the warm-up, so that RSS growth after
# it would be a leak rather than the rings filling.
conf = ["interval %ds" % T, "timeout %ds" % T, "concurrency 16", "history 3"]
names = {}
for i, c in enumerate(CASES):
    cname = "h%d" % i
    names[cname] = c
    conf.append('capsule "%s" name=%s' % (c[1], cname))
d = Daemon("\n".join(conf) + "\n")

lat = []
lat_lock = threading.Lock()
stop = threading.Event()


def healthz_loop():
    while not stop.is_set():
        t0 = time.monotonic()
        try:
            status, _, body = d.get("/healthz", timeout=1.0)
        except OSError as e:
            status, body = repr(e), b""
        with lat_lock:
            lat.append((time.monotonic() - t0, status))
        stop.wait(0.5)


th = threading.Thread(target=healthz_loop, daemon=True)
th.start()


def fds_rss(n=10):
    """Median process_open_fds and the RSS over n scrapes 0.1 s apart (the
    fd count includes the probes in flight at that instant)."""
    fds, rss = [], []
    for _ in range(n):
        m = d.metrics()
        fds.append(metric(m, "process_open_fds"))
        rss.append(metric(m, "process_resident_memory_bytes"))
        time.sleep(0.1)
    fds.sort()
    return fds[len(fds) // 2], max(rss), fds


# RSS levels off within about 10 s (thread arenas, TLS caches): the
# warm-up is 8 s, then 14 s more with every probe repeated about 14 times.
time.sleep(8 * SLOW)
fd0, rss0, fds0 = fds_rss()
time.sleep(14 * SLOW)
fd1, rss1, fds1 = fds_rss()
stop.set()
th.join(timeout=5 * SLOW)

ok(d.alive(), "the daemon is still running")
worst = max(x[0] for x in lat) if lat else None
bad = [x for x in lat if x[1] != 200]
ok(len(lat) >= 30, "/healthz sampled throughout (%d samples)" % len(lat))
is_(bad, [], "/healthz answered 200 every time")
ok(worst is not None and worst < 1.0 * SLOW,
   "/healthz worst latency %.3fs < %gs" % (worst or -1, 1.0 * SLOW))
diag("healthz: %d samples, worst %.3f s" % (len(lat), worst or -1))

m = d.metrics()
api = d.json("/api/v1/capsules")
last = {c["name"]: c["last"] for c in api["capsules"]}
for cname, (name, url, end, reason, status, stage, fast) in names.items():
    probes = metric(m, "gemini_probes_total", capsule=cname, check="page")
    ok(probes is not None and probes >= 3,
       "daemon, %s: probed repeatedly (%s)" % (name, probes))
    fails = {x[0]["reason"]: x[1] for x in
             find(m, "gemini_probe_failures_total", capsule=cname)
             if x[1] > 0}
    succ = metric(m, "gemini_probe_success", capsule=cname, check="page")
    lr = last.get(cname) or {}
    if reason is None:
        is_(succ, 1.0, "daemon, %s: gemini_probe_success 1" % name)
        is_(fails, {}, "daemon, %s: no failures" % name)
        is_(metric(m, "gemini_close_notify", capsule=cname, check="page"),
            1.0, "daemon, %s: gemini_close_notify 1" % name)
    else:
        is_(succ, 0.0, "daemon, %s: gemini_probe_success 0" % name)
        is_(sorted(fails), [reason],
            "daemon, %s: every failure has reason %s" % (name, reason))
        is_((lr.get("error") or {}).get("reason"), reason,
            "daemon, %s: the last result's reason" % name)
    is_(lr.get("end"), end, "daemon, %s: the last result's end" % name)
    if name in ("50-certificate chain", "huge certificate"):
        ok(find(m, "gemini_cert_info", capsule=cname, subject=LEAF),
           "daemon, %s: gemini_cert_info of the leaf" % name)

diag("process_open_fds after warm-up %s, at the end %s" % (fds0, fds1))
ok(abs(fd1 - fd0) <= 2, "fds back to %d (+-2): %d" % (fd0, fd1))
diag("RSS after warm-up %d, at the end %d" % (rss0, rss1))
if WRAPPER:
    diag("RSS not compared under valgrind")
elif SANITIZED:
    diag("RSS not compared under AddressSanitizer (its quarantine holds "
         "freed memory)")
else:
    ok(rss1 - rss0 < 2 * 1024 * 1024,
       "RSS grew by %d bytes (< 2 MB)" % (rss1 - rss0))

rc, took = d.stop()
is_(rc, 0, "the daemon exits 0 on SIGTERM")

# ---- host-name lookups that end just as their deadline passes -------------
# 1000 capsules on "localhost" with a 100 ms deadline keep glibc's lookup
# threads busy, so many lookups finish right at the deadline. With
# gai_suspend this corrupted the heap and crashed the daemon within
# seconds (a stale on-stack wait entry written by __gai_notify).
conf = ["interval 1s", "timeout 100ms", "concurrency 64", "history 2"]
conf += ['capsule "%s" name=l%d' % (srv.url("/ok?i=%d" % i, host="localhost"),
                                    i) for i in range(1000)]
d = Daemon("\n".join(conf) + "\n", check_start=False)
time.sleep(8 * SLOW)
ok(d.alive(), "1000 host-name capsules with 100 ms deadlines: still running",
   d.logtext()[-2000:])
try:
    status, _, _ = d.get("/healthz")
    m = d.metrics()
except OSError as e:
    status, m = repr(e), {}
is_(status, 200, "1000 host-name capsules: /healthz 200")
total = sum(v for _, v in find(m, "gemini_probes_total"))
ok(total >= 1000, "1000 host-name capsules: %d probes finished" % total)
rc, took = d.stop()
is_(rc, 0, "1000 host-name capsules: the daemon exits 0")
done()
