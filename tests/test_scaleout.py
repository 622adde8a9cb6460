"""Scale-out: /probe for Prometheus's multi-target pattern, and `shard K/N`.

/probe: its output passes `promtool check metrics` and carries every
blackbox_exporter and probe_gemini_* name; ?capsule=NAME probes with the
capsule's options; targets outside the capsules and probe-allow get 403,
an unknown capsule 404, a bad request 400, and a probe beyond
`concurrency` 503; X-Prometheus-Scrape-Timeout-Seconds shortens the
probe (minus 0.5 s), capped by the configured timeout; ?debug=true gives
the stages, the certificate and the result JSON. A real Prometheus with a
blackbox-style scrape configuration scrapes /probe and the test reads
probe_gemini_close_notify back through its query API. The README's
scale-out YAML passes `promtool check config`, and its hashmod example
splits targets between two jobs.

Shards: for N = 1..5, N daemons with `shard K/N` on one 1,000-capsule
file each keep exactly the capsules whose name hashes there (FNV-1a 64,
(hash mod N) + 1 == K): every capsule is in exactly one shard.
"""
import json
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from gemtest import (Daemon, GemServer, SLOW, TOP_SRCDIR, _children, diag,
                     done, find, free_port, is_, metric, ok, parse_metrics,
                     tmpdir)

PROMTOOL = shutil.which("promtool")
PROMETHEUS = "/usr/bin/prometheus" if os.access("/usr/bin/prometheus",
                                                 os.X_OK) else None
MARGIN = 1.0 * SLOW

# Every name the issue asks /probe for, with the labels each must carry.
PROBE_NAMES = {
    "probe_success": set(),
    "probe_duration_seconds": set(),
    "probe_dns_lookup_time_seconds": set(),
    "probe_ip_protocol": set(),
    "probe_ssl_earliest_cert_expiry": set(),
    "probe_tls_version_info": {"version"},
    "probe_ssl_last_chain_info": {"fingerprint_sha256", "subject", "issuer"},
    "probe_gemini_close_notify": set(),
    "probe_gemini_status_code": set(),
    "probe_gemini_phase_duration_seconds": {"phase"},
    "probe_gemini_response_end_info": {"end"},
}


def skip(name, why):
    ok(True, "%s # SKIP %s" % (name, why))


def promtool_metrics(text, name):
    """One test: promtool check metrics accepts text."""
    if PROMTOOL is None:
        return skip(name, "promtool is not installed")
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=text,
                       capture_output=True, text=True, timeout=60)
    ok(p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(),
       name, (p.stdout + p.stderr)[:2000])


def probe(d, query, headers=None, timeout=30):
    """GET /probe?QUERY: (status, content type, body text, seconds)."""
    t0 = time.monotonic()
    status, hdrs, body = d.get("/probe?" + urllib.parse.urlencode(query),
                               headers=headers, timeout=timeout)
    return (status, hdrs.get("Content-Type"), body.decode(),
            time.monotonic() - t0)


def value(text, name, **labels):
    return metric(parse_metrics(text), name, **labels)


def fnv1a64(s):
    h = 0xcbf29ce484222325
    for b in s.encode():
        h ^= b
        h = (h * 0x100000001b3) & 0xffffffffffffffff
    return h


srv = GemServer()
closed = free_port()       # nothing listens here: probes are refused
url_ok = srv.url("/ok")

# ---- /probe on a daemon with three capsules ---------------------------------
d = Daemon("""
interval 1h
capsule %s name=ok
capsule %s name=s51 expect-status=5x
capsule %s name=prem
""" % (url_ok, srv.url("/status/51"), srv.url("/premature")))

status, ctype, text, _ = probe(d, {"target": url_ok})
is_(status, 200, "/probe?target=: 200")
is_(ctype, "text/plain; version=0.0.4; charset=utf-8",
    "/probe: Prometheus text format 0.0.4")
promtool_metrics(text, "/probe (success) passes promtool check metrics")
m = parse_metrics(text)
for name, labels in sorted(PROBE_NAMES.items()):
    got = find(m, name)
    ok(len(got) > 0 and all(set(l) == labels for l, _ in got),
       "/probe has %s%s" % (name, "{%s}" % ",".join(sorted(labels))
                             if labels else ""), text)
is_(metric(m, "probe_success"), 1.0, "/ok: probe_success 1")
is_(metric(m, "probe_gemini_close_notify"), 1.0,
    "/ok: probe_gemini_close_notify 1")
is_(metric(m, "probe_gemini_status_code"), 20.0,
    "/ok: probe_gemini_status_code 20")
