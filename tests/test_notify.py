"""notify commands (issue 13): a capsule made to go down, come back, lose
close_notify, regain it, change certificate, go down again across a
restart of the daemon; exactly the expected events, in order, once each,
with the right environment and JSON. Then notify-repeat, a command that
hangs (killed with what it started at notify-timeout while probing goes
on), a command that does not exist (logged, counted, retried), a hostile
META through the contrib scripts (log, ntfy and Gotify push to a local
HTTP server, mail through the local MTA when there is one), and
gemwatch notify-test.

The capsule is a Gemini server in this file, so that the test decides
how each request ends and every response carries its sequence number in
META: an event's result names the very probe that caused it, and the
debounce is checked against the server's log, not against a clock."""
import email
import email.header
import email.policy
import hashlib
import http.server
import mailbox
import os
import pwd
import secrets
import signal
import socket
import ssl
import subprocess
import threading
import time

from gemtest import (GEMWATCH, SLOW, TOP_SRCDIR, WRAPPER, Daemon, GemServer,
                     NotifyRecorder, diag, done, free_port, is_, metric, ok,
                     tmpdir)

CONTRIB = os.path.join(TOP_SRCDIR, "contrib", "notify")
# Under valgrind a TLS handshake alone can take a second: probe less often.
INTERVAL = 4 if WRAPPER else 1
HANG = 3 * INTERVAL     # notify-timeout of the hanging command


def wait_until(pred, timeout=20, what="condition"):
    end = time.monotonic() + timeout * SLOW
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    diag("timed out waiting for %s" % what)
    return pred()


def make_cert(d, name):
    """A fresh key and self-signed certificate, made by tests/gemserver."""
    key = os.path.join(d, name + ".key")
    crt = os.path.join(d, name + ".crt")
    GemServer("-K", key, "-C", crt).stop()
    with open(crt) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    return crt, key, hashlib.sha256(der).hexdigest()


