/*
 * A probe result in words, for a person: the report of "gemwatch probe"
 * and of /probe?debug=true.
 */
#ifndef GEMWATCH_REPORT_H
#define GEMWATCH_REPORT_H

#include "buf.h"
#include "result.h"

/* Append s (NULL: nothing) with control bytes and backslashes escaped. */
void report_safe(struct buf *, const char *s);
/* Append the report of r to b; bytes from outside are escaped. */
void report_text(struct buf *b, const struct probe_result *r);
/* Append the stages of r, a line each, for /probe?debug=true. */
void report_stages(struct buf *b, const struct probe_result *r);

#endif
