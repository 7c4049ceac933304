/* `--self-test`: one probe per isolation layer, each exercising the layer rather than reading
 * version numbers. The parent only reads (getpid, capget, PR_CAPBSET_READ, PR_GET_*, getenv);
 * whatever changes process state runs in a probe child killed after its timeout. The parent
 * must never leave this file filtered, restricted, dropped or in another namespace.
 *
 * Classification (keep docs/selftest.md in step). Impact: 0 none, 1 weaker, 2 cannot start.
 *
 *  layer           ok when                                    not ok: status → impact
 *  pid1            PID 1                                      subreaper works: degraded → 1;
 *                                                             neither: unavailable → 1
 *  proc            statfs PROC_SUPER_MAGIC, self/status read  unavailable → 2
 *  capabilities    every needed cap effective                 SETUID SETGID SETPCAP SYS_ADMIN
 *                                                             NET_ADMIN → 2; KILL SYS_PTRACE
 *                                                             DAC_READ_SEARCH (or DAC_OVERRIDE)
 *                                                             CHOWN SYSLOG → 1
 *  privilege_drop  drop to 65534 in a child, setuid(0) fails  unavailable → 2
 *  no_new_privs    set + read back in a child                 unavailable → 2
 *  seccomp         sv_seccomp_selftest (agent filter, TSYNC)  unavailable → 2
 *  landlock        ABI ≥ 6 and a real denied open             ABI 1-5: degraded → 1;
 *                                                             none/not enforcing: unavail. → 1
 *  userns pidns    unshare in a child                         unavailable → 0 (not used)
 *  mountns
 *  netns           unshare(CLONE_NEWNET) in a child           unavailable → 2 (proxy mode)
 *  netlink         NETLINK_ROUTE RTM_GETLINK dump answered    unavailable → 2
 *  cgroup_pids     a numeric pids.max on the way up           "max": degraded, none:
 *                                                             unavailable → 1, or 2 with
 *                                                             OPENSHELL_REQUIRE_RUNTIME_PID_LIMIT
 *  kmsg            /dev/kmsg opens and reads                  unavailable → 1
 *  gpu             always ok: says whether the GPU baseline applies                     → 0
 */
#include "selftest.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "identity.h"
#include "landlock/landlock.h"
#include "seccomp.h"

#define ST_NOBODY	  65534 /* the identity the privilege-drop probe drops to */
#define ST_SECCOMP_MS	  8000	/* sv_seccomp_selftest waits up to 5 s for its probe thread */
#define ST_SLOW_MS	  4000	/* probes that fork children of their own */
#define ST_NETLINK_MS	  1000	/* wait for the first RTM_GETLINK reply */
#define ST_REAP_GRACE_MS  1000	/* after SIGKILL, how long to wait for the child to be reaped */
#define ST_POLL_SLICE_MS  50	/* how often a silent child is checked for having died */
#define ST_LANDLOCK_SCOPE 6	/* ABI adding the scopes the default spec asks for */

#define ST_WEAK	 SV_SELFTEST_WEAKER
#define ST_FATAL SV_SELFTEST_FATAL

/* ---- small helpers --------------------------------------------------------------------- */

static const struct {
	int e;
	const char *name;
} st_errnos[] = {
/* clang-format off */
#define ST_E(x) {x, #x}
    ST_E(EPERM),	   ST_E(ENOENT),	  ST_E(ESRCH),	       ST_E(EINTR),
    ST_E(EIO),		   ST_E(ENXIO),		  ST_E(E2BIG),	       ST_E(EBADF),
    ST_E(ECHILD),	   ST_E(EAGAIN),	  ST_E(ENOMEM),	       ST_E(EACCES),
    ST_E(EFAULT),	   ST_E(EBUSY),		  ST_E(EEXIST),	       ST_E(ENODEV),
    ST_E(ENOTDIR),	   ST_E(EISDIR),	  ST_E(EINVAL),	       ST_E(ENFILE),
    ST_E(EMFILE),	   ST_E(ENOSPC),	  ST_E(EROFS),	       ST_E(EPIPE),
    ST_E(ERANGE),	   ST_E(ENAMETOOLONG),	  ST_E(ENOSYS),	       ST_E(ELOOP),
    ST_E(EPROTO),	   ST_E(EOVERFLOW),	  ST_E(EUSERS),	       ST_E(ENOTSOCK),
    ST_E(EPROTONOSUPPORT), ST_E(EOPNOTSUPP),	  ST_E(EAFNOSUPPORT),  ST_E(ETIMEDOUT),
    ST_E(ECONNREFUSED),	   ST_E(ENOTRECOVERABLE), ST_E(ESOCKTNOSUPPORT),
#undef ST_E
    /* clang-format on */
};

const char *sv_selftest_errno_name(int e)
{
	for (size_t i = 0; i < SV_ARRAY_SIZE(st_errnos); i++)
		if (st_errnos[i].e == e)
			return st_errnos[i].name;
	return NULL;
}

/* The errno name, or "errno N" in @buf. */
static const char *st_ename(int e, char *buf, size_t size)
{
	const char *n = sv_selftest_errno_name(e);
	if (n)
		return n;
	sv_fmt(buf, size, "errno %d", e);
	return buf;
}

const char *sv_selftest_status_name(enum sv_selftest_status s)
{
	switch (s) {
	case SV_SELFTEST_OK:
		return "ok";
	case SV_SELFTEST_DEGRADED:
		return "degraded";
	default:
		return "unavailable";
	}
}

