/*
 * gemserver - a deliberately misbehaving Gemini server for the gemwatch test
 * suite. It listens on the loopback address, generates (or loads) its
 * certificates in-process with the GnuTLS x509 API, and answers each request
 * according to its path so that tests can reproduce every way a Gemini server
 * can end, or fail to end, a response: close_notify, TCP close at a record
 * boundary, TCP close in the middle of a record, TCP reset, stalls, trickles,
 * malformed headers, fatal alerts, key update floods and so on. The -m option
 * picks a behaviour that applies before or instead of request handling (plain
 * text, stalled handshake, TLS 1.2 only, a TLS terminator in front of a
 * plain-TCP backend, ...) and -c picks a certificate
 * shape (expired, not yet valid, a 50-certificate chain, a huge leaf). Run
 * with -h for the full list. Each connection is served by its own detached
 * thread; SIGTERM or SIGINT stop the server cleanly.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#define MAX_CONNS 2000     /* concurrent connections */
#define HOLD_MS 120000     /* longest any stall is held */
#define REQUEST_MS 30000   /* time for handshake and request */
#define LINGER_MS 2000     /* time for the client to close after us */
#define PLAIN_WAIT_MS 500  /* plain mode: wait for more after data */
#define SEND_TIMEOUT_S 120 /* a blocked send gives up after this */
#define STOP_WAIT_MS 5000  /* time for threads to end at exit */
#define THREAD_STACK (512 * 1024)
#define MAX_URL 1024
#define REQUEST_MAX (MAX_URL + 2) /* URL + CRLF */
#define CHAIN_LEN 50
#define HUGE_EXT_SIZE 60000 /* payload of the huge extension */
#define HUGE_EXT_OID "1.3.6.1.4.1.55555.1.1"
#define BIG_DEFAULT (5ULL * 1024 * 1024)
#define BIG_CHUNK 16384
#define DAY (24 * 60 * 60)

enum mode {
	MODE_NORMAL,
	MODE_TLS12,
	MODE_PLAIN,
	MODE_STALL_HANDSHAKE,
	MODE_ACCEPT_CLOSE,
	MODE_NEVER_SPEAK,
	MODE_NEVER_READ,
	MODE_TERMINATOR,
	MODE_CONFORM
};

static const char *mode_names[] = {"normal", "tls12", "plain",
    "stall-handshake", "accept-close", "never-speak", "never-read",
    "terminator", "conform", NULL};

/*
 * -m conform answers by the Gemini specification, strictly (gemwatch
 * diagnose passes every check); -b breaks one rule of it.
 */
enum brk {
	BRK_NONE,
	BRK_HEADER,          /* the root's header is malformed */
	BRK_REDIRECT,        /* the empty path is redirected to / */
	BRK_NOTFOUND_BODY,   /* 51 with a body */
	BRK_NOTFOUND_STATUS, /* 40 for a missing page */
	BRK_LF,              /* LF alone ends a request */
	BRK_PORT,            /* 53 when the URL names our own port */
	BRK_MAX1024,         /* 59 for a 1024-byte URL */
	BRK_MAX1025,         /* a URL of up to 2048 bytes is served */
	BRK_ANYPORT,         /* serves a URL for any port */
	BRK_ANYHOST,         /* serves a URL for any host */
	BRK_ANYSCHEME,       /* serves http, https, gopher URLs */
	BRK_LENIENT,         /* serves the root for anything unparsable */
	BRK_DOTDOT,          /* serves the root for .. segments */
	BRK_USERINFO,        /* serves a URL with userinfo */
	BRK_FRAGMENT,        /* serves a URL with a fragment */
	BRK_NO_CLOSE_NOTIFY, /* every answer ends without close_notify */
	BRK_SERIAL,          /* one connection at a time */
	BRK_NOMIME           /* the root's 20 has no MIME type */
};

static const char *break_names[] = {"none", "header", "redirect",
    "notfound-body", "notfound-status", "lf", "port", "max1024", "max1025",
    "anyport", "anyhost", "anyscheme", "lenient", "dotdot", "userinfo",
    "fragment", "no-close-notify", "serial", "nomime", NULL};

enum certmode {
	CERT_SELFSIGNED,
	CERT_EXPIRED,
	CERT_CHAIN50,
	CERT_HUGE,
	CERT_NOTYET
};

static const char *certmode_names[] = {
    "selfsigned", "expired", "chain50", "huge", "notyet", NULL};

struct conn {
	int fd;
	gnutls_session_t session;
	int cut;      /* cut the next record short */
	int cut_done; /* drop everything from now on */

	char line[REQUEST_MAX + 1]; /* request line */
	size_t linelen;
	char url[REQUEST_MAX + 1]; /* split copy */

	pthread_t tid;
	struct conn *prev;
	struct conn *next;
};

struct route {
	const char *path;
	int prefix;
	void (*fn)(struct conn *, const char *, const char *);
};

static int opt_family = AF_INET;
static int opt_port;
static enum mode opt_mode = MODE_NORMAL;
static enum certmode opt_certmode = CERT_SELFSIGNED;
static enum brk opt_break = BRK_NONE;
static int bound_port;
static const char *opt_cn = "localhost";
static const char *opt_keyfile;
static const char *opt_certfile;
static const char *opt_portfile;
static int opt_backend;              /* terminator: the backend's port */
static long long opt_idle_ms = 2000; /* terminator: its idle timeout */

static gnutls_certificate_credentials_t xcred;
static gnutls_priority_t tls12_prio;

static volatile sig_atomic_t got_signal;
static int signal_pipe[2] = {-1, -1};
static atomic_int stopping;

static pthread_mutex_t conns_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t conns_cond = PTHREAD_COND_INITIALIZER;
static struct conn *conns; /* live connections */
static struct conn *done;  /* finished, to be joined */
static int nconns;

static const char ok_body[] = "# hello\n"
                              "\n"
                              "This is the gemwatch test server.\n"
                              "=> /ok Again\n";

static void h_ok(struct conn *, const char *, const char *);
static void h_premature(struct conn *, const char *, const char *);
static void h_midrecord(struct conn *, const char *, const char *);
static void h_reset(struct conn *, const char *, const char *);
static void h_stall_header(struct conn *, const char *, const char *);
static void h_stall_body(struct conn *, const char *, const char *);
static void h_trickle(struct conn *, const char *, const char *);
static void h_malformed(struct conn *, const char *, const char *);
static void h_malformed2(struct conn *, const char *, const char *);
static void h_badstatus(struct conn *, const char *, const char *);
static void h_meta1024(struct conn *, const char *, const char *);
static void h_meta1025(struct conn *, const char *, const char *);
static void h_nocrlf(struct conn *, const char *, const char *);
static void h_lfonly(struct conn *, const char *, const char *);
static void h_nothing(struct conn *, const char *, const char *);
static void h_nothing_premature(struct conn *, const char *, const char *);
static void h_status(struct conn *, const char *, const char *);
static void h_error_premature(struct conn *, const char *, const char *);
static void h_big(struct conn *, const char *, const char *);
static void h_sni(struct conn *, const char *, const char *);
static void h_request(struct conn *, const char *, const char *);
static void h_garbage(struct conn *, const char *, const char *);
static void h_alert(struct conn *, const char *, const char *);
static void h_keyupdate(struct conn *, const char *, const char *);
static void h_endless(struct conn *, const char *, const char *);
static void h_body(struct conn *, const char *, const char *);
static void h_meta(struct conn *, const char *, const char *);
static void h_slow_header(struct conn *, const char *, const char *);

static const struct route routes[] = {{"/", 0, h_ok}, {"/ok", 0, h_ok},
    {"/premature", 0, h_premature}, {"/midrecord", 0, h_midrecord},
    {"/reset", 0, h_reset}, {"/stall-header", 0, h_stall_header},
    {"/stall-body", 0, h_stall_body}, {"/trickle", 0, h_trickle},
    {"/malformed", 0, h_malformed}, {"/malformed2", 0, h_malformed2},
    {"/badstatus", 0, h_badstatus}, {"/meta1024", 0, h_meta1024},
    {"/meta1025", 0, h_meta1025}, {"/nocrlf", 0, h_nocrlf},
    {"/lfonly", 0, h_lfonly}, {"/nothing", 0, h_nothing},
    {"/nothing-premature", 0, h_nothing_premature}, {"/status/", 1, h_status},
    {"/error-premature/", 1, h_error_premature}, {"/big", 0, h_big},
    {"/sni", 0, h_sni}, {"/request", 0, h_request},
    {"/garbage-after-close", 0, h_garbage}, {"/alert-mid-body", 0, h_alert},
    {"/keyupdate-flood", 0, h_keyupdate}, {"/endless-header", 0, h_endless},
    {"/body", 0, h_body}, {"/meta", 0, h_meta},
    {"/slow-header", 0, h_slow_header}, {NULL, 0, NULL}};

