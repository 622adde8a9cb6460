/*
 * Logging to stderr, one line per event, with a level filter. Lines are
 * written with one write(2) so threads do not interleave them. When
 * stderr is the systemd journal ($JOURNAL_STREAM names its device and
 * inode), a line starts with its syslog priority ("<4>") instead of a
 * time: journald reads the prefix as the priority and stamps the time
 * itself, so journalctl -p filters by level.
 */
#include "config.h"

#include <sys/stat.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "utf8.h"

/* syslog(3) priorities, as journald reads them from a "<N>" prefix. */
#define PRI_ERR 3
#define PRI_WARNING 4
#define PRI_NOTICE 5
#define PRI_INFO 6
#define PRI_DEBUG 7

static enum log_level log_max = LOG_LEVEL_NOTICE;
static int log_journal; /* stderr is the journal */

/*
 * Whether stderr is the stream systemd connected to the journal:
 * $JOURNAL_STREAM is "DEVICE:INODE" of it (systemd.exec(5)). A stderr
 * redirected elsewhere (a file, a terminal, a pipe) does not match, even
 * with the variable inherited, and keeps the timestamps.
 */
static int
stderr_is_journal(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	struct stat st;
	uintmax_t dev, ino;
	char *end;

	if (env == NULL || env[0] < '0' || env[0] > '9')
		return 0;
	errno = 0;
	dev = strtoumax(env, &end, 10);
	if (errno != 0 || *end != ':' || end[1] < '0' || end[1] > '9')
		return 0;
	ino = strtoumax(end + 1, &end, 10);
	if (errno != 0 || *end != '\0')
		return 0;
	if (fstat(STDERR_FILENO, &st) == -1)
		return 0;
	return (uintmax_t)st.st_dev == dev && (uintmax_t)st.st_ino == ino;
}

void
log_init(enum log_level max)
{
	log_max = max;
	log_journal = stderr_is_journal();
}

static int
log_enabled(enum log_level level)
{
	return level <= log_max;
}

static void __attribute__((format(printf, 3, 0)))
log_vwrite(int pri, const char *prefix, const char *fmt, va_list ap, int errnum)
{
	char line[2048];
	size_t i, k, n, start;
	int r;
	struct timespec ts;
	struct tm tm;

	if (log_journal) {
		n = start = (size_t)snprintf(line, sizeof line, "<%d>", pri);
	} else {
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%SZ ", &tm);
		start = 0;
	}
	r = snprintf(line + n, sizeof line - n, "%s", prefix);
	if (r > 0)
		n += (size_t)r;
	if (n < sizeof line) {
		r = vsnprintf(line + n, sizeof line - n, fmt, ap);
		if (r > 0)
			n += (size_t)r;
	}
	if (n >= sizeof line - 1)
		n = sizeof line - 2;
	if (errnum != 0) {
		r = snprintf(
		    line + n, sizeof line - n, ": %s", strerror(errnum));
		if (r > 0)
			n += (size_t)r;
		if (n >= sizeof line - 1)
			n = sizeof line - 2;
	}
	/*
	 * Whatever came from outside stays on one line and cannot steer a
	 * terminal: each byte of a control (C0, DEL, C1) or of ill-formed
	 * UTF-8 becomes '?'.
	 */
	for (i = start; i < n; i += k) {
		if ((k = utf8_control_len(line + i, n - i)) != 0)
			memset(line + i, '?', k);
		else if ((unsigned char)line[i] < 0x80)
			k = 1;
		else if ((k = utf8_char_len(line + i, n - i)) == 0) {
			line[i] = '?';
			k = 1;
		}
	}
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, n);
}

#define LOG_BODY(level, pri, prefix, errnum)                                   \
	do {                                                                   \
		va_list ap;                                                    \
		if (!log_enabled(level))                                       \
			return;                                                \
		va_start(ap, fmt);                                             \
		log_vwrite(pri, prefix, fmt, ap, errnum);                      \
		va_end(ap);                                                    \
	} while (0)

void
log_warn(const char *fmt, ...)
{
	int saved = errno;

	LOG_BODY(LOG_LEVEL_WARN, PRI_WARNING, "warning: ", saved);
}

void
log_warnx(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_WARN, PRI_WARNING, "warning: ", 0);
}

void
log_notice(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_NOTICE, PRI_NOTICE, "", 0);
}

void
log_info(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_INFO, PRI_INFO, "", 0);
}

void
log_debug(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_DEBUG, PRI_DEBUG, "debug: ", 0);
}

void
fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(PRI_ERR, "fatal: ", fmt, ap, saved);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(PRI_ERR, "fatal: ", fmt, ap, 0);
	va_end(ap);
	exit(1);
}
