/* The unprivileged proxy process (docs/architecture.md "Processes"): our binary re-executed by
 * PID 1 as "openshell-sandbox __proxy" with the control socket on fd 3 and the identity socket
 * on fd 4. It waits for START, confines itself and runs the egress proxy on its own loop.
 *
 * Never runs with privileges past the confinement step: no capabilities (bounding set too), a
 * non-root uid, no_new_privs, not dumpable, and a seccomp allow-list that kills it on exec. It
 * asks PID 1 for identities; everything it says to PID 1 is checked there.
 */
#include "netns/netns.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "netns/proxy/px_ipc.h"
#include "netns/proxy/px_creds.h"
#include "netns/proxy/px_pack.h"
#include "netns/proxy/px_server.h"
#include "netns/proxy/px_tunnel.h"
#include "netns/proxy/px_upstream.h"
#include "supervisor/isolation/seccomp.h"
#include "supervisor/log.h"
#include "supervisor/loop.h"
#include "supervisor/policy/policy.h"

#define COMP		"proxy"
#define PXC_EXIT_USAGE	2
#define PXC_EXIT_SETUP	1
#define PXC_RECV_BURST	64 /* messages handled per wake-up, so one socket cannot starve another */
#define PXC_CAP_LAST	63 /* bounding-set drops go this far; EINVAL past the kernel's last */

struct pxc {
	struct sv_loop loop;
	struct sv_watch ctl, ident;
	struct px_server *srv;
	struct px_tun_tls *tls; /* NULL: no CA, terminating CONNECTs get 503 */
	uint8_t buf[PX_MSG_MAX];
};

static uint32_t g_dropped; /* log records dropped while the control socket was full (atomic) */

/* The forwarder (sv_log_set_forward): any thread. A full socket drops the record and counts
 * it; the count travels with the next record that gets through. */
static void log_forward(const struct sv_log_fwd *rec, void *data)
{
	(void)data;
	uint8_t buf[PX_LOG_WIRE_MAX];
	uint32_t dropped = __atomic_exchange_n(&g_dropped, 0, __ATOMIC_RELAXED);
	int n = px_msg_log_encode(buf, sizeof(buf), rec, dropped);
	if (n < 0 || px_ipc_send(PX_FD_CONTROL, buf, (size_t)n, NULL, 0, MSG_DONTWAIT) < 0)
		__atomic_add_fetch(&g_dropped, dropped + 1, __ATOMIC_RELAXED);
}

static uint32_t g_denials_dropped; /* loop thread only */

/* A denial for PID 1's aggregator: like a log record, dropped and counted when the control
 * socket is full (the proxy never waits for PID 1). */
static void denial_forward(const struct px_denial *d, void *data)
{
	(void)data;
	static uint8_t buf[PX_MSG_MAX]; /* loop thread only */
	int n = px_msg_denial_encode(buf, sizeof(buf), d, g_denials_dropped);
	if (n < 0 || px_ipc_send(PX_FD_CONTROL, buf, (size_t)n, NULL, 0, MSG_DONTWAIT) < 0)
		g_denials_dropped++;
	else
		g_denials_dropped = 0;
}

static bool fd_is_seqpacket(int fd)
{
	int type = 0;
	socklen_t len = sizeof(type);
	return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_SEQPACKET;
}

/* The packed policy from @fd (a memfd from PID 1, closed here). */
static int policy_read(int memfd, uint64_t len, struct pol_policy *out, struct sv_err *err)
{
	_cleanup_close_ int fd = memfd;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != len ||
	    len > PX_PACK_MAX)
		return sv_err_set(err, EPROTO, "policy: the blob is not the size announced");
	_cleanup_free_ uint8_t *blob = malloc(len ? len : 1);
	if (!blob)
		return sv_err_set(err, ENOMEM, "policy: out of memory");
	for (size_t off = 0; off < len;) {
		ssize_t n = pread(fd, blob + off, len - off, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return sv_err_set(err, EIO, "policy: cannot read the blob");
		off += (size_t)n;
	}
	return px_unpack_policy(blob, len, out, err);
}

/* ------------------------------------------------------------------------- confinement */

