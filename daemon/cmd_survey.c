/*
 * "gemwatch survey [-c N] [-t SECONDS] [-j | --csv] [FILE | -]": probe
 * every capsule of a list (hosts, host:port or gemini URLs, one a line,
 * # comments) at once on the engine, one connection at a time per host,
 * and print a line per capsule as its probe ends (words, CSV with a
 * header row, or JSON lines, each one result of SPEC §5), then the
 * census: in words, as a last JSON line {"census": ...} with -j, or in
 * words on stderr with --csv, so that stdout stays one CSV table. On a
 * terminal, stderr shows how far it has come. Exit 0 once the survey is
 * done (capsules that fail are what it measures), 1 when the list cannot
 * be read, 2 on a usage error.
 */
#include "config.h"

#include <sys/socket.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "batch.h"
#include "buf.h"
#include "clock.h"
#include "cmd.h"
#include "dns.h"
#include "engine.h"
#include "log.h"
#include "probe.h"
#include "report.h"
#include "survey.h"
#include "url.h"
#include "xmalloc.h"

#define SURVEY_MAX 1000000  /* capsules in one list */
#define PROGRESS_EVERY 0.25 /* seconds between progress lines */

enum format { FORMAT_WORDS, FORMAT_CSV, FORMAT_JSON };

struct list {
	struct url *urls;
	size_t n, cap;
	size_t bad_lines, duplicates;
};

static void
survey_usage(FILE *f)
{
	fprintf(f, "usage: gemwatch survey [-c N] [-t SECONDS] [-j | --csv] "
	           "[--resolver ADDR[:PORT]]... [FILE | -]\n");
}

static void
list_add(struct list *l, const struct url *u)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 256;
		l->urls = xreallocarray(l->urls, l->cap, sizeof *l->urls);
	}
	l->urls[l->n++] = *u;
}

static void
list_free(struct list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		url_free(&l->urls[i]);
	free(l->urls);
}

/*
 * Read the list, a line at a time and at most SURVEY_LINE_MAX bytes of
 * each; unusable lines are reported and skipped. -1 (after a message)
 * when it cannot be read.
 */
static int
list_read(FILE *f, const char *name, struct list *l)
{
	struct url u;
	const char *err;
	char line[SURVEY_LINE_MAX + 2];
	size_t len, lineno = 0;
	int c, rv;

	for (;;) {
		len = 0;
		while ((c = getc(f)) != EOF && c != '\n')
			if (len < sizeof line)
				line[len++] = (char)c;
		if (c == EOF && len == 0)
			break;
		lineno++;
		rv = survey_line(line, len, &u, &err);
		if (rv == -1) {
			fprintf(stderr, "gemwatch survey: %s:%zu: %s\n", name,
			    lineno, err);
			l->bad_lines++;
		} else if (rv == 1) {
			if (l->n == SURVEY_MAX) {
				url_free(&u);
				fprintf(stderr,
				    "gemwatch survey: %s: more "
				    "than %d capsules\n",
				    name, SURVEY_MAX);
				return -1;
			}
			list_add(l, &u);
		}
		if (c == EOF)
			break;
	}
	if (ferror(f)) {
		fprintf(stderr, "gemwatch survey: cannot read %s: %s\n", name,
		    strerror(errno));
		return -1;
	}
	return 0;
}

static int
url_ptr_cmp(const void *a, const void *b)
{
	const struct url *x = *(struct url *const *)a;
	const struct url *y = *(struct url *const *)b;
	int c;

	if ((c = strcmp(x->text, y->text)) != 0)
		return c;
	return x < y ? -1 : x > y;
}

/* Keep the first of each URL, in the order of the list. */
static void
list_dedup(struct list *l)
{
	struct url **sorted;
	unsigned char *dup;
	size_t i, k;

	if (l->n < 2)
		return;
	sorted = xreallocarray(NULL, l->n, sizeof *sorted);
	dup = xcalloc(l->n, 1);
	for (i = 0; i < l->n; i++)
		sorted[i] = &l->urls[i];
	qsort(sorted, l->n, sizeof *sorted, url_ptr_cmp);
	for (i = 1; i < l->n; i++)
		if (strcmp(sorted[i]->text, sorted[i - 1]->text) == 0)
			dup[sorted[i] - l->urls] = 1;
	free(sorted);
	for (i = 0, k = 0; i < l->n; i++) {
		if (dup[i]) {
			url_free(&l->urls[i]);
			l->duplicates++;
		} else
			l->urls[k++] = l->urls[i];
	}
	l->n = k;
	free(dup);
}

