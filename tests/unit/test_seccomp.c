/* Unit tests for supervisor/seccomp.c: every rule of the agent filter and the supervisor prelude.
 *
 * The bubblewrap try-syscall technique: each call gets a bad fd or pointer, so an allowed call
 * fails with EBADF/EFAULT/EINVAL and a blocked one with the filter's EPERM/ENOSYS. Filters are
 * only ever installed in grandchildren that _exit(), so the Check child stays unfiltered (LSan
 * needs ptrace at exit), and each call runs in its own fork so a wrongly allowed call cannot
 * change the state seen by the next. As root, every call is first run unfiltered as a control.
 */
#include <check.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "supervisor/isolation/seccomp.h"

#ifndef SYS_open_tree_attr
#define SYS_open_tree_attr 467
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

#define X32_BIT		0x40000000L
#define NR_INT80_GETPID (-2L) /* pseudo number: i386 getpid through int $0x80 */
#define WANT_OK		1L    /* any result >= 0 */
#define KILLED(sig)	(-100000L - (sig))
#define NO_REPORT	(-200000L)
#define CASES_MAX	96
#define BAD_PTR		NULL

struct sc_case {
	const char *name;
	long nr;
	long a[6];
	long want;    /* -errno, WANT_OK, or KILLED(sig) under the filter */
	bool control; /* run unfiltered first: the outcome must differ */
};

static long int80_getpid(void)
{
#ifdef __x86_64__
	long ret;
	__asm__ volatile("int $0x80"
			 : "=a"(ret)
			 : "a"(20L)
			 : "memory", "cc", "r8", "r9", "r10", "r11");
	return ret;
#else
	return -ENOSYS;
#endif
}

/* Does int $0x80 reach the kernel at all (IA32_EMULATION built and enabled)? Probed unfiltered
 * in a child: getpid through the i386 entry returns the child's pid there. */
static bool ia32_entry_present(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		signal(SIGSEGV, SIG_DFL); /* a plain fault, not a sanitizer report */
		_exit(int80_getpid() == (long)getpid() ? 0 : 1);
	}
	int status = 0;
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return true; /* cannot tell: keep the case, it will say what happened */
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Runs in a disposable process: the raw result, -errno on failure. */
static long try_call(const struct sc_case *c)
{
	if (c->nr == NR_INT80_GETPID)
		return int80_getpid() < 0 ? -ENOSYS : 0;
	long r = syscall(c->nr, c->a[0], c->a[1], c->a[2], c->a[3], c->a[4], c->a[5]);
	if (r == 0 && c->nr == SYS_clone)
		_exit(0); /* a clone that was let through: the new child leaves at once */
	return r < 0 ? -errno : r;
}

static long wait_result(pid_t pid, int rd)
{
	long v = NO_REPORT;
	ssize_t n;
	do
		n = read(rd, &v, sizeof(v));
	while (n < 0 && errno == EINTR);
	close(rd);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (n == (ssize_t)sizeof(v))
		return v;
	return WIFSIGNALED(status) ? KILLED(WTERMSIG(status)) : NO_REPORT;
}

/* One call in a forked child. */
static long in_child(const struct sc_case *c)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return NO_REPORT;
	pid_t pid = fork();
	if (pid < 0)
		return NO_REPORT;
	if (pid == 0) {
		close(p[0]);
		long v = try_call(c);
		(void)!write(p[1], &v, sizeof(v));
		_exit(0);
	}
	close(p[1]);
	return wait_result(pid, p[0]);
}

/* A grandchild installs @prog (NULL: nothing) and runs every case, each in its own fork. */
static int run_filtered(const struct sv_seccomp_prog *prog, const struct sc_case *c, size_t n,
			long *out, char *errmsg, size_t errsz)
{
	int p[2];
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(p[0]);
		struct sv_err err = {0};
		long res[CASES_MAX + 1];
		res[0] = prog ? sv_seccomp_install(prog, false, &err) : 0;
		for (size_t i = 0; res[0] == 0 && i < n; i++)
			res[i + 1] = in_child(&c[i]);
		(void)!write(p[1], res, sizeof(long) * (n + 1));
		(void)!write(p[1], err.msg, sizeof(err.msg));
		_exit(0);
	}
	close(p[1]);
	long res[CASES_MAX + 1];
	ssize_t got = read(p[0], res, sizeof(long) * (n + 1));
	ck_assert_int_eq(got, (ssize_t)(sizeof(long) * (n + 1)));
	ck_assert_int_ge(read(p[0], errmsg, errsz), 0);
	close(p[0]);
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	memcpy(out, res + 1, sizeof(long) * n);
	return (int)res[0];
}

static bool matches(long want, long got)
{
	return want == WANT_OK ? got >= 0 : got == want;
}

