/* Unit tests for the proxy's binary identity (px_ident: contract §8 "Binary identity", §13 fixes
 * 18 and 19).
 *
 * Real loopback connections, real child processes and the real /proc: the test process plays
 * the agent's entrypoint. A full resolution reads every /proc/<pid>/fd, which needs root (or
 * CAP_SYS_PTRACE); without it those tests skip (CI=true turns the skip into a failure).
 */
#include <check.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "netns/proxy/px_ident.h"

#define KID_FD 10 /* where a child keeps the inherited client socket */

/* ------------------------------------------------------------------ helpers */

struct conn {
	int lfd, cfd, afd;
	struct sockaddr_storage peer, local; /* the accepted socket's view: client, proxy */
	socklen_t plen, llen;
};

static pid_t g_kids[32];
static int g_nkids;
static char g_dir[64];

static void kid_add(pid_t pid)
{
	ck_assert_int_lt(g_nkids, (int)(sizeof(g_kids) / sizeof(g_kids[0])));
	g_kids[g_nkids++] = pid;
}

static void teardown(void)
{
	for (int i = 0; i < g_nkids; i++)
		kill(g_kids[i], SIGKILL);
	for (int i = 0; i < g_nkids; i++)
		waitpid(g_kids[i], NULL, 0);
	g_nkids = 0;
	if (g_dir[0]) {
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
		ck_assert_int_eq(system(cmd), 0);
		g_dir[0] = '\0';
	}
}

static socklen_t sa_make(int family, const char *addr, unsigned port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)ss;
		s->sin_family = AF_INET;
		s->sin_port = htons((uint16_t)port);
		ck_assert_int_eq(inet_pton(AF_INET, addr, &s->sin_addr), 1);
		return sizeof(*s);
	}
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons((uint16_t)port);
	ck_assert_int_eq(inet_pton(AF_INET6, addr, &s6->sin6_addr), 1);
	return sizeof(*s6);
}

