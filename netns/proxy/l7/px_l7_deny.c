/* What the L7 relay says on the wire and in its log (contract §1.1, §2.5, §2.8, §2.9): the
 * 403 bodies byte for byte (compact JSON, keys in alphabetical order as serde_json writes
 * them) and the L7_REQUEST message, with credential placeholders redacted.
 *
 * Pure: writes only into caller buffers. A placeholder, a query string or a resolved secret
 * never reaches a body or a log line: paths are cut at '?' and redacted here, not by callers.
 */
#include "netns/proxy/l7/px_l7.h"

#include <errno.h>
#include <string.h>

#include "netns/proxy/l7/px_l7_int.h"

#define MARKER	 "openshell:resolve:env:"
#define ALIAS	 "OPENSHELL-RESOLVE-ENV-"
#define REDACTED "[CREDENTIAL]"

#define SKILL_PATH "/etc/openshell/skills/policy_advisor.md"
#define AGENT_GUIDANCE                                                                        \
	"OpenShell blocked this request with sandbox policy. If the user's task still needs " \
	"this network action, do not stop here: read " SKILL_PATH ", submit the narrowest "   \
	"policy proposal to http://policy.local/v1/proposals, wait for approval and "         \
	"`policy_reloaded: true`, then retry the original request."
#define NEXT_STEPS                                                                \
	"[{\"action\":\"read_skill\",\"path\":\"" SKILL_PATH "\"},"               \
	"{\"action\":\"inspect_policy\",\"method\":\"GET\","                      \
	"\"url\":\"http://policy.local/v1/policy/current\"},"                     \
	"{\"action\":\"inspect_recent_denials\",\"method\":\"GET\","              \
	"\"url\":\"http://policy.local/v1/denials?last=5\"},"                     \
	"{\"action\":\"submit_proposal\",\"body_type\":\"PolicyMergeOperation\"," \
	"\"method\":\"POST\",\"url\":\"http://policy.local/v1/proposals\"}]"

/* ---- credential markers ------------------------------------------------------------------ */

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

/* Percent-decode as OpenShell's lenient decoder does: a '%' with two following bytes that are
 * not hex is kept with both of them verbatim. Returns the decoded length. */
static size_t pct_decode(const char *s, size_t n, char *out)
{
	size_t w = 0;
	for (size_t i = 0; i < n;) {
		if (s[i] != '%') {
			out[w++] = s[i++];
			continue;
		}
		if (i + 2 >= n) {
			while (i < n)
				out[w++] = s[i++];
			break;
		}
		int hi = hexval((unsigned char)s[i + 1]), lo = hexval((unsigned char)s[i + 2]);
		if (hi >= 0 && lo >= 0) {
			out[w++] = (char)(hi << 4 | lo);
		} else {
			out[w++] = '%';
			out[w++] = s[i + 1];
			out[w++] = s[i + 2];
		}
		i += 3;
	}
	return w;
}

static bool has_raw_marker(const char *s, size_t n)
{
	return memmem(s, n, MARKER, sizeof(MARKER) - 1) || memmem(s, n, ALIAS, sizeof(ALIAS) - 1);
}

bool px_l7_has_credential_marker(const char *s, size_t len)
{
	char buf[4096];
	if (has_raw_marker(s, len))
		return true;
	for (size_t off = 0; off < len;) {
		/* Chunks overlap by a whole encoded marker so none is split unseen. */
		size_t n = len - off > sizeof(buf) ? sizeof(buf) : len - off;
		if (has_raw_marker(buf, pct_decode(s + off, n, buf)))
			return true;
		if (off + n == len)
			break;
		off += n - 3 * (sizeof(MARKER) - 1);
	}
	return false;
}

static bool key_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_';
}

static bool alias_char(unsigned char c)
{
	return key_char(c) || c == '-' || c == '.' || c == '~';
}

