/* Egress proxy: the HTTP/1 request loop inside a tunnel (l7 contract §2.5-§2.9). On REST
 * endpoints every request is parsed, canonicalised and judged (rules, deny rules, access,
 * enforcement) and denied with the §2.8 403; on L4 endpoints whose TLS we terminated it is
 * parsed and logged (the passthrough relay). Bodies and responses stream with their framing.
 *
 * Never logs a query string or a credential; never sends a denied request (under enforce) or a
 * malformed one upstream. Requests on one tunnel are strictly sequential.
 */
#include <stdlib.h>
#include <string.h>

#include "netns/proxy/l7/px_l7.h"
#include "netns/proxy/l7/px_l7_cred.h"
#include "netns/proxy/px_policy.h"
#include "netns/proxy/px_snap.h"
#include "netns/proxy/px_tunnel_int.h"
#include "supervisor/log.h"

#define COMP "proxy"
#define PX_TUN_QUERY_MAX 128 /* ours: query parameters judged per request */
#define PX_TUN_ROUTES_MAX 64 /* ours: L7 endpoints considered for route selection */

/* Scratch layout: canonical path | redacted path | decoded query bytes. */
#define SCR_CANON 0
#define SCR_RED PX_L7_CANON_MAX
#define SCR_QUERY (2 * PX_L7_CANON_MAX + 256)
#define SCR_SIZE (SCR_QUERY + PX_L7_HEAD_MAX)

int px_tun_http_init(struct px_tun *t)
{
	if (!t->req && !(t->req = malloc(sizeof(*t->req))))
		return -ENOMEM;
	if (!t->scratch && !(t->scratch = malloc(SCR_SIZE)))
		return -ENOMEM;
	return 0;
}

void px_tun_http_free(struct px_tun *t)
{
	free(t->req);
	free(t->scratch);
	t->req = NULL;
	t->scratch = NULL;
}

/* ------------------------------------------------------------------------------- output */

static void to_client(struct px_tun *t, const char *buf, size_t len)
{
	px_tbuf_compact(&t->cout);
	if (len > t->cout.cap - t->cout.len)
		len = t->cout.cap - t->cout.len;
	memcpy(t->cout.b + t->cout.len, buf, len);
	t->cout.len += len;
}

/* Answer and close (the tunnel ends once the answer is flushed). */
static void answer_close(struct px_tun *t, const char *buf, int len)
{
	if (len > 0)
		to_client(t, buf, (size_t)len);
	t->mode = PX_TM_CLOSING;
}

static void json_close(struct px_tun *t, int status, const char *text, const char *error,
		       const char *message)
{
	char body[256], resp[512];
	int bl = (int)sv_fmt(body, sizeof(body), "{\"error\":\"%s\",\"message\":\"%s\"}", error,
			     message);
	int n = (int)sv_fmt(resp, sizeof(resp),
			    "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: "
			    "%d\r\nConnection: close\r\n\r\n%s",
			    status, text, bl, body);
	answer_close(t, resp, n);
}

static void reject(struct px_tun *t, const char *why)
{
	char port[8];
	sv_fmt(port, sizeof(port), "%u", (unsigned)t->port);
	sv_log_ocsf("HTTP:ACTIVITY", SV_SEV_MED, "DENIED", "l7_request_rejected",
		    "HTTP request rejected before policy evaluation",
		    SV_KVS({"host", t->host}, {"port", port}, {"reason", why},
			   {"engine", "supervisor"}));
}

/* --------------------------------------------------------------------------- the judge */

/* §2.1: the L7 endpoints of rules that admit this binary to host:port. */
static size_t routes(const struct px_query *q, const struct pol_policy *p,
		     const struct pol_endpoint **eps, const char **names)
{
	size_t n = 0;
	for (size_t i = 0; p && i < p->n_rules; i++) {
		const struct pol_network_rule *r = &p->rules[i];
		if (!q->endpoint_only &&
		    !px_policy_binary_matches(r, q->exe, q->ancestors, q->n_ancestors))
			continue;
		for (size_t e = 0; e < r->n_endpoints && n < PX_TUN_ROUTES_MAX; e++) {
			const struct pol_endpoint *ep = &r->endpoints[e];
			if (!px_policy_endpoint_is_rest(ep) ||
			    !px_policy_endpoint_matches(ep, q->host, q->port))
				continue;
			names[n] = r->name;
			eps[n++] = ep;
		}
	}
	return n;
}

