/* Upstream response heads in the L7 relay (contract §2.6): the 16 KiB head cap, the framing
 * fields, and what to do with the body (101 only when asked for, bodiless statuses,
 * close-delimited bodies, server-sent events, explicit framing).
 *
 * Pure. Deliberately as lenient as OpenShell about everything but framing: the status line and
 * other fields are relayed as the upstream sent them.
 */
#include "netns/proxy/l7/px_l7.h"

#include <errno.h>
#include <string.h>

#include "netns/proxy/l7/px_l7_int.h"

int px_l7_resp_scan(const char *buf, size_t len)
{
	return px_l7_head_scan(buf, len);
}

/* Next line of @h (@n bytes) from *@pos, split on LF with one trailing CR dropped (Rust's
 * str::lines). False at the end. */
static bool next_line(const char *h, size_t n, size_t *pos, const char **l, size_t *ln)
{
	if (*pos >= n)
		return false;
	const char *nl = memchr(h + *pos, '\n', n - *pos);
	size_t e = nl ? (size_t)(nl - h) : n;
	*l = h + *pos;
	*ln = e - *pos;
	if (*ln && (*l)[*ln - 1] == '\r')
		(*ln)--;
	*pos = e + 1;
	return true;
}

static bool starts_ci(const char *l, size_t ln, const char *lit)
{
	size_t n = strlen(lit);
	return ln >= n && px_l7_ieq(l, n, lit);
}

/* Rust's u64/u16 FromStr: an optional '+', then decimal digits only. */
static bool parse_uint(const char *s, size_t n, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (n && s[0] == '+')
		s++, n--;
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		if (v > (max - (uint64_t)(s[i] - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return true;
}

int px_l7_resp_parse(const char *head, size_t len, struct px_l7_resp *resp, struct sv_err *err)
{
	size_t pos = 0, ln;
	const char *l;
	bool first_conn = true, cl_seen = false, te_seen = false, te_chunked = false;
	size_t te_codings = 0;

	memset(resp, 0, sizeof(*resp));
	resp->head_len = len;
	resp->status = 200;
	if (!next_line(head, len, &pos, &l, &ln))
		return 0;
	/* The second whitespace-separated word of the status line. */
	size_t i = 0, w = 0;
	while (i < ln) {
		while (i < ln && (l[i] == ' ' || l[i] == '\t'))
			i++;
		size_t s = i;
		while (i < ln && l[i] != ' ' && l[i] != '\t')
			i++;
		if (i > s && ++w == 2) {
			uint64_t v;
			if (parse_uint(l + s, i - s, 65535, &v))
				resp->status = (int)v;
			break;
		}
	}
	while (next_line(head, len, &pos, &l, &ln)) {
		const char *colon = memchr(l, ':', ln);
		if (starts_ci(l, ln, "connection:") && first_conn) {
			first_conn = false;
			for (size_t k = 11; k + 5 <= ln; k++)
				if (px_l7_ieq(l + k, 5, "close"))
					resp->conn_close = true;
		}
		if (starts_ci(l, ln, "content-type:")) {
			const char *v = l + 13, *semi = memchr(v, ';', ln - 13);
			size_t vn = semi ? (size_t)(semi - v) : ln - 13;
			px_l7_trim(&v, &vn);
			if (px_l7_ieq(v, vn, "text/event-stream"))
				resp->event_stream = true;
		}
		if (!colon)
			continue;
		size_t nl = (size_t)(colon - l);
		const char *v = colon + 1, *end = l + ln;
		if (px_l7_ieq(l, nl, "transfer-encoding")) {
			te_seen = true;
			while (v <= end) {
				const char *c = memchr(v, ',', (size_t)(end - v));
				const char *e = c ? c : end, *t = v;
				size_t tn = (size_t)(e - v);
				px_l7_trim(&t, &tn);
				if (tn == 0)
					return sv_err_set(err, EBADMSG,
							  "HTTP response: empty Transfer-Encoding");
				te_codings++;
				te_chunked = px_l7_ieq(t, tn, "chunked");
				if (!c)
					break;
				v = c + 1;
			}
		} else if (px_l7_ieq(l, nl, "content-length")) {
			size_t vn = (size_t)(end - v);
			uint64_t cl;
			px_l7_trim(&v, &vn);
			if (!parse_uint(v, vn, UINT64_MAX, &cl))
				return sv_err_set(err, EBADMSG,
						  "HTTP response: invalid Content-Length");
			if (cl_seen && cl != resp->content_length)
				return sv_err_set(err, EBADMSG,
						  "HTTP response: differing Content-Length values");
			cl_seen = true;
			resp->content_length = cl;
		}
	}
	if (te_seen && cl_seen)
		return sv_err_set(err, EBADMSG,
				  "HTTP response: Transfer-Encoding with Content-Length");
	if (te_seen) {
		if (te_codings != 1 || !te_chunked)
			return sv_err_set(err, EBADMSG,
					  "HTTP response: unsupported Transfer-Encoding");
		resp->body = PX_L7_BODY_CHUNKED;
	} else if (cl_seen) {
		resp->body = PX_L7_BODY_LENGTH;
	}
	return 0;
}

void px_l7_resp_plan(const struct px_l7_resp *resp, const char *method, size_t method_len,
		     bool client_wants_upgrade, struct px_l7_resp_plan *plan)
{
	memset(plan, 0, sizeof(*plan));
	if (resp->status == 101) {
		plan->action = client_wants_upgrade ? PX_L7_RESP_UPGRADE : PX_L7_RESP_DROP;
		return;
	}
	if (px_l7_ieq(method, method_len, "HEAD") || (resp->status >= 100 && resp->status < 200) ||
	    resp->status == 204 || resp->status == 304) {
		plan->action = PX_L7_RESP_HEAD_ONLY;
		plan->keep_alive = !resp->conn_close;
		return;
	}
	switch (resp->body) {
	case PX_L7_BODY_LENGTH:
		plan->action = PX_L7_RESP_LENGTH;
		plan->keep_alive = true;
		return;
	case PX_L7_BODY_CHUNKED:
		plan->action = PX_L7_RESP_CHUNKED;
		plan->keep_alive = true;
		return;
	case PX_L7_BODY_NONE:
		break;
	}
	if (resp->conn_close || resp->event_stream) {
		/* SSE never times out, even when the server also said close. */
		plan->action = resp->event_stream ? PX_L7_RESP_EOF : PX_L7_RESP_EOF_IDLE;
		plan->add_close = resp->conn_close;
	} else {
		plan->action = PX_L7_RESP_EMPTY;
		plan->keep_alive = true;
	}
}

int px_l7_resp_head_close(const char *head, size_t len, char *out, size_t size)
{
	static const char add[] = "Connection: close\r\n\r\n";
	if (len < 2)
		return -EINVAL;
	size_t n = len - 2 + sizeof(add) - 1;
	if (n > size)
		return -ENOBUFS;
	memcpy(out, head, len - 2);
	memcpy(out + len - 2, add, sizeof(add) - 1);
	return (int)n;
}
