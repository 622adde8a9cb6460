"""The state directory as hostile or careless ground.

- A symbolic link at a temporary file's name is never followed: the
  daemon's known_hosts and snapshot writes, and `gemwatch trust` run as
  root, leave the link's target as it was.
- `gemwatch trust` run as root drops to `user`, as the daemon does.
- A state-dir owned by someone other than the daemon's user or root, or
  writable by others (like /tmp), is refused; it is never handed over.
- A state-dir that exists is used as it is (not chowned); when the
  daemon's user cannot write it, the pins and the history it holds are
  still read, nothing is saved, and the log says so once.

The parts that change users need root; they are skipped otherwise.
"""
import calendar
import os
import pwd
import subprocess
import time

from gemtest import (GEMWATCH, SLOW, WRAPPER, Daemon, GemServer, diag, done,
                     free_port, is_, metric, ok, tmpdir)


def probes(dm, name):
    v = metric(dm.metrics(), "gemini_probes_total", capsule=name,
               check="page")
    return v or 0


def wait_until(pred, timeout=20):
    end = time.monotonic() + timeout * SLOW
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.1)
    return False


def regular(path):
    return os.path.isfile(path) and not os.path.islink(path)


def exits(dm, timeout=20):
    """The daemon's exit status when it exits by itself, else None."""
    try:
        return dm.proc.wait(timeout=timeout * SLOW)
    except subprocess.TimeoutExpired:
        dm.stop()
        return None


# ---- 1. The daemon's writes do not follow a link at a temporary name ----

d = tmpdir()
victim = os.path.join(d, "victim")
with open(victim, "w") as f:
    f.write("precious\n")
os.chmod(victim, 0o600)
state = os.path.join(d, "state")
os.mkdir(state, 0o750)
for name in ("known_hosts.tmp", "history.snapshot.tmp"):
    os.symlink(victim, os.path.join(state, name))
srv = GemServer()
dm = Daemon("state-dir %s\ninterval 1s\ncapsule %s name=ok\n"
            % (state, srv.url("/ok")))
ok(wait_until(lambda: probes(dm, "ok") >= 2), "daemon probes")
ok(wait_until(lambda: os.path.exists(os.path.join(state, "known_hosts"))),
   "known_hosts written")
rc, _ = dm.stop()
is_(rc, 0, "daemon exits 0")
is_(open(victim, "rb").read(), b"precious\n",
    "links at known_hosts.tmp and history.snapshot.tmp were not followed")
ok(regular(os.path.join(state, "known_hosts")),
   "known_hosts is a file of its own, not a link")
ok(regular(os.path.join(state, "history.snapshot")),
   "history.snapshot is a file of its own, not a link")
left = [n for n in os.listdir(state) if ".tmp" in n and
        not os.path.islink(os.path.join(state, n))]
is_(left, [], "no temporary file left behind")

if os.geteuid() != 0:
    diag("not root: the parts that change users are skipped")
    done()
try:
    nobody = pwd.getpwnam("nobody")
except KeyError:
    diag("no user nobody: the parts that change users are skipped")
    done()


def conf_file(directory, text):
    path = os.path.join(directory, "gemwatch.conf")
    with open(path, "w") as f:
        f.write("listen 127.0.0.1:%d\n" % free_port() + text)
    return path


def trust(conf, *names):
    p = subprocess.run([*WRAPPER, GEMWATCH, "trust", "-f", conf, *names],
                       capture_output=True, text=True, timeout=60 * SLOW)
    return p.returncode, p.stdout + p.stderr


# ---- 2. trust as root: drops to `user`, does not follow the link -------

d = tmpdir()
os.chmod(d, 0o755)
state = os.path.join(d, "state")
os.mkdir(state, 0o750)
os.chown(state, nobody.pw_uid, nobody.pw_gid)
victim = os.path.join(d, "victim")
with open(victim, "w") as f:
    f.write("root's own\n")
os.chmod(victim, 0o600)
os.symlink(victim, os.path.join(state, "known_hosts.tmp"))
conf = conf_file(d, "user nobody\nstate-dir %s\ncapsule %s name=ok\n"
                 % (state, srv.url("/ok")))
rc, out = trust(conf, "ok")
is_(rc, 0, "trust as root succeeds")
is_(open(victim, "rb").read(), b"root's own\n",
    "trust as root did not follow known_hosts.tmp to a root-owned file")
hosts = os.path.join(state, "known_hosts")
ok(regular(hosts), "known_hosts is a file of its own")
is_(os.stat(hosts).st_uid if os.path.exists(hosts) else None,
    nobody.pw_uid, "trust wrote known_hosts as nobody: it dropped to user")

# ---- 3. A state-dir of another owner, or writable by others, is refused --

