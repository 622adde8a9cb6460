/*
 * The scheduler's runner of today: a pool of threads, each running one
 * blocking probe_run at a time (sched.h describes the runner's contract).
 */
#ifndef GEMWATCH_POOL_H
#define GEMWATCH_POOL_H

struct sched_runner;
struct tofu_store;

struct pool;

/* A pool whose probes record certificates in tofu (borrowed). */
struct pool *pool_new(struct tofu_store *tofu);
/* The pool as a runner for sched_new (borrowed from the pool). */
struct sched_runner *pool_runner(struct pool *);
/* Stop, as the runner's stop does if the scheduler has not, and free. */
void pool_free(struct pool *);

#endif
