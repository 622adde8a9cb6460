/*
 * Atomic, durable file replacement. The temporary file is made by
 * mkostemp in the target's own directory, so rename(2) can move it over
 * the target, and with O_EXCL under a name nobody could guess, so a link
 * or a file someone left at a temporary-looking name is never followed
 * or truncated. It is written, flushed and fsynced, renamed over the
 * target (which replaces a link at the target itself, not what it points
 * to), and the directory is fsynced so that the rename survives a crash.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "file.h"
#include "log.h"
#include "xmalloc.h"

static pthread_once_t file_once = PTHREAD_ONCE_INIT;
static mode_t file_umask;

/* umask(2) is read by setting it, once; for that moment it is 077, so a
 * file another thread makes then is only more private. */
static void
file_umask_read(void)
{
	file_umask = umask(077);
	(void)umask(file_umask);
}

/* Make a rename in path's directory durable. */
static int
sync_dir(const char *path)
{
	char *dir, *slash;
	int fd, rv = -1;

	dir = xstrdup(path);
	if ((slash = strrchr(dir, '/')) == NULL)
		strcpy(dir, ".");
	else if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
		rv = fsync(fd);
		close(fd);
	}
	free(dir);
	return rv;
}

/* Say what failed, with errno's words. */
static void __attribute__((format(printf, 2, 3)))
failed(char **why, const char *fmt, ...)
{
	va_list ap;
	char *what;
	int saved = errno;

	va_start(ap, fmt);
	(void)xvasprintf(&what, fmt, ap);
	va_end(ap);
	xasprintf(why, "%s: %s", what, strerror(saved));
	free(what);
	errno = saved;
}

int
file_replace_why(const char *path, mode_t mode, int (*fill)(FILE *, void *),
    void *arg, char **why)
{
	FILE *fp = NULL;
	char *tmp;
	int fd;

	*why = NULL;
	xasprintf(&tmp, "%s.tmp.XXXXXX", path);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1) {
		failed(why, "%s: creating a temporary file", path);
		free(tmp);
		return -1;
	}
	(void)pthread_once(&file_once, file_umask_read);
	if (fchmod(fd, mode & ~file_umask) == -1 ||
	    (fp = fdopen(fd, "w")) == NULL) {
		failed(why, "%s", tmp);
		close(fd);
		goto fail;
	}
	if (fill(fp, arg) == -1)
		goto fail;
	if (fflush(fp) != 0 || ferror(fp) || fsync(fileno(fp)) != 0) {
		failed(why, "%s", tmp);
		goto fail;
	}
	if (fclose(fp) != 0) {
		fp = NULL;
		failed(why, "%s", tmp);
		goto fail;
	}
	fp = NULL;
	if (rename(tmp, path) != 0) {
		failed(why, "rename %s to %s", tmp, path);
		goto fail;
	}
	if (sync_dir(path) == -1)
		log_warn("%s: fsync of its directory", path);
	free(tmp);
	return 0;
fail:
	if (fp != NULL)
		fclose(fp);
	(void)unlink(tmp);
	free(tmp);
	return -1;
}

int
file_replace(
    const char *path, mode_t mode, int (*fill)(FILE *, void *), void *arg)
{
	char *why;
	int rv;

	if ((rv = file_replace_why(path, mode, fill, arg, &why)) == -1 &&
	    why != NULL)
		log_warnx("%s", why);
	free(why);
	return rv;
}
