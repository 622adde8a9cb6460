/*
 * Unit tests for the results store: sync keeps, drops and adds capsules
 * in configuration order; history rings (order, capacity, resize);
 * counters; results for unknown capsules ignored; the state-change log
 * lines; the reload status; and a smoke test with concurrent writers and
 * a reader.
 */
#include "config.h"

#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "fixture.h"
#include "result.h"
#include "store.h"
#include "tap.h"
#include "xmalloc.h"

#define MAXCAPS 8

struct testconf {
	struct conf conf;
	struct capsule_conf caps[MAXCAPS];
};

/* Capsules given as "name url [error-path]" strings. */
static void
mkconf(struct testconf *t, unsigned history, const char *const *spec)
{
	char name[64], url[128], ep[64];
	size_t i;
	int n;

	memset(t, 0, sizeof *t);
	t->conf.history = history;
	t->conf.shard_k = t->conf.shard_n = 1;
	t->conf.capsules = t->caps;
	for (i = 0; spec[i] != NULL; i++) {
		n = sscanf(spec[i], "%63s %127s %63s", name, url, ep);
		t->caps[i].name = xstrdup(name);
		t->caps[i].url.text = xstrdup(url);
		t->caps[i].error_path = n == 3 ? xstrdup(ep) : NULL;
	}
	t->conf.ncapsules = i;
}

static void
freeconf(struct testconf *t)
{
	size_t i;

	for (i = 0; i < t->conf.ncapsules; i++) {
		free(t->caps[i].name);
		free(t->caps[i].url.text);
		free(t->caps[i].error_path);
	}
}

static void
sync_with(struct store *s, unsigned history, const char *const *spec)
{
	struct testconf t;

	mkconf(&t, history, spec);
	fixture_sync(s, &t.conf);
	freeconf(&t);
}

static void
mkres(struct probe_result *r, enum check check, double time, int status,
    enum end end)
{
	result_init(r);
	r->check = check;
	r->url = xstrdup("gemini://example.org/");
	r->time = time;
	r->total = 0.5;
	r->status = status;
	r->end = end;
	r->success = 1;
	if (end != END_CLOSE_NOTIFY && end != END_NONE)
		result_fail(
		    r, end_reason(end), STAGE_BODY, "ended: %s", end_name(end));
}

static void
put(struct store *s, const char *name, enum check check, double time,
    int status, enum end end)
{
	struct probe_result r;

	mkres(&r, check, time, status, end);
	store_put(s, name, &r);
	result_clear(&r);
}

static const struct store_check *
check_of(struct store *s, const char *name, enum check k)
{
	const struct store_capsule *cap = store_find(s, name);

	return cap != NULL ? &cap->check[k] : NULL;
}

/* Times of the history, newest first, as "5 4 3". */
static const char *
times(const struct store_check *c)
{
	static char out[256];
	struct probe_result r;
	size_t i, n = 0;

	out[0] = '\0';
	for (i = 0; store_history_get(c, i, &r) == 0 && n < 200; i++)
		n += (size_t)snprintf(
		    out + n, sizeof out - n, "%s%g", i ? " " : "", r.time);
	return out;
}

static const char *
names(struct store *s)
{
	static char out[256];
	size_t i, n = 0;

	out[0] = '\0';
	for (i = 0; i < store_count(s) && n < 200; i++)
		n += (size_t)snprintf(out + n, sizeof out - n, "%s%s",
		    i ? " " : "", store_at(s, i)->name);
	return out;
}

