"""diagnose=D in the daemon: the checks run on the capsule's schedule (the
first run a second after start), their report is served at
/api/v1/capsules/NAME/diagnose, summed up on the status page with a link to
its page, exported as gemini_diagnose_* metrics, and kept across a
restart."""
import html

from gemtest import (Daemon, GemServer, done, find, is_, metric, ok,
                     tmpdir)

# A conforming server but for one MUST: it serves URLs with userinfo.
gs = GemServer("-m", "conform", "-n", "127.0.0.1", "-r", "userinfo")
state = tmpdir()
conf = ("state-dir %s\n" % state +
        "capsule gemini://127.0.0.1:%d/ name=cap timeout=3s diagnose=1h\n"
        "capsule gemini://127.0.0.1:%d/other name=plain\n"
        % (gs.port, gs.port))
d = Daemon(conf)


def has_report(m):
    return find(m, "gemini_diagnose_timestamp_seconds", capsule="cap")


m = d.wait_for(has_report, timeout=120, what="the diagnose run")
is_(metric(m, "gemini_diagnose_check_success", capsule="cap",
           check="URLUserinfo"), 0.0, "metrics: URLUserinfo failed")
is_(metric(m, "gemini_diagnose_check_success", capsule="cap",
           check="URLAboveMaxSize"), 1.0, "metrics: URLAboveMaxSize passed")
ok(not find(m, "gemini_diagnose_check_success", capsule="cap",
            check="IPv6Address"), "metrics: a skipped check is absent")
is_(metric(m, "gemini_diagnose_checks", capsule="cap", verdict="fail"), 1.0,
    "metrics: one check failed")
ok(not find(m, "gemini_diagnose_checks", capsule="plain"),
   "metrics: nothing for a capsule without diagnose=")
stamp = metric(m, "gemini_diagnose_timestamp_seconds", capsule="cap")

doc = d.json("/api/v1/capsules/cap/diagnose")
verdicts = {c["name"]: c["verdict"] for c in doc["checks"]}
is_(verdicts["URLUserinfo"], "fail", "API: URLUserinfo fails")
is_(verdicts["IPv6Address"], "skip", "API: IPv6Address skipped")
is_(doc["counts"]["fail"], 1, "API: one fail")
is_(doc["summary"], "%d pass, 1 fail, 1 skip: URLUserinfo"
    % doc["counts"]["pass"], "API: the summary line")
ok(doc["counts"]["pass"] >= 23, "API: the rest pass", doc["counts"])
is_(d.get("/api/v1/capsules/plain/diagnose")[0], 404,
    "API: 404 for a capsule without diagnose=")

status, _, body = d.get("/")
page = body.decode()
ok(html.escape(doc["summary"]) in page, "status page: the summary line")
ok("/diagnose?capsule=cap" in page, "status page: links to the detail")
status, _, body = d.get("/diagnose?capsule=cap")
detail = body.decode()
is_(status, 200, "detail page: 200")
ok("URLUserinfo" in detail and "gemini://gemwatch@127.0.0.1" in detail,
   "detail page: the checks and their requests")

# Kept across a restart: the same report, before any new run.
rc, _ = d.stop()
is_(rc, 0, "daemon stops cleanly")
d = Daemon(conf)
doc2 = d.json("/api/v1/capsules/cap/diagnose")
is_(doc2["summary"], doc["summary"], "restart: the report is kept")
m = d.metrics()
is_(metric(m, "gemini_diagnose_timestamp_seconds", capsule="cap"), stamp,
    "restart: the same timestamp (no new run before the interval)")
is_(metric(m, "gemini_diagnose_check_success", capsule="cap",
           check="URLUserinfo"), 0.0, "restart: the metrics are back")
ok(d.alive(), "daemon still running")
is_(d.stop()[0], 0, "daemon stops cleanly again")
gs.stop()
done()
