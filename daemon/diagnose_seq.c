/*
 * diagnose=D in the daemon: the checks of diagnose.c as a kind of run of
 * requests (seq.h), one connection at a time with a pause between two
 * checks, on the runner's engine of runs (so never in the way of
 * the page checks). The outcome is the report's JSON (diag_report_json)
 * with a "timestamp"; the store keeps it and state-dir saves it, so the
 * outputs read it back through diag_report_from_json, which trusts
 * nothing of a file it did not just write.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "clock.h"
#include "conf.h"
#include "diagnose.h"
#include "metrics.h"
#include "page.h"
#include "probe.h"
#include "store.h"
#include "xmalloc.h"

/* Seconds between two checks of a run: one connection at a time, gently. */
#define DIAG_PAUSE 1.0

struct dseq {
	struct diag_target t;
	struct diag_run *run;
	int started;
};

static double
dseq_interval(const struct capsule_conf *cap)
{
	return cap->diagnose;
}

static void *
dseq_begin(const struct conf *conf, const struct capsule_conf *cap)
{
	struct dseq *d;

	(void)conf;
	d = xcalloc(1, sizeof *d);
	d->t.url = &cap->url;
	d->t.family = cap->family;
	d->t.timeout = cap->timeout;
	d->t.sni = cap->sni;
	d->t.cancel_fd = -1;
	d->run = diag_run_new(&d->t, NULL);
	return d;
}

static const struct probe_req *
dseq_next(void *arg, struct probe_result *prev, double *pause)
{
	struct dseq *d = arg;

	*pause = d->started ? DIAG_PAUSE : 0;
	d->started = 1;
	return diag_run_next(d->run, prev);
}

static json_t *
dseq_end(void *arg)
{
	struct dseq *d = arg;
	struct diag_report rep;
	json_t *o;

	diag_report_init(&rep);
	diag_run_end(d->run, &rep);
	free(d);
	o = diag_report_json(&rep);
	if (o != NULL &&
	    json_object_set_new(o, "timestamp", json_real(rep.time)) != 0) {
		json_decref(o);
		o = NULL;
	}
	diag_report_free(&rep);
	return o;
}

static void
dseq_abandon(void *arg)
{
	struct dseq *d = arg;

	diag_run_free(d->run);
	free(d);
}

static json_t *
dseq_api(const json_t *outcome, int full)
{
	(void)full;
	return json_deep_copy(outcome);
}

static void
dseq_page_line(struct buf *b, const json_t *outcome)
{
	struct diag_report rep;
	struct buf s;

	diag_report_init(&rep);
	buf_init(&s);
	if (diag_report_from_json((json_t *)outcome, &rep) == 0)
		diag_summary(&rep, &s);
	else
		buf_adds(&s, "unreadable report");
	html_escape(b, s.data);
	buf_free(&s);
	diag_report_free(&rep);
}

static void
cell(struct buf *b, const char *s)
{
	buf_adds(b, "<td>");
	html_escape(b, s != NULL ? s : "");
	buf_adds(b, "</td>");
}

static void
dseq_page(struct buf *b, const json_t *outcome)
{
	struct diag_report rep;
	const struct diag_outcome *o;
	struct buf t;
	char when[32];
	size_t i;
	int c;

	diag_report_init(&rep);
	if (diag_report_from_json((json_t *)outcome, &rep) == -1) {
		buf_adds(b, "<p>The kept report cannot be read.</p>\n");
		return;
	}
	buf_init(&t);
	diag_summary(&rep, &t);
	buf_adds(b, "<p>");
	html_escape(b, t.data);
	buf_adds(b, " (");
	html_escape(b, rep.target != NULL ? rep.target : "");
	if (rep.time > 0) {
		format_rfc3339((time_t)rep.time, when);
		buf_adds(b, ", ");
		html_escape(b, when);
	}
	buf_adds(b, ")</p>\n<table>\n<thead><tr><th scope=\"col\">Check</th>"
	            "<th scope=\"col\">Verdict</th>"
	            "<th scope=\"col\">Why</th>"
	            "<th scope=\"col\">Request</th>"
	            "<th scope=\"col\">Answer</th>"
	            "<th scope=\"col\">Rule</th></tr></thead>\n<tbody>\n");
	for (i = 0; i < rep.n; i++) {
		o = &rep.o[i];
		c = diag_check_find(o->name);
		buf_adds(b, "<tr><td title=\"");
		html_escape(b, diag_check_purpose((size_t)c));
		buf_adds(b, "\">");
		html_escape(b, o->name);
		buf_adds(b, "</td>");
		cell(b, diag_verdict_name(o->verdict));
		cell(b, o->why);
		cell(b, o->request);
		buf_free(&t);
		buf_init(&t);
		if (o->status >= 0) {
			buf_printf(&t, "%d", o->status);
			if (o->meta != NULL && o->meta[0] != '\0')
				buf_printf(&t, " %s", o->meta);
			if (end_name(o->end) != NULL)
				buf_printf(&t, " (%s)", end_name(o->end));
		}
		cell(b, t.data);
		cell(b, diag_check_rule((size_t)c));
		buf_adds(b, "</tr>\n");
	}
	buf_adds(b, "</tbody>\n</table>\n");
	buf_free(&t);
	diag_report_free(&rep);
}

