/*
 * Unit tests for the Prometheus exposition: exact sample lines of /metrics
 * and /probe for hand-built results, the absence rules, label escaping,
 * the zero counters, HELP/TYPE once per family in the specified order,
 * number formatting, the daemon's own metrics, promtool's verdict (when
 * promtool is installed) and a render of 2,000 capsules (its time is
 * printed, not judged).
 */
#include "config.h"

#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "fixture.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "result.h"
#include "store.h"
#include "tap.h"
#include "xmalloc.h"

#define WEIRD "we\"ird\\name\nx"

/* /metrics through the cache mc, whole in b: the shared part, the rest. */
static void
render_cached(struct buf *b, struct metrics_cache *mc, struct store *s,
    const struct daemon_info *info)
{
	struct metrics_text *t;
	struct buf rest;
	const char *data;
	size_t len;

	buf_init(&rest);
	t = metrics_render_shared(&rest, mc, s, info);
	data = metrics_text_data(t, &len);
	buf_add(b, data, len);
	buf_add(b, rest.data, rest.len);
	metrics_text_release(t);
	buf_free(&rest);
}

/* /metrics as rendered from scratch: through a cache of its own. */
static void
render_fresh(struct buf *b, struct store *s, const struct daemon_info *info)
{
	struct metrics_cache *mc = metrics_cache_new();

	render_cached(b, mc, s, info);
	metrics_cache_free(mc);
}

/* Capsules names[i], with error-path eps[i] when eps and eps[i]. */
static void
sync_names(struct store *s, size_t n, char **names, char **eps)
{
	struct conf conf;
	struct capsule_conf *caps;
	size_t i;

	memset(&conf, 0, sizeof conf);
	caps = xcalloc(n, sizeof *caps);
	conf.history = 4;
	conf.shard_k = conf.shard_n = 1;
	conf.capsules = caps;
	conf.ncapsules = n;
	for (i = 0; i < n; i++) {
		caps[i].name = names[i];
		caps[i].url.text = names[i];
		caps[i].error_path = eps != NULL ? eps[i] : NULL;
	}
	fixture_sync(s, &conf);
	free(caps);
}

/* Everything known: a good probe of a capsule. */
static void
good_result(struct probe_result *r)
{
	good_result_for(r, "a.example", 1764345600.5);
}

/* A timeout while waiting for the header: little is known. */
static void
timeout_result(struct probe_result *r)
{
	result_init(r);
	r->check = CHECK_PAGE;
	r->url = xstrdup("gemini://b.example/");
	r->time = 1764345601;
	r->ip_protocol = 6;
	r->dur[PHASE_RESOLVE] = 0.1 + 0.2;
	r->total = 0.1;
	r->end = END_NONE;
	result_fail(r, REASON_TIMEOUT, STAGE_HEADER, "no header in 10 s");
}

static int
has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	const char *p = text;

	while ((p = strstr(p, line)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return 1;
		p++;
	}
	return 0;
}

static int
count(const char *text, const char *needle)
{
	int n = 0;
	const char *p = text;

	while ((p = strstr(p, needle)) != NULL) {
		n++;
		p++;
	}
	return n;
}

#define LINE(text, line) ok(has_line((text), (line)), "line: %s", (line))
#define NOLINE(text, prefix)                                                   \
	ok(strstr((text), (prefix)) == NULL, "absent: %s", (prefix))

/* Every sample line's family must be contiguous and follow its TYPE. */
/* Whether the sample name p[0..len) is of family cur (a histogram's too). */
static int
sample_of(const char *p, size_t len, const char *cur)
{
	static const char *suffix[] = {"", "_bucket", "_sum", "_count"};
	size_t n = strlen(cur), i;

	if (len < n || strncmp(p, cur, n) != 0)
		return 0;
	for (i = 0; i < sizeof suffix / sizeof suffix[0]; i++)
		if (len - n == strlen(suffix[i]) &&
		    strncmp(p + n, suffix[i], len - n) == 0)
			return 1;
	return 0;
}

