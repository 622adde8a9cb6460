/*
 * Fuzz target for the HTTP routing of daemon/http.c and /probe's
 * parameters (daemon/probe_route.c): the input is split at newlines into
 * a request path and the parameters (target, capsule, debug,
 * X-Prometheus-Scrape-Timeout-Seconds; an empty field is absent).
 * http_route must name a route without reading past the path, a capsule
 * name must lie inside the path, and probe_route_params must accept or
 * refuse without leaking.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "http_request.h"
#include "probe_route.h"
#include "seq.h"
#include "xmalloc.h"

#define NFIELDS 5

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy, *field[NFIELDS], *p, *nl;
	const char *name, *err = NULL;
	size_t namelen, i, plen;
	struct probe_params pp;
	enum route r;

	/* The path as MHD hands it over: any bytes, a length. */
	p = xmalloc(size);
	memcpy(p, data, size);
	plen = size;
	if ((nl = memchr(p, '\n', size)) != NULL)
		plen = (size_t)(nl - p);
	r = http_route(p, plen, &name, &namelen);
	if ((r == ROUTE_CAPSULE || r == ROUTE_SEQ_PAGE) &&
	    (name < p || name + namelen > p + plen || namelen == 0))
		abort();
	/* /<kind>: the name is the kind's. */
	if (r == ROUTE_SEQ_PAGE && seq_kind_find(name, namelen) == -1)
		abort();
	if (r != ROUTE_CAPSULE && r != ROUTE_SEQ_PAGE && name != NULL)
		abort();
	free(p);

	/* The parameters, NUL-terminated as MHD gives them. */
	copy = xmalloc(size + 1);
	memcpy(copy, data, size);
	copy[size] = '\0';
	/* The fields start after the path's newline (NULs may precede it). */
	p = (nl = memchr(copy, '\n', size)) != NULL ? nl + 1 : copy + size;
	for (i = 0; i < NFIELDS - 1; i++) {
		field[i] = p;
		if ((nl = strchr(p, '\n')) != NULL) {
			*nl = '\0';
			p = nl + 1;
		} else
			p += strlen(p);
	}
	for (i = 0; i < NFIELDS - 1; i++)
		if (*field[i] == '\0')
			field[i] = NULL;
	if (probe_route_params(
	        field[0], field[1], field[2], field[3], &pp, &err) == 0) {
		if ((pp.has_url ? 1 : 0) + (pp.capsule ? 1 : 0) != 1)
			abort();
		if (pp.has_url) {
			if (strlen(pp.url.text) > 1024)
				abort();
			url_free(&pp.url);
		}
	} else if (err == NULL)
		abort();
	free(copy);
	return 0;
}
