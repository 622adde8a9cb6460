/*
 * A fixed set of threads taking items from one FIFO under one lock. An
 * item is freed by the thread that takes it, before its function runs,
 * so the function may hand its argument over (and the caller free it) at
 * once. workq_stop marks the queue stopping, takes the items still
 * queued and cancels each from the calling thread, then joins the
 * threads, which finish what they run and take nothing more; what is
 * pushed after that is cancelled by workq_push itself.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>

#include "log.h"
#include "workq.h"
#include "xmalloc.h"

struct workq_item {
	void (*fn)(void *, int);
	void *arg;
	struct workq_item *next;
};

struct workq {
	pthread_mutex_t lock; /* guards the fields below */
	pthread_cond_t cond;
	struct workq_item *head, *tail;
	int stopping;
	pthread_t *threads;
	unsigned nthreads;
};

static void *
workq_main(void *arg)
{
	struct workq *q = arg;
	struct workq_item *item;
	void (*fn)(void *, int);
	void *fnarg;

	for (;;) {
		pthread_mutex_lock(&q->lock);
		while (q->head == NULL && !q->stopping)
			pthread_cond_wait(&q->cond, &q->lock);
		if ((item = q->head) == NULL) { /* stopping, nothing left */
			pthread_mutex_unlock(&q->lock);
			return NULL;
		}
		if ((q->head = item->next) == NULL)
			q->tail = NULL;
		pthread_mutex_unlock(&q->lock);
		fn = item->fn;
		fnarg = item->arg;
		free(item);
		fn(fnarg, 0);
	}
}

struct workq *
workq_new(unsigned nthreads)
{
	struct workq *q;
	unsigned i;

	q = xcalloc(1, sizeof *q);
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cond, NULL);
	if (nthreads == 0)
		nthreads = 1;
	q->threads = xcalloc(nthreads, sizeof *q->threads);
	for (i = 0; i < nthreads; i++) {
		if (pthread_create(&q->threads[i], NULL, workq_main, q) != 0)
			fatalx("cannot start a render thread");
		q->nthreads++;
	}
	return q;
}

void
workq_push(struct workq *q, void (*fn)(void *, int), void *arg)
{
	struct workq_item *item;

	item = xmalloc(sizeof *item);
	item->fn = fn;
	item->arg = arg;
	item->next = NULL;
	pthread_mutex_lock(&q->lock);
	if (q->stopping) {
		pthread_mutex_unlock(&q->lock);
		free(item);
		fn(arg, 1);
		return;
	}
	if (q->tail != NULL)
		q->tail->next = item;
	else
		q->head = item;
	q->tail = item;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

void
workq_stop(struct workq *q)
{
	struct workq_item *item, *next;
	unsigned i;

	pthread_mutex_lock(&q->lock);
	if (q->stopping) {
		pthread_mutex_unlock(&q->lock);
		return;
	}
	q->stopping = 1;
	item = q->head;
	q->head = q->tail = NULL;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
	for (; item != NULL; item = next) {
		next = item->next;
		item->fn(item->arg, 1);
		free(item);
	}
	for (i = 0; i < q->nthreads; i++)
		pthread_join(q->threads[i], NULL);
}

void
workq_free(struct workq *q)
{
	if (q == NULL)
		return;
	workq_stop(q);
	pthread_cond_destroy(&q->cond);
	pthread_mutex_destroy(&q->lock);
	free(q->threads);
	free(q);
}
