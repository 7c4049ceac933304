/* The gateway connection: name resolution on a worker, non-blocking connect with a timeout,
 * the TLS handshake, and the nghttp2 client session driven by the loop (bytes in through
 * nghttp2_session_mem_recv, out through nghttp2_session_mem_send, EPOLLOUT only while something
 * waits), plus the HTTP/2 PING keepalive that declares a silent peer dead.
 *
 * Never blocks and never calls the user from inside nghttp2: callbacks run from the loop, after
 * nghttp2 returned, and every path re-checks conn->freed after one.
 */
#include "session/gateway/gw_int.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "supervisor/worker.h"

/* Reads per readiness event before yielding to the loop's other fds. */
#define READS_PER_EVENT 16
#define READ_CHUNK	((size_t)16 * 1024)

struct gw_resolve {
	struct sv_job job;    /* first: the job pointer is the resolve pointer */
	struct gw_conn *conn; /* NULL once the connection is gone: done() just frees */
	char host[GW_HOST_MAX + 1];
	char port[8];
	struct addrinfo *res;
	int rc;
};

static void conn_fail(struct gw_conn *c, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------------ teardown */

static void transport_close(struct gw_conn *c)
{
	if (c->tls)
		gw_tls_close_notify(c->tls);
	if (c->sock.fd >= 0) {
		sv_loop_del(c->loop, &c->sock);
		close(c->sock.fd);
		c->sock.fd = -1;
	}
	gw_tls_free(c->tls);
	c->tls = NULL;
	if (c->h2) {
		nghttp2_session_del(c->h2); /* runs no callbacks */
		c->h2 = NULL;
	}
	c->wpend = NULL;
	c->wpend_len = 0;
	sv_timer_disarm(&c->connect_timer);
	sv_timer_disarm(&c->ping_timer);
	sv_timer_disarm(&c->ping_deadline);
}

static void conn_fail(struct gw_conn *c, int err, const char *fmt, ...)
{
	if (c->state == GW_CLOSED || c->freed)
		return;
	char why[384];
	va_list ap;
	va_start(ap, fmt);
	sv_vfmt(why, sizeof(why), fmt, ap);
	va_end(ap);
	c->state = GW_CLOSED;
	transport_close(c);
	gw_calls_fail_all(c, why);
	if (c->freed)
		return;
	if (c->cbs.on_closed)
		c->cbs.on_closed(c, err, why, c->cbs.data);
}

/* ------------------------------------------------------------------ I/O */

static void update_interest(struct gw_conn *c)
{
	if (c->sock.fd < 0 || c->freed)
		return;
	uint32_t ev = EPOLLIN;
	if (c->state == GW_CONNECTING)
		ev = EPOLLOUT;
	else if (c->state == GW_HANDSHAKE)
		ev = c->tls_want_write ? EPOLLOUT : EPOLLIN;
	else if (c->state == GW_READY &&
		 (c->wpend_len > 0 || c->tls_want_write || nghttp2_session_want_write(c->h2)))
		ev |= EPOLLOUT;
	if (!c->sock.added) {
		int r = sv_loop_add(c->loop, &c->sock, ev);
		if (r < 0) {
			conn_fail(c, r, "epoll: %s", strerror(-r));
			return;
		}
	} else if (ev != c->events && sv_loop_mod(c->loop, &c->sock, ev) < 0) {
		int e = errno;
		conn_fail(c, -e, "epoll: %s", strerror(e));
		return;
	}
	c->events = ev;
}

void gw_conn_update(struct gw_conn *c)
{
	update_interest(c);
}

void gw_conn_kick(struct gw_conn *c)
{
	if (!c->freed && c->kick.w.fd >= 0)
		sv_timer_arm(&c->kick, 0, 0);
}

static ssize_t tr_read(struct gw_conn *c, uint8_t *buf, size_t len, struct sv_err *err)
{
	if (c->tls)
		return gw_tls_read(c->tls, buf, len, &c->tls_want_write, err);
	for (;;) {
		ssize_t n = recv(c->sock.fd, buf, len, 0);
		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return -EAGAIN;
		return sv_err_set(err, errno, "read: %s", strerror(errno));
	}
}

static ssize_t tr_write(struct gw_conn *c, const uint8_t *buf, size_t len, struct sv_err *err)
{
	if (c->tls)
		return gw_tls_write(c->tls, buf, len, &c->tls_want_write, err);
	for (;;) {
		ssize_t n = send(c->sock.fd, buf, len, MSG_NOSIGNAL);
		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return -EAGAIN;
		return sv_err_set(err, errno, "write: %s", strerror(errno));
	}
}

/* Returns 0, or -1 when the connection failed. */
static int do_write(struct gw_conn *c)
{
	struct sv_err err = {0};
	for (;;) {
		if (c->wpend_len == 0) {
			const uint8_t *data;
			ssize_t n = nghttp2_session_mem_send(c->h2, &data);
			if (n < 0) {
				conn_fail(c, -EPROTO, "HTTP/2: %s", nghttp2_strerror((int)n));
				return -1;
			}
			if (n == 0)
				return 0;
			c->wpend = data;
			c->wpend_len = (size_t)n;
		}
		ssize_t w = tr_write(c, c->wpend, c->wpend_len, &err);
		if (w == -EAGAIN)
			return 0;
		if (w < 0) {
			conn_fail(c, (int)w, "gateway %s: %s", c->ep.authority, err.msg);
			return -1;
		}
		c->wpend += w;
		c->wpend_len -= (size_t)w;
	}
}

/* Returns 0, or -1 when the connection failed. */
static int do_read(struct gw_conn *c)
{
	uint8_t buf[READ_CHUNK];
	struct sv_err err = {0};
	for (int i = 0; i < READS_PER_EVENT; i++) {
		ssize_t n = tr_read(c, buf, sizeof(buf), &err);
		if (n == -EAGAIN)
			return 0;
		if (n == 0) {
			/* Calls the gateway finished before closing keep their own status. */
			gw_calls_dispatch(c);
			if (c->freed)
				return -1;
			conn_fail(c, -ECONNRESET, "gateway %s closed the connection",
				  c->ep.authority);
			return -1;
		}
		if (n < 0) {
			conn_fail(c, (int)n, "gateway %s: %s", c->ep.authority, err.msg);
			return -1;
		}
		ssize_t r = nghttp2_session_mem_recv(c->h2, buf, (size_t)n);
		if (r < 0) {
			conn_fail(c, -EPROTO, "HTTP/2 from gateway %s: %s", c->ep.authority,
				  nghttp2_strerror((int)r));
			return -1;
		}
	}
	gw_conn_kick(c); /* more may wait: come back after the other fds */
	return 0;
}

void gw_conn_service(struct gw_conn *c)
{
	if (c->freed || c->state == GW_CLOSED)
		return;
	if (c->state == GW_READY && do_write(c) < 0)
		return;
	gw_calls_dispatch(c);
	if (c->freed || c->state != GW_READY)
		return;
	if (do_write(c) < 0)
		return;
	if (!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2) &&
	    c->wpend_len == 0) {
		conn_fail(c, -ECONNRESET, "gateway %s ended the HTTP/2 session%s", c->ep.authority,
			  c->goaway ? " (GOAWAY)" : "");
		return;
	}
	update_interest(c);
}

