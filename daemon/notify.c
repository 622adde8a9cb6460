/*
 * The notifier. Each configured check (a capsule's page or error page)
 * has a small state machine fed by its probes' results, debounced like
 * Prometheus' `for:`:
 *
 *   down / up             notify-after failures in a row open a down; the
 *                         first success after it sends up. A probe that
 *                         fails only for close_notify or the pinned
 *                         certificate has its own events and counts as up.
 *   close_notify_lost / close_notify_back
 *                         notify-after responses in a row that ended
 *                         without close_notify (premature, reset); the
 *                         first one that ends with it again. Probes that
 *                         never reached the body say nothing either way.
 *   cert_changed / cert_mismatch
 *                         (page only: the error page shares the host) a
 *                         certificate other than the last one adopted,
 *                         presented notify-after times in a row, is
 *                         adopted; mismatch when a pinned fingerprint
 *                         refuses it, changed otherwise.
 *   cert_expiring         the certificate expires within notify-cert-days:
 *                         at most once per UTC day.
 *   crawl_problems / crawl_clean, diagnose_failing / diagnose_passing
 *                         (kept with the page's state) a finished run of
 *                         the capsule's crawl or diagnose: a problem (a
 *                         failing page, a failing check) the previous
 *                         run did not have; the first run with none after
 *                         one was sent. A run is the verdict of many
 *                         requests hours apart: notify-after does not
 *                         apply, notify-repeat does. A problem is known
 *                         by 128 bits of a SHA-256 of what it is (URL and
 *                         kind of failure, check name): a capsule cannot
 *                         hide a new one behind an old one's digest.
 *
 * notify_result runs on a prober's thread: under the notifier's lock it
 * updates the state and queues, per event and command, a job holding the
 * event's JSON document and environment. One runner thread starts the
 * jobs, at most NOTIFY_RUNNING_MAX at once, with posix_spawn (no shell,
 * a process group of their own, SIGPIPE back to default), feeds stdin,
 * keeps the first line of stderr, and kills the group at notify-timeout.
 * A failed run is retried NOTIFY_RETRIES times. The runner also saves the
 * state to state-dir when an event changed it, so neither a reload nor a
 * restart sends a change again.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <jansson.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "buf.h"
#include "clock.h"
#include "conf.h"
#include "crawl.h"
#include "file.h"
#include "hex.h"
#include "log.h"
#include "notify.h"
#include "utf8.h"
#include "xmalloc.h"

#define NOTIFY_RUNNING_MAX 4   /* commands running at once */
#define NOTIFY_QUEUE_MAX 256   /* runs waiting; more are dropped */
#define NOTIFY_RETRIES 2       /* runs after a failed one */
#define NOTIFY_STOP_WAIT 5.0   /* seconds running commands get at exit */
#define NOTIFY_TICK_MS 20      /* how often a running child is checked */
#define NOTIFY_STDERR_MAX 4096 /* bytes of stderr kept */
#define NOTIFY_LINE_MAX 200    /* bytes of its first line logged */
#define NOTIFY_VALUE_MAX 1024  /* bytes of one GEMWATCH_* value */
#define NOTIFY_DETAIL_MAX 120  /* bytes of a message in the summary */
#define NOTIFY_STATE_MAX (64 * 1024 * 1024) /* bytes of the state file */
#define NOTIFY_STATE_VERSION 1
#define NOTIFY_LIST_MAX 10     /* problems of a run listed in its JSON */
#define NOTIFY_OFFENDING_MAX 5 /* and in GEMWATCH_OFFENDING */
#define RKEY_LEN 16            /* bytes of a problem's key (of a SHA-256) */
#define RKEYS_MAX CRAWL_MAX    /* problems kept of one run */
#define DAY 86400.0

static const double retry_delay[NOTIFY_RETRIES] = {5, 30};

static const char *event_names[NOTIFY_EVENT__COUNT] = {"down", "up",
    "close_notify_lost", "close_notify_back", "cert_changed", "cert_expiring",
    "cert_mismatch", "crawl_problems", "crawl_clean", "diagnose_failing",
    "diagnose_passing", "test"};

static const char *outcome_names[NOTIFY_OUTCOME__COUNT] = {
    "ok", "failed", "timeout", "error", "dropped"};

/*
 * A condition debounced as Prometheus' for: does it: open after `after`
 * bad results in a row, closed by the first good one.
 */
struct streak {
	unsigned bad; /* bad results in a row */
	int open;     /* its event was sent, not its end */
	double since; /* the first bad result of the streak */
};

enum streak_change { STREAK_SAME, STREAK_OPENED, STREAK_CLOSED };

/* A problem of a run, as kept: a digest of what it is. */
struct rkey {
	unsigned char b[RKEY_LEN];
};

/* What is known of a capsule's runs of one kind; persisted. */
struct runstate {
	int open;          /* problems were sent, not their end */
	double since;      /* the first run of the problems sent */
	double sent;       /* problems last sent (for notify-repeat) */
	struct rkey *keys; /* the previous run's problems, sorted */
	size_t nkeys;
};

/* What is known of one check; persisted. Times are Unix seconds, 0: none. */
struct nstate {
	char *name;
	enum check check;
	struct streak down;            /* failures */
	double down_sent;              /* last down sent (for notify-repeat) */
	struct streak cn;              /* ends without close_notify */
	char cert[SHA256_HEX_LEN + 1]; /* adopted; "" none */
	double cert_since;             /* when it was first presented */
	char cand[SHA256_HEX_LEN + 1]; /* presented instead */
	unsigned cand_n;
	double cand_since;
	double expiring_sent;
	struct runstate runs[SEQ__COUNT]; /* the page's state only */
	int kept;                         /* notify_apply's mark */
};

/* One event's document and environment, shared by its commands' jobs. */
struct payload {
	unsigned refs; /* under the lock */
	enum notify_event event;
	char *label; /* "down of NAME" for the log */
	char *json;
	size_t json_len;
	char **envp;
};

struct job {
	struct payload *p;
	char **argv;       /* a copy: a reload may drop the command */
	unsigned tries;    /* runs so far */
	double not_before; /* monotonic */
	struct job *next;
};

/* A command running (runner thread only). */
struct run {
	struct job *job;
	pid_t pid;
	int in_fd, err_fd; /* -1 once closed */
	size_t in_off;
	char err[NOTIFY_STDERR_MAX];
	size_t err_len;
	double deadline; /* monotonic */
	int timed_out;
};

struct notify {
	char *state_path; /* NULL: memory only */

	pthread_mutex_t lock;   /* guards everything below */
	pthread_cond_t idle;    /* nothing queued or running */
	struct nstate **states; /* sorted by name, check */
	size_t nstates;
	char ***cmds; /* the commands, NULL-terminated argv */
	size_t ncmds;
	unsigned after;
	double repeat;
	unsigned cert_days;
	double timeout;
	char **base_env; /* PATH, HOME ... for every command */
	size_t nbase_env;
	struct job *queue, *queue_tail;
	size_t nqueue;
	size_t dropped; /* since the queue was last full */
	unsigned running;
	int dirty; /* the state must be saved */
	int stopping;
	uint64_t counts[NOTIFY_EVENT__COUNT][NOTIFY_OUTCOME__COUNT];

	int started; /* the runner thread exists */
	pthread_t runner;
	int wake[2]; /* anyone → runner */
};

const char *
notify_event_name(enum notify_event e)
{
	return e < NOTIFY_EVENT__COUNT ? event_names[e] : NULL;
}

const char *
notify_outcome_name(enum notify_outcome o)
{
	return o < NOTIFY_OUTCOME__COUNT ? outcome_names[o] : NULL;
}

/* ---- values for commands ----------------------------------------------- */

/*
 * Append s as inert text: ill-formed UTF-8 becomes U+FFFD; a tab a blank;
 * other C0 and C1 controls, DEL, the line and paragraph separators and the
 * bidirectional overrides become "?", so a value cannot start a line, a
 * mail header or a terminal sequence, nor reorder what a reader sees. At
 * most max bytes (then "...").
 */
static void
clean_add(struct buf *b, const char *s, size_t max)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t len = strlen(s), i = 0, k, start = b->len;

	while (i < len) {
		if (b->len - start >= max) {
			buf_adds(b, "...");
			return;
		}
		if (u[i] < 0x80) {
			if (u[i] == '\t')
				buf_addc(b, ' ');
			else if (u[i] < 0x20 || u[i] == 0x7f)
				buf_addc(b, '?');
			else
				buf_addc(b, s[i]);
			i++;
			continue;
		}
		if ((k = utf8_char_len(s + i, len - i)) == 0) {
			buf_adds(b, "\xef\xbf\xbd");
			i++;
			continue;
		}
		if ((k == 2 && u[i] == 0xc2 && u[i + 1] < 0xa0) ||
		    (k == 3 && u[i] == 0xe2 && u[i + 1] == 0x80 &&
		        (u[i + 2] == 0x8e || u[i + 2] == 0x8f ||
		            (u[i + 2] >= 0xa8 && u[i + 2] <= 0xae))) ||
		    (k == 3 && u[i] == 0xe2 && u[i + 1] == 0x81 &&
		        u[i + 2] >= 0xa6 && u[i + 2] <= 0xa9))
			buf_addc(b, '?');
		else
			buf_add(b, s + i, k);
		i += k;
	}
}

