/* Unit tests for netns/nns.c: the agent's network namespace on the running kernel.
 *
 * Every test runs in Check's forked child (fork mode is forced), so moving between namespaces
 * or dropping capabilities cannot leak into the next test. "Agent" probes run in a grandchild
 * that joined the namespace with nns_join(), as the agent will, and report their first
 * mismatch as text. Needs root; without it the suite skips (fails under CI=true).
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/capability.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "netns/netns.h"

#define MSG_MAX	  512
#define FAST_US	  100000 /* the "fails fast": < 100 ms */
#define MAX_ADDRS 32

/* ---- helpers -------------------------------------------------------------------------------- */

static bool ci_strict(void)
{
	const char *ci = getenv("CI");
	return ci && !strcmp(ci, "true");
}

static long long now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The inode of the calling thread's network namespace. */
static ino_t cur_netns(void)
{
	struct stat st;
	ck_assert_int_eq(stat("/proc/thread-self/ns/net", &st), 0);
	return st.st_ino;
}

static ino_t fd_ino(int fd)
{
	struct stat st;
	ck_assert_int_eq(fstat(fd, &st), 0);
	return st.st_ino;
}

static void must_create(struct nns *ns)
{
	struct sv_err err = {0};
	int r = nns_create(ns, &err);
	ck_assert_msg(r == 0, "nns_create: %d: %s", r, err.msg);
}

static void lose_cap(int cap)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2] = {{0}};
	ck_assert_int_eq(syscall(SYS_capget, &h, d), 0);
	d[cap / 32].effective &= ~(1U << (cap % 32));
	d[cap / 32].permitted &= ~(1U << (cap % 32));
	ck_assert_int_eq(syscall(SYS_capset, &h, d), 0);
}

/* Record the first failure only. */
static void failf(char *msg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void failf(char *msg, const char *fmt, ...)
{
	if (msg[0])
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, MSG_MAX, fmt, ap);
	va_end(ap);
}

static const char *addr_str(const struct sockaddr_storage *ss, char *buf, size_t size)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
		port = ntohs(a->sin_port);
		snprintf(buf, size, "%s:%u", ip, port);
	} else {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
		port = ntohs(a->sin6_port);
		snprintf(buf, size, "[%s]:%u", ip, port);
	}
	return buf;
}

static struct sockaddr_storage sa_make(const char *ip, unsigned port)
{
	struct sockaddr_storage ss = {0};
	struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)port);
	} else {
		ck_assert_int_eq(inet_pton(AF_INET6, ip, &v6->sin6_addr), 1);
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)port);
	}
	return ss;
}

static socklen_t sa_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

/* Non-blocking connect to @ss, waiting at most @wait_ms. Returns 0 when connected, else the
 * errno (ETIMEDOUT when still pending). @us gets the time taken. @fd_out (may be NULL) keeps
 * the socket, else it is closed. */
static int try_connect(const struct sockaddr_storage *ss, int type, int wait_ms, long long *us,
		       int *fd_out)
{
	long long t0 = now_us();
	int fd = socket(ss->ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	int e = 0;
	if (connect(fd, (const struct sockaddr *)ss, sa_len(ss)) < 0) {
		e = errno;
		if (e == EINPROGRESS) {
			struct pollfd p = {.fd = fd, .events = POLLOUT};
			int n = poll(&p, 1, wait_ms);
			socklen_t l = sizeof(e);
			if (n == 0)
				e = ETIMEDOUT;
			else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l) < 0)
				e = errno;
		}
	}
	*us = now_us() - t0;
	if (fd_out && e == 0)
		*fd_out = fd;
	else
		close(fd);
	return e;
}

