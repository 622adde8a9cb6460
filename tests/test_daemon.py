"""The daemon against the test Gemini server (SPEC.md §2, §3, §5, §6).

Several daemons run side by side so that the whole script stays short:
the main one watches a capsule for each behaviour of the server and is
checked through /metrics (values, absences, counters, promtool), the JSON
API, the other HTTP routes and its log at the default level; others check
reloads (SIGHUP with a bad file, then a good one), the spreading of first
probes, that a hung probe does not hold up the others, and that SIGTERM
stops the daemon promptly while a probe is stalled. The configuration
check (-n) and a start with a bad file run gemwatch directly.
"""
import http.client
import json
import os
import shutil
import signal
import subprocess
import time

from gemtest import (GEMWATCH, SLOW, WRAPPER, Daemon, GemServer, diag, done,
                     find, free_port, is_, metric, ok, parse_metrics, tmpdir)

FIELDS = {"capsule", "check", "url", "time", "success", "error", "address",
          "port", "ip_protocol", "durations", "tls", "cert", "status", "meta",
          "body_bytes", "end"}
CT_METRICS = "text/plain; version=0.0.4; charset=utf-8"

# Under valgrind a TLS handshake can take most of a second: longer rounds.
ROUND = 1 if not WRAPPER else 3
T0 = time.monotonic()


def section(title):
    diag("%.1f s: %s" % (time.monotonic() - T0, title))


srv = GemServer()
refused = "gemini://127.0.0.1:%d/" % free_port()


def conf_line(path, name, *opts):
    """A capsule line; name is quoted, opts are written as given."""
    q = name.replace("\\", "\\\\").replace('"', '\\"')
    return " ".join(["capsule", srv.url(path), 'name="%s"' % q, *opts])


# ---- the daemons, started together ------------------------------------
section("the daemons, started together")
WEIRD = 'we"ird\\name'
CAPSULES = [
    ("ok", "/ok", ()),
    ("premature", "/premature", ()),
    ("reset", "/reset", ()),
    ("stall", "/stall-body", ("timeout=500ms",)),
    ("malformed", "/malformed", ()),
    ("status51", "/status/51", ()),
    ("status5x", "/status/51", ("expect-status=5x",)),
    ("big", "/big?bytes=1000000", ()),
    ("errpage", "/ok", ("error-path=/nope",)),
    ("errprem", "/ok", ("error-path=/error-premature/51",)),
    ("bodymatch", "/body?text=hello", ('expect-body="^hel+o"',)),
    ("bodymismatch", "/body?text=hello", ('expect-body="^bye"',)),
    ("nocn", "/premature", ("require-close-notify=no",)),
    ("a b/c", "/ok", ()),
    (WEIRD, "/ok", ()),
]
NAMES = [c[0] for c in CAPSULES] + ["refused"]
main_conf = "interval %ds\ntimeout %ds\nmax-body 64k\nhistory 5\n" % (
    ROUND, ROUND) + \
    "".join(conf_line(p, n, *o) + "\n" for n, p, o in CAPSULES) + \
    "capsule %s name=refused\n" % refused
# The default log level: state changes only.
main = Daemon(main_conf, args=())

# Scheduling: four capsules at 2s, first probes spread over the interval
# (when each started: when it finished less how long it took). Under
# valgrind, a longer interval lets the slower polling see every first one.
SPREAD = 2 if not WRAPPER else 8
spread = Daemon("interval %ds\ntimeout 1s\n" % SPREAD + "".join(
    conf_line("/ok?n=%d" % i, "s%d" % i) + "\n" for i in range(4)))

# Three probes hung until their timeout and one capsule at 1s.
hung = Daemon("concurrency 4\ninterval 3s\ntimeout 3s\n" + "".join(
    conf_line("/stall-body?n=%d" % i, "hung%d" % i) + "\n"
    for i in range(3)) + conf_line("/ok", "quick", "interval=1s",
                                           "timeout=1s") + "\n")

