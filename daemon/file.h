/*
 * Replacing a file whole: the one way gemwatch writes its state files
 * (known_hosts, history.snapshot).
 */
#ifndef GEMWATCH_FILE_H
#define GEMWATCH_FILE_H

#include <sys/types.h>
#include <stdio.h>

/*
 * Write what fill(fp, arg) writes to a new file and make it path, with
 * the given mode less the umask, atomically and durably: a reader sees the old
 * file or the new one, whole, even after a crash. fill returns 0, or -1 to give
 * up. Returns 0, or -1 (logged) with path unchanged.
 */
int file_replace(
    const char *path, mode_t mode, int (*fill)(FILE *, void *), void *arg);
/*
 * The same, not logged: on -1, *why says what failed (the caller frees
 * it), or is NULL when fill gave up.
 */
int file_replace_why(const char *path, mode_t mode, int (*fill)(FILE *, void *),
    void *arg, char **why);

#endif