is_(metric(m, "probe_ip_protocol"), 4.0, "/ok: probe_ip_protocol 4")
is_(metric(m, "probe_gemini_response_end_info", end="close_notify"), 1.0,
    "/ok: probe_gemini_response_end_info{end=\"close_notify\"} 1")
is_(metric(m, "probe_tls_version_info", version="TLS 1.3"), 1.0,
    "/ok: probe_tls_version_info{version=\"TLS 1.3\"} (blackbox spelling)")
is_(sorted(l["phase"] for l, _ in
           find(m, "probe_gemini_phase_duration_seconds")),
    ["body", "connect", "header", "resolve", "tls"], "/ok: every phase")
chain = find(m, "probe_ssl_last_chain_info")
ok(chain and chain[0][0]["subject"] == "O=gemwatch test,CN=localhost" and
   len(chain[0][0]["fingerprint_sha256"]) == 64,
   "/ok: probe_ssl_last_chain_info names the test certificate", chain)
ok((metric(m, "probe_ssl_earliest_cert_expiry") or 0) > time.time(),
   "/ok: probe_ssl_earliest_cert_expiry in the future")
ok(0 < (metric(m, "probe_duration_seconds") or -1) < 5,
   "/ok: probe_duration_seconds", metric(m, "probe_duration_seconds"))
ok(not [k for k in m if not k[0].startswith("probe_")],
   "/probe has only probe_* names (no gemini_*, gemwatch_*, process_*)")

# A response without close_notify: 0, and a premature end.
status, _, text, _ = probe(d, {"target": srv.url("/premature")})
promtool_metrics(text, "/probe (premature) passes promtool check metrics")
m = parse_metrics(text)
is_(metric(m, "probe_success"), 0.0, "/premature: probe_success 0")
is_(metric(m, "probe_gemini_close_notify"), 0.0,
    "/premature: probe_gemini_close_notify 0")
is_(metric(m, "probe_gemini_response_end_info", end="premature"), 1.0,
    "/premature: end premature")

# ?capsule=NAME uses the capsule's options: expect-status=5x passes a 51
# that the same URL as a bare target (expect 2x) fails.
status, _, text, _ = probe(d, {"capsule": "s51"})
is_(status, 200, "/probe?capsule=s51: 200")
promtool_metrics(text, "/probe?capsule= passes promtool check metrics")
m = parse_metrics(text)
is_(metric(m, "probe_success"), 1.0,
    "?capsule=s51 (expect-status=5x): probe_success 1")
is_(metric(m, "probe_gemini_status_code"), 51.0, "?capsule=s51: status 51")
status, _, text, _ = probe(d, {"target": srv.url("/status/51")})
is_(value(text, "probe_success"), 0.0,
    "the same URL as ?target= (expect 2x): probe_success 0")

# Requests that are refused.
status, ctype, text, _ = probe(d, {"target": "gemini://127.0.0.2:%d/ok"
                                   % srv.port})
is_(status, 403, "a host that is not a capsule: 403")
ok("probe-allow" in text, "403 says what would allow it", text)
status, _, _, _ = probe(d, {"target": "gemini://127.0.0.1:%d/ok" % closed})
is_(status, 403, "a configured host on another port: 403")
status, _, text, _ = probe(d, {"capsule": "no-such"})
is_(status, 404, "an unknown capsule: 404")
status, _, text, _ = probe(d, {"capsule": "ok", "target": url_ok})
is_(status, 400, "both target and capsule: 400")
status, _, _, _ = probe(d, {})
is_(status, 400, "neither target nor capsule: 400")
status, _, _, _ = probe(d, {"target": "http://127.0.0.1/"})
is_(status, 400, "a target that is not gemini://: 400")
status, _, _, _ = probe(d, {"target": url_ok, "debug": "maybe"})
is_(status, 400, "debug=maybe: 400")
status, _, _, _ = probe(d, {"target": url_ok},
                        headers={"X-Prometheus-Scrape-Timeout-Seconds": "x"})
is_(status, 400, "a scrape timeout that is not a number: 400")

# ?debug=true: a plain-text account.
status, ctype, text, _ = probe(d, {"capsule": "ok", "debug": "true"})
is_(status, 200, "debug: 200")
is_(ctype, "text/plain; charset=utf-8", "debug: plain text")
for stage in ("resolve", "connect", "tls", "request", "header", "body"):
    ok(re.search(r"^\s*%s\s+ok\b" % stage, text, re.M),
       "debug: stage %s ok" % stage, text)