# Reloads: "kept" stays, "gone" is removed, "added" appears; "slow" is
# kept while its probe is in flight across both reloads.
reload_a = "interval 1s\ntimeout 1s\n" + "\n".join([
    conf_line("/ok?r=kept", "kept"),
    conf_line("/ok?r=gone", "gone"),
    conf_line("/stall-body?r=slow", "slow", "interval=2s", "timeout=2s"),
]) + "\n"
reload_b = "interval 1s\ntimeout 1s\n" + "\n".join([
    conf_line("/ok?r=kept", "kept"),
    conf_line("/ok?r=added", "added"),
    conf_line("/stall-body?r=slow", "slow", "interval=2s", "timeout=2s"),
]) + "\n"
reloader = Daemon(reload_a)

def checks(m, name):
    """{check: probes_total} of a capsule."""
    return {d["check"]: v for d, v in find(m, "gemini_probes_total",
                                          capsule=name)}


def val(m, name, capsule, check="page", **labels):
    return metric(m, name, capsule=capsule, check=check, **labels)


def failures(m, capsule, check="page"):
    return {d["reason"]: v for d, v in
            find(m, "gemini_probe_failures_total", capsule=capsule,
                 check=check)}


# ---- scheduling: first probes are spread ------------------------------
section("scheduling: first probes are spread")
ended, started = {}, {}
end = time.monotonic() + 10 * SLOW
while len(ended) < 4 and time.monotonic() < end:
    m = spread.metrics()
    for i in range(4):
        n = "s%d" % i
        if n not in ended and val(m, "gemini_probes_total", n) == 1:
            ended[n] = val(m, "gemini_probe_timestamp_seconds", n)
            started[n] = ended[n] - val(m, "gemini_probe_duration_seconds",
                                        n)
    time.sleep(0.05)
is_(len(ended), 4, "spread: the first probe of each of 4 capsules seen")
if ended:
    te, ts = sorted(ended.values()), sorted(started.values())
    diag("first probes started at +%s s" % ", +".join(
        "%.3f" % (t - ts[0]) for t in ts))
    # Under valgrind the first, slow handshakes may all end together.
    if not WRAPPER:
        ok(te[-1] - te[0] > 0.05, "spread: the first results' "
           "gemini_probe_timestamp_seconds are not all within 50 ms")
    ok(ts[-1] - ts[0] > 0.375 * SPREAD, "spread: the first probes started "
       "over most of the %d s interval (%.2f s)" % (SPREAD, ts[-1] - ts[0]))

# ---- a hung probe does not hold up the others -------------------------
section("a hung probe does not hold up the others")
window = 4.0 if not WRAPPER else 8.0
m0 = hung.wait_for(lambda m: val(m, "gemini_probes_total", "quick"),
                   what="the first probe of quick")
n0 = val(m0, "gemini_probes_total", "quick") or 0
time.sleep(window)
m1 = hung.metrics()
n1 = val(m1, "gemini_probes_total", "quick") or 0
ok(n1 - n0 >= window - 1, "a capsule at 1s keeps its rhythm while three "
   "others hang (%d probes in %g s)" % (n1 - n0, window))
is_(val(m1, "gemini_response_ends_total", "hung0", end="timeout"),
    val(m1, "gemini_probes_total", "hung0"),
    "the hung capsules end by timeout")
ok(hung.alive(), "hung: daemon alive")
is_(hung.stop()[0], 0, "hung: exit 0 on SIGTERM")


# ---- the main daemon: /metrics ----------------------------------------
section("the main daemon: /metrics")
def all_probed(m, k):
    for n in NAMES:
        c = checks(m, n)
        if not c or min(c.values()) < k:
            return False
    return len(checks(m, "errpage")) == 2 and len(checks(m, "errprem")) == 2


m1 = main.wait_for(lambda m: all_probed(m, 2), what="two rounds")
ok(all_probed(m1, 2), "every capsule probed twice")

status, headers, body = main.get("/metrics")
is_(status, 200, "/metrics: 200")
is_(headers.get("Content-Type"), CT_METRICS, "/metrics: Content-Type")
text = body.decode()
if shutil.which("promtool"):
    p = subprocess.run(["promtool", "check", "metrics"], input=text,
                       capture_output=True, text=True)
    ok(p.returncode == 0, "promtool check metrics passes on the live output",
       p.stdout + p.stderr)
else:
    diag("promtool not installed (Debian package prometheus); not run")
m = parse_metrics(text)