static void
test_sync_and_history(void)
{
	static const char *const first[] = {"a gemini://a.example/",
	    "b gemini://b.example/ /nope", "c gemini://c.example/", NULL};
	static const char *const second[] = {"c gemini://c.example/new",
	    "a gemini://a.example/", "d gemini://d.example/", NULL};
	struct store *s = store_new();
	const struct store_check *c;
	struct probe_result view;
	double when = -1;
	int i;

	is_int(store_count(s), 0, "new store is empty");
	is_int(store_reload_status(s, &when), 1, "reload ok initially");
	ok(when == 0, "reload success time 0 initially");

	sync_with(s, 3, first);
	is_str(names(s), "a b c", "sync keeps the configuration order");
	is_str(store_at(s, 0)->url, "gemini://a.example/", "url stored");
	is_int(store_at(s, 0)->has_error_page, 0, "a has no error page");
	is_int(store_at(s, 1)->has_error_page, 1, "b has an error page");
	ok(store_at(s, 3) == NULL, "store_at past the end is NULL");
	ok(store_find(s, "b") == store_at(s, 1), "store_find finds b");
	ok(store_find(s, "zz") == NULL, "store_find of unknown is NULL");

	c = check_of(s, "a", CHECK_PAGE);
	ok(c->last == NULL, "no result yet");
	ok(store_history_get(c, 0, &view) == -1, "empty history");

	put(s, "a", CHECK_PAGE, 1, 20, END_CLOSE_NOTIFY);
	put(s, "a", CHECK_PAGE, 2, 20, END_PREMATURE);
	put(s, "a", CHECK_PAGE, 3, 20, END_PREMATURE);
	put(s, "a", CHECK_PAGE, 4, -1, END_TIMEOUT);
	put(s, "a", CHECK_PAGE, 5, 51, END_CLOSE_NOTIFY);
	ok(c->last != NULL, "has a last result");
	ok(c->last->time == 5 && c->last->status == 51, "last is the newest");
	is_str(c->last->url, "gemini://example.org/", "last has the url");
	is_str(times(c), "5 4 3", "history newest first, capacity 3");
	ok(store_history_get(c, 3, &view) == -1, "history past the end");
	is_int(c->probes, 5, "probes counted");
	is_int(c->failures[REASON_CLOSE_NOTIFY], 2, "close_notify failures");
	is_int(c->failures[REASON_TIMEOUT], 1, "timeout failures");
	is_int(c->failures[REASON_NONE], 0, "successes are not failures");
	is_int(c->ends[END_CLOSE_NOTIFY], 2, "close_notify ends");
	is_int(c->ends[END_PREMATURE], 2, "premature ends");
	is_int(c->ends[END_TIMEOUT], 1, "timeout ends");
	is_int(c->ends[END_NONE], 0, "END_NONE not counted");

	/* Results for things that are not in the store are ignored. */
	put(s, "zz", CHECK_PAGE, 6, 20, END_CLOSE_NOTIFY);
	put(s, "a", CHECK_ERROR_PAGE, 6, 51, END_CLOSE_NOTIFY);
	ok(check_of(s, "a", CHECK_ERROR_PAGE)->last == NULL,
	    "error_page result of a capsule without error-path ignored");
	is_int(
	    check_of(s, "a", CHECK_ERROR_PAGE)->probes, 0, "and not counted");
	put(s, "b", CHECK_ERROR_PAGE, 7, 51, END_CLOSE_NOTIFY);
	is_int(check_of(s, "b", CHECK_ERROR_PAGE)->probes, 1,
	    "error_page result of b counted");
	is_int(check_of(s, "b", CHECK_PAGE)->probes, 0, "and not as its page");
	put(s, "c", CHECK_PAGE, 8, 20, END_CLOSE_NOTIFY);

	/* Reload: b removed, d added, c's URL changed, history shrinks. */
	sync_with(s, 2, second);
	is_str(names(s), "c a d", "resync follows the new order");
	ok(store_find(s, "b") == NULL, "removed capsule dropped");
	is_str(store_find(s, "c")->url, "gemini://c.example/new",
	    "url follows the configuration");
	c = check_of(s, "c", CHECK_PAGE);
	is_int(c->probes, 1, "c kept its counters across a url change");
	c = check_of(s, "a", CHECK_PAGE);
	is_int(c->probes, 5, "a kept its counters");
	is_int(c->failures[REASON_CLOSE_NOTIFY], 2, "and failures");
	is_str(times(c), "5 4", "history shrunk to the 2 newest");
	is_int(check_of(s, "d", CHECK_PAGE)->probes, 0, "d starts empty");
	ok(store_history_get(check_of(s, "d", CHECK_PAGE), 0, &view) == -1,
	    "d has no history");
	put(s, "a", CHECK_PAGE, 6, 20, END_CLOSE_NOTIFY);
	is_str(times(c), "6 5", "shrunk ring wraps");

	/* Grow: old results kept, room for more. */
	sync_with(s, 4, second);
	c = check_of(s, "a", CHECK_PAGE);
	is_str(times(c), "6 5", "history grown keeps what it had");
	for (i = 7; i <= 9; i++)
		put(s, "a", CHECK_PAGE, i, 20, END_CLOSE_NOTIFY);
	is_str(times(c), "9 8 7 6", "grown ring fills up to 4");
	put(s, "a", CHECK_PAGE, 10, 20, END_CLOSE_NOTIFY);
	is_str(times(c), "10 9 8 7", "then wraps");
	is_int(c->probes, 10, "all probes counted");

	/* No history at all: last and counters still kept. */
	sync_with(s, 0, second);
	c = check_of(s, "a", CHECK_PAGE);
	ok(store_history_get(c, 0, &view) == -1, "history 0 keeps nothing");
	put(s, "a", CHECK_PAGE, 11, 20, END_CLOSE_NOTIFY);
	ok(store_history_get(c, 0, &view) == -1, "nor after a put");
	ok(c->last->time == 11, "but the last result");
	is_int(c->probes, 11, "and counters");
	sync_with(s, 2, second);
	c = check_of(s, "a", CHECK_PAGE);
	put(s, "a", CHECK_PAGE, 12, 20, END_CLOSE_NOTIFY);
	is_str(times(c), "12", "history back after growing from 0");

	/* error-path removed by a reload: its series go away. */
	sync_with(s, 2, first);
	is_int(check_of(s, "b", CHECK_ERROR_PAGE)->probes, 0,
	    "b came back new (it had been removed)");
	put(s, "b", CHECK_ERROR_PAGE, 13, 51, END_CLOSE_NOTIFY);
	{
		static const char *const noep[] = {
		    "b gemini://b.example/", NULL};
		sync_with(s, 2, noep);
	}
	is_int(store_at(s, 0)->has_error_page, 0, "error page removed");
	ok(check_of(s, "b", CHECK_ERROR_PAGE)->last == NULL,
	    "its last result dropped");
	is_int(check_of(s, "b", CHECK_ERROR_PAGE)->probes, 0,
	    "its counters dropped");

	store_set_reload(s, 1, 100);
	is_int(store_reload_status(s, &when), 1, "reload ok");
	ok(when == 100, "success time set");
	store_set_reload(s, 0, 200);
	is_int(store_reload_status(s, &when), 0, "failed reload reported");
	ok(when == 100, "failed reload keeps the last success time");
	store_set_reload(s, 1, 300);
	is_int(store_reload_status(s, &when), 1, "ok again");
	ok(when == 300, "success time moves on");
	store_free(s);
}

