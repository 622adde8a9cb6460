/*
 * geminispace - a simulated Geminispace for tests/bench/run.sh's geminispace
 * section: N capsules, each on its own loopback address (127.64.0.0/10,
 * which like all of 127.0.0.0/8 routes to lo), with a seeded behaviour and
 * round trip, served by one thread on one epoll loop. One wildcard listener
 * (bound to lo) takes every connection; the local address getsockname()
 * returns names the capsule. The mix follows a crawler census of the real
 * Geminispace (about two thirds answer): a healthy capsule ending its
 * response with close_notify, one closing TCP without it, a slow one (1-5 s
 * of thinking before the header); and the dead: refused (its URL names a
 * port bound but never listened on, so the kernel answers the SYN with a
 * reset), hang (accepts, then never reads nor writes until the client gives
 * up), reset (a TCP reset after the ClientHello) and TLS failure (a fatal
 * handshake_failure alert). Each capsule has a round trip of 20-300 ms that
 * the server imposes twice, as a real one would cost it: once before it
 * answers the ClientHello (or resets, or sends its alert) and once between
 * the request and the response header; connect() itself stays as fast as
 * loopback is. Sessions are not resumed and no tickets are sent. The
 * certificate (ECDSA P-256, self-signed, for *.gemini.test) is made at
 * start and the one response is built once.
 *
 *	geminispace [-n N] [-s SEED] [-H SECONDS] -m MANIFEST
 *
 * When it is ready it writes MANIFEST (atomically): a header, then one line
 * per capsule, "INDEX NAME ADDRESS PORT BEHAVIOUR RTT_MS EXTRA_MS" (EXTRA_MS:
 * a slow capsule's thinking before its header). SIGUSR1 prints its
 * statistics as key=value lines on stderr; SIGTERM or SIGINT print them and
 * end it.
 */

#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#define ADDR_BASE 0x7f400000u /* 127.64.0.0: capsule i is BASE + i */
#define CAPSULES_MAX ((1u << 22) - 2)
#define HOLD_MS 120000   /* a hang is held at most this long */
#define REQUEST_MS 30000 /* handshake and request, at most */
#define LINGER_MS 2000   /* the client's close after ours */
#define RETRY_MS 50      /* accept paused when out of fds */
#define TIMER_SLACK_MS 5 /* timers are served in batches */
#define REQUEST_MAX 1026 /* URL and CRLF */
#define BODY_LINES 24
#define EVENTS 256
#define TAG_LISTEN UINT64_MAX /* epoll data of the listener */
#define TAG_SIGNAL (UINT64_MAX - 1)

enum behaviour {
	B_OK,      /* answers, ends with close_notify */
	B_NOCN,    /* answers, closes TCP without close_notify */
	B_SLOW,    /* answers after 1-5 s more, with close_notify */
	B_REFUSED, /* nothing listens on its port */
	B_HANG,    /* accepts, then silence */
	B_RESET,   /* a TCP reset after the ClientHello */
	B_TLSFAIL, /* a fatal handshake_failure alert */
	B__COUNT
};

static const char *behaviour_names[B__COUNT] = {
    "ok", "no-close-notify", "slow", "refused", "hang", "reset", "tls-fail"};

/*
 * The mix, in thousandths: 670 answer (the census: 3,251 of 4,825), 330 are
 * dead.
 */
static const unsigned behaviour_mix[B__COUNT] = {520, 80, 70, 150, 100, 40, 40};

enum state {
	S_FREE,
	S_HELLO,      /* waiting for the ClientHello */
	S_HELLO_WAIT, /* holding it for the round trip */
	S_HANDSHAKE,
	S_REQUEST,
	S_RESPOND_WAIT, /* holding the request for the round trip */
	S_RESPOND,
	S_BYE,
	S_LINGER, /* our side shut: reading until the client closes */
	S_HANG
};

struct conn {
	gnutls_session_t tls;
	uint64_t deadline; /* ms, CLOCK_MONOTONIC; 0: none */
	uint32_t gen;
	uint32_t capsule;
	int heap; /* index in the timer heap, or -1 */
	uint16_t reqlen;
	uint8_t state;
	uint8_t beh;
	uint8_t cr; /* the last request byte was \r */
};

