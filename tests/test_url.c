/*
 * Unit tests for daemon/url.c: what a user's capsule URL becomes (host,
 * port, path, canonical text) and the message for each URL refused; which
 * probe-allow patterns are address patterns, and what each kind matches.
 */
#include "config.h"

#include <sys/socket.h>

#include <stdlib.h>
#include <string.h>

#include "sockaddr.h"
#include "tap.h"
#include "url.h"

static void
test_valid(void)
{
	static const struct {
		const char *in, *host;
		int port, is_ip;
		const char *path, *text;
	} t[] = {
	    {"gemini://example.org/", "example.org", 1965, 0, "/",
	        "gemini://example.org/"},
	    {"gemini://example.org", "example.org", 1965, 0, "/",
	        "gemini://example.org/"},
	    {"gemini://example.org:1966/x", "example.org", 1966, 0, "/x",
	        "gemini://example.org:1966/x"},
	    {"gemini://example.org:1965/", "example.org", 1965, 0, "/",
	        "gemini://example.org/"},
	    {"gemini://example.org:01966", "example.org", 1966, 0, "/",
	        "gemini://example.org:1966/"},
	    {"gemini://example.org:1", "example.org", 1, 0, "/",
	        "gemini://example.org:1/"},
	    {"gemini://example.org:65535", "example.org", 65535, 0, "/",
	        "gemini://example.org:65535/"},
	    {"GEMINI://Example.ORG/Path/To", "example.org", 1965, 0, "/Path/To",
	        "gemini://example.org/Path/To"},
	    {"Gemini://my_host-1.example/", "my_host-1.example", 1965, 0, "/",
	        "gemini://my_host-1.example/"},
	    {"gemini://example.org/search?q=a%20b&x=1", "example.org", 1965, 0,
	        "/search?q=a%20b&x=1",
	        "gemini://example.org/search?q=a%20b&x=1"},
	    {"gemini://example.org?query", "example.org", 1965, 0, "/?query",
	        "gemini://example.org/?query"},
	    {"gemini://example.org/a/../b/./c//", "example.org", 1965, 0,
	        "/a/../b/./c//", "gemini://example.org/a/../b/./c//"},
	    {"gemini://example.org/caf\xc3\xa9", "example.org", 1965, 0,
	        "/caf%C3%A9", "gemini://example.org/caf%C3%A9"},
	    {"gemini://192.0.2.7/", "192.0.2.7", 1965, 1, "/",
	        "gemini://192.0.2.7/"},
	    {"gemini://192.0.2.7:1966/", "192.0.2.7", 1966, 1, "/",
	        "gemini://192.0.2.7:1966/"},
	    {"gemini://[::1]/", "::1", 1965, 1, "/", "gemini://[::1]/"},
	    {"gemini://[::1]:1965/", "::1", 1965, 1, "/", "gemini://[::1]/"},
	    {"gemini://[::1]:1966", "::1", 1966, 1, "/",
	        "gemini://[::1]:1966/"},
	    {"gemini://[2001:DB8:0:0::7]/x", "2001:db8::7", 1965, 1, "/x",
	        "gemini://[2001:db8::7]/x"},
	    {"gemini://b\xc3\xbc"
	     "cher.example/",
	        "xn--bcher-kva.example", 1965, 0, "/",
	        "gemini://xn--bcher-kva.example/"},
	    {"gemini://B\xc3\x9c"
	     "CHER.example:1966/",
	        "xn--bcher-kva.example", 1966, 0, "/",
	        "gemini://xn--bcher-kva.example:1966/"},
	    {"gemini://\xe2\x98\x83.net/", "xn--n3h.net", 1965, 0, "/",
	        "gemini://xn--n3h.net/"},
	    {"gemini://xn--bcher-kva.example/", "xn--bcher-kva.example", 1965,
	        0, "/", "gemini://xn--bcher-kva.example/"},
	    /* Names that only look like hex numbers. */
	    {"gemini://0x.example/", "0x.example", 1965, 0, "/",
	        "gemini://0x.example/"},
	    {"gemini://0x7f.example/", "0x7f.example", 1965, 0, "/",
	        "gemini://0x7f.example/"},
	    {"gemini://deadbeef/", "deadbeef", 1965, 0, "/",
	        "gemini://deadbeef/"},
	};
	struct url u, c;
	const char *err;
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		err = "";
		if (!ok(url_parse(t[i].in, strlen(t[i].in), &u, &err) == 0,
		        "%s parses", t[i].text)) {
			printf("#   error: %s\n", err);
			continue;
		}
		is_str(u.host, t[i].host, "%s: host", t[i].text);
		is_int(u.port, t[i].port, "%s: port", t[i].text);
		is_int(u.host_is_ip, t[i].is_ip, "%s: host_is_ip", t[i].text);
		is_str(u.path, t[i].path, "%s: path", t[i].text);
		is_str(u.text, t[i].text, "%s: text", t[i].text);

		url_copy(&c, &u);
		url_free(&u);
		is_str(c.text, t[i].text, "%s: copy outlives the original",
		    t[i].text);
		is_str(c.host, t[i].host, "%s: copy's host", t[i].text);
		is_int(c.port, t[i].port, "%s: copy's port", t[i].text);
		url_free(&c);
	}
}

