/* PID 1's side of the proxy process (docs/architecture.md "Processes"): spawn and restart it,
 * read its control channel on PID 1's loop (log records, READY), and answer its identity
 * questions on a few threads that block on the identity socket.
 *
 * Everything the child sends is untrusted: one malformed message (unknown type, wrong size,
 * invalid field, an identity question about any socket but the proxy's own listener) and the
 * child is SIGKILLed and restarted. Identity answers come from px_ident and px_tofu unchanged,
 * with the connection's creator from px_creator beside them.
 */
#include "netns/proxy/px_parent.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "netns/proxy/px_creator.h"
#include "netns/proxy/l7/px_tls.h"
#include "netns/proxy/px_ident.h"
#include "netns/proxy/px_ipc.h"
#include "netns/proxy/l7/px_cred.h"
#include "netns/proxy/px_pack.h"
#include "netns/proxy/px_policy.h"
#include "netns/proxy/px_snap.h"
#include "netns/proxy/px_tofu.h"
#include "netns/proxy/px_upstream.h"
#include "supervisor/log.h"
#include "supervisor/loop.h"
#include "supervisor/policy/policy.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

#define COMP		     "proxy"
#define PXP_IDENT_THREADS    3
/* How long an identity answer waits for the main process's pid to be recorded (wait_entry). */
#define PXP_ENTRY_WAIT_S     2
#define PXP_BACKOFF_MIN_MS   100
#define PXP_BACKOFF_MAX_MS   5000
#define PXP_STABLE_MS	     10000 /* up this long: the next restart starts at the minimum */
#define PXP_SEND_TIMEOUT_S   2	   /* an identity answer the child does not take is dropped */
#define PXP_CTL_BURST	     64
#define PXP_IDENT_STACK	     ((size_t)256 * 1024)
#define PXP_EXE_FD	     5 /* in the child until exec (close-on-exec) */

static int g_exe_fd = -1; /* our own executable, O_PATH (px_proxy_prepare) */
/* PX_MSG_UPSTREAM, sent after every START (px_proxy_set_upstream); holds the credential. */
static uint8_t *g_upstream_msg;
static size_t g_upstream_len;

int px_proxy_set_upstream(const struct px_upstream *u, struct sv_err *err)
{
	if (g_upstream_msg) {
		explicit_bzero(g_upstream_msg, PX_MSG_MAX);
		free(g_upstream_msg);
		g_upstream_msg = NULL;
		g_upstream_len = 0;
	}
	if (!u)
		return 0;
	if (!(g_upstream_msg = malloc(PX_MSG_MAX)))
		return sv_err_set(err, ENOMEM, "upstream proxy: out of memory");
	int n = px_upstream_encode(u, g_upstream_msg, PX_MSG_MAX);
	if (n < 0) {
		free(g_upstream_msg);
		g_upstream_msg = NULL;
		return sv_err_set(err, E2BIG, "upstream proxy: the settings do not fit a message");
	}
	g_upstream_len = (size_t)n;
	return 0;
}

/* One child's identity socket, shared by the threads serving it; freed by the last user. */
struct pxp_gen {
	int fd;
	int pidfd; /* the child, for a kill that cannot hit a recycled pid; -1: none */
	pid_t pid;
	unsigned refs; /* under px_proxy.lock */
	unsigned num;
};

