/* Egress proxy: what happens inside an allowed CONNECT tunnel after the 200 (l7 contract §1, §2):
 * peek the first bytes, terminate TLS with a leaf for the CONNECT host, verify the upstream,
 * and relay, judging every HTTP request on REST endpoints or logging it on L4 ones.
 *
 * Private to netns/. Runs only in the unprivileged proxy process (and in unit tests). Never
 * blocks the loop: both sockets are non-blocking and mbedTLS runs over them with WANT_READ /
 * WANT_WRITE; buffers are fixed per tunnel. The CA key stays in this process's memory.
 */
#ifndef PX_TUNNEL_H
#define PX_TUNNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "netns/netns.h"
#include "netns/proxy/l7/px_l7.h"
#include "netns/proxy/px_policy.h"
#include "supervisor/err.h"

struct sv_loop;
struct sv_watch;
struct px_snap;
struct px_tun;

/* The proxy's TLS state, made once per process from the CA PID 1 sent. */
struct px_tun_tls {
	struct px_ca *ca;
	struct px_leaf_cache *leaves;
	struct px_tls_server *server;
	struct px_tls_client *client;
};

/* From the CA's certificate and key DER. @extra_pem (NULL: none) adds upstream trust anchors;
 * @flags as px_tls_client_new. Reads the system bundle: call before confinement. */
int px_tun_tls_new(const uint8_t *cert, size_t cert_len, const uint8_t *key, size_t key_len,
		   const char *extra_pem, unsigned int flags, struct px_tun_tls **out,
		   struct sv_err *err);
void px_tun_tls_free(struct px_tun_tls *t);

struct px_tun_params {
	const char *host; /* the CONNECT host (copied) */
	uint16_t port;
	bool inspect; /* a REST/websocket endpoint admits the tunnel: judge every request */
	struct px_snap *policy; /* the decision's snapshot (a reference is taken) */
	/* The server's current snapshot (borrowed, outlives the tunnel): once it differs from
	 * @policy, the tunnel closes at the next request boundary (l7 contract §2.6). NULL: never. */
	struct px_snap *const *current;
	const char *exe;	/* the agent binary (copied) */
	const char *const *ancestors;
	size_t n_ancestors;
	bool endpoint_only;
	const char *pre; /* client bytes read past the CONNECT head (copied) */
	size_t pre_len;
	/* Each request the L7 rules deny is also handed to @on_denial (stage "l7", its method and
	 * redacted path; strings borrowed for the call). NULL: only logged. */
	px_denial_fn on_denial;
	void *denial_data;
};

/* What px_tun_event and the done callback report. */
enum px_tun_result {
	PX_TUN_CONTINUE = 0,
	PX_TUN_RAW = 1,	   /* plain bytes on an L4 endpoint: the caller relays them itself */
	PX_TUN_CLOSE = -1, /* the tunnel is over: close both sockets */
};

/* Start a tunnel on the client and upstream watches @cw, @uw (borrowed: registered by the
 * caller, their events passed to px_tun_event; this module only changes their interest).
 * @tls NULL: no termination possible (the caller refused terminating tunnels already).
 * @done is called (from a timer) with PX_TUN_RAW or PX_TUN_CLOSE when the tunnel ends outside
 * px_tun_event. */
int px_tun_new(struct sv_loop *loop, struct px_tun_tls *tls, struct sv_watch *cw,
	       struct sv_watch *uw, const struct px_tun_params *p,
	       void (*done)(void *ctx, int result), void *ctx, struct px_tun **out,
	       struct sv_err *err);
/* The first step, right after px_tun_new (the client may have sent already): a result as
 * px_tun_event's. */
int px_tun_start(struct px_tun *t);
/* An event on the client (@client) or upstream watch. */
int px_tun_event(struct px_tun *t, bool client, uint32_t events);
/* Frees (deferred: may be called from px_tun's own callbacks). Does not close the sockets. */
void px_tun_free(struct px_tun *t);

/* ---- the L7 judgement of one request (px_tunnel_http.c; l7 contract §2.1-§2.4) ----------- */

struct px_l7_judge_req {
	const char *method;    /* NUL-terminated */
	const char *path;      /* canonical, placeholder-redacted, no query */
	const char *canon;     /* canonical, not redacted (the %2F check) */
	size_t canon_len;
	const char *canon_err; /* the canonicaliser refused the target: deny with this reason */
	const char *query;     /* raw query after '?', NULL without one */
	size_t query_len;
	const struct px_l7_req *req; /* the parsed head; NULL on the forward-proxy path */
	char *qbuf;		     /* scratch for the decoded query, >= query_len bytes */
	size_t qbuf_size;
};

struct px_l7_judgement {
	const struct pol_endpoint *ep; /* the route chosen (borrowed), NULL when none */
	const char *policy;	       /* its rule's name (borrowed), NULL when none */
	const char *decision;	       /* "allow", "allow_upgrade", "audit" or "deny" */
	char reason[PX_L7_REASON_MAX]; /* "" when allowed */
	bool close; /* a parse error: close with no response (the return is < 0) */
};

/* Route selection (the most specific endpoint `path` among the REST/websocket endpoints that
 * admit @q's binary to its host and port), h2c / encoded-slash / websocket checks, then the Rego
 * decision of px_l7_evaluate and the endpoint's enforcement. Pure: no I/O, no logging. Returns 0,
 * or -EBADMSG / -EINVAL with j->close (malformed query, glob error). */
int px_l7_judge(const struct pol_policy *pol, const struct px_query *q,
		const struct px_l7_judge_req *r, struct px_l7_judgement *j);

#endif
