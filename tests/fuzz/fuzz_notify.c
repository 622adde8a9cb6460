/*
 * Fuzz target for the notifier's state file (state-dir/notify.state),
 * which notify_new reads as hostile: the input is written to a file and
 * loaded as at a daemon's start. The notifier then follows a
 * configuration of two capsules (alpha with a crawl and diagnose runs,
 * beta with neither), is fed a failed probe and runs with problems and
 * without, and saves its state when freed. Whatever the file held,
 * nothing crashes, leaks or aborts, and the file it writes loads back as
 * JSON.
 */
#include "config.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "fuzz.h"
#include "log.h"
#include "notify.h"
#include "result.h"

#define T0 1.8e9 /* a time of the runs, after any the file may hold */

static void
feed(struct notify *n, const struct capsule_conf *c, int bad)
{
	struct probe_result r;
	json_t *crawl, *diag;

	memset(&r, 0, sizeof r);
	r.check = CHECK_PAGE;
	r.url = c->url.text;
	r.time = T0;
	r.status = bad ? 40 : 20;
	r.success = !bad;
	r.reason = bad ? REASON_STATUS : REASON_NONE;
	r.end = END_CLOSE_NOTIFY;
	notify_result(n, c, CHECK_PAGE, &r);

	crawl = json_pack("{s:f, s:i, s:i, s:i, s:i, s:[{s:s, s:i, s:s}]}",
	    "timestamp", T0, "pages", 3, "failed", bad, "broken_links", bad,
	    "without_close_notify", 0, "failures", "url",
	    "gemini://alpha.example/gone", "status", 51, "reason", "status");
	CHECK(crawl != NULL);
	if (!bad)
		json_array_clear(json_object_get(crawl, "failures"));
	notify_run(n, c, SEQ_CRAWL, crawl);
	json_decref(crawl);

	diag = json_pack("{s:f, s:{s:i, s:i}, s:[{s:s, s:s}, {s:s, s:s}]}",
	    "timestamp", T0, "counts", "pass", 1, "fail", bad, "checks", "name",
	    "URLUserinfo", "verdict", bad ? "fail" : "pass", "name",
	    "PageNotFound", "verdict", "pass");
	CHECK(diag != NULL);
	notify_run(n, c, SEQ_DIAGNOSE, diag);
	json_decref(diag);
}

/*
 * A directory of our own for the state file and its temporary twin,
 * made by mkdtemp at the first input (the template's Xs are its name).
 */
static char path[] = "/tmp/gemwatch-fuzz-notify.XXXXXX";
static int made;

static void
cleanup(void)
{
	rmdir(path);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char file[sizeof path + 16];
	struct capsule_conf caps[2];
	struct conf conf;
	struct notify *n;
	json_error_t err;
	json_t *back;
	FILE *fp;
	int bad;

	log_init(LOG_LEVEL_ERR);
	if (!made) {
		CHECK(mkdtemp(path) != NULL);
		made = 1;
		atexit(cleanup);
	}
	snprintf(file, sizeof file, "%s/notify.state", path);
	CHECK((fp = fopen(file, "wb")) != NULL);
	CHECK(fwrite(data, 1, size, fp) == size || size == 0);
	CHECK(fclose(fp) == 0);

	memset(&conf, 0, sizeof conf);
	memset(caps, 0, sizeof caps);
	conf.shard_k = conf.shard_n = 1;
	conf.notify_after = 1;
	conf.notify_repeat = 60;
	conf.notify_cert_days = 14;
	conf.notify_timeout = 30;
	conf.capsules = caps;
	conf.ncapsules = 2;
	caps[0].name = "alpha";
	caps[0].url.text = "gemini://alpha.example/";
	caps[0].notify = 1;
	caps[0].crawl = 5;
	caps[0].crawl_interval = 3600;
	caps[0].diagnose = 86400;
	caps[1].name = "beta";
	caps[1].url.text = "gemini://beta.example/";
	caps[1].notify = 1;

	n = notify_new(file);
	notify_apply(n, &conf);
	for (bad = 1; bad >= 0; bad--) {
		feed(n, &caps[0], bad);
		feed(n, &caps[1], bad);
	}
	notify_free(n);

	/* What was saved is JSON, and loads back. */
	CHECK((back = json_load_file(file, 0, &err)) != NULL);
	CHECK(json_is_object(back));
	json_decref(back);
	n = notify_new(file);
	notify_free(n);
	unlink(file);
	return 0;
}
