/*
 * One probe, start to end (SPEC.md §4): resolve, connect, TLS handshake,
 * request, header, body. The socket is non-blocking and every wait is a
 * poll(2) bounded by the one deadline of the whole probe (and by the
 * cancel descriptor, so a shutting-down daemon can abandon it). How the
 * body ended is classified exactly as SPEC.md §1; the verdict takes the
 * first expectation missed, in the order of §4.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/types.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
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
#include "hex.h"
#include "log.h"
#include "probe.h"
#include "xmalloc.h"

/* How long our own close_notify may take once the response has ended. */
#define BYE_BUDGET 0.1
#define READ_CHUNK 16384

static gnutls_certificate_credentials_t creds;
/*
 * The system defaults with TLS 1.2 as the minimum, parsed once: parsing a
 * priority string for every session cost about 3% of a probe's CPU.
 */
static gnutls_priority_t prio;

struct probe {
	const struct probe_req	*req;
	struct probe_result	*res;
	double			 start;		/* monotonic */
	double			 deadline;	/* monotonic */
	int			 fd;
	gnutls_session_t	 session;
	int			 io_errno;	/* errno of the last failed recv/send */
	int			 cancelled;
	int			 handshaken;
	char			 errmsg[256];	/* detail of END_ERROR */
	char			*body;		/* kept only for expect-body */
	size_t			 body_len;
};

/* Why a wait ended. */
enum wait { WAIT_READY, WAIT_TIMEOUT, WAIT_CANCELLED };

/*
 * A capsule presents the same certificate probe after probe, and parsing
 * it again (DER, names, the self-signature check) cost about 9% of a
 * probe's CPU. The facts of recent certificates are cached, keyed by the
 * SHA-256 of the DER and the name checked against it: slots are picked by
 * the hash, a collision replaces. Certificates with long names are not
 * kept, so the cache stays small whatever servers send.
 */
#define FACTS_SLOTS	64
#define FACTS_NAMES_MAX	1024

struct facts_slot {
	int			 used;
	unsigned char		 md[32];	/* of the DER */
	char			*hostname;	/* NULL: none */
	struct cert_facts	 f;
};

static pthread_mutex_t		 facts_lock = PTHREAD_MUTEX_INITIALIZER;
static struct facts_slot	 facts[FACTS_SLOTS];

