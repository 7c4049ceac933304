/* proxyconnect HOST:PORT: ask the egress proxy named by $HTTPS_PROXY (http://IP:PORT) for a
 * CONNECT tunnel and print `status=<code>`; through an established tunnel send one HTTP/1.0
 * GET and print `tunnel=<first response line>`. With PROXYCONNECT_THREAD=1 all of it runs in
 * a second thread (a connect(2) from a thread that is not its group's leader). Used to watch a policy change reach new
 * connections. Exit 0 when a status line came back, 1 otherwise, 100 usage, 111 system.
 */
#include "common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

/* One line (up to CRLF) from @fd into @buf; returns its length or -1. */
static int read_line(int fd, char *buf, size_t size)
{
	size_t n = 0;
	while (n + 1 < size) {
		char c;
		ssize_t r = read(fd, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return n ? (int)n : -1;
		if (c == '\n')
			break;
		if (c != '\r')
			buf[n++] = c;
	}
	buf[n] = '\0';
	return (int)n;
}

static int run(int argc, char **argv);

struct targs {
	int argc;
	char **argv;
	int rc;
};

static void *thread_main(void *arg)
{
	struct targs *t = arg;
	t->rc = run(t->argc, t->argv);
	return NULL;
}

int main(int argc, char **argv)
{
	const char *th = getenv("PROXYCONNECT_THREAD");
	if (!th || strcmp(th, "1") != 0)
		return run(argc, argv);
	struct targs t = {argc, argv, TH_EXIT_SYS};
	pthread_t id;
	if (pthread_create(&id, NULL, thread_main, &t) != 0 || pthread_join(id, NULL) != 0)
		return TH_EXIT_SYS;
	return t.rc;
}

static int run(int argc, char **argv)
{
	if (argc != 2)
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
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		printf("status=connect-failed errno=%d\n", errno);
		return TH_EXIT_CHECK;
	}
	char req[512];
	int n = snprintf(req, sizeof(req), "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", argv[1],
			 argv[1]);
	if (n < 0 || (size_t)n >= sizeof(req) || th_write_all(fd, req, (size_t)n) < 0)
		return TH_EXIT_SYS;
	char line[512];
	if (read_line(fd, line, sizeof(line)) < 0) {
		printf("status=none\n");
		return TH_EXIT_CHECK;
	}
	const char *sp = strchr(line, ' ');
	int code = sp ? atoi(sp + 1) : 0;
	printf("status=%d\n", code);
	if (code == 200) {
		while (read_line(fd, line, sizeof(line)) > 0) /* the rest of the proxy's head */
			;
		static const char get[] = "GET / HTTP/1.0\r\n\r\n";
		if (th_write_all(fd, get, sizeof(get) - 1) == 0 && read_line(fd, line, sizeof(line)) >= 0)
			printf("tunnel=%s\n", line);
	}
	fflush(stdout);
	close(fd);
	return TH_EXIT_OK;
}
