/* Credential substitution in an inspected request (openshell-l7-contract.md §3.3, §3.4): the
 * request line's path segments and query values, header values, whole bodies, the fail-closed
 * re-scan, and the two error responses.
 *
 * Pure. A resolved value is written only into the caller's output buffer of a rewrite that
 * succeeds as a whole; on any failure the output holds nothing the caller may send.
 */
#include "netns/proxy/l7/px_cred.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "netns/proxy/l7/px_cred_int.h"
#include "netns/proxy/l7/px_l7_int.h"

#define PL (sizeof(PX_CRED_PREFIX) - 1)
#define AL (sizeof(PX_CRED_ALIAS) - 1)

static bool raw_marker(const char *s, size_t n)
{
	return memmem(s, n, PX_CRED_PREFIX, PL) || memmem(s, n, PX_CRED_ALIAS, AL);
}

static int hexv(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = px_l7_lower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* OpenShell's lenient percent_decode (a bad escape is kept verbatim). @out holds @n bytes. */
static size_t pct_decode(const char *s, size_t n, char *out, bool plus_space)
{
	size_t w = 0;
	for (size_t i = 0; i < n;) {
		if (plus_space && s[i] == '+') {
			out[w++] = ' ';
			i++;
		} else if (s[i] == '%' && i + 2 < n && hexv((unsigned char)s[i + 1]) >= 0 &&
			   hexv((unsigned char)s[i + 2]) >= 0) {
			unsigned hi = (unsigned)hexv((unsigned char)s[i + 1]);
			unsigned lo = (unsigned)hexv((unsigned char)s[i + 2]);
			out[w++] = (char)(hi << 4 | lo);
			i += 3;
		} else {
			out[w++] = s[i++];
		}
	}
	return w;
}

static void put_pct(struct px_l7_w *w, const char *s, size_t n, const char *keep)
{
	static const char hx[] = "0123456789ABCDEF";
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    (c && strchr(keep, c))) {
			px_l7_w_put(w, s + i, 1);
		} else {
			char e[3] = {'%', hx[c >> 4], hx[c & 15]};
			px_l7_w_put(w, e, 3);
		}
	}
}

#define UNRESERVED "-._~"
#define PCHAR	   "-._~!$&'()*+,;=:@"

/* ---- tokens inside text (C/secrets.rs canonical_token_at, alias_token_at) ----------------- */

static size_t alias_start(const char *t, size_t marker)
{
	while (marker > 0 && px_cred_alias_char((unsigned char)t[marker - 1]))
		marker--;
	return marker;
}

static size_t key_run(const char *t, size_t n, size_t from)
{
	while (from < n && px_cred_key_char((unsigned char)t[from]))
		from++;
	return from;
}

static size_t canonical_end(const char *t, size_t n, size_t at)
{
	if (n - at < PL || memcmp(t + at, PX_CRED_PREFIX, PL) != 0)
		return 0;
	size_t e = key_run(t, n, at + PL);
	return e > at + PL ? e : 0;
}

static size_t alias_end(const char *t, size_t n, size_t at)
{
	const char *m = memmem(t + at, n - at, PX_CRED_ALIAS, AL);
	if (!m || m == t + at)
		return 0;
	size_t ks = (size_t)(m - t) + AL, e = key_run(t, n, ks);
	if (e == ks)
		return 0;
	if ((at > 0 && px_cred_alias_char((unsigned char)t[at - 1])) ||
	    (e < n && px_cred_alias_char((unsigned char)t[e])))
		return 0;
	for (size_t i = at; i < (size_t)(m - t); i++)
		if (!px_cred_alias_char((unsigned char)t[i]))
			return 0;
	return e;
}

/* The longest placeholder the store knows that starts at @at and ends on a boundary (the end,
 * a non-key byte, or the start of the next placeholder). */
static size_t known_end(const struct px_cred_store *s, const char *t, size_t n, size_t at)
{
	if (!s || n - at < PL || memcmp(t + at, PX_CRED_PREFIX, PL) != 0)
		return 0;
	size_t run = key_run(t, n, at + PL);
	for (size_t e = run; e > at + PL; e--) {
		bool boundary = e == run || (n - e >= PL && memcmp(t + e, PX_CRED_PREFIX, PL) == 0);
		if (boundary && px_cred_known(s, t + at, e - at))
			return e;
	}
	return 0;
}