struct px_proxy {
	struct sv_loop *loop;
	px_denial_fn on_denial; /* NULL: denials are only logged (by the child) */
	void *denial_data;
	uint64_t denials_dropped; /* lost in the child (control socket full) */
	int listen_fd;
	struct sockaddr_storage laddr;
	socklen_t laddr_len;
	uint32_t uid, gid;
	bool relaxed;
	uint8_t *policy; /* the packed policy sent at every START */
	size_t policy_len;
	uint8_t *creds; /* the packed credential store sent after every START (secret: wiped) */
	size_t creds_len;
	/* The child. */
	pid_t pid; /* 0: none running */
	bool spawned; /* ours to restart (px_proxy_adopt's fake child is not) */
	bool killed;  /* SIGKILL sent for a malformed message */
	uint64_t started_ms;
	uint64_t backoff_ms;
	struct sv_timer restart;
	struct sv_watch ctl;
	unsigned malformed;
	/* The identity service. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct pxp_gen *gen; /* the live child's, NULL between children */
	unsigned gen_num;
	bool quit;
	pthread_t threads[PXP_IDENT_THREADS];
	size_t nthreads;
	struct px_tofu *tofu;
	/* The policy the identity threads pin by: only binaries some rule could allow are hashed
	 * and pinned (px_tofu_verify_ident_policy). Swapped under @lock; a thread holds its own
	 * reference while it answers. NULL: no policy could be copied, nothing is pinned. */
	struct px_snap *snap;
	struct px_ident_ctx ictx;
	pid_t entry; /* atomic; set once under @lock, with @entry_cond broadcast */
	pthread_cond_t entry_cond; /* CLOCK_MONOTONIC */
	uint8_t buf[PX_MSG_MAX];
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int px_proxy_prepare(struct sv_err *err)
{
	if (g_exe_fd >= 0)
		return 0;
	g_exe_fd = open("/proc/self/exe", O_PATH | O_CLOEXEC);
	if (g_exe_fd < 0)
		return sv_err_set(err, errno, "proxy: cannot open our own executable: %s",
				  strerror(errno));
	return 0;
}

/* ------------------------------------------------------------------------ identity service */

static void gen_put(struct px_proxy *p, struct pxp_gen *g)
{
	pthread_mutex_lock(&p->lock);
	bool last = --g->refs == 0;
	pthread_mutex_unlock(&p->lock);
	if (!last)
		return;
	close(g->fd);
	if (g->pidfd >= 0)
		close(g->pidfd);
	free(g);
}

/* Kill the child behind @g (any thread). The pidfd cannot reach a recycled pid. */
static void gen_kill(struct pxp_gen *g)
{
	if (g->pidfd >= 0 && syscall(SYS_pidfd_send_signal, g->pidfd, SIGKILL, NULL, 0) == 0)
		return;
	if (g->pidfd < 0 && g->pid > 0)
		(void)kill(g->pid, SIGKILL);
}

static void malformed(struct px_proxy *p, struct pxp_gen *g, const char *channel,
		      const char *what)
{
	__atomic_add_fetch(&p->malformed, 1, __ATOMIC_RELAXED);
	char pid[16];
	sv_fmt(pid, sizeof(pid), "%d", (int)g->pid);
	sv_log_kv(SV_LOG_ERROR, COMP, "proxy_child_malformed",
		  "the proxy process sent a malformed message: killing it",
		  SV_KVS({"pid", pid}, {"channel", channel}, {"error", what}));
	gen_kill(g);
}

static bool addr_equal(const struct sockaddr_storage *a, socklen_t alen,
		       const struct sockaddr_storage *b, socklen_t blen)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		return alen >= sizeof(*x) && blen >= sizeof(*y) && x->sin_port == y->sin_port &&
		       x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
	return alen >= sizeof(*x) && blen >= sizeof(*y) && x->sin6_port == y->sin6_port &&
	       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
}

/* The agent can connect between the main process's exec and the loop thread recording its pid
 * (a busy machine stretches that moment): an identity thread waits for it a little, off the loop,
 * rather than deny a connection made by the main process itself. */
static pid_t wait_entry(struct px_proxy *p)
{
	pid_t e = __atomic_load_n(&p->entry, __ATOMIC_ACQUIRE);
	if (e > 0)
		return e;
	struct timespec dl;
	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += PXP_ENTRY_WAIT_S;
	pthread_mutex_lock(&p->lock);
	while (!p->quit && __atomic_load_n(&p->entry, __ATOMIC_ACQUIRE) <= 0)
		if (pthread_cond_timedwait(&p->entry_cond, &p->lock, &dl) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&p->lock);
	return __atomic_load_n(&p->entry, __ATOMIC_ACQUIRE);
}

/* The decision steps the proxy used to run itself: identity, then integrity; and beside the
 * holders, the connection's creator as PID 1's connect monitor recorded it (px_creator.h),
 * taken once: the proxy process judges both against the policy. */
