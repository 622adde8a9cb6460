/*
 * The scheduler. Every job of a capsule (a probe of a check, or a run of
 * requests of a kind) is a task with a due time on a min-heap, one heap
 * per class of job (probes, runs), each class with its own slots.
 * sched_run pops due tasks while their class has a free slot and hands
 * each to the runner as a job; when the job ends, the runner calls
 * sched_done (sched_done_run), which publishes the result through main's
 * hook and hands the task back through a done list and a wake-up pipe.
 * Tasks, the heaps and the configuration are touched only by the main
 * thread; the done list and what the done calls read are the only shared
 * state, behind one mutex, and the result is published outside it: the
 * store may wait for a long render, and the main thread must not wait
 * with it. A done call wakes the main thread only when the task it hands
 * back is due before the main thread would wake anyway, or when jobs wait
 * for a free slot: waking it for every probe cost more CPU than the
 * scheduling itself.
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
#include "seq.h"
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

/* A run's first request waits at least this after start-up or a reload. */
#define RUN_FIRST_DELAY 1.0

/* What a task does for its capsule: a check, or CHECK__COUNT + a kind. */
#define WHAT__COUNT (CHECK__COUNT + SEQ__COUNT)

/* The classes of job (sched_job.run), each with its heap and slots. */
enum { PROBES, RUNS, NCLASS };

struct task {
	/*
	 * What the job in flight uses (first: the done calls' argument is
	 * a pointer to it). A reload may move cap to a new configuration
	 * meanwhile, so the job holds the one it started with.
	 */
	struct sched_job job;
	struct conf *job_conf; /* job.conf, held */
	struct sched *s;
	const struct capsule_conf *cap; /* inside s->conf */
	int what;                       /* never changes */
	double due;                     /* monotonic */
	double back_by; /* due, for the done calls (under lock) */
	int in_flight;
	int removed;
	struct task *next; /* done list (under lock) */
};

struct heap {
	struct task **v; /* tasks waiting, by due */
	size_t n;
};

struct sched {
	struct lag lag;           /* main thread only */
	double lag_logged;        /* when the late warning was last logged */
	uint64_t lag_logged_late; /* lag.late then */
	struct sched_runner *runner;
	double (*now)(void);
	struct sched_hooks hooks;
	struct conf *conf; /* held */

	struct task **tasks; /* every live task */
	size_t ntasks;
	struct task **orphans; /* removed while in flight */
	size_t norphans;
	struct heap heap[NCLASS];
	unsigned busy[NCLASS]; /* tasks in flight */

	pthread_mutex_t lock; /* guards the fields below */
	struct task *done;
	int stopping;
	double wake_at; /* when the main thread wakes anyway */
	int starved;    /* jobs wait for a free slot */

	int wake[2]; /* done calls → main: run early */
};

/* ---- the heap ---------------------------------------------------------- */

static void
heap_swap(struct heap *h, size_t a, size_t b)
{
	struct task *t = h->v[a];

	h->v[a] = h->v[b];
	h->v[b] = t;
}

