/*
 * The HTTP endpoint with libmicrohttpd. One MHD daemon per listen
 * address, each with an internal polling thread (epoll where available).
 * Limits keep slow or idle clients from starving it: a connection cap,
 * a per-IP cap, an idle timeout and a per-connection memory limit (which
 * also bounds the request line and headers). Only GET and HEAD are
 * served; every response has a Content-Type. This file is libmicrohttpd:
 * what a route answers comes from render.c, on a few render threads
 * (workq) while the connection is suspended, so that the MHD threads
 * only move bytes and answer /healthz and errors at once however many
 * scrapers wait; a /probe job comes from probe_route,
 * suspended likewise. The exception is a /metrics of thousands of
 * capsules, too large to hold at once: the MHD thread renders it as the
 * client reads it, 64 KiB at a time (a fraction of a millisecond each).
 */
#include "config.h"

#include <sys/socket.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "conf.h"
#include "http.h"
#include "http_request.h"
#include "log.h"
#include "metrics.h"
#include "probe_route.h"
#include "render.h"
#include "workq.h"
#include "xmalloc.h"

#define HTTP_CONNECTION_LIMIT 4096
#define HTTP_PER_IP_LIMIT 1024
#define HTTP_IDLE_TIMEOUT 15          /* seconds */
#define HTTP_MEMORY_LIMIT (64 * 1024) /* per connection */
#define HEARTBEAT_STALE 10            /* seconds without one: unhealthy */
/*
 * Threads rendering pages, metrics and JSON for every listen address.
 * Renders read the store under its read lock; two keep both cores of a
 * small machine busy without crowding the probes.
 */
#define HTTP_RENDER_THREADS 2
/* Bytes of a streamed /metrics asked for at a time (metrics_stream_new). */
#define HTTP_STREAM_BLOCK (64 * 1024)

struct http {
	struct MHD_Daemon **d;
	size_t nd;
	struct render_ctx ctx;  /* what the renders read */
	atomic_llong heartbeat; /* monotonic seconds; -1 none yet */
	/* /probe's jobs, on threads of their own while the connection is
	 * suspended; http_stop abandons them and waits. */
	struct probe_route *probes;
	struct workq *renders; /* the render threads */
};

/*
 * A request, *con_cls from the first call of the handler on: nothing
 * more for most, a /probe job, or a render handed to the render threads
 * (its connection suspended) and, once ready, its answer.
 */
struct request {
	struct probe_job *probe;
	struct http *h; /* a render's */
	struct MHD_Connection *conn;
	struct render_req rr;
	atomic_int ready;
	struct answer a;
};

static enum MHD_Result
framing_header(
    void *arg, enum MHD_ValueKind kind, const char *name, const char *value)
{
	(void)kind;
	http_framing_add(arg, name, value != NULL ? value : "");
	return MHD_YES;
}

/* libmicrohttpd's unescape callback: http_unescape. */
static size_t
unescape(void *cls, struct MHD_Connection *c, char *s)
{
	return http_unescape(s);
}

/*
 * Queue r (NULL: it could not be made) with its headers, and let it go.
 * A 400 closes the connection: where the request ends is unknown.
 */
static enum MHD_Result
respond_with(struct MHD_Connection *c, unsigned status, const char *type,
    struct MHD_Response *r)
{
	enum MHD_Result rv;

	if (r == NULL)
		return MHD_NO;
	if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type) ==
	        MHD_NO ||
	    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff") ==
	        MHD_NO ||
	    (status == MHD_HTTP_BAD_REQUEST &&
	        MHD_add_response_header(
	            r, MHD_HTTP_HEADER_CONNECTION, "close") == MHD_NO)) {
		MHD_destroy_response(r);
		return MHD_NO;
	}
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		(void)MHD_add_response_header(
		    r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	rv = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rv;
}

