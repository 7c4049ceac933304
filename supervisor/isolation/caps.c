/* The capabilities PID 1 keeps after setup, and the drop of every other one (libcap).
 *
 * Runs once, at the end of setup, on the only thread. Must never keep a capability on the
 * forbidden list, and must fail loudly rather than carry on with more than the table says.
 */
#include "supervisor/isolation/caps.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include <linux/capability.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>

/* What the run phase still does with privilege. Each entry names the operation; a test in
 * tests/integration/cases_caps.py breaks when the capability is dropped. */
static const struct sv_caps_kept kept[] = {
    {CAP_KILL, "signal the agent's processes (another uid): forwarding, TERM/KILL sweeps, "
	       "SSH signal requests"},
    {CAP_SETUID, "children take the agent's uid (main process, SSH and SFTP sessions)"},
    {CAP_SETGID, "children take the agent's gid and groups"},
    {CAP_SETPCAP, "children lock their securebits and empty their bounding set"},
    {CAP_SYS_CHROOT, "children enter the mount fence: setns into the agent's mount namespace "
		     "and chroot to its root"},
    {CAP_SYS_ADMIN, "children join the agent's network and mount namespaces (setns); sockets "
		    "for gateway relays, SSH direct-tcpip and sock_diag are made inside it"},
    {CAP_NET_ADMIN, "SIOCGSKNS on the proxy's listener when the loop starts, to open sock_diag "
		    "in the agent's network namespace"},
    {CAP_SYS_PTRACE, "the proxy's identity: /proc/<pid>/fd and exe of the agent's processes; "
		     "the connect monitor's process_vm_readv and pidfd_getfd"},
    {CAP_DAC_READ_SEARCH, "the proxy's identity of processes running binaries that are not "
			  "world-readable: their /proc/<pid>/fd and the binary's hash"},
};

/* Issue 16: no code path may keep these after setup. */
static const int forbidden[] = {
    CAP_SYS_MODULE,	CAP_SYS_RAWIO,	  CAP_SYS_BOOT,	     CAP_SYS_TIME,	 CAP_MKNOD,
    CAP_NET_RAW,	CAP_LINUX_IMMUTABLE, CAP_MAC_ADMIN,  CAP_MAC_OVERRIDE,	 CAP_SYSLOG,
    CAP_WAKE_ALARM,	CAP_BLOCK_SUSPEND, CAP_AUDIT_CONTROL, CAP_BPF,		 CAP_PERFMON,
    CAP_CHECKPOINT_RESTORE, CAP_SYS_PACCT, CAP_SYS_TTY_CONFIG, CAP_LEASE,	 CAP_NET_BROADCAST,
    CAP_SETFCAP,
};

const struct sv_caps_kept *sv_caps_kept_table(size_t *n)
{
	*n = SV_ARRAY_SIZE(kept);
	return kept;
}

bool sv_caps_is_forbidden(int cap)
{
	for (size_t i = 0; i < SV_ARRAY_SIZE(forbidden); i++)
		if (forbidden[i] == cap)
			return true;
	return false;
}

uint64_t sv_caps_kept_mask(void)
{
	uint64_t m = 0;
	for (size_t i = 0; i < SV_ARRAY_SIZE(kept); i++)
		m |= 1ULL << kept[i].cap;
	return m;
}

const char *sv_caps_name(int cap, char *buf, size_t size)
{
	char *name = cap_to_name((cap_value_t)cap);
	sv_fmt(buf, size, "%s", name ? name : "?");
	if (name)
		cap_free(name);
	return buf;
}

/* @list ("cap_a,cap_b") as a mask; -EINVAL naming the first unknown name. */
static int parse_extra(const char *list, uint64_t *out, struct sv_err *err)
{
	*out = 0;
	while (list && *list) {
		const char *end = strchr(list, ',');
		size_t len = end ? (size_t)(end - list) : strlen(list);
		char name[64];
		if (len == 0 || len >= sizeof(name))
			return sv_err_set(err, EINVAL, "%s: bad capability name", SV_CAPS_TEST_DROP_ENV);
		memcpy(name, list, len);
		name[len] = '\0';
		cap_value_t v;
		if (cap_from_name(name, &v) < 0 || v < 0 || v > 63)
			return sv_err_set(err, EINVAL, "%s: unknown capability '%s'",
					  SV_CAPS_TEST_DROP_ENV, name);
		*out |= 1ULL << v;
		list = end ? end + 1 : list + len;
	}
	return 0;
}

/* Threads of this process, from /proc/self/status; 0 when it cannot be read. */
static unsigned thread_count(void)
{
	char buf[4096];
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	const char *t = strstr(buf, "\nThreads:");
	return t ? (unsigned)strtoul(t + 9, NULL, 10) : 0;
}

int sv_caps_drop_after_setup(const char *extra_drop, struct sv_err *err)
{
	uint64_t extra;
	int r = parse_extra(extra_drop, &extra, err);
	if (r < 0)
		return r;
	/* Capabilities are per thread: a thread started during setup would keep them all. */
	unsigned threads = thread_count();
	if (threads > 1)
		return sv_err_set(err, EBUSY, "%u threads run: the drop must happen on the only one",
				  threads);
	cap_value_t last = cap_max_bits();
	/* Only what we hold can be kept; where the container granted CAP_DAC_OVERRIDE but not
	 * CAP_DAC_READ_SEARCH (Docker's default set), the broader one stands in for reads. */
	uint64_t held = 0;
	cap_t cur = cap_get_proc();
	for (cap_value_t c = 0; cur && c < last && c < 64; c++) {
		cap_flag_value_t v = CAP_CLEAR;
		if (cap_get_flag(cur, c, CAP_PERMITTED, &v) == 0 && v == CAP_SET)
			held |= 1ULL << c;
	}
	if (cur)
		cap_free(cur);
	uint64_t keep = sv_caps_kept_mask();
	if (!(held & (1ULL << CAP_DAC_READ_SEARCH)) && (held & (1ULL << CAP_DAC_OVERRIDE)))
		keep |= 1ULL << CAP_DAC_OVERRIDE;
	keep &= held & ~extra;
	/* The bounding set first: dropping from it needs CAP_SETPCAP, which we still have. */
	for (cap_value_t c = 0; c < last && c < 64; c++) {
		if (keep & (1ULL << c))
			continue;
		if (cap_drop_bound(c) < 0 && prctl(PR_CAPBSET_READ, c, 0, 0, 0) != 0)
			return sv_err_set(err, errno, "cannot drop %d from the bounding set: %s", (int)c,
					  strerror(errno));
	}
	if (cap_reset_ambient() < 0 && errno != EINVAL)
		return sv_err_set(err, errno, "cannot clear the ambient set: %s", strerror(errno));
	cap_t caps = cap_init(); /* every flag clear */
	if (!caps)
		return sv_err_set(err, ENOMEM, "libcap: out of memory");
	cap_value_t v[64];
	int n = 0;
	for (cap_value_t c = 0; c < last && c < 64; c++)
		if (keep & (1ULL << c))
			v[n++] = c;
	if ((n && (cap_set_flag(caps, CAP_PERMITTED, n, v, CAP_SET) < 0 ||
		   cap_set_flag(caps, CAP_EFFECTIVE, n, v, CAP_SET) < 0)) ||
	    cap_set_proc(caps) < 0) {
		int e = errno;
		cap_free(caps);
		return sv_err_set(err, e, "cannot set the kept capabilities: %s", strerror(e));
	}
	cap_free(caps);
	return 0;
}
