/*
 * "gemwatch diagnose": the conformance checks of diagnose.h against one
 * server, one connection at a time, reported in words as each ends or as
 * one JSON document (-j). Exit 0 when no check failed, 1 when one did, 2
 * on a usage error.
 */
#include "config.h"

#include <sys/socket.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "buf.h"
#include "cmd.h"
#include "defaults.h"
#include "diagnose.h"
#include "log.h"
#include "probe.h"
#include "result.h"
#include "url.h"
#include "utf8.h"
#include "xmalloc.h"

/* Requests longer than this are shown cut, with their length. */
#define SHOW_REQUEST 100

static void
diagnose_usage(FILE *f)
{
	fprintf(f, "usage: gemwatch diagnose [-j] [-4|-6] [-t SECONDS] "
	           "[--sni NAME]\n"
	           "                         [--only CHECK,...] "
	           "HOST[:PORT] | URL\n"
	           "       gemwatch diagnose --list\n");
}

static void
list_checks(void)
{
	size_t i;

	for (i = 0; i < diag_checks(); i++)
		printf("%s\n  %s\n  rule: %s\n", diag_check_name(i),
		    diag_check_purpose(i), diag_check_rule(i));
}

/* One outcome in words. */
static void
print_outcome(void *arg, const struct diag_outcome *o)
{
	int i = diag_check_find(o->name);
	struct buf b;
	size_t len;

	(void)arg;
	buf_init(&b);
	buf_printf(&b, "\n%-22s %s  %s\n", o->name,
	    diag_verdict_name(o->verdict), diag_check_purpose((size_t)i));
	buf_printf(&b, "  rule:    %s\n", diag_check_rule((size_t)i));
	if (o->request != NULL) {
		len = strlen(o->request);
		buf_adds(&b, "  request: ");
		if (len > SHOW_REQUEST)
			buf_printf(&b, "%.*s... (%zu characters escaped)\n",
			    SHOW_REQUEST, o->request, len);
		else
			buf_printf(&b, "%s\n", o->request);
	}
	if (o->request != NULL) {
		buf_adds(&b, "  answer:  ");
		if (o->status >= 0) {
			buf_printf(&b, "%d", o->status);
			if (o->meta != NULL && o->meta[0] != '\0') {
				buf_addc(&b, ' ');
				utf8_escape_text(&b, o->meta, strlen(o->meta));
			}
			if (o->body_bytes >= 0)
				buf_printf(&b, ", %lld body bytes",
				    (long long)o->body_bytes);
			buf_printf(&b, ", ended: %s",
			    o->end != END_NONE ? end_brief(o->end)
			                       : "not read");
		} else
			buf_adds(&b, "no valid header");
		buf_addc(&b, '\n');
	}
	buf_adds(&b, "  why:     ");
	utf8_escape_text(&b, o->why, strlen(o->why));
	buf_addc(&b, '\n');
	fwrite(b.data, 1, b.len, stdout);
	fflush(stdout);
	buf_free(&b);
}

/* HOST, HOST:PORT, [V6]:PORT or a gemini:// URL, as a URL. */
static int
parse_target(const char *arg, struct url *u, const char **err)
{
	char *s;
	int rv;

	if (strstr(arg, "://") != NULL)
		return url_parse(arg, strlen(arg), u, err);
	xasprintf(&s, "gemini://%s/", arg);
	rv = url_parse(s, strlen(s), u, err);
	free(s);
	return rv;
}

int
cmd_diagnose(int argc, char *argv[])
{
	static const struct option longopts[] = {
	    {"only", required_argument, NULL, 'O'},
	    {"list", no_argument, NULL, 'L'},
	    {"sni", required_argument, NULL, 'S'},
	    {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	struct diag_target t;
	struct diag_report rep;
	struct url u;
	unsigned char *sel = NULL;
	const char *err, *only = NULL, *bad, *sni = NULL;
	json_t *doc;
	char *text;
	size_t badlen;
	double timeout = DEFAULT_TIMEOUT;
	int ch, family = AF_UNSPEC, as_json = 0, list = 0, rv = 2;

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
			if (cmd_seconds("diagnose", 't', optarg, &timeout) ==
			    -1)
				return 2;
			break;
		case 'O':
			only = optarg;
			break;
		case 'L':
			list = 1;
			break;
		case 'S':
			sni = optarg;
			break;
		case 'h':
			diagnose_usage(stdout);
			return 0;
		default:
			diagnose_usage(stderr);
			return 2;
		}
	}
	argc -= optind;
	argv += optind;
	if (list) {
		if (argc != 0) {
			diagnose_usage(stderr);
			return 2;
		}
		list_checks();
		return 0;
	}
	if (argc != 1) {
		diagnose_usage(stderr);
		return 2;
	}
	if (only != NULL) {
		sel = xcalloc(diag_checks(), 1);
		if (diag_select(only, sel, &bad, &badlen) == -1) {
			fprintf(stderr,
			    "gemwatch diagnose: no check \"%.*s\" (see "
			    "--list)\n",
			    (int)badlen, bad);
			free(sel);
			return 2;
		}
	}
	if (parse_target(argv[0], &u, &err) == -1) {
		fprintf(stderr, "gemwatch diagnose: %s: %s\n", argv[0], err);
		free(sel);
		return 2;
	}
	rv = 1;
	if (probe_global_init() == -1)
		goto done;
	memset(&t, 0, sizeof t);
	t.url = &u;
	t.family = family;
	t.timeout = timeout;
	t.sni = sni;
	t.cancel_fd = -1;
	diag_report_init(&rep);
	if (!as_json)
		printf("gemwatch diagnose gemini://%s%s%s:%d/\n",
		    strchr(u.host, ':') != NULL ? "[" : "", u.host,
		    strchr(u.host, ':') != NULL ? "]" : "", u.port);
	(void)diagnose_run(&t, sel, &rep, as_json ? NULL : print_outcome, NULL);
	if (as_json) {
		if ((doc = diag_report_json(&rep)) == NULL ||
		    (text = json_dumps(doc, JSON_INDENT(2))) == NULL)
			fatalx("out of memory");
		printf("%s\n", text);
		free(text);
		json_decref(doc);
	} else {
		struct buf b;

		buf_init(&b);
		diag_summary(&rep, &b);
		printf("\n%s\n", b.data);
		buf_free(&b);
	}
	rv = fflush(stdout) != 0 || rep.count[DIAG_FAIL] > 0 ? 1 : 0;
	diag_report_free(&rep);
	probe_global_free();
done:
	url_free(&u);
	free(sel);
	return rv;
}
