/*
 * Unit tests for the store's snapshot: a store saved and loaded into a
 * fresh one with the same configuration answers the same JSON (list and
 * per capsule, with histories) and keeps its counters and what state
 * changes compare with; a new configuration keeps only its capsules and
 * the newest results that fit its history; a missing file is a first
 * start; corrupt, truncated, empty and unknown-version files are reported
 * with the file's name, moved aside to .corrupt and leave the store
 * empty; every truncation and every damaged byte of a small snapshot is
 * refused or loaded without harm; a link planted at the temporary name
 * or at the snapshot itself is never followed.
 */
#include "config.h"

#include <sys/stat.h>
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "conf.h"
#include "fixture.h"
#include "result.h"
#include "store.h"
#include "tap.h"
#include "xmalloc.h"

#define MAXCAPS 8

static char dir[] = "/tmp/test_snapshot.XXXXXX";
static char path[200], aside[256];

struct testconf {
	struct conf conf;
	struct capsule_conf caps[MAXCAPS];
};

/* Capsules given as "name url [error-path]" strings. */
static struct store *
mkstore(unsigned history, const char *const *spec)
{
	struct testconf t;
	struct store *s = store_new();
	char name[64], url[128], ep[64];
	size_t i;
	int n;

	memset(&t, 0, sizeof t);
	t.conf.history = history;
	t.conf.shard_k = t.conf.shard_n = 1;
	t.conf.capsules = t.caps;
	for (i = 0; spec[i] != NULL; i++) {
		n = sscanf(spec[i], "%63s %127s %63s", name, url, ep);
		t.caps[i].name = xstrdup(name);
		t.caps[i].url.text = xstrdup(url);
		t.caps[i].error_path = n == 3 ? xstrdup(ep) : NULL;
	}
	t.conf.ncapsules = i;
	fixture_sync(s, &t.conf);
	for (i = 0; i < t.conf.ncapsules; i++) {
		free(t.caps[i].name);
		free(t.caps[i].url.text);
		free(t.caps[i].error_path);
	}
	return s;
}

static const char *const spec_ab[] = {"alpha gemini://alpha.example/",
    "beta gemini://beta.example/ /nope", "gamma gemini://gamma.example/", NULL};

/* ---- results
 * ------------------------------------------------------------------ */

static void
result(struct probe_result *r, enum check check, double time, int n,
    const char *sha)
{
	result_init(r);
	r->check = check;
	r->url = xstrdup(check == CHECK_PAGE ? "gemini://alpha.example/"
	                                     : "gemini://alpha.example/nope");
	r->time = time;
	r->success = 1;
	snprintf(r->address, sizeof r->address, "192.0.2.%d", n % 3 + 1);
	r->port = 1965;
	r->ip_protocol = 4;
	r->dur[PHASE_RESOLVE] = 0.000123 * n;
	r->dur[PHASE_CONNECT] = 0.02;
	r->dur[PHASE_TLS] = 0.051234;
	r->dur[PHASE_HEADER] = n % 2 ? 9.87654321 : 0.03;
	r->dur[PHASE_BODY] = 0.004;
	r->total = 0.106789 + n;
	r->max_gap = n % 2 ? 3.25 + n : 0.0015;
	r->idle_before_end = n % 2 ? 0.0007 : 2.5 * n;
	r->tls_version = "TLS1.3";
	r->tls_cipher = "TLS_AES_256_GCM_SHA384";
	if (sha != NULL) {
		r->cert.present = 1;
		memset(r->cert.sha256, sha[0], SHA256_HEX_LEN);
		memset(r->cert.pubkey_sha256, 'b', SHA256_HEX_LEN);
		r->cert.subject = xstrdup("CN=alpha.example");
		r->cert.issuer = xstrdup("CN=alpha.example");
		r->cert.not_before = 1700000000;
		r->cert.not_after = 1800000000;
		r->cert.self_signed = 1;
		r->cert.hostname_match = 1;
		r->cert.tofu = n == 0 ? TOFU_NEW : TOFU_MATCH;
	}
	r->status = check == CHECK_PAGE ? 20 : 51;
	r->meta =
	    xstrdup(check == CHECK_PAGE ? "text/gemini; lang=en" : "Not found");
	r->body_bytes = check == CHECK_PAGE ? 1000 + n : 0;
	r->end = END_CLOSE_NOTIFY;
	if (n % 4 == 3) {
		r->end = END_PREMATURE;
		result_fail(r, REASON_CLOSE_NOTIFY, STAGE_BODY,
		    "connection closed without close_notify");
	}
}

