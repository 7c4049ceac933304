/* The egress proxy on the event loop: accept agent connections on the listener made inside the
 * agent's namespace, read one request head, decide on a worker thread (identity, integrity,
 * policy, resolution, SSRF), dial the validated addresses from the supervisor's namespace, relay.
 *
 * Runs in the unprivileged proxy process, identity and integrity answered by PID 1
 * (px_server_new_remote); unit tests run it in-process with both on workers (px_server_new).
 * Never blocks the loop: identity, hashing and DNS run on workers; sockets are non-blocking and
 * relayed with splice(2) through a pipe per direction, so buffers stay bounded by the pipes.
 */
#include "netns/proxy/px_server.h"

#include <fcntl.h>
#include <netdb.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>

#include "netns/netns.h"
#include "netns/proxy/px_http.h"
#include "netns/proxy/px_creator.h"
#include "netns/proxy/px_ident.h"
#include "netns/proxy/px_ipc.h"
#include "netns/proxy/px_policy.h"
#include "netns/proxy/px_snap.h"
#include "netns/proxy/px_ssrf.h"
#include "netns/proxy/px_tofu.h"
#include "netns/proxy/px_upstream.h"
#include "supervisor/log.h"
#include "supervisor/loop.h"
#include "supervisor/policy/policy.h"
#include "supervisor/worker.h"

#define COMP "proxy"
#define PX_CONNS_MAX 4096         /* open client connections; beyond, accept waits */
#define PX_BACKOFF_MIN_MS 100     /* accept back-off on fd exhaustion, contract §8 */
#define PX_BACKOFF_MAX_MS 5000
#define PX_ADDRS_MAX 16           /* resolved addresses kept per destination */
#define PX_PIPE_CHUNK ((size_t)64 * 1024) /* one splice */
#define PX_WORKERS 4
/* Ours (§8 is silent): a client must complete its request head within this time after connecting,
 * or it gets 408 and is closed, so silent clients cannot pin connection slots. */
#define PX_HEAD_TIMEOUT_MS 10000
#define PX_HEAD_SWEEP_MS 1000
#define PX_IDENT_SPARE PX_WORKERS /* identities kept for reuse: one per busy worker */
/* Connection and parse state kept for reuse: allocating and freeing them per connection made
 * musl's allocator map and unmap their pages each time (a TLB shootdown on every CPU running
 * a worker). */
#define PX_CONN_SPARE 4

enum px_state { PX_HEAD, PX_DECIDING, PX_CONNECTING, PX_RELAY };

/* One direction of the relay: src → pipe → dst. */
struct px_dir {
	int pipe[2];
	size_t in_pipe; /* bytes spliced into the pipe and not yet out */
	bool src_eof;
	bool shut;      /* dst was shut down for writing */
};

struct px_conn {
	struct px_server *srv;
	struct px_conn *prev, *next;
	uint64_t retired; /* loop batch it was closed in, while on the spare list */
	struct sv_watch cw, uw; /* client, upstream */
	enum px_state state;
	uint64_t head_deadline; /* CLOCK_MONOTONIC ms, while state == PX_HEAD */
	struct sockaddr_storage peer, local;
	socklen_t peer_len, local_len;
	/* Until the upstream is connected (freed afterwards). */
	struct px_parse *p;
	/* Bytes to send upstream before relaying (forward head, early body or TLS bytes). */
	char *pre;
	size_t pre_len, pre_off;
	struct px_dir c2u, u2c;
	struct px_uphs *uph; /* the upstream proxy's CONNECT under way (px_upstream.c) */
};

/* Everything the decision needs and produces; lives only until the dial. */
struct px_parse {
	struct sv_job job;
	struct px_server *srv; /* for the loop thread only */
	struct px_conn *conn;
	char head[PX_HEAD_MAX + 1];
	size_t len, head_len, resume;
	struct px_http_req req;
	bool is_connect;
	struct px_http_authority auth;
	struct px_http_uri uri;
	/* What the worker reads: copied here, because the loop may close the connection while the
	 * decision runs; the worker never touches struct px_conn. */
	pid_t entry;
	struct sockaddr_storage peer, local;
	socklen_t peer_len, local_len;
	struct px_snap *policy; /* a reference taken at submit (NULL: deny all), put in parse_free */
	struct px_tofu *tofu;            /* thread-safe */
	const struct px_ident_ctx *ictx; /* thread-safe, lives as long as the server */
	bool endpoint_only;
	/* Worker results. The identity is large (64 ancestor paths): taken from the server's spares
	 * only for the decision, so idle connections stay small. */
	struct px_ident *ident;
	bool ident_ok;
	enum px_creator_state creator; /* who connected (issue 17 item 1), with @ident */
	struct px_creator cr;
	/* Identity from PID 1 (px_server_new_remote): asked on the loop, answered on the loop. */
	bool ident_remote;
	bool ident_wait; /* on the server's waiting list */
	uint32_t seq;
	struct px_parse *wprev, *wnext;
	struct px_decision dec;
	enum px_ssrf_verdict ssrf;
	char detail[512];
	struct px_ssrf_ip addrs[PX_ADDRS_MAX];
	size_t n_addrs, next_addr;
	char reason[PX_REASON_MAX];
	bool routed, via_upstream; /* px_upstream_route asked; dial the upstream proxy */
};

