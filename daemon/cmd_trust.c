/*
 * "gemwatch trust NAME...": accept the certificate a capsule presents now.
 * Each capsule is probed once; the certificate it presents replaces the
 * first-seen one in state-dir/known_hosts. A running daemon notices the
 * file changed within a second and re-reads it: no restart needed. Run
 * as root, it drops to `user` before it touches the state-dir, as the
 * daemon does, and refuses a state-dir the daemon would refuse.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cert.h"
#include "cmd.h"
#include "conf.h"
#include "priv.h"
#include "dns.h"
#include "probe.h"
#include "statedir.h"
#include "utf8.h"

static void
trust_usage(FILE *f)
{
	fprintf(f, "usage: gemwatch trust [-f FILE] NAME...\n");
}

static int
trust_one(const struct conf *conf, const struct capsule_conf *c,
    struct tofu_store *tofu)
{
	struct probe_req req;
	struct probe_result res;
	struct buf subject;
	int rv = 1;

	probe_req_for(conf, c, CHECK_PAGE, &req);
	req.fingerprint = NULL;
	req.tofu = NULL;
	result_init(&res);
	probe_run(&req, &res);
	if (!res.cert.present) {
		fprintf(stderr, "gemwatch trust: %s: no certificate: %s\n",
		    c->name, res.message ? res.message : "probe failed");
		goto done;
	}
	tofu_forget(tofu, c->url.host, c->url.port);
	tofu_check(tofu, c->url.host, c->url.port, &res.cert);
	/* The subject is the server's: escaped as gemwatch probe does. */
	buf_init(&subject);
	utf8_escape_text(&subject, res.cert.subject, strlen(res.cert.subject));
	printf("%s: now trusting the certificate of %s port %d\n"
	       "  sha256 %s\n  subject %s\n",
	    c->name, c->url.host, c->url.port, res.cert.sha256,
	    subject.data != NULL ? subject.data : "");
	buf_free(&subject);
	if (c->has_fingerprint)
		printf("  note: %s pins a fingerprint; the pin still decides\n",
		    c->name);
	rv = 0;
done:
	result_clear(&res);
	return rv;
}

int
cmd_trust(int argc, char *argv[], const char *path)
{
	struct conf *conf;
	struct tofu_store *tofu;
	const struct capsule_conf *c;
	const struct passwd *pw;
	size_t i;
	int first, rv = 0;

	if ((first = cmd_config_opts(argc, argv, &path, trust_usage, &rv)) ==
	    -1)
		return rv;
	argc -= first;
	argv += first;
	if (argc == 0) {
		trust_usage(stderr);
		return 2;
	}
	if ((conf = conf_load_report(path, stderr)) == NULL)
		return 1;
	for (i = 0; i < (size_t)argc; i++) {
		if (conf_capsule(conf, argv[i]) == NULL) {
			fprintf(stderr,
			    "gemwatch trust: no capsule named "
			    "\"%s\" in %s\n",
			    argv[i], path);
			conf_free(conf);
			return 2;
		}
	}
	/* As the daemon: as `user`, in a state-dir that is safe to use. */
	if (priv_user(conf->user, &pw) == -1 ||
	    statedir_init(conf->state_dir, pw) != STATEDIR_WRITABLE) {
		fprintf(stderr, "gemwatch trust: cannot save pins in %s\n",
		    conf->state_dir);
		conf_free(conf);
		return 1;
	}
	if (pw != NULL)
		priv_drop(pw);
	if (probe_global_init() == -1) {
		conf_free(conf);
		return 1;
	}
	dns_servers_set(conf->resolvers, conf->nresolvers);
	tofu = tofu_open(conf->state_dir, 1);
	for (i = 0; i < (size_t)argc; i++) {
		c = conf_capsule(conf, argv[i]);
		if (trust_one(conf, c, tofu) != 0)
			rv = 1;
	}
	if (tofu_free(tofu) != 0)
		rv = 1;
	probe_global_free();
	conf_free(conf);
	return rv;
}
