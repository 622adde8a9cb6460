/*
 * The results store: per capsule and check, the latest result, the
 * counters of SPEC.md §6 and a ring of recent results. Probes publish into
 * it under one lock; the HTTP thread only reads through store_rdlock.
 */
#ifndef GEMWATCH_STORE_H
#define GEMWATCH_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "result.h"

struct conf;

struct store_check {
	int			 has_last;
	struct probe_result	 last;
	uint64_t		 probes;
	uint64_t		 failures[REASON__COUNT];
	uint64_t		 ends[END__COUNT];
	struct probe_result	*ring;	/* history, capacity = store's history */
	size_t			 ring_head;	/* index of the newest */
	size_t			 ring_count;
};

struct store_capsule {
	char			*name;
	char			*url;
	int			 has_error_page;
	struct store_check	 check[CHECK__COUNT];
};

struct store;

struct store *store_new(void);
void store_free(struct store *);

/*
 * Make the capsule set match conf (under the write lock): capsules whose
 * name is unchanged keep counters and history, new ones start empty,
 * removed ones are dropped; the history length follows conf->history.
 */
void store_sync(struct store *, const struct conf *);
/* Publish a finished probe of capsule name (copied). Logs state changes.
 * A result for a capsule (or error page) no longer configured is dropped. */
void store_put(struct store *, const char *name, const struct probe_result *);

/* The daemon's reload status, for gemwatch_config_last_reload_* metrics:
 * ok is the outcome of the latest (re)load; when is remembered only when
 * ok, as the time of the last successful one. Initially ok=1, when=0. */
void store_set_reload(struct store *, int ok, double when);

/* Read access: hold the read lock while using anything returned below. */
void store_rdlock(struct store *);
void store_unlock(struct store *);
size_t store_count(const struct store *);
const struct store_capsule *store_at(const struct store *, size_t i);
const struct store_capsule *store_find(const struct store *, const char *name);
/* i-th newest result of the history (0 = newest), NULL past the end. */
const struct probe_result *store_history(const struct store_check *, size_t i);
/* Reload status (read lock held): returns ok, sets *when. */
int store_reload_status(const struct store *, double *when);

#endif
