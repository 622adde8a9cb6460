"""The resolver's answer cache: an answer is asked for once per TTL, a
"no such name" once per 10 s.

dnsmasq on loopback, started here with --log-queries, answers long.test
(TTL 3600 s) and short.test (TTL 3 s) with 127.0.0.1 and every other name
of .test with NXDOMAIN; its log counts the queries gemwatch makes. A
survey probes long.test and nx.test five times each, one after the other
(one connection at a time per host): one A query each. The daemon probes
short.test and nx.test every second: each is asked again once its answer
has expired, and never more often than its TTL allows.
"""
import csv
import io
import os
import re
import shutil
import socket
import subprocess
import time

from gemtest import (GEMWATCH, Daemon, GemServer, SLOW, WRAPPER, diag, done,
                     is_, metric, ok, skip_all, tmpdir)

SHORT_TTL = 3
NEG_TTL = 10  # CACHE_NEG_TTL in daemon/dns.c

exe = shutil.which("dnsmasq") or (
    "/usr/sbin/dnsmasq" if os.access("/usr/sbin/dnsmasq", os.X_OK) else None)
if exe is None:
    skip_all("dnsmasq missing (apt-get install dnsmasq-base)")


class Dnsmasq:
    def __init__(self):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        self.port = u.getsockname()[1]
        u.close()
        self.log = os.path.join(tmpdir(), "dnsmasq.log")
        cmd = [exe, "--keep-in-foreground", "--conf-file=/dev/null",
               "--port=%d" % self.port, "--listen-address=127.0.0.1",
               "--bind-interfaces", "--no-resolv", "--no-hosts",
               "--pid-file=", "--log-queries", "--log-facility=-",
               "--local=/test/",
               "--host-record=long.test,127.0.0.1,3600",
               "--host-record=short.test,127.0.0.1,%d" % SHORT_TTL]
        if os.geteuid() == 0:
            cmd += ["--user=root", "--group=root"]
        with open(self.log, "wb") as f:
            self.proc = subprocess.Popen(cmd, stdout=f, stderr=f)
        end = time.monotonic() + 20
        while time.monotonic() < end and self.proc.poll() is None:
            if "started" in self.text():
                return
            time.sleep(0.05)
        skip_all("dnsmasq did not start: %s" % self.text()[-300:])

    def text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def queries(self, name):
        """A queries for name so far."""
        return len(re.findall(r"query\[A\] %s from" % re.escape(name),
                              self.text()))

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


dns = Dnsmasq()
srv = GemServer()
P = srv.port
resolver = "127.0.0.1:%d" % dns.port

# ---- a survey: repeated probes within the TTL, one query ------------------
lst = "".join("gemini://long.test:%d/ok?n=%d\n" % (P, i) for i in range(5))
lst += "".join("gemini://nx.test:%d/%d\n" % (P, i) for i in range(5))
p = subprocess.run([*WRAPPER, GEMWATCH, "survey", "--csv", "-t", "5",
                    "--resolver", resolver, "-"], input=lst,
                   capture_output=True, text=True, timeout=120 * SLOW)
rows = list(csv.DictReader(io.StringIO(p.stdout)))
is_(sum(1 for r in rows if "long.test" in r["url"] and r["success"] == "true"),
    5,
    "survey: the five probes of long.test succeed")
is_(dns.queries("long.test"), 1,
    "survey: five probes of long.test (TTL 3600 s) asked dnsmasq once")
is_(sum(1 for r in rows if "nx.test" in r["url"] and
        r["stage"] == "resolve"), 5,
    "survey: the five probes of nx.test fail to resolve")
is_(dns.queries("nx.test"), 1,
    "survey: five probes of nx.test (NXDOMAIN) asked dnsmasq once")

# ---- the daemon: asked again after the TTL, never sooner ------------------
before = {n: dns.queries(n) for n in ("short.test", "nx.test")}
conf = ["resolver " + resolver, "history 4",
        'capsule "gemini://short.test:%d/" name=short interval=1s '
        'timeout=1s' % P,
        'capsule "gemini://nx.test:%d/" name=nx interval=1s timeout=1s' % P]
t0 = time.monotonic()
d = Daemon("\n".join(conf) + "\n")


def asked(name):
    return dns.queries(name) - before[name]


m = d.wait_for(lambda m: asked("short.test") >= 2 and asked("nx.test") >= 2,
               timeout=60 * SLOW, what="short.test and nx.test asked again")
elapsed = time.monotonic() - t0
short, nx = asked("short.test"), asked("nx.test")
probes = metric(m, "gemini_probes_total", capsule="short", check="page") or 0
nx_probes = metric(m, "gemini_probes_total", capsule="nx", check="page") or 0
diag("after %.1f s: short.test asked %d times in %d probes, nx.test %d in %d"
     % (elapsed, short, probes, nx, nx_probes))
ok(short >= 2, "daemon: short.test asked again once its TTL ran out")
ok(short <= elapsed / SHORT_TTL + 1,
   "daemon: short.test asked at most once per %d s (%d in %.1f s)"
   % (SHORT_TTL, short, elapsed))
ok(nx >= 2, "daemon: nx.test asked again after %d s" % NEG_TTL)
ok(nx <= elapsed / NEG_TTL + 1,
   "daemon: nx.test asked at most once per %d s (%d in %.1f s)"
   % (NEG_TTL, nx, elapsed))
is_(metric(m, "gemini_probe_success", capsule="short", check="page"), 1.0,
    "daemon: short.test is up")
ok(d.alive(), "daemon alive at the end")
rc, _ = d.stop()
is_(rc, 0, "daemon exits 0")
dns.stop()
done()