/* Where the placeholder token starting at @start of @t ends, or 0 when none does. */
static size_t token_end(const char *t, size_t n, size_t start)
{
	size_t ml = sizeof(MARKER) - 1, al = sizeof(ALIAS) - 1, k;
	if (n - start >= ml && memcmp(t + start, MARKER, ml) == 0) {
		for (k = start + ml; k < n && key_char((unsigned char)t[k]); k++)
			;
		if (k > start + ml)
			return k;
	}
	const char *m = memmem(t + start, n - start, ALIAS, al);
	if (!m || m == t + start)
		return 0;
	for (size_t i = start; i < (size_t)(m - t); i++)
		if (!alias_char((unsigned char)t[i]))
			return 0;
	size_t ks = (size_t)(m - t) + al;
	for (k = ks; k < n && key_char((unsigned char)t[k]); k++)
		;
	if (k == ks || (start > 0 && alias_char((unsigned char)t[start - 1])) ||
	    (k < n && alias_char((unsigned char)t[k])))
		return 0;
	return k;
}

/* Emit decoded bytes, invalid UTF-8 replaced by U+FFFD as a lossy conversion would. */
static void put_lossy(struct px_l7_w *w, const char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t l = px_l7_utf8_len((const unsigned char *)s + i, n - i);
		if (l) {
			px_l7_w_put(w, s + i, l);
			i += l;
		} else {
			px_l7_w_str(w, "\xef\xbf\xbd");
			i++;
		}
	}
}

static int redact_segment(struct px_l7_w *w, const char *t, size_t n)
{
	size_t pos = 0;
	while (pos < n) {
		const char *c = memmem(t + pos, n - pos, MARKER, sizeof(MARKER) - 1);
		const char *a = memmem(t + pos, n - pos, ALIAS, sizeof(ALIAS) - 1);
		if (a)
			while (a > t + pos && alias_char((unsigned char)a[-1]))
				a--;
		const char *s = c && (!a || c < a) ? c : a;
		if (!s) {
			put_lossy(w, t + pos, n - pos);
			break;
		}
		put_lossy(w, t + pos, (size_t)(s - (t + pos)));
		size_t end = token_end(t, n, (size_t)(s - t));
		if (!end)
			return -EINVAL;
		px_l7_w_str(w, REDACTED);
		pos = end;
	}
	return 0;
}

int px_l7_redact_path(const char *path, size_t len, char *out, size_t size)
{
	struct px_l7_w w = {out, size, 0};
	char dec[PX_L7_CANON_MAX];
	const char *q = memchr(path, '?', len);

	if (q)
		len = (size_t)(q - path);
	if (!px_l7_has_credential_marker(path, len)) {
		px_l7_w_put(&w, path, len);
	} else {
		memset(dec, 0, sizeof(dec)); /* rare path; keeps the analyzer certain */
		for (size_t p = 0; p <= len;) {
			const char *sl = memchr(path + p, '/', len - p);
			size_t e = sl ? (size_t)(sl - path) : len, sn = e - p;
			if (p > 0)
				px_l7_w_put(&w, "/", 1);
			size_t dn = sn <= sizeof(dec) ? pct_decode(path + p, sn, dec) : 0;
			if (sn > sizeof(dec))
				return -EINVAL;
			if (has_raw_marker(dec, dn)) {
				int r = redact_segment(&w, dec, dn);
				if (r < 0)
					return r;
			} else {
				px_l7_w_put(&w, path + p, sn);
			}
			if (!sl)
				break;
			p = e + 1;
		}
	}
	int r = px_l7_w_end(&w);
	return r < 0 ? r : (int)w.len;
}

/* ---- responses --------------------------------------------------------------------------- */

static void trimmed(const char **s, size_t *n)
{
	*n = *s ? strlen(*s) : 0;
	if (*s)
		px_l7_trim(s, n);
}

static void w_key(struct px_l7_w *w, const char *key, const char *val, size_t n, bool comma)
{
	if (comma)
		px_l7_w_put(w, ",", 1);
	px_l7_w_json(w, key, strlen(key));
	px_l7_w_put(w, ":", 1);
	px_l7_w_json(w, val, n);
}