static int ident_answer(struct px_proxy *p, const struct pxp_gen *g,
			const struct px_msg_ident_req *q, struct px_ident *id, uint8_t *buf)
{
	struct sv_err err = {0};
	struct px_ident_ctx ctx = p->ictx;
	ctx.helper = g->pid;
	pid_t entry = wait_entry(p);
	enum px_ident_status st = PX_IDENT_OK;
	enum px_creator_state cst = PX_CREATOR_MISSING;
	struct px_creator cr = {0};
	char reason[PX_IDENT_REASON_MAX] = "";
	if (entry <= 0) {
		st = PX_IDENT_DENY_NONE;
		sv_fmt(reason, sizeof(reason), "%s", PX_IDENT_REASON_NOT_SPAWNED);
	} else if (px_ident_resolve(&ctx, entry, (const struct sockaddr *)&q->peer, q->peer_len,
				    (const struct sockaddr *)&q->local, q->local_len, id,
				    &err) < 0) {
		st = PX_IDENT_DENY_NONE;
		sv_fmt(reason, sizeof(reason), "%s", id->reason[0] ? id->reason : err.msg);
	} else {
		cst = px_creator_take(id->inode, id->cookie, now_ms(), &cr);
		pthread_mutex_lock(&p->lock);
		struct px_snap *snap = px_snap_get(p->snap);
		pthread_mutex_unlock(&p->lock);
		unsigned char digest[PX_SHA256_LEN];
		static const struct pol_policy none; /* no rules: nothing is a candidate */
		if (px_tofu_verify_ident_policy(p->tofu, id, snap ? &snap->pol : &none, p->relaxed,
						digest, &err) < 0) {
			st = PX_IDENT_DENY;
			sv_fmt(reason, sizeof(reason), "%s", err.msg);
		}
		px_snap_put(snap);
	}
	int n = px_msg_ident_resp_encode(buf, PX_MSG_MAX, q->seq, st, reason, id, cst, &cr);
	px_creator_release(&cr);
	return n;
}

/* Serve @g until the child closes it (or PID 1 shuts it down). */
static void ident_serve(struct px_proxy *p, struct pxp_gen *g, uint8_t *buf, struct px_ident *id)
{
	for (;;) {
		size_t nfds = 0;
		ssize_t n = px_ipc_recv(g->fd, buf, NULL, &nfds, 0);
		if (n == 0 || (n < 0 && n != -EPROTO))
			return;
		struct px_msg_ident_req q;
		struct sv_err err = {0};
		if (n < 0) {
			malformed(p, g, "identity", "truncated message or control data");
			return;
		}
		if (px_msg_ident_req_decode(buf, (size_t)n, &q, &err) < 0) {
			malformed(p, g, "identity", err.msg);
			return;
		}
		/* Only connections to our own listener: PID 1 is no oracle for other sockets. */
		if (!addr_equal(&q.local, q.local_len, &p->laddr, p->laddr_len)) {
			malformed(p, g, "identity", "IDENT_REQ: local address is not the listener");
			return;
		}
		int len = ident_answer(p, g, &q, id, buf);
		if (len < 0 || px_ipc_send(g->fd, buf, (size_t)len, NULL, 0, 0) < 0)
			sv_debug(COMP, "proxy_ident_answer_lost", "identity answer not delivered");
	}
}

static void *ident_main(void *arg)
{
	struct px_proxy *p = arg;
	uint8_t *buf = malloc(PX_MSG_MAX);
	struct px_ident *id = malloc(sizeof(*id));
	unsigned seen = 0;
	for (;;) {
		pthread_mutex_lock(&p->lock);
		while (!p->quit && (!p->gen || p->gen->num == seen))
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->quit) {
			pthread_mutex_unlock(&p->lock);
			break;
		}
		struct pxp_gen *g = p->gen;
		g->refs++;
		seen = g->num;
		pthread_mutex_unlock(&p->lock);
		if (buf && id)
			ident_serve(p, g, buf, id);
		else
			gen_kill(g); /* no memory to serve it: a restart may do better */
		gen_put(p, g);
	}
	free(buf);
	free(id);
	return NULL;
}

/* Stop serving the current child: its threads see EOF and go back to waiting. */
static void gen_retire(struct px_proxy *p)
{
	pthread_mutex_lock(&p->lock);
	struct pxp_gen *g = p->gen;
	p->gen = NULL;
	pthread_mutex_unlock(&p->lock);
	if (!g)
		return;
	(void)shutdown(g->fd, SHUT_RDWR);
	gen_put(p, g);
}

/* --------------------------------------------------------------------------- control channel */

static void ctl_close(struct px_proxy *p)
{
	if (p->ctl.fd < 0)
		return;
	sv_loop_del(p->loop, &p->ctl);
	close(p->ctl.fd);
	p->ctl.fd = -1;
}

