/*
 * Dropping privileges the OpenBSD way: groups, then gid, then uid, and a
 * check that root cannot be regained.
 */
#include "config.h"

#include <sys/types.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "priv.h"

static struct passwd priv_pw;
static char priv_name[64]; /* conf.c allows 33 bytes */

int
priv_user(const char *name, const struct passwd **pw)
{
	struct passwd *p;

	*pw = NULL;
	if (name == NULL || geteuid() != 0)
		return 0;
	if ((p = getpwnam(name)) == NULL) {
		log_warnx("user %s does not exist", name);
		return -1;
	}
	/* getpwnam's storage is overwritten by the next lookup: keep ours. */
	(void)snprintf(priv_name, sizeof priv_name, "%s", p->pw_name);
	memset(&priv_pw, 0, sizeof priv_pw);
	priv_pw.pw_name = priv_name;
	priv_pw.pw_uid = p->pw_uid;
	priv_pw.pw_gid = p->pw_gid;
	*pw = &priv_pw;
	return 0;
}

void
priv_drop(const struct passwd *pw)
{
	if (setgroups(1, &pw->pw_gid) == -1 || setgid(pw->pw_gid) == -1 ||
	    setuid(pw->pw_uid) == -1)
		fatal("cannot drop privileges to %s", pw->pw_name);
	if (setuid(0) != -1)
		fatalx("privileges to %s were not dropped", pw->pw_name);
	log_info("running as %s", pw->pw_name);
}
