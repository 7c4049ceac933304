/* Refcounted deep copies of a policy's network rules for the egress proxy (see px_snap.h).
 *
 * A whole-policy pol_copy (layer-7 fields and middlewares included, which the decision reads to
 * refuse what it cannot inspect); never keeps a pointer into the source.
 */
#include "netns/proxy/px_snap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int px_snap_new(const struct pol_policy *src, struct px_snap **out)
{
	struct px_snap *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->refs = 1;
	struct pol_policy empty;
	pol_init(&empty);
	if (pol_copy(src ? src : &empty, &s->pol) < 0) {
		free(s);
		return -ENOMEM;
	}
	*out = s;
	return 0;
}

struct px_snap *px_snap_get(struct px_snap *s)
{
	__atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
	return s;
}

void px_snap_put(struct px_snap *s)
{
	if (!s || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	pol_free(&s->pol);
	free(s);
}
