/*
 * gemwatch diagnose: the checks of a Gemini server's conformance, after
 * gemini-diagnostics but judged by the current specification (Gemini
 * protocol specification v0.24.1, geminiprotocol.net). Each check is one
 * row of a table: a name, what it checks, the rule it cites, a builder of
 * the request bytes and a judge of the answer. Each runs as a probe of
 * its own (probe.h: crafted request bytes, bare TCP, an address family),
 * one after the other on the calling thread. Every answer that has a
 * header is also judged on its ending: no close_notify, or a body after a
 * non-2x header, is a fail whatever the check asked.
 */
#include "config.h"

#include <sys/socket.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "diagnose.h"
#include "log.h"
#include "probe.h"
#include "utf8.h"
#include "xmalloc.h"

/* The longest wait for an answer that should not come (no CR). */
#define DIAG_SILENCE 3.0
/* A host no one serves: .example is reserved (RFC 2606). */
#define DIAG_FOREIGN "gemwatch-foreign.example"
#define DIAG_MISSING "/gemwatch-diagnose-no-such-page"

/* What the checks share: the target and what was learnt on the way. */
struct diag_ctx {
	const struct diag_target *t;
	char host[300];               /* bracketed when IPv6 */
	char netloc[310];             /* host, and :port unless 1965 */
	char hostport[310];           /* host:port */
	struct sockaddr_storage addr; /* the first address that answered */
	int have_addr;
};

struct judgment {
	enum diag_verdict verdict;
	struct buf why;
};

struct diag_check {
	const char *name;
	const char *purpose;
	const char *rule;
	void (*build)(const struct diag_ctx *, struct buf *);
	void (*judge)(const struct diag_check *, const struct probe_result *,
	    struct judgment *);
	int want;               /* j_status: the status, or a class (0-9) */
	enum diag_verdict miss; /* j_status: what another answer is */
	int family;             /* AF_INET, AF_INET6, or 0: the target's */
	unsigned flags;
};

#define DF_PLAIN 0x1   /* bare TCP, no TLS */
#define DF_SILENCE 0x2 /* no answer is expected: wait DIAG_SILENCE at most */
#define DF_IDLE 0x4    /* another connection sits idle meanwhile */

/* ---- verdicts -------------------------------------------------------- */

static void __attribute__((format(printf, 3, 4)))
say(struct judgment *j, enum diag_verdict v, const char *fmt, ...)
{
	va_list ap;
	char *s;

	/* The worst verdict stands: fail, then warn, then pass. */
	if (v == DIAG_FAIL || (v == DIAG_WARN && j->verdict != DIAG_FAIL) ||
	    (v == DIAG_SKIP && j->verdict == DIAG_PASS))
		j->verdict = v;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) == -1)
		fatalx("out of memory");
	va_end(ap);
	if (j->why.len > 0)
		buf_adds(&j->why, "; ");
	buf_adds(&j->why, s);
	free(s);
}

/* The failure before any answer: the request could not be put. */
static int
unreachable(const struct probe_result *r)
{
	return r->status < 0 &&
	       (r->stage == STAGE_RESOLVE || r->stage == STAGE_CONNECT ||
	           r->stage == STAGE_TLS || r->stage == STAGE_REQUEST);
}

static const char *
msg(const struct probe_result *r)
{
	return r->message != NULL ? r->message : "no detail";
}

/* Not reached, or no header: say which, for the outcome's why. */
static void
no_answer(const struct probe_result *r, struct judgment *j, enum diag_verdict v)
{
	if (unreachable(r))
		say(j, DIAG_FAIL, "could not ask: %s", msg(r));
	else
		say(j, v, "no valid answer: %s", msg(r));
}

/* ---- judges ------------------------------------------------------------ */

static int
status_is(const struct diag_check *c, int status)
{
	return c->want >= 10 ? status == c->want : status / 10 == c->want;
}

/* The answer must be want; any other costs miss. */
static void
j_status(const struct diag_check *c, const struct probe_result *r,
    struct judgment *j)
{
	if (r->status < 0)
		no_answer(r, j, c->miss);
	else if (status_is(c, r->status))
		say(j, DIAG_PASS, "answered %d", r->status);
	else
		say(j, c->miss, "answered %d, the rule asks for %d%s",
		    r->status, c->want, c->want < 10 ? "x" : "");
}

/* IPv4Address, IPv6Address: skip without an address of the family. */
static void
j_reach(const struct diag_check *c, const struct probe_result *r,
    struct judgment *j)
{
	int v = c->family == AF_INET6 ? 6 : 4;

	if (r->status >= 10)
		say(j, DIAG_PASS, "answered %d over IPv%d at %s", r->status, v,
		    r->address);
	else if (r->stage == STAGE_RESOLVE)
		say(j, DIAG_SKIP, "no IPv%d address: %s", v, msg(r));
	else
		say(j, DIAG_WARN, "no answer over IPv%d: %s", v, msg(r));
}