static int
grouped(const char *text)
{
	char seen[64][96], cur[96] = "";
	const char *p, *e;
	size_t nseen = 0, i, len;

	for (p = text; *p; p = e + 1) {
		if ((e = strchr(p, '\n')) == NULL)
			return 0;
		if (strncmp(p, "# TYPE ", 7) == 0) {
			len = strcspn(p + 7, " ");
			if (len >= sizeof cur || nseen == 64)
				return 0;
			for (i = 0; i < nseen; i++)
				if (strlen(seen[i]) == len &&
				    strncmp(seen[i], p + 7, len) == 0)
					return 0; /* TYPE twice */
			memcpy(cur, p + 7, len);
			cur[len] = '\0';
			strcpy(seen[nseen++], cur);
			continue;
		}
		if (*p == '#')
			continue;
		len = strcspn(p, "{ ");
		if (!sample_of(p, len, cur))
			return 0;
	}
	return 1;
}

static int
promtool_available(void)
{
	return system("command -v promtool >/dev/null 2>&1") == 0;
}

static void
promtool_check(const char *text, const char *what)
{
	char path[] = "/tmp/test_metrics.XXXXXX", cmd[128];
	FILE *f;
	int fd, rc;

	if (!promtool_available()) {
		printf("ok %d - # SKIP promtool not installed (%s)\n", ++tap_n,
		    what);
		return;
	}
	if ((fd = mkstemp(path)) == -1 || (f = fdopen(fd, "w")) == NULL) {
		ok(0, "temporary file for promtool");
		return;
	}
	fputs(text, f);
	fclose(f);
	snprintf(cmd, sizeof cmd, "promtool check metrics < %s", path);
	rc = system(cmd);
	is_int(rc, 0, "promtool check metrics accepts %s", what);
	unlink(path);
}

static void
test_escape(void)
{
	struct buf b;

	buf_init(&b);
	metrics_escape_label(&b, WEIRD);
	is_str(b.data, "we\\\"ird\\\\name\\nx", "escape \", \\ and newline");
	buf_free(&b);
	metrics_escape_label(&b, "caf\xc3\xa9 \xff!\t");
	is_str(b.data, "caf\xc3\xa9 \xef\xbf\xbd!\t",
	    "valid UTF-8 and tabs kept, an invalid byte becomes U+FFFD");
	buf_free(&b);
	metrics_escape_label(&b, "");
	buf_addc(&b, '|');
	is_str(b.data, "|", "empty value adds nothing");
	buf_free(&b);
}

