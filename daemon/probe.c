/*
 * One probe, start to end (SPEC.md §4): resolve, connect, TLS handshake,
 * request, header, body, as a state machine that never blocks. Each call
 * (probe_begin, probe_io, probe_resolved, probe_expire) runs the probe as
 * far as it can and returns what it waits for; the engine or probe_run
 * does the waiting, on epoll, with the probe's one deadline as its timer.
 * The socket is watched edge-triggered for both directions, so a probe
 * only waits after its transport said EAGAIN: GnuTLS reports AGAIN for
 * other things too (a TLS 1.3 NewSessionTicket), and then the probe tries
 * again at once rather than wait for an edge that may never come. How the
 * body ended is classified exactly as SPEC.md §1; the verdict takes the
 * first expectation missed, in the order of §4.
 */
#include "config.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bodymatch.h"
#include "cert.h"
#include "clock.h"
#include "conf.h"
#include "defaults.h"
#include "dns.h"
#include "engine.h"
#include "hex.h"
#include "log.h"
#include "probe.h"
#include "xmalloc.h"

/* How long our own close_notify may take once the response has ended. */
#define BYE_BUDGET 0.1
#define READ_CHUNK 16384
/* Records read in one go before a probe lets others run. */
#define READS_PER_TURN 64
/* Calls in a row that GnuTLS answers AGAIN while the socket is not empty. */
#define AGAIN_MAX 64
/* Seconds between two log lines about running out of descriptors. */
#define FD_SHORTAGE_LOG 10

static gnutls_certificate_credentials_t creds;
/*
 * The system defaults with TLS 1.2 as the minimum, parsed once: parsing a
 * priority string for every session cost about 3% of a probe's CPU.
 */
static gnutls_priority_t prio;

enum state {
	S_NEW,
	S_RESOLVE,
	S_CONNECT,
	S_TLS,
	S_REQUEST,
	S_HEADER,
	S_BODY,
	S_MATCH,
	S_BYE,
	S_DONE
};

struct probe {
	const struct probe_req *req;
	struct probe_result *res;
	enum state state;
	double start;    /* monotonic */
	double deadline; /* monotonic */
	double timer;    /* deadline, then the bye's */
	double t_resolved, t_connected, t_tls, t_header;
	double t_last; /* the latest body bytes read, or the header's end */
	int fd;
	int fd_new; /* not yet handed to the engine */
	gnutls_session_t session;
	int io_errno;    /* errno of the last failed recv/send */
	int would_block; /* the transport said EAGAIN */
	int cancelled;
	int handshaken;
	const char *sni;

	struct sockaddr_storage *addrs; /* to try in order */
	size_t naddrs, next_addr;
	int connect_err; /* of the last address tried */

	char *line; /* the request line being sent */
	size_t line_len, line_off;
	char *buf;   /* header, then body chunks */
	size_t have; /* bytes of header in buf */
	int64_t body;

	char errmsg[256]; /* detail of END_ERROR */
	char *body_kept;  /* only for expect-body */
	size_t body_len;
	/*
	 * While expect-body is matched apart, the engine watches the
	 * matcher's descriptor as the probe's fd; the socket waits in sock.
	 */
	struct bodymatch *match;
	int epfd; /* the engine's epoll watching fd, or -1 */
	int sock;
};

/* What a step of a state came to. */
enum step { STEP_NEXT, STEP_IO, STEP_NOW, STEP_RESOLVE, STEP_DONE };

/*
 * A capsule presents the same certificate probe after probe, and parsing
 * it again (DER, names, the self-signature check) cost about 9% of a
 * probe's CPU. The facts of recent certificates are cached, keyed by the
 * SHA-256 of the DER and the name checked against it: slots are picked by
 * the hash, a collision replaces. Certificates with long names are not
 * kept, so the cache stays small whatever servers send.
 */
#define FACTS_SLOTS 64
#define FACTS_NAMES_MAX 1024

struct facts_slot {
	int used;
	unsigned char md[32]; /* of the DER */
	char *hostname;       /* NULL: none */
	struct cert_facts f;
};

static pthread_mutex_t facts_lock = PTHREAD_MUTEX_INITIALIZER;
static struct facts_slot facts[FACTS_SLOTS];

int
probe_global_init(void)
{
	int rv;

	if (dns_global_init() == -1)
		return -1;
	if ((rv = gnutls_global_init()) < 0) {
		log_warnx("gnutls_global_init: %s", gnutls_strerror(rv));
		dns_global_free();
		return -1;
	}
	if ((rv = gnutls_certificate_allocate_credentials(&creds)) < 0) {
		log_warnx("gnutls credentials: %s", gnutls_strerror(rv));
		gnutls_global_deinit();
		dns_global_free();
		return -1;
	}
	if ((rv = gnutls_priority_init2(&prio,
	         "-VERS-TLS1.1:-VERS-TLS1.0:-VERS-SSL3.0", NULL,
	         GNUTLS_PRIORITY_INIT_DEF_APPEND)) < 0) {
		log_warnx("gnutls priorities: %s", gnutls_strerror(rv));
		gnutls_certificate_free_credentials(creds);
		creds = NULL;
		gnutls_global_deinit();
		dns_global_free();
		return -1;
	}
	return 0;
}

static void
facts_slot_clear(struct facts_slot *s)
{
	free(s->hostname);
	free(s->f.subject);
	free(s->f.issuer);
	memset(s, 0, sizeof *s);
}