static int caps_are_zero(struct sv_err *err)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[2];
	memset(d, 0, sizeof(d));
	if (syscall(SYS_capset, &h, d) < 0) /* inheritable survives setresuid: clear it too */
		return sv_err_set(err, errno, "capset: %s", strerror(errno));
	if (syscall(SYS_capget, &h, d) < 0)
		return sv_err_set(err, errno, "capget: %s", strerror(errno));
	for (int i = 0; i < 2; i++) {
		if (d[i].effective || d[i].permitted || d[i].inheritable)
			return sv_err_set(err, EPERM, "capabilities left after the identity change");
	}
	return 0;
}

/* Order matters (minijail, bubblewrap): the bounding set needs CAP_SETPCAP, groups and ids
 * need CAP_SETGID/SETUID, so those go first while root; then no_new_privs, dumpable and core;
 * seccomp last. */
static int confine(uint32_t uid, uint32_t gid, struct sv_err *err)
{
	struct sv_seccomp_prog prog;
	int r = sv_seccomp_build_proxy(&prog, err);
	if (r < 0)
		return r;
	for (int cap = 0; cap <= PXC_CAP_LAST; cap++) {
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL) {
			r = sv_err_set(err, errno, "dropping capability %d from the bounding set: %s",
				       cap, strerror(errno));
			goto out;
		}
	}
	if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0) {
		r = sv_err_set(err, errno, "cannot become uid %u gid %u: %s", uid, gid,
			       strerror(errno));
		goto out;
	}
	if (getuid() == 0 || geteuid() == 0 || getgid() == 0 || getegid() == 0 ||
	    setuid(0) == 0) {
		r = sv_err_set(err, EPERM, "still root after the identity change");
		goto out;
	}
	if ((r = caps_are_zero(err)) < 0)
		goto out;
	struct rlimit core = {0, 0};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 ||
	    setrlimit(RLIMIT_CORE, &core) < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) {
		r = sv_err_set(err, errno, "prctl/setrlimit: %s", strerror(errno));
		goto out;
	}
	r = sv_seccomp_install(&prog, false, err);
out:
	sv_seccomp_prog_free(&prog);
	return r;
}

/* ------------------------------------------------------------------------------ the loop */

static int ident_ask(void *ctx, uint32_t seq, const struct sockaddr_storage *peer,
		     socklen_t peer_len, const struct sockaddr_storage *local, socklen_t local_len)
{
	(void)ctx;
	struct px_msg_ident_req q = {.seq = seq, .peer = *peer, .local = *local,
				     .peer_len = peer_len, .local_len = local_len};
	uint8_t buf[128];
	int n = px_msg_ident_req_encode(buf, sizeof(buf), &q);
	if (n < 0)
		return n;
	return px_ipc_send(PX_FD_IDENT, buf, (size_t)n, NULL, 0, MSG_DONTWAIT);
}

static void on_ident(struct sv_loop *loop, struct sv_watch *w, uint32_t events)
{
	(void)events;
	struct pxc *c = w->data;
	for (int i = 0; i < PXC_RECV_BURST; i++) {
		size_t nfds = 0;
		ssize_t n = px_ipc_recv(w->fd, c->buf, NULL, &nfds, MSG_DONTWAIT);
		if (n == -EAGAIN)
			return;
		if (n <= 0 && n != -EPROTO) {
			sv_loop_quit(loop); /* PID 1 is gone */
			return;
		}
		struct px_msg_ident_resp m;
		struct sv_err err = {0};
		if (n < 0 || px_msg_ident_resp_decode(c->buf, (size_t)n, &m, &err) < 0) {
			sv_error(COMP, "proxy_ident_answer_invalid", "identity answer refused: %s",
				 err.msg[0] ? err.msg : "truncated");
			continue;
		}
		const struct px_ident_answer a = {
		    .status = (int)m.status, .reason = m.reason, .pid = m.pid, .exe = m.exe,
		    .ancestors = m.ancestors, .n_ancestors = m.n_ancestors,
		    .creator = (int)m.creator, .creator_too_long = m.creator_too_long,
		    .creator_pid = m.creator_pid, .creator_exe = m.creator_exe,
		    .creator_ancestors = m.creator_ancestors,
		    .n_creator_ancestors = m.n_creator_ancestors};
		(void)px_server_ident_answer(c->srv, m.seq, &a);
	}
}

