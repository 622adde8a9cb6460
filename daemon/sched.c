/*
 * The scheduler. Every check (a capsule's page, or its error page) is a
 * task with a due time on a min-heap. sched_run pops due tasks while a
 * worker slot is free and queues them for the worker threads; a worker
 * runs the probe, publishes the result into the store and hands the task
 * back through a done list and a wake-up pipe. Tasks, the heap and the
 * configurations are touched only by the main thread; the queue and the
 * done list are the only shared state, behind one mutex. A worker wakes
 * the main thread only when the task it hands back is due before the main
 * thread would wake anyway, or when probes wait for a free slot: waking
 * it for every probe cost more CPU than the scheduling itself.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cert.h"
#include "clock.h"
#include "conf.h"
#include "log.h"
#include "notify.h"
#include "probe.h"
#include "sched.h"
#include "store.h"
#include "xmalloc.h"

/*
 * When the main thread wakes for a due task, the tasks due within
 * SCHED_EARLY after it start with it, a little early, so that it wakes
 * once per batch and not once per probe (at 333 probes/s its wake-ups
 * were 3% of the daemon's CPU). The rhythm is kept: the next due time
 * follows from the due time, not the start.
 */
#define SCHED_EARLY	0.02

/* A configuration kept alive while tasks, probes or /probe use it. */
struct conf_ref {
	struct conf	*conf;
	atomic_uint	 refs;
};

struct task {
	struct conf_ref			*ref;
	const struct capsule_conf	*cap;	/* inside ref->conf */
	/*
	 * What the probe in flight uses: a reload may move ref and cap to
	 * a new configuration meanwhile, so the old one is held until the
	 * task comes back (main thread only, like ref).
	 */
	struct conf_ref			*run_ref;
	const struct capsule_conf	*run_cap;
	enum check			 check;
	double				 due;	/* monotonic */
	double				 back_by;	/* due, for the worker (under lock) */
	int				 in_flight;
	int				 removed;
	struct task			*next;	/* queue or done list */
};

struct sched {
	struct store		*store;
	struct tofu_store	*tofu;
	struct notify		*notify;
	struct conf_ref		*current;

	struct task		**tasks;	/* every live task */
	size_t			 ntasks;
	struct task		**heap;		/* tasks waiting, by due */
	size_t			 nheap;
	unsigned		 busy;		/* tasks queued or running */

	pthread_mutex_t		 lock;		/* guards the fields below */
	pthread_cond_t		 cond;
	struct task		*queue, *queue_tail;
	struct task		*done;
	int			 stopping;
	double			 wake_at;	/* when the main thread wakes anyway */
	int			 starved;	/* probes wait for a free slot */

	pthread_t		*workers;
	size_t			 nworkers;
	int			 wake[2];	/* workers → main: a probe finished */
	int			 cancel[2];	/* main → probes: abandon */
	double			 last_flush;
};

static void
ref_release(struct conf_ref *r)
{
	if (r != NULL && atomic_fetch_sub(&r->refs, 1) == 1) {
		conf_free(r->conf);
		free(r);
	}
}

/* ---- the heap ---------------------------------------------------------- */

static void
heap_swap(struct sched *s, size_t a, size_t b)
{
	struct task *t = s->heap[a];

	s->heap[a] = s->heap[b];
	s->heap[b] = t;
}

