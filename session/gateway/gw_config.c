/* The gateway as the policy source (contract §3.4, §10 "Policy poll loop").
 *
 * Setup: GetSandboxConfig before the main process, retried on transport failures, then the
 * policy in force (a discovered or enriched one synced back with UpdateConfig first, gw_sync.c).
 * Run: poll every OPENSHELL_POLICY_POLL_INTERVAL_SECS; a changed policy_hash
 * re-applies the network rules to new proxy connections only. Filesystem, Landlock and process
 * settings are fixed at startup and a change to them is reported, never half-applied. Every
 * LOADED/FAILED goes through a FIFO outbox retried with backoff.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw_client.h"
#include "gw_core.h"
#include "gw_policy.h"
#include "gw_rpc.h"
#include "gw_sync.h"
#include "netns/netns.h"
#include "openshell.pb-c.h"
#include "sandbox.pb-c.h"
#include "session/session.h"
#include "supervisor/log.h"

#define COMP "gateway"

#define GW_CONFIG_DEADLINE_MS 15000u /* one GetSandboxConfig, connect included */
#define GW_STATUS_DEADLINE_MS 10000u
#define GW_POLL_MAX_S	      86400u
/* Contract §10: the status outbox retries with backoff 1..32 s. */
#define GW_OUTBOX_MAX		 16
#define GW_OUTBOX_BACKOFF_MIN_MS 1000u
#define GW_OUTBOX_BACKOFF_MAX_MS 32000u
#define GW_ERROR_MAX		 1024 /* bytes of a load_error we send */

#define GW_RETAIN_LAST_VALID "retain_last_valid"
#define GW_STATIC_NOTE                                                                       \
	"filesystem, landlock and process settings changed: they take effect only when the " \
	"sandbox restarts"

struct status_item {
	uint32_t version;
	Openshell__V1__PolicyStatus status;
	char *error; /* owned, may be NULL */
};

struct gw_policy_src {
	struct gw_client *c; /* borrowed: the one connection and the token */
	struct gw_client_user user;
	bool listening;
	char *hash;		   /* policy_hash last handled (owned) */
	struct pol_policy base;	   /* what startup enforced, before enrichment */
	struct pol_policy active;  /* the last valid generation after startup */
	bool have_active;
	bool quarantined; /* fail_closed after an invalid generation: all egress denied */
	struct gw_settings settings; /* config_revision and settings last taken */
	char root[256];		     /* where policy binaries are resolved ("" = /) */

	struct sv_loop *loop; /* run phase */
	struct gw_policy_sink sink; /* set is NULL when not polling */
	struct sv_timer poll_timer, outbox_timer;
	bool timers;
	struct gw_unary *poll_call, *status_call;
	int last_poll_status;

	struct status_item outbox[GW_OUTBOX_MAX];
	size_t out_head, out_n;
	struct gw_backoff outbox_backoff; /* 1 s doubling to 32 s, no jitter */
	bool outbox_armed;
};

bool gw_config_wanted(const char *endpoint, const char *sandbox_id, const char *policy_file)
{
	return endpoint && *endpoint && sandbox_id && *sandbox_id && !(policy_file && *policy_file);
}

/* --- the status outbox --------------------------------------------------------------------- */

static const char *status_word(Openshell__V1__PolicyStatus s)
{
	return s == OPENSHELL__V1__POLICY_STATUS__POLICY_STATUS_LOADED ? "LOADED" : "FAILED";
}

static void outbox_push(struct gw_policy_src *src, uint32_t version,
			Openshell__V1__PolicyStatus status, const char *error)
{
	if (src->out_n == GW_OUTBOX_MAX) { /* drop the oldest: a newer generation supersedes it */
		struct status_item *old = &src->outbox[src->out_head];
		free(old->error);
		src->out_head = (src->out_head + 1) % GW_OUTBOX_MAX;
		src->out_n--;
		sv_warn(COMP, "policy_status_dropped", "policy status outbox full: oldest dropped");
	}
	struct status_item *it = &src->outbox[(src->out_head + src->out_n) % GW_OUTBOX_MAX];
	it->version = version;
	it->status = status;
	it->error = NULL;
	if (error && *error) {
		size_t n = strnlen(error, GW_ERROR_MAX);
		if ((it->error = malloc(n + 1))) {
			memcpy(it->error, error, n);
			it->error[n] = '\0';
		}
	}
	src->out_n++;
}

