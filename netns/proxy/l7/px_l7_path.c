/* Request-target canonicalisation for L7 policy (contract §2.5): one canonical path that is both
 * what the policy matches and what goes upstream, so '..', '%2e%2e', '//' and ';params' cannot
 * make the two disagree.
 *
 * Pure: no allocation, no I/O. Never clamps '..' at the root (refuses instead), and never lets
 * a '.'/'..' segment survive into the result.
 */
#include "netns/proxy/l7/px_l7.h"

#include <errno.h>
#include <string.h>

/* A %2F kept under allow_encoded_slash, held inside its segment until re-emitted. Raw 0x01 is
 * refused up front, so it cannot collide. */
#define SLASH_SENTINEL 0x01

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

static bool is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* Emitted literally: unreserved, sub-delims, ':' and '@' (RFC 3986 pchar without '%'). */
static bool is_pchar(unsigned char c)
{
	return is_alpha(c) || is_digit(c) || (c && strchr("-._~!$&'()*+,;=:@", c));
}

const char *px_l7_path_strerror(enum px_l7_path_err why)
{
	switch (why) {
	case PX_L7_PATH_OK:
		return "ok";
	case PX_L7_PATH_CONTROL:
		return "request-target contains a null or control byte";
	case PX_L7_PATH_BAD_PERCENT:
		return "request-target contains an invalid percent-encoded sequence";
	case PX_L7_PATH_ENCODED_SLASH:
		return "request-target contains an encoded '/' (%2F) which is not allowed on this "
		       "endpoint";
	case PX_L7_PATH_FRAGMENT:
		return "request-target contains a fragment";
	case PX_L7_PATH_NON_ASCII:
		return "request-target contains raw non-ASCII bytes; non-ASCII must be "
		       "percent-encoded";
	case PX_L7_PATH_TRAVERSAL:
		return "request-target's `..` segment would escape the path root";
	case PX_L7_PATH_RESIDUAL_DOT:
		return "request-target still contains a `.`/`..` segment after canonicalization";
	case PX_L7_PATH_TOO_LONG:
		return "request-target exceeds the configured maximum length";
	case PX_L7_PATH_MALFORMED:
		return "request-target is not a valid origin-form path";
	}
	return "request-target rejected";
}

static int refuse(enum px_l7_path_err *why, enum px_l7_path_err e)
{
	if (why)
		*why = e;
	return -EINVAL;
}

/* Absolute-form "scheme://authority[/path]": the path part (or "/" when empty). Returns false
 * when @p is not absolute-form; *bad set when it is but has no authority. */
static bool absolute_path(const char *p, size_t n, const char **path, size_t *path_len, bool *bad)
{
	size_t i = 0;
	while (i < n && (is_alpha((unsigned char)p[i]) ||
			 (i > 0 && (is_digit((unsigned char)p[i]) || p[i] == '+' || p[i] == '-' ||
				    p[i] == '.'))))
		i++;
	if (i == 0 || n - i < 3 || memcmp(p + i, "://", 3) != 0)
		return false;
	size_t a = i + 3, r = a;
	while (r < n && p[r] != '/')
		r++;
	*bad = r == a || i > 64;
	for (size_t k = a; k < r; k++) {
		unsigned char c = (unsigned char)p[k];
		if (!is_alpha(c) && !is_digit(c) && !strchr("-._~!$&'()*+,;=:@[]%", c))
			*bad = true;
	}
	*path = r < n ? p + r : "/";
	*path_len = r < n ? n - r : 1;
	return true;
}

struct seg {
	uint16_t off, len;
};

static bool seg_is(const unsigned char *d, struct seg s, const char *lit)
{
	return s.len == strlen(lit) && memcmp(d + s.off, lit, s.len) == 0;
}

