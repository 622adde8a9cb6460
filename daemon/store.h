/*
 * The results store: per capsule and check, the latest result, the
 * counters of SPEC.md §6 and a history of recent results. Probes publish
 * into it under one lock; the HTTP thread only reads through store_rdlock.
 * The history is compact (see store.c), so it is read through
 * store_history_get, which fills a view. The whole store can be saved to
 * a snapshot file and loaded back at start (store_snapshot.c).
 */
#ifndef GEMWATCH_STORE_H
#define GEMWATCH_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "result.h"

#define STORE_RECENT 4

struct capsule_conf;
struct lag;
struct store_entry;
struct store_fact;
struct store_site;

struct store_check {
	/* The latest result, NULL before the first. Its strings belong to
	 * the store: never result_clear it. */
	struct probe_result *last;
	uint64_t probes;
	uint64_t failures[REASON__COUNT];
	uint64_t ends[END__COUNT];
	size_t ring_count; /* results in the history */

	/* Private to the store. */
	struct store_entry **ring; /* segments (store.c), NULL when empty */
	uint32_t ring_head;        /* slot of the newest */
	uint32_t ring_room;        /* slots allocated, up to the history */
	struct store_fact **facts; /* what results share, by index */
	uint32_t *free_slots;      /* indexes of NULL facts */
	uint32_t nfacts, fact_cap, nfree;
	uint32_t last_fact;            /* last's */
	uint32_t recent[STORE_RECENT]; /* facts used lately */
	struct store_site *cert_site;  /* the newest with a certificate */
	uint8_t cn_end;                /* the newest end telling close_notify */
	uint8_t check;                 /* enum check */
};

struct store_capsule {
	char *name;
	char *url;
	int has_error_page;
	struct store_check check[CHECK__COUNT];
	/* The last run of each kind (seq.h): its outcome, or NULL. */
	json_t *seq[SEQ__COUNT];
};

struct store;

struct store *store_new(void);
void store_free(struct store *);

/*
 * Make the capsule set match caps, the n capsules this instance keeps
 * (conf_shard's; borrowed), under the write lock: capsules whose name is
 * unchanged keep counters and history, new ones start empty, removed ones
 * are dropped; history is the new history length.
 */
void store_sync(struct store *, unsigned history,
    const struct capsule_conf *const *caps, size_t n);
/* Publish a finished probe of capsule name (copied). Logs state changes.
 * A result for a capsule (or error page) no longer configured is dropped. */
void store_put(struct store *, const char *name, const struct probe_result *);

/*
 * Keep outcome (the reference passes to the store) as capsule name's last
 * run of kind; dropped when the capsule is no longer configured.
 */
void store_seq_put(
    struct store *, const char *name, enum seq_kind, json_t *outcome);
/* The wall-clock time of name's last run of kind, 0 when none is kept. */
double store_seq_last(struct store *, const char *name, enum seq_kind);
/*
 * Write the outcomes of kind to path atomically, when one was put since
 * the last save (else nothing). 0, or -1 after logging a warning.
 */
int store_seq_save(struct store *, enum seq_kind, const char *path);
/*
 * Restore the outcomes path holds for the capsules configured now (after
 * the first store_sync). A missing file is a first start (0); one that
 * cannot be used is reported and renamed aside to path.corrupt (-1).
 */
int store_seq_load(struct store *, enum seq_kind, const char *path);

/* The daemon's reload status, for gemwatch_config_last_reload_* metrics:
 * ok is the outcome of the latest (re)load; when is remembered only when
 * ok, as the time of the last successful one. Initially ok=1, when=0. */
void store_set_reload(struct store *, int ok, double when);

/*
 * How late probes start, as the scheduler counts it: set by main, read
 * by the renderers (copied out; a lock of its own, not the read lock, so
 * a long render never holds up the main loop here).
 */
void store_set_lag(struct store *, const struct lag *);
void store_lag(struct store *, struct lag *);
/* Read access: hold the read lock while using anything returned below. */
void store_rdlock(struct store *);
void store_unlock(struct store *);
size_t store_count(const struct store *);
/* A number that changes whenever store_sync changes the capsules: their
 * names, order or error pages. */
unsigned long store_generation(const struct store *);
const struct store_capsule *store_at(const struct store *, size_t i);
/* A capsule by name, or NULL; under the write lock it may be changed. */
struct store_capsule *store_find(const struct store *, const char *name);
/*
 * Fill view with the i-th newest result of the history (0 = newest);
 * returns 0, or -1 past the end. The view's strings are borrowed from the
 * store and valid while the read lock is held: never result_clear it.
 * Times keep milliseconds and durations microseconds.
 */
int store_history_get(
    const struct store_check *, size_t i, struct probe_result *view);
/* Reload status (read lock held): returns ok, sets *when. */
int store_reload_status(const struct store *, double *when);

/* The whole store in a few numbers, for a one-line summary. */
struct store_tally {
	size_t capsules;
	size_t up;                  /* the page's latest probe succeeded */
	size_t down;                /* ... failed */
	size_t pending;             /* ... not probed yet */
	size_t error_pages_failing; /* error-path's latest probe failed */
	int reload_ok;              /* the latest (re)load succeeded */
};
/* Fill t (takes the read lock itself). */
void store_tally(struct store *, struct store_tally *t);

/*
 * Write the counters, latest results and histories to path atomically
 * (path.tmp, fsync, rename) under the read lock. Returns 0, or -1 after
 * logging a warning.
 */
int store_save(struct store *, const char *path);
/*
 * Restore what path holds for the capsules (and error pages) configured
 * now, replacing their state; others are ignored. Call after the first
 * store_sync, before results are put. A missing file is a first start
 * (0). A file that cannot be used is reported, renamed aside to
 * path.corrupt and the store left as it was (-1).
 */
int store_load(struct store *, const char *path);
/* store_load's parser: restore from buf[0..len); -1 with the problem in
 * err (errlen bytes) when it is unusable, and then the store is unchanged. */
int store_restore(
    struct store *, const void *buf, size_t len, char *err, size_t errlen);

#endif