static void
test_shard(void)
{
	static const char *const spec[] = {"alpha gemini://a/",
	    "beta gemini://b/", "gamma gemini://c/", "delta gemini://d/",
	    "epsilon gemini://e/", "zeta gemini://f/", NULL};
	struct testconf t;
	struct store *s = store_new();
	size_t i, in = 0;
	int good = 1;

	mkconf(&t, 5, spec);
	t.conf.shard_k = 1;
	t.conf.shard_n = 2;
	fixture_sync(s, &t.conf);
	for (i = 0; i < t.conf.ncapsules; i++) {
		if (conf_in_shard(&t.conf, &t.caps[i]))
			in++;
		if ((store_find(s, t.caps[i].name) != NULL) !=
		    (conf_in_shard(&t.conf, &t.caps[i]) != 0))
			good = 0;
	}
	ok(good, "store holds exactly the capsules of its shard");
	is_int(store_count(s), in, "count is the shard's");
	ok(in < t.conf.ncapsules, "some capsules are in the other shard");
	freeconf(&t);
	store_free(s);
}

/* A history's duration: within 1/4096 of what was measured. */
static int
near(double got, double want)
{
	return fabs(got - want) <= want / 4096 + 0.5e-6;
}

static int
count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		if (*s == '\n')
			n++;
	return n;
}

static void
put_cert(struct store *s, const char *name, double time, const char *sha,
    const char *key)
{
	struct probe_result r;

	mkres(&r, CHECK_PAGE, time, 20, END_CLOSE_NOTIFY);
	if (sha != NULL) {
		r.cert.present = 1;
		snprintf(r.cert.sha256, sizeof r.cert.sha256, "%s", sha);
		snprintf(r.cert.pubkey_sha256, sizeof r.cert.pubkey_sha256,
		    "%s", key);
	} else
		result_fail(
		    &r, REASON_CONNECT, STAGE_CONNECT, "connection refused");
	store_put(s, name, &r);
	result_clear(&r);
}

