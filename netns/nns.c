/* The agent's network namespace: create it, configure it, enter and leave it, join it.
 *
 * Configuration goes through libnl-3 route (NETLINK_ROUTE) only: never exec `ip`, never use
 * libnl's classifier or classid helpers (they read /etc/libnl files). Every path out of
 * nns_create goes back to the supervisor's namespace. nns_join runs between fork and exec and
 * must stay a bare setns(2).
 */
#include "netns/netns.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>

#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>


#define NNS_LO_NAME	    "lo"
#define NNS_PROXY_PREFIXLEN 32 /* one address, no subnet route (docs/network.md) */
#define NNS_ENAME_MAX	    24

/* ---- error text ----------------------------------------------------------------------------- */

/* Fill @err with "<what>: <ENAME>[ (<cap> missing?)]" and return -@e. @cap names the
 * capability an EPERM most likely means, or NULL. */
static int nns_fail(struct sv_err *err, int e, const char *what, const char *cap)
{
	char buf[NNS_ENAME_MAX];
	bool hint = cap && (e == EPERM || e == EACCES);
	return sv_err_set(err, e, "%s: %s%s%s%s", what, sv_errno_ename(e, buf, sizeof(buf)),
			  hint ? " (" : "", hint ? cap : "", hint ? " missing?)" : "");
}

/* libnl returns its own negative NLE_* codes; turn them back into the errno the kernel sent
 * (inverse of nl_syserr2nlerr) so that callers see -errno like everywhere else. */
static int nns_nle_errno(int nle)
{
	switch (nle < 0 ? -nle : nle) {
	case NLE_PERM:
		return EPERM;
	case NLE_NOACCESS:
		return EACCES;
	case NLE_NOMEM:
		return ENOMEM;
	case NLE_EXIST:
		return EEXIST;
	case NLE_NOADDR:
		return EADDRNOTAVAIL;
	case NLE_OBJ_NOTFOUND:
		return ENOENT;
	case NLE_INTR:
		return EINTR;
	case NLE_AGAIN:
		return EAGAIN;
	case NLE_BAD_SOCK:
		return EBADF;
	case NLE_INVAL:
		return EINVAL;
	case NLE_AF_NOSUPPORT:
		return EAFNOSUPPORT;
	case NLE_PROTO_MISMATCH:
		return EPROTONOSUPPORT;
	case NLE_OPNOTSUPP:
		return EOPNOTSUPP;
	case NLE_BUSY:
		return EBUSY;
	case NLE_RANGE:
		return ERANGE;
	case NLE_NODEV:
		return ENODEV;
	default:
		return EIO; /* a libnl-side failure (parse, message size): no kernel errno */
	}
}

/* As nns_fail, for a libnl return code; libnl's own text is added when no errno fits. */
static int nns_fail_nl(struct sv_err *err, int nle, const char *what)
{
	int e = nns_nle_errno(nle);
	if (e != EIO)
		return nns_fail(err, e, what, "CAP_NET_ADMIN");
	return sv_err_set(err, e, "%s: EIO (libnl: %s)", what, nl_geterror(nle));
}

/* ---- libnl objects with cleanup ------------------------------------------------------------- */

static void nns_sock_freep(struct nl_sock **p)
{
	if (*p)
		nl_socket_free(*p); /* closes the socket too */
}

static void nns_link_putp(struct rtnl_link **p)
{
	if (*p)
		rtnl_link_put(*p);
}

static void nns_addr_putp(struct rtnl_addr **p)
{
	if (*p)
		rtnl_addr_put(*p);
}

static void nns_nladdr_putp(struct nl_addr **p)
{
	if (*p)
		nl_addr_put(*p);
}

#define _cleanup_nlsock_   __attribute__((cleanup(nns_sock_freep)))
#define _cleanup_nllink_   __attribute__((cleanup(nns_link_putp)))
#define _cleanup_nlrtaddr_ __attribute__((cleanup(nns_addr_putp)))
#define _cleanup_nladdr_   __attribute__((cleanup(nns_nladdr_putp)))

/* ---- the namespace -------------------------------------------------------------------------- */

/* An O_CLOEXEC fd for the calling thread's network namespace. /proc/thread-self is the thread's
 * own (namespaces are per thread); /proc/self is the fallback for a /proc mounted from another
 * PID namespace, where thread-self is missing. */
