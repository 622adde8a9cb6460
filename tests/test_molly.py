"""gemwatch probe against molly-brown, a real Gemini server (Go) that ends
its responses with close_notify. Skipped where molly-brown is absent
(.ci/run installs it through contrib/bootstrap.sh)."""
import json
import os
import subprocess

from gemtest import (GEMWATCH, MollyBrown, done, is_, ok, probe_json,
                     tmpdir)

d = tmpdir()
docs = os.path.join(d, "docs")
os.mkdir(docs)
with open(os.path.join(docs, "index.gmi"), "w") as f:
    f.write("# Hello from molly-brown\n\nA test capsule.\n")
molly = MollyBrown(docs)
port = molly.port

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
    ["HomepageNoRedirect", "URLFragment", "URLUserinfo"],
    "molly-brown: diagnose fails these three")
is_(sorted(n for n, v in verdict.items() if v == "warn"),
    ["RequestMissingCR", "URLEmpty", "URLInvalid", "URLInvalidUTF8Byte",
     "URLMaxSize", "URLRelative", "URLSchemeMissing"],
    "molly-brown: diagnose warns on these")
ok(all(c["end"] in (None, "close_notify") for c in doc["checks"]
       if c["name"] != "TLSRequired"),
   "molly-brown: every answer ended with close_notify",
   [(c["name"], c["end"]) for c in doc["checks"]])
is_(p.returncode, 1, "molly-brown: diagnose exits 1")

ok(molly.proc.poll() is None, "molly-brown still running")
molly.proc.terminate()
molly.proc.wait(timeout=10)
done()
