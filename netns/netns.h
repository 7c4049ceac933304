/* The agent's network namespace (contract §7) and, at the end, the egress proxy (contract §8).
 *
 * The supervisor builds the namespace once during setup through libnl-3 only (no `ip`, no
 * shell): lo up plus 10.200.0.1/32 on lo, and nothing else: no veth, no routes, no firewall.
 * Nothing here ever falls back to the container's network (contract §13 fix 1).
 */
#ifndef NNS_NETNS_H
#define NNS_NETNS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "supervisor/err.h"

/* The proxy's address inside the agent namespace: contract §7 (upstream's host-side veth IP,
 * here an address on the agent's lo) and §8 ("Listener: 10.200.0.1:<3128>"). NNS_PROXY_PORT
 * must stay a bare decimal literal: it is stringified into NNS_PROXY_URL. */
#define NNS_PROXY_ADDR "10.200.0.1"
#define NNS_PROXY_PORT 3128
#define NNS_STR_(x)    #x
#define NNS_STR(x)     NNS_STR_(x)
/* The value of the proxy variables of contract §6.2. */
#define NNS_PROXY_URL "http://" NNS_PROXY_ADDR ":" NNS_STR(NNS_PROXY_PORT)

/* The agent's network namespace as two namespace fds (both O_CLOEXEC, owned). Start from
 * NNS_INIT (or a failed nns_create) so that nns_close() never closes fd 0. */
struct nns {
	int self_fd;  /* the namespace the supervisor was in at nns_create (the container's) */
	int agent_fd; /* the agent's namespace; it lives as long as this fd or any member does */
};

#define NNS_INIT                              \
	{                                     \
		.self_fd = -1, .agent_fd = -1 \
	}

/* Setup phase, as root (CAP_SYS_ADMIN to unshare and setns, CAP_NET_ADMIN to configure),
 * single-threaded: save the current namespace, unshare(CLONE_NEWNET), bring lo up and add
 * NNS_PROXY_ADDR/32 to it through NETLINK_ROUTE, then setns back. On success the calling thread
 * is back in its original namespace and @ns holds both fds. On failure returns -errno, @ns is
 * NNS_INIT, @err names the step ("cannot bring lo up in the agent network namespace: EPERM
 * (CAP_NET_ADMIN missing?)") and the thread is back in its original namespace, unless the
 * message starts with "cannot return to the supervisor's network namespace": then it is stuck in
 * the half-built one and the process must exit. */
int nns_create(struct nns *ns, struct sv_err *err);

/* Move the calling thread into the agent's namespace and back. Returns 0 or -errno (-EBADF
 * when @ns was never created). Only the calling thread moves; keep the window short. */
int nns_enter(const struct nns *ns);
int nns_leave(const struct nns *ns);

/* A listening TCP socket that lives in the agent's namespace, bound to @addr (an IPv4 or IPv6
 * literal) and @port: SOCK_NONBLOCK, SOCK_CLOEXEC, SO_REUSEADDR. Only socket(2) runs inside the
 * namespace (a socket belongs to the namespace it was created in; bind and listen act there
 * wherever the thread is), and the thread always leaves again, also on failure. Returns the
 * fd (owned by the caller) or -errno with @err naming the step. */
int nns_listen_tcp(const struct nns *ns, const char *addr, uint16_t port, int backlog,
		   struct sv_err *err);

/* For the agent CHILD, between fork and exec, before the privilege drop (setns needs
 * CAP_SYS_ADMIN) and before seccomp (the agent filter denies setns): a bare
 * setns(agent_fd, CLONE_NEWNET), async-signal-safe. Returns 0 or -errno; -EBADF when @ns was
 * never created, so a missing namespace fails closed. */
int nns_join(const struct nns *ns);

/* Close both fds (either may be -1) and reset @ns to NNS_INIT. */
void nns_close(struct nns *ns);

/* The proxy variables of contract §6.2, in upstream's order. */
struct nns_env_var {
	const char *name;
	const char *value;
};

#define NNS_PROXY_ENV_COUNT 9

/* A static table of NNS_PROXY_ENV_COUNT entries (returned borrowed, never freed); *@n is set to
 * its length. ALL_PROXY, HTTP_PROXY, HTTPS_PROXY, http_proxy, https_proxy, grpc_proxy =
 * NNS_PROXY_URL; NO_PROXY = no_proxy = "127.0.0.1,localhost,::1"; NODE_USE_ENV_PROXY = "1". */
const struct nns_env_var *nns_proxy_env(size_t *n);

/* --- egress proxy (px_) --- */

struct pol_policy;
struct sv_loop;
struct px_server;

/* Serve the egress proxy on @listen_fd (from nns_listen_tcp; borrowed, the caller closes it
 * after px_server_free) with @policy. Every decision is logged as an OCSF line.
 *
 * Policy ownership (here and in px_server_set_policy): @policy is only read during the call.
 * The proxy deep-copies its network rules into a refcounted immutable snapshot, and every
 * decision holds a reference to the snapshot current when its request head was complete, so
 * the caller may change or pol_free() @policy as soon as the call returns. */
int px_server_new(struct sv_loop *loop, int listen_fd, const struct pol_policy *policy,
		  struct px_server **out, struct sv_err *err);
/* Loop thread only. Requests whose head completes after this call decide with @policy (copied
 * as above; NULL or a policy without rules denies all egress); connections already decided or
 * with a decision in flight keep the snapshot they started with, and relayed connections are
 * never cut. If the copy fails (out of memory) the proxy denies all new requests until the next
 * successful set: it fails closed, never keeps the old policy silently. Logs "policy_set". */
void px_server_set_policy(struct px_server *s, const struct pol_policy *policy);
/* The agent's entrypoint (main process): identity lookups start from it. 0 until spawned. */
void px_server_set_entrypoint(struct px_server *s, pid_t pid);
void px_server_free(struct px_server *s);

#endif
