/*
 * "gemwatch probe": probe each URL once and report, in words for a person
 * or as one JSON document (-j). Exit 0 when every probe succeeded, 1 when
 * any failed, 2 on a usage error.
 */
#include "config.h"

#include <sys/socket.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cmd.h"
#include "defaults.h"
#include "log.h"
#include "probe.h"
#include "report.h"
#include "result.h"
#include "url.h"
#include "xmalloc.h"

static void
probe_usage(FILE *f)
{
	fprintf(f, "usage: gemwatch probe [-j] [-4|-6] [-t SECONDS] "
	    "[--sni NAME] URL...\n");
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
	double			 timeout = DEFAULT_TIMEOUT;
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
			struct buf b;

			buf_init(&b);
			if (i > 0)
				buf_addc(&b, '\n');
			report_text(&b, &res);
			fwrite(b.data, 1, b.len, stdout);
			buf_free(&b);
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
