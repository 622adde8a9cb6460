/*
 * Fuzz target for metrics_escape_label: arbitrary bytes (cut at the first
 * NUL, as a C string) are escaped, embedded in a sample line and read back
 * the way a Prometheus parser reads a label value. The value must end at
 * the closing quote, hold no raw newline and use only the \\, \" and \n
 * escapes, the line must be valid UTF-8, and the value read back must be
 * the input with ill-formed UTF-8 and controls but newline and tab (C0,
 * DEL, C1) replaced by U+FFFD, as the escaper does: no ESC or CSI reaches
 * whoever reads /metrics in a terminal.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fuzz.h"
#include "metrics.h"
#include "utf8.h"
#include "xmalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/*
 * Read the label value that starts at line[0] (just after the opening
 * quote) into out; return the length consumed up to and including the
 * closing quote, or 0 when a parser would reject it.
 */
static size_t
parse_value(const char *line, size_t len, struct buf *out)
{
	size_t i;

	for (i = 0; i < len; i++) {
		switch (line[i]) {
		case '"':
			return i + 1;
		case '\n':
			return 0;
		case '\\':
			if (++i == len)
				return 0;
			if (line[i] == '\\' || line[i] == '"')
				buf_addc(out, line[i]);
			else if (line[i] == 'n')
				buf_addc(out, '\n');
			else
				return 0;
			break;
		default:
			buf_addc(out, line[i]);
		}
	}
	return 0;
}

/* What the value must read back as: s (well-formed) with its controls
 * but newline and tab replaced. */
static void
expected(struct buf *out, const char *s, size_t len)
{
	size_t i = 0, n;

	while (i < len) {
		if (s[i] != '\n' && s[i] != '\t' &&
		    (n = utf8_control_len(s + i, len - i)) != 0) {
			buf_adds(out, "\xef\xbf\xbd");
			i += n;
		} else
			buf_addc(out, s[i++]);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf line, back, want, clean;
	char *copy;
	size_t len, start, used;

	copy = xmalloc(size + 1);
	memcpy(copy, data, size);
	copy[size] = '\0';
	len = strlen(copy);

	buf_init(&line);
	buf_init(&back);
	buf_init(&want);
	buf_adds(&line, "x{v=\"");
	start = line.len;
	metrics_escape_label(&line, copy);
	buf_adds(&line, "\"} 1\n");

	CHECK(utf8_valid(line.data, line.len));
	CHECK(memchr(line.data, '\n', line.len) == line.data + line.len - 1);
	used = parse_value(line.data + start, line.len - start, &back);
	CHECK(used != 0);
	CHECK(strcmp(line.data + start + used, "} 1\n") == 0);

	buf_init(&clean);
	utf8_sanitize(&clean, copy, len);
	expected(&want, clean.data != NULL ? clean.data : "", clean.len);
	CHECK(back.len == want.len);
	CHECK(back.len == 0 || memcmp(back.data, want.data, want.len) == 0);
	if (utf8_valid(copy, len))
		CHECK(clean.len == len &&
		      (len == 0 || memcmp(clean.data, copy, len) == 0));
	CHECK(strchr(back.data != NULL ? back.data : "", '\x1b') == NULL);
	CHECK(strstr(back.data != NULL ? back.data : "", "\xc2\x9b") == NULL);
	buf_free(&clean);

	buf_free(&line);
	buf_free(&back);
	buf_free(&want);
	free(copy);
	return 0;
}