/* body[0..len); heap: it passes on (freed once sent). */
static enum MHD_Result
respond(struct MHD_Connection *c, unsigned status, const char *type, char *body,
    size_t len, int heap)
{
	struct MHD_Response *r;

	r = MHD_create_response_from_buffer_with_free_callback(
	    len, body, heap ? &free : NULL);
	if (r == NULL && heap)
		free(body);
	return respond_with(c, status, type, r);
}

/* A /metrics answer: the capsules' samples shared, then the rest. */
struct metrics_body {
	struct metrics_text *shared;
	char *rest;
};

static void
metrics_body_free(void *arg)
{
	struct metrics_body *mb = arg;

	metrics_text_release(mb->shared);
	free(mb->rest);
	free(mb);
}

/* Answer with shared then rest[0..len) (both pass on), not copied. */
static enum MHD_Result
respond_metrics(struct MHD_Connection *c, struct metrics_text *shared,
    char *rest, size_t len)
{
	struct MHD_IoVec iov[2];
	struct MHD_Response *r;
	struct metrics_body *mb;
	unsigned n = 0;

	mb = xmalloc(sizeof *mb);
	mb->shared = shared;
	mb->rest = rest;
	iov[n].iov_base = metrics_text_data(shared, &iov[n].iov_len);
	if (iov[n].iov_len > 0)
		n++;
	iov[n].iov_base = rest;
	iov[n].iov_len = len;
	if (len > 0)
		n++;
	if ((r = MHD_create_response_from_iovec(
	         iov, n, metrics_body_free, mb)) == NULL)
		metrics_body_free(mb);
	return respond_with(c, MHD_HTTP_OK, CT_METRICS, r);
}

static ssize_t
stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	long n;

	if ((n = metrics_stream_read(cls, buf, max)) == -1)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	return n == 0 ? MHD_CONTENT_READER_END_OF_STREAM : (ssize_t)n;
}

static void
stream_free(void *cls)
{
	metrics_stream_free(cls);
}

/* Answer with the stream's text as it is rendered (the stream passes on). */
static enum MHD_Result
respond_stream(struct MHD_Connection *c, struct metrics_stream *ms)
{
	struct MHD_Response *r;

	if ((r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN,
	         HTTP_STREAM_BLOCK, stream_read, ms, stream_free)) == NULL)
		metrics_stream_free(ms);
	return respond_with(c, MHD_HTTP_OK, CT_METRICS, r);
}

static enum MHD_Result
respond_text(struct MHD_Connection *c, unsigned status, const char *text)
{
	return respond(c, status, CT_TEXT, (char *)text, strlen(text), 0);
}

/* A /probe job's answer is ready: answer from the handler's next call. */
static void
probe_resume(void *conn)
{
	MHD_resume_connection(conn);
}

/* Start /probe: the job checks the request, then probes on a thread. */
static enum MHD_Result
probe_begin(struct http *h, struct MHD_Connection *c, struct request *rq)
{
	struct probe_job *j;
	char *text;
	unsigned status;

	j = probe_route_job(h->probes,
	    MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "target"),
	    MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "capsule"),
	    MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "debug"),
	    MHD_lookup_connection_value(
	        c, MHD_HEADER_KIND, "X-Prometheus-Scrape-Timeout-Seconds"),
	    &status, &text);
	if (j == NULL)
		return respond(c, status, CT_TEXT, text, strlen(text), 1);
	rq->probe = j;
	MHD_suspend_connection(c);
	probe_job_start(j, probe_resume, c);
	return MHD_YES;
}

static void
request_done(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct request *rq = *con_cls;

	if (rq == NULL)
		return;
	probe_job_free(rq->probe);
	render_req_clear(&rq->rr);
	answer_clear(&rq->a);
	free(rq);
	*con_cls = NULL;
}

/*
 * On a render thread: render what rq asks for (or, cancelled as the
 * endpoint stops, say so), then resume its connection, which answers
 * from the handler's next call. From the resume on, rq belongs to the
 * connection again.
 */
