/*
 * gemini:// URL parser. It accepts only what a Gemini request may carry
 * (no userinfo, no fragment, no blanks or control bytes), folds the host
 * to lower case, turns internationalised names into IDNA A-labels and IP
 * literals into their canonical form, and builds the canonical absolute
 * URL that gemwatch sends as the request line, bounded by URL_MAX. The
 * input is hostile: it is read only within len and never trusted to be
 * NUL-terminated.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <fnmatch.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "defaults.h"
#include "url.h"
#include "utf8.h"
#include "xmalloc.h"

#define URL_SCHEME "gemini://"
#define URL_SCHEME_LEN (sizeof(URL_SCHEME) - 1)
/* Input this long cannot shrink to a URL of URL_MAX bytes. */
#define URL_INPUT_MAX 4096
#define URL_HOST_MAX 253 /* DNS limits */
#define URL_LABEL_MAX 63

static const char *url_err_long = "URL longer than 1024 bytes";

/* Check a lower-case ASCII host name and whether it is an IPv4 literal. */
static int
url_check_name(const char *name, int *is_ip, const char **err)
{
	struct in_addr in4;
	size_t i, label, len;
	int numeric;

	len = strlen(name);
	if (len > URL_HOST_MAX) {
		*err = "host name longer than 253 bytes";
		return -1;
	}
	label = 0;
	numeric = 1;
	for (i = 0; i <= len; i++) {
		if (name[i] == '.' || name[i] == '\0') {
			if (label == 0) {
				*err = "host name has an empty label";
				return -1;
			}
			if (label > URL_LABEL_MAX) {
				*err = "host name label longer than 63 bytes";
				return -1;
			}
			if (name[i] == '\0')
				break;
			label = 0;
			numeric = 1;
			continue;
		}
		if ((name[i] < 'a' || name[i] > 'z') &&
		    (name[i] < '0' || name[i] > '9') && name[i] != '-' &&
		    name[i] != '_') {
			*err = "host name may only contain letters, digits, "
			       "'-', '.' and '_'";
			return -1;
		}
		if (name[i] < '0' || name[i] > '9')
			numeric = 0;
		label++;
	}
	*is_ip = 0;
	if (inet_pton(AF_INET, name, &in4) == 1)
		*is_ip = 1;
	else if (numeric || inet_aton(name, &in4) != 0) {
		/*
		 * Only a.b.c.d in decimal is an address here. getaddrinfo
		 * (inet_aton) would also take "10.1", "0x7f000001",
		 * "0x7f.0.0.1" or "0177.0.0.1" for one, where a probe-allow
		 * pattern or a reader sees a name: refuse them.
		 */
		*err = "invalid IPv4 address";
		return -1;
	}
	return 0;
}

/* Host name (not an IPv6 literal) to a lower-case A-label string. */
static char *
url_host_name(const char *p, size_t n, int *is_ip, const char **err)
{
	gnutls_datum_t out;
	char *name;
	size_t i;
	int ascii = 1;

	if (n == 0) {
		*err = "URL has no host";
		return NULL;
	}
	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] >= 0x80)
			ascii = 0;
	if (ascii)
		name = xstrndup(p, n);
	else {
		if (!utf8_valid(p, n)) {
			*err = "host name is not valid UTF-8";
			return NULL;
		}
		if (n > URL_HOST_MAX * 4 ||
		    gnutls_idna_map(p, n, &out, 0) != GNUTLS_E_SUCCESS) {
			*err = "host name cannot be converted to an IDNA "
			       "A-label";
			return NULL;
		}
		name = xstrndup((const char *)out.data, out.size);
		gnutls_free(out.data);
	}
	for (i = 0; name[i] != '\0'; i++)
		if (name[i] >= 'A' && name[i] <= 'Z')
			name[i] += 'a' - 'A';
	if (url_check_name(name, is_ip, err) == -1) {
		free(name);
		return NULL;
	}
	return name;
}

/* The inside of "[...]" to the canonical text of the IPv6 address. */
static char *
url_host_ipv6(const char *p, size_t n, const char **err)
{
	struct in6_addr in6;
	char tmp[INET6_ADDRSTRLEN], out[INET6_ADDRSTRLEN];

	if (n == 0 || n >= sizeof(tmp)) {
		*err = "invalid IPv6 address";
		return NULL;
	}
	memcpy(tmp, p, n);
	tmp[n] = '\0';
	if (inet_pton(AF_INET6, tmp, &in6) != 1 ||
	    inet_ntop(AF_INET6, &in6, out, sizeof(out)) == NULL) {
		*err = "invalid IPv6 address";
		return NULL;
	}
	return xstrdup(out);
}

