/*
 * What the subcommands share: option values, the options of those that
 * read the configuration, and how many probes may be in flight.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "conf.h"
#include "engine.h"

int
cmd_config_opts(
    int argc, char *argv[], const char **path, void (*usage)(FILE *), int *rv)
{
	static const struct option longopts[] = {
	    {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "f:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			*path = optarg;
			break;
		case 'h':
			usage(stdout);
			*rv = 0;
			return -1;
		default:
			usage(stderr);
			*rv = 2;
			return -1;
		}
	}
	return optind;
}

int
cmd_seconds(const char *cmd, char opt, const char *s, double *out)
{
	char *end;
	double v;

	v = strtod(s, &end);
	if (end == s || *end != '\0' || !(v > 0) || v > 3600) {
		fprintf(stderr,
		    "gemwatch %s: -%c takes seconds between 0 and 3600, "
		    "not \"%s\"\n",
		    cmd, opt, s);
		return -1;
	}
	*out = v;
	return 0;
}

int
cmd_count(const char *cmd, char opt, const char *s, unsigned *out)
{
	char *end = NULL;
	unsigned long v = 0;

	if (*s >= '0' && *s <= '9')
		v = strtoul(s, &end, 10);
	if (v < 1 || v > 1000000 || *end != '\0') {
		fprintf(stderr,
		    "gemwatch %s: -%c takes a number from 1 to 1000000, "
		    "not \"%s\"\n",
		    cmd, opt, s);
		return -1;
	}
	*out = (unsigned)v;
	return 0;
}

int
cmd_resolver(
    const char *cmd, const char *arg, struct sockaddr_storage *ss, size_t *n)
{
	const char *err;

	if (*n == CMD_RESOLVERS_MAX) {
		fprintf(stderr,
		    "gemwatch %s: at most %d --resolver addresses\n", cmd,
		    CMD_RESOLVERS_MAX);
		return -1;
	}
	if (parse_resolver(arg, &ss[*n], &err) == -1) {
		fprintf(stderr, "gemwatch %s: --resolver \"%s\": %s\n", cmd,
		    arg, err);
		return -1;
	}
	(*n)++;
	return 0;
}

unsigned
cmd_parallel(const char *cmd, unsigned parallel)
{
	unsigned long limit;
	unsigned cap;

	limit = engine_fd_raise();
	cap = engine_fd_capacity();
	if (parallel > cap) {
		fprintf(stderr,
		    "gemwatch %s: the file descriptor limit (%lu) "
		    "allows %u probes at once, not %u; raise it (ulimit -n) "
		    "for more\n",
		    cmd, limit, cap, parallel);
		parallel = cap;
	}
	return parallel;
}
