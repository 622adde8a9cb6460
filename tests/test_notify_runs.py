"""notify commands fed by the runs of requests: a capsule whose crawl
finds a broken link sends crawl_problems once, naming the page in its
JSON and environment; a page cut without close_notify added later sends
it again, that page first; a restart keeps what was sent; fixing the
capsule sends crawl_clean once. A capsule with notify=no is crawled and
never told about. A diagnose= run against a server that breaks one MUST
sends diagnose_failing naming the check, and the next run against a
conforming server on the same port sends diagnose_passing.

The crawled capsule is tests/crawlserver.py serving a directory the test
edits between runs; each crawl's end is read from /metrics
(gemini_crawl_timestamp_seconds), so "once" is checked over several
runs, not against a clock."""
import json
import os
import signal
import subprocess
import sys
import time

from gemtest import (SLOW, TOP_SRCDIR, Daemon, GemServer,
                     NotifyRecorder, diag, done, is_, make_cert, metric, ok,
                     tmpdir, _children)

d = tmpdir()
key, crt = make_cert("127.0.0.1")

docs = os.path.join(d, "docs")


def write(path, text):
    path = os.path.join(docs, path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


write("index.gmi", "# home\n=> a.gmi A page\n=> /missing A broken link\n")
write("a.gmi", "# a\n=> index.gmi home\n")
write("page.gmi", "# cut\n")

srv = subprocess.Popen(
    [sys.executable, os.path.join(TOP_SRCDIR, "tests", "crawlserver.py"),
     docs, key, crt, os.path.join(d, "server.log")],
    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
_children.append(srv)
port = int(srv.stdout.readline())
url = "gemini://127.0.0.1:%d/" % port


rec = NotifyRecorder(d)
state = os.path.join(d, "state")
conf = ("state-dir %s\n" % state +
        "notify %s\n" % rec.path +
        "notify-after 2\n"
        "capsule %s name=site crawl=20 crawl-interval=1s crawl-delay=0\n"
        % url +
        "capsule %sa.gmi name=quiet notify=no crawl=20 crawl-interval=1s "
        "crawl-delay=0\n" % url)


def stamp(m, name):
    return metric(m, "gemini_crawl_timestamp_seconds", capsule=name)


def crawls(dm, n, what):
    """Wait for n more finished crawls of both capsules."""
    m = dm.metrics()
    t0 = (stamp(m, "site") or 0, stamp(m, "quiet") or 0)
    for _ in range(n):
        m = dm.wait_for(lambda m: (stamp(m, "site") or 0) > t0[0] and
                        (stamp(m, "quiet") or 0) > t0[1],
                        timeout=60, what=what)
        t0 = (stamp(m, "site"), stamp(m, "quiet"))
    return m


def wait_events(pred, timeout=60, what="events"):
    end = time.monotonic() + timeout * SLOW
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.2)
    diag("timed out waiting for %s" % what)
    return pred()


# ---- a broken link ---------------------------------------------------------

dm = Daemon(conf)
wait_events(lambda: rec.names("site"), what="the first event")
crawls(dm, 3, "three more crawls")
is_(rec.names("site"), ["crawl_problems"],
    "a broken link: crawl_problems, once over several crawls")
env, doc = rec.events("site")[0]
missing = url + "missing"
is_(doc["event"], "crawl_problems", "JSON: event")
is_(doc["check"], "crawl", "JSON: check is crawl")
is_(doc["url"], url, "JSON: the capsule's URL")
is_(doc["problems"], 1, "JSON: one problem")
is_(doc["offending"], missing, "JSON: the offending URL")
run = doc["run"]
is_(run["kind"], "crawl", "JSON run: kind")
is_((run["failed"], run["broken_links"], run["without_close_notify"],
     run["new"]), (1, 1, 0, 1), "JSON run: the counts")
ok(run["pages"] >= 2, "JSON run: the pages crawled", run["pages"])
is_(run["problems"][0]["url"], missing, "JSON run: the page")
is_(run["problems"][0]["referrer"], url, "JSON run: linked from the home")
is_((run["problems"][0]["status"], run["problems"][0]["kind"],
     run["problems"][0]["new"]), (51, "broken", True),
    "JSON run: 51, a broken link, new")
is_(doc["result"], None, "JSON: no probe result")
is_(env["GEMWATCH_CHECK"], "crawl", "env: GEMWATCH_CHECK")
is_(env["GEMWATCH_PROBLEMS"], "1", "env: GEMWATCH_PROBLEMS")
is_(env["GEMWATCH_OFFENDING"], missing, "env: GEMWATCH_OFFENDING")
ok(missing in env["GEMWATCH_SUMMARY"] and
   "1 broken link" in env["GEMWATCH_SUMMARY"],
   "env: the summary names the page", env["GEMWATCH_SUMMARY"])
is_(env["GEMWATCH_SINCE"], env["GEMWATCH_TIME"],
    "env: a first run's problems are new since that run")
since = env["GEMWATCH_SINCE"]
is_(rec.names("quiet"), [], "notify=no: its crawl says nothing")

# ---- one more: a page cut without close_notify -----------------------------

write("index.gmi", "# home\n=> a.gmi A page\n=> /missing A broken link\n"
      "=> /cut/page.gmi Cut\n")
wait_events(lambda: len(rec.names("site")) >= 2, what="the second event")
crawls(dm, 2, "two more crawls")
is_(rec.names("site"), ["crawl_problems", "crawl_problems"],
    "a new problem: crawl_problems again, once")
env, doc = rec.events("site")[1]
cut = url + "cut/page.gmi"
is_((doc["problems"], doc["run"]["new"],
     doc["run"]["without_close_notify"]), (2, 1, 1),
    "JSON: two problems, one new, one without close_notify")
is_(doc["run"]["problems"][0]["url"], cut, "JSON run: the new one first")
is_((doc["run"]["problems"][0]["kind"], doc["run"]["problems"][1]["new"]),
    ("close_notify", False), "JSON run: its kind; the old one not new")
is_(env["GEMWATCH_OFFENDING"], cut + " " + missing,
    "env: both pages, the new one first")
is_(env["GEMWATCH_SINCE"], since, "env: the problems' since is kept")

# ---- a restart keeps what was sent -----------------------------------------

rc, _ = dm.stop()
is_(rc, 0, "daemon stops cleanly")
with open(os.path.join(state, "notify.state")) as f:
    st = json.load(f)
page = [c for c in st["checks"] if c["capsule"] == "site"][0]
is_((page["crawl_open"], len(page["crawl_problems"])), (True, 2),
    "notify.state: the crawl's problems are kept")
dm = Daemon(conf)
crawls(dm, 2, "two crawls after the restart")
is_(len(rec.names("site")), 2, "restart: the same problems are not sent again")

# ---- fixed: crawl_clean ----------------------------------------------------

write("index.gmi", "# home\n=> a.gmi A page\n")
wait_events(lambda: len(rec.names("site")) >= 3, what="crawl_clean")
crawls(dm, 2, "two more crawls")
is_(rec.names("site"), ["crawl_problems", "crawl_problems", "crawl_clean"],
    "fixed: crawl_clean, once")
env, doc = rec.events("site")[2]
is_((doc["problems"], doc["offending"], doc["run"]["failed"]), (0, None, 0),
    "JSON: no problem left")
is_(env["GEMWATCH_SINCE"], since, "env: since when there were problems")
ok("no failing page" in env["GEMWATCH_SUMMARY"], "env: the summary",
   env["GEMWATCH_SUMMARY"])
m = dm.metrics()
is_(metric(m, "gemwatch_notify_total", event="crawl_problems", result="ok"),
    0.0, "metrics: crawl_problems counted before the restart only")
is_(metric(m, "gemwatch_notify_total", event="crawl_clean", result="ok"),
    1.0, "metrics: crawl_clean ran ok")
is_(metric(m, "gemwatch_notify_total", event="diagnose_passing",
           result="ok"), 0.0, "metrics: every new event is exported")

# ---- notify-repeat, by a reload: still failing, told again -----------------

dm.write_conf(conf.replace("notify-after 2\n",
                           "notify-after 2\nnotify-repeat 1s\n"))
dm.signal(signal.SIGHUP)
ok(wait_events(lambda: "reload: " in dm.logtext(), what="the reload"),
   "reloaded with notify-repeat 1s")
write("index.gmi", "# home\n=> a.gmi A page\n=> /gone A broken link\n")
wait_events(lambda: len(rec.names("site")) >= 5, what="a repeat")
names = rec.names("site")
is_(names[3:5], ["crawl_problems", "crawl_problems"],
    "notify-repeat: the problems, then sent again")
(env1, _), (env2, doc2) = rec.events("site")[3:5]
is_((env1["GEMWATCH_REPEAT"], env2["GEMWATCH_REPEAT"], doc2["repeat"]),
    ("0", "1", True), "notify-repeat: GEMWATCH_REPEAT=1 on the repeat")
ok("still" in env2["GEMWATCH_SUMMARY"], "notify-repeat: the summary says so",
   env2["GEMWATCH_SUMMARY"])
is_((env2["GEMWATCH_SINCE"], env2["GEMWATCH_OFFENDING"]),
    (env1["GEMWATCH_SINCE"], url + "gone"),
    "notify-repeat: the same since and page")
ok(dm.alive(), "daemon still running")
is_(dm.stop()[0], 0, "daemon stops cleanly again")

# ---- diagnose: a rule broken, then kept ------------------------------------

# A conforming server but for one MUST: it serves URLs with userinfo.
bad = GemServer("-m", "conform", "-n", "127.0.0.1", "-K", key, "-C", crt,
                "-r", "userinfo")
rec2 = NotifyRecorder(tmpdir())
conf2 = ("notify %s\n" % rec2.path +
         "capsule gemini://127.0.0.1:%d/ name=conf timeout=3s diagnose=1m\n"
         % bad.port)
dm = Daemon(conf2)
wait_events(lambda: rec2.names("conf"), timeout=120,
            what="diagnose_failing")
is_(rec2.names("conf"), ["diagnose_failing"], "diagnose: diagnose_failing")
env, doc = rec2.events("conf")[0]
is_((doc["check"], doc["problems"], doc["offending"]),
    ("diagnose", 1, "URLUserinfo"), "JSON: the failing check")
is_((doc["run"]["kind"], doc["run"]["fail"], doc["run"]["problems"][0]["check"],
     doc["run"]["problems"][0]["new"]),
    ("diagnose", 1, "URLUserinfo", True), "JSON run: the check, new")
ok(doc["run"]["pass"] >= 23, "JSON run: the rest pass", doc["run"])
ok("URLUserinfo" in env["GEMWATCH_SUMMARY"], "env: the summary names it",
   env["GEMWATCH_SUMMARY"])
ok(env["GEMWATCH_MESSAGE"].startswith("%d pass, 1 fail"
                                      % doc["run"]["pass"]),
   "env: the message is the report's summary", env["GEMWATCH_MESSAGE"])

# The same port, now conforming: the next run (a minute on) passes.
bad.stop()
good = GemServer("-m", "conform", "-n", "127.0.0.1", "-K", key, "-C", crt,
                 "-p", str(bad.port))
wait_events(lambda: len(rec2.names("conf")) >= 2, timeout=150,
            what="diagnose_passing")
is_(rec2.names("conf"), ["diagnose_failing", "diagnose_passing"],
    "diagnose: diagnose_passing once the server conforms")
env, doc = rec2.events("conf")[-1]
is_((doc["problems"], doc["run"]["fail"]), (0, 0), "JSON: nothing fails")
ok(dm.alive(), "diagnose: daemon still running")
is_(dm.stop()[0], 0, "diagnose: daemon stops cleanly")
good.stop()
srv.terminate()
srv.wait(timeout=10)
done()