int px_l7_judge(const struct pol_policy *pol, const struct px_query *q,
		const struct px_l7_judge_req *r, struct px_l7_judgement *j)
{
	memset(j, 0, sizeof(*j));
	const char *reason = NULL;
	bool force = false;
	const struct pol_endpoint *eps[PX_TUN_ROUTES_MAX];
	const char *names[PX_TUN_ROUTES_MAX];
	size_t nr = routes(q, pol, eps, names);
	if (r->canon_err) {
		reason = r->canon_err;
		force = true;
	}
	if (!force) {
		j->ep = px_l7_select_endpoint(eps, nr, r->path);
		for (size_t i = 0; j->ep && i < nr; i++)
			if (eps[i] == j->ep)
				j->policy = names[i];
		if (!j->ep) {
			reason = PX_L7_REASON_NO_ENDPOINT;
			force = true;
		}
	}
	if (!force && r->req && px_l7_req_is_h2c_upgrade(r->req)) {
		reason = PX_L7_REASON_H2C;
		force = true;
	}
	if (!force && !j->ep->allow_encoded_slash &&
	    px_l7_path_has_encoded_slash(r->canon, r->canon_len)) {
		reason = PX_L7_REASON_ENCODED_SLASH;
		force = true;
	}
	if (!force && j->ep->protocol == POL_PROTO_WEBSOCKET &&
	    (!r->req || px_l7_req_websocket(r->req) != PX_L7_WS_VALID)) {
		reason = PX_L7_REASON_WS_REQUIRED;
		force = true;
	}
	struct px_l7_verdict v = {0};
	if (!force) {
		struct px_l7_qparam qp[PX_TUN_QUERY_MAX];
		struct sv_err err = {0};
		int nq = r->query ? px_l7_query_parse(r->query, r->query_len, r->qbuf, r->qbuf_size,
						      qp, PX_TUN_QUERY_MAX, &err)
				  : 0;
		if (nq < 0) {
			sv_fmt(j->reason, sizeof(j->reason), "%s",
			       nq == -E2BIG ? "too many query parameters" : err.msg);
			j->close = true;
			return -EBADMSG;
		}
		const struct px_l7_request lr = {.method = r->method, .path = r->path, .query = qp,
						 .n_query = (size_t)nq};
		if (px_l7_evaluate(pol, q, &lr, &v) < 0) {
			sv_fmt(j->reason, sizeof(j->reason), "a policy glob could not be evaluated");
			j->close = true;
			return -EINVAL;
		}
		reason = v.allowed ? "" : v.reason;
	}
	j->decision = px_l7_decision(!force && v.allowed,
				     j->ep ? j->ep->enforcement : POL_ENFORCE_ENFORCE, force,
				     r->req && px_l7_req_has_upgrade_field(r->req));
	sv_fmt(j->reason, sizeof(j->reason), "%s", reason ? reason : "");
	return 0;
}

static void log_l7(struct px_tun *t, const char *decision, const char *method, const char *path,
		   const char *reason, const char *policy)
{
	char line[PX_L7_CANON_MAX + 1024];
	if (px_l7_log_request(line, sizeof(line), decision, method, t->host, t->port, path, NULL,
			      reason) < 0)
		sv_fmt(line, sizeof(line), "L7_REQUEST %s %s %s:%u", decision, method, t->host,
		       (unsigned)t->port);
	bool deny = !strcmp(decision, "deny");
	char rule[300];
	sv_fmt(rule, sizeof(rule), "%s,l7", policy ? policy : "-");
	sv_log_ocsf("HTTP:ACTIVITY", deny ? SV_SEV_MED : SV_SEV_INFO,
		    deny ? "DENIED" : "ALLOWED", "l7_request", line,
		    SV_KVS({"policy", rule}, {"engine", "supervisor"}));
}

/* An L7 denial for PID 1's denial summaries (issue 15). */
static void report_l7(struct px_tun *t, const char *method, const char *path, const char *reason)
{
	if (!t->on_denial)
		return;
	struct px_denial d = {.host = t->host, .port = t->port, .binary = t->exe,
			      .reason = reason ? reason : "", .stage = "l7", .l7_method = method,
			      .l7_path = path};
	for (size_t i = 0; i < t->n_anc && d.n_ancestors < PX_DENIAL_ANCESTORS_MAX; i++)
		d.ancestors[d.n_ancestors++] = t->anc_ptr[i];
	t->on_denial(&d, t->denial_data);
}