static int
same_name(const char *a, const char *b)
{
	return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

/* Copy what cert_facts_from_der sets (not the TOFU verdict). */
static void
facts_copy(struct cert_facts *dst, const struct cert_facts *src)
{
	free(dst->subject);
	free(dst->issuer);
	dst->present = src->present;
	memcpy(dst->sha256, src->sha256, sizeof dst->sha256);
	memcpy(
	    dst->pubkey_sha256, src->pubkey_sha256, sizeof dst->pubkey_sha256);
	dst->subject = xstrdup(src->subject);
	dst->issuer = xstrdup(src->issuer);
	dst->not_before = src->not_before;
	dst->not_after = src->not_after;
	dst->self_signed = src->self_signed;
	dst->hostname_match = src->hostname_match;
}

/* cert_facts_from_der through the cache. */
static int
cert_facts_cached(const unsigned char *der, size_t len, const char *hostname,
    struct cert_facts *f)
{
	struct facts_slot *s;
	unsigned char md[32];
	const char *c;
	unsigned h;
	int rv;

	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, der, len, md) < 0)
		return cert_facts_from_der(der, len, hostname, f);
	/* One certificate often serves several names. */
	for (h = md[0], c = hostname; c != NULL && *c != '\0'; c++)
		h = h * 31 + (unsigned char)*c;
	s = &facts[h % FACTS_SLOTS];
	pthread_mutex_lock(&facts_lock);
	if (s->used && memcmp(s->md, md, sizeof md) == 0 &&
	    same_name(s->hostname, hostname)) {
		facts_copy(f, &s->f);
		pthread_mutex_unlock(&facts_lock);
		return 0;
	}
	pthread_mutex_unlock(&facts_lock);

	if ((rv = cert_facts_from_der(der, len, hostname, f)) == -1 ||
	    strlen(f->subject) + strlen(f->issuer) > FACTS_NAMES_MAX ||
	    (hostname != NULL && strlen(hostname) > FACTS_NAMES_MAX))
		return rv;
	pthread_mutex_lock(&facts_lock);
	facts_slot_clear(s);
	s->used = 1;
	memcpy(s->md, md, sizeof md);
	s->hostname = hostname != NULL ? xstrdup(hostname) : NULL;
	facts_copy(&s->f, f);
	pthread_mutex_unlock(&facts_lock);
	return 0;
}

void
probe_global_free(void)
{
	size_t i;

	pthread_mutex_lock(&facts_lock);
	for (i = 0; i < FACTS_SLOTS; i++)
		facts_slot_clear(&facts[i]);
	pthread_mutex_unlock(&facts_lock);
	gnutls_priority_deinit(prio);
	prio = NULL;
	gnutls_certificate_free_credentials(creds);
	creds = NULL;
	gnutls_global_deinit();
	engine_run_free();
	dns_global_free();
}

void
probe_req_init(struct probe_req *r, const struct url *u)
{
	memset(r, 0, sizeof *r);
	r->url = u;
	r->check = CHECK_PAGE;
	r->family = AF_UNSPEC;
	r->timeout = DEFAULT_TIMEOUT;
	r->max_body = DEFAULT_MAX_BODY;
	r->cancel_fd = -1;
	status_spec_default(&r->expect_status);
	r->require_close_notify = 1;
	r->expect_body_bytes = -1;
}

void
probe_req_for(const struct conf *conf, const struct capsule_conf *c,
    enum check check, struct probe_req *req)
{
	probe_req_init(req, check == CHECK_PAGE ? &c->url : &c->error_url);
	req->check = check;
	req->sni = c->sni;
	req->family = c->family;
	req->timeout = c->timeout;
	req->max_body = conf->max_body;
	req->fingerprint = c->has_fingerprint ? c->fingerprint : NULL;
	req->max_idle = c->max_idle;
	if (check == CHECK_PAGE) {
		req->expect_status = c->expect_status;
		req->require_close_notify = c->require_close_notify;
		req->expect_body =
		    c->expect_body_src != NULL ? &c->expect_body : NULL;
		req->expect_body_bytes = c->expect_body_bytes;
	} else {
		/* The error page must fail properly, and say so. */
		status_spec_parse("4x,5x", 5, &req->expect_status, NULL);
		req->require_close_notify = 1;
	}
}

/* ---- GnuTLS transport -------------------------------------------------- */

/* What a recv or send returned: remember errno (ECONNRESET) and EAGAIN. */
static ssize_t
transport_note(struct probe *p, ssize_t n)
{
	if (n == -1) {
		p->io_errno = errno;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			p->would_block = 1;
		gnutls_transport_set_errno(p->session, errno);
	}
	return n;
}

static ssize_t
probe_pull(gnutls_transport_ptr_t ptr, void *data, size_t len)
{
	struct probe *p = ptr;

	return transport_note(p, recv(p->fd, data, len, 0));
}

static ssize_t
probe_push(gnutls_transport_ptr_t ptr, const void *data, size_t len)
{
	struct probe *p = ptr;

	return transport_note(p, send(p->fd, data, len, MSG_NOSIGNAL));
}

/* Whether data waits; the engine, not GnuTLS, does the waiting. */
static int
probe_pull_timeout(gnutls_transport_ptr_t ptr, unsigned int ms)
{
	struct probe *p = ptr;
	struct pollfd pfd;

	pfd.fd = p->fd;
	pfd.events = POLLIN;
	pfd.revents = 0;
	return poll(&pfd, 1, 0) > 0 ? 1 : 0;
}

/* ---- failures ---------------------------------------------------------- */

void
probe_note_fd_shortage(int err)
{
	static atomic_llong last = -FD_SHORTAGE_LOG;
	long long now = (long long)clock_mono(), prev;

	prev = atomic_load(&last);
	if (now - prev < FD_SHORTAGE_LOG ||
	    !atomic_compare_exchange_strong(&last, &prev, now))
		return;
	log_warnx("gemwatch has run out of file descriptors (%s): probes "
	          "fail until some are free; raise the limit (LimitNOFILE=, "
	          "ulimit -n) or lower concurrency",
	    strerror(err));
}

