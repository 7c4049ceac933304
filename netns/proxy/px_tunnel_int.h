/* Egress proxy: the tunnel's state, shared by px_tunnel.c (sockets, TLS, raw relay) and
 * px_tunnel_http.c (the in-tunnel HTTP/1 request loop). Private to these two files.
 *
 * Buffers are fixed at creation; no code here blocks or allocates per request.
 */
#ifndef PX_TUNNEL_INT_H
#define PX_TUNNEL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "netns/proxy/l7/px_l7.h"
#include "netns/proxy/l7/px_tls.h"
#include "netns/proxy/px_ident.h"
#include "netns/proxy/px_tunnel.h"
#include "supervisor/loop.h"

/* Ours: bytes buffered per direction beyond a head (the contract streams bodies). */
#define PX_TUN_CHUNK ((size_t)16 * 1024)
/* §1.1: peek re-poll and deadline. */
#define PX_TUN_PEEK_POLL_MS 5
#define PX_TUN_PEEK_DEADLINE_MS 100
/* Ours: both TLS handshakes must finish within this time. */
#define PX_TUN_HANDSHAKE_MS 10000
/* §2.6/§6: an unframed response ended by close may be idle this long. */
#define PX_TUN_EOF_IDLE_MS 5000

/* A byte buffer: data is b[off, len). */
struct px_tbuf {
	char *b;
	size_t off, len, cap;
};

/* One side of the tunnel: a socket, maybe under TLS. */
struct px_tside {
	struct sv_watch *w;
	struct px_tls_conn *tls;
	bool rd_ww; /* the last read wants the socket writable */
	bool wr_wr; /* the last write wants the socket readable */
	bool eof;   /* the peer closed its sending side */
	bool shut;  /* we closed our sending side */
	bool hup;   /* EPOLLHUP/EPOLLERR seen */
};

enum px_tmode {
	PX_TM_PEEK,
	PX_TM_HS_CLIENT, /* our leaf to the agent */
	PX_TM_HS_UP,	 /* verified upstream */
	PX_TM_RAW,	 /* bytes both ways */
	PX_TM_REQ_HEAD,
	PX_TM_REQ_BODY,
	PX_TM_RESP_HEAD,
	PX_TM_RESP_BODY,
	PX_TM_RESP_EOF, /* unframed body until upstream EOF */
	PX_TM_CLOSING,	/* flush what goes to the client, then close */
};

struct px_tun {
	struct sv_loop *loop;
	struct px_tun_tls *tls_env;
	struct px_tside cl, up;
	enum px_tmode mode;
	bool tls;     /* terminated */
	bool inspect; /* judge requests (REST); else log them (passthrough) */
	char host[256];
	uint16_t port;
	struct px_snap *policy;
	struct px_snap *const *current;
	char exe[PX_IDENT_PATH_MAX];
	char (*anc)[PX_IDENT_PATH_MAX];
	const char *anc_ptr[PX_IDENT_ANCESTORS_MAX];
	size_t n_anc;
	bool endpoint_only;
	px_denial_fn on_denial; /* NULL: L7 denials are only logged */
	void *denial_data;
	struct sv_timer timer;
	uint64_t deadline; /* CLOCK_MONOTONIC ms: peek / handshake deadline */
	bool timer_armed;
	void (*done)(void *ctx, int result);
	void *ctx;
	/* Buffers: client input (decrypted), upstream input, to the client, to the upstream. */
	struct px_tbuf cin, uin, cout, uout;
	/* The request in flight. */
	struct px_l7_body body;
	char method[32];
	bool head_method;
	bool wants_upgrade;
	bool ws_upgrade;
	bool keep_alive; /* after this response */
	unsigned request_num;
	struct px_l7_req *req; /* parse scratch, large */
	char *scratch;	       /* canonical path, redacted path, query decode */
};

uint64_t px_tun_now_ms(void);
/* Arm the tunnel's timer for @ms. */
void px_tun_timer(struct px_tun *t, uint64_t ms);

/* px_tunnel_http.c: one step of the request loop in modes REQ_HEAD..RESP_EOF; true when it
 * made progress. Sets t->mode to PX_TM_CLOSING or returns -1 (via *@close) to end. */
bool px_tun_http_step(struct px_tun *t, bool *close);
int px_tun_http_init(struct px_tun *t);
void px_tun_http_free(struct px_tun *t);

/* px_tunnel.c: reading and writing one side, for the request loop. read: bytes, 0 at EOF,
 * -EAGAIN, -errno. */
ssize_t px_tside_read(struct px_tun *t, struct px_tside *s, char *buf, size_t len);
void px_tbuf_compact(struct px_tbuf *b);

#endif