/* Parse, judge and forward (or answer) the request whose head is the first @hl bytes of cin. */
static void handle_request(struct px_tun *t, size_t hl)
{
	struct px_l7_req *req = t->req;
	const char *head = t->cin.b + t->cin.off;
	struct sv_err err = {0};
	t->request_num++;
	if (px_l7_req_parse(head, hl, req, &err) < 0) {
		reject(t, err.msg);
		t->mode = PX_TM_CLOSING;
		return;
	}
	sv_fmt(t->method, sizeof(t->method), "%.*s", (int)(req->method_len < 31 ? req->method_len : 31),
	       req->method);
	t->head_method = req->method_len == 4 && !memcmp(req->method, "HEAD", 4);
	t->wants_upgrade = px_l7_req_wants_upgrade(req);
	enum px_l7_ws ws = px_l7_req_websocket(req);
	t->ws_upgrade = ws == PX_L7_WS_VALID;

	char *canon = t->scratch + SCR_CANON, *red = t->scratch + SCR_RED;
	struct px_l7_canon cn = {0};
	enum px_l7_path_err why = PX_L7_PATH_OK;
	int cr = px_l7_path_canon(req->target, req->target_len, true, canon, PX_L7_CANON_MAX, &cn,
				  &why);
	if (cr < 0 && !t->inspect) {
		memset(&cn, 0, sizeof(cn)); /* passthrough: forwarded as received */
		sv_fmt(canon, PX_L7_CANON_MAX, "/");
	}
	if (cr == 0 && px_l7_redact_path(canon, cn.path_len, red, PX_L7_CANON_MAX + 256) < 0)
		sv_fmt(red, PX_L7_CANON_MAX, "/[CREDENTIAL]");
	else if (cr < 0)
		sv_fmt(red, PX_L7_CANON_MAX, "/");

	const struct pol_endpoint *chosen = NULL;
	const char *policy = NULL;
	if (!t->inspect) {
		char line[PX_L7_CANON_MAX + 512];
		sv_fmt(line, sizeof(line), "HTTP_REQUEST %s %s:%u%s credentials_injected=false "
		       "request_num=%u", t->method, t->host, (unsigned)t->port, red, t->request_num);
		sv_log_ocsf("HTTP:ACTIVITY", SV_SEV_INFO, "ALLOWED", "http_request", line,
			    SV_KVS({"engine", "supervisor"}));
	} else {
		if (!px_l7_req_authority_ok(req, t->host, t->port, t->tls)) {
			char buf[512];
			log_l7(t, "deny", t->method, red, "request authority mismatch", NULL);
			report_l7(t, t->method, red, "request authority mismatch");
			answer_close(t, buf, px_l7_resp_authority_mismatch(buf, sizeof(buf)));
			return;
		}
		const struct px_query q = {.host = t->host, .port = t->port, .exe = t->exe,
					   .ancestors = t->anc_ptr, .n_ancestors = t->n_anc,
					   .endpoint_only = t->endpoint_only};
		const struct px_l7_judge_req jr = {
		    .method = t->method, .path = red, .canon = canon, .canon_len = cn.path_len,
		    .canon_err = cr < 0 ? px_l7_path_strerror(why) : NULL, .query = cn.query,
		    .query_len = cn.query_len, .req = req, .qbuf = t->scratch + SCR_QUERY,
		    .qbuf_size = PX_L7_HEAD_MAX};
		struct px_l7_judgement j;
		if (px_l7_judge(t->policy ? &t->policy->pol : NULL, &q, &jr, &j) < 0) {
			reject(t, j.reason);
			t->mode = PX_TM_CLOSING;
			return;
		}
		chosen = j.ep;
		policy = j.policy;
		const char *decision = j.decision, *reason = j.reason;
		log_l7(t, decision, t->method, red, reason, policy);
		if (!strcmp(decision, "deny")) {
			report_l7(t, t->method, red, reason);
			const struct px_l7_deny d = {.policy = policy ? policy : "",
						     .method = t->method, .path = red,
						     .host = t->host, .port = t->port,
						     .binary = t->exe, .reason = reason};
			char *buf = t->scratch + SCR_QUERY; /* the query is no longer needed */
			answer_close(t, buf, px_l7_resp_deny(buf, PX_L7_HEAD_MAX, &d));
			return;
		}
	}

	/* Forward: the upstream head, then the credentials step. */
	px_tbuf_compact(&t->uout);
	char *out = t->uout.b + t->uout.len;
	size_t room = t->uout.cap - t->uout.len;
	int n = px_l7_req_rewrite(req, &cn, canon, t->ws_upgrade && t->inspect, out, room);
	if (n < 0) {
		reject(t, "request head too large to forward");
		t->mode = PX_TM_CLOSING;
		return;
	}
	/* credentials: rewrite here */
	const struct px_l7_cred_req crq = {.host = t->host, .port = t->port, .tls = t->tls,
					   .req = req, .ep = chosen, .redacted_path = red};
	int m = px_l7_cred_rewrite(&crq, out, (size_t)n, room, &err);
	if (m < 0) {
		sv_warn(COMP, "credential_rewrite_failed", "%s:%u: %s", t->host, (unsigned)t->port,
			err.msg);
		if (m == -EACCES)
			json_close(t, 403, "Forbidden", "credential_endpoint_mismatch",
				   "Credential is not authorized for this request endpoint");
		else
			json_close(t, 500, "Internal Server Error", "credential_unavailable",
				   "Credential placeholder could not be resolved");
		return;
	}
	t->uout.len += (size_t)m;
	t->cin.off += hl;
	px_l7_body_init(&t->body, req->body, req->content_length);
	t->mode = PX_TM_REQ_BODY;
}

