/*
 * The scheduler: when to probe what. Each capsule's check is probed once
 * per interval, first probes spread over the first interval, at most
 * `concurrency` probes in flight on a pool of worker threads. Workers
 * publish into the store; all scheduling state stays in the main thread.
 */
#ifndef GEMWATCH_SCHED_H
#define GEMWATCH_SCHED_H

#include <stddef.h>

#include "result.h"

struct capsule_conf;
struct conf;
struct store;
struct tofu_store;

struct sched;

/* store and tofu are borrowed and must outlive the scheduler. */
struct sched *sched_new(struct store *, struct tofu_store *);
/* Abandon the probes in flight, stop the workers, free everything. */
void sched_free(struct sched *);
/*
 * Follow conf from now on: probe the n capsules mine (conf_shard's, in
 * conf; the array is borrowed). The caller's reference to conf passes to
 * the scheduler; tasks and probes in flight hold their own. Checks whose
 * capsule name is unchanged keep their place in the schedule.
 */
void sched_apply(struct sched *, struct conf *,
    const struct capsule_conf *const *mine, size_t n);
/*
 * Collect finished probes and start the due ones. Returns how many
 * milliseconds may pass before it must be called again.
 */
int sched_run(struct sched *);
/* A descriptor that becomes readable when a probe finishes. */
int sched_fd(const struct sched *);
/* The configuration followed now (borrowed; main thread only). */
const struct conf *sched_conf(const struct sched *);


#endif