static void
render(void *arg, int cancelled)
{
	struct request *rq = arg;
	struct MHD_Connection *conn = rq->conn;

	if (cancelled)
		render_cancelled(&rq->a);
	else
		render_route(&rq->h->ctx, &rq->rr, &rq->a);
	atomic_store(&rq->ready, 1);
	MHD_resume_connection(conn);
}

/* Hand a render to the render threads; the connection waits. */
static enum MHD_Result
render_begin(struct http *h, struct MHD_Connection *c, struct request *rq,
    enum route route, const char *name, size_t namelen)
{
	rq->h = h;
	rq->conn = c;
	render_req_init(&rq->rr, route, name, namelen,
	    MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "capsule"),
	    MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "full"));
	MHD_suspend_connection(c);
	workq_push(h->renders, render, rq);
	return MHD_YES;
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
    const char *version, const char *upload_data, size_t *upload_data_size,
    void **con_cls)
{
	struct http *h = cls;
	struct request *rq = *con_cls;
	struct answer a;
	const char *name;
	char *text;
	size_t namelen, len;
	enum route route;
	unsigned status;
	int plain;

	/* Refused at once: the body is not read and the connection closes. */
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return respond_text(c, MHD_HTTP_METHOD_NOT_ALLOWED,
		    "405 method not allowed: only GET and HEAD\n");
	if (rq == NULL) {
		struct http_framing f = {NULL, 0, 0, 0};

		(void)MHD_get_connection_values(
		    c, MHD_HEADER_KIND, framing_header, &f);
		if (http_framing_check(&f) == -1)
			return respond_text(c, MHD_HTTP_BAD_REQUEST,
			    "400 bad request: the body's length is "
			    "ambiguous\n");
		/*
		 * The first call comes as soon as the headers are in; answer
		 * from a later one, when the whole request has been received.
		 * libmicrohttpd 0.9.75 takes a response queued on the first
		 * call for an early answer and closes the connection after it:
		 * no keep-alive, and pipelined requests are dropped.
		 */
		*con_cls = xcalloc(1, sizeof *rq);
		return MHD_YES;
	}
	/* A GET with a body: wait for it to be consumed (and ignore it). */
	if (*upload_data_size != 0) {
		*upload_data_size = 0;
		return MHD_YES;
	}

	if (rq->probe != NULL) {
		/* A /probe whose probe finished: answer it. */
		if (!probe_job_ready(rq->probe))
			return MHD_YES;
		text = probe_job_answer(rq->probe, &len, &status, &plain);
		return respond(
		    c, status, plain ? CT_TEXT : CT_METRICS, text, len, 1);
	}
	if (rq->h != NULL) {
		/* A render is done: answer it; the body passes on. */
		if (!atomic_load(&rq->ready))
			return MHD_YES;
		a = rq->a;
		memset(&rq->a, 0, sizeof rq->a);
		if (a.stream != NULL)
			return respond_stream(c, a.stream);
		if (a.shared != NULL)
			return respond_metrics(c, a.shared, a.body, a.len);
		return respond(c, a.status, a.type, a.body, a.len, a.heap);
	}
	route = http_route(url, strlen(url), &name, &namelen);
	switch (route) {
	case ROUTE_PAGE:
	case ROUTE_METRICS:
	case ROUTE_CAPSULES:
	case ROUTE_CAPSULE:
	case ROUTE_SEQ_PAGE:
		return render_begin(h, c, rq, route, name, namelen);
	case ROUTE_HEALTHZ:
		if (atomic_load(&h->heartbeat) < 0)
			return respond_text(
			    c, MHD_HTTP_SERVICE_UNAVAILABLE, "starting\n");
		if ((long long)clock_mono() - atomic_load(&h->heartbeat) >
		    HEARTBEAT_STALE)
			return respond_text(c, MHD_HTTP_SERVICE_UNAVAILABLE,
			    "scheduler stalled\n");
		return respond_text(c, MHD_HTTP_OK, "ok\n");
	case ROUTE_PROBE:
		return probe_begin(h, c, rq);
	case ROUTE_NOT_FOUND:
		break;
	}
	return respond_text(c, MHD_HTTP_NOT_FOUND, "404 not found\n");
}

