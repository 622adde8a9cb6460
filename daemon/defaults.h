/*
 * The defaults, in one place: the configuration starts from them
 * (gemwatch.conf(5) documents each), and so do a probe request
 * (probe_req_init) and "gemwatch probe".
 */
#ifndef GEMWATCH_DEFAULTS_H
#define GEMWATCH_DEFAULTS_H

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#ifndef LOCALSTATEDIR
#define LOCALSTATEDIR "/var"
#endif

#define DEFAULT_CONF SYSCONFDIR "/gemwatch.conf"
#define DEFAULT_STATE_DIR LOCALSTATEDIR "/lib/gemwatch"
#define DEFAULT_LISTEN "127.0.0.1:19650"
#define DEFAULT_PORT 1965        /* Gemini's */
#define DEFAULT_INTERVAL 60      /* seconds between probes of a capsule */
#define DEFAULT_TIMEOUT 10       /* seconds for a whole probe */
#define DEFAULT_CONCURRENCY 4096 /* probes in flight at most */
#define DEFAULT_HISTORY 120      /* results kept per check */
#define DEFAULT_MAX_BODY (4 * 1024 * 1024) /* bytes of a body read */
#define DEFAULT_NOTIFY_AFTER 2      /* failed probes in a row before down */
#define DEFAULT_NOTIFY_CERT_DAYS 14 /* days before expiry to warn */
#define DEFAULT_NOTIFY_TIMEOUT 30   /* seconds a notify command may run */
#define DEFAULT_CRAWL_INTERVAL 3600 /* seconds between crawls of a capsule */
#define DEFAULT_CRAWL_DELAY 1       /* seconds between a crawl's requests */

#endif
