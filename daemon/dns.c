/*
 * Name resolution on an event loop, with c-ares (1.18 or later).
 *
 * A struct dns belongs to one loop thread. Its c-ares channel reports the
 * sockets it wants watched through the socket-state callback; they go on
 * an epoll descriptor of the dns's own, which the loop watches as one
 * descriptor, so a loop needs to know nothing of c-ares. A lookup that a
 * probe gives up on (its deadline passed) is cancelled: its callback is
 * forgotten and c-ares lets it go at its own timeout, holding nothing but
 * a little memory; other lookups are never queued behind it (there is no
 * limit on lookups in flight, unlike glibc's getaddrinfo_a).
 *
 * When the `resolver` servers change, or /etc/resolv.conf does (looked at
 * every few seconds), the channel is retired: new lookups go to a new one,
 * and the old one is destroyed once its lookups have ended.
 *
 * c-ares creates its sockets through our functions, so that they are
 * non-blocking and close-on-exec, and so that running out of descriptors
 * is told apart from a DNS server that does not answer.
 *
 * c-ares 1.18 keeps no answers, so this file does: one cache for the
 * process (a capsule's probes may run on any loop), under its own lock.
 * An answer is kept for the shortest TTL of its records (at most
 * CACHE_TTL_MAX); "no such name" and "no address" answers for a fixed
 * CACHE_NEG_TTL, since ares_getaddrinfo does not show the SOA record that
 * RFC 2308 would take the time from; names /etc/hosts gives (c-ares says
 * TTL 0 for them) until the file changes, when c-ares reads the file
 * before asking DNS; failures (timeouts, refusals, server failures) and
 * other answers with a TTL of 0 not at all. It holds at most CACHE_BYTES,
 * the least recently used answers going first, and is emptied when the
 * servers, resolv.conf or /etc/hosts change.
 */
#include "config.h"

#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <ares.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "clock.h"
#include "dns.h"
#include "hash.h"
#include "log.h"
#include "xmalloc.h"

#define RESOLV_CONF "/etc/resolv.conf"
#define HOSTS "/etc/hosts"
#define RESOLV_CHECK 5.0 /* seconds between looks at resolv.conf, hosts */
#define CACHE_BYTES (8 * 1024 * 1024) /* answers kept, with their names */
#define CACHE_TTL_MAX 3600            /* seconds an answer is kept at most */
#define CACHE_NEG_TTL 10   /* seconds "no such name" and "no address" are */
#define CACHE_HOST_MAX 253 /* longer names are never cached */
/*
 * ares_timeout walks every lookup of a channel, so the next c-ares
 * timeout is computed again only after processing and at most this
 * often; a new lookup's first timeout is never further away than this.
 */
#define TIMEOUT_GRAIN 0.5
#define EVENTS_MAX 64
/*
 * A query unanswered after 2 s is sent again, then after 4 s more (c-ares
 * doubles the wait at each round of the servers), 3 tries in all: the
 * defaults of c-ares 1.20.1 and later. 1.18's were 5 s and 4 tries, so a
 * single lost UDP datagram took half of a probe's 10 s: at 20,000
 * simulated capsules (tests/bench) on a loaded machine, dnsmasq dropped
 * queries, and 7,492 probes of the first two rounds timed out resolving.
 */
#define QUERY_TIMEOUT_MS 2000
#define QUERY_TRIES 3
/* Receive buffer asked for a UDP socket: room for a burst of answers. */
#define UDP_RCVBUF (1024 * 1024)

struct dns_sock {
	int fd; /* -1 once c-ares closed it */
	struct dns_chan *chan;
	struct dns_sock *next;
};

struct dns_chan {
	ares_channel ch;
	struct dns *dns;
	size_t pending; /* lookups not yet called back */
	struct dns_sock *socks;
	double emfile_at; /* when socket() last lacked a descriptor */
	int emfile_errno;
	int suspect;           /* made or used short of descriptors */
	int hosts_first;       /* reads /etc/hosts before asking DNS */
	unsigned epoch;        /* of the cache when made */
	struct dns_chan *next; /* on the retired list */
};

