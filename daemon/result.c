/*
 * struct probe_result helpers and the names of its enumerations, which
 * are part of the contract: JSON fields and metric labels use them.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "result.h"
#include "xmalloc.h"

static const char *const check_names[CHECK__COUNT] = {"page", "error_page"};
static const char *const seq_names[SEQ__COUNT] = {"crawl", "diagnose"};
/* How a response ended: its name, a few words for a table cell (the
 * status page) and a sentence (gemwatch probe, /probe?debug). */
static const struct {
	const char *name, *brief, *words;
} ends[END__COUNT] = {
    {NULL, NULL, "no response body was reached"},
    {"close_notify", "complete (close_notify)",
        "complete: close_notify received"},
    {"premature", "truncated? closed without close_notify",
        "the response may be truncated: the connection closed without "
        "close_notify"},
    {"reset", "truncated? connection reset",
        "the response may be truncated: the connection was reset without "
        "close_notify"},
    {"timeout", "timed out",
        "the response may be truncated: it did not end before the "
        "deadline"},
    {"limit", "stopped at max-body",
        "gemwatch stopped reading: the body passed max-body"},
    {"error", "TLS error",
        "the response may be truncated: a TLS error ended it"},
};
static const char *const reason_names[REASON__COUNT] = {NULL, "resolve",
    "connect", "tls", "timeout", "header", "status", "close_notify", "cert",
    "body"};
static const char *const stage_names[STAGE__COUNT] = {
    NULL, "resolve", "connect", "tls", "request", "header", "body"};
static const char *const phase_names[PHASE__COUNT] = {
    "resolve", "connect", "tls", "header", "body"};
static const char *const tofu_names[TOFU__COUNT] = {
    NULL, "new", "match", "changed", "pinned", "mismatch"};

void
result_init(struct probe_result *r)
{
	size_t i;

	memset(r, 0, sizeof *r);
	for (i = 0; i < PHASE__COUNT; i++)
		r->dur[i] = -1;
	r->total = -1;
	r->max_gap = -1;
	r->idle_before_end = -1;
	r->status = -1;
	r->body_bytes = -1;
	r->cert.key_kept = -1;
}

void
result_clear(struct probe_result *r)
{
	free(r->url);
	free(r->message);
	free(r->meta);
	free(r->cert.subject);
	free(r->cert.issuer);
	result_init(r);
}

void
result_fail(struct probe_result *r, enum reason reason, enum stage stage,
    const char *fmt, ...)
{
	va_list ap;

	if (r->reason != REASON_NONE)
		return;
	r->success = 0;
	r->reason = reason;
	r->stage = stage;
	free(r->message);
	va_start(ap, fmt);
	(void)xvasprintf(&r->message, fmt, ap);
	va_end(ap);
}

enum reason
end_reason(enum end e)
{
	switch (e) {
	case END_PREMATURE:
	case END_RESET:
		return REASON_CLOSE_NOTIFY;
	case END_TIMEOUT:
		return REASON_TIMEOUT;
	case END_ERROR:
		return REASON_TLS;
	case END_LIMIT:
		return REASON_BODY;
	default:
		return REASON_NONE;
	}
}

#define NAME_OF(table, v, n) ((unsigned)(v) < (n) ? (table)[v] : NULL)

const char *
seq_name(enum seq_kind k)
{
	return k < SEQ__COUNT ? seq_names[k] : "unknown";
}

const char *
check_name(enum check c)
{
	return NAME_OF(check_names, c, CHECK__COUNT);
}

const char *
end_name(enum end e)
{
	return (unsigned)e < END__COUNT ? ends[e].name : NULL;
}

const char *
end_brief(enum end e)
{
	return (unsigned)e < END__COUNT ? ends[e].brief : NULL;
}

const char *
end_words(enum end e)
{
	return ends[(unsigned)e < END__COUNT ? e : END_NONE].words;
}

const char *
reason_name(enum reason r)
{
	return NAME_OF(reason_names, r, REASON__COUNT);
}

const char *
stage_name(enum stage s)
{
	return NAME_OF(stage_names, s, STAGE__COUNT);
}

const char *
phase_name(enum phase p)
{
	return NAME_OF(phase_names, p, PHASE__COUNT);
}

const char *
tofu_name(enum tofu t)
{
	return NAME_OF(tofu_names, t, TOFU__COUNT);
}

/* What a stall came before, for the ends a proxy's cut can look like. */
static const char *
stall_end(enum end e)
{
	switch (e) {
	case END_CLOSE_NOTIFY:
		return "close_notify";
	case END_PREMATURE:
		return "the connection closed without close_notify";
	case END_RESET:
		return "the connection was reset";
	default:
		return NULL;
	}
}

int
result_stalled(const struct probe_result *r)
{
	return stall_end(r->end) != NULL && r->idle_before_end > STALL_LONG &&
	       r->idle_before_end > r->total / 2;
}

void
stall_words(const struct probe_result *r, char *out, size_t len)
{
	const char *end = stall_end(r->end);

	if (end == NULL || !(r->idle_before_end >= 0)) {
		snprintf(out, len, "%s", "");
		return;
	}
	snprintf(out, len,
	    "the body stalled %.1f s before %s: a proxy's idle timeout may "
	    "have cut it",
	    r->idle_before_end, end);
}

void
format_rfc3339(time_t t, char out[32])
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		strcpy(out, "1970-01-01T00:00:00Z");
}
