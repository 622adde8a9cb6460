/*
 * gemwatch: options, start-up and shut-down order.
 */
#include "config.h"

#include <gnutls/gnutls.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: gemwatch [-dv] [-f FILE]        run the daemon in the foreground\n"
	    "       gemwatch -n [-f FILE]           check the configuration\n"
	    "       gemwatch probe [-j] [-4|-6] [-t SECONDS] [--sni NAME] URL...\n"
	    "       gemwatch -V                     print versions\n"
	    "       gemwatch -h                     this help\n");
}

static void
version(void)
{
	printf("gemwatch %s\n", PACKAGE_VERSION);
	printf("GnuTLS %s\n", gnutls_check_version(NULL));
	printf("libmicrohttpd %s\n", MHD_get_version());
	printf("jansson %s\n", jansson_version_str());
}

int
main(int argc, char *argv[])
{
	int ch;

	while ((ch = getopt(argc, argv, "hV")) != -1) {
		switch (ch) {
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			version();
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	usage(stderr);
	return 2;
}
