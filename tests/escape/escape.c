/* escape.c: the sandbox escape battery (issue "Process isolation"), a static test agent.
 *
 * Run as the sandbox's main process, it tries to break out in many ways and checks that what an
 * agent needs still works: one TAP-like line per attempt, then "N passed, M failed"; exit 0 only
 * if every line passed. tests/escape/README.md is the table of attempts. It must do no harm where
 * isolation is missing: risky calls get a bad fd or pointer (bubblewrap's try-syscall: allowed
 * shows as EBADF/EFAULT, blocked as EPERM/ENOSYS) or run in a throwaway child.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* System call numbers from 424 on are the same on every architecture. */
#define NR_pidfd_send_signal 424
#define NR_io_uring_setup    425
#define NR_io_uring_enter    426
#define NR_io_uring_register 427
#define NR_open_tree	     428
#define NR_move_mount	     429
#define NR_fsopen	     430
#define NR_fsconfig	     431
#define NR_fsmount	     432
#define NR_fspick	     433
#define NR_pidfd_open	     434
#define NR_clone3	     435
#define NR_pidfd_getfd	     438
#define NR_mount_setattr     442
/* x86_64 numbers for a libc older than userfaultfd (Linux 4.3), the newest of those used here. */
#if defined(__x86_64__) && !defined(SYS_userfaultfd)
#define SYS_perf_event_open   298
#define SYS_open_by_handle_at 304
#define SYS_setns	      308
#define SYS_process_vm_readv  310
#define SYS_process_vm_writev 311
#define SYS_finit_module      313
#define SYS_seccomp	      317
#define SYS_memfd_create      319
#define SYS_kexec_file_load   320
#define SYS_bpf		      321
#define SYS_execveat	      322
#define SYS_userfaultfd	      323
#endif

/* Kernel ABI values, defined here so the file builds without kernel headers. */
#define ESC_SECCOMP_SET_MODE_FILTER 1		/* linux/seccomp.h */
#define ESC_SECCOMP_MODE_FILTER	    2		/* for prctl(PR_SET_SECCOMP) */
#define ESC_FSCONFIG_CMD_CREATE	    6		/* linux/mount.h */
#define ESC_KEY_SPEC_SESSION	    (-3)	/* linux/keyctl.h KEY_SPEC_SESSION_KEYRING */
#define ESC_KEXEC_BAD_ARCH	    0xffff0000L /* an arch field no kernel accepts */
#define ESC_NETLINK_ROUTE	    0
#define ESC_NETLINK_AUDIT	    9
#define ESC_CAP_V3		    0x20080522 /* _LINUX_CAPABILITY_VERSION_3 */
#define ESC_CAP_SYS_ADMIN	    21
#define ESC_SECBITS_NOROOT	    0x3		      /* SECBIT_NOROOT | SECBIT_NOROOT_LOCKED */
#define ESC_RNDGETENTCNT	    _IOR('R', 0, int) /* linux/random.h */
#define ESC_X32_SYSCALL_BIT	    0x40000000L
#define ESC_I386_NR_GETPID	    20

#define BAD_PTR		8L    /* never mapped: a copy from or to it fails with EFAULT */
#define BAD_FD		9999L /* never open: an fd lookup fails with EBADF */
#define CHILD_TIMEOUT_S 10    /* SIGALRM for any child, and anything it execs */
#define TOTAL_TIMEOUT_S 120

/* Fixtures the harness creates as root before starting the supervisor (README.md). */
#define ESCAPE_DIR     "/etc/escape"
#define WORLD_WRITABLE ESCAPE_DIR "/world-writable" /* mode 0666, inside read-only /etc */
#define SECRET	       "/opt/secret"		    /* mode 0644, outside the policy */
#define SUID_BUSYBOX   "/usr/local/bin/suid-sh"	    /* setuid-root busybox, mode 4755 */
#define PROBE_SOCKET   "openshell-escape-probe"	    /* abstract, listened on from outside */

static unsigned int n_pass, n_fail;
static char tmp_prefix[48]; /* "/tmp/escape.<pid>.<nonce>": leftovers never collide */
static char status_buf[8192];