/* ---------------------------------------------------------------------------- the steps */

/* Read from @s into @b's free space. true on progress; *@close on error. */
static bool fill(struct px_tun *t, struct px_tside *s, struct px_tbuf *b, bool *close)
{
	px_tbuf_compact(b);
	if (b->len >= b->cap || s->eof)
		return false;
	ssize_t n = px_tside_read(t, s, b->b + b->len, b->cap - b->len);
	if (n == -EAGAIN)
		return false;
	if (n < 0) {
		*close = true;
		return false;
	}
	b->len += (size_t)n;
	return true; /* bytes, or EOF newly seen */
}

static bool req_head(struct px_tun *t, bool *close)
{
	if (t->uout.off != t->uout.len)
		return false; /* the previous request still goes out */
	size_t avail = t->cin.len - t->cin.off;
	int hl = px_l7_head_scan(t->cin.b + t->cin.off, avail);
	if (hl < 0) {
		reject(t, "request head exceeds 16384 bytes");
		*close = true;
		return false;
	}
	if (hl > 0) {
		if (t->current && *t->current != t->policy) {
			/* §2.6: a reloaded policy ends the tunnel at the request boundary. */
			sv_info(COMP, "tunnel_policy_reloaded",
				"%s:%u: policy changed: tunnel closed before the next request",
				t->host, (unsigned)t->port);
			*close = true;
			return false;
		}
		handle_request(t, (size_t)hl);
		return true;
	}
	if (t->cl.eof) {
		*close = true; /* the agent closed between requests, or mid-head */
		return false;
	}
	return fill(t, &t->cl, &t->cin, close);
}

/* Move body bytes from @in to @out through t->body. 1 complete, 0 more, -1 bad framing. */
static int body_move(struct px_tun *t, struct px_tbuf *in, struct px_tbuf *out, bool *progress)
{
	px_tbuf_compact(out);
	size_t avail = in->len - in->off, room = out->cap - out->len;
	size_t len = avail < room ? avail : room, used = 0;
	int r = px_l7_body_feed(&t->body, in->b + in->off, len, &used);
	if (r < 0)
		return -1;
	if (used) {
		memcpy(out->b + out->len, in->b + in->off, used);
		out->len += used;
		in->off += used;
		*progress = true;
	}
	return r;
}

static bool req_body(struct px_tun *t, bool *close)
{
	bool progress = false;
	int r = body_move(t, &t->cin, &t->uout, &progress);
	if (r < 0) {
		reject(t, "malformed chunked request body");
		*close = true;
		return false;
	}
	if (r == 1) {
		t->mode = PX_TM_RESP_HEAD;
		return true;
	}
	if (t->cin.off == t->cin.len) {
		if (t->cl.eof) {
			*close = true;
			return false;
		}
		progress = fill(t, &t->cl, &t->cin, close) || progress;
	}
	return progress;
}

static void after_response(struct px_tun *t)
{
	t->uin.off = t->uin.len = 0; /* bytes past a framed response are dropped */
	t->mode = t->keep_alive ? PX_TM_REQ_HEAD : PX_TM_CLOSING;
}

