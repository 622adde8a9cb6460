/*
 * Certificate facts and trust on first use. The facts come from the DER
 * leaf with GnuTLS's x509 API. The TOFU store keeps, per host:port, the
 * first-seen certificate and public-key fingerprints in
 * state-dir/known_hosts, one line each:
 *
 *	host:port cert-sha256 pubkey-sha256 first-seen not-after
 *
 * The file is rewritten through file_replace (a temporary file, fsync,
 * rename, fsync of the directory) and re-read when someone else (gemwatch
 * trust) replaced it: sorted once as read, so that even 100,000 lines in
 * any order load in a fraction of a second, and without the lock held.
 */
#include "config.h"

#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cert.h"
#include "file.h"
#include "hex.h"
#include "log.h"
#include "xmalloc.h"

static int
sha256_hex(const void *p, size_t n, char out[SHA256_HEX_LEN + 1])
{
	unsigned char md[32];

	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, p, n, md) < 0)
		return -1;
	hex_encode(md, sizeof md, out);
	return 0;
}

static char *
datum_string(gnutls_datum_t *d)
{
	char *s;

	s = xstrndup((const char *)d->data, d->size);
	gnutls_free(d->data);
	d->data = NULL;
	return s;
}

int
cert_facts_from_der(const unsigned char *der, size_t len, const char *hostname,
    struct cert_facts *f)
{
	gnutls_x509_crt_t crt = NULL;
	gnutls_pubkey_t pub = NULL;
	gnutls_datum_t d = {(unsigned char *)der, (unsigned)len};
	gnutls_datum_t out = {NULL, 0};
	unsigned vstatus;
	int rv = -1;

	if (len > UINT32_MAX || gnutls_x509_crt_init(&crt) < 0)
		return -1;
	if (gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_DER) < 0)
		goto fail;
	if (sha256_hex(der, len, f->sha256) < 0)
		goto fail;
	if (gnutls_pubkey_init(&pub) < 0 ||
	    gnutls_pubkey_import_x509(pub, crt, 0) < 0 ||
	    gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &out) < 0)
		goto fail;
	if (sha256_hex(out.data, out.size, f->pubkey_sha256) < 0)
		goto fail;
	gnutls_free(out.data);
	out.data = NULL;

	free(f->subject);
	free(f->issuer);
	f->subject = f->issuer = NULL;
	if (gnutls_x509_crt_get_dn3(crt, &out, 0) >= 0)
		f->subject = datum_string(&out);
	else
		f->subject = xstrdup("");
	if (gnutls_x509_crt_get_issuer_dn3(crt, &out, 0) >= 0)
		f->issuer = datum_string(&out);
	else
		f->issuer = xstrdup("");
	f->not_before = gnutls_x509_crt_get_activation_time(crt);
	f->not_after = gnutls_x509_crt_get_expiration_time(crt);

	/* Self-signed: it names itself as issuer and its own key signs it. */
	f->self_signed = 0;
	if (gnutls_x509_crt_check_issuer(crt, crt) &&
	    gnutls_x509_crt_verify(crt, &crt, 1,
	        GNUTLS_VERIFY_DISABLE_TIME_CHECKS |
	            GNUTLS_VERIFY_ALLOW_SIGN_WITH_SHA1 |
	            GNUTLS_VERIFY_ALLOW_BROKEN,
	        &vstatus) >= 0 &&
	    vstatus == 0)
		f->self_signed = 1;
	f->hostname_match = hostname != NULL && gnutls_x509_crt_check_hostname2(
	                                            crt, hostname, 0) != 0;
	f->present = 1;
	rv = 0;
fail:
	gnutls_free(out.data);
	gnutls_pubkey_deinit(pub);
	gnutls_x509_crt_deinit(crt);
	return rv;
}

/* ---- TOFU store -------------------------------------------------------- */

#define TOFU_MALFORMED_SHOWN 10 /* malformed lines named per read */
#define TOFU_WARN_INTERVAL 3600 /* seconds between "cannot write" */

struct tofu_entry {
	char *key; /* "host:port", IPv6 host in brackets */
	char sha256[SHA256_HEX_LEN + 1];
	char pubkey_sha256[SHA256_HEX_LEN + 1];
	time_t first_seen;
	time_t not_after;
	size_t line; /* while reading: the first line wins */
};