struct dns_query {
	struct dns_chan *chan;
	dns_done_fn *done; /* NULL once cancelled */
	void *arg;
	double started;
	int in_lookup; /* inside ares_getaddrinfo */
	int finished;  /* called back inside ares_getaddrinfo */
	int family;
	char host[]; /* as the cache keys it */
};

struct dns {
	int ep;
	struct dns_chan *cur;     /* new lookups; NULL until needed */
	struct dns_chan *retired; /* finishing their lookups */
	struct dns_sock *dead;    /* closed by c-ares, freed later */
	size_t pending;
	unsigned gen;         /* of the server list cur follows */
	double checked;       /* when the files were last looked at */
	struct stat files[2]; /* resolv.conf, hosts as cur read them */
	int files_errno[2];   /* 0, or why each could not be read */
	double next_timeout;  /* when c-ares needs processing; -1 */
	int freeing;
};

union cache_addr {
	struct sockaddr sa;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
};

struct cache_entry {
	struct cache_entry *hnext;       /* in its bucket */
	struct cache_entry *prev, *next; /* most recently used first */
	uint64_t hash;
	double expires; /* clock_mono */
	size_t size;    /* counted against CACHE_BYTES */
	int family;     /* asked for */
	int status;     /* ARES_SUCCESS, ARES_ENOTFOUND or ARES_ENODATA */
	size_t n;
	union cache_addr addrs[]; /* n of them, then the name */
};

/* What a channel is made from, looked at for changes. */
static const char *const files[2] = {RESOLV_CONF, HOSTS};

static pthread_mutex_t servers_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sockaddr_storage *servers;
static size_t nservers;
static atomic_uint servers_gen;

static struct {
	pthread_mutex_t lock;
	struct cache_entry **buckets;
	size_t nbuckets; /* a power of two, or 0 */
	size_t n, bytes;
	struct cache_entry *head, *tail;
	uint64_t seed;
	atomic_uint epoch; /* moves on at each flush */
} cache = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0, 0, NULL, NULL, 0, 0};

/* ---- the answer cache -------------------------------------------------- */

static const char *
cache_host(const struct cache_entry *e)
{
	return (const char *)&e->addrs[e->n];
}

/* The name in lowercase into key; its length, or 0 when it is not cached. */
static size_t
cache_key(const char *host, char key[CACHE_HOST_MAX + 1])
{
	size_t i;

	for (i = 0; host[i] != '\0'; i++) {
		if (i == CACHE_HOST_MAX)
			return 0;
		key[i] = host[i] >= 'A' && host[i] <= 'Z'
		             ? (char)(host[i] - 'A' + 'a')
		             : host[i];
	}
	key[i] = '\0';
	return i;
}

static uint64_t
cache_hash(const char *key, size_t len, int family)
{
	uint64_t h;

	h = hash_bytes(cache.seed, key, len);
	return hash_bytes(h, &family, sizeof family);
}

static void
cache_unlink(struct cache_entry *e)
{
	struct cache_entry **ep;

	for (ep = &cache.buckets[e->hash & (cache.nbuckets - 1)]; *ep != e;
	     ep = &(*ep)->hnext)
		;
	*ep = e->hnext;
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		cache.head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		cache.tail = e->prev;
	cache.n--;
	cache.bytes -= e->size;
	free(e);
}

static void
cache_front(struct cache_entry *e)
{
	if (cache.head == e)
		return;
	e->prev->next = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		cache.tail = e->prev;
	e->prev = NULL;
	e->next = cache.head;
	cache.head->prev = e;
	cache.head = e;
}

static struct cache_entry *
cache_find(const char *key, uint64_t hash, int family)
{
	struct cache_entry *e;

	if (cache.nbuckets == 0)
		return NULL;
	for (e = cache.buckets[hash & (cache.nbuckets - 1)]; e != NULL;
	     e = e->hnext)
		if (e->hash == hash && e->family == family &&
		    strcmp(cache_host(e), key) == 0)
			return e;
	return NULL;
}

