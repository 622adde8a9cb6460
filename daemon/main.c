/*
 * gemwatch: options, start-up and shut-down order.
 *
 * Start-up: configuration, signals, TLS library, store (with the capsules
 * and the snapshot loaded, so nobody ever sees it empty after a restart),
 * TOFU store, notifier, the runner (probes and runs on the engines), the
 * scheduler (both kinds of job), HTTP endpoint (bound before privileges
 * are dropped); then the scheduler follows the configuration, which
 * becomes the running one. The main thread runs the scheduler, keeps two
 * timers (TOFU entries written or re-read every second, the snapshot
 * saved every minute) and handles signals through a self-pipe: SIGHUP
 * re-reads the configuration (store first, then the scheduler; any number
 * of HUPs pending is one reload), SIGTERM and SIGINT stop (before any
 * reload pending). Under systemd it also reports readiness, reloads,
 * stopping, a status line and watchdog pings (sdnotify.c), the pings from
 * this loop. Tear-down runs in one place, in the reverse order, saving
 * the snapshot once the probes are stopped, so an orderly exit loses
 * nothing and frees everything.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>
#include <ares.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <gnutls/gnutls.h>
#include <jansson.h>
#include <malloc.h>
#include <math.h>
#include <microhttpd.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cert.h"
#include "clock.h"
#include "cmd.h"
#include "conf.h"
#include "defaults.h"
#include "dns.h"
#include "engine.h"
#include "http.h"
#include "lag.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "priv.h"
#include "probe.h"
#include "runner.h"
#include "sched.h"
#include "sdnotify.h"
#include "seq.h"
#include "statedir.h"
#include "store.h"
#include "xmalloc.h"

#define SNAPSHOT_FILE "history.snapshot" /* in state-dir */
#define SNAPSHOT_INTERVAL 60             /* seconds between saves */
#define TOFU_FLUSH_INTERVAL 1      /* seconds between known_hosts checks */
#define NOTIFY_FILE "notify.state" /* in state-dir */

static int signal_pipe[2] = {-1, -1};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: gemwatch [-dv] [-f FILE]      run the daemon in the "
	    "foreground\n"
	    "       gemwatch -n [-f FILE]         check the configuration and "
	    "exit\n"
	    "       gemwatch probe [-j] [-4|-6] [-c N] [-t SECONDS] [--sni "
	    "NAME] URL...\n"
	    "                                     probe each URL once and "
	    "report\n"
	    "       gemwatch crawl [-j] [-n PAGES] [-d SECONDS] [-t SECONDS] "
	    "URL\n"
	    "                                     crawl a capsule's pages once "
	    "and report\n"
	    "       gemwatch survey [-c N] [-t SECONDS] [-j | --csv] [FILE | "
	    "-]\n"
	    "                                     probe a list of capsules, "
	    "then count\n"
	    "       gemwatch diagnose [-j] [-4|-6] [-t SECONDS] [--only "
	    "CHECK,...] HOST[:PORT]|URL\n"
	    "                                     check a server's conformance "
	    "to the spec\n"
	    "       gemwatch trust [-f FILE] NAME...\n"
	    "                                     accept the certificate a "
	    "capsule presents now\n"
	    "       gemwatch notify-test [-f FILE] [NAME]\n"
	    "                                     run the notify commands once "
	    "with a sample event\n"
	    "       gemwatch -V                   print versions\n"
	    "       gemwatch -h                   this help\n"
	    "\n"
	    "  -f FILE  configuration file (default " DEFAULT_CONF ")\n"
	    "  -n       check the configuration: print \"configuration OK\" or "
	    "the errors\n"
	    "  -v       log informational messages; -d also debug detail\n"
	    "\n"
	    "Signals: SIGHUP re-reads the configuration, SIGTERM or SIGINT "
	    "stop.\n"
	    "See gemwatch(8) and gemwatch.conf(5).\n");
}

static void
version(void)
{
	printf("gemwatch %s\n", PACKAGE_VERSION);
	printf("GnuTLS %s\n", gnutls_check_version(NULL));
	printf("libmicrohttpd %s\n", MHD_get_version());
	printf("jansson %s\n", jansson_version_str());
	printf("c-ares %s\n", ares_version(NULL));
}

static struct conf *
load(const char *path)
{
	struct conf_errors errs = {NULL, 0};
	struct conf *conf;
	size_t i;

	conf = conf_load(path, &errs);
	for (i = 0; i < errs.n; i++)
		log_warnx("%s", errs.msg[i]);
	conf_errors_free(&errs);
	return conf;
}