/* Accept one pending connection on non-blocking @lfd, waiting at most @wait_ms; -errno. */
static int accept_within(int lfd, int wait_ms)
{
	struct pollfd p = {.fd = lfd, .events = POLLIN};
	if (wait_ms > 0)
		poll(&p, 1, wait_ms);
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* ---- the agent side ------------------------------------------------------------------------- */

typedef void (*agent_fn)(void *ctx, char *msg);

/* Fork a child that joins @ns with nns_join() and runs @fn; fail with its message, if any. */
static void in_agent(const struct nns *ns, agent_fn fn, void *ctx)
{
	int p[2];
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char msg[MSG_MAX] = "";
		close(p[0]);
		int r = nns_join(ns);
		if (r < 0)
			failf(msg, "nns_join: %s", strerror(-r));
		else
			fn(ctx, msg);
		if (write(p[1], msg, strlen(msg)) < 0)
			_exit(3);
		_exit(0);
	}
	close(p[1]);
	char msg[MSG_MAX] = "";
	size_t n = 0;
	for (;;) {
		ssize_t k = read(p[0], msg + n, sizeof(msg) - 1 - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		n += (size_t)k;
	}
	msg[n] = '\0';
	close(p[0]);
	int st = 0;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "agent child ended with status 0x%x",
		      st);
	ck_assert_msg(msg[0] == '\0', "in the agent namespace: %s", msg);
}

/* ---- creation ------------------------------------------------------------------------------- */

