/* Egress proxy HTTP/1 wire handling: head detection, strict head parsing, CONNECT and
 * absolute-form target parsing, the forward-request rewrite and the exact JSON error responses
 * of contract §8.
 *
 * Pure functions over caller buffers: no I/O, no allocation. Agent bytes never reach an sv_err
 * message, and every agent-controlled string in a response is validated or JSON-escaped.
 */
#include "netns/proxy/px_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

/* ---- character classes (RFC 9110 §5.6.2, RFC 3986 §2) ------------------------------------ */

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_hex(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_tchar(unsigned char c)
{
	return is_alpha(c) || is_digit(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static unsigned char lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* @a (length @an) equals @b (length @bn), ASCII case-insensitively. */
static bool ieqn(const char *a, size_t an, const char *b, size_t bn)
{
	if (an != bn)
		return false;
	for (size_t i = 0; i < an; i++)
		if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
			return false;
	return true;
}

static bool ieq(const char *s, size_t n, const char *lit)
{
	return ieqn(s, n, lit, strlen(lit));
}

/* ---- head detection ---------------------------------------------------------------------- */

int px_http_head_end(const char *buf, size_t len, size_t *resume)
{
	size_t lim = len < PX_HEAD_MAX ? len : PX_HEAD_MAX;
	size_t from = resume ? *resume : 0;

	if (from < lim) {
		const char *hit = memmem(buf + from, lim - from, "\r\n\r\n", 4);
		if (hit) {
			if (resume)
				*resume = (size_t)(hit - buf);
			return (int)(hit - buf) + 4;
		}
	}
	/* A terminator starting before lim - 3 would have been found: resume there. */
	if (resume && lim >= 3 && lim - 3 > from)
		*resume = lim - 3;
	return len >= PX_HEAD_MAX ? -EMSGSIZE : 0;
}

/* ---- comma-separated token lists (#token) ------------------------------------------------ */

struct list_it {
	const char *p, *end;
};

/* Next token of a list; empty elements are skipped (RFC 9110 §5.6.1). Returns 1 with the token,
 * 0 at the end, -1 when an element is not a bare token. */
static int list_next(struct list_it *it, const char **tok, size_t *tok_len)
{
	while (it->p < it->end && (*it->p == ' ' || *it->p == '\t' || *it->p == ','))
		it->p++;
	if (it->p == it->end)
		return 0;
	*tok = it->p;
	while (it->p < it->end && is_tchar((unsigned char)*it->p))
		it->p++;
	*tok_len = (size_t)(it->p - *tok);
	while (it->p < it->end && (*it->p == ' ' || *it->p == '\t'))
		it->p++;
	if (*tok_len == 0 || (it->p < it->end && *it->p != ','))
		return -1;
	return 1;
}

/* ---- head parsing ------------------------------------------------------------------------ */

static int bad_head(struct sv_err *err, size_t pos, const char *what)
{
	return sv_err_set(err, EBADMSG, "request head: byte %zu: %s", pos, what);
}

static int parse_request_line(const char *h, size_t n, size_t *pos, struct px_http_req *req,
			      struct sv_err *err)
{
	size_t p = 0;

	while (p < n && is_tchar((unsigned char)h[p]))
		p++;
	if (p == 0 || p >= n || h[p] != ' ')
		return bad_head(err, p, "method is not a token followed by one space");
	req->method = h;
	req->method_len = p++;

	size_t t = p;
	while (p < n && (unsigned char)h[p] > 0x20 && (unsigned char)h[p] < 0x7f)
		p++;
	if (p == t || p >= n || h[p] != ' ')
		return bad_head(err, p,
				"request target is not visible ASCII followed by one space");
	req->target = h + t;
	req->target_len = p++ - t;

	if (n - p < 10 || memcmp(h + p, "HTTP/1.", 7) != 0 || (h[p + 7] != '0' && h[p + 7] != '1'))
		return bad_head(err, p, "version is not HTTP/1.0 or HTTP/1.1");
	req->version_minor = h[p + 7] - '0';
	p += 8;
	if (h[p] != '\r' || h[p + 1] != '\n')
		return bad_head(err, p, "request line does not end in CRLF");
	req->is_connect = req->method_len == 7 && memcmp(req->method, "CONNECT", 7) == 0;
	*pos = p + 2;
	return 0;
}

static int parse_field(const char *h, size_t n, size_t *pos, struct px_http_header *f,
		       struct sv_err *err)
{
	size_t p = *pos;

	if (h[p] == ' ' || h[p] == '\t')
		return bad_head(err, p, "obs-fold (line folding) is not accepted");
	size_t name = p;
	while (p < n && is_tchar((unsigned char)h[p]))
		p++;
	if (p < n && p > name && (h[p] == ' ' || h[p] == '\t'))
		return bad_head(err, p, "white space between field name and colon");
	if (p == name || p >= n || h[p] != ':')
		return bad_head(err, p, "field name is not a token followed by a colon");
	f->name = h + name;
	f->name_len = p++ - name;

	while (p < n && (h[p] == ' ' || h[p] == '\t'))
		p++;
	size_t val = p;
	for (; p < n && h[p] != '\r'; p++) {
		unsigned char c = (unsigned char)h[p];
		if (c == '\t' || (c >= 0x20 && c != 0x7f))
			continue;
		return bad_head(err, p, "control byte (NUL, LF, CTL) in field value");
	}
	if (p + 1 >= n || h[p + 1] != '\n')
		return bad_head(err, p, "CR without LF in field line");
	size_t end = p;
	while (end > val && (h[end - 1] == ' ' || h[end - 1] == '\t'))
		end--;
	f->value = h + val;
	f->value_len = end - val;
	*pos = p + 2;
	return 0;
}

/* Framing and Connection rules over the collected fields (RFC 9112 §6, RFC 9110 §7.6.1). */
static int check_fields(const char *h, struct px_http_req *req, struct sv_err *err)
{
	const struct px_http_header *cl = NULL, *te = NULL, *host = NULL;

	for (size_t i = 0; i < req->n_headers; i++) {
		const struct px_http_header *f = &req->headers[i];
		size_t at = (size_t)(f->name - h);
		if (ieq(f->name, f->name_len, "host")) {
			if (host)
				return bad_head(err, at, "more than one Host field");
			host = f;
		} else if (ieq(f->name, f->name_len, "content-length")) {
			if (cl)
				return bad_head(err, at, "more than one Content-Length field");
			cl = f;
		} else if (ieq(f->name, f->name_len, "transfer-encoding")) {
			if (te)
				return bad_head(err, at, "more than one Transfer-Encoding field");
			te = f;
		} else if (ieq(f->name, f->name_len, "connection")) {
			struct list_it it = {f->value, f->value + f->value_len};
			const char *t;
			size_t tn;
			int r;
			while ((r = list_next(&it, &t, &tn)) > 0)
				if (ieq(t, tn, "content-length") || ieq(t, tn, "transfer-encoding"))
					return bad_head(err, at,
							"Connection nominates a framing field");
			if (r < 0)
				return bad_head(err, at, "Connection is not a list of tokens");
		}
	}

	req->body = PX_BODY_NONE;
	req->content_length = 0;
	if (te) {
		size_t at = (size_t)(te->name - h);
		if (cl)
			return bad_head(err, at, "Transfer-Encoding together with Content-Length");
		if (req->version_minor == 0)
			return bad_head(err, at, "Transfer-Encoding in an HTTP/1.0 request");
		struct list_it it = {te->value, te->value + te->value_len};
		const char *t;
		size_t tn;
		bool last_chunked = false;
		int r;
		while ((r = list_next(&it, &t, &tn)) > 0) {
			if (last_chunked)
				return bad_head(err, at, "transfer coding after chunked");
			last_chunked = ieq(t, tn, "chunked");
		}
		if (r < 0 || !last_chunked)
			return bad_head(err, at, "Transfer-Encoding does not end in chunked");
		req->body = PX_BODY_CHUNKED;
	} else if (cl) {
		uint64_t v = 0;
		size_t at = (size_t)(cl->name - h);
		if (cl->value_len == 0)
			return bad_head(err, at, "empty Content-Length");
		for (size_t i = 0; i < cl->value_len; i++) {
			unsigned char c = (unsigned char)cl->value[i];
			if (!is_digit(c) || v > (UINT64_MAX / 2 - 9) / 10)
				return bad_head(err, at, "Content-Length is not a decimal size");
			v = v * 10 + (uint64_t)(c - '0');
		}
		req->body = PX_BODY_LENGTH;
		req->content_length = v;
	}
	return 0;
}

int px_http_parse_head(const char *head, size_t head_len, struct px_http_req *req,
		       struct sv_err *err)
{
	size_t pos = 0;
	int r;

	memset(req, 0, offsetof(struct px_http_req, headers));
	if (head_len < 4 || memcmp(head + head_len - 4, "\r\n\r\n", 4) != 0)
		return bad_head(err, head_len, "head does not end in CRLFCRLF");
	req->head_len = head_len;
	r = parse_request_line(head, head_len, &pos, req, err);
	if (r < 0)
		return r;
	while (pos < head_len && head[pos] != '\r') {
		if (req->n_headers == PX_HEADERS_MAX)
			return bad_head(err, pos, "too many header fields");
		r = parse_field(head, head_len, &pos, &req->headers[req->n_headers], err);
		if (r < 0)
			return r;
		req->n_headers++;
	}
	if (pos != head_len - 2)
		return bad_head(err, pos, "line starts with CR before the end of the head");
	return check_fields(head, req, err);
}

const struct px_http_header *px_http_header_find(const struct px_http_req *req, const char *name)
{
	for (size_t i = 0; i < req->n_headers; i++)
		if (ieq(req->headers[i].name, req->headers[i].name_len, name))
			return &req->headers[i];
	return NULL;
}

/* ---- hosts and ports --------------------------------------------------------------------- */

/* Strict dotted quad: four decimal octets 0..255 without leading zeros. */
static bool parse_quad(const char *s, size_t n, unsigned char out[4])
{
	size_t p = 0;
	for (int k = 0; k < 4; k++) {
		unsigned v = 0;
		size_t d = 0;
		if (k > 0) {
			if (p >= n || s[p] != '.')
				return false;
			p++;
		}
		while (p < n && is_digit((unsigned char)s[p]) && d < 4) {
			v = v * 10 + (unsigned)(s[p++] - '0');
			d++;
		}
		if (d == 0 || d > 3 || v > 255 || (d > 1 && s[p - d] == '0'))
			return false;
		out[k] = (unsigned char)v;
	}
	return p == n;
}

/* WHATWG "ends in a number": the last label is all digits or 0x-hex, which resolvers may read
 * as an IPv4 address ("127.1", "0x7f.1", "2130706433"). */
static bool ends_in_number(const char *s, size_t n)
{
	size_t start = n;
	while (start > 0 && s[start - 1] != '.')
		start--;
	const char *l = s + start;
	size_t ln = n - start, i = 0;
	if (ln >= 2 && l[0] == '0' && (l[1] == 'x' || l[1] == 'X')) {
		for (i = 2; i < ln && is_hex((unsigned char)l[i]); i++)
			;
		return i == ln;
	}
	for (; i < ln && is_digit((unsigned char)l[i]); i++)
		;
	return ln > 0 && i == ln;
}

static int set_host(struct px_http_authority *a, const char *s, size_t n, bool bracketed, int code,
		    const char *what, struct sv_err *err)
{
	memset(a->addr, 0, sizeof(a->addr));
	if (bracketed) {
		char tmp[46];
		if (n == 0 || n >= sizeof(tmp))
			return sv_err_set(err, code, "%s: IPv6 literal has a bad length", what);
		for (size_t i = 0; i < n; i++)
			if (!is_hex((unsigned char)s[i]) && s[i] != ':' && s[i] != '.')
				return sv_err_set(err, code, "%s: byte %zu: not an IPv6 literal",
						  what, i);
		memcpy(tmp, s, n);
		tmp[n] = '\0';
		if (inet_pton(AF_INET6, tmp, a->addr) != 1)
			return sv_err_set(err, code, "%s: not an IPv6 literal", what);
		a->kind = PX_HOST_IPV6;
	} else {
		if (n > 0 && s[n - 1] == '.')
			n--;
		if (n == 0 || n > PX_HOST_MAX)
			return sv_err_set(err, code, "%s: host is empty or longer than %d bytes",
					  what, PX_HOST_MAX);
		size_t label = 0;
		for (size_t i = 0; i <= n; i++) {
			if (i == n || s[i] == '.') {
				if (label == 0 || label > 63)
					return sv_err_set(err, code,
							  "%s: byte %zu: empty or over-long label",
							  what, i);
				label = 0;
				continue;
			}
			unsigned char c = (unsigned char)s[i];
			if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '_')
				return sv_err_set(err, code, "%s: byte %zu: invalid host character",
						  what, i);
			label++;
		}
		if (parse_quad(s, n, a->addr))
			a->kind = PX_HOST_IPV4;
		else if (ends_in_number(s, n))
			return sv_err_set(
			    err, code, "%s: numeric host is not a dotted-quad IPv4 address", what);
		else
			a->kind = PX_HOST_NAME;
	}
	for (size_t i = 0; i < n; i++)
		a->host[i] = (char)lower((unsigned char)s[i]);
	a->host[n] = '\0';
	return 0;
}

/* 1..5 decimal digits, value 1..65535. */
static bool parse_port(const char *s, size_t n, uint16_t *port)
{
	unsigned v = 0;
	if (n == 0 || n > 5)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!is_digit((unsigned char)s[i]))
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v == 0 || v > 65535)
		return false;
	*port = (uint16_t)v;
	return true;
}