static void
test_log(void)
{
	static const char *const spec[] = {"a gemini://a.example/ /nope", NULL};
	struct store *s = store_new();
	const char *out;

	sync_with(s, 4, spec);

	capture_begin();
	put(s, "a", CHECK_PAGE, 1, 20, END_CLOSE_NOTIFY);
	out = capture_end();
	ok(strstr(out, " capsule a: up\n") != NULL, "first probe logs up");
	is_int(count_lines(out), 1, "one line");

	capture_begin();
	put(s, "a", CHECK_PAGE, 2, 20, END_CLOSE_NOTIFY);
	out = capture_end();
	is_int(count_lines(out), 0, "no change, no line");

	capture_begin();
	put(s, "a", CHECK_PAGE, 3, 20, END_PREMATURE);
	out = capture_end();
	ok(strstr(out, " capsule a: down (close_notify: ended: premature)\n") !=
	        NULL,
	    "down with reason and message");
	ok(strstr(out, " capsule a: close_notify lost (premature)\n") != NULL,
	    "close_notify lost");
	is_int(count_lines(out), 2, "two lines");

	capture_begin();
	put(s, "a", CHECK_PAGE, 4, 20, END_RESET);
	put(s, "a", CHECK_PAGE, 5, -1, END_TIMEOUT);
	out = capture_end();
	is_int(count_lines(out), 0, "still down, still without: no lines");

	capture_begin();
	put(s, "a", CHECK_PAGE, 6, 20, END_CLOSE_NOTIFY);
	out = capture_end();
	ok(strstr(out, " capsule a: up\n") != NULL, "up again");
	ok(strstr(out, " capsule a: close_notify back\n") != NULL,
	    "close_notify back, across the timeout in between");
	is_int(count_lines(out), 2, "two lines");

	capture_begin();
	put(s, "a", CHECK_ERROR_PAGE, 7, 51, END_CLOSE_NOTIFY);
	out = capture_end();
	ok(strstr(out, " capsule a (error_page): up\n") != NULL,
	    "error page names its check");

	capture_begin();
	put_cert(s, "a", 8, "aaaa", "kkkk");
	put_cert(s, "a", 9, "aaaa", "kkkk");
	out = capture_end();
	is_int(count_lines(out), 0, "first certificate: no change logged");

	capture_begin();
	put_cert(s, "a", 10, NULL, NULL);
	put_cert(s, "a", 11, "bbbb", "kkkk");
	out = capture_end();
	ok(strstr(out, " capsule a: certificate changed "
	               "(sha256 aaaa \xe2\x86\x92 bbbb, same key)\n") != NULL,
	    "certificate change across a result without one, same key");
	is_int(count_lines(out), 3, "down, up, changed");

	capture_begin();
	put_cert(s, "a", 12, "cccc", "llll");
	out = capture_end();
	ok(strstr(out, "(sha256 bbbb \xe2\x86\x92 cccc, new key)\n") != NULL,
	    "certificate change with a new key");
	is_int(count_lines(out), 1, "one line");

	store_free(s);
}

/* A result with every field set, as a probe fills it. */
static void
full_result(struct probe_result *r, double time, const char *subject)
{
	result_init(r);
	r->check = CHECK_PAGE;
	r->url = xstrdup("gemini://example.org/");
	r->time = time;
	r->success = 1;
	strcpy(r->address, "2001:db8::7");
	r->port = 1965;
	r->ip_protocol = 6;
	r->dur[PHASE_RESOLVE] = 0.000123;
	r->dur[PHASE_CONNECT] = 0.02;
	r->dur[PHASE_TLS] = 0.051234;
	r->dur[PHASE_HEADER] = 0.03;
	r->dur[PHASE_BODY] = -1;
	r->total = 0.106789;
	r->max_gap = 0.001999;
	r->idle_before_end = 30.000123;
	r->tls_version = "TLS1.3";
	r->tls_cipher = "TLS_AES_256_GCM_SHA384";
	r->cert.present = 1;
	memset(r->cert.sha256, 'a', SHA256_HEX_LEN);
	memset(r->cert.pubkey_sha256, 'b', SHA256_HEX_LEN);
	r->cert.subject = xstrdup(subject);
	r->cert.issuer = xstrdup("CN=issuer");
	r->cert.not_before = 1700000000;
	r->cert.not_after = 1800000000;
	r->cert.self_signed = 1;
	r->cert.hostname_match = 0;
	r->cert.tofu = TOFU_CHANGED;
	r->cert.key_kept = 1;
	r->status = 20;
	r->meta = xstrdup("text/gemini; lang=en");
	r->body_bytes = 5000000000LL; /* more than 32 bits */
	r->end = END_CLOSE_NOTIFY;
}

