/*
 * The Gemini response header and status expectations. Pure parsers:
 * no I/O, fuzzed.
 */
#ifndef GEMWATCH_GEMINI_H
#define GEMWATCH_GEMINI_H

#include <stddef.h>
#include <stdint.h>

#define GEMINI_META_MAX 1024 /* longest META allowed (bytes) */
/* The longest header: two digits, a space, META, CRLF. */
#define GEMINI_HEADER_MAX (2 + 1 + GEMINI_META_MAX + 2)

struct gemini_header {
	int status;                     /* 10..69 */
	char meta[GEMINI_META_MAX + 1]; /* NUL-terminated */
	size_t meta_len;
};

/*
 * Parse a header at the start of buf[0..len).
 * Returns the header's length including CRLF (> 0) when a valid header
 * is complete, 0 when more bytes are needed (and could still make a valid
 * header), -1 when the bytes can never form a valid header; then *err
 * points at a static message.
 */
int gemini_header_parse(
    const char *buf, size_t len, struct gemini_header *h, const char **err);

/* Which status codes are acceptable: "20", "2x", "20,31,4x". */
struct status_spec {
	uint64_t bits[2]; /* bit n set: code n (0..99) accepted */
};

/* Parse a spec; 0 on success, -1 (with *err) otherwise. */
int status_spec_parse(
    const char *buf, size_t len, struct status_spec *s, const char **err);
int status_spec_match(const struct status_spec *, int status);
/* The default spec, "2x". */
void status_spec_default(struct status_spec *);

#endif
