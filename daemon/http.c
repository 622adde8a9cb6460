/*
 * The HTTP endpoint with libmicrohttpd. One MHD daemon per listen
 * address, each with an internal polling thread (epoll where available).
 * Limits keep slow or idle clients from starving it: a connection cap,
 * a per-IP cap, an idle timeout and a per-connection memory limit (which
 * also bounds the request line and headers). Only GET and HEAD are
 * served; every response has a Content-Type.
 */
#include "config.h"

#include <sys/socket.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "buf.h"
#include "cert.h"
#include "clock.h"
#include "conf.h"
#include "hex.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "page.h"
#include "probe.h"
#include "report.h"
#include "store.h"
#include "url.h"
#include "xmalloc.h"

#define HTTP_CONNECTION_LIMIT	4096
#define HTTP_PER_IP_LIMIT	1024
#define HTTP_IDLE_TIMEOUT	15	/* seconds */
#define HTTP_MEMORY_LIMIT	(64 * 1024)	/* per connection */
#define HEARTBEAT_STALE		10	/* seconds without one: unhealthy */

#define CT_TEXT		"text/plain; charset=utf-8"
#define CT_METRICS	"text/plain; version=0.0.4; charset=utf-8"
#define CT_JSON		"application/json"
#define CT_HTML		"text/html; charset=utf-8"

/* Subtracted from Prometheus's scrape timeout so the answer arrives in time. */
#define SCRAPE_TIMEOUT_OFFSET	0.5
#define PROBE_MIN_TIMEOUT	0.1

struct http {
	struct MHD_Daemon	**d;
	size_t			  nd;
	struct store		 *store;
	struct tofu_store	 *tofu;
	const struct daemon_info *info;
	struct metrics_cache	 *metrics;
	atomic_llong		  heartbeat;	/* monotonic seconds; -1 none yet */

	/* /probe: probes run on threads of their own while the connection
	 * is suspended; http_stop abandons them and waits. */
	pthread_mutex_t		  lock;
	pthread_cond_t		  cond;
	unsigned		  probes;	/* in flight */
	int			  cancel[2];
};

/* One /probe request. */
struct probe_job {
	struct http		*h;
	struct MHD_Connection	*conn;
	struct conf		*conf;		/* held */
	struct url		 url;
	char			*capsule;	/* name, or NULL for ?target= */
	struct probe_req	 req;
	struct probe_result	 res;
	int			 debug;
	struct buf		 out;
	atomic_int		 done;
};

enum route
http_route(const char *path, size_t len, const char **name, size_t *namelen)
{
	static const struct {
		const char	*path;
		enum route	 route;
	} exact[] = {
		{ "/", ROUTE_PAGE },
		{ "/metrics", ROUTE_METRICS },
		{ "/api/v1/capsules", ROUTE_CAPSULES },
		{ "/api/v1/capsules/", ROUTE_CAPSULES },
		{ "/healthz", ROUTE_HEALTHZ },
		{ "/probe", ROUTE_PROBE },
	};
	static const char prefix[] = "/api/v1/capsules/";
	size_t i, plen = sizeof prefix - 1;

	*name = NULL;
	*namelen = 0;
	for (i = 0; i < sizeof exact / sizeof exact[0]; i++)
		if (strlen(exact[i].path) == len &&
		    memcmp(exact[i].path, path, len) == 0)
			return exact[i].route;
	if (len > plen && memcmp(path, prefix, plen) == 0 &&
	    memchr(path + plen, '\0', len - plen) == NULL) {
		*name = path + plen;
		*namelen = len - plen;
		return ROUTE_CAPSULE;
	}
	return ROUTE_NOT_FOUND;
}

/*
 * The handler gets the decoded path as a C string, so a decoded %00 would
 * cut it short (/api/v1/capsules/ok%00x would name capsule "ok"). Decode
 * every %HH as libmicrohttpd does, but leave %00 as it is.
 */
