/*
 * Unit tests of the scheduler with an injected clock and a fake runner,
 * deterministic and without sleeping. A small simulation plays the main
 * loop: it calls sched_run when the time it asked for has come, or at
 * once when sched_fd is readable, and the fake runner ends each probe
 * after a duration its capsule's name gives ("hung..." never ends,
 * "slow..." takes 2.5 s, others 0.1 s), calling sched_done as a real
 * runner would. Checked: first probes spread over the first interval;
 * batching of tasks due within 20 ms, keeping the rhythm; each capsule
 * due once per interval; an overrun probe repeated once, not in a burst;
 * a reload keeps and drops tasks by name; a hung probe holds only its own
 * slot; finished probes wake the main thread only when needed; stop
 * abandons the probes in flight and publishes nothing; results are
 * published outside the scheduler's lock (a thread blocked in the hook
 * does not block sched_run); and runs of requests (crawl=, diagnose=) on
 * the same schedule: due after a first delay or the rest of the interval
 * since the outcome kept, once per their interval, in slots of their own,
 * cancelled when their capsule goes.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf.h"
#include "result.h"
#include "sched.h"
#include "xmalloc.h"

#include "tap.h"

#define MAXFLY 256
#define MAXSTARTS 8192
#define MAXPUB 8192

/* ---- the clock ----------------------------------------------------------- */

static double clock_now;

static double
fake_now(void)
{
	return clock_now;
}

/* ---- the runner ---------------------------------------------------------- */

struct start {
	char name[16];
	int what; /* a check, or CHECK__COUNT + a kind of run */
	double t;
};

struct fake {
	struct sched_runner r; /* first */
	struct sched_job *fly[MAXFLY];
	double ends[MAXFLY]; /* < 0: never */
	size_t nfly, maxfly;
	size_t maxruns; /* runs in flight at once */
	struct start starts[MAXSTARTS];
	size_t nstarts;
	int stops;
	int report_abandoned; /* sched_done at stop */
};

static double
duration(const char *name)
{
	if (strncmp(name, "hung", 4) == 0)
		return -1;
	if (strncmp(name, "slow", 4) == 0)
		return 2.5;
	return 0.1;
}

static void
fake_start(struct sched_runner *r, struct sched_job *job)
{
	struct fake *f = (struct fake *)r;
	struct start *st;
	double d = duration(job->cap->name);
	size_t i, runs;

	if (f->nfly == MAXFLY || f->nstarts == MAXSTARTS)
		abort();
	f->fly[f->nfly] = job;
	f->ends[f->nfly] = d < 0 ? -1 : clock_now + d;
	if (++f->nfly > f->maxfly)
		f->maxfly = f->nfly;
	for (i = 0, runs = 0; i < f->nfly; i++)
		runs += f->fly[i]->run;
	if (runs > f->maxruns)
		f->maxruns = runs;
	st = &f->starts[f->nstarts++];
	snprintf(st->name, sizeof st->name, "%s", job->cap->name);
	st->what = job->run ? CHECK__COUNT + (int)job->kind : (int)job->check;
	st->t = clock_now;
}

/* End job i of the runner with a result (NULL: none). */
static void
fake_end(struct fake *f, size_t i, int abandoned)
{
	struct sched_job *job = f->fly[i];
	struct probe_result res;

	f->fly[i] = f->fly[--f->nfly];
	f->ends[i] = f->ends[f->nfly];
	if (job->run) { /* as the runner does: a cancelled run says nothing */
		sched_done_run(
		    job, atomic_load(&job->cancel) ? NULL : json_object());
		return;
	}
	result_init(&res);
	res.check = job->check;
	res.time = clock_now;
	if (abandoned)
		result_fail(&res, REASON_TIMEOUT, STAGE_TLS, "probe abandoned");
	else
		res.success = 1;
	sched_done(job, &res);
	result_clear(&res);
}