static char *
clean(const char *s, size_t max)
{
	struct buf b;

	buf_init(&b);
	clean_add(&b, s != NULL ? s : "", max);
	buf_addc(&b, '\0');
	return buf_steal(&b, NULL);
}

static void
rfc3339(double t, char out[32])
{
	if (t <= 0 || !isfinite(t))
		out[0] = '\0';
	else
		format_rfc3339((time_t)t, out);
}

/* "45s", "5m 3s", "2h 5m", "3d 4h". */
static void
span(double secs, char out[32])
{
	long long s = secs > 0 ? (long long)secs : 0;

	if (s < 60)
		snprintf(out, 32, "%llds", s);
	else if (s < 3600)
		snprintf(out, 32, "%lldm %llds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(out, 32, "%lldh %lldm", s / 3600, s % 3600 / 60);
	else
		snprintf(out, 32, "%lldd %lldh", s / 86400, s % 86400 / 3600);
}

/* One problem of a finished run: a failing page, a failing check. */
struct problem {
	struct rkey key;
	const json_t *item; /* in the outcome: a page or a check object */
	int is_new;         /* the previous run did not have it */
};

/* A finished run, as an event tells it; the outcome is borrowed. */
struct rundigest {
	enum seq_kind kind;
	const json_t *outcome;
	struct problem *v; /* in the outcome's order */
	size_t n, nnew;
	int was_open; /* problems were open before this run */
};

/* What happened, for an event about a check. */
struct ev {
	enum notify_event event;
	int repeat;                  /* a down or a run's problems sent again */
	double since;                /* see the man page; 0: none */
	const char *prev_cert;       /* cert_changed/mismatch, or NULL */
	const struct rundigest *run; /* the run events' */
};

/* The one-line GEMWATCH_SUMMARY (raw; cleaned by the caller). */
static void
summary(struct buf *b, const struct ev *ev, const char *name, enum check check,
    const struct probe_result *r, double now)
{
	char when[32], date[32];
	double left;
	long days;

	buf_printf(b, "gemwatch: %s%s", name,
	    check == CHECK_ERROR_PAGE ? " (error page)" : "");
	switch (ev->event) {
	case NOTIFY_DOWN:
		buf_adds(b, ev->repeat ? " is still down: " : " is down: ");
		if (r->message != NULL)
			clean_add(b, r->message, NOTIFY_DETAIL_MAX);
		else
			buf_adds(b, reason_name(r->reason));
		if (r->reason == REASON_STATUS && r->meta != NULL &&
		    r->meta[0] != '\0') {
			buf_adds(b, " (");
			clean_add(b, r->meta, NOTIFY_DETAIL_MAX);
			buf_addc(b, ')');
		}
		break;
	case NOTIFY_UP:
		span(now - ev->since, when);
		buf_printf(b, " is up again after %s", when);
		break;
	case NOTIFY_CLOSE_NOTIFY_LOST:
		buf_printf(b, ": responses end without close_notify (%s)",
		    end_name(r->end));
		break;
	case NOTIFY_CLOSE_NOTIFY_BACK:
		buf_adds(b, ": responses end with close_notify again");
		break;
	case NOTIFY_CERT_CHANGED:
		if (r->cert.tofu == TOFU_MATCH)
			buf_adds(b, " presents its trusted certificate again");
		else if (r->cert.tofu == TOFU_PINNED)
			buf_adds(b, " presents its pinned certificate again");
		else if (r->cert.tofu == TOFU_CHANGED && r->cert.key_kept == 1)
			buf_adds(b, " presents a new certificate with the same "
			            "key");
		else if (r->cert.tofu == TOFU_CHANGED)
			buf_adds(
			    b, " presents a new certificate with a new key");
		else
			buf_adds(b, " presents another certificate");
		break;
	case NOTIFY_CERT_EXPIRING:
		left = (double)r->cert.not_after - now;
		format_rfc3339(r->cert.not_after, date);
		date[10] = '\0';
		days = (long)floor(fabs(left) / DAY);
		if (left < 0)
			buf_printf(b,
			    ": certificate expired %s%ld day%s ago (%s)",
			    days == 0 ? "less than a " : "",
			    days == 0 ? 1 : days, days > 1 ? "s" : "", date);
		else if (days == 0)
			buf_printf(
			    b, ": certificate expires within a day (%s)", date);
		else
			buf_printf(b, ": certificate expires in %ld day%s (%s)",
			    days, days > 1 ? "s" : "", date);
		break;
	case NOTIFY_CERT_MISMATCH:
		buf_adds(b, " presents a certificate that does not match its "
		            "pinned fingerprint");
		break;
	case NOTIFY_CRAWL_PROBLEMS:
	case NOTIFY_CRAWL_CLEAN:
	case NOTIFY_DIAGNOSE_FAILING:
	case NOTIFY_DIAGNOSE_PASSING:
		break; /* run_summary's */
	case NOTIFY_TEST:
	case NOTIFY_EVENT__COUNT:
		buf_adds(b, ": test notification from gemwatch notify-test");
		break;
	}
}

/* ---- runs' problems ---------------------------------------------------- */

static json_int_t
jint(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	return json_is_integer(v) && json_integer_value(v) > 0
	           ? json_integer_value(v)
	           : 0;
}

static const char *
jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static const char *
plural(long long n)
{
	return n == 1 ? "" : "s";
}

/* What a problem is called: a page's URL, a check's name. */
static const char *
problem_name(enum seq_kind k, const json_t *item)
{
	const char *s = jstr(item, k == SEQ_CRAWL ? "url" : "name");

	return s != NULL ? s : "";
}

/* A crawl's failing page: broken (4x, 5x), close_notify, or the reason. */
static const char *
page_kind(const json_t *page)
{
	json_int_t status = jint(page, "status");
	const char *reason = jstr(page, "reason");

	if (status / 10 == 4 || status / 10 == 5)
		return "broken";
	return reason != NULL ? reason : "failed";
}

/* The crawl's counts in words: "1 broken link, 2 without close_notify". */
static void
crawl_counts(struct buf *b, const json_t *o, size_t failed)
{
	long long broken = jint(o, "broken_links"),
	          nocn = jint(o, "without_close_notify"),
	          other = (long long)failed - broken - nocn;
	const char *sep = "";

	if (broken > 0) {
		buf_printf(b, "%lld broken link%s", broken, plural(broken));
		sep = ", ";
	}
	if (nocn > 0) {
		buf_printf(b, "%s%lld without close_notify", sep, nocn);
		sep = ", ";
	}
	if (other > 0)
		buf_printf(
		    b, "%s%lld other failure%s", sep, other, plural(other));
}

/* The first problems' names, new ones first: at most max, cleaned. */
static void
problem_names(struct buf *b, const struct rundigest *d, const char *sep,
    size_t max, size_t bytes)
{
	size_t i;

	for (i = 0; i < d->n && i < max; i++) {
		if (i > 0)
			buf_adds(b, sep);
		clean_add(b, problem_name(d->kind, d->v[i].item), bytes);
	}
}

/* The one-line summary of a run's event (raw; cleaned by the caller). */
static void
run_summary(struct buf *b, const struct ev *ev, const char *name)
{
	const struct rundigest *d = ev->run;
	const json_t *o = d->outcome, *counts;
	long long pages = jint(o, "pages");

	buf_printf(b, "gemwatch: %s: ", name);
	switch (ev->event) {
	case NOTIFY_CRAWL_PROBLEMS:
		if (ev->repeat)
			buf_printf(b,
			    "the crawl still finds %zu failing page%s of %lld",
			    d->n, plural((long long)d->n), pages);
		else if (d->was_open)
			buf_printf(b,
			    "the crawl finds %zu more failing page%s, %zu of "
			    "%lld in all",
			    d->nnew, plural((long long)d->nnew), d->n, pages);
		else
			buf_printf(b,
			    "the crawl finds %zu failing page%s of %lld", d->n,
			    plural((long long)d->n), pages);
		buf_adds(b, " (");
		crawl_counts(b, o, d->n);
		buf_adds(b, "): ");
		problem_names(b, d, " ", 1, NOTIFY_DETAIL_MAX);
		if (d->n > 1)
			buf_printf(b, " and %zu more", d->n - 1);
		break;
	case NOTIFY_CRAWL_CLEAN:
		buf_printf(b,
		    "the crawl finds no failing page again (%lld "
		    "page%s)",
		    pages, plural(pages));
		break;
	case NOTIFY_DIAGNOSE_FAILING:
		if (ev->repeat)
			buf_printf(b, "%zu conformance check%s still fail%s",
			    d->n, plural((long long)d->n),
			    d->n == 1 ? "s" : "");
		else if (d->was_open)
			buf_printf(b,
			    "%zu more conformance check%s fail%s, %zu in all",
			    d->nnew, plural((long long)d->nnew),
			    d->nnew == 1 ? "s" : "", d->n);
		else
			buf_printf(b, "%zu conformance check%s fail%s", d->n,
			    plural((long long)d->n), d->n == 1 ? "s" : "");
		buf_adds(b, ": ");
		problem_names(b, d, ", ", NOTIFY_OFFENDING_MAX, 64);
		if (d->n > NOTIFY_OFFENDING_MAX)
			buf_adds(b, ", ...");
		break;
	case NOTIFY_DIAGNOSE_PASSING:
		counts = json_object_get(o, "counts");
		buf_printf(b,
		    "no conformance check fails again (%lld pass, %lld warn, "
		    "%lld skip)",
		    (long long)jint(counts, "pass"),
		    (long long)jint(counts, "warn"),
		    (long long)jint(counts, "skip"));
		break;
	default:
		break;
	}
}

/* GEMWATCH_MESSAGE of a run: its outcome in words (raw). */
static void
run_message(struct buf *b, const struct rundigest *d)
{
	const json_t *o = d->outcome;
	const char *s;
	long long pages = jint(o, "pages");

	if (d->kind == SEQ_DIAGNOSE) {
		if ((s = jstr(o, "summary")) != NULL)
			clean_add(b, s, NOTIFY_VALUE_MAX);
		return;
	}
	buf_printf(
	    b, "%lld page%s crawled, %zu failed", pages, plural(pages), d->n);
	if (d->n > 0) {
		buf_adds(b, ": ");
		crawl_counts(b, o, d->n);
	}
	if (json_is_true(json_object_get(o, "truncated")))
		buf_printf(
		    b, " (stopped at %lld pages)", (long long)jint(o, "limit"));
}

/* A cleaned string of item's key, or null. */
static json_t *
jclean(const json_t *item, const char *key)
{
	const char *s = jstr(item, key);
	json_t *j;
	char *c;

	if (s == NULL)
		return json_null();
	c = clean(s, NOTIFY_VALUE_MAX);
	j = json_string(c);
	free(c);
	return j;
}

/*
 * The JSON document's "run": the counts, and the first problems (new ones
 * first, NOTIFY_LIST_MAX at most), every string cleaned.
 */
static json_t *
run_json(const struct rundigest *d)
{
	const json_t *o = d->outcome, *it, *counts;
	json_t *j, *list, *p;
	size_t i;

	list = json_array();
	for (i = 0; i < d->n && i < NOTIFY_LIST_MAX; i++) {
		it = d->v[i].item;
		if (d->kind == SEQ_CRAWL)
			p = json_pack("{s:o, s:o, s:o, s:s, s:o, s:o, s:b}",
			    "url", jclean(it, "url"), "referrer",
			    jclean(it, "referrer"), "status",
			    json_is_integer(json_object_get(it, "status"))
			        ? json_integer(jint(it, "status"))
			        : json_null(),
			    "kind", page_kind(it), "reason",
			    jclean(it, "reason"), "message",
			    jclean(it, "message"), "new", d->v[i].is_new);
		else
			p = json_pack("{s:o, s:o, s:o, s:b}", "check",
			    jclean(it, "name"), "rule", jclean(it, "rule"),
			    "why", jclean(it, "why"), "new", d->v[i].is_new);
		if (list == NULL || p == NULL ||
		    json_array_append_new(list, p) != 0)
			fatalx("out of memory");
	}
	if (d->kind == SEQ_CRAWL) {
		long long broken = jint(o, "broken_links"),
		          nocn = jint(o, "without_close_notify"),
		          other = (long long)d->n - broken - nocn;

		j = json_pack("{s:s, s:I, s:b, s:I, s:I, s:I, s:I, s:I, s:o}",
		    "kind", "crawl", "pages", (json_int_t)jint(o, "pages"),
		    "truncated", json_is_true(json_object_get(o, "truncated")),
		    "failed", (json_int_t)d->n, "broken_links",
		    (json_int_t)broken, "without_close_notify",
		    (json_int_t)nocn, "other_failures",
		    (json_int_t)(other > 0 ? other : 0), "new",
		    (json_int_t)d->nnew, "problems", list);
	} else {
		counts = json_object_get(o, "counts");
		j = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:o}", "kind",
		    "diagnose", "pass", (json_int_t)jint(counts, "pass"),
		    "fail", (json_int_t)d->n, "warn",
		    (json_int_t)jint(counts, "warn"), "skip",
		    (json_int_t)jint(counts, "skip"), "new",
		    (json_int_t)d->nnew, "problems", list);
	}
	if (j == NULL)
		fatalx("out of memory");
	return j;
}

