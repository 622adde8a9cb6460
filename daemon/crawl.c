/*
 * The crawl (crawl.h). The first request is robots.txt; then the pages,
 * breadth first: the URLs seen are an array in the order found (the
 * queue is its tail past the next to fetch) with an open-addressed hash
 * table of their indexes, and a URL is added only while fewer than
 * `crawl` are known, so the crawl fetches at most that many pages and
 * holds at most that many URLs: a capsule of endless generated links is
 * cut there, and the outcome says "truncated". Links are read from a
 * text/gemini body as it comes (gemtext.h), a line at a time: the body
 * itself is never kept. A page's request expects 1x, 2x, 3x or 6x and
 * close_notify (as the capsule's require-close-notify says), so the
 * probe's verdict is the page's: a 4x or 5x is a broken link, an end
 * without close_notify, a timeout or max-body a failure.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "conf.h"
#include "crawl.h"
#include "gemtext.h"
#include "hash.h"
#include "metrics.h"
#include "page.h"
#include "probe.h"
#include "robots.h"
#include "store.h"
#include "url.h"
#include "xmalloc.h"

/* Room for a resolved reference before url_parse bounds it. */
#define RESOLVED_MAX 4096

struct page {
	size_t url;    /* index in urls */
	long referrer; /* index in urls, -1 for the start */
	int status;
	char *meta;
	char *message;
	enum end end;
	enum reason reason;
	int success;
	int64_t body_bytes;
	double duration;
};

struct crawl {
	const struct conf *conf;
	const struct capsule_conf *cap;
	unsigned limit;
	double delay;
	struct probe_req req;
	struct url cur; /* the URL being fetched */
	struct url robots_url;
	int robots_done;
	char *robots_buf;
	size_t robots_len;
	struct robots *robots;
	int robots_found;

	char **urls;
	long *referrer;
	size_t nurls, next; /* urls[next..nurls) wait */
	size_t *table;      /* index + 1, 0: empty */
	size_t tcap;        /* a power of two, over twice nurls */

	struct page *pages;
	size_t npages;
	long cur_index;
	int body_started;
	int parse; /* the body is text/gemini */
	struct gemtext gt;

	size_t external, excluded, requests;
	int truncated;
	double started, started_wall;
};

/* ---- the URLs seen ------------------------------------------------------ */

static size_t
slot_of(const struct crawl *c, const char *url)
{
	size_t i = (size_t)hash_bytes(HASH_INIT, url, strlen(url));

	for (i &= c->tcap - 1; c->table[i] != 0; i = (i + 1) & (c->tcap - 1))
		if (strcmp(c->urls[c->table[i] - 1], url) == 0)
			break;
	return i;
}

static void
table_grow(struct crawl *c)
{
	size_t *old = c->table, oldcap = c->tcap, i;

	c->tcap = c->tcap ? c->tcap * 2 : 64;
	c->table = xcalloc(c->tcap, sizeof *c->table);
	for (i = 0; i < oldcap; i++)
		if (old[i] != 0)
			c->table[slot_of(c, c->urls[old[i] - 1])] = old[i];
	free(old);
}

/* Add url (first seen on the page of index referrer) unless known. */
static void
crawl_add(struct crawl *c, const char *url, long referrer)
{
	size_t i;

	if (2 * (c->nurls + 1) > c->tcap)
		table_grow(c);
	i = slot_of(c, url);
	if (c->table[i] != 0)
		return;
	if (c->nurls >= c->limit) {
		c->truncated = 1;
		return;
	}
	c->urls = xreallocarray(c->urls, c->nurls + 1, sizeof *c->urls);
	c->referrer =
	    xreallocarray(c->referrer, c->nurls + 1, sizeof *c->referrer);
	c->urls[c->nurls] = xstrdup(url);
	c->referrer[c->nurls] = referrer;
	c->table[i] = ++c->nurls;
}

