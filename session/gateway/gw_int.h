/* Private to the gateway transport: the gRPC wire helpers (gw_grpc.c) and the TLS glue
 * (gw_tls.c) that gw_conn.c is built on. Nothing outside session/gw_*.c and their unit tests
 * includes this; everything here works on bytes from the peer and must stay robust to garbage.
 */
#ifndef GW_INT_H
#define GW_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <nghttp2/nghttp2.h>
#include <sys/socket.h>

#include "session/gateway/gw_conn.h"
#include "supervisor/err.h"
#include "supervisor/loop.h"

/* ------------------------------------------------------------------ gRPC framing (gw_grpc.c) */

/* Length-Prefixed-Message: 1 flag byte (bit 0: compressed) + 4-byte big-endian length. */
#define GW_GRPC_PREFIX 5

void gw_grpc_prefix(uint8_t out[GW_GRPC_PREFIX], uint32_t len);

/* Reassembles messages from DATA payloads split anywhere. Holds at most one message (<= @max
 * bytes, allocated when its prefix arrives). */
struct gw_deframer {
	uint8_t hdr[GW_GRPC_PREFIX];
	size_t hdr_have;
	uint8_t *msg;	 /* owned */
	size_t msg_cap;	 /* allocated size of msg */
	size_t msg_len;	 /* length announced by the prefix */
	size_t msg_have; /* bytes of it received */
	size_t max;
	bool done; /* a whole message waits in msg (returned by the last feed) */
};

void gw_deframer_init(struct gw_deframer *d, size_t max);
void gw_deframer_free(struct gw_deframer *d);

/* Consume bytes of @p (at most @len) into the message being assembled; *@used says how many.
 * Returns 1 when a message is complete (stop there: *@msg and *@msg_len borrowed until the next
 * feed), 0 when all of @len was used without completing one, or an error with @err set:
 *   -ENOTSUP  compressed flag set (no grpc-encoding is ever negotiated);
 *   -EPROTO   a flag byte other than 0 or 1;
 *   -EMSGSIZE the announced length exceeds @max;
 *   -ENOMEM.
 * After an error the deframer is unusable (the stream is reset by the caller). */
int gw_deframer_feed(struct gw_deframer *d, const uint8_t *p, size_t len, size_t *used,
		     const uint8_t **msg, size_t *msg_len, struct sv_err *err);

/* True when no message is partly received (a stream may end here). */
bool gw_deframer_is_idle(const struct gw_deframer *d);

/* ------------------------------------------------------------------ gRPC headers (gw_grpc.c) */

/* grpc-timeout value for @ms ("<= 8 digits><unit>"): "250m", "100000S". NUL-terminated in
 * @buf (at least 12 bytes); returns the length. */
size_t gw_grpc_timeout_fmt(uint32_t ms, char *buf, size_t size);

/* Percent-decode a grpc-message value (%XX; a malformed escape is kept as is) into @out,
 * always NUL-terminated, truncated to @size - 1 bytes; control bytes other than tab become '?'
 * so the text can go into a log line. Returns the length written. */
size_t gw_grpc_pct_decode(const char *in, size_t len, char *out, size_t size);

/* grpc-status value: a decimal number 0..99 without sign or spaces, or -EINVAL. */
int gw_grpc_status_parse(const char *v, size_t len);

/* The gRPC status for an HTTP status other than 200 (grpc's http-grpc-status-mapping.md). */
int gw_grpc_status_from_http(int http_status);

/* ------------------------------------------------------------------ TLS (gw_tls.c) */

struct gw_tls;

/* Load the CA, client certificate and key (errors name OPENSHELL_TLS_CA / _CERT / _KEY),
 * seed a CTR-DRBG from getrandom (sv_entropy), and prepare a client for TLS 1.2/1.3 with ALPN
 * "h2", verifying the peer against the CA only, for the name @server_name if set else @host.
 * Returns 0 and *@out (owned, gw_tls_free) or -errno. */
int gw_tls_new(const struct gw_conn_opts *opts, const char *host, struct gw_tls **out,
	       struct sv_err *err);
void gw_tls_free(struct gw_tls *t);

/* Use the connected non-blocking socket @fd (borrowed). */
void gw_tls_set_fd(struct gw_tls *t, int fd);

/* Advance the handshake. Returns 0 when done and "h2" was negotiated, -EAGAIN when it must
 * wait for the socket (*@want_write: for writability, else readability), or -errno with @err
 * set (-EPROTO for a TLS failure, -EPERM for a certificate that does not verify). */
