/*
 * Allocation that cannot fail: running out of memory is fatal at once
 * (tmux's xmalloc). Everything gemwatch's own code allocates goes through
 * here; the libraries (GnuTLS, jansson, libmicrohttpd, regcomp,
 * getaddrinfo) allocate for themselves and report failure their own way.
 */
#ifndef GEMWATCH_XMALLOC_H
#define GEMWATCH_XMALLOC_H

#include <stdarg.h>
#include <stddef.h>

void *xmalloc(size_t);
void *xcalloc(size_t, size_t);
void *xreallocarray(void *, size_t, size_t);
char *xstrdup(const char *);
char *xstrndup(const char *, size_t);
int xasprintf(char **, const char *, ...) __attribute__((format(printf, 2, 3)));
int xvasprintf(char **, const char *, va_list)
    __attribute__((format(printf, 2, 0)));

#endif