enum field {
	F_EVENT,
	F_CAPSULE,
	F_CHECK,
	F_URL,
	F_TIME,
	F_SINCE,
	F_REASON,
	F_MESSAGE,
	F_STATUS,
	F_META,
	F_END,
	F_SUMMARY,
	F_CERT_SHA256,
	F_CERT_NOT_AFTER,
	F_PREVIOUS_CERT_SHA256,
	F_REPEAT,
	F_PROBLEMS,
	F_OFFENDING,
	F__COUNT
};

/* JSON key; the variable is GEMWATCH_ and the key in upper case. */
static const char *field_names[F__COUNT] = {"event", "capsule", "check", "url",
    "time", "since", "reason", "message", "status", "meta", "end", "summary",
    "cert_sha256", "cert_not_after", "previous_cert_sha256", "repeat",
    "problems", "offending"};

/*
 * The payload of an event: the same cleaned values as GEMWATCH_*
 * variables and as a JSON document ("" is null there), which also carries
 * the probe's whole result as /api/v1 shows it. r may be NULL (a test).
 */
static struct payload *
payload_new(const struct notify *n, const struct ev *ev, const char *name,
    enum check check, const char *url, const struct probe_result *r, double now)
{
	struct payload *p;
	struct buf b;
	char *v[F__COUNT], t[32], var[64], *text;
	json_t *o, *res;
	size_t i, k;

	memset(v, 0, sizeof v);
	v[F_EVENT] = xstrdup(event_names[ev->event]);
	v[F_CAPSULE] = clean(name, NOTIFY_VALUE_MAX);
	v[F_CHECK] = xstrdup(
	    ev->run != NULL ? seq_name(ev->run->kind) : check_name(check));
	v[F_URL] = clean(url, NOTIFY_VALUE_MAX);
	rfc3339(now, t);
	v[F_TIME] = xstrdup(t);
	rfc3339(ev->since, t);
	v[F_SINCE] = xstrdup(t);
	v[F_REASON] = xstrdup(r != NULL && reason_name(r->reason) != NULL
	                          ? reason_name(r->reason)
	                          : "");
	if (ev->run != NULL) {
		buf_init(&b);
		run_message(&b, ev->run);
		buf_addc(&b, '\0');
		v[F_MESSAGE] = clean(b.data, NOTIFY_VALUE_MAX);
		buf_free(&b);
	} else
		v[F_MESSAGE] = clean(r != NULL ? r->message
		                               : "a test notification from "
		                                 "gemwatch notify-test",
		    NOTIFY_VALUE_MAX);
	if (r != NULL && r->status >= 0)
		xasprintf(&v[F_STATUS], "%d", r->status);
	else
		v[F_STATUS] = xstrdup("");
	v[F_META] = clean(r != NULL ? r->meta : NULL, NOTIFY_VALUE_MAX);
	v[F_END] = xstrdup(
	    r != NULL && end_name(r->end) != NULL ? end_name(r->end) : "");
	buf_init(&b);
	if (ev->run != NULL)
		run_summary(&b, ev, name);
	else if (r != NULL)
		summary(&b, ev, name, check, r, now);
	else {
		struct ev test = {NOTIFY_TEST, 0, 0, NULL, NULL};

		summary(&b, &test, name, check, NULL, now);
	}
	buf_addc(&b, '\0');
	v[F_SUMMARY] = clean(b.data, NOTIFY_VALUE_MAX);
	buf_free(&b);
	v[F_CERT_SHA256] =
	    xstrdup(r != NULL && r->cert.present ? r->cert.sha256 : "");
	rfc3339(
	    r != NULL && r->cert.present ? (double)r->cert.not_after : 0, t);
	v[F_CERT_NOT_AFTER] = xstrdup(t);
	v[F_PREVIOUS_CERT_SHA256] =
	    xstrdup(ev->prev_cert != NULL ? ev->prev_cert : "");
	v[F_REPEAT] = xstrdup(ev->repeat ? "1" : "0");
	buf_init(&b);
	if (ev->run != NULL) {
		buf_printf(&b, "%zu", ev->run->n);
		v[F_PROBLEMS] = buf_steal(&b, NULL);
		buf_init(&b);
		problem_names(
		    &b, ev->run, " ", NOTIFY_OFFENDING_MAX, NOTIFY_VALUE_MAX);
	} else
		v[F_PROBLEMS] = xstrdup("");
	buf_addc(&b, '\0');
	v[F_OFFENDING] = clean(b.data, NOTIFY_VALUE_MAX);
	buf_free(&b);