/* A few rounds of results of every kind into alpha and beta. */
static void
fill(struct store *s)
{
	struct probe_result r;
	int i;

	for (i = 0; i < 9; i++) {
		result(&r, CHECK_PAGE, 1795881600.125 + 60 * i, i,
		    i < 6 ? "a" : "c");
		store_put(s, "alpha", &r);
		result_clear(&r);
		result(&r, CHECK_PAGE, 1795881601.5 + 60 * i, i, NULL);
		if (i % 3 == 0) {
			r.status = -1;
			free(r.meta);
			r.meta = NULL;
			r.body_bytes = -1;
			r.max_gap = r.idle_before_end = -1;
			r.end = END_TIMEOUT;
			r.reason = REASON_NONE;
			result_fail(&r, REASON_TIMEOUT, STAGE_HEADER,
			    "deadline of 10s passed during the header");
		}
		store_put(s, "beta", &r);
		result_clear(&r);
		result(&r, CHECK_ERROR_PAGE, 1795881602 + 60 * i, i, "e");
		store_put(s, "beta", &r);
		result_clear(&r);
	}
}

static char *
capsule_json(struct store *s, const char *name)
{
	char *j = api_capsule(s, name);

	return j != NULL ? j : xstrdup("(none)");
}

static int
file_exists(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0;
}

/* Whether a file named like a temporary of path is in dir. */
static int
temporary_left(void)
{
	DIR *d;
	struct dirent *e;
	int found = 0;

	if ((d = opendir(dir)) == NULL)
		return 1;
	while ((e = readdir(d)) != NULL)
		if (strncmp(e->d_name, "history.snapshot.tmp", 20) == 0)
			found = 1;
	closedir(d);
	return found;
}

static void
write_file(const char *p, const void *data, size_t len)
{
	FILE *f = fopen(p, "w");

	if (f == NULL)
		return;
	fwrite(data, 1, len, f);
	fclose(f);
}

