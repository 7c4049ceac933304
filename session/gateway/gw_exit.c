/* The exit report (contract §6.6): once every process is gone, end the session and send
 * ReportMainProcessExit{sandbox_id, instance_id, exit_code} until the gateway acknowledges it.
 *
 * Each attempt uses a fresh connection of its own (as OpenShell does), apart from the client's
 * shared one, which stays for the log push's last lines; retries wait 250 ms doubling to 2 s.
 * Relays still open at that point first get GW_EXIT_RELAY_GRACE_MS on the shared connection to
 * carry their last bytes (an attached SSH session's exit status), then they and the session
 * stream end.
 * Unlike OpenShell, which retries forever, the whole report is bounded by
 * --exit-report-timeout: then it is abandoned, said loudly, and the supervisor exits.
 */
#include "gw_sess.h"

#include <stdlib.h>
#include <string.h>

#include "openshell.pb-c.h"
#include "supervisor/log.h"

static void on_exit_deadline(struct sv_loop *loop, struct sv_timer *t)
{
	(void)loop;
	struct gw_session *s = t->data;
	char n[16], secs[24];
	sv_fmt(n, sizeof(n), "%u", s->exit_attempts);
	sv_fmt(secs, sizeof(secs), "%llu", (unsigned long long)(s->o.exit_report_timeout_ms / 1000));
	sv_log_kv(SV_LOG_ERROR, GW_COMP, "exit_report_abandoned",
		  "the gateway did not acknowledge the exit report in time; exiting without it",
		  SV_KVS({"attempts", n}, {"timeout_s", secs}, {"instance_id", s->instance_id}));
	gw_exit_finish(s);
}

static void exit_drop_conn(struct gw_session *s)
{
	gw_unary_cancel(s->exit_call); /* NULL once its status came */
	s->exit_call = NULL;
	if (s->exit_conn)
		gw_conn_free(s->exit_conn);
	s->exit_conn = NULL;
	s->exit_ready = false;
}

void gw_exit_finish(struct gw_session *s)
{
	s->state = GW_DONE;
	s->exit_draining = false;
	gw_session_end_streams(s, true);
	exit_drop_conn(s);
	(void)sv_timer_disarm(&s->exit_timer);
	(void)sv_timer_disarm(&s->retry);
	void (*done)(void *) = s->done;
	s->done = NULL;
	if (done)
		done(s->done_arg);
}

void gw_exit_on_closed(struct gw_session *s)
{
	if (s->state != GW_EXITING)
		return;
	exit_drop_conn(s);
	uint64_t now = gw_now_ms();
	uint64_t left = s->exit_deadline > now ? s->exit_deadline - now : 0;
	uint32_t delay = gw_backoff_next(&s->exit_backoff, 0);
	if (delay > left)
		delay = (uint32_t)left + 1; /* the deadline fires first */
	(void)sv_timer_arm(&s->retry, delay, 0);
}

/* ReportMainProcessExitResponse is empty: only the status counts. */
static void on_exit_done(int status, const char *message, const uint8_t *resp, size_t len,
			 void *data)
{
	(void)resp;
	(void)len;
	struct gw_session *s = data;
	s->exit_call = NULL; /* the helper frees it after this returns */
	char code[16], n[16], st[16];
	sv_fmt(code, sizeof(code), "%d", s->exit_code);
	sv_fmt(n, sizeof(n), "%u", s->exit_attempts);
	if (status == GW_STATUS_OK) {
		sv_log_kv(SV_LOG_INFO, GW_COMP, "exit_report_sent",
			  "the gateway acknowledged the main process's exit",
			  SV_KVS({"exit_code", code}, {"instance_id", s->instance_id},
				 {"attempts", n}));
		gw_exit_finish(s);
		return;
	}
	sv_fmt(st, sizeof(st), "%d", status);
	sv_log_kv(SV_LOG_WARN, GW_COMP, "exit_report_failed", "exit report not acknowledged; retrying",
		  SV_KVS({"status", st}, {"message", message && *message ? message : "-"},
			 {"attempts", n}));
	gw_exit_on_closed(s);
}

void gw_exit_relays_gone(struct gw_session *s)
{
	if (s->state == GW_EXITING && s->exit_draining)
		(void)sv_timer_arm(&s->retry, 1, 0); /* not from inside the relay's callback */
}

