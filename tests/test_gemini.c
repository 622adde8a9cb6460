/*
 * Unit tests for daemon/gemini.c: the response header parser, whole and
 * fed byte by byte, at and past the META limit, on malformed headers, and
 * the expect-status specs.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "gemini.h"
#include "tap.h"

/* Parse a NUL-terminated literal; *err is "" when not set. */
static int
parse(const char *s, struct gemini_header *h, const char **err)
{
	*err = "";
	memset(h, 0, sizeof(*h));
	return gemini_header_parse(s, strlen(s), h, err);
}

static void
test_valid(void)
{
	static const struct {
		const char *in;
		int status;
		const char *meta;
	} t[] = {
	    {"10 Enter a search term\r\n", 10, "Enter a search term"},
	    {"11 Password\r\n", 11, "Password"},
	    {"20 text/gemini; lang=en\r\n", 20, "text/gemini; lang=en"},
	    {"31 gemini://example.org/new\r\n", 31, "gemini://example.org/new"},
	    {"44 60\r\n", 44, "60"},
	    {"51 Not found\r\n", 51, "Not found"},
	    {"62 certificate not valid\r\n", 62, "certificate not valid"},
	    {"69 \r\n", 69, ""},
	    {"20 \r\n", 20, ""},
	    {"20  two spaces\r\n", 20, " two spaces"},
	};
	struct gemini_header h;
	const char *err;
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		is_int(parse(t[i].in, &h, &err), strlen(t[i].in),
		    "valid header %zu: length", i);
		is_int(h.status, t[i].status, "valid header %zu: status", i);
		is_str(h.meta, t[i].meta, "valid header %zu: meta", i);
		is_int(h.meta_len, strlen(t[i].meta),
		    "valid header %zu: meta_len", i);
	}

	/* Only the header is consumed; the body follows. */
	is_int(parse("20 text/plain\r\nhello\r\n", &h, &err), 15,
	    "header length excludes the body");
	is_str(h.meta, "text/plain", "meta stops at CRLF");
}

static void
test_malformed(void)
{
	static const struct {
		const char *in;
		const char *err;
	} t[] = {
	    {"2 text/gemini\r\n",
	        "header does not start with a two-digit status code"},
	    {"200 text/gemini\r\n", "status code has more than two digits"},
	    {"20text/gemini\r\n", "status code is not followed by a space"},
	    {"20\ttext/gemini\r\n", "status code is not followed by a space"},
	    {"20\r\n", "status code is not followed by a space"},
	    {"20 text/gemini\n", "header ends in LF without CR"},
	    {"20 text/gemini\rX\n", "CR in header not followed by LF"},
	    {"20 text/gemini\r\r\n", "CR in header not followed by LF"},
	    {"00 zero\r\n", "status code is not in the classes 1x to 6x"},
	    {"02 zero\r\n", "status code is not in the classes 1x to 6x"},
	    {"70 seven\r\n", "status code is not in the classes 1x to 6x"},
	    {"99 nine\r\n", "status code is not in the classes 1x to 6x"},
	    {"x0 text\r\n",
	        "header does not start with a two-digit status code"},
	    {" 20 text\r\n",
	        "header does not start with a two-digit status code"},
	    {"HTTP/1.1 200 OK\r\n",
	        "header does not start with a two-digit status code"},
	};
	struct gemini_header h;
	const char *err;
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		is_int(parse(t[i].in, &h, &err), -1, "malformed %zu: -1", i);
		is_str(err, t[i].err, "malformed %zu: message", i);
	}

	/* An embedded NUL inside META. */
	err = "";
	is_int(gemini_header_parse("20 text\0/gemini\r\n", 17, &h, &err), -1,
	    "NUL in META: -1");
	is_str(err, "NUL byte in META", "NUL in META: message");
}

