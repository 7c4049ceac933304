/* Private to session/: the one gateway client (docs/gateway.md "One client"), owner of the only
 * HTTP/2 connection (session, relays, poll, status outbox, log push, token calls), its reconnect
 * backoff and the bearer token. Users never open connections of their own (the exit report
 * excepted). Nothing here may block the loop or log the token.
 */
#ifndef GW_CLIENT_H
#define GW_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "gw_conn.h"
#include "gw_core.h"
#include "gw_rpc.h"
#include "session/session.h"
#include "supervisor/loop.h"

/* Someone who uses the connection. on_ready: the connection is up and the token known (new
 * calls may start). on_lost: the connection is gone; every call on it is freed without a further
 * callback once on_lost returns, so cancel (gw_unary_cancel, gw_call_cancel) or forget what you
 * hold on it. @retry_ms is the reconnect delay, @up_ms how long it had been up (0: never). */
struct gw_client_user {
	void (*on_ready)(void *data);
	void (*on_lost)(const char *why, uint32_t retry_ms, uint64_t up_ms, void *data);
	void *data;
	struct gw_client_user *next; /* owned by the client's list */
};

#define GW_CLIENT_COMP "gateway"

/* The loop everything of the client lives on (its own: nested into the run loop by
 * gw_client_attach). */
struct sv_loop *gw_client_loop(struct gw_client *c);
struct sv_workers *gw_client_workers(struct gw_client *c);
const char *gw_client_sandbox_id(const struct gw_client *c);
const char *gw_client_endpoint(const struct gw_client *c);
/* Connection options for an extra connection (the exit report): endpoint, TLS, workers. */
void gw_client_conn_opts(struct gw_client *c, struct gw_conn_opts *o);

/* Register / unregister @u (borrowed until gw_client_unlisten). */
void gw_client_listen(struct gw_client *c, struct gw_client_user *u);
void gw_client_unlisten(struct gw_client *c, struct gw_client_user *u);

/* The connection when it is up and the token known, else NULL (a connection is then started,
 * unless one is already under way or the backoff is waiting). */
struct gw_conn *gw_client_conn(struct gw_client *c);
/* The bearer every call carries now (NULL: none). Borrowed until the loop runs again. */
const char *gw_client_bearer(const struct gw_client *c);

/* A unary call on the connection: -ENOTCONN when it is not up (a connection is started). The
 * bearer is the client's. See gw_unary_start. */
int gw_client_unary(struct gw_client *c, const char *path, const ProtobufCMessage *req,
		    uint32_t deadline_ms, gw_unary_done_fn done, void *data, struct gw_unary **out,
		    struct sv_err *err);

/* Setup phase only (not attached): connect if needed (at once, whatever the backoff), run the
 * client's loop until the call has a status, keep the connection. Returns 0 (see @res->status;
 * UNAVAILABLE when the connection or the token exchange failed) or -errno. */
int gw_client_call_sync(struct gw_client *c, const char *path, const ProtobufCMessage *req,
			uint32_t deadline_ms, struct gw_rpc_result *res, struct sv_err *err);

/* A user decided the connection is bad (a rejected session, a broken stream): drop it and
 * reconnect after the backoff; every user gets on_lost. Safe from inside any callback. */
void gw_client_fail(struct gw_client *c, const char *why);

/* The supervisor session runs: the backoff resets only once gw_client_healthy said the session
 * was accepted and it stayed up GW_BACKOFF_RESET_MS (without a session: once the connection
 * did). */
void gw_client_expect_session(struct gw_client *c, bool on);
void gw_client_healthy(struct gw_client *c);

/* gw_token.c: the token owner, part of the client. */
enum gw_token_src {
	GW_TOKEN_NONE,
	GW_TOKEN_ENV,  /* OPENSHELL_SANDBOX_TOKEN */
	GW_TOKEN_FILE, /* OPENSHELL_SANDBOX_TOKEN_FILE, trimmed */
	GW_TOKEN_K8S,  /* OPENSHELL_K8S_SA_TOKEN_FILE exchanged through IssueSandboxToken */
};

struct gw_token {
	struct gw_client *c;
	enum gw_token_src src;
	const char *env_value; /* borrowed from the environment */
	const char *path;      /* token file or SA token file, borrowed */
	char *token;	       /* the bearer in use (owned), NULL until known */
	struct sv_timer refresh;
	struct gw_unary *call; /* IssueSandboxToken or RefreshSandboxToken in flight */
	bool issuing;	       /* the call in flight is the exchange the connection awaits */
};

int gw_token_init(struct gw_token *t, struct gw_client *c, struct sv_err *err);
const char *gw_token_bearer(const struct gw_token *t);
/* On a connection that just came up (@conn): 1 when a bearer is there (or none is configured),
 * 0 when an exchange was started (gw_client_token_ready follows), -errno when none can be had. */
int gw_token_ensure(struct gw_token *t, struct gw_conn *conn);
/* The connection is going away: forget the call in flight. */
void gw_token_conn_lost(struct gw_token *t);
void gw_token_close(struct gw_token *t);
/* gw_client.c: the exchange gw_token_ensure started ended. */
void gw_client_token_ready(struct gw_client *c, bool ok, const char *why);

#endif