ok("O=gemwatch test,CN=localhost" in text, "debug: the certificate subject")
ok("complete: close_notify received" in text, "debug: how it ended")
ok("probe_gemini_close_notify 1" in text, "debug: the metrics")
j = re.search(r"^\{\n.*?^\}$", text, re.M | re.S)
try:
    res = json.loads(j.group(0)) if j else None
except ValueError:
    res = None
ok(res is not None and res["capsule"] == "ok" and
   res["end"] == "close_notify" and res["success"] is True,
   "debug: the result JSON", text)

status, _, text, _ = probe(d, {"target": srv.url("/premature"),
                               "debug": "1"})
ok(re.search(r"^\s*body\s+FAILED\b.*close_notify", text, re.M),
   "debug of /premature: the body stage failed on close_notify", text)
ok(re.search(r"^\s*header\s+ok\b", text, re.M),
   "debug of /premature: the header stage was ok", text)

# Scrape timeout: 1.5 s minus 0.5 s against a server that never answers.
status, _, text, took = probe(d, {"target": srv.url("/stall-header")},
                              headers={"X-Prometheus-Scrape-Timeout-"
                                       "Seconds": "1.5"})
is_(status, 200, "stalled target, scrape timeout 1.5: 200")
ok(took < 1.5 + MARGIN * 0.5, "answered within the scrape timeout "
   "(took %.2fs)" % took)
m = parse_metrics(text)
is_(metric(m, "probe_success"), 0.0, "stalled target: probe_success 0")
dur = metric(m, "probe_duration_seconds")
ok(dur is not None and 0.9 <= dur <= 1.0 + MARGIN * 0.3,
   "the probe's deadline was the scrape timeout minus 0.5 s (%r)" % dur)
is_(metric(m, "probe_gemini_close_notify"), None,
    "no response: probe_gemini_close_notify left out, not 0")
promtool_metrics(text, "/probe (timeout) passes promtool check metrics")
ok(d.alive(), "daemon alive")

# ---- probe-allow, the configured timeout as a cap, concurrency ---------------
# The held probe below must outlast the wait before the second one.
T2 = 3 * SLOW
d2 = Daemon("""
concurrency 1
timeout %gs
probe-allow 127.0.0.*:*
capsule gemini://127.0.0.1:%d/ name=elsewhere interval=1h
""" % (T2, closed))
status, _, text, _ = probe(d2, {"target": url_ok})
is_(status, 200, "probe-allow 127.0.0.*:* allows 127.0.0.1:%d" % srv.port)
is_(value(text, "probe_success"), 1.0, "allowed target probed: success")
status, _, text, _ = probe(d2, {"target": srv.url("/ok", host="localhost")})
is_(status, 200, "probe-allow 127.0.0.*:* allows localhost at 127.0.0.1 "
    "(tests/test_probe_allow.py has the addresses it refuses)")
is_(value(text, "probe_success"), 1.0, "localhost probed: success")
is_(value(text, "probe_ip_protocol"), 4.0, "localhost probed over IPv4")
status, _, text, _ = probe(d2, {"target": "gemini://127.0.0.3:%d/" % closed})
is_(status, 200, "probe-allow: 127.0.0.3 allowed")
m = parse_metrics(text)
is_(metric(m, "probe_success"), 0.0, "refused: probe_success 0")
is_(find(m, "probe_ssl_last_chain_info"), [],
    "refused: no certificate metrics")
is_(find(m, "probe_gemini_response_end_info"), [],
    "refused: no probe_gemini_response_end_info")
promtool_metrics(text, "/probe (refused) passes promtool check metrics")

# Over the bound: one stalled /probe holds the only slot.
held = {}


def hold():
    held["r"] = probe(d2, {"target": srv.url("/stall-header")},
                      headers={"X-Prometheus-Scrape-Timeout-Seconds": "60"})


t = threading.Thread(target=hold)
t.start()
time.sleep(0.5 * SLOW)
status, _, text, took = probe(d2, {"target": url_ok})
is_(status, 503, "concurrency 1, a second /probe while one is in flight: "
    "503")
ok(took < 1.0 * SLOW, "the 503 is immediate (took %.2fs)" % took)
t.join(30 * SLOW)
status, _, text, took = held.get("r", (None, None, "", 0))
is_(status, 200, "the held /probe answers 200")
dur = value(text, "probe_duration_seconds") if text else None
ok(dur is not None and T2 - 0.1 <= dur <= T2 + MARGIN * 0.3,
   "scrape timeout 60 is capped by the configured timeout %gs (%r)"
   % (T2, dur))