static void
test_incomplete(void)
{
	struct gemini_header h;
	const char *err;

	is_int(gemini_header_parse("", 0, &h, &err), 0, "empty: need more");
	is_int(parse("2", &h, &err), 0, "\"2\": need more");
	is_int(parse("20", &h, &err), 0, "\"20\": need more");
	is_int(parse("20 ", &h, &err), 0, "\"20 \": need more");
	is_int(parse("20 text/gemini", &h, &err), 0, "no CRLF: need more");
	is_int(parse("20 text/gemini\r", &h, &err), 0, "CR: need more");
	/* Decided as early as possible. */
	is_int(parse("7", &h, &err), -1, "\"7\": never valid");
	is_int(parse("0", &h, &err), -1, "\"0\": never valid");
	is_int(parse("a", &h, &err), -1, "\"a\": never valid");
	is_int(parse("2a", &h, &err), -1, "\"2a\": never valid");
	is_int(parse("200", &h, &err), -1, "\"200\": never valid");
	is_int(parse("20\t", &h, &err), -1, "\"20<TAB>\": never valid");
	is_int(parse("20 x\n", &h, &err), -1, "LF alone: never valid");

	/* A buffer shorter than the string: nothing past len is read. */
	is_int(gemini_header_parse("20 ok\r\n", 6, &h, &err), 0,
	    "len stops before LF: need more");
	is_int(gemini_header_parse("20 ok\r\n", 7, &h, &err), 7,
	    "len at LF: complete");
}

/* "20 " + n bytes of META + CRLF, not NUL-terminated. */
static char *
long_header(size_t n, size_t *len)
{
	char *b;

	*len = 3 + n + 2;
	b = malloc(*len);
	memcpy(b, "20 ", 3);
	memset(b + 3, 'm', n);
	memcpy(b + 3 + n, "\r\n", 2);
	return b;
}

static void
test_meta_limit(void)
{
	struct gemini_header h;
	const char *err;
	char *b;
	size_t len, i;
	int r, bad;

	b = long_header(1024, &len);
	is_int(
	    len, GEMINI_HEADER_MAX, "1024-byte META makes the longest header");
	is_int(gemini_header_parse(b, len, &h, &err), 1029,
	    "1024-byte META: valid");
	is_int(h.meta_len, 1024, "1024-byte META: meta_len");
	is_int(strlen(h.meta), 1024, "1024-byte META: NUL-terminated");
	ok(h.meta[0] == 'm' && h.meta[1023] == 'm', "1024-byte META: copied");
	/* One byte at a time: need more until the LF arrives. */
	bad = 0;
	for (i = 0; i < len; i++) {
		/* Exact-size copies, so valgrind sees any read past len. */
		char *p = malloc(i + 1);

		memcpy(p, b, i);
		r = gemini_header_parse(p, i, &h, &err);
		if (r != 0 && bad == 0)
			bad = (int)i + 1;
		free(p);
	}
	is_int(bad, 0,
	    "1024-byte META: every prefix needs more (first "
	    "failing prefix + 1)");
	free(b);

	b = long_header(1025, &len);
	err = "";
	is_int(gemini_header_parse(b, len, &h, &err), -1,
	    "1025-byte META: invalid");
	is_str(err, "META longer than 1024 bytes", "1025-byte META: message");
	/* Prefixes: need more up to 1024 META bytes, -1 at the 1025th. */
	is_int(gemini_header_parse(b, 3 + 1024, &h, &err), 0,
	    "1025-byte META: 1024 bytes in, need more");
	is_int(gemini_header_parse(b, 3 + 1025, &h, &err), -1,
	    "1025-byte META: -1 once the 1025th byte arrives");
	bad = -1;
	for (i = 0; i <= len; i++) {
		r = gemini_header_parse(b, i, &h, &err);
		if (r == -1) {
			bad = (int)i;
			break;
		}
		if (r != 0)
			break;
	}
	is_int(bad, 3 + 1025, "1025-byte META: first prefix that fails");
	free(b);

	/* A CR as the 1025th META byte may still end a 1024-byte META. */
	b = long_header(1024, &len);
	is_int(gemini_header_parse(b, 3 + 1024 + 1, &h, &err), 0,
	    "1024-byte META then CR: need more");
	free(b);
}

static void
test_non_utf8(void)
{
	struct gemini_header h;
	const char *err;
	const char in[] = "20 text/plain; x=\xff\xfe\xc3(\x80\r\n";

	is_int(gemini_header_parse(in, sizeof(in) - 1, &h, &err),
	    sizeof(in) - 1, "non-UTF-8 META: valid");
	is_int(h.meta_len, 19, "non-UTF-8 META: meta_len");
	ok(memcmp(h.meta, "text/plain; x=\xff\xfe\xc3(\x80", 20) == 0,
	    "non-UTF-8 META: bytes copied as they are");

	/* Other control bytes are not the parser's business. */
	is_int(parse("20 a\tb\x7f\r\n", &h, &err), 9, "TAB and DEL in META");
	is_str(h.meta, "a\tb\x7f", "TAB and DEL copied");
}