static size_t
unescape(void *cls, struct MHD_Connection *c, char *s)
{
	char	*r = s, *w = s;
	int	 hi, lo;

	(void)cls;
	(void)c;
	while (*r != '\0') {
		if (r[0] == '%' && (hi = hex_value(r[1])) >= 0 &&
		    (lo = hex_value(r[2])) >= 0 && (hi | lo) != 0) {
			*w++ = (char)(hi << 4 | lo);
			r += 3;
		} else
			*w++ = *r++;
	}
	*w = '\0';
	return (size_t)(w - s);
}

static enum MHD_Result
respond(struct MHD_Connection *c, unsigned status, const char *type,
    char *body, size_t len, int heap)
{
	struct MHD_Response	*r;
	enum MHD_Result		 rv;

	if (heap)
		r = MHD_create_response_from_buffer_with_free_callback(len,
		    body, &free);
	else
		r = MHD_create_response_from_buffer(len, body,
		    MHD_RESPMEM_PERSISTENT);
	if (r == NULL) {
		if (heap)
			free(body);
		return MHD_NO;
	}
	if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
	    type) == MHD_NO ||
	    MHD_add_response_header(r, "X-Content-Type-Options",
	    "nosniff") == MHD_NO) {
		MHD_destroy_response(r);
		return MHD_NO;
	}
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		(void)MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW,
		    "GET, HEAD");
	rv = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rv;
}

static enum MHD_Result
respond_literal(struct MHD_Connection *c, unsigned status, const char *text)
{
	return respond(c, status, CT_TEXT, (char *)text, strlen(text), 0);
}

static enum MHD_Result
respond_buf(struct MHD_Connection *c, const char *type, struct buf *b)
{
	size_t	 len;
	char	*p;

	p = buf_steal(b, &len);
	return respond(c, MHD_HTTP_OK, type, p, len, 1);
}

int
http_probe_params(const char *target, const char *capsule, const char *debug,
    const char *scrape_timeout, struct probe_params *p, const char **err)
{
	char	*end;
	double	 t;

	memset(p, 0, sizeof *p);
	p->scrape_timeout = -1;
	if ((target == NULL) == (capsule == NULL)) {
		*err = "give exactly one of target=URL or capsule=NAME";
		return -1;
	}
	if (target != NULL &&
	    url_parse(target, strlen(target), &p->url, err) == -1)
		return -1;
	p->has_url = target != NULL;
	p->capsule = capsule;
	if (debug != NULL) {
		if (strcmp(debug, "true") == 0 || strcmp(debug, "1") == 0)
			p->debug = 1;
		else if (strcmp(debug, "false") != 0 && strcmp(debug, "0") != 0) {
			*err = "debug must be true or false";
			goto fail;
		}
	}
	if (scrape_timeout != NULL) {
		t = strtod(scrape_timeout, &end);
		if (end == scrape_timeout || *end != '\0' || !(t > 0) ||
		    t > 86400) {
			*err = "bad X-Prometheus-Scrape-Timeout-Seconds";
			goto fail;
		}
		p->scrape_timeout = t;
	}
	return 0;
fail:
	if (p->has_url)
		url_free(&p->url);
	p->has_url = 0;
	return -1;
}

static void
probe_job_free(struct probe_job *j)
{
	if (j == NULL)
		return;
	result_clear(&j->res);
	url_free(&j->url);
	free(j->capsule);
	buf_free(&j->out);
	conf_free(j->conf);
	free(j);
}

/*
 * The stages of a probe for ?debug=true, one line each: ok (with its
 * time and what it found), FAILED (with the reason) or not reached. Only
 * gemwatch's own strings and numbers are printed; report_text escapes
 * what the server sent.
 */