static void
heap_up(struct heap *h, size_t i)
{
	while (i > 0 && h->v[(i - 1) / 2]->due > h->v[i]->due) {
		heap_swap(h, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void
heap_down(struct heap *h, size_t i)
{
	size_t l, m;

	for (;;) {
		l = 2 * i + 1;
		m = i;
		if (l < h->n && h->v[l]->due < h->v[m]->due)
			m = l;
		if (l + 1 < h->n && h->v[l + 1]->due < h->v[m]->due)
			m = l + 1;
		if (m == i)
			return;
		heap_swap(h, i, m);
		i = m;
	}
}

static void
heap_push(struct heap *h, struct task *t)
{
	h->v[h->n++] = t;
	heap_up(h, h->n - 1);
}

static struct task *
heap_pop(struct heap *h)
{
	struct task *t = h->v[0];

	h->v[0] = h->v[--h->n];
	heap_down(h, 0);
	return t;
}

/* ---- tasks ------------------------------------------------------------- */

/* Seconds between two of c's jobs what; 0 when c has no such job. */
static double
interval_of(const struct capsule_conf *c, int what)
{
	if (what >= CHECK__COUNT)
		return seq_ops(what - CHECK__COUNT)->interval(c);
	return what == CHECK_PAGE || c->error_path != NULL ? c->interval : 0;
}

/* How many jobs of a class may be in flight at once. */
static unsigned
slots(const struct sched *s, int class)
{
	unsigned n = s->conf->concurrency;

	if (class == PROBES)
		return n;
	return n / 4 > 0 ? n / 4 : 1;
}

/* Free t; a job it still has in flight is abandoned. */
static void
task_free(struct task *t)
{
	if (t->in_flight)
		conf_free(t->job_conf);
	free(t);
}

/* Tasks by capsule name, then what: a reload finds its old tasks by
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
	return x->what - y->what;
}

struct task_key {
	const char *name;
	int what;
};

static int
task_key_cmp(const void *key, const void *elem)
{
	const struct task_key *k = key;
	const struct task *t = *(struct task *const *)elem;
	int c;

	if ((c = strcmp(k->name, t->cap->name)) != 0)
		return c;
	return k->what - t->what;
}

/* v sorted by task_cmp. */
static struct task *
task_find(struct task **v, size_t n, const char *name, int what)
{
	struct task_key k = {name, what};
	struct task **p;

	if (n == 0)
		return NULL;
	p = bsearch(&k, v, n, sizeof *v, task_key_cmp);
	return p != NULL ? *p : NULL;
}

/*
 * A new task for c's job what. A probe's first due time is spread later
 * (-1 until then); a run's comes after the interval since the outcome
 * kept, or RUN_FIRST_DELAY from now when there is none or it is older.
 */
static struct task *
task_new(struct sched *s, const struct capsule_conf *c, int what, double iv,
    double now)
{
	struct task *t = xcalloc(1, sizeof *t);
	double age;

	t->s = s;
	t->what = what;
	t->due = -1;
	if (what < CHECK__COUNT) {
		t->job.check = what;
		return t;
	}
	t->job.run = 1;
	t->job.kind = what - CHECK__COUNT;
	age = s->hooks.run_age(s->hooks.arg, c->name, t->job.kind);
	t->due = now + RUN_FIRST_DELAY;
	if (iv - age > 0)
		t->due = now + (iv - age < iv ? iv - age : iv);
	return t;
}

/* A removed task's job came back: it is no orphan any more. */
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
    const struct sched_hooks *hooks)
{
	struct sched *s;

	s = xcalloc(1, sizeof *s);
	s->runner = runner;
	s->now = now;
	s->hooks = *hooks;
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
	size_t nold = s->ntasks, i, fresh = 0, k, nruns = 0;
	double now = s->now(), iv;
	int what, c;

	/* A kept task's cap moves to a capsule of the same name: the order
	 * holds while the loop below reuses tasks. */
	if (nold > 1)
		qsort(old, nold, sizeof *old, task_cmp);

	s->tasks = xcalloc(nmine * WHAT__COUNT + 1, sizeof *s->tasks);
	s->ntasks = 0;
	for (i = 0; i < nmine; i++)
		for (what = 0; what < WHAT__COUNT; what++) {
			if ((iv = interval_of(mine[i], what)) <= 0)
				continue;
			t = task_find(old, nold, mine[i]->name, what);
			if (t != NULL) {
				/* Kept: same place in the schedule. */
				t->removed = -1; /* marker: reused */
				if (t->due > now + iv) {
					t->due = now + iv;
					pthread_mutex_lock(&s->lock);
					t->back_by = t->due;
					pthread_mutex_unlock(&s->lock);
				}
			} else {
				t = task_new(s, mine[i], what, iv, now);
				fresh += t->due < 0;
			}
			nruns += t->job.run;
			t->cap = mine[i];
			s->tasks[s->ntasks++] = t;
		}
	s->tasks = xreallocarray(s->tasks, s->ntasks + 1, sizeof *s->tasks);
	/* Spread new probes' first starts over their first interval. */
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
			/* Freed when its job returns; a run ends unpublished.
			 */
			t->removed = 1;
			atomic_store(&t->job.cancel, 1);
			s->orphans = xreallocarray(
			    s->orphans, s->norphans + 1, sizeof *s->orphans);
			s->orphans[s->norphans++] = t;
		} else
			task_free(t);
	}
	free(old);

	/* Rebuild the heaps from the waiting tasks. */
	for (c = 0; c < NCLASS; c++) {
		free(s->heap[c].v);
		k = c == RUNS ? nruns : s->ntasks - nruns;
		s->heap[c].v = xcalloc(k + 1, sizeof *s->heap[c].v);
		s->heap[c].n = 0;
	}
	for (i = 0; i < s->ntasks; i++)
		if (!s->tasks[i]->in_flight)
			heap_push(&s->heap[s->tasks[i]->job.run], s->tasks[i]);

	/* Jobs in flight hold the configuration they started with. */
	conf_free(s->conf);
	s->conf = conf;
	log_info("scheduling %zu checks of %zu capsules (shard %u/%u)",
	    s->ntasks - nruns, conf->ncapsules, conf->shard_k, conf->shard_n);
	if (nruns > 0)
		log_info("scheduling %zu runs of requests", nruns);
}

