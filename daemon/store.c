/*
 * The results store: the capsules of this instance's shard in configuration
 * order, each with per check the latest result, counters and a ring of
 * recent results. Probes publish with store_put under the write lock; the
 * HTTP thread reads under store_rdlock. Rings are allocated on a check's
 * first result, so checks that never ran (or error pages not configured)
 * cost nothing. State changes (up/down, close_notify lost/back, certificate
 * changed) are logged here, once per change, because only the store sees
 * successive results of one capsule.
 */
#include "config.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "log.h"
#include "result.h"
#include "store.h"
#include "xmalloc.h"

struct store {
	pthread_rwlock_t	  lock;
	struct store_capsule	 *caps;		/* in configuration order */
	size_t			  ncaps;
	struct store_capsule	**byname;	/* caps sorted by name */
	size_t			  history;	/* ring capacity */
	int			  reload_ok;	/* latest reload */
	double			  reload_success;	/* when one last worked */
};

static void
check_init(struct store_check *c)
{
	memset(c, 0, sizeof *c);
	result_init(&c->last);
}

/* Slot of the i-th newest result. Until the ring first fills up, results
 * sit at 0..count-1 with the newest at head, so wrapping (i > head) only
 * happens in a full ring and the capacity is not needed. */
static size_t
ring_slot(const struct store_check *c, size_t i)
{
	return i <= c->ring_head ? c->ring_head - i :
	    c->ring_head + c->ring_count - i;
}

static void
check_free(struct store_check *c)
{
	size_t i;

	result_clear(&c->last);
	for (i = 0; i < c->ring_count; i++)
		result_clear(&c->ring[ring_slot(c, i)]);
	free(c->ring);
	check_init(c);
}

static void
ring_push(struct store_check *c, size_t cap, const struct probe_result *res)
{
	struct probe_result	*slot;
	size_t			 i;

	if (cap == 0)
		return;
	if (c->ring == NULL) {
		c->ring = xcalloc(cap, sizeof *c->ring);
		for (i = 0; i < cap; i++)
			result_init(&c->ring[i]);
		c->ring_head = c->ring_count = 0;
	}
	if (c->ring_count > 0)
		c->ring_head = (c->ring_head + 1) % cap;
	if (c->ring_count < cap)
		c->ring_count++;
	slot = &c->ring[c->ring_head];
	result_clear(slot);
	result_copy(slot, res);
}

/* Change the ring's capacity, keeping the newest results. */
static void
ring_resize(struct store_check *c, size_t oldcap, size_t newcap)
{
	struct probe_result	*nr;
	size_t			 keep, i;

	if (c->ring == NULL || oldcap == newcap)
		return;
	keep = c->ring_count < newcap ? c->ring_count : newcap;
	nr = NULL;
	if (newcap > 0) {
		nr = xcalloc(newcap, sizeof *nr);
		for (i = keep; i < newcap; i++)
			result_init(&nr[i]);
		/* Move (not copy) the kept results, oldest first. */
		for (i = 0; i < keep; i++)
			nr[keep - 1 - i] = c->ring[ring_slot(c, i)];
	}
	for (i = keep; i < c->ring_count; i++)
		result_clear(&c->ring[ring_slot(c, i)]);
	free(c->ring);
	c->ring = nr;
	c->ring_count = keep;
	c->ring_head = keep > 0 ? keep - 1 : 0;
}

static void
capsule_free(struct store_capsule *cap)
{
	size_t k;

	for (k = 0; k < CHECK__COUNT; k++)
		check_free(&cap->check[k]);
	free(cap->name);
	free(cap->url);
}

struct store *
store_new(void)
{
	struct store	*s;
	int		 error;

	s = xcalloc(1, sizeof *s);
	if ((error = pthread_rwlock_init(&s->lock, NULL)) != 0)
		fatalx("pthread_rwlock_init: error %d", error);
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
	free(s);
}

static void
wrlock(struct store *s)
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

static struct store_capsule *
find(const struct store *s, const char *name)
{
	struct store_capsule **p;

	if (s->ncaps == 0 || name == NULL)
		return NULL;
	p = bsearch(name, s->byname, s->ncaps, sizeof *s->byname,
	    byname_key_cmp);
	return p != NULL ? *p : NULL;
}

