/* Byte classes, UTF-8 checks and the bounded appending writer shared by the L7 files.
 *
 * Pure helpers: no allocation, no I/O. The writer never writes past its buffer; it keeps
 * counting so callers can size a retry or report -ENOBUFS.
 */
#include "netns/proxy/l7/px_l7_int.h"

#include <errno.h>
#include <string.h>

bool px_l7_is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

unsigned char px_l7_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

bool px_l7_ieq(const char *a, size_t an, const char *lit)
{
	size_t n = strlen(lit);
	if (an != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (px_l7_lower((unsigned char)a[i]) != px_l7_lower((unsigned char)lit[i]))
			return false;
	return true;
}

size_t px_l7_utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1fu;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0fu;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07u;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t k = 1; k < len; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[k] & 0x3fu);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

bool px_l7_utf8_valid(const unsigned char *s, size_t n)
{
	for (size_t i = 0, l; i < n; i += l)
		if ((l = px_l7_utf8_len(s + i, n - i)) == 0)
			return false;
	return true;
}

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

void px_l7_trim(const char **p, size_t *n)
{
	while (*n && is_ws(**p))
		(*p)++, (*n)--;
	while (*n && is_ws((*p)[*n - 1]))
		(*n)--;
}

static bool ieqn(const char *a, size_t an, const char *b, size_t bn)
{
	if (an != bn)
		return false;
	for (size_t i = 0; i < an; i++)
		if (px_l7_lower((unsigned char)a[i]) != px_l7_lower((unsigned char)b[i]))
			return false;
	return true;
}

bool px_l7_list_has(const char *v, size_t n, const char *tok)
{
	return px_l7_list_hasn(v, n, tok, strlen(tok));
}

bool px_l7_list_hasn(const char *v, size_t n, const char *tok, size_t tok_len)
{
	const char *end = v + n;
	while (v <= end) {
		const char *c = memchr(v, ',', (size_t)(end - v));
		const char *e = c ? c : end;
		const char *t = v;
		size_t tn = (size_t)(e - v);
		px_l7_trim(&t, &tn);
		if (ieqn(t, tn, tok, tok_len))
			return true;
		if (!c)
			break;
		v = c + 1;
	}
	return false;
}

void px_l7_w_put(struct px_l7_w *w, const char *s, size_t n)
{
	if (w->buf && n <= w->size && w->len <= w->size - n)
		memcpy(w->buf + w->len, s, n);
	w->len += n;
}

void px_l7_w_str(struct px_l7_w *w, const char *s)
{
	px_l7_w_put(w, s, strlen(s));
}

void px_l7_w_uint(struct px_l7_w *w, uint64_t v)
{
	char d[20];
	size_t i = sizeof(d);
	do
		d[--i] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	px_l7_w_put(w, d + i, sizeof(d) - i);
}

void px_l7_w_json(struct px_l7_w *w, const char *str, size_t n)
{
	px_l7_w_put(w, "\"", 1);
	px_l7_w_json_inner(w, str, n);
	px_l7_w_put(w, "\"", 1);
}

void px_l7_w_json_inner(struct px_l7_w *w, const char *str, size_t n)
{
	static const char hexd[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)str;
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		const char *esc = NULL;
		switch (c) {
		case '"':
			esc = "\\\"";
			break;
		case '\\':
			esc = "\\\\";
			break;
		case '\n':
			esc = "\\n";
			break;
		case '\r':
			esc = "\\r";
			break;
		case '\t':
			esc = "\\t";
			break;
		case '\b':
			esc = "\\b";
			break;
		case '\f':
			esc = "\\f";
			break;
		default:
			break;
		}
		if (esc) {
			px_l7_w_str(w, esc);
			i++;
		} else if (c < 0x20) {
			char u[6] = {'\\', 'u', '0', '0', hexd[c >> 4], hexd[c & 15]};
			px_l7_w_put(w, u, sizeof(u));
			i++;
		} else {
			size_t l = px_l7_utf8_len(s + i, n - i);
			if (l) {
				px_l7_w_put(w, (const char *)s + i, l);
				i += l;
			} else {
				px_l7_w_str(w, "\xef\xbf\xbd");
				i++;
			}
		}
	}
}

int px_l7_w_end(struct px_l7_w *w)
{
	px_l7_w_put(w, "", 1);
	if (w->len > w->size || w->len > (size_t)INT32_MAX) {
		if (w->buf && w->size)
			w->buf[w->size - 1] = '\0';
		return -ENOBUFS;
	}
	w->len--; /* the NUL is written, not counted */
	return 0;
}