int
probe_global_init(void)
{
	int rv;

	if ((rv = gnutls_global_init()) < 0) {
		log_warnx("gnutls_global_init: %s", gnutls_strerror(rv));
		return -1;
	}
	if ((rv = gnutls_certificate_allocate_credentials(&creds)) < 0) {
		log_warnx("gnutls credentials: %s", gnutls_strerror(rv));
		gnutls_global_deinit();
		return -1;
	}
	if ((rv = gnutls_priority_init2(&prio,
	    "-VERS-TLS1.1:-VERS-TLS1.0:-VERS-SSL3.0", NULL,
	    GNUTLS_PRIORITY_INIT_DEF_APPEND)) < 0) {
		log_warnx("gnutls priorities: %s", gnutls_strerror(rv));
		gnutls_certificate_free_credentials(creds);
		creds = NULL;
		gnutls_global_deinit();
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
	memcpy(dst->pubkey_sha256, src->pubkey_sha256,
	    sizeof dst->pubkey_sha256);
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
	struct facts_slot	*s;
	unsigned char		 md[32];
	const char		*c;
	unsigned		 h;
	int			 rv;

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
	if (check == CHECK_PAGE) {
		req->expect_status = c->expect_status;
		req->require_close_notify = c->require_close_notify;
		req->expect_body = c->expect_body_src != NULL ?
		    &c->expect_body : NULL;
	} else {
		/* The error page must fail properly, and say so. */
		status_spec_parse("4x,5x", 5, &req->expect_status, NULL);
		req->require_close_notify = 1;
	}
}

/*
 * Wait until fd is ready for events, the deadline passes (deadline_at, a
 * monotonic time) or the probe is cancelled.
 */
static enum wait
wait_fd(struct probe *p, short events, double deadline_at)
{
	struct pollfd	 pfd[2];
	nfds_t		 n = 1;
	double		 left;
	int		 ms, rv;

	pfd[0].fd = p->fd;
	pfd[0].events = events;
	if (p->req->cancel_fd != -1) {
		pfd[1].fd = p->req->cancel_fd;
		pfd[1].events = POLLIN;
		n = 2;
	}
	for (;;) {
		left = deadline_at - clock_mono();
		if (left <= 0)
			return WAIT_TIMEOUT;
		ms = (int)(left * 1000) + 1;
		rv = poll(pfd, n, ms);
		if (rv == -1) {
			if (errno == EINTR)
				continue;
			return WAIT_TIMEOUT;	/* cannot happen with valid fds */
		}
		if (n == 2 && pfd[1].revents != 0) {
			p->cancelled = 1;
			return WAIT_CANCELLED;
		}
		if (rv > 0 && pfd[0].revents != 0)
			return WAIT_READY;
	}
}

/* GnuTLS transport: plain recv/send that remember errno (for ECONNRESET). */
static ssize_t
probe_pull(gnutls_transport_ptr_t ptr, void *data, size_t len)
{
	struct probe	*p = ptr;
	ssize_t		 n;

	n = recv(p->fd, data, len, 0);
	if (n == -1) {
		p->io_errno = errno;
		gnutls_transport_set_errno(p->session, errno);
	}
	return n;
}

static ssize_t
probe_push(gnutls_transport_ptr_t ptr, const void *data, size_t len)
{
	struct probe	*p = ptr;
	ssize_t		 n;

	n = send(p->fd, data, len, MSG_NOSIGNAL);
	if (n == -1) {
		p->io_errno = errno;
		gnutls_transport_set_errno(p->session, errno);
	}
	return n;
}

static int
probe_pull_timeout(gnutls_transport_ptr_t ptr, unsigned int ms)
{
	struct probe	*p = ptr;
	double		 until;

	until = clock_mono() + (ms == GNUTLS_INDEFINITE_TIMEOUT ? 1e9 : ms / 1e3);
	if (until > p->deadline)
		until = p->deadline;
	return wait_fd(p, POLLIN, until) == WAIT_READY ? 1 : 0;
}

/* Wait for the direction GnuTLS asked for after GNUTLS_E_AGAIN. */
static enum wait
wait_tls(struct probe *p)
{
	short events;

	events = gnutls_record_get_direction(p->session) ? POLLOUT : POLLIN;
	return wait_fd(p, events, p->deadline);
}

static void
fail_wait(struct probe *p, enum wait w, enum stage stage, const char *what)
{
	if (w == WAIT_CANCELLED)
		result_fail(p->res, REASON_TIMEOUT, stage, "probe abandoned");
	else
		result_fail(p->res, REASON_TIMEOUT, stage,
		    "deadline of %.3gs passed during %s", p->req->timeout, what);
}

/* ---- resolve ----------------------------------------------------------- */

/*
 * A name lookup runs asynchronously (getaddrinfo_a) so the deadline holds
 * even when the resolver does not answer. The job is shared with glibc's
 * notification thread, which writes to the job's pipe when the lookup is
 * done; whoever lets go last frees it. The probe waits on that pipe, not
 * with gai_suspend: glibc's gai_suspend leaves its on-stack wait entry
 * linked when the lookup finishes just as the wait times out, and the
 * notification then writes through the stale entry (heap corruption and
 * crashes in __gai_notify, seen in the hostile soak).
 */
struct gai_job {
	struct gaicb		 cb;
	struct addrinfo		 hints;
	char			 host[256];
	char			 port[8];
	int			 done[2];	/* pipe: readable when done */
	atomic_int		 refs;
};

static void
gai_job_release(struct gai_job *j)
{
	if (atomic_fetch_sub(&j->refs, 1) == 1) {
		if (j->cb.ar_result != NULL)
			freeaddrinfo(j->cb.ar_result);
		close(j->done[0]);
		close(j->done[1]);
		free(j);
	}
}

static void
gai_job_done(union sigval sv)
{
	struct gai_job	*j = sv.sival_ptr;

	(void)!write(j->done[1], "", 1);
	gai_job_release(j);
}

static struct addrinfo *
resolve(struct probe *p)
{
	const struct url	*u = p->req->url;
	struct addrinfo		 hints, *ai = NULL;
	struct gai_job		*j;
	struct gaicb		*list[1];
	struct sigevent		 sev;
	enum wait		 w;
	char			 port[8];
	int			 rv;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = p->req->family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
	snprintf(port, sizeof port, "%d", u->port);

	if (u->host_is_ip) {
		hints.ai_flags = AI_NUMERICSERV | AI_NUMERICHOST;
		if ((rv = getaddrinfo(u->host, port, &hints, &ai)) != 0) {
			result_fail(p->res, REASON_RESOLVE, STAGE_RESOLVE,
			    "%s: %s", u->host, gai_strerror(rv));
			return NULL;
		}
		return ai;
	}
	if (strlen(u->host) >= sizeof j->host) {
		result_fail(p->res, REASON_RESOLVE, STAGE_RESOLVE,
		    "host name too long");
		return NULL;
	}

	j = xcalloc(1, sizeof *j);
	if (pipe2(j->done, O_CLOEXEC | O_NONBLOCK) == -1) {
		result_fail(p->res, REASON_RESOLVE, STAGE_RESOLVE,
		    "resolving %s: pipe: %s", u->host, strerror(errno));
		free(j);
		return NULL;
	}
	strcpy(j->host, u->host);
	strcpy(j->port, port);
	j->hints = hints;
	j->cb.ar_name = j->host;
	j->cb.ar_service = j->port;
	j->cb.ar_request = &j->hints;
	atomic_init(&j->refs, 2);
	memset(&sev, 0, sizeof sev);
	sev.sigev_notify = SIGEV_THREAD;
	sev.sigev_notify_function = gai_job_done;
	sev.sigev_value.sival_ptr = j;
	list[0] = &j->cb;
	if ((rv = getaddrinfo_a(GAI_NOWAIT, list, 1, &sev)) != 0) {
		close(j->done[0]);
		close(j->done[1]);
		free(j);
		result_fail(p->res, REASON_RESOLVE, STAGE_RESOLVE, "%s: %s",
		    u->host, gai_strerror(rv));
		return NULL;
	}
	p->fd = j->done[0];
	w = wait_fd(p, POLLIN, p->deadline);
	p->fd = -1;
	rv = gai_error(&j->cb);
	if (rv == EAI_INPROGRESS) {
		/* A lookup cancelled before it started is never notified. */
		if (gai_cancel(&j->cb) == EAI_CANCELED)
			gai_job_release(j);
		if (w == WAIT_CANCELLED)
			result_fail(p->res, REASON_TIMEOUT, STAGE_RESOLVE,
			    "probe abandoned");
		else
			result_fail(p->res, REASON_TIMEOUT, STAGE_RESOLVE,
			    "deadline of %.3gs passed resolving %s",
			    p->req->timeout, u->host);
	} else if (rv != 0) {
		result_fail(p->res, REASON_RESOLVE, STAGE_RESOLVE, "%s: %s",
		    u->host, gai_strerror(rv));
	} else {
		ai = j->cb.ar_result;
		j->cb.ar_result = NULL;
	}
	gai_job_release(j);
	return ai;
}

/* ---- connect ----------------------------------------------------------- */

static int
connect_one(struct probe *p, const struct addrinfo *ai, int *err)
{
	socklen_t	 len = sizeof *err;
	enum wait	 w;

	p->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, ai->ai_protocol);
	if (p->fd == -1) {
		*err = errno;
		return -1;
	}
	if (connect(p->fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return 0;
	if (errno != EINPROGRESS) {
		*err = errno;
		goto fail;
	}
	if ((w = wait_fd(p, POLLOUT, p->deadline)) != WAIT_READY) {
		*err = w == WAIT_CANCELLED ? ECANCELED : ETIMEDOUT;
		goto fail;
	}
	if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, err, &len) == -1)
		*err = errno;
	if (*err == 0)
		return 0;
fail:
	close(p->fd);
	p->fd = -1;
	return -1;
}

