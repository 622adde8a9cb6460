/*
 * The configuration file (SPEC.md §3): text in, struct conf out. The text
 * is split into lines and each line into words (blanks separate them, a
 * double-quoted part may hold blanks and "#", with \" and \\ escapes);
 * the first word is looked up in a sorted keyword table and typed helpers
 * check each value once. The file is hostile input: every line and value
 * is bounded, NUL bytes and bad UTF-8 are errors, and every error is
 * collected with its line instead of stopping at the first. Global
 * settings apply to every capsule wherever they appear, so defaults are
 * filled in after the whole file was read. A parsed configuration is
 * shared by reference (conf_hold, conf_free); the running one is kept
 * here for any thread to hold, and the shard rule is applied here once.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "conf.h"
#include "crawl.h"
#include "defaults.h"
#include "hash.h"
#include "hex.h"
#include "reguard.h"
#include "utf8.h"
#include "xmalloc.h"

#define nitems(a) (sizeof(a) / sizeof((a)[0]))

#define CONF_FILE_MAX (16 * 1024 * 1024) /* bytes conf_load reads */
#define CONF_LINE_MAX 65536              /* bytes in one line */
#define CONF_SHOW_MAX 64 /* bytes of a value quoted in a message */
/*
 * Errors reported: the first ones in line order, then a count of the
 * rest. A file of 8 million bad lines took 48 s and 800 MB to report.
 */
#define CONF_ERRORS_MAX 200
#define CONF_NAME_MAX 128 /* bytes in a capsule name */
#define CONF_SHARD_MAX 1000
#define CONF_PATH_MAX 4096    /* bytes in state-dir */
#define CONF_USER_MAX 32      /* bytes in a user name */
#define CONF_NOTIFY_MAX 16    /* notify commands */
#define CONF_NOTIFY_ARGS 64   /* words in one notify command */
#define CONF_RESOLVERS_MAX 16 /* resolver addresses */
#define CONF_CONCURRENCY_MAX 65536
#define DNS_PORT 53
#define DURATION_MAX 1e9 /* seconds; anything longer is an overflow */

struct parser;

/* A directive handler gets the words after the keyword. */
typedef void directive_fn(struct parser *, char **, size_t);
/* A capsule option handler gets the text after "key=". */
typedef void option_fn(struct parser *, struct capsule_conf *, const char *);

static directive_fn d_capsule, d_concurrency, d_history, d_interval, d_listen,
    d_max_body, d_notify, d_notify_after, d_notify_cert_days, d_notify_repeat,
    d_notify_timeout, d_probe_allow, d_resolver, d_shard, d_state_dir,
    d_timeout, d_user;
static option_fn o_address_family, o_crawl, o_crawl_delay, o_crawl_interval,
    o_diagnose, o_error_path, o_expect_body, o_expect_body_bytes,
    o_expect_status, o_fingerprint, o_interval, o_max_idle, o_name, o_notify,
    o_require_close_notify, o_sni, o_timeout;

#define DIRECTIVE_REPEAT 0x1 /* may be given more than once */
#define DIRECTIVE_WORDS 0x2  /* takes one or more words, not exactly one */

/* Sorted by name (strcmp) for bsearch. */
static const struct directive {
	const char *name;
	directive_fn *fn;
	int flags;
} directives[] = {
    {"capsule", d_capsule, DIRECTIVE_REPEAT | DIRECTIVE_WORDS},
    {"concurrency", d_concurrency, 0},
    {"history", d_history, 0},
    {"interval", d_interval, 0},
    {"listen", d_listen, DIRECTIVE_REPEAT},
    {"max-body", d_max_body, 0},
    {"notify", d_notify, DIRECTIVE_REPEAT | DIRECTIVE_WORDS},
    {"notify-after", d_notify_after, 0},
    {"notify-cert-days", d_notify_cert_days, 0},
    {"notify-repeat", d_notify_repeat, 0},
    {"notify-timeout", d_notify_timeout, 0},
    {"probe-allow", d_probe_allow, DIRECTIVE_REPEAT},
    {"resolver", d_resolver, DIRECTIVE_REPEAT | DIRECTIVE_WORDS},
    {"shard", d_shard, 0},
    {"state-dir", d_state_dir, 0},
    {"timeout", d_timeout, 0},
    {"user", d_user, 0},
};

/* Sorted by name (strcmp) for bsearch. */
static const struct option {
	const char *name;
	option_fn *fn;
} options[] = {
    {"address-family", o_address_family},
    {"crawl", o_crawl},
    {"crawl-delay", o_crawl_delay},
    {"crawl-interval", o_crawl_interval},
    {"diagnose", o_diagnose},
    {"error-path", o_error_path},
    {"expect-body", o_expect_body},
    {"expect-body-bytes", o_expect_body_bytes},
    {"expect-status", o_expect_status},
    {"fingerprint", o_fingerprint},
    {"interval", o_interval},
    {"max-idle", o_max_idle},
    {"name", o_name},
    {"notify", o_notify},
    {"require-close-notify", o_require_close_notify},
    {"sni", o_sni},
    {"timeout", o_timeout},
};

/* Bounds of a duration and how a message spells them. */
struct duration_range {
	double min, max;
	const char *min_text, *max_text;
};
static const struct duration_range interval_range = {
    1, 30 * 86400, "1s", "30d"};
static const struct duration_range timeout_range = {0.1, 3600, "100ms", "1h"};
static const struct duration_range repeat_range = {1, 30 * 86400, "1s", "30d"};
static const struct duration_range crawl_interval_range = {
    1, 30 * 86400, "1s", "30d"};
static const struct duration_range crawl_delay_range = {0, 3600, "0s", "1h"};
static const struct duration_range diagnose_range = {
    60, 30 * 86400, "1m", "30d"};

static int
directive_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct directive *)elem)->name);
}

static int
option_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct option *)elem)->name);
}

/*
 * An error kept until the end so that they are reported in line order:
 * the first CONF_ERRORS_MAX, counting the others.
 */
struct conf_error {
	int line;
	size_t seq;
	char *msg;
};

struct parser {
	const char *name; /* the file, for messages */
	struct conf *conf;
	int line;                     /* the line being parsed */
	int seen[nitems(directives)]; /* first line */
	int *listen_line;             /* parallel to conf->listen */
	size_t capsules_cap;
	struct conf_error *errs; /* at most CONF_ERRORS_MAX */
	size_t nerrs;
	size_t seq;     /* errors found so far */
	size_t dropped; /* found but not kept */
	size_t last;    /* full: the one reported last */
};

