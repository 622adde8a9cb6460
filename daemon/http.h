/*
 * The HTTP endpoint (libmicrohttpd): routes of SPEC.md §6 on every
 * `listen` address. Its threads only read the store; /probe's jobs
 * (probe_route.c) probe on threads of their own, which record new
 * certificates in the TOFU store.
 */
#ifndef GEMWATCH_HTTP_H
#define GEMWATCH_HTTP_H

struct conf;
struct daemon_info;
struct tofu_store;
struct store;

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
