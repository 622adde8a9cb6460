"""File descriptors: the limit bounds the probes in flight, and running out
of them is gemwatch's fault, said as such (issue 17, item 9).

- gemwatch probe under limits of 4 to 16 descriptors: whatever fails fails
  with "gemwatch itself is out of file descriptors", never as the capsule's
  resolve or connect failure, and the warning is logged;
- gemwatch probe -c beyond what the limit allows says it lowered -c;
- the daemon warns at start when the limit leaves no room for
  `concurrency` probes.
"""
import json
import os
import re
import resource
import subprocess
import time

from gemtest import (GEMWATCH, GemServer, SLOW, WRAPPER, diag, done,
                     free_port, is_, ok, tmpdir)

srv = GemServer()
OURS = "gemwatch itself is out of file descriptors"


def limited(n, *args, timeout=60):
    """Run gemwatch ARGS with RLIMIT_NOFILE n (soft and hard)."""
    def lower():
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
    p = subprocess.run([*WRAPPER, GEMWATCH, *args], capture_output=True,
                       text=True, timeout=timeout * SLOW, preexec_fn=lower)
    return p.returncode, p.stdout, p.stderr


if WRAPPER:
    # valgrind keeps descriptors of its own below such small limits.
    diag("the tiny limits are not tried under valgrind")
else:
    seen_ours = 0
    blamed = []
    for n in range(4, 17):
        rc, out, err = limited(n, "probe", "-j", "-t", "3",
                               srv.url("/ok"), srv.url("/ok", "localhost"))
        if not out:
            # Too few to start: the engine says why and exits 1.
            ok(rc == 1 and "Too many open files" in err,
               "limit %d: no start, and it says why" % n, err)
            continue
        for r in json.loads(out)["results"]:
            if r["success"]:
                continue
            if OURS in r["error"]["message"]:
                seen_ours += 1
            else:
                blamed.append((n, r["url"], r["error"]))
        if OURS in out:
            ok("has run out of file descriptors" in err,
               "limit %d: the shortage is logged" % n, err)
    ok(seen_ours > 0, "some probes failed for want of descriptors (%d)"
       % seen_ours)
    is_(blamed, [], "no shortage of ours was blamed on a capsule")

# -c beyond the limit is lowered, and said so.
rc, out, err = limited(1024, "probe", "-c", "5000", "-t", "3",
                       srv.url("/ok"))
is_(rc, 0, "probe -c 5000 under a limit of 1024: the probe still runs")
# (valgrind keeps a few descriptors for itself: the limit seen is lower.)
m = re.search(r"limit \((\d+)\) allows (\d+) probes at once, not 5000", err)
ok(m and int(m.group(1)) <= 1024 and
   int(m.group(2)) == int(m.group(1)) - 256,
   "probe -c 5000 under a limit of 1024: lowered to the limit less 256, "
   "and said", err)

# The daemon warns at start when concurrency does not fit the limit.
d = tmpdir()
conf = os.path.join(d, "gemwatch.conf")
with open(conf, "w") as f:
    f.write("listen 127.0.0.1:%d\nstate-dir %s/state\nconcurrency 100\n"
            "capsule %s\n" % (free_port(), d, srv.url("/ok")))
log = open(os.path.join(d, "log"), "w+")
p = subprocess.Popen([*WRAPPER, GEMWATCH, "-f", conf], stdout=log,
                     stderr=log, preexec_fn=lambda: resource.setrlimit(
                         resource.RLIMIT_NOFILE, (200, 200)))
text = ""
end = time.monotonic() + 20 * SLOW
while time.monotonic() < end and "started" not in text:
    time.sleep(0.1)
    log.seek(0)
    text = log.read()
ok("concurrency 100 needs 356 file descriptors, but the limit is " in text,
   "the daemon warns when the limit has no room for concurrency", text)
p.terminate()
is_(p.wait(timeout=20 * SLOW), 0, "and runs anyway, and exits 0")
done()