/* ------------------------------------------------------------------ connect */

static void become_ready(struct gw_conn *c)
{
	c->state = GW_READY;
	sv_timer_disarm(&c->connect_timer);
	sv_timer_arm(&c->ping_timer, c->ping_interval_ms, c->ping_interval_ms);
	if (c->cbs.on_ready)
		c->cbs.on_ready(c, c->cbs.data);
	gw_conn_service(c);
}

static void handshake_step(struct gw_conn *c)
{
	struct sv_err err = {0};
	int r = gw_tls_handshake(c->tls, &c->tls_want_write, &err);
	if (r == 0) {
		c->tls_want_write = false;
		become_ready(c);
	} else if (r == -EAGAIN) {
		update_interest(c);
	} else {
		conn_fail(c, r, "TLS with gateway %s: %s", c->ep.authority, err.msg);
	}
}

static void addr_fmt(const struct sockaddr_storage *ss, char *buf, size_t size)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
		port = ntohs(sin->sin_port);
		sv_fmt(buf, size, "%s:%u", ip, port);
	} else {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
		port = ntohs(sin6->sin6_port);
		sv_fmt(buf, size, "[%s]:%u", ip, port);
	}
}

static void connect_next(struct gw_conn *c)
{
	while (c->next_addr < c->n_addrs) {
		size_t i = c->next_addr++;
		int fd =
		    socket(c->addrs[i].ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			c->last_err = errno;
			continue;
		}
		int one = 1;
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(fd, (const struct sockaddr *)&c->addrs[i], c->addrlens[i]) == 0 ||
		    errno == EINPROGRESS) {
			c->sock.fd = fd;
			c->state = GW_CONNECTING;
			update_interest(c);
			return;
		}
		c->last_err = errno;
		close(fd);
	}
	char where[INET6_ADDRSTRLEN + 10] = "?";
	if (c->n_addrs > 0)
		addr_fmt(&c->addrs[c->n_addrs - 1], where, sizeof(where));
	int e = c->last_err ? c->last_err : EHOSTUNREACH;
	conn_fail(c, -e, "cannot connect to gateway %s (%s): %s", c->ep.authority, where,
		  strerror(e));
}