static void
fake_stop(struct sched_runner *r)
{
	struct fake *f = (struct fake *)r;

	f->stops++;
	/* As the pool does: the abandoned probes report, and must not count. */
	while (f->report_abandoned && f->nfly > 0)
		fake_end(f, f->nfly - 1, 1);
	f->nfly = 0;
}

static void
fake_init(struct fake *f)
{
	memset(f, 0, sizeof *f);
	f->r.start = fake_start;
	f->r.stop = fake_stop;
}

/* The start times of a capsule's job: a check, or CHECK__COUNT + a kind. */
static size_t
starts_what(
    const struct fake *f, const char *name, int what, double *t, size_t max)
{
	size_t i, n = 0;

	for (i = 0; i < f->nstarts; i++)
		if (strcmp(f->starts[i].name, name) == 0 &&
		    f->starts[i].what == what) {
			if (n < max)
				t[n] = f->starts[i].t;
			n++;
		}
	return n;
}

/* The start times of a capsule's page check (its error page's with ~). */
static size_t
starts_of(const struct fake *f, const char *name, double *t, size_t max)
{
	if (name[0] == '~')
		return starts_what(f, name + 1, CHECK_ERROR_PAGE, t, max);
	return starts_what(f, name, CHECK_PAGE, t, max);
}

/* The start times of a capsule's run of kind. */
static size_t
runs_of(const struct fake *f, const char *name, enum seq_kind kind, double *t,
    size_t max)
{
	return starts_what(f, name, CHECK__COUNT + (int)kind, t, max);
}

/* The index in flight of a capsule's run, or nfly. */
static size_t
run_in_flight(const struct fake *f, const char *name)
{
	size_t i;

	for (i = 0; i < f->nfly; i++)
		if (f->fly[i]->run && strcmp(f->fly[i]->cap->name, name) == 0)
			break;
	return i;
}

/* ---- publishing ---------------------------------------------------------- */

struct published {
	char names[MAXPUB][16];
	size_t n;
};

static void
publish(
    void *arg, const struct capsule_conf *cap, const struct probe_result *res)
{
	struct published *p = arg;

	(void)res;
	if (p->n < MAXPUB)
		snprintf(p->names[p->n], sizeof p->names[0], "%s", cap->name);
	p->n++;
}

/* A run's outcome, recorded as "kind/capsule". */
static void
publish_run(void *arg, const struct capsule_conf *cap, enum seq_kind kind,
    json_t *outcome)
{
	struct published *p = arg;

	json_decref(outcome);
	if (p->n < MAXPUB)
		snprintf(p->names[p->n], sizeof p->names[0], "%s/%s",
		    seq_name(kind), cap->name);
	p->n++;
}

/* An outcome 1800 s old is kept for capsules named "kept...". */
static double
run_age(void *arg, const char *name, enum seq_kind kind)
{
	(void)arg;
	(void)kind;
	return strncmp(name, "kept", 4) == 0 ? 1800 : INFINITY;
}

static size_t
published_of(const struct published *p, const char *name)
{
	size_t i, n = 0;

	for (i = 0; i < p->n && i < MAXPUB; i++)
		if (strcmp(p->names[i], name) == 0)
			n++;
	return n;
}

/* ---- the main loop ------------------------------------------------------- */

struct world {
	struct fake f;
	struct published pub;
	struct sched *s;
	struct conf *conf; /* the test's reference */
	double wake_at;    /* when sched_run asked to run */
	unsigned runs;     /* sched_run calls that started probes */
	unsigned woken;    /* sched_fd readable */
};

static int
readable(int fd)
{
	struct pollfd pfd = {fd, POLLIN, 0};

	return poll(&pfd, 1, 0) == 1;
}

static struct conf *
parse(const char *text)
{
	struct conf_errors errs = {NULL, 0};
	struct conf *conf;
	size_t i;

	if ((conf = conf_parse("test.conf", text, strlen(text), &errs)) ==
	    NULL) {
		for (i = 0; i < errs.n; i++)
			printf("# %s\n", errs.msg[i]);
		exit(99);
	}
	conf_errors_free(&errs);
	return conf;
}

