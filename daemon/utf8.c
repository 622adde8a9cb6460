/*
 * UTF-8 validation per Unicode Table 3-7 (no overlong forms, no
 * surrogates, nothing above U+10FFFF) and repair with U+FFFD, one per
 * ill-formed byte; which characters are controls, and their escape for a
 * terminal. Used wherever outside text leaves the program.
 */
#include "config.h"

#include <stddef.h>

#include "buf.h"
#include "utf8.h"

#define REPLACEMENT "\xef\xbf\xbd" /* U+FFFD */

static int
cont(unsigned char c)
{
	return c >= 0x80 && c <= 0xbf;
}

size_t
utf8_char_len(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (len == 0)
		return 0;
	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		if (p[0] == 0xe0)
			lo = 0xa0; /* overlong */
		else if (p[0] == 0xed)
			hi = 0x9f; /* surrogates */
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		if (p[0] == 0xf0)
			lo = 0x90; /* overlong */
		else if (p[0] == 0xf4)
			hi = 0x8f; /* above U+10FFFF */
	} else
		return 0;
	if (len < n || p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (!cont(p[i]))
			return 0;
	return n;
}

int
utf8_valid(const char *s, size_t len)
{
	size_t i = 0, n;

	while (i < len) {
		if ((unsigned char)s[i] < 0x80) {
			i++;
			continue;
		}
		if ((n = utf8_char_len(s + i, len - i)) == 0)
			return 0;
		i += n;
	}
	return 1;
}

void
utf8_sanitize(struct buf *b, const char *s, size_t len)
{
	size_t i = 0, start = 0, n;

	while (i < len) {
		if ((unsigned char)s[i] < 0x80) {
			i++;
			continue;
		}
		if ((n = utf8_char_len(s + i, len - i)) != 0) {
			i += n;
			continue;
		}
		buf_add(b, s + start, i - start);
		buf_add(b, REPLACEMENT, sizeof REPLACEMENT - 1);
		start = ++i;
	}
	buf_add(b, s + start, i - start);
}

size_t
utf8_control_len(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;

	if (len == 0)
		return 0;
	if (p[0] < 0x20 || p[0] == 0x7f)
		return 1;
	if (len >= 2 && p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
		return 2;
	return 0;
}

void
utf8_escape_text(struct buf *b, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, start = 0, n = 0, k;

	while (i < len) {
		k = p[i] < 0x80 ? 1 : utf8_char_len(s + i, len - i);
		if (p[i] != '\\' && k != 0 &&
		    (n = utf8_control_len(s + i, len - i)) == 0) {
			i += k;
			continue;
		}
		buf_add(b, s + start, i - start);
		if (p[i] == '\\') {
			buf_adds(b, "\\\\");
			i++;
		} else if (k == 0) /* an ill-formed byte */
			buf_printf(b, "\\x%02x", p[i++]);
		else
			for (; n > 0; n--)
				buf_printf(b, "\\x%02x", p[i++]);
		start = i;
	}
	buf_add(b, s + start, i - start);
}