static unsigned char *
read_file(const char *p, size_t *len)
{
	unsigned char *data;
	FILE *f;
	long n;

	*len = 0;
	if ((f = fopen(p, "r")) == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	data = xmalloc((size_t)n + 1);
	*len = fread(data, 1, (size_t)n, f);
	fclose(f);
	return data;
}

/* ---- tests
 * -------------------------------------------------------------------- */

static void
test_roundtrip(void)
{
	struct store *a, *b;
	const struct store_check *c;
	struct probe_result r;
	const char *out;
	char *ja, *jb;
	const char *names[] = {"alpha", "beta", "gamma"};
	size_t i;

	a = mkstore(5, spec_ab);
	capture_begin();
	fill(a);
	capture_end();
	is_int(store_save(a, path), 0, "save");
	ok(file_exists(path), "the snapshot exists");
	ok(!file_exists(aside), "and nothing was moved aside");
	ok(!temporary_left(), "no temporary file left");

	b = mkstore(5, spec_ab);
	is_int(store_load(b, path), 0, "load into a fresh store");
	ja = api_capsules(a);
	jb = api_capsules(b);
	ok(ja != NULL && jb != NULL && strcmp(ja, jb) == 0,
	    "the same /api/v1/capsules");
	free(ja);
	free(jb);
	for (i = 0; i < 3; i++) {
		ja = capsule_json(a, names[i]);
		jb = capsule_json(b, names[i]);
		if (!ok(strcmp(ja, jb) == 0,
		        "the same /api/v1/capsules/%s with its history",
		        names[i]))
			printf("#   saved  %s\n#   loaded %s\n", ja, jb);
		free(ja);
		free(jb);
	}
	store_rdlock(b);
	c = &store_find(b, "alpha")->check[CHECK_PAGE];
	is_int(c->probes, 9, "alpha: probes counted");
	is_int(c->failures[REASON_CLOSE_NOTIFY], 2, "alpha: failures");
	is_int(c->ends[END_PREMATURE], 2, "alpha: premature ends");
	is_int(c->ring_count, 5, "alpha: history of 5");
	ok(c->last != NULL && c->last->time == 1795881600.125 + 480,
	    "alpha: last result's time to the fraction");
	ok(c->last->dur[PHASE_HEADER] == 0.03 && c->last->total == 8.106789,
	    "alpha: last result's durations");
	is_str(c->last->cert.subject, "CN=alpha.example", "alpha: subject");
	ok(store_history_get(c, 0, &r) == 0 && r.time == 1795881600.125 + 480,
	    "alpha: history keeps milliseconds");
	ok(store_history_get(c, 1, &r) == 0 &&
	        fabs(r.dur[PHASE_HEADER] - 9.87654321) <= 9.87654321 / 4096,
	    "alpha: long phase within 1/4096");
	ok(c->last->max_gap == 0.0015 && c->last->idle_before_end == 20,
	    "alpha: last result's gaps");
	ok(store_history_get(c, 1, &r) == 0 && r.max_gap < 0 &&
	        r.idle_before_end == 0.0007,
	    "alpha: the idle time before the end in the history (max_gap is "
	    "the latest result's only)");
	ok(store_history_get(
	       &store_find(b, "beta")->check[CHECK_PAGE], 2, &r) == 0 &&
	        r.body_bytes == -1 && r.max_gap < 0 && r.idle_before_end < 0,
	    "beta: no gaps where the body was not reached");
	c = &store_find(b, "beta")->check[CHECK_ERROR_PAGE];
	is_int(c->probes, 9, "beta error page: probes");
	c = &store_find(b, "beta")->check[CHECK_PAGE];
	is_int(c->failures[REASON_TIMEOUT], 3, "beta: timeouts");
	is_int(store_find(b, "gamma")->check[CHECK_PAGE].probes, 0,
	    "gamma never probed, still empty");
	ok(store_find(b, "gamma")->check[CHECK_PAGE].last == NULL,
	    "gamma has no last result");
	store_unlock(b);

	/* What state changes compare with came back too. */
	capture_begin();
	result(&r, CHECK_ERROR_PAGE, 1795882200, 8, "e");
	store_put(b, "beta", &r);
	result_clear(&r);
	out = capture_end();
	is_str(out, "", "nothing logged after a restart when nothing changed");
	capture_begin();
	result(&r, CHECK_PAGE, 1795882260, 3, "d"); /* premature */
	store_put(b, "beta", &r);
	result_clear(&r);
	out = capture_end();
	ok(strstr(out, "capsule beta: close_notify lost (premature)") != NULL,
	    "close_notify lost is seen across the restart");
	capture_begin();
	result(&r, CHECK_PAGE, 1795882320, 8, "d");
	store_put(b, "alpha", &r);
	result_clear(&r);
	out = capture_end();
	ok(strstr(out, "capsule alpha: certificate changed (sha256 cccc") !=
	        NULL,
	    "a certificate change is seen across the restart");

	/* Saving the loaded store gives the same file. */
	{
		unsigned char *f1, *f2;
		size_t n1, n2;
		char p2[300];
		struct store *c2 = mkstore(5, spec_ab);

		snprintf(p2, sizeof p2, "%s/again", dir);
		store_load(c2, path);
		store_save(c2, p2);
		f1 = read_file(path, &n1);
		f2 = read_file(p2, &n2);
		/* saved_at may differ by a second: compare past the header. */
		ok(n1 == n2 && n1 > 40 &&
		        memcmp(f1 + 30, f2 + 30, n1 - 38) == 0,
		    "a loaded store saves the same data");
		free(f1);
		free(f2);
		unlink(p2);
		store_free(c2);
	}
	store_free(a);
	store_free(b);
}

static void
test_new_config(void)
{
	static const char *const spec[] = {"delta gemini://delta.example/",
	    "beta gemini://beta.example/",
	    "alpha gemini://alpha.example/ /nope", NULL};
	struct store *s = mkstore(3, spec);
	const struct store_check *c;
	struct probe_result r;

	is_int(store_load(s, path), 0, "load into another configuration");
	store_rdlock(s);
	is_int(store_count(s), 3, "the configuration's capsules");
	ok(store_find(s, "gamma") == NULL, "a capsule removed is ignored");
	c = &store_find(s, "alpha")->check[CHECK_PAGE];
	is_int(c->probes, 9, "alpha's counters");
	is_int(c->ring_count, 3, "alpha's history cut to the new length");
	ok(store_history_get(c, 0, &r) == 0 && r.time == 1795881600.125 + 480,
	    "the newest kept");
	ok(store_history_get(c, 2, &r) == 0 && r.time == 1795881600.125 + 360,
	    "down to the third newest");
	ok(store_find(s, "beta")->check[CHECK_ERROR_PAGE].last == NULL,
	    "an error page no longer configured is ignored");
	is_int(store_find(s, "beta")->check[CHECK_PAGE].probes, 9,
	    "while the page is restored");
	ok(store_find(s, "alpha")->check[CHECK_ERROR_PAGE].last == NULL,
	    "an error page new in the configuration starts empty");
	is_int(store_find(s, "delta")->check[CHECK_PAGE].probes, 0,
	    "a new capsule starts empty");
	store_unlock(s);
	store_free(s);

	/* A longer history keeps what there was. */
	s = mkstore(50, spec_ab);
	is_int(store_load(s, path), 0, "load with a longer history");
	store_rdlock(s);
	is_int(store_find(s, "alpha")->check[CHECK_PAGE].ring_count, 5,
	    "the 5 results saved");
	store_unlock(s);
	store_free(s);
}

/* Load path (holding data) into a fresh store: the result, what was
 * logged, and whether the store stayed empty. */
static int
load_bad(const void *data, size_t len, const char *want, const char *what)
{
	struct store *s = mkstore(5, spec_ab);
	const char *out;
	char line[512];
	int rv, empty;

	unlink(aside);
	write_file(path, data, len);
	capture_begin();
	rv = store_load(s, path);
	out = capture_end();
	is_int(rv, -1, "%s: refused", what);
	snprintf(line, sizeof line, "warning: snapshot %s: %s", path, want);
	if (!ok(strstr(out, line) != NULL, "%s: logged with the file's name",
	        what))
		printf("#   logged: %s#   wanted: %s\n", out, line);
	ok(strstr(out, "moved aside to") != NULL && file_exists(aside) &&
	        !file_exists(path),
	    "%s: moved aside to .corrupt", what);
	store_rdlock(s);
	empty = store_find(s, "alpha")->check[CHECK_PAGE].probes == 0 &&
	        store_find(s, "alpha")->check[CHECK_PAGE].last == NULL &&
	        store_find(s, "beta")->check[CHECK_ERROR_PAGE].ring_count == 0;
	store_unlock(s);
	ok(empty, "%s: the store starts empty", what);
	store_free(s);
	return rv;
}

static uint64_t
fnv64(const unsigned char *p, size_t len)
{
	uint64_t h = UINT64_C(14695981039346656037);
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= p[i];
		h *= UINT64_C(1099511628211);
	}
	return h;
}