static void conf_error(struct parser *, int, const char *, ...)
    __attribute__((format(printf, 3, 4)));

static int
conf_error_cmp(const void *a, const void *b)
{
	const struct conf_error *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * Keep the error unless CONF_ERRORS_MAX that come before it in line
 * order are kept: then it is only counted, and not even formatted. An
 * error that comes before the last one kept takes its place.
 */
static void
conf_error(struct parser *p, int line, const char *fmt, ...)
{
	struct conf_error *e, key = {line, p->seq, NULL};
	char msg[1024];
	va_list ap;
	size_t i;

	p->seq++;
	if (p->nerrs == CONF_ERRORS_MAX) {
		p->dropped++;
		e = &p->errs[p->last];
		if (conf_error_cmp(&key, e) > 0)
			return;
		free(e->msg);
	} else {
		if (p->errs == NULL)
			p->errs = xreallocarray(
			    NULL, CONF_ERRORS_MAX, sizeof(*p->errs));
		e = &p->errs[p->nerrs++];
	}
	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	*e = key;
	if (line > 0)
		xasprintf(&e->msg, "%s:%d: %s", p->name, line, msg);
	else
		xasprintf(&e->msg, "%s: %s", p->name, msg);
	if (p->nerrs < CONF_ERRORS_MAX)
		return;
	for (p->last = 0, i = 1; i < p->nerrs; i++)
		if (conf_error_cmp(&p->errs[i], &p->errs[p->last]) > 0)
			p->last = i;
}

static void
errors_add(struct conf_errors *errs, char *msg)
{
	if (errs == NULL) {
		free(msg);
		return;
	}
	errs->msg = xreallocarray(errs->msg, errs->n + 1, sizeof(*errs->msg));
	errs->msg[errs->n++] = msg;
}

/*
 * A value for a message: at most CONF_SHOW_MAX bytes, cut on a UTF-8
 * character boundary, "..." when cut. Lines hold no control bytes but
 * tab, so what is shown cannot disturb a terminal or a log.
 */
static const char *
show(char out[CONF_SHOW_MAX + 4], const char *s)
{
	size_t n = strlen(s);

	if (n <= CONF_SHOW_MAX)
		return s;
	n = CONF_SHOW_MAX;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	memcpy(out, s, n);
	memcpy(out + n, "...", 4);
	return out;
}

/*
 * Split a line into words. Decoded words go to out (at least len + 1
 * bytes), pointers to them to *words. Returns -1 on an unterminated quote.
 */
static int
conf_split(const char *s, size_t len, char *out, char ***words, size_t *nwords)
{
	size_t i = 0, o = 0, start, cap = 0;

	*words = NULL;
	*nwords = 0;
	for (;;) {
		while (i < len && (s[i] == ' ' || s[i] == '\t'))
			i++;
		if (i == len || s[i] == '#')
			return 0;
		start = o;
		while (i < len && s[i] != ' ' && s[i] != '\t' && s[i] != '#') {
			if (s[i] != '"') {
				out[o++] = s[i++];
				continue;
			}
			for (i++;; i++) {
				if (i == len)
					return -1;
				if (s[i] == '"')
					break;
				if (s[i] == '\\' && i + 1 < len &&
				    (s[i + 1] == '"' || s[i + 1] == '\\'))
					i++;
				out[o++] = s[i];
			}
			i++;
		}
		out[o++] = '\0';
		if (*nwords == cap) {
			cap = cap ? cap * 2 : 8;
			*words = xreallocarray(*words, cap, sizeof(**words));
		}
		(*words)[(*nwords)++] = out + start;
	}
}

/* Digits only, at most 18 of them (no overflow); -1 otherwise. */
static int
parse_digits(const char *s, size_t len, unsigned long long *v)
{
	size_t i;

	if (len == 0 || len > 18)
		return -1;
	*v = 0;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		*v = *v * 10 + (unsigned)(s[i] - '0');
	}
	return 0;
}

int
parse_duration(const char *s, double *out)
{
	static const struct {
		const char *suffix;
		double scale;
	} units[] = {
	    {"", 1},
	    {"ms", 0.001},
	    {"s", 1},
	    {"m", 60},
	    {"h", 3600},
	    {"d", 86400},
	};
	unsigned long long whole, frac = 0;
	size_t n, k = 0, i;
	double v, scale = 1;

	/* Not strtod: it takes blanks, signs, "inf", hex and the locale. */
	for (n = 0; s[n] >= '0' && s[n] <= '9'; n++)
		;
	if (n > 12 || parse_digits(s, n, &whole) == -1)
		return -1;
	s += n;
	if (*s == '.') {
		s++;
		for (k = 0; s[k] >= '0' && s[k] <= '9'; k++)
			scale *= 10;
		if (k > 9 || parse_digits(s, k, &frac) == -1)
			return -1;
		s += k;
	}
	for (i = 0; i < nitems(units); i++) {
		if (strcmp(s, units[i].suffix) != 0)
			continue;
		v = ((double)whole + (double)frac / scale);
		/* Divide for "ms" so that "100ms" is exactly 0.1. */
		v = units[i].scale < 1 ? v / 1000 : v * units[i].scale;
		if (v > DURATION_MAX)
			return -1;
		*out = v;
		return 0;
	}
	return -1;
}

int
parse_size(const char *s, size_t *out)
{
	unsigned long long v, scale = 1;
	size_t n;

	for (n = 0; s[n] >= '0' && s[n] <= '9'; n++)
		;
	if (parse_digits(s, n, &v) == -1)
		return -1;
	switch (s[n]) {
	case '\0':
		break;
	case 'k':
	case 'K':
		scale = 1024;
		break;
	case 'M':
		scale = 1024 * 1024;
		break;
	case 'G':
		scale = 1024 * 1024 * 1024;
		break;
	default:
		return -1;
	}
	if (s[n] != '\0' && s[n + 1] != '\0')
		return -1;
	if (v > SIZE_MAX / scale)
		return -1;
	*out = v * scale;
	return 0;
}

/* The typed checks: each reports its own error and returns -1. */