static void st_set(struct sv_selftest_layer *l, enum sv_selftest_status s,
		   enum sv_selftest_impact impact, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void st_set(struct sv_selftest_layer *l, enum sv_selftest_status s,
		   enum sv_selftest_impact impact, const char *fmt, ...)
{
	va_list ap;
	l->status = s;
	l->impact = impact;
	va_start(ap, fmt);
	sv_vfmt(l->reason, sizeof(l->reason), fmt, ap);
	va_end(ap);
}

/* Both actions; @hard NULL means the same as @be. */
static void st_act(struct sv_selftest_layer *l, const char *be, const char *hard)
{
	sv_fmt(l->best_effort, sizeof(l->best_effort), "%s", be);
	sv_fmt(l->hard_requirement, sizeof(l->hard_requirement), "%s", hard ? hard : be);
}

/* Append to a fixed buffer, keeping it NUL-terminated. */
static void st_cat(char *buf, size_t size, const char *s)
{
	size_t len = strnlen(buf, size);
	if (len + 1 < size)
		sv_fmt(buf + len, size - len, "%s", s);
}

/* Read up to @size - 1 bytes of @path, NUL-terminated. Returns the length or -errno. */
static ssize_t st_read_file(const char *path, char *buf, size_t size)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	size_t len = 0;
	while (len + 1 < size) {
		ssize_t n = read(fd, buf + len, size - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return (ssize_t)len;
}

/* A number from /proc/self/status ("Seccomp_filters"), or -1 when unknown. */
static long st_status_long(const char *key)
{
	char buf[4096];
	if (st_read_file("/proc/self/status", buf, sizeof(buf)) < 0)
		return -1;
	char want[64];
	sv_fmt(want, sizeof(want), "\n%s:", key);
	const char *p = strstr(buf, want);
	if (!p)
		return -1;
	p += strlen(want);
	while (*p == ' ' || *p == '\t')
		p++;
	long v = 0;
	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9' && v < 100000000L; p++)
		v = v * 10 + (*p - '0');
	return v;
}

/* One line of a /proc/sys file, trailing white space cut; "" when unreadable. */
static const char *st_sysctl(const char *path, char *buf, size_t size)
{
	ssize_t n = st_read_file(path, buf, size);
	if (n < 0)
		n = 0;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	buf[n] = '\0';
	return buf;
}

static uint64_t st_bit(int cap)
{
	return 1ULL << cap;
}

/* ---- the child runner ------------------------------------------------------------------ */

static long st_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void st_nap(void)
{
	struct timespec ts = {0, 5000000L};
	nanosleep(&ts, NULL);
}

/* Has @pid ended (waiting until @deadline ms)? It is left a zombie, so its pid and process
 * group id cannot be reused before st_reap: the group kill can never hit a stranger. */
static bool st_ended(pid_t pid, long deadline)
{
	for (;;) {
		siginfo_t si;
		si.si_pid = 0;
		int r = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT);
		if (r == 0 && si.si_pid == pid)
			return true;
		if (r < 0 && errno != EINTR)
			return true; /* ECHILD: reaped already (SIGCHLD ignored) */
		if (r == 0 && st_now_ms() >= deadline)
			return false;
		if (r == 0)
			st_nap();
	}
}

/* Reap @pid, waiting at most until @deadline (ms); @status stays 0 if it cannot be had. */
static void st_reap(pid_t pid, long deadline, int *status)
{
	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);
		if (r == pid || (r < 0 && errno != EINTR))
			return;
		if (r == 0 && st_now_ms() >= deadline)
			return;
		if (r == 0)
			st_nap();
	}
}

int sv_selftest_fork_probe(sv_selftest_probe_fn fn, void *ctx, void *out, size_t size,
			   int timeout_ms, struct sv_err *err)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return sv_err_set(err, errno, "pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return sv_err_set(err, e, "fork: %s", strerror(e));
	}
	if (pid == 0) {
		close(p[0]);
		(void)setpgid(0, 0);
		(void)signal(SIGTTOU, SIG_IGN); /* logging from a background group */
		fn(ctx, out);
		(void)sv_write_all(p[1], out, size);
		_exit(0);
	}
	(void)setpgid(pid, pid); /* as the child does: whichever runs first */
	close(p[1]);
	_cleanup_close_ int rd = p[0];
	long deadline = st_now_ms() + timeout_ms;
	size_t got = 0;
	bool timed_out = false;
	while (got < size) {
		long left = deadline - st_now_ms();
		if (left <= 0) {
			timed_out = true;
			break;
		}
		struct pollfd pfd = {.fd = rd, .events = POLLIN};
		int n = poll(&pfd, 1, (int)(left < ST_POLL_SLICE_MS ? left : ST_POLL_SLICE_MS));
		if (n < 0 && errno != EINTR)
			break;
		if (n <= 0) {
			/* A grandchild may hold the pipe open after the child died. */
			if (st_ended(pid, 0) && poll(&pfd, 1, 0) == 0)
				break;
			continue;
		}
		ssize_t r = read(rd, (char *)out + got, size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	bool ended = !timed_out && st_ended(pid, deadline);
	/* The whole group: the child if it overran, and anything it left behind. */
	(void)kill(-pid, SIGKILL);
	if (!ended)
		(void)kill(pid, SIGKILL);
	int status = 0;
	st_reap(pid, st_now_ms() + ST_REAP_GRACE_MS, &status);
	if (got == size && !timed_out)
		return 0;
	if (timed_out)
		return sv_err_set(err, ETIMEDOUT, "probe did not finish within %d ms (killed)",
				  timeout_ms);
	if (WIFSIGNALED(status))
		return sv_err_set(err, EPROTO, "probe child killed by signal %d", WTERMSIG(status));
	return sv_err_set(err, EPROTO, "probe child exited with status %d without a report",
			  WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* ---- what every probe may read: facts the parent gathered without changing anything ---- */

struct st_ctx {
	pid_t pid;
	uid_t euid;
	int caps_errno; /* capget failed: no facts about capabilities */
	uint64_t eff, bnd;
	bool nnp; /* no_new_privs already set on the caller */
	bool require_pid_limit;
};

static void st_ctx_init(struct st_ctx *c)
{
	memset(c, 0, sizeof(*c));
	c->pid = getpid();
	c->euid = geteuid();
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct d[2];
	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d) < 0)
		c->caps_errno = errno;
	c->eff = d[0].effective | ((uint64_t)d[1].effective << 32);
	for (int cap = 0; cap < 64; cap++) {
		int in = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
		if (in < 0)
			break;
		if (in == 1)
			c->bnd |= st_bit(cap);
	}
	c->nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1;
	c->require_pid_limit = getenv("OPENSHELL_REQUIRE_RUNTIME_PID_LIMIT") != NULL;
}

/* ---- probes (each runs in a child) ------------------------------------------------------ */

static void probe_pid1(const struct st_ctx *c, int arg, struct sv_selftest_layer *l)
{
	(void)arg;
	char e[24];
	if (c->pid == 1) {
		st_set(l, SV_SELFTEST_OK, 0,
		       "PID 1: every orphan in the container is reparented to it");
		st_act(l, "reap every orphan; at exit the kernel kills what is left", NULL);
		return;
	}
	int on = 0, why = 0;
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0 ||
	    prctl(PR_GET_CHILD_SUBREAPER, &on, 0, 0, 0) < 0)
		why = errno;
	else if (on != 1)
		why = EPROTO; /* accepted but does not read back */
	if (why) {
		st_set(l, SV_SELFTEST_UNAVAILABLE, ST_WEAK,
		       "not PID 1 (pid %d) and PR_SET_CHILD_SUBREAPER failed: %s", (int)c->pid,
		       st_ename(why, e, sizeof(e)));
		st_act(l, "start anyway: orphans escape reaping (warning subreaper_unavailable)",
		       NULL);
		return;
	}
	st_set(l, SV_SELFTEST_DEGRADED, ST_WEAK,
	       "not PID 1 (pid %d): child subreaper works (PR_SET_CHILD_SUBREAPER verified)",
	       (int)c->pid);
	st_act(l,
	       "run as a child subreaper: orphans are reaped, but the agent shares the "
	       "caller's PID namespace",
	       NULL);
}

