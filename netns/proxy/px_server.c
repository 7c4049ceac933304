/* The egress proxy on the event loop: accept agent connections on the listener made inside the
 * agent's namespace, read one request head, decide on a worker thread (identity, integrity,
 * policy, resolution, SSRF), dial the validated addresses from the supervisor's namespace, relay.
 *
 * Runs in the unprivileged proxy process, identity and integrity answered by PID 1
 * (px_server_new_remote); unit tests run it in-process with both on workers (px_server_new).
 * Never blocks the loop: identity, hashing and DNS run on workers; sockets are non-blocking and
 * relayed (px_relay.c) with splice(2) or through the tunnel (px_tunnel.c).
 */
#include "netns/proxy/px_server.h"
#include "netns/proxy/px_server_int.h"

#include <fcntl.h>
#include <netdb.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>

#include "netns/netns.h"
#include "netns/proxy/l7/px_l7.h"
#include "netns/proxy/px_http.h"
#include "netns/proxy/px_creator.h"
#include "netns/proxy/px_ident.h"
#include "netns/proxy/px_ipc.h"
#include "netns/proxy/px_policy.h"
#include "netns/proxy/px_snap.h"
#include "netns/proxy/px_ssrf.h"
#include "netns/proxy/px_tofu.h"
#include "netns/proxy/px_tunnel.h"
#include "netns/proxy/px_upstream.h"
#include "supervisor/log.h"
#include "supervisor/loop.h"
#include "supervisor/policy/policy.h"
#include "supervisor/worker.h"

#define COMP "proxy"

/* The identity goes back to the spares as soon as the decision is logged: a dial can take
 * minutes against an unreachable upstream, and the spares are what keeps decisions from
 * allocating. */
static void ident_release(struct px_parse *p)
{
	struct px_server *s = p->srv;
	if (p->ident && s->n_spare < PX_IDENT_SPARE)
		s->spare[s->n_spare++] = p->ident;
	else
		free(p->ident);
	p->ident = NULL;
	p->ident_ok = false;
	px_creator_release(&p->cr);
	p->creator = PX_CREATOR_MISSING;
}

void px_parse_free(struct px_parse *p)
{
	if (!p)
		return;
	struct px_server *s = p->srv;
	ident_release(p);
	px_snap_put(p->policy);
	free(p->l7_path);
	p->l7_path = NULL;
	if (s->n_parse_spare < PX_CONN_SPARE)
		s->parse_spare[s->n_parse_spare++] = p;
	else
		free(p);
}

/* Zeroed, as calloc would give it; the head buffer is left as it was (only the bytes below
 * len are ever read). */
static struct px_parse *parse_new(struct px_server *s)
{
	if (!s->n_parse_spare)
		return calloc(1, sizeof(struct px_parse));
	struct px_parse *p = s->parse_spare[--s->n_parse_spare];
	memset(p, 0, offsetof(struct px_parse, head));
	memset((char *)p + offsetof(struct px_parse, head) + sizeof(p->head), 0,
	       sizeof(*p) - offsetof(struct px_parse, head) - sizeof(p->head));
	return p;
}

static struct px_conn *conn_new(struct px_server *s)
{
	if (s->n_conn_spare && s->conn_spare[s->n_conn_spare - 1]->retired != s->loop->batch) {
		struct px_conn *c = s->conn_spare[--s->n_conn_spare];
		memset(c, 0, sizeof(*c));
		return c;
	}
	return calloc(1, sizeof(struct px_conn));
}

/* ------------------------------------------------------------------------------------ logs */

void px_log_decision(struct px_conn *c, bool allowed, const char *reason)
{
	struct px_parse *p = c->p;
	/* Executable paths are the agent's choice: each is printed as one token (quoted when it
	 * holds anything but plain path bytes), so a name like "/tmp/x -> good:443 [policy:a"
	 * cannot pass for the rest of the line. */
	char dst[PX_HOST_MAX + 16], exe[PX_IDENT_PATH_MAX + 8], who[sizeof(exe) + 16];
	char anc[1024];
	sv_fmt(dst, sizeof(dst), "%s:%u", p->auth.host, (unsigned)p->auth.port);
	if (p->ident_ok) {
		sv_fmt_token(exe, sizeof(exe), p->ident->exe.path);
		sv_fmt(who, sizeof(who), "%s(%d)", exe, (int)p->ident->exe.pid);
	} else {
		sv_fmt(who, sizeof(who), "-");
	}
	size_t n = 0;
	anc[0] = '\0';
	for (size_t i = 0; p->ident_ok && i < p->ident->n_ancestors && n < sizeof(anc) - 1; i++) {
		sv_fmt_token(exe, sizeof(exe), p->ident->ancestors[i].path);
		n += sv_fmt(anc + n, sizeof(anc) - n, "%s%s", i ? " -> " : "", exe);
	}
	char msg[sizeof(who) + PX_HOST_MAX + 64];
	sv_fmt(msg, sizeof(msg), "%s -> %s", who, dst);
	const char *rule = allowed && p->dec.rule ? p->dec.rule->name : "-";
	sv_log_ocsf("NET:OPEN", allowed ? SV_SEV_INFO : SV_SEV_MED, allowed ? "ALLOWED" : "DENIED",
		    allowed ? "proxy_allowed" : "proxy_denied", msg,
		    SV_KVS({"policy", rule}, {"engine", "supervisor"},
			   {"method", p->is_connect ? "CONNECT" : "forward"},
			   {"ancestors", anc[0] ? anc : "-"}, {"reason", reason ? reason : "-"}));
}

