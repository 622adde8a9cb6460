/*
 * The scheduler's runner: its jobs probed on the engine (engine.h), so a
 * probe that waits costs a socket, not a thread (sched.h describes the
 * runner's contract).
 */
#ifndef GEMWATCH_RUNNER_H
#define GEMWATCH_RUNNER_H

struct sched_runner;
struct tofu_store;

struct runner;

/*
 * A runner whose probes record certificates in tofu (borrowed); NULL
 * (logged) when the engine cannot start. How many run at once is the
 * scheduler's to bound (`concurrency`).
 */
struct runner *runner_new(struct tofu_store *tofu);
/* The runner as a runner for sched_new (borrowed from it). */
struct sched_runner *runner_sched(struct runner *);
/* Stop, as the runner's stop does if the scheduler has not, and free. */
void runner_free(struct runner *);

#endif
