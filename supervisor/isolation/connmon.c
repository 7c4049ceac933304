/* The connect monitor thread: SECCOMP_IOCTL_NOTIF_RECV on every agent listener, record the
 * creator of each connection to the proxy, then SECCOMP_USER_NOTIF_FLAG_CONTINUE.
 *
 * Every error answers CONTINUE (the agent's connect is never refused here); a connection that
 * could not be recorded is denied later by the proxy, which fails closed. The sockaddr is read
 * from the caller's memory, which the caller may change meanwhile: that can only lose a record.
 */
#include "connmon.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>

#include "netns/netns.h"
#include "netns/proxy/px_creator.h"
#include "netns/proxy/px_ident.h"
#include "supervisor/log.h"

#define COMP "connmon"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif
#ifndef SECCOMP_GET_ACTION_AVAIL
#define SECCOMP_GET_ACTION_AVAIL 2
#endif
#ifndef SECCOMP_GET_NOTIF_SIZES
#define SECCOMP_GET_NOTIF_SIZES 3
#endif

#define CM_EVENTS 16

static int g_ep = -1;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_start_err;
static struct seccomp_notif_sizes g_sizes;
static unsigned long long g_notes, g_recorded, g_failed;

bool sv_connmon_supported(void)
{
	unsigned int action = SECCOMP_RET_USER_NOTIF;
	struct seccomp_notif_sizes sz;
	return syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0 &&
	       syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sz) == 0;
}

bool sv_connmon_is_proxy(const void *addr, unsigned int len)
{
	struct in_addr want;
	if (inet_pton(AF_INET, NNS_PROXY_ADDR, &want) != 1 || len < sizeof(sa_family_t))
		return false;
	sa_family_t fam;
	memcpy(&fam, addr, sizeof(fam));
	if (fam == AF_INET && len >= sizeof(struct sockaddr_in)) {
		struct sockaddr_in sin;
		memcpy(&sin, addr, sizeof(sin));
		return sin.sin_port == htons(NNS_PROXY_PORT) && sin.sin_addr.s_addr == want.s_addr;
	}
	if (fam == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 s6;
		memcpy(&s6, addr, sizeof(s6));
		static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
		return s6.sin6_port == htons(NNS_PROXY_PORT) &&
		       memcmp(s6.sin6_addr.s6_addr, mapped, 12) == 0 &&
		       memcmp(s6.sin6_addr.s6_addr + 12, &want.s_addr, 4) == 0;
	}
	return false;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The thread group of thread @tid (pidfd_open without PIDFD_THREAD wants a leader). */
static pid_t tgid_of(pid_t tid)
{
	char path[64], buf[1024];
	sv_fmt(path, sizeof(path), "/proc/%d/status", (int)tid);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	const char *p = strstr(buf, "\nTgid:");
	return p ? (pid_t)atoi(p + 6) : -1;
}

/* The caller's socket @fd: its cookie and inode. */
static int socket_of(pid_t tid, int fd, unsigned long long *cookie, unsigned long long *inode)
{
	_cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, tid, 0);
	/* A thread that is not its group's leader: EINVAL before 6.9, ENOENT since. */
	if (pidfd < 0 && (errno == EINVAL || errno == ENOENT)) {
		pid_t tgid = tgid_of(tid);
		if (tgid > 0)
			pidfd = (int)syscall(SYS_pidfd_open, tgid, 0);
	}
	if (pidfd < 0)
		return -errno;
	_cleanup_close_ int sock = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	if (sock < 0)
		return -errno;
	struct stat st;
	socklen_t len = sizeof(*cookie);
	if (fstat(sock, &st) < 0 || !S_ISSOCK(st.st_mode) ||
	    getsockopt(sock, SOL_SOCKET, SO_COOKIE, cookie, &len) < 0)
		return -ENOTSOCK;
	*inode = (unsigned long long)st.st_ino;
	return 0;
}

