/*
 * The daemon's scheduler of runs of requests (seq.h). Each capsule and
 * kind with an interval is an entry with a due time; seq_sched_run (main
 * thread) starts the due entries' runs while fewer than a quarter of
 * `concurrency` run, each on the scheduler's own probe engine (one loop
 * thread): a run never takes a page check's slot or thread, and one that
 * pauses waits on the engine's timer heap (engine_start_at). A run's
 * steps follow one another on the engine's thread (item_step); the last
 * publishes the outcome through main's hook and hands the item back
 * through a done list and a wake-up pipe, as the page checks' scheduler
 * does. Entries and items are the main thread's; the done list and the
 * stopping flag are shared, behind one mutex, never held across a call
 * out.
 */
#include "config.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "conf.h"
#include "engine.h"
#include "log.h"
#include "probe.h"
#include "seq.h"
#include "xmalloc.h"

/* Seconds between two looks at the schedule when nothing is due sooner. */
#define SEQ_WAIT_MAX 1.0
/* A run's first request waits at least this after start-up or a reload. */
#define SEQ_FIRST_DELAY 1.0

struct item;

struct entry {
	const struct capsule_conf *cap; /* inside s->conf */
	enum seq_kind kind;
	double due;        /* monotonic */
	struct item *item; /* in progress, or NULL */
	int removed;       /* by a reload while in progress */
};

struct item {
	struct seq_sched *s;
	struct entry *e;
	struct conf *conf;              /* held */
	const struct capsule_conf *cap; /* inside conf */
	const struct seq_ops *ops;
	void *run;          /* NULL once ended */
	struct item *next;  /* done list (under lock) */
	struct item *lnext; /* every item, main thread */
};

struct seq_sched {
	void (*publish)(
	    void *, const struct capsule_conf *, enum seq_kind, json_t *);
	double (*last)(void *, const char *, enum seq_kind);
	void *arg;
	struct engine *engine;
	struct conf *conf; /* held */
	struct entry **entries;
	size_t nentries;
	struct entry **orphans; /* removed while in progress */
	size_t norphans;
	struct item *items; /* in progress or on the done list */
	unsigned running;

	pthread_mutex_t lock; /* guards the two below */
	struct item *done;
	int stopping;

	int wake[2];
};

struct seq_sched *
seq_sched_new(void (*publish)(
                  void *, const struct capsule_conf *, enum seq_kind, json_t *),
    double (*last)(void *, const char *, enum seq_kind), void *arg)
{
	struct seq_sched *s;

	s = xcalloc(1, sizeof *s);
	if ((s->engine = engine_new(UINT_MAX, 1)) == NULL) {
		free(s);
		return NULL;
	}
	s->publish = publish;
	s->last = last;
	s->arg = arg;
	pthread_mutex_init(&s->lock, NULL);
	if (pipe2(s->wake, O_CLOEXEC | O_NONBLOCK) == -1)
		fatal("pipe");
	return s;
}

static int
entry_cmp(const void *a, const void *b)
{
	const struct entry *x = *(struct entry *const *)a;
	const struct entry *y = *(struct entry *const *)b;
	int c;

	if ((c = strcmp(x->cap->name, y->cap->name)) != 0)
		return c;
	return (int)x->kind - (int)y->kind;
}