/* Where the next marker (canonical prefix, or an alias token's start) is, or @n. */
static size_t next_marker(const char *t, size_t n, size_t pos)
{
	const char *c = memmem(t + pos, n - pos, PX_CRED_PREFIX, PL);
	const char *a = memmem(t + pos, n - pos, PX_CRED_ALIAS, AL);
	size_t cs = c ? (size_t)(c - t) : n;
	size_t as = a ? alias_start(t, (size_t)(a - t)) : n;
	if (as < pos)
		as = pos;
	return cs < as ? cs : as;
}

static bool path_safe(const char *v, size_t n)
{
	if (memmem(v, n, "../", 3) || memmem(v, n, "..\\", 3) ||
	    (n == 2 && v[0] == '.' && v[1] == '.'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (v[i] == '\0' || strchr("\r\n/\\?#", v[i]))
			return false;
	return true;
}

/* rewrite_text_placeholders (@segment false) or rewrite_path_segment (@segment true: tokens by
 * grammar only, and a value that could change the path's structure is refused): every token
 * replaced, *@count replacements. */
static int rewrite_text(const struct pc_view *v, const char *t, size_t n, bool segment,
			struct px_l7_w *w, size_t *count)
{
	size_t pos = 0;
	*count = 0;
	while (pos < n) {
		size_t at = next_marker(t, n, pos);
		px_l7_w_put(w, t + pos, at - pos);
		if (at >= n)
			break;
		size_t e = 0;
		if (n - at >= PL && memcmp(t + at, PX_CRED_PREFIX, PL) == 0) {
			e = segment ? 0 : known_end(v->s, t, n, at);
			if (!e)
				e = canonical_end(t, n, at);
		}
		if (!e)
			e = alias_end(t, n, at);
		if (!e)
			return PX_CRED_E_UNAVAIL;
		const char *val;
		size_t vl;
		int r = px_cred_resolve(v, t + at, e - at, &val, &vl);
		if (r < 0)
			return r;
		if (segment && !path_safe(val, vl))
			return PX_CRED_E_UNAVAIL;
		px_l7_w_put(w, val, vl);
		(*count)++;
		pos = e;
	}
	return 0;
}

/* rewrite_text into a scratch buffer sized by a first pass: *@out owned (free with
 * scratch_free), *@len bytes. */
static int text_scratch(const struct pc_view *v, const char *t, size_t n, bool segment, char **out,
			size_t *len, size_t *count)
{
	struct px_l7_w w = {NULL, 0, 0};
	*out = NULL;
	int r = rewrite_text(v, t, n, segment, &w, count);
	if (r < 0)
		return r;
	w = (struct px_l7_w){malloc(w.len + 1), w.len + 1, 0};
	if (!w.buf)
		return -ENOMEM;
	r = rewrite_text(v, t, n, segment, &w, count);
	*out = w.buf;
	*len = w.len;
	return r;
}

static void scratch_free(char *b, size_t len)
{
	if (b) {
		px_cred_wipe(b, len + 1);
		free(b);
	}
}

/* ---- request line (§3.3) ------------------------------------------------------------------ */

static int rewrite_segment(const struct pc_view *v, const char *d, size_t n, struct px_l7_w *w,
			   size_t *count)
{
	char *b;
	size_t bl = 0, c = 0;
	int r = text_scratch(v, d, n, true, &b, &bl, &c);
	if (r == 0) {
		put_pct(w, b, bl, PCHAR);
		*count += c;
	}
	scratch_free(b, bl);
	return r;
}

static int rewrite_path(const struct pc_view *v, const char *p, size_t n, struct px_l7_w *w,
			size_t *count)
{
	char *dec = calloc(n + 1, 1);
	if (!dec)
		return -ENOMEM;
	int r = 0;
	for (size_t pos = 0; pos <= n;) {
		const char *sl = memchr(p + pos, '/', n - pos);
		size_t e = sl ? (size_t)(sl - p) : n;
		size_t dn = pct_decode(p + pos, e - pos, dec, false);
		if (raw_marker(dec, dn))
			r = rewrite_segment(v, dec, dn, w, count);
		else
			px_l7_w_put(w, p + pos, e - pos);
		if (r < 0 || !sl)
			break;
		px_l7_w_put(w, "/", 1);
		pos = e + 1;
	}
	free(dec);
	return r;
}

/* Only the values of k=v pairs are decoded, rewritten and re-encoded (unreserved set). */
static int rewrite_query(const struct pc_view *v, const char *q, size_t n, struct px_l7_w *w,
			 size_t *count)
{
	char *dec = calloc(n + 1, 1);
	if (!dec)
		return -ENOMEM;
	int r = 0;
	for (size_t pos = 0; pos <= n && r == 0;) {
		const char *amp = memchr(q + pos, '&', n - pos);
		size_t e = amp ? (size_t)(amp - q) : n;
		const char *eq = memchr(q + pos, '=', e - pos);
		size_t dn = eq ? pct_decode(eq + 1, (size_t)(q + e - eq - 1), dec, false) : 0;
		if (eq && raw_marker(dec, dn)) {
			px_l7_w_put(w, q + pos, (size_t)(eq + 1 - (q + pos)));
			char *b;
			size_t bl = 0, c = 0;
			r = text_scratch(v, dec, dn, false, &b, &bl, &c);
			if (r == 0 && (c == 0 || raw_marker(b, bl)))
				r = PX_CRED_E_UNAVAIL;
			if (r == 0) {
				put_pct(w, b, bl, UNRESERVED);
				*count += c;
			}
			scratch_free(b, bl);
		} else {
			px_l7_w_put(w, q + pos, e - pos);
		}
		if (!amp)
			break;
		px_l7_w_put(w, "&", 1);
		pos = e + 1;
	}
	free(dec);
	return r;
}

/* ---- header values (§3.3) ----------------------------------------------------------------- */

static const char b64a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64v(unsigned char c)
{
	const char *p = c ? strchr(b64a, c) : NULL;
	return p ? (int)(p - b64a) : -1;
}

/* Standard alphabet with canonical padding; -1 when it is not. */
static long b64_decode(const char *s, size_t n, char *out)
{
	if (n % 4)
		return -1;
	size_t w = 0;
	for (size_t i = 0; i < n; i += 4) {
		int a = b64v((unsigned char)s[i]), b = b64v((unsigned char)s[i + 1]);
		bool last = i + 4 == n;
		int c = last && s[i + 2] == '=' ? -2 : b64v((unsigned char)s[i + 2]);
		int d = last && s[i + 3] == '=' ? -2 : b64v((unsigned char)s[i + 3]);
		if (a < 0 || b < 0 || c == -1 || d == -1 || (c == -2 && d != -2))
			return -1;
		out[w++] = (char)(a << 2 | b >> 4);
		if (c == -2) {
			if (b & 15)
				return -1;
			break;
		}
		out[w++] = (char)((b & 15) << 4 | c >> 2);
		if (d == -2) {
			if (c & 3)
				return -1;
			break;
		}
		out[w++] = (char)((c & 3) << 6 | d);
	}
	return (long)w;
}

static void b64_put(struct px_l7_w *w, const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0) |
			     (i + 2 < n ? s[i + 2] : 0);
		char o[4] = {b64a[v >> 18], b64a[(v >> 12) & 63],
			     i + 1 < n ? b64a[(v >> 6) & 63] : '=', i + 2 < n ? b64a[v & 63] : '='};
		px_l7_w_put(w, o, 4);
	}
}