/* A CSV field: as it is, or quoted when it holds a comma or a quote. */
static void
csv_field(struct buf *b, const char *s, int last)
{
	struct buf t;
	const char *p;

	buf_init(&t);
	report_safe(&t, s);
	if (t.len > 0 && strpbrk(t.data, ",\"") != NULL) {
		buf_addc(b, '"');
		for (p = t.data; *p != '\0'; p++) {
			if (*p == '"')
				buf_addc(b, '"');
			buf_addc(b, *p);
		}
		buf_addc(b, '"');
	} else if (t.len > 0)
		buf_add(b, t.data, t.len);
	buf_free(&t);
	buf_addc(b, last ? '\n' : ',');
}

static const char csv_header[] =
    "url,success,reason,stage,status,meta,end,"
    "tls_version,tls_cipher,address,ip_protocol,self_signed,expired,"
    "hostname_match,not_after,total,message\n";

static void
line_csv(struct buf *b, const struct probe_result *r, double now)
{
	const struct cert_facts *c = &r->cert;
	char num[32], t[32];

	csv_field(b, r->url, 0);
	csv_field(b, r->success ? "true" : "false", 0);
	csv_field(b, r->success ? NULL : reason_name(r->reason), 0);
	csv_field(b, r->success ? NULL : stage_name(r->stage), 0);
	snprintf(num, sizeof num, "%d", r->status);
	csv_field(b, r->status >= 0 ? num : NULL, 0);
	csv_field(b, r->meta, 0);
	csv_field(b, end_name(r->end), 0);
	csv_field(b, r->tls_version, 0);
	csv_field(b, r->tls_cipher, 0);
	csv_field(b, r->ip_protocol != 0 ? r->address : NULL, 0);
	snprintf(num, sizeof num, "%d", r->ip_protocol);
	csv_field(b, r->ip_protocol != 0 ? num : NULL, 0);
	csv_field(b, !c->present ? NULL : c->self_signed ? "true" : "false", 0);
	csv_field(b,
	    !c->present                  ? NULL
	    : (double)c->not_after < now ? "true"
	                                 : "false",
	    0);
	csv_field(b,
	    !c->present         ? NULL
	    : c->hostname_match ? "true"
	                        : "false",
	    0);
	if (c->present)
		format_rfc3339(c->not_after, t);
	csv_field(b, c->present ? t : NULL, 0);
	snprintf(num, sizeof num, "%.6f", r->total);
	csv_field(b, num, 0);
	csv_field(b, r->message, 1);
}

/* URL RESULT STATUS END TLS SECONDS [MESSAGE]; "-" where nothing is known. */
static void
line_words(struct buf *b, const struct probe_result *r)
{
	buf_printf(
	    b, "%s %s ", r->url, r->success ? "ok" : reason_name(r->reason));
	if (r->status >= 0)
		buf_printf(b, "%d ", r->status);
	else
		buf_adds(b, "- ");
	buf_printf(b, "%s %s %.3f", end_name(r->end) ? end_name(r->end) : "-",
	    r->tls_version ? r->tls_version : "-", r->total);
	if (!r->success && r->message != NULL) {
		buf_addc(b, ' ');
		report_safe(b, r->message);
	}
	buf_addc(b, '\n');
}

static void
line_json(struct buf *b, const struct probe_result *r)
{
	json_t *j;
	char *text;

	if ((j = api_result(r, r->url)) == NULL ||
	    (text = json_dumps(j, API_DUMP_FLAGS | JSON_ENSURE_ASCII)) == NULL)
		fatalx("out of memory");
	buf_adds(b, text);
	buf_addc(b, '\n');
	free(text);
	json_decref(j);
}

static void
progress(size_t done, size_t total, double elapsed)
{
	double rate = elapsed > 0 ? (double)done / elapsed : 0;
	long left;

	fprintf(stderr, "\r\033[K%zu/%zu", done, total);
	if (done > 0 && rate > 0) {
		left = (long)((double)(total - done) / rate + 0.5);
		fprintf(stderr, ", %.1f/s, about %ldm%02lds left", rate,
		    left / 60, left % 60);
	}
	fflush(stderr);
}

/* What the result and tick callbacks share. */
struct survey {
	struct batch *b;
	struct census census;
	enum format format;
	struct buf out;
	size_t total;
	double start;
	int tty;
	int progress_shown;
};

/* A probe ended: its line, and count it in. */
static void
survey_result(void *arg, size_t id, struct probe_result *res)
{
	struct survey *s = arg;

	census_add(&s->census, res);
	s->out.len = 0;
	switch (s->format) {
	case FORMAT_WORDS:
		line_words(&s->out, res);
		break;
	case FORMAT_CSV:
		line_csv(&s->out, res, s->census.now);
		break;
	case FORMAT_JSON:
		line_json(&s->out, res);
		break;
	}
	if (s->progress_shown)
		fputs("\r\033[K", stderr);
	s->progress_shown = 0;
	fwrite(s->out.data, 1, s->out.len, stdout);
	fflush(stdout);
}

