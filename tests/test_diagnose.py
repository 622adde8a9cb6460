"""gemwatch diagnose against tests/gemserver -m conform, which answers as
the Gemini specification asks, then with each rule broken in turn (-b):
every check passes on the conforming server and fails (or warns, where the
rule is not a MUST) on the breaking one."""
import json
import os
import socket
import subprocess

from gemtest import (GEMWATCH, SLOW, WRAPPER, GemServer, diag, done,
                     free_port, is_, ok, tmpdir)


def diagnose(target, *opts, timeout=120):
    """Run `gemwatch diagnose -j OPTS TARGET`: (exit status, document)."""
    p = subprocess.run([*WRAPPER, GEMWATCH, "diagnose", "-j", "-t", "3",
                        *opts, target], capture_output=True, text=True,
                       timeout=timeout * SLOW)
    try:
        return p.returncode, json.loads(p.stdout)
    except ValueError:
        raise RuntimeError("bad diagnose output (rc %d): %r %r"
                           % (p.returncode, p.stdout, p.stderr))


def checks(doc):
    return {c["name"]: c for c in doc["checks"]}


def verdicts(doc):
    return {c["name"]: c["verdict"] for c in doc["checks"]}


# One key and certificate for the servers (generating them takes a while).
d = tmpdir()
KEYS = ("-K", os.path.join(d, "key.pem"), "-C", os.path.join(d, "cert.pem"))


def conform(*args):
    keys = () if "-c" in args else KEYS
    return GemServer("-m", "conform", "-n", "127.0.0.1", *keys, *args)


# ---- the conforming server passes every check -----------------------------
gs = conform()
target = "127.0.0.1:%d" % gs.port
rc, doc = diagnose(target)
v = verdicts(doc)
names = subprocess.run([GEMWATCH, "diagnose", "--list"], capture_output=True,
                       text=True).stdout
listed = [l for l in names.splitlines() if l and not l.startswith(" ")]
is_(len(doc["checks"]), len(listed), "every listed check ran")
ok(len(listed) >= 25, "about twenty-five checks", listed)
is_(v.pop("IPv6Address"), "skip", "conform: IPv6Address skips an IPv4 literal")
is_(sorted(set(v.values())), ["pass"], "conform: every other check passes")
if set(v.values()) != {"pass"}:
    diag({c["name"]: c["why"] for c in doc["checks"] if c["verdict"] != "pass"})
is_(rc, 0, "conform: exit 0")
is_(doc["counts"], {"pass": len(listed) - 1, "fail": 0, "warn": 0,
                    "skip": 1}, "conform: counts")
c = checks(doc)
is_(c["URLEmpty"]["request"], "\\r\\n", "the request is shown escaped")
is_(c["URLEmpty"]["status"], 59, "URLEmpty: status 59")
is_(c["URLEmpty"]["end"], "close_notify", "URLEmpty: ended with close_notify")
is_(c["URLInvalidUTF8Byte"]["request"],
    "gemini://127.0.0.1:%d/\\xff\\xfe\\r\\n" % gs.port,
    "a byte that is not UTF-8 is shown as \\xNN")
is_(len(c["URLMaxSize"]["request"]), 1024 + 4, "URLMaxSize sends 1024 bytes")
is_(len(c["URLAboveMaxSize"]["request"]), 1025 + 4,
    "URLAboveMaxSize sends 1025 bytes")
is_(c["TLSRequired"]["status"], None, "TLSRequired: no Gemini header")
ok(c["ResponseFormat"]["meta"].startswith("text/gemini"),
   "ResponseFormat: META kept", c["ResponseFormat"]["meta"])
is_(doc["summary"], "%d pass, 1 skip" % (len(listed) - 1), "summary line")

# Words for a person.
p = subprocess.run([GEMWATCH, "diagnose", "-t", "3", "--only",
                    "URLAboveMaxSize,URLEmpty", target],
                   capture_output=True, text=True, timeout=60 * SLOW)
is_(p.returncode, 0, "words: exit 0")
ok("URLAboveMaxSize" in p.stdout and "request: \\r\\n" in p.stdout
   and "\n2 pass\n" in p.stdout, "words: checks, request, summary", p.stdout)

# -4 skips IPv6; --only runs only what it names.
rc, doc = diagnose(target, "-4", "--only", "IPv4Address,IPv6Address")
is_(verdicts(doc), {"IPv4Address": "pass", "IPv6Address": "skip"},
    "-4: IPv6Address skipped")
ok("only IPv4" in checks(doc)["IPv6Address"]["why"], "-4: says why",
   checks(doc)["IPv6Address"]["why"])
gs.stop()

# ---- usage errors -----------------------------------------------------------
for args, what in ((["--only", "NoSuchCheck", "127.0.0.1"], "unknown check"),
                   ([], "no target"), (["-t", "0", "127.0.0.1"], "bad -t"),
                   (["a", "b"], "two targets"),
                   (["http://127.0.0.1/"], "not a gemini URL")):
    p = subprocess.run([GEMWATCH, "diagnose", *args], capture_output=True,
                       text=True, timeout=30)
    is_(p.returncode, 2, "usage error exits 2: " + what)

