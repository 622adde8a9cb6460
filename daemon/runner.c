/*
 * The scheduler's jobs on the probe engine. Each job gets an item holding
 * its probe request (borrowed by the engine until the probe ends); the
 * engine calls back on one of its loop threads, the item hands the result
 * to sched_done and goes. Items in flight are on a list, so that stopping
 * (engine_free abandons every probe without calling back) frees what the
 * engine dropped.
 */
#include "config.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>

#include "engine.h"
#include "probe.h"
#include "runner.h"
#include "sched.h"
#include "xmalloc.h"

struct item {
	struct runner *r;
	struct sched_job *job;
	struct probe_req req;
	struct item *prev, *next; /* in flight */
};

struct runner {
	struct sched_runner runner; /* first: the runner is this */
	struct tofu_store *tofu;
	struct engine *engine; /* NULL once stopped */
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

/* The engine's callback, on a loop thread. */
static void
item_done(void *arg, struct probe_result *res)
{
	struct item *it = arg;

	item_unlink(it);
	sched_done(it->job, res);
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
	probe_req_for(job->conf, job->cap, job->check, &it->req);
	it->req.tofu = r->tofu;
	pthread_mutex_lock(&r->lock);
	if ((it->next = r->items) != NULL)
		it->next->prev = it;
	r->items = it;
	pthread_mutex_unlock(&r->lock);
	engine_start(r->engine, &it->req, item_done, it);
}

static void
runner_stop(struct sched_runner *sr)
{
	struct runner *r = (struct runner *)sr;
	struct item *it, *next;

	if (r->engine == NULL)
		return;
	engine_free(r->engine); /* no callback comes after it */
	r->engine = NULL;
	for (it = r->items; it != NULL; it = next) {
		next = it->next;
		free(it);
	}
	r->items = NULL;
}

struct runner *
runner_new(struct tofu_store *tofu)
{
	struct runner *r;

	r = xcalloc(1, sizeof *r);
	/* The scheduler bounds the probes in flight, not the engine. */
	if ((r->engine = engine_new(UINT_MAX, 0)) == NULL) {
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