void gw_exit_on_ready(struct gw_session *s)
{
	if (s->state != GW_EXITING || s->exit_draining || s->exit_call || !s->exit_ready)
		return;
	Openshell__V1__ReportMainProcessExitRequest req =
		OPENSHELL__V1__REPORT_MAIN_PROCESS_EXIT_REQUEST__INIT;
	req.sandbox_id = (char *)s->o.sandbox_id;
	req.instance_id = s->instance_id;
	req.exit_code = s->exit_code;
	uint64_t now = gw_now_ms();
	uint64_t left = s->exit_deadline > now ? s->exit_deadline - now : 1;
	uint32_t deadline = left < GW_UNARY_DEADLINE_MS ? (uint32_t)left : GW_UNARY_DEADLINE_MS;
	struct sv_err err = {0};
	if (gw_unary_start(s->exit_conn, GW_METHOD("ReportMainProcessExit"), gw_client_bearer(s->c),
			   &req.base, deadline, on_exit_done, s, &s->exit_call, &err) < 0) {
		s->exit_call = NULL;
		gw_exit_on_closed(s); /* the retry timer tries again */
	}
}

static void exit_conn_ready(struct gw_conn *conn, void *data)
{
	struct gw_session *s = data;
	if (conn != s->exit_conn)
		return;
	s->exit_ready = true;
	gw_exit_on_ready(s);
}

static void exit_conn_closed(struct gw_conn *conn, int e, const char *why, void *data)
{
	(void)e;
	(void)why;
	struct gw_session *s = data;
	if (conn != s->exit_conn)
		return;
	gw_exit_on_closed(s); /* frees it */
}

/* A fresh connection for one attempt. Returns 0 or -errno (logged). */
static int exit_connect(struct gw_session *s)
{
	exit_drop_conn(s);
	static const struct gw_conn_cbs tmpl = {.on_ready = exit_conn_ready,
						.on_closed = exit_conn_closed};
	struct gw_conn_cbs cbs = tmpl;
	cbs.data = s;
	struct gw_conn_opts o;
	gw_client_conn_opts(s->c, &o);
	struct sv_err err = {0};
	int r = gw_conn_new(s->loop, &o, &cbs, &s->exit_conn, &err);
	if (r < 0) {
		s->exit_conn = NULL;
		sv_log_kv(SV_LOG_WARN, GW_COMP, "gateway_connect_failed",
			  "cannot start a gateway connection", SV_KVS({"error", err.msg}));
	}
	return r;
}

/* First call (from gw_session_finish): end the session and arm the deadline. Later calls (the
 * retry timer): a fresh connection for the next attempt. */
void gw_exit_start(struct gw_session *s)
{
	if (s->state != GW_EXITING) {
		(void)sv_timer_disarm(&s->retry);
		s->state = GW_EXITING;
		s->exit_backoff = GW_BACKOFF_INIT(GW_EXIT_RETRY_FIRST_MS, GW_EXIT_RETRY_MAX_MS, 0);
		s->exit_deadline = gw_now_ms() + s->o.exit_report_timeout_ms;
		if (s->exit_timer.w.fd < 0 &&
		    sv_timer_init(s->loop, &s->exit_timer, on_exit_deadline, s) < 0) {
			sv_log_kv(SV_LOG_ERROR, GW_COMP, "exit_report_abandoned",
				  "no timer for the exit report's deadline: exiting without it",
				  SV_KVS({"instance_id", s->instance_id}));
			gw_exit_finish(s);
			return;
		}
		(void)sv_timer_arm(&s->exit_timer, s->o.exit_report_timeout_ms, 0);
		char code[16];
		sv_fmt(code, sizeof(code), "%d", s->exit_code);
		sv_log_kv(SV_LOG_INFO, GW_COMP, "exit_report_starting",
			  "reporting the main process's exit to the gateway",
			  SV_KVS({"exit_code", code}, {"instance_id", s->instance_id}));
		uint64_t grace = s->o.exit_report_timeout_ms / 2;
		if (grace > GW_EXIT_RELAY_GRACE_MS)
			grace = GW_EXIT_RELAY_GRACE_MS;
		if (s->nrelays > 0 && grace > 0) {
			char n[16];
			sv_fmt(n, sizeof(n), "%u", s->nrelays);
			sv_log_kv(SV_LOG_DEBUG, GW_COMP, "exit_relays_draining",
				  "open relays finish before the session ends", SV_KVS({"relays", n}));
			s->exit_draining = true; /* gw_exit_relays_gone or the retry timer go on */
			(void)sv_timer_arm(&s->retry, grace, 0);
			return;
		}
	}
	s->exit_draining = false;
	gw_session_end_streams(s, true); /* the session stream and every relay end here */
	s->exit_attempts++; /* one attempt = one connection (and one call once it is up) */
	if (exit_connect(s) < 0)
		gw_exit_on_closed(s);
}
