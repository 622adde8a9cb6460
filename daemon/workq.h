/*
 * A few threads that run the work handed to them in the order it came:
 * the HTTP endpoint's renders, so that libmicrohttpd's threads only move
 * bytes and give cheap answers (/healthz) while a page is rendered.
 */
#ifndef GEMWATCH_WORKQ_H
#define GEMWATCH_WORKQ_H

struct workq;

/* A queue with nthreads threads (at least one), started now. */
struct workq *workq_new(unsigned nthreads);
/*
 * Run fn(arg, 0) on one of the threads, after the work queued before it;
 * once the queue is stopped, fn(arg, 1) from here at once. Thread-safe.
 */
void workq_push(
    struct workq *, void (*fn)(void *arg, int cancelled), void *arg);
/*
 * Stop: call fn(arg, 1) from here for every item not started yet, wait
 * for those running and join the threads. Items pushed from now on are
 * cancelled as they come, so other threads may go on pushing until the
 * queue is freed.
 */
void workq_stop(struct workq *);
/* Stop if not stopped, and free. NULL is fine. */
void workq_free(struct workq *);

#endif
