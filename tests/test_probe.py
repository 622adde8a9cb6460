"""gemwatch probe against every behaviour of the test Gemini server.

Each case asserts what a user reads: the JSON fields (end, success,
error.reason, status, tls.version), the exit status, the words of the
human report, and that deadline cases end within the deadline plus a
small margin.
"""
import json
import socket

from gemtest import (GemServer, SLOW, diag, done, free_port, is_, ok,
                     probe_json, run_probe)

MARGIN = 1.0 * SLOW
FIELDS = {"capsule", "check", "url", "time", "success", "error", "address",
          "port", "ip_protocol", "durations", "tls", "cert", "status", "meta",
          "body_bytes", "end"}

srv = GemServer()


def case(path, end, reason, status=None, opts=(), server=srv, rc=None,
         deadline=None, name=None):
    """Probe path; assert end, reason (None: success), status."""
    name = name or path
    args = list(opts)
    if deadline is not None:
        args += ["-t", str(deadline)]
    code, r, elapsed = probe_json(server.url(path), *args)
    is_(r["end"], end, "%s: end" % name)
    if reason is None:
        ok(r["success"] is True and r["error"] is None,
           "%s: success" % name, r["error"])
        is_(code, 0, "%s: exit status 0" % name)
    else:
        is_(r["success"], False, "%s: success false" % name)
        is_((r["error"] or {}).get("reason"), reason,
            "%s: error.reason" % name)
        is_(code, 1 if rc is None else rc, "%s: exit status" % name)
    if status is not None or reason is None:
        is_(r["status"], status if status is not None else 20,
            "%s: status" % name)
    if deadline is not None:
        # The probe's own clock says whether it kept its deadline; the
        # command's wall time (start-up included, stretched on a loaded
        # machine) only that it did not hang.
        total = r["durations"]["total"]
        ok(total < deadline + MARGIN,
           "%s: ended within the %gs deadline (took %.2fs)"
           % (name, deadline, total))
        ok(elapsed < deadline + 10 * MARGIN,
           "%s: the command did not hang (%.2fs)" % (name, elapsed))
    return r


# ---- how responses end (SPEC §1) -----------------------------------------
r = case("/ok", "close_notify", None)
is_(set(r), FIELDS, "every field of SPEC §5 is present")
is_(r["tls"]["version"], "TLS1.3", "/ok: tls.version")
ok(r["tls"]["cipher"].startswith("TLS_"), "/ok: IANA cipher name",
   r["tls"]["cipher"])
is_(r["cert"]["subject"], "O=gemwatch test,CN=localhost", "cert.subject")
is_(r["cert"]["self_signed"], True, "cert.self_signed")
is_(len(r["cert"]["sha256"]), 64, "cert.sha256 is hex SHA-256")
is_(r["cert"]["tofu"], None, "no TOFU store in the probe command")
ok(r["body_bytes"] > 0, "/ok: body_bytes counted")
is_(r["ip_protocol"], 4, "ip_protocol 4")
is_(r["address"], "127.0.0.1", "address")
is_(r["port"], srv.port, "port")
is_(set(r["durations"]),
    {"resolve", "connect", "tls", "header", "body", "total", "max_gap",
     "idle_before_end"},
    "every phase timed, and the body's gaps")
ok(all(r["durations"][k] >= 0 for k in r["durations"]),
   "phase durations are non-negative")
ok(r["durations"]["max_gap"] + r["durations"]["idle_before_end"] <=
   r["durations"]["body"] + 2e-6,
   "the gaps lie within the body's time", r["durations"])
ok(r["time"].endswith("Z") and r["time"][10] == "T", "time is RFC 3339 UTC")

case("/premature", "premature", "close_notify")
case("/midrecord", "premature", "close_notify")
case("/reset", "reset", "close_notify")
case("/nothing-premature", "premature", "header")

# ---- deadlines ------------------------------------------------------------
case("/stall-header", "timeout", "timeout", deadline=2)
r = case("/stall-body", "timeout", "timeout", status=20, deadline=2)
is_(r["error"]["stage"], "body", "/stall-body: stage body")
r = case("/trickle?ms=300&n=1000", "timeout", "timeout", status=20,
         deadline=2, name="trickle one byte every 300 ms")
ok(0 < r["body_bytes"] < 20, "trickle: some bytes counted before the end",
   r["body_bytes"])
case("/trickle?ms=50&n=10", "close_notify", None,
     name="a short trickle completes")
case("/slow-header?ms=300", "close_notify", None, name="slow header")

# ---- headers ----------------------------------------------------------------
for path in ("/malformed", "/malformed2", "/badstatus", "/nocrlf",
             "/lfonly", "/meta1025", "/nothing"):
    code, r, _ = probe_json(srv.url(path))
    is_((r["error"] or {}).get("reason"), "header", "%s: reason header" % path)
    is_(r["error"]["stage"], "header", "%s: stage header" % path)
    is_(r["status"], None, "%s: no status" % path)
    is_(code, 1, "%s: exit status 1" % path)
r = case("/meta1024", "close_notify", None)
is_(len(r["meta"]), 1024, "a 1024-byte META is kept whole")

