"""gemwatch probe against molly-brown, a real Gemini server (Go) that ends
its responses with close_notify. Skipped where molly-brown is absent
(.ci/run installs it through contrib/bootstrap.sh)."""
import json
import os
import shutil
import socket
import subprocess
import time

from gemtest import (GEMSERVER, GEMWATCH, done, free_port, is_, ok, probe_json,
                     skip_all, tmpdir, _children)

molly = shutil.which("molly-brown")
if molly is None:
    skip_all("molly-brown is not installed")

d = tmpdir()
key, crt = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
# The test server writes a fresh key and certificate, then is stopped.
gs = subprocess.Popen([GEMSERVER, "-n", "localhost", "-K", key, "-C", crt],
                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                      text=True)
gs.stdout.readline()
gs.terminate()
gs.wait(timeout=10)

docs = os.path.join(d, "docs")
os.mkdir(docs)
with open(os.path.join(docs, "index.gmi"), "w") as f:
    f.write("# Hello from molly-brown\n\nA test capsule.\n")
port = free_port()
conf = os.path.join(d, "molly.conf")
with open(conf, "w") as f:
    f.write('Port = %d\nHostname = "localhost"\nCertPath = "%s"\n'
            'KeyPath = "%s"\nDocBase = "%s"\nAccessLog = "%s/access.log"\n'
            'ErrorLog = "%s/error.log"\n' % (port, crt, key, docs, d, d))
proc = subprocess.Popen([molly, "-c", conf], stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL)
_children.append(proc)
end = time.monotonic() + 20
while time.monotonic() < end:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        break
    except OSError:
        time.sleep(0.1)

code, r, _ = probe_json("gemini://localhost:%d/" % port)
is_(r["end"], "close_notify", "molly-brown: end close_notify")
is_(r["success"], True, "molly-brown: success")
is_(r["status"], 20, "molly-brown: status 20")
ok((r["meta"] or "").startswith("text/gemini"), "molly-brown: META",
   r["meta"])
is_(r["body_bytes"], len("# Hello from molly-brown\n\nA test capsule.\n"),
    "molly-brown: body bytes")
is_(r["cert"]["hostname_match"], True, "molly-brown: certificate matches")
is_(code, 0, "molly-brown: exit 0")

code, r, _ = probe_json("gemini://localhost:%d/missing" % port)
is_(r["status"], 51, "molly-brown: missing page is 51")
is_((r["error"] or {}).get("reason"), "status",
    "molly-brown: 51 fails with reason status")
is_(r["end"], "close_notify", "molly-brown: the error page ends with close_notify")

# gemwatch diagnose: what README's table says of molly-brown.
p = subprocess.run([GEMWATCH, "diagnose", "-j", "-t", "3",
                    "localhost:%d" % port], capture_output=True, text=True,
                   timeout=120)
doc = json.loads(p.stdout)
verdict = {c["name"]: c["verdict"] for c in doc["checks"]}
is_(sorted(n for n, v in verdict.items() if v == "fail"),
    ["URLFragment", "URLMaxSize", "URLUserinfo"],
    "molly-brown: diagnose fails these three")
is_(sorted(n for n, v in verdict.items() if v == "warn"),
    ["HomepageNoRedirect", "RequestMissingCR", "URLEmpty", "URLInvalid",
     "URLInvalidUTF8Byte", "URLRelative", "URLSchemeMissing"],
    "molly-brown: diagnose warns on these")
ok(all(c["end"] in (None, "close_notify") for c in doc["checks"]
       if c["name"] != "TLSRequired"),
   "molly-brown: every answer ended with close_notify",
   [(c["name"], c["end"]) for c in doc["checks"]])
is_(p.returncode, 1, "molly-brown: diagnose exits 1")

ok(proc.poll() is None, "molly-brown still running")
proc.terminate()
proc.wait(timeout=10)
done()
