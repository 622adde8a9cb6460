/*
 * The store's insides, shared by store.c (the data in memory) and
 * store_snapshot.c (the same data in a file). Nothing else includes this.
 *
 * A check's history is a ring of compact entries: the numbers of a result
 * (40 bytes) and the index of a fact. A fact holds what rarely changes
 * between two probes of one check: the URL, address, TLS, certificate,
 * META and message, its strings in one allocation. Facts are refcounted
 * by the entries, the latest result and cert_fact that use them, so a
 * probe that looks like one of the latest allocates nothing.
 */
#ifndef GEMWATCH_STORE_IMPL_H
#define GEMWATCH_STORE_IMPL_H

#include <pthread.h>
#include <stdint.h>

#include "result.h"
#include "store.h"

#define FACT_NONE	UINT32_MAX
#define FACT_MAX	((1U << 24) - 1)	/* entry.fact is 24 bits */
#define DUR_NONE	UINT32_MAX		/* a phase not reached */
#define BODY_BITS	38
#define BODY_NONE	((UINT64_C(1) << BODY_BITS) - 1)	/* no body */
#define MS_PER_S	1000

struct store {
	pthread_rwlock_t	  lock;
	struct store_capsule	 *caps;		/* in configuration order */
	size_t			  ncaps;
	struct store_capsule	**byname;	/* caps sorted by name */
	size_t			  history;	/* ring capacity */
	int			  reload_ok;	/* latest reload */
	double			  reload_success;	/* when one last worked */
};

/* One result of a history: 40 bytes. */
struct store_entry {
	uint32_t	time;			/* Unix seconds */
	uint32_t	dur[PHASE__COUNT + 1];	/* µs, phases then total */
	uint32_t	body_lo;		/* body_bytes, low 32 bits */
	unsigned	ms:10;			/* of time */
	unsigned	success:1;
	unsigned	end:3;
	unsigned	tofu:3;
	unsigned	key_kept:2;		/* cert.key_kept + 1 */
	unsigned	reason:4;
	unsigned	stage:3;
	unsigned	body_hi:6;		/* body_bytes >> 32 */
	unsigned	fact:24;		/* index in the check's facts */
	unsigned	status:8;		/* status + 1, 0: none */
};

struct store_fact {
	uint32_t	 refs;
	uint32_t	 hash;
	const char	*url;		/* these point into text[], or NULL */
	const char	*meta;
	const char	*message;
	const char	*tls_version;
	const char	*tls_cipher;
	const char	*subject;
	const char	*issuer;
	int64_t		 not_before;
	int64_t		 not_after;
	uint16_t	 port;
	uint8_t		 ip_protocol;
	uint8_t		 cert_present;
	uint8_t		 self_signed;
	uint8_t		 hostname_match;
	char		 address[46];
	char		 sha256[SHA256_HEX_LEN + 1];
	char		 pubkey_sha256[SHA256_HEX_LEN + 1];
	char		 text[];
};

void store_wrlock(struct store *);
struct store_capsule *store_lookup(const struct store *, const char *name);

void store_check_init(struct store_check *, enum check);
void store_check_free(struct store_check *);
/* A new fact (refs 0) with what r shares with results like it. */
struct store_fact *store_fact_new(const struct probe_result *r);
/* Put f in a free slot of c's table; returns its index. */
uint32_t store_fact_add(struct store_check *, struct store_fact *f);
void store_fact_unref(struct store_check *, uint32_t);
/* The entry for r, whose fact is index fact. */
void store_entry_make(struct store_entry *, const struct probe_result *r,
    uint32_t fact);
/* Append e (its fact reference passes to the ring) to a ring of cap. */
void store_ring_push(struct store_check *, size_t cap,
    const struct store_entry *e);
/* Slot of the i-th newest entry. */
size_t store_ring_slot(const struct store_check *, size_t i);
/* Make r (with the strings of fact, one more reference) c's last. */
void store_last_set(struct store_check *, const struct probe_result *r,
    uint32_t fact);

#endif
