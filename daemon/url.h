/*
 * gemini:// URL parser. Pure: no I/O, fuzzed. Produces the host to
 * connect to (lower-case, IDNA A-labels), the port and the canonical
 * absolute URL that is sent as the request line.
 */
#ifndef GEMWATCH_URL_H
#define GEMWATCH_URL_H

#include <stddef.h>

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
 * ":PORT" or ":*" (default 1965). On success copy the host part (without
 * brackets) to host and the port (-1: any) to *port and return 0; on error
 * return -1 and point *err at a static message.
 */
int url_pattern_parse(const char *pat, char host[URL_PATTERN_MAX + 1],
    int *port, const char **err);
/* Whether u's host and port match the pattern; a bad pattern matches none. */
int url_pattern_match(const char *pat, const struct url *u);

#endif