struct stats {
	unsigned long long accepted, by_beh[B__COUNT], stray, emfile;
	unsigned long long handshakes, responses, close_notify, no_close_notify;
	unsigned long long resets, alerts, hang_peer, hang_held, aborted;
	unsigned long long timeouts, open, open_max;
};

static struct conn *conns; /* indexed by fd */
static int nconns;
static int *heap; /* fds ordered by deadline */
static int nheap;
static int ep = -1, lfd = -1, rfd = -1, sfd = -1;
static uint32_t ncapsules = 5000;
static uint64_t seed = 1;
static uint64_t hold_ms = HOLD_MS;
static uint64_t listen_paused; /* until then (ms), or 0 */
static struct stats st;
static gnutls_certificate_credentials_t creds;
static gnutls_priority_t prio;
static char *response;
static size_t response_len;

static void die(const char *, ...)
    __attribute__((noreturn, format(printf, 1, 2)));
static void usage(void) __attribute__((noreturn));

static void
die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "geminispace: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t
splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Capsule i's behaviour, round trip and extra delay, from the seed alone. */
static void
capsule_draw(uint32_t i, int *beh, unsigned *rtt, unsigned *slow)
{
	uint64_t h = splitmix64(seed * 0x100000001b3ull + i);
	unsigned r = (unsigned)(h % 1000), b;

	for (b = 0; b < B__COUNT - 1 && r >= behaviour_mix[b]; b++)
		r -= behaviour_mix[b];
	*beh = (int)b;
	*rtt = 20 + (unsigned)((h >> 10) % 281);
	*slow = b == B_SLOW ? 1000 + (unsigned)((h >> 20) % 4001) : 0;
}

/* ---- timers: a binary min-heap of fds by deadline ---------------------- */

static void
heap_swap(int a, int b)
{
	int t = heap[a];

	heap[a] = heap[b];
	heap[b] = t;
	conns[heap[a]].heap = a;
	conns[heap[b]].heap = b;
}

static void
heap_up(int i)
{
	while (i > 0) {
		int p = (i - 1) / 2;

		if (conns[heap[p]].deadline <= conns[heap[i]].deadline)
			break;
		heap_swap(i, p);
		i = p;
	}
}

static void
heap_down(int i)
{
	for (;;) {
		int l = 2 * i + 1, r = l + 1, m = i;

		if (l < nheap &&
		    conns[heap[l]].deadline < conns[heap[m]].deadline)
			m = l;
		if (r < nheap &&
		    conns[heap[r]].deadline < conns[heap[m]].deadline)
			m = r;
		if (m == i)
			return;
		heap_swap(i, m);
		i = m;
	}
}

static void
timer_clear(int fd)
{
	struct conn *c = &conns[fd];
	int i = c->heap;

	if (i < 0)
		return;
	c->heap = -1;
	c->deadline = 0;
	if (i == --nheap)
		return;
	heap[i] = heap[nheap];
	conns[heap[i]].heap = i;
	heap_down(i);
	heap_up(i);
}

static void
timer_set(int fd, uint64_t ms)
{
	struct conn *c = &conns[fd];

	timer_clear(fd);
	c->deadline = now_ms() + ms;
	c->heap = nheap;
	heap[nheap++] = fd;
	heap_up(c->heap);
}

/* ---- connections ----------------------------------------------------------
 */

static void
interest(int fd, uint32_t events)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof ev);
	ev.events = events;
	ev.data.u64 = (uint64_t)conns[fd].gen << 32 | (uint32_t)fd;
	if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) == -1)
		die("epoll_ctl: %s", strerror(errno));
}

