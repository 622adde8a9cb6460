/*
 * Many probes on an engine for the command line (gemwatch probe, gemwatch
 * survey): at most `parallel` in flight, one at a time per key (a host,
 * or a host:port), each result handed to a callback as its probe ends.
 */
#ifndef GEMWATCH_BATCH_H
#define GEMWATCH_BATCH_H

#include <stddef.h>

#include "probe.h"
#include "result.h"

struct engine;
struct batch;

/*
 * Called once per probe as it ends, on an engine thread, one call at a
 * time: id is the probe's, res is valid during the call (it may be moved
 * out, leaving res initialised).
 */
typedef void batch_result_fn(void *arg, size_t id, struct probe_result *res);
/* Called every so often on the thread that runs the batch. */
typedef void batch_tick_fn(void *arg);

/* A batch on engine e (borrowed) with at most parallel probes in flight. */
struct batch *batch_new(struct engine *e, unsigned parallel);
/*
 * Add probe id of req (borrowed until its result was handed over); probes
 * with the same key (copied) never run at once. Only before batch_run.
 */
void batch_add(
    struct batch *, const struct probe_req *req, const char *key, size_t id);
/*
 * Run every probe, calling result for each as it ends, and tick (when not
 * NULL) every `every` seconds on the calling thread; return once every
 * probe has ended.
 */
void batch_run(struct batch *, batch_result_fn *result, batch_tick_fn *tick,
    double every, void *arg);
/* Probes ended so far (any thread). */
size_t batch_ended(struct batch *);
void batch_free(struct batch *);

#endif