static void w_skey(struct px_l7_w *w, const char *key, const char *val)
{
	w_key(w, key, val, strlen(val), true);
}

/* The §2.8 body; every key in serde_json's (alphabetical) order. */
static void deny_body(struct px_l7_w *w, const struct px_l7_deny *d, const char *path, size_t pn)
{
	const char *host = d->host, *bin = d->binary;
	size_t hn, bn;
	trimmed(&host, &hn);
	trimmed(&bin, &bn);
	bool comma = false;

	px_l7_w_put(w, "{", 1);
	if (d->proposals) {
		w_key(w, "agent_guidance", AGENT_GUIDANCE, sizeof(AGENT_GUIDANCE) - 1, false);
		comma = true;
	}
	if (bn) {
		w_key(w, "binary", bin, bn, comma);
		comma = true;
	}
	w_key(w, "detail", d->reason ? d->reason : "", d->reason ? strlen(d->reason) : 0, comma);
	w_skey(w, "error", "policy_denied");
	if (hn)
		w_key(w, "host", host, hn, true);
	w_skey(w, "layer", "l7");
	w_skey(w, "method", d->method);
	px_l7_w_str(w, ",\"next_steps\":");
	px_l7_w_str(w, d->proposals ? NEXT_STEPS : "[]");
	w_key(w, "path", path, pn, true);
	w_skey(w, "policy", d->policy);
	px_l7_w_str(w, ",\"port\":");
	px_l7_w_uint(w, d->port);
	w_skey(w, "protocol", "rest");
	px_l7_w_str(w, ",\"rule\":\"");
	px_l7_w_json_inner(w, d->method, strlen(d->method));
	px_l7_w_put(w, " ", 1);
	px_l7_w_json_inner(w, path, pn);
	px_l7_w_put(w, "\"", 1);
	px_l7_w_str(w, ",\"rule_missing\":{");
	comma = false;
	if (bn) {
		w_key(w, "binary", bin, bn, false);
		comma = true;
	}
	if (hn) {
		w_key(w, "host", host, hn, comma);
		comma = true;
	}
	w_key(w, "layer", "l7", 2, comma);
	w_skey(w, "method", d->method);
	w_key(w, "path", path, pn, true);
	px_l7_w_str(w, ",\"port\":");
	px_l7_w_uint(w, d->port);
	w_skey(w, "type", "rest_allow");
	px_l7_w_str(w, "}}");
}

static int respond(char *buf, size_t size, const char *status, const char *policy,
		   void (*body)(struct px_l7_w *, const void *), const void *ctx)
{
	struct px_l7_w count = {NULL, 0, 0}, w = {buf, size, 0};
	body(&count, ctx);
	px_l7_w_str(&w, "HTTP/1.1 ");
	px_l7_w_str(&w, status);
	px_l7_w_str(&w, "\r\nContent-Type: application/json\r\nContent-Length: ");
	px_l7_w_uint(&w, count.len);
	if (policy) {
		px_l7_w_str(&w, "\r\nX-OpenShell-Policy: ");
		px_l7_w_str(&w, policy);
	}
	px_l7_w_str(&w, "\r\nConnection: close\r\n\r\n");
	body(&w, ctx);
	if (w.len > size || w.len > (size_t)INT32_MAX)
		return -ENOBUFS;
	return (int)w.len;
}

struct deny_ctx {
	const struct px_l7_deny *d;
	const char *path;
	size_t pn;
};

static void deny_cb(struct px_l7_w *w, const void *ctx)
{
	const struct deny_ctx *c = ctx;
	deny_body(w, c->d, c->path, c->pn);
}