int px_l7_path_canon(const char *target, size_t len, bool allow_encoded_slash, char *buf,
		     size_t size, struct px_l7_canon *out, enum px_l7_path_err *why)
{
	unsigned char dec[PX_L7_PATH_MAX];
	struct seg segs[PX_L7_PATH_MAX / 2 + 2];
	size_t nd = 0, ns = 0;

	if (why)
		*why = PX_L7_PATH_OK;
	memset(out, 0, sizeof(*out));
	memset(dec, 0, sizeof(dec)); /* 4 KiB: cheap, and lets the analyzer prove every read */
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)target[i];
		if (c < 0x20 || c == 0x7f)
			return refuse(why, PX_L7_PATH_CONTROL);
		if (c >= 0x80)
			return refuse(why, PX_L7_PATH_NON_ASCII);
	}
	if (memchr(target, '#', len))
		return refuse(why, PX_L7_PATH_FRAGMENT);

	const char *q = memchr(target, '?', len);
	size_t plen = q ? (size_t)(q - target) : len;
	if (q) {
		out->query = q + 1;
		out->query_len = len - plen - 1;
	}
	const char *raw = target;
	size_t rlen = plen;
	bool bad = false;
	if (absolute_path(target, plen, &raw, &rlen, &bad) && bad)
		return refuse(why, PX_L7_PATH_MALFORMED);
	if (rlen == 0) {
		raw = "/";
		rlen = 1;
	}
	if (raw[0] != '/')
		return refuse(why, PX_L7_PATH_MALFORMED);
	if (rlen > PX_L7_PATH_MAX)
		return refuse(why, PX_L7_PATH_TOO_LONG);

	/* Percent-decode; a kept %2F becomes the sentinel so it never splits a segment. */
	for (size_t i = 0; i < rlen;) {
		unsigned char c = (unsigned char)raw[i];
		if (c != '%') {
			dec[nd++] = c;
			i++;
			continue;
		}
		int hi = i + 2 < rlen ? hexval((unsigned char)raw[i + 1]) : -1;
		int lo = i + 2 < rlen ? hexval((unsigned char)raw[i + 2]) : -1;
		if (hi < 0 || lo < 0)
			return refuse(why, PX_L7_PATH_BAD_PERCENT);
		unsigned char d = (unsigned char)(hi << 4 | lo);
		if (d == '/') {
			if (!allow_encoded_slash)
				return refuse(why, PX_L7_PATH_ENCODED_SLASH);
			d = SLASH_SENTINEL;
		} else if (d < 0x20 || d == 0x7f) {
			return refuse(why, PX_L7_PATH_CONTROL);
		}
		dec[nd++] = d;
		i += 3;
	}

	/* Split after the leading '/', strip ";params" per segment, resolve dot segments. */
	size_t start = 1, nraw = 0;
	for (size_t i = 1; i <= nd; i++)
		nraw += i == nd || dec[i] == '/';
	for (size_t i = 1, k = 0; i <= nd; i++) {
		if (i < nd && dec[i] != '/')
			continue;
		struct seg s = {(uint16_t)start, (uint16_t)(i - start)};
		const unsigned char *semi = memchr(dec + s.off, ';', s.len);
		if (semi)
			s.len = (uint16_t)(semi - (dec + s.off));
		bool last = ++k == nraw;
		start = i + 1;
		if (seg_is(dec, s, "..")) {
			if (ns == 0)
				return refuse(why, PX_L7_PATH_TRAVERSAL);
			ns--;
			if (last)
				segs[ns++] = (struct seg){0, 0};
			continue;
		}
		if (seg_is(dec, s, ".")) {
			if (last)
				segs[ns++] = (struct seg){0, 0};
			continue;
		}
		if (s.len == 0 && !last)
			continue;
		segs[ns++] = s;
	}

	/* No dot segment may survive, not even one hidden between kept %2F sentinels. */
	for (size_t k = 0; k < ns; k++) {
		size_t p = segs[k].off, end = p + segs[k].len;
		while (p <= end) {
			const unsigned char *hit = memchr(dec + p, SLASH_SENTINEL, end - p);
			size_t e = hit ? (size_t)(hit - dec) : end;
			struct seg part = {(uint16_t)p, (uint16_t)(e - p)};
			if (seg_is(dec, part, ".") || seg_is(dec, part, ".."))
				return refuse(why, PX_L7_PATH_RESIDUAL_DOT);
			p = e + 1;
		}
	}

	size_t w = 0;
	static const char hexd[] = "0123456789ABCDEF";
#define PUT(ch)                          \
	do {                             \
		if (w + 1 >= size)       \
			return -ENOBUFS; \
		buf[w++] = (char)(ch);   \
	} while (0)
	PUT('/');
	for (size_t k = 0; k < ns; k++) {
		if (k > 0)
			PUT('/');
		for (size_t i = 0; i < segs[k].len; i++) {
			unsigned char c = dec[segs[k].off + i];
			if (c == SLASH_SENTINEL) {
				PUT('%');
				PUT('2');
				PUT('F');
			} else if (is_pchar(c)) {
				PUT(c);
			} else {
				PUT('%');
				PUT(hexd[c >> 4]);
				PUT(hexd[c & 15]);
			}
		}
	}
#undef PUT
	buf[w] = '\0';
	out->path_len = w;
	out->rewritten = w != rlen || memcmp(buf, raw, w) != 0;
	return 0;
}

bool px_l7_path_has_encoded_slash(const char *canon, size_t len)
{
	for (size_t i = 0; i + 2 < len; i++)
		if (canon[i] == '%' && canon[i + 1] == '2' && canon[i + 2] == 'F')
			return true;
	return false;
}
