/* nofence.c: linked only into build/bench/supervisor-nofence (`-Wl,--wrap=sv_fence_prepare`), the
 * comparison binary with which bench/startup.sh measures what the mount fence adds to start-up.
 * It replaces sv_fence_prepare with "no fence" and nothing else. It must never be linked into
 * build/supervisor: that binary would run every agent without its mount fence.
 */
#include "supervisor/isolation/fence.h"

int __wrap_sv_fence_prepare(struct sv_fence *f, const struct sv_fence_spec *spec,
			    struct sv_err *err);

int __wrap_sv_fence_prepare(struct sv_fence *f, const struct sv_fence_spec *spec,
			    struct sv_err *err)
{
	(void)spec;
	(void)err;
	*f = (struct sv_fence)SV_FENCE_INIT;
	return 0;
}