/* Live facts of a check. */
static uint32_t
live_facts(const struct store_check *c)
{
	return c->nfacts - c->nfree;
}

static void
test_views(void)
{
	static const char *const spec[] = {"a gemini://a.example/", NULL};
	struct store *s = store_new();
	const struct store_check *c;
	struct probe_result r, v;

	sync_with(s, 4, spec);
	full_result(&r, 1795881600.75, "CN=example.org");
	store_put(s, "a", &r);
	c = check_of(s, "a", CHECK_PAGE);
	ok(store_history_get(c, 0, &v) == 0, "view of the newest");
	is_int(v.check, CHECK_PAGE, "check");
	is_str(v.url, "gemini://example.org/", "url");
	ok(v.time == 1795881600.75, "time keeps milliseconds");
	is_int(v.success, 1, "success");
	is_int(v.reason, REASON_NONE, "reason");
	is_int(v.stage, STAGE_NONE, "stage");
	ok(v.message == NULL, "no message");
	is_str(v.address, "2001:db8::7", "address");
	is_int(v.port, 1965, "port");
	is_int(v.ip_protocol, 6, "ip_protocol");
	ok(v.dur[PHASE_RESOLVE] == 0.000123, "below 2.048 ms, a duration is "
	                                     "exact to the microsecond");
	ok(near(v.dur[PHASE_CONNECT], 0.02) &&
	        near(v.dur[PHASE_TLS], 0.051234) &&
	        near(v.dur[PHASE_HEADER], 0.03),
	    "above, within 1/4096");
	ok(v.dur[PHASE_TLS] != 0.051234, "(and not exact: the test can tell)");
	ok(v.dur[PHASE_BODY] < 0, "a phase not reached stays negative");
	ok(near(v.total, 0.106789), "total");
	ok(v.max_gap < 0 && near(v.idle_before_end, 30.000123),
	    "the body's idle time before its end, within 1/4096; max_gap is "
	    "the latest result's only");
	is_str(v.tls_version, "TLS1.3", "tls version");
	is_str(v.tls_cipher, "TLS_AES_256_GCM_SHA384", "tls cipher");
	is_int(v.cert.present, 1, "cert present");
	is_int(strlen(v.cert.sha256), 64, "sha256 whole");
	ok(v.cert.sha256[0] == 'a' && v.cert.pubkey_sha256[63] == 'b',
	    "sha256 and pubkey_sha256");
	is_str(v.cert.subject, "CN=example.org", "subject");
	is_str(v.cert.issuer, "CN=issuer", "issuer");
	ok(v.cert.not_before == 1700000000 && v.cert.not_after == 1800000000,
	    "validity");
	is_int(v.cert.self_signed, 1, "self_signed");
	is_int(v.cert.hostname_match, 0, "hostname_match");
	is_int(v.cert.tofu, TOFU_CHANGED, "tofu");
	is_int(v.cert.key_kept, 1, "key_kept");
	is_int(v.status, 20, "status");
	is_str(v.meta, "text/gemini; lang=en", "meta");
	ok(v.body_bytes == 5000000000LL, "body_bytes past 32 bits");
	is_int(v.end, END_CLOSE_NOTIFY, "end");
	ok(c->last->time == 1795881600.75 && c->last->total == 0.106789 &&
	        c->last->body_bytes == 5000000000LL,
	    "last keeps its numbers");
	is_str(c->last->cert.subject, "CN=example.org", "last's strings");
	ok(c->last->url == v.url, "last and history share the url");
	result_clear(&r);

	/* A failure without connection, header or certificate. */
	mkres(&r, CHECK_PAGE, 1795881700, -1, END_NONE);
	result_fail(&r, REASON_CONNECT, STAGE_CONNECT, "connection refused");
	r.cert.key_kept = 0;
	r.total = 1e9; /* more than fits: kept as the most */
	r.dur[PHASE_CONNECT] = 10.0001234;
	r.dur[PHASE_RESOLVE] = 0.5;
	store_put(s, "a", &r);
	result_clear(&r);
	ok(store_history_get(c, 0, &v) == 0, "view of a failure");
	is_int(v.success, 0, "success false");
	is_int(v.reason, REASON_CONNECT, "reason");
	is_int(v.stage, STAGE_CONNECT, "stage");
	is_str(v.message, "connection refused", "message");
	ok(v.meta == NULL && v.status == -1 && v.body_bytes == -1,
	    "no meta, status or body");
	ok(v.max_gap < 0 && v.idle_before_end < 0, "no gaps without a body");
	is_str(v.address, "", "no address");
	ok(v.tls_version == NULL && !v.cert.present && v.cert.subject == NULL,
	    "no TLS, no certificate");
	is_int(v.end, END_NONE, "end none");
	is_int(v.cert.key_kept, 0, "key_kept 0");
	ok(v.total == (double)((int64_t)4094 << 30) / 1e6,
	    "a huge duration saturates at 50 days");
	ok(near(v.dur[PHASE_CONNECT], 10.0001234), "10 s within 1/4096");
	ok(near(v.dur[PHASE_RESOLVE], 0.5), "0.5 s within 1/4096");
	ok(store_history_get(c, 1, &v) == 0 && v.time == 1795881600.75,
	    "the older result is still there");

	/* From a microsecond to a week, every duration comes back within
	 * its bound, and a longer one never comes back shorter. */
	{
		double d, prev = -1;
		int bad = 0, backwards = 0;

		full_result(&r, 1795881700, "CN=example.org");
		for (d = 1e-6; d < 7 * 86400; d *= 1.0137) {
			r.dur[PHASE_TLS] = d;
			store_put(s, "a", &r);
			store_history_get(c, 0, &v);
			if (!near(v.dur[PHASE_TLS], d) && bad++ == 0)
				printf("# %.9g came back as %.9g\n", d,
				    v.dur[PHASE_TLS]);
			if (v.dur[PHASE_TLS] < prev)
				backwards++;
			prev = v.dur[PHASE_TLS];
		}
		result_clear(&r);
		is_int(bad, 0, "1 us to a week: every duration within 1/4096");
		is_int(backwards, 0, "1 us to a week: in order");
	}
	store_free(s);
}

