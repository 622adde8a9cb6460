/*
 * Unit tests for daemon/file.c: file_replace makes a new file or replaces
 * an old one whole, with the mode asked for less the umask; a fill that gives
 * up leaves the old file as it was; a link at the target or at a
 * temporary-looking name is never followed; no temporary file is left behind,
 * whatever happened; a missing directory is an error with a warning.
 */
#include "config.h"

#include <sys/stat.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "file.h"
#include "fixture.h"
#include "tap.h"

static char dir[] = "/tmp/test_file.XXXXXX";

static int
fill_text(FILE *fp, void *arg)
{
	fputs(arg, fp);
	return 0;
}

static int
fill_fail(FILE *fp, void *arg)
{
	fputs(arg, fp);
	return -1;
}

/* The whole of a small file, or "" (static). */
static const char *
slurp(const char *p)
{
	static char buf[256];
	ssize_t n;
	int fd;

	buf[0] = '\0';
	if ((fd = open(p, O_RDONLY | O_NOFOLLOW)) == -1)
		return buf;
	n = read(fd, buf, sizeof buf - 1);
	buf[n > 0 ? n : 0] = '\0';
	close(fd);
	return buf;
}

/* How many entries of dir there are, "." and ".." aside. */
static int
entries(void)
{
	DIR *d;
	struct dirent *e;
	int n = 0;

	if ((d = opendir(dir)) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

int
main(void)
{
	char path[200], tmp[220], victim[220], other[220];
	const char *out;
	struct stat st;

	(void)umask(002);
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(path, sizeof path, "%s/state", dir);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	snprintf(victim, sizeof victim, "%s/victim", dir);
	snprintf(other, sizeof other, "%s/other", dir);

	is_int(file_replace(path, 0640, fill_text, "one\n"), 0, "a new file");
	is_str(slurp(path), "one\n", "holds what fill wrote");
	ok(stat(path, &st) == 0 && (st.st_mode & 07777) == 0640,
	    "with the mode asked for");
	is_int(file_replace(path, 0644, fill_text, "two\n"), 0, "replaced");
	is_str(slurp(path), "two\n", "holds the new text");
	ok(stat(path, &st) == 0 && (st.st_mode & 07777) == 0644,
	    "and the new mode");
	is_int(entries(), 1, "no temporary file left");
	is_int(file_replace(path, 0666, fill_text, "two\n"), 0, "mode 0666");
	ok(stat(path, &st) == 0 && (st.st_mode & 07777) == 0664,
	    "less the umask (002)");

	is_int(file_replace(path, 0644, fill_fail, "half"), -1,
	    "a fill that gives up fails");
	is_str(slurp(path), "two\n", "and leaves the old file whole");
	is_int(entries(), 1, "and no temporary file");

	/* Someone who may write the directory plants links. */
	if (symlink(victim, tmp) == -1)
		perror("symlink");
	capture_begin();
	(void)file_replace(victim, 0600, fill_text, "precious\n");
	capture_end();
	is_int(file_replace(path, 0644, fill_text, "three\n"), 0,
	    "with a link at PATH.tmp");
	is_str(slurp(victim), "precious\n", "the link is not followed");
	ok(lstat(tmp, &st) == 0 && S_ISLNK(st.st_mode), "and is left alone");
	unlink(path);
	if (symlink(victim, path) == -1)
		perror("symlink");
	is_int(file_replace(path, 0644, fill_text, "four\n"), 0,
	    "with a link at PATH itself");
	is_str(slurp(victim), "precious\n", "what it points to is unchanged");
	ok(lstat(path, &st) == 0 && S_ISREG(st.st_mode),
	    "the link was replaced by the file");
	is_str(slurp(path), "four\n", "which holds the new text");
	unlink(tmp);

	/* Hard-linked elsewhere: the other name keeps the old content. */
	if (link(path, other) == -1)
		perror("link");
	is_int(file_replace(path, 0644, fill_text, "five\n"), 0,
	    "a file with a second name");
	is_str(slurp(other), "four\n", "the second name is not written to");

	capture_begin();
	is_int(file_replace("/nonexistent/dir/state", 0644, fill_text, "x"), -1,
	    "a missing directory fails");
	out = capture_end();
	ok(strstr(out, "warning: /nonexistent/dir/state: creating a temporary "
	               "file: No such file or directory") != NULL,
	    "with a warning: %s", out);

	unlink(path);
	unlink(other);
	unlink(victim);
	rmdir(dir);
	return done_testing();
}
