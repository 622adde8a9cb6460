"""A real Prometheus scrapes the daemon (SPEC.md §6).

Prometheus (Debian package prometheus; the test is skipped without it)
runs on a free loopback port with a temporary configuration and storage,
scrapes the daemon every second, and the test reads the samples back
through Prometheus's query API: the scrape target is up with no error,
and gemini_close_notify is 1 for a capsule that ends with close_notify
and 0 for one that does not.
"""
import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request

from gemtest import (SLOW, Daemon, GemServer, _children, diag, done,
                     free_port, is_, ok, skip_all, tmpdir)

PROMETHEUS = os.environ.get("PROMETHEUS", "/usr/bin/prometheus")
if not (os.access(PROMETHEUS, os.X_OK) or shutil.which(PROMETHEUS)):
    skip_all("no Prometheus server (Debian package prometheus)")

srv = GemServer()
daemon = Daemon("interval 1s\ntimeout 1s\n"
                "capsule %s name=ok\ncapsule %s name=premature\n"
                % (srv.url("/ok"), srv.url("/premature")))

d = tmpdir()
port = free_port()
conf = os.path.join(d, "prometheus.yml")
with open(conf, "w") as f:
    f.write("""global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: gemwatch
    static_configs:
      - targets: ["127.0.0.1:%d"]
""" % daemon.port)
log = open(os.path.join(d, "prometheus.log"), "w")
prom = subprocess.Popen([PROMETHEUS, "--config.file=" + conf,
                         "--storage.tsdb.path=" + os.path.join(d, "data"),
                         "--web.listen-address=127.0.0.1:%d" % port,
                         "--log.level=warn"],
                        stdout=log, stderr=log, stdin=subprocess.DEVNULL)
_children.append(prom)
base = "http://127.0.0.1:%d" % port


def api(path, **params):
    url = base + path
    if params:
        url += "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def prometheus_log():
    log.flush()
    with open(log.name) as f:
        return f.read()


def close_notify():
    """{capsule: value} of gemini_close_notify as Prometheus has it."""
    doc = api("/api/v1/query", query="gemini_close_notify")
    return {r["metric"].get("capsule"): float(r["value"][1])
            for r in doc["data"]["result"]
            if r["metric"].get("check") == "page"}


# Prometheus answers once it has started; then the first scrapes land.
want = {"ok": 1.0, "premature": 0.0}
got, target = {}, None
end = time.monotonic() + 30 * SLOW
while time.monotonic() < end and prom.poll() is None:
    try:
        got = close_notify()
        targets = api("/api/v1/targets")["data"]["activeTargets"]
        target = targets[0] if targets else None
    except OSError:
        pass
    if got == want and target and target["health"] == "up":
        break
    time.sleep(0.5)

if not ok(prom.poll() is None, "Prometheus is running", prometheus_log()):
    done()
is_(got, want, "gemini_close_notify read back through Prometheus: "
    "1 for ok, 0 for premature")
ok(target is not None and target["health"] == "up" and
   target["lastError"] == "", "the scrape target is up, no scrape error",
   target)
doc = api("/api/v1/query", query='gemini_probes_total{capsule="ok"}')
res = doc["data"]["result"]
ok(res and float(res[0]["value"][1]) >= 1,
   "gemini_probes_total is a sample Prometheus stored", res)
doc = api("/api/v1/query", query="gemwatch_capsules")
is_([float(r["value"][1]) for r in doc["data"]["result"]], [2.0],
    "gemwatch_capsules 2")
diag("Prometheus log:\n" + prometheus_log() if prometheus_log() else
     "Prometheus logged nothing at level warn")

prom.terminate()
try:
    rc = prom.wait(timeout=20)
except subprocess.TimeoutExpired:
    prom.kill()
    rc = prom.wait()
is_(rc, 0, "Prometheus stopped cleanly")
ok(daemon.alive(), "daemon alive at the end")
is_(daemon.stop()[0], 0, "daemon: exit 0 on SIGTERM")
done()
