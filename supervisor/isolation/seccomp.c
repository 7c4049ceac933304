/* Seccomp filters for the agent (contract §5.1) and the supervisor prelude (§5.2, fixes 11-12).
 *
 * Both are compiled with libseccomp in the parent and exported as BPF; sv_seccomp_install is
 * the only thing that runs in a child, and it must stay async-signal-safe (no allocation, no
 * libseccomp, no stdio). Every rule is explained in docs/security.md: keep the two in step.
 */
#include "seccomp.h"

#include <fcntl.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#ifndef SECCOMP_FILTER_FLAG_TSYNC
#define SECCOMP_FILTER_FLAG_TSYNC (1UL << 0)
#endif
#ifndef SECCOMP_FILTER_FLAG_LOG
#define SECCOMP_FILTER_FLAG_LOG (1UL << 1)
#endif
#ifndef SECCOMP_FILTER_FLAG_NEW_LISTENER
#define SECCOMP_FILTER_FLAG_NEW_LISTENER (1UL << 3)
#endif
#ifndef MSG_FASTOPEN
#define MSG_FASTOPEN 0x20000000
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif

#define SC_LOW32	    0xffffffffULL
#define SC_NETLINK_ROUTE    0 /* the only netlink protocol the agent may open (§5.1) */
#define SC_SELFTEST_STACK   ((size_t)64 * 1024)
#define SC_SELFTEST_WAIT_MS 5000

/* One rule: @name resolved by libseccomp; @fallback is used when this libseccomp does not know
 * the name (numbers from 424 on are the same on x86_64 and aarch64), -1 when it must know it.
 * Comparisons on int-typed arguments mask the low 32 bits: the kernel ignores the upper half,
 * so a 64-bit compare could be dodged by setting it (CVE-2019-10063). */
struct sc_rule {
	const char *name;
	int fallback;
	int errnum;
	unsigned int ncmp;
	struct scmp_arg_cmp cmp[2];
};

/* Rule tables read best one rule a line. */
/* clang-format off */
#define SC_EQ32(a, v) {.arg = (a), .op = SCMP_CMP_MASKED_EQ, .datum_a = SC_LOW32, .datum_b = (v)}
#define SC_BITS(a, m) {.arg = (a), .op = SCMP_CMP_MASKED_EQ, .datum_a = (m), .datum_b = (m)}

/* The agent filter (§5.1 filters A and B merged into one, §13 fix 11). One filter, because it
 * forbids adding another. */
static const struct sc_rule agent_rules[] = {
	/* ENOSYS so libc and runtimes fall back: to clone(), whose flags we can see, and from
	 * io_uring to plain syscalls (io_uring would bypass every rule below). */
	{"clone3", 435, ENOSYS},
	{"io_uring_setup", 425, ENOSYS},
	{"io_uring_enter", 426, ENOSYS},
	{"io_uring_register", 427, ENOSYS},
	/* Fileless exec, process inspection and control outside our pid view. */
	{"memfd_create", -1, EPERM},
	{"ptrace", -1, EPERM},
	{"process_vm_readv", -1, EPERM},
	{"process_vm_writev", -1, EPERM},
	{"pidfd_open", 434, EPERM},
	{"pidfd_getfd", 438, EPERM},
	{"pidfd_send_signal", 424, EPERM},
	/* Kernel attack surface reachable without capabilities. */
	{"bpf", -1, EPERM},
	{"userfaultfd", -1, EPERM},
	{"perf_event_open", -1, EPERM},
	{"keyctl", -1, EPERM},
	{"add_key", -1, EPERM},
	{"request_key", -1, EPERM},
	/* Mounts (old and new API), namespaces, modules, kexec, handles: need capabilities the
	 * agent does not hold; denied anyway in case a capability survives. */
	{"mount", -1, EPERM},
	{"umount2", -1, EPERM},
	{"pivot_root", -1, EPERM},
	{"fsopen", 430, EPERM},
	{"fsconfig", 431, EPERM},
	{"fsmount", 432, EPERM},
	{"fspick", 433, EPERM},
	{"move_mount", 429, EPERM},
	{"open_tree", 428, EPERM},
	{"mount_setattr", 442, EPERM},
	{"open_tree_attr", 467, EPERM},
	{"setns", -1, EPERM},
	{"init_module", -1, EPERM},
	{"finit_module", -1, EPERM},
	{"delete_module", -1, EPERM},
	{"kexec_load", -1, EPERM},
	{"kexec_file_load", -1, EPERM},
	{"open_by_handle_at", -1, EPERM},
	/* Argument-dependent rules. */
	{"execveat", -1, EPERM, 1, {SC_BITS(4, AT_EMPTY_PATH)}},
	{"unshare", -1, EPERM, 1, {SC_BITS(0, CLONE_NEWUSER)}},
	{"clone", -1, EPERM, 1, {SC_BITS(0, CLONE_NEWUSER)}},
	{"seccomp", -1, EPERM, 1, {SC_EQ32(0, SECCOMP_SET_MODE_FILTER)}},
	{"prctl", -1, EPERM, 1, {SC_EQ32(0, PR_SET_SECCOMP)}},
	{"ioctl", -1, EPERM, 1, {SC_EQ32(1, TIOCSTI)}},
	{"ioctl", -1, EPERM, 1, {SC_EQ32(1, TIOCLINUX)}},
	/* Netlink is allowed for NETLINK_ROUTE only (getifaddrs). protocol is an int, but a
	 * 64-bit "!= 0" only over-matches (dirty upper half → EPERM), so it fails closed. */
	{"socket", -1, EPERM, 2,
	 {SC_EQ32(0, AF_NETLINK), {.arg = 2, .op = SCMP_CMP_NE, .datum_a = SC_NETLINK_ROUTE}}},
};