static int nns_open_current(const char *whose, struct sv_err *err)
{
	int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		return fd;
	int e = errno;
	char buf[NNS_ENAME_MAX];
	return sv_err_set(err, e, "cannot open %s network namespace (/proc/self/ns/net): %s%s",
			  whose, sv_errno_ename(e, buf, sizeof(buf)),
			  e == ENOENT ? " (/proc not mounted?)" : "");
}

/* Bring lo up and add NNS_PROXY_ADDR/32 to it, in the calling thread's namespace. */
static int nns_configure(struct sv_err *err)
{
	_cleanup_nlsock_ struct nl_sock *sk = nl_socket_alloc();
	if (!sk)
		return sv_err_set(err, ENOMEM, "cannot allocate a netlink socket: ENOMEM");
	int r = nl_connect(sk, NETLINK_ROUTE);
	if (r < 0)
		return nns_fail_nl(err, r,
				   "cannot open NETLINK_ROUTE in the agent network namespace");

	_cleanup_nllink_ struct rtnl_link *lo = NULL;
	r = rtnl_link_get_kernel(sk, 0, NNS_LO_NAME, &lo);
	if (r < 0)
		return nns_fail_nl(err, r, "cannot find lo in the agent network namespace");
	int ifindex = rtnl_link_get_ifindex(lo);

	_cleanup_nllink_ struct rtnl_link *change = rtnl_link_alloc();
	if (!change)
		return sv_err_set(err, ENOMEM, "cannot allocate a link change: ENOMEM");
	rtnl_link_set_flags(change, IFF_UP);
	r = rtnl_link_change(sk, lo, change, 0);
	if (r < 0)
		return nns_fail_nl(err, r, "cannot bring lo up in the agent network namespace");

	struct in_addr in;
	if (inet_pton(AF_INET, NNS_PROXY_ADDR, &in) != 1)
		return sv_err_set(err, EINVAL, "NNS_PROXY_ADDR is not an IPv4 literal");
	_cleanup_nladdr_ struct nl_addr *local = nl_addr_build(AF_INET, &in, sizeof(in));
	_cleanup_nlrtaddr_ struct rtnl_addr *addr = rtnl_addr_alloc();
	if (!local || !addr)
		return sv_err_set(err, ENOMEM, "cannot allocate the proxy address: ENOMEM");
	nl_addr_set_prefixlen(local, NNS_PROXY_PREFIXLEN);
	rtnl_addr_set_ifindex(addr, ifindex);
	r = rtnl_addr_set_local(addr, local);
	if (r < 0)
		return nns_fail_nl(err, r, "cannot build the proxy address");
	r = rtnl_addr_add(sk, addr, 0);
	if (r < 0)
		return nns_fail_nl(err, r,
				   "cannot add " NNS_PROXY_ADDR
				   "/32 to lo in the agent network namespace");
	return 0;
}

/* Inside the fresh namespace: open its fd into *@agent_fd, then configure it. */
static int nns_build_here(int *agent_fd, struct sv_err *err)
{
	*agent_fd = nns_open_current("the agent", err);
	if (*agent_fd < 0)
		return *agent_fd;
	return nns_configure(err);
}

int nns_create(struct nns *ns, struct sv_err *err)
{
	ns->self_fd = -1;
	ns->agent_fd = -1;

	_cleanup_close_ int self = nns_open_current("the supervisor's", err);
	if (self < 0)
		return self;
	if (unshare(CLONE_NEWNET) < 0)
		return nns_fail(err, errno, "cannot create the agent network namespace (unshare)",
				"CAP_SYS_ADMIN");

	/* In the new namespace from here: every path goes back before returning. */
	_cleanup_close_ int agent = -1;
	struct sv_err build_err = {0};
	int r = nns_build_here(&agent, &build_err);
	if (setns(self, CLONE_NEWNET) < 0) {
		int e = errno;
		char buf[NNS_ENAME_MAX];
		return sv_err_set(
		    err, e, "cannot return to the supervisor's network namespace (setns): %s%s%s",
		    sv_errno_ename(e, buf, sizeof(buf)), r < 0 ? "; before that: " : "",
		    r < 0 ? build_err.msg : "");
	}
	if (r < 0) {
		if (err)
			*err = build_err;
		return r;
	}
	ns->self_fd = sv_steal_fd(&self);
	ns->agent_fd = sv_steal_fd(&agent);
	return 0;
}