/* Controls only prove something where nothing else denies these calls: root with
 * CAP_SYS_ADMIN and no seccomp filter of its own. */
static bool controls_are_meaningful(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	if (!f)
		return false;
	char line[256];
	unsigned long long eff = 0;
	long mode = -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "CapEff:", 7) == 0)
			eff = strtoull(line + 7, NULL, 16);
		else if (strncmp(line, "Seccomp:", 8) == 0)
			mode = strtol(line + 8, NULL, 10);
	}
	fclose(f);
	bool ok = geteuid() == 0 && (eff & (1ULL << 21)) && mode == 0;
	if (!ok)
		fprintf(stderr, "test_seccomp: not root with CAP_SYS_ADMIN and unfiltered: "
				"unfiltered controls skipped\n");
	return ok;
}

static void check_cases(const struct sv_seccomp_prog *prog, const struct sc_case *c, size_t n)
{
	ck_assert_uint_le(n, CASES_MAX);
	long before[CASES_MAX], after[CASES_MAX];
	char msg[SV_ERR_MSG_MAX] = "";
	bool controls = controls_are_meaningful();
	for (size_t i = 0; controls && i < n; i++)
		before[i] = c[i].control ? in_child(&c[i]) : 0;
	int r = run_filtered(prog, c, n, after, msg, sizeof(msg));
	ck_assert_msg(r == 0, "install failed: %d %s", r, msg);
	for (size_t i = 0; i < n; i++) {
		ck_assert_msg(matches(c[i].want, after[i]), "%s: filtered result %ld, want %ld",
			      c[i].name, after[i], c[i].want);
		if (controls && c[i].control)
			ck_assert_msg(!matches(c[i].want, before[i]),
				      "%s: unfiltered result %ld already matches %ld: test proves "
				      "nothing",
				      c[i].name, before[i], c[i].want);
	}
}

static void build_agent(struct sv_seccomp_prog *p, unsigned int opts)
{
	struct sv_err err = {0};
	int r = sv_seccomp_build_agent(p, opts, &err);
	ck_assert_msg(r == 0, "build: %s", err.msg);
	ck_assert_ptr_nonnull(p->prog.filter);
	ck_assert_uint_gt(p->prog.len, 0);
}

/* Case tables read best one case a line. */
/* clang-format off */
#define C(n, nr_, want_, ...) {n, nr_, {__VA_ARGS__}, want_, true}
/* clang-format on */

START_TEST(agent_denies_every_listed_syscall)
{
	/* clang-format off */
	const struct sc_case c[] = {
		C("memfd_create", SYS_memfd_create, -EPERM, (long)BAD_PTR, 0),
		C("ptrace", SYS_ptrace, -EPERM, 2 /* PTRACE_PEEKDATA */, -1, 0, 0),
		C("process_vm_readv", SYS_process_vm_readv, -EPERM, 0, 0, 0, 0, 0, 1),
		C("process_vm_writev", SYS_process_vm_writev, -EPERM, 0, 0, 0, 0, 0, 1),
		C("pidfd_open", SYS_pidfd_open, -EPERM, -1, 0),
		C("pidfd_getfd", SYS_pidfd_getfd, -EPERM, -1, 0, 0),
		C("pidfd_send_signal", SYS_pidfd_send_signal, -EPERM, -1, 0, 0, 0),
		C("bpf", SYS_bpf, -EPERM, -1, 0, 0),
		C("userfaultfd", SYS_userfaultfd, -EPERM, -1),
		C("perf_event_open", SYS_perf_event_open, -EPERM, 0, 0, -1, -1, 0),
		C("keyctl", SYS_keyctl, -EPERM, -1, 0, 0, 0, 0),
		C("add_key", SYS_add_key, -EPERM, 0, 0, 0, 0, 0),
		C("request_key", SYS_request_key, -EPERM, 0, 0, 0, 0),
		C("mount", SYS_mount, -EPERM, 0, 0, 0, 0, 0),
		C("umount2", SYS_umount2, -EPERM, 0, 0),
		C("pivot_root", SYS_pivot_root, -EPERM, 0, 0),
		C("fsopen", SYS_fsopen, -EPERM, 0, 0),
		C("fsconfig", SYS_fsconfig, -EPERM, -1, 0, 0, 0, 0),
		C("fsmount", SYS_fsmount, -EPERM, -1, 0, 0),
		C("fspick", SYS_fspick, -EPERM, -1, 0, 0),
		C("move_mount", SYS_move_mount, -EPERM, -1, 0, -1, 0, 0),
		C("open_tree", SYS_open_tree, -EPERM, -1, 0, 0),
		C("mount_setattr", SYS_mount_setattr, -EPERM, -1, 0, 0, 0, 0),
		C("open_tree_attr", SYS_open_tree_attr, -EPERM, -1, 0, 0, 0, 0),
		C("setns", SYS_setns, -EPERM, -1, 0),
		C("init_module", SYS_init_module, -EPERM, 0, 0, 0),
		C("finit_module", SYS_finit_module, -EPERM, -1, 0, 0),
		C("delete_module", SYS_delete_module, -EPERM, 0, 0),
		/* 17 segments > KEXEC_SEGMENT_MAX: never an unload, even unfiltered */
		C("kexec_load", SYS_kexec_load, -EPERM, 0, 17, 0, 0),
		C("kexec_file_load", SYS_kexec_file_load, -EPERM, -1, -1, 0, 0, 0x80000000L),
		C("open_by_handle_at", SYS_open_by_handle_at, -EPERM, -1, 0, 0),
		C("clone3", SYS_clone3, -ENOSYS, 0, 0),
		C("io_uring_setup", SYS_io_uring_setup, -ENOSYS, 0, 0),
		C("io_uring_enter", SYS_io_uring_enter, -ENOSYS, -1, 0, 0, 0, 0, 0),
		C("io_uring_register", SYS_io_uring_register, -ENOSYS, -1, 0, 0, 0),
	};
	/* clang-format on */
	struct sv_seccomp_prog p;
	build_agent(&p, 0);
	check_cases(&p, c, SV_ARRAY_SIZE(c));
	sv_seccomp_prog_free(&p);
}
END_TEST

