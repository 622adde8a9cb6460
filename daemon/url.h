/*
 * gemini:// URL parser. Pure: no I/O, fuzzed. Produces the host to
 * connect to (lower-case, IDNA A-labels), the port and the canonical
 * absolute URL that is sent as the request line.
 */
#ifndef GEMWATCH_URL_H
#define GEMWATCH_URL_H

#include <stddef.h>

struct sockaddr;

#define URL_MAX 1024        /* longest URL a request may carry (bytes) */
#define URL_PATTERN_MAX 255 /* bytes in a probe-allow pattern */

struct url {
	char *host;     /* lower-case; IPv6 literal without brackets */
	int port;       /* 1965 unless given */
	int host_is_ip; /* host is an IPv4 or IPv6 literal: no SNI */
	char *path;     /* "/..." including any "?query", never empty */
	char *text;     /* canonical absolute URL, at most URL_MAX bytes */
};

/*
 * Parse buf[0..len). On success fill *u (caller frees with url_free) and
 * return 0; on error return -1 and point *err at a static message.
 */
int url_parse(const char *buf, size_t len, struct url *u, const char **err);
void url_free(struct url *);
/* Deep copy. */
void url_copy(struct url *dst, const struct url *src);

/* What url_resolve made of a reference. */
#define URL_RESOLVE_OK 0
#define URL_RESOLVE_OTHER (-1) /* another scheme than gemini */
#define URL_RESOLVE_BAD (-2)   /* not a reference, or too long for out */

/*
 * Resolve the reference ref[0..len) (a link's target) against base, as
 * RFC 3986 §5.2 says: dot segments removed, the fragment dropped, the
 * result written NUL-terminated to out (cap bytes) as an absolute URL
 * for url_parse to check. Pure; fuzzed.
 */
int url_resolve(
    const struct url *base, const char *ref, size_t len, char *out, size_t cap);

/*
 * A probe-allow pattern: a host glob ("*.example.org", "127.0.0.*") or an
 * IPv6 address or glob in brackets ("[2001:db8::*]"), then an optional
 * ":PORT" or ":*" (default 1965).
 *
 * A host made only of digits, dots and glob characters (with at least one
 * digit; a class holds digits and "-"), or anything in brackets, is an
 * address pattern: it matches addresses, never a name spelt like one
 * ("127.0.0.1.example.org"). Any other is a name pattern, matched against
 * the host as spelt in the URL.
 */
struct url_pattern {
	char host[URL_PATTERN_MAX + 1]; /* the glob; IPv6 without brackets */
	int port;                       /* -1: any */
	int address;                    /* an address pattern */
};

/*
 * Parse pat into *p and return 0; on error return -1 and point *err at a
 * static message.
 */
int url_pattern_parse(const char *pat, struct url_pattern *p, const char **err);
/*
 * Whether u's host and port match the pattern: a name pattern matches the
 * host as spelt, an address pattern only an IP literal. A bad pattern
 * matches none.
 */
int url_pattern_match(const char *pat, const struct url *u);
/*
 * Whether an address pattern admits sa (AF_INET or AF_INET6, with its
 * port): an address a name was resolved to. A name pattern admits none.
 */
int url_pattern_match_address(const char *pat, const struct sockaddr *sa);

#endif
