/* Egress proxy: the server's private state, shared by px_server.c (accept, request head,
 * decision), px_relay.c (dial, splice relay, tunnel hand-over) and px_server_l7.c (forward-proxy
 * L7 judgement). Private to these files.
 *
 * A connection's parse state is owned by the worker only while state == PX_DECIDING.
 */
#ifndef PX_SERVER_INT_H
#define PX_SERVER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "netns/proxy/px_creator.h"
#include "netns/proxy/px_http.h"
#include "netns/proxy/px_ident.h"
#include "netns/proxy/px_policy.h"
#include "netns/proxy/px_server.h"
#include "netns/proxy/px_snap.h"
#include "netns/proxy/px_ssrf.h"
#include "netns/proxy/px_tofu.h"
#include "netns/proxy/px_upstream.h"
#include "supervisor/loop.h"
#include "supervisor/worker.h"

#define PX_CONNS_MAX 4096         /* open client connections; beyond, accept waits */
#define PX_BACKOFF_MIN_MS 100     /* accept back-off on fd exhaustion, contract §8 */
#define PX_BACKOFF_MAX_MS 5000
#define PX_ADDRS_MAX 16           /* resolved addresses kept per destination */
#define PX_PIPE_CHUNK ((size_t)64 * 1024) /* one splice */
#define PX_WORKERS 4
/* Ours (§8 is silent): a client must complete its request head within this time after connecting,
 * or it gets 408 and is closed, so silent clients cannot pin connection slots. */
#define PX_HEAD_TIMEOUT_MS 10000
#define PX_HEAD_SWEEP_MS 1000
#define PX_IDENT_SPARE PX_WORKERS /* identities kept for reuse: one per busy worker */
/* Connection and parse state kept for reuse: allocating and freeing them per connection made
 * musl's allocator map and unmap their pages each time (a TLB shootdown on every CPU running
 * a worker). */
#define PX_CONN_SPARE 4
/* Empty relay pipes kept for the next connection (pairs per direction): two pipe2 and four close
 * calls per connection otherwise. Only a pipe with nothing left in it is kept. */
#define PX_PIPE_SPARE 16
/* c->cev / c->uev when the armed mask is not known (the tunnel changed it): forces the next
 * epoll_ctl. */
#define PX_EV_UNKNOWN UINT32_MAX

enum px_state { PX_HEAD, PX_DECIDING, PX_CONNECTING, PX_RELAY, PX_TUNNEL };

/* One direction of the relay: src → pipe → dst. */
struct px_dir {
	int pipe[2];
	size_t in_pipe; /* bytes spliced into the pipe and not yet out */
	bool src_eof;
	bool shut;      /* dst was shut down for writing */
};

struct px_conn {
	struct px_server *srv;
	struct px_conn *prev, *next;
	uint64_t retired; /* loop batch it was closed in, while on the spare list */
	struct sv_watch cw, uw; /* client, upstream */
	enum px_state state;
	uint64_t head_deadline; /* CLOCK_MONOTONIC ms, while state == PX_HEAD */
	struct sockaddr_storage peer, local;
	socklen_t peer_len, local_len;
	/* Until the upstream is connected (freed afterwards). */
	struct px_parse *p;
	/* Bytes to send upstream before relaying (forward head, early body or TLS bytes). */
	char *pre;
	size_t pre_len, pre_off;
	struct px_dir c2u, u2c;
	uint32_t cev, uev; /* events armed on cw, uw during the relay (no epoll_ctl when unchanged) */
	struct px_tun *tun; /* PX_TUNNEL: TLS termination and HTTP inspection (px_tunnel.c) */
	struct px_uphs *uph; /* the upstream proxy's CONNECT under way (px_upstream.c) */
};