static void probe_proc(const struct st_ctx *c, int arg, struct sv_selftest_layer *l)
{
	(void)c;
	(void)arg;
	char e[24], buf[256];
	struct statfs sf;
	st_act(l,
	       "refuse to start: /proc is needed for capability limits, fd hygiene and the "
	       "proxy's process identity",
	       NULL);
	if (statfs("/proc", &sf) < 0) {
		st_set(l, SV_SELFTEST_UNAVAILABLE, ST_FATAL, "statfs /proc: %s",
		       st_ename(errno, e, sizeof(e)));
		return;
	}
	if ((unsigned long)sf.f_type != PROC_SUPER_MAGIC) {
		st_set(l, SV_SELFTEST_UNAVAILABLE, ST_FATAL, "/proc is not procfs (f_type 0x%lx)",
		       (unsigned long)sf.f_type);
		return;
	}
	ssize_t n = st_read_file("/proc/self/status", buf, sizeof(buf));
	if (n <= 0) {
		st_set(l, SV_SELFTEST_UNAVAILABLE, ST_FATAL, "/proc/self/status: %s",
		       n < 0 ? st_ename((int)-n, e, sizeof(e)) : "empty");
		return;
	}
	st_set(l, SV_SELFTEST_OK, 0, "procfs at /proc (PROC_SUPER_MAGIC), /proc/self/status read");
	st_act(l, "use it for capability limits, fd hygiene and the proxy's process identity",
	       NULL);
}

/* The capabilities that matter, what needs each, and what its absence does. */
static const struct st_cap {
	int cap;
	int alt; /* another capability that does the job, or -1 */
	const char *name;
	enum sv_selftest_impact impact;
	const char *use;
} st_caps[] = {
    {CAP_SETUID, -1, "CAP_SETUID", ST_FATAL, "privilege drop"},
    {CAP_SETGID, -1, "CAP_SETGID", ST_FATAL, "privilege drop"},
    {CAP_SETPCAP, -1, "CAP_SETPCAP", ST_FATAL, "agent bounding set"},
    {CAP_SYS_ADMIN, -1, "CAP_SYS_ADMIN", ST_FATAL, "netns creation"},
    {CAP_NET_ADMIN, -1, "CAP_NET_ADMIN", ST_FATAL, "netns veth/routes/nftables"},
    {CAP_KILL, -1, "CAP_KILL", ST_WEAK, "signals to the agent"},
    {CAP_SYS_PTRACE, -1, "CAP_SYS_PTRACE", ST_WEAK, "proxy reads agent /proc/<pid>/exe"},
    {CAP_DAC_READ_SEARCH, CAP_DAC_OVERRIDE, "CAP_DAC_READ_SEARCH (or CAP_DAC_OVERRIDE)", ST_WEAK,
     "paths and /proc of any mode"},
    {CAP_CHOWN, -1, "CAP_CHOWN", ST_WEAK, "workspace chown"},
    {CAP_SYSLOG, -1, "CAP_SYSLOG", ST_WEAK, "kmsg under dmesg_restrict"},
};

static void probe_caps(const struct st_ctx *c, int arg, struct sv_selftest_layer *l)
{
	(void)arg;
	char e[24];
	if (c->caps_errno) {
		st_set(l, SV_SELFTEST_UNAVAILABLE, ST_FATAL, "capget: %s",
		       st_ename(c->caps_errno, e, sizeof(e)));
		st_act(l, "refuse to start: capabilities cannot be checked", NULL);
		return;
	}
	enum sv_selftest_impact worst = 0;
	char missing[SV_SELFTEST_REASON_MAX] = "", fatal[SV_SELFTEST_ACTION_MAX] = "";
	for (size_t i = 0; i < SV_ARRAY_SIZE(st_caps); i++) {
		const struct st_cap *k = &st_caps[i];
		if ((c->eff & st_bit(k->cap)) || (k->alt >= 0 && (c->eff & st_bit(k->alt))))
			continue;
		char one[160];
		sv_fmt(one, sizeof(one), "%s%s (%s)", missing[0] ? ", " : "", k->name, k->use);
		st_cat(missing, sizeof(missing), one);
		if (k->impact > worst)
			worst = k->impact;
		if (k->impact == ST_FATAL) {
			st_cat(fatal, sizeof(fatal), fatal[0] ? ", " : "refuse to start: missing ");
			st_cat(fatal, sizeof(fatal), k->name);
		}
	}
	if (!worst) {
		st_set(l, SV_SELFTEST_OK, 0,
		       "all %zu needed capabilities effective (effective 0x%llx, bounding 0x%llx)",
		       SV_ARRAY_SIZE(st_caps), (unsigned long long)c->eff,
		       (unsigned long long)c->bnd);
		st_act(l, "keep them for setup; the agent gets none", NULL);
		return;
	}
	st_set(l, worst == ST_FATAL ? SV_SELFTEST_UNAVAILABLE : SV_SELFTEST_DEGRADED, worst,
	       "missing %s; effective 0x%llx, bounding 0x%llx", missing, (unsigned long long)c->eff,
	       (unsigned long long)c->bnd);
	st_act(l, fatal[0] ? fatal : "start; the features named in the reason are weaker", NULL);
}

/* "missing CAP_SETUID, CAP_SETGID" / "not root (euid 1000)", for a failed drop. */
static void st_drop_blame(const struct st_ctx *c, char *buf, size_t size)
{
	static const struct st_cap *const need[] = {&st_caps[0], &st_caps[1], &st_caps[2]};
	buf[0] = '\0';
	for (size_t i = 0; i < SV_ARRAY_SIZE(need); i++)
		if (!c->caps_errno && !(c->eff & st_bit(need[i]->cap))) {
			st_cat(buf, size, buf[0] ? ", " : "missing ");
			st_cat(buf, size, need[i]->name);
		}
	if (c->euid != 0) {
		char who[48];
		sv_fmt(who, sizeof(who), "%snot root (euid %u)", buf[0] ? "; " : "",
		       (unsigned)c->euid);
		st_cat(buf, size, who);
	}
	if (buf[0])
		st_cat(buf, size, ": ");
}

