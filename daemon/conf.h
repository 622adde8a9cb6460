/*
 * The configuration file (SPEC.md §3): a line-oriented file turned into a
 * struct conf. conf_parse is pure and fuzzed; conf_load reads a file.
 * Every error is collected, each naming file:line. A configuration is
 * shared by reference (the scheduler's tasks, probes in flight, /probe):
 * conf owns the count, and the running configuration that main publishes
 * after each (re)load.
 */
#ifndef GEMWATCH_CONF_H
#define GEMWATCH_CONF_H

#include <sys/socket.h>
#include <regex.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gemini.h"
#include "url.h"

struct listen_addr {
	char *text; /* as written: "127.0.0.1:19650", "[::1]:19650" */
	struct sockaddr_storage ss; /* numeric, resolved at load */
	socklen_t sslen;
};

struct capsule_conf {
	char *name; /* unique; defaults to the URL as written */
	struct url url;
	double interval; /* seconds, global default applied */
	double timeout;  /* seconds, global default applied */
	struct status_spec expect_status;
	int require_close_notify;
	char *sni;  /* NULL: the URL's host (none for IP literals) */
	int family; /* AF_UNSPEC, AF_INET or AF_INET6 */
	int has_fingerprint;
	unsigned char fingerprint[32]; /* SHA-256 of the DER */
	char *expect_body_src;         /* NULL when absent */
	regex_t expect_body;           /* compiled when expect_body_src */
	int64_t expect_body_bytes;     /* the least body size; -1: none */
	double max_idle;       /* seconds the body may go quiet; 0: off */
	char *error_path;      /* NULL when absent */
	struct url error_url;  /* the URL with error_path, when error_path */
	int notify;            /* 0: notify=no, no notify command for it */
	unsigned crawl;        /* crawl=N: pages per crawl; 0: no crawl */
	double crawl_interval; /* seconds between crawls [1h] */
	double crawl_delay;    /* seconds between a crawl's requests [1s] */
	double diagnose;       /* seconds between diagnose runs; 0: none */
	int line;              /* where it was defined */
};

struct conf {
	char *path;
	struct listen_addr *listen;
	size_t nlisten;
	double interval;      /* [60] */
	double timeout;       /* [10] */
	unsigned concurrency; /* [16]: probes in flight at most */
	unsigned history;     /* [120] */
	char *state_dir;
	int state_dir_named; /* by the file */
	size_t max_body;     /* [4 MiB] */
	char *user;          /* NULL: do not change user */
	char **probe_allow;
	size_t nprobe_allow;
	struct sockaddr_storage
	    *resolvers; /* DNS servers; none: resolv.conf's */
	size_t nresolvers;
	unsigned shard_k, shard_n; /* [1/1] */
	char ***notify;            /* commands: NULL-terminated argv each */
	size_t nnotify;
	unsigned notify_after;     /* [2] consecutive results */
	double notify_repeat;      /* [0: off] seconds */
	unsigned notify_cert_days; /* [14]; 0: never */
	double notify_timeout;     /* [30] seconds */
	struct capsule_conf *capsules;
	size_t ncapsules;
	atomic_uint refs; /* conf_hold, conf_free */
};

/* A list of "file:line: message" strings. */
struct conf_errors {
	char **msg;
	size_t n;
};

/*
 * Parse a whole file's text; name is used in messages. Returns a conf
 * (free with conf_free) when there were no errors, NULL otherwise; every
 * error found is appended to errs.
 */
struct conf *conf_parse(
    const char *name, const char *buf, size_t len, struct conf_errors *errs);
/*
 * Read and parse a file (at most 16 MiB). When it names no state-dir,
 * $STATE_DIRECTORY (systemd's StateDirectory=; the first of a list) is
 * the state-dir, if set; conf_parse does not look at the environment.
 */
struct conf *conf_load(const char *path, struct conf_errors *errs);
/* conf_load for the command line: every error written to f, a line each. */
struct conf *conf_load_report(const char *path, FILE *f);
/* Add a reference to conf, from any thread; returns conf. */
struct conf *conf_hold(struct conf *);
/*
 * Drop a reference: the one conf_parse or conf_load returned, or one
 * conf_hold added. The last frees conf. NULL is fine.
 */
void conf_free(struct conf *);
/*
 * Publish conf as the running configuration (main, after a (re)load has
 * been applied), taking over the caller's reference; NULL at exit drops
 * the last one held here.
 */
void conf_set_running(struct conf *);
/*
 * The running configuration, held for the caller (any thread), so a
 * reload cannot free it meanwhile: conf_free it when done. NULL before
 * the first conf_set_running.
 */
struct conf *conf_running(void);
void conf_errors_free(struct conf_errors *);

/* Parse "90", "1500ms", "5m" ... into seconds; -1 on error. */
int parse_duration(const char *, double *);
/* Parse "4096", "64k", "4M" into bytes; -1 on error. */
int parse_size(const char *, size_t *);
/*
 * Parse a resolver address: "192.0.2.1", "192.0.2.1:5353", "::1" or
 * "[::1]:5353" (port 53 unless given). 0, or -1 with *err static.
 */
int parse_resolver(const char *, struct sockaddr_storage *, const char **err);

/*
 * Sharding: the stable hash (FNV-1a 64 of the name) modulo n, plus one;
 * a capsule belongs to shard k of n when shard_of(name, n) == k.
 */
unsigned shard_of(const char *name, unsigned n);
/* Whether this instance probes the capsule under its shard directive. */
int conf_in_shard(const struct conf *, const struct capsule_conf *);
/*
 * The capsules this instance probes and keeps: those of its shard, in
 * configuration order. Returns an array of *n pointers into conf (free it
 * with free()); main hands it to the store and the scheduler alike.
 */
const struct capsule_conf **conf_shard(const struct conf *, size_t *n);

/* Look up a capsule by name; NULL when absent. */
const struct capsule_conf *conf_capsule(const struct conf *, const char *name);

#endif
