/* The strict in-tunnel HTTP/1 request head of the L7 relay (contract §2.5): where the head
 * ends without reading past it, what is refused before policy sees it, the body framing, the
 * authority check against the CONNECT target and the upgrade predicates.
 *
 * Pure: no allocation, no I/O. A refusal never quotes agent bytes; it names the byte offset.
 */
#include "netns/proxy/l7/px_l7.h"

#include <errno.h>
#include <string.h>

#include "netns/proxy/l7/px_l7_int.h"

int px_l7_head_scan(const char *buf, size_t len)
{
	size_t lim = len < PX_L7_HEAD_MAX ? len : PX_L7_HEAD_MAX;
	const char *hit = memmem(buf, lim, "\r\n\r\n", 4);
	if (hit)
		return (int)(hit - buf) + 4;
	return len >= PX_L7_HEAD_MAX ? -EMSGSIZE : 0;
}

size_t px_l7_head_safe_read(const char *buf, size_t len)
{
	if (px_l7_head_scan(buf, len) != 0)
		return 0;
	/* The head may end after 1..4 more bytes, depending on how much of CRLFCRLF we hold. */
	if (len >= 3 && memcmp(buf + len - 3, "\r\n\r", 3) == 0)
		return 1;
	if (len >= 2 && memcmp(buf + len - 2, "\r\n", 2) == 0)
		return 2;
	if (len >= 1 && buf[len - 1] == '\r')
		return 3;
	return 4;
}

static int bad(struct sv_err *err, size_t pos, const char *what)
{
	return sv_err_set(err, EBADMSG, "HTTP request head: byte %zu: %s", pos, what);
}

static bool is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* Bytes the URI grammar of OpenShell's parser (the http crate) accepts in a path and a query. */
static bool path_byte_ok(unsigned char c)
{
	return c == 0x21 || c == '"' || (c >= 0x24 && c <= 0x3b) || c == 0x3d ||
	       (c >= 0x40 && c <= 0x5f) || (c >= 0x61 && c <= 0x7e);
}

static bool query_byte_ok(unsigned char c)
{
	return c == 0x21 || (c >= 0x24 && c <= 0x3b) || c == 0x3d || (c >= 0x3f && c <= 0x7e);
}

static bool authority_byte_ok(unsigned char c)
{
	return is_alpha(c) || is_digit(c) || (c && strchr("-._~!$&'()*+,;=:[]%", c));
}

/* host[:port] or [v6][:port] as a Host value or absolute-form authority. Userinfo, stray
 * brackets, '%' outside brackets, several colons and non-numeric or out-of-range ports are
 * refused. *port = 0 when omitted. */
static bool authority_parse(const char *s, size_t n, const char **host, size_t *host_len,
			    uint16_t *port)
{
	size_t i = 0, hn;
	*port = 0;
	if (n == 0)
		return false;
	for (size_t k = 0; k < n; k++)
		if (!authority_byte_ok((unsigned char)s[k]))
			return false;
	if (s[0] == '[') {
		const char *close = memchr(s, ']', n);
		if (!close || close == s + 1)
			return false;
		hn = (size_t)(close - s) + 1;
		for (size_t k = 1; k + 1 < hn; k++)
			if (!strchr("0123456789abcdefABCDEF:.", s[k]))
				return false;
	} else {
		while (i < n && s[i] != ':')
			i++;
		hn = i;
		for (size_t k = 0; k < hn; k++)
			if (s[k] == '[' || s[k] == ']' || s[k] == '%')
				return false;
		if (hn == 0)
			return false;
	}
	*host = s;
	*host_len = hn;
	if (hn == n)
		return true;
	if (s[hn] != ':')
		return false;
	unsigned v = 0;
	size_t d = 0;
	for (size_t k = hn + 1; k < n; k++, d++) {
		if (!is_digit((unsigned char)s[k]) || d >= 5)
			return false;
		v = v * 10 + (unsigned)(s[k] - '0');
	}
	if (d == 0)
		return true; /* "host:" names the default port */
	if (v == 0 || v > 65535)
		return false;
	*port = (uint16_t)v;
	return true;
}

