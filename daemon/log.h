/*
 * Logging: one line per event on stderr, filtered by level, in the
 * journal's form when stderr is the journal. Every module logs through
 * these calls; libmicrohttpd's messages are routed here too.
 */
#ifndef GEMWATCH_LOG_H
#define GEMWATCH_LOG_H

enum log_level {
	LOG_LEVEL_ERR,
	LOG_LEVEL_WARN,
	LOG_LEVEL_NOTICE, /* what the daemon says by default */
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG
};

/*
 * Set the most verbose level printed (default LOG_LEVEL_NOTICE), and see
 * whether stderr is the journal ($JOURNAL_STREAM): then each line starts
 * with its syslog priority (<3> fatal, <4> warning, <5> notice, <6> info,
 * <7> debug) instead of a timestamp.
 */
void log_init(enum log_level max);

void log_warn(const char *, ...)
    __attribute__((format(printf, 1, 2))); /* appends strerror(errno) */
void log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void log_notice(const char *, ...) __attribute__((
    format(printf, 1, 2))); /* events: shown by the daemon by default */
void log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *, ...) __attribute__((
    format(printf, 1, 2), noreturn)); /* appends strerror(errno) */
void fatalx(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