/* A link (or a redirect's target) found on the page being fetched. */
static void
crawl_link(void *arg, const char *ref, size_t len)
{
	struct crawl *c = arg;
	char out[RESOLVED_MAX];
	const char *err;
	struct url u;
	int rv;

	rv = url_resolve(&c->cur, ref, len, out, sizeof out);
	if (rv == URL_RESOLVE_OTHER) {
		c->external++;
		return;
	}
	if (rv != URL_RESOLVE_OK || url_parse(out, strlen(out), &u, &err) == -1)
		return;
	if (strcmp(u.host, c->cap->url.host) != 0 || u.port != c->cap->url.port)
		c->external++;
	else if (!robots_allowed(c->robots, u.path))
		c->excluded++;
	else
		crawl_add(c, u.text, c->cur_index);
	url_free(&u);
}

/* A piece of the body being read (engine thread). */
static void
crawl_body(
    void *arg, const struct probe_result *res, const char *data, size_t n)
{
	struct crawl *c = arg;
	const char *m = res->meta != NULL ? res->meta : "";
	size_t take;

	if (!c->robots_done) {
		take = ROBOTS_SIZE_MAX - c->robots_len;
		if (take > n)
			take = n;
		if (take == 0)
			return;
		c->robots_buf =
		    xreallocarray(c->robots_buf, c->robots_len + take + 1, 1);
		memcpy(c->robots_buf + c->robots_len, data, take);
		c->robots_len += take;
		return;
	}
	if (!c->body_started) {
		c->body_started = 1;
		/* text/gemini, any parameters after ";". */
		c->parse = res->status == 20 &&
		           strncasecmp(m, "text/gemini", 11) == 0 &&
		           (m[11] == '\0' || m[11] == ';' || m[11] == ' ');
		gemtext_init(&c->gt);
	}
	if (c->parse)
		gemtext_feed(&c->gt, data, n, crawl_link, c);
}

/* ---- the run ------------------------------------------------------------ */

static double
crawl_interval(const struct capsule_conf *cap)
{
	return cap->crawl > 0 ? cap->crawl_interval : 0;
}

static void *
crawl_begin(const struct conf *conf, const struct capsule_conf *cap)
{
	struct crawl *c;
	const char *err;
	char *text;

	c = xcalloc(1, sizeof *c);
	c->conf = conf;
	c->cap = cap;
	c->limit = cap->crawl > 0 ? cap->crawl : 1;
	c->delay = cap->crawl_delay;
	c->cur_index = -1;
	c->started = clock_mono();
	c->started_wall = clock_wall();
	xasprintf(&text, "gemini://%s%s%s:%d/robots.txt",
	    strchr(cap->url.host, ':') != NULL ? "[" : "", cap->url.host,
	    strchr(cap->url.host, ':') != NULL ? "]" : "", cap->url.port);
	if (url_parse(text, strlen(text), &c->robots_url, &err) == -1)
		c->robots_done = 1; /* cannot be: the host parsed before */
	free(text);
	/* The capsule's own URL: the page check asks it anyway. */
	crawl_add(c, cap->url.text, -1);
	return c;
}

/* Fill c->req for u. */
static void
crawl_req(struct crawl *c, const struct url *u)
{
	probe_req_for(c->conf, c->cap, CHECK_PAGE, &c->req);
	c->req.url = u;
	c->req.expect_body = NULL;
	(void)status_spec_parse("1x,2x,3x,6x", 11, &c->req.expect_status, NULL);
	c->req.body_fn = crawl_body;
	c->req.body_arg = c;
	c->body_started = 0;
	c->parse = 0;
	c->requests++;
}

/* The page being fetched has its result. */
static void
crawl_record(struct crawl *c, struct probe_result *res)
{
	struct page *p;

	if (c->parse)
		gemtext_end(&c->gt, crawl_link, c);
	/* A redirect on the same capsule is followed as a link. */
	if (res->status / 10 == 3 && res->meta != NULL)
		crawl_link(c, res->meta, strlen(res->meta));
	c->pages = xreallocarray(c->pages, c->npages + 1, sizeof *c->pages);
	p = &c->pages[c->npages++];
	p->url = (size_t)c->cur_index;
	p->referrer = c->referrer[c->cur_index];
	p->status = res->status;
	p->meta = res->meta;
	res->meta = NULL;
	p->message = res->message;
	res->message = NULL;
	p->end = res->end;
	p->reason = res->reason;
	p->success = res->success;
	p->body_bytes = res->body_bytes;
	p->duration = res->total;
}

