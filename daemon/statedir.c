/*
 * The state directory. A directory gemwatch creates is handed to the user
 * it runs as; one that exists is someone's choice and is never chowned
 * (with `state-dir /tmp` and `user nobody`, /tmp would have been given to
 * nobody). Whoever may write the directory may plant files and links in
 * it, so an existing directory must belong to the user gemwatch runs as,
 * or to root, and must not be writable by its group or others; otherwise
 * it is refused. When that user cannot write it (a root-owned directory,
 * a read-only mount), what it holds is still read and nothing is written.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "statedir.h"
#include "xmalloc.h"

/* Create dir and any missing parent; 1 when dir was made here, 0 when it
 * existed, -1 on error (errno set). */
static int
statedir_make(const char *dir)
{
	char *p, *s;
	int rv = 1;

	s = xstrdup(dir);
	for (p = s + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		(void)mkdir(s, 0755); /* an existing parent is fine */
		*p = '/';
	}
	if (mkdir(s, 0750) == -1)
		rv = errno == EEXIST ? 0 : -1;
	free(s);
	return rv;
}

enum statedir
statedir_init(const char *dir, const struct passwd *pw)
{
	struct passwd *self;
	struct statvfs vfs;
	struct stat st;
	char user[64];
	uid_t uid = pw != NULL ? pw->pw_uid : geteuid();
	int made;

	if (pw != NULL)
		(void)snprintf(user, sizeof user, "%s", pw->pw_name);
	else if ((self = getpwuid(uid)) != NULL)
		(void)snprintf(user, sizeof user, "%s", self->pw_name);
	else
		(void)snprintf(user, sizeof user, "uid %u", (unsigned)uid);

	if ((made = statedir_make(dir)) == -1) {
		log_warn("state-dir %s; keeping state in memory only", dir);
		return STATEDIR_MEMORY;
	}
	if (made && pw != NULL && chown(dir, pw->pw_uid, pw->pw_gid) == -1) {
		log_warn("state-dir %s: chown to %s", dir, user);
		return STATEDIR_REFUSED;
	}
	if (stat(dir, &st) == -1) {
		log_warn("state-dir %s; keeping state in memory only", dir);
		return STATEDIR_MEMORY;
	}
	if (!S_ISDIR(st.st_mode)) {
		log_warnx(
		    "state-dir %s is not a directory; refusing to use it", dir);
		return STATEDIR_REFUSED;
	}
	if (st.st_uid != uid && st.st_uid != 0) {
		log_warnx("state-dir %s is owned by uid %u, not by %s or root; "
		          "refusing to use it",
		    dir, (unsigned)st.st_uid, user);
		return STATEDIR_REFUSED;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		log_warnx("state-dir %s is writable by others than its owner "
		          "(mode %04o); refusing to use it",
		    dir, (unsigned)(st.st_mode & 07777));
		return STATEDIR_REFUSED;
	}
	if ((statvfs(dir, &vfs) == 0 && (vfs.f_flag & ST_RDONLY)) ||
	    (uid != 0 &&
	        (st.st_uid != uid || (st.st_mode & (S_IWUSR | S_IXUSR)) !=
	                                 (S_IWUSR | S_IXUSR)))) {
		log_warnx("state-dir %s is not writable by %s: the pins and "
		          "the history in it are read, nothing new is saved",
		    dir, user);
		return STATEDIR_READONLY;
	}
	return STATEDIR_WRITABLE;
}