static void
on_signal(int sig)
{
	int saved = errno;
	unsigned char c = (unsigned char)sig;

	(void)!write(signal_pipe[1], &c, 1);
	errno = saved;
}

static void
signals_init(void)
{
	struct sigaction sa;

	if (pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) == -1)
		fatal("pipe");
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

static void
signals_free(void)
{
	if (signal_pipe[0] == -1)
		return;
	close(signal_pipe[0]);
	close(signal_pipe[1]);
	signal_pipe[0] = signal_pipe[1] = -1;
}

/*
 * Idle HTTP clients and probes each hold a descriptor: allow many, and
 * say so when `concurrency` probes would not fit.
 */
static void
check_fd_limit(const struct conf *conf)
{
	unsigned long limit = engine_fd_raise();

	if (conf->concurrency > engine_fd_capacity())
		log_warnx(
		    "concurrency %u needs %u file descriptors, but the "
		    "limit is %lu: probes beyond %u at once will fail; raise "
		    "the limit (LimitNOFILE=, ulimit -n) or lower concurrency",
		    conf->concurrency, conf->concurrency + ENGINE_FD_RESERVE,
		    limit, engine_fd_capacity());
}

/* What the daemon runs on, made by run_daemon and owned by it. */
struct daemon {
	const char *path; /* the configuration file */
	struct store *store;
	struct tofu_store *tofu;
	struct notify *notify;
	struct runner *runner;
	struct sched *sched;
	struct http *http;
	char *snapshot;              /* NULL: not saved */
	char *seq_files[SEQ__COUNT]; /* state-dir/<kind>.json, or NULL */
};

/*
 * Follow conf from now on (the caller's reference passes on). The shard
 * rule is applied once, here, for the store and the scheduler alike. The
 * store goes first: a new task's first result must find its capsule, and
 * a removed one's is dropped; the notifier learns the new commands and
 * capsules before any result of them. Then conf is the running
 * configuration. At start-up, the store was synced already (before its
 * snapshot was loaded): syncing it again with the same list keeps it.
 */
static void
apply(struct daemon *d, struct conf *conf)
{
	const struct capsule_conf **mine;
	size_t n;

	dns_servers_set(conf->resolvers, conf->nresolvers);
	mine = conf_shard(conf, &n);
	store_sync(d->store, conf->history, mine, n);
	notify_apply(d->notify, conf);
	sched_apply(d->sched, conf_hold(conf), mine, n);
	free(mine);
	conf_set_running(conf);
}

/*
 * The scheduler's hooks: a finished probe's result goes to the store and
 * to the notifier (which only decides and queues), a run's outcome to the
 * store.
 */
static void
publish(
    void *arg, const struct capsule_conf *cap, const struct probe_result *res)
{
	struct daemon *d = arg;

	store_put(d->store, cap->name, res);
	notify_result(d->notify, cap, res->check, res);
}

/*
 * A run's outcome goes to the notifier (which compares it with the run
 * before and queues), then to the store.
 */
static void
publish_run(
    void *arg, const struct capsule_conf *cap, enum seq_kind k, json_t *outcome)
{
	struct daemon *d = arg;

	log_info("%s of %s: done", seq_name(k), cap->name);
	notify_run(d->notify, cap, k, outcome);
	store_seq_put(d->store, cap->name, k, outcome);
}

static double
run_age(void *arg, const char *name, enum seq_kind k)
{
	struct daemon *d = arg;
	double last = store_seq_last(d->store, name, k);

	return last > 0 ? clock_wall() - last : INFINITY;
}

static void
save_seqs(struct daemon *d)
{
	int k;

	for (k = 0; k < SEQ__COUNT; k++)
		if (d->seq_files[k] != NULL)
			(void)store_seq_save(d->store, k, d->seq_files[k]);
}

static void
reload(struct daemon *d)
{
	struct conf *conf, *old;
	size_t i;
	int listen_changed = 0;

	if ((conf = load(d->path)) == NULL) {
		log_warnx("reload: %s has errors; keeping the running "
		          "configuration",
		    d->path);
		store_set_reload(d->store, 0, clock_wall());
		return;
	}
	old = conf_running();
	if (conf->nlisten != old->nlisten)
		listen_changed = 1;
	for (i = 0; !listen_changed && i < conf->nlisten; i++)
		if (strcmp(conf->listen[i].text, old->listen[i].text) != 0)
			listen_changed = 1;
	if (listen_changed)
		log_warnx("reload: listen addresses change only on restart");
	/* Read and made at start, then kept: the state files stay where
	 * they are, and so does the user the daemon runs as. */
	if (strcmp(conf->state_dir, old->state_dir) != 0)
		log_warnx("reload: state-dir changes only on restart; the "
		          "state is still kept in %s",
		    old->state_dir);
	if ((conf->user == NULL) != (old->user == NULL) ||
	    (conf->user != NULL && strcmp(conf->user, old->user) != 0))
		log_warnx("reload: user changes only on restart");
	conf_free(old);
	log_notice("reload: %s: %zu capsules", d->path, conf->ncapsules);
	check_fd_limit(conf);
	apply(d, conf);
	store_set_reload(d->store, 1, clock_wall());
}

