/*
 * Alerts without Prometheus: on a change of a capsule's state (down, up,
 * close_notify lost or back, certificate changed, expiring or not the
 * pinned one, a crawl or a diagnose run finding new problems or none any
 * more) run the operator's `notify` commands, each with the event
 * as a JSON document on stdin and GEMWATCH_* variables. Deciding is
 * cheap and done by the caller's thread; commands run on the notifier's
 * own thread, a few at once, each under a deadline. What was sent is kept
 * across reloads and, in state-dir, across restarts.
 */
#ifndef GEMWATCH_NOTIFY_H
#define GEMWATCH_NOTIFY_H

#include <jansson.h>
#include <stdint.h>

#include "result.h"

struct capsule_conf;
struct conf;

enum notify_event {
	NOTIFY_DOWN,
	NOTIFY_UP,
	NOTIFY_CLOSE_NOTIFY_LOST,
	NOTIFY_CLOSE_NOTIFY_BACK,
	NOTIFY_CERT_CHANGED,
	NOTIFY_CERT_EXPIRING,
	NOTIFY_CERT_MISMATCH,
	NOTIFY_CRAWL_PROBLEMS,
	NOTIFY_CRAWL_CLEAN,
	NOTIFY_DIAGNOSE_FAILING,
	NOTIFY_DIAGNOSE_PASSING,
	NOTIFY_TEST, /* gemwatch notify-test only */
	NOTIFY_EVENT__COUNT
};

/* What became of one run of one command. */
enum notify_outcome {
	NOTIFY_OK,      /* exited 0 */
	NOTIFY_FAILED,  /* exited non-zero, or killed by a signal */
	NOTIFY_TIMEOUT, /* still running at notify-timeout: killed */
	NOTIFY_ERROR,   /* could not be started */
	NOTIFY_DROPPED, /* never run: queue full, or shutting down */
	NOTIFY_OUTCOME__COUNT
};

struct notify;

/*
 * A notifier whose state is kept in state_path (NULL: in memory only);
 * what the file holds is loaded now. Commands run once notify_apply has
 * given it a configuration.
 */
struct notify *notify_new(const char *state_path);
/*
 * Follow conf (borrowed; what is needed is copied): its notify commands
 * and settings, and its capsules, whose state is kept by name. Main
 * thread.
 */
void notify_apply(struct notify *, const struct conf *);
/*
 * A finished probe of c's check: update the state and queue the events
 * it causes. Thread-safe; never waits for a command or the disk. n may
 * be NULL.
 */
void notify_result(struct notify *, const struct capsule_conf *c, enum check,
    const struct probe_result *);
/*
 * A finished run of kind k for c, its outcome borrowed (seq.h): compare
 * its problems with the previous run's and queue the events it causes.
 * Thread-safe; never waits for a command or the disk. n may be NULL.
 */
void notify_run(struct notify *, const struct capsule_conf *c, enum seq_kind k,
    const json_t *outcome);
/* Queue a sample event about c (NULL: no capsule) for every command. */
void notify_test(struct notify *, const struct capsule_conf *c);
/* Wait until no command is queued or running. */
void notify_drain(struct notify *);
/* How often each event's commands ended how (thread-safe). */
void notify_counts(
    struct notify *, uint64_t out[NOTIFY_EVENT__COUNT][NOTIFY_OUTCOME__COUNT]);
/*
 * Stop: commands running get a few seconds to finish, queued ones are
 * dropped, the state is saved; then free. NULL is fine.
 */
void notify_free(struct notify *);

const char *notify_event_name(enum notify_event);
const char *notify_outcome_name(enum notify_outcome);

#endif