static void
note_address(struct probe_result *res, const struct addrinfo *ai)
{
	const void *addr;

	if (ai->ai_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ai->ai_addr;

		addr = &s6->sin6_addr;
		res->port = ntohs(s6->sin6_port);
		res->ip_protocol = 6;
	} else {
		const struct sockaddr_in *s4 = (const void *)ai->ai_addr;

		addr = &s4->sin_addr;
		res->port = ntohs(s4->sin_port);
		res->ip_protocol = 4;
	}
	if (inet_ntop(ai->ai_family, addr, res->address,
	    sizeof res->address) == NULL)
		res->address[0] = '\0';
}

static int
connect_any(struct probe *p, struct addrinfo *list)
{
	struct addrinfo	*ai;
	int		 err = 0;

	for (ai = list; ai != NULL; ai = ai->ai_next) {
		if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
			continue;
		note_address(p->res, ai);
		if (connect_one(p, ai, &err) == 0)
			return 0;
		if (err == ETIMEDOUT || err == ECANCELED)
			break;
		log_debug("connect %s port %d: %s", p->res->address,
		    p->res->port, strerror(err));
	}
	if (err == ETIMEDOUT)
		fail_wait(p, WAIT_TIMEOUT, STAGE_CONNECT, "connect");
	else if (err == ECANCELED)
		fail_wait(p, WAIT_CANCELLED, STAGE_CONNECT, "connect");
	else
		result_fail(p->res, REASON_CONNECT, STAGE_CONNECT,
		    "connect to %s port %d: %s", p->res->address, p->res->port,
		    err ? strerror(err) : "no usable address");
	return -1;
}

