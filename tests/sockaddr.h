/*
 * For the tests of address patterns (test_url, test_conf, fuzz_url): an
 * address written as text, with a port, as the resolver would give it.
 */
#ifndef GEMWATCH_TEST_SOCKADDR_H
#define GEMWATCH_TEST_SOCKADDR_H

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <string.h>

/* addr (IPv4 or IPv6, numeric) and port into *ss: 0, or -1 if no address. */
static inline int
sockaddr_of(const char *addr, int port, struct sockaddr_storage *ss)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof *ss);
	if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
	} else if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
	} else
		return -1;
	return 0;
}

#endif
