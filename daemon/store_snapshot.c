/*
 * The store's snapshot: counters, latest results and histories saved to
 * state-dir/history.snapshot every minute and at shutdown, and loaded at
 * start, so a restart loses nothing (store.h). The file is binary and
 * compact (about 32 bytes per history entry: 36 MiB for 10,000 capsules
 * with `history 120`); it is written through file_replace (a temporary
 * file, fsynced and renamed over PATH), so it is always whole. A file that
 * cannot be used is moved aside to PATH.corrupt and the daemon starts with an
 * empty store. Loading checks everything before it changes anything.
 *
 * Format, version 2 (version 1 is read too: it lacks the body's gaps,
 * which are then unknown). uv is an unsigned LEB128 varint (at most 10 bytes),
 * sv a signed one (zigzag, then uv), str a uv n then n - 1 bytes without
 * NUL (n = 0: no string), f64 an IEEE 754 double in 8 bytes little-endian.
 *
 *   file     "gemwatch snapshot\n" uv:version(2) uv:saved_at(Unix seconds)
 *            uv:history uv:ncapsules capsule* trailer
 *   capsule  str:name uv:nchecks check*
 *   check    uv:check(0 page, 1 error_page) uv:probes
 *            uv:n uv*n(failures by reason, from none) uv:n uv*n(ends)
 *            uv:cn_end(the newest end of close_notify, premature or reset)
 *            uv:nsites site* uv:cert_site(index + 1, 0: none)
 *            uv:nfacts fact* uv:has_last [last] uv:nentries entry*
 *   site     str:url str:tls_version str:tls_cipher str:address uv:port
 *            uv:ip_protocol uv:cert_present [str:sha256 str:pubkey_sha256
 *            str:subject str:issuer sv:not_before sv:not_after
 *            uv:self_signed uv:hostname_match]
 *   fact     uv:site sv:status uv:reason uv:stage str:meta str:message
 *   last     uv:fact f64:time f64*5(durations by phase) f64:total
 *            [f64:max_gap f64:idle_before_end] sv:body_bytes uv:flags
 *   entry    uv:fact sv:time(milliseconds after the previous entry's, the
 *            first after 0) uv*6(phase durations and total in µs, + 1;
 *            0: not reached) [uv:idle_before_end(alike)]
 *            uv:body_bytes(+ 1; 0: none) uv:flags
 *            (the fields in brackets from version 2 on)
 *   flags    success | end << 1 | tofu << 4 | (key_kept + 1) << 7
 *   trailer  the FNV-1a 64 hash of every byte before it, 8 bytes
 *            little-endian
 *
 * Enumerations are numbered as in result.h; entries go oldest first;
 * facts and sites are numbered from 0 in the order written. Times are Unix
 * seconds below 2^32, certificate times within years 1 to 9999; a value
 * out of range, like a count past the end, makes the file unusable.
 */
#include "config.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "file.h"
#include "hash.h"
#include "log.h"
#include "result.h"
#include "store.h"
#include "store_impl.h"
#include "xmalloc.h"

#define MAGIC "gemwatch snapshot\n"
#define MAGIC_LEN (sizeof MAGIC - 1)
#define SNAPSHOT_VERSION 2
#define SNAPSHOT_GAPS 2 /* the first version with the body's gaps */
#define TRAILER_LEN 8
#define STR_MAX 65536 /* longer strings are corrupt */
/* Certificate times, as GnuTLS reports them: year 1 to 9999. */
#define CERT_TIME_MIN INT64_C(-62135596800)
#define CERT_TIME_MAX INT64_C(253402300799)
#define DUR_MAX 1e9 /* seconds; no probe takes 30 years */

static unsigned
entry_flags(int success, unsigned end, unsigned tofu, unsigned key_kept1)
{
	return (success ? 1U : 0U) | end << 1 | tofu << 4 | key_kept1 << 7;
}

/* ---- writing ----------------------------------------------------------- */