status, _, _, _ = probe(d2, {"target": url_ok})
is_(status, 200, "the slot is free again: 200")
ok(d2.alive(), "daemon alive")
rc, _ = d2.stop()
is_(rc, 0, "daemon exits 0 (no valgrind error either)")


# ---- a real Prometheus scrapes /probe ------------------------------------------
class Prometheus:
    """/usr/bin/prometheus on a temporary configuration and storage."""

    def __init__(self, config):
        self.dir = tmpdir()
        self.port = free_port()
        cf = os.path.join(self.dir, "prometheus.yml")
        with open(cf, "w") as f:
            f.write(config)
        self.logf = open(os.path.join(self.dir, "prometheus.log"), "w")
        self.proc = subprocess.Popen(
            [PROMETHEUS, "--config.file=" + cf,
             "--storage.tsdb.path=" + os.path.join(self.dir, "data"),
             "--web.listen-address=127.0.0.1:%d" % self.port],
            stdout=self.logf, stderr=self.logf)
        _children.append(self.proc)

    def get(self, path, timeout=5):
        url = "http://127.0.0.1:%d%s" % (self.port, path)
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return json.loads(r.read())

    def query(self, q):
        doc = self.get("/api/v1/query?" + urllib.parse.urlencode({"query": q}))
        return doc["data"]["result"]

    def wait_query(self, q, pred, timeout):
        end = time.monotonic() + timeout
        res = []
        while time.monotonic() < end and self.proc.poll() is None:
            try:
                res = self.query(q)
                if pred(res):
                    break
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.5)
        return res

    def log(self):
        self.logf.flush()
        with open(os.path.join(self.dir, "prometheus.log")) as f:
            return f.read()[-3000:]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.logf.close()


PROM_CONFIG = """\
global:
  scrape_interval: %(interval)ds
  scrape_timeout: %(interval)ds
scrape_configs:
  - job_name: gemini-probe
    metrics_path: /probe
    static_configs:
      - targets:
          - %(ok)s
          - %(prem)s
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: 127.0.0.1:%(port)d
"""

if PROMETHEUS is None:
    skip("Prometheus scrapes /probe", "/usr/bin/prometheus is not installed")
else:
    prom = Prometheus(PROM_CONFIG % {"interval": 2 if SLOW == 1 else 10,
                                     "ok": url_ok,
                                     "prem": srv.url("/premature"),
                                     "port": d.port})
    res = prom.wait_query('probe_gemini_close_notify{job="gemini-probe"}',
                          lambda r: len(r) == 2, 60 * SLOW)
    got = {r["metric"].get("instance"): r["value"][1] for r in res}
    ok(got == {url_ok: "1", srv.url("/premature"): "0"},
       "Prometheus reads probe_gemini_close_notify per target: 1 for "
       "/ok, 0 for /premature", "%r\n%s" % (res, prom.log()))
    res = prom.query('up{job="gemini-probe"}')
    is_(sorted(r["value"][1] for r in res), ["1", "1"],
        "Prometheus: both /probe scrapes are up")
    res = prom.query('probe_success{job="gemini-probe"}')
    got = {r["metric"].get("instance"): r["value"][1] for r in res}
    is_(got, {url_ok: "1", srv.url("/premature"): "0"},
        "Prometheus reads probe_success per target")
    prom.stop()
ok(d.alive(), "daemon alive after Prometheus scraped it")
rc, _ = d.stop()
is_(rc, 0, "daemon exits 0 (no valgrind error either)")


# ---- the README's scale-out YAML ------------------------------------------------
def readme_yaml():
    with open(os.path.join(TOP_SRCDIR, "README.md")) as f:
        text = f.read()
    sect = re.search(r"^## Scaling out\n(.*?)(?=^## )", text, re.M | re.S)
    if not sect:
        return []
    return re.findall(r"^```yaml\n(.*?)^```", sect.group(1), re.M | re.S)


blocks = readme_yaml()
ok(len(blocks) >= 4, "README's Scaling out section has YAML examples "
   "(%d)" % len(blocks))
if PROMTOOL is None:
    skip("README YAML passes promtool check config",
         "promtool is not installed")
