/* Private to session/: the session object shared by gw_session.c (Hello, heartbeats, retry on
 * the client's connection), gw_relay.c (relays) and gw_exit.c (exit report). The connection,
 * its backoff and the token belong to the one client (gw_client.h). Nothing outside session/
 * includes this.
 */
#ifndef GW_SESS_H
#define GW_SESS_H

#include <stdbool.h>
#include <stdint.h>

#include "gw_client.h"
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

struct gw_relay;

enum gw_state {
	GW_IDLE,       /* not started */
	GW_CONNECTING, /* waiting for the client's connection (and token) */
	GW_HELLO,      /* Hello sent, waiting for SessionAccepted */
	GW_ACTIVE,     /* accepted: heartbeats and relays */
	GW_BACKOFF,    /* the connection was lost: the client reconnects after its backoff */
	GW_EXITING,    /* reporting the main process's exit */
	GW_DONE,
};

struct gw_session {
	struct gw_client *c;  /* borrowed: the one connection, its backoff and the token */
	struct gw_client_user user;
	struct sv_loop *loop; /* the client's */
	struct gw_session_opts o;
	char instance_id[GW_UUID_LEN + 1];
	struct gw_call *call; /* ConnectSupervisor */
	enum gw_state state;
	uint32_t attempt;     /* session attempts since start, for logs */
	uint64_t accepted_at; /* monotonic ms of the last SessionAccepted, 0 = none */
	struct sv_timer heartbeat, retry;
	struct gw_relay *relays;
	unsigned nrelays;
	/* exit report (gw_exit.c) */
	int exit_code;
	uint64_t exit_deadline;   /* monotonic ms */
	struct gw_backoff exit_backoff; /* 250 ms doubling to 2 s, no jitter */
	uint32_t exit_attempts;
	struct gw_conn *exit_conn; /* the report's own connection (one per attempt) */
	bool exit_ready;
	struct gw_unary *exit_call; /* ReportMainProcessExit in flight */
	struct sv_timer exit_timer; /* the overall deadline */
	bool exit_draining;         /* exiting, the old connection kept while relays finish */
	void (*done)(void *arg);
	void *done_arg;
};

uint64_t gw_now_ms(void);      /* CLOCK_MONOTONIC */
uint64_t gw_wall_ms(void);     /* CLOCK_REALTIME */

/* gw_session.c: the client's connection when it is up, or NULL. */
struct gw_conn *gw_session_conn(struct gw_session *s);
/* End the session stream and every relay on the shared connection (which stays). @cancel:
 * cancel their calls (false when the connection is going anyway and frees them). */
void gw_session_end_streams(struct gw_session *s, bool cancel);

/* gw_relay.c: a RelayOpen from the gateway; @target_case is the RelayOpen target oneof
 * (0 none = SSH, 2 ssh, 3 tcp with @tcp_host and @tcp_port). */
void gw_relay_open(struct gw_session *s, const char *channel_id, int target_case,
		   const char *tcp_host, uint32_t tcp_port);
/* Close every relay now; @cancel: cancel its call too (else the connection frees it). */
void gw_relay_close_all(struct gw_session *s, bool cancel);
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
