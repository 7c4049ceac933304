/* Self-test probes of the environment: namespaces, netlink, the cgroup pids limit, kmsg and GPU
 * nodes (classification and table in selftest.c), and the cgroup helpers the unit tests drive.
 * Probes run only in a probe child forked by sv_selftest_fork_probe: the supervisor must never be
 * moved into a namespace they create, and they only read cgroup, sysctl and device files.
 */
#include "selftest_int.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#define ST_NETLINK_MS 1000 /* wait for the first RTM_GETLINK reply */

/* ---- probes (each runs in a child) ------------------------------------------------------ */

/* Is this process chrooted? 1 yes (no mount at "/" is visible), 0 no, -1 unknown. */
static int st_chrooted(void)
{
	static char buf[65536]; /* the probe child's own copy */
	if (sv_selftest_read_file("/proc/self/mountinfo", buf, sizeof(buf)) < 0)
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
     "build the agent's mount fence: only policy paths, read-only ones read-only (see "
     "mount_fence)",
     "no mount fence: the agent sees the container's mounts, Landlock alone confines them "
     "(best_effort: HIGH finding; hard_requirement: refuse to start)"},
    {CLONE_NEWNET, "CLONE_NEWNET", "max_net_namespaces", "CONFIG_NET_NS", ST_FATAL,
     "give the agent its own network namespace, reachable only through the proxy",
     "refuse to start: proxy network mode needs a network namespace (no host-network "
     "fallback)"},
};

static void st_ns_hint(const struct sv_selftest_ctx *c, const struct st_ns *ns, int e, char *buf,
		       size_t size)
{
	char one[160], v[32];
	buf[0] = '\0';
	long filters = sv_selftest_status_long("Seccomp_filters");
	switch (e) {
	case EPERM:
	case EACCES:
		if (ns->flag != CLONE_NEWUSER && !(c->eff & sv_selftest_bit(CAP_SYS_ADMIN)))
			sv_selftest_cat(buf, size, "; needs CAP_SYS_ADMIN, which is not effective");
		if (ns->flag == CLONE_NEWUSER && st_chrooted() == 1)
			sv_selftest_cat(buf, size,
					"; the process is chrooted (the kernel refuses user "
					"namespaces to a chrooted process)");
		if (ns->flag == CLONE_NEWUSER && c->euid != 0 &&
		    strcmp(
			sv_selftest_sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
					   v, sizeof(v)),
			"1") == 0)
			sv_selftest_cat(buf, size,
					"; kernel.apparmor_restrict_unprivileged_userns=1");
		if (filters > 0) {
			sv_fmt(one, sizeof(one),
			       "; %ld seccomp filter(s) on this process may deny it", filters);
			sv_selftest_cat(buf, size, one);
		}
		break;
	case ENOSPC: {
		char path[96];
		sv_fmt(path, sizeof(path), "/proc/sys/user/%s", ns->sysctl);
		const char *max = sv_selftest_sysctl(path, v, sizeof(v));
		sv_fmt(one, sizeof(one),
		       strcmp(max, "0") == 0 ? "; user.%s is 0" : "; the user.%s limit is reached",
		       ns->sysctl);
		sv_selftest_cat(buf, size, one);
		break;
	}
	case EINVAL:
		sv_fmt(one, sizeof(one), "; the kernel lacks %s", ns->config);
		sv_selftest_cat(buf, size, one);
		break;
	case ENOSYS:
		sv_selftest_cat(buf, size, "; unshare is not implemented here");
		break;
	case EUSERS:
		sv_selftest_cat(buf, size, "; 32 nested user namespaces already");
		break;
	default:
		break;
	}
}

