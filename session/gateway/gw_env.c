/* Provider environment (contract §2 step 7, §6.2; l7 contract §3.2): GetSandboxProviderEnvironment
 * once before the main process starts; the values go into the credential store (px_cred) and
 * each variable reaches the agent's environment as its placeholder, never its value.
 *
 * The values are credentials: they are never logged, only counted and named, and never put in
 * an environment. Best effort: a failure leaves the agent without provider variables and says
 * so (fail closed), it never stops the sandbox.
 */
#include <stdlib.h>
#include <string.h>

#include "gw_client.h"
#include "gw_rpc.h"
#include "netns/proxy/l7/px_cred.h"
#include "openshell.pb-c.h"
#include "session/session.h"
#include "supervisor/log.h"

#define COMP		   "gateway"
#define GW_ENV_DEADLINE_MS 15000u
#define GW_ENV_NAME_MAX	   256 /* bytes of a variable name we accept */
/* Whether we tell the gateway we enforce static credential bindings (issue 14): only once the
 * proxy's relay substitutes placeholders and refuses unbound endpoints. The store validates and
 * scopes bindings (l7 contract §3.5) exactly when this is true. */
#define GW_ENV_CLAIM_BINDINGS true

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

/* The response as px_cred input (borrowed from @r; the arrays are ours to free). */
struct env_in {
	struct px_cred_input in;
	struct px_cred_var_in *vars;
	struct px_cred_binding_in *bindings;
	struct px_cred_endpoint_in *eps;
	const char **non_secret;
};

static void env_in_free(struct env_in *e)
{
	free(e->vars);
	free(e->bindings);
	free(e->eps);
	free(e->non_secret);
}

/* A key on the strip list (contract §6.2) is dropped from the variables: its metadata goes
 * with it, or the §3.5 check would see metadata naming a missing key and revoke every static
 * credential because of a variable we refuse anyway. */
static bool stripped(const char *k)
{
	return k && sv_env_is_secret(k, strlen(k));
}

static int64_t expiry_of(const Openshell__V1__GetSandboxProviderEnvironmentResponse *r,
			 const char *k)
{
	for (size_t i = 0; i < r->n_credential_expires_at_ms; i++)
		if (r->credential_expires_at_ms[i]->key &&
		    strcmp(r->credential_expires_at_ms[i]->key, k) == 0)
			return r->credential_expires_at_ms[i]->value;
	return 0;
}

static int env_in_build(const Openshell__V1__GetSandboxProviderEnvironmentResponse *r,
			struct env_in *e)
{
	size_t n_eps = 0;
	for (size_t i = 0; i < r->n_static_credential_bindings; i++)
		if (r->static_credential_bindings[i]->value)
			n_eps += r->static_credential_bindings[i]->value->n_endpoints;
	e->vars = calloc(r->n_environment + 1, sizeof(*e->vars));
	e->bindings = calloc(r->n_static_credential_bindings + 1, sizeof(*e->bindings));
	e->eps = calloc(n_eps + 1, sizeof(*e->eps));
	e->non_secret = calloc(r->n_non_secret_environment_keys + 1, sizeof(*e->non_secret));
	if (!e->vars || !e->bindings || !e->eps || !e->non_secret)
		return -ENOMEM;
	e->in.revision = r->provider_env_revision;
	e->in.bindings_enforced = GW_ENV_CLAIM_BINDINGS;
	for (size_t i = 0; i < r->n_environment; i++) {
		const char *k = r->environment[i]->key, *v = r->environment[i]->value;
		/* The strip list decides for provider variables too (contract §6.2). */
		if (k && sv_env_is_secret(k, strlen(k)))
			sv_log_kv(SV_LOG_WARN, COMP, "provider_env_skipped",
				  "provider variable is one the agent never gets: skipped",
				  SV_KVS({"name", k}));
		/* a variable the agent must never get is not resolvable either */
		if (k && v && !sv_env_is_secret(k, strlen(k)))
			e->vars[e->in.n_vars++] = (struct px_cred_var_in){k, v, expiry_of(r, k)};
	}
	size_t ep = 0;
	for (size_t i = 0; i < r->n_static_credential_bindings; i++) {
		const Openshell__V1__StaticCredentialBinding *b =
		    r->static_credential_bindings[i]->value;
		if (stripped(r->static_credential_bindings[i]->key))
			continue;
		struct px_cred_binding_in *d = &e->bindings[e->in.n_bindings++];
		*d = (struct px_cred_binding_in){r->static_credential_bindings[i]->key, "", NULL,
						 e->eps + ep, 0};
		if (!b)
			continue; /* no identity, no endpoints: the validation refuses it */
		d->identity = b->credential_identity;
		d->handle = b->workload_credential_handle;
		for (size_t k = 0; k < b->n_endpoints; k++) {
			const Openshell__V1__StaticCredentialEndpointBinding *x = b->endpoints[k];
			e->eps[ep++] = (struct px_cred_endpoint_in){x->host, x->port, x->path};
			d->n_endpoints++;
		}
	}
	e->in.vars = e->vars;
	e->in.bindings = e->bindings;
	for (size_t i = 0; i < r->n_non_secret_environment_keys; i++)
		if (!stripped(r->non_secret_environment_keys[i]))
			e->non_secret[e->in.n_non_secret++] = r->non_secret_environment_keys[i];
	e->in.non_secret = e->non_secret;
	return 0;
}