static void
probe_debug_stages(struct buf *b, const struct probe_result *r)
{
	static const int phase_of[STAGE__COUNT] = {
		[STAGE_NONE] = -1,
		[STAGE_RESOLVE] = PHASE_RESOLVE,
		[STAGE_CONNECT] = PHASE_CONNECT,
		[STAGE_TLS] = PHASE_TLS,
		[STAGE_REQUEST] = -1,
		[STAGE_HEADER] = PHASE_HEADER,
		[STAGE_BODY] = PHASE_BODY,
	};
	enum stage	 s;
	char		 what[96];
	double		 d;
	int		 failed, reached;

	for (s = STAGE_RESOLVE; s < STAGE__COUNT; s++) {
		/* The request has no timer: sent if a header was awaited. */
		d = phase_of[s] >= 0 ? r->dur[phase_of[s]] : -1;
		reached = d >= 0 ||
		    (s == STAGE_REQUEST && r->dur[PHASE_HEADER] >= 0);
		failed = !r->success && r->stage == s;
		what[0] = '\0';
		if (failed)
			snprintf(what, sizeof what, "reason %s",
			    reason_name(r->reason));
		else if (!reached)
			;
		else if (s == STAGE_RESOLVE && r->ip_protocol != 0)
			snprintf(what, sizeof what, "%s (IPv%d)", r->address,
			    r->ip_protocol);
		else if (s == STAGE_CONNECT && r->ip_protocol != 0)
			snprintf(what, sizeof what, "port %d", r->port);
		else if (s == STAGE_TLS && r->tls_version != NULL)
			snprintf(what, sizeof what, "%s", r->tls_version);
		else if (s == STAGE_HEADER && r->status >= 0)
			snprintf(what, sizeof what, "status %d", r->status);
		else if (s == STAGE_BODY && r->body_bytes >= 0)
			snprintf(what, sizeof what, "%lld bytes, end %s",
			    (long long)r->body_bytes, end_name(r->end) ?
			    end_name(r->end) : "none");
		buf_printf(b, "  %-8s  %s", stage_name(s), failed ? "FAILED" :
		    reached ? "ok" : "not reached");
		/* Columns: "FAILED" and "ok" are padded to the same width. */
		if (d >= 0)
			buf_printf(b, "%*s%10.6fs", failed ? 1 : 5, "", d);
		else if (what[0] != '\0')
			buf_printf(b, "%*s", failed ? 12 : 16, "");
		if (what[0] != '\0')
			buf_printf(b, "  %s", what);
		buf_addc(b, '\n');
	}
}