int px_l7_resp_deny(char *buf, size_t size, const struct px_l7_deny *d)
{
	char path[PX_L7_CANON_MAX + 256];
	const char *p = d->path ? d->path : "";

	if (!d->policy || !d->method)
		return -EINVAL;
	for (const unsigned char *s = (const unsigned char *)d->policy; *s; s++)
		if (*s < 0x20 || *s == 0x7f)
			return -EINVAL;
	int pn = px_l7_redact_path(p, strlen(p), path, sizeof(path));
	if (pn < 0)
		pn = sv_fmt(path, sizeof(path), "/%s", REDACTED) ? (int)strlen(path) : 0;
	struct deny_ctx c = {d, path, (size_t)pn};
	return respond(buf, size, "403 Forbidden", d->policy, deny_cb, &c);
}

struct pair_ctx {
	const char *detail;
	size_t dn;
	const char *error;
};

static void detail_error_cb(struct px_l7_w *w, const void *ctx)
{
	const struct pair_ctx *c = ctx;
	px_l7_w_put(w, "{", 1);
	w_key(w, "detail", c->detail, c->dn, false);
	w_skey(w, "error", c->error);
	px_l7_w_put(w, "}", 1);
}

int px_l7_resp_forward_deny(char *buf, size_t size, const char *method, const char *host,
			    uint16_t port, const char *path, const char *reason)
{
	char detail[PX_L7_CANON_MAX + PX_L7_REASON_MAX + 512], rp[PX_L7_CANON_MAX + 256];
	const char *p = path ? path : "";
	int pn = px_l7_redact_path(p, strlen(p), rp, sizeof(rp));
	if (pn < 0)
		sv_fmt(rp, sizeof(rp), "/%s", REDACTED);
	size_t dn = sv_fmt(detail, sizeof(detail), "%s %s:%u%s denied by L7 policy: %s", method,
			   host, (unsigned)port, rp, reason ? reason : "");
	struct pair_ctx c = {detail, dn, "policy_denied"};
	return respond(buf, size, "403 Forbidden", NULL, detail_error_cb, &c);
}

static void mismatch_cb(struct px_l7_w *w, const void *ctx)
{
	(void)ctx;
	px_l7_w_str(w, "{\"error\":\"request_authority_mismatch\",\"message\":\"HTTP request "
		       "authority does not match the authorized tunnel endpoint\"}");
}

int px_l7_resp_authority_mismatch(char *buf, size_t size)
{
	return respond(buf, size, "403 Forbidden", NULL, mismatch_cb, NULL);
}

int px_l7_resp_unsupported_protocol(char *buf, size_t size, bool h2c)
{
	const char *detail =
	    h2c ? "HTTP/2 prior-knowledge (h2c) is not supported for L7-inspected endpoints"
		: "Unsupported tunnel protocol for L7-inspected endpoint";
	struct pair_ctx c = {detail, strlen(detail), "unsupported_l7_protocol"};
	return respond(buf, size, "403 Forbidden", NULL, detail_error_cb, &c);
}

/* ---- log line ---------------------------------------------------------------------------- */

int px_l7_log_request(char *buf, size_t size, const char *decision, const char *method,
		      const char *host, uint16_t port, const char *path, const char *summary,
		      const char *reason)
{
	char rp[PX_L7_CANON_MAX + 256];
	const char *p = path ? path : "";
	int pn = px_l7_redact_path(p, strlen(p), rp, sizeof(rp));
	if (pn < 0)
		sv_fmt(rp, sizeof(rp), "/%s", REDACTED);
	struct px_l7_w w = {buf, size, 0};
	px_l7_w_str(&w, "L7_REQUEST ");
	px_l7_w_str(&w, decision);
	px_l7_w_put(&w, " ", 1);
	px_l7_w_str(&w, method);
	px_l7_w_put(&w, " ", 1);
	px_l7_w_str(&w, host);
	px_l7_w_put(&w, ":", 1);
	px_l7_w_uint(&w, port);
	px_l7_w_str(&w, rp);
	px_l7_w_str(&w, summary ? summary : "");
	px_l7_w_str(&w, " reason=");
	px_l7_w_str(&w, reason ? reason : "");
	int r = px_l7_w_end(&w);
	return r < 0 ? r : (int)w.len;
}