static int
get_duration(struct parser *p, const char *what, const char *s,
    const struct duration_range *r, double *out)
{
	char b[CONF_SHOW_MAX + 4];
	double v;

	if (parse_duration(s, &v) == -1) {
		conf_error(p, p->line,
		    "invalid duration \"%s\" for %s "
		    "(expected a number with ms, s, m, h or d)",
		    show(b, s), what);
		return -1;
	}
	if (v < r->min) {
		conf_error(
		    p, p->line, "%s must be at least %s", what, r->min_text);
		return -1;
	}
	if (v > r->max) {
		conf_error(
		    p, p->line, "%s must be at most %s", what, r->max_text);
		return -1;
	}
	*out = v;
	return 0;
}

static int
get_uint(struct parser *p, const char *what, const char *s, unsigned min,
    unsigned max, unsigned *out)
{
	char b[CONF_SHOW_MAX + 4];
	unsigned long long v;

	if (parse_digits(s, strlen(s), &v) == -1) {
		conf_error(p, p->line, "invalid number \"%s\" for %s",
		    show(b, s), what);
		return -1;
	}
	if (v < min || v > max) {
		conf_error(
		    p, p->line, "%s must be between %u and %u", what, min, max);
		return -1;
	}
	*out = (unsigned)v;
	return 0;
}

static int
get_size(struct parser *p, const char *what, const char *s, size_t min,
    size_t max, const char *max_text, size_t *out)
{
	char b[CONF_SHOW_MAX + 4];
	size_t v;

	if (parse_size(s, &v) == -1) {
		conf_error(p, p->line,
		    "invalid size \"%s\" for %s "
		    "(expected a number of bytes with k or M)",
		    show(b, s), what);
		return -1;
	}
	if (v < min) {
		conf_error(p, p->line, "%s must be at least %zu", what, min);
		return -1;
	}
	if (v > max) {
		conf_error(p, p->line, "%s must be at most %s", what, max_text);
		return -1;
	}
	*out = v;
	return 0;
}

/* The global directives. */

static int
listen_parse(const char *text, struct sockaddr_storage *ss, socklen_t *sslen,
    const char **err)
{
	struct addrinfo hints, *res;
	unsigned long long port;
	const char *host, *end, *colon;
	char hostbuf[INET6_ADDRSTRLEN + 64], portbuf[8];
	size_t hostlen;
	int bracketed = text[0] == '[';

	if (bracketed) {
		host = text + 1;
		if ((end = strchr(host, ']')) == NULL) {
			*err = "missing ']' after the IPv6 address";
			return -1;
		}
		colon = end + 1;
		if (*colon != ':') {
			*err = "expected ADDRESS:PORT";
			return -1;
		}
	} else {
		host = text;
		if ((colon = strrchr(text, ':')) == NULL) {
			*err = "expected ADDRESS:PORT";
			return -1;
		}
		end = colon;
		if (memchr(host, ':', end - host) != NULL) {
			*err = "an IPv6 address must be in brackets, "
			       "like [::1]:19650";
			return -1;
		}
	}
	hostlen = end - host;
	if (parse_digits(colon + 1, strlen(colon + 1), &port) == -1 ||
	    port < 1 || port > 65535) {
		*err = "the port must be a number from 1 to 65535";
		return -1;
	}
	if (hostlen == 0 || hostlen >= sizeof(hostbuf)) {
		*err = "not a numeric IP address";
		return -1;
	}
	if (!bracketed && hostlen == 9 &&
	    strncasecmp(host, "localhost", 9) == 0)
		memcpy(hostbuf, "127.0.0.1", sizeof("127.0.0.1"));
	else {
		memcpy(hostbuf, host, hostlen);
		hostbuf[hostlen] = '\0';
	}
	(void)snprintf(portbuf, sizeof(portbuf), "%llu", port);

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = bracketed ? AF_INET6 : AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	if (getaddrinfo(hostbuf, portbuf, &hints, &res) != 0) {
		*err = bracketed ? "not a numeric IPv6 address"
		                 : "not a numeric IPv4 address (or localhost)";
		return -1;
	}
	if (res->ai_addrlen > sizeof(*ss)) {
		freeaddrinfo(res);
		*err = "address too long";
		return -1;
	}
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*sslen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static void
listen_add(struct parser *p, const char *text)
{
	struct conf *c = p->conf;
	struct listen_addr *l;
	struct sockaddr_storage ss;
	socklen_t sslen;
	const char *err;
	char b[CONF_SHOW_MAX + 4];
	size_t i;

	if (listen_parse(text, &ss, &sslen, &err) == -1) {
		conf_error(p, p->line, "invalid listen address \"%s\": %s",
		    show(b, text), err);
		return;
	}
	for (i = 0; i < c->nlisten; i++) {
		if (c->listen[i].sslen == sslen &&
		    memcmp(&c->listen[i].ss, &ss, sslen) == 0) {
			conf_error(p, p->line,
			    "duplicate listen address "
			    "\"%s\" (first given at line %d)",
			    show(b, text), p->listen_line[i]);
			return;
		}
	}
	c->listen =
	    xreallocarray(c->listen, c->nlisten + 1, sizeof(*c->listen));
	p->listen_line = xreallocarray(
	    p->listen_line, c->nlisten + 1, sizeof(*p->listen_line));
	l = &c->listen[c->nlisten];
	l->text = xstrdup(text);
	l->ss = ss;
	l->sslen = sslen;
	p->listen_line[c->nlisten++] = p->line;
}

static void
d_listen(struct parser *p, char **argv, size_t argc)
{
	listen_add(p, argv[0]);
}

static void
d_interval(struct parser *p, char **argv, size_t argc)
{
	(void)get_duration(
	    p, "interval", argv[0], &interval_range, &p->conf->interval);
}

static void
d_timeout(struct parser *p, char **argv, size_t argc)
{
	(void)get_duration(
	    p, "timeout", argv[0], &timeout_range, &p->conf->timeout);
}

static void
d_concurrency(struct parser *p, char **argv, size_t argc)
{
	(void)get_uint(p, "concurrency", argv[0], 1, CONF_CONCURRENCY_MAX,
	    &p->conf->concurrency);
}

static void
d_history(struct parser *p, char **argv, size_t argc)
{
	(void)get_uint(p, "history", argv[0], 1, 100000, &p->conf->history);
}

static void
d_max_body(struct parser *p, char **argv, size_t argc)
{
	(void)get_size(p, "max-body", argv[0], 1, 1024 * 1024 * 1024, "1G",
	    &p->conf->max_body);
}

static void
d_state_dir(struct parser *p, char **argv, size_t argc)
{
	const char *s = argv[0];

	if (s[0] != '/') {
		conf_error(p, p->line, "state-dir must be an absolute path");
		return;
	}
	if (strlen(s) >= CONF_PATH_MAX) {
		conf_error(p, p->line, "state-dir is longer than %d bytes",
		    CONF_PATH_MAX - 1);
		return;
	}
	free(p->conf->state_dir);
	p->conf->state_dir = xstrdup(s);
	p->conf->state_dir_named = 1;
}

static void
d_user(struct parser *p, char **argv, size_t argc)
{
	const char *s = argv[0];
	char b[CONF_SHOW_MAX + 4];
	size_t n = strlen(s);

	/* What useradd accepts by default: [a-z_][a-z0-9_-]*[$]?, any case. */
	if (n > 0 && s[n - 1] == '$')
		n--;
	if (n == 0 || n > CONF_USER_MAX || s[0] == '-' ||
	    strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	              "0123456789._-") < n) {
		conf_error(p, p->line, "invalid user name \"%s\"", show(b, s));
		return;
	}
	p->conf->user = xstrdup(s);
}

