/*
 * The libFuzzer entry point every tests/fuzz/fuzz_NAME.c defines. Built
 * normally, replay.c's main() feeds it the committed corpus; built with
 * --enable-fuzzing, libFuzzer drives it.
 */
#ifndef GEMWATCH_FUZZ_H
#define GEMWATCH_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Abort, saying where (the file names the target), on a broken cond. */
#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(                                               \
			    stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                               \
		}                                                              \
	} while (0)

/* Run one input; abort() on a broken invariant. Always returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
