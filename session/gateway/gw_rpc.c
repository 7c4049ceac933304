/* Unary gRPC calls to the gateway for the policy, provider environment and log modules.
 *
 * gw_unary_* wraps one gw_call: send the request, half-close, keep the first response message,
 * report the status once, give up at its deadline. The bearer token passes straight to
 * gw_call_start and is never copied or logged here.
 */
#include "gw_rpc.h"

#include <stdlib.h>
#include <string.h>


bool gw_status_is_transient(int s)
{
	return s == GW_STATUS_UNAVAILABLE || s == GW_STATUS_DEADLINE_EXCEEDED ||
	       s == GW_STATUS_RESOURCE_EXHAUSTED || s == 10 /* ABORTED */ ||
	       s == GW_STATUS_INTERNAL || s == GW_STATUS_UNKNOWN;
}

const char *gw_status_name(int s)
{
	static const char *const names[] = {"OK",
					    "CANCELLED",
					    "UNKNOWN",
					    "INVALID_ARGUMENT",
					    "DEADLINE_EXCEEDED",
					    "NOT_FOUND",
					    "ALREADY_EXISTS",
					    "PERMISSION_DENIED",
					    "RESOURCE_EXHAUSTED",
					    "FAILED_PRECONDITION",
					    "ABORTED",
					    "OUT_OF_RANGE",
					    "UNIMPLEMENTED",
					    "INTERNAL",
					    "UNAVAILABLE",
					    "DATA_LOSS",
					    "UNAUTHENTICATED"};
	return s >= 0 && (size_t)s < SV_ARRAY_SIZE(names) ? names[s] : "UNKNOWN_STATUS";
}

int gw_pack(const ProtobufCMessage *m, uint8_t **out, size_t *len)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf)
		return -ENOMEM;
	*len = protobuf_c_message_pack(m, buf);
	*out = buf;
	return 0;
}

/* --- one unary call ------------------------------------------------------------------------ */

struct gw_unary {
	struct gw_call *call;
	gw_unary_done_fn done;
	void *data;
	uint8_t *resp; /* owned: the first response message */
	size_t len;
	bool have;
};

static void unary_message(struct gw_call *call, const uint8_t *msg, size_t len, void *data)
{
	(void)call;
	struct gw_unary *u = data;
	if (u->have)
		return; /* a unary call answers once; anything more is ignored */
	u->resp = malloc(len ? len : 1);
	if (!u->resp)
		return; /* reported as no response */
	memcpy(u->resp, msg, len);
	u->len = len;
	u->have = true;
}

static void unary_status(struct gw_call *call, int status, const char *message, void *data)
{
	(void)call;
	struct gw_unary *u = data;
	if (status == GW_STATUS_OK && !u->have) {
		status = GW_STATUS_INTERNAL;
		message = "no response message";
	}
	u->done(status, message ? message : "", u->have ? u->resp : NULL, u->len, u->data);
	free(u->resp);
	free(u);
}

int gw_unary_start(struct gw_conn *conn, const char *path, const char *bearer,
		   const ProtobufCMessage *req, uint32_t deadline_ms, gw_unary_done_fn done,
		   void *data, struct gw_unary **out, struct sv_err *err)
{
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len = 0;
	if (gw_pack(req, &buf, &len) < 0)
		return sv_err_set(err, ENOMEM, "%s: out of memory", path);
	struct gw_unary *u = calloc(1, sizeof(*u));
	if (!u)
		return sv_err_set(err, ENOMEM, "%s: out of memory", path);
	u->done = done;
	u->data = data;
	const struct gw_call_cbs cbs = {
	    .on_message = unary_message, .on_status = unary_status, .data = u};
	int r = gw_call_start(conn, path, bearer, deadline_ms, &cbs, &u->call, err);
	if (r < 0) {
		free(u);
		return r;
	}
	r = gw_call_send(u->call, buf, len);
	if (r == 0)
		r = gw_call_close_send(u->call);
	if (r < 0) {
		gw_call_cancel(u->call);
		free(u);
		return sv_err_set(err, -r, "%s: cannot send the request", path);
	}
	if (out)
		*out = u;
	return 0;
}

void gw_unary_cancel(struct gw_unary *u)
{
	if (!u)
		return;
	gw_call_cancel(u->call);
	free(u->resp);
	free(u);
}
