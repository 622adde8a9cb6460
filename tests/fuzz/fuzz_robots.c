/*
 * Fuzz target for daemon/robots.c: robots.txt as a server sends it. The
 * parse never fails; what it keeps is bounded, and a path it disallows is
 * disallowed with anything appended to it (rules are prefixes).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "robots.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const paths[] = {
	    "/", "/private/", "/a/b?c", "", "/robots.txt"};
	struct robots *r;
	char *copy, path[64];
	size_t i;

	if ((copy = malloc(size > 0 ? size : 1)) == NULL)
		abort();
	memcpy(copy, data, size);
	r = robots_parse(copy, size);
	free(copy);
	if (robots_count(r) > ROBOTS_RULES_MAX)
		abort();
	for (i = 0; i < sizeof paths / sizeof paths[0]; i++)
		if (!robots_allowed(r, paths[i])) {
			snprintf(path, sizeof path, "%sxyz", paths[i]);
			if (robots_allowed(r, path))
				abort();
		}
	/* The input's first line as a path. */
	if (size > 0 && size < sizeof path) {
		memcpy(path, data, size);
		path[size] = '\0';
		(void)robots_allowed(r, path);
	}
	robots_free(r);
	return 0;
}