static int
url_port(const char *p, size_t n, int *port, const char **err)
{
	size_t i;
	int v = 0;

	if (n == 0 || n > 5)
		goto fail;
	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			goto fail;
		v = v * 10 + (p[i] - '0');
	}
	if (v < 1 || v > 65535)
		goto fail;
	*port = v;
	return 0;
fail:
	*err = "port must be a number from 1 to 65535";
	return -1;
}

/* "/" for nothing, a "/" before a bare "?query", bytes >= 0x80 as %XX. */
static char *
url_path(const char *p, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned char c;
	char *path, *q;
	size_t i;

	path = q = xmalloc(1 + 3 * n + 1);
	if (n == 0 || p[0] != '/')
		*q++ = '/';
	for (i = 0; i < n; i++) {
		c = (unsigned char)p[i];
		if (c >= 0x80) {
			*q++ = '%';
			*q++ = hex[c >> 4];
			*q++ = hex[c & 0xf];
		} else
			*q++ = (char)c;
	}
	*q = '\0';
	return path;
}

int
url_parse(const char *buf, size_t len, struct url *u, const char **err)
{
	const char *auth, *auth_end, *end, *rest, *p;
	char *host = NULL, *path = NULL, *text = NULL;
	char portstr[8] = "";
	int port = DEFAULT_PORT, is_ip = 0, is_ipv6 = 0;
	size_t i;

	memset(u, 0, sizeof(*u));
	if (len > URL_INPUT_MAX) {
		*err = url_err_long;
		return -1;
	}
	for (i = 0; i < len; i++) {
		if ((unsigned char)buf[i] < 0x21 || buf[i] == 0x7f) {
			*err = "URL contains a blank or a control character";
			return -1;
		}
	}
	if (len < URL_SCHEME_LEN ||
	    strncasecmp(buf, URL_SCHEME, URL_SCHEME_LEN) != 0) {
		*err = "only gemini:// URLs are supported";
		return -1;
	}
	if (memchr(buf, '#', len) != NULL) {
		*err = "fragments are not allowed in gemini URLs";
		return -1;
	}

	end = buf + len;
	auth = buf + URL_SCHEME_LEN;
	for (auth_end = auth; auth_end < end; auth_end++)
		if (*auth_end == '/' || *auth_end == '?')
			break;
	if (memchr(auth, '@', auth_end - auth) != NULL) {
		*err = "userinfo is not allowed in gemini URLs";
		return -1;
	}
	if (auth == auth_end) {
		*err = "URL has no host";
		return -1;
	}

	if (*auth == '[') {
		p = memchr(auth, ']', auth_end - auth);
		if (p == NULL) {
			*err = "IPv6 address without a closing ']'";
			goto fail;
		}
		if ((host = url_host_ipv6(auth + 1, p - auth - 1, err)) == NULL)
			goto fail;
		is_ip = is_ipv6 = 1;
		rest = p + 1;
		if (rest < auth_end && *rest != ':') {
			*err = "unexpected characters after the IPv6 address";
			goto fail;
		}
	} else {
		rest = memchr(auth, ':', auth_end - auth);
		if (rest == NULL)
			rest = auth_end;
		if ((host = url_host_name(auth, rest - auth, &is_ip, err)) ==
		    NULL)
			goto fail;
	}
	if (rest < auth_end) {
		if (url_port(rest + 1, auth_end - rest - 1, &port, err) == -1)
			goto fail;
		if (port != DEFAULT_PORT)
			(void)snprintf(portstr, sizeof(portstr), ":%d", port);
	}

	path = url_path(auth_end, end - auth_end);
	xasprintf(&text, "%s%s%s%s%s%s", URL_SCHEME, is_ipv6 ? "[" : "", host,
	    is_ipv6 ? "]" : "", portstr, path);
	if (strlen(text) > URL_MAX) {
		*err = url_err_long;
		goto fail;
	}

	u->host = host;
	u->port = port;
	u->host_is_ip = is_ip;
	u->path = path;
	u->text = text;
	return 0;

fail:
	free(text);
	free(path);
	free(host);
	return -1;
}

