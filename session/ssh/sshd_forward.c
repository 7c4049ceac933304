/* direct-tcpip (ssh -L) into the agent's loopback, dialed inside the agent's network namespace
 * (contract §9).
 *
 * Only loopback literals and "localhost" are accepted, never resolved through DNS; anything else
 * is refused as AdministrativelyProhibited. The socket is created inside the agent's namespace
 * (only socket(2) runs there) and connected without blocking the loop.
 */
#include "sshd.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "supervisor/log.h"
#include "supervisor/sandbox.h"

struct dest {
	int family;
	union {
		struct sockaddr_in v4;
		struct sockaddr_in6 v6;
	} sa;
	socklen_t len;
};

/* Parse @host as a loopback destination: 127/8, ::1, ::ffff:127.x (bracketed or not), or
 * localhost. Returns false for anything else. */
static bool parse_loopback(const char *host, uint16_t port, struct dest *d)
{
	char buf[INET6_ADDRSTRLEN + 2];
	size_t n = strlen(host);
	if (n >= sizeof(buf))
		return false;
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		memcpy(buf, host + 1, n - 2);
		buf[n - 2] = '\0';
	} else {
		memcpy(buf, host, n + 1);
	}
	memset(d, 0, sizeof(*d));
	if (strcasecmp(buf, "localhost") == 0)
		sv_fmt(buf, sizeof(buf), "127.0.0.1");
	struct in_addr a4;
	struct in6_addr a6;
	if (inet_pton(AF_INET, buf, &a4) == 1) {
		if ((ntohl(a4.s_addr) >> 24) != 127)
			return false;
		d->family = AF_INET;
		d->sa.v4 = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(port),
						.sin_addr = a4};
		d->len = sizeof(d->sa.v4);
		return true;
	}
	if (inet_pton(AF_INET6, buf, &a6) == 1) {
		bool ok = IN6_IS_ADDR_LOOPBACK(&a6) ||
			  (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
		if (!ok)
			return false;
		d->family = AF_INET6;
		d->sa.v6 = (struct sockaddr_in6){.sin6_family = AF_INET6, .sin6_port = htons(port),
						 .sin6_addr = a6};
		d->len = sizeof(d->sa.v6);
		return true;
	}
	return false;
}

bool sshd_forward_host_is_loopback(const char *host)
{
	struct dest d;
	return parse_loopback(host, 0, &d);
}

static void fwd_log(const struct sshd_conn *c, bool allowed, const char *host, int port,
		    const char *reason)
{
	char cid[16], p[16];
	sv_fmt(cid, sizeof(cid), "%u", c->id);
	sv_fmt(p, sizeof(p), "%d", port);
	sv_log_ocsf("NET:OPEN", allowed ? SV_SEV_INFO : SV_SEV_MED, allowed ? "ALLOWED" : "DENIED",
		    allowed ? "ssh_forward_allowed" : "ssh_forward_denied",
		    allowed ? "ssh direct-tcpip to the sandbox loopback"
			    : "ssh direct-tcpip refused",
		    SV_KVS({"conn", cid}, {"host", host}, {"port", p}, {"reason", reason}));
}

static void fwd_failed(struct sshd_chan *ch, const char *why)
{
	char cid[16];
	sv_fmt(cid, sizeof(cid), "%u", ch->conn->id);
	sv_log_kv(SV_LOG_INFO, COMP_SSHD, "ssh_forward_connect_failed",
		  "ssh direct-tcpip: connection inside the sandbox failed",
		  SV_KVS({"conn", cid}, {"error", why}));
	sshd_chan_close_all_fds(ch);
	ch->finished = true;
	(void)ssh_channel_close(ch->ch);
	sshd_conn_update(ch->conn);
}

static void fwd_established(struct sshd_chan *ch, int fd)
{
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	int in = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (in < 0) {
		close(fd);
		fwd_failed(ch, strerror(errno));
		return;
	}
	ch->fwd_ready = true;
	if (sshd_chan_attach_fds(ch, fd, -1, in) < 0) {
		fwd_failed(ch, "epoll");
		return;
	}
	sshd_chan_after_io(ch); /* client data that arrived while connecting */
	sshd_conn_update(ch->conn);
}

static void on_connected(struct sv_loop *loop, struct sv_watch *w, uint32_t events)
{
	(void)events;
	struct sshd_chan *ch = w->data;
	int fd = w->fd;
	sv_loop_del(loop, w);
	w->fd = -1;
	ch->connecting = false;
	int soerr = 0;
	socklen_t sl = sizeof(soerr);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
		soerr = errno;
	if (ch->dead || soerr) {
		close(fd);
		if (!ch->dead)
			fwd_failed(ch, strerror(soerr));
		return;
	}
	fwd_established(ch, fd);
}

int sshd_forward_open(struct sshd_conn *c, ssh_message msg)
{
	const char *host = ssh_message_channel_request_open_destination(msg);
	int port = ssh_message_channel_request_open_destination_port(msg);
	if (!host)
		host = "";
	struct dest d;
	/* Our libssh build turns a wire port above 65535 into 0 instead of truncating it
	 * (static/build-libssh.sh), so 0 stands for every out-of-range request. */
	if (port <= 0 || port > 65535) {
		fwd_log(c, false, host, port, "port out of range (0 or above 65535)");
		return 1;
	}
	if (!parse_loopback(host, (uint16_t)port, &d)) {
		fwd_log(c, false, host, port, "not a loopback destination");
		return 1; /* libssh's default reply: AdministrativelyProhibited */
	}
	const struct sv_sandbox *sb = c->srv->opts.sandbox;
	int r = nns_enter(&sb->netns);
	int fd = r < 0 ? -1 : socket(d.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int e = errno;
	if (r == 0 && nns_leave(&sb->netns) < 0) {
		/* Stuck in the agent's namespace: nothing of the supervisor's may run here. */
		sv_error(COMP_SSHD, "netns_leave_failed",
			 "cannot return to the supervisor's network namespace: exiting");
		_exit(SV_EXIT_CHILD_SETUP);
	}
	if (fd < 0) {
		fwd_log(c, false, host, port, r < 0 ? "cannot enter the agent namespace" : strerror(e));
		return 1;
	}
	struct sshd_chan *ch = sshd_chan_new(c, SSHD_CHAN_TCPIP);
	if (!ch) {
		close(fd);
		return 1;
	}
	if (ssh_message_channel_request_open_reply_accept_channel(msg, ch->ch) != SSH_OK) {
		close(fd);
		ch->dead = true;
		return 0;
	}
	fwd_log(c, true, host, port, "loopback");
	if (connect(fd, (struct sockaddr *)&d.sa, d.len) == 0) {
		fwd_established(ch, fd);
		return 0;
	}
	if (errno != EINPROGRESS) {
		e = errno;
		close(fd);
		fwd_failed(ch, strerror(e));
		return 0;
	}
	ch->connecting = true;
	ch->outw = (struct sv_watch){.fd = fd, .fn = on_connected, .data = ch};
	if (sv_loop_add(c->srv->loop, &ch->outw, EPOLLOUT) < 0) {
		close(fd);
		ch->outw.fd = -1;
		fwd_failed(ch, "epoll");
	}
	return 0;
}