/* ---- TLS --------------------------------------------------------------- */

static int
tls_start(struct probe *p)
{
	const struct url	*u = p->req->url;
	const char		*sni;
	const gnutls_datum_t	*peers;
	unsigned		 npeers = 0;
	enum wait		 w;
	int			 rv;

	if ((rv = gnutls_init(&p->session, GNUTLS_CLIENT | GNUTLS_NONBLOCK |
	    GNUTLS_NO_SIGNAL)) < 0) {
		p->session = NULL;
		result_fail(p->res, REASON_TLS, STAGE_TLS, "gnutls_init: %s",
		    gnutls_strerror(rv));
		return -1;
	}
	/* System defaults, but never below TLS 1.2. */
	if ((rv = gnutls_priority_set(p->session, prio)) < 0 ||
	    (rv = gnutls_credentials_set(p->session, GNUTLS_CRD_CERTIFICATE,
	    creds)) < 0) {
		result_fail(p->res, REASON_TLS, STAGE_TLS, "TLS set-up: %s",
		    gnutls_strerror(rv));
		return -1;
	}
	sni = p->req->sni != NULL ? p->req->sni :
	    (u->host_is_ip ? NULL : u->host);
	if (sni != NULL && *sni != '\0')
		gnutls_server_name_set(p->session, GNUTLS_NAME_DNS, sni,
		    strlen(sni));
	gnutls_transport_set_ptr(p->session, p);
	gnutls_transport_set_pull_function(p->session, probe_pull);
	gnutls_transport_set_push_function(p->session, probe_push);
	gnutls_transport_set_pull_timeout_function(p->session,
	    probe_pull_timeout);

	for (;;) {
		rv = gnutls_handshake(p->session);
		if (rv == GNUTLS_E_SUCCESS) {
			p->handshaken = 1;
			break;
		}
		if (rv == GNUTLS_E_AGAIN || rv == GNUTLS_E_INTERRUPTED ||
		    !gnutls_error_is_fatal(rv)) {
			if ((w = wait_tls(p)) != WAIT_READY) {
				fail_wait(p, w, STAGE_TLS, "the TLS handshake");
				return -1;
			}
			continue;
		}
		if (rv == GNUTLS_E_FATAL_ALERT_RECEIVED)
			result_fail(p->res, REASON_TLS, STAGE_TLS,
			    "TLS handshake: alert received: %s",
			    gnutls_alert_get_name(gnutls_alert_get(p->session)));
		else
			result_fail(p->res, REASON_TLS, STAGE_TLS,
			    "TLS handshake: %s", gnutls_strerror(rv));
		return -1;
	}

	p->res->tls_version = gnutls_protocol_get_name(
	    gnutls_protocol_get_version(p->session));
	p->res->tls_cipher = gnutls_ciphersuite_get(p->session);

	peers = gnutls_certificate_get_peers(p->session, &npeers);
	if (peers != NULL && npeers > 0) {
		if (cert_facts_cached(peers[0].data, peers[0].size,
		    sni != NULL ? sni : u->host, &p->res->cert) == -1)
			log_debug("%s: cannot parse the server certificate",
			    u->text);
	}
	return 0;
}