class Capsule:
    """A Gemini server whose every answer the test decides: mode "ok",
    "fail" (status 40), "premature" (no close_notify), "hostile" (META
    self.hostile); cert picks the certificate. Each request gets a
    sequence number, logged with the mode and certificate it got."""

    def __init__(self, certs, port=0):
        self.ctxs = []
        for crt, key, _ in certs:
            c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            c.load_cert_chain(crt, key)
            self.ctxs.append(c)
        self.lock = threading.Lock()
        self.mode = "ok"
        self.cert = 0
        self.hostile = b""
        self.log = []
        self.port = port
        self.sock = None
        self.start()

    def start(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(16)
        s.settimeout(0.2)
        self.port = s.getsockname()[1]
        self.sock = s
        self.running = True
        self.thread = threading.Thread(target=self._accept, args=(s,),
                                       daemon=True)
        self.thread.start()

    def stop(self):
        self.running = False
        self.thread.join()

    def url(self):
        return "gemini://127.0.0.1:%d/" % self.port

    def set(self, mode=None, cert=None):
        with self.lock:
            if mode is not None:
                self.mode = mode
            if cert is not None:
                self.cert = cert
            return len(self.log)

    def since(self, start, mode):
        """Requests logged after index start that got this mode."""
        with self.lock:
            return [e for e in self.log[start:] if e[1] == mode]

    def _accept(self, s):
        while self.running:
            try:
                conn, _ = s.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            with self.lock:
                seq = len(self.log) + 1
                entry = (seq, self.mode, self.cert)
                self.log.append(entry)
            threading.Thread(target=self._serve, args=(conn, entry),
                             daemon=True).start()
        s.close()

    def _serve(self, conn, entry):
        seq, mode, cert = entry
        conn.settimeout(10)
        tls = None
        try:
            tls = self.ctxs[cert].wrap_socket(conn, server_side=True)
            req = b""
            while b"\r\n" not in req and len(req) < 2048:
                chunk = tls.recv(2048)
                if not chunk:
                    return
                req += chunk
            if mode == "ok":
                tls.sendall(b"20 text/gemini; seq=%d\r\n# hello\n" % seq)
            elif mode == "fail":
                tls.sendall(b"40 busy seq=%d\r\n" % seq)
            elif mode == "premature":
                tls.sendall(b"20 text/gemini; seq=%d\r\n# cut\n" % seq)
                return      # closed below without close_notify
            elif mode == "hostile":
                tls.sendall(b"20 " + self.hostile + b"\r\n")
            tls.unwrap()
        except (OSError, ssl.SSLError, ValueError):
            pass
        finally:
            (tls or conn).close()


def seq_of(doc):
    meta = doc["result"]["meta"] or ""
    return int(meta.rsplit("seq=", 1)[1]) if "seq=" in meta else None


def notify_count(dm, event, result):
    return metric(dm.metrics(), "gemwatch_notify_total", event=event,
                  result=result) or 0


# ---- the daemon, its capsules and what they go through --------------------

base = tmpdir()
cert1 = make_cert(base, "one")
cert2 = make_cert(base, "two")
rec = NotifyRecorder(base)
cap = Capsule([cert1, cert2])
ep = GemServer()
expired = GemServer("-c", "expired")
closed_port = free_port()
# Not handed to the commands: only PATH, HOME, USER, LOGNAME and a few
# locale variables pass from the daemon's environment.
os.environ["GEMWATCH_TEST_LEAK"] = "secret"

conf = ("interval %ds\n" % INTERVAL +
        "notify-after 2\n"
        "notify %s\n"
        "capsule %s name=main\n"
        "capsule %s name=ep error-path=/error-premature/51\n"
        "capsule %s name=old\n"
        "capsule gemini://127.0.0.1:%d/ name=quiet notify=no\n"
        % (rec.path, cap.url(), ep.url("/"), expired.url("/"), closed_port))
dm = Daemon(conf)
state_dir = os.path.join(dm.dir, "state")
day = time.gmtime().tm_yday


def phase(mode=None, cert=None, requests=3, what=""):
    """Switch the capsule, then wait for this many requests served so."""
    start = cap.set(mode, cert)
    want = mode or cap.mode
    wait_until(lambda: len(cap.since(start, want)) >= requests,
               what="%d requests (%s)" % (requests, what))
    return start


def wait_events(n, what):
    return wait_until(lambda: len(rec.events("main")) >= n, what=what)


phase("ok", requests=3, what="baseline")
is_(rec.names("main"), [], "a capsule that works sends nothing")
phase("fail", requests=4, what="failures")
wait_events(1, "down")
# A reload while the capsule is down: the down is not sent again.
dm.signal(signal.SIGHUP)
ok(wait_until(lambda: "reload: " in dm.logtext(), what="the reload"),
   "reloaded while down")
phase("fail", requests=3, what="failures after the reload")
is_(rec.names("main"), ["down"], "a reload keeps what was sent")
phase("ok", requests=3, what="back")
wait_events(2, "up")
phase("premature", requests=4, what="no close_notify")
wait_events(3, "close_notify_lost")
phase("ok", requests=3, what="close_notify again")
wait_events(4, "close_notify_back")
phase(cert=1, requests=4, what="the second certificate")
wait_events(5, "cert_changed")
is_(rec.names("main"),
    ["down", "up", "close_notify_lost", "close_notify_back", "cert_changed"],
    "exactly these events, in this order, once each")
ev = rec.events("main")
log = {s: (m, c) for s, m, c in cap.log}


def check_common(env, doc, name):
    is_(env["GEMWATCH_CAPSULE"], "main", "%s: GEMWATCH_CAPSULE" % name)
    is_(env["GEMWATCH_CHECK"], "page", "%s: GEMWATCH_CHECK" % name)
    is_(env["GEMWATCH_URL"], cap.url(), "%s: GEMWATCH_URL" % name)
    ok(env["GEMWATCH_SUMMARY"].startswith("gemwatch: main") and
       "\n" not in env["GEMWATCH_SUMMARY"], "%s: one-line summary" % name,
       env["GEMWATCH_SUMMARY"])
    same = all(doc[k] == (env["GEMWATCH_" + k.upper()] or None)
               for k in ("event", "capsule", "check", "url", "time",
                         "since", "reason", "message", "meta", "end",
                         "summary"))
    ok(same and doc["status"] == (int(env["GEMWATCH_STATUS"])
                                  if env["GEMWATCH_STATUS"] else None),
       "%s: stdin's JSON holds the same values" % name)
    is_(doc["result"]["capsule"], "main", "%s: and the probe's result" % name)
    ok("GEMWATCH_TEST_LEAK" not in env and env.get("PATH"),
       "%s: PATH passed, the daemon's other variables not" % name)


env, doc = ev[0]
check_common(env, doc, "down")
s = seq_of(doc)
ok(s is not None and log[s][0] == "fail" and log[s - 1][0] == "fail" and
   log[s - 2][0] == "ok",
   "down fires on the second failure in a row (notify-after 2)",
   "seq %r, log %r" % (s, cap.log))
is_((env["GEMWATCH_REASON"], env["GEMWATCH_STATUS"],
     env["GEMWATCH_MESSAGE"], env["GEMWATCH_END"]),
    ("status", "40", "unexpected status 40", "close_notify"),
    "down: reason, status, message, end")
ok(env["GEMWATCH_SINCE"] <= env["GEMWATCH_TIME"] and
   len(env["GEMWATCH_SINCE"]) == 20, "down: SINCE is RFC 3339, not after TIME",
   (env["GEMWATCH_SINCE"], env["GEMWATCH_TIME"]))
is_(doc["repeat"], False, "down: not a repeat")
down_since = env["GEMWATCH_SINCE"]

env, doc = ev[1]
check_common(env, doc, "up")
s = seq_of(doc)
ok(s is not None and log[s][0] == "ok" and log[s - 1][0] == "fail",
   "up fires on the first success", "seq %r" % s)
is_((env["GEMWATCH_REASON"], env["GEMWATCH_STATUS"], env["GEMWATCH_END"]),
    ("", "20", "close_notify"), "up: no reason, status 20, close_notify")
is_(env["GEMWATCH_SINCE"], down_since, "up: SINCE is when the outage began")
ok(env["GEMWATCH_SUMMARY"].startswith("gemwatch: main is up again after "),
   "up: summary", env["GEMWATCH_SUMMARY"])

env, doc = ev[2]
check_common(env, doc, "close_notify_lost")
s = seq_of(doc)
ok(s is not None and log[s][0] == "premature" and
   log[s - 1][0] == "premature" and log[s - 2][0] == "ok",
   "close_notify_lost fires on the second response without it", "seq %r" % s)
is_((env["GEMWATCH_REASON"], env["GEMWATCH_STATUS"], env["GEMWATCH_END"]),
    ("close_notify", "20", "premature"),
    "close_notify_lost: reason, status, end")
is_(env["GEMWATCH_SUMMARY"], "gemwatch: main: responses end without "
    "close_notify (premature)", "close_notify_lost: summary")

env, doc = ev[3]
check_common(env, doc, "close_notify_back")
s = seq_of(doc)
ok(s is not None and log[s][0] == "ok" and log[s - 1][0] == "premature",
   "close_notify_back fires on the first response with it", "seq %r" % s)
is_(env["GEMWATCH_END"], "close_notify", "close_notify_back: end")
is_(env["GEMWATCH_SINCE"], ev[2][0]["GEMWATCH_SINCE"],
    "close_notify_back: SINCE is when it was lost")

env, doc = ev[4]
check_common(env, doc, "cert_changed")
s = seq_of(doc)
ok(s is not None and log[s][1] == 1 and log[s - 1][1] == 1 and
   log[s - 2][1] == 0,
   "cert_changed fires on the second probe with the new certificate",
   "seq %r" % s)
is_((env["GEMWATCH_CERT_SHA256"], env["GEMWATCH_PREVIOUS_CERT_SHA256"]),
    (cert2[2], cert1[2]), "cert_changed: the new and the previous SHA-256")
is_(doc["previous_cert_sha256"], cert1[2], "cert_changed: in the JSON too")
is_(doc["result"]["cert"]["tofu"], "changed", "cert_changed: TOFU changed")
is_(env["GEMWATCH_SUMMARY"],
    "gemwatch: main presents a new certificate with a new key",
    "cert_changed: summary")
ok(env["GEMWATCH_CERT_NOT_AFTER"] > env["GEMWATCH_TIME"],
   "cert_changed: CERT_NOT_AFTER in the future")

# The other capsules: their own events, once; notify=no says nothing.
ep_ev = wait_until(lambda: rec.events("ep"), what="ep's event")
is_([e["GEMWATCH_EVENT"] + "/" + e["GEMWATCH_CHECK"] for e, _ in ep_ev],
    ["close_notify_lost/error_page"],
    "an error page without close_notify: close_notify_lost, check "
    "error_page, once")
if ep_ev:
    is_(ep_ev[0][0]["GEMWATCH_SUMMARY"], "gemwatch: ep (error page): "
        "responses end without close_notify (premature)",
        "error page: summary")
old_ev = rec.events("old")
is_([e["GEMWATCH_EVENT"] for e, _ in old_ev], ["cert_expiring"],
    "an expired certificate: cert_expiring, once")
if old_ev:
    ok("certificate expired" in old_ev[0][0]["GEMWATCH_SUMMARY"],
       "cert_expiring: summary says expired",
       old_ev[0][0]["GEMWATCH_SUMMARY"])
is_(rec.events("quiet"), [], "notify=no: nothing for a capsule that fails")
ok((metric(dm.metrics(), "gemini_probe_failures_total", capsule="quiet",
           check="page", reason="connect") or 0) >= 2,
   "(it did fail)")
is_(notify_count(dm, "down", "ok"), 1.0, "gemwatch_notify_total: 1 down ok")
is_(notify_count(dm, "cert_changed", "ok"), 1.0,
    "gemwatch_notify_total: 1 cert_changed ok")

# Down again, then a restart while it is down: the down is not sent again,
# and the up after the restart knows when the outage began.
cap.stop()
wait_events(6, "down (connection refused)")
env, doc = rec.events("main")[5]
is_((env["GEMWATCH_EVENT"], env["GEMWATCH_REASON"], env["GEMWATCH_STATUS"]),
    ("down", "connect", ""), "refused: down, reason connect, no status")
down_since = env["GEMWATCH_SINCE"]
rc, _ = dm.stop()
is_(rc, 0, "daemon stopped")
ok(os.path.exists(os.path.join(state_dir, "notify.state")),
   "state-dir/notify.state written")
ok(not [n for n in os.listdir(state_dir) if n.startswith("notify.state.")],
   "no temporary file left beside it")
before = {c: rec.names(c) for c in ("main", "ep", "old")}
dm = Daemon("state-dir %s\n" % state_dir + conf)
wait_until(lambda: (metric(dm.metrics(), "gemini_probe_failures_total",
                           capsule="main", check="page",
                           reason="connect") or 0) >= 3,
           what="three refused probes after the restart")
wait_until(lambda: (metric(dm.metrics(), "gemini_probes_total", capsule="ep",
                           check="error_page") or 0) >= 3, what="ep probes")
after = {c: rec.names(c) for c in ("main", "ep", "old")}
if time.gmtime().tm_yday != day:
    after["old"] = before["old"]     # a new UTC day: cert_expiring again
is_(after, before, "after a restart: no open event is sent again")
cap.start()
wait_events(7, "up after the restart")
env, doc = rec.events("main")[6]
is_(env["GEMWATCH_EVENT"], "up", "up after the restart")
is_(env["GEMWATCH_SINCE"], down_since,
    "its SINCE is the outage's start, from before the restart")
ok(dm.alive(), "daemon alive")
is_(dm.stop()[0], 0, "daemon exits 0")

# ---- repeat, a command that hangs, a command that does not exist ----------

d2 = tmpdir()
rec2 = NotifyRecorder(d2)
hang = os.path.join(d2, "hang.sh")
with open(hang, "w") as f:
    # It hangs once; later runs end at once, so that the hangs do not
    # fill the queue while downs repeat every 2 seconds.
    f.write("#!/bin/sh\nmkdir %s/hung 2>/dev/null || exit 0\n"
            "sleep 600 &\necho \"$$ $!\" >%s/pids.$$\nwait\n" % (d2, d2))
os.chmod(hang, 0o755)
missing = "/nonexistent/gemwatch-notify-%s" % secrets.token_hex(4)
cap2 = Capsule([cert1])
cap2.set("fail")
dm2 = Daemon("interval %ds\nnotify-after 2\nnotify-repeat 2s\n"
             "notify-timeout %ds\nnotify %s\nnotify %s\nnotify %s\n"
             "capsule %s name=flaky\n"
             % (INTERVAL, HANG, rec2.path, hang, missing, cap2.url()))


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


pidfiles = wait_until(lambda: [n for n in os.listdir(d2)
                               if n.startswith("pids.")], what="a hang")
pids = []
if pidfiles:
    with open(os.path.join(d2, pidfiles[0])) as f:
        pids = [int(p) for p in f.read().split()]
ok(len(pids) == 2 and all(alive(p) for p in pids),
   "the hanging command and its child run", pids)
p0 = metric(dm2.metrics(), "gemini_probes_total", capsule="flaky",
            check="page")
samples, healthy = [], True
while pids and alive(pids[0]):
    st, _, _ = dm2.get("/healthz", timeout=5)
    healthy = healthy and st == 200
    samples.append(metric(dm2.metrics(), "gemini_probes_total",
                          capsule="flaky", check="page"))
    time.sleep(0.2)
    if len(samples) > 100 * SLOW:
        break
ok(healthy and samples, "/healthz answers while the command hangs")
ok(samples and samples[-1] > p0,
   "probing carries on while the command hangs",
   "probes %r, then %r" % (p0, samples[-1:]))
wait_until(lambda: not any(alive(p) for p in pids), timeout=5,
           what="the group killed")
ok(pids and not any(alive(p) for p in pids),
   "killed at notify-timeout: the command and the child it started")
ok(wait_until(lambda: notify_count(dm2, "down", "timeout") >= 1),
   "counted: gemwatch_notify_total{event=down,result=timeout}")
ok("was still running after %ds: killed" % HANG in dm2.logtext(),
   "the kill is logged")
ok(wait_until(lambda: notify_count(dm2, "down", "error") >= 1),
   "a missing command is counted as result=error")
ok(wait_until(lambda: "%s cannot be run: No such file or directory; trying "
              "again in 5s" % missing in dm2.logtext()),
   "logged with why, and retried")

downs = wait_until(lambda: len(rec2.events("flaky")) >= 3 and
                   rec2.events("flaky"), what="repeated downs")
names = [e["GEMWATCH_EVENT"] for e, _ in downs or []]
ok(len(names) >= 3 and set(names) == {"down"},
   "notify-repeat: down sent again while it lasts", names)
if downs:
    downs.sort(key=lambda e: e[0]["GEMWATCH_TIME"])
    is_([d["repeat"] for _, d in downs[:3]], [False, True, True],
        "the first is new, the others repeats")
    is_(downs[1][0]["GEMWATCH_REPEAT"], "1", "GEMWATCH_REPEAT=1")
    ok(downs[1][0]["GEMWATCH_SUMMARY"].startswith(
        "gemwatch: flaky is still down: "), "a repeat says still down")
    # In the order of the events (runs may start out of order).
    ts = sorted(time.mktime(time.strptime(e["GEMWATCH_TIME"],
                                          "%Y-%m-%dT%H:%M:%SZ"))
                for e, _ in downs)
    ok(all(b - a >= 2 for a, b in zip(ts, ts[1:])),
       "no sooner than notify-repeat apart", ts)
    is_({e["GEMWATCH_SINCE"] for e, _ in downs},
        {downs[0][0]["GEMWATCH_SINCE"]}, "all with the outage's start")
ok(dm2.alive(), "daemon alive")
is_(dm2.stop()[0], 0, "daemon exits 0, killing the commands still running")

# ---- a hostile META through the contrib scripts ---------------------------

d3 = tmpdir()
rec3 = NotifyRecorder(d3)
canary = os.path.join(d3, "canary")
HOSTILE = ("text/gemini; $(touch %s1) `touch %s2` ';touch %s3;' \"q\" "
           "\x1b[31mred\x1b[0m\x0bBcc: victim@example.org\x0cFF\x07"
           "\u0085NEL\u2028LS\u202eRLO\tTAB %%s%%n @/etc/passwd <x é"
           % (canary, canary, canary))
CLEANED = ("text/gemini; $(touch %s1) `touch %s2` ';touch %s3;' \"q\" "
           "?[31mred?[0m?Bcc: victim@example.org?FF?"
           "?NEL?LS?RLO TAB %%s%%n @/etc/passwd <x é"
           % (canary, canary, canary))


class Sink(http.server.BaseHTTPRequestHandler):
    got = []

    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        Sink.got.append((self.path, dict(self.headers), self.rfile.read(n)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
threading.Thread(target=sink.serve_forever, daemon=True).start()
hport = sink.server_address[1]
logfile = os.path.join(d3, "events.log")
me = pwd.getpwuid(os.geteuid()).pw_name
sendmail = os.environ.get("SENDMAIL", "/usr/sbin/sendmail")
mail = os.access(sendmail, os.X_OK)
token = secrets.token_hex(4)
name = "hostile-" + token
cmds = ["notify %s" % rec3.path,
        "notify %s/log.sh %s" % (CONTRIB, logfile),
        "notify %s/push.sh http://127.0.0.1:%d/capsules" % (CONTRIB, hport),
        "notify %s/push.sh -g \"http://127.0.0.1:%d/message?token=T\""
        % (CONTRIB, hport)]
if mail:
    cmds.append("notify %s/mail.sh %s" % (CONTRIB, me))
cap3 = Capsule([cert1])
cap3.hostile = HOSTILE.encode()
cap3.set("hostile")
dm3 = Daemon("interval %ds\n%s\ncapsule %s name=%s expect-status=30\n"
             % (INTERVAL, "\n".join(cmds), cap3.url(), name))
ev3 = wait_until(lambda: rec3.events(name), what="the hostile down")
wait_until(lambda: notify_count(dm3, "down", "ok") >= len(cmds),
           what="every command done")
is_(notify_count(dm3, "down", "ok"), float(len(cmds)),
    "every command ran and succeeded")
ok(not [n for n in os.listdir(d3) if n.startswith("canary")],
   "nothing in META was executed: no canary file")
env, doc = ev3[0] if ev3 else ({}, {})
is_(env.get("GEMWATCH_META"), CLEANED,
    "GEMWATCH_META: the text, control characters neutralised")
diag("GEMWATCH_META arrived as: %r" % env.get("GEMWATCH_META"))
diag("GEMWATCH_SUMMARY arrived as: %r" % env.get("GEMWATCH_SUMMARY"))
is_(env.get("GEMWATCH_SUMMARY"), "gemwatch: %s is down: unexpected status "
    "20 (%s)" % (name, CLEANED[:120] + "..."),
    "the summary carries the cut, cleaned META")
is_(doc.get("meta"), CLEANED, "the JSON's meta is the cleaned text")
is_((doc.get("result") or {}).get("meta"), HOSTILE,
    "result.meta is the exact META, as JSON-escaped data")

with open(logfile) as f:
    lines = f.read().splitlines()
is_(len(lines), 1, "log.sh: one line")
if lines:
    is_(lines[0].split("\t"), [env["GEMWATCH_TIME"], "down", name, "page",
                                env["GEMWATCH_SUMMARY"]],
        "log.sh: time, event, capsule, check, summary")

wait_until(lambda: len(Sink.got) >= 2, what="two pushes")
ntfy = [g for g in Sink.got if g[0] == "/capsules"]
gotify = [g for g in Sink.got if g[0].startswith("/message")]
if ntfy:
    path, headers, body = ntfy[0]
    title = str(email.header.make_header(
        email.header.decode_header(headers.get("Title", ""))))
    is_(title, env["GEMWATCH_SUMMARY"], "push.sh (ntfy): Title")
    is_(headers.get("Priority"), "high", "push.sh (ntfy): high priority")
    text = body.decode()
    ok(CLEANED in text and "root:" not in text and "\x1b" not in text,
       "push.sh (ntfy): META as text, no file read by curl", text)
else:
    ok(False, "push.sh (ntfy): a POST arrived")
if gotify:
    path, headers, body = gotify[0]
    msg = email.message_from_bytes(
        b"Content-Type: " + headers["Content-Type"].encode() + b"\r\n\r\n" +
        body, policy=email.policy.HTTP)
    form = {p.get_param("name", header="content-disposition"):
            p.get_payload(decode=True).decode() for p in msg.iter_parts()}
    is_(form.get("title"), env["GEMWATCH_SUMMARY"], "push.sh -g: title")
    is_(form.get("priority"), "8", "push.sh -g: priority")
    ok(CLEANED in form.get("message", "") and
       "root:" not in form.get("message", ""),
       "push.sh -g: META as text, no file read by curl")
else:
    ok(False, "push.sh -g (Gotify): a POST arrived")


def find_mail():
    for box in ("/var/mail/" + me, "/var/mail/mail", "/var/mail/root"):
        if not os.path.exists(box):
            continue
        mb = mailbox.mbox(box, create=False)
        for key, m in mb.items():
            subj = str(email.header.make_header(
                email.header.decode_header(m.get("Subject", ""))))
            if name in subj:
                return box, mb, key, m, subj
    return None


if mail:
    found = wait_until(find_mail, what="the mail")
    ok(found, "mail.sh: a mail arrived through %s" % sendmail)
    if found:
        box, mb, key, m, subj = found
        raw = mb.get_bytes(key)
        is_(subj, env["GEMWATCH_SUMMARY"], "mail.sh: Subject is the summary")
        is_(m.get("X-Gemwatch-Event"), "down", "mail.sh: X-Gemwatch-Event")
        ok(m.get("Bcc") is None and "victim" not in str(m.get("To")),
           "mail.sh: no header injected by META")
        body = m.get_payload(decode=True).decode()
        ok("meta:        " + CLEANED in body,
           "mail.sh: the body has the cleaned META")
        diag("the mail in %s:\n%s" % (box, raw.decode()))
        try:    # leave the mailbox as it was (flush makes a new file)
            st = os.stat(box)
            mb.lock()
            mb.remove(key)
            mb.flush()
            mb.unlock()
            os.chown(box, st.st_uid, st.st_gid)
            os.chmod(box, st.st_mode & 0o7777)
        except (OSError, mailbox.Error) as e:
            diag("could not remove the test mail from %s: %s" % (box, e))
else:
    print("ok - # SKIP mail round trip: no MTA (%s missing; "
          "contrib/bootstrap.sh installs exim4-daemon-light)" % sendmail)
ok(dm3.alive(), "daemon alive")
is_(dm3.stop()[0], 0, "daemon exits 0")
sink.shutdown()

# ---- gemwatch notify-test --------------------------------------------------

d4 = tmpdir()
rec4 = NotifyRecorder(d4)
conf4 = os.path.join(d4, "gemwatch.conf")


def notify_test(text, *args):
    with open(conf4, "w") as f:
        f.write("state-dir %s/state\n" % d4 + text)
    p = subprocess.run([*WRAPPER, GEMWATCH, "notify-test", "-f", conf4,
                        *args], capture_output=True, text=True,
                       timeout=60 * SLOW)
    return p.returncode, p.stdout, p.stderr


rc, out, err = notify_test("notify %s\ncapsule gemini://127.0.0.1/ name=a\n"
                           "capsule gemini://127.0.0.1:1966/ name=b\n"
                           % rec4.path, "b")
is_(rc, 0, "notify-test: exit 0 when every command succeeds")
is_(out, "notify-test: 1 of 1 commands succeeded\n", "notify-test: says so")
t = rec4.events()
is_([(e["GEMWATCH_EVENT"], e["GEMWATCH_CAPSULE"], e["GEMWATCH_URL"])
     for e, _ in t], [("test", "b", "gemini://127.0.0.1:1966/")],
    "notify-test: one test event about the capsule named")
if t:
    is_(t[0][1]["result"], None, "notify-test: no result in its JSON")
rc, out, err = notify_test("notify %s\nnotify /bin/false\n"
                           "capsule gemini://127.0.0.1/ name=a\n" % rec4.path)
is_(rc, 1, "notify-test: exit 1 when a command fails")
ok("/bin/false exited 1" in err, "notify-test: the failure is shown", err)
rc, out, err = notify_test("notify %s\n" % rec4.path, "nosuch")
is_(rc, 2, "notify-test: exit 2 for an unknown capsule")
rc, out, err = notify_test("capsule gemini://127.0.0.1/\n")
is_(rc, 1, "notify-test: exit 1 without a notify command")
ok("has no notify command" in err, "notify-test: and says why", err)
ok(not os.path.exists(os.path.join(d4, "state", "notify.state")),
   "notify-test leaves the daemon's state alone")

done()