/*
 * The main loop until SIGTERM or SIGINT: the scheduler, the heartbeat,
 * signals, and the timers (new TOFU entries, the snapshot).
 */
static void
serve(struct daemon *d)
{
	struct lag lag;
	struct pollfd pfd[2];
	double saved, flushed, now;
	unsigned char sigs[64];
	ssize_t n, i;
	int wait_ms, hup, stop = 0;

	saved = flushed = clock_mono();
	pfd[0].fd = signal_pipe[0];
	pfd[0].events = POLLIN;
	pfd[1].fd = sched_fd(d->sched);
	pfd[1].events = POLLIN;
	for (;;) {
		wait_ms = sched_run(d->sched);
		sched_lag(d->sched, &lag);
		store_set_lag(d->store, &lag);
		http_heartbeat(d->http);
		wait_ms = sdnotify_tick(d->store, wait_ms);
		if (poll(pfd, 2, wait_ms) == -1 && errno != EINTR)
			fatal("poll");
		/*
		 * Every signal pending first: a stop is never queued behind
		 * reloads, and any number of HUPs is one reload (of the file
		 * as it is now; a HUP during it is another, next time round).
		 */
		hup = 0;
		while ((n = read(signal_pipe[0], sigs, sizeof sigs)) > 0)
			for (i = 0; i < n; i++) {
				if (sigs[i] == SIGHUP)
					hup = 1;
				else if (stop == 0)
					stop = sigs[i];
			}
		if (stop != 0) {
			log_notice("received signal %d; stopping", stop);
			break;
		}
		if (hup) {
			sdnotify_reloading();
			reload(d);
			sdnotify_ready();
		}
		now = clock_mono();
		if (now - flushed >= TOFU_FLUSH_INTERVAL) {
			tofu_flush(d->tofu);
			flushed = now;
		}
		if (d->snapshot != NULL && now - saved >= SNAPSHOT_INTERVAL) {
			(void)store_save(d->store, d->snapshot);
			save_seqs(d);
			saved = clock_mono();
		}
	}
	sdnotify_stopping();
}

