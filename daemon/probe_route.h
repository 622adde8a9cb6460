/*
 * The /probe route's jobs (SPEC.md §6, README "Scaling out"): the
 * request's parameters, the checks against the running configuration,
 * one thread per probe under the configured concurrency, and the answer
 * (blackbox-style metrics, or ?debug=true's text). http.c suspends the
 * connection while a job runs; nothing here knows libmicrohttpd.
 */
#ifndef GEMWATCH_PROBE_ROUTE_H
#define GEMWATCH_PROBE_ROUTE_H

#include <stddef.h>

#include "url.h"

struct tofu_store;

/* What a /probe request asks for. */
struct probe_params {
	int has_url;
	struct url url;        /* ?target=, when has_url */
	const char *capsule;   /* ?capsule=, borrowed */
	int debug;             /* ?debug=true */
	double scrape_timeout; /* seconds, or -1 */
};

/*
 * Check /probe's parameters (each NULL when absent). 0, with p filled
 * (free p->url when has_url), or -1 with *err set. Pure; fuzzed.
 */
int probe_route_params(const char *target, const char *capsule,
    const char *debug, const char *scrape_timeout, struct probe_params *p,
    const char **err);

struct probe_route;
struct probe_job;

/* The route, whose probes record certificates in tofu (borrowed). */
struct probe_route *probe_route_new(struct tofu_store *tofu);
/*
 * Refuse new jobs (503 "stopping"), abandon the probes in flight and
 * wait until each job has called its done, so that the caller may stop
 * serving; requests may still come until it has.
 */
void probe_route_stop(struct probe_route *);
/* Stop if not yet stopped, and free. The jobs belong to their connections. */
void probe_route_free(struct probe_route *);

/*
 * A job for a /probe request with these parameters (as for
 * probe_route_params), checked against the running configuration. NULL
 * when refused, with *status the HTTP status and *text the answer (a
 * line; the caller frees it).
 */
struct probe_job *probe_route_job(struct probe_route *, const char *target,
    const char *capsule, const char *debug, const char *scrape_timeout,
    unsigned *status, char **text);
/*
 * Probe on a thread of the job's own; done(arg) is called from it once
 * the answer is ready (from here, when no thread can be had). From then
 * on the job belongs to the caller again.
 */
void probe_job_start(struct probe_job *, void (*done)(void *), void *arg);
/* Whether the answer is ready. Thread-safe. */
int probe_job_ready(const struct probe_job *);
/*
 * The answer, once ready: its text (the caller frees it), its HTTP status
 * (403 when no address of the target was allowed, else 200) and whether
 * it is plain text (?debug=true's, or a refusal's) rather than metrics.
 */
char *probe_job_answer(
    struct probe_job *, size_t *len, unsigned *status, int *plain);
void probe_job_free(struct probe_job *);

#endif