def expect(capsule, success, close_notify, status, end, reason=None,
           check="page"):
    what = capsule if check == "page" else capsule + " (error_page)"
    is_(val(m, "gemini_probe_success", capsule, check), success,
        "%s: gemini_probe_success" % what)
    is_(val(m, "gemini_close_notify", capsule, check), close_notify,
        "%s: gemini_close_notify %s" % (what, "absent" if close_notify is None
                                       else int(close_notify)))
    is_(val(m, "gemini_response_status_code", capsule, check), status,
        "%s: gemini_response_status_code" % what)
    probes = val(m, "gemini_probes_total", capsule, check)
    if end is not None:
        is_(val(m, "gemini_response_ends_total", capsule, check, end=end),
            probes, "%s: every response ended %s" % (what, end))
    f = failures(m, capsule, check)
    if reason is None:
        is_(sum(f.values()), 0, "%s: no failures" % what)
    else:
        is_(f.get(reason), probes, "%s: every probe failed for %s"
            % (what, reason))
        is_(sum(f.values()), probes, "%s: and for no other reason" % what)


expect("ok", 1, 1, 20, "close_notify")
expect("premature", 0, 0, 20, "premature", "close_notify")
expect("reset", 0, 0, 20, "reset", "close_notify")
expect("stall", 0, None, 20, "timeout", "timeout")
# The probe stops at a malformed header: how the connection would have
# ended is not known, so gemini_close_notify is absent.
expect("malformed", 0, None, None, None, "header")
expect("status51", 0, 1, 51, "close_notify", "status")
expect("status5x", 1, 1, 51, "close_notify")
expect("big", 0, None, 20, "limit", "body")
expect("errpage", 1, 1, 20, "close_notify")
expect("errpage", 1, 1, 51, "close_notify", check="error_page")
expect("errprem", 1, 1, 20, "close_notify")
expect("errprem", 0, 0, 51, "premature", "close_notify", check="error_page")
expect("bodymatch", 1, 1, 20, "close_notify")
expect("bodymismatch", 0, 1, 20, "close_notify", "body")
expect("nocn", 1, 0, 20, "premature")
expect("refused", 0, None, None, None, "connect")
expect("a b/c", 1, 1, 20, "close_notify")
expect(WEIRD, 1, 1, 20, "close_notify")

is_(find(m, "gemini_response_ends_total", capsule="refused",
         end="close_notify")[0][1], 0,
    "refused: no response ended (counters present, 0)")
big = val(m, "gemini_response_body_bytes", "big")
ok(big is not None and 65536 < big < 1000000,
   "big: body read just past max-body 64k", big)
is_(val(m, "gemini_response_body_bytes", "refused"), None,
    "refused: no body size")
is_(val(m, "gemini_cert_not_after_timestamp_seconds", "refused"), None,
    "refused: no certificate expiry")
is_(len(find(m, "gemini_tls_info", capsule="refused")), 0,
    "refused: no TLS info")
is_(len(find(m, "gemini_tls_info", capsule="ok", version="TLS1.3")), 1,
    "ok: gemini_tls_info version TLS1.3")
is_(val(m, "gemini_probe_success", "ok", "error_page"), None,
    "no error_page series without error-path")
is_(val(m, "gemini_response_body_bytes", "errpage", "error_page"), 0,
    "error page: no body")
is_(sorted(d["phase"] for d, _ in
           find(m, "gemini_probe_phase_duration_seconds", capsule="ok")),
    ["body", "connect", "header", "resolve", "tls"], "ok: every phase timed")
is_(sorted(d["phase"] for d, _ in
           find(m, "gemini_probe_phase_duration_seconds",
                capsule="refused")),
    ["connect", "resolve"], "refused: only the phases reached")
is_(metric(m, "gemwatch_capsules"), float(len(NAMES)), "gemwatch_capsules")
is_(len(find(m, "gemwatch_build_info")), 1, "gemwatch_build_info")
bi = find(m, "gemwatch_build_info")
ok(bi and bi[0][0].get("version") and bi[0][0].get("gnutls_version"),
   "gemwatch_build_info has version and gnutls_version", bi)
is_(metric(m, "gemwatch_config_last_reload_successful"), 1.0,
    "gemwatch_config_last_reload_successful 1 at start")
for name in ("process_start_time_seconds", "process_cpu_seconds_total",
             "process_resident_memory_bytes", "process_open_fds"):
    ok((metric(m, name) or 0) > 0, "%s present and positive" % name)
