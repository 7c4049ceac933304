/* The one gateway client (docs/gateway.md "One client"): one HTTP/2 connection, made in the
 * setup phase and kept, carrying every call; one reconnect backoff; the token owner (gw_token.c).
 * Its own loop runs setup calls to completion (gw_client_call_sync), then is nested in the run
 * loop (gw_client_attach). It must never block the loop and never log the token.
 */
#include "gw_client.h"

#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#include "supervisor/log.h"
#include "supervisor/worker.h"

enum gw_cstate {
	GC_IDLE,       /* no connection, none planned */
	GC_CONNECTING, /* transport being set up */
	GC_AUTH,       /* transport up, the SA token exchange under way */
	GC_READY,      /* calls may start */
	GC_BACKOFF,    /* lost: the retry timer reconnects */
};

struct gw_client {
	struct sv_loop loop; /* the client's own; nested in the run loop once attached */
	bool loop_ok;
	struct sv_loop *outer;
	struct sv_watch nest;
	struct sv_workers *workers;
	char *endpoint, *sandbox_id; /* owned copies */
	struct gw_conn_opts copts;
	struct gw_conn *conn;
	enum gw_cstate state;
	struct gw_backoff backoff;
	uint32_t attempt;      /* connection attempts, for logs */
	uint32_t losses;       /* connections lost or failed, for the synchronous wait */
	uint64_t ready_at;     /* monotonic ms, 0: not up */
	uint64_t healthy_at;   /* monotonic ms since the backoff may reset, 0: not (yet) */
	bool expect_session;   /* healthy only once the session is accepted */
	bool stopping;	       /* freeing: no reconnect */
	struct sv_timer retry; /* reconnect after the backoff */
	struct gw_token token;
	struct gw_client_user *users;
	char last_why[SV_ERR_MSG_MAX];
};

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct sv_loop *gw_client_loop(struct gw_client *c)
{
	return &c->loop;
}

void gw_client_park(struct gw_client *c)
{
	if (c)
		sv_workers_park(c->workers);
}

struct sv_workers *gw_client_workers(struct gw_client *c)
{
	return c->workers;
}

const char *gw_client_sandbox_id(const struct gw_client *c)
{
	return c->sandbox_id;
}

const char *gw_client_endpoint(const struct gw_client *c)
{
	return c->endpoint;
}

void gw_client_conn_opts(struct gw_client *c, struct gw_conn_opts *o)
{
	*o = c->copts;
}

const char *gw_client_bearer(const struct gw_client *c)
{
	return gw_token_bearer(&c->token);
}

void gw_client_listen(struct gw_client *c, struct gw_client_user *u)
{
	u->next = c->users;
	c->users = u;
}

void gw_client_unlisten(struct gw_client *c, struct gw_client_user *u)
{
	for (struct gw_client_user **pp = &c->users; *pp; pp = &(*pp)->next) {
		if (*pp == u) {
			*pp = u->next;
			u->next = NULL;
			return;
		}
	}
}

/* ------------------------------------------------------------------ connection lifecycle */

static void connect_now(struct gw_client *c);

static void lose(struct gw_client *c, const char *why)
{
	if (c->state == GC_IDLE || c->state == GC_BACKOFF)
		return;
	uint64_t now = mono_ms();
	uint64_t up_ms = c->ready_at ? now - c->ready_at : 0;
	if (c->healthy_at && now - c->healthy_at >= GW_BACKOFF_RESET_MS)
		gw_backoff_reset(&c->backoff);
	uint32_t delay = gw_backoff_next(&c->backoff, gw_random_u32());
	struct gw_conn *conn = c->conn;
	c->conn = NULL;
	c->state = GC_BACKOFF; /* users asking for the connection now do not start one */
	c->ready_at = c->healthy_at = 0;
	c->losses++;
	sv_fmt(c->last_why, sizeof(c->last_why), "%s", why);
	gw_token_conn_lost(&c->token);
	if (!c->stopping)
		(void)sv_timer_arm(&c->retry, delay, 0);
	char ms[16];
	sv_fmt(ms, sizeof(ms), "%u", delay);
	sv_log_kv(SV_LOG_DEBUG, GW_CLIENT_COMP, "gateway_connection_lost",
		  "gateway connection lost; reconnecting after the backoff",
		  SV_KVS({"reason", why}, {"retry_ms", ms}));
	for (struct gw_client_user *u = c->users, *next; u; u = next) {
		next = u->next;
		if (u->on_lost)
			u->on_lost(why, delay, up_ms, u->data);
	}
	gw_conn_free(conn); /* every call still on it goes without a callback */
}

void gw_client_fail(struct gw_client *c, const char *why)
{
	lose(c, why && *why ? why : "connection dropped");
}