static bool resp_head(struct px_tun *t, bool *close)
{
	size_t avail = t->uin.len - t->uin.off;
	int hl = px_l7_resp_scan(t->uin.b + t->uin.off, avail);
	if (hl < 0) {
		reject(t, "response head exceeds 16384 bytes");
		*close = true;
		return false;
	}
	if (hl == 0) {
		if (t->up.eof) {
			t->mode = PX_TM_CLOSING; /* upstream closed without a response */
			return true;
		}
		return fill(t, &t->up, &t->uin, close);
	}
	px_tbuf_compact(&t->cout);
	if (t->cout.cap - t->cout.len < (size_t)hl + 64)
		return false; /* wait for the client to drain */
	const char *head = t->uin.b + t->uin.off;
	struct px_l7_resp resp;
	struct sv_err err = {0};
	if (px_l7_resp_parse(head, (size_t)hl, &resp, &err) < 0) {
		reject(t, err.msg);
		*close = true;
		return false;
	}
	struct px_l7_resp_plan plan;
	px_l7_resp_plan(&resp, t->method, strlen(t->method), t->wants_upgrade, &plan);
	if (plan.action == PX_L7_RESP_DROP) {
		*close = true;
		return false;
	}
	if (plan.add_close) {
		int n = px_l7_resp_head_close(head, (size_t)hl, t->cout.b + t->cout.len,
					      t->cout.cap - t->cout.len);
		if (n < 0) {
			*close = true;
			return false;
		}
		t->cout.len += (size_t)n;
	} else {
		to_client(t, head, (size_t)hl);
	}
	t->uin.off += (size_t)hl;
	t->keep_alive = plan.keep_alive;
	switch (plan.action) {
	case PX_L7_RESP_UPGRADE:
		/* Relayed raw from now on; what is already buffered goes first. */
		to_client(t, t->uin.b + t->uin.off, t->uin.len - t->uin.off);
		t->uin.off = t->uin.len = 0;
		px_tbuf_compact(&t->uout);
		memcpy(t->uout.b + t->uout.len, t->cin.b + t->cin.off, t->cin.len - t->cin.off);
		t->uout.len += t->cin.len - t->cin.off;
		t->cin.off = t->cin.len = 0;
		t->mode = PX_TM_RAW;
		break;
	case PX_L7_RESP_HEAD_ONLY:
	case PX_L7_RESP_EMPTY:
		after_response(t);
		break;
	case PX_L7_RESP_LENGTH:
	case PX_L7_RESP_CHUNKED:
		px_l7_body_init(&t->body, resp.body, resp.content_length);
		t->mode = PX_TM_RESP_BODY;
		break;
	case PX_L7_RESP_EOF_IDLE:
		t->deadline = px_tun_now_ms() + PX_TUN_EOF_IDLE_MS;
		px_tun_timer(t, PX_TUN_EOF_IDLE_MS);
		t->mode = PX_TM_RESP_EOF;
		break;
	case PX_L7_RESP_EOF:
		t->deadline = 0;
		t->mode = PX_TM_RESP_EOF;
		break;
	case PX_L7_RESP_DROP:
		break;
	}
	return true;
}

static bool resp_body(struct px_tun *t, bool *close)
{
	bool progress = false;
	int r = body_move(t, &t->uin, &t->cout, &progress);
	if (r < 0) {
		reject(t, "malformed chunked response body");
		*close = true;
		return false;
	}
	if (r == 1) {
		after_response(t);
		return true;
	}
	if (t->uin.off == t->uin.len) {
		if (t->up.eof) {
			t->mode = PX_TM_CLOSING;
			return true;
		}
		progress = fill(t, &t->up, &t->uin, close) || progress;
	}
	return progress;
}

static bool resp_eof(struct px_tun *t, bool *close)
{
	bool progress = false;
	size_t avail = t->uin.len - t->uin.off;
	if (avail) {
		px_tbuf_compact(&t->cout);
		size_t room = t->cout.cap - t->cout.len;
		size_t n = avail < room ? avail : room;
		to_client(t, t->uin.b + t->uin.off, n);
		t->uin.off += n;
		progress = n > 0;
	}
	if (t->uin.off == t->uin.len) {
		if (t->up.eof) {
			t->mode = PX_TM_CLOSING;
			return true;
		}
		if (fill(t, &t->up, &t->uin, close)) {
			progress = true;
			if (t->deadline)
				t->deadline = px_tun_now_ms() + PX_TUN_EOF_IDLE_MS;
		}
	}
	return progress;
}

bool px_tun_http_step(struct px_tun *t, bool *close)
{
	switch (t->mode) {
	case PX_TM_REQ_HEAD:
		return req_head(t, close);
	case PX_TM_REQ_BODY:
		return req_body(t, close);
	case PX_TM_RESP_HEAD:
		return resp_head(t, close);
	case PX_TM_RESP_BODY:
		return resp_body(t, close);
	case PX_TM_RESP_EOF:
		return resp_eof(t, close);
	default:
		return false;
	}
}