static void emit(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void emit(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	size_t len = (size_t)n < sizeof(buf) - 1 ? (size_t)n : sizeof(buf) - 2;
	buf[len++] = '\n';
	for (size_t off = 0; off < len;) { /* one write per line: nothing buffered across fork */
		ssize_t w = write(STDOUT_FILENO, buf + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		off += (size_t)w;
	}
}

static const char *errname(int e)
{
/* clang-format off */
#define E(x) {x, #x}
	static const struct {
		int e;
		const char *name;
	} names[] = {
		E(EPERM),   E(ENOENT),	     E(ESRCH),	     E(EINTR),	       E(EIO),
		E(ENXIO),   E(E2BIG),	     E(ENOEXEC),     E(EBADF),	       E(ECHILD),
		E(EAGAIN),  E(ENOMEM),	     E(EACCES),	     E(EFAULT),	       E(EBUSY),
		E(EEXIST),  E(EXDEV),	     E(ENODEV),	     E(ENOTDIR),       E(EISDIR),
		E(EINVAL),  E(EMFILE),	     E(ENOTTY),	     E(ETXTBSY),       E(ENOSPC),
		E(EROFS),   E(EPIPE),	     E(ERANGE),	     E(ENOSYS),	       E(ENOTEMPTY),
		E(ELOOP),   E(ENOKEY),	     E(EOPNOTSUPP),  E(EAFNOSUPPORT),  E(EPROTOTYPE),
		E(ENOTCONN), E(ECONNREFUSED), E(EPROTONOSUPPORT), E(ESOCKTNOSUPPORT),
	};
#undef E
	/* clang-format on */
	static char other[2][24];
	static int next;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (names[i].e == e)
			return names[i].name;
	}
	next ^= 1;
	snprintf(other[next], sizeof(other[next]), "errno %d", e);
	return other[next];
}

static void verdict(bool ok, const char *name, const char *detail)
{
	unsigned int n = n_pass + n_fail + 1;
	ok ? n_pass++ : n_fail++;
	if (!ok)
		emit("not ok %u - %s: %s", n, name, detail);
	else if (detail && *detail)
		emit("ok %u - %s (%s)", n, name, detail);
	else
		emit("ok %u - %s", n, name);
}

/* What an attempt came to. RETURNED: val 0 = success, else the errno; SIGNALED: val = signal;
 * BROKEN: the battery's own setup step @what failed with errno val. */
enum { OUT_RETURNED, OUT_SIGNALED, OUT_BROKEN };
struct outcome {
	int kind;
	int val;
	const char *what;
};

static struct outcome result(int r) /* r: 0 or -errno */
{
	return (struct outcome){OUT_RETURNED, r < 0 ? -r : 0, NULL};
}

static struct outcome broken(const char *what)
{
	return (struct outcome){OUT_BROKEN, errno, what};
}

static int rc(long r) /* a libc or syscall() return as 0 or -errno */
{
	return r < 0 ? -errno : 0;
}

static const char *describe(struct outcome o, char *buf, size_t size)
{
	if (o.kind == OUT_SIGNALED)
		snprintf(buf, size, "killed by signal %d (%s)", o.val, strsignal(o.val));
	else if (o.kind == OUT_BROKEN)
		snprintf(buf, size, "setup failed: %s: %s", o.what, errname(o.val));
	else
		snprintf(buf, size, "%s", o.val ? errname(o.val) : "success");
	return buf;
}

/* @want > 0: blocked, the call failed with errno @want; @want == 0: it succeeded; @want < 0:
 * the process died by signal -@want. */
static void expect(const char *name, struct outcome o, int want)
{
	char got[96], d[192], w[64];
	bool ok;
	if (want < 0) {
		ok = o.kind == OUT_SIGNALED && o.val == -want;
		snprintf(w, sizeof(w), "death by signal %d (%s)", -want, strsignal(-want));
	} else {
		ok = o.kind == OUT_RETURNED && o.val == want;
		snprintf(w, sizeof(w), "%s", want ? errname(want) : "success");
	}
	if (ok && o.kind == OUT_SIGNALED)
		snprintf(d, sizeof(d), "signal %s", strsignal(o.val));
	else if (ok)
		snprintf(d, sizeof(d), o.val ? "errno %s" : "%.0s", errname(o.val));
	else
		snprintf(d, sizeof(d), "expected %s, got %s", w, describe(o, got, sizeof(got)));
	verdict(ok, name, d);
}

static struct outcome wait_for(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR)
			return broken("waitpid");
	}
	if (WIFSIGNALED(st))
		return (struct outcome){OUT_SIGNALED, WTERMSIG(st), NULL};
	return (struct outcome){OUT_RETURNED, WEXITSTATUS(st), NULL};
}

/* Run @fn in a throwaway child, so credential, namespace and fd side effects of an attempt that
 * wrongly succeeds die with it. @fn returns 0 or -errno; the errno travels as the exit status
 * (Linux errnos are below 134). */
typedef int (*attempt_fn)(const void *arg);

static struct outcome in_child(attempt_fn fn, const void *arg)
{
	pid_t pid = fork();
	if (pid < 0)
		return broken("fork");
	if (pid == 0) {
		alarm(CHILD_TIMEOUT_S);
		int r = fn(arg);
		_exit(r >= 0 ? 0 : (-r > 254 ? 254 : -r));
	}
	return wait_for(pid);
}

/* One system call with fixed arguments, and the errno that shows it was blocked. */
struct sc_try {
	const char *name;
	long nr;
	long a[6];
	int want;
};

static int sc_run(const void *arg)
{
	const struct sc_try *t = arg;
	return rc(syscall(t->nr, t->a[0], t->a[1], t->a[2], t->a[3], t->a[4], t->a[5]));
}

static const char *tmp_path(char *buf, size_t size, const char *tag)
{
	snprintf(buf, size, "%s.%s", tmp_prefix, tag);
	return buf;
}

/* ---- identity ------------------------------------------------------------------------------- */

