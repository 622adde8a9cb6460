/*
 * Many probes on an engine for the command line (gemwatch probe, gemwatch
 * survey): at most `parallel` in flight, one at a time per key (a host,
 * or a host:port), results handed back on the calling thread as they end.
 */
#ifndef GEMWATCH_BATCH_H
#define GEMWATCH_BATCH_H

#include <stddef.h>

#include "probe.h"
#include "result.h"

struct engine;
struct batch;

/* A batch on engine e (borrowed) with at most parallel probes in flight. */
struct batch *batch_new(struct engine *e, unsigned parallel);
/*
 * Add probe id of req (borrowed until its result was taken); probes with
 * the same key (copied) never run at once. Only before batch_next.
 */
void batch_add(struct batch *, const struct probe_req *req, const char *key,
    size_t id);
/*
 * Start what may start and wait up to timeout seconds (< 0: as long as it
 * takes) for a probe to end: 1 with its id and its result moved into res
 * (initialised or cleared by the caller, who clears it), 0 when the time
 * passed first, -1 when every probe has been handed back.
 */
int batch_next(struct batch *, double timeout, size_t *id,
    struct probe_result *res);
/* Probes added, and handed back so far. */
size_t batch_total(const struct batch *);
size_t batch_returned(const struct batch *);
/* Free; the engine must have been freed first if probes are in flight. */
void batch_free(struct batch *);

#endif