/* The supervisor prelude (§5.2): nothing the supervisor does after setup needs these. setns
 * and unshare stay allowed; so do sockets, epoll, fork and exec. */
static const struct sc_rule prelude_rules[] = {
	{"mount", -1, EPERM},
	{"umount2", -1, EPERM},
	{"pivot_root", -1, EPERM},
	{"fsopen", 430, EPERM},
	{"fsconfig", 431, EPERM},
	{"fsmount", 432, EPERM},
	{"fspick", 433, EPERM},
	{"move_mount", 429, EPERM},
	{"open_tree", 428, EPERM},
	{"mount_setattr", 442, EPERM},
	{"open_tree_attr", 467, EPERM},
	{"bpf", -1, EPERM},
	{"perf_event_open", -1, EPERM},
	{"userfaultfd", -1, EPERM},
	{"init_module", -1, EPERM},
	{"finit_module", -1, EPERM},
	{"delete_module", -1, EPERM},
	{"kexec_load", -1, EPERM},
	{"kexec_file_load", -1, EPERM},
};
/* clang-format on */

/* Socket families the agent may create; every other family gets EPERM (allow-list, so a family
 * added to the kernel later is denied too). */
static bool family_is_allowed(unsigned int fam, unsigned int opts)
{
	switch (fam) {
	case AF_UNIX:
	case AF_NETLINK:
		return true;
	case AF_INET:
	case AF_INET6:
		return !(opts & SV_SECCOMP_DENY_INET);
	default:
		return false;
	}
}

#define SC_FAMILY_SCAN 256 /* families are below AF_MAX (46 in 6.x); scan well past it */

static void ctx_releasep(scmp_filter_ctx *ctx)
{
	if (*ctx)
		seccomp_release(*ctx);
}
#define _cleanup_scmp_ __attribute__((cleanup(ctx_releasep)))

static int ctx_new(scmp_filter_ctx *out, struct sv_err *err)
{
	_cleanup_scmp_ scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		return sv_err_set(err, ENOMEM, "seccomp: cannot create a libseccomp context");
	/* Only the native architecture is in the filter: an i386 (int 0x80) or x32 system call
	 * on x86_64 reaches the bad-arch action and the whole process dies. */
	int r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	/* Kernels before 4.14 lack KILL_PROCESS; killing the thread still fails closed. */
	if (r < 0)
		r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL);
	if (r < 0)
		return sv_err_set(err, -r, "seccomp: cannot set the bad-architecture action: %s",
				  strerror(-r));
	/* A binary tree keeps the per-syscall cost logarithmic; purely an optimisation. */
	(void)seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
	*out = sv_steal_ptr(&ctx);
	return 0;
}

static int rule_add(scmp_filter_ctx ctx, const char *name, int fallback, int errnum,
		    unsigned int ncmp, const struct scmp_arg_cmp *cmp, struct sv_err *err)
{
	int nr = seccomp_syscall_resolve_name(name);
	if (nr == __NR_SCMP_ERROR && fallback >= 0)
		nr = fallback;
	if (nr < 0)
		return sv_err_set(err, ENOSYS,
				  "seccomp: system call %s is unknown on this architecture", name);
	int r = seccomp_rule_add_exact_array(ctx, SCMP_ACT_ERRNO(errnum), nr, ncmp, cmp);
	if (r < 0)
		return sv_err_set(err, -r, "seccomp: cannot add the rule for %s: %s", name,
				  strerror(-r));
	return 0;
}