ok(abs(metric(m, "process_start_time_seconds") - time.time()) < 120,
   "process_start_time_seconds is a Unix time of now")

# Counters grow for the right reason, one round later.
m2 = main.wait_for(
    lambda x: all(val(x, "gemini_probes_total", n) >
                  val(m, "gemini_probes_total", n) for n in NAMES),
    what="another round")
for capsule, reason in (("premature", "close_notify"), ("stall", "timeout"),
                        ("malformed", "header"), ("status51", "status"),
                        ("big", "body"), ("bodymismatch", "body"),
                        ("refused", "connect"), ("reset", "close_notify")):
    before, after = failures(m, capsule), failures(m2, capsule)
    ok(after[reason] > before[reason] and
       all(after[r] == before[r] for r in after if r != reason),
       "%s: gemini_probe_failures_total{reason=\"%s\"} grows, and only it"
       % (capsule, reason), "%r -> %r" % (before, after))
for capsule, endname in (("ok", "close_notify"), ("nocn", "premature"),
                         ("reset", "reset"), ("big", "limit")):
    ok(val(m2, "gemini_response_ends_total", capsule, end=endname) >
       val(m, "gemini_response_ends_total", capsule, end=endname),
       "%s: gemini_response_ends_total{end=\"%s\"} grows" % (capsule, endname))
ok(val(m2, "gemini_probe_timestamp_seconds", "ok") >
   val(m, "gemini_probe_timestamp_seconds", "ok"),
   "gemini_probe_timestamp_seconds moves on")

# ---- the main daemon: JSON API ----------------------------------------
section("the main daemon: JSON API")
status, headers, body = main.get("/api/v1/capsules")
is_(status, 200, "/api/v1/capsules: 200")
is_(headers.get_content_type(), "application/json",
    "/api/v1/capsules: application/json")
doc = json.loads(body)
caps = {c["name"]: c for c in doc["capsules"]}
is_(sorted(caps), sorted(NAMES), "/api/v1/capsules lists every capsule")
for n, c in sorted(caps.items()):
    if not ok({"name", "url", "last", "counters", "error_page"} <= set(c),
              "capsule %s: name, url, last, counters, error_page" % n, c):
        continue
    last = c["last"]
    ok(last is not None and FIELDS <= set(last),
       "capsule %s: last has every field of SPEC §5" % n,
       last and FIELDS - set(last))
    ok("history" not in c, "capsule %s: no history in the list" % n)
r = caps["refused"]["last"]
is_([r[k] for k in ("status", "meta", "tls", "cert", "body_bytes", "end")],
    [None] * 6, "refused: status, meta, tls, cert, body_bytes, end are null")
is_(r["error"]["reason"], "connect", "refused: error.reason connect")
is_(r["success"], False, "refused: success false")
is_(caps["ok"]["error_page"], None, "ok: error_page null")
ep = caps["errprem"]["error_page"]
ok(ep is not None and ep["last"]["check"] == "error_page" and
   ep["last"]["end"] == "premature" and ep["last"]["status"] == 51,
   "errprem: error_page.last is the premature 51", ep)
ok(ep is not None and ep["counters"]["ends"]["premature"] >= 2,
   "errprem: error_page.counters count premature ends", ep and ep["counters"])
ok(caps["premature"]["counters"]["failures"]["close_notify"] >= 2,
   "premature: counters.failures.close_notify",
   caps["premature"]["counters"])
is_(caps["premature"]["url"], srv.url("/premature"), "premature: url")

one = main.json("/api/v1/capsules/ok")
is_(one["name"], "ok", "/api/v1/capsules/ok: name")
hist = one.get("history") or []
ok(len(hist) >= 3, "history holds several results", len(hist))
ok(len(hist) <= 5, "history is bounded by `history 5`", len(hist))
times = [h["time"] for h in hist]
is_(times, sorted(times, reverse=True), "history is newest first")


def durations_apart(h, last):
    """h (a history entry) and last alike but for durations, which the
    history keeps within 1/4096 (a 16-bit float), max_gap not at all
    (null): (h, last) without them, and the durations that are further
    apart or missing."""
    a, b = dict(h or {}), dict(last or {})
    da, db = a.pop("durations", {}) or {}, b.pop("durations", {}) or {}
    if da.get("max_gap", 0) is None:
        db = dict(db, max_gap=None)
    far = [k for k in set(da) | set(db)
           if (da.get(k) is None) != (db.get(k) is None) or
           (da.get(k) is not None and
            abs(da[k] - db[k]) > db[k] / 4096 + 1e-6)]
    return a, b, far