static void
d_probe_allow(struct parser *p, char **argv, size_t argc)
{
	struct conf *c = p->conf;
	struct url_pattern pat;
	char b[CONF_SHOW_MAX + 4];
	const char *err;

	if (url_pattern_parse(argv[0], &pat, &err) == -1) {
		conf_error(p, p->line, "invalid probe-allow pattern \"%s\": %s",
		    show(b, argv[0]), err);
		return;
	}
	c->probe_allow = xreallocarray(
	    c->probe_allow, c->nprobe_allow + 1, sizeof(*c->probe_allow));
	c->probe_allow[c->nprobe_allow++] = xstrdup(argv[0]);
}

/*
 * notify COMMAND [ARGS...]: run with execve, so the command is an absolute
 * path (no search of a PATH the daemon happens to have) and no shell sees
 * the words unless the operator names one.
 */
static void
d_notify(struct parser *p, char **argv, size_t argc)
{
	struct conf *c = p->conf;
	char b[CONF_SHOW_MAX + 4], **cmd;
	size_t i;

	if (argv[0][0] != '/') {
		conf_error(p, p->line,
		    "notify command \"%s\" must be an absolute path",
		    show(b, argv[0]));
		return;
	}
	if (argc > CONF_NOTIFY_ARGS) {
		conf_error(p, p->line, "notify command has more than %d words",
		    CONF_NOTIFY_ARGS);
		return;
	}
	if (c->nnotify == CONF_NOTIFY_MAX) {
		conf_error(p, p->line, "more than %d notify commands",
		    CONF_NOTIFY_MAX);
		return;
	}
	cmd = xcalloc(argc + 1, sizeof(*cmd));
	for (i = 0; i < argc; i++)
		cmd[i] = xstrdup(argv[i]);
	c->notify =
	    xreallocarray(c->notify, c->nnotify + 1, sizeof(*c->notify));
	c->notify[c->nnotify++] = cmd;
}

static void
d_notify_after(struct parser *p, char **argv, size_t argc)
{
	(void)get_uint(
	    p, "notify-after", argv[0], 1, 1000, &p->conf->notify_after);
}

static void
d_notify_cert_days(struct parser *p, char **argv, size_t argc)
{
	(void)get_uint(p, "notify-cert-days", argv[0], 0, 3650,
	    &p->conf->notify_cert_days);
}

static void
d_notify_repeat(struct parser *p, char **argv, size_t argc)
{
	if (strcmp(argv[0], "off") == 0) {
		p->conf->notify_repeat = 0;
		return;
	}
	(void)get_duration(p, "notify-repeat", argv[0], &repeat_range,
	    &p->conf->notify_repeat);
}

static void
d_notify_timeout(struct parser *p, char **argv, size_t argc)
{
	(void)get_duration(p, "notify-timeout", argv[0], &timeout_range,
	    &p->conf->notify_timeout);
}

int
parse_resolver(const char *text, struct sockaddr_storage *ss, const char **err)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	unsigned long long port = DNS_PORT;
	const char *start = text, *end, *colon, *portp = NULL;
	char host[INET6_ADDRSTRLEN + 1];
	size_t hostlen;
	int family = AF_INET;

	if (text[0] == '[') {
		start = text + 1;
		if ((end = strchr(start, ']')) == NULL) {
			*err = "missing ']' after the IPv6 address";
			return -1;
		}
		if (end[1] == ':')
			portp = end + 2;
		else if (end[1] != '\0') {
			*err = "expected ADDRESS, ADDRESS:PORT or [IPv6]:PORT";
			return -1;
		}
		hostlen = end - start;
		family = AF_INET6;
	} else if ((colon = strchr(text, ':')) != strrchr(text, ':')) {
		hostlen = strlen(text); /* a bare IPv6 address */
		family = AF_INET6;
	} else {
		hostlen = colon != NULL ? (size_t)(colon - text) : strlen(text);
		if (colon != NULL)
			portp = colon + 1;
	}
	if (hostlen == 0 || hostlen >= sizeof(host)) {
		*err = "not a numeric IP address";
		return -1;
	}
	memcpy(host, start, hostlen);
	host[hostlen] = '\0';
	if (portp != NULL && (parse_digits(portp, strlen(portp), &port) == -1 ||
	                         port < 1 || port > 65535)) {
		*err = "the port must be a number from 1 to 65535";
		return -1;
	}
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET6) {
		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1) {
			*err = "not a numeric IPv6 address";
			return -1;
		}
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((unsigned short)port);
	} else {
		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1) {
			*err = "not a numeric IPv4 address";
			return -1;
		}
		s4->sin_family = AF_INET;
		s4->sin_port = htons((unsigned short)port);
	}
	return 0;
}

