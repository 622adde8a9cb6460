/*
 * Unit tests for daemon/bodymatch.c: a match and a miss are told apart;
 * a quadratic match (".+foo" on 200 kB) is cut off at its deadline and
 * at once by the cancel descriptor; the event-loop form answers through
 * its descriptor; every matcher is reaped (no child is left, running or
 * zombie) whether it answered or was cut off.
 */
#include "config.h"

#include <sys/wait.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bodymatch.h"
#include "clock.h"
#include "tap.h"
#include "xmalloc.h"

#define BIG 200000

/* Whether every child of this process has been reaped. */
static int
no_children(void)
{
	return waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD;
}

/* Beyond enum bodymatch_state: how run was cut off. */
#define RUN_TIMEOUT 100
#define RUN_CANCELLED 101

/*
 * The whole match, blocking: a bodymatch_state, or RUN_TIMEOUT when the
 * monotonic deadline comes first, RUN_CANCELLED when cancel_fd (-1: none)
 * becomes readable first.
 */
static int
run(const regex_t *re, const char *body, size_t len, double deadline,
    int cancel_fd)
{
	struct bodymatch *bm;
	struct pollfd pfd[2];
	int st;
	nfds_t n = 1;
	double left;

	if ((bm = bodymatch_start(re, body, len)) == NULL)
		return BODYMATCH_FAILED;
	pfd[0].fd = bodymatch_fd(bm);
	pfd[0].events = POLLIN;
	if (cancel_fd != -1) {
		pfd[1].fd = cancel_fd;
		pfd[1].events = POLLIN;
		n = 2;
	}
	for (;;) {
		if ((st = bodymatch_result(bm)) != BODYMATCH_RUNNING)
			break;
		if ((left = deadline - clock_mono()) <= 0) {
			st = RUN_TIMEOUT;
			break;
		}
		if (poll(pfd, n, (int)ceil(left * 1000)) == -1 &&
		    errno != EINTR) {
			st = BODYMATCH_FAILED;
			break;
		}
		if (n == 2 && pfd[1].revents != 0) {
			st = RUN_CANCELLED;
			break;
		}
	}
	bodymatch_free(bm);
	return st;
}

int
main(void)
{
	regex_t hello, slow;
	struct bodymatch *bm;
	struct pollfd pfd;
	int st;
	double t0, took;
	char *big;
	size_t i;
	int cancel[2];

	if (regcomp(&hello, "^hel+o", REG_EXTENDED | REG_NOSUB) != 0 ||
	    regcomp(&slow, ".+foo", REG_EXTENDED | REG_NOSUB) != 0)
		return 99;
	big = xmalloc(BIG);
	for (i = 0; i < BIG; i++)
		big[i] = i % 64 == 63 ? '\n' : "0123456789abcdef"[i % 16];

	is_int(run(&hello, "hello world", 11, clock_mono() + 10, -1),
	    BODYMATCH_MATCH, "a match");
	is_int(run(&hello, "goodbye", 7, clock_mono() + 10, -1),
	    BODYMATCH_NOMATCH, "a miss");
	is_int(run(&hello, "hello", 0, clock_mono() + 10, -1),
	    BODYMATCH_NOMATCH, "only len bytes are matched");
	is_int(run(&hello, "xx\0hello", 8, clock_mono() + 10, -1),
	    BODYMATCH_NOMATCH, "a NUL does not end the body");
	ok(no_children(), "matchers that answered are reaped");

	t0 = clock_mono();
	st = run(&slow, big, BIG, t0 + 0.3, -1);
	took = clock_mono() - t0;
	is_int(st, RUN_TIMEOUT,
	    ".+foo on 200 kB: cut off at the "
	    "deadline");
	ok(took >= 0.3 && took < 5.0, "after 0.3s (%.3fs)", took);
	ok(no_children(), "the matcher cut off is reaped");

	if (pipe(cancel) == -1)
		return 99;
	(void)!write(cancel[1], "x", 1);
	t0 = clock_mono();
	st = run(&slow, big, BIG, t0 + 30, cancel[0]);
	took = clock_mono() - t0;
	is_int(st, RUN_CANCELLED, "a cancel cuts the match off");
	ok(took < 5.0, "at once (%.3fs)", took);
	ok(no_children(), "and the matcher is reaped");
	close(cancel[0]);
	close(cancel[1]);

	/* The event-loop form. */
	bm = bodymatch_start(&hello, "hello", 5);
	ok(bm != NULL, "start");
	pfd.fd = bm != NULL ? bodymatch_fd(bm) : -1;
	pfd.events = POLLIN;
	ok(poll(&pfd, 1, 10000) == 1, "its descriptor becomes readable");
	is_int(bodymatch_result(bm), BODYMATCH_MATCH, "with the answer");
	is_int(bodymatch_result(bm), BODYMATCH_MATCH, "which stays");
	bodymatch_free(bm);
	ok(no_children(), "freed: reaped");
	bm = bodymatch_start(&slow, big, BIG);
	is_int(
	    bodymatch_result(bm), BODYMATCH_RUNNING, "a long match: running");
	bodymatch_free(bm);
	ok(no_children(), "freed while running: killed and reaped");
	bodymatch_free(NULL);

	regfree(&hello);
	regfree(&slow);
	free(big);
	return done_testing();
}
