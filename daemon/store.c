/*
 * The results store: the capsules of this instance's shard in configuration
 * order, each with per check the latest result, counters and a history.
 * Probes publish with store_put under the write lock; the HTTP thread reads
 * under store_rdlock. A history is a ring of 28-byte entries that share
 * refcounted facts and sites (store_impl.h): with `history 120` the store
 * takes 5.0 KiB per capsule (49.3 MiB for 10,000) where deep copies of
 * results took 67 KiB (tests/bench_store measures it). A ring grows as
 * results come, from room for a few to the history length, so checks
 * that never ran (or error pages not configured) cost nothing and a
 * capsule's history takes about what it holds.
 * State changes (up/down, close_notify lost/back, certificate changed) are
 * logged here, once per change, because only the store sees successive
 * results of one capsule; what they compare with is kept per check, so a
 * put does the same small amount of work whatever the history length.
 */
#include "config.h"

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "hash.h"
#include "log.h"
#include "result.h"
#include "store.h"
#include "store_impl.h"
#include "xmalloc.h"

_Static_assert(sizeof(struct store_entry) == 28, "store_entry is 28 bytes");
_Static_assert(STORE_RECENT >= 2, "recent facts: at least up and down");

#define RING_FIRST 4 /* a ring's first room, in results */

/* ---- sites and facts -------------------------------------------------- */

static int
streq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return a == b || strcmp(a, b) == 0;
}

/* NULL and "" hash differently. */
static uint64_t
hash_str(uint64_t h, const char *s)
{
	return s == NULL ? hash_bytes(h, "\377", 1)
	                 : hash_bytes(h, s, strlen(s) + 1);
}

static uint16_t
site_port(const struct probe_result *r)
{
	return r->port > 0 && r->port <= UINT16_MAX ? (uint16_t)r->port : 0;
}

static uint8_t
site_ip(const struct probe_result *r)
{
	return r->ip_protocol > 0 && r->ip_protocol <= UINT8_MAX
	           ? (uint8_t)r->ip_protocol
	           : 0;
}

static int16_t
fact_status(const struct probe_result *r)
{
	return r->status >= 0 && r->status <= INT16_MAX ? (int16_t)r->status
	                                                : -1;
}

/* The hash of what a site for r holds (cut to 32 bits, it only spares
 * comparisons); without a certificate, the certificate's fields are not
 * part of it. */
static uint32_t
site_hash(const struct probe_result *r)
{
	const struct cert_facts *cf = &r->cert;
	uint64_t h = HASH_INIT;
	uint16_t port = site_port(r);
	uint8_t ip = site_ip(r), b[3];
	int64_t t[2];

	h = hash_str(h, r->url);
	h = hash_str(h, r->tls_version);
	h = hash_str(h, r->tls_cipher);
	h = hash_bytes(h, r->address, strnlen(r->address, sizeof r->address));
	h = hash_bytes(h, &port, sizeof port);
	h = hash_bytes(h, &ip, sizeof ip);
	if (!cf->present)
		return (uint32_t)h;
	h = hash_bytes(h, cf->sha256, strnlen(cf->sha256, sizeof cf->sha256));
	h = hash_bytes(h, cf->pubkey_sha256,
	    strnlen(cf->pubkey_sha256, sizeof cf->pubkey_sha256));
	h = hash_str(h, cf->subject);
	h = hash_str(h, cf->issuer);
	t[0] = cf->not_before;
	t[1] = cf->not_after;
	h = hash_bytes(h, t, sizeof t);
	b[0] = 1;
	b[1] = cf->self_signed != 0;
	b[2] = cf->hostname_match != 0;
	return (uint32_t)hash_bytes(h, b, sizeof b);
}