/* A connect(2) to look at: record its creator when it is headed for the proxy. */
static void inspect(int lfd, const struct seccomp_notif *req, struct px_ident *id)
{
	pid_t tid = (pid_t)req->pid;
	int fd = (int)req->data.args[0];
	unsigned int alen = (unsigned int)req->data.args[2];
	struct sockaddr_in6 sa;
	memset(&sa, 0, sizeof(sa));
	if (alen > sizeof(sa))
		alen = sizeof(sa);
	struct iovec local = {.iov_base = &sa, .iov_len = alen};
	struct iovec remote = {.iov_base = (void *)(uintptr_t)req->data.args[1], .iov_len = alen};
	if (alen < sizeof(struct sockaddr_in) ||
	    process_vm_readv(tid, &local, 1, &remote, 1, 0) != (ssize_t)alen ||
	    !sv_connmon_is_proxy(&sa, alen))
		return;
	unsigned long long cookie = 0, inode = 0;
	struct sv_err err = {0};
	int r = socket_of(tid, fd, &cookie, &inode);
	if (r == 0)
		r = px_ident_lineage(tid, getpid(), id, &err);
	else
		sv_err_set(&err, -r, "cannot take the socket (fd %d): %s", fd, strerror(-r));
	/* Still waiting in connect: the process did not exec or exit while being read. */
	if (r == 0 && ioctl(lfd, SECCOMP_IOCTL_NOTIF_ID_VALID, &req->id) < 0)
		r = sv_err_set(&err, ESTALE, "the caller left connect while being read");
	if (r == 0) {
		r = px_creator_put(id, tid, cookie, inode, now_ms());
		if (r == -EEXIST)
			r = 0;
		else if (r < 0)
			sv_err_set(&err, -r, "cannot record: %s", strerror(-r));
	}
	if (r < 0) {
		__atomic_add_fetch(&g_failed, 1, __ATOMIC_RELAXED);
		char pid[16];
		sv_fmt(pid, sizeof(pid), "%d", (int)tid);
		sv_log_kv(SV_LOG_DEBUG, COMP, "connect_unrecorded",
			  "a connect to the proxy was not recorded (its request will be denied)",
			  SV_KVS({"pid", pid}, {"error", err.msg}));
		return;
	}
	__atomic_add_fetch(&g_recorded, 1, __ATOMIC_RELAXED);
}

static void serve(int lfd, struct seccomp_notif *req, struct seccomp_notif_resp *resp,
		  struct px_ident *id)
{
	memset(req, 0, g_sizes.seccomp_notif);
	if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_RECV, req) < 0)
		return; /* ENOENT: the caller was interrupted or died */
	__atomic_add_fetch(&g_notes, 1, __ATOMIC_RELAXED);
	inspect(lfd, req, id);
	memset(resp, 0, g_sizes.seccomp_notif_resp);
	resp->id = req->id;
	resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
	(void)ioctl(lfd, SECCOMP_IOCTL_NOTIF_SEND, resp);
}

/* The thread's buffers, allocated before it starts (it must never stop once listeners exist:
 * their callers would wait in connect forever). */
static struct seccomp_notif *g_req;
static struct seccomp_notif_resp *g_resp;
static struct px_ident *g_id;

static void *monitor(void *arg)
{
	(void)arg;
	struct seccomp_notif *req = g_req;
	struct seccomp_notif_resp *resp = g_resp;
	struct px_ident *id = g_id;
	for (;;) {
		struct epoll_event ev[CM_EVENTS];
		int n = epoll_wait(g_ep, ev, CM_EVENTS, -1);
		for (int i = 0; i < n; i++) {
			int lfd = ev[i].data.fd;
			if (ev[i].events & EPOLLIN)
				serve(lfd, req, resp, id);
			else if (ev[i].events & (EPOLLHUP | EPOLLERR)) {
				/* Every process using this filter is gone. */
				(void)epoll_ctl(g_ep, EPOLL_CTL_DEL, lfd, NULL);
				close(lfd);
			}
		}
	}
	return NULL;
}

static void start_once(void)
{
	long r = syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &g_sizes);
	if (r < 0) {
		g_start_err = errno;
		return;
	}
	/* The kernel's structs may be larger than ours, never smaller. */
	if (g_sizes.seccomp_notif < sizeof(struct seccomp_notif))
		g_sizes.seccomp_notif = sizeof(struct seccomp_notif);
	if (g_sizes.seccomp_notif_resp < sizeof(struct seccomp_notif_resp))
		g_sizes.seccomp_notif_resp = sizeof(struct seccomp_notif_resp);
	g_req = calloc(1, g_sizes.seccomp_notif);
	g_resp = calloc(1, g_sizes.seccomp_notif_resp);
	g_id = malloc(sizeof(*g_id));
	if (!g_req || !g_resp || !g_id) {
		g_start_err = ENOMEM;
		return;
	}
	g_ep = epoll_create1(EPOLL_CLOEXEC);
	if (g_ep < 0) {
		g_start_err = errno;
		return;
	}
	pthread_attr_t a;
	pthread_t t;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&a, (size_t)256 * 1024);
	g_start_err = pthread_create(&t, &a, monitor, NULL);
	pthread_attr_destroy(&a);
	if (g_start_err) {
		close(g_ep);
		g_ep = -1;
	}
}

int sv_connmon_start(struct sv_err *err)
{
	pthread_once(&g_once, start_once);
	if (g_start_err)
		return sv_err_set(err, g_start_err, "connect monitor: %s", strerror(g_start_err));
	return 0;
}

void sv_connmon_add(int fd)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
	if (g_ep < 0 || epoll_ctl(g_ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		sv_warn(COMP, "listener_dropped",
			"connect monitor not running: this child's connects fail (ENOSYS)");
		close(fd);
	}
}

void sv_connmon_stats(struct sv_connmon_stats *out)
{
	out->notifications = __atomic_load_n(&g_notes, __ATOMIC_RELAXED);
	out->recorded = __atomic_load_n(&g_recorded, __ATOMIC_RELAXED);
	out->failed = __atomic_load_n(&g_failed, __ATOMIC_RELAXED);
}