/* A failure that is gemwatch's own, not the capsule's. */
static void
fail_local(struct probe *p, enum reason reason, enum stage stage, int err)
{
	probe_note_fd_shortage(err);
	result_fail(p->res, reason, stage,
	    "gemwatch itself is out of file "
	    "descriptors (%s): not the capsule's fault; raise the limit or "
	    "lower concurrency",
	    strerror(err));
}

static void
fail_wait(struct probe *p, enum stage stage, const char *what)
{
	if (p->cancelled)
		result_fail(p->res, REASON_TIMEOUT, stage, "probe abandoned");
	else
		result_fail(p->res, REASON_TIMEOUT, stage,
		    "deadline of %.3gs passed during %s", p->req->timeout,
		    what);
}

/* ---- the end ----------------------------------------------------------- */

/*
 * Take fd off the engine's epoll before it is closed. Closing alone is
 * not enough: epoll keeps a registration while the open file lives, and
 * a child forked meanwhile (the expect-body matcher, a notify command)
 * holds a copy of every descriptor for a moment, so the loop could be
 * told of a socket whose probe is gone.
 */
static void
unwatch(struct probe *p, int fd)
{
	if (p->epfd != -1 && fd != -1)
		(void)epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, NULL);
}

static void
close_fd(struct probe *p)
{
	if (p->fd != -1) {
		unwatch(p, p->fd);
		close(p->fd);
		p->fd = -1;
		p->fd_new = 0;
	}
}

/* Close everything and stamp the result: the probe is over. */
static enum step
step_done(struct probe *p)
{
	if (p->session != NULL) {
		gnutls_deinit(p->session);
		p->session = NULL;
	}
	close_fd(p);
	free(p->addrs);
	p->addrs = NULL;
	free(p->buf);
	p->buf = NULL;
	free(p->line);
	p->line = NULL;
	free(p->body_kept);
	p->body_kept = NULL;
	p->res->time = clock_wall();
	p->state = S_DONE;
	return STEP_DONE;
}

/* Our own close_notify, bounded in time; then close. */
static enum step
step_bye(struct probe *p)
{
	int i, rv;

	for (i = 0; i < AGAIN_MAX; i++) {
		p->would_block = 0;
		rv = gnutls_bye(p->session, GNUTLS_SHUT_WR);
		if (rv != GNUTLS_E_AGAIN && rv != GNUTLS_E_INTERRUPTED)
			break;
		if (p->would_block)
			return STEP_IO;
	}
	return step_done(p);
}

/* The verdict: the first expectation missed, in SPEC §4's order. */
static void
judge(struct probe *p)
{
	struct probe_result *res = p->res;
	const struct probe_req *req = p->req;
	char words[160];
	enum reason r;

	if (res->reason != REASON_NONE)
		return; /* transport or header failure already */
	if (!status_spec_match(&req->expect_status, res->status)) {
		result_fail(res, REASON_STATUS, STAGE_HEADER,
		    "unexpected status %d", res->status);
		return;
	}
	r = end_reason(res->end);
	if (r != REASON_NONE &&
	    (r != REASON_CLOSE_NOTIFY || req->require_close_notify)) {
		switch (res->end) {
		case END_PREMATURE:
			result_fail(res, r, STAGE_BODY,
			    "connection closed without close_notify");
			break;
		case END_RESET:
			result_fail(res, r, STAGE_BODY,
			    "connection reset without close_notify");
			break;
		case END_LIMIT:
			result_fail(res, r, STAGE_BODY,
			    "body passed max-body (%zu bytes)", req->max_body);
			break;
		case END_TIMEOUT:
			fail_wait(p, STAGE_BODY, "the body");
			break;
		default:
			result_fail(res, r, STAGE_BODY, "%s", p->errmsg);
			break;
		}
		return;
	}
	if (res->cert.tofu == TOFU_MISMATCH) {
		result_fail(res, REASON_CERT, STAGE_TLS,
		    "certificate does not match the pinned fingerprint");
		return;
	}
	if (res->status / 10 != 2 && res->body_bytes > 0) {
		result_fail(res, REASON_BODY, STAGE_BODY,
		    "a status %d response carried a %lld-byte body",
		    res->status, (long long)res->body_bytes);
		return;
	}
	/* Complete according to TLS, but maybe cut (README, "What
	 * close_notify does and does not prove"). */
	if (req->max_idle > 0 && res->idle_before_end > req->max_idle) {
		stall_words(res, words, sizeof words);
		result_fail(res, REASON_BODY, STAGE_BODY, "%s (max-idle %gs)",
		    words, req->max_idle);
		return;
	}
	if (req->expect_body_bytes >= 0 &&
	    res->body_bytes < req->expect_body_bytes) {
		result_fail(res, REASON_BODY, STAGE_BODY,
		    "the body is %lld bytes, shorter than expect-body-bytes "
		    ">=%lld",
		    (long long)res->body_bytes,
		    (long long)req->expect_body_bytes);
		return;
	}
	if (req->expect_body != NULL)
		return; /* match_begin decides */
	res->success = 1;
}

/*
 * The probe is judged: the total, then our close_notify when the session
 * is still good for one.
 */
