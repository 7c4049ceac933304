/* Private to session/gateway: the startup calls around the policy (GetSandboxConfig with the
 * contract's retries, the UpdateConfig sync of a discovered or enriched policy) and the settings
 * of GetSandboxConfigResponse (ocsf_json_enabled, agent_policy_proposals_enabled,
 * config_revision). Nothing here enforces a policy; callers decide what is in force.
 */
#ifndef GW_SYNC_H
#define GW_SYNC_H

#include <stdbool.h>
#include <stdint.h>

#include "gw_client.h"
#include "gw_rpc.h"
#include "sandbox.pb-c.h"
#include "supervisor/err.h"
#include "supervisor/policy/policy.h"

typedef Openshell__Sandbox__V1__GetSandboxConfigResponse gw_config_resp;

#define GW_PROVIDER_RULE_PREFIX "_provider_" /* OpenShell's reserved provider rule keys */

/* Setup phase: @method with @req on @c, retried like the startup fetch (contract §2 step 5):
 * a transport failure or a transient status is retried up to @attempts times, sleeping 1, 2,
 * 4, 4 s. On OK, 0 and @res->resp owned by the caller; else -errno with @err naming @what,
 * the attempts and the last status. */
int gw_call_retry(struct gw_client *c, const char *method, const char *what,
		  const ProtobufCMessage *req, unsigned attempts, struct gw_rpc_result *res,
		  struct sv_err *err);

/* GetSandboxConfig through gw_call_retry; *@out returned owned
 * (openshell__sandbox__v1__get_sandbox_config_response__free_unpacked). */
int gw_config_get(struct gw_client *c, unsigned attempts, gw_config_resp **out, struct sv_err *err);

/* Remove the network_policies entries whose key starts with "_provider_" (rules the gateway
 * composes from providers; never synced back). Returns how many were removed. */
size_t gw_policy_strip_provider_rules(Openshell__Sandbox__V1__SandboxPolicy *m);

/* UpdateConfig{name: @name, policy: @p as protobuf without provider rules, workspace:
 * @workspace} then GetSandboxConfig again, each through gw_call_retry with @attempts; *@out is
 * the re-fetched response (owned). @name must be non-empty. */
int gw_config_sync(struct gw_client *c, const char *name, const struct pol_policy *p,
		   const char *workspace, unsigned attempts, gw_config_resp **out,
		   struct sv_err *err);

/* The settings last seen (gw_settings.c). */
struct gw_setting {
	char *key, *val; /* owned; val formatted as OpenShell logs it ("<unset>", "true", ...) */
};
struct gw_settings {
	bool have;
	uint64_t revision;
	struct gw_setting *v;
	size_t n;
};

/* Take @r's settings: an unchanged config_revision does nothing (returns false). Otherwise
 * (and always for the first response) ocsf_json_enabled switches the OCSF JSONL file
 * (sv_log_set_ocsf_json), agent_policy_proposals_enabled is recorded
 * (gw_agent_proposals_enabled), each added, changed or removed setting is logged
 * (setting_added / setting_changed / setting_removed) and, after the first, the revision change
 * (gateway_config_changed). Returns true when the revision changed. */
bool gw_settings_apply(struct gw_settings *s, const gw_config_resp *r);
void gw_settings_free(struct gw_settings *s);

#endif