/* Listen on @laddr (port 0), connect from a @cfamily socket to @caddr at that port, accept. */
static bool conn_open(struct conn *c, int lfamily, const char *laddr, int cfamily,
		      const char *caddr)
{
	struct sockaddr_storage ss;
	socklen_t len = sa_make(lfamily, laddr, 0, &ss);
	c->lfd = socket(lfamily, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(c->lfd, 0);
	if (lfamily == AF_INET6) {
		int off = 0;
		setsockopt(c->lfd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
	}
	if (bind(c->lfd, (struct sockaddr *)&ss, len) < 0)
		return false; /* no such address family here */
	ck_assert_int_eq(listen(c->lfd, 4), 0);
	len = sizeof(ss);
	ck_assert_int_eq(getsockname(c->lfd, (struct sockaddr *)&ss, &len), 0);
	unsigned port = ntohs(lfamily == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
						 : ((struct sockaddr_in6 *)&ss)->sin6_port);
	len = sa_make(cfamily, caddr, port, &ss);
	c->cfd = socket(cfamily, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(c->cfd, 0);
	ck_assert_int_eq(connect(c->cfd, (struct sockaddr *)&ss, len), 0);
	c->afd = accept4(c->lfd, NULL, NULL, SOCK_CLOEXEC);
	ck_assert_int_ge(c->afd, 0);
	c->plen = sizeof(c->peer);
	c->llen = sizeof(c->local);
	ck_assert_int_eq(getpeername(c->afd, (struct sockaddr *)&c->peer, &c->plen), 0);
	ck_assert_int_eq(getsockname(c->afd, (struct sockaddr *)&c->local, &c->llen), 0);
	return true;
}

static int resolve(pid_t ep, const struct conn *c, struct px_ident **out, struct sv_err *err)
{
	*out = calloc(1, sizeof(**out));
	ck_assert_ptr_nonnull(*out);
	return px_ident_resolve(NULL, ep, (const struct sockaddr *)&c->peer, c->plen,
				(const struct sockaddr *)&c->local, c->llen, *out, err);
}

static bool can_scan_proc(const char *test)
{
	if (geteuid() == 0)
		return true;
	const char *ci = getenv("CI");
	if (ci && strcmp(ci, "true") == 0)
		ck_abort_msg("%s: needs root to read every /proc/<pid>/fd (CI=true)", test);
	fprintf(stderr, "SKIP %s: needs root to read every /proc/<pid>/fd\n", test);
	return false;
}

static bool starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void self_exe(char *buf, size_t size)
{
	ssize_t n = readlink("/proc/self/exe", buf, size - 1);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
}

static void real_path(const char *p, char *buf)
{
	ck_assert_ptr_nonnull(realpath(p, buf));
}

/* Fork and exec @path ("sleep 30") with @fd (if >= 0) as KID_FD; return once exec happened. */
static pid_t spawn_exec(const char *path, int fd)
{
	int p[2];
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (fd >= 0 && dup2(fd, KID_FD) < 0)
			_exit(127);
		char *const argv[] = {(char *)"sleep", (char *)"30", NULL};
		for (int i = 0; i < 50; i++) { /* ETXTBSY: a writer fd may still be closing */
			execv(path, argv);
			if (errno != ETXTBSY)
				break;
			usleep(20000);
		}
		int e = errno;
		(void)!write(p[1], &e, sizeof(e));
		_exit(127);
	}
	close(p[1]);
	int e = 0;
	ssize_t n = read(p[0], &e, sizeof(e));
	close(p[0]);
	ck_assert_msg(n == 0, "exec %s failed: %s", path, strerror(e));
	kid_add(pid);
	return pid;
}

/* Fork a child that keeps every fd (same executable, no exec) and waits to be killed. */
static pid_t spawn_fork(void)
{
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		for (;;)
			pause();
	}
	kid_add(pid);
	return pid;
}

static void copy_file(const char *src, const char *dst)
{
	int in = open(src, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(in, 0);
	int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
	ck_assert_int_ge(out, 0);
	char buf[65536];
	ssize_t n;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		ck_assert_int_eq(write(out, buf, (size_t)n), n);
	ck_assert_int_eq(n, 0);
	close(in);
	ck_assert_int_eq(close(out), 0);
}

static void make_dir(void)
{
	snprintf(g_dir, sizeof(g_dir), "/tmp/px-ident-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(g_dir));
}

/* ------------------------------------------------------------------ tests */

START_TEST(entrypoint_zero_is_denied_as_not_yet_spawned)
{
	struct conn c;
	ck_assert(conn_open(&c, AF_INET, "127.0.0.1", AF_INET, "127.0.0.1"));
	struct px_ident *id;
	struct sv_err err = {0};
	ck_assert_int_eq(resolve(0, &c, &id, &err), -ESRCH);
	ck_assert_str_eq(id->reason, "entrypoint process not yet spawned");
	ck_assert_str_eq(err.msg, "entrypoint process not yet spawned");
	free(id);
}
END_TEST

START_TEST(socket_inode_is_the_client_sockets_inode)
{
	struct conn c;
	ck_assert(conn_open(&c, AF_INET, "127.0.0.1", AF_INET, "127.0.0.1"));
	unsigned long long ino = 0;
	struct sv_err err = {0};
	ck_assert_int_eq(px_ident_socket_inode(getpid(), (struct sockaddr *)&c.peer, c.plen,
					       (struct sockaddr *)&c.local, c.llen, &ino, &err),
			 0);
	struct stat st;
	ck_assert_int_eq(fstat(c.cfd, &st), 0);
	ck_assert_uint_eq(ino, (unsigned long long)st.st_ino);
	/* swapped tuple: that row is the accepted socket, a different inode */
	ck_assert_int_eq(px_ident_socket_inode(getpid(), (struct sockaddr *)&c.local, c.llen,
					       (struct sockaddr *)&c.peer, c.plen, &ino, &err),
			 0);
	ck_assert_int_eq(fstat(c.afd, &st), 0);
	ck_assert_uint_eq(ino, (unsigned long long)st.st_ino);
}
END_TEST

START_TEST(unknown_tuple_is_not_found)
{
	struct conn c;
	ck_assert(conn_open(&c, AF_INET, "127.0.0.1", AF_INET, "127.0.0.1"));
	struct sockaddr_in *p = (struct sockaddr_in *)&c.peer;
	p->sin_port = htons((uint16_t)(ntohs(p->sin_port) ^ 1)); /* a port nobody uses here */
	struct px_ident *id;
	struct sv_err err = {0};
	ck_assert_int_eq(resolve(getpid(), &c, &id, &err), -ENOENT);
	ck_assert_msg(starts_with(id->reason, "failed to resolve peer binary: no ESTABLISHED"),
		      "%s", id->reason);
	free(id);
}
END_TEST

START_TEST(ipv6_and_v4_mapped_tuples_are_found_in_either_table)
{
	struct conn c;
	unsigned long long ino;
	struct stat st;
	struct sv_err err = {0};
	/* 1: IPv6 on both sides (tcp6 proper) */
	if (conn_open(&c, AF_INET6, "::1", AF_INET6, "::1")) {
		ck_assert_int_eq(px_ident_socket_inode(getpid(), (struct sockaddr *)&c.peer, c.plen,
						       (struct sockaddr *)&c.local, c.llen, &ino,
						       &err),
				 0);
		ck_assert_int_eq(fstat(c.cfd, &st), 0);
		ck_assert_uint_eq(ino, (unsigned long long)st.st_ino);
	} else {
		fprintf(stderr, "SKIP part 1 of %s: no ::1\n", __func__);
	}
	/* 2: dual-stack listener: the accepted side says ::ffff:127.0.0.1, the client row is in
	 * the IPv4 table */
	if (conn_open(&c, AF_INET6, "::", AF_INET, "127.0.0.1")) {
		ck_assert_int_eq(c.peer.ss_family, AF_INET6);
		ck_assert_int_eq(px_ident_socket_inode(getpid(), (struct sockaddr *)&c.peer, c.plen,
						       (struct sockaddr *)&c.local, c.llen, &ino,
						       &err),
				 0);
		ck_assert_int_eq(fstat(c.cfd, &st), 0);
		ck_assert_uint_eq(ino, (unsigned long long)st.st_ino);
	}
	/* 3: an IPv6 client to ::ffff:127.0.0.1: its row is v4-mapped in tcp6, the accepted
	 * side is plain IPv4 */
	if (conn_open(&c, AF_INET, "127.0.0.1", AF_INET6, "::ffff:127.0.0.1")) {
		ck_assert_int_eq(c.peer.ss_family, AF_INET);
		ck_assert_int_eq(px_ident_socket_inode(getpid(), (struct sockaddr *)&c.peer, c.plen,
						       (struct sockaddr *)&c.local, c.llen, &ino,
						       &err),
				 0);
		ck_assert_int_eq(fstat(c.cfd, &st), 0);
		ck_assert_uint_eq(ino, (unsigned long long)st.st_ino);
	}
}
END_TEST

START_TEST(own_connection_resolves_to_own_pid_and_exe)
{
	if (!can_scan_proc(__func__))
		return;
	struct conn c;
	ck_assert(conn_open(&c, AF_INET, "127.0.0.1", AF_INET, "127.0.0.1"));
	struct px_ident *id;
	struct sv_err err = {0};
	ck_assert_msg(resolve(getpid(), &c, &id, &err) == 0, "%s", err.msg);
	char exe[PATH_MAX];
	self_exe(exe, sizeof(exe));
	ck_assert_int_eq(id->exe.pid, getpid());
	ck_assert_str_eq(id->exe.path, exe);
	ck_assert(!id->exe.deleted);
	ck_assert_uint_eq(id->n_owners, 1);
	ck_assert_int_eq(id->owners[0], getpid());
	ck_assert_uint_eq(id->n_ancestors, 0); /* the owner is the entrypoint */
	ck_assert_str_eq(id->reason, "");
	struct stat st;
	ck_assert_int_eq(fstat(c.cfd, &st), 0);
	ck_assert_uint_eq(id->inode, (unsigned long long)st.st_ino);
	free(id);
}
END_TEST

START_TEST(ancestors_run_up_to_and_including_the_entrypoint)
{
	if (!can_scan_proc(__func__))
		return;
	struct conn c;
	ck_assert(conn_open(&c, AF_INET, "127.0.0.1", AF_INET, "127.0.0.1"));
	/* entrypoint (us) -> middle (same exe) -> sleep holding the socket */
	int p[2];
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	pid_t middle = fork();
	ck_assert_int_ge(middle, 0);
	if (middle == 0) {
		g_nkids = 0;
		pid_t g = spawn_exec("/bin/sleep", c.cfd);
		close(c.cfd);
		(void)!write(p[1], &g, sizeof(g));
		for (;;)
			pause();
	}
	kid_add(middle);
	pid_t g = 0;
	ck_assert_int_eq(read(p[0], &g, sizeof(g)), sizeof(g));
	kid_add(g);
	close(c.cfd); /* now only the sleep holds it */

	struct px_ident *id;
	struct sv_err err = {0};
	ck_assert_msg(resolve(getpid(), &c, &id, &err) == 0, "%s", err.msg);
	char sleep_path[PATH_MAX], exe[PATH_MAX];
	real_path("/bin/sleep", sleep_path);
	self_exe(exe, sizeof(exe));
	ck_assert_int_eq(id->exe.pid, g);
	ck_assert_str_eq(id->exe.path, sleep_path);
	ck_assert_uint_eq(id->n_owners, 1);
	ck_assert_uint_eq(id->n_ancestors, 2); /* stops at the entrypoint, our parent not listed */
	ck_assert_int_eq(id->ancestors[0].pid, middle);
	ck_assert_str_eq(id->ancestors[0].path, exe);
	ck_assert_int_eq(id->ancestors[1].pid, getpid());
	ck_assert_str_eq(id->ancestors[1].path, exe);
	free(id);
}
END_TEST

START_TEST(owner_outside_the_tree_is_found_and_its_chain_stops_before_pid_1)
{
	if (!can_scan_proc(__func__))
		return;
	struct conn c;
	ck_assert(conn_open(&c, AF_INET, "127.0.0.1", AF_INET, "127.0.0.1"));
	/* The "entrypoint" is a child with no descendants; the socket is ours (its parent's), so
	 * only the scan of every /proc/<pid> finds it. */
	pid_t ep = spawn_exec("/bin/sleep", -1);
	struct px_ident *id;
	struct sv_err err = {0};
	ck_assert_msg(resolve(ep, &c, &id, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(id->exe.pid, getpid());
	ck_assert_uint_ge(id->n_ancestors, 1);
	ck_assert_int_eq(id->ancestors[0].pid, getppid());
	for (size_t i = 0; i < id->n_ancestors; i++)
		ck_assert_int_ne(id->ancestors[i].pid, 1);
	free(id);
}
END_TEST

START_TEST(forked_child_sharing_the_socket_with_the_same_exe_is_not_ambiguous)
{
	if (!can_scan_proc(__func__))
		return;
	struct conn c;
	ck_assert(conn_open(&c, AF_INET, "127.0.0.1", AF_INET, "127.0.0.1"));
	pid_t kid = spawn_fork(); /* same image; its ancestors add only that same image */
	struct px_ident *id;
	struct sv_err err = {0};
	ck_assert_msg(resolve(getpid(), &c, &id, &err) == 0, "%s", err.msg);
	ck_assert_uint_eq(id->n_owners, 2);
	pid_t lo = kid < getpid() ? kid : getpid(), hi = kid < getpid() ? getpid() : kid;
	ck_assert_int_eq(id->owners[0], lo);
	ck_assert_int_eq(id->owners[1], hi);
	ck_assert_int_eq(id->exe.pid, lo);
	free(id);
}
END_TEST

START_TEST(inherited_socket_in_another_binary_is_ambiguous)
{
	if (!can_scan_proc(__func__))
		return;
	struct conn c;
	ck_assert(conn_open(&c, AF_INET, "127.0.0.1", AF_INET, "127.0.0.1"));
	pid_t kid = spawn_exec("/bin/sleep", c.cfd); /* we keep our copy too */
	struct px_ident *id;
	struct sv_err err = {0};
	ck_assert_int_eq(resolve(getpid(), &c, &id, &err), -ENOTUNIQ);
	char want[256];
	pid_t lo = kid < getpid() ? kid : getpid(), hi = kid < getpid() ? getpid() : kid;
	snprintf(want, sizeof(want),
		 "ambiguous shared socket ownership: inode %llu is held by PIDs [%d, %d] with "
		 "different policy identities",
		 id->inode, (int)lo, (int)hi);
	ck_assert_str_eq(id->reason, want);
	ck_assert_str_eq(err.msg, want);
	/* Once we let go, the sleep alone owns it and the identity is unambiguous. */
	close(c.cfd);
	free(id);
	ck_assert_msg(resolve(getpid(), &c, &id, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(id->exe.pid, kid);
	free(id);
}
END_TEST

START_TEST(deleted_binary_is_reported_without_the_suffix_and_flagged)
{
	if (!can_scan_proc(__func__))
		return;
	make_dir();
	char tool[128];
	snprintf(tool, sizeof(tool), "%s/tool", g_dir);
	copy_file("/bin/sleep", tool);
	struct conn c;
	ck_assert(conn_open(&c, AF_INET, "127.0.0.1", AF_INET, "127.0.0.1"));
	pid_t kid = spawn_exec(tool, c.cfd);
	close(c.cfd);
	ck_assert_int_eq(unlink(tool), 0);

	char raw[PATH_MAX + 16], link[64];
	snprintf(link, sizeof(link), "/proc/%d/exe", (int)kid);
	ssize_t n = readlink(link, raw, sizeof(raw) - 1);
	ck_assert_int_gt(n, 0);
	raw[n] = '\0';
	char want_raw[160];
	snprintf(want_raw, sizeof(want_raw), "%s (deleted)", tool);
	ck_assert_str_eq(raw, want_raw); /* the kernel's own marking */

	struct px_ident *id;
	struct sv_err err = {0};
	ck_assert_msg(resolve(getpid(), &c, &id, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(id->exe.pid, kid);
	ck_assert_str_eq(id->exe.path, tool);
	ck_assert(id->exe.deleted);
	free(id);
}
END_TEST

START_TEST(live_file_named_deleted_keeps_its_name)
{
	make_dir();
	char tool[128];
	snprintf(tool, sizeof(tool), "%s/tool (deleted)", g_dir);
	copy_file("/bin/sleep", tool);
	pid_t kid = spawn_exec(tool, -1);
	struct px_ident_bin b;
	struct sv_err err = {0};
	ck_assert_msg(px_ident_exe_read(kid, &b, &err) == 0, "%s", err.msg);
	ck_assert_str_eq(b.path, tool); /* fix 18: a real name is not mangled */
	ck_assert(!b.deleted);
	struct stat st;
	ck_assert_int_eq(stat(tool, &st), 0);
	ck_assert_uint_eq(b.ino, st.st_ino);

	/* Deleted for real: the kernel adds a second suffix and exactly one goes. */
	ck_assert_int_eq(unlink(tool), 0);
	ck_assert_msg(px_ident_exe_read(kid, &b, &err) == 0, "%s", err.msg);
	ck_assert_str_eq(b.path, tool);
	ck_assert(b.deleted);
}
END_TEST

START_TEST(decoy_named_like_the_deleted_link_does_not_stop_the_strip)
{
	make_dir();
	char tool[128], decoy[160];
	snprintf(tool, sizeof(tool), "%s/tool", g_dir);
	snprintf(decoy, sizeof(decoy), "%s (deleted)", tool);
	copy_file("/bin/sleep", tool);
	pid_t kid = spawn_exec(tool, -1);
	ck_assert_int_eq(unlink(tool), 0);
	copy_file("/bin/sleep", decoy); /* exists, but is another inode */
	struct px_ident_bin b;
	struct sv_err err = {0};
	ck_assert_msg(px_ident_exe_read(kid, &b, &err) == 0, "%s", err.msg);
	ck_assert_str_eq(b.path, tool);
	ck_assert(b.deleted);
	/* A symlink decoy pointing at the running image itself is not the file either. */
	ck_assert_int_eq(unlink(decoy), 0);
	char target[64];
	snprintf(target, sizeof(target), "/proc/%d/exe", (int)kid);
	ck_assert_int_eq(symlink(target, decoy), 0);
	ck_assert_msg(px_ident_exe_read(kid, &b, &err) == 0, "%s", err.msg);
	ck_assert_str_eq(b.path, tool);
	ck_assert(b.deleted);
}
END_TEST

START_TEST(binary_replaced_by_rename_reports_the_running_inode)
{
	make_dir();
	char tool[128], next[128];
	snprintf(tool, sizeof(tool), "%s/tool", g_dir);
	snprintf(next, sizeof(next), "%s/next", g_dir);
	copy_file("/bin/sleep", tool);
	struct stat old;
	ck_assert_int_eq(stat(tool, &old), 0);
	pid_t kid = spawn_exec(tool, -1);
	copy_file("/bin/true", next);
	ck_assert_int_eq(rename(next, tool), 0);
	struct px_ident_bin b;
	struct sv_err err = {0};
	ck_assert_msg(px_ident_exe_read(kid, &b, &err) == 0, "%s", err.msg);
	ck_assert_str_eq(b.path, tool);
	ck_assert(b.deleted);
	ck_assert_uint_eq(b.ino, old.st_ino); /* the image it runs, not the file now at @tool */
	ck_assert_int_eq(b.pid, kid);
}
END_TEST

/* A child that exits when *@wfd is closed (we may not kill it once unprivileged). It keeps
 * only @keep_fd (-1: none) of our fds, so it holds no other pipe or socket. */
static void become_nobody(void);

/* A child that holds @keep_fd (and, when @nobody, has become nobody) by the time this returns:
 * a scan racing its setresuid would find a root-owned fd table and rightly fail closed. */
static pid_t spawn_waiter(int keep_fd, bool nobody, int *wfd)
{
	int p[2], ready[2];
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(ready, O_CLOEXEC), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		for (int fd = 3; fd < 1024; fd++) {
			if (fd != keep_fd && fd != p[0] && fd != ready[1])
				close(fd);
		}
		if (nobody)
			become_nobody();
		char b = 'r';
		(void)!write(ready[1], &b, 1);
		close(ready[1]);
		(void)!read(p[0], &b, 1);
		_exit(0);
	}
	close(p[0]);
	close(ready[1]);
	char b;
	ck_assert_int_eq(read(ready[0], &b, 1), 1);
	close(ready[0]);
	*wfd = p[1];
	return pid;
}

static void waiter_end(pid_t pid, int wfd)
{
	close(wfd);
	ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
}

/* As an unprivileged user, a root process cannot be read. */
static void become_nobody(void)
{
	ck_assert_int_eq(setresgid(65534, 65534, 65534), 0);
	ck_assert_int_eq(setresuid(65534, 65534, 65534), 0);
	prctl(PR_SET_DUMPABLE, 1);
}

START_TEST(unreadable_fd_table_in_the_sandbox_fails_closed)
{
	if (geteuid() != 0) {
		fprintf(stderr, "SKIP %s: needs root to become another user\n", __func__);
		return;
	}
	struct conn c;
	ck_assert(conn_open(&c, AF_INET, "127.0.0.1", AF_INET, "127.0.0.1"));
	/* A descendant that stays root: it might hold the socket too, so the lookup must refuse
	 * rather than answer, although we (an owner) are found first. */
	int wfd;
	pid_t kid = spawn_waiter(c.cfd, false, &wfd);
	become_nobody();
	struct px_ident *id;
	struct sv_err err = {0};
	int r = resolve(getpid(), &c, &id, &err);
	waiter_end(kid, wfd);
	ck_assert_msg(r == -EACCES || r == -EPERM, "r=%d %s", r, id->reason);
	ck_assert_msg(strstr(id->reason, "CAP_SYS_PTRACE missing?") != NULL, "%s", id->reason);
	ck_assert_msg(starts_with(id->reason, "failed to resolve peer binary: "), "%s", id->reason);
	free(id);
}
END_TEST

START_TEST(unreadable_fd_table_outside_fails_closed_when_the_sandbox_has_no_owner)
{
	if (geteuid() != 0) {
		fprintf(stderr, "SKIP %s: needs root to become another user\n", __func__);
		return;
	}
	struct conn c;
	ck_assert(conn_open(&c, AF_INET, "127.0.0.1", AF_INET, "127.0.0.1"));
	/* The entrypoint holds nothing: the whole of /proc is read, and root's processes (PID 1
	 * at least) cannot be. */
	int wfd;
	pid_t ep = spawn_waiter(-1, false, &wfd);
	become_nobody();
	struct px_ident *id;
	struct sv_err err = {0};
	int r = resolve(ep, &c, &id, &err);
	waiter_end(ep, wfd);
	ck_assert_msg(r == -EACCES || r == -EPERM, "r=%d %s", r, id->reason);
	ck_assert_msg(strstr(id->reason, "CAP_SYS_PTRACE missing?") != NULL, "%s", id->reason);
	free(id);
}
END_TEST


/* --- sock_diag: the same answers as the /proc tables, in one exact lookup ------------------- */

static struct px_diag *diag_for(const struct conn *c)
{
	struct px_diag *d = NULL;
	struct sv_err err = {0};
	ck_assert_msg(px_diag_open(c->lfd, &d, &err) == 0, "%s", err.msg);
	return d;
}

START_TEST(sock_diag_finds_the_client_sockets_inode_of_either_family)
{
	static const struct {
		int lf;
		const char *la;
		int cf;
		const char *ca;
	} cases[] = {
		{AF_INET, "127.0.0.1", AF_INET, "127.0.0.1"},
		{AF_INET6, "::1", AF_INET6, "::1"},
		{AF_INET6, "::", AF_INET, "127.0.0.1"}, /* peer seen as v4-mapped */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct conn c;
		if (!conn_open(&c, cases[i].lf, cases[i].la, cases[i].cf, cases[i].ca))
			continue;
		struct px_diag *d = diag_for(&c);
		unsigned long long ino = 0, cookie = 0, want_cookie = 0;
		struct sv_err err = {0};
		ck_assert_msg(px_diag_socket_inode(d, (struct sockaddr *)&c.peer, c.plen,
						   (struct sockaddr *)&c.local, c.llen, &ino,
						   &cookie, &err) == 0,
			      "case %zu: %s", i, err.msg);
		struct stat st;
		ck_assert_int_eq(fstat(c.cfd, &st), 0);
		ck_assert_uint_eq(ino, (unsigned long long)st.st_ino);
		socklen_t cl = sizeof(want_cookie);
		ck_assert_int_eq(getsockopt(c.cfd, SOL_SOCKET, SO_COOKIE, &want_cookie, &cl), 0);
		ck_assert_uint_ne(cookie, 0);
		ck_assert_uint_eq(cookie, want_cookie); /* what the connect monitor records */
		px_diag_close(d);
		close(c.cfd);
		close(c.afd);
		close(c.lfd);
	}
}
END_TEST

START_TEST(sock_diag_does_not_find_unknown_or_closed_connections)
{
	struct conn c;
	ck_assert(conn_open(&c, AF_INET, "127.0.0.1", AF_INET, "127.0.0.1"));
	struct px_diag *d = diag_for(&c);
	struct sockaddr_in other;
	memcpy(&other, &c.peer, sizeof(other));
	other.sin_port = htons((uint16_t)(ntohs(other.sin_port) ^ 1));
	unsigned long long ino = 0;
	struct sv_err err = {0};
	ck_assert_int_eq(px_diag_socket_inode(d, (struct sockaddr *)&other, sizeof(other),
					      (struct sockaddr *)&c.local, c.llen, &ino, NULL, &err),
			 -ENOENT);
	/* Found while established... */
	ck_assert_int_eq(px_diag_socket_inode(d, (struct sockaddr *)&c.peer, c.plen,
					      (struct sockaddr *)&c.local, c.llen, &ino, NULL, &err),
			 0);
	/* ...not once the client has shut down its side: its end goes to FIN_WAIT2 but keeps its
	 * inode (it is still open), so only the ESTABLISHED filter can refuse it. */
	ck_assert_int_eq(shutdown(c.cfd, SHUT_WR), 0);
	usleep(20 * 1000);
	ck_assert_int_eq(px_diag_socket_inode(d, (struct sockaddr *)&c.peer, c.plen,
					      (struct sockaddr *)&c.local, c.llen, &ino, NULL, &err),
			 -ENOENT);
	close(c.cfd);
	px_diag_close(d);
}
END_TEST

START_TEST(the_proxy_process_is_never_read_as_an_owner)
{
	if (!can_scan_proc(__func__))
		return;
	struct conn c;
	ck_assert(conn_open(&c, AF_INET, "127.0.0.1", AF_INET, "127.0.0.1"));
	/* The entrypoint and a second child both hold the client socket: two owners, unless the
	 * second is the proxy process (ctx.helper), whose fd table is never read. */
	int w1, w2;
	pid_t ep = spawn_waiter(c.cfd, false, &w1);
	pid_t helper = spawn_waiter(c.cfd, false, &w2);
	close(c.cfd);
	struct px_ident_ctx ctx = {.scope = getpid()};
	struct px_ident *id = calloc(1, sizeof(*id));
	struct sv_err err = {0};
	int r = px_ident_resolve(&ctx, ep, (struct sockaddr *)&c.peer, c.plen,
				 (struct sockaddr *)&c.local, c.llen, id, &err);
	ck_assert_msg(r == 0, "%s", err.msg);
	ck_assert_uint_eq(id->n_owners, 2);
	ctx.helper = helper;
	r = px_ident_resolve(&ctx, ep, (struct sockaddr *)&c.peer, c.plen,
			     (struct sockaddr *)&c.local, c.llen, id, &err);
	waiter_end(ep, w1);
	waiter_end(helper, w2);
	ck_assert_msg(r == 0, "%s", err.msg);
	ck_assert_uint_eq(id->n_owners, 1);
	ck_assert_int_eq(id->owners[0], ep);
	free(id);
}
END_TEST

START_TEST(owner_elsewhere_in_the_scope_is_found_without_reading_the_rest_of_proc)
{
	if (!can_scan_proc(__func__))
		return;
	struct conn c;
	ck_assert(conn_open(&c, AF_INET, "127.0.0.1", AF_INET, "127.0.0.1"));
	/* Two children of ours (the "supervisor"): the entrypoint holds nothing, its sibling
	 * holds the socket (we drop our copy). All of us unprivileged: reading the rest of /proc
	 * (root's PID 1) would fail, so success means the scope alone was read. */
	if (geteuid() != 0) {
		fprintf(stderr, "SKIP %s: needs root to become another user\n", __func__);
		return;
	}
	int w1, w2;
	pid_t ep = spawn_waiter(-1, true, &w1);
	pid_t sib = spawn_waiter(c.cfd, true, &w2);
	close(c.cfd);
	struct px_diag *diag = diag_for(&c); /* needs our privileges */
	become_nobody();
	struct px_ident_ctx ctx = {.diag = diag, .scope = getpid()};
	struct px_ident *id = calloc(1, sizeof(*id));
	struct sv_err err = {0};
	int r = px_ident_resolve(&ctx, ep, (struct sockaddr *)&c.peer, c.plen,
				 (struct sockaddr *)&c.local, c.llen, id, &err);
	waiter_end(ep, w1);
	waiter_end(sib, w2);
	ck_assert_msg(r == 0, "%s", err.msg);
	ck_assert_int_eq(id->exe.pid, sib);
	ck_assert_uint_eq(id->n_owners, 1);
	px_diag_close(ctx.diag);
	free(id);
}
END_TEST

/* Raise our soft RLIMIT_NOFILE to the hard one and hold about @n more open files (dups of
 * /dev/null). Returns how many are held. */
static int hold_fds(int n)
{
	struct rlimit rl;
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	rl.rlim_cur = rl.rlim_max;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	int held = 1;
	while (held < n && fcntl(fd, F_DUPFD_CLOEXEC, 0) >= 0)
		held++;
	return held;
}

/* A child of ours holding about @n open files, none of them a socket of the test; returns how
 * many it holds. */
static int spawn_hog(int n)
{
	int p[2];
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(p[0]);
		int held = hold_fds(n);
		(void)!write(p[1], &held, sizeof(held));
		for (;;)
			pause();
	}
	close(p[1]);
	int held = 0;
	ck_assert_int_eq(read(p[0], &held, sizeof(held)), (ssize_t)sizeof(held));
	close(p[0]);
	kid_add(pid);
	return held;
}

static bool can_hold(int n, const char *test)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY &&
	    rl.rlim_max < (rlim_t)n + 64) {
		fprintf(stderr, "SKIP %s: RLIMIT_NOFILE hard limit %llu is below %d\n", test,
			(unsigned long long)rl.rlim_max, n + 64);
		return false;
	}
	return true;
}

/* Issue 17: 14 processes holding ~19,800 files each made every lookup fail ("more than 262144
 * open files to examine"). They are read after the owner and only within the budget. */
START_TEST(processes_holding_many_files_do_not_make_another_owners_lookup_fail)
{
	if (!can_scan_proc(__func__) || !can_hold(19000, __func__))
		return;
	int total = 0;
	for (int i = 0; i < 14; i++) /* before the socket exists: none of them holds it */
		total += spawn_hog(19000);
	ck_assert_int_gt(total, PX_IDENT_MAX_FDS_TOTAL * 4);
	struct conn c;
	ck_assert(conn_open(&c, AF_INET, "127.0.0.1", AF_INET, "127.0.0.1"));
	struct px_ident *id;
	struct sv_err err = {0};
	ck_assert_msg(resolve(getpid(), &c, &id, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(id->exe.pid, getpid());
	ck_assert_uint_eq(id->n_owners, 1);
	ck_assert_uint_gt(id->n_unexamined, 0); /* the hogs past the budget */
	free(id);
}
END_TEST

/* The fail-closed side: when the socket is not among the tables read, the lookup fails; only a
 * process holding more files than the rest can be in that position. */
START_TEST(an_owner_holding_more_files_than_the_budget_leaves_fails_closed)
{
	if (!can_scan_proc(__func__) || !can_hold(19500, __func__))
		return;
	for (int i = 0; i < 4; i++)
		spawn_hog(17000);
	struct conn c;
	ck_assert(conn_open(&c, AF_INET, "127.0.0.1", AF_INET, "127.0.0.1"));
	ck_assert_int_gt(hold_fds(19500), 17000);
	struct px_ident *id;
	struct sv_err err = {0};
	ck_assert_int_eq(resolve(getpid(), &c, &id, &err), -E2BIG);
	ck_assert_msg(strstr(id->reason, "processes holding more open files were not examined"),
		      "%s", id->reason);
	free(id);
}
END_TEST

static Suite *px_ident_suite(void)
{
	Suite *s = suite_create("px_ident");
	TCase *tc = tcase_create("identity");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, entrypoint_zero_is_denied_as_not_yet_spawned);
	tcase_add_test(tc, socket_inode_is_the_client_sockets_inode);
	tcase_add_test(tc, unknown_tuple_is_not_found);
	tcase_add_test(tc, ipv6_and_v4_mapped_tuples_are_found_in_either_table);
	tcase_add_test(tc, own_connection_resolves_to_own_pid_and_exe);
	tcase_add_test(tc, ancestors_run_up_to_and_including_the_entrypoint);
	tcase_add_test(tc, owner_outside_the_tree_is_found_and_its_chain_stops_before_pid_1);
	tcase_add_test(tc, forked_child_sharing_the_socket_with_the_same_exe_is_not_ambiguous);
	tcase_add_test(tc, inherited_socket_in_another_binary_is_ambiguous);
	tcase_add_test(tc, deleted_binary_is_reported_without_the_suffix_and_flagged);
	tcase_add_test(tc, live_file_named_deleted_keeps_its_name);
	tcase_add_test(tc, decoy_named_like_the_deleted_link_does_not_stop_the_strip);
	tcase_add_test(tc, binary_replaced_by_rename_reports_the_running_inode);
	tcase_add_test(tc, unreadable_fd_table_in_the_sandbox_fails_closed);
	tcase_add_test(tc, sock_diag_finds_the_client_sockets_inode_of_either_family);
	tcase_add_test(tc, sock_diag_does_not_find_unknown_or_closed_connections);
	tcase_add_test(tc, owner_elsewhere_in_the_scope_is_found_without_reading_the_rest_of_proc);
	tcase_add_test(tc, the_proxy_process_is_never_read_as_an_owner);
	tcase_add_test(tc, unreadable_fd_table_outside_fails_closed_when_the_sandbox_has_no_owner);
	tcase_add_test(tc, processes_holding_many_files_do_not_make_another_owners_lookup_fail);
	tcase_add_test(tc, an_owner_holding_more_files_than_the_budget_leaves_fails_closed);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(px_ident_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
