/*
 * How much memory the results store takes, and how fast it takes results
 * and writes and reads its snapshot: `tests/bench_store [N...]` fills N
 * capsules (default 100, 1000 and 10000) with `history` results each
 * (-h, default 120) that look like a real capsule's (its own URL,
 * address and certificate, META "text/gemini; lang=en", a failure with a
 * message now and then) and prints the bytes allocated (glibc's
 * mallinfo2 before and after, heap and mmapped chunks), per capsule and
 * per history entry. With
 * -s DIR it also saves the store to DIR/history.snapshot and loads it
 * into a fresh store, timing both; -k keeps the file, for a daemon to
 * start from (its capsules are named capsule-00000 and up). Not part of
 * `make check`: a measurement, not a test.
 */
#include "config.h"

#include <sys/stat.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "result.h"
#include "store.h"
#include "xmalloc.h"

#define START 1795881600.0 /* 2026-11-28T16:00:00Z */

static double
now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Bytes in use: in the heap and in chunks glibc mmaps (large arrays). */
static size_t
allocated(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

static long
rss_kib(void)
{
	FILE *f;
	long pages = 0, rss = 0;

	if ((f = fopen("/proc/self/statm", "r")) == NULL)
		return -1;
	if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
		rss = -1;
	fclose(f);
	return rss < 0 ? -1 : rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static struct conf *
mkconf(size_t n, unsigned history)
{
	struct conf *conf;
	size_t i;

	conf = xcalloc(1, sizeof *conf);
	conf->history = history;
	conf->shard_k = conf->shard_n = 1;
	conf->capsules = xcalloc(n, sizeof *conf->capsules);
	conf->ncapsules = n;
	for (i = 0; i < n; i++) {
		xasprintf(&conf->capsules[i].name, "capsule-%05zu", i);
		xasprintf(&conf->capsules[i].url.text,
		    "gemini://capsule-%05zu.example.org/", i);
	}
	return conf;
}

static void
freeconf(struct conf *conf)
{
	size_t i;

	for (i = 0; i < conf->ncapsules; i++) {
		free(conf->capsules[i].name);
		free(conf->capsules[i].url.text);
	}
	free(conf->capsules);
	free(conf);
}

/* Probe `round` of capsule i: one in 40 fails without close_notify. */
static void
mkresult(struct probe_result *r, size_t i, unsigned round)
{
	unsigned seed = (unsigned)(i * 7919 + round * 104729);
	int p;

	result_init(r);
	r->check = CHECK_PAGE;
	xasprintf(&r->url, "gemini://capsule-%05zu.example.org/", i);
	r->time = START + 60.0 * round + (double)(i % 60000) / 1000;
	snprintf(r->address, sizeof r->address, "192.0.%zu.%zu",
	    (i / 250) % 250, i % 250 + 1);
	r->port = 1965;
	r->ip_protocol = 4;
	for (p = 0; p < PHASE__COUNT; p++)
		r->dur[p] = (double)(1000 + rand_r(&seed) % 50000) / 1e6;
	r->total = (double)(10000 + rand_r(&seed) % 200000) / 1e6;
	r->tls_version = "TLS1.3";
	r->tls_cipher = "TLS_AES_256_GCM_SHA384";
	r->cert.present = 1;
	snprintf(r->cert.sha256, sizeof r->cert.sha256, "%064zx", i * 977);
	snprintf(r->cert.pubkey_sha256, sizeof r->cert.pubkey_sha256, "%064zx",
	    i * 983);
	xasprintf(
	    &r->cert.subject, "CN=capsule-%05zu.example.org,O=Example", i);
	r->cert.issuer = xstrdup(r->cert.subject);
	r->cert.not_before = 1700000000;
	r->cert.not_after = 1900000000;
	r->cert.self_signed = 1;
	r->cert.hostname_match = 1;
	r->cert.tofu = TOFU_MATCH;
	r->status = 20;
	r->meta = xstrdup("text/gemini; lang=en");
	r->body_bytes = 1000 + rand_r(&seed) % 3000;
	r->max_gap = (double)(rand_r(&seed) % 5000) / 1e6;
	r->idle_before_end = (double)(rand_r(&seed) % 1000) / 1e6;
	r->end = END_CLOSE_NOTIFY;
	r->success = 1;
	if ((round + i) % 40 == 0) {
		r->end = END_PREMATURE;
		result_fail(r, REASON_CLOSE_NOTIFY, STAGE_BODY,
		    "connection closed without close_notify");
	}
}

static void
fill(struct store *s, const struct conf *conf, unsigned rounds)
{
	struct probe_result r;
	size_t i;
	unsigned k;

	for (k = 0; k < rounds; k++)
		for (i = 0; i < conf->ncapsules; i++) {
			mkresult(&r, i, k);
			store_put(s, conf->capsules[i].name, &r);
			result_clear(&r);
		}
}

static int keep;

static void
bench(size_t n, unsigned history, const char *dir)
{
	struct conf *conf = mkconf(n, history);
	const struct capsule_conf **mine;
	size_t nmine;
	struct store *s, *t;
	struct stat st;
	size_t before, after, entries;
	double t0, tput, tsave, tload;
	char *path;

	mine = conf_shard(conf, &nmine);
	before = allocated();
	s = store_new();
	store_sync(s, conf->history, mine, nmine);
	t0 = now_mono();
	fill(s, conf, history);
	tput = now_mono() - t0;
	after = allocated();
	entries = n * history;
	printf("%6zu capsules x %u: %10zu bytes (%.1f MiB), %.0f per capsule, "
	       "%.1f per entry all included; %.2f us per put; RSS %ld KiB\n",
	    n, history, after - before, (double)(after - before) / 1048576,
	    (double)(after - before) / (double)n,
	    (double)(after - before) / (double)(entries ? entries : 1),
	    tput * 1e6 / (double)(entries ? entries : 1), rss_kib());
	if (dir != NULL) {
		xasprintf(&path, "%s/history.snapshot", dir);
		t0 = now_mono();
		if (store_save(s, path) != 0)
			fatalx("store_save failed");
		tsave = now_mono() - t0;
		if (stat(path, &st) != 0)
			fatal("%s", path);
		t = store_new();
		store_sync(t, conf->history, mine, nmine);
		t0 = now_mono();
		if (store_load(t, path) != 0)
			fatalx("store_load failed");
		tload = now_mono() - t0;
		printf(
		    "        snapshot: %lld bytes (%.1f MiB, %.1f per entry), "
		    "saved in %.3f s, loaded in %.3f s\n",
		    (long long)st.st_size, (double)st.st_size / 1048576,
		    (double)st.st_size / (double)(entries ? entries : 1), tsave,
		    tload);
		store_free(t);
		if (!keep)
			unlink(path);
		free(path);
	}
	store_free(s);
	free(mine);
	freeconf(conf);
}

int
main(int argc, char *argv[])
{
	static const size_t dflt[] = {100, 1000, 10000};
	const char *dir = NULL;
	unsigned history = 120;
	size_t i;
	int ch;

	log_init(LOG_LEVEL_ERR); /* no "capsule up" lines */
	while ((ch = getopt(argc, argv, "h:ks:")) != -1) {
		switch (ch) {
		case 'h':
			history = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'k':
			keep = 1;
			break;
		case 's':
			dir = optarg;
			break;
		default:
			fprintf(stderr, "usage: bench_store [-k] [-h history] "
			                "[-s dir] [N...]\n");
			return 2;
		}
	}
	if (optind == argc)
		for (i = 0; i < sizeof dflt / sizeof dflt[0]; i++)
			bench(dflt[i], history, dir);
	for (i = (size_t)optind; i < (size_t)argc; i++)
		bench(strtoul(argv[i], NULL, 10), history, dir);
	return 0;
}