static void
j_tls_version(const struct diag_check *c, const struct probe_result *r,
    struct judgment *j)
{
	(void)c;
	if (r->tls_version == NULL)
		say(j, DIAG_FAIL, "no TLS 1.2 or 1.3 handshake: %s", msg(r));
	else if (strcmp(r->tls_version, "TLS1.3") == 0)
		say(j, DIAG_PASS, "negotiated TLS 1.3");
	else if (strcmp(r->tls_version, "TLS1.2") == 0)
		say(j, DIAG_WARN,
		    "negotiated TLS 1.2: allowed, but not TLS 1.3");
	else
		say(j, DIAG_FAIL, "negotiated %s", r->tls_version);
}

static void
j_claims(const struct diag_check *c, const struct probe_result *r,
    struct judgment *j)
{
	const struct cert_facts *f = &r->cert;
	time_t now = (time_t)clock_wall();

	(void)c;
	if (!f->present) {
		say(j, DIAG_FAIL, "no certificate: %s", msg(r));
		return;
	}
	if (f->not_before > now)
		say(j, DIAG_WARN, "not valid yet (notBefore in the future)");
	if (f->not_after < now)
		say(j, DIAG_WARN, "expired (notAfter in the past)");
	if (!f->hostname_match)
		say(j, DIAG_WARN, "does not name the host (subject %s)",
		    f->subject != NULL ? f->subject : "?");
	if (j->why.len == 0)
		say(j, DIAG_PASS, "valid now and names the host");
}

static void
j_plain(const struct diag_check *c, const struct probe_result *r,
    struct judgment *j)
{
	(void)c;
	if (r->status >= 10)
		say(j, DIAG_WARN, "answered %d over bare TCP", r->status);
	else if (unreachable(r))
		say(j, DIAG_FAIL, "could not connect: %s", msg(r));
	else
		say(j, DIAG_PASS, "no Gemini answer over bare TCP (%s)",
		    msg(r));
}

static void
j_format(const struct diag_check *c, const struct probe_result *r,
    struct judgment *j)
{
	(void)c;
	if (r->status < 0)
		no_answer(r, j, DIAG_FAIL);
	else if (r->status != 20)
		say(j, DIAG_WARN, "the root answered %d, not 20", r->status);
	else if (r->meta == NULL || r->meta[0] == '\0')
		say(j, DIAG_FAIL, "20 without a MIME type");
	else if (strchr(r->meta, '/') == NULL)
		say(j, DIAG_FAIL, "20 with \"%s\", not a MIME type", r->meta);
	else
		say(j, DIAG_PASS, "a well-formed 20 header");
}

static void
j_empty_path(const struct diag_check *c, const struct probe_result *r,
    struct judgment *j)
{
	(void)c;
	if (r->status < 0)
		no_answer(r, j, DIAG_FAIL);
	else if (r->status / 10 == 2)
		say(j, DIAG_PASS, "answered %d", r->status);
	else if (r->status / 10 == 3)
		say(j, DIAG_FAIL,
		    "redirected (%d) instead of serving the empty path",
		    r->status);
	else
		say(j, DIAG_FAIL, "answered %d to an empty path", r->status);
}

static void
j_missing(const struct diag_check *c, const struct probe_result *r,
    struct judgment *j)
{
	(void)c;
	if (r->status < 0)
		no_answer(r, j, DIAG_FAIL);
	else if (r->status == 51)
		say(j, DIAG_PASS, "answered 51");
	else
		say(j, DIAG_WARN, "answered %d, not 51, for a missing page",
		    r->status);
}

static void
j_no_cr(const struct diag_check *c, const struct probe_result *r,
    struct judgment *j)
{
	(void)c;
	if (unreachable(r))
		say(j, DIAG_FAIL, "could not ask: %s", msg(r));
	else if (r->status < 0)
		say(j, DIAG_PASS,
		    "no answer: the line was not taken as a "
		    "request");
	else if (r->status == 59)
		say(j, DIAG_PASS, "answered 59");
	else
		say(j, DIAG_WARN, "answered %d to a line without CR",
		    r->status);
}

static void
j_max1024(const struct diag_check *c, const struct probe_result *r,
    struct judgment *j)
{
	(void)c;
	if (r->status < 0)
		no_answer(r, j, DIAG_FAIL);
	else if (r->status == 59)
		say(j, DIAG_WARN,
		    "answered 59 to a URL within the 1024-byte limit");
	else if (r->status == 51)
		say(j, DIAG_PASS, "answered 51");
	else
		say(j, DIAG_WARN, "answered %d, not 51, for a missing page",
		    r->status);
}

/* URLAboveMaxSize, URLUserinfo, URLFragment: a MUST to reject. */
static void
j_reject(const struct diag_check *c, const struct probe_result *r,
    struct judgment *j)
{
	(void)c;
	if (r->status < 0)
		no_answer(r, j, DIAG_WARN);
	else if (r->status == 59)
		say(j, DIAG_PASS, "rejected with 59");
	else if (r->status / 10 < 4 || r->status == 51)
		say(j, DIAG_FAIL, "accepted: answered %d", r->status);
	else
		say(j, DIAG_WARN, "rejected with %d rather than 59", r->status);
}