static void
dseq_metrics(struct buf *b, const struct store *s)
{
	const struct store_capsule *cap;
	struct diag_report rep;
	size_t i, k, n = store_count(s);
	int any = 0, pass;
	unsigned v;

	for (i = 0; i < n && !any; i++)
		any = store_at(s, i)->seq[SEQ_DIAGNOSE] != NULL;
	if (!any)
		return;
	diag_report_init(&rep);
	buf_adds(b, "# HELP gemini_diagnose_check_success 1 when the check "
	            "passed or only warned in the latest diagnose run, 0 when "
	            "it failed (absent when skipped).\n"
	            "# TYPE gemini_diagnose_check_success gauge\n");
	for (i = 0; i < n; i++) {
		cap = store_at(s, i);
		if (cap->seq[SEQ_DIAGNOSE] == NULL ||
		    diag_report_from_json(cap->seq[SEQ_DIAGNOSE], &rep) == -1)
			continue;
		for (k = 0; k < rep.n; k++) {
			if (rep.o[k].verdict == DIAG_SKIP)
				continue;
			pass = rep.o[k].verdict != DIAG_FAIL;
			buf_adds(b, "gemini_diagnose_check_success{capsule=\"");
			metrics_escape_label(b, cap->name);
			buf_printf(
			    b, "\",check=\"%s\"} %d\n", rep.o[k].name, pass);
		}
	}
	buf_adds(b, "# HELP gemini_diagnose_checks Checks of the latest "
	            "diagnose run by verdict.\n"
	            "# TYPE gemini_diagnose_checks gauge\n");
	for (i = 0; i < n; i++) {
		cap = store_at(s, i);
		if (cap->seq[SEQ_DIAGNOSE] == NULL ||
		    diag_report_from_json(cap->seq[SEQ_DIAGNOSE], &rep) == -1)
			continue;
		for (v = 0; v < DIAG__COUNT; v++) {
			buf_adds(b, "gemini_diagnose_checks{capsule=\"");
			metrics_escape_label(b, cap->name);
			buf_printf(b, "\",verdict=\"%s\"} %u\n",
			    diag_verdict_name(v), rep.count[v]);
		}
	}
	buf_adds(b, "# HELP gemini_diagnose_timestamp_seconds When the latest "
	            "diagnose run ended.\n"
	            "# TYPE gemini_diagnose_timestamp_seconds gauge\n");
	for (i = 0; i < n; i++) {
		cap = store_at(s, i);
		if (cap->seq[SEQ_DIAGNOSE] == NULL ||
		    seq_outcome_time(cap->seq[SEQ_DIAGNOSE]) <= 0)
			continue;
		buf_adds(b, "gemini_diagnose_timestamp_seconds{capsule=\"");
		metrics_escape_label(b, cap->name);
		buf_printf(
		    b, "\"} %.17g\n", seq_outcome_time(cap->seq[SEQ_DIAGNOSE]));
	}
	diag_report_free(&rep);
}

const struct seq_ops diagnose_ops = {
    .kind = SEQ_DIAGNOSE,
    .interval = dseq_interval,
    .begin = dseq_begin,
    .next = dseq_next,
    .end = dseq_end,
    .abandon = dseq_abandon,
    .api = dseq_api,
    .page_line = dseq_page_line,
    .page = dseq_page,
    .metrics = dseq_metrics,
};