static void
test_status_spec(void)
{
	static const struct {
		const char *in;
		const char *err;
	} bad[] = {
	    {"", "empty status list"},
	    {"20,", "empty item in status list"},
	    {",20", "empty item in status list"},
	    {"20,,31", "empty item in status list"},
	    {"200", "a status must be a code like 20 or a class like 2x"},
	    {"2", "a status must be a code like 20 or a class like 2x"},
	    {"20, 31", "a status must be a code like 20 or a class like 2x"},
	    {" 20", "a status must be a code like 20 or a class like 2x"},
	    {"2y", "a status must be a code like 20 or a class like 2x"},
	    {"xx", "a status must be in the classes 1x to 6x"},
	    {"09", "a status must be in the classes 1x to 6x"},
	    {"7x", "a status must be in the classes 1x to 6x"},
	    {"70", "a status must be in the classes 1x to 6x"},
	    {"x2", "a status must be in the classes 1x to 6x"},
	};
	struct status_spec s;
	const char *err;
	size_t i;
	int code, n;

	status_spec_default(&s);
	n = 0;
	for (code = 0; code < 100; code++)
		n += status_spec_match(&s, code);
	is_int(n, 10, "default: ten codes");
	ok(status_spec_match(&s, 20) && status_spec_match(&s, 29),
	    "default: 20 and 29");
	ok(!status_spec_match(&s, 19) && !status_spec_match(&s, 30),
	    "default: not 19 nor 30");
	ok(!status_spec_match(&s, -1) && !status_spec_match(&s, 100) &&
	        !status_spec_match(&s, 1000),
	    "out of range never matches");

	is_int(status_spec_parse("20", 2, &s, &err), 0, "\"20\" parses");
	n = 0;
	for (code = 0; code < 100; code++)
		n += status_spec_match(&s, code);
	is_int(n, 1, "\"20\": one code");
	ok(status_spec_match(&s, 20), "\"20\": matches 20");

	is_int(status_spec_parse("5X", 2, &s, &err), 0, "\"5X\" parses");
	ok(status_spec_match(&s, 50) && status_spec_match(&s, 59) &&
	        !status_spec_match(&s, 60) && !status_spec_match(&s, 49),
	    "\"5X\": 50..59");

	is_int(status_spec_parse("20,31,4x", 8, &s, &err), 0,
	    "\"20,31,4x\" parses");
	n = 0;
	for (code = 0; code < 100; code++)
		n += status_spec_match(&s, code);
	is_int(n, 12, "\"20,31,4x\": twelve codes");
	ok(status_spec_match(&s, 20) && status_spec_match(&s, 31) &&
	        status_spec_match(&s, 40) && status_spec_match(&s, 49) &&
	        !status_spec_match(&s, 30) && !status_spec_match(&s, 21),
	    "\"20,31,4x\": the right ones");

	is_int(status_spec_parse("1x,6x", 5, &s, &err), 0, "\"1x,6x\" parses");
	ok(status_spec_match(&s, 10) && status_spec_match(&s, 69) &&
	        !status_spec_match(&s, 20),
	    "\"1x,6x\": bits across both words");

	/* len shorter than the string. */
	is_int(status_spec_parse("20,31", 2, &s, &err), 0,
	    "len 2 of \"20,31\" parses");
	ok(status_spec_match(&s, 20) && !status_spec_match(&s, 31),
	    "len 2 of \"20,31\": only 20");

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		status_spec_default(&s);
		err = "";
		is_int(
		    status_spec_parse(bad[i].in, strlen(bad[i].in), &s, &err),
		    -1, "bad spec \"%s\": -1", bad[i].in);
		is_str(err, bad[i].err, "bad spec \"%s\": message", bad[i].in);
		ok(status_spec_match(&s, 20) && !status_spec_match(&s, 31),
		    "bad spec \"%s\": spec left alone", bad[i].in);
	}
}

int
main(void)
{
	test_valid();
	test_malformed();
	test_incomplete();
	test_meta_limit();
	test_non_utf8();
	test_status_spec();
	return done_testing();
}