static enum step
conclude(struct probe *p)
{
	struct probe_result *res = p->res;
	size_t i;
	double now = clock_mono();

	res->total = now - p->start;
	/* Microseconds are plenty, and print short. */
	for (i = 0; i < PHASE__COUNT; i++)
		if (res->dur[i] >= 0)
			res->dur[i] = round(res->dur[i] * 1e6) / 1e6;
	res->total = round(res->total * 1e6) / 1e6;
	if (res->max_gap >= 0) {
		res->max_gap = round(res->max_gap * 1e6) / 1e6;
		res->idle_before_end = round(res->idle_before_end * 1e6) / 1e6;
	}
	if (p->session == NULL || !p->handshaken || res->end == END_PREMATURE ||
	    res->end == END_RESET || res->end == END_ERROR || p->cancelled)
		return step_done(p);
	p->state = S_BYE;
	p->timer = now + BYE_BUDGET;
	return step_bye(p);
}

/* The match is over: the socket is the probe's descriptor again. */
static void
match_end(struct probe *p)
{
	unwatch(p, bodymatch_fd(p->match));
	bodymatch_free(p->match); /* closes its descriptor */
	p->match = NULL;
	p->fd = p->sock;
	p->sock = -1;
}

/* What the matcher answered, once it has. */
static enum step
match_io(struct probe *p)
{
	switch (bodymatch_result(p->match)) {
	case BODYMATCH_RUNNING:
		return STEP_IO;
	case BODYMATCH_MATCH:
		p->res->success = 1;
		break;
	case BODYMATCH_NOMATCH:
		result_fail(p->res, REASON_BODY, STAGE_BODY,
		    "body does not match expect-body");
		break;
	default:
		result_fail(p->res, REASON_BODY, STAGE_BODY,
		    "expect-body could not be matched: the matcher did "
		    "not run or died");
		break;
	}
	match_end(p);
	return conclude(p);
}

/*
 * expect-body is matched apart, within the probe's deadline (bodymatch.h:
 * glibc's regexec can take minutes): the engine waits for the matcher's
 * answer as for any descriptor, and the deadline cuts it off.
 */
static enum step
match_begin(struct probe *p)
{
	p->match = bodymatch_start(p->req->expect_body,
	    p->body_kept != NULL ? p->body_kept : "", p->body_len);
	if (p->match == NULL) {
		result_fail(p->res, REASON_BODY, STAGE_BODY,
		    "expect-body could not be matched: the matcher did "
		    "not run or died");
		return conclude(p);
	}
	p->sock = p->fd; /* still watched by the engine */
	p->fd = bodymatch_fd(p->match);
	p->fd_new = 1;
	p->state = S_MATCH;
	return match_io(p);
}

/* The verdict is in (or a failure): the match when one is due, then the end. */
static enum step
finish(struct probe *p)
{
	judge(p);
	if (p->res->reason == REASON_NONE && !p->res->success)
		return match_begin(p);
	return conclude(p);
}

/* ---- connect ----------------------------------------------------------- */

static void
note_address(struct probe_result *res, const struct sockaddr_storage *ss)
{
	const void *addr;

	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;

		addr = &s6->sin6_addr;
		res->port = ntohs(s6->sin6_port);
		res->ip_protocol = 6;
	} else {
		const struct sockaddr_in *s4 = (const void *)ss;

		addr = &s4->sin_addr;
		res->port = ntohs(s4->sin_port);
		res->ip_protocol = 4;
	}
	if (inet_ntop(ss->ss_family, addr, res->address, sizeof res->address) ==
	    NULL)
		res->address[0] = '\0';
}

static enum step tls_begin(struct probe *);
static void cert_trust(struct probe *);