	p = xcalloc(1, sizeof *p);
	p->event = ev->event;
	xasprintf(&p->label, "%s of %s%s", event_names[ev->event], v[F_CAPSULE],
	    check == CHECK_ERROR_PAGE ? " (error page)" : "");
	p->envp = xcalloc(n->nbase_env + F__COUNT + 1, sizeof *p->envp);
	for (i = 0; i < n->nbase_env; i++)
		p->envp[i] = xstrdup(n->base_env[i]);
	for (k = 0; k < F__COUNT; k++) {
		snprintf(var, sizeof var, "GEMWATCH_%s", field_names[k]);
		for (char *c = var; *c != '\0'; c++)
			if (*c >= 'a' && *c <= 'z')
				*c -= 'a' - 'A';
		xasprintf(&p->envp[i++], "%s=%s", var, v[k]);
	}

	if ((o = json_object()) == NULL)
		fatalx("out of memory");
	for (k = 0; k < F__COUNT; k++) {
		json_t *j;

		if (k == F_REPEAT)
			j = json_boolean(ev->repeat);
		else if (v[k][0] == '\0')
			j = json_null();
		else if (k == F_STATUS)
			j = json_integer(r->status);
		else if (k == F_PROBLEMS)
			j = json_integer((json_int_t)ev->run->n);
		else
			j = json_string(v[k]);
		if (j == NULL || json_object_set_new(o, field_names[k], j) != 0)
			fatalx("out of memory");
	}
	res = r != NULL ? api_result(r, name) : json_null();
	if (res == NULL || json_object_set_new(o, "result", res) != 0 ||
	    json_object_set_new(o, "run",
	        ev->run != NULL ? run_json(ev->run) : json_null()) != 0 ||
	    (text = json_dumps(o, API_DUMP_FLAGS)) == NULL)
		fatalx("out of memory");
	xasprintf(&p->json, "%s\n", text); /* a line, for `read` */
	free(text);
	p->json_len = strlen(p->json);
	json_decref(o);
	for (k = 0; k < F__COUNT; k++)
		free(v[k]);
	return p;
}

/* Under the lock. */
static void
payload_release(struct payload *p)
{
	size_t i;

	if (p == NULL || --p->refs > 0)
		return;
	for (i = 0; p->envp[i] != NULL; i++)
		free(p->envp[i]);
	free(p->envp);
	free(p->json);
	free(p->label);
	free(p);
}

static char **
argv_copy(char **argv)
{
	char **c;
	size_t i, n;

	for (n = 0; argv[n] != NULL; n++)
		;
	c = xcalloc(n + 1, sizeof *c);
	for (i = 0; i < n; i++)
		c[i] = xstrdup(argv[i]);
	return c;
}

static void
argv_free(char **argv)
{
	size_t i;

	if (argv == NULL)
		return;
	for (i = 0; argv[i] != NULL; i++)
		free(argv[i]);
	free(argv);
}

/* Under the lock. */
static void
job_free(struct notify *n, struct job *j)
{
	payload_release(j->p);
	argv_free(j->argv);
	free(j);
}

/* Append j to the queue (under the lock). */
static void
queue_push(struct notify *n, struct job *j)
{
	j->next = NULL;
	if (n->queue_tail != NULL)
		n->queue_tail->next = j;
	else
		n->queue = j;
	n->queue_tail = j;
	n->nqueue++;
}

static void
wake_runner(struct notify *n)
{
	(void)!write(n->wake[1], "", 1);
}

/* Queue p for every command (under the lock); p is consumed. */
static void
enqueue(struct notify *n, struct payload *p)
{
	struct job *j;
	size_t i;

	p->refs = 1;
	for (i = 0; i < n->ncmds; i++) {
		if (n->nqueue >= NOTIFY_QUEUE_MAX) {
			/* Said once per flood; the runner tells the total. */
			if (n->dropped++ == 0)
				log_warnx(
				    "notify: %d commands waiting: "
				    "dropping events until they ran (first: "
				    "%s)",
				    NOTIFY_QUEUE_MAX, p->label);
			n->counts[p->event][NOTIFY_DROPPED]++;
			continue;
		}
		j = xcalloc(1, sizeof *j);
		j->p = p;
		p->refs++;
		j->argv = argv_copy(n->cmds[i]);
		queue_push(n, j);
	}
	log_info("notify: %s: %zu commands to run", p->label, n->ncmds);
	payload_release(p);
	wake_runner(n);
}

/* ---- state ------------------------------------------------------------- */

static int
state_cmp(const struct nstate *a, const char *name, enum check check)
{
	int c;

	if ((c = strcmp(a->name, name)) != 0)
		return c;
	return (int)a->check - (int)check;
}

static int
state_sort_cmp(const void *a, const void *b)
{
	const struct nstate *y = *(struct nstate *const *)b;

	return state_cmp(*(struct nstate *const *)a, y->name, y->check);
}

