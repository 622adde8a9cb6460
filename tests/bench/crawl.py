"""crawl.py - the crawl's benchmark (issue 12); not part of make check.

    python3 tests/bench/crawl.py [--pages 1000] [--capsules 10] [--checks 50]

Needs a built tree (gemwatch, tests/gemserver) and molly-brown. Makes a
capsule of PAGES pages (a tree of text/gemini pages, about 1 kB each),
serves it with molly-brown on CAPSULES ports of loopback, and prints:

1. pages/s of `gemwatch crawl -d 0` (one crawl, one connection at a time);
2. the daemon's resident memory while it crawls the CAPSULES capsules of
   PAGES pages each at once (crawl-delay 0), and once they are done;
3. whether page checks of CHECKS other capsules (tests/gemserver, every
   second) are delayed by those crawls: their start lag and probe duration
   while the crawls run, beside the same daemon without crawl=.

GEMWATCH, GEMSERVER and BUILDDIR override where programs are.
"""
import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

top = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
build = os.environ.get("BUILDDIR", top)
GEMWATCH = os.environ.get("GEMWATCH", os.path.join(build, "gemwatch"))
GEMSERVER = os.environ.get("GEMSERVER",
                           os.path.join(build, "tests", "gemserver"))
children = []


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=20):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listens on port %d" % port)


def rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def http(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                timeout=30) as r:
        return r.read().decode()