static enum step
connected(struct probe *p)
{
	p->t_connected = clock_mono();
	p->res->dur[PHASE_CONNECT] = p->t_connected - p->t_resolved;
	(void)setsockopt(
	    p->fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
	if (p->req->plain) {
		p->t_tls = p->t_connected;
		p->state = S_REQUEST;
		return STEP_NEXT;
	}
	return tls_begin(p);
}

/* Try the next address; in order, until one connects. */
static enum step
connect_next(struct probe *p)
{
	const struct sockaddr_storage *ss;
	socklen_t len;
	int err = p->connect_err;

	while (p->next_addr < p->naddrs) {
		ss = &p->addrs[p->next_addr++];
		if (ss->ss_family != AF_INET && ss->ss_family != AF_INET6)
			continue;
		note_address(p->res, ss);
		p->fd = socket(ss->ss_family,
		    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
		p->fd_new = p->fd != -1;
		if (p->fd == -1) {
			err = errno;
			if (err == EMFILE || err == ENFILE) {
				p->res->dur[PHASE_CONNECT] =
				    clock_mono() - p->t_resolved;
				fail_local(
				    p, REASON_CONNECT, STAGE_CONNECT, err);
				return finish(p);
			}
			continue;
		}
		len = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
		                                : sizeof(struct sockaddr_in);
		if (connect(p->fd, (const struct sockaddr *)ss, len) == 0)
			return connected(p);
		if (errno == EINPROGRESS) {
			p->state = S_CONNECT;
			return STEP_IO;
		}
		err = errno;
		log_debug("connect %s port %d: %s", p->res->address,
		    p->res->port, strerror(err));
		close_fd(p);
	}
	p->res->dur[PHASE_CONNECT] = clock_mono() - p->t_resolved;
	result_fail(p->res, REASON_CONNECT, STAGE_CONNECT,
	    "connect to %s port %d: %s", p->res->address, p->res->port,
	    err ? strerror(err) : "no usable address");
	return finish(p);
}

/* The connection attempt ended, one way or the other. */
static enum step
connect_io(struct probe *p)
{
	socklen_t len = sizeof(int);
	int err = 0;

	if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err == 0)
		return connected(p);
	p->connect_err = err;
	log_debug("connect %s port %d: %s", p->res->address, p->res->port,
	    strerror(err));
	close_fd(p);
	return connect_next(p);
}

/* ---- resolve ----------------------------------------------------------- */

/* The addresses are known: note when, and connect. */
static enum step
resolved(struct probe *p, const struct sockaddr_storage *addrs, size_t n)
{
	const struct probe_req *req = p->req;
	size_t i;

	p->t_resolved = clock_mono();
	p->res->dur[PHASE_RESOLVE] = p->t_resolved - p->start;
	p->addrs = xreallocarray(NULL, n, sizeof *p->addrs);
	p->naddrs = 0;
	for (i = 0; i < n; i++)
		if (req->address_ok == NULL ||
		    req->address_ok(
		        req->address_arg, (const struct sockaddr *)&addrs[i]))
			p->addrs[p->naddrs++] = addrs[i];
	p->next_addr = 0;
	if (n > 0 && p->naddrs == 0) {
		result_fail(p->res, REASON_CONNECT, STAGE_CONNECT,
		    "no address of %s may be connected to", req->url->host);
		return finish(p);
	}
	return connect_next(p);
}

static enum step
resolve_failed(struct probe *p)
{
	p->t_resolved = clock_mono();
	p->res->dur[PHASE_RESOLVE] = p->t_resolved - p->start;
	return finish(p);
}

/*
 * An IP literal needs no lookup: getaddrinfo with AI_NUMERICHOST, which
 * neither blocks nor starts a thread, also says when the literal is of
 * the wrong family for address-family.
 */
static enum step
resolve_begin(struct probe *p)
{
	const struct url *u = p->req->url;
	struct addrinfo hints, *ai, *a;
	struct sockaddr_storage ss[DNS_ADDRS_MAX];
	char port[8];
	size_t n = 0;
	int rv;

	if (!u->host_is_ip) {
		if (strlen(u->host) >= 256) {
			result_fail(p->res, REASON_RESOLVE, STAGE_RESOLVE,
			    "host name too long");
			return resolve_failed(p);
		}
		p->state = S_RESOLVE;
		return STEP_RESOLVE;
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = p->req->family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	hints.ai_flags = AI_NUMERICSERV | AI_NUMERICHOST;
	snprintf(port, sizeof port, "%d", u->port);
	if ((rv = getaddrinfo(u->host, port, &hints, &ai)) != 0) {
		result_fail(p->res, REASON_RESOLVE, STAGE_RESOLVE, "%s: %s",
		    u->host, gai_strerror(rv));
		return resolve_failed(p);
	}
	for (a = ai; a != NULL && n < DNS_ADDRS_MAX; a = a->ai_next) {
		if (a->ai_addrlen > sizeof ss[0])
			continue;
		memset(&ss[n], 0, sizeof ss[n]);
		memcpy(&ss[n], a->ai_addr, a->ai_addrlen);
		n++;
	}
	freeaddrinfo(ai);
	return resolved(p, ss, n);
}

/* ---- TLS --------------------------------------------------------------- */

static enum step
tls_handshake(struct probe *p)
{
	const struct url *u = p->req->url;
	const gnutls_datum_t *peers;
	unsigned npeers = 0;
	int i, rv;

	for (i = 0;; i++) {
		p->would_block = 0;
		rv = gnutls_handshake(p->session);
		if (rv == GNUTLS_E_SUCCESS)
			break;
		if (rv == GNUTLS_E_AGAIN || rv == GNUTLS_E_INTERRUPTED ||
		    !gnutls_error_is_fatal(rv)) {
			if (p->would_block)
				return STEP_IO;
			if (i >= AGAIN_MAX)
				return STEP_NOW;
			continue;
		}
		p->res->dur[PHASE_TLS] = clock_mono() - p->t_connected;
		if (rv == GNUTLS_E_FATAL_ALERT_RECEIVED)
			result_fail(p->res, REASON_TLS, STAGE_TLS,
			    "TLS handshake: alert received: %s",
			    gnutls_alert_get_name(
			        gnutls_alert_get(p->session)));
		else
			result_fail(p->res, REASON_TLS, STAGE_TLS,
			    "TLS handshake: %s", gnutls_strerror(rv));
		return finish(p);
	}
	p->handshaken = 1;
	p->res->tls_version =
	    gnutls_protocol_get_name(gnutls_protocol_get_version(p->session));
	p->res->tls_cipher = gnutls_ciphersuite_get(p->session);

	peers = gnutls_certificate_get_peers(p->session, &npeers);
	if (peers != NULL && npeers > 0) {
		if (cert_facts_cached(peers[0].data, peers[0].size,
		        p->sni != NULL ? p->sni : u->host, &p->res->cert) == -1)
			log_debug(
			    "%s: cannot parse the server certificate", u->text);
	}
	p->t_tls = clock_mono();
	p->res->dur[PHASE_TLS] = p->t_tls - p->t_connected;
	cert_trust(p);
	p->state = S_REQUEST;
	return STEP_NEXT;
}

static enum step
tls_begin(struct probe *p)
{
	const struct url *u = p->req->url;
	const char *sni;
	int rv;

	p->state = S_TLS;
	if ((rv = gnutls_init(&p->session,
	         GNUTLS_CLIENT | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL)) < 0) {
		p->session = NULL;
		p->res->dur[PHASE_TLS] = clock_mono() - p->t_connected;
		result_fail(p->res, REASON_TLS, STAGE_TLS, "gnutls_init: %s",
		    gnutls_strerror(rv));
		return finish(p);
	}
	/* System defaults, but never below TLS 1.2. */
	if ((rv = gnutls_priority_set(p->session, prio)) < 0 ||
	    (rv = gnutls_credentials_set(
	         p->session, GNUTLS_CRD_CERTIFICATE, creds)) < 0) {
		p->res->dur[PHASE_TLS] = clock_mono() - p->t_connected;
		result_fail(p->res, REASON_TLS, STAGE_TLS, "TLS set-up: %s",
		    gnutls_strerror(rv));
		return finish(p);
	}
	sni = p->req->sni != NULL ? p->req->sni
	                          : (u->host_is_ip ? NULL : u->host);
	p->sni = sni;
	if (sni != NULL && *sni != '\0')
		gnutls_server_name_set(
		    p->session, GNUTLS_NAME_DNS, sni, strlen(sni));
	gnutls_transport_set_ptr(p->session, p);
	gnutls_transport_set_pull_function(p->session, probe_pull);
	gnutls_transport_set_push_function(p->session, probe_push);
	gnutls_transport_set_pull_timeout_function(
	    p->session, probe_pull_timeout);
	return tls_handshake(p);
}

/* Check the certificate against the pin or the TOFU store. */
static void
cert_trust(struct probe *p)
{
	struct cert_facts *c = &p->res->cert;
	const unsigned char *pin = p->req->fingerprint;
	char hex[SHA256_HEX_LEN + 1];

	if (!c->present)
		return;
	if (pin != NULL) {
		hex_encode(pin, 32, hex);
		c->tofu =
		    strcmp(hex, c->sha256) == 0 ? TOFU_PINNED : TOFU_MISMATCH;
	} else if (p->req->tofu != NULL)
		tofu_check(
		    p->req->tofu, p->req->url->host, p->req->url->port, c);
}

/* ---- request, header, body --------------------------------------------- */

/*
 * Bare TCP (probe_req.plain), in GnuTLS's terms: AGAIN when it would
 * block, and PULL_ERROR or PUSH_ERROR with io_errno set.
 */
static ssize_t
plain_send(struct probe *p, const char *data, size_t len)
{
	ssize_t n;

	if ((n = send(p->fd, data, len, MSG_NOSIGNAL)) >= 0)
		return n;
	p->io_errno = errno;
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		p->would_block = 1;
		return GNUTLS_E_AGAIN;
	}
	return errno == EINTR ? GNUTLS_E_INTERRUPTED : GNUTLS_E_PUSH_ERROR;
}

/* Bare TCP has no close_notify: its every end is premature. */
static ssize_t
plain_recv(struct probe *p, char *buf, size_t len)
{
	ssize_t n;

	if ((n = recv(p->fd, buf, len, 0)) > 0)
		return n;
	if (n == 0)
		return GNUTLS_E_PREMATURE_TERMINATION;
	p->io_errno = errno;
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		p->would_block = 1;
		return GNUTLS_E_AGAIN;
	}
	return errno == EINTR ? GNUTLS_E_INTERRUPTED : GNUTLS_E_PULL_ERROR;
}

