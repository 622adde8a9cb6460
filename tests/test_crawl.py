"""The crawl: `gemwatch crawl` and the daemon's crawl=N against a capsule
the test makes (a tree of a few hundred pages served by
tests/crawlserver.py) holding every way a page can fail or mislead a
crawler: a broken link (51), a page cut without close_notify, a redirect
chain and a loop, links to another host and scheme, relative links with
"..", percent-encoding and queries, a robots.txt that disallows a
subtree, files that are not text/gemini, a page over max-body and a page
generating endless new links. Asserts what a user reads: the exit code,
the JSON, the report, /metrics (promtool), the status and crawl pages,
and, from the server's log, what was (never) requested and when."""
import html
import json
import os
import shutil
import signal
import subprocess
import sys
import time

from gemtest import (GEMWATCH, SLOW, TOP_SRCDIR, WRAPPER, Daemon,
                     diag, done, find, is_, make_cert, metric, ok,
                     parse_metrics, tmpdir, _children)

TREE = 300  # pages of the tree

d = tmpdir()
key, crt = make_cert()


def write(path, text):
    path = os.path.join(docs, path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


docs = os.path.join(d, "docs")
write("index.gmi", "\n".join([
    "# A capsule to crawl",
    "=> tree/0.gmi The tree",
    "=> /missing A broken link",
    "=> /cut/page.gmi Cut without close_notify",
    "=> /chain/3 A redirect chain",
    "=> /loop/a A redirect loop",
    "=> gemini://127.0.0.2:1965/ Another host",
    "=> https://127.0.0.1/ Another scheme",
    "=> sub/../sub/a%20b.gmi Percent-encoding and dots",
    "=> q.gmi?x=1&y=%3C A query",
    "=> /private/secret.gmi Disallowed by robots.txt",
    "=> notes.txt Plain text",
    "=> file.bin A binary file",
    "=> /big Over max-body",
    "=> /%3Cb%3E.gmi A name to escape",
    "```",
    "=> /in-preformatted Not a link",
    "```",
    "=> /endless/0 Endless",
    ""]))
write("sub/a b.gmi", "# a b\n=> ../index.gmi home\n=> ./../sub/ up\n")
write("sub/index.gmi", "# sub\n")
write("q.gmi", "# query\n")
write("page.gmi", "# cut\n")
write("private/secret.gmi", "# secret\n=> /private/deeper.gmi\n")
write("notes.txt", "=> /from-text Not read: plain text\n")
write("robots.txt", "User-agent: archiver\nDisallow: /tree/\n\n"
      "User-agent: *\nDisallow: /private/\n")
with open(os.path.join(docs, "file.bin"), "wb") as f:
    f.write(bytes(range(256)))
for i in range(TREE):
    links = ["# page %d" % i]
    for c in (2 * i + 1, 2 * i + 2):
        if c < TREE:
            links.append("=> ../tree/./%d.gmi child" % c if c % 3 else
                         "=> %d.gmi child" % c)
    links.append("=> /index.gmi home")
    if i == 150:
        links.append("=> /tree/gone.gmi A broken link deep in the tree")
    write("tree/%d.gmi" % i, "\n".join(links) + "\n")


class Server:
    def __init__(self, big=5 * 1024 * 1024):
        self.log = os.path.join(d, "server-%d.log" % time.monotonic_ns())
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(TOP_SRCDIR, "tests",
                                          "crawlserver.py"),
             docs, key, crt, self.log, str(big)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        _children.append(self.proc)
        self.port = int(self.proc.stdout.readline())

    def url(self, path="/"):
        return "gemini://127.0.0.1:%d%s" % (self.port, path)

    def requests(self):
        try:
            with open(self.log) as f:
                return [(float(t), p) for t, p in
                        (line.rstrip("\n").split(" ", 1) for line in f)]
        except FileNotFoundError:
            return []

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def crawl(*args, timeout=120):
    p = subprocess.run([*WRAPPER, GEMWATCH, "crawl", *args],
                       capture_output=True, text=True,
                       timeout=timeout * SLOW)
    return p.returncode, p.stdout, p.stderr


def by_url(pages, srv):
    return {p["url"][len(srv.url("")):]: p for p in pages}


# ---- gemwatch crawl --------------------------------------------------------

srv = Server()
N = 1000
rc, out, err = crawl("-j", "-d", "0", "-n", str(N), srv.url())
is_(rc, 1, "crawl: exit 1 when a page failed")
o = json.loads(out)
reqs = [p for _, p in srv.requests()]
is_(o["pages"], N, "crawl: N pages, the endless links cut there")
ok(o["truncated"], "crawl: truncated")
is_(len(o["results"]), N, "crawl -j: every page listed")
is_(len(reqs), N + 1, "crawl: N pages and robots.txt requested, no more")
is_(reqs[0], "/robots.txt", "crawl: robots.txt first")
is_(len(set(reqs)), len(reqs), "crawl: each URL requested once")
ok(not any(p.startswith("/private/") for p in reqs),
   "crawl: the subtree robots.txt disallows is never requested",
   [p for p in reqs if p.startswith("/private")])
ok(o["robots_txt"] and o["robots_excluded"] >= 1,
   "crawl: robots.txt found, the link it excludes counted")
is_(o["robots_rules"], 1, "crawl: one Disallow applies (*'s, not archiver's)")
ok("/in-preformatted" not in reqs, "crawl: => in a preformatted block is text")
ok("/from-text" not in reqs, "crawl: links are read from text/gemini only")
ok(o["external_links"] >= 2, "crawl: links to another host and scheme "
   "counted (%d)" % o["external_links"])
pages = by_url(o["results"], srv)
tree = [u for u in pages if u.startswith("/tree/") and u != "/tree/gone.gmi"]
is_(len(tree), TREE, "crawl: the whole tree crawled, breadth first before "
    "the endless pages")
is_(pages.get("/sub/a%20b.gmi", {}).get("status"), 20,
    "crawl: a link with \"..\" and %20 resolved")
is_(pages.get("/sub/", {}).get("status"), 20,
    "crawl: \"./../sub/\" resolved against the page")
is_(pages.get("/q.gmi?x=1&y=%3C", {}).get("status"), 20,
    "crawl: the query kept")
is_(pages.get("/file.bin", {}).get("meta"), "application/octet-stream",
    "crawl: a binary file fetched, not parsed")
for u in ("/chain/2", "/chain/1", "/chain/0"):
    ok(u in pages, "crawl: redirect chain followed to %s" % u)
is_(pages["/chain/0"]["referrer"], srv.url("/chain/1"),
    "crawl: a redirect's target names the redirecting page")
ok("/loop/a" in pages and "/loop/b" in pages and
   reqs.count("/loop/a") == 1, "crawl: a redirect loop ends")
fails = by_url(o["failures"], srv)
is_(set(fails), {"/missing", "/cut/page.gmi", "/big", "/tree/gone.gmi",
                 "/%3Cb%3E.gmi"},
    "crawl: the failing pages, and only those")
is_(fails["/missing"]["status"], 51, "crawl: the broken link's status")
is_(fails["/missing"]["referrer"], srv.url("/"),
    "crawl: the broken link named with the page that links to it")
is_(fails["/tree/gone.gmi"]["referrer"], srv.url("/tree/150.gmi"),
    "crawl: a broken link deep in the tree, with its referrer")
is_(fails["/cut/page.gmi"]["reason"], "close_notify",
    "crawl: the page cut without close_notify fails")
is_(fails["/cut/page.gmi"]["end"], "premature", "crawl: ... ended premature")
is_(fails["/big"]["end"], "limit", "crawl: the page over max-body fails")
is_(o["broken_links"], 3, "crawl: broken links counted")
is_(o["without_close_notify"], 1, "crawl: pages without close_notify")
is_(o["ends"]["premature"], 1, "crawl: ends counted")
ok(pages["/endless/0"]["success"], "crawl: the endless pages are fine")

rc, out, err = crawl("-d", "0", "-n", str(N), srv.url())
is_(rc, 1, "crawl (words): exit 1")
lines = out.splitlines()
ok(lines and "%d pages, 3 broken links, 1 without close_notify" % N in lines[0],
   "crawl (words): the summary line", out[:500])
i = next((k for k, l in enumerate(lines) if "/missing" in l), None)
ok(i is not None and lines[i].startswith("FAIL ") and
   "status 51" in lines[i] and "linked from " + srv.url("/") in lines[i + 1],
   "crawl (words): the failing page, then the page linking to it", out[:800])
ok(all(l.startswith(("FAIL", "     linked from")) for l in lines[2:]),
   "crawl (words): only failing pages listed", out[:800])
srv.stop()

# The delay holds between requests, and N is a hard cap at any N.
srv = Server()
rc, out, err = crawl("-j", "-d", "0.3", "-n", "5", srv.url())
o = json.loads(out)
times = [t for t, _ in srv.requests()]
is_(o["pages"], 5, "crawl -n 5: five pages")
is_(len(times), 6, "crawl -n 5: five pages and robots.txt requested")
gaps = [b - a for a, b in zip(times, times[1:])]
ok(gaps and min(gaps) >= 0.29, "crawl -d 0.3: at least 0.3 s between "
   "requests (shortest %.3f s)" % min(gaps or [0]))
srv.stop()

for args, what in ((["-n", "0", "gemini://127.0.0.1/"], "-n 0"),
                   (["-d", "x", "gemini://127.0.0.1/"], "-d x"),
                   ([], "no URL"),
                   (["gemini://127.0.0.1/", "gemini://127.0.0.2/"],
                    "two URLs"),
                   (["http://127.0.0.1/"], "not gemini://")):
    is_(crawl(*args)[0], 2, "crawl %s: usage error, exit 2" % what)

# ---- the daemon ------------------------------------------------------------

srv = Server(big=100 * 1024)
conf = ("max-body 64k\n"
        "capsule %s name=site crawl=%d crawl-delay=0 crawl-interval=1h\n"
        "capsule %s name=plain\n" % (srv.url(), N, srv.url("/page.gmi")))
dm = Daemon(conf)
end = time.monotonic() + 120 * SLOW
status = 404
while time.monotonic() < end:
    status, _, body = dm.get("/api/v1/capsules/site/crawl")
    if status == 200:
        break
    time.sleep(0.2)
is_(status, 200, "daemon: /api/v1/capsules/site/crawl after the crawl")
o = json.loads(body)
is_(o.get("capsule"), "site", "daemon: the outcome names the capsule")
ok("results" not in o, "daemon: failures only without full=1")
is_(o.get("pages"), N, "daemon: N pages")
fails = by_url(o.get("failures", []), srv)
is_(fails.get("/tree/gone.gmi", {}).get("referrer"),
    srv.url("/tree/150.gmi"), "daemon: a broken link with its referrer")
is_(fails.get("/big", {}).get("end"), "limit",
    "daemon: max-body applies to the crawl's pages")
full = dm.json("/api/v1/capsules/site/crawl?full=1")
is_(len(full.get("results", [])), N, "daemon: full=1 lists every page")
is_(dm.get("/api/v1/capsules/plain/crawl")[0], 404,
    "daemon: a capsule without crawl= has no crawl")
is_(dm.get("/api/v1/capsules/site")[0], 200,
    "daemon: /api/v1/capsules/NAME still answers")

text = dm.get("/metrics")[2].decode()
m = parse_metrics(text)
is_(metric(m, "gemini_crawl_pages", capsule="site", end="premature"), 1.0,
    "metrics: gemini_crawl_pages{end=premature}")
is_(sum(v for _, v in find(m, "gemini_crawl_pages", capsule="site")),
    float(N), "metrics: gemini_crawl_pages sums to the pages")
is_(metric(m, "gemini_crawl_broken_links", capsule="site"), 3.0,
    "metrics: gemini_crawl_broken_links")
is_(metric(m, "gemini_crawl_truncated", capsule="site"), 1.0,
    "metrics: gemini_crawl_truncated")
ok((metric(m, "gemini_crawl_duration_seconds", capsule="site") or -1) > 0,
   "metrics: gemini_crawl_duration_seconds")
ts = metric(m, "gemini_crawl_timestamp_seconds", capsule="site") or 0
ok(abs(ts - time.time()) < 120, "metrics: gemini_crawl_timestamp_seconds")
ok(metric(m, "gemini_crawl_truncated", capsule="plain") is None,
   "metrics: no crawl samples for a capsule without crawl=")
if shutil.which("promtool"):
    p = subprocess.run(["promtool", "check", "metrics"], input=text,
                       capture_output=True, text=True)
    ok(p.returncode == 0, "promtool check metrics passes with crawl samples",
       p.stdout + p.stderr)
else:
    diag("promtool not installed; not run")

page = dm.get("/")[2].decode()
ok("%d pages, 3 broken links, 1 without close_notify" % N in page and
   'href="/crawl?capsule=site"' in page,
   "status page: the crawl line links to the crawl page")
st, _, body = dm.get("/crawl?capsule=site")
cpage = body.decode()
is_(st, 200, "crawl page: 200")
ok(html.escape(srv.url("/%3Cb%3E.gmi")) in cpage or
   srv.url("/%3Cb%3E.gmi") in cpage, "crawl page: the failing pages listed")
ok("/tree/gone.gmi" in cpage and srv.url("/tree/150.gmi") in cpage,
   "crawl page: each with the page linking to it")
is_(dm.get("/crawl?capsule=nosuch")[0], 404, "crawl page: 404 for no capsule")

# The outcome survives a restart, and no crawl runs again before its time.
served = len(srv.requests())
rc, _ = dm.stop()
is_(rc, 0, "daemon: stops cleanly")
state = os.path.join(dm.dir, "state")
ok(os.path.exists(os.path.join(state, "crawl.json")),
   "daemon: crawl.json saved in state-dir")
dm2 = Daemon("state-dir %s\n" % state + conf)
st, _, body = dm2.get("/api/v1/capsules/site/crawl")
is_(st, 200, "restart: the last crawl is there at once")
o2 = json.loads(body) if st == 200 else {}
is_(o2.get("timestamp"), o.get("timestamp"), "restart: the same crawl")
time.sleep(2 * SLOW)
# The page checks ask "/" and "/page.gmi"; a crawl would begin with robots.txt.
is_([p for _, p in srv.requests()[served:] if p not in ("/", "/page.gmi")],
    [], "restart: no crawl before crawl-interval has passed")

# A reload keeps a crawl in progress; one that removes the capsule ends it
# at its next request, and nothing of it is published.
with open(dm2.conf, "w") as f:
    f.write("listen 127.0.0.1:%d\nstate-dir %s\nmax-body 64k\n"
            "capsule %s name=slow crawl=%d crawl-delay=0.2 "
            "crawl-interval=1h\n" % (dm2.port, state, srv.url(), N))
dm2.signal(signal.SIGHUP)


def crawl_requests():
    return len([p for _, p in srv.requests()[served:]
                if p not in ("/", "/page.gmi")])


end = time.monotonic() + 20 * SLOW
while crawl_requests() < 5 and time.monotonic() < end:
    time.sleep(0.1)
ok(crawl_requests() >= 5, "reload: a new capsule's crawl begins")
dm2.signal(signal.SIGHUP)  # the same file: the crawl goes on
time.sleep(1 * SLOW)
n = crawl_requests()
time.sleep(1 * SLOW)
ok(crawl_requests() > n, "reload: an unchanged capsule's crawl goes on")
with open(dm2.conf, "w") as f:
    f.write("listen 127.0.0.1:%d\nstate-dir %s\n"
            "capsule %s name=plain\n" % (dm2.port, state,
                                          srv.url("/page.gmi")))
dm2.signal(signal.SIGHUP)
time.sleep(1 * SLOW)
n = crawl_requests()
time.sleep(1.5 * SLOW)
is_(crawl_requests(), n, "reload: a removed capsule's crawl stops")
is_(dm2.get("/api/v1/capsules/slow/crawl")[0], 404,
    "reload: nothing published for it")
ok(dm2.alive(), "daemon still running")
rc, _ = dm2.stop()
is_(rc, 0, "daemon: stops cleanly after the restart")
srv.stop()
done()