static int
stopping(struct sched *s)
{
	int stopping;

	pthread_mutex_lock(&s->lock);
	stopping = s->stopping;
	pthread_mutex_unlock(&s->lock);
	return stopping;
}

/* Hand t back to the main thread, waking it if it should run early. */
static void
task_back(struct task *t)
{
	struct sched *s = t->s;
	int wake;

	pthread_mutex_lock(&s->lock);
	t->next = s->done;
	s->done = t;
	wake = s->starved || t->back_by < s->wake_at;
	pthread_mutex_unlock(&s->lock);
	if (wake)
		(void)!write(s->wake[1], "", 1);
}

/*
 * An abandoned job says nothing about the capsule: sched_free sets
 * stopping before the runner abandons anything.
 */
void
sched_done(void *job, struct probe_result *res)
{
	struct task *t = job; /* job is its first member */
	struct sched *s = t->s;

	if (res != NULL && !stopping(s)) {
		log_debug("probe %s (%s): %s%s%s", t->job.cap->name,
		    check_name(t->job.check),
		    res->success ? "ok" : reason_name(res->reason),
		    res->success ? "" : ": ",
		    res->success ? "" : (res->message ? res->message : ""));
		s->hooks.publish(s->hooks.arg, t->job.cap, res);
	}
	task_back(t);
}

void
sched_done_run(struct sched_job *job, json_t *outcome)
{
	struct task *t = (struct task *)job; /* job is its first member */
	struct sched *s = t->s;

	if (outcome != NULL && !stopping(s))
		s->hooks.publish_run(
		    s->hooks.arg, t->job.cap, t->job.kind, outcome);
	else
		json_decref(outcome);
	task_back(t);
}

/* Take back the tasks whose job finished. */
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
		s->busy[t->job.run]--;
		if (t->removed) {
			orphan_drop(s, t);
			task_free(t);
			continue;
		}
		conf_free(t->job_conf);
		t->job_conf = NULL;
		t->job.conf = NULL;
		t->in_flight = 0;
		/* A job that overran its slot is not repeated at once. */
		if (t->due < now)
			t->due = now;
		heap_push(&s->heap[t->job.run], t);
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

/* Start t's job; its next due time follows. How late probes start counts. */
static void
task_start(struct sched *s, struct task *t, double now)
{
	double iv = interval_of(t->cap, t->what);

	if (!t->job.run)
		lag_count(s, t, now);
	t->due += iv;
	if (t->due < now) /* fell behind: keep the rhythm from now */
		t->due = now + iv;
	t->in_flight = 1;
	t->job_conf = conf_hold(s->conf);
	t->job.conf = t->job_conf;
	t->job.cap = t->cap;
	s->busy[t->job.run]++;
	pthread_mutex_lock(&s->lock);
	t->back_by = t->due;
	pthread_mutex_unlock(&s->lock);
	if (t->job.run)
		log_debug(
		    "%s of %s begins", seq_name(t->job.kind), t->cap->name);
	s->runner->start(s->runner, &t->job);
}

int
sched_run(struct sched *s)
{
	struct heap *h;
	double now, wait = 1.0;
	unsigned max;
	int c, starved = 0;

	if (s->conf == NULL)
		return 1000;
	collect(s);
	now = s->now();
	for (c = 0; c < NCLASS; c++) {
		h = &s->heap[c];
		max = slots(s, c);
		while (h->n > 0 && h->v[0]->due <= now + SCHED_EARLY &&
		       s->busy[c] < max)
			task_start(s, heap_pop(h), now);
		if (h->n > 0 && s->busy[c] >= max)
			starved = 1;
		else if (h->n > 0 && h->v[0]->due - now < wait)
			wait = h->v[0]->due - now;
	}
	s->lag.in_flight = s->busy[PROBES];
	s->lag.concurrency = slots(s, PROBES);
	lag_warn(s, now);
	if (wait < 0)
		wait = 0;
	pthread_mutex_lock(&s->lock);
	s->wake_at = now + wait;
	s->starved = starved;
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
	int c;

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
	for (c = 0; c < NCLASS; c++)
		free(s->heap[c].v);
	conf_free(s->conf);
	close(s->wake[0]);
	close(s->wake[1]);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