/* Check the certificate against the pin or the TOFU store. */
static void
cert_trust(struct probe *p)
{
	struct cert_facts	*c = &p->res->cert;
	const unsigned char	*pin = p->req->fingerprint;
	char			 hex[SHA256_HEX_LEN + 1];

	if (!c->present)
		return;
	if (pin != NULL) {
		hex_encode(pin, 32, hex);
		c->tofu = strcmp(hex, c->sha256) == 0 ? TOFU_PINNED :
		    TOFU_MISMATCH;
	} else if (p->req->tofu != NULL)
		tofu_check(p->req->tofu, p->req->url->host, p->req->url->port,
		    c);
}

/* ---- request, header, body --------------------------------------------- */

static int
send_request(struct probe *p)
{
	const char	*url = p->req->url->text;
	char		 line[URL_MAX + 3];
	size_t		 len, off = 0;
	ssize_t		 n;
	enum wait	 w;

	len = strlen(url);
	if (len > URL_MAX) {
		result_fail(p->res, REASON_HEADER, STAGE_REQUEST,
		    "URL longer than %d bytes", URL_MAX);
		return -1;
	}
	memcpy(line, url, len);
	memcpy(line + len, "\r\n", 2);
	len += 2;
	while (off < len) {
		n = gnutls_record_send(p->session, line + off, len - off);
		if (n >= 0) {
			off += (size_t)n;
			continue;
		}
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
			if ((w = wait_tls(p)) != WAIT_READY) {
				fail_wait(p, w, STAGE_REQUEST,
				    "sending the request");
				return -1;
			}
			continue;
		}
		result_fail(p->res, REASON_TLS, STAGE_REQUEST,
		    "sending the request: %s", gnutls_strerror((int)n));
		return -1;
	}
	return 0;
}

/*
 * Read one chunk. Returns > 0 bytes read, or 0 when the response ended
 * (res->end set), or -1 when the deadline passed or the probe was
 * cancelled (res->end = END_TIMEOUT).
 */
static ssize_t
read_chunk(struct probe *p, char *buf, size_t len, enum stage stage)
{
	ssize_t		 n;
	enum wait	 w;

	for (;;) {
		p->io_errno = 0;
		n = gnutls_record_recv(p->session, buf, len);
		if (n > 0)
			return n;
		if (n == 0) {
			p->res->end = END_CLOSE_NOTIFY;
			return 0;
		}
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED ||
		    !gnutls_error_is_fatal((int)n)) {
			if (n != GNUTLS_E_AGAIN && n != GNUTLS_E_INTERRUPTED)
				log_debug("%s: %s (ignored)",
				    p->req->url->text,
				    gnutls_strerror((int)n));
			if ((w = wait_tls(p)) != WAIT_READY) {
				/* In the body, judge() weighs it in order. */
				p->res->end = END_TIMEOUT;
				if (stage == STAGE_HEADER)
					fail_wait(p, w, stage, "the header");
				return -1;
			}
			continue;
		}
		switch (n) {
		case GNUTLS_E_PREMATURE_TERMINATION:
		case GNUTLS_E_UNEXPECTED_PACKET_LENGTH:
			p->res->end = END_PREMATURE;
			break;
		case GNUTLS_E_PULL_ERROR:
			p->res->end = p->io_errno == ECONNRESET ? END_RESET :
			    END_ERROR;
			break;
		default:
			p->res->end = END_ERROR;
			break;
		}
		if (n == GNUTLS_E_FATAL_ALERT_RECEIVED)
			snprintf(p->errmsg, sizeof p->errmsg,
			    "TLS alert received: %s",
			    gnutls_alert_get_name(gnutls_alert_get(p->session)));
		else if (n == GNUTLS_E_PULL_ERROR)
			snprintf(p->errmsg, sizeof p->errmsg, "receive: %s",
			    strerror(p->io_errno));
		else
			snprintf(p->errmsg, sizeof p->errmsg, "%s",
			    gnutls_strerror((int)n));
		return 0;
	}
}

