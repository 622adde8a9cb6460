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
/*
 * Length of the control character at s[0..len): 1 for C0 (tab and
 * newline included) and DEL, 2 for C1 (U+0080 to U+009F, which some
 * terminals obey as ESC sequences: U+009B is CSI); 0 for anything else.
 * Every output of outside text decides what a control becomes by this.
 */
size_t utf8_control_len(const char *s, size_t len);
/*
 * Append s[0..len) as text for a terminal or a plain-text page, on one
 * line: each byte of a control character or of ill-formed UTF-8 as \xNN,
 * a backslash as \\, the rest as it is.
 */
void utf8_escape_text(struct buf *b, const char *s, size_t len);

#endif