/* host[:port] or [v6][:port]; @need_port makes the port mandatory. */
static int parse_authority(const char *s, size_t n, bool need_port, uint16_t dflt,
			   struct px_http_authority *a, int code, const char *what,
			   struct sv_err *err)
{
	const char *host = s, *colon;
	size_t host_len;
	bool br = n > 0 && s[0] == '[';

	if (br) {
		const char *close = memchr(s, ']', n);
		if (!close)
			return sv_err_set(err, code, "%s: unclosed '['", what);
		host = s + 1;
		host_len = (size_t)(close - host);
		colon = close + 1 < s + n ? close + 1 : NULL;
		if (colon && *colon != ':')
			return sv_err_set(err, code, "%s: byte %zu: expected ':' after ']'", what,
					  (size_t)(colon - s));
	} else {
		colon = memchr(s, ':', n);
		host_len = colon ? (size_t)(colon - s) : n;
	}
	if (!colon && need_port)
		return sv_err_set(err, code, "%s: missing port", what);
	int r = set_host(a, host, host_len, br, code, what, err);
	if (r < 0)
		return r;
	a->port = dflt;
	if (colon && !parse_port(colon + 1, (size_t)(s + n - colon - 1), &a->port))
		return sv_err_set(err, code, "%s: port is not a number in 1..65535", what);
	return 0;
}