START_TEST(agent_conditional_rules_match_only_their_arguments)
{
	/* clang-format off */
	const struct sc_case c[] = {
		C("unshare(NEWUSER)", SYS_unshare, -EPERM, CLONE_NEWUSER),
		C("unshare(NEWUSER|NEWNS)", SYS_unshare, -EPERM, CLONE_NEWUSER | CLONE_NEWNS),
		{"unshare(0)", SYS_unshare, {0}, WANT_OK, false},
		C("clone(NEWUSER)", SYS_clone, -EPERM, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0),
		{"clone(SIGCHLD)", SYS_clone, {SIGCHLD}, WANT_OK, false},
		C("execveat(EMPTY_PATH)", SYS_execveat, -EPERM, -1, (long)"", 0, 0, AT_EMPTY_PATH),
		C("execveat(EMPTY_PATH|NOFOLLOW)", SYS_execveat, -EPERM, -1, (long)"", 0, 0,
		  AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW),
		{"execveat(0)", SYS_execveat, {-1, (long)"", 0, 0, 0}, -ENOENT, false},
		C("seccomp(SET_MODE_FILTER)", SYS_seccomp, -EPERM, SECCOMP_SET_MODE_FILTER, 0, 0),
		C("seccomp(SET_MODE_FILTER|1<<32)", SYS_seccomp, -EPERM,
		  (long)(SECCOMP_SET_MODE_FILTER | (1UL << 32)), 0, 0),
		{"seccomp(GET_ACTION_AVAIL)", SYS_seccomp, {SECCOMP_GET_ACTION_AVAIL}, -EFAULT},
		C("prctl(PR_SET_SECCOMP, FILTER)", SYS_prctl, -EPERM, PR_SET_SECCOMP,
		  SECCOMP_MODE_FILTER, 0, 0, 0),
		{"prctl(PR_GET_SECCOMP)", SYS_prctl, {PR_GET_SECCOMP}, 2, false},
		C("ioctl(TIOCSTI)", SYS_ioctl, -EPERM, -1, TIOCSTI, 0),
		C("ioctl(TIOCSTI|~0<<32)", SYS_ioctl, -EPERM, -1, (long)0xffffffff00005412ULL, 0),
		C("ioctl(TIOCSTI|1<<32)", SYS_ioctl, -EPERM, -1, (long)(TIOCSTI | (1UL << 32)), 0),
		C("ioctl(TIOCLINUX)", SYS_ioctl, -EPERM, -1, TIOCLINUX, 0),
		C("ioctl(TIOCLINUX|junk)", SYS_ioctl, -EPERM, -1, (long)0xdead00000000541cULL, 0),
		{"ioctl(TCGETS)", SYS_ioctl, {-1, TCGETS, 0}, -EBADF, false},
	};
	/* clang-format on */
	ck_assert_int_eq(TIOCSTI, 0x5412);
	ck_assert_int_eq(TIOCLINUX, 0x541c);
	struct sv_seccomp_prog p;
	build_agent(&p, 0);
	check_cases(&p, c, SV_ARRAY_SIZE(c));
	sv_seccomp_prog_free(&p);
}
END_TEST

