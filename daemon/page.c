/*
 * The HTML status page at "/": a self-contained HTML5 document (inline
 * CSS, no JavaScript, refreshes itself every 30 seconds) with one table row
 * per capsule and check, failing capsules first. Every string that came
 * from a server or the configuration goes through html_escape, which also
 * repairs ill-formed UTF-8 and control characters, so a hostile META or
 * certificate subject can neither inject markup nor break the document.
 * The whole render runs under the store's read lock and allocates nothing
 * but the output buffer.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "clock.h"
#include "lag.h"
#include "page.h"
#include "seq.h"
#include "result.h"
#include "store.h"
#include "utf8.h"

#define REPLACEMENT "\xef\xbf\xbd" /* U+FFFD */
#define DASH "\xe2\x80\x94"        /* em dash: "nothing known" */
#define EXPIRY_WARN_DAYS 21

/* Sparkline geometry (CSS pixels) and the most results it draws. */
#define SPARK_W 120
#define SPARK_H 24
#define SPARK_PAD 2
#define SPARK_MAX 120

/* Capsule groups in page order. */
enum group { GROUP_DOWN, GROUP_PENDING, GROUP_UP, GROUP__COUNT };

static const char css[] =
    ":root{color-scheme:light dark;--fg:#1b1b1b;--bg:#fff;--mute:#666;"
    "--line:#ddd;--head:#f3f3f3;--up:#1a7f37;--down:#c62828;"
    "--pending:#8a6d00;--warn:#a85400}\n"
    "@media (prefers-color-scheme:dark){:root{--fg:#e4e4e4;--bg:#161616;"
    "--mute:#9a9a9a;--line:#333;--head:#222;--up:#56c46e;--down:#ff6b6b;"
    "--pending:#e0b400;--warn:#ffa14a}}\n"
    "body{margin:1rem;font:14px/1.4 system-ui,sans-serif;color:var(--fg);"
    "background:var(--bg)}\n"
    "h1{font-size:1.3rem;margin:0 0 .3rem}p{margin:.2rem 0}\n"
    "a{color:inherit}.mute,.url,.chk,caption{color:var(--mute)}\n"
    ".wrap{overflow-x:auto;margin-top:.8rem}\n"
    "table{border-collapse:collapse;min-width:100%}\n"
    "caption{text-align:left;padding:.2rem 0}\n"
    "th,td{padding:.3rem .5rem;border-bottom:1px solid var(--line);"
    "text-align:left;vertical-align:top;white-space:nowrap}\n"
    "thead th{background:var(--head)}\n"
    ".url,.chk,.why{font-size:.85em}\n"
    ".why,.meta{display:inline-block;max-width:24rem;overflow:hidden;"
    "text-overflow:ellipsis;vertical-align:top}\n"
    ".num{text-align:right}\n"
    "tr.down{border-left:4px solid var(--down)}"
    "tr.pending{border-left:4px solid var(--pending)}"
    "tr.up{border-left:4px solid var(--up)}\n"
    ".s-down,.bad{color:var(--down);font-weight:bold}"
    ".s-pending{color:var(--pending);font-weight:bold}"
    ".s-up{color:var(--up);font-weight:bold}.warn{color:var(--warn);"
    "font-weight:bold}\n"
    "svg{display:block}.spark polyline{stroke:currentColor}"
    ".spark .fail{fill:var(--down)}\n";

/*
 * Escape s[0..len) for HTML text and attribute values, repairing it on the
 * way: ill-formed UTF-8 becomes U+FFFD (one per byte, as utf8_sanitize
 * does), and so do control characters (C0 but tab, DEL, C1), which HTML
 * forbids. Runs of harmless bytes are copied at once.
 */
static void
escape(struct buf *b, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	const char *rep;
	size_t i = 0, start = 0, n;

	while (i < len) {
		n = 1;
		rep = NULL;
		switch (p[i]) {
		case '&':
			rep = "&amp;";
			break;
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = "&gt;";
			break;
		case '"':
			rep = "&quot;";
			break;
		case '\'':
			rep = "&#39;";
			break;
		case '\t':
			break;
		default:
			if ((n = utf8_control_len(s + i, len - i)) != 0)
				rep = REPLACEMENT;
			else if (p[i] < 0x80)
				n = 1;
			else if ((n = utf8_char_len(s + i, len - i)) == 0) {
				n = 1;
				rep = REPLACEMENT;
			}
			break;
		}
		if (rep == NULL) {
			i += n;
			continue;
		}
		buf_add(b, s + start, i - start);
		buf_adds(b, rep);
		i += n;
		start = i;
	}
	buf_add(b, s + start, i - start);
}

