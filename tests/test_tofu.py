"""Trust on first use, renewals, pins and `gemwatch trust`.

The test server keeps its port across restarts and is given the same or
a new key and certificate, as an operator's capsule would be renewed or
re-keyed; the daemon's JSON, metrics and log must tell which happened,
and `gemwatch trust NAME` must take effect without a restart.
"""
import os
import subprocess
import time

from gemtest import (GEMWATCH, WRAPPER, Daemon, GemServer, done, free_port,
                     is_, metric, ok, tmpdir)

d = tmpdir()
port = free_port()
key1, crt1 = os.path.join(d, "key1.pem"), os.path.join(d, "crt1.pem")
crt1b = os.path.join(d, "crt1b.pem")
key2, crt2 = os.path.join(d, "key2.pem"), os.path.join(d, "crt2.pem")


def server(key, crt):
    return GemServer("-p", str(port), "-K", key, "-C", crt)


def last(daemon, name="site"):
    return daemon.json("/api/v1/capsules/" + name)["last"]


def wait_last(daemon, pred, what, name="site", timeout=15):
    end = time.monotonic() + timeout
    r = None
    while time.monotonic() < end:
        r = last(daemon, name)
        if r is not None and pred(r):
            return r
        time.sleep(0.2)
    ok(False, "timed out waiting for " + what, r)
    return r or {}


srv = server(key1, crt1)
first = subprocess.run([*WRAPPER, GEMWATCH, "probe", "-j", srv.url("/ok")],
                       capture_output=True, text=True)
import json  # noqa: E402
fp1 = json.loads(first.stdout)["results"][0]["cert"]["sha256"]

conf = ("interval 1s\ntimeout 1s\n"
        "capsule gemini://127.0.0.1:%d/ok name=site\n"
        "capsule gemini://127.0.0.1:%d/ok name=pinned fingerprint=sha256:%s\n"
        "capsule gemini://127.0.0.1:%d/sni name=wrongpin fingerprint=sha256:%s\n"
        % (port, port, fp1, port, "00" * 32))
dm = Daemon(conf)

r = wait_last(dm, lambda r: r["cert"] is not None, "a first result")
ok(r["cert"]["tofu"] in ("new", "match"), "first sight: tofu new (or match)",
   r["cert"]["tofu"])
r = wait_last(dm, lambda r: r["cert"]["tofu"] == "match", "tofu match")
is_(r["success"], True, "site up")
hosts = open(os.path.join(dm.dir, "state", "known_hosts")).read()
ok(("127.0.0.1:%d %s" % (port, fp1)) in hosts,
   "known_hosts records host:port and the first-seen fingerprint", hosts)

r = wait_last(dm, lambda r: r["cert"] is not None, "pinned", name="pinned")
is_(r["cert"]["tofu"], "pinned", "a matching pin: tofu pinned")
is_(r["success"], True, "a matching pin succeeds")
r = wait_last(dm, lambda r: r["cert"] is not None, "wrong pin",
              name="wrongpin")
is_(r["cert"]["tofu"], "mismatch", "a wrong pin: tofu mismatch")
is_(r["error"]["reason"], "cert", "a wrong pin fails with reason cert")
m = dm.metrics()
is_(metric(m, "gemini_cert_tofu_match", capsule="wrongpin", check="page"),
    0.0, "gemini_cert_tofu_match 0 for the wrong pin")
is_(metric(m, "gemini_cert_tofu_match", capsule="site", check="page"), 1.0,
    "gemini_cert_tofu_match 1 for the first-seen certificate")

# A renewal that kept the key.
srv.stop()
srv = server(key1, crt1b)
r = wait_last(dm, lambda r: r["cert"] and r["cert"]["tofu"] == "changed",
              "a renewed certificate")
is_(r["cert"]["key_kept"], True, "renewal: key_kept true")
is_(r["success"], True, "a changed certificate alone does not fail the probe")
m = dm.wait_for(lambda m: metric(m, "gemini_cert_tofu_match", capsule="site",
                                 check="page") == 0.0, what="tofu_match 0")
is_(metric(m, "gemini_cert_tofu_match", capsule="site", check="page"), 0.0,
    "renewal: gemini_cert_tofu_match 0")
log = dm.logtext()
ok("certificate changed" in log and "same key" in log,
   "the log says the certificate changed, same key", log[-2000:])

# A new key.
srv.stop()
srv = server(key2, crt2)
r = wait_last(dm, lambda r: r["cert"] and r["cert"]["key_kept"] is False,
              "a new key")
is_(r["cert"]["tofu"], "changed", "new key: tofu changed")
log = dm.logtext()
ok("new key" in log, "the log says new key", log[-2000:])

# The operator accepts it, without restarting the daemon.
p = subprocess.run([*WRAPPER, GEMWATCH, "trust", "-f", dm.conf, "site"],
                   capture_output=True, text=True, timeout=60)
is_(p.returncode, 0, "gemwatch trust exits 0")
ok("now trusting" in p.stdout, "gemwatch trust says what it trusts",
   p.stdout + p.stderr)
r = wait_last(dm, lambda r: r["cert"]["tofu"] in ("match", "new"),
              "trust taking effect")
ok(r["cert"]["tofu"] in ("match", "new"),
   "after trust: the new certificate is accepted without a restart")
m = dm.wait_for(lambda m: metric(m, "gemini_cert_tofu_match", capsule="site",
                                 check="page") == 1.0, what="tofu_match 1")
is_(metric(m, "gemini_cert_tofu_match", capsule="site", check="page"), 1.0,
    "after trust: gemini_cert_tofu_match 1")

p = subprocess.run([*WRAPPER, GEMWATCH, "trust", "-f", dm.conf, "nosuch"],
                   capture_output=True, text=True, timeout=60)
is_(p.returncode, 2, "trust of an unknown capsule: exit 2")
ok("nosuch" in p.stderr, "and it names it", p.stderr)

ok(dm.alive(), "daemon alive at the end")
rc, _ = dm.stop()
is_(rc, 0, "daemon exits 0")
done()