static void
usage(void)
{
	fprintf(stderr,
	    "usage: gemserver [-46h] [-p port] [-m mode] [-c certmode] "
	    "[-n cn]\n"
	    "                 [-K keyfile] [-C certfile] [-P portfile] "
	    "[-b port] [-i ms]\n"
	    "                 [-r rule]\n"
	    "\n"
	    "  -4, -6       listen on 127.0.0.1 (default) or ::1\n"
	    "  -p port      port to listen on (default 0, ephemeral); the "
	    "bound port\n"
	    "               is printed on stdout\n"
	    "  -P portfile  also write the bound port to this file\n"
	    "  -n cn        certificate common name and DNS/IP subjectAltName"
	    "\n"
	    "               (default localhost)\n"
	    "  -K keyfile   load the PEM key from this file, or generate it "
	    "there\n"
	    "  -C certfile  load the PEM certificate(s) from this file, or "
	    "generate\n"
	    "               them there\n"
	    "  -m mode      normal, tls12, plain, stall-handshake, "
	    "accept-close,\n"
	    "               never-speak, never-read, terminator, conform\n"
	    "  -b port      terminator: relay to this plain-TCP port on the "
	    "same\n"
	    "               loopback address\n"
	    "  -i ms        terminator: after this long without a byte either "
	    "way,\n"
	    "               send close_notify and close (default 2000), as "
	    "nginx,\n"
	    "               HAProxy and socat do at their idle timeout\n"
	    "  -r rule      with -m conform, break one rule: header, "
	    "redirect,\n"
	    "               notfound-body, notfound-status, lf, port, "
	    "max1024,\n"
	    "               max1025, anyport, anyhost, anyscheme, lenient,\n"
	    "               dotdot, userinfo, fragment, no-close-notify, "
	    "serial,\n"
	    "               nomime\n"
	    "  -c certmode  selfsigned, expired, chain50, huge, notyet\n"
	    "\n"
	    "paths: / /ok /premature /midrecord /reset /stall-header "
	    "/stall-body\n"
	    "  /trickle?ms=N&n=COUNT /malformed /malformed2 /badstatus "
	    "/meta1024\n"
	    "  /meta1025 /nocrlf /lfonly /nothing /nothing-premature "
	    "/status/NN\n"
	    "  /error-premature/NN /big?bytes=N /sni /request "
	    "/garbage-after-close\n"
	    "  /alert-mid-body /keyupdate-flood /endless-header "
	    "/body?text=TEXT\n"
	    "  /meta?text=TEXT"
	    " /slow-header?ms=N; anything else is 51 not found\n");
	exit(2);
}

static void __attribute__((format(printf, 1, 2))) warnx_(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "gemserver: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

static int
name_lookup(const char **names, const char *name)
{
	int i;

	for (i = 0; names[i] != NULL; i++) {
		if (strcmp(names[i], name) == 0)
			return (i);
	}
	return (-1);
}

/*
 * Certificates.
 */

static int
write_file_atomic(const char *path, const void *buf, size_t len, mode_t perm)
{
	char *tmp = NULL;
	const char *p = buf;
	ssize_t n;
	int fd = -1;

	if (asprintf(&tmp, "%s.tmp", path) == -1) {
		tmp = NULL;
		goto fail;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, perm);
	if (fd == -1)
		goto fail;
	while (len > 0) {
		n = write(fd, p, len);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		p += n;
		len -= n;
	}
	if (close(fd) == -1) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) == -1)
		goto fail;
	free(tmp);
	return (0);

fail:
	warnx_("%s: %s", tmp != NULL ? tmp : path, strerror(errno));
	if (fd != -1)
		close(fd);
	if (tmp != NULL) {
		unlink(tmp);
		free(tmp);
	}
	return (-1);
}

static int
key_generate(gnutls_x509_privkey_t *key)
{
	int r;

	if ((r = gnutls_x509_privkey_init(key)) < 0)
		goto fail;
	r = gnutls_x509_privkey_generate(*key, GNUTLS_PK_ECDSA,
	    GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
	if (r < 0) {
		gnutls_x509_privkey_deinit(*key);
		goto fail;
	}
	return (0);

fail:
	warnx_("generating key: %s", gnutls_strerror(r));
	*key = NULL;
	return (-1);
}

static int
key_load(const char *path, gnutls_x509_privkey_t *key)
{
	gnutls_datum_t data = {NULL, 0};
	int r;

	*key = NULL;
	if ((r = gnutls_load_file(path, &data)) < 0)
		goto fail;
	if ((r = gnutls_x509_privkey_init(key)) < 0)
		goto fail;
	r = gnutls_x509_privkey_import2(
	    *key, &data, GNUTLS_X509_FMT_PEM, NULL, 0);
	if (r < 0)
		goto fail;
	gnutls_free(data.data);
	return (0);

fail:
	warnx_("%s: %s", path, gnutls_strerror(r));
	gnutls_free(data.data);
	if (*key != NULL)
		gnutls_x509_privkey_deinit(*key);
	*key = NULL;
	return (-1);
}

static int
key_save(const char *path, gnutls_x509_privkey_t key)
{
	gnutls_datum_t data = {NULL, 0};
	int r;

	r = gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &data);
	if (r < 0) {
		warnx_("exporting key: %s", gnutls_strerror(r));
		return (-1);
	}
	r = write_file_atomic(path, data.data, data.size, 0600);
	gnutls_free(data.data);
	return (r);
}

static int
certs_load(const char *path, gnutls_x509_crt_t **certs, unsigned int *n)
{
	gnutls_datum_t data = {NULL, 0};
	int r;

	*certs = NULL;
	*n = 0;
	if ((r = gnutls_load_file(path, &data)) < 0)
		goto fail;
	r = gnutls_x509_crt_list_import2(
	    certs, n, &data, GNUTLS_X509_FMT_PEM, 0);
	if (r < 0)
		goto fail;
	gnutls_free(data.data);
	return (0);

fail:
	warnx_("%s: %s", path, gnutls_strerror(r));
	gnutls_free(data.data);
	*certs = NULL;
	*n = 0;
	return (-1);
}

static int
certs_save(const char *path, gnutls_x509_crt_t *certs, unsigned int n)
{
	gnutls_datum_t data;
	char *buf = NULL, *p;
	size_t len = 0;
	unsigned int i;
	int r;

	for (i = 0; i < n; i++) {
		r = gnutls_x509_crt_export2(
		    certs[i], GNUTLS_X509_FMT_PEM, &data);
		if (r < 0) {
			warnx_("exporting certificate: %s", gnutls_strerror(r));
			goto fail;
		}
		if ((p = realloc(buf, len + data.size)) == NULL) {
			gnutls_free(data.data);
			warnx_("out of memory");
			goto fail;
		}
		buf = p;
		memcpy(buf + len, data.data, data.size);
		len += data.size;
		gnutls_free(data.data);
	}
	r = write_file_atomic(path, buf, len, 0644);
	free(buf);
	return (r);

fail:
	free(buf);
	return (-1);
}

/*
 * Make a certificate for key, signed by issuer_key (with issuer's name) or
 * self-signed if issuer is NULL.
 */
