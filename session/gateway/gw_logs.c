/* Log push (contract §10 "Log push"): the supervisor's own records to PushSandboxLogs.
 *
 * A log sink (supervisor/log.h) copies records at OPENSHELL_LOG_PUSH_LEVEL (info) and above into
 * a bounded queue from whatever thread logs; the loop sends them on one client stream in batches
 * of at most 50 lines or every 500 ms. A full queue drops and counts; an Unauthenticated answer
 * turns the push off for good. Nothing here may log a secret: it only forwards what log.c got.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "gw_client.h"
#include "gw_core.h"
#include "gw_logs.h"
#include "gw_rpc.h"
#include "openshell.pb-c.h"
#include "session/session.h"
#include "supervisor/log.h"

#define COMP "gateway"

/* Contract §10: batches leave at least every 500 ms; reconnect backoff 1..30 s (the queue and
 * batch bounds are in gw_logs.h). */
#define GW_LOG_FLUSH_MS	      500
#define GW_LOG_FINISH_MS      2000 /* ours: how long the last lines may take at exit */
#define GW_LOG_BACKOFF_MIN_MS 1000u
#define GW_LOG_BACKOFF_MAX_MS 30000u
#define GW_LOG_TARGET_MAX     64
#define GW_LOG_SOURCE	      "sandbox"

struct log_line {
	int64_t ts_ms;
	const char *level; /* static */
	char target[GW_LOG_TARGET_MAX];
	char event[GW_LOG_TARGET_MAX];
	char *message; /* owned */
};

static struct {
	bool installed, disabled;
	struct gw_client *c;
	struct gw_client_user user;
	bool listening;
	pthread_mutex_t lock; /* guards q, head, n, dropped: the sink runs on any thread */
	struct log_line q[GW_LOG_QUEUE_MAX];
	size_t head, n;
	unsigned long dropped;
	int efd; /* eventfd: a full batch is waiting */

	struct sv_loop *loop; /* attached */
	struct sv_watch ew;
	struct sv_timer flush, retry;
	bool timers, retry_armed;
	struct gw_call *call; /* on the client's shared connection */
	bool blocked; /* gw_call_send said -EAGAIN: wait for on_writable */
	struct gw_backoff backoff; /* reopening the stream: 1 s doubling to 30 s */
	/* gw_logs_finish: send what is queued, half-close, then call fin_done once. */
	bool finishing, closing;
	struct sv_timer fin_timer;
	void (*fin_done)(void *arg);
	void *fin_arg;
} G = {.lock = PTHREAD_MUTEX_INITIALIZER,
     .efd = -1,
     .backoff = {.first_ms = GW_LOG_BACKOFF_MIN_MS,
		 .max_ms = GW_LOG_BACKOFF_MAX_MS,
		 .custom = true}};

static const char *level_word(enum sv_log_level l, bool ocsf)
{
	static const char *const names[] = {"ERROR", "WARN", "INFO", "DEBUG", "TRACE"};
	if (ocsf)
		return "OCSF";
	return (size_t)l < SV_ARRAY_SIZE(names) ? names[l] : "INFO";
}

static void sink(const struct sv_log_record *rec, void *data)
{
	(void)data;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	char *msg = malloc(rec->len + 1);
	pthread_mutex_lock(&G.lock);
	if (G.disabled || !msg || G.n == GW_LOG_QUEUE_MAX) {
		G.dropped++;
		pthread_mutex_unlock(&G.lock);
		free(msg);
		return;
	}
	memcpy(msg, rec->text, rec->len);
	msg[rec->len] = '\0';
	struct log_line *l = &G.q[(G.head + G.n) % GW_LOG_QUEUE_MAX];
	l->ts_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	l->level = level_word(rec->level, rec->ocsf);
	sv_fmt(l->target, sizeof(l->target), "%s", rec->component ? rec->component : "");
	sv_fmt(l->event, sizeof(l->event), "%s", rec->event ? rec->event : "");
	l->message = msg;
	bool wake = ++G.n == GW_LOG_BATCH_MAX;
	pthread_mutex_unlock(&G.lock);
	if (wake && G.efd >= 0) {
		uint64_t one = 1;
		ssize_t w = write(G.efd, &one, sizeof(one));
		(void)w; /* a wake-up already pending is as good */
	}
}

