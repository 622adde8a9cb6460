"""Name resolution: the `resolver` directive and --resolver, a lost query
asked again within a short deadline, and lookups that never end starving
nothing.

Two DNS servers on loopback UDP: one answers every A query with 127.0.0.1,
the other never answers. Through the first, names of the .test domain
reach the test Gemini server (gemwatch probe --resolver, and the daemon's
`resolver` directive, also after a reload switches servers). Through the
second, 100 capsules' lookups hang until their deadlines while a capsule
on `localhost` (/etc/hosts) is probed on time every round, in the daemon
and in a survey (issue 17, item 6: glibc's getaddrinfo_a held its 20
lookup slots for lookups already abandoned).
"""
import json
import signal
import subprocess
import time

from gemtest import (GEMWATCH, Daemon, DnsServer, GemServer, SLOW, WRAPPER,
                     diag, done, find, is_, metric, ok, run_probe)


good = DnsServer()
dead = DnsServer(answer=False)
lossy = DnsServer(drop_first=True)
srv = GemServer()
P = srv.port

# ---- gemwatch probe --resolver -------------------------------------------
url = "gemini://capsule.test:%d/" % P
rc, out, _ = run_probe("-j", "-t", "5", "--resolver",
                       "127.0.0.1:%d" % good.port, url)
r = json.loads(out)["results"][0]
is_((rc, r["success"], r["address"]), (0, True, "127.0.0.1"),
    "probe --resolver: capsule.test resolved by the given server")
ok("capsule.test" in good.names, "the given server was asked",
   good.names)

# A lost query is asked again after 2 s (c-ares 1.18 waited 5 s).
rc, out, _ = run_probe("-j", "-t", "4", "--resolver",
                       "127.0.0.1:%d" % lossy.port,
                       "gemini://lost.test:%d/" % P)
r = json.loads(out)["results"][0]
is_((rc, r["success"]), (0, True),
    "probe -t 4: a name whose first query is lost resolves on the retry")
is_(lossy.names.count("lost.test") >= 2, True,
    "the lossy server was asked twice (%r)" % lossy.names)

rc, out, _ = run_probe("-j", "-t", "1", "--resolver",
                       "127.0.0.1:%d" % dead.port, "gemini://x.test/")
r = json.loads(out)["results"][0]
is_(((r["error"] or {}).get("reason"), r["error"]["stage"]),
    ("timeout", "resolve"), "a server that never answers: a resolve timeout")
ok("resolving x.test" in r["error"]["message"], "the message says so",
   r["error"]["message"])

# ---- a survey: 100 lookups that never end, and localhost -------------------
lst = "".join("c%d.dead.test\n" % i for i in range(100))
lst += "localhost:%d\n" % P
t0 = time.monotonic()
p = subprocess.run([*WRAPPER, GEMWATCH, "survey", "-j", "-t", "%g" % (2 * SLOW),
                    "--resolver", "127.0.0.1:%d" % dead.port, "-"],
                   input=lst, capture_output=True, text=True,
                   timeout=120 * SLOW)
took = time.monotonic() - t0
res = [json.loads(x) for x in p.stdout.splitlines()]
byurl = {x["url"]: x for x in res if "url" in x}
lh = byurl.get("gemini://localhost:%d/" % P, {})
is_(lh.get("success"), True, "survey: localhost probed fine among 100 "
    "lookups that never end")
reasons = {(x["error"] or {}).get("reason") for u, x in byurl.items()
           if ".dead.test" in u}
is_(reasons, {"timeout"}, "survey: the 100 dead names time out")
ok(took < 30 * SLOW, "survey of 101 with -t 2 took %.1fs" % took)

# ---- the daemon: resolver directive, dead lookups, reload ------------------
conf = ["resolver 127.0.0.1:%d" % dead.port, "concurrency 128",
        "history 4", "interval 3s", "timeout 2s"]
conf += ['capsule "gemini://c%d.dead.test:%d/" name=dead%d' % (i, P, i)
         for i in range(100)]
conf += ['capsule "gemini://localhost:%d/" name=lh interval=1s timeout=1s'
         % P,
         'capsule "gemini://capsule.test:%d/" name=named' % P]
d = Daemon("\n".join(conf) + "\n")
m = d.wait_for(lambda m: (metric(m, "gemini_probes_total", capsule="lh",
                                 check="page") or 0) >= 6 and
               (metric(m, "gemini_probes_total", capsule="dead0",
                       check="page") or 0) >= 1,
               timeout=30, what="six probes of localhost")
lh_probes = metric(m, "gemini_probes_total", capsule="lh", check="page")
lh_fails = sum(v for _, v in find(m, "gemini_probe_failures_total",
                                   capsule="lh"))
ok((lh_probes or 0) >= 6, "daemon: localhost probed every round among 100 "
   "hanging lookups (%s probes)" % lh_probes)
is_(lh_fails, 0, "daemon: none of the localhost probes failed")
dead_fails = {x[0]["reason"] for x in find(m, "gemini_probe_failures_total")
              if x[0].get("capsule", "").startswith("dead") and x[1] > 0}
is_(dead_fails, {"timeout"}, "daemon: dead names fail with reason timeout")
is_(metric(m, "gemini_probe_success", capsule="named", check="page"), 0.0,
    "daemon: capsule.test does not resolve through the dead server")

# Reload onto the answering server: capsule.test comes up.
d.write_conf("\n".join(conf).replace("resolver 127.0.0.1:%d" % dead.port,
                                     "resolver 127.0.0.1:%d" % good.port)
             + "\n")
d.signal(signal.SIGHUP)
m = d.wait_for(lambda m: metric(m, "gemini_probe_success", capsule="named",
                                check="page") == 1.0,
               timeout=20, what="capsule.test up after the reload")
is_(metric(m, "gemini_probe_success", capsule="named", check="page"), 1.0,
    "daemon: after a reload onto another resolver, capsule.test resolves")
ok(d.alive(), "daemon alive at the end")
rc, _ = d.stop()
is_(rc, 0, "daemon exits 0")
diag("names asked of the dead server: %d" % len(dead.names))
done()
