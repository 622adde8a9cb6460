/*
 * The scheduler: when to do what. A capsule's jobs are of two kinds on
 * one schedule: a probe of each of its checks (the page, its error page),
 * due once per `interval`, the first ones spread over the first interval,
 * at most `concurrency` in flight; and a run of requests (seq.h) of each
 * kind it asks for (crawl=, diagnose=), due once per the kind's interval,
 * at most a quarter of `concurrency` (at least 1) at once. It does not
 * probe: it hands each due job to a runner (runner.c), which reports back
 * through sched_done or sched_done_run from any thread, and main's hooks
 * publish the result. The clock is injected too, so a test drives the
 * scheduler without sleeping.
 */
#ifndef GEMWATCH_SCHED_H
#define GEMWATCH_SCHED_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>

#include "result.h"

struct capsule_conf;
struct conf;

/* One job to do, as the scheduler hands it to the runner. */
struct sched_job {
	const struct conf *conf;        /* held until the job is done */
	const struct capsule_conf *cap; /* inside conf */
	int run;                        /* 0: a probe of check; 1: a run */
	enum check check;               /* a probe's */
	enum seq_kind kind;             /* a run's */
	atomic_int cancel; /* the run's task is gone: end it unpublished */
};

/*
 * How jobs are done, embedded in the runner's own structure. start begins
 * the job and returns at once (a run may end within it); the runner then
 * calls sched_done (a probe) or sched_done_run (a run) exactly once for
 * it, from any thread. stop (called by sched_free) abandons the jobs in
 * flight and returns once no call to sched_done(_run) can come any more:
 * an abandoned job gets one such call or none, and what it reports is
 * never published.
 */
struct sched_runner {
	void (*start)(struct sched_runner *, struct sched_job *);
	void (*stop)(struct sched_runner *);
};

/*
 * Main's hooks, called outside the scheduler's lock on the thread that
 * reports a job done (publish, publish_run) or on the main thread (age).
 */
struct sched_hooks {
	/* A probe's result (capsule and result valid during the call). */
	void (*publish)(void *arg, const struct capsule_conf *capsule,
	    const struct probe_result *);
	/* A run's outcome; the hook takes the reference. */
	void (*publish_run)(void *arg, const struct capsule_conf *capsule,
	    enum seq_kind, json_t *outcome);
	/*
	 * Seconds since the outcome kept for a capsule's run was made
	 * (INFINITY: none), so that a restart does not run it again before
	 * its interval has passed.
	 */
	double (*run_age)(void *arg, const char *name, enum seq_kind);
	void *arg;
};

struct sched;
struct lag;

/*
 * A scheduler that reads monotonic seconds from now (clock_mono), starts
 * jobs on runner, and publishes through hooks (copied). Runner and the
 * hooks' arg are borrowed: they must outlive the scheduler.
 */
struct sched *sched_new(struct sched_runner *runner, double (*now)(void),
    const struct sched_hooks *);
/*
 * Stop: the jobs in flight are abandoned and their results never
 * published (the runner is stopped first); then free everything.
 */
void sched_free(struct sched *);
/*
 * Follow conf from now on: the jobs of the n capsules mine (conf_shard's,
 * in conf; the array is borrowed). The caller's reference to conf passes
 * to the scheduler; jobs in flight hold their own. Jobs whose capsule name
 * is unchanged keep their place in the schedule; a run in flight whose
 * capsule (or kind) is gone is cancelled (main thread).
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
/* The run of job ended with outcome (taken; NULL: none). Thread-safe. */
void sched_done_run(struct sched_job *job, json_t *outcome);

#endif
