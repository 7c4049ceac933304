/* The gateway session's public face for supervisor/main.c (contract §10).
 *
 * Everything else in session/ is private. H3 (gw-core) owns this file; the gw-policy block below
 * is H4's: the gateway policy source, provider environment and log push.
 */
#ifndef SV_SESSION_H
#define SV_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "supervisor/env.h"
#include "supervisor/err.h"
#include "supervisor/log.h"
#include "supervisor/loop.h"
#include "supervisor/policy.h"

/* ---- gw-policy (H4): gateway policy, provider environment, log push ---------------------- */

struct px_server;

/* Who to ask and how (borrowed strings; they must outlive every user). @bearer returns the
 * current sandbox token (NULL: none) and is called for each call; it is never logged. */
struct gw_client {
	const char *endpoint;	/* OPENSHELL_ENDPOINT */
	const char *sandbox_id; /* OPENSHELL_SANDBOX_ID */
	const char *(*bearer)(void *data);
	void *bearer_data;
};

/* Contract §2 step 5 / §10: the startup fetch's attempts and the sleeps between them. */
#define GW_CONFIG_ATTEMPTS	 5
#define GW_CONFIG_POLL_DEFAULT_S 10 /* OPENSHELL_POLICY_POLL_INTERVAL_SECS */
#define GW_POLICY_POLL_ENV	 "OPENSHELL_POLICY_POLL_INTERVAL_SECS"

/* Gateway mode for the policy: endpoint and sandbox id set, no --policy/OPENSHELL_POLICY_FILE. */
bool gw_config_wanted(const char *endpoint, const char *sandbox_id, const char *policy_file);

struct gw_policy_src;

/* Setup phase, before the main process: GetSandboxConfig (5 attempts, sleeping 1, 2, 4, 4 s
 * after transport failures), then the policy in force into @out (empty on entry): the
 * gateway's if valid (status LOADED queued), /etc/openshell/policy.ini or the restrictive
 * default if the gateway has none, the restrictive default if it is invalid (status FAILED
 * queued with the message). Returns 0 and *@src (owned: gw_policy_src_free) or -errno with
 * @err saying why: the caller exits 1. */
int gw_config_fetch(const struct gw_client *c, struct pol_policy *out, struct gw_policy_src **src,
		    struct sv_err *err);

/* Run phase: poll GetSandboxConfig every OPENSHELL_POLICY_POLL_INTERVAL_SECS on @loop, send the
 * queued statuses, and apply changed network rules to @proxy (borrowed until
 * gw_policy_src_stop) for new connections. Never fails the sandbox: problems are logged. */
int gw_policy_poll_start(struct gw_policy_src *src, struct sv_loop *loop, struct px_server *proxy,
			 struct sv_err *err);
/* Stop polling (no more calls to the proxy); @src stays valid. */
void gw_policy_poll_stop(struct gw_policy_src *src);
void gw_policy_src_free(struct gw_policy_src *src);

/* Setup phase: GetSandboxProviderEnvironment (supports_static_credential_bindings) and each
 * variable into @env. Values are never logged; names that the agent must never get (the
 * secrets strip list) or that are not valid names are skipped. On any failure the agent starts
 * without provider variables and the failure is logged. Returns the number of variables set. */
int gw_provider_env(const struct gw_client *c, struct sv_env *env);

/* Log push (PushSandboxLogs). gw_logs_install queues the supervisor's own records at
 * OPENSHELL_LOG_PUSH_LEVEL (info) and above from now on (OCSF lines as level "OCSF"), in a
 * bounded queue whose drops are counted; gw_logs_attach starts sending them on @loop in batches
 * of at most 50 lines or every 500 ms; gw_logs_detach flushes what it can and stops. An
 * Unauthenticated answer disables the push for good. */
#define GW_LOG_PUSH_ENV "OPENSHELL_LOG_PUSH_LEVEL"
int gw_logs_install(const struct gw_client *c, struct sv_err *err);
int gw_logs_attach(struct sv_loop *loop, struct sv_err *err);
void gw_logs_detach(void);

/* ---- end gw-policy ------------------------------------------------------------------------- */

#endif