static void check_status_field(const char *key, int base, unsigned long long lo,
			       unsigned long long hi, const char *name)
{
	char v[64] = "", d[128];
	size_t klen = strlen(key);
	for (const char *p = status_buf; p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, key, klen) == 0 && p[klen] == ':') {
			p += klen + 1 + strspn(p + klen + 1, " \t");
			snprintf(v, sizeof(v), "%.*s", (int)strcspn(p, "\n"), p);
			break;
		}
	}
	char *end;
	errno = 0;
	unsigned long long x = strtoull(v, &end, base);
	bool ok = *v && errno == 0 && *end == '\0' && x >= lo && x <= hi;
	snprintf(d, sizeof(d), "%s %s", key, *v ? v : "missing from /proc/self/status");
	verdict(ok, name, d);
}

static void check_identity(void)
{
	char d[160];
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	getresuid(&ru, &eu, &su);
	getresgid(&rg, &eg, &sg);
	snprintf(d, sizeof(d), "uid %u/%u/%u", ru, eu, su);
	verdict(ru && eu && su, "real, effective and saved uid are not 0", d);
	snprintf(d, sizeof(d), "gid %u/%u/%u", rg, eg, sg);
	verdict(rg && eg && sg, "real, effective and saved gid are not 0", d);

	gid_t groups[256];
	int n = getgroups(256, groups);
	bool own = n >= 0;
	size_t len = (size_t)snprintf(d, sizeof(d), "groups:");
	for (int i = 0; i < n && len < sizeof(d); i++) {
		own = own && groups[i] == eg && groups[i] != 0;
		len += (size_t)snprintf(d + len, sizeof(d) - len, " %u", groups[i]);
	}
	if (n < 0)
		snprintf(d, sizeof(d), "getgroups: %s", errname(errno));
	verdict(own, "supplementary groups are only the agent's own group", d);

	check_status_field("CapInh", 16, 0, 0, "inheritable capabilities are empty");
	check_status_field("CapPrm", 16, 0, 0, "permitted capabilities are empty");
	check_status_field("CapEff", 16, 0, 0, "effective capabilities are empty");
	check_status_field("CapBnd", 16, 0, 0, "capability bounding set is empty");
	check_status_field("CapAmb", 16, 0, 0, "ambient capabilities are empty");
	check_status_field("NoNewPrivs", 10, 1, 1, "no_new_privs is set");
	check_status_field("Seccomp", 10, 2, 2, "seccomp is in filter mode");
	check_status_field("Seccomp_filters", 10, 1, ULLONG_MAX, "a seccomp filter is installed");

	int sb = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
	snprintf(d, sizeof(d), "securebits %#x", sb);
	verdict(sb >= 0 && (sb & ESC_SECBITS_NOROOT) == ESC_SECBITS_NOROOT,
		"securebits NOROOT is set and locked", d);

	struct rlimit rl = {1, 1};
	getrlimit(RLIMIT_CORE, &rl);
	snprintf(d, sizeof(d), "RLIMIT_CORE %llu/%llu", (unsigned long long)rl.rlim_cur,
		 (unsigned long long)rl.rlim_max);
	verdict(rl.rlim_cur == 0 && rl.rlim_max == 0, "core dumps are off (RLIMIT_CORE 0/0)", d);
}

/* ---- exec ------------------------------------------------------------------------------------ */

struct run_result {
	struct outcome o; /* the program's end; RETURNED val = its exit code */
	int exec_errno;	  /* non-zero: execve itself failed */
	char out[256];	  /* stdout and stderr, truncated */
};

