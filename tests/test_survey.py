"""gemwatch survey and gemwatch probe on the engine: many probes at once.

A capsule list mixing a healthy capsule, one without close_notify, one that
resets, one that never speaks (a hang until the deadline), one that refuses,
unusable lines and comments: each line of output is asserted (words, CSV
with its header, JSON lines), and so is the census that ends it. Then the
things the engine is for: 200 probes that each hang until their 2-second
deadline end in about one deadline, not 200 of them; gemwatch probe keeps
the order of its arguments whatever order the probes end in; the survey's
process keeps a handful of threads with hundreds of probes in flight.
"""
import csv
import io
import json
import os
import socket
import subprocess
import time

from gemtest import (GEMWATCH, GemServer, SLOW, WRAPPER, diag, done,
                     free_port, is_, ok, run_probe, tmpdir)

srv = GemServer()
silent = GemServer("-m", "never-speak")
d = tmpdir()
P = srv.port
refused = free_port()


def survey(*args, stdin=None, timeout=120):
    p = subprocess.run([*WRAPPER, GEMWATCH, "survey", *args],
                       input=stdin, capture_output=True, text=True,
                       timeout=timeout * SLOW)
    return p.returncode, p.stdout, p.stderr


T = "%g" % (2 * SLOW)   # the deadline of the hanging capsule
LIST = """\
# a capsule list: hosts, host:port, URLs; comments and blank lines

localhost:%(P)d
gemini://127.0.0.1:%(P)d/premature   # no close_notify
gemini://127.0.0.1:%(P)d/reset
127.0.0.1:%(silent)d
127.0.0.1:%(refused)d
this line has words
http://127.0.0.1:%(P)d/
localhost:%(P)d
""" % {"P": P, "silent": silent.port, "refused": refused}
path = os.path.join(d, "capsules.txt")
with open(path, "w") as f:
    f.write(LIST)

URLS = {
    "ok": "gemini://localhost:%d/" % P,
    "premature": "gemini://127.0.0.1:%d/premature" % P,
    "reset": "gemini://127.0.0.1:%d/reset" % P,
    "hang": "gemini://127.0.0.1:%d/" % silent.port,
    "refused": "gemini://127.0.0.1:%d/" % refused,
}

# ---- words ---------------------------------------------------------------
rc, out, err = survey("-t", T, path)
is_(rc, 0, "survey: exit 0 although capsules failed")
lines = out.splitlines()
rows = {}
for line in lines:
    w = line.split(" ")
    if w[0].startswith("gemini://"):
        rows[w[0]] = w
is_(set(rows), set(URLS.values()), "one line per capsule, duplicates once")
w = rows[URLS["ok"]]
is_(w[1:5], ["ok", "20", "close_notify", "TLS1.3"],
    "healthy: ok 20 close_notify TLS1.3")
w = rows[URLS["premature"]]
is_(w[1:5], ["close_notify", "20", "premature", "TLS1.3"],
    "no close_notify: reason close_notify, end premature")
ok("connection closed without close_notify" in " ".join(w[6:]),
   "no close_notify: the message says so", w)
w = rows[URLS["reset"]]
is_(w[1:4], ["close_notify", "20", "reset"], "reset: end reset")
w = rows[URLS["hang"]]
is_(w[1:5], ["timeout", "-", "-", "-"], "hang: timeout, nothing reached")
ok(float(w[5]) >= 2 * SLOW - 0.05, "hang: lasted its deadline", w)
w = rows[URLS["refused"]]
is_(w[1:5], ["connect", "-", "-", "-"], "refused: reason connect")
ok(":8: more than one word on the line" in err, "bad line named with its "
   "number", err)
ok(":9: only gemini:// URLs are supported" in err,
   "an http URL is refused with its line number", err)

census = out[out.index("census:"):]
diag(census)
ok("5 capsules probed" in census, "census: 5 capsules", census)
ok("(2 lines skipped as unusable, 1 duplicates)" in census,
   "census: unusable lines and duplicates counted", census)