static void
test_invalid(void)
{
	static const struct {
		const char *in, *err;
	} t[] = {
	    {"", "only gemini:// URLs are supported"},
	    {"https://example.org/", "only gemini:// URLs are supported"},
	    {"gopher://example.org/", "only gemini:// URLs are supported"},
	    {"gemini:example.org", "only gemini:// URLs are supported"},
	    {"gemini:/example.org/", "only gemini:// URLs are supported"},
	    {"example.org/", "only gemini:// URLs are supported"},
	    {"//example.org/", "only gemini:// URLs are supported"},
	    {"gemini://", "URL has no host"},
	    {"gemini:///path", "URL has no host"},
	    {"gemini://:1965/", "URL has no host"},
	    {"gemini://user@example.org/",
	        "userinfo is not allowed in gemini URLs"},
	    {"gemini://user:pw@example.org/",
	        "userinfo is not allowed in gemini URLs"},
	    {"gemini://example.org/#top",
	        "fragments are not allowed in gemini URLs"},
	    {"gemini://example.org#",
	        "fragments are not allowed in gemini URLs"},
	    {"gemini://example.org:0/", "port must be a number from 1 to "
	                                "65535"},
	    {"gemini://example.org:65536/", "port must be a number from 1 "
	                                    "to 65535"},
	    {"gemini://example.org:abc/", "port must be a number from 1 "
	                                  "to 65535"},
	    {"gemini://example.org:/", "port must be a number from 1 to "
	                               "65535"},
	    {"gemini://example.org:-1/", "port must be a number from 1 to "
	                                 "65535"},
	    {"gemini://example.org:+1965/", "port must be a number from 1 "
	                                    "to 65535"},
	    {"gemini://example.org:1965:1965/", "port must be a number "
	                                        "from 1 to 65535"},
	    {"gemini://example.org:99999999999999999999/",
	        "port must be "
	        "a number from 1 to 65535"},
	    {"gemini://example.org/a b", "URL contains a blank or a "
	                                 "control character"},
	    {" gemini://example.org/", "URL contains a blank or a control "
	                               "character"},
	    {"gemini://example.org/\r\n", "URL contains a blank or a "
	                                  "control character"},
	    {"gemini://example.org/\x7f", "URL contains a blank or a "
	                                  "control character"},
	    {"gemini://exa%6dple.org/", "host name may only contain "
	                                "letters, digits, '-', '.' and '_'"},
	    {"gemini://exa!mple.org/", "host name may only contain "
	                               "letters, digits, '-', '.' and '_'"},
	    {"gemini://example..org/", "host name has an empty label"},
	    {"gemini://.example.org/", "host name has an empty label"},
	    {"gemini://example.org./", "host name has an empty label"},
	    {"gemini://10.1/", "invalid IPv4 address"},
	    {"gemini://192.0.2.256/", "invalid IPv4 address"},
	    {"gemini://1965/", "invalid IPv4 address"},
	    {"gemini://0177.0.0.1/", "invalid IPv4 address"},
	    {"gemini://0x7f000001/", "invalid IPv4 address"},
	    {"gemini://0X7F000001/", "invalid IPv4 address"},
	    {"gemini://0x7f.0x0.0x0.0x1/", "invalid IPv4 address"},
	    {"gemini://0x7f.1/", "invalid IPv4 address"},
	    {"gemini://127.0.0.0x1/", "invalid IPv4 address"},
	    {"gemini://0x7f.0.0.1:1965/", "invalid IPv4 address"},
	    {"gemini://[::1/", "IPv6 address without a closing ']'"},
	    {"gemini://[::g]/", "invalid IPv6 address"},
	    {"gemini://[]/", "invalid IPv6 address"},
	    {"gemini://[1.2.3.4]/", "invalid IPv6 address"},
	    {"gemini://[fe80::1%25eth0]/", "invalid IPv6 address"},
	    {"gemini://[1:2:3:4:5:6:7:8:9]/", "invalid IPv6 address"},
	    {"gemini://::1/", "URL has no host"},
	    {"gemini://[::1]x/", "unexpected characters after the IPv6 "
	                         "address"},
	    {"gemini://[::1]:0/", "port must be a number from 1 to "
	                          "65535"},
	    {"gemini://b\xfc"
	     "cher.example/",
	        "host name is not valid "
	        "UTF-8"},
	    {"gemini://b\xc3"
	     "cher.example/",
	        "host name is not valid "
	        "UTF-8"},
	    {"gemini://\xc0\xae.example/", "host name is not valid "
	                                   "UTF-8"},
	    {"gemini://\xed\xa0\x80.example/", "host name is not valid "
	                                       "UTF-8"},
	    {"gemini://-b\xc3\xbc"
	     "cher.example/",
	        "host name cannot be "
	        "converted to an IDNA A-label"},
	    {"gemini://0123456789012345678901234567890123456789"
	     "0123456789012345678901234.example/",
	        "host name label longer "
	        "than 63 bytes"},
	};
	struct url u;
	const char *err;
	size_t i;
	int r;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		err = "";
		memset(&u, 0xa5, sizeof(u));
		r = url_parse(t[i].in, strlen(t[i].in), &u, &err);
		is_int(r, -1, "refused: %s", t[i].in);
		is_str(err, t[i].err, "message for %s", t[i].in);
		ok(u.host == NULL && u.path == NULL && u.text == NULL,
		    "nothing left to free for %s", t[i].in);
		if (r == 0)
			url_free(&u);
	}
}

