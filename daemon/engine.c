/*
 * The probe engine. Each loop thread owns an epoll set, a min-heap of its
 * probes' timers (each probe has one: its deadline, then the short budget
 * of our own close_notify), a run list of probes to step again at once
 * (they yielded, or their lookup ended) and a resolver (dns.h) made on the
 * first host name. A probe's socket is watched edge-triggered for input
 * and output from its creation to its close, one epoll_ctl per
 * connection. The loop never blocks but in epoll_wait.
 *
 * Probes come in through engine_start from any thread: under the
 * engine's one lock, a probe goes to the inbox of the loop with the
 * fewest probes (woken through its eventfd), or, beyond max_in_flight,
 * to the engine's FIFO of waiting probes, which a loop takes from as its
 * probes end. A done callback runs on the loop thread, outside the lock.
 *
 * engine_run (probe_run) uses the same loop code on the caller's thread,
 * for one probe, with req->cancel_fd in the epoll set.
 */
#include "config.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "dns.h"
#include "engine.h"
#include "log.h"
#include "probe.h"
#include "xmalloc.h"

#define EVENTS_MAX 256
#define HEAP_NONE ((size_t)-1)
#define THREADS_MAX 2 /* the default is one per core, up to this */
#define WAIT_MAX_MS 3600000
/*
 * Lookups a loop starts per window of time. c-ares sends every query of a
 * channel through one UDP socket: a thousand lookups started at once get
 * two thousand answers back at once, more than that socket's buffer (or
 * the DNS server's) holds, and a lost one waits for c-ares's retry, 5 s
 * later. Paced, the answers of a window are read as they come. Lookups
 * waiting for their window hold nothing: a lookup that never ends delays
 * no other.
 */
#define LOOKUP_WINDOW 0.01 /* seconds */
#define LOOKUPS_PER_WINDOW 32

/* What an epoll event points at: a job (kind first), or a marker. */
enum watch { WATCH_JOB, WATCH_WAKE, WATCH_DNS, WATCH_CANCEL };

static const enum watch watch_wake = WATCH_WAKE;
static const enum watch watch_dns = WATCH_DNS;
static const enum watch watch_cancel = WATCH_CANCEL;

struct loop;

struct job {
	enum watch kind; /* WATCH_JOB */
	struct loop *loop;
	struct probe *p;
	const struct probe_req *req;
	struct probe_result res;
	engine_done_fn *done;
	void *arg;
	double timer; /* key in the heap */
	size_t hi;    /* index in the heap, or HEAP_NONE */

	struct dns_query *query;  /* lookup running */
	int answered;             /* lookup ended: answer below */
	int to_resolve;           /* waits for a window with lookups left */
	struct job *resolve_next; /* the loop's lookups waiting */
	struct sockaddr_storage *addrs;
	size_t naddrs;
	const char *dns_error;
	int dns_errno;

	double start_at; /* engine_start_at: when to begin (monotonic) */
	int pending;     /* in the heap until start_at, not begun */
	int queued;      /* on the run list */
	int ended;
	struct job *next;     /* inbox, waiting list, dead list */
	struct job *run_next; /* run list */
};

struct loop {
	struct engine *eng; /* NULL: engine_run's loop */
	int ep;
	int wake; /* eventfd; -1 for engine_run */
	pthread_t thread;
	struct dns *dns; /* made on the first lookup */
	struct job **heap;
	size_t nheap, heapcap;
	struct job *run, *run_tail;
	struct job *dead; /* ended, freed at the end of a turn */
	int cancelled;    /* engine_run: cancel_fd fired */
	int self_queued;  /* it gave its inbox a probe: no waiting */
	int lookups;      /* started in this window */
	double window;    /* when the window began */
	struct job *rwait, *rwait_tail; /* lookups waiting for a window */

	/* Guarded by the engine's lock. */
	struct job *inbox, *inbox_tail;
	unsigned load; /* probes given to it, not yet ended */
};

