/*
 * Fuzz target for the store's snapshot parser (store_restore): the input
 * is a snapshot file whose trailing checksum is first recomputed, so that
 * mutations reach the parser rather than stop at the checksum. It is
 * restored into a store with capsules alpha, beta (with an error page)
 * and gamma and a history of 4. Whether it is refused or loaded, the
 * store must then answer the JSON API, the page and the metrics, take a
 * new result, and free everything; a refused input must leave the store
 * untouched.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "buf.h"
#include "conf.h"
#include "fuzz.h"
#include "log.h"
#include "metrics.h"
#include "page.h"
#include "result.h"
#include "store.h"
#include "xmalloc.h"

static struct store *
mkstore(void)
{
	struct conf conf;
	struct capsule_conf caps[3];
	const struct capsule_conf *mine[3] = {&caps[0], &caps[1], &caps[2]};
	struct store *s = store_new();

	memset(&conf, 0, sizeof conf);
	memset(caps, 0, sizeof caps);
	conf.history = 4;
	conf.shard_k = conf.shard_n = 1;
	conf.capsules = caps;
	conf.ncapsules = 3;
	caps[0].name = "alpha";
	caps[0].url.text = "gemini://alpha.example/";
	caps[1].name = "beta";
	caps[1].url.text = "gemini://beta.example/";
	caps[1].error_path = "/nope";
	caps[2].name = "gamma";
	caps[2].url.text = "gemini://gamma.example/";
	store_sync(s, conf.history, mine, 3);
	return s;
}

/* Read everything there is, as the HTTP routes do. */
static void
render(struct store *s)
{
	static const char *const names[] = {"alpha", "beta", "gamma"};
	struct metrics_cache *mc;
	struct buf b;
	char *j;
	size_t i;

	j = api_capsules(s);
	CHECK(j != NULL);
	free(j);
	for (i = 0; i < 3; i++) {
		j = api_capsule(s, names[i]);
		CHECK(j != NULL);
		free(j);
	}
	buf_init(&b);
	page_render(&b, s, 1795881600);
	mc = metrics_cache_new();
	metrics_text_release(metrics_render_shared(&b, mc, s, NULL));
	metrics_cache_free(mc);
	buf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct store *s;
	struct probe_result r;
	unsigned char *copy;
	uint64_t h = UINT64_C(14695981039346656037);
	char err[256], *before, *after;
	size_t i;

	log_init(LOG_LEVEL_ERR);
	copy = xmalloc(size + 1);
	memcpy(copy, data, size);
	if (size >= 8) {
		for (i = 0; i < size - 8; i++) {
			h ^= copy[i];
			h *= UINT64_C(1099511628211);
		}
		for (i = 0; i < 8; i++)
			copy[size - 8 + i] = (unsigned char)(h >> (8 * i));
	}
	s = mkstore();
	before = api_capsules(s);
	if (store_restore(s, copy, size, err, sizeof err) == -1) {
		CHECK(err[0] != '\0');
		after = api_capsules(s);
		CHECK(before != NULL && after != NULL &&
		      strcmp(before, after) == 0);
		free(after);
	}
	free(before);
	render(s);

	result_init(&r);
	r.check = CHECK_ERROR_PAGE;
	r.url = xstrdup("gemini://beta.example/nope");
	r.time = 1795881600;
	r.status = 51;
	r.end = END_CLOSE_NOTIFY;
	r.cert.present = 1;
	store_put(s, "beta", &r);
	r.check = CHECK_PAGE;
	store_put(s, "alpha", &r);
	result_clear(&r);
	render(s);

	store_free(s);
	free(copy);
	return 0;
}