static void on_connected(struct gw_conn *c)
{
	int soerr = 0;
	socklen_t sl = sizeof(soerr);
	if (getsockopt(c->sock.fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
		soerr = errno;
	if (soerr != 0) {
		c->last_err = soerr;
		sv_loop_del(c->loop, &c->sock);
		close(c->sock.fd);
		c->sock.fd = -1;
		connect_next(c);
		return;
	}
	if (c->tls) {
		c->state = GW_HANDSHAKE;
		gw_tls_set_fd(c->tls, c->sock.fd);
		handshake_step(c);
	} else {
		become_ready(c);
	}
}

static void on_sock(struct sv_loop *loop, struct sv_watch *w, uint32_t events)
{
	(void)loop;
	struct gw_conn *c = w->data;
	switch (c->state) {
	case GW_CONNECTING:
		on_connected(c);
		return;
	case GW_HANDSHAKE:
		handshake_step(c);
		return;
	case GW_READY:
		if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) || c->tls_want_write)
			if (do_read(c) < 0)
				return;
		gw_conn_service(c);
		return;
	default:
		return;
	}
}

static void resolve_run(struct sv_job *job)
{
	struct gw_resolve *r = (struct gw_resolve *)job;
	struct addrinfo hints;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	r->rc = getaddrinfo(r->host, r->port, &hints, &r->res);
}

static void add_addrs(struct gw_conn *c, const struct addrinfo *ai)
{
	for (; ai && c->n_addrs < GW_ADDRS_MAX; ai = ai->ai_next) {
		if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
		    ai->ai_addrlen > sizeof(c->addrs[0]))
			continue;
		memcpy(&c->addrs[c->n_addrs], ai->ai_addr, ai->ai_addrlen);
		c->addrlens[c->n_addrs++] = ai->ai_addrlen;
	}
}

static void resolve_done(struct sv_loop *loop, struct sv_job *job)
{
	(void)loop;
	struct gw_resolve *r = (struct gw_resolve *)job;
	struct gw_conn *c = r->conn;
	if (c) {
		c->resolve = NULL;
		if (r->rc != 0) {
			conn_fail(c, -EHOSTUNREACH, "cannot resolve gateway host %s: %s", r->host,
				  gai_strerror(r->rc));
		} else {
			add_addrs(c, r->res);
			connect_next(c);
		}
	}
	if (r->res)
		freeaddrinfo(r->res);
	free(r);
}