static int nns_setns(int fd)
{
	if (fd < 0)
		return -EBADF;
	return setns(fd, CLONE_NEWNET) < 0 ? -errno : 0;
}

int nns_enter(const struct nns *ns)
{
	return nns_setns(ns->agent_fd);
}

int nns_leave(const struct nns *ns)
{
	return nns_setns(ns->self_fd);
}

int nns_join(const struct nns *ns)
{
	return nns_setns(ns->agent_fd); /* async-signal-safe: one system call, no errno games */
}

void nns_close(struct nns *ns)
{
	if (ns->self_fd >= 0)
		close(ns->self_fd);
	if (ns->agent_fd >= 0)
		close(ns->agent_fd);
	ns->self_fd = -1;
	ns->agent_fd = -1;
}

/* ---- the proxy's listener ------------------------------------------------------------------- */

int nns_listen_tcp(const struct nns *ns, const char *addr, uint16_t port, int backlog,
		   struct sv_err *err)
{
	struct sockaddr_storage ss = {0};
	socklen_t len;
	struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
	bool is_v6 = false;
	if (addr && inet_pton(AF_INET, addr, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons(port);
		len = sizeof(*v4);
	} else if (addr && inet_pton(AF_INET6, addr, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons(port);
		len = sizeof(*v6);
		is_v6 = true;
	} else {
		return sv_err_set(err, EINVAL,
				  "proxy listen address '%s' is not an IPv4 or IPv6 literal",
				  addr ? addr : "(null)");
	}
	char where[80];
	sv_fmt(where, sizeof(where), is_v6 ? "[%s]:%u" : "%s:%u", addr, (unsigned)port);

	int r = nns_enter(ns);
	if (r < 0)
		return nns_fail(err, -r, "cannot enter the agent network namespace (setns)",
				"CAP_SYS_ADMIN");
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int socket_errno = errno;
	r = nns_leave(ns);
	if (r < 0) {
		if (fd >= 0)
			close(fd);
		return nns_fail(err, -r,
				"cannot return to the supervisor's network namespace (setns)",
				"CAP_SYS_ADMIN");
	}
	if (fd < 0)
		return nns_fail(err, socket_errno,
				"cannot create the proxy socket in the agent network namespace",
				NULL);

	_cleanup_close_ int sfd = fd;
	int one = 1;
	if (setsockopt(sfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		return nns_fail(err, errno, "cannot set SO_REUSEADDR on the proxy socket", NULL);
	if (bind(sfd, (struct sockaddr *)&ss, len) < 0) {
		char what[160];
		sv_fmt(what, sizeof(what),
		       "cannot bind the proxy to %s in the agent network namespace", where);
		return nns_fail(err, errno, what, NULL);
	}
	if (listen(sfd, backlog) < 0) {
		char what[160];
		sv_fmt(what, sizeof(what), "cannot listen on %s in the agent network namespace",
		       where);
		return nns_fail(err, errno, what, NULL);
	}
	return sv_steal_fd(&sfd);
}

/* ---- the agent's proxy environment ---------------------------------------------------------- */

/* Contract §6.2, upstream's order. */
static const struct nns_env_var nns_proxy_vars[NNS_PROXY_ENV_COUNT] = {
    {"ALL_PROXY", NNS_PROXY_URL},
    {"HTTP_PROXY", NNS_PROXY_URL},
    {"HTTPS_PROXY", NNS_PROXY_URL},
    {"http_proxy", NNS_PROXY_URL},
    {"https_proxy", NNS_PROXY_URL},
    {"grpc_proxy", NNS_PROXY_URL},
    {"NO_PROXY", "127.0.0.1,localhost,::1"},
    {"no_proxy", "127.0.0.1,localhost,::1"},
    {"NODE_USE_ENV_PROXY", "1"},
};

const struct nns_env_var *nns_proxy_env(size_t *n)
{
	*n = SV_ARRAY_SIZE(nns_proxy_vars);
	return nns_proxy_vars;
}