/*
 * A probe-allow pattern (url.h): the host glob is checked here so that
 * fnmatch sees only letters, digits, ".", "-", "_" and balanced classes.
 */
int
url_pattern_parse(const char *pat, char host[URL_PATTERN_MAX + 1], int *port,
    const char **err)
{
	const char *end, *rest, *q;
	size_t len = strlen(pat), hostlen;

	if (len == 0 || len > URL_PATTERN_MAX) {
		*err = len ? "longer than 255 bytes" : "empty pattern";
		return -1;
	}
	end = strchr(pat, ']');
	if (pat[0] == '[' && end != NULL &&
	    memchr(pat, ':', end - pat) != NULL) {
		pat++;
		hostlen = end - pat;
		if (hostlen == 0 ||
		    strspn(pat, "0123456789abcdefABCDEF:.*?") < hostlen) {
			*err = "not an IPv6 address or glob";
			return -1;
		}
		rest = end + 1;
		if (*rest != '\0' && *rest != ':') {
			*err = "expected \":PORT\" after \"]\"";
			return -1;
		}
	} else {
		rest = strrchr(pat, ':');
		if (rest == NULL)
			rest = pat + len;
		hostlen = rest - pat;
		if (hostlen == 0) {
			*err = "empty host";
			return -1;
		}
		if (strspn(pat, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		                "abcdefghijklmnopqrstuvwxyz0123456789.-_*?[]") <
		    hostlen) {
			*err = "a host may only contain letters, digits, "
			       "\".\", \"-\", \"_\" and the glob characters "
			       "\"*\", \"?\", \"[]\"";
			return -1;
		}
		/* Each "[" opens a class that a "]" closes. */
		for (q = pat; q < pat + hostlen; q++) {
			if (*q == ']') {
				*err = "\"]\" without \"[\"";
				return -1;
			}
			if (*q != '[')
				continue;
			end = memchr(q + 1, ']', pat + hostlen - q - 1);
			if (end == NULL || memchr(q + 1, '[', end - q - 1)) {
				*err = "\"[\" without \"]\"";
				return -1;
			}
			q = end;
		}
	}
	if (*rest == '\0')
		*port = DEFAULT_PORT;
	else if (strcmp(rest + 1, "*") == 0)
		*port = -1;
	else if (url_port(rest + 1, strlen(rest + 1), port, err) == -1) {
		*err = "the port must be a number from 1 to 65535 or \"*\"";
		return -1;
	}
	memcpy(host, pat, hostlen);
	host[hostlen] = '\0';
	return 0;
}

int
url_pattern_match(const char *pat, const struct url *u)
{
	struct in6_addr a, b;
	char host[URL_PATTERN_MAX + 1];
	const char *err;
	int port;

	if (url_pattern_parse(pat, host, &port, &err) == -1)
		return 0;
	if (port != -1 && port != u->port)
		return 0;
	/* IPv6 has many spellings of one address: compare the addresses. */
	if (strpbrk(host, "*?[") == NULL && inet_pton(AF_INET6, host, &a) == 1)
		return inet_pton(AF_INET6, u->host, &b) == 1 &&
		       memcmp(&a, &b, sizeof(a)) == 0;
	return fnmatch(host, u->host, FNM_CASEFOLD) == 0;
}

void
url_free(struct url *u)
{
	free(u->host);
	free(u->path);
	free(u->text);
	memset(u, 0, sizeof(*u));
}

void
url_copy(struct url *dst, const struct url *src)
{
	dst->host = src->host != NULL ? xstrdup(src->host) : NULL;
	dst->port = src->port;
	dst->host_is_ip = src->host_is_ip;
	dst->path = src->path != NULL ? xstrdup(src->path) : NULL;
	dst->text = src->text != NULL ? xstrdup(src->text) : NULL;
}

/* ---- references (RFC 3986 §5) ------------------------------------------ */

/*
 * Append the absolute path p[0..n) ("" or "/...") to out[*o..cap) with
 * its dot segments removed (RFC 3986 §5.2.4); -1 when it does not fit.
 */
