/*
 * The Gemini response header, "<2 digits><SPACE><META>CRLF" (SPEC §4),
 * and the expect-status specs ("20", "2x", "20,31,4x"). The header parser
 * is incremental: the probe calls it again as bytes arrive, so it tells
 * "need more" apart from "can never be valid" and decides the latter as
 * early as the bytes allow. Both parsers read only within len.
 */
#include "config.h"

#include <string.h>

#include "gemini.h"

#define GEMINI_SET_ERR(err, msg)                                               \
	do {                                                                   \
		if ((err) != NULL)                                             \
			*(err) = (msg);                                        \
	} while (0)

int
gemini_header_parse(
    const char *buf, size_t len, struct gemini_header *h, const char **err)
{
	size_t i, meta_len;

	if (len == 0)
		return 0;
	if (buf[0] < '0' || buf[0] > '9') {
		GEMINI_SET_ERR(err, "header does not start with a two-digit "
		                    "status code");
		return -1;
	}
	if (buf[0] < '1' || buf[0] > '6') {
		GEMINI_SET_ERR(err, "status code is not in the classes 1x to "
		                    "6x");
		return -1;
	}
	if (len == 1)
		return 0;
	if (buf[1] < '0' || buf[1] > '9') {
		GEMINI_SET_ERR(err, "header does not start with a two-digit "
		                    "status code");
		return -1;
	}
	if (len == 2)
		return 0;
	if (buf[2] >= '0' && buf[2] <= '9') {
		GEMINI_SET_ERR(err, "status code has more than two digits");
		return -1;
	}
	if (buf[2] != ' ') {
		GEMINI_SET_ERR(err, "status code is not followed by a space");
		return -1;
	}

	for (i = 3; i < len; i++) {
		switch (buf[i]) {
		case '\r':
			if (i + 1 == len)
				return 0;
			if (buf[i + 1] != '\n') {
				GEMINI_SET_ERR(err, "CR in header not followed "
				                    "by LF");
				return -1;
			}
			meta_len = i - 3;
			h->status = (buf[0] - '0') * 10 + (buf[1] - '0');
			memcpy(h->meta, buf + 3, meta_len);
			h->meta[meta_len] = '\0';
			h->meta_len = meta_len;
			return (int)(i + 2);
		case '\n':
			GEMINI_SET_ERR(err, "header ends in LF without CR");
			return -1;
		case '\0':
			GEMINI_SET_ERR(err, "NUL byte in META");
			return -1;
		default:
			if (i - 3 >= GEMINI_META_MAX) {
				GEMINI_SET_ERR(err, "META longer than 1024 "
				                    "bytes");
				return -1;
			}
			break;
		}
	}
	return 0;
}

static void
status_spec_set(struct status_spec *s, int code)
{
	s->bits[code / 64] |= (uint64_t)1 << (code % 64);
}

int
status_spec_parse(
    const char *buf, size_t len, struct status_spec *s, const char **err)
{
	struct status_spec spec;
	size_t i, start;
	int code, k;

	memset(&spec, 0, sizeof(spec));
	if (len == 0) {
		GEMINI_SET_ERR(err, "empty status list");
		return -1;
	}
	for (start = 0; start <= len; start = i + 1) {
		for (i = start; i < len && buf[i] != ','; i++)
			;
		if (i == start) {
			GEMINI_SET_ERR(err, "empty item in status list");
			return -1;
		}
		if (i - start != 2) {
			GEMINI_SET_ERR(err, "a status must be a code like 20 "
			                    "or a class like 2x");
			return -1;
		}
		if (buf[start] < '1' || buf[start] > '6') {
			GEMINI_SET_ERR(err, "a status must be in the classes "
			                    "1x to 6x");
			return -1;
		}
		code = (buf[start] - '0') * 10;
		if (buf[start + 1] == 'x' || buf[start + 1] == 'X') {
			for (k = 0; k < 10; k++)
				status_spec_set(&spec, code + k);
		} else if (buf[start + 1] >= '0' && buf[start + 1] <= '9')
			status_spec_set(&spec, code + buf[start + 1] - '0');
		else {
			GEMINI_SET_ERR(err, "a status must be a code like 20 "
			                    "or a class like 2x");
			return -1;
		}
	}
	*s = spec;
	return 0;
}

int
status_spec_match(const struct status_spec *s, int status)
{
	if (status < 0 || status > 99)
		return 0;
	return (s->bits[status / 64] >> (status % 64)) & 1;
}

void
status_spec_default(struct status_spec *s)
{
	const char *err;

	(void)status_spec_parse("2x", 2, s, &err);
}
