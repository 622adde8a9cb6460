/*
 * What the HTTP endpoint decides about a request from its bytes alone
 * (http_request.h).
 */
#include "config.h"

#include <microhttpd.h>
#include <string.h>
#include <strings.h>

#include "hex.h"
#include "http_request.h"
#include "result.h"

enum route
http_route(const char *path, size_t len, const char **name, size_t *namelen)
{
	static const struct {
		const char *path;
		enum route route;
	} exact[] = {
	    {"/", ROUTE_PAGE},
	    {"/metrics", ROUTE_METRICS},
	    {"/api/v1/capsules", ROUTE_CAPSULES},
	    {"/api/v1/capsules/", ROUTE_CAPSULES},
	    {"/healthz", ROUTE_HEALTHZ},
	    {"/probe", ROUTE_PROBE},
	};
	static const char prefix[] = "/api/v1/capsules/";
	size_t i, plen = sizeof prefix - 1;

	*name = NULL;
	*namelen = 0;
	for (i = 0; i < sizeof exact / sizeof exact[0]; i++)
		if (strlen(exact[i].path) == len &&
		    memcmp(exact[i].path, path, len) == 0)
			return exact[i].route;
	for (i = 0; i < SEQ__COUNT; i++)
		if (len == strlen(seq_name(i)) + 1 && path[0] == '/' &&
		    memcmp(path + 1, seq_name(i), len - 1) == 0) {
			*name = path + 1;
			*namelen = len - 1;
			return ROUTE_SEQ_PAGE;
		}
	if (len > plen && memcmp(path, prefix, plen) == 0 &&
	    memchr(path + plen, '\0', len - plen) == NULL) {
		*name = path + plen;
		*namelen = len - plen;
		return ROUTE_CAPSULE;
	}
	return ROUTE_NOT_FOUND;
}

void
http_framing_add(struct http_framing *f, const char *name, const char *value)
{
	if (strcasecmp(name, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0)
		f->encodings++;
	else if (strcasecmp(name, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
		if (f->lengths++ == 0)
			f->length = value;
		else if (strcmp(f->length, value) != 0)
			f->conflict = 1;
	}
}

int
http_framing_check(const struct http_framing *f)
{
	return f->conflict || (f->lengths > 0 && f->encodings > 0) ? -1 : 0;
}

/*
 * The handler gets the decoded path as a C string, so a decoded %00 would
 * cut it short (/api/v1/capsules/ok%00x would name capsule "ok"). Decode
 * every %HH as libmicrohttpd does, but leave %00 as it is.
 */
size_t
http_unescape(char *s)
{
	char *r = s, *w = s;
	int v;

	while (*r != '\0') {
		if (r[0] == '%' && (v = hex_byte(r + 1)) > 0) {
			*w++ = (char)v;
			r += 3;
		} else
			*w++ = *r++;
	}
	*w = '\0';
	return (size_t)(w - s);
}