static void on_control(struct sv_loop *loop, struct sv_watch *w, uint32_t events)
{
	(void)events;
	struct pxc *c = w->data;
	for (int i = 0; i < PXC_RECV_BURST; i++) {
		int fds[PX_MSG_FDS_MAX];
		size_t nfds = 0;
		ssize_t n = px_ipc_recv(w->fd, c->buf, fds, &nfds, MSG_DONTWAIT);
		if (n == -EAGAIN)
			return;
		if (n <= 0) {
			sv_loop_quit(loop); /* PID 1 closed the channel: we are done */
			return;
		}
		uint64_t len = 0;
		struct sv_err err = {0};
		if (px_msg_type(c->buf, (size_t)n) == PX_MSG_CREDS) {
			if (nfds != 1 || px_msg_creds_decode(c->buf, (size_t)n, &len, &err) < 0) {
				for (size_t k = 0; k < nfds; k++)
					close(fds[k]);
				px_creds_clear(); /* fail closed */
				sv_error(COMP, "proxy_control_invalid", "credentials refused: %s",
					 err.msg[0] ? err.msg : "no fd");
			} else if (px_creds_load(fds[0], len, &err) < 0) {
				sv_error(COMP, "credentials_swap_failed", "%s: placeholders fail",
					 err.msg);
			} else {
				char cnt[24];
				sv_fmt(cnt, sizeof(cnt), "%zu",
				       px_cred_store_count(px_creds_current()));
				sv_log_kv(SV_LOG_DEBUG, COMP, "credentials_loaded",
					  "provider credentials loaded (values not logged)",
					  SV_KVS({"count", cnt}));
			}
			continue;
		}
		if (nfds != 1 || px_msg_policy_decode(c->buf, (size_t)n, &len, &err) < 0) {
			for (size_t k = 0; k < nfds; k++)
				close(fds[k]);
			sv_error(COMP, "proxy_control_invalid", "control message refused: %s",
				 err.msg[0] ? err.msg : "no policy fd");
			continue;
		}
		struct pol_policy pol;
		if (policy_read(fds[0], len, &pol, &err) < 0) {
			sv_error(COMP, "policy_swap_failed", "%s: denying all egress", err.msg);
			px_server_set_policy(c->srv, NULL);
			continue;
		}
		px_server_set_policy(c->srv, &pol);
		pol_free(&pol);
	}
}

/* START, blocking: the first thing PID 1 sends. Fills @m, the listener and the policy. */
static int start_receive(struct pxc *c, struct px_msg_start *m, int *listen_fd,
			 struct pol_policy *pol, struct sv_err *err)
{
	int fds[PX_MSG_FDS_MAX];
	size_t nfds = 0;
	ssize_t n = px_ipc_recv(PX_FD_CONTROL, c->buf, fds, &nfds, 0);
	if (n <= 0)
		return sv_err_set(err, EPROTO, "no START message");
	if (nfds != 2 || px_msg_start_decode(c->buf, (size_t)n, m, err) < 0) {
		for (size_t k = 0; k < nfds; k++)
			close(fds[k]);
		return sv_err_set(err, EPROTO, "START refused: %s", err->msg);
	}
	int acc = 0;
	socklen_t l = sizeof(acc);
	if (getsockopt(fds[0], SOL_SOCKET, SO_ACCEPTCONN, &acc, &l) < 0 || !acc) {
		close(fds[0]);
		close(fds[1]);
		return sv_err_set(err, EPROTO, "START: the first fd is not a listening socket");
	}
	*listen_fd = fds[0];
	return policy_read(fds[1], m->policy_len, pol, err);
}

/* UPSTREAM, blocking, when START announced it: before anything is served. */
static int upstream_receive(struct pxc *c, struct px_upstream **out, struct sv_err *err)
{
	size_t nfds = 0;
	ssize_t n = px_ipc_recv(PX_FD_CONTROL, c->buf, NULL, &nfds, 0);
	if (n <= 0)
		return sv_err_set(err, EPROTO, "no UPSTREAM message");
	int r = px_upstream_decode(c->buf, (size_t)n, out, err);
	explicit_bzero(c->buf, (size_t)n);
	return r;
}