START_TEST(agent_refuses_a_real_second_filter)
{
	struct sock_filter allow[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
	struct sock_fprog second = {.len = 1, .filter = allow};
	/* clang-format off */
	const struct sc_case c[] = {
		C("seccomp(allow-all filter)", SYS_seccomp, -EPERM, SECCOMP_SET_MODE_FILTER, 0,
		  (long)&second),
		C("prctl(PR_SET_SECCOMP, allow-all filter)", SYS_prctl, -EPERM, PR_SET_SECCOMP,
		  SECCOMP_MODE_FILTER, (long)&second, 0, 0),
	};
	/* clang-format on */
	struct sv_seccomp_prog p;
	build_agent(&p, 0);
	check_cases(&p, c, SV_ARRAY_SIZE(c));
	sv_seccomp_prog_free(&p);
}
END_TEST

START_TEST(agent_socket_families_are_an_allow_list)
{
	/* No unfiltered control for rare families: creating them as root would autoload modules
	 * (rds, tipc, ...) on the test host. AF_PACKET is built in and harmless. */
	/* clang-format off */
	const struct sc_case c[] = {
		C("AF_PACKET", SYS_socket, -EPERM, AF_PACKET, SOCK_RAW, 0),
		C("AF_PACKET|1<<32", SYS_socket, -EPERM, AF_PACKET | 1L << 32, SOCK_RAW, 0),
		{"AF_BLUETOOTH", SYS_socket, {AF_BLUETOOTH, SOCK_STREAM, 0}, -EPERM, false},
		{"AF_VSOCK", SYS_socket, {AF_VSOCK, SOCK_STREAM, 0}, -EPERM, false},
		{"AF_ALG", SYS_socket, {AF_ALG, SOCK_SEQPACKET, 0}, -EPERM, false},
		{"AF_KEY", SYS_socket, {AF_KEY, SOCK_RAW, 2}, -EPERM, false},
		{"AF_RDS", SYS_socket, {21, SOCK_SEQPACKET, 0}, -EPERM, false},
		{"AF_TIPC", SYS_socket, {30, SOCK_RDM, 0}, -EPERM, false},
		{"AF_UNSPEC", SYS_socket, {AF_UNSPEC, SOCK_STREAM, 0}, -EPERM, false},
		{"AF_APPLETALK", SYS_socket, {5, SOCK_DGRAM, 0}, -EPERM, false},
		{"family 46", SYS_socket, {46, SOCK_DGRAM, 0}, -EPERM, false},
		{"family 0x7fffffff", SYS_socket, {0x7fffffff, SOCK_DGRAM, 0}, -EPERM, false},
		{"socketpair(AF_TIPC)", SYS_socketpair, {30, SOCK_DGRAM, 0, 0}, -EPERM, false},
		{"AF_INET", SYS_socket, {AF_INET, SOCK_STREAM, 0}, WANT_OK, false},
		{"AF_INET6", SYS_socket, {AF_INET6, SOCK_DGRAM, 0}, WANT_OK, false},
		{"AF_UNIX", SYS_socket, {AF_UNIX, SOCK_STREAM, 0}, WANT_OK, false},
		{"AF_NETLINK ROUTE", SYS_socket, {AF_NETLINK, SOCK_RAW, 0}, WANT_OK, false},
		C("AF_NETLINK AUDIT", SYS_socket, -EPERM, AF_NETLINK, SOCK_RAW, 9),
		C("AF_NETLINK SOCK_DIAG", SYS_socket, -EPERM, AF_NETLINK, SOCK_DGRAM, 4),
		C("AF_NETLINK KOBJECT_UEVENT", SYS_socket, -EPERM, AF_NETLINK, SOCK_DGRAM, 15),
		C("AF_NETLINK|1<<32 AUDIT", SYS_socket, -EPERM, (long)(AF_NETLINK | (1UL << 32)),
		  SOCK_RAW, 9),
	};
	/* clang-format on */
	struct sv_seccomp_prog p;
	build_agent(&p, 0);
	check_cases(&p, c, SV_ARRAY_SIZE(c));
	sv_seccomp_prog_free(&p);
}
END_TEST

START_TEST(agent_deny_inet_option_blocks_ip_sockets_only)
{
	/* clang-format off */
	const struct sc_case c[] = {
		C("AF_INET", SYS_socket, -EPERM, AF_INET, SOCK_STREAM, 0),
		C("AF_INET6", SYS_socket, -EPERM, AF_INET6, SOCK_DGRAM, 0),
		{"AF_UNIX", SYS_socket, {AF_UNIX, SOCK_STREAM, 0}, WANT_OK, false},
		{"AF_NETLINK ROUTE", SYS_socket, {AF_NETLINK, SOCK_RAW, 0}, WANT_OK, false},
	};
	/* clang-format on */
	struct sv_seccomp_prog p;
	build_agent(&p, SV_SECCOMP_DENY_INET);
	check_cases(&p, c, SV_ARRAY_SIZE(c));
	sv_seccomp_prog_free(&p);
}
END_TEST

START_TEST(agent_kills_foreign_abi_syscalls)
{
	/* clang-format off */
	const struct sc_case c[] = {
		C("x32 getpid", X32_BIT | SYS_getpid, KILLED(SIGSYS)),
		C("x32 bit on an unknown number", X32_BIT | 1000, KILLED(SIGSYS)),
		{"native getpid", SYS_getpid, {0}, WANT_OK, false},
#ifdef __x86_64__
		C("i386 getpid via int 0x80", NR_INT80_GETPID, KILLED(SIGSYS)), /* last */
#endif
	};
	/* clang-format on */
	size_t n = SV_ARRAY_SIZE(c);
#ifdef __x86_64__
	/* A kernel without the ia32 entry faults int $0x80 before seccomp sees it: nothing to
	 * filter there, so the i386 case only runs where the entry exists. */
	if (!ia32_entry_present()) {
		fprintf(stderr, "test_seccomp: this kernel has no ia32 entry: i386 case skipped\n");
		n--;
	}
#endif
	struct sv_seccomp_prog p;
	build_agent(&p, 0);
	check_cases(&p, c, n);
	sv_seccomp_prog_free(&p);
}
END_TEST

/* In a filtered grandchild: the ordinary things an agent does. Returns a failure bit mask. */
static void *thread_noop(void *arg)
{
	return arg;
}

static int ordinary_work(void)
{
	int bad = 0;
	char buf[64];
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, buf, sizeof(buf)) <= 0)
		bad |= 1;
	if (fd >= 0)
		close(fd);
	if (getpid() <= 1)
		bad |= 2;
	pthread_t t; /* glibc tries clone3 first: ENOSYS must make it fall back */
	void *ret = NULL;
	if (pthread_create(&t, NULL, thread_noop, &bad) != 0 || pthread_join(t, &ret) != 0 ||
	    ret != &bad)
		bad |= 4;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		bad |= 8;
	else {
		close(sv[0]);
		close(sv[1]);
	}
	pid_t pid = fork();
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", "exit 7", (char *)NULL);
		_exit(99);
	}
	int status = 0;
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 7)
		bad |= 16;
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		bad |= 32;
	return bad;
}