/* Fork, exec @path with @argv (stdout and stderr captured), wait. */
static void run_program(const char *path, char *const argv[], struct run_result *res)
{
	static char *const envp[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", NULL};
	int outp[2], errp[2];
	memset(res, 0, sizeof(*res));
	if (pipe2(outp, O_CLOEXEC) < 0) {
		res->o = broken("pipe2");
		return;
	}
	if (pipe2(errp, O_CLOEXEC) < 0) {
		res->o = broken("pipe2");
		close(outp[0]), close(outp[1]);
		return;
	}
	pid_t pid = fork();
	if (pid == 0) {
		alarm(CHILD_TIMEOUT_S);
		dup2(outp[1], STDOUT_FILENO);
		dup2(outp[1], STDERR_FILENO);
		execve(path, argv, envp);
		int e = errno;
		ssize_t w = write(errp[1], &e, sizeof(e)); /* errp is CLOEXEC: only on failure */
		_exit(w < 0 ? 126 : 127);
	}
	int fork_errno = errno;
	close(outp[1]);
	close(errp[1]);
	size_t len = 0;
	for (ssize_t r; pid > 0;) {
		char chunk[256];
		r = read(outp[0], chunk, sizeof(chunk));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		size_t take = sizeof(res->out) - 1 - len;
		take = (size_t)r < take ? (size_t)r : take;
		memcpy(res->out + len, chunk, take);
		len += take;
	}
	res->out[len] = '\0';
	res->out[strcspn(res->out, "\n")] = '\0'; /* the first line is all we report */
	int e = 0;
	if (pid > 0 && read(errp[0], &e, sizeof(e)) == (ssize_t)sizeof(e))
		res->exec_errno = e;
	close(outp[0]);
	close(errp[0]);
	errno = fork_errno;
	res->o = pid > 0 ? wait_for(pid) : broken("fork");
}

/* NoNewPrivs: the setuid bit of a root-owned binary must not give euid 0. Busybox drops a setuid
 * euid itself for "sh" and "id", so `id -u` alone cannot tell; applets it marks as needing setuid
 * (crontab) die with "must be suid to work properly" exactly when euid != 0, that is when the
 * kernel ignored the setuid bit. */
static void check_setuid_exec(void)
{
	char d[320];
	struct run_result r;
	char *const sh_argv[] = {"sh", "-c", "id -u", NULL};
	run_program(SUID_BUSYBOX, sh_argv, &r);
	char *end;
	unsigned long uid = strtoul(r.out, &end, 10);
	bool ok = !r.exec_errno && r.o.kind == OUT_RETURNED && r.o.val == 0 && end != r.out &&
		  *end == '\0' && uid != 0;
	if (r.exec_errno)
		snprintf(d, sizeof(d), "exec %s: %s", SUID_BUSYBOX, errname(r.exec_errno));
	else
		snprintf(d, sizeof(d), "%sid -u printed \"%s\"",
			 ok ? "" : "expected a non-zero uid, ", r.out);
	verdict(ok, "setuid-root busybox: sh -c 'id -u' is not 0", d);

	char *const cron_argv[] = {"crontab", "-l", NULL};
	run_program(SUID_BUSYBOX, cron_argv, &r);
	ok = !r.exec_errno && strstr(r.out, "must be suid to work properly") != NULL;
	if (r.exec_errno)
		snprintf(d, sizeof(d), "exec %s: %s", SUID_BUSYBOX, errname(r.exec_errno));
	else
		snprintf(d, sizeof(d), "%s\"%s\"", ok ? "" : "expected 'must be suid', got ",
			 r.out);
	verdict(ok, "setuid-root busybox: the kernel did not grant euid 0 (crontab -l)", d);
}

/* ---- filesystem ----------------------------------------------------------------------------- */

static int try_open(const char *path, int flags) /* open and close at once: 0 or -errno */
{
	int fd = open(path, flags | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	close(fd);
	if (flags & O_CREAT)
		unlink(path);
	return 0;
}

/* --mount-fence: the supervisor's mount fence is expected (docs/security.md). It answers
 * first, before Landlock: a path outside the policy does not exist (ENOENT), a write to a
 * read-only bind is EROFS whatever the mode, a rename across two binds is EXDEV, and PID 1
 * is invisible in the agent's own /proc (hidepid=invisible). */
static bool fenced;
#define EXP_OUTSIDE (fenced ? ENOENT : EACCES)
#define EXP_RO	    (fenced ? EROFS : EACCES)
#define EXP_PID1    (fenced ? ENOENT : EACCES)
#define EXP_ACROSS  (fenced ? EXDEV : EACCES)

static void check_filesystem(void)
{
	/* clang-format off */
	const struct {
		const char *name, *path;
		int flags;
		int expected;
	} opens[] = {
		{"read " SECRET " (mode 0644, outside the policy)", SECRET, O_RDONLY, EXP_OUTSIDE},
		{"list /root", "/root", O_RDONLY | O_DIRECTORY, EXP_OUTSIDE},
		{"list / (not in the policy)", "/", O_RDONLY | O_DIRECTORY, EACCES},
		{"list /dev (only chosen nodes are in the policy)", "/dev", O_RDONLY | O_DIRECTORY,
		 EACCES},
		{"open /dev/zero (a read-only rule) for writing", "/dev/zero", O_WRONLY, EACCES},
		{"create a file in read-only " ESCAPE_DIR, ESCAPE_DIR "/created",
		 O_WRONLY | O_CREAT | O_EXCL, EXP_RO},
		{"open the world-writable file in /etc for writing", WORLD_WRITABLE, O_WRONLY,
		 EXP_RO},
		{"open(O_RDONLY|O_TRUNC) the world-writable file in /etc", WORLD_WRITABLE,
		 O_RDONLY | O_TRUNC, EXP_RO},
		{"append to /etc/passwd", "/etc/passwd", O_WRONLY | O_APPEND, EACCES},
		{"open /dev/urandom (a read-only rule) for writing", "/dev/urandom", O_WRONLY,
		 EACCES},
		{"open /proc/sys/kernel/core_pattern for writing", "/proc/sys/kernel/core_pattern",
		 O_WRONLY, EXP_RO},
		{"read /proc/1/environ", "/proc/1/environ", O_RDONLY, EXP_PID1},
		{"enter PID 1's root through /proc/1/root", "/proc/1/root/",
		 O_RDONLY | O_DIRECTORY, EXP_PID1},
	};
	/* clang-format on */
	for (size_t i = 0; i < sizeof(opens) / sizeof(opens[0]); i++)
		expect(opens[i].name, result(try_open(opens[i].path, opens[i].flags)),
		       opens[i].expected);
	if (fenced)
		expect("read PID 1's network view /proc/1/net/tcp (the container's listeners)",
		       result(try_open("/proc/1/net/tcp", O_RDONLY)), ENOENT);

	expect("truncate() the world-writable file in /etc",
	       result(rc(truncate(WORLD_WRITABLE, 0))), EXP_RO);

	char path[96], other[96];
	const char *name = "reopen a read-only fd of the world-writable file for writing via "
			   "/proc/self/fd";
	int fd = open(WORLD_WRITABLE, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		expect(name, broken("open " WORLD_WRITABLE " read-only"), EACCES);
	} else {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		expect(name, result(try_open(path, O_WRONLY)), EXP_RO);
		close(fd);
	}

	int r = rc(mkdir(ESCAPE_DIR "/dir", 0755));
	if (r == 0)
		rmdir(ESCAPE_DIR "/dir");
	expect("mkdir in read-only " ESCAPE_DIR, result(r), EXP_RO);

	r = rc(symlink("/tmp", ESCAPE_DIR "/symlink"));
	if (r == 0)
		unlink(ESCAPE_DIR "/symlink");
	expect("symlink in read-only " ESCAPE_DIR, result(r), EXP_RO);

	name = "read " SECRET " through a symlink made in /tmp";
	if (symlink(SECRET, tmp_path(path, sizeof(path), "symlink")) < 0) {
		expect(name, broken("symlink in /tmp"), EACCES);
	} else {
		expect(name, result(try_open(path, O_RDONLY)), EXP_OUTSIDE);
		unlink(path);
	}

	/* Landlock answers EXDEV, not EACCES, when REFER is the only right missing: /tmp may make
	 * the file, but the link would give /etc's file the rights of /tmp. */
	r = rc(link(WORLD_WRITABLE, tmp_path(path, sizeof(path), "hardlink")));
	if (r == 0)
		unlink(path); /* may fail in sticky /tmp: the name is unique, so no harm */
	expect("hard-link the world-writable file from /etc into /tmp", result(r), EXDEV);

	name = "rename a file from /tmp into read-only " ESCAPE_DIR;
	fd = open(tmp_path(path, sizeof(path), "rename-in"), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		expect(name, broken("create a file in /tmp"), EACCES);
	} else {
		close(fd);
		r = rc(rename(path, ESCAPE_DIR "/renamed"));
		unlink(r == 0 ? ESCAPE_DIR "/renamed" : path);
		expect(name, result(r), EXP_ACROSS);
	}

	r = rc(rename(WORLD_WRITABLE, tmp_path(other, sizeof(other), "rename-out")));
	if (r == 0)
		rename(other, WORLD_WRITABLE);
	expect("rename the world-writable file out of /etc into /tmp", result(r), EXP_ACROSS);

	r = rc(mknod(tmp_path(path, sizeof(path), "chardev"), S_IFCHR | 0666, makedev(1, 3)));
	if (r == 0)
		unlink(path);
	expect("mknod a character device (1,3) in /tmp", result(r), EPERM);

	name = "ioctl(RNDGETENTCNT) on /dev/urandom (IOCTL_DEV not granted)";
	fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		expect(name, broken("open /dev/urandom"), EACCES);
	} else {
		int count;
		expect(name, result(rc(ioctl(fd, ESC_RNDGETENTCNT, &count))), EACCES);
		close(fd);
	}
}

/* ---- system calls --------------------------------------------------------------------------- */

static int clone_newuser(const void *arg)
{
	(void)arg;
	long r = syscall(SYS_clone, (long)(CLONE_NEWUSER | SIGCHLD), 0L, 0L, 0L, 0L);
	if (r == 0)
		_exit(0); /* the clone itself: leave at once */
	if (r > 0)
		waitpid((pid_t)r, NULL, 0);
	return rc(r);
}

#if defined(__x86_64__)
static int x32_getpid(const void *arg)
{
	(void)arg;
	return rc(syscall(ESC_X32_SYSCALL_BIT | SYS_getpid));
}

static int i386_getpid(const void *arg)
{
	(void)arg;
	long ret = ESC_I386_NR_GETPID;
	__asm__ volatile("int $0x80" : "+a"(ret) : : "r8", "r9", "r10", "r11", "memory", "cc");
	return (int)ret < 0 ? (int)ret : 0;
}
#endif

static bool ia32_absent; /* --ia32-absent: the host probe found no int $0x80 entry */

static void check_syscalls(void)
{
	struct {
		unsigned int version;
		int pid;
	} caph = {ESC_CAP_V3, 0};
	struct {
		unsigned int effective, permitted, inheritable;
	} capd[2] = {{1u << ESC_CAP_SYS_ADMIN, 1u << ESC_CAP_SYS_ADMIN, 0}, {0, 0, 0}};
	gid_t root_group = 0;
	struct rlimit core = {1 << 20, 1 << 20};
	static char buf[16];
	struct iovec local = {buf, sizeof(buf)};
	struct iovec remote = {NULL, sizeof(buf)}; /* unmapped: an allowed call faults */
	const long tiocsti_high = (long)(0x100000000ULL | TIOCSTI); /* CVE-2019-10063 */
	/* clang-format off */
	const struct sc_try t[] = {
		/* privilege */
		{"setuid(0)", SYS_setuid, {0}, EPERM},
		{"setgid(0)", SYS_setgid, {0}, EPERM},
		{"setgroups([0])", SYS_setgroups, {1, (long)&root_group}, EPERM},
		{"capset: raise CAP_SYS_ADMIN", SYS_capset, {(long)&caph, (long)capd}, EPERM},
		{"prctl(PR_SET_SECUREBITS, 0)", SYS_prctl, {PR_SET_SECUREBITS, 0}, EPERM},
		{"setrlimit: raise RLIMIT_CORE", SYS_setrlimit, {RLIMIT_CORE, (long)&core}, EPERM},
		/* other processes. PTRACE_SEIZE runs PTRACE_ATTACH's permission checks without
		 * stopping the target; the trying child exits at once, which detaches. */
		{"ptrace(PTRACE_SEIZE, 1)", SYS_ptrace, {PTRACE_SEIZE, 1}, EPERM},
		{"ptrace(PTRACE_TRACEME)", SYS_ptrace, {PTRACE_TRACEME}, EPERM},
		{"kill(1, 0)", SYS_kill, {1, 0}, EPERM},
		{"kill(1, SIGCONT) (uid rules allow it within a session)", SYS_kill, {1, SIGCONT},
		 EPERM},
		{"process_vm_readv from PID 1", SYS_process_vm_readv,
		 {1, (long)&local, 1, (long)&remote, 1, 0}, EPERM},
		{"process_vm_writev into the battery (bad address)", SYS_process_vm_writev,
		 {getpid(), (long)&local, 1, (long)&remote, 1, 0}, EPERM},
		{"pidfd_open(1)", NR_pidfd_open, {1, 0}, EPERM},
		{"pidfd_getfd (bad pidfd)", NR_pidfd_getfd, {BAD_FD, 0, 0}, EPERM},
		{"pidfd_send_signal (bad pidfd)", NR_pidfd_send_signal, {BAD_FD, 0, 0, 0}, EPERM},
		/* mounts and namespaces */
		{"mount (bad pointers)", SYS_mount, {BAD_PTR, BAD_PTR, BAD_PTR, 0, 0}, EPERM},
		{"umount2 (bad pointer)", SYS_umount2, {BAD_PTR, 0}, EPERM},
		{"pivot_root (bad pointers)", SYS_pivot_root, {BAD_PTR, BAD_PTR}, EPERM},
		{"chroot(\"/tmp\")", SYS_chroot, {(long)"/tmp"}, EPERM},
		{"fsopen (bad pointer)", NR_fsopen, {BAD_PTR, 0}, EPERM},
		{"fsconfig (bad fd)", NR_fsconfig, {BAD_FD, ESC_FSCONFIG_CMD_CREATE, 0, 0, 0},
		 EPERM},
		{"fsmount (bad fd)", NR_fsmount, {BAD_FD, 0, 0}, EPERM},
		{"fspick (bad fd)", NR_fspick, {BAD_FD, BAD_PTR, 0}, EPERM},
		{"open_tree (bad pointer)", NR_open_tree, {AT_FDCWD, BAD_PTR, 0}, EPERM},
		{"move_mount (bad fds)", NR_move_mount, {BAD_FD, BAD_PTR, BAD_FD, BAD_PTR, 0},
		 EPERM},
		{"mount_setattr (bad fd)", NR_mount_setattr, {BAD_FD, BAD_PTR, 0, BAD_PTR, 32},
		 EPERM},
		{"setns (bad fd)", SYS_setns, {BAD_FD, 0}, EPERM},
		{"unshare(CLONE_NEWUSER)", SYS_unshare, {CLONE_NEWUSER}, EPERM},
		{"unshare(CLONE_NEWNET)", SYS_unshare, {CLONE_NEWNET}, EPERM},
		{"unshare(CLONE_NEWNS)", SYS_unshare, {CLONE_NEWNS}, EPERM},
		{"unshare(CLONE_NEWUSER|CLONE_NEWNET|CLONE_NEWNS)", SYS_unshare,
		 {CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWNS}, EPERM},
		{"clone3 (bad pointer)", NR_clone3, {BAD_PTR, 88}, ENOSYS},
		/* kernel interfaces */
		{"memfd_create (bad pointer)", SYS_memfd_create, {BAD_PTR, 0}, EPERM},
		{"bpf(BPF_MAP_CREATE) (bad attr)", SYS_bpf, {0, BAD_PTR, 72}, EPERM},
		{"perf_event_open (bad attr)", SYS_perf_event_open, {BAD_PTR, 0, -1, -1, 0}, EPERM},
		{"userfaultfd (invalid flags)", SYS_userfaultfd, {-1}, EPERM},
		{"io_uring_setup (bad params)", NR_io_uring_setup, {1, BAD_PTR}, ENOSYS},
		{"io_uring_enter (bad fd)", NR_io_uring_enter, {BAD_FD, 0, 0, 0, 0, 0}, ENOSYS},
		{"io_uring_register (bad fd)", NR_io_uring_register, {BAD_FD, 0, 0, 0}, ENOSYS},
		{"keyctl (unknown operation)", SYS_keyctl, {9999, 0, 0, 0, 0}, EPERM},
		{"add_key (bad pointers)", SYS_add_key,
		 {BAD_PTR, BAD_PTR, 0, 0, ESC_KEY_SPEC_SESSION}, EPERM},
		{"request_key (bad pointers)", SYS_request_key, {BAD_PTR, BAD_PTR, 0, 0}, EPERM},
		{"kexec_load (invalid arch)", SYS_kexec_load, {0, 0, 0, ESC_KEXEC_BAD_ARCH}, EPERM},
		{"kexec_file_load (bad fds)", SYS_kexec_file_load, {BAD_FD, BAD_FD, 0, 0, 0},
		 EPERM},
		{"init_module (bad image)", SYS_init_module, {BAD_PTR, 4096, BAD_PTR}, EPERM},
		{"finit_module (bad fd)", SYS_finit_module, {BAD_FD, BAD_PTR, 0}, EPERM},
		{"delete_module (bad name)", SYS_delete_module, {BAD_PTR, 0}, EPERM},
		{"open_by_handle_at (bad handle)", SYS_open_by_handle_at, {BAD_FD, BAD_PTR, 0},
		 EPERM},
		{"execveat(AT_EMPTY_PATH) (bad fd)", SYS_execveat,
		 {BAD_FD, BAD_PTR, 0, 0, AT_EMPTY_PATH}, EPERM},
		{"seccomp(SECCOMP_SET_MODE_FILTER) (bad program)", SYS_seccomp,
		 {ESC_SECCOMP_SET_MODE_FILTER, 0, BAD_PTR}, EPERM},
		{"prctl(PR_SET_SECCOMP) (bad program)", SYS_prctl,
		 {PR_SET_SECCOMP, ESC_SECCOMP_MODE_FILTER, BAD_PTR, 0, 0}, EPERM},
		{"ioctl(TIOCSTI) (bad fd)", SYS_ioctl, {BAD_FD, TIOCSTI, BAD_PTR}, EPERM},
		{"ioctl(TIOCSTI) with the high 32 bits set (bad fd)", SYS_ioctl,
		 {BAD_FD, tiocsti_high, BAD_PTR}, EPERM},
		{"ioctl(TIOCSTI) on stdin (bad pointer)", SYS_ioctl, {0, TIOCSTI, BAD_PTR}, EPERM},
		{"ioctl(TIOCLINUX) (bad fd)", SYS_ioctl, {BAD_FD, TIOCLINUX, BAD_PTR}, EPERM},
		/* network */
		{"socket(AF_INET, SOCK_RAW)", SYS_socket, {AF_INET, SOCK_RAW, IPPROTO_RAW}, EPERM},
		{"socket(AF_PACKET)", SYS_socket, {AF_PACKET, SOCK_RAW, 0}, EPERM},
		{"socket(AF_VSOCK)", SYS_socket, {AF_VSOCK, SOCK_STREAM, 0}, EPERM},
		{"socket(AF_BLUETOOTH)", SYS_socket, {AF_BLUETOOTH, SOCK_RAW, 0}, EPERM},
		{"socket(AF_ALG)", SYS_socket, {AF_ALG, SOCK_SEQPACKET, 0}, EPERM},
		{"socket(AF_NETLINK, NETLINK_AUDIT)", SYS_socket,
		 {AF_NETLINK, SOCK_RAW, ESC_NETLINK_AUDIT}, EPERM},
	};
	/* clang-format on */
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		expect(t[i].name, in_child(sc_run, &t[i]), t[i].want);
	expect("clone(CLONE_NEWUSER)", in_child(clone_newuser, NULL), EPERM);
#if defined(__x86_64__)
	expect("x32 system call (getpid | __X32_SYSCALL_BIT)", in_child(x32_getpid, NULL), -SIGSYS);
	/* A kernel without the ia32 entry (IA32_EMULATION off, or ia32_emulation=0) faults
	 * int $0x80 with SIGSEGV before seccomp sees it: nothing to filter there. The harness
	 * probes the host outside any sandbox (escape --probe-ia32) and says so. */
	expect("i386 system call (int $0x80 getpid)", in_child(i386_getpid, NULL),
	       ia32_absent ? -SIGSEGV : -SIGSYS);
#endif
}

/* Landlock's abstract-socket scope: the harness listens on @PROBE_SOCKET outside the sandbox. */
static void check_abstract_socket(void)
{
	const char *name = "connect to abstract socket @" PROBE_SOCKET " made outside";
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0) {
		expect(name, broken("socket(AF_UNIX)"), EPERM);
		return;
	}
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	memcpy(a.sun_path + 1, PROBE_SOCKET, strlen(PROBE_SOCKET));
	size_t len = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(PROBE_SOCKET);
	int r = rc(connect(s, (struct sockaddr *)&a, (socklen_t)len));
	close(s);
	if (r == -ECONNREFUSED)
		verdict(false, name,
			"expected EPERM, got ECONNREFUSED: the probe listener is "
			"missing, so the scope was not tested");
	else
		expect(name, result(r), EPERM);
}

