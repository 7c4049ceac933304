/* Egress proxy: the connection after the decision (split from px_server.c): dial the validated
 * addresses, answer the CONNECT, then relay bytes with splice(2) through a pipe per direction
 * or hand the tunnel to px_tunnel.c (TLS termination, L7 inspection).
 *
 * Never blocks: sockets are non-blocking; the pipes bound what is buffered.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "netns/proxy/px_http.h"
#include "netns/proxy/px_server_int.h"
#include "netns/proxy/px_tunnel.h"
#include "netns/proxy/px_upstream.h"
#include "supervisor/log.h"

#define COMP "proxy"

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

/* Returns -1 when the client's watch cannot be put back (the connection must close). */
static int conn_rearm(struct px_conn *c)
{
	bool pre = c->pre_off < c->pre_len;
	uint32_t cev = want(&c->c2u, &c->u2c, false);
	uint32_t uev = want(&c->u2c, &c->c2u, false) | (pre ? EPOLLOUT : 0);
	if (pre)
		cev &= ~(uint32_t)EPOLLIN; /* the early bytes go first */
	/* The client's watch was taken off during the decision: back on with its first mask. */
	if (!c->cw.added) {
		if (sv_loop_add(c->srv->loop, &c->cw, cev) < 0)
			return -1;
		c->cev = cev;
	} else if (cev != c->cev && sv_loop_mod(c->srv->loop, &c->cw, cev) == 0) {
		c->cev = cev;
	}
	if (uev != c->uev && sv_loop_mod(c->srv->loop, &c->uw, uev) == 0)
		c->uev = uev;
	return 0;
}

/* Move bytes src → pipe → dst. Returns -1 when the connection must close. @other_shut: the
 * other direction is done, so the connection closes right after this one: close(2) sends the
 * FIN (dst has nothing unread, its side reached EOF), no shutdown needed. */
static int pump(struct px_dir *d, int src, int dst, bool other_shut)
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
		if (!other_shut)
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
			px_conn_close(c);
			return;
		}
		c->pre_off += (size_t)n;
	}
	if (c->pre_off == c->pre_len && c->pre) {
		free(c->pre);
		c->pre = NULL;
		c->pre_len = c->pre_off = 0;
	}
	if (!c->pre && (pump(&c->c2u, c->cw.fd, c->uw.fd, c->u2c.shut) < 0 ||
			pump(&c->u2c, c->uw.fd, c->cw.fd, c->c2u.shut) < 0)) {
		px_conn_close(c);
		return;
	}
	if (c->c2u.shut && c->u2c.shut) {
		px_conn_close(c);
		return;
	}
	if (conn_rearm(c) < 0)
		px_conn_close(c);
}

/* HUP: the peer closed both directions; what it sent is drained, then the connection ends
 * (its remaining output has nowhere to go). ERR: a reset. */
void px_conn_relay_event(struct px_conn *c, uint32_t events)
{
	if (events & EPOLLERR) {
		px_conn_close(c);
		return;
	}
	conn_relay(c);
}

static int pipe_get(struct px_server *s, int fds[2])
{
	if (s->n_pipe_spare) {
		memcpy(fds, s->pipe_spare[--s->n_pipe_spare], 2 * sizeof(int));
		return 0;
	}
	return pipe2(fds, O_CLOEXEC | O_NONBLOCK);
}

/* A pipe goes back to the spares only when empty: nothing of one connection reaches another. */
void px_pipe_put(struct px_server *s, struct px_dir *d)
{
	if (d->pipe[0] < 0)
		return;
	if (d->in_pipe == 0 && s->n_pipe_spare < PX_PIPE_SPARE) {
		memcpy(s->pipe_spare[s->n_pipe_spare++], d->pipe, 2 * sizeof(int));
	} else {
		close(d->pipe[0]);
		close(d->pipe[1]);
	}
	d->pipe[0] = d->pipe[1] = -1;
}

/* Bytes both ways through a pipe per direction (c->pre first). c->uev is the mask armed on
 * the upstream watch (PX_EV_UNKNOWN after a tunnel); the client's watch is added by
 * conn_rearm when it is not on the loop. */
