/*
 * Shared pieces of the C unit tests: capturing what the code logs to
 * stderr, a probe result in which everything is known, and a store synced
 * with a configuration as main does it.
 */
#ifndef GEMWATCH_FIXTURE_H
#define GEMWATCH_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "result.h"
#include "store.h"
#include "xmalloc.h"

static char fixture_logged[8192];
static int fixture_capfd = -1, fixture_savedfd = -1;

/* Send stderr to a temporary file until capture_end. */
static inline void
capture_begin(void)
{
	char path[] = "/tmp/gemwatch-test.XXXXXX";

	fflush(stderr);
	if ((fixture_capfd = mkstemp(path)) == -1) {
		perror("mkstemp");
		exit(99);
	}
	unlink(path);
	fixture_savedfd = dup(STDERR_FILENO);
	dup2(fixture_capfd, STDERR_FILENO);
}

/* Restore stderr; what was logged meanwhile (static, up to 8 kB). */
static inline const char *
capture_end(void)
{
	ssize_t n;

	fflush(stderr);
	dup2(fixture_savedfd, STDERR_FILENO);
	close(fixture_savedfd);
	lseek(fixture_capfd, 0, SEEK_SET);
	n = read(fixture_capfd, fixture_logged, sizeof fixture_logged - 1);
	fixture_logged[n > 0 ? n : 0] = '\0';
	close(fixture_capfd);
	return fixture_logged;
}

/*
 * A successful probe of gemini://HOST/ at `time` in which everything is
 * known: TLS 1.3, a self-signed certificate for CN=HOST whose trust on
 * first use matches, status 20, 1234 bytes ended by close_notify, with
 * a gap of 2.5 ms between them and 0.5 ms before the end.
 */
static inline void
good_result_for(struct probe_result *r, const char *host, double time)
{
	char url[256];

	result_init(r);
	r->check = CHECK_PAGE;
	snprintf(url, sizeof url, "gemini://%s/", host);
	r->url = xstrdup(url);
	r->time = time;
	r->success = 1;
	strcpy(r->address, "192.0.2.7");
	r->port = 1965;
	r->ip_protocol = 4;
	r->dur[PHASE_RESOLVE] = 0.001;
	r->dur[PHASE_CONNECT] = 0.02;
	r->dur[PHASE_TLS] = 0.051;
	r->dur[PHASE_HEADER] = 0.03;
	r->dur[PHASE_BODY] = 0.004;
	r->total = 0.106;
	r->max_gap = 0.0025;
	r->idle_before_end = 0.0005;
	r->tls_version = "TLS1.3";
	r->tls_cipher = "TLS_AES_256_GCM_SHA384";
	r->cert.present = 1;
	memset(r->cert.sha256, 'a', SHA256_HEX_LEN);
	memset(r->cert.pubkey_sha256, 'b', SHA256_HEX_LEN);
	snprintf(url, sizeof url, "CN=%s", host);
	r->cert.subject = xstrdup(url);
	r->cert.issuer = xstrdup(url);
	r->cert.not_before = 1700000000;	/* 2023-11-14T22:13:20Z */
	r->cert.not_after = 1800000000;		/* 2027-01-15T08:00:00Z */
	r->cert.self_signed = 1;
	r->cert.hostname_match = 1;
	r->cert.tofu = TOFU_MATCH;
	r->status = 20;
	r->meta = xstrdup("text/gemini");
	r->body_bytes = 1234;
	r->end = END_CLOSE_NOTIFY;
}

/* store_sync with the capsules of conf's shard, as main does. */
static inline void
fixture_sync(struct store *s, const struct conf *conf)
{
	const struct capsule_conf	**mine;
	size_t				  n;

	mine = conf_shard(conf, &n);
	store_sync(s, conf->history, mine, n);
	free(mine);
}

#endif