/* Bytes go through buf (hashed on the way out) to fp: a million small
 * fwrite calls would cost more than the encoding. */
struct writer {
	struct store *store;
	FILE *fp;
	uint64_t hash;
	size_t len;
	unsigned char buf[65536];
};

static void
w_flush(struct writer *w)
{
	w->hash = hash_bytes(w->hash, w->buf, w->len);
	(void)fwrite(w->buf, 1, w->len, w->fp); /* errors: ferror later */
	w->len = 0;
}

static void
w_bytes(struct writer *w, const void *p, size_t len)
{
	if (len > sizeof w->buf - w->len) {
		w_flush(w);
		if (len > sizeof w->buf) {
			w->hash = hash_bytes(w->hash, p, len);
			(void)fwrite(p, 1, len, w->fp);
			return;
		}
	}
	memcpy(w->buf + w->len, p, len);
	w->len += len;
}

static void
w_uv(struct writer *w, uint64_t v)
{
	unsigned char b[10];
	size_t n = 0;

	do {
		b[n] = (unsigned char)(v & 0x7f);
		v >>= 7;
		if (v != 0)
			b[n] |= 0x80;
		n++;
	} while (v != 0);
	w_bytes(w, b, n);
}

static void
w_sv(struct writer *w, int64_t v)
{
	w_uv(w, v < 0 ? ~((uint64_t)v << 1) : (uint64_t)v << 1);
}

static void
w_str(struct writer *w, const char *s)
{
	size_t n;

	if (s == NULL) {
		w_uv(w, 0);
		return;
	}
	n = strlen(s);
	w_uv(w, (uint64_t)n + 1);
	w_bytes(w, s, n);
}

static void
w_f64(struct writer *w, double d)
{
	unsigned char b[8];
	uint64_t u;
	int i;

	memcpy(&u, &d, sizeof u);
	for (i = 0; i < 8; i++)
		b[i] = (unsigned char)(u >> (8 * i));
	w_bytes(w, b, sizeof b);
}

/* A check's sites, numbered in the order the facts first use them. */
struct site_num {
	const struct store_site *site;
	uint64_t first; /* order of first use, then number */
};

static int
by_site(const void *a, const void *b)
{
	const struct site_num *x = a, *y = b;

	if (x->site != y->site)
		return x->site < y->site ? -1 : 1;
	return x->first < y->first ? -1 : x->first > y->first;
}

static int
by_first(const void *a, const void *b)
{
	const struct site_num *const *x = a, *const *y = b;

	return (*x)->first < (*y)->first ? -1 : (*x)->first > (*y)->first;
}

static uint64_t
site_number(const struct site_num *v, size_t n, const struct store_site *s)
{
	size_t lo = 0, hi = n, mid;

	while (lo < hi) { /* v is sorted by site */
		mid = lo + (hi - lo) / 2;
		if (v[mid].site < s)
			lo = mid + 1;
		else
			hi = mid;
	}
	return v[lo].first;
}

static void
w_site(struct writer *w, const struct store_site *s)
{
	w_str(w, s->url);
	w_str(w, s->tls_version);
	w_str(w, s->tls_cipher);
	w_str(w, s->address);
	w_uv(w, s->port);
	w_uv(w, s->ip_protocol);
	w_uv(w, s->cert_present);
	if (!s->cert_present)
		return;
	w_str(w, s->sha256);
	w_str(w, s->pubkey_sha256);
	w_str(w, s->subject);
	w_str(w, s->issuer);
	w_sv(w, s->not_before);
	w_sv(w, s->not_after);
	w_uv(w, s->self_signed);
	w_uv(w, s->hostname_match);
}

/* A duration as saved: microseconds + 1, 0 when not reached. */
static uint64_t
dur_us(uint16_t d)
{
	int64_t us = dur16_us(d);

	return us < 0 ? 0 : (uint64_t)us + 1;
}

