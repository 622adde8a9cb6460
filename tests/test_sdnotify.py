"""systemd notifications (sd_notify, Type=notify) as systemd would see them.

The test plays systemd: it binds an AF_UNIX datagram socket, names it in
NOTIFY_SOCKET with WATCHDOG_USEC=400000, starts the daemon and reads what
arrives. READY=1 comes only when /healthz already answers 200; STATUS=
says how many capsules are up and down; WATCHDOG=1 comes every 200 ms
(half the period) and never more often; a SIGHUP reload is bracketed by
RELOADING=1 with MONOTONIC_USEC (the monotonic clock at the reload) and
READY=1; SIGTERM sends STOPPING=1. The pings come from the main loop:
while that loop is held inside a reload (the configuration file replaced
by a FIFO nobody writes yet, so its open blocks), no WATCHDOG=1 arrives;
once the file is written the reload completes, READY=1 follows and the
pings resume. WATCHDOG_PID naming another process turns the pings off.

Skipped when gemwatch was built without libsystemd (config.h).
"""
import os
import signal
import socket
import time

from gemtest import SLOW, Daemon, GemServer, diag, done, is_, ok, skip_all, \
    tmpdir

builddir = os.environ.get("TOP_BUILDDIR", ".")
try:
    with open(os.path.join(builddir, "config.h")) as f:
        if "#define HAVE_LIBSYSTEMD 1" not in f.read():
            skip_all("built without libsystemd")
except OSError:
    skip_all("no config.h in %s" % builddir)

WATCHDOG_USEC = 400000
PING = WATCHDOG_USEC / 2e6          # seconds between pings: half the period

srv = GemServer()
d = tmpdir()
sockpath = os.path.join(d, "notify.sock")
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(sockpath)


class Notes:
    """Datagrams from the daemon: (receive time, {field: value})."""

    def __init__(self, s):
        self.sock = s
        self.all = []

    def read(self, timeout):
        """One message, or None after timeout seconds."""
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            return None
        fields = dict(line.split("=", 1)
                      for line in data.decode().split("\n") if "=" in line)
        m = (time.monotonic(), fields)
        self.all.append(m)
        return m

    def until(self, pred, timeout):
        """Messages read until one satisfies pred (last), or timeout."""
        got = []
        end = time.monotonic() + timeout * SLOW
        while time.monotonic() < end:
            m = self.read(end - time.monotonic())
            if m is None:
                break
            got.append(m)
            if pred(m[1]):
                break
        return got

    def since(self, mark, pred, timeout):
        """The first message from the mark-th on that satisfies pred,
        among those read already or else read within timeout; or None."""
        for _, f in self.all[mark:]:
            if pred(f):
                return f
        got = self.until(pred, timeout)
        return got[-1][1] if got and pred(got[-1][1]) else None

    def during(self, seconds):
        """Every message read in the next seconds."""
        got = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            m = self.read(end - time.monotonic())
            if m is not None:
                got.append(m)
        return got


def has(key, value="1"):
    return lambda f: f.get(key) == value


def pings(msgs):
    return [t for t, f in msgs if f.get("WATCHDOG") == "1"]


def conf_text(ncaps):
    caps = [("up", "/ok"), ("down", "/premature"), ("third", "/ok?n=3")]
    return "interval 1s\ntimeout 1s\n" + "".join(
        "capsule %s name=%s\n" % (srv.url(p), n) for n, p in caps[:ncaps])


notes = Notes(sock)
os.environ["NOTIFY_SOCKET"] = sockpath
os.environ["WATCHDOG_USEC"] = str(WATCHDOG_USEC)
os.environ.pop("WATCHDOG_PID", None)
daemon = Daemon(conf_text(2), check_start=False)

# ---- READY=1 once /healthz answers ------------------------------------------
got = notes.until(has("READY"), timeout=20)
ready = bool(got) and got[-1][1].get("READY") == "1"
status = daemon.get("/healthz", timeout=5)[0] if ready else None
ok(ready, "READY=1 arrives", [f for _, f in got])
is_(status, 200, "when READY=1 arrives, /healthz already answers 200")
ok(not any(f.get("WATCHDOG") for _, f in got[:-1]),
   "nothing but READY=1 before it")

# ---- the watchdog at half the period ----------------------------------------
t_ready = got[-1][0] if got else time.monotonic()
window = 2.0 * SLOW
msgs = notes.during(window)
p = pings(msgs)
t_end = time.monotonic()
gaps = [round(b - a, 3) for a, b in zip(p, p[1:])]
diag("%d pings in %.2f s, gaps %s" % (len(p), t_end - t_ready, gaps[:12]))
ok(len(p) >= 3, "WATCHDOG=1 keeps coming (%d in %.1f s, one due every "
   "%.1f s)" % (len(p), window, PING))