static void
test_bytes(void)
{
	struct url u;
	const char *err;
	char *b;

	/* An embedded NUL. */
	err = "";
	is_int(url_parse("gemini://example.org/\0x", 23, &u, &err), -1,
	    "embedded NUL refused");
	is_str(err, "URL contains a blank or a control character",
	    "embedded NUL: message");
	err = "";
	is_int(url_parse("gemini://exam\0ple.org/", 22, &u, &err), -1,
	    "NUL in host refused");

	/* len shorter than the string: the rest is not looked at. */
	is_int(url_parse("gemini://example.org/abc def", 24, &u, &err), 0,
	    "len stops before the blank");
	is_str(u.text, "gemini://example.org/abc", "len bounds the path");
	url_free(&u);
	is_int(url_parse("gemini://example.org:1966/", 20, &u, &err), 0,
	    "len stops before the port");
	is_str(u.text, "gemini://example.org/", "len bounds the host");
	is_int(u.port, 1965, "len bounds the host: default port");
	url_free(&u);
	/* An exact-size copy without a NUL, so valgrind sees overreads. */
	b = malloc(20);
	memcpy(b, "gemini://[::1]:1966/", 20);
	is_int(url_parse(b, 20, &u, &err), 0, "no NUL terminator");
	is_str(u.text, "gemini://[::1]:1966/", "no NUL terminator: text");
	url_free(&u);
	is_int(url_parse(b, 14, &u, &err), 0, "IPv6 cut at ']'");
	is_str(u.text, "gemini://[::1]/", "IPv6 cut at ']': text");
	url_free(&u);
	err = "";
	is_int(url_parse(b, 13, &u, &err), -1, "IPv6 cut before ']'");
	is_str(err, "IPv6 address without a closing ']'",
	    "IPv6 cut before ']': message");
	is_int(url_parse(b, 8, &u, &err), -1, "cut inside the scheme");
	free(b);

	/* url_free twice and on a zeroed struct. */
	memset(&u, 0, sizeof(u));
	url_free(&u);
	url_free(&u);
	ok(u.host == NULL && u.text == NULL, "url_free on a zeroed struct");
}