# ---- statuses ---------------------------------------------------------------
for code_, meta in ((10, "Enter a query"), (31, "gemini://localhost/ok"),
                    (51, None)):
    r = case("/status/%d" % code_, "close_notify", "status", status=code_)
    if meta is not None:
        is_(r["meta"], meta, "status %d: meta" % code_)
    is_(r["body_bytes"], 0, "status %d: no body" % code_)
r = case("/error-premature/51", "premature", "status", status=51)

# ---- limits -------------------------------------------------------------------
r = case("/big?bytes=5242880", "limit", "body", status=20)
ok(r["body_bytes"] > 4 * 1024 * 1024, "stopped just past max-body",
   r["body_bytes"])
case("/big?bytes=100000", "close_notify", None, name="a 100 kB body")

# ---- SNI ------------------------------------------------------------------------
r = case("/sni", "close_notify", None, name="SNI of localhost")
srv_local = srv.url("/sni", host="localhost")
code, r, _ = probe_json(srv_local)
is_(r["body_bytes"], len("localhost\n"), "SNI is the host name")
is_(r["cert"]["hostname_match"], True, "certificate matches localhost")
code, r, _ = probe_json(srv.url("/sni"))
is_(r["body_bytes"], len("-\n"), "no SNI for an IP literal")
code, r, _ = probe_json(srv_local, "--sni", "other.example")
is_(r["body_bytes"], len("other.example\n"), "--sni overrides the name")

# ---- request line ---------------------------------------------------------------
code, r, _ = probe_json(srv.url("/request?x=1"))
is_(r["body_bytes"], len(srv.url("/request?x=1")) + 1,
    "the request line is the absolute URL")

# ---- servers of other kinds -------------------------------------------------------
s12 = GemServer("-m", "tls12")
r = case("/ok", "close_notify", None, server=s12, name="TLS 1.2 only")
is_(r["tls"]["version"], "TLS1.2", "TLS 1.2 server: tls.version")

plain = GemServer("-m", "plain")
r = case("/", None, "tls", server=plain, name="plain TCP server")
is_(r["error"]["stage"], "tls", "plain TCP: stage tls")
is_(r["tls"], None, "plain TCP: tls null")

stall = GemServer("-m", "stall-handshake")
r = case("/", None, "timeout", server=stall, deadline=2,
         name="stall in the handshake")
is_(r["error"]["stage"], "tls", "handshake stall: stage tls")

closer = GemServer("-m", "accept-close")
case("/", None, "tls", server=closer, name="accept and close")
silent = GemServer("-m", "never-speak")
case("/", None, "timeout", server=silent, deadline=2, name="never speaks")

expired = GemServer("-c", "expired")
r = case("/ok", "close_notify", None, server=expired,
         name="expired certificate")
ok(r["cert"]["not_after"] < r["time"], "expired: not_after in the past",
   r["cert"]["not_after"])

# ---- addresses ----------------------------------------------------------------------
port = free_port()
code, r, _ = probe_json("gemini://127.0.0.1:%d/" % port)
is_((r["error"] or {}).get("reason"), "connect", "refused: reason connect")
is_(r["end"], None, "refused: end null")
is_(r["tls"], None, "refused: tls null")
is_(r["cert"], None, "refused: cert null")

try:
    s6 = GemServer("-6")
    code, r, _ = probe_json(s6.url("/ok", host="::1"))
    is_(r["ip_protocol"], 6, "[::1]: ip_protocol 6")
    is_(r["end"], "close_notify", "[::1]: close_notify")
    code, r, _ = probe_json(s6.url("/ok", host="::1"), "-4")
    is_((r["error"] or {}).get("reason"), "resolve",
        "-4 with an IPv6 literal: reason resolve")
    code, r, _ = probe_json(srv.url("/ok"), "-6")
    is_((r["error"] or {}).get("reason"), "resolve",
        "-6 with an IPv4 literal: reason resolve")
    code, r, _ = probe_json(s6.url("/ok", host="::1"), "-6")
    is_(r["ip_protocol"], 6, "-6 with an IPv6 literal connects")
except RuntimeError as e:
    diag("no IPv6 loopback: %s" % e)

# ---- the human report -----------------------------------------------------------------
code, out, _ = run_probe(srv.url("/ok"))
ok("complete: close_notify received" in out, "report says complete", out)
is_(code, 0, "report: exit 0")
code, out, _ = run_probe(srv.url("/premature"))
ok("the response may be truncated: the connection closed without "
   "close_notify" in out, "report says may be truncated", out)
is_(code, 1, "report: exit 1")

# ---- several URLs, usage errors ------------------------------------------------------------
code, out, _ = run_probe("-j", srv.url("/ok"), srv.url("/premature"))
doc = json.loads(out)
is_(len(doc["results"]), 2, "one result per URL")
is_([x["end"] for x in doc["results"]], ["close_notify", "premature"],
    "results in order")
is_(code, 1, "any failure: exit 1")
code, _, err = run_probe()
is_(code, 2, "no URL: usage error")
code, _, err = run_probe("http://example.org/")
is_(code, 2, "not gemini://: usage error")
ok("gemini://" in err, "the message names the scheme", err)
code, _, err = run_probe("gemini://user@example.org/")
is_(code, 2, "userinfo: usage error")
code, _, _ = run_probe("-t", "soon", srv.url("/ok"))
is_(code, 2, "bad -t: usage error")
code, _, _ = run_probe("-x", srv.url("/ok"))
is_(code, 2, "unknown option: usage error")

done()