static struct entry *
entry_find(struct entry **v, size_t n, const char *name, enum seq_kind kind)
{
	size_t lo = 0, hi = n, mid;
	int c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if ((c = strcmp(name, v[mid]->cap->name)) == 0)
			c = (int)kind - (int)v[mid]->kind;
		if (c == 0)
			return v[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

void
seq_sched_apply(struct seq_sched *s, struct conf *conf,
    const struct capsule_conf *const *mine, size_t nmine)
{
	struct entry **old = s->entries, *e;
	size_t nold = s->nentries, i, n = 0;
	double now = clock_mono(), wall = clock_wall(), iv, last;
	const struct seq_ops *ops;
	int k;

	if (nold > 1)
		qsort(old, nold, sizeof *old, entry_cmp);
	s->entries = xcalloc(nmine * SEQ__COUNT + 1, sizeof *s->entries);
	for (i = 0; i < nmine; i++)
		for (k = 0; k < SEQ__COUNT; k++) {
			ops = seq_ops(k);
			if ((iv = ops->interval(mine[i])) <= 0)
				continue;
			e = entry_find(old, nold, mine[i]->name, k);
			if (e != NULL) {
				e->removed = -1; /* kept */
				if (e->due > now + iv)
					e->due = now + iv;
			} else {
				e = xcalloc(1, sizeof *e);
				e->kind = k;
				/* After the interval since the outcome kept. */
				last = s->last(s->arg, mine[i]->name, k);
				e->due = now + SEQ_FIRST_DELAY;
				if (last > 0 && last + iv - wall > 0)
					e->due =
					    now + (last + iv - wall < iv
					                  ? last + iv - wall
					                  : iv);
			}
			e->cap = mine[i];
			s->entries[n++] = e;
		}
	s->nentries = n;
	for (i = 0; i < nold; i++) {
		e = old[i];
		if (e->removed == -1) {
			e->removed = 0;
			continue;
		}
		if (e->item != NULL) {
			e->removed = 1; /* freed when its run comes back */
			s->orphans = xreallocarray(
			    s->orphans, s->norphans + 1, sizeof *s->orphans);
			s->orphans[s->norphans++] = e;
		} else
			free(e);
	}
	free(old);
	conf_free(s->conf);
	s->conf = conf;
	if (n > 0)
		log_info("scheduling %zu runs of requests", n);
}

/* The run is over: publish, hand the item back (engine thread). */
static void
item_over(struct item *it)
{
	struct seq_sched *s = it->s;
	json_t *outcome;
	int stopping;

	outcome = it->ops->end(it->run);
	it->run = NULL;
	pthread_mutex_lock(&s->lock);
	stopping = s->stopping;
	pthread_mutex_unlock(&s->lock);
	if (!stopping && outcome != NULL)
		s->publish(s->arg, it->cap, it->ops->kind, outcome);
	else
		json_decref(outcome);
	pthread_mutex_lock(&s->lock);
	it->next = s->done;
	s->done = it;
	pthread_mutex_unlock(&s->lock);
	(void)!write(s->wake[1], "", 1);
}

/* A request of the run ended (engine thread), or the run begins (NULL). */
static void
item_step(void *arg, struct probe_result *res)
{
	struct item *it = arg;
	const struct probe_req *req;
	double pause = 0;

	if ((req = it->ops->next(it->run, res, &pause)) == NULL) {
		item_over(it);
		return;
	}
	engine_start_at(it->s->engine, clock_mono() + (pause > 0 ? pause : 0),
	    req, item_step, it);
}

static void
collect(struct seq_sched *s)
{
	struct item *it, *next, **pp;
	char drain[64];
	size_t i;

	while (read(s->wake[0], drain, sizeof drain) > 0)
		;
	pthread_mutex_lock(&s->lock);
	it = s->done;
	s->done = NULL;
	pthread_mutex_unlock(&s->lock);
	for (; it != NULL; it = next) {
		next = it->next;
		for (pp = &s->items; *pp != it; pp = &(*pp)->lnext)
			;
		*pp = it->lnext;
		s->running--;
		if (it->e->removed) {
			for (i = 0; i < s->norphans; i++)
				if (s->orphans[i] == it->e) {
					s->orphans[i] =
					    s->orphans[--s->norphans];
					break;
				}
			free(it->e);
		} else
			it->e->item = NULL;
		conf_free(it->conf);
		free(it);
	}
}

int
seq_sched_run(struct seq_sched *s)
{
	struct entry *e;
	struct item *it;
	double now, wait = SEQ_WAIT_MAX, iv;
	unsigned max;
	size_t i;

	if (s->conf == NULL)
		return 1000;
	collect(s);
	max = s->conf->concurrency / 4 > 0 ? s->conf->concurrency / 4 : 1;
	now = clock_mono();
	for (i = 0; i < s->nentries; i++) {
		e = s->entries[i];
		if (e->item != NULL)
			continue;
		if (e->due > now) {
			if (e->due - now < wait)
				wait = e->due - now;
			continue;
		}
		if (s->running >= max)
			continue;
		iv = seq_ops(e->kind)->interval(e->cap);
		e->due += iv;
		if (e->due < now) /* fell behind: keep the rhythm from now */
			e->due = now + iv;
		it = xcalloc(1, sizeof *it);
		it->s = s;
		it->e = e;
		it->conf = conf_hold(s->conf);
		it->cap = e->cap;
		it->ops = seq_ops(e->kind);
		it->run = it->ops->begin(it->conf, it->cap);
		it->lnext = s->items;
		s->items = it;
		e->item = it;
		s->running++;
		log_debug("%s of %s begins", seq_name(e->kind), e->cap->name);
		item_step(it, NULL);
	}
	if (wait < 0)
		wait = 0;
	return (int)(wait * 1000) + 1;
}

int
seq_sched_fd(const struct seq_sched *s)
{
	return s->wake[0];
}

unsigned
seq_sched_running(const struct seq_sched *s)
{
	return s->running;
}

void
seq_sched_free(struct seq_sched *s)
{
	struct item *it, *next;
	size_t i;

	if (s == NULL)
		return;
	pthread_mutex_lock(&s->lock);
	s->stopping = 1;
	pthread_mutex_unlock(&s->lock);
	engine_free(s->engine); /* no step comes after it */
	for (it = s->items; it != NULL; it = next) {
		next = it->lnext;
		if (it->run != NULL)
			it->ops->abandon(it->run);
		conf_free(it->conf);
		free(it);
	}
	for (i = 0; i < s->nentries; i++)
		free(s->entries[i]);
	for (i = 0; i < s->norphans; i++)
		free(s->orphans[i]);
	free(s->entries);
	free(s->orphans);
	conf_free(s->conf);
	close(s->wake[0]);
	close(s->wake[1]);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
