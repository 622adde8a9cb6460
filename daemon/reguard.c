/*
 * The cost guard of expect-body: what a POSIX extended regex may be
 * before glibc's regcomp sees it. glibc's regcomp spends time and memory
 * in proportion to how far bounded repetitions expand
 * ("((a{255}){255}){255}" takes seconds) and recurses once per nested
 * group or chained empty match (thousands of "(", or "((){255}){255}",
 * overflow the stack), so an expect-body is bounded in length, nesting and
 * expansion before it is compiled. The check reads the pattern as regcomp
 * will, but only counts: it is pure, and fuzzed (tests/fuzz/fuzz_regex.c)
 * together with regcomp on what it lets through.
 *
 * What no check of the pattern can bound is regexec's time on a long
 * body: glibc is quadratic on ".+foo". The match runs apart and is cut
 * off at the probe's deadline (bodymatch.h).
 */
#include "config.h"

#include <string.h>

#include "reguard.h"

#define REGUARD_DEPTH_MAX 32  /* groups nested */
#define REGUARD_COST_MAX 2048 /* nodes regcomp would build */

/* The number in a "{m,n}" bound, saturated; -1 when not all digits. */
static int
regex_bound(const char *s, const char *end, double *v)
{
	if (s == end)
		return -1;
	for (*v = 0; s < end; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		*v = *v * 10 + (*s - '0');
		if (*v > 1e9)
			*v = 1e9;
	}
	return 0;
}

/* One group level of regex_check: costs and what can match nothing. */
struct regex_level {
	double alt;  /* cost of the finished alternatives */
	double seq;  /* cost of the current alternative */
	double last; /* cost of its last item, what a repetition repeats */
	int has_last;
	int alt_empty;  /* a finished alternative can match the empty string */
	int seq_empty;  /* the current alternative can, so far */
	int pre_empty;  /* it could before its last item */
	int last_empty; /* the last item can */
};

static void
regex_level_init(struct regex_level *l)
{
	memset(l, 0, sizeof(*l));
	l->seq_empty = l->pre_empty = 1;
}

static void
regex_item(struct regex_level *l, double cost, int empty)
{
	l->pre_empty = l->seq_empty;
	l->seq += cost;
	l->last = cost;
	l->has_last = 1;
	l->last_empty = empty;
	l->seq_empty = l->pre_empty && empty;
}

/*
 * How a pattern is judged:
 * - The length is bounded first: every count below grows with it.
 * - The cost bounds the nodes regcomp builds: every atom, "|", "*", "?"
 *   and group costs 1, a group adds the sum of its alternatives, "X+"
 *   doubles X (glibc copies it: "XX*"), "X{m,n}" multiplies X by n (by m
 *   for "{m,}"): "a++++++++++++++++++++" alone takes 700 MB.
 * - Repeating what can match the empty string ("(a*)*", "a**", "(a|)*",
 *   "(a*){100}") makes regcomp's closures explode after an anchor:
 *   "^((a*)*){32}" does not finish, and "((){255}){255}" overflows the
 *   stack. Such a repetition is never needed: "(a*)*" is "a*".
 * - Back-references make regexec backtrack, exponentially on a crafted
 *   body.
 */
const char *
reguard_check(const char *re)
{
	struct regex_level lv[REGUARD_DEPTH_MAX + 1], *l;
	const char *q, *comma, *e;
	double g, m, n;
	char term[3];
	int d = 0, empty;

	if (strlen(re) > REGUARD_LEN_MAX)
		return "is longer than 1024 bytes";
	regex_level_init(&lv[0]);
	for (; *re != '\0'; re++) {
		l = &lv[d];
		switch (*re) {
		case '\\':
			if (re[1] >= '1' && re[1] <= '9')
				return "uses a back-reference, which is not "
				       "supported";
			/* \b \B \< \> \` \' match between characters. */
			empty = re[1] != '\0' && strchr("bB<>`'", re[1]);
			if (re[1] != '\0')
				re++;
			regex_item(l, 1, empty);
			break;
		case '^':
		case '$':
			regex_item(l, 1, 1);
			break;
		case '[':
			q = re + 1;
			if (*q == '^')
				q++;
			if (*q == ']')
				q++;
			for (; *q != '\0' && *q != ']'; q++) {
				/* [:class:], [.coll.], [=equiv=] */
				if (*q != '[' ||
				    (q[1] != ':' && q[1] != '.' && q[1] != '='))
					continue;
				term[0] = q[1];
				term[1] = ']';
				term[2] = '\0';
				if ((e = strstr(q + 2, term)) == NULL)
					break;
				q = e + 1;
			}
			re = *q == '\0' ? q - 1 : q;
			regex_item(l, 1, 0);
			break;
		case '(':
			if (++d > REGUARD_DEPTH_MAX)
				return "is too complex (groups nested too "
				       "deep)";
			regex_level_init(&lv[d]);
			break;
		case ')':
			if (d == 0) {
				regex_item(l, 1, 0);
				break;
			}
			g = 1 + l->alt + l->seq;
			empty = l->alt_empty || l->seq_empty;
			l = &lv[--d];
			regex_item(l, g, empty);
			break;
		case '|':
			g = l->alt + l->seq + 1;
			empty = l->alt_empty || l->seq_empty;
			regex_level_init(l);
			l->alt = g;
			l->alt_empty = empty;
			break;
		case '*':
		case '?':
		case '+':
			m = *re == '+';
			n = *re == '+' ? 2 : 1;
			goto repeat;
		case '{':
			if ((q = strchr(re, '}')) == NULL)
				goto atom;
			if ((comma = memchr(re, ',', q - re)) == NULL)
				comma = q;
			if (comma == re + 1 && comma < q)
				m = 0; /* "{,n}" */
			else if (regex_bound(re + 1, comma, &m) == -1)
				goto atom;
			if (comma + 1 >= q)
				n = m; /* "{m}", "{m,}" */
			else if (regex_bound(comma + 1, q, &n) == -1)
				goto atom;
			if (n < m)
				n = m;
			if (n < 1)
				n = 1;
			re = q;
		repeat:
			if (!l->has_last)
				goto atom;
			if (l->last_empty)
				return "repeats an expression that can match "
				       "the empty string";
			l->seq += l->last * (n - 1) + 1;
			l->last = l->last * n + 1;
			l->last_empty = m == 0;
			l->seq_empty = l->pre_empty && l->last_empty;
			break;
		default:
		atom:
			regex_item(l, 1, 0);
			break;
		}
		if (lv[d].seq + lv[d].alt > REGUARD_COST_MAX)
			return "is too complex (repetition counts too large)";
	}
	/* Groups left open are an error for regcomp; fold them anyway. */
	for (; d > 0; d--)
		lv[d - 1].seq += 1 + lv[d].alt + lv[d].seq;
	if (lv[0].seq + lv[0].alt > REGUARD_COST_MAX)
		return "is too complex (repetition counts too large)";
	return NULL;
}
