/*
 * /probe: probe a capsule (?capsule=NAME) or an allowed target
 * (?target=URL) now and answer in blackbox_exporter's names. A job holds
 * the running configuration it was checked against; its probe runs on a
 * detached thread of its own while the connection waits, and its
 * deadline is cut to Prometheus's scrape timeout so that the answer
 * arrives in time. At most `concurrency` jobs run at once; more are
 * refused (503) rather than queued. probe_route_free abandons them all
 * through a cancel pipe every probe polls and waits for each to answer.
 *
 * A target that only a probe-allow address pattern may admit (a host
 * name, allow.h) is refused after its lookup instead: the probe connects
 * only to the addresses the pattern admits, and with none the answer is
 * 403, as for any target not allowed.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "allow.h"
#include "api.h"
#include "buf.h"
#include "conf.h"
#include "log.h"
#include "metrics.h"
#include "probe.h"
#include "probe_route.h"
#include "report.h"
#include "xmalloc.h"

/* Subtracted from Prometheus's scrape timeout so the answer arrives in time. */
#define SCRAPE_TIMEOUT_OFFSET 0.5
#define PROBE_MIN_TIMEOUT 0.1

struct probe_route {
	struct tofu_store *tofu;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned probes; /* in flight */
	int stopped;     /* no new job */
	int cancel[2];   /* readable: abandon every probe */
};

struct probe_job {
	struct probe_route *route;
	struct conf *conf; /* held */
	struct url url;
	char *capsule; /* name, or NULL for ?target= */
	struct probe_req req;
	struct probe_result res;
	int debug;
	enum allow allow;   /* ALLOW_ADDRESS: at some addresses only */
	unsigned naddr_ok;  /* addresses allow_address admitted */
	struct buf refused; /* the others, for the log */
	unsigned status;    /* of the answer */
	struct buf out;
	atomic_int ready;
	void (*done)(void *);
	void *arg;
};