struct engine {
	pthread_mutex_t lock;
	struct loop *loops;
	unsigned nloops;
	unsigned max;
	unsigned in_flight;
	struct job *waiting, *waiting_tail;
	size_t nwaiting;
	int stopping;
};

static __thread struct loop *this_loop;

/*
 * engine_run keeps a resolver per thread (the daemon's workers and
 * /probe threads call it again and again): starting c-ares for every
 * probe would read resolv.conf each time. Freed when the thread ends.
 */
static pthread_key_t run_dns_key;
static pthread_once_t run_dns_once = PTHREAD_ONCE_INIT;

static void
run_dns_free(void *d)
{
	dns_free(d);
}

static void
run_dns_init(void)
{
	if (pthread_key_create(&run_dns_key, run_dns_free) != 0)
		fatalx("pthread_key_create");
}

/* ---- the timer heap ----------------------------------------------------- */

static void
heap_set(struct loop *l, size_t i, struct job *j)
{
	l->heap[i] = j;
	j->hi = i;
}

static void
heap_up(struct loop *l, size_t i)
{
	struct job *j = l->heap[i];

	while (i > 0 && l->heap[(i - 1) / 2]->timer > j->timer) {
		heap_set(l, i, l->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_set(l, i, j);
}

static void
heap_down(struct loop *l, size_t i)
{
	struct job *j = l->heap[i];
	size_t c;

	for (;;) {
		c = 2 * i + 1;
		if (c >= l->nheap)
			break;
		if (c + 1 < l->nheap &&
		    l->heap[c + 1]->timer < l->heap[c]->timer)
			c++;
		if (l->heap[c]->timer >= j->timer)
			break;
		heap_set(l, i, l->heap[c]);
		i = c;
	}
	heap_set(l, i, j);
}

static void
heap_push(struct loop *l, struct job *j)
{
	if (l->nheap == l->heapcap) {
		l->heapcap = l->heapcap ? l->heapcap * 2 : 64;
		l->heap = xreallocarray(l->heap, l->heapcap, sizeof *l->heap);
	}
	heap_set(l, l->nheap++, j);
	heap_up(l, j->hi);
}

static void
heap_remove(struct loop *l, struct job *j)
{
	size_t i = j->hi;
	struct job *last;

	if (i == HEAP_NONE)
		return;
	j->hi = HEAP_NONE;
	last = l->heap[--l->nheap];
	if (i == l->nheap)
		return;
	heap_set(l, i, last);
	heap_up(l, i);
	heap_down(l, last->hi);
}

/* ---- jobs --------------------------------------------------------------- */

static struct job *
job_new(const struct probe_req *req, engine_done_fn *done, void *arg)
{
	struct job *j;

	j = xcalloc(1, sizeof *j);
	j->kind = WATCH_JOB;
	j->req = req;
	j->done = done;
	j->arg = arg;
	j->hi = HEAP_NONE;
	result_init(&j->res);
	return j;
}

/* Free a job that has ended or never started; says nothing to anyone. */
static void
job_free(struct job *j)
{
	dns_cancel(j->query);
	probe_free(j->p);
	free(j->addrs);
	result_clear(&j->res);
	free(j);
}

static void
run_push(struct job *j)
{
	struct loop *l = j->loop;

	if (j->queued)
		return;
	j->queued = 1;
	j->run_next = NULL;
	if (l->run_tail != NULL)
		l->run_tail->run_next = j;
	else
		l->run = j;
	l->run_tail = j;
}

static void
loop_wake(struct loop *l)
{
	uint64_t one = 1;

	(void)!write(l->wake, &one, sizeof one);
}

/* Under the engine's lock: give j to l; whether l must be woken. */
static int
loop_assign(struct loop *l, struct job *j)
{
	int was_empty = l->inbox == NULL;

	l->load++;
	j->next = NULL;
	if (l->inbox_tail != NULL)
		l->inbox_tail->next = j;
	else
		l->inbox = j;
	l->inbox_tail = j;
	if (l == this_loop) {
		l->self_queued = 1; /* it takes its inbox before it waits */
		return 0;
	}
	return was_empty;
}

/* Under the engine's lock: the loop with the fewest probes. */
static struct loop *
least_loaded(struct engine *e)
{
	struct loop *best =
	    this_loop != NULL && this_loop->eng == e ? this_loop : &e->loops[0];
	unsigned i;

	for (i = 0; i < e->nloops; i++)
		if (e->loops[i].load < best->load)
			best = &e->loops[i];
	return best;
}

/* The probe has ended: hand the result over, and start a waiting one. */
static void
job_end(struct job *j)
{
	struct loop *l = j->loop;
	struct engine *e = l->eng;
	struct job *next;

	j->ended = 1;
	heap_remove(l, j);
	dns_cancel(j->query);
	j->query = NULL;
	probe_free(j->p);
	j->p = NULL;
	if (e == NULL)
		return; /* engine_run takes the result */
	pthread_mutex_lock(&e->lock);
	l->load--;
	if ((next = e->waiting) != NULL && !e->stopping) {
		if ((e->waiting = next->next) == NULL)
			e->waiting_tail = NULL;
		e->nwaiting--;
		(void)loop_assign(l, next);
	} else
		e->in_flight--;
	pthread_mutex_unlock(&e->lock);
	j->done(j->arg, &j->res);
	j->next = l->dead;
	l->dead = j;
}

static void job_resolve(struct job *);

/* Whether a lookup may start now. */
static int
lookup_allowed(struct loop *l, double now)
{
	if (now - l->window >= LOOKUP_WINDOW) {
		l->window = now;
		l->lookups = 0;
	}
	return l->lookups < LOOKUPS_PER_WINDOW;
}

/* Start the waiting lookups the window allows. */
static void
lookups_start(struct loop *l, double now)
{
	struct job *j;

	while ((j = l->rwait) != NULL && lookup_allowed(l, now)) {
		if ((l->rwait = j->resolve_next) == NULL)
			l->rwait_tail = NULL;
		j->to_resolve = 0;
		if (!j->ended)
			job_resolve(j);
	}
}

/* Act on what the probe waits for now. */
static void
job_wait(struct job *j, enum probe_wait w)
{
	struct loop *l = j->loop;
	struct epoll_event ev;
	double t;
	int fd;

	if ((fd = probe_new_fd(j->p)) != -1) {
		memset(&ev, 0, sizeof ev);
		ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
		ev.data.ptr = j;
		/* Unwatched, the probe ends at its deadline. */
		if (epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev) == -1)
			log_warn("epoll_ctl (probe of %s)", j->req->url->text);
	}
	switch (w) {
	case PROBE_WAIT_DONE:
		job_end(j);
		return;
	case PROBE_WAIT_NOW:
		run_push(j);
		break;
	case PROBE_WAIT_RESOLVE:
		if (j->query != NULL || j->answered || j->to_resolve)
			break;
		if (l->rwait == NULL && lookup_allowed(l, clock_mono()))
			job_resolve(j);
		else {
			j->to_resolve = 1;
			j->resolve_next = NULL;
			if (l->rwait_tail != NULL)
				l->rwait_tail->resolve_next = j;
			else
				l->rwait = j;
			l->rwait_tail = j;
		}
		break;
	case PROBE_WAIT_IO:
		break;
	}
	if ((t = probe_timer(j->p)) != j->timer) {
		j->timer = t;
		if (j->hi != HEAP_NONE) {
			heap_up(l, j->hi);
			heap_down(l, j->hi);
		}
	}
}

/* The lookup ended (maybe within dns_lookup): step the probe soon. */
static void
job_answer(void *arg, const struct dns_answer *a)
{
	struct job *j = arg;

	j->query = NULL;
	j->answered = 1;
	j->naddrs = a->n;
	if (a->n > 0) {
		j->addrs = xreallocarray(NULL, a->n, sizeof *j->addrs);
		memcpy(j->addrs, a->addrs, a->n * sizeof *j->addrs);
	}
	j->dns_error = a->error;
	j->dns_errno = a->local_errno;
	run_push(j);
}

/* Watch the loop's resolver; -1 (logged) when it cannot be. */
static int
loop_watch_dns(struct loop *l)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof ev);
	ev.events = EPOLLIN;
	ev.data.ptr = (void *)(uintptr_t)&watch_dns;
	if (epoll_ctl(l->ep, EPOLL_CTL_ADD, dns_fd(l->dns), &ev) == -1) {
		log_warn("epoll_ctl (resolver)");
		return -1;
	}
	return 0;
}

