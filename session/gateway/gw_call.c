/* gRPC calls on the gateway connection: one HTTP/2 stream each, with the request headers,
 * length-prefixed messages both ways, trailers to a final status, a local deadline, and flow
 * control that returns window to the peer only as messages reach the caller.
 *
 * The nghttp2 callbacks here only record (bytes, headers, closes); gw_calls_dispatch delivers to
 * the user afterwards. A finished call whose stream still lives stays as a "zombie" (no user
 * callbacks, its bytes consumed at once) until nghttp2 closes the stream.
 */
#include "session/gateway/gw_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* call->grpc_status when the trailer held something other than a status number. */
#define GRPC_STATUS_INVALID (-2)

/* ------------------------------------------------------------------ byte queues */

static int buf_append(struct gw_buf *b, const void *p, size_t n)
{
	if (n == 0)
		return 0;
	if (b->off > 0 && b->off + b->len + n > b->cap) { /* compact before growing */
		memmove(b->data, b->data + b->off, b->len);
		b->off = 0;
	}
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n)
			cap *= 2;
		uint8_t *d = realloc(b->data, cap);
		if (!d)
			return -ENOMEM;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->off + b->len, p, n);
	b->len += n;
	return 0;
}

static void buf_consume(struct gw_buf *b, size_t n)
{
	b->off += n;
	b->len -= n;
	if (b->len == 0)
		b->off = 0;
}

static void buf_free(struct gw_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

/* ------------------------------------------------------------------ lifecycle */

static void call_release(struct gw_call *call)
{
	struct gw_conn *c = call->conn;
	if (call->prev)
		call->prev->next = call->next;
	else
		c->calls = call->next;
	if (call->next)
		call->next->prev = call->prev;
	call->next = call->prev = NULL;
	sv_timer_close(c->loop, &call->deadline);
	buf_free(&call->in);
	buf_free(&call->out);
	gw_deframer_free(&call->df);
	sv_loop_defer_free(c->loop, call);
}

/* The call is over: reset its stream if it still lives, then (if @notify) on_status. */
static void call_finish(struct gw_call *call, int status, const char *msg, bool notify)
{
	struct gw_conn *c = call->conn;
	if (call->finished)
		return;
	call->finished = true;
	sv_timer_close(c->loop, &call->deadline);
	if (c->h2) {
		if (call->in.len > 0) /* give the unread bytes' stream window back */
			nghttp2_session_consume_stream(c->h2, call->stream_id, call->in.len);
		/* nghttp2 still holds the call (stream user data, data provider) until it
		 * closes the stream, even one whose HEADERS are still queued (the RST cancels
		 * them, and on_stream_close follows when the queue gets there). */
		if (!call->stream_closed) {
			nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, call->stream_id,
						  NGHTTP2_CANCEL);
			call->zombie = true;
		}
	}
	buf_free(&call->in);
	buf_free(&call->out);
	gw_deframer_free(&call->df);
	if (notify && call->cbs.on_status)
		call->cbs.on_status(call, status, msg, call->cbs.data);
	if (c->freed)
		return; /* gw_conn_free released every call */
	if (!call->zombie)
		call_release(call);
	gw_conn_update(c);
}

static void on_deadline(struct sv_loop *loop, struct sv_timer *t)
{
	(void)loop;
	struct gw_call *call = t->data;
	struct gw_conn *c = call->conn;
	char msg[64];
	sv_fmt(msg, sizeof(msg), "deadline of %u ms exceeded", call->deadline_ms);
	call_finish(call, GW_STATUS_DEADLINE_EXCEEDED, msg, true);
	gw_conn_service(c);
}

void gw_calls_fail_all(struct gw_conn *c, const char *why)
{
	while (c->calls && !c->freed) {
		struct gw_call *call = c->calls;
		if (call->finished) {
			call_release(call); /* a zombie: its stream died with the session */
			continue;
		}
		call_finish(call, GW_STATUS_UNAVAILABLE, why, true);
	}
}

void gw_calls_free_all(struct gw_conn *c)
{
	while (c->calls) {
		struct gw_call *call = c->calls;
		call->finished = true;
		call_release(call);
	}
}

/* ------------------------------------------------------------------ delivery */

static int rst_status(uint32_t code)
{
	switch (code) {
	case NGHTTP2_REFUSED_STREAM:
		return GW_STATUS_UNAVAILABLE;
	case NGHTTP2_CANCEL:
		return GW_STATUS_CANCELLED;
	case NGHTTP2_ENHANCE_YOUR_CALM:
		return GW_STATUS_RESOURCE_EXHAUSTED;
	case NGHTTP2_INADEQUATE_SECURITY:
		return GW_STATUS_PERMISSION_DENIED;
	default:
		return GW_STATUS_INTERNAL;
	}
}

