/* Egress proxy: the server itself (px_server.c), run by the unprivileged proxy process
 * (px_child.c) and by unit tests in-process.
 *
 * Private to netns/. In the proxy process the identity of a connection comes from PID 1
 * (px_server_set_ident_remote); in-process (tests) it is resolved on a worker as before.
 */
#ifndef PX_SERVER_H
#define PX_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "netns/netns.h"
#include "supervisor/err.h"

struct pol_policy;
struct sv_loop;
struct px_server;

/* Serve the egress proxy on @listen_fd (borrowed, the caller closes it after px_server_free)
 * with @policy. Every decision is logged as an OCSF line. Identity is resolved in this process
 * (sock_diag, /proc, TOFU), and OPENSHELL_NETWORK_BINARY_IDENTITY is read from the environment.
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
/* Loop thread: every request denied from now on (policy, identity, SSRF) is also handed to @fn
 * (NULL: only logged), on the loop thread, strings borrowed for the call. */
/* Loop thread: dial allowed destinations through the upstream proxy @u (owned from now; NULL:
 * directly) for connections whose dial starts after this call. */
struct px_upstream;
void px_server_set_upstream(struct px_server *s, struct px_upstream *u);
void px_server_set_denial_sink(struct px_server *s, px_denial_fn fn, void *data);
/* Loop thread: report a denial decided elsewhere (the L7 relay: stage "l7" with its method and
 * path, the path without its query) to the sink like the proxy's own. */
void px_server_denial(struct px_server *s, const struct px_denial *d);
void px_server_free(struct px_server *s);

/* --- identity from another process (PID 1's identity service) --- */

/* What PID 1 answered: an identity (status != PX_IDENT_DENY_NONE) with its deny reason when
 * status == PX_IDENT_DENY; strings borrowed for the call. */
struct px_ident_answer {
	int status; /* enum px_ident_status (px_ipc.h) */
	const char *reason;
	pid_t pid;
	const char *exe;
	const char *const *ancestors;
	size_t n_ancestors;
	/* Who connected (issue 17 item 1): enum px_creator_state (px_creator.h), and when FOUND
	 * the record's parts. Anything but an allowed creator denies. */
	int creator;
	bool creator_too_long;
	pid_t creator_pid;
	const char *creator_exe;
	const char *const *creator_ancestors;
	size_t n_creator_ancestors;
};

/* @ask runs on the loop thread for each request head: send the question for @seq; 0, or -errno
 * and the request is denied. Its answer comes back through px_server_ident_answer. */
struct px_ident_remote {
	int (*ask)(void *ctx, uint32_t seq, const struct sockaddr_storage *peer, socklen_t peer_len,
		   const struct sockaddr_storage *local, socklen_t local_len);
	void *ctx;
};

/* px_server_new for the proxy process: identity through @remote (copied), no /proc or TOFU
 * here; @relaxed is OPENSHELL_NETWORK_BINARY_IDENTITY's endpoint-only mode as PID 1 read it. */
int px_server_new_remote(struct sv_loop *loop, int listen_fd, const struct pol_policy *policy,
			 bool relaxed, const struct px_ident_remote *remote, struct px_server **out,
			 struct sv_err *err);
/* Loop thread: the answer for @seq. Returns 0, or -ENOENT for a sequence number nothing waits
 * for (its client went away: ignored). */
int px_server_ident_answer(struct px_server *s, uint32_t seq, const struct px_ident_answer *a);

#endif
