"""A server's control characters never reach a terminal or a page raw.

The test server presents a certificate whose subject holds ESC [31m and
U+009B (CSI as a C1 control: some terminals obey it like ESC [), and
answers with a META holding ESC [2J, U+009B, a lone 0x9b byte (ill-formed
UTF-8, CSI to an 8-bit terminal) and DEL. Wherever a person reads them --
`gemwatch probe`'s report and its -j JSON, /probe?debug=true, /metrics,
`gemwatch trust` -- they arrive neutralised: the text is valid UTF-8 and
holds no ESC and no C1 control. The report and `trust` show them as \\xNN escapes (so the
reader still sees what the server sent); metric labels as U+FFFD, as the
status page does; the JSON of -j and of the debug page as \\u escapes.
The C0 controls were escaped before; C1 controls, raw and as UTF-8, went
through.
"""
import os
import subprocess

from gemtest import (GEMWATCH, WRAPPER, Daemon, GemServer, done, free_port,
                     is_, ok, run_probe, skip_all, tmpdir)

d = tmpdir()
key, crt, tmpl = (os.path.join(d, n) for n in ("key.pem", "crt.pem", "tmpl"))
with open(tmpl, "wb") as f:
    f.write(b'cn = "evil\x1b[31m\xc2\x9bred"\nexpiration_days = 30\n')
try:
    subprocess.run(["certtool", "--generate-privkey", "--key-type", "ecdsa",
                    "--outfile", key], check=True, capture_output=True)
    subprocess.run(["certtool", "--generate-self-signed", "--load-privkey",
                    key, "--template", tmpl, "--outfile", crt], check=True,
                   capture_output=True)
except (OSError, subprocess.CalledProcessError) as e:
    skip_all("certtool (gnutls-bin) cannot make the certificate: %s" % e)

srv = GemServer("-K", key, "-C", crt)
META = "/meta?text=a%1b%5b2Jb%c2%9bc%9bd%7fe"


def dirty(data):
    """What a terminal would obey in data (bytes): [] when clean."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        return ["ill-formed UTF-8 at %d" % e.start]
    return sorted({"U+%04X" % ord(c) for c in text
                   if ord(c) == 0x1b or 0x80 <= ord(c) <= 0x9f})


# gemwatch probe: the report escapes every control as \xNN.
p = subprocess.run([*WRAPPER, GEMWATCH, "probe", srv.url(META)],
                   capture_output=True, timeout=60)
is_(p.returncode, 0, "probe: exit 0")
is_(dirty(p.stdout), [], "probe: no raw control in the report")
ok(b"subject CN=evil\\x1b[31m\\xc2\\x9bred" in p.stdout,
   "probe: the subject's ESC and U+009B shown as \\xNN", p.stdout)
ok(b"20 a\\x1b[2Jb\\xc2\\x9bc\\x9bd\\x7fe" in p.stdout,
   "probe: META's ESC, U+009B, lone 0x9b and DEL shown as \\xNN", p.stdout)

# gemwatch probe -j: JSON with every non-ASCII character as \uXXXX.
p = subprocess.run([*WRAPPER, GEMWATCH, "probe", "-j", srv.url(META)],
                   capture_output=True, timeout=60)
is_(p.returncode, 0, "probe -j: exit 0")
is_(dirty(p.stdout), [], "probe -j: no raw control in the JSON")
ok(b'"a\\u001B[2Jb\\u009Bc' in p.stdout,
   "probe -j: META's ESC and U+009B as \\u escapes", p.stdout)

# The daemon: /probe?debug=true and /metrics.
conf = ("interval 1h\nprobe-allow 127.0.0.1:*\n"
        "capsule %s name=evil\n" % srv.url(META))
dm = Daemon(conf)
status, _, body = dm.get("/probe?debug=true&target=" +
                         srv.url(META).replace("%", "%25")
                         .replace("?", "%3F").replace("=", "%3D"))
is_(status, 200, "/probe?debug=true: 200")
is_(dirty(body), [], "/probe?debug=true: no raw control")
ok(b"status:      20 a\\x1b[2J" in body,
   "/probe?debug=true: the report escapes as gemwatch probe does", body)
ok(b'"meta": "a\\u001B[2Jb\\u009Bc' in body,
   "/probe?debug=true: the JSON escapes U+009B too", body)
m = dm.wait_for(lambda m: any(k[0] == "gemini_cert_info" for k in m),
                what="a result of the capsule")
status, _, body = dm.get("/metrics")
is_(dirty(body), [], "/metrics: no raw control in the labels")
ok('subject="CN=evil\ufffd[31m\ufffdred"'.encode() in body,
   "/metrics: the subject's controls as U+FFFD", body[-2000:])

# gemwatch trust prints the subject it now trusts.
p = subprocess.run([*WRAPPER, GEMWATCH, "trust", "-f", dm.conf, "evil"],
                   capture_output=True, timeout=60)
is_(p.returncode, 0, "trust: exit 0")
is_(dirty(p.stdout), [], "trust: no raw control")
ok(b"subject CN=evil\\x1b[31m\\xc2\\x9bred" in p.stdout,
   "trust: the subject as gemwatch probe shows it", p.stdout)
ok(dm.alive(), "daemon alive")
rc, _ = dm.stop()
is_(rc, 0, "exit 0")
done()