/* A kept answer to host for family into a, port set; 0 when none is kept. */
static int
cache_get(
    const char *host, int family, int port, double now, struct dns_answer *a)
{
	char key[CACHE_HOST_MAX + 1];
	struct cache_entry *e;
	size_t len, i;
	uint64_t hash;

	if ((len = cache_key(host, key)) == 0)
		return 0;
	pthread_mutex_lock(&cache.lock);
	hash = cache_hash(key, len, family);
	if ((e = cache_find(key, hash, family)) == NULL) {
		pthread_mutex_unlock(&cache.lock);
		return 0;
	}
	if (now >= e->expires) {
		cache_unlink(e);
		pthread_mutex_unlock(&cache.lock);
		return 0;
	}
	cache_front(e);
	a->local_errno = 0;
	a->n = e->n;
	a->error = e->n == 0 ? ares_strerror(e->status) : NULL;
	for (i = 0; i < e->n; i++) {
		memset(&a->addrs[i], 0, sizeof a->addrs[i]);
		if (e->addrs[i].sa.sa_family == AF_INET6) {
			memcpy(&a->addrs[i], &e->addrs[i].sin6,
			    sizeof e->addrs[i].sin6);
			((struct sockaddr_in6 *)&a->addrs[i])->sin6_port =
			    htons((uint16_t)port);
		} else {
			memcpy(&a->addrs[i], &e->addrs[i].sin,
			    sizeof e->addrs[i].sin);
			((struct sockaddr_in *)&a->addrs[i])->sin_port =
			    htons((uint16_t)port);
		}
	}
	pthread_mutex_unlock(&cache.lock);
	return 1;
}

static void
cache_grow(void)
{
	struct cache_entry **b, *e, *next;
	size_t i, nb;

	nb = cache.nbuckets == 0 ? 64 : cache.nbuckets * 2;
	b = xreallocarray(NULL, nb, sizeof *b);
	memset(b, 0, nb * sizeof *b);
	for (i = 0; i < cache.nbuckets; i++)
		for (e = cache.buckets[i]; e != NULL; e = next) {
			next = e->hnext;
			e->hnext = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
		}
	free(cache.buckets);
	cache.buckets = b;
	cache.nbuckets = nb;
}

/*
 * Keep the answer a (status from c-ares, ttl seconds) to host for family,
 * unless the cache was emptied since epoch: it came from servers or files
 * since replaced.
 */
static void
cache_put(const char *host, int family, int status, double ttl,
    const struct dns_answer *a, unsigned epoch, double now)
{
	char key[CACHE_HOST_MAX + 1];
	struct cache_entry *e, *old;
	size_t len, i, size;

	if (ttl <= 0 || (len = cache_key(host, key)) == 0)
		return;
	if (ttl > CACHE_TTL_MAX)
		ttl = CACHE_TTL_MAX;
	size = sizeof *e + a->n * sizeof e->addrs[0] + len + 1;
	e = xmalloc(size);
	memset(e, 0, sizeof *e);
	e->expires = now + ttl;
	e->size = size;
	e->family = family;
	e->status = status;
	e->n = a->n;
	for (i = 0; i < a->n; i++) {
		memset(&e->addrs[i], 0, sizeof e->addrs[i]);
		memcpy(&e->addrs[i], &a->addrs[i],
		    a->addrs[i].ss_family == AF_INET6 ? sizeof e->addrs[i].sin6
		                                      : sizeof e->addrs[i].sin);
	}
	memcpy((char *)&e->addrs[e->n], key, len + 1);

	pthread_mutex_lock(&cache.lock);
	if (atomic_load(&cache.epoch) != epoch) {
		pthread_mutex_unlock(&cache.lock);
		free(e);
		return;
	}
	e->hash = cache_hash(key, len, family);
	if ((old = cache_find(key, e->hash, family)) != NULL)
		cache_unlink(old);
	while (cache.tail != NULL && cache.bytes + size > CACHE_BYTES)
		cache_unlink(cache.tail);
	if (cache.n >= cache.nbuckets)
		cache_grow();
	e->hnext = cache.buckets[e->hash & (cache.nbuckets - 1)];
	cache.buckets[e->hash & (cache.nbuckets - 1)] = e;
	e->next = cache.head;
	if (cache.head != NULL)
		cache.head->prev = e;
	else
		cache.tail = e;
	cache.head = e;
	cache.n++;
	cache.bytes += size;
	pthread_mutex_unlock(&cache.lock);
}

