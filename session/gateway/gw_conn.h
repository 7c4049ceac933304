/* The gateway transport: one HTTP/2 connection to OpenShell's gateway carrying gRPC calls
 * (contract §10 "Transport/auth"), driven by sv_loop. http://host[:port] is h2c with prior
 * knowledge; https://host[:port] is TLS 1.2/1.3 (mbedTLS) with ALPN "h2", trusting only the
 * configured CA and presenting the client certificate. Never blocks the loop: names resolve on
 * a worker, connect is non-blocking, a slow consumer stalls only its own stream.
 */
#ifndef GW_CONN_H
#define GW_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "supervisor/err.h"
#include "supervisor/loop.h"

/* ------------------------------------------------------------------ endpoint (gw_grpc.c) */

#define GW_HOST_MAX 255

struct gw_endpoint {
	bool tls;			 /* https:// */
	char host[GW_HOST_MAX + 1];	 /* without IPv6 brackets */
	uint16_t port;			 /* 80 / 443 when absent */
	char authority[GW_HOST_MAX + 9]; /* :authority, "host[:port]" as given (brackets kept) */
};

/* Parse "http://host[:port]" or "https://host[:port]" (an optional trailing "/" only: no path,
 * userinfo, query). Errors name the endpoint and what is wrong. Returns 0 or -EINVAL. */
int gw_endpoint_parse(const char *endpoint, struct gw_endpoint *ep, struct sv_err *err);

struct sv_workers;

/* gRPC status codes (grpc/doc/statuscodes.md) this module produces itself. */
#define GW_STATUS_OK		     0
#define GW_STATUS_CANCELLED	     1
#define GW_STATUS_UNKNOWN	     2
#define GW_STATUS_INVALID_ARGUMENT   3
#define GW_STATUS_DEADLINE_EXCEEDED  4
#define GW_STATUS_NOT_FOUND	     5
#define GW_STATUS_PERMISSION_DENIED  7
#define GW_STATUS_RESOURCE_EXHAUSTED 8
#define GW_STATUS_UNIMPLEMENTED	     12
#define GW_STATUS_INTERNAL	     13
#define GW_STATUS_UNAVAILABLE	     14
#define GW_STATUS_UNAUTHENTICATED    16

/* Defaults (contract §10: connect timeout 10 s, HTTP/2 keepalive 10 s, timeout 20 s). */
#define GW_CONNECT_TIMEOUT_MS 10000u
#define GW_PING_INTERVAL_MS   10000u
#define GW_PING_TIMEOUT_MS    20000u
/* Largest gRPC message either way (grpc's default receive limit is 4 MiB). A bigger inbound
 * message ends its call with RESOURCE_EXHAUSTED; gw_call_send refuses one with -EMSGSIZE. */
#define GW_MSG_MAX ((size_t)4 * 1024 * 1024)
/* Inbound flow-control windows. A stream's window is returned only as its messages reach
 * on_message, so one paused stream holds at most GW_STREAM_WINDOW bytes in memory; the
 * connection's window is returned as soon as bytes are buffered, so any number of paused
 * streams never stall the others (memory: GW_STREAM_WINDOW per open call at most). */
#define GW_STREAM_WINDOW ((uint32_t)1 * 1024 * 1024)
#define GW_CONN_WINDOW	 ((uint32_t)16 * 1024 * 1024)
/* Outbound bytes (framed) a call may queue before gw_call_send says -EAGAIN. */
#define GW_SEND_QUEUE_MAX ((size_t)256 * 1024)

struct gw_conn;
struct gw_call;

/* Borrowed strings, only read during gw_conn_new. For https:// the three files are required;
 * they are the values of OPENSHELL_TLS_CA, OPENSHELL_TLS_CERT and OPENSHELL_TLS_KEY, and an
 * error names the variable. @server_name (OPENSHELL_GATEWAY_TLS_SERVER_NAME, may be NULL)
 * replaces the endpoint's host for SNI and certificate verification. Zero timeouts take the
 * defaults above. @workers (borrowed, must outlive the connection) resolves host names; when
 * NULL only numeric addresses are accepted. */