static void start(struct gw_conn *c)
{
	struct addrinfo hints, *res = NULL;
	char port[8];
	sv_fmt(port, sizeof(port), "%u", c->ep.port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV; /* never blocks: no lookup */
	if (getaddrinfo(c->ep.host, port, &hints, &res) == 0) {
		add_addrs(c, res);
		freeaddrinfo(res);
		connect_next(c);
		return;
	}
	if (!c->workers) {
		conn_fail(c, -EINVAL, "gateway host %s is a name but no resolver was given",
			  c->ep.host);
		return;
	}
	struct gw_resolve *r = calloc(1, sizeof(*r));
	if (!r) {
		conn_fail(c, -ENOMEM, "out of memory");
		return;
	}
	r->job.run = resolve_run;
	r->job.done = resolve_done;
	r->conn = c;
	sv_fmt(r->host, sizeof(r->host), "%s", c->ep.host);
	sv_fmt(r->port, sizeof(r->port), "%s", port);
	int e = sv_workers_submit(c->workers, &r->job);
	if (e < 0) {
		free(r);
		conn_fail(c, e, "cannot resolve gateway host %s: %s", c->ep.host, strerror(-e));
		return;
	}
	c->resolve = r;
	c->state = GW_RESOLVING;
}

/* ------------------------------------------------------------------ timers */

static void on_kick(struct sv_loop *loop, struct sv_timer *t)
{
	(void)loop;
	struct gw_conn *c = t->data;
	if (c->state == GW_INIT) {
		start(c);
		return;
	}
	if (c->state == GW_READY && c->tls && gw_tls_pending(c->tls) > 0 && do_read(c) < 0)
		return;
	gw_conn_service(c);
}

static void on_connect_timeout(struct sv_loop *loop, struct sv_timer *t)
{
	(void)loop;
	struct gw_conn *c = t->data;
	if (c->state == GW_READY || c->state == GW_CLOSED)
		return;
	conn_fail(c, -ETIMEDOUT, "connecting to gateway %s timed out after %u ms", c->ep.authority,
		  c->connect_timeout_ms);
}

static void on_ping_tick(struct sv_loop *loop, struct sv_timer *t)
{
	(void)loop;
	struct gw_conn *c = t->data;
	if (c->state != GW_READY || c->ping_outstanding)
		return;
	static const uint8_t opaque[8] = {'g', 'w', 'p', 'i', 'n', 'g', 0, 0};
	int r = nghttp2_submit_ping(c->h2, NGHTTP2_FLAG_NONE, opaque);
	if (r != 0) {
		conn_fail(c, -EPROTO, "HTTP/2 PING: %s", nghttp2_strerror(r));
		return;
	}
	c->ping_outstanding = true;
	sv_timer_arm(&c->ping_deadline, c->ping_timeout_ms, 0);
	gw_conn_service(c);
}

static void on_ping_deadline(struct sv_loop *loop, struct sv_timer *t)
{
	(void)loop;
	struct gw_conn *c = t->data;
	if (c->state != GW_READY || !c->ping_outstanding)
		return;
	conn_fail(c, -ETIMEDOUT, "gateway %s did not answer an HTTP/2 PING within %u ms",
		  c->ep.authority, c->ping_timeout_ms);
}

/* ------------------------------------------------------------------ lifecycle */

void gw_conn_opts_from_env(struct gw_conn_opts *opts)
{
	opts->ca_file = getenv("OPENSHELL_TLS_CA");
	opts->cert_file = getenv("OPENSHELL_TLS_CERT");
	opts->key_file = getenv("OPENSHELL_TLS_KEY");
	opts->server_name = getenv("OPENSHELL_GATEWAY_TLS_SERVER_NAME");
}

static int h2_new(struct gw_conn *c, struct sv_err *err)
{
	nghttp2_session_callbacks *cbs;
	nghttp2_option *opt;
	if (nghttp2_session_callbacks_new(&cbs) != 0)
		return sv_err_set(err, ENOMEM, "out of memory");
	if (nghttp2_option_new(&opt) != 0) {
		nghttp2_session_callbacks_del(cbs);
		return sv_err_set(err, ENOMEM, "out of memory");
	}
	gw_calls_set_callbacks(cbs);
	/* Streams return window only as their bytes reach on_message (gw_call_pause). */
	nghttp2_option_set_no_auto_window_update(opt, 1);
	int r = nghttp2_session_client_new2(&c->h2, cbs, c, opt);
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cbs);
	if (r != 0)
		return sv_err_set(err, ENOMEM, "HTTP/2 session: %s", nghttp2_strerror(r));
	const nghttp2_settings_entry iv[] = {
	    {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
	    {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, GW_STREAM_WINDOW},
	};
	r = nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, SV_ARRAY_SIZE(iv));
	if (r == 0)
		r = nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0,
							  (int32_t)GW_CONN_WINDOW);
	if (r != 0)
		return sv_err_set(err, EPROTO, "HTTP/2 settings: %s", nghttp2_strerror(r));
	return 0;
}

