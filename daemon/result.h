/*
 * struct probe_result: the one currency between the probe, the store and
 * the outputs (metrics, JSON, page). Also the names of its enumerations,
 * which are part of the contract (SPEC.md §1, §4, §5).
 */
#ifndef GEMWATCH_RESULT_H
#define GEMWATCH_RESULT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum check { CHECK_PAGE, CHECK_ERROR_PAGE, CHECK__COUNT };

/*
 * The kinds of runs of requests (seq.h) a capsule may have besides its
 * checks; each has its slot in the store, its route and its state file.
 */
enum seq_kind { SEQ_CRAWL, SEQ_DIAGNOSE, SEQ__COUNT };

/* How the response ended (SPEC §1); END_NONE: the body was never reached. */
enum end {
	END_NONE,
	END_CLOSE_NOTIFY,
	END_PREMATURE,
	END_RESET,
	END_TIMEOUT,
	END_LIMIT,
	END_ERROR,
	END__COUNT
};

/* Why a probe failed (SPEC §4); REASON_NONE on success. */
enum reason {
	REASON_NONE,
	REASON_RESOLVE,
	REASON_CONNECT,
	REASON_TLS,
	REASON_TIMEOUT,
	REASON_HEADER,
	REASON_STATUS,
	REASON_CLOSE_NOTIFY,
	REASON_CERT,
	REASON_BODY,
	REASON__COUNT
};

enum stage {
	STAGE_NONE,
	STAGE_RESOLVE,
	STAGE_CONNECT,
	STAGE_TLS,
	STAGE_REQUEST,
	STAGE_HEADER,
	STAGE_BODY,
	STAGE__COUNT
};

/* Phases timed; a negative duration means the phase was not reached. */
enum phase {
	PHASE_RESOLVE,
	PHASE_CONNECT,
	PHASE_TLS,
	PHASE_HEADER,
	PHASE_BODY,
	PHASE__COUNT
};

enum tofu {
	TOFU_NONE,     /* no certificate, or no TOFU store */
	TOFU_NEW,      /* first time this host:port was seen; now pinned */
	TOFU_MATCH,    /* same certificate as first seen */
	TOFU_CHANGED,  /* differs from the first-seen certificate */
	TOFU_PINNED,   /* matches the configured fingerprint */
	TOFU_MISMATCH, /* differs from the configured fingerprint */
	TOFU__COUNT
};

#define SHA256_HEX_LEN 64

struct cert_facts {
	int present;
	char sha256[SHA256_HEX_LEN + 1]; /* of the DER, lower-case hex */
	char
	    pubkey_sha256[SHA256_HEX_LEN + 1]; /* of the SubjectPublicKeyInfo */
	char *subject;                         /* RFC 4514 */
	char *issuer;
	time_t not_before;
	time_t not_after;
	int self_signed;
	int hostname_match;
	enum tofu tofu;
	int key_kept; /* with TOFU_CHANGED: 1 same key (renewal), 0 new key, -1
	                 unknown */
};

struct probe_result {
	enum check check;
	char *url;   /* canonical URL probed */
	double time; /* wall clock when the probe finished (Unix seconds) */
	int success;
	enum reason reason;
	enum stage stage; /* stage where it failed; STAGE_NONE on success */
	char *message;    /* human-readable failure detail, or NULL */

	char address[46]; /* numeric address connected to, or "" */
	int port;
	int ip_protocol; /* 4, 6, or 0 when not connected */

	double dur[PHASE__COUNT]; /* seconds; < 0 when not reached */
	double total;             /* seconds */
	/*
	 * How the body arrived, in seconds, < 0 when it was not reached:
	 * the longest silence between two reads of body bytes (the end of
	 * the header counts as the first), and the silence from the last of
	 * them to the end. A proxy that cut a stalled body at its idle
	 * timeout shows as a long idle_before_end.
	 */
	double max_gap;
	double idle_before_end;

	const char *tls_version; /* static strings from GnuTLS, or NULL */
	const char *tls_cipher;  /* IANA name */

	struct cert_facts cert;

	int status;         /* 10..69, or -1 when no valid header */
	char *meta;         /* or NULL */
	int64_t body_bytes; /* -1 when the body was not reached */
	enum end end;
};

/* Initialise to "nothing known". */
void result_init(struct probe_result *);
/* Free what the result owns and re-initialise it. */
void result_clear(struct probe_result *);
/* Record a failure, keeping the first one. The message is copied. */
void result_fail(struct probe_result *, enum reason, enum stage,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* The reason an end counts as (SPEC §4): close_notify, timeout, tls, body. */
enum reason end_reason(enum end);

const char *check_name(enum check);
/* "crawl": the kind's name in routes, file names and logs. */
const char *seq_name(enum seq_kind);
const char *end_name(enum end); /* NULL for END_NONE */
/* How it ended in a few words ("timed out"); NULL for END_NONE. */
const char *end_brief(enum end);
/* How it ended in a sentence ("complete: close_notify received"). */
const char *end_words(enum end);
const char *reason_name(enum reason); /* NULL for REASON_NONE */
const char *stage_name(enum stage);
const char *phase_name(enum phase);
const char *tofu_name(enum tofu); /* NULL for TOFU_NONE */

/*
 * Whether the body went quiet long enough before its end to say so
 * (the status page, "gemwatch probe"): more than STALL_LONG seconds and
 * most of the probe's time, before an end a proxy's cut can look like
 * (close_notify, premature, reset; a timeout says it already).
 */
#define STALL_LONG 1.0
int result_stalled(const struct probe_result *);
/*
 * The stall in a sentence, for a failure message and the reports: "the
 * body stalled 30.0 s before close_notify: a proxy's idle timeout may
 * have cut it". Empty when the body was not reached or ended otherwise.
 */
void stall_words(const struct probe_result *, char *out, size_t len);

/* Format a Unix time as RFC 3339 UTC ("2026-11-28T16:00:00Z"). */
void format_rfc3339(time_t, char out[32]);

#endif
