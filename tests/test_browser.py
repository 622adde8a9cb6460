"""The status page in a real browser: headless Chromium renders "/" from a
live daemon and the test asserts on the rendered DOM (--dump-dom). A
capsule's hostile META and name must arrive as text, never as markup.
Skipped where Chromium is absent (a TAP "1..0 # SKIP" plan: automake's
TAP driver counts it as SKIP, as the exit status 77 of a plain test)."""
import os
import shutil
import subprocess
import urllib.parse

from gemtest import (Daemon, GemServer, done, is_, metric, ok, skip_all,
                     tmpdir)

browser = shutil.which("chromium") or shutil.which("chromium-browser")
if browser is None:
    skip_all("chromium is not installed")

srv = GemServer()
hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>&'
conf = ("interval 1s\ntimeout 1s\n"
        'capsule %s name=good\n'
        'capsule %s name=broken\n'
        'capsule "%s" name="<b>evil</b>"\n'
        % (srv.url("/ok"), srv.url("/premature"),
           srv.url("/meta?text=" + urllib.parse.quote(hostile))))
dm = Daemon(conf)
dm.wait_for(lambda m: metric(m, "gemini_probes_total", capsule="<b>evil</b>",
                             check="page") and
            metric(m, "gemini_probes_total", capsule="broken", check="page"),
            what="first probes")

profile = tmpdir()
p = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-quic", "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--user-data-dir=" + profile, "--dump-dom",
                    dm.base() + "/"],
                   capture_output=True, text=True, timeout=120)
dom = p.stdout
is_(p.returncode, 0, "chromium rendered the page")
ok("<table" in dom, "the DOM has the status table", dom[:500])
ok("<script" not in dom, "no script element in the DOM")
ok("<img" not in dom, "no injected image element in the DOM")
ok("<b>evil</b>" not in dom, "the capsule name is not markup")
ok("&lt;b&gt;evil&lt;/b&gt;" in dom, "the capsule name is shown as text")
ok("&lt;script&gt;alert(" in dom, "the hostile META is shown as text")
rows = dom.count("<tr")
ok(rows >= 4, "a header row and a row per capsule (%d rows)" % rows)
ok(dom.find("broken") < dom.find(">good<") if ">good<" in dom else
   dom.find("broken") < dom.rfind("good"),
   "the failing capsule comes before the good one")
ok('href="/metrics"' in dom, "links to /metrics")
ok('href="/api/v1/capsules"' in dom, "links to the JSON API")
ok(dm.alive(), "daemon alive at the end")
rc, _ = dm.stop()
is_(rc, 0, "daemon exits 0")
done()