/* ----------------------------------------------------------------------------- responses */

/* Best effort: responses are small and the socket buffer is empty at this point. */
void px_conn_reply_and_close(struct px_conn *c, const char *buf, size_t len)
{
	if (len)
		(void)send(c->cw.fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	px_conn_close(c);
}

uint64_t px_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A request refused before any decision (malformed head, unparsable target, bare-LF head,
 * head timeout): a JSON answer naming the fault, and an OCSF line saying the same. */
static void conn_refuse(struct px_conn *c, int status, const char *error, const char *detail,
			const char *reason)
{
	char st[8];
	sv_fmt(st, sizeof(st), "%d", status);
	sv_log_ocsf("NET:OPEN", SV_SEV_MED, "DENIED", "proxy_bad_request", detail,
		    SV_KVS({"engine", "supervisor"}, {"status", st}, {"error", error},
			   {"reason", reason ? reason : "-"}));
	char buf[PX_RESP_MAX];
	int n = px_http_resp_json(buf, sizeof(buf), status, error, detail, reason);
	if (n > 0)
		px_conn_reply_and_close(c, buf, (size_t)n);
	else
		px_conn_reply_and_close(c, PX_HTTP_400, strlen(PX_HTTP_400));
}

/* The denial event (contract §8) for the aggregator in PID 1; @l7_method and @l7_path (NULL:
 * none) when an L7 rule denied a forward-proxy request. */
static void report_denial_l7(struct px_conn *c, bool ssrf, const char *reason,
			     const char *l7_method, const char *l7_path)
{
	struct px_parse *p = c->p;
	struct px_server *s = c->srv;
	if (!s->on_denial)
		return;
	struct px_denial d = {
	    .host = p->auth.host,
	    .port = p->auth.port,
	    .binary = p->ident_ok ? p->ident->exe.path : "",
	    .reason = reason ? reason : "",
	    .stage = ssrf ? "ssrf" : l7_path ? "l7" : p->is_connect ? "connect" : "forward",
	    .l7_method = l7_path ? l7_method : NULL,
	    .l7_path = l7_method ? l7_path : NULL,
	};
	for (size_t i = 0; p->ident_ok && i < p->ident->n_ancestors &&
			   d.n_ancestors < PX_DENIAL_ANCESTORS_MAX; i++)
		d.ancestors[d.n_ancestors++] = p->ident->ancestors[i].path;
	px_server_denial(s, &d);
}

static void report_denial(struct px_conn *c, bool ssrf, const char *reason)
{
	report_denial_l7(c, ssrf, reason, NULL, NULL);
}

static void conn_deny(struct px_conn *c, bool ssrf, const char *reason)
{
	struct px_parse *p = c->p;
	char buf[PX_RESP_MAX];
	int n;
	px_log_decision(c, false, reason);
	report_denial(c, ssrf, reason);
	if (ssrf && p->is_connect) {
		n = px_http_resp_connect_ssrf(buf, sizeof(buf), &p->auth, reason);
	} else if (ssrf) {
		n = px_http_resp_forward_ssrf(buf, sizeof(buf), &p->req, &p->auth, reason);
	} else if (p->is_connect) {
		n = px_http_resp_connect_denied(buf, sizeof(buf), &p->auth, reason);
	} else {
		n = px_http_resp_forward_denied(buf, sizeof(buf), &p->req, &p->uri);
	}
	px_conn_reply_and_close(c, buf, n > 0 ? (size_t)n : 0);
}

/* --------------------------------------------------------------------------- the decision */

/* Identity (unless PID 1 answered it already) and integrity: false with p->reason set when the
 * request is denied. */
static bool decide_ident(struct px_parse *p)
{
	struct sv_err err = {0};
	if (p->ident_remote)
		return true;
	if (p->entry <= 0) {
		sv_fmt(p->reason, sizeof(p->reason), "%s", PX_IDENT_REASON_NOT_SPAWNED);
		return false;
	}
	if (!p->ident) {
		sv_fmt(p->reason, sizeof(p->reason), "out of memory");
		return false;
	}
	if (px_ident_resolve(p->ictx, p->entry, (struct sockaddr *)&p->peer, p->peer_len,
			     (struct sockaddr *)&p->local, p->local_len, p->ident, &err) < 0) {
		sv_fmt(p->reason, sizeof(p->reason), "%s",
		       p->ident->reason[0] ? p->ident->reason : err.msg);
		return false;
	}
	p->ident_ok = true;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	p->creator = px_creator_take(p->ident->inode, p->ident->cookie,
				     (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000,
				     &p->cr);
	unsigned char digest[PX_SHA256_LEN];
	/* Only binaries some rule could allow are hashed and pinned (issue 17). */
	if (px_tofu_verify_ident_policy(p->tofu, p->ident, p->policy ? &p->policy->pol : NULL,
					p->endpoint_only, digest, &err) < 0) {
		sv_fmt(p->reason, sizeof(p->reason), "%s", err.msg);
		return false;
	}
	return true;
}

static void decide_run(struct sv_job *job)
{
	struct px_parse *p = (struct px_parse *)job;
	p->reason[0] = '\0';
	p->ssrf = PX_SSRF_ALLOW;
	if (!decide_ident(p))
		return;
	const char *anc[PX_IDENT_ANCESTORS_MAX];
	for (size_t i = 0; i < p->ident->n_ancestors; i++)
		anc[i] = p->ident->ancestors[i].path;
	struct px_query q = {
		.host = p->auth.host,
		.port = p->auth.port,
		.exe = p->ident->exe.path,
		.ancestors = anc,
		.n_ancestors = p->ident->n_ancestors,
		.endpoint_only = p->endpoint_only,
	};
	px_policy_decide(p->policy ? &p->policy->pol : NULL, &q, &p->dec);
	if (!p->dec.allow) {
		sv_fmt(p->reason, sizeof(p->reason), "%s", p->dec.reason);
		return;
	}
	/* Issue 17 item 1: the binary that connected must be allowed here too, however the socket
	 * travelled since (px_creator.h). */
	if (!p->endpoint_only && !px_creator_allowed(p->creator, &p->cr,
						     p->policy ? &p->policy->pol : NULL,
						     p->auth.host, p->auth.port, p->reason,
						     sizeof(p->reason)))
		return;
	if (!p->is_connect && p->dec.inspect && px_forward_judge(p, &q) < 0)
		return;
	struct px_ssrf_plan plan;
	p->ssrf = px_ssrf_plan(p->auth.host, p->auth.port, p->dec.endpoint, p->dec.exact_declared,
			       &plan, p->detail, sizeof(p->detail));
	if (p->ssrf != PX_SSRF_ALLOW)
		return;
	struct px_ssrf_ip resolved[PX_ADDRS_MAX];
	size_t n = 0;
	if (plan.mode == PX_SSRF_IP_LITERAL) {
		resolved[n++] = plan.literal;
	} else {
		/* Blocking resolution: this is why the decision runs on a worker. */
		struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
		if (getaddrinfo(p->auth.host, NULL, &hints, &res) != 0)
			res = NULL;
		for (struct addrinfo *ai = res; ai && n < PX_ADDRS_MAX; ai = ai->ai_next) {
			if (px_ssrf_ip_from_sockaddr(ai->ai_addr, ai->ai_addrlen, &resolved[n]) == 0)
				n++;
		}
		if (res)
			freeaddrinfo(res);
	}
	p->ssrf = px_ssrf_filter(&plan, p->auth.host, resolved, n, p->addrs, &p->n_addrs,
				 p->detail, sizeof(p->detail));
}

static void ident_ask(struct px_server *s, struct px_parse *p);

static void decide_done(struct sv_loop *loop, struct sv_job *job)
{
	(void)loop;
	struct px_parse *p = (struct px_parse *)job;
	struct px_conn *c = p->conn;
	if (!c) { /* the client went away meanwhile */
		px_parse_free(p);
		return;
	}
	c->state = PX_CONNECTING; /* from here the connection owns its parse state again */
	if (p->l7_bad) {
		conn_refuse(c, 400, "bad_request", "request rejected before policy evaluation",
			    p->reason);
		return;
	}
	if (p->l7_deny) {
		char buf[PX_RESP_MAX + PX_L7_CANON_MAX];
		char method[32];
		sv_fmt(method, sizeof(method), "%.*s",
		       (int)(p->req.method_len < 31 ? p->req.method_len : 31), p->req.method);
		int n = px_l7_resp_forward_deny(buf, sizeof(buf), method, p->auth.host, p->auth.port,
						p->l7_path ? p->l7_path : "/", p->reason);
		report_denial_l7(c, false, p->reason, method, p->l7_path ? p->l7_path : "/");
		px_conn_reply_and_close(c, buf, n > 0 ? (size_t)n : 0);
		return;
	}
	if (p->reason[0]) {
		conn_deny(c, false, p->reason);
		return;
	}
	if (p->ssrf != PX_SSRF_ALLOW) {
		sv_debug(COMP, "ssrf_detail", "%s", p->detail);
		conn_deny(c, true, px_ssrf_reason(p->ssrf));
		return;
	}
	struct px_server *s = c->srv;
	if (p->is_connect && !p->dec.tls_skip && !s->tls && (s->tls_strict || p->dec.inspect)) {
		/* l7 contract §1.2: refused before the 200, nothing dialled. */
		px_log_decision(c, false, "TLS termination unavailable (CA initialization failed)");
		char buf[PX_RESP_MAX];
		int n = px_http_resp_json(buf, sizeof(buf), 503, "tls_termination_unavailable",
					  PX_TLS_UNAVAILABLE_DETAIL, NULL);
		px_conn_reply_and_close(c, buf, n > 0 ? (size_t)n : 0);
		return;
	}
	if (!p->is_connect && p->dec.inspect && !p->l7_judged) {
		conn_deny(c, false, "forward-proxy requests to a layer-7 endpoint are not inspected "
				    "by this supervisor yet: use CONNECT");
		return;
	}
	px_log_decision(c, true, NULL);
	if (!(p->is_connect && p->dec.inspect))
		ident_release(p); /* an inspected tunnel judges each request by this identity */
	px_conn_dial_next(c);
}

/* ---------------------------------------------------------------------------- the request */

/* http://policy.local (contract §8 "Forward HTTP"), answered before any policy decision, as
 * OpenShell does: another scheme or port is refused; the agent proposal API itself is off in
 * this build (the gateway setting agent_policy_proposals_enabled is not read yet), so every
 * route answers OpenShell's feature_disabled 404. */
static void policy_local(struct px_conn *c)
{
	struct px_parse *p = c->p;
	char buf[PX_RESP_MAX];
	int n;
	if (p->uri.scheme != PX_SCHEME_HTTP || p->uri.auth.port != 80)
		n = px_http_resp_json(buf, sizeof(buf), 400, "invalid_policy_local_scheme",
				      "Use http://policy.local only", NULL);
	else
		n = px_http_resp_json(buf, sizeof(buf), 404, "feature_disabled",
				      "agent-driven policy proposals are not enabled in this "
				      "sandbox; set the `agent_policy_proposals_enabled` setting "
				      "to true to enable",
				      NULL);
	px_conn_reply_and_close(c, buf, n > 0 ? (size_t)n : 0);
}

static void conn_parse(struct px_conn *c)
{
	struct px_parse *p = c->p;
	struct sv_err err = {0};
	if (px_http_parse_head(p->head, p->head_len, &p->req, &err) < 0) {
		conn_refuse(c, 400, "bad_request", "malformed request head", err.msg);
		return;
	}
	p->is_connect = p->req.is_connect;
	if (p->is_connect) {
		if (px_http_parse_connect_target(p->req.target, p->req.target_len, &p->auth, &err) <
		    0) {
			/* Upstream closes silently (§8); a client deserves to know why. */
			char detail[320];
			int tl = p->req.target_len > 256 ? 256 : (int)p->req.target_len;
			sv_fmt(detail, sizeof(detail), "CONNECT %.*s%s is not host:port", tl,
			       p->req.target, p->req.target_len > 256 ? "..." : "");
			conn_refuse(c, 400, "invalid_connect_target", detail, err.msg);
			return;
		}
	} else {
		int r = px_http_parse_forward_target(p->req.target, p->req.target_len, &p->uri, &err);
		if (r == 0 && strcmp(p->uri.auth.host, "policy.local") == 0) {
			policy_local(c);
			return;
		}
		if (r == 0 && p->uri.scheme == PX_SCHEME_HTTPS) {
			px_conn_reply_and_close(c, PX_HTTP_400_HTTPS, strlen(PX_HTTP_400_HTTPS));
			return;
		}
		if (r < 0 || p->uri.scheme != PX_SCHEME_HTTP) {
			char buf[PX_RESP_MAX];
			int n = r == 0 ? px_http_resp_unsupported_scheme(buf, sizeof(buf)) : -1;
			if (n > 0)
				px_conn_reply_and_close(c, buf, (size_t)n);
			else
				conn_refuse(c, 400, "bad_request", "invalid forward-proxy target",
					    err.msg);
			return;
		}
		p->auth = p->uri.auth;
	}
	c->state = PX_DECIDING;
	sv_loop_del(c->srv->loop, &c->cw); /* nothing more is read until the decision */
	p->entry = c->srv->entry;
	p->peer = c->peer;
	p->peer_len = c->peer_len;
	p->local = c->local;
	p->local_len = c->local_len;
	p->policy = c->srv->policy ? px_snap_get(c->srv->policy) : NULL;
	p->tofu = c->srv->tofu;
	p->ictx = &c->srv->ictx;
	struct px_server *s = c->srv;
	p->ident = s->n_spare ? s->spare[--s->n_spare] : malloc(sizeof(*p->ident));
	p->endpoint_only = c->srv->endpoint_only;
	p->job = (struct sv_job){.run = decide_run, .done = decide_done};
	if (s->has_remote) {
		ident_ask(s, p);
		return;
	}
	if (sv_workers_submit(c->srv->workers, &p->job) < 0) {
		px_conn_close(c);
		return;
	}
}

/* A deny decided on the loop, without a worker (identity refused or unavailable). */
static void decide_denied(struct px_parse *p, const char *reason)
{
	sv_fmt(p->reason, sizeof(p->reason), "%s", reason);
	decide_done(p->srv->loop, &p->job);
}

static void waiting_unlink(struct px_server *s, struct px_parse *p)
{
	if (p->wprev)
		p->wprev->wnext = p->wnext;
	else
		s->waiting = p->wnext;
	if (p->wnext)
		p->wnext->wprev = p->wprev;
	p->wprev = p->wnext = NULL;
	p->ident_wait = false;
}

static void ident_ask(struct px_server *s, struct px_parse *p)
{
	p->ident_remote = true;
	if (!p->ident) {
		decide_denied(p, "out of memory");
		return;
	}
	p->seq = ++s->next_seq;
	if (s->remote.ask(s->remote.ctx, p->seq, &p->peer, p->peer_len, &p->local,
			  p->local_len) < 0) {
		decide_denied(p, "failed to resolve peer binary: identity service unavailable");
		return;
	}
	p->ident_wait = true;
	p->wnext = s->waiting;
	if (s->waiting)
		s->waiting->wprev = p;
	s->waiting = p;
}

int px_server_ident_answer(struct px_server *s, uint32_t seq, const struct px_ident_answer *a)
{
	struct px_parse *p = s->waiting;
	while (p && p->seq != seq)
		p = p->wnext;
	if (!p)
		return -ENOENT;
	waiting_unlink(s, p);
	struct px_ident *id = p->ident;
	if (a->status == PX_IDENT_DENY_NONE) {
		decide_denied(p, a->reason);
		return 0;
	}
	id->exe.pid = a->pid;
	sv_fmt(id->exe.path, sizeof(id->exe.path), "%s", a->exe);
	id->n_ancestors = a->n_ancestors > PX_IDENT_ANCESTORS_MAX ? PX_IDENT_ANCESTORS_MAX
								   : a->n_ancestors;
	for (size_t i = 0; i < id->n_ancestors; i++)
		sv_fmt(id->ancestors[i].path, sizeof(id->ancestors[i].path), "%s",
		       a->ancestors[i]);
	p->ident_ok = true;
	p->creator = a->creator;
	if (a->creator == PX_CREATOR_FOUND &&
	    px_creator_from(&p->cr, a->creator_pid, a->creator_too_long, a->creator_exe,
			    a->creator_ancestors, a->n_creator_ancestors) < 0)
		p->creator = PX_CREATOR_MISSING; /* out of memory: denied as unrecorded */
	if (a->status != PX_IDENT_OK) {
		decide_denied(p, a->reason);
		return 0;
	}
	/* With identity answered, only name resolution blocks: an IP literal decides here,
	 * without another thread hop (the policy match is microseconds). */
	if (p->auth.kind != PX_HOST_NAME) {
		decide_run(&p->job);
		decide_done(s->loop, &p->job);
		return 0;
	}
	if (sv_workers_submit(s->workers, &p->job) < 0)
		px_conn_close(p->conn);
	return 0;
}

static void on_client(struct sv_loop *loop, struct sv_watch *w, uint32_t events)
{
	(void)loop;
	struct px_conn *c = w->data;
	if (c->state == PX_RELAY) {
		px_conn_relay_event(c, events);
		return;
	}
	if (c->state == PX_TUNNEL) {
		px_conn_tunnel_result(c, px_tun_event(c->tun, true, events));
		return;
	}
	struct px_parse *p = c->p;
	ssize_t n = recv(w->fd, p->head + p->len, PX_HEAD_MAX - p->len, MSG_DONTWAIT);
	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0) {
		px_conn_close(c);
		return;
	}
	p->len += (size_t)n;
	int end = px_http_head_end(p->head, p->len, &p->resume);
	if (end > 0) {
		p->head_len = (size_t)end;
		conn_parse(c);
	} else if (p->len >= PX_HEAD_MAX) {
		px_conn_reply_and_close(c, PX_HTTP_431, strlen(PX_HTTP_431));
	} else if (memmem(p->head, p->len, "\n\n", 2)) {
		/* A head ended by bare LFs would otherwise wait for a CRLFCRLF that never comes. */
		conn_refuse(c, 400, "bad_request", "malformed request head",
			    "request head lines must end in CRLF, not a bare LF");
	}
}

/* ---------------------------------------------------------------------------- connections */

void px_conn_close(struct px_conn *c)
{
	struct px_server *s = c->srv;
	px_tun_free(c->tun);
	c->tun = NULL;
	px_uphs_free(c->uph);
	c->uph = NULL;
	sv_loop_del(s->loop, &c->cw);
	sv_loop_del(s->loop, &c->uw);
	if (c->cw.fd >= 0)
		close(c->cw.fd);
	if (c->uw.fd >= 0)
		close(c->uw.fd);
	px_pipe_put(s, &c->c2u);
	px_pipe_put(s, &c->u2c);
	if (c->p) {
		if (c->state == PX_DECIDING && c->p->ident_wait) {
			waiting_unlink(s, c->p); /* a late answer finds nothing: ignored */
			px_parse_free(c->p);
		} else if (c->state == PX_DECIDING) {
			c->p->conn = NULL; /* the worker's result will be dropped */
		} else {
			px_parse_free(c->p);
		}
	}
	free(c->pre);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nconns--;
	/* Its watches may still be in this batch of events: reused only from the next batch. */
	if (s->n_conn_spare < PX_CONN_SPARE) {
		c->retired = s->loop->batch;
		s->conn_spare[s->n_conn_spare++] = c;
	} else {
		sv_loop_defer_free(s->loop, c);
	}
	if (!s->lw.added && s->backoff_ms == 0)
		(void)sv_loop_add(s->loop, &s->lw, EPOLLIN); /* below the limit again */
}

void px_head_timer_arm(struct px_server *s)
{
	if (!s->head_timer_armed && sv_timer_arm(&s->head_timer, PX_HEAD_SWEEP_MS, 0) == 0)
		s->head_timer_armed = true;
}

/* Answer 408 to every client still without a complete head past its deadline. */
static void on_head_timer(struct sv_loop *loop, struct sv_timer *t)
{
	(void)loop;
	struct px_server *s = t->data;
	s->head_timer_armed = false;
	uint64_t now = px_now_ms();
	bool waiting = false;
	struct px_conn *next;
	for (struct px_conn *c = s->conns; c; c = next) {
		next = c->next;
		if (c->uph && now >= c->head_deadline) { /* the upstream proxy never answered */
			sv_log_kv(SV_LOG_WARN, COMP, "upstream_proxy_failed",
				  "upstream proxy CONNECT failed",
				  SV_KVS({"host", c->p->auth.host}, {"error", "handshake timed out"}));
			px_conn_close(c);
			continue;
		}
		if (c->uph) {
			waiting = true;
			continue;
		}
		if (c->state != PX_HEAD)
			continue;
		if (now < c->head_deadline) {
			waiting = true;
			continue;
		}
		char reason[96];
		sv_fmt(reason, sizeof(reason), "no complete request head within %d ms",
		       PX_HEAD_TIMEOUT_MS);
		conn_refuse(c, 408, "request_timeout", "request head not received in time", reason);
	}
	if (waiting)
		px_head_timer_arm(s);
}

static void accept_pause(struct px_server *s, bool backoff)
{
	sv_loop_del(s->loop, &s->lw);
	if (!backoff)
		return;
	s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : PX_BACKOFF_MIN_MS;
	if (s->backoff_ms > PX_BACKOFF_MAX_MS)
		s->backoff_ms = PX_BACKOFF_MAX_MS;
	(void)sv_timer_arm(&s->backoff, s->backoff_ms, 0);
}

static void on_backoff(struct sv_loop *loop, struct sv_timer *t)
{
	struct px_server *s = t->data;
	if (!s->lw.added && s->nconns < PX_CONNS_MAX)
		(void)sv_loop_add(loop, &s->lw, EPOLLIN);
}

static void on_accept(struct sv_loop *loop, struct sv_watch *w, uint32_t events)
{
	(void)events;
	struct px_server *s = w->data;
	while (s->nconns < PX_CONNS_MAX) {
		struct sockaddr_storage peer;
		socklen_t peer_len = sizeof(peer);
		int fd = accept4(w->fd, (struct sockaddr *)&peer, &peer_len,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			int e = errno;
			if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
				sv_warn(COMP, "accept_backoff", "accept: %s: backing off", strerror(e));
				accept_pause(s, true); /* no spinning while fds are exhausted */
			} else if (e == EAGAIN) {
				s->backoff_ms = 0;
			}
			return;
		}
		struct px_conn *c = conn_new(s);
		struct px_parse *p = c ? parse_new(s) : NULL;
		if (!p) {
			free(c);
			close(fd); /* the client sees a reset rather than a hang */
			sv_warn(COMP, "accept_backoff", "accept: out of memory: backing off");
			accept_pause(s, true);
			return;
		}
		c->peer = peer;
		c->peer_len = peer_len;
		if (s->laddr_len) {
			memcpy(&c->local, &s->laddr, s->laddr_len);
			c->local_len = s->laddr_len;
		} else {
			c->local_len = sizeof(c->local);
			(void)getsockname(fd, (struct sockaddr *)&c->local, &c->local_len);
		}
		c->srv = s;
		c->p = p;
		p->conn = c;
		p->srv = s;
		c->uw.fd = -1;
		c->c2u.pipe[0] = c->c2u.pipe[1] = c->u2c.pipe[0] = c->u2c.pipe[1] = -1;
		c->cw = (struct sv_watch){.fd = fd, .fn = on_client, .data = c};
		c->head_deadline = px_now_ms() + PX_HEAD_TIMEOUT_MS;
		px_head_timer_arm(s);
		c->next = s->conns;
		if (s->conns)
			s->conns->prev = c;
		s->conns = c;
		s->nconns++;
		if (sv_loop_add(loop, &c->cw, EPOLLIN) < 0)
			px_conn_close(c);
	}
	accept_pause(s, false); /* at the limit: resume when a connection closes */
}

