/*
 * The libFuzzer entry point every tests/fuzz/fuzz_NAME.c defines. Built
 * normally, replay.c's main() feeds it the committed corpus; built with
 * --enable-fuzzing, libFuzzer drives it.
 */
#ifndef GEMWATCH_FUZZ_H
#define GEMWATCH_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* Run one input; abort() on a broken invariant. Always returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