/* Scheme length of an absolute-form target ("scheme://"), 0 when it is not one. */
static size_t abs_scheme(const char *t, size_t n)
{
	size_t i = 0;
	while (i < n && (is_alpha((unsigned char)t[i]) ||
			 (i > 0 && (is_digit((unsigned char)t[i]) || t[i] == '+' || t[i] == '-' ||
				    t[i] == '.'))))
		i++;
	return (i > 0 && n - i >= 3 && memcmp(t + i, "://", 3) == 0) ? i : 0;
}

static void abs_authority(const struct px_l7_req *req, const char **a, size_t *an)
{
	size_t s = abs_scheme(req->target, req->target_len) + 3, e = s;
	while (e < req->target_len && req->target[e] != '/' && req->target[e] != '?')
		e++;
	*a = req->target + s;
	*an = e - s;
}

static uint16_t scheme_port(const char *t, size_t n)
{
	if (px_l7_ieq(t, n, "http"))
		return 80;
	if (px_l7_ieq(t, n, "https"))
		return 443;
	return 0;
}

static void norm_host(const char **h, size_t *n)
{
	px_l7_trim(h, n);
	while (*n && **h == '[')
		(*h)++, (*n)--;
	while (*n && ((*h)[*n - 1] == ']' || (*h)[*n - 1] == '.'))
		(*n)--;
}

static bool host_eq(const char *a, size_t an, const char *b, size_t bn)
{
	norm_host(&a, &an);
	norm_host(&b, &bn);
	if (an != bn)
		return false;
	for (size_t i = 0; i < an; i++)
		if (px_l7_lower((unsigned char)a[i]) != px_l7_lower((unsigned char)b[i]))
			return false;
	return true;
}

static int check_target(const char *t, size_t n, size_t at, struct sv_err *err)
{
	size_t sl = abs_scheme(t, n), i = 0;
	if (sl) {
		if (sl > 64)
			return bad(err, at, "absolute-form scheme is too long");
		i = sl + 3;
		size_t a = i;
		while (i < n && t[i] != '/' && t[i] != '?' && t[i] != '#')
			i++;
		const char *h;
		size_t hn;
		uint16_t p;
		if (!authority_parse(t + a, i - a, &h, &hn, &p))
			return bad(err, at + a, "absolute-form authority is invalid");
	} else if (t[0] != '/') {
		if (n == 1 && t[0] == '*')
			return 0; /* the canonicaliser refuses it */
		/* authority-form and other shapes: the canonicaliser refuses them */
		for (size_t k = 0; k < n; k++)
			if (!authority_byte_ok((unsigned char)t[k]))
				return bad(err, at + k, "request target is not a valid URI");
		return 0;
	}
	bool query = false;
	for (; i < n; i++) {
		unsigned char c = (unsigned char)t[i];
		if (c == '#')
			return 0; /* a fragment: the canonicaliser refuses it */
		if (!query && c == '?') {
			query = true;
			continue;
		}
		if (query ? !query_byte_ok(c) : !path_byte_ok(c))
			return bad(err, at + i, "request target byte is not allowed in a URI");
	}
	return 0;
}

static int parse_request_line(const char *h, size_t n, struct px_l7_req *req, struct sv_err *err)
{
	const char *sp1 = memchr(h, ' ', n);
	if (!sp1)
		return bad(err, 0, "request line is not METHOD SP target SP version");
	size_t m = (size_t)(sp1 - h);
	const char *sp2 = memchr(sp1 + 1, ' ', n - m - 1);
	if (!sp2 || memchr(sp2 + 1, ' ', n - (size_t)(sp2 + 1 - h)))
		return bad(err, m, "request line is not METHOD SP target SP version");
	size_t t0 = m + 1, tl = (size_t)(sp2 - h) - t0, v0 = t0 + tl + 1, vl = n - v0;
	if (m == 0 || tl == 0 || vl == 0)
		return bad(err, 0, "request line has an empty part");
	for (size_t i = 0; i < m; i++)
		if (!px_l7_is_tchar((unsigned char)h[i]))
			return bad(err, i, "method is not a token");
	for (size_t i = t0; i < t0 + tl; i++)
		if ((unsigned char)h[i] <= ' ' || (unsigned char)h[i] == 0x7f)
			return bad(err, i, "request target has whitespace or a control byte");
	if (vl != 8 || memcmp(h + v0, "HTTP/1.", 7) != 0 || (h[v0 + 7] != '0' && h[v0 + 7] != '1'))
		return bad(err, v0, "version is not HTTP/1.0 or HTTP/1.1");
	req->method = h;
	req->method_len = m;
	req->target = h + t0;
	req->target_len = tl;
	req->version_minor = h[v0 + 7] - '0';
	for (size_t i = t0; i < t0 + tl; i++)
		if ((unsigned char)h[i] >= 0x80)
			return bad(err, i, "request target byte is not allowed in a URI");
	return check_target(req->target, tl, t0, err);
}

