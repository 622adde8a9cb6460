/*
 * "gemwatch probe": probe each URL once and report, in words for a person
 * or as one JSON document (-j). The URLs are probed at once on the engine
 * (at most -c in flight, one connection at a time per host and port);
 * the reports come out in the order of the arguments. Exit 0 when every
 * probe succeeded, 1 when any failed, 2 on a usage error.
 */
#include "config.h"

#include <sys/socket.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "batch.h"
#include "cmd.h"
#include "conf.h"
#include "defaults.h"
#include "dns.h"
#include "engine.h"
#include "log.h"
#include "probe.h"
#include "report.h"
#include "result.h"
#include "url.h"
#include "xmalloc.h"

static void
probe_usage(FILE *f)
{
	fprintf(f, "usage: gemwatch probe [-j] [-4|-6] [-c N] [-t SECONDS] "
	           "[--sni NAME]\n"
	           "                      [--max-idle DURATION] "
	           "[--resolver ADDR[:PORT]]... URL...\n");
}

/* The reports so far, to print in the order of the arguments. */
struct reports {
	struct probe_result *results;
	unsigned char *have;
	const struct url *urls;
	size_t n, next;
	json_t *list; /* -j: the results so far */
	int failed;
};

/* Print result i: a report in words, or an entry of the JSON list. */
static void
probe_print(
    const struct probe_result *res, const struct url *u, size_t i, json_t *list)
{
	struct buf b;
	json_t *j;

	if (list != NULL) {
		if ((j = api_result(res, u->text)) == NULL ||
		    json_array_append_new(list, j) == -1)
			fatalx("out of memory");
		return;
	}
	buf_init(&b);
	if (i > 0)
		buf_addc(&b, '\n');
	report_text(&b, res);
	fwrite(b.data, 1, b.len, stdout);
	buf_free(&b);
}

/* A probe ended: print it and those after it that wait for it. */
static void
probe_result(void *arg, size_t id, struct probe_result *res)
{
	struct reports *r = arg;

	r->results[id] = *res;
	result_init(res);
	r->have[id] = 1;
	for (; r->next < r->n && r->have[r->next]; r->next++) {
		if (!r->results[r->next].success)
			r->failed = 1;
		probe_print(
		    &r->results[r->next], &r->urls[r->next], r->next, r->list);
		result_clear(&r->results[r->next]);
		if (r->list == NULL)
			fflush(stdout);
	}
}

int
cmd_probe(int argc, char *argv[])
{
	static const struct option longopts[] = {
	    {"sni", required_argument, NULL, 'S'},
	    {"resolver", required_argument, NULL, 'R'},
	    {"max-idle", required_argument, NULL, 'I'},
	    {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	struct sockaddr_storage resolvers[CMD_RESOLVERS_MAX];
	struct probe_req *reqs = NULL;
	struct reports r;
	struct url *urls = NULL;
	struct engine *e = NULL;
	struct batch *b = NULL;
	const char *err, *sni = NULL;
	json_t *doc = NULL, *list = NULL;
	char *text, *key;
	double timeout = DEFAULT_TIMEOUT, max_idle = 0;
	size_t i, n, nresolvers = 0;
	unsigned parallel = CMD_PARALLEL;
	int ch, family = AF_UNSPEC, as_json = 0, rv = 1;

	optind = 1;
	while (
	    (ch = getopt_long(argc, argv, "46c:hjt:", longopts, NULL)) != -1) {
		switch (ch) {
		case '4':
			family = AF_INET;
			break;
		case '6':
			family = AF_INET6;
			break;
		case 'c':
			if (cmd_count("probe", 'c', optarg, &parallel) == -1)
				return 2;
			break;
		case 'j':
			as_json = 1;
			break;
		case 't':
			if (cmd_seconds("probe", 't', optarg, &timeout) == -1)
				return 2;
			break;
		case 'S':
			sni = optarg;
			break;
		case 'I':
			if (parse_duration(optarg, &max_idle) == -1 ||
			    max_idle < 0.1 || max_idle > 3600) {
				fprintf(stderr,
				    "gemwatch probe: --max-idle takes a "
				    "duration from 100ms to 1h (like 5s), not "
				    "\"%s\"\n",
				    optarg);
				return 2;
			}
			break;
		case 'R':
			if (cmd_resolver(
			        "probe", optarg, resolvers, &nresolvers) == -1)
				return 2;
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
	/* A stall as long as the deadline ends as a timeout. */
	if (max_idle > 0 && max_idle >= timeout) {
		fprintf(stderr,
		    "gemwatch probe: --max-idle (%gs) must be shorter than the "
		    "timeout (%gs)\n",
		    max_idle, timeout);
		return 2;
	}
	n = (size_t)argc;
	memset(&r, 0, sizeof r);
	/* Every URL is checked before any probe runs. */
	urls = xcalloc(n, sizeof *urls);
	for (i = 0; i < n; i++) {
		if (url_parse(argv[i], strlen(argv[i]), &urls[i], &err) == -1) {
			fprintf(
			    stderr, "gemwatch probe: %s: %s\n", argv[i], err);
			rv = 2;
			goto done;
		}
	}
	if (probe_global_init() == -1)
		goto done;
	dns_servers_set(resolvers, nresolvers);
	parallel = cmd_parallel("probe", parallel);
	if ((e = engine_new(parallel, 0)) == NULL)
		goto global;
	if (as_json) {
		doc = json_object();
		list = json_array();
		if (doc == NULL || list == NULL ||
		    json_object_set_new(doc, "results", list) == -1)
			fatalx("out of memory");
	}
	reqs = xcalloc(n, sizeof *reqs);
	r.results = xcalloc(n, sizeof *r.results);
	r.have = xcalloc(n, 1);
	r.urls = urls;
	r.n = n;
	r.list = list;
	b = batch_new(e, parallel);
	for (i = 0; i < n; i++) {
		probe_req_init(&reqs[i], &urls[i]);
		reqs[i].family = family;
		reqs[i].timeout = timeout;
		reqs[i].sni = sni;
		reqs[i].max_idle = max_idle;
		result_init(&r.results[i]);
		xasprintf(&key, "%s:%d", urls[i].host, urls[i].port);
		batch_add(b, &reqs[i], key, i);
		free(key);
	}
	/* Reports in the order of the arguments, each as soon as it can. */
	batch_run(b, probe_result, NULL, 0, &r);
	if (as_json) {
		if ((text = json_dumps(doc, API_TERMINAL_FLAGS)) == NULL)
			fatalx("out of memory");
		printf("%s\n", text);
		free(text);
	}
	rv = fflush(stdout) != 0 || r.failed ? 1 : 0;
	engine_free(e);
	batch_free(b);
global:
	probe_global_free();
done:
	json_decref(doc);
	free(r.have);
	free(r.results);
	free(reqs);
	for (i = 0; i < n; i++)
		url_free(&urls[i]);
	free(urls);
	return rv;
}