/* Forget every answer; those of lookups running are not kept either. */
static void
cache_flush(void)
{
	pthread_mutex_lock(&cache.lock);
	while (cache.head != NULL)
		cache_unlink(cache.head);
	free(cache.buckets);
	cache.buckets = NULL;
	cache.nbuckets = 0;
	atomic_fetch_add(&cache.epoch, 1);
	pthread_mutex_unlock(&cache.lock);
}

int
dns_global_init(void)
{
	int rv;

	if ((rv = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS) {
		log_warnx("c-ares: %s", ares_strerror(rv));
		return -1;
	}
	/* Names may come from a hostile list: chains no one can foresee. */
	if (getrandom(&cache.seed, sizeof cache.seed, GRND_NONBLOCK) !=
	    (ssize_t)sizeof cache.seed)
		cache.seed =
		    (uint64_t)clock_mono() * 1000003u ^ (uint64_t)getpid();
	cache.seed ^= HASH_INIT;
	return 0;
}

void
dns_global_free(void)
{
	pthread_mutex_lock(&servers_lock);
	free(servers);
	servers = NULL;
	nservers = 0;
	pthread_mutex_unlock(&servers_lock);
	cache_flush();
	ares_library_cleanup();
}

void
dns_servers_set(const struct sockaddr_storage *ss, size_t n)
{
	pthread_mutex_lock(&servers_lock);
	if (n == nservers &&
	    (n == 0 || memcmp(servers, ss, n * sizeof *ss) == 0)) {
		pthread_mutex_unlock(&servers_lock);
		return;
	}
	free(servers);
	servers = NULL;
	if (n > 0) {
		servers = xreallocarray(NULL, n, sizeof *servers);
		memcpy(servers, ss, n * sizeof *ss);
	}
	nservers = n;
	atomic_fetch_add(&servers_gen, 1);
	pthread_mutex_unlock(&servers_lock);
}

/* ---- c-ares's sockets -------------------------------------------------- */

static ares_socket_t
sock_open(int domain, int type, int protocol, void *data)
{
	struct dns_chan *c = data;
	int fd;

	fd = socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
	if (fd == -1) {
		if (errno == EMFILE || errno == ENFILE) {
			c->emfile_at = clock_mono();
			c->emfile_errno = errno;
		}
		return ARES_SOCKET_BAD;
	}
	/* The kernel caps it (net.core.rmem_max) unless we may force it. */
	if (type == SOCK_DGRAM && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE,
	                              &(int){UDP_RCVBUF}, sizeof(int)) == -1)
		(void)setsockopt(
		    fd, SOL_SOCKET, SO_RCVBUF, &(int){UDP_RCVBUF}, sizeof(int));
	return fd;
}

static int
sock_close(ares_socket_t fd, void *data)
{
	return close(fd);
}

static int
sock_connect(
    ares_socket_t fd, const struct sockaddr *sa, ares_socklen_t len, void *data)
{
	return connect(fd, sa, len);
}

static ares_ssize_t
sock_recvfrom(ares_socket_t fd, void *buf, size_t len, int flags,
    struct sockaddr *from, ares_socklen_t *fromlen, void *data)
{
	return recvfrom(fd, buf, len, flags, from, fromlen);
}

static ares_ssize_t
sock_sendv(ares_socket_t fd, const struct iovec *iov, int n, void *data)
{
	struct msghdr m;

	memset(&m, 0, sizeof m);
	m.msg_iov = (struct iovec *)(uintptr_t)iov;
	m.msg_iovlen = (size_t)n;
	return sendmsg(fd, &m, MSG_NOSIGNAL);
}

