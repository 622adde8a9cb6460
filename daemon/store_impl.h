/*
 * The store's insides, shared by store.c (the data in memory) and
 * store_snapshot.c (the same data in a file). Nothing else includes this.
 *
 * A check's history is a ring of 28-byte entries: the numbers that change
 * from one probe to the next, and the index of a fact in the check's table.
 * A fact holds what changes only with the outcome (status, META, reason,
 * stage, message) and points to a site, which holds what changes even
 * more rarely (URL, address, TLS, certificate). Both are refcounted, their
 * strings in the same allocation; a probe that looks like one of the few
 * facts used lately (store_check.recent) allocates nothing, and a capsule
 * flapping between up and down holds two small facts that share one site.
 */
#ifndef GEMWATCH_STORE_IMPL_H
#define GEMWATCH_STORE_IMPL_H

#include <pthread.h>
#include <stdint.h>

#include "result.h"
#include "lag.h"
#include "store.h"

#define FACT_NONE UINT32_MAX
#define FACT_MAX ((1U << 24) - 1) /* entry.fact is 24 bits */
#define BODY_BITS 37
#define BODY_NONE ((UINT64_C(1) << BODY_BITS) - 1) /* no body */
#define MS_PER_S 1000

/*
 * Durations take 16 bits, a small float of microseconds: codes below 2048
 * are the microseconds exactly; above, 5 bits of exponent e and 11 of
 * mantissa m stand for (2048 + m) << (e - 1) microseconds, within 1/4096
 * (0.025%) of what was measured, up to 50 days (then saturated).
 * DUR16_NONE when the phase was not reached.
 */
#define DUR16_NONE 0xffffU
#define DUR16_MAX 0xfffeU

/* Microseconds (>= 0) as a 16-bit duration, rounded to the nearest. */
static inline uint16_t
dur16_from_us(uint64_t us)
{
	uint64_t m;
	unsigned e = 1;

	if (us < 2048)
		return (uint16_t)us;
	while ((us >> (e - 1)) >= 4096)
		e++;
	m = (us + ((UINT64_C(1) << (e - 1)) >> 1)) >> (e - 1);
	if (m >= 4096) {
		m >>= 1;
		e++;
	}
	if (e > 31 || ((e << 11) | (m - 2048)) >= DUR16_NONE)
		return DUR16_MAX;
	return (uint16_t)(e << 11 | (m - 2048));
}

/* The microseconds of a 16-bit duration, -1 for DUR16_NONE. */
static inline int64_t
dur16_us(uint16_t v)
{
	unsigned e = v >> 11, m = v & 2047;

	if (v == DUR16_NONE)
		return -1;
	if (e == 0)
		return m;
	return (int64_t)(2048 + m) << (e - 1);
}

struct store {
	pthread_rwlock_t lock;
	struct store_capsule *caps; /* in configuration order */
	size_t ncaps;
	struct store_capsule **byname; /* caps sorted by name */
	size_t history;                /* ring capacity */
	int reload_ok;                 /* latest reload */
	pthread_mutex_t lag_lock;      /* guards lag */
	struct lag lag;            /* the scheduler's, as main last set it */
	double reload_success;     /* when one last worked */
	int seq_dirty[SEQ__COUNT]; /* outcomes put since the last save */
	unsigned long syncs; /* the capsule set's version: store_generation */
};

/* One result of a history: 28 bytes. */
struct store_entry {
	uint32_t time;      /* Unix seconds */
	uint32_t body_lo;   /* body_bytes, low 32 bits */
	unsigned fact : 24; /* index in the check's facts */
	unsigned end : 3;
	unsigned tofu : 3;
	unsigned key_kept : 2; /* cert.key_kept + 1 */
	uint16_t ms : 10;      /* of time */
	uint16_t success : 1;
	uint16_t body_hi : 5;           /* body_bytes >> 32 */
	uint16_t dur[PHASE__COUNT + 1]; /* phases, total: DUR16 */
	/* The body's idle time before its end: what tells a cut by a
	 * proxy's idle timeout. max_gap is the latest result's only, which
	 * keeps an entry at 28 bytes. */
	uint16_t idle_before_end; /* DUR16 */
};

struct store_site {
	uint32_t refs;
	uint32_t hash;
	const char *url; /* these point into text[], or NULL */
	const char *tls_version;
	const char *tls_cipher;
	const char *subject;
	const char *issuer;
	int64_t not_before;
	int64_t not_after;
	uint16_t port;
	uint8_t ip_protocol;
	uint8_t cert_present;
	uint8_t self_signed;
	uint8_t hostname_match;
	char address[46];
	char sha256[SHA256_HEX_LEN + 1];
	char pubkey_sha256[SHA256_HEX_LEN + 1];
	char text[];
};

struct store_fact {
	uint32_t refs;
	uint32_t hash;
	struct store_site *site; /* one reference */
	const char *meta;        /* into text[], or NULL */
	const char *message;
	int16_t status;
	uint8_t reason;
	uint8_t stage;
	char text[];
};

void store_wrlock(struct store *);

void store_check_init(struct store_check *, enum check);
void store_check_free(struct store_check *);
/* A new site (refs 0) with what r shares with results like it. */
struct store_site *store_site_new(const struct probe_result *r);
void store_site_unref(struct store_site *);
/* A new fact (refs 0) for r on site (which gains a reference). */
struct store_fact *store_fact_new(
    const struct probe_result *r, struct store_site *site);
/* Put f in a free slot of c's table; returns its index. */
uint32_t store_fact_add(struct store_check *, struct store_fact *f);
void store_fact_unref(struct store_check *, uint32_t);
/* The entry for r, whose fact is index fact. */
void store_entry_make(
    struct store_entry *, const struct probe_result *r, uint32_t fact);
/* Append e (its fact reference passes to the ring) to a ring of cap. */
void store_ring_push(
    struct store_check *, size_t cap, const struct store_entry *e);
/* The i-th newest entry (0 = newest; i < ring_count). */
struct store_entry *store_ring_entry(const struct store_check *, size_t i);
/* Make fact i the most recently used of c's (a candidate for the next). */
void store_recent_use(struct store_check *, uint32_t i);
/* Make r (with the strings of fact, one more reference) c's last. */
void store_last_set(
    struct store_check *, const struct probe_result *r, uint32_t fact);

#endif