static void
test_render(void)
{
	static const char *const families[] = {"gemini_probe_success",
	    "gemini_close_notify", "gemini_response_status_code",
	    "gemini_response_body_bytes", "gemini_probe_duration_seconds",
	    "gemini_probe_phase_duration_seconds",
	    "gemini_response_max_gap_seconds",
	    "gemini_response_idle_before_end_seconds",
	    "gemini_probe_timestamp_seconds", "gemini_probe_ip_protocol",
	    "gemini_tls_info", "gemini_cert_not_after_timestamp_seconds",
	    "gemini_cert_not_before_timestamp_seconds", "gemini_cert_info",
	    "gemini_cert_tofu_match", "gemini_probes_total",
	    "gemini_probe_failures_total", "gemini_response_ends_total",
	    "gemwatch_build_info", "gemwatch_capsules",
	    "gemwatch_config_last_reload_successful",
	    "gemwatch_config_last_reload_success_timestamp_seconds",
	    "gemwatch_notify_total", "process_start_time_seconds",
	    "process_cpu_seconds_total", "process_resident_memory_bytes",
	    "process_open_fds", NULL};
	char *names[] = {"a", "b", WEIRD, "d"};
	char *eps[] = {NULL, "/nope", NULL, NULL};
	struct daemon_info info = {"0.1.0", 1764345000.25, notify_new(NULL)};
	struct store *s = store_new();
	struct probe_result r;
	struct buf b;
	char want[512], *text, *first;
	const char *p, *prev;
	size_t i;
	int inorder, once, fds1, fds2, pfd[2];

	sync_names(s, 4, names, eps);
	store_set_reload(s, 1, 1764345000);

	good_result(&r);
	store_put(s, "a", &r);
	r.time = 1e21;
	store_put(s, WEIRD, &r);
	result_clear(&r);

	timeout_result(&r);
	store_put(s, "b", &r);
	result_clear(&r);

	good_result(&r);
	r.check = CHECK_ERROR_PAGE;
	r.success = 0;
	result_fail(&r, REASON_CLOSE_NOTIFY, STAGE_BODY, "no close_notify");
	r.status = 51;
	r.body_bytes = 0;
	r.end = END_PREMATURE;
	r.cert.tofu = TOFU_CHANGED;
	r.tls_cipher = NULL;
	r.dur[PHASE_BODY] = -1;
	store_put(s, "b", &r);
	r.check = CHECK_PAGE; /* not an error page: "d" stays without */
	store_put(s, "nosuch", &r);
	result_clear(&r);

	buf_init(&b);
	render_fresh(&b, s, &info);
	text = b.data;

	/* A good probe: every family, exact values. */
	LINE(text, "gemini_probe_success{capsule=\"a\",check=\"page\"} 1");
	LINE(text, "gemini_close_notify{capsule=\"a\",check=\"page\"} 1");
	LINE(text,
	    "gemini_response_status_code{capsule=\"a\",check=\"page\"} 20");
	LINE(text,
	    "gemini_response_body_bytes{capsule=\"a\",check=\"page\"} 1234");
	LINE(text, "gemini_probe_duration_seconds{capsule=\"a\",check=\"page\"}"
	           " 0.106");
	LINE(text, "gemini_probe_phase_duration_seconds{capsule=\"a\",check="
	           "\"page\",phase=\"resolve\"} 0.001");
	LINE(text, "gemini_probe_phase_duration_seconds{capsule=\"a\",check="
	           "\"page\",phase=\"connect\"} 0.02");
	LINE(text, "gemini_probe_phase_duration_seconds{capsule=\"a\",check="
	           "\"page\",phase=\"tls\"} 0.051");
	LINE(text, "gemini_probe_phase_duration_seconds{capsule=\"a\",check="
	           "\"page\",phase=\"header\"} 0.03");
	LINE(text, "gemini_probe_phase_duration_seconds{capsule=\"a\",check="
	           "\"page\",phase=\"body\"} 0.004");
	LINE(text, "gemini_response_max_gap_seconds{capsule=\"a\",check="
	           "\"page\"} 0.0025");
	LINE(text, "gemini_response_idle_before_end_seconds{capsule=\"a\","
	           "check=\"page\"} 0.0005");
	LINE(text, "gemini_probe_timestamp_seconds{capsule=\"a\",check="
	           "\"page\"} 1764345600.5");
	LINE(text, "gemini_probe_ip_protocol{capsule=\"a\",check=\"page\"} 4");
	LINE(text, "gemini_tls_info{capsule=\"a\",check=\"page\",version="
	           "\"TLS1.3\",cipher=\"TLS_AES_256_GCM_SHA384\"} 1");
	LINE(text, "gemini_cert_not_after_timestamp_seconds{capsule=\"a\","
	           "check=\"page\"} 1800000000");
	LINE(text, "gemini_cert_not_before_timestamp_seconds{capsule=\"a\","
	           "check=\"page\"} 1700000000");
	LINE(text,
	    "gemini_cert_info{capsule=\"a\",check=\"page\",fingerprint_sha256="
	    "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "\",subject=\"CN=a.example\",issuer=\"CN=a.example\"} 1");
	LINE(text, "gemini_cert_tofu_match{capsule=\"a\",check=\"page\"} 1");
	LINE(text, "gemini_probes_total{capsule=\"a\",check=\"page\"} 1");
	LINE(text, "gemini_response_ends_total{capsule=\"a\",check=\"page\","
	           "end=\"close_notify\"} 1");
	LINE(text, "gemini_response_ends_total{capsule=\"a\",check=\"page\","
	           "end=\"premature\"} 0");
	is_int(count(text, "{capsule=\"a\",check=\"error_page\""), 0,
	    "no error_page series for a capsule without error-path");

	/* Every reason and every end, zeros included, per series. */
	for (i = REASON_NONE + 1; i < REASON__COUNT; i++) {
		snprintf(want, sizeof want,
		    "gemini_probe_failures_total"
		    "{capsule=\"a\",check=\"page\",reason=\"%s\"} 0",
		    reason_name(i));
		LINE(text, want);
	}
	for (i = END_NONE + 1; i < END__COUNT; i++) {
		snprintf(want, sizeof want,
		    "gemini_response_ends_total"
		    "{capsule=\"b\",check=\"page\",end=\"%s\"} 0",
		    end_name(i));
		LINE(text, want);
	}
	LINE(text, "gemini_probe_failures_total{capsule=\"b\",check=\"page\","
	           "reason=\"timeout\"} 1");
	is_int(count(text, "gemini_probe_failures_total{"),
	    4 * (REASON__COUNT - 1), "failure counters: 4 series x 9 reasons");
	is_int(count(text, "gemini_response_ends_total{"), 4 * (END__COUNT - 1),
	    "end counters: 4 series x 6 ends");

	/* A timeout before the header: only what is known. */
	LINE(text, "gemini_probe_success{capsule=\"b\",check=\"page\"} 0");
	NOLINE(text, "gemini_close_notify{capsule=\"b\",check=\"page\"}");
	NOLINE(
	    text, "gemini_response_status_code{capsule=\"b\",check=\"page\"}");
	NOLINE(
	    text, "gemini_response_body_bytes{capsule=\"b\",check=\"page\"}");
	NOLINE(text,
	    "gemini_response_max_gap_seconds{capsule=\"b\",check=\"page\"}");
	NOLINE(text, "gemini_response_idle_before_end_seconds{capsule=\"b\","
	             "check=\"page\"}");
	NOLINE(text, "gemini_probe_phase_duration_seconds{capsule=\"b\",check="
	             "\"page\",phase=\"connect\"}");
	NOLINE(text, "gemini_tls_info{capsule=\"b\",check=\"page\"");
	NOLINE(text, "gemini_cert_info{capsule=\"b\",check=\"page\"");
	NOLINE(text, "gemini_cert_not_after_timestamp_seconds{capsule=\"b\","
	             "check=\"page\"");
	NOLINE(text, "gemini_cert_tofu_match{capsule=\"b\",check=\"page\"");
	LINE(text, "gemini_probe_ip_protocol{capsule=\"b\",check=\"page\"} 6");
	LINE(text,
	    "gemini_probe_duration_seconds{capsule=\"b\",check=\"page\"} 0.1");
	LINE(text, "gemini_probe_phase_duration_seconds{capsule=\"b\",check="
	           "\"page\",phase=\"resolve\"} 0.30000000000000004");
	LINE(text, "gemini_probe_timestamp_seconds{capsule=\"b\",check="
	           "\"page\"} 1764345601");

	/* The error page: without close_notify, a changed certificate. */
	LINE(text, "gemini_close_notify{capsule=\"b\",check=\"error_page\"} 0");
	LINE(
	    text, "gemini_probe_success{capsule=\"b\",check=\"error_page\"} 0");
	LINE(text, "gemini_response_status_code{capsule=\"b\",check=\"error_"
	           "page\"} 51");
	LINE(text,
	    "gemini_response_body_bytes{capsule=\"b\",check=\"error_page\"} 0");
	LINE(text,
	    "gemini_cert_tofu_match{capsule=\"b\",check=\"error_page\"} 0");
	LINE(text, "gemini_tls_info{capsule=\"b\",check=\"error_page\",version="
	           "\"TLS1.3\",cipher=\"\"} 1");
	NOLINE(text, "gemini_probe_phase_duration_seconds{capsule=\"b\",check="
	             "\"error_page\",phase=\"body\"}");
	LINE(text, "gemini_probe_failures_total{capsule=\"b\",check=\"error_"
	           "page\",reason=\"close_notify\"} 1");
	LINE(text, "gemini_response_ends_total{capsule=\"b\",check=\"error_"
	           "page\",end=\"premature\"} 1");
	ok(strstr(text, "gemini_probe_success{capsule=\"b\",check=\"page\"} 0\n"
	                "gemini_probe_success{capsule=\"b\",check=\"error_"
	                "page\"} 0\n") != NULL,
	    "page then error_page within a family");

	/* Escaped names and a huge timestamp. */
	LINE(text, "gemini_probe_success{capsule=\"we\\\"ird\\\\name\\nx\","
	           "check=\"page\"} 1");
	LINE(text, "gemini_probe_timestamp_seconds{capsule="
	           "\"we\\\"ird\\\\name\\nx\",check=\"page\"} 1e+21");
	is_int(count(text, "capsule=\"d\""), 0,
	    "no samples for a capsule without results");

	/* Order of families, HELP and TYPE once each. */
	inorder = once = 1;
	prev = text;
	for (i = 0; families[i] != NULL; i++) {
		snprintf(want, sizeof want, "# HELP %s ", families[i]);
		if (count(text, want) != 1)
			once = 0;
		snprintf(want, sizeof want, "# TYPE %s ", families[i]);
		if (count(text, want) != 1)
			once = 0;
		if ((p = strstr(text, want)) == NULL || p < prev)
			inorder = 0;
		else
			prev = p;
	}
	ok(once, "HELP and TYPE exactly once per family");
	ok(inorder, "families in the specified order");
	ok(grouped(text), "each family's samples together after its TYPE");
	ok(strstr(text, "# HELP gemini_probe_success Whether the latest "
	                "finished probe") != NULL,
	    "HELP says latest finished probe");
	LINE(text, "# TYPE gemini_probes_total counter");
	LINE(text, "# TYPE gemini_probe_failures_total counter");
	LINE(text, "# TYPE gemini_response_ends_total counter");
	LINE(text, "# TYPE gemini_cert_info gauge");
	is_int(count(text, "probe_tls_version_info"), 0,
	    "no /probe-only family in /metrics");

	/* The daemon's own. */
	snprintf(want, sizeof want,
	    "gemwatch_build_info{version=\"0.1.0\","
	    "gnutls_version=\"%s\"} 1",
	    gnutls_check_version(NULL));
	LINE(text, want);
	LINE(text, "gemwatch_capsules 4");
	LINE(text, "gemwatch_config_last_reload_successful 1");
	LINE(text,
	    "gemwatch_config_last_reload_success_timestamp_seconds 1764345000");
	LINE(text, "process_start_time_seconds 1764345000.25");
	/* Every event but notify-test's, every outcome, zeros included. */
	is_int(count(text, "\ngemwatch_notify_total{"), 11 * 5,
	    "gemwatch_notify_total: 11 events by 5 outcomes");
	LINE(text, "gemwatch_notify_total{event=\"crawl_problems\","
	           "result=\"ok\"} 0");
	LINE(text, "gemwatch_notify_total{event=\"diagnose_passing\","
	           "result=\"dropped\"} 0");
	LINE(text, "gemwatch_notify_total{event=\"down\",result=\"ok\"} 0");
	LINE(text, "gemwatch_notify_total{event=\"cert_mismatch\",result="
	           "\"dropped\"} 0");
	is_int(count(text, "event=\"test\""), 0, "no notify-test series");
	ok(strstr(text, "\nprocess_cpu_seconds_total ") != NULL, "cpu seconds");
	ok(strstr(text, "\nprocess_resident_memory_bytes ") != NULL &&
	        atol(strstr(text, "\nprocess_resident_memory_bytes ") + 31) > 0,
	    "resident memory > 0");
	fds1 = atoi(strstr(text, "\nprocess_open_fds ") + 18);
	promtool_check(text, "/metrics");
	first = buf_steal(&b, NULL);

	store_set_reload(s, 0, 1764349999);
	if (pipe(pfd) == -1)
		pfd[0] = pfd[1] = -1;
	render_fresh(&b, s, &info);
	text = b.data;
	fds2 = atoi(strstr(text, "\nprocess_open_fds ") + 18);
	is_int(fds2 - fds1, 2, "process_open_fds counts a new pipe");
	LINE(text, "gemwatch_config_last_reload_successful 0");
	LINE(text,
	    "gemwatch_config_last_reload_success_timestamp_seconds 1764345000");
	close(pfd[0]);
	close(pfd[1]);
	buf_free(&b);
	free(first);
	store_free(s);
	notify_free(info.notify);
}