h0, l0, far = durations_apart(hist[0] if hist else None, one["last"])
is_(h0, l0, "history[0] is last")
is_(far, [], "history[0]'s durations are last's, within 1/4096")
ok(all(FIELDS <= set(h) for h in hist), "every history entry is a RESULT")
two = main.json("/api/v1/capsules/errpage")
ok(two["error_page"] and two["error_page"]["history"] and
   all(h["check"] == "error_page" for h in two["error_page"]["history"]),
   "error_page has its own history")
ok(all(h["check"] == "page" for h in two["history"]),
   "the page history holds page results only")

# libmicrohttpd decodes %2F before routing: the name may hold a slash.
status, _, body = main.get("/api/v1/capsules/a%20b%2Fc")
is_(status, 200, "/api/v1/capsules/a%20b%2Fc: 200")
is_(status == 200 and json.loads(body)["name"], "a b/c",
    "a percent-encoded name reaches its capsule")
status, _, body = main.get("/api/v1/capsules/we%22ird%5Cname")
is_(status == 200 and json.loads(body)["name"], WEIRD,
    "a name with a quote and a backslash")
for path in ("/api/v1/capsules/nosuch", "/api/v1/capsules/ok%00x",
             "/api/v1/capsules/%2e%2e"):
    status, headers, body = main.get(path)
    is_(status, 404, "%s: 404" % path)
ok(b"nosuch" not in main.get("/api/v1/capsules/nosuch")[2],
   "404 does not echo the name")

# ---- the main daemon: other routes ------------------------------------
section("the main daemon: other routes")
for path in ("/nope", "/metrics/", "/api/v1", "/api/v2/capsules",
             "/healthz/x", "/%2e%2e/metrics"):
    status, headers, body = main.get(path)
    is_(status, 404, "%s: 404" % path)
    ok(headers.get("Content-Type"), "%s: has a Content-Type" % path)
status, headers, body = main.get("/healthz")
is_((status, body.strip()), (200, b"ok"), "/healthz: 200 ok")
status, headers, body = main.get("/metrics", method="HEAD")
is_(status, 200, "HEAD /metrics: 200")
is_(body, b"", "HEAD /metrics: no body")
is_(headers.get("Content-Type"), CT_METRICS, "HEAD /metrics: Content-Type")
status, headers, body = main.get("/")
is_(status, 200, "/: 200")
ok(headers.get_content_type() == "text/html" and b"premature" in body,
   "/: the HTML page names the capsules")
for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
    c = http.client.HTTPConnection("127.0.0.1", main.port,
                                   timeout=10 * SLOW)
    c.request(method, "/metrics", body=b"x=1" if method != "DELETE" else None)
    r = c.getresponse()
    r.read()
    is_(r.status, 405, "%s /metrics: 405" % method)
    allow = (r.getheader("Allow") or "").replace(" ", "").split(",")
    is_(sorted(allow), ["GET", "HEAD"], "%s: Allow: GET, HEAD" % method)
    c.close()
c = http.client.HTTPConnection("127.0.0.1", main.port, timeout=10 * SLOW)
c.request("POST", "/nope", body=b"x")
r = c.getresponse()
r.read()
is_(r.status, 405, "POST to an unknown path: 405 too")
c.close()

# ---- the main daemon: the log at the default level --------------------
section("the main daemon: the log at the default level")
main.wait_for(lambda x: val(x, "gemini_probes_total", "premature") >= 4,
              what="four rounds")
log = main.logtext()
is_(log.count("capsule premature: down"), 1,
    "one 'capsule premature: down' line after four failing rounds")
is_(log.count("capsule ok: up"), 1, "one 'capsule ok: up' line")
is_(log.count("capsule refused: down (connect"), 1,
    "one 'capsule refused: down (connect...' line")
is_(log.count("capsule errprem (error_page): down"), 1,
    "the error page's state change is logged once, named")
