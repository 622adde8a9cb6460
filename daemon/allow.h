/*
 * Which targets /probe may be asked to probe (SPEC.md §5): a configured
 * capsule's host and port (or its error page's), or what a probe-allow
 * pattern of the configuration admits. Used by /probe alone.
 */
#ifndef GEMWATCH_ALLOW_H
#define GEMWATCH_ALLOW_H

struct conf;
struct url;

/* Whether /probe may target u (NULL: no) under conf. */
int allow_probe(const struct conf *, const struct url *u);

#endif
