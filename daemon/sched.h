/*
 * The scheduler: when to probe what. Each capsule's check is probed once
 * per interval, first probes spread over the first interval, at most
 * `concurrency` probes in flight on a pool of worker threads. Workers
 * publish into the store; all scheduling state stays in the main thread.
 */
#ifndef GEMWATCH_SCHED_H
#define GEMWATCH_SCHED_H

#include "result.h"

struct capsule_conf;
struct conf;
struct probe_req;
struct store;
struct tofu_store;

struct sched;

/* store and tofu are borrowed and must outlive the scheduler. */
struct sched *sched_new(struct store *, struct tofu_store *);
/* Abandon the probes in flight, stop the workers, free everything. */
void sched_free(struct sched *);
/*
 * Follow conf from now on (ownership passes to the scheduler; it is freed
 * once no probe in flight uses it). Checks whose capsule name is unchanged
 * keep their place in the schedule.
 */
void sched_apply(struct sched *, struct conf *);
/*
 * Collect finished probes and start the due ones. Returns how many
 * milliseconds may pass before it must be called again.
 */
int sched_run(struct sched *);
/* A descriptor that becomes readable when a probe finishes. */
int sched_fd(const struct sched *);
/* The configuration followed now (borrowed; main thread only). */
const struct conf *sched_conf(const struct sched *);

struct conf_ref;
/*
 * Hold the configuration followed now, from any thread, so a reload
 * cannot free it; NULL before the first sched_apply. Release when done.
 */
struct conf_ref *sched_conf_hold(struct sched *);
const struct conf *conf_ref_conf(const struct conf_ref *);
void sched_conf_release(struct conf_ref *);
/*
 * Fill req for a capsule's check with its options (cancel_fd and tofu
 * are left for the caller). req points into c, which must outlive it.
 */
void sched_req_for(const struct conf *, const struct capsule_conf *c,
    enum check, struct probe_req *req);
/* The TOFU store the scheduler's probes use (borrowed). */
struct tofu_store *sched_tofu(const struct sched *);
struct notify;
/* Tell n (borrowed, may be NULL) each finished probe's result. */
void sched_set_notify(struct sched *, struct notify *n);

#endif