static void
test_probe(void)
{
	struct probe_result r;
	struct buf b;
	char *text;

	good_result(&r);
	buf_init(&b);
	metrics_probe(&b, &r);
	text = b.data;
	LINE(text, "probe_success 1");
	LINE(text, "probe_duration_seconds 0.106");
	LINE(text, "probe_dns_lookup_time_seconds 0.001");
	LINE(text, "probe_ip_protocol 4");
	LINE(text, "probe_ssl_earliest_cert_expiry 1800000000");
	LINE(text, "probe_tls_version_info{version=\"TLS 1.3\"} 1");
	LINE(text,
	    "probe_ssl_last_chain_info{fingerprint_sha256="
	    "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "\",subject=\"CN=a.example\",issuer=\"CN=a.example\"} 1");
	LINE(text, "probe_gemini_close_notify 1");
	LINE(text, "probe_gemini_status_code 20");
	LINE(text, "probe_gemini_body_bytes 1234");
	LINE(text, "probe_gemini_response_max_gap_seconds 0.0025");
	LINE(text, "probe_gemini_response_idle_before_end_seconds 0.0005");
	LINE(text, "probe_gemini_phase_duration_seconds{phase=\"tls\"} 0.051");
	LINE(text, "probe_gemini_response_end_info{end=\"close_notify\"} 1");
	LINE(text, "probe_gemini_cert_not_before_timestamp_seconds 1700000000");
	LINE(text, "probe_gemini_cert_tofu_match 1");
	LINE(text, "probe_gemini_tls_info{version=\"TLS1.3\",cipher=\"TLS_AES_"
	           "256_GCM_SHA384\"} 1");
	LINE(text, "# TYPE probe_success gauge");
	is_int(count(text, "capsule="), 0, "no capsule label in /probe");
	is_int(count(text, "gemini_probe"), 0, "no /metrics names in /probe");
	is_int(count(text, "_total"), 0, "no counters in /probe");
	ok(grouped(text), "/probe families grouped");
	promtool_check(text, "/probe");
	buf_free(&b);
	result_clear(&r);

	timeout_result(&r);
	metrics_probe(&b, &r);
	text = b.data;
	LINE(text, "probe_success 0");
	LINE(text, "probe_ip_protocol 6");
	NOLINE(text, "probe_gemini_close_notify");
	NOLINE(text, "probe_gemini_status_code");
	NOLINE(text, "probe_tls_version_info");
	NOLINE(text, "probe_ssl_earliest_cert_expiry");
	NOLINE(text, "probe_gemini_response_end_info");
	buf_free(&b);
	result_clear(&r);

	result_init(&r);
	r.end = END_RESET;
	r.tls_version = "SSL3.0";
	metrics_probe(&b, &r);
	LINE(b.data, "probe_gemini_close_notify 0");
	LINE(b.data, "probe_tls_version_info{version=\"SSL3.0\"} 1");
	buf_free(&b);
}