/* Apply a configuration as main does (its shard, a reference passed). */
static void
world_apply(struct world *w, const char *text)
{
	const struct capsule_conf **mine;
	size_t n;

	conf_free(w->conf);
	w->conf = parse(text);
	mine = conf_shard(w->conf, &n);
	sched_apply(w->s, conf_hold(w->conf), mine, n);
	free(mine);
	w->wake_at = clock_now;
}

static void
world_init(struct world *w, const char *text)
{
	struct sched_hooks hooks = {publish, publish_run, run_age, &w->pub};

	memset(w, 0, sizeof *w);
	clock_now = 1000;
	fake_init(&w->f);
	w->s = sched_new(&w->f.r, fake_now, &hooks);
	world_apply(w, text);
}

static void
world_free(struct world *w)
{
	sched_free(w->s);
	conf_free(w->conf);
}

/* Run the main loop until clock_now reaches until. */
static void
world_run(struct world *w, double until)
{
	double next;
	size_t i, before;
	int ms, fd = sched_fd(w->s);

	while (clock_now < until) {
		if (clock_now >= w->wake_at || readable(fd)) {
			if (clock_now < w->wake_at)
				w->woken++;
			before = w->f.nstarts;
			ms = sched_run(w->s);
			if (w->f.nstarts > before)
				w->runs++;
			w->wake_at = clock_now + ms / 1000.0;
			continue;
		}
		next = w->wake_at;
		for (i = 0; i < w->f.nfly; i++)
			if (w->f.ends[i] >= 0 && w->f.ends[i] < next)
				next = w->f.ends[i];
		if (next >= until) {
			clock_now = until;
			break;
		}
		clock_now = next;
		for (i = 0; i < w->f.nfly;)
			if (w->f.ends[i] >= 0 && w->f.ends[i] <= clock_now)
				fake_end(&w->f, i, 0);
			else
				i++;
	}
}

static char *
capsules(const char *head, const char *prefix, int n, const char *opts)
{
	char *text, *line;
	int i;

	text = xstrdup(head);
	for (i = 0; i < n; i++) {
		xasprintf(&line,
		    "%scapsule gemini://127.0.0.1/%d name=%s%02d%s\n", text, i,
		    prefix, i, opts);
		free(text);
		text = line;
	}
	return text;
}

static int
near(double got, double want, double within)
{
	return got >= want - within && got <= want + within;
}

/* ---- the tests ----------------------------------------------------------- */

static void
test_spread(void)
{
	struct world w;
	char *text = capsules("interval 10s\n", "c", 10, "");
	double t[16];
	size_t i, n;
	int good = 1, rhythm = 1;

	world_init(&w, text);
	world_run(&w, 1000 + 10);
	for (i = 0; i < 10; i++) {
		char name[8];

		snprintf(name, sizeof name, "c%02zu", i);
		n = starts_of(&w.f, name, t, 16);
		if (n != 1 || !near(t[0], 1000 + (double)i, 0.02))
			good = 0;
	}
	ok(good, "10 capsules at 10s: first probes 1 s apart over the first "
	         "interval");
	world_run(&w, 1000 + 100 - 0.5);
	for (i = 0; i < 10; i++) {
		char name[8];
		size_t k;

		snprintf(name, sizeof name, "c%02zu", i);
		n = starts_of(&w.f, name, t, 16);
		if (n != 10)
			good = 0;
		for (k = 1; k < n && k < 16; k++)
			if (!near(t[k] - t[k - 1], 10, 0.02))
				rhythm = 0;
	}
	ok(good, "each capsule probed once per interval (10 in 100 s)");
	ok(rhythm, "every 10 s, the rhythm kept");
	is_int(w.pub.n, w.f.nstarts - w.f.nfly,
	    "every finished probe "
	    "published");
	is_int(w.woken, 0,
	    "finished probes due later did not wake the main "
	    "thread");
	world_free(&w);
	free(text);
}