static int rules_add(scmp_filter_ctx ctx, const struct sc_rule *rules, size_t n, struct sv_err *err)
{
	for (size_t i = 0; i < n; i++) {
		const struct sc_rule *ru = &rules[i];
		int r = rule_add(ctx, ru->name, ru->fallback, ru->errnum, ru->ncmp, ru->cmp, err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* socket() and socketpair(): EPERM for every family outside family_is_allowed. Families up to
 * the highest allowed one are matched exactly on the low 32 bits; "arg0 > max" catches the
 * rest, including any value with a dirty upper half (which can only over-match). */
static int family_rules_add(scmp_filter_ctx ctx, const char *name, unsigned int opts,
			    struct sv_err *err)
{
	unsigned int max = 0;
	for (unsigned int fam = 0; fam < SC_FAMILY_SCAN; fam++) {
		if (family_is_allowed(fam, opts))
			max = fam;
	}
	for (unsigned int fam = 0; fam < max; fam++) {
		if (family_is_allowed(fam, opts))
			continue;
		struct scmp_arg_cmp c = SC_EQ32(0, fam);
		int r = rule_add(ctx, name, -1, EPERM, 1, &c, err);
		if (r < 0)
			return r;
	}
	struct scmp_arg_cmp gt = {.arg = 0, .op = SCMP_CMP_GT, .datum_a = max};
	return rule_add(ctx, name, -1, EPERM, 1, &gt, err);
}

#if SCMP_VER_MAJOR > 2 || (SCMP_VER_MAJOR == 2 && SCMP_VER_MINOR >= 6)
static int bpf_export(scmp_filter_ctx ctx, void **buf_out, size_t *len_out, struct sv_err *err)
{
	size_t len = 0;
	int r = seccomp_export_bpf_mem(ctx, NULL, &len);
	if (r < 0)
		return sv_err_set(err, -r, "seccomp: cannot generate BPF: %s", strerror(-r));
	if (len == 0 || len > BPF_MAXINSNS * sizeof(struct sock_filter))
		return sv_err_set(err, E2BIG,
				  "seccomp: generated BPF has an invalid size (%zu bytes)", len);
	_cleanup_free_ void *buf = malloc(len);
	if (!buf)
		return sv_err_set(err, ENOMEM, "seccomp: out of memory");
	r = seccomp_export_bpf_mem(ctx, buf, &len);
	if (r < 0)
		return sv_err_set(err, -r, "seccomp: cannot export BPF: %s", strerror(-r));
	*buf_out = sv_steal_ptr(&buf);
	*len_out = len;
	return 0;
}
#else
/* libseccomp < 2.6 can only write to an fd. A pipe holds 64 KiB and a program at most
 * BPF_MAXINSNS * 8 = 32 KiB; the write end is non-blocking so an oversize one fails, never
 * hangs. */
static int bpf_export(scmp_filter_ctx ctx, void **buf_out, size_t *len_out, struct sv_err *err)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return sv_err_set(err, errno, "seccomp: pipe: %s", strerror(errno));
	_cleanup_close_ int rd = p[0];
	_cleanup_close_ int wr = p[1];
	if (fcntl(wr, F_SETFL, O_NONBLOCK) < 0)
		return sv_err_set(err, errno, "seccomp: fcntl: %s", strerror(errno));
	int r = seccomp_export_bpf(ctx, wr);
	if (r < 0)
		return sv_err_set(err, -r, "seccomp: cannot export BPF: %s", strerror(-r));
	close(sv_steal_fd(&wr));

	size_t cap = BPF_MAXINSNS * sizeof(struct sock_filter) + 1, len = 0;
	_cleanup_free_ char *buf = malloc(cap);
	if (!buf)
		return sv_err_set(err, ENOMEM, "seccomp: out of memory");
	for (;;) {
		ssize_t n = read(rd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return sv_err_set(err, errno, "seccomp: reading BPF: %s", strerror(errno));
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == cap)
			return sv_err_set(err, E2BIG, "seccomp: generated BPF is too large");
	}
	*buf_out = sv_steal_ptr(&buf);
	*len_out = len;
	return 0;
}
#endif

static int prog_from_ctx(scmp_filter_ctx ctx, unsigned int flags, struct sv_seccomp_prog *out,
			 struct sv_err *err)
{
	void *buf = NULL;
	size_t len = 0;
	int r = bpf_export(ctx, &buf, &len, err);
	if (r < 0)
		return r;
	size_t n = len / sizeof(struct sock_filter);
	if (len == 0 || len % sizeof(struct sock_filter) != 0 || n > BPF_MAXINSNS) {
		free(buf);
		return sv_err_set(err, EINVAL,
				  "seccomp: generated BPF has an invalid size (%zu bytes)", len);
	}
	out->prog.len = (unsigned short)n;
	out->prog.filter = buf;
	out->flags = flags;
	return 0;
}

/* connect(2) goes to PID 1's monitor, which records who made a connection to the proxy and
 * always lets the call proceed (docs/security.md). A TCP Fast Open send connects without
 * connect(2): refused, so every connection the monitor should see goes through it. */
static int notify_rules_add(scmp_filter_ctx ctx, struct sv_err *err)
{
	int nr = seccomp_syscall_resolve_name("connect");
	if (nr < 0)
		return sv_err_set(err, ENOSYS, "seccomp: connect is unknown on this architecture");
	int r = seccomp_rule_add_exact(ctx, SCMP_ACT_NOTIFY, nr, 0);
	if (r < 0)
		return sv_err_set(err, -r, "seccomp: cannot add the notify rule for connect: %s",
				  strerror(-r));
	/* flags: arg 3 of sendto, 2 of sendmsg, 3 of sendmmsg (all int: low 32 bits). */
	static const struct {
		const char *name;
		unsigned int arg;
	} sends[] = {{"sendto", 3}, {"sendmsg", 2}, {"sendmmsg", 3}};
	for (size_t i = 0; i < SV_ARRAY_SIZE(sends); i++) {
		struct scmp_arg_cmp c = SC_BITS(sends[i].arg, MSG_FASTOPEN);
		r = rule_add(ctx, sends[i].name, -1, EOPNOTSUPP, 1, &c, err);
		if (r < 0)
			return r;
	}
	return 0;
}

int sv_seccomp_build_agent(struct sv_seccomp_prog *out, unsigned int opts, struct sv_err *err)
{
	memset(out, 0, sizeof(*out));
	_cleanup_scmp_ scmp_filter_ctx ctx = NULL;
	int r = ctx_new(&ctx, err);
	if (r < 0)
		return r;
	r = rules_add(ctx, agent_rules, SV_ARRAY_SIZE(agent_rules), err);
	if (r < 0)
		return r;
	r = family_rules_add(ctx, "socket", opts, err);
	if (r < 0)
		return r;
	r = family_rules_add(ctx, "socketpair", opts, err);
	if (r < 0)
		return r;
	unsigned int flags = (opts & SV_SECCOMP_LOG) ? SECCOMP_FILTER_FLAG_LOG : 0;
	if (opts & SV_SECCOMP_NOTIFY_CONNECT) {
		r = notify_rules_add(ctx, err);
		if (r < 0)
			return r;
		flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
	}
	return prog_from_ctx(ctx, flags, out, err);
}

int sv_seccomp_build_prelude(struct sv_seccomp_prog *out, struct sv_err *err)
{
	memset(out, 0, sizeof(*out));
	_cleanup_scmp_ scmp_filter_ctx ctx = NULL;
	int r = ctx_new(&ctx, err);
	if (r < 0)
		return r;
	r = rules_add(ctx, prelude_rules, SV_ARRAY_SIZE(prelude_rules), err);
	if (r < 0)
		return r;
	return prog_from_ctx(ctx, 0, out, err);
}

void sv_seccomp_prog_free(struct sv_seccomp_prog *p)
{
	if (!p)
		return;
	free(p->prog.filter);
	p->prog.filter = NULL;
	p->prog.len = 0;
}

/* ---- the proxy process's allow-list ------------------------------------------------------- */

/* clang-format off */
#define SC_CLONE_NEW (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | \
		      CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWTIME)
#define SC_OPEN_WRITE (O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND)

/* What the unprivileged proxy needs (docs/security.md "The proxy process"): its loop, sockets,
 * splice relays, worker threads and getaddrinfo (read-only /etc files, UDP). A name the
 * architecture lacks (open, poll, epoll_wait on aarch64) is skipped. */
static const struct sc_rule proxy_allow[] = {
	{"read", -1, 0}, {"write", -1, 0}, {"readv", -1, 0}, {"writev", -1, 0},
	{"pread64", -1, 0}, {"lseek", -1, 0}, {"close", -1, 0}, {"fstat", -1, 0},
	{"newfstatat", -1, 0}, {"fstatat64", -1, 0}, {"statx", -1, 0}, {"fcntl", -1, 0},
	{"dup", -1, 0}, {"dup3", -1, 0},
	{"openat", -1, 0, 1, {{.arg = 2, .op = SCMP_CMP_MASKED_EQ, .datum_a = SC_OPEN_WRITE, .datum_b = 0}}},
	{"open", -1, 0, 1, {{.arg = 1, .op = SCMP_CMP_MASKED_EQ, .datum_a = SC_OPEN_WRITE, .datum_b = 0}}},
	{"mmap", -1, 0}, {"munmap", -1, 0}, {"mprotect", -1, 0}, {"mremap", -1, 0},
	{"madvise", -1, 0}, {"brk", -1, 0}, {"membarrier", -1, 0},
	{"epoll_create1", -1, 0}, {"epoll_ctl", -1, 0}, {"epoll_wait", -1, 0},
	{"epoll_pwait", -1, 0}, {"epoll_pwait2", 441, 0}, {"poll", -1, 0}, {"ppoll", -1, 0},
	{"socket", -1, 0, 1, {SC_EQ32(0, AF_UNIX)}},
	{"socket", -1, 0, 1, {SC_EQ32(0, AF_INET)}},
	{"socket", -1, 0, 1, {SC_EQ32(0, AF_INET6)}},
	{"connect", -1, 0}, {"accept", -1, 0}, {"accept4", -1, 0}, {"bind", -1, 0},
	{"getsockname", -1, 0}, {"getpeername", -1, 0}, {"setsockopt", -1, 0},
	{"getsockopt", -1, 0}, {"shutdown", -1, 0}, {"sendto", -1, 0}, {"sendmsg", -1, 0},
	{"sendmmsg", -1, 0}, {"recvfrom", -1, 0}, {"recvmsg", -1, 0}, {"recvmmsg", -1, 0},
	{"splice", -1, 0}, {"pipe2", -1, 0}, {"pipe", -1, 0},
	{"clone", -1, 0, 1, {{.arg = 0, .op = SCMP_CMP_MASKED_EQ, .datum_a = CLONE_THREAD | SC_CLONE_NEW,
			      .datum_b = CLONE_THREAD}}},
	{"futex", -1, 0}, {"set_robust_list", -1, 0}, {"get_robust_list", -1, 0},
	{"set_tid_address", -1, 0}, {"rseq", 334, 0}, {"sched_yield", -1, 0},
	{"sched_getaffinity", -1, 0}, {"exit", -1, 0}, {"exit_group", -1, 0},
	{"getpid", -1, 0}, {"gettid", -1, 0}, {"getuid", -1, 0}, {"geteuid", -1, 0},
	{"getgid", -1, 0}, {"getegid", -1, 0}, {"tgkill", -1, 0},
	{"rt_sigaction", -1, 0}, {"rt_sigprocmask", -1, 0}, {"rt_sigreturn", -1, 0},
	{"sigaltstack", -1, 0},
	{"timerfd_create", -1, 0}, {"timerfd_settime", -1, 0}, {"timerfd_gettime", -1, 0},
	{"eventfd2", -1, 0}, {"clock_gettime", -1, 0}, {"clock_nanosleep", -1, 0},
	{"nanosleep", -1, 0}, {"gettimeofday", -1, 0}, {"getrandom", -1, 0},
	{"prctl", -1, 0, 1, {SC_EQ32(0, PR_SET_NAME)}},
	{"prctl", -1, 0, 1, {SC_EQ32(0, PR_GET_NAME)}},
};

/* What the proxy must never do: the process dies (SIGSYS) rather than get an error it could
 * probe around. */
static const struct sc_rule proxy_kill[] = {
	{"execve", -1, 0}, {"execveat", -1, 0}, {"ptrace", -1, 0}, {"mount", -1, 0},
	{"umount2", -1, 0}, {"pivot_root", -1, 0}, {"chroot", -1, 0}, {"setns", -1, 0},
	{"unshare", -1, 0}, {"bpf", -1, 0}, {"init_module", -1, 0}, {"finit_module", -1, 0},
	{"delete_module", -1, 0}, {"kexec_load", -1, 0}, {"kexec_file_load", -1, 0},
	{"process_vm_readv", -1, 0}, {"process_vm_writev", -1, 0}, {"pidfd_getfd", 438, 0},
	{"keyctl", -1, 0}, {"add_key", -1, 0}, {"request_key", -1, 0},
	{"perf_event_open", -1, 0}, {"userfaultfd", -1, 0}, {"io_uring_setup", 425, 0},
	{"io_uring_enter", 426, 0}, {"io_uring_register", 427, 0},
	{"clone", -1, 0, 1, {SC_BITS(0, CLONE_NEWNS)}},
	{"clone", -1, 0, 1, {SC_BITS(0, CLONE_NEWCGROUP)}},
	{"clone", -1, 0, 1, {SC_BITS(0, CLONE_NEWUTS)}},
	{"clone", -1, 0, 1, {SC_BITS(0, CLONE_NEWIPC)}},
	{"clone", -1, 0, 1, {SC_BITS(0, CLONE_NEWUSER)}},
	{"clone", -1, 0, 1, {SC_BITS(0, CLONE_NEWPID)}},
	{"clone", -1, 0, 1, {SC_BITS(0, CLONE_NEWNET)}},
	{"clone", -1, 0, 1, {SC_BITS(0, CLONE_NEWTIME)}},
};
/* clang-format on */

static int proxy_rules_add(scmp_filter_ctx ctx, const struct sc_rule *rules, size_t n,
			   uint32_t action, struct sv_err *err)
{
	for (size_t i = 0; i < n; i++) {
		const struct sc_rule *ru = &rules[i];
		int nr = seccomp_syscall_resolve_name(ru->name);
		if (nr == __NR_SCMP_ERROR)
			nr = ru->fallback;
		if (nr < 0)
			continue; /* not on this architecture */
		int r = seccomp_rule_add_exact_array(ctx, action, nr, ru->ncmp, ru->cmp);
		if (r < 0)
			return sv_err_set(err, -r, "seccomp: cannot add the proxy rule for %s: %s",
					  ru->name, strerror(-r));
	}
	return 0;
}

int sv_seccomp_build_proxy(struct sv_seccomp_prog *out, struct sv_err *err)
{
	memset(out, 0, sizeof(*out));
	_cleanup_scmp_ scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
	if (!ctx)
		return sv_err_set(err, ENOMEM, "seccomp: cannot create a libseccomp context");
	int r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	if (r < 0)
		r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL);
	if (r < 0)
		return sv_err_set(err, -r, "seccomp: cannot set the bad-architecture action: %s",
				  strerror(-r));
	(void)seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
	uint32_t kill = SCMP_ACT_KILL_PROCESS;
	if ((r = proxy_rules_add(ctx, proxy_allow, SV_ARRAY_SIZE(proxy_allow), SCMP_ACT_ALLOW,
				 err)) < 0 ||
	    (r = proxy_rules_add(ctx, proxy_kill, SV_ARRAY_SIZE(proxy_kill), kill, err)) < 0)
		return r;
	/* ENOSYS: threads fall back to clone(), whose flags the rules above can see. */
	r = rule_add(ctx, "clone3", 435, ENOSYS, 0, NULL, err);
	if (r < 0)
		return r;
	return prog_from_ctx(ctx, 0, out, err);
}

