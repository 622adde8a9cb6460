/*
 * robots.txt (robots.h). A group is one or more User-agent lines and the
 * lines after them up to the next User-agent line that follows a rule;
 * the Disallow prefixes of every group naming "*" or "researcher" apply
 * (their union: a monitor is both). Field names are case-insensitive,
 * "#" starts a comment, an empty Disallow allows everything, other
 * fields (Allow, Crawl-delay, Sitemap) are not part of the specification
 * and are ignored.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "robots.h"
#include "xmalloc.h"

struct robots {
	char **rules;
	size_t n;
};

static int
agent_ours(const char *v, size_t n)
{
	return (n == 1 && v[0] == '*') ||
	       (n == 10 && strncasecmp(v, "researcher", 10) == 0);
}

struct robots *
robots_parse(const char *buf, size_t len)
{
	struct robots *r;
	const char *p, *next, *end, *eol, *colon, *v, *ve;
	size_t flen;
	int ours = 0, in_rules = 0;

	r = xcalloc(1, sizeof *r);
	if (len > ROBOTS_SIZE_MAX)
		len = ROBOTS_SIZE_MAX;
	end = buf + len;
	for (p = buf; p < end; p = next) {
		if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL)
			eol = end;
		next = eol < end ? eol + 1 : end;
		ve = memchr(p, '#', (size_t)(eol - p));
		if (ve == NULL)
			ve = eol;
		while (ve > p &&
		       (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		while (p < ve && (*p == ' ' || *p == '\t'))
			p++;
		if ((colon = memchr(p, ':', (size_t)(ve - p))) == NULL)
			continue;
		flen = (size_t)(colon - p);
		while (flen > 0 && (p[flen - 1] == ' ' || p[flen - 1] == '\t'))
			flen--;
		for (v = colon + 1; v < ve && (*v == ' ' || *v == '\t'); v++)
			;
		if (flen == 10 && strncasecmp(p, "user-agent", 10) == 0) {
			if (in_rules)
				ours = 0;
			in_rules = 0;
			if (agent_ours(v, (size_t)(ve - v)))
				ours = 1;
		} else if (flen == 8 && strncasecmp(p, "disallow", 8) == 0) {
			in_rules = 1;
			if (!ours || v == ve || r->n >= ROBOTS_RULES_MAX ||
			    (size_t)(ve - v) > ROBOTS_RULE_MAX)
				continue;
			r->rules =
			    xreallocarray(r->rules, r->n + 1, sizeof *r->rules);
			r->rules[r->n++] = xstrndup(v, (size_t)(ve - v));
		} else
			in_rules = 1;
	}
	return r;
}

void
robots_free(struct robots *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->n; i++)
		free(r->rules[i]);
	free(r->rules);
	free(r);
}

int
robots_allowed(const struct robots *r, const char *path)
{
	size_t i;

	if (r == NULL)
		return 1;
	for (i = 0; i < r->n; i++)
		if (strncmp(path, r->rules[i], strlen(r->rules[i])) == 0)
			return 0;
	return 1;
}

size_t
robots_count(const struct robots *r)
{
	return r != NULL ? r->n : 0;
}