static void probe_privdrop(const struct st_ctx *c, int arg, struct sv_selftest_layer *l)
{
	(void)arg;
	struct sv_identity id;
	memset(&id, 0, sizeof(id));
	id.uid = ST_NOBODY;
	id.gid = ST_NOBODY;
	id.numeric = true;
	id.source = "self-test";
	struct sv_identity_plan plan;
	struct sv_err err = {0};
	char blame[160], e[24];
	st_drop_blame(c, blame, sizeof(blame));
	st_act(l, "refuse to start: the agent must never keep the supervisor's privileges", NULL);
	if (sv_identity_plan_init(&plan, &id, &err) < 0 || sv_identity_drop(&plan, &err) < 0) {
		const char *name = st_ename(err.code, e, sizeof(e));
		st_set(l, SV_SELFTEST_UNAVAILABLE, ST_FATAL, "%s%s%s%s", blame,
		       strstr(err.msg, name) ? "" : name, strstr(err.msg, name) ? "" : ": ",
		       err.msg);
		return;
	}
	int back = setuid(0) == 0 ? 0 : errno;
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct d[2];
	memset(d, 0xff, sizeof(d));
	(void)syscall(SYS_capget, &h, d);
	bool caps_left = d[0].effective | d[0].permitted | d[1].effective | d[1].permitted;
	if (back != EPERM || caps_left || getuid() != ST_NOBODY || getgid() != ST_NOBODY) {
		st_set(l, SV_SELFTEST_UNAVAILABLE, ST_FATAL,
		       "drop to %d:%d reported success but setuid(0) gave %s, capabilities left: "
		       "%s, uid %u",
		       ST_NOBODY, ST_NOBODY, back ? st_ename(back, e, sizeof(e)) : "success",
		       caps_left ? "yes" : "no", (unsigned)getuid());
		return;
	}
	st_set(l, SV_SELFTEST_OK, 0,
	       "dropped a child to %d:%d: setuid(0) fails with EPERM, no capabilities, empty "
	       "bounding set, no_new_privs, not dumpable",
	       ST_NOBODY, ST_NOBODY);
	st_act(l, "drop the agent to its uid/gid with no capabilities before exec", NULL);
}

static void probe_nnp(const struct st_ctx *c, int arg, struct sv_selftest_layer *l)
{
	(void)arg;
	char e[24];
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		st_set(l, SV_SELFTEST_UNAVAILABLE, ST_FATAL, "PR_SET_NO_NEW_PRIVS: %s",
		       st_ename(errno, e, sizeof(e)));
	} else if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) {
		st_set(l, SV_SELFTEST_UNAVAILABLE, ST_FATAL,
		       "PR_GET_NO_NEW_PRIVS does not read back 1 after setting it");
	} else {
		st_set(l, SV_SELFTEST_OK, 0, "set and read back in a child%s",
		       c->nnp ? " (already set on the supervisor by whoever started it)" : "");
		st_act(l, "set it on the supervisor (prelude) and on every child", NULL);
		return;
	}
	st_act(l, "refuse to start: seccomp filters and Landlock need no_new_privs", NULL);
}

static void probe_seccomp(const struct st_ctx *c, int arg, struct sv_selftest_layer *l)
{
	(void)c;
	(void)arg;
	struct sv_seccomp_report r;
	char e[24], outer[96] = "";
	int rc = sv_seccomp_selftest(&r);
	long filters = st_status_long("Seccomp_filters");
	if (filters > 0)
		sv_fmt(outer, sizeof(outer), "; stacked on %ld filter(s) already on this process",
		       filters);
	if (rc < 0) {
		st_set(l, SV_SELFTEST_UNAVAILABLE, ST_FATAL, "%s: %s%s",
		       st_ename(r.errnum ? r.errnum : -rc, e, sizeof(e)), r.detail, outer);
		st_act(l, "refuse to start: seccomp is never optional (agent filter, prelude)",
		       NULL);
		return;
	}
	st_set(l, SV_SELFTEST_OK, 0,
	       "agent filter denies memfd_create/seccomp (EPERM) and clone3 (ENOSYS), allows the "
	       "rest; the prelude reaches a second thread (TSYNC)%s",
	       outer);
	st_act(l, "install the prelude on the supervisor and the agent filter last before exec",
	       NULL);
}

static void probe_landlock(const struct st_ctx *c, int arg, struct sv_selftest_layer *l)
{
	(void)c;
	(void)arg;
	struct sv_err err = {0};
	char e[24];
	int abi = ll_abi_probe(&err);
	if (abi < 0) {
		st_set(l, SV_SELFTEST_UNAVAILABLE, ST_WEAK, "%s: %s", st_ename(-abi, e, sizeof(e)),
		       err.msg);
		st_act(l, "run without Landlock, HIGH finding landlock_unavailable",
		       "refuse to start");
		return;
	}
	int denials = ll_selftest_denied_open(&err);
	if (denials < 0) {
		st_set(l, SV_SELFTEST_UNAVAILABLE, ST_WEAK, "ABI %d reported, but %s: %s", abi,
		       st_ename(-denials, e, sizeof(e)), err.msg);
		st_act(l, "run without working Landlock (it does not enforce here), HIGH finding",
		       "refuse to start");
		return;
	}
	uint64_t have = LL_FS_V1 | (abi >= 2 ? LL_FS_REFER : 0) | (abi >= 3 ? LL_FS_TRUNCATE : 0) |
			(abi >= 5 ? LL_FS_IOCTL_DEV : 0);
	char missing[192] = "";
	if (LL_FS_ALL & ~have)
		ll_fs_names(LL_FS_ALL & ~have, missing, sizeof(missing));
	if (abi < ST_LANDLOCK_SCOPE)
		st_cat(missing, sizeof(missing), missing[0] ? ",scopes (ABI 6)" : "scopes (ABI 6)");
	char known[48] = "";
	if (abi > LL_ABI_KNOWN)
		sv_fmt(known, sizeof(known), " (this build uses up to ABI %d)", LL_ABI_KNOWN);
	if (missing[0]) {
		st_set(l, SV_SELFTEST_DEGRADED, ST_WEAK,
		       "ABI %d: denied open verified (%d denial(s), EACCES), but %s missing", abi,
		       denials, missing);
		st_act(l, "enforce the rest, HIGH finding landlock_degraded",
		       "refuse to start: the policy handles rights this ABI lacks");
		return;
	}
	st_set(l, SV_SELFTEST_OK, 0,
	       "ABI %d%s: a ruleset denied open with EACCES in a child (%d denial(s)); every "
	       "default right and scope available",
	       abi, known, denials);
	st_act(l, "enforce the policy's paths", NULL);
}