/* Constant strings only: this runs between fork and exec, where strerror is not safe. */
static const char *install_hint(int e)
{
	switch (e) {
	case EINVAL:
		return "kernel rejected the filter or a flag (no seccomp filter support, or no "
		       "user notification before Linux 5.0?)";
	case EACCES:
		return "no_new_privs is not set and CAP_SYS_ADMIN is missing";
	case ENOSYS:
		return "kernel has no seccomp() system call";
	case ENOMEM:
		return "out of kernel memory, or too many stacked filters";
	case EFAULT:
		return "bad program address";
	case EPERM:
		return "an outer seccomp policy denies installing filters";
	default:
		return "unexpected error";
	}
}

int sv_seccomp_install(const struct sv_seccomp_prog *p, bool tsync, struct sv_err *err)
{
	if (!p || !p->prog.filter || p->prog.len == 0)
		return sv_err_set(err, EINVAL, "seccomp: no filter was built");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		int e = errno;
		return sv_err_set(err, e, "seccomp: PR_SET_NO_NEW_PRIVS failed (errno %d)", e);
	}
	unsigned long flags = p->flags | (tsync ? SECCOMP_FILTER_FLAG_TSYNC : 0);
	long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &p->prog);
	if (r >= 0 && (flags & SECCOMP_FILTER_FLAG_NEW_LISTENER))
		return (int)r; /* the listener fd (TSYNC is never combined with it here) */
	if (r == 0)
		return 0;
	if (r > 0)
		return sv_err_set(err, ESRCH,
				  "seccomp: thread %ld could not be synchronised (TSYNC)", r);
	int e = errno;
	if (e == ENOSYS && flags == 0) { /* before 3.17: only the prctl interface */
		if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &p->prog, 0, 0) == 0)
			return 0;
		e = errno;
	}
	return sv_err_set(err, e, "seccomp: cannot install the filter (errno %d): %s", e,
			  install_hint(e));
}

