/*
 * gemwatch: options, start-up and shut-down order.
 *
 * Start-up: configuration, TLS library, store (with the capsules and the
 * snapshot loaded, so nobody ever sees it empty after a restart), TOFU
 * store, HTTP endpoint (bound before privileges are dropped), scheduler.
 * The main thread then runs the scheduler, saves the snapshot every
 * minute and handles signals through a self-pipe: SIGHUP re-reads the
 * configuration, SIGTERM and SIGINT stop. Tear-down runs in the reverse
 * order, saving the snapshot once the probes are stopped, so an orderly
 * exit loses nothing and frees everything.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>
#include <ares.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <gnutls/gnutls.h>
#include <grp.h>
#include <jansson.h>
#include <malloc.h>
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
#include "dns.h"
#include "engine.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "probe.h"
#include "sched.h"
#include "store.h"
#include "xmalloc.h"

#define DEFAULT_CONF SYSCONFDIR "/gemwatch.conf"
#define SNAPSHOT_FILE "history.snapshot"	/* in state-dir */
#define SNAPSHOT_INTERVAL 60			/* seconds between saves */

static int signal_pipe[2] = { -1, -1 };

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: gemwatch [-dv] [-f FILE]      run the daemon in the foreground\n"
	    "       gemwatch -n [-f FILE]         check the configuration and exit\n"
	    "       gemwatch probe [-j] [-4|-6] [-c N] [-t SECONDS] [--sni NAME] URL...\n"
	    "                                     probe each URL once and report\n"
	    "       gemwatch survey [-c N] [-t SECONDS] [-j | --csv] [FILE | -]\n"
	    "                                     probe a list of capsules, then count\n"
	    "       gemwatch trust [-f FILE] NAME...\n"
	    "                                     accept the certificate a capsule presents now\n"
	    "       gemwatch -V                   print versions\n"
	    "       gemwatch -h                   this help\n"
	    "\n"
	    "  -f FILE  configuration file (default " DEFAULT_CONF ")\n"
	    "  -n       check the configuration: print \"configuration OK\" or the errors\n"
	    "  -v       log informational messages; -d also debug detail\n"
	    "\n"
	    "Signals: SIGHUP re-reads the configuration, SIGTERM or SIGINT stop.\n"
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
	struct conf_errors	 errs = { NULL, 0 };
	struct conf		*conf;
	size_t			 i;

	conf = conf_load(path, &errs);
	for (i = 0; i < errs.n; i++)
		log_warnx("%s", errs.msg[i]);
	conf_errors_free(&errs);
	return conf;
}

