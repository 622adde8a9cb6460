"""What close_notify cannot prove: a body cut by a proxy's idle timeout.

A TLS terminator (nginx's stream module, HAProxy, socat) in front of a
plain-TCP backend that stalls mid-body waits out its idle timeout and then
ends the client's side with close_notify: the response looks complete. The
test terminator (tests/gemserver -m terminator) does the same in front of
gemtest.Backend. Without max-idle the probe succeeds and reports the gap
(the JSON field, /metrics, the words of `gemwatch probe`, the status page);
with max-idle below the gap it fails with reason body; a slow but steady
trickle under the limit passes; expect-body-bytes fails a body that came
back shorter and passes a whole one; bad values are configuration errors.
Then the same against a real nginx, where it is installed.
"""
import os
import re
import shutil
import subprocess
import time

from gemtest import (GEMWATCH, SLOW, Backend, Daemon, GemServer, _children,
                     diag, done, free_port, is_, metric, ok, probe_json,
                     run_probe, tmpdir)

IDLE = 1.5          # the test terminator's idle timeout, seconds
NGINX_IDLE = 2      # nginx's proxy_timeout, seconds
# At least this share of an idle timeout is seen: a loaded machine (or
# valgrind) may read the last bytes late, which shortens the silence seen.
LONG = 0.6
GAP = 0.1           # at least this of the trickle's 0.2 s gaps is seen
STALL = "/stall?bytes=3000"
TRICKLE = "/trickle?ms=200&n=6"

back = Backend()
term = GemServer("-m", "terminator", "-b", str(back.port),
                 "-i", str(int(IDLE * 1000)))

# ---- gemwatch probe ------------------------------------------------------

rc, r, _ = probe_json(term.url(STALL))
d = r["durations"]
is_(rc, 0, "a stalled body cut by the idle timeout: the probe succeeds")
ok(r["success"] and r["end"] == "close_notify" and r["body_bytes"] == 3000,
   "ended by close_notify, 3000 bytes, no error", r)
ok(d["idle_before_end"] is not None and d["idle_before_end"] >= IDLE * LONG,
   "durations.idle_before_end shows the idle timeout (%s s)"
   % d["idle_before_end"])
ok(d["max_gap"] is not None and d["max_gap"] < d["idle_before_end"],
   "durations.max_gap is the gap between bytes, not the end (%s s)"
   % d["max_gap"])



def stalled(idle, total):
    """The rule the page and the words follow (result_stalled)."""
    return idle > 1 and idle > total / 2


rc, out, _ = run_probe(term.url(STALL))
is_(rc, 0, "the words report of the same probe: exit 0")
m = re.search(r"idle before the end ([0-9.]+)s", out)
t = re.search(r" total ([0-9.]+)s", out)
ok(m is not None and t is not None, "it shows the gap", out)
said = stalled(float(m.group(1)), float(t.group(1))) if m and t else None
if SLOW == 1:   # valgrind makes the handshake a good part of the probe
    ok(said, "the gap is most of the probe", out)
is_("but the body stalled " in out and
    "before close_notify: a proxy's idle timeout may have cut it" in out,
    said, "it says what the gap may mean")

rc, r, _ = probe_json(term.url(STALL), "--max-idle", "1")
err = r["error"] or {}
is_(rc, 1, "--max-idle 1 below the gap: exit 1")
is_(err.get("reason"), "body", "reason body")
ok("the body stalled 1." in (err.get("message") or "") and
   "before close_notify: a proxy's idle timeout may have cut it (max-idle "
   "1s)" in (err.get("message") or ""),
   "the message says the body stalled before close_notify",
   err.get("message"))

rc, r, _ = probe_json(term.url(TRICKLE), "--max-idle", "1")
is_(rc, 0, "a steady trickle under --max-idle passes")
ok(r["success"] and r["body_bytes"] == 6 and
   r["durations"]["max_gap"] >= GAP and
   r["durations"]["idle_before_end"] < 1,
   "its gaps are between bytes, none before the end", r["durations"])