/* Recompute the trailer, so the parser itself sees a change. */
static void
fix_trailer(unsigned char *data, size_t len)
{
	uint64_t h = fnv64(data, len - 8);
	int i;

	for (i = 0; i < 8; i++)
		data[len - 8 + (size_t)i] = (unsigned char)(h >> (8 * i));
}

static void
test_bad_files(void)
{
	struct store *s;
	unsigned char *good, *data;
	size_t len, i, refused, loaded;
	char err[256];
	const char *out;

	good = read_file(path, &len);
	ok(good != NULL && len > 100, "a good snapshot to damage");

	data = xmalloc(len);
	memcpy(data, good, len);
	data[len / 2] ^= 0x40;
	load_bad(data, len, "checksum mismatch", "a damaged byte");
	load_bad(good, len / 2, "checksum mismatch", "a truncated file");
	load_bad(good, 10, "truncated", "a file cut inside the magic");
	load_bad("", 0, "empty file", "an empty file");
	load_bad("this is not a snapshot\n", 23, "not a gemwatch snapshot",
	    "another file");
	memcpy(data, good, len);
	data[18] = 3; /* the version, right after the magic */
	load_bad(data, len,
	    "unsupported version 3 (this gemwatch reads 1 to 2)",
	    "a newer version");
	{
		unsigned char *more = xmalloc(len + 1);

		memcpy(more, good, len - 8);
		more[len - 8] = 7;
		memcpy(more + len - 7, good + len - 8, 8);
		fix_trailer(more, len + 1);
		load_bad(more, len + 1,
		    "1 bytes of garbage after the last "
		    "capsule",
		    "bytes after the last capsule");
		free(more);
	}

	/* No file: a first start. */
	unlink(path);
	unlink(aside);
	s = mkstore(5, spec_ab);
	capture_begin();
	is_int(store_load(s, path), 0, "no snapshot yet: fine");
	out = capture_end();
	ok(strstr(out, "warning") == NULL, "and no warning");
	ok(!file_exists(aside), "nothing moved aside");

	/* Nowhere to write: a warning, no file. */
	capture_begin();
	is_int(store_save(s, "/nonexistent/dir/history.snapshot"), -1,
	    "save into a missing directory fails");
	out = capture_end();
	ok(strstr(out, "warning: /nonexistent/dir/history.snapshot: creating "
	               "a temporary file: No such file or directory") != NULL,
	    "with a warning");

	/* Every truncation, and every byte damaged past the checksum, is
	 * refused or loaded without harm (valgrind watches the rest). */
	refused = 0;
	for (i = 0; i < len; i++)
		if (store_restore(s, good, i, err, sizeof err) == -1)
			refused++;
	is_int(refused, len, "every truncation refused");
	refused = loaded = 0;
	for (i = sizeof "gemwatch snapshot\n" - 1; i < len - 8; i++) {
		memcpy(data, good, len);
		data[i] ^= (unsigned char)(i % 2 ? 0x01 : 0x80);
		fix_trailer(data, len);
		if (store_restore(s, data, len, err, sizeof err) == 0)
			loaded++;
		else
			refused++;
	}
	ok(refused > 0 && loaded > 0,
	    "damaged bytes: %zu refused, %zu "
	    "loaded as other values",
	    refused, loaded);
	{
		char *j = api_capsules(s);

		ok(j != NULL, "the store still answers");
		free(j);
	}
	free(data);
	free(good);
	store_free(s);
}