static void
test_batch(void)
{
	struct world w;
	char *text = capsules("interval 1s\nconcurrency 200\n", "b", 100, "");
	double t[4];
	size_t i, n;
	int early = 1, rhythm = 1;

	world_init(&w, text);
	world_run(&w, 1000 + 2 - 0.001);
	ok(w.f.nstarts >= 200 && w.runs <= 80,
	    "200 probes due 10 ms apart "
	    "started in %u wake-ups, not one each",
	    w.runs);
	for (i = 0; i < 100; i++) {
		char name[8];

		snprintf(name, sizeof name, "b%02zu", i);
		n = starts_of(&w.f, name, t, 4);
		/* Due at 0.01 i, then 1 s later: never more than 20 ms early.
		 */
		if (n < 2 || t[0] < 1000 + 0.01 * (double)i - 0.0201 ||
		    t[1] < 1001 + 0.01 * (double)i - 0.0201)
			early = 0;
		if (n >= 2 && !near(t[1] - t[0], 1, 0.025))
			rhythm = 0;
	}
	ok(early, "none started more than 20 ms before it was due");
	ok(rhythm, "the second round keeps the first one's rhythm");
	world_free(&w);
	free(text);
}

static void
test_overrun(void)
{
	struct world w;
	double t[16];
	size_t n;

	/* slow00 takes 2.5 s, its interval is 1 s. */
	world_init(&w, "interval 1s\n"
	               "capsule gemini://127.0.0.1/ name=slow00\n");
	world_run(&w, 1000 + 6);
	n = starts_of(&w.f, "slow00", t, 16);
	ok(n == 3 && near(t[0], 1000, 0.01) && near(t[1], 1002.5, 0.01) &&
	        near(t[2], 1005, 0.01),
	    "an overrun probe is repeated when it "
	    "returns, once, not for each slot it missed (%zu starts)",
	    n);
	is_int(w.f.maxfly, 1, "never two probes of one check at once");
	world_free(&w);
}

static void
test_reload(void)
{
	struct world w;
	double t[16];
	size_t i, n, pub_a;
	int refs;

	/* a, b, c due at 0, 3.33, 6.67; a's probe hangs. */
	world_init(&w, "interval 10s\n"
	               "capsule gemini://127.0.0.1/a name=hunga\n"
	               "capsule gemini://127.0.0.1/b name=b\n"
	               "capsule gemini://127.0.0.1/c name=c\n");
	world_run(&w, 1000 + 5);
	is_int(starts_of(&w.f, "hunga", t, 16), 1, "before: hunga started");
	is_int(starts_of(&w.f, "b", t, 16), 1, "before: b started");
	is_int(starts_of(&w.f, "c", t, 16), 0, "before: c not yet");

	/* Drop hunga (in flight), keep b and c, add d and c's error page. */
	world_apply(&w, "interval 10s\n"
	                "capsule gemini://127.0.0.1/b name=b\n"
	                "capsule gemini://127.0.0.1/c name=c error-path=/nope\n"
	                "capsule gemini://127.0.0.1/d name=d\n");
	world_run(&w, 1000 + 30 - 0.5);
	n = starts_of(&w.f, "b", t, 16);
	ok(n == 3 && near(t[1], 1000 + 10 / 3.0 + 10, 0.02),
	    "b kept its place: due 10 s after its first probe (%zu starts)", n);
	n = starts_of(&w.f, "c", t, 16);
	ok(n == 3 && near(t[0], 1000 + 20 / 3.0, 0.02),
	    "c kept its first due time, before it had ever run");
	is_int(starts_of(&w.f, "hunga", t, 16), 1,
	    "hunga is not probed "
	    "again");
	/* The new checks' first probes spread over the interval from the
	 * reload, in configuration order: c's error page, then d, 5 s later. */
	n = starts_of(&w.f, "~c", t, 16);
	ok(n == 3 && near(t[0], 1005, 0.02), "c's new error page: first "
	                                     "probe at the reload");
	n = starts_of(&w.f, "d", t, 16);
	ok(n == 2 && near(t[0], 1010, 0.02) && near(t[1], 1020, 0.02),
	    "d: first probe half an interval later, then once per interval");

	/* hunga's probe comes back after the reload: the scheduler frees its
	 * task; the job's configuration was kept alive for it. */
	pub_a = published_of(&w.pub, "hunga");
	for (i = 0; i < w.f.nfly; i++)
		if (strcmp(w.f.fly[i]->cap->name, "hunga") == 0)
			break;
	ok(i < w.f.nfly, "hunga's probe is still in flight");
	fake_end(&w.f, i, 0);
	world_run(&w, 1000 + 31);
	is_int(published_of(&w.pub, "hunga"), pub_a + 1,
	    "a dropped task's "
	    "last result is still handed on (the store drops it)");
	is_int(starts_of(&w.f, "hunga", t, 16), 1,
	    "and it is not probed "
	    "again");
	sched_free(w.s);
	refs = (int)atomic_load(&w.conf->refs);
	is_int(refs, 1,
	    "after sched_free only the test holds the "
	    "configuration");
	conf_free(w.conf);
}