static void
d_resolver(struct parser *p, char **argv, size_t argc)
{
	struct conf *c = p->conf;
	struct sockaddr_storage ss;
	const char *err;
	char b[CONF_SHOW_MAX + 4];
	size_t i, k;

	for (i = 0; i < argc; i++) {
		if (parse_resolver(argv[i], &ss, &err) == -1) {
			conf_error(p, p->line,
			    "invalid resolver address \"%s\": %s",
			    show(b, argv[i]), err);
			continue;
		}
		for (k = 0; k < c->nresolvers; k++)
			if (memcmp(&c->resolvers[k], &ss, sizeof(ss)) == 0)
				break;
		if (k < c->nresolvers) {
			conf_error(p, p->line,
			    "duplicate resolver address \"%s\"",
			    show(b, argv[i]));
			continue;
		}
		if (c->nresolvers == CONF_RESOLVERS_MAX) {
			conf_error(p, p->line,
			    "at most %d resolver addresses may be given",
			    CONF_RESOLVERS_MAX);
			return;
		}
		c->resolvers = xreallocarray(
		    c->resolvers, c->nresolvers + 1, sizeof(*c->resolvers));
		c->resolvers[c->nresolvers++] = ss;
	}
}

static void
d_shard(struct parser *p, char **argv, size_t argc)
{
	unsigned long long k, n;
	const char *s = argv[0], *slash;
	char b[CONF_SHOW_MAX + 4];

	if ((slash = strchr(s, '/')) == NULL ||
	    parse_digits(s, slash - s, &k) == -1 ||
	    parse_digits(slash + 1, strlen(slash + 1), &n) == -1) {
		conf_error(p, p->line,
		    "invalid shard \"%s\" (expected K/N, "
		    "like 1/3)",
		    show(b, s));
		return;
	}
	if (k < 1 || k > n || n > CONF_SHARD_MAX) {
		conf_error(p, p->line, "shard K/N needs 1 <= K <= N <= %d",
		    CONF_SHARD_MAX);
		return;
	}
	p->conf->shard_k = (unsigned)k;
	p->conf->shard_n = (unsigned)n;
}

/* Capsules and their options. */

static void
capsule_clear(struct capsule_conf *c)
{
	free(c->name);
	url_free(&c->url);
	free(c->sni);
	if (c->expect_body_src != NULL) {
		regfree(&c->expect_body);
		free(c->expect_body_src);
	}
	if (c->error_path != NULL) {
		url_free(&c->error_url);
		free(c->error_path);
	}
	memset(c, 0, sizeof(*c));
}

static void
o_name(struct parser *p, struct capsule_conf *c, const char *v)
{
	size_t i, n = strlen(v);

	if (n == 0) {
		conf_error(p, p->line, "name must not be empty");
		return;
	}
	if (n > CONF_NAME_MAX) {
		conf_error(
		    p, p->line, "name is longer than %d bytes", CONF_NAME_MAX);
		return;
	}
	for (i = 0; i < n; i++) {
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f) {
			conf_error(p, p->line,
			    "name must not contain control characters");
			return;
		}
	}
	c->name = xstrdup(v);
}

static void
o_interval(struct parser *p, struct capsule_conf *c, const char *v)
{
	(void)get_duration(p, "interval", v, &interval_range, &c->interval);
}

static void
o_crawl(struct parser *p, struct capsule_conf *c, const char *v)
{
	(void)get_uint(p, "crawl", v, 1, CRAWL_MAX, &c->crawl);
}

static void
o_crawl_interval(struct parser *p, struct capsule_conf *c, const char *v)
{
	(void)get_duration(
	    p, "crawl-interval", v, &crawl_interval_range, &c->crawl_interval);
}

static void
o_diagnose(struct parser *p, struct capsule_conf *c, const char *v)
{
	(void)get_duration(p, "diagnose", v, &diagnose_range, &c->diagnose);
}

static void
o_crawl_delay(struct parser *p, struct capsule_conf *c, const char *v)
{
	(void)get_duration(
	    p, "crawl-delay", v, &crawl_delay_range, &c->crawl_delay);
}

static void
o_timeout(struct parser *p, struct capsule_conf *c, const char *v)
{
	(void)get_duration(p, "timeout", v, &timeout_range, &c->timeout);
}

static void
o_expect_status(struct parser *p, struct capsule_conf *c, const char *v)
{
	char b[CONF_SHOW_MAX + 4];
	const char *err;

	if (status_spec_parse(v, strlen(v), &c->expect_status, &err) == -1)
		conf_error(p, p->line, "invalid expect-status \"%s\": %s",
		    show(b, v), err);
}

static void
o_notify(struct parser *p, struct capsule_conf *c, const char *v)
{
	if (strcmp(v, "yes") == 0)
		c->notify = 1;
	else if (strcmp(v, "no") == 0)
		c->notify = 0;
	else
		conf_error(p, p->line, "notify must be yes or no");
}

static void
o_require_close_notify(struct parser *p, struct capsule_conf *c, const char *v)
{
	if (strcmp(v, "yes") == 0)
		c->require_close_notify = 1;
	else if (strcmp(v, "no") == 0)
		c->require_close_notify = 0;
	else
		conf_error(
		    p, p->line, "require-close-notify must be yes or no");
}

static void
o_sni(struct parser *p, struct capsule_conf *c, const char *v)
{
	char b[CONF_SHOW_MAX + 4];
	size_t i, n = strlen(v);

	/* A DNS name in A-labels, as TLS server_name requires. */
	if (n == 0 || n > 253 || v[0] == '.' || v[0] == '-' ||
	    strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	              "0123456789.-") != n ||
	    strstr(v, "..") != NULL) {
		conf_error(p, p->line,
		    "invalid sni \"%s\" (expected a DNS "
		    "name)",
		    show(b, v));
		return;
	}
	free(c->sni);
	c->sni = xstrdup(v);
	for (i = 0; i < n; i++)
		if (c->sni[i] >= 'A' && c->sni[i] <= 'Z')
			c->sni[i] += 'a' - 'A';
}

static void
o_address_family(struct parser *p, struct capsule_conf *c, const char *v)
{
	if (strcmp(v, "any") == 0)
		c->family = AF_UNSPEC;
	else if (strcmp(v, "ipv4") == 0)
		c->family = AF_INET;
	else if (strcmp(v, "ipv6") == 0)
		c->family = AF_INET6;
	else
		conf_error(
		    p, p->line, "address-family must be any, ipv4 or ipv6");
}

