/* Relays (contract §10 step 4): a RelayOpen from the gateway opens the target (the SSH socket,
 * or a loopback TCP port dialed inside the agent's network namespace), answers RelayOpenResult,
 * then bridges the target to a RelayStream call on the same connection: RelayInit first, data
 * frames of at most 16 KiB after, half-close carried both ways.
 *
 * Flow control both ways, never unbounded memory: a target that does not take bytes pauses the
 * call (HTTP/2 window not returned); a call whose send queue is full stops the target's reads.
 * One slow side stalls only its own relay.
 */
#include "gw_sess.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netns/netns.h"
#include "openshell.pb-c.h"
#include "supervisor/log.h"

#define GW_RELAY_MAX 1024      /* open relays at once; more are refused */
#define GW_CHANNEL_ID_MAX 256  /* bytes of a channel id we accept */
#define GW_RELAY_READS_PER_EVENT 4 /* 64 KiB per wakeup, then let others run */
/* A target that has not accepted within this long is given up (contract §10 step 4: the gateway
 * itself gives up on a pending relay after 10 s). */
#define GW_RELAY_CONNECT_TIMEOUT_MS 10000

struct gw_relay {
	struct gw_relay *next;
	struct gw_session *s;
	char channel_id[GW_CHANNEL_ID_MAX + 1];
	char target[80]; /* for logs: "ssh" or "tcp:host:port" */
	int fd;
	struct sv_watch w;
	uint32_t events;
	bool connecting;
	struct sv_timer connect_timer; /* armed only while connecting */
	struct gw_call *call;
	bool paused;
	bool gw_eof;     /* the gateway ended its stream (status OK) */
	bool target_eof; /* the target ended its output */
	bool sent_close; /* close_send done */
	bool send_blocked;
	/* gateway -> target bytes the target has not taken yet */
	uint8_t *out;
	size_t out_off, out_len, out_cap;
	/* target -> gateway: one packed frame at pbuf + pend_off, kept while gw_call_send says
	 * -EAGAIN */
	size_t pend_off, pend_len;
	uint64_t to_target, from_target;
	uint8_t pbuf[GW_RELAY_HDR + GW_RELAY_CHUNK + 16];
};

static void relay_set_events(struct gw_relay *r, uint32_t want)
{
	if (r->fd < 0)
		return;
	if (want == 0) {
		sv_loop_del(r->s->loop, &r->w);
	} else if (!r->w.added) {
		(void)sv_loop_add(r->s->loop, &r->w, want);
	} else if (want != r->events) {
		(void)sv_loop_mod(r->s->loop, &r->w, want);
	}
	r->events = want;
}

static void relay_update(struct gw_relay *r)
{
	uint32_t want = 0;
	if (r->connecting)
		want = EPOLLOUT;
	else {
		if (!r->target_eof && !r->send_blocked && r->call && !r->gw_eof)
			want |= EPOLLIN;
		if (r->out_len)
			want |= EPOLLOUT;
	}
	relay_set_events(r, want);
}

static void relay_unlink(struct gw_relay *r)
{
	struct gw_session *s = r->s;
	for (struct gw_relay **pp = &s->relays; *pp; pp = &(*pp)->next) {
		if (*pp == r) {
			*pp = r->next;
			s->nrelays--;
			if (s->nrelays == 0)
				gw_exit_relays_gone(s);
			return;
		}
	}
}

/* End the relay: close the target, cancel the call when @cancel, free after this batch. */
static void relay_end(struct gw_relay *r, bool cancel, const char *reason)
{
	sv_timer_close(r->s->loop, &r->connect_timer);
	relay_unlink(r);
	sv_loop_del(r->s->loop, &r->w);
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	if (r->call && cancel)
		gw_call_cancel(r->call);
	r->call = NULL;
	char in[24], out[24];
	sv_fmt(in, sizeof(in), "%llu", (unsigned long long)r->to_target);
	sv_fmt(out, sizeof(out), "%llu", (unsigned long long)r->from_target);
	sv_log_kv(SV_LOG_INFO, GW_COMP, "relay_closed", "relay closed",
		  SV_KVS({"channel_id", r->channel_id}, {"target", r->target},
			 {"bytes_to_target", in}, {"bytes_from_target", out}, {"reason", reason}));
	free(r->out);
	r->out = NULL;
	sv_loop_defer_free(r->s->loop, r);
}

void gw_relay_close_all(struct gw_session *s, bool cancel)
{
	while (s->relays) {
		struct gw_relay *r = s->relays;
		if (!cancel)
			r->call = NULL; /* freed with the connection */
		relay_end(r, cancel, "session ended");
	}
}