static int
run_daemon(const char *path)
{
	struct daemon d = {.path = path};
	struct sched_hooks hooks = {publish, publish_run, run_age, &d};
	struct conf *conf;
	const struct passwd *pw = NULL;
	struct daemon_info info;
	const struct capsule_conf **mine = NULL;
	size_t nmine;
	enum statedir state;
	char *notify_state = NULL;
	int probing = 0, rv = 1, k;

	if ((conf = load(path)) == NULL) {
		log_warnx("%s: configuration has errors; not starting", path);
		return 1;
	}
	if (priv_user(conf->user, &pw) == -1 ||
	    (state = statedir_init(conf->state_dir, pw)) == STATEDIR_REFUSED) {
		log_warnx("%s: not starting", path);
		goto fail;
	}
	/*
	 * glibc gives each new thread (the engines' loops, libmicrohttpd's,
	 * the notifier's) a malloc arena of its own, up to 8 per core, and
	 * keeps what they touched: a few arenas serve this load and keep RSS
	 * flat.
	 */
	mallopt(M_ARENA_MAX, 4);
	/*
	 * /metrics and /api/v1/capsules at thousands of capsules are tens of
	 * megabytes. glibc's threshold for mapping a block on its own rises
	 * to the size of the last one freed, so the next such body would
	 * come from a heap and stay resident after the scrape; a fixed
	 * threshold maps every big body apart and unmaps it once sent.
	 */
	mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
	check_fd_limit(conf);
	signals_init();
	sdnotify_init();
	if (probe_global_init() == -1)
		goto fail;
	probing = 1;
	info.version = PACKAGE_VERSION;
	info.start_time = clock_wall();
	d.store = store_new();
	/* The capsules first, then their snapshot: nobody sees it empty. */
	mine = conf_shard(conf, &nmine);
	store_sync(d.store, conf->history, mine, nmine);
	if (state != STATEDIR_MEMORY) {
		xasprintf(&d.snapshot, "%s/%s", conf->state_dir, SNAPSHOT_FILE);
		(void)store_load(d.store, d.snapshot);
		for (k = 0; k < SEQ__COUNT; k++) {
			xasprintf(&d.seq_files[k], "%s/%s.json",
			    conf->state_dir, seq_name(k));
			(void)store_seq_load(d.store, k, d.seq_files[k]);
		}
	}
	if (state != STATEDIR_WRITABLE) { /* read, but never written */
		free(d.snapshot);
		d.snapshot = NULL;
		for (k = 0; k < SEQ__COUNT; k++) {
			free(d.seq_files[k]);
			d.seq_files[k] = NULL;
		}
	} else
		xasprintf(&notify_state, "%s/%s", conf->state_dir, NOTIFY_FILE);
	d.tofu = tofu_open(state != STATEDIR_MEMORY ? conf->state_dir : NULL,
	    state == STATEDIR_WRITABLE);
	d.notify = notify_new(notify_state);
	free(notify_state);
	info.notify = d.notify;
	if ((d.runner = runner_new(d.tofu)) == NULL)
		goto fail;
	d.sched = sched_new(runner_sched(d.runner), clock_mono, &hooks);
	if ((d.http = http_start(conf, d.store, d.tofu, &info)) == NULL)
		goto fail;
	if (pw != NULL)
		priv_drop(pw);
	log_notice("gemwatch %s started: %zu capsules, http://%s/",
	    PACKAGE_VERSION, conf->ncapsules, conf->listen[0].text);
	apply(&d, conf);
	conf = NULL;
	store_set_reload(d.store, 1, clock_wall());
	http_heartbeat(d.http); /* /healthz answers 200 from here on */
	sdnotify_ready();

	serve(&d);
	rv = 0;
fail:
	/* The reverse order of start-up. */
	http_stop(d.http);
	conf_set_running(NULL);
	sched_free(d.sched); /* abandons the jobs in flight */
	runner_free(d.runner);
	notify_free(d.notify);             /* after the last result */
	if (rv == 0 && d.snapshot != NULL) /* no probe runs any more */
		(void)store_save(d.store, d.snapshot);
	if (rv == 0)
		save_seqs(&d);
	free(d.snapshot);
	for (k = 0; k < SEQ__COUNT; k++)
		free(d.seq_files[k]);
	tofu_free(d.tofu);
	free(mine);
	store_free(d.store);
	if (probing)
		probe_global_free();
	signals_free();
	conf_free(conf);
	if (rv == 0)
		log_notice("stopped");
	return rv;
}

int
main(int argc, char *argv[])
{
	const char *path = DEFAULT_CONF;
	struct conf *conf;
	int ch, check = 0, verbose = 0;

	if (argc > 1 && strcmp(argv[1], "probe") == 0) {
		log_init(LOG_LEVEL_WARN);
		return cmd_probe(argc - 1, argv + 1);
	}
	if (argc > 1 && strcmp(argv[1], "notify-test") == 0) {
		log_init(LOG_LEVEL_INFO);
		return cmd_notify_test(argc - 1, argv + 1, DEFAULT_CONF);
	}
	if (argc > 1 && strcmp(argv[1], "crawl") == 0) {
		log_init(LOG_LEVEL_WARN);
		return cmd_crawl(argc - 1, argv + 1);
	}
	if (argc > 1 && strcmp(argv[1], "survey") == 0) {
		log_init(LOG_LEVEL_WARN);
		return cmd_survey(argc - 1, argv + 1);
	}
	if (argc > 1 && strcmp(argv[1], "diagnose") == 0) {
		log_init(LOG_LEVEL_WARN);
		return cmd_diagnose(argc - 1, argv + 1);
	}
	if (argc > 1 && strcmp(argv[1], "trust") == 0) {
		log_init(LOG_LEVEL_WARN);
		return cmd_trust(argc - 1, argv + 1, DEFAULT_CONF);
	}
	while ((ch = getopt(argc, argv, "df:hnvV")) != -1) {
		switch (ch) {
		case 'd':
			verbose = 2;
			break;
		case 'f':
			path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'n':
			check = 1;
			break;
		case 'v':
			if (verbose < 1)
				verbose = 1;
			break;
		case 'V':
			version();
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "gemwatch: unexpected argument \"%s\"\n",
		    argv[optind]);
		usage(stderr);
		return 2;
	}
	log_init(verbose == 2   ? LOG_LEVEL_DEBUG
	         : verbose == 1 ? LOG_LEVEL_INFO
	                        : LOG_LEVEL_NOTICE);
	if (check) {
		if ((conf = conf_load_report(path, stderr)) == NULL)
			return 1;
		conf_free(conf);
		printf("configuration OK\n");
		return 0;
	}
	return run_daemon(path);
}
