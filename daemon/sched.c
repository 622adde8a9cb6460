/*
 * The scheduler. Every check (a capsule's page, or its error page) is a
 * task with a due time on a min-heap. sched_run pops due tasks while a
 * slot is free and hands each to the runner as a job; when the probe
 * ends, the runner calls sched_done, which publishes the result through
 * main's hook and hands the task back through a done list and a wake-up
 * pipe. Tasks, the heap and the configuration are touched only by the
 * main thread; the done list and what sched_done reads are the only
 * shared state, behind one mutex, and the result is published outside
 * it: the store may wait for a long render, and the main thread must not
 * wait with it. sched_done wakes the main thread only when the task it
 * hands back is due before the main thread would wake anyway, or when
 * probes wait for a free slot: waking it for every probe cost more CPU
 * than the scheduling itself.
 */
#include "config.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "lag.h"
#include "log.h"
#include "sched.h"
#include "xmalloc.h"

/*
 * When the main thread wakes for a due task, the tasks due within
 * SCHED_EARLY after it start with it, a little early, so that it wakes
 * once per batch and not once per probe (at 333 probes/s its wake-ups
 * were 3% of the daemon's CPU). The rhythm is kept: the next due time
 * follows from the due time, not the start.
 */
#define SCHED_EARLY 0.02

/* Seconds between two warnings that probes start late. */
#define LAG_LOG_EVERY 600

struct task {
	/*
	 * What the probe in flight uses (first: sched_done's argument is
	 * a pointer to it). A reload may move cap to a new configuration
	 * meanwhile, so the job holds the one it started with.
	 */
	struct sched_job job;
	struct conf *job_conf; /* job.conf, held */
	struct sched *s;
	const struct capsule_conf *cap; /* inside s->conf */
	enum check check;
	double due;     /* monotonic */
	double back_by; /* due, for sched_done (under lock) */
	int in_flight;
	int removed;
	struct task *next; /* done list (under lock) */
};

struct sched {
	struct lag lag;           /* main thread only */
	double lag_logged;        /* when the late warning was last logged */
	uint64_t lag_logged_late; /* lag.late then */
	struct sched_runner *runner;
	double (*now)(void);
	void (*publish)(
	    void *, const struct capsule_conf *, const struct probe_result *);
	void *publish_arg;
	struct conf *conf; /* held */

	struct task **tasks; /* every live task */
	size_t ntasks;
	struct task **orphans; /* removed while in flight */
	size_t norphans;
	struct task **heap; /* tasks waiting, by due */
	size_t nheap;
	unsigned busy; /* tasks in flight */

	pthread_mutex_t lock; /* guards the fields below */
	struct task *done;
	int stopping;
	double wake_at; /* when the main thread wakes anyway */
	int starved;    /* probes wait for a free slot */

	int wake[2]; /* sched_done → main: run early */
};

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

/* ---- tasks ------------------------------------------------------------- */

/* Free t; a job it still has in flight is abandoned. */
static void
task_free(struct task *t)
{
	if (t->in_flight)
		conf_free(t->job_conf);
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
	const char *name;
	enum check check;
};

static int
task_key_cmp(const void *key, const void *elem)
{
	const struct task_key *k = key;
	const struct task *t = *(struct task *const *)elem;
	int c;

	if ((c = strcmp(k->name, t->cap->name)) != 0)
		return c;
	return (int)k->check - (int)t->check;
}

/* v sorted by task_cmp. */
static struct task *
task_find(struct task **v, size_t n, const char *name, enum check check)
{
	struct task_key k = {name, check};
	struct task **p;

	if (n == 0)
		return NULL;
	p = bsearch(&k, v, n, sizeof *v, task_key_cmp);
	return p != NULL ? *p : NULL;
}

/* A removed task's probe came back: it is no orphan any more. */
static void
orphan_drop(struct sched *s, struct task *t)
{
	size_t i;

	for (i = 0; i < s->norphans; i++)
		if (s->orphans[i] == t) {
			s->orphans[i] = s->orphans[--s->norphans];
			return;
		}
}

struct sched *
sched_new(struct sched_runner *runner, double (*now)(void),
    void (*publish)(
        void *, const struct capsule_conf *, const struct probe_result *),
    void *arg)
{
	struct sched *s;

	s = xcalloc(1, sizeof *s);
	s->runner = runner;
	s->now = now;
	s->publish = publish;
	s->publish_arg = arg;
	pthread_mutex_init(&s->lock, NULL);
	if (pipe2(s->wake, O_CLOEXEC | O_NONBLOCK) == -1)
		fatal("pipe");
	return s;
}