is_(log.count("capsule stall: down (timeout"), 1, "stall: down once")
lines = [ln for ln in log.splitlines() if " capsule " in ln]
ok(len(lines) <= 2 * len(NAMES) + 2,
   "no capsule line per probe (%d capsule lines)" % len(lines), log)
ok(" probe " not in log, "no per-probe debug lines without -d")
ok(main.alive(), "main: daemon alive at the end")
rc = main.stop()[0]
is_(rc, 0, "main: exit 0 on SIGTERM")

# ---- reload -----------------------------------------------------------
section("reload")
m = reloader.wait_for(lambda x: (val(x, "gemini_probes_total", "kept") or 0)
                      >= 2, what="kept probed twice")
with open(reloader.conf, "w") as f:
    f.write("listen 127.0.0.1:%d\nstate-dir %s/state\n"
            % (reloader.port, reloader.dir))
    f.write(conf_line("/ok?r=kept", "kept") + "\n")
    f.write("intervall 2s\n")               # line 4
    f.write(conf_line("/ok", "kept") + "\n")   # line 5: duplicate name
reloader.signal(signal.SIGHUP)
m = reloader.wait_for(
    lambda x: metric(x, "gemwatch_config_last_reload_successful") == 0,
    what="the failed reload")
is_(metric(m, "gemwatch_config_last_reload_successful"), 0.0,
    "bad file: gemwatch_config_last_reload_successful 0")
ok(reloader.alive(), "bad file: the daemon keeps running")
log = reloader.logtext()
ok("gemwatch.conf:4: " in log and "intervall" in log,
   "bad file: the log names file:line of the first error", log)
ok("gemwatch.conf:5: " in log, "bad file: and of the second", log)
before = {n: val(m, "gemini_probes_total", n) for n in ("kept", "gone")}
m = reloader.wait_for(lambda x: all(val(x, "gemini_probes_total", n) >
                                    before[n] for n in before),
                      what="the old capsules probed again")
ok(all(val(m, "gemini_probes_total", n) > before[n] for n in before),
   "bad file: the old capsules are still probed")
is_(val(m, "gemini_probes_total", "added"), None,
    "bad file: nothing of it applied")
ts_ok = metric(m, "gemwatch_config_last_reload_success_timestamp_seconds")

reloader.write_conf(reload_b)
kept_before = val(m, "gemini_probes_total", "kept")
reloader.signal(signal.SIGHUP)
m = reloader.wait_for(
    lambda x: metric(x, "gemwatch_config_last_reload_successful") == 1 and
    val(x, "gemini_probes_total", "added"), what="the good reload")
is_(metric(m, "gemwatch_config_last_reload_successful"), 1.0,
    "good file: gemwatch_config_last_reload_successful back to 1")
ok(metric(m, "gemwatch_config_last_reload_success_timestamp_seconds") >
   ts_ok, "good file: the success timestamp moves on")
ok(val(m, "gemini_probes_total", "added") >= 1, "good file: added appears")
is_(len([k for k in m if ("capsule", "gone") in k[1]]), 0,
    "good file: gone disappears from /metrics")
ok(val(m, "gemini_probes_total", "kept") >= kept_before,
   "good file: kept's gemini_probes_total is not reset (%s -> %s)"
   % (kept_before, val(m, "gemini_probes_total", "kept")))
is_(metric(m, "gemwatch_capsules"), 3.0, "good file: gemwatch_capsules 3")
k1 = val(m, "gemini_probes_total", "kept")
m = reloader.wait_for(lambda x: val(x, "gemini_probes_total", "kept") > k1,
                      what="kept probed after the reload")
ok(val(m, "gemini_probes_total", "kept") > k1,
   "good file: kept is still probed, its counter growing")
is_(reloader.get("/api/v1/capsules/gone")[0], 404,
    "good file: /api/v1/capsules/gone is 404")
is_(reloader.get("/api/v1/capsules/added")[0], 200,
    "good file: /api/v1/capsules/added is 200")
# Reload again while slow's probe is (most likely) in flight.
reloader.signal(signal.SIGHUP)
time.sleep(0.5)
m = reloader.wait_for(lambda x: (val(x, "gemini_probes_total", "slow") or 0)
                      >= 2, what="slow probed twice")
ok((val(m, "gemini_probes_total", "slow") or 0) >= 2,
   "a capsule kept across reloads with its probe in flight goes on")