static uint32_t
fact_hash(const struct probe_result *r, uint32_t site)
{
	int16_t status = fact_status(r);
	uint8_t b[2];
	uint64_t h = HASH_INIT;

	b[0] = (uint8_t)r->reason;
	b[1] = (uint8_t)r->stage;
	h = hash_bytes(h, &site, sizeof site);
	h = hash_bytes(h, &status, sizeof status);
	h = hash_bytes(h, b, sizeof b);
	h = hash_str(h, r->meta);
	return (uint32_t)hash_str(h, r->message);
}

/* Compare a fixed-size array field with a site's NUL-terminated copy. */
static int
arreq(const char *site, const char *arr, size_t size)
{
	size_t n = strnlen(arr, size);

	return strlen(site) == n && memcmp(site, arr, n) == 0;
}

static int
site_equal(
    const struct store_site *s, uint32_t hash, const struct probe_result *r)
{
	const struct cert_facts *cf = &r->cert;

	if (s->hash != hash || !streq(s->url, r->url) ||
	    !streq(s->tls_version, r->tls_version) ||
	    !streq(s->tls_cipher, r->tls_cipher) ||
	    !arreq(s->address, r->address, sizeof r->address) ||
	    s->port != site_port(r) || s->ip_protocol != site_ip(r) ||
	    s->cert_present != (cf->present != 0))
		return 0;
	if (!cf->present)
		return 1;
	return arreq(s->sha256, cf->sha256, sizeof cf->sha256) &&
	       arreq(s->pubkey_sha256, cf->pubkey_sha256,
	           sizeof cf->pubkey_sha256) &&
	       streq(s->subject, cf->subject) && streq(s->issuer, cf->issuer) &&
	       s->not_before == cf->not_before &&
	       s->not_after == cf->not_after &&
	       s->self_signed == (cf->self_signed != 0) &&
	       s->hostname_match == (cf->hostname_match != 0);
}

static int
fact_equal(const struct store_fact *f, uint32_t hash, uint32_t shash,
    const struct probe_result *r)
{
	return f->hash == hash && f->status == fact_status(r) &&
	       f->reason == (uint8_t)r->reason &&
	       f->stage == (uint8_t)r->stage && streq(f->meta, r->meta) &&
	       streq(f->message, r->message) && site_equal(f->site, shash, r);
}

/* Copy s to *p and point *dst at the copy (NULL stays NULL). */
static void
text_put(char **p, const char **dst, const char *s)
{
	size_t n;

	if (s == NULL) {
		*dst = NULL;
		return;
	}
	n = strlen(s) + 1;
	memcpy(*p, s, n);
	*dst = *p;
	*p += n;
}

static size_t
text_len(const char *s)
{
	return s != NULL ? strlen(s) + 1 : 0;
}

struct store_site *
store_site_new(const struct probe_result *r)
{
	const struct cert_facts *cf = &r->cert;
	struct store_site *s;
	const char *subject, *issuer;
	char *p;

	subject = cf->present ? cf->subject : NULL;
	issuer = cf->present ? cf->issuer : NULL;
	s = xcalloc(1, sizeof *s + text_len(r->url) + text_len(r->tls_version) +
	                   text_len(r->tls_cipher) + text_len(subject) +
	                   text_len(issuer));
	s->hash = site_hash(r);
	p = s->text;
	text_put(&p, &s->url, r->url);
	text_put(&p, &s->tls_version, r->tls_version);
	text_put(&p, &s->tls_cipher, r->tls_cipher);
	text_put(&p, &s->subject, subject);
	text_put(&p, &s->issuer, issuer);
	memcpy(
	    s->address, r->address, strnlen(r->address, sizeof s->address - 1));
	s->port = site_port(r);
	s->ip_protocol = site_ip(r);
	if (cf->present) {
		s->cert_present = 1;
		memcpy(s->sha256, cf->sha256,
		    strnlen(cf->sha256, sizeof s->sha256 - 1));
		memcpy(s->pubkey_sha256, cf->pubkey_sha256,
		    strnlen(cf->pubkey_sha256, sizeof s->pubkey_sha256 - 1));
		s->not_before = cf->not_before;
		s->not_after = cf->not_after;
		s->self_signed = cf->self_signed != 0;
		s->hostname_match = cf->hostname_match != 0;
	}
	return s;
}

