/*
 * "gemwatch probe": probe each URL once and report, in words for a person
 * or as one JSON document (-j). Exit 0 when every probe succeeded, 1 when
 * any failed, 2 on a usage error.
 */
#include "config.h"

#include <sys/socket.h>
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "cmd.h"
#include "log.h"
#include "probe.h"
#include "result.h"
#include "url.h"
#include "xmalloc.h"

static void
probe_usage(FILE *f)
{
	fprintf(f, "usage: gemwatch probe [-j] [-4|-6] [-t SECONDS] "
	    "[--sni NAME] URL...\n");
}

/* Print s for a terminal: control bytes and backslashes escaped. */
static void
print_safe(FILE *f, const char *s)
{
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '\\')
			fputs("\\\\", f);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\x%02x", *p);
		else
			fputc(*p, f);
	}
}

static const char *
end_words(enum end e)
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

static void
print_duration(FILE *f, const char *name, double d)
{
	if (d >= 0)
		fprintf(f, " %s %.3fs", name, d);
}

static void
report(FILE *f, const struct probe_result *r)
{
	const struct cert_facts	*c = &r->cert;
	char			 t1[32], t2[32];
	size_t			 i;

	fprintf(f, "%s\n", r->url);
	if (r->ip_protocol != 0)
		fprintf(f, "  address:     %s port %d (IPv%d)\n", r->address,
		    r->port, r->ip_protocol);
	fprintf(f, "  timings:    ");
	for (i = 0; i < PHASE__COUNT; i++)
		print_duration(f, phase_name(i), r->dur[i]);
	print_duration(f, "total", r->total);
	fprintf(f, "\n");
	if (r->tls_version != NULL)
		fprintf(f, "  tls:         %s %s\n", r->tls_version,
		    r->tls_cipher ? r->tls_cipher : "");
	if (c->present) {
		format_rfc3339(c->not_before, t1);
		format_rfc3339(c->not_after, t2);
		fprintf(f, "  certificate: subject ");
		print_safe(f, c->subject);
		fprintf(f, "\n               issuer ");
		print_safe(f, c->issuer);
		fprintf(f, "%s\n", c->self_signed ? " (self-signed)" : "");
		fprintf(f, "               valid %s to %s (%.0f days left)\n",
		    t1, t2, difftime(c->not_after, time(NULL)) / 86400);
		fprintf(f, "               hostname %s\n",
		    c->hostname_match ? "matches" : "does not match");
		fprintf(f, "               sha256 %s\n", c->sha256);
		if (c->tofu != TOFU_NONE)
			fprintf(f, "               trust: %s\n",
			    tofu_name(c->tofu));
	}
	if (r->status >= 0) {
		fprintf(f, "  status:      %d ", r->status);
		print_safe(f, r->meta ? r->meta : "");
		fprintf(f, "\n");
	}
	if (r->body_bytes >= 0)
		fprintf(f, "  body:        %lld bytes\n",
		    (long long)r->body_bytes);
	fprintf(f, "  end:         %s\n", end_words(r->end));
	if (r->success)
		fprintf(f, "  result:      OK\n");
	else {
		fprintf(f, "  result:      FAILED (%s at %s): ",
		    reason_name(r->reason), stage_name(r->stage));
		print_safe(f, r->message ? r->message : "");
		fprintf(f, "\n");
	}
}

/* Parse a timeout in seconds: a positive number, at most one hour. */
static int
parse_seconds(const char *s, double *out)
{
	char	*end;
	double	 v;

	v = strtod(s, &end);
	if (end == s || *end != '\0' || !(v > 0) || v > 3600)
		return -1;
	*out = v;
	return 0;
}

int
cmd_probe(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "sni", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct probe_req	 req;
	struct probe_result	 res;
	struct url		 u;
	const char		*err, *sni = NULL;
	json_t			*doc = NULL, *list = NULL, *j;
	char			*text;
	double			 timeout = 10;
	int			 ch, family = AF_UNSPEC, as_json = 0, failed = 0;
	int			 i;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "46hjt:", longopts, NULL)) != -1) {
		switch (ch) {
		case '4':
			family = AF_INET;
			break;
		case '6':
			family = AF_INET6;
			break;
		case 'j':
			as_json = 1;
			break;
		case 't':
			if (parse_seconds(optarg, &timeout) == -1) {
				fprintf(stderr, "gemwatch probe: -t takes "
				    "seconds between 0 and 3600, not \"%s\"\n",
				    optarg);
				return 2;
			}
			break;
		case 'S':
			sni = optarg;
			break;
		case 'h':
			probe_usage(stdout);
			return 0;
		default:
			probe_usage(stderr);
			return 2;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0) {
		probe_usage(stderr);
		return 2;
	}
	/* Every URL is checked before any probe runs. */
	for (i = 0; i < argc; i++) {
		if (url_parse(argv[i], strlen(argv[i]), &u, &err) == -1) {
			fprintf(stderr, "gemwatch probe: %s: %s\n", argv[i],
			    err);
			return 2;
		}
		url_free(&u);
	}
	if (probe_global_init() == -1)
		return 1;
	if (as_json) {
		doc = json_object();
		list = json_array();
		if (doc == NULL || list == NULL ||
		    json_object_set_new(doc, "results", list) == -1)
			fatalx("out of memory");
	}
	for (i = 0; i < argc; i++) {
		if (url_parse(argv[i], strlen(argv[i]), &u, &err) == -1)
			fatalx("%s: %s", argv[i], err);
		probe_req_init(&req, &u);
		req.family = family;
		req.timeout = timeout;
		req.sni = sni;
		result_init(&res);
		if (!probe_run(&req, &res))
			failed = 1;
		if (as_json) {
			if ((j = api_result(&res, u.text)) == NULL ||
			    json_array_append_new(list, j) == -1)
				fatalx("out of memory");
		} else {
			if (i > 0)
				printf("\n");
			report(stdout, &res);
		}
		result_clear(&res);
		url_free(&u);
	}
	if (as_json) {
		if ((text = json_dumps(doc, JSON_INDENT(2) |
		    JSON_REAL_PRECISION(15))) == NULL)
			fatalx("out of memory");
		printf("%s\n", text);
		free(text);
		json_decref(doc);
	}
	probe_global_free();
	if (fflush(stdout) != 0)
		return 1;
	return failed ? 1 : 0;
}
