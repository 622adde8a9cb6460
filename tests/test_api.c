/*
 * Unit tests for the JSON API: results and capsules are serialised, parsed
 * back with json_loads and checked field by field, including the fields
 * that must be present as null, and text that is not valid UTF-8.
 */
#include "config.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "conf.h"
#include "fixture.h"
#include "result.h"
#include "store.h"
#include "tap.h"
#include "xmalloc.h"

static void
good_result(struct probe_result *r)
{
	good_result_for(
	    r, "example.org", 1795881600.75); /* 2026-11-28T16:00:00Z */
	r->cert.hostname_match = 0;
	r->cert.tofu = TOFU_CHANGED;
	r->cert.key_kept = 1;
	free(r->meta);
	r->meta = xstrdup("text/gemini; lang=en");
}

/* Serialise as the API does and parse back. */
static json_t *
roundtrip(const struct probe_result *r, const char *capsule)
{
	json_t *j, *back;
	char *text;

	if ((j = api_result(r, capsule)) == NULL)
		return NULL;
	text = json_dumps(j, API_DUMP_FLAGS);
	json_decref(j);
	if (text == NULL)
		return NULL;
	back = json_loads(text, 0, NULL);
	free(text);
	return back;
}

static const char *
sget(json_t *o, const char *path)
{
	char key[64];
	const char *dot;

	while ((dot = strchr(path, '.')) != NULL) {
		snprintf(key, sizeof key, "%.*s", (int)(dot - path), path);
		o = json_object_get(o, key);
		path = dot + 1;
	}
	return json_string_value(json_object_get(o, path));
}

static json_t *
get(json_t *o, const char *path)
{
	char key[64];
	const char *dot;

	while (o != NULL && (dot = strchr(path, '.')) != NULL) {
		snprintf(key, sizeof key, "%.*s", (int)(dot - path), path);
		o = json_object_get(o, key);
		path = dot + 1;
	}
	return o != NULL ? json_object_get(o, path) : NULL;
}

static int
is_null(json_t *o, const char *path)
{
	return json_is_null(get(o, path));
}

static int
real_is(json_t *o, const char *path, double want)
{
	json_t *v = get(o, path);

	return json_is_real(v) && json_real_value(v) == want;
}

static void
test_full(void)
{
	static const char *const keys[] = {"capsule", "check", "url", "time",
	    "success", "error", "address", "port", "ip_protocol", "durations",
	    "tls", "cert", "status", "meta", "body_bytes", "end", NULL};
	struct probe_result r;
	json_t *j, *o;
	char *text;
	size_t i;
	int all;

	good_result(&r);
	j = roundtrip(&r, "example");
	ok(j != NULL, "result serialises and parses back");
	all = 1;
	for (i = 0; keys[i] != NULL; i++)
		if (json_object_get(j, keys[i]) == NULL)
			all = 0;
	ok(all, "every top-level field present");
	is_int(json_object_size(j), 16, "and nothing else");
	is_str(sget(j, "capsule"), "example", "capsule");
	is_str(sget(j, "check"), "page", "check");
	is_str(sget(j, "url"), "gemini://example.org/", "url");
	is_str(sget(j, "time"), "2026-11-28T16:00:00Z", "time RFC 3339 UTC");
	ok(json_is_true(get(j, "success")), "success true");
	ok(is_null(j, "error"), "error null on success");
	is_str(sget(j, "address"), "192.0.2.7", "address");
	is_int(json_integer_value(get(j, "port")), 1965, "port");
	is_int(json_integer_value(get(j, "ip_protocol")), 4, "ip_protocol");
	ok(real_is(j, "durations.resolve", 0.001), "durations.resolve");
	ok(real_is(j, "durations.connect", 0.02), "durations.connect");
	ok(real_is(j, "durations.tls", 0.051), "durations.tls");
	ok(real_is(j, "durations.header", 0.03), "durations.header");
	ok(real_is(j, "durations.body", 0.004), "durations.body");
	ok(real_is(j, "durations.total", 0.106), "durations.total");
	ok(real_is(j, "durations.max_gap", 0.0025), "durations.max_gap");
	ok(real_is(j, "durations.idle_before_end", 0.0005),
	    "durations.idle_before_end");
	is_int(json_object_size(get(j, "durations")), 8,
	    "durations: five phases, total and the body's two gaps");
	is_str(sget(j, "tls.version"), "TLS1.3", "tls.version");
	is_str(sget(j, "tls.cipher"), "TLS_AES_256_GCM_SHA384", "tls.cipher");
	o = get(j, "cert");
	is_int(json_object_size(o), 10, "cert has 10 fields");
	is_str(sget(j, "cert.sha256"),
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	    "cert.sha256");
	is_str(sget(j, "cert.pubkey_sha256"),
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
	    "cert.pubkey_sha256");
	is_str(sget(j, "cert.subject"), "CN=example.org", "cert.subject");
	is_str(sget(j, "cert.issuer"), "CN=example.org", "cert.issuer");
	is_str(
	    sget(j, "cert.not_before"), "2023-11-14T22:13:20Z", "not_before");
	is_str(sget(j, "cert.not_after"), "2027-01-15T08:00:00Z", "not_after");
	ok(json_is_true(get(j, "cert.self_signed")), "self_signed true");
	ok(json_is_false(get(j, "cert.hostname_match")),
	    "hostname_match false");
	is_str(sget(j, "cert.tofu"), "changed", "cert.tofu");
	ok(json_is_true(get(j, "cert.key_kept")), "key_kept true");
	is_int(json_integer_value(get(j, "status")), 20, "status");
	is_str(sget(j, "meta"), "text/gemini; lang=en", "meta");
	is_int(json_integer_value(get(j, "body_bytes")), 1234, "body_bytes");
	is_str(sget(j, "end"), "close_notify", "end");
	json_decref(j);

	/* Durations print short, not as %.17g. */
	j = api_result(&r, "example");
	text = json_dumps(j, API_DUMP_FLAGS);
	ok(text != NULL && strstr(text, "\"total\":0.106,") != NULL &&
	        strstr(text, "\"resolve\":0.001,") != NULL,
	    "durations print as 0.106 and 0.001");
	ok(text != NULL && strchr(text, '\n') == NULL, "compact");
	free(text);
	json_decref(j);

	r.cert.key_kept = 0;
	j = roundtrip(&r, NULL);
	ok(json_is_false(get(j, "cert.key_kept")), "key_kept false: new key");
	ok(is_null(j, "capsule"), "capsule null when not given");
	json_decref(j);
	r.cert.key_kept = -1;
	r.cert.tofu = TOFU_NONE;
	j = roundtrip(&r, NULL);
	ok(is_null(j, "cert.key_kept"), "key_kept null when unknown");
	ok(is_null(j, "cert.tofu"), "tofu null without a TOFU verdict");
	json_decref(j);
	result_clear(&r);
}

