/*
 * FNV-1a 64 (Fowler, Noll, Vo): one multiply and one xor per byte.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>

#include "hash.h"

#define FNV64_PRIME UINT64_C(1099511628211)

uint64_t
hash_bytes(uint64_t h, const void *p, size_t len)
{
	const unsigned char *c = p;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= c[i];
		h *= FNV64_PRIME;
	}
	return h;
}