static enum step
send_request(struct probe *p)
{
	const char *url = p->req->url->text;
	size_t len;
	ssize_t n;
	int i;

	if (p->line == NULL && p->req->request != NULL) {
		p->line = xmalloc(p->req->request_len + 1);
		memcpy(p->line, p->req->request, p->req->request_len);
		p->line_len = p->req->request_len;
		p->line_off = 0;
	}
	if (p->line == NULL) {
		len = strlen(url);
		if (len > URL_MAX) {
			p->res->dur[PHASE_HEADER] = clock_mono() - p->t_tls;
			result_fail(p->res, REASON_HEADER, STAGE_REQUEST,
			    "URL longer than %d bytes", URL_MAX);
			return finish(p);
		}
		p->line = xmalloc(len + 2);
		memcpy(p->line, url, len);
		memcpy(p->line + len, "\r\n", 2);
		p->line_len = len + 2;
		p->line_off = 0;
	}
	for (i = 0; p->line_off < p->line_len;) {
		p->would_block = 0;
		if (p->req->plain)
			n = plain_send(p, p->line + p->line_off,
			    p->line_len - p->line_off);
		else
			n = gnutls_record_send(p->session,
			    p->line + p->line_off, p->line_len - p->line_off);
		if (n >= 0) {
			p->line_off += (size_t)n;
			continue;
		}
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
			if (p->would_block)
				return STEP_IO;
			if (++i >= AGAIN_MAX)
				return STEP_NOW;
			continue;
		}
		p->res->dur[PHASE_HEADER] = clock_mono() - p->t_tls;
		result_fail(p->res, REASON_TLS, STAGE_REQUEST,
		    "sending the request: %s",
		    p->req->plain ? strerror(p->io_errno)
		                  : gnutls_strerror((int)n));
		return finish(p);
	}
	free(p->line);
	p->line = NULL;
	p->buf = xmalloc(GEMINI_HEADER_MAX + READ_CHUNK);
	p->have = 0;
	p->state = S_HEADER;
	return STEP_NEXT;
}

/* What a read came to, besides bytes (> 0). */
#define READ_END 0      /* the response ended: res->end is set */
#define READ_WAIT (-1)  /* the transport would block */
#define READ_YIELD (-2) /* GnuTLS keeps saying AGAIN: try again soon */