static void outbox_pop(struct gw_policy_src *src)
{
	free(src->outbox[src->out_head].error);
	src->outbox[src->out_head].error = NULL;
	src->out_head = (src->out_head + 1) % GW_OUTBOX_MAX;
	src->out_n--;
}

static void outbox_pump(struct gw_policy_src *src);

static void outbox_retry_later(struct gw_policy_src *src)
{
	uint32_t ms = gw_backoff_next(&src->outbox_backoff, 0);
	if (src->timers && sv_timer_arm(&src->outbox_timer, ms, 0) == 0)
		src->outbox_armed = true;
}

static void status_done(int status, const char *message, const uint8_t *resp, size_t len,
			void *data)
{
	(void)resp;
	(void)len;
	struct gw_policy_src *src = data;
	src->status_call = NULL;
	const struct status_item *it = &src->outbox[src->out_head];
	char ver[16];
	sv_fmt(ver, sizeof(ver), "%u", it->version);
	if (status == GW_STATUS_OK) {
		sv_log_kv(SV_LOG_INFO, COMP, "policy_status_reported", "policy status reported",
			  SV_KVS({"version", ver}, {"status", status_word(it->status)}));
		outbox_pop(src);
		gw_backoff_reset(&src->outbox_backoff);
		outbox_pump(src);
		return;
	}
	if (!gw_status_is_transient(status) && status != GW_STATUS_UNAUTHENTICATED) {
		sv_log_kv(SV_LOG_WARN, COMP, "policy_status_rejected",
			  "the gateway refused a policy status report: dropped",
			  SV_KVS({"version", ver}, {"grpc_status", gw_status_name(status)},
				 {"grpc_message", message}));
		outbox_pop(src);
		outbox_pump(src);
		return;
	}
	sv_log_kv(SV_LOG_DEBUG, COMP, "policy_status_retry", "policy status report failed",
		  SV_KVS({"grpc_status", gw_status_name(status)}, {"grpc_message", message}));
	outbox_retry_later(src);
}

static void outbox_pump(struct gw_policy_src *src)
{
	if (!src->loop || src->status_call || src->out_n == 0 || src->outbox_armed)
		return;
	const struct status_item *it = &src->outbox[src->out_head];
	Openshell__V1__ReportPolicyStatusRequest req =
	    OPENSHELL__V1__REPORT_POLICY_STATUS_REQUEST__INIT;
	req.sandbox_id = (char *)gw_client_sandbox_id(src->c);
	req.version = it->version;
	req.status = it->status;
	req.load_error = it->error ? it->error : (char *)"";
	struct sv_err err = {0};
	if (gw_client_unary(src->c, GW_METHOD("ReportPolicyStatus"), &req.base,
			    GW_STATUS_DEADLINE_MS, status_done, src, &src->status_call, &err) < 0) {
		sv_debug(COMP, "policy_status_retry", "%s", err.msg);
		outbox_retry_later(src);
	}
}

static void outbox_timer_fired(struct sv_loop *loop, struct sv_timer *t)
{
	(void)loop;
	struct gw_policy_src *src = t->data;
	src->outbox_armed = false;
	outbox_pump(src);
}

/* --- deciding a generation ----------------------------------------------------------------- */

/* No policy from the gateway: the same discovery as file mode (contract §3.4: policy.yaml, the
 * legacy navigator path, then policy.ini) if that file is valid, else the restrictive default. */
static int load_fallback(struct pol_policy *out, struct sv_err *err)
{
	struct sv_err e = {0};
	if (pol_load(NULL, NULL, out, &e) == 0)
		return 0;
	sv_log_kv(SV_LOG_ERROR, COMP, "policy_file_invalid",
		  "policy file is invalid: the restrictive default applies",
		  SV_KVS({"error", e.msg}));
	return pol_set_default(out, err);
}

static char *dup_hash(const char *h)
{
	return strdup(h ? h : "");
}

static bool retain_last_valid(const Openshell__Sandbox__V1__GetSandboxConfigResponse *r)
{
	/* Empty or unknown means fail_closed (contract §10). */
	return r->policy_validation_failure_mode &&
	       strcmp(r->policy_validation_failure_mode, GW_RETAIN_LAST_VALID) == 0;
}