static void
conn_close(int fd, int reset)
{
	struct conn *c = &conns[fd];

	if (reset) {
		struct linger l = {1, 0};

		(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
	}
	timer_clear(fd);
	if (c->tls != NULL)
		gnutls_deinit(c->tls);
	c->tls = NULL;
	c->state = S_FREE;
	c->gen++;
	close(fd); /* also leaves the epoll set */
	st.open--;
}

/* Our side is done: shut it and read until the client closes. */
static void
conn_linger(int fd)
{
	(void)shutdown(fd, SHUT_WR);
	conns[fd].state = S_LINGER;
	interest(fd, EPOLLIN);
	timer_set(fd, LINGER_MS);
}

static void
interest_listener(uint32_t events)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof ev);
	ev.events = events;
	ev.data.u64 = TAG_LISTEN;
	if (epoll_ctl(ep, EPOLL_CTL_MOD, lfd, &ev) == -1)
		die("epoll_ctl: %s", strerror(errno));
}

static void
conn_accept(void)
{
	struct sockaddr_in sin;
	socklen_t len;
	struct epoll_event ev;
	struct conn *c;
	uint32_t addr;
	unsigned rtt, slow;
	int fd, one = 1, beh;

	for (;;) {
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM) {
				/* Try again soon rather than spin. */
				st.emfile++;
				listen_paused = now_ms() + RETRY_MS;
				interest_listener(0);
			}
			return;
		}
		len = sizeof sin;
		if (fd >= nconns ||
		    getsockname(fd, (struct sockaddr *)&sin, &len) == -1 ||
		    sin.sin_family != AF_INET) {
			st.stray++;
			close(fd);
			continue;
		}
		addr = ntohl(sin.sin_addr.s_addr);
		if (addr <= ADDR_BASE || addr - ADDR_BASE > ncapsules) {
			st.stray++;
			close(fd);
			continue;
		}
		st.accepted++;
		if (++st.open > st.open_max)
			st.open_max = st.open;
		c = &conns[fd];
		c->capsule = addr - ADDR_BASE;
		capsule_draw(c->capsule, &beh, &rtt, &slow);
		c->beh = (uint8_t)beh;
		c->reqlen = 0;
		c->cr = 0;
		c->heap = -1;
		c->deadline = 0;
		st.by_beh[beh]++;
		(void)setsockopt(
		    fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		memset(&ev, 0, sizeof ev);
		ev.data.u64 = (uint64_t)c->gen << 32 | (uint32_t)fd;
		if (beh == B_HANG) {
			/* Never read: only the client's close wakes us. */
			c->state = S_HANG;
			ev.events = EPOLLRDHUP;
			timer_set(fd, hold_ms);
		} else {
			c->state = S_HELLO;
			ev.events = EPOLLIN;
			timer_set(fd, REQUEST_MS);
		}
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == -1)
			die("epoll_ctl: %s", strerror(errno));
	}
}

static void
conn_tls_start(int fd)
{
	struct conn *c = &conns[fd];
	int r;

	r = gnutls_init(
	    &c->tls, GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_TICKETS);
	if (r < 0)
		die("gnutls_init: %s", gnutls_strerror(r));
	if ((r = gnutls_priority_set(c->tls, prio)) < 0 ||
	    (r = gnutls_credentials_set(
	         c->tls, GNUTLS_CRD_CERTIFICATE, creds)) < 0)
		die("gnutls session: %s", gnutls_strerror(r));
	gnutls_handshake_set_timeout(c->tls, 0);
	gnutls_transport_set_int(c->tls, fd);
	c->state = S_HANDSHAKE;
	timer_set(fd, REQUEST_MS);
}

/* What to wait for after GNUTLS_E_AGAIN. */
static void
conn_wait_tls(int fd)
{
	interest(fd,
	    gnutls_record_get_direction(conns[fd].tls) ? EPOLLOUT : EPOLLIN);
}

static void conn_step(int fd);

