/*
 * A probe result in words. Everything that came from a server (META,
 * certificate names, messages) is escaped so a terminal or a text/plain
 * page shows it on one line and cannot be steered by it: C0 and C1
 * controls, DEL and ill-formed UTF-8 as \xNN (utf8_escape_text).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "report.h"
#include "utf8.h"

/* Append s with control bytes and backslashes escaped. */
void
report_safe(struct buf *b, const char *s)
{
	if (s != NULL)
		utf8_escape_text(b, s, strlen(s));
}

void
report_text(struct buf *b, const struct probe_result *r)
{
	const struct cert_facts *c = &r->cert;
	char t1[32], t2[32], words[160];
	size_t i;

	report_safe(b, r->url);
	buf_addc(b, '\n');
	if (r->ip_protocol != 0)
		buf_printf(b, "  address:     %s port %d (IPv%d)\n", r->address,
		    r->port, r->ip_protocol);
	buf_adds(b, "  timings:    ");
	for (i = 0; i < PHASE__COUNT; i++)
		if (r->dur[i] >= 0)
			buf_printf(b, " %s %.3fs", phase_name(i), r->dur[i]);
	if (r->total >= 0)
		buf_printf(b, " total %.3fs", r->total);
	buf_addc(b, '\n');
	if (r->tls_version != NULL)
		buf_printf(b, "  tls:         %s %s\n", r->tls_version,
		    r->tls_cipher ? r->tls_cipher : "");
	if (c->present) {
		format_rfc3339(c->not_before, t1);
		format_rfc3339(c->not_after, t2);
		buf_adds(b, "  certificate: subject ");
		report_safe(b, c->subject);
		buf_adds(b, "\n               issuer ");
		report_safe(b, c->issuer);
		buf_printf(b, "%s\n", c->self_signed ? " (self-signed)" : "");
		buf_printf(b,
		    "               valid %s to %s (%.0f days left)\n", t1, t2,
		    difftime(c->not_after, time(NULL)) / 86400);
		buf_printf(b, "               hostname %s\n",
		    c->hostname_match ? "matches" : "does not match");
		buf_printf(b, "               sha256 %s\n", c->sha256);
		if (c->tofu != TOFU_NONE)
			buf_printf(b, "               trust: %s%s\n",
			    tofu_name(c->tofu),
			    c->key_kept == 1   ? " (same key: a renewal)"
			    : c->key_kept == 0 ? " (a new key)"
			                       : "");
	}
	if (r->status >= 0) {
		buf_printf(b, "  status:      %d ", r->status);
		report_safe(b, r->meta);
		buf_addc(b, '\n');
	}
	if (r->body_bytes >= 0) {
		buf_printf(
		    b, "  body:        %lld bytes", (long long)r->body_bytes);
		if (r->max_gap >= 0)
			buf_printf(b,
			    ", longest gap %.3fs, idle before the end %.3fs",
			    r->max_gap, r->idle_before_end);
		buf_addc(b, '\n');
	}
	buf_printf(b, "  end:         %s\n", end_words(r->end));
	if (result_stalled(r)) {
		stall_words(r, words, sizeof words);
		buf_printf(b, "               but %s\n", words);
	}
	if (r->success)
		buf_adds(b, "  result:      OK\n");
	else {
		buf_printf(b, "  result:      FAILED (%s at %s): ",
		    reason_name(r->reason), stage_name(r->stage));
		report_safe(b, r->message);
		buf_addc(b, '\n');
	}
}

/*
 * One line per stage: ok (with its time and what it found), FAILED
 * (with the reason) or not reached. Only gemwatch's own strings and
 * numbers are printed (an address is numeric); report_text escapes what
 * the server sent.
 */
void
report_stages(struct buf *b, const struct probe_result *r)
{
	static const int phase_of[STAGE__COUNT] = {
	    [STAGE_NONE] = -1,
	    [STAGE_RESOLVE] = PHASE_RESOLVE,
	    [STAGE_CONNECT] = PHASE_CONNECT,
	    [STAGE_TLS] = PHASE_TLS,
	    [STAGE_REQUEST] = -1,
	    [STAGE_HEADER] = PHASE_HEADER,
	    [STAGE_BODY] = PHASE_BODY,
	};
	enum stage s;
	char what[96];
	double d;
	int failed, reached;

	for (s = STAGE_RESOLVE; s < STAGE__COUNT; s++) {
		/* The request has no timer: sent if a header was awaited. */
		d = phase_of[s] >= 0 ? r->dur[phase_of[s]] : -1;
		reached =
		    d >= 0 || (s == STAGE_REQUEST && r->dur[PHASE_HEADER] >= 0);
		failed = !r->success && r->stage == s;
		what[0] = '\0';
		if (failed)
			snprintf(what, sizeof what, "reason %s",
			    reason_name(r->reason));
		else if (!reached)
			;
		else if (s == STAGE_RESOLVE && r->ip_protocol != 0)
			snprintf(what, sizeof what, "%s (IPv%d)", r->address,
			    r->ip_protocol);
		else if (s == STAGE_CONNECT && r->ip_protocol != 0)
			snprintf(what, sizeof what, "port %d", r->port);
		else if (s == STAGE_TLS && r->tls_version != NULL)
			snprintf(what, sizeof what, "%s", r->tls_version);
		else if (s == STAGE_HEADER && r->status >= 0)
			snprintf(what, sizeof what, "status %d", r->status);
		else if (s == STAGE_BODY && r->body_bytes >= 0)
			snprintf(what, sizeof what, "%lld bytes, end %s",
			    (long long)r->body_bytes,
			    end_name(r->end) ? end_name(r->end) : "none");
		buf_printf(b, "  %-8s  %s", stage_name(s),
		    failed    ? "FAILED"
		    : reached ? "ok"
		              : "not reached");
		/* Columns: "FAILED" and "ok" are padded to the same width. */
		if (d >= 0)
			buf_printf(b, "%*s%10.6fs", failed ? 1 : 5, "", d);
		else if (what[0] != '\0')
			buf_printf(b, "%*s", failed ? 12 : 16, "");
		if (what[0] != '\0')
			buf_printf(b, "  %s", what);
		buf_addc(b, '\n');
	}
}
