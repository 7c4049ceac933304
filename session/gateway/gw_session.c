/* ConnectSupervisor (contract §10 "Session state machine") on the one client's connection: Hello
 * first, SessionAccepted then heartbeats every max(interval, 5) s, RelayOpen handed to
 * gw_relay.c, and on any error or EOF the connection is dropped and the client reconnects after
 * its backoff of 1 s doubling to 30 s with jitter.
 *
 * Unlike OpenShell the backoff resets once an accepted session has stayed up GW_BACKOFF_RESET_MS,
 * so a gateway that flapped once is not waited on for 30 s forever. Never logs the token.
 */
#include "gw_sess.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "openshell.pb-c.h"
#include "supervisor/log.h"
#include "supervisor/worker.h"

uint64_t gw_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t gw_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static bool is_set(const char *v)
{
	return v && *v;
}

static const char *env(const char *name)
{
	const char *v = getenv(name);
	return is_set(v) ? v : NULL;
}

/* The TLS files are read at every connection; this only proves they are there at setup. */
static int check_tls_file(const char *var, struct sv_err *err)
{
	const char *path = env(var);
	if (!path)
		return sv_err_set(err, EINVAL,
				  "%s is not set: an https:// gateway endpoint needs OPENSHELL_TLS_CA, "
				  "OPENSHELL_TLS_CERT and OPENSHELL_TLS_KEY",
				  var);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return sv_err_set(err, errno, "%s: cannot read '%s': %s", var, path,
				  strerror(errno));
	close(fd);
	return 0;
}

int gw_session_plan(const struct gw_session_opts *o, struct sv_err *err)
{
	if (!is_set(o->endpoint)) {
		sv_info(GW_COMP, "gateway_standalone",
			"no gateway endpoint (OPENSHELL_ENDPOINT): running standalone");
		return GW_PLAN_STANDALONE;
	}
	struct gw_endpoint ep;
	int r = gw_endpoint_parse(o->endpoint, &ep, err);
	if (r < 0) {
		sv_err_prefix(err, "OPENSHELL_ENDPOINT");
		return r;
	}
	if (ep.tls) {
		static const char *const vars[] = {"OPENSHELL_TLS_CA", "OPENSHELL_TLS_CERT",
						   "OPENSHELL_TLS_KEY"};
		for (size_t i = 0; i < SV_ARRAY_SIZE(vars); i++) {
			if ((r = check_tls_file(vars[i], err)) < 0)
				return r;
		}
	}
	const char *missing = !is_set(o->sandbox_id)        ? "OPENSHELL_SANDBOX_ID"
			      : !is_set(o->ssh_socket_path) ? "OPENSHELL_SSH_SOCKET_PATH"
							    : NULL;
	if (missing) {
		sv_log_kv(SV_LOG_WARN, GW_COMP, "gateway_session_not_started",
			  "gateway endpoint set, but no supervisor session: a sandbox id and an SSH "
			  "socket path are required",
			  SV_KVS({"missing", missing}, {"endpoint", o->endpoint}));
		return GW_PLAN_NO_SESSION;
	}
	return GW_PLAN_SESSION;
}

/* ------------------------------------------------------------------ messages */

static int send_supervisor_msg(struct gw_session *s, const Openshell__V1__SupervisorMessage *m)
{
	if (!s->call)
		return -ENOTCONN;
	size_t len = openshell__v1__supervisor_message__get_packed_size(m);
	uint8_t small[512];
	uint8_t *buf = len <= sizeof(small) ? small : malloc(len);
	if (!buf)
		return -ENOMEM;
	openshell__v1__supervisor_message__pack(m, buf);
	int r = gw_call_send(s->call, buf, len);
	if (buf != small)
		free(buf);
	return r;
}

void gw_session_send_open_result(struct gw_session *s, const char *channel_id, bool ok,
				 const char *error)
{
	Openshell__V1__RelayOpenResult res = OPENSHELL__V1__RELAY_OPEN_RESULT__INIT;
	res.channel_id = (char *)channel_id;
	res.success = ok;
	res.error = (char *)(error ? error : "");
	Openshell__V1__SupervisorMessage m = OPENSHELL__V1__SUPERVISOR_MESSAGE__INIT;
	m.payload_case = OPENSHELL__V1__SUPERVISOR_MESSAGE__PAYLOAD_RELAY_OPEN_RESULT;
	m.relay_open_result = &res;
	int r = send_supervisor_msg(s, &m);
	if (r < 0)
		sv_log_kv(SV_LOG_WARN, GW_COMP, "relay_open_result_unsent",
			  "cannot send RelayOpenResult on the session stream",
			  SV_KVS({"channel_id", channel_id}, {"error", strerror(-r)}));
}

