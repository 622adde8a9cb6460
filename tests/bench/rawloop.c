/*
 * rawloop - the floor for tests/bench/run.sh: N Gemini requests in a loop
 * made of nothing but the GnuTLS calls a probe cannot do without. Each
 * round connects (blocking TCP, TCP_NODELAY like gemwatch), handshakes with
 * the default priorities and empty certificate credentials (no
 * verification), sends "URL\r\n", reads to the end of the response, sends
 * its own close_notify and closes. It times the same phases gemwatch
 * reports (connect, tls, header, body, total) and prints, as key=value
 * lines, the count, how many ended 20 + close_notify, its own CPU time
 * (getrusage) and the median and mean of each phase. With -r it paces
 * itself to RATE requests per second, sleeping between them, so that it
 * can be compared with a daemon probing at that rate (an idle CPU between
 * probes makes each one dearer: cold caches, wake-ups). When HOST is not
 * an IPv4 address, each round resolves it first with getaddrinfo, as a
 * plain client would, connects to the first address that accepts, and
 * sends the name as SNI.
 * Errors end the program: the floor must not quietly measure failures.
 *
 *	rawloop [-n N] [-r RATE] HOST PORT URL
 */
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { P_CONNECT, P_TLS, P_HEADER, P_BODY, P_TOTAL, P__COUNT };

/* HOST and PORT when HOST is a name to resolve every round, else NULL. */
static const char *name, *service;

static const char *phase_names[P__COUNT] = {
    "connect", "tls", "header", "body", "total"};

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
die(const char *what, int rv)
{
	fprintf(stderr, "rawloop: %s: %s\n", what,
	    rv < 0 ? gnutls_strerror(rv) : strerror(errno));
	exit(1);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* One request; fills dur[] and returns 1 for a 20 ended by close_notify. */
static int
one(gnutls_certificate_credentials_t creds, const struct sockaddr_in *sin,
    const char *req, size_t reqlen, double dur[P__COUNT])
{
	gnutls_session_t s;
	char buf[16384], head[3] = "";
	double t0, t1, t2, t3 = 0, t4;
	ssize_t n;
	size_t got = 0;
	int fd, rv, nodelay = 1, header_seen = 0, ok;

	t0 = now();
	if (name != NULL) {
		struct addrinfo hints, *res, *ai;

		memset(&hints, 0, sizeof hints);
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV;
		if ((rv = getaddrinfo(name, service, &hints, &res)) != 0) {
			fprintf(stderr, "rawloop: %s: %s\n", name,
			    gai_strerror(rv));
			exit(1);
		}
		for (fd = -1, ai = res; ai != NULL && fd == -1;
		     ai = ai->ai_next) {
			if ((fd = socket(ai->ai_family,
			         ai->ai_socktype | SOCK_CLOEXEC,
			         ai->ai_protocol)) == -1)
				continue;
			if (connect(fd, ai->ai_addr, ai->ai_addrlen) == -1) {
				close(fd);
				fd = -1;
			}
		}
		freeaddrinfo(res);
		if (fd == -1)
			die("connect", 0);
	} else {
		if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
			die("socket", 0);
		if (connect(fd, (const struct sockaddr *)sin, sizeof *sin) ==
		    -1)
			die("connect", 0);
	}
	(void)setsockopt(
	    fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, sizeof nodelay);
	t1 = now();

	if ((rv = gnutls_init(&s, GNUTLS_CLIENT)) < 0)
		die("gnutls_init", rv);
	if ((rv = gnutls_set_default_priority(s)) < 0)
		die("priority", rv);
	if ((rv = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, creds)) < 0)
		die("credentials", rv);
	/* A name goes out as SNI, as every Gemini client sends it. */
	if (name != NULL && (rv = gnutls_server_name_set(
	                         s, GNUTLS_NAME_DNS, name, strlen(name))) < 0)
		die("server name", rv);
	gnutls_transport_set_int(s, fd);
	do
		rv = gnutls_handshake(s);
	while (rv < 0 && !gnutls_error_is_fatal(rv));
	if (rv < 0)
		die("handshake", rv);
	t2 = now();

	do
		n = gnutls_record_send(s, req, reqlen);
	while (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED);
	if (n < 0)
		die("send", (int)n);
	for (;;) {
		n = gnutls_record_recv(s, buf, sizeof buf);
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			continue;
		if (n <= 0)
			break;
		if (got < 2)
			memcpy(head + got, buf,
			    (size_t)n < 2 - got ? (size_t)n : 2 - got);
		got += (size_t)n;
		/* The header ends at the first LF. */
		if (!header_seen && memchr(buf, '\n', (size_t)n) != NULL) {
			header_seen = 1;
			t3 = now();
		}
	}
	t4 = now();
	if (!header_seen)
		t3 = t4;
	ok = n == 0 && strcmp(head, "20") == 0;
	do
		rv = gnutls_bye(s, GNUTLS_SHUT_WR);
	while (rv == GNUTLS_E_AGAIN || rv == GNUTLS_E_INTERRUPTED);
	gnutls_deinit(s);
	close(fd);

	dur[P_CONNECT] = t1 - t0;
	dur[P_TLS] = t2 - t1;
	dur[P_HEADER] = t3 - t2;
	dur[P_BODY] = t4 - t3;
	dur[P_TOTAL] = t4 - t0;
	return ok;
}