int px_http_parse_connect_target(const char *target, size_t len, struct px_http_authority *out,
				 struct sv_err *err)
{
	return parse_authority(target, len, true, 0, out, EINVAL, "CONNECT target", err);
}

/* ---- absolute-form forward targets ------------------------------------------------------- */

int px_http_parse_forward_target(const char *target, size_t len, struct px_http_uri *out,
				 struct sv_err *err)
{
	static const char *const what = "forward target";
	const char *s = target;
	size_t p = 0, a, r, q = 0;

	memset(out, 0, sizeof(*out));
	while (p < len && (is_alpha((unsigned char)s[p]) ||
			   (p > 0 && (is_digit((unsigned char)s[p]) || s[p] == '+' || s[p] == '-' ||
				      s[p] == '.'))))
		p++;
	if (p == 0 || len - p < 3 || memcmp(s + p, "://", 3) != 0)
		return sv_err_set(err, EBADMSG, "%s: not an absolute-form URI (scheme://...)",
				  what);
	if (ieq(s, p, "http"))
		out->scheme = PX_SCHEME_HTTP;
	else if (ieq(s, p, "https"))
		out->scheme = PX_SCHEME_HTTPS;
	else
		out->scheme = PX_SCHEME_OTHER;

	for (a = r = p + 3; r < len && s[r] != '/' && s[r] != '?' && s[r] != '#'; r++)
		if (s[r] == '@')
			return sv_err_set(err, EBADMSG, "%s: userinfo is not accepted", what);
	int rc = parse_authority(s + a, r - a, false, out->scheme == PX_SCHEME_HTTPS ? 443 : 80,
				 &out->auth, EBADMSG, what, err);
	if (rc < 0)
		return rc;

