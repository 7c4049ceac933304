/* The agent's network namespace (contract §7) and, at the end, the egress proxy (contract §8).
 *
 * The supervisor builds the namespace once during setup through libnl-3 only (no `ip`, no
 * shell): lo up plus 10.200.0.1/32 on lo, and nothing else: no veth, no routes, no firewall.
 * Nothing here ever falls back to the container's network (contract §13 fix 1).
 */
#ifndef NNS_NETNS_H
#define NNS_NETNS_H

#include <signal.h>
#include <stdbool.h>
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

/* The proxy runs in its own unprivileged process (docs/architecture.md "Processes"): PID 1
 * spawns it (our binary re-executed as "openshell-sandbox __proxy"), hands it the listener and
 * the policy, answers its identity questions (which need PID 1's privileges over /proc) and
 * logs its records; the process parses every request, decides, resolves and relays. */

struct pol_policy;
struct sv_loop;
struct px_proxy;
struct px_cred_store;

/* Open our own executable (O_PATH) for later spawns of the proxy process. Call once during
 * setup, before anything could replace the file. Returns 0 or -errno with @err. */
int px_proxy_prepare(struct sv_err *err);

/* Setup phase, before px_proxy_start: every proxy process from now on dials through the
 * upstream proxy @u (netns/proxy/px_upstream.h; copied, NULL: directly). Returns 0 or -errno. */
struct px_upstream;
int px_proxy_set_upstream(const struct px_upstream *u, struct sv_err *err);

/* Spawn the proxy process serving @listen_fd (borrowed: kept open by the caller until
 * px_proxy_free, so connections wait in its backlog across restarts) with @policy (read during
 * the call only: packed and sent). @agent_uid is the agent's resolved uid: the proxy runs as
 * uid = gid = PX_PROXY_ID, or PX_PROXY_ID_ALT when the agent already has that uid. The process
 * is restarted whenever it dies (back-off 100 ms doubling to 5 s). Returns 0 and *@out or
 * -errno with @err. */
#define PX_PROXY_ID	65533
#define PX_PROXY_ID_ALT 65531
int px_proxy_start(struct sv_loop *loop, int listen_fd, const struct pol_policy *policy,
		   uid_t agent_uid, struct px_proxy **out, struct sv_err *err);
/* Loop thread. New requests decide with @policy (NULL: deny all); sent to the proxy process
 * now and again at every restart. Logs "policy_set" (from the proxy process). */
void px_proxy_set_policy(struct px_proxy *p, const struct pol_policy *policy);
/* Hand the proxy process a copy of the provider credential store (@s borrowed; NULL: none, so
 * every placeholder fails closed). Kept for every restart of the process. A copy that cannot
 * be made or sent restarts the process without one (docs/credentials.md). */
void px_proxy_set_creds(struct px_proxy *p, const struct px_cred_store *s);
/* The agent's entrypoint (main process): identity lookups start from it. 0 until spawned. */
void px_proxy_set_entrypoint(struct px_proxy *p, pid_t pid);
/* Loop thread: handle what the proxy process has already sent (log records, denials) now, as
 * the loop would (one burst). For the exit, so nothing it said before the agent ended is lost
 * to event ordering. NULL is a no-op. */
void px_proxy_drain(struct px_proxy *p);
/* From run.c's child_reaped hook: true when @si is the proxy process's exit (logged, restart
 * scheduled), false for any other child. */
bool px_proxy_child_exited(struct px_proxy *p, const siginfo_t *si);
/* True when @pid is the live proxy process: it never keeps the supervisor running. */
bool px_proxy_is_child(const struct px_proxy *p, pid_t pid);
/* One request the proxy denied (contract §8 "Denial event"), as PID 1 receives it from the
 * proxy process: strings borrowed for the call, checked for size and NUL-freedom, otherwise the
 * agent's (host, binary and paths are whatever it asked for). */
#define PX_DENIAL_ANCESTORS_MAX 16
#define PX_DENIAL_TEXT_MAX	1024 /* host, reason, L7 path: longer texts are cut */
struct px_denial {
	const char *host;
	uint16_t port;
	const char *binary; /* "" when the identity is unknown */
	const char *ancestors[PX_DENIAL_ANCESTORS_MAX];
	size_t n_ancestors;
	const char *reason;
	const char *stage;		 /* connect | forward | ssrf | l7 */
	const char *l7_method, *l7_path; /* NULL unless an L7 rule denied */
};
typedef void (*px_denial_fn)(const struct px_denial *d, void *data);
/* Loop thread: every denial from now on is handed to @fn (NULL: dropped) on the loop thread.
 * NULL @p is a no-op. */
void px_proxy_set_denial_sink(struct px_proxy *p, px_denial_fn fn, void *data);
/* Kill the proxy process (SIGKILL, reaped here), stop the identity threads, free. NULL: no-op. */
void px_proxy_free(struct px_proxy *p);

/* The proxy process's entry point: main() calls it first when argv[1] is "__proxy". Never
 * returns to the caller's CLI handling: returns the process exit status (2 when fds 3 and 4
 * are not SOCK_SEQPACKET sockets, 1 on a setup failure, 0 when PID 1 closed the control
 * socket). */
int px_child_main(int argc, char **argv);

#endif