static void
test_sharing(void)
{
	static const char *const spec[] = {"a gemini://a.example/", NULL};
	struct store *s = store_new();
	const struct store_check *c;
	struct probe_result r, v;
	int i;

	sync_with(s, 120, spec);
	c = check_of(s, "a", CHECK_PAGE);
	capture_begin();
	for (i = 0; i < 300; i++) {
		full_result(&r, 1000 + i, "CN=example.org");
		r.total = 0.1 + i / 1000.0;
		store_put(s, "a", &r);
		result_clear(&r);
	}
	is_int(c->ring_count, 120, "ring full");
	is_int(live_facts(c), 1, "300 alike results share one fact");

	/* Flapping between two states allocates nothing new. */
	for (i = 0; i < 100; i++) {
		full_result(&r, 2000 + i, "CN=example.org");
		if (i % 2)
			result_fail(&r, REASON_CLOSE_NOTIFY, STAGE_BODY,
			    "connection closed without close_notify");
		store_put(s, "a", &r);
		result_clear(&r);
	}
	is_int(live_facts(c), 2, "flapping: two facts");

	/* The same failure now and then, far apart: its fact is reused. */
	for (i = 0; i < 120; i++) {
		full_result(&r, 2500 + i, "CN=example.org");
		if (i % 30 == 29)
			result_fail(&r, REASON_CLOSE_NOTIFY, STAGE_BODY,
			    "connection closed without close_notify");
		store_put(s, "a", &r);
		result_clear(&r);
	}
	is_int(live_facts(c), 2, "a failure every 30 probes: still two facts");

	/* A message that differs every time: one fact per entry at most,
	 * and they go with the entries that used them. */
	for (i = 0; i < 200; i++) {
		full_result(&r, 3000 + i, "CN=example.org");
		result_fail(&r, REASON_BODY, STAGE_BODY,
		    "a status 51 response carried a %d-byte body", i);
		store_put(s, "a", &r);
		result_clear(&r);
	}
	is_int(live_facts(c), 120, "distinct messages: one fact per entry");
	ok(store_history_get(c, 0, &v) == 0 && v.message != NULL &&
	        strcmp(v.message,
	            "a status 51 response carried a 199-byte body") == 0,
	    "each entry keeps its own message");
	for (i = 0; i < 130; i++) {
		full_result(&r, 4000 + i, "CN=new.example.org");
		store_put(s, "a", &r);
		result_clear(&r);
	}
	capture_end();
	is_int(live_facts(c), 1, "once they roll out: one fact again");
	ok(c->nfacts <= 256, "the table did not grow past need");

	/* A smaller history lets go of facts too. */
	sync_with(s, 1, spec);
	c = check_of(s, "a", CHECK_PAGE);
	is_int(c->ring_count, 1, "shrunk to 1");
	is_int(live_facts(c), 1, "one fact left");
	store_free(s);
}