/*
 * Durations are exact microseconds and take a fast path past snprintf;
 * it must print what %.15g..%.17g would: exponent form below 1e-4, no
 * trailing zeros. Timestamps print to the millisecond.
 */
static void
test_numbers(void)
{
	struct store *s = store_new();
	char *names[1] = {"n"};
	struct probe_result r;
	struct buf b;

	good_result(&r);
	r.dur[PHASE_RESOLVE] = 3e-06;
	r.dur[PHASE_CONNECT] = 1.2e-05;
	r.dur[PHASE_TLS] = 0.000329;
	r.dur[PHASE_HEADER] = 12.000001;
	r.dur[PHASE_BODY] = 0.0001;
	r.total = 123456.5;
	r.time = 1764345600.1234567;
	buf_init(&b);
	metrics_probe(&b, &r);
	LINE(b.data,
	    "probe_gemini_phase_duration_seconds{phase=\"resolve\"} 3e-06");
	LINE(b.data,
	    "probe_gemini_phase_duration_seconds{phase=\"connect\"} 1.2e-05");
	LINE(b.data,
	    "probe_gemini_phase_duration_seconds{phase=\"tls\"} 0.000329");
	LINE(b.data,
	    "probe_gemini_phase_duration_seconds{phase=\"header\"} 12.000001");
	LINE(b.data,
	    "probe_gemini_phase_duration_seconds{phase=\"body\"} 0.0001");
	LINE(b.data, "probe_duration_seconds 123456.5");
	buf_free(&b);

	sync_names(s, 1, names, NULL);
	store_put(s, "n", &r);
	render_fresh(&b, s, NULL);
	LINE(b.data, "gemini_probe_timestamp_seconds{capsule=\"n\",check="
	             "\"page\"} 1764345600.123");
	buf_free(&b);
	store_free(s);
	result_clear(&r);
}

