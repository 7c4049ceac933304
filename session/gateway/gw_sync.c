/* The setup-phase calls around the policy: GetSandboxConfig and UpdateConfig with the startup
 * retries (contract §2 step 5), and the sync of a discovered or enriched policy back to the
 * gateway followed by a re-fetch (contract §3.3-3.4). It never decides what is enforced and never
 * sends the gateway's provider rules back.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw_policy.h"
#include "gw_sync.h"
#include "openshell.pb-c.h"
#include "session/session.h"
#include "supervisor/log.h"

#define COMP "gateway"

#define GW_CALL_DEADLINE_MS 15000u /* one startup call, connect included */

/* Contract §2 step 5: sleeps between the startup attempts. */
static const unsigned startup_sleep_s[GW_CONFIG_ATTEMPTS - 1] = {1, 2, 4, 4};

static void sleep_s(unsigned s)
{
	struct timespec ts = {.tv_sec = s, .tv_nsec = 0};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int gw_call_retry(struct gw_client *c, const char *method, const char *what,
		  const ProtobufCMessage *req, unsigned attempts, struct gw_rpc_result *res,
		  struct sv_err *err)
{
	if (attempts < 1 || attempts > GW_CONFIG_ATTEMPTS)
		attempts = GW_CONFIG_ATTEMPTS;
	for (unsigned attempt = 1;; attempt++) {
		int r = gw_client_call_sync(c, method, req, GW_CALL_DEADLINE_MS, res, err);
		if (r < 0) {
			sv_err_prefix(err, "gateway");
			return r;
		}
		if (res->status == GW_STATUS_OK)
			return 0;
		free(res->resp);
		res->resp = NULL;
		char at[16];
		sv_fmt(at, sizeof(at), "%u", attempt);
		if (!gw_status_is_transient(res->status) || attempt == attempts)
			return sv_err_set(
			    err, gw_status_is_transient(res->status) ? EHOSTUNREACH : EACCES,
			    "gateway: %s failed after %u attempt%s: %s: %s", what, attempt,
			    attempt == 1 ? "" : "s", gw_status_name(res->status), res->message);
		sv_log_kv(SV_LOG_WARN, COMP, "policy_fetch_retry", "gateway call failed, retrying",
			  SV_KVS({"call", what}, {"attempt", at},
				 {"grpc_status", gw_status_name(res->status)},
				 {"grpc_message", res->message}));
		sleep_s(startup_sleep_s[attempt - 1]);
	}
}

int gw_config_get(struct gw_client *c, unsigned attempts, gw_config_resp **out, struct sv_err *err)
{
	Openshell__Sandbox__V1__GetSandboxConfigRequest req =
	    OPENSHELL__SANDBOX__V1__GET_SANDBOX_CONFIG_REQUEST__INIT;
	req.sandbox_id = (char *)gw_client_sandbox_id(c);
	struct gw_rpc_result res;
	int r = gw_call_retry(c, GW_METHOD("GetSandboxConfig"), "GetSandboxConfig", &req.base,
			      attempts, &res, err);
	if (r < 0)
		return r;
	*out = openshell__sandbox__v1__get_sandbox_config_response__unpack(NULL, res.len, res.resp);
	free(res.resp);
	if (!*out)
		return sv_err_set(err, EPROTO, "gateway: GetSandboxConfig: malformed response");
	return 0;
}

size_t gw_policy_strip_provider_rules(Openshell__Sandbox__V1__SandboxPolicy *m)
{
	size_t kept = 0, n = m->n_network_policies;
	for (size_t i = 0; i < n; i++) {
		Openshell__Sandbox__V1__SandboxPolicy__NetworkPoliciesEntry *e =
		    m->network_policies[i];
		if (e && e->key &&
		    strncmp(e->key, GW_PROVIDER_RULE_PREFIX, strlen(GW_PROVIDER_RULE_PREFIX)) ==
			0) {
			protobuf_c_message_free_unpacked(&e->base, NULL);
			continue;
		}
		m->network_policies[kept++] = e;
	}
	m->n_network_policies = kept;
	return n - kept;
}

int gw_config_sync(struct gw_client *c, const char *name, const struct pol_policy *p,
		   const char *workspace, unsigned attempts, gw_config_resp **out,
		   struct sv_err *err)
{
	if (!name || !*name)
		return sv_err_set(err, EINVAL,
				  "gateway: cannot sync the policy: the sandbox name is not set "
				  "(OPENSHELL_SANDBOX or --sandbox)");
	Openshell__Sandbox__V1__SandboxPolicy *m = NULL;
	int r = gw_policy_to_proto(p, &m, err);
	if (r < 0) {
		sv_err_prefix(err, "gateway: UpdateConfig");
		return r;
	}
	size_t stripped = gw_policy_strip_provider_rules(m);
	Openshell__V1__UpdateConfigRequest req = OPENSHELL__V1__UPDATE_CONFIG_REQUEST__INIT;
	req.name = (char *)name;
	req.policy = m;
	req.workspace = (char *)(workspace ? workspace : "");
	struct gw_rpc_result res;
	r = gw_call_retry(c, GW_METHOD("UpdateConfig"), "UpdateConfig", &req.base, attempts, &res,
			  err);
	size_t rules = m->n_network_policies;
	gw_policy_proto_free(m);
	if (r < 0)
		return r;
	Openshell__V1__UpdateConfigResponse *u =
	    openshell__v1__update_config_response__unpack(NULL, res.len, res.resp);
	free(res.resp);
	char ver[16] = "-", nrules[16], nstrip[16];
	if (u)
		sv_fmt(ver, sizeof(ver), "%u", u->version);
	sv_fmt(nrules, sizeof(nrules), "%zu", rules);
	sv_fmt(nstrip, sizeof(nstrip), "%zu", stripped);
	sv_log_kv(SV_LOG_INFO, COMP, "policy_synced",
		  "policy synced to the gateway with UpdateConfig; re-fetching",
		  SV_KVS({"sandbox", name}, {"version", ver}, {"rules", nrules},
			 {"provider_rules_stripped", nstrip}));
	if (u)
		openshell__v1__update_config_response__free_unpacked(u, NULL);
	return gw_config_get(c, attempts, out, err);
}
