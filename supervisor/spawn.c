/* fork/exec of sandboxed children.
 *
 * Between fork and exec only async-signal-safe calls are made: no malloc, no stdio, no locks.
 * Failures in the child are written to a CLOEXEC SOCK_SEQPACKET status channel as a fixed-size
 * record and the child _exit()s; EOF on it means exec succeeded. The same channel carries fds a
 * hook hands to the parent (the seccomp listener) as one-byte SCM_RIGHTS messages.
 */
#include "spawn.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <termios.h>

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

void sv_child_close_fds(struct sv_child *c)
{
	int *fds[] = {&c->pidfd, &c->pty_fd, &c->in_fd, &c->out_fd, &c->err_fd};
	for (size_t i = 0; i < SV_ARRAY_SIZE(fds); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

int sv_child_signal(const struct sv_child *c, int sig)
{
	if (c->pidfd >= 0) {
		if (syscall(SYS_pidfd_send_signal, c->pidfd, sig, NULL, 0) == 0)
			return 0;
		if (errno != ENOSYS)
			return -errno;
	}
	return kill(c->pid, sig) < 0 ? -errno : 0;
}

/* Open a PTY pair; the slave is opened through the master where the kernel allows
 * (TIOCGPTPEER), so no /dev/pts path lookup can be redirected. */
static int pty_open(int *master_out, int *slave_out, const struct winsize *ws, struct sv_err *err)
{
	_cleanup_close_ int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
	if (master < 0)
		return sv_err_set(err, errno, "cannot allocate a PTY: /dev/ptmx: %s",
				  strerror(errno));
	int unlock = 0;
	if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
		return sv_err_set(err, errno, "cannot unlock PTY: %s", strerror(errno));
	int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0) {
		unsigned int n;
		char path[64];
		if (ioctl(master, TIOCGPTN, &n) < 0)
			return sv_err_set(err, errno, "cannot find PTY slave: %s", strerror(errno));
		sv_fmt(path, sizeof(path), "/dev/pts/%u", n);
		slave = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (slave < 0)
			return sv_err_set(err, errno, "cannot open %s: %s", path, strerror(errno));
	}
	(void)ioctl(slave, TIOCSWINSZ, ws);
	*master_out = sv_steal_fd(&master);
	*slave_out = slave;
	return 0;
}

static int g_child_statusfd = -1; /* the child's copy only: set after fork */
static void (*g_fd_sink)(int fd);

void sv_spawn_set_fd_sink(void (*sink)(int fd))
{
	g_fd_sink = sink;
}

int sv_spawn_child_pass_fd(int fd)
{
	if (g_child_statusfd < 0)
		return -EBADF;
	char byte = 'F';
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	memset(&u, 0, sizeof(u));
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	ssize_t n;
	do
		n = sendmsg(g_child_statusfd, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n == 1 ? 0 : -errno;
}

/* One message from the status channel: a failure record (returns its size), an fd (handed to
 * the sink, returns 1), EOF (0) or -errno. */
static ssize_t status_recv(int fd, struct sv_spawn_failure *failure)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * 4)];
	} u;
	struct iovec iov = {.iov_base = failure, .iov_len = sizeof(*failure)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf)};
	ssize_t n;
	do
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < nfd; i++) {
			int got;
			memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (g_fd_sink && i == 0)
				g_fd_sink(got);
			else
				close(got);
		}
	}
	return n;
}

static void child_fail(int statusfd, int exit_code, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 4, 5), noreturn));
static void child_fail(int statusfd, int exit_code, int errnum, const char *fmt, ...)
{
	struct sv_spawn_failure f;
	va_list ap;
	f.exit_code = exit_code;
	f.errnum = errnum;
	va_start(ap, fmt);
	sv_vfmt(f.msg, sizeof(f.msg), fmt, ap);
	va_end(ap);
	(void)sv_write_all(statusfd, &f, sizeof(f));
	_exit(exit_code);
}

static const char *env_lookup(char *const *envp, const char *name)
{
	size_t n = strlen(name);
	for (; envp && *envp; envp++) {
		if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
			return *envp + n + 1;
	}
	return NULL;
}

/* execvpe with the PATH of the child's environment, done by hand so the lookup happens as the
 * final identity and with no allocation. Returns the errno that best describes the failure; on
 * EACCES, @denied (PATH_MAX bytes) holds the first path refused. */
