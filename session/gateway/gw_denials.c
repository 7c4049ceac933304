/* Denial summaries to the gateway (contract §8 "Denial event", §10 SubmitPolicyAnalysis): the
 * proxy's denials, aggregated in gw_denials_map.c's bounded table, sent every
 * OPENSHELL_DENIAL_FLUSH_INTERVAL_SECS as one unary call on the one client's connection.
 *
 * Never blocks the loop and never queues without limit: a window that cannot go (the
 * connection is down, the previous call is still in flight, an error) is dropped and counted.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw_client.h"
#include "gw_denials.h"
#include "gw_rpc.h"
#include "session/session.h"
#include "supervisor/log.h"

#define COMP		    "gateway"
#define GW_DENIAL_FLUSH_MAX_S 86400
/* A call still running when the next window is due is given up on (its window dropped). */
#define GW_DENIAL_CALL_MS 10000u
#define GW_DENIAL_FINISH_MS 2000u /* ours: how long the last window may take at exit */

struct gw_denials {
	struct gw_client *c;
	char *name;
	struct sv_loop *loop;
	struct sv_timer flush, fin;
	bool timer;
	void (*fin_done)(void *arg); /* gw_denials_finish's, called once */
	void *fin_arg;
	uint64_t interval_ms;
	struct gw_dagg agg;
	struct gw_client_user user;
	bool listening;
	struct gw_unary *call; /* SubmitPolicyAnalysis in flight */
	uint64_t pending;      /* summaries in the call in flight */
	struct gw_denials_stats st;
	uint64_t dropped_logged; /* st.dropped when last logged */
};

static int64_t epoch_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t flush_interval_ms(void)
{
	const char *v = getenv(GW_DENIAL_FLUSH_ENV);
	unsigned long long s = GW_DENIAL_FLUSH_DEFAULT_S;
	if (v && *v && sv_parse_uint(v, 1, GW_DENIAL_FLUSH_MAX_S, &s) < 0) {
		sv_log_kv(SV_LOG_WARN, COMP, "denial_flush_interval_invalid",
			  "invalid denial flush interval: using the default",
			  SV_KVS({"variable", GW_DENIAL_FLUSH_ENV}, {"value", v}));
		s = GW_DENIAL_FLUSH_DEFAULT_S;
	}
	return s * 1000;
}

int gw_denials_new(struct gw_client *c, const char *name, struct gw_denials **out,
		   struct sv_err *err)
{
	struct gw_denials *d = calloc(1, sizeof(*d));
	if (!d || !(d->name = strdup(name && *name ? name : gw_client_sandbox_id(c)))) {
		free(d);
		return sv_err_set(err, ENOMEM, "denial summaries: out of memory");
	}
	d->c = c;
	d->interval_ms = flush_interval_ms();
	*out = d;
	return 0;
}

static void drop(struct gw_denials *d, uint64_t n, const char *why)
{
	d->st.dropped += n;
	if (d->st.dropped == d->dropped_logged)
		return;
	char cnt[24], tot[24];
	sv_fmt(cnt, sizeof(cnt), "%llu", (unsigned long long)n);
	sv_fmt(tot, sizeof(tot), "%llu", (unsigned long long)d->st.dropped);
	sv_log_kv(SV_LOG_WARN, COMP, "denial_summaries_dropped",
		  "denial summaries dropped: the gateway did not take them",
		  SV_KVS({"count", cnt}, {"total", tot}, {"reason", why}));
	d->dropped_logged = d->st.dropped;
}

static void call_result(struct gw_denials *d, int status, const char *message,
			const uint8_t *resp, size_t len, uint64_t n);

/* The exit's wait is over (the last call ended, or its time ran out). */
static void finished(struct gw_denials *d)
{
	void (*done)(void *) = d->fin_done;
	if (!done)
		return;
	d->fin_done = NULL;
	(void)sv_timer_disarm(&d->fin);
	done(d->fin_arg);
}

static void call_done(int status, const char *message, const uint8_t *resp, size_t len, void *data)
{
	struct gw_denials *d = data;
	uint64_t n = d->pending;
	d->call = NULL;
	d->pending = 0;
	call_result(d, status, message, resp, len, n);
	finished(d);
}

static void call_result(struct gw_denials *d, int status, const char *message,
			const uint8_t *resp, size_t len, uint64_t n)
{
	if (status != GW_STATUS_OK) {
		d->st.calls_failed++;
		char why[300];
		sv_fmt(why, sizeof(why), "%s: %s", gw_status_name(status), message ? message : "");
		drop(d, n, why);
		return;
	}
	d->st.calls_ok++;
	d->st.flushed_summaries += n;
	Openshell__V1__SubmitPolicyAnalysisResponse *r =
	    openshell__v1__submit_policy_analysis_response__unpack(NULL, len, resp);
	char sum[24], acc[16], rej[16];
	sv_fmt(sum, sizeof(sum), "%llu", (unsigned long long)n);
	sv_fmt(acc, sizeof(acc), "%u", r ? r->accepted_chunks : 0);
	sv_fmt(rej, sizeof(rej), "%u", r ? r->rejected_chunks : 0);
	sv_log_kv(SV_LOG_INFO, COMP, "denial_summaries_flushed",
		  "flushed denial analysis to the gateway",
		  SV_KVS({"summaries", sum}, {"accepted_chunks", acc}, {"rejected_chunks", rej}));
	if (r)
		openshell__v1__submit_policy_analysis_response__free_unpacked(r, NULL);
}