static void
j_dots(const struct diag_check *c, const struct probe_result *r,
    struct judgment *j)
{
	(void)c;
	if (r->status < 0)
		no_answer(r, j, DIAG_WARN);
	else if (r->status / 10 >= 3)
		say(j, DIAG_PASS, "answered %d", r->status);
	else
		say(j, DIAG_WARN,
		    "answered %d: see that it served the root, not a file "
		    "above it",
		    r->status);
}

static void
j_concurrent(const struct diag_check *c, const struct probe_result *r,
    struct judgment *j)
{
	(void)c;
	if (r->status >= 10)
		say(j, DIAG_PASS,
		    "answered %d while another connection sat "
		    "idle",
		    r->status);
	else
		say(j, DIAG_WARN,
		    "no answer while another connection sat idle: %s", msg(r));
}

/* How every answer with a header ended, whatever the check asked. */
static void
judge_end(const struct probe_result *r, struct judgment *j)
{
	switch (r->end) {
	case END_CLOSE_NOTIFY:
	case END_LIMIT:
	case END_NONE:
		break;
	case END_TIMEOUT:
		say(j, DIAG_FAIL,
		    "the response did not end within the "
		    "deadline");
		break;
	default:
		say(j, DIAG_FAIL, "ended without close_notify (%s)",
		    end_name(r->end));
		break;
	}
	if (r->status / 10 != 2 && r->body_bytes > 0)
		say(j, DIAG_FAIL, "a %d response carried a %lld-byte body",
		    r->status, (long long)r->body_bytes);
}

/* ---- request builders ---------------------------------------------------
 */

static void
b_root(const struct diag_ctx *x, struct buf *b)
{
	buf_printf(b, "gemini://%s/\r\n", x->netloc);
}

static void
b_empty_path(const struct diag_ctx *x, struct buf *b)
{
	buf_printf(b, "gemini://%s\r\n", x->netloc);
}

static void
b_missing(const struct diag_ctx *x, struct buf *b)
{
	buf_printf(b, "gemini://%s" DIAG_MISSING "\r\n", x->netloc);
}

static void
b_no_cr(const struct diag_ctx *x, struct buf *b)
{
	buf_printf(b, "gemini://%s/\n", x->netloc);
}

static void
b_port(const struct diag_ctx *x, struct buf *b)
{
	buf_printf(b, "gemini://%s/\r\n", x->hostport);
}

static void
b_no_scheme(const struct diag_ctx *x, struct buf *b)
{
	buf_printf(b, "//%s/\r\n", x->netloc);
}

static void
b_utf8(const struct diag_ctx *x, struct buf *b)
{
	buf_printf(b, "gemini://%s/\xff\xfe\r\n", x->netloc);
}

/* A URL of exactly len bytes (a missing path padded with zeros). */
static void
b_sized(const struct diag_ctx *x, struct buf *b, size_t len)
{
	buf_printf(b, "gemini://%s/", x->netloc);
	while (b->len < len)
		buf_addc(b, '0');
	buf_adds(b, "\r\n");
}

static void
b_1024(const struct diag_ctx *x, struct buf *b)
{
	b_sized(x, b, URL_MAX);
}

static void
b_1025(const struct diag_ctx *x, struct buf *b)
{
	b_sized(x, b, URL_MAX + 1);
}

static void
b_wrong_port(const struct diag_ctx *x, struct buf *b)
{
	buf_printf(b, "gemini://%s:%d/\r\n", x->host,
	    x->t->url->port == 443 ? 80 : 443);
}

static void
b_foreign(const struct diag_ctx *x, struct buf *b)
{
	(void)x;
	buf_adds(b, "gemini://" DIAG_FOREIGN "/\r\n");
}

static void
b_http(const struct diag_ctx *x, struct buf *b)
{
	buf_printf(b, "http://%s/\r\n", x->netloc);
}

static void
b_https(const struct diag_ctx *x, struct buf *b)
{
	buf_printf(b, "https://%s/\r\n", x->netloc);
}

static void
b_gopher(const struct diag_ctx *x, struct buf *b)
{
	buf_printf(b, "gopher://%s/\r\n", x->netloc);
}

static void
b_empty(const struct diag_ctx *x, struct buf *b)
{
	(void)x;
	buf_adds(b, "\r\n");
}

static void
b_relative(const struct diag_ctx *x, struct buf *b)
{
	(void)x;
	buf_adds(b, "/\r\n");
}

static void
b_text(const struct diag_ctx *x, struct buf *b)
{
	(void)x;
	buf_adds(b, "Hello Gemini!\r\n");
}

static void
b_dots(const struct diag_ctx *x, struct buf *b)
{
	buf_printf(b, "gemini://%s/../../\r\n", x->netloc);
}

static void
b_userinfo(const struct diag_ctx *x, struct buf *b)
{
	buf_printf(b, "gemini://gemwatch@%s/\r\n", x->netloc);
}

static void
b_fragment(const struct diag_ctx *x, struct buf *b)
{
	buf_printf(b, "gemini://%s/#gemwatch\r\n", x->netloc);
}

/* ---- the table ---------------------------------------------------------- */

/*
 * Where the rules are: the Gemini network protocol specification v0.24.1
 * (geminiprotocol.net/docs/protocol-specification.gmi), its sections
 * Overview, Requests, Responses, Status codes and TLS server certificate
 * validation. A MUST missed is a fail; a SHOULD, or what the
 * specification leaves open, is a warn and says so.
 */
