/*
 * The HTTP endpoint (libmicrohttpd): routes of SPEC.md §6 on every
 * `listen` address. Its threads only read the store; /probe's jobs
 * (probe_route.c) probe on threads of their own, which record new
 * certificates in the TOFU store.
 */
#ifndef GEMWATCH_HTTP_H
#define GEMWATCH_HTTP_H

#include <stddef.h>

struct conf;
struct daemon_info;
struct tofu_store;
struct store;

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

struct http;

/*
 * Bind every listen address of conf and start serving; NULL (after
 * logging why) when an address cannot be bound. All pointers are borrowed;
 * /probe checks its requests against the running configuration (conf.h)
 * and its probes use tofu.
 */
struct http *http_start(const struct conf *, struct store *,
    struct tofu_store *, const struct daemon_info *);
/* Stop serving and free. */
void http_stop(struct http *);
/* The scheduler is alive (main loop, at least every second). */
void http_heartbeat(struct http *);

#endif