static void flush(struct gw_denials *d)
{
	if (d->agg.dropped) {
		drop(d, d->agg.dropped, "more distinct denials than the table holds");
		d->agg.dropped = 0;
	}
	if (d->agg.n == 0)
		return;
	uint64_t n = d->agg.n;
	if (d->call) { /* the previous window never finished: give up on it */
		gw_unary_cancel(d->call);
		d->call = NULL;
		d->st.calls_failed++;
		drop(d, d->pending, "the previous call did not finish in time");
		d->pending = 0;
	}
	struct gw_dreq req;
	if (gw_dreq_build(&d->agg, d->name, &req) < 0) {
		gw_dagg_clear(&d->agg);
		drop(d, n, "out of memory");
		return;
	}
	struct sv_err err = {0};
	uint32_t deadline = d->interval_ms < GW_DENIAL_CALL_MS ? (uint32_t)d->interval_ms
							      : GW_DENIAL_CALL_MS;
	int r = gw_client_unary(d->c, GW_METHOD("SubmitPolicyAnalysis"), &req.req.base, deadline,
				call_done, d, &d->call, &err);
	gw_dreq_free(&req);
	gw_dagg_clear(&d->agg);
	if (r < 0) {
		d->call = NULL;
		d->st.calls_failed++;
		drop(d, n, err.msg);
		return;
	}
	d->pending = n;
}

/* The connection went: the call in flight is freed by the client without a callback. */
static void client_lost(const char *why, uint32_t retry_ms, uint64_t up_ms, void *data)
{
	(void)retry_ms;
	(void)up_ms;
	struct gw_denials *d = data;
	if (!d->call)
		return;
	d->call = NULL;
	d->st.calls_failed++;
	drop(d, d->pending, why ? why : "connection lost");
	d->pending = 0;
	finished(d);
}

static void fin_fired(struct sv_loop *loop, struct sv_timer *t)
{
	(void)loop;
	struct gw_denials *d = t->data;
	if (d->call) {
		gw_unary_cancel(d->call);
		d->call = NULL;
		d->st.calls_failed++;
		drop(d, d->pending, "the gateway did not answer before the exit");
		d->pending = 0;
	}
	finished(d);
}

bool gw_denials_finish(struct gw_denials *d, void (*done)(void *arg), void *arg)
{
	if (!d || !d->timer)
		return false;
	(void)sv_timer_disarm(&d->flush);
	flush(d);
	if (!d->call || sv_timer_arm(&d->fin, GW_DENIAL_FINISH_MS, 0) < 0)
		return false;
	d->fin_done = done;
	d->fin_arg = arg;
	return true;
}

static void flush_fired(struct sv_loop *loop, struct sv_timer *t)
{
	(void)loop;
	flush(t->data);
}

int gw_denials_attach(struct gw_denials *d, struct sv_loop *loop, struct sv_err *err)
{
	int r = sv_timer_init(loop, &d->flush, flush_fired, d);
	if (r < 0)
		return sv_err_set(err, -r, "denial flush timer: %s", strerror(-r));
	if ((r = sv_timer_init(loop, &d->fin, fin_fired, d)) < 0) {
		sv_timer_close(loop, &d->flush);
		return sv_err_set(err, -r, "denial finish timer: %s", strerror(-r));
	}
	d->loop = loop;
	d->timer = true;
	d->user = (struct gw_client_user){.on_lost = client_lost, .data = d};
	gw_client_listen(d->c, &d->user);
	d->listening = true;
	if ((r = sv_timer_arm(&d->flush, d->interval_ms, d->interval_ms)) < 0)
		return sv_err_set(err, -r, "denial flush timer: %s", strerror(-r));
	char iv[24];
	sv_fmt(iv, sizeof(iv), "%llu", (unsigned long long)(d->interval_ms / 1000));
	sv_log_kv(SV_LOG_INFO, COMP, "denial_summaries_started",
		  "denial summaries go to the gateway", SV_KVS({"interval_s", iv}, {"name", d->name}));
	return 0;
}

void gw_denials_add(struct gw_denials *d, const struct gw_denial *ev)
{
	if (!d || !ev->host || !*ev->host)
		return;
	d->st.received++;
	(void)gw_dagg_add(&d->agg, ev, epoch_ms());
}

void gw_denials_stats(const struct gw_denials *d, struct gw_denials_stats *out)
{
	*out = d ? d->st : (struct gw_denials_stats){0};
}

void gw_denials_free(struct gw_denials *d)
{
	if (!d)
		return;
	if (d->call)
		gw_unary_cancel(d->call);
	if (d->listening)
		gw_client_unlisten(d->c, &d->user);
	if (d->timer) {
		sv_timer_close(d->loop, &d->flush);
		sv_timer_close(d->loop, &d->fin);
	}
	gw_dagg_clear(&d->agg);
	free(d->name);
	free(d);
}