/* The round trip (and a slow capsule's thinking) is over. */
static void
conn_timer(int fd)
{
	struct conn *c = &conns[fd];
	static const unsigned char alert[] = {
	    21, 3, 3, 0, 2, 2, 40 /* fatal handshake_failure */
	};
	char buf[4096];

	switch (c->state) {
	case S_HELLO_WAIT:
		if (c->beh == B_RESET) {
			st.resets++;
			conn_close(fd, 1);
		} else if (c->beh == B_TLSFAIL) {
			while (recv(fd, buf, sizeof buf, 0) > 0)
				;
			if (send(fd, alert, sizeof alert, MSG_NOSIGNAL) ==
			    (ssize_t)sizeof alert)
				st.alerts++;
			conn_linger(fd);
		} else {
			conn_tls_start(fd);
			conn_step(fd);
		}
		return;
	case S_RESPOND_WAIT:
		c->state = S_RESPOND;
		timer_set(fd, REQUEST_MS); /* a client that stops reading */
		conn_step(fd);
		return;
	case S_HANG:
		st.hang_held++;
		conn_close(fd, 0);
		return;
	case S_LINGER:
		conn_close(fd, 0);
		return;
	default:
		st.timeouts++;
		conn_close(fd, 0);
		return;
	}
}

/* Read the request up to its CRLF; 1 when it is complete. */
static int
conn_read_request(int fd)
{
	struct conn *c = &conns[fd];
	char buf[2048];
	ssize_t n, i;

	for (;;) {
		n = gnutls_record_recv(c->tls, buf, sizeof buf);
		if (n == GNUTLS_E_AGAIN) {
			conn_wait_tls(fd);
			return 0;
		}
		if (n == GNUTLS_E_INTERRUPTED)
			continue;
		if (n <= 0)
			return -1;
		for (i = 0; i < n; i++) {
			if (c->cr && buf[i] == '\n')
				return 1;
			c->cr = buf[i] == '\r';
		}
		c->reqlen =
		    (uint16_t)(c->reqlen + (n > REQUEST_MAX ? REQUEST_MAX : n));
		if (c->reqlen >= REQUEST_MAX)
			return 1; /* too long: answered all the same */
	}
}

/* Drive a connection as far as it goes without waiting. */
static void
conn_step(int fd)
{
	struct conn *c = &conns[fd];
	unsigned rtt, slow;
	int r, beh;
	char buf[4096];

	for (;;) {
		switch (c->state) {
		case S_HELLO:
			/* The ClientHello is here: answer a round trip on. */
			capsule_draw(c->capsule, &beh, &rtt, &slow);
			c->state = S_HELLO_WAIT;
			interest(fd, 0);
			timer_set(fd, rtt);
			return;
		case S_HANDSHAKE:
			r = gnutls_handshake(c->tls);
			if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
				conn_wait_tls(fd);
				return;
			}
			if (r < 0) {
				st.aborted++;
				conn_close(fd, 0);
				return;
			}
			st.handshakes++;
			c->state = S_REQUEST;
			break;
		case S_REQUEST:
			r = conn_read_request(fd);
			if (r == 0)
				return;
			if (r < 0) {
				st.aborted++;
				conn_close(fd, 0);
				return;
			}
			capsule_draw(c->capsule, &beh, &rtt, &slow);
			c->state = S_RESPOND_WAIT;
			interest(fd, 0);
			timer_set(fd, rtt + slow);
			return;
		case S_RESPOND:
			r = (int)gnutls_record_send(
			    c->tls, response, response_len);
			if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
				conn_wait_tls(fd);
				return;
			}
			if (r != (int)response_len) {
				st.aborted++;
				conn_close(fd, 0);
				return;
			}
			st.responses++;
			if (c->beh == B_NOCN) {
				st.no_close_notify++;
				conn_linger(fd);
				return;
			}
			c->state = S_BYE;
			break;
		case S_BYE:
			r = gnutls_bye(c->tls, GNUTLS_SHUT_WR);
			if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
				conn_wait_tls(fd);
				return;
			}
			if (r == 0)
				st.close_notify++;
			conn_linger(fd);
			return;
		case S_LINGER:
			for (;;) {
				ssize_t n = recv(fd, buf, sizeof buf, 0);

				if (n > 0)
					continue;
				if (n == -1 && errno == EAGAIN)
					return;
				conn_close(fd, 0);
				return;
			}
		case S_HANG:
			st.hang_peer++;
			conn_close(fd, 0);
			return;
		default:
			return;
		}
	}
}

