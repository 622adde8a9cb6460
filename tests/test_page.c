/*
 * Unit tests for the HTML status page: html_escape on each special
 * character and on broken UTF-8, then a render of a store holding an up
 * capsule, a down one with hostile server strings and a hostile name, a
 * pending one and one with an error page, checked for escaping, row order,
 * the words and numbers a user reads, the sparkline and the links.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "conf.h"
#include "fixture.h"
#include "page.h"
#include "result.h"
#include "store.h"
#include "utf8.h"
#include "xmalloc.h"

#include "tap.h"

#define NOW 1795881600.0 /* 2026-11-28T16:00:00Z */
#define DAY 86400

#define HOSTILE_META "<script>alert(\"x\")</script>&'"
#define ESCAPED_META                                                           \
	"&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"
#define HOSTILE_SUBJECT "CN=<img src=x onerror=alert(1)>"
#define ESCAPED_SUBJECT "CN=&lt;img src=x onerror=alert(1)&gt;"
#define HOSTILE_NAME "<b>\"&"
#define ESCAPED_NAME "&lt;b&gt;&quot;&amp;"
#define FFFD "\xef\xbf\xbd"

static char *
escaped(const char *s)
{
	struct buf b;

	buf_init(&b);
	html_escape(&b, s);
	return buf_steal(&b, NULL);
}

static void
is_escaped(const char *in, const char *want, const char *what)
{
	char *got;

	got = escaped(in);
	is_str(got, want, "html_escape: %s", what);
	free(got);
}

/* A copy of the row (<tr ...>...</tr>) whose header cell starts with
 * head, or NULL. */
static char *
row_of(const char *doc, const char *head, const char **at)
{
	struct buf b;
	const char *p, *end;
	char *key;

	buf_init(&b);
	buf_printf(&b, "<th scope=\"row\">%s", head);
	key = buf_steal(&b, NULL);
	p = strstr(doc, key);
	free(key);
	if (p == NULL)
		return NULL;
	while (p > doc && strncmp(p, "<tr", 3) != 0)
		p--;
	if ((end = strstr(p, "</tr>")) == NULL)
		return NULL;
	if (at != NULL)
		*at = p;
	return xstrndup(p, (size_t)(end - p) + 5);
}

static void
test_escape(void)
{
	is_escaped("&", "&amp;", "ampersand");
	is_escaped("<", "&lt;", "less-than");
	is_escaped(">", "&gt;", "greater-than");
	is_escaped("\"", "&quot;", "double quote");
	is_escaped("'", "&#39;", "single quote");
	is_escaped("a<b>&\"c'd", "a&lt;b&gt;&amp;&quot;c&#39;d", "mixed");
	is_escaped("", "", "empty string");
	is_escaped("plain text/gemini; lang=en", "plain text/gemini; lang=en",
	    "nothing to escape");
	is_escaped("caf\xc3\xa9 \xe2\x86\x92 \xf0\x9f\x98\x80",
	    "caf\xc3\xa9 \xe2\x86\x92 \xf0\x9f\x98\x80", "valid UTF-8 kept");
	is_escaped("a\tb", "a\tb", "tab kept");
	is_escaped("a\x01"
	           "b\nc\x7f",
	    "a" FFFD "b" FFFD "c" FFFD, "C0 controls and DEL replaced");
	is_escaped("x\xc2\x85y", "x" FFFD "y", "C1 control replaced");
	is_escaped("a\xff"
	           "b",
	    "a" FFFD "b", "invalid byte replaced");
	is_escaped("\xc0\xaf", FFFD FFFD, "overlong form replaced");
	is_escaped("\xed\xa0\x80", FFFD FFFD FFFD, "surrogate replaced");
	is_escaped("end\xe2\x82", "end" FFFD FFFD, "truncated sequence");
	is_escaped(
	    "\xe2\x82<", FFFD FFFD "&lt;", "escape after a truncated sequence");

	{
		struct buf b;

		buf_init(&b);
		buf_adds(&b, "x");
		html_escape(&b, NULL);
		is_str(b.data, "x", "html_escape(NULL) appends nothing");
		buf_free(&b);
	}
}

/* Whether s is well-formed UTF-8 with no markup character and no control
 * character but tab, outside of the entities escape() writes. */