START_TEST(create_returns_the_caller_to_its_original_namespace)
{
	ino_t before = cur_netns();
	struct nns ns = NNS_INIT;
	must_create(&ns);
	ck_assert_uint_eq(cur_netns(), before);
	ck_assert_uint_eq(fd_ino(ns.self_fd), before);
	ck_assert_uint_ne(fd_ino(ns.agent_fd), before);
	ck_assert_int_eq(fcntl(ns.self_fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	ck_assert_int_eq(fcntl(ns.agent_fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	nns_close(&ns);
	ck_assert_int_eq(ns.self_fd, -1);
	ck_assert_int_eq(ns.agent_fd, -1);
}
END_TEST

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return (x > y) - (x < y);
}

START_TEST(create_takes_well_under_a_second)
{
	enum { RUNS = 20 };
	long long us[RUNS];
	for (int i = 0; i < RUNS; i++) {
		struct nns ns = NNS_INIT;
		long long t0 = now_us();
		must_create(&ns);
		us[i] = now_us() - t0;
		nns_close(&ns);
	}
	qsort(us, RUNS, sizeof(us[0]), cmp_ll);
	fprintf(stderr, "nns_create: min %lld us, median %lld us, max %lld us (%d runs)\n", us[0],
		us[RUNS / 2], us[RUNS - 1], RUNS);
	ck_assert_msg(us[RUNS / 2] < 500000, "median nns_create %lld us", us[RUNS / 2]);
}
END_TEST

START_TEST(enter_and_leave_switch_between_the_two_namespaces)
{
	ino_t before = cur_netns();
	struct nns ns = NNS_INIT;
	must_create(&ns);
	ck_assert_int_eq(nns_enter(&ns), 0);
	ck_assert_uint_eq(cur_netns(), fd_ino(ns.agent_fd));
	ck_assert_int_eq(nns_leave(&ns), 0);
	ck_assert_uint_eq(cur_netns(), before);
	nns_close(&ns);
}
END_TEST

START_TEST(uncreated_namespace_fails_closed)
{
	ino_t before = cur_netns();
	struct nns ns = NNS_INIT;
	ck_assert_int_eq(nns_join(&ns), -EBADF);
	ck_assert_int_eq(nns_enter(&ns), -EBADF);
	struct sv_err err = {0};
	ck_assert_int_lt(nns_listen_tcp(&ns, NNS_PROXY_ADDR, NNS_PROXY_PORT, 8, &err), 0);
	ck_assert_uint_eq(cur_netns(), before);
	/* nns_close on NNS_INIT must not close fd 0. */
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(dup2(p[0], 0), 0);
	nns_close(&ns);
	ck_assert_int_ge(fcntl(0, F_GETFD), 0);
}
END_TEST

START_TEST(create_without_cap_net_admin_names_the_step_and_returns)
{
	ino_t before = cur_netns();
	lose_cap(CAP_NET_ADMIN);
	struct nns ns = NNS_INIT;
	struct sv_err err = {0};
	int r = nns_create(&ns, &err);
	ck_assert_int_eq(r, -EPERM);
	ck_assert_int_eq(err.code, EPERM);
	ck_assert_msg(strstr(err.msg, "cannot bring lo up in the agent network namespace: EPERM "
				      "(CAP_NET_ADMIN missing?)"),
		      "message: %s", err.msg);
	ck_assert_uint_eq(cur_netns(), before);
	ck_assert_int_eq(ns.self_fd, -1);
	ck_assert_int_eq(ns.agent_fd, -1);
}
END_TEST

START_TEST(create_without_cap_sys_admin_fails_at_unshare)
{
	ino_t before = cur_netns();
	lose_cap(CAP_SYS_ADMIN);
	struct nns ns = NNS_INIT;
	struct sv_err err = {0};
	ck_assert_int_eq(nns_create(&ns, &err), -EPERM);
	ck_assert_msg(strstr(err.msg, "(unshare): EPERM (CAP_SYS_ADMIN missing?)"), "message: %s",
		      err.msg);
	ck_assert_uint_eq(cur_netns(), before);
	ck_assert_int_eq(ns.agent_fd, -1);
}
END_TEST

/* ---- what the agent sees -------------------------------------------------------------------- */

static void probe_addresses(void *ctx, char *msg)
{
	(void)ctx;
	struct ifaddrs *ifa = NULL;
	if (getifaddrs(&ifa) < 0) {
		failf(msg, "getifaddrs: %s", strerror(errno));
		return;
	}
	bool lo_up = false, has_loopback = false, has_proxy = false;
	for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
		if (!strcmp(i->ifa_name, "lo") && (i->ifa_flags & IFF_UP))
			lo_up = true;
		if (!i->ifa_addr ||
		    (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6))
			continue;
		if (strcmp(i->ifa_name, "lo") != 0)
			failf(msg, "interface %s carries an address", i->ifa_name);
		if (i->ifa_addr->sa_family != AF_INET)
			continue;
		char ip[INET_ADDRSTRLEN];
		const struct sockaddr_in *a = (const struct sockaddr_in *)i->ifa_addr;
		const struct sockaddr_in *m = (const struct sockaddr_in *)i->ifa_netmask;
		inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
		if (!strcmp(ip, "127.0.0.1"))
			has_loopback = true;
		if (!strcmp(ip, NNS_PROXY_ADDR)) {
			has_proxy = true;
			if (!m || m->sin_addr.s_addr != 0xffffffffU)
				failf(msg, NNS_PROXY_ADDR " is not a /32");
		}
	}
	freeifaddrs(ifa);
	if (!lo_up)
		failf(msg, "lo is not up");
	if (!has_loopback)
		failf(msg, "lo has no 127.0.0.1");
	if (!has_proxy)
		failf(msg, "lo has no " NNS_PROXY_ADDR);
}

START_TEST(agent_sees_lo_up_with_loopback_and_proxy_address_only)
{
	struct nns ns = NNS_INIT;
	must_create(&ns);
	in_agent(&ns, probe_addresses, NULL);
	nns_close(&ns);
}
END_TEST

/* RTM_GETLINK dump over a raw NETLINK_ROUTE socket, as `ip link` does. */
static void probe_netlink(void *ctx, char *msg)
{
	(void)ctx;
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0) {
		failf(msg, "socket(NETLINK_ROUTE): %s", strerror(errno));
		return;
	}
	struct {
		struct nlmsghdr nh;
		struct ifinfomsg ifi;
	} req = {
	    .nh = {.nlmsg_len = sizeof(req),
		   .nlmsg_type = RTM_GETLINK,
		   .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
		   .nlmsg_seq = 1},
	    .ifi = {.ifi_family = AF_UNSPEC},
	};
	if (send(fd, &req, sizeof(req), 0) != (ssize_t)sizeof(req)) {
		failf(msg, "send RTM_GETLINK: %s", strerror(errno));
		close(fd);
		return;
	}
	static char buf[32768] __attribute__((aligned(NLMSG_ALIGNTO)));
	bool done = false, saw_lo = false;
	while (!done) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0) {
			failf(msg, "recv: %s", n < 0 ? strerror(errno) : "EOF");
			break;
		}
		size_t left = (size_t)n;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, left);
		     h = NLMSG_NEXT(h, left)) {
			if (h->nlmsg_type == NLMSG_DONE) {
				done = true;
				break;
			}
			if (h->nlmsg_type == NLMSG_ERROR) {
				failf(msg, "RTM_GETLINK answered with an error");
				done = true;
				break;
			}
			if (h->nlmsg_type != RTM_NEWLINK)
				continue;
			struct ifinfomsg *ifi = NLMSG_DATA(h);
			const char *name = "?";
			int alen = (int)IFLA_PAYLOAD(h);
			for (struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, alen);
			     a = RTA_NEXT(a, alen))
				if (a->rta_type == IFLA_IFNAME)
					name = RTA_DATA(a);
			if (!strcmp(name, "lo")) {
				saw_lo = true;
				if (!(ifi->ifi_flags & IFF_UP))
					failf(msg, "netlink reports lo down");
			} else if (ifi->ifi_flags & IFF_UP) {
				failf(msg, "netlink reports another link up: %s", name);
			}
		}
	}
	close(fd);
	if (!saw_lo)
		failf(msg, "RTM_GETLINK did not list lo");
}

