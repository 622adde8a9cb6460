/*
 * Which targets /probe may be asked to probe (SPEC.md §5): a configured
 * capsule's host and port (or its error page's), or what a probe-allow
 * pattern of the configuration admits. Used by /probe alone.
 */
#ifndef GEMWATCH_ALLOW_H
#define GEMWATCH_ALLOW_H

struct conf;
struct sockaddr;
struct url;

enum allow {
	ALLOW_NONE,   /* refused */
	ALLOW_TARGET, /* as spelt: a capsule's, a name pattern's, an address
	                 pattern's IP literal */
	ALLOW_ADDRESS /* a host name: only at the addresses allow_address admits
	               */
};

/* Whether /probe may target u (NULL: no) under conf, and how. */
enum allow allow_probe(const struct conf *, const struct url *u);
/*
 * Whether a probe-allow address pattern of conf admits sa, an address
 * (and port) a host name was resolved to.
 */
int allow_address(const struct conf *, const struct sockaddr *sa);

#endif