static int exec_search(char *const *argv, char *const *envp, char *denied)
{
	const char *file = argv[0];
	if (strchr(file, '/')) {
		execve(file, argv, envp);
		if (errno == EACCES)
			sv_fmt(denied, PATH_MAX, "%s", file);
		return errno;
	}
	const char *path = env_lookup(envp, "PATH");
	if (!path)
		path = SV_DEFAULT_PATH;
	bool eacces = false;
	size_t flen = strlen(file);
	for (const char *p = path;; p++) {
		const char *start = p;
		while (*p && *p != ':')
			p++;
		size_t dlen = (size_t)(p - start);
		char buf[PATH_MAX];
		if (dlen + 1 + flen + 1 <= sizeof(buf)) {
			if (dlen == 0) {
				buf[0] = '.';
				dlen = 1;
			} else {
				memcpy(buf, start, dlen);
			}
			buf[dlen] = '/';
			memcpy(buf + dlen + 1, file, flen + 1);
			execve(buf, argv, envp);
			switch (errno) {
			case EACCES:
				if (!eacces)
					memcpy(denied, buf, dlen + 1 + flen + 1);
				eacces = true;
				break;
			case ENOENT:
			case ENOTDIR:
			case ENAMETOOLONG:
				break;
			default:
				return errno;
			}
		}
		if (!*p)
			break;
	}
	return eacces ? EACCES : ENOENT;
}

/* After exec(@path) failed with EACCES as the final identity: was it Landlock? The file is a
 * regular file that this identity may execute by its mode (access(2) is not filtered by
 * Landlock) on a filesystem mounted exec, so the refusal can only come from the ruleset, and
 * every read_only and read_write path grants execute. Async-signal-safe. */
static bool exec_denied_by_landlock(const char *path)
{
	struct stat st;
	struct statvfs vfs;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0 &&
	       statvfs(path, &vfs) == 0 && !(vfs.f_flag & ST_NOEXEC);
}

/* Does the command, named by a path, exist in the supervisor's view? In the parent, before the
 * fork: a sandboxed child runs in the mount fence, where paths outside the policy do not exist,
 * so its ENOENT for a path the supervisor sees means the policy refused it (126 with the policy
 * message, as Landlock's EACCES gives without the fence), not "not found". */
static bool exists_outside(const struct sv_spawn *o)
{
	const char *cmd = o->argv[0];
	if (!o->hook || !strchr(cmd, '/'))
		return false;
	char path[PATH_MAX];
	if (cmd[0] == '/' || !o->cwd)
		sv_fmt(path, sizeof(path), "%s", cmd);
	else
		sv_fmt(path, sizeof(path), "%s/%s", o->cwd, cmd);
	struct stat st;
	return stat(path, &st) == 0;
}

static void close_inherited_fds(void)
{
	/* Mark everything above stderr close-on-exec: fds the hook still needs (a Landlock ruleset)
	 * stay usable until exec, and nothing reaches the agent. */
	if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return;
	struct rlimit rl;
	long max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
			   ? (long)rl.rlim_cur
			   : 65536;
	for (long fd = 3; fd < max; fd++)
		(void)fcntl((int)fd, F_SETFD, FD_CLOEXEC);
}

/* The kernel's struct sigaction for rt_sigaction(2). */
struct kernel_sigaction {
	void (*handler)(int);
	unsigned long flags;
	void (*restorer)(void);
	unsigned long mask;
};

void sv_signals_reset_dispositions(void)
{
	/* Raw system call: libc refuses to touch the signals it reserves for itself (musl and
	 * glibc: 32-34), yet an ignored one there is inherited across exec all the same. */
	struct kernel_sigaction ksa;
	memset(&ksa, 0, sizeof(ksa));
	ksa.handler = SIG_DFL;
	for (int sig = 1; sig < _NSIG; sig++) {
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)syscall(SYS_rt_sigaction, sig, &ksa, NULL, sizeof(ksa.mask));
	}
}

/* The supervisor's own soft RLIMIT_NOFILE is raised to the hard limit (the proxy holds six fds
 * per relayed connection); children get back the soft limit the supervisor was started with,
 * since select()-based programs break above 1024. */
static struct rlimit g_nofile_orig;
static bool g_nofile_raised;

void sv_spawn_raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	g_nofile_orig = rl;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
		g_nofile_raised = true;
}

static void reset_signals(void)
{
	sv_signals_reset_dispositions();
	sigset_t none;
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
}