static void *
probe_job_run(void *arg)
{
	struct probe_job	*j = arg;
	struct http		*h = j->h;
	json_t			*json;
	char			*text;

	probe_run(&j->req, &j->res);
	if (j->debug) {
		buf_adds(&j->out, "Stages\n\n");
		probe_debug_stages(&j->out, &j->res);
		buf_adds(&j->out, "\nProbe\n\n");
		report_text(&j->out, &j->res);
		buf_adds(&j->out, "\nMetrics\n\n");
		metrics_probe(&j->out, &j->res);
		buf_adds(&j->out, "\nResult\n\n");
		json = api_result(&j->res, j->capsule ? j->capsule :
		    j->url.text);
		text = json ? json_dumps(json, JSON_INDENT(2) |
		    JSON_REAL_PRECISION(15)) : NULL;
		buf_adds(&j->out, text ? text : "null");
		buf_addc(&j->out, '\n');
		free(text);
		json_decref(json);
	} else
		metrics_probe(&j->out, &j->res);
	atomic_store(&j->done, 1);
	/* From here on the job belongs to libmicrohttpd's thread. */
	MHD_resume_connection(j->conn);
	pthread_mutex_lock(&h->lock);
	h->probes--;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

/* Start /probe: check the request, then probe on a thread of its own. */
static enum MHD_Result
probe_start(struct http *h, struct MHD_Connection *c, void **con_cls)
{
	struct probe_params	 p;
	struct probe_job	*j;
	const struct conf	*conf;
	const struct capsule_conf *cap;
	const char		*err;
	pthread_attr_t		 attr;
	pthread_t		 tid;
	struct buf		 b;
	char			*text;
	size_t			 len;

	if (http_probe_params(
	    MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "target"),
	    MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "capsule"),
	    MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "debug"),
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    "X-Prometheus-Scrape-Timeout-Seconds"), &p, &err) == -1) {
		buf_init(&b);
		buf_printf(&b, "400 bad request: %s\n", err);
		text = buf_steal(&b, &len);
		return respond(c, MHD_HTTP_BAD_REQUEST, CT_TEXT, text, len, 1);
	}
	j = xcalloc(1, sizeof *j);
	j->h = h;
	j->conn = c;
	j->debug = p.debug;
	buf_init(&j->out);
	result_init(&j->res);
	if ((j->conf = conf_running()) == NULL) {
		if (p.has_url)
			url_free(&p.url);
		probe_job_free(j);
		return respond_literal(c, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "503 not configured yet\n");
	}
	conf = j->conf;
	if (p.capsule != NULL) {
		if ((cap = conf_capsule(conf, p.capsule)) == NULL) {
			probe_job_free(j);
			return respond_literal(c, MHD_HTTP_NOT_FOUND,
			    "404 no such capsule\n");
		}
		j->capsule = xstrdup(cap->name);
		url_copy(&j->url, &cap->url);
		probe_req_for(conf, cap, CHECK_PAGE, &j->req);
		j->req.url = &j->url;
		j->req.tofu = h->tofu;
	} else {
		j->url = p.url;
		if (!conf_probe_allowed(conf, &j->url)) {
			log_info("/probe: %s refused (not a capsule, not in "
			    "probe-allow)", j->url.text);
			probe_job_free(j);
			return respond_literal(c, MHD_HTTP_FORBIDDEN,
			    "403 forbidden: target is not a configured capsule "
			    "nor allowed by probe-allow\n");
		}
		probe_req_init(&j->req, &j->url);
		j->req.timeout = conf->timeout;
		j->req.max_body = conf->max_body;
	}
	if (p.scrape_timeout > 0 &&
	    p.scrape_timeout - SCRAPE_TIMEOUT_OFFSET < j->req.timeout) {
		j->req.timeout = p.scrape_timeout - SCRAPE_TIMEOUT_OFFSET;
		if (j->req.timeout < PROBE_MIN_TIMEOUT)
			j->req.timeout = PROBE_MIN_TIMEOUT;
	}
	j->req.cancel_fd = h->cancel[0];

	pthread_mutex_lock(&h->lock);
	if (h->probes >= conf->concurrency) {
		pthread_mutex_unlock(&h->lock);
		probe_job_free(j);
		return respond_literal(c, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "503 too many probes in flight\n");
	}
	h->probes++;
	pthread_mutex_unlock(&h->lock);

	*con_cls = j;
	MHD_suspend_connection(c);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&tid, &attr, probe_job_run, j) != 0) {
		pthread_attr_destroy(&attr);
		/* Answer from the handler's next call. */
		result_fail(&j->res, REASON_TIMEOUT, STAGE_NONE,
		    "no thread for the probe");
		metrics_probe(&j->out, &j->res);
		atomic_store(&j->done, 1);
		MHD_resume_connection(c);
		pthread_mutex_lock(&h->lock);
		h->probes--;
		pthread_cond_broadcast(&h->cond);
		pthread_mutex_unlock(&h->lock);
		return MHD_YES;
	}
	pthread_attr_destroy(&attr);
	return MHD_YES;
}

/* The connection's *con_cls once its headers are in (see handle). */
static char headers_seen;

