/*
 * main() for the fuzz targets in normal builds: runs every file named on
 * the command line, or every regular file of a directory named there
 * (sorted, dotfiles skipped), through LLVMFuzzerTestOneInput once, and
 * prints TAP, one line per file. With no arguments it replays the
 * target's own NAME.in/ and NAME.repro/ (FUZZ_CORPUS, set by Makefile.am),
 * which is what `make check` runs. A crash or an abort() in the target is
 * a failed test; a file that cannot be read is "not ok".
 */
#include "config.h"

#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#define REPLAY_MAX (1024 * 1024) /* bytes read from one file */

static int replay_n, replay_failed;

static void
replay_result(int pass, const char *path, const char *why)
{
	replay_n++;
	if (pass)
		printf("ok %d - %s\n", replay_n, path);
	else {
		replay_failed++;
		printf("not ok %d - %s: %s\n", replay_n, path, why);
	}
	fflush(stdout);
}

static void
replay_file(const char *path)
{
	FILE *f;
	uint8_t *data;
	size_t size;
	int failed;

	if ((f = fopen(path, "rb")) == NULL) {
		replay_result(0, path, strerror(errno));
		return;
	}
	/* One byte more than the limit tells a long file from a full one. */
	data = malloc(REPLAY_MAX + 1);
	if (data == NULL) {
		fclose(f);
		replay_result(0, path, "out of memory");
		return;
	}
	size = fread(data, 1, REPLAY_MAX + 1, f);
	failed = ferror(f);
	fclose(f);
	if (failed) {
		free(data);
		replay_result(0, path, "read error");
		return;
	}
	if (size > REPLAY_MAX)
		size = REPLAY_MAX;
	/* Exact size, so that valgrind and ASan see any read past the end. */
	data = realloc(data, size > 0 ? size : 1);
	if (data == NULL) {
		replay_result(0, path, "out of memory");
		return;
	}
	LLVMFuzzerTestOneInput(data, size);
	free(data);
	replay_result(1, path, NULL);
}

static int
replay_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
replay_dir(const char *dir)
{
	DIR *d;
	struct dirent *de;
	struct stat st;
	char **names = NULL, **tmp, *path;
	size_t n = 0, i;

	if ((d = opendir(dir)) == NULL) {
		replay_result(0, dir, strerror(errno));
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		tmp = realloc(names, (n + 1) * sizeof(*names));
		if (tmp == NULL || (tmp[n] = strdup(de->d_name)) == NULL) {
			fprintf(stderr, "replay: out of memory\n");
			exit(1);
		}
		names = tmp;
		n++;
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), replay_cmp);
	for (i = 0; i < n; i++) {
		if ((path = malloc(strlen(dir) + 1 + strlen(names[i]) + 1)) ==
		    NULL) {
			fprintf(stderr, "replay: out of memory\n");
			exit(1);
		}
		sprintf(path, "%s/%s", dir, names[i]);
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
			replay_file(path);
		free(path);
		free(names[i]);
	}
	free(names);
}

static void
replay_path(const char *path)
{
	struct stat st;

	if (stat(path, &st) == -1)
		replay_result(0, path, strerror(errno));
	else if (S_ISDIR(st.st_mode))
		replay_dir(path);
	else
		replay_file(path);
}

int
main(int argc, char **argv)
{
	int i;

	if (argc > 1) {
		for (i = 1; i < argc; i++)
			replay_path(argv[i]);
	} else {
#ifdef FUZZ_CORPUS
		replay_path(FUZZ_CORPUS ".in");
		replay_path(FUZZ_CORPUS ".repro");
#else
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return 2;
#endif
	}
	printf("1..%d\n", replay_n);
	return replay_failed ? 1 : 0;
}