/* Is this process chrooted? 1 yes (no mount at "/" is visible), 0 no, -1 unknown. */
static int st_chrooted(void)
{
	static char buf[65536]; /* the probe child's own copy */
	if (st_read_file("/proc/self/mountinfo", buf, sizeof(buf)) < 0)
		return -1;
	for (const char *line = buf; *line;) {
		/* id parent major:minor root mountpoint ... */
		const char *p = line;
		for (int field = 0; field < 4 && p; field++) {
			p = strchr(p, ' ');
			if (p)
				p++;
		}
		if (p && p[0] == '/' && p[1] == ' ')
			return 0;
		const char *nl = strchr(line, '\n');
		if (!nl)
			break;
		line = nl + 1;
	}
	return 1;
}

static const struct st_ns {
	int flag;
	const char *flag_name;
	const char *sysctl; /* max_*_namespaces */
	const char *config;
	enum sv_selftest_impact impact;
	const char *ok_act;
	const char *missing_act;
} st_nss[] = {
    {CLONE_NEWUSER, "CLONE_NEWUSER", "max_user_namespaces", "CONFIG_USER_NS", 0,
     "nothing: not used by the supervisor; the agent's seccomp filter denies CLONE_NEWUSER",
     "nothing changes: the supervisor runs as root and needs none"},
    {CLONE_NEWPID, "CLONE_NEWPID", "max_pid_namespaces", "CONFIG_PID_NS", 0,
     "nothing: the runtime gives the supervisor its PID namespace (see pid1)",
     "nothing changes: the supervisor creates no PID namespace (see pid1)"},
    {CLONE_NEWNS, "CLONE_NEWNS", "max_mnt_namespaces", "a mount namespace", 0,
     "nothing: the agent sees the container's mounts, confined by Landlock",
     "nothing changes: the supervisor creates no mount namespace"},
    {CLONE_NEWNET, "CLONE_NEWNET", "max_net_namespaces", "CONFIG_NET_NS", ST_FATAL,
     "give the agent its own network namespace, reachable only through the proxy",
     "refuse to start: proxy network mode needs a network namespace (no host-network "
     "fallback)"},
};

static void st_ns_hint(const struct st_ctx *c, const struct st_ns *ns, int e, char *buf,
		       size_t size)
{
	char one[160], v[32];
	buf[0] = '\0';
	long filters = st_status_long("Seccomp_filters");
	switch (e) {
	case EPERM:
	case EACCES:
		if (ns->flag != CLONE_NEWUSER && !(c->eff & st_bit(CAP_SYS_ADMIN)))
			st_cat(buf, size, "; needs CAP_SYS_ADMIN, which is not effective");
		if (ns->flag == CLONE_NEWUSER && st_chrooted() == 1)
			st_cat(buf, size,
			       "; the process is chrooted (the kernel refuses user "
			       "namespaces to a chrooted process)");
		if (ns->flag == CLONE_NEWUSER && c->euid != 0 &&
		    strcmp(st_sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", v,
				     sizeof(v)),
			   "1") == 0)
			st_cat(buf, size, "; kernel.apparmor_restrict_unprivileged_userns=1");
		if (filters > 0) {
			sv_fmt(one, sizeof(one),
			       "; %ld seccomp filter(s) on this process may deny it", filters);
			st_cat(buf, size, one);
		}
		break;
	case ENOSPC: {
		char path[96];
		sv_fmt(path, sizeof(path), "/proc/sys/user/%s", ns->sysctl);
		const char *max = st_sysctl(path, v, sizeof(v));
		sv_fmt(one, sizeof(one),
		       strcmp(max, "0") == 0 ? "; user.%s is 0" : "; the user.%s limit is reached",
		       ns->sysctl);
		st_cat(buf, size, one);
		break;
	}
	case EINVAL:
		sv_fmt(one, sizeof(one), "; the kernel lacks %s", ns->config);
		st_cat(buf, size, one);
		break;
	case ENOSYS:
		st_cat(buf, size, "; unshare is not implemented here");
		break;
	case EUSERS:
		st_cat(buf, size, "; 32 nested user namespaces already");
		break;
	default:
		break;
	}
}

static void probe_ns(const struct st_ctx *c, int arg, struct sv_selftest_layer *l)
{
	const struct st_ns *ns = &st_nss[arg];
	char e[24], hint[SV_SELFTEST_REASON_MAX - 64];
	if (unshare(ns->flag) < 0) {
		int err = errno;
		st_ns_hint(c, ns, err, hint, sizeof(hint));
		st_set(l, SV_SELFTEST_UNAVAILABLE, ns->impact, "%s from unshare(%s)%s",
		       st_ename(err, e, sizeof(e)), ns->flag_name, hint);
		st_act(l, ns->missing_act, NULL);
		return;
	}
	if (ns->flag == CLONE_NEWPID) {
		/* Prove it: the first child in a new PID namespace is its PID 1. */
		pid_t pid = fork();
		if (pid == 0)
			_exit(getpid() == 1 ? 0 : 1);
		int status = 0;
		if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0) {
			st_set(l, SV_SELFTEST_UNAVAILABLE, ns->impact,
			       "unshare(CLONE_NEWPID) worked, but its first child %s",
			       pid < 0 ? "could not be forked" : "was not PID 1 there");
			st_act(l, ns->missing_act, NULL);
			return;
		}
	}
	st_set(l, SV_SELFTEST_OK, 0, "unshare(%s) works in a child%s", ns->flag_name,
	       ns->flag == CLONE_NEWPID ? "; its first child is PID 1 there" : "");
	st_act(l, ns->ok_act, NULL);
}

