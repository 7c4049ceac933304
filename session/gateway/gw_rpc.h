/* Private to session/: unary gRPC calls for the gateway policy, provider environment and log
 * push (gw_config.c, gw_env.c, gw_logs.c), on top of gw_conn.h.
 *
 * gw_unary_* runs one request/response call on a loop the caller owns; gw_rpc_sync runs one on
 * a private loop for the setup phase, before the main loop exists. Responses are raw bytes: the
 * caller unpacks them with the protobuf-c type it expects and must treat them as hostile.
 */
#ifndef GW_RPC_H
#define GW_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "session/gateway/gw_conn.h"
#include "session/session.h"
#include "supervisor/err.h"

#define GW_METHOD(name) "/openshell.v1.OpenShell/" name

/* Statuses treated as "the gateway is not reachable right now" and retried (contract §2 step 5:
 * Unavailable, DeadlineExceeded, ResourceExhausted, Aborted, Internal, Unknown). */
bool gw_status_is_transient(int grpc_status);
const char *gw_status_name(int grpc_status);

/* Pack @m into an owned buffer (*out, free()). 0 or -ENOMEM. */
int gw_pack(const ProtobufCMessage *m, uint8_t **out, size_t *len);

/* Connection options for @c: endpoint, TLS files from the environment, @workers (borrowed). */
void gw_client_conn_opts(const struct gw_client *c, struct sv_workers *workers,
			 struct gw_conn_opts *o);

/* The current bearer token of @c, or NULL. Never logged. */
const char *gw_client_bearer(const struct gw_client *c);

/* @resp is the first response message (borrowed for the callback; NULL when none came). */
typedef void (*gw_unary_done_fn)(int grpc_status, const char *grpc_message, const uint8_t *resp,
				 size_t len, void *data);

struct gw_unary;

/* Start @path with request @req on @conn: sends it, half-closes, and calls @done exactly once
 * (unless cancelled) with the status; the handle is freed after @done returns. */
int gw_unary_start(struct gw_conn *conn, const char *path, const char *bearer,
		   const ProtobufCMessage *req, uint32_t deadline_ms, gw_unary_done_fn done,
		   void *data, struct gw_unary **out, struct sv_err *err);
/* Cancel: no @done after this. */
void gw_unary_cancel(struct gw_unary *u);

struct gw_rpc_result {
	int status;	   /* grpc-status; GW_STATUS_UNAVAILABLE for transport failures */
	char message[256]; /* grpc-message, sanitised */
	uint8_t *resp;	   /* owned (free()), NULL when no message came */
	size_t len;
};

/* Setup phase: one call on a private loop and connection, returns when it has a status.
 * Returns 0 (see @res->status) or -errno when the call could not even start (bad endpoint,
 * unreadable TLS file: @err names it). */
int gw_rpc_sync(const struct gw_client *c, const char *path, const ProtobufCMessage *req,
		uint32_t deadline_ms, struct gw_rpc_result *res, struct sv_err *err);

#endif