/* The text before the process_* families, which change by themselves. */
static char *
upto_process(struct buf *b)
{
	char *p = strstr(b->data, "# HELP process_");

	return xstrndup(b->data, p != NULL ? (size_t)(p - b->data) : b->len);
}

/*
 * The cache must give what a fresh render gives: after a probe, after a
 * reload that renames a capsule, and unchanged when nothing happened.
 */
static void
test_cache(void)
{
	struct metrics_cache *mc = metrics_cache_new();
	struct store *s = store_new();
	char *names[2] = {"a", "b"}, *renamed[2] = {"a", "c"};
	char *fresh, *cached;
	struct probe_result r;
	struct buf b;
	int step;

	sync_names(s, 2, names, NULL);
	good_result(&r);
	store_put(s, "a", &r);
	store_put(s, "b", &r);
	for (step = 0; step < 4; step++) {
		if (step == 1) {
			r.status = 31;
			r.time += 60;
			store_put(s, "b", &r);
		} else if (step == 2)
			sync_names(s, 2, renamed, NULL);
		buf_init(&b);
		render_fresh(&b, s, NULL);
		fresh = upto_process(&b);
		buf_free(&b);
		render_cached(&b, mc, s, NULL);
		cached = upto_process(&b);
		buf_free(&b);
		is_str(
		    cached, fresh, "cached render %d is a fresh render", step);
		if (step == 1)
			LINE(cached, "gemini_response_status_code{capsule="
			             "\"b\",check=\"page\"} 31");
		if (step >= 2)
			NOLINE(cached, "capsule=\"b\"");
		free(fresh);
		free(cached);
	}
	result_clear(&r);
	store_free(s);
	metrics_cache_free(mc);
}