void
sched_apply(struct sched *s, struct conf *conf,
    const struct capsule_conf *const *mine, size_t nmine)
{
	struct task **old = s->tasks, *t;
	size_t nold = s->ntasks, i, n = 0, fresh = 0, k;
	double now = s->now();
	enum check check;

	/* A kept task's cap moves to a capsule of the same name: the order
	 * holds while the loop below reuses tasks. */
	if (nold > 1)
		qsort(old, nold, sizeof *old, task_cmp);

	for (i = 0; i < nmine; i++)
		n += mine[i]->error_path != NULL ? 2 : 1;
	s->tasks = xcalloc(n, sizeof *s->tasks);
	s->ntasks = 0;
	for (i = 0; i < nmine; i++) {
		const struct capsule_conf *c = mine[i];

		for (check = CHECK_PAGE; check < CHECK__COUNT; check++) {
			if (check == CHECK_ERROR_PAGE && c->error_path == NULL)
				continue;
			t = task_find(old, nold, c->name, check);
			if (t != NULL) {
				/* Kept: same place in the schedule. */
				t->removed = -1; /* marker: reused */
				if (t->due > now + c->interval) {
					t->due = now + c->interval;
					pthread_mutex_lock(&s->lock);
					t->back_by = t->due;
					pthread_mutex_unlock(&s->lock);
				}
			} else {
				t = xcalloc(1, sizeof *t);
				t->s = s;
				t->due = -1;      /* spread below */
				t->check = check; /* never changes */
				fresh++;
			}
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
		if (t->in_flight) {
			/* Freed when its probe returns. */
			t->removed = 1;
			s->orphans = xreallocarray(
			    s->orphans, s->norphans + 1, sizeof *s->orphans);
			s->orphans[s->norphans++] = t;
		} else
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

	/* Jobs in flight hold the configuration they started with. */
	conf_free(s->conf);
	s->conf = conf;
	log_info("scheduling %zu checks of %zu capsules (shard %u/%u)",
	    s->ntasks, conf->ncapsules, conf->shard_k, conf->shard_n);
}

void
sched_done(void *job, struct probe_result *res)
{
	struct task *t = job; /* job is its first member */
	struct sched *s = t->s;
	const char *name = t->job.cap->name;
	int stopping, wake;

	pthread_mutex_lock(&s->lock);
	stopping = s->stopping;
	pthread_mutex_unlock(&s->lock);
	/*
	 * An abandoned probe says nothing about the capsule: sched_free
	 * sets stopping before the runner abandons anything.
	 */
	if (!stopping && res != NULL) {
		log_debug("probe %s (%s): %s%s%s", name,
		    check_name(t->job.check),
		    res->success ? "ok" : reason_name(res->reason),
		    res->success ? "" : ": ",
		    res->success ? "" : (res->message ? res->message : ""));
		s->publish(s->publish_arg, t->job.cap, res);
	}
	pthread_mutex_lock(&s->lock);
	t->next = s->done;
	s->done = t;
	wake = s->starved || t->back_by < s->wake_at;
	pthread_mutex_unlock(&s->lock);
	if (wake)
		(void)!write(s->wake[1], "", 1);
}

/* Take back the tasks whose probe finished. */
static void
collect(struct sched *s)
{
	struct task *t, *next;
	char drain[256];
	double now = s->now();

	while (read(s->wake[0], drain, sizeof drain) > 0)
		;
	pthread_mutex_lock(&s->lock);
	t = s->done;
	s->done = NULL;
	pthread_mutex_unlock(&s->lock);
	for (; t != NULL; t = next) {
		next = t->next;
		s->busy--;
		if (t->removed) {
			orphan_drop(s, t);
			task_free(t);
			continue;
		}
		conf_free(t->job_conf);
		t->job_conf = NULL;
		t->job.conf = NULL;
		t->in_flight = 0;
		/* A probe that overran its slot is not repeated at once. */
		if (t->due < now)
			t->due = now;
		heap_push(s, t);
	}
}

/* Count how late t starts (a start within SCHED_EARLY before is on time). */
static void
lag_count(struct sched *s, const struct task *t, double now)
{
	static const double bounds[LAG_NBUCKETS] = LAG_BOUNDS;
	double lag = now > t->due ? now - t->due : 0;
	size_t i;

	for (i = 0; i < LAG_NBUCKETS && lag > bounds[i]; i++)
		;
	if (i < LAG_NBUCKETS)
		s->lag.bucket[i]++;
	s->lag.count++;
	s->lag.sum += lag;
	if (lag > t->cap->interval * LAG_LATE_FRACTION) {
		s->lag.late++;
		s->lag.last_late = now;
		s->lag.last_late_by = lag;
		log_debug("probe of %s started %.1fs late", t->cap->name, lag);
	}
}

/*
 * Falling behind is said, once and then at most every LAG_LOG_EVERY
 * seconds, with its cause and its remedy.
 */
static void
lag_warn(struct sched *s, double now)
{
	uint64_t late = s->lag.late - s->lag_logged_late;

	if (late == 0 ||
	    (s->lag_logged > 0 && now - s->lag_logged < LAG_LOG_EVERY))
		return;
	if (s->lag.in_flight >= s->lag.concurrency)
		log_warnx(
		    "falling behind: %llu probes started more than a "
		    "tenth of their interval late (the latest by %.1fs) with "
		    "all %u allowed in flight; raise concurrency (and the "
		    "file descriptor limit), lengthen interval or timeout, or "
		    "split the capsules with shard",
		    (unsigned long long)late, s->lag.last_late_by,
		    s->lag.concurrency);
	else
		log_warnx(
		    "falling behind: %llu probes started more than a "
		    "tenth of their interval late (the latest by %.1fs) with "
		    "%u of %u in flight: the main loop was held up (a slow "
		    "reload, or a machine short of CPU)",
		    (unsigned long long)late, s->lag.last_late_by,
		    s->lag.in_flight, s->lag.concurrency);
	s->lag_logged = now;
	s->lag_logged_late = s->lag.late;
}

void
sched_lag(const struct sched *s, struct lag *out)
{
	*out = s->lag;
}

int
sched_run(struct sched *s)
{
	struct task *t;
	double now, wait;
	unsigned concurrency;

	if (s->conf == NULL)
		return 1000;
	concurrency = s->conf->concurrency;
	collect(s);
	now = s->now();
	while (s->nheap > 0 && s->heap[0]->due <= now + SCHED_EARLY &&
	       s->busy < concurrency) {
		t = heap_pop(s);
		lag_count(s, t, now);
		t->due += t->cap->interval;
		if (t->due < now) /* fell behind: keep the rhythm from now */
			t->due = now + t->cap->interval;
		t->in_flight = 1;
		t->job_conf = conf_hold(s->conf);
		t->job.conf = t->job_conf;
		t->job.cap = t->cap;
		t->job.check = t->check;
		s->busy++;
		pthread_mutex_lock(&s->lock);
		t->back_by = t->due;
		pthread_mutex_unlock(&s->lock);
		s->runner->start(s->runner, &t->job);
	}
	s->lag.in_flight = s->busy;
	s->lag.concurrency = concurrency;
	lag_warn(s, now);
	wait = 1.0;
	if (s->nheap > 0 && s->busy < concurrency &&
	    s->heap[0]->due - now < wait)
		wait = s->heap[0]->due - now;
	if (wait < 0)
		wait = 0;
	pthread_mutex_lock(&s->lock);
	s->wake_at = now + wait;
	s->starved = s->nheap > 0 && s->busy >= concurrency;
	pthread_mutex_unlock(&s->lock);
	return (int)(wait * 1000) + 1;
}

int
sched_fd(const struct sched *s)
{
	return s->wake[0];
}

void
sched_free(struct sched *s)
{
	size_t i;

	if (s == NULL)
		return;
	/* First stopping, so that nothing the runner abandons is published. */
	pthread_mutex_lock(&s->lock);
	s->stopping = 1;
	pthread_mutex_unlock(&s->lock);
	s->runner->stop(s->runner);

	/* Tasks handed back but not collected are tasks or orphans too. */
	for (i = 0; i < s->ntasks; i++)
		task_free(s->tasks[i]);
	for (i = 0; i < s->norphans; i++)
		task_free(s->orphans[i]);
	free(s->tasks);
	free(s->orphans);
	free(s->heap);
	conf_free(s->conf);
	close(s->wake[0]);
	close(s->wake[1]);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