/* -------------------------------------------------------------------------------- public */

static bool laddr_is_specific(const struct sockaddr_storage *a, socklen_t len)
{
	if (a->ss_family == AF_INET && len >= sizeof(struct sockaddr_in))
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr != htonl(INADDR_ANY);
	if (a->ss_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct in6_addr *ip = &((const struct sockaddr_in6 *)a)->sin6_addr;
		return !IN6_IS_ADDR_UNSPECIFIED(ip) && !IN6_IS_ADDR_V4MAPPED(ip);
	}
	return false;
}

static int server_new(struct sv_loop *loop, int listen_fd, const struct pol_policy *policy,
		      bool relaxed, const struct px_ident_remote *remote, struct px_server **out,
		      struct sv_err *err)
{
	struct px_server *s = calloc(1, sizeof(*s));
	if (!s)
		return sv_err_set(err, ENOMEM, "proxy: out of memory");
	s->loop = loop;
	if (px_snap_new(policy, &s->policy) < 0) {
		free(s);
		return sv_err_set(err, ENOMEM, "proxy: out of memory");
	}
	s->endpoint_only = relaxed;
	int r = remote ? 0 : px_tofu_new(PX_TOFU_MAX_ENTRIES, &s->tofu);
	if (r < 0) {
		px_snap_put(s->policy);
		free(s);
		return sv_err_set(err, r, "proxy: fingerprint cache: %s", strerror(-r));
	}
	s->backoff.w.fd = -1;
	s->head_timer.w.fd = -1;
	if (remote) {
		s->has_remote = true;
		s->remote = *remote;
	} else {
		s->ictx.scope = getpid();
		struct sv_err derr = {0};
		if (px_diag_open(listen_fd, &s->ictx.diag, &derr) < 0)
			sv_info(COMP, "sock_diag_unavailable",
				"socket owners through /proc/<pid>/net/tcp: %s", derr.msg);
	}
	if ((r = sv_workers_new(loop, PX_WORKERS, &s->workers, err)) < 0) {
		px_tofu_free(s->tofu);
		px_diag_close(s->ictx.diag);
		px_snap_put(s->policy);
		free(s);
		return r;
	}
	if ((r = sv_timer_init(loop, &s->backoff, on_backoff, s)) < 0 ||
	    (r = sv_timer_init(loop, &s->head_timer, on_head_timer, s)) < 0) {
		px_server_free(s);
		return sv_err_set(err, r, "proxy: timerfd: %s", strerror(-r));
	}
	s->laddr_len = sizeof(s->laddr);
	if (getsockname(listen_fd, (struct sockaddr *)&s->laddr, &s->laddr_len) < 0 ||
	    !laddr_is_specific(&s->laddr, s->laddr_len))
		s->laddr_len = 0;
	s->lw = (struct sv_watch){.fd = listen_fd, .fn = on_accept, .data = s};
	if ((r = sv_loop_add(loop, &s->lw, EPOLLIN)) < 0) {
		px_server_free(s);
		return sv_err_set(err, r, "proxy: epoll: %s", strerror(-r));
	}
	if (s->endpoint_only)
		sv_warn(COMP, "binary_identity_relaxed",
			"OPENSHELL_NETWORK_BINARY_IDENTITY relaxes policy: binaries are not checked");
	*out = s;
	return 0;
}