/* The stream ended and every byte was delivered: the final status. */
static void call_end(struct gw_call *call)
{
	char msg[320];
	int st;
	if (!gw_deframer_is_idle(&call->df)) {
		st = GW_STATUS_INTERNAL;
		sv_fmt(msg, sizeof(msg), "the gateway ended the stream inside a gRPC message");
	} else if (call->grpc_status == GRPC_STATUS_INVALID) {
		st = GW_STATUS_UNKNOWN;
		sv_fmt(msg, sizeof(msg), "invalid grpc-status from the gateway");
	} else if (call->grpc_status >= 0) {
		st = call->grpc_status;
		sv_fmt(msg, sizeof(msg), "%s", call->grpc_message);
	} else if (call->http_status > 0 && call->http_status != 200) {
		st = gw_grpc_status_from_http(call->http_status);
		sv_fmt(msg, sizeof(msg), "HTTP status %d from the gateway", call->http_status);
	} else if (call->rst_code != NGHTTP2_NO_ERROR) {
		st = rst_status(call->rst_code);
		sv_fmt(msg, sizeof(msg), "stream reset by the gateway: %s",
		       nghttp2_http2_strerror(call->rst_code));
	} else if (call->bad_content_type) {
		st = GW_STATUS_UNKNOWN;
		sv_fmt(msg, sizeof(msg),
		       "the gateway answered without content-type application/grpc");
	} else {
		st = GW_STATUS_INTERNAL;
		sv_fmt(msg, sizeof(msg), "the gateway ended the stream without a grpc-status");
	}
	call_finish(call, st, msg, true);
}

static void call_process(struct gw_call *call)
{
	struct gw_conn *c = call->conn;
	while (!call->paused && call->in.len > 0) {
		size_t used = 0, mlen = 0;
		const uint8_t *m = NULL;
		struct sv_err err = {0};
		int r = gw_deframer_feed(&call->df, call->in.data + call->in.off, call->in.len,
					 &used, &m, &mlen, &err);
		if (used > 0 && c->h2)
			nghttp2_session_consume_stream(c->h2, call->stream_id, used);
		buf_consume(&call->in, used);
		if (r < 0) {
			call_finish(call,
				    r == -EMSGSIZE ? GW_STATUS_RESOURCE_EXHAUSTED
						   : GW_STATUS_INTERNAL,
				    err.msg, true);
			return;
		}
		if (r == 1 && call->cbs.on_message) {
			call->cbs.on_message(call, m, mlen, call->cbs.data);
			if (c->freed || call->finished)
				return;
		}
	}
	if (call->writable_pending) {
		call->writable_pending = false;
		if (call->cbs.on_writable) {
			call->cbs.on_writable(call, call->cbs.data);
			if (c->freed || call->finished)
				return;
		}
	}
	if (!call->paused && call->in.len == 0 && (call->remote_closed || call->stream_closed))
		call_end(call);
}

void gw_calls_dispatch(struct gw_conn *c)
{
	bool again = true;
	while (again && !c->freed) {
		again = false;
		for (struct gw_call *call = c->calls; call; call = call->next) {
			if (!call->needs_work || call->finished)
				continue;
			call->needs_work = false;
			call_process(call);
			again = true; /* the list may have changed: scan afresh */
			break;
		}
	}
}

/* ------------------------------------------------------------------ nghttp2 callbacks */

static struct gw_call *stream_call(nghttp2_session *s, int32_t id)
{
	return nghttp2_session_get_stream_user_data(s, id);
}