static const struct ares_socket_functions sock_funcs = {
    sock_open, sock_close, sock_connect, sock_recvfrom, sock_sendv};

/* c-ares says which of its sockets to watch, and for what. */
static void
sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns_chan *c = data;
	struct dns *d = c->dns;
	struct dns_sock *s, **sp;
	struct epoll_event ev;

	for (sp = &c->socks; (s = *sp) != NULL; sp = &s->next)
		if (s->fd == fd)
			break;
	if (!readable && !writable) {
		if (s == NULL)
			return;
		(void)epoll_ctl(d->ep, EPOLL_CTL_DEL, fd, NULL);
		*sp = s->next;
		s->fd = -1;
		s->next = d->dead;
		d->dead = s;
		return;
	}
	memset(&ev, 0, sizeof ev);
	ev.events = (readable ? EPOLLIN : 0) | (writable ? EPOLLOUT : 0);
	if (s != NULL) {
		ev.data.ptr = s;
		if (epoll_ctl(d->ep, EPOLL_CTL_MOD, fd, &ev) == -1)
			log_warn("epoll_ctl (DNS socket)");
		return;
	}
	s = xcalloc(1, sizeof *s);
	s->fd = fd;
	s->chan = c;
	s->next = c->socks;
	c->socks = s;
	ev.data.ptr = s;
	/* Unwatched, the lookup ends at c-ares's timeout. */
	if (epoll_ctl(d->ep, EPOLL_CTL_ADD, fd, &ev) == -1)
		log_warn("epoll_ctl (DNS socket)");
}

/* ---- channels ---------------------------------------------------------- */

static struct dns_chan *
chan_new(struct dns *d)
{
	struct ares_options o;
	struct ares_addr_port_node *nodes = NULL;
	struct dns_chan *c;
	size_t i;
	int mask, rv = ARES_SUCCESS;

	c = xcalloc(1, sizeof *c);
	c->dns = d;
	c->emfile_at = -1;
	memset(&o, 0, sizeof o);
	o.sock_state_cb = sock_state;
	o.sock_state_cb_data = c;
	o.timeout = QUERY_TIMEOUT_MS;
	o.tries = QUERY_TRIES;
	if ((rv = ares_init_options(&c->ch, &o,
	         ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS |
	             ARES_OPT_TRIES)) != ARES_SUCCESS) {
		log_warnx(
		    "c-ares: cannot start a resolver: %s", ares_strerror(rv));
		free(c);
		return NULL;
	}
	ares_set_socket_functions(c->ch, &sock_funcs, c);
	memset(&o, 0, sizeof o);
	if (ares_save_options(c->ch, &o, &mask) == ARES_SUCCESS) {
		c->hosts_first = o.lookups != NULL && o.lookups[0] == 'f';
		ares_destroy_options(&o);
	}

	d->checked = clock_mono();
	for (i = 0; i < 2; i++)
		d->files_errno[i] =
		    stat(files[i], &d->files[i]) == -1 ? errno : 0;
	c->epoch = atomic_load(&cache.epoch);
	pthread_mutex_lock(&servers_lock);
	d->gen = atomic_load(&servers_gen);
	if (nservers > 0) {
		nodes = xcalloc(nservers, sizeof *nodes);
		for (i = 0; i < nservers; i++) {
			const struct sockaddr_storage *ss = &servers[i];

			nodes[i].next = i + 1 < nservers ? &nodes[i + 1] : NULL;
			nodes[i].family = ss->ss_family;
			if (ss->ss_family == AF_INET6) {
				const struct sockaddr_in6 *s6 =
				    (const void *)ss;

				memcpy(&nodes[i].addr.addr6, &s6->sin6_addr,
				    sizeof s6->sin6_addr);
				nodes[i].udp_port = nodes[i].tcp_port =
				    ntohs(s6->sin6_port);
			} else {
				const struct sockaddr_in *s4 = (const void *)ss;

				nodes[i].addr.addr4 = s4->sin_addr;
				nodes[i].udp_port = nodes[i].tcp_port =
				    ntohs(s4->sin_port);
			}
		}
		rv = ares_set_servers_ports(c->ch, nodes);
	}
	pthread_mutex_unlock(&servers_lock);
	free(nodes);
	if (rv != ARES_SUCCESS)
		log_warnx("c-ares: cannot use the resolver addresses: %s",
		    ares_strerror(rv));
	return c;
}