/* ------------------------------------------------------------------ connection lifecycle */

static void schedule_retry(struct gw_session *s, const char *why);

struct gw_conn *gw_session_conn(struct gw_session *s)
{
	return gw_client_conn(s->c);
}

void gw_session_end_streams(struct gw_session *s, bool cancel)
{
	gw_relay_close_all(s, cancel);
	if (s->call && cancel)
		gw_call_cancel(s->call);
	s->call = NULL;
	(void)sv_timer_disarm(&s->heartbeat);
}

static void on_heartbeat(struct sv_loop *loop, struct sv_timer *t)
{
	(void)loop;
	struct gw_session *s = t->data;
	if (s->state != GW_ACTIVE)
		return;
	Openshell__V1__SupervisorHeartbeat hb = OPENSHELL__V1__SUPERVISOR_HEARTBEAT__INIT;
	Openshell__V1__SupervisorMessage m = OPENSHELL__V1__SUPERVISOR_MESSAGE__INIT;
	m.payload_case = OPENSHELL__V1__SUPERVISOR_MESSAGE__PAYLOAD_HEARTBEAT;
	m.heartbeat = &hb;
	int r = send_supervisor_msg(s, &m);
	if (r < 0)
		sv_debug(GW_COMP, "gateway_heartbeat_unsent", "heartbeat not sent: %s",
			 strerror(-r));
	else
		sv_debug(GW_COMP, "gateway_heartbeat_sent", "heartbeat sent");
}

static void session_accepted(struct gw_session *s, const Openshell__V1__SessionAccepted *a)
{
	s->state = GW_ACTIVE;
	s->accepted_at = gw_now_ms();
	gw_client_healthy(s->c); /* up GW_BACKOFF_RESET_MS from here resets the backoff */
	uint32_t secs = a ? a->heartbeat_interval_secs : 0;
	if (secs < GW_HEARTBEAT_MIN_S)
		secs = GW_HEARTBEAT_MIN_S;
	uint32_t ms = secs * 1000;
	(void)sv_timer_arm(&s->heartbeat, ms, ms);
	char hb[16], att[16];
	sv_fmt(hb, sizeof(hb), "%u", secs);
	sv_fmt(att, sizeof(att), "%u", s->attempt);
	sv_log_kv(SV_LOG_INFO, GW_COMP, "gateway_session_accepted",
		  "supervisor session registered with the gateway",
		  SV_KVS({"session_id", a && a->session_id ? a->session_id : ""},
			 {"heartbeat_secs", hb}, {"instance_id", s->instance_id}, {"attempt", att}));
}

static void on_session_message(struct gw_call *call, const uint8_t *msg, size_t len, void *data)
{
	(void)call;
	struct gw_session *s = data;
	Openshell__V1__GatewayMessage *m = openshell__v1__gateway_message__unpack(NULL, len, msg);
	if (!m) {
		schedule_retry(s, "undecodable GatewayMessage");
		return;
	}
	if (s->state == GW_HELLO &&
	    m->payload_case != OPENSHELL__V1__GATEWAY_MESSAGE__PAYLOAD_SESSION_ACCEPTED &&
	    m->payload_case != OPENSHELL__V1__GATEWAY_MESSAGE__PAYLOAD_SESSION_REJECTED) {
		openshell__v1__gateway_message__free_unpacked(m, NULL);
		schedule_retry(s, "first gateway message was not SessionAccepted");
		return;
	}
	switch (m->payload_case) {
	case OPENSHELL__V1__GATEWAY_MESSAGE__PAYLOAD_SESSION_ACCEPTED:
		if (s->state == GW_HELLO)
			session_accepted(s, m->session_accepted);
		break;
	case OPENSHELL__V1__GATEWAY_MESSAGE__PAYLOAD_SESSION_REJECTED: {
		const char *reason = m->session_rejected && m->session_rejected->reason
					     ? m->session_rejected->reason
					     : "";
		sv_log_kv(SV_LOG_WARN, GW_COMP, "gateway_session_rejected",
			  "the gateway rejected the supervisor session", SV_KVS({"reason", reason}));
		char why[SV_ERR_MSG_MAX];
		sv_fmt(why, sizeof(why), "session rejected: %s", reason);
		openshell__v1__gateway_message__free_unpacked(m, NULL);
		schedule_retry(s, why);
		return;
	}
	case OPENSHELL__V1__GATEWAY_MESSAGE__PAYLOAD_HEARTBEAT:
		sv_debug(GW_COMP, "gateway_heartbeat_received", "gateway heartbeat");
		break;
	case OPENSHELL__V1__GATEWAY_MESSAGE__PAYLOAD_RELAY_OPEN: {
		const Openshell__V1__RelayOpen *ro = m->relay_open;
		if (!ro)
			break;
		const char *host = "";
		uint32_t port = 0;
		if (ro->target_case == OPENSHELL__V1__RELAY_OPEN__TARGET_TCP && ro->tcp) {
			host = ro->tcp->host ? ro->tcp->host : "";
			port = ro->tcp->port;
		}
		gw_relay_open(s, ro->channel_id ? ro->channel_id : "", (int)ro->target_case, host,
			      port);
		break;
	}
	case OPENSHELL__V1__GATEWAY_MESSAGE__PAYLOAD_RELAY_CLOSE:
		sv_log_kv(SV_LOG_INFO, GW_COMP, "gateway_relay_close",
			  "the gateway closed a relay",
			  SV_KVS({"channel_id",
				  m->relay_close && m->relay_close->channel_id
					  ? m->relay_close->channel_id
					  : ""},
				 {"reason", m->relay_close && m->relay_close->reason
						    ? m->relay_close->reason
						    : ""}));
		break;
	default:
		sv_debug(GW_COMP, "gateway_message_unknown", "unknown GatewayMessage payload");
		break;
	}
	openshell__v1__gateway_message__free_unpacked(m, NULL);
}