/* A new generation from the poll: apply network rules, report, or quarantine. */
static void apply_generation(struct gw_policy_src *src,
			     const Openshell__Sandbox__V1__GetSandboxConfigResponse *r)
{
	char ver[16];
	sv_fmt(ver, sizeof(ver), "%u", r->version);
	if (!r->policy) {
		sv_log_kv(SV_LOG_WARN, COMP, "gateway_policy_cleared",
			  "the gateway no longer sends a policy: the one in force stays",
			  SV_KVS({"version", ver}));
		return;
	}
	struct pol_policy next;
	struct sv_err err = {0};
	if (gw_policy_convert(r->policy, &next, true, &err) < 0) {
		outbox_push(src, r->version, OPENSHELL__V1__POLICY_STATUS__POLICY_STATUS_FAILED,
			    err.msg);
		if (retain_last_valid(r)) {
			sv_log_kv(SV_LOG_ERROR, COMP, "gateway_policy_invalid",
				  "invalid gateway policy: the last valid one stays in force",
				  SV_KVS({"version", ver}, {"error", err.msg},
					 {"failure_mode", GW_RETAIN_LAST_VALID}));
			return;
		}
		if (src->sink.set)
			src->sink.set(src->sink.ctx, NULL);
		src->quarantined = true;
		sv_log_ocsf("CONFIG:UPDATE", SV_SEV_HIGH, "DENIED", "gateway_policy_quarantine",
			    "invalid gateway policy: fail-closed quarantine, all egress denied",
			    SV_KVS({"version", ver}, {"error", err.msg}));
		return;
	}
	if (pol_resolve_binaries(&next, src->root) < 0)
		sv_warn(COMP, "policy_binary_unresolved", "binary paths: out of memory");
	/* Until the first reload, the rules in force are the startup ones. */
	const struct pol_policy *cur = src->have_active ? &src->active : &src->base;
	bool net_changed = src->quarantined || !gw_policy_network_equal(cur, &next);
	bool static_changed = !gw_policy_static_equal(&src->base, &next);
	if (net_changed && src->sink.set)
		src->sink.set(src->sink.ctx, &next);
	src->quarantined = false;
	if (src->have_active)
		pol_free(&src->active);
	src->active = next;
	src->have_active = true;
	char rules[16];
	sv_fmt(rules, sizeof(rules), "%zu", next.n_rules);
	sv_log_kv(SV_LOG_INFO, COMP, "gateway_policy_reloaded",
		  net_changed ? "gateway policy changed: network rules apply to new connections"
			      : "gateway policy changed: network rules unchanged",
		  SV_KVS({"version", ver}, {"rules", rules}, {"hash", r->policy_hash}));
	if (static_changed)
		sv_log_kv(SV_LOG_WARN, COMP, "policy_static_change_deferred", GW_STATIC_NOTE,
			  SV_KVS({"version", ver}));
	outbox_push(src, r->version, OPENSHELL__V1__POLICY_STATUS__POLICY_STATUS_LOADED,
		    static_changed ? GW_STATIC_NOTE : NULL);
}

/* --- the poll ------------------------------------------------------------------------------ */

static void poll_done(int status, const char *message, const uint8_t *resp, size_t len, void *data)
{
	struct gw_policy_src *src = data;
	src->poll_call = NULL;
	if (status != GW_STATUS_OK) {
		/* Said once per change of state: a gateway that is down must not flood the log. */
		if (status != src->last_poll_status)
			sv_log_kv(SV_LOG_WARN, COMP, "policy_poll_failed",
				  "policy poll failed: the policy in force stays",
				  SV_KVS({"grpc_status", gw_status_name(status)},
					 {"grpc_message", message}));
		src->last_poll_status = status;
		return;
	}
	src->last_poll_status = GW_STATUS_OK;
	Openshell__Sandbox__V1__GetSandboxConfigResponse *r =
	    openshell__sandbox__v1__get_sandbox_config_response__unpack(NULL, len, resp);
	if (!r) {
		sv_warn(COMP, "policy_poll_malformed",
			"malformed GetSandboxConfigResponse ignored");
		return;
	}
	(void)gw_settings_apply(&src->settings, r); /* unchanged config_revision: nothing */
	if (!src->hash || strcmp(src->hash, r->policy_hash) != 0) {
		apply_generation(src, r);
		char *h = dup_hash(r->policy_hash);
		if (h) {
			free(src->hash);
			src->hash = h;
		}
	}
	openshell__sandbox__v1__get_sandbox_config_response__free_unpacked(r, NULL);
	outbox_pump(src);
}

