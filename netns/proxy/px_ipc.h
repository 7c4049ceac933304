/* Egress proxy: the messages between PID 1 and the unprivileged proxy process
 * (docs/architecture.md "Processes"), over two AF_UNIX SOCK_SEQPACKET socketpairs.
 *
 * Private to netns/. Every message is one datagram: an 8-byte header {u16 type, u16 flags,
 * u32 len} and exactly len payload bytes (little-endian fields). Decoders check every size,
 * count, enum and text exactly and never read past the datagram; PID 1 kills a child whose
 * message fails them. Pure code: no sockets except in px_ipc_send / px_ipc_recv.
 */
#ifndef PX_IPC_H
#define PX_IPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "netns/proxy/px_creator.h"
#include "netns/netns.h"
#include "netns/proxy/px_ident.h"
#include "supervisor/log.h"

enum px_msg_type {
	PX_MSG_START = 1,  /* parent → child, control; fds: listener, policy memfd */
	PX_MSG_POLICY,	   /* parent → child, control; fd: policy memfd */
	PX_MSG_READY,	   /* child → parent, control: confined and serving */
	PX_MSG_LOG,	   /* child → parent, control: one structured log record */
	PX_MSG_IDENT_REQ,  /* child → parent, identity socket */
	PX_MSG_IDENT_RESP, /* parent → child, identity socket */
	PX_MSG_DENIAL,	   /* child → parent, control: one denied request (px_denial) */
	PX_MSG_UPSTREAM,   /* parent → child, control: the upstream proxy (px_upstream.c) */
	PX_MSG_CREDS,	   /* parent → child, control; fd: credential store memfd (px_cred) */
};
#define PX_MSG_LAST PX_MSG_CREDS

#define PX_MSG_HDR     8
#define PX_MSG_MAX     ((size_t)64 * 1024) /* a whole datagram, header included */
#define PX_MSG_FDS_MAX 2
#define PX_LOG_KV_MAX  16
#define PX_LOG_NAME_MAX 64   /* component, event, keys, OCSF class and action */
#define PX_LOG_TEXT_MAX 4096 /* message and values */
#define PX_LOG_WIRE_MAX 8192 /* what the child sends per record; longer texts are cut */

/* The fd numbers of the proxy process (set by the spawn, checked by px_child_main). */
#define PX_FD_CONTROL 3
#define PX_FD_IDENT   4

struct px_msg_start {
	enum sv_log_level log_level;
	enum sv_log_format log_format;
	enum sv_log_level fwd_level; /* records at this level or more severe are forwarded */
	bool relaxed;		     /* OPENSHELL_NETWORK_BINARY_IDENTITY: endpoint only */
	uint32_t uid, gid;	     /* the proxy's identity, never 0 */
	uint64_t policy_len;	     /* bytes of the px_pack blob in the memfd */
	bool upstream;		     /* an UPSTREAM message follows START at once */
	/* The sandbox CA (l7 contract §1.2): certificate and private key DER, both empty when
	 * PID 1 could not make it (the proxy then refuses terminating tunnels with 503). The key
	 * only ever travels in this datagram: never a file. Borrowed (encode: the caller's;
	 * decode: points into the datagram). */
	const uint8_t *ca_cert, *ca_key;
	size_t ca_cert_len, ca_key_len;
};
#define PX_CA_DER_MAX 4096 /* each of the CA's certificate and key DER */

/* A decoded log record: pointers into the datagram (NUL-terminated there). */
struct px_msg_log {
	struct sv_log_fwd rec;
	struct sv_kv kv[PX_LOG_KV_MAX];
	uint32_t dropped; /* records the child dropped before this one (control socket full) */
};

struct px_msg_ident_req {
	uint32_t seq;
	struct sockaddr_storage peer, local;
	socklen_t peer_len, local_len;
};

enum px_ident_status {
	PX_IDENT_DENY_NONE = 0, /* no identity: deny with the reason */
	PX_IDENT_DENY,		/* identity known (logged), denied with the reason (TOFU) */
	PX_IDENT_OK,
};

/* A decoded identity answer: pointers into the datagram. @truncated: the ancestors did not all
 * fit (fewer ancestors can only make the policy deny). The holders' identity (@pid, @exe,
 * @ancestors) and, beside it, the connection's creator (issue 17 item 1): @creator is
 * PX_CREATOR_FOUND only with an identity, and then @creator_exe is set; otherwise every
 * creator field is zero/empty on the wire (the decoder refuses anything else). */
