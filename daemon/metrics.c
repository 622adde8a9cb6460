/*
 * Prometheus text exposition, format 0.0.4 (SPEC.md §6). One table,
 * families[], says which samples a probe result yields: each row has its
 * /metrics name (gemini_*, labels capsule and check), its /probe name
 * (blackbox_exporter's probe_* or probe_gemini_*) and one getter that
 * emits the samples, so /metrics and /probe share every absence rule and
 * every number. Samples go straight into the caller's buf: the capsule and
 * check labels are escaped once per capsule per render, and no sample
 * allocates. Numbers are printed by printf/strtod in the C locale: the
 * program never calls setlocale(), so the decimal point is always '.'.
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/time.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "hash.h"
#include "lag.h"
#include "metrics.h"
#include "notify.h"
#include "result.h"
#include "seq.h"
#include "store.h"
#include "utf8.h"
#include "xmalloc.h"

struct label {
	const char *key;
	const char *value;
};

/* The family being written and the labels every sample starts with. */
struct emit {
	struct buf *b;
	const char *name;
	size_t name_len;
	const char *help;
	const char *type;
	int started;        /* HELP and TYPE written */
	const char *prefix; /* escaped capsule="..",check=".." */
	size_t prefix_len;
};

struct family {
	const char *name;       /* /metrics, or NULL */
	const char *probe_name; /* /probe, or NULL */
	const char *type;
	const char *help;
	const char *probe_help;
	/* Emit the samples for result r; c (the counters) is NULL for
	 * /probe. Nothing is emitted for a value that is unknown. */
	void (*get)(struct emit *, const struct probe_result *r,
	    const struct store_check *c);
};

#define NLABELS(a) (sizeof(a) / sizeof(a)[0])

/*
 * buf_add and buf_addc for the hot path: inline while the buffer has
 * room. A 10,000-capsule render makes some four million small appends,
 * and the calls alone were a fifth of it.
 */
static inline void
put(struct buf *b, const void *p, size_t n)
{
	if (b->len + n + 1 <= b->cap) {
		memcpy(b->data + b->len, p, n);
		b->len += n;
		b->data[b->len] = '\0';
	} else
		buf_add(b, p, n);
}

static inline void
putc_(struct buf *b, char c)
{
	put(b, &c, 1);
}

void
metrics_escape_label(struct buf *b, const char *s)
{
	const char *p, *run, *end = NULL;
	size_t n;

	if (s == NULL)
		return;
	for (p = run = s; *p != '\0';) {
		switch (*p) {
		case '\\':
		case '"':
		case '\n':
			put(b, run, (size_t)(p - run));
			buf_adds(b, *p == '\\'  ? "\\\\"
			            : *p == '"' ? "\\\""
			                        : "\\n");
			run = ++p;
			continue;
		}
		if ((unsigned char)*p >= 0x20 && *p != 0x7f &&
		    (unsigned char)*p < 0x80) {
			p++;
			continue;
		}
		/* Most labels are ASCII: measure only when one is not. */
		if (end == NULL)
			end = p + strlen(p);
		if (*p != '\t' &&
		    (n = utf8_control_len(p, (size_t)(end - p))) != 0) {
			/* A control (ESC, CSI) would reach a terminal. */
			put(b, run, (size_t)(p - run));
			buf_adds(b, "\xef\xbf\xbd");
			run = p += n;
		} else if ((n = utf8_char_len(p, (size_t)(end - p))) != 0)
			p += n;
		else {
			/* Prometheus rejects a scrape with invalid UTF-8. */
			put(b, run, (size_t)(p - run));
			buf_adds(b, "\xef\xbf\xbd");
			run = ++p;
		}
	}
	put(b, run, (size_t)(p - run));
}

static void
add_int(struct buf *b, int64_t v)
{
	char tmp[24], *p = tmp + sizeof tmp;
	uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	if (v < 0)
		*--p = '-';
	put(b, p, (size_t)(tmp + sizeof tmp - p));
}

/*
 * Durations are rounded to microseconds and timestamps printed to the
 * millisecond, so most values are exactly k / 10^6 with few digits. Such a
 * value is printed from k, just as %.15g prints it (with at most 15
 * significant digits, %.15g lands on that decimal and it reads back the
 * same), without snprintf and strtod, which took 40% of a render. Returns
 * 0 when v is not such a value.
 */