struct px_server {
	struct sv_loop *loop;
	struct sv_watch lw;
	struct sv_timer backoff;
	uint64_t backoff_ms;
	struct sv_timer head_timer; /* sweeps heads past PX_HEAD_TIMEOUT_MS */
	bool head_timer_armed;
	struct sv_workers *workers;
	struct px_snap *policy; /* what new requests decide with; NULL: deny all (copy failed) */
	struct px_tofu *tofu;
	struct px_ident_ctx ictx;
	struct px_ident *spare[PX_IDENT_SPARE]; /* loop thread only */
	size_t n_spare;
	struct px_conn *conn_spare[PX_CONN_SPARE]; /* newest last */
	size_t n_conn_spare;
	struct px_parse *parse_spare[PX_CONN_SPARE];
	size_t n_parse_spare;
	pid_t entry;
	bool endpoint_only;
	bool has_remote;
	struct px_ident_remote remote;
	uint32_t next_seq;
	struct px_parse *waiting; /* identity questions asked and not answered */
	unsigned nconns;
	struct px_conn *conns;
	struct px_upstream *upstream; /* NULL: dial directly (owned) */
	px_denial_fn on_denial; /* NULL: denials are only logged */
	void *denial_data;
};

static void conn_close(struct px_conn *c);

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

static void parse_free(struct px_parse *p)
{
	if (!p)
		return;
	struct px_server *s = p->srv;
	ident_release(p);
	px_snap_put(p->policy);
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

static void log_decision(struct px_conn *c, bool allowed, const char *reason)
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
static void conn_reply_and_close(struct px_conn *c, const char *buf, size_t len)
{
	if (len)
		(void)send(c->cw.fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	conn_close(c);
}

static uint64_t now_ms(void)
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
		conn_reply_and_close(c, buf, (size_t)n);
	else
		conn_reply_and_close(c, PX_HTTP_400, strlen(PX_HTTP_400));
}

/* The denial event (contract §8) for the aggregator in PID 1. */
static void report_denial(struct px_conn *c, bool ssrf, const char *reason)
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
	    .stage = ssrf ? "ssrf" : p->is_connect ? "connect" : "forward",
	};
	for (size_t i = 0; p->ident_ok && i < p->ident->n_ancestors &&
			   d.n_ancestors < PX_DENIAL_ANCESTORS_MAX; i++)
		d.ancestors[d.n_ancestors++] = p->ident->ancestors[i].path;
	px_server_denial(s, &d);
}

