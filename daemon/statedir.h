/*
 * The state directory (state-dir: known_hosts, history.snapshot), made
 * ready before the daemon or "gemwatch trust" reads anything from it.
 */
#ifndef GEMWATCH_STATEDIR_H
#define GEMWATCH_STATEDIR_H

#include <pwd.h>

enum statedir {
	STATEDIR_REFUSED,  /* not safe to use: do not start */
	STATEDIR_MEMORY,   /* could not be made: keep state in memory */
	STATEDIR_READONLY, /* read what it holds, write nothing */
	STATEDIR_WRITABLE
};

/*
 * Make dir ready for the user the program will run as: pw when it drops
 * to pw, else the current user. A missing directory is created and
 * handed to that user; one that exists is used as it is, and only when
 * it is owned by that user or root and not writable by its group or
 * others. Logs what it decides, once.
 */
enum statedir statedir_init(const char *dir, const struct passwd *pw);

#endif
