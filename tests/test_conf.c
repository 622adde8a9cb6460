/*
 * Unit tests for the configuration parser: every directive and capsule
 * option, the defaults, the value syntaxes, quoting and comments, the
 * exact text of every error a user can get, sharding, the /probe
 * allow-list, conf_load ($STATE_DIRECTORY included) and the shipped
 * example file.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "allow.h"
#include "buf.h"
#include "conf.h"
#include "gemini.h"
#include "sockaddr.h"
#include "tap.h"
#include "url.h"
#include "xmalloc.h"

#define CONF_NAME "gemwatch.conf"
#define U "gemini://127.0.0.1/" /* a valid capsule URL */

static struct conf *
parse(const char *text, struct conf_errors *errs)
{
	return conf_parse(CONF_NAME, text, strlen(text), errs);
}

/* Text for a test description: one line, at most 60 bytes. */
static const char *
esc(const char *s)
{
	static char out[80];
	size_t o = 0;

	for (; *s != '\0' && o < 60; s++) {
		if (*s == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else if ((unsigned char)*s < 0x20 || *s == 0x7f ||
		           (unsigned char)*s >= 0x80)
			out[o++] = '?';
		else
			out[o++] = *s;
	}
	out[o] = '\0';
	return out;
}

/* The text must be rejected with exactly this one message. */
static void
error_is(const char *text, const char *want)
{
	struct conf_errors errs = {NULL, 0};
	struct conf *c;

	c = parse(text, &errs);
	ok(c == NULL, "rejected: %s", esc(text));
	is_int(errs.n, 1, "one error: %s", esc(text));
	is_str(errs.n > 0 ? errs.msg[0] : NULL, want, "message: %s", esc(text));
	conf_free(c);
	conf_errors_free(&errs);
}

/* Same, for a message built at run time; frees want. */
static void
error_is_free(const char *text, char *want)
{
	error_is(text, want);
	free(want);
}

/* The text must parse; the caller frees the result. */
static struct conf *
parse_ok(const char *text)
{
	struct conf_errors errs = {NULL, 0};
	struct conf *c;
	size_t i;

	c = parse(text, &errs);
	ok(c != NULL && errs.n == 0, "parses: %s", esc(text));
	for (i = 0; i < errs.n; i++)
		printf("#   %s\n", errs.msg[i]);
	conf_errors_free(&errs);
	return c;
}

static int
addr_is(const struct listen_addr *l, int family, const char *addr, int port)
{
	char buf[INET6_ADDRSTRLEN];
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&l->ss;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&l->ss;

	if (l->ss.ss_family != family)
		return 0;
	if (family == AF_INET)
		return l->sslen == sizeof(*sin) &&
		       ntohs(sin->sin_port) == port &&
		       inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf)) &&
		       strcmp(buf, addr) == 0;
	return l->sslen == sizeof(*sin6) && ntohs(sin6->sin6_port) == port &&
	       inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf)) &&
	       strcmp(buf, addr) == 0;
}

static void
test_defaults(void)
{
	struct conf *c;

	c = parse_ok("");
	if (c == NULL)
		return;
	is_str(c->path, CONF_NAME, "path is the name given");
	is_int(c->nlisten, 1, "one default listen address");
	is_str(c->listen[0].text, "127.0.0.1:19650", "default listen text");
	ok(addr_is(&c->listen[0], AF_INET, "127.0.0.1", 19650),
	    "default listen resolved to 127.0.0.1 port 19650");
	ok(c->interval == 60, "default interval 60s");
	ok(c->timeout == 10, "default timeout 10s");
	is_int(c->concurrency, 4096, "default concurrency");
	is_int(c->history, 120, "default history");
	is_str(
	    c->state_dir, LOCALSTATEDIR "/lib/gemwatch", "default state-dir");
	is_int(c->max_body, 4 * 1024 * 1024, "default max-body 4M");
	ok(c->user == NULL, "no user by default");
	is_int(c->nprobe_allow, 0, "no probe-allow by default");
	is_int(c->shard_k, 1, "default shard k");
	is_int(c->shard_n, 1, "default shard n");
	is_int(c->ncapsules, 0, "no capsules");
	conf_free(c);

	/* Comments, blank lines and blanks only are nothing. */
	c = parse_ok("# a comment\n\n   \t\n  # indented comment\n");
	if (c != NULL)
		is_int(c->ncapsules, 0, "comment-only file has no capsules");
	conf_free(c);
}

static void
test_globals(void)
{
	struct conf *c;

	c = parse_ok("listen 127.0.0.1:8080\n"
	             "listen [::1]:8081\n"
	             "listen localhost:8082\n"
	             "listen 0.0.0.0:8083\n"
	             "interval 5m\n"
	             "timeout 1500ms\n"
	             "concurrency 65536\n"
	             "history 100000\n"
	             "state-dir /srv/gemwatch\n"
	             "max-body 64k\n"
	             "user _gemwatch\n"
	             "probe-allow *.example.org\n"
	             "probe-allow [::1]:*\n"
	             "shard 2/3\n");
	if (c == NULL)
		return;
	is_int(c->nlisten, 4, "four listen addresses");
	is_str(c->listen[0].text, "127.0.0.1:8080", "listen 1 text");
	ok(addr_is(&c->listen[0], AF_INET, "127.0.0.1", 8080), "listen 1");
	is_str(c->listen[1].text, "[::1]:8081", "listen 2 text");
	ok(addr_is(&c->listen[1], AF_INET6, "::1", 8081), "listen 2 IPv6");
	is_str(c->listen[2].text, "localhost:8082", "listen 3 as written");
	ok(addr_is(&c->listen[2], AF_INET, "127.0.0.1", 8082),
	    "localhost is 127.0.0.1");
	ok(addr_is(&c->listen[3], AF_INET, "0.0.0.0", 8083), "listen 4");
	ok(c->interval == 300, "interval 5m = 300s");
	ok(c->timeout == 1.5, "timeout 1500ms = 1.5s");
	is_int(c->concurrency, 65536, "concurrency");
	is_int(c->history, 100000, "history");
	is_str(c->state_dir, "/srv/gemwatch", "state-dir");
	is_int(c->max_body, 65536, "max-body 64k");
	is_str(c->user, "_gemwatch", "user");
	is_int(c->nprobe_allow, 2, "two probe-allow patterns");
	is_str(c->probe_allow[0], "*.example.org", "probe-allow 1");
	is_str(c->probe_allow[1], "[::1]:*", "probe-allow 2");
	is_int(c->shard_k, 2, "shard k");
	is_int(c->shard_n, 3, "shard n");
	conf_free(c);

	c = parse_ok("interval 1s\ntimeout 100ms\nconcurrency 1\nhistory 1\n"
	             "max-body 1\nshard 1000/1000\n");
	if (c != NULL) {
		ok(c->interval == 1 && c->timeout == 0.1, "lowest durations");
		ok(c->concurrency == 1 && c->history == 1 && c->max_body == 1,
		    "lowest numbers");
		ok(c->shard_k == 1000 && c->shard_n == 1000, "highest shard");
	}
	conf_free(c);
	c = parse_ok("max-body 1G\nuser nobody$\n");
	if (c != NULL) {
		is_int(c->max_body, 1024 * 1024 * 1024, "max-body 1G");
		is_str(c->user, "nobody$", "user with a trailing $");
	}
	conf_free(c);
}