static bool any_marker(const char *s, size_t n)
{
	return px_l7_has_credential_marker(s, n);
}

static int fail_for(const struct pc_view *v, const char *t, size_t n)
{
	const char *val;
	size_t vl;
	int r = px_cred_resolve(v, t, n, &val, &vl);
	return r == PX_CRED_E_MISMATCH ? r : PX_CRED_E_UNAVAIL;
}

/* 1 when @w got "<name>: <rewritten>", 0 when the line stays, or an error. */
static int rewrite_header(const struct pc_view *v, const struct px_l7_header *h, struct px_l7_w *w,
			  size_t *count)
{
	const char *t = h->value, *val;
	size_t n = h->value_len, vl;
	bool basic = n > 6 && (memcmp(t, "Basic ", 6) == 0 || memcmp(t, "basic ", 6) == 0);
	if (!basic && !any_marker(t, n))
		return 0;
	px_l7_w_put(w, h->name, h->name_len);
	px_l7_w_put(w, ": ", 2);
	if (px_cred_resolve(v, t, n, &val, &vl) == 0) {
		px_l7_w_put(w, val, vl);
		(*count)++;
		return 1;
	}
	if (basic) {
		const char *e = t + 6;
		size_t en = n - 6;
		px_l7_trim(&e, &en);
		char *dec = malloc(en + 1);
		if (!dec)
			return -ENOMEM;
		long dn = b64_decode(e, en, dec);
		int r = 1;
		if (dn >= 0 && px_l7_utf8_valid((const unsigned char *)dec, (size_t)dn) &&
		    raw_marker(dec, (size_t)dn)) {
			char *b;
			size_t bl = 0, c = 0;
			r = text_scratch(v, dec, (size_t)dn, false, &b, &bl, &c);
			if (r == 0 && c > 0) {
				px_l7_w_put(w, "Basic ", 6);
				b64_put(w, (unsigned char *)b, bl);
				*count += c;
			}
			scratch_free(b, bl);
			if (r == 0 && c == 0)
				r = PX_CRED_E_UNAVAIL;
			free(dec);
			return r < 0 ? r : 1;
		}
		free(dec);
		if (!any_marker(t, n))
			return 0;
	}
	size_t sp = 0;
	while (sp < n && t[sp] != ' ' && t[sp] != '\t')
		sp++;
	if (sp == n)
		return fail_for(v, t, n);
	const char *c = t + sp;
	size_t cn = n - sp;
	px_l7_trim(&c, &cn);
	if (px_cred_resolve(v, c, cn, &val, &vl) == 0) {
		px_l7_w_put(w, t, sp);
		px_l7_w_put(w, " ", 1);
		px_l7_w_put(w, val, vl);
		(*count)++;
		return 1;
	}
	return fail_for(v, c, cn);
}

