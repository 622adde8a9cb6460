#!/bin/sh
# test_contrib.sh: checks the operator-facing files in contrib/ and man/
# (TAP). The alert rules, their unit tests and the scrape configuration go
# through promtool; every metric named by the Grafana dashboard and the alert
# rules must be one that gemwatch exports (SPEC.md §6, listed below); the
# systemd unit goes through systemd-analyze verify and the man pages through
# mandoc -Tlint when those tools are installed; the notify scripts parse,
# pass shellcheck when it is installed, and mail.sh and log.sh write what
# they should (tests/test_notify.py runs all three from the daemon). The
# source tree is $TOP_SRCDIR.
set -u

top=${TOP_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_contrib.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
prom=$top/contrib/prometheus
dash=$top/contrib/grafana/gemwatch-dashboard.json
n=0
failed=0

# Every metric gemwatch exports (SPEC.md §6), plus Prometheus's own "up".
KNOWN_METRICS="
gemini_probe_success gemini_close_notify gemini_response_status_code
gemini_response_body_bytes gemini_probe_duration_seconds
gemini_probe_phase_duration_seconds gemini_probe_timestamp_seconds
gemini_response_max_gap_seconds gemini_response_idle_before_end_seconds
gemini_probe_ip_protocol gemini_tls_info
gemini_cert_not_after_timestamp_seconds gemini_cert_not_before_timestamp_seconds
gemini_cert_info gemini_cert_tofu_match gemini_probes_total
gemini_probe_failures_total gemini_response_ends_total
gemwatch_build_info gemwatch_capsules gemwatch_config_last_reload_successful
gemwatch_config_last_reload_success_timestamp_seconds gemwatch_notify_total
gemwatch_probes_late_total gemwatch_probe_lag_seconds gemwatch_probes_in_flight
gemwatch_concurrency
process_start_time_seconds process_cpu_seconds_total
process_resident_memory_bytes process_open_fds
gemini_crawl_pages gemini_crawl_broken_links gemini_crawl_duration_seconds
gemini_crawl_timestamp_seconds gemini_crawl_truncated
up"
export KNOWN_METRICS

ok() {
	n=$((n + 1))
	echo "ok $n - $1"
}

notok() {
	n=$((n + 1))
	failed=1
	echo "not ok $n - $1"
	# The output of the failed command, as TAP diagnostics.
	[ -s "$tmp/out" ] && sed 's/^/# /' "$tmp/out"
	return 0
}

skip() {
	n=$((n + 1))
	echo "ok $n # SKIP $1"
}

# check DESCRIPTION COMMAND...: one test, passing when COMMAND exits 0.
check() {
	desc=$1
	shift
	if "$@" >"$tmp/out" 2>&1; then
		ok "$desc"
	else
		notok "$desc"
	fi
}

echo "1..21"

# 1. The bootstrap script parses.
check "bash -n contrib/bootstrap.sh" bash -n "$top/contrib/bootstrap.sh"

# 2-6. Prometheus files through promtool.
if command -v promtool >/dev/null 2>&1; then
	check "promtool check rules gemwatch-alerts.yml" \
	    promtool check rules "$prom/gemwatch-alerts.yml"
	check "promtool test rules gemwatch-alerts.test.yml" \
	    promtool test rules "$prom/gemwatch-alerts.test.yml"
	check "promtool check config prometheus.yml" \
	    promtool check config "$prom/prometheus.yml"

	# The commented-out /probe job, uncommented, is valid and relabels a
	# target URL into ?target= and label instance, scraping gemwatch.
	mkdir "$tmp/bb"
	cp "$prom/gemwatch-alerts.yml" "$tmp/bb/"
	sed '/^  # - job_name: gemini-probe/,$ s/^  #\( \|$\)/  /' \
	    "$prom/prometheus.yml" >"$tmp/bb/prometheus.yml"
	if promtool check service-discovery "$tmp/bb/prometheus.yml" \
	    gemini-probe >"$tmp/out" 2>&1 &&
	    grep -q '"__param_target": "gemini://example.org/"' "$tmp/out" &&
	    grep -q '"instance": "gemini://example.org/"' "$tmp/out" &&
	    grep -q '"__address__": "127.0.0.1:19650"' "$tmp/out" &&
	    grep -q '"__metrics_path__": "/probe"' "$tmp/out"; then
		ok "prometheus.yml: the /probe job relabels targets onto gemwatch"
	else
		notok "prometheus.yml: the /probe job relabels targets onto gemwatch"
	fi

	# Every dashboard query parses as PromQL: write them as recording
	# rules, with the Grafana variables replaced, and check those.
	if python3 - "$dash" >"$tmp/dashrules.yml" 2>"$tmp/out" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print("groups:\n  - name: dashboard\n    rules:")
i = 0
for p in d["panels"]:
    for t in p.get("targets", []):
        i += 1
        e = t["expr"].replace("$capsule", ".+").replace("$__rate_interval", "5m")
        print("      - record: dashboard_expr_%d" % i)
        print("        expr: %s" % json.dumps(e))
PY
	then
		check "every dashboard query parses as PromQL" \
		    promtool check rules "$tmp/dashrules.yml"
	else
		notok "every dashboard query parses as PromQL"
	fi
else
	for d in "promtool check rules" "promtool test rules" \
	    "promtool check config" "promtool check service-discovery" \
	    "dashboard PromQL"; do
		skip "promtool missing ($d)"
	done
fi

# 7. Every alert has a unit test.
missing=""
sed -n 's/^ *- alert: *//p' "$prom/gemwatch-alerts.yml" >"$tmp/alerts"
while read -r a; do
	grep -q "alertname: $a\$" "$prom/gemwatch-alerts.test.yml" ||
	    missing="$missing $a"
done <"$tmp/alerts"
[ -s "$tmp/alerts" ] || missing=" (no alert found)"
if [ -z "$missing" ]; then
	ok "every alert in gemwatch-alerts.yml is unit-tested"
else
	: >"$tmp/out"
	notok "every alert in gemwatch-alerts.yml is unit-tested (missing:$missing)"
fi

# 8-10. The dashboard: valid JSON of the expected shape, only known metrics.
cat >"$tmp/names.py" <<'PY'
# Metric names used by a PromQL expression: drop strings, label matchers,
# ranges and grouping clauses, then every identifier left is a function,
# keyword or metric.
import os, re
KNOWN = set(os.environ["KNOWN_METRICS"].split())
WORDS = set("""sum min max avg count stddev stdvar topk bottomk quantile
    count_values group rate irate increase delta idelta deriv changes resets
    time timestamp abs ceil floor round clamp clamp_min clamp_max sort
    sort_desc absent absent_over_time vector scalar histogram_quantile
    label_replace label_join avg_over_time min_over_time max_over_time
    sum_over_time count_over_time last_over_time quantile_over_time
    present_over_time by without on ignoring group_left group_right bool
    and or unless offset""".split())
def names(expr):
    e = re.sub(r'"(\\.|[^"\\])*"', '""', expr)
    e = re.sub(r"\{[^}]*\}", "", e)
    e = re.sub(r"\[[^\]]*\]", "", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)",
               "", e)
    e = re.sub(r"\b\d[\w.]*", "", e)
    return re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", e)