static void became_ready(struct gw_client *c)
{
	c->state = GC_READY;
	c->ready_at = mono_ms();
	c->healthy_at = c->expect_session ? 0 : c->ready_at;
	for (struct gw_client_user *u = c->users, *next; u; u = next) {
		next = u->next;
		if (u->on_ready)
			u->on_ready(u->data);
		if (c->state != GC_READY)
			break; /* a user dropped the connection */
	}
}

void gw_client_token_ready(struct gw_client *c, bool ok, const char *why)
{
	if (c->state != GC_AUTH)
		return;
	if (ok)
		became_ready(c);
	else
		lose(c, why && *why ? why : "no sandbox token");
}

static void on_conn_ready(struct gw_conn *conn, void *data)
{
	struct gw_client *c = data;
	if (conn != c->conn || c->state != GC_CONNECTING)
		return;
	c->state = GC_AUTH;
	sv_debug(GW_CLIENT_COMP, "gateway_connected", "transport to the gateway is up");
	int r = gw_token_ensure(&c->token, conn);
	if (r > 0)
		became_ready(c);
	else if (r < 0)
		lose(c, "no sandbox token: the SA token exchange failed");
	/* 0: gw_client_token_ready follows */
}

static void on_conn_closed(struct gw_conn *conn, int e, const char *why, void *data)
{
	(void)e;
	struct gw_client *c = data;
	if (conn != c->conn)
		return;
	lose(c, why && *why ? why : "connection closed");
}

static void connect_now(struct gw_client *c)
{
	if (c->conn || c->stopping)
		return;
	(void)sv_timer_disarm(&c->retry);
	c->attempt++;
	char att[16];
	sv_fmt(att, sizeof(att), "%u", c->attempt);
	sv_log_kv(SV_LOG_INFO, GW_CLIENT_COMP, "gateway_connecting", "connecting to the gateway",
		  SV_KVS({"endpoint", c->endpoint}, {"attempt", att}));
	static const struct gw_conn_cbs tmpl = {.on_ready = on_conn_ready,
						.on_closed = on_conn_closed};
	struct gw_conn_cbs cbs = tmpl;
	cbs.data = c;
	struct sv_err err = {0};
	c->state = GC_CONNECTING;
	if (gw_conn_new(&c->loop, &c->copts, &cbs, &c->conn, &err) < 0) {
		c->conn = NULL;
		sv_log_kv(SV_LOG_WARN, GW_CLIENT_COMP, "gateway_connect_failed",
			  "cannot start a gateway connection", SV_KVS({"error", err.msg}));
		char why[SV_ERR_MSG_MAX];
		sv_fmt(why, sizeof(why), "cannot start a connection: %s", err.msg);
		lose(c, why);
	}
}

static void on_retry(struct sv_loop *loop, struct sv_timer *t)
{
	(void)loop;
	struct gw_client *c = t->data;
	if (c->state != GC_BACKOFF)
		return;
	c->state = GC_IDLE;
	connect_now(c); /* kept up: the session, the poll and the log push all want it */
}

struct gw_conn *gw_client_conn(struct gw_client *c)
{
	if (c->state == GC_READY)
		return c->conn;
	if (c->state == GC_IDLE)
		connect_now(c);
	return NULL;
}

void gw_client_expect_session(struct gw_client *c, bool on)
{
	c->expect_session = on;
	if (on)
		c->healthy_at = 0;
}

void gw_client_healthy(struct gw_client *c)
{
	if (c->state == GC_READY)
		c->healthy_at = mono_ms();
}

/* ------------------------------------------------------------------ calls */

int gw_client_unary(struct gw_client *c, const char *path, const ProtobufCMessage *req,
		    uint32_t deadline_ms, gw_unary_done_fn done, void *data, struct gw_unary **out,
		    struct sv_err *err)
{
	struct gw_conn *conn = gw_client_conn(c);
	if (!conn)
		return sv_err_set(err, ENOTCONN, "%s: the gateway connection is not up", path);
	return gw_unary_start(conn, path, gw_client_bearer(c), req, deadline_ms, done, data, out,
			      err);
}

/* Run the client's loop, one batch at a time, until @cond holds. */
static int run_until(struct gw_client *c, bool (*cond)(struct gw_client *, void *), void *arg,
		     struct sv_err *err)
{
	while (!cond(c, arg)) {
		int r = sv_loop_dispatch(&c->loop, -1);
		if (r < 0)
			return sv_err_set(err, -r, "event loop: %s", strerror(-r));
	}
	return 0;
}

static bool ready_or_lost(struct gw_client *c, void *arg)
{
	return c->state == GC_READY || c->losses != *(uint32_t *)arg;
}

struct sync {
	struct gw_rpc_result *res;
	bool finished;
};

static bool sync_finished(struct gw_client *c, void *arg)
{
	(void)c;
	return ((struct sync *)arg)->finished;
}