static int
add_micros(struct buf *b, double v)
{
	char k[24], out[40];
	long long i;
	int len, sig, x, o = 0, j;

	if (!(v > 0 && v < 9e9)) /* v * 1e6 < 2^53 */
		return 0;
	i = llround(v * 1e6);
	if ((double)i / 1e6 != v)
		return 0;
	for (len = 0; i > 0; i /= 10)
		k[len++] = (char)('0' + i % 10);
	for (j = 0; j < len / 2; j++) {
		char t = k[j];

		k[j] = k[len - 1 - j];
		k[len - 1 - j] = t;
	}
	for (sig = len; sig > 1 && k[sig - 1] == '0'; sig--)
		;
	if (sig > 15)
		return 0;
	x = len - 7; /* decimal exponent of v */
	if (x < -4) {
		/* 1.5e-05: %g's exponent form below 1e-4. */
		out[o++] = k[0];
		if (sig > 1) {
			out[o++] = '.';
			for (j = 1; j < sig; j++)
				out[o++] = k[j];
		}
		memcpy(out + o, "e-0", 3);
		o += 3;
		out[o++] = (char)('0' - x);
	} else if (x < 0) {
		/* 0.000123 */
		out[o++] = '0';
		out[o++] = '.';
		for (j = 0; j < -x - 1; j++)
			out[o++] = '0';
		for (j = 0; j < sig; j++)
			out[o++] = k[j];
	} else {
		/* 12.5: the integer part, then what is left of six decimals. */
		for (j = 0; j <= x; j++)
			out[o++] = k[j];
		if (sig > x + 1) {
			out[o++] = '.';
			for (; j < sig; j++)
				out[o++] = k[j];
		}
	}
	put(b, out, (size_t)o);
	return 1;
}

/* %.17g semantics, but the shortest of %.15g..%.17g that reads back the
 * same, so 0.1 prints as 0.1; integral values print as integers. */
