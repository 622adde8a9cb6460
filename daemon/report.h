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
/* How the response ended, in words ("complete: close_notify received"). */
const char *report_end_words(enum end);
/* Append the report of r to b; bytes from outside are escaped. */
void report_text(struct buf *b, const struct probe_result *r);

#endif