	for (size_t i = r; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '#')
			return sv_err_set(err, EBADMSG, "%s: byte %zu: fragment", what, i);
		if (!c || (!is_alpha(c) && !is_digit(c) && !strchr("-._~!$&'()*+,;=:@/?%", c)))
			return sv_err_set(err, EBADMSG, "%s: byte %zu: not a URI path character",
					  what, i);
		if (c == '%' && (len - i < 3 || !is_hex((unsigned char)s[i + 1]) ||
				 !is_hex((unsigned char)s[i + 2])))
			return sv_err_set(err, EBADMSG, "%s: byte %zu: bad percent escape", what,
					  i);
		if (c == '?' && !q)
			q = i;
	}
	out->path = "/";
	out->path_len = 1;
	if (r < len && s[r] == '/') {
		out->path = s + r;
		out->path_len = (q ? q : len) - r;
	}
	if (q) {
		out->query = s + q + 1;
		out->query_len = len - q - 1;
	}
	return 0;
}

/* ---- output writer ----------------------------------------------------------------------- */

/* Appends while it fits; keeps counting past the end so the caller can tell -ENOBUFS. With a
 * NULL buffer it only counts. */
struct px_w {
	char *buf;
	size_t size, len;
};

static void w_put(struct px_w *w, const char *s, size_t n)
{
	if (w->buf && n <= w->size && w->len <= w->size - n)
		memcpy(w->buf + w->len, s, n);
	w->len += n;
}