static const struct probe_req *
crawl_next(void *run, struct probe_result *prev, double *pause)
{
	struct crawl *c = run;
	const char *err;

	*pause = c->requests > 0 ? c->delay : 0;
	if (!c->robots_done) {
		if (prev == NULL) {
			crawl_req(c, &c->robots_url);
			return &c->req;
		}
		c->robots_done = 1;
		if (prev->status == 20) {
			c->robots = robots_parse(
			    c->robots_buf != NULL ? c->robots_buf : "",
			    c->robots_len);
			c->robots_found = 1;
		}
		free(c->robots_buf);
		c->robots_buf = NULL;
	} else if (prev != NULL)
		crawl_record(c, prev);
	url_free(&c->cur);
	while (c->next < c->nurls) {
		c->cur_index = (long)c->next++;
		if (url_parse(c->urls[c->cur_index],
		        strlen(c->urls[c->cur_index]), &c->cur, &err) == 0) {
			crawl_req(c, &c->cur);
			return &c->req;
		}
	}
	return NULL;
}

static void
crawl_free(struct crawl *c)
{
	size_t i;

	for (i = 0; i < c->nurls; i++)
		free(c->urls[i]);
	for (i = 0; i < c->npages; i++) {
		free(c->pages[i].meta);
		free(c->pages[i].message);
	}
	free(c->urls);
	free(c->referrer);
	free(c->table);
	free(c->pages);
	free(c->robots_buf);
	robots_free(c->robots);
	url_free(&c->cur);
	url_free(&c->robots_url);
	free(c);
}

static void
crawl_abandon(void *run)
{
	crawl_free(run);
}

static json_t *
page_json(const struct crawl *c, const struct page *p)
{
	json_t *o;

	o = json_object();
	json_object_set_new(o, "url", json_string(c->urls[p->url]));
	json_object_set_new(o, "referrer",
	    p->referrer >= 0 ? json_string(c->urls[p->referrer]) : json_null());
	json_object_set_new(o, "status",
	    p->status >= 0 ? json_integer(p->status) : json_null());
	json_object_set_new(
	    o, "meta", p->meta != NULL ? json_string(p->meta) : json_null());
	json_object_set_new(o, "end",
	    end_name(p->end) != NULL ? json_string(end_name(p->end))
	                             : json_null());
	json_object_set_new(o, "success", json_boolean(p->success));
	json_object_set_new(o, "reason",
	    reason_name(p->reason) != NULL ? json_string(reason_name(p->reason))
	                                   : json_null());
	json_object_set_new(o, "message",
	    p->message != NULL ? json_string(p->message) : json_null());
	json_object_set_new(o, "body_bytes",
	    p->body_bytes >= 0 ? json_integer(p->body_bytes) : json_null());
	json_object_set_new(o, "duration",
	    p->duration >= 0 ? json_real(p->duration) : json_null());
	return o;
}

static json_t *
crawl_end(void *run)
{
	struct crawl *c = run;
	json_t *o, *fails, *all, *ends;
	size_t i, nends[END__COUNT] = {0}, broken = 0, nocn = 0;
	const struct page *p;
	char when[32];
	enum end e;

	fails = json_array();
	all = json_array();
	for (i = 0; i < c->npages; i++) {
		p = &c->pages[i];
		nends[p->end]++;
		if (p->status / 10 == 4 || p->status / 10 == 5)
			broken++;
		if (p->reason == REASON_CLOSE_NOTIFY)
			nocn++;
		if (!p->success)
			json_array_append_new(fails, page_json(c, p));
		json_array_append_new(all, page_json(c, p));
	}
	ends = json_object();
	for (e = 0; e < END__COUNT; e++)
		json_object_set_new(ends,
		    end_name(e) != NULL ? end_name(e) : "none",
		    json_integer((json_int_t)nends[e]));
	format_rfc3339((time_t)c->started_wall, when);
	o = json_object();
	json_object_set_new(o, "url", json_string(c->cap->url.text));
	json_object_set_new(o, "time", json_string(when));
	json_object_set_new(o, "timestamp", json_real(clock_wall()));
	json_object_set_new(
	    o, "duration", json_real(clock_mono() - c->started));
	json_object_set_new(o, "limit", json_integer(c->limit));
	json_object_set_new(o, "pages", json_integer((json_int_t)c->npages));
	json_object_set_new(
	    o, "requests", json_integer((json_int_t)c->requests));
	json_object_set_new(o, "truncated", json_boolean(c->truncated));
	json_object_set_new(
	    o, "external_links", json_integer((json_int_t)c->external));
	json_object_set_new(o, "robots_txt", json_boolean(c->robots_found));
	json_object_set_new(
	    o, "robots_excluded", json_integer((json_int_t)c->excluded));
	json_object_set_new(
	    o, "failed", json_integer((json_int_t)json_array_size(fails)));
	json_object_set_new(
	    o, "broken_links", json_integer((json_int_t)broken));
	json_object_set_new(
	    o, "without_close_notify", json_integer((json_int_t)nocn));
	json_object_set_new(o, "ends", ends);
	json_object_set_new(o, "failures", fails);
	json_object_set_new(o, "results", all);
	crawl_free(c);
	return o;
}