int sv_seccomp_apply_supervisor_prelude(struct sv_err *err)
{
	struct sv_seccomp_prog prog;
	int r = sv_seccomp_build_prelude(&prog, err);
	if (r < 0)
		return r;
	r = sv_seccomp_install(&prog, true, err);
	sv_seccomp_prog_free(&prog);
	if (r < 0)
		sv_err_prefix(err, "supervisor prelude");
	return r;
}

/* ---- self-test ---------------------------------------------------------------------------- */

struct sc_probe_out {
	bool denies;
	bool allows;
	bool tsync;
	bool notify;
	struct sv_err err;
};

static long errno_of(long ret)
{
	return ret < 0 ? errno : 0;
}

static bool expect_errno(const char *what, long ret, int want, struct sv_err *err)
{
	long got = errno_of(ret);
	if (got == want)
		return true;
	sv_err_set(err, EPROTO, "%s returned %ld (errno %ld), expected errno %d", what, ret, got,
		   want);
	return false;
}

/* In a forked child: the agent filter must deny and still allow. */
static void probe_agent(const struct sv_seccomp_prog *agent, struct sc_probe_out *o)
{
	long pid = syscall(SYS_getpid);
	if (sv_seccomp_install(agent, false, &o->err) < 0)
		return;
	o->denies =
	    prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1 &&
	    expect_errno("memfd_create", syscall(SYS_memfd_create, NULL, 0), EPERM, &o->err) &&
	    expect_errno("clone3", syscall(SYS_clone3, NULL, 0), ENOSYS, &o->err) &&
	    expect_errno("seccomp(SET_MODE_FILTER)",
			 syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, NULL), EPERM, &o->err);
	if (!o->denies)
		return;
	int fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	o->allows = fd >= 0 && syscall(SYS_getpid) == pid;
	if (fd >= 0)
		close(fd);
	if (!o->allows)
		sv_err_set(&o->err, EPROTO, "an allowed system call (getpid/open) failed");
}