static int in_filtered_child(const struct sv_seccomp_prog *p, bool tsync, int (*fn)(void))
{
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct sv_err err = {0};
		if (p && sv_seccomp_install(p, tsync, &err) < 0)
			_exit(200);
		_exit(fn());
	}
	int status = 0;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status), "child killed by signal %d",
		      WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	return WEXITSTATUS(status);
}

START_TEST(agent_still_allows_ordinary_work)
{
	struct sv_seccomp_prog p;
	build_agent(&p, 0);
	int bad = in_filtered_child(&p, false, ordinary_work);
	ck_assert_msg(bad == 0, "ordinary work failed under the agent filter: mask 0x%x", bad);
	sv_seccomp_prog_free(&p);
}
END_TEST

START_TEST(agent_log_option_sets_the_log_flag_and_installs)
{
	struct sv_seccomp_prog p;
	build_agent(&p, SV_SECCOMP_LOG);
	ck_assert_uint_eq(p.flags, SECCOMP_FILTER_FLAG_LOG);
	ck_assert_int_eq(in_filtered_child(&p, false, ordinary_work), 0);
	sv_seccomp_prog_free(&p);
	build_agent(&p, 0);
	ck_assert_uint_eq(p.flags, 0);
	sv_seccomp_prog_free(&p);
}
END_TEST

START_TEST(install_refuses_a_missing_program)
{
	struct sv_err err = {0};
	struct sv_seccomp_prog empty = {0};
	ck_assert_int_eq(sv_seccomp_install(NULL, false, &err), -EINVAL);
	ck_assert_int_eq(sv_seccomp_install(&empty, false, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "no filter"));
	sv_seccomp_prog_free(&empty); /* freeing an empty program is harmless */
	sv_seccomp_prog_free(NULL);
}
END_TEST

START_TEST(install_reports_a_kernel_rejection)
{
	/* A program that does not end in RET is rejected by the kernel's checker. */
	struct sock_filter bad[] = {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0)};
	struct sv_seccomp_prog p = {.prog = {.len = 1, .filter = bad}};
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct sv_err err = {0};
		int r = sv_seccomp_install(&p, false, &err);
		_exit(r == -EINVAL && err.code == EINVAL && strstr(err.msg, "cannot install") ? 0
											      : 1);
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}
END_TEST

/* ---- prelude ---------------------------------------------------------------------------- */