/* A snapshot of version 1 (before the body's gaps) still loads: the gaps
 * are unknown, null in the API. */
static void
test_version1(void)
{
	static const char *const spec[] = {"alpha gemini://x.example/", NULL};
	const struct store_check *c;
	struct store *s = mkstore(5, spec);
	struct probe_result r;
	unsigned char *data;
	const char *top = getenv("TOP_SRCDIR");
	char v1[1024], *j;
	size_t len, i, bodies, gaps;

	snprintf(v1, sizeof v1, "%s/tests/snapshot-v1", top ? top : ".");
	data = read_file(v1, &len);
	ok(data != NULL && len > 19 && data[18] == 1, "a version 1 snapshot");
	write_file(path, data, len);
	is_int(store_load(s, path), 0, "version 1 loads");
	store_rdlock(s);
	c = &store_find(s, "alpha")->check[CHECK_PAGE];
	ok(c->last != NULL && c->last->max_gap < 0 &&
	        c->last->idle_before_end < 0,
	    "its last result has no gaps");
	bodies = gaps = 0;
	for (i = 0; store_history_get(c, i, &r) == 0; i++) {
		bodies += r.body_bytes >= 0;
		gaps += r.max_gap >= 0 || r.idle_before_end >= 0;
	}
	ok(bodies > 0 && gaps == 0, "nor its history, bodies and all");
	store_unlock(s);
	j = capsule_json(s, "alpha");
	ok(strstr(j, "\"max_gap\":null") != NULL &&
	        strstr(j, "\"idle_before_end\":null") != NULL,
	    "null in the API");
	free(j);
	free(data);
	unlink(path);
	store_free(s);
}

/* A link at the old temporary name, or at the snapshot itself, is not
 * followed: the file it points to stays as it was. */
static void
test_links(void)
{
	struct store *s = mkstore(5, spec_ab);
	char tmp[300], victim[300], buf[64];
	struct stat st;
	ssize_t n;
	int fd;

	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	snprintf(victim, sizeof victim, "%s/victim", dir);
	write_file(victim, "precious\n", 9);
	unlink(path);
	if (symlink(victim, tmp) == -1 || symlink(victim, path) == -1)
		perror("symlink");
	is_int(store_save(s, path), 0, "save with links at PATH.tmp and PATH");
	fd = open(victim, O_RDONLY);
	n = fd != -1 ? read(fd, buf, sizeof buf) : -1;
	if (fd != -1)
		close(fd);
	ok(n == 9 && memcmp(buf, "precious\n", 9) == 0,
	    "the file the links point to is unchanged");
	ok(lstat(path, &st) == 0 && S_ISREG(st.st_mode),
	    "the snapshot replaced the link at PATH with a file");
	ok(lstat(tmp, &st) == 0 && S_ISLNK(st.st_mode),
	    "the link at PATH.tmp was left alone");
	unlink(tmp);
	unlink(victim);
	store_free(s);
}

int
main(void)
{
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(path, sizeof path, "%s/history.snapshot", dir);
	snprintf(aside, sizeof aside, "%s.corrupt", path);
	test_roundtrip();
	test_new_config();
	test_bad_files();
	test_version1();
	test_links();
	unlink(path);
	unlink(aside);
	rmdir(dir);
	return done_testing();
}
