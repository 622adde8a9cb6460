/*
 * /probe's allow-list: a target is allowed when it is a configured
 * capsule's host and port, exactly as parsed, or when a probe-allow
 * pattern matches it (url_pattern_match: host glob and port). An address
 * pattern decides on addresses, never on a name spelt like one: a host
 * name it could admit is resolved first, and only the addresses it
 * admits are connected to (the probe asks allow_address for each).
 */
#include "config.h"

#include <stddef.h>
#include <string.h>

#include "allow.h"
#include "conf.h"
#include "url.h"

enum allow
allow_probe(const struct conf *conf, const struct url *u)
{
	const struct capsule_conf *c;
	struct url_pattern p;
	const char *err;
	size_t i;
	int by_address = 0;

	if (u == NULL || u->host == NULL)
		return ALLOW_NONE;
	for (i = 0; i < conf->ncapsules; i++) {
		c = &conf->capsules[i];
		if (u->port == c->url.port && strcmp(u->host, c->url.host) == 0)
			return ALLOW_TARGET;
		if (c->error_path != NULL && u->port == c->error_url.port &&
		    strcmp(u->host, c->error_url.host) == 0)
			return ALLOW_TARGET;
	}
	for (i = 0; i < conf->nprobe_allow; i++) {
		if (url_pattern_match(conf->probe_allow[i], u))
			return ALLOW_TARGET;
		if (!u->host_is_ip &&
		    url_pattern_parse(conf->probe_allow[i], &p, &err) == 0 &&
		    p.address && (p.port == -1 || p.port == u->port))
			by_address = 1;
	}
	return by_address ? ALLOW_ADDRESS : ALLOW_NONE;
}

int
allow_address(const struct conf *conf, const struct sockaddr *sa)
{
	size_t i;

	for (i = 0; i < conf->nprobe_allow; i++)
		if (url_pattern_match_address(conf->probe_allow[i], sa))
			return 1;
	return 0;
}