void gw_logs_stats(struct gw_logs_stats *out)
{
	pthread_mutex_lock(&G.lock);
	out->queued = G.n;
	out->dropped = G.dropped;
	out->disabled = G.disabled;
	pthread_mutex_unlock(&G.lock);
}

int gw_logs_install(struct gw_client *c, struct sv_err *err)
{
	const char *v = getenv(GW_LOG_PUSH_ENV);
	enum sv_log_level level = SV_LOG_INFO;
	if (v && *v && sv_log_level_parse(v, &level) < 0)
		sv_log_kv(SV_LOG_WARN, COMP, "log_push_level_invalid",
			  "invalid log push level: using info",
			  SV_KVS({"variable", GW_LOG_PUSH_ENV}));
	G.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (G.efd < 0)
		return sv_err_set(err, errno, "log push: eventfd: %s", strerror(errno));
	G.c = c;
	G.installed = true;
	sv_log_set_sink(sink, NULL, level);
	return 0;
}

/* --- sending ------------------------------------------------------------------------------- */

static void flush(void);

static void drop_all_locked(void)
{
	while (G.n) {
		free(G.q[G.head].message);
		G.q[G.head].message = NULL;
		G.head = (G.head + 1) % GW_LOG_QUEUE_MAX;
		G.n--;
	}
}

static void disable(const char *why)
{
	sv_log_set_sink(NULL, NULL, SV_LOG_INFO);
	pthread_mutex_lock(&G.lock);
	G.disabled = true;
	drop_all_locked();
	pthread_mutex_unlock(&G.lock);
	sv_log_kv(SV_LOG_WARN, COMP, "log_push_disabled",
		  "the gateway refused the log push: disabled until restart",
		  SV_KVS({"reason", why}));
}

static void retry_later(void)
{
	uint32_t ms = gw_backoff_next(&G.backoff, 0);
	if (G.timers && sv_timer_arm(&G.retry, ms, 0) == 0)
		G.retry_armed = true;
}

static void finish_now(void)
{
	if (!G.finishing)
		return;
	G.finishing = false;
	if (G.timers)
		sv_timer_disarm(&G.fin_timer);
	void (*done)(void *) = G.fin_done;
	G.fin_done = NULL;
	if (done)
		done(G.fin_arg);
}

static void call_writable(struct gw_call *call, void *data)
{
	(void)call;
	(void)data;
	G.blocked = false;
	flush();
}

static void call_message(struct gw_call *call, const uint8_t *msg, size_t len, void *data)
{
	(void)call;
	(void)msg;
	(void)len;
	(void)data; /* PushSandboxLogsResponse is empty */
}

static void call_status(struct gw_call *call, int status, const char *message, void *data)
{
	(void)call;
	(void)data;
	G.call = NULL;
	G.blocked = false;
	G.closing = false;
	if (status == GW_STATUS_UNAUTHENTICATED) {
		disable(message);
		finish_now();
		return;
	}
	if (G.finishing) {
		finish_now(); /* the gateway has everything we half-closed on */
		return;
	}
	if (status != GW_STATUS_OK)
		sv_log_kv(
		    SV_LOG_DEBUG, COMP, "log_push_failed", "log push stream ended",
		    SV_KVS({"grpc_status", gw_status_name(status)}, {"grpc_message", message}));
	retry_later();
}

static int open_stream(void)
{
	struct sv_err err = {0};
	struct gw_conn *conn = gw_client_conn(G.c);
	if (!conn)
		return -1; /* the client is connecting: client_ready flushes */
	const struct gw_call_cbs cbs = {
	    .on_message = call_message, .on_writable = call_writable, .on_status = call_status};
	if (gw_call_start(conn, GW_METHOD("PushSandboxLogs"), gw_client_bearer(G.c), 0, &cbs,
			  &G.call, &err) < 0) {
		sv_log_kv(SV_LOG_DEBUG, COMP, "log_push_failed", "log push: cannot start the call",
			  SV_KVS({"error", err.msg}));
		return -1;
	}
	gw_backoff_reset(&G.backoff);
	return 0;
}

/* Pack up to GW_LOG_BATCH_MAX queued lines into one request and queue it on the stream; the
 * lines leave the queue only once the stream took them. Returns the number sent, 0 when none
 * could be (empty, blocked), -1 on failure. */