void
html_escape(struct buf *b, const char *s)
{
	if (s != NULL)
		escape(b, s, strlen(s));
}

/* Percent-encode everything but RFC 3986 unreserved characters, so the
 * result is safe in a path segment and in an HTML attribute as it is. */
static void
url_escape(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned char c;
	char e[3];

	for (; *s != '\0'; s++) {
		c = (unsigned char)*s;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~') {
			buf_addc(b, (char)c);
			continue;
		}
		e[0] = '%';
		e[1] = hex[c >> 4];
		e[2] = hex[c & 0xf];
		buf_add(b, e, sizeof e);
	}
}

static int
check_used(const struct store_capsule *cap, enum check k)
{
	return k == CHECK_PAGE || cap->has_error_page;
}

/* A capsule is down when any of its checks failed last, pending when one
 * has not finished a probe yet, up otherwise. */
static enum group
capsule_group(const struct store_capsule *cap)
{
	const struct store_check *c;
	enum group g = GROUP_UP;
	int k;

	for (k = 0; k < CHECK__COUNT; k++) {
		if (!check_used(cap, k))
			continue;
		c = &cap->check[k];
		if (c->last == NULL)
			g = GROUP_PENDING;
		else if (!c->last->success)
			return GROUP_DOWN;
	}
	return g;
}

/* Whole days until t, rounded down: -1 for a certificate that expired
 * within the last day, 0 for one that expires within the next. */
static long long
days_until(time_t t, double now)
{
	long long secs, days;

	secs = (long long)t - (long long)now;
	days = secs / 86400;
	if (secs % 86400 < 0)
		days--;
	return days;
}

static void
add_age(struct buf *b, double age)
{
	long long s;

	s = age > 0 ? (long long)age : 0;
	if (s < 60)
		buf_printf(b, "%llds ago", s);
	else if (s < 3600)
		buf_printf(b, "%lldm ago", s / 60);
	else if (s < 86400)
		buf_printf(b, "%lldh ago", s / 3600);
	else
		buf_printf(b, "%lldd ago", s / 86400);
}

static void
cell_capsule(struct buf *b, const struct store_capsule *cap, enum check k,
    const struct probe_result *r)
{
	const char *url;

	buf_adds(b, "<th scope=\"row\">");
	html_escape(b, cap->name);
	if (k == CHECK_ERROR_PAGE)
		buf_adds(b, " <span class=\"chk\">error page</span>");
	buf_adds(b, " <a class=\"mute\" href=\"/api/v1/capsules/");
	url_escape(b, cap->name);
	buf_adds(b, "\">JSON</a>");
	url = r != NULL && r->url != NULL ? r->url
	      : k == CHECK_PAGE           ? cap->url
	                                  : NULL;
	if (url != NULL) {
		buf_adds(b, "<br><span class=\"url\">");
		html_escape(b, url);
		buf_adds(b, "</span>");
	}
	buf_adds(b, "</th>");
}

static void
cell_state(struct buf *b, const struct probe_result *r)
{
	const char *reason;

	if (r == NULL) {
		buf_adds(b, "<td><span class=\"s-pending\">pending</span>"
		            "<br><span class=\"why\">no probe finished "
		            "yet</span></td>");
		return;
	}
	if (r->success) {
		buf_adds(b, "<td><span class=\"s-up\">up</span></td>");
		return;
	}
	reason = reason_name(r->reason);
	buf_adds(b, "<td><span class=\"s-down\">down</span>"
	            "<br><span class=\"why\"");
	if (r->message != NULL) {
		buf_adds(b, " title=\"");
		html_escape(b, r->message);
		buf_addc(b, '"');
	}
	buf_adds(b, ">");
	html_escape(b, reason != NULL ? reason : "unknown");
	if (r->stage != STAGE_NONE && stage_name(r->stage) != NULL) {
		buf_adds(b, " at ");
		html_escape(b, stage_name(r->stage));
	}
	if (r->message != NULL) {
		buf_adds(b, ": ");
		html_escape(b, r->message);
	}
	buf_adds(b, "</span></td>");
}

static void
cell_end(struct buf *b, const struct probe_result *r)
{
	enum end e;

	e = r != NULL && (unsigned)r->end < END__COUNT ? r->end : END_NONE;
	if (e == END_NONE || e == END_CLOSE_NOTIFY)
		buf_adds(b, "<td>");
	else
		buf_adds(b, "<td class=\"warn\">");
	buf_adds(b, e == END_NONE ? DASH : end_brief(e));
	buf_adds(b, "</td>");
}

