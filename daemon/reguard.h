/*
 * The cost guard of an expect-body regex (pure): whether glibc's regcomp
 * could take too long or too much memory with a pattern.
 */
#ifndef GEMWATCH_REGUARD_H
#define GEMWATCH_REGUARD_H

#define REGUARD_LEN_MAX 1024 /* bytes in a pattern */

/*
 * Why the POSIX extended regex re must not be compiled, as the end of a
 * sentence that starts with the pattern ("is too complex (groups nested
 * too deep)"); NULL when it is fine. The string returned is static.
 */
const char *reguard_check(const char *re);

#endif