/* Everything the decision needs and produces; lives only until the dial. */
struct px_parse {
	struct sv_job job;
	struct px_server *srv; /* for the loop thread only */
	struct px_conn *conn;
	char head[PX_HEAD_MAX + 1];
	size_t len, head_len, resume;
	struct px_http_req req;
	bool is_connect;
	struct px_http_authority auth;
	struct px_http_uri uri;
	/* What the worker reads: copied here, because the loop may close the connection while the
	 * decision runs; the worker never touches struct px_conn. */
	pid_t entry;
	struct sockaddr_storage peer, local;
	socklen_t peer_len, local_len;
	struct px_snap *policy; /* a reference taken at submit (NULL: deny all), put in parse_free */
	struct px_tofu *tofu;            /* thread-safe */
	const struct px_ident_ctx *ictx; /* thread-safe, lives as long as the server */
	bool endpoint_only;
	/* Worker results. The identity is large (64 ancestor paths): taken from the server's spares
	 * only for the decision, so idle connections stay small. */
	struct px_ident *ident;
	bool ident_ok;
	enum px_creator_state creator; /* who connected (issue 17 item 1), with @ident */
	struct px_creator cr;
	/* Identity from PID 1 (px_server_new_remote): asked on the loop, answered on the loop. */
	bool ident_remote;
	bool ident_wait; /* on the server's waiting list */
	uint32_t seq;
	struct px_parse *wprev, *wnext;
	struct px_decision dec;
	bool l7_judged; /* a forward request to an L7 endpoint was judged by its rules */
	bool l7_deny;	/* ... and denied (p->reason; the redacted path in l7_path) */
	bool l7_bad;	/* ... and could not be judged (malformed query, glob error) */
	char *l7_path;	/* owned */
	enum px_ssrf_verdict ssrf;
	char detail[512];
	struct px_ssrf_ip addrs[PX_ADDRS_MAX];
	size_t n_addrs, next_addr;
	char reason[PX_REASON_MAX];
	bool routed, via_upstream; /* px_upstream_route asked; dial the upstream proxy */
};

struct px_server {
	struct sv_loop *loop;
	struct sv_watch lw;
	struct sv_timer backoff;
	uint64_t backoff_ms;
	struct sv_timer head_timer; /* sweeps heads past PX_HEAD_TIMEOUT_MS */
	bool head_timer_armed;
	struct sv_workers *workers;
	struct px_snap *policy; /* what new requests decide with; NULL: deny all (copy failed) */
	struct px_tofu *tofu;
	struct px_ident_ctx ictx;
	struct px_ident *spare[PX_IDENT_SPARE]; /* loop thread only */
	size_t n_spare;
	struct px_conn *conn_spare[PX_CONN_SPARE]; /* newest last */
	size_t n_conn_spare;
	struct px_parse *parse_spare[PX_CONN_SPARE];
	size_t n_parse_spare;
	pid_t entry;
	bool endpoint_only;
	bool has_remote;
	struct px_ident_remote remote;
	uint32_t next_seq;
	struct px_parse *waiting; /* identity questions asked and not answered */
	unsigned nconns;
	struct px_conn *conns;
	struct px_upstream *upstream; /* NULL: dial directly (owned) */
	px_denial_fn on_denial; /* NULL: denials are only logged */
	void *denial_data;
	int pipe_spare[PX_PIPE_SPARE][2]; /* empty pipes, see PX_PIPE_SPARE */
	size_t n_pipe_spare;
	/* The listener's own address when it is bound to one (not a wildcard): every accepted
	 * socket has it as its local address, so no getsockname per connection. */
	struct sockaddr_storage laddr;
	socklen_t laddr_len; /* 0: ask each accepted socket */
	/* TLS termination (px_server_set_tls): borrowed; NULL = the CA is unavailable. */
	struct px_tun_tls *tls;
	bool tls_strict; /* without a CA every non-skip CONNECT gets the 503 (l7 contract §1.2) */
};

/* px_server.c */
void px_conn_close(struct px_conn *c);
void px_parse_free(struct px_parse *p);
/* Best effort: responses are small and the socket buffer is empty at this point. */
void px_conn_reply_and_close(struct px_conn *c, const char *buf, size_t len);
void px_log_decision(struct px_conn *c, bool allowed, const char *reason);
uint64_t px_now_ms(void);
/* Arm the sweep that also times out upstream-proxy handshakes (c->head_deadline). */
void px_head_timer_arm(struct px_server *s);

/* px_relay.c */
void px_conn_dial_next(struct px_conn *c);
void px_conn_relay_event(struct px_conn *c, uint32_t events);
void px_conn_tunnel_result(struct px_conn *c, int r);
/* A relay pipe back to the server's spares when empty, else closed; sets @d's fds to -1. */
void px_pipe_put(struct px_server *s, struct px_dir *d);

/* px_server_l7.c: worker thread. -1 when the request must not go on (p->l7_deny or l7_bad). */
int px_forward_judge(struct px_parse *p, const struct px_query *q);

#endif
