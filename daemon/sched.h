/*
 * The scheduler: when to probe what. Each capsule's check is probed once
 * per interval, first probes spread over the first interval, at most
 * `concurrency` probes in flight. It does not probe: it hands each due
 * job to a runner (pool.c today), which reports back through sched_done
 * from any thread, and a hook set by main publishes the result. The
 * clock is injected too, so a test drives the scheduler without sleeping.
 */
#ifndef GEMWATCH_SCHED_H
#define GEMWATCH_SCHED_H

#include <stddef.h>

#include "result.h"

struct capsule_conf;
struct conf;

/* One probe to run, as the scheduler hands it to the runner. */
struct sched_job {
	const struct conf *conf;        /* held until sched_done */
	const struct capsule_conf *cap; /* inside conf */
	enum check check;
};

/*
 * How probes run, embedded in the runner's own structure. start begins
 * the job's probe and returns at once; the runner then calls sched_done
 * exactly once for it, from any thread, when the probe has ended. stop
 * (called by sched_free) abandons the probes in flight and returns once
 * no call to sched_done can come any more: an abandoned job gets one
 * sched_done or none, and what it reports is never published.
 */
struct sched_runner {
	void (*start)(struct sched_runner *, struct sched_job *);
	void (*stop)(struct sched_runner *);
};

struct sched;
struct lag;

/*
 * A scheduler that reads monotonic seconds from now (clock_mono), starts
 * probes on runner, and publishes each result by calling
 * publish(arg, capsule, result) outside its own lock, on the thread that
 * called sched_done (capsule is the job's, valid during the call). All
 * borrowed: they must outlive the scheduler.
 */
struct sched *sched_new(struct sched_runner *runner, double (*now)(void),
    void (*publish)(void *arg, const struct capsule_conf *capsule,
        const struct probe_result *),
    void *arg);
/*
 * Stop: the probes in flight are abandoned and their results never
 * published (the runner is stopped first); then free everything.
 */
void sched_free(struct sched *);
/*
 * Follow conf from now on: probe the n capsules mine (conf_shard's, in
 * conf; the array is borrowed). The caller's reference to conf passes to
 * the scheduler; probes in flight hold their own. Checks whose capsule
 * name is unchanged keep their place in the schedule (main thread).
 */
void sched_apply(struct sched *, struct conf *,
    const struct capsule_conf *const *mine, size_t n);
/*
 * Take back finished jobs and start the due ones (main thread). Returns
 * how many milliseconds may pass before it must be called again.
 */
int sched_run(struct sched *);
/* How late probes started so far (main thread). */
void sched_lag(const struct sched *, struct lag *);
/* A descriptor that becomes readable when sched_run should run early. */
int sched_fd(const struct sched *);
/*
 * The probe of job (a struct sched_job * given to the runner) ended with
 * res (borrowed; NULL: no result). Thread-safe. Its signature is that of
 * a probe engine's completion callback, so an engine may call it as is.
 */
void sched_done(void *job, struct probe_result *res);

#endif