static void on_session_status(struct gw_call *call, int status, const char *message, void *data)
{
	(void)call;
	struct gw_session *s = data;
	s->call = NULL; /* freed after we return */
	char why[SV_ERR_MSG_MAX];
	if (status == GW_STATUS_OK)
		sv_fmt(why, sizeof(why), "the gateway ended the session stream");
	else
		sv_fmt(why, sizeof(why), "ConnectSupervisor failed: status %d: %s", status,
		       message && *message ? message : "-");
	schedule_retry(s, why);
}

static void send_hello(struct gw_session *s)
{
	struct sv_err err = {0};
	static const struct gw_call_cbs cbs_tmpl = {
		.on_message = on_session_message,
		.on_status = on_session_status,
	};
	struct gw_call_cbs cbs = cbs_tmpl;
	cbs.data = s;
	struct gw_conn *conn = gw_session_conn(s);
	int r = conn ? gw_call_start(conn, GW_METHOD("ConnectSupervisor"), gw_client_bearer(s->c), 0,
				     &cbs, &s->call, &err)
		     : -ENOTCONN;
	if (r < 0) {
		s->call = NULL;
		schedule_retry(s, err.msg[0] ? err.msg : strerror(-r));
		return;
	}
	Openshell__V1__SupervisorHello hello = OPENSHELL__V1__SUPERVISOR_HELLO__INIT;
	hello.sandbox_id = (char *)s->o.sandbox_id;
	hello.instance_id = s->instance_id;
	Openshell__V1__SupervisorMessage m = OPENSHELL__V1__SUPERVISOR_MESSAGE__INIT;
	m.payload_case = OPENSHELL__V1__SUPERVISOR_MESSAGE__PAYLOAD_HELLO;
	m.hello = &hello;
	r = send_supervisor_msg(s, &m);
	if (r < 0) {
		schedule_retry(s, "cannot queue Hello");
		return;
	}
	s->state = GW_HELLO;
	sv_log_kv(SV_LOG_DEBUG, GW_COMP, "gateway_hello_sent", "Hello sent",
		  SV_KVS({"sandbox_id", s->o.sandbox_id}, {"instance_id", s->instance_id}));
}

/* The client's connection is up (token known): say Hello on it. */
static void on_client_ready(void *data)
{
	struct gw_session *s = data;
	if (s->state == GW_CONNECTING || s->state == GW_BACKOFF) {
		s->state = GW_CONNECTING;
		s->attempt++;
		send_hello(s);
	}
}

/* The connection went (lost, or dropped by schedule_retry): the session stream and the relays
 * went with it; the client reconnects after its backoff and on_client_ready says Hello again. */
