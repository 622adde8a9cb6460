/*
 * The JSON API (SPEC.md §5, §6) with jansson: one result shape used by the
 * probe CLI, the API and the history, every field present and null when it
 * does not apply. Text from servers and certificates may be ill-formed
 * UTF-8, which jansson refuses (and which would not be JSON): it is
 * repaired with U+FFFD first. Each builder inserts a child into its parent
 * before filling it, so one json_decref of the root frees everything on
 * any failure; json_object_set_new fails on (and owns) a NULL value, so a
 * failed allocation anywhere is caught by the SET that receives it.
 */
#include "config.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "seq.h"
#include "buf.h"
#include "result.h"
#include "store.h"
#include "utf8.h"

#define SET(o, k, v)                                                           \
	do {                                                                   \
		if (json_object_set_new((o), (k), (v)) != 0)                   \
			goto fail;                                             \
	} while (0)

static json_t *
jstrn(const char *s, size_t len)
{
	struct buf b;
	json_t *j;

	if (utf8_valid(s, len))
		return json_stringn(s, len);
	buf_init(&b);
	utf8_sanitize(&b, s, len);
	j = json_stringn(b.data, b.len);
	buf_free(&b);
	return j;
}

/* A string, or null for NULL. */
static json_t *
jstr(const char *s)
{
	return s != NULL ? jstrn(s, strlen(s)) : json_null();
}

/* Seconds, or null when not measured (negative). */
static json_t *
jseconds(double d)
{
	return d >= 0 && isfinite(d) ? json_real(d) : json_null();
}

static json_t *
jtime(double t)
{
	char out[32];

	if (!isfinite(t) || t < 0 || t > 253402300799.0) /* 9999-12-31 */
		return json_null();
	format_rfc3339((time_t)t, out);
	return json_string(out);
}

static int
add_error(json_t *o, const struct probe_result *r)
{
	json_t *e;

	if (r->success)
		return json_object_set_new(o, "error", json_null());
	e = json_object();
	SET(o, "error", e);
	SET(e, "reason", jstr(reason_name(r->reason)));
	SET(e, "stage", jstr(stage_name(r->stage)));
	SET(e, "message", jstr(r->message));
	return 0;
fail:
	return -1;
}

static int
add_cert(json_t *o, const struct cert_facts *f)
{
	json_t *c;
	char t[32];

	if (!f->present)
		return json_object_set_new(o, "cert", json_null());
	c = json_object();
	SET(o, "cert", c);
	SET(c, "sha256",
	    jstrn(f->sha256, strnlen(f->sha256, sizeof f->sha256)));
	SET(c, "pubkey_sha256",
	    f->pubkey_sha256[0] == '\0'
	        ? json_null()
	        : jstrn(f->pubkey_sha256,
	              strnlen(f->pubkey_sha256, sizeof f->pubkey_sha256)));
	SET(c, "subject", jstr(f->subject));
	SET(c, "issuer", jstr(f->issuer));
	format_rfc3339(f->not_before, t);
	SET(c, "not_before", json_string(t));
	format_rfc3339(f->not_after, t);
	SET(c, "not_after", json_string(t));
	SET(c, "self_signed", json_boolean(f->self_signed));
	SET(c, "hostname_match", json_boolean(f->hostname_match));
	SET(c, "tofu", jstr(tofu_name(f->tofu)));
	/* Tells a renewal that kept the key from a new key. */
	SET(c, "key_kept",
	    f->key_kept < 0 ? json_null() : json_boolean(f->key_kept));
	return 0;
fail:
	return -1;
}

json_t *
api_result(const struct probe_result *r, const char *capsule)
{
	json_t *o, *d, *tls;
	int p;

	if ((o = json_object()) == NULL)
		return NULL;
	SET(o, "capsule", jstr(capsule));
	SET(o, "check", jstr(check_name(r->check)));
	SET(o, "url", jstr(r->url));
	SET(o, "time", jtime(r->time));
	SET(o, "success", json_boolean(r->success));
	if (add_error(o, r) != 0)
		goto fail;
	SET(o, "address",
	    r->address[0] == '\0'
	        ? json_null()
	        : jstrn(r->address, strnlen(r->address, sizeof r->address)));
	SET(o, "port", r->port > 0 ? json_integer(r->port) : json_null());
	SET(o, "ip_protocol",
	    r->ip_protocol != 0 ? json_integer(r->ip_protocol) : json_null());

	d = json_object();
	SET(o, "durations", d);
	for (p = 0; p < PHASE__COUNT; p++)
		SET(d, phase_name(p), jseconds(r->dur[p]));
	SET(d, "total", jseconds(r->total));

	if (r->tls_version == NULL)
		SET(o, "tls", json_null());
	else {
		tls = json_object();
		SET(o, "tls", tls);
		SET(tls, "version", jstr(r->tls_version));
		SET(tls, "cipher", jstr(r->tls_cipher));
	}
	if (add_cert(o, &r->cert) != 0)
		goto fail;

	SET(o, "status",
	    r->status >= 0 ? json_integer(r->status) : json_null());
	SET(o, "meta", jstr(r->meta));
	SET(o, "body_bytes",
	    r->body_bytes >= 0 ? json_integer(r->body_bytes) : json_null());
	SET(o, "end", jstr(end_name(r->end)));
	return o;
fail:
	json_decref(o);
	return NULL;
}