static ssize_t
read_chunk(struct probe *p, char *buf, size_t len)
{
	ssize_t n;
	int i;

	for (i = 0;; i++) {
		p->io_errno = 0;
		p->would_block = 0;
		if (p->req->plain)
			n = plain_recv(p, buf, len);
		else
			n = gnutls_record_recv(p->session, buf, len);
		if (n > 0)
			return n;
		if (n == 0) {
			p->res->end = END_CLOSE_NOTIFY;
			return READ_END;
		}
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED ||
		    !gnutls_error_is_fatal((int)n)) {
			if (n != GNUTLS_E_AGAIN && n != GNUTLS_E_INTERRUPTED)
				log_debug("%s: %s (ignored)", p->req->url->text,
				    gnutls_strerror((int)n));
			if (p->would_block)
				return READ_WAIT;
			if (i >= AGAIN_MAX)
				return READ_YIELD;
			continue;
		}
		switch (n) {
		case GNUTLS_E_PREMATURE_TERMINATION:
		case GNUTLS_E_UNEXPECTED_PACKET_LENGTH:
			p->res->end = END_PREMATURE;
			break;
		case GNUTLS_E_PULL_ERROR:
			p->res->end =
			    p->io_errno == ECONNRESET ? END_RESET : END_ERROR;
			break;
		default:
			p->res->end = END_ERROR;
			break;
		}
		if (n == GNUTLS_E_FATAL_ALERT_RECEIVED)
			snprintf(p->errmsg, sizeof p->errmsg,
			    "TLS alert received: %s",
			    gnutls_alert_get_name(
			        gnutls_alert_get(p->session)));
		else if (n == GNUTLS_E_PULL_ERROR)
			snprintf(p->errmsg, sizeof p->errmsg, "receive: %s",
			    strerror(p->io_errno));
		else
			snprintf(p->errmsg, sizeof p->errmsg, "%s",
			    gnutls_strerror((int)n));
		return READ_END;
	}
}

static void
keep_body(struct probe *p, const char *data, size_t n)
{
	if (n > 0 && p->req->body_fn != NULL)
		p->req->body_fn(p->req->body_arg, p->res, data, n);
	if (p->req->expect_body == NULL || n == 0)
		return;
	p->body_kept = xreallocarray(p->body_kept, p->body_len + n + 1, 1);
	memcpy(p->body_kept + p->body_len, data, n);
	p->body_len += n;
	p->body_kept[p->body_len] = '\0';
}

/* The header has ended, one way or another: time it. */
static void
header_ended(struct probe *p)
{
	p->t_header = clock_mono();
	p->res->dur[PHASE_HEADER] = p->t_header - p->t_tls;
}

/* The header: bytes past it in the same read start the body. */
static enum step
read_header(struct probe *p)
{
	struct probe_result *res = p->res;
	struct gemini_header h;
	const char *err = NULL;
	size_t rest;
	ssize_t n;
	int hlen;

	for (;;) {
		n = read_chunk(p, p->buf + p->have,
		    GEMINI_HEADER_MAX + READ_CHUNK - p->have);
		if (n == READ_WAIT)
			return STEP_IO;
		if (n == READ_YIELD)
			return STEP_NOW;
		if (n == READ_END) {
			header_ended(p);
			result_fail(res, REASON_HEADER, STAGE_HEADER,
			    "the connection ended (%s) before a complete "
			    "header; %zu bytes received",
			    end_name(res->end), p->have);
			return finish(p);
		}
		p->have += (size_t)n;
		hlen = gemini_header_parse(p->buf, p->have, &h, &err);
		if (hlen < 0) {
			header_ended(p);
			result_fail(res, REASON_HEADER, STAGE_HEADER,
			    "malformed header: %s", err);
			return finish(p);
		}
		if (hlen == 0 && p->have > GEMINI_HEADER_MAX) {
			header_ended(p);
			result_fail(res, REASON_HEADER, STAGE_HEADER,
			    "malformed header: longer than %d bytes",
			    GEMINI_HEADER_MAX);
			return finish(p);
		}
		if (hlen > 0)
			break;
	}
	header_ended(p);
	res->status = h.status;
	res->meta = xstrndup(h.meta, h.meta_len);
	rest = p->have - (size_t)hlen;
	p->body = (int64_t)rest;
	p->t_last = p->t_header;
	res->max_gap = 0;
	keep_body(p, p->buf + hlen, rest);
	p->state = S_BODY;
	return STEP_NEXT;
}

/* The body has ended: count it, time it, judge. */
static enum step
body_ended(struct probe *p)
{
	double now = clock_mono();

	p->res->body_bytes = p->body;
	p->res->dur[PHASE_BODY] = now - p->t_header;
	p->res->idle_before_end = now - p->t_last;
	return finish(p);
}

/* Body bytes arrived: how long since the last. */
static void
body_arrived(struct probe *p)
{
	double now = clock_mono();

	if (now - p->t_last > p->res->max_gap)
		p->res->max_gap = now - p->t_last;
	p->t_last = now;
}

static enum step
read_body(struct probe *p)
{
	ssize_t n;
	int reads;

	for (reads = 0; p->res->end == END_NONE; reads++) {
		if ((uint64_t)p->body > p->req->max_body) {
			p->res->end = END_LIMIT;
			break;
		}
		if (reads >= READS_PER_TURN)
			return STEP_NOW;
		n = read_chunk(p, p->buf, READ_CHUNK);
		if (n == READ_WAIT)
			return STEP_IO;
		if (n == READ_YIELD)
			return STEP_NOW;
		if (n == READ_END)
			break;
		body_arrived(p);
		p->body += n;
		keep_body(p, p->buf, (size_t)n);
	}
	return body_ended(p);
}

/* ---- driving it -------------------------------------------------------- */

static enum probe_wait
wait_of(enum step s)
{
	switch (s) {
	case STEP_IO:
		return PROBE_WAIT_IO;
	case STEP_NOW:
		return PROBE_WAIT_NOW;
	case STEP_RESOLVE:
		return PROBE_WAIT_RESOLVE;
	default:
		return PROBE_WAIT_DONE;
	}
}