static int
url_add_path(char *out, size_t *o, size_t cap, const char *p, size_t n)
{
	size_t start = *o, i = 0, k, seg;
	int last;

	while (i < n) {
		/* p[i] is a "/"; the segment is what follows, up to the next.
		 */
		k = i + 1;
		for (seg = k; seg < n && p[seg] != '/'; seg++)
			;
		last = seg == n;
		if (seg - k == 2 && p[k] == '.' && p[k + 1] == '.') {
			while (*o > start && out[*o - 1] != '/')
				(*o)--;
			if (*o > start)
				(*o)--;
		} else if (!(seg - k == 1 && p[k] == '.')) {
			if (*o + (seg - i) >= cap)
				return -1;
			memcpy(out + *o, p + i, seg - i);
			*o += seg - i;
			last = 0;
		}
		if (last) { /* "/." or "/.." at the end leave a "/" */
			if (*o + 1 >= cap)
				return -1;
			out[(*o)++] = '/';
		}
		i = seg;
	}
	return 0;
}

int
url_resolve(
    const struct url *base, const char *ref, size_t len, char *out, size_t cap)
{
	const char *end, *q, *path, *auth = NULL, *btext, *bpath;
	size_t i, o = 0, plen, alen = 0, qlen = 0, n;
	char *merged = NULL;
	int rv = URL_RESOLVE_BAD;

	if (cap < URL_SCHEME_LEN + 2 || len > URL_INPUT_MAX)
		return URL_RESOLVE_BAD;
	for (i = 0; i < len; i++)
		if ((unsigned char)ref[i] < 0x21 || ref[i] == 0x7f)
			return URL_RESOLVE_BAD;
	/* The fragment is the client's, never sent. */
	if ((end = memchr(ref, '#', len)) == NULL)
		end = ref + len;
	/* A scheme: letters, digits, "+", "-", "." before ":", a letter first.
	 */
	for (i = 0; ref + i < end; i++) {
		if (ref[i] == ':' && i > 0)
			break;
		if (!((ref[i] >= 'a' && ref[i] <= 'z') ||
		        (ref[i] >= 'A' && ref[i] <= 'Z') ||
		        (i > 0 && ((ref[i] >= '0' && ref[i] <= '9') ||
		                      ref[i] == '+' || ref[i] == '-' ||
		                      ref[i] == '.')))) {
			i = 0;
			break;
		}
	}
	path = ref;
	if (ref + i < end && i > 0) {
		if (i != 6 || strncasecmp(ref, "gemini", 6) != 0)
			return URL_RESOLVE_OTHER;
		path = ref + i + 1;
	}
	if (end - path >= 2 && path[0] == '/' && path[1] == '/') {
		auth = path + 2;
		for (path = auth; path < end && *path != '/' && *path != '?';
		     path++)
			;
		alen = (size_t)(path - auth);
	} else if (path != ref)
		return URL_RESOLVE_BAD; /* "gemini:path": no authority */
	if ((q = memchr(path, '?', (size_t)(end - path))) == NULL)
		q = end;
	plen = (size_t)(q - path);
	qlen = (size_t)(end - q);

	btext = base->text + URL_SCHEME_LEN;
	bpath = strchr(btext, '/');
	memcpy(out, URL_SCHEME, URL_SCHEME_LEN);
	o = URL_SCHEME_LEN;
	if (auth == NULL) {
		auth = btext;
		alen = (size_t)(bpath - btext);
	}
	if (o + alen + 1 >= cap)
		return URL_RESOLVE_BAD;
	memcpy(out + o, auth, alen);
	o += alen;
	if (auth != btext) {
		if (url_add_path(out, &o, cap, path, plen) == -1)
			return URL_RESOLVE_BAD;
	} else if (plen == 0) {
		/* The base's path, and its query unless the reference has one.
		 */
		n = strcspn(bpath, qlen > 0 ? "?" : "");
		if (o + n >= cap)
			return URL_RESOLVE_BAD;
		memcpy(out + o, bpath, n);
		o += n;
	} else if (path[0] == '/') {
		if (url_add_path(out, &o, cap, path, plen) == -1)
			return URL_RESOLVE_BAD;
	} else {
		/* Merge: the base's path up to its last "/", then the
		 * reference. */
		n = strcspn(bpath, "?");
		while (n > 0 && bpath[n - 1] != '/')
			n--;
		merged = xmalloc(n + plen + 1);
		memcpy(merged, bpath, n);
		memcpy(merged + n, path, plen);
		if (url_add_path(out, &o, cap, merged, n + plen) == -1)
			goto fail;
	}
	if (o + qlen >= cap)
		goto fail;
	memcpy(out + o, q, qlen);
	o += qlen;
	out[o] = '\0';
	rv = URL_RESOLVE_OK;
fail:
	free(merged);
	return rv;
}
