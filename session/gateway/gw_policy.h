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
 * (pol_init). On failure @out is left empty and @err names the field:
 *   network_policies["pypi"].endpoints[0].host: host has an empty label (got 'a..b')
 * Endpoints that ask for L7 inspection (protocol other than "" or "tcp", access, rules, or
 * tls "terminate") cannot be enforced here: they are left out, never widened to L4, logged,
 * and *@n_dropped counts them; with @n_dropped NULL nothing is logged (a second conversion of
 * a message already converted once). out->source is "gateway". */
int gw_policy_convert(const Openshell__Sandbox__V1__SandboxPolicy *msg, struct pol_policy *out,
		      unsigned *n_dropped, struct sv_err *err);

/* True when the parts of two loaded policies that are fixed at startup (filesystem, Landlock,
 * process identity) are the same; network rules are not compared. */
bool gw_policy_static_equal(const struct pol_policy *a, const struct pol_policy *b);

/* True when the network rules of @a and @b are the same, in the same order. */
bool gw_policy_network_equal(const struct pol_policy *a, const struct pol_policy *b);

#endif
