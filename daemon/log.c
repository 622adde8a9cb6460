/*
 * Logging to stderr, one line per event, with a level filter. Lines are
 * written with one write(2) so threads do not interleave them.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static enum log_level log_max = LOG_LEVEL_NOTICE;

void
log_init(enum log_level max)
{
	log_max = max;
}

static int
log_enabled(enum log_level level)
{
	return level <= log_max;
}

static void __attribute__((format(printf, 2, 0)))
log_vwrite(const char *prefix, const char *fmt, va_list ap, int errnum)
{
	char		 line[2048];
	size_t		 i, n;
	int		 r;
	struct timespec	 ts;
	struct tm	 tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%SZ ", &tm);
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
		r = snprintf(line + n, sizeof line - n, ": %s", strerror(errnum));
		if (r > 0)
			n += (size_t)r;
		if (n >= sizeof line - 1)
			n = sizeof line - 2;
	}
	/* Whatever came from outside stays on one line. */
	for (i = 0; i < n; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = '?';
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, n);
}

#define LOG_BODY(level, prefix, errnum)				\
	do {							\
		va_list ap;					\
		if (!log_enabled(level))			\
			return;					\
		va_start(ap, fmt);				\
		log_vwrite(prefix, fmt, ap, errnum);		\
		va_end(ap);					\
	} while (0)

void
log_warn(const char *fmt, ...)
{
	int saved = errno;

	LOG_BODY(LOG_LEVEL_WARN, "warning: ", saved);
}

void
log_warnx(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_WARN, "warning: ", 0);
}

void
log_notice(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_NOTICE, "", 0);
}

void
log_info(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_INFO, "", 0);
}

void
log_debug(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_DEBUG, "debug: ", 0);
}

void
fatal(const char *fmt, ...)
{
	int	 saved = errno;
	va_list	 ap;

	va_start(ap, fmt);
	log_vwrite("fatal: ", fmt, ap, saved);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite("fatal: ", fmt, ap, 0);
	va_end(ap);
	exit(1);
}
