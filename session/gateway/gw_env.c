/* Provider environment (contract §2 step 7, §6.2): GetSandboxProviderEnvironment once before
 * the main process starts, each variable added to its environment.
 *
 * The values are credentials: they are never logged, only counted and named. Best effort: a
 * failure leaves the agent without provider variables and says so, it never stops the sandbox.
 */
#include <string.h>

#include "gw_client.h"
#include "gw_rpc.h"
#include "openshell.pb-c.h"
#include "session/session.h"
#include "supervisor/log.h"

#define COMP		   "gateway"
#define GW_ENV_DEADLINE_MS 15000u
#define GW_ENV_NAME_MAX	   256 /* bytes of a variable name we accept */

/* A POSIX-portable name: [A-Za-z_][A-Za-z0-9_]*. Anything else could not be set or read
 * reliably by a shell, and '=' would split the entry. */
static bool env_name_ok(const char *k)
{
	size_t n = strnlen(k, GW_ENV_NAME_MAX + 1);
	if (n == 0 || n > GW_ENV_NAME_MAX || (k[0] >= '0' && k[0] <= '9'))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = k[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_'))
			return false;
	}
	return true;
}

static bool is_identity_var(const char *k)
{
	static const char *const names[] = {"HOME", "USER", "SHELL", "TERM", "OPENSHELL_SANDBOX"};
	for (size_t i = 0; i < SV_ARRAY_SIZE(names); i++)
		if (strcmp(k, names[i]) == 0)
			return true;
	return false;
}

static void fetch_failed(const char *why, const char *detail)
{
	sv_log_ocsf("CONFIG:READ", SV_SEV_HIGH, "FAILED", "provider_env_failed",
		    "provider environment unavailable: the agent starts without it",
		    SV_KVS({"reason", why}, {"detail", detail}));
}

int gw_provider_env(struct gw_client *c, struct sv_env *env)
{
	Openshell__V1__GetSandboxProviderEnvironmentRequest req =
	    OPENSHELL__V1__GET_SANDBOX_PROVIDER_ENVIRONMENT_REQUEST__INIT;
	req.sandbox_id = (char *)gw_client_sandbox_id(c);
	/* false until placeholders are enforced at egress: the flag tells the gateway that bound
	 * static secrets are safe to hand over, and raw values in the agent's environment are not. */
	req.supports_static_credential_bindings = false;
	struct gw_rpc_result res;
	struct sv_err err = {0};
	if (gw_client_call_sync(c, GW_METHOD("GetSandboxProviderEnvironment"), &req.base,
				GW_ENV_DEADLINE_MS, &res, &err) < 0) {
		fetch_failed("transport", err.msg);
		return 0;
	}
	if (res.status != GW_STATUS_OK) {
		free(res.resp);
		fetch_failed(gw_status_name(res.status), res.message);
		return 0;
	}
	Openshell__V1__GetSandboxProviderEnvironmentResponse *r =
	    openshell__v1__get_sandbox_provider_environment_response__unpack(NULL, res.len,
									     res.resp);
	free(res.resp);
	if (!r) {
		fetch_failed("malformed", "GetSandboxProviderEnvironmentResponse");
		return 0;
	}
	int set = 0;
	for (size_t i = 0; i < r->n_environment; i++) {
		const char *k = r->environment[i]->key, *v = r->environment[i]->value;
		if (!k || !v || !env_name_ok(k)) {
			sv_warn(COMP, "provider_env_skipped",
				"provider variable with an invalid name skipped");
			continue;
		}
		/* Contract §6.2 sets HOME, USER, SHELL and TERM after the provider variables: the
		 * values already in @env win. */
		if (is_identity_var(k) && sv_env_get(env, k)) {
			sv_log_kv(SV_LOG_WARN, COMP, "provider_env_skipped",
				  "provider variable would replace the agent's identity: skipped",
				  SV_KVS({"name", k}));
			continue;
		}
		/* The strip list decides for provider variables too (contract §6.2). */
		if (sv_env_is_secret(k, strlen(k))) {
			sv_log_kv(SV_LOG_WARN, COMP, "provider_env_skipped",
				  "provider variable is one the agent never gets: skipped",
				  SV_KVS({"name", k}));
			continue;
		}
		if (sv_env_set(env, k, v) < 0) {
			fetch_failed("out of memory", k);
			break;
		}
		set++;
	}
	openshell__v1__get_sandbox_provider_environment_response__free_unpacked(r, NULL);
	char n[16];
	sv_fmt(n, sizeof(n), "%d", set);
	sv_log_kv(SV_LOG_INFO, COMP, "provider_env_loaded",
		  "provider environment added to the main process (values not logged)",
		  SV_KVS({"count", n}));
	return set;
}