static void
heap_up(struct sched *s, size_t i)
{
	while (i > 0 && s->heap[(i - 1) / 2]->due > s->heap[i]->due) {
		heap_swap(s, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void
heap_down(struct sched *s, size_t i)
{
	size_t l, m;

	for (;;) {
		l = 2 * i + 1;
		m = i;
		if (l < s->nheap && s->heap[l]->due < s->heap[m]->due)
			m = l;
		if (l + 1 < s->nheap && s->heap[l + 1]->due < s->heap[m]->due)
			m = l + 1;
		if (m == i)
			return;
		heap_swap(s, i, m);
		i = m;
	}
}

static void
heap_push(struct sched *s, struct task *t)
{
	s->heap[s->nheap++] = t;
	heap_up(s, s->nheap - 1);
}

static struct task *
heap_pop(struct sched *s)
{
	struct task *t = s->heap[0];

	s->heap[0] = s->heap[--s->nheap];
	heap_down(s, 0);
	return t;
}

/* ---- workers ----------------------------------------------------------- */

void
sched_req_for(const struct conf *conf, const struct capsule_conf *c,
    enum check check, struct probe_req *req)
{
	probe_req_init(req, check == CHECK_PAGE ? &c->url : &c->error_url);
	req->check = check;
	req->sni = c->sni;
	req->family = c->family;
	req->timeout = c->timeout;
	req->max_body = conf->max_body;
	req->fingerprint = c->has_fingerprint ? c->fingerprint : NULL;
	if (check == CHECK_PAGE) {
		req->expect_status = c->expect_status;
		req->require_close_notify = c->require_close_notify;
		req->expect_body = c->expect_body_src != NULL ?
		    &c->expect_body : NULL;
	} else {
		/* The error page must fail properly, and say so. */
		status_spec_parse("4x,5x", 5, &req->expect_status, NULL);
		req->require_close_notify = 1;
	}
}

static void *
worker_main(void *arg)
{
	struct sched		*s = arg;
	struct task		*t;
	const struct capsule_conf *c;
	struct probe_req	 req;
	struct probe_result	 res;
	int			 wake;

	result_init(&res);
	for (;;) {
		pthread_mutex_lock(&s->lock);
		while (s->queue == NULL && !s->stopping)
			pthread_cond_wait(&s->cond, &s->lock);
		if (s->stopping) {
			pthread_mutex_unlock(&s->lock);
			break;
		}
		t = s->queue;
		s->queue = t->next;
		if (s->queue == NULL)
			s->queue_tail = NULL;
		pthread_mutex_unlock(&s->lock);

		/* Held for us by sched_run until collect() takes it back. */
		c = t->run_cap;
		sched_req_for(t->run_ref->conf, c, t->check, &req);
		req.cancel_fd = s->cancel[0];
		req.tofu = s->tofu;
		probe_run(&req, &res);
		log_debug("probe %s (%s): %s%s%s", c->name, check_name(t->check),
		    res.success ? "ok" : reason_name(res.reason),
		    res.success ? "" : ": ", res.success ? "" :
		    (res.message ? res.message : ""));
		pthread_mutex_lock(&s->lock);
		/* An abandoned probe says nothing about the capsule. */
		if (!s->stopping) {
			store_put(s->store, c->name, &res);
			notify_result(s->notify, c, t->check, &res);
		}
		result_clear(&res);
		t->next = s->done;
		s->done = t;
		wake = s->starved || t->back_by < s->wake_at;
		pthread_mutex_unlock(&s->lock);
		if (wake)
			(void)!write(s->wake[1], "", 1);
	}
	return NULL;
}

static void
workers_grow(struct sched *s, size_t n)
{
	int rv;

	if (n <= s->nworkers)
		return;
	s->workers = xreallocarray(s->workers, n, sizeof *s->workers);
	while (s->nworkers < n) {
		if ((rv = pthread_create(&s->workers[s->nworkers], NULL,
		    worker_main, s)) != 0) {
			errno = rv;
			fatal("pthread_create");
		}
		s->nworkers++;
	}
}

/* ---- tasks ------------------------------------------------------------- */

static void
task_free(struct task *t)
{
	ref_release(t->ref);
	free(t);
}

/* Tasks by capsule name, then check: a reload finds its old tasks by
 * binary search (a linear search made a reload of 10,000 capsules take
 * 0.3 s). */
static int
task_cmp(const void *a, const void *b)
{
	const struct task *x = *(struct task *const *)a;
	const struct task *y = *(struct task *const *)b;
	int c;

	if ((c = strcmp(x->cap->name, y->cap->name)) != 0)
		return c;
	return (int)x->check - (int)y->check;
}

struct task_key {
	const char	*name;
	enum check	 check;
};

static int
task_key_cmp(const void *key, const void *elem)
{
	const struct task_key	*k = key;
	const struct task	*t = *(struct task *const *)elem;
	int			 c;

	if ((c = strcmp(k->name, t->cap->name)) != 0)
		return c;
	return (int)k->check - (int)t->check;
}

/* v sorted by task_cmp. */
static struct task *
task_find(struct task **v, size_t n, const char *name, enum check check)
{
	struct task_key	 k = { name, check };
	struct task	**p;

	if (n == 0)
		return NULL;
	p = bsearch(&k, v, n, sizeof *v, task_key_cmp);
	return p != NULL ? *p : NULL;
}

struct sched *
sched_new(struct store *store, struct tofu_store *tofu)
{
	struct sched *s;

	s = xcalloc(1, sizeof *s);
	s->store = store;
	s->tofu = tofu;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	if (pipe2(s->wake, O_CLOEXEC | O_NONBLOCK) == -1 ||
	    pipe2(s->cancel, O_CLOEXEC | O_NONBLOCK) == -1)
		fatal("pipe");
	s->last_flush = clock_mono();
	return s;
}

void
sched_apply(struct sched *s, struct conf *conf)
{
	struct conf_ref	 *ref, *old_ref;
	struct task	**old = s->tasks, *t;
	size_t		  nold = s->ntasks, i, n = 0, fresh = 0, k;
	double		  now = clock_mono();
	enum check	  check;

	ref = xcalloc(1, sizeof *ref);
	ref->conf = conf;
	atomic_init(&ref->refs, 1);
	/* A kept task's cap moves to a capsule of the same name: the order
	 * holds while the loop below reuses tasks. */
	if (nold > 1)
		qsort(old, nold, sizeof *old, task_cmp);

	/* Count the checks in this instance's shard. */
	for (i = 0; i < conf->ncapsules; i++)
		if (conf_in_shard(conf, &conf->capsules[i]))
			n += conf->capsules[i].error_path != NULL ? 2 : 1;
	s->tasks = xcalloc(n, sizeof *s->tasks);
	s->ntasks = 0;
	for (i = 0; i < conf->ncapsules; i++) {
		const struct capsule_conf *c = &conf->capsules[i];

		if (!conf_in_shard(conf, c))
			continue;
		for (check = CHECK_PAGE; check < CHECK__COUNT; check++) {
			if (check == CHECK_ERROR_PAGE && c->error_path == NULL)
				continue;
			t = task_find(old, nold, c->name, check);
			if (t != NULL) {
				/* Kept: same place in the schedule. */
				t->removed = -1;	/* marker: reused */
				ref_release(t->ref);
				if (t->due > now + c->interval) {
					t->due = now + c->interval;
					pthread_mutex_lock(&s->lock);
					t->back_by = t->due;
					pthread_mutex_unlock(&s->lock);
				}
			} else {
				t = xcalloc(1, sizeof *t);
				t->due = -1;	/* spread below */
				t->check = check;	/* never changes */
				fresh++;
			}
			t->ref = ref;
			atomic_fetch_add(&ref->refs, 1);
			t->cap = c;
			s->tasks[s->ntasks++] = t;
		}
	}
	/* Spread new tasks' first probes over their first interval. */
	for (i = 0, k = 0; i < s->ntasks; i++) {
		t = s->tasks[i];
		if (t->due < 0)
			t->due = now + t->cap->interval * (double)k++ /
			    (double)(fresh ? fresh : 1);
	}
	/* Tasks dropped by this configuration. */
	for (i = 0; i < nold; i++) {
		t = old[i];
		if (t->removed == -1) {
			t->removed = 0;
			continue;
		}
		if (t->in_flight)
			t->removed = 1;	/* freed when its probe returns */
		else
			task_free(t);
	}
	free(old);

	/* Rebuild the heap from the waiting tasks. */
	free(s->heap);
	s->heap = xcalloc(s->ntasks ? s->ntasks : 1, sizeof *s->heap);
	s->nheap = 0;
	for (i = 0; i < s->ntasks; i++)
		if (!s->tasks[i]->in_flight)
			heap_push(s, s->tasks[i]);

	pthread_mutex_lock(&s->lock);
	old_ref = s->current;
	s->current = ref;
	pthread_mutex_unlock(&s->lock);
	ref_release(old_ref);
	store_sync(s->store, conf);
	workers_grow(s, conf->concurrency);
	log_info("scheduling %zu checks of %zu capsules (shard %u/%u)",
	    s->ntasks, conf->ncapsules, conf->shard_k, conf->shard_n);
}

/* Take back the tasks whose probe finished. */
static void
collect(struct sched *s)
{
	struct task	*t, *next;
	char		 drain[256];
	double		 now = clock_mono();

	while (read(s->wake[0], drain, sizeof drain) > 0)
		;
	pthread_mutex_lock(&s->lock);
	t = s->done;
	s->done = NULL;
	pthread_mutex_unlock(&s->lock);
	for (; t != NULL; t = next) {
		next = t->next;
		t->in_flight = 0;
		s->busy--;
		ref_release(t->run_ref);
		t->run_ref = NULL;
		if (t->removed) {
			task_free(t);
			continue;
		}
		/* A probe that overran its slot is not repeated at once. */
		if (t->due < now)
			t->due = now;
		heap_push(s, t);
	}
}

int
sched_run(struct sched *s)
{
	const struct conf	*conf = s->current->conf;
	struct task		*t;
	double			 now, wait;

	collect(s);
	now = clock_mono();
	while (s->nheap > 0 && s->heap[0]->due <= now + SCHED_EARLY &&
	    s->busy < conf->concurrency) {
		t = heap_pop(s);
		if (now - t->due > 1)
			log_debug("probe of %s started %.1fs late", t->cap->name,
			    now - t->due);
		t->due += t->cap->interval;
		if (t->due < now)	/* fell behind: keep the rhythm from now */
			t->due = now + t->cap->interval;
		t->in_flight = 1;
		t->run_ref = t->ref;
		atomic_fetch_add(&t->run_ref->refs, 1);
		t->run_cap = t->cap;
		t->next = NULL;
		s->busy++;
		pthread_mutex_lock(&s->lock);
		t->back_by = t->due;
		if (s->queue_tail != NULL)
			s->queue_tail->next = t;
		else
			s->queue = t;
		s->queue_tail = t;
		pthread_cond_signal(&s->cond);
		pthread_mutex_unlock(&s->lock);
	}
	if (now - s->last_flush >= 1) {
		tofu_flush(s->tofu);
		s->last_flush = now;
	}
	wait = 1.0;
	if (s->nheap > 0 && s->busy < conf->concurrency &&
	    s->heap[0]->due - now < wait)
		wait = s->heap[0]->due - now;
	if (wait < 0)
		wait = 0;
	pthread_mutex_lock(&s->lock);
	s->wake_at = now + wait;
	s->starved = s->nheap > 0 && s->busy >= conf->concurrency;
	pthread_mutex_unlock(&s->lock);
	return (int)(wait * 1000) + 1;
}

int
sched_fd(const struct sched *s)
{
	return s->wake[0];
}

const struct conf *
sched_conf(const struct sched *s)
{
	return s->current != NULL ? s->current->conf : NULL;
}

struct conf_ref *
sched_conf_hold(struct sched *s)
{
	struct conf_ref *r;

	pthread_mutex_lock(&s->lock);
	if ((r = s->current) != NULL)
		atomic_fetch_add(&r->refs, 1);
	pthread_mutex_unlock(&s->lock);
	return r;
}

const struct conf *
conf_ref_conf(const struct conf_ref *r)
{
	return r->conf;
}

void
sched_conf_release(struct conf_ref *r)
{
	ref_release(r);
}

struct tofu_store *
sched_tofu(const struct sched *s)
{
	return s->tofu;
}

void
sched_set_notify(struct sched *s, struct notify *n)
{
	s->notify = n;
}

void
sched_free(struct sched *s)
{
	struct task	*t, *next;
	size_t		 i;

	if (s == NULL)
		return;
	/* Abandon probes in flight, then stop the workers. */
	(void)!write(s->cancel[1], "", 1);
	pthread_mutex_lock(&s->lock);
	s->stopping = 1;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	for (i = 0; i < s->nworkers; i++)
		pthread_join(s->workers[i], NULL);
	free(s->workers);

	/* Queued tasks were never started; finished ones come back. */
	for (t = s->queue; t != NULL; t = next) {
		next = t->next;
		t->in_flight = 0;
		ref_release(t->run_ref);
		if (t->removed)
			task_free(t);
	}
	for (t = s->done; t != NULL; t = next) {
		next = t->next;
		t->in_flight = 0;
		ref_release(t->run_ref);
		if (t->removed)
			task_free(t);
	}
	for (i = 0; i < s->ntasks; i++)
		task_free(s->tasks[i]);
	free(s->tasks);
	free(s->heap);
	ref_release(s->current);
	close(s->wake[0]);
	close(s->wake[1]);
	close(s->cancel[0]);
	close(s->cancel[1]);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