/* Each variable of @store as its placeholder in @env, under the same name rules as before. */
static int env_publish(const struct px_cred_store *store, struct sv_env *env)
{
	int set = 0;
	char ph[PX_CRED_PLACEHOLDER_MAX + 8];
	for (size_t i = 0; i < px_cred_store_count(store); i++) {
		const char *k = px_cred_store_key(store, i);
		if (!env_name_ok(k)) {
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
		if (px_cred_store_placeholder(store, i, ph, sizeof(ph)) < 0 ||
		    sv_env_set(env, k, ph) < 0) {
			fetch_failed("out of memory", k);
			break;
		}
		set++;
	}
	return set;
}

int gw_provider_env(struct gw_client *c, struct sv_env *env, struct px_cred_store *store)
{
	Openshell__V1__GetSandboxProviderEnvironmentRequest req =
	    OPENSHELL__V1__GET_SANDBOX_PROVIDER_ENVIRONMENT_REQUEST__INIT;
	req.sandbox_id = (char *)gw_client_sandbox_id(c);
	/* The flag tells the gateway that bound static secrets are safe to hand over: the relay
	 * substitutes placeholders and refuses endpoints a credential is not bound to
	 * (px_l7_cred_rewrite). */
	req.supports_static_credential_bindings = GW_ENV_CLAIM_BINDINGS;
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
	px_cred_wipe(res.resp, res.len);
	free(res.resp);
	if (!r) {
		fetch_failed("malformed", "GetSandboxProviderEnvironmentResponse");
		return 0;
	}
	struct env_in e = {0};
	int rc = env_in_build(r, &e);
	if (rc == 0)
		rc = px_cred_store_install(store, &e.in, &err);
	env_in_free(&e);
	/* wipe the unpacked values: from here on the store holds the only copy */
	for (size_t i = 0; i < r->n_environment; i++)
		if (r->environment[i]->value)
			px_cred_wipe(r->environment[i]->value, strlen(r->environment[i]->value));
	openshell__v1__get_sandbox_provider_environment_response__free_unpacked(r, NULL);
	if (rc == -EINVAL) {
		sv_log_ocsf("FINDING:OPEN", SV_SEV_HIGH, "DENIED", "provider_credentials_rejected",
			    "static provider credentials rejected: the agent gets none of them",
			    SV_KVS({"reason", err.msg}));
	} else if (rc < 0) {
		fetch_failed("out of memory", "provider environment");
		px_cred_store_revoke(store, 0);
		return 0;
	}
	int set = env_publish(store, env);
	char n[16];
	sv_fmt(n, sizeof(n), "%d", set);
	sv_log_kv(SV_LOG_INFO, COMP, "provider_env_loaded",
		  "provider environment added to the main process as placeholders (values stay "
		  "in the supervisor)",
		  SV_KVS({"count", n}));
	return set;
}