void
store_site_unref(struct store_site *s)
{
	assert(s->refs > 0);
	if (--s->refs == 0)
		free(s);
}

struct store_fact *
store_fact_new(const struct probe_result *r, struct store_site *site)
{
	struct store_fact *f;
	char *p;

	f = xcalloc(1, sizeof *f + text_len(r->meta) + text_len(r->message));
	f->hash = fact_hash(r, site->hash);
	f->site = site;
	site->refs++;
	p = f->text;
	text_put(&p, &f->meta, r->meta);
	text_put(&p, &f->message, r->message);
	f->status = fact_status(r);
	f->reason =
	    (unsigned)r->reason < REASON__COUNT ? r->reason : REASON_NONE;
	f->stage = (unsigned)r->stage < STAGE__COUNT ? r->stage : STAGE_NONE;
	return f;
}

uint32_t
store_fact_add(struct store_check *c, struct store_fact *f)
{
	uint32_t i;

	if (c->nfree > 0)
		i = c->free_slots[--c->nfree];
	else {
		if (c->nfacts == c->fact_cap) {
			c->fact_cap = c->fact_cap ? 2 * c->fact_cap : 2;
			assert(c->fact_cap <= FACT_MAX + 1);
			c->facts = xreallocarray(
			    c->facts, c->fact_cap, sizeof *c->facts);
			c->free_slots = xreallocarray(
			    c->free_slots, c->fact_cap, sizeof *c->free_slots);
		}
		i = c->nfacts++;
	}
	c->facts[i] = f;
	return i;
}

void
store_fact_unref(struct store_check *c, uint32_t i)
{
	struct store_fact *f;

	assert(i < c->nfacts && c->facts[i] != NULL);
	f = c->facts[i];
	assert(f->refs > 0);
	if (--f->refs > 0)
		return;
	store_site_unref(f->site);
	free(f);
	c->facts[i] = NULL;
	c->free_slots[c->nfree++] = i;
}

void
store_recent_use(struct store_check *c, uint32_t i)
{
	size_t k;

	for (k = 0; k < STORE_RECENT - 1 && c->recent[k] != i; k++)
		;
	memmove(&c->recent[1], &c->recent[0], k * sizeof c->recent[0]);
	c->recent[0] = i;
}

/*
 * The fact for r, with one more reference: one of the few used lately
 * when r looks like it (a capsule that flaps, or fails now and then the
 * same way, keeps a handful of facts), else a new one, on one of their
 * sites when that fits. recent may name facts freed since: only live
 * ones that are equal count.
 */
static uint32_t
fact_intern(struct store_check *c, const struct probe_result *r)
{
	struct store_fact *f;
	struct store_site *site = NULL;
	uint32_t shash, fhash, i;
	size_t k;

	shash = site_hash(r);
	fhash = fact_hash(r, shash);
	for (k = 0; k < STORE_RECENT; k++) {
		i = c->recent[k];
		if (i >= c->nfacts || (f = c->facts[i]) == NULL)
			continue;
		if (fact_equal(f, fhash, shash, r)) {
			f->refs++;
			store_recent_use(c, i);
			return i;
		}
		if (site == NULL && site_equal(f->site, shash, r))
			site = f->site;
	}
	if (site == NULL)
		site = store_site_new(r);
	f = store_fact_new(r, site);
	f->refs = 1;
	i = store_fact_add(c, f);
	store_recent_use(c, i);
	return i;
}

