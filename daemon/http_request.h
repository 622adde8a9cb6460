/*
 * What the HTTP endpoint decides about a request from its bytes alone:
 * its path decoded, its route, whether its framing is unambiguous. Pure
 * functions of outside input, so each is fuzzed (tests/fuzz).
 */
#ifndef GEMWATCH_HTTP_REQUEST_H
#define GEMWATCH_HTTP_REQUEST_H

#include <stddef.h>

enum route {
	ROUTE_NOT_FOUND,
	ROUTE_PAGE,
	ROUTE_METRICS,
	ROUTE_CAPSULES,
	ROUTE_CAPSULE,
	ROUTE_HEALTHZ,
	ROUTE_PROBE,
	ROUTE_SEQ_PAGE /* /<kind>?capsule=NAME: *name is the kind */
};

/*
 * Map a decoded request path to a route; for ROUTE_CAPSULE, *name and
 * *namelen point into path at the capsule name. Pure; fuzzed.
 */
enum route http_route(
    const char *path, size_t len, const char **name, size_t *namelen);

/*
 * A request's framing headers, seen one by one (http_framing_add): its
 * body's length must be unambiguous, or a proxy in front, which may read
 * it otherwise, and gemwatch would disagree on where the next request
 * starts (request smuggling: a path the proxy filters would get through).
 */
struct http_framing {
	const char *length; /* the first Content-Length; borrowed */
	int conflict;       /* Content-Lengths that differ */
	int lengths;        /* Content-Length headers */
	int encodings;      /* Transfer-Encoding headers */
};

/* Note one header (name and value as received); start from all zeroes. */
void http_framing_add(
    struct http_framing *, const char *name, const char *value);
/*
 * 0 when the framing is unambiguous; -1 when Content-Lengths differ or
 * Content-Length comes with Transfer-Encoding (RFC 9112 6.3: to be
 * refused, and the connection closed). Pure; fuzzed.
 */
int http_framing_check(const struct http_framing *);

/*
 * Decode every %HH of the path s in place, except %00 (a decoded NUL
 * would cut the C string short: /api/v1/capsules/ok%00x would name
 * capsule "ok"); returns the new length.
 */
size_t http_unescape(char *s);

#endif
