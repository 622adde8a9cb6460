/*
 * Unit tests for log.c: the line format on a plain stderr (a UTC
 * timestamp, then the text) and on the journal, when $JOURNAL_STREAM
 * names stderr's device and inode (the syslog priority in angle brackets,
 * no timestamp). stderr is pointed at a scratch file for each case and
 * read back; fatal() runs in a child, as it exits.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "tap.h"

static char path[] = "/tmp/test_log.XXXXXX";
static char other[] = "/tmp/test_log_other.XXXXXX";
static int saved_stderr = -1;

/* Point stderr at a fresh, empty scratch file. */
static void
capture(void)
{
	int fd;

	if ((fd = open(path, O_WRONLY | O_TRUNC)) == -1 ||
	    dup2(fd, STDERR_FILENO) == -1) {
		perror(path);
		exit(99);
	}
	close(fd);
}

/* Put the real stderr back; returns what was written (static buffer). */
static const char *
captured(void)
{
	static char buf[8192];
	ssize_t n;
	int fd;

	dup2(saved_stderr, STDERR_FILENO);
	if ((fd = open(path, O_RDONLY)) == -1)
		return "";
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

/* $JOURNAL_STREAM as systemd sets it for the file f. */
static void
set_journal_stream(const char *f)
{
	struct stat st;
	char v[64];

	if (stat(f, &st) == -1) {
		perror(f);
		exit(99);
	}
	snprintf(
	    v, sizeof v, "%ju:%ju", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino);
	setenv("JOURNAL_STREAM", v, 1);
}

static int
matches(const char *text, const char *re)
{
	regex_t r;
	int m;

	if (regcomp(&r, re, REG_EXTENDED | REG_NOSUB | REG_NEWLINE) != 0)
		return 0;
	m = regexec(&r, text, 0, NULL, 0) == 0;
	regfree(&r);
	return m;
}

/* Every level once, debug enabled. */
static const char *
log_all(void)
{
	capture();
	log_init(LOG_LEVEL_DEBUG);
	log_warnx("a warning");
	log_notice("a notice");
	log_info("some info");
	log_debug("some detail");
	log_notice("control\ncharacters stay on one line");
	log_notice("no CSI: [\x1b[2J] [\xc2\x9b"
	           "2J] [\x9b"
	           "2J] [caf\xc3\xa9]");
	return captured();
}

/* fatalx in a child with stderr on the scratch file; its output. */
static const char *
log_fatal(void)
{
	pid_t pid;
	int status = -1;

	capture();
	if ((pid = fork()) == 0) {
		log_init(LOG_LEVEL_WARN);
		fatalx("the end");
	}
	waitpid(pid, &status, 0);
	is_int(
	    WIFEXITED(status) ? WEXITSTATUS(status) : -1, 1, "fatalx exits 1");
	return captured();
}

#define STAMP "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z "

int
main(void)
{
	const char *out;
	int fd;

	if ((fd = mkstemp(path)) == -1 || close(fd) == -1 ||
	    (fd = mkstemp(other)) == -1 || close(fd) == -1 ||
	    (saved_stderr = dup(STDERR_FILENO)) == -1) {
		perror("mkstemp");
		return 99;
	}

	/* Not the journal: no variable. */
	unsetenv("JOURNAL_STREAM");
	out = log_all();
	ok(matches(out, STAMP "warning: a warning$"),
	    "no JOURNAL_STREAM: warning with a timestamp");
	ok(matches(out, STAMP "a notice$"), "no JOURNAL_STREAM: notice");
	ok(matches(out, STAMP "some info$"), "no JOURNAL_STREAM: info");
	ok(matches(out, STAMP "debug: some detail$"),
	    "no JOURNAL_STREAM: debug");
	ok(!matches(out, "^<"), "no JOURNAL_STREAM: no priority prefix");
	ok(matches(out, STAMP "control\\?characters stay on one line$"),
	    "a newline in a message becomes ?");
	ok(strstr(out, "no CSI: [?[2J] [??2J] [?2J] [caf\xc3\xa9]\n") != NULL,
	    "ESC, a C1 control and an ill-formed byte become ?; an é stays");

	/* The variable names another file: stderr is not the journal. */
	set_journal_stream(other);
	out = log_all();
	ok(matches(out, STAMP "warning: a warning$") && !matches(out, "^<"),
	    "JOURNAL_STREAM of another file: timestamps, no priority");

	/* Malformed values are not the journal either. */
	setenv("JOURNAL_STREAM", "1:", 1);
	out = log_all();
	ok(matches(out, STAMP "a notice$"), "JOURNAL_STREAM \"1:\" ignored");
	setenv("JOURNAL_STREAM", "x", 1);
	out = log_all();
	ok(matches(out, STAMP "a notice$"), "JOURNAL_STREAM \"x\" ignored");

	/* stderr is the journal: priorities, no timestamps. */
	set_journal_stream(path);
	out = log_all();
	ok(matches(out, "^<4>warning: a warning$"), "journal: <4> warning");
	ok(matches(out, "^<5>a notice$"), "journal: <5> notice");
	ok(matches(out, "^<6>some info$"), "journal: <6> info");
	ok(matches(out, "^<7>debug: some detail$"), "journal: <7> debug");
	ok(matches(out, "^<5>control\\?characters stay on one line$"),
	    "journal: a newline in a message becomes ?");
	ok(!matches(out, "[0-9]{2}:[0-9]{2}:[0-9]{2}Z"),
	    "journal: no timestamp anywhere");
	if (!ok(!matches(out, "^[^<]"), "journal: every line has a priority"))
		printf("# %s", out);
	out = log_fatal();
	ok(matches(out, "^<3>fatal: the end$"), "journal: <3> fatal");

	/* Filtering still applies. */
	capture();
	log_init(LOG_LEVEL_WARN);
	log_info("hidden");
	log_warnx("shown");
	out = captured();
	is_str(out, "<4>warning: shown\n", "journal: the level filter holds");

	unsetenv("JOURNAL_STREAM");
	out = log_fatal();
	ok(matches(out, STAMP "fatal: the end$"),
	    "not the journal: fatal with a timestamp");

	unlink(path);
	unlink(other);
	return done_testing();
}