# ---- each rule broken in turn ----------------------------------------------
BROKEN = [
    # (server arguments, --only, the verdict each check must get)
    (("-r", "header"), {"ResponseFormat": "fail"}),
    (("-r", "nomime"), {"ResponseFormat": "fail"}),
    (("-r", "redirect"), {"HomepageNoRedirect": "fail"}),
    (("-r", "notfound-body"), {"PageNotFound": "fail"}),
    (("-r", "notfound-status"), {"PageNotFound": "warn"}),
    (("-r", "lf"), {"RequestMissingCR": "warn"}),
    (("-r", "port"), {"URLIncludePort": "warn"}),
    (("-r", "max1024"), {"URLMaxSize": "warn"}),
    (("-r", "max1025"), {"URLAboveMaxSize": "fail"}),
    (("-r", "anyport"), {"URLWrongPort": "warn"}),
    (("-r", "anyhost"), {"URLWrongHost": "warn"}),
    (("-r", "anyscheme"), {"URLSchemeHTTP": "warn", "URLSchemeHTTPS": "warn",
                           "URLSchemeGopher": "warn"}),
    (("-r", "lenient"), {"URLEmpty": "warn", "URLRelative": "warn",
                         "URLInvalid": "warn", "URLSchemeMissing": "warn",
                         "URLInvalidUTF8Byte": "warn"}),
    (("-r", "dotdot"), {"URLDotEscape": "warn"}),
    (("-r", "userinfo"), {"URLUserinfo": "fail"}),
    (("-r", "fragment"), {"URLFragment": "fail"}),
    (("-r", "no-close-notify"), {"URLEmpty": "fail", "PageNotFound": "fail",
                                 "ResponseFormat": "fail"}),
    (("-r", "serial"), {"ConcurrentConnections": "warn"}),
    (("-c", "expired"), {"TLSClaims": "warn"}),
]
for args, want in BROKEN:
    gs = conform(*args)
    rc, doc = diagnose("127.0.0.1:%d" % gs.port, "--only", ",".join(want))
    what = " ".join(args)
    is_(verdicts(doc), want, "%s: %s" % (what, want))
    is_(rc, 1 if "fail" in want.values() else 0,
        "%s: exit %d" % (what, 1 if "fail" in want.values() else 0))
    if args == ("-r", "no-close-notify"):
        ok(all("close_notify" in c["why"] for c in doc["checks"]),
           "no-close-notify: the why says so",
           [c["why"] for c in doc["checks"]])
    if args == ("-r", "nomime"):
        ok("MIME" in checks(doc)["ResponseFormat"]["why"],
           "nomime: the why names the MIME type",
           checks(doc)["ResponseFormat"]["why"])
    if args == ("-r", "redirect"):
        ok("redirected (31)" in checks(doc)["HomepageNoRedirect"]["why"],
           "redirect: the why names the redirect",
           checks(doc)["HomepageNoRedirect"]["why"])
    if args == ("-r", "notfound-body"):
        ok("body" in checks(doc)["PageNotFound"]["why"],
           "notfound-body: the why names the body",
           checks(doc)["PageNotFound"]["why"])
    gs.stop()

# Other modes of the test server: TLS 1.2 only, and bare TCP.
gs = GemServer("-m", "tls12", "-n", "127.0.0.1", *KEYS)
rc, doc = diagnose("127.0.0.1:%d" % gs.port, "--only", "TLSVersion")
is_(verdicts(doc), {"TLSVersion": "warn"}, "tls12: TLSVersion warns")
gs.stop()
gs = GemServer("-m", "plain", "-n", "127.0.0.1", *KEYS)
rc, doc = diagnose("127.0.0.1:%d" % gs.port, "--only",
                   "TLSRequired,TLSVersion")
is_(verdicts(doc), {"TLSRequired": "warn", "TLSVersion": "fail"},
    "plain: answers bare TCP (warn), no TLS (fail)")
is_(rc, 1, "plain: exit 1")
gs.stop()

# Nothing listens: every check that asks fails, saying why.
port = free_port()
rc, doc = diagnose("127.0.0.1:%d" % port, "--only", "ResponseFormat")
is_(verdicts(doc), {"ResponseFormat": "fail"}, "closed port: fail")
ok("could not ask" in checks(doc)["ResponseFormat"]["why"],
   "closed port: says so", checks(doc)["ResponseFormat"]["why"])
is_(rc, 1, "closed port: exit 1")

# ---- IPv6 ---------------------------------------------------------------
try:
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.bind(("::1", 0))
    s.close()
    have_v6 = True
except OSError:
    have_v6 = False
if have_v6:
    gs = GemServer("-6", "-m", "conform", "-n", "::1")
    rc, doc = diagnose("[::1]:%d" % gs.port, "--only",
                       "IPv4Address,IPv6Address,URLIncludePort")
    is_(verdicts(doc), {"IPv4Address": "skip", "IPv6Address": "pass",
                        "URLIncludePort": "pass"}, "::1: IPv6 passes")
    gs.stop()
    # localhost, served on 127.0.0.1 only: ::1 does not answer.
    gs = conform()
    rc, doc = diagnose("localhost:%d" % gs.port, "--only",
                       "IPv4Address,IPv6Address")
    got = verdicts(doc)
    try:
        v6 = any(a[4][0] == "::1" for a in socket.getaddrinfo(
            "localhost", gs.port, socket.AF_INET6))
    except socket.gaierror:
        v6 = False
    is_(got["IPv4Address"], "pass", "localhost: IPv4 passes")
    # c-ares may find ::1 for localhost where getaddrinfo does not.
    ok(got["IPv6Address"] == "warn" or (not v6 and got["IPv6Address"] ==
                                        "skip"),
       "localhost: IPv6 does not answer (or has no address)", got)
    gs.stop()
else:
    ok(True, "# SKIP no IPv6 on loopback")

done()