static void
on_signal(int sig)
{
	int		saved = errno;
	unsigned char	c = (unsigned char)sig;

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

/*
 * Idle HTTP clients and probes each hold a descriptor: allow many, and
 * say so when `concurrency` probes would not fit.
 */
static void
check_fd_limit(const struct conf *conf)
{
	unsigned long limit = engine_fd_raise();

	if (conf->concurrency > engine_fd_capacity())
		log_warnx("concurrency %u needs %u file descriptors, but the "
		    "limit is %lu: probes beyond %u at once will fail; raise "
		    "the limit (LimitNOFILE=, ulimit -n) or lower concurrency",
		    conf->concurrency, conf->concurrency + ENGINE_FD_RESERVE,
		    limit, engine_fd_capacity());
}

/*
 * The state directory: created when missing. Returns dir when usable,
 * NULL (after a warning) when the daemon must keep its state in memory.
 */
static const char *
state_dir_init(const char *dir, const struct passwd *pw)
{
	char	*p, *s;

	s = xstrdup(dir);
	for (p = s + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		(void)mkdir(s, 0755);
		*p = '/';
	}
	if (mkdir(s, 0750) == -1 && errno != EEXIST) {
		log_warn("state-dir %s; keeping state in memory only", s);
		free(s);
		return NULL;
	}
	free(s);
	if (pw != NULL && chown(dir, pw->pw_uid, pw->pw_gid) == -1)
		log_warn("chown %s", dir);
	if (access(dir, W_OK | X_OK) == -1 && pw == NULL) {
		log_warn("state-dir %s is not writable; keeping state in "
		    "memory only", dir);
		return NULL;
	}
	return dir;
}

static void
drop_privileges(const struct passwd *pw)
{
	if (setgroups(1, &pw->pw_gid) == -1 || setgid(pw->pw_gid) == -1 ||
	    setuid(pw->pw_uid) == -1)
		fatal("cannot drop privileges to %s", pw->pw_name);
	if (setuid(0) != -1)
		fatalx("privileges to %s were not dropped", pw->pw_name);
	log_info("running as %s", pw->pw_name);
}

static void
reload(struct sched *sched, struct store *store, const char *path)
{
	struct conf		*conf;
	const struct conf	*old = sched_conf(sched);
	size_t			 i;
	int			 listen_changed = 0;

	if ((conf = load(path)) == NULL) {
		log_warnx("reload: %s has errors; keeping the running "
		    "configuration", path);
		store_set_reload(store, 0, clock_wall());
		return;
	}
	if (conf->nlisten != old->nlisten)
		listen_changed = 1;
	for (i = 0; !listen_changed && i < conf->nlisten; i++)
		if (strcmp(conf->listen[i].text, old->listen[i].text) != 0)
			listen_changed = 1;
	if (listen_changed)
		log_warnx("reload: listen addresses change only on restart");
	log_notice("reload: %s: %zu capsules", path, conf->ncapsules);
	check_fd_limit(conf);
	dns_servers_set(conf->resolvers, conf->nresolvers);
	sched_apply(sched, conf);
	store_set_reload(store, 1, clock_wall());
}

static int
run_daemon(const char *path)
{
	struct conf		*conf;
	struct store		*store;
	struct tofu_store	*tofu;
	struct http		*http;
	struct sched		*sched;
	struct passwd		*pw = NULL;
	struct daemon_info	 info;
	struct pollfd		 pfd[2];
	const char		*state;
	char			*snapshot = NULL;
	double			 saved;
	unsigned char		 sig;
	int			 wait_ms, stop = 0;

	if ((conf = load(path)) == NULL) {
		log_warnx("%s: configuration has errors; not starting", path);
		return 1;
	}
	if (conf->user != NULL && geteuid() == 0) {
		if ((pw = getpwnam(conf->user)) == NULL) {
			log_warnx("user %s does not exist", conf->user);
			conf_free(conf);
			return 1;
		}
	}
	/*
	 * glibc gives each new thread (workers, /probe, getaddrinfo_a's
	 * helpers) a malloc arena of its own, up to 8 per core, and keeps
	 * what they touched: a few arenas serve this load and keep RSS flat.
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
	if (probe_global_init() == -1) {
		conf_free(conf);
		return 1;
	}
	dns_servers_set(conf->resolvers, conf->nresolvers);
	info.version = PACKAGE_VERSION;
	info.start_time = clock_wall();
	store = store_new();
	state = state_dir_init(conf->state_dir, pw);
	if (state != NULL) {	/* state points into conf, which goes away */
		xasprintf(&snapshot, "%s/%s", state, SNAPSHOT_FILE);
		store_sync(store, conf);	/* sched_apply's will keep it */
		(void)store_load(store, snapshot);
	}
	saved = clock_mono();
	tofu = tofu_open(state);
	sched = sched_new(store, tofu);
	if ((http = http_start(conf, store, sched, &info)) == NULL) {
		sched_free(sched);
		tofu_free(tofu);
		store_free(store);
		probe_global_free();
		conf_free(conf);
		free(snapshot);
		return 1;
	}
	if (pw != NULL)
		drop_privileges(pw);
	log_notice("gemwatch %s started: %zu capsules, http://%s/",
	    PACKAGE_VERSION, conf->ncapsules, conf->listen[0].text);
	sched_apply(sched, conf);
	store_set_reload(store, 1, clock_wall());

	pfd[0].fd = signal_pipe[0];
	pfd[0].events = POLLIN;
	pfd[1].fd = sched_fd(sched);
	pfd[1].events = POLLIN;
	while (!stop) {
		wait_ms = sched_run(sched);
		http_heartbeat(http);
		if (poll(pfd, 2, wait_ms) == -1 && errno != EINTR)
			fatal("poll");
		while (read(signal_pipe[0], &sig, 1) == 1) {
			if (sig == SIGHUP)
				reload(sched, store, path);
			else {
				log_notice("received signal %d; stopping", sig);
				stop = 1;
			}
		}
		if (snapshot != NULL && clock_mono() - saved >= SNAPSHOT_INTERVAL) {
			(void)store_save(store, snapshot);
			saved = clock_mono();
		}
	}

	http_stop(http);
	sched_free(sched);
	if (snapshot != NULL)	/* no probe runs any more */
		(void)store_save(store, snapshot);
	free(snapshot);
	tofu_free(tofu);
	store_free(store);
	probe_global_free();
	close(signal_pipe[0]);
	close(signal_pipe[1]);
	log_notice("stopped");
	return 0;
}

int
main(int argc, char *argv[])
{
	const char	*path = DEFAULT_CONF;
	struct conf	*conf;
	int		 ch, check = 0, verbose = 0;

	if (argc > 1 && strcmp(argv[1], "probe") == 0) {
		log_init(LOG_LEVEL_WARN);
		return cmd_probe(argc - 1, argv + 1);
	}
	if (argc > 1 && strcmp(argv[1], "survey") == 0) {
		log_init(LOG_LEVEL_WARN);
		return cmd_survey(argc - 1, argv + 1);
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
	log_init(verbose == 2 ? LOG_LEVEL_DEBUG :
	    verbose == 1 ? LOG_LEVEL_INFO : LOG_LEVEL_WARN);
	if (check) {
		if ((conf = conf_load_report(path, stderr)) == NULL)
			return 1;
		conf_free(conf);
		printf("configuration OK\n");
		return 0;
	}
	return run_daemon(path);
}
