/*
 * The scheduler's jobs on the probe engines. Each job gets an item: a
 * probe's holds its request (borrowed by the engine until the probe
 * ends), and the engine's callback hands the result to sched_done; a
 * run's holds the run (seq.h), whose steps follow one another on the runs'
 * engine (item_step), each request begun after its pause on the engine's
 * timer heap (engine_start_at), and the last hands the outcome to
 * sched_done_run. Items in flight are on a list, so that stopping
 * (engine_free abandons every probe without calling back) frees what the
 * engines dropped.
 */
#include "config.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>

#include "clock.h"
#include "engine.h"
#include "probe.h"
#include "runner.h"
#include "sched.h"
#include "seq.h"
#include "xmalloc.h"

struct item {
	struct runner *r;
	struct sched_job *job;
	struct probe_req req;      /* a probe's */
	const struct seq_ops *ops; /* a run's */
	void *run;                 /* a run's, NULL once ended */
	struct item *prev, *next;  /* in flight */
};

struct runner {
	struct sched_runner runner; /* first: the runner is this */
	struct tofu_store *tofu;
	struct engine *probes; /* NULL once stopped */
	struct engine *runs;   /* NULL once stopped */
	pthread_mutex_t lock;  /* guards the list */
	struct item *items;
};

static void
item_unlink(struct item *it)
{
	struct runner *r = it->r;

	pthread_mutex_lock(&r->lock);
	if (it->prev != NULL)
		it->prev->next = it->next;
	else
		r->items = it->next;
	if (it->next != NULL)
		it->next->prev = it->prev;
	pthread_mutex_unlock(&r->lock);
}

/* A probe's engine callback, on a loop thread. */
static void
item_done(void *arg, struct probe_result *res)
{
	struct item *it = arg;

	item_unlink(it);
	sched_done(it->job, res);
	free(it);
}

/*
 * A request of the run ended (runs' engine thread), or the run begins
 * (NULL, main thread). A cancelled run ends unpublished.
 */
static void
item_step(void *arg, struct probe_result *res)
{
	struct item *it = arg;
	const struct probe_req *req;
	json_t *outcome = NULL;
	double pause = 0;
	int cancel = atomic_load(&it->job->cancel);

	if (!cancel && (req = it->ops->next(it->run, res, &pause)) != NULL) {
		engine_start_at(it->r->runs,
		    clock_mono() + (pause > 0 ? pause : 0), req, item_step, it);
		return;
	}
	if (cancel)
		it->ops->abandon(it->run);
	else
		outcome = it->ops->end(it->run);
	item_unlink(it);
	sched_done_run(it->job, outcome);
	free(it);
}

static void
runner_start(struct sched_runner *sr, struct sched_job *job)
{
	struct runner *r = (struct runner *)sr;
	struct item *it;

	it = xcalloc(1, sizeof *it);
	it->r = r;
	it->job = job;
	if (job->run) {
		it->ops = seq_ops(job->kind);
		it->run = it->ops->begin(job->conf, job->cap);
	} else {
		probe_req_for(job->conf, job->cap, job->check, &it->req);
		it->req.tofu = r->tofu;
	}
	pthread_mutex_lock(&r->lock);
	if ((it->next = r->items) != NULL)
		it->next->prev = it;
	r->items = it;
	pthread_mutex_unlock(&r->lock);
	if (job->run)
		item_step(it, NULL);
	else
		engine_start(r->probes, &it->req, item_done, it);
}

static void
runner_stop(struct sched_runner *sr)
{
	struct runner *r = (struct runner *)sr;
	struct item *it, *next;

	/* No callback comes after these. */
	engine_free(r->probes);
	engine_free(r->runs);
	r->probes = r->runs = NULL;
	for (it = r->items; it != NULL; it = next) {
		next = it->next;
		if (it->run != NULL)
			it->ops->abandon(it->run);
		free(it);
	}
	r->items = NULL;
}

struct runner *
runner_new(struct tofu_store *tofu)
{
	struct runner *r;

	r = xcalloc(1, sizeof *r);
	/* The scheduler bounds the jobs in flight, not the engines. */
	if ((r->probes = engine_new(UINT_MAX, 0)) == NULL ||
	    (r->runs = engine_new(UINT_MAX, 1)) == NULL) {
		engine_free(r->probes);
		free(r);
		return NULL;
	}
	r->runner.start = runner_start;
	r->runner.stop = runner_stop;
	r->tofu = tofu;
	pthread_mutex_init(&r->lock, NULL);
	return r;
}

struct sched_runner *
runner_sched(struct runner *r)
{
	return &r->runner;
}

void
runner_free(struct runner *r)
{
	if (r == NULL)
		return;
	runner_stop(&r->runner);
	pthread_mutex_destroy(&r->lock);
	free(r);
}
