/*
 * Name resolution without a thread per lookup: c-ares on an event loop.
 * Each loop owns one struct dns (c-ares channels are not thread-safe);
 * its sockets sit on an epoll descriptor of its own, which the loop
 * watches for readability like any other. /etc/hosts and resolv.conf are
 * read as the C library would; `resolver` servers replace resolv.conf's.
 * Answers are kept for their TTL in one cache for the process.
 */
#ifndef GEMWATCH_DNS_H
#define GEMWATCH_DNS_H

#include <sys/socket.h>
#include <stddef.h>

#define DNS_ADDRS_MAX 32 /* addresses kept from one answer */

struct dns_answer {
	struct sockaddr_storage addrs[DNS_ADDRS_MAX];
	size_t n;          /* 0: failed */
	int local_errno;   /* EMFILE/ENFILE: our own fault, else 0 */
	const char *error; /* static, when n == 0 */
};

/*
 * Called once when a lookup ends (never after dns_cancel); the answer is
 * valid during the call. May be called from within dns_lookup (names from
 * /etc/hosts, answers from the cache) or dns_process.
 */
typedef void dns_done_fn(void *arg, const struct dns_answer *);

struct dns;
struct dns_query;

/* Process-wide: c-ares's own start-up, the cache; 0 or -1 (logged). */
int dns_global_init(void);
void dns_global_free(void);
/*
 * Process-wide: the DNS servers to ask instead of resolv.conf's (n == 0:
 * resolv.conf's again). Channels follow from their next lookup; lookups
 * already running finish where they started.
 */
void dns_servers_set(const struct sockaddr_storage *, size_t n);

/* A resolver for one loop thread; NULL (logged) when c-ares cannot start. */
struct dns *dns_new(void);
/* Free everything; the callbacks of lookups still running are never called. */
void dns_free(struct dns *);
/* Readable when dns_process has work (poll it for POLLIN/EPOLLIN). */
int dns_fd(const struct dns *);
/*
 * Look host:port up for family (AF_UNSPEC, AF_INET, AF_INET6). Returns a
 * handle for dns_cancel, valid until done is called; NULL when done was
 * called already from within.
 */
struct dns_query *dns_lookup(struct dns *, const char *host, int port,
    int family, dns_done_fn *done, void *arg);
/* Forget a lookup: its callback will not be called. */
void dns_cancel(struct dns_query *);
/* Seconds from now until dns_process must run although dns_fd is quiet; -1:
 * never. */
double dns_next(struct dns *, double now);
/* Handle whatever is ready on dns_fd and c-ares's timeouts. */
void dns_process(struct dns *, double now);

#endif
