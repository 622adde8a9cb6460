/*
 * "gemwatch notify-test [NAME]": run every notify command of the
 * configuration once, with a sample event about capsule NAME (or the
 * first capsule), the way the daemon would: same environment, same JSON
 * on stdin, same deadline. Each outcome is logged; the exit status says
 * whether all of them succeeded.
 */
#include "config.h"

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "conf.h"
#include "notify.h"

static void
notify_test_usage(FILE *f)
{
	fprintf(f, "usage: gemwatch notify-test [-f FILE] [NAME]\n");
}

int
cmd_notify_test(int argc, char *argv[], const char *path)
{
	uint64_t counts[NOTIFY_EVENT__COUNT][NOTIFY_OUTCOME__COUNT];
	const struct capsule_conf *c = NULL;
	struct conf *conf;
	struct notify *n;
	struct sigaction sa;
	int first, rv;

	if ((first = cmd_config_opts(
	         argc, argv, &path, notify_test_usage, &rv)) == -1)
		return rv;
	argc -= first;
	argv += first;
	if (argc > 1) {
		notify_test_usage(stderr);
		return 2;
	}
	if ((conf = conf_load_report(path, stderr)) == NULL)
		return 1;
	if (argc == 1 && (c = conf_capsule(conf, argv[0])) == NULL) {
		fprintf(stderr,
		    "gemwatch notify-test: no capsule named \"%s\" "
		    "in %s\n",
		    argv[0], path);
		conf_free(conf);
		return 2;
	}
	if (c == NULL && conf->ncapsules > 0)
		c = &conf->capsules[0];
	if (conf->nnotify == 0) {
		fprintf(stderr,
		    "gemwatch notify-test: %s has no notify "
		    "command\n",
		    path);
		conf_free(conf);
		return 1;
	}
	/* A command that does not read its stdin must not stop us. */
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_IGN;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGPIPE, &sa, NULL);

	n = notify_new(NULL);
	notify_apply(n, conf);
	notify_test(n, c);
	notify_drain(n);
	notify_counts(n, counts);
	notify_free(n);
	rv = counts[NOTIFY_TEST][NOTIFY_OK] == conf->nnotify ? 0 : 1;
	printf("notify-test: %llu of %zu commands succeeded\n",
	    (unsigned long long)counts[NOTIFY_TEST][NOTIFY_OK], conf->nnotify);
	conf_free(conf);
	return rv;
}
