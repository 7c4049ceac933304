/* Egress proxy: PID 1's side of the proxy process, the parts unit tests drive directly.
 *
 * Private to netns/. px_proxy_adopt stands in for the spawn: the caller holds the other ends of
 * the two socketpairs and plays the proxy process, so tests can send what a hostile child
 * would and watch PID 1 refuse it.
 */
#ifndef PX_PARENT_H
#define PX_PARENT_H

#include "netns/netns.h"

/* Like px_proxy_start, but nothing is spawned: @ctl_fd and @ident_fd (consumed) are PID 1's
 * ends of the control and identity socketpairs and @pid the "child" (killed with SIGKILL on a
 * malformed message; px_proxy_child_exited must be told of its exit). START is sent on
 * @ctl_fd. No restart timer fires unless px_proxy_child_exited is called. */
int px_proxy_adopt(struct sv_loop *loop, int listen_fd, const struct pol_policy *policy,
		   uid_t agent_uid, int ctl_fd, int ident_fd, pid_t pid, struct px_proxy **out,
		   struct sv_err *err);

/* Number of malformed messages seen (tests). */
unsigned px_proxy_malformed_count(const struct px_proxy *p);

#endif
