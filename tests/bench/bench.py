#!/usr/bin/env python3
"""bench.py - gemwatch's performance benchmark (issues 7, 11), run by run.sh.

Starts everything on loopback: tests/gemserver as the one fast Gemini
server, gemwatch daemons with generated configurations, the raw GnuTLS loop
(rawloop.c) and Prometheus's blackbox_exporter, then prints a Markdown table
of the figures measured, each beside its goal. Sections (--sections):

  cpu       CPU per probe (user+sys of the prober process only) of the raw
            loop, `gemwatch probe` with many URLs, the daemon and
            blackbox_exporter, as ratios measured side by side; and the
            phase durations each reports for the same server. Once with
            the server named by an IP literal, once by a host name
            (localhost) that every client resolves at each probe
            (--cpu-hosts).
  scale     10,000 capsules at a short interval: achieved against configured
            probe rate, probes started more than 1 s late, /metrics render
            time and size, start-up and reload times.
  profile   The scheduler's and the store's share of the daemon's CPU, from
            callgrind (instructions) over a window of steady probing.
  memory    RSS with `history 120` at 100, 1,000 and 10,000 capsules once
            the history is full (10,000: extrapolated unless --full, from
            round 61 on when the run got there), and at 10,000 on the way
            (after 10, 30 and 60 rounds), beside blackbox_exporter's idle
            RSS.
  endpoint  wrk -c50 -t2 -d10s on /metrics at 100 capsules.
  geminispace
            The daemon with its default configuration against a simulated
            Geminispace (geminispace.c: thousands of capsules on loopback
            addresses, a third of them dead, round trips of 20-300 ms),
            named through dnsmasq and as IP literals, at 5,000 and 20,000
            capsules, interval 60 s, timeout 10 s, for three rounds: probes
            per round, capsules lagging, CPU share, peak RSS, threads, fds,
            /metrics render time, lag metrics when the daemon has them; and
            `gemwatch survey` over 5,000 when the binary has it. --quick:
            500 capsules, interval 20 s, two rounds.

CPU time comes from /proc/PID/stat (utime+stime, all threads) for processes
that keep running and from wait4()'s rusage for those that exit. The
machine is shared, so goals are judged on ratios measured in the same run.
"""

import argparse
import atexit
import glob
import json
import os
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")
PHASES = ("connect", "tls", "header", "body", "total")
# With history 120, the round from which every history has its full room
# (store.c gives a ring segments of 4, 8, 16, 32 and 60 entries as
# results come: the last at the 61st).
FULL_ROOM_ROUND = 61

_children = []


def _cleanup():
    for p in _children:
        if p.poll() is None:
            try:
                p.kill()
                p.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass


atexit.register(_cleanup)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def spawn(cmd, **kw):
    p = subprocess.Popen(cmd, **kw)
    _children.append(p)
    return p


def run_rusage(cmd, stdout=subprocess.DEVNULL):
    """Run cmd to its end; (exit status, user+sys seconds, wall seconds)."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - t0
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    if p.returncode != 0:
        log("%s exited %d: %s" % (cmd[0], p.returncode, err.strip()[:500]))
    return p.returncode, ru.ru_utime + ru.ru_stime, wall


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def proc_cpu(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_rss(pid, field="VmRSS"):
    """Resident bytes; field RssAnon: the process's own memory, without
    the pages of shared libraries (GnuTLS and libc alone are 3 MB)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def mem(pid):
    """"RSS (anonymous)" of a running process."""
    return "%s (anonymous %s)" % (mib(proc_rss(pid)),
                                  mib(proc_rss(pid, "RssAnon")))


def http_get(url, timeout=60, ttfb=None):
    """(status, body, seconds from request to the last byte); ttfb, a
    list, gets the seconds until the status line and headers."""
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            if ttfb is not None:
                ttfb.append(time.monotonic() - t0)
            body = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        body = e.read()
        status = e.code
    except (urllib.error.URLError, ConnectionError, socket.timeout):
        return None, b"", time.monotonic() - t0
    return status, body, time.monotonic() - t0


SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)$")


def samples(text, name):
    """[(labels text, value)] of the samples of one metric."""
    out = []
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        m = SAMPLE.match(line)
        if m and m.group(1) == name:
            out.append((m.group(2) or "", float(m.group(3))))
    return out


def median(v):
    return statistics.median(v) if v else float("nan")


def ms(v):
    return "%.3f ms" % (v * 1e3)


def mib(v):
    return "%.1f MiB" % (v / 1048576)


class LogWatch:
    """Follow a growing log file."""

    def __init__(self, path):
        self.path = path
        self.off = 0

    def new_lines(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.off)
                data = f.read()
        except FileNotFoundError:
            return []
        cut = data.rfind(b"\n") + 1
        self.off += cut
        return data[:cut].decode(errors="replace").splitlines()

    def wait_for(self, pattern, timeout, poll=0.002):
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for line in self.new_lines():
                if rx.search(line):
                    return line
            time.sleep(poll)
        return None


