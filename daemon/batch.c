/*
 * A batch of probes for the command line. Probes are grouped by key
 * (sorted once, when the first result is asked for); a group is "ready"
 * when it has probes left and none in flight, and ready groups start in
 * the order their first probe was added. The engine's loop threads hand
 * results over through a list under the batch's lock; everything else
 * happens on the caller's thread.
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
	struct batch		*b;
	const struct probe_req	*req;
	char			*key;
	size_t			 id;
	struct group		*group;
	struct item		*next;	/* its group's queue, or the finished list */
	struct probe_result	 res;
};

struct group {
	struct item	*head, *tail;
	struct group	*next_ready;
};

struct batch {
	struct engine	*e;
	unsigned	 parallel;
	unsigned	 in_flight;
	struct item	*items;
	size_t		 n, cap;
	struct group	*groups;
	struct group	*ready, *ready_tail;
	int		 sealed;
	size_t		 returned;

	pthread_mutex_t	 lock;		/* guards finished */
	pthread_cond_t	 cond;
	struct item	*finished, *finished_tail;
};

struct batch *
batch_new(struct engine *e, unsigned parallel)
{
	struct batch		*b;
	pthread_condattr_t	 attr;

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
batch_add(struct batch *b, const struct probe_req *req, const char *key,
    size_t id)
{
	struct item *it;

	assert(!b->sealed);
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
	result_init(&it->res);
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
batch_seal(struct batch *b)
{
	struct item	**sorted, *it;
	struct group	*g;
	size_t		  i, ngroups = 0;

	b->sealed = 1;
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
		if (g->head == NULL)
			ready_push(b, g);
		else
			g->tail->next = it;
		if (g->head == NULL)
			g->head = it;
		g->tail = it;
	}
}

/* On a loop thread: keep the result for the caller. */
static void
item_done(void *arg, struct probe_result *res)
{
	struct item	*it = arg;
	struct batch	*b = it->b;

	pthread_mutex_lock(&b->lock);
	it->res = *res;
	result_init(res);
	it->next = NULL;
	if (b->finished_tail != NULL)
		b->finished_tail->next = it;
	else
		b->finished = it;
	b->finished_tail = it;
	pthread_cond_signal(&b->cond);
	pthread_mutex_unlock(&b->lock);
}

/* Start what may start. */
static void
batch_pump(struct batch *b)
{
	struct group	*g;
	struct item	*it;

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

int
batch_next(struct batch *b, double timeout, size_t *id,
    struct probe_result *res)
{
	struct item	*it;
	struct timespec	 until;
	double		 t;

	if (!b->sealed)
		batch_seal(b);
	batch_pump(b);
	if (timeout >= 0) {
		clock_gettime(CLOCK_MONOTONIC, &until);
		t = (double)until.tv_nsec / 1e9 + timeout;
		until.tv_sec += (time_t)t;
		until.tv_nsec = (long)((t - (double)(time_t)t) * 1e9);
	}
	pthread_mutex_lock(&b->lock);
	while ((it = b->finished) == NULL) {
		if (b->in_flight == 0) {
			pthread_mutex_unlock(&b->lock);
			return -1;
		}
		if (timeout < 0)
			pthread_cond_wait(&b->cond, &b->lock);
		else if (pthread_cond_timedwait(&b->cond, &b->lock, &until) ==
		    ETIMEDOUT && b->finished == NULL) {
			pthread_mutex_unlock(&b->lock);
			return 0;
		}
	}
	if ((b->finished = it->next) == NULL)
		b->finished_tail = NULL;
	pthread_mutex_unlock(&b->lock);

	b->in_flight--;
	b->returned++;
	if (it->group->head != NULL)
		ready_push(b, it->group);
	*id = it->id;
	result_clear(res);
	*res = it->res;
	result_init(&it->res);
	batch_pump(b);
	return 1;
}

size_t
batch_total(const struct batch *b)
{
	return b->n;
}

size_t
batch_returned(const struct batch *b)
{
	return b->returned;
}

void
batch_free(struct batch *b)
{
	size_t i;

	if (b == NULL)
		return;
	for (i = 0; i < b->n; i++) {
		free(b->items[i].key);
		result_clear(&b->items[i].res);
	}
	free(b->items);
	free(b->groups);
	pthread_cond_destroy(&b->cond);
	pthread_mutex_destroy(&b->lock);
	free(b);
}