/* Destroy a channel; its pending lookups are called back with nothing. */
static void
chan_free(struct dns_chan *c)
{
	struct dns_sock *s, *next;

	ares_destroy(c->ch);
	for (s = c->socks; s != NULL; s = next) {
		next = s->next;
		free(s);
	}
	free(c);
}

/* The name of the first of resolv.conf and hosts changed, or NULL. */
static const char *
files_changed(struct dns *d)
{
	struct stat st;
	size_t i;
	int err;

	for (i = 0; i < 2; i++) {
		err = stat(files[i], &st) == -1 ? errno : 0;
		if (err != d->files_errno[i])
			return files[i];
		if (err == 0 &&
		    (st.st_ino != d->files[i].st_ino ||
		        st.st_size != d->files[i].st_size ||
		        st.st_mtim.tv_sec != d->files[i].st_mtim.tv_sec ||
		        st.st_mtim.tv_nsec != d->files[i].st_mtim.tv_nsec))
			return files[i];
	}
	return NULL;
}

/*
 * Retire the channel when what it was made from has changed, emptying
 * the cache of what it answered; or when another loop's resolver saw a
 * change first and emptied the cache.
 */
static void
dns_refresh(struct dns *d, double now)
{
	const char *file;

	if (d->cur == NULL)
		return;
	/* A channel made short of descriptors may lack resolv.conf. */
	if (d->cur->suspect)
		log_info("resolver: starting afresh after a shortage of file "
		         "descriptors");
	else if (atomic_load(&servers_gen) != d->gen)
		cache_flush();
	else if (d->cur->epoch == atomic_load(&cache.epoch)) {
		if (now - d->checked < RESOLV_CHECK)
			return;
		d->checked = now;
		if ((file = files_changed(d)) == NULL)
			return;
		log_info("%s changed; resolving with it from now on", file);
		cache_flush();
	}
	if (d->cur->pending == 0)
		chan_free(d->cur);
	else {
		d->cur->next = d->retired;
		d->retired = d->cur;
	}
	d->cur = NULL;
}

/* ---- the resolver of one loop ------------------------------------------ */