static void
cell_status(struct buf *b, const struct probe_result *r)
{
	if (r == NULL || r->status < 0) {
		buf_adds(b, "<td>" DASH "</td>");
		return;
	}
	buf_printf(b, "<td>%d", r->status);
	if (r->meta != NULL && r->meta[0] != '\0') {
		buf_adds(b, " <span class=\"meta\" title=\"");
		html_escape(b, r->meta);
		buf_adds(b, "\">");
		html_escape(b, r->meta);
		buf_adds(b, "</span>");
	}
	buf_adds(b, "</td>");
}

static void
cell_tls(struct buf *b, const struct probe_result *r)
{
	if (r == NULL || r->tls_version == NULL) {
		buf_adds(b, "<td>" DASH "</td>");
		return;
	}
	buf_adds(b, "<td");
	if (r->tls_cipher != NULL) {
		buf_adds(b, " title=\"");
		html_escape(b, r->tls_cipher);
		buf_addc(b, '"');
	}
	buf_addc(b, '>');
	html_escape(b, r->tls_version);
	buf_adds(b, "</td>");
}

static void
cell_cert(struct buf *b, const struct probe_result *r, double now)
{
	const struct cert_facts *cf;
	long long days;
	char when[32];

	if (r == NULL || !r->cert.present) {
		buf_adds(b, "<td class=\"num\">" DASH "</td>");
		return;
	}
	cf = &r->cert;
	days = days_until(cf->not_after, now);
	format_rfc3339(cf->not_after, when);
	buf_printf(b, "<td class=\"num%s\" title=\"",
	    days < EXPIRY_WARN_DAYS ? (days < 0 ? " bad" : " warn") : "");
	if (cf->subject != NULL) {
		html_escape(b, cf->subject);
		buf_adds(b, ", ");
	}
	buf_printf(b, "not after %s\">%lld", when, days);
	if (days < 0)
		buf_adds(b, " expired");
	if (cf->tofu == TOFU_CHANGED || cf->tofu == TOFU_MISMATCH)
		buf_printf(b, "<br><span class=\"bad\">certificate %s</span>",
		    tofu_name(cf->tofu));
	buf_adds(b, "</td>");
}

static void
cell_age(struct buf *b, const struct probe_result *r, double now)
{
	char when[32];

	if (r == NULL) {
		buf_adds(b, "<td>" DASH "</td>");
		return;
	}
	format_rfc3339((time_t)r->time, when);
	buf_printf(b, "<td><time datetime=\"%s\" title=\"%s\">", when, when);
	add_age(b, now - r->time);
	buf_adds(b, "</time></td>");
}

static void
cell_uptime(struct buf *b, const struct store_check *c)
{
	struct probe_result h; /* a view: never cleared */
	size_t i, n, ok;
	unsigned long long permille;

	ok = n = 0;
	for (i = 0; store_history_get(c, i, &h) == 0; i++, n++)
		if (h.success)
			ok++;
	if (n == 0) {
		buf_adds(b, "<td class=\"num\">" DASH "</td>");
		return;
	}
	/* Rounded down, so 99.95% never shows as 100%. */
	permille = (unsigned long long)ok * 1000 / n;
	buf_printf(b,
	    "<td class=\"num\">%llu.%llu%% <span class=\"mute\">"
	    "(%zu/%zu)</span></td>",
	    permille / 10, permille % 10, ok, n);
}

/* Where the i-th newest of n results goes: oldest at the left, newest at
 * the right, its total duration scaled to max. */
static void
spark_point(const struct probe_result *h, size_t i, size_t n, double max,
    double *x, double *y)
{
	double t;

	*x = n > 1 ? SPARK_PAD + (double)(n - 1 - i) *
	                             (SPARK_W - 2 * SPARK_PAD) / (double)(n - 1)
	           : SPARK_W / 2.0;
	t = h->total > 0 ? h->total : 0;
	*y = SPARK_H - SPARK_PAD -
	     (max > 0 ? t / max * (SPARK_H - 2 * SPARK_PAD) : 0);
}

/* Total durations of the newest results scaled to the largest, as a line;
 * failures get a red dot, and the newest a dot of its own so a single
 * result still shows. */