/* libmicrohttpd's messages, one line each, at info level. */
static void __attribute__((format(printf, 2, 0)))
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];

	vsnprintf(line, sizeof line, fmt, ap);
	line[strcspn(line, "\r\n")] = '\0';
	log_info("http: %s", line);
}

struct http *
http_start(const struct conf *conf, struct store *store,
    struct tofu_store *tofu, const struct daemon_info *info)
{
	struct http *h;
	size_t i;
	unsigned flags;

	h = xcalloc(1, sizeof *h);
	h->ctx.store = store;
	h->probes = probe_route_new(tofu);
	h->renders = workq_new(HTTP_RENDER_THREADS);
	h->ctx.info = info;
	h->ctx.metrics = metrics_cache_new();
	/*
	 * Not healthy until the main loop beats, after the scheduler has the
	 * configuration: until then /probe and the API have nothing to serve.
	 */
	atomic_init(&h->heartbeat, -1);
	h->d = xcalloc(conf->nlisten, sizeof *h->d);
	for (i = 0; i < conf->nlisten; i++) {
		const struct listen_addr *l = &conf->listen[i];

		flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG |
		        MHD_ALLOW_SUSPEND_RESUME;
		if (l->ss.ss_family == AF_INET6)
			flags |= MHD_USE_IPv6;
		/* The logger goes first so that no message escapes it. */
		h->d[i] = MHD_start_daemon(flags, 0, NULL, NULL, handle, h,
		    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, (void *)NULL,
		    MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)&l->ss,
		    MHD_OPTION_UNESCAPE_CALLBACK, unescape, (void *)NULL,
		    MHD_OPTION_CONNECTION_LIMIT,
		    (unsigned int)HTTP_CONNECTION_LIMIT,
		    MHD_OPTION_PER_IP_CONNECTION_LIMIT,
		    (unsigned int)HTTP_PER_IP_LIMIT,
		    MHD_OPTION_CONNECTION_TIMEOUT,
		    (unsigned int)HTTP_IDLE_TIMEOUT,
		    MHD_OPTION_CONNECTION_MEMORY_LIMIT,
		    (size_t)HTTP_MEMORY_LIMIT,
		    MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int)1,
		    MHD_OPTION_NOTIFY_COMPLETED, request_done, (void *)NULL,
		    MHD_OPTION_END);
		if (h->d[i] == NULL) {
			log_warnx("cannot listen on %s (address in use, or "
			          "not an address of this machine?)",
			    l->text);
			h->nd = i;
			http_stop(h);
			return NULL;
		}
		log_info("listening on http://%s/", l->text);
	}
	h->nd = conf->nlisten;
	return h;
}

void
http_stop(struct http *h)
{
	size_t i;

	if (h == NULL)
		return;
	/*
	 * Suspended connections must be resumed before MHD stops: renders
	 * queued are cancelled, those running finish, /probe jobs are
	 * abandoned. Until MHD has stopped, a new render or /probe is
	 * refused ("stopping"): the queue and the route are freed last.
	 */
	workq_stop(h->renders);
	probe_route_stop(h->probes);
	for (i = 0; i < h->nd; i++)
		MHD_stop_daemon(h->d[i]);
	probe_route_free(h->probes);
	workq_free(h->renders);
	metrics_cache_free(h->ctx.metrics);
	free(h->d);
	free(h);
}

void
http_heartbeat(struct http *h)
{
	atomic_store(&h->heartbeat, (long long)clock_mono());
}