static void
w_check(struct writer *w, const struct store_check *c)
{
	const struct probe_result *l = c->last;
	const struct store_entry *e;
	struct site_num *sites, **order;
	uint32_t *fmap, i;
	size_t nsites = 0, k, n;
	int64_t prev = 0, t;
	int p;

	w_uv(w, c->check);
	w_uv(w, c->probes);
	w_uv(w, REASON__COUNT);
	for (p = 0; p < REASON__COUNT; p++)
		w_uv(w, c->failures[p]);
	w_uv(w, END__COUNT);
	for (p = 0; p < END__COUNT; p++)
		w_uv(w, c->ends[p]);
	w_uv(w, c->cn_end);

	/* Sites: those of the live facts and the certificate's, once each,
	 * in the order of first use, so the same store saves the same. */
	sites = xcalloc(c->nfacts + 1, sizeof *sites);
	for (i = 0; i < c->nfacts; i++)
		if (c->facts[i] != NULL) {
			sites[nsites].site = c->facts[i]->site;
			sites[nsites].first = nsites;
			nsites++;
		}
	if (c->cert_site != NULL) {
		sites[nsites].site = c->cert_site;
		sites[nsites].first = nsites;
		nsites++;
	}
	qsort(sites, nsites, sizeof *sites, by_site);
	for (k = 0, n = 0; k < nsites; k++)
		if (n == 0 || sites[n - 1].site != sites[k].site)
			sites[n++] = sites[k];
	nsites = n;
	order = xcalloc(nsites + 1, sizeof *order);
	for (k = 0; k < nsites; k++)
		order[k] = &sites[k];
	qsort(order, nsites, sizeof *order, by_first);
	w_uv(w, nsites);
	for (k = 0; k < nsites; k++) {
		w_site(w, order[k]->site);
		order[k]->first = k;
	}
	free(order);
	w_uv(w, c->cert_site != NULL
	            ? site_number(sites, nsites, c->cert_site) + 1
	            : 0);

	/* Facts, renumbered without the free slots. */
	fmap = xcalloc(c->nfacts + 1, sizeof *fmap);
	w_uv(w, c->nfacts - c->nfree);
	for (i = 0, n = 0; i < c->nfacts; i++) {
		if (c->facts[i] == NULL)
			continue;
		fmap[i] = (uint32_t)n++;
		w_uv(w, site_number(sites, nsites, c->facts[i]->site));
		w_sv(w, c->facts[i]->status);
		w_uv(w, c->facts[i]->reason);
		w_uv(w, c->facts[i]->stage);
		w_str(w, c->facts[i]->meta);
		w_str(w, c->facts[i]->message);
	}

	w_uv(w, l != NULL);
	if (l != NULL) {
		w_uv(w, fmap[c->last_fact]);
		w_f64(w, l->time);
		for (p = 0; p < PHASE__COUNT; p++)
			w_f64(w, l->dur[p]);
		w_f64(w, l->total);
		w_f64(w, l->max_gap);
		w_f64(w, l->idle_before_end);
		w_sv(w, l->body_bytes);
		w_uv(w, entry_flags(l->success,
		            (unsigned)l->end < END__COUNT ? l->end : END_NONE,
		            (unsigned)l->cert.tofu < TOFU__COUNT ? l->cert.tofu
		                                                 : TOFU_NONE,
		            l->cert.key_kept < 0 ? 0
		            : l->cert.key_kept   ? 2
		                                 : 1));
	}

	w_uv(w, c->ring_count);
	for (k = c->ring_count; k-- > 0;) {
		e = store_ring_entry(c, k);
		w_uv(w, fmap[e->fact]);
		t = (int64_t)e->time * MS_PER_S + e->ms;
		w_sv(w, t - prev);
		prev = t;
		for (p = 0; p <= PHASE__COUNT; p++)
			w_uv(w, dur_us(e->dur[p]));
		w_uv(w, dur_us(e->idle_before_end));
		w_uv(w, ((uint64_t)e->body_hi << 32 | e->body_lo) == BODY_NONE
		            ? 0
		            : ((uint64_t)e->body_hi << 32 | e->body_lo) + 1);
		w_uv(w, entry_flags(e->success, e->end, e->tofu, e->key_kept));
	}
	free(fmap);
	free(sites);
}

