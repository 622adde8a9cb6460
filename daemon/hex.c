/*
 * Hexadecimal digits, both ways.
 */
#include "config.h"

#include "hex.h"

/* The value of one hex digit (either case), or -1. */
static int
digit(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

int
hex_byte(const char *s)
{
	int hi, lo;

	/* s[1] is not read past a NUL at s[0]. */
	if ((hi = digit(s[0])) == -1 || (lo = digit(s[1])) == -1)
		return -1;
	return hi << 4 | lo;
}

void
hex_encode(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}