static int send_batch(void)
{
	Openshell__V1__SandboxLogLine lines[GW_LOG_BATCH_MAX];
	Openshell__V1__SandboxLogLine *ptrs[GW_LOG_BATCH_MAX];
	Openshell__V1__SandboxLogLine__FieldsEntry ev[GW_LOG_BATCH_MAX];
	Openshell__V1__SandboxLogLine__FieldsEntry *evp[GW_LOG_BATCH_MAX];
	Openshell__V1__PushSandboxLogsRequest req = OPENSHELL__V1__PUSH_SANDBOX_LOGS_REQUEST__INIT;
	req.sandbox_id = (char *)gw_client_sandbox_id(G.c);
	pthread_mutex_lock(&G.lock);
	size_t n = G.n < GW_LOG_BATCH_MAX ? G.n : GW_LOG_BATCH_MAX;
	for (size_t i = 0; i < n; i++) {
		struct log_line *l = &G.q[(G.head + i) % GW_LOG_QUEUE_MAX];
		openshell__v1__sandbox_log_line__init(&lines[i]);
		lines[i].sandbox_id = (char *)gw_client_sandbox_id(G.c);
		lines[i].timestamp_ms = l->ts_ms;
		lines[i].level = (char *)l->level;
		lines[i].target = l->target;
		lines[i].message = l->message;
		lines[i].source = (char *)GW_LOG_SOURCE;
		openshell__v1__sandbox_log_line__fields_entry__init(&ev[i]);
		ev[i].key = (char *)"event";
		ev[i].value = l->event;
		evp[i] = &ev[i];
		if (l->event[0]) {
			lines[i].fields = &evp[i];
			lines[i].n_fields = 1;
		}
		ptrs[i] = &lines[i];
	}
	req.logs = ptrs;
	req.n_logs = n;
	uint8_t *buf = NULL;
	size_t len = 0;
	int r = n ? gw_pack(&req.base, &buf, &len) : 0;
	pthread_mutex_unlock(&G.lock);
	if (n == 0 || r < 0)
		return r < 0 ? -1 : 0;
	r = gw_call_send(G.call, buf, len);
	free(buf);
	if (r == -EAGAIN) {
		G.blocked = true;
		return 0;
	}
	if (r < 0)
		return -1;
	pthread_mutex_lock(&G.lock);
	for (size_t i = 0; i < n; i++) {
		free(G.q[G.head].message);
		G.q[G.head].message = NULL;
		G.head = (G.head + 1) % GW_LOG_QUEUE_MAX;
		G.n--;
	}
	pthread_mutex_unlock(&G.lock);
	return (int)n;
}

/* Finishing and everything handed to the stream: half-close, the status ends the finish. */
static void close_if_finished(void)
{
	if (!G.finishing || !G.call || G.closing || G.blocked)
		return;
	pthread_mutex_lock(&G.lock);
	size_t n = G.n;
	pthread_mutex_unlock(&G.lock);
	if (n == 0 && gw_call_close_send(G.call) == 0)
		G.closing = true;
}

static void flush(void)
{
	if (G.disabled || !G.loop)
		return;
	pthread_mutex_lock(&G.lock);
	unsigned long dropped = G.dropped;
	G.dropped = 0;
	size_t queued = G.n;
	pthread_mutex_unlock(&G.lock);
	if (dropped) {
		char d[24];
		sv_fmt(d, sizeof(d), "%lu", dropped);
		sv_log_kv(SV_LOG_WARN, COMP, "log_push_dropped",
			  "log push queue was full: lines dropped", SV_KVS({"count", d}));
		queued++;
	}
	if (!queued) {
		close_if_finished();
		return;
	}
	if (G.blocked || G.retry_armed)
		return;
	if (!G.call && open_stream() < 0) {
		retry_later();
		return;
	}
	while (G.call && !G.blocked && !G.closing) {
		int r = send_batch();
		if (r < 0) {
			gw_call_cancel(G.call);
			G.call = NULL;
			retry_later();
			return;
		}
		if (r == 0)
			break;
	}
	close_if_finished();
}

static void flush_fired(struct sv_loop *loop, struct sv_timer *t)
{
	(void)loop;
	(void)t;
	flush();
}

static void retry_fired(struct sv_loop *loop, struct sv_timer *t)
{
	(void)loop;
	(void)t;
	G.retry_armed = false;
	flush();
}

