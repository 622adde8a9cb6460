/*
 * FNV-1a, 64 bits: the one hash of the program (the shard rule, the
 * snapshot's trailer, the store's dedup of sites and facts, the metrics
 * cache's fingerprint). Fast, stable across versions and machines, not
 * for anything an attacker may choose to collide.
 */
#ifndef GEMWATCH_HASH_H
#define GEMWATCH_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_INIT UINT64_C(14695981039346656037) /* FNV-1a 64 offset basis */

/* Continue hash h over p[0..len); start with HASH_INIT. */
uint64_t hash_bytes(uint64_t h, const void *p, size_t len);

#endif