static int
cert_make(gnutls_x509_crt_t *out, const char *cn, time_t not_before,
    time_t not_after, int ca, int huge, gnutls_x509_privkey_t key,
    gnutls_x509_crt_t issuer, gnutls_x509_privkey_t issuer_key)
{
	gnutls_x509_crt_t crt = NULL;
	unsigned char serial[16], id[64], ip[16];
	unsigned char *ext = NULL;
	size_t idlen;
	int r, iplen = 0;

	if ((r = gnutls_x509_crt_init(&crt)) < 0) {
		crt = NULL;
		goto fail;
	}
	if ((r = gnutls_x509_crt_set_version(crt, 3)) < 0)
		goto fail;

	if ((r = gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof serial)) < 0)
		goto fail;
	serial[0] = (serial[0] & 0x7f) | 0x40; /* positive, minimal DER */
	if ((r = gnutls_x509_crt_set_serial(crt, serial, sizeof serial)) < 0)
		goto fail;

	if ((r = gnutls_x509_crt_set_activation_time(crt, not_before)) < 0)
		goto fail;
	if ((r = gnutls_x509_crt_set_expiration_time(crt, not_after)) < 0)
		goto fail;

	r = gnutls_x509_crt_set_dn_by_oid(
	    crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn, strlen(cn));
	if (r < 0)
		goto fail;
	r = gnutls_x509_crt_set_dn_by_oid(crt,
	    GNUTLS_OID_X520_ORGANIZATION_NAME, 0, "gemwatch test",
	    strlen("gemwatch test"));
	if (r < 0)
		goto fail;
	if ((r = gnutls_x509_crt_set_key(crt, key)) < 0)
		goto fail;

	if (ca) {
		if ((r = gnutls_x509_crt_set_basic_constraints(crt, 1, -1)) < 0)
			goto fail;
		r = gnutls_x509_crt_set_key_usage(
		    crt, GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN |
		             GNUTLS_KEY_DIGITAL_SIGNATURE);
		if (r < 0)
			goto fail;
	} else {
		if ((r = gnutls_x509_crt_set_basic_constraints(crt, 0, -1)) < 0)
			goto fail;
		r = gnutls_x509_crt_set_key_usage(
		    crt, GNUTLS_KEY_DIGITAL_SIGNATURE);
		if (r < 0)
			goto fail;
		r = gnutls_x509_crt_set_key_purpose_oid(
		    crt, GNUTLS_KP_TLS_WWW_SERVER, 0);
		if (r < 0)
			goto fail;
		r = gnutls_x509_crt_set_subject_alt_name(crt,
		    GNUTLS_SAN_DNSNAME, cn, strlen(cn), GNUTLS_FSAN_APPEND);
		if (r < 0)
			goto fail;
		if (inet_pton(AF_INET, cn, ip) == 1)
			iplen = 4;
		else if (inet_pton(AF_INET6, cn, ip) == 1)
			iplen = 16;
		if (iplen != 0) {
			r = gnutls_x509_crt_set_subject_alt_name(crt,
			    GNUTLS_SAN_IPADDRESS, ip, iplen,
			    GNUTLS_FSAN_APPEND);
			if (r < 0)
				goto fail;
		}
	}

	if (huge) {
		/*
		 * An unrecognised non-critical extension holding a DER
		 * OCTET STRING of HUGE_EXT_SIZE bytes.
		 */
		if ((ext = malloc(HUGE_EXT_SIZE + 4)) == NULL) {
			r = GNUTLS_E_MEMORY_ERROR;
			goto fail;
		}
		ext[0] = 0x04;
		ext[1] = 0x82;
		ext[2] = (HUGE_EXT_SIZE >> 8) & 0xff;
		ext[3] = HUGE_EXT_SIZE & 0xff;
		memset(ext + 4, 'G', HUGE_EXT_SIZE);
		r = gnutls_x509_crt_set_extension_by_oid(
		    crt, HUGE_EXT_OID, ext, HUGE_EXT_SIZE + 4, 0);
		free(ext);
		ext = NULL;
		if (r < 0)
			goto fail;
	}

	idlen = sizeof id;
	r = gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA1, id, &idlen);
	if (r < 0)
		goto fail;
	if ((r = gnutls_x509_crt_set_subject_key_id(crt, id, idlen)) < 0)
		goto fail;
	if (issuer != NULL) {
		idlen = sizeof id;
		r = gnutls_x509_crt_get_subject_key_id(
		    issuer, id, &idlen, NULL);
		if (r < 0)
			goto fail;
	}
	if ((r = gnutls_x509_crt_set_authority_key_id(crt, id, idlen)) < 0)
		goto fail;

	if (issuer == NULL)
		r = gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0);
	else {
		r = gnutls_x509_crt_sign2(
		    crt, issuer, issuer_key, GNUTLS_DIG_SHA256, 0);
	}
	if (r < 0)
		goto fail;

	*out = crt;
	return (0);

fail:
	warnx_("making certificate: %s", gnutls_strerror(r));
	free(ext);
	if (crt != NULL)
		gnutls_x509_crt_deinit(crt);
	*out = NULL;
	return (-1);
}

static void
certs_free(gnutls_x509_crt_t *certs, unsigned int n)
{
	unsigned int i;

	if (certs == NULL)
		return;
	for (i = 0; i < n; i++) {
		if (certs[i] != NULL)
			gnutls_x509_crt_deinit(certs[i]);
	}
	gnutls_free(certs);
}

/*
 * Generate the certificates for the -c mode. The list starts with the leaf
 * and ends with the root, in the order the server presents them.
 */
static int
certs_generate(
    gnutls_x509_privkey_t key, gnutls_x509_crt_t **certs, unsigned int *n)
{
	gnutls_x509_crt_t *list;
	gnutls_x509_privkey_t cakeys[CHAIN_LEN - 1];
	time_t now = time(NULL), nb, na;
	char name[64];
	unsigned int count, i, idx;
	int ret = -1;

	memset(cakeys, 0, sizeof cakeys);
	count = opt_certmode == CERT_CHAIN50 ? CHAIN_LEN : 1;
	if ((list = gnutls_calloc(count, sizeof *list)) == NULL) {
		warnx_("out of memory");
		return (-1);
	}

	switch (opt_certmode) {
	case CERT_EXPIRED:
		nb = now - 2 * 365 * DAY;
		na = now - 365 * DAY;
		break;
	case CERT_NOTYET:
		nb = now + DAY;
		na = now + 366 * DAY;
		break;
	default:
		nb = now - 3600;
		na = now + 365 * DAY;
		break;
	}

	if (opt_certmode != CERT_CHAIN50) {
		if (cert_make(&list[0], opt_cn, nb, na, 0,
		        opt_certmode == CERT_HUGE, key, NULL, NULL) != 0)
			goto out;
		ret = 0;
		goto out;
	}

	/*
	 * Root CA at list[count - 1], intermediates each signing the next,
	 * the leaf at list[0].
	 */
	for (i = 0; i < count - 1; i++) {
		idx = count - 1 - i;
		if (key_generate(&cakeys[i]) != 0)
			goto out;
		if (i == 0)
			snprintf(name, sizeof name, "gemserver test root CA");
		else {
			snprintf(name, sizeof name,
			    "gemserver test intermediate %u", i);
		}
		if (cert_make(&list[idx], name, nb, na, 1, 0, cakeys[i],
		        i == 0 ? NULL : list[idx + 1],
		        i == 0 ? NULL : cakeys[i - 1]) != 0)
			goto out;
	}
	if (cert_make(&list[0], opt_cn, nb, na, 0, 0, key, list[1],
	        cakeys[count - 2]) != 0)
		goto out;
	ret = 0;

out:
	for (i = 0; i < count - 1 && i < CHAIN_LEN - 1; i++) {
		if (cakeys[i] != NULL)
			gnutls_x509_privkey_deinit(cakeys[i]);
	}
	if (ret != 0) {
		certs_free(list, count);
		*certs = NULL;
		*n = 0;
	} else {
		*certs = list;
		*n = count;
	}
	return (ret);
}

static int
setup_credentials(void)
{
	gnutls_x509_privkey_t key = NULL;
	gnutls_x509_crt_t *certs = NULL;
	unsigned int ncerts = 0;
	const char *err;
	int r, ret = -1;

	if (opt_keyfile != NULL && access(opt_keyfile, F_OK) == 0) {
		if (key_load(opt_keyfile, &key) != 0)
			goto out;
	} else {
		if (key_generate(&key) != 0)
			goto out;
		if (opt_keyfile != NULL && key_save(opt_keyfile, key) != 0)
			goto out;
	}

	if (opt_certfile != NULL && access(opt_certfile, F_OK) == 0) {
		if (certs_load(opt_certfile, &certs, &ncerts) != 0)
			goto out;
	} else {
		if (certs_generate(key, &certs, &ncerts) != 0)
			goto out;
		if (opt_certfile != NULL &&
		    certs_save(opt_certfile, certs, ncerts) != 0)
			goto out;
	}

	if ((r = gnutls_certificate_allocate_credentials(&xcred)) < 0) {
		warnx_("credentials: %s", gnutls_strerror(r));
		xcred = NULL;
		goto out;
	}
	if ((r = gnutls_certificate_set_x509_key(xcred, certs, ncerts, key)) <
	    0) {
		warnx_("setting key and certificate: %s", gnutls_strerror(r));
		goto out;
	}

	if (opt_mode == MODE_TLS12) {
		r = gnutls_priority_init(
		    &tls12_prio, "NORMAL:-VERS-ALL:+VERS-TLS1.2", &err);
		if (r < 0) {
			warnx_("priority: %s at %s", gnutls_strerror(r), err);
			tls12_prio = NULL;
			goto out;
		}
	}
	ret = 0;

out:
	certs_free(certs, ncerts);
	if (key != NULL)
		gnutls_x509_privkey_deinit(key);
	return (ret);
}

/*
 * Connection helpers.
 */

/*
 * Wait up to ms milliseconds. Returns 1 at once if the client goes away
 * (hangs up or half-closes) or the server is stopping, 0 when the time has
 * passed.
 */
