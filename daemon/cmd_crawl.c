/*
 * "gemwatch crawl": crawl one capsule once, as the daemon's crawl=N does
 * (crawl.h), and report: in words, failing pages first with the page that
 * links to each, or the outcome as JSON (-j, every page). Exit 0 when no
 * page failed, 1 when one did (or the output could not be written), 2 on
 * a usage error.
 */
#include "config.h"

#include <sys/socket.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "conf.h"
#include "crawl.h"
#include "defaults.h"
#include "log.h"
#include "probe.h"
#include "seq.h"
#include "url.h"
#include "xmalloc.h"

#define CRAWL_DEFAULT_PAGES 200

static void
crawl_usage(FILE *f)
{
	fprintf(f, "usage: gemwatch crawl [-j] [-n PAGES] [-d SECONDS] "
	           "[-t SECONDS] URL\n");
}

int
cmd_crawl(int argc, char *argv[])
{
	static const struct option longopts[] = {
	    {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	struct conf conf;
	struct capsule_conf cap;
	struct buf b;
	json_t *outcome = NULL, *full;
	const char *err;
	char *text, *end;
	unsigned long n;
	int ch, as_json = 0, rv = 2;

	memset(&conf, 0, sizeof conf);
	memset(&cap, 0, sizeof cap);
	conf.max_body = DEFAULT_MAX_BODY;
	cap.timeout = DEFAULT_TIMEOUT;
	cap.family = AF_UNSPEC;
	cap.require_close_notify = 1;
	status_spec_default(&cap.expect_status);
	cap.crawl = CRAWL_DEFAULT_PAGES;
	cap.crawl_delay = DEFAULT_CRAWL_DELAY;
	optind = 1;
	while (
	    (ch = getopt_long(argc, argv, "d:hjn:t:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			cap.crawl_delay = strtod(optarg, &end);
			if (end == optarg || *end != '\0' ||
			    !(cap.crawl_delay >= 0) || cap.crawl_delay > 3600) {
				fprintf(stderr,
				    "gemwatch crawl: -d takes seconds from 0 "
				    "to 3600, not \"%s\"\n",
				    optarg);
				return 2;
			}
			break;
		case 'j':
			as_json = 1;
			break;
		case 'n':
			n = strtoul(optarg, &end, 10);
			if (*optarg < '0' || *optarg > '9' || *end != '\0' ||
			    n < 1 || n > CRAWL_MAX) {
				fprintf(stderr,
				    "gemwatch crawl: -n takes a number from 1 "
				    "to %d, not \"%s\"\n",
				    CRAWL_MAX, optarg);
				return 2;
			}
			cap.crawl = (unsigned)n;
			break;
		case 't':
			if (cmd_seconds("crawl", 't', optarg, &cap.timeout) ==
			    -1)
				return 2;
			break;
		case 'h':
			crawl_usage(stdout);
			return 0;
		default:
			crawl_usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 1) {
		crawl_usage(stderr);
		return 2;
	}
	if (url_parse(argv[optind], strlen(argv[optind]), &cap.url, &err) ==
	    -1) {
		fprintf(stderr, "gemwatch crawl: %s: %s\n", argv[optind], err);
		return 2;
	}
	cap.name = cap.url.text;
	rv = 1;
	if (probe_global_init() == -1)
		goto done;
	outcome = seq_run(&crawl_ops, crawl_ops.begin(&conf, &cap));
	probe_global_free();
	if (outcome == NULL)
		fatalx("out of memory");
	if (as_json) {
		if ((full = crawl_ops.api(outcome, 1)) == NULL ||
		    (text = json_dumps(full,
		         JSON_INDENT(2) | JSON_REAL_PRECISION(15))) == NULL)
			fatalx("out of memory");
		printf("%s\n", text);
		free(text);
		json_decref(full);
	} else {
		buf_init(&b);
		crawl_report(&b, outcome);
		fwrite(b.data, 1, b.len, stdout);
		buf_free(&b);
	}
	rv = fflush(stdout) != 0 ||
	             json_integer_value(json_object_get(outcome, "failed")) > 0
	         ? 1
	         : 0;
done:
	json_decref(outcome);
	url_free(&cap.url);
	return rv;
}
