/*
 * Unit tests for what a crawl reads: references resolved as RFC 3986
 * §5.4 says (its examples, on a gemini:// base), text/gemini link lines,
 * and robots.txt for the agents "*" and "researcher".
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "gemtext.h"
#include "robots.h"
#include "tap.h"
#include "url.h"

static void
test_resolve(void)
{
	/* RFC 3986 §5.4.1 and §5.4.2, base "http://a/b/c/d;p?q". */
	static const struct {
		const char *ref, *want;
	} t[] = {
	    {"g", "gemini://a/b/c/g"},
	    {"./g", "gemini://a/b/c/g"},
	    {"g/", "gemini://a/b/c/g/"},
	    {"/g", "gemini://a/g"},
	    {"//g", "gemini://g"},
	    {"?y", "gemini://a/b/c/d;p?y"},
	    {"g?y", "gemini://a/b/c/g?y"},
	    {"#s", "gemini://a/b/c/d;p?q"},
	    {"g#s", "gemini://a/b/c/g"},
	    {"g?y#s", "gemini://a/b/c/g?y"},
	    {";x", "gemini://a/b/c/;x"},
	    {"g;x", "gemini://a/b/c/g;x"},
	    {".", "gemini://a/b/c/"},
	    {"./", "gemini://a/b/c/"},
	    {"..", "gemini://a/b/"},
	    {"../", "gemini://a/b/"},
	    {"../g", "gemini://a/b/g"},
	    {"../..", "gemini://a/"},
	    {"../../", "gemini://a/"},
	    {"../../g", "gemini://a/g"},
	    {"../../../g", "gemini://a/g"},
	    {"../../../../g", "gemini://a/g"},
	    {"/./g", "gemini://a/g"},
	    {"/../g", "gemini://a/g"},
	    {"g.", "gemini://a/b/c/g."},
	    {".g", "gemini://a/b/c/.g"},
	    {"g..", "gemini://a/b/c/g.."},
	    {"..g", "gemini://a/b/c/..g"},
	    {"./../g", "gemini://a/b/g"},
	    {"./g/.", "gemini://a/b/c/g/"},
	    {"g/./h", "gemini://a/b/c/g/h"},
	    {"g/../h", "gemini://a/b/c/h"},
	    {"g;x=1/./y", "gemini://a/b/c/g;x=1/y"},
	    {"g;x=1/../y", "gemini://a/b/c/y"},
	    {"g?y/./x", "gemini://a/b/c/g?y/./x"},
	    {"g?y/../x", "gemini://a/b/c/g?y/../x"},
	    {"GEMINI://A/x/../y", "gemini://A/y"},
	    {"gemini://other:1966/a/./b", "gemini://other:1966/a/b"},
	    {"a%20b", "gemini://a/b/c/a%20b"},
	};
	static const char *const other[] = {
	    "http://a/", "mailto:x@y", "gopher://a/", "HTTPS://a/"};
	struct url base;
	const char *err;
	char out[4096];
	size_t i;

	if (url_parse("gemini://a/b/c/d;p?q", 20, &base, &err) == -1)
		abort();
	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		memset(out, 0, sizeof out);
		is_int(url_resolve(
		           &base, t[i].ref, strlen(t[i].ref), out, sizeof out),
		    URL_RESOLVE_OK, "resolve \"%s\"", t[i].ref);
		is_str(out, t[i].want, "\"%s\" resolved", t[i].ref);
	}
	for (i = 0; i < sizeof other / sizeof other[0]; i++)
		is_int(url_resolve(
		           &base, other[i], strlen(other[i]), out, sizeof out),
		    URL_RESOLVE_OTHER, "\"%s\" is another scheme", other[i]);
	is_int(url_resolve(&base, "gemini:g", 8, out, sizeof out),
	    URL_RESOLVE_BAD, "gemini:g has no authority");
	is_int(url_resolve(&base, "a b", 3, out, sizeof out), URL_RESOLVE_BAD,
	    "a blank is refused");
	is_int(url_resolve(&base, "/g", 2, out, 12), URL_RESOLVE_BAD,
	    "too long for out is refused");
	url_free(&base);
}

struct links {
	char text[512];
};

static void
add_link(void *arg, const char *ref, size_t len)
{
	struct links *l = arg;

	strncat(l->text, ref, len);
	strcat(l->text, "|");
}

static void
test_gemtext(void)
{
	static const char body[] =
	    "# title\r\n=> /a A\r\n=>b\n=>\t c\td\n=>\n=> \n"
	    "```\n=> /pre\n``` alt\n* => no\n =>no\n=> /last";
	struct links l = {""};
	struct gemtext g;
	const char *ref;
	size_t i, reflen;

	gemtext_init(&g);
	for (i = 0; i < sizeof body - 1; i++) /* a byte at a time */
		gemtext_feed(&g, body + i, 1, add_link, &l);
	gemtext_end(&g, add_link, &l);
	is_str(l.text, "/a|b|c|/last|", "links outside preformatted blocks");
	ok(!gemtext_link("=> ", 3, &ref, &reflen), "\"=> \" is no link");
	ok(gemtext_link("=>x", 3, &ref, &reflen) && reflen == 1,
	    "\"=>x\" is a link to x");
}

static void
test_robots(void)
{
	static const char txt[] =
	    "# robots\nUser-agent: archiver\nDisallow: /\n\n"
	    "User-agent: indexer\nUser-agent: researcher\n"
	    "Disallow: /cgi-bin/ # scripts\n\n"
	    "user-agent: *\ndisallow: /private\nDisallow:\n"
	    "User-agent: webproxy\nDisallow: /x\n";
	struct robots *r;

	r = robots_parse(txt, sizeof txt - 1);
	is_int(robots_count(r), 2, "two rules apply to * and researcher");
	ok(robots_allowed(r, "/"), "/ allowed (archiver's rule is not ours)");
	ok(!robots_allowed(r, "/cgi-bin/cal?y=2026"), "researcher's rule");
	ok(!robots_allowed(r, "/private/a.gmi"), "*'s rule");
	ok(!robots_allowed(r, "/privateer"), "a rule is a prefix");
	ok(robots_allowed(r, "/x"), "webproxy's rule is not ours");
	robots_free(r);
	r = robots_parse("", 0);
	ok(robots_allowed(r, "/"), "an empty robots.txt allows all");
	robots_free(r);
	ok(robots_allowed(NULL, "/"), "no robots.txt allows all");
}

int
main(void)
{
	test_resolve();
	test_gemtext();
	test_robots();
	return done_testing();
}
