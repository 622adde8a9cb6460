/*
 * robots.txt as Gemini's companion specification reads it: groups of
 * User-agent lines, each followed by Disallow lines of path prefixes. A
 * monitor's crawl falls under the virtual agents "*" and "researcher".
 * Pure: no I/O, fuzzed.
 */
#ifndef GEMWATCH_ROBOTS_H
#define GEMWATCH_ROBOTS_H

#include <stddef.h>

/* The most Disallow prefixes kept, and the longest. */
#define ROBOTS_RULES_MAX 1024
#define ROBOTS_RULE_MAX 1024
/* The most bytes of robots.txt read. */
#define ROBOTS_SIZE_MAX (64 * 1024)

struct robots;

/* The rules of buf[0..len) for "*" and "researcher" (caller frees). */
struct robots *robots_parse(const char *buf, size_t len);
void robots_free(struct robots *);
/* Whether path (from the first "/", query included) may be requested. */
int robots_allowed(const struct robots *, const char *path);
/* How many Disallow prefixes apply. */
size_t robots_count(const struct robots *);

#endif