static void timers_close(struct gw_conn *c)
{
	sv_timer_close(c->loop, &c->connect_timer);
	sv_timer_close(c->loop, &c->ping_timer);
	sv_timer_close(c->loop, &c->ping_deadline);
	sv_timer_close(c->loop, &c->kick);
}

int gw_conn_new(struct sv_loop *loop, const struct gw_conn_opts *opts,
		const struct gw_conn_cbs *cbs, struct gw_conn **out, struct sv_err *err)
{
	struct gw_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return sv_err_set(err, ENOMEM, "out of memory");
	c->loop = loop;
	c->cbs = *cbs;
	c->sock.fd = -1;
	c->sock.fn = on_sock;
	c->sock.data = c;
	c->connect_timer.w.fd = c->ping_timer.w.fd = c->ping_deadline.w.fd = c->kick.w.fd = -1;
	c->connect_timeout_ms =
	    opts->connect_timeout_ms ? opts->connect_timeout_ms : GW_CONNECT_TIMEOUT_MS;
	c->ping_interval_ms = opts->ping_interval_ms ? opts->ping_interval_ms : GW_PING_INTERVAL_MS;
	c->ping_timeout_ms = opts->ping_timeout_ms ? opts->ping_timeout_ms : GW_PING_TIMEOUT_MS;
	c->workers = opts->workers;
	int r = gw_endpoint_parse(opts->endpoint, &c->ep, err);
	if (r == 0 && c->ep.tls)
		r = gw_tls_new(opts, c->ep.host, &c->tls, err);
	struct in6_addr a6;
	if (r == 0 && !c->workers && inet_pton(AF_INET, c->ep.host, &a6) != 1 &&
	    inet_pton(AF_INET6, c->ep.host, &a6) != 1)
		r = sv_err_set(err, EINVAL, "gateway host %s is a name but no resolver was given",
			       c->ep.host);
	if (r == 0)
		r = h2_new(c, err);
	if (r == 0 && ((r = sv_timer_init(loop, &c->connect_timer, on_connect_timeout, c)) < 0 ||
		       (r = sv_timer_init(loop, &c->ping_timer, on_ping_tick, c)) < 0 ||
		       (r = sv_timer_init(loop, &c->ping_deadline, on_ping_deadline, c)) < 0 ||
		       (r = sv_timer_init(loop, &c->kick, on_kick, c)) < 0))
		sv_err_set(err, -r, "timerfd: %s", strerror(-r));
	if (r == 0 && ((r = sv_timer_arm(&c->connect_timer, c->connect_timeout_ms, 0)) < 0 ||
		       (r = sv_timer_arm(&c->kick, 0, 0)) < 0))
		sv_err_set(err, -r, "timerfd: %s", strerror(-r));
	if (r < 0) {
		timers_close(c);
		if (c->h2)
			nghttp2_session_del(c->h2);
		gw_tls_free(c->tls);
		free(c);
		return r;
	}
	*out = c;
	return 0;
}

void gw_conn_free(struct gw_conn *c)
{
	if (!c || c->freed)
		return;
	c->freed = true;
	if (c->resolve)
		c->resolve->conn = NULL; /* the job frees itself when it is done */
	gw_calls_free_all(c);
	transport_close(c);
	timers_close(c);
	sv_loop_defer_free(c->loop, c);
}