static void probe_netlink(const struct st_ctx *c, int arg, struct sv_selftest_layer *l)
{
	(void)c;
	(void)arg;
	char e[24];
	const char *step = "socket(AF_NETLINK, NETLINK_ROUTE)";
	st_act(l, "refuse to start: the agent's network namespace is configured over rtnetlink",
	       NULL);
	_cleanup_close_ int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	struct {
		struct nlmsghdr h;
		struct ifinfomsg i;
	} req;
	memset(&req, 0, sizeof(req));
	req.h.nlmsg_len = sizeof(req);
	req.h.nlmsg_type = RTM_GETLINK;
	req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	req.h.nlmsg_seq = 1;
	req.i.ifi_family = AF_UNSPEC;
	if (fd < 0)
		goto fail;
	step = "bind";
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto fail;
	step = "send RTM_GETLINK";
	if (send(fd, &req, sizeof(req), 0) < 0)
		goto fail;
	step = "poll for the reply";
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	int pr = poll(&pfd, 1, ST_NETLINK_MS);
	if (pr == 0)
		errno = ETIMEDOUT;
	if (pr <= 0)
		goto fail;
	static union {
		struct nlmsghdr h;
		char b[32768];
	} reply; /* the probe child's own copy */
	step = "recv";
	ssize_t n = recv(fd, reply.b, sizeof(reply.b), 0);
	if (n < 0)
		goto fail;
	int links = 0;
	int len = (int)n;
	/* The uapi NLMSG_OK compares the u32 nlmsg_len with an int length. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
	for (struct nlmsghdr *h = &reply.h; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
		if (h->nlmsg_type == NLMSG_ERROR) {
			const struct nlmsgerr *ne = NLMSG_DATA(h);
			errno = ne->error ? -ne->error : EPROTO;
			step = "RTM_GETLINK answer";
			goto fail;
		}
		if (h->nlmsg_type == RTM_NEWLINK)
			links++;
	}
#pragma GCC diagnostic pop
	if (links == 0) {
		errno = ENODATA;
		step = "RTM_GETLINK answer without links";
		goto fail;
	}
	st_set(l, SV_SELFTEST_OK, 0, "RTM_GETLINK dump answered (%d link(s) in the first reply)",
	       links);
	st_act(l, "configure the agent's network namespace (veth, addresses, routes)", NULL);
	return;
fail:
	st_set(l, SV_SELFTEST_UNAVAILABLE, ST_FATAL, "%s: %s", step, st_ename(errno, e, sizeof(e)));
}

static void probe_pids(const struct st_ctx *c, int arg, struct sv_selftest_layer *l)
{
	(void)arg;
	static const char root[] = "/sys/fs/cgroup";
	enum sv_selftest_impact impact = c->require_pid_limit ? ST_FATAL : ST_WEAK;
	char e[24], text[4096], rel[PATH_MAX], where[PATH_MAX];
	struct statfs sf;
	bool v2 = statfs(root, &sf) == 0 && (unsigned long)sf.f_type == CGROUP2_SUPER_MAGIC;
	const char *base = v2 ? root : "/sys/fs/cgroup/pids";
	if (c->require_pid_limit)
		st_act(l, "refuse to start (OPENSHELL_REQUIRE_RUNTIME_PID_LIMIT is set)", NULL);
	else
		st_act(l,
		       "warn and start: nothing bounds the agent's process count (set "
		       "OPENSHELL_REQUIRE_RUNTIME_PID_LIMIT to refuse instead)",
		       NULL);
	int se = 0;
	if (!v2)
		se = statfs(base, &sf) < 0			      ? errno
		     : (unsigned long)sf.f_type != CGROUP_SUPER_MAGIC ? ENOENT
								      : 0;
	if (se) {
		st_set(l, SV_SELFTEST_UNAVAILABLE, impact,
		       "%s: no cgroup v2 at %s and no v1 pids hierarchy at %s",
		       st_ename(se, e, sizeof(e)), root, base);
		return;
	}
	ssize_t n = st_read_file("/proc/self/cgroup", text, sizeof(text));
	int rc = n < 0 ? (int)n : sv_selftest_cgroup_path(text, v2, rel, sizeof(rel));
	if (rc < 0) {
		st_set(l, SV_SELFTEST_UNAVAILABLE, impact, "%s: no %s line in /proc/self/cgroup",
		       st_ename(-rc, e, sizeof(e)), v2 ? "cgroup v2 (0::)" : "pids controller");
		return;
	}
	const char *leaf = strcmp(rel, "/") == 0 ? "" : rel;
	unsigned long long limit = 0;
	rc = sv_selftest_pids_limit(base, rel, &limit, where, sizeof(where));
	if (rc == 1) {
		st_set(l, SV_SELFTEST_OK, 0, "pids.max %llu at %s (cgroup %s)", limit, where,
		       v2 ? "v2" : "v1");
		st_act(l, "rely on the runtime's pids limit (the agent gets no RLIMIT_NPROC)",
		       NULL);
	} else if (rc == 0) {
		st_set(l, SV_SELFTEST_DEGRADED, impact,
		       "pids.max is \"max\" (no limit) from %s%s up to %s", base, leaf, base);
	} else {
		st_set(l, SV_SELFTEST_UNAVAILABLE, impact, "%s: no pids.max from %s%s up to %s%s",
		       st_ename(-rc, e, sizeof(e)), base, leaf, base,
		       leaf[0] ? "" : " (the root cgroup has none)");
	}
}

static void probe_kmsg(const struct st_ctx *c, int arg, struct sv_selftest_layer *l)
{
	(void)arg;
	char e[24], buf[2048];
	st_act(l,
	       "start without the bypass monitor: direct connections are still refused, but "
	       "not reported",
	       NULL);
	_cleanup_close_ int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		int err = errno;
		const char *why = "";
		char v[16];
		if (err == ENOENT)
			why = " (no such device node in this container)";
		else if ((err == EPERM || err == EACCES) && !(c->eff & st_bit(CAP_SYSLOG)) &&
			 strcmp(st_sysctl("/proc/sys/kernel/dmesg_restrict", v, sizeof(v)), "1") ==
			     0)
			why = " (kernel.dmesg_restrict=1 and CAP_SYSLOG not effective)";
		st_set(l, SV_SELFTEST_UNAVAILABLE, ST_WEAK, "%s: open /dev/kmsg%s",
		       st_ename(err, e, sizeof(e)), why);
		return;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode)) {
		st_set(l, SV_SELFTEST_UNAVAILABLE, ST_WEAK, "/dev/kmsg is not a character device");
		return;
	}
	ssize_t n;
	do
		n = read(fd, buf, sizeof(buf));
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno != EAGAIN && errno != EPIPE) {
		st_set(l, SV_SELFTEST_UNAVAILABLE, ST_WEAK, "%s: read /dev/kmsg",
		       st_ename(errno, e, sizeof(e)));
		return;
	}
	st_set(l, SV_SELFTEST_OK, 0, "/dev/kmsg opened and read (%s)",
	       n > 0 ? "one record" : "no record pending");
	st_act(l, "follow it for the network bypass monitor", NULL);
}

static bool st_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

static void probe_gpu(const struct st_ctx *c, int arg, struct sv_selftest_layer *l)
{
	(void)c;
	(void)arg;
	char found[256] = "";
	bool ctl = st_exists("/dev/nvidiactl"), dxg = st_exists("/dev/dxg");
	int nodes = 0;
	if (ctl)
		st_cat(found, sizeof(found), "/dev/nvidiactl ");
	if (dxg)
		st_cat(found, sizeof(found), "/dev/dxg ");
	DIR *d = opendir("/dev");
	for (struct dirent *de; d && (de = readdir(d));) {
		const char *s = de->d_name;
		if (strncmp(s, "nvidia", 6) != 0 || !s[6] ||
		    strspn(s + 6, "0123456789") != strlen(s + 6))
			continue;
		if (nodes++ < 8) {
			st_cat(found, sizeof(found), "/dev/");
			st_cat(found, sizeof(found), s);
			st_cat(found, sizeof(found), " ");
		}
	}
	if (d)
		closedir(d);
	size_t len = strlen(found);
	if (len)
		found[len - 1] = '\0';
	if (ctl || dxg) {
		st_set(l, SV_SELFTEST_OK, 0,
		       "present: %s; GPU baseline paths will be added to the policy", found);
		st_act(l, "add the GPU baseline: device nodes and /proc read-write", NULL);
	} else if (nodes) {
		st_set(l, SV_SELFTEST_OK, 0,
		       "%s without /dev/nvidiactl or /dev/dxg: no GPU baseline", found);
		st_act(l, "no GPU baseline: CUDA in the agent needs /dev/nvidiactl", NULL);
	} else {
		st_set(l, SV_SELFTEST_OK, 0,
		       "no GPU device nodes (/dev/nvidiactl, /dev/nvidia[0-9]*, /dev/dxg)");
		st_act(l, "nothing: no GPU baseline", NULL);
	}
}

/* ---- cgroup helpers (pure enough to unit-test) ------------------------------------------ */

static bool st_list_has(const char *list, size_t len, const char *word)
{
	size_t wl = strlen(word);
	for (size_t i = 0; i < len;) {
		size_t j = i;
		while (j < len && list[j] != ',')
			j++;
		if (j - i == wl && memcmp(list + i, word, wl) == 0)
			return true;
		i = j + 1;
	}
	return false;
}

int sv_selftest_cgroup_path(const char *text, bool v2, char *out, size_t size)
{
	for (const char *line = text; *line;) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		const char *c1 = memchr(line, ':', len);
		const char *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - line)) : NULL;
		if (c2) {
			bool match = v2 ? (c1 == line + 1 && line[0] == '0' && c2 == c1 + 1)
					: st_list_has(c1 + 1, (size_t)(c2 - c1 - 1), "pids");
			if (match) {
				size_t plen = len - (size_t)(c2 + 1 - line);
				if (plen + 1 > size)
					return -ENAMETOOLONG;
				memcpy(out, c2 + 1, plen);
				out[plen] = '\0';
				return 0;
			}
		}
		if (!nl)
			break;
		line = nl + 1;
	}
	return -ENOENT;
}

