/* Egress proxy: the client socket's inode through NETLINK_SOCK_DIAG in the agent's namespace.
 *
 * One exact-tuple lookup (inet_diag, no dump) instead of reading the whole /proc/<pid>/net/tcp
 * table, whose cost grows with every socket and TIME_WAIT entry of the agent. The netlink socket
 * is made once, inside the listener's namespace, by a short-lived thread, so no thread of the
 * supervisor ever stays in the agent's namespace. Lookups are serialised by one mutex.
 */
#include "netns/proxy/px_ident.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef SIOCGSKNS
#define SIOCGSKNS 0x894C
#endif

struct px_diag {
	pthread_mutex_t lock;
	int fd;
	uint32_t seq;
};

struct maker {
	int nsfd;
	int fd, err;
};

/* A throw-away thread joins the namespace, makes the socket, and exits with its namespace. */
static void *maker_main(void *arg)
{
	struct maker *m = arg;
	if (setns(m->nsfd, CLONE_NEWNET) < 0) {
		m->err = errno;
		return NULL;
	}
	m->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (m->fd < 0)
		m->err = errno;
	return NULL;
}

int px_diag_open(int sock_in_ns, struct px_diag **out, struct sv_err *err)
{
	int nsfd = ioctl(sock_in_ns, SIOCGSKNS);
	if (nsfd < 0)
		return sv_err_set(err, errno, "SIOCGSKNS on the listener: %s", strerror(errno));
	struct maker m = {.nsfd = nsfd, .fd = -1};
	pthread_t t;
	int r = pthread_create(&t, NULL, maker_main, &m);
	if (r != 0) {
		close(nsfd);
		return sv_err_set(err, r, "cannot start a thread: %s", strerror(r));
	}
	pthread_join(t, NULL);
	close(nsfd);
	if (m.fd < 0)
		return sv_err_set(err, m.err, "sock_diag socket in the agent namespace: %s",
				  strerror(m.err));
	struct px_diag *d = calloc(1, sizeof(*d));
	if (!d) {
		close(m.fd);
		return sv_err_set(err, ENOMEM, "out of memory");
	}
	pthread_mutex_init(&d->lock, NULL);
	d->fd = m.fd;
	*out = d;
	return 0;
}

void px_diag_close(struct px_diag *d)
{
	if (!d)
		return;
	close(d->fd);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

/* The address of @sa into @id (network order), its family into *@family. A v4-mapped IPv6
 * address asks as IPv4: the kernel hashes such connections with the IPv4 ones. */
static int id_addr(const struct sockaddr *sa, socklen_t len, __be32 out[4], __be16 *port,
		   int *family)
{
	memset(out, 0, 16);
	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		struct sockaddr_in sin;
		memcpy(&sin, sa, sizeof(sin));
		memcpy(&out[0], &sin.sin_addr, 4);
		*port = sin.sin_port;
		*family = AF_INET;
		return 0;
	}
	if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 sin6;
		memcpy(&sin6, sa, sizeof(sin6));
		*port = sin6.sin6_port;
		if (IN6_IS_ADDR_V4MAPPED(&sin6.sin6_addr)) {
			memcpy(&out[0], &sin6.sin6_addr.s6_addr[12], 4);
			*family = AF_INET;
		} else {
			memcpy(out, &sin6.sin6_addr, 16);
			*family = AF_INET6;
		}
		return 0;
	}
	return -EAFNOSUPPORT;
}

/* Send one request and read its answer (lock held). 0 and *@inode, *@cookie, or -errno. */
static int roundtrip(int fd, const void *req, size_t len, uint32_t seq, unsigned long long *inode,
		     unsigned long long *cookie)
{
	union {
		struct nlmsghdr h;
		char buf[8192];
	} resp;
	if (send(fd, req, len, MSG_NOSIGNAL) != (ssize_t)len)
		return -errno;
	/* The kernel answers within send(): the reply is queued already. Older replies (none are
	 * expected) are skipped by sequence number. */
	for (;;) {
		ssize_t n = recv(fd, resp.buf, sizeof(resp.buf), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? -EIO : -errno;
		struct nlmsghdr *h = &resp.h;
		size_t left = (size_t)n;
		for (; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
			if (h->nlmsg_seq != seq)
				continue;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);
				return h->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) && e->error < 0
					       ? e->error
					       : -EIO;
			}
			if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
			    h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
				return -EIO;
			const struct inet_diag_msg *m = NLMSG_DATA(h);
			/* An exact lookup also finds TIME_WAIT and request minisockets. */
			if (m->idiag_state != TCP_ESTABLISHED || m->idiag_inode == 0)
				return -ENOENT;
			*inode = m->idiag_inode;
			*cookie = (unsigned long long)m->id.idiag_cookie[0] |
				  (unsigned long long)m->id.idiag_cookie[1] << 32;
			return 0;
		}
	}
}

int px_diag_socket_inode(struct px_diag *d, const struct sockaddr *client, socklen_t client_len,
			 const struct sockaddr *proxy, socklen_t proxy_len,
			 unsigned long long *inode, unsigned long long *cookie, struct sv_err *err)
{
	unsigned long long ck = 0;
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 r;
	} req;
	memset(&req, 0, sizeof(req));
	int cf, pf;
	if (id_addr(client, client_len, req.r.id.idiag_src, &req.r.id.idiag_sport, &cf) < 0 ||
	    id_addr(proxy, proxy_len, req.r.id.idiag_dst, &req.r.id.idiag_dport, &pf) < 0 ||
	    cf != pf)
		return sv_err_set(err, EAFNOSUPPORT, "unsupported or mismatched socket addresses");
	req.nlh.nlmsg_len = sizeof(req);
	req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.nlh.nlmsg_flags = NLM_F_REQUEST;
	req.r.sdiag_family = (uint8_t)cf;
	req.r.sdiag_protocol = IPPROTO_TCP;
	req.r.idiag_states = ~0u;
	req.r.id.idiag_cookie[0] = req.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;

	pthread_mutex_lock(&d->lock);
	req.nlh.nlmsg_seq = ++d->seq;
	int r = roundtrip(d->fd, &req, sizeof(req), req.nlh.nlmsg_seq, inode, &ck);
	pthread_mutex_unlock(&d->lock);
	if (r == -ENOENT)
		return sv_err_set(err, ENOENT, "no ESTABLISHED TCP connection with that tuple");
	if (r < 0)
		return sv_err_set(err, -r, "sock_diag lookup: %s", strerror(-r));
	if (cookie)
		*cookie = ck;
	return 0;
}