struct gw_conn_opts {
	const char *endpoint;
	const char *ca_file, *cert_file, *key_file, *server_name;
	uint32_t connect_timeout_ms, ping_interval_ms, ping_timeout_ms;
	struct sv_workers *workers;
};

/* Fill the TLS fields of @opts from the environment (pointers into environ). */
void gw_conn_opts_from_env(struct gw_conn_opts *opts);

/* on_ready: the transport is up (TCP connected, TLS handshake and ALPN done, preface sent).
 * on_closed: the connection is finished (connect failure, timeout, TLS failure, GOAWAY, dead
 * peer, EOF); every open call got on_status(UNAVAILABLE, why) first. @err is -errno. After
 * on_closed the caller still owns the connection and frees it (gw_conn_free may be called from
 * inside on_closed). */
struct gw_conn_cbs {
	void (*on_ready)(struct gw_conn *conn, void *data);
	void (*on_closed)(struct gw_conn *conn, int err, const char *why, void *data);
	void *data;
};

/* Validate @opts (endpoint syntax, TLS files: errors in @err, nothing started), then start
 * connecting. Returns 0 and *@out (owned, gw_conn_free) or -errno. Calls may be started at once:
 * their frames go out when the transport is up. */
int gw_conn_new(struct sv_loop *loop, const struct gw_conn_opts *opts,
		const struct gw_conn_cbs *cbs, struct gw_conn **out, struct sv_err *err);

/* Close the connection and free it with every call still open; no callback of the connection
 * or of its calls runs after this. Safe from inside any of them. NULL is a no-op. */
void gw_conn_free(struct gw_conn *conn);

/* on_message: one whole message (@msg borrowed for the callback). on_writable: the send queue
 * drained below half of GW_SEND_QUEUE_MAX after a gw_call_send said -EAGAIN. on_status: final,
 * with grpc-status and the percent-decoded grpc-message ("" when none); the call is freed right
 * after it returns. Any of them may call gw_call_cancel on their own call or gw_conn_free. */
struct gw_call_cbs {
	void (*on_message)(struct gw_call *call, const uint8_t *msg, size_t len, void *data);
	void (*on_writable)(struct gw_call *call, void *data);
	void (*on_status)(struct gw_call *call, int grpc_status, const char *grpc_message,
			  void *data);
	void *data;
};

/* Open a stream for the gRPC method @path ("/openshell.v1.OpenShell/ConnectSupervisor").
 * @bearer (NULL: none) goes out as "authorization: Bearer <bearer>" and is never logged;
 * @deadline_ms (0: none) is sent as grpc-timeout and enforced locally (DEADLINE_EXCEEDED and
 * RST_STREAM). Returns 0 and *@out (borrowed: valid until on_status returns or gw_call_cancel),
 * or -ENOTCONN after on_closed, -errno otherwise. */
int gw_call_start(struct gw_conn *conn, const char *path, const char *bearer, uint32_t deadline_ms,
		  const struct gw_call_cbs *cbs, struct gw_call **out, struct sv_err *err);

/* Frame @msg (copied) and queue it. Returns 0, -EAGAIN when the queue already holds
 * GW_SEND_QUEUE_MAX bytes or more (wait for on_writable), -EMSGSIZE over GW_MSG_MAX, -EPIPE
 * after gw_call_close_send or once the call is ending. */
int gw_call_send(struct gw_call *call, const uint8_t *msg, size_t len);
/* Framed bytes queued and not yet handed to HTTP/2. */
size_t gw_call_queued(const struct gw_call *call);
/* Half-close: END_STREAM after everything queued. Returns 0 or -EPIPE if already closed. */
int gw_call_close_send(struct gw_call *call);
/* Paused: no on_message, and the received bytes are not returned to the peer's window, so at
 * most GW_STREAM_WINDOW bytes wait in memory. Unpausing delivers what waits (from the loop, not
 * from inside this call). */
void gw_call_pause(struct gw_call *call, bool paused);
/* RST_STREAM(CANCEL) and free the call; no callback of it runs after. */
void gw_call_cancel(struct gw_call *call);

#endif