/* ---- the head (§3.3, §3.4) ---------------------------------------------------------------- */

/* The request path the binding is judged on: no query, redacted (§3.4). False: malformed
 * placeholder syntax, so no resolver. */
static bool scope_path(const struct px_l7_req *req, char *buf, size_t size)
{
	const char *p = req->target;
	size_t n = req->target_len;
	if (req->absolute_form) {
		const char *ss = memmem(p, n, "://", 3);
		const char *sl = ss ? memchr(ss + 3, '/', n - (size_t)(ss + 3 - p)) : NULL;
		if (!sl) {
			p = "/";
			n = 1;
		} else {
			n -= (size_t)(sl - p);
			p = sl;
		}
	}
	return px_l7_redact_path(p, n, buf, size) >= 0;
}

int px_cred_rewrite(const struct px_cred_store *s, const struct px_cred_scope *scope,
		    const struct px_l7_req *req, const char *tail, size_t tail_len, char *out,
		    size_t size, struct px_cred_stats *st)
{
	struct px_cred_stats dummy = {0};
	st = st ? st : &dummy;
	memset(st, 0, sizeof(*st));
	const char *head = req->method;
	size_t hl = req->head_len;
	char path[3 * PX_L7_PATH_MAX + 64];
	struct pc_view v = {s && s->n_vars ? s : NULL, scope->host, scope->port, path,
			    scope->now_ms};
	if (tail_len > PX_CRED_RESCAN_TAIL)
		tail_len = PX_CRED_RESCAN_TAIL;

	/* The common case: no marker anywhere (raw or percent-encoded) and no Basic credentials
	 * that could hide one. The head goes out as it is. */
	bool basic = false;
	for (size_t i = 0; i < req->n_headers && !basic; i++)
		basic =
		    req->headers[i].value_len > 6 && px_l7_ieq(req->headers[i].value, 6, "basic ");
	if (!basic && !any_marker(head, hl) && !(tail && any_marker(tail, tail_len))) {
		if (hl > size)
			return -ENOBUFS;
		memcpy(out, head, hl);
		return (int)hl;
	}
	if (!v.s || !scope_path(req, path, sizeof(path))) {
		/* no resolver: any marker in the head or the first body bytes fails closed */
		st->location = "header";
		if (any_marker(head, hl) || (tail && any_marker(tail, tail_len)))
			return PX_CRED_E_UNAVAIL;
		if (hl > size)
			return -ENOBUFS;
		memcpy(out, head, hl);
		return (int)hl;
	}

	struct px_l7_w w = {out, size, 0};
	int r = 0;
	px_l7_w_put(&w, req->method, req->method_len);
	px_l7_w_put(&w, " ", 1);
	const char *t = req->target;
	size_t tn = req->target_len;
	if (any_marker(t, tn)) {
		const char *q = memchr(t, '?', tn);
		size_t pn = q ? (size_t)(q - t) : tn;
		st->location = "path";
		r = rewrite_path(&v, t, pn, &w, &st->replaced);
		if (r == 0 && q) {
			px_l7_w_put(&w, "?", 1);
			st->location = "query_param";
			if (any_marker(q + 1, tn - pn - 1))
				r = rewrite_query(&v, q + 1, tn - pn - 1, &w, &st->replaced);
			else
				px_l7_w_put(&w, q + 1, tn - pn - 1);
		}
		st->target_changed = true;
	} else {
		px_l7_w_put(&w, t, tn);
	}
	px_l7_w_str(&w, req->version_minor ? " HTTP/1.1\r\n" : " HTTP/1.0\r\n");
	st->location = "header";
	for (size_t i = 0; r == 0 && i < req->n_headers; i++) {
		size_t before = w.len;
		r = rewrite_header(&v, &req->headers[i], &w, &st->replaced);
		if (r == 0) {
			w.len = before; /* drop a partial "name: " */
			px_l7_w_put(&w, req->headers[i].line, req->headers[i].line_len);
		}
		if (r >= 0) {
			r = 0;
			px_l7_w_put(&w, "\r\n", 2);
		}
	}
	px_l7_w_put(&w, "\r\n", 2);
	if (r == 0 && w.len > size)
		r = -ENOBUFS;
	/* the re-scan: the rewritten head plus the first body bytes, raw and percent-decoded */
	if (r == 0 && (any_marker(out, w.len) || (tail && any_marker(tail, tail_len)))) {
		st->location = "header";
		r = PX_CRED_E_UNAVAIL;
	}
	if (r < 0) {
		px_cred_wipe(out, w.len < size ? w.len : size);
		return r;
	}
	return (int)w.len;
}