START_TEST(prelude_denies_every_listed_syscall_and_keeps_setns)
{
	/* clang-format off */
	const struct sc_case c[] = {
		C("mount", SYS_mount, -EPERM, 0, 0, 0, 0, 0),
		C("umount2", SYS_umount2, -EPERM, 0, 0),
		C("pivot_root", SYS_pivot_root, -EPERM, 0, 0),
		C("fsopen", SYS_fsopen, -EPERM, 0, 0),
		C("fsconfig", SYS_fsconfig, -EPERM, -1, 0, 0, 0, 0),
		C("fsmount", SYS_fsmount, -EPERM, -1, 0, 0),
		C("fspick", SYS_fspick, -EPERM, -1, 0, 0),
		C("move_mount", SYS_move_mount, -EPERM, -1, 0, -1, 0, 0),
		C("open_tree", SYS_open_tree, -EPERM, -1, 0, 0),
		C("mount_setattr", SYS_mount_setattr, -EPERM, -1, 0, 0, 0, 0),
		C("open_tree_attr", SYS_open_tree_attr, -EPERM, -1, 0, 0, 0, 0),
		C("bpf", SYS_bpf, -EPERM, -1, 0, 0),
		C("perf_event_open", SYS_perf_event_open, -EPERM, 0, 0, -1, -1, 0),
		C("userfaultfd", SYS_userfaultfd, -EPERM, -1),
		C("init_module", SYS_init_module, -EPERM, 0, 0, 0),
		C("finit_module", SYS_finit_module, -EPERM, -1, 0, 0),
		C("delete_module", SYS_delete_module, -EPERM, 0, 0),
		C("kexec_load", SYS_kexec_load, -EPERM, 0, 17, 0, 0),
		C("kexec_file_load", SYS_kexec_file_load, -EPERM, -1, -1, 0, 0, 0x80000000L),
		{"setns", SYS_setns, {-1, 0}, -EBADF, false},
		/* an invalid flag: EINVAL comes from unshare itself, so it was let through */
		{"unshare(NEWNET|bad flag)", SYS_unshare, {CLONE_NEWNET | 0x1000}, -EINVAL, false},
		{"clone3 (not ENOSYS here)", SYS_clone3, {0, 0}, -EINVAL, false},
		{"memfd_create", SYS_memfd_create, {0, 0}, -EFAULT, false},
		{"socket(AF_NETLINK ROUTE)", SYS_socket, {AF_NETLINK, SOCK_RAW, 0}, WANT_OK, false},
		{"socket(AF_INET6)", SYS_socket, {AF_INET6, SOCK_DGRAM, 0}, WANT_OK, false},
	};
	/* clang-format on */
	struct sv_err err = {0};
	struct sv_seccomp_prog p;
	ck_assert_msg(sv_seccomp_build_prelude(&p, &err) == 0, "build: %s", err.msg);
	check_cases(&p, c, SV_ARRAY_SIZE(c));
	sv_seccomp_prog_free(&p);
}
END_TEST

struct thread_probe {
	int go[2];  /* main → thread: "the prelude is in" */
	long mount; /* -errno seen by the thread */
	long setns;
};

static void *prelude_thread(void *arg)
{
	struct thread_probe *t = arg;
	char b;
	while (read(t->go[0], &b, 1) < 0 && errno == EINTR)
		;
	t->mount = syscall(SYS_mount, 0, 0, 0, 0, 0) < 0 ? -errno : 0;
	t->setns = syscall(SYS_setns, -1, 0) < 0 ? -errno : 0;
	return NULL;
}

/* Returns a failure bit mask; runs in a fresh (unfiltered) child. */
static int prelude_reaches_threads(void)
{
	int bad = 0;
	if (syscall(SYS_mount, 0, 0, 0, 0, 0) == 0 || errno == EPERM)
		bad |= 1; /* control: unfiltered mount(NULL...) fails EFAULT */
	struct thread_probe t = {.mount = 1, .setns = 1};
	pthread_t th;
	if (pipe(t.go) < 0 || pthread_create(&th, NULL, prelude_thread, &t) != 0)
		return 2;
	struct sv_err err = {0};
	if (sv_seccomp_apply_supervisor_prelude(&err) < 0) {
		fprintf(stderr, "prelude: %s\n", err.msg);
		return 4;
	}
	(void)!write(t.go[1], "x", 1);
	pthread_join(th, NULL);
	if (t.mount != -EPERM)
		bad |= 8;
	if (t.setns != -EBADF)
		bad |= 16;
	if (syscall(SYS_mount, 0, 0, 0, 0, 0) == 0 || errno != EPERM)
		bad |= 32;
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		bad |= 64;
	/* Inherited by children; fork and exec still work. */
	pid_t pid = fork();
	if (pid == 0)
		_exit(syscall(SYS_mount, 0, 0, 0, 0, 0) < 0 && errno == EPERM ? 0 : 1);
	int status = 0;
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		bad |= 128;
	pid = fork();
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", "exit 5", (char *)NULL);
		_exit(99);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 5)
		bad |= 256;
	return bad;
}