#define R_OVERVIEW "Overview"
#define R_REQUESTS "Requests"
#define R_RESPONSES "Responses"
#define R_STATUS "Status codes"
#define R_URI "the spec's URI rules"
#define R_CERT "TLS server certificate validation"
#define R_NOT "not a rule of the spec"
#define R_BAD R_STATUS ": 59 is for a request the server cannot parse"

static const struct diag_check checks[] = {
    {"IPv4Address", "The capsule answers over IPv4",
        R_NOT "; a published address should answer (warn)", b_root, j_reach, 0,
        DIAG_WARN, AF_INET, 0},
    {"IPv6Address", "The capsule answers over IPv6",
        R_NOT "; a published address should answer (warn)", b_root, j_reach, 0,
        DIAG_WARN, AF_INET6, 0},
    {"TLSVersion", "The server negotiates TLS 1.2 or later, ideally 1.3",
        R_OVERVIEW ": servers MUST support TLS 1.2 or higher (fail); "
                   "preferring 1.3 is " R_NOT " (warn)",
        b_root, j_tls_version, 0, DIAG_FAIL, 0, 0},
    {"TLSClaims", "The certificate is valid now and names the host",
        R_CERT ": clients are strongly RECOMMENDED to trust on first "
               "use, self-signed is fine; dates and names are " R_NOT " (warn)",
        b_root, j_claims, 0, DIAG_WARN, 0, 0},
    {"TLSRequired", "A request over bare TCP gets no Gemini answer",
        R_OVERVIEW ": Gemini runs over TLS; refusing bare TCP is " R_NOT
                   " (warn)",
        b_root, j_plain, 0, DIAG_WARN, 0, DF_PLAIN},
    {"ResponseFormat",
        "The root answers 20 with a well-formed header and a MIME type",
        R_RESPONSES ": a success header is \"2\" DIGIT SP mimetype CRLF "
                    "(fail); that the root answers 20 is " R_NOT " (warn)",
        b_root, j_format, 0, DIAG_FAIL, 0, 0},
    {"HomepageNoRedirect",
        "An empty path is served like \"/\", without a redirect",
        R_URI ": an empty path and \"/\" are equivalent, servers MUST "
              "support both without sending a redirection (fail)",
        b_empty_path, j_empty_path, 0, DIAG_FAIL, 0, 0},
    {"PageNotFound", "A page that does not exist answers 51, no body",
        R_STATUS
        ": 51 is not found, no rule makes it the answer (warn); " R_RESPONSES
        ": only a 2x response has a body (fail)",
        b_missing, j_missing, 51, DIAG_WARN, 0, 0},
    {"RequestMissingCR",
        "A request ended by LF alone is not served as complete",
        R_REQUESTS ": a request is absolute-URI CRLF; the answer to LF "
                   "alone is not specified (warn)",
        b_no_cr, j_no_cr, 0, DIAG_WARN, 0, DF_SILENCE},
    {"URLIncludePort", "A URL that names the port is served",
        R_URI ": the port defaults to 1965; gemini://H:P/ naming the "
              "server's own port is the same resource (STD66 6.2.3; warn)",
        b_port, j_status, 20, DIAG_WARN, 0, 0},
    {"URLSchemeMissing", "A URL without a scheme is rejected with 59",
        R_REQUESTS ": a request is an absolute-URI; " R_BAD " (warn)",
        b_no_scheme, j_status, 59, DIAG_WARN, 0, 0},
    {"URLInvalidUTF8Byte",
        "A URL with a byte that is not UTF-8 is rejected with 59",
        R_REQUESTS ": a request is an absolute-URI (STD66), which has no "
                   "raw byte 0xFF; " R_BAD " (warn)",
        b_utf8, j_status, 59, DIAG_WARN, 0, 0},
    {"URLMaxSize", "A URL of exactly 1024 bytes is served (here 51)",
        R_REQUESTS ": the URI MUST NOT exceed 1024 bytes, so 1024 is "
                   "within it; refusing it breaks no MUST (warn)",
        b_1024, j_max1024, 0, DIAG_WARN, 0, 0},
    {"URLAboveMaxSize", "A URL of 1025 bytes is rejected with 59",
        R_REQUESTS ": a server MUST reject requests where the URI exceeds "
                   "1024 bytes (fail)",
        b_1025, j_reject, 0, DIAG_FAIL, 0, 0},
    {"URLWrongPort", "A URL for another port is refused with 53",
        R_STATUS ": 53 is for a domain the server does not serve; a "
                 "foreign port is in no rule (warn)",
        b_wrong_port, j_status, 53, DIAG_WARN, 0, 0},
    {"URLWrongHost", "A URL for a foreign host is refused with 53",
        R_STATUS ": 53 is for a domain the server does not serve and "
                 "does not proxy; proxying is allowed (warn)",
        b_foreign, j_status, 53, DIAG_WARN, 0, 0},
    {"URLSchemeHTTP", "An http:// URL is refused with 53",
        "no rule names the answer to another scheme; 53 (proxy request "
        "refused) as gemini-diagnostics expects (warn)",
        b_http, j_status, 53, DIAG_WARN, 0, 0},
    {"URLSchemeHTTPS", "An https:// URL is refused with 53",
        "no rule names the answer to another scheme; 53 (proxy request "
        "refused) as gemini-diagnostics expects (warn)",
        b_https, j_status, 53, DIAG_WARN, 0, 0},
    {"URLSchemeGopher", "A gopher:// URL is refused with 53",
        "no rule names the answer to another scheme; 53 (proxy request "
        "refused) as gemini-diagnostics expects (warn)",
        b_gopher, j_status, 53, DIAG_WARN, 0, 0},
    {"URLEmpty", "An empty request is rejected with 59",
        R_REQUESTS ": a request is an absolute-URI; " R_BAD " (warn)", b_empty,
        j_status, 59, DIAG_WARN, 0, 0},
    {"URLRelative", "A relative URL is rejected with 59",
        R_REQUESTS ": a request is an absolute-URI; " R_BAD " (warn)",
        b_relative, j_status, 59, DIAG_WARN, 0, 0},
    {"URLInvalid", "Random text is rejected with 59",
        R_REQUESTS ": a request is an absolute-URI; " R_BAD " (warn)", b_text,
        j_status, 59, DIAG_WARN, 0, 0},
    {"URLDotEscape", "A path of \"..\" cannot climb above the root",
        "STD66 5.2.4: dot segments are removed; serving above the root "
        "is " R_NOT " (warn)",
        b_dots, j_dots, 0, DIAG_WARN, 0, 0},
    {"URLUserinfo", "A URL with userinfo is rejected with 59",
        R_REQUESTS ": a server MUST reject a request with a userinfo "
                   "portion (fail)",
        b_userinfo, j_reject, 0, DIAG_FAIL, 0, 0},
    {"URLFragment", "A URL with a fragment is rejected with 59",
        R_REQUESTS ": clients MUST NOT send a fragment and a server MUST "
                   "reject such requests (fail)",
        b_fragment, j_reject, 0, DIAG_FAIL, 0, 0},
    {"ConcurrentConnections",
        "A request is served while another connection sits idle",
        R_NOT "; one slow client should not stop the server (warn)", b_root,
        j_concurrent, 0, DIAG_WARN, 0, DF_IDLE},
};