/* ---- what must keep working ----------------------------------------------------------------- */

static int write_read_unlink(const char *path)
{
	static const char msg[] = "escape battery probe\n";
	char back[sizeof(msg)];
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	errno = EIO; /* a short write or read leaves errno alone */
	int r = 0;
	if (write(fd, msg, sizeof(msg)) != (ssize_t)sizeof(msg) ||
	    pread(fd, back, sizeof(back), 0) != (ssize_t)sizeof(back))
		r = -errno;
	else if (memcmp(msg, back, sizeof(msg)) != 0)
		r = -EIO;
	close(fd);
	if (unlink(path) < 0 && r == 0)
		r = -errno;
	return r;
}

static int read_some(const char *path)
{
	char buf[16];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, sizeof(buf));
	int r = n < 0 ? -errno : (n == 0 ? -EIO : 0);
	close(fd);
	return r;
}

static int list_dir(const char *path)
{
	DIR *d = opendir(path);
	if (!d)
		return -errno;
	int n = 0;
	errno = 0;
	while (readdir(d))
		n++;
	int r = errno ? -errno : (n > 2 ? 0 : -ENOENT);
	closedir(d);
	return r;
}

static void check_allowed(void)
{
	char cwd[200], name[300], path[96];
	expect("getpid", result(getpid() > 0 ? 0 : -EINVAL), 0);
	expect("read /etc/passwd", result(read_some("/etc/passwd")), 0);
	expect("write, read back and unlink a file in /tmp",
	       result(write_read_unlink(tmp_path(path, sizeof(path), "file"))), 0);
	if (!getcwd(cwd, sizeof(cwd)))
		snprintf(cwd, sizeof(cwd), "(getcwd: %s)", errname(errno));
	snprintf(name, sizeof(name), "write, read back and unlink a file in the workdir %s", cwd);
	snprintf(path, sizeof(path), "escape-probe%s", tmp_prefix + strlen("/tmp/escape"));
	expect(name, result(write_read_unlink(path)), 0);
	expect("list /proc/self", result(list_dir("/proc/self")), 0);
	expect("read /dev/urandom", result(read_some("/dev/urandom")), 0);

	int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	int r = fd < 0 ? -errno : (write(fd, "x", 1) == 1 ? 0 : -errno);
	if (fd >= 0)
		close(fd);
	expect("write /dev/null", result(r), 0);

	r = rc(mkfifo(tmp_path(path, sizeof(path), "fifo"), 0600));
	if (r == 0)
		unlink(path);
	expect("mkfifo in /tmp", result(r), 0);

	int sv[2];
	r = rc(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	if (r == 0)
		close(sv[0]), close(sv[1]);
	expect("socketpair(AF_UNIX)", result(r), 0);

	int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, ESC_NETLINK_ROUTE);
	r = rc(s);
	if (s >= 0) {
		struct sockaddr_storage nl = {.ss_family =
						  AF_NETLINK}; /* pid 0: the kernel picks */
		r = rc(bind(s, (struct sockaddr *)&nl, 12 /* sizeof(struct sockaddr_nl) */));
		close(s);
	}
	expect("socket(AF_NETLINK, NETLINK_ROUTE) and bind", result(r), 0);

	struct run_result res;
	char *const argv[] = {"true", NULL};
	run_program("/bin/true", argv, &res);
	if (res.exec_errno)
		res.o = (struct outcome){OUT_BROKEN, res.exec_errno, "execve /bin/true"};
	expect("fork and exec /bin/true", res.o, 0);
}

