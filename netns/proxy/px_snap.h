/* Egress proxy: refcounted, immutable snapshots of the policy's network rules.
 *
 * Private to netns/. A decision worker holds a reference to the snapshot it started with, so a
 * policy swapped in by the gateway poll (px_server_set_policy) can never be freed under it. A
 * snapshot is a deep copy: the caller's struct pol_policy is never referenced afterwards.
 */
#ifndef PX_SNAP_H
#define PX_SNAP_H

#include "supervisor/policy/policy.h"

struct px_snap {
	unsigned refs;	       /* atomic; the creator holds the first reference */
	struct pol_policy pol; /* a deep copy (pol_copy) of the whole policy */
};

/* Deep-copy @src (NULL: an empty policy) into a new snapshot with one reference.
 * Returns 0 and *@out (owned: drop with px_snap_put), or -ENOMEM (*@out untouched). */
int px_snap_new(const struct pol_policy *src, struct px_snap **out);

/* Take / drop a reference; the last put frees. Both are thread-safe; put(NULL) is a no-op. */
struct px_snap *px_snap_get(struct px_snap *s);
void px_snap_put(struct px_snap *s);

#endif