/* Fill the fields of v that come from fact f and its site. */
static void
fact_view(const struct store_fact *f, struct probe_result *v)
{
	const struct store_site *s = f->site;

	v->status = f->status;
	v->reason = f->reason;
	v->stage = f->stage;
	v->meta = (char *)f->meta;
	v->message = (char *)f->message;
	v->url = (char *)s->url;
	v->tls_version = s->tls_version;
	v->tls_cipher = s->tls_cipher;
	memcpy(v->address, s->address, sizeof v->address);
	v->port = s->port;
	v->ip_protocol = s->ip_protocol;
	v->cert.present = s->cert_present;
	memcpy(v->cert.sha256, s->sha256, sizeof v->cert.sha256);
	memcpy(v->cert.pubkey_sha256, s->pubkey_sha256,
	    sizeof v->cert.pubkey_sha256);
	v->cert.subject = (char *)s->subject;
	v->cert.issuer = (char *)s->issuer;
	v->cert.not_before = (time_t)s->not_before;
	v->cert.not_after = (time_t)s->not_after;
	v->cert.self_signed = s->self_signed;
	v->cert.hostname_match = s->hostname_match;
}

/* ---- entries and rings ------------------------------------------------ */

static uint16_t
dur_pack(double d)
{
	if (!(d >= 0)) /* negative or NaN: not reached */
		return DUR16_NONE;
	if (d >= 1e12) /* saturated long before; no overflow below */
		return DUR16_MAX;
	return dur16_from_us((uint64_t)llround(d * 1e6));
}

static double
dur_unpack(uint16_t v)
{
	int64_t us = dur16_us(v);

	return us < 0 ? -1 : (double)us / 1e6;
}

void
store_entry_make(
    struct store_entry *e, const struct probe_result *r, uint32_t fact)
{
	double t = r->time, s;
	uint64_t body;
	unsigned ms;
	int p;

	memset(e, 0, sizeof *e);
	if (!(t >= 0))
		t = 0;
	if (t >= (double)UINT32_MAX + 1)
		t = UINT32_MAX;
	s = floor(t);
	ms = (unsigned)((t - s) * MS_PER_S);
	e->time = (uint32_t)s;
	e->ms = ms < MS_PER_S ? ms : MS_PER_S - 1;
	for (p = 0; p < PHASE__COUNT; p++)
		e->dur[p] = dur_pack(r->dur[p]);
	e->dur[PHASE__COUNT] = dur_pack(r->total);
	e->idle_before_end = dur_pack(r->idle_before_end);
	if (r->body_bytes < 0)
		body = BODY_NONE;
	else if ((uint64_t)r->body_bytes >= BODY_NONE)
		body = BODY_NONE - 1;
	else
		body = (uint64_t)r->body_bytes;
	e->body_lo = (uint32_t)body;
	e->body_hi = (unsigned)(body >> 32);
	e->success = r->success != 0;
	e->end = (unsigned)r->end < END__COUNT ? r->end : END_NONE;
	e->tofu =
	    (unsigned)r->cert.tofu < TOFU__COUNT ? r->cert.tofu : TOFU_NONE;
	e->key_kept = r->cert.key_kept < 0 ? 0 : r->cert.key_kept ? 2 : 1;
	assert(fact <= FACT_MAX);
	e->fact = fact;
}

static void
entry_view(const struct store_check *c, const struct store_entry *e,
    struct probe_result *v)
{
	uint64_t body;
	int p;

	result_init(v);
	v->check = c->check;
	fact_view(c->facts[e->fact], v);
	v->time = (double)e->time + (double)e->ms / MS_PER_S;
	v->success = e->success;
	for (p = 0; p < PHASE__COUNT; p++)
		v->dur[p] = dur_unpack(e->dur[p]);
	v->total = dur_unpack(e->dur[PHASE__COUNT]);
	v->idle_before_end = dur_unpack(e->idle_before_end);
	v->cert.tofu = e->tofu;
	v->cert.key_kept = (int)e->key_kept - 1;
	body = (uint64_t)e->body_hi << 32 | e->body_lo;
	v->body_bytes = body == BODY_NONE ? -1 : (int64_t)body;
	v->end = e->end;
}