/* After the gateway's end: once every byte reached the target, shut its write side. */
static void relay_maybe_done(struct gw_relay *r)
{
	if (!r->gw_eof || r->out_len)
		return;
	(void)shutdown(r->fd, SHUT_WR);
	relay_end(r, false, "gateway ended the stream");
}

/* Write what waits for the target. Returns false when the relay ended. */
static bool relay_flush_out(struct gw_relay *r)
{
	while (r->out_len) {
		ssize_t n = send(r->fd, r->out + r->out_off, r->out_len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0) {
			relay_end(r, true, "target write failed");
			return false;
		}
		r->out_off += (size_t)n;
		r->out_len -= (size_t)n;
		r->to_target += (uint64_t)n;
	}
	if (r->out_len == 0) {
		r->out_off = 0;
		if (r->paused && r->call) {
			r->paused = false;
			gw_call_pause(r->call, false);
		}
		if (r->gw_eof) {
			relay_maybe_done(r);
			return false;
		}
	}
	return true;
}

static void relay_send_close(struct gw_relay *r)
{
	if (r->sent_close || r->send_blocked || !r->call)
		return;
	r->sent_close = true;
	(void)gw_call_close_send(r->call);
}

/* Send the packed frame in pbuf. Returns 0, or -EAGAIN (kept in pend_len), or -errno. */
static int relay_send_pending(struct gw_relay *r)
{
	int rc = gw_call_send(r->call, r->pbuf + r->pend_off, r->pend_len);
	if (rc == -EAGAIN) {
		r->send_blocked = true;
		return rc;
	}
	r->send_blocked = false;
	r->pend_len = 0;
	return rc;
}

/* Read the target and send frames until it would block, the call is full, or it ended. */
static void relay_pump_in(struct gw_relay *r)
{
	for (int i = 0; i < GW_RELAY_READS_PER_EVENT; i++) {
		if (r->target_eof || r->send_blocked || !r->call || r->gw_eof)
			return;
		ssize_t n = read(r->fd, r->pbuf + GW_RELAY_HDR, GW_RELAY_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			r->target_eof = true; /* EOF, or an error: the target has nothing more */
			relay_send_close(r);
			return;
		}
		r->pend_off = gw_relay_data_header(r->pbuf, (size_t)n);
		r->pend_len = GW_RELAY_HDR - r->pend_off + (size_t)n;
		r->from_target += (uint64_t)n;
		int rc = relay_send_pending(r);
		if (rc == -EAGAIN)
			return;
		if (rc < 0) {
			relay_end(r, true, "gateway stream refused data");
			return;
		}
	}
}

static void relay_on_message(struct gw_call *call, const uint8_t *msg, size_t len, void *data)
{
	(void)call;
	struct gw_relay *r = data;
	const uint8_t *p;
	size_t n;
	Openshell__V1__RelayFrame *f = NULL;
	if (!gw_relay_data_view(msg, len, &p, &n)) {
		f = openshell__v1__relay_frame__unpack(NULL, len, msg);
		if (!f || f->payload_case != OPENSHELL__V1__RELAY_FRAME__PAYLOAD_DATA) {
			if (f)
				openshell__v1__relay_frame__free_unpacked(f, NULL);
			relay_end(r, true, "inbound frame is not data");
			return;
		}
		p = f->data.data;
		n = f->data.len;
	}
	if (n && r->out_len == 0) {
		ssize_t w;
		do
			w = send(r->fd, p, n, MSG_NOSIGNAL);
		while (w < 0 && errno == EINTR);
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			if (f)
				openshell__v1__relay_frame__free_unpacked(f, NULL);
			relay_end(r, true, "target write failed");
			return;
		}
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			r->to_target += (uint64_t)w;
		}
	}
	if (n) {
		if (r->out_off + r->out_len + n > r->out_cap) {
			memmove(r->out, r->out + r->out_off, r->out_len);
			r->out_off = 0;
			if (r->out_len + n > r->out_cap) {
				size_t cap = r->out_len + n;
				uint8_t *nb = realloc(r->out, cap);
				if (!nb) {
					if (f)
						openshell__v1__relay_frame__free_unpacked(f, NULL);
					relay_end(r, true, "out of memory");
					return;
				}
				r->out = nb;
				r->out_cap = cap;
			}
		}
		memcpy(r->out + r->out_off + r->out_len, p, n);
		r->out_len += n;
		if (!r->paused) {
			r->paused = true; /* the target is slow: leave the bytes in the window */
			gw_call_pause(r->call, true);
		}
	}
	if (f)
		openshell__v1__relay_frame__free_unpacked(f, NULL);
	relay_update(r);
}