/*
 * Resident memory now, whole and anonymous (kB), from /proc/self/status:
 * the floor for a TLS prober's RSS, shared libraries included.
 */
static void
print_memory(void)
{
	char line[256];
	FILE *f;
	long kb;

	if ((f = fopen("/proc/self/status", "r")) == NULL)
		return;
	while (fgets(line, sizeof line, f) != NULL) {
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			printf("rss_kb=%ld\n", kb);
		else if (sscanf(line, "RssAnon: %ld", &kb) == 1)
			printf("rss_anon_kb=%ld\n", kb);
	}
	fclose(f);
}

int
main(int argc, char *argv[])
{
	gnutls_certificate_credentials_t creds;
	struct sockaddr_in sin;
	struct rusage ru;
	double *dur[P__COUNT], d[P__COUNT], sum, t0, wall;
	double rate = 0, next, left;
	struct timespec ts;
	char *req;
	size_t reqlen;
	long n = 1000, i, ok = 0;
	int ch, p, rv;

	while ((ch = getopt(argc, argv, "n:r:")) != -1) {
		switch (ch) {
		case 'n':
			n = strtol(optarg, NULL, 10);
			break;
		case 'r':
			rate = strtod(optarg, NULL);
			break;
		default:
			goto usage;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 3 || n < 1 || rate < 0)
		goto usage;
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)atoi(argv[1]));
	if (inet_pton(AF_INET, argv[0], &sin.sin_addr) != 1) {
		name = argv[0];
		service = argv[1];
	}
	reqlen = strlen(argv[2]) + 2;
	if ((req = malloc(reqlen + 1)) == NULL)
		die("malloc", 0);
	snprintf(req, reqlen + 1, "%s\r\n", argv[2]);

	if ((rv = gnutls_global_init()) < 0)
		die("gnutls_global_init", rv);
	if ((rv = gnutls_certificate_allocate_credentials(&creds)) < 0)
		die("credentials", rv);
	for (p = 0; p < P__COUNT; p++)
		if ((dur[p] = calloc((size_t)n, sizeof *dur[p])) == NULL)
			die("calloc", 0);

	t0 = next = now();
	for (i = 0; i < n; i++) {
		if (rate > 0) {
			if ((left = next - now()) > 0) {
				ts.tv_sec = (time_t)left;
				ts.tv_nsec =
				    (long)((left - (double)ts.tv_sec) * 1e9);
				nanosleep(&ts, NULL);
			}
			next += 1 / rate;
		}
		ok += one(creds, &sin, req, reqlen, d);
		for (p = 0; p < P__COUNT; p++)
			dur[p][i] = d[p];
	}
	wall = now() - t0;
	getrusage(RUSAGE_SELF, &ru);

	printf("probes=%ld\nok=%ld\nwall=%.6f\n", n, ok, wall);
	print_memory();
	printf("cpu=%.6f\n",
	    (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	        (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
	for (p = 0; p < P__COUNT; p++) {
		for (i = 0, sum = 0; i < n; i++)
			sum += dur[p][i];
		qsort(dur[p], (size_t)n, sizeof *dur[p], cmp_double);
		printf("median_%s=%.6f\nmean_%s=%.6f\n", phase_names[p],
		    dur[p][n / 2], phase_names[p], sum / (double)n);
		free(dur[p]);
	}
	gnutls_certificate_free_credentials(creds);
	gnutls_global_deinit();
	free(req);
	return ok == n ? 0 : 1;
usage:
	fprintf(stderr, "usage: rawloop [-n N] [-r RATE] HOST PORT URL\n");
	return 2;
}