static int parse_field(const char *line, size_t n, size_t at, struct px_l7_header *f,
		       struct sv_err *err)
{
	if (line[0] == ' ' || line[0] == '\t')
		return bad(err, at, "header continuation lines are not supported");
	const char *colon = memchr(line, ':', n);
	if (!colon)
		return bad(err, at, "header field is missing ':'");
	size_t nl = (size_t)(colon - line);
	if (nl && (line[nl - 1] == ' ' || line[nl - 1] == '\t'))
		return bad(err, at + nl, "whitespace before ':'");
	if (nl == 0)
		return bad(err, at, "header field name is not a token");
	for (size_t i = 0; i < nl; i++)
		if (!px_l7_is_tchar((unsigned char)line[i]))
			return bad(err, at + i, "header field name is not a token");
	for (size_t i = nl + 1; i < n; i++) {
		unsigned char c = (unsigned char)line[i];
		if (c != '\t' && (c < 0x20 || c == 0x7f))
			return bad(err, at + i, "control byte in header field value");
	}
	f->name = line;
	f->name_len = nl;
	f->value = colon + 1;
	f->value_len = n - nl - 1;
	while (f->value_len && (*f->value == ' ' || *f->value == '\t'))
		f->value++, f->value_len--;
	while (f->value_len &&
	       (f->value[f->value_len - 1] == ' ' || f->value[f->value_len - 1] == '\t'))
		f->value_len--;
	f->line = line;
	f->line_len = n;
	return 0;
}

/* Connection tokens, CL/TE framing and Host rules over the collected fields. */
static int check_fields(const char *h, struct px_l7_req *req, struct sv_err *err)
{
	bool cl_seen = false, te_seen = false;
	size_t te_codings = 0;
	bool te_chunked = false;

	for (size_t i = 0; i < req->n_headers; i++) {
		const struct px_l7_header *f = &req->headers[i];
		size_t at = (size_t)(f->line - h);
		if (px_l7_ieq(f->name, f->name_len, "connection")) {
			const char *v = f->value, *end = f->value + f->value_len;
			while (v <= end) {
				const char *c = memchr(v, ',', (size_t)(end - v));
				const char *e = c ? c : end, *t = v;
				size_t tn = (size_t)(e - v);
				px_l7_trim(&t, &tn);
				if (tn == 0)
					return bad(err, at, "Connection has an empty token");
				for (size_t k = 0; k < tn; k++)
					if (!px_l7_is_tchar((unsigned char)t[k]))
						return bad(err, at, "Connection token is invalid");
				if (px_l7_ieq(t, tn, "host") ||
				    px_l7_ieq(t, tn, "content-length") ||
				    px_l7_ieq(t, tn, "transfer-encoding"))
					return bad(
					    err, at,
					    "Connection nominates a framing or routing field");
				if (!c)
					break;
				v = c + 1;
			}
		} else if (px_l7_ieq(f->name, f->name_len, "host")) {
			if (req->host)
				return bad(err, at, "more than one Host field");
			const char *hh;
			size_t hl;
			uint16_t p;
			if (!authority_parse(f->value, f->value_len, &hh, &hl, &p))
				return bad(err, at, "Host is not a valid authority");
			req->host = f->value;
			req->host_len = f->value_len;
		} else if (px_l7_ieq(f->name, f->name_len, "transfer-encoding")) {
			const char *v = f->value, *end = f->value + f->value_len;
			te_seen = true;
			while (v <= end) {
				const char *c = memchr(v, ',', (size_t)(end - v));
				const char *e = c ? c : end, *t = v;
				size_t tn = (size_t)(e - v);
				px_l7_trim(&t, &tn);
				if (tn == 0)
					return bad(err, at, "empty Transfer-Encoding value");
				te_codings++;
				te_chunked = px_l7_ieq(t, tn, "chunked");
				if (!c)
					break;
				v = c + 1;
			}
		} else if (px_l7_ieq(f->name, f->name_len, "content-length")) {
			uint64_t v = 0;
			if (f->value_len == 0)
				return bad(err, at, "invalid Content-Length");
			for (size_t k = 0; k < f->value_len; k++) {
				unsigned char c = (unsigned char)f->value[k];
				if (!is_digit(c) || v > (UINT64_MAX - 9) / 10)
					return bad(err, at, "invalid Content-Length");
				v = v * 10 + (uint64_t)(c - '0');
			}
			if (cl_seen && v != req->content_length)
				return bad(err, at, "differing Content-Length values");
			cl_seen = true;
			req->content_length = v;
		}
	}
	if (te_seen && cl_seen)
		return bad(err, 0, "Transfer-Encoding together with Content-Length");
	if (te_seen) {
		if (te_codings != 1 || !te_chunked)
			return bad(err, 0, "Transfer-Encoding is not a single chunked");
		req->body = PX_L7_BODY_CHUNKED;
	} else if (cl_seen) {
		req->body = PX_L7_BODY_LENGTH;
	}
	if (req->version_minor == 1 && !req->host)
		return bad(err, 0, "HTTP/1.1 request without Host");
	if (req->absolute_form) {
		const char *a, *hh, *bh;
		size_t an, hl, bl;
		uint16_t ap, hp;
		if (!req->host)
			return bad(err, 0, "absolute-form request without Host");
		abs_authority(req, &a, &an);
		if (!authority_parse(a, an, &hh, &hl, &ap) ||
		    !authority_parse(req->host, req->host_len, &bh, &bl, &hp))
			return bad(err, 0, "absolute-form authority does not match Host");
		uint16_t dflt = scheme_port(req->target, abs_scheme(req->target, req->target_len));
		ap = ap ? ap : dflt;
		hp = hp ? hp : dflt;
		if (!host_eq(hh, hl, bh, bl) || ap != hp)
			return bad(err, 0, "absolute-form authority does not match Host");
	}
	return 0;
}