static int
conn_pause(struct conn *c, long long ms)
{
	struct pollfd pfd;
	long long deadline = now_ms() + ms, left;
	int r;

	for (;;) {
		if (atomic_load(&stopping))
			return (1);
		left = deadline - now_ms();
		if (left <= 0)
			return (0);
		pfd.fd = c->fd;
		pfd.events = POLLRDHUP;
		pfd.revents = 0;
		r = poll(&pfd, 1, left > 250 ? 250 : (int)left);
		if (r == -1) {
			if (errno == EINTR)
				continue;
			return (1);
		}
		if (r > 0 &&
		    (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)))
			return (1);
	}
}

/* Hold the connection until the client goes away or HOLD_MS. */
static void
conn_hold(struct conn *c)
{
	conn_pause(c, HOLD_MS);
}

/*
 * Send FIN and give the client a bounded time to close its side, discarding
 * what it sends, so that the final close does not turn into a reset.
 */
static void
conn_linger(struct conn *c)
{
	struct pollfd pfd;
	char buf[4096];
	long long deadline, left;
	ssize_t n;
	int r;

	shutdown(c->fd, SHUT_WR);
	deadline = now_ms() + LINGER_MS;
	for (;;) {
		if (atomic_load(&stopping))
			return;
		left = deadline - now_ms();
		if (left <= 0)
			return;
		pfd.fd = c->fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		r = poll(&pfd, 1, left > 250 ? 250 : (int)left);
		if (r == -1) {
			if (errno == EINTR)
				continue;
			return;
		}
		if (r == 0)
			continue;
		n = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
		if (n == 0)
			return;
		if (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK &&
		    errno != EINTR)
			return;
	}
}

/* Make the final close send a TCP reset. */
static void
conn_reset(struct conn *c)
{
	struct linger l = {1, 0};

	setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

static int
raw_write(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return (-1);
		}
		p += n;
		len -= n;
	}
	return (0);
}

/*
 * GnuTLS transport functions. Writes are always complete (the socket is
 * blocking), so every record is on the wire when gnutls_record_send returns.
 * When c->cut is set, only the first half of the next record is sent and
 * everything after it is silently dropped.
 */
static ssize_t
tls_pull(gnutls_transport_ptr_t ptr, void *buf, size_t len)
{
	struct conn *c = ptr;
	ssize_t n;

	do
		n = recv(c->fd, buf, len, 0);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		gnutls_transport_set_errno(c->session, errno);
	return (n);
}

static int
tls_pull_timeout(gnutls_transport_ptr_t ptr, unsigned int ms)
{
	struct conn *c = ptr;
	struct pollfd pfd;
	int r, timeout;

	if (ms == GNUTLS_INDEFINITE_TIMEOUT)
		timeout = -1;
	else if (ms > INT_MAX)
		timeout = INT_MAX;
	else
		timeout = (int)ms;
	pfd.fd = c->fd;
	pfd.events = POLLIN;
	pfd.revents = 0;
	do
		r = poll(&pfd, 1, timeout);
	while (r == -1 && errno == EINTR);
	if (r == -1)
		gnutls_transport_set_errno(c->session, errno);
	return (r);
}

static ssize_t
tls_vec_push(gnutls_transport_ptr_t ptr, const giovec_t *iov, int iovcnt)
{
	struct conn *c = ptr;
	const char *p;
	size_t total = 0, limit, left, piece;
	ssize_t n;
	int i, flags;

	for (i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	if (c->cut_done)
		return ((ssize_t)total);

	limit = total;
	if (c->cut) {
		/* Keep at least the 5-byte record header and one byte. */
		limit = total / 2;
		if (limit < 6)
			limit = 6;
		if (limit >= total)
			limit = total > 0 ? total - 1 : 0;
	}

	left = limit;
	for (i = 0; i < iovcnt && left > 0; i++) {
		p = iov[i].iov_base;
		piece = iov[i].iov_len < left ? iov[i].iov_len : left;
		left -= piece;
		while (piece > 0) {
			flags = MSG_NOSIGNAL;
			if (left > 0)
				flags |= MSG_MORE;
			n = send(c->fd, p, piece, flags);
			if (n == -1) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN || errno == EWOULDBLOCK)
					errno = ETIMEDOUT; /* SO_SNDTIMEO */
				gnutls_transport_set_errno(c->session, errno);
				return (-1);
			}
			p += n;
			piece -= n;
		}
	}

	if (c->cut)
		c->cut_done = 1;
	return ((ssize_t)total);
}

static int
tls_write(struct conn *c, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = gnutls_record_send(c->session, p, len);
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			continue;
		if (n < 0)
			return (-1);
		p += n;
		len -= n;
	}
	return (0);
}

static int
tls_puts(struct conn *c, const char *s)
{
	return (tls_write(c, s, strlen(s)));
}

static int tls_printf(struct conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
tls_printf(struct conn *c, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int len, r;

	va_start(ap, fmt);
	len = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (len == -1)
		return (-1);
	r = tls_write(c, s, len);
	free(s);
	return (r);
}

/* End the response properly: close_notify, then FIN. */
static void
end_bye(struct conn *c)
{
	int r;

	do
		r = gnutls_bye(c->session, GNUTLS_SHUT_WR);
	while (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED);
	conn_linger(c);
}

/* End the response with a FIN but no close_notify. */
static void
end_premature(struct conn *c)
{
	conn_linger(c);
}

/*
 * Requests.
 */

static int
hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return (ch - '0');
	if (ch >= 'a' && ch <= 'f')
		return (ch - 'a' + 10);
	if (ch >= 'A' && ch <= 'F')
		return (ch - 'A' + 10);
	return (-1);
}

/* Percent-decode len bytes of s into a new string. */
static char *
percent_decode(const char *s, size_t len, size_t *outlen)
{
	char *out, *o;
	size_t i;
	int hi, lo;

	if ((o = out = malloc(len + 1)) == NULL)
		return (NULL);
	for (i = 0; i < len; i++) {
		if (s[i] == '%' && i + 2 < len) {
			hi = hexval((unsigned char)s[i + 1]);
			lo = hexval((unsigned char)s[i + 2]);
			if (hi != -1 && lo != -1) {
				*o++ = (char)(hi << 4 | lo);
				i += 2;
				continue;
			}
		}
		*o++ = s[i];
	}
	*o = '\0';
	if (outlen != NULL)
		*outlen = o - out;
	return (out);
}

/*
 * Find name in an &-separated query and return its percent-decoded value
 * (empty for a bare name), or NULL.
 */
static char *
query_get(const char *query, const char *name, size_t *outlen)
{
	const char *p = query, *end, *eq;
	size_t nlen = strlen(name);

	if (query == NULL)
		return (NULL);
	while (*p != '\0') {
		end = strchr(p, '&');
		if (end == NULL)
			end = p + strlen(p);
		eq = memchr(p, '=', end - p);
		if (eq == NULL)
			eq = end;
		if ((size_t)(eq - p) == nlen && memcmp(p, name, nlen) == 0) {
			if (eq == end)
				return (percent_decode("", 0, outlen));
			return (percent_decode(eq + 1, end - eq - 1, outlen));
		}
		if (*end == '\0')
			break;
		p = end + 1;
	}
	return (NULL);
}

static unsigned long long
query_num(const char *query, const char *name, unsigned long long def,
    unsigned long long max)
{
	char *s, *end;
	unsigned long long v;

	if ((s = query_get(query, name, NULL)) == NULL)
		return (def);
	errno = 0;
	v = strtoull(s, &end, 10);
	if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno == ERANGE)
		v = def;
	free(s);
	return (v > max ? max : v);
}

/*
 * Read the request line. Returns 0 with c->line holding the line (without
 * the line ending), 1 for a bad request, -1 if the client went away or took
 * too long.
 */
static int
read_request(struct conn *c)
{
	long long deadline = now_ms() + REQUEST_MS, left;
	char *nl;
	ssize_t n;

	c->linelen = 0;
	while (c->linelen < REQUEST_MAX) {
		left = deadline - now_ms();
		if (left <= 0)
			return (-1);
		gnutls_record_set_timeout(c->session, (unsigned int)left);
		n = gnutls_record_recv(
		    c->session, c->line + c->linelen, REQUEST_MAX - c->linelen);
		if (n < 0 && !gnutls_error_is_fatal((int)n))
			continue;
		if (n <= 0)
			return (-1);
		c->linelen += n;
		c->line[c->linelen] = '\0';
		if ((nl = memchr(c->line, '\n', c->linelen)) == NULL)
			continue;
		*nl = '\0';
		if (nl > c->line && nl[-1] == '\r')
			*--nl = '\0';
		c->linelen = nl - c->line;
		if (c->linelen > MAX_URL || strlen(c->line) != c->linelen)
			return (1);
		return (0);
	}
	return (1);
}

/*
 * Split the URL in c->line into path and query (pointers into c->url).
 * Returns -1 if it is not an absolute URL.
 */