struct dns *
dns_new(void)
{
	struct dns *d;

	d = xcalloc(1, sizeof *d);
	if ((d->ep = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		log_warn("epoll_create1 (resolver)");
		free(d);
		return NULL;
	}
	d->next_timeout = -1;
	return d;
}

void
dns_free(struct dns *d)
{
	struct dns_chan *c, *next;
	struct dns_sock *s, *snext;

	if (d == NULL)
		return;
	d->freeing = 1;
	if (d->cur != NULL)
		chan_free(d->cur);
	for (c = d->retired; c != NULL; c = next) {
		next = c->next;
		chan_free(c);
	}
	for (s = d->dead; s != NULL; s = snext) {
		snext = s->next;
		free(s);
	}
	close(d->ep);
	free(d);
}

int
dns_fd(const struct dns *d)
{
	return d->ep;
}

/*
 * EMFILE or ENFILE when this process is out of descriptors now, or a
 * socket for c-ares was refused one since `since`; else 0. c-ares also
 * opens files (hosts, resolv.conf) and says nothing of why they failed,
 * hence the probe with a duplicate.
 */
static int
fd_shortage(struct dns_chan *c, double since)
{
	int fd;

	if (c->emfile_at >= 0 && c->emfile_at >= since)
		return c->emfile_errno;
	if ((fd = fcntl(c->dns->ep, F_DUPFD_CLOEXEC, 0)) == -1)
		return errno == EMFILE || errno == ENFILE ? errno : 0;
	close(fd);
	return 0;
}

/*
 * Seconds the answer ai of c to a lookup of host in family holds: its
 * records' shortest TTL; a name from /etc/hosts (TTL 0) until the file
 * changes, which empties the cache; 0 for none.
 */
static double
answer_ttl(const struct dns_chan *c, const char *host, int family,
    const struct ares_addrinfo *ai)
{
	const struct ares_addrinfo_node *n;
	const struct ares_addrinfo_cname *cn;
	struct hostent *he = NULL;
	int ttl = -1;

	for (n = ai->nodes; n != NULL; n = n->ai_next)
		if (ttl < 0 || n->ai_ttl < ttl)
			ttl = n->ai_ttl;
	for (cn = ai->cnames; cn != NULL; cn = cn->next)
		if (cn->ttl < ttl)
			ttl = cn->ttl;
	if (ttl > 0)
		return ttl;
	if (c->hosts_first &&
	    ares_gethostbyname_file(c->ch, host, family, &he) == ARES_SUCCESS) {
		ares_free_hostent(he);
		return CACHE_TTL_MAX;
	}
	return 0;
}

static void
lookup_done(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
	struct dns_query *q = arg;
	struct dns_chan *c = q->chan;
	struct dns_answer a;
	struct ares_addrinfo_node *n;

	c->pending--;
	c->dns->pending--;
	if (!c->dns->freeing) {
		a.n = 0;
		a.local_errno = 0;
		a.error = NULL;
		if (status == ARES_SUCCESS && ai != NULL) {
			for (n = ai->nodes; n != NULL && a.n < DNS_ADDRS_MAX;
			     n = n->ai_next) {
				if ((n->ai_family != AF_INET &&
				        n->ai_family != AF_INET6) ||
				    n->ai_addrlen > sizeof a.addrs[0])
					continue;
				memset(&a.addrs[a.n], 0, sizeof a.addrs[0]);
				memcpy(
				    &a.addrs[a.n], n->ai_addr, n->ai_addrlen);
				a.n++;
			}
		}
		if (a.n == 0) {
			a.error = status == ARES_SUCCESS
			              ? "no address of the family asked for"
			              : ares_strerror(status);
			/* No server could be asked: was it us? */
			if (status != ARES_SUCCESS &&
			    status != ARES_ENOTFOUND &&
			    status != ARES_ENODATA && status != ARES_ETIMEOUT &&
			    (a.local_errno = fd_shortage(c, q->started)) != 0)
				c->suspect = 1;
		}
		if (a.n > 0)
			cache_put(q->host, q->family, status,
			    answer_ttl(c, q->host, q->family, ai), &a, c->epoch,
			    clock_mono());
		else if (status == ARES_ENOTFOUND || status == ARES_ENODATA)
			cache_put(q->host, q->family, status, CACHE_NEG_TTL, &a,
			    c->epoch, clock_mono());
		if (q->done != NULL)
			q->done(q->arg, &a);
	}
	if (ai != NULL)
		ares_freeaddrinfo(ai);
	if (q->in_lookup)
		q->finished = 1;
	else
		free(q);
}

/*
 * "localhost" over IPv6 is ::1 (RFC 6761 6.3), as c-ares answers it:
 * from /etc/hosts, or made up when the file names localhost for IPv4
 * only. Answered here, because c-ares 1.18 (Debian 12) leaks the name (10
 * bytes) at each lookup it makes up: a capsule probed at localhost with
 * address-family=ipv6 would leak at every probe.
 */
static int
localhost6(const char *host, int family, int port, struct dns_answer *a)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->addrs[0];

	if (family != AF_INET6 || strcasecmp(host, "localhost") != 0)
		return 0;
	memset(a, 0, sizeof *a);
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons((uint16_t)port);
	sin6->sin6_addr = in6addr_loopback;
	a->n = 1;
	return 1;
}