static bool name_is(const uint8_t *name, size_t len, const char *lit)
{
	return len == strlen(lit) && memcmp(name, lit, len) == 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
		     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
		     void *user)
{
	(void)flags;
	(void)user;
	if (frame->hd.type != NGHTTP2_HEADERS)
		return 0;
	struct gw_call *call = stream_call(s, frame->hd.stream_id);
	if (!call || call->finished)
		return 0;
	const char *v = (const char *)value;
	if (name_is(name, namelen, ":status")) {
		int st = 0;
		for (size_t i = 0; i < valuelen && i < 3; i++)
			st = v[i] >= '0' && v[i] <= '9' ? st * 10 + (v[i] - '0') : 999;
		call->http_status = valuelen == 3 ? st : 999;
	} else if (name_is(name, namelen, "grpc-status")) {
		int st = gw_grpc_status_parse(v, valuelen);
		call->grpc_status = st < 0 ? GRPC_STATUS_INVALID : st;
	} else if (name_is(name, namelen, "grpc-message")) {
		gw_grpc_pct_decode(v, valuelen, call->grpc_message, sizeof(call->grpc_message));
	} else if (name_is(name, namelen, "content-type")) {
		static const char ct[] = "application/grpc";
		size_t n = sizeof(ct) - 1;
		call->bad_content_type = !(valuelen >= n && memcmp(v, ct, n) == 0 &&
					   (valuelen == n || v[n] == '+' || v[n] == ';'));
	}
	return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *user)
{
	struct gw_conn *c = user;
	switch (frame->hd.type) {
	case NGHTTP2_PING:
		if (frame->hd.flags & NGHTTP2_FLAG_ACK) {
			c->ping_outstanding = false;
			sv_timer_disarm(&c->ping_deadline);
		}
		return 0;
	case NGHTTP2_GOAWAY:
		c->goaway = true;
		return 0;
	case NGHTTP2_HEADERS:
	case NGHTTP2_DATA:
		if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
			struct gw_call *call = stream_call(s, frame->hd.stream_id);
			if (call && !call->finished) {
				call->remote_closed = true;
				call->needs_work = true;
			}
		}
		return 0;
	default:
		return 0;
	}
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
			 size_t len, void *user)
{
	(void)flags;
	(void)user;
	struct gw_call *call = stream_call(s, id);
	if (!call || call->finished) {
		nghttp2_session_consume(s, id, len); /* nobody reads it: window back at once */
		return 0;
	}
	if (buf_append(&call->in, data, len) < 0)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	/* The connection's window comes back as soon as the bytes are buffered: what a paused
	 * call holds is bounded by its own stream window, and it never starves other streams. */
	nghttp2_session_consume_connection(s, len);
	call->needs_work = true;
	return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *user)
{
	(void)user;
	struct gw_call *call = stream_call(s, id);
	if (!call)
		return 0;
	nghttp2_session_set_stream_user_data(s, id, NULL);
	call->stream_closed = true;
	call->rst_code = code;
	if (call->zombie) {
		call_release(call);
		return 0;
	}
	call->needs_work = true;
	return 0;
}

static ssize_t data_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
			 uint32_t *flags, nghttp2_data_source *src, void *user)
{
	(void)s;
	(void)id;
	(void)user;
	struct gw_call *call = src->ptr;
	if (call->finished)
		return NGHTTP2_ERR_DEFERRED; /* its RST_STREAM is queued */
	size_t n = call->out.len < length ? call->out.len : length;
	if (n > 0)
		memcpy(buf, call->out.data + call->out.off, n);
	buf_consume(&call->out, n);
	if (call->want_writable && call->out.len < GW_SEND_QUEUE_MAX / 2) {
		call->want_writable = false;
		call->writable_pending = true;
		call->needs_work = true;
	}
	if (call->out.len == 0 && call->send_closed) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		return (ssize_t)n;
	}
	if (n == 0) {
		call->deferred = true;
		return NGHTTP2_ERR_DEFERRED;
	}
	return (ssize_t)n;
}

void gw_calls_set_callbacks(nghttp2_session_callbacks *cbs)
{
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
}

/* ------------------------------------------------------------------ public API */

#define NV(n, v, fl)                           \
	((nghttp2_nv){.name = (uint8_t *)(n),  \
		      .value = (uint8_t *)(v), \
		      .namelen = strlen(n),    \
		      .valuelen = strlen(v),   \
		      .flags = (fl)})