/* 1 when c's history is exactly newest, newest - 1, ... n results. */
static int
history_is(const struct store_check *c, double newest, size_t n)
{
	struct probe_result v;
	size_t i;

	for (i = 0; i < n; i++)
		if (store_history_get(c, i, &v) != 0 || v.time != newest - i)
			return 0;
	return store_history_get(c, n, &v) == -1 && c->ring_count == n;
}

/* A ring holds what it was given, grows to the configured history, and
 * a reload shrinking or growing it keeps the newest results. */
static void
test_ring_growth(void)
{
	static const char *const spec[] = {"a gemini://a.example/", NULL};
	struct store *s = store_new();
	const struct store_check *c;
	int i, grew = 1;

	sync_with(s, 120, spec);
	c = check_of(s, "a", CHECK_PAGE);
	ok(c->ring == NULL && c->ring_room == 0, "no room before a result");
	capture_begin();
	put(s, "a", CHECK_PAGE, 1, 20, END_CLOSE_NOTIFY);
	ok(history_is(c, 1, 1), "one result held");
	ok(c->ring_room >= 1 && c->ring_room <= 4,
	    "a fresh ring has room for a few results, not 120 (%u)",
	    c->ring_room);
	for (i = 2; i <= 120; i++) {
		put(s, "a", CHECK_PAGE, i, 20, END_CLOSE_NOTIFY);
		if (c->ring_room < (unsigned)i ||
		    c->ring_room > 2 * (unsigned)i + 4)
			grew = 0;
	}
	ok(grew, "the room follows the results: at most twice, plus 4");
	is_int(c->ring_room, 120, "grown to the configured history");
	ok(history_is(c, 120, 120), "120 results, newest first");
	for (i = 121; i <= 130; i++)
		put(s, "a", CHECK_PAGE, i, 20, END_CLOSE_NOTIFY);
	is_int(c->ring_room, 120, "a full ring does not grow");
	ok(history_is(c, 130, 120), "then wraps, keeping the newest 120");

	/* Reload to a shorter history: the newest 50 stay. */
	sync_with(s, 50, spec);
	c = check_of(s, "a", CHECK_PAGE);
	ok(history_is(c, 130, 50), "shrunk to 50: the newest 50");
	is_int(c->ring_room, 50, "and room for just those");
	put(s, "a", CHECK_PAGE, 131, 20, END_CLOSE_NOTIFY);
	ok(history_is(c, 131, 50), "a shrunk ring wraps");

	/* Longer again: everything kept, room grows as results come. */
	sync_with(s, 200, spec);
	c = check_of(s, "a", CHECK_PAGE);
	ok(history_is(c, 131, 50), "grown to 200: the 50 kept");
	ok(c->ring_room >= 50 && c->ring_room <= 2 * 50 + 4,
	    "room %u for what it holds", c->ring_room);
	for (i = 132; i <= 181; i++)
		put(s, "a", CHECK_PAGE, i, 20, END_CLOSE_NOTIFY);
	ok(history_is(c, 181, 100), "100 after 50 more");
	ok(c->ring_room >= 100 && c->ring_room <= 200, "room %u for 100",
	    c->ring_room);
	for (i = 182; i <= 400; i++)
		put(s, "a", CHECK_PAGE, i, 20, END_CLOSE_NOTIFY);
	ok(history_is(c, 400, 200), "full at 200, newest first");
	is_int(c->ring_room, 200, "room 200");

	/* A full, wrapped ring grown: all kept in order. */
	sync_with(s, 300, spec);
	c = check_of(s, "a", CHECK_PAGE);
	ok(history_is(c, 400, 200), "a wrapped ring grown keeps all 200");
	put(s, "a", CHECK_PAGE, 401, 20, END_CLOSE_NOTIFY);
	ok(history_is(c, 401, 201), "and takes more");
	capture_end();
	store_free(s);
}

#define NTHREAD_PUTS 2000