static void on_client_lost(const char *why, uint32_t retry_ms, uint64_t conn_up_ms, void *data)
{
	(void)conn_up_ms;
	struct gw_session *s = data;
	gw_session_end_streams(s, false); /* freed with the connection */
	if (s->state == GW_EXITING) {
		return; /* the report has its own connection; draining relays just ended */
	}
	if (s->state == GW_IDLE || s->state == GW_DONE)
		return;
	bool was_up = s->state == GW_ACTIVE;
	uint64_t up_ms = was_up ? gw_now_ms() - s->accepted_at : 0;
	s->state = GW_BACKOFF;
	char att[16], ms[16], up[24];
	sv_fmt(att, sizeof(att), "%u", s->attempt);
	sv_fmt(ms, sizeof(ms), "%u", retry_ms);
	sv_fmt(up, sizeof(up), "%llu", (unsigned long long)up_ms);
	/* OCSF-style wording as OpenShell's "supervisor session failed, reconnecting (attempt N)". */
	sv_log_kv(SV_LOG_WARN, GW_COMP, "gateway_session_failed",
		  "supervisor session failed, reconnecting",
		  SV_KVS({"reason", why}, {"attempt", att}, {"retry_ms", ms}, {"up_ms", up}));
}

static void on_retry(struct sv_loop *loop, struct sv_timer *t)
{
	(void)loop;
	struct gw_session *s = t->data;
	if (s->state == GW_EXITING)
		gw_exit_start(s);
}

/* Error or EOF on the session: the connection is dropped (everything on it ends) and the client
 * reconnects after the backoff; on_client_lost logs it. */
static void schedule_retry(struct gw_session *s, const char *why)
{
	if (s->state == GW_EXITING || s->state == GW_DONE || s->state == GW_IDLE)
		return;
	gw_client_fail(s->c, why);
}

/* ------------------------------------------------------------------ public API */

int gw_session_new(struct gw_client *c, const struct gw_session_opts *o, struct gw_session **out,
		   struct sv_err *err)
{
	struct gw_session *s = calloc(1, sizeof(*s));
	if (!s)
		return sv_err_set(err, ENOMEM, "gateway session: out of memory");
	s->c = c;
	s->loop = gw_client_loop(c);
	s->o = *o;
	s->heartbeat.w.fd = s->retry.w.fd = s->exit_timer.w.fd = -1;
	int r = gw_uuid4(s->instance_id, err);
	if (r == 0 && ((r = sv_timer_init(s->loop, &s->heartbeat, on_heartbeat, s)) < 0 ||
		       (r = sv_timer_init(s->loop, &s->retry, on_retry, s)) < 0))
		sv_err_set(err, -r, "gateway session timers: %s", strerror(-r));
	if (r < 0) {
		gw_session_free(s);
		return r;
	}
	s->user = (struct gw_client_user){
		.on_ready = on_client_ready, .on_lost = on_client_lost, .data = s};
	gw_client_listen(c, &s->user);
	*out = s;
	return 0;
}

void gw_session_start(struct gw_session *s)
{
	if (!s || s->state != GW_IDLE)
		return;
	sv_log_kv(SV_LOG_INFO, GW_COMP, "gateway_session_starting", "starting the supervisor session",
		  SV_KVS({"endpoint", s->o.endpoint}, {"sandbox_id", s->o.sandbox_id},
			 {"instance_id", s->instance_id}));
	gw_client_expect_session(s->c, true);
	s->state = GW_CONNECTING;
	if (gw_session_conn(s)) /* up since the setup phase: Hello on it now */
		on_client_ready(s);
	/* else the client connects (or waits for its backoff) and on_client_ready follows */
}

bool gw_session_finish(struct gw_session *s, int code, void (*done)(void *arg), void *done_arg)
{
	if (!s || s->state == GW_IDLE || s->state == GW_DONE || s->state == GW_EXITING)
		return false;
	if (s->o.exit_report_timeout_ms == 0) {
		sv_warn(GW_COMP, "exit_report_skipped", "--exit-report-timeout 0: exit not reported");
		s->state = GW_DONE;
		gw_session_end_streams(s, true);
		gw_client_expect_session(s->c, false);
		return false;
	}
	s->exit_code = code;
	s->done = done;
	s->done_arg = done_arg;
	gw_exit_start(s);
	return true;
}

void gw_session_free(struct gw_session *s)
{
	if (!s)
		return;
	s->state = GW_DONE;
	gw_session_end_streams(s, true);
	gw_unary_cancel(s->exit_call);
	s->exit_call = NULL;
	if (s->exit_conn)
		gw_conn_free(s->exit_conn);
	s->exit_conn = NULL;
	if (s->c) {
		gw_client_unlisten(s->c, &s->user);
		gw_client_expect_session(s->c, false);
	}
	sv_timer_close(s->loop, &s->heartbeat);
	sv_timer_close(s->loop, &s->retry);
	sv_timer_close(s->loop, &s->exit_timer);
	free(s);
}