START_TEST(netlink_route_lists_lo_inside)
{
	struct nns ns = NNS_INIT;
	must_create(&ns);
	in_agent(&ns, probe_netlink, NULL);
	nns_close(&ns);
}
END_TEST

/* ---- the proxy's listener ------------------------------------------------------------------- */

static void probe_connect_proxy(void *ctx, char *msg)
{
	(void)ctx;
	struct sockaddr_storage ss = sa_make(NNS_PROXY_ADDR, NNS_PROXY_PORT);
	long long us;
	int fd = -1;
	int e = try_connect(&ss, SOCK_STREAM, 2000, &us, &fd);
	if (e) {
		failf(msg, "connect to the proxy: %s", strerror(e));
		return;
	}
	if (write(fd, "ping", 4) != 4)
		failf(msg, "write: %s", strerror(errno));
	close(fd);
}

START_TEST(listener_accepts_connections_from_a_joined_child)
{
	ino_t before = cur_netns();
	struct nns ns = NNS_INIT;
	must_create(&ns);
	struct sv_err err = {0};
	int lfd = nns_listen_tcp(&ns, NNS_PROXY_ADDR, NNS_PROXY_PORT, 16, &err);
	ck_assert_msg(lfd >= 0, "nns_listen_tcp: %s", err.msg);
	ck_assert_uint_eq(cur_netns(), before);
	ck_assert_int_eq(fcntl(lfd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	ck_assert_int_eq(fcntl(lfd, F_GETFL) & O_NONBLOCK, O_NONBLOCK);
	int one = 0;
	socklen_t l = sizeof(one);
	ck_assert_int_eq(getsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, &l), 0);
	ck_assert_int_ne(one, 0);

	in_agent(&ns, probe_connect_proxy, NULL);
	int cfd = accept_within(lfd, 2000);
	ck_assert_msg(cfd >= 0, "accept: %s", strerror(-cfd));
	char buf[8] = "";
	ck_assert_int_eq(read(cfd, buf, sizeof(buf)), 4);
	ck_assert_mem_eq(buf, "ping", 4);
	struct sockaddr_storage peer;
	l = sizeof(peer);
	ck_assert_int_eq(getpeername(cfd, (struct sockaddr *)&peer, &l), 0);
	char s[64];
	addr_str(&peer, s, sizeof(s));
	ck_assert_msg(!strncmp(s, NNS_PROXY_ADDR ":", strlen(NNS_PROXY_ADDR) + 1), "peer %s", s);
	close(cfd);
	close(lfd);
	nns_close(&ns);
}
END_TEST

/* From the container's namespace 10.200.0.1 is just another remote address: the connect may fail,
 * hang, or (behind a network that answers every SYN, as on some CI hosts) even succeed, but it
 * never reaches the listener that lives in the agent's namespace. */
START_TEST(proxy_listener_is_not_reachable_from_the_original_namespace)
{
	struct nns ns = NNS_INIT;
	must_create(&ns);
	struct sv_err err = {0};
	int lfd = nns_listen_tcp(&ns, NNS_PROXY_ADDR, NNS_PROXY_PORT, 16, &err);
	ck_assert_msg(lfd >= 0, "nns_listen_tcp: %s", err.msg);
	struct sockaddr_storage ss = sa_make(NNS_PROXY_ADDR, NNS_PROXY_PORT);
	long long us;
	int fd = -1;
	int e = try_connect(&ss, SOCK_STREAM, 300, &us, &fd);
	if (e == 0) {
		ck_assert_int_eq(write(fd, "ping", 4), 4);
		close(fd);
	}
	ck_assert_int_eq(accept_within(lfd, 300), -EAGAIN);
	close(lfd);
	nns_close(&ns);
}
END_TEST

START_TEST(listen_failures_name_the_step_and_leave_the_namespace)
{
	ino_t before = cur_netns();
	struct nns ns = NNS_INIT;
	must_create(&ns);
	struct sv_err err = {0};
	int lfd = nns_listen_tcp(&ns, NNS_PROXY_ADDR, NNS_PROXY_PORT, 16, &err);
	ck_assert_msg(lfd >= 0, "nns_listen_tcp: %s", err.msg);

	ck_assert_int_eq(nns_listen_tcp(&ns, NNS_PROXY_ADDR, NNS_PROXY_PORT, 16, &err),
			 -EADDRINUSE);
	ck_assert_msg(strstr(err.msg, "cannot bind the proxy to 10.200.0.1:3128 in the agent "
				      "network namespace: EADDRINUSE"),
		      "message: %s", err.msg);
	ck_assert_uint_eq(cur_netns(), before);

	ck_assert_int_eq(nns_listen_tcp(&ns, "proxy.local", 1, 16, &err), -EINVAL);
	ck_assert_msg(strstr(err.msg, "'proxy.local'"), "message: %s", err.msg);
	ck_assert_uint_eq(cur_netns(), before);

	/* The container's address does not exist in the agent namespace. */
	ck_assert_int_eq(nns_listen_tcp(&ns, "192.0.2.2", 1, 16, &err), -EADDRNOTAVAIL);
	ck_assert_uint_eq(cur_netns(), before);
	close(lfd);
	nns_close(&ns);
}
END_TEST

/* ---- nothing else is reachable -------------------------------------------------------------- */

static void probe_unreachable(void *ctx, char *msg)
{
	(void)ctx;
	static const char *const tcp[] = {"192.0.2.1:80", "8.8.8.8:443", "10.200.0.2:3128",
					  "169.254.169.254:80", "2001:4860:4860::8888:53"};
	for (size_t i = 0; i < sizeof(tcp) / sizeof(tcp[0]); i++) {
		char ip[64];
		snprintf(ip, sizeof(ip), "%s", tcp[i]);
		char *colon = strrchr(ip, ':');
		*colon = '\0';
		struct sockaddr_storage ss = sa_make(ip, (unsigned)atoi(colon + 1));
		long long us;
		int e = try_connect(&ss, SOCK_STREAM, 1000, &us, NULL);
		if (e == EAFNOSUPPORT && ss.ss_family == AF_INET6)
			continue; /* no IPv6 in this kernel: nothing to reach either */
		if (e != ENETUNREACH)
			failf(msg, "TCP %s: %s, want ENETUNREACH", tcp[i],
			      e ? strerror(e) : "connected");
		else if (us >= FAST_US)
			failf(msg, "TCP %s took %lld us", tcp[i], us);
	}
	/* UDP (DNS) goes nowhere. */
	struct sockaddr_storage dns = sa_make("8.8.8.8", 53);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	long long t0 = now_us();
	ssize_t n = sendto(fd, "q", 1, 0, (struct sockaddr *)&dns, sa_len(&dns));
	int e = n < 0 ? errno : 0;
	long long us = now_us() - t0;
	close(fd);
	if (e != ENETUNREACH)
		failf(msg, "UDP 8.8.8.8:53: %s, want ENETUNREACH", e ? strerror(e) : "sent");
	else if (us >= FAST_US)
		failf(msg, "UDP 8.8.8.8:53 took %lld us", us);
	/* Other ports of the proxy's own address are refused at once. */
	struct sockaddr_storage other = sa_make(NNS_PROXY_ADDR, NNS_PROXY_PORT + 1);
	e = try_connect(&other, SOCK_STREAM, 1000, &us, NULL);
	if (e != ECONNREFUSED)
		failf(msg, NNS_PROXY_ADDR ":3129: %s, want ECONNREFUSED",
		      e ? strerror(e) : "connected");
	else if (us >= FAST_US)
		failf(msg, NNS_PROXY_ADDR ":3129 took %lld us", us);
}

START_TEST(other_destinations_fail_fast_inside)
{
	struct nns ns = NNS_INIT;
	must_create(&ns);
	in_agent(&ns, probe_unreachable, NULL);
	nns_close(&ns);
}
END_TEST

struct host_addrs {
	struct sockaddr_storage a[MAX_ADDRS];
	size_t n;
};

static void probe_host_listeners(void *ctx, char *msg)
{
	const struct host_addrs *h = ctx;
	for (size_t i = 0; i < h->n; i++) {
		char s[80];
		long long us;
		int e = try_connect(&h->a[i], SOCK_STREAM, 1000, &us, NULL);
		addr_str(&h->a[i], s, sizeof(s));
		if (e == 0 || e == ETIMEDOUT)
			failf(msg, "%s: %s", s, e ? "no answer within 1 s" : "connected");
		else if (us >= FAST_US)
			failf(msg, "%s: %s after %lld us", s, strerror(e), us);
	}
}

/* A listener on the wildcard address of @family in the current namespace; its port in *@port. */
static int wildcard_listener(int family, unsigned *port)
{
	int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_storage ss = sa_make(family == AF_INET ? "0.0.0.0" : "::", 0);
	int one = 1;
	if (family == AF_INET6)
		ck_assert_int_eq(setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)), 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&ss, sa_len(&ss)), 0);
	ck_assert_int_eq(listen(fd, 64), 0);
	socklen_t l = sizeof(ss);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&ss, &l), 0);
	*port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					: ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
}