rc, out, err_text = run_probe("--max-idle", "soon", term.url(STALL))
is_(rc, 2, "--max-idle with a bad value is a usage error")
ok("--max-idle takes a duration" in err_text, "and says so", err_text)
rc, out, err_text = run_probe("-t", "2", "--max-idle", "2", term.url(STALL))
is_(rc, 2, "--max-idle not shorter than -t is a usage error")

# ---- the daemon: JSON, /metrics, the page --------------------------------

dm = Daemon("interval %ds\ntimeout %ds\n" % (4 * SLOW, 3 * SLOW) +
            "capsule %s name=stalled\n"
            "capsule %s name=guarded max-idle=1s\n"
            "capsule %s name=short expect-body-bytes=>=2000\n"
            "capsule %s name=whole expect-body-bytes=>=2000\n"
            "capsule %s name=trickle max-idle=1s\n"
            % (term.url(STALL), term.url(STALL),
               term.url("/stall?bytes=1000&ms=100"),
               term.url("/page?bytes=3000"), term.url(TRICKLE)))
NAMES = ("stalled", "guarded", "short", "whole", "trickle")


def probed(m):
    return all((metric(m, "gemini_probes_total", capsule=n, check="page")
                or 0) >= 1 for n in NAMES)


m = dm.wait_for(probed, timeout=30, what="a probe of every capsule")
ok(probed(m), "every capsule was probed")
want = {"stalled": 1, "guarded": 0, "short": 0, "whole": 1, "trickle": 1}
is_({n: metric(m, "gemini_probe_success", capsule=n, check="page")
     for n in NAMES}, want, "gemini_probe_success of each")
v = metric(m, "gemini_response_idle_before_end_seconds", capsule="stalled",
           check="page")
ok(v is not None and v >= IDLE * LONG,
   "gemini_response_idle_before_end_seconds shows the stall (%s)" % v)
v = metric(m, "gemini_response_max_gap_seconds", capsule="trickle",
           check="page")
ok(v is not None and GAP <= v < 1,
   "gemini_response_max_gap_seconds shows the trickle's gaps (%s)" % v)
for n in ("guarded", "short"):
    ok((metric(m, "gemini_probe_failures_total", capsule=n, check="page",
               reason="body") or 0) >= 1,
       "%s: counted as a failure with reason body" % n)

last = {n: dm.json("/api/v1/capsules/" + n)["last"] for n in NAMES}
ok(last["stalled"]["durations"]["idle_before_end"] >= IDLE * LONG,
   "JSON: durations.idle_before_end of the stalled page")
msg = (last["guarded"]["error"] or {}).get("message") or ""
ok(msg.startswith("the body stalled 1.") and msg.endswith("(max-idle 1s)"),
   "JSON: max-idle's message", msg)
msg = (last["short"]["error"] or {}).get("message") or ""
is_(msg, "the body is 1000 bytes, shorter than expect-body-bytes >=2000",
    "JSON: expect-body-bytes's message")
ok(last["whole"]["success"] and last["whole"]["body_bytes"] == 3000,
   "a whole body passes expect-body-bytes")

status, _, page = dm.get("/")
page = page.decode()
said = [n for n in NAMES if stalled(last[n]["durations"]["idle_before_end"],
                                    last[n]["durations"]["total"])]
if SLOW == 1:
    is_(said, ["stalled", "guarded"], "the stalls are most of their probes")
is_(page.count('<td class="warn">complete (close_notify)<br>'
               '<span class="why" title="the body stalled '), len(said),
    "the page says the body stalled where it did")

if shutil.which("promtool"):
    status, _, body = dm.get("/metrics")
    p = subprocess.run(["promtool", "check", "metrics"], input=body,
                       capture_output=True, timeout=30)
    ok(p.returncode == 0, "promtool check metrics passes",
       p.stdout.decode() + p.stderr.decode())
