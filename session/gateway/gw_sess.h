/* Private to session/: the session object shared by gw_session.c (connection, Hello,
 * heartbeats, reconnect), gw_token.c (bearer token), gw_relay.c (relays) and gw_exit.c (exit
 * report). Nothing outside session/ includes this.
 */
#ifndef GW_SESS_H
#define GW_SESS_H

#include <stdbool.h>
#include <stdint.h>

#include "gw_conn.h"
#include "gw_core.h"
#include "gw_rpc.h"
#include "session/session.h"
#include "supervisor/loop.h"

#define GW_COMP "gateway"
/* Unary calls (token, exit report) give up after this long; the session stream has none. */
#define GW_UNARY_DEADLINE_MS 10000u
/* Contract §6.6: exit report retries start at 250 ms and double up to 2 s. */
#define GW_EXIT_RETRY_FIRST_MS 250u
#define GW_EXIT_RETRY_MAX_MS 2000u
/* At exit, open relays get this long (at most half of --exit-report-timeout) to carry their last
 * bytes, e.g. an SSH session's exit status, before the session's connection is dropped. */
#define GW_EXIT_RELAY_GRACE_MS 2000u

enum gw_token_src {
	GW_TOKEN_NONE,
	GW_TOKEN_ENV,  /* OPENSHELL_SANDBOX_TOKEN */
	GW_TOKEN_FILE, /* OPENSHELL_SANDBOX_TOKEN_FILE, trimmed */
	GW_TOKEN_K8S,  /* OPENSHELL_K8S_SA_TOKEN_FILE exchanged through IssueSandboxToken */
};

struct gw_session;

struct gw_token {
	struct gw_session *s;
	enum gw_token_src src;
	const char *env_value; /* borrowed from the environment */
	const char *path;      /* token file or SA token file, borrowed */
	char *token;           /* the bearer in use (owned), NULL until known */
	struct sv_timer refresh;
	struct gw_call *call; /* IssueSandboxToken or RefreshSandboxToken in flight */
	bool issuing;         /* the call in flight is the K8s exchange the session waits for */
};

struct gw_relay;

enum gw_state {
	GW_IDLE,       /* not started */
	GW_CONNECTING, /* transport (and token) being set up */
	GW_HELLO,      /* Hello sent, waiting for SessionAccepted */
	GW_ACTIVE,     /* accepted: heartbeats and relays */
	GW_BACKOFF,    /* waiting to reconnect */
	GW_EXITING,    /* reporting the main process's exit */
	GW_DONE,
};

struct gw_session {
	struct sv_loop *loop;
	struct gw_session_opts o;
	char instance_id[GW_UUID_LEN + 1];
	struct sv_workers *workers;
	struct gw_conn_opts copts;
	struct gw_conn *conn;
	bool conn_ready;
	struct gw_call *call; /* ConnectSupervisor */
	enum gw_state state;
	struct gw_backoff backoff;
	uint32_t attempt;     /* connection attempts since start, for logs */
	uint64_t accepted_at; /* monotonic ms of the last SessionAccepted, 0 = none */
	struct sv_timer heartbeat, retry;
	struct gw_token token;
	struct gw_relay *relays;
	unsigned nrelays;
	/* exit report (gw_exit.c) */
	int exit_code;
	uint64_t exit_deadline;   /* monotonic ms */
	struct gw_backoff exit_backoff; /* 250 ms doubling to 2 s, no jitter */
	uint32_t exit_attempts;
	struct gw_call *exit_call;
	struct sv_timer exit_timer; /* the overall deadline */
	bool exit_draining;         /* exiting, the old connection kept while relays finish */
	void (*done)(void *arg);
	void *done_arg;
};

uint64_t gw_now_ms(void);      /* CLOCK_MONOTONIC */
uint64_t gw_wall_ms(void);     /* CLOCK_REALTIME */

/* gw_session.c: the transport is usable (ready) for a new call, or NULL. */
struct gw_conn *gw_session_conn(struct gw_session *s);
/* Start a fresh connection (frees the old one). Returns 0 or -errno (logged). */
int gw_session_connect(struct gw_session *s);
/* Drop the connection and everything on it (relays, calls): no callbacks after. */
void gw_session_drop_conn(struct gw_session *s);
/* The bearer is known (or could not be had: @ok false, @why says why). */
void gw_session_token_ready(struct gw_session *s, bool ok, const char *why);

/* gw_token.c */
int gw_token_init(struct gw_token *t, struct gw_session *s, struct sv_err *err);
const char *gw_token_bearer(const struct gw_token *t);
/* On a ready connection: 1 when a bearer is there now, 0 when an exchange was started
 * (gw_session_token_ready follows), -errno when none can be had. */
int gw_token_ensure(struct gw_token *t);
/* The connection is going away: forget the call in flight (it is freed with it). */
void gw_token_conn_lost(struct gw_token *t);
void gw_token_close(struct gw_token *t);

/* gw_relay.c: a RelayOpen from the gateway; @target_case is the RelayOpen target oneof
 * (0 none = SSH, 2 ssh, 3 tcp with @tcp_host and @tcp_port). */
void gw_relay_open(struct gw_session *s, const char *channel_id, int target_case,
		   const char *tcp_host, uint32_t tcp_port);
/* Close every relay now, without touching its call (the connection frees those). */
void gw_relay_close_all(struct gw_session *s);
/* Send a RelayOpenResult on the session stream. */
void gw_session_send_open_result(struct gw_session *s, const char *channel_id, bool ok,
				 const char *error);

/* gw_exit.c */
void gw_exit_start(struct gw_session *s);
void gw_exit_on_ready(struct gw_session *s);
void gw_exit_on_closed(struct gw_session *s);
void gw_exit_finish(struct gw_session *s);
/* gw_relay.c: the last relay ended (the exit report may go on). */
void gw_exit_relays_gone(struct gw_session *s);

#endif