static struct dns *
loop_dns(struct loop *l)
{
	if (l->dns != NULL)
		return l->dns;
	if ((l->dns = dns_new()) == NULL)
		return NULL;
	if (loop_watch_dns(l) == -1) {
		dns_free(l->dns);
		l->dns = NULL;
		return NULL;
	}
	if (l->eng == NULL)
		(void)pthread_setspecific(run_dns_key, l->dns);
	return l->dns;
}

static void
job_resolve(struct job *j)
{
	const struct url *u = probe_url(j->p);
	struct dns *d;
	struct dns_answer a;

	if ((d = loop_dns(j->loop)) == NULL) {
		a.n = 0;
		a.error = "the resolver cannot start";
		a.local_errno = errno == EMFILE || errno == ENFILE ? errno : 0;
		job_answer(j, &a);
		return;
	}
	j->loop->lookups++;
	j->query =
	    dns_lookup(d, u->host, u->port, probe_family(j->p), job_answer, j);
}

static void
job_begin(struct loop *l, struct job *j)
{
	enum probe_wait w;

	j->loop = l;
	if (j->start_at > clock_mono()) {
		/* Not yet: its timer is its start, and it holds nothing. */
		j->pending = 1;
		j->timer = j->start_at;
		heap_push(l, j);
		return;
	}
	j->p = probe_new(j->req, &j->res);
	probe_watch(j->p, l->ep);
	w = probe_begin(j->p);
	j->timer = probe_timer(j->p);
	heap_push(l, j);
	job_wait(j, w);
}