/* "sha256:" then 64 hex digits, in any case, maybe with ":" between bytes. */
static int
fingerprint_parse(const char *s, unsigned char out[32])
{
	int i, v;

	if (strncasecmp(s, "sha256:", 7) != 0)
		return -1;
	s += 7;
	for (i = 0; i < 32; i++) {
		if (i > 0 && *s == ':')
			s++;
		if ((v = hex_byte(s)) == -1)
			return -1;
		out[i] = (unsigned char)v;
		s += 2;
	}
	return *s == '\0' ? 0 : -1;
}

static void
o_fingerprint(struct parser *p, struct capsule_conf *c, const char *v)
{
	char b[CONF_SHOW_MAX + 4];

	if (fingerprint_parse(v, c->fingerprint) == -1) {
		conf_error(p, p->line,
		    "invalid fingerprint \"%s\" (expected "
		    "sha256: and 64 hex digits)",
		    show(b, v));
		return;
	}
	c->has_fingerprint = 1;
}

static void
o_expect_body(struct parser *p, struct capsule_conf *c, const char *v)
{
	char b[CONF_SHOW_MAX + 4], msg[256];
	const char *why;
	int rc;

	if ((why = reguard_check(v)) != NULL) {
		conf_error(
		    p, p->line, "expect-body regex \"%s\" %s", show(b, v), why);
		return;
	}
	if ((rc = regcomp(&c->expect_body, v, REG_EXTENDED | REG_NOSUB)) != 0) {
		(void)regerror(rc, &c->expect_body, msg, sizeof(msg));
		conf_error(p, p->line, "invalid expect-body regex \"%s\": %s",
		    show(b, v), msg);
		return;
	}
	c->expect_body_src = xstrdup(v);
}

/* ">=SIZE": the least size of the body, as a truncated page is shorter. */
static void
o_expect_body_bytes(struct parser *p, struct capsule_conf *c, const char *v)
{
	char b[CONF_SHOW_MAX + 4];
	size_t n;

	if (strncmp(v, ">=", 2) != 0 || parse_size(v + 2, &n) == -1 ||
	    n > INT64_MAX) {
		conf_error(p, p->line,
		    "invalid expect-body-bytes \"%s\" (expected >=SIZE, like "
		    ">=2000 or >=4k)",
		    show(b, v));
		return;
	}
	c->expect_body_bytes = (int64_t)n;
}

static void
o_max_idle(struct parser *p, struct capsule_conf *c, const char *v)
{
	if (strcmp(v, "off") == 0) {
		c->max_idle = 0;
		return;
	}
	(void)get_duration(p, "max-idle", v, &timeout_range, &c->max_idle);
}

static void
o_error_path(struct parser *p, struct capsule_conf *c, const char *v)
{
	char b[CONF_SHOW_MAX + 4], *text;
	const char *err;
	int ipv6;

	if (v[0] != '/') {
		conf_error(p, p->line, "error-path must start with \"/\"");
		return;
	}
	if (c->url.host == NULL)
		return; /* the URL was bad, already reported */
	ipv6 = strchr(c->url.host, ':') != NULL;
	xasprintf(&text, "gemini://%s%s%s:%d%s", ipv6 ? "[" : "", c->url.host,
	    ipv6 ? "]" : "", c->url.port, v);
	if (url_parse(text, strlen(text), &c->error_url, &err) == -1) {
		conf_error(p, p->line, "invalid error-path \"%s\": %s",
		    show(b, v), err);
		free(text);
		return;
	}
	free(text);
	c->error_path = xstrdup(v);
}

static void
d_capsule(struct parser *p, char **argv, size_t argc)
{
	struct conf *conf = p->conf;
	struct capsule_conf c;
	const struct option *o;
	const char *err;
	char b[CONF_SHOW_MAX + 4], *eq;
	size_t i, nerrs = p->nerrs;
	unsigned seen = 0;

	memset(&c, 0, sizeof(c));
	c.line = p->line;
	c.interval = c.timeout = -1; /* not given: the global value */
	status_spec_default(&c.expect_status);
	c.require_close_notify = 1;
	c.expect_body_bytes = -1;
	c.notify = 1;
	c.crawl_interval = DEFAULT_CRAWL_INTERVAL;
	c.crawl_delay = DEFAULT_CRAWL_DELAY;
	c.family = AF_UNSPEC;

	if (url_parse(argv[0], strlen(argv[0]), &c.url, &err) == -1) {
		conf_error(p, p->line, "invalid URL \"%s\": %s",
		    show(b, argv[0]), err);
		memset(&c.url, 0, sizeof(c.url));
	}
	for (i = 1; i < argc; i++) {
		if ((eq = strchr(argv[i], '=')) == NULL) {
			conf_error(p, p->line, "expected key=value, got \"%s\"",
			    show(b, argv[i]));
			continue;
		}
		*eq = '\0';
		o = bsearch(
		    argv[i], options, nitems(options), sizeof(*o), option_cmp);
		if (o == NULL) {
			conf_error(p, p->line, "unknown capsule option \"%s\"",
			    show(b, argv[i]));
			continue;
		}
		if (seen & (1U << (o - options))) {
			conf_error(
			    p, p->line, "duplicate option \"%s\"", o->name);
			continue;
		}
		seen |= 1U << (o - options);
		o->fn(p, &c, eq + 1);
	}
	if (p->nerrs != nerrs) {
		capsule_clear(&c);
		return;
	}
	if (c.name == NULL)
		c.name = xstrdup(argv[0]);
	if (conf->ncapsules == p->capsules_cap) {
		p->capsules_cap = p->capsules_cap ? p->capsules_cap * 2 : 16;
		conf->capsules = xreallocarray(
		    conf->capsules, p->capsules_cap, sizeof(*conf->capsules));
	}
	conf->capsules[conf->ncapsules++] = c;
}