static void
cell_spark(struct buf *b, const struct store_check *c)
{
	struct probe_result h; /* a view: never cleared */
	size_t i, n, nfail;
	double max, newest, x, y;

	n = nfail = 0;
	max = newest = 0;
	for (i = 0; i < SPARK_MAX && store_history_get(c, i, &h) == 0; i++) {
		n++;
		if (!h.success)
			nfail++;
		if (h.total > max)
			max = h.total;
		if (i == 0 && h.total > 0)
			newest = h.total * 1000;
	}
	if (n == 0) {
		buf_adds(b, "<td>" DASH "</td>");
		return;
	}
	buf_printf(b,
	    "<td><svg class=\"spark\" width=\"%d\" height=\"%d\" "
	    "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"latency of the "
	    "last %zu probe%s: newest %.0f ms, max %.0f ms, %zu failed\">"
	    "<title>latency: newest %.0f ms, max %.0f ms; %zu of %zu failed"
	    "</title><polyline fill=\"none\" stroke-width=\"1\" points=\"",
	    SPARK_W, SPARK_H, SPARK_W, SPARK_H, n, n == 1 ? "" : "s", newest,
	    max * 1000, nfail, newest, max * 1000, nfail, n);
	for (i = n; i-- > 0;) {
		store_history_get(c, i, &h);
		spark_point(&h, i, n, max, &x, &y);
		buf_printf(b, "%s%.1f,%.1f", i + 1 == n ? "" : " ", x, y);
	}
	buf_adds(b, "\"/>");
	for (i = n; i-- > 0;) {
		store_history_get(c, i, &h);
		if (h.success && i != 0)
			continue;
		spark_point(&h, i, n, max, &x, &y);
		buf_printf(b, "<circle%s cx=\"%.1f\" cy=\"%.1f\" r=\"%s\"/>",
		    h.success ? " fill=\"currentColor\"" : " class=\"fail\"", x,
		    y, h.success ? "1.5" : "2");
	}
	buf_adds(b, "</svg></td>");
}

static void
render_row(
    struct buf *b, const struct store_capsule *cap, enum check k, double now)
{
	const struct store_check *c = &cap->check[k];
	const struct probe_result *r = c->last;

	buf_printf(b, "<tr class=\"%s\">",
	    r == NULL    ? "pending"
	    : r->success ? "up"
	                 : "down");
	cell_capsule(b, cap, k, r);
	cell_state(b, r);
	cell_end(b, r);
	cell_status(b, r);
	cell_tls(b, r);
	cell_cert(b, r, now);
	cell_age(b, r, now);
	cell_uptime(b, c);
	cell_spark(b, c);
	buf_adds(b, "</tr>\n");
}

static void render_seqs(struct buf *, const struct store *);

void
page_render(struct buf *b, struct store *s, double now)
{
	const struct store_capsule *cap;
	struct lag lag;
	size_t i, n, count[GROUP__COUNT];
	int g, k;
	char gen[32];

	format_rfc3339((time_t)now, gen);
	store_rdlock(s);
	n = store_count(s);
	memset(count, 0, sizeof count);
	for (i = 0; i < n; i++)
		count[capsule_group(store_at(s, i))]++;

	buf_adds(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
	            "<meta charset=\"utf-8\">\n"
	            "<meta name=\"viewport\" content=\"width=device-width, "
	            "initial-scale=1\">\n"
	            "<meta http-equiv=\"refresh\" content=\"30\">\n");
	buf_printf(b, "<title>gemwatch: %zu down, %zu up</title>\n",
	    count[GROUP_DOWN], count[GROUP_UP]);
	buf_printf(b, "<style>\n%s</style>\n</head>\n<body>\n", css);
	buf_printf(b,
	    "<header>\n<h1>gemwatch</h1>\n"
	    "<p>%zu capsule%s: <span class=\"s-up\">%zu up</span>, "
	    "<span class=\"s-down\">%zu down</span>",
	    n, n == 1 ? "" : "s", count[GROUP_UP], count[GROUP_DOWN]);
	if (count[GROUP_PENDING] > 0)
		buf_printf(b, ", <span class=\"s-pending\">%zu pending</span>",
		    count[GROUP_PENDING]);
	buf_adds(b, "</p>\n");
	store_lag(s, &lag);
	/* Said while the latest late start is under ten minutes old. */
	if (lag.late > 0 && clock_mono() - lag.last_late < 600)
		buf_printf(b,
		    "<p class=\"s-down\">Falling behind: %llu "
		    "probes started more than a tenth of their interval late, "
		    "the latest by %.1f s, with %u of %u allowed in flight "
		    "(gemwatch_probe_lag_seconds; the log says what to "
		    "change).</p>\n",
		    (unsigned long long)lag.late, lag.last_late_by,
		    lag.in_flight, lag.concurrency);
	buf_printf(b,
	    "<p class=\"mute\">Generated "
	    "<time datetime=\"%s\">%s</time>; refreshes every 30 s.</p>\n"
	    "<p><a href=\"/metrics\">Prometheus metrics</a> \xc2\xb7 "
	    "<a href=\"/api/v1/capsules\">JSON API</a></p>\n</header>\n",
	    gen, gen);

	buf_adds(b, "<main>\n<div class=\"wrap\">\n<table>\n"
	            "<caption>Capsules and checks, failing first</caption>\n"
	            "<thead><tr><th scope=\"col\">Capsule</th>"
	            "<th scope=\"col\">State</th>"
	            "<th scope=\"col\">Response ended</th>"
	            "<th scope=\"col\">Status and META</th>"
	            "<th scope=\"col\">TLS</th>"
	            "<th scope=\"col\">Cert expires in (days)</th>"
	            "<th scope=\"col\">Last probe</th>"
	            "<th scope=\"col\">Uptime</th>"
	            "<th scope=\"col\">Latency</th></tr></thead>\n<tbody>\n");
	if (n == 0)
		buf_adds(b, "<tr><td colspan=\"9\">No capsules configured."
		            "</td></tr>\n");
	/* One pass per group keeps configuration order within a group. */
	for (g = 0; g < GROUP__COUNT; g++) {
		for (i = 0; i < n; i++) {
			cap = store_at(s, i);
			if (capsule_group(cap) != (enum group)g)
				continue;
			for (k = 0; k < CHECK__COUNT; k++)
				if (check_used(cap, k))
					render_row(b, cap, k, now);
		}
	}
	buf_adds(b, "</tbody>\n</table>\n</div>\n");
	render_seqs(b, s);
	buf_adds(b, "</main>\n</body>\n</html>\n");
	store_unlock(s);
}

