/*
 * /probe's allow-list: a target is allowed when it is a configured
 * capsule's host and port, exactly as parsed, or when a probe-allow
 * pattern matches it (url_pattern_match: host glob and port).
 */
#include "config.h"

#include <stddef.h>
#include <string.h>

#include "allow.h"
#include "conf.h"
#include "url.h"

int
allow_probe(const struct conf *conf, const struct url *u)
{
	const struct capsule_conf *c;
	size_t i;

	if (u == NULL || u->host == NULL)
		return 0;
	for (i = 0; i < conf->ncapsules; i++) {
		c = &conf->capsules[i];
		if (u->port == c->url.port && strcmp(u->host, c->url.host) == 0)
			return 1;
		if (c->error_path != NULL && u->port == c->error_url.port &&
		    strcmp(u->host, c->error_url.host) == 0)
			return 1;
	}
	for (i = 0; i < conf->nprobe_allow; i++)
		if (url_pattern_match(conf->probe_allow[i], u))
			return 1;
	return 0;
}
