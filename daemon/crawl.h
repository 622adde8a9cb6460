/*
 * The crawl: a run of requests (seq.h) that fetches a capsule's pages
 * breadth first from its URL, following text/gemini links and 3x
 * redirects on the same host and port, each URL once, at most `crawl`
 * pages, honouring robots.txt for "*" and "researcher"; other hosts and
 * schemes are counted, never fetched. Its state is the URLs seen and the
 * pages' results (never a body); its outcome lists the failing pages
 * with the page that links to them.
 */
#ifndef GEMWATCH_CRAWL_H
#define GEMWATCH_CRAWL_H

#include "seq.h"

/* The most pages a crawl may be given (crawl=N, gemwatch crawl -n). */
#define CRAWL_MAX 10000

extern const struct seq_ops crawl_ops;

/* The report of an outcome in words, failing pages first (gemwatch crawl). */
void crawl_report(struct buf *, const json_t *outcome);

#endif
