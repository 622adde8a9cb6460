/*
 * Unit tests for the TOFU store of daemon/cert.c: a known_hosts of
 * 100,000 lines in no order, with repeated keys and malformed lines,
 * loads whole (the first line of a key wins; ten malformed lines named,
 * then a count) and fast: it took 16 to 36 s when each line was inserted
 * in place, now a fraction of a second (printed; judged against a bound
 * of 5 s, except under valgrind). A known_hosts that cannot be written
 * is said once, not at every retry, and its recovery is said too.
 */
#include "config.h"

#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cert.h"
#include "log.h"
#include "tap.h"
#include "xmalloc.h"

#define N 100000

static char dir[] = "/tmp/test_cert.XXXXXX";
static char errpath[] = "/tmp/test_cert_log.XXXXXX";
static int saved_stderr = -1;

/* stderr to a fresh scratch file. */
static void
capture(void)
{
	int fd;

	if ((fd = open(errpath, O_WRONLY | O_TRUNC)) == -1 ||
	    dup2(fd, STDERR_FILENO) == -1) {
		perror(errpath);
		exit(99);
	}
	close(fd);
}

/* stderr back; what was logged meanwhile (the caller frees it). */
static char *
captured(void)
{
	char *buf;
	FILE *f;
	long n;

	dup2(saved_stderr, STDERR_FILENO);
	if ((f = fopen(errpath, "r")) == NULL)
		return xstrdup("");
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = xmalloc((size_t)n + 1);
	buf[fread(buf, 1, (size_t)n, f)] = '\0';
	fclose(f);
	return buf;
}

static size_t
count(const char *text, const char *what)
{
	size_t n = 0;

	while ((text = strstr(text, what)) != NULL) {
		n++;
		text++;
	}
	return n;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A fingerprint that names (i, variant). */
static void
fp(char out[SHA256_HEX_LEN + 1], unsigned i, unsigned variant)
{
	snprintf(out, SHA256_HEX_LEN + 1, "%08x%08x%048x", i, variant, 0);
}

static enum tofu
check(struct tofu_store *t, unsigned i, unsigned variant)
{
	struct cert_facts f;
	char host[32];

	memset(&f, 0, sizeof f);
	f.present = 1;
	fp(f.sha256, i, variant);
	fp(f.pubkey_sha256, i, variant);
	snprintf(host, sizeof host, "h%06u.example", i);
	tofu_check(t, host, 1965, &f);
	return f.tofu;
}

static void
test_big_unsorted(void)
{
	char path[sizeof dir + 32], a[SHA256_HEX_LEN + 1];
	struct tofu_store *t;
	unsigned *order, i, j, tmp, wrong = 0;
	FILE *f;
	double t0, dt;
	char *log;

	/* Every key once, in a shuffled order (a fixed seed). */
	order = xcalloc(N, sizeof *order);
	for (i = 0; i < N; i++)
		order[i] = i;
	srandom(1965);
	for (i = N - 1; i > 0; i--) {
		j = (unsigned)random() % (i + 1);
		tmp = order[i];
		order[i] = order[j];
		order[j] = tmp;
	}
	snprintf(path, sizeof path, "%s/known_hosts", dir);
	if ((f = fopen(path, "w")) == NULL) {
		perror(path);
		exit(99);
	}
	fprintf(f, "# gemwatch known hosts\n");
	for (i = 0; i < N; i++) {
		fp(a, order[i], 0);
		fprintf(f, "h%06u.example:1965 %s %s 1700000000 1900000000\n",
		    order[i], a, a);
		/* Every hundredth key again later, another certificate. */
		if (i % 100 == 99) {
			fp(a, order[i - 50], 1);
			fprintf(f,
			    "h%06u.example:1965 %s %s 1700000001 "
			    "1900000000\n",
			    order[i - 50], a, a);
		}
		if (i % 5000 == 0)
			fprintf(f, "not a known_hosts line %u\n", i);
	}
	fclose(f);
	free(order);

	capture();
	t0 = now();
	t = tofu_open(dir, 0);
	dt = now() - t0;
	log = captured();
	printf("# %d lines in no order, %d repeated: loaded in %.3f s\n",
	    N + N / 100, N / 100, dt);
	if (getenv("VALGRIND") == NULL || *getenv("VALGRIND") == '\0')
		ok(dt < 5,
		    "100,000 lines in no order load in under 5 s "
		    "(%.3f s)",
		    dt);
	is_int(count(log, "malformed line ignored"), 10,
	    "ten malformed lines named");
	ok(strstr(log, "known_hosts: 10 more malformed lines ignored") != NULL,
	    "then the others counted");
	free(log);
	for (i = 0; i < N; i++)
		if (check(t, i, 0) != TOFU_MATCH)
			wrong++;
	is_int(wrong, 0, "every key loaded, with its first line's certificate");
	is_int(check(t, 150, 1) == TOFU_CHANGED, 1,
	    "a later line of a key does not replace the first");
	is_int(check(t, N, 0), TOFU_NEW, "a key not in the file is new");
	is_int(tofu_free(t), 0, "freed (not writable: nothing written)");
	unlink(path);
}

static void
test_unwritable(void)
{
	char sub[sizeof dir + 16], path[sizeof dir + 32];
	struct tofu_store *t;
	char *log;
	struct stat st;
	int i;

	/* A state directory that is gone: every write fails. */
	snprintf(sub, sizeof sub, "%s/gone", dir);
	snprintf(path, sizeof path, "%s/known_hosts", sub);
	capture();
	t = tofu_open(sub, 1);
	is_int(check(t, 1, 0), TOFU_NEW, "unwritable: a new host is recorded");
	for (i = 0; i < 5; i++)
		tofu_flush(t); /* the daemon's every second */
	is_int(check(t, 1, 0), TOFU_MATCH, "unwritable: and kept in memory");
	log = captured();
	is_int(count(log, "creating a temporary file"), 1,
	    "six failed writes: the failure said once");
	ok(strstr(log, "tried again every second") != NULL,
	    "saying that it is retried");
	free(log);

	capture();
	if (mkdir(sub, 0755) == -1) {
		perror(sub);
		exit(99);
	}
	tofu_flush(t);
	log = captured();
	ok(stat(path, &st) == 0, "writable again: written at the next flush");
	ok(strstr(log, "known_hosts written again") != NULL,
	    "and that is said");
	free(log);
	is_int(tofu_free(t), 0, "freed");
	unlink(path);
	rmdir(sub);
}

int
main(void)
{
	int fd;

	if (mkdtemp(dir) == NULL || (fd = mkstemp(errpath)) == -1 ||
	    close(fd) == -1 || (saved_stderr = dup(STDERR_FILENO)) == -1) {
		perror("mkdtemp");
		return 99;
	}
	log_init(LOG_LEVEL_INFO);
	test_big_unsorted();
	test_unwritable();
	unlink(errpath);
	rmdir(dir);
	return done_testing();
}