static int
parse_url(struct conn *c, const char **path, const char **query)
{
	char *p, *s;
	size_t len;

	memcpy(c->url, c->line, c->linelen + 1);

	if ((p = strstr(c->url, "://")) == NULL || p == c->url)
		return (-1);
	for (s = c->url; s < p; s++) {
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		        (*s >= '0' && *s <= '9') || *s == '+' || *s == '-' ||
		        *s == '.'))
			return (-1);
	}
	p += 3;

	if ((s = strchr(p, '#')) != NULL)
		*s = '\0';
	len = strcspn(p, "/?");
	p += len;
	*query = "";
	if ((s = strchr(p, '?')) != NULL) {
		*s = '\0';
		*query = s + 1;
	}
	/* The authority was terminated by '?' or the end. */
	*path = *p == '/' ? p : "/";
	return (0);
}

/*
 * Handlers. Each sends its response and ends the connection in its own way;
 * the caller then closes the socket.
 */

static int
send_header(struct conn *c, const char *header)
{
	return (tls_puts(c, header));
}

static void
h_ok(struct conn *c, const char *arg, const char *query)
{
	(void)arg;
	(void)query;
	if (send_header(c, "20 text/gemini; lang=en\r\n") != 0 ||
	    tls_puts(c, ok_body) != 0)
		return;
	end_bye(c);
}

static void
h_premature(struct conn *c, const char *arg, const char *query)
{
	(void)arg;
	(void)query;
	if (send_header(c, "20 text/gemini\r\n") != 0 ||
	    tls_puts(
	        c, "# premature\nThis body ends without close_notify.\n") != 0)
		return;
	end_premature(c);
}

static void
h_midrecord(struct conn *c, const char *arg, const char *query)
{
	(void)arg;
	(void)query;
	if (send_header(c, "20 text/gemini\r\n") != 0 ||
	    tls_puts(c, "# midrecord\nThe next record is cut in half.\n") != 0)
		return;
	c->cut = 1;
	if (tls_puts(c,
	        "Only the first half of the bytes of this record "
	        "reach the client before the TCP connection is closed, so the "
	        "client sees a truncated record.\n") != 0)
		return;
	end_premature(c);
}

static void
h_reset(struct conn *c, const char *arg, const char *query)
{
	(void)arg;
	(void)query;
	if (send_header(c, "20 text/gemini\r\n") != 0 ||
	    tls_puts(c, "# reset\nThis body is cut by a TCP reset") != 0)
		return;
	conn_pause(c, 50); /* let the data reach the client first */
	conn_reset(c);
}

static void
h_stall_header(struct conn *c, const char *arg, const char *query)
{
	(void)arg;
	(void)query;
	conn_hold(c);
	end_premature(c);
}

static void
h_stall_body(struct conn *c, const char *arg, const char *query)
{
	(void)arg;
	(void)query;
	if (send_header(c, "20 text/gemini\r\n") != 0)
		return;
	conn_hold(c);
	end_premature(c);
}

static void
h_trickle(struct conn *c, const char *arg, const char *query)
{
	unsigned long long ms, n, i;
	char ch;

	(void)arg;
	ms = query_num(query, "ms", 300, HOLD_MS);
	n = query_num(query, "n", 1000, ULLONG_MAX);
	if (send_header(c, "20 text/gemini\r\n") != 0)
		return;
	for (i = 0; i < n; i++) {
		if (conn_pause(c, (long long)ms) != 0)
			return;
		ch = (i % 64 == 63) ? '\n' : (char)('a' + i % 26);
		if (tls_write(c, &ch, 1) != 0)
			return;
	}
	end_bye(c);
}

static void
h_malformed(struct conn *c, const char *arg, const char *query)
{
	(void)arg;
	(void)query;
	if (send_header(c, "2 text/gemini\r\n") != 0)
		return;
	end_bye(c);
}

static void
h_malformed2(struct conn *c, const char *arg, const char *query)
{
	(void)arg;
	(void)query;
	if (send_header(c, "20text/gemini\r\n") != 0)
		return;
	end_bye(c);
}

static void
h_badstatus(struct conn *c, const char *arg, const char *query)
{
	(void)arg;
	(void)query;
	if (send_header(c, "xx text/gemini\r\n") != 0)
		return;
	end_bye(c);
}

static void
send_meta_len(struct conn *c, size_t metalen)
{
	static const char prefix[] = "text/gemini; x=";
	char *buf;
	size_t len = 3 + metalen + 2;

	if ((buf = malloc(len)) == NULL)
		return;
	memcpy(buf, "20 ", 3);
	memset(buf + 3, 'a', metalen);
	memcpy(buf + 3, prefix, sizeof prefix - 1);
	memcpy(buf + 3 + metalen, "\r\n", 2);
	if (tls_write(c, buf, len) != 0 || tls_puts(c, ok_body) != 0) {
		free(buf);
		return;
	}
	free(buf);
	end_bye(c);
}

static void
h_meta1024(struct conn *c, const char *arg, const char *query)
{
	(void)arg;
	(void)query;
	send_meta_len(c, 1024);
}

static void
h_meta1025(struct conn *c, const char *arg, const char *query)
{
	(void)arg;
	(void)query;
	send_meta_len(c, 1025);
}

static void
h_nocrlf(struct conn *c, const char *arg, const char *query)
{
	(void)arg;
	(void)query;
	if (send_header(c, "20 text/gemini") != 0)
		return;
	end_bye(c);
}

static void
h_lfonly(struct conn *c, const char *arg, const char *query)
{
	(void)arg;
	(void)query;
	if (send_header(c, "20 text/gemini\n") != 0 ||
	    tls_puts(c, ok_body) != 0)
		return;
	end_bye(c);
}

static void
h_nothing(struct conn *c, const char *arg, const char *query)
{
	(void)arg;
	(void)query;
	end_bye(c);
}

static void
h_nothing_premature(struct conn *c, const char *arg, const char *query)
{
	(void)arg;
	(void)query;
	end_premature(c);
}

static void
h_not_found(struct conn *c)
{
	if (send_header(c, "51 not found\r\n") != 0)
		return;
	end_bye(c);
}

/* Send the response for /status/NN; returns -1 on failure. */
static int
send_status(struct conn *c, const char *arg)
{
	const char *meta;
	int code;

	if (arg[0] < '0' || arg[0] > '9' || arg[1] < '0' || arg[1] > '9' ||
	    arg[2] != '\0') {
		h_not_found(c);
		return (-1);
	}
	code = (arg[0] - '0') * 10 + (arg[1] - '0');
	switch (code / 10) {
	case 1:
		meta = "Enter a query";
		break;
	case 2:
		meta = "text/gemini";
		break;
	case 3:
		meta = "gemini://localhost/ok";
		break;
	case 4:
		meta = "Temporary failure";
		break;
	case 5:
		meta = "Permanent failure";
		break;
	case 6:
		meta = "Client certificate required";
		break;
	default:
		meta = "Unknown status";
		break;
	}
	if (tls_printf(c, "%02d %s\r\n", code, meta) != 0)
		return (-1);
	if (code / 10 == 2 && tls_puts(c, ok_body) != 0)
		return (-1);
	return (0);
}

static void
h_status(struct conn *c, const char *arg, const char *query)
{
	(void)query;
	if (send_status(c, arg) == 0)
		end_bye(c);
}

static void
h_error_premature(struct conn *c, const char *arg, const char *query)
{
	(void)query;
	if (send_status(c, arg) == 0)
		end_premature(c);
}

static void
h_big(struct conn *c, const char *arg, const char *query)
{
	char *buf;
	unsigned long long left, i;
	size_t n;

	(void)arg;
	left = query_num(query, "bytes", BIG_DEFAULT, ULLONG_MAX);
	if ((buf = malloc(BIG_CHUNK)) == NULL)
		return;
	for (i = 0; i < BIG_CHUNK; i++)
		buf[i] = (i % 64 == 63) ? '\n' : "0123456789abcdef"[i % 16];
	if (send_header(c, "20 text/gemini\r\n") != 0)
		goto out;
	while (left > 0) {
		if (atomic_load(&stopping))
			goto out;
		n = left > BIG_CHUNK ? BIG_CHUNK : (size_t)left;
		if (tls_write(c, buf, n) != 0)
			goto out;
		left -= n;
	}
	end_bye(c);
out:
	free(buf);
}