static void
test_length(void)
{
	struct url u;
	const char *err;
	char *b;
	size_t prefix, n;

	/* "gemini://example.org" then a path: the text is exactly n bytes. */
	prefix = strlen("gemini://example.org");
	b = malloc(8192);
	memcpy(b, "gemini://example.org/", prefix + 1);
	memset(b + prefix + 1, 'a', 8192 - prefix - 1);

	n = URL_MAX;
	is_int(url_parse(b, n, &u, &err), 0, "1024-byte URL accepted");
	is_int(strlen(u.text), 1024, "1024-byte URL: text length");
	url_free(&u);
	err = "";
	is_int(url_parse(b, n + 1, &u, &err), -1, "1025-byte URL refused");
	is_str(err, "URL longer than 1024 bytes", "1025-byte URL: message");
	err = "";
	is_int(url_parse(b, 8192, &u, &err), -1, "8192-byte URL refused");
	is_str(err, "URL longer than 1024 bytes", "8192-byte URL: message");

	/* The canonical text counts, not the input: 334 bytes of 0xe9 and an
	 * 'a' make 1002 + 1 bytes of path after the "/". */
	memset(b + prefix + 1, 0xe9, 334);
	n = prefix + 1 + 334 + 1;
	is_int(url_parse(b, n, &u, &err), 0,
	    "356-byte input with 334 "
	    "non-ASCII bytes accepted");
	is_int(strlen(u.text), 1024, "non-ASCII bytes are percent-encoded");
	ok(strncmp(u.path, "/%E9%E9", 7) == 0, "path holds %%E9");
	url_free(&u);
	b[prefix + 1 + 334] = (char)0xe9;
	err = "";
	is_int(url_parse(b, n, &u, &err), -1,
	    "percent-encoding pushes the URL past 1024 bytes");
	is_str(err, "URL longer than 1024 bytes", "encoded length: message");

	/* An explicit default port and an upper-case host shrink nothing. */
	memcpy(b, "GEMINI://EXAMPLE.ORG:1965/", 26);
	memset(b + 26, 'a', 8192 - 26);
	is_int(url_parse(b, URL_MAX + 5, &u, &err), 0,
	    "1029-byte input, 1024-byte canonical URL accepted");
	is_int(strlen(u.text), 1024, "1029-byte input: text length");
	url_free(&u);
	free(b);
}

/* Whether pattern pat matches the URL text (-1: text does not parse). */
static int
matches(const char *pat, const char *text)
{
	struct url u;
	const char *err;
	int rc;

	if (url_parse(text, strlen(text), &u, &err) == -1)
		return -1;
	rc = url_pattern_match(pat, &u);
	url_free(&u);
	return rc;
}

/* Whether pattern pat admits the address addr on port. */
static int
admits(const char *pat, const char *addr, int port)
{
	struct sockaddr_storage ss;

	if (sockaddr_of(addr, port, &ss) == -1)
		return -1;
	return url_pattern_match_address(pat, (struct sockaddr *)&ss);
}