else:
    diag("promtool not installed (Debian package prometheus); not run")
ok(dm.alive(), "the daemon is still running")
dm.stop()

# ---- configuration errors ------------------------------------------------

d = tmpdir()
path = os.path.join(d, "gemwatch.conf")
with open(path, "w") as f:
    f.write("capsule gemini://127.0.0.1/ max-idle=soon\n"
            "capsule gemini://127.0.0.1/a expect-body-bytes=2000\n"
            "capsule gemini://127.0.0.1/b max-idle=20s\n")
p = subprocess.run([GEMWATCH, "-n", "-f", path], capture_output=True,
                   text=True, timeout=30)
is_(p.returncode, 1, "gemwatch -n: bad max-idle and expect-body-bytes")
for line in ('gemwatch.conf:1: invalid duration "soon" for max-idle',
             'gemwatch.conf:2: invalid expect-body-bytes "2000" (expected '
             '>=SIZE, like >=2000 or >=4k)',
             'gemwatch.conf:3: max-idle (20s) must be shorter than the '
             'timeout (10s)'):
    ok(line in p.stderr, "reported: %s" % line, p.stderr)

# ---- a real terminator: nginx's stream module ----------------------------

MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"
if shutil.which("nginx") is None or not os.path.exists(MODULE):
    diag("nginx with its stream module is not installed (Debian packages "
         "nginx and libnginx-mod-stream); the real terminator is not tried")
    ok(True, "# SKIP nginx with libnginx-mod-stream is not installed")
else:
    d = tmpdir()
    # The test server makes a key and certificate there, then goes.
    GemServer("-K", d + "/key.pem", "-C", d + "/cert.pem").stop()
    port = free_port()
    with open(d + "/nginx.conf", "w") as f:
        f.write("load_module %s;\n"
                "worker_processes 1;\ndaemon off;\npid %s/nginx.pid;\n"
                "error_log stderr crit;\n"
                "events { worker_connections 64; }\n"
                "stream { server {\n"
                "  listen 127.0.0.1:%d ssl;\n"
                "  ssl_certificate %s/cert.pem;\n"
                "  ssl_certificate_key %s/key.pem;\n"
                "  proxy_pass 127.0.0.1:%d;\n"
                "  proxy_timeout %ds;\n} }\n"
                % (MODULE, d, port, d, d, back.port, NGINX_IDLE))
    nginx = subprocess.Popen(["nginx", "-e", "stderr", "-p", d, "-c",
                              d + "/nginx.conf"], stdout=subprocess.DEVNULL)
    _children.append(nginx)
    url = "gemini://127.0.0.1:%d" % port
    for _ in range(100):
        rc, r, _ = probe_json(url + "/page?bytes=10")
        if r["status"] == 20 or nginx.poll() is not None:
            break
        time.sleep(0.1)
    ok(r["success"], "nginx relays a page", r)
    rc, r, _ = probe_json(url + STALL)
    ok(rc == 0 and r["end"] == "close_notify" and r["body_bytes"] == 3000,
       "nginx: a stalled body ends with close_notify at proxy_timeout", r)
    ok((r["durations"]["idle_before_end"] or 0) >= NGINX_IDLE * LONG,
       "nginx: the gap is reported (%s s)"
       % r["durations"]["idle_before_end"])
    rc, r, _ = probe_json(url + STALL, "--max-idle", "1")
    ok(rc == 1 and (r["error"] or {}).get("reason") == "body",
       "nginx: --max-idle 1 fails it with reason body", r["error"])
    rc, r, _ = probe_json(url + "/stall?bytes=100&ms=300&end=reset")
    ok(r["end"] == "close_notify" and r["success"],
       "nginx: a backend's reset reaches the client as close_notify", r)
    nginx.terminate()
    nginx.wait(timeout=10)

done()