static void relay_on_writable(struct gw_call *call, void *data)
{
	(void)call;
	struct gw_relay *r = data;
	if (r->pend_len) {
		int rc = relay_send_pending(r);
		if (rc == -EAGAIN)
			return;
		if (rc < 0) {
			relay_end(r, true, "gateway stream refused data");
			return;
		}
	}
	if (r->target_eof)
		relay_send_close(r);
	relay_update(r);
}

static void relay_on_status(struct gw_call *call, int status, const char *message, void *data)
{
	(void)call;
	struct gw_relay *r = data;
	r->call = NULL;
	if (status != GW_STATUS_OK) {
		char why[160];
		sv_fmt(why, sizeof(why), "status %d: %s", status,
		       message && *message ? message : "-");
		relay_end(r, false, why);
		return;
	}
	r->gw_eof = true;
	if (r->paused)
		r->paused = false;
	relay_maybe_done(r);
	if (r->out_len) /* still writing the tail to the target */
		relay_update(r);
}

static void relay_fail_open(struct gw_relay *r, const char *error)
{
	sv_log_kv(SV_LOG_WARN, GW_COMP, "relay_open_failed", "relay target cannot be opened",
		  SV_KVS({"channel_id", r->channel_id}, {"target", r->target}, {"error", error}));
	gw_session_send_open_result(r->s, r->channel_id, false, error);
	sv_timer_close(r->s->loop, &r->connect_timer);
	r->call = NULL;
	relay_unlink(r);
	sv_loop_del(r->s->loop, &r->w);
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	sv_loop_defer_free(r->s->loop, r);
}

static void relay_connected(struct gw_relay *r)
{
	r->connecting = false;
	sv_timer_close(r->s->loop, &r->connect_timer);
	struct gw_session *s = r->s;
	gw_session_send_open_result(s, r->channel_id, true, "");
	static const struct gw_call_cbs tmpl = {.on_message = relay_on_message,
						.on_writable = relay_on_writable,
						.on_status = relay_on_status};
	struct gw_call_cbs cbs = tmpl;
	cbs.data = r;
	struct sv_err err = {0};
	struct gw_conn *conn = gw_session_conn(s);
	int rc = conn ? gw_call_start(conn, GW_METHOD("RelayStream"), gw_client_bearer(s->c), 0,
				      &cbs, &r->call, &err)
		      : -ENOTCONN;
	if (rc == 0) {
		Openshell__V1__RelayInit init = OPENSHELL__V1__RELAY_INIT__INIT;
		init.channel_id = r->channel_id;
		Openshell__V1__RelayFrame f = OPENSHELL__V1__RELAY_FRAME__INIT;
		f.payload_case = OPENSHELL__V1__RELAY_FRAME__PAYLOAD_INIT;
		f.init = &init;
		if (openshell__v1__relay_frame__get_packed_size(&f) > sizeof(r->pbuf)) {
			relay_end(r, true, "channel id too long");
			return;
		}
		r->pend_off = 0;
		r->pend_len = openshell__v1__relay_frame__pack(&f, r->pbuf);
		rc = relay_send_pending(r);
	}
	if (rc < 0 && rc != -EAGAIN) {
		relay_end(r, true, err.msg[0] ? err.msg : "RelayStream could not start");
		return;
	}
	sv_log_kv(SV_LOG_INFO, GW_COMP, "relay_opened", "relay open",
		  SV_KVS({"channel_id", r->channel_id}, {"target", r->target}));
	relay_update(r);
}

static void relay_on_fd(struct sv_loop *loop, struct sv_watch *w, uint32_t events)
{
	(void)loop;
	struct gw_relay *r = w->data;
	if (r->connecting) {
		int e = 0;
		socklen_t el = sizeof(e);
		if (getsockopt(r->fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0)
			e = errno;
		if (e) {
			char msg[200];
			sv_fmt(msg, sizeof(msg), "cannot connect to %s: %s", r->target, strerror(e));
			relay_fail_open(r, msg);
			return;
		}
		relay_connected(r);
		return;
	}
	if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && r->out_len && !relay_flush_out(r))
		return;
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		relay_pump_in(r);
	/* relay_pump_in may have ended the relay: it is then unlinked and its fd is -1 */
	if (r->fd >= 0)
		relay_update(r);
}

