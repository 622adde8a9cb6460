/*
 * Fuzz target for daemon/url.c: url_parse on arbitrary bytes, the
 * invariants of a parsed URL, and the round trip: the canonical text
 * parses again to the very same URL. url_copy and url_free run too. The
 * same bytes go through url_pattern_parse as a probe-allow pattern, and a
 * pattern spelt from a parsed URL's host and port must match it. A host
 * taken for a name is never an IPv4 address to getaddrinfo (inet_aton:
 * "0x7f000001", "0177.0.0.1", "127.1").
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "url.h"

static int
same(const struct url *a, const struct url *b)
{
	return strcmp(a->host, b->host) == 0 && a->port == b->port &&
	       a->host_is_ip == b->host_is_ip &&
	       strcmp(a->path, b->path) == 0 && strcmp(a->text, b->text) == 0;
}

/* The input as a probe-allow pattern, up to its first NUL. */
static void
pattern(const uint8_t *data, size_t size)
{
	char host[URL_PATTERN_MAX + 1], *pat;
	const char *err = NULL;
	int port;

	if ((pat = malloc(size + 1)) == NULL)
		abort();
	memcpy(pat, data, size);
	pat[size] = '\0';
	if (url_pattern_parse(pat, host, &port, &err) == 0) {
		if (host[0] == '\0' || strlen(host) > URL_PATTERN_MAX ||
		    (port != -1 && (port < 1 || port > 65535)))
			abort();
	} else if (err == NULL)
		abort();
	free(pat);
}

/* A pattern spelt from u's host and port matches u. */
static void
pattern_self(const struct url *u)
{
	char pat[URL_MAX + 16];
	int ipv6 = strchr(u->host, ':') != NULL;

	/* Longer than a pattern may be: refused, so matches nothing. */
	if (snprintf(pat, sizeof pat, "%s%s%s:%d", ipv6 ? "[" : "", u->host,
	        ipv6 ? "]" : "", u->port) > URL_PATTERN_MAX)
		return;
	if (!url_pattern_match(pat, u))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct url u, again, copy;
	struct in_addr in4;
	const char *err = NULL;
	char *p;
	size_t len;

	pattern(data, size);
	/* An exact-size copy, so a read past size is caught. */
	if ((p = malloc(size > 0 ? size : 1)) == NULL)
		abort();
	if (size > 0)
		memcpy(p, data, size);
	if (url_parse(p, size, &u, &err) == -1) {
		if (err == NULL || u.host != NULL || u.path != NULL ||
		    u.text != NULL)
			abort();
		free(p);
		return 0;
	}
	free(p);

	len = strlen(u.text);
	if (u.host == NULL || u.host[0] == '\0' || u.path == NULL ||
	    u.path[0] != '/' || len > URL_MAX || u.port < 1 || u.port > 65535 ||
	    strncmp(u.text, "gemini://", 9) != 0)
		abort();
	if (!u.host_is_ip && inet_aton(u.host, &in4) != 0)
		abort();
	/* The canonical text is plain ASCII without blanks or controls. */
	for (p = u.text; *p != '\0'; p++)
		if ((unsigned char)*p < 0x21 || (unsigned char)*p >= 0x7f ||
		    *p == '#')
			abort();
	/*
	 * It ends in the path and names the host (IPv6 in brackets); no
	 * userinfo before the path ('@' is fine in the path itself).
	 */
	if (strlen(u.path) > len ||
	    strcmp(u.text + len - strlen(u.path), u.path) != 0 ||
	    strncmp(u.text + 9 + (strchr(u.host, ':') != NULL), u.host,
	        strlen(u.host)) != 0 ||
	    memchr(u.text, '@', len - strlen(u.path)) != NULL)
		abort();

	/* Parsing the canonical text again gives the same URL. */
	if ((p = malloc(len > 0 ? len : 1)) == NULL)
		abort();
	memcpy(p, u.text, len);
	if (url_parse(p, len, &again, &err) == -1 || !same(&u, &again))
		abort();
	free(p);

	pattern_self(&u);
	url_copy(&copy, &u);
	url_free(&u);
	if (!same(&copy, &again))
		abort();
	url_free(&copy);
	url_free(&again);
	url_free(&again);
	return 0;
}
