/*
 * The expect-body match in a child process. The body is already in
 * memory, so fork(2) hands it to the child without a copy (copy on
 * write); the child runs regexec, writes one byte on a pipe and ends. The
 * parent waits on the pipe, and when the deadline or a cancel comes
 * first it kills the child with SIGKILL and reaps it: no match outlives
 * its probe, and a stopping daemon waits for none.
 *
 * regexec never runs in the daemon itself, not even on a short body:
 * glibc's regexec locks the regex_t while it runs, and a child forked
 * while another thread held that lock would wait on it forever (and be
 * killed at the deadline, a false failure). The child lives only for the
 * match: it closes every descriptor but its end of the pipe (the HTTP
 * listeners, other probes' sockets), dies with the thread that forked it
 * (PR_SET_PDEATHSIG), and carries a CPU limit of its own in case both the
 * parent and that signal were lost.
 */
#include "config.h"

#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bodymatch.h"
#include "log.h"
#include "xmalloc.h"

/* CPU seconds a matcher may use whatever its deadline: a probe's
 * timeout is at most an hour (conf.c). */
#define BODYMATCH_CPU_MAX 3600

struct bodymatch {
	pid_t pid; /* -1 once reaped */
	int fd;    /* the pipe's read end */
	enum bodymatch_state state;
};

/* The child: match, answer, end. Only async-signal-safe calls but regexec
 * (whose malloc glibc keeps usable across fork). */
static void __attribute__((noreturn)) bodymatch_child(
    const regex_t *re, const char *body, size_t len, int out, pid_t parent)
{
	struct rlimit rl = {BODYMATCH_CPU_MAX, BODYMATCH_CPU_MAX};
	struct sigaction sa;
	sigset_t none;
	regmatch_t m[1];
	char c;
	int rv;

	/* The daemon's handlers write to its signal pipe, closed below: a
	 * SIGTERM to the whole group (a service manager's stop) ends us. */
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	(void)sigaction(SIGTERM, &sa, NULL);
	(void)sigaction(SIGINT, &sa, NULL);
	(void)sigaction(SIGHUP, &sa, NULL);
	(void)sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1); /* the parent is already gone */
	(void)setrlimit(RLIMIT_CPU, &rl);
	if (out > 3)
		(void)close_range(3, (unsigned)out - 1, 0);
	(void)close_range((unsigned)out + 1, ~0U, 0);
	m[0].rm_so = 0;
	m[0].rm_eo = (regoff_t)len;
	rv = regexec(re, body, 1, m, REG_STARTEND);
	c = rv == 0 ? 'y' : rv == REG_NOMATCH ? 'n' : 'e';
	(void)!write(out, &c, 1);
	_exit(0);
}

struct bodymatch *
bodymatch_start(const regex_t *re, const char *body, size_t len)
{
	struct bodymatch *bm;
	pid_t parent = getpid();
	int p[2];

	if ((size_t)(regoff_t)len != len || (regoff_t)len < 0) {
		log_warnx("expect-body: a body of %zu bytes is too long to "
		          "match",
		    len);
		return NULL;
	}
	if (pipe2(p, O_CLOEXEC) == -1) {
		log_warn("expect-body: pipe");
		return NULL;
	}
	bm = xcalloc(1, sizeof *bm);
	bm->fd = p[0];
	bm->state = BODYMATCH_RUNNING;
	if ((bm->pid = fork()) == -1) {
		log_warn("expect-body: fork");
		close(p[0]);
		close(p[1]);
		free(bm);
		return NULL;
	}
	if (bm->pid == 0)
		bodymatch_child(re, body, len, p[1], parent);
	close(p[1]);
	return bm;
}

int
bodymatch_fd(const struct bodymatch *bm)
{
	return bm->fd;
}

enum bodymatch_state
bodymatch_result(struct bodymatch *bm)
{
	struct pollfd pfd = {bm->fd, POLLIN, 0};
	ssize_t n;
	char c;

	if (bm->state != BODYMATCH_RUNNING)
		return bm->state;
	if (poll(&pfd, 1, 0) != 1)
		return BODYMATCH_RUNNING;
	while ((n = read(bm->fd, &c, 1)) == -1 && errno == EINTR)
		;
	if (n == -1 && errno == EAGAIN)
		return BODYMATCH_RUNNING;
	if (n == 1 && c == 'y')
		bm->state = BODYMATCH_MATCH;
	else if (n == 1 && c == 'n')
		bm->state = BODYMATCH_NOMATCH;
	else
		bm->state = BODYMATCH_FAILED; /* an error, or it died */
	return bm->state;
}

void
bodymatch_free(struct bodymatch *bm)
{
	if (bm == NULL)
		return;
	if (bm->pid > 0) {
		/* With its answer in, the child is ending by itself. */
		if (bm->state == BODYMATCH_RUNNING)
			(void)kill(bm->pid, SIGKILL);
		while (waitpid(bm->pid, NULL, 0) == -1 && errno == EINTR)
			;
	}
	close(bm->fd);
	free(bm);
}