static int
safe_text(const char *s)
{
	size_t i;

	if (!utf8_valid(s, strlen(s)))
		return 0;
	for (i = 0; s[i] != '\0'; i++) {
		if (strchr("<>\"'", s[i]) != NULL)
			return 0;
		if (((unsigned char)s[i] < 0x20 && s[i] != '\t') ||
		    s[i] == 0x7f)
			return 0;
		if ((unsigned char)s[i] == 0xc2 &&
		    (unsigned char)s[i + 1] >= 0x80 &&
		    (unsigned char)s[i + 1] < 0xa0)
			return 0;
		if (s[i] == '&' && strncmp(s + i, "&amp;", 5) != 0 &&
		    strncmp(s + i, "&lt;", 4) != 0 &&
		    strncmp(s + i, "&gt;", 4) != 0 &&
		    strncmp(s + i, "&quot;", 6) != 0 &&
		    strncmp(s + i, "&#39;", 5) != 0)
			return 0;
	}
	return 1;
}

/* Every string of one to three bytes from a spread of interesting bytes
 * comes out safe: well-formed, no markup, no controls. */
static void
test_escape_all(void)
{
	static const unsigned char v[] = {0x01, 0x09, 0x0a, 0x1f, ' ', '"', '&',
	    '\'', '<', '>', 'a', 0x7f, 0x80, 0x85, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2,
	    0xc3, 0xdf, 0xe0, 0xe2, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff};
	char in[4], *out;
	size_t a, b, c, n = sizeof v, bad = 0, tried = 0;

	for (a = 0; a < n; a++)
		for (b = 0; b <= n; b++)
			for (c = 0; c <= n; c++) {
				if (b == n && c != n)
					continue;
				in[0] = (char)v[a];
				in[1] = b < n ? (char)v[b] : '\0';
				in[2] = c < n ? (char)v[c] : '\0';
				in[3] = '\0';
				out = escaped(in);
				if (!safe_text(out))
					bad++;
				tried++;
				free(out);
			}
	ok(bad == 0 && tried > 20000,
	    "%zu of %zu short byte strings escape to unsafe text", bad, tried);
}

static void
put(struct store *s, const char *name, enum check check, double when,
    int success, double total, enum end end, int status, const char *meta)
{
	struct probe_result r;

	result_init(&r);
	r.check = check;
	r.time = when;
	r.success = success;
	r.total = total;
	r.end = end;
	r.status = status;
	r.meta = meta != NULL ? xstrdup(meta) : NULL;
	r.tls_version = "TLS1.3";
	r.tls_cipher = "TLS_AES_256_GCM_SHA384";
	if (!success)
		result_fail(&r, end_reason(end), STAGE_BODY,
		    "connection closed without close_notify");
	store_put(s, name, &r);
	result_clear(&r);
}