static void poll_fired(struct sv_loop *loop, struct sv_timer *t)
{
	(void)loop;
	struct gw_policy_src *src = t->data;
	if (src->poll_call)
		return;
	Openshell__Sandbox__V1__GetSandboxConfigRequest req =
	    OPENSHELL__SANDBOX__V1__GET_SANDBOX_CONFIG_REQUEST__INIT;
	req.sandbox_id = (char *)gw_client_sandbox_id(src->c);
	struct sv_err err = {0};
	if (gw_client_unary(src->c, GW_METHOD("GetSandboxConfig"), &req.base,
			    GW_CONFIG_DEADLINE_MS, poll_done, src, &src->poll_call, &err) < 0)
		sv_debug(COMP, "policy_poll_failed", "%s", err.msg);
}

static uint64_t poll_interval_ms(void)
{
	const char *v = getenv(GW_POLICY_POLL_ENV);
	unsigned long long s = GW_CONFIG_POLL_DEFAULT_S;
	if (v && *v && sv_parse_uint(v, 1, GW_POLL_MAX_S, &s) < 0) {
		sv_log_kv(SV_LOG_WARN, COMP, "policy_poll_interval_invalid",
			  "invalid policy poll interval: using the default",
			  SV_KVS({"variable", GW_POLICY_POLL_ENV}, {"value", v}));
		s = GW_CONFIG_POLL_DEFAULT_S;
	}
	return s * 1000;
}

/* The shared connection is back: a status waiting for it goes now. */
static void client_ready(void *data)
{
	struct gw_policy_src *src = data;
	if (src->outbox_armed && src->timers) {
		(void)sv_timer_disarm(&src->outbox_timer);
		src->outbox_armed = false;
	}
	outbox_pump(src);
}

/* The shared connection went: calls on it are freed with it. */
static void client_lost(const char *why, uint32_t retry_ms, uint64_t up_ms, void *data)
{
	(void)retry_ms;
	(void)up_ms;
	struct gw_policy_src *src = data;
	sv_debug(COMP, "policy_conn_closed", "policy calls lost with the connection: %s", why);
	gw_unary_cancel(src->poll_call);
	src->poll_call = NULL;
	if (src->status_call) {
		gw_unary_cancel(src->status_call);
		src->status_call = NULL;
	}
}

int gw_policy_poll_start(struct gw_policy_src *src, struct sv_loop *loop,
			 const struct gw_policy_sink *sink, struct sv_err *err)
{
	src->loop = loop;
	src->sink = *sink;
	int r;
	if ((r = sv_timer_init(loop, &src->poll_timer, poll_fired, src)) < 0)
		return sv_err_set(err, -r, "policy poll timer: %s", strerror(-r));
	if ((r = sv_timer_init(loop, &src->outbox_timer, outbox_timer_fired, src)) < 0) {
		sv_timer_close(loop, &src->poll_timer);
		return sv_err_set(err, -r, "policy status timer: %s", strerror(-r));
	}
	src->timers = true;
	src->user = (struct gw_client_user){
	    .on_ready = client_ready, .on_lost = client_lost, .data = src};
	gw_client_listen(src->c, &src->user);
	src->listening = true;
	uint64_t ms = poll_interval_ms();
	if ((r = sv_timer_arm(&src->poll_timer, ms, ms)) < 0)
		return sv_err_set(err, -r, "policy poll timer: %s", strerror(-r));
	char iv[24];
	sv_fmt(iv, sizeof(iv), "%llu", (unsigned long long)(ms / 1000));
	sv_log_kv(SV_LOG_INFO, COMP, "policy_poll_started",
		  "polling the gateway for policy changes", SV_KVS({"interval_s", iv}));
	outbox_pump(src); /* the startup LOADED/FAILED */
	return 0;
}

void gw_policy_poll_stop(struct gw_policy_src *src)
{
	if (!src || !src->loop)
		return;
	gw_unary_cancel(src->poll_call);
	gw_unary_cancel(src->status_call);
	src->poll_call = src->status_call = NULL;
	if (src->listening)
		gw_client_unlisten(src->c, &src->user);
	src->listening = false;
	if (src->timers) {
		sv_timer_close(src->loop, &src->poll_timer);
		sv_timer_close(src->loop, &src->outbox_timer);
		src->timers = false;
	}
	src->sink = (struct gw_policy_sink){0};
	src->loop = NULL;
}

