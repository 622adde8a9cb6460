/*
 * text/gemini, as far as a crawl reads it: lines, the preformatted
 * toggle and link lines. Pure: no I/O, fuzzed.
 */
#ifndef GEMWATCH_GEMTEXT_H
#define GEMWATCH_GEMTEXT_H

#include <stddef.h>

/* The longest line kept; a longer one's link is not read. */
#define GEMTEXT_LINE_MAX 4096

/*
 * Whether the line line[0..len) (without its CR LF) is a link line
 * ("=>", blanks, the URL, then blanks and a label); if so, point *ref
 * and *reflen at the URL within line and return 1, else 0.
 */
int gemtext_link(
    const char *line, size_t len, const char **ref, size_t *reflen);

/* A body read piece by piece, giving the link lines' URLs. */
struct gemtext {
	char line[GEMTEXT_LINE_MAX];
	size_t len;
	int too_long; /* the line being read passed GEMTEXT_LINE_MAX */
	int pre;      /* inside a preformatted block */
};

void gemtext_init(struct gemtext *);
/*
 * Feed data[0..n); link(arg, ref, reflen) is called for each link found
 * outside preformatted blocks (ref borrowed during the call).
 */
void gemtext_feed(struct gemtext *, const char *data, size_t n,
    void (*link)(void *arg, const char *ref, size_t reflen), void *arg);
/* The body has ended: a last line without a newline counts. */
void gemtext_end(struct gemtext *,
    void (*link)(void *arg, const char *ref, size_t reflen), void *arg);

#endif
