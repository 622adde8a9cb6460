/*
 * The store's outcomes of runs of requests (seq.h): one JSON document per
 * capsule and kind, put by the runs' engine thread, read by the renderers
 * under the read lock, saved to a file of its own per kind in state-dir
 * ({"version":1,"capsules":{NAME:OUTCOME,...}}, written whole through
 * file_replace) and loaded back at start.
 */
#include "config.h"

#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "file.h"
#include "log.h"
#include "store_impl.h"
#include "xmalloc.h"

/* The largest file of outcomes read back. */
#define SEQ_FILE_MAX (256 * 1024 * 1024)
#define SEQ_FILE_VERSION 1

void
store_seq_put(
    struct store *s, const char *name, enum seq_kind k, json_t *outcome)
{
	struct store_capsule *cap;
	json_t *old = NULL;

	store_wrlock(s);
	if ((cap = store_find(s, name)) != NULL) {
		old = cap->seq[k];
		cap->seq[k] = outcome;
		outcome = NULL;
		s->seq_dirty[k] = 1;
	}
	store_unlock(s);
	json_decref(old);
	json_decref(outcome);
}

double
store_seq_last(struct store *s, const char *name, enum seq_kind k)
{
	const struct store_capsule *cap;
	double t = 0;
	json_t *v;

	store_rdlock(s);
	if ((cap = store_find(s, name)) != NULL && cap->seq[k] != NULL &&
	    json_is_number(v = json_object_get(cap->seq[k], "timestamp")))
		t = json_number_value(v);
	store_unlock(s);
	return t;
}

static int
fill(FILE *fp, void *arg)
{
	return json_dumpf(arg, fp, JSON_COMPACT) == 0 && fputc('\n', fp) != EOF
	           ? 0
	           : -1;
}

int
store_seq_save(struct store *s, enum seq_kind k, const char *path)
{
	const struct store_capsule *cap;
	json_t *root, *caps;
	size_t i;
	int rv;

	/* Copied out under the lock; written without it. */
	store_wrlock(s);
	if (!s->seq_dirty[k]) {
		store_unlock(s);
		return 0;
	}
	s->seq_dirty[k] = 0;
	caps = json_object();
	for (i = 0; i < s->ncaps; i++) {
		cap = &s->caps[i];
		if (cap->seq[k] != NULL)
			json_object_set(caps, cap->name, cap->seq[k]);
	}
	store_unlock(s);
	root = json_pack(
	    "{s:i,s:o}", "version", SEQ_FILE_VERSION, "capsules", caps);
	if (root == NULL)
		fatalx("out of memory");
	rv = file_replace(path, 0600, fill, root);
	json_decref(root);
	if (rv == -1) {
		store_wrlock(s);
		s->seq_dirty[k] = 1; /* next time, then */
		store_unlock(s);
	}
	return rv;
}

/* Put root's outcomes for the capsules configured; -1 with err if unusable. */
static int
restore(
    struct store *s, enum seq_kind k, json_t *root, char *err, size_t errlen)
{
	struct store_capsule *cap;
	const char *name;
	json_t *caps, *v;
	size_t n = 0;

	if (!json_is_object(root) ||
	    json_integer_value(json_object_get(root, "version")) !=
	        SEQ_FILE_VERSION ||
	    !json_is_object(caps = json_object_get(root, "capsules"))) {
		snprintf(err, errlen, "not a file of %s outcomes, version %d",
		    seq_name(k), SEQ_FILE_VERSION);
		return -1;
	}
	store_wrlock(s);
	json_object_foreach(caps, name, v)
	{
		if (!json_is_object(v) || (cap = store_find(s, name)) == NULL)
			continue;
		json_decref(cap->seq[k]);
		cap->seq[k] = json_incref(v);
		n++;
	}
	store_unlock(s);
	log_info("%s outcomes of %zu capsules restored", seq_name(k), n);
	return 0;
}

int
store_seq_load(struct store *s, enum seq_kind k, const char *path)
{
	struct stat st;
	json_error_t jerr;
	json_t *root = NULL;
	char err[256], *aside;
	FILE *fp;
	int fd, rv = -1;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 0;
		log_warn("%s", path);
		return -1;
	}
	if (fstat(fd, &st) == -1 || (fp = fdopen(fd, "r")) == NULL) {
		log_warn("%s", path);
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > SEQ_FILE_MAX)
		snprintf(err, sizeof err,
		    "not a regular file of at most %d bytes", SEQ_FILE_MAX);
	else if ((root = json_loadf(fp, JSON_REJECT_DUPLICATES, &jerr)) == NULL)
		snprintf(err, sizeof err, "line %d: %s", jerr.line, jerr.text);
	else
		rv = restore(s, k, root, err, sizeof err);
	fclose(fp);
	json_decref(root);
	if (rv == 0)
		return 0;
	xasprintf(&aside, "%s.corrupt", path);
	if (rename(path, aside) == 0)
		log_warnx("%s: %s; moved aside to %s", path, err, aside);
	else
		log_warn("%s: %s; rename to %s", path, err, aside);
	free(aside);
	return -1;
}
