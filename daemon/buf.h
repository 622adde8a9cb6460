/*
 * A growable byte buffer for building text output (metrics, HTML).
 * The buffer owns its memory; buf_steal hands it to the caller.
 */
#ifndef GEMWATCH_BUF_H
#define GEMWATCH_BUF_H

#include <stddef.h>

struct buf {
	char *data; /* always NUL-terminated once anything was added */
	size_t len;
	size_t cap;
};

void buf_init(struct buf *);
void buf_free(struct buf *);
void buf_add(struct buf *, const void *, size_t);
void buf_adds(struct buf *, const char *);
void buf_addc(struct buf *, char);
void buf_printf(struct buf *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
/* Return the contents (NUL-terminated, caller frees) and reset the buffer. */
char *buf_steal(struct buf *, size_t *len);

#endif