static void
h_sni(struct conn *c, const char *arg, const char *query)
{
	char *name;
	size_t len = 256;
	unsigned int type;
	int r;

	(void)arg;
	(void)query;
	if ((name = malloc(len)) == NULL)
		return;
	r = gnutls_server_name_get(c->session, name, &len, &type, 0);
	if (r == GNUTLS_E_SHORT_MEMORY_BUFFER) {
		free(name);
		if ((name = malloc(len + 1)) == NULL)
			return;
		r = gnutls_server_name_get(c->session, name, &len, &type, 0);
	}
	if (send_header(c, "20 text/gemini\r\n") != 0)
		goto out;
	if (r < 0 || type != GNUTLS_NAME_DNS)
		r = tls_puts(c, "-\n");
	else
		r = tls_printf(c, "%.*s\n", (int)len, name);
	if (r != 0)
		goto out;
	end_bye(c);
out:
	free(name);
}

static void
h_request(struct conn *c, const char *arg, const char *query)
{
	(void)arg;
	(void)query;
	if (send_header(c, "20 text/gemini\r\n") != 0 ||
	    tls_printf(c, "%s\n", c->line) != 0)
		return;
	end_bye(c);
}

static void
h_garbage(struct conn *c, const char *arg, const char *query)
{
	static const char garbage[] =
	    "GARBAGE AFTER CLOSE_NOTIFY: these bytes are not TLS records!!!!\n";
	int r;

	_Static_assert(sizeof garbage - 1 == 64, "garbage is 64 bytes");

	(void)arg;
	(void)query;
	if (send_header(c, "20 text/gemini\r\n") != 0 ||
	    tls_puts(c, ok_body) != 0)
		return;
	do
		r = gnutls_bye(c->session, GNUTLS_SHUT_WR);
	while (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED);
	if (r < 0)
		return;
	if (raw_write(c->fd, garbage, sizeof garbage - 1) != 0)
		return;
	conn_linger(c);
}

static void
h_alert(struct conn *c, const char *arg, const char *query)
{
	int r;

	(void)arg;
	(void)query;
	if (send_header(c, "20 text/gemini\r\n") != 0 ||
	    tls_puts(c, "# alert\nThis body is ended by a fatal alert.\n") != 0)
		return;
	do {
		r = gnutls_alert_send(
		    c->session, GNUTLS_AL_FATAL, GNUTLS_A_INTERNAL_ERROR);
	} while (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED);
	conn_linger(c);
}

static void
h_keyupdate(struct conn *c, const char *arg, const char *query)
{
	int i, r, tls13;

	(void)arg;
	(void)query;
	tls13 = gnutls_protocol_get_version(c->session) == GNUTLS_TLS1_3;
	if (send_header(c, "20 text/gemini\r\n") != 0)
		return;
	for (i = 0; i < 2000; i++) {
		if (tls13) {
			do
				r = gnutls_session_key_update(c->session, 0);
			while (
			    r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED);
			if (r < 0)
				return;
		}
		if (tls_printf(c, "line %d\n", i) != 0)
			return;
	}
	end_bye(c);
}

static void
h_endless(struct conn *c, const char *arg, const char *query)
{
	char buf[1024];
	long long deadline = now_ms() + HOLD_MS;

	(void)arg;
	(void)query;
	memset(buf, 'a', sizeof buf);
	if (tls_puts(c, "20 ") != 0)
		return;
	while (now_ms() < deadline) {
		if (tls_write(c, buf, sizeof buf) != 0)
			return;
		if (conn_pause(c, 10) != 0)
			return;
	}
	end_premature(c);
}

static void
h_body(struct conn *c, const char *arg, const char *query)
{
	char *text;
	size_t len = 0;

	(void)arg;
	text = query_get(query, "text", &len);
	if (send_header(c, "20 text/plain\r\n") != 0)
		goto out;
	if (text != NULL && len > 0 && tls_write(c, text, len) != 0)
		goto out;
	end_bye(c);
out:
	free(text);
}

/* /meta?text=...: a 20 response whose META is the decoded text (CR, LF
 * and NUL dropped so the header stays valid), e.g. hostile markup. */
static void
h_meta(struct conn *c, const char *arg, const char *query)
{
	char *text, *hdr;
	size_t len = 0, i, n = 0;

	(void)arg;
	text = query_get(query, "text", &len);
	hdr = malloc(len + 6);
	if (hdr == NULL)
		goto out;
	memcpy(hdr, "20 ", 3);
	n = 3;
	for (i = 0; text != NULL && i < len && i < 1024; i++)
		if (text[i] != '\r' && text[i] != '\n' && text[i] != '\0')
			hdr[n++] = text[i];
	memcpy(hdr + n, "\r\n", 3);
	if (send_header(c, hdr) == 0 && tls_write(c, "ok\n", 3) == 0)
		end_bye(c);
out:
	free(hdr);
	free(text);
}

static void
h_slow_header(struct conn *c, const char *arg, const char *query)
{
	unsigned long long ms;

	ms = query_num(query, "ms", 2000, HOLD_MS);
	if (conn_pause(c, (long long)ms) != 0) {
		end_premature(c);
		return;
	}
	h_ok(c, arg, query);
}

static void
dispatch(struct conn *c)
{
	const struct route *r;
	const char *path, *query;
	size_t len;

	if (parse_url(c, &path, &query) != 0) {
		if (send_header(c, "59 bad request\r\n") == 0)
			end_bye(c);
		return;
	}
	for (r = routes; r->path != NULL; r++) {
		len = strlen(r->path);
		if (r->prefix && strncmp(path, r->path, len) == 0) {
			r->fn(c, path + len, query);
			return;
		}
		if (!r->prefix && strcmp(path, r->path) == 0) {
			r->fn(c, "", query);
			return;
		}
	}
	h_not_found(c);
}

/*
 * Modes.
 */

static void
serve_plain(struct conn *c)
{
	static const char response[] = "20 text/gemini\r\nhello\r\n";
	struct pollfd pfd;
	long long deadline = now_ms() + REQUEST_MS, left;
	ssize_t n;
	int r, got = 0;

	c->linelen = 0;
	while (c->linelen < REQUEST_MAX) {
		left = deadline - now_ms();
		if (left <= 0)
			break;
		if (got && left > PLAIN_WAIT_MS)
			left = PLAIN_WAIT_MS;
		pfd.fd = c->fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		r = poll(&pfd, 1, (int)left);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0 || atomic_load(&stopping))
			break;
		n = recv(
		    c->fd, c->line + c->linelen, REQUEST_MAX - c->linelen, 0);
		if (n <= 0)
			break;
		c->linelen += n;
		got = 1;
		if (memchr(c->line, '\n', c->linelen) != NULL)
			break;
	}
	if (!got)
		return;
	if (raw_write(c->fd, response, sizeof response - 1) != 0)
		return;
	conn_linger(c);
}

/*
 * -m conform: read a request line of at most 1024 bytes and CRLF (LF
 * alone is not an end), and answer as the specification asks, unless -b
 * breaks the rule.
 */
static int
conform_read(struct conn *c, char *buf, size_t cap, size_t *len)
{
	long long deadline = now_ms() + REQUEST_MS, left;
	size_t max = opt_break == BRK_MAX1025 ? 2 * MAX_URL : MAX_URL;
	char *nl;
	ssize_t n;

	*len = 0;
	for (;;) {
		left = deadline - now_ms();
		if (left <= 0 || *len >= cap - 1)
			return (-1);
		gnutls_record_set_timeout(c->session, (unsigned int)left);
		n = gnutls_record_recv(c->session, buf + *len, cap - 1 - *len);
		if (n < 0 && !gnutls_error_is_fatal((int)n))
			continue;
		if (n <= 0)
			return (-1);
		*len += n;
		buf[*len] = '\0';
		for (nl = buf;
		     (nl = memchr(nl, '\n', *len - (nl - buf))) != NULL; nl++) {
			if (nl > buf && nl[-1] == '\r') {
				*len = nl - 1 - buf;
				return (0);
			}
			if (opt_break == BRK_LF) {
				*len = nl - buf;
				return (0);
			}
		}
		if (*len > max + 1)
			return (1); /* too long already */
	}
}

static void
conform_end(struct conn *c)
{
	if (opt_break == BRK_NO_CLOSE_NOTIFY)
		end_premature(c);
	else
		end_bye(c);
}

static void
conform_answer(struct conn *c, const char *header)
{
	if (send_header(c, header) == 0)
		conform_end(c);
}

static void
conform_root(struct conn *c)
{
	const char *h = "20 text/gemini\r\n";

	if (opt_break == BRK_HEADER)
		h = "20text/gemini\r\n";
	else if (opt_break == BRK_NOMIME)
		h = "20 \r\n";
	if (send_header(c, h) != 0 || tls_puts(c, ok_body) != 0)
		return;
	conform_end(c);
}

/* Whether host (as in the URL) names this server. */
static int
conform_host(const char *host, size_t len)
{
	static const char *const own[] = {"localhost", "127.0.0.1", "[::1]"};
	size_t i;

	if (strlen(opt_cn) == len && strncasecmp(host, opt_cn, len) == 0)
		return (1);
	for (i = 0; i < sizeof own / sizeof own[0]; i++)
		if (strlen(own[i]) == len &&
		    strncasecmp(host, own[i], len) == 0)
			return (1);
	return (0);
}

