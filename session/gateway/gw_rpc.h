/* Private to session/: the one generic unary gRPC call every module uses (the token calls, the
 * policy, provider environment and status calls), on top of gw_conn.h.
 *
 * gw_unary_* runs one request/response call on a connection; the gateway client
 * (gw_client.h) starts them on its connection, synchronously in the setup phase. Responses are
 * raw bytes: the caller unpacks them with the protobuf-c type it expects and must treat them as
 * hostile.
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

#endif