class Server:
    """tests/gemserver on an ephemeral loopback port."""

    def __init__(self, bench):
        portfile = os.path.join(bench.dir, "gemserver.port")
        self.proc = spawn([bench.args.gemserver, "-P", portfile],
                          stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
        end = time.monotonic() + 30
        while time.monotonic() < end:
            try:
                with open(portfile) as f:
                    txt = f.read().strip()
                if txt:
                    self.port = int(txt)
                    return
            except FileNotFoundError:
                pass
            time.sleep(0.02)
        raise SystemExit("bench: gemserver did not start")

    # What the clients name the server by: the cpu section measures an IP
    # literal and a host name (resolved by each client at each probe).
    host = "127.0.0.1"

    def url(self, i=None):
        u = "gemini://%s:%d/ok" % (self.host, self.port)
        return u if i is None else "%s?n=%d" % (u, i)


class Daemon:
    """A gemwatch daemon with n capsules on the server's /ok?n=I, or on
    the (url, name) pairs of `capsules`; a setting given as None is left
    to its default, `extra` adds global lines."""

    def __init__(self, bench, n, interval, concurrency=16, history=120,
                 level="-v", wrapper=(), tag=None, timeout=None,
                 capsules=None, extra=()):
        self.bench = bench
        self.n = n
        self.tag = tag or "gemwatch-%d" % n
        self.dir = os.path.join(bench.dir, self.tag)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        self.conf = os.path.join(self.dir, "gemwatch.conf")
        self.logpath = os.path.join(self.dir, "gemwatch.log")
        secs = float(interval.rstrip("s"))
        self.settings = dict(interval=interval, concurrency=concurrency,
                             history=history,
                             timeout=timeout or "%gs" % min(secs, 10))
        self.capsules = capsules
        self.extra = list(extra)
        self.write_conf()
        self.level = level
        self.wrapper = list(wrapper)
        self.proc = None

    def write_conf(self, comment=""):
        s = self.settings
        lines = ["# %s" % comment,
                 "listen 127.0.0.1:%d" % self.port,
                 "state-dir %s/state" % self.dir]
        lines += ["%s %s" % (k, s[k]) for k in ("interval", "timeout",
                                                 "concurrency", "history")
                  if s[k] is not None]
        lines += self.extra
        if self.capsules is not None:
            lines += ["capsule %s name=%s" % c for c in self.capsules]
        else:
            srv = self.bench.server
            for i in range(1, self.n + 1):
                lines.append("capsule %s name=c%05d" % (srv.url(i), i))
        tmp = self.conf + ".tmp"
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.rename(tmp, self.conf)

    def start(self, timeout=120):
        """Start; returns seconds until /healthz answers and the
        configuration is scheduled."""
        self.watch = LogWatch(self.logpath)
        self.watch.off = os.path.getsize(self.logpath) \
            if os.path.exists(self.logpath) else 0
        errf = open(self.logpath, "ab")
        t0 = time.monotonic()
        self.proc = spawn(self.wrapper + [self.bench.args.gemwatch,
                                          self.level, "-f", self.conf],
                          stdout=subprocess.DEVNULL, stderr=errf)
        errf.close()
        end = t0 + timeout
        healthy = None
        while time.monotonic() < end and healthy is None:
            if self.proc.poll() is not None:
                raise SystemExit("bench: gemwatch exited; see " +
                                 self.logpath)
            st, _, _ = http_get(self.base + "/healthz", timeout=5)
            if st == 200:
                healthy = time.monotonic()
            else:
                time.sleep(0.002)
        line = self.watch.wait_for(r"scheduling \d+ checks",
                                   max(0, end - time.monotonic()))
        if healthy is None or line is None:
            raise SystemExit("bench: gemwatch did not start; see " +
                             self.logpath)
        return max(healthy, time.monotonic() if line else 0) - t0

    def reload(self, timeout=60):
        """SIGHUP with a rewritten file; seconds until it is scheduled."""
        self.write_conf("reload %f" % time.time())
        self.watch.new_lines()
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGHUP)
        if self.watch.wait_for(r"reload: ", timeout) is None:
            return None
        if self.watch.wait_for(r"scheduling \d+ checks", timeout) is None:
            return None
        return time.monotonic() - t0

    def metrics(self, ttfb=None):
        st, body, secs = http_get(self.base + "/metrics", ttfb=ttfb)
        if st != 200:
            raise SystemExit("bench: /metrics answered %r" % st)
        return body.decode(), secs, len(body)

    def probes(self, text=None):
        """(sum of gemini_probes_total, fewest probes of one capsule)."""
        if text is None:
            text = self.metrics()[0]
        v = [x for _, x in samples(text, "gemini_probes_total")]
        return sum(v), (min(v) if len(v) == self.n else 0)

    def wait_probes(self, each, timeout, every=2.0):
        """Wait until every capsule has `each` probes; the fewest seen."""
        end = time.monotonic() + timeout
        while True:
            _, least = self.probes()
            if least >= each or time.monotonic() >= end:
                return least
            time.sleep(every)

    def cpu(self):
        return proc_cpu(self.proc.pid)

    def rss(self):
        return proc_rss(self.proc.pid)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Blackbox:
    """blackbox_exporter with a tcp+TLS module speaking Gemini."""

    def __init__(self, bench):
        self.bench = bench
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        conf = os.path.join(bench.dir, "blackbox.yml")
        # The tcp prober appends "\n" to each send: "\r" makes it CRLF.
        with open(conf, "w") as f:
            f.write("modules:\n"
                    "  gemini:\n"
                    "    prober: tcp\n"
                    "    timeout: 10s\n"
                    "    tcp:\n"
                    "      tls: true\n"
                    "      tls_config:\n"
                    "        insecure_skip_verify: true\n"
                    "      query_response:\n"
                    "        - send: \"%s\\r\"\n"
                    "        - expect: \"^20\"\n" % bench.server.url())
        self.proc = spawn([bench.args.blackbox, "--config.file=" + conf,
                           "--web.listen-address=127.0.0.1:%d" % self.port],
                          stdout=subprocess.DEVNULL,
                          stderr=open(os.path.join(bench.dir, "blackbox.log"),
                                      "wb"))
        end = time.monotonic() + 30
        while time.monotonic() < end:
            st, _, _ = http_get(self.base + "/metrics", timeout=5)
            if st == 200:
                return
            time.sleep(0.05)
        raise SystemExit("bench: blackbox_exporter did not start")

    def probe_url(self):
        return "%s/probe?module=gemini&target=%s:%d" % (
            self.base, self.bench.server.host, self.bench.server.port)

    def drive(self, n, clients, rate=0):
        """n probes from `clients` threads, back to back or at `rate`
        per second: (successes, durations)."""
        url = self.probe_url()
        lock = threading.Lock()
        left = [n]
        ok = [0]
        durs = []
        t0 = time.monotonic()

        def client():
            while True:
                with lock:
                    if left[0] == 0:
                        return
                    k = n - left[0]
                    left[0] -= 1
                if rate > 0:
                    delay = t0 + k / rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                st, body, _ = http_get(url)
                text = body.decode(errors="replace")
                s = samples(text, "probe_success")
                d = samples(text, "probe_duration_seconds")
                with lock:
                    if st == 200 and s and s[0][1] == 1:
                        ok[0] += 1
                    if d:
                        durs.append(d[0][1])

        ts = [threading.Thread(target=client) for _ in range(clients)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return ok[0], durs

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


class Space:
    """tests/bench/geminispace: n simulated capsules on 127.64.0.0/10."""

    def __init__(self, bench, n, seed):
        self.manifest = os.path.join(bench.dir, "geminispace.manifest")
        self.errpath = os.path.join(bench.dir, "geminispace.log")
        errf = open(self.errpath, "wb")
        self.proc = spawn([bench.args.geminispace, "-n", str(n), "-s",
                           str(seed), "-m", self.manifest],
                          stdout=subprocess.DEVNULL, stderr=errf)
        errf.close()
        end = time.monotonic() + 60
        while not os.path.exists(self.manifest):
            if self.proc.poll() is not None or time.monotonic() > end:
                raise SystemExit("bench: geminispace did not start; see " +
                                 self.errpath)
            time.sleep(0.05)
        self.caps = []
        self.mix = {}
        with open(self.manifest) as f:
            for line in f:
                if line.startswith("# geminispace "):
                    kv = dict(w.split("=", 1) for w in line.split()[2:])
                    self.port = int(kv["port"])
                    self.refused_port = int(kv["refused-port"])
                elif line.startswith("# mix "):
                    self.mix = {k: int(v) for k, v in
                                (w.split("=", 1) for w in line.split()[2:])}
                elif not line.startswith("#"):
                    i, name, addr, port, beh, rtt, extra = line.split()
                    self.caps.append(dict(name=name, label=name.split(".")[0],
                                          addr=addr, port=int(port), beh=beh,
                                          rtt=int(rtt), extra=int(extra)))

    def url(self, c, names):
        return "gemini://%s:%d/" % (c["name"] if names else c["addr"],
                                    c["port"])

    def cpu(self):
        return proc_cpu(self.proc.pid)

    def stop(self):
        """Stop it; its statistics (key=value lines) as a dict."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        out = {}
        with open(self.errpath, errors="replace") as f:
            for line in f:
                if "=" in line:
                    k, v = line.strip().split("=", 1)
                    out[k] = v
        return out


def dns_query(addr, port, name, timeout=1.0):
    """True when the DNS server at addr:port answers name's A record."""
    q = struct.pack(">HHHHHH", 0x4757, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    q += b"\0" + struct.pack(">HH", 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(q, (addr, port))
        r = s.recv(512)
    except OSError:
        return False
    finally:
        s.close()
    return len(r) >= 12 and r[:2] == q[:2] and \
        struct.unpack(">H", r[6:8])[0] > 0


class Dns:
    """dnsmasq on loopback serving the capsules' names from a hosts file.
    As root it listens on port 53 of an address of its own in 127.53/16,
    so that a private /etc/resolv.conf can name it (resolv.conf has no
    port); otherwise on a free port of 127.0.0.1."""

    def __init__(self, bench, space, ttl):
        self.proc = None
        exe = bench.args.dnsmasq or shutil.which("dnsmasq") or \
            ("/usr/sbin/dnsmasq" if os.access("/usr/sbin/dnsmasq", os.X_OK)
             else None)
        if exe is None:
            self.why = "dnsmasq missing (apt-get install dnsmasq-base)"
            return
        root = os.geteuid() == 0
        pid = os.getpid()
        if root:
            self.addr = "127.53.%d.%d" % ((pid >> 8) & 255, pid % 254 + 1)
            self.port = 53
        else:
            self.addr = "127.0.0.1"
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.bind(("127.0.0.1", 0))
            self.port = u.getsockname()[1]
            u.close()
        hosts = os.path.join(bench.dir, "geminispace.hosts")
        with open(hosts, "w") as f:
            for c in space.caps:
                f.write("%s %s\n" % (c["addr"], c["name"]))
        self.logpath = os.path.join(bench.dir, "dnsmasq.log")
        cmd = [exe, "--keep-in-foreground", "--conf-file=/dev/null",
               "--port=%d" % self.port, "--listen-address=" + self.addr,
               "--bind-interfaces", "--no-resolv", "--no-hosts",
               "--addn-hosts=" + hosts, "--pid-file=",
               "--local-ttl=%d" % ttl, "--log-facility=-"]
        if root:
            cmd += ["--user=root", "--group=root"]
        errf = open(self.logpath, "wb")
        self.proc = spawn(cmd, stdout=errf, stderr=errf)
        errf.close()
        end = time.monotonic() + 30
        probe = space.caps[0]["name"]
        while time.monotonic() < end and self.proc.poll() is None:
            if dns_query(self.addr, self.port, probe, 0.2):
                self.why = None
                return
            time.sleep(0.1)
        self.stop()
        self.why = "dnsmasq did not answer on %s:%d (see %s)" % (
            self.addr, self.port, self.logpath)

    def cpu(self):
        return proc_cpu(self.proc.pid) if self.proc else 0.0

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


class Sampler(threading.Thread):
    """The most threads, open fds and resident memory seen in a process,
    read from /proc twice a second; hwm: its VmHWM when last read (the
    peak, but for the last half second)."""

    def __init__(self, pid, every=0.5):
        super().__init__(daemon=True)
        self.pid = pid
        self.every = every
        self.threads = self.fds = self.rss = self.hwm = 0
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            try:
                with open("/proc/%d/status" % self.pid) as f:
                    for line in f:
                        if line.startswith("Threads:"):
                            self.threads = max(self.threads,
                                               int(line.split()[1]))
                        elif line.startswith("VmRSS:"):
                            self.rss = max(self.rss,
                                           int(line.split()[1]) * 1024)
                        elif line.startswith("VmHWM:"):
                            self.hwm = max(self.hwm,
                                           int(line.split()[1]) * 1024)
                self.fds = max(self.fds,
                               len(os.listdir("/proc/%d/fd" % self.pid)))
            except (FileNotFoundError, ProcessLookupError):
                return
            self.halt.wait(self.every)

    def stop(self):
        self.halt.set()
        self.join()


LABEL_CAPSULE = re.compile(rb'capsule="([^"]*)"')
LABEL_REASON = re.compile(rb'reason="([^"]*)"')
LABEL_PHASE = re.compile(rb'phase="([^"]*)"')
LAG_METRICS = (b"gemwatch_probe_lag_seconds", b"gemwatch_probes_in_flight",
               b"gemwatch_probes_late_total")


def scrape_parse(body):
    """The per-capsule figures of a /metrics body (page checks only) and
    the samples of the lag metrics, when the daemon has them."""
    out = dict(probes={}, ts={}, success={}, reasons={}, phases={}, lag=[])
    for line in body.split(b"\n"):
        if not line.startswith((b"gemini_probe", b"gemwatch_probe")):
            continue
        if b'check="error_page"' in line:
            continue
        name, _, rest = line.partition(b"{")
        if not rest:
            name, _, value = line.partition(b" ")
            if name.startswith(LAG_METRICS):
                out["lag"].append((name.decode(), "", float(value)))
            continue
        labels, _, value = rest.rpartition(b"} ")
        if name.startswith(LAG_METRICS):
            out["lag"].append((name.decode(), labels.decode(), float(value)))
            continue
        m = LABEL_CAPSULE.search(labels)
        if m is None:
            continue
        cap = m.group(1).decode()
        if name == b"gemini_probe_phase_duration_seconds":
            p = LABEL_PHASE.search(labels)
            if p:
                out["phases"].setdefault(p.group(1).decode(), {})[cap] = \
                    float(value)
        elif name == b"gemini_probes_total":
            out["probes"][cap] = float(value)
        elif name == b"gemini_probe_timestamp_seconds":
            out["ts"][cap] = float(value)
        elif name == b"gemini_probe_success":
            out["success"][cap] = float(value)
        elif name == b"gemini_probe_failures_total" and float(value) > 0:
            r = LABEL_REASON.search(labels)
            if r:
                out["reasons"].setdefault(cap, set()).add(r.group(1).decode())
    return out


def lag_summary(first, last):
    """Words for the lag metrics between two scrapes, or None when the
    daemon exposes none."""
    if not last["lag"]:
        return None, None

    def pick(s, name):
        return [(lab, v) for n, lab, v in s["lag"] if n == name]

    words = []
    late = None
    lt1 = pick(last, "gemwatch_probes_late_total")
    if lt1:
        lt0 = pick(first, "gemwatch_probes_late_total")
        late = sum(v for _, v in lt1) - sum(v for _, v in lt0)
        words.append("%d late (gemwatch_probes_late_total; %d since the "
                     "start)" % (late, sum(v for _, v in lt1)))
    inflight = pick(last, "gemwatch_probes_in_flight")
    if inflight:
        words.append("%d in flight at the last scrape" % inflight[0][1])
    q = pick(last, "gemwatch_probe_lag_seconds")
    if q:
        words.append("lag quantiles " + ", ".join(
            "%s %.3f s" % (re.sub(r'.*quantile="([^"]*)".*', r"p\1", lab), v)
            for lab, v in q))
    bk = pick(last, "gemwatch_probe_lag_seconds_bucket")
    if bk:
        b0 = dict(pick(first, "gemwatch_probe_lag_seconds_bucket"))
        rows = []
        for lab, v in bk:
            m = re.search(r'le="([^"]*)"', lab)
            if m:
                rows.append((float(m.group(1)), v - b0.get(lab, 0)))
        rows.sort()
        total = rows[-1][1] if rows else 0
        def bound(q):
            i = next(i for i, (le, c) in enumerate(rows) if c >= q * total)
            if rows[i][0] != float("inf"):
                return "≤ %g s" % rows[i][0]
            return "> %g s" % rows[i - 1][0] if i > 0 else "?"

        if total > 0:
            words.append("lag of %d probes: p50 %s, p99 %s" %
                         (total, bound(0.5), bound(0.99)))
    cnt = pick(last, "gemwatch_probe_lag_seconds_count")
    sm = pick(last, "gemwatch_probe_lag_seconds_sum")
    if cnt and sm:
        c0 = pick(first, "gemwatch_probe_lag_seconds_count")
        s0 = pick(first, "gemwatch_probe_lag_seconds_sum")
        dc = cnt[0][1] - (c0[0][1] if c0 else 0)
        ds = sm[0][1] - (s0[0][1] if s0 else 0)
        if dc > 0:
            words.append("mean lag %.3f s" % (ds / dc))
    return "; ".join(words) or "present", late


def count(n):
    return "{:,}".format(int(n))


# The goals of issue 11 by number of capsules: CPU share of one core, peak
# RSS, threads.
GS_GOALS = {5000: (0.10, 40 << 20, 16), 20000: (0.35, 160 << 20, None)}
GS_ANSWER = ("ok", "slow")      # behaviours whose probe succeeds


class Bench:
    def __init__(self, args):
        self.args = args
        self.dir = tempfile.mkdtemp(prefix="gemwatch-bench.")
        self.rows = []
        self.results = {}
        self._server = None
        log("work directory %s" % self.dir)

    @property
    def server(self):
        """tests/gemserver, started when a section first needs it."""
        if self._server is None:
            if not os.access(self.args.gemserver, os.X_OK):
                raise SystemExit("bench: %s missing (make check builds it)"
                                 % self.args.gemserver)
            self._server = Server(self)
            log("gemserver on port %d" % self._server.port)
        return self._server

    def row(self, section, figure, value, goal="", verdict=None):
        v = "" if verdict is None else ("met" if verdict else "**missed**")
        self.rows.append((section, figure, value, goal, v))
        log("%s | %s | %s | %s | %s" % (section, figure, value, goal, v))

    # ---- 1. CPU per probe ------------------------------------------------

    def raw(self, n, rate=0):
        out = os.path.join(self.dir, "rawloop.out")
        with open(out, "w") as f:
            rc, cpu, wall = run_rusage([self.args.rawloop, "-n", str(n),
                                        "-r", str(rate), self.server.host,
                                        str(self.server.port),
                                        self.server.url()], stdout=f)
        kv = dict(line.strip().split("=", 1) for line in open(out)
                  if "=" in line)
        if rc != 0 or int(kv.get("ok", 0)) != n:
            raise SystemExit("bench: rawloop failed (%s)" % kv)
        self.raw_rss = (int(kv.get("rss_kb", 0)) * 1024,
                        int(kv.get("rss_anon_kb", 0)) * 1024)
        return cpu / n, {p: float(kv["median_" + p]) for p in PHASES}

    def cli(self, n):
        urls = [self.server.url(i) for i in range(1, n + 1)]
        rc, cpu, wall = run_rusage([self.args.gemwatch, "probe"] + urls)
        if rc != 0:
            raise SystemExit("bench: gemwatch probe failed")
        # Durations from a JSON run apart, so JSON costs no CPU above; one
        # probe at a time like the raw loop, since probes run side by side
        # share the CPU and each one's phases last longer.
        k = min(n, 500)
        p = subprocess.run([self.args.gemwatch, "probe", "-c", "1", "-j"] +
                           urls[:k],
                           stdout=subprocess.PIPE, check=True)
        res = json.loads(p.stdout)["results"]
        return cpu / n, phases_of(res)

    def daemon_cpu(self, n, ncaps, rate):
        """The daemon probing ncaps capsules at `rate` probes/s in all,
        over about n probes: (CPU per probe, probes, phase medians)."""
        secs = n / rate
        d = Daemon(self, ncaps, "%gs" % (ncaps / rate))
        d.start()
        d.wait_probes(2, 60, every=0.5)
        c0, (p0, _), t0w = d.cpu(), d.probes(), time.time()
        time.sleep(secs)
        c1, (p1, _) = d.cpu(), d.probes()
        dres = []
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0w))
        for i in range(1, min(ncaps, 20) + 1):
            st, body, _ = http_get("%s/api/v1/capsules/c%05d" % (d.base, i))
            if st == 200:
                dres += [r for r in json.loads(body)["history"]
                         if (r.get("time") or "") >= since]
        d.stop()
        return (c1 - c0) / (p1 - p0), p1 - p0, phases_of(dres)

    def section_cpu(self):
        # An IP literal, then a host name every client resolves at each
        # probe (the raw loop with getaddrinfo, gemwatch with c-ares).
        for host in self.args.cpu_hosts.split(","):
            self.server.host = host
            self.results.setdefault("cpu", {})[host] = self.cpu_form(host)
        self.server.host = Server.host

    def cpu_form(self, host):
        a = self.args
        n = a.probes
        rate = a.rate
        sec = "1 CPU, %s" % host
        # Back to back ("hot") and paced at the daemon's rate, where the
        # CPU idles between probes and each one costs more: ratios are
        # taken between runs at the same pace, interleaved against drift.
        log("cpu: raw loop, %d probes back to back, then at %g/s" %
            (n, rate))
        raw_hot = [self.raw(n)]
        raw_paced = [self.raw(n, rate)]

        log("cpu: gemwatch probe with %d URLs" % n)
        clis = [self.cli(n)]
        cli_ph = clis[0][1]

        ncaps = a.cpu_capsules
        log("cpu: daemon, %d capsules, %g probes/s, %d probes" %
            (ncaps, rate, n))
        daemon, dn, d_ph = self.daemon_cpu(n, ncaps, rate)

        log("cpu: blackbox_exporter, %d probes from %d clients back to "
            "back, then at %g/s" % (n, a.clients, rate))
        bb = Blackbox(self)
        time.sleep(2)
        bb_idle_rss = proc_rss(bb.proc.pid)
        bb.drive(20, 2)     # warm up
        c0 = proc_cpu(bb.proc.pid)
        ok, bdurs = bb.drive(n, a.clients)
        c1 = proc_cpu(bb.proc.pid)
        ok2, bdurs2 = bb.drive(n, a.clients, rate)
        c2 = proc_cpu(bb.proc.pid)
        bb_loaded_rss = proc_rss(bb.proc.pid)
        bb.stop()
        if ok + ok2 != 2 * n:
            log("blackbox_exporter: only %d of %d probes succeeded" %
                (ok + ok2, 2 * n))
        bb_hot = (c1 - c0) / n
        bb_paced = (c2 - c1) / n

        log("cpu: raw loop again, back to back and paced")
        raw_hot.append(self.raw(n))
        raw_paced.append(self.raw(n, rate))
        log("cpu: gemwatch probe again")
        clis.append(self.cli(n))
        cli = statistics.mean(x[0] for x in clis)
        rh = statistics.mean(x[0] for x in raw_hot)
        rp = statistics.mean(x[0] for x in raw_paced)
        figures = dict(raw_hot=rh, raw_paced=rp, cli=cli, daemon=daemon,
                       blackbox_hot=bb_hot, blackbox_paced=bb_paced,
                       blackbox_idle_rss=bb_idle_rss,
                       blackbox_loaded_rss=bb_loaded_rss)

        def two(v):
            return "%s (runs: %s)" % (ms(statistics.mean(x[0] for x in v)),
                                      ", ".join(ms(x[0]) for x in v))

        self.row(sec, "raw GnuTLS loop, CPU per probe, back to back",
                 two(raw_hot), "the floor")
        self.row(sec, "gemwatch probe, %d URLs in one process" % n,
                 two(clis))
        self.row(sec, "blackbox_exporter, %d clients back to back" %
                 a.clients, ms(bb_hot))
        self.row(sec, "gemwatch probe / raw loop (back to back)",
                 "%.2f×" % (cli / rh), "≤ 1.10×", cli / rh <= 1.10)
        self.row(sec, "gemwatch probe / blackbox_exporter (back to back)",
                 "%.2f×" % (cli / bb_hot), "≤ 0.85×", cli / bb_hot <= 0.85)
        self.row(sec, "raw GnuTLS loop, CPU per probe, at %g/s" % rate,
                 two(raw_paced), "the floor")
        self.row(sec, "gemwatch daemon, %d capsules, %d probes at %g/s" %
                 (ncaps, dn, rate), ms(daemon))
        self.row(sec, "blackbox_exporter, at %g/s" % rate, ms(bb_paced))
        self.row(sec, "daemon / raw loop (at %g/s)" % rate,
                 "%.2f×" % (daemon / rp), "≤ 1.10×", daemon / rp <= 1.10)
        self.row(sec, "daemon / blackbox_exporter (at %g/s)" % rate,
                 "%.2f×" % (daemon / bb_paced), "≤ 0.85×",
                 daemon / bb_paced <= 0.85)

        # Durations: medians; a phase "carries a delay" when it is over
        # 1.5 times the raw loop's plus 0.2 ms.
        raw_m = {p: statistics.mean([x[1][p] for x in raw_hot])
                 for p in PHASES}
        rawp_m = {p: statistics.mean([x[1][p] for x in raw_paced])
                  for p in PHASES}
        for p in PHASES:
            extra = ""
            if p == "total":
                extra = "; blackbox probe_duration_seconds %s / %s" % (
                    ms(median(bdurs)), ms(median(bdurs2)))
            self.row("1 durations, " + host,
                     "median %s: raw / probe (back to back);"
                     " raw / daemon (at %g/s)" % (p, rate),
                     "%s / %s; %s / %s%s" % (ms(raw_m[p]), ms(cli_ph[p]),
                                             ms(rawp_m[p]), ms(d_ph[p]),
                                             extra),
                     "≤ 1.5× raw + 0.2 ms",
                     cli_ph[p] <= 1.5 * raw_m[p] + 0.0002 and
                     d_ph[p] <= 1.5 * rawp_m[p] + 0.0002)
        return figures

    # ---- 2, 4, 5. Scale, /metrics, start-up and reload at 10,000 ----------

    def section_scale(self):
        a = self.args
        n = a.capsules
        interval = a.interval
        sec = "2 scale"
        log("scale: %d capsules at %gs, concurrency %d" %
            (n, interval, a.concurrency))
        d = Daemon(self, n, "%gs" % interval, concurrency=a.concurrency,
                   level="-d")
        starts = [d.start()]
        # First probes are spread over the first interval.
        time.sleep(interval + 5)
        text, _, _ = d.metrics()
        p0, least = d.probes(text)
        c0, t0 = d.cpu(), time.monotonic()
        log("scale: after the first interval: %d probes, least %d" %
            (p0, least))
        time.sleep(a.window)
        text, _, _ = d.metrics()
        p1, _ = d.probes(text)
        c1, t1 = d.cpu(), time.monotonic()
        rate = (p1 - p0) / (t1 - t0)
        want = n / interval
        self.row(sec, "probes/s at %d capsules, interval %gs (%.0f s window)"
                 % (n, interval, t1 - t0),
                 "%.1f of %.1f configured" % (rate, want), "≥ 99%",
                 rate >= 0.99 * want)
        self.row(sec, "daemon CPU during the window",
                 "%.0f%% of one core (%s per probe)" %
                 (100 * (c1 - c0) / (t1 - t0), ms((c1 - c0) / (p1 - p0))))
        self.perf_share(d)

        # 4. /metrics at 10,000: the render (until the response starts:
        # the whole body is rendered before the headers go) and the fetch.
        times, first = [], []
        for _ in range(7):
            _, secs, size = d.metrics(ttfb=first)
            times.append(secs)
        self.row("4 endpoint", "/metrics at %d capsules: render, to the "
                 "first byte (median of 7, worst)" % n,
                 "%s, %s" % (ms(median(first)), ms(max(first))),
                 "< 100 ms", median(first) < 0.1)
        self.row("4 endpoint", "/metrics at %d capsules: whole fetch by a "
                 "Python client (median of 7, worst)" % n,
                 "%s, %s" % (ms(median(times)), ms(max(times))))
        self.row("4 endpoint", "/metrics at %d capsules: size" % n,
                 "%.1f MB" % (size / 1e6))

        # 5. Reload under load, then two more cold starts.
        reloads = [d.reload() for _ in range(3)]
        text, _, _ = d.metrics()
        when = samples(text,
                       "gemwatch_config_last_reload_success_timestamp_seconds")
        late = []
        with open(d.logpath, errors="replace") as f:
            for line in f:
                m = re.search(r"started ([0-9.]+)s late", line)
                if m:
                    late.append(float(m.group(1)))
        self.row(sec, "probes started > 1 s late (whole run)",
                 "%d%s" % (len(late), " (worst %.1f s)" % max(late)
                           if late else ""), "0", not late)
        d.stop()
        for _ in range(2):
            d = Daemon(self, n, "%gs" % interval, concurrency=a.concurrency,
                       tag="gemwatch-start")
            starts.append(d.start())
            d.stop()
        self.row("5 start", "start-up, %d capsules (3 runs)" % n,
                 ", ".join("%.3f s" % s for s in starts),
                 "< 1 s", max(starts) < 1)
        ok = None not in reloads and when and when[0][1] > time.time() - 600
        self.row("5 start", "reload (SIGHUP), %d capsules (3 runs)" % n,
                 ", ".join("%.3f s" % s if s is not None else "failed"
                           for s in reloads), "< 1 s",
                 bool(ok) and max(reloads) < 1)

    # ---- 2. The scheduler's and the store's share ------------------------

    def perf_share(self, d, secs=20):
        """Sample the running daemon with perf (cpu-clock: this machine's
        perf has no hardware counters) and split its CPU time: the main
        thread is the scheduler's loop; a worker's time outside probe_run
        is hand-over and store_put. Stacks perf cannot unwind (nettle's
        assembly) are counted as the probe's."""
        if shutil.which("perf") is None:
            return
        data = os.path.join(self.dir, "perf.data")
        r = subprocess.run(["perf", "record", "-q", "-e", "cpu-clock",
                            "-F", "997", "--call-graph", "dwarf", "-o", data,
                            "-p", str(d.proc.pid), "--", "sleep", str(secs)],
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        if r.returncode != 0:
            return
        p = subprocess.run(["perf", "script", "-i", data, "-F", "ip,sym"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           text=True)
        os.unlink(data)
        count = dict(total=0, main=0, worker=0, funcs=0)
        stack = []
        for line in p.stdout.splitlines() + [""]:
            if line.strip():
                f = line.split(None, 1)
                stack.append(f[1].replace(" (inlined)", "").strip()
                             if len(f) > 1 else "?")
                continue
            if not stack:
                continue
            count["total"] += 1
            if any(f.startswith(("sched_", "store_")) for f in stack):
                count["funcs"] += 1
            if "pool_main" in stack:
                if "probe_run" not in stack:
                    count["worker"] += 1
            elif any(f in ("run_daemon", "main") for f in stack):
                count["main"] += 1
            stack = []
        if not count["total"]:
            return
        t = count["total"]
        funcs = count["funcs"] / t
        broad = (count["main"] + count["worker"]) / t
        self.results["perf_share"] = count
        what = "at %d capsules (perf cpu-clock, %d samples over %d s)" % (
            d.n, t, secs)
        self.row("2 profile", "sched_* + store_* functions, inclusive, share "
                 "of the daemon's CPU time " + what,
                 "%.1f%%" % (100 * funcs), "< 5%", funcs < 0.05)
        self.row("2 profile", "all but probing: main loop + workers outside "
                 "probe_run (hand-over waits, store_put) " + what,
                 "%.1f%% (main loop %.1f%%, workers %.1f%%)" %
                 (100 * broad, 100 * count["main"] / t,
                  100 * count["worker"] / t), "< 5% (broader reading)",
                 broad < 0.05)

    def section_profile(self):
        a = self.args
        n = a.capsules
        if shutil.which("valgrind") is None:
            self.row("2 profile", "sched + store share", "valgrind missing")
            return
        interval = a.profile_interval
        log("profile: %d capsules at %gs under callgrind" % (n, interval))
        out = os.path.join(self.dir, "callgrind.out")
        d = Daemon(self, n, "%gs" % interval, concurrency=a.concurrency,
                   tag="gemwatch-callgrind",
                   wrapper=["valgrind", "--tool=callgrind",
                            "--callgrind-out-file=" + out + ".%p"])
        d.start(timeout=600)
        # Steady state: every capsule probed once (rings allocated).
        least = d.wait_probes(1, interval * 2 + 120, every=15)
        log("profile: every capsule probed at least %d time(s)" % least)
        # No /metrics inside the window: its render would count.
        p0, _ = d.probes()
        subprocess.run(["callgrind_control", "-z", str(d.proc.pid)],
                       stdout=subprocess.DEVNULL, check=True)
        time.sleep(a.profile_window)
        subprocess.run(["callgrind_control", "-d", str(d.proc.pid)],
                       stdout=subprocess.DEVNULL, check=True)
        p1, _ = d.probes()
        d.stop()
        dumps = sorted(glob.glob(out + ".%d.*" % d.proc.pid))
        if not dumps:
            self.row("2 profile", "sched + store share", "no callgrind dump")
            return
        incl = callgrind_inclusive(dumps[-1])
        total = incl["PROGRAM TOTALS"]
        g = incl.get
        # The workers' own work besides the probe is the scheduler's
        # (hand-over, locks) and the store's (store_put, result_clear).
        worker = g("pool_main", 0) - g("probe_run", 0)
        sched = g("sched_run", 0) + g("sched_apply", 0)
        store = g("store_put", 0)
        reads = sum(v for k, v in incl.items()
                    if k.startswith("store_") and k not in ("store_put",))
        share = (sched + worker + reads) / total
        self.results["profile"] = dict(
            total=total, sched_run=g("sched_run", 0), worker_extra=worker,
            store_put=store, store_other=reads, probe_run=g("probe_run", 0),
            metrics_render=g("metrics_render", 0), probes=p1 - p0)
        self.row("2 profile", "sched + store share of the daemon's "
                 "instructions (%d probes, callgrind)" % (p1 - p0),
                 "%.2f%% (sched_run %.2f%%, workers' hand-over %.2f%% of "
                 "which store_put %.2f%%, probe_run %.1f%%)" %
                 (100 * share, 100 * g("sched_run", 0) / total,
                  100 * worker / total, 100 * store / total,
                  100 * g("probe_run", 0) / total),
                 "< 5%", share < 0.05)

    # ---- 3. Memory -------------------------------------------------------

    def section_memory(self):
        a = self.args
        sec = "3 memory"
        bb = Blackbox(self)
        time.sleep(2)
        self.row(sec, "blackbox_exporter idle RSS", mem(bb.proc.pid))
        bb.stop()
        self.raw(200)
        self.row(sec, "floor: raw GnuTLS loop after 200 probes (GnuTLS, "
                 "libc and the rest of the shared libraries it maps)",
                 "%s (anonymous %s)" % (mib(self.raw_rss[0]),
                                        mib(self.raw_rss[1])))
        for n, conc in ((100, 16), (1000, 32)):
            log("memory: %d capsules at 1s until 121 rounds" % n)
            d = Daemon(self, n, "1s", concurrency=conc)
            d.start()
            t0 = time.monotonic()
            least = d.wait_probes(121, a.memory_wait, every=5)
            rss = d.rss()
            anon = proc_rss(d.proc.pid, "RssAnon")
            text = mem(d.proc.pid)
            d.stop()
            goal, verdict = "", None
            if n == 100:
                goal, verdict = "< 5 MB", rss < 5e6
            self.row(sec, "RSS, %d capsules, history 120, after %d rounds"
                     " (%.0f s)" % (n, least, time.monotonic() - t0),
                     text, goal, verdict if least >= 120 else False)
            if n == 100:
                # The floor above is already past 5 MB: read the goal as
                # gemwatch's own memory too.
                self.row(sec, "anonymous memory (its own: heap, stacks), "
                         "%d capsules, history 120" % n, mib(anon),
                         "< 5 MB, read without the shared libraries",
                         anon < 5e6 and least >= 120)

        n = a.capsules
        log("memory: %d capsules at 1s (as fast as the machine goes)" % n)
        d = Daemon(self, n, "1s", concurrency=a.concurrency * 2)
        d.start()
        t0 = time.monotonic()
        points = []
        while True:
            time.sleep(20)
            total, least = d.probes()
            points.append((total / n, d.rss()))
            text = mem(d.proc.pid)
            log("memory: %.1f rounds, RSS %s" % (points[-1][0],
                                                  mib(points[-1][1])))
            if least >= 121:
                break
            if not a.full and time.monotonic() - t0 > a.memory_wait:
                break
        d.stop()
        # On the way: a history grows as results come, so RSS does too.
        for mark in (10, 30, 60):
            at = [p for p in points if p[0] >= mark]
            if at:
                self.row(sec, "RSS, %d capsules, after %.1f rounds" %
                         (n, at[0][0]), mib(at[0][1]))
        rounds, rss = points[-1]
        if rounds >= 120:
            self.row(sec, "RSS, %d capsules, history 120, after %.0f rounds"
                     % (n, rounds), text, "≤ 64 MiB", rss <= 64 << 20)
            return
        # Linear fit over the points past the first round, or past the
        # round where a history takes its full room when there are two
        # (its segments are smaller than a page and side by side with
        # other capsules', so their pages are touched from then on).
        pts = [p for p in points if p[0] >= FULL_ROOM_ROUND]
        if len(pts) < 2:
            pts = [p for p in points if p[0] >= 1] or points
        if len(pts) >= 2:
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            mx, my = statistics.mean(xs), statistics.mean(ys)
            sxx = sum((x - mx) ** 2 for x in xs)
            slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx \
                if sxx else 0
            est = my + slope * (120 - mx)
        else:
            slope, est = 0, rss
        self.row(sec, "RSS, %d capsules, after %.1f rounds (measured)" %
                 (n, rounds), text)
        self.row(sec, "RSS, %d capsules, history 120: EXTRAPOLATED "
                 "linearly to 120 rounds (%.0f KiB per round)" %
                 (n, slope / 1024), mib(est), "≤ 64 MiB", est <= 64 << 20)

    # ---- 4. wrk on /metrics at 100 ---------------------------------------

    def section_endpoint(self):
        if shutil.which("wrk") is None:
            self.row("4 endpoint", "wrk", "wrk missing (apt-get install wrk)")
            return
        d = Daemon(self, 100, "10s")
        d.start()
        d.wait_probes(1, 30, every=1)
        _, _, size = d.metrics()
        c0 = d.cpu()
        p = subprocess.run(["wrk", "-c50", "-t2", "-d10s", d.base + "/metrics"],
                           stdout=subprocess.PIPE, text=True)
        c1 = d.cpu()
        d.stop()
        out = p.stdout
        m = re.search(r"Requests/sec:\s*([0-9.]+)", out)
        rps = float(m.group(1)) if m else 0
        errs = re.findall(r"(Socket errors:.*|Non-2xx or 3xx responses:.*)",
                          out)
        self.row("4 endpoint", "wrk -c50 -t2 -d10s /metrics, 100 capsules "
                 "(%d bytes each)" % size,
                 "%.0f req/s%s" % (rps, "; " + "; ".join(errs) if errs else
                                   ", no errors"),
                 "≥ 5000 req/s, no errors", rps >= 5000 and not errs)
        if rps > 0:
            self.row("4 endpoint", "gemwatch CPU per /metrics request under "
                     "wrk (wrk shares the 2 cores)",
                     "%.0f µs (%.0f req/s per core)" %
                     (1e6 * (c1 - c0) / (rps * 10), rps * 10 / (c1 - c0)))

    # ---- 6. A simulated Geminispace (issue 11) ---------------------------

    def gs_resolution(self, dns):
        """How the daemon reaches dnsmasq: ("resolver", extra lines, ())
        when it has the `resolver` directive, ("namespace", (), wrapper)
        when it does not but a private /etc/resolv.conf can be mounted for
        it (root), else (None, why, None)."""
        if dns.why:
            return None, dns.why, None
        conf = os.path.join(self.dir, "resolver-check.conf")
        base = "listen 127.0.0.1:%d\nstate-dir %s\n" % (free_port(),
                                                        self.dir)
        line = "resolver %s:%d" % (dns.addr, dns.port)
        for text in (base, base + line + "\n"):
            with open(conf, "w") as f:
                f.write(text)
            p = subprocess.run([self.args.gemwatch, "-n", "-f", conf],
                               stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
            if p.returncode != 0 and text == base:
                raise SystemExit("bench: gemwatch -n rejects a minimal "
                                 "configuration: " + p.stdout.strip())
        if p.returncode == 0:
            return "resolver", [line], ()
        if dns.port == 53 and self.ns_wrapper(dns) is not None:
            return "namespace", [], self.ns_wrapper(dns)
        return None, ("this gemwatch has no `resolver` directive and no "
                      "private /etc/resolv.conf can be mounted (needs root)"),\
            None

    def ns_wrapper(self, dns):
        """A command prefix that runs a program with an /etc/resolv.conf
        naming dnsmasq, in a mount namespace of its own (same PID)."""
        if getattr(self, "_ns", False) is not False:
            return self._ns
        self._ns = None
        rc = os.path.join(self.dir, "resolv.conf")
        with open(rc, "w") as f:
            f.write("nameserver %s\n" % dns.addr)
        w = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             'mount --bind "$0" /etc/resolv.conf && exec "$@"', rc]
        if shutil.which("unshare") and subprocess.run(
                w + ["grep", "-q", dns.addr, "/etc/resolv.conf"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL).returncode == 0:
            self._ns = w
        return self._ns

    def gs_scrape(self, d):
        t_b, c_b = time.monotonic(), d.cpu()
        ttfb = []
        st, body, secs = http_get(d.base + "/metrics", timeout=120,
                                  ttfb=ttfb)
        t_a, c_a = time.monotonic(), d.cpu()
        if st != 200:
            raise SystemExit("bench: /metrics answered %r" % st)
        sc = scrape_parse(body)
        sc.update(t_b=t_b, c_b=c_b, t_a=t_a, c_a=c_a, when=time.time(),
                  ttfb=ttfb[0] if ttfb else secs, whole=secs, size=len(body))
        return sc

    def gs_run(self, space, dns, n, names, extra, wrapper):
        a = self.args
        sec = "6 geminispace"
        interval, timeout, rounds = a.gs_interval, a.gs_timeout, a.gs_rounds
        form = "host names" if names else "IP literals"
        what = "%s capsules, %s" % (count(n), form)
        later = "round 2" if rounds == 2 else "rounds 2–%d" % rounds
        caps = space.caps[:n]
        d = Daemon(self, n, "%gs" % interval, concurrency=None, history=None,
                   timeout="%gs" % timeout, extra=extra, wrapper=wrapper,
                   capsules=[(space.url(c, names), c["label"]) for c in caps],
                   tag="gs-%d-%s" % (n, "names" if names else "literals"))
        log("geminispace: %s, interval %gs, timeout %gs, %d rounds" %
            (what, interval, timeout, rounds))
        load0 = os.getloadavg()
        s0, n0 = space.cpu(), dns.cpu()
        startup = d.start()
        t0 = time.monotonic()
        sampler = Sampler(d.proc.pid)
        sampler.start()
        scrapes = []
        hwm_first = 0
        for k in range(1, rounds + 1):
            time.sleep(max(0, t0 + k * interval - time.monotonic()))
            if k == 1:
                hwm_first = proc_rss(d.proc.pid, "VmHWM")
            scrapes.append(self.gs_scrape(d))
            log("geminispace: round %d: %s probes finished in all" %
                (k, count(sum(scrapes[-1]["probes"].values()))))
        hwm = proc_rss(d.proc.pid, "VmHWM")
        sampler.stop()
        s1, n1 = space.cpu(), dns.cpu()
        t_end = time.monotonic()
        renders = [self.gs_scrape(d) for _ in range(3)]
        d.stop()
        load1 = os.getloadavg()
        first, last = scrapes[0], scrapes[-1]

        # Probes per round, from the sums of gemini_probes_total.
        totals = [0] + [sum(s["probes"].values()) for s in scrapes]
        per = [totals[k] - totals[k - 1] for k in range(1, rounds + 1)]
        ok = all(0.995 * n <= p <= 1.005 * n for p in per[1:])
        self.row(sec, "%s: probes per round of %gs (gemini_probes_total "
                 "deltas), rounds 1–%d" % (what, interval, rounds),
                 "%s of %s configured (%s)" % (
                     " / ".join(count(p) for p in per), count(n),
                     " / ".join("%.1f%%" % (100 * p / n) for p in per)),
                 "100% every round (from round 2: the first ends with "
                 "probes in flight)", ok)

        # Lagging: no probe finished within interval + timeout + 5 s.
        slack = interval + timeout + 5
        never = sum(1 for c in caps if not last["probes"].get(c["label"]))
        lagging = sum(1 for c in caps if last["probes"].get(c["label"]) and
                      last["when"] - last["ts"].get(c["label"], 0) > slack)
        least = min(last["probes"].get(c["label"], 0) for c in caps)
        self.row(sec, "%s: capsules lagging (no probe finished in the last "
                 "%g s) / never probed, after %g s" % (
                     what, slack, rounds * interval),
                 "%s / %s (fewest probes of one capsule: %d)" % (
                     count(lagging), count(never), least),
                 "0 / 0", lagging == 0 and never == 0)

        words, late = lag_summary(first, last)
        if words is None:
            self.row(sec, "%s: lag metrics (gemwatch_probe_lag_seconds, "
                     "_probes_in_flight, _probes_late_total)" % what,
                     "not exposed by this gemwatch")
        else:
            self.row(sec, "%s: lag metrics, %s" % (what, later),
                     words, "0 late" if late is not None else "",
                     None if late is None else late == 0)
        with open(d.logpath, errors="replace") as f:
            lines = [x.strip() for x in f if re.search(r"\blate\b|behind",
                                                       x)]
        if lines:
            self.row(sec, "%s: daemon log lines about lateness" % what,
                     "%d, the first: %s" % (len(lines), lines[0][:200]))

        goals = GS_GOALS.get(n)
        # CPU over rounds 2..R, from after the first scrape to before the
        # last: no scrape inside.
        cpu = (last["c_b"] - first["c_a"]) / (last["t_b"] - first["t_a"])
        probes_in = totals[rounds] - totals[1]
        cpu1 = first["c_b"] / (first["t_b"] - t0 + startup)
        self.row(sec, "%s: daemon CPU, %s (/proc/PID/stat, scrapes "
                 "excluded)" % (what, later),
                 "%.1f%% of one core (%s per probe); round 1, with "
                 "start-up: %.1f%%" % (
                     100 * cpu, ms((last["c_b"] - first["c_a"]) /
                                   max(1, probes_in)), 100 * cpu1),
                 "≤ %.0f%% of one core" % (100 * goals[0]) if goals else "",
                 cpu <= goals[0] if goals else None)
        self.row(sec, "%s: peak RSS (VmHWM) over rounds 1–%d, /metrics "
                 "scraped once a round" % (what, rounds),
                 "%s (before the first scrape: %s)" % (mib(hwm),
                                                       mib(hwm_first)),
                 "≤ %s" % mib(goals[1]) if goals else "",
                 hwm <= goals[1] if goals else None)
        tgoal = goals[2] if goals else None
        self.row(sec, "%s: threads / open fds (most seen)" % what,
                 "%d / %d" % (sampler.threads, sampler.fds),
                 "≤ %d threads" % tgoal if tgoal else "",
                 sampler.threads <= tgoal if tgoal else None)
        # A text over 4 MiB is streamed: its first byte comes at once,
        # and the whole fetch says what the render costs.
        self.row(sec, "%s: /metrics render, to the first byte / whole "
                 "fetch (medians of 3) / size" % what,
                 "%s / %s / %.1f MB" % (
                     ms(median([r["ttfb"] for r in renders])),
                     ms(median([r["whole"] for r in renders])),
                     renders[0]["size"] / 1e6))

        # Verdicts against the simulated behaviours.
        agree = probed = 0
        reasons = {}
        for c in caps:
            v = last["success"].get(c["label"])
            if v is None:
                continue
            probed += 1
            if (v == 1) == (c["beh"] in GS_ANSWER):
                agree += 1
            for r in last["reasons"].get(c["label"], ()):
                reasons.setdefault(c["beh"], {}).setdefault(r, 0)
                reasons[c["beh"]][r] += 1
        self.row(sec, "%s: latest verdicts matching the simulated behaviour"
                 % what, "%.2f%% of %s probed" % (
                     100 * agree / max(1, probed), count(probed)),
                 "100%", agree == probed and probed > 0)
        ph = last["phases"]
        okcaps = [c["label"] for c in caps if c["beh"] == "ok"]
        self.row(sec, "%s: median phases of the latest probes of the "
                 "healthy capsules (round trips of 20–300 ms, 160 ms on "
                 "average)" % what,
                 ", ".join("%s %s" % (p, ms(median(
                     [ph[p][c] for c in okcaps if c in ph.get(p, {})])))
                     for p in ("resolve", "connect", "tls", "header",
                               "body")))
        self.row(sec, "%s: failure reasons by behaviour (capsules)" % what,
                 "; ".join("%s: %s" % (b, ", ".join(
                     "%s %d" % kv for kv in sorted(reasons[b].items())))
                     for b in sorted(reasons)))
        wall = t_end - t0
        self.row(sec, "%s: start-up %.2f s; simulated space %.1f%%, dnsmasq "
                 "%.1f%% of one core; load average %.1f at the start, %.1f "
                 "at the end" % (what, startup, 100 * (s1 - s0) / wall,
                                 100 * (n1 - n0) / wall, load0[0], load1[0]),
                 "(the machine)")
        self.results.setdefault("geminispace", []).append(dict(
            capsules=n, names=names, per_round=per, lagging=lagging,
            never=never, cpu=cpu, cpu_round1=cpu1, hwm=hwm,
            hwm_first=hwm_first, threads=sampler.threads, fds=sampler.fds,
            render=median([r["ttfb"] for r in renders]),
            agree=agree, probed=probed, late=late, load=[load0, load1]))

    def gs_survey(self, space, dns, wrapper):
        a = self.args
        sec = "6 geminispace"
        n = min(a.gs_survey, len(space.caps))
        goal = "≤ 30 s wall" if n == 5000 else ""
        h = subprocess.run([a.gemwatch, "-h"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True).stdout
        if not re.search(r"\bsurvey\b", h):
            self.row(sec, "gemwatch survey, %s capsules" % count(n),
                     "not available (gemwatch -h lists no survey)", goal)
            return
        names = wrapper is not None
        path = os.path.join(self.dir, "survey.txt")
        with open(path, "w") as f:
            f.write("# the simulated Geminispace, %s capsules\n" % count(n))
            for c in space.caps[:n]:
                f.write("%s:%d\n" % (c["name"] if names else c["addr"],
                                     c["port"]))
        out = os.path.join(self.dir, "survey.out")
        cmd = list(wrapper or ()) + [a.gemwatch, "survey", "-t",
                                     "%g" % a.gs_timeout, path]
        log("geminispace: gemwatch survey of %d capsules" % n)
        t0 = time.monotonic()
        with open(out, "w") as f:
            p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.DEVNULL)
            sampler = Sampler(p.pid)
            sampler.start()
            _, status, ru = os.wait4(p.pid, 0)
            p.returncode = os.waitstatus_to_exitcode(status)
            sampler.stop()
        wall = time.monotonic() - t0
        with open(out, errors="replace") as f:
            lines = f.read().splitlines()
        # Not wait4's ru_maxrss: it keeps the high-water mark from before
        # the exec, when the child was a copy of this (large) Python
        # process, and read 97 MiB for a survey that peaked at 28.
        self.results["survey"] = dict(wall=wall, status=p.returncode,
                                      cpu=ru.ru_utime + ru.ru_stime,
                                      maxrss=sampler.hwm,
                                      tail=lines[-40:])
        self.row(sec, "gemwatch survey -t %g, %s capsules (%s)" % (
            a.gs_timeout, count(n), "host:port names" if names else
            "IP literal:port"),
            "%.1f s wall, %.1f s CPU, peak RSS %s (VmHWM), %d threads; exit "
            "%d, %d lines out" % (wall, ru.ru_utime + ru.ru_stime,
                                  mib(sampler.hwm), sampler.threads,
                                  p.returncode, len(lines)),
            goal, wall <= 30 if goal else None)
        self.survey_tail = lines[-40:]

    def section_geminispace(self):
        a = self.args
        sec = "6 geminispace"
        sizes = [int(x) for x in a.gs_sizes.split(",")]
        forms = a.gs_forms.split(",")
        big = max(sizes + [a.gs_survey])
        log("geminispace: starting %d simulated capsules" % big)
        space = Space(self, big, a.gs_seed)
        mix = space.mix
        self.row(sec, "the simulated Geminispace (seed %d): %s capsules, "
                 "round trips of 20–300 ms imposed twice" % (
                     a.gs_seed, count(big)),
                 ", ".join("%s %s" % (k, count(v)) for k, v in mix.items()))
        dns = Dns(self, space, a.gs_dns_ttl)
        how, extra, wrapper = self.gs_resolution(dns)
        if how == "resolver":
            text = "dnsmasq on %s:%d, named by the `resolver` directive" % (
                dns.addr, dns.port)
        elif how == "namespace":
            text = ("this gemwatch has no `resolver` directive: its own "
                    "/etc/resolv.conf (a private mount namespace) names "
                    "dnsmasq on %s:53; resolved by glibc" % dns.addr)
        else:
            text = "host names not benchmarked: " + extra
        self.row(sec, "name resolution for host names (dnsmasq TTL %d s)" %
                 a.gs_dns_ttl, text)
        for n in sizes:
            for form in forms:
                if form == "names" and how is None:
                    continue
                self.gs_run(space, dns, n, form == "names",
                            extra if form == "names" else [],
                            wrapper if form == "names" else ())
        ns = self.ns_wrapper(dns) if not dns.why and dns.port == 53 else None
        self.gs_survey(space, dns, ns)
        stats = space.stop()
        dns.stop()
        self.row(sec, "the simulated Geminispace's own account", (
            "%s connections accepted, %s handshakes, %s responses, at most "
            "%s open at once; %s stray, %s out of fds; CPU %.1f s" % (
                count(stats.get("accepted", 0)),
                count(stats.get("handshakes", 0)),
                count(stats.get("responses", 0)),
                count(stats.get("open_max", 0)),
                stats.get("stray", "?"), stats.get("out_of_fds", "?"),
                float(stats.get("cpu_user", 0)) +
                float(stats.get("cpu_sys", 0)))))

    def table(self):
        lines = ["| section | figure | measured | goal | verdict |",
                 "|---|---|---|---|---|"]
        # By section (the sections run in another order).
        for r in sorted(self.rows, key=lambda r: r[0].split()[0]):
            lines.append("| " + " | ".join(r) + " |")
        return "\n".join(lines)


def phases_of(results):
    """Median of each phase (and total) over JSON results."""
    out = {}
    for p in PHASES:
        if p == "total":
            v = [r["durations"]["total"] for r in results]
        else:
            v = [r["durations"][p] for r in results
                 if r["durations"].get(p) is not None]
        out[p] = median(v)
    return out


def callgrind_inclusive(path):
    """{function name: inclusive Ir} from callgrind_annotate."""
    p = subprocess.run(["callgrind_annotate", "--inclusive=yes",
                        "--threshold=100", path],
                       stdout=subprocess.PIPE, text=True, check=True)
    out = {}
    for line in p.stdout.splitlines():
        m = re.match(r"^\s*([0-9,]+)\s+(?:\([^)]*\)\s+)?(.*)$", line)
        if not m:
            continue
        v = int(m.group(1).replace(",", ""))
        what = m.group(2).strip()
        if what.startswith("PROGRAM TOTALS"):
            out["PROGRAM TOTALS"] = v
            continue
        fn = what.split(" [")[0]
        fn = fn.rsplit(":", 1)[-1].strip()
        if fn and fn not in out:
            out[fn] = v
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gemwatch", required=True)
    ap.add_argument("--gemserver", required=True)
    ap.add_argument("--rawloop", required=True)
    ap.add_argument("--blackbox",
                    default=shutil.which("prometheus-blackbox-exporter") or
                    shutil.which("blackbox_exporter") or "")
    ap.add_argument("--geminispace", default="",
                    help="the simulated Geminispace (tests/bench/geminispace)")
    ap.add_argument("--dnsmasq", default="")
    ap.add_argument("--sections",
                    default="cpu,scale,profile,memory,endpoint,geminispace")
    ap.add_argument("--probes", type=int, default=2000,
                    help="probes per prober in the cpu section")
    ap.add_argument("--clients", type=int, default=4,
                    help="concurrent HTTP clients driving blackbox_exporter")
    ap.add_argument("--rate", type=float, default=100,
                    help="probes/s of the paced runs in the cpu section")
    ap.add_argument("--cpu-hosts", default="127.0.0.1,localhost",
                    help="cpu: what the server is named by, each in turn "
                    "(an IP literal, a host name)")
    ap.add_argument("--cpu-capsules", type=int, default=100,
                    help="capsules of the daemon in the cpu section")
    ap.add_argument("--capsules", type=int, default=10000)
    ap.add_argument("--interval", type=float, default=30,
                    help="interval of the scale run, seconds")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--window", type=float, default=60,
                    help="seconds over which the probe rate is measured")
    ap.add_argument("--profile-interval", type=float, default=300)
    ap.add_argument("--profile-window", type=float, default=60)
    ap.add_argument("--memory-wait", type=float, default=600,
                    help="longest wait for a full history, seconds")
    ap.add_argument("--full", action="store_true",
                    help="fill the history at 10,000 capsules, however long")
    ap.add_argument("--gs-sizes", default="5000,20000",
                    help="geminispace: capsule counts, comma-separated")
    ap.add_argument("--gs-forms", default="names,literals",
                    help="geminispace: capsule URLs with host names, IP "
                    "literals or both")
    ap.add_argument("--gs-interval", type=float, default=60)
    ap.add_argument("--gs-timeout", type=float, default=10)
    ap.add_argument("--gs-rounds", type=int, default=3)
    ap.add_argument("--gs-survey", type=int, default=5000,
                    help="geminispace: capsules given to gemwatch survey")
    ap.add_argument("--gs-seed", type=int, default=1)
    ap.add_argument("--gs-dns-ttl", type=int, default=300,
                    help="geminispace: TTL of dnsmasq's answers, seconds")
    ap.add_argument("--quick", action="store_true",
                    help="the geminispace section only (unless --sections "
                    "says otherwise) at 500 capsules, interval 20 s, two "
                    "rounds: a check of the harness in about two minutes")
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--keep", action="store_true",
                    help="keep the work directory (logs, configurations)")
    a = ap.parse_args()
    if a.quick:
        if "--sections" not in sys.argv:
            a.sections = "geminispace"
        a.gs_sizes, a.gs_interval, a.gs_rounds, a.gs_survey = \
            "500", 20, 2, 500
    if a.gs_rounds < 2:
        raise SystemExit("bench: --gs-rounds must be at least 2")
    sections = a.sections.split(",")
    if ("cpu" in sections or "memory" in sections) and not a.blackbox:
        raise SystemExit("bench: blackbox_exporter not found (apt-get install"
                         " prometheus-blackbox-exporter)")

    b = Bench(a)
    started = time.time()
    load0 = os.getloadavg()[0]
    try:
        for s in ("cpu", "scale", "profile", "memory", "endpoint",
                  "geminispace"):
            if s in sections:
                getattr(b, "section_" + s)()
    finally:
        _cleanup()
    print("gemwatch benchmark, %s, %d CPUs, %.0f minutes, load average "
          "%.1f at the start, %.1f at the end" %
          (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
           os.cpu_count(), (time.time() - started) / 60, load0,
           os.getloadavg()[0]))
    print()
    print(b.table())
    if getattr(b, "survey_tail", None):
        print()
        print("gemwatch survey, the end of its output:")
        print()
        print("```")
        print("\n".join(b.survey_tail))
        print("```")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(rows=b.rows, results=b.results), f, indent=1)
    if a.keep:
        log("kept %s" % b.dir)
    else:
        shutil.rmtree(b.dir, ignore_errors=True)
    return 0 if all(r[4] != "**missed**" for r in b.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
