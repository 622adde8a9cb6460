"""Names from /etc/hosts: cached until the file changes, and a change is
followed within seconds.

The daemon runs in a mount namespace of its own where a file of the test's
is bind-mounted on /etc/hosts (so the machine's file is never touched;
root only). capsule.test is first 127.0.0.2, where nothing listens: the
capsule is down, at that address. The test rewrites the file in place to
127.0.0.1, where tests/gemserver listens: within a few seconds (gemwatch
looks at the file every 5 s; an answer from it is otherwise kept for an
hour) the capsule is up, at the new address.
"""
import ctypes
import os

from gemtest import (SLOW, Daemon, GemServer, done, is_, metric, ok,
                     skip_all, tmpdir)

CLONE_NEWNS = 0x00020000
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18

if os.geteuid() != 0:
    skip_all("needs root (a mount namespace for /etc/hosts)")

libc = ctypes.CDLL(None, use_errno=True)
hosts = os.path.join(tmpdir(), "hosts")


def write_hosts(addr):
    # In place: the bind mount follows the inode, not the name.
    with open(hosts, "w") as f:
        f.write("127.0.0.1 localhost\n%s capsule.test\n" % addr)


def private_hosts():
    """In the child: its own mounts, none shared back, hosts over
    /etc/hosts."""
    if (libc.unshare(CLONE_NEWNS) != 0 or
            libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0 or
            libc.mount(hosts.encode(), b"/etc/hosts", None, MS_BIND,
                       None) != 0):
        e = ctypes.get_errno()
        os.write(2, b"mount namespace: %s\n" % os.strerror(e).encode())
        os._exit(77)


write_hosts("127.0.0.2")
pid = os.fork()
if pid == 0:
    private_hosts()
    os._exit(0)
if os.waitpid(pid, 0)[1] != 0:
    skip_all("no mount namespace here (a container without CAP_SYS_ADMIN?)")
srv = GemServer()
t = int(2 * SLOW)
d = Daemon("interval %ds\ntimeout %ds\ncapsule gemini://capsule.test:%d/ "
           "name=c\n" % (t, t, srv.port), preexec=private_hosts)


def last():
    r = d.json("/api/v1/capsules/c")["last"]
    return r or {}


d.wait_for(lambda m: metric(m, "gemini_probes_total", capsule="c",
                            check="page") is not None and
           last().get("address") is not None, what="a first result")
is_(last().get("address"), "127.0.0.2",
    "the address is the one /etc/hosts gives")
is_(metric(d.metrics(), "gemini_probe_success", capsule="c", check="page"), 0.0,
    "nothing listens there: the probe fails")

write_hosts("127.0.0.1")
m = d.wait_for(lambda m: metric(m, "gemini_probe_success", capsule="c",
                                check="page") == 1, timeout=20,
               what="up after the change")
is_(metric(m, "gemini_probe_success", capsule="c", check="page"), 1.0,
    "after /etc/hosts changed, the probe succeeds")
is_(last().get("address"), "127.0.0.1", "at the new address")
with open("/etc/hosts") as f:
    ok("capsule.test" not in f.read(), "the machine's /etc/hosts is "
       "untouched")
rc, _ = d.stop()
is_(rc, 0, "the daemon exits 0")
done()