static int
add_counters(json_t *o, const struct store_check *c)
{
	json_t *cnt, *f, *e;
	int i;

	cnt = json_object();
	SET(o, "counters", cnt);
	SET(cnt, "probes", json_integer((json_int_t)c->probes));
	f = json_object();
	SET(cnt, "failures", f);
	for (i = REASON_NONE + 1; i < REASON__COUNT; i++)
		SET(f, reason_name(i),
		    json_integer((json_int_t)c->failures[i]));
	e = json_object();
	SET(cnt, "ends", e);
	for (i = END_NONE + 1; i < END__COUNT; i++)
		SET(e, end_name(i), json_integer((json_int_t)c->ends[i]));
	return 0;
fail:
	return -1;
}

/* "last", "counters" and, when asked, "history" (newest first). */
static int
add_check(json_t *o, const struct store_capsule *cap,
    const struct store_check *c, int history)
{
	struct probe_result r; /* a view: never cleared */
	json_t *h;
	size_t i;

	SET(o, "last",
	    c->last != NULL ? api_result(c->last, cap->name) : json_null());
	if (add_counters(o, c) != 0)
		return -1;
	if (!history)
		return 0;
	h = json_array();
	SET(o, "history", h);
	for (i = 0; store_history_get(c, i, &r) == 0; i++)
		if (json_array_append_new(h, api_result(&r, cap->name)) != 0)
			return -1;
	return 0;
fail:
	return -1;
}

static json_t *
capsule_json(const struct store_capsule *cap, int history)
{
	json_t *o, *ep;

	if ((o = json_object()) == NULL)
		return NULL;
	SET(o, "name", jstr(cap->name));
	SET(o, "url", jstr(cap->url));
	if (add_check(o, cap, &cap->check[CHECK_PAGE], history) != 0)
		goto fail;
	if (!cap->has_error_page)
		SET(o, "error_page", json_null());
	else {
		ep = json_object();
		SET(o, "error_page", ep);
		if (add_check(
		        ep, cap, &cap->check[CHECK_ERROR_PAGE], history) != 0)
			goto fail;
	}
	return o;
fail:
	json_decref(o);
	return NULL;
}

static int
dump_to_buf(const char *p, size_t n, void *b)
{
	buf_add(b, p, n);
	return 0;
}

/*
 * The capsules one at a time into the text, so that only one capsule's
 * tree exists at once: a tree of all of them is ten times the text (about
 * 100 MB at 10,000 capsules) and leaves the heap that big afterwards.
 * The output is what json_dumps of the whole tree would print.
 */
char *
api_capsules(struct store *s)
{
	struct buf b;
	json_t *o;
	size_t i, n;
	int rv = 0;

	buf_init(&b);
	buf_adds(&b, "{\"capsules\":[");
	store_rdlock(s);
	n = store_count(s);
	for (i = 0; i < n && rv == 0; i++) {
		if ((o = capsule_json(store_at(s, i), 0)) == NULL) {
			rv = -1;
			break;
		}
		if (i > 0)
			buf_addc(&b, ',');
		rv = json_dump_callback(o, dump_to_buf, &b, API_DUMP_FLAGS);
		json_decref(o);
	}
	store_unlock(s);
	buf_adds(&b, "]}");
	if (rv != 0) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b, NULL);
}

char *
api_capsule(struct store *s, const char *name)
{
	const struct store_capsule *cap;
	json_t *o = NULL;
	char *text = NULL;

	store_rdlock(s);
	if ((cap = store_find(s, name)) != NULL &&
	    (o = capsule_json(cap, 1)) != NULL)
		text = json_dumps(o, API_DUMP_FLAGS);
	store_unlock(s);
	json_decref(o);
	return text;
}

char *
api_seq(struct store *s, const char *name, enum seq_kind k, int full)
{
	const struct store_capsule *cap;
	json_t *o = NULL;
	char *text = NULL;

	store_rdlock(s);
	if ((cap = store_find(s, name)) != NULL && cap->seq[k] != NULL &&
	    (o = seq_ops(k)->api(cap->seq[k], full)) != NULL) {
		json_object_set_new(o, "capsule", json_string(cap->name));
		text = json_dumps(o, API_DUMP_FLAGS);
	}
	store_unlock(s);
	json_decref(o);
	return text;
}