static void
request_done(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	if (*con_cls != &headers_seen)
		probe_job_free(*con_cls);
	*con_cls = NULL;
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	static const char no_capsule[] = "{\"error\":\"no such capsule\"}";
	struct http	*h = cls;
	struct buf	 b;
	const char	*name;
	char		*text, *cname;
	size_t		 namelen;
	enum route	 route;

	/* Refused at once: the body is not read and the connection closes. */
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return respond_literal(c, MHD_HTTP_METHOD_NOT_ALLOWED,
		    "405 method not allowed: only GET and HEAD\n");
	/*
	 * The first call comes as soon as the headers are in; answer from a
	 * later one, when the whole request has been received. libmicrohttpd
	 * 0.9.75 takes a response queued on the first call for an early
	 * answer and closes the connection after it: no keep-alive, and
	 * pipelined requests are dropped.
	 */
	if (*con_cls == NULL) {
		*con_cls = &headers_seen;
		return MHD_YES;
	}
	/* A GET with a body: wait for it to be consumed (and ignore it). */
	if (*upload_data_size != 0) {
		*upload_data_size = 0;
		return MHD_YES;
	}

	if (*con_cls != &headers_seen) {
		/* A /probe whose probe finished: answer it. */
		struct probe_job *j = *con_cls;

		if (!atomic_load(&j->done))
			return MHD_YES;
		return respond_buf(c, j->debug ? CT_TEXT : CT_METRICS,
		    &j->out);
	}
	route = http_route(url, strlen(url), &name, &namelen);
	buf_init(&b);
	switch (route) {
	case ROUTE_PAGE:
		page_render(&b, h->store, clock_wall());
		return respond_buf(c, CT_HTML, &b);
	case ROUTE_METRICS:
		metrics_render_cached(&b, h->metrics, h->store, h->info);
		return respond_buf(c, CT_METRICS, &b);
	case ROUTE_CAPSULES:
		if ((text = api_capsules(h->store)) == NULL)
			return respond_literal(c,
			    MHD_HTTP_INTERNAL_SERVER_ERROR, "500 error\n");
		return respond(c, MHD_HTTP_OK, CT_JSON, text, strlen(text), 1);
	case ROUTE_CAPSULE:
		cname = xstrndup(name, namelen);
		text = api_capsule(h->store, cname);
		free(cname);
		if (text == NULL)
			return respond(c, MHD_HTTP_NOT_FOUND, CT_JSON,
			    (char *)no_capsule, sizeof no_capsule - 1, 0);
		return respond(c, MHD_HTTP_OK, CT_JSON, text, strlen(text), 1);
	case ROUTE_HEALTHZ:
		if (atomic_load(&h->heartbeat) < 0)
			return respond_literal(c,
			    MHD_HTTP_SERVICE_UNAVAILABLE, "starting\n");
		if ((long long)clock_mono() - atomic_load(&h->heartbeat) >
		    HEARTBEAT_STALE)
			return respond_literal(c,
			    MHD_HTTP_SERVICE_UNAVAILABLE,
			    "scheduler stalled\n");
		return respond_literal(c, MHD_HTTP_OK, "ok\n");
	case ROUTE_PROBE:
		return probe_start(h, c, con_cls);
	case ROUTE_NOT_FOUND:
		break;
	}
	return respond_literal(c, MHD_HTTP_NOT_FOUND, "404 not found\n");
}

static void __attribute__((format(printf, 2, 0)))
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	size_t n;

	vsnprintf(line, sizeof line, fmt, ap);
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	log_info("http: %s", line);
}

struct http *
http_start(const struct conf *conf, struct store *store,
    struct tofu_store *tofu, const struct daemon_info *info)
{
	struct http	*h;
	size_t		 i;
	unsigned	 flags;

	h = xcalloc(1, sizeof *h);
	h->store = store;
	h->tofu = tofu;
	h->info = info;
	h->metrics = metrics_cache_new();
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->cond, NULL);
	if (pipe2(h->cancel, O_CLOEXEC | O_NONBLOCK) == -1)
		fatal("pipe");
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
			    "not an address of this machine?)", l->text);
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
	/* Suspended /probe connections must be resumed before MHD stops. */
	(void)!write(h->cancel[1], "", 1);
	pthread_mutex_lock(&h->lock);
	while (h->probes > 0)
		pthread_cond_wait(&h->cond, &h->lock);
	pthread_mutex_unlock(&h->lock);
	for (i = 0; i < h->nd; i++)
		MHD_stop_daemon(h->d[i]);
	close(h->cancel[0]);
	close(h->cancel[1]);
	pthread_cond_destroy(&h->cond);
	pthread_mutex_destroy(&h->lock);
	metrics_cache_free(h->metrics);
	free(h->d);
	free(h);
}

void
http_heartbeat(struct http *h)
{
	atomic_store(&h->heartbeat, (long long)clock_mono());
}