int px_child_main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	(void)prctl(PR_SET_NAME, "openshell-proxy", 0, 0, 0);
	if (!fd_is_seqpacket(PX_FD_CONTROL) || !fd_is_seqpacket(PX_FD_IDENT)) {
		static const char msg[] = "openshell-sandbox: __proxy is internal: it runs only "
					  "as the supervisor's proxy process\n";
		(void)sv_write_all(STDERR_FILENO, msg, sizeof(msg) - 1);
		return PXC_EXIT_USAGE;
	}
	struct pxc *c = calloc(1, sizeof(*c));
	if (!c)
		return PXC_EXIT_SETUP;
	struct px_msg_start m = {0};
	struct pol_policy pol;
	int listen_fd = -1;
	struct sv_err err = {0};
	struct px_upstream *up = NULL;
	if (start_receive(c, &m, &listen_fd, &pol, &err) < 0) {
		(void)sv_write_all(STDERR_FILENO, err.msg, strlen(err.msg));
		return PXC_EXIT_SETUP;
	}
	sv_log_setup(m.log_level, m.log_format);
	sv_log_set_forward(log_forward, NULL, m.fwd_level);
	/* The CA from PID 1 and the upstream trust store (system bundle + bundled roots), read
	 * before confinement. The key lives only in this process's memory (l7 contract §1.2).
	 * m.ca_cert and m.ca_key point into c->buf: used before UPSTREAM is read into it. */
	if (m.ca_cert_len) {
		struct sv_err terr = {0};
		if (px_tun_tls_new(m.ca_cert, m.ca_cert_len, m.ca_key, m.ca_key_len, NULL, 0, &c->tls,
				   &terr) < 0)
			sv_log_ocsf("FINDING:OPEN", SV_SEV_HIGH, "DEGRADED", "tls_ca_unavailable",
				    "TLS termination unavailable in the proxy: CONNECT tunnels that "
				    "would be terminated will be refused",
				    SV_KVS({"error", terr.msg}));
	}
	explicit_bzero(c->buf, sizeof(c->buf));
	m.ca_cert = m.ca_key = NULL;
	if (m.upstream && upstream_receive(c, &up, &err) < 0) {
		(void)sv_write_all(STDERR_FILENO, err.msg, strlen(err.msg));
		return PXC_EXIT_SETUP;
	}
	const struct px_ident_remote remote = {.ask = ident_ask, .ctx = c};
	int r = confine(m.uid, m.gid, &err);
	if (r == 0 && fcntl(PX_FD_CONTROL, F_SETFL, O_NONBLOCK) < 0)
		r = sv_err_set(&err, errno, "fcntl: %s", strerror(errno));
	if (r == 0 && fcntl(PX_FD_IDENT, F_SETFL, O_NONBLOCK) < 0)
		r = sv_err_set(&err, errno, "fcntl: %s", strerror(errno));
	if (r == 0)
		r = sv_loop_init(&c->loop, &err);
	if (r == 0)
		r = px_server_new_remote(&c->loop, listen_fd, &pol, m.relaxed, &remote, &c->srv,
					 &err);
	pol_free(&pol);
	if (r < 0) {
		sv_error(COMP, "proxy_child_setup_failed", "proxy process: %s", err.msg);
		return PXC_EXIT_SETUP;
	}
	px_server_set_tls(c->srv, c->tls, true);
	px_server_set_denial_sink(c->srv, denial_forward, NULL);
	px_server_set_upstream(c->srv, up); /* owned by the server from here */
	c->ctl = (struct sv_watch){.fd = PX_FD_CONTROL, .fn = on_control, .data = c};
	c->ident = (struct sv_watch){.fd = PX_FD_IDENT, .fn = on_ident, .data = c};
	uint8_t ready[PX_MSG_HDR];
	if (sv_loop_add(&c->loop, &c->ctl, EPOLLIN) < 0 ||
	    sv_loop_add(&c->loop, &c->ident, EPOLLIN) < 0 ||
	    px_msg_ready_encode(ready, sizeof(ready)) < 0 ||
	    px_ipc_send(PX_FD_CONTROL, ready, sizeof(ready), NULL, 0, 0) < 0) {
		sv_error(COMP, "proxy_child_setup_failed", "proxy process: cannot serve");
		return PXC_EXIT_SETUP;
	}
	r = sv_loop_run(&c->loop);
	px_server_free(c->srv);
	px_tun_tls_free(c->tls);
	close(listen_fd);
	sv_loop_close(&c->loop);
	free(c);
	return r < 0 ? PXC_EXIT_SETUP : 0;
}