/* The state of name's check in v[0..n) sorted; NULL when absent. */
static struct nstate *
state_find(struct nstate **v, size_t n, const char *name, enum check check)
{
	size_t lo = 0, hi = n, mid;
	int c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if ((c = state_cmp(v[mid], name, check)) == 0)
			return v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static struct nstate *
state_new(const char *name, enum check check)
{
	struct nstate *st;

	st = xcalloc(1, sizeof *st);
	st->name = xstrdup(name);
	st->check = check;
	return st;
}

/* Forget what is known of c's runs of kind k. */
static void
runstate_clear(struct runstate *rs)
{
	free(rs->keys);
	memset(rs, 0, sizeof *rs);
}

static void
state_free(struct nstate *st)
{
	int k;

	if (st == NULL)
		return;
	for (k = 0; k < SEQ__COUNT; k++)
		runstate_clear(&st->runs[k]);
	free(st->name);
	free(st);
}

static int
rkey_cmp(const void *a, const void *b)
{
	return memcmp(a, b, RKEY_LEN);
}

/* A run's state as keys of o (the file's "crawl_open", ...), when any. */
static void
runstate_dump(json_t *o, enum seq_kind k, const struct runstate *rs)
{
	char key[64], hex[2 * RKEY_LEN + 1];
	json_t *a;
	size_t i;

	if (!rs->open && rs->nkeys == 0)
		return;
	if ((a = json_array()) == NULL)
		fatalx("out of memory");
	for (i = 0; i < rs->nkeys; i++) {
		hex_encode(rs->keys[i].b, RKEY_LEN, hex);
		if (json_array_append_new(a, json_string(hex)) != 0)
			fatalx("out of memory");
	}
	snprintf(key, sizeof key, "%s_problems", seq_name(k));
	if (json_object_set_new(o, key, a) != 0)
		fatalx("out of memory");
	snprintf(key, sizeof key, "%s_open", seq_name(k));
	json_object_set_new(o, key, json_boolean(rs->open));
	snprintf(key, sizeof key, "%s_since", seq_name(k));
	json_object_set_new(o, key, json_real(rs->since));
	snprintf(key, sizeof key, "%s_sent", seq_name(k));
	json_object_set_new(o, key, json_real(rs->sent));
}

/* The state as JSON text (under the lock); caller frees. */
static char *
state_dump(const struct notify *n)
{
	const struct nstate *st;
	json_t *root, *a, *o;
	char *text;
	size_t i;
	int k;

	root = json_pack("{s:i}", "version", NOTIFY_STATE_VERSION);
	a = json_array();
	if (root == NULL || a == NULL ||
	    json_object_set_new(root, "checks", a) != 0)
		fatalx("out of memory");
	for (i = 0; i < n->nstates; i++) {
		st = n->states[i];
		o = json_pack("{s:s, s:s, s:I, s:b, s:f, s:f, s:I, s:b, s:f, "
		              "s:s, s:f, s:s, s:I, s:f, s:f}",
		    "capsule", st->name, "check", check_name(st->check),
		    "fails", (json_int_t)st->down.bad, "down_open",
		    st->down.open, "down_since", st->down.since, "down_sent",
		    st->down_sent, "cn_bad", (json_int_t)st->cn.bad, "cn_open",
		    st->cn.open, "cn_since", st->cn.since, "cert", st->cert,
		    "cert_since", st->cert_since, "cand", st->cand, "cand_n",
		    (json_int_t)st->cand_n, "cand_since", st->cand_since,
		    "expiring_sent", st->expiring_sent);
		if (o == NULL)
			fatalx("out of memory");
		for (k = 0; k < SEQ__COUNT; k++)
			runstate_dump(o, k, &st->runs[k]);
		if (json_array_append_new(a, o) != 0)
			fatalx("out of memory");
	}
	if ((text = json_dumps(root, JSON_COMPACT)) == NULL)
		fatalx("out of memory");
	json_decref(root);
	return text;
}

/* A time from the file: finite, not negative, else 0. */
static double
jtime(json_t *o, const char *key)
{
	double t = json_number_value(json_object_get(o, key));

	return isfinite(t) && t > 0 && t < 1e12 ? t : 0;
}

static unsigned
jcount(json_t *o, const char *key)
{
	json_int_t v = json_integer_value(json_object_get(o, key));

	return v > 0 && v < 1000000 ? (unsigned)v : 0;
}

static void
jsha(json_t *o, const char *key, char out[SHA256_HEX_LEN + 1])
{
	const char *s = json_string_value(json_object_get(o, key));

	out[0] = '\0';
	if (s != NULL && strlen(s) == SHA256_HEX_LEN &&
	    strspn(s, "0123456789abcdef") == SHA256_HEX_LEN)
		memcpy(out, s, SHA256_HEX_LEN + 1);
}

/* Read back what runstate_dump wrote; what does not fit is skipped. */
static void
runstate_load(json_t *o, enum seq_kind k, struct runstate *rs)
{
	char key[64];
	const char *h;
	json_t *a, *v;
	size_t i, b;

	snprintf(key, sizeof key, "%s_problems", seq_name(k));
	if (!json_is_array(a = json_object_get(o, key)))
		return;
	rs->keys = xcalloc(
	    json_array_size(a) < RKEYS_MAX ? json_array_size(a) + 1 : RKEYS_MAX,
	    sizeof *rs->keys);
	json_array_foreach(a, i, v)
	{
		if (rs->nkeys == RKEYS_MAX)
			break;
		h = json_string_value(v);
		if (h == NULL || strlen(h) != 2 * RKEY_LEN ||
		    strspn(h, "0123456789abcdef") != 2 * RKEY_LEN)
			continue;
		for (b = 0; b < RKEY_LEN; b++)
			rs->keys[rs->nkeys].b[b] =
			    (unsigned char)hex_byte(h + 2 * b);
		rs->nkeys++;
	}
	qsort(rs->keys, rs->nkeys, sizeof *rs->keys, rkey_cmp);
	snprintf(key, sizeof key, "%s_open", seq_name(k));
	rs->open = json_is_true(json_object_get(o, key));
	snprintf(key, sizeof key, "%s_since", seq_name(k));
	rs->since = jtime(o, key);
	snprintf(key, sizeof key, "%s_sent", seq_name(k));
	rs->sent = jtime(o, key);
}

/*
 * Load the state file into n->states. The file is ours, but read as
 * hostile all the same: bounded, and whatever does not fit is skipped.
 */
static void
state_load(struct notify *n)
{
	struct nstate *st;
	struct stat sb;
	json_error_t jerr;
	json_t *root = NULL, *a, *o;
	const char *name, *check;
	char *data = NULL;
	size_t i, k, len = 0;
	ssize_t r;
	int fd, c, kind;

	if ((fd = open(n->state_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) ==
	    -1) {
		if (errno != ENOENT)
			log_warn("notify: %s", n->state_path);
		return;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) ||
	    sb.st_size > NOTIFY_STATE_MAX) {
		log_warnx("notify: %s is not a regular file of at most %d "
		          "MiB; starting afresh",
		    n->state_path, NOTIFY_STATE_MAX / (1024 * 1024));
		goto out;
	}
	data = xmalloc((size_t)sb.st_size + 1);
	while (len < (size_t)sb.st_size) {
		r = read(fd, data + len, (size_t)sb.st_size - len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	if ((root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr)) ==
	        NULL ||
	    json_integer_value(json_object_get(root, "version")) !=
	        NOTIFY_STATE_VERSION ||
	    !json_is_array(a = json_object_get(root, "checks"))) {
		log_warnx("notify: %s is not a gemwatch notify state; "
		          "starting afresh",
		    n->state_path);
		goto out;
	}
	json_array_foreach(a, i, o)
	{
		name = json_string_value(json_object_get(o, "capsule"));
		check = json_string_value(json_object_get(o, "check"));
		if (name == NULL || check == NULL || name[0] == '\0')
			continue;
		for (c = 0; c < CHECK__COUNT; c++)
			if (strcmp(check, check_name(c)) == 0)
				break;
		if (c == CHECK__COUNT)
			continue;
		st = state_new(name, c);
		st->down.bad = jcount(o, "fails");
		st->down.open = json_is_true(json_object_get(o, "down_open"));
		st->down.since = jtime(o, "down_since");
		st->down_sent = jtime(o, "down_sent");
		st->cn.bad = jcount(o, "cn_bad");
		st->cn.open = json_is_true(json_object_get(o, "cn_open"));
		st->cn.since = jtime(o, "cn_since");
		jsha(o, "cert", st->cert);
		st->cert_since = jtime(o, "cert_since");
		jsha(o, "cand", st->cand);
		st->cand_n = jcount(o, "cand_n");
		st->cand_since = jtime(o, "cand_since");
		st->expiring_sent = jtime(o, "expiring_sent");
		if (c == CHECK_PAGE)
			for (kind = 0; kind < SEQ__COUNT; kind++)
				runstate_load(o, kind, &st->runs[kind]);
		n->states =
		    xreallocarray(n->states, n->nstates + 1, sizeof *n->states);
		n->states[n->nstates++] = st;
	}
	/* Sorted for state_find; a check given twice is kept once. */
	qsort(n->states, n->nstates, sizeof *n->states, state_sort_cmp);
	for (i = k = 0; i < n->nstates; i++) {
		if (k > 0 &&
		    state_sort_cmp(&n->states[k - 1], &n->states[i]) == 0)
			state_free(n->states[i]);
		else
			n->states[k++] = n->states[i];
	}
	n->nstates = k;
	log_info("notify: %zu checks' state loaded from %s", n->nstates,
	    n->state_path);
out:
	json_decref(root);
	free(data);
	close(fd);
}

/* file_replace's filler: the text of the state. */
static int
state_fill(FILE *fp, void *text)
{
	return fputs(text, fp) == EOF ? -1 : 0;
}

/* Save when an event changed the state; runner thread or at the end. */
static void
state_save(struct notify *n)
{
	char *text;

	pthread_mutex_lock(&n->lock);
	if (!n->dirty || n->state_path == NULL) {
		pthread_mutex_unlock(&n->lock);
		return;
	}
	n->dirty = 0;
	text = state_dump(n);
	pthread_mutex_unlock(&n->lock);
	if (file_replace(n->state_path, 0600, state_fill, text) == -1) {
		pthread_mutex_lock(&n->lock);
		n->dirty = 1; /* try again with the next change */
		pthread_mutex_unlock(&n->lock);
	}
	free(text);
}

/* ---- deciding ---------------------------------------------------------- */

static void
fire(struct notify *n, struct nstate *st, const struct ev *ev,
    const struct probe_result *r)
{
	n->dirty = 1;
	if (n->ncmds == 0)
		return;
	enqueue(n, payload_new(n, ev, st->name, st->check, r->url, r, r->time));
}

/* One more result of a debounced condition: bad or not, at time t. */
static enum streak_change
streak_step(struct streak *k, int bad, double t, unsigned after)
{
	if (!bad) {
		k->bad = 0;
		if (!k->open)
			return STREAK_SAME;
		k->open = 0;
		return STREAK_CLOSED;
	}
	if (k->bad == 0)
		k->since = t;
	if (k->bad < 1000000)
		k->bad++;
	if (k->open || k->bad < after)
		return STREAK_SAME;
	k->open = 1;
	return STREAK_OPENED;
}

static void
decide_down(struct notify *n, struct nstate *st, const struct probe_result *r)
{
	struct ev ev = {NOTIFY_DOWN, 0, 0, NULL, NULL};
	int bad;

	/* A failure with its own events says the capsule answers. */
	bad = !r->success && r->reason != REASON_CLOSE_NOTIFY &&
	      r->reason != REASON_CERT;
	switch (streak_step(&st->down, bad, r->time, n->after)) {
	case STREAK_CLOSED:
		ev.event = NOTIFY_UP;
		break;
	case STREAK_OPENED:
		break;
	case STREAK_SAME:
		if (!st->down.open || n->repeat <= 0 ||
		    r->time - st->down_sent < n->repeat)
			return;
		ev.repeat = 1;
		break;
	}
	ev.since = st->down.since;
	if (ev.event == NOTIFY_DOWN)
		st->down_sent = r->time;
	fire(n, st, &ev, r);
}

static void
decide_close_notify(
    struct notify *n, struct nstate *st, const struct probe_result *r)
{
	struct ev ev = {NOTIFY_CLOSE_NOTIFY_LOST, 0, 0, NULL, NULL};

	if (r->end != END_CLOSE_NOTIFY && r->end != END_PREMATURE &&
	    r->end != END_RESET)
		return; /* the body was not reached: nothing known */
	switch (streak_step(
	    &st->cn, r->end != END_CLOSE_NOTIFY, r->time, n->after)) {
	case STREAK_CLOSED:
		ev.event = NOTIFY_CLOSE_NOTIFY_BACK;
		break;
	case STREAK_OPENED:
		break;
	case STREAK_SAME:
		return;
	}
	ev.since = st->cn.since;
	fire(n, st, &ev, r);
}

static void
decide_cert(struct notify *n, struct nstate *st, const struct probe_result *r)
{
	struct ev ev = {NOTIFY_CERT_CHANGED, 0, 0, NULL, NULL};
	char prev[SHA256_HEX_LEN + 1];
	double left;

	if (!r->cert.present)
		return;
	if (strcmp(r->cert.sha256, st->cert) == 0)
		st->cand_n = 0;
	else {
		if (st->cand_n == 0 || strcmp(r->cert.sha256, st->cand) != 0) {
			memcpy(st->cand, r->cert.sha256, sizeof st->cand);
			st->cand_n = 0;
			st->cand_since = r->time;
		}
		st->cand_n++;
		if (st->cand_n >= n->after) {
			memcpy(prev, st->cert, sizeof prev);
			ev.since = st->cert_since;
			ev.prev_cert = prev[0] != '\0' ? prev : NULL;
			memcpy(st->cert, st->cand, sizeof st->cert);
			st->cert_since = st->cand_since;
			st->cand_n = 0;
			st->cand[0] = '\0';
			n->dirty = 1;
			if (r->cert.tofu == TOFU_MISMATCH) {
				ev.event = NOTIFY_CERT_MISMATCH;
				ev.since = st->cert_since;
				fire(n, st, &ev, r);
			} else if (prev[0] != '\0' ||
			           r->cert.tofu == TOFU_CHANGED)
				fire(n, st, &ev, r);
			/* else the first certificate seen: nothing changed */
		}
	}

	if (n->cert_days == 0)
		return;
	left = (double)r->cert.not_after - r->time;
	if (left >= n->cert_days * DAY) {
		if (st->expiring_sent != 0) {
			st->expiring_sent = 0; /* renewed */
			n->dirty = 1;
		}
		return;
	}
	if (st->expiring_sent != 0 &&
	    floor(st->expiring_sent / DAY) == floor(r->time / DAY))
		return; /* once per UTC day */
	st->expiring_sent = r->time;
	ev.event = NOTIFY_CERT_EXPIRING;
	ev.since = 0;
	ev.prev_cert = NULL;
	fire(n, st, &ev, r);
}

void
notify_result(struct notify *n, const struct capsule_conf *c, enum check check,
    const struct probe_result *r)
{
	struct nstate *st;

	if (n == NULL || !c->notify)
		return;
	pthread_mutex_lock(&n->lock);
	if ((st = state_find(n->states, n->nstates, c->name, check)) != NULL) {
		decide_down(n, st, r);
		decide_close_notify(n, st, r);
		if (check == CHECK_PAGE)
			decide_cert(n, st, r);
	}
	pthread_mutex_unlock(&n->lock);
}

/* The key of a run's problem: a SHA-256 of what it is. */
static void
problem_key(enum seq_kind k, const json_t *item, struct rkey *key)
{
	unsigned char md[32];
	struct buf b;

	buf_init(&b);
	buf_adds(&b, problem_name(k, item));
	if (k == SEQ_CRAWL) {
		buf_addc(&b, '\n');
		buf_adds(&b, page_kind(item));
	}
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, b.data, b.len, md) < 0)
		fatalx("notify: SHA-256 failed");
	buf_free(&b);
	memcpy(key->b, md, RKEY_LEN);
}

