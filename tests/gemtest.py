"""Shared helpers for gemwatch's integration tests (TAP output).

Starts the test Gemini server and the daemon on loopback, runs the probe
command, fetches the HTTP endpoint and parses the Prometheus text format.
Every child process is stopped when the test exits, and every wait is
bounded.
"""
import atexit
import json
import os
import re
import select
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

GEMWATCH = os.environ.get("GEMWATCH", "./gemwatch")
GEMSERVER = os.environ.get("GEMSERVER", "./tests/gemserver")
TOP_SRCDIR = os.environ.get("TOP_SRCDIR", ".")
# "valgrind ..." under make check-valgrind: wraps every gemwatch we start.
WRAPPER = shlex.split(os.environ.get("VALGRIND", "") or "")
SLOW = 6.0 if WRAPPER else 1.0   # valgrind slows everything down


def _sanitized():
    try:
        with open(GEMWATCH, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


# Built with --enable-asan: freed memory sits in ASan's quarantine, so RSS
# says nothing about leaks (LeakSanitizer does that at exit).
SANITIZED = _sanitized()

_children = []
_n = 0
_failed = 0


def _cleanup():
    for p in _children:
        if p.poll() is None:
            p.kill()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


atexit.register(_cleanup)


# ---- TAP -----------------------------------------------------------------

def ok(cond, name, detail=None):
    global _n, _failed
    _n += 1
    print(("ok %d - %s" if cond else "not ok %d - %s") % (_n, name))
    if not cond:
        _failed += 1
        if detail is not None:
            for line in str(detail).splitlines()[:40]:
                print("#   " + line)
    sys.stdout.flush()
    return cond


def is_(got, want, name):
    return ok(got == want, name, "got %r, want %r" % (got, want))


def diag(msg):
    for line in str(msg).splitlines():
        print("# " + line)
    sys.stdout.flush()


def skip_all(why):
    print("1..0 # SKIP " + why)
    sys.exit(0)


def done():
    print("1..%d" % _n)
    _cleanup()
    sys.exit(1 if _failed else 0)


# ---- processes -----------------------------------------------------------

def tmpdir():
    d = tempfile.mkdtemp(prefix="gemwatch-test-")
    atexit.register(lambda: subprocess.run(["rm", "-rf", d]))
    return d


def free_port(family=socket.AF_INET):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class GemServer:
    """tests/gemserver with the given options; .port once it listens."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([GEMSERVER, *args],
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        _children.append(self.proc)
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            raise RuntimeError("gemserver did not start: %r" % line)
        self.port = int(line)

    def url(self, path="/", host="127.0.0.1"):
        if ":" in host:
            host = "[%s]" % host
        return "gemini://%s:%d%s" % (host, self.port, path)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def make_cert(name="localhost"):
    """(key, certificate) files, fresh and self-signed for name: the test
    server writes them, then stops."""
    d = tmpdir()
    key, crt = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
    GemServer("-n", name, "-K", key, "-C", crt).stop()
    return key, crt


class NotifyRecorder:
    """A notify command (.path) that keeps each run's environment and
    stdin in a directory of its own under d."""

    def __init__(self, d):
        self.dir = os.path.join(d, "rec")
        os.mkdir(self.dir)
        self.path = os.path.join(d, "record.sh")
        with open(self.path, "w") as f:
            f.write("#!/bin/sh\n"
                    "f=%s/$(date +%%s%%N).$$\n"
                    "env -0 >\"$f.env\"\n"
                    "cat >\"$f.tmp\" && mv \"$f.tmp\" \"$f.json\"\n"
                    % self.dir)
        os.chmod(self.path, 0o755)

    def events(self, capsule=None):
        """[(env dict, JSON document)], in the order the runs started."""
        out = []
        for name in sorted(os.listdir(self.dir),
                           key=lambda n: int(n.split(".")[0])):
            if not name.endswith(".json"):
                continue
            base = os.path.join(self.dir, name[:-5])
            with open(base + ".env", "rb") as f:
                env = dict(kv.split("=", 1) for kv in
                           f.read().decode().split("\0") if "=" in kv)
            with open(base + ".json") as f:
                doc = json.load(f)
            if capsule is None or env.get("GEMWATCH_CAPSULE") == capsule:
                out.append((env, doc))
        return out

    def names(self, capsule):
        return [e["GEMWATCH_EVENT"] for e, _ in self.events(capsule)]


class Backend:
    """A plain-TCP Gemini backend, for a TLS terminator in front of it
    (tests/gemserver -m terminator, nginx): .port once it listens.

      /stall?bytes=N&ms=M   a header and N bytes, then nothing for M ms
                            (default 60000, or until the peer leaves)
      /trickle?ms=M&n=K     a header, then K bytes one every M ms
      /page?bytes=N         a header and N bytes at once
    Each then closes with a FIN, or with a reset given &end=reset.
    """

    HOLD = 60.0

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.running = True
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()
        atexit.register(self.stop)

    def stop(self):
        self.running = False
        self.thread.join(timeout=5)
        self.sock.close()

    def _accept(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,),
                             daemon=True).start()

    def _quiet(self, conn, seconds):
        """Wait, reading and dropping what comes; False once the peer has
        gone."""
        end = time.monotonic() + seconds
        while self.running:
            left = end - time.monotonic()
            if left <= 0:
                return True
            r, _, _ = select.select([conn], [], [], min(left, 0.2))
            if r:
                try:
                    if not conn.recv(4096):
                        return False
                except OSError:
                    return False
        return False

    def _serve(self, conn):
        with conn:
            conn.settimeout(10)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            line = b""
            try:
                while b"\n" not in line and len(line) <= 1026:
                    data = conn.recv(1026)
                    if not data:
                        return
                    line += data
            except OSError:
                return
            url = urllib.parse.urlsplit(line.split(b"\r\n")[0].decode(
                "utf-8", "replace"))
            q = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}

            def num(k, d):
                return int(q[k]) if q.get(k, "").isdigit() else d
            try:
                conn.sendall(b"20 text/gemini\r\n")
                if url.path in ("/stall", "/page"):
                    n = num("bytes", 1000)
                    conn.sendall(b"".join(b"%063d\n" % i
                                          for i in range(n // 64 + 1))[:n])
                    if url.path == "/stall" and not self._quiet(
                            conn, num("ms", self.HOLD * 1000) / 1000):
                        return
                elif url.path == "/trickle":
                    for i in range(num("n", 5)):
                        if not self._quiet(conn, num("ms", 300) / 1000):
                            return
                        conn.sendall(b"x")
                if q.get("end") == "reset":
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    struct.pack("ii", 1, 0))
            except OSError:
                return


class DnsServer(threading.Thread):
    """A DNS server on 127.0.0.1 (UDP) for a test's own names. table maps
    a name (lower case) to its addresses: IPv4 ones answer A queries, IPv6
    ones AAAA; a name not in it is NXDOMAIN. Without a table every name is
    127.0.0.1. answer=False: no query is ever answered; drop_first: the
    first query of each name goes unanswered. names: the names asked."""

    def __init__(self, table=None, answer=True, drop_first=False):
        super().__init__(daemon=True)
        self.table = table
        self.answer = answer
        self.drop_first = drop_first
        self.names = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.start()

    def run(self):
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            if len(data) < 12:
                continue
            i, labels = 12, []
            while i < len(data) and data[i] != 0:
                labels.append(data[i + 1:i + 1 + data[i]].decode("ascii",
                                                                 "replace"))
                i += 1 + data[i]
            qend = i + 5
            if qend > len(data):
                continue
            qtype = struct.unpack("!H", data[i + 1:i + 3])[0]
            name = ".".join(labels).lower()
            self.names.append(name)
            if not self.answer or (self.drop_first and
                                   self.names.count(name) == 1):
                continue
            addrs = (["127.0.0.1"] if self.table is None
                     else self.table.get(name))
            rdata = []
            for a in addrs or []:
                if qtype == 1 and ":" not in a:
                    rdata.append((1, socket.inet_pton(socket.AF_INET, a)))
                elif qtype == 28 and ":" in a:
                    rdata.append((28, socket.inet_pton(socket.AF_INET6, a)))
            flags = b"\x81\x80" if addrs is not None else b"\x81\x83"
            reply = (data[:2] + flags +
                     struct.pack("!HHHH", 1, len(rdata), 0, 0) +
                     data[12:qend])
            for t, r in rdata:
                reply += (b"\xc0\x0c" + struct.pack("!HHIH", t, 1, 60,
                                                    len(r)) + r)
            self.sock.sendto(reply, peer)


class MollyBrown:
    """molly-brown (a real Gemini server no one here wrote) serving the
    directory docs on a free port of loopback, as localhost, with a key and
    certificate the test server writes; the test is skipped where it is not
    installed. port; access_log: the path of its access log; proc: the
    process."""

    def __init__(self, docs):
        molly = shutil.which("molly-brown")
        if molly is None:
            skip_all("molly-brown is not installed")
        d = tmpdir()
        key, crt = make_cert()
        self.port = free_port()
        self.access_log = os.path.join(d, "access.log")
        conf = os.path.join(d, "molly.conf")
        with open(conf, "w") as f:
            f.write('Port = %d\nHostname = "localhost"\nCertPath = "%s"\n'
                    'KeyPath = "%s"\nDocBase = "%s"\nAccessLog = "%s"\n'
                    'ErrorLog = "%s/error.log"\n'
                    % (self.port, crt, key, docs, self.access_log, d))
        self.proc = subprocess.Popen([molly, "-c", conf],
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        _children.append(self.proc)
        end = time.monotonic() + 20
        while time.monotonic() < end:
            try:
                socket.create_connection(("127.0.0.1", self.port),
                                         timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)


def run_probe(*args, timeout=60):
    """Run `gemwatch probe ARGS`; returns (exit status, stdout, stderr)."""
    p = subprocess.run([*WRAPPER, GEMWATCH, "probe", *args],
                       capture_output=True, text=True,
                       timeout=timeout * SLOW)
    return p.returncode, p.stdout, p.stderr


def probe_json(url, *opts, timeout=60):
    """Probe one URL with -j: (exit status, result dict, elapsed seconds)."""
    t0 = time.monotonic()
    rc, out, err = run_probe("-j", *opts, url, timeout=timeout)
    elapsed = time.monotonic() - t0
    try:
        doc = json.loads(out)
        return rc, doc["results"][0], elapsed
    except (ValueError, KeyError, IndexError):
        raise RuntimeError("bad probe output (rc %d): %r %r" % (rc, out, err))


class Daemon:
    """The daemon on a temporary configuration and state directory."""

    def __init__(self, conf_text, port=None, args=("-v",), check_start=True,
                 run_as=None, preexec=None):
        """run_as: a pwd entry; the daemon is started as that user (by a
        root test), without the `user` directive. preexec: called in the
        child before it runs gemwatch."""
        self.dir = tmpdir()
        if run_as is not None:
            os.chmod(self.dir, 0o755)
        self.port = port or free_port()
        self.conf = os.path.join(self.dir, "gemwatch.conf")
        self.log = os.path.join(self.dir, "gemwatch.log")
        self.write_conf(conf_text)
        self.logf = open(self.log, "w")
        def child():
            if preexec is not None:
                preexec()
            if run_as is not None:
                os.setgroups([run_as.pw_gid])
                os.setgid(run_as.pw_gid)
                os.setuid(run_as.pw_uid)
        self.proc = subprocess.Popen([*WRAPPER, GEMWATCH, *args, "-f",
                                      self.conf],
                                     stdout=self.logf, stderr=self.logf,
                                     preexec_fn=child)
        _children.append(self.proc)
        if check_start:
            self.wait_http()

    def write_conf(self, conf_text):
        text = conf_text
        if "listen " not in text:
            text = "listen 127.0.0.1:%d\n" % self.port + text
        if "state-dir" not in text:
            text = "state-dir %s/state\n" % self.dir + text
        with open(self.conf, "w") as f:
            f.write(text)

    def base(self):
        return "http://127.0.0.1:%d" % self.port

    def wait_http(self, timeout=20):
        end = time.monotonic() + timeout * SLOW
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("daemon exited: %s" % self.logtext())
            try:
                # 503 "starting" until the configuration is applied.
                if self.get("/healthz", timeout=2)[0] == 200:
                    return
                time.sleep(0.05)
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("daemon did not answer: %s" % self.logtext())

    def get(self, path, method="GET", timeout=10, headers=None):
        """(status, headers, body bytes); HTTP errors are returned too."""
        req = urllib.request.Request(self.base() + path, method=method,
                                     headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout * SLOW) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def json(self, path):
        status, _, body = self.get(path)
        if status != 200:
            raise RuntimeError("%s: HTTP %d" % (path, status))
        return json.loads(body)

    def metrics(self):
        status, _, body = self.get("/metrics")
        return parse_metrics(body.decode())

    def wait_for(self, pred, timeout=30, what="condition"):
        """Poll /metrics until pred(metrics) is true; returns the metrics."""
        end = time.monotonic() + timeout * SLOW
        m = {}
        while time.monotonic() < end:
            m = self.metrics()
            if pred(m):
                return m
            time.sleep(0.2)
        diag("timed out waiting for %s" % what)
        return m

    def signal(self, sig):
        self.proc.send_signal(sig)

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=20):
        """SIGTERM; returns (exit status, seconds to exit)."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.logf.close()
        return rc, time.monotonic() - t0

    def logtext(self):
        if not self.logf.closed:
            self.logf.flush()
        with open(self.log) as f:
            return f.read()


# ---- Prometheus text format ----------------------------------------------

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def _unescape(v):
    return re.sub(r'\\(.)', lambda m: {"n": "\n"}.get(m.group(1),
                                                     m.group(1)), v)


def parse_metrics(text):
    """{(name, frozenset(labels.items())): float}"""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise ValueError("bad sample line: %r" % line)
        labels = {k: _unescape(v) for k, v in _LABEL.findall(m.group(3) or "")}
        out[(m.group(1), frozenset(labels.items()))] = float(m.group(4))
    return out


def metric(m, name, **labels):
    """The value of the sample with exactly these labels, or None."""
    return m.get((name, frozenset(labels.items())))


def find(m, name, **labels):
    """Samples of name whose labels include these: {labels dict: value}."""
    res = []
    for (n, ls), v in m.items():
        d = dict(ls)
        if n == name and all(d.get(k) == val for k, val in labels.items()):
            res.append((d, v))
    return res