static void
survey_tick(void *arg)
{
	struct survey *s = arg;

	progress(batch_ended(s->b), s->total, clock_mono() - s->start);
	s->progress_shown = 1;
}

int
cmd_survey(int argc, char *argv[])
{
	static const struct option longopts[] = {
	    {"csv", no_argument, NULL, 'C'},
	    {"resolver", required_argument, NULL, 'R'},
	    {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	struct sockaddr_storage resolvers[CMD_RESOLVERS_MAX];
	struct list list;
	struct survey sv;
	struct probe_req *reqs = NULL;
	struct engine *e = NULL;
	enum format format = FORMAT_WORDS;
	const char *path = "-";
	FILE *f;
	json_t *j;
	char *text;
	double timeout = 10;
	size_t i, nresolvers = 0;
	unsigned parallel = CMD_SURVEY_PARALLEL;
	int ch, rv;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:hjt:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			if (cmd_count("survey", 'c', optarg, &parallel) == -1)
				return 2;
			break;
		case 'j':
			format = FORMAT_JSON;
			break;
		case 'C':
			format = FORMAT_CSV;
			break;
		case 't':
			if (cmd_seconds("survey", 't', optarg, &timeout) == -1)
				return 2;
			break;
		case 'R':
			if (cmd_resolver(
			        "survey", optarg, resolvers, &nresolvers) == -1)
				return 2;
			break;
		case 'h':
			survey_usage(stdout);
			return 0;
		default:
			survey_usage(stderr);
			return 2;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc > 1) {
		survey_usage(stderr);
		return 2;
	}
	if (argc == 1)
		path = argv[0];

	memset(&list, 0, sizeof list);
	if (strcmp(path, "-") == 0)
		f = stdin;
	else if ((f = fopen(path, "r")) == NULL) {
		fprintf(stderr, "gemwatch survey: cannot open %s: %s\n", path,
		    strerror(errno));
		return 1;
	}
	rv = list_read(f, f == stdin ? "(stdin)" : path, &list);
	if (f != stdin)
		fclose(f);
	if (rv == -1) {
		list_free(&list);
		return 1;
	}
	list_dedup(&list);

	if (probe_global_init() == -1) {
		list_free(&list);
		return 1;
	}
	dns_servers_set(resolvers, nresolvers);
	parallel = cmd_parallel("survey", parallel);
	if ((e = engine_new(parallel, 0)) == NULL) {
		probe_global_free();
		list_free(&list);
		return 1;
	}
	memset(&sv, 0, sizeof sv);
	sv.format = format;
	sv.total = list.n;
	sv.start = clock_mono();
	sv.tty = isatty(STDERR_FILENO);
	census_init(&sv.census, clock_wall());
	sv.census.bad_lines = list.bad_lines;
	sv.census.duplicates = list.duplicates;
	buf_init(&sv.out);
	reqs = xcalloc(list.n ? list.n : 1, sizeof *reqs);
	sv.b = batch_new(e, parallel);
	for (i = 0; i < list.n; i++) {
		probe_req_init(&reqs[i], &list.urls[i]);
		reqs[i].timeout = timeout;
		batch_add(sv.b, &reqs[i], list.urls[i].host, i);
	}
	if (format == FORMAT_CSV) {
		fputs(csv_header, stdout);
		fflush(stdout);
	}
	batch_run(sv.b, survey_result, sv.tty ? survey_tick : NULL,
	    PROGRESS_EVERY, &sv);
	if (sv.progress_shown)
		fputs("\r\033[K", stderr);
	sv.census.seconds = clock_mono() - sv.start;
	sv.out.len = 0;
	if (format == FORMAT_JSON) {
		if ((j = census_json(&sv.census)) == NULL ||
		    (text = json_dumps(
		         j, API_DUMP_FLAGS | JSON_ENSURE_ASCII)) == NULL)
			fatalx("out of memory");
		printf("%s\n", text);
		free(text);
		json_decref(j);
	} else {
		census_text(&sv.out, &sv.census);
		fwrite(sv.out.data, 1, sv.out.len,
		    format == FORMAT_CSV ? stderr : stdout);
	}
	rv = fflush(stdout) != 0 ? 1 : 0;
	buf_free(&sv.out);
	engine_free(e);
	batch_free(sv.b);
	free(reqs);
	census_free(&sv.census);
	list_free(&list);
	probe_global_free();
	return rv;
}