int sv_selftest_pids_limit(const char *base, const char *rel, unsigned long long *limit,
			   char *where, size_t wsize)
{
	char dir[PATH_MAX], path[PATH_MAX + 16], buf[64];
	size_t blen = strlen(base);
	if (strstr(rel, "/..") || strncmp(rel, "..", 2) == 0)
		return -ENOENT; /* outside our cgroup namespace: not reachable here */
	if (sv_fmt(dir, sizeof(dir), "%s%s%s", base, rel[0] == '/' ? "" : "/", rel) >=
	    sizeof(dir) - 1)
		return -ENAMETOOLONG;
	size_t len = strlen(dir);
	while (len > blen && dir[len - 1] == '/')
		dir[--len] = '\0';
	int found = -ENOENT;
	for (;;) {
		sv_fmt(path, sizeof(path), "%s/pids.max", dir);
		ssize_t n = st_read_file(path, buf, sizeof(buf));
		while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
			buf[--n] = '\0';
		if (n > 0 && strcmp(buf, "max") == 0) {
			if (found < 0)
				found = 0;
		} else if (n >= 0) {
			unsigned long long v;
			if (sv_parse_uint(buf, 0, ULLONG_MAX, &v) < 0)
				return -EINVAL;
			if (found != 1 || v < *limit) {
				*limit = v;
				sv_fmt(where, wsize, "%s", dir);
			}
			found = 1;
		}
		if (len <= blen)
			break;
		char *slash = strrchr(dir, '/');
		if (!slash || (size_t)(slash - dir) < blen)
			dir[blen] = '\0';
		else
			*slash = '\0';
		len = strlen(dir);
	}
	return found;
}

/* ---- the table, collection and output ---------------------------------------------------- */

static const struct st_probe {
	const char *name;
	void (*fn)(const struct st_ctx *c, int arg, struct sv_selftest_layer *l);
	int arg;
	int timeout_ms;
	enum sv_selftest_impact impact; /* when the probe itself fails or hangs */
	const char *act;		/* idem */
} st_probes[] = {
    {"pid1", probe_pid1, 0, SV_SELFTEST_TIMEOUT_MS, ST_WEAK, "start; orphans may escape reaping"},
    {"proc", probe_proc, 0, SV_SELFTEST_TIMEOUT_MS, ST_FATAL, "refuse to start"},
    {"capabilities", probe_caps, 0, SV_SELFTEST_TIMEOUT_MS, ST_FATAL, "refuse to start"},
    {"privilege_drop", probe_privdrop, 0, ST_SLOW_MS, ST_FATAL, "refuse to start"},
    {"no_new_privs", probe_nnp, 0, SV_SELFTEST_TIMEOUT_MS, ST_FATAL, "refuse to start"},
    {"seccomp", probe_seccomp, 0, ST_SECCOMP_MS, ST_FATAL, "refuse to start"},
    {"landlock", probe_landlock, 0, ST_SLOW_MS, ST_WEAK, "run without Landlock, HIGH finding"},
    {"userns", probe_ns, 0, SV_SELFTEST_TIMEOUT_MS, 0, "nothing changes"},
    {"pidns", probe_ns, 1, SV_SELFTEST_TIMEOUT_MS, 0, "nothing changes"},
    {"mountns", probe_ns, 2, SV_SELFTEST_TIMEOUT_MS, 0, "nothing changes"},
    {"netns", probe_ns, 3, SV_SELFTEST_TIMEOUT_MS, ST_FATAL, "refuse to start"},
    {"netlink", probe_netlink, 0, SV_SELFTEST_TIMEOUT_MS, ST_FATAL, "refuse to start"},
    {"cgroup_pids", probe_pids, 0, SV_SELFTEST_TIMEOUT_MS, ST_WEAK, "warn and start"},
    {"kmsg", probe_kmsg, 0, SV_SELFTEST_TIMEOUT_MS, ST_WEAK, "start without the bypass monitor"},
    {"gpu", probe_gpu, 0, SV_SELFTEST_TIMEOUT_MS, 0, "no GPU baseline"},
};

_Static_assert(SV_ARRAY_SIZE(st_probes) <= SV_SELFTEST_LAYERS_MAX, "too many layers");

struct st_job {
	const struct st_probe *p;
	const struct st_ctx *c;
};

static void st_trampoline(void *ctx, void *out)
{
	const struct st_job *j = ctx;
	j->p->fn(j->c, j->p->arg, out);
}

