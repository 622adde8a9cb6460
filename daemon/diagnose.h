/*
 * gemwatch diagnose: a conformance check of a Gemini server. The checks
 * are a table (name, purpose, the rule of the Gemini specification they
 * test, a request builder, a judge); each runs on a connection of its
 * own, one after the other, and every answer is also judged on how it
 * ended (close_notify, and no body after a non-2x header). A miss of a
 * MUST of the specification is a fail, a miss of a SHOULD or of common
 * practice where the specification is silent is a warn.
 */
#ifndef GEMWATCH_DIAGNOSE_H
#define GEMWATCH_DIAGNOSE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "result.h"
#include "seq.h"
#include "url.h"

enum diag_verdict { DIAG_PASS, DIAG_FAIL, DIAG_WARN, DIAG_SKIP, DIAG__COUNT };

/* Whom to check and how. */
struct diag_target {
	const struct url *url; /* borrowed: host and port; the path is unused */
	int family;            /* AF_UNSPEC, AF_INET, AF_INET6 */
	double timeout;        /* seconds per check */
	const char *sni;       /* NULL: the host, none for IP literals */
	int cancel_fd; /* -1, or readable when the run must be abandoned */
};

/* One check's outcome. */
struct diag_outcome {
	const char *name; /* static, from the table */
	char *request;    /* what was sent, escaped (\r, \n, \xNN); or NULL */
	int status;       /* -1: no valid header */
	char *meta;       /* or NULL */
	enum end end;
	int64_t body_bytes;   /* -1: not reached */
	char tls_version[16]; /* "TLS1.3", or "" */
	char address[46];     /* connected to, or "" */
	enum diag_verdict verdict;
	char *why; /* never NULL once judged */
};

/* A run of the checks against one target. */
struct diag_report {
	char *target; /* the root URL checked */
	double time;  /* when the run ended (Unix seconds); 0: never ran */
	struct diag_outcome *o;
	size_t n;
	unsigned count[DIAG__COUNT];
};

/* The table, in the order the checks run. */
size_t diag_checks(void);
const char *diag_check_name(size_t);
const char *diag_check_purpose(size_t);
const char *diag_check_rule(size_t);
/* Index of the named check (case-sensitive), or -1. */
int diag_check_find(const char *name);
const char *diag_verdict_name(enum diag_verdict);

/*
 * Mark in sel[diag_checks()] the checks of a comma list; 0, or -1 with
 * *bad pointing into list at the unknown name (its length in *badlen).
 */
int diag_select(
    const char *list, unsigned char *sel, const char **bad, size_t *badlen);

/*
 * A run of the selected checks (sel: diag_checks() flags, NULL: all) as a
 * sequence of requests, each decided when the one before has its answer:
 * for the command line (diagnose_run) and the daemon's scheduler alike.
 * t is copied; its url is borrowed for the run's life.
 */
struct diag_run;
struct probe_req;
struct diag_run *diag_run_new(
    const struct diag_target *t, const unsigned char *sel);
/*
 * Judge prev, the result of the request returned last (NULL at first),
 * and return the next request (borrowed until the next call), or NULL
 * when every check has run.
 */
const struct probe_req *diag_run_next(
    struct diag_run *, const struct probe_result *prev);
/* Move the report to rep (freed first), stamped now, and free the run. */
void diag_run_end(struct diag_run *, struct diag_report *rep);
/* Free a run abandoned midway. */
void diag_run_free(struct diag_run *);

/*
 * Run the selected checks (sel NULL: all) on the calling thread, one
 * connection at a time, into rep (freed first with diag_report_free).
 * done, when not NULL, is called after each check with its outcome.
 * Returns 0, or -1 when cancelled (rep then holds what ran).
 */
int diagnose_run(const struct diag_target *, const unsigned char *sel,
    struct diag_report *rep,
    void (*done)(void *arg, const struct diag_outcome *), void *arg);
void diag_report_init(struct diag_report *);
void diag_report_free(struct diag_report *);

/* The report as JSON (new reference), NULL when out of memory. */
json_t *diag_report_json(const struct diag_report *);
/* Read back what diag_report_json wrote; 0, or -1 when it is not one. */
int diag_report_from_json(json_t *, struct diag_report *);
/* "23 pass, 1 fail: URLAboveMaxSize" (the names of fails, then warns). */
void diag_summary(const struct diag_report *, struct buf *);
/* Append bytes as text: \r, \n, \\, \xNN for other bytes outside ASCII
 * graphics and space. */
void diag_escape(struct buf *, const char *, size_t);

/* The daemon's diagnose=D runs (seq.h): the checks as a run of requests. */
extern const struct seq_ops diagnose_ops;

#endif
