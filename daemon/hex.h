/*
 * Hexadecimal digits, both ways: fingerprints, percent-decoding.
 */
#ifndef GEMWATCH_HEX_H
#define GEMWATCH_HEX_H

#include <stddef.h>

/* The byte the two hex digits (either case) at s spell, or -1. */
int hex_byte(const char *s);
/* Write n bytes as 2n lower-case digits and a NUL into out. */
void hex_encode(const unsigned char *p, size_t n, char *out);

#endif