void
store_sync(struct store *s, const struct conf *conf)
{
	struct store_capsule		*caps, *old;
	const struct capsule_conf	*cc;
	unsigned char			*taken;
	size_t				 i, k, n, newcap;

	wrlock(s);
	newcap = conf->history;
	caps = xcalloc(conf->ncapsules + 1, sizeof *caps);
	taken = xcalloc(s->ncaps + 1, 1);
	n = 0;
	for (i = 0; i < conf->ncapsules; i++) {
		cc = &conf->capsules[i];
		assert(cc->name != NULL && cc->url.text != NULL);
		if (!conf_in_shard(conf, cc))
			continue;
		old = find(s, cc->name);
		if (old != NULL && !taken[old - s->caps]) {
			taken[old - s->caps] = 1;
			caps[n] = *old;
			if (strcmp(caps[n].url, cc->url.text) != 0) {
				free(caps[n].url);
				caps[n].url = xstrdup(cc->url.text);
			}
		} else {
			caps[n].name = xstrdup(cc->name);
			caps[n].url = xstrdup(cc->url.text);
			for (k = 0; k < CHECK__COUNT; k++)
				check_init(&caps[n].check[k]);
		}
		if (cc->error_path == NULL)
			check_free(&caps[n].check[CHECK_ERROR_PAGE]);
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
	s->byname = xcalloc(n + 1, sizeof *s->byname);
	for (i = 0; i < n; i++)
		s->byname[i] = &caps[i];
	qsort(s->byname, n, sizeof *s->byname, byname_cmp);
	store_unlock(s);
}

static int
end_has_cn(const struct probe_result *r)
{
	return r->end == END_CLOSE_NOTIFY || r->end == END_PREMATURE ||
	    r->end == END_RESET;
}

static int
has_cert(const struct probe_result *r)
{
	return r->cert.present;
}

/* The newest earlier result for which pred holds, or NULL. */
static const struct probe_result *
previous(const struct store_check *c, int (*pred)(const struct probe_result *))
{
	size_t i;

	if (c->has_last && pred(&c->last))
		return &c->last;
	for (i = 0; i < c->ring_count; i++)
		if (pred(&c->ring[ring_slot(c, i)]))
			return &c->ring[ring_slot(c, i)];
	return NULL;
}

/* One notice per change of state, not per probe. */
static void
log_changes(const struct store_capsule *cap, const struct store_check *c,
    const struct probe_result *res)
{
	const struct probe_result	*prev;
	const char			*what, *reason;

	what = res->check == CHECK_ERROR_PAGE ? " (error_page)" : "";
	if (!c->has_last || c->last.success != res->success) {
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
				log_notice("capsule %s%s: down (%s)",
				    cap->name, what, reason);
		}
	}

	if (end_has_cn(res) && (prev = previous(c, end_has_cn)) != NULL) {
		if (prev->end == END_CLOSE_NOTIFY &&
		    res->end != END_CLOSE_NOTIFY)
			log_notice("capsule %s%s: close_notify lost (%s)",
			    cap->name, what, end_name(res->end));
		else if (prev->end != END_CLOSE_NOTIFY &&
		    res->end == END_CLOSE_NOTIFY)
			log_notice("capsule %s%s: close_notify back",
			    cap->name, what);
	}

	if (res->cert.present && (prev = previous(c, has_cert)) != NULL &&
	    strcmp(prev->cert.sha256, res->cert.sha256) != 0)
		log_notice("capsule %s%s: certificate changed "
		    "(sha256 %s \xe2\x86\x92 %s, %s)", cap->name, what,
		    prev->cert.sha256, res->cert.sha256,
		    res->cert.pubkey_sha256[0] != '\0' &&
		    strcmp(prev->cert.pubkey_sha256,
		    res->cert.pubkey_sha256) == 0 ? "same key" : "new key");
}

void
store_put(struct store *s, const char *name, const struct probe_result *res)
{
	struct store_capsule	*cap;
	struct store_check	*c;

	if ((unsigned)res->check >= CHECK__COUNT)
		return;
	wrlock(s);
	if ((cap = find(s, name)) == NULL ||
	    (res->check == CHECK_ERROR_PAGE && !cap->has_error_page)) {
		/* Removed (or its error-path was) by a reload while probing. */
		log_debug("store: dropped a result for %s",
		    name != NULL ? name : "?");
		goto out;
	}
	c = &cap->check[res->check];
	log_changes(cap, c, res);

	result_clear(&c->last);
	result_copy(&c->last, res);
	c->has_last = 1;
	c->probes++;
	if (!res->success && (unsigned)res->reason < REASON__COUNT)
		c->failures[res->reason]++;
	if (res->end != END_NONE && (unsigned)res->end < END__COUNT)
		c->ends[res->end]++;
	ring_push(c, s->history, res);
out:
	store_unlock(s);
}

/* ok is the outcome of the latest reload; the success time only moves when
 * ok, so a failed reload keeps reporting when the config last loaded. */
void
store_set_reload(struct store *s, int ok, double when)
{
	wrlock(s);
	s->reload_ok = ok;
	if (ok)
		s->reload_success = when;
	store_unlock(s);
}

int
store_reload_status(const struct store *s, double *when)
{
	if (when != NULL)
		*when = s->reload_success;
	return s->reload_ok;
}

size_t
store_count(const struct store *s)
{
	return s->ncaps;
}

const struct store_capsule *
store_at(const struct store *s, size_t i)
{
	return i < s->ncaps ? &s->caps[i] : NULL;
}

const struct store_capsule *
store_find(const struct store *s, const char *name)
{
	return find(s, name);
}

const struct probe_result *
store_history(const struct store_check *c, size_t i)
{
	if (c->ring == NULL || i >= c->ring_count)
		return NULL;
	return &c->ring[ring_slot(c, i)];
}