static void relay_on_connect_timeout(struct sv_loop *loop, struct sv_timer *t)
{
	(void)loop;
	struct gw_relay *r = t->data;
	if (r->connecting)
		relay_fail_open(r, "the target did not accept the connection within 10 s");
}

/* A socket for @ss: TCP ones are created inside the agent's namespace (only socket(2) runs
 * there: a socket belongs to the namespace it was made in). */
static int relay_socket(struct gw_session *s, int family, bool tcp, char *msg, size_t msz)
{
	int fd;
	if (!tcp) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			sv_fmt(msg, msz, "socket: %s", strerror(errno));
		return fd;
	}
	if (!s->o.netns) {
		sv_fmt(msg, msz, "no sandbox network namespace to dial in");
		return -1;
	}
	int r = nns_enter(s->o.netns);
	if (r < 0) {
		sv_fmt(msg, msz, "cannot enter the sandbox network namespace: %s", strerror(-r));
		return -1;
	}
	fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int e = errno;
	r = nns_leave(s->o.netns);
	if (r < 0) {
		/* The loop thread would stay in the agent's namespace: never carry on like that. */
		sv_error(GW_COMP, "netns_leave_failed",
			 "cannot return to the supervisor's network namespace: %s", strerror(-r));
		abort();
	}
	if (fd < 0) {
		sv_fmt(msg, msz, "socket: %s", strerror(e));
		return -1;
	}
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

void gw_relay_open(struct gw_session *s, const char *channel_id, int target_case,
		   const char *tcp_host, uint32_t tcp_port)
{
	if (!*channel_id || strlen(channel_id) > GW_CHANNEL_ID_MAX) {
		sv_warn(GW_COMP, "relay_open_invalid", "RelayOpen with an empty or oversized channel id");
		gw_session_send_open_result(s, channel_id, false, "invalid channel_id");
		return;
	}
	struct gw_relay *r = calloc(1, sizeof(*r));
	if (!r) {
		gw_session_send_open_result(s, channel_id, false, "out of memory");
		return;
	}
	r->s = s;
	r->fd = -1;
	r->w = (struct sv_watch){.fd = -1, .fn = relay_on_fd, .data = r};
	r->connect_timer.w.fd = -1;
	sv_fmt(r->channel_id, sizeof(r->channel_id), "%s", channel_id);
	r->next = s->relays;
	s->relays = r;
	s->nrelays++;
	if (s->state == GW_EXITING) { /* only the open ones are waited for */
		relay_fail_open(r, "the sandbox is exiting");
		return;
	}

	bool tcp = target_case == OPENSHELL__V1__RELAY_OPEN__TARGET_TCP;
	if (tcp)
		sv_fmt(r->target, sizeof(r->target), "tcp:%.40s:%u", tcp_host, tcp_port);
	else
		sv_fmt(r->target, sizeof(r->target), "ssh");
	if (s->nrelays > GW_RELAY_MAX) {
		relay_fail_open(r, "too many open relays");
		return;
	}
	struct sockaddr_storage ss;
	socklen_t sl;
	struct sv_err err = {0};
	int rc = tcp ? gw_tcp_target_resolve(tcp_host, tcp_port, &ss, &sl, &err)
		     : gw_unix_addr(s->o.ssh_socket_path, &ss, &sl, &err);
	if (rc < 0) {
		relay_fail_open(r, err.msg);
		return;
	}
	char msg[240];
	r->fd = relay_socket(s, ss.ss_family, tcp, msg, sizeof(msg));
	r->w.fd = r->fd;
	if (r->fd < 0) {
		relay_fail_open(r, msg);
		return;
	}
	int c;
	do
		c = connect(r->fd, (struct sockaddr *)&ss, sl);
	while (c < 0 && errno == EINTR);
	if (c < 0 && errno == EINPROGRESS) {
		r->connecting = true;
		if (sv_timer_init(s->loop, &r->connect_timer, relay_on_connect_timeout, r) == 0)
			(void)sv_timer_arm(&r->connect_timer, GW_RELAY_CONNECT_TIMEOUT_MS, 0);
		relay_update(r);
		return;
	}
	if (c < 0) {
		if (tcp)
			sv_fmt(msg, sizeof(msg), "cannot connect to %s:%u in the sandbox: %s",
			       tcp_host, tcp_port, strerror(errno));
		else
			sv_fmt(msg, sizeof(msg), "cannot connect to the SSH socket %s: %s",
			       s->o.ssh_socket_path, strerror(errno));
		relay_fail_open(r, msg);
		return;
	}
	relay_connected(r);
}