/* An event on a connection. */
static void
conn_event(int fd, uint32_t events)
{
	struct conn *c = &conns[fd];

	if (c->state == S_HANG) {
		st.hang_peer++;
		conn_close(fd, 0);
		return;
	}
	if ((events & (EPOLLERR | EPOLLHUP)) &&
	    (c->state == S_HELLO_WAIT || c->state == S_RESPOND_WAIT)) {
		st.aborted++;
		conn_close(fd, 0);
		return;
	}
	conn_step(fd);
}

/* ---- set-up ----------------------------------------------------------------
 */

static void
creds_make(void)
{
	gnutls_x509_privkey_t key;
	gnutls_x509_crt_t crt;
	unsigned char serial[16], id[64];
	size_t idlen = sizeof id;
	time_t t = time(NULL);
	const char *cn = "gemini.test", *wild = "*.gemini.test";
	int r;

	if ((r = gnutls_x509_privkey_init(&key)) < 0 ||
	    (r = gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
	         GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0)) < 0 ||
	    (r = gnutls_x509_crt_init(&crt)) < 0 ||
	    (r = gnutls_x509_crt_set_version(crt, 3)) < 0 ||
	    (r = gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof serial)) < 0)
		die("key: %s", gnutls_strerror(r));
	serial[0] = (serial[0] & 0x7f) | 0x40;
	if ((r = gnutls_x509_crt_set_serial(crt, serial, sizeof serial)) < 0 ||
	    (r = gnutls_x509_crt_set_activation_time(crt, t - 86400)) < 0 ||
	    (r = gnutls_x509_crt_set_expiration_time(crt, t + 365 * 86400)) <
	        0 ||
	    (r = gnutls_x509_crt_set_dn_by_oid(
	         crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn, strlen(cn))) < 0 ||
	    (r = gnutls_x509_crt_set_key(crt, key)) < 0 ||
	    (r = gnutls_x509_crt_set_basic_constraints(crt, 0, -1)) < 0 ||
	    (r = gnutls_x509_crt_set_key_usage(
	         crt, GNUTLS_KEY_DIGITAL_SIGNATURE)) < 0 ||
	    (r = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME,
	         cn, strlen(cn), GNUTLS_FSAN_APPEND)) < 0 ||
	    (r = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME,
	         wild, strlen(wild), GNUTLS_FSAN_APPEND)) < 0 ||
	    (r = gnutls_x509_crt_get_key_id(
	         crt, GNUTLS_KEYID_USE_SHA1, id, &idlen)) < 0 ||
	    (r = gnutls_x509_crt_set_subject_key_id(crt, id, idlen)) < 0 ||
	    (r = gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0)) <
	        0)
		die("certificate: %s", gnutls_strerror(r));
	if ((r = gnutls_certificate_allocate_credentials(&creds)) < 0 ||
	    (r = gnutls_certificate_set_x509_key(creds, &crt, 1, key)) < 0 ||
	    (r = gnutls_priority_init(&prio, NULL, NULL)) < 0)
		die("credentials: %s", gnutls_strerror(r));
	gnutls_x509_crt_deinit(crt);
	gnutls_x509_privkey_deinit(key);
}

/* The one response every answering capsule sends: a header and a page. */
static void
response_make(void)
{
	static const char head[] = "20 text/gemini; lang=en\r\n"
	                           "# A simulated capsule\n\n";
	static const char line[] =
	    "A line of gemtext, as a small "
	    "capsule's home page has a few dozen of them.\n";
	size_t i;
	char *p;

	response_len = sizeof head - 1 + BODY_LINES * (sizeof line - 1);
	if ((response = malloc(response_len)) == NULL)
		die("out of memory");
	p = response;
	memcpy(p, head, sizeof head - 1);
	p += sizeof head - 1;
	for (i = 0; i < BODY_LINES; i++, p += sizeof line - 1)
		memcpy(p, line, sizeof line - 1);
}