static void
test_render(void)
{
	struct capsule_conf caps[4];
	struct conf conf;
	struct probe_result r;
	struct store *s;
	struct buf b;
	char *doc, *alpha, *bravo, *charlie, *delta, *delta_err;
	const char *pa, *pb, *pc, *pd, *pe;

	memset(caps, 0, sizeof caps);
	caps[0].name = "alpha";
	caps[0].url.text = "gemini://alpha.example/";
	caps[1].name = HOSTILE_NAME;
	caps[1].url.text = "gemini://bravo.example/?<x>";
	caps[2].name = "charlie";
	caps[2].url.text = "gemini://charlie.example/";
	caps[3].name = "delta";
	caps[3].url.text = "gemini://delta.example/";
	caps[3].error_path = "/no-such-page";
	memset(&conf, 0, sizeof conf);
	conf.capsules = caps;
	conf.ncapsules = 4;
	conf.history = 10;
	conf.shard_k = conf.shard_n = 1;

	s = store_new();
	fixture_sync(s, &conf);

	/* (a) up with close_notify; one failure in three, certificate
	 * expiring in 10 days and an hour. */
	put(s, "alpha", CHECK_PAGE, NOW - 120, 1, 0.1, END_CLOSE_NOTIFY, 20,
	    "text/gemini");
	put(s, "alpha", CHECK_PAGE, NOW - 60, 0, 0.2, END_PREMATURE, 20,
	    "text/gemini");
	result_init(&r);
	r.check = CHECK_PAGE;
	r.time = NOW - 12;
	r.success = 1;
	r.total = 0.1;
	r.end = END_CLOSE_NOTIFY;
	r.status = 20;
	r.meta = xstrdup("text/gemini; lang=en");
	r.tls_version = "TLS1.3";
	r.cert.present = 1;
	r.cert.subject = xstrdup("CN=alpha.example");
	r.cert.not_after = (time_t)NOW + 10 * DAY + 3600;
	r.cert.tofu = TOFU_MATCH;
	store_put(s, "alpha", &r);
	result_clear(&r);

	/* (b) down: premature end, hostile META and subject, broken UTF-8
	 * in the message, a certificate that expired 2 days 5 s ago. */
	result_init(&r);
	r.check = CHECK_PAGE;
	r.time = NOW - 200;
	r.success = 0;
	r.total = 0.05;
	r.end = END_PREMATURE;
	r.status = 20;
	r.meta = xstrdup(HOSTILE_META);
	r.tls_version = "TLS1.2";
	r.cert.present = 1;
	r.cert.subject = xstrdup(HOSTILE_SUBJECT);
	r.cert.not_after = (time_t)NOW - 2 * DAY - 5;
	r.cert.tofu = TOFU_CHANGED;
	result_fail(&r, REASON_CLOSE_NOTIFY, STAGE_BODY,
	    "closed \xff without\x01 close_notify");
	store_put(s, HOSTILE_NAME, &r);
	result_clear(&r);

	/* (c) charlie: pending, nothing published. (d) delta: the page is
	 * fine, the error page ends without close_notify. */
	put(s, "delta", CHECK_PAGE, NOW - 30, 1, 0.08, END_CLOSE_NOTIFY, 20,
	    "text/gemini");
	put(s, "delta", CHECK_ERROR_PAGE, NOW - 30, 0, 0.09, END_PREMATURE, 51,
	    "Not found");

	buf_init(&b);
	page_render(&b, s, NOW);
	doc = buf_steal(&b, NULL);

	ok(strncmp(doc, "<!DOCTYPE html>\n", 16) == 0,
	    "document starts with <!DOCTYPE html>");
	ok(strstr(doc, "</html>\n") != NULL &&
	        strcmp(doc + strlen(doc) - 8, "</html>\n") == 0,
	    "document ends with </html>");
	ok(strstr(doc, "<meta http-equiv=\"refresh\" content=\"30\">") != NULL,
	    "refreshes itself every 30 s");
	ok(strstr(doc, "<meta name=\"viewport\" content=\"width=device-width, "
	               "initial-scale=1\">") != NULL,
	    "viewport for phones");
	ok(strstr(doc, "prefers-color-scheme:dark") != NULL, "dark scheme");
	ok(strstr(doc, "<script") == NULL, "no <script> at all");
	ok(strstr(doc, "<img") == NULL, "no injected <img>");
	ok(strstr(doc, "<caption>") != NULL, "table has a caption");
	ok(strstr(doc, "<th scope=\"col\">State</th>") != NULL,
	    "column headers with scope");
	ok(strstr(doc, "<div class=\"wrap\">\n<table>") != NULL,
	    "table in a scrolling wrapper");

	ok(strstr(doc, HOSTILE_META) == NULL, "raw hostile META absent");
	ok(strstr(doc, "title=\"" ESCAPED_META "\">" ESCAPED_META "</span>") !=
	        NULL,
	    "escaped META in text and title attribute");
	ok(strstr(doc, HOSTILE_SUBJECT) == NULL, "raw hostile subject absent");
	ok(strstr(doc, "title=\"" ESCAPED_SUBJECT ", not after ") != NULL,
	    "escaped subject in the title attribute");
	ok(strstr(doc, HOSTILE_NAME) == NULL, "raw hostile name absent");
	ok(strstr(doc, "<th scope=\"row\">" ESCAPED_NAME " <a ") != NULL,
	    "escaped capsule name");
	ok(strstr(doc, "href=\"/api/v1/capsules/%3Cb%3E%22%26\"") != NULL,
	    "capsule name percent-encoded in its JSON link");
	ok(strstr(doc, "gemini://bravo.example/?&lt;x&gt;") != NULL,
	    "URL escaped");
	ok(strstr(doc, "closed " FFFD " without" FFFD " close_notify") != NULL,
	    "invalid UTF-8 and control characters become U+FFFD");

	ok(strstr(doc, "href=\"/metrics\"") != NULL, "link to /metrics");
	ok(strstr(doc, "href=\"/api/v1/capsules\"") != NULL,
	    "link to /api/v1/capsules");
	ok(strstr(doc, "href=\"/api/v1/capsules/alpha\"") != NULL,
	    "link to a capsule's JSON");
	ok(strstr(doc,
	       "<p>4 capsules: <span class=\"s-up\">1 up</span>, "
	       "<span class=\"s-down\">2 down</span>, "
	       "<span class=\"s-pending\">1 pending</span></p>") != NULL,
	    "header counts");
	ok(strstr(doc, "Generated <time datetime=\"2026-11-28T16:00:00Z\">"
	               "2026-11-28T16:00:00Z</time>") != NULL,
	    "generated time in RFC 3339 UTC");

	alpha = row_of(doc, "alpha", &pa);
	bravo = row_of(doc, ESCAPED_NAME, &pb);
	charlie = row_of(doc, "charlie", &pc);
	delta = row_of(doc, "delta <a", &pd);
	delta_err = row_of(doc, "delta <span class=\"chk\">error page", &pe);
	ok(alpha && bravo && charlie && delta && delta_err, "five rows found");
	if (!(alpha && bravo && charlie && delta && delta_err))
		goto out;

	ok(pb < pd && pd < pe && pe < pc && pc < pa,
	    "order: down (config order, page before error page), "
	    "pending, up");

	ok(strncmp(alpha, "<tr class=\"up\">", 15) == 0, "alpha row is up");
	ok(strstr(alpha, "<span class=\"s-up\">up</span>") != NULL,
	    "alpha state text up");
	ok(strstr(alpha, "<td>complete (close_notify)</td>") != NULL,
	    "alpha ended complete (close_notify)");
	ok(strstr(alpha, "<td>20 <span class=\"meta\"") != NULL &&
	        strstr(alpha, ">text/gemini; lang=en</span>") != NULL,
	    "alpha status and META");
	ok(strstr(alpha, "<td>TLS1.3</td>") != NULL, "alpha TLS version");
	ok(strstr(alpha, "<td class=\"num warn\" title=\"CN=alpha.example, "
	                 "not after 2026-12-08T17:00:00Z\">10</td>") != NULL,
	    "alpha certificate: 10 days, highlighted under 21");
	ok(strstr(alpha, ">12s ago</time>") != NULL, "alpha probed 12s ago");
	ok(strstr(alpha, "<td class=\"num\">66.6% <span class=\"mute\">(2/3)"
	                 "</span></td>") != NULL,
	    "alpha uptime 2 of 3, rounded down");
	ok(strstr(alpha, "<svg class=\"spark\" width=\"120\" height=\"24\"") !=
	        NULL,
	    "alpha has a sparkline");
	ok(strstr(alpha, "<polyline fill=\"none\" stroke-width=\"1\" "
	                 "points=\"2.0,12.0 60.0,2.0 118.0,12.0\"/>") != NULL,
	    "sparkline points: oldest left, scaled to the max");
	ok(strstr(alpha, "<circle class=\"fail\" cx=\"60.0\" cy=\"2.0\"") !=
	        NULL,
	    "the failure is a red dot");
	ok(strstr(alpha, "1 of 3 failed") != NULL, "sparkline title");

	ok(strncmp(bravo, "<tr class=\"down\">", 17) == 0, "bravo row is down");
	ok(strstr(bravo, "<span class=\"s-down\">down</span>") != NULL,
	    "bravo state text down");
	ok(strstr(bravo, ">close_notify at body: closed ") != NULL,
	    "bravo failure reason, stage and message");
	ok(strstr(bravo, "<td class=\"warn\">truncated? closed without "
	                 "close_notify</td>") != NULL,
	    "bravo ended without close_notify");
	ok(strstr(bravo, ">-3 expired<br><span class=\"bad\">certificate "
	                 "changed</span></td>") != NULL,
	    "bravo certificate expired (2 days 5 s ago = -3), changed");
	ok(strstr(bravo, "<td class=\"num bad\"") != NULL,
	    "expired certificate highlighted");
	ok(strstr(bravo, ">3m ago</time>") != NULL, "bravo probed 3m ago");
	ok(strstr(bravo, ">0.0% <span class=\"mute\">(0/1)") != NULL,
	    "bravo uptime 0 of 1");

	ok(strncmp(charlie, "<tr class=\"pending\">", 20) == 0,
	    "charlie row is pending");
	ok(strstr(charlie, "<span class=\"s-pending\">pending</span>") != NULL,
	    "charlie state text pending");
	ok(strstr(charlie, "<svg") == NULL, "no sparkline without history");

	ok(strncmp(delta, "<tr class=\"up\">", 15) == 0, "delta page is up");
	ok(strncmp(delta_err, "<tr class=\"down\">", 17) == 0,
	    "delta error page is down");
	ok(strstr(delta_err, "<td>51 <span class=\"meta\" title=\"Not found\">"
	                     "Not found</span></td>") != NULL,
	    "error page status 51");
	ok(strstr(delta, "<td title=\"TLS_AES_256_GCM_SHA384\">TLS1.3</td>") !=
	        NULL,
	    "TLS cipher in the title");
	ok(strstr(delta_err, "href=\"/api/v1/capsules/delta\"") != NULL,
	    "error page row links the capsule's JSON");

out:
	free(alpha);
	free(bravo);
	free(charlie);
	free(delta);
	free(delta_err);
	free(doc);
	store_free(s);
}