static void
fire_run(struct notify *n, struct nstate *st, const struct ev *ev,
    const char *url, double t)
{
	n->dirty = 1;
	if (n->ncmds == 0)
		return;
	enqueue(n, payload_new(n, ev, st->name, CHECK_PAGE, url, NULL, t));
}

/*
 * A finished run d, at t: its problems against the previous run's, the
 * events it causes; then its problems are the previous run's. Under the
 * lock.
 */
static void
decide_run(struct notify *n, struct nstate *st, const char *url,
    struct rundigest *d, double t)
{
	struct runstate *rs = &st->runs[d->kind];
	int crawl = d->kind == SEQ_CRAWL;
	struct ev ev = {crawl ? NOTIFY_CRAWL_PROBLEMS : NOTIFY_DIAGNOSE_FAILING,
	    0, 0, NULL, d};
	struct problem *sorted;
	struct rkey *keys;
	size_t i, k, nk;

	/* New ones first: the event lists them before the others. */
	sorted = xcalloc(d->n + 1, sizeof *sorted);
	for (i = k = 0; i < d->n; i++) {
		d->v[i].is_new =
		    rs->nkeys == 0 || bsearch(&d->v[i].key, rs->keys, rs->nkeys,
		                          sizeof *rs->keys, rkey_cmp) == NULL;
		if (d->v[i].is_new)
			sorted[k++] = d->v[i];
	}
	d->nnew = k;
	for (i = 0; i < d->n; i++)
		if (!d->v[i].is_new)
			sorted[k++] = d->v[i];
	if (d->n > 0)
		memcpy(d->v, sorted, d->n * sizeof *d->v);
	free(sorted);
	d->was_open = rs->open;

	if (d->n == 0 && rs->open) {
		ev.event = crawl ? NOTIFY_CRAWL_CLEAN : NOTIFY_DIAGNOSE_PASSING;
		ev.since = rs->since;
		rs->open = 0;
		fire_run(n, st, &ev, url, t);
	} else if (d->n > 0 &&
	           (d->nnew > 0 || !rs->open ||
	               (n->repeat > 0 && t - rs->sent >= n->repeat))) {
		/* Nothing new, and open already: notify-repeat's turn. */
		ev.repeat = d->nnew == 0 && rs->open;
		if (!rs->open)
			rs->since = t;
		rs->open = 1;
		rs->sent = t;
		ev.since = rs->since;
		fire_run(n, st, &ev, url, t);
	}

	/* This run's problems, sorted and once each, are the previous. */
	keys = xcalloc(d->n + 1, sizeof *keys);
	for (i = 0; i < d->n; i++)
		keys[i] = d->v[i].key;
	qsort(keys, d->n, sizeof *keys, rkey_cmp);
	for (i = nk = 0; i < d->n; i++)
		if (nk == 0 || rkey_cmp(&keys[nk - 1], &keys[i]) != 0)
			keys[nk++] = keys[i];
	if (nk != rs->nkeys ||
	    (nk > 0 && memcmp(keys, rs->keys, nk * sizeof *keys) != 0))
		n->dirty = 1;
	free(rs->keys);
	rs->keys = keys;
	rs->nkeys = nk;
}

void
notify_run(struct notify *n, const struct capsule_conf *c, enum seq_kind k,
    const json_t *outcome)
{
	struct rundigest d;
	struct nstate *st;
	const json_t *list, *it;
	const char *verdict;
	size_t i;
	double t;

	if (n == NULL || !c->notify || outcome == NULL)
		return;
	memset(&d, 0, sizeof d);
	d.kind = k;
	d.outcome = outcome;
	/* Keyed outside the lock: a crawl may have thousands. */
	list = json_object_get(outcome, k == SEQ_CRAWL ? "failures" : "checks");
	d.v = xcalloc(json_array_size(list) + 1, sizeof *d.v);
	json_array_foreach(list, i, it)
	{
		if (d.n == RKEYS_MAX)
			break;
		if (!json_is_object(it))
			continue;
		verdict = jstr(it, "verdict");
		if (k == SEQ_DIAGNOSE &&
		    (verdict == NULL || strcmp(verdict, "fail") != 0))
			continue;
		d.v[d.n].item = it;
		problem_key(k, it, &d.v[d.n].key);
		d.n++;
	}
	if ((t = seq_outcome_time(outcome)) <= 0)
		t = clock_wall();
	pthread_mutex_lock(&n->lock);
	if ((st = state_find(n->states, n->nstates, c->name, CHECK_PAGE)) !=
	    NULL)
		decide_run(n, st, c->url.text, &d, t);
	pthread_mutex_unlock(&n->lock);
	free(d.v);
}

void
notify_test(struct notify *n, const struct capsule_conf *c)
{
	struct ev ev = {NOTIFY_TEST, 0, 0, NULL, NULL};

	pthread_mutex_lock(&n->lock);
	ev.since = clock_wall();
	if (n->ncmds > 0)
		enqueue(
		    n, payload_new(n, &ev, c != NULL ? c->name : "", CHECK_PAGE,
		           c != NULL ? c->url.text : "", NULL, clock_wall()));
	pthread_mutex_unlock(&n->lock);
}