static void
conform_serve(struct conn *c)
{
	char buf[2 * MAX_URL + 8], hdr[2 * MAX_URL + 32];
	const char *p, *auth, *end, *host, *colon, *path;
	size_t len, i, hlen;
	int lenient = opt_break == BRK_LENIENT;

	switch (conform_read(c, buf, sizeof buf, &len)) {
	case 0:
		break;
	case 1:
		conform_answer(c, "59 request too long\r\n");
		return;
	default:
		return;
	}
	buf[len] = '\0';
	if (len > MAX_URL && opt_break != BRK_MAX1025) {
		conform_answer(c, "59 request too long\r\n");
		return;
	}
	if (len >= MAX_URL && opt_break == BRK_MAX1024) {
		conform_answer(c, "59 request too long\r\n");
		return;
	}
	for (i = 0; i < len; i++) {
		if ((unsigned char)buf[i] <= 0x20 ||
		    (unsigned char)buf[i] >= 0x7f) {
			if (lenient)
				goto root;
			conform_answer(c, "59 bad request\r\n");
			return;
		}
	}
	if ((p = strstr(buf, "://")) == NULL || p == buf) {
		if (lenient)
			goto root;
		conform_answer(c, "59 bad request\r\n");
		return;
	}
	if (p - buf != 6 || strncasecmp(buf, "gemini", 6) != 0) {
		if (opt_break == BRK_ANYSCHEME)
			goto root;
		conform_answer(c, "53 proxy request refused\r\n");
		return;
	}
	auth = p + 3;
	end = auth + strcspn(auth, "/?#");
	if (strchr(buf, '#') != NULL && opt_break != BRK_FRAGMENT) {
		conform_answer(c, "59 no fragments\r\n");
		return;
	}
	host = auth;
	if ((p = memchr(auth, '@', end - auth)) != NULL) {
		if (opt_break != BRK_USERINFO) {
			conform_answer(c, "59 no userinfo\r\n");
			return;
		}
		host = p + 1;
	}
	colon = NULL;
	for (p = host; p < end; p++)
		if (*p == ':')
			colon = p;
	if (colon != NULL && *host == '[' &&
	    colon < (const char *)memchr(host, ']', end - host))
		colon = NULL;
	hlen = (colon != NULL ? colon : end) - host;
	if (!conform_host(host, hlen) && opt_break != BRK_ANYHOST) {
		conform_answer(c, "53 proxy request refused\r\n");
		return;
	}
	if (colon != NULL) {
		if ((atoi(colon + 1) != bound_port &&
		        opt_break != BRK_ANYPORT) ||
		    (atoi(colon + 1) == bound_port && opt_break == BRK_PORT)) {
			conform_answer(c, "53 proxy request refused\r\n");
			return;
		}
	}
	path = end;
	len = strcspn(path, "?#");
	if (len == 0) {
		if (opt_break == BRK_REDIRECT) {
			snprintf(hdr, sizeof hdr, "31 gemini://%.*s/\r\n",
			    (int)(end - auth), auth);
			conform_answer(c, hdr);
			return;
		}
		goto root;
	}
	for (p = path; p < path + len; p = p + strcspn(p, "/") + 1) {
		i = strcspn(p, "/?#");
		if (i == 2 && strncmp(p, "..", 2) == 0) {
			if (opt_break == BRK_DOTDOT)
				goto root;
			conform_answer(c, "59 no dot segments\r\n");
			return;
		}
		if (p[i] != '/')
			break;
	}
	if (len == 1)
		goto root;
	if (opt_break == BRK_NOTFOUND_STATUS) {
		conform_answer(c, "40 not here\r\n");
		return;
	}
	if (send_header(c, "51 not found\r\n") != 0)
		return;
	if (opt_break == BRK_NOTFOUND_BODY && tls_puts(c, "not found\n") != 0)
		return;
	conform_end(c);
	return;
root:
	conform_root(c);
}

/* The TLS handshake of a new connection: 0, or -1 when it failed. */
static int
tls_accept(struct conn *c)
{
	int r;

	if ((r = gnutls_init(&c->session, GNUTLS_SERVER)) < 0) {
		c->session = NULL;
		return (-1);
	}
	if (opt_mode == MODE_TLS12)
		r = gnutls_priority_set(c->session, tls12_prio);
	else
		r = gnutls_set_default_priority(c->session);
	if (r < 0)
		return (-1);
	r = gnutls_credentials_set(c->session, GNUTLS_CRD_CERTIFICATE, xcred);
	if (r < 0)
		return (-1);
	gnutls_certificate_server_set_request(c->session, GNUTLS_CERT_IGNORE);
	gnutls_transport_set_ptr(c->session, c);
	gnutls_transport_set_pull_function(c->session, tls_pull);
	gnutls_transport_set_pull_timeout_function(
	    c->session, tls_pull_timeout);
	gnutls_transport_set_vec_push_function(c->session, tls_vec_push);
	gnutls_handshake_set_timeout(c->session, REQUEST_MS);

	do
		r = gnutls_handshake(c->session);
	while (r < 0 && !gnutls_error_is_fatal(r));
	return (r < 0 ? -1 : 0);
}

static void
serve_tls(struct conn *c)
{
	if (tls_accept(c) != 0)
		return;
	if (opt_mode == MODE_NEVER_READ) {
		conn_hold(c);
		end_premature(c);
		return;
	}
	if (opt_mode == MODE_CONFORM) {
		conform_serve(c);
		return;
	}

	switch (read_request(c)) {
	case 0:
		dispatch(c);
		break;
	case 1:
		if (send_header(c, "59 bad request\r\n") == 0)
			end_bye(c);
		break;
	default:
		end_bye(c);
		break;
	}
}