static int
check_saved(const struct store_capsule *cap, int k)
{
	const struct store_check *c = &cap->check[k];

	if (k == CHECK_ERROR_PAGE && !cap->has_error_page)
		return 0;
	return c->last != NULL || c->probes > 0 || c->ring_count > 0;
}

/* Write the store under the read lock. */
static void
w_store(struct writer *w, struct store *s)
{
	const struct store_capsule *cap;
	size_t i;
	int k, n;

	w_bytes(w, MAGIC, MAGIC_LEN);
	w_uv(w, SNAPSHOT_VERSION);
	w_uv(w, (uint64_t)time(NULL));
	store_rdlock(s);
	w_uv(w, s->history);
	w_uv(w, s->ncaps);
	for (i = 0; i < s->ncaps; i++) {
		cap = &s->caps[i];
		w_str(w, cap->name);
		for (k = n = 0; k < CHECK__COUNT; k++)
			n += check_saved(cap, k);
		w_uv(w, (uint64_t)n);
		for (k = 0; k < CHECK__COUNT; k++)
			if (check_saved(cap, k))
				w_check(w, &cap->check[k]);
	}
	store_unlock(s);
}

/* file_replace's fill: the whole file, its trailer last. */
static int
w_file(FILE *fp, void *arg)
{
	struct writer *w = arg;
	unsigned char trailer[TRAILER_LEN];
	int i;

	w->fp = fp;
	(void)setvbuf(fp, NULL, _IONBF, 0); /* w has the buffer */
	w_store(w, w->store);
	w_flush(w);
	for (i = 0; i < TRAILER_LEN; i++)
		trailer[i] = (unsigned char)(w->hash >> (8 * i));
	(void)fwrite(trailer, 1, sizeof trailer, fp); /* ferror: later */
	return 0;
}

int
store_save(struct store *s, const char *path)
{
	struct writer *w;
	int rv;

	w = xcalloc(1, sizeof *w);
	w->hash = HASH_INIT;
	w->store = s;
	rv = file_replace(path, 0640, w_file, w);
	free(w);
	return rv;
}

/* ---- reading ----------------------------------------------------------- */

/* A cursor over the file; the first problem sticks and stops every read. */
struct reader {
	const unsigned char *p, *end;
	uint64_t version;
	char *err;
	size_t errlen;
	int bad;
};