/* Run the current state, and the next, until one has to wait. */
static enum probe_wait
run(struct probe *p, enum step s)
{
	while (s == STEP_NEXT) {
		switch (p->state) {
		case S_REQUEST:
			s = send_request(p);
			break;
		case S_HEADER:
			s = read_header(p);
			break;
		case S_BODY:
			s = read_body(p);
			break;
		default:
			abort(); /* the states above return NEXT only */
		}
	}
	return wait_of(s);
}

struct probe *
probe_new(const struct probe_req *req, struct probe_result *res)
{
	struct probe *p;

	p = xcalloc(1, sizeof *p);
	p->req = req;
	p->res = res;
	p->fd = -1;
	p->sock = -1;
	p->epfd = -1;
	p->state = S_NEW;
	return p;
}

enum probe_wait
probe_begin(struct probe *p)
{
	struct probe_result *res = p->res;

	assert(p->state == S_NEW);
	p->start = clock_mono();
	p->deadline = p->start + p->req->timeout;
	p->timer = p->deadline;
	res->check = p->req->check;
	free(res->url);
	res->url = xstrdup(p->req->url->text);
	res->success = 0;
	return run(p, resolve_begin(p));
}

enum probe_wait
probe_resolved(struct probe *p, const struct sockaddr_storage *addrs, size_t n,
    const char *error, int local_errno)
{
	const struct url *u = p->req->url;

	assert(p->state == S_RESOLVE);
	if (n > 0)
		return run(p, resolved(p, addrs, n));
	if (local_errno != 0)
		fail_local(p, REASON_RESOLVE, STAGE_RESOLVE, local_errno);
	else
		result_fail(p->res, REASON_RESOLVE, STAGE_RESOLVE, "%s: %s",
		    u->host, error != NULL ? error : "lookup failed");
	return run(p, resolve_failed(p));
}

enum probe_wait
probe_io(struct probe *p)
{
	enum step s;

	switch (p->state) {
	case S_CONNECT:
		s = connect_io(p);
		break;
	case S_TLS:
		s = tls_handshake(p);
		break;
	case S_REQUEST:
	case S_HEADER:
	case S_BODY:
		s = STEP_NEXT;
		break;
	case S_MATCH:
		s = match_io(p);
		break;
	case S_BYE:
		s = step_bye(p);
		break;
	case S_DONE:
		return PROBE_WAIT_DONE;
	default:
		/* Not waiting on a descriptor (resolving): nothing to do. */
		return p->state == S_RESOLVE ? PROBE_WAIT_RESOLVE
		                             : PROBE_WAIT_IO;
	}
	return run(p, s);
}

enum probe_wait
probe_expire(struct probe *p, int cancelled)
{
	struct probe_result *res = p->res;
	double now = clock_mono();

	if (cancelled)
		p->cancelled = 1;
	switch (p->state) {
	case S_NEW:
	case S_RESOLVE:
		res->dur[PHASE_RESOLVE] = now - p->start;
		if (p->cancelled)
			result_fail(res, REASON_TIMEOUT, STAGE_RESOLVE,
			    "probe abandoned");
		else
			result_fail(res, REASON_TIMEOUT, STAGE_RESOLVE,
			    "deadline of %.3gs passed resolving %s",
			    p->req->timeout, p->req->url->host);
		break;
	case S_CONNECT:
		close_fd(p);
		res->dur[PHASE_CONNECT] = now - p->t_resolved;
		fail_wait(p, STAGE_CONNECT, "connect");
		break;
	case S_TLS:
		res->dur[PHASE_TLS] = now - p->t_connected;
		fail_wait(p, STAGE_TLS, "the TLS handshake");
		break;
	case S_REQUEST:
		res->dur[PHASE_HEADER] = now - p->t_tls;
		fail_wait(p, STAGE_REQUEST, "sending the request");
		break;
	case S_HEADER:
		header_ended(p);
		res->end = END_TIMEOUT;
		fail_wait(p, STAGE_HEADER, "the header");
		break;
	case S_BODY:
		res->end = END_TIMEOUT;
		return run(p, body_ended(p));
	case S_MATCH:
		if (p->cancelled)
			fail_wait(p, STAGE_BODY, "expect-body");
		else
			result_fail(res, REASON_BODY, STAGE_BODY,
			    "expect-body match cut off at the deadline of "
			    "%.3gs (%zu bytes of body)",
			    p->req->timeout, p->body_len);
		match_end(p);
		return run(p, conclude(p));
	case S_BYE:
		return wait_of(step_done(p));
	case S_DONE:
		return PROBE_WAIT_DONE;
	}
	return run(p, finish(p));
}

double
probe_timer(const struct probe *p)
{
	return p->timer;
}

int
probe_new_fd(struct probe *p)
{
	if (!p->fd_new)
		return -1;
	p->fd_new = 0;
	return p->fd;
}

const struct url *
probe_url(const struct probe *p)
{
	return p->req->url;
}

int
probe_family(const struct probe *p)
{
	return p->req->family;
}

void
probe_watch(struct probe *p, int epfd)
{
	p->epfd = epfd;
}

void
probe_free(struct probe *p)
{
	if (p == NULL)
		return;
	if (p->match != NULL)
		match_end(p);
	if (p->session != NULL)
		gnutls_deinit(p->session);
	close_fd(p);
	free(p->addrs);
	free(p->buf);
	free(p->line);
	free(p->body_kept);
	free(p);
}

int
probe_run(const struct probe_req *req, struct probe_result *res)
{
	return engine_run(req, res);
}
