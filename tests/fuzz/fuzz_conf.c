/*
 * Fuzz target for daemon/conf.c: conf_parse on arbitrary bytes (NULs,
 * bad UTF-8, long lines, odd quoting), the invariants of what it returns
 * (a conf exactly when there was no error, every error naming the file,
 * every value within its documented range), then the lookups that use a
 * parsed conf, and everything freed. The first line also goes through
 * parse_duration and parse_size.
 */
#include "config.h"

#include <netinet/in.h>

#include <stdlib.h>
#include <string.h>

#include "allow.h"
#include "conf.h"
#include "fuzz.h"

#define FUZZ_NAME "fuzz.conf"

static void
check_conf(const struct conf *c)
{
	const struct capsule_conf *k;
	size_t i;

	if (c->nlisten < 1 || c->interval < 1 || c->timeout < 0.1 ||
	    c->timeout > 3600 || c->timeout > c->interval ||
	    c->concurrency < 1 || c->concurrency > 65536 || c->history < 1 ||
	    c->history > 100000 || c->max_body < 1 ||
	    c->max_body > 1024 * 1024 * 1024 || c->state_dir == NULL ||
	    c->state_dir[0] != '/' || c->shard_k < 1 ||
	    c->shard_k > c->shard_n || c->shard_n > 1000)
		abort();
	for (i = 0; i < c->nlisten; i++)
		if (c->listen[i].text == NULL || c->listen[i].sslen == 0)
			abort();
	if (c->nnotify > 16 || c->notify_after < 1 || c->notify_after > 1000 ||
	    c->notify_cert_days > 3650 ||
	    (c->notify_repeat != 0 &&
	        (c->notify_repeat < 1 || c->notify_repeat > 30 * 86400)) ||
	    c->notify_timeout < 0.1 || c->notify_timeout > 3600)
		abort();
	for (i = 0; i < c->nnotify; i++)
		if (c->notify[i][0] == NULL || c->notify[i][0][0] != '/')
			abort();
	if (c->nresolvers > 16 || (c->nresolvers > 0) != (c->resolvers != NULL))
		abort();
	for (i = 0; i < c->nresolvers; i++)
		if ((c->resolvers[i].ss_family != AF_INET &&
		        c->resolvers[i].ss_family != AF_INET6) ||
		    ((struct sockaddr_in *)&c->resolvers[i])->sin_port == 0)
			abort();
	for (i = 0; i < c->ncapsules; i++) {
		k = &c->capsules[i];
		if (k->name == NULL || k->name[0] == '\0' ||
		    (k->notify != 0 && k->notify != 1) || k->url.host == NULL ||
		    k->interval < 1 || k->timeout < 0.1 ||
		    k->timeout > k->interval ||
		    (k->error_path != NULL && k->error_url.text == NULL))
			abort();
		/* Names are unique, and a capsule may always be probed. */
		if (conf_capsule(c, k->name) != k ||
		    allow_probe(c, &k->url) != ALLOW_TARGET)
			abort();
		if (k->error_path != NULL &&
		    allow_probe(c, &k->error_url) != ALLOW_TARGET)
			abort();
		if (shard_of(k->name, c->shard_n) < 1 ||
		    shard_of(k->name, c->shard_n) > c->shard_n)
			abort();
		(void)conf_in_shard(c, k);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf_errors errs = {NULL, 0};
	struct conf *c;
	const char *nl;
	char *p, *line;
	size_t i, sz;
	double d;

	/* An exact-size copy, so a read past size is caught. */
	if ((p = malloc(size > 0 ? size : 1)) == NULL)
		abort();
	if (size > 0)
		memcpy(p, data, size);
	c = conf_parse(FUZZ_NAME, p, size, &errs);
	if ((c == NULL) != (errs.n > 0))
		abort();
	for (i = 0; i < errs.n; i++)
		if (strncmp(errs.msg[i], FUZZ_NAME ":", 10) != 0)
			abort();
	if (c != NULL)
		check_conf(c);
	conf_free(c);
	conf_errors_free(&errs);

	nl = size > 0 ? memchr(p, '\n', size) : NULL;
	if ((line = strndup(p, nl != NULL ? (size_t)(nl - p) : size)) == NULL)
		abort();
	if (parse_duration(line, &d) == 0 && !(d >= 0 && d <= 1e9))
		abort();
	(void)parse_size(line, &sz);
	free(line);
	free(p);
	return 0;
}