struct writer {
	struct store *s;
	int id;
};

static atomic_int writers_done;

static void *
writer_main(void *arg)
{
	struct writer *w = arg;
	char name[8];
	int i;

	for (i = 0; i < NTHREAD_PUTS; i++) {
		snprintf(name, sizeof name, "t%d", (i + w->id) % 4);
		put(w->s, name, CHECK_PAGE, i, 20,
		    i % 3 ? END_CLOSE_NOTIFY : END_PREMATURE);
	}
	return NULL;
}

static void *
reader_main(void *arg)
{
	struct store *s = arg;
	const struct store_capsule *cap;
	struct probe_result r;
	size_t i, j;
	unsigned long sum = 0, *bad;

	bad = xcalloc(1, sizeof *bad);
	while (!atomic_load(&writers_done)) {
		store_rdlock(s);
		for (i = 0; i < store_count(s); i++) {
			cap = store_at(s, i);
			for (j = 0;
			     store_history_get(&cap->check[0], j, &r) == 0;
			     j++) {
				if (r.url == NULL)
					(*bad)++;
				else
					sum += strlen(r.url);
			}
		}
		store_unlock(s);
	}
	(void)sum;
	return bad;
}

static void
test_threads(void)
{
	static const char *const spec[] = {"t0 gemini://0/", "t1 gemini://1/",
	    "t2 gemini://2/", "t3 gemini://3/", NULL};
	struct store *s = store_new();
	struct writer w[2];
	pthread_t wt[2], rt;
	unsigned long *bad;
	uint64_t total = 0;
	size_t i;
	int hist_ok = 1;

	sync_with(s, 16, spec);
	capture_begin(); /* the first "up" of each capsule */
	pthread_create(&rt, NULL, reader_main, s);
	for (i = 0; i < 2; i++) {
		w[i].s = s;
		w[i].id = (int)i;
		pthread_create(&wt[i], NULL, writer_main, &w[i]);
	}
	for (i = 0; i < 2; i++)
		pthread_join(wt[i], NULL);
	atomic_store(&writers_done, 1);
	pthread_join(rt, (void **)&bad);
	capture_end();

	for (i = 0; i < store_count(s); i++) {
		total += store_at(s, i)->check[0].probes;
		if (store_at(s, i)->check[0].ring_count != 16)
			hist_ok = 0;
	}
	is_int(total, 2 * NTHREAD_PUTS, "every concurrent put counted");
	ok(hist_ok, "every ring full");
	is_int(*bad, 0, "reader saw only complete results");
	free(bad);
	store_free(s);
}

/* store_tally: what the systemd status line says. */
static void
test_tally(void)
{
	static const char *const spec[] = {"a gemini://a/ /nope",
	    "b gemini://b/", "c gemini://c/", "d gemini://d/ /nope", NULL};
	struct store *s = store_new();
	struct store_tally t;

	sync_with(s, 4, spec);
	store_tally(s, &t);
	ok(t.capsules == 4 && t.up == 0 && t.down == 0 && t.pending == 4 &&
	        t.error_pages_failing == 0 && t.reload_ok == 1,
	    "tally: 4 capsules, none probed yet");
	capture_begin();
	put(s, "a", CHECK_PAGE, 1, 20, END_CLOSE_NOTIFY);
	put(s, "a", CHECK_ERROR_PAGE, 1, 51, END_PREMATURE);
	put(s, "b", CHECK_PAGE, 1, 20, END_CLOSE_NOTIFY);
	put(s, "c", CHECK_PAGE, 1, 20, END_PREMATURE);
	put(s, "d", CHECK_ERROR_PAGE, 1, 51, END_CLOSE_NOTIFY);
	(void)capture_end();
	store_set_reload(s, 0, 2);
	store_tally(s, &t);
	is_int(t.capsules, 4, "tally: capsules");
	is_int(t.up, 2, "tally: up (a, b)");
	is_int(t.down, 1, "tally: down (c)");
	is_int(t.pending, 1, "tally: page not probed yet (d)");
	is_int(t.error_pages_failing, 1, "tally: error pages failing (a)");
	is_int(t.reload_ok, 0, "tally: the failed reload");
	store_free(s);
}

int
main(void)
{
	test_sync_and_history();
	test_shard();
	test_log();
	test_views();
	test_sharing();
	test_ring_growth();
	test_threads();
	test_tally();
	store_free(NULL);
	return done_testing();
}
