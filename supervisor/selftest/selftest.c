/* `--self-test`: one probe per isolation layer, each exercising the layer rather than reading
 * version numbers. The parent only reads (getpid, capget, PR_CAPBSET_READ, PR_GET_*, getenv);
 * whatever changes process state runs in a probe child killed after its timeout. The parent
 * must never leave this file filtered, restricted, dropped or in another namespace.
 *
 * This file holds the runner, the layer table and the text/JSON output; the probes are in
 * selftest_proc.c (the process itself) and selftest_env.c (namespaces, netlink, cgroup, kmsg,
 * gpu), and what they share is declared in selftest_int.h.
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
#include "selftest_int.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ST_SECCOMP_MS	 8000 /* sv_seccomp_selftest waits up to 5 s for its probe thread */
#define ST_SLOW_MS	 4000 /* probes that fork children of their own */
#define ST_REAP_GRACE_MS 1000 /* after SIGKILL, how long to wait for the child to be reaped */
#define ST_POLL_SLICE_MS 50   /* how often a silent child is checked for having died */

/* ---- small helpers --------------------------------------------------------------------- */

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

void sv_selftest_set(struct sv_selftest_layer *l, enum sv_selftest_status s,
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
void sv_selftest_act(struct sv_selftest_layer *l, const char *be, const char *hard)
{
	sv_fmt(l->best_effort, sizeof(l->best_effort), "%s", be);
	sv_fmt(l->hard_requirement, sizeof(l->hard_requirement), "%s", hard ? hard : be);
}

/* Append to a fixed buffer, keeping it NUL-terminated. */
void sv_selftest_cat(char *buf, size_t size, const char *s)
{
	size_t len = strnlen(buf, size);
	if (len + 1 < size)
		sv_fmt(buf + len, size - len, "%s", s);
}

/* Read up to @size - 1 bytes of @path, NUL-terminated. Returns the length or -errno. */
ssize_t sv_selftest_read_file(const char *path, char *buf, size_t size)
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
long sv_selftest_status_long(const char *key)
{
	char buf[4096];
	if (sv_selftest_read_file("/proc/self/status", buf, sizeof(buf)) < 0)
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
const char *sv_selftest_sysctl(const char *path, char *buf, size_t size)
{
	ssize_t n = sv_selftest_read_file(path, buf, size);
	if (n < 0)
		n = 0;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	buf[n] = '\0';
	return buf;
}

uint64_t sv_selftest_bit(int cap)
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

static void st_ctx_init(struct sv_selftest_ctx *c)
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
			c->bnd |= sv_selftest_bit(cap);
	}
	c->nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1;
	c->require_pid_limit = getenv("OPENSHELL_REQUIRE_RUNTIME_PID_LIMIT") != NULL;
}

/* ---- the table, collection and output ---------------------------------------------------- */

static const struct st_probe {
	const char *name;
	void (*fn)(const struct sv_selftest_ctx *c, int arg, struct sv_selftest_layer *l);
	int arg;
	int timeout_ms;
	enum sv_selftest_impact impact; /* when the probe itself fails or hangs */
	const char *act;		/* idem */
} st_probes[] = {
    {"pid1", sv_selftest_probe_pid1, 0, SV_SELFTEST_TIMEOUT_MS, ST_WEAK,
     "start; orphans may escape reaping"},
    {"proc", sv_selftest_probe_proc, 0, SV_SELFTEST_TIMEOUT_MS, ST_FATAL, "refuse to start"},
    {"capabilities", sv_selftest_probe_caps, 0, SV_SELFTEST_TIMEOUT_MS, ST_FATAL,
     "refuse to start"},
    {"privilege_drop", sv_selftest_probe_privdrop, 0, ST_SLOW_MS, ST_FATAL, "refuse to start"},
    {"no_new_privs", sv_selftest_probe_nnp, 0, SV_SELFTEST_TIMEOUT_MS, ST_FATAL, "refuse to start"},
    {"seccomp", sv_selftest_probe_seccomp, 0, ST_SECCOMP_MS, ST_FATAL, "refuse to start"},
    {"landlock", sv_selftest_probe_landlock, 0, ST_SLOW_MS, ST_WEAK,
     "run without Landlock, HIGH finding"},
    {"userns", sv_selftest_probe_ns, 0, SV_SELFTEST_TIMEOUT_MS, 0, "nothing changes"},
    {"pidns", sv_selftest_probe_ns, 1, SV_SELFTEST_TIMEOUT_MS, 0, "nothing changes"},
    {"mountns", sv_selftest_probe_ns, 2, SV_SELFTEST_TIMEOUT_MS, 0, "nothing changes"},
    {"mount_fence", sv_selftest_probe_fence, 0, ST_SLOW_MS, ST_WEAK,
     "run without the fence, HIGH finding"},
    {"netns", sv_selftest_probe_ns, 3, SV_SELFTEST_TIMEOUT_MS, ST_FATAL, "refuse to start"},
    {"netlink", sv_selftest_probe_netlink, 0, SV_SELFTEST_TIMEOUT_MS, ST_FATAL, "refuse to start"},
    {"cgroup_pids", sv_selftest_probe_pids, 0, SV_SELFTEST_TIMEOUT_MS, ST_WEAK, "warn and start"},
    {"kmsg", sv_selftest_probe_kmsg, 0, SV_SELFTEST_TIMEOUT_MS, ST_WEAK,
     "start without the bypass monitor"},
    {"gpu", sv_selftest_probe_gpu, 0, SV_SELFTEST_TIMEOUT_MS, 0, "no GPU baseline"},
};

_Static_assert(SV_ARRAY_SIZE(st_probes) <= SV_SELFTEST_LAYERS_MAX, "too many layers");

struct st_job {
	const struct st_probe *p;
	const struct sv_selftest_ctx *c;
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
	struct sv_selftest_ctx c;
	st_ctx_init(&c);
	for (size_t i = 0; i < SV_ARRAY_SIZE(st_probes); i++) {
		const struct st_probe *p = &st_probes[i];
		struct sv_selftest_layer *l = &r->layers[r->n++];
		struct st_job job = {p, &c};
		struct sv_err err = {0};
		if (sv_selftest_fork_probe(st_trampoline, &job, l, sizeof(*l), p->timeout_ms,
					   &err) < 0) {
			memset(l, 0, sizeof(*l));
			sv_selftest_set(
			    l, SV_SELFTEST_UNAVAILABLE, p->impact, "%s: probe failed: %s",
			    sv_errno_name(err.code) ? sv_errno_name(err.code)
							     : "EPROTO",
			    err.msg);
			sv_selftest_act(l, p->act, NULL);
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