static void
test_capsules(void)
{
	static const unsigned char fp[32] = {
	    0x01,
	    0x23,
	    0x45,
	    0x67,
	    0x89,
	    0xab,
	    0xcd,
	    0xef,
	    0x01,
	    0x23,
	    0x45,
	    0x67,
	    0x89,
	    0xab,
	    0xcd,
	    0xef,
	    0x01,
	    0x23,
	    0x45,
	    0x67,
	    0x89,
	    0xab,
	    0xcd,
	    0xef,
	    0x01,
	    0x23,
	    0x45,
	    0x67,
	    0x89,
	    0xab,
	    0xcd,
	    0xef,
	};
	const struct capsule_conf *k;
	struct url want;
	const char *err;
	struct conf *c;

	c = parse_ok(
	    "# two capsules\n"
	    "capsule gemini://Example.ORG\n"
	    "capsule gemini://[::1]:1966/x name=full interval=2m timeout=30s"
	    " expect-status=20,31 require-close-notify=no sni=Gemini.Example"
	    " address-family=ipv6"
	    " fingerprint=sha256:0123456789ABCDEF0123456789abcdef"
	    "0123456789abcdef0123456789abcdef"
	    " expect-body=\"^# Welcome\" error-path=/does-not-exist\n"
	    "capsule " U " name=v4 address-family=ipv4\n"
	    "capsule " U " name=any address-family=any"
	    " require-close-notify=yes\n"
	    "capsule " U " name=colons fingerprint=SHA256:01:23:45:67:89:ab:cd:"
	    "ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:"
	    "89:ab:cd:ef\n");
	if (c == NULL)
		return;
	is_int(c->ncapsules, 5, "five capsules");

	k = &c->capsules[0];
	is_str(k->name, "gemini://Example.ORG",
	    "name defaults to the URL "
	    "as written");
	is_str(k->url.host, "example.org", "URL parsed");
	is_int(k->url.port, 1965, "default port");
	ok(k->interval == 60 && k->timeout == 10, "global interval/timeout");
	ok(status_spec_match(&k->expect_status, 20) &&
	        status_spec_match(&k->expect_status, 29) &&
	        !status_spec_match(&k->expect_status, 30) &&
	        !status_spec_match(&k->expect_status, 19),
	    "expect-status defaults to 2x");
	is_int(k->require_close_notify, 1, "require-close-notify default yes");
	ok(k->sni == NULL, "no sni by default");
	is_int(k->family, AF_UNSPEC, "address-family defaults to any");
	is_int(k->has_fingerprint, 0, "no fingerprint by default");
	ok(k->expect_body_src == NULL, "no expect-body by default");
	ok(k->error_path == NULL, "no error-path by default");
	is_int(k->line, 2, "line of the first capsule");

	k = &c->capsules[1];
	is_str(k->name, "full", "name=");
	is_str(k->url.host, "::1", "IPv6 host");
	is_int(k->url.port, 1966, "port");
	ok(k->interval == 120, "interval=2m");
	ok(k->timeout == 30, "timeout=30s");
	ok(status_spec_match(&k->expect_status, 20) &&
	        status_spec_match(&k->expect_status, 31) &&
	        !status_spec_match(&k->expect_status, 21),
	    "expect-status=20,31");
	is_int(k->require_close_notify, 0, "require-close-notify=no");
	is_str(k->sni, "gemini.example", "sni= (lower-cased)");
	is_int(k->family, AF_INET6, "address-family=ipv6");
	is_int(k->has_fingerprint, 1, "fingerprint=");
	ok(memcmp(k->fingerprint, fp, 32) == 0, "fingerprint bytes");
	is_str(k->expect_body_src, "^# Welcome", "expect-body source");
	ok(k->expect_body_src != NULL &&
	        regexec(&k->expect_body, "# Welcome home", 0, NULL, 0) == 0 &&
	        regexec(&k->expect_body, "Welcome", 0, NULL, 0) == REG_NOMATCH,
	    "expect-body compiled");
	is_str(k->error_path, "/does-not-exist", "error-path");
	if (url_parse("gemini://[::1]:1966/does-not-exist", 34, &want, &err) ==
	    0) {
		is_str(k->error_url.text, want.text, "error_url is canonical");
		url_free(&want);
	} else
		ok(0, "url_parse of the expected error URL");
	is_str(k->error_url.host, "::1", "error_url host");
	is_int(k->error_url.port, 1966, "error_url port");
	is_str(k->error_url.path, "/does-not-exist", "error_url path");
	is_int(k->line, 3, "line of the second capsule");

	is_int(c->capsules[2].family, AF_INET, "address-family=ipv4");
	is_int(c->capsules[3].family, AF_UNSPEC, "address-family=any");
	is_int(
	    c->capsules[3].require_close_notify, 1, "require-close-notify=yes");
	ok(c->capsules[4].has_fingerprint &&
	        memcmp(c->capsules[4].fingerprint, fp, 32) == 0,
	    "fingerprint with colons and SHA256: prefix");

	ok(conf_capsule(c, "full") == &c->capsules[1], "conf_capsule finds");
	ok(conf_capsule(c, "nope") == NULL, "conf_capsule misses");
	conf_free(c);
}

/* Global settings apply wherever they appear; unset timeouts are clamped. */
static void
test_global_order(void)
{
	struct conf *c;

	c = parse_ok("capsule " U " name=a\ncapsule " U " name=b interval=10m "
	             "timeout=1m\ninterval 5m\ntimeout 20s\n");
	if (c != NULL) {
		ok(c->capsules[0].interval == 300,
		    "a later global interval applies to an earlier capsule");
		ok(c->capsules[0].timeout == 20,
		    "a later global timeout applies to an earlier capsule");
		ok(c->capsules[1].interval == 600 &&
		        c->capsules[1].timeout == 60,
		    "capsule values win");
	}
	conf_free(c);

	c = parse_ok("interval 5s\ncapsule " U " name=a\n"
	             "capsule " U " name=b interval=2s\ncapsule " U " name=c "
	             "interval=1m\n");
	if (c != NULL) {
		ok(c->timeout == 5, "default timeout clamped to the interval");
		ok(c->capsules[0].timeout == 5, "capsule a timeout clamped");
		ok(c->capsules[1].timeout == 2, "capsule b timeout clamped");
		ok(c->capsules[2].timeout == 5, "capsule c has the global "
		                                "(clamped) timeout");
	}
	conf_free(c);

	c = parse_ok("capsule " U " interval=3s timeout=3s\n");
	if (c != NULL)
		ok(c->capsules[0].timeout == 3, "timeout equal to interval");
	conf_free(c);
}

static void
test_durations(void)
{
	static const struct {
		const char *s;
		double v;
	} good[] = {
	    {"90", 90},
	    {"0", 0},
	    {"1500ms", 1.5},
	    {"100ms", 0.1},
	    {"5m", 300},
	    {"2h", 7200},
	    {"1d", 86400},
	    {"1.5s", 1.5},
	    {"0.25m", 15},
	    {"30s", 30},
	    {"0.5", 0.5},
	    {"1.000000001s", 1.000000001},
	    {"1000000000", 1e9},
	    {"11574d", 11574 * 86400.0},
	};
	static const char *bad[] = {
	    "",
	    "-1",
	    "-1s",
	    "+1s",
	    "1x",
	    "s",
	    "ms",
	    "1.",
	    ".5",
	    "1e3",
	    " 1",
	    "1s ",
	    "inf",
	    "nan",
	    "0x10",
	    "1.5.5",
	    "10S",
	    "1ms5",
	    "1h30m",
	    "1 s",
	    "1,5s",
	    "1.0000000001s",
	    "9999999999999",
	    "1000000001",
	    "11575d",
	    "100000000000000000000000000000000000000s",
	};
	static const struct {
		const char *s;
		size_t v;
	} sizes[] = {
	    {"4096", 4096},
	    {"0", 0},
	    {"64k", 65536},
	    {"64K", 65536},
	    {"4M", 4194304},
	    {"1G", 1073741824},
	};
	static const char *badsizes[] = {
	    "",
	    "-1",
	    "1.5M",
	    "4MB",
	    "k",
	    "M",
	    "4m",
	    "4 M",
	    "0x10",
	    "99999999999999999999",
	    "18014398509481984G",
	};
	size_t i, sz;
	double d;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		d = -1;
		is_int(parse_duration(good[i].s, &d), 0, "duration \"%s\"",
		    good[i].s);
		ok(d == good[i].v, "duration \"%s\" = %g (got %.17g)",
		    good[i].s, good[i].v, d);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		is_int(parse_duration(bad[i], &d), -1, "bad duration \"%s\"",
		    bad[i]);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		sz = 1;
		is_int(
		    parse_size(sizes[i].s, &sz), 0, "size \"%s\"", sizes[i].s);
		is_int(sz, sizes[i].v, "size \"%s\" value", sizes[i].s);
	}
	for (i = 0; i < sizeof(badsizes) / sizeof(badsizes[0]); i++)
		is_int(parse_size(badsizes[i], &sz), -1, "bad size \"%s\"",
		    badsizes[i]);
}

static void
test_quoting(void)
{
	struct conf *c;

	c = parse_ok("capsule " U " name=\"a b\"\n"
	             "capsule " U " name=\"say \\\"hi\\\"\"\n"
	             "capsule " U " name=\"back\\\\slash\"\n"
	             "capsule " U " \"name=whole word\"\n"
	             "capsule " U " name=\"a\\nb\\x\"\n"
	             "capsule " U " name=\"a # b\" # a comment \"with quotes\n"
	             "\tcapsule\t" U "\tname=tabs   # tabs separate words\n"
	             "capsule " U " name=crlf\r\n"
	             "capsule \"" U "\" name=x\"y z\"w\n"
	             "capsule " U " name=caf\xc3\xa9\n"
	             "capsule " U " name=hash#comment\n"
	             "capsule " U " expect-body=\"a|b c\" name=\\\n");
	if (c == NULL)
		return;
	is_int(c->ncapsules, 12, "twelve capsules");
	is_str(c->capsules[0].name, "a b", "quoted value with a blank");
	is_str(c->capsules[1].name, "say \"hi\"", "\\\" in quotes");
	is_str(c->capsules[2].name, "back\\slash", "\\\\ in quotes");
	is_str(c->capsules[3].name, "whole word", "whole word quoted");
	is_str(c->capsules[4].name, "a\\nb\\x", "other backslashes kept");
	is_str(c->capsules[5].name, "a # b", "# inside quotes");
	is_str(c->capsules[6].name, "tabs", "tabs separate words");
	is_str(c->capsules[7].name, "crlf", "CRLF line ending");
	is_str(c->capsules[8].name, "xy zw", "quotes inside a word");
	is_str(c->capsules[8].url.host, "127.0.0.1", "quoted URL");
	is_str(c->capsules[9].name, "caf\xc3\xa9", "UTF-8 name");
	is_str(c->capsules[10].name, "hash", "# ends a word, starts a comment");
	is_str(c->capsules[11].expect_body_src, "a|b c", "quoted regex");
	is_str(c->capsules[11].name, "\\", "backslash outside quotes");
	conf_free(c);

	error_is(
	    "capsule " U " name=\"abc\n", CONF_NAME ":1: unterminated quote");
	error_is("capsule " U " name=\"abc\\\"\n",
	    CONF_NAME ":1: unterminated quote");
	error_is("\"\n", CONF_NAME ":1: unterminated quote");
	error_is("capsule " U " name=\"\"\n",
	    CONF_NAME ":1: name must not be empty");
	error_is("\"interval\" \"\"\n",
	    CONF_NAME ":1: invalid duration \"\" "
	              "for interval (expected a number with ms, s, m, h or d)");
	error_is("\"\" 5\n", CONF_NAME ":1: unknown directive \"\"");

	/* A UTF-8 byte order mark is skipped. */
	c = parse_ok("\xef\xbb\xbfinterval 5s\n");
	if (c != NULL)
		ok(c->interval == 5, "BOM skipped");
	conf_free(c);
}

