/*
 * UTF-8 well-formedness, the one validator of the program: configuration
 * lines and URLs are refused when ill-formed, and text that comes from
 * outside (a server's META, certificate names) on its way into JSON,
 * metric labels or HTML, which all require valid UTF-8, has its ill-formed
 * bytes replaced by U+FFFD.
 */
#ifndef GEMWATCH_UTF8_H
#define GEMWATCH_UTF8_H

#include <stddef.h>

#include "buf.h"

/* Length of the well-formed character at s[0..len), 0 when ill-formed. */
size_t utf8_char_len(const char *s, size_t len);
/* Whether s[0..len) is well-formed UTF-8. */
int utf8_valid(const char *s, size_t len);
/* Append s[0..len) to b with each ill-formed byte replaced by U+FFFD. */
void utf8_sanitize(struct buf *b, const char *s, size_t len);

#endif