static void child_kill(struct px_proxy *p, const char *what)
{
	pthread_mutex_lock(&p->lock);
	struct pxp_gen *g = p->gen;
	if (g)
		g->refs++;
	pthread_mutex_unlock(&p->lock);
	if (g) {
		malformed(p, g, "control", what);
		gen_put(p, g);
	} else if (p->pid > 0) {
		(void)kill(p->pid, SIGKILL);
	}
	p->killed = true;
	ctl_close(p); /* nothing more from it is read */
}

static void child_log(struct px_proxy *p, const uint8_t *buf, size_t len)
{
	struct px_msg_log m;
	struct sv_err err = {0};
	if (px_msg_log_decode(buf, len, &m, &err) < 0) {
		child_kill(p, err.msg);
		return;
	}
	if (m.dropped) {
		char n[16];
		sv_fmt(n, sizeof(n), "%u", m.dropped);
		sv_log_kv(SV_LOG_WARN, COMP, "proxy_log_dropped",
			  "the proxy process dropped log records (control socket full)",
			  SV_KVS({"count", n}));
	}
	const struct sv_log_fwd *f = &m.rec;
	if (f->ocsf)
		sv_log_ocsf(f->class_activity, f->sev, f->action, f->event, f->msg, f->kv, f->nkv);
	else
		sv_log_kv(f->level, f->component, f->event, f->msg, f->kv, f->nkv);
}

static void child_denial(struct px_proxy *p, const uint8_t *buf, size_t len)
{
	struct px_denial d;
	uint32_t dropped = 0;
	struct sv_err err = {0};
	if (px_msg_denial_decode(buf, len, &d, &dropped, &err) < 0) {
		child_kill(p, err.msg);
		return;
	}
	p->denials_dropped += dropped;
	if (p->on_denial)
		p->on_denial(&d, p->denial_data);
}

void px_proxy_set_denial_sink(struct px_proxy *p, px_denial_fn fn, void *data)
{
	if (!p)
		return;
	p->on_denial = fn;
	p->denial_data = data;
}

static void on_ctl(struct sv_loop *loop, struct sv_watch *w, uint32_t events)
{
	(void)loop;
	(void)events;
	struct px_proxy *p = w->data;
	for (int i = 0; i < PXP_CTL_BURST && p->ctl.fd >= 0; i++) {
		size_t nfds = 0;
		ssize_t n = px_ipc_recv(w->fd, p->buf, NULL, &nfds, MSG_DONTWAIT);
		if (n == -EAGAIN)
			return;
		if (n == -EPROTO) {
			child_kill(p, "truncated message or control data");
			return;
		}
		if (n <= 0) {
			ctl_close(p); /* the child is gone; its exit comes through the reaper */
			return;
		}
		switch (px_msg_type(p->buf, (size_t)n)) {
		case PX_MSG_LOG:
			child_log(p, p->buf, (size_t)n);
			break;
		case PX_MSG_DENIAL:
			child_denial(p, p->buf, (size_t)n);
			break;
		case PX_MSG_READY: {
			if (n != PX_MSG_HDR) {
				child_kill(p, "READY: message has a payload");
				return;
			}
			char pid[16], uid[16];
			sv_fmt(pid, sizeof(pid), "%d", (int)p->pid);
			sv_fmt(uid, sizeof(uid), "%u", p->uid);
			sv_log_kv(SV_LOG_INFO, COMP, "proxy_child_ready",
				  "proxy process confined and serving",
				  SV_KVS({"pid", pid}, {"uid", uid}));
			break;
		}
		default:
			child_kill(p, "unknown or unexpected message type");
			return;
		}
	}
}

void px_proxy_drain(struct px_proxy *p)
{
	if (p && p->ctl.fd >= 0)
		on_ctl(p->loop, &p->ctl, EPOLLIN);
}