# A new state-dir takes a restart: the reload says so, and keeps the old.
reloader.write_conf("state-dir %s/elsewhere\n" % reloader.dir + reload_b)
reloader.signal(signal.SIGHUP)
want = ("reload: state-dir changes only on restart; the state is still "
        "kept in %s/state" % reloader.dir)
end = time.monotonic() + 10 * SLOW
while want not in reloader.logtext() and time.monotonic() < end:
    time.sleep(0.1)
ok(want in reloader.logtext(), "a changed state-dir: the reload says it "
   "takes a restart", reloader.logtext()[-2000:])
ok(reloader.alive(), "reload: daemon alive at the end")
is_(reloader.stop()[0], 0, "reload: exit 0 on SIGTERM")

# ---- the configuration check and a bad start --------------------------
section("the configuration check and a bad start")
d = tmpdir()
good = os.path.join(d, "good.conf")
bad = os.path.join(d, "bad.conf")
with open(good, "w") as f:
    f.write("listen 127.0.0.1:%d\n%s\n" % (free_port(),
                                          conf_line("/ok", "x")))
with open(bad, "w") as f:
    f.write("# two errors\ninterval 5s\ntimeout fast\n%s\nbogus 1\n"
            % conf_line("/ok", "x"))
p = subprocess.run([*WRAPPER, GEMWATCH, "-n", "-f", good],
                   capture_output=True, text=True, timeout=60 * SLOW)
is_((p.returncode, p.stdout), (0, "configuration OK\n"),
    "-n on a good file: configuration OK, exit 0")
p = subprocess.run([*WRAPPER, GEMWATCH, "-n", "-f", bad],
                   capture_output=True, text=True, timeout=60 * SLOW)
is_(p.returncode, 1, "-n on a bad file: exit 1")
out = p.stdout + p.stderr
ok("configuration OK" not in out, "-n on a bad file: not OK", out)
ok(any(ln.startswith(bad + ":3: ") and "fast" in ln
       for ln in out.splitlines()), "-n: the first error as file:line", out)
ok(any(ln.startswith(bad + ":5: ") and "bogus" in ln
       for ln in out.splitlines()), "-n: the second error too", out)
p = subprocess.run([*WRAPPER, GEMWATCH, "-f", bad], capture_output=True,
                   text=True, timeout=60 * SLOW)
is_(p.returncode, 1, "starting on a bad file: exit 1")
ok(bad + ":3: " in p.stderr, "starting on a bad file: the errors logged",
   p.stderr)
p = subprocess.run([*WRAPPER, GEMWATCH, "-f", os.path.join(d, "absent")],
                   capture_output=True, text=True, timeout=60 * SLOW)
is_(p.returncode, 1, "starting on a missing file: exit 1")
# 200,000 bad lines: the first 200 errors and a count, not 200,000 lines.
many = os.path.join(d, "many.conf")
with open(many, "w") as f:
    f.write("x\n" * 200000)
t0 = time.monotonic()
p = subprocess.run([*WRAPPER, GEMWATCH, "-n", "-f", many],
                   capture_output=True, text=True, timeout=120 * SLOW)
lines = p.stderr.splitlines()
is_((p.returncode, len(lines)), (1, 201),
    "-n on 200,000 bad lines: exit 1, 201 lines (%.2f s)" %
    (time.monotonic() - t0))
is_(lines[-1:], [many + ": 199800 more errors not shown"],
    "-n: the last line counts the errors not shown")

# ---- SIGTERM while a probe is stalled ---------------------------------
section("SIGTERM while a probe is stalled")
stalled = Daemon("interval 10s\ntimeout 10s\n" +
                 conf_line("/stall-body", "stalled") + "\n")
time.sleep(1.5 * SLOW)
m = stalled.metrics()
is_(val(m, "gemini_probes_total", "stalled"), None,
    "the stalled probe is still in flight")
ok(stalled.alive(), "stalled: daemon alive before SIGTERM")
rc, took = stalled.stop()
is_(rc, 0, "SIGTERM with a probe in flight: exit 0")
ok(took < 1.0 + 1.0 * SLOW, "SIGTERM: stopped in %.2f s" % took)
ok("stopped" in stalled.logtext(), "SIGTERM: the log says stopped")

section("done")
done()