/*
 * A ring's entries live in segments allocated as results come and never
 * moved: segment k holds the slots RING_FIRST * (2^k - 1) and up, and
 * RING_FIRST * 2^k of them (the last one cut at the history length). So
 * a check holds about what it has been given, and growing frees nothing:
 * memory that a copy into a bigger block would leave behind, in holes
 * too small for the next, is never made (with `history 120`: segments of
 * 4, 8, 16, 32 and 60 entries, and a table of 5 pointers).
 */
static unsigned
seg_of(size_t slot)
{
	size_t v = slot / RING_FIRST + 1;
	unsigned k = 0;

	while (v >>= 1)
		k++;
	return k;
}

static size_t
seg_start(unsigned k)
{
	return RING_FIRST * (((size_t)1 << k) - 1);
}

/* Segments of a ring of cap slots. */
static unsigned
seg_count(size_t cap)
{
	return cap > 0 ? seg_of(cap - 1) + 1 : 0;
}

static struct store_entry *
ring_at(const struct store_check *c, size_t slot)
{
	unsigned k = seg_of(slot);

	return &c->ring[k][slot - seg_start(k)];
}

/* Slot of the i-th newest result. Until the ring first fills up, results
 * sit at 0..count-1 with the newest at head, so wrapping (i > head) only
 * happens in a full ring, whose count is its capacity. */
static size_t
ring_slot(const struct store_check *c, size_t i)
{
	return i <= c->ring_head ? c->ring_head - i
	                         : c->ring_head + c->ring_count - i;
}

struct store_entry *
store_ring_entry(const struct store_check *c, size_t i)
{
	assert(i < c->ring_count);
	return ring_at(c, ring_slot(c, i));
}

/* Room for one more result in a ring of cap slots: its next segment. */
static void
ring_grow(struct store_check *c, size_t cap)
{
	size_t start = c->ring_room, size;
	unsigned k = seg_of(start);

	assert(start == seg_start(k) && start < cap);
	if (c->ring == NULL)
		c->ring = xcalloc(seg_count(cap), sizeof *c->ring);
	size = (size_t)RING_FIRST << k;
	if (size > cap - start)
		size = cap - start;
	c->ring[k] = xreallocarray(NULL, size, sizeof *c->ring[k]);
	c->ring_room = (uint32_t)(start + size);
}

static void
ring_free(struct store_check *c)
{
	unsigned k;

	if (c->ring != NULL)
		for (k = 0; k < seg_count(c->ring_room); k++)
			free(c->ring[k]);
	free(c->ring);
	c->ring = NULL;
	c->ring_room = c->ring_head = 0;
	c->ring_count = 0;
}

void
store_ring_push(struct store_check *c, size_t cap, const struct store_entry *e)
{
	struct store_entry *slot;

	if (cap == 0) {
		store_fact_unref(c, e->fact);
		return;
	}
	assert(cap <= UINT32_MAX && c->ring_room <= cap);
	if (c->ring_count == c->ring_room && c->ring_room < cap)
		ring_grow(c, cap);
	if (c->ring_count > 0)
		c->ring_head = (uint32_t)((c->ring_head + 1) % cap);
	slot = ring_at(c, c->ring_head);
	if (c->ring_count < cap)
		c->ring_count++;
	else
		store_fact_unref(c, slot->fact);
	*slot = *e;
}

/* Change the ring's capacity, keeping the newest results in a new ring
 * with the segments those take (it grows again with the next). */
static void
ring_resize(struct store_check *c, size_t oldcap, size_t newcap)
{
	struct store_check nc;
	size_t keep, i;

	if (c->ring == NULL || oldcap == newcap)
		return;
	keep = c->ring_count < newcap ? c->ring_count : newcap;
	memset(&nc, 0, sizeof nc);
	for (i = keep; i-- > 0;) { /* oldest first */
		if (nc.ring_count == nc.ring_room)
			ring_grow(&nc, newcap);
		*ring_at(&nc, nc.ring_count++) = *store_ring_entry(c, i);
	}
	for (i = keep; i < c->ring_count; i++)
		store_fact_unref(c, store_ring_entry(c, i)->fact);
	ring_free(c);
	c->ring = nc.ring;
	c->ring_room = nc.ring_room;
	c->ring_count = keep;
	c->ring_head = keep > 0 ? (uint32_t)(keep - 1) : 0;
}