START_TEST(container_wildcard_listeners_are_unreachable_inside)
{
	unsigned p4 = 0, p6 = 0;
	int l4 = wildcard_listener(AF_INET, &p4);
	ck_assert_int_ge(l4, 0);
	int l6 = wildcard_listener(AF_INET6, &p6); /* < 0 without IPv6: then only IPv4 */

	/* Every address of the container's namespace, on the matching listener's port. */
	struct host_addrs h = {.n = 0};
	struct ifaddrs *ifa = NULL;
	ck_assert_int_eq(getifaddrs(&ifa), 0);
	for (struct ifaddrs *i = ifa; i && h.n < MAX_ADDRS; i = i->ifa_next) {
		if (!i->ifa_addr)
			continue;
		if (i->ifa_addr->sa_family == AF_INET) {
			memcpy(&h.a[h.n], i->ifa_addr, sizeof(struct sockaddr_in));
			((struct sockaddr_in *)&h.a[h.n++])->sin_port = htons((uint16_t)p4);
		} else if (i->ifa_addr->sa_family == AF_INET6 && l6 >= 0) {
			const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)i->ifa_addr;
			if (IN6_IS_ADDR_LINKLOCAL(&a->sin6_addr))
				continue; /* needs a scope id naming a link the agent does not have
					   */
			memcpy(&h.a[h.n], a, sizeof(*a));
			((struct sockaddr_in6 *)&h.a[h.n++])->sin6_port = htons((uint16_t)p6);
		}
	}
	freeifaddrs(ifa);
	ck_assert_uint_ge(h.n, 1);

	/* Control: from the container's namespace every one of them connects. */
	for (size_t i = 0; i < h.n; i++) {
		long long us;
		int fd = -1;
		char s[80];
		int e = try_connect(&h.a[i], SOCK_STREAM, 1000, &us, &fd);
		ck_assert_msg(e == 0, "control connect to %s: %s", addr_str(&h.a[i], s, sizeof(s)),
			      strerror(e));
		close(fd);
		int lfd = h.a[i].ss_family == AF_INET ? l4 : l6;
		int c = accept_within(lfd, 1000);
		ck_assert_int_ge(c, 0);
		close(c);
	}

	struct nns ns = NNS_INIT;
	must_create(&ns);
	in_agent(&ns, probe_host_listeners, &h);
	ck_assert_int_eq(accept_within(l4, 0), -EAGAIN);
	if (l6 >= 0) {
		ck_assert_int_eq(accept_within(l6, 0), -EAGAIN);
		close(l6);
	}
	close(l4);
	nns_close(&ns);
}
END_TEST