static void conn_deny(struct px_conn *c, bool ssrf, const char *reason)
{
	struct px_parse *p = c->p;
	char buf[PX_RESP_MAX];
	int n;
	log_decision(c, false, reason);
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
	conn_reply_and_close(c, buf, n > 0 ? (size_t)n : 0);
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

static void conn_dial_next(struct px_conn *c);
static void head_timer_arm(struct px_server *s);
static void ident_ask(struct px_server *s, struct px_parse *p);

static void decide_done(struct sv_loop *loop, struct sv_job *job)
{
	(void)loop;
	struct px_parse *p = (struct px_parse *)job;
	struct px_conn *c = p->conn;
	if (!c) { /* the client went away meanwhile */
		parse_free(p);
		return;
	}
	c->state = PX_CONNECTING; /* from here the connection owns its parse state again */
	if (p->reason[0]) {
		conn_deny(c, false, p->reason);
		return;
	}
	if (p->ssrf != PX_SSRF_ALLOW) {
		sv_debug(COMP, "ssrf_detail", "%s", p->detail);
		conn_deny(c, true, px_ssrf_reason(p->ssrf));
		return;
	}
	log_decision(c, true, NULL);
	ident_release(p);
	conn_dial_next(c);
}

/* ------------------------------------------------------------------------------ the relay */

static uint32_t want(const struct px_dir *in, const struct px_dir *out, bool pre_pending)
{
	/* Read from this fd while its direction's pipe has room; write while the other
	 * direction has bytes queued for it. */
	uint32_t ev = 0;
	if (!in->src_eof && in->in_pipe == 0 && !pre_pending)
		ev |= EPOLLIN;
	if (out->in_pipe > 0 || pre_pending)
		ev |= EPOLLOUT;
	return ev;
}

static void conn_rearm(struct px_conn *c)
{
	bool pre = c->pre_off < c->pre_len;
	uint32_t cev = want(&c->c2u, &c->u2c, false);
	uint32_t uev = want(&c->u2c, &c->c2u, false) | (pre ? EPOLLOUT : 0);
	if (pre)
		cev &= ~(uint32_t)EPOLLIN; /* the early bytes go first */
	(void)sv_loop_mod(c->srv->loop, &c->cw, cev);
	(void)sv_loop_mod(c->srv->loop, &c->uw, uev);
}

/* Move bytes src → pipe → dst. Returns -1 when the connection must close. */
static int pump(struct px_dir *d, int src, int dst)
{
	for (;;) {
		if (d->in_pipe > 0) {
			ssize_t n = splice(d->pipe[0], NULL, dst, NULL, d->in_pipe,
					   SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
			if (n < 0)
				return errno == EAGAIN ? 0 : -1;
			d->in_pipe -= (size_t)n;
			if (d->in_pipe > 0)
				return 0;
		}
		if (d->src_eof)
			break;
		ssize_t n = splice(src, NULL, d->pipe[1], NULL, PX_PIPE_CHUNK,
				   SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
		if (n < 0)
			return errno == EAGAIN ? 0 : -1;
		if (n == 0) {
			d->src_eof = true;
			break;
		}
		d->in_pipe += (size_t)n;
	}
	if (d->src_eof && d->in_pipe == 0 && !d->shut) {
		(void)shutdown(dst, SHUT_WR);
		d->shut = true;
	}
	return 0;
}

static void conn_relay(struct px_conn *c)
{
	while (c->pre_off < c->pre_len) {
		ssize_t n = send(c->uw.fd, c->pre + c->pre_off, c->pre_len - c->pre_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN)
				break;
			conn_close(c);
			return;
		}
		c->pre_off += (size_t)n;
	}
	if (c->pre_off == c->pre_len && c->pre) {
		free(c->pre);
		c->pre = NULL;
		c->pre_len = c->pre_off = 0;
	}
	if (!c->pre && (pump(&c->c2u, c->cw.fd, c->uw.fd) < 0 ||
			pump(&c->u2c, c->uw.fd, c->cw.fd) < 0)) {
		conn_close(c);
		return;
	}
	if (c->c2u.shut && c->u2c.shut) {
		conn_close(c);
		return;
	}
	conn_rearm(c);
}

/* HUP: the peer closed both directions; what it sent is drained, then the connection ends
 * (its remaining output has nowhere to go). ERR: a reset. */
static void relay_event(struct px_conn *c, uint32_t events)
{
	if (events & EPOLLERR) {
		conn_close(c);
		return;
	}
	conn_relay(c);
}

static int conn_start_relay(struct px_conn *c)
{
	struct px_parse *p = c->p;
	size_t extra = p->len - p->head_len;
	if (p->is_connect) {
		static const char ok[] = PX_HTTP_200_CONNECT;
		if (send(c->cw.fd, ok, sizeof(ok) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) !=
		    (ssize_t)(sizeof(ok) - 1))
			return -1;
		if (extra) {
			if (!(c->pre = malloc(extra)))
				return -1;
			memcpy(c->pre, p->head + p->head_len, extra);
			c->pre_len = extra;
		}
	} else {
		char *buf = malloc(PX_REWRITE_MAX + extra);
		if (!buf)
			return -1;
		struct sv_err err = {0};
		int n = px_http_forward_rewrite(&p->req, &p->uri, buf, PX_REWRITE_MAX, &err);
		if (n < 0) {
			free(buf);
			if (n == -E2BIG)
				(void)send(c->cw.fd, PX_HTTP_431, strlen(PX_HTTP_431),
					   MSG_NOSIGNAL | MSG_DONTWAIT);
			return -1;
		}
		memcpy(buf + n, p->head + p->head_len, extra);
		c->pre = buf;
		c->pre_len = (size_t)n + extra;
	}
	if (pipe2(c->c2u.pipe, O_CLOEXEC | O_NONBLOCK) < 0 ||
	    pipe2(c->u2c.pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return -1;
	parse_free(c->p);
	c->p = NULL;
	c->state = PX_RELAY;
	if (sv_loop_add(c->srv->loop, &c->cw, 0) < 0)
		return -1;
	conn_relay(c);
	return 0;
}

/* ------------------------------------------------------------------------------- dialling */

static void on_upstream(struct sv_loop *loop, struct sv_watch *w, uint32_t events)
{
	(void)loop;
	struct px_conn *c = w->data;
	if (c->state == PX_RELAY) {
		relay_event(c, events);
		return;
	}
	if (c->uph) {
		int r = (events & EPOLLERR) ? -1 : px_uphs_step(c->uph, w->fd);
		if (r == 0)
			return;
		if (r < 0) {
			sv_log_kv(SV_LOG_WARN, COMP, "upstream_proxy_failed",
				  "upstream proxy CONNECT failed",
				  SV_KVS({"host", c->p->auth.host}, {"error", px_uphs_error(c->uph)}));
		}
		px_uphs_free(c->uph);
		c->uph = NULL;
		if (r > 0) {
			if (conn_start_relay(c) < 0)
				conn_close(c);
			return;
		}
		sv_loop_del(c->srv->loop, &c->uw);
		close(c->uw.fd);
		c->uw.fd = -1;
		conn_dial_next(c);
		return;
	}
	int soerr = 0;
	socklen_t l = sizeof(soerr);
	if (!(events & EPOLLOUT) || getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &soerr, &l) < 0 ||
	    soerr != 0) {
		sv_loop_del(c->srv->loop, &c->uw);
		close(c->uw.fd);
		c->uw.fd = -1;
		conn_dial_next(c);
		return;
	}
	if (c->p->via_upstream) {
		struct px_parse *p = c->p;
		bool by_name = px_upstream_by_hostname(c->srv->upstream);
		if (px_uphs_start(c->srv->upstream, w->fd, by_name ? NULL : &p->addrs[p->next_addr - 1],
				  p->auth.host, p->auth.port, &c->uph) < 0 ||
		    sv_loop_mod(c->srv->loop, &c->uw, EPOLLIN) < 0) {
			px_uphs_free(c->uph);
			c->uph = NULL;
			sv_loop_del(c->srv->loop, &c->uw);
			close(c->uw.fd);
			c->uw.fd = -1;
			conn_dial_next(c);
			return;
		}
		c->head_deadline = now_ms() + PX_UPSTREAM_HANDSHAKE_MS;
		head_timer_arm(c->srv);
		return;
	}
	if (conn_start_relay(c) < 0)
		conn_close(c);
}

static void conn_dial_next(struct px_conn *c)
{
	struct px_parse *p = c->p;
	if (c->srv->upstream && !p->routed) {
		/* Where, not whether: the policy and SSRF checks already passed. */
		p->routed = true;
		p->via_upstream = px_upstream_route(c->srv->upstream, p->auth.host, p->auth.port,
						    p->addrs, &p->n_addrs);
		if (p->via_upstream && px_upstream_by_hostname(c->srv->upstream) && p->n_addrs)
			p->n_addrs = 1; /* one CONNECT by name */
	}
	while (p->next_addr < p->n_addrs) {
		struct sockaddr_storage ss;
		socklen_t len =
		    p->via_upstream
			? px_upstream_addr(c->srv->upstream, &ss)
			: px_ssrf_ip_to_sockaddr(&p->addrs[p->next_addr], p->auth.port, &ss);
		p->next_addr++;
		int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		if (connect(fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS) {
			close(fd);
			continue;
		}
		c->uw = (struct sv_watch){.fd = fd, .fn = on_upstream, .data = c};
		if (sv_loop_add(c->srv->loop, &c->uw, EPOLLOUT) < 0) {
			close(fd);
			c->uw.fd = -1;
			continue;
		}
		return;
	}
	/* Every validated address failed: CONNECT drops the connection (contract §8), forward
	 * requests get a 502. */
	sv_log_kv(SV_LOG_WARN, COMP, "upstream_unreachable", "cannot reach upstream",
		  SV_KVS({"host", p->auth.host}));
	if (p->is_connect) {
		conn_close(c);
		return;
	}
	char buf[PX_RESP_MAX];
	int n = px_http_resp_upstream_unreachable(buf, sizeof(buf), &p->auth);
	conn_reply_and_close(c, buf, n > 0 ? (size_t)n : 0);
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
	conn_reply_and_close(c, buf, n > 0 ? (size_t)n : 0);
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
			conn_reply_and_close(c, PX_HTTP_400_HTTPS, strlen(PX_HTTP_400_HTTPS));
			return;
		}
		if (r < 0 || p->uri.scheme != PX_SCHEME_HTTP) {
			char buf[PX_RESP_MAX];
			int n = r == 0 ? px_http_resp_unsupported_scheme(buf, sizeof(buf)) : -1;
			if (n > 0)
				conn_reply_and_close(c, buf, (size_t)n);
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
		conn_close(c);
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
		conn_close(p->conn);
	return 0;
}

static void on_client(struct sv_loop *loop, struct sv_watch *w, uint32_t events)
{
	(void)loop;
	struct px_conn *c = w->data;
	if (c->state == PX_RELAY) {
		relay_event(c, events);
		return;
	}
	struct px_parse *p = c->p;
	ssize_t n = recv(w->fd, p->head + p->len, PX_HEAD_MAX - p->len, MSG_DONTWAIT);
	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0) {
		conn_close(c);
		return;
	}
	p->len += (size_t)n;
	int end = px_http_head_end(p->head, p->len, &p->resume);
	if (end > 0) {
		p->head_len = (size_t)end;
		conn_parse(c);
	} else if (p->len >= PX_HEAD_MAX) {
		conn_reply_and_close(c, PX_HTTP_431, strlen(PX_HTTP_431));
	} else if (memmem(p->head, p->len, "\n\n", 2)) {
		/* A head ended by bare LFs would otherwise wait for a CRLFCRLF that never comes. */
		conn_refuse(c, 400, "bad_request", "malformed request head",
			    "request head lines must end in CRLF, not a bare LF");
	}
}

/* ---------------------------------------------------------------------------- connections */

static void conn_close(struct px_conn *c)
{
	struct px_server *s = c->srv;
	px_uphs_free(c->uph);
	c->uph = NULL;
	sv_loop_del(s->loop, &c->cw);
	sv_loop_del(s->loop, &c->uw);
	if (c->cw.fd >= 0)
		close(c->cw.fd);
	if (c->uw.fd >= 0)
		close(c->uw.fd);
	struct px_dir *dirs[] = {&c->c2u, &c->u2c};
	for (size_t i = 0; i < 2; i++) {
		for (int k = 0; k < 2; k++) {
			if (dirs[i]->pipe[k] >= 0)
				close(dirs[i]->pipe[k]);
		}
	}
	if (c->p) {
		if (c->state == PX_DECIDING && c->p->ident_wait) {
			waiting_unlink(s, c->p); /* a late answer finds nothing: ignored */
			parse_free(c->p);
		} else if (c->state == PX_DECIDING) {
			c->p->conn = NULL; /* the worker's result will be dropped */
		} else {
			parse_free(c->p);
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

static void head_timer_arm(struct px_server *s)
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
	uint64_t now = now_ms();
	bool waiting = false;
	struct px_conn *next;
	for (struct px_conn *c = s->conns; c; c = next) {
		next = c->next;
		if (c->uph && now >= c->head_deadline) { /* the upstream proxy never answered */
			sv_log_kv(SV_LOG_WARN, COMP, "upstream_proxy_failed",
				  "upstream proxy CONNECT failed",
				  SV_KVS({"host", c->p->auth.host}, {"error", "handshake timed out"}));
			conn_close(c);
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
		head_timer_arm(s);
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
		c->local_len = sizeof(c->local);
		(void)getsockname(fd, (struct sockaddr *)&c->local, &c->local_len);
		c->srv = s;
		c->p = p;
		p->conn = c;
		p->srv = s;
		c->uw.fd = -1;
		c->c2u.pipe[0] = c->c2u.pipe[1] = c->u2c.pipe[0] = c->u2c.pipe[1] = -1;
		c->cw = (struct sv_watch){.fd = fd, .fn = on_client, .data = c};
		c->head_deadline = now_ms() + PX_HEAD_TIMEOUT_MS;
		head_timer_arm(s);
		c->next = s->conns;
		if (s->conns)
			s->conns->prev = c;
		s->conns = c;
		s->nconns++;
		if (sv_loop_add(loop, &c->cw, EPOLLIN) < 0)
			conn_close(c);
	}
	accept_pause(s, false); /* at the limit: resume when a connection closes */
}

/* -------------------------------------------------------------------------------- public */

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
		conn_close(s->conns);
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
	while (s->n_conn_spare) /* closed in this batch, maybe: their events may still come */
		sv_loop_defer_free(s->loop, s->conn_spare[--s->n_conn_spare]);
	px_snap_put(s->policy);
	px_upstream_free(s->upstream);
	free(s);
}