static void
test_interval_shortened(void)
{
	struct world w;
	double t[16];
	size_t n;

	world_init(&w, "interval 60s\n"
	               "capsule gemini://127.0.0.1/ name=x\n");
	world_run(&w, 1000 + 1);
	world_apply(&w, "interval 5s\n"
	                "capsule gemini://127.0.0.1/ name=x\n");
	world_run(&w, 1000 + 12);
	n = starts_of(&w.f, "x", t, 16);
	ok(n == 3 && near(t[1], 1006, 0.02) && near(t[2], 1011, 0.02),
	    "a reload that shortens the interval brings the next probe "
	    "forward (%zu starts)",
	    n);
	world_free(&w);
}

static void
test_hung(void)
{
	struct world w;
	double t[64];

	world_init(&w, "interval 1s\nconcurrency 2\n"
	               "capsule gemini://127.0.0.1/h name=hung0\n"
	               "capsule gemini://127.0.0.1/a name=a\n"
	               "capsule gemini://127.0.0.1/b name=b\n");
	world_run(&w, 1000 + 20);
	is_int(starts_of(&w.f, "hung0", t, 64), 1,
	    "the hung probe started "
	    "once");
	ok(starts_of(&w.f, "a", t, 64) >= 19 &&
	        starts_of(&w.f, "b", t, 64) >= 19,
	    "the others kept going in the one slot left (%zu, %zu)",
	    starts_of(&w.f, "a", t, 64), starts_of(&w.f, "b", t, 64));
	is_int(w.f.maxfly, 2, "never more than concurrency 2 in flight");
	world_free(&w);
}

static void
test_wake(void)
{
	struct world w;

	/* concurrency 1, two capsules: b waits for the slot. */
	world_init(&w, "interval 10s\nconcurrency 1\n"
	               "capsule gemini://127.0.0.1/a name=slowa\n"
	               "capsule gemini://127.0.0.1/b name=b\n");
	w.wake_at = 1e9; /* the loop below plays the main thread */
	(void)sched_run(w.s);
	clock_now += 5.1; /* b became due; slowa still runs */
	(void)sched_run(w.s);
	is_int(w.f.nstarts, 1, "concurrency 1: b waits for the slot");
	ok(!readable(sched_fd(w.s)), "nothing to wake for yet");
	while (w.f.nfly > 0)
		fake_end(&w.f, 0, 0);
	ok(readable(sched_fd(w.s)), "a probe finished while another waits "
	                            "for its slot: the main thread is woken");
	(void)sched_run(w.s);
	is_int(w.f.nstarts, 2, "and b starts");
	ok(!readable(sched_fd(w.s)), "sched_run drained the wake-up");
	world_free(&w);
}