/* ---- checks and capsules ---------------------------------------------- */

void
store_check_init(struct store_check *c, enum check check)
{
	size_t k;

	memset(c, 0, sizeof *c);
	c->last_fact = FACT_NONE;
	for (k = 0; k < STORE_RECENT; k++)
		c->recent[k] = FACT_NONE;
	c->cn_end = END_NONE;
	c->check = (uint8_t)check;
}

void
store_check_free(struct store_check *c)
{
	uint32_t i;

	for (i = 0; i < c->nfacts; i++) {
		if (c->facts[i] == NULL)
			continue;
		store_site_unref(c->facts[i]->site);
		free(c->facts[i]);
	}
	if (c->cert_site != NULL)
		store_site_unref(c->cert_site);
	free(c->facts);
	free(c->free_slots);
	ring_free(c);
	free(c->last);
	store_check_init(c, c->check);
}

void
store_last_set(
    struct store_check *c, const struct probe_result *r, uint32_t fact)
{
	struct probe_result *l;

	c->facts[fact]->refs++;
	if (c->last_fact != FACT_NONE)
		store_fact_unref(c, c->last_fact);
	c->last_fact = fact;
	if (c->last == NULL)
		c->last = xmalloc(sizeof *c->last);
	l = c->last;
	*l = *r;
	l->check = c->check;
	fact_view(c->facts[fact], l);
	l->cert.tofu = r->cert.tofu;
	l->cert.key_kept = r->cert.key_kept;
}

static void
capsule_free(struct store_capsule *cap)
{
	size_t k;

	for (k = 0; k < CHECK__COUNT; k++)
		store_check_free(&cap->check[k]);
	for (k = 0; k < SEQ__COUNT; k++)
		json_decref(cap->seq[k]);
	free(cap->name);
	free(cap->url);
}

/* ---- the store ----------------------------------------------------------- */

struct store *
store_new(void)
{
	struct store *s;
	int error;

	s = xcalloc(1, sizeof *s);
	if ((error = pthread_rwlock_init(&s->lock, NULL)) != 0)
		fatalx("pthread_rwlock_init: error %d", error);
	pthread_mutex_init(&s->lag_lock, NULL);
	s->reload_ok = 1;
	s->reload_success = 0;
	return s;
}

void
store_free(struct store *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < s->ncaps; i++)
		capsule_free(&s->caps[i]);
	free(s->caps);
	free(s->byname);
	pthread_rwlock_destroy(&s->lock);
	pthread_mutex_destroy(&s->lag_lock);
	free(s);
}

void
store_wrlock(struct store *s)
{
	int error;

	if ((error = pthread_rwlock_wrlock(&s->lock)) != 0)
		fatalx("pthread_rwlock_wrlock: error %d", error);
}

void
store_rdlock(struct store *s)
{
	int error;

	if ((error = pthread_rwlock_rdlock(&s->lock)) != 0)
		fatalx("pthread_rwlock_rdlock: error %d", error);
}

void
store_unlock(struct store *s)
{
	pthread_rwlock_unlock(&s->lock);
}