/*
 * Scrapes of one state of the store share the capsules' samples: one
 * text, held by each (not a copy), and what follows it completes
 * /metrics. A probe makes a new text; the old lives on while held.
 */
static void
test_shared(void)
{
	struct metrics_cache *mc = metrics_cache_new();
	struct store *s = store_new();
	char *names[2] = {"a", "b"};
	struct metrics_text *t1, *t2, *t3;
	struct probe_result r;
	struct buf b, rest1, rest2, rest3, whole;
	const char *d1, *d2, *d3;
	char *got, *want;
	size_t n1, n2, n3;

	sync_names(s, 2, names, NULL);
	good_result(&r);
	store_put(s, "a", &r);
	buf_init(&rest1);
	buf_init(&rest2);
	buf_init(&rest3);
	t1 = metrics_render_shared(&rest1, mc, s, NULL);
	t2 = metrics_render_shared(&rest2, mc, s, NULL);
	ok(t1 == t2, "two scrapes of one state share one text");
	d1 = metrics_text_data(t1, &n1);
	d2 = metrics_text_data(t2, &n2);
	ok(d1 == d2 && n1 == n2 && n1 > 0, "its bytes, not a copy");
	buf_init(&whole);
	buf_add(&whole, d1, n1);
	buf_add(&whole, rest1.data, rest1.len);
	buf_init(&b);
	render_fresh(&b, s, NULL);
	got = upto_process(&whole);
	want = upto_process(&b);
	is_str(got, want, "the text then the rest is /metrics");
	free(got);
	free(want);
	r.time += 60;
	store_put(s, "b", &r);
	t3 = metrics_render_shared(&rest3, mc, s, NULL);
	d3 = metrics_text_data(t3, &n3);
	ok(t3 != t1 && d3 != d1 && n3 > n1, "a probe makes a new text");
	metrics_text_release(t2);
	metrics_text_release(t3);
	metrics_cache_free(mc);
	ok(memcmp(metrics_text_data(t1, &n2), d1, n1) == 0 && n2 == n1,
	    "a text held outlives the cache");
	metrics_text_release(t1);
	metrics_text_release(NULL);
	buf_free(&b);
	buf_free(&whole);
	buf_free(&rest1);
	buf_free(&rest2);
	buf_free(&rest3);
	result_clear(&r);
	store_free(s);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
test_big(void)
{
	const size_t n = 2000;
	char **names = xcalloc(n, sizeof *names);
	struct daemon_info info = {"0.1.0", 0, NULL};
	struct store *s = store_new();
	struct probe_result r;
	struct buf b;
	double t0, dt;
	size_t i;

	for (i = 0; i < n; i++)
		xasprintf(&names[i], "capsule-%05zu.example.org", i);
	sync_names(s, n, names, names); /* every one with an error page */
	log_init(LOG_LEVEL_ERR);        /* 20,000 "up" lines */
	good_result(&r);
	for (i = 0; i < n; i++) {
		r.check = CHECK_PAGE;
		store_put(s, names[i], &r);
		r.check = CHECK_ERROR_PAGE;
		store_put(s, names[i], &r);
	}
	result_clear(&r);
	log_init(LOG_LEVEL_NOTICE);

	buf_init(&b);
	t0 = now();
	render_fresh(&b, s, &info);
	dt = now() - t0;
	/* A figure, not a verdict: timing belongs to tests/bench. */
	printf(
	    "# %zu capsules x 2 checks: %zu bytes in %.3f s\n", n, b.len, dt);
	is_int(count(b.data, "\ngemini_probes_total{"), 2 * n,
	    "a probes_total sample per capsule and check");
	buf_free(&b);
	store_free(s);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* text without its process_* lines (CPU time and memory move on). */
static char *
without_process(const char *text)
{
	struct buf b;
	const char *p, *nl;

	buf_init(&b);
	for (p = text; *p != '\0'; p = nl + 1) {
		if ((nl = strchr(p, '\n')) == NULL)
			nl = p + strlen(p) - 1;
		if (strstr(p, "process_") != p &&
		    strncmp(p, "# HELP process_", 15) != 0 &&
		    strncmp(p, "# TYPE process_", 15) != 0)
			buf_add(&b, p, (size_t)(nl - p + 1));
	}
	buf_addc(&b, '\0');
	return buf_steal(&b, NULL);
}

/* All of a stream, read max bytes at a time; -1 if it failed. */
static int
stream_all(struct metrics_stream *ms, size_t max, struct buf *out)
{
	char *chunk = xmalloc(max);
	long n;

	while ((n = metrics_stream_read(ms, chunk, max)) > 0)
		buf_add(out, chunk, (size_t)n);
	free(chunk);
	return n == 0 ? 0 : -1;
}

static void
test_stream(void)
{
	const size_t n = 3000;
	char **names = xcalloc(n, sizeof *names);
	struct daemon_info info = {"0.1.0", 0, NULL};
	struct store *s = store_new();
	struct metrics_cache *mc = metrics_cache_new();
	struct metrics_stream *ms;
	struct probe_result r;
	struct buf whole, streamed;
	char *a, *b, chunk[100];
	size_t i;

	for (i = 0; i < n; i++)
		xasprintf(&names[i], "capsule-%05zu.example.org", i);
	sync_names(s, 10, names, NULL);
	ok(metrics_stream_new(mc, s, &info) == NULL,
	    "10 capsules: rendered at once, not streamed");

	sync_names(s, n, names, names);
	log_init(LOG_LEVEL_ERR);
	good_result(&r);
	for (i = 0; i < n; i++) {
		r.check = CHECK_PAGE;
		store_put(s, names[i], &r);
		r.check = i % 2 ? CHECK_ERROR_PAGE : CHECK_PAGE;
		store_put(s, names[i], &r);
	}
	result_clear(&r);
	log_init(LOG_LEVEL_NOTICE);

	buf_init(&whole);
	buf_init(&streamed);
	render_fresh(&whole, s, &info);
	ms = metrics_stream_new(mc, s, &info);
	ok(ms != NULL, "3,000 capsules (%zu bytes): streamed", whole.len);
	if (ms != NULL) {
		is_int(stream_all(ms, 7001, &streamed), 0,
		    "the stream ends without error");
		metrics_stream_free(ms);
		buf_addc(&streamed, '\0');
		a = without_process(whole.data);
		b = without_process(streamed.data);
		is_int(strlen(b), strlen(a), "streamed: as long as rendered");
		ok(strcmp(a, b) == 0,
		    "streamed: the same text as rendered at once (but "
		    "process_*)");
		free(a);
		free(b);
	}

	/* A reload that keeps the capsules leaves a stream alone. */
	ms = metrics_stream_new(mc, s, &info);
	ok(ms != NULL && metrics_stream_read(ms, chunk, sizeof chunk) ==
	                     (long)sizeof chunk,
	    "a stream begins");
	sync_names(s, n, names, names);
	if (ms != NULL) {
		buf_free(&streamed);
		buf_init(&streamed);
		is_int(stream_all(ms, 65536, &streamed), 0,
		    "a reload keeping the capsules: the stream ends whole");
		metrics_stream_free(ms);
	}

	/* A reload that changes them cuts it short. */
	ms = metrics_stream_new(mc, s, &info);
	ok(ms != NULL && metrics_stream_read(ms, chunk, sizeof chunk) ==
	                     (long)sizeof chunk,
	    "a stream begins");
	sync_names(s, n - 1, names, names);
	if (ms != NULL) {
		buf_free(&streamed);
		buf_init(&streamed);
		is_int(stream_all(ms, 65536, &streamed), -1,
		    "a reload dropping a capsule makes the stream fail");
		metrics_stream_free(ms);
	}
	buf_free(&whole);
	buf_free(&streamed);
	metrics_cache_free(mc);
	store_free(s);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

int
main(void)
{
	test_escape();
	test_render();
	test_probe();
	test_numbers();
	test_cache();
	test_shared();
	test_big();
	test_stream();
	return done_testing();
}