def metrics(port):
    out = {}
    for line in http(port, "/metrics").splitlines():
        m = re.match(r'^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (\S+)$', line)
        if m:
            out[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return out


def make_tree(docs, pages):
    """PAGES pages: index.gmi, then a tree, each page linking to its two
    children, its parent and the index, with some 1 kB of text."""
    os.makedirs(os.path.join(docs, "p"))
    text = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 16
    with open(os.path.join(docs, "index.gmi"), "w") as f:
        f.write("# index\n%s\n=> p/0.gmi first\n" % text)
    for i in range(pages - 1):
        links = ["=> %d.gmi" % c for c in (2 * i + 1, 2 * i + 2)
                 if c < pages - 1]
        links.append("=> %d.gmi parent" % ((i - 1) // 2 if i else 0))
        links.append("=> ../ index")
        with open(os.path.join(docs, "p", "%d.gmi" % i), "w") as f:
            f.write("# page %d\n%s\n%s\n" % (i, text, "\n".join(links)))


def start_molly(d, docs, key, crt, n):
    molly = shutil.which("molly-brown")
    ports = []
    for i in range(n):
        port = free_port()
        conf = os.path.join(d, "molly%d.conf" % i)
        with open(conf, "w") as f:
            f.write('Port = %d\nHostname = "localhost"\nCertPath = "%s"\n'
                    'KeyPath = "%s"\nDocBase = "%s"\nAccessLog = "%s"\n'
                    'ErrorLog = "%s/error%d.log"\n' %
                    (port, crt, key, docs, os.devnull, d, i))
        children.append(subprocess.Popen(
            [molly, "-c", conf], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL))
        ports.append(port)
    for port in ports:
        wait_port(port)
    return ports


def daemon(d, name, conf_text):
    port = free_port()
    conf = os.path.join(d, name + ".conf")
    with open(conf, "w") as f:
        f.write("listen 127.0.0.1:%d\nstate-dir %s/%s-state\n%s" %
                (port, d, name, conf_text))
    p = subprocess.Popen([GEMWATCH, "-f", conf],
                         stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(d, name + ".log"), "w"))
    children.append(p)
    wait_port(port)
    return p, port


def checks_during(port, checks, until, step=0.5):
    """Sample the page checks until until() is true: (late, lag sum,
    lag count, probe durations)."""
    m0 = metrics(port)
    durs = []
    last = {}
    while not until():
        m = metrics(port)
        for (n, lab), v in m.items():
            if n == "gemini_probe_duration_seconds" and \
                    'capsule="check' in lab:
                t = m.get(("gemini_probe_timestamp_seconds", lab))
                if last.get(lab) != t:
                    last[lab] = t
                    durs.append(v)
        time.sleep(step)
    m1 = metrics(port)

    def delta(name):
        return m1.get((name, ""), 0) - m0.get((name, ""), 0)

    return (delta("gemwatch_probes_late_total"),
            delta("gemwatch_probe_lag_seconds_sum"),
            delta("gemwatch_probe_lag_seconds_count"), durs)


def words(late, lsum, lcount, durs):
    q = statistics.quantiles(durs, n=100) if len(durs) > 1 else [0] * 99
    return ("%d probes started, %d late, mean start lag %.1f ms; probe "
            "duration p50 %.1f ms, p99 %.1f ms, max %.1f ms" %
            (lcount, late, 1000 * lsum / lcount if lcount else 0,
             1000 * q[49], 1000 * q[98], 1000 * max(durs or [0])))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=1000)
    ap.add_argument("--capsules", type=int, default=10)
    ap.add_argument("--checks", type=int, default=50)
    a = ap.parse_args()
    if shutil.which("molly-brown") is None:
        print("crawl.py: molly-brown is not installed", file=sys.stderr)
        return 2
    d = tempfile.mkdtemp(prefix="gemwatch-bench-crawl-")
    try:
        key, crt = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
        gs = subprocess.Popen([GEMSERVER, "-n", "localhost", "-K", key,
                               "-C", crt], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
        gs.stdout.readline()
        gs.terminate()
        gs.wait()
        docs = os.path.join(d, "docs")
        make_tree(docs, a.pages)
        ports = start_molly(d, docs, key, crt, a.capsules)

        # 1. pages/s, one crawl from the command line.
        t0 = time.monotonic()
        p = subprocess.run([GEMWATCH, "crawl", "-j", "-d", "0", "-n",
                            str(a.pages), "gemini://localhost:%d/" %
                            ports[0]], capture_output=True, text=True)
        wall = time.monotonic() - t0
        o = json.loads(p.stdout)
        print("gemwatch crawl -d 0: %d pages in %.2f s: %.0f pages/s "
              "(%d failed, truncated %s)" %
              (o["pages"], wall, o["pages"] / wall, o["failed"],
               o["truncated"]))

        # Page checks of other capsules: tests/gemserver, every second.
        srv = subprocess.Popen([GEMSERVER], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
        children.append(srv)
        sport = int(srv.stdout.readline())
        checks = "".join("capsule gemini://127.0.0.1:%d/ok?%d name=check%d "
                         "interval=1s\n" % (sport, i, i)
                         for i in range(a.checks))

        # 3a. The baseline: the same checks, no crawl.
        p0, hp0 = daemon(d, "base", checks)
        time.sleep(3)
        end = time.monotonic() + 15
        base = checks_during(hp0, a.checks, lambda: time.monotonic() > end)
        p0.terminate()
        p0.wait()

        # 2, 3b. The crawls at once, beside the checks.
        crawls = "".join("capsule gemini://localhost:%d/ name=crawl%d "
                         "crawl=%d crawl-delay=0 crawl-interval=1h\n" %
                         (port, i, a.pages) for i, port in enumerate(ports))
        p1, hp1 = daemon(d, "crawl", checks + crawls)
        rss0 = rss(p1.pid)
        peak = [rss0]
        t0 = time.monotonic()

        def crawled():
            peak[0] = max(peak[0], rss(p1.pid))
            m = metrics(hp1)
            return sum(1 for (n, _), _v in m.items()
                       if n == "gemini_crawl_truncated") >= a.capsules

        during = checks_during(hp1, a.checks, crawled, step=0.2)
        took = time.monotonic() - t0
        outs = [json.loads(http(hp1, "/api/v1/capsules/crawl%d/crawl" % i))
                for i in range(a.capsules)]
        pages = sum(o["pages"] for o in outs)
        time.sleep(1)
        after = rss(p1.pid)
        print("daemon, %d capsules x %d pages crawled at once: %d pages in "
              "%.1f s (%.0f pages/s); RSS %.1f MiB at start, %.1f MiB at "
              "most while crawling, %.1f MiB after" %
              (a.capsules, a.pages, pages, took, pages / took,
               rss0 / 2**20, peak[0] / 2**20, after / 2**20))
        print("page checks of %d other capsules without crawls: %s" %
              (a.checks, words(*base)))
        print("page checks of %d other capsules during the crawls: %s" %
              (a.checks, words(*during)))
        p1.terminate()
        p1.wait()
        return 0
    finally:
        for c in children:
            if c.poll() is None:
                c.kill()
                c.wait()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
