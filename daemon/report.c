/*
 * A probe result in words. Everything that came from a server (META,
 * certificate names, messages) is escaped so a terminal or a text/plain
 * page shows it on one line and cannot be steered by it.
 */
#include "config.h"

#include <stdio.h>
#include <time.h>

#include "report.h"

/* Append s with control bytes and backslashes escaped. */
static void
add_safe(struct buf *b, const char *s)
{
	const unsigned char *p;

	for (p = (const unsigned char *)(s ? s : ""); *p != '\0'; p++) {
		if (*p == '\\')
			buf_adds(b, "\\\\");
		else if (*p < 0x20 || *p == 0x7f)
			buf_printf(b, "\\x%02x", *p);
		else
			buf_addc(b, (char)*p);
	}
}

void
report_safe(struct buf *b, const char *s)
{
	add_safe(b, s);
}

const char *
report_end_words(enum end e)
{
	switch (e) {
	case END_CLOSE_NOTIFY:
		return "complete: close_notify received";
	case END_PREMATURE:
		return "the response may be truncated: the connection closed "
		    "without close_notify";
	case END_RESET:
		return "the response may be truncated: the connection was "
		    "reset without close_notify";
	case END_TIMEOUT:
		return "the response may be truncated: it did not end before "
		    "the deadline";
	case END_LIMIT:
		return "gemwatch stopped reading: the body passed max-body";
	case END_ERROR:
		return "the response may be truncated: a TLS error ended it";
	default:
		return "no response body was reached";
	}
}

void
report_text(struct buf *b, const struct probe_result *r)
{
	const struct cert_facts	*c = &r->cert;
	char			 t1[32], t2[32];
	size_t			 i;

	add_safe(b, r->url);
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
		add_safe(b, c->subject);
		buf_adds(b, "\n               issuer ");
		add_safe(b, c->issuer);
		buf_printf(b, "%s\n", c->self_signed ? " (self-signed)" : "");
		buf_printf(b, "               valid %s to %s (%.0f days left)\n",
		    t1, t2, difftime(c->not_after, time(NULL)) / 86400);
		buf_printf(b, "               hostname %s\n",
		    c->hostname_match ? "matches" : "does not match");
		buf_printf(b, "               sha256 %s\n", c->sha256);
		if (c->tofu != TOFU_NONE)
			buf_printf(b, "               trust: %s%s\n",
			    tofu_name(c->tofu), c->key_kept == 1 ?
			    " (same key: a renewal)" : c->key_kept == 0 ?
			    " (a new key)" : "");
	}
	if (r->status >= 0) {
		buf_printf(b, "  status:      %d ", r->status);
		add_safe(b, r->meta);
		buf_addc(b, '\n');
	}
	if (r->body_bytes >= 0)
		buf_printf(b, "  body:        %lld bytes\n",
		    (long long)r->body_bytes);
	buf_printf(b, "  end:         %s\n", report_end_words(r->end));
	if (r->success)
		buf_adds(b, "  result:      OK\n");
	else {
		buf_printf(b, "  result:      FAILED (%s at %s): ",
		    reason_name(r->reason), stage_name(r->stage));
		add_safe(b, r->message);
		buf_addc(b, '\n');
	}
}