/* A TCP socket on the wildcard address, bound to lo, on a free port. */
static int
socket_lo(int *port)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof sin;
	int fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		die("socket: %s", strerror(errno));
	/*
	 * Best effort: the accept path refuses any address outside the
	 * capsules' range in any case.
	 */
	(void)setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, "lo", 3);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_ANY);
	if (bind(fd, (struct sockaddr *)&sin, sizeof sin) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) == -1)
		die("bind: %s", strerror(errno));
	*port = ntohs(sin.sin_port);
	return fd;
}

static void
manifest_write(const char *path, int port, int rport)
{
	unsigned long count[B__COUNT] = {0};
	char tmp[4096];
	unsigned rtt, slow;
	uint32_t i, a;
	FILE *f;
	int b;

	if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
		die("%s: name too long", path);
	if ((f = fopen(tmp, "w")) == NULL)
		die("%s: %s", tmp, strerror(errno));
	for (i = 1; i <= ncapsules; i++) {
		capsule_draw(i, &b, &rtt, &slow);
		count[b]++;
	}
	fprintf(f,
	    "# geminispace capsules=%u seed=%llu port=%d "
	    "refused-port=%d\n# mix",
	    ncapsules, (unsigned long long)seed, port, rport);
	for (b = 0; b < B__COUNT; b++)
		fprintf(f, " %s=%lu", behaviour_names[b], count[b]);
	fprintf(f, "\n# index name address port behaviour rtt_ms "
	           "extra_ms\n");
	for (i = 1; i <= ncapsules; i++) {
		capsule_draw(i, &b, &rtt, &slow);
		a = ADDR_BASE + i;
		fprintf(f, "%u c%05u.gemini.test %u.%u.%u.%u %d %s %u %u\n", i,
		    i, a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255,
		    b == B_REFUSED ? rport : port, behaviour_names[b], rtt,
		    slow);
	}
	if (fclose(f) == EOF || rename(tmp, path) == -1)
		die("%s: %s", path, strerror(errno));
}

