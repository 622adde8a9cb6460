/*
 * What each route of the HTTP endpoint renders, without libmicrohttpd:
 * the status page, /metrics, the JSON API and a run's page (SPEC.md §6),
 * each into an answer (status, content type, body). http.c runs renders
 * on its render threads and sends their answers.
 */
#ifndef GEMWATCH_RENDER_H
#define GEMWATCH_RENDER_H

#include <stddef.h>

#include "http_request.h"

#define CT_TEXT "text/plain; charset=utf-8"
#define CT_METRICS "text/plain; version=0.0.4; charset=utf-8"
#define CT_JSON "application/json"
#define CT_HTML "text/html; charset=utf-8"

struct daemon_info;
struct metrics_cache;
struct store;

/* What the renders read: all borrowed. */
struct render_ctx {
	struct store *store;
	const struct daemon_info *info;
	struct metrics_cache *metrics;
};

/* What a request asks a render for. */
struct render_req {
	enum route
	    route;  /* ROUTE_PAGE, _METRICS, _CAPSULES, _CAPSULE, _SEQ_PAGE */
	char *name; /* ROUTE_CAPSULE's path; ROUTE_SEQ_PAGE's capsule */
	int kind;   /* ROUTE_SEQ_PAGE's */
	int full;   /* ?full=1 */
};

/*
 * A render's answer: body[0..len) (freed by answer_clear when heap), or,
 * for /metrics, the shared text then body, or a stream instead of both.
 */
struct answer {
	unsigned status;
	const char *type;
	char *body;
	size_t len;
	int heap;
	struct metrics_text *shared;
	struct metrics_stream *stream;
};

/*
 * What a request of route asks: name[0..namelen) as http_route found it,
 * the query's capsule= and full= (NULL when absent).
 */
void render_req_init(struct render_req *, enum route, const char *name,
    size_t namelen, const char *capsule, const char *full);
void render_req_clear(struct render_req *);
/* Render what rq asks for into a (all zeroes before). Thread-safe. */
void render_route(
    const struct render_ctx *, const struct render_req *, struct answer *a);
/* The answer of a render cancelled as the endpoint stops: 503 "stopping". */
void render_cancelled(struct answer *a);
/* Free what a still holds. */
void answer_clear(struct answer *a);

#endif