int
probe_route_params(const char *target, const char *capsule, const char *debug,
    const char *scrape_timeout, struct probe_params *p, const char **err)
{
	char *end;
	double t;

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
		else if (strcmp(debug, "false") != 0 &&
		         strcmp(debug, "0") != 0) {
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

struct probe_route *
probe_route_new(struct tofu_store *tofu)
{
	struct probe_route *r;

	r = xcalloc(1, sizeof *r);
	r->tofu = tofu;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	if (pipe2(r->cancel, O_CLOEXEC | O_NONBLOCK) == -1)
		fatal("pipe");
	return r;
}

void
probe_route_stop(struct probe_route *r)
{
	pthread_mutex_lock(&r->lock);
	r->stopped = 1;
	pthread_mutex_unlock(&r->lock);
	(void)!write(r->cancel[1], "", 1);
	pthread_mutex_lock(&r->lock);
	while (r->probes > 0)
		pthread_cond_wait(&r->cond, &r->lock);
	pthread_mutex_unlock(&r->lock);
}

void
probe_route_free(struct probe_route *r)
{
	if (r == NULL)
		return;
	probe_route_stop(r);
	close(r->cancel[0]);
	close(r->cancel[1]);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

void
probe_job_free(struct probe_job *j)
{
	if (j == NULL)
		return;
	result_clear(&j->res);
	url_free(&j->url);
	free(j->capsule);
	buf_free(&j->out);
	buf_free(&j->refused);
	conf_free(j->conf);
	free(j);
}

/* A refusal: NULL, with the status and a line of text. */
static struct probe_job *
refuse(struct probe_job *j, unsigned code, const char *why, unsigned *status,
    char **text)
{
	probe_job_free(j);
	*status = code;
	xasprintf(text, "%u %s\n", code, why);
	return NULL;
}

/* Whether the probe may connect to sa; on the probe's thread. */
static int
job_address_ok(void *arg, const struct sockaddr *sa)
{
	struct probe_job *j = arg;
	char text[INET6_ADDRSTRLEN];
	const void *a;

	if (allow_address(j->conf, sa)) {
		j->naddr_ok++;
		return 1;
	}
	if (sa->sa_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	else
		a = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	if (inet_ntop(sa->sa_family, a, text, sizeof text) != NULL)
		buf_printf(
		    &j->refused, "%s%s", j->refused.len ? ", " : "", text);
	return 0;
}

struct probe_job *
probe_route_job(struct probe_route *r, const char *target, const char *capsule,
    const char *debug, const char *scrape_timeout, unsigned *status,
    char **text)
{
	struct probe_params p;
	struct probe_job *j;
	const struct conf *conf;
	const struct capsule_conf *cap;
	const char *err;

	if (probe_route_params(
	        target, capsule, debug, scrape_timeout, &p, &err) == -1) {
		*status = 400;
		xasprintf(text, "400 bad request: %s\n", err);
		return NULL;
	}
	j = xcalloc(1, sizeof *j);
	j->route = r;
	j->debug = p.debug;
	j->status = 200;
	buf_init(&j->out);
	buf_init(&j->refused);
	result_init(&j->res);
	if ((j->conf = conf_running()) == NULL) {
		if (p.has_url)
			url_free(&p.url);
		return refuse(j, 503, "not configured yet", status, text);
	}
	conf = j->conf;
	if (p.capsule != NULL) {
		if ((cap = conf_capsule(conf, p.capsule)) == NULL)
			return refuse(j, 404, "no such capsule", status, text);
		j->capsule = xstrdup(cap->name);
		url_copy(&j->url, &cap->url);
		probe_req_for(conf, cap, CHECK_PAGE, &j->req);
		j->req.url = &j->url;
		j->req.tofu = r->tofu;
	} else {
		j->url = p.url;
		if ((j->allow = allow_probe(conf, &j->url)) == ALLOW_NONE) {
			log_info("/probe: %s refused (not a capsule, not in "
			         "probe-allow)",
			    j->url.text);
			return refuse(j, 403,
			    "forbidden: target is not a "
			    "configured capsule nor allowed by probe-allow",
			    status, text);
		}
		probe_req_init(&j->req, &j->url);
		j->req.timeout = conf->timeout;
		j->req.max_body = conf->max_body;
		if (j->allow == ALLOW_ADDRESS) {
			j->req.address_ok = job_address_ok;
			j->req.address_arg = j;
		}
	}
	if (p.scrape_timeout > 0 &&
	    p.scrape_timeout - SCRAPE_TIMEOUT_OFFSET < j->req.timeout) {
		j->req.timeout = p.scrape_timeout - SCRAPE_TIMEOUT_OFFSET;
		if (j->req.timeout < PROBE_MIN_TIMEOUT)
			j->req.timeout = PROBE_MIN_TIMEOUT;
	}
	j->req.cancel_fd = r->cancel[0];

	pthread_mutex_lock(&r->lock);
	if (r->stopped) {
		pthread_mutex_unlock(&r->lock);
		return refuse(j, 503, "stopping", status, text);
	}
	if (r->probes >= conf->concurrency) {
		pthread_mutex_unlock(&r->lock);
		return refuse(
		    j, 503, "too many probes in flight", status, text);
	}
	r->probes++;
	pthread_mutex_unlock(&r->lock);
	return j;
}

/* The answer is ready: hand the job back, then free the slot. */
static void
job_finish(struct probe_job *j)
{
	struct probe_route *r = j->route;

	atomic_store(&j->ready, 1);
	/* From here on the job belongs to the caller. */
	j->done(j->arg);
	pthread_mutex_lock(&r->lock);
	r->probes--;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

static void *
job_run(void *arg)
{
	struct probe_job *j = arg;
	json_t *json;
	char *text;

	probe_run(&j->req, &j->res);
	if (j->allow == ALLOW_ADDRESS && j->naddr_ok == 0) {
		if (j->refused.len > 0)
			log_info("/probe: %s refused (no address of %s is in "
			         "probe-allow: %s)",
			    j->url.text, j->url.host, j->refused.data);
		else
			log_info("/probe: %s refused (no address of %s to "
			         "check against probe-allow: %s)",
			    j->url.text, j->url.host,
			    j->res.message ? j->res.message : "none");
		j->status = 403;
		buf_adds(&j->out, "403 forbidden: no address of the target's "
		                  "host is allowed by probe-allow\n");
	} else if (j->debug) {
		buf_adds(&j->out, "Stages\n\n");
		report_stages(&j->out, &j->res);
		buf_adds(&j->out, "\nProbe\n\n");
		report_text(&j->out, &j->res);
		buf_adds(&j->out, "\nMetrics\n\n");
		metrics_probe(&j->out, &j->res);
		buf_adds(&j->out, "\nResult\n\n");
		json =
		    api_result(&j->res, j->capsule ? j->capsule : j->url.text);
		text = json ? json_dumps(json, API_TERMINAL_FLAGS) : NULL;
		buf_adds(&j->out, text ? text : "null");
		buf_addc(&j->out, '\n');
		free(text);
		json_decref(json);
	} else
		metrics_probe(&j->out, &j->res);
	job_finish(j);
	return NULL;
}

void
probe_job_start(struct probe_job *j, void (*done)(void *), void *arg)
{
	pthread_attr_t attr;
	pthread_t tid;

	j->done = done;
	j->arg = arg;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&tid, &attr, job_run, j) != 0) {
		result_fail(&j->res, REASON_TIMEOUT, STAGE_NONE,
		    "no thread for the probe");
		metrics_probe(&j->out, &j->res);
		job_finish(j);
	}
	pthread_attr_destroy(&attr);
}

int
probe_job_ready(const struct probe_job *j)
{
	return atomic_load(&j->ready);
}

char *
probe_job_answer(struct probe_job *j, size_t *len, unsigned *status, int *plain)
{
	*status = j->status;
	*plain = j->debug || j->status != 200;
	return buf_steal(&j->out, len);
}
