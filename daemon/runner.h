/*
 * The scheduler's runner: its jobs done on probe engines (engine.h), so a
 * probe or a run that waits costs a socket or a timer, not a thread
 * (sched.h describes the runner's contract). Probes go to one engine,
 * runs of requests (seq.h) to another of one thread, so that a run never
 * takes a page check's thread.
 */
#ifndef GEMWATCH_RUNNER_H
#define GEMWATCH_RUNNER_H

struct sched_runner;
struct tofu_store;

struct runner;

/*
 * A runner whose probes record certificates in tofu (borrowed); NULL
 * (logged) when an engine cannot start. How many run at once is the
 * scheduler's to bound (`concurrency`).
 */
struct runner *runner_new(struct tofu_store *tofu);
/* The runner as a runner for sched_new (borrowed from it). */
struct sched_runner *runner_sched(struct runner *);
/* Stop, as the runner's stop does if the scheduler has not, and free. */
void runner_free(struct runner *);

#endif