START_TEST(prelude_tsync_reaches_a_thread_started_before_it)
{
	int bad = in_filtered_child(NULL, false, prelude_reaches_threads);
	ck_assert_msg(bad == 0, "prelude failure mask 0x%x", bad);
}
END_TEST

static int agent_on_top_of_prelude(void)
{
	struct sv_err err = {0};
	if (sv_seccomp_apply_supervisor_prelude(&err) < 0)
		return 1;
	struct sv_seccomp_prog p;
	if (sv_seccomp_build_agent(&p, 0, &err) < 0) /* the parent may still build after it */
		return 2;
	int r = in_filtered_child(&p, false, ordinary_work);
	sv_seccomp_prog_free(&p);
	return r == 0 ? 0 : 3;
}

START_TEST(agent_filter_stacks_on_the_prelude)
{
	ck_assert_int_eq(in_filtered_child(NULL, false, agent_on_top_of_prelude), 0);
}
END_TEST

START_TEST(selftest_passes_and_leaves_the_caller_unfiltered)
{
	struct sv_seccomp_report r;
	int rc = sv_seccomp_selftest(&r);
	ck_assert_msg(rc == 0, "selftest: %s", r.detail);
	ck_assert(r.built && r.agent_denies && r.agent_allows && r.tsync);
	ck_assert_msg(r.notify, "notify: %s", r.notify_detail);
	ck_assert_int_eq(r.errnum, 0);
	ck_assert_str_eq(r.detail, "");
	ck_assert_int_eq(prctl(PR_GET_SECCOMP, 0, 0, 0, 0), 0);
	ck_assert_int_eq(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), 0);
}
END_TEST


/* ---- the proxy process's allow-list ---- */

static int proxy_lfd = -1;
static struct sockaddr_in proxy_laddr;

static void *proxy_thread(void *arg)
{
	return arg;
}

/* Exit bits: what went wrong before the last, fatal call. */
static int proxy_work_then(int last)
{
	int bad = 0;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&proxy_laddr, sizeof(proxy_laddr)) < 0)
		bad |= 1;
	if (fd >= 0)
		close(fd);
	pthread_t t;
	void *ret = NULL;
	if (pthread_create(&t, NULL, proxy_thread, &bad) != 0 || pthread_join(t, &ret) != 0 ||
	    ret != &bad)
		bad |= 2;
	errno = 0;
	if (socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, 0) >= 0 || errno != EPERM)
		bad |= 4;
	errno = 0;
	if (open("/tmp/proxy-seccomp-probe", O_WRONLY | O_CREAT | O_CLOEXEC, 0600) >= 0 ||
	    errno != EPERM)
		bad |= 8;
	int rfd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (rfd < 0)
		bad |= 16;
	else
		close(rfd);
	errno = 0;
	if (syscall(SYS_clone3, NULL, 0) != -1 || errno != ENOSYS)
		bad |= 32;
	if (bad)
		return bad;
	switch (last) {
	case 0:
		execl("/bin/true", "true", (char *)NULL);
		break;
	case 1:
		(void)unshare(CLONE_NEWNET);
		break;
	case 2:
		(void)syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
		break;
	case 3:
		(void)syscall(SYS_ptrace, 0, 0, 0, 0);
		break;
	default:
		return 0;
	}
	return 64;
}

static int proxy_child_status(const struct sv_seccomp_prog *p, int last)
{
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct sv_err err = {0};
		if (sv_seccomp_install(p, false, &err) < 0)
			_exit(200);
		_exit(proxy_work_then(last));
	}
	int status = 0;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return status;
}

START_TEST(proxy_filter_kills_exec_and_namespaces_and_keeps_sockets_and_threads)
{
	proxy_lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(proxy_lfd, 0);
	proxy_laddr = (struct sockaddr_in){.sin_family = AF_INET,
					   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(proxy_laddr);
	ck_assert_int_eq(bind(proxy_lfd, (struct sockaddr *)&proxy_laddr, len), 0);
	ck_assert_int_eq(getsockname(proxy_lfd, (struct sockaddr *)&proxy_laddr, &len), 0);
	ck_assert_int_eq(listen(proxy_lfd, 16), 0);
	struct sv_seccomp_prog p;
	struct sv_err err = {0};
	ck_assert_msg(sv_seccomp_build_proxy(&p, &err) == 0, "build: %s", err.msg);
	/* Ordinary proxy work passes. */
	int st = proxy_child_status(&p, 9);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status 0x%x", st);
	for (int last = 0; last < 4; last++) {
		st = proxy_child_status(&p, last);
		ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS,
			      "case %d: status 0x%x, want death by SIGSYS", last, st);
	}
	/* Control: without the filter the same exec runs /bin/true. */
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		execl("/bin/true", "true", (char *)NULL);
		_exit(99);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	unlink("/tmp/proxy-seccomp-probe");
	sv_seccomp_prog_free(&p);
	close(proxy_lfd);
}
END_TEST