int px_server_new(struct sv_loop *loop, int listen_fd, const struct pol_policy *policy,
		  struct px_server **out, struct sv_err *err)
{
	bool relaxed = px_binary_identity_is_relaxed(getenv("OPENSHELL_NETWORK_BINARY_IDENTITY"));
	return server_new(loop, listen_fd, policy, relaxed, NULL, out, err);
}

int px_server_new_remote(struct sv_loop *loop, int listen_fd, const struct pol_policy *policy,
			 bool relaxed, const struct px_ident_remote *remote, struct px_server **out,
			 struct sv_err *err)
{
	return server_new(loop, listen_fd, policy, relaxed, remote, out, err);
}

void px_server_set_policy(struct px_server *s, const struct pol_policy *policy)
{
	struct px_snap *next = NULL;
	if (px_snap_new(policy, &next) < 0)
		sv_error(COMP, "policy_swap_failed",
			 "out of memory copying the new policy: denying all egress");
	px_snap_put(s->policy); /* decisions in flight hold their own reference */
	s->policy = next;
	sv_info(COMP, "policy_set", "new connections decide with policy %s (%zu rules)",
		next && next->pol.source ? next->pol.source : "-", next ? next->pol.n_rules : 0);
}

void px_server_set_tls(struct px_server *s, struct px_tun_tls *tls, bool strict)
{
	s->tls = tls;
	s->tls_strict = strict;
}