static void fin_fired(struct sv_loop *loop, struct sv_timer *t)
{
	(void)loop;
	(void)t;
	finish_now(); /* what did not go by now is lost */
}

static void wake(struct sv_loop *loop, struct sv_watch *w, uint32_t events)
{
	(void)loop;
	(void)events;
	uint64_t v;
	while (read(w->fd, &v, sizeof(v)) > 0)
		;
	flush();
}

/* The shared connection is up: what waits goes now. */
static void client_ready(void *data)
{
	(void)data;
	if (G.retry_armed && G.timers) {
		(void)sv_timer_disarm(&G.retry);
		G.retry_armed = false;
	}
	flush();
}

/* The shared connection went, and the stream with it (freed without a callback). */
static void client_lost(const char *why, uint32_t retry_ms, uint64_t up_ms, void *data)
{
	(void)retry_ms;
	(void)up_ms;
	(void)data;
	if (G.call)
		sv_log_kv(SV_LOG_DEBUG, COMP, "log_push_failed", "log push stream lost",
			  SV_KVS({"reason", why}));
	G.call = NULL;
	G.blocked = false;
	G.closing = false;
	if (G.finishing)
		finish_now(); /* nothing more can go */
}

int gw_logs_attach(struct sv_loop *loop, struct sv_err *err)
{
	if (!G.installed || G.disabled)
		return 0;
	G.loop = loop;
	int r;
	G.ew = (struct sv_watch){.fd = G.efd, .fn = wake};
	if ((r = sv_loop_add(loop, &G.ew, EPOLLIN)) < 0)
		return sv_err_set(err, -r, "log push: %s", strerror(-r));
	if ((r = sv_timer_init(loop, &G.flush, flush_fired, NULL)) < 0)
		return sv_err_set(err, -r, "log push timer: %s", strerror(-r));
	if ((r = sv_timer_init(loop, &G.retry, retry_fired, NULL)) < 0) {
		sv_timer_close(loop, &G.flush);
		return sv_err_set(err, -r, "log push timer: %s", strerror(-r));
	}
	if ((r = sv_timer_init(loop, &G.fin_timer, fin_fired, NULL)) < 0) {
		sv_timer_close(loop, &G.flush);
		sv_timer_close(loop, &G.retry);
		return sv_err_set(err, -r, "log push timer: %s", strerror(-r));
	}
	G.timers = true;
	G.user = (struct gw_client_user){.on_ready = client_ready, .on_lost = client_lost};
	gw_client_listen(G.c, &G.user);
	G.listening = true;
	if ((r = sv_timer_arm(&G.flush, GW_LOG_FLUSH_MS, GW_LOG_FLUSH_MS)) < 0)
		return sv_err_set(err, -r, "log push timer: %s", strerror(-r));
	flush();
	return 0;
}

bool gw_logs_finish(void (*done)(void *arg), void *arg)
{
	if (!G.loop || G.disabled || G.finishing || !G.timers)
		return false;
	pthread_mutex_lock(&G.lock);
	size_t n = G.n;
	pthread_mutex_unlock(&G.lock);
	if (n == 0 && !G.call)
		return false;
	G.fin_done = done;
	G.fin_arg = arg;
	G.finishing = true;
	if (sv_timer_arm(&G.fin_timer, GW_LOG_FINISH_MS, 0) < 0) {
		G.finishing = false;
		return false;
	}
	flush();
	return true;
}

void gw_logs_detach(void)
{
	if (!G.loop)
		return;
	flush(); /* queued on the stream; sent if the loop still runs */
	if (G.call)
		gw_call_close_send(G.call);
	sv_log_set_sink(NULL, NULL, SV_LOG_INFO);
	if (G.call)
		gw_call_cancel(G.call); /* no callbacks after this */
	G.call = NULL;
	if (G.listening)
		gw_client_unlisten(G.c, &G.user);
	G.listening = false;
	G.finishing = G.closing = false;
	G.fin_done = NULL;
	if (G.timers) {
		sv_timer_close(G.loop, &G.flush);
		sv_timer_close(G.loop, &G.retry);
		sv_timer_close(G.loop, &G.fin_timer);
		G.timers = false;
	}
	sv_loop_del(G.loop, &G.ew);
	G.loop = NULL;
	pthread_mutex_lock(&G.lock);
	drop_all_locked();
	pthread_mutex_unlock(&G.lock);
}
