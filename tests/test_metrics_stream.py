"""A /metrics too large to hold at once is streamed, and arrives whole.

3,000 capsules restored from a snapshot tests/bench_store writes (each
with a result, probed once an hour): their text, some 8 MB, is more than
the daemon keeps (4 MiB), so it is rendered piece by piece as the client
reads it, sent chunked to an HTTP/1.1 client and until the close to an
HTTP/1.0 one. Both get every capsule's samples once, the families in the
same order, the daemon's own families after them; HEAD gets the headers
only. A reload in the middle of
a slow read cuts that answer short (the capsule set changed under it)
rather than let it repeat or miss series, and the next scrape is whole.
A crawl's families follow the capsules' in a streamed text as in one
rendered at once.
"""
import http.client
import os
import signal
import socket
import subprocess
import time

from gemtest import SLOW, Daemon, GemServer, done, is_, ok, tmpdir

CAPSULES = 3000
BENCH_STORE = os.path.join(os.environ.get("TOP_BUILDDIR", "."),
                           "tests", "bench_store")
srv = GemServer()
state = os.path.join(tmpdir(), "state")
os.makedirs(state)
subprocess.run([BENCH_STORE, "-h", "2", "-s", state, "-k", str(CAPSULES)],
               check=True, capture_output=True, timeout=120 * SLOW)

conf = "state-dir %s\nhistory 2\ninterval 1h\n" % state
for i in range(CAPSULES):      # bench_store's names
    conf += "capsule %s name=capsule-%05d\n" % (srv.url("/ok"), i)
d = Daemon(conf)


def fetch(version, method="GET"):
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=60 * SLOW)
    if version == 10:
        c._http_vsn, c._http_vsn_str = 10, "HTTP/1.0"
    c.request(method, "/metrics")
    r = c.getresponse()
    body = r.read()
    c.close()
    return r, body.decode()


def types(text):
    return [x for x in text.splitlines() if x.startswith("# TYPE ")]


def samples(text, name):
    return [x for x in text.splitlines() if x.startswith(name + "{")]


r11, t11 = fetch(11)
is_(r11.status, 200, "HTTP/1.1: 200")
is_(r11.getheader("Transfer-Encoding"), "chunked",
    "HTTP/1.1: sent chunked, as rendered")
ok(len(t11) > 4 * 1024 * 1024, "HTTP/1.1: %d bytes" % len(t11))
probes = samples(t11, "gemini_probes_total")
is_(len(probes), CAPSULES, "HTTP/1.1: a gemini_probes_total per capsule")
is_(len(set(probes)), len(probes), "HTTP/1.1: no sample twice")
is_(t11.count("# TYPE gemini_probes_total "), 1,
    "HTTP/1.1: each family's TYPE line once")
ok("\ngemwatch_capsules %d\n" % CAPSULES in t11 and t11.endswith("\n"),
   "HTTP/1.1: the daemon's own families follow, the text ends in a newline")

r10, t10 = fetch(10)
is_(r10.status, 200, "HTTP/1.0: 200")
is_(len(samples(t10, "gemini_probes_total")), CAPSULES,
    "HTTP/1.0: a gemini_probes_total per capsule")
is_(types(t10), types(t11), "HTTP/1.0: the same families in the same order")
ok(t10.endswith("\n"), "HTTP/1.0: the text ends in a newline")

rh, th = fetch(11, "HEAD")
is_((rh.status, th), (200, ""), "HEAD: 200 and no body")

# A reload while a client reads slowly: that answer is cut short.
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.settimeout(60 * SLOW)
s.connect(("127.0.0.1", d.port))
s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
first = s.recv(4096)
ok(first.startswith(b"HTTP/1.1 200"), "slow client: the answer begins")
d.write_conf(conf + "capsule %s name=late\n" % srv.url("/ok"))
d.signal(signal.SIGHUP)
end = time.monotonic() + 30 * SLOW
while time.monotonic() < end and \
        "scheduling %d checks" % (CAPSULES + 1) not in d.logtext():
    time.sleep(0.1)
got = bytearray(first)
end = time.monotonic() + 60 * SLOW
while time.monotonic() < end:
    b = s.recv(65536)
    if not b:
        break
    got += b
s.close()
ok(not got.endswith(b"0\r\n\r\n"),
   "slow client: the answer cut short by the reload (%d bytes), not ended"
   % len(got))

r, t = fetch(11)
is_((r.status, len(samples(t, "gemini_probes_total")) >= CAPSULES,
     t.endswith("\n")), (200, True, True), "after the reload: a whole answer")
# The runs' families (a crawl's here) come after the capsules' families
# in a streamed text too.
d.write_conf(conf + "capsule %s name=late\n" % srv.url("/ok") +
             "capsule %s name=crawled crawl=2 crawl-delay=0\n"
             % srv.url("/ok"))
d.signal(signal.SIGHUP)
end = time.monotonic() + 60 * SLOW
t = ""
while time.monotonic() < end and \
        'gemini_crawl_pages{capsule="crawled"' not in t:
    time.sleep(0.5)
    r, t = fetch(11)
ok(r.getheader("Transfer-Encoding") == "chunked" and
   'gemini_crawl_pages{capsule="crawled"' in t and
   t.index("# TYPE gemini_crawl_pages ") > t.index("# TYPE gemini_probes_total ")
   and t.endswith("\n"),
   "streamed: the crawl's families after the capsules', the text whole")
ok(d.alive(), "daemon alive at the end")
rc, _ = d.stop()
is_(rc, 0, "daemon exits 0")
done()