void px_server_set_entrypoint(struct px_server *s, pid_t pid)
{
	s->entry = pid;
}

void px_server_set_upstream(struct px_server *s, struct px_upstream *u)
{
	px_upstream_free(s->upstream);
	s->upstream = u;
	if (u) {
		char d[512];
		px_upstream_describe(u, d, sizeof(d));
		sv_log_kv(SV_LOG_INFO, COMP, "upstream_proxy_set",
			  "egress goes through the upstream proxy", SV_KVS({"upstream", d}));
	}
}

void px_server_denial(struct px_server *s, const struct px_denial *d)
{
	if (s->on_denial && d->host && d->host[0] && d->port)
		s->on_denial(d, s->denial_data);
}

void px_server_set_denial_sink(struct px_server *s, px_denial_fn fn, void *data)
{
	s->on_denial = fn;
	s->denial_data = data;
}

void px_server_free(struct px_server *s)
{
	if (!s)
		return;
	while (s->conns)
		px_conn_close(s->conns);
	sv_loop_del(s->loop, &s->lw);
	sv_timer_close(s->loop, &s->backoff);
	sv_timer_close(s->loop, &s->head_timer);
	sv_workers_free(s->workers); /* delivers the pending decisions to closed connections */
	px_tofu_free(s->tofu);
	px_diag_close(s->ictx.diag);
	while (s->n_spare)
		free(s->spare[--s->n_spare]);
	while (s->n_parse_spare)
		free(s->parse_spare[--s->n_parse_spare]);
	while (s->n_pipe_spare) {
		s->n_pipe_spare--;
		close(s->pipe_spare[s->n_pipe_spare][0]);
		close(s->pipe_spare[s->n_pipe_spare][1]);
	}
	while (s->n_conn_spare) /* closed in this batch, maybe: their events may still come */
		sv_loop_defer_free(s->loop, s->conn_spare[--s->n_conn_spare]);
	px_snap_put(s->policy);
	px_upstream_free(s->upstream);
	free(s);
}