int px_l7_req_parse(const char *head, size_t len, struct px_l7_req *req, struct sv_err *err)
{
	memset(req, 0, offsetof(struct px_l7_req, headers));
	if (len < 4 || len > PX_L7_HEAD_MAX || memcmp(head + len - 4, "\r\n\r\n", 4) != 0 ||
	    (size_t)(memmem(head, len, "\r\n\r\n", 4) - (const void *)head) != len - 4)
		return bad(err, len, "head does not end at its first CRLFCRLF");
	for (size_t i = 0; i < len; i++)
		if (head[i] == '\n' && (i == 0 || head[i - 1] != '\r'))
			return bad(err, i, "bare LF");
	if (!px_l7_utf8_valid((const unsigned char *)head, len))
		return bad(err, 0, "invalid UTF-8");
	req->head_len = len;

	size_t body_end = len - 4, pos = 0;
	const char *eol = memmem(head, len, "\r\n", 2);
	size_t rl = (size_t)(eol - head);
	int r = parse_request_line(head, rl, req, err);
	if (r < 0)
		return r;
	req->absolute_form = abs_scheme(req->target, req->target_len) != 0;
	pos = rl + 2;
	while (pos < body_end + 2) {
		const char *e = memmem(head + pos, len - pos, "\r\n", 2);
		size_t ln = (size_t)(e - (head + pos));
		if (req->n_headers == PX_L7_HEADERS_MAX)
			return bad(err, pos, "too many header fields");
		r = parse_field(head + pos, ln, pos, &req->headers[req->n_headers], err);
		if (r < 0)
			return r;
		req->n_headers++;
		pos += ln + 2;
	}
	return check_fields(head, req, err);
}

const struct px_l7_header *px_l7_req_header(const struct px_l7_req *req, const char *name)
{
	for (size_t i = 0; i < req->n_headers; i++)
		if (px_l7_ieq(req->headers[i].name, req->headers[i].name_len, name))
			return &req->headers[i];
	return NULL;
}

bool px_l7_req_authority_ok(const struct px_l7_req *req, const char *host, uint16_t port, bool tls)
{
	const char *a, *h;
	size_t an, hl;
	uint16_t p, dflt = tls ? 443 : 80;

	if (!req->host)
		return !px_l7_has_credential_marker(req->method, req->head_len);
	if (req->absolute_form) {
		abs_authority(req, &a, &an);
		dflt = scheme_port(req->target, abs_scheme(req->target, req->target_len));
		if (!dflt)
			return false; /* no default port for that scheme */
	} else {
		a = req->host;
		an = req->host_len;
	}
	if (!authority_parse(a, an, &h, &hl, &p))
		return false;
	return host_eq(h, hl, host, strlen(host)) && (p ? p : dflt) == port;
}