static void probe_abstract(void *ctx, char *msg)
{
	const struct sockaddr_un *sun = ctx;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	socklen_t len =
	    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(sun->sun_path + 1));
	if (connect(fd, (const struct sockaddr *)sun, len) == 0)
		failf(msg, "connected to the supervisor's abstract socket");
	else if (errno != ECONNREFUSED)
		failf(msg, "abstract connect: %s, want ECONNREFUSED", strerror(errno));
	close(fd);
}

START_TEST(container_abstract_unix_sockets_are_hidden_inside)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	snprintf(sun.sun_path + 1, sizeof(sun.sun_path) - 1, "nns-test-%d", (int)getpid());
	socklen_t len =
	    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(sun.sun_path + 1));
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sun, len), 0);
	ck_assert_int_eq(listen(lfd, 4), 0);
	int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(connect(c, (struct sockaddr *)&sun, len), 0); /* control */
	close(c);

	struct nns ns = NNS_INIT;
	must_create(&ns);
	in_agent(&ns, probe_abstract, &sun);
	close(lfd);
	nns_close(&ns);
}
END_TEST

/* ---- environment ---------------------------------------------------------------------------- */

START_TEST(proxy_environment_is_the_nine_variables_of_contract_6_2)
{
	static const char *const want[][2] = {
	    {"ALL_PROXY", "http://10.200.0.1:3128"},
	    {"HTTP_PROXY", "http://10.200.0.1:3128"},
	    {"HTTPS_PROXY", "http://10.200.0.1:3128"},
	    {"http_proxy", "http://10.200.0.1:3128"},
	    {"https_proxy", "http://10.200.0.1:3128"},
	    {"grpc_proxy", "http://10.200.0.1:3128"},
	    {"NO_PROXY", "127.0.0.1,localhost,::1"},
	    {"no_proxy", "127.0.0.1,localhost,::1"},
	    {"NODE_USE_ENV_PROXY", "1"},
	};
	size_t n = 0;
	const struct nns_env_var *v = nns_proxy_env(&n);
	ck_assert_uint_eq(n, 9);
	ck_assert_uint_eq(n, NNS_PROXY_ENV_COUNT);
	for (size_t i = 0; i < n; i++) {
		ck_assert_str_eq(v[i].name, want[i][0]);
		ck_assert_str_eq(v[i].value, want[i][1]);
	}
	ck_assert_str_eq(NNS_PROXY_URL, "http://10.200.0.1:3128");
}
END_TEST

