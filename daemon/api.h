/*
 * The JSON shape of results and capsules (SPEC.md §5, §6), via jansson.
 */
#ifndef GEMWATCH_API_H
#define GEMWATCH_API_H

#include <jansson.h>

#include "result.h"

struct store;

/*
 * json_dumps flags for these documents: compact, and reals (durations)
 * with 15 significant digits, so 0.106 prints as 0.106 and not as
 * jansson's default %.17g 0.10600000000000001.
 */
#define API_DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

/* A result as JSON (new reference; caller decrefs); capsule may be NULL.
 * NULL only when jansson runs out of memory, as for the two below. */
json_t *api_result(const struct probe_result *, const char *capsule);
/* /api/v1/capsules as compact JSON text (caller frees). */
char *api_capsules(struct store *);
/* /api/v1/capsules/NAME with history; NULL when no such capsule. */
char *api_capsule(struct store *, const char *name);
/*
 * /api/v1/capsules/NAME/<kind>: the last outcome of the capsule's runs of
 * kind (seq.h), every detail kept when full; NULL when there is none.
 */
char *api_seq(struct store *, const char *name, enum seq_kind, int full);

#endif
