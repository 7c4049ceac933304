/* Query-string parsing for L7 query matchers (contract §2.5): '&'-separated key[=value]
 * pairs, '+' as space, %HH decoded, UTF-8 required.
 *
 * Pure: decoded bytes go to the caller's buffer. A malformed escape or invalid UTF-8 is a
 * parse error (the tunnel closes), never silently repaired.
 */
#include "netns/proxy/l7/px_l7.h"

#include <errno.h>
#include <string.h>

#include "netns/proxy/l7/px_l7_int.h"

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode @n bytes at @s (starting at query offset @at) into @out; returns the decoded length
 * or -EBADMSG. */
static int decode(const char *s, size_t n, size_t at, char *out, struct sv_err *err)
{
	size_t w = 0;
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		if (c == '+') {
			out[w++] = ' ';
			i++;
		} else if (c != '%') {
			out[w++] = (char)c;
			i++;
		} else {
			int hi = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
			int lo = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
			if (hi < 0 || lo < 0)
				return sv_err_set(err, EBADMSG,
						  "query: byte %zu: invalid percent-encoding",
						  at + i);
			out[w++] = (char)(hi << 4 | lo);
			i += 3;
		}
	}
	if (!px_l7_utf8_valid((const unsigned char *)out, w))
		return sv_err_set(err, EBADMSG, "query: byte %zu: component is not valid UTF-8",
				  at);
	return (int)w;
}

int px_l7_query_parse(const char *q, size_t len, char *buf, size_t size,
		      struct px_l7_qparam *params, size_t max, struct sv_err *err)
{
	size_t used = 0, n = 0;

	if (size < len)
		return sv_err_set(err, ENOBUFS, "query: buffer smaller than the query");
	for (size_t p = 0; p < len;) {
		const char *amp = memchr(q + p, '&', len - p);
		size_t e = amp ? (size_t)(amp - q) : len;
		if (e > p) {
			const char *eq = memchr(q + p, '=', e - p);
			size_t ke = eq ? (size_t)(eq - q) : e;
			if (n == max)
				return sv_err_set(err, E2BIG, "query: more than %zu parameters",
						  max);
			int kl = decode(q + p, ke - p, p, buf + used, err);
			if (kl < 0)
				return kl;
			params[n].key = buf + used;
			params[n].key_len = (size_t)kl;
			used += (size_t)kl;
			int vl = eq ? decode(eq + 1, e - ke - 1, ke + 1, buf + used, err) : 0;
			if (vl < 0)
				return vl;
			params[n].val = buf + used;
			params[n].val_len = (size_t)vl;
			used += (size_t)vl;
			n++;
		}
		p = e + 1;
	}
	return (int)n;
}