/* Keep a child's report printable and in range, whatever came through the pipe. */
static void st_clean(char *s, size_t size)
{
	s[size - 1] = '\0';
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			*s = '?';
}

void sv_selftest_collect(struct sv_selftest_report *r)
{
	memset(r, 0, sizeof(*r));
	struct st_ctx c;
	st_ctx_init(&c);
	for (size_t i = 0; i < SV_ARRAY_SIZE(st_probes); i++) {
		const struct st_probe *p = &st_probes[i];
		struct sv_selftest_layer *l = &r->layers[r->n++];
		struct st_job job = {p, &c};
		struct sv_err err = {0};
		if (sv_selftest_fork_probe(st_trampoline, &job, l, sizeof(*l), p->timeout_ms,
					   &err) < 0) {
			memset(l, 0, sizeof(*l));
			st_set(l, SV_SELFTEST_UNAVAILABLE, p->impact, "%s: probe failed: %s",
			       sv_selftest_errno_name(err.code) ? sv_selftest_errno_name(err.code)
								: "EPROTO",
			       err.msg);
			st_act(l, p->act, NULL);
		}
		sv_fmt(l->layer, sizeof(l->layer), "%s", p->name);
		st_clean(l->reason, sizeof(l->reason));
		st_clean(l->best_effort, sizeof(l->best_effort));
		st_clean(l->hard_requirement, sizeof(l->hard_requirement));
		if ((unsigned)l->status > SV_SELFTEST_UNAVAILABLE)
			l->status = SV_SELFTEST_UNAVAILABLE;
		if ((unsigned)l->impact > SV_SELFTEST_FATAL)
			l->impact = SV_SELFTEST_FATAL;
	}
	r->exit = sv_selftest_exit_status(r);
}

int sv_selftest_exit_status(const struct sv_selftest_report *r)
{
	int worst = 0;
	for (size_t i = 0; i < r->n; i++)
		if ((int)r->layers[i].impact > worst)
			worst = (int)r->layers[i].impact;
	return worst;
}

struct st_out {
	char *buf;
	size_t size, len;
};

static void st_putn(struct st_out *o, const char *s, size_t n)
{
	if (o->len + 1 < o->size) {
		size_t room = o->size - 1 - o->len, k = n < room ? n : room;
		memcpy(o->buf + o->len, s, k);
		o->buf[o->len + k] = '\0';
	}
	o->len += n;
}

static void st_puts(struct st_out *o, const char *s)
{
	st_putn(o, s, strlen(s));
}

static void st_pad(struct st_out *o, const char *s, size_t width)
{
	st_puts(o, s);
	for (size_t n = strlen(s); n < width; n++)
		st_putn(o, " ", 1);
}

static struct st_out st_out_init(char *buf, size_t size)
{
	if (size)
		buf[0] = '\0';
	return (struct st_out){buf, size, 0};
}

size_t sv_selftest_format_text(const struct sv_selftest_report *r, char *buf, size_t size)
{
	struct st_out o = st_out_init(buf, size);
	size_t wl = 0, ws = 0, wr = 0;
	for (size_t i = 0; i < r->n; i++) {
		const struct sv_selftest_layer *l = &r->layers[i];
		size_t a = strlen(l->layer), b = strlen(sv_selftest_status_name(l->status)),
		       c = strlen(l->reason);
		wl = a > wl ? a : wl;
		ws = b > ws ? b : ws;
		wr = c > wr ? c : wr;
	}
	for (size_t i = 0; i < r->n; i++) {
		const struct sv_selftest_layer *l = &r->layers[i];
		st_pad(&o, l->layer, wl + 2);
		st_pad(&o, sv_selftest_status_name(l->status), ws + 2);
		st_pad(&o, l->reason, wr);
		st_puts(&o, "  best_effort: ");
		st_puts(&o, l->best_effort);
		st_puts(&o, "  hard_requirement: ");
		st_puts(&o, l->hard_requirement);
		st_puts(&o, "\n");
	}
	static const char *const verdict[] = {
	    "full isolation is possible here",
	    "a sandbox starts here, weaker in: ", "a sandbox cannot start here because of: "};
	int ex = sv_selftest_exit_status(r);
	char head[32];
	sv_fmt(head, sizeof(head), "# exit %d: ", ex);
	st_puts(&o, head);
	st_puts(&o, verdict[ex]);
	bool first = true;
	for (size_t i = 0; ex && i < r->n; i++)
		if ((int)r->layers[i].impact == ex) {
			st_puts(&o, first ? "" : ", ");
			st_puts(&o, r->layers[i].layer);
			first = false;
		}
	st_puts(&o, "\n");
	return o.len;
}

static void st_json_str(struct st_out *o, const char *key, const char *s, bool comma)
{
	static const char hex[] = "0123456789abcdef";
	st_puts(o, comma ? ",\"" : "\"");
	st_puts(o, key);
	st_puts(o, "\":\"");
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\') {
			char esc[2] = {'\\', (char)ch};
			st_putn(o, esc, 2);
		} else if (ch < 0x20 || ch == 0x7f) {
			char esc[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
			st_putn(o, esc, 6);
		} else if (ch >= 0x80) {
			st_puts(o, "\\ufffd");
		} else {
			st_putn(o, s, 1);
		}
	}
	st_puts(o, "\"");
}

size_t sv_selftest_format_json(const struct sv_selftest_report *r, char *buf, size_t size)
{
	struct st_out o = st_out_init(buf, size);
	st_puts(&o, "{\"layers\":[");
	for (size_t i = 0; i < r->n; i++) {
		const struct sv_selftest_layer *l = &r->layers[i];
		st_puts(&o, i ? ",{" : "{");
		st_json_str(&o, "layer", l->layer, false);
		st_json_str(&o, "status", sv_selftest_status_name(l->status), true);
		st_json_str(&o, "reason", l->reason, true);
		st_json_str(&o, "best_effort", l->best_effort, true);
		st_json_str(&o, "hard_requirement", l->hard_requirement, true);
		st_puts(&o, "}");
	}
	char tail[32];
	sv_fmt(tail, sizeof(tail), "],\"exit\":%d}\n", sv_selftest_exit_status(r));
	st_puts(&o, tail);
	return o.len;
}

int sv_selftest_run(bool json)
{
	static struct sv_selftest_report r;
	static char out[65536]; /* > 16 layers of fully escaped text: never cut */
	sv_selftest_collect(&r);
	size_t n = json ? sv_selftest_format_json(&r, out, sizeof(out))
			: sv_selftest_format_text(&r, out, sizeof(out));
	if (n >= sizeof(out))
		n = sizeof(out) - 1;
	(void)sv_write_all(STDOUT_FILENO, out, n);
	return r.exit;
}
