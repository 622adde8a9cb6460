/*
 * gemwatch survey's pure parts: a line of a capsule list (a host, a
 * host:port or a gemini URL, with # comments), and the census of the
 * results (how many answered, how the answers ended, TLS versions, status
 * classes, certificates, latency percentiles).
 */
#ifndef GEMWATCH_SURVEY_H
#define GEMWATCH_SURVEY_H

#include <jansson.h>
#include <stddef.h>

#include "buf.h"
#include "result.h"
#include "url.h"

#define SURVEY_LINE_MAX 4096 /* bytes in one line of a capsule list */
#define SURVEY_TLS_NAMES 8   /* TLS versions counted apart */

/*
 * Parse one line (without its newline). Returns 1 and fills *u (free with
 * url_free) for a capsule, 0 for a blank or comment line, -1 with *err
 * pointing at a static message. A bare host or host:port means its root,
 * gemini://HOST[:PORT]/. A # starts a comment at the start of the line or
 * after a blank. No I/O; fuzzed.
 */
int survey_line(const char *buf, size_t len, struct url *u, const char **err);

struct census {
	double now;      /* Unix time certificates expire against */
	size_t capsules; /* probed */
	size_t succeeded;
	size_t answered;         /* a valid header arrived */
	size_t ends[END__COUNT]; /* of those that answered */
	size_t failures[REASON__COUNT];
	size_t classes[7]; /* [1] .. [6]: 1x .. 6x, of those that answered */
	struct {
		const char *name; /* static, from GnuTLS */
		size_t n;
	} tls[SURVEY_TLS_NAMES];
	size_t tls_other; /* versions beyond SURVEY_TLS_NAMES names */
	size_t certs, self_signed, expired, mismatched;
	double *latency; /* total seconds of those that answered */
	size_t nlatency, latency_cap;
	int sorted; /* latency is in order */
	/* Set by the caller, reported as they are. */
	size_t bad_lines, duplicates;
	double seconds; /* the survey's wall time */
};

void census_init(struct census *, double now);
void census_free(struct census *);
/* Count one result in. */
void census_add(struct census *, const struct probe_result *);
/* Latency percentile p (0 < p <= 100) of those that answered; -1: none. */
double census_latency(struct census *, double p);
/* The census in words. */
void census_text(struct buf *, struct census *);
/* The census as {"census": {...}} (new reference; NULL out of memory). */
json_t *census_json(struct census *);

#endif
