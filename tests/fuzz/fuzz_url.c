/*
 * Fuzz target for daemon/url.c: url_parse on arbitrary bytes, the
 * invariants of a parsed URL, and the round trip: the canonical text
 * parses again to the very same URL. url_copy and url_free run too. The
 * same bytes go through url_pattern_parse as a probe-allow pattern, and a
 * pattern spelt from a parsed URL's host and port must match it (and its
 * address, for an IP literal). An address pattern never matches a host
 * name, however it is spelt ("127.0.0.1.example.org"), and a name pattern
 * never admits an address. A host taken for a name is never an IPv4
 * address to getaddrinfo (inet_aton: "0x7f000001", "0177.0.0.1", "127.1").
 */
#include "config.h"

#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../sockaddr.h"
#include "fuzz.h"
#include "url.h"

static int
same(const struct url *a, const struct url *b)
{
	return strcmp(a->host, b->host) == 0 && a->port == b->port &&
	       a->host_is_ip == b->host_is_ip &&
	       strcmp(a->path, b->path) == 0 && strcmp(a->text, b->text) == 0;
}

/* Host names spelt like addresses, and addresses, on every port. */
static const char *const names[] = {"127.0.0.1.example.org",
    "10.0.0.1.example.org", "1.2.3.4.in-addr.arpa", "x1.test", "1e100.net",
    "localhost"};
static const char *const addrs[] = {
    "127.0.0.1", "10.0.0.1", "::1", "2001:db8::1", "::ffff:127.0.0.1"};

/* The pattern p (parsed from pat) against names and addresses. */
static void
pattern_kinds(const char *pat, const struct url_pattern *p)
{
	struct sockaddr_storage ss;
	struct url u;
	char text[512];
	const char *err;
	size_t i;

	for (i = 0; i < sizeof names / sizeof names[0]; i++) {
		snprintf(text, sizeof text, "gemini://%s:%d/", names[i],
		    p->port == -1 ? 1965 : p->port);
		if (url_parse(text, strlen(text), &u, &err) == -1)
			abort();
		if (p->address && url_pattern_match(pat, &u))
			abort();
		url_free(&u);
	}
	for (i = 0; i < sizeof addrs / sizeof addrs[0]; i++) {
		if (sockaddr_of(
		        addrs[i], p->port == -1 ? 1965 : p->port, &ss) == -1)
			abort();
		if (!p->address &&
		    url_pattern_match_address(pat, (struct sockaddr *)&ss))
			abort();
	}
}

/* The input as a probe-allow pattern, up to its first NUL. */
static void
pattern(const uint8_t *data, size_t size)
{
	struct url_pattern p;
	char *pat;
	const char *err = NULL;

	if ((pat = malloc(size + 1)) == NULL)
		abort();
	memcpy(pat, data, size);
	pat[size] = '\0';
	if (url_pattern_parse(pat, &p, &err) == 0) {
		if (p.host[0] == '\0' || strlen(p.host) > URL_PATTERN_MAX ||
		    (p.port != -1 && (p.port < 1 || p.port > 65535)))
			abort();
		pattern_kinds(pat, &p);
	} else if (err == NULL)
		abort();
	free(pat);
}

/*
 * A pattern spelt from u's host and port matches u; it is an address
 * pattern exactly when u's host is an IP literal, and then admits that
 * address.
 */
static void
pattern_self(const struct url *u)
{
	struct sockaddr_storage ss;
	struct url_pattern p;
	char pat[URL_MAX + 16];
	const char *err;
	int ipv6 = strchr(u->host, ':') != NULL;

	/* Longer than a pattern may be: refused, so matches nothing. */
	if (snprintf(pat, sizeof pat, "%s%s%s:%d", ipv6 ? "[" : "", u->host,
	        ipv6 ? "]" : "", u->port) > URL_PATTERN_MAX)
		return;
	if (!url_pattern_match(pat, u) ||
	    url_pattern_parse(pat, &p, &err) == -1 ||
	    p.address != u->host_is_ip)
		abort();
	if (u->host_is_ip) {
		if (sockaddr_of(u->host, u->port, &ss) == -1)
			abort();
		if (!url_pattern_match_address(pat, (struct sockaddr *)&ss))
			abort();
	}
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