ok("answered:        3 (60.0%); succeeded 1" in census,
   "census: 3 of 5 answered, 1 succeeded", census)
ok("close_notify 1 (33.3%), premature 1, reset 1, timeout 0" in census,
   "census: how the answers ended", census)
ok("connect 1, tls 0, timeout 1" in census,
   "census: refused and hanging counted by reason", census)
ok("TLS versions:    TLS1.3 3" in census, "census: TLS versions", census)
ok("2x 3," in census, "census: status classes", census)
ok("certificates:    3: self-signed 3, expired 0, hostname mismatched 2"
   in census, "census: certificates (the IP literals do not match)", census)
ok("p50 " in census and "p99 " in census, "census: latency percentiles",
   census)
ok("1 out of 3 servers that answered send close_notify." in census,
   "census: the close_notify sentence", census)

# ---- JSON lines, from stdin ------------------------------------------------
rc, out, err = survey("-j", "-t", T, stdin=LIST)
is_(rc, 0, "survey -j from stdin: exit 0")
docs = [json.loads(x) for x in out.splitlines()]
results = {x["url"]: x for x in docs if "url" in x}
is_(set(results), set(URLS.values()), "-j: one JSON result per capsule")
r = results[URLS["premature"]]
is_((r["end"], r["error"]["reason"], r["status"]),
    ("premature", "close_notify", 20), "-j: a whole SPEC §5 result")
is_(set(r) >= {"durations", "tls", "cert", "address", "time"}, True,
    "-j: the result has every field")
is_(results[URLS["hang"]]["error"]["stage"], "tls", "-j: hang at stage tls")
c = docs[-1].get("census")
ok(c is not None, "-j: the last line is the census", docs[-1])
if c:
    is_((c["capsules"], c["answered"], c["succeeded"], c["bad_lines"],
         c["duplicates"]), (5, 3, 1, 2, 1), "-j census: counts")
    is_(c["ends"]["close_notify"], 1, "-j census: close_notify 1")
    is_(c["ends"]["premature"], 1, "-j census: premature 1")
    is_(c["ends"]["reset"], 1, "-j census: reset 1")
    is_(c["failures"]["timeout"], 1, "-j census: a timeout")
    is_(c["failures"]["connect"], 1, "-j census: a refusal")
    is_(c["tls_versions"], {"TLS1.3": 3}, "-j census: TLS versions")
    is_(c["status_classes"]["2x"], 3, "-j census: 2x")
    is_(c["certificates"]["self_signed"], 3, "-j census: self-signed")
    ok(0 < c["latency"]["p50"] <= c["latency"]["p90"] <= c["latency"]["p99"],
       "-j census: percentiles in order", c["latency"])

# ---- CSV -------------------------------------------------------------------
rc, out, err = survey("--csv", "-t", T, path)
is_(rc, 0, "survey --csv: exit 0")
table = list(csv.DictReader(io.StringIO(out)))
is_(len(table), 5, "--csv: a row per capsule under one header")
ok(table and "url" in table[0] and "end" in table[0] and
   "message" in table[0], "--csv: the header names the columns")
byurl = {row["url"]: row for row in table}
row = byurl.get(URLS["premature"], {})
is_((row.get("success"), row.get("reason"), row.get("end"),
     row.get("status")), ("false", "close_notify", "premature", "20"),
    "--csv: the premature row")
is_(byurl.get(URLS["ok"], {}).get("meta"), "text/gemini; lang=en",
    "--csv: a META with a blank and a semicolon")
ok("census:" in err and "census:" not in out,
   "--csv: the census goes to stderr, stdout stays a table")