struct sc_thread {
	int go;
	int done;
	long mount_errno;
	long setns_errno;
};

/* A second thread made with raw clone(): pthread_create is not async-signal-safe after fork.
 * It shares errno with the main thread, which leaves errno alone until `done`. */
static int tsync_thread(void *arg)
{
	struct sc_thread *t = arg;
	while (!__atomic_load_n(&t->go, __ATOMIC_ACQUIRE))
		sched_yield();
	t->mount_errno = errno_of(syscall(SYS_mount, NULL, NULL, NULL, 0, NULL));
	t->setns_errno = errno_of(syscall(SYS_setns, -1, 0));
	__atomic_store_n(&t->done, 1, __ATOMIC_RELEASE);
	return 0;
}

static bool wait_flag(const int *flag)
{
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (!__atomic_load_n(flag, __ATOMIC_ACQUIRE)) {
		sched_yield();
		clock_gettime(CLOCK_MONOTONIC, &now);
		long ms =
		    (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
		if (ms > SC_SELFTEST_WAIT_MS)
			return false;
	}
	return true;
}

/* In a forked child: the prelude installed with TSYNC must reach a thread started before. */
static void probe_tsync(const struct sv_seccomp_prog *prelude, struct sc_probe_out *o)
{
	/* mount(NULL, NULL, ...) fails EFAULT before any privilege check; EPERM means denied. */
	long before = errno_of(syscall(SYS_mount, NULL, NULL, NULL, 0, NULL));
	if (before == EPERM) {
		sv_err_set(&o->err, EPERM,
			   "mount is denied before the prelude (outer policy?): "
			   "cannot verify TSYNC");
		return;
	}
	void *stack = mmap(NULL, SC_SELFTEST_STACK, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stack == MAP_FAILED) {
		sv_err_set(&o->err, errno, "mmap of a thread stack failed");
		return;
	}
	static struct sc_thread t; /* the child's own copy: it was forked */
	memset(&t, 0, sizeof(t));
	int flags =
	    CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
	if (clone(tsync_thread, (char *)stack + SC_SELFTEST_STACK, flags, &t) < 0) {
		sv_err_set(&o->err, errno, "clone of a probe thread failed");
		return;
	}
	if (sv_seccomp_install(prelude, true, &o->err) < 0) {
		__atomic_store_n(&t.go, 1, __ATOMIC_RELEASE);
		return;
	}
	__atomic_store_n(&t.go, 1, __ATOMIC_RELEASE);
	if (!wait_flag(&t.done)) {
		sv_err_set(&o->err, ETIMEDOUT, "the probe thread did not finish");
		return;
	}
	o->tsync = t.mount_errno == EPERM && t.setns_errno == EBADF;
	if (!o->tsync)
		sv_err_set(
		    &o->err, EPROTO,
		    "in the second thread mount gave errno %ld (want EPERM), setns errno %ld "
		    "(want EBADF)",
		    t.mount_errno, t.setns_errno);
}

/* In a forked child: the connect-notify filter, in a grandchild that hands its listener back,
 * must deliver connect(2) as a notification, and CONTINUE must let the call run. */
static void probe_notify(const struct sv_seccomp_prog *agent, struct sc_probe_out *o)
{
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
		sv_err_set(&o->err, errno, "socketpair failed");
		return;
	}
	pid_t pid = fork();
	if (pid < 0) {
		sv_err_set(&o->err, errno, "fork failed");
		return;
	}
	if (pid == 0) {
		struct sv_err e = {0};
		int lfd = sv_seccomp_install(agent, false, &e);
		if (lfd < 0)
			_exit(2);
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
		if (sendmsg(sp[1], &mh, 0) != 1)
			_exit(3);
		close(lfd);
		/* An abstract unix name nobody listens on: refused once the call really runs. */
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		memcpy(sa.sun_path, "\0sv-notify-probe", 16);
		int s = socket(AF_UNIX, SOCK_STREAM, 0);
		long r = connect(s, (struct sockaddr *)&sa, sizeof(sa_family_t) + 16);
		_exit(r < 0 && errno == ECONNREFUSED ? 0 : 4);
	}
	close(sp[1]);
	char b;
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct iovec iov = {.iov_base = &b, .iov_len = 1};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf)};
	struct pollfd pf = {.fd = sp[0], .events = POLLIN};
	int lfd = -1;
	if (poll(&pf, 1, SC_SELFTEST_WAIT_MS) == 1 && recvmsg(sp[0], &mh, MSG_CMSG_CLOEXEC) == 1 &&
	    CMSG_FIRSTHDR(&mh))
		memcpy(&lfd, CMSG_DATA(CMSG_FIRSTHDR(&mh)), sizeof(int));
	bool got = false;
	if (lfd >= 0) {
		struct seccomp_notif req;
		memset(&req, 0, sizeof(req));
		pf = (struct pollfd){.fd = lfd, .events = POLLIN};
		if (poll(&pf, 1, SC_SELFTEST_WAIT_MS) == 1 &&
		    ioctl(lfd, SECCOMP_IOCTL_NOTIF_RECV, &req) == 0) {
			got = req.data.nr == SYS_connect;
			struct seccomp_notif_resp resp = {.id = req.id,
							  .flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE};
			if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_SEND, &resp) < 0)
				got = false;
		}
	}
	if (!got)
		kill(pid, SIGKILL);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (lfd >= 0)
		close(lfd);
	o->notify = got && WIFEXITED(status) && WEXITSTATUS(status) == 0;
	if (!o->notify)
		sv_err_set(&o->err, EPROTO,
			   "connect was not delivered and continued (child status 0x%x)", status);
}

