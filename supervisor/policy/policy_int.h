/* Private to supervisor/policy/: what the model's files share and loaders need not see.
 *
 * Never included from outside this folder.
 */
#ifndef POL_INT_H
#define POL_INT_H

#include "policy.h"

/* The layer-4 checks of pol_validate (filesystem, identity, rules, hosts, ports, addresses):
 * 0 or -errno with @err naming the field. policy.c. */
int pol_validate_l4(const struct pol_policy *p, struct sv_err *err);

#endif