# The daemon pings when half the period has passed since the last ping,
# never sooner: at most one per PING from READY=1 on (plus slack for when
# READY=1 was sent before the test read it).
most = int((t_end - t_ready) / PING) + 2
ok(len(p) <= most, "WATCHDOG=1 no more often than every %.1f s (%d <= %d)"
   % (PING, len(p), most))

# ---- STATUS= with the capsule counts ----------------------------------------
want = "2 capsules, 1 up, 1 down"
got = notes.since(0, lambda f: f.get("STATUS", "").startswith(want),
                  timeout=20)
statuses = [f["STATUS"] for _, f in notes.all if "STATUS" in f]
ok(got, "STATUS= says %r" % want,
   "\n".join(statuses) + "\n" + daemon.logtext())

# ---- RELOADING=1 / READY=1 around a SIGHUP ----------------------------------
daemon.write_conf(conf_text(3))
mark = len(notes.all)
before_us = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
daemon.signal(signal.SIGHUP)
got = notes.until(has("RELOADING"), timeout=10)
after_us = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
rel = got[-1][1] if got and got[-1][1].get("RELOADING") == "1" else {}
ok(rel, "SIGHUP: RELOADING=1", [f for _, f in got])
mono = int(rel.get("MONOTONIC_USEC", "0"))
ok(before_us <= mono <= after_us,
   "RELOADING=1 carries MONOTONIC_USEC of the reload",
   "%d not in [%d, %d]" % (mono, before_us, after_us))
got = notes.until(has("READY"), timeout=10)
ok(got and got[-1][1].get("READY") == "1", "then READY=1",
   [f for _, f in got])
got = notes.since(mark, lambda f: f.get("STATUS", "").startswith(
    "3 capsules"), timeout=20)
ok(got, "STATUS= follows the reloaded configuration",
   [f.get("STATUS") for _, f in notes.all[mark:] if "STATUS" in f])

# ---- a stalled main loop stops the pings ------------------------------------
# The configuration file becomes a FIFO: on SIGHUP the main loop opens it
# to reload and blocks until the test writes the file's text into it.
fifo = os.path.join(d, "conf.fifo")
os.mkfifo(fifo)
regular = daemon.conf + ".regular"
os.rename(daemon.conf, regular)
os.rename(fifo, daemon.conf)
daemon.signal(signal.SIGHUP)
got = notes.until(has("RELOADING"), timeout=10)
ok(got and got[-1][1].get("RELOADING") == "1",
   "stall: RELOADING=1 as the reload starts")
stall = 1.5 * SLOW
msgs = notes.during(stall)
is_(len(pings(msgs)), 0,
    "stall: no WATCHDOG=1 in %.1f s while the main loop waits (%d due)"
    % (stall, int(stall / PING)))
ok(daemon.alive(), "stall: the daemon is alive, only its main loop waits")
with open(regular) as f:
    text = f.read()
fd = os.open(daemon.conf, os.O_WRONLY)   # the daemon holds the read end
os.write(fd, text.encode())
os.close(fd)
got = notes.until(has("READY"), timeout=10)
ok(got and got[-1][1].get("READY") == "1",
   "stall: READY=1 once the file is read")
os.rename(regular, daemon.conf)          # a regular file again
msgs = notes.during(1.0 * SLOW)
ok(len(pings(msgs)) >= 2, "stall over: WATCHDOG=1 resumes (%d in %.1f s)"
   % (len(pings(msgs)), 1.0 * SLOW))

# ---- STOPPING=1 at SIGTERM --------------------------------------------------
rc, _ = daemon.stop()
got = notes.until(has("STOPPING"), timeout=5)
ok(got and got[-1][1].get("STOPPING") == "1", "SIGTERM: STOPPING=1",
   [f for _, f in got])
is_(rc, 0, "SIGTERM: exit status 0")

# ---- WATCHDOG_PID naming another process: no pings --------------------------
# Its one capsule's server never answers, so for the 10 s of the probe's
# timeout the capsule has no result: STATUS= says so.
os.environ["WATCHDOG_PID"] = "1"
other = Daemon("capsule %s name=slow interval=60s timeout=10s\n"
               % srv.url("/stall-header"), check_start=False)
got = notes.until(has("READY"), timeout=20)
ok(got and got[-1][1].get("READY") == "1", "WATCHDOG_PID=1: READY=1")
msgs = notes.during(1.0 * SLOW)
is_(len(pings(msgs)), 0, "WATCHDOG_PID of another process: no WATCHDOG=1")
statuses = [f["STATUS"] for _, f in msgs if "STATUS" in f]
is_(statuses[:1], ["1 capsule, 0 up, 0 down, 1 not probed yet"],
    "STATUS= counts a capsule not probed yet")
rc, _ = other.stop()
is_(rc, 0, "WATCHDOG_PID=1: exits 0")

for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
    os.environ.pop(k, None)
sock.close()
done()