static void
test_pattern(void)
{
	static const struct {
		const char *pat;
		int address;
	} kinds[] = {
	    {"127.0.0.1", 1},
	    {"127.0.0.*:*", 1},
	    {"10.[0-9].*", 1},
	    {"1*", 1},
	    {"[::1]", 1},
	    {"[2001:db8::*]:1966", 1},
	    {"[::ffff:127.0.0.*]", 1},
	    {"*", 0},
	    {"*:*", 0},
	    {"*.*", 0},
	    {"localhost", 0},
	    {"*.example.org", 0},
	    {"gem[0-9].test", 0},
	    {"10-0-0-1.test", 0},
	    {"127.0.0.[a-z]", 0},
	};
	struct url_pattern p;
	const char *err;
	size_t i;

	for (i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
		if (url_pattern_parse(kinds[i].pat, &p, &err) == -1) {
			ok(0, "%s parses: %s", kinds[i].pat, err);
			continue;
		}
		is_int(p.address, kinds[i].address, "%s is %s pattern",
		    kinds[i].pat, kinds[i].address ? "an address" : "a name");
	}

	/* An address pattern: IP literals only, never a name spelt alike. */
	is_int(matches("127.0.0.*:*", "gemini://127.0.0.1:7/"), 1,
	    "127.0.0.*:* matches 127.0.0.1");
	is_int(matches("127.0.0.*:*", "gemini://127.0.0.1.attacker.test/"), 0,
	    "127.0.0.*:* does not match the name 127.0.0.1.attacker.test");
	is_int(matches("127.0.0.1", "gemini://127.0.0.1.attacker.test/"), 0,
	    "127.0.0.1 does not match 127.0.0.1.attacker.test");
	is_int(matches("1*", "gemini://1e100.test/"), 0,
	    "1* does not match the name 1e100.test");
	is_int(matches("127.0.0.*:*", "gemini://localhost/"), 0,
	    "127.0.0.*:* does not match the name localhost");
	is_int(matches("[::1]:*", "gemini://[0:0::1]:5/"), 1,
	    "[::1]:* matches [0:0::1]");
	is_int(matches("[2001:DB8::*]", "gemini://[2001:db8::a]/"), 1,
	    "an IPv6 glob matches the address as inet_ntop writes it");
	/* A name pattern: the host as spelt. */
	is_int(matches("*", "gemini://127.0.0.1/"), 1, "* matches an address");
	is_int(matches("*", "gemini://127.0.0.1.attacker.test/"), 1,
	    "* matches any name");
	is_int(matches("*.test", "gemini://127.0.0.1.attacker.test/"), 1,
	    "*.test matches a name under .test");

	/* Addresses a name was resolved to. */
	is_int(admits("127.0.0.*:*", "127.0.0.9", 7), 1,
	    "127.0.0.*:* admits 127.0.0.9 port 7");
	is_int(admits("127.0.0.*:*", "127.1.0.1", 7), 0,
	    "127.0.0.*:* does not admit 127.1.0.1");
	is_int(admits("127.0.0.*", "127.0.0.9", 1966), 0,
	    "127.0.0.* does not admit port 1966");
	is_int(admits("127.0.0.*", "127.0.0.9", 1965), 1,
	    "127.0.0.* admits port 1965");
	is_int(admits("127.0.0.*:*", "::ffff:127.0.0.1", 7), 0,
	    "an IPv4 pattern does not admit an IPv4-mapped IPv6 address");
	is_int(admits("127.0.0.*:*", "::1", 7), 0,
	    "127.0.0.*:* does not admit ::1");
	is_int(admits("[0::1]:*", "::1", 7), 1, "[0::1]:* admits ::1");
	is_int(admits("[::1]:7", "::2", 7), 0, "[::1]:7 does not admit ::2");
	is_int(admits("[2001:db8::*]", "2001:db8::5", 1965), 1,
	    "[2001:db8::*] admits 2001:db8::5");
	is_int(admits("10.[0-9].*", "10.5.3.3", 1965), 1,
	    "10.[0-9].* admits 10.5.3.3");
	is_int(admits("10.[0-9].*", "10.55.3.3", 1965), 0,
	    "10.[0-9].* does not admit 10.55.3.3");
	is_int(admits("*:*", "127.0.0.1", 7), 0,
	    "a name pattern admits no address");
	is_int(admits("localhost:*", "127.0.0.1", 7), 0,
	    "localhost:* admits no address");
	is_int(admits("127.0.0.[", "127.0.0.1", 1965), 0,
	    "a bad pattern admits nothing");
}

int
main(void)
{
	test_valid();
	test_invalid();
	test_bytes();
	test_length();
	test_pattern();
	return done_testing();
}