static void
test_stop(int report)
{
	struct world w;
	char *text = capsules("interval 10s\nconcurrency 8\n", "hung", 12, "");
	size_t pub;
	int refs;

	world_init(&w, text);
	w.f.report_abandoned = report;
	world_run(&w, 1000 + 10);
	is_int(w.f.nfly, 8, "8 hung probes in flight");
	pub = w.pub.n;
	sched_free(w.s);
	is_int(w.f.stops, 1, "sched_free stopped the runner");
	is_int(w.pub.n, pub,
	    report ? "abandoned probes that reported were "
	             "not published"
	           : "abandoned probes published nothing");
	refs = (int)atomic_load(&w.conf->refs);
	is_int(refs, 1, "every job's hold on the configuration released");
	conf_free(w.conf);
	free(text);
}

/*
 * A hook that blocks, as store_put does while a render holds the store's
 * read lock: the main thread's sched_run must not wait for it.
 */
struct blocking {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int publishing, ran, timed_out;
	struct sched_job *job;
};

static void
publish_blocking(
    void *arg, const struct capsule_conf *cap, const struct probe_result *r)
{
	struct blocking *b = arg;
	struct timespec until;

	(void)cap;
	(void)r;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10; /* only if sched_run waits for us: a failure */
	pthread_mutex_lock(&b->lock);
	b->publishing = 1;
	pthread_cond_broadcast(&b->cond);
	while (!b->ran && !b->timed_out)
		if (pthread_cond_timedwait(&b->cond, &b->lock, &until) ==
		    ETIMEDOUT)
			b->timed_out = 1;
	pthread_mutex_unlock(&b->lock);
}

static void *
finisher(void *arg)
{
	struct blocking *b = arg;
	struct probe_result res;

	result_init(&res);
	res.success = 1;
	sched_done(b->job, &res);
	return NULL;
}

static void
test_publish_outside_lock(void)
{
	struct sched_hooks hooks = {
	    publish_blocking, publish_run, run_age, NULL};
	struct blocking b;
	struct fake f;
	struct sched *s;
	struct conf *conf;
	const struct capsule_conf **mine;
	size_t n;
	pthread_t tid;

	memset(&b, 0, sizeof b);
	pthread_mutex_init(&b.lock, NULL);
	pthread_cond_init(&b.cond, NULL);
	fake_init(&f);
	clock_now = 1000;
	hooks.arg = &b;
	s = sched_new(&f.r, fake_now, &hooks);
	conf = parse("interval 1s\n"
	             "capsule gemini://127.0.0.1/a name=a\n"
	             "capsule gemini://127.0.0.1/b name=b\n");
	mine = conf_shard(conf, &n);
	sched_apply(s, conf_hold(conf), mine, n);
	free(mine);
	(void)sched_run(s);
	b.job = f.fly[0];
	f.nfly = 0;

	/* Finish a's probe on another thread; its hook blocks... */
	pthread_create(&tid, NULL, finisher, &b);
	pthread_mutex_lock(&b.lock);
	while (!b.publishing)
		pthread_cond_wait(&b.cond, &b.lock);
	pthread_mutex_unlock(&b.lock);
	/* ...while the main thread schedules. */
	clock_now += 0.6;
	(void)sched_run(s);
	pthread_mutex_lock(&b.lock);
	b.ran = 1;
	pthread_cond_broadcast(&b.cond);
	pthread_mutex_unlock(&b.lock);
	pthread_join(tid, NULL);
	ok(!b.timed_out, "sched_run ran while a result was being published");
	is_int(f.nstarts, 2, "and started b meanwhile");
	f.nfly = 0; /* b's job is abandoned silently */
	sched_free(s);
	conf_free(conf);
	pthread_cond_destroy(&b.cond);
	pthread_mutex_destroy(&b.lock);
}