/* One line: bounded, valid UTF-8 without NUL or control bytes, then words. */
static void
conf_line(struct parser *p, const char *s, size_t len)
{
	const struct directive *d;
	char b[CONF_SHOW_MAX + 4], *out = NULL, **words = NULL;
	size_t i, nwords, idx;

	if (len > 0 && s[len - 1] == '\r')
		len--;
	if (len > CONF_LINE_MAX) {
		conf_error(
		    p, p->line, "line is longer than %d bytes", CONF_LINE_MAX);
		return;
	}
	if (memchr(s, '\0', len) != NULL) {
		conf_error(p, p->line, "line contains a NUL byte");
		return;
	}
	if (!utf8_valid(s, len)) {
		conf_error(p, p->line, "line is not valid UTF-8");
		return;
	}
	for (i = 0; i < len; i++) {
		if (((unsigned char)s[i] < 0x20 && s[i] != '\t') ||
		    s[i] == 0x7f) {
			conf_error(p, p->line,
			    "line contains a control "
			    "character (0x%02x)",
			    (unsigned char)s[i]);
			return;
		}
	}

	out = xmalloc(len + 1);
	if (conf_split(s, len, out, &words, &nwords) == -1) {
		conf_error(p, p->line, "unterminated quote");
		goto out;
	}
	if (nwords == 0)
		goto out;
	d = bsearch(words[0], directives, nitems(directives), sizeof(*d),
	    directive_cmp);
	if (d == NULL) {
		conf_error(
		    p, p->line, "unknown directive \"%s\"", show(b, words[0]));
		goto out;
	}
	if (nwords == 1) {
		conf_error(p, p->line, "missing %s for \"%s\"",
		    d->fn == d_capsule ? "URL" : "value", d->name);
		goto out;
	}
	if (nwords > 2 && !(d->flags & DIRECTIVE_WORDS)) {
		conf_error(p, p->line, "too many values for \"%s\"", d->name);
		goto out;
	}
	idx = d - directives;
	if (p->seen[idx] != 0 && !(d->flags & DIRECTIVE_REPEAT)) {
		conf_error(p, p->line,
		    "duplicate directive \"%s\" (first "
		    "given at line %d)",
		    d->name, p->seen[idx]);
		goto out;
	}
	if (p->seen[idx] == 0)
		p->seen[idx] = p->line;
	d->fn(p, words + 1, nwords - 1);
out:
	free(words);
	free(out);
}

static int
directive_line(const struct parser *p, const char *name)
{
	const struct directive *d;

	d = bsearch(
	    name, directives, nitems(directives), sizeof(*d), directive_cmp);
	return p->seen[d - directives];
}

static int
capsule_name_cmp(const void *a, const void *b)
{
	const struct capsule_conf *x = *(struct capsule_conf *const *)a;
	const struct capsule_conf *y = *(struct capsule_conf *const *)b;
	int rc;

	if ((rc = strcmp(x->name, y->name)) != 0)
		return rc;
	return x->line < y->line ? -1 : x->line > y->line;
}

/*
 * After the last line: the global values are known, so fill in what the
 * capsules left out, check timeouts against intervals, find duplicates.
 */
static void
conf_finish(struct parser *p)
{
	struct conf *conf = p->conf;
	struct capsule_conf *c, **sorted;
	int own_interval, timeout_line;
	char b[CONF_SHOW_MAX + 4];
	size_t i;

	if (conf->nlisten == 0 && directive_line(p, "listen") == 0)
		listen_add(p, DEFAULT_LISTEN);

	timeout_line = directive_line(p, "timeout");
	/* An unset timeout is the default, but never beyond the interval. */
	if (timeout_line == 0 && conf->timeout > conf->interval)
		conf->timeout = conf->interval;
	if (timeout_line != 0 && conf->timeout > conf->interval)
		conf_error(p, timeout_line, "timeout must not exceed interval");

	for (i = 0; i < conf->ncapsules; i++) {
		c = &conf->capsules[i];
		own_interval = c->interval >= 0;
		if (!own_interval)
			c->interval = conf->interval;
		if (c->timeout >= 0) {
			if (c->timeout <= c->interval)
				continue;
			if (own_interval)
				conf_error(p, c->line,
				    "timeout must not exceed interval");
			else
				conf_error(p, c->line,
				    "timeout must not "
				    "exceed interval (the global interval is "
				    "%gs)",
				    conf->interval);
			continue;
		}
		c->timeout = conf->timeout;
		if (c->timeout <= c->interval)
			continue;
		if (timeout_line == 0)
			c->timeout = c->interval;
		else if (own_interval)
			conf_error(p, c->line,
			    "timeout must not exceed "
			    "interval (the global timeout is %gs)",
			    conf->timeout);
		/* else the global pair was reported at the timeout line */
	}
	/* A stall as long as the timeout ends as a timeout. */
	for (i = 0; i < conf->ncapsules; i++) {
		c = &conf->capsules[i];
		if (c->max_idle > 0 && c->max_idle >= c->timeout)
			conf_error(p, c->line,
			    "max-idle (%gs) must be shorter than the "
			    "timeout (%gs)",
			    c->max_idle, c->timeout);
	}

	if (conf->ncapsules < 2)
		return;
	sorted = xreallocarray(NULL, conf->ncapsules, sizeof(*sorted));
	for (i = 0; i < conf->ncapsules; i++)
		sorted[i] = &conf->capsules[i];
	qsort(sorted, conf->ncapsules, sizeof(*sorted), capsule_name_cmp);
	for (i = 1; i < conf->ncapsules; i++) {
		if (strcmp(sorted[i]->name, sorted[i - 1]->name) != 0)
			continue;
		c = sorted[i - 1];
		while (i < conf->ncapsules &&
		       strcmp(sorted[i]->name, c->name) == 0) {
			conf_error(p, sorted[i]->line,
			    "duplicate capsule name "
			    "\"%s\" (first defined at line %d)",
			    show(b, c->name), c->line);
			i++;
		}
	}
	free(sorted);
}

struct conf *
conf_parse(
    const char *name, const char *buf, size_t len, struct conf_errors *errs)
{
	struct parser p;
	struct conf *conf;
	char *msg;
	size_t i, start, end;

	memset(&p, 0, sizeof(p));
	p.name = name;
	p.conf = conf = xcalloc(1, sizeof(*conf));
	conf->path = xstrdup(name);
	conf->interval = DEFAULT_INTERVAL;
	conf->timeout = DEFAULT_TIMEOUT;
	conf->concurrency = DEFAULT_CONCURRENCY;
	conf->history = DEFAULT_HISTORY;
	conf->state_dir = xstrdup(DEFAULT_STATE_DIR);
	conf->max_body = DEFAULT_MAX_BODY;
	conf->shard_k = conf->shard_n = 1;
	atomic_init(&conf->refs, 1);
	conf->notify_after = DEFAULT_NOTIFY_AFTER;
	conf->notify_cert_days = DEFAULT_NOTIFY_CERT_DAYS;
	conf->notify_timeout = DEFAULT_NOTIFY_TIMEOUT;

	start = 0;
	if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
		start = 3; /* a UTF-8 byte order mark */
	while (start < len) {
		if (p.line == INT_MAX) {
			conf_error(&p, 0, "too many lines");
			break;
		}
		p.line++;
		for (end = start; end < len && buf[end] != '\n'; end++)
			;
		conf_line(&p, buf + start, end - start);
		start = end + 1;
	}
	p.line = 0;
	conf_finish(&p);

	if (p.nerrs > 0)
		qsort(p.errs, p.nerrs, sizeof(*p.errs), conf_error_cmp);
	for (i = 0; i < p.nerrs; i++)
		errors_add(errs, p.errs[i].msg);
	if (p.dropped > 0) {
		xasprintf(&msg, "%s: %zu more error%s not shown", name,
		    p.dropped, p.dropped == 1 ? "" : "s");
		errors_add(errs, msg);
	}
	free(p.errs);
	free(p.listen_line);
	if (p.nerrs > 0) {
		conf_free(conf);
		return NULL;
	}
	return conf;
}

