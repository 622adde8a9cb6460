/*
 * The probe engine: many probes in flight, each waiting on a socket, not
 * on a thread. A few loop threads (epoll, a timer heap of the probes'
 * deadlines, a c-ares resolver each) drive the probes' state machines
 * (probe.h). Probes beyond max_in_flight wait in the engine, first come
 * first started.
 */
#ifndef GEMWATCH_ENGINE_H
#define GEMWATCH_ENGINE_H

#include "probe.h"
#include "result.h"

/*
 * Descriptors kept for what is not a probe's socket: DNS sockets, HTTP
 * clients' headroom, state files, pipes.
 */
#define ENGINE_FD_RESERVE 256

/*
 * Called once when a probe has ended, on a loop thread (never from within
 * engine_start). res is the engine's and valid during the call: done may
 * copy it, or move its contents out and result_init(res). done must not
 * call engine_free; it may call engine_start.
 */
typedef void engine_done_fn(void *arg, struct probe_result *res);

struct engine;

/*
 * An engine with at most max_in_flight probes in flight (at least 1) on
 * threads loop threads (0: one per core, at most 2). NULL (logged) when
 * the system refuses a descriptor or a thread.
 */
struct engine *engine_new(unsigned max_in_flight, unsigned threads);
/*
 * Abandon every probe in flight or waiting, without calling their done
 * (an abandoned probe says nothing about the capsule), stop the threads
 * and free everything. Never waits on a network peer.
 */
void engine_free(struct engine *);
/*
 * Probe req (borrowed until done is called) and call done(arg, result)
 * when it has ended. Beyond max_in_flight the probe waits its turn.
 * Any thread may call it. req->cancel_fd is not used: engine_free abandons.
 */
void engine_start(struct engine *, const struct probe_req *req,
    engine_done_fn *done, void *arg);
/*
 * The same, but the probe begins at when (monotonic seconds, clock_mono)
 * or later: until then it waits on the loop's timer heap, holding neither
 * a descriptor nor a thread, though it counts as in flight. This is how a
 * run of requests (seq.h) pauses between them.
 */
void engine_start_at(struct engine *, double when, const struct probe_req *req,
    engine_done_fn *done, void *arg);
/* Change the bound (a reload's `concurrency`); waiting probes start if it rose.
 */
void engine_set_max(struct engine *, unsigned max_in_flight);
/* Probes in flight now, and waiting for a turn. */
unsigned engine_in_flight(struct engine *);
size_t engine_waiting(struct engine *);

/*
 * One probe on the calling thread, with a loop of its own, until it has
 * ended or req->cancel_fd becomes readable (then "probe abandoned").
 * This is probe_run.
 */
int engine_run(const struct probe_req *, struct probe_result *res);
/* Free what engine_run keeps for the calling thread (its resolver). */
void engine_run_free(void);

/* The most file descriptors engine_fd_raise asks for. */
#define ENGINE_FD_CAP 1048576

/*
 * Raise the soft descriptor limit (RLIMIT_NOFILE) to the hard one, up to
 * ENGINE_FD_CAP; returns the soft limit now in force.
 */
unsigned long engine_fd_raise(void);
/*
 * How many probes the descriptor limit leaves room for, beyond
 * ENGINE_FD_RESERVE.
 */
unsigned engine_fd_capacity(void);

#endif