/* ---- running ----------------------------------------------------------- */

static void
set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl != -1)
		(void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/*
 * Start j's command: stdin a pipe holding the document, stdout
 * /dev/null, stderr a pipe, nothing else open; a process group of its
 * own, so that the deadline kills what it started too; signals
 * defaulted and unblocked (the daemon ignores SIGPIPE). Returns 0, or
 * an errno value.
 */
static int
run_start(struct run *r, struct job *j, double timeout)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	int in[2] = {-1, -1}, err[2] = {-1, -1};
	int rc;

	memset(r, 0, sizeof *r);
	r->job = j;
	r->in_fd = r->err_fd = -1;
	/*
	 * posix_spawn reports a failed exec too, but not where vfork is
	 * emulated (valgrind): there the child would just exit 127.
	 */
	if (access(j->argv[0], X_OK) == -1)
		return errno;
	if (pipe2(in, O_CLOEXEC) == -1 || pipe2(err, O_CLOEXEC) == -1) {
		rc = errno;
		goto fail;
	}
	if ((rc = posix_spawn_file_actions_init(&fa)) != 0)
		goto fail;
	if ((rc = posix_spawnattr_init(&at)) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		goto fail;
	}
	sigemptyset(&none);
	sigfillset(&all);
	if ((rc = posix_spawn_file_actions_adddup2(&fa, in[0], 0)) == 0 &&
	    (rc = posix_spawn_file_actions_addopen(
	         &fa, 1, "/dev/null", O_WRONLY, 0)) == 0 &&
	    (rc = posix_spawn_file_actions_adddup2(&fa, err[1], 2)) == 0 &&
#ifdef HAVE_POSIX_SPAWN_FILE_ACTIONS_ADDCLOSEFROM_NP
	    (rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3)) == 0 &&
#endif
	    (rc = posix_spawnattr_setflags(
	         &at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
	                  POSIX_SPAWN_SETSIGDEF)) == 0 &&
	    (rc = posix_spawnattr_setpgroup(&at, 0)) == 0 &&
	    (rc = posix_spawnattr_setsigmask(&at, &none)) == 0 &&
	    (rc = posix_spawnattr_setsigdefault(&at, &all)) == 0)
		rc = posix_spawn(
		    &r->pid, j->argv[0], &fa, &at, j->argv, j->p->envp);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0)
		goto fail;
	close(in[0]);
	close(err[1]);
	r->in_fd = in[1];
	r->err_fd = err[0];
	set_nonblock(r->in_fd);
	set_nonblock(r->err_fd);
	r->deadline = clock_mono() + timeout;
	return 0;
fail:
	if (in[0] != -1) {
		close(in[0]);
		close(in[1]);
	}
	if (err[0] != -1) {
		close(err[0]);
		close(err[1]);
	}
	r->pid = 0;
	return rc;
}

static void
run_close(int *fd)
{
	if (*fd != -1) {
		close(*fd);
		*fd = -1;
	}
}

