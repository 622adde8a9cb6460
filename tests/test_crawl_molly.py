"""gemwatch crawl against molly-brown (a real Gemini server no one here
wrote) serving a directory tree the test makes: every page found and
ending with close_notify, the broken link reported with the page that
links to it, and the subtree robots.txt disallows never requested (the
server's access log shows it). Skipped where molly-brown is absent."""
import json
import os
import shutil
import subprocess
import time

from gemtest import (GEMWATCH, SLOW, WRAPPER, MollyBrown, done, is_, ok,
                     skip_all, tmpdir)

if shutil.which("molly-brown") is None:
    skip_all("molly-brown is not installed")
d = tmpdir()
docs = os.path.join(d, "docs")
PAGES = 120  # in dir/, besides index.gmi


def write(path, text):
    path = os.path.join(docs, path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


write("index.gmi", "# molly\n=> dir/\n=> secret/\n=> nowhere.gmi gone\n")
write("robots.txt", "User-agent: researcher\nDisallow: /secret/\n")
write("secret/index.gmi", "# secret\n")
links = ["=> %d.gmi" % i for i in range(PAGES)]
write("dir/index.gmi", "# dir\n" + "\n".join(links) + "\n")
for i in range(PAGES):
    write("dir/%d.gmi" % i, "# %d\n=> ../index.gmi\n=> ./%d.gmi\n" %
          (i, (i + 1) % PAGES))

molly = MollyBrown(docs)
log = molly.access_log
base = "gemini://localhost:%d/" % molly.port
p = subprocess.run([*WRAPPER, GEMWATCH, "crawl", "-j", "-d", "0", "-n",
                    "1000", base], capture_output=True, text=True,
                   timeout=120 * SLOW)
is_(p.returncode, 1, "molly-brown: exit 1 (a broken link)")
o = json.loads(p.stdout)
# /, /dir/, /nowhere.gmi, /index.gmi (the pages link to it) and dir/*.
is_(o["pages"], PAGES + 4, "molly-brown: every page crawled once")
ok(not o["truncated"], "molly-brown: not truncated")
is_(o["ends"]["close_notify"], PAGES + 4,
    "molly-brown: every page ends with close_notify")
is_([(f["url"], f["status"], f["referrer"]) for f in o["failures"]],
    [(base + "nowhere.gmi", 51, base)],
    "molly-brown: the broken link, with the page linking to it")
ok(o["robots_txt"] and o["robots_excluded"] >= 1,
   "molly-brown: robots.txt read, the link to the subtree excluded")
time.sleep(0.5)  # the access log is written after the response
with open(log) as f:
    access = f.read()
ok("/secret" not in access, "molly-brown: the disallowed subtree is never "
   "requested (access log)")
ok("/dir/119.gmi" in access and "/robots.txt" in access,
   "molly-brown: the access log shows the crawl")
ok(molly.proc.poll() is None, "molly-brown still running")
done()
