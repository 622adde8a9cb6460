/*
 * Running as the configured user: the daemon and "gemwatch trust",
 * started as root, drop to `user` once what needs root is done.
 */
#ifndef GEMWATCH_PRIV_H
#define GEMWATCH_PRIV_H

#include <pwd.h>

/*
 * The user to drop to: name's entry when running as root and name is not
 * NULL, otherwise none (*pw NULL: stay who we are). Returns 0, or -1 when
 * the user does not exist (logged). *pw points into a copy owned by this
 * module, valid until the next call.
 */
int priv_user(const char *name, const struct passwd **pw);
/* Become pw for good (real, effective and saved ids, groups); fatal if not. */
void priv_drop(const struct passwd *pw);

#endif
