/*
 * One probe, start to end (SPEC.md §4): resolve, connect, TLS, request,
 * header, body, each under one deadline, and the verdict; and the request
 * that probes a configured capsule's check.
 */
#ifndef GEMWATCH_PROBE_H
#define GEMWATCH_PROBE_H

#include <regex.h>
#include <stddef.h>

#include "gemini.h"
#include "result.h"
#include "url.h"

struct capsule_conf;
struct conf;
struct tofu_store;

struct probe_req {
	const struct url	*url;		/* borrowed */
	enum check		 check;
	const char		*sni;		/* NULL: the URL's host, none for IP literals */
	int			 family;	/* AF_UNSPEC, AF_INET, AF_INET6 */
	double			 timeout;	/* seconds for the whole probe */
	size_t			 max_body;	/* bytes */
	int			 cancel_fd;	/* -1, or readable when the probe must be abandoned */

	/* Expectations (SPEC §4). */
	struct status_spec	 expect_status;
	int			 require_close_notify;
	const regex_t		*expect_body;	/* NULL: none */
	const unsigned char	*fingerprint;	/* 32 bytes, or NULL: TOFU */
	struct tofu_store	*tofu;		/* NULL: no TOFU */
};

/* Set the defaults (defaults.h), status 2x, close_notify required. */
void probe_req_init(struct probe_req *, const struct url *);
/*
 * Fill req for a capsule's check with its options (cancel_fd and tofu
 * are left for the caller). req points into c, which must outlive it.
 */
void probe_req_for(const struct conf *, const struct capsule_conf *c,
    enum check, struct probe_req *req);
/* Global GnuTLS set-up; call once before any probe. 0 or -1. */
int probe_global_init(void);
void probe_global_free(void);
/*
 * Run the probe and fill res (initialised by the caller; owned by the
 * caller). Returns res->success.
 */
int probe_run(const struct probe_req *, struct probe_result *res);

#endif