static void w_str(struct px_w *w, const char *s)
{
	w_put(w, s, strlen(s));
}

static void w_uint(struct px_w *w, uint64_t v)
{
	char d[20];
	size_t i = sizeof(d);
	do
		d[--i] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	w_put(w, d + i, sizeof(d) - i);
}

/* ---- forward rewrite --------------------------------------------------------------------- */

static bool nominated(const struct px_http_req *req, const struct px_http_header *f)
{
	for (size_t i = 0; i < req->n_headers; i++) {
		const struct px_http_header *c = &req->headers[i];
		if (!ieq(c->name, c->name_len, "connection"))
			continue;
		struct list_it it = {c->value, c->value + c->value_len};
		const char *t;
		size_t tn;
		while (list_next(&it, &t, &tn) > 0)
			if (ieqn(t, tn, f->name, f->name_len))
				return true;
	}
	return false;
}

static bool dropped(const struct px_http_req *req, const struct px_http_header *f)
{
	static const char *const hop[] = {
	    "host",
	    "proxy-connection",
	    "proxy-authorization",
	    "proxy-authenticate",
	    "connection",
	    "keep-alive",
	    "upgrade",
	};
	for (size_t i = 0; i < SV_ARRAY_SIZE(hop); i++)
		if (ieq(f->name, f->name_len, hop[i]))
			return true;
	return nominated(req, f);
}