int px_cred_rewrite_inplace(const struct px_cred_store *s, const struct px_cred_scope *scope,
			    char *head, size_t len, size_t cap, struct px_cred_stats *st)
{
	struct px_l7_req *req = malloc(sizeof(*req));
	char *out = malloc(cap ? cap : 1);
	int r = -ENOMEM;
	if (req && out) {
		r = px_l7_req_parse(head, len, req, NULL) < 0 || req->head_len != len
			? -EBADMSG
			: px_cred_rewrite(s, scope, req, NULL, 0, out, cap, st);
		if (r >= 0)
			memcpy(head, out, (size_t)r);
	}
	if (out)
		px_cred_wipe(out, cap);
	free(out);
	free(req);
	return r;
}

/* ---- bodies (§3.3) ------------------------------------------------------------------------ */

bool px_cred_body_type_ok(const char *ct, size_t n)
{
	if (!ct)
		return false;
	const char *semi = memchr(ct, ';', n);
	size_t m = semi ? (size_t)(semi - ct) : n;
	px_l7_trim(&ct, &m);
	if (px_l7_ieq(ct, m, "application/json") ||
	    px_l7_ieq(ct, m, "application/x-www-form-urlencoded"))
		return true;
	return m > 5 && px_l7_ieq(ct, 5, "text/");
}

static bool is_form(const char *ct, size_t n)
{
	const char *semi = memchr(ct, ';', n);
	size_t m = semi ? (size_t)(semi - ct) : n;
	px_l7_trim(&ct, &m);
	return px_l7_ieq(ct, m, "application/x-www-form-urlencoded");
}