int gw_call_start(struct gw_conn *c, const char *path, const char *bearer, uint32_t deadline_ms,
		  const struct gw_call_cbs *cbs, struct gw_call **out, struct sv_err *err)
{
	if (!c || c->freed || c->state == GW_CLOSED || c->goaway || !c->h2)
		return sv_err_set(err, ENOTCONN, "the gateway connection is closed");
	if (!path || path[0] != '/')
		return sv_err_set(err, EINVAL, "gRPC method path must start with '/'");
	struct gw_call *call = calloc(1, sizeof(*call));
	if (!call)
		return sv_err_set(err, ENOMEM, "out of memory");
	call->conn = c;
	call->cbs = *cbs;
	call->http_status = call->grpc_status = -1;
	call->deadline.w.fd = -1;
	call->deadline_ms = deadline_ms;
	gw_deframer_init(&call->df, GW_MSG_MAX);
	if (deadline_ms) {
		int r = sv_timer_init(c->loop, &call->deadline, on_deadline, call);
		if (r == 0)
			r = sv_timer_arm(&call->deadline, deadline_ms, 0);
		if (r < 0) {
			sv_timer_close(c->loop, &call->deadline);
			free(call);
			return sv_err_set(err, -r, "timerfd: %s", strerror(-r));
		}
	}
	char timeout[16];
	nghttp2_nv nva[8];
	size_t n = 0;
	nva[n++] = NV(":method", "POST", NGHTTP2_NV_FLAG_NONE);
	nva[n++] = NV(":scheme", c->ep.tls ? "https" : "http", NGHTTP2_NV_FLAG_NONE);
	nva[n++] = NV(":path", path, NGHTTP2_NV_FLAG_NONE);
	nva[n++] = NV(":authority", c->ep.authority, NGHTTP2_NV_FLAG_NONE);
	nva[n++] = NV("content-type", "application/grpc", NGHTTP2_NV_FLAG_NONE);
	nva[n++] = NV("te", "trailers", NGHTTP2_NV_FLAG_NONE);
	if (deadline_ms) {
		gw_grpc_timeout_fmt(deadline_ms, timeout, sizeof(timeout));
		nva[n++] = NV("grpc-timeout", timeout, NGHTTP2_NV_FLAG_NONE);
	}
	char *auth = NULL;
	size_t auth_len = 0;
	if (bearer) {
		auth_len = strlen("Bearer ") + strlen(bearer) + 1;
		auth = malloc(auth_len);
		if (!auth) {
			sv_timer_close(c->loop, &call->deadline);
			free(call);
			return sv_err_set(err, ENOMEM, "out of memory");
		}
		sv_fmt(auth, auth_len, "Bearer %s", bearer);
		/* Never indexed by HPACK, so it never sits in a compression table. */
		nva[n++] = NV("authorization", auth, NGHTTP2_NV_FLAG_NO_INDEX);
	}
	nghttp2_data_provider dp = {.source.ptr = call, .read_callback = data_read};
	int32_t id = nghttp2_submit_request(c->h2, NULL, nva, n, &dp, call);
	if (auth) {
		explicit_bzero(auth, auth_len);
		free(auth);
	}
	if (id < 0) {
		sv_timer_close(c->loop, &call->deadline);
		free(call);
		return sv_err_set(err, EIO, "cannot start %s: %s", path, nghttp2_strerror(id));
	}
	call->stream_id = id;
	call->next = c->calls;
	if (c->calls)
		c->calls->prev = call;
	c->calls = call;
	gw_conn_update(c);
	*out = call;
	return 0;
}

static void resume(struct gw_call *call)
{
	struct gw_conn *c = call->conn;
	if (call->deferred && c->h2) {
		call->deferred = false;
		nghttp2_session_resume_data(c->h2, call->stream_id);
	}
	gw_conn_update(c);
}

int gw_call_send(struct gw_call *call, const uint8_t *msg, size_t len)
{
	if (!call || call->finished || call->send_closed)
		return -EPIPE;
	if (len > GW_MSG_MAX)
		return -EMSGSIZE;
	if (call->out.len >= GW_SEND_QUEUE_MAX) {
		call->want_writable = true;
		return -EAGAIN;
	}
	uint8_t pfx[GW_GRPC_PREFIX];
	gw_grpc_prefix(pfx, (uint32_t)len);
	size_t before = call->out.len;
	if (buf_append(&call->out, pfx, sizeof(pfx)) < 0 || buf_append(&call->out, msg, len) < 0) {
		call->out.len = before;
		return -ENOMEM;
	}
	resume(call);
	return 0;
}

size_t gw_call_queued(const struct gw_call *call)
{
	return call ? call->out.len : 0;
}

int gw_call_close_send(struct gw_call *call)
{
	if (!call || call->finished || call->send_closed)
		return -EPIPE;
	call->send_closed = true;
	resume(call);
	return 0;
}

void gw_call_pause(struct gw_call *call, bool paused)
{
	if (!call || call->finished || call->paused == paused)
		return;
	call->paused = paused;
	if (!paused) {
		call->needs_work = true;
		gw_conn_kick(call->conn);
	}
}

void gw_call_cancel(struct gw_call *call)
{
	if (!call || call->finished)
		return;
	struct gw_conn *c = call->conn;
	call_finish(call, GW_STATUS_CANCELLED, "", false);
	gw_conn_kick(c); /* write the RST_STREAM soon */
}