int gw_tls_handshake(struct gw_tls *t, bool *want_write, struct sv_err *err);

/* Read / write application data. Return bytes (read: 0 at the peer's close_notify or EOF),
 * -EAGAIN (*@want_write as above), or -errno with @err set. */
ssize_t gw_tls_read(struct gw_tls *t, uint8_t *buf, size_t len, bool *want_write,
		    struct sv_err *err);
ssize_t gw_tls_write(struct gw_tls *t, const uint8_t *buf, size_t len, bool *want_write,
		     struct sv_err *err);

/* Send close_notify, best effort (never waits). */
void gw_tls_close_notify(struct gw_tls *t);

/* Decrypted bytes buffered inside the TLS context (invisible to epoll). */
size_t gw_tls_pending(const struct gw_tls *t);

/* ------------------------------------------------------------------ connection (gw_conn.c) */

#define GW_ADDRS_MAX 8

enum gw_state { GW_INIT, GW_RESOLVING, GW_CONNECTING, GW_HANDSHAKE, GW_READY, GW_CLOSED };

/* A byte queue: the bytes are data[off, off + len). */
struct gw_buf {
	uint8_t *data;
	size_t off, len, cap;
};

struct gw_resolve;

struct gw_conn {
	struct sv_loop *loop;
	struct gw_conn_cbs cbs;
	struct gw_endpoint ep;
	enum gw_state state;
	bool freed; /* gw_conn_free ran: the struct lives on until the loop's batch ends */
	uint32_t connect_timeout_ms, ping_interval_ms, ping_timeout_ms;
	struct sv_workers *workers; /* borrowed */
	struct gw_resolve *resolve; /* pending name resolution */
	struct sockaddr_storage addrs[GW_ADDRS_MAX];
	socklen_t addrlens[GW_ADDRS_MAX];
	size_t n_addrs, next_addr;
	int last_err;	      /* positive errno of the last failed connect */
	struct sv_watch sock; /* fd -1 when none */
	uint32_t events;      /* registered epoll events */
	struct gw_tls *tls;   /* https:// only */
	bool tls_want_write;
	nghttp2_session *h2;  /* NULL once closed */
	const uint8_t *wpend; /* serialized by nghttp2, not yet written */
	size_t wpend_len;
	struct sv_timer connect_timer, ping_timer, ping_deadline, kick;
	bool ping_outstanding, goaway;
	struct gw_call *calls; /* open calls, and finished ones whose stream still lives */
};

/* Write what nghttp2 has, dispatch pending call events, re-arm epoll. Failure closes the
 * connection (callbacks included); check conn->freed afterwards. */
void gw_conn_service(struct gw_conn *conn);
/* Re-arm epoll for what nghttp2 wants now (after a submit); no callbacks. */
void gw_conn_update(struct gw_conn *conn);
/* Run gw_conn_service from the loop soon (never from inside the caller). */
void gw_conn_kick(struct gw_conn *conn);

/* ------------------------------------------------------------------ calls (gw_call.c) */

struct gw_call {
	struct gw_conn *conn;
	struct gw_call *next, *prev;
	int32_t stream_id;
	struct gw_call_cbs cbs;
	struct gw_buf in;  /* DATA received, not yet deframed (not consumed: in the window) */
	struct gw_buf out; /* framed messages not yet handed to nghttp2 */
	struct gw_deframer df;
	struct sv_timer deadline; /* w.fd -1 when no deadline */
	uint32_t deadline_ms;
	bool paused, send_closed, deferred, want_writable, writable_pending, needs_work;
	bool remote_closed, stream_closed, finished, zombie;
	uint32_t rst_code;
	int http_status, grpc_status; /* -1: not received */
	bool bad_content_type;
	char grpc_message[256];
};

void gw_calls_set_callbacks(nghttp2_session_callbacks *cbs);
/* Deliver messages, on_writable and final statuses; stops early if the connection is freed. */
void gw_calls_dispatch(struct gw_conn *conn);
/* The transport is gone (conn->h2 NULL): on_status(UNAVAILABLE, @why) to every open call. */
void gw_calls_fail_all(struct gw_conn *conn, const char *why);
/* gw_conn_free: release every call without a callback. */
void gw_calls_free_all(struct gw_conn *conn);

#endif