void gw_policy_src_free(struct gw_policy_src *src)
{
	if (!src)
		return;
	gw_policy_poll_stop(src);
	while (src->out_n)
		outbox_pop(src);
	pol_free(&src->base);
	if (src->have_active)
		pol_free(&src->active);
	free(src->hash);
	gw_settings_free(&src->settings);
	free(src);
}

/* --- the startup fetch --------------------------------------------------------------------- */

/* The gateway has no policy: discover the image's (file mode's order; invalid -> the
 * restrictive default), add the baseline, sync it with UpdateConfig and re-fetch (contract
 * §3.4). Without a sandbox name, or when the sync or the re-fetch still fails after the startup
 * retries, the sandbox does not start (exit 1), as with OpenShell: it never runs under a policy
 * the gateway does not know. On success *@rp is the re-fetched response, with a policy. */
static int sync_discovered(struct gw_client *c, const struct gw_fetch_opts *o,
			   gw_config_resp **rp, struct sv_err *err)
{
	sv_info(COMP, "gateway_policy_unset",
		"the gateway has no policy for this sandbox: syncing the image's policy (or the "
		"restrictive default) to it");
	if (!o->sandbox_name || !*o->sandbox_name)
		return sv_err_set(err, EINVAL,
				  "gateway: the gateway has no policy and the discovered one cannot "
				  "be synced: the sandbox name is not set (OPENSHELL_SANDBOX or "
				  "--sandbox)");
	struct pol_policy disc;
	int r = load_fallback(&disc, err);
	if (r < 0)
		return r;
	gw_config_resp *next = NULL;
	r = pol_enrich(&disc, o->root, disc.n_rules ? POL_ENRICH_PROXY : 0, err);
	if (r >= 0)
		r = gw_config_sync(c, o->sandbox_name, &disc, (*rp)->workspace,
				   GW_CONFIG_ATTEMPTS, &next, err);
	pol_free(&disc);
	if (r < 0)
		return r;
	if (!next->policy) {
		openshell__sandbox__v1__get_sandbox_config_response__free_unpacked(next, NULL);
		return sv_err_set(err, EPROTO,
				  "gateway: GetSandboxConfig still has no policy after UpdateConfig");
	}
	openshell__sandbox__v1__get_sandbox_config_response__free_unpacked(*rp, NULL);
	*rp = next;
	return 0;
}

/* Sync @tmp (the enriched @out) and take the re-fetched policy into @out. */
static bool sync_enriched_policy(struct gw_client *c, const struct gw_fetch_opts *o,
				 gw_config_resp **rp, const struct pol_policy *tmp,
				 struct pol_policy *out)
{
	gw_config_resp *next = NULL;
	struct sv_err e = {0};
	if (gw_config_sync(c, o->sandbox_name, tmp, (*rp)->workspace, 1, &next, &e) < 0) {
		sv_log_kv(SV_LOG_WARN, COMP, "policy_sync_failed",
			  "the enriched policy could not be synced: enforced as enriched locally",
			  SV_KVS({"error", e.msg}));
		return false;
	}
	struct pol_policy conv;
	if (!next->policy || gw_policy_convert(next->policy, &conv, false, &e) < 0) {
		sv_log_kv(SV_LOG_WARN, COMP, "policy_sync_failed",
			  "the re-fetched policy is not usable: the enriched one is enforced",
			  SV_KVS({"error", next->policy ? e.msg : "no policy"}));
		openshell__sandbox__v1__get_sandbox_config_response__free_unpacked(next, NULL);
		return false;
	}
	pol_free(out);
	*out = conv;
	openshell__sandbox__v1__get_sandbox_config_response__free_unpacked(*rp, NULL);
	*rp = next;
	return true;
}

/* A valid gateway policy the baseline enrichment changes is synced back and re-fetched, so the
 * gateway shows the policy in force (contract §3.3). Best effort and one attempt, as OpenShell:
 * on failure the enriched policy is still what the sandbox enforces (sv_sandbox_prepare
 * enriches again) and the fetched revision is the one acknowledged. */