/* A memfd holding @p's packed policy (the child reads it with pread). */
static int policy_memfd(const struct px_proxy *p)
{
	int fd = (int)syscall(SYS_memfd_create, "openshell-proxy-policy", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (sv_write_all(fd, p->policy, p->policy_len) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

/* A memfd holding @len bytes of @blob (sealed against growing or shrinking). */
static int blob_memfd(const char *name, const uint8_t *blob, size_t len)
{
	int fd = (int)syscall(SYS_memfd_create, name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (sv_write_all(fd, blob, len) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

/* CREDS to the live child; 0 when there is none or nothing to send. */
static int creds_send(struct px_proxy *p)
{
	if (p->ctl.fd < 0 || !p->creds)
		return 0;
	uint8_t buf[32];
	int n = px_msg_creds_encode(buf, sizeof(buf), p->creds_len);
	int mfd = blob_memfd("openshell-proxy-creds", p->creds, p->creds_len);
	int r = n < 0 ? n : mfd < 0 ? mfd : px_ipc_send(p->ctl.fd, buf, (size_t)n, &mfd, 1, 0);
	if (mfd >= 0)
		close(mfd);
	return r;
}

/* Take the child's ends and send START. */
static int child_adopt(struct px_proxy *p, int ctl_fd, int ident_fd, pid_t pid,
		       struct sv_err *err)
{
	p->pid = pid;
	p->killed = false;
	p->started_ms = now_ms();
	struct timeval tv = {.tv_sec = PXP_SEND_TIMEOUT_S};
	(void)setsockopt(ident_fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	struct pxp_gen *g = calloc(1, sizeof(*g));
	if (!g) {
		close(ctl_fd);
		close(ident_fd);
		return sv_err_set(err, ENOMEM, "proxy: out of memory");
	}
	*g = (struct pxp_gen){.fd = ident_fd, .pid = pid, .refs = 1,
			      .pidfd = (int)syscall(SYS_pidfd_open, pid, 0)};
	pthread_mutex_lock(&p->lock);
	g->num = ++p->gen_num;
	p->gen = g;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);

	(void)fcntl(ctl_fd, F_SETFL, O_NONBLOCK);
	p->ctl = (struct sv_watch){.fd = ctl_fd, .fn = on_ctl, .data = p};
	int r = sv_loop_add(p->loop, &p->ctl, EPOLLIN);
	if (r < 0) {
		close(ctl_fd);
		p->ctl.fd = -1;
		return sv_err_set(err, -r, "proxy: epoll: %s", strerror(-r));
	}
	/* The sandbox CA travels in START (l7 contract §1.2): the key never touches disk. */
	uint8_t key[512];
	int key_len = 0;
	size_t cert_len = 0;
	const uint8_t *cert = NULL;
	const struct px_ca *ca = px_tls_boot_ca();
	if (ca) {
		cert = px_ca_cert_der(ca, &cert_len);
		key_len = px_ca_key_der(ca, key, sizeof(key));
	}
	if (key_len <= 0 || cert_len == 0) {
		key_len = 0;
		cert_len = 0;
	}
	const struct px_msg_start m = {
	    .ca_cert = cert,
	    .ca_cert_len = cert_len,
	    .ca_key = key,
	    .ca_key_len = (size_t)key_len,
	    .log_level = sv_log_get_level(),
	    .log_format = sv_log_get_format(),
	    .fwd_level = sv_log_wanted_level(),
	    .relaxed = p->relaxed,
	    .uid = p->uid,
	    .gid = p->gid,
	    .policy_len = p->policy_len,
	    .upstream = g_upstream_len > 0,
	};
	uint8_t buf[2 * PX_CA_DER_MAX + 64];
	int n = px_msg_start_encode(buf, sizeof(buf), &m);
	explicit_bzero(key, sizeof(key));
	int mfd = policy_memfd(p);
	if (mfd < 0)
		return sv_err_set(err, -mfd, "proxy: policy memfd: %s", strerror(-mfd));
	const int fds[2] = {p->listen_fd, mfd};
	r = n < 0 ? n : px_ipc_send(p->ctl.fd, buf, (size_t)n, fds, 2, MSG_DONTWAIT);
	explicit_bzero(buf, sizeof(buf));
	close(mfd);
	if (r < 0)
		return sv_err_set(err, -r, "proxy: cannot send START: %s", strerror(-r));
	if (g_upstream_len &&
	    (r = px_ipc_send(p->ctl.fd, g_upstream_msg, g_upstream_len, NULL, 0, MSG_DONTWAIT)) < 0)
		return sv_err_set(err, -r, "proxy: cannot send UPSTREAM: %s", strerror(-r));
	if ((r = creds_send(p)) < 0)
		return sv_err_set(err, -r, "proxy: cannot send the credentials: %s", strerror(-r));
	return 0;
}

/* fork + execveat of our own executable as "openshell-sandbox __proxy" with an empty
 * environment: the child starts from a fresh image and holds nothing of PID 1's memory. */
static int child_spawn(struct px_proxy *p, struct sv_err *err)
{
	if (g_exe_fd < 0)
		return sv_err_set(err, EBADF, "proxy: our executable was not opened at setup");
	int ctl[2], idt[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) < 0)
		return sv_err_set(err, errno, "proxy: socketpair: %s", strerror(errno));
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, idt) < 0) {
		int e = errno;
		close(ctl[0]);
		close(ctl[1]);
		return sv_err_set(err, e, "proxy: socketpair: %s", strerror(e));
	}
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	static char *const argv[] = {"openshell-sandbox", "__proxy", NULL};
	static char *const envp[] = {NULL};
	pid_t pid = null < 0 ? -1 : fork();
	if (pid == 0) {
		/* Async-signal-safe only: move the fds above the targets, then into place. */
		int a = fcntl(ctl[1], F_DUPFD_CLOEXEC, 10), b = fcntl(idt[1], F_DUPFD_CLOEXEC, 10);
		int nl = fcntl(null, F_DUPFD_CLOEXEC, 10), x = fcntl(g_exe_fd, F_DUPFD_CLOEXEC, 10);
		if (a < 0 || b < 0 || nl < 0 || x < 0 || dup2(nl, 0) < 0 || dup2(nl, 1) < 0 ||
		    dup2(nl, 2) < 0 || dup2(a, PX_FD_CONTROL) < 0 || dup2(b, PX_FD_IDENT) < 0 ||
		    dup3(x, PXP_EXE_FD, O_CLOEXEC) < 0)
			_exit(127);
		if (syscall(SYS_close_range, PXP_EXE_FD + 1U, ~0U, 0U) < 0) {
			for (int fd = PXP_EXE_FD + 1; fd < 1024; fd++)
				(void)close(fd);
		}
		(void)setsid();
		syscall(SYS_execveat, PXP_EXE_FD, "", argv, envp, AT_EMPTY_PATH);
		_exit(127);
	}
	int e = errno;
	close(ctl[1]);
	close(idt[1]);
	if (null >= 0)
		close(null);
	if (pid < 0) {
		close(ctl[0]);
		close(idt[0]);
		return sv_err_set(err, e, "proxy: fork: %s", strerror(e));
	}
	p->spawned = true;
	return child_adopt(p, ctl[0], idt[0], pid, err);
}

static void restart_schedule(struct px_proxy *p)
{
	p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 : PXP_BACKOFF_MIN_MS;
	if (p->backoff_ms > PXP_BACKOFF_MAX_MS)
		p->backoff_ms = PXP_BACKOFF_MAX_MS;
	(void)sv_timer_arm(&p->restart, p->backoff_ms, 0);
}

static void on_restart(struct sv_loop *loop, struct sv_timer *t)
{
	(void)loop;
	struct px_proxy *p = t->data;
	if (p->pid > 0)
		return;
	struct sv_err err = {0};
	if (child_spawn(p, &err) < 0) {
		sv_error(COMP, "proxy_child_spawn_failed", "%s", err.msg);
		if (p->pid > 0)
			(void)kill(p->pid, SIGKILL); /* half set up: its exit brings the next try */
		else
			restart_schedule(p);
		return;
	}
	char pid[16];
	sv_fmt(pid, sizeof(pid), "%d", (int)p->pid);
	sv_log_kv(SV_LOG_INFO, COMP, "proxy_child_restarted", "proxy process restarted",
		  SV_KVS({"pid", pid}));
}

bool px_proxy_child_exited(struct px_proxy *p, const siginfo_t *si)
{
	if (!p || p->pid <= 0 || si->si_pid != p->pid)
		return false;
	char pid[16], status[32];
	sv_fmt(pid, sizeof(pid), "%d", (int)si->si_pid);
	if (si->si_code == CLD_EXITED)
		sv_fmt(status, sizeof(status), "exit %d", si->si_status);
	else
		sv_fmt(status, sizeof(status), "signal %d", si->si_status);
	sv_log_kv(SV_LOG_WARN, COMP, "proxy_child_exited",
		  "the proxy process exited: restarting it; its connections are lost",
		  SV_KVS({"pid", pid}, {"status", status},
			 {"malformed", p->killed ? "true" : "false"}));
	p->pid = 0;
	ctl_close(p);
	gen_retire(p);
	if (now_ms() - p->started_ms >= PXP_STABLE_MS)
		p->backoff_ms = 0;
	if (p->spawned)
		restart_schedule(p);
	return true;
}

bool px_proxy_is_child(const struct px_proxy *p, pid_t pid)
{
	return p && pid > 0 && p->pid == pid;
}

/* ---------------------------------------------------------------------------------- public */

static int proxy_init(struct sv_loop *loop, int listen_fd, const struct pol_policy *policy,
		      uid_t agent_uid, struct px_proxy **out, struct sv_err *err)
{
	struct px_proxy *p = calloc(1, sizeof(*p));
	if (!p)
		return sv_err_set(err, ENOMEM, "proxy: out of memory");
	p->loop = loop;
	p->listen_fd = listen_fd;
	p->ctl.fd = -1;
	p->restart.w.fd = -1;
	p->uid = p->gid = agent_uid == PX_PROXY_ID ? PX_PROXY_ID_ALT : PX_PROXY_ID;
	p->relaxed = px_binary_identity_is_relaxed(getenv("OPENSHELL_NETWORK_BINARY_IDENTITY"));
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->entry_cond, &ca);
	pthread_condattr_destroy(&ca);
	*out = p; /* px_proxy_free undoes any part from here */
	p->laddr_len = sizeof(p->laddr);
	if (getsockname(listen_fd, (struct sockaddr *)&p->laddr, &p->laddr_len) < 0)
		return sv_err_set(err, errno, "proxy: getsockname: %s", strerror(errno));
	struct pol_policy empty;
	pol_init(&empty);
	int r = px_pack_policy(policy ? policy : &empty, &p->policy, &p->policy_len);
	if (r < 0)
		return sv_err_set(err, -r, "proxy: packing the policy: %s", strerror(-r));
	if ((r = px_tofu_new(PX_TOFU_MAX_ENTRIES, &p->tofu)) < 0)
		return sv_err_set(err, -r, "proxy: fingerprint cache: %s", strerror(-r));
	if ((r = px_snap_new(policy, &p->snap)) < 0)
		return sv_err_set(err, -r, "proxy: copying the policy: %s", strerror(-r));
	p->ictx.scope = getpid();
	struct sv_err derr = {0};
	if (px_diag_open(listen_fd, &p->ictx.diag, &derr) < 0)
		sv_info(COMP, "sock_diag_unavailable",
			"socket owners through /proc/<pid>/net/tcp: %s", derr.msg);
	if ((r = sv_timer_init(loop, &p->restart, on_restart, p)) < 0)
		return sv_err_set(err, -r, "proxy: timerfd: %s", strerror(-r));
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, PXP_IDENT_STACK);
	for (size_t i = 0; i < PXP_IDENT_THREADS; i++) {
		r = pthread_create(&p->threads[i], &attr, ident_main, p);
		if (r != 0)
			break;
		p->nthreads++;
	}
	pthread_attr_destroy(&attr);
	if (r != 0)
		return sv_err_set(err, r, "proxy: identity threads: %s", strerror(r));
	return 0; /* the proxy process warns binary_identity_relaxed itself, as it always did */
}

int px_proxy_start(struct sv_loop *loop, int listen_fd, const struct pol_policy *policy,
		   uid_t agent_uid, struct px_proxy **out, struct sv_err *err)
{
	struct px_proxy *p = NULL;
	int r = proxy_init(loop, listen_fd, policy, agent_uid, &p, err);
	if (r == 0 && p)
		r = child_spawn(p, err);
	if (r < 0) {
		px_proxy_free(p);
		return r;
	}
	*out = p;
	return 0;
}

int px_proxy_adopt(struct sv_loop *loop, int listen_fd, const struct pol_policy *policy,
		   uid_t agent_uid, int ctl_fd, int ident_fd, pid_t pid, struct px_proxy **out,
		   struct sv_err *err)
{
	struct px_proxy *p = NULL;
	int r = proxy_init(loop, listen_fd, policy, agent_uid, &p, err);
	if (r < 0 || !p) {
		close(ctl_fd);
		close(ident_fd);
		r = r < 0 ? r : -ENOMEM;
	} else {
		r = child_adopt(p, ctl_fd, ident_fd, pid, err);
	}
	if (r < 0) {
		px_proxy_free(p);
		return r;
	}
	*out = p;
	return 0;
}

unsigned px_proxy_malformed_count(const struct px_proxy *p)
{
	return __atomic_load_n(&p->malformed, __ATOMIC_RELAXED);
}

void px_proxy_set_policy(struct px_proxy *p, const struct pol_policy *policy)
{
	struct pol_policy empty;
	pol_init(&empty);
	uint8_t *blob = NULL;
	size_t len = 0;
	if (px_pack_policy(policy ? policy : &empty, &blob, &len) < 0) {
		/* Fail closed: the child denies everything until the next successful set. */
		sv_error(COMP, "policy_swap_failed", "cannot pack the new policy: denying all egress");
		if (px_pack_policy(&empty, &blob, &len) < 0)
			return;
	}
	free(p->policy);
	p->policy = blob;
	p->policy_len = len;
	/* The identity threads pin by the new rules from their next answer on. Out of memory:
	 * no snapshot, so nothing new is pinned (every binary is then a non-candidate). */
	struct px_snap *next = NULL;
	if (px_snap_new(policy, &next) < 0)
		sv_error(COMP, "policy_swap_failed", "out of memory copying the policy for pinning");
	pthread_mutex_lock(&p->lock);
	struct px_snap *old = p->snap;
	p->snap = next;
	pthread_mutex_unlock(&p->lock);
	px_snap_put(old);
	if (p->ctl.fd < 0)
		return; /* no child now: the next START carries it */
	uint8_t buf[32];
	int n = px_msg_policy_encode(buf, sizeof(buf), len);
	int mfd = policy_memfd(p);
	int r = n < 0 ? n : mfd < 0 ? mfd : px_ipc_send(p->ctl.fd, buf, (size_t)n, &mfd, 1, 0);
	if (mfd >= 0)
		close(mfd);
	if (r < 0) {
		/* The child cannot be told: it must not keep deciding with the old rules. */
		sv_error(COMP, "policy_swap_failed", "cannot send the new policy: %s: restarting "
			 "the proxy process", strerror(-r));
		if (p->pid > 0)
			(void)kill(p->pid, SIGKILL);
	}
}

static void creds_drop(struct px_proxy *p)
{
	if (p->creds)
		px_cred_wipe(p->creds, p->creds_len);
	free(p->creds);
	p->creds = NULL;
	p->creds_len = 0;
}

void px_proxy_set_creds(struct px_proxy *p, const struct px_cred_store *s)
{
	if (!p)
		return;
	creds_drop(p);
	if (s && px_cred_store_pack(s, &p->creds, &p->creds_len) < 0) {
		p->creds = NULL;
		sv_error(COMP, "credentials_swap_failed",
			 "cannot copy the provider credentials for the proxy: placeholders fail");
	}
	int r = creds_send(p);
	if (r < 0) {
		/* The child must not keep resolving with an old store: restart it. */
		sv_error(COMP, "credentials_swap_failed",
			 "cannot send the provider credentials: %s: restarting the proxy process",
			 strerror(-r));
		if (p->pid > 0)
			(void)kill(p->pid, SIGKILL);
	}
}

void px_proxy_set_entrypoint(struct px_proxy *p, pid_t pid)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	__atomic_store_n(&p->entry, pid, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&p->entry_cond);
	pthread_mutex_unlock(&p->lock);
}

void px_proxy_free(struct px_proxy *p)
{
	if (!p)
		return;
	if (p->restart.w.fd >= 0)
		sv_timer_close(p->loop, &p->restart);
	ctl_close(p);
	if (p->pid > 0 && p->spawned) {
		(void)kill(p->pid, SIGKILL);
		while (waitpid(p->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	p->pid = 0;
	gen_retire(p);
	pthread_mutex_lock(&p->lock);
	p->quit = true;
	pthread_cond_broadcast(&p->cond);
	pthread_cond_broadcast(&p->entry_cond);
	pthread_mutex_unlock(&p->lock);
	for (size_t i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	pthread_cond_destroy(&p->entry_cond);
	px_tofu_free(p->tofu);
	px_snap_put(p->snap);
	px_diag_close(p->ictx.diag);
	free(p->policy);
	creds_drop(p);
	free(p);
}
