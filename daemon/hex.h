/*
 * Hexadecimal digits, both ways: fingerprints, percent-decoding.
 */
#ifndef GEMWATCH_HEX_H
#define GEMWATCH_HEX_H

#include <stddef.h>

/* The value of one hex digit (either case), or -1. */
int hex_value(char);
/* Write n bytes as 2n lower-case digits and a NUL into out. */
void hex_encode(const unsigned char *p, size_t n, char *out);

#endif
