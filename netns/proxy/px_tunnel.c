/* Egress proxy: the inside of an allowed CONNECT tunnel (l7 contract §1.1, §1.4, §1.5): peek
 * the first client bytes, terminate TLS with our leaf for the CONNECT host, open a verified TLS
 * session upstream (SNI = CONNECT host), then hand over to the HTTP request loop
 * (px_tunnel_http.c) or relay bytes.
 *
 * Never blocks: sockets are non-blocking, mbedTLS reports WANT_READ/WANT_WRITE and the step
 * loop retries on the next event. An upstream that fails verification is dropped with an OCSF
 * line naming host and reason; nothing is ever sent to it.
 */
#include "netns/proxy/px_tunnel.h"

#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>

#include "netns/proxy/l7/px_tls.h"
#include "netns/proxy/px_snap.h"
#include "netns/proxy/px_tunnel_int.h"
#include "supervisor/log.h"

#define COMP "proxy"

/* --------------------------------------------------------------------------- TLS state */

int px_tun_tls_new(const uint8_t *cert, size_t cert_len, const uint8_t *key, size_t key_len,
		   const char *extra_pem, unsigned int flags, struct px_tun_tls **out,
		   struct sv_err *err)
{
	struct px_tun_tls *t = calloc(1, sizeof(*t));
	if (!t)
		return sv_err_set(err, ENOMEM, "out of memory");
	int r = px_ca_from_der(cert, cert_len, key, key_len, &t->ca, err);
	if (r == 0)
		r = px_leaf_cache_new(t->ca, &t->leaves, err);
	if (r == 0)
		r = px_tls_server_new(t->leaves, &t->server, err);
	if (r == 0)
		r = px_tls_client_new(extra_pem, flags, &t->client, err);
	if (r < 0) {
		px_tun_tls_free(t);
		return r;
	}
	*out = t;
	return 0;
}

void px_tun_tls_free(struct px_tun_tls *t)
{
	if (!t)
		return;
	px_tls_client_free(t->client);
	px_tls_server_free(t->server);
	px_leaf_cache_free(t->leaves);
	px_ca_free(t->ca);
	free(t);
}

/* ------------------------------------------------------------------------------ helpers */

uint64_t px_tun_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void px_tun_timer(struct px_tun *t, uint64_t ms)
{
	if (sv_timer_arm(&t->timer, ms ? ms : 1, 0) == 0)
		t->timer_armed = true;
}

void px_tbuf_compact(struct px_tbuf *b)
{
	if (b->off == 0)
		return;
	memmove(b->b, b->b + b->off, b->len - b->off);
	b->len -= b->off;
	b->off = 0;
}

static int tbuf_init(struct px_tbuf *b, size_t cap)
{
	b->b = malloc(cap);
	b->cap = cap;
	b->off = b->len = 0;
	return b->b ? 0 : -ENOMEM;
}

/* Errors that end a tunnel quietly (l7 contract §1.5: debug only). */
static bool quiet_error(const char *msg)
{
	static const char *const words[] = {"close_notify", "handshake eof", "reset",
					    "Broken pipe", "unexpected eof", "EOF"};
	for (size_t i = 0; i < SV_ARRAY_SIZE(words); i++)
		if (strstr(msg, words[i]))
			return true;
	return false;
}

static void relay_error(struct px_tun *t, const char *msg)
{
	char port[8];
	sv_fmt(port, sizeof(port), "%u", (unsigned)t->port);
	if (quiet_error(msg)) {
		sv_debug(COMP, "tls_relay_closed", "%s:%u: %s", t->host, (unsigned)t->port, msg);
		return;
	}
	char text[400];
	sv_fmt(text, sizeof(text), "TLS relay error: %s", msg);
	sv_log_ocsf("NET:OPEN", SV_SEV_LOW, "DENIED", "tls_relay_error", text,
		    SV_KVS({"host", t->host}, {"port", port}, {"engine", "supervisor"}));
}

ssize_t px_tside_read(struct px_tun *t, struct px_tside *s, char *buf, size_t len)
{
	(void)t;
	if (s->eof)
		return 0;
	ssize_t n;
	if (s->tls) {
		struct sv_err err = {0};
		n = px_tls_read(s->tls, (uint8_t *)buf, len, &s->rd_ww, &err);
		if (n < 0 && n != -EAGAIN)
			relay_error(t, err.msg);
	} else {
		n = recv(s->w->fd, buf, len, MSG_DONTWAIT);
		if (n < 0)
			n = errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
		s->rd_ww = false;
	}
	if (n == 0)
		s->eof = true;
	return n;
}

