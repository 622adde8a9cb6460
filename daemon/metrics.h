/*
 * Prometheus text exposition (format 0.0.4). One table maps a probe
 * result to metric samples; it serves both /metrics (gemini_* per capsule
 * and check) and /probe (blackbox-style probe_* for one result).
 */
#ifndef GEMWATCH_METRICS_H
#define GEMWATCH_METRICS_H

#include "buf.h"
#include "result.h"

struct notify;
struct store;

struct daemon_info {
	const char *version;
	double start_time;     /* Unix seconds */
	struct notify *notify; /* for gemwatch_notify_total, or NULL */
};

/* The capsules' samples of the last render, reused while they hold. */
struct metrics_cache;
struct metrics_cache *metrics_cache_new(void);
void metrics_cache_free(struct metrics_cache *);
/*
 * Render /metrics from the store (takes the read lock itself), reusing
 * the cache's text while it holds (thread-safe). In two parts, so that
 * scrapes share the capsules' samples rather than copy them: the returned
 * text (a reference the caller releases) then what rest holds (appended
 * to it).
 */
struct metrics_text;
struct metrics_text *metrics_render_shared(struct buf *rest,
    struct metrics_cache *, struct store *, const struct daemon_info *);
/*
 * A text too large to keep (some thousands of capsules) as a stream
 * instead: the capsules' samples rendered a few capsules at a time as
 * they are read, each piece under the store's read lock, then the rest.
 * NULL when the text is small enough for metrics_render_shared.
 */
struct metrics_stream;
struct metrics_stream *metrics_stream_new(
    struct metrics_cache *, struct store *, const struct daemon_info *);
/*
 * Up to max bytes of the text into dst: how many, 0 at its end, or -1
 * when a reload changed the capsules under it: the answer must be cut
 * short rather than repeat or miss series.
 */
long metrics_stream_read(struct metrics_stream *, char *dst, size_t max);
void metrics_stream_free(struct metrics_stream *);
/* The text's bytes, valid while the reference is held. */
const char *metrics_text_data(const struct metrics_text *, size_t *len);
/* Drop a reference; thread-safe; NULL is fine. */
void metrics_text_release(struct metrics_text *);
/* Render /probe's answer for one result. */
void metrics_probe(struct buf *, const struct probe_result *);
/* Append s escaped as a label value (\\, \", \n); ill-formed UTF-8
 * becomes U+FFFD, as Prometheus rejects a scrape that is not UTF-8, and
 * so does every other control but tab (C0, DEL, C1: utf8_control_len),
 * which a person reading /metrics in a terminal would get obeyed. */
void metrics_escape_label(struct buf *, const char *s);

#endif
