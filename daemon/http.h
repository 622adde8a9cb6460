/*
 * The HTTP endpoint (libmicrohttpd): routes of SPEC.md §6 on every
 * `listen` address. Its threads only read the store.
 */
#ifndef GEMWATCH_HTTP_H
#define GEMWATCH_HTTP_H

#include <stddef.h>

#include "url.h"

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
	ROUTE_PROBE
};

/*
 * Map a decoded request path to a route; for ROUTE_CAPSULE, *name and
 * *namelen point into path at the capsule name. Pure; fuzzed.
 */
enum route http_route(const char *path, size_t len, const char **name,
    size_t *namelen);

/* What a /probe request asks for. */
struct probe_params {
	int		 has_url;
	struct url	 url;		/* ?target=, when has_url */
	const char	*capsule;	/* ?capsule=, borrowed */
	int		 debug;		/* ?debug=true */
	double		 scrape_timeout;	/* seconds, or -1 */
};

/*
 * Check /probe's parameters (each NULL when absent). 0, with p filled
 * (free p->url when has_url), or -1 with *err set. Pure; fuzzed.
 */
int http_probe_params(const char *target, const char *capsule,
    const char *debug, const char *scrape_timeout, struct probe_params *p,
    const char **err);

struct http;

/*
 * Bind every listen address of conf and start serving; NULL (after
 * logging why) when an address cannot be bound. All pointers are borrowed.
 */
struct http *http_start(const struct conf *, struct store *,
    struct tofu_store *, const struct daemon_info *);
/* Stop serving and free. */
void http_stop(struct http *);
/* The scheduler is alive (main loop, at least every second). */
void http_heartbeat(struct http *);

#endif
