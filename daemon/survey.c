/*
 * gemwatch survey's pure parts: capsule-list lines in, URLs out; results
 * in, the census out. The format of the public capsule lists is a host,
 * a host:port, an IPv6 address, or a URL per line; anything else on the
 * line is an error rather than a guess.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "survey.h"
#include "xmalloc.h"

static int
blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

int
survey_line(const char *buf, size_t len, struct url *u, const char **err)
{
	char word[SURVEY_LINE_MAX + 16];
	const char *s = buf, *end, *p;
	size_t n, colons = 0, k;
	int slash = 0, bracket = 0;

	memset(u, 0, sizeof *u);
	if (len > SURVEY_LINE_MAX) {
		*err = "line longer than 4096 bytes";
		return -1;
	}
	end = buf + len;
	/* A comment starts at a # first on the line or after a blank. */
	for (p = s; p < end; p++)
		if (*p == '#' && (p == s || blank(p[-1])))
			break;
	end = p;
	while (s < end && blank(*s))
		s++;
	while (end > s && blank(end[-1]))
		end--;
	if (s == end)
		return 0;
	n = (size_t)(end - s);
	for (p = s; p < end; p++) {
		if (blank(*p)) {
			*err = "more than one word on the line";
			return -1;
		}
		if (*p == '\0') {
			*err = "a NUL byte in the line";
			return -1;
		}
	}
	if (memmem(s, n, "://", 3) != NULL)
		return url_parse(s, n, u, err) == 0 ? 1 : -1;

	/* A host, host:port, [IPv6]:port or IPv6 address, maybe a path. */
	for (p = s; p < end; p++) {
		if (*p == '/')
			slash = 1;
		if (!slash && *p == ':')
			colons++;
		if (*p == '[')
			bracket = 1;
	}
	k = 0;
	memcpy(word, "gemini://", 9);
	k = 9;
	if (colons >= 2 && !bracket && !slash) {
		word[k++] = '[';
		memcpy(word + k, s, n);
		k += n;
		word[k++] = ']';
	} else {
		memcpy(word + k, s, n);
		k += n;
	}
	if (!slash)
		word[k++] = '/';
	return url_parse(word, k, u, err) == 0 ? 1 : -1;
}

/* ---- the census ---------------------------------------------------------- */

void
census_init(struct census *c, double now)
{
	memset(c, 0, sizeof *c);
	c->now = now;
}

void
census_free(struct census *c)
{
	free(c->latency);
	c->latency = NULL;
}

void
census_add(struct census *c, const struct probe_result *r)
{
	const struct cert_facts *f = &r->cert;
	size_t i;

	c->capsules++;
	if (r->success)
		c->succeeded++;
	else if (r->reason > REASON_NONE && r->reason < REASON__COUNT)
		c->failures[r->reason]++;
	if (r->status >= 10 && r->status <= 69) {
		c->answered++;
		if (r->end < END__COUNT)
			c->ends[r->end]++;
		c->classes[r->status / 10]++;
		if (c->nlatency == c->latency_cap) {
			c->latency_cap =
			    c->latency_cap ? c->latency_cap * 2 : 256;
			c->latency = xreallocarray(
			    c->latency, c->latency_cap, sizeof *c->latency);
		}
		c->latency[c->nlatency++] = r->total;
		c->sorted = 0;
	}
	if (r->tls_version != NULL) {
		for (i = 0; i < SURVEY_TLS_NAMES && c->tls[i].name != NULL; i++)
			if (strcmp(c->tls[i].name, r->tls_version) == 0)
				break;
		if (i == SURVEY_TLS_NAMES)
			c->tls_other++;
		else {
			c->tls[i].name = r->tls_version;
			c->tls[i].n++;
		}
	}
	if (f->present) {
		c->certs++;
		if (f->self_signed)
			c->self_signed++;
		if ((double)f->not_after < c->now)
			c->expired++;
		if (!f->hostname_match)
			c->mismatched++;
	}
}

static int
double_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double
census_latency(struct census *c, double p)
{
	size_t rank;

	if (c->nlatency == 0)
		return -1;
	if (!c->sorted) {
		qsort(c->latency, c->nlatency, sizeof *c->latency, double_cmp);
		c->sorted = 1;
	}
	/* Nearest rank. */
	rank = (size_t)ceil(p / 100 * (double)c->nlatency);
	if (rank < 1)
		rank = 1;
	if (rank > c->nlatency)
		rank = c->nlatency;
	return c->latency[rank - 1];
}

static void
add_share(struct buf *b, size_t n, size_t of)
{
	if (of > 0)
		buf_printf(b, " (%.1f%%)", 100.0 * (double)n / (double)of);
}