static void
test_global_errors(void)
{
	char *long_word, *text, *want;

	error_is(
	    "intervall 5s\n", CONF_NAME ":1: unknown directive \"intervall\"");
	error_is("\n\ninterval 0.5s\n",
	    CONF_NAME ":3: interval must be at least 1s");
	error_is(
	    "interval 31d\n", CONF_NAME ":1: interval must be at most 30d");
	error_is("interval abc\n",
	    CONF_NAME ":1: invalid duration \"abc\" "
	              "for interval (expected a number with ms, s, m, h or d)");
	error_is("interval -5s\n",
	    CONF_NAME ":1: invalid duration \"-5s\" "
	              "for interval (expected a number with ms, s, m, h or d)");
	error_is(
	    "timeout 50ms\n", CONF_NAME ":1: timeout must be at least 100ms");
	error_is("timeout 2h\n", CONF_NAME ":1: timeout must be at most 1h");
	error_is("concurrency 0\n",
	    CONF_NAME ":1: concurrency must be between 1 and 65536");
	error_is("concurrency 65537\n",
	    CONF_NAME ":1: concurrency must be between 1 and 65536");
	error_is("concurrency many\n",
	    CONF_NAME ":1: invalid number \"many\" for concurrency");
	error_is("concurrency -1\n",
	    CONF_NAME ":1: invalid number \"-1\" for concurrency");
	error_is("concurrency 99999999999999999999\n", CONF_NAME
	    ":1: invalid number \"99999999999999999999\" for concurrency");
	error_is("history 0\n",
	    CONF_NAME ":1: history must be between 1 and 100000");
	error_is("history 100001\n",
	    CONF_NAME ":1: history must be between 1 and 100000");
	error_is("max-body 0\n", CONF_NAME ":1: max-body must be at least 1");
	error_is("max-body 2G\n", CONF_NAME ":1: max-body must be at most 1G");
	error_is("max-body 4MB\n",
	    CONF_NAME ":1: invalid size \"4MB\" for "
	              "max-body (expected a number of bytes with k or M)");
	error_is("interval\n", CONF_NAME ":1: missing value for \"interval\"");
	error_is(
	    "interval # 5s\n", CONF_NAME ":1: missing value for \"interval\"");
	error_is("interval 5s 6s\n",
	    CONF_NAME ":1: too many values for \"interval\"");
	error_is("capsule\n", CONF_NAME ":1: missing URL for \"capsule\"");
	error_is("interval 5s\ninterval 6s\n", CONF_NAME
	    ":2: duplicate directive \"interval\" (first given at line 1)");
	error_is("user a\n\nuser b\n", CONF_NAME
	    ":3: duplicate directive \"user\" (first given at line 1)");
	error_is("shard 1/2\nshard 1/2\n", CONF_NAME
	    ":2: duplicate directive \"shard\" (first given at line 1)");

	error_is("listen ::1:80\n",
	    CONF_NAME ":1: invalid listen address "
	              "\"::1:80\": an IPv6 address must be in brackets, like "
	              "[::1]:19650");
	error_is("listen 127.0.0.1\n",
	    CONF_NAME ":1: invalid listen address "
	              "\"127.0.0.1\": expected ADDRESS:PORT");
	error_is("listen 127.0.0.1:0\n", CONF_NAME
	    ":1: invalid listen address "
	    "\"127.0.0.1:0\": the port must be a number from 1 to 65535");
	error_is("listen 127.0.0.1:65536\n", CONF_NAME
	    ":1: invalid listen "
	    "address \"127.0.0.1:65536\": the port must be a number from 1 "
	    "to 65535");
	error_is("listen 127.0.0.1:http\n", CONF_NAME
	    ":1: invalid listen "
	    "address \"127.0.0.1:http\": the port must be a number from 1 "
	    "to 65535");
	error_is("listen example.org:80\n", CONF_NAME
	    ":1: invalid listen "
	    "address \"example.org:80\": not a numeric IPv4 address (or "
	    "localhost)");
	error_is("listen :80\n", CONF_NAME ":1: invalid listen address "
	                                   "\":80\": not a numeric IP address");
	error_is("listen [127.0.0.1]:80\n",
	    CONF_NAME ":1: invalid listen "
	              "address \"[127.0.0.1]:80\": not a numeric IPv6 address");
	error_is("listen [::1:80\n",
	    CONF_NAME ":1: invalid listen address "
	              "\"[::1:80\": missing ']' after the IPv6 address");
	error_is("listen [::1]80\n",
	    CONF_NAME ":1: invalid listen address "
	              "\"[::1]80\": expected ADDRESS:PORT");
	error_is("listen 127.0.0.1:8080\nlisten localhost:8080\n", CONF_NAME
	    ":2: duplicate listen address \"localhost:8080\" (first given at "
	    "line 1)");
	error_is("listen [::1]:8080\nlisten [0:0::1]:8080\n", CONF_NAME
	    ":2: duplicate listen address \"[0:0::1]:8080\" (first given at "
	    "line 1)");

	error_is("state-dir var/lib\n",
	    CONF_NAME ":1: state-dir must be an absolute path");
	error_is("user \"a b\"\n", CONF_NAME ":1: invalid user name \"a b\"");
	error_is("user -x\n", CONF_NAME ":1: invalid user name \"-x\"");
	error_is("user $\n", CONF_NAME ":1: invalid user name \"$\"");
	error_is("user abcdefghijklmnopqrstuvwxyz0123456\n", CONF_NAME
	    ":1: invalid user name \"abcdefghijklmnopqrstuvwxyz0123456\"");

	error_is("probe-allow \"\"\n",
	    CONF_NAME ":1: invalid probe-allow pattern \"\": empty pattern");
	error_is("probe-allow a/b\n", CONF_NAME
	    ":1: invalid probe-allow "
	    "pattern \"a/b\": a host may only contain letters, digits, \".\", "
	    "\"-\", \"_\" and the glob characters \"*\", \"?\", \"[]\"");
	error_is("probe-allow host:70000\n", CONF_NAME
	    ":1: invalid "
	    "probe-allow pattern \"host:70000\": the port must be a number "
	    "from 1 to 65535 or \"*\"");
	error_is("probe-allow host:\n", CONF_NAME
	    ":1: invalid probe-allow "
	    "pattern \"host:\": the port must be a number from 1 to 65535 or "
	    "\"*\"");
	error_is("probe-allow :1965\n",
	    CONF_NAME ":1: invalid probe-allow pattern \":1965\": empty host");
	error_is("probe-allow gem[0-9.org\n", CONF_NAME
	    ":1: invalid "
	    "probe-allow pattern \"gem[0-9.org\": \"[\" without \"]\"");
	error_is("probe-allow gem]\n",
	    CONF_NAME ":1: invalid probe-allow "
	              "pattern \"gem]\": \"]\" without \"[\"");
	error_is("probe-allow [::g]\n",
	    CONF_NAME ":1: invalid probe-allow "
	              "pattern \"[::g]\": not an IPv6 address or glob");
	error_is("probe-allow [::1]x\n",
	    CONF_NAME ":1: invalid probe-allow "
	              "pattern \"[::1]x\": expected \":PORT\" after \"]\"");

	error_is(
	    "shard 0/3\n", CONF_NAME ":1: shard K/N needs 1 <= K <= N <= 1000");
	error_is(
	    "shard 4/3\n", CONF_NAME ":1: shard K/N needs 1 <= K <= N <= 1000");
	error_is("shard 1/1001\n",
	    CONF_NAME ":1: shard K/N needs 1 <= K <= N <= 1000");
	error_is("shard 1-3\n",
	    CONF_NAME ":1: invalid shard \"1-3\" (expected K/N, like 1/3)");
	error_is("shard 1/\n",
	    CONF_NAME ":1: invalid shard \"1/\" (expected K/N, like 1/3)");

	error_is("interval 10s\ntimeout 30s\n",
	    CONF_NAME ":2: timeout must not exceed interval");
	error_is("timeout 30s\n\ninterval 10s\n",
	    CONF_NAME ":1: timeout must not exceed interval");

	/* A long value is cut in the message. */
	long_word = xmalloc(201);
	memset(long_word, 'a', 200);
	long_word[200] = '\0';
	xasprintf(&text, "%s 1\n", long_word);
	long_word[64] = '\0';
	xasprintf(
	    &want, CONF_NAME ":1: unknown directive \"%s...\"", long_word);
	error_is_free(text, want);
	free(text);
	free(long_word);
}