struct dns_query *
dns_lookup(struct dns *d, const char *host, int port, int family,
    dns_done_fn *done, void *arg)
{
	struct ares_addrinfo_hints hints;
	struct dns_answer a;
	struct dns_query *q;
	char service[8];
	double now = clock_mono();

	dns_refresh(d, now);
	if (cache_get(host, family, port, now, &a) ||
	    localhost6(host, family, port, &a)) {
		done(arg, &a);
		return NULL;
	}
	if (d->cur == NULL && (d->cur = chan_new(d)) == NULL) {
		a.n = 0;
		a.local_errno = 0;
		a.error = "the resolver cannot start";
		done(arg, &a);
		return NULL;
	}
	q = xcalloc(1, sizeof *q + strlen(host) + 1);
	memcpy(q->host, host, strlen(host) + 1);
	q->family = family;
	q->chan = d->cur;
	q->done = done;
	q->arg = arg;
	q->started = now;
	q->in_lookup = 1;
	d->cur->pending++;
	d->pending++;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	hints.ai_flags = ARES_AI_NUMERICSERV;
	snprintf(service, sizeof service, "%d", port);
	ares_getaddrinfo(d->cur->ch, host, service, &hints, lookup_done, q);
	if (q->finished) {
		free(q);
		return NULL;
	}
	q->in_lookup = 0;
	if (d->next_timeout < 0 || d->next_timeout > now + TIMEOUT_GRAIN)
		d->next_timeout = now + TIMEOUT_GRAIN;
	return q;
}

void
dns_cancel(struct dns_query *q)
{
	if (q != NULL)
		q->done = NULL;
}

static void
dns_timeouts(struct dns *d, double now)
{
	struct dns_chan *c;
	struct timeval tv, *tvp;
	double t, best = -1;

	for (c = d->cur != NULL ? d->cur : d->retired; c != NULL;
	     c = c == d->cur ? d->retired : c->next) {
		if (c->pending == 0)
			continue;
		if ((tvp = ares_timeout(c->ch, NULL, &tv)) == NULL)
			continue;
		t = now + (double)tvp->tv_sec + (double)tvp->tv_usec / 1e6;
		if (best < 0 || t < best)
			best = t;
	}
	if (best >= 0 && best > now + TIMEOUT_GRAIN)
		best = now + TIMEOUT_GRAIN;
	d->next_timeout = d->pending > 0 ? best : -1;
}

double
dns_next(struct dns *d, double now)
{
	if (d->pending == 0 || d->next_timeout < 0)
		return -1;
	return d->next_timeout > now ? d->next_timeout - now : 0;
}

void
dns_process(struct dns *d, double now)
{
	struct epoll_event ev[EVENTS_MAX];
	struct dns_chan *c, **cp;
	struct dns_sock *s, *next;
	int i, n, r, w;

	n = epoll_wait(d->ep, ev, EVENTS_MAX, 0);
	for (i = 0; i < n; i++) {
		s = ev[i].data.ptr;
		if (s->fd == -1)
			continue; /* closed while handling another */
		r = (ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0;
		w = (ev[i].events & EPOLLOUT) != 0;
		ares_process_fd(s->chan->ch, r ? s->fd : ARES_SOCKET_BAD,
		    w ? s->fd : ARES_SOCKET_BAD);
	}
	if (n > 0 || (d->next_timeout >= 0 && now >= d->next_timeout)) {
		for (c = d->cur != NULL ? d->cur : d->retired; c != NULL;
		     c = c == d->cur ? d->retired : c->next)
			if (c->pending > 0)
				ares_process_fd(
				    c->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
		dns_timeouts(d, now);
	}
	for (s = d->dead; s != NULL; s = next) {
		next = s->next;
		free(s);
	}
	d->dead = NULL;
	for (cp = &d->retired; (c = *cp) != NULL;) {
		if (c->pending == 0) {
			*cp = c->next;
			chan_free(c);
		} else
			cp = &c->next;
	}
}