/* --connect-unix PATH: one connect(2) to a pathname socket; prints "connect: ok" or the
 * errno name, exits 0 on success and 1 otherwise (for the harness's socket fence cases). */
static int connect_unix(const char *path)
{
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "escape: %s: path too long\n", path);
		return 2;
	}
	memcpy(sa.sun_path, path, strlen(path));
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		printf("connect: socket %s\n", errname(errno));
		return 1;
	}
	int r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	int e = errno;
	close(fd);
	printf("connect: %s\n", r == 0 ? "ok" : errname(e));
	return r == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--probe-ia32") == 0) {
#if defined(__x86_64__)
		/* Outside any sandbox: exit 0 if int $0x80 reaches the kernel, 1 if it faults. */
		struct outcome o = in_child(i386_getpid, NULL);
		printf("ia32 entry: %s\n", o.kind == OUT_RETURNED ? "present" : "absent");
		return o.kind == OUT_RETURNED ? 0 : 1;
#else
		return 1;
#endif
	}
	if (argc == 3 && strcmp(argv[1], "--connect-unix") == 0)
		return connect_unix(argv[2]);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--ia32-absent") == 0) {
			ia32_absent = true;
		} else if (strcmp(argv[i], "--mount-fence") == 0) {
			fenced = true;
		} else {
			fprintf(stderr, "usage: escape [--ia32-absent] [--mount-fence] | "
					"--probe-ia32 | --connect-unix PATH\n");
			return 2;
		}
	}
	alarm(TOTAL_TIMEOUT_S);
	signal(SIGPIPE, SIG_IGN);
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	snprintf(tmp_prefix, sizeof(tmp_prefix), "/tmp/escape.%ld.%ld", (long)getpid(),
		 (long)now.tv_nsec);

	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, status_buf, sizeof(status_buf) - 1);
		status_buf[n > 0 ? n : 0] = '\0';
		close(fd);
	}
	emit("# escape battery: pid %ld ppid %ld uid %ld", (long)getpid(), (long)getppid(),
	     (long)getuid());

	check_identity();
	check_setuid_exec();
	check_filesystem();
	check_syscalls();
	check_abstract_socket();
	check_allowed();

	emit("1..%u", n_pass + n_fail);
	emit("%u passed, %u failed", n_pass, n_fail);
	return n_fail == 0 ? 0 : 1;
}