static void
stats_print(uint64_t start)
{
	struct rusage ru;
	int b;

	getrusage(RUSAGE_SELF, &ru);
	fprintf(stderr,
	    "geminispace: stats\n"
	    "wall=%.3f\ncpu_user=%.3f\ncpu_sys=%.3f\n",
	    (double)(now_ms() - start) / 1e3,
	    (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6,
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
	fprintf(stderr, "accepted=%llu\n", st.accepted);
	for (b = 0; b < B__COUNT; b++) {
		if (b != B_REFUSED)
			fprintf(stderr, "accepted_%s=%llu\n",
			    behaviour_names[b], st.by_beh[b]);
	}
	fprintf(stderr,
	    "handshakes=%llu\nresponses=%llu\n"
	    "close_notify_sent=%llu\nclosed_without_close_notify=%llu\n"
	    "resets=%llu\nalerts=%llu\nhangs_closed_by_client=%llu\n"
	    "hangs_held_to_the_end=%llu\naborted_by_client=%llu\n"
	    "timed_out=%llu\nstray=%llu\nout_of_fds=%llu\nopen=%llu\n"
	    "open_max=%llu\n",
	    st.handshakes, st.responses, st.close_notify, st.no_close_notify,
	    st.resets, st.alerts, st.hang_peer, st.hang_held, st.aborted,
	    st.timeouts, st.stray, st.emfile, st.open, st.open_max);
	fflush(stderr);
}

static void
usage(void)
{
	fprintf(stderr, "usage: geminispace [-n CAPSULES] [-s SEED] "
	                "[-H HOLD_SECONDS] -m MANIFEST\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct epoll_event evs[EVENTS], ev;
	struct signalfd_siginfo si;
	struct rlimit rl;
	sigset_t mask;
	const char *manifest = NULL;
	uint64_t start = now_ms(), now, wake;
	char *end;
	int ch, i, n, port, rport, timeout, fd, done = 0;

	while ((ch = getopt(argc, argv, "H:m:n:s:")) != -1) {
		switch (ch) {
		case 'H':
			hold_ms = strtoull(optarg, &end, 10) * 1000;
			if (*end != '\0' || hold_ms == 0)
				usage();
			break;
		case 'm':
			manifest = optarg;
			break;
		case 'n':
			ncapsules = (uint32_t)strtoul(optarg, &end, 10);
			if (*end != '\0' || ncapsules == 0 ||
			    ncapsules > CAPSULES_MAX)
				usage();
			break;
		case 's':
			seed = strtoull(optarg, &end, 10);
			if (*end != '\0')
				usage();
			break;
		default:
			usage();
		}
	}
	if (manifest == NULL || optind != argc)
		usage();

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		die("getrlimit: %s", strerror(errno));
	nconns = rl.rlim_cur > 1048576 ? 1048576 : (int)rl.rlim_cur;
	if ((conns = calloc((size_t)nconns, sizeof *conns)) == NULL ||
	    (heap = calloc((size_t)nconns, sizeof *heap)) == NULL)
		die("out of memory");

	if (gnutls_global_init() < 0)
		die("gnutls_global_init failed");
	creds_make();
	response_make();

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) == -1 ||
	    (sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) == -1)
		die("signalfd: %s", strerror(errno));

	lfd = socket_lo(&port);
	rfd = socket_lo(&rport); /* bound, never listening: refused */
	if (listen(lfd, 4096) == -1)
		die("listen: %s", strerror(errno));
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		die("epoll_create1: %s", strerror(errno));
	memset(&ev, 0, sizeof ev);
	ev.events = EPOLLIN;
	ev.data.u64 = TAG_LISTEN;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) == -1)
		die("epoll_ctl: %s", strerror(errno));
	ev.data.u64 = TAG_SIGNAL;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev) == -1)
		die("epoll_ctl: %s", strerror(errno));
	manifest_write(manifest, port, rport);
	fprintf(stderr,
	    "geminispace: %u capsules on 127.64.0.1 and up, port "
	    "%d (refused: %d)\n",
	    ncapsules, port, rport);

	while (!done) {
		/*
		 * Sleep until the next timer or the end of an accept pause,
		 * rounded up to TIMER_SLACK_MS so that timers due close
		 * together are served by one wake-up.
		 */
		wake = nheap > 0 ? conns[heap[0]].deadline : UINT64_MAX;
		if (listen_paused != 0 && listen_paused < wake)
			wake = listen_paused;
		now = now_ms();
		if (wake != UINT64_MAX)
			wake +=
			    TIMER_SLACK_MS - 1 - (wake - 1) % TIMER_SLACK_MS;
		timeout = wake == UINT64_MAX ? -1
		          : wake <= now      ? 0
		                             : (int)(wake - now);
		n = epoll_wait(ep, evs, EVENTS, timeout);
		if (n == -1 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		for (i = 0; i < n; i++) {
			uint64_t u = evs[i].data.u64;

			if (u == TAG_LISTEN) {
				conn_accept();
				continue;
			}
			if (u == TAG_SIGNAL) {
				while (read(sfd, &si, sizeof si) ==
				       (ssize_t)sizeof si) {
					if (si.ssi_signo != SIGUSR1)
						done = 1;
					stats_print(start);
				}
				continue;
			}
			fd = (int)(uint32_t)u;
			if (conns[fd].state == S_FREE ||
			    conns[fd].gen != (uint32_t)(u >> 32))
				continue; /* closed earlier in this batch */
			conn_event(fd, evs[i].events);
		}
		now = now_ms();
		while (nheap > 0 && conns[heap[0]].deadline <= now) {
			fd = heap[0];
			timer_clear(fd);
			conn_timer(fd);
		}
		if (listen_paused != 0 && listen_paused <= now) {
			listen_paused = 0;
			interest_listener(EPOLLIN);
			conn_accept();
		}
	}

	for (fd = 0; fd < nconns; fd++) {
		if (conns[fd].state != S_FREE)
			conn_close(fd, 0);
	}
	close(ep);
	close(lfd);
	close(rfd);
	close(sfd);
	gnutls_priority_deinit(prio);
	gnutls_certificate_free_credentials(creds);
	gnutls_global_deinit();
	free(response);
	free(heap);
	free(conns);
	return 0;
}
