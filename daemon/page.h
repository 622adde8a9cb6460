/*
 * The HTML status page at "/": one row per capsule and check, failing
 * ones first. Everything that came from a server or the config is escaped.
 */
#ifndef GEMWATCH_PAGE_H
#define GEMWATCH_PAGE_H

#include "buf.h"
#include "result.h"

struct store;

/* Render the page into b (takes the store's read lock itself). */
void page_render(struct buf *b, struct store *, double now);
/*
 * The page of a capsule's last run of kind (/<kind>?capsule=NAME) into
 * b; -1 when there is none (takes the read lock itself).
 */
int page_seq(struct buf *b, struct store *, const char *name, enum seq_kind);
/* Append s with &, <, >, ", ' escaped. */
void html_escape(struct buf *, const char *s);

#endif
