/* Egress proxy: the network part of a policy as one compact binary blob, for handing it from
 * PID 1 to the unprivileged proxy process (docs/architecture.md "Processes").
 *
 * Private to netns/. The blob carries every field of struct pol_network_rule and pol_endpoint
 * (layer-7 and credential fields included), the middlewares and the source name; nothing else
 * of the policy. Unpacking trusts nothing: every length, count and enum is bounds-checked.
 */
#ifndef PX_PACK_H
#define PX_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "supervisor/err.h"
#include "supervisor/policy/policy.h"

/* Largest blob either side accepts (ours): a policy file is at most POL_FILE_MAX bytes of text,
 * and its binary form is never more than a few times that. */
#define PX_PACK_MAX ((size_t)16 * 1024 * 1024)

/* Pack @p's network rules, middlewares and source. Returns 0 and *@out (owned, free()) with
 * *@len bytes, or -ENOMEM / -E2BIG (over PX_PACK_MAX). */
int px_pack_policy(const struct pol_policy *p, uint8_t **out, size_t *len);

/* Unpack @len bytes into @out (empty on entry: pol_init). On failure @out is left empty and
 * @err names the fault and its byte offset ("policy blob: offset 12: string too long").
 * Returns 0, -EINVAL (malformed) or -ENOMEM. */
int px_unpack_policy(const uint8_t *buf, size_t len, struct pol_policy *out, struct sv_err *err);

#endif