static void
test_runs(void)
{
	struct world w;
	struct sched_job *job;
	double t[16], d[16];
	size_t i, n, nd, pages;

	/* concurrency 4: a quarter of it, one run at a time. */
	world_init(&w, "interval 10s\nconcurrency 4\n"
	               "capsule gemini://127.0.0.1/a name=a crawl=5 "
	               "crawl-interval=60s diagnose=60s\n"
	               "capsule gemini://127.0.0.1/k name=kept diagnose=1h\n");
	world_run(&w, 1000 + 125);
	n = runs_of(&w.f, "a", SEQ_CRAWL, t, 16);
	nd = runs_of(&w.f, "a", SEQ_DIAGNOSE, d, 16);
	ok(n == 3 && near(t[0], 1001, 0.15) && near(t[1], 1061, 0.15) &&
	        near(t[2], 1121, 0.15),
	    "a crawl: first 1 s after start-up, then once per crawl-interval "
	    "(%zu starts)",
	    n);
	ok(nd == 3 && near(d[0], 1001, 0.15) && near(d[2], 1121, 0.15),
	    "a diagnose on its own interval, on the same schedule (%zu)", nd);
	is_int(w.f.maxruns, 1, "never more runs than a quarter of concurrency");
	is_int(starts_of(&w.f, "a", t, 16), 13,
	    "a's page still probed once "
	    "per interval beside its runs");
	is_int(published_of(&w.pub, "crawl/a"), 3,
	    "each crawl's outcome "
	    "published");
	is_int(runs_of(&w.f, "kept", SEQ_DIAGNOSE, t, 16), 0,
	    "an outcome kept "
	    "30 min ago: no diagnose before the rest of its hour");
	world_run(&w, 1000 + 1801);
	n = runs_of(&w.f, "kept", SEQ_DIAGNOSE, t, 16);
	ok(n == 1 && near(t[0], 1000 + 1800, 0.15),
	    "and one when it has passed (%zu)", n);

	/* A run that hangs holds the one run slot, not a probe's. */
	world_apply(&w, "interval 10s\nconcurrency 4\n"
	                "capsule gemini://127.0.0.1/a name=a crawl=5 "
	                "crawl-interval=60s diagnose=60s\n"
	                "capsule gemini://127.0.0.1/h name=hungr crawl=5\n");
	world_run(&w, 1000 + 1803);
	i = run_in_flight(&w.f, "hungr");
	ok(i < w.f.nfly && !atomic_load(&w.f.fly[i]->cancel),
	    "a new capsule's crawl began after the reload");
	if (i == w.f.nfly)
		exit(done_testing() + 1);
	job = w.f.fly[i];
	n = runs_of(&w.f, "a", SEQ_CRAWL, t, 16);
	pages = starts_of(&w.f, "a", t, 16);
	world_run(&w, 1000 + 1920);
	is_int(runs_of(&w.f, "a", SEQ_CRAWL, t, 16), n,
	    "a's crawl waits for "
	    "the run slot the hung crawl holds");
	is_int(starts_of(&w.f, "a", t, 16), pages + 11,
	    "while a's page is "
	    "probed as before");
	world_apply(&w, "interval 10s\nconcurrency 4\n"
	                "capsule gemini://127.0.0.1/a name=a crawl=5 "
	                "crawl-interval=60s diagnose=60s\n");
	ok(atomic_load(&job->cancel), "a reload without its capsule cancels "
	                              "the run in flight");
	fake_end(&w.f, run_in_flight(&w.f, "hungr"), 0);
	world_run(&w, 1000 + 1921);
	is_int(runs_of(&w.f, "a", SEQ_CRAWL, t, 16), n + 1,
	    "its slot freed: a's "
	    "overdue crawl starts");
	is_int(published_of(&w.pub, "crawl/hungr"), 0,
	    "the cancelled run "
	    "published nothing");
	world_free(&w);
}

int
main(void)
{
	test_spread();
	test_batch();
	test_overrun();
	test_reload();
	test_interval_shortened();
	test_hung();
	test_wake();
	test_stop(1);
	test_stop(0);
	test_publish_outside_lock();
	test_runs();
	return done_testing();
}
