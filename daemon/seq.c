/*
 * The kinds of runs of requests, and the driver that runs one on the
 * calling thread: each request probed with engine_run, the pause before
 * it slept through (nanosleep, resumed after a signal).
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <time.h>

#include "crawl.h"
#include "diagnose.h"
#include "engine.h"
#include "probe.h"
#include "seq.h"

static const struct seq_ops *const kinds[SEQ__COUNT] = {
    [SEQ_CRAWL] = &crawl_ops,
    [SEQ_DIAGNOSE] = &diagnose_ops,
};

const struct seq_ops *
seq_ops(enum seq_kind k)
{
	return k < SEQ__COUNT ? kinds[k] : NULL;
}

int
seq_kind_find(const char *name, size_t len)
{
	const char *s;
	int k;

	for (k = 0; k < SEQ__COUNT; k++) {
		s = seq_name(k);
		if (strlen(s) == len && memcmp(s, name, len) == 0)
			return k;
	}
	return -1;
}

double
seq_outcome_time(const json_t *outcome)
{
	json_t *t = json_object_get(outcome, "timestamp");

	return json_is_number(t) ? json_number_value(t) : 0;
}

static void
pause_for(double seconds)
{
	struct timespec ts;

	if (!(seconds > 0))
		return;
	ts.tv_sec = (time_t)seconds;
	ts.tv_nsec = (long)((seconds - floor(seconds)) * 1e9);
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

json_t *
seq_run(const struct seq_ops *ops, void *run)
{
	const struct probe_req *req;
	struct probe_result res, *prev = NULL;
	double pause = 0;

	result_init(&res);
	while ((req = ops->next(run, prev, &pause)) != NULL) {
		pause_for(pause);
		result_clear(&res);
		(void)engine_run(req, &res);
		prev = &res;
	}
	result_clear(&res);
	return ops->end(run);
}