#define NCHECKS (sizeof checks / sizeof checks[0])

size_t
diag_checks(void)
{
	return NCHECKS;
}

const char *
diag_check_name(size_t i)
{
	return i < NCHECKS ? checks[i].name : NULL;
}

const char *
diag_check_purpose(size_t i)
{
	return i < NCHECKS ? checks[i].purpose : NULL;
}

const char *
diag_check_rule(size_t i)
{
	return i < NCHECKS ? checks[i].rule : NULL;
}

int
diag_check_find(const char *name)
{
	size_t i;

	for (i = 0; i < NCHECKS; i++)
		if (strcmp(checks[i].name, name) == 0)
			return (int)i;
	return -1;
}

static const char *verdict_names[DIAG__COUNT] = {
    "pass", "fail", "warn", "skip"};

const char *
diag_verdict_name(enum diag_verdict v)
{
	return v < DIAG__COUNT ? verdict_names[v] : NULL;
}

int
diag_select(
    const char *list, unsigned char *sel, const char **bad, size_t *badlen)
{
	const char *p = list, *e;
	size_t i, len;

	memset(sel, 0, NCHECKS);
	for (;;) {
		e = strchr(p, ',');
		len = e != NULL ? (size_t)(e - p) : strlen(p);
		for (i = 0; i < NCHECKS; i++)
			if (strlen(checks[i].name) == len &&
			    memcmp(checks[i].name, p, len) == 0)
				break;
		if (i == NCHECKS) {
			*bad = p;
			*badlen = len;
			return -1;
		}
		sel[i] = 1;
		if (e == NULL)
			return 0;
		p = e + 1;
	}
}

/* ---- escaping ------------------------------------------------------------
 */

void
diag_escape(struct buf *b, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char c;
	size_t i;

	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (c == '\r')
			buf_adds(b, "\\r");
		else if (c == '\n')
			buf_adds(b, "\\n");
		else if (c == '\\')
			buf_adds(b, "\\\\");
		else if (c >= 0x20 && c < 0x7f)
			buf_addc(b, (char)c);
		else {
			buf_adds(b, "\\x");
			buf_addc(b, hex[c >> 4]);
			buf_addc(b, hex[c & 15]);
		}
	}
}

/* ---- running ------------------------------------------------------------- */

struct diag_run {
	struct diag_target t;
	struct diag_ctx x;
	unsigned char sel[NCHECKS];
	size_t i;      /* the check being run, or the next one */
	int out;       /* a request of check i is out */
	int learning;  /* ... to learn the address for DF_IDLE */
	int learnt;    /* that was tried */
	int idle;      /* DF_IDLE's idle connection, or -1 */
	struct buf rq; /* the bytes of the request out */
	struct probe_req req;
	struct diag_report rep;
};