int px_http_forward_rewrite(const struct px_http_req *req, const struct px_http_uri *uri, char *out,
			    size_t size, struct sv_err *err)
{
	struct px_w w = {out, size, 0};
	size_t fields = 0;
	bool via = false;

	if (uri->scheme != PX_SCHEME_HTTP)
		return sv_err_set(err, EINVAL, "forward rewrite: scheme is not http");
	w_put(&w, req->method, req->method_len);
	w_put(&w, " ", 1);
	w_put(&w, uri->path, uri->path_len);
	if (uri->query) {
		w_put(&w, "?", 1);
		w_put(&w, uri->query, uri->query_len);
	}
	w_str(&w, " HTTP/1.1\r\n");
	for (size_t i = 0; i < req->n_headers; i++) {
		const struct px_http_header *f = &req->headers[i];
		if (dropped(req, f))
			continue;
		via = via || ieq(f->name, f->name_len, "via");
		fields++;
		w_put(&w, f->name, f->name_len);
		w_put(&w, f->value_len ? ": " : ":", f->value_len ? 2 : 1);
		w_put(&w, f->value, f->value_len);
		w_put(&w, "\r\n", 2);
	}
	if (fields + (via ? 2 : 3) > PX_HEADERS_MAX)
		return sv_err_set(err, E2BIG, "forward rewrite: more than %d header fields",
				  PX_HEADERS_MAX);
	w_str(&w, "Host: ");
	bool v6 = uri->auth.kind == PX_HOST_IPV6;
	if (v6)
		w_put(&w, "[", 1);
	w_str(&w, uri->auth.host);
	if (v6)
		w_put(&w, "]", 1);
	if (uri->auth.port != 80) {
		w_put(&w, ":", 1);
		w_uint(&w, uri->auth.port);
	}
	w_str(&w, "\r\nConnection: close\r\n");
	if (!via)
		w_str(&w, "Via: 1.1 openshell-sandbox\r\n");
	w_put(&w, "\r\n", 2);
	if (w.len > size || w.len > (size_t)INT32_MAX)
		return sv_err_set(err, ENOBUFS, "forward rewrite: %zu bytes do not fit %zu", w.len,
				  size);
	return (int)w.len;
}

/* ---- JSON error responses ---------------------------------------------------------------- */

struct seg {
	const char *p;
	size_t n;
};

/* Length of a well-formed UTF-8 sequence at @s (at most @n bytes), 0 if ill-formed. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;
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

/* One JSON string made of @nseg segments. */
static void w_json(struct px_w *w, const struct seg *segs, size_t nseg)
{
	static const char hexd[] = "0123456789abcdef";
	static const char *const named[] = {
	    ['"'] = "\\\"", ['\\'] = "\\\\", ['\n'] = "\\n", ['\r'] = "\\r",
	    ['\t'] = "\\t", ['\b'] = "\\b",  ['\f'] = "\\f",
	};
	w_put(w, "\"", 1);
	for (size_t k = 0; k < nseg; k++) {
		const unsigned char *s = (const unsigned char *)segs[k].p;
		size_t n = segs[k].n, i = 0, l;
		while (i < n) {
			unsigned char c = s[i];
			if (c < SV_ARRAY_SIZE(named) && named[c]) {
				w_str(w, named[c]);
				i++;
			} else if (c < 0x20 || c == 0x7f) {
				char u[6] = {'\\', 'u', '0', '0', hexd[c >> 4], hexd[c & 15]};
				w_put(w, u, sizeof(u));
				i++;
			} else if (c < 0x80) {
				w_put(w, (const char *)s + i++, 1);
			} else if ((l = utf8_len(s + i, n - i)) != 0) {
				w_put(w, (const char *)s + i, l);
				i += l;
			} else {
				w_str(w, "\\ufffd"); /* starts no valid UTF-8 sequence */
				i++;
			}
		}
	}
	w_put(w, "\"", 1);
}

static void w_body(struct px_w *w, const char *error, const struct seg *detail, size_t nd,
		   const char *reason)
{
	/* OpenShell serialises with serde_json without preserve_order: keys go out in
	 * alphabetical order (openshell-l7-contract.md, serialization note). */
	struct seg e = {error, strlen(error)};
	w_str(w, "{\"detail\":");
	w_json(w, detail, nd);
	w_str(w, ",\"error\":");
	w_json(w, &e, 1);
	if (reason && *reason) {
		struct seg r = {reason, strlen(reason)};
		w_str(w, ",\"reason\":");
		w_json(w, &r, 1);
	}
	w_put(w, "}", 1);
}