for what, uid, mode in (("owned by another user", 4242, 0o750),
                        ("writable by others, like /tmp", 0, 0o1777),
                        ("writable by its group", 0, 0o770)):
    d = tmpdir()
    os.chmod(d, 0o755)
    state = os.path.join(d, "state")
    os.mkdir(state)
    os.chown(state, uid, 0)
    os.chmod(state, mode)
    dm = Daemon("user nobody\nstate-dir %s\ncapsule %s name=ok\n"
                % (state, srv.url("/ok")), check_start=False)
    is_(exits(dm), 1, "state-dir %s: the daemon refuses to start" % what)
    log = dm.logtext()
    ok("state-dir %s" % state in log and "refusing" in log,
       "state-dir %s: the log says why" % what, log)
    st = os.stat(state)
    is_((st.st_uid, st.st_mode & 0o7777), (uid, mode),
        "state-dir %s: not handed over to nobody" % what)
    rc, out = trust(conf_file(d, "user nobody\nstate-dir %s\n"
                              "capsule %s name=ok\n" % (state, srv.url("/ok"))),
                    "ok")
    is_(rc, 1, "state-dir %s: trust refuses too" % what)

# ---- 4. An existing state-dir is used as it is --------------------------

d = tmpdir()
os.chmod(d, 0o755)
state = os.path.join(d, "state")
os.mkdir(state, 0o755)          # root's, not writable by nobody
dm = Daemon("user nobody\ninterval 1s\nstate-dir %s\ncapsule %s name=ok\n"
            % (state, srv.url("/ok")))
ok(wait_until(lambda: probes(dm, "ok") >= 2), "probes run with a state-dir "
   "nobody cannot write")
st = os.stat(state)
is_((st.st_uid, st.st_mode & 0o7777), (0, 0o755),
    "an existing state-dir is not chowned to nobody")
log = dm.logtext()
ok("state-dir %s is not writable by nobody" % state in log,
   "the log says the state-dir is used as it is, read-only", log)
rc, _ = dm.stop()
is_(rc, 0, "daemon exits 0")
is_(sorted(os.listdir(state)), [], "nothing was written into it")
created = os.path.join(d, "new", "state")
dm = Daemon("user nobody\nstate-dir %s\ncapsule %s name=ok\n"
            % (created, srv.url("/ok")))
is_(os.stat(created).st_uid, nobody.pw_uid,
    "a state-dir gemwatch creates is handed to nobody")
is_(os.stat(os.path.dirname(created)).st_uid, 0,
    "but not the parent it created on the way")
dm.stop()

# ---- 5. A read-only state-dir: pins and history are read ----------------

d = tmpdir()
os.chmod(d, 0o755)
port = free_port()
keys = [(os.path.join(d, "key%d.pem" % i), os.path.join(d, "crt%d.pem" % i))
        for i in (1, 2)]
srv.stop()
srv = GemServer("-p", str(port), "-K", keys[0][0], "-C", keys[0][1])
state = os.path.join(d, "state")
capsules = ("state-dir %s\ninterval 1s\ntimeout 1s\n"
            "capsule gemini://127.0.0.1:%d/ok name=ok\n" % (state, port))
dm = Daemon(capsules)
ok(wait_until(lambda: probes(dm, "ok") >= 3), "first run: probes")
first = len(dm.json("/api/v1/capsules/ok")["history"])
rc, _ = dm.stop()
is_(rc, 0, "first run: exits 0")
ok(os.path.exists(os.path.join(state, "known_hosts")) and
   os.path.exists(os.path.join(state, "history.snapshot")),
   "first run left a pin and a snapshot")
for root, dirs, files in os.walk(state):
    for n in dirs + files:
        os.chown(os.path.join(root, n), nobody.pw_uid, nobody.pw_gid)
os.chown(state, nobody.pw_uid, nobody.pw_gid)
os.chmod(state, 0o555)          # its owner, nobody, cannot write it
saved = sorted(os.listdir(state))

srv.stop()
srv = GemServer("-p", str(port), "-K", keys[1][0], "-C", keys[1][1])
started = time.time()
dm = Daemon(capsules + "capsule gemini://localhost:%d/ok name=new "
            "address-family=ipv4\n" % port, run_as=nobody)


def tofu(name):
    r = dm.json("/api/v1/capsules/" + name)["last"]
    return r["cert"]["tofu"] if r and r["cert"] else None


ok(wait_until(lambda: tofu("ok") == "changed"),
   "the pin in a read-only state-dir was read: the new certificate is "
   "\"changed\"", tofu("ok"))
is_(metric(dm.metrics(), "gemini_cert_tofu_match", capsule="ok",
           check="page"), 0.0, "gemini_cert_tofu_match 0")
ok(wait_until(lambda: tofu("new") == "match"),
   "a capsule new to the pins is pinned in memory", tofu("new"))
h = dm.json("/api/v1/capsules/ok")["history"]
oldest = calendar.timegm(time.strptime(h[-1]["time"], "%Y-%m-%dT%H:%M:%SZ"))
ok(oldest < started - 1, "the history of the snapshot is served (%d results "
   "before the restart, the oldest from %s)" % (first, h[-1]["time"]))
time.sleep(2 * SLOW)
rc, _ = dm.stop()
is_(rc, 0, "read-only run: exits 0")
log = dm.logtext()
# "falling behind" is about the machine's speed (valgrind), not the state-dir
warnings = [line for line in log.splitlines()
            if "warning" in line and "falling behind" not in line]
ok(len(warnings) == 1 and "is not writable by nobody" in warnings[0],
   "the log says it once, and warns of nothing else (no failed write)", log)
is_(sorted(os.listdir(state)), saved, "nothing in the state-dir changed")
os.chmod(state, 0o755)
done()