static void
add_double(struct buf *b, double v)
{
	char tmp[40];
	int prec;

	if (isnan(v)) {
		buf_adds(b, "NaN");
		return;
	}
	if (isinf(v)) {
		buf_adds(b, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	if (v > -1e15 && v < 1e15 && (double)(int64_t)v == v) {
		add_int(b, (int64_t)v);
		return;
	}
	if (add_micros(b, v))
		return;
	for (prec = 15; prec < 17; prec++) {
		snprintf(tmp, sizeof tmp, "%.*g", prec, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	if (prec == 17)
		snprintf(tmp, sizeof tmp, "%.17g", v);
	buf_adds(b, tmp);
}

static void
family_begin(
    struct emit *e, const char *name, const char *type, const char *help)
{
	e->name = name;
	e->name_len = strlen(name);
	e->type = type;
	e->help = help;
	e->started = 0;
}

static void
sample_begin(struct emit *e, const struct label *l, size_t n)
{
	struct buf *b = e->b;
	size_t i;
	int comma = 0;

	if (!e->started) {
		buf_adds(b, "# HELP ");
		buf_adds(b, e->name);
		buf_addc(b, ' ');
		buf_adds(b, e->help);
		buf_adds(b, "\n# TYPE ");
		buf_adds(b, e->name);
		buf_addc(b, ' ');
		buf_adds(b, e->type);
		buf_addc(b, '\n');
		e->started = 1;
	}
	put(b, e->name, e->name_len);
	if (e->prefix_len == 0 && n == 0) {
		putc_(b, ' ');
		return;
	}
	putc_(b, '{');
	if (e->prefix_len > 0) {
		put(b, e->prefix, e->prefix_len);
		comma = 1;
	}
	for (i = 0; i < n; i++) {
		if (comma)
			putc_(b, ',');
		comma = 1;
		buf_adds(b, l[i].key);
		put(b, "=\"", 2);
		metrics_escape_label(b, l[i].value != NULL ? l[i].value : "");
		putc_(b, '"');
	}
	put(b, "} ", 2);
}

static void
emit_int(struct emit *e, const struct label *l, size_t n, int64_t v)
{
	sample_begin(e, l, n);
	add_int(e->b, v);
	putc_(e->b, '\n');
}

static void
emit_double(struct emit *e, const struct label *l, size_t n, double v)
{
	sample_begin(e, l, n);
	add_double(e->b, v);
	putc_(e->b, '\n');
}

/* ---- getters: one per family, shared by /metrics and /probe ---------- */

static void
get_success(
    struct emit *e, const struct probe_result *r, const struct store_check *c)
{
	emit_int(e, NULL, 0, r->success ? 1 : 0);
}

/* Only an end that says something about close_notify: a body that was
 * never reached, a timeout or a limit leave it unknown. */
static void
get_close_notify(
    struct emit *e, const struct probe_result *r, const struct store_check *c)
{
	if (r->end == END_CLOSE_NOTIFY)
		emit_int(e, NULL, 0, 1);
	else if (r->end == END_PREMATURE || r->end == END_RESET)
		emit_int(e, NULL, 0, 0);
}

static void
get_end_info(
    struct emit *e, const struct probe_result *r, const struct store_check *c)
{
	struct label l[] = {{"end", end_name(r->end)}};

	if (l[0].value != NULL)
		emit_int(e, l, NLABELS(l), 1);
}

static void
get_status(
    struct emit *e, const struct probe_result *r, const struct store_check *c)
{
	if (r->status >= 0)
		emit_int(e, NULL, 0, r->status);
}

static void
get_body_bytes(
    struct emit *e, const struct probe_result *r, const struct store_check *c)
{
	if (r->body_bytes >= 0)
		emit_int(e, NULL, 0, r->body_bytes);
}

static void
get_total(
    struct emit *e, const struct probe_result *r, const struct store_check *c)
{
	if (r->total >= 0)
		emit_double(e, NULL, 0, r->total);
}

static void
get_phases(
    struct emit *e, const struct probe_result *r, const struct store_check *c)
{
	struct label l[1] = {{"phase", NULL}};
	int p;

	for (p = 0; p < PHASE__COUNT; p++) {
		if (!(r->dur[p] >= 0))
			continue;
		l[0].value = phase_name(p);
		emit_double(e, l, NLABELS(l), r->dur[p]);
	}
}

static void
get_max_gap(
    struct emit *e, const struct probe_result *r, const struct store_check *c)
{
	if (r->max_gap >= 0)
		emit_double(e, NULL, 0, r->max_gap);
}

static void
get_idle_before_end(
    struct emit *e, const struct probe_result *r, const struct store_check *c)
{
	if (r->idle_before_end >= 0)
		emit_double(e, NULL, 0, r->idle_before_end);
}

static void
get_resolve(
    struct emit *e, const struct probe_result *r, const struct store_check *c)
{
	if (r->dur[PHASE_RESOLVE] >= 0)
		emit_double(e, NULL, 0, r->dur[PHASE_RESOLVE]);
}

/* To the millisecond, Prometheus's own resolution, which also keeps the
 * value short enough for add_micros. */
static void
get_time(
    struct emit *e, const struct probe_result *r, const struct store_check *c)
{
	emit_double(e, NULL, 0, round(r->time * 1e3) / 1e3);
}

static void
get_ip_protocol(
    struct emit *e, const struct probe_result *r, const struct store_check *c)
{
	if (r->ip_protocol != 0)
		emit_int(e, NULL, 0, r->ip_protocol);
}

static void
get_tls_info(
    struct emit *e, const struct probe_result *r, const struct store_check *c)
{
	struct label l[] = {
	    {"version", r->tls_version}, {"cipher", r->tls_cipher}};

	if (r->tls_version != NULL)
		emit_int(e, l, NLABELS(l), 1);
}

/* blackbox_exporter spells versions "TLS 1.3"; GnuTLS says "TLS1.3". */
static void
get_tls_version_info(
    struct emit *e, const struct probe_result *r, const struct store_check *c)
{
	struct label l[] = {{"version", r->tls_version}};
	char v[16];
	size_t len;

	if (r->tls_version == NULL)
		return;
	len = strlen(r->tls_version);
	if (strncmp(r->tls_version, "TLS", 3) == 0 && len < sizeof v - 1 &&
	    r->tls_version[3] >= '0' && r->tls_version[3] <= '9') {
		memcpy(v, "TLS ", 4);
		memcpy(v + 4, r->tls_version + 3, len - 3 + 1);
		l[0].value = v;
	}
	emit_int(e, l, NLABELS(l), 1);
}

static void
get_not_after(
    struct emit *e, const struct probe_result *r, const struct store_check *c)
{
	if (r->cert.present)
		emit_int(e, NULL, 0, (int64_t)r->cert.not_after);
}

static void
get_not_before(
    struct emit *e, const struct probe_result *r, const struct store_check *c)
{
	if (r->cert.present)
		emit_int(e, NULL, 0, (int64_t)r->cert.not_before);
}

static void
get_cert_info(
    struct emit *e, const struct probe_result *r, const struct store_check *c)
{
	struct label l[] = {{"fingerprint_sha256", r->cert.sha256},
	    {"subject", r->cert.subject}, {"issuer", r->cert.issuer}};

	if (r->cert.present)
		emit_int(e, l, NLABELS(l), 1);
}

static void
get_tofu(
    struct emit *e, const struct probe_result *r, const struct store_check *c)
{
	switch (r->cert.tofu) {
	case TOFU_NEW:
	case TOFU_MATCH:
	case TOFU_PINNED:
		emit_int(e, NULL, 0, 1);
		break;
	case TOFU_CHANGED:
	case TOFU_MISMATCH:
		emit_int(e, NULL, 0, 0);
		break;
	default:
		break;
	}
}

static void
get_probes(
    struct emit *e, const struct probe_result *r, const struct store_check *c)
{
	if (c != NULL)
		emit_int(e, NULL, 0, (int64_t)c->probes);
}

/* Every reason, zeros included, so that rate() sees a series from the
 * start and not only after the first failure of a kind. */
static void
get_failures(
    struct emit *e, const struct probe_result *r, const struct store_check *c)
{
	struct label l[1] = {{"reason", NULL}};
	int i;

	if (c == NULL)
		return;
	for (i = REASON_NONE + 1; i < REASON__COUNT; i++) {
		l[0].value = reason_name(i);
		emit_int(e, l, NLABELS(l), (int64_t)c->failures[i]);
	}
}

static void
get_ends(
    struct emit *e, const struct probe_result *r, const struct store_check *c)
{
	struct label l[1] = {{"end", NULL}};
	int i;

	if (c == NULL)
		return;
	for (i = END_NONE + 1; i < END__COUNT; i++) {
		l[0].value = end_name(i);
		emit_int(e, l, NLABELS(l), (int64_t)c->ends[i]);
	}
}

#define LATEST "of the latest finished probe"

static const struct family families[] = {
    {"gemini_probe_success", "probe_success", "gauge",
        "Whether the latest finished probe succeeded (1) or failed (0).",
        "Whether the probe succeeded (1) or failed (0).", get_success},
    {"gemini_close_notify", "probe_gemini_close_notify", "gauge",
        "Whether the response " LATEST " ended with a TLS close_notify "
        "(1) or without one (0); absent when the end says nothing about it.",
        "Whether the response ended with a TLS close_notify (1) or "
        "without one (0).",
        get_close_notify},
    {NULL, "probe_gemini_response_end_info", "gauge", NULL,
        "How the response ended: close_notify, premature, reset, timeout, "
        "limit or error (value 1).",
        get_end_info},
    {"gemini_response_status_code", "probe_gemini_status_code", "gauge",
        "Gemini status code of the response " LATEST ".",
        "Gemini status code of the response.", get_status},
    {"gemini_response_body_bytes", "probe_gemini_body_bytes", "gauge",
        "Body size in bytes of the response " LATEST ".",
        "Body size in bytes of the response.", get_body_bytes},
    {"gemini_probe_duration_seconds", "probe_duration_seconds", "gauge",
        "Duration in seconds " LATEST ", start to end.",
        "Duration in seconds of the probe, start to end.", get_total},
    {"gemini_probe_phase_duration_seconds",
        "probe_gemini_phase_duration_seconds", "gauge",
        "Duration in seconds of each phase reached " LATEST ".",
        "Duration in seconds of each phase the probe reached.", get_phases},
    {"gemini_response_max_gap_seconds", "probe_gemini_response_max_gap_seconds",
        "gauge",
        "Longest silence in seconds between body bytes of the response " LATEST
        " (from the end of the header).",
        "Longest silence in seconds between body bytes of the response "
        "(from the end of the header).",
        get_max_gap},
    {"gemini_response_idle_before_end_seconds",
        "probe_gemini_response_idle_before_end_seconds", "gauge",
        "Silence in seconds from the last body bytes of the response " LATEST
        " to its end; long when a proxy's idle timeout cut a stalled body.",
        "Silence in seconds from the last body bytes of the response to its "
        "end; long when a proxy's idle timeout cut a stalled body.",
        get_idle_before_end},
    {NULL, "probe_dns_lookup_time_seconds", "gauge", NULL,
        "Duration in seconds of the name resolution.", get_resolve},
    {"gemini_probe_timestamp_seconds", NULL, "gauge",
        "Unix time when the latest finished probe finished.", NULL, get_time},
    {"gemini_probe_ip_protocol", "probe_ip_protocol", "gauge",
        "IP protocol version (4 or 6) " LATEST ".",
        "IP protocol version (4 or 6) of the probe.", get_ip_protocol},
    {"gemini_tls_info", "probe_gemini_tls_info", "gauge",
        "TLS version and cipher negotiated by the latest finished probe "
        "(value 1).",
        "TLS version and cipher negotiated (value 1).", get_tls_info},
    {NULL, "probe_tls_version_info", "gauge", NULL,
        "TLS version negotiated (value 1).", get_tls_version_info},
    {"gemini_cert_not_after_timestamp_seconds",
        "probe_ssl_earliest_cert_expiry", "gauge",
        "Expiry (notAfter, Unix time) of the leaf certificate " LATEST ".",
        "Expiry (notAfter, Unix time) of the leaf certificate.", get_not_after},
    {"gemini_cert_not_before_timestamp_seconds",
        "probe_gemini_cert_not_before_timestamp_seconds", "gauge",
        "Start of validity (notBefore, Unix time) of the leaf "
        "certificate " LATEST ".",
        "Start of validity (notBefore, Unix time) of the leaf certificate.",
        get_not_before},
    {"gemini_cert_info", "probe_ssl_last_chain_info", "gauge",
        "Leaf certificate " LATEST " (value 1).",
        "Leaf certificate: SHA-256 fingerprint, subject, issuer (value 1).",
        get_cert_info},
    {"gemini_cert_tofu_match", "probe_gemini_cert_tofu_match", "gauge",
        "Whether the certificate " LATEST " matches its pin or the "
        "first-seen certificate (1) or differs (0).",
        "Whether the certificate matches its pin or the first-seen "
        "certificate (1) or differs (0).",
        get_tofu},
    {"gemini_probes_total", NULL, "counter", "Probes finished.", NULL,
        get_probes},
    {"gemini_probe_failures_total", NULL, "counter",
        "Probes failed, by reason.", NULL, get_failures},
    {"gemini_response_ends_total", NULL, "counter",
        "Responses by how they ended.", NULL, get_ends},
};

void
metrics_probe(struct buf *b, const struct probe_result *r)
{
	struct emit e = {.b = b};
	size_t i;

	for (i = 0; i < NLABELS(families); i++) {
		if (families[i].probe_name == NULL)
			continue;
		family_begin(&e, families[i].probe_name, families[i].type,
		    families[i].probe_help);
		families[i].get(&e, r, NULL);
	}
}

/* /proc/self/statm's second field, resident pages. */
static int
resident_bytes(int64_t *out)
{
	char text[256], *p, *end;
	ssize_t n;
	long pagesize;
	unsigned long long pages;
	int fd;

	if ((fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	n = read(fd, text, sizeof text - 1);
	close(fd);
	if (n <= 0)
		return -1;
	text[n] = '\0';
	if ((p = strchr(text, ' ')) == NULL)
		return -1;
	p++;
	errno = 0;
	pages = strtoull(p, &end, 10);
	if (end == p || errno != 0 || (pagesize = sysconf(_SC_PAGESIZE)) <= 0)
		return -1;
	*out = (int64_t)(pages * (unsigned long long)pagesize);
	return 0;
}

static int
open_fds(int64_t *out)
{
	DIR *d;
	struct dirent *de;
	int64_t n = 0;

	if ((d = opendir("/proc/self/fd")) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	*out = n - 1; /* not the directory's own descriptor */
	return 0;
}

/* Resident memory and open descriptors, or -1 when unknown. */
struct proc_sample {
	int64_t rss;
	int64_t fds;
};

static void
proc_sample(struct proc_sample *p)
{
	if (resident_bytes(&p->rss) == -1)
		p->rss = -1;
	if (open_fds(&p->fds) == -1)
		p->fds = -1;
}

static void
render_process(
    struct emit *e, const struct daemon_info *info, const struct proc_sample *p)
{
	struct rusage ru;

	if (info != NULL) {
		family_begin(e, "process_start_time_seconds", "gauge",
		    "Start time of the process since unix epoch in seconds.");
		emit_double(e, NULL, 0, info->start_time);
	}
	if (getrusage(RUSAGE_SELF, &ru) == 0) {
		family_begin(e, "process_cpu_seconds_total", "counter",
		    "Total user and system CPU time spent in seconds.");
		emit_double(e, NULL, 0,
		    (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
		        (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
	}
	if (p->rss >= 0) {
		family_begin(e, "process_resident_memory_bytes", "gauge",
		    "Resident memory size in bytes.");
		emit_int(e, NULL, 0, p->rss);
	}
	if (p->fds >= 0) {
		family_begin(e, "process_open_fds", "gauge",
		    "Number of open file descriptors.");
		emit_int(e, NULL, 0, p->fds);
	}
}

/*
 * The scheduler's lag: a histogram of how late probes started, those
 * counted late, and the probes in flight.
 */
static void
render_lag(struct emit *e, const struct lag *lag)
{
	static const double bounds[LAG_NBUCKETS] = LAG_BOUNDS;
	struct buf *b = e->b;
	uint64_t cum = 0;
	size_t i;

	buf_adds(b, "# HELP gemwatch_probe_lag_seconds How late probes started "
	            "after their due time.\n# TYPE gemwatch_probe_lag_seconds "
	            "histogram\n");
	for (i = 0; i < LAG_NBUCKETS; i++) {
		cum += lag->bucket[i];
		buf_adds(b, "gemwatch_probe_lag_seconds_bucket{le=\"");
		add_double(b, bounds[i]);
		buf_adds(b, "\"} ");
		add_int(b, (int64_t)cum);
		putc_(b, '\n');
	}
	buf_adds(b, "gemwatch_probe_lag_seconds_bucket{le=\"+Inf\"} ");
	add_int(b, (int64_t)lag->count);
	buf_adds(b, "\ngemwatch_probe_lag_seconds_sum ");
	add_double(b, lag->sum);
	buf_adds(b, "\ngemwatch_probe_lag_seconds_count ");
	add_int(b, (int64_t)lag->count);
	putc_(b, '\n');
	family_begin(e, "gemwatch_probes_late_total", "counter",
	    "Probes started more than a tenth of their interval late.");
	emit_int(e, NULL, 0, (int64_t)lag->late);
	family_begin(
	    e, "gemwatch_probes_in_flight", "gauge", "Probes in flight now.");
	emit_int(e, NULL, 0, (int64_t)lag->in_flight);
	family_begin(e, "gemwatch_concurrency", "gauge",
	    "The most probes allowed in flight (concurrency).");
	emit_int(e, NULL, 0, (int64_t)lag->concurrency);
}

/* Every event and outcome, zeros too, so that rate() sees the first. */
static void
render_notify(struct emit *e, struct notify *n)
{
	uint64_t counts[NOTIFY_EVENT__COUNT][NOTIFY_OUTCOME__COUNT];
	int ev, o;

	notify_counts(n, counts);
	family_begin(e, "gemwatch_notify_total", "counter",
	    "Notify command runs by event and outcome (ok, failed, timeout, "
	    "error: could not start, dropped: never run).");
	for (ev = 0; ev < NOTIFY_EVENT__COUNT; ev++) {
		if (ev == NOTIFY_TEST)
			continue;
		for (o = 0; o < NOTIFY_OUTCOME__COUNT; o++) {
			struct label l[] = {{"event", notify_event_name(ev)},
			    {"result", notify_outcome_name(o)}};

			emit_int(e, l, NLABELS(l), (int64_t)counts[ev][o]);
		}
	}
}

/* The daemon's own metrics (read lock held). */
static void
render_daemon(
    struct emit *e, const struct store *s, const struct daemon_info *info)
{
	double when;
	int ok;

	if (info != NULL) {
		struct label l[] = {{"version", info->version},
		    {"gnutls_version", gnutls_check_version(NULL)}};

		family_begin(e, "gemwatch_build_info", "gauge",
		    "gemwatch version and the GnuTLS version in use (value "
		    "1).");
		emit_int(e, l, NLABELS(l), 1);
	}
	family_begin(e, "gemwatch_capsules", "gauge",
	    "Capsules watched by this instance (its shard).");
	emit_int(e, NULL, 0, (int64_t)store_count(s));
	ok = store_reload_status(s, &when);
	family_begin(e, "gemwatch_config_last_reload_successful", "gauge",
	    "Whether the latest configuration (re)load succeeded.");
	emit_int(e, NULL, 0, ok ? 1 : 0);
	family_begin(e, "gemwatch_config_last_reload_success_timestamp_seconds",
	    "gauge", "Unix time of the latest successful configuration load.");
	emit_double(e, NULL, 0, when);
	if (info != NULL && info->notify != NULL)
		render_notify(e, info->notify);
}

struct prefix {
	size_t off;
	size_t len;
};

/*
 * capsule="NAME",check="CHECK" of every capsule and check (read lock
 * held), escaped once for all families: pfx[i * CHECK__COUNT + k] in pre.
 */
static struct prefix *
prefixes_new(const struct store *s, struct buf *pre)
{
	const struct store_capsule *cap;
	struct prefix *pfx, *px;
	size_t i, n = store_count(s);
	int k;

	pfx = xcalloc(n * CHECK__COUNT + 1, sizeof *pfx);
	for (i = 0; i < n; i++) {
		cap = store_at(s, i);
		for (k = 0; k < CHECK__COUNT; k++) {
			px = &pfx[i * CHECK__COUNT + k];
			px->off = pre->len;
			buf_adds(pre, "capsule=\"");
			metrics_escape_label(pre, cap->name);
			buf_adds(pre, "\",check=\"");
			buf_adds(pre, check_name(k));
			buf_addc(pre, '"');
			px->len = pre->len - px->off;
		}
	}
	return pfx;
}

/* Family f's samples of capsules [i0, i1) (read lock held). */
static void
render_family(struct emit *e, const struct store *s, const struct buf *pre,
    const struct prefix *pfx, size_t f, size_t i0, size_t i1)
{
	const struct store_capsule *cap;
	const struct store_check *c;
	const struct prefix *px;
	size_t i;
	int k;

	for (i = i0; i < i1; i++) {
		cap = store_at(s, i);
		for (k = 0; k < CHECK__COUNT; k++) {
			c = &cap->check[k];
			if (c->last == NULL ||
			    (k == CHECK_ERROR_PAGE && !cap->has_error_page))
				continue;
			px = &pfx[i * CHECK__COUNT + k];
			e->prefix = pre->data + px->off;
			e->prefix_len = px->len;
			families[f].get(e, c->last, c);
		}
	}
	e->prefix = NULL;
	e->prefix_len = 0;
}

/* The capsules' families (read lock held). */
static void
render_capsules(struct emit *e, const struct store *s)
{
	struct buf pre;
	struct prefix *pfx;
	size_t f;
	int k;

	buf_init(&pre);
	pfx = prefixes_new(s, &pre);
	for (f = 0; f < NLABELS(families); f++) {
		if (families[f].name == NULL)
			continue;
		family_begin(
		    e, families[f].name, families[f].type, families[f].help);
		render_family(e, s, &pre, pfx, f, 0, store_count(s));
	}
	buf_free(&pre);
	free(pfx);
	for (k = 0; k < SEQ__COUNT; k++)
		seq_ops(k)->metrics(e->b, s);
}

/*
 * The cache. What the capsules' families show changes only when a probe
 * finishes (store_put counts it and replaces the latest result) or the
 * capsule set changes, so a fingerprint of, in order, every capsule's
 * name and error page and, per check, whether it has a result, its probe
 * count and the time of its latest result, tells whether the text kept
 * from the last render still holds. Computing it costs a few
 * microseconds per 1,000 capsules; rendering 100 capsules cost 0.3 ms,
 * which capped /metrics at 3,000 requests/s on two cores. Only texts up
 * to METRICS_CACHE_MAX are kept: an instance with thousands of capsules
 * is scraped rarely and should not hold a copy of it between scrapes.
 * Resident memory and open descriptors are read at most once a second:
 * listing /proc/self/fd took a quarter of a cached render.
 *
 * A text larger than that is streamed instead (metrics_stream_*): built a
 * few capsules at a time as the client takes it, so that a scrape of
 * 5,000 capsules (11 MB) holds some kilobytes rather than the whole text.
 * Whether a text would be larger is foreseen from the bytes per capsule
 * of the last render or stream.
 */
#define METRICS_CACHE_MAX (4 * 1024 * 1024)
#define METRICS_CAPSULE_BYTES 2048 /* foreseen before any render */
#define METRICS_STREAM_STEP 64     /* capsules per piece of a stream */

/* The capsules' samples of one render, shared by the scrapes that show
 * it and the cache, each holding a reference. */
struct metrics_text {
	atomic_uint refs;
	char *data;
	size_t len;
};

struct metrics_cache {
	pthread_mutex_t lock;
	uint64_t fp;
	struct metrics_text *text; /* held; NULL: none kept */
	struct proc_sample proc;
	double proc_at;       /* monotonic, 0: never */
	size_t capsule_bytes; /* of the capsules' text, per capsule, lately */
};

/* A /metrics text being streamed. */
struct metrics_stream {
	struct metrics_cache *mc;
	struct store *s;
	const struct daemon_info *info;
	unsigned long generation; /* of the capsule set it shows */
	size_t n;                 /* capsules */
	struct buf pre;           /* their labels, */
	struct prefix *pfx;       /* as prefixes_new made them */
	struct emit e;
	size_t f, i; /* where the capsules' samples go on: family, capsule */
	size_t capsules_len; /* bytes of them so far */
	int state;           /* STREAM_* */
	struct buf out;      /* rendered, not yet read from off */
	size_t off;
};

enum { STREAM_CAPSULES, STREAM_DONE, STREAM_FAILED };

static struct metrics_text *
text_hold(struct metrics_text *t)
{
	atomic_fetch_add(&t->refs, 1);
	return t;
}

void
metrics_text_release(struct metrics_text *t)
{
	if (t == NULL || atomic_fetch_sub(&t->refs, 1) != 1)
		return;
	free(t->data);
	free(t);
}

const char *
metrics_text_data(const struct metrics_text *t, size_t *len)
{
	*len = t->len;
	return t->data;
}

/* The fingerprint of what render_capsules shows (read lock held). */
static uint64_t
fingerprint(const struct store *s)
{
	const struct store_capsule *cap;
	const struct store_check *c;
	uint64_t h = HASH_INIT;
	size_t i, n = store_count(s);
	double t;
	int k;

	h = hash_bytes(h, &n, sizeof n);
	for (i = 0; i < n; i++) {
		cap = store_at(s, i);
		h = hash_bytes(h, cap->name, strlen(cap->name) + 1);
		h = hash_bytes(
		    h, &cap->has_error_page, sizeof cap->has_error_page);
		for (k = 0; k < CHECK__COUNT; k++) {
			c = &cap->check[k];
			t = c->last != NULL ? c->last->time : -1;
			h = hash_bytes(h, &c->probes, sizeof c->probes);
			h = hash_bytes(h, &t, sizeof t);
		}
		for (k = 0; k < SEQ__COUNT; k++) {
			t = cap->seq[k] != NULL ? seq_outcome_time(cap->seq[k])
			                        : -1;
			h = hash_bytes(h, &t, sizeof t);
		}
	}
	return h;
}

struct metrics_cache *
metrics_cache_new(void)
{
	struct metrics_cache *mc;

	mc = xcalloc(1, sizeof *mc);
	pthread_mutex_init(&mc->lock, NULL);
	mc->capsule_bytes = METRICS_CAPSULE_BYTES;
	return mc;
}

/* Resident memory and descriptors, read at most once a second. */
static void
cache_proc(struct metrics_cache *mc, struct proc_sample *p)
{
	double now = clock_mono();

	pthread_mutex_lock(&mc->lock);
	if (mc->proc_at == 0 || now - mc->proc_at >= 1) {
		proc_sample(&mc->proc);
		mc->proc_at = now;
	}
	*p = mc->proc;
	pthread_mutex_unlock(&mc->lock);
}

/* The capsules' text of n capsules was len bytes (mc->lock held). */
static void
cache_learn(struct metrics_cache *mc, size_t len, size_t n)
{
	if (n > 0)
		mc->capsule_bytes = len / n + 1;
}

void
metrics_cache_free(struct metrics_cache *mc)
{
	if (mc == NULL)
		return;
	pthread_mutex_destroy(&mc->lock);
	metrics_text_release(mc->text);
	free(mc);
}

struct metrics_text *
metrics_render_shared(struct buf *rest, struct metrics_cache *mc,
    struct store *s, const struct daemon_info *info)
{
	struct emit e = {.b = NULL};
	struct metrics_text *t;
	struct proc_sample p;
	struct lag lag;
	struct buf caps;
	uint64_t fp;

	store_rdlock(s);
	fp = fingerprint(s);
	/* A scrape that finds another rendering waits and shares its text. */
	pthread_mutex_lock(&mc->lock);
	if (mc->text != NULL && mc->fp == fp)
		t = text_hold(mc->text);
	else {
		buf_init(&caps);
		e.b = &caps;
		render_capsules(&e, s);
		t = xcalloc(1, sizeof *t);
		atomic_init(&t->refs, 1);
		t->data = buf_steal(&caps, &t->len);
		cache_learn(mc, t->len, store_count(s));
		metrics_text_release(mc->text);
		mc->text = NULL;
		if (t->len <= METRICS_CACHE_MAX) {
			mc->text = text_hold(t);
			mc->fp = fp;
		}
	}
	pthread_mutex_unlock(&mc->lock);
	cache_proc(mc, &p);
	e.b = rest;
	render_daemon(&e, s, info);
	store_unlock(s);
	store_lag(s, &lag);
	render_lag(&e, &lag);
	render_process(&e, info, &p);
	return t;
}

struct metrics_stream *
metrics_stream_new(
    struct metrics_cache *mc, struct store *s, const struct daemon_info *info)
{
	struct metrics_stream *ms;
	size_t n;
	int big;

	store_rdlock(s);
	n = store_count(s);
	pthread_mutex_lock(&mc->lock);
	big = mc->capsule_bytes > METRICS_CACHE_MAX / (n > 0 ? n : 1);
	pthread_mutex_unlock(&mc->lock);
	if (!big) {
		store_unlock(s);
		return NULL;
	}
	ms = xcalloc(1, sizeof *ms);
	ms->mc = mc;
	ms->s = s;
	ms->info = info;
	ms->generation = store_generation(s);
	ms->n = n;
	buf_init(&ms->pre);
	ms->pfx = prefixes_new(s, &ms->pre);
	store_unlock(s);
	buf_init(&ms->out);
	ms->e.b = &ms->out;
	ms->state = STREAM_CAPSULES;
	return ms;
}

/* Render the next piece into ms->out: a few capsules, or the end. */
static void
stream_step(struct metrics_stream *ms)
{
	struct emit *e = &ms->e;
	struct proc_sample p;
	struct lag lag;
	size_t before = ms->out.len, end;
	int k;

	store_rdlock(ms->s);
	if (store_generation(ms->s) != ms->generation) {
		store_unlock(ms->s);
		ms->state = STREAM_FAILED;
		return;
	}
	while (ms->f < NLABELS(families) && families[ms->f].name == NULL)
		ms->f++;
	if (ms->f < NLABELS(families)) {
		if (ms->i == 0)
			family_begin(e, families[ms->f].name,
			    families[ms->f].type, families[ms->f].help);
		end = ms->i + METRICS_STREAM_STEP < ms->n
		          ? ms->i + METRICS_STREAM_STEP
		          : ms->n;
		render_family(e, ms->s, &ms->pre, ms->pfx, ms->f, ms->i, end);
		ms->i = end;
		if (ms->i == ms->n) {
			ms->i = 0;
			ms->f++;
		}
		ms->capsules_len += ms->out.len - before;
		store_unlock(ms->s);
		return;
	}
	for (k = 0; k < SEQ__COUNT; k++)
		seq_ops(k)->metrics(e->b, ms->s);
	render_daemon(e, ms->s, ms->info);
	store_unlock(ms->s);
	store_lag(ms->s, &lag);
	render_lag(e, &lag);
	cache_proc(ms->mc, &p);
	render_process(e, ms->info, &p);
	pthread_mutex_lock(&ms->mc->lock);
	cache_learn(ms->mc, ms->capsules_len, ms->n);
	pthread_mutex_unlock(&ms->mc->lock);
	ms->state = STREAM_DONE;
}

long
metrics_stream_read(struct metrics_stream *ms, char *dst, size_t max)
{
	size_t n;

	if (ms->off == ms->out.len) {
		ms->out.len = ms->off = 0;
		while (ms->out.len < max && ms->state == STREAM_CAPSULES)
			stream_step(ms);
		if (ms->state == STREAM_FAILED)
			return -1;
	}
	n = ms->out.len - ms->off < max ? ms->out.len - ms->off : max;
	memcpy(dst, ms->out.data + ms->off, n);
	ms->off += n;
	return (long)n;
}

void
metrics_stream_free(struct metrics_stream *ms)
{
	if (ms == NULL)
		return;
	buf_free(&ms->pre);
	free(ms->pfx);
	buf_free(&ms->out);
	free(ms);
}
