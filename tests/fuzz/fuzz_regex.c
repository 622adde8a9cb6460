/*
 * Fuzz target for daemon/reguard.c: reguard_check on arbitrary bytes,
 * then what it lets through is compiled with glibc's regcomp, as conf.c
 * does, and run once on a short subject. The guard must never crash, must
 * refuse what is too long, must explain every refusal, and must let
 * nothing through that makes regcomp or regexec slow or large: libFuzzer's
 * -timeout and -rss_limit_mb catch those, and a replayed corpus that grew
 * slow would show in make check's time.
 */
#include "config.h"

#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "reguard.h"

#define SUBJECT "# Welcome\n=> gemini://a.example/ aaaa abcabc xyz 0123\n"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	regmatch_t m[1];
	regex_t re;
	const char *why;
	char *p;

	/* A pattern is a C string: the input up to its first NUL. */
	if ((p = malloc(size + 1)) == NULL)
		abort();
	memcpy(p, data, size);
	p[size] = '\0';
	why = reguard_check(p);
	if (strlen(p) > REGUARD_LEN_MAX && why == NULL)
		abort();
	if (why != NULL && why[0] == '\0')
		abort();
	if (why == NULL && regcomp(&re, p, REG_EXTENDED | REG_NOSUB) == 0) {
		m[0].rm_so = 0;
		m[0].rm_eo = (regoff_t)strlen(SUBJECT);
		(void)regexec(&re, SUBJECT, 1, m, REG_STARTEND);
		regfree(&re);
	}
	free(p);
	return 0;
}
