/* Private to session/: the gateway's protobuf SandboxPolicy into the one policy model.
 *
 * The conversion fills the same struct pol_policy the INI loader fills and ends with the same
 * pol_validate(), so both sources are held to one set of rules. It never enforces anything and
 * never trusts the message: every string is checked before it is stored.
 */
#ifndef GW_POLICY_H
#define GW_POLICY_H

#include <stdbool.h>

#include "sandbox.pb-c.h"
#include "supervisor/err.h"
#include "supervisor/policy/policy.h"

/* Convert @msg (borrowed; NULL is not a policy, see gw_config) into @out, which must be empty
 * (pol_init). Every field is converted, layer 7, credentials and network_middlewares included
 * (the proxy refuses what it cannot enforce yet, px_policy.h). On failure @out is left empty and
 * @err names the field:
 *   network_policies["pypi"].endpoints[0].host: host has an empty label (got 'a..b')
 * With @log_warnings, each validation warning is logged (pol_warn_log, source "gateway"); pass
 * false for a second conversion of a message already converted once. out->source is
 * "gateway". */
int gw_policy_convert(const Openshell__Sandbox__V1__SandboxPolicy *msg, struct pol_policy *out,
		      bool log_warnings, struct sv_err *err);

/* The reverse, for UpdateConfig: every field of @p as a SandboxPolicy message, returned owned
 * in *@out (free with gw_policy_proto_free). A rule's MCP `tool` matcher goes on the wire as
 * params["name"], as OpenShell sends it; absent and empty strings are both "". 0, -ENOMEM, or
 * -EINVAL when a middleware's config is not a JSON object (@err says why). */
int gw_policy_to_proto(const struct pol_policy *p, Openshell__Sandbox__V1__SandboxPolicy **out,
		       struct sv_err *err);
void gw_policy_proto_free(Openshell__Sandbox__V1__SandboxPolicy *msg);

/* --- shared by gw_policy*.c and gw_struct.c -------------------------------------------------- */

#define GW_STRUCT_JSON_MAX 65536 /* bytes of one middleware config as JSON (our bound) */

/* google.protobuf.Struct <-> compact JSON (keys in message order). *@out returned owned. */
int gw_struct_to_json(const Google__Protobuf__Struct *s, char **out, struct sv_err *err);
int gw_struct_from_json(const char *json, Google__Protobuf__Struct **out, struct sv_err *err);

/* The layer-7 and credential fields (10-26 and the L7 parts of 3-7) of @e into @out, whose
 * host, ports and allowed_ips are already set. @at is the field path for messages. */
int gw_endpoint_l7_in(const char *at, const Openshell__Sandbox__V1__NetworkEndpoint *e,
		      struct pol_endpoint *out, struct sv_err *err);
/* SandboxPolicy.network_middlewares into @p->middlewares. */
int gw_middlewares_in(const Openshell__Sandbox__V1__SandboxPolicy *msg, struct pol_policy *p,
		      struct sv_err *err);

/* True when the parts of two loaded policies that are fixed at startup (filesystem, Landlock,
 * process identity) are the same; network rules are not compared. */
bool gw_policy_static_equal(const struct pol_policy *a, const struct pol_policy *b);

/* True when the network rules of @a and @b are the same, in the same order. */
bool gw_policy_network_equal(const struct pol_policy *a, const struct pol_policy *b);

#endif