/* ---- outputs ------------------------------------------------------------ */

static json_int_t
num(const json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static json_t *
crawl_api(const json_t *outcome, int full)
{
	json_t *o = json_deep_copy(outcome);

	if (o != NULL && !full)
		json_object_del(o, "results");
	return o;
}

static void
crawl_page_line(struct buf *b, const json_t *o)
{
	json_int_t pages = num(o, "pages"), broken = num(o, "broken_links"),
	           nocn = num(o, "without_close_notify"),
	           failed = num(o, "failed");

	buf_printf(b,
	    "%lld page%s, %lld broken link%s, %lld without close_notify",
	    (long long)pages, pages == 1 ? "" : "s", (long long)broken,
	    broken == 1 ? "" : "s", (long long)nocn);
	if (failed > broken + nocn)
		buf_printf(b, ", %lld other failure%s",
		    (long long)(failed - broken - nocn),
		    failed - broken - nocn == 1 ? "" : "s");
	if (json_is_true(json_object_get(o, "truncated")))
		buf_printf(b, " (stopped at %lld)", (long long)num(o, "limit"));
}

static const char *
str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL ? s : "";
}

/* Why a failing page failed, in a few words. */
static void
page_why(struct buf *b, const json_t *p, int html)
{
	json_int_t status = num(p, "status");
	const char *reason = str(p, "reason"), *msg = str(p, "message");

	if (strcmp(reason, "status") == 0 &&
	    json_is_integer(json_object_get(p, "status")))
		buf_printf(b, "status %lld ", (long long)status);
	else
		buf_printf(b, "%s ", reason[0] ? reason : "failed");
	if (msg[0] != '\0') {
		buf_adds(b, "(");
		if (html)
			html_escape(b, msg);
		else
			buf_adds(b, msg);
		buf_adds(b, ")");
	}
}

static void
crawl_page(struct buf *b, const json_t *o)
{
	const json_t *fails = json_object_get(o, "failures"), *p;
	size_t i;

	buf_adds(b, "<p>");
	crawl_page_line(b, o);
	buf_printf(b,
	    "; %lld external link%s counted, %lld excluded by "
	    "robots.txt; crawled ",
	    (long long)num(o, "external_links"),
	    num(o, "external_links") == 1 ? "" : "s",
	    (long long)num(o, "robots_excluded"));
	html_escape(b, str(o, "time"));
	buf_printf(b, " in %.1f s.</p>\n",
	    json_number_value(json_object_get(o, "duration")));
	if (json_array_size(fails) == 0) {
		buf_adds(b, "<p>No page failed.</p>\n");
		return;
	}
	buf_adds(b, "<table>\n<thead><tr><th scope=\"col\">Page</th>"
	            "<th scope=\"col\">Why</th>"
	            "<th scope=\"col\">Linked from</th></tr></thead>\n"
	            "<tbody>\n");
	json_array_foreach(fails, i, p)
	{
		buf_adds(b, "<tr><td>");
		html_escape(b, str(p, "url"));
		buf_adds(b, "</td><td>");
		page_why(b, p, 1);
		buf_adds(b, "</td><td>");
		html_escape(b, json_is_string(json_object_get(p, "referrer"))
		                   ? str(p, "referrer")
		                   : "(the capsule's URL)");
		buf_adds(b, "</td></tr>\n");
	}
	buf_adds(b, "</tbody>\n</table>\n");
}