# ---- usage and unreadable input ----------------------------------------------
rc, out, err = survey(os.path.join(d, "missing.txt"))
is_(rc, 1, "an unreadable list: exit 1")
ok("cannot open" in err, "and it says so", err)
rc, out, err = survey("-c", "0", path)
is_(rc, 2, "-c 0: usage error")
rc, out, err = survey("a", "b")
is_(rc, 2, "two lists: usage error")
rc, out, err = survey("--resolver", "dns.example", path)
is_(rc, 2, "--resolver takes an address: usage error")

# ---- many hanging probes at once ----------------------------------------------
# 200 listening sockets that never accept, each on an address of its own
# (127.0.0.0/8 is all loopback): the TCP handshake completes in the kernel
# and the TLS handshake waits for a ServerHello that never comes.
hangers = []
for i in range(200):
    s = socket.socket()
    s.bind(("127.0.0.%d" % (2 + i), 0))
    s.listen(4)
    hangers.append(s)
addrs = ["%s:%d" % s.getsockname() for s in hangers]
urls = ["gemini://%s/" % a for a in addrs]
t0 = time.monotonic()
rc, out, err = run_probe("-j", "-t", "2", *urls, timeout=120)
took = time.monotonic() - t0
res = json.loads(out)["results"] if out else []
is_(len(res), 200, "200 hanging probes: 200 results")
is_({(r["error"] or {}).get("reason") for r in res}, {"timeout"},
    "200 hanging probes: each ended at its deadline")
is_([r["url"] for r in res], urls, "probe: results in argument order")
ok(took < 20 * SLOW, "200 hanging probes of 2 s took %.1fs, about one "
   "deadline, not 200" % took)
diag("200 hanging probes with -t 2: %.2f s" % took)

# Argument order whatever order the probes end in: a slow one first.
order = [srv.url("/slow-header?ms=800"), srv.url("/ok", host="localhost"),
         URLS["refused"], "gemini://127.0.0.1:%d/" % silent.port]
rc, out, err = run_probe("-j", "-t", str(3 * SLOW), *order)
res = json.loads(out)["results"]
is_([r["url"] for r in res], order, "probe: order of the arguments kept")
is_([(r["error"] or {}).get("reason") for r in res],
    [None, None, "connect", "timeout"], "probe: each its own verdict")
rc, out, err = run_probe("-t", "1", "-c", "2", order[1], order[2])
ok(out.index(order[1]) < out.index(order[2]),
   "probe in words: the order of the arguments too")

# Probes that end at once, each starting the next from the engine's thread
# (-c 1): the engine must not sleep with a probe in its inbox.
try:
    rc, out, err = run_probe("-j", "-c", "1", "-6", "gemini://127.0.0.1:1/",
                             "gemini://127.0.0.2:1/", "gemini://127.0.0.3:1/",
                             timeout=30)
    reasons = [(r["error"] or {}).get("reason")
               for r in json.loads(out)["results"]]
except subprocess.TimeoutExpired:
    reasons = "hung"
is_(reasons, ["resolve"] * 3, "-c 1, probes that end at once: all done")

# ---- threads of a survey with hundreds of probes in flight --------------------
p = subprocess.Popen([*WRAPPER, GEMWATCH, "survey", "-t", "%g" % (4 * SLOW),
                      "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=subprocess.DEVNULL, text=True)
p.stdin.write("".join(a + "\n" for a in addrs))
p.stdin.close()
time.sleep(1.5 * SLOW)
threads = None
try:
    with open("/proc/%d/status" % p.pid) as f:
        for line in f:
            if line.startswith("Threads:"):
                threads = int(line.split()[1])
except OSError:
    pass
out = p.stdout.read()
p.wait(timeout=60 * SLOW)
is_(p.returncode, 0, "survey of 200 hanging capsules: exit 0")
ok(threads is not None and threads <= 8,
   "survey with 200 probes in flight: %s threads" % threads)
ok("200 capsules probed" in out, "survey of 200: all probed", out[-400:])
diag("threads of gemwatch survey with 200 probes in flight: %s" % threads)
for s in hangers:
    s.close()
done()
