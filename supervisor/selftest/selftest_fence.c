/* Self-test probe of the mount fence: build a small one (only /proc in it) exactly as a sandbox
 * would, enter it in a grandchild dropped to nobody and check what an agent would see: a
 * pathname socket made outside is gone, /proc works but PID 1 is hidden. Runs only in a probe
 * child; the supervisor is never moved into the namespace it builds.
 */
#include "selftest_int.h"

#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "supervisor/isolation/fence.h"

#define ST_NOBODY 65534

struct st_fence_seen {
	int enter;   /* 0 or the errno of joining the fence */
	int sock;    /* errno of connecting to the outside socket (0: it connected) */
	int self;    /* errno of reading /proc/self/status (0: it worked) */
	int pid1net; /* errno of opening /proc/1/net/tcp (0: it opened) */
};

static int st_errno_of(int r)
{
	return r < 0 ? errno : 0;
}

static void st_fence_look(const struct sv_fence *f, const char *sock_path, int wfd)
{
	struct st_fence_seen s = {0};
	struct sv_err err = {0};
	if (sv_fence_enter(f, &err) < 0 || setgroups(0, NULL) < 0 ||
	    setresgid(ST_NOBODY, ST_NOBODY, ST_NOBODY) < 0 ||
	    setresuid(ST_NOBODY, ST_NOBODY, ST_NOBODY) < 0) {
		s.enter = errno ? errno : EPERM;
	} else {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		sv_fmt(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		s.sock = fd < 0 ? errno : st_errno_of(connect(fd, (struct sockaddr *)&sa, sizeof(sa)));
		if (fd >= 0)
			close(fd);
		fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
		s.self = fd < 0 ? errno : 0;
		if (fd >= 0)
			close(fd);
		fd = open("/proc/1/net/tcp", O_RDONLY | O_CLOEXEC);
		s.pid1net = fd < 0 ? errno : 0;
		if (fd >= 0)
			close(fd);
	}
	(void)sv_write_all(wfd, &s, sizeof(s));
	_exit(0);
}

static int st_fence_check(const struct sv_fence *f, const char *sock_path,
			  struct st_fence_seen *s)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return -e;
	}
	if (pid == 0) {
		close(p[0]);
		st_fence_look(f, sock_path, p[1]);
	}
	close(p[1]);
	ssize_t n;
	do {
		n = read(p[0], s, sizeof(*s));
	} while (n < 0 && errno == EINTR);
	close(p[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return n == (ssize_t)sizeof(*s) ? 0 : -EPROTO;
}

void sv_selftest_probe_fence(const struct sv_selftest_ctx *c, int arg,
			     struct sv_selftest_layer *l)
{
	(void)c;
	(void)arg;
	char e[24], e2[24];
	sv_selftest_act(l, "run without the fence, HIGH finding mount_fence_unavailable",
			"refuse to start");
	char dir[] = "/tmp/sv-selftest-fence.XXXXXX";
	if (!mkdtemp(dir)) {
		sv_selftest_set(l, SV_SELFTEST_UNAVAILABLE, ST_WEAK,
				"cannot make a probe directory in /tmp: %s",
				sv_errno_ename(errno, e, sizeof(e)));
		return;
	}
	char sock_path[96];
	sv_fmt(sock_path, sizeof(sock_path), "%s/outside.sock", dir);
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	sv_fmt(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	bool listening = lfd >= 0 && bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
			 chmod(sock_path, 0777) == 0 && listen(lfd, 4) == 0;

	static const char *const ro[] = {"/proc"};
	const struct sv_fence_spec spec = {.read_only = ro, .n_read_only = 1, .hard = true};
	struct sv_fence f;
	struct sv_err err = {0};
	int r = sv_fence_prepare(&f, &spec, &err);
	struct st_fence_seen s = {0};
	int rc = r < 0 ? r : st_fence_check(&f, sock_path, &s);
	sv_fence_close(&f);
	if (lfd >= 0)
		close(lfd);
	unlink(sock_path);
	rmdir(dir);

	if (r < 0) {
		sv_selftest_set(l, SV_SELFTEST_UNAVAILABLE, ST_WEAK, "%s: %s",
				sv_errno_ename(-r, e, sizeof(e)), err.msg);
		return;
	}
	if (rc < 0 || s.enter) {
		sv_selftest_set(l, SV_SELFTEST_UNAVAILABLE, ST_WEAK,
				"built, but a child could not enter it as nobody: %s",
				sv_errno_ename(rc < 0 ? -rc : s.enter, e, sizeof(e)));
		return;
	}
	char socks[96];
	if (!listening)
		sv_fmt(socks, sizeof(socks), "not checked (no probe socket)");
	else if (s.sock == ENOENT)
		sv_fmt(socks, sizeof(socks), "unreachable (ENOENT)");
	else
		sv_fmt(socks, sizeof(socks), "REACHABLE (%s)",
		       s.sock ? sv_errno_ename(s.sock, e, sizeof(e)) : "connected");
	bool proc_ok = s.self == 0 && s.pid1net == ENOENT;
	if (listening && s.sock != ENOENT) {
		sv_selftest_set(l, SV_SELFTEST_UNAVAILABLE, ST_WEAK,
				"built, but a pathname socket outside the policy is %s", socks);
		return;
	}
	if (!proc_ok) {
		sv_selftest_set(l, SV_SELFTEST_DEGRADED, ST_WEAK,
				"agent mount namespace verified; pathname unix sockets outside the "
				"policy: %s; /proc NOT restricted (/proc/self/status %s, "
				"/proc/1/net/tcp %s)",
				socks, s.self ? sv_errno_ename(s.self, e, sizeof(e)) : "readable",
				s.pid1net ? sv_errno_ename(s.pid1net, e2, sizeof(e2)) : "READABLE");
		sv_selftest_act(l, "fence paths; the agent sees the container's /proc, HIGH "
				   "finding proc_unrestricted",
				NULL);
		return;
	}
	sv_selftest_set(l, SV_SELFTEST_OK, 0,
			"agent mount namespace verified as nobody: only policy paths exist; "
			"pathname unix sockets outside the policy: %s; /proc restricted "
			"(hidepid: /proc/self readable, /proc/1/net/tcp ENOENT)",
			socks);
	sv_selftest_act(l, "build the fence; every child joins it before the privilege drop",
			NULL);
}
