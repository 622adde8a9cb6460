/*
 * text/gemini link lines (gemtext.h). A line is what comes before LF, a
 * CR before it dropped; "```" at the start of a line toggles the
 * preformatted mode, in which "=>" is text.
 */
#include "config.h"

#include <string.h>

#include "gemtext.h"

int
gemtext_link(const char *line, size_t len, const char **ref, size_t *reflen)
{
	size_t i = 2, start;

	if (len < 3 || line[0] != '=' || line[1] != '>')
		return 0;
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	start = i;
	while (i < len && line[i] != ' ' && line[i] != '\t')
		i++;
	if (i == start)
		return 0;
	*ref = line + start;
	*reflen = i - start;
	return 1;
}

void
gemtext_init(struct gemtext *g)
{
	memset(g, 0, sizeof *g);
}

static void
line_end(
    struct gemtext *g, void (*link)(void *, const char *, size_t), void *arg)
{
	const char *ref;
	size_t len = g->len, reflen;

	if (len > 0 && g->line[len - 1] == '\r')
		len--;
	if (len >= 3 && memcmp(g->line, "```", 3) == 0)
		g->pre = !g->pre;
	else if (!g->pre && !g->too_long &&
	         gemtext_link(g->line, len, &ref, &reflen))
		link(arg, ref, reflen);
	g->len = 0;
	g->too_long = 0;
}

void
gemtext_feed(struct gemtext *g, const char *data, size_t n,
    void (*link)(void *, const char *, size_t), void *arg)
{
	const char *nl;
	size_t take;

	while (n > 0) {
		nl = memchr(data, '\n', n);
		take = nl != NULL ? (size_t)(nl - data) : n;
		if (g->len + take > sizeof g->line) {
			/* Keep the start: it says whether it is a toggle. */
			if (g->len < sizeof g->line)
				memcpy(g->line + g->len, data,
				    sizeof g->line - g->len);
			g->len = sizeof g->line;
			g->too_long = 1;
		} else {
			memcpy(g->line + g->len, data, take);
			g->len += take;
		}
		if (nl == NULL)
			return;
		line_end(g, link, arg);
		data += take + 1;
		n -= take + 1;
	}
}

void
gemtext_end(
    struct gemtext *g, void (*link)(void *, const char *, size_t), void *arg)
{
	if (g->len > 0)
		line_end(g, link, arg);
}