static void sync_done(int status, const char *message, const uint8_t *resp, size_t len, void *data)
{
	struct sync *s = data;
	s->res->status = status;
	sv_fmt(s->res->message, sizeof(s->res->message), "%s", message);
	if (resp && (s->res->resp = malloc(len ? len : 1))) {
		memcpy(s->res->resp, resp, len);
		s->res->len = len;
	}
	s->finished = true;
}

int gw_client_call_sync(struct gw_client *c, const char *path, const ProtobufCMessage *req,
			uint32_t deadline_ms, struct gw_rpc_result *res, struct sv_err *err)
{
	memset(res, 0, sizeof(*res));
	if (c->outer)
		return sv_err_set(err, EBUSY, "%s: the run phase uses the loop", path);
	if (c->state != GC_READY) {
		if (c->state == GC_BACKOFF) { /* setup has its own retry schedule */
			(void)sv_timer_disarm(&c->retry);
			c->state = GC_IDLE;
		}
		uint32_t losses = c->losses;
		connect_now(c);
		int r = run_until(c, ready_or_lost, &losses, err);
		if (r < 0)
			return r;
		if (c->state != GC_READY) {
			res->status = GW_STATUS_UNAVAILABLE;
			sv_fmt(res->message, sizeof(res->message), "%s", c->last_why);
			return 0;
		}
	}
	struct sync s = {.res = res};
	struct gw_unary *u = NULL;
	int r = gw_unary_start(c->conn, path, gw_client_bearer(c), req, deadline_ms, sync_done, &s,
			       &u, err);
	if (r < 0)
		return r;
	r = run_until(c, sync_finished, &s, err);
	if (r < 0 && !s.finished)
		gw_unary_cancel(u);
	return r;
}

/* ------------------------------------------------------------------ public API */

int gw_client_new(const char *endpoint, const char *sandbox_id, struct gw_client **out,
		  struct sv_err *err)
{
	struct gw_client *c = calloc(1, sizeof(*c));
	if (!c)
		return sv_err_set(err, ENOMEM, "gateway client: out of memory");
	c->retry.w.fd = -1;
	c->nest.fd = -1;
	c->endpoint = strdup(endpoint ? endpoint : "");
	c->sandbox_id = strdup(sandbox_id ? sandbox_id : "");
	int r = c->endpoint && c->sandbox_id ? 0 : sv_err_set(err, ENOMEM, "out of memory");
	if (r == 0 && (r = sv_loop_init(&c->loop, err)) == 0)
		c->loop_ok = true;
	if (r == 0)
		r = sv_workers_new(&c->loop, 1, &c->workers, err);
	if (r == 0 && (r = sv_timer_init(&c->loop, &c->retry, on_retry, c)) < 0)
		sv_err_set(err, -r, "gateway client timer: %s", strerror(-r));
	if (r == 0)
		r = gw_token_init(&c->token, c, err);
	if (r < 0) {
		gw_client_free(c);
		return r;
	}
	c->copts.endpoint = c->endpoint;
	c->copts.workers = c->workers;
	gw_conn_opts_from_env(&c->copts);
	*out = c;
	return 0;
}

static void on_nest(struct sv_loop *loop, struct sv_watch *w, uint32_t events)
{
	(void)loop;
	(void)events;
	struct gw_client *c = w->data;
	int r = sv_loop_dispatch(&c->loop, 0);
	if (r < 0)
		sv_warn(GW_CLIENT_COMP, "gateway_loop_failed", "gateway client loop: %s",
			strerror(-r));
}

int gw_client_attach(struct gw_client *c, struct sv_loop *loop, struct sv_err *err)
{
	if (c->outer)
		return 0;
	c->nest = (struct sv_watch){.fd = c->loop.epfd, .fn = on_nest, .data = c};
	int r = sv_loop_add(loop, &c->nest, EPOLLIN);
	if (r < 0)
		return sv_err_set(err, -r, "gateway client: epoll: %s", strerror(-r));
	c->outer = loop;
	return 0;
}

void gw_client_detach(struct gw_client *c)
{
	if (!c || !c->outer)
		return;
	sv_loop_del(c->outer, &c->nest);
	c->outer = NULL;
}

void gw_client_free(struct gw_client *c)
{
	if (!c)
		return;
	gw_client_detach(c);
	c->stopping = true;
	c->users = NULL;
	if (c->loop_ok) {
		gw_token_conn_lost(&c->token);
		gw_token_close(&c->token);
		gw_conn_free(c->conn);
		c->conn = NULL;
		sv_timer_close(&c->loop, &c->retry);
		if (c->workers)
			sv_workers_free(c->workers);
		sv_loop_close(&c->loop);
	}
	free(c->endpoint);
	free(c->sandbox_id);
	free(c);
}
