/* PID 1's own least privilege: the capabilities the supervisor keeps once setup is over, and
 * the drop of every other one from all five sets (libcap).
 *
 * One table says what is kept and which operation needs it; the drop, --self-test and the docs
 * (docs/security.md) read it. Nothing on the always-forbidden list may ever be kept.
 */
#ifndef SV_CAPS_H
#define SV_CAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "supervisor/err.h"

/* Test-only: a comma-separated list of capability names ("cap_kill,cap_sys_ptrace") the
 * supervisor drops too, so the tests can show each kept capability is really needed. */
#define SV_CAPS_TEST_DROP_ENV "OPENSHELL_TEST_DROP_EXTRA_CAPS"

struct sv_caps_kept {
	int cap;	 /* CAP_* */
	const char *why; /* the operation after setup that needs it */
};

/* The kept table (static, borrowed); *@n is set to its length. */
const struct sv_caps_kept *sv_caps_kept_table(size_t *n);

/* Never kept after setup, whatever the configuration (issue 16's list). */
bool sv_caps_is_forbidden(int cap);

/* Bit mask (1 << cap) of the kept set. */
uint64_t sv_caps_kept_mask(void);

/* Setup phase, on the only thread (capabilities and the bounding set are per thread, and
 * threads started later inherit the result): keep the table's capabilities that are held now
 * (CAP_DAC_OVERRIDE stands in for a missing CAP_DAC_READ_SEARCH) and drop every other one,
 * and those named in @extra_drop (a SV_CAPS_TEST_DROP_ENV value, NULL for none), from the
 * bounding, inheritable and ambient sets, then from permitted and effective. Returns 0, or
 * -errno with @err naming the step or the unknown capability name. */
int sv_caps_drop_after_setup(const char *extra_drop, struct sv_err *err);

/* "cap_sys_admin" for CAP_SYS_ADMIN into @buf (libcap's name, or "cap_<n>" for a number the
 * library does not know). Returns @buf. */
const char *sv_caps_name(int cap, char *buf, size_t size);

#endif