void sv_selftest_probe_ns(const struct sv_selftest_ctx *c, int arg, struct sv_selftest_layer *l)
{
	const struct st_ns *ns = &st_nss[arg];
	char e[24], hint[SV_SELFTEST_REASON_MAX - 64];
	if (unshare(ns->flag) < 0) {
		int err = errno;
		st_ns_hint(c, ns, err, hint, sizeof(hint));
		sv_selftest_set(l, SV_SELFTEST_UNAVAILABLE, ns->impact, "%s from unshare(%s)%s",
				sv_errno_ename(err, e, sizeof(e)), ns->flag_name, hint);
		sv_selftest_act(l, ns->missing_act, NULL);
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
			sv_selftest_set(l, SV_SELFTEST_UNAVAILABLE, ns->impact,
					"unshare(CLONE_NEWPID) worked, but its first child %s",
					pid < 0 ? "could not be forked" : "was not PID 1 there");
			sv_selftest_act(l, ns->missing_act, NULL);
			return;
		}
	}
	sv_selftest_set(l, SV_SELFTEST_OK, 0, "unshare(%s) works in a child%s", ns->flag_name,
			ns->flag == CLONE_NEWPID ? "; its first child is PID 1 there" : "");
	sv_selftest_act(l, ns->ok_act, NULL);
}

void sv_selftest_probe_netlink(const struct sv_selftest_ctx *c, int arg,
			       struct sv_selftest_layer *l)
{
	(void)c;
	(void)arg;
	char e[24];
	const char *step = "socket(AF_NETLINK, NETLINK_ROUTE)";
	sv_selftest_act(
	    l, "refuse to start: the agent's network namespace is configured over rtnetlink", NULL);
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
	sv_selftest_set(l, SV_SELFTEST_OK, 0,
			"RTM_GETLINK dump answered (%d link(s) in the first reply)", links);
	sv_selftest_act(l, "configure the agent's network namespace (lo and the proxy address)",
			NULL);
	return;
fail:
	sv_selftest_set(l, SV_SELFTEST_UNAVAILABLE, ST_FATAL, "%s: %s", step,
			sv_errno_ename(errno, e, sizeof(e)));
}

void sv_selftest_probe_pids(const struct sv_selftest_ctx *c, int arg, struct sv_selftest_layer *l)
{
	(void)arg;
	static const char root[] = "/sys/fs/cgroup";
	enum sv_selftest_impact impact = c->require_pid_limit ? ST_FATAL : ST_WEAK;
	char e[24], text[4096], rel[PATH_MAX], where[PATH_MAX];
	struct statfs sf;
	bool v2 = statfs(root, &sf) == 0 && (unsigned long)sf.f_type == CGROUP2_SUPER_MAGIC;
	const char *base = v2 ? root : "/sys/fs/cgroup/pids";
	if (c->require_pid_limit)
		sv_selftest_act(l, "refuse to start (OPENSHELL_REQUIRE_RUNTIME_PID_LIMIT is set)",
				NULL);
	else
		sv_selftest_act(l,
				"warn and start: nothing bounds the agent's process count (set "
				"OPENSHELL_REQUIRE_RUNTIME_PID_LIMIT to refuse instead)",
				NULL);
	int se = 0;
	if (!v2)
		se = statfs(base, &sf) < 0			      ? errno
		     : (unsigned long)sf.f_type != CGROUP_SUPER_MAGIC ? ENOENT
								      : 0;
	if (se) {
		sv_selftest_set(l, SV_SELFTEST_UNAVAILABLE, impact,
				"%s: no cgroup v2 at %s and no v1 pids hierarchy at %s",
				sv_errno_ename(se, e, sizeof(e)), root, base);
		return;
	}
	ssize_t n = sv_selftest_read_file("/proc/self/cgroup", text, sizeof(text));
	int rc = n < 0 ? (int)n : sv_selftest_cgroup_path(text, v2, rel, sizeof(rel));
	if (rc < 0) {
		sv_selftest_set(l, SV_SELFTEST_UNAVAILABLE, impact,
				"%s: no %s line in /proc/self/cgroup",
				sv_errno_ename(-rc, e, sizeof(e)),
				v2 ? "cgroup v2 (0::)" : "pids controller");
		return;
	}
	const char *leaf = strcmp(rel, "/") == 0 ? "" : rel;
	unsigned long long limit = 0;
	rc = sv_selftest_pids_limit(base, rel, &limit, where, sizeof(where));
	if (rc == 1) {
		sv_selftest_set(l, SV_SELFTEST_OK, 0, "pids.max %llu at %s (cgroup %s)", limit,
				where, v2 ? "v2" : "v1");
		sv_selftest_act(
		    l, "rely on the runtime's pids limit (the agent gets no RLIMIT_NPROC)", NULL);
	} else if (rc == 0) {
		sv_selftest_set(l, SV_SELFTEST_DEGRADED, impact,
				"pids.max is \"max\" (no limit) from %s%s up to %s", base, leaf,
				base);
	} else {
		sv_selftest_set(l, SV_SELFTEST_UNAVAILABLE, impact,
				"%s: no pids.max from %s%s up to %s%s",
				sv_errno_ename(-rc, e, sizeof(e)), base, leaf, base,
				leaf[0] ? "" : " (the root cgroup has none)");
	}
}