static void
family(struct buf *b, const char *name, const char *help)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

static void
crawl_metrics(struct buf *b, const struct store *s)
{
	static const char *const names[] = {"gemini_crawl_pages",
	    "gemini_crawl_broken_links", "gemini_crawl_duration_seconds",
	    "gemini_crawl_timestamp_seconds", "gemini_crawl_truncated"};
	static const char *const helps[] = {
	    "Pages fetched by the last crawl, by how their response ended "
	    "(none: no body reached).",
	    "Pages of the last crawl that answered 4x or 5x.",
	    "How long the last crawl took.",
	    "When the last crawl ended (Unix time).",
	    "1 when the last crawl reached its crawl=N limit before running "
	    "out of links."};
	const struct store_capsule *cap;
	const json_t *o, *v;
	const char *key;
	size_t i, f, n = store_count(s);
	int any = 0;

	for (i = 0; i < n && !any; i++)
		any = store_at(s, i)->seq[SEQ_CRAWL] != NULL;
	if (!any)
		return;
	for (f = 0; f < sizeof names / sizeof names[0]; f++) {
		family(b, names[f], helps[f]);
		for (i = 0; i < n; i++) {
			cap = store_at(s, i);
			if ((o = cap->seq[SEQ_CRAWL]) == NULL)
				continue;
			if (f == 0) {
				json_object_foreach(
				    (json_t *)json_object_get(o, "ends"), key,
				    v)
				{
					buf_printf(
					    b, "%s{capsule=\"", names[f]);
					metrics_escape_label(b, cap->name);
					buf_adds(b, "\",end=\"");
					metrics_escape_label(b, key);
					buf_printf(b, "\"} %lld\n",
					    (long long)json_integer_value(v));
				}
				continue;
			}
			buf_printf(b, "%s{capsule=\"", names[f]);
			metrics_escape_label(b, cap->name);
			buf_adds(b, "\"} ");
			switch (f) {
			case 1:
				buf_printf(b, "%lld\n",
				    (long long)num(o, "broken_links"));
				break;
			case 2:
				buf_printf(b, "%.6f\n",
				    json_number_value(
				        json_object_get(o, "duration")));
				break;
			case 3:
				buf_printf(b, "%.3f\n", seq_outcome_time(o));
				break;
			default:
				buf_printf(b, "%d\n",
				    json_is_true(
				        json_object_get(o, "truncated")));
			}
		}
	}
}

void
crawl_report(struct buf *b, const json_t *o)
{
	const json_t *fails = json_object_get(o, "failures"), *p;
	size_t i;

	buf_printf(b, "crawl of %s: ", str(o, "url"));
	crawl_page_line(b, o);
	buf_printf(b,
	    "\n%lld external link%s counted, %lld excluded by "
	    "robots.txt%s, %.1f s\n",
	    (long long)num(o, "external_links"),
	    num(o, "external_links") == 1 ? "" : "s",
	    (long long)num(o, "robots_excluded"),
	    json_is_true(json_object_get(o, "robots_txt")) ? ""
	                                                   : " (none found)",
	    json_number_value(json_object_get(o, "duration")));
	json_array_foreach(fails, i, p)
	{
		buf_printf(b, "FAIL %s: ", str(p, "url"));
		page_why(b, p, 0);
		if (json_is_string(json_object_get(p, "referrer")))
			buf_printf(
			    b, "\n     linked from %s", str(p, "referrer"));
		buf_adds(b, "\n");
	}
}

const struct seq_ops crawl_ops = {
    .kind = SEQ_CRAWL,
    .interval = crawl_interval,
    .begin = crawl_begin,
    .next = crawl_next,
    .end = crawl_end,
    .abandon = crawl_abandon,
    .api = crawl_api,
    .page_line = crawl_page_line,
    .page = crawl_page,
    .metrics = crawl_metrics,
};