static int
byname_cmp(const void *a, const void *b)
{
	const struct store_capsule *const *x = a, *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

static int
byname_key_cmp(const void *key, const void *elem)
{
	const struct store_capsule *const *c = elem;

	return strcmp(key, (*c)->name);
}

struct store_capsule *
store_find(const struct store *s, const char *name)
{
	struct store_capsule **p;

	if (s->ncaps == 0 || name == NULL)
		return NULL;
	p = bsearch(
	    name, s->byname, s->ncaps, sizeof *s->byname, byname_key_cmp);
	return p != NULL ? *p : NULL;
}

void
store_sync(struct store *s, unsigned history,
    const struct capsule_conf *const *mine, size_t nmine)
{
	struct store_capsule *caps, *old;
	const struct capsule_conf *cc;
	unsigned char *taken;
	size_t i, k, n, newcap;
	int same;

	store_wrlock(s);
	same = nmine == s->ncaps;
	newcap = history;
	caps = xcalloc(nmine + 1, sizeof *caps);
	taken = xcalloc(s->ncaps + 1, 1);
	n = 0;
	for (i = 0; i < nmine; i++) {
		cc = mine[i];
		assert(cc->name != NULL && cc->url.text != NULL);
		old = store_find(s, cc->name);
		if (old != NULL && !taken[old - s->caps]) {
			if ((size_t)(old - s->caps) != n ||
			    old->has_error_page != (cc->error_path != NULL))
				same = 0;
			taken[old - s->caps] = 1;
			caps[n] = *old;
			if (strcmp(caps[n].url, cc->url.text) != 0) {
				free(caps[n].url);
				caps[n].url = xstrdup(cc->url.text);
			}
		} else {
			same = 0;
			caps[n].name = xstrdup(cc->name);
			caps[n].url = xstrdup(cc->url.text);
			for (k = 0; k < CHECK__COUNT; k++)
				store_check_init(&caps[n].check[k], k);
		}
		if (cc->error_path == NULL)
			store_check_free(&caps[n].check[CHECK_ERROR_PAGE]);
		caps[n].has_error_page = cc->error_path != NULL;
		for (k = 0; k < CHECK__COUNT; k++)
			ring_resize(&caps[n].check[k], s->history, newcap);
		n++;
	}
	for (i = 0; i < s->ncaps; i++)
		if (!taken[i])
			capsule_free(&s->caps[i]);
	free(taken);
	free(s->caps);
	free(s->byname);

	s->caps = caps;
	s->ncaps = n;
	s->history = newcap;
	if (!same)
		s->syncs++;
	s->byname = xcalloc(n + 1, sizeof *s->byname);
	for (i = 0; i < n; i++)
		s->byname[i] = &caps[i];
	qsort(s->byname, n, sizeof *s->byname, byname_cmp);
	store_unlock(s);
}

static int
end_has_cn(enum end e)
{
	return e == END_CLOSE_NOTIFY || e == END_PREMATURE || e == END_RESET;
}

/* One notice per change of state, not per probe. */
static void
log_changes(const struct store_capsule *cap, const struct store_check *c,
    const struct probe_result *res)
{
	const struct store_site *prev = c->cert_site;
	const char *what, *reason;

	what = res->check == CHECK_ERROR_PAGE ? " (error_page)" : "";
	if (c->last == NULL || c->last->success != res->success) {
		if (res->success)
			log_notice("capsule %s%s: up", cap->name, what);
		else {
			reason = reason_name(res->reason);
			if (reason == NULL)
				reason = "unknown";
			if (res->message != NULL)
				log_notice("capsule %s%s: down (%s: %s)",
				    cap->name, what, reason, res->message);
			else
				log_notice("capsule %s%s: down (%s)", cap->name,
				    what, reason);
		}
	}

	if (end_has_cn(res->end) && end_has_cn(c->cn_end)) {
		if (c->cn_end == END_CLOSE_NOTIFY &&
		    res->end != END_CLOSE_NOTIFY)
			log_notice("capsule %s%s: close_notify lost (%s)",
			    cap->name, what, end_name(res->end));
		else if (c->cn_end != END_CLOSE_NOTIFY &&
		         res->end == END_CLOSE_NOTIFY)
			log_notice(
			    "capsule %s%s: close_notify back", cap->name, what);
	}

	if (!res->cert.present || prev == NULL)
		return;
	if (!arreq(prev->sha256, res->cert.sha256, sizeof res->cert.sha256))
		log_notice("capsule %s%s: certificate changed "
		           "(sha256 %s \xe2\x86\x92 %.*s, %s)",
		    cap->name, what, prev->sha256,
		    (int)strnlen(res->cert.sha256, sizeof res->cert.sha256),
		    res->cert.sha256,
		    res->cert.pubkey_sha256[0] != '\0' &&
		            arreq(prev->pubkey_sha256, res->cert.pubkey_sha256,
		                sizeof res->cert.pubkey_sha256)
		        ? "same key"
		        : "new key");
}

void
store_put(struct store *s, const char *name, const struct probe_result *res)
{
	struct store_capsule *cap;
	struct store_check *c;
	struct store_site *site;
	struct store_entry e;
	uint32_t fact;

	if ((unsigned)res->check >= CHECK__COUNT)
		return;
	store_wrlock(s);
	if ((cap = store_find(s, name)) == NULL ||
	    (res->check == CHECK_ERROR_PAGE && !cap->has_error_page)) {
		/* Removed (or its error-path was) by a reload while probing. */
		log_debug("store: dropped a result for %s",
		    name != NULL ? name : "?");
		goto out;
	}
	c = &cap->check[res->check];
	log_changes(cap, c, res);

	fact = fact_intern(c, res); /* the ring's reference */
	store_last_set(c, res, fact);
	store_entry_make(&e, res, fact);
	store_ring_push(c, s->history, &e);
	if (end_has_cn(res->end))
		c->cn_end = res->end;
	site = c->facts[fact]->site;
	if (res->cert.present && site != c->cert_site) {
		site->refs++;
		if (c->cert_site != NULL)
			store_site_unref(c->cert_site);
		c->cert_site = site;
	}
	c->probes++;
	if (!res->success && (unsigned)res->reason < REASON__COUNT)
		c->failures[res->reason]++;
	if (res->end != END_NONE && (unsigned)res->end < END__COUNT)
		c->ends[res->end]++;
out:
	store_unlock(s);
}

/* ok is the outcome of the latest reload; the success time only moves when
 * ok, so a failed reload keeps reporting when the config last loaded. */
void
store_set_reload(struct store *s, int ok, double when)
{
	store_wrlock(s);
	s->reload_ok = ok;
	if (ok)
		s->reload_success = when;
	store_unlock(s);
}

void
store_set_lag(struct store *s, const struct lag *lag)
{
	pthread_mutex_lock(&s->lag_lock);
	s->lag = *lag;
	pthread_mutex_unlock(&s->lag_lock);
}

void
store_lag(struct store *s, struct lag *out)
{
	pthread_mutex_lock(&s->lag_lock);
	*out = s->lag;
	pthread_mutex_unlock(&s->lag_lock);
}

int
store_reload_status(const struct store *s, double *when)
{
	if (when != NULL)
		*when = s->reload_success;
	return s->reload_ok;
}

void
store_tally(struct store *s, struct store_tally *t)
{
	const struct store_capsule *c;
	const struct probe_result *r;
	size_t i;

	memset(t, 0, sizeof *t);
	store_rdlock(s);
	t->capsules = s->ncaps;
	for (i = 0; i < s->ncaps; i++) {
		c = &s->caps[i];
		if ((r = c->check[CHECK_PAGE].last) == NULL)
			t->pending++;
		else if (r->success)
			t->up++;
		else
			t->down++;
		r = c->check[CHECK_ERROR_PAGE].last;
		if (c->has_error_page && r != NULL && !r->success)
			t->error_pages_failing++;
	}
	t->reload_ok = s->reload_ok;
	store_unlock(s);
}

size_t
store_count(const struct store *s)
{
	return s->ncaps;
}

unsigned long
store_generation(const struct store *s)
{
	return s->syncs;
}

const struct store_capsule *
store_at(const struct store *s, size_t i)
{
	return i < s->ncaps ? &s->caps[i] : NULL;
}

int
store_history_get(
    const struct store_check *c, size_t i, struct probe_result *view)
{
	if (i >= c->ring_count)
		return -1;
	entry_view(c, store_ring_entry(c, i), view);
	return 0;
}
