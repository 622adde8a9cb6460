/*
 * One probe, start to end (SPEC.md §4): resolve, connect, TLS, request,
 * header, body, each under one deadline, and the verdict; and the request
 * that probes a configured capsule's check.
 *
 * A probe is a state machine that never blocks: each call runs it as far
 * as it can go and says what it waits for next. The engine (engine.h)
 * drives thousands of them from a few threads; probe_run drives one.
 */
#ifndef GEMWATCH_PROBE_H
#define GEMWATCH_PROBE_H

#include <sys/socket.h>
#include <regex.h>
#include <stddef.h>
#include <stdint.h>

#include "gemini.h"
#include "result.h"
#include "url.h"

struct capsule_conf;
struct conf;
struct tofu_store;

struct probe_req {
	const struct url *url; /* borrowed */
	enum check check;
	const char *sni; /* NULL: the URL's host, none for IP literals */
	int family;      /* AF_UNSPEC, AF_INET, AF_INET6 */
	double timeout;  /* seconds for the whole probe */
	size_t max_body; /* bytes */
	int cancel_fd; /* probe_run only: -1, or readable when the probe must be
	                  abandoned */
	/*
	 * NULL, or whether an address the lookup gave may be connected to
	 * (called for each, in order, before any is tried): the others are
	 * skipped, and with none left the probe fails at connect.
	 */
	int (*address_ok)(void *arg, const struct sockaddr *);
	void *address_arg;
	/*
	 * Crafted requests (gemwatch diagnose): NULL sends the URL and CRLF;
	 * else these request_len bytes go as they are, unchecked.
	 */
	const char *request;
	size_t request_len;
	int plain; /* 1: no TLS, the request goes over bare TCP */

	/* Expectations (SPEC §4). */
	struct status_spec expect_status;
	int require_close_notify;
	const regex_t *expect_body;       /* NULL: none */
	int64_t expect_body_bytes;        /* the least body size; -1: none */
	double max_idle;                  /* seconds quiet before the end; 0 */
	const unsigned char *fingerprint; /* 32 bytes, or NULL: TOFU */
	struct tofu_store *tofu;          /* NULL: no TOFU */
	/*
	 * Each piece of the body as it is read, within max-body, on the
	 * probe's thread, res holding the header (NULL: not wanted). What
	 * a crawl reads links from, without keeping the body.
	 */
	void (*body_fn)(void *arg, const struct probe_result *res,
	    const char *data, size_t n);
	void *body_arg;
};

/*
 * Set the defaults (defaults.h), status 2x, close_notify required, no
 * expect-body, expect-body-bytes or max-idle.
 */
void probe_req_init(struct probe_req *, const struct url *);
/*
 * Fill req for a capsule's check with its options (cancel_fd and tofu
 * are left for the caller). req points into c, which must outlive it.
 */
void probe_req_for(const struct conf *, const struct capsule_conf *c,
    enum check, struct probe_req *req);
/* Global GnuTLS and c-ares set-up; call once before any probe. 0 or -1. */
int probe_global_init(void);
void probe_global_free(void);
/*
 * Run the probe on the calling thread and fill res (initialised by the
 * caller; owned by the caller). Returns res->success.
 */
int probe_run(const struct probe_req *, struct probe_result *res);

/* ---- the state machine, for the engine --------------------------------- */

/* What a probe waits for after a call. */
enum probe_wait {
	PROBE_WAIT_IO,      /* its descriptor to become readable or writable */
	PROBE_WAIT_RESOLVE, /* a lookup of the URL's host: then probe_resolved
	                     */
	PROBE_WAIT_NOW,     /* nothing: call probe_io again soon (it yielded) */
	PROBE_WAIT_DONE     /* the result is complete */
};

struct probe;

/* A probe of req into res (both borrowed until probe_free). */
struct probe *probe_new(const struct probe_req *, struct probe_result *res);
/* Start: the deadline runs from now. */
enum probe_wait probe_begin(struct probe *);
/* Its descriptor became ready (any direction, or an error), or it yielded. */
enum probe_wait probe_io(struct probe *);
/*
 * The lookup ended: n addresses, or none with a static error message;
 * local_errno is EMFILE or ENFILE when the lookup failed for want of a
 * descriptor of our own (then it is gemwatch's fault, and said so).
 */
enum probe_wait probe_resolved(struct probe *,
    const struct sockaddr_storage *addrs, size_t n, const char *error,
    int local_errno);
/* probe_timer() passed; cancelled: abandon at once instead ("probe abandoned").
 */
enum probe_wait probe_expire(struct probe *, int cancelled);
/* When probe_expire is due (monotonic seconds). */
double probe_timer(const struct probe *);
/*
 * A descriptor the probe opened since the last call, to be watched (for
 * input and output, edge-triggered); -1 when none. Descriptors are closed
 * by the probe, which removes them from any epoll set.
 */
int probe_new_fd(struct probe *);
/* The URL's host, port and family for PROBE_WAIT_RESOLVE. */
const struct url *probe_url(const struct probe *);
int probe_family(const struct probe *);
/* Free; closes what is open without a word to the peer. */
/*
 * The epoll instance that watches the probe's descriptors: each is taken
 * off it before it is closed.
 */
void probe_watch(struct probe *, int epfd);
void probe_free(struct probe *);

/* Rate-limited log line: gemwatch itself ran out of descriptors. */
void probe_note_fd_shortage(int err);

#endif
