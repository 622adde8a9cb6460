/*
 * Fuzz target for the request framing check of daemon/http.c: the input
 * is a header block, a header per line ("Name: value", the value as
 * libmicrohttpd hands it over, without the blanks after the colon).
 * http_framing_check must refuse exactly the blocks whose body length is
 * ambiguous: Content-Lengths (any case) with differing values, or a
 * Content-Length and a Transfer-Encoding together; every other block
 * passes. The oracle counts on its own.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "http_request.h"
#include "xmalloc.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_framing f;
	char *copy, *line, *next, *colon, *value;
	const char *first = NULL;
	int lengths = 0, encodings = 0, differ = 0;

	memset(&f, 0, sizeof f);
	copy = xmalloc(size + 1);
	memcpy(copy, data, size);
	copy[size] = '\0';
	for (line = copy; line != NULL && *line != '\0'; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if ((colon = strchr(line, ':')) == NULL)
			continue;
		*colon = '\0';
		value = colon + 1;
		value += strspn(value, " \t");
		http_framing_add(&f, line, value);
		if (strcasecmp(line, "transfer-encoding") == 0)
			encodings++;
		else if (strcasecmp(line, "content-length") == 0) {
			if (first == NULL)
				first = value;
			else if (strcmp(first, value) != 0)
				differ = 1;
			lengths++;
		}
	}
	if (http_framing_check(&f) !=
	    (differ || (lengths > 0 && encodings > 0) ? -1 : 0))
		abort();
	free(copy);
	return 0;
}