static void
ctx_init(struct diag_ctx *x, const struct diag_target *t)
{
	const char *h = t->url->host;
	int v6 = strchr(h, ':') != NULL;

	memset(x, 0, sizeof *x);
	x->t = t;
	snprintf(x->host, sizeof x->host, v6 ? "[%s]" : "%s", h);
	snprintf(
	    x->hostport, sizeof x->hostport, "%s:%d", x->host, t->url->port);
	if (t->url->port == 1965)
		snprintf(x->netloc, sizeof x->netloc, "%s", x->host);
	else
		snprintf(x->netloc, sizeof x->netloc, "%s", x->hostport);
}

/* Keep the first address that answered, for ConcurrentConnections. */
static void
ctx_note(struct diag_ctx *x, const struct probe_result *r)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)&x->addr;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&x->addr;

	if (x->have_addr || r->address[0] == '\0' || r->status < 0)
		return;
	memset(&x->addr, 0, sizeof x->addr);
	if (r->ip_protocol == 6 &&
	    inet_pton(AF_INET6, r->address, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)r->port);
		x->have_addr = 1;
	} else if (r->ip_protocol == 4 &&
	           inet_pton(AF_INET, r->address, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)r->port);
		x->have_addr = 1;
	}
}

static int
cancelled(const struct diag_target *t)
{
	struct pollfd pfd;

	if (t->cancel_fd == -1)
		return 0;
	pfd.fd = t->cancel_fd;
	pfd.events = POLLIN;
	pfd.revents = 0;
	return poll(&pfd, 1, 0) > 0;
}

/*
 * A TCP connection to x->addr that says nothing; -1 when it fails at
 * once. It is not waited for: its SYN leaves before the probe's, so it
 * is first in the server's queue of connections to accept, and the probe
 * (on the same address) tells whether the server serves another while
 * this one sits idle.
 */