static void sync_enriched(struct gw_client *c, const struct gw_fetch_opts *o,
			  gw_config_resp **rp, struct pol_policy *out)
{
	struct pol_policy tmp;
	struct sv_err e = {0};
	if (pol_copy(out, &tmp) < 0)
		return;
	int n = pol_enrich(&tmp, o->root, tmp.n_rules ? POL_ENRICH_PROXY : 0, &e);
	if (n > 0 && (!o->sandbox_name || !*o->sandbox_name))
		sv_warn(COMP, "policy_sync_skipped",
			"the policy was enriched but no sandbox name is set (OPENSHELL_SANDBOX): "
			"not synced to the gateway");
	else if (n > 0)
		(void)sync_enriched_policy(c, o, rp, &tmp, out);
	pol_free(&tmp);
}

int gw_config_fetch(struct gw_client *c, const struct gw_fetch_opts *o, struct pol_policy *out,
		    struct gw_policy_src **srcp, struct sv_err *err)
{
	static const struct gw_fetch_opts none = {0};
	if (!o)
		o = &none;
	pol_init(out);
	gw_config_resp *r = NULL;
	int rc = gw_config_get(c, GW_CONFIG_ATTEMPTS, &r, err);
	if (rc < 0 || !r)
		return rc < 0 ? rc : -EPROTO;
	bool discovered = !r->policy;
	if (discovered && (rc = sync_discovered(c, o, &r, err)) < 0) {
		openshell__sandbox__v1__get_sandbox_config_response__free_unpacked(r, NULL);
		return rc;
	}
	struct gw_policy_src *src = calloc(1, sizeof(*src));
	if (!src || !(src->hash = dup_hash(r->policy_hash))) {
		free(src);
		openshell__sandbox__v1__get_sandbox_config_response__free_unpacked(r, NULL);
		return sv_err_set(err, ENOMEM, "gateway policy: out of memory");
	}
	src->c = c;
	src->outbox_backoff =
	    GW_BACKOFF_INIT(GW_OUTBOX_BACKOFF_MIN_MS, GW_OUTBOX_BACKOFF_MAX_MS, 0);
	src->last_poll_status = GW_STATUS_OK;
	sv_fmt(src->root, sizeof(src->root), "%s",
	       o->root && strcmp(o->root, "/") != 0 ? o->root : "");
	pol_init(&src->base);
	struct sv_err e = {0};
	if (gw_policy_convert(r->policy, out, true, &e) == 0) {
		if (!discovered)
			sync_enriched(c, o, &r, out);
		if (r->policy_hash && (!src->hash || strcmp(src->hash, r->policy_hash) != 0)) {
			free(src->hash);
			src->hash = dup_hash(r->policy_hash);
		}
		rc = gw_policy_convert(r->policy, &src->base, false, err);
		outbox_push(src, r->version, OPENSHELL__V1__POLICY_STATUS__POLICY_STATUS_LOADED,
			    NULL);
		char ver[16], rules[16];
		sv_fmt(ver, sizeof(ver), "%u", r->version);
		sv_fmt(rules, sizeof(rules), "%zu", out->n_rules);
		sv_log_kv(SV_LOG_INFO, COMP, "gateway_policy_loaded", "gateway policy loaded",
			  SV_KVS({"version", ver}, {"rules", rules}, {"hash", r->policy_hash},
				 {"origin", discovered ? "synced from the image" : "gateway"}));
	} else {
		/* Both failure modes fail closed at startup (contract §3.4). */
		char ver[16];
		sv_fmt(ver, sizeof(ver), "%u", r->version);
		sv_log_kv(SV_LOG_ERROR, COMP, "gateway_policy_invalid",
			  "invalid gateway policy: the restrictive default applies",
			  SV_KVS({"version", ver}, {"error", e.msg}));
		outbox_push(src, r->version, OPENSHELL__V1__POLICY_STATUS__POLICY_STATUS_FAILED,
			    e.msg);
		rc = pol_set_default(out, err);
		if (rc == 0)
			rc = pol_set_default(&src->base, err);
	}
	if (rc == 0 && (pol_resolve_binaries(out, src->root) < 0 ||
			pol_resolve_binaries(&src->base, src->root) < 0))
		rc = sv_err_set(err, ENOMEM, "gateway policy: out of memory");
	(void)gw_settings_apply(&src->settings, r); /* ocsf_json_enabled from the start */
	openshell__sandbox__v1__get_sandbox_config_response__free_unpacked(r, NULL);
	if (rc < 0) {
		pol_free(out);
		gw_policy_src_free(src);
		return rc;
	}
	*srcp = src;
	return 0;
}
