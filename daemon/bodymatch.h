/*
 * The expect-body match, run apart so that it can be cut off: glibc's
 * regexec is quadratic on ordinary patterns (".+foo" takes minutes on a
 * 200 kB body), and a limit on a probe's time covers its match too.
 * Used from an event loop: bodymatch_start, wait for bodymatch_fd to be
 * readable, bodymatch_result, bodymatch_free (which cuts it off).
 */
#ifndef GEMWATCH_BODYMATCH_H
#define GEMWATCH_BODYMATCH_H

#include <regex.h>
#include <stddef.h>

enum bodymatch_state {
	BODYMATCH_RUNNING, /* no answer yet */
	BODYMATCH_MATCH,
	BODYMATCH_NOMATCH,
	BODYMATCH_FAILED /* could not run, or the matcher died */
};

struct bodymatch;

/*
 * Start matching re (compiled REG_EXTENDED | REG_NOSUB) against
 * body[0..len) in a child process; body and re are borrowed until it
 * returns (the child has its own copy of both). NULL when no process
 * could be started (logged).
 */
struct bodymatch *bodymatch_start(
    const regex_t *re, const char *body, size_t len);
/* Readable (POLLIN) once the answer is in or the matcher died. */
int bodymatch_fd(const struct bodymatch *);
/* The answer once bodymatch_fd is readable; BODYMATCH_RUNNING before. */
enum bodymatch_state bodymatch_result(struct bodymatch *);
/* Stop the matcher if it still runs, reap it and free; NULL is fine. */
void bodymatch_free(struct bodymatch *);

#endif