static void
test_capsule_errors(void)
{
	/* glibc's regcomp does not finish on some of these. */
	static const char *empties[] = {
	    "^((a*)*){32}",
	    "((){255}){255}",
	    "a**",
	    "(a|)*",
	    "(a|b*)+",
	    "^(a?){1000}",
	    "(\\b)+",
	    "(^|x)*",
	    "x(a*b*)?",
	    "\\b(a*|b*){340}",
	    "$1*<**",
	    "(a*){1,5}",
	};
	static const char *fine[] = {
	    "(a*b)*",
	    "(foo)?",
	    "^# .*$",
	    "[0-9]+ users?",
	    "(up|normal)",
	    "a+b+",
	    "(a{3}){3}",
	    "\\.+",
	    "(\\<foo\\>)?x",
	    "[*+?]*",
	};
	static const char *badfp[] = {
	    "sha256:0123",
	    "md5:0123456789abcdef0123456789abcdef"
	    "0123456789abcdef0123456789abcdef",
	    "sha256:0123456789abcdef0123456789abcdef"
	    "0123456789abcdef0123456789abcdeg",
	    "sha256:0123456789abcdef0123456789abcdef"
	    "0123456789abcdef0123456789abcdef00",
	    "sha256:0123456789abcdef0123456789abcdef"
	    "0123456789abcdef0123456789abcde",
	    "sha256:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:"
	    "01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:",
	    "sha256:0:123456789abcdef0123456789abcdef"
	    "0123456789abcdef0123456789abcdef",
	    "sha256:",
	};
	char msg[256], deep[68], *want, *name, *text;
	size_t i;
	struct url u;
	struct status_spec spec;
	const char *err = "";
	regex_t re;
	int rc;

	error_is("capsule " U " colour=red\n",
	    CONF_NAME ":1: unknown capsule option \"colour\"");
	error_is("capsule " U " colour\n",
	    CONF_NAME ":1: expected key=value, got \"colour\"");
	error_is("capsule " U " name=a name=b\n",
	    CONF_NAME ":1: duplicate option \"name\"");
	error_is("capsule " U " timeout=1s timeout=1s\n",
	    CONF_NAME ":1: duplicate option \"timeout\"");

	(void)url_parse("http://example.org/", 19, &u, &err);
	xasprintf(&want,
	    CONF_NAME ":1: invalid URL \"http://example.org/\": %s", err);
	error_is_free("capsule http://example.org/\n", want);
	(void)url_parse("gemini://", 9, &u, &err);
	xasprintf(&want, CONF_NAME ":1: invalid URL \"gemini://\": %s", err);
	error_is_free("capsule gemini:// name=x\n", want);

	name = xmalloc(130);
	memset(name, 'n', 129);
	name[129] = '\0';
	xasprintf(&want, "capsule " U " name=%s\n", name);
	error_is(want, CONF_NAME ":1: name is longer than 128 bytes");
	free(want);
	name[128] = '\0';
	xasprintf(&want, "capsule " U " name=%s\n", name);
	conf_free(parse_ok(want));
	free(want);
	free(name);
	error_is("capsule " U " name=\"a\tb\"\n",
	    CONF_NAME ":1: name must not contain control characters");

	error_is("capsule " U " interval=0\n",
	    CONF_NAME ":1: interval must be at least 1s");
	error_is("capsule " U " timeout=10\n"
	         "capsule " U " name=b timeout=0.01\n",
	    CONF_NAME ":2: timeout must be at least 100ms");
	error_is("capsule " U " interval=5s timeout=6s\n",
	    CONF_NAME ":1: timeout must not exceed interval");
	error_is("interval 5s\ncapsule " U " timeout=6s\n", CONF_NAME
	    ":2: timeout must not exceed interval (the global interval is 5s)");
	error_is("timeout 30s\ncapsule " U " interval=10s\n", CONF_NAME
	    ":2: timeout must not exceed interval (the global timeout is 30s)");

	(void)status_spec_parse("2y", 2, &spec, &err);
	xasprintf(&want, CONF_NAME ":1: invalid expect-status \"2y\": %s", err);
	error_is_free("capsule " U " expect-status=2y\n", want);
	(void)status_spec_parse("", 0, &spec, &err);
	xasprintf(&want, CONF_NAME ":1: invalid expect-status \"\": %s", err);
	error_is_free("capsule " U " expect-status=\n", want);

	error_is("capsule " U " require-close-notify=maybe\n",
	    CONF_NAME ":1: require-close-notify must be yes or no");
	error_is("capsule " U " address-family=ipv5\n",
	    CONF_NAME ":1: address-family must be any, ipv4 or ipv6");
	error_is("capsule " U " sni=\"bad name\"\n",
	    CONF_NAME ":1: invalid sni \"bad name\" (expected a DNS name)");
	error_is("capsule " U " sni=\n",
	    CONF_NAME ":1: invalid sni \"\" (expected a DNS name)");

	error_is("capsule " U " fingerprint=sha256:0123\n", CONF_NAME
	    ":1: invalid fingerprint \"sha256:0123\" (expected sha256: and 64 "
	    "hex digits)");
	for (i = 0; i < sizeof(badfp) / sizeof(badfp[0]); i++) {
		xasprintf(&text, "capsule " U " fingerprint=%s\n", badfp[i]);
		xasprintf(&want,
		    CONF_NAME ":1: invalid fingerprint \"%.64s%s\" "
		              "(expected sha256: and 64 hex digits)",
		    badfp[i], strlen(badfp[i]) > 64 ? "..." : "");
		error_is_free(text, want);
		free(text);
	}

	rc = regcomp(&re, "(", REG_EXTENDED | REG_NOSUB);
	(void)regerror(rc, &re, msg, sizeof(msg));
	xasprintf(
	    &want, CONF_NAME ":1: invalid expect-body regex \"(\": %s", msg);
	error_is_free("capsule " U " expect-body=(\n", want);
	rc = regcomp(&re, "a{2,1}", REG_EXTENDED | REG_NOSUB);
	(void)regerror(rc, &re, msg, sizeof(msg));
	xasprintf(&want,
	    CONF_NAME ":1: invalid expect-body regex "
	              "\"a{2,1}\": %s",
	    msg);
	error_is_free("capsule " U " expect-body=a{2,1}\n", want);
	error_is("capsule " U " expect-body=((a{255}){255}){255}\n", CONF_NAME
	    ":1: expect-body regex \"((a{255}){255}){255}\" is too complex "
	    "(repetition counts too large)");
	error_is("capsule " U " expect-body=a++++++++++++++++++++\n",
	    CONF_NAME ":1: expect-body regex \"a++++++++++++++++++++\" is too "
	              "complex (repetition counts too large)");
	error_is("capsule " U " expect-body=(a{,100}b){,100}\n",
	    CONF_NAME ":1: expect-body regex \"(a{,100}b){,100}\" is too "
	              "complex (repetition counts too large)");
	error_is("capsule " U " expect-body=(a+)\\1\n",
	    CONF_NAME ":1: expect-body regex \"(a+)\\1\" uses a "
	              "back-reference, which is not supported");
	for (i = 0; i < sizeof(empties) / sizeof(empties[0]); i++) {
		xasprintf(
		    &text, "capsule " U " \"expect-body=%s\"\n", empties[i]);
		xasprintf(&want,
		    CONF_NAME ":1: expect-body regex \"%s\" repeats an "
		              "expression that can match the empty string",
		    empties[i]);
		error_is_free(text, want);
		free(text);
	}
	for (i = 0; i < sizeof(fine) / sizeof(fine[0]); i++) {
		xasprintf(&text, "capsule " U " \"expect-body=%s\"\n", fine[i]);
		conf_free(parse_ok(text));
		free(text);
	}
	error_is("capsule " U " expect-body=a{1,32767}\n", CONF_NAME
	    ":1: expect-body regex \"a{1,32767}\" is too complex (repetition "
	    "counts too large)");
	memset(deep, '(', 33);
	deep[33] = 'a';
	memset(deep + 34, ')', 33);
	deep[67] = '\0';
	xasprintf(&text, "capsule " U " expect-body=%s\n", deep);
	xasprintf(&want,
	    CONF_NAME ":1: expect-body regex \"%.64s...\" is too "
	              "complex (groups nested too deep)",
	    deep);
	error_is_free(text, want);
	free(text);
	deep[32] = 'a';
	memset(deep + 33, ')', 32);
	deep[65] = '\0';
	xasprintf(&text, "capsule " U " expect-body=%s\n", deep + 1);
	conf_free(parse_ok(text));
	free(text);
	conf_free(parse_ok("capsule " U " expect-body=(a{32}){32}|[[:alpha:]]"
	                   "{1,10}|\\{|x{2,}\n"));

	error_is("capsule " U " error-path=x\n",
	    CONF_NAME ":1: error-path must start with \"/\"");
	(void)url_parse("gemini://127.0.0.1:1965/a b", 27, &u, &err);
	xasprintf(&want, CONF_NAME ":1: invalid error-path \"/a b\": %s", err);
	error_is_free("capsule " U " \"error-path=/a b\"\n", want);

	error_is("capsule gemini://a.example/ name=x\n"
	         "capsule gemini://b.example/ name=x\n",
	    CONF_NAME
	    ":2: duplicate capsule name \"x\" (first defined at line 1)");
	error_is("capsule gemini://a.example/ name=b\n"
	         "capsule gemini://b.example/\n"
	         "capsule gemini://b.example/ name=c\n"
	         "capsule gemini://c.example/ name=gemini://b.example/\n",
	    CONF_NAME
	    ":4: duplicate capsule name \"gemini://b.example/\" (first "
	    "defined at line 2)");
}

