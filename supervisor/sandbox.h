/* Process isolation for every child: the policy, the agent's identity, its Landlock ruleset and
 * its seccomp filter, prepared once in the parent and applied in each child before exec.
 *
 * The main process now and SSH session children later go through the same hook, so they are
 * sandboxed exactly alike. Failing closed is the rule: a step that cannot be applied stops the
 * child from exec'ing, except what a best_effort Landlock policy explicitly allows to degrade.
 */
#ifndef SV_SANDBOX_H
#define SV_SANDBOX_H

#include <stdbool.h>

#include "err.h"
#include "supervisor/isolation/fence.h"
#include "supervisor/isolation/identity.h"
#include "supervisor/policy/policy.h"
#include "supervisor/isolation/seccomp.h"
#include "landlock/landlock.h"
#include "netns/netns.h"

struct sv_sandbox_opts {
	const char *policy_file; /* --policy / OPENSHELL_POLICY_FILE, or NULL */
	const char *workdir;     /* absolute working directory of the agent */
	/* An already loaded and validated policy (the gateway's): when non-NULL it is consumed
	 * (moved into the sandbox, left empty) and @policy_file is not read. The proxy baseline
	 * is then added only when it has network rules (contract §3.3, gateway mode); for a file
	 * policy it always is. */
	struct pol_policy *policy;
	/* connect(2) goes to PID 1's connect monitor (supervisor/isolation/connmon.h): set only
	 * when the monitor will run, and spawn's fd sink is sv_connmon_add. */
	bool notify_connect;
};

struct sv_sandbox {
	struct nns netns; /* the agent's network namespace: only loopback and the proxy */
	struct pol_policy policy;
	struct sv_identity id;
	struct sv_identity_plan plan;
	struct ll_prepared landlock;
	struct sv_fence fence; /* the agent's mount namespace (docs/security.md "Mount fence") */
	struct sv_seccomp_prog seccomp;
};

/* Setup phase, as root: load (or take) and enrich the policy, resolve the identity, create the
 * workdir and missing read_write directories, create the agent's network namespace, open the Landlock
 * rules, build the agent's mount namespace (the mount fence), build the seccomp filter. Call
 * while single-threaded and before the supervisor's seccomp prelude (which denies mounts). */
int sv_sandbox_prepare(struct sv_sandbox *sb, const struct sv_sandbox_opts *opts,
		       struct sv_err *err);

/* The spawn hook (spawn.h), in the child: join the agent network and mount namespaces (the
 * latter chroots into the fence's root), privilege drop, hardening, Landlock, seccomp last.
 * @ctx is a const struct sv_sandbox *. Async-signal-safe. */
int sv_sandbox_child_hook(void *ctx, struct sv_err *err);

void sv_sandbox_free(struct sv_sandbox *sb);

#endif
