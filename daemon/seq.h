/*
 * Runs of requests: a sequence of probes to one capsule, one connection
 * at a time, with a pause before each request, where each result decides
 * the next request. A kind of run (enum seq_kind: the crawl, ...) is a
 * table of operations, struct seq_ops; its state between requests is its
 * own, and its outcome is one JSON document, which the store keeps (one
 * slot per capsule and kind), state-dir saves, and the outputs show
 * through the same table. Two drivers run a kind: seq_run on the calling
 * thread (the command line), and in the daemon the scheduler (sched.h),
 * whose runner (runner.h) steps a run on a probe engine of its own, so a
 * run that waits costs neither a thread nor a slot of the page checks'
 * `concurrency`.
 */
#ifndef GEMWATCH_SEQ_H
#define GEMWATCH_SEQ_H

#include <jansson.h>
#include <stddef.h>

#include "buf.h"
#include "result.h"

struct capsule_conf;
struct conf;
struct probe_req;
struct store;

struct seq_ops {
	enum seq_kind kind;
	/* Seconds between two runs for c; 0 when c has none (not asked). */
	double (*interval)(const struct capsule_conf *c);
	/* A new run for c; conf and c are borrowed for the run's life. */
	void *(*begin)(const struct conf *, const struct capsule_conf *c);
	/*
	 * The next request, given the last one's result (NULL before the
	 * first; the run may move its contents out). Returns a request
	 * borrowed from the run until the next call, and sets *pause to
	 * the seconds to wait before it; NULL when the run is over. Called
	 * for one run by one thread at a time.
	 */
	const struct probe_req *(*next)(
	    void *run, struct probe_result *prev, double *pause);
	/* The outcome (a new reference; NULL only out of memory); frees run. */
	json_t *(*end)(void *run);
	/* Free a run abandoned midway: it says nothing about the capsule. */
	void (*abandon)(void *run);

	/* The outputs of a stored outcome (borrowed; store read lock held). */
	/* /api/v1/capsules/NAME/<kind>: a new reference; full asks for all. */
	json_t *(*api)(const json_t *outcome, int full);
	/* The status page's line for the capsule: HTML, escaped. */
	void (*page_line)(struct buf *, const json_t *outcome);
	/* The body of the kind's page, /<kind>?capsule=NAME: HTML, escaped. */
	void (*page)(struct buf *, const json_t *outcome);
	/* Its /metrics families, for every capsule of the store. */
	void (*metrics)(struct buf *, const struct store *);
};

/* The table of a kind (static). */
const struct seq_ops *seq_ops(enum seq_kind);
/* The kind named name[0..len), or -1. */
int seq_kind_find(const char *name, size_t len);
/* The wall-clock time of an outcome ("timestamp"), 0 when it has none. */
double seq_outcome_time(const json_t *outcome);

/*
 * Run a run to its end on the calling thread, sleeping through the
 * pauses; returns ops->end's outcome (the caller's reference).
 */
json_t *seq_run(const struct seq_ops *, void *run);

#endif
