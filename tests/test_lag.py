"""Falling behind is visible: lag metrics, a log line, the page's header.

Eight capsules on a server that accepts and never answers, interval 2 s,
timeout 1.9 s, concurrency 1: one probe at a time, each hanging to its
deadline, so the others wait and start late. /metrics must show it
(gemwatch_probes_late_total, the gemwatch_probe_lag_seconds histogram,
gemwatch_probes_in_flight and gemwatch_concurrency), the log must say
"falling behind" once (rate-limited) with the remedy, and the status page
must say so in its header. A second daemon with the default concurrency
on the same capsules keeps up: nothing late, the page says nothing.
"""
import time

from gemtest import (SLOW, Daemon, GemServer, done, find, is_, metric, ok)

N = 8
srv = GemServer("-m", "never-speak")


def conf(concurrency):
    text = "interval %ds\ntimeout %gs\n" % (int(2 * SLOW), 1.9 * SLOW)
    if concurrency:
        text += "concurrency %d\n" % concurrency
    for i in range(N):
        text += "capsule %s name=c%d\n" % (srv.url("/%d" % i), i)
    return text


d = Daemon(conf(1))
d.wait_for(lambda m: (metric(m, "gemwatch_probes_late_total") or 0) >= 3,
           timeout=30, what="late probes counted")
m = d.metrics()
late = metric(m, "gemwatch_probes_late_total")
ok(late >= 3, "concurrency 1: gemwatch_probes_late_total counts late starts")
is_(metric(m, "gemwatch_concurrency"), 1, "gemwatch_concurrency is 1")
is_(metric(m, "gemwatch_probes_in_flight"), 1,
    "gemwatch_probes_in_flight: the one allowed")
count = metric(m, "gemwatch_probe_lag_seconds_count")
inf = metric(m, "gemwatch_probe_lag_seconds_bucket", le="+Inf")
ok(count is not None and count >= late and inf == count,
   "the lag histogram counts every start (+Inf bucket = count)")
buckets = [v for _, v in find(m, "gemwatch_probe_lag_seconds_bucket")]
ok(buckets == sorted(buckets), "its buckets are cumulative")
ok(metric(m, "gemwatch_probe_lag_seconds_sum") > 1,
   "the lag sum is seconds of waiting")
status, _, body = d.get("/")
ok(status == 200 and b"Falling behind" in body,
   "the status page's header says it is falling behind")
time.sleep(2 * SLOW)
log = d.logtext()
is_(log.count("falling behind"), 1, "the log says so once (rate-limited)")
ok("raise concurrency" in log, "and names the remedy")
d.stop()

d = Daemon(conf(0))
d.wait_for(lambda m: (metric(m, "gemwatch_probe_lag_seconds_count") or 0)
           >= 2 * N, timeout=30, what="two rounds")
m = d.metrics()
is_(metric(m, "gemwatch_probes_late_total"), 0,
    "default concurrency: no probe late")
ok(metric(m, "gemwatch_concurrency") >= 1000,
   "the default concurrency is in the thousands")
status, _, body = d.get("/")
ok(status == 200 and b"Falling behind" not in body,
   "and the page says nothing of it")
ok("falling behind" not in d.logtext(), "nor the log")
d.stop()
done()