void sv_selftest_probe_kmsg(const struct sv_selftest_ctx *c, int arg, struct sv_selftest_layer *l)
{
	(void)arg;
	char e[24], buf[2048];
	sv_selftest_act(
	    l,
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
		else if ((err == EPERM || err == EACCES) &&
			 !(c->eff & sv_selftest_bit(CAP_SYSLOG)) &&
			 strcmp(sv_selftest_sysctl("/proc/sys/kernel/dmesg_restrict", v, sizeof(v)),
				"1") == 0)
			why = " (kernel.dmesg_restrict=1 and CAP_SYSLOG not effective)";
		sv_selftest_set(l, SV_SELFTEST_UNAVAILABLE, ST_WEAK, "%s: open /dev/kmsg%s",
				sv_errno_ename(err, e, sizeof(e)), why);
		return;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode)) {
		sv_selftest_set(l, SV_SELFTEST_UNAVAILABLE, ST_WEAK,
				"/dev/kmsg is not a character device");
		return;
	}
	ssize_t n;
	do
		n = read(fd, buf, sizeof(buf));
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno != EAGAIN && errno != EPIPE) {
		sv_selftest_set(l, SV_SELFTEST_UNAVAILABLE, ST_WEAK, "%s: read /dev/kmsg",
				sv_errno_ename(errno, e, sizeof(e)));
		return;
	}
	sv_selftest_set(l, SV_SELFTEST_OK, 0, "/dev/kmsg opened and read (%s)",
			n > 0 ? "one record" : "no record pending");
	sv_selftest_act(l, "follow it for the network bypass monitor", NULL);
}

static bool st_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

void sv_selftest_probe_gpu(const struct sv_selftest_ctx *c, int arg, struct sv_selftest_layer *l)
{
	(void)c;
	(void)arg;
	char found[256] = "";
	bool ctl = st_exists("/dev/nvidiactl"), dxg = st_exists("/dev/dxg");
	int nodes = 0;
	if (ctl)
		sv_selftest_cat(found, sizeof(found), "/dev/nvidiactl ");
	if (dxg)
		sv_selftest_cat(found, sizeof(found), "/dev/dxg ");
	DIR *d = opendir("/dev");
	for (struct dirent *de; d && (de = readdir(d));) {
		const char *s = de->d_name;
		if (strncmp(s, "nvidia", 6) != 0 || !s[6] ||
		    strspn(s + 6, "0123456789") != strlen(s + 6))
			continue;
		if (nodes++ < 8) {
			sv_selftest_cat(found, sizeof(found), "/dev/");
			sv_selftest_cat(found, sizeof(found), s);
			sv_selftest_cat(found, sizeof(found), " ");
		}
	}
	if (d)
		closedir(d);
	size_t len = strlen(found);
	if (len)
		found[len - 1] = '\0';
	if (ctl || dxg) {
		sv_selftest_set(l, SV_SELFTEST_OK, 0,
				"present: %s; GPU baseline paths will be added to the policy",
				found);
		sv_selftest_act(l, "add the GPU baseline: device nodes and /proc read-write", NULL);
	} else if (nodes) {
		sv_selftest_set(l, SV_SELFTEST_OK, 0,
				"%s without /dev/nvidiactl or /dev/dxg: no GPU baseline", found);
		sv_selftest_act(l, "no GPU baseline: CUDA in the agent needs /dev/nvidiactl", NULL);
	} else {
		sv_selftest_set(
		    l, SV_SELFTEST_OK, 0,
		    "no GPU device nodes (/dev/nvidiactl, /dev/nvidia[0-9]*, /dev/dxg)");
		sv_selftest_act(l, "nothing: no GPU baseline", NULL);
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
		ssize_t n = sv_selftest_read_file(path, buf, sizeof(buf));
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
