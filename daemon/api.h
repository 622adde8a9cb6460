/*
 * The JSON shape of results and capsules (SPEC.md §5, §6), via jansson.
 */
#ifndef GEMWATCH_API_H
#define GEMWATCH_API_H

#include <jansson.h>

#include "result.h"

struct store;

/* A result as JSON (new reference; caller decrefs). */
json_t *api_result(const struct probe_result *, const char *capsule);
/* /api/v1/capsules as compact JSON text (caller frees). */
char *api_capsules(struct store *);
/* /api/v1/capsules/NAME with history; NULL when no such capsule. */
char *api_capsule(struct store *, const char *name);

#endif