/* The entries of the file, sorted by key. */
struct tofu_table {
	struct tofu_entry *v;
	size_t n, cap;
};

struct tofu_store {
	pthread_mutex_t lock;
	char *path;   /* NULL: memory only */
	int writable; /* 0: path is read, never written */
	struct tofu_table tab;
	int dirty;
	time_t last_save;
	unsigned long writes; /* files written, ever */
	struct stat seen;     /* the file as we last read or wrote it */
	int have_seen;
	time_t fail_logged;  /* writing fails: when it was said; 0 */
	unsigned long fails; /* failed writes not said yet */
};

static int
entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct tofu_entry *)a)->key,
	    ((const struct tofu_entry *)b)->key);
}

/* By key, then by line: the first of a key's lines comes first. */
static int
entry_line_cmp(const void *a, const void *b)
{
	const struct tofu_entry *x = a, *y = b;
	int rc;

	if ((rc = strcmp(x->key, y->key)) != 0)
		return rc;
	return x->line < y->line ? -1 : x->line > y->line;
}

static void
tofu_key(const char *host, int port, char *out, size_t len)
{
	if (strchr(host, ':') != NULL)
		snprintf(out, len, "[%s]:%d", host, port);
	else
		snprintf(out, len, "%s:%d", host, port);
}

static struct tofu_entry *
tofu_lookup(struct tofu_store *t, const char *key)
{
	struct tofu_entry k = {.key = (char *)key};

	if (t->tab.n == 0)
		return NULL;
	return bsearch(&k, t->tab.v, t->tab.n, sizeof *t->tab.v, entry_cmp);
}

static void
table_clear(struct tofu_table *tab)
{
	size_t i;

	for (i = 0; i < tab->n; i++)
		free(tab->v[i].key);
	tab->n = 0;
}

static void
table_free(struct tofu_table *tab)
{
	table_clear(tab);
	free(tab->v);
	tab->v = NULL;
	tab->cap = 0;
}

static void
table_reserve(struct tofu_table *tab)
{
	if (tab->n == tab->cap) {
		tab->cap = tab->cap ? tab->cap * 2 : 64;
		tab->v = xreallocarray(tab->v, tab->cap, sizeof *tab->v);
	}
}

