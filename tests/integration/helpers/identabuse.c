/* identabuse: agent-side probes of the proxy's identity step (issue 17 items 2-4), run inside the
 * sandbox. Every CONNECT goes to $HTTPS_PROXY (http://IP:PORT).
 *   identabuse connect HOST:PORT        one CONNECT: prints `status=<code|none> ms=<elapsed>
 *                                       start=<wall-clock ms since the epoch when it began>`
 *   identabuse links DIR N HOST:PORT    N hard links of this binary in DIR, each run once to make
 *                                       one CONNECT, 8 at a time: prints `links=N ran=R`
 *   identabuse fds N FILE               hold about N open files (dups of a pipe; soft
 *                                       RLIMIT_NOFILE raised to the hard one), write
 *                                       `held=<n>` to FILE and sleep until killed
 *   identabuse big PATH MIB             copy this binary to PATH and extend it, sparse, to MIB MiB
 *   identabuse spawn N PROG ARGS...     start N copies of PROG ARGS in the background and return
 *                                       (busybox sh needs /dev/null for `&`, which the sandbox
 *                                       may not reach)
 * Exit 0 done, 1 check failed, 100 usage, 111 system.
 */
#include "common.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int do_connect(const char *target)
{
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
	double t0 = now_ms();
	struct timespec wall;
	clock_gettime(CLOCK_REALTIME, &wall);
	long long start = (long long)wall.tv_sec * 1000 + wall.tv_nsec / 1000000;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		printf("status=connect-failed errno=%d\n", errno);
		return TH_EXIT_CHECK;
	}
	char req[512];
	int n =
	    snprintf(req, sizeof(req), "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target);
	if (n < 0 || (size_t)n >= sizeof(req) || th_write_all(fd, req, (size_t)n) < 0)
		return TH_EXIT_SYS;
	char line[64];
	ssize_t got = read(fd, line, sizeof(line) - 1);
	double ms = now_ms() - t0;
	int code = 0;
	if (got > 0) {
		line[got] = '\0';
		const char *sp = strchr(line, ' ');
		code = sp ? atoi(sp + 1) : 0;
	}
	if (code)
		printf("status=%d ms=%.0f start=%lld\n", code, ms, start);
	else
		printf("status=none ms=%.0f start=%lld\n", ms, start);
	fflush(stdout);
	close(fd);
	return TH_EXIT_OK;
}

static int do_links(const char *dir, long n, const char *target)
{
	char base[256];
	snprintf(base, sizeof(base), "%s/base", dir);
	int in = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	int out = open(base, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	if (in < 0 || out < 0)
		th_die("identabuse", "copy");
	char buf[65536];
	ssize_t r;
	while ((r = read(in, buf, sizeof(buf))) > 0)
		if (th_write_all(out, buf, (size_t)r) < 0)
			th_die("identabuse", "write");
	close(in);
	close(out);
	/* Every link first: a new link changes the inode's ctime, which would fail a hash that is
	 * running meanwhile ("changed while it was being hashed") and leave that path unpinned. */
	for (long i = 0; i < n; i++) {
		char path[256];
		snprintf(path, sizeof(path), "%s/l%ld", dir, i);
		if (link(base, path) < 0)
			th_die("identabuse", "link");
	}
	long ran = 0, running = 0;
	for (long i = 0; i < n || running > 0;) {
		if (i < n && running < 8) {
			char path[256];
			snprintf(path, sizeof(path), "%s/l%ld", dir, i);
			pid_t pid = fork();
			if (pid < 0)
				th_die("identabuse", "fork");
			if (pid == 0) {
				close(1); /* quiet: the sandbox may not reach /dev/null */
				char *const argv[] = {path, (char *)"connect", (char *)target,
						      NULL};
				execv(path, argv);
				_exit(127);
			}
			running++;
			i++;
			continue;
		}
		int st;
		if (wait(&st) > 0) {
			running--;
			if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
				ran++;
		}
	}
	printf("links=%ld ran=%ld\n", n, ran);
	return ran == n ? TH_EXIT_OK : TH_EXIT_CHECK;
}

static _Noreturn void do_fds(long n, const char *report)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) /* the sandbox may not reach /dev/null */
		th_die("identabuse", "pipe");
	int fd = p[0];
	long held = 2;
	while (held < n && fcntl(fd, F_DUPFD_CLOEXEC, 0) >= 0)
		held++;
	char line[32];
	int len = snprintf(line, sizeof(line), "held=%ld\n", held);
	int out = open(report, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0 || th_write_all(out, line, (size_t)len) < 0)
		th_die("identabuse", report);
	close(out);
	for (;;)
		pause();
}

static int do_big(const char *path, long mib)
{
	int in = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	int out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	if (in < 0 || out < 0)
		th_die("identabuse", "copy");
	char buf[65536];
	ssize_t r;
	while ((r = read(in, buf, sizeof(buf))) > 0)
		if (th_write_all(out, buf, (size_t)r) < 0)
			th_die("identabuse", "write");
	if (ftruncate(out, (off_t)mib << 20) < 0)
		th_die("identabuse", "ftruncate");
	close(in);
	close(out);
	printf("big=%s mib=%ld\n", path, mib);
	return TH_EXIT_OK;
}

static int do_spawn(long n, char **argv)
{
	for (long i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid < 0)
			th_die("identabuse", "fork");
		if (pid == 0) {
			execv(argv[0], argv);
			_exit(127);
		}
	}
	return TH_EXIT_OK;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "connect") == 0)
		return do_connect(argv[2]);
	if (argc == 5 && strcmp(argv[1], "links") == 0)
		return do_links(argv[2], atol(argv[3]), argv[4]);
	if (argc == 4 && strcmp(argv[1], "fds") == 0)
		do_fds(atol(argv[2]), argv[3]);
	if (argc >= 4 && strcmp(argv[1], "spawn") == 0)
		return do_spawn(atol(argv[2]), &argv[3]);
	if (argc == 4 && strcmp(argv[1], "big") == 0)
		return do_big(argv[2], atol(argv[3]));
	return TH_EXIT_USAGE;
}
