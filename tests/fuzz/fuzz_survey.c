/*
 * Fuzz target for daemon/survey.c's survey_line: a line of a capsule list
 * on arbitrary bytes. It returns -1 (with a message and nothing
 * allocated), 0 or 1; a capsule's canonical URL is itself a line that
 * gives the same URL back, also with a comment after it.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "survey.h"

static void
again(const struct url *u, const char *suffix)
{
	struct url v;
	const char *err = NULL;
	char *p;
	size_t len;

	len = strlen(u->text) + strlen(suffix);
	if ((p = malloc(len + 1)) == NULL)
		abort();
	memcpy(p, u->text, strlen(u->text));
	memcpy(p + strlen(u->text), suffix, strlen(suffix));
	if (survey_line(p, len, &v, &err) != 1 ||
	    strcmp(v.text, u->text) != 0 || strcmp(v.host, u->host) != 0 ||
	    v.port != u->port || strcmp(v.path, u->path) != 0)
		abort();
	url_free(&v);
	free(p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct url u;
	const char *err = NULL;
	char *p;
	int rv;

	/* An exact-size copy, so a read past size is caught. */
	if ((p = malloc(size > 0 ? size : 1)) == NULL)
		abort();
	if (size > 0)
		memcpy(p, data, size);
	rv = survey_line(p, size, &u, &err);
	free(p);
	switch (rv) {
	case -1:
		if (err == NULL || u.host != NULL || u.path != NULL ||
		    u.text != NULL)
			abort();
		return 0;
	case 0:
		if (u.host != NULL || u.text != NULL)
			abort();
		return 0;
	case 1:
		break;
	default:
		abort();
	}
	if (u.host == NULL || u.text == NULL || u.path == NULL ||
	    strncmp(u.text, "gemini://", 9) != 0 || u.path[0] != '/')
		abort();
	again(&u, "");
	again(&u, "  # a comment");
	again(&u, "\r");
	url_free(&u);
	return 0;
}