static int rewrite_form(const struct pc_view *v, const char *b, size_t n, struct px_l7_w *w,
			size_t *count)
{
	char *dec = calloc(n + 1, 1);
	if (!dec)
		return -ENOMEM;
	int r = 0;
	for (size_t pos = 0; pos <= n && r == 0;) {
		const char *amp = memchr(b + pos, '&', n - pos);
		size_t e = amp ? (size_t)(amp - b) : n;
		const char *eq = memchr(b + pos, '=', e - pos);
		size_t nn = eq ? (size_t)(eq - (b + pos)) : e - pos;
		size_t dn = pct_decode(b + pos, nn, dec, true);
		if (any_marker(dec, dn)) {
			r = PX_CRED_E_UNAVAIL; /* placeholders in a field name */
			break;
		}
		px_l7_w_put(w, b + pos, nn);
		if (eq) {
			px_l7_w_put(w, "=", 1);
			size_t vn = e - pos - nn - 1;
			dn = pct_decode(eq + 1, vn, dec, true);
			if (!any_marker(dec, dn)) {
				px_l7_w_put(w, eq + 1, vn);
			} else {
				char *t;
				size_t tl = 0, c = 0;
				r = text_scratch(v, dec, dn, false, &t, &tl, &c);
				if (r == 0 && (c == 0 || any_marker(t, tl)))
					r = PX_CRED_E_UNAVAIL;
				for (size_t i = 0; r == 0 && i < tl; i++) {
					if (t[i] == ' ')
						px_l7_w_put(w, "+", 1);
					else
						put_pct(w, t + i, 1, "-._*");
				}
				if (r == 0)
					*count += c;
				scratch_free(t, tl);
			}
		}
		if (!amp)
			break;
		px_l7_w_put(w, "&", 1);
		pos = e + 1;
	}
	px_cred_wipe(dec, n + 1);
	free(dec);
	return r;
}

int px_cred_rewrite_body(const struct px_cred_store *s, const struct px_cred_scope *scope,
			 const char *path, size_t path_len, const char *ctype, size_t ctype_len,
			 const char *body, size_t len, char *out, size_t size,
			 struct px_cred_stats *st)
{
	struct px_cred_stats dummy = {0};
	st = st ? st : &dummy;
	memset(st, 0, sizeof(*st));
	st->location = "request_body";
	if (len > PX_CRED_BODY_MAX)
		return -EFBIG;
	bool marker = any_marker(body, len);
	if (marker && !px_cred_body_type_ok(ctype, ctype_len))
		return PX_CRED_E_UNAVAIL;
	if (!marker) {
		if (len > size)
			return -ENOBUFS;
		memcpy(out, body, len);
		return (int)len;
	}
	if (!px_l7_utf8_valid((const unsigned char *)body, len))
		return -EBADMSG;
	char rp[3 * PX_L7_PATH_MAX + 64];
	struct pc_view v = {s && s->n_vars ? s : NULL, scope->host, scope->port, rp, scope->now_ms};
	const char *q = memchr(path, '?', path_len);
	if (!v.s || px_l7_redact_path(path, q ? (size_t)(q - path) : path_len, rp, sizeof(rp)) < 0)
		return PX_CRED_E_UNAVAIL;
	struct px_l7_w w = {out, size, 0};
	int r = is_form(ctype, ctype_len) ? rewrite_form(&v, body, len, &w, &st->replaced)
					  : rewrite_text(&v, body, len, false, &w, &st->replaced);
	if (r == 0 && w.len > size)
		r = -ENOBUFS;
	if (r == 0 && (st->replaced == 0 || any_marker(out, w.len)))
		r = PX_CRED_E_UNAVAIL;
	if (r < 0) {
		px_cred_wipe(out, w.len < size ? w.len : size);
		return r;
	}
	return (int)w.len;
}

/* ---- responses (§3.4) --------------------------------------------------------------------- */

int px_cred_resp(int rc, char *buf, size_t size)
{
	const char *status, *body;
	if (rc == PX_CRED_E_MISMATCH) {
		status = "403 Forbidden";
		body = "{\"error\":\"credential_endpoint_mismatch\",\"message\":\"Credential is "
		       "not authorized for this request endpoint\"}";
	} else if (rc == PX_CRED_E_UNAVAIL) {
		status = "500 Internal Server Error";
		body = "{\"error\":\"credential_unavailable\",\"message\":\"Credential "
		       "placeholder could not be resolved\"}";
	} else {
		return -EINVAL;
	}
	size_t n = sv_fmt(buf, size,
			  "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: "
			  "%zu\r\nConnection: close\r\n\r\n%s",
			  status, strlen(body), body);
	return n + 1 >= size ? -ENOBUFS : (int)n;
}
