/* tcpsvc MODE PORT: a TCP service on the sandbox's loopback for the gateway relay tests.
 *
 *   echo   every connection (one child each) gets back what it sends; EOF is passed on
 *   stall  every connection is accepted and never read (a reader slower than any writer)
 *   full   listen with a backlog of 0 and never accept: once the queue is full, SYNs are dropped
 *
 * Listens on 127.0.0.1:PORT inside whatever network namespace it runs in (the agent's), prints
 * "listening PORT" on stdout once it does, and serves until killed.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "common.h"

static void echo(int c)
{
	static char buf[65536];
	for (;;) {
		ssize_t n = read(c, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (th_write_all(c, buf, (size_t)n) < 0)
			_exit(TH_EXIT_SYS);
	}
	(void)shutdown(c, SHUT_WR);
	/* wait for the peer to close, so nothing we wrote is cut by a reset */
	while (read(c, buf, sizeof(buf)) > 0)
		;
	_exit(TH_EXIT_OK);
}

int main(int argc, char **argv)
{
	if (argc != 3 || (strcmp(argv[1], "echo") != 0 && strcmp(argv[1], "stall") != 0 &&
			  strcmp(argv[1], "full") != 0)) {
		fprintf(stderr, "usage: tcpsvc echo|stall|full PORT\n");
		return TH_EXIT_USAGE;
	}
	bool stall = strcmp(argv[1], "stall") == 0;
	bool full = strcmp(argv[1], "full") == 0;
	int port = atoi(argv[2]);
	signal(SIGCHLD, SIG_IGN); /* children are reaped by the kernel */
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, full ? 0 : 128) < 0) {
		fprintf(stderr, "tcpsvc: cannot listen on 127.0.0.1:%d: %s\n", port,
			strerror(errno));
		return TH_EXIT_SYS;
	}
	printf("listening %d\n", port);
	fflush(stdout);
	while (full)
		pause();
	for (;;) {
		int c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return TH_EXIT_SYS;
		}
		if (stall)
			continue; /* kept open, never read */
		pid_t pid = fork();
		if (pid == 0) {
			close(s);
			echo(c);
		}
		close(c);
	}
}