static Suite *netns_suite(void)
{
	Suite *s = suite_create("netns");
	TCase *tc = tcase_create("netns");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, create_returns_the_caller_to_its_original_namespace);
	tcase_add_test(tc, create_takes_well_under_a_second);
	tcase_add_test(tc, enter_and_leave_switch_between_the_two_namespaces);
	tcase_add_test(tc, uncreated_namespace_fails_closed);
	tcase_add_test(tc, create_without_cap_net_admin_names_the_step_and_returns);
	tcase_add_test(tc, create_without_cap_sys_admin_fails_at_unshare);
	tcase_add_test(tc, agent_sees_lo_up_with_loopback_and_proxy_address_only);
	tcase_add_test(tc, netlink_route_lists_lo_inside);
	tcase_add_test(tc, listener_accepts_connections_from_a_joined_child);
	tcase_add_test(tc, proxy_listener_is_not_reachable_from_the_original_namespace);
	tcase_add_test(tc, listen_failures_name_the_step_and_leave_the_namespace);
	tcase_add_test(tc, other_destinations_fail_fast_inside);
	tcase_add_test(tc, container_wildcard_listeners_are_unreachable_inside);
	tcase_add_test(tc, container_abstract_unix_sockets_are_hidden_inside);
	tcase_add_test(tc, proxy_environment_is_the_nine_variables_of_contract_6_2);
	suite_add_tcase(s, tc);
	return s;
}

/* Can this process make a network namespace at all? Probed in a child. */
static bool can_unshare_net(void)
{
	pid_t pid = fork();
	if (pid == 0)
		_exit(unshare(CLONE_NEWNET) == 0 ? 0 : 1);
	int st = 0;
	return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int main(void)
{
	const char *why = NULL;
	if (geteuid() != 0)
		why = "must run as root (the namespace is built by root during setup)";
	else if (!can_unshare_net())
		why = "unshare(CLONE_NEWNET) is not permitted here";
	if (why) {
		fprintf(stderr, "test_netns: SKIP: %s\n", why);
		return ci_strict() ? EXIT_FAILURE : EXIT_SUCCESS;
	}
	SRunner *sr = srunner_create(netns_suite());
	srunner_set_fork_status(sr, CK_FORK); /* namespace moves must never outlive a test */
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
