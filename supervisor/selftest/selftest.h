/* `supervisor --self-test [--json]`: probe every isolation layer here by exercising it.
 *
 * Each probe runs in a forked child in its own process group, reports through a CLOEXEC pipe and
 * is SIGKILLed past its timeout; the caller is never filtered, dropped, restricted or moved into a
 * namespace. Call while single-threaded (children allocate after fork). See docs/selftest.md.
 */
#ifndef SV_SELFTEST_H
#define SV_SELFTEST_H

#include <stdbool.h>
#include <stddef.h>

#include "supervisor/err.h"

enum sv_selftest_status {
	SV_SELFTEST_OK = 0,
	SV_SELFTEST_DEGRADED,	 /* works, but weaker than the design wants */
	SV_SELFTEST_UNAVAILABLE, /* does not work here */
};

/* What a layer's state does to a sandbox started here. The exit status is the worst impact. */
enum sv_selftest_impact {
	SV_SELFTEST_NONE = 0,	/* full isolation, or informational only: exit 0 */
	SV_SELFTEST_WEAKER = 1, /* the sandbox starts, something is weaker: exit 1 */
	SV_SELFTEST_FATAL = 2,	/* a sandbox cannot start here: exit 2 */
};

#define SV_SELFTEST_NAME_MAX   24
#define SV_SELFTEST_REASON_MAX 448
#define SV_SELFTEST_ACTION_MAX 224
#define SV_SELFTEST_LAYERS_MAX 16
#define SV_SELFTEST_TIMEOUT_MS 2000 /* a probe child's budget before SIGKILL */

/* One line of the report. Plain data (no pointers): probe children send it through a pipe.
 * Every text is printable ASCII: anything else read from the system is replaced by '?'. */
struct sv_selftest_layer {
	char layer[SV_SELFTEST_NAME_MAX]; /* stable snake_case name: "landlock", "userns", ... */
	enum sv_selftest_status status;
	enum sv_selftest_impact impact;
	char reason[SV_SELFTEST_REASON_MAX];	       /* errno names, missing capabilities */
	char best_effort[SV_SELFTEST_ACTION_MAX];      /* what a best_effort policy does */
	char hard_requirement[SV_SELFTEST_ACTION_MAX]; /* what a hard_requirement policy does */
};

struct sv_selftest_report {
	struct sv_selftest_layer layers[SV_SELFTEST_LAYERS_MAX];
	size_t n;
	int exit; /* 0, 1 or 2: the worst impact (sv_selftest_exit_status) */
};

/* The command: probe, print the report on STDOUT (aligned text, or one JSON object
 * {"layers":[{"layer","status","reason","best_effort","hard_requirement"}...],"exit":N}) and
 * return the process exit status: 0 full isolation possible, 1 only degraded, 2 a sandbox
 * cannot start here. */
int sv_selftest_run(bool json);

/* Run every probe and fill @r (always complete: a failed or hung probe becomes an
 * "unavailable" line saying so). */
void sv_selftest_collect(struct sv_selftest_report *r);

/* The worst impact among @r's layers (0, 1 or 2). */
int sv_selftest_exit_status(const struct sv_selftest_report *r);

/* Format @r into @buf (always NUL-terminated when @size > 0). Return the length the whole
 * text needs, as snprintf does: a result >= @size means it was cut. */
size_t sv_selftest_format_text(const struct sv_selftest_report *r, char *buf, size_t size);
size_t sv_selftest_format_json(const struct sv_selftest_report *r, char *buf, size_t size);

/* "ok", "degraded", "unavailable". */
const char *sv_selftest_status_name(enum sv_selftest_status s);

/* Run @fn(@ctx, @out) in a forked child (its own process group) and copy the @size bytes the
 * child leaves in @out back into the caller's @out. The child gets @timeout_ms in all; then it
 * and its process group are SIGKILLed and reaped. Returns 0, -ETIMEDOUT, -EPROTO (the child
 * died or exited without a full report; @err says how) or -errno of pipe/fork. @out is
 * borrowed; on failure its contents are unspecified. */
typedef void (*sv_selftest_probe_fn)(void *ctx, void *out);
int sv_selftest_fork_probe(sv_selftest_probe_fn fn, void *ctx, void *out, size_t size,
			   int timeout_ms, struct sv_err *err);

/* From the text of /proc/self/cgroup, the cgroup path of the pids controller: the "0::" line
 * for cgroup v2 (@v2), the line listing "pids" for v1. 0, or -ENOENT when there is none,
 * -ENAMETOOLONG when it does not fit @size. */
int sv_selftest_cgroup_path(const char *text, bool v2, char *out, size_t size);

/* Walk <@base><@rel>/pids.max up to <@base>/pids.max and keep the tightest limit. Returns 1
 * with *@limit and @where (the directory holding it) when one is a number, 0 when every
 * pids.max found says "max", -ENOENT when there is none, -EINVAL for malformed content. */
int sv_selftest_pids_limit(const char *base, const char *rel, unsigned long long *limit,
			   char *where, size_t wsize);

#endif