/* Run @fn in a forked child and collect what it found. */
static int run_probe(void (*fn)(const struct sv_seccomp_prog *, struct sc_probe_out *),
		     const struct sv_seccomp_prog *prog, struct sc_probe_out *o)
{
	memset(o, 0, sizeof(*o));
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return sv_err_set(&o->err, errno, "pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return sv_err_set(&o->err, e, "fork: %s", strerror(e));
	}
	if (pid == 0) {
		close(p[0]);
		fn(prog, o);
		(void)sv_write_all(p[1], o, sizeof(*o));
		_exit(0);
	}
	close(p[1]);
	ssize_t n;
	do
		n = read(p[0], o, sizeof(*o));
	while (n < 0 && errno == EINTR);
	close(p[0]);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (n != (ssize_t)sizeof(*o)) {
		memset(o, 0, sizeof(*o));
		if (WIFSIGNALED(status))
			return sv_err_set(&o->err, EPROTO, "probe child killed by signal %d",
					  WTERMSIG(status));
		return sv_err_set(&o->err, EPROTO, "probe child exited without a report");
	}
	return o->err.code ? -o->err.code : 0;
}

static int report_fail(struct sv_seccomp_report *r, const struct sv_err *e, const char *stage)
{
	r->errnum = e->code ? e->code : EPROTO;
	sv_fmt(r->detail, sizeof(r->detail), "%s: %s", stage, e->msg);
	return -r->errnum;
}