void
census_text(struct buf *b, struct census *c)
{
	static const double ps[] = {50, 90, 99};
	enum end e;
	enum reason r;
	size_t i;
	const char *sep;

	buf_printf(
	    b, "census: %zu capsules probed in %.1fs", c->capsules, c->seconds);
	if (c->bad_lines > 0 || c->duplicates > 0)
		buf_printf(b,
		    " (%zu lines skipped as unusable, %zu "
		    "duplicates)",
		    c->bad_lines, c->duplicates);
	buf_printf(b, "\n  answered:        %zu", c->answered);
	add_share(b, c->answered, c->capsules);
	buf_printf(b, "; succeeded %zu\n", c->succeeded);
	buf_adds(b, "  answers ended:  ");
	for (e = END_CLOSE_NOTIFY; e < END__COUNT; e++) {
		buf_printf(b, " %s %zu", end_name(e), c->ends[e]);
		if (e == END_CLOSE_NOTIFY)
			add_share(b, c->ends[e], c->answered);
		buf_addc(b, e + 1 < END__COUNT ? ',' : '\n');
	}
	buf_adds(b, "  failures:       ");
	sep = "";
	for (r = REASON_RESOLVE; r < REASON__COUNT; r++) {
		buf_printf(b, "%s %s %zu", sep, reason_name(r), c->failures[r]);
		sep = ",";
	}
	buf_adds(b, "\n  TLS versions:   ");
	sep = "";
	for (i = 0; i < SURVEY_TLS_NAMES && c->tls[i].name != NULL; i++) {
		buf_printf(b, "%s %s %zu", sep, c->tls[i].name, c->tls[i].n);
		sep = ",";
	}
	if (c->tls_other > 0)
		buf_printf(b, "%s other %zu", sep, c->tls_other);
	else if (*sep == '\0')
		buf_adds(b, " none");
	buf_adds(b, "\n  status classes: ");
	for (i = 1; i <= 6; i++)
		buf_printf(
		    b, " %zux %zu%s", i, c->classes[i], i < 6 ? "," : "");
	buf_printf(b,
	    "\n  certificates:    %zu: self-signed %zu, expired %zu, "
	    "hostname mismatched %zu\n",
	    c->certs, c->self_signed, c->expired, c->mismatched);
	buf_adds(b, "  latency:        ");
	if (c->nlatency == 0)
		buf_adds(b, " none answered\n");
	else
		for (i = 0; i < sizeof ps / sizeof ps[0]; i++)
			buf_printf(b, " p%.0f %.3fs%s", ps[i],
			    census_latency(c, ps[i]),
			    i + 1 < sizeof ps / sizeof ps[0] ? "," : "\n");
	buf_printf(b,
	    "%zu out of %zu servers that answered send "
	    "close_notify.\n",
	    c->ends[END_CLOSE_NOTIFY], c->answered);
}

/* Set key to n in o; -1 out of memory. */
static int
set_count(json_t *o, const char *key, size_t n)
{
	return json_object_set_new(o, key, json_integer((json_int_t)n));
}

json_t *
census_json(struct census *c)
{
	json_t *doc, *o, *x;
	enum end e;
	enum reason r;
	size_t i;
	char name[8];
	double v;
	int bad = 0;

	if ((doc = json_object()) == NULL || (o = json_object()) == NULL ||
	    json_object_set_new(doc, "census", o) == -1)
		goto fail;
	bad |= set_count(o, "capsules", c->capsules);
	bad |= set_count(o, "answered", c->answered);
	bad |= set_count(o, "succeeded", c->succeeded);
	bad |= set_count(o, "bad_lines", c->bad_lines);
	bad |= set_count(o, "duplicates", c->duplicates);
	bad |= json_object_set_new(o, "seconds", json_real(c->seconds));
	if ((x = json_object()) == NULL ||
	    json_object_set_new(o, "ends", x) == -1)
		goto fail;
	for (e = END_CLOSE_NOTIFY; e < END__COUNT; e++)
		bad |= set_count(x, end_name(e), c->ends[e]);
	if ((x = json_object()) == NULL ||
	    json_object_set_new(o, "failures", x) == -1)
		goto fail;
	for (r = REASON_RESOLVE; r < REASON__COUNT; r++)
		bad |= set_count(x, reason_name(r), c->failures[r]);
	if ((x = json_object()) == NULL ||
	    json_object_set_new(o, "tls_versions", x) == -1)
		goto fail;
	for (i = 0; i < SURVEY_TLS_NAMES && c->tls[i].name != NULL; i++)
		bad |= set_count(x, c->tls[i].name, c->tls[i].n);
	if (c->tls_other > 0)
		bad |= set_count(x, "other", c->tls_other);
	if ((x = json_object()) == NULL ||
	    json_object_set_new(o, "status_classes", x) == -1)
		goto fail;
	for (i = 1; i <= 6; i++) {
		snprintf(name, sizeof name, "%zux", i);
		bad |= set_count(x, name, c->classes[i]);
	}
	if ((x = json_object()) == NULL ||
	    json_object_set_new(o, "certificates", x) == -1)
		goto fail;
	bad |= set_count(x, "present", c->certs);
	bad |= set_count(x, "self_signed", c->self_signed);
	bad |= set_count(x, "expired", c->expired);
	bad |= set_count(x, "hostname_mismatch", c->mismatched);
	if ((x = json_object()) == NULL ||
	    json_object_set_new(o, "latency", x) == -1)
		goto fail;
	bad |= json_object_set_new(x, "p50",
	    (v = census_latency(c, 50)) < 0 ? json_null() : json_real(v));
	bad |= json_object_set_new(x, "p90",
	    (v = census_latency(c, 90)) < 0 ? json_null() : json_real(v));
	bad |= json_object_set_new(x, "p99",
	    (v = census_latency(c, 99)) < 0 ? json_null() : json_real(v));
	if (bad)
		goto fail;
	return doc;
fail:
	json_decref(doc);
	return NULL;
}
