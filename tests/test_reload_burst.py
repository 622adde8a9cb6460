"""A burst of SIGHUPs is a few reloads, and SIGTERM does not wait for them.

10,000 capsules (IP literals on a port nothing listens on, probed once an
hour) make each reload cost some 50 ms. 500 SIGHUPs are sent 2 ms apart
(close enough to be a burst, far enough apart for the kernel to deliver
each rather than merge them), then SIGTERM at once. Each HUP used to be
one full reload, run before the scheduler and the heartbeat, and SIGTERM
waited in the signal pipe behind all of them: some 500 reloads, /healthz
"scheduler stalled" after 10 s, and the exit 20-60 s late. Now whatever
signals are pending are read first: a stop stops, and any number of HUPs
is one reload. So the log shows far fewer reloads than HUPs, /healthz
(asked every 50 ms until the daemon is gone) never says 503, and the
daemon exits within a few seconds of SIGTERM.
"""
import os
import signal
import threading
import time

from gemtest import SLOW, Daemon, diag, done, free_port, is_, ok

N = 10000
HUPS = 500

dead = free_port()      # nothing listens here: every probe is refused
conf = "interval 1h\ntimeout 1s\n"
for i in range(N):
    conf += "capsule gemini://127.0.%d.%d:%d/ name=c%04d\n" % (
        1 + i // 250, 1 + i % 250, dead, i)
d = Daemon(conf)

health = []


def healthz():
    """Until the daemon has exited."""
    while d.alive():
        try:
            status, _, body = d.get("/healthz", timeout=30)
            health.append((status, body.strip()))
        except OSError:
            pass    # stopping: the endpoint closes before the exit
        time.sleep(0.05)


th = threading.Thread(target=healthz)
th.start()
time.sleep(0.5)
t0 = time.monotonic()
for _ in range(HUPS):
    os.kill(d.proc.pid, signal.SIGHUP)
    time.sleep(0.002)   # each one delivered, not merged by the kernel
diag("%d SIGHUPs sent in %.2f s" % (HUPS, time.monotonic() - t0))
rc, took = d.stop(timeout=120)
th.join(timeout=60)

log = d.logtext()
reloads = log.count("reload: %s: %d capsules" % (d.conf, N))
diag("%d SIGHUPs: %d reloads; exit %.2f s after SIGTERM" %
     (HUPS, reloads, took))
ok(reloads < 50, "%d SIGHUPs coalesced into fewer than 50 reloads (%d)" %
   (HUPS, reloads))
ok(took < 5 * SLOW, "exit within 5 s of SIGTERM (%.2f s)" % took)
is_(rc, 0, "exit 0")
ok(len(health) > 0, "/healthz asked throughout (%d times)" % len(health))
bad = [h for h in health if h[0] != 200]
ok(not bad, "/healthz answered 200 throughout (%d of %d not)" %
   (len(bad), len(health)), bad[:3])
ok("stopping" in log, "the log says it stops")
done()