static void child_main(const struct sv_spawn *o, int statusfd, int slave, int in_r, int out_w,
		       int err_w, bool outside)
{
	struct sv_err err = {0};
	g_child_statusfd = statusfd;
	if (o->tty) {
		if (setsid() < 0)
			child_fail(statusfd, SV_EXIT_CHILD_SETUP, errno, "setsid: %s",
				   strerror(errno));
		if (ioctl(slave, TIOCSCTTY, 0) < 0)
			child_fail(statusfd, SV_EXIT_CHILD_SETUP, errno,
				   "cannot make the PTY the controlling terminal: %s",
				   strerror(errno));
		in_r = out_w = err_w = slave;
	} else if (o->new_pgrp && setpgid(0, 0) < 0) {
		child_fail(statusfd, SV_EXIT_CHILD_SETUP, errno, "setpgid: %s", strerror(errno));
	}
	if (dup2(in_r, 0) < 0 || dup2(out_w, 1) < 0 || dup2(err_w, 2) < 0)
		child_fail(statusfd, SV_EXIT_CHILD_SETUP, errno, "cannot set up stdio: %s",
			   strerror(errno));
	close_inherited_fds();
	if (o->hook) {
		int r = o->hook(o->hook_ctx, &err);
		if (r < 0)
			child_fail(statusfd, SV_EXIT_CHILD_SETUP, -r, "%s", err.msg);
	}
	if (o->cwd && chdir(o->cwd) < 0)
		child_fail(statusfd, SV_EXIT_CHILD_SETUP, errno, "cannot enter workdir %s: %s",
			   o->cwd, strerror(errno));
	if (g_nofile_raised)
		(void)setrlimit(RLIMIT_NOFILE, &g_nofile_orig);
	reset_signals();
	if (o->run) {
		/* Nothing of the supervisor's stays open, the status pipe included (its EOF tells the
		 * parent the child is running, as an exec would). */
		if (syscall(SYS_close_range, 3U, ~0U, 0U) < 0) {
			struct rlimit rl;
			long max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY
					   ? (long)rl.rlim_max
					   : 65536;
			for (long fd = 3; fd < max; fd++)
				(void)close((int)fd);
		}
		_exit(o->run(o->run_ctx));
	}
	char denied[PATH_MAX] = "";
	int e = exec_search(o->argv, o->envp, denied);
	/* A hook means a sandboxed child: Landlock was applied by it. */
	if (e == EACCES && o->hook && denied[0] && exec_denied_by_landlock(denied))
		child_fail(statusfd, SV_EXIT_NOT_EXECUTABLE, e,
			   "%s: execution denied by the filesystem policy: %s is not under any "
			   "read_only or read_write path",
			   o->argv[0], denied);
	bool missing = e == ENOENT || e == ENOTDIR;
	if (missing && outside)
		child_fail(statusfd, SV_EXIT_NOT_EXECUTABLE, EACCES,
			   "%s: execution denied by the filesystem policy: %s is not under any "
			   "read_only or read_write path",
			   o->argv[0], o->argv[0]);
	child_fail(statusfd, missing ? SV_EXIT_NOT_FOUND : SV_EXIT_NOT_EXECUTABLE, e, "%s: %s: %s",
		   o->argv[0], missing ? "not found" : "not executable", strerror(e));
}

static int make_pipe(int fds[2], struct sv_err *err)
{
	if (pipe2(fds, O_CLOEXEC) < 0)
		return sv_err_set(err, errno, "pipe2: %s", strerror(errno));
	return 0;
}

int sv_spawn_start(const struct sv_spawn *o, struct sv_child *out,
		   struct sv_spawn_failure *failure, struct sv_err *err)
{
	int status[2] = {-1, -1}, in[2] = {-1, -1}, outp[2] = {-1, -1}, errp[2] = {-1, -1};
	int master = -1, slave = -1;
	int r;

	memset(failure, 0, sizeof(*failure));
	*out = (struct sv_child){.pid = -1, .pidfd = -1, .pty_fd = -1, .in_fd = -1,
				 .out_fd = -1, .err_fd = -1};
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, status) < 0) {
		r = sv_err_set(err, errno, "socketpair: %s", strerror(errno));
		goto out;
	}
	if (o->tty) {
		if ((r = pty_open(&master, &slave, &o->ws, err)) < 0)
			goto out;
	} else if ((r = make_pipe(in, err)) < 0 || (r = make_pipe(outp, err)) < 0 ||
		   (r = make_pipe(errp, err)) < 0) {
		goto out;
	}

	bool outside = exists_outside(o);
	pid_t pid = fork();
	if (pid < 0) {
		r = sv_err_set(err, errno, "fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		close(status[0]);
		child_main(o, status[1], slave, in[0], outp[1], errp[1], outside);
	}

	out->pid = pid;
	out->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (out->pidfd >= 0)
		(void)fcntl(out->pidfd, F_SETFD, FD_CLOEXEC);
	close(status[1]);
	status[1] = -1;
	/* Blocks only until the child execs or reports: it does nothing slow before that. */
	ssize_t n;
	do
		n = status_recv(status[0], failure);
	while (n == 1);
	if (n != (ssize_t)sizeof(*failure))
		memset(failure, 0, sizeof(*failure)); /* EOF: exec succeeded */
	failure->msg[sizeof(failure->msg) - 1] = '\0';

	if (o->tty) {
		out->pty_fd = master;
		master = -1;
	} else {
		out->in_fd = in[1];
		out->out_fd = outp[0];
		out->err_fd = errp[0];
		in[1] = outp[0] = errp[0] = -1;
		(void)fcntl(out->in_fd, F_SETFL, O_NONBLOCK);
		(void)fcntl(out->out_fd, F_SETFL, O_NONBLOCK);
		(void)fcntl(out->err_fd, F_SETFL, O_NONBLOCK);
	}
	r = 0;
out: {
	int all[] = {status[0], status[1], in[0], in[1], outp[0], outp[1], errp[0], errp[1],
		     master, slave};
	for (size_t i = 0; i < SV_ARRAY_SIZE(all); i++) {
		if (all[i] >= 0)
			close(all[i]);
	}
}
	return r;
}
