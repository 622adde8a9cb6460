/*
 * What each route renders (render.h): the renderers are page, metrics
 * and api; this is which one answers which route, and how.
 */
#include "config.h"

#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "buf.h"
#include "clock.h"
#include "metrics.h"
#include "page.h"
#include "render.h"
#include "seq.h"
#include "xmalloc.h"

static void
set(struct answer *a, unsigned status, const char *type, char *body, size_t len,
    int heap)
{
	a->status = status;
	a->type = type;
	a->body = body;
	a->len = len;
	a->heap = heap;
}

/* A constant text. */
static void
set_text(struct answer *a, unsigned status, const char *type, const char *s)
{
	set(a, status, type, (char *)s, strlen(s), 0);
}

/* What b holds, taken. */
static void
set_buf(struct answer *a, const char *type, struct buf *b)
{
	char *text;
	size_t len;

	text = buf_steal(b, &len);
	set(a, MHD_HTTP_OK, type, text, len, 1);
}

/*
 * /api/v1/capsules/NAME, or /api/v1/capsules/NAME/<kind>: names may hold
 * a "/", so a name that is no capsule's is tried as NAME/<kind>.
 */
static char *
capsule_api(struct store *s, const char *name, int full)
{
	const char *slash;
	char *text, *cap;
	int k;

	if ((text = api_capsule(s, name)) != NULL ||
	    (slash = strrchr(name, '/')) == NULL ||
	    (k = seq_kind_find(slash + 1, strlen(slash + 1))) == -1)
		return text;
	cap = xstrndup(name, (size_t)(slash - name));
	text = api_seq(s, cap, k, full);
	free(cap);
	return text;
}

void
render_req_init(struct render_req *rr, enum route route, const char *name,
    size_t namelen, const char *capsule, const char *full)
{
	rr->route = route;
	rr->name = NULL;
	rr->kind = -1;
	if (route == ROUTE_SEQ_PAGE) {
		rr->kind = seq_kind_find(name, namelen);
		if (capsule != NULL)
			rr->name = xstrdup(capsule);
	} else if (name != NULL)
		rr->name = xstrndup(name, namelen);
	rr->full = full != NULL && strcmp(full, "1") == 0;
}

void
render_req_clear(struct render_req *rr)
{
	free(rr->name);
	rr->name = NULL;
}

void
render_route(
    const struct render_ctx *x, const struct render_req *rq, struct answer *a)
{
	struct buf b;
	char *text;

	buf_init(&b);
	switch (rq->route) {
	case ROUTE_PAGE:
		page_render(&b, x->store, clock_wall());
		set_buf(a, CT_HTML, &b);
		break;
	case ROUTE_METRICS:
		/* Thousands of capsules: rendered as the client reads. */
		if ((a->stream = metrics_stream_new(
		         x->metrics, x->store, x->info)) != NULL) {
			set(a, MHD_HTTP_OK, CT_METRICS, NULL, 0, 0);
			break;
		}
		a->shared =
		    metrics_render_shared(&b, x->metrics, x->store, x->info);
		set_buf(a, CT_METRICS, &b);
		break;
	case ROUTE_SEQ_PAGE:
		if (rq->name != NULL &&
		    page_seq(&b, x->store, rq->name, rq->kind) == 0)
			set_buf(a, CT_HTML, &b);
		else
			set_text(a, MHD_HTTP_NOT_FOUND, CT_TEXT,
			    "404 no such capsule, or not yet\n");
		break;
	case ROUTE_CAPSULES:
		if ((text = api_capsules(x->store)) != NULL)
			set(a, MHD_HTTP_OK, CT_JSON, text, strlen(text), 1);
		else
			set_text(a, MHD_HTTP_INTERNAL_SERVER_ERROR, CT_TEXT,
			    "500 error\n");
		break;
	default:
		if ((text = capsule_api(x->store, rq->name, rq->full)) != NULL)
			set(a, MHD_HTTP_OK, CT_JSON, text, strlen(text), 1);
		else
			set_text(a, MHD_HTTP_NOT_FOUND, CT_JSON,
			    "{\"error\":\"no such capsule\"}");
		break;
	}
	buf_free(&b);
}

void
render_cancelled(struct answer *a)
{
	set_text(a, MHD_HTTP_SERVICE_UNAVAILABLE, CT_TEXT, "stopping\n");
}

void
answer_clear(struct answer *a)
{
	metrics_text_release(a->shared);
	metrics_stream_free(a->stream);
	if (a->heap)
		free(a->body);
	memset(a, 0, sizeof *a);
}
