/*
 * A pool of threads that runs the scheduler's jobs, each thread one
 * blocking probe_run at a time. Jobs wait in a queue; a thread is added
 * whenever a job arrives and no thread is idle to take it, so the pool
 * grows to the scheduler's concurrency and no further, and threads are
 * kept for the next jobs. Stopping sets `stopping`, then writes the
 * cancel pipe that every probe polls, so the probes in flight end at once
 * (the scheduler, stopping already, publishes none of them), and joins
 * the threads; queued jobs are dropped unstarted.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"
#include "pool.h"
#include "probe.h"
#include "sched.h"
#include "xmalloc.h"

struct pool_item {
	struct sched_job	*job;
	struct pool_item	*next;
};

struct pool {
	struct sched_runner	 runner;	/* first: the runner is the pool */
	struct tofu_store	*tofu;
	int			 cancel[2];	/* readable: abandon every probe */

	pthread_mutex_t		 lock;		/* guards the fields below */
	pthread_cond_t		 cond;
	struct pool_item	*head, *tail;	/* jobs not taken yet */
	size_t			 queued;
	size_t			 idle;		/* threads waiting for a job */
	int			 stopping;
	pthread_t		*threads;
	size_t			 nthreads;
};

static void *
pool_main(void *arg)
{
	struct pool		*p = arg;
	struct pool_item	*item;
	struct sched_job	*job;
	struct probe_req	 req;
	struct probe_result	 res;

	result_init(&res);
	for (;;) {
		pthread_mutex_lock(&p->lock);
		while (p->head == NULL && !p->stopping) {
			p->idle++;
			pthread_cond_wait(&p->cond, &p->lock);
			p->idle--;
		}
		if (p->stopping) {
			pthread_mutex_unlock(&p->lock);
			break;
		}
		item = p->head;
		if ((p->head = item->next) == NULL)
			p->tail = NULL;
		p->queued--;
		pthread_mutex_unlock(&p->lock);

		job = item->job;
		free(item);
		probe_req_for(job->conf, job->cap, job->check, &req);
		req.cancel_fd = p->cancel[0];
		req.tofu = p->tofu;
		probe_run(&req, &res);
		sched_done(job, &res);
		result_clear(&res);
	}
	return NULL;
}

static void
pool_start(struct sched_runner *r, struct sched_job *job)
{
	struct pool		*p = (struct pool *)r;
	struct pool_item	*item;
	int			 rv;

	item = xcalloc(1, sizeof *item);
	item->job = job;
	pthread_mutex_lock(&p->lock);
	if (p->tail != NULL)
		p->tail->next = item;
	else
		p->head = item;
	p->tail = item;
	p->queued++;
	if (p->queued > p->idle) {
		p->threads = xreallocarray(p->threads, p->nthreads + 1,
		    sizeof *p->threads);
		if ((rv = pthread_create(&p->threads[p->nthreads], NULL,
		    pool_main, p)) != 0) {
			errno = rv;
			fatal("pthread_create");
		}
		p->nthreads++;
	}
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

static void
pool_stop(struct sched_runner *r)
{
	struct pool		*p = (struct pool *)r;
	struct pool_item	*item, *next;
	size_t			 i;

	pthread_mutex_lock(&p->lock);
	if (p->stopping) {
		pthread_mutex_unlock(&p->lock);
		return;
	}
	p->stopping = 1;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	(void)!write(p->cancel[1], "", 1);
	for (i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	for (item = p->head; item != NULL; item = next) {
		next = item->next;
		free(item);
	}
	p->head = p->tail = NULL;
	p->queued = 0;
}

struct pool *
pool_new(struct tofu_store *tofu)
{
	struct pool *p;

	p = xcalloc(1, sizeof *p);
	p->runner.start = pool_start;
	p->runner.stop = pool_stop;
	p->tofu = tofu;
	if (pipe2(p->cancel, O_CLOEXEC | O_NONBLOCK) == -1)
		fatal("pipe");
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	return p;
}

struct sched_runner *
pool_runner(struct pool *p)
{
	return &p->runner;
}

void
pool_free(struct pool *p)
{
	if (p == NULL)
		return;
	pool_stop(&p->runner);
	free(p->threads);
	close(p->cancel[0]);
	close(p->cancel[1]);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