int sv_seccomp_selftest(struct sv_seccomp_report *r)
{
	memset(r, 0, sizeof(*r));
	struct sv_err err = {0};
	struct sv_seccomp_prog agent, prelude;
	if (sv_seccomp_build_agent(&agent, 0, &err) < 0)
		return report_fail(r, &err, "build agent filter");
	if (sv_seccomp_build_prelude(&prelude, &err) < 0) {
		sv_seccomp_prog_free(&agent);
		return report_fail(r, &err, "build prelude filter");
	}
	r->built = true;

	struct sc_probe_out o;
	int rc = run_probe(probe_agent, &agent, &o);
	r->agent_denies = o.denies;
	r->agent_allows = o.allows;
	if (rc < 0) {
		report_fail(r, &o.err, "agent filter");
	} else {
		rc = run_probe(probe_tsync, &prelude, &o);
		r->tsync = o.tsync;
		if (rc < 0)
			report_fail(r, &o.err, "prelude with TSYNC");
	}
	/* Not fatal here: without it the sandbox runs and its proxy denies every request. */
	struct sv_seccomp_prog notify;
	if (rc == 0 && sv_seccomp_build_agent(&notify, SV_SECCOMP_NOTIFY_CONNECT, &err) == 0) {
		r->notify = run_probe(probe_notify, &notify, &o) == 0 && o.notify;
		if (!r->notify)
			sv_fmt(r->notify_detail, sizeof(r->notify_detail), "%s", o.err.msg);
		sv_seccomp_prog_free(&notify);
	} else if (rc == 0) {
		sv_fmt(r->notify_detail, sizeof(r->notify_detail), "%s", err.msg);
	}
	sv_seccomp_prog_free(&agent);
	sv_seccomp_prog_free(&prelude);
	return rc < 0 ? -r->errnum : 0;
}
