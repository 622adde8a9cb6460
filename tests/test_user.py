"""`user NAME`: started as root, the daemon binds its port, then runs as
that user; the state directory is handed to it. Skipped when not root."""
import os
import pwd

from gemtest import Daemon, GemServer, done, is_, metric, ok, skip_all

if os.geteuid() != 0:
    skip_all("not running as root")
try:
    nobody = pwd.getpwnam("nobody")
except KeyError:
    skip_all("no user nobody")

srv = GemServer()
dm = Daemon("user nobody\ninterval 1s\ncapsule %s name=ok\n" % srv.url("/ok"))
m = dm.wait_for(lambda m: metric(m, "gemini_probe_success", capsule="ok",
                                 check="page") == 1.0, what="a probe")
is_(metric(m, "gemini_probe_success", capsule="ok", check="page"), 1.0,
    "probes work after dropping privileges")
status = open("/proc/%d/status" % dm.proc.pid).read()
uids = [line.split()[1:] for line in status.splitlines()
        if line.startswith("Uid:")][0]
is_(uids, [str(nobody.pw_uid)] * 4,
    "real, effective, saved and fs uid are nobody's")
gids = [line.split()[1:] for line in status.splitlines()
        if line.startswith("Gid:")][0]
is_(gids, [str(nobody.pw_gid)] * 4, "and so are the gids")
st = os.stat(os.path.join(dm.dir, "state"))
is_(st.st_uid, nobody.pw_uid, "the state directory belongs to nobody")
ok(dm.alive(), "daemon alive at the end")
rc, _ = dm.stop()
is_(rc, 0, "daemon exits 0")
done()