struct px_msg_ident_resp {
	uint32_t seq;
	enum px_ident_status status;
	const char *reason;
	pid_t pid;
	const char *exe;
	size_t n_ancestors;
	const char *ancestors[PX_IDENT_ANCESTORS_MAX];
	bool truncated;
	enum px_creator_state creator;
	bool creator_too_long;	/* PID 1 recorded only its exe: judged as denied */
	bool creator_truncated; /* like @truncated, for the creator's ancestors */
	pid_t creator_pid;
	const char *creator_exe;
	size_t n_creator_ancestors;
	const char *creator_ancestors[PX_IDENT_ANCESTORS_MAX];
};

/* Encoders write one whole datagram into @buf (@size bytes) and return its length, or -E2BIG. */
int px_msg_start_encode(uint8_t *buf, size_t size, const struct px_msg_start *m);
int px_msg_policy_encode(uint8_t *buf, size_t size, uint64_t len);
/* CREDS: the length of the px_cred_store_pack blob in the memfd that travels with it. */
int px_msg_creds_encode(uint8_t *buf, size_t size, uint64_t len);
int px_msg_ready_encode(uint8_t *buf, size_t size);
/* Texts longer than fit in PX_LOG_WIRE_MAX are cut; never fails for @size >= PX_LOG_WIRE_MAX. */
int px_msg_log_encode(uint8_t *buf, size_t size, const struct sv_log_fwd *rec, uint32_t dropped);
/* Texts are cut to PX_DENIAL_TEXT_MAX (paths to PX_IDENT_PATH_MAX - 1); ancestors past
 * PX_DENIAL_ANCESTORS_MAX are left out. @dropped: denials lost before this one. */
int px_msg_denial_encode(uint8_t *buf, size_t size, const struct px_denial *d, uint32_t dropped);
int px_msg_ident_req_encode(uint8_t *buf, size_t size, const struct px_msg_ident_req *m);
/* Ancestors that do not fit in @size are left out (the answer says truncated); with a creator
 * record, the holders' ancestors take at most half of the room the texts leave, the creator's
 * the rest. @cst/@cr (NULL: MISSING) are sent only with an identity. */
int px_msg_ident_resp_encode(uint8_t *buf, size_t size, uint32_t seq, enum px_ident_status st,
			     const char *reason, const struct px_ident *id,
			     enum px_creator_state cst, const struct px_creator *cr);

/* The type of a datagram whose header says exactly @len bytes, or -EPROTO. */
int px_msg_type(const uint8_t *buf, size_t len);

/* Decoders: 0, or -EPROTO with @err naming the fault ("LOG: event name invalid"). @buf must
 * stay alive (and writable for LOG and IDENT_RESP, whose texts are read in place). */
int px_msg_start_decode(const uint8_t *buf, size_t len, struct px_msg_start *m,
			struct sv_err *err);
int px_msg_policy_decode(const uint8_t *buf, size_t len, uint64_t *policy_len,
			 struct sv_err *err);
int px_msg_creds_decode(const uint8_t *buf, size_t len, uint64_t *creds_len, struct sv_err *err);
int px_msg_log_decode(const uint8_t *buf, size_t len, struct px_msg_log *m, struct sv_err *err);
/* @d's strings point into @buf; the stage is a lower-case name, the port not 0. */
int px_msg_denial_decode(const uint8_t *buf, size_t len, struct px_denial *d, uint32_t *dropped,
			 struct sv_err *err);
int px_msg_ident_req_decode(const uint8_t *buf, size_t len, struct px_msg_ident_req *m,
			    struct sv_err *err);
int px_msg_ident_resp_decode(const uint8_t *buf, size_t len, struct px_msg_ident_resp *m,
			     struct sv_err *err);

/* Send one datagram with up to PX_MSG_FDS_MAX fds (borrowed). @flags: MSG_DONTWAIT or 0.
 * Returns 0 or -errno. */
int px_ipc_send(int sock, const uint8_t *buf, size_t len, const int *fds, size_t nfds, int flags);
/* Receive one datagram into @buf (PX_MSG_MAX bytes) and up to PX_MSG_FDS_MAX fds (O_CLOEXEC,
 * owned by the caller; *@nfds set). Returns its length, 0 at EOF, -EAGAIN, -EPROTO (truncated
 * datagram or control data: any fds are closed), or -errno. */
ssize_t px_ipc_recv(int sock, uint8_t *buf, int *fds, size_t *nfds, int flags);

#endif