static void
test_bad_bytes(void)
{
	static const char nul[] = "interval 5s\ninterval\0 5s\n";
	struct conf_errors errs = {NULL, 0};
	struct conf *c;
	char *text;

	c = conf_parse(CONF_NAME, nul, sizeof(nul) - 1, &errs);
	ok(c == NULL, "NUL byte rejected");
	is_int(errs.n, 1, "one error for a NUL byte");
	is_str(errs.n ? errs.msg[0] : NULL,
	    CONF_NAME ":2: line contains a NUL byte", "NUL byte message");
	conf_errors_free(&errs);

	error_is("capsule " U " name=\xff\n",
	    CONF_NAME ":1: line is not valid UTF-8");
	error_is("capsule " U " name=\xc0\xaf\n",
	    CONF_NAME ":1: line is not valid UTF-8");
	error_is("capsule " U " name=\xed\xa0\x80\n",
	    CONF_NAME ":1: line is not valid UTF-8");
	error_is("capsule " U " name=\xe2\x82\n",
	    CONF_NAME ":1: line is not valid UTF-8");
	error_is("capsule " U " name=a\x01\n",
	    CONF_NAME ":1: line contains a control character (0x01)");
	error_is("capsule " U " name=a\rb\n",
	    CONF_NAME ":1: line contains a control character (0x0d)");
	error_is("interval 5s\x7f\n",
	    CONF_NAME ":1: line contains a control character (0x7f)");

	text = xmalloc(65536 + 3);
	memset(text, '#', 65537);
	text[65537] = '\n';
	text[65538] = '\0';
	error_is(text, CONF_NAME ":1: line is longer than 65536 bytes");
	text[65536] = '\n';
	text[65537] = '\0';
	conf_free(parse_ok(text));
	free(text);

	/* The input need not be NUL-terminated: only len bytes are read. */
	c = conf_parse(CONF_NAME, "interval 5sXXX", 11, &errs);
	ok(c != NULL && c->interval == 5, "only len bytes are parsed");
	conf_free(c);
	conf_errors_free(&errs);

	/* errs may be NULL. */
	ok(conf_parse(CONF_NAME, "bogus", 5, NULL) == NULL,
	    "errors dropped with errs NULL");
}

/* All errors are reported, each with its line, in line order. */
static void
test_many_errors(void)
{
	struct conf_errors errs = {NULL, 0};
	static const char *want[] = {
	    CONF_NAME ":2: unknown directive \"intervall\"",
	    CONF_NAME ":3: duplicate directive \"timeout\" (first given at "
	              "line 1)",
	    CONF_NAME ":4: timeout must not exceed interval",
	    CONF_NAME ":5: unknown capsule option \"colour\"",
	    CONF_NAME ":6: concurrency must be between 1 and 65536",
	    CONF_NAME ":7: duplicate capsule name \"x\" (first defined at "
	              "line 4)",
	    CONF_NAME ":8: unterminated quote",
	};
	struct conf *c;
	size_t i;

	c = parse("timeout 5s\n"
	          "intervall 5s\n"
	          "timeout 6s\n"
	          "capsule " U " name=x interval=2s timeout=3s\n"
	          "capsule " U " name=y colour=red\n"
	          "concurrency 0\n"
	          "capsule " U " name=x\n"
	          "capsule " U " name=\"\n",
	    &errs);
	ok(c == NULL, "file with errors rejected");
	is_int(errs.n, sizeof(want) / sizeof(want[0]), "every error reported");
	for (i = 0; i < errs.n && i < sizeof(want) / sizeof(want[0]); i++)
		is_str(errs.msg[i], want[i], "error %zu", i + 1);
	conf_errors_free(&errs);
}

/*
 * Errors are capped: the first 200 in line order, then one line with the
 * count of the others. 200,000 bad lines used to be 200,000 messages.
 * An error found late (a duplicate name, at the end) that comes before
 * the last one kept takes its place.
 */
static void
test_capped_errors(void)
{
	struct conf_errors errs = {NULL, 0};
	struct buf b;
	struct conf *c;
	size_t i, n = 200000;
	char want[64];
	int inorder = 1;

	buf_init(&b);
	for (i = 0; i < n; i++)
		buf_adds(&b, "x\n");
	c = conf_parse(CONF_NAME, b.data, b.len, &errs);
	ok(c == NULL, "200,000 bad lines rejected");
	is_int(errs.n, 201, "200 errors and a count");
	if (errs.n == 201) {
		is_str(errs.msg[0], CONF_NAME ":1: unknown directive \"x\"",
		    "the first error first");
		is_str(errs.msg[199], CONF_NAME ":200: unknown directive \"x\"",
		    "the 200th error 200th");
		is_str(errs.msg[200],
		    CONF_NAME ": 199800 more errors not shown",
		    "then the count of the others");
	}
	conf_errors_free(&errs);
	buf_free(&b);

	buf_init(&b);
	buf_adds(&b, "capsule " U " name=d\ncapsule " U " name=d\n");
	for (i = 0; i < 250; i++)
		buf_adds(&b, "x\n");
	c = conf_parse(CONF_NAME, b.data, b.len, &errs);
	ok(c == NULL && errs.n == 201, "capped again (%zu)", errs.n);
	if (errs.n == 201) {
		is_str(errs.msg[0],
		    CONF_NAME ":2: duplicate capsule name \"d\" "
		              "(first defined at line 1)",
		    "a late error, early in the file, "
		    "is kept");
		for (i = 1; i < 200; i++) {
			snprintf(want, sizeof want,
			    CONF_NAME ":%zu: unknown directive \"x\"", i + 2);
			if (strcmp(errs.msg[i], want) != 0)
				inorder = 0;
		}
		ok(inorder, "then lines 3 to 201, in order");
		is_str(errs.msg[200], CONF_NAME ": 51 more errors not shown",
		    "and the count of the others");
	}
	conf_errors_free(&errs);
	buf_free(&b);
}

static void
test_shards(void)
{
	struct conf *c;
	char *text = NULL, *line;
	size_t i, len = 0;
	unsigned k, n, count[6], in;

	/* Pinned: a change would move capsules between instances. */
	is_int(shard_of("", 7), 3, "shard_of(\"\", 7)");
	is_int(shard_of("a", 7), 6, "shard_of(\"a\", 7)");
	is_int(shard_of("example", 3), 1, "shard_of(\"example\", 3)");
	is_int(shard_of("gemini://example.org/", 1000), 794,
	    "shard_of(URL, 1000)");
	is_int(shard_of("local", 2), 1, "shard_of(\"local\", 2)");
	is_int(shard_of("anything", 1), 1, "one shard holds everything");

	for (i = 0; i < 1000; i++) {
		xasprintf(&line, "capsule " U "%zu name=capsule-%zu\n", i, i);
		text = xreallocarray(text, len + strlen(line) + 1, 1);
		memcpy(text + len, line, strlen(line) + 1);
		len += strlen(line);
		free(line);
	}
	c = parse_ok(text);
	free(text);
	if (c == NULL)
		return;
	is_int(c->ncapsules, 1000, "1000 capsules");
	for (n = 1; n <= 5; n++) {
		int exact = 1, balanced = 1;

		memset(count, 0, sizeof(count));
		c->shard_n = n;
		for (i = 0; i < c->ncapsules; i++) {
			in = 0;
			for (k = 1; k <= n; k++) {
				c->shard_k = k;
				if (conf_in_shard(c, &c->capsules[i])) {
					in++;
					count[k]++;
				}
			}
			if (in != 1)
				exact = 0;
		}
		for (k = 1; k <= n; k++)
			if (count[k] < 1000 / n / 2)
				balanced = 0;
		ok(exact, "N=%u: every capsule in exactly one shard", n);
		ok(balanced, "N=%u: no shard holds less than half its share",
		    n);
	}
	conf_free(c);

	c = parse_ok("shard 2/2\ncapsule " U " name=local\n"
	             "capsule " U " name=example\n");
	if (c != NULL) {
		ok(!conf_in_shard(c, &c->capsules[0]), "local is in shard 1");
		ok(conf_in_shard(c, &c->capsules[1]), "example is in shard 2");
	}
	conf_free(c);
}

static int
allowed(const struct conf *c, const char *text)
{
	struct url u;
	const char *err;
	int rc;

	if (url_parse(text, strlen(text), &u, &err) == -1) {
		printf("# url_parse(%s): %s\n", text, err);
		return -1;
	}
	rc = allow_probe(c, &u);
	url_free(&u);
	return rc;
}