static const char *status_phrase(int status)
{
	switch (status) {
	case 400:
		return "Bad Request";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 408:
		return "Request Timeout";
	case 500:
		return "Internal Server Error";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	default:
		return NULL;
	}
}

static int resp_build(char *buf, size_t size, int status, const char *error,
		      const struct seg *detail, size_t nd, const char *reason)
{
	const char *phrase = status_phrase(status);
	struct px_w count = {NULL, 0, 0}, w = {buf, size, 0};

	if (!phrase || !error)
		return -EINVAL;
	w_body(&count, error, detail, nd, reason);
	w_str(&w, "HTTP/1.1 ");
	w_uint(&w, (uint64_t)status);
	w_put(&w, " ", 1);
	w_str(&w, phrase);
	w_str(&w, "\r\nContent-Type: application/json\r\nContent-Length: ");
	w_uint(&w, count.len);
	w_str(&w, "\r\nConnection: close\r\n\r\n");
	w_body(&w, error, detail, nd, reason);
	if (w.len > size || w.len > (size_t)INT32_MAX)
		return -ENOBUFS;
	return (int)w.len;
}

int px_http_resp_json(char *buf, size_t size, int status, const char *error, const char *detail,
		      const char *reason)
{
	struct seg d = {detail ? detail : "", detail ? strlen(detail) : 0};
	return resp_build(buf, size, status, error, &d, 1, reason);
}

/* detail = "<lead> <host>:<port><path><tail><extra>" */
static int resp_hp(char *buf, size_t size, int status, const char *error, struct seg lead,
		   const struct px_http_authority *a, struct seg path, const char *tail,
		   const char *extra, const char *reason)
{
	char port[6];
	struct px_w pw = {port, sizeof(port), 0};
	w_uint(&pw, a->port);
	struct seg d[] = {lead,
			  {" ", 1},
			  {a->host, strlen(a->host)},
			  {":", 1},
			  {port, pw.len},
			  path,
			  {tail, strlen(tail)},
			  {extra ? extra : "", extra ? strlen(extra) : 0}};
	return resp_build(buf, size, status, error, d, SV_ARRAY_SIZE(d), reason);
}

static const struct seg connect_seg = {"CONNECT", 7}, no_seg = {"", 0};

int px_http_resp_connect_denied(char *buf, size_t size, const struct px_http_authority *a,
				const char *reason)
{
	return resp_hp(buf, size, 403, "policy_denied", connect_seg, a, no_seg,
		       " not permitted by policy", NULL, reason);
}

int px_http_resp_forward_denied(char *buf, size_t size, const struct px_http_req *req,
				const struct px_http_uri *uri)
{
	return resp_hp(buf, size, 403, "policy_denied", (struct seg){req->method, req->method_len},
		       &uri->auth, (struct seg){uri->path, uri->path_len},
		       " not permitted by policy", NULL, NULL);
}

int px_http_resp_connect_ssrf(char *buf, size_t size, const struct px_http_authority *a,
			      const char *reason)
{
	return resp_hp(buf, size, 403, "ssrf_denied", connect_seg, a, no_seg, " blocked: ", reason,
		       NULL);
}

int px_http_resp_forward_ssrf(char *buf, size_t size, const struct px_http_req *req,
			      const struct px_http_authority *a, const char *reason)
{
	return resp_hp(buf, size, 403, "ssrf_denied", (struct seg){req->method, req->method_len}, a,
		       no_seg, " blocked: ", reason, NULL);
}

int px_http_resp_upstream_unreachable(char *buf, size_t size, const struct px_http_authority *a)
{
	return resp_hp(buf, size, 502, "upstream_unreachable", (struct seg){"connection to", 13}, a,
		       no_seg, " failed", NULL, NULL);
}

int px_http_resp_unsupported_scheme(char *buf, size_t size)
{
	return px_http_resp_json(buf, size, 400, "unsupported_proxy_scheme",
				 "Forward proxy requests must use http", NULL);
}