static int
idle_open(const struct diag_ctx *x)
{
	socklen_t len;
	int fd;

	len = x->addr.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
	                                    : sizeof(struct sockaddr_in);
	fd = socket(x->addr.ss_family,
	    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	if (fd == -1)
		return -1;
	if (connect(fd, (const struct sockaddr *)&x->addr, len) == 0 ||
	    errno == EINPROGRESS)
		return fd;
	close(fd);
	return -1;
}

/* The request for check c (or the plain root, learning) into run->req. */
static const struct probe_req *
put(struct diag_run *run, const struct diag_check *c, int learning)
{
	const struct diag_target *t = &run->t;
	struct probe_req *req = &run->req;

	buf_free(&run->rq);
	buf_init(&run->rq);
	if (learning)
		b_root(&run->x, &run->rq);
	else
		c->build(&run->x, &run->rq);
	probe_req_init(req, t->url);
	req->request = run->rq.data;
	req->request_len = run->rq.len;
	req->plain = !learning && (c->flags & DF_PLAIN) != 0;
	req->family = c->family != 0 && !learning ? c->family : t->family;
	req->timeout = t->timeout;
	if (!learning && (c->flags & DF_SILENCE) && req->timeout > DIAG_SILENCE)
		req->timeout = DIAG_SILENCE;
	req->sni = t->sni;
	req->cancel_fd = t->cancel_fd;
	if (!learning && run->idle != -1)
		req->family = run->x.addr.ss_family;
	run->out = 1;
	run->learning = learning;
	return req;
}

/* An outcome without a request: skipped, or failed before one. */
static void
record(struct diag_run *run, const struct diag_check *c, enum diag_verdict v,
    const char *why)
{
	struct diag_outcome *o = &run->rep.o[run->rep.n++];

	memset(o, 0, sizeof *o);
	o->name = c->name;
	o->status = -1;
	o->body_bytes = -1;
	o->verdict = v;
	o->why = xstrdup(why);
	run->rep.count[v]++;
}

/* Judge the answer res to check c's request. */
static void
judge(struct diag_run *run, const struct diag_check *c,
    const struct probe_result *res)
{
	struct diag_outcome *o = &run->rep.o[run->rep.n++];
	struct judgment j;
	struct buf esc;

	memset(o, 0, sizeof *o);
	o->name = c->name;
	j.verdict = DIAG_PASS;
	buf_init(&j.why);
	buf_init(&esc);
	diag_escape(
	    &esc, run->rq.data != NULL ? run->rq.data : "", run->rq.len);
	o->request = buf_steal(&esc, NULL);
	o->status = res->status;
	o->meta = res->meta != NULL ? xstrdup(res->meta) : NULL;
	o->end = res->end;
	o->body_bytes = res->body_bytes;
	if (res->tls_version != NULL)
		snprintf(o->tls_version, sizeof o->tls_version, "%s",
		    res->tls_version);
	memcpy(o->address, res->address, sizeof o->address);
	c->judge(c, res, &j);
	if (res->status >= 10 && !(c->flags & DF_PLAIN))
		judge_end(res, &j);
	o->verdict = j.verdict;
	o->why = buf_steal(&j.why, NULL);
	run->rep.count[o->verdict]++;
}

struct diag_run *
diag_run_new(const struct diag_target *t, const unsigned char *sel)
{
	struct diag_run *run;

	run = xcalloc(1, sizeof *run);
	run->t = *t;
	ctx_init(&run->x, &run->t);
	if (sel != NULL)
		memcpy(run->sel, sel, NCHECKS);
	else
		memset(run->sel, 1, NCHECKS);
	run->idle = -1;
	buf_init(&run->rq);
	diag_report_init(&run->rep);
	xasprintf(&run->rep.target, "gemini://%s/", run->x.netloc);
	run->rep.o = xcalloc(NCHECKS, sizeof *run->rep.o);
	return run;
}

const struct probe_req *
diag_run_next(struct diag_run *run, const struct probe_result *prev)
{
	const struct diag_target *t = &run->t;
	const struct diag_check *c;

	if (run->out) {
		run->out = 0;
		c = &checks[run->i];
		if (prev != NULL)
			ctx_note(&run->x, prev);
		if (run->learning)
			run->learnt = 1; /* now check i itself */
		else {
			if (prev != NULL)
				judge(run, c, prev);
			if (run->idle != -1)
				close(run->idle);
			run->idle = -1;
			run->i++;
		}
	}
	for (; run->i < NCHECKS; run->i++) {
		c = &checks[run->i];
		if (!run->sel[run->i])
			continue;
		if (c->family != 0 && t->family != AF_UNSPEC &&
		    t->family != c->family) {
			record(run, c, DIAG_SKIP,
			    t->family == AF_INET6 ? "only IPv6 was asked for"
			                          : "only IPv4 was asked for");
			continue;
		}
		if (c->flags & DF_IDLE) {
			if (!run->x.have_addr && !run->learnt)
				return put(run, c, 1);
			if (!run->x.have_addr ||
			    (run->idle = idle_open(&run->x)) == -1) {
				record(run, c, DIAG_FAIL,
				    "could not open the idle connection");
				continue;
			}
		}
		return put(run, c, 0);
	}
	return NULL;
}

void
diag_run_end(struct diag_run *run, struct diag_report *rep)
{
	diag_report_free(rep);
	*rep = run->rep;
	rep->time = clock_wall();
	diag_report_init(&run->rep);
	diag_run_free(run);
}

void
diag_run_free(struct diag_run *run)
{
	if (run == NULL)
		return;
	if (run->idle != -1)
		close(run->idle);
	buf_free(&run->rq);
	diag_report_free(&run->rep);
	free(run);
}

void
diag_report_init(struct diag_report *rep)
{
	memset(rep, 0, sizeof *rep);
}

void
diag_report_free(struct diag_report *rep)
{
	size_t i;

	for (i = 0; i < rep->n; i++) {
		free(rep->o[i].request);
		free(rep->o[i].meta);
		free(rep->o[i].why);
	}
	free(rep->o);
	free(rep->target);
	diag_report_init(rep);
}

int
diagnose_run(const struct diag_target *t, const unsigned char *sel,
    struct diag_report *rep,
    void (*done)(void *arg, const struct diag_outcome *), void *arg)
{
	struct diag_run *run;
	const struct probe_req *req;
	struct probe_result res;
	size_t n = 0;
	int rv = 0;

	run = diag_run_new(t, sel);
	result_init(&res);
	for (req = diag_run_next(run, NULL); req != NULL;
	     req = diag_run_next(run, &res)) {
		for (; done != NULL && n < run->rep.n; n++)
			done(arg, &run->rep.o[n]);
		if (cancelled(t)) {
			rv = -1;
			break;
		}
		result_clear(&res);
		(void)probe_run(req, &res);
	}
	for (; done != NULL && n < run->rep.n; n++)
		done(arg, &run->rep.o[n]);
	result_clear(&res);
	diag_run_end(run, rep);
	return rv;
}

/* ---- outputs ------------------------------------------------------------- */

void
diag_summary(const struct diag_report *rep, struct buf *b)
{
	static const enum diag_verdict order[] = {
	    DIAG_PASS, DIAG_FAIL, DIAG_WARN, DIAG_SKIP};
	const char *sep = "";
	size_t i, k;

	for (k = 0; k < DIAG__COUNT; k++) {
		if (rep->count[order[k]] == 0)
			continue;
		buf_printf(b, "%s%u %s", sep, rep->count[order[k]],
		    verdict_names[order[k]]);
		sep = ", ";
	}
	if (rep->n == 0)
		buf_adds(b, "no checks");
	/* Name what failed, else what warned. */
	for (k = DIAG_FAIL; k <= DIAG_WARN; k++) {
		if (rep->count[k] == 0)
			continue;
		sep = ": ";
		for (i = 0; i < rep->n; i++) {
			if (rep->o[i].verdict != k)
				continue;
			buf_printf(b, "%s%s", sep, rep->o[i].name);
			sep = ", ";
		}
		break;
	}
}

static json_t *
jstr_or_null(const char *s)
{
	struct buf b;
	json_t *j;

	if (s == NULL)
		return json_null();
	buf_init(&b);
	utf8_sanitize(&b, s, strlen(s));
	j = json_stringn(b.data != NULL ? b.data : "", b.len);
	buf_free(&b);
	return j;
}

#define SET(o, k, v)                                                           \
	do {                                                                   \
		if (json_object_set_new((o), (k), (v)) != 0)                   \
			goto fail;                                             \
	} while (0)

static json_t *
outcome_json(const struct diag_outcome *o)
{
	json_t *j;
	int i = diag_check_find(o->name);

	if ((j = json_object()) == NULL)
		return NULL;
	SET(j, "name", json_string(o->name));
	SET(j, "purpose", jstr_or_null(diag_check_purpose((size_t)i)));
	SET(j, "rule", jstr_or_null(diag_check_rule((size_t)i)));
	SET(j, "request", jstr_or_null(o->request));
	SET(j, "status",
	    o->status >= 0 ? json_integer(o->status) : json_null());
	SET(j, "meta", jstr_or_null(o->meta));
	SET(j, "end", jstr_or_null(end_name(o->end)));
	SET(j, "body_bytes",
	    o->body_bytes >= 0 ? json_integer(o->body_bytes) : json_null());
	SET(j, "tls_version",
	    jstr_or_null(o->tls_version[0] != '\0' ? o->tls_version : NULL));
	SET(j, "address",
	    jstr_or_null(o->address[0] != '\0' ? o->address : NULL));
	SET(j, "verdict", json_string(verdict_names[o->verdict]));
	SET(j, "why", jstr_or_null(o->why));
	return j;
fail:
	json_decref(j);
	return NULL;
}

json_t *
diag_report_json(const struct diag_report *rep)
{
	json_t *j, *counts, *list, *o, *v;
	struct buf b;
	char when[32];
	size_t i;

	if ((j = json_object()) == NULL)
		return NULL;
	SET(j, "target", jstr_or_null(rep->target));
	if (rep->time > 0) {
		format_rfc3339((time_t)rep->time, when);
		SET(j, "time", json_string(when));
	} else
		SET(j, "time", json_null());
	if ((counts = json_object()) == NULL)
		goto fail;
	SET(j, "counts", counts);
	for (i = 0; i < DIAG__COUNT; i++)
		SET(counts, verdict_names[i], json_integer(rep->count[i]));
	if ((list = json_array()) == NULL)
		goto fail;
	SET(j, "checks", list);
	for (i = 0; i < rep->n; i++) {
		if ((o = outcome_json(&rep->o[i])) == NULL ||
		    json_array_append_new(list, o) != 0)
			goto fail;
	}
	buf_init(&b);
	diag_summary(rep, &b);
	v = json_stringn(b.data, b.len);
	buf_free(&b);
	SET(j, "summary", v);
	return j;
fail:
	json_decref(j);
	return NULL;
}

/* A copy of string member k, or NULL. */
static char *
jdup(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s != NULL ? xstrdup(s) : NULL;
}

int
diag_report_from_json(json_t *j, struct diag_report *rep)
{
	json_t *list, *e, *v;
	struct diag_outcome *o;
	struct tm tm;
	const char *s;
	size_t i, k;
	int c;

	diag_report_free(rep);
	list = json_object_get(j, "checks");
	if (!json_is_object(j) || !json_is_array(list) ||
	    json_array_size(list) > NCHECKS)
		return -1;
	rep->target = jdup(j, "target");
	if ((s = json_string_value(json_object_get(j, "time"))) != NULL) {
		memset(&tm, 0, sizeof tm);
		if (strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm) != NULL)
			rep->time = (double)timegm(&tm);
	}
	rep->o = xcalloc(NCHECKS, sizeof *rep->o);
	json_array_foreach(list, i, e)
	{
		s = json_string_value(json_object_get(e, "name"));
		if (s == NULL || (c = diag_check_find(s)) == -1)
			continue;
		o = &rep->o[rep->n];
		o->name = checks[c].name;
		o->request = jdup(e, "request");
		v = json_object_get(e, "status");
		o->status =
		    json_is_integer(v) ? (int)json_integer_value(v) : -1;
		if (o->status < 10 || o->status > 69)
			o->status = -1;
		o->meta = jdup(e, "meta");
		o->end = END_NONE;
		if ((s = json_string_value(json_object_get(e, "end"))) != NULL)
			for (k = END_NONE + 1; k < END__COUNT; k++)
				if (strcmp(s, end_name(k)) == 0)
					o->end = k;
		v = json_object_get(e, "body_bytes");
		o->body_bytes = json_is_integer(v) ? json_integer_value(v) : -1;
		if ((s = json_string_value(
		         json_object_get(e, "tls_version"))) != NULL)
			snprintf(
			    o->tls_version, sizeof o->tls_version, "%s", s);
		if ((s = json_string_value(json_object_get(e, "address"))) !=
		    NULL)
			snprintf(o->address, sizeof o->address, "%s", s);
		o->verdict = DIAG_SKIP;
		if ((s = json_string_value(json_object_get(e, "verdict"))) !=
		    NULL)
			for (k = 0; k < DIAG__COUNT; k++)
				if (strcmp(s, verdict_names[k]) == 0)
					o->verdict = k;
		o->why = jdup(e, "why");
		if (o->why == NULL)
			o->why = xstrdup("");
		rep->count[o->verdict]++;
		rep->n++;
	}
	return 0;
}