/* The connect-notify option: connect(2) reaches the listener (and proceeds once answered with
 * CONTINUE), a MSG_FASTOPEN send is refused, and an ordinary send is untouched. */
static void notify_child(const struct sv_seccomp_prog *p, int chan)
{
	struct sv_err err = {0};
	int lfd = sv_seccomp_install(p, false, &err);
	if (lfd <= 2)
		_exit(10);
	char b = 'L';
	struct iovec iov = {.iov_base = &b, .iov_len = 1};
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
	memcpy(CMSG_DATA(c), &lfd, sizeof(int));
	if (sendmsg(chan, &mh, 0) != 1)
		_exit(11);
	close(lfd);
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(1)};
	sa.sin_addr.s_addr = htonl(0x7f000001);
	/* Port 1 on loopback refuses: the call really ran after CONTINUE. */
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno != ECONNREFUSED)
		_exit(12);
	int t = socket(AF_INET, SOCK_STREAM, 0);
	if (sendto(t, "x", 1, MSG_FASTOPEN, (struct sockaddr *)&sa, sizeof(sa)) >= 0 ||
	    errno != EOPNOTSUPP)
		_exit(13);
	int pair[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) < 0 || send(pair[0], "x", 1, 0) != 1)
		_exit(14);
	_exit(0);
}

START_TEST(agent_notify_option_sends_connect_to_the_listener)
{
	struct sv_err err = {0};
	struct sv_seccomp_prog p;
	ck_assert_int_eq(sv_seccomp_build_agent(&p, SV_SECCOMP_NOTIFY_CONNECT, &err), 0);
	int chan[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, chan), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(chan[0]);
		notify_child(&p, chan[1]);
	}
	close(chan[1]);
	char b;
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct iovec iov = {.iov_base = &b, .iov_len = 1};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf)};
	ck_assert_int_eq(recvmsg(chan[0], &mh, MSG_CMSG_CLOEXEC), 1);
	int lfd;
	memcpy(&lfd, CMSG_DATA(CMSG_FIRSTHDR(&mh)), sizeof(int));
	struct seccomp_notif req;
	memset(&req, 0, sizeof(req));
	ck_assert_int_eq(ioctl(lfd, SECCOMP_IOCTL_NOTIF_RECV, &req), 0);
	ck_assert_int_eq(req.data.nr, SYS_connect);
	ck_assert_int_eq(req.pid, pid);
	struct seccomp_notif_resp resp = {.id = req.id, .flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE};
	ck_assert_int_eq(ioctl(lfd, SECCOMP_IOCTL_NOTIF_SEND, &resp), 0);
	int status = 0;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status 0x%x", status);
	close(lfd);
	close(chan[0]);
	sv_seccomp_prog_free(&p);
}
END_TEST

static Suite *seccomp_suite(void)
{
	Suite *s = suite_create("seccomp");
	TCase *tc = tcase_create("agent");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, agent_denies_every_listed_syscall);
	tcase_add_test(tc, agent_conditional_rules_match_only_their_arguments);
	tcase_add_test(tc, agent_refuses_a_real_second_filter);
	tcase_add_test(tc, agent_socket_families_are_an_allow_list);
	tcase_add_test(tc, agent_deny_inet_option_blocks_ip_sockets_only);
	tcase_add_test(tc, agent_kills_foreign_abi_syscalls);
	tcase_add_test(tc, agent_still_allows_ordinary_work);
	tcase_add_test(tc, agent_log_option_sets_the_log_flag_and_installs);
	tcase_add_test(tc, install_refuses_a_missing_program);
	tcase_add_test(tc, install_reports_a_kernel_rejection);
	tcase_add_test(tc, agent_notify_option_sends_connect_to_the_listener);
	suite_add_tcase(s, tc);

	tc = tcase_create("prelude");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, prelude_denies_every_listed_syscall_and_keeps_setns);
	tcase_add_test(tc, prelude_tsync_reaches_a_thread_started_before_it);
	tcase_add_test(tc, agent_filter_stacks_on_the_prelude);
	tcase_add_test(tc, selftest_passes_and_leaves_the_caller_unfiltered);
	suite_add_tcase(s, tc);

	tc = tcase_create("proxy");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, proxy_filter_kills_exec_and_namespaces_and_keeps_sockets_and_threads);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(seccomp_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