static void
test_nulls(void)
{
	static const char *const nulls[] = {"address", "port", "ip_protocol",
	    "durations.connect", "durations.tls", "durations.header",
	    "durations.body", "durations.max_gap", "durations.idle_before_end",
	    "tls", "cert", "status", "meta", "body_bytes", "end", NULL};
	struct probe_result r;
	json_t *j;
	size_t i;
	int all;

	result_init(&r);
	r.check = CHECK_ERROR_PAGE;
	r.url = xstrdup("gemini://nowhere.example/nope");
	r.time = 1795881600;
	r.dur[PHASE_RESOLVE] = 0.5;
	r.total = 0.5;
	result_fail(
	    &r, REASON_RESOLVE, STAGE_RESOLVE, "Name or service not known");
	j = roundtrip(&r, "nowhere");
	ok(j != NULL, "failed result serialises");
	is_str(sget(j, "check"), "error_page", "check error_page");
	ok(json_is_false(get(j, "success")), "success false");
	is_str(sget(j, "error.reason"), "resolve", "error.reason");
	is_str(sget(j, "error.stage"), "resolve", "error.stage");
	is_str(sget(j, "error.message"), "Name or service not known",
	    "error.message");
	all = 1;
	for (i = 0; nulls[i] != NULL; i++)
		if (!is_null(j, nulls[i])) {
			all = 0;
			printf("# %s is not null\n", nulls[i]);
		}
	ok(all, "fields that do not apply are present as null");
	ok(real_is(j, "durations.resolve", 0.5), "resolve still reported");
	json_decref(j);
	result_clear(&r);

	result_init(&r);
	r.success = 0;
	j = roundtrip(&r, "x");
	ok(is_null(j, "error.reason") && is_null(j, "error.stage") &&
	        is_null(j, "error.message"),
	    "unknown error parts are null");
	ok(is_null(j, "url") && is_null(j, "durations.total"),
	    "url and total null when unknown");
	json_decref(j);
	result_clear(&r);
}

static void
test_utf8(void)
{
	struct probe_result r;
	json_t *j;

	good_result(&r);
	free(r.meta);
	r.meta =
	    xstrdup("text/gemini; title=caf\xc3\xa9 \xff\xfe \xed\xa0\x80!");
	free(r.cert.subject);
	r.cert.subject = xstrdup("CN=\xc0\xaf");
	j = roundtrip(&r, "bad");
	ok(j != NULL, "invalid UTF-8 still makes valid JSON");
	is_str(sget(j, "meta"),
	    "text/gemini; title=caf\xc3\xa9 "
	    "\xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd!",
	    "invalid bytes and a surrogate become U+FFFD, valid text kept");
	is_str(sget(j, "cert.subject"), "CN=\xef\xbf\xbd\xef\xbf\xbd",
	    "an overlong sequence becomes U+FFFD");
	json_decref(j);
	result_clear(&r);
}