/*
 * The state-dir of a file that names none: under systemd's
 * StateDirectory=, $STATE_DIRECTORY names the directory the service may
 * write (the first of a colon-separated list, absolute); otherwise the
 * default stays.
 */
static void
state_directory(struct conf *conf)
{
	const char *env = getenv("STATE_DIRECTORY");
	size_t n;

	if (conf->state_dir_named || env == NULL || env[0] != '/' ||
	    (n = strcspn(env, ":")) >= CONF_PATH_MAX)
		return;
	free(conf->state_dir);
	conf->state_dir = xstrndup(env, n);
}

struct conf *
conf_load(const char *path, struct conf_errors *errs)
{
	struct conf *conf = NULL;
	char *data = NULL, *msg;
	size_t len = 0, cap = 0;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		xasprintf(&msg, "cannot open %s: %s", path, strerror(errno));
		errors_add(errs, msg);
		return NULL;
	}
	for (;;) {
		if (len == cap) {
			/* Room for one byte more than allowed, to see it. */
			cap = cap ? cap * 2 : 8192;
			if (cap > CONF_FILE_MAX + 1)
				cap = CONF_FILE_MAX + 1;
			data = xreallocarray(data, cap, 1);
		}
		if ((n = read(fd, data + len, cap - len)) == -1) {
			if (errno == EINTR)
				continue;
			xasprintf(
			    &msg, "cannot read %s: %s", path, strerror(errno));
			errors_add(errs, msg);
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > CONF_FILE_MAX) {
			xasprintf(&msg, "%s: larger than %d MiB", path,
			    CONF_FILE_MAX / (1024 * 1024));
			errors_add(errs, msg);
			goto fail;
		}
	}
	if ((conf = conf_parse(path, data != NULL ? data : "", len, errs)) !=
	    NULL)
		state_directory(conf);
fail:
	free(data);
	close(fd);
	return conf;
}

void
conf_free(struct conf *conf)
{
	size_t i, j;

	if (conf == NULL || atomic_fetch_sub(&conf->refs, 1) != 1)
		return;
	for (i = 0; i < conf->ncapsules; i++)
		capsule_clear(&conf->capsules[i]);
	free(conf->capsules);
	for (i = 0; i < conf->nprobe_allow; i++)
		free(conf->probe_allow[i]);
	free(conf->probe_allow);
	for (i = 0; i < conf->nnotify; i++) {
		for (j = 0; conf->notify[i][j] != NULL; j++)
			free(conf->notify[i][j]);
		free(conf->notify[i]);
	}
	free(conf->notify);
	free(conf->resolvers);
	free(conf->user);
	free(conf->state_dir);
	for (i = 0; i < conf->nlisten; i++)
		free(conf->listen[i].text);
	free(conf->listen);
	free(conf->path);
	free(conf);
}

struct conf *
conf_hold(struct conf *conf)
{
	atomic_fetch_add(&conf->refs, 1);
	return conf;
}

/* The running configuration: main sets it, any thread holds it. */
static pthread_mutex_t running_lock = PTHREAD_MUTEX_INITIALIZER;
static struct conf *running;

void
conf_set_running(struct conf *conf)
{
	struct conf *old;

	pthread_mutex_lock(&running_lock);
	old = running;
	running = conf;
	pthread_mutex_unlock(&running_lock);
	conf_free(old);
}

struct conf *
conf_running(void)
{
	struct conf *conf;

	pthread_mutex_lock(&running_lock);
	if ((conf = running) != NULL)
		conf_hold(conf);
	pthread_mutex_unlock(&running_lock);
	return conf;
}

struct conf *
conf_load_report(const char *path, FILE *f)
{
	struct conf_errors errs = {NULL, 0};
	struct conf *conf;
	size_t i;

	conf = conf_load(path, &errs);
	for (i = 0; i < errs.n; i++)
		fprintf(f, "%s\n", errs.msg[i]);
	conf_errors_free(&errs);
	return conf;
}

void
conf_errors_free(struct conf_errors *errs)
{
	size_t i;

	if (errs == NULL)
		return;
	for (i = 0; i < errs->n; i++)
		free(errs->msg[i]);
	free(errs->msg);
	errs->msg = NULL;
	errs->n = 0;
}

unsigned
shard_of(const char *name, unsigned n)
{
	uint64_t h = hash_bytes(HASH_INIT, name, strlen(name));

	if (n == 0)
		n = 1;
	return (unsigned)(h % n) + 1;
}

int
conf_in_shard(const struct conf *conf, const struct capsule_conf *c)
{
	return shard_of(c->name, conf->shard_n) == conf->shard_k;
}

const struct capsule_conf **
conf_shard(const struct conf *conf, size_t *n)
{
	const struct capsule_conf **mine;
	size_t i;

	mine = xcalloc(conf->ncapsules + 1, sizeof(*mine));
	*n = 0;
	for (i = 0; i < conf->ncapsules; i++)
		if (conf_in_shard(conf, &conf->capsules[i]))
			mine[(*n)++] = &conf->capsules[i];
	return mine;
}

const struct capsule_conf *
conf_capsule(const struct conf *conf, const char *name)
{
	size_t i;

	for (i = 0; i < conf->ncapsules; i++)
		if (strcmp(conf->capsules[i].name, name) == 0)
			return &conf->capsules[i];
	return NULL;
}