static void
test_empty(void)
{
	struct store *s;
	struct buf b;

	s = store_new();
	buf_init(&b);
	page_render(&b, s, NOW);
	ok(strstr(b.data, "<p>0 capsules: ") != NULL, "empty: 0 capsules");
	ok(strstr(b.data, "No capsules configured.") != NULL,
	    "empty: says so in the table");
	buf_free(&b);
	store_free(s);
}

/* A stall before the end is said when it is long, max-idle or not: over
 * a second and most of the probe's time (result_stalled). */
static void
test_stall(void)
{
	static const struct {
		const char *name;
		double idle, total;
		enum end end;
		int said;
	} cases[] = {
	    {"stalled", 30.0, 30.2, END_CLOSE_NOTIFY, 1},
	    {"second", 1.0, 1.1, END_CLOSE_NOTIFY, 0},
	    {"slow", 1.5, 4.0, END_CLOSE_NOTIFY, 0},
	    {"premature", 2.0, 2.1, END_PREMATURE, 1},
	    {"deadline", 9.0, 10.0, END_TIMEOUT, 0},
	};
	struct capsule_conf caps[5];
	struct conf conf;
	struct probe_result r;
	struct store *s;
	struct buf b;
	char *row;
	const char *at;
	size_t i;

	memset(caps, 0, sizeof caps);
	memset(&conf, 0, sizeof conf);
	for (i = 0; i < 5; i++) {
		caps[i].name = (char *)cases[i].name;
		caps[i].url.text = "gemini://example.org/";
	}
	conf.capsules = caps;
	conf.ncapsules = 5;
	conf.history = 2;
	conf.shard_k = conf.shard_n = 1;
	s = store_new();
	fixture_sync(s, &conf);
	for (i = 0; i < 5; i++) {
		good_result_for(&r, "example.org", NOW - 10);
		r.idle_before_end = cases[i].idle;
		r.total = cases[i].total;
		r.end = cases[i].end;
		store_put(s, cases[i].name, &r);
		result_clear(&r);
	}
	buf_init(&b);
	page_render(&b, s, NOW);
	for (i = 0; i < 5; i++) {
		row = row_of(b.data, cases[i].name, &at);
		ok(row != NULL &&
		        (strstr(row, "<span class=\"why\" title=\"the body "
		                     "stalled") != NULL) == cases[i].said,
		    "%s: the stall %s", cases[i].name,
		    cases[i].said ? "said" : "not said");
		free(row);
	}
	row = row_of(b.data, "stalled", &at);
	ok(row != NULL &&
	        strstr(row, "<td class=\"warn\">complete (close_notify)<br>"
	                    "<span class=\"why\" title=\"the body stalled "
	                    "30.0 s before close_notify: a proxy&#39;s idle "
	                    "timeout may have cut it\">the body stalled 30.0 s "
	                    "before close_notify: a proxy&#39;s idle timeout "
	                    "may have cut it</span></td>") != NULL,
	    "stalled: the words, in the cell of how it ended");
	free(row);
	row = row_of(b.data, "premature", &at);
	ok(row != NULL && strstr(row, "before the connection closed without "
	                              "close_notify") != NULL,
	    "premature: the words name the end");
	free(row);
	buf_free(&b);
	store_free(s);
}

int
main(void)
{
	test_escape();
	test_escape_all();
	test_render();
	test_empty();
	test_stall();
	return done_testing();
}