static int
is_hex64(const char *s)
{
	size_t i;

	for (i = 0; i < SHA256_HEX_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		        (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[i] == '\0';
}

/* Insert keeping the table sorted; the key is copied. */
static struct tofu_entry *
tofu_insert(struct tofu_store *t, const struct tofu_entry *e)
{
	struct tofu_table *tab = &t->tab;
	size_t lo = 0, hi = tab->n, mid;

	while (lo < hi) {
		mid = (lo + hi) / 2;
		if (strcmp(tab->v[mid].key, e->key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	table_reserve(tab);
	memmove(&tab->v[lo + 1], &tab->v[lo], (tab->n - lo) * sizeof *tab->v);
	tab->v[lo] = *e;
	tab->v[lo].key = xstrdup(e->key);
	tab->n++;
	return &tab->v[lo];
}

/*
 * Read path into tab (empty), sorted by key, the first line of a key
 * kept: appended in file order, sorted once, then the later lines of a
 * key dropped (n log n: inserting each in place was quadratic, 16 to 36 s
 * for 100,000 lines out of order). st is the file read. Returns 0, or
 * -1 with errno when it cannot be opened (a link is not followed).
 */
static int
tofu_load(const char *path, struct tofu_table *tab, struct stat *st)
{
	FILE *fp;
	char line[1024], key[300], a[80], b[80];
	long long first, after;
	struct tofu_entry e;
	size_t lineno = 0, bad = 0, i, o;
	int fd;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return -1;
	if ((fp = fdopen(fd, "r")) == NULL) {
		close(fd);
		return -1;
	}
	if (fstat(fd, st) == -1)
		memset(st, 0, sizeof *st);
	while (fgets(line, sizeof line, fp) != NULL) {
		lineno++;
		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (sscanf(line, "%299s %79s %79s %lld %lld", key, a, b, &first,
		        &after) != 5 ||
		    !is_hex64(a) || !is_hex64(b)) {
			if (++bad <= TOFU_MALFORMED_SHOWN)
				log_warnx("%s:%zu: malformed line ignored",
				    path, lineno);
			continue;
		}
		e.key = key;
		memcpy(e.sha256, a, sizeof e.sha256);
		memcpy(e.pubkey_sha256, b, sizeof e.pubkey_sha256);
		e.first_seen = (time_t)first;
		e.not_after = (time_t)after;
		e.line = lineno;
		table_reserve(tab);
		tab->v[tab->n] = e;
		tab->v[tab->n++].key = xstrdup(key);
	}
	fclose(fp);
	if (bad > TOFU_MALFORMED_SHOWN)
		log_warnx("%s: %zu more malformed lines ignored", path,
		    bad - TOFU_MALFORMED_SHOWN);
	if (tab->n > 1)
		qsort(tab->v, tab->n, sizeof *tab->v, entry_line_cmp);
	for (i = o = 0; i < tab->n; i++) {
		if (o > 0 && strcmp(tab->v[o - 1].key, tab->v[i].key) == 0) {
			free(tab->v[i].key);
			continue;
		}
		tab->v[o++] = tab->v[i];
	}
	tab->n = o;
	return 0;
}

/*
 * Read the file; the in-memory entries are replaced, unless it cannot be
 * read (a link, no permission: logged). The file is read without the
 * lock, so that probes recording certificates do not wait for a long
 * file; its entries replace the table under the lock, unless the store
 * wrote the file meanwhile (then the next flush reads it again).
 */
static void
tofu_read(struct tofu_store *t)
{
	struct tofu_table tab = {NULL, 0, 0};
	struct stat st;
	unsigned long writes;
	int rv, err;

	if (t->path == NULL)
		return;
	pthread_mutex_lock(&t->lock);
	writes = t->writes;
	pthread_mutex_unlock(&t->lock);
	rv = tofu_load(t->path, &tab, &st);
	err = errno;
	pthread_mutex_lock(&t->lock);
	if (t->writes != writes)
		; /* stale already: read again */
	else if (rv == -1 && err == ENOENT) {
		table_clear(&t->tab);
		t->have_seen = 0;
	} else if (rv == -1) {
		errno = err;
		log_warn("%s; keeping the pins known", t->path);
		/* Not again until the file changes. */
		t->have_seen = stat(t->path, &t->seen) == 0;
	} else {
		table_free(&t->tab);
		t->tab = tab;
		tab.v = NULL;
		tab.n = 0;
		t->seen = st;
		t->have_seen = 1;
	}
	pthread_mutex_unlock(&t->lock);
	table_free(&tab);
}

/* file_replace's fill: the entries, sorted by key. */
static int
tofu_lines(FILE *fp, void *arg)
{
	const struct tofu_store *t = arg;
	const struct tofu_entry *e;
	size_t i;

	fprintf(fp, "# gemwatch known hosts: host:port cert-sha256 "
	            "pubkey-sha256 first-seen not-after\n");
	for (i = 0; i < t->tab.n; i++) {
		e = &t->tab.v[i];
		fprintf(fp, "%s %s %s %lld %lld\n", e->key, e->sha256,
		    e->pubkey_sha256, (long long)e->first_seen,
		    (long long)e->not_after);
	}
	return 0;
}

/*
 * Write the file (file_replace: atomic, durable, no link followed); the
 * lock is held. A failure is retried at the next flush (every second) and
 * said once, then at most once an hour with a count, and its end is said.
 */
static int
tofu_write(struct tofu_store *t)
{
	char *why;
	time_t now;

	if (t->path == NULL || !t->writable) {
		t->dirty = 0; /* kept in memory, as statedir_init said */
		return 0;
	}
	now = time(NULL);
	if (file_replace_why(t->path, 0644, tofu_lines, t, &why) == -1) {
		t->fails++;
		if (t->fail_logged == 0) {
			log_warnx(
			    "%s; the pins are kept in memory and "
			    "writing is tried again every second (said again "
			    "at most hourly)",
			    why != NULL ? why : t->path);
			t->fail_logged = now;
			t->fails = 0;
		} else if (now - t->fail_logged >= TOFU_WARN_INTERVAL) {
			log_warnx("%s (%lu more failed writes)",
			    why != NULL ? why : t->path, t->fails);
			t->fail_logged = now;
			t->fails = 0;
		}
		free(why);
		return -1;
	}
	if (t->fail_logged != 0) {
		log_notice("%s written again", t->path);
		t->fail_logged = 0;
		t->fails = 0;
	}
	t->writes++;
	t->have_seen = stat(t->path, &t->seen) == 0;
	t->dirty = 0;
	t->last_save = now;
	return 0;
}

struct tofu_store *
tofu_open(const char *dir, int writable)
{
	struct tofu_store *t;

	t = xcalloc(1, sizeof *t);
	pthread_mutex_init(&t->lock, NULL);
	if (dir != NULL)
		xasprintf(&t->path, "%s/known_hosts", dir);
	t->writable = writable;
	tofu_read(t);
	return t;
}

int
tofu_free(struct tofu_store *t)
{
	int rv = 0;

	if (t == NULL)
		return 0;
	if (t->dirty)
		rv = tofu_write(t);
	table_free(&t->tab);
	free(t->path);
	pthread_mutex_destroy(&t->lock);
	free(t);
	return rv;
}

/* Whether the file was replaced or changed since we last read or wrote it. */
static int
tofu_file_changed(struct tofu_store *t)
{
	struct stat st;

	if (t->path == NULL)
		return 0;
	if (stat(t->path, &st) != 0)
		return errno == ENOENT && t->have_seen;
	return !t->have_seen || st.st_ino != t->seen.st_ino ||
	       st.st_mtim.tv_sec != t->seen.st_mtim.tv_sec ||
	       st.st_mtim.tv_nsec != t->seen.st_mtim.tv_nsec ||
	       st.st_size != t->seen.st_size;
}

void
tofu_check(
    struct tofu_store *t, const char *host, int port, struct cert_facts *f)
{
	char key[300];
	struct tofu_entry *e, ne;

	if (!f->present)
		return;
	tofu_key(host, port, key, sizeof key);
	pthread_mutex_lock(&t->lock);
	if ((e = tofu_lookup(t, key)) == NULL) {
		ne.key = key;
		memcpy(ne.sha256, f->sha256, sizeof ne.sha256);
		memcpy(ne.pubkey_sha256, f->pubkey_sha256,
		    sizeof ne.pubkey_sha256);
		ne.first_seen = time(NULL);
		ne.not_after = f->not_after;
		ne.line = 0;
		tofu_insert(t, &ne);
		f->tofu = TOFU_NEW;
		f->key_kept = -1;
		t->dirty = 1;
		/* Save at once unless a burst of new hosts is arriving. */
		if (time(NULL) != t->last_save)
			tofu_write(t);
	} else if (strcmp(e->sha256, f->sha256) == 0) {
		f->tofu = TOFU_MATCH;
		f->key_kept = -1;
	} else {
		f->tofu = TOFU_CHANGED;
		f->key_kept = strcmp(e->pubkey_sha256, f->pubkey_sha256) == 0;
	}
	pthread_mutex_unlock(&t->lock);
}

void
tofu_flush(struct tofu_store *t)
{
	int changed;

	pthread_mutex_lock(&t->lock);
	if (!(changed = tofu_file_changed(t)) && t->dirty)
		tofu_write(t);
	pthread_mutex_unlock(&t->lock);
	if (changed) {
		log_info("%s changed on disk; re-reading it", t->path);
		tofu_read(t);
	}
}

int
tofu_forget(struct tofu_store *t, const char *host, int port)
{
	char key[300];
	struct tofu_entry *e;
	size_t i;
	int rv = -1;

	tofu_key(host, port, key, sizeof key);
	pthread_mutex_lock(&t->lock);
	if ((e = tofu_lookup(t, key)) != NULL) {
		i = (size_t)(e - t->tab.v);
		free(e->key);
		memmove(&t->tab.v[i], &t->tab.v[i + 1],
		    (t->tab.n - i - 1) * sizeof *t->tab.v);
		t->tab.n--;
		t->dirty = 1;
		rv = tofu_write(t);
	}
	pthread_mutex_unlock(&t->lock);
	return rv;
}