static void
keep_body(struct probe *p, const char *data, size_t n)
{
	if (p->req->expect_body == NULL || n == 0)
		return;
	p->body = xreallocarray(p->body, p->body_len + n + 1, 1);
	memcpy(p->body + p->body_len, data, n);
	p->body_len += n;
	p->body[p->body_len] = '\0';
}

/*
 * Read the header, then the body to its end. Sets res->status, meta,
 * body_bytes and end; a header error is recorded as a failure.
 */
static void
read_response(struct probe *p, double *t_header)
{
	struct probe_result	*res = p->res;
	struct gemini_header	 h;
	char			 hbuf[GEMINI_HEADER_MAX + READ_CHUNK];
	char			*chunk;
	const char		*err = NULL;
	size_t			 have = 0, rest;
	int64_t			 body = 0;
	ssize_t			 n;
	int			 hlen = 0;

	/* The header: bytes past it in the same read start the body. */
	while (hlen == 0) {
		n = read_chunk(p, hbuf + have, sizeof hbuf - have,
		    STAGE_HEADER);
		if (n <= 0) {
			*t_header = clock_mono();
			if (n == 0)
				result_fail(res, REASON_HEADER, STAGE_HEADER,
				    "the connection ended (%s) before a "
				    "complete header; %zu bytes received",
				    end_name(res->end), have);
			return;
		}
		have += (size_t)n;
		hlen = gemini_header_parse(hbuf, have, &h, &err);
		if (hlen < 0) {
			*t_header = clock_mono();
			result_fail(res, REASON_HEADER, STAGE_HEADER,
			    "malformed header: %s", err);
			return;
		}
		if (hlen == 0 && have > GEMINI_HEADER_MAX) {
			*t_header = clock_mono();
			result_fail(res, REASON_HEADER, STAGE_HEADER,
			    "malformed header: longer than %d bytes",
			    GEMINI_HEADER_MAX);
			return;
		}
	}
	*t_header = clock_mono();
	res->status = h.status;
	res->meta = xstrndup(h.meta, h.meta_len);

	/* The body. */
	rest = have - (size_t)hlen;
	body = (int64_t)rest;
	keep_body(p, hbuf + hlen, rest);
	chunk = xmalloc(READ_CHUNK);
	while (res->end == END_NONE) {
		if ((uint64_t)body > p->req->max_body) {
			res->end = END_LIMIT;
			break;
		}
		n = read_chunk(p, chunk, READ_CHUNK, STAGE_BODY);
		if (n <= 0)
			break;
		body += n;
		keep_body(p, chunk, (size_t)n);
	}
	free(chunk);
	res->body_bytes = body;
}

/* Our own close_notify, bounded in time; then close. */
static void
finish_tls(struct probe *p)
{
	double	 until;
	int	 rv;

	if (p->session == NULL)
		return;
	if (p->handshaken && p->res->end != END_PREMATURE &&
	    p->res->end != END_RESET && p->res->end != END_ERROR &&
	    !p->cancelled) {
		until = clock_mono() + BYE_BUDGET;
		while ((rv = gnutls_bye(p->session, GNUTLS_SHUT_WR)) ==
		    GNUTLS_E_AGAIN || rv == GNUTLS_E_INTERRUPTED) {
			if (wait_fd(p, gnutls_record_get_direction(p->session) ?
			    POLLOUT : POLLIN, until) != WAIT_READY)
				break;
		}
	}
	gnutls_deinit(p->session);
	p->session = NULL;
}

