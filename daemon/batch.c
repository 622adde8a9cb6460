/*
 * A batch of probes for the command line. Probes are grouped by key
 * (sorted once, when the batch starts); a group is "ready" when it has
 * probes left and none in flight, and ready groups start in the order
 * their first probe was added. When a probe ends, the engine thread that
 * ran it hands the result over and starts what may start next, under the
 * batch's one lock, so a chain of probes of one host never waits for the
 * thread that runs the batch (which only waits, and ticks).
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "engine.h"
#include "xmalloc.h"

struct group;

struct item {
	struct batch *b;
	const struct probe_req *req;
	char *key;
	size_t id;
	struct group *group;
	struct item *next; /* its group's queue */
};

struct group {
	struct item *head, *tail;
	struct group *next_ready;
};

struct batch {
	struct engine *e;
	unsigned parallel;
	struct item *items;
	size_t n, cap;
	struct group *groups;
	int started;

	pthread_mutex_t lock; /* guards what follows */
	pthread_cond_t cond;  /* every probe has ended */
	struct group *ready, *ready_tail;
	unsigned in_flight;
	size_t ended;
	batch_result_fn *result;
	void *arg;
};

struct batch *
batch_new(struct engine *e, unsigned parallel)
{
	struct batch *b;
	pthread_condattr_t attr;

	b = xcalloc(1, sizeof *b);
	b->e = e;
	b->parallel = parallel > 0 ? parallel : 1;
	pthread_mutex_init(&b->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&b->cond, &attr);
	pthread_condattr_destroy(&attr);
	return b;
}

void
batch_add(
    struct batch *b, const struct probe_req *req, const char *key, size_t id)
{
	struct item *it;

	assert(!b->started);
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 64;
		b->items = xreallocarray(b->items, b->cap, sizeof *b->items);
	}
	it = &b->items[b->n++];
	memset(it, 0, sizeof *it);
	it->b = b;
	it->req = req;
	it->key = xstrdup(key);
	it->id = id;
}

static int
item_cmp(const void *a, const void *b)
{
	const struct item *x = *(struct item *const *)a;
	const struct item *y = *(struct item *const *)b;
	int c;

	if ((c = strcmp(x->key, y->key)) != 0)
		return c;
	return x < y ? -1 : x > y;
}

static void
ready_push(struct batch *b, struct group *g)
{
	g->next_ready = NULL;
	if (b->ready_tail != NULL)
		b->ready_tail->next_ready = g;
	else
		b->ready = g;
	b->ready_tail = g;
}

/* Group the items by key; each group's queue keeps the order of adding. */
static void
batch_group(struct batch *b)
{
	struct item **sorted, *it;
	struct group *g;
	size_t i, ngroups = 0;

	if (b->n == 0)
		return;
	sorted = xreallocarray(NULL, b->n, sizeof *sorted);
	for (i = 0; i < b->n; i++)
		sorted[i] = &b->items[i];
	qsort(sorted, b->n, sizeof *sorted, item_cmp);
	b->groups = xcalloc(b->n, sizeof *b->groups);
	for (i = 0; i < b->n; i++) {
		if (i == 0 || strcmp(sorted[i]->key, sorted[i - 1]->key) != 0)
			ngroups++;
		sorted[i]->group = &b->groups[ngroups - 1];
	}
	free(sorted);
	for (i = 0; i < b->n; i++) {
		it = &b->items[i];
		g = it->group;
		if (g->head == NULL) {
			ready_push(b, g);
			g->head = it;
		} else
			g->tail->next = it;
		g->tail = it;
	}
}

static void item_done(void *, struct probe_result *);

/* Under the lock: start what may start. */
static void
batch_pump(struct batch *b)
{
	struct group *g;
	struct item *it;

	while (b->in_flight < b->parallel && (g = b->ready) != NULL) {
		if ((b->ready = g->next_ready) == NULL)
			b->ready_tail = NULL;
		it = g->head;
		if ((g->head = it->next) == NULL)
			g->tail = NULL;
		it->next = NULL;
		b->in_flight++;
		engine_start(b->e, it->req, item_done, it);
	}
}

/* On an engine thread: hand the result over, start the next. */
static void
item_done(void *arg, struct probe_result *res)
{
	struct item *it = arg;
	struct batch *b = it->b;

	pthread_mutex_lock(&b->lock);
	b->result(b->arg, it->id, res);
	b->in_flight--;
	b->ended++;
	if (it->group->head != NULL)
		ready_push(b, it->group);
	batch_pump(b);
	if (b->in_flight == 0)
		pthread_cond_signal(&b->cond);
	pthread_mutex_unlock(&b->lock);
}

void
batch_run(struct batch *b, batch_result_fn *result, batch_tick_fn *tick,
    double every, void *arg)
{
	struct timespec until;
	double t;

	assert(!b->started);
	b->started = 1;
	batch_group(b);
	pthread_mutex_lock(&b->lock);
	b->result = result;
	b->arg = arg;
	batch_pump(b);
	while (b->in_flight > 0) {
		if (tick == NULL || every <= 0) {
			pthread_cond_wait(&b->cond, &b->lock);
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &until);
		t = (double)until.tv_nsec / 1e9 + every;
		until.tv_sec += (time_t)t;
		until.tv_nsec = (long)((t - (double)(time_t)t) * 1e9);
		if (pthread_cond_timedwait(&b->cond, &b->lock, &until) ==
		        ETIMEDOUT &&
		    b->in_flight > 0) {
			pthread_mutex_unlock(&b->lock);
			tick(arg);
			pthread_mutex_lock(&b->lock);
		}
	}
	pthread_mutex_unlock(&b->lock);
}

size_t
batch_ended(struct batch *b)
{
	size_t n;

	pthread_mutex_lock(&b->lock);
	n = b->ended;
	pthread_mutex_unlock(&b->lock);
	return n;
}

void
batch_free(struct batch *b)
{
	size_t i;

	if (b == NULL)
		return;
	for (i = 0; i < b->n; i++)
		free(b->items[i].key);
	free(b->items);
	free(b->groups);
	pthread_cond_destroy(&b->cond);
	pthread_mutex_destroy(&b->lock);
	free(b);
}