def check(where, expr, errors):
    metrics = 0
    for w in names(expr):
        if w in WORDS:
            continue
        if w in KNOWN:
            metrics += 1
        else:
            errors.append("%s: %r is not a gemwatch metric: %s" % (where, w, expr))
    if metrics == 0:
        errors.append("%s: names no metric: %s" % (where, expr))
PY

if python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$dash" \
    >"$tmp/out" 2>&1; then
	ok "gemwatch-dashboard.json is valid JSON"
else
	notok "gemwatch-dashboard.json is valid JSON"
fi

check "dashboard: datasource variable, capsule variable, every panel on \${DS_PROMETHEUS}" \
    python3 - "$dash" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
err = []
if not 36 <= d.get("schemaVersion", 0) <= 41:
    err.append("schemaVersion %r" % d.get("schemaVersion"))
v = {x["name"]: x for x in d["templating"]["list"]}
ds = v.get("DS_PROMETHEUS")
if not ds or ds["type"] != "datasource" or ds["query"] != "prometheus":
    err.append("no datasource variable DS_PROMETHEUS of type prometheus")
c = v.get("capsule")
if not c:
    err.append("no capsule variable")
else:
    q = c["query"]["query"] if isinstance(c["query"], dict) else c["query"]
    if q != "label_values(gemini_probe_success, capsule)":
        err.append("capsule variable query %r" % q)
    if not (c.get("multi") and c.get("includeAll")):
        err.append("capsule variable is not multi-value with All")
want = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
ids = set()
for p in d["panels"]:
    if p["id"] in ids:
        err.append("duplicate panel id %d" % p["id"])
    ids.add(p["id"])
    if p["type"] == "row":
        continue
    if p.get("datasource") != want:
        err.append("panel %r datasource %r" % (p["title"], p.get("datasource")))
    if not p.get("targets"):
        err.append("panel %r has no query" % p["title"])
    for t in p.get("targets", []):
        if t.get("datasource") != want:
            err.append("panel %r target datasource %r" % (p["title"], t.get("datasource")))
        if "gemini_" in t["expr"] and '$capsule' not in t["expr"]:
            err.append("panel %r ignores $capsule: %s" % (p["title"], t["expr"]))
for e in err:
    print(e)
sys.exit(1 if err else 0)
PY

check "dashboard queries name only gemwatch metrics (SPEC §6)" \
    python3 - "$dash" "$tmp/names.py" <<'PY'
import json, re, sys
exec(open(sys.argv[2]).read())
d = json.load(open(sys.argv[1]))
err = []
n = 0
for p in d["panels"]:
    for t in p.get("targets", []):
        n += 1
        check("panel %r" % p["title"], t["expr"], err)
for x in d["templating"]["list"]:
    if x["type"] == "query":
        q = x["query"]["query"] if isinstance(x["query"], dict) else x["query"]
        m = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", q)
        if not m:
            err.append("variable %s: unexpected query %r" % (x["name"], q))
        else:
            check("variable %s" % x["name"], m.group(1), err)
if n < 7:
    err.append("only %d queries" % n)
for e in err:
    print(e)
sys.exit(1 if err else 0)
PY

# 11. The alert rules, too, name only gemwatch metrics (and up).
check "alert rules name only gemwatch metrics (SPEC §6)" \
    python3 - "$prom/gemwatch-alerts.yml" "$tmp/names.py" <<'PY'
import re, sys
exec(open(sys.argv[2]).read())
err = []
exprs = re.findall(r"^\s*expr:\s*(.+)$", open(sys.argv[1]).read(), re.M)
for e in exprs:
    check("alert", e, err)
if not exprs:
    err.append("no expr found")
for e in err:
    print(e)
sys.exit(1 if err else 0)
PY

# 12-13. The systemd unit, with its placeholders substituted as make does,
# passes systemd-analyze: as configured by default with libsystemd
# (Type=notify, a watchdog, a dynamic user), and without libsystemd for a
# static system user (Type=simple, no watchdog; --with-service-user).
unit() {
	# unit NAME TYPE WATCHDOG USER DYNAMIC
	mkdir "$tmp/$1"
	printf '#!/bin/sh\n' >"$tmp/$1/gemwatch"
	chmod +x "$tmp/$1/gemwatch"
	: >"$tmp/$1/gemwatch.conf"
	sed -e "s|@sbindir@|$tmp/$1|g" -e "s|@sysconfdir@|$tmp/$1|g" \
	    -e "s|@localstatedir@|/var|g" -e "s|@service_type@|$2|g" \
	    -e "s|@watchdog_sec@|$3|g" -e "s|@service_user@|$4|g" \
	    -e "s|@dynamic_user@|$5|g" \
	    "$top/contrib/gemwatch.service.in" >"$tmp/$1/gemwatch.service"
	if grep -n '@[a-z_]*@' "$tmp/$1/gemwatch.service" >"$tmp/out"; then
		notok "gemwatch.service.in: unknown placeholder"
	else
		# verify exits 0 on lines it ignores ("Failed to parse
		# service type, ignoring"): any output is a failure too.
		if systemd-analyze verify --man=no \
		    "$tmp/$1/gemwatch.service" >"$tmp/out" 2>&1 &&
		    ! [ -s "$tmp/out" ]; then
			ok "systemd-analyze verify gemwatch.service ($1)"
		else
			notok "systemd-analyze verify gemwatch.service ($1)"
		fi
	fi
}
if command -v systemd-analyze >/dev/null 2>&1; then
	unit notify notify 30s gemwatch yes
	unit simple simple 0 _gemwatch no
else
	skip "systemd-analyze missing (notify)"
	skip "systemd-analyze missing (simple)"
fi

# 14-15. The man pages are clean mdoc.
for page in gemwatch.8 gemwatch.conf.5; do
	if command -v mandoc >/dev/null 2>&1; then
		check "mandoc -Tlint man/$page" \
		    mandoc -Tlint -Wwarning "$top/man/$page"
	else
		skip "mandoc missing (man/$page)"
	fi
done