else:
    yd = tmpdir()
    with open(os.path.join(yd, "gemini-targets.yml"), "w") as f:
        f.write("- targets:\n" + "".join("    - gemini://capsule%d.example/\n"
                                         % i for i in range(40)))
    for i, b in enumerate(blocks):
        path = os.path.join(yd, "readme-%d.yml" % i)
        with open(path, "w") as f:
            f.write(b)
        p = subprocess.run([PROMTOOL, "check", "config", path],
                           capture_output=True, text=True, timeout=60,
                           cwd=yd)
        ok(p.returncode == 0, "README YAML example %d passes promtool check "
           "config" % (i + 1), b + p.stdout + p.stderr)

    # The hashmod example: each target goes to exactly one of the jobs,
    # and each job scrapes its own gemwatch.
    hm = [(i, b) for i, b in enumerate(blocks) if "hashmod" in b]
    ok(len(hm) == 1, "README has one hashmod example")
    kept = {}
    jobs = re.findall(r"job_name: *(\S+)", hm[0][1]) if hm else []
    for job in jobs:
        # file_sd answers at once; without --timeout promtool waits 30 s.
        p = subprocess.run([PROMTOOL, "check", "service-discovery",
                            "--timeout=3s", os.path.join(yd, "readme-%d.yml" % hm[0][0]), job],
                           capture_output=True, text=True, timeout=60,
                           cwd=yd)
        try:
            for t in json.loads(p.stdout):
                lab = t.get("labels") or {}
                if lab:
                    kept.setdefault(lab.get("instance"), []).append(
                        (job, lab.get("__address__")))
        except ValueError:
            diag(p.stdout + p.stderr)
    want = {"gemini://capsule%d.example/" % i for i in range(40)}
    ok(len(jobs) >= 2 and set(kept) == want and
       all(len(v) == 1 for v in kept.values()),
       "hashmod: each of 40 targets is kept by exactly one of %d jobs"
       % len(jobs), kept)
    addr = {}
    for v in kept.values():
        addr.setdefault(v[0][0], set()).add(v[0][1])
    ok(len(jobs) >= 2 and len(addr) == len(jobs) and
       all(len(a) == 1 for a in addr.values()) and
       len(set().union(*addr.values())) == len(jobs),
       "hashmod: every job sends its targets to a gemwatch of its own", addr)


# ---- shard K/N partitions a 1,000-capsule file ------------------------------------
names = []
lines = ["interval 1h"]
for i in range(1000):
    path = "/c%d" % i
    if i % 3 == 0:
        # no name=: named by its URL
        names.append("gemini://127.0.0.1:%d%s" % (closed, path))
        lines.append("capsule gemini://127.0.0.1:%d%s" % (closed, path))
    else:
        name = "capsule-%04d" % i if i % 3 == 1 else "gémeaux %d ☃" % i
        names.append(name)
        lines.append('capsule gemini://127.0.0.1:%d%s name="%s"'
                     % (closed, path, name))
base = "\n".join(lines) + "\n"
every = set(names)
is_(len(every), 1000, "1,000 distinct capsule names")

for n in range(1, 6):
    daemons = []
    for k in range(1, n + 1):
        daemons.append(Daemon("shard %d/%d\n" % (k, n) + base, args=()))
    seen = {}
    counts_ok = True
    for k, dk in enumerate(daemons, 1):
        doc = dk.json("/api/v1/capsules")
        got = [c["name"] for c in doc["capsules"]]
        want = {x for x in names if fnv1a64(x) % n + 1 == k}
        ok(len(got) == len(want) and set(got) == want,
           "shard %d/%d: exactly the %d capsules whose FNV-1a 64 hash "
           "mod %d is %d" % (k, n, len(want), n, k - 1),
           "%d listed; extra %r; missing %r"
           % (len(got), sorted(set(got) - want)[:5],
              sorted(want - set(got))[:5]))
        for x in got:
            seen[x] = seen.get(x, 0) + 1
        cap = metric(dk.metrics(), "gemwatch_capsules")
        if cap != len(got):
            counts_ok = False
            diag("shard %d/%d: gemwatch_capsules %r, %d in the API"
                 % (k, n, cap, len(got)))
    ok(set(seen) == every and all(v == 1 for v in seen.values()),
       "N=%d: every capsule is in exactly one shard" % n,
       "missing %d, in several %d" % (len(every - set(seen)),
                                      sum(1 for v in seen.values() if v > 1)))
    ok(counts_ok, "N=%d: gemwatch_capsules counts each shard" % n)
    if n == 2:
        # /probe?capsule= reaches every configured capsule, in any shard.
        other = next(x for x in names if fnv1a64(x) % 2 + 1 == 2)
        status, _, text, _ = probe(daemons[0], {"capsule": other})
        is_(status, 200, "shard 1/2: /probe?capsule= of a shard-2 capsule")
        is_(value(text, "probe_success"), 0.0,
            "shard 1/2: it was probed (and refused)")
    for dk in daemons:
        ok(dk.alive(), "N=%d: daemon alive" % n)
        rc, _ = dk.stop()
        is_(rc, 0, "N=%d: daemon exits 0" % n)

done()