/* Append s percent-encoded for a query value (then HTML-safe as is). */
static void
query_escape(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned char c;

	for (; *s != '\0'; s++) {
		c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~')
			buf_addc(b, (char)c);
		else
			buf_printf(b, "%%%c%c", hex[c >> 4], hex[c & 0xf]);
	}
}

/* Each kind of run's line per capsule that has an outcome (read lock). */
static void
render_seqs(struct buf *b, const struct store *s)
{
	const struct store_capsule *cap;
	const struct seq_ops *ops;
	size_t i, n = store_count(s);
	int k, any;

	for (k = 0; k < SEQ__COUNT; k++) {
		ops = seq_ops(k);
		for (i = 0, any = 0; i < n; i++) {
			cap = store_at(s, i);
			if (cap->seq[k] == NULL)
				continue;
			if (!any)
				buf_printf(b,
				    "<section>\n<h2>Last %s</h2>\n<ul>\n",
				    seq_name(k));
			any = 1;
			buf_adds(b, "<li>");
			html_escape(b, cap->name);
			buf_printf(b, ": <a href=\"/%s?capsule=", seq_name(k));
			query_escape(b, cap->name);
			buf_adds(b, "\">");
			ops->page_line(b, cap->seq[k]);
			buf_adds(b, "</a></li>\n");
		}
		if (any)
			buf_adds(b, "</ul>\n</section>\n");
	}
}

int
page_seq(struct buf *b, struct store *s, const char *name, enum seq_kind k)
{
	const struct store_capsule *cap;
	int rv = -1;

	store_rdlock(s);
	if ((cap = store_find(s, name)) != NULL && cap->seq[k] != NULL) {
		buf_adds(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
		            "<meta charset=\"utf-8\">\n"
		            "<meta name=\"viewport\" content=\"width=device-"
		            "width, initial-scale=1\">\n<title>gemwatch: ");
		buf_printf(b, "%s of ", seq_name(k));
		html_escape(b, cap->name);
		buf_printf(b,
		    "</title>\n<style>\n%s</style>\n</head>\n<body>\n"
		    "<header>\n<h1>",
		    css);
		buf_printf(b, "%s of ", seq_name(k));
		html_escape(b, cap->name);
		buf_adds(b, "</h1>\n<p><a href=\"/\">All capsules</a> \xc2\xb7 "
		            "<a href=\"/api/v1/capsules/");
		query_escape(b, cap->name);
		buf_printf(b, "/%s?full=1\">JSON</a></p>\n</header>\n<main>\n",
		    seq_name(k));
		seq_ops(k)->page(b, cap->seq[k]);
		buf_adds(b, "</main>\n</body>\n</html>\n");
		rv = 0;
	}
	store_unlock(s);
	return rv;
}