/* ---- a loop ------------------------------------------------------------- */

static int
loop_init(struct loop *l, struct engine *e)
{
	struct epoll_event ev;

	memset(l, 0, sizeof *l);
	l->eng = e;
	l->wake = -1;
	if ((l->ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		return -1;
	if (e == NULL)
		return 0;
	if ((l->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1)
		goto fail;
	memset(&ev, 0, sizeof ev);
	ev.events = EPOLLIN;
	ev.data.ptr = (void *)(uintptr_t)&watch_wake;
	if (epoll_ctl(l->ep, EPOLL_CTL_ADD, l->wake, &ev) == -1)
		goto fail;
	return 0;
fail:
	if (l->wake != -1)
		close(l->wake);
	close(l->ep);
	return -1;
}

/* Free the jobs that have ended, but those still on a list of the loop. */
static void
free_dead(struct loop *l)
{
	struct job *j, *next, *keep = NULL;

	for (j = l->dead; j != NULL; j = next) {
		next = j->next;
		if (j->queued || j->to_resolve) {
			j->next = keep;
			keep = j;
		} else
			job_free(j);
	}
	l->dead = keep;
}

/* Free the loop and every job it holds, without a word to anyone. */
static void
loop_free(struct loop *l)
{
	struct job *j, *next;

	while (l->nheap > 0) {
		j = l->heap[0];
		heap_remove(l, j);
		job_free(j);
	}
	for (j = l->inbox; j != NULL; j = next) {
		next = j->next;
		job_free(j);
	}
	for (j = l->dead; j != NULL; j = next) {
		next = j->next;
		job_free(j);
	}
	dns_free(l->dns);
	free(l->heap);
	if (l->wake != -1)
		close(l->wake);
	close(l->ep);
}

static void
run_list(struct loop *l)
{
	struct job *j, *next;
	enum probe_wait w;

	j = l->run;
	l->run = l->run_tail = NULL;
	for (; j != NULL; j = next) {
		next = j->run_next;
		j->queued = 0;
		if (j->ended)
			continue;
		if (j->answered) {
			j->answered = 0;
			w = probe_resolved(j->p, j->addrs, j->naddrs,
			    j->dns_error, j->dns_errno);
			free(j->addrs);
			j->addrs = NULL;
		} else
			w = probe_io(j->p);
		job_wait(j, w);
	}
}

static int
loop_timeout_ms(struct loop *l, double now)
{
	double t = -1, d;

	/* engine_run's probe may have ended in the run list. */
	if (l->run != NULL || l->self_queued ||
	    (l->eng == NULL && l->nheap == 0))
		return 0;
	if (l->nheap > 0)
		t = l->heap[0]->timer - now;
	if (l->dns != NULL && (d = dns_next(l->dns, now)) >= 0 &&
	    (t < 0 || d < t))
		t = d;
	if (l->rwait != NULL) {
		d = l->window + LOOKUP_WINDOW - now;
		if (t < 0 || d < t)
			t = d;
	}
	if (t < 0 && l->nheap == 0)
		return -1;
	if (t <= 0)
		return 0;
	if (t * 1000 >= WAIT_MAX_MS)
		return WAIT_MAX_MS;
	return (int)ceil(t * 1000);
}

/* One turn: step what is runnable, wait, handle events and timers. */
static void
loop_turn(struct loop *l)
{
	struct epoll_event ev[EVENTS_MAX];
	const enum watch *w;
	struct job *j;
	uint64_t count;
	double now;
	int i, n, dns_done = 0;

	lookups_start(l, clock_mono());
	run_list(l);
	free_dead(l);
	n = epoll_wait(l->ep, ev, EVENTS_MAX, loop_timeout_ms(l, clock_mono()));
	if (n == -1) {
		if (errno != EINTR)
			log_warn("epoll_wait");
		n = 0;
	}
	now = clock_mono();
	/* Answers first: the resolver's socket buffer is small. */
	for (i = 0; i < n; i++) {
		w = ev[i].data.ptr;
		if (*w == WATCH_DNS && !dns_done) {
			dns_process(l->dns, now);
			dns_done = 1;
		}
	}
	for (i = 0; i < n; i++) {
		w = ev[i].data.ptr;
		switch (*w) {
		case WATCH_JOB:
			j = (struct job *)(uintptr_t)w;
			if (!j->ended)
				job_wait(j, probe_io(j->p));
			break;
		case WATCH_WAKE:
			(void)!read(l->wake, &count, sizeof count);
			break;
		case WATCH_DNS:
			break; /* done above */
		case WATCH_CANCEL:
			l->cancelled = 1;
			break;
		}
	}
	if (l->dns != NULL && !dns_done && dns_next(l->dns, now) == 0)
		dns_process(l->dns, now);
	while (l->nheap > 0 && l->heap[0]->timer <= now) {
		j = l->heap[0];
		if (j->pending) {
			heap_remove(l, j);
			j->pending = 0;
			j->start_at = 0;
			job_begin(l, j);
		} else
			job_wait(j, probe_expire(j->p, 0));
	}
	free_dead(l);
}

static void *
loop_main(void *arg)
{
	struct loop *l = arg;
	struct engine *e = l->eng;
	struct job *j, *next;
	int stop;

	this_loop = l;
	for (;;) {
		pthread_mutex_lock(&e->lock);
		stop = e->stopping;
		j = NULL;
		if (!stop) {
			j = l->inbox;
			l->inbox = l->inbox_tail = NULL;
			l->self_queued = 0;
		}
		pthread_mutex_unlock(&e->lock);
		if (stop)
			break;
		for (; j != NULL; j = next) {
			next = j->next;
			job_begin(l, j);
		}
		loop_turn(l);
	}
	return NULL;
}

/* ---- the engine --------------------------------------------------------- */

struct engine *
engine_new(unsigned max_in_flight, unsigned threads)
{
	struct engine *e;
	sigset_t all, old;
	long ncpu;
	unsigned i;
	int rv;

	if (threads == 0) {
		ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		threads = ncpu < 1             ? 1
		          : ncpu > THREADS_MAX ? THREADS_MAX
		                               : (unsigned)ncpu;
	}
	e = xcalloc(1, sizeof *e);
	pthread_mutex_init(&e->lock, NULL);
	e->max = max_in_flight > 0 ? max_in_flight : 1;
	e->loops = xcalloc(threads, sizeof *e->loops);
	for (i = 0; i < threads; i++) {
		if (loop_init(&e->loops[i], e) == -1) {
			log_warn("probe engine: epoll");
			goto fail;
		}
		e->nloops++;
	}
	/* Signals are for the main thread; loops never see EINTR. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 0; i < e->nloops; i++) {
		if ((rv = pthread_create(&e->loops[i].thread, NULL, loop_main,
		         &e->loops[i])) != 0) {
			errno = rv;
			fatal("pthread_create");
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return e;
fail:
	for (i = 0; i < e->nloops; i++)
		loop_free(&e->loops[i]);
	free(e->loops);
	pthread_mutex_destroy(&e->lock);
	free(e);
	return NULL;
}

void
engine_free(struct engine *e)
{
	struct job *j, *next;
	unsigned i;

	if (e == NULL)
		return;
	pthread_mutex_lock(&e->lock);
	e->stopping = 1;
	pthread_mutex_unlock(&e->lock);
	for (i = 0; i < e->nloops; i++)
		loop_wake(&e->loops[i]);
	for (i = 0; i < e->nloops; i++)
		pthread_join(e->loops[i].thread, NULL);
	for (i = 0; i < e->nloops; i++)
		loop_free(&e->loops[i]);
	for (j = e->waiting; j != NULL; j = next) {
		next = j->next;
		job_free(j);
	}
	free(e->loops);
	pthread_mutex_destroy(&e->lock);
	free(e);
}

void
engine_start(struct engine *e, const struct probe_req *req,
    engine_done_fn *done, void *arg)
{
	engine_start_at(e, 0, req, done, arg);
}

void
engine_start_at(struct engine *e, double when, const struct probe_req *req,
    engine_done_fn *done, void *arg)
{
	struct job *j;
	struct loop *l = NULL;
	int wake = 0;

	j = job_new(req, done, arg);
	j->start_at = when;
	pthread_mutex_lock(&e->lock);
	if (e->in_flight < e->max) {
		e->in_flight++;
		l = least_loaded(e);
		wake = loop_assign(l, j);
	} else {
		j->next = NULL;
		if (e->waiting_tail != NULL)
			e->waiting_tail->next = j;
		else
			e->waiting = j;
		e->waiting_tail = j;
		e->nwaiting++;
	}
	pthread_mutex_unlock(&e->lock);
	if (wake)
		loop_wake(l);
}

void
engine_set_max(struct engine *e, unsigned max_in_flight)
{
	struct job *j;
	struct loop *l;
	unsigned i;
	int *wake;

	wake = xcalloc(e->nloops, sizeof *wake);
	pthread_mutex_lock(&e->lock);
	e->max = max_in_flight > 0 ? max_in_flight : 1;
	while (e->in_flight < e->max && (j = e->waiting) != NULL) {
		if ((e->waiting = j->next) == NULL)
			e->waiting_tail = NULL;
		e->nwaiting--;
		e->in_flight++;
		l = least_loaded(e);
		if (loop_assign(l, j))
			wake[l - e->loops] = 1;
	}
	pthread_mutex_unlock(&e->lock);
	for (i = 0; i < e->nloops; i++)
		if (wake[i])
			loop_wake(&e->loops[i]);
	free(wake);
}

unsigned
engine_in_flight(struct engine *e)
{
	unsigned n;

	pthread_mutex_lock(&e->lock);
	n = e->in_flight;
	pthread_mutex_unlock(&e->lock);
	return n;
}

size_t
engine_waiting(struct engine *e)
{
	size_t n;

	pthread_mutex_lock(&e->lock);
	n = e->nwaiting;
	pthread_mutex_unlock(&e->lock);
	return n;
}

/* ---- one probe on the caller's thread ----------------------------------- */

int
engine_run(const struct probe_req *req, struct probe_result *res)
{
	struct loop l;
	struct epoll_event ev;
	struct job *j;
	int err;

	if (loop_init(&l, NULL) == -1) {
		err = errno;
		res->check = req->check;
		free(res->url);
		res->url = xstrdup(req->url->text);
		res->success = 0;
		if (err == EMFILE || err == ENFILE)
			probe_note_fd_shortage(err);
		result_fail(res, REASON_RESOLVE, STAGE_RESOLVE,
		    "gemwatch "
		    "cannot wait for the probe: epoll: %s",
		    strerror(err));
		res->total = 0;
		res->time = clock_wall();
		return 0;
	}
	if (req->cancel_fd != -1) {
		memset(&ev, 0, sizeof ev);
		ev.events = EPOLLIN;
		ev.data.ptr = (void *)(uintptr_t)&watch_cancel;
		if (epoll_ctl(l.ep, EPOLL_CTL_ADD, req->cancel_fd, &ev) == -1)
			log_warn("epoll_ctl (cancel)");
	}
	pthread_once(&run_dns_once, run_dns_init);
	if ((l.dns = pthread_getspecific(run_dns_key)) != NULL &&
	    loop_watch_dns(&l) == -1)
		l.dns = NULL;
	j = job_new(req, NULL, NULL);
	job_begin(&l, j);
	while (!j->ended) {
		loop_turn(&l);
		if (l.cancelled && !j->ended)
			job_wait(j, probe_expire(j->p, 1));
	}
	result_clear(res);
	*res = j->res;
	result_init(&j->res);
	job_free(j);
	l.dns = NULL; /* the thread's, for its next probe */
	loop_free(&l);
	return res->success;
}

void
engine_run_free(void)
{
	struct dns *d;

	pthread_once(&run_dns_once, run_dns_init);
	if ((d = pthread_getspecific(run_dns_key)) != NULL) {
		(void)pthread_setspecific(run_dns_key, NULL);
		dns_free(d);
	}
}

unsigned long
engine_fd_raise(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return 0;
	if (rl.rlim_cur < rl.rlim_max && rl.rlim_cur < ENGINE_FD_CAP) {
		rl.rlim_cur =
		    rl.rlim_max < ENGINE_FD_CAP ? rl.rlim_max : ENGINE_FD_CAP;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
		(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	return rl.rlim_cur == RLIM_INFINITY ? ULONG_MAX
	                                    : (unsigned long)rl.rlim_cur;
}

unsigned
engine_fd_capacity(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur == RLIM_INFINITY)
		return UINT32_MAX;
	if (rl.rlim_cur <= ENGINE_FD_RESERVE)
		return 1;
	if (rl.rlim_cur - ENGINE_FD_RESERVE > UINT32_MAX)
		return UINT32_MAX;
	return (unsigned)(rl.rlim_cur - ENGINE_FD_RESERVE);
}