static void bad(struct reader *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static void
bad(struct reader *r, const char *fmt, ...)
{
	va_list ap;

	if (r->bad)
		return;
	r->bad = 1;
	va_start(ap, fmt);
	(void)vsnprintf(r->err, r->errlen, fmt, ap);
	va_end(ap);
}

static uint64_t
r_uv(struct reader *r)
{
	uint64_t v = 0;
	unsigned shift;

	for (shift = 0; !r->bad; shift += 7) {
		if (r->p == r->end) {
			bad(r, "truncated");
			break;
		}
		if (shift == 63 && (*r->p & 0x7e) != 0) {
			bad(r, "number too large");
			break;
		}
		v |= (uint64_t)(*r->p & 0x7f) << shift;
		if ((*r->p++ & 0x80) == 0)
			return v;
		if (shift == 63) {
			bad(r, "number too long");
			break;
		}
	}
	return 0;
}

static int64_t
r_sv(struct reader *r)
{
	uint64_t u = r_uv(r);

	return u & 1 ? (int64_t) ~(u >> 1) : (int64_t)(u >> 1);
}

/* A number that must be at most max. */
static uint64_t
r_max(struct reader *r, uint64_t max, const char *what)
{
	uint64_t v = r_uv(r);

	if (v > max) {
		bad(r, "%s %llu out of range", what, (unsigned long long)v);
		return 0;
	}
	return v;
}

/* A count of records of at least min bytes each, which must fit in what
 * is left of the file. */
static uint64_t
r_count(struct reader *r, size_t min, const char *what)
{
	return r_max(r, (uint64_t)(r->end - r->p) / min, what);
}

/* A string (NULL for none, and on errors), copied; at most max bytes. */
static char *
r_str(struct reader *r, size_t max, const char *what)
{
	uint64_t n = r_uv(r);

	if (r->bad || n == 0)
		return NULL;
	n--;
	if (n > max) {
		bad(r, "%s too long", what);
		return NULL;
	}
	if (n > (uint64_t)(r->end - r->p)) {
		bad(r, "truncated");
		return NULL;
	}
	if (memchr(r->p, '\0', n) != NULL) {
		bad(r, "%s holds a NUL byte", what);
		return NULL;
	}
	r->p += n;
	return xstrndup((const char *)r->p - n, n);
}

/* A string into a fixed array of size bytes (NUL-terminated). */
static void
r_arr(struct reader *r, char *out, size_t size, const char *what)
{
	char *s = r_str(r, size - 1, what);

	memset(out, 0, size);
	if (s != NULL)
		memcpy(out, s, strlen(s));
	free(s);
}

static double
r_f64(struct reader *r)
{
	uint64_t u = 0;
	double d;
	int i;

	if (r->bad || r->end - r->p < 8) {
		bad(r, "truncated");
		return 0;
	}
	for (i = 0; i < 8; i++)
		u |= (uint64_t)r->p[i] << (8 * i);
	r->p += 8;
	memcpy(&d, &u, sizeof d);
	if (!isfinite(d)) {
		bad(r, "a number that is not finite");
		return 0;
	}
	return d;
}

static int64_t
r_cert_time(struct reader *r)
{
	int64_t t = r_sv(r);

	if (t < CERT_TIME_MIN || t > CERT_TIME_MAX) {
		bad(r, "certificate time %lld out of range", (long long)t);
		return 0;
	}
	return t;
}

/* A duration of the latest result: negative when not reached. */
static double
r_dur(struct reader *r)
{
	double d = r_f64(r);

	if (d > DUR_MAX) {
		bad(r, "duration %g out of range", d);
		return 0;
	}
	return d < 0 ? -1 : d;
}

/* A duration of an entry: microseconds + 1, 0 when not reached. */
static double
r_entry_dur(struct reader *r)
{
	uint64_t v = r_max(r, UINT32_MAX, "duration");

	return v == 0 ? -1 : (double)(v - 1) / 1e6;
}

/* Split flags into r's success, end, tofu and key_kept. */
static void
r_flags(struct reader *r, struct probe_result *res)
{
	uint64_t f = r_max(r, 0x1ff, "flags");

	res->success = (int)(f & 1);
	res->end = (enum end)(f >> 1 & 7);
	res->cert.tofu = (enum tofu)(f >> 4 & 7);
	res->cert.key_kept = (int)(f >> 7 & 3) - 1;
	if (res->end >= END__COUNT || res->cert.tofu >= TOFU__COUNT ||
	    res->cert.key_kept > 1)
		bad(r, "flags %#llx out of range", (unsigned long long)f);
}

static struct store_site *
r_site(struct reader *r)
{
	struct store_site *s;
	struct probe_result res;
	struct cert_facts *cf = &res.cert;
	char *tv, *tc;

	result_init(&res);
	res.url = r_str(r, STR_MAX, "url");
	tv = r_str(r, STR_MAX, "tls_version");
	tc = r_str(r, STR_MAX, "tls_cipher");
	res.tls_version = tv;
	res.tls_cipher = tc;
	r_arr(r, res.address, sizeof res.address, "address");
	res.port = (int)r_max(r, UINT16_MAX, "port");
	res.ip_protocol = (int)r_max(r, UINT8_MAX, "ip_protocol");
	cf->present = (int)r_max(r, 1, "cert_present");
	if (cf->present) {
		r_arr(r, cf->sha256, sizeof cf->sha256, "sha256");
		r_arr(r, cf->pubkey_sha256, sizeof cf->pubkey_sha256,
		    "pubkey_sha256");
		cf->subject = r_str(r, STR_MAX, "subject");
		cf->issuer = r_str(r, STR_MAX, "issuer");
		cf->not_before = (time_t)r_cert_time(r);
		cf->not_after = (time_t)r_cert_time(r);
		cf->self_signed = (int)r_max(r, 1, "self_signed");
		cf->hostname_match = (int)r_max(r, 1, "hostname_match");
	}
	s = r->bad ? NULL : store_site_new(&res);
	result_clear(&res);
	free(tv);
	free(tc);
	return s;
}

/* One check into c (initialised), its ring of capacity cap. */
static void
r_check(struct reader *r, struct store_check *c, size_t cap)
{
	struct store_site **sites = NULL;
	struct store_fact *f;
	struct store_entry e;
	struct probe_result res;
	uint64_t n, nsites = 0, nfacts = 0, i, fi, v;
	int64_t t = 0, dt;
	int p;

	c->probes = r_uv(r);
	n = r_max(r, REASON__COUNT, "number of failure reasons");
	for (i = 0; i < n; i++)
		c->failures[i] = r_uv(r);
	n = r_max(r, END__COUNT, "number of ends");
	for (i = 0; i < n; i++)
		c->ends[i] = r_uv(r);
	c->cn_end = (uint8_t)r_max(r, END__COUNT - 1, "cn_end");

	/* The loader holds a reference to each site and fact until the
	 * end, so those that nothing uses go then. */
	nsites = r_count(r, 7, "number of sites");
	sites = xcalloc(nsites + 1, sizeof *sites);
	for (i = 0; i < nsites && !r->bad; i++)
		if ((sites[i] = r_site(r)) != NULL)
			sites[i]->refs = 1;
	nsites = i;
	if ((v = r_max(r, nsites, "cert_site")) > 0 && sites[v - 1] != NULL) {
		c->cert_site = sites[v - 1];
		c->cert_site->refs++;
	}

	nfacts = r_count(r, 6, "number of facts");
	if (nfacts > FACT_MAX)
		bad(r, "too many facts");
	for (i = 0; i < nfacts && !r->bad; i++) {
		result_init(&res);
		v = r_uv(r);
		res.status = (int)r_sv(r);
		res.reason = (enum reason)r_max(r, REASON__COUNT - 1, "reason");
		res.stage = (enum stage)r_max(r, STAGE__COUNT - 1, "stage");
		res.meta = r_str(r, STR_MAX, "meta");
		res.message = r_str(r, STR_MAX, "message");
		if (v >= nsites)
			bad(r, "fact %llu: no site %llu", (unsigned long long)i,
			    (unsigned long long)v);
		if (res.status < -1 || res.status > 99)
			bad(r, "status %d out of range", res.status);
		if (!r->bad) {
			f = store_fact_new(&res, sites[v]);
			f->refs = 1;
			(void)store_fact_add(c, f);
		}
		result_clear(&res);
	}
	nfacts = c->nfacts;

	if (r_max(r, 1, "has_last") == 1) {
		result_init(&res);
		fi = r_uv(r);
		res.time = r_f64(r);
		for (p = 0; p < PHASE__COUNT; p++)
			res.dur[p] = r_dur(r);
		res.total = r_dur(r);
		if (r->version >= SNAPSHOT_GAPS) {
			res.max_gap = r_dur(r);
			res.idle_before_end = r_dur(r);
		}
		res.body_bytes = r_sv(r);
		if (res.body_bytes < 0)
			res.body_bytes = -1;
		r_flags(r, &res);
		if (fi >= nfacts)
			bad(r, "last: no fact %llu", (unsigned long long)fi);
		if (res.time < 0 || res.time >= (double)UINT32_MAX + 1)
			bad(r, "last: time out of range");
		if (!r->bad) {
			res.check = c->check;
			store_last_set(c, &res, (uint32_t)fi);
		}
	}

	n = r_count(r, 10, "number of entries");
	for (i = 0; i < n && !r->bad; i++) {
		result_init(&res);
		fi = r_uv(r);
		dt = r_sv(r);
		if (dt < 0 ? t < INT64_MIN - dt : t > INT64_MAX - dt)
			bad(r, "time out of range");
		else
			t += dt;
		for (p = 0; p < PHASE__COUNT; p++)
			res.dur[p] = r_entry_dur(r);
		res.total = r_entry_dur(r);
		if (r->version >= SNAPSHOT_GAPS)
			res.idle_before_end = r_entry_dur(r);
		v = r_max(r, BODY_NONE, "body_bytes");
		res.body_bytes = v == 0 ? -1 : (int64_t)(v - 1);
		r_flags(r, &res);
		if (fi >= nfacts)
			bad(r, "entry: no fact %llu", (unsigned long long)fi);
		if (t < 0 || t / MS_PER_S > UINT32_MAX)
			bad(r, "time out of range");
		if (r->bad)
			break;
		store_entry_make(&e, &res, (uint32_t)fi);
		e.time = (uint32_t)(t / MS_PER_S); /* exactly, not via double */
		e.ms = (unsigned)(t % MS_PER_S);
		c->facts[fi]->refs++;
		store_ring_push(c, cap, &e);
	}

	for (i = 0; i < nfacts; i++)
		store_fact_unref(c, (uint32_t)i);
	/* The facts used lately: the entries', oldest first, then last's. */
	for (i = c->ring_count; i-- > 0;)
		store_recent_use(c, store_ring_entry(c, i)->fact);
	if (c->last != NULL)
		store_recent_use(c, c->last_fact);
	for (i = 0; i < nsites; i++)
		if (sites[i] != NULL)
			store_site_unref(sites[i]);
	free(sites);
}

int
store_restore(
    struct store *s, const void *buf, size_t len, char *err, size_t errlen)
{
	struct reader r;
	struct store_capsule *cap;
	struct store_check *staged, scratch, *c;
	unsigned char *seen, *filled;
	uint64_t version, ncaps, nchecks, i, j, k, hash;
	char *name;
	size_t idx;
	int rv = -1;

	r.p = buf;
	r.end = r.p + len;
	r.err = err;
	r.errlen = errlen;
	r.bad = 0;
	r.version = 0; /* until read */
	if (len == 0) {
		bad(&r, "empty");
		return -1;
	}
	if (memcmp(buf, MAGIC, len < MAGIC_LEN ? len : MAGIC_LEN) != 0) {
		bad(&r, "not a gemwatch snapshot");
		return -1;
	}
	if (len < MAGIC_LEN) {
		bad(&r, "truncated");
		return -1;
	}
	r.p += MAGIC_LEN;
	version = r_uv(&r);
	if (r.bad)
		return -1;
	r.version = version;
	if (version < 1 || version > SNAPSHOT_VERSION) {
		bad(&r,
		    "unsupported version %llu (this gemwatch reads 1 to %d)",
		    (unsigned long long)version, SNAPSHOT_VERSION);
		return -1;
	}
	if (len < MAGIC_LEN + 1 + TRAILER_LEN) {
		bad(&r, "truncated");
		return -1;
	}
	r.end -= TRAILER_LEN;
	for (hash = 0, i = 0; i < TRAILER_LEN; i++)
		hash |= (uint64_t)r.end[i] << (8 * i);
	if (hash_bytes(HASH_INIT, buf, len - TRAILER_LEN) != hash) {
		bad(&r, "checksum mismatch (truncated or damaged)");
		return -1;
	}
	(void)r_uv(&r); /* saved_at */
	(void)r_uv(&r); /* history when saved */

	store_wrlock(s);
	staged = xcalloc(s->ncaps * CHECK__COUNT + 1, sizeof *staged);
	filled = xcalloc(s->ncaps * CHECK__COUNT + 1, 1);
	seen = xcalloc(s->ncaps + 1, 1);
	ncaps = r_count(&r, 2, "number of capsules");
	for (i = 0; i < ncaps && !r.bad; i++) {
		if ((name = r_str(&r, STR_MAX, "capsule name")) == NULL) {
			bad(&r, "capsule without a name");
			break;
		}
		cap = store_find(s, name);
		if (cap != NULL && seen[cap - s->caps])
			bad(&r, "capsule %s twice", name);
		free(name);
		if (cap != NULL)
			seen[cap - s->caps] = 1;
		nchecks = r_max(&r, CHECK__COUNT, "number of checks");
		for (j = 0; j < nchecks && !r.bad; j++) {
			k = r_max(&r, CHECK__COUNT - 1, "check");
			if (cap != NULL &&
			    (k == CHECK_PAGE || cap->has_error_page)) {
				idx = (size_t)(cap - s->caps) * CHECK__COUNT +
				      (size_t)k;
				c = &staged[idx];
				if (filled[idx]) {
					bad(&r, "check %s twice",
					    check_name((enum check)k));
					c = &scratch;
				}
				filled[idx] = 1;
			} else
				c = &scratch; /* not configured: read, drop */
			store_check_init(c, (enum check)k);
			if (!r.bad)
				r_check(&r, c, s->history);
			if (c == &scratch)
				store_check_free(c);
		}
	}
	if (!r.bad && r.p != r.end)
		bad(&r, "%zu bytes of garbage after the last capsule",
		    (size_t)(r.end - r.p));

	for (idx = 0; idx < s->ncaps * CHECK__COUNT; idx++) {
		if (!filled[idx])
			continue;
		c = &s->caps[idx / CHECK__COUNT].check[idx % CHECK__COUNT];
		if (r.bad)
			store_check_free(&staged[idx]);
		else {
			store_check_free(c);
			*c = staged[idx];
		}
	}
	if (!r.bad) {
		for (i = 0, j = 0; i < s->ncaps; i++)
			j += seen[i];
		log_info("snapshot: restored %llu of %zu capsules",
		    (unsigned long long)j, s->ncaps);
		rv = 0;
	}
	store_unlock(s);
	free(staged);
	free(filled);
	free(seen);
	return rv;
}

int
store_load(struct store *s, const char *path)
{
	struct stat st;
	void *map = MAP_FAILED;
	char err[256], *aside;
	int fd, rv;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		if (errno == ENOENT) {
			log_info("snapshot %s: none yet", path);
			return 0;
		}
		log_warn("snapshot %s; starting with an empty history", path);
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		log_warn("snapshot %s; starting with an empty history", path);
		close(fd);
		return -1;
	}
	if (st.st_size == 0)
		snprintf(err, sizeof err, "empty file");
	else if ((map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE,
	              fd, 0)) == MAP_FAILED) {
		log_warn(
		    "snapshot %s: mmap; starting with an empty history", path);
		close(fd);
		return -1;
	}
	close(fd);
	rv = -1;
	if (map != MAP_FAILED) {
		rv = store_restore(s, map, (size_t)st.st_size, err, sizeof err);
		munmap(map, (size_t)st.st_size);
	}
	if (rv == 0) {
		log_info("snapshot %s: loaded (%lld bytes)", path,
		    (long long)st.st_size);
		return 0;
	}
	xasprintf(&aside, "%s.corrupt", path);
	if (rename(path, aside) == 0)
		log_warnx("snapshot %s: %s; moved aside to %s, starting with "
		          "an empty history",
		    path, err, aside);
	else
		log_warn("snapshot %s: %s; starting with an empty history; "
		         "rename to %s",
		    path, err, aside);
	free(aside);
	return -1;
}