# 16-18. The notify scripts parse as POSIX sh, and pass shellcheck.
for s in mail log push; do
	f=$top/contrib/notify/$s.sh
	if ! sh -n "$f" >"$tmp/out" 2>&1; then
		notok "contrib/notify/$s.sh: sh -n"
	elif command -v shellcheck >/dev/null 2>&1; then
		check "contrib/notify/$s.sh: sh -n, shellcheck" \
		    shellcheck -s sh "$f"
	else
		ok "contrib/notify/$s.sh: sh -n (shellcheck missing)"
	fi
done

# 19. mail.sh hands sendmail one message: recipients after "--", the
# summary as an RFC 2047 subject when it is not ASCII, the values below.
mkdir "$tmp/mail"
printf '#!/bin/sh\nprintf "%%s\\n" "$@" >"%s/args"\ncat >"%s/msg"\n' \
    "$tmp/mail" "$tmp/mail" >"$tmp/mail/sendmail"
chmod +x "$tmp/mail/sendmail"
subject='gemwatch: café is down: timeout'
if SENDMAIL=$tmp/mail/sendmail GEMWATCH_EVENT=down \
    GEMWATCH_SUMMARY=$subject GEMWATCH_CAPSULE=café \
    GEMWATCH_META='$(id) `id`' \
    sh "$top/contrib/notify/mail.sh" -f gemwatch@example.org \
    ops@example.org -dev@example.org >"$tmp/out" 2>&1 &&
    printf -- '-oi\n--\nops@example.org\n-dev@example.org\n' |
    cmp -s - "$tmp/mail/args" &&
    grep -qx 'From: gemwatch@example.org' "$tmp/mail/msg" &&
    grep -qx 'To: ops@example.org, -dev@example.org' "$tmp/mail/msg" &&
    grep -qxF "Subject: =?UTF-8?B?$(printf '%s' "$subject" |
        base64 | tr -d '\n')?=" "$tmp/mail/msg" &&
    grep -qx 'X-Gemwatch-Event: down' "$tmp/mail/msg" &&
    grep -qx 'capsule:     café' "$tmp/mail/msg" &&
    grep -qxF 'meta:        $(id) `id`' "$tmp/mail/msg"; then
	ok "contrib/notify/mail.sh: the message sendmail gets"
else
	cat "$tmp/mail/args" "$tmp/mail/msg" >>"$tmp/out" 2>/dev/null
	notok "contrib/notify/mail.sh: the message sendmail gets"
fi

# 20. log.sh appends one tab-separated line per event.
if GEMWATCH_TIME=2026-11-28T16:00:00Z GEMWATCH_EVENT=up GEMWATCH_CAPSULE=a \
    GEMWATCH_CHECK=page GEMWATCH_SUMMARY='gemwatch: a is up again after 5s' \
    sh "$top/contrib/notify/log.sh" "$tmp/events.log" >"$tmp/out" 2>&1 &&
    GEMWATCH_EVENT=down sh "$top/contrib/notify/log.sh" "$tmp/events.log" \
    >>"$tmp/out" 2>&1 &&
    printf '%s\t%s\t%s\t%s\t%s\n' 2026-11-28T16:00:00Z up a page \
    'gemwatch: a is up again after 5s' '' down '' '' '' |
    cmp -s - "$tmp/events.log"; then
	ok "contrib/notify/log.sh: one line per event"
else
	notok "contrib/notify/log.sh: one line per event"
fi

# 21. mail.sh tells a run's problems: their count and the first ones.
if SENDMAIL=$tmp/mail/sendmail GEMWATCH_EVENT=crawl_problems \
    GEMWATCH_CHECK=crawl GEMWATCH_PROBLEMS=2 \
    GEMWATCH_OFFENDING='gemini://a/x gemini://a/y' \
    sh "$top/contrib/notify/mail.sh" ops@example.org >"$tmp/out" 2>&1 &&
    grep -qx 'X-Gemwatch-Event: crawl_problems' "$tmp/mail/msg" &&
    grep -qx 'problems:    2' "$tmp/mail/msg" &&
    grep -qx 'offending:   gemini://a/x gemini://a/y' "$tmp/mail/msg" &&
    SENDMAIL=$tmp/mail/sendmail GEMWATCH_EVENT=down \
    sh "$top/contrib/notify/mail.sh" ops@example.org >>"$tmp/out" 2>&1 &&
    ! grep -q '^problems:' "$tmp/mail/msg"; then
	ok "contrib/notify/mail.sh: a run's problems, only for a run"
else
	cat "$tmp/mail/msg" >>"$tmp/out" 2>/dev/null
	notok "contrib/notify/mail.sh: a run's problems, only for a run"
fi

exit $failed