/* Feed stdin and read stderr as far as they go without waiting. */
static void
run_io(struct run *r)
{
	const struct payload *p = r->job->p;
	char scratch[1024];
	ssize_t n;

	while (r->in_fd != -1 && r->in_off < p->json_len) {
		n = write(
		    r->in_fd, p->json + r->in_off, p->json_len - r->in_off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			break;
		if (n <= 0) {
			run_close(&r->in_fd); /* it did not read: fine */
			break;
		}
		r->in_off += (size_t)n;
	}
	if (r->in_fd != -1 && r->in_off == p->json_len)
		run_close(&r->in_fd);
	while (r->err_fd != -1) {
		if (r->err_len < sizeof r->err)
			n = read(r->err_fd, r->err + r->err_len,
			    sizeof r->err - r->err_len);
		else
			n = read(r->err_fd, scratch, sizeof scratch);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			break;
		if (n <= 0) {
			run_close(&r->err_fd);
			break;
		}
		if (r->err_len < sizeof r->err)
			r->err_len += (size_t)n;
	}
}

/* The first line of stderr, cleaned, for the log. */
static char *
run_errline(const struct run *r)
{
	char *raw, *line, *nl;

	raw = xstrndup(r->err, r->err_len);
	if ((nl = strpbrk(raw, "\r\n")) != NULL)
		*nl = '\0';
	line = clean(raw, NOTIFY_LINE_MAX);
	free(raw);
	return line;
}

/*
 * A run ended (status as from waitpid, or spawn_err when it never
 * started): log, count, and queue a retry or let the job go. Under the
 * lock.
 */
static void
run_done(struct notify *n, struct run *r, int status, int spawn_err)
{
	struct job *j = r->job;
	enum notify_outcome o;
	char *line = NULL, what[128], retry[64];
	int again;

	if (spawn_err != 0) {
		o = NOTIFY_ERROR;
		snprintf(what, sizeof what, "cannot be run: %s",
		    strerror(spawn_err));
	} else if (r->timed_out) {
		o = NOTIFY_TIMEOUT;
		snprintf(what, sizeof what,
		    "was still running after %gs: "
		    "killed",
		    n->timeout);
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		o = NOTIFY_OK;
	else if (WIFEXITED(status)) {
		o = NOTIFY_FAILED;
		snprintf(what, sizeof what, "exited %d", WEXITSTATUS(status));
	} else {
		o = NOTIFY_FAILED;
		snprintf(what, sizeof what, "was killed by signal %d",
		    WTERMSIG(status));
	}
	n->counts[j->p->event][o]++;
	j->tries++;
	if (o == NOTIFY_OK) {
		log_info("notify: %s: %s: ok", j->p->label, j->argv[0]);
		job_free(n, j);
		return;
	}
	if (spawn_err == 0 && r->err_len > 0)
		line = run_errline(r);
	again = j->tries <= NOTIFY_RETRIES && !n->stopping &&
	        j->p->event != NOTIFY_TEST;
	if (again)
		snprintf(retry, sizeof retry, "; trying again in %gs",
		    retry_delay[j->tries - 1]);
	else
		snprintf(retry, sizeof retry, "; giving up");
	log_warnx("notify: %s: %s %s%s%s%s", j->p->label, j->argv[0], what,
	    line != NULL && line[0] != '\0' ? ": " : "",
	    line != NULL ? line : "", retry);
	free(line);
	if (!again) {
		job_free(n, j);
		return;
	}
	j->not_before = clock_mono() + retry_delay[j->tries - 1];
	queue_push(n, j);
}

/* The first queued job due by now (under the lock), or NULL. */
static struct job *
job_take(struct notify *n, double now, double *next)
{
	struct job *j, *prev = NULL;

	for (j = n->queue; j != NULL; prev = j, j = j->next) {
		if (j->not_before > now) {
			if (*next == 0 || j->not_before < *next)
				*next = j->not_before;
			continue;
		}
		if (prev != NULL)
			prev->next = j->next;
		else
			n->queue = j->next;
		if (n->queue_tail == j)
			n->queue_tail = prev;
		n->nqueue--;
		j->next = NULL;
		return j;
	}
	return NULL;
}

static void *
runner_main(void *arg)
{
	struct notify *n = arg;
	struct run runs[NOTIFY_RUNNING_MAX];
	struct pollfd pfd[1 + 2 * NOTIFY_RUNNING_MAX];
	struct job *j, *start[NOTIFY_RUNNING_MAX];
	double now, next, stop_at = 0, timeout;
	size_t i, k, nrun = 0, nstart, np;
	char drain[64];
	pid_t w;
	int status, rc, wait_ms, stopping;

	for (;;) {
		now = clock_mono();
		next = 0;
		nstart = 0;
		pthread_mutex_lock(&n->lock);
		stopping = n->stopping;
		timeout = n->timeout;
		if (stopping && stop_at == 0)
			stop_at = now + NOTIFY_STOP_WAIT;
		while (!stopping && nrun + nstart < NOTIFY_RUNNING_MAX &&
		       (j = job_take(n, now, &next)) != NULL)
			start[nstart++] = j;
		n->running = (unsigned)(nrun + nstart);
		if (n->running == 0 && n->nqueue == 0)
			pthread_cond_broadcast(&n->idle);
		if (n->dropped > 0 && n->nqueue < NOTIFY_QUEUE_MAX / 2) {
			log_warnx("notify: %zu commands were dropped while "
			          "the queue was full",
			    n->dropped);
			n->dropped = 0;
		}
		pthread_mutex_unlock(&n->lock);

		state_save(n);
		for (i = 0; i < nstart; i++) {
			rc = run_start(&runs[nrun], start[i], timeout);
			if (rc == 0) {
				log_debug("notify: %s: started %s (pid %ld)",
				    start[i]->p->label, start[i]->argv[0],
				    (long)runs[nrun].pid);
				nrun++;
				continue;
			}
			pthread_mutex_lock(&n->lock);
			run_done(n, &runs[nrun], 0, rc);
			pthread_mutex_unlock(&n->lock);
		}
		if (nstart > 0)
			continue; /* count again what runs and waits */
		if (stopping && nrun == 0)
			break;

		/* Wait for the wake pipe, a child's pipes or a deadline. */
		np = 0;
		pfd[np].fd = n->wake[0];
		pfd[np++].events = POLLIN;
		for (i = 0; i < nrun; i++) {
			if (runs[i].in_fd != -1) {
				pfd[np].fd = runs[i].in_fd;
				pfd[np++].events = POLLOUT;
			}
			if (runs[i].err_fd != -1) {
				pfd[np].fd = runs[i].err_fd;
				pfd[np++].events = POLLIN;
			}
		}
		if (nrun > 0)
			wait_ms = NOTIFY_TICK_MS;
		else if (next > 0)
			wait_ms = (int)((next - now) * 1000) + 1;
		else
			wait_ms = -1;
		if (poll(pfd, np, wait_ms) == -1 && errno != EINTR)
			log_warn("notify: poll");
		while (read(n->wake[0], drain, sizeof drain) > 0)
			;

		/* Collect what ended first: a late look is no timeout. */
		for (i = 0; i < nrun; i++)
			run_io(&runs[i]);
		for (i = 0; i < nrun;) {
			w = waitpid(runs[i].pid, &status, WNOHANG);
			if (w == 0 || (w == -1 && errno == EINTR)) {
				i++;
				continue;
			}
			if (w == -1)
				status =
				    0; /* not ours any more: not knowable */
			run_io(&runs[i]);
			run_close(&runs[i].in_fd);
			run_close(&runs[i].err_fd);
			pthread_mutex_lock(&n->lock);
			run_done(n, &runs[i], status, 0);
			pthread_mutex_unlock(&n->lock);
			for (k = i; k + 1 < nrun; k++)
				runs[k] = runs[k + 1];
			nrun--;
		}
		now = clock_mono();
		for (i = 0; i < nrun; i++) {
			if (!runs[i].timed_out &&
			    (now >= runs[i].deadline ||
			        (stop_at > 0 && now >= stop_at))) {
				/* The group: what it started goes too. */
				(void)kill(-runs[i].pid, SIGKILL);
				runs[i].timed_out = 1;
			}
		}
	}

	/* Stopping: what did not run is dropped. */
	pthread_mutex_lock(&n->lock);
	k = n->nqueue;
	while ((j = job_take(n, INFINITY, &next)) != NULL) {
		n->counts[j->p->event][NOTIFY_DROPPED]++;
		job_free(n, j);
	}
	n->running = 0;
	pthread_cond_broadcast(&n->idle);
	pthread_mutex_unlock(&n->lock);
	if (k > 0)
		log_warnx("notify: stopping: %zu commands not run", k);
	return NULL;
}

/* ---- life cycle -------------------------------------------------------- */

struct notify *
notify_new(const char *state_path)
{
	struct notify *n;

	n = xcalloc(1, sizeof *n);
	pthread_mutex_init(&n->lock, NULL);
	pthread_cond_init(&n->idle, NULL);
	if (pipe2(n->wake, O_CLOEXEC | O_NONBLOCK) == -1)
		fatal("pipe");
	n->after = 2;
	n->cert_days = 14;
	n->timeout = 30;
	if (state_path != NULL) {
		n->state_path = xstrdup(state_path);
		state_load(n);
	}
	return n;
}

/* What every command's environment starts with. Main thread. */
static void
base_env(struct notify *n)
{
	static const char *keep[] = {"TZ", "LANG", "LC_ALL", "TMPDIR"};
	struct passwd *pw;
	const char *v;
	size_t i;

	for (i = 0; i < n->nbase_env; i++)
		free(n->base_env[i]);
	free(n->base_env);
	n->base_env =
	    xcalloc(4 + sizeof keep / sizeof keep[0], sizeof *n->base_env);
	n->nbase_env = 0;
	v = getenv("PATH");
	xasprintf(&n->base_env[n->nbase_env++], "PATH=%s",
	    v != NULL && v[0] != '\0' ? v
	                              : "/usr/local/sbin:/usr/local/bin:/usr/"
	                                "sbin:/usr/bin:/sbin:/bin");
	/* Whom the commands run as: after the daemon dropped privileges. */
	if ((pw = getpwuid(geteuid())) != NULL) {
		xasprintf(&n->base_env[n->nbase_env++], "HOME=%s", pw->pw_dir);
		xasprintf(&n->base_env[n->nbase_env++], "USER=%s", pw->pw_name);
		xasprintf(
		    &n->base_env[n->nbase_env++], "LOGNAME=%s", pw->pw_name);
	}
	for (i = 0; i < sizeof keep / sizeof keep[0]; i++)
		if ((v = getenv(keep[i])) != NULL)
			xasprintf(
			    &n->base_env[n->nbase_env++], "%s=%s", keep[i], v);
}

void
notify_apply(struct notify *n, const struct conf *conf)
{
	struct nstate **v, *st;
	size_t i, k, nv = 0;
	int rv, kind;
	enum check check;

	/* The checks to watch: kept by name, new ones start unknown. */
	v = xcalloc(2 * conf->ncapsules + 1, sizeof *v);
	pthread_mutex_lock(&n->lock);
	for (i = 0; i < conf->ncapsules; i++) {
		const struct capsule_conf *c = &conf->capsules[i];

		if (!c->notify || !conf_in_shard(conf, c))
			continue;
		for (check = CHECK_PAGE; check < CHECK__COUNT; check++) {
			if (check == CHECK_ERROR_PAGE && c->error_path == NULL)
				continue;
			st = state_find(n->states, n->nstates, c->name, check);
			if (st != NULL)
				st->kept = 1;
			else
				st = state_new(c->name, check);
			v[nv++] = st;
			/* A kind of run no longer asked starts afresh. */
			for (kind = 0; kind < SEQ__COUNT; kind++) {
				struct runstate *rs = &st->runs[kind];

				if ((rs->open || rs->nkeys > 0) &&
				    seq_ops(kind)->interval(c) <= 0) {
					runstate_clear(rs);
					n->dirty = 1;
				}
			}
		}
	}
	for (i = 0; i < n->nstates; i++) {
		st = n->states[i];
		if (st->kept)
			st->kept = 0;
		else {
			state_free(st);
			n->dirty = 1;
		}
	}
	free(n->states);
	qsort(v, nv, sizeof *v, state_sort_cmp);
	n->states = v;
	n->nstates = nv;

	for (i = 0; i < n->ncmds; i++)
		argv_free(n->cmds[i]);
	free(n->cmds);
	n->cmds = xcalloc(conf->nnotify + 1, sizeof *n->cmds);
	for (k = 0; k < conf->nnotify; k++)
		n->cmds[k] = argv_copy(conf->notify[k]);
	n->ncmds = conf->nnotify;
	n->after = conf->notify_after;
	n->repeat = conf->notify_repeat;
	n->cert_days = conf->notify_cert_days;
	n->timeout = conf->notify_timeout;
	base_env(n);
	pthread_mutex_unlock(&n->lock);

	if (!n->started) {
		if ((rv = pthread_create(&n->runner, NULL, runner_main, n)) !=
		    0) {
			errno = rv;
			fatal("pthread_create");
		}
		n->started = 1;
	}
	wake_runner(n); /* a save may be due */
}

void
notify_drain(struct notify *n)
{
	pthread_mutex_lock(&n->lock);
	while (n->started && (n->nqueue > 0 || n->running > 0))
		pthread_cond_wait(&n->idle, &n->lock);
	pthread_mutex_unlock(&n->lock);
}

void
notify_counts(
    struct notify *n, uint64_t out[NOTIFY_EVENT__COUNT][NOTIFY_OUTCOME__COUNT])
{
	pthread_mutex_lock(&n->lock);
	memcpy(out, n->counts, sizeof n->counts);
	pthread_mutex_unlock(&n->lock);
}

void
notify_free(struct notify *n)
{
	struct job *j;
	size_t i;

	if (n == NULL)
		return;
	if (n->started) {
		pthread_mutex_lock(&n->lock);
		n->stopping = 1;
		pthread_mutex_unlock(&n->lock);
		wake_runner(n);
		pthread_join(n->runner, NULL);
	}
	state_save(n);
	for (j = n->queue; j != NULL; j = n->queue) {
		n->queue = j->next;
		job_free(n, j);
	}
	for (i = 0; i < n->nstates; i++)
		state_free(n->states[i]);
	free(n->states);
	for (i = 0; i < n->ncmds; i++)
		argv_free(n->cmds[i]);
	free(n->cmds);
	for (i = 0; i < n->nbase_env; i++)
		free(n->base_env[i]);
	free(n->base_env);
	close(n->wake[0]);
	close(n->wake[1]);
	pthread_cond_destroy(&n->idle);
	pthread_mutex_destroy(&n->lock);
	free(n->state_path);
	free(n);
}
