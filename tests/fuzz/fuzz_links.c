/*
 * Fuzz target for what a crawl reads from a server: text/gemini link
 * lines (daemon/gemtext.c), whole and fed in pieces split where the
 * input's first byte says (the links found must be the same), and each
 * link's reference resolved against a few base URLs (url_resolve in
 * daemon/url.c), whose output must be NUL-terminated within its buffer,
 * free of dot segments and blanks, and parse as a URL or be refused.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "gemtext.h"
#include "url.h"

#define LINKS_MAX 64

struct found {
	size_t n;
	size_t len[LINKS_MAX];
	char *ref[LINKS_MAX];
};

static void
collect(void *arg, const char *ref, size_t len)
{
	struct found *f = arg;

	if (len == 0 || memchr(ref, ' ', len) != NULL ||
	    memchr(ref, '\t', len) != NULL || memchr(ref, '\n', len) != NULL)
		abort();
	if (f->n == LINKS_MAX)
		return;
	if ((f->ref[f->n] = malloc(len)) == NULL)
		abort();
	memcpy(f->ref[f->n], ref, len);
	f->len[f->n++] = len;
}

static void
found_free(struct found *f)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		free(f->ref[i]);
}

static void
resolve(const struct url *base, const char *ref, size_t len)
{
	char out[4096], *copy;
	const char *err;
	struct url u;
	size_t n;
	int rv;

	/* An exact-size copy, so a read past len is caught. */
	if ((copy = malloc(len > 0 ? len : 1)) == NULL)
		abort();
	memcpy(copy, ref, len);
	memset(out, 'x', sizeof out);
	rv = url_resolve(base, copy, len, out, sizeof out);
	free(copy);
	if (rv == URL_RESOLVE_OK) {
		if ((n = strnlen(out, sizeof out)) == sizeof out)
			abort();
		if (strncmp(out, "gemini://", 9) != 0 ||
		    strstr(out, "/./") != NULL || strstr(out, "/../") != NULL ||
		    memchr(out, '#', n) != NULL || memchr(out, ' ', n) != NULL)
			abort();
		if (url_parse(out, n, &u, &err) == 0)
			url_free(&u);
	} else if (rv != URL_RESOLVE_OTHER && rv != URL_RESOLVE_BAD)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const bases[] = {"gemini://example.org/",
	    "gemini://example.org:1966/a/b/c.gmi?q=1", "gemini://[::1]/x/"};
	struct found whole = {0}, split = {0};
	struct gemtext g;
	struct url base;
	const char *err;
	size_t i, k, cut;

	gemtext_init(&g);
	gemtext_feed(&g, (const char *)data, size, collect, &whole);
	gemtext_end(&g, collect, &whole);
	cut = size > 0 ? data[0] % (size + 1) : 0;
	gemtext_init(&g);
	gemtext_feed(&g, (const char *)data, cut, collect, &split);
	gemtext_feed(&g, (const char *)data + cut, size - cut, collect, &split);
	gemtext_end(&g, collect, &split);
	if (whole.n != split.n)
		abort();
	for (i = 0; i < whole.n; i++)
		if (whole.len[i] != split.len[i] ||
		    memcmp(whole.ref[i], split.ref[i], whole.len[i]) != 0)
			abort();
	for (k = 0; k < sizeof bases / sizeof bases[0]; k++) {
		if (url_parse(bases[k], strlen(bases[k]), &base, &err) == -1)
			abort();
		for (i = 0; i < whole.n; i++)
			resolve(&base, whole.ref[i], whole.len[i]);
		/* The whole input as one reference too. */
		resolve(&base, (const char *)data, size < 4096 ? size : 4096);
		url_free(&base);
	}
	found_free(&whole);
	found_free(&split);
	return 0;
}