static struct store *
mkstore(void)
{
	struct conf conf;
	struct capsule_conf caps[2];
	struct store *s = store_new();

	memset(&conf, 0, sizeof conf);
	memset(caps, 0, sizeof caps);
	conf.history = 3;
	conf.shard_k = conf.shard_n = 1;
	conf.capsules = caps;
	conf.ncapsules = 2;
	caps[0].name = "one";
	caps[0].url.text = "gemini://one.example/";
	caps[1].name = "two";
	caps[1].url.text = "gemini://two.example/";
	caps[1].error_path = "/nope";
	fixture_sync(s, &conf);
	return s;
}

static void
test_capsules(void)
{
	struct store *s = mkstore();
	struct probe_result r;
	json_t *j, *c, *h;
	char *text;
	int i;

	good_result(&r);
	for (i = 1; i <= 4; i++) {
		r.time = 1795881600 + i;
		r.status = 20 + i;
		store_put(s, "two", &r);
	}
	r.check = CHECK_ERROR_PAGE;
	r.status = 51;
	r.success = 0;
	result_fail(&r, REASON_STATUS, STAGE_HEADER, "expected 4x/5x");
	store_put(s, "two", &r);
	result_clear(&r);

	text = api_capsules(s);
	ok(text != NULL, "api_capsules");
	j = json_loads(text != NULL ? text : "", 0, NULL);
	free(text);
	ok(json_array_size(json_object_get(j, "capsules")) == 2,
	    "two capsules");
	c = json_array_get(json_object_get(j, "capsules"), 0);
	is_str(sget(c, "name"), "one", "first in configuration order");
	is_str(sget(c, "url"), "gemini://one.example/", "its url");
	ok(is_null(c, "last"), "last null before any probe");
	is_int(json_integer_value(get(c, "counters.probes")), 0, "probes 0");
	is_int(json_object_size(get(c, "counters.failures")), 9,
	    "every reason counted, zeros too");
	is_int(json_integer_value(get(c, "counters.failures.close_notify")), 0,
	    "failures.close_notify 0");
	is_int(
	    json_object_size(get(c, "counters.ends")), 6, "every end counted");
	ok(is_null(c, "error_page"), "error_page null without error-path");
	ok(get(c, "history") == NULL, "no history in the list");

	c = json_array_get(json_object_get(j, "capsules"), 1);
	is_str(sget(c, "name"), "two", "second");
	is_int(json_integer_value(get(c, "last.status")), 24, "last result");
	is_str(sget(c, "last.capsule"), "two", "last names its capsule");
	is_int(json_integer_value(get(c, "counters.probes")), 4, "probes 4");
	is_int(json_integer_value(get(c, "counters.ends.close_notify")), 4,
	    "ends.close_notify 4");
	is_str(
	    sget(c, "error_page.last.check"), "error_page", "error_page.last");
	is_int(
	    json_integer_value(get(c, "error_page.counters.failures.status")),
	    1, "error_page.counters.failures.status");
	ok(get(c, "error_page.history") == NULL, "no history in the list");
	json_decref(j);

	ok(api_capsule(s, "nosuch") == NULL, "unknown capsule: NULL");
	text = api_capsule(s, "two");
	ok(text != NULL, "api_capsule");
	j = json_loads(text != NULL ? text : "", 0, NULL);
	free(text);
	is_str(sget(j, "name"), "two", "name");
	h = json_object_get(j, "history");
	is_int(json_array_size(h), 3, "history of 3 (capacity)");
	is_int(
	    json_integer_value(json_object_get(json_array_get(h, 0), "status")),
	    24, "newest first");
	is_int(
	    json_integer_value(json_object_get(json_array_get(h, 2), "status")),
	    22, "oldest last");
	is_str(json_string_value(json_object_get(json_array_get(h, 0), "time")),
	    "2026-11-28T16:00:04Z", "history entries are results");
	h = get(j, "error_page.history");
	is_int(json_array_size(h), 1, "error_page history");
	json_decref(j);

	text = api_capsule(s, "one");
	j = json_loads(text != NULL ? text : "", 0, NULL);
	free(text);
	ok(json_is_array(get(j, "history")) &&
	        json_array_size(get(j, "history")) == 0,
	    "empty history is []");
	ok(is_null(j, "error_page"), "error_page null");
	json_decref(j);
	store_free(s);
}

int
main(void)
{
	test_full();
	test_nulls();
	test_utf8();
	test_capsules();
	return done_testing();
}
