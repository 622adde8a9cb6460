"""The daemon in the environment systemd gives a service.

STATE_DIRECTORY (StateDirectory=): when the configuration names no
state-dir, the daemon keeps known_hosts and history.snapshot in the first
directory of the list, and `gemwatch trust` uses the same one; a state-dir
line in the file still wins.

JOURNAL_STREAM (stderr connected to the journal): when it names the
device and inode of the daemon's stderr, every line starts with its
syslog priority (<5> notice, <6> info, <4> warning) and carries no
timestamp; when it names another file, lines keep their timestamps.
"""
import atexit
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request

from gemtest import (GEMWATCH, SLOW, WRAPPER, GemServer, done, free_port, is_,
                     ok, tmpdir)

srv = GemServer()
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ")
_procs = []


@atexit.register
def _cleanup():
    for p in _procs:
        if p.poll() is None:
            p.kill()
            p.wait()


class Run:
    """gemwatch -v on conf_text, stderr to log, with env added."""

    def __init__(self, conf_text, env):
        self.dir = tmpdir()
        self.port = free_port()
        self.conf = os.path.join(self.dir, "gemwatch.conf")
        with open(self.conf, "w") as f:
            f.write("listen 127.0.0.1:%d\n" % self.port + conf_text)
        self.log = os.path.join(self.dir, "gemwatch.log")
        e = dict(os.environ)
        for k in ("STATE_DIRECTORY", "JOURNAL_STREAM", "NOTIFY_SOCKET"):
            e.pop(k, None)
        with open(self.log, "w") as logf:
            # env may name the log file itself (JOURNAL_STREAM).
            e.update(env(self.log) if callable(env) else env)
            self.proc = subprocess.Popen(
                [*WRAPPER, GEMWATCH, "-v", "-f", self.conf],
                stdout=logf, stderr=logf, env=e)
        _procs.append(self.proc)

    def healthz(self):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/healthz"
                                        % self.port, timeout=2) as r:
                return r.status
        except (OSError, urllib.error.HTTPError):
            return None

    def wait(self, pred, timeout=20):
        end = time.monotonic() + timeout * SLOW
        while time.monotonic() < end and self.proc.poll() is None:
            if pred():
                return True
            time.sleep(0.1)
        return False

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=20 * SLOW)

    def text(self):
        with open(self.log) as f:
            return f.read()


def inode_of(path):
    st = os.stat(path)
    return "%d:%d" % (st.st_dev, st.st_ino)


# ---- STATE_DIRECTORY ---------------------------------------------------------
base = tmpdir()
first, second = os.path.join(base, "first"), os.path.join(base, "second")
capsule = "capsule %s name=site\n" % srv.url("/ok")
d = Run("interval 1s\ntimeout 1s\n" + capsule,
        {"STATE_DIRECTORY": "%s:%s" % (first, second)})
ok(d.wait(lambda: os.path.exists(os.path.join(first, "known_hosts"))),
   "STATE_DIRECTORY: known_hosts written in its first directory", d.text())
is_(d.stop(), 0, "STATE_DIRECTORY: SIGTERM exits 0")
ok(os.path.exists(os.path.join(first, "history.snapshot")),
   "STATE_DIRECTORY: the snapshot is saved there at shutdown",
   os.listdir(first) if os.path.isdir(first) else d.text())
ok(not os.path.exists(second), "STATE_DIRECTORY: the rest of the list "
   "is left alone")
ok("snapshot %s/history.snapshot" % first in d.text(),
   "STATE_DIRECTORY: the log names the snapshot there", d.text())

# gemwatch trust reads the same state-dir.
os.unlink(os.path.join(first, "known_hosts"))
p = subprocess.run([*WRAPPER, GEMWATCH, "trust", "-f", d.conf, "site"],
                   capture_output=True, text=True, timeout=60 * SLOW,
                   env=dict(os.environ, STATE_DIRECTORY=first))
is_(p.returncode, 0, "STATE_DIRECTORY: gemwatch trust exits 0")
ok(os.path.exists(os.path.join(first, "known_hosts")),
   "STATE_DIRECTORY: gemwatch trust writes known_hosts there",
   p.stdout + p.stderr)

# A state-dir line wins.
named = os.path.join(base, "named")
envdir = os.path.join(base, "env")
d = Run("state-dir %s\ninterval 1s\ntimeout 1s\n" % named + capsule,
        {"STATE_DIRECTORY": envdir})
ok(d.wait(lambda: os.path.exists(os.path.join(named, "known_hosts"))),
   "a state-dir line wins over STATE_DIRECTORY", d.text())
is_(d.stop(), 0, "state-dir line: SIGTERM exits 0")
ok(not os.path.exists(envdir), "state-dir line: STATE_DIRECTORY unused")

# ---- JOURNAL_STREAM ----------------------------------------------------------
state = "state-dir %s\n" % os.path.join(tmpdir(), "state")


def journal_run(env):
    """Start, wait for /healthz, reload a bad file (a warning), stop."""
    r = Run(state + capsule, env)
    up = r.wait(lambda: r.healthz() == 200)
    with open(r.conf, "a") as f:
        f.write("bogus directive\n")
    r.proc.send_signal(signal.SIGHUP)
    warned = r.wait(lambda: "keeping the running configuration" in r.text())
    return r, up and warned, r.stop()


r, ran, rc = journal_run(lambda log: {"JOURNAL_STREAM": inode_of(log)})
text = r.text()
lines = text.splitlines()
ok(ran, "journal: the daemon started and rejected the bad reload", text)
is_(rc, 0, "journal: SIGTERM exits 0")
ok(lines and all(re.match(r"^<[3-7]>", line) for line in lines),
   "journal: every line starts with a syslog priority", text)
ok(not any(STAMP.search(line[3:]) for line in lines),
   "journal: no line carries a timestamp", text)
ok(re.search(r"^<5>gemwatch \S+ started: ", text, re.M),
   "journal: <5> notice for the start", text)
ok(re.search(r"^<6>listening on http://", text, re.M),
   "journal: <6> info (-v)", text)
ok(re.search(r"^<4>warning: reload: .* keeping the running configuration",
             text, re.M), "journal: <4> warning for the rejected reload",
   text)
ok(re.search(r"^<5>stopped$", text, re.M), "journal: <5> stopped", text)

other = os.path.join(tmpdir(), "elsewhere")
open(other, "w").close()
r, ran, rc = journal_run({"JOURNAL_STREAM": inode_of(other)})
text = r.text()
lines = text.splitlines()
ok(ran, "not the journal: started and rejected the bad reload", text)
is_(rc, 0, "not the journal: SIGTERM exits 0")
ok(lines and all(STAMP.match(line) for line in lines),
   "JOURNAL_STREAM of another file: every line has its timestamp", text)
ok(not any(line.startswith("<") for line in lines),
   "JOURNAL_STREAM of another file: no priority prefix", text)

done()