/*
 * expect-body, within the probe's deadline (bodymatch.h: the match runs
 * apart and is cut off); 0 with the failure recorded when it missed.
 */
static int
body_matches(struct probe *p)
{
	const struct probe_req	*req = p->req;

	switch (bodymatch_run(req->expect_body, p->body ? p->body : "",
	    p->body_len, p->deadline, req->cancel_fd)) {
	case BODYMATCH_MATCH:
		return 1;
	case BODYMATCH_NOMATCH:
		result_fail(p->res, REASON_BODY, STAGE_BODY,
		    "body does not match expect-body");
		break;
	case BODYMATCH_TIMEOUT:
		result_fail(p->res, REASON_BODY, STAGE_BODY,
		    "expect-body match cut off at the deadline of %.3gs "
		    "(%zu bytes of body)", req->timeout, p->body_len);
		break;
	case BODYMATCH_CANCELLED:
		p->cancelled = 1;
		fail_wait(p, WAIT_CANCELLED, STAGE_BODY, "expect-body");
		break;
	default:
		result_fail(p->res, REASON_BODY, STAGE_BODY,
		    "expect-body could not be matched: the matcher did "
		    "not run or died");
		break;
	}
	return 0;
}

/* The verdict: the first expectation missed, in SPEC §4's order. */
static void
judge(struct probe *p)
{
	struct probe_result	*res = p->res;
	const struct probe_req	*req = p->req;
	enum reason		 r;

	if (res->reason != REASON_NONE)
		return;		/* transport or header failure already */
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
			fail_wait(p, p->cancelled ? WAIT_CANCELLED :
			    WAIT_TIMEOUT, STAGE_BODY, "the body");
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
	if (req->expect_body != NULL && !body_matches(p))
		return;
	res->success = 1;
}

int
probe_run(const struct probe_req *req, struct probe_result *res)
{
	struct probe	 p;
	struct addrinfo	*ai = NULL;
	double		 t_resolved, t_connected, t_tls, t_header, t_end;
	size_t		 i;

	memset(&p, 0, sizeof p);
	p.req = req;
	p.res = res;
	p.fd = -1;
	p.start = clock_mono();
	p.deadline = p.start + req->timeout;
	res->check = req->check;
	free(res->url);
	res->url = xstrdup(req->url->text);
	res->success = 0;

	ai = resolve(&p);
	t_resolved = clock_mono();
	res->dur[PHASE_RESOLVE] = t_resolved - p.start;
	if (ai == NULL)
		goto done;

	if (connect_any(&p, ai) == -1) {
		res->dur[PHASE_CONNECT] = clock_mono() - t_resolved;
		goto done;
	}
	t_connected = clock_mono();
	res->dur[PHASE_CONNECT] = t_connected - t_resolved;
	(void)setsockopt(p.fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 },
	    sizeof(int));

	if (tls_start(&p) == -1) {
		res->dur[PHASE_TLS] = clock_mono() - t_connected;
		goto done;
	}
	t_tls = clock_mono();
	res->dur[PHASE_TLS] = t_tls - t_connected;
	cert_trust(&p);

	t_header = t_tls;
	if (send_request(&p) == 0) {
		read_response(&p, &t_header);
		res->dur[PHASE_HEADER] = t_header - t_tls;
		if (res->status >= 0) {
			t_end = clock_mono();
			res->dur[PHASE_BODY] = t_end - t_header;
		}
	} else
		res->dur[PHASE_HEADER] = clock_mono() - t_tls;
	judge(&p);
done:
	res->total = clock_mono() - p.start;
	/* Microseconds are plenty, and print short. */
	for (i = 0; i < PHASE__COUNT; i++)
		if (res->dur[i] >= 0)
			res->dur[i] = round(res->dur[i] * 1e6) / 1e6;
	res->total = round(res->total * 1e6) / 1e6;
	finish_tls(&p);
	if (p.fd != -1)
		close(p.fd);
	if (ai != NULL)
		freeaddrinfo(ai);
	free(p.body);
	res->time = clock_wall();
	return res->success;
}
