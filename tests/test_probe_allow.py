"""probe-allow: an address pattern decides on the address connected to.

Issue 17, item 3: with the manual's own `probe-allow 127.0.0.*:*`,
/probe?target=gemini://127.0.0.1.attacker.invalid/ answered 200: fnmatch
matched the name, which was then resolved and probed wherever its owner
pointed it. Now a pattern made of an address matches addresses only: a
host name is resolved, and only the addresses the pattern admits are
connected to; with none, /probe answers 403 and logs the addresses it
refused. A name pattern still matches the host as spelt.

A DNS server on loopback UDP answers the .test names below (A and AAAA);
the daemons ask it through `resolver`. The test Gemini server listens on
127.0.0.1 and, when it can, on ::1 on the same port; a plain TCP listener
on 127.1.0.1, same port, counts the connections the daemon makes to an
address no pattern admits (it must see none).
"""
import socket
import threading
import urllib.parse

from gemtest import (Daemon, DnsServer, GemServer, SLOW, diag, done, is_, metric, ok,
                     parse_metrics)

ELSEWHERE = "127.1.0.1"  # loopback, outside 127.0.0.*


class Counter(threading.Thread):
    """A TCP listener that counts connections and closes each at once."""

    def __init__(self, host, port):
        super().__init__(daemon=True)
        self.n = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(16)
        self.start()

    def run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.n += 1
            c.close()


srv = GemServer()
P = srv.port
try:
    srv6 = GemServer("-6", "-p", str(P))
except RuntimeError as e:
    diag("no test server on [::1]:%d (%s): IPv6 cases skipped" % (P, e))
    srv6 = None
decoy = Counter(ELSEWHERE, P)

dns = DnsServer({
    "127.0.0.1.attacker.test": [ELSEWHERE],
    "allowed.test": ["127.0.0.1"],
    "mixed.test": [ELSEWHERE, "127.0.0.1"],
    "six.test": ["::1"],
    "dual.test": [ELSEWHERE, "::1"],
    "127.0.0.1.name.test": [ELSEWHERE],
})


def probe(d, target, debug=False):
    """GET /probe?target=URL: (status, content type, body text)."""
    q = {"target": target}
    if debug:
        q["debug"] = "true"
    status, hdrs, body = d.get("/probe?" + urllib.parse.urlencode(q),
                               timeout=30)
    return status, hdrs.get("Content-Type"), body.decode()


def url(host, path="/ok"):
    return "gemini://%s:%d%s" % (host, P, path)


def success(text):
    """probe_success of a metrics answer, None for anything else."""
    try:
        return metric(parse_metrics(text), "probe_success")
    except ValueError:
        return None


def refused(d, target, why):
    """One test: /probe refuses target with 403 and connects nowhere."""
    before = decoy.n
    status, ctype, text = probe(d, target)
    ok(status == 403 and "probe-allow" in text and
       (ctype or "").startswith("text/plain"), "%s: 403" % why,
       "%s %s %r" % (status, ctype, text))
    is_(decoy.n - before, 0, "%s: no connection to %s" % (why, ELSEWHERE))


# ---- an IPv4 address glob, and a name glob ---------------------------------
d = Daemon("resolver 127.0.0.1:%d\n"
           "timeout %gs\n"
           "probe-allow 127.0.0.*:*\n"
           "probe-allow *.name.test:*\n" % (dns.port, 5 * SLOW))

# The case: a name spelt like an allowed address, resolving
# elsewhere. Before the fix: 200, and a connection to 127.1.0.1.
refused(d, url("127.0.0.1.attacker.test"),
        "127.0.0.1.attacker.test (at %s) under 127.0.0.*:*" % ELSEWHERE)
log = d.logtext()
ok("/probe: gemini://127.0.0.1.attacker.test:%d/ok refused (no address of "
   "127.0.0.1.attacker.test is in probe-allow: %s)" % (P, ELSEWHERE) in log,
   "the log names the address refused", log[-2000:])

status, _, text = probe(d, url("allowed.test"))
is_(status, 200, "allowed.test, at 127.0.0.1: 200")
is_(success(text), 1.0, "allowed.test probed: probe_success 1")

# Both addresses: only the admitted one is connected to.
before = decoy.n
status, _, text = probe(d, url("mixed.test"), debug=True)
is_(status, 200, "mixed.test, at %s and 127.0.0.1: 200" % ELSEWHERE)
ok("probe_success 1" in text, "mixed.test probed at 127.0.0.1: success",
   text)
is_(decoy.n - before, 0, "mixed.test: no connection to %s" % ELSEWHERE)

# A name the system resolves (/etc/hosts): localhost is 127.0.0.1.
status, _, text = probe(d, "gemini://localhost:%d/ok" % P)
is_(status, 200, "localhost, at 127.0.0.1: 200")
is_(success(text), 1.0, "localhost probed: probe_success 1")

refused(d, url("six.test"), "six.test, at ::1 only")
refused(d, url("missing.test"), "a name that does not resolve")
refused(d, url(ELSEWHERE), "the literal %s" % ELSEWHERE)

# A name pattern matches the name as spelt, wherever it points.
before = decoy.n
status, _, text = probe(d, url("127.0.0.1.name.test"))
is_(status, 200, "*.name.test:* allows 127.0.0.1.name.test as spelt")
is_(success(text), 0.0, "127.0.0.1.name.test: the listener at %s is no "
    "Gemini server" % ELSEWHERE)
is_(decoy.n - before, 1, "127.0.0.1.name.test: connected to %s"
    % ELSEWHERE)
ok(d.alive(), "daemon alive")
d.stop()

# ---- an exact address without a port: 1965 only ---------------------------
d = Daemon("resolver 127.0.0.1:%d\n"
           "probe-allow 127.0.0.1\n" % dns.port)
status, _, text = probe(d, url("allowed.test"))
is_(status, 403, "127.0.0.1 (port 1965 only) refuses allowed.test:%d at "
    "once" % P)
ok(d.alive(), "daemon alive")
d.stop()

# ---- an IPv6 address -------------------------------------------------------
if srv6 is None:
    ok(True, "# SKIP no test server on ::1")
else:
    d = Daemon("resolver 127.0.0.1:%d\n"
               "timeout %gs\n"
               "probe-allow [::1]:*\n" % (dns.port, 5 * SLOW))
    status, _, text = probe(d, url("six.test"))
    is_(status, 200, "six.test, at ::1, under [::1]:*: 200")
    is_((success(text), "probe_ip_protocol 6" in text), (1.0, True),
        "six.test probed over IPv6")
    before = decoy.n
    status, _, text = probe(d, url("dual.test"))
    is_(status, 200, "dual.test, at %s and ::1: 200" % ELSEWHERE)
    is_((success(text), "probe_ip_protocol 6" in text), (1.0, True),
        "dual.test probed at ::1")
    is_(decoy.n - before, 0, "dual.test: no connection to %s" % ELSEWHERE)
    refused(d, url("allowed.test"), "allowed.test, at 127.0.0.1 only, "
            "under [::1]:*")
    status, _, text = probe(d, "gemini://[::1]:%d/ok" % P)
    is_(status, 200, "the literal [::1]: 200")
    ok(d.alive(), "daemon alive")
    d.stop()

done()