/* A connection to the terminator's backend, or -1. */
static int
backend_connect(void)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	int fd;

	memset(&ss, 0, sizeof ss);
	if (opt_family == AF_INET6) {
		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_loopback;
		s6->sin6_port = htons((unsigned short)opt_backend);
		len = sizeof *s6;
	} else {
		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		s4->sin_port = htons((unsigned short)opt_backend);
		len = sizeof *s4;
	}
	if ((fd = socket(opt_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return (-1);
	if (connect(fd, (struct sockaddr *)&ss, len) == -1) {
		close(fd);
		return (-1);
	}
	return (fd);
}

/*
 * A TLS terminator, as nginx (stream), HAProxy and socat are: relay the
 * client's bytes to a plain-TCP backend and back, and when nothing has
 * passed either way for opt_idle_ms, or the backend closed or reset its
 * connection, end the client's side with close_notify. That is why
 * close_notify does not prove a response whole behind such a proxy.
 */
static void
serve_terminator(struct conn *c)
{
	struct pollfd pfd[2];
	char buf[16384];
	long long deadline = now_ms() + HOLD_MS;
	ssize_t n;
	int b, r;

	if (tls_accept(c) != 0)
		return;
	if ((b = backend_connect()) == -1) {
		end_bye(c);
		return;
	}
	/* Relayed at once, as proxies do (nginx: tcp_nodelay on). */
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
	setsockopt(b, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
	gnutls_record_set_timeout(c->session, (unsigned int)opt_idle_ms);
	while (now_ms() < deadline && !atomic_load(&stopping)) {
		pfd[0].fd = c->fd;
		pfd[1].fd = b;
		pfd[0].events = pfd[1].events = POLLIN;
		pfd[0].revents = pfd[1].revents = 0;
		if (gnutls_record_check_pending(c->session) > 0)
			pfd[0].revents = POLLIN;
		else if ((r = poll(pfd, 2, (int)opt_idle_ms)) == -1) {
			if (errno == EINTR)
				continue;
			break;
		} else if (r == 0)
			break; /* the idle timeout */
		if (pfd[0].revents != 0) {
			n = gnutls_record_recv(c->session, buf, sizeof buf);
			if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
				continue;
			if (n <= 0) { /* the client is done */
				close(b);
				return;
			}
			if (raw_write(b, buf, (size_t)n) != 0)
				break;
		}
		if (pfd[1].revents != 0) {
			n = recv(b, buf, sizeof buf, 0);
			if (n <=
			    0) /* closed or reset: the same to the client */
				break;
			if (tls_write(c, buf, (size_t)n) != 0) {
				close(b);
				return;
			}
		}
	}
	close(b);
	end_bye(c);
}

/* Take c off the list of live connections. Call with conns_lock held. */
static void
conn_unlink(struct conn *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	if (--nconns == 0)
		pthread_cond_broadcast(&conns_cond);
}

/*
 * End of a connection thread: close everything and queue the connection
 * for the main thread to join and free.
 */
static void
conn_finish(struct conn *c)
{
	if (c->session != NULL) {
		gnutls_deinit(c->session);
		c->session = NULL;
	}

	pthread_mutex_lock(&conns_lock);
	conn_unlink(c);
	close(c->fd);
	c->fd = -1;
	c->next = done;
	done = c;
	pthread_mutex_unlock(&conns_lock);
}

/* Join and free the threads that have finished. */
static void
conns_reap(void)
{
	struct conn *c, *next;

	pthread_mutex_lock(&conns_lock);
	c = done;
	done = NULL;
	pthread_mutex_unlock(&conns_lock);

	for (; c != NULL; c = next) {
		next = c->next;
		pthread_join(c->tid, NULL);
		free(c);
	}
}

static void *
conn_thread(void *arg)
{
	struct conn *c = arg;
	struct timeval tv = {SEND_TIMEOUT_S, 0};

	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);

	switch (opt_mode) {
	case MODE_ACCEPT_CLOSE:
		/* FIN at once; drain so that the close is not a reset. */
		conn_linger(c);
		break;
	case MODE_STALL_HANDSHAKE:
	case MODE_NEVER_SPEAK:
		conn_hold(c);
		break;
	case MODE_PLAIN:
		serve_plain(c);
		break;
	case MODE_TERMINATOR:
		serve_terminator(c);
		break;
	case MODE_NORMAL:
	case MODE_TLS12:
	case MODE_NEVER_READ:
	case MODE_CONFORM:
		serve_tls(c);
		break;
	}
	conn_finish(c);
	return (NULL);
}

/*
 * Serve a new connection in its own thread. The threads are joinable only so
 * that the main thread can reap them (conns_reap) and nothing is left over at
 * exit; nothing ever waits for a running one.
 */
static void
conn_start(int fd)
{
	struct conn *c;
	pthread_attr_t attr;
	sigset_t set, oset;
	int r;

	pthread_mutex_lock(&conns_lock);
	if (nconns >= MAX_CONNS) {
		pthread_mutex_unlock(&conns_lock);
		close(fd);
		return;
	}
	if ((c = calloc(1, sizeof *c)) == NULL) {
		pthread_mutex_unlock(&conns_lock);
		close(fd);
		return;
	}
	c->fd = fd;
	c->next = conns;
	if (conns != NULL)
		conns->prev = c;
	conns = c;
	nconns++;

	/* Threads inherit the mask: only the main thread takes signals. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, &oset);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, THREAD_STACK);
	r = pthread_create(&c->tid, &attr, conn_thread, c);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &oset, NULL);
	if (r != 0) {
		warnx_("pthread_create: %s", strerror(r));
		conn_unlink(c);
		close(fd);
		free(c);
	}
	pthread_mutex_unlock(&conns_lock);
}

/*
 * Wake every connection thread and wait for them to finish. Returns how
 * many are still running.
 */
static int
conns_stop(void)
{
	struct conn *c;
	struct timespec ts;
	int left;

	atomic_store(&stopping, 1);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += STOP_WAIT_MS / 1000;

	pthread_mutex_lock(&conns_lock);
	for (c = conns; c != NULL; c = c->next)
		shutdown(c->fd, SHUT_RDWR);
	while (nconns > 0) {
		if (pthread_cond_timedwait(&conns_cond, &conns_lock, &ts) ==
		    ETIMEDOUT)
			break;
	}
	left = nconns;
	pthread_mutex_unlock(&conns_lock);

	conns_reap();
	return (left);
}

/*
 * Main.
 */

static void
on_signal(int sig)
{
	int saved = errno;

	(void)sig;
	got_signal = 1;
	if (write(signal_pipe[1], "x", 1) == -1) {
		/* nothing to do; got_signal is set */
	}
	errno = saved;
}

static int
listen_socket(int *port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t slen;
	int fd, one = 1;

	memset(&ss, 0, sizeof ss);
	if (opt_family == AF_INET) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(opt_port);
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		slen = sizeof *sin;
	} else {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(opt_port);
		sin6->sin6_addr = in6addr_loopback;
		slen = sizeof *sin6;
	}

	if ((fd = socket(opt_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		warnx_("socket: %s", strerror(errno));
		return (-1);
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == -1)
		goto fail;
	if (opt_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) == -1)
		goto fail;
	if (bind(fd, (struct sockaddr *)&ss, slen) == -1)
		goto fail;
	if (listen(fd, 512) == -1)
		goto fail;
	slen = sizeof ss;
	if (getsockname(fd, (struct sockaddr *)&ss, &slen) == -1)
		goto fail;
	if (opt_family == AF_INET)
		*port = ntohs(sin->sin_port);
	else
		*port = ntohs(sin6->sin6_port);
	return (fd);

fail:
	warnx_("listen: %s", strerror(errno));
	close(fd);
	return (-1);
}

int
main(int argc, char **argv)
{
	struct sigaction sa;
	struct pollfd pfd[2];
	char *end, buf[32];
	long l;
	int ch, lfd = -1, fd, port, left, ret = 1;

	while ((ch = getopt(argc, argv, "46b:C:c:hi:K:m:n:P:p:r:")) != -1) {
		switch (ch) {
		case 'b':
			errno = 0;
			l = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || l < 1 ||
			    l > 65535 || errno != 0)
				usage();
			opt_backend = (int)l;
			break;
		case 'i':
			errno = 0;
			l = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || l < 1 ||
			    l > HOLD_MS || errno != 0)
				usage();
			opt_idle_ms = l;
			break;
		case '4':
			opt_family = AF_INET;
			break;
		case '6':
			opt_family = AF_INET6;
			break;
		case 'r':
			if ((ch = name_lookup(break_names, optarg)) == -1)
				usage();
			opt_break = ch;
			break;
		case 'C':
			opt_certfile = optarg;
			break;
		case 'c':
			if ((ch = name_lookup(certmode_names, optarg)) == -1)
				usage();
			opt_certmode = ch;
			break;
		case 'K':
			opt_keyfile = optarg;
			break;
		case 'm':
			if ((ch = name_lookup(mode_names, optarg)) == -1)
				usage();
			opt_mode = ch;
			break;
		case 'n':
			if (*optarg == '\0' || strlen(optarg) > 255)
				usage();
			opt_cn = optarg;
			break;
		case 'P':
			opt_portfile = optarg;
			break;
		case 'p':
			errno = 0;
			l = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || l < 0 ||
			    l > 65535 || errno != 0)
				usage();
			opt_port = (int)l;
			break;
		case 'h':
		default:
			usage();
		}
	}
	if (optind != argc ||
	    (opt_mode == MODE_TERMINATOR) != (opt_backend != 0))
		usage();

	signal(SIGPIPE, SIG_IGN);
	if (pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) == -1) {
		warnx_("pipe: %s", strerror(errno));
		return (1);
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	if (setup_credentials() != 0)
		goto out;
	if ((lfd = listen_socket(&port)) == -1)
		goto out;

	bound_port = port;
	printf("%d\n", port);
	fflush(stdout);
	if (opt_portfile != NULL) {
		snprintf(buf, sizeof buf, "%d\n", port);
		if (write_file_atomic(opt_portfile, buf, strlen(buf), 0644) !=
		    0)
			goto out;
	}

	while (!got_signal) {
		conns_reap();
		pfd[0].fd = lfd;
		pfd[0].events = POLLIN;
		pfd[0].revents = 0;
		pfd[1].fd = signal_pipe[0];
		pfd[1].events = POLLIN;
		pfd[1].revents = 0;
		if (poll(pfd, 2, 1000) == -1) {
			if (errno == EINTR)
				continue;
			warnx_("poll: %s", strerror(errno));
			goto out;
		}
		if (pfd[1].revents != 0)
			break;
		if (!(pfd[0].revents & POLLIN))
			continue;
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM)
				poll(NULL, 0, 100);
			continue;
		}
		conn_start(fd);
		/* -b serial: the next connection waits for this one. */
		while (opt_break == BRK_SERIAL && !got_signal) {
			pthread_mutex_lock(&conns_lock);
			left = nconns;
			pthread_mutex_unlock(&conns_lock);
			if (left == 0)
				break;
			poll(NULL, 0, 10);
		}
	}
	ret = 0;

out:
	if (lfd != -1)
		close(lfd);
	if ((left = conns_stop()) != 0) {
		/* Threads still use the credentials: leave them be. */
		warnx_("%d connection(s) still busy at exit", left);
		return (ret);
	}
	if (tls12_prio != NULL)
		gnutls_priority_deinit(tls12_prio);
	if (xcred != NULL)
		gnutls_certificate_free_credentials(xcred);
	close(signal_pipe[0]);
	close(signal_pipe[1]);
	return (ret);
}