static void
test_probe_allowed(void)
{
	struct conf *c;

	c = parse_ok(
	    "capsule gemini://example.org/\n"
	    "capsule gemini://127.0.0.1:1966/ name=loop error-path=/nope\n"
	    "probe-allow *.allowed.test\n"
	    "probe-allow [0:0::1]:*\n"
	    "probe-allow exact.test:1970\n"
	    "probe-allow Gem[0-9].test\n"
	    "probe-allow [2001:db8::*]\n");
	if (c == NULL)
		return;
	/*
	 * The names below match no capsule and no name pattern: with the
	 * address pattern [0:0::1]:* they may be probed only at ::1.
	 */
	is_int(allowed(c, "gemini://example.org/other"), 1,
	    "a capsule's host:port");
	is_int(allowed(c, "gemini://EXAMPLE.org:1965/"), 1,
	    "a capsule's host:port, other case");
	is_int(allowed(c, "gemini://example.org:1966/"), ALLOW_ADDRESS,
	    "a capsule's host, other port");
	is_int(allowed(c, "gemini://www.example.org/"), ALLOW_ADDRESS,
	    "a capsule's subdomain");
	is_int(allowed(c, "gemini://127.0.0.1:1966/x"), 1, "loopback capsule");
	is_int(allowed(c, "gemini://127.0.0.1/"), 0, "loopback, other port");
	is_int(allowed(c, "gemini://a.allowed.test/"), 1, "glob, default port");
	is_int(allowed(c, "gemini://a.b.allowed.test/"), 1, "glob, deeper");
	is_int(allowed(c, "gemini://a.allowed.test:1966/"), ALLOW_ADDRESS,
	    "glob without port means 1965 only");
	is_int(allowed(c, "gemini://allowed.test/"), ALLOW_ADDRESS,
	    "*.domain does not match the domain");
	is_int(allowed(c, "gemini://[::1]:1/"), 1, "IPv6 pattern, port *");
	is_int(
	    allowed(c, "gemini://[::1]:65535/"), 1, "IPv6 pattern, any port");
	is_int(allowed(c, "gemini://[::2]/"), 0, "other IPv6 address");
	is_int(allowed(c, "gemini://[2001:db8::5]/"), 1, "IPv6 glob");
	is_int(allowed(c, "gemini://[2001:db8::5]:1966/"), 0,
	    "IPv6 glob, other port");
	is_int(allowed(c, "gemini://exact.test:1970/"), 1, "explicit port");
	is_int(allowed(c, "gemini://exact.test/"), ALLOW_ADDRESS,
	    "explicit port only");
	is_int(allowed(c, "gemini://gem5.test/"), 1,
	    "class glob, case-insensitive");
	is_int(allowed(c, "gemini://gemx.test/"), ALLOW_ADDRESS,
	    "class glob misses");
	is_int(
	    allowed(c, "gemini://other.test/"), ALLOW_ADDRESS, "not allowed");
	ok(allow_probe(c, NULL) == 0, "NULL URL");
	conf_free(c);

	c = parse_ok("probe-allow *:*\n");
	if (c != NULL)
		is_int(allowed(c, "gemini://anything.test:7/"), 1,
		    "*:* allows everything");
	conf_free(c);
	c = parse_ok("");
	if (c != NULL)
		is_int(allowed(c, "gemini://127.0.0.1/"), 0,
		    "nothing allowed without capsules or patterns");
	conf_free(c);
}

/* Whether conf's address patterns admit addr (IPv4 or IPv6) and port. */
static int
address_allowed(const struct conf *c, const char *addr, int port)
{
	struct sockaddr_storage ss;

	if (sockaddr_of(addr, port, &ss) == -1)
		return -1;
	return allow_address(c, (struct sockaddr *)&ss);
}

/* Address patterns decide on addresses, never on a name spelt like one. */
static void
test_probe_allowed_address(void)
{
	struct conf *c;

	c = parse_ok("probe-allow 127.0.0.*:*\n"
	             "probe-allow [::1]:1970\n"
	             "probe-allow *.name.test:1971\n");
	if (c == NULL)
		return;
	is_int(allowed(c, "gemini://127.0.0.1:7/"), ALLOW_TARGET,
	    "an address the pattern matches: allowed as it is");
	is_int(allowed(c, "gemini://127.1.0.1:7/"), ALLOW_NONE,
	    "an address the pattern does not match: refused");
	is_int(allowed(c, "gemini://127.0.0.1.attacker.test:7/"), ALLOW_ADDRESS,
	    "a name spelt like an allowed address: only its allowed "
	    "addresses");
	is_int(allowed(c, "gemini://localhost:7/"), ALLOW_ADDRESS,
	    "localhost under 127.0.0.*:*: only its allowed addresses");
	is_int(allowed(c, "gemini://[::1]:1970/"), ALLOW_TARGET,
	    "[::1]:1970 allows ::1 port 1970");
	is_int(allowed(c, "gemini://[::1]:1971/"), ALLOW_NONE,
	    "[::1]:1970 does not allow port 1971");
	is_int(allowed(c, "gemini://a.name.test:1971/"), ALLOW_TARGET,
	    "a name pattern allows the name as spelt");
	is_int(address_allowed(c, "127.0.0.5", 7), 1, "127.0.0.5 port 7");
	is_int(address_allowed(c, "127.1.0.1", 7), 0, "not 127.1.0.1");
	is_int(address_allowed(c, "::1", 1970), 1, "::1 port 1970");
	is_int(address_allowed(c, "::1", 7), 0, "not ::1 port 7");
	is_int(address_allowed(c, "::ffff:127.0.0.1", 7), 0,
	    "not ::ffff:127.0.0.1 (its IPv6 spelling is matched)");
	conf_free(c);

	c = parse_ok("probe-allow 127.0.0.1\n"
	             "probe-allow *.name.test:*\n");
	if (c == NULL)
		return;
	is_int(allowed(c, "gemini://other.test/"), ALLOW_ADDRESS,
	    "a name on port 1965: decided on its addresses");
	is_int(allowed(c, "gemini://other.test:1966/"), ALLOW_NONE,
	    "a name on a port no address pattern has: refused at once");
	is_int(allowed(c, "gemini://a.name.test:1966/"), ALLOW_TARGET,
	    "a name the name pattern matches, any port");
	is_int(address_allowed(c, "127.0.0.1", 1966), 0,
	    "127.0.0.1 without a port admits 1965 only");
	conf_free(c);
}

/* The file with "#" dropped before every "#word" line. */
static char *
example_uncommented(const char *path)
{
	char line[4096], *text = NULL;
	size_t len = 0, n, skip;
	FILE *f;

	if ((f = fopen(path, "r")) == NULL)
		return NULL;
	while (fgets(line, sizeof(line), f) != NULL) {
		skip = line[0] == '#' && line[1] >= 'a' && line[1] <= 'z';
		n = strlen(line + skip);
		text = xreallocarray(text, len + n + 1, 1);
		memcpy(text + len, line + skip, n + 1);
		len += n;
	}
	fclose(f);
	return text;
}