/* Write what @b holds to @s. Returns 1 on progress, 0 if nothing moved, -1 on error. */
static int tside_flush(struct px_tun *t, struct px_tside *s, struct px_tbuf *b)
{
	int progress = 0;
	while (b->off < b->len) {
		ssize_t n;
		if (s->tls) {
			struct sv_err err = {0};
			bool ww = false;
			n = px_tls_write(s->tls, (const uint8_t *)b->b + b->off, b->len - b->off, &ww,
					 &err);
			if (n < 0 && n != -EAGAIN) {
				relay_error(t, err.msg);
				return -1;
			}
			s->wr_wr = n == -EAGAIN && !ww; /* want_write false: needs readable */
		} else {
			n = send(s->w->fd, b->b + b->off, b->len - b->off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
				return -1;
			if (n < 0)
				n = -EAGAIN;
			s->wr_wr = false;
		}
		if (n == -EAGAIN)
			break;
		b->off += (size_t)n;
		progress = 1;
	}
	if (b->off == b->len)
		b->off = b->len = 0;
	return progress;
}

/* Half-close our sending side towards @s (close_notify under TLS). */
static void tside_shut(struct px_tside *s)
{
	if (s->shut)
		return;
	s->shut = true;
	if (s->tls) {
		bool ww = false;
		(void)px_tls_close_notify(s->tls, &ww);
	}
	(void)shutdown(s->w->fd, SHUT_WR);
}

/* ------------------------------------------------------------------------------ phases */

static int start_http(struct px_tun *t)
{
	if (px_tun_http_init(t) < 0)
		return PX_TUN_CLOSE;
	t->mode = PX_TM_REQ_HEAD;
	return PX_TUN_CONTINUE;
}

/* §1.1: classify the first bytes. */
static int peek_step(struct px_tun *t, bool *progress)
{
	char buf[PX_TLS_PEEK_MAX];
	size_t n = t->cin.len < sizeof(buf) ? t->cin.len : sizeof(buf);
	memcpy(buf, t->cin.b, n);
	if (n < sizeof(buf)) {
		ssize_t k = recv(t->cl.w->fd, buf + n, sizeof(buf) - n, MSG_PEEK | MSG_DONTWAIT);
		if (k == 0 && n == 0)
			return PX_TUN_CLOSE; /* closed before a byte: nothing to relay */
		if (k > 0)
			n += (size_t)k;
	}
	if (n == 0)
		return PX_TUN_CONTINUE; /* wait for EPOLLIN, as OpenShell waits */
	enum px_tunnel_kind kind = px_tunnel_classify((const uint8_t *)buf, n);
	if (kind == PX_TUNNEL_NEED_MORE) {
		uint64_t now = px_tun_now_ms();
		if (!t->deadline)
			t->deadline = now + PX_TUN_PEEK_DEADLINE_MS;
		if (now < t->deadline) {
			px_tun_timer(t, PX_TUN_PEEK_POLL_MS);
			return PX_TUN_CONTINUE;
		}
		kind = PX_TUNNEL_OTHER;
	}
	t->deadline = 0;
	*progress = true;
	if (kind == PX_TUNNEL_TLS) {
		struct sv_err err = {0};
		if (!t->tls_env || t->cin.len) {
			/* TLS bytes sent before our 200 cannot be fed to the session: refuse. */
			relay_error(t, t->tls_env ? "TLS bytes before the CONNECT response"
						  : "TLS termination unavailable");
			return PX_TUN_CLOSE;
		}
		if (px_tls_accept(t->tls_env->server, t->cl.w->fd, t->host, &t->cl.tls, &err) < 0) {
			relay_error(t, err.msg);
			return PX_TUN_CLOSE;
		}
		t->tls = true;
		t->mode = PX_TM_HS_CLIENT;
		t->deadline = px_tun_now_ms() + PX_TUN_HANDSHAKE_MS;
		px_tun_timer(t, PX_TUN_HANDSHAKE_MS);
		return PX_TUN_CONTINUE;
	}
	if (!t->inspect)
		return PX_TUN_RAW; /* plain bytes on an L4 endpoint: spliced as before */
	if (kind == PX_TUNNEL_HTTP1) {
		/* Plain HTTP/1 on an L7 endpoint: the request loop reads from the socket. */
		return start_http(t);
	}
	char resp[512];
	int k = px_l7_resp_unsupported_protocol(resp, sizeof(resp), kind == PX_TUNNEL_H2C);
	sv_log_ocsf("NET:OPEN", SV_SEV_MED, "DENIED", "l7_unsupported_protocol",
		    kind == PX_TUNNEL_H2C ? "HTTP/2 prior-knowledge (h2c) on an L7 endpoint"
					  : "unsupported tunnel protocol for an L7 endpoint",
		    SV_KVS({"host", t->host}, {"engine", "supervisor"}));
	if (k > 0 && (size_t)k <= t->cout.cap) {
		memcpy(t->cout.b, resp, (size_t)k);
		t->cout.len = (size_t)k;
	}
	t->mode = PX_TM_CLOSING;
	return PX_TUN_CONTINUE;
}

static int handshake_step(struct px_tun *t, struct px_tside *s, bool *progress)
{
	struct sv_err err = {0};
	bool ww = false;
	int r = px_tls_handshake(s->tls, &ww, &err);
	if (r == -EAGAIN) {
		s->rd_ww = ww;
		s->wr_wr = false;
		return PX_TUN_CONTINUE;
	}
	s->rd_ww = false;
	if (r < 0) {
		if (s == &t->up) {
			/* §1.5: a failed verification drops the tunnel, nothing sent upstream. */
			char text[400];
			char port[8];
			sv_fmt(port, sizeof(port), "%u", (unsigned)t->port);
			sv_fmt(text, sizeof(text), "TLS relay error: upstream %s:%u: %s", t->host,
			       (unsigned)t->port, err.msg);
			sv_log_ocsf("NET:OPEN", SV_SEV_LOW, "DENIED", "tls_upstream_rejected", text,
				    SV_KVS({"host", t->host}, {"port", port},
					   {"reason", err.msg}, {"engine", "supervisor"}));
		} else {
			relay_error(t, err.msg);
		}
		return PX_TUN_CLOSE;
	}
	*progress = true;
	if (s == &t->cl) {
		struct px_tside *u = &t->up;
		if (px_tls_connect(t->tls_env->client, u->w->fd, t->host, &u->tls, &err) < 0) {
			relay_error(t, err.msg);
			return PX_TUN_CLOSE;
		}
		t->mode = PX_TM_HS_UP;
		return PX_TUN_CONTINUE;
	}
	t->deadline = 0;
	(void)sv_timer_disarm(&t->timer);
	t->timer_armed = false;
	sv_debug(COMP, "tls_terminated", "%s:%u %s", t->host, (unsigned)t->port,
		 px_tls_version(t->up.tls) ? px_tls_version(t->up.tls) : "-");
	return start_http(t);
}

/* Bytes both ways (an allowed upgrade). */
static int raw_step(struct px_tun *t, bool *progress)
{
	struct px_tside *sides[2] = {&t->cl, &t->up};
	struct px_tbuf *outs[2] = {&t->uout, &t->cout}; /* what a side's input feeds */
	for (int i = 0; i < 2; i++) {
		struct px_tside *s = sides[i], *o = sides[1 - i];
		struct px_tbuf *b = outs[i];
		px_tbuf_compact(b);
		if (!s->eof && b->len < b->cap) {
			ssize_t n = px_tside_read(t, s, b->b + b->len, b->cap - b->len);
			if (n > 0) {
				b->len += (size_t)n;
				*progress = true;
			} else if (n == 0) {
				*progress = true;
			} else if (n != -EAGAIN) {
				return PX_TUN_CLOSE;
			}
		}
		if (s->eof && b->off == b->len && !o->shut)
			tside_shut(o);
	}
	if (t->cl.eof && t->up.eof && t->cout.off == t->cout.len && t->uout.off == t->uout.len)
		return PX_TUN_CLOSE;
	return PX_TUN_CONTINUE;
}

static uint32_t side_events(const struct px_tun *t, const struct px_tside *s, bool reading,
			    const struct px_tbuf *out)
{
	uint32_t ev = 0;
	if (reading)
		ev |= s->rd_ww ? EPOLLOUT : EPOLLIN;
	if (out->off < out->len)
		ev |= s->wr_wr ? EPOLLIN : EPOLLOUT;
	(void)t;
	return ev;
}

static void rearm(struct px_tun *t)
{
	bool crd = false, urd = false;
	switch (t->mode) {
	case PX_TM_PEEK:
		crd = !t->timer_armed;
		break;
	case PX_TM_HS_CLIENT:
		crd = true;
		break;
	case PX_TM_HS_UP:
		urd = true;
		break;
	case PX_TM_RAW:
		crd = !t->cl.eof && t->uout.len < t->uout.cap;
		urd = !t->up.eof && t->cout.len < t->cout.cap;
		break;
	case PX_TM_REQ_HEAD:
	case PX_TM_REQ_BODY:
		crd = !t->cl.eof && t->cin.len < t->cin.cap;
		break;
	case PX_TM_RESP_HEAD:
	case PX_TM_RESP_BODY:
	case PX_TM_RESP_EOF:
		urd = !t->up.eof && t->uin.len < t->uin.cap;
		break;
	case PX_TM_CLOSING:
		break;
	}
	/* A TLS handshake's direction is in rd_ww. */
	(void)sv_loop_mod(t->loop, t->cl.w, side_events(t, &t->cl, crd, &t->cout));
	(void)sv_loop_mod(t->loop, t->up.w, side_events(t, &t->up, urd, &t->uout));
}

/* Run every phase until nothing moves. */
static int step(struct px_tun *t)
{
	for (int guard = 0; guard < 256; guard++) {
		bool progress = false;
		int r = tside_flush(t, &t->cl, &t->cout);
		if (r < 0)
			return PX_TUN_CLOSE;
		progress = progress || r > 0;
		r = tside_flush(t, &t->up, &t->uout);
		if (r < 0)
			return PX_TUN_CLOSE;
		progress = progress || r > 0;
		enum px_tmode before = t->mode;
		switch (t->mode) {
		case PX_TM_PEEK:
			r = peek_step(t, &progress);
			break;
		case PX_TM_HS_CLIENT:
			r = handshake_step(t, &t->cl, &progress);
			break;
		case PX_TM_HS_UP:
			r = handshake_step(t, &t->up, &progress);
			break;
		case PX_TM_RAW:
			r = raw_step(t, &progress);
			break;
		case PX_TM_CLOSING:
			if (t->cout.off == t->cout.len)
				return PX_TUN_CLOSE;
			r = PX_TUN_CONTINUE;
			break;
		default: {
			bool close = false;
			progress = px_tun_http_step(t, &close) || progress;
			r = close ? PX_TUN_CLOSE : PX_TUN_CONTINUE;
			break;
		}
		}
		if (r != PX_TUN_CONTINUE)
			return r;
		if (!progress && t->mode == before)
			break;
	}
	rearm(t);
	return PX_TUN_CONTINUE;
}

int px_tun_event(struct px_tun *t, bool client, uint32_t events)
{
	struct px_tside *s = client ? &t->cl : &t->up;
	if (events & EPOLLERR)
		return PX_TUN_CLOSE;
	if (events & (EPOLLHUP | EPOLLRDHUP))
		s->hup = true;
	int r = step(t);
	/* A hung-up peer we are not reading from would wake us forever. */
	if (r == PX_TUN_CONTINUE && s->hup && (events & EPOLLHUP) && !s->eof) {
		bool reading = client ? (t->mode == PX_TM_REQ_HEAD || t->mode == PX_TM_REQ_BODY ||
					 t->mode == PX_TM_RAW || t->mode == PX_TM_PEEK)
				      : (t->mode >= PX_TM_RESP_HEAD && t->mode <= PX_TM_RESP_EOF) ||
					    t->mode == PX_TM_RAW;
		if (!reading)
			return PX_TUN_CLOSE;
	}
	return r;
}

static void on_timer(struct sv_loop *loop, struct sv_timer *tm)
{
	(void)loop;
	struct px_tun *t = tm->data;
	t->timer_armed = false;
	if (t->deadline && px_tun_now_ms() >= t->deadline &&
	    (t->mode == PX_TM_HS_CLIENT || t->mode == PX_TM_HS_UP)) {
		relay_error(t, "TLS handshake timed out");
		t->done(t->ctx, PX_TUN_CLOSE);
		return;
	}
	if (t->mode == PX_TM_RESP_EOF && t->deadline) {
		if (px_tun_now_ms() >= t->deadline) {
			t->done(t->ctx, PX_TUN_CLOSE); /* §2.6: 5 s idle ends the tunnel */
			return;
		}
		px_tun_timer(t, t->deadline - px_tun_now_ms());
	}
	int r = step(t);
	if (r != PX_TUN_CONTINUE)
		t->done(t->ctx, r);
}

/* ------------------------------------------------------------------------------- public */

int px_tun_new(struct sv_loop *loop, struct px_tun_tls *tls, struct sv_watch *cw,
	       struct sv_watch *uw, const struct px_tun_params *p,
	       void (*done)(void *ctx, int result), void *ctx, struct px_tun **out,
	       struct sv_err *err)
{
	struct px_tun *t = calloc(1, sizeof(*t));
	if (!t)
		return sv_err_set(err, ENOMEM, "tunnel: out of memory");
	t->loop = loop;
	t->tls_env = tls;
	t->cl.w = cw;
	t->up.w = uw;
	t->timer.w.fd = -1;
	sv_fmt(t->host, sizeof(t->host), "%s", p->host);
	for (char *c = t->host; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	t->port = p->port;
	t->inspect = p->inspect;
	t->policy = p->policy ? px_snap_get(p->policy) : NULL;
	t->current = p->current;
	sv_fmt(t->exe, sizeof(t->exe), "%s", p->exe ? p->exe : "");
	t->endpoint_only = p->endpoint_only;
	t->on_denial = p->on_denial;
	t->denial_data = p->denial_data;
	t->done = done;
	t->ctx = ctx;
	int r = 0;
	t->n_anc = p->n_ancestors > PX_IDENT_ANCESTORS_MAX ? PX_IDENT_ANCESTORS_MAX : p->n_ancestors;
	if (t->n_anc && !(t->anc = calloc(t->n_anc, sizeof(*t->anc))))
		r = -ENOMEM;
	for (size_t i = 0; r == 0 && i < t->n_anc; i++) {
		sv_fmt(t->anc[i], sizeof(t->anc[i]), "%s", p->ancestors[i]);
		t->anc_ptr[i] = t->anc[i];
	}
	if (r == 0)
		r = tbuf_init(&t->cin, PX_L7_HEAD_MAX + PX_TUN_CHUNK);
	if (r == 0)
		r = tbuf_init(&t->uin, PX_L7_HEAD_MAX + PX_TUN_CHUNK);
	if (r == 0)
		r = tbuf_init(&t->cout, PX_L7_HEAD_MAX + 1024 + PX_TUN_CHUNK);
	if (r == 0)
		r = tbuf_init(&t->uout, PX_L7_HEAD_MAX + 1024 + PX_TUN_CHUNK);
	if (r == 0 && p->pre_len) {
		if (p->pre_len > t->cin.cap)
			r = -E2BIG;
		else
			memcpy(t->cin.b, p->pre, p->pre_len);
		t->cin.len = r == 0 ? p->pre_len : 0;
	}
	if (r == 0)
		r = sv_timer_init(loop, &t->timer, on_timer, t);
	/* Heads and bodies go out as separate TLS records: without this, Nagle holds the second
	 * until the peer's delayed ACK (40 ms per response). */
	int one = 1;
	(void)setsockopt(cw->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void)setsockopt(uw->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (r < 0) {
		px_tun_free(t);
		return sv_err_set(err, -r, "tunnel: %s", strerror(-r));
	}
	*out = t;
	return 0;
}

/* Start or continue after creation: the first step (the client may have sent already). */
int px_tun_start(struct px_tun *t)
{
	return step(t);
}

void px_tun_free(struct px_tun *t)
{
	if (!t)
		return;
	sv_timer_close(t->loop, &t->timer);
	px_tls_conn_free(t->cl.tls);
	px_tls_conn_free(t->up.tls);
	px_tun_http_free(t);
	px_snap_put(t->policy);
	free(t->anc);
	free(t->cin.b);
	free(t->uin.b);
	free(t->cout.b);
	free(t->uout.b);
	sv_loop_defer_free(t->loop, t);
}
