/*
 * Fuzz target for daemon/gemini.c: the response header parser, whole and
 * on every prefix (the probe calls it as bytes trickle in, so "need more"
 * must hold until the header is complete and the verdict must never
 * change as bytes are added), and the expect-status spec parser.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "gemini.h"

/* Prefixes past this cannot change the verdict; bounds the quadratic. */
#define FUZZ_PREFIX_MAX (GEMINI_HEADER_MAX + 8)

static int
parse_copy(
    const uint8_t *data, size_t size, struct gemini_header *h, const char **err)
{
	char *p;
	int r;

	/* An exact-size copy, so a read past size is caught. */
	if ((p = malloc(size > 0 ? size : 1)) == NULL)
		abort();
	if (size > 0)
		memcpy(p, data, size);
	*err = NULL;
	r = gemini_header_parse(p, size, h, err);
	if (r == -1 && *err == NULL)
		abort();
	if (r < -1 || (r > 0 && (size_t)r > size))
		abort();
	free(p);
	return r;
}

static void
fuzz_header(const uint8_t *data, size_t size)
{
	struct gemini_header h, hp;
	const char *err;
	size_t i, n;
	int r, rp;

	r = parse_copy(data, size, &h, &err);
	if (r > 0) {
		if ((size_t)r > GEMINI_HEADER_MAX || r < 5)
			abort();
		if (h.status < 10 || h.status > 69)
			abort();
		if (h.meta_len != (size_t)r - 5 || h.meta[h.meta_len] != '\0')
			abort();
		if (memcmp(h.meta, data + 3, h.meta_len) != 0 ||
		    memchr(h.meta, '\r', h.meta_len) != NULL ||
		    memchr(h.meta, '\n', h.meta_len) != NULL ||
		    memchr(h.meta, '\0', h.meta_len) != NULL)
			abort();
		if (data[2] != ' ' || data[r - 2] != '\r' ||
		    data[r - 1] != '\n')
			abort();
	}

	/*
	 * Monotone in the prefix: 0 until the verdict, then the verdict.
	 * A complete header gives the same result on any longer prefix.
	 */
	n = size < FUZZ_PREFIX_MAX ? size : FUZZ_PREFIX_MAX;
	for (i = 0; i <= n; i++) {
		rp = parse_copy(data, i, &hp, &err);
		if (rp == 0)
			continue;
		if (r == 0)
			abort(); /* a prefix decided, the whole did not */
		if (rp != r)
			abort();
		if (r > 0 &&
		    (hp.status != h.status || hp.meta_len != h.meta_len ||
		        memcmp(hp.meta, h.meta, h.meta_len) != 0))
			abort();
	}
	/* Past FUZZ_PREFIX_MAX the parser must have decided. */
	if (size > FUZZ_PREFIX_MAX && r == 0)
		abort();
}

static void
fuzz_status_spec(const uint8_t *data, size_t size)
{
	struct status_spec s;
	const char *err = NULL;
	char *p;
	int code;

	if ((p = malloc(size > 0 ? size : 1)) == NULL)
		abort();
	if (size > 0)
		memcpy(p, data, size);
	if (status_spec_parse(p, size, &s, &err) == 0) {
		for (code = -1; code <= 100; code++)
			if (status_spec_match(&s, code) &&
			    (code < 10 || code > 69))
				abort();
	} else if (err == NULL)
		abort();
	free(p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_header(data, size);
	fuzz_status_spec(data, size);
	return 0;
}