/* Standard base64 with padding, decoding to exactly 16 bytes: 22 symbols, "==", and a last
 * symbol whose low four bits are zero (the decoder refuses non-canonical trailing bits). */
static bool ws_key_ok(const char *k, size_t n)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	if (n != 24 || k[22] != '=' || k[23] != '=')
		return false;
	for (size_t i = 0; i < 22; i++) {
		const char *p = k[i] ? strchr(b64, k[i]) : NULL;
		if (!p)
			return false;
		if (i == 21 && ((p - b64) & 15) != 0)
			return false;
	}
	return true;
}

enum px_l7_ws px_l7_req_websocket(const struct px_l7_req *req)
{
	bool upgrade = false, conn = false;
	size_t keys = 0, versions = 0;
	const struct px_l7_header *key = NULL, *ver = NULL;
	bool bad_protocols = false;

	for (size_t i = 0; i < req->n_headers; i++) {
		const struct px_l7_header *f = &req->headers[i];
		if (px_l7_ieq(f->name, f->name_len, "upgrade")) {
			upgrade = upgrade || px_l7_list_has(f->value, f->value_len, "websocket");
		} else if (px_l7_ieq(f->name, f->name_len, "connection")) {
			conn = conn || px_l7_list_has(f->value, f->value_len, "upgrade");
		} else if (px_l7_ieq(f->name, f->name_len, "sec-websocket-key")) {
			keys++;
			key = f;
		} else if (px_l7_ieq(f->name, f->name_len, "sec-websocket-version")) {
			versions++;
			ver = f;
		} else if (px_l7_ieq(f->name, f->name_len, "sec-websocket-protocol")) {
			const char *v = f->value, *end = f->value + f->value_len;
			while (v <= end) {
				const char *c = memchr(v, ',', (size_t)(end - v));
				const char *e = c ? c : end, *t = v;
				size_t tn = (size_t)(e - v);
				px_l7_trim(&t, &tn);
				bad_protocols = bad_protocols || tn == 0;
				for (size_t k = 0; k < tn; k++)
					bad_protocols =
					    bad_protocols || !px_l7_is_tchar((unsigned char)t[k]);
				if (!c)
					break;
				v = c + 1;
			}
		}
	}
	if (bad_protocols)
		return PX_L7_WS_INVALID;
	if (!upgrade && !key && !ver)
		return PX_L7_WS_NONE;
	if (!px_l7_ieq(req->method, req->method_len, "GET") || !upgrade || !conn || keys != 1 ||
	    !ws_key_ok(key->value, key->value_len) || versions != 1 ||
	    !(ver->value_len == 2 && memcmp(ver->value, "13", 2) == 0))
		return PX_L7_WS_INVALID;
	return PX_L7_WS_VALID;
}

bool px_l7_req_is_h2c_upgrade(const struct px_l7_req *req)
{
	bool h2c = false, conn = false;
	for (size_t i = 0; i < req->n_headers; i++) {
		const struct px_l7_header *f = &req->headers[i];
		if (px_l7_ieq(f->name, f->name_len, "upgrade"))
			h2c = h2c || px_l7_list_has(f->value, f->value_len, "h2c");
		else if (px_l7_ieq(f->name, f->name_len, "connection"))
			conn = conn || px_l7_list_has(f->value, f->value_len, "upgrade");
	}
	return h2c && conn;
}

bool px_l7_req_has_upgrade_field(const struct px_l7_req *req)
{
	return px_l7_req_header(req, "upgrade") != NULL;
}

bool px_l7_req_wants_upgrade(const struct px_l7_req *req)
{
	bool conn = false;
	for (size_t i = 0; i < req->n_headers; i++) {
		const struct px_l7_header *f = &req->headers[i];
		if (px_l7_ieq(f->name, f->name_len, "connection"))
			conn = conn || px_l7_list_has(f->value, f->value_len, "upgrade");
	}
	return conn && px_l7_req_has_upgrade_field(req);
}