static int conn_relay_begin(struct px_conn *c)
{
	/* A peer's small writes (a TLS record per header and body) must not wait for the other
	 * side's delayed ACK behind Nagle: 40 ms per response on keep-alive connections. */
	int one = 1;
	(void)setsockopt(c->cw.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void)setsockopt(c->uw.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (pipe_get(c->srv, c->c2u.pipe) < 0 || pipe_get(c->srv, c->u2c.pipe) < 0)
		return -1;
	px_parse_free(c->p);
	c->p = NULL;
	c->state = PX_RELAY;
	conn_relay(c);
	return 0;
}

/* What the tunnel reports: go on, relay raw bytes ourselves, or close. */
void px_conn_tunnel_result(struct px_conn *c, int r)
{
	if (r == PX_TUN_CONTINUE)
		return;
	px_tun_free(c->tun);
	c->tun = NULL;
	if (r == PX_TUN_RAW && conn_relay_begin(c) == 0)
		return;
	px_conn_close(c);
}

static void tunnel_denial(const struct px_denial *d, void *srv)
{
	px_server_denial(srv, d);
}

static void tunnel_done(void *ctx, int result)
{
	px_conn_tunnel_result(ctx, result);
}

/* After the 200 of a CONNECT that may be terminated or inspected (l7 contract §1.1). */
static int conn_start_tunnel(struct px_conn *c)
{
	struct px_parse *p = c->p;
	const char *anc[PX_IDENT_ANCESTORS_MAX];
	size_t n_anc = 0;
	for (size_t i = 0; p->ident_ok && i < p->ident->n_ancestors; i++)
		anc[n_anc++] = p->ident->ancestors[i].path;
	const struct px_tun_params tp = {
	    .host = p->auth.host,
	    .port = p->auth.port,
	    .inspect = p->dec.inspect,
	    .policy = p->policy,
	    .current = &c->srv->policy,
	    .exe = p->ident_ok ? p->ident->exe.path : NULL,
	    .ancestors = anc,
	    .n_ancestors = n_anc,
	    .endpoint_only = p->endpoint_only,
	    .pre = c->pre,
	    .pre_len = c->pre_len,
	    .on_denial = tunnel_denial,
	    .denial_data = c->srv,
	};
	struct sv_err err = {0};
	if (px_tun_new(c->srv->loop, c->srv->tls, &c->cw, &c->uw, &tp, tunnel_done, c, &c->tun,
		       &err) < 0) {
		sv_warn(COMP, "tunnel_failed", "%s", err.msg);
		return -1;
	}
	c->cev = c->uev = PX_EV_UNKNOWN; /* the tunnel sets the masks from here */
	px_parse_free(c->p); /* the tunnel copied what it needs */
	c->p = NULL;
	if (!c->cw.added && sv_loop_add(c->srv->loop, &c->cw, 0) < 0)
		return -1;
	c->state = PX_TUNNEL;
	int r = px_tun_start(c->tun);
	if (r == PX_TUN_CLOSE)
		return -1;
	if (r == PX_TUN_RAW) {
		px_tun_free(c->tun);
		c->tun = NULL;
		return conn_relay_begin(c);
	}
	return 0;
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
	if (p->is_connect && !p->dec.tls_skip && c->srv->tls_strict)
		return conn_start_tunnel(c);
	if (p->is_connect && p->dec.inspect)
		return conn_start_tunnel(c);
	return conn_relay_begin(c);
}

/* ------------------------------------------------------------------------------- dialling */

static void on_upstream(struct sv_loop *loop, struct sv_watch *w, uint32_t events)
{
	(void)loop;
	struct px_conn *c = w->data;
	if (c->state == PX_RELAY) {
		px_conn_relay_event(c, events);
		return;
	}
	if (c->state == PX_TUNNEL) {
		px_conn_tunnel_result(c, px_tun_event(c->tun, false, events));
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
				px_conn_close(c);
			return;
		}
		sv_loop_del(c->srv->loop, &c->uw);
		close(c->uw.fd);
		c->uw.fd = -1;
		px_conn_dial_next(c);
		return;
	}
	int soerr = 0;
	socklen_t l = sizeof(soerr);
	if (!(events & EPOLLOUT) || getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &soerr, &l) < 0 ||
	    soerr != 0) {
		sv_loop_del(c->srv->loop, &c->uw);
		close(c->uw.fd);
		c->uw.fd = -1;
		px_conn_dial_next(c);
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
			px_conn_dial_next(c);
			return;
		}
		c->uev = EPOLLIN;
		c->head_deadline = px_now_ms() + PX_UPSTREAM_HANDSHAKE_MS;
		px_head_timer_arm(c->srv);
		return;
	}
	if (conn_start_relay(c) < 0)
		px_conn_close(c);
}

void px_conn_dial_next(struct px_conn *c)
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
		c->uev = EPOLLOUT;
		return;
	}
	/* Every validated address failed: CONNECT drops the connection (contract §8), forward
	 * requests get a 502. */
	sv_log_kv(SV_LOG_WARN, COMP, "upstream_unreachable", "cannot reach upstream",
		  SV_KVS({"host", p->auth.host}));
	if (p->is_connect) {
		px_conn_close(c);
		return;
	}
	char buf[PX_RESP_MAX];
	int n = px_http_resp_upstream_unreachable(buf, sizeof(buf), &p->auth);
	px_conn_reply_and_close(c, buf, n > 0 ? (size_t)n : 0);
}