static void
test_load(void)
{
	struct conf_errors errs = {NULL, 0};
	struct conf *c;
	char dir[] = "/tmp/test_conf.XXXXXX", *path, *want, *text;
	const char *top;
	size_t i;
	int fd;

	c = conf_load("/nonexistent/gemwatch.conf", &errs);
	ok(c == NULL, "missing file");
	is_int(errs.n, 1, "one error for a missing file");
	is_str(errs.n ? errs.msg[0] : NULL,
	    "cannot open "
	    "/nonexistent/gemwatch.conf: No such file or directory",
	    "missing file message");
	conf_errors_free(&errs);
	conf_errors_free(&errs);
	conf_free(NULL);
	ok(1, "conf_free(NULL) and conf_errors_free twice are fine");

	if (mkdtemp(dir) == NULL) {
		ok(0, "mkdtemp");
		return;
	}
	c = conf_load(dir, &errs);
	xasprintf(&want, "cannot read %s: Is a directory", dir);
	ok(c == NULL, "a directory is rejected");
	is_str(errs.n ? errs.msg[0] : NULL, want, "directory message");
	free(want);
	conf_errors_free(&errs);

	xasprintf(&path, "%s/gemwatch.conf", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ok(fd != -1 && write(fd, "interval 7s\nbogus\n", 18) == 18,
	    "write a file");
	close(fd);
	c = conf_load(path, &errs);
	ok(c == NULL, "loaded file with an error rejected");
	xasprintf(&want, "%s:2: unknown directive \"bogus\"", path);
	is_str(errs.n ? errs.msg[0] : NULL, want, "errors name the path");
	free(want);
	conf_errors_free(&errs);

	fd = open(path, O_WRONLY | O_TRUNC);
	ok(fd != -1 && write(fd, "interval 7s\n", 12) == 12, "rewrite");
	close(fd);
	c = conf_load(path, &errs);
	ok(c != NULL && c->interval == 7, "conf_load parses the file");
	is_str(c ? c->path : NULL, path, "conf path");
	conf_free(c);

	/* Just over the limit: a sparse file, cheap to make. */
	fd = open(path, O_WRONLY | O_TRUNC);
	ok(fd != -1 && ftruncate(fd, 16 * 1024 * 1024 + 1) == 0, "big file");
	close(fd);
	c = conf_load(path, &errs);
	ok(c == NULL, "a file over 16 MiB is rejected");
	xasprintf(&want, "%s: larger than 16 MiB", path);
	is_str(errs.n ? errs.msg[0] : NULL, want, "too large message");
	free(want);
	conf_errors_free(&errs);
	unlink(path);
	free(path);
	rmdir(dir);

	if ((top = getenv("TOP_SRCDIR")) == NULL) {
		printf("ok %d - # SKIP TOP_SRCDIR unset\n", ++tap_n);
		return;
	}
	xasprintf(&path, "%s/etc/gemwatch.conf", top);
	c = conf_load(path, &errs);
	ok(c != NULL, "etc/gemwatch.conf parses");
	for (i = 0; i < errs.n; i++)
		printf("#   %s\n", errs.msg[i]);
	if (c != NULL) {
		ok(c->ncapsules >= 1, "the example has a capsule");
		for (i = 0; i < c->ncapsules; i++)
			ok(strcmp(c->capsules[i].url.host, "127.0.0.1") == 0 ||
			        strcmp(c->capsules[i].url.host, "::1") == 0,
			    "example capsule %s is on loopback",
			    c->capsules[i].name);
		is_int(c->nlisten, 1, "the example listens once");
		is_str(c->nlisten ? c->listen[0].text : NULL, "127.0.0.1:19650",
		    "the example listens on loopback");
		is_str(c->state_dir, LOCALSTATEDIR "/lib/gemwatch",
		    "the example keeps the default state-dir");
		ok(c->user == NULL, "the example does not change user");
	}
	conf_free(c);
	conf_errors_free(&errs);

	/* Every commented-out example ("#word ...") is valid too. */
	if ((text = example_uncommented(path)) == NULL) {
		ok(0, "read %s", path);
		free(path);
		return;
	}
	c = parse_ok(text);
	if (c != NULL) {
		ok(c->ncapsules >= 4,
		    "the uncommented example has %zu capsules", c->ncapsules);
		ok(c->nlisten == 2 && c->user != NULL && c->nprobe_allow >= 1,
		    "the uncommented example has every directive");
	}
	conf_free(c);
	free(text);
	free(path);
}

/*
 * $STATE_DIRECTORY (systemd's StateDirectory=) is the state-dir of a
 * loaded file that names none; the first of a list; a state-dir line
 * wins; a relative value is not a directory systemd would give and is
 * ignored; conf_parse never looks.
 */
static void
test_state_directory(void)
{
	struct conf_errors errs = {NULL, 0};
	struct conf *c;
	char dir[] = "/tmp/test_conf.XXXXXX", *path;
	static const char named[] = "state-dir /srv/named\n";
	int fd;

	if (mkdtemp(dir) == NULL) {
		ok(0, "mkdtemp");
		return;
	}
	xasprintf(&path, "%s/gemwatch.conf", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ok(fd != -1 && write(fd, "interval 7s\n", 12) == 12, "write a file");
	close(fd);

	unsetenv("STATE_DIRECTORY");
	c = conf_load(path, &errs);
	is_str(c ? c->state_dir : NULL, LOCALSTATEDIR "/lib/gemwatch",
	    "no STATE_DIRECTORY: the default state-dir");
	conf_free(c);

	setenv("STATE_DIRECTORY", "/var/lib/gw-test", 1);
	c = conf_load(path, &errs);
	is_str(c ? c->state_dir : NULL, "/var/lib/gw-test",
	    "STATE_DIRECTORY is the state-dir");
	conf_free(c);
	c = parse("interval 7s\n", &errs);
	is_str(c ? c->state_dir : NULL, LOCALSTATEDIR "/lib/gemwatch",
	    "conf_parse ignores STATE_DIRECTORY");
	conf_free(c);

	setenv("STATE_DIRECTORY", "/var/lib/first:/var/lib/second", 1);
	c = conf_load(path, &errs);
	is_str(c ? c->state_dir : NULL, "/var/lib/first",
	    "STATE_DIRECTORY list: the first");
	conf_free(c);

	setenv("STATE_DIRECTORY", "relative/dir", 1);
	c = conf_load(path, &errs);
	is_str(c ? c->state_dir : NULL, LOCALSTATEDIR "/lib/gemwatch",
	    "a relative STATE_DIRECTORY is ignored");
	conf_free(c);

	setenv("STATE_DIRECTORY", "/var/lib/gw-test", 1);
	fd = open(path, O_WRONLY | O_TRUNC);
	ok(fd != -1 && write(fd, named, sizeof named - 1) ==
	                   (ssize_t)(sizeof named - 1),
	    "rewrite with a state-dir");
	close(fd);
	c = conf_load(path, &errs);
	is_str(c ? c->state_dir : NULL, "/srv/named",
	    "a state-dir line wins over STATE_DIRECTORY");
	conf_free(c);
	conf_errors_free(&errs);

	unsetenv("STATE_DIRECTORY");
	unlink(path);
	free(path);
	rmdir(dir);
}

/* notify and its settings (issue 13). */
static void
test_notify(void)
{
	struct conf *c;
	char *text;
	size_t i;

	c = parse_ok("capsule " U "\n");
	if (c != NULL) {
		is_int(c->nnotify, 0, "no notify command by default");
		is_int(c->notify_after, 2, "default notify-after 2");
		ok(c->notify_repeat == 0, "notify-repeat off by default");
		is_int(c->notify_cert_days, 14, "default notify-cert-days 14");
		ok(c->notify_timeout == 30, "default notify-timeout 30s");
		is_int(
		    c->capsules[0].notify, 1, "a capsule notifies by default");
	}
	conf_free(c);

	c = parse_ok("notify /usr/local/bin/mail-me ops@example.org\n"
	             "notify /bin/sh -c \"logger -t gemwatch "
	             "\\\"$GEMWATCH_SUMMARY\\\"\"\n"
	             "notify-after 3\n"
	             "notify-repeat 4h\n"
	             "notify-cert-days 0\n"
	             "notify-timeout 1500ms\n"
	             "capsule " U " name=a notify=no\n"
	             "capsule " U " name=b notify=yes\n");
	if (c != NULL) {
		is_int(c->nnotify, 2, "two notify commands");
		is_str(c->notify[0][0], "/usr/local/bin/mail-me", "command");
		is_str(c->notify[0][1], "ops@example.org", "its argument");
		ok(c->notify[0][2] == NULL, "argv ends in NULL");
		is_str(c->notify[1][2],
		    "logger -t gemwatch \"$GEMWATCH_SUMMARY\"",
		    "a quoted word is one argument, $ left alone");
		ok(c->notify[1][3] == NULL, "three words");
		is_int(c->notify_after, 3, "notify-after");
		ok(c->notify_repeat == 4 * 3600, "notify-repeat 4h");
		is_int(c->notify_cert_days, 0, "notify-cert-days 0");
		ok(c->notify_timeout == 1.5, "notify-timeout 1500ms");
		is_int(c->capsules[0].notify, 0, "notify=no");
		is_int(c->capsules[1].notify, 1, "notify=yes");
	}
	conf_free(c);

	c = parse_ok("notify-repeat off\nnotify-after 1000\n"
	             "notify-cert-days 3650\nnotify-timeout 1h\n");
	if (c != NULL) {
		ok(c->notify_repeat == 0, "notify-repeat off");
		is_int(c->notify_after, 1000, "highest notify-after");
		is_int(c->notify_cert_days, 3650, "highest notify-cert-days");
		ok(c->notify_timeout == 3600, "longest notify-timeout");
	}
	conf_free(c);

	error_is("notify\n", CONF_NAME ":1: missing value for \"notify\"");
	error_is("notify mail-me\n", CONF_NAME
	    ":1: notify command \"mail-me\" must be an absolute path");
	error_is("notify ./mail-me\n", CONF_NAME
	    ":1: notify command \"./mail-me\" must be an absolute path");
	error_is("notify-after 0\n",
	    CONF_NAME ":1: notify-after must be between 1 and 1000");
	error_is("notify-after 2\nnotify-after 3\n", CONF_NAME
	    ":2: duplicate directive \"notify-after\" (first given at line 1)");
	error_is("notify-repeat 0\n",
	    CONF_NAME ":1: notify-repeat must be at least 1s");
	error_is("notify-repeat 31d\n",
	    CONF_NAME ":1: notify-repeat must be at most 30d");
	error_is("notify-repeat never\n",
	    CONF_NAME ":1: invalid duration \"never\" for notify-repeat "
	              "(expected a number with ms, s, m, h or d)");
	error_is("notify-cert-days 3651\n",
	    CONF_NAME ":1: notify-cert-days must be between 0 and 3650");
	error_is("notify-timeout 0\n",
	    CONF_NAME ":1: notify-timeout must be at least 100ms");
	error_is("notify-timeout 2h\n",
	    CONF_NAME ":1: notify-timeout must be at most 1h");
	error_is("notify-timeout 1s 2s\n",
	    CONF_NAME ":1: too many values for \"notify-timeout\"");
	error_is("capsule " U " notify=off\n",
	    CONF_NAME ":1: notify must be yes or no");
	error_is("capsule " U " notify=no notify=no\n",
	    CONF_NAME ":1: duplicate option \"notify\"");

	/* Bounded: 64 words a command, 16 commands. */
	text = xstrdup("notify /bin/true");
	for (i = 1; i < 65; i++) {
		char *t;

		xasprintf(&t, "%s a", text);
		free(text);
		text = t;
	}
	{
		char *t;

		xasprintf(&t, "%s\n", text);
		free(text);
		text = t;
	}
	error_is(text, CONF_NAME ":1: notify command has more than 64 words");
	free(text);
	text = xstrdup("");
	for (i = 0; i < 17; i++) {
		char *t;

		xasprintf(&t, "%snotify /bin/true\n", text);
		free(text);
		text = t;
	}
	error_is(text, CONF_NAME ":17: more than 16 notify commands");
	free(text);
}

static int
resolver_is(
    const struct sockaddr_storage *ss, int family, const char *addr, int port)
{
	struct listen_addr l;

	l.text = NULL;
	l.ss = *ss;
	l.sslen = family == AF_INET ? sizeof(struct sockaddr_in)
	                            : sizeof(struct sockaddr_in6);
	return addr_is(&l, family, addr, port);
}

static void
test_resolvers(void)
{
	struct conf *c;
	struct sockaddr_storage ss;
	const char *err;

	c = parse_ok("");
	if (c != NULL)
		is_int(
		    c->nresolvers, 0, "no resolver by default: resolv.conf's");
	conf_free(c);

	c = parse_ok("resolver 127.0.0.1:5353 192.0.2.1\n"
	             "resolver ::1\n"
	             "resolver [2001:db8::53]:5300 [::2]\n");
	if (c == NULL)
		return;
	is_int(c->nresolvers, 5, "five resolvers over three lines");
	ok(resolver_is(&c->resolvers[0], AF_INET, "127.0.0.1", 5353),
	    "resolver with a port");
	ok(resolver_is(&c->resolvers[1], AF_INET, "192.0.2.1", 53),
	    "resolver without a port: 53");
	ok(resolver_is(&c->resolvers[2], AF_INET6, "::1", 53),
	    "a bare IPv6 resolver");
	ok(resolver_is(&c->resolvers[3], AF_INET6, "2001:db8::53", 5300),
	    "an IPv6 resolver in brackets with a port");
	ok(resolver_is(&c->resolvers[4], AF_INET6, "::2", 53),
	    "an IPv6 resolver in brackets without a port");
	conf_free(c);

	ok(parse_resolver("10.0.0.1:65535", &ss, &err) == 0, "port 65535");
	ok(parse_resolver("dns.example", &ss, &err) == -1 &&
	        strcmp(err, "not a numeric IPv4 address") == 0,
	    "a name is not a resolver address");

	error_is("resolver localhost\n",
	    CONF_NAME ":1: invalid resolver address \"localhost\": "
	              "not a numeric IPv4 address");
	error_is("resolver 127.0.0.1:0\n",
	    CONF_NAME ":1: invalid resolver address \"127.0.0.1:0\": "
	              "the port must be a number from 1 to 65535");
	error_is("resolver 127.0.0.1:\n",
	    CONF_NAME ":1: invalid resolver address \"127.0.0.1:\": "
	              "the port must be a number from 1 to 65535");
	error_is("resolver [::1\n",
	    CONF_NAME ":1: invalid resolver address \"[::1\": "
	              "missing ']' after the IPv6 address");
	error_is("resolver [::1]x\n",
	    CONF_NAME ":1: invalid resolver address \"[::1]x\": "
	              "expected ADDRESS, ADDRESS:PORT or [IPv6]:PORT");
	error_is("resolver [127.0.0.1]:53\n",
	    CONF_NAME ":1: invalid resolver address \"[127.0.0.1]:53\": "
	              "not a numeric IPv6 address");
	error_is("resolver 1.2.3\n",
	    CONF_NAME ":1: invalid resolver address \"1.2.3\": "
	              "not a numeric IPv4 address");
	error_is("\nresolver 127.0.0.1 127.0.0.1:53\n",
	    CONF_NAME ":2: duplicate resolver address \"127.0.0.1:53\"");
	error_is("resolver\n", CONF_NAME ":1: missing value for \"resolver\"");
	error_is("resolver 10.0.0.1 10.0.0.2 10.0.0.3 10.0.0.4 10.0.0.5 "
	         "10.0.0.6 10.0.0.7 10.0.0.8 10.0.0.9 10.0.0.10 10.0.0.11 "
	         "10.0.0.12 10.0.0.13 10.0.0.14 10.0.0.15 10.0.0.16 "
	         "10.0.0.17\n",
	    CONF_NAME ":1: at most 16 resolver addresses may be given");
}

/* The defences of a body complete according to TLS but cut: max-idle
 * and expect-body-bytes. */
static void
test_stall_options(void)
{
	struct conf *c;

	c = parse_ok("capsule " U "\n"
	             "capsule " U "x max-idle=5s expect-body-bytes=>=2000\n"
	             "capsule " U "y max-idle=1500ms expect-body-bytes=>=4k\n"
	             "capsule " U "z max-idle=off expect-body-bytes=>=0\n");
	if (c == NULL)
		return;
	ok(c->capsules[0].max_idle == 0, "max-idle is off by default");
	ok(c->capsules[0].expect_body_bytes == -1,
	    "no expect-body-bytes by default");
	ok(c->capsules[1].max_idle == 5, "max-idle=5s");
	ok(c->capsules[1].expect_body_bytes == 2000,
	    "expect-body-bytes=>=2000");
	ok(c->capsules[2].max_idle == 1.5, "max-idle=1500ms");
	ok(c->capsules[2].expect_body_bytes == 4096, "expect-body-bytes=>=4k");
	ok(c->capsules[3].max_idle == 0, "max-idle=off");
	ok(c->capsules[3].expect_body_bytes == 0, "expect-body-bytes=>=0");
	conf_free(c);

	error_is("capsule " U " max-idle=soon\n",
	    CONF_NAME ":1: invalid duration \"soon\" for max-idle (expected a "
	              "number with ms, s, m, h or d)");
	error_is("capsule " U " max-idle=50ms\n",
	    CONF_NAME ":1: max-idle must be at least 100ms");
	error_is("capsule " U " max-idle=2h\n",
	    CONF_NAME ":1: max-idle must be at most 1h");
	error_is("capsule " U " max-idle=10s\n",
	    CONF_NAME ":1: max-idle (10s) must be shorter than the timeout "
	              "(10s)");
	error_is("timeout 4s\ncapsule " U " max-idle=5s\n",
	    CONF_NAME ":2: max-idle (5s) must be shorter than the timeout "
	              "(4s)");
	error_is("capsule " U " max-idle=5s max-idle=6s\n",
	    CONF_NAME ":1: duplicate option \"max-idle\"");
	error_is("capsule " U " expect-body-bytes=2000\n",
	    CONF_NAME ":1: invalid expect-body-bytes \"2000\" (expected "
	              ">=SIZE, like >=2000 or >=4k)");
	error_is("capsule " U " expect-body-bytes=>2000\n",
	    CONF_NAME ":1: invalid expect-body-bytes \">2000\" (expected "
	              ">=SIZE, like >=2000 or >=4k)");
	error_is("capsule " U " expect-body-bytes=>=\n",
	    CONF_NAME ":1: invalid expect-body-bytes \">=\" (expected "
	              ">=SIZE, like >=2000 or >=4k)");
	error_is("capsule " U " expect-body-bytes=>=-1\n",
	    CONF_NAME ":1: invalid expect-body-bytes \">=-1\" (expected "
	              ">=SIZE, like >=2000 or >=4k)");
	error_is("capsule " U " expect-body-bytes=>=99999999999999999999\n",
	    CONF_NAME
	    ":1: invalid expect-body-bytes "
	    "\">=99999999999999999999\" (expected >=SIZE, like >=2000 "
	    "or >=4k)");
}

static void
test_crawl(void)
{
	struct conf *c;

	c = parse_ok("capsule " U " name=a\n"
	             "capsule " U " name=b crawl=200 crawl-interval=6h "
	             "crawl-delay=0\n"
	             "capsule " U " name=c crawl=10000 crawl-delay=250ms\n");
	if (c != NULL) {
		is_int(c->capsules[0].crawl, 0, "no crawl by default");
		ok(c->capsules[0].crawl_interval == 3600,
		    "default crawl-interval 1h");
		ok(c->capsules[0].crawl_delay == 1, "default crawl-delay 1s");
		is_int(c->capsules[1].crawl, 200, "crawl=200");
		ok(c->capsules[1].crawl_interval == 6 * 3600,
		    "crawl-interval=6h");
		ok(c->capsules[1].crawl_delay == 0, "crawl-delay=0");
		is_int(c->capsules[2].crawl, 10000, "the most pages, 10000");
		ok(c->capsules[2].crawl_delay == 0.25, "crawl-delay=250ms");
	}
	conf_free(c);
	error_is("capsule " U " crawl=0\n",
	    CONF_NAME ":1: crawl must be between 1 and 10000");
	error_is("capsule " U " crawl=10001\n",
	    CONF_NAME ":1: crawl must be between 1 and 10000");
	error_is("capsule " U " crawl=many\n",
	    CONF_NAME ":1: invalid number \"many\" for crawl");
	error_is("capsule " U " crawl=5 crawl-interval=500ms\n",
	    CONF_NAME ":1: crawl-interval must be at least 1s");
	error_is("capsule " U " crawl=5 crawl-interval=31d\n",
	    CONF_NAME ":1: crawl-interval must be at most 30d");
	error_is("capsule " U " crawl=5 crawl-delay=2h\n",
	    CONF_NAME ":1: crawl-delay must be at most 1h");
}

int
main(void)
{
	test_defaults();
	test_globals();
	test_capsules();
	test_global_order();
	test_durations();
	test_quoting();
	test_global_errors();
	test_capsule_errors();
	test_bad_bytes();
	test_many_errors();
	test_capped_errors();
	test_shards();
	test_probe_allowed();
	test_probe_allowed_address();
	test_state_directory();
	test_resolvers();
	test_load();
	test_notify();
	test_stall_options();
	test_crawl();
	return done_testing();
}
