/* Self-test probes of the process itself: pid1, proc, capabilities, privilege_drop,
 * no_new_privs, seccomp and landlock (classification and table in selftest.c). Each runs only in
 * a probe child forked by sv_selftest_fork_probe: never call one in the supervisor itself, which
 * must never be left dropped, filtered or restricted.
 */
#include "selftest_int.h"

#include <linux/capability.h>
#include <linux/magic.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "supervisor/isolation/caps.h"
#include "supervisor/isolation/identity.h"
#include "landlock/landlock.h"
#include "supervisor/isolation/seccomp.h"

#define ST_NOBODY	  65534 /* the identity the privilege-drop probe drops to */
#define ST_LANDLOCK_SCOPE 6	/* ABI adding the scopes the default spec asks for */

/* ---- probes (each runs in a child) ------------------------------------------------------ */

void sv_selftest_probe_pid1(const struct sv_selftest_ctx *c, int arg, struct sv_selftest_layer *l)
{
	(void)arg;
	char e[24];
	if (c->pid == 1) {
		sv_selftest_set(l, SV_SELFTEST_OK, 0,
				"PID 1: every orphan in the container is reparented to it");
		sv_selftest_act(l, "reap every orphan; at exit the kernel kills what is left",
				NULL);
		return;
	}
	int on = 0, why = 0;
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0 ||
	    prctl(PR_GET_CHILD_SUBREAPER, &on, 0, 0, 0) < 0)
		why = errno;
	else if (on != 1)
		why = EPROTO; /* accepted but does not read back */
	if (why) {
		sv_selftest_set(l, SV_SELFTEST_UNAVAILABLE, ST_WEAK,
				"not PID 1 (pid %d) and PR_SET_CHILD_SUBREAPER failed: %s",
				(int)c->pid, sv_errno_ename(why, e, sizeof(e)));
		sv_selftest_act(
		    l, "start anyway: orphans escape reaping (warning subreaper_unavailable)",
		    NULL);
		return;
	}
	sv_selftest_set(
	    l, SV_SELFTEST_DEGRADED, ST_WEAK,
	    "not PID 1 (pid %d): child subreaper works (PR_SET_CHILD_SUBREAPER verified)",
	    (int)c->pid);
	sv_selftest_act(l,
			"run as a child subreaper: orphans are reaped, but the agent shares the "
			"caller's PID namespace",
			NULL);
}

void sv_selftest_probe_proc(const struct sv_selftest_ctx *c, int arg, struct sv_selftest_layer *l)
{
	(void)c;
	(void)arg;
	char e[24], buf[256];
	struct statfs sf;
	sv_selftest_act(
	    l,
	    "refuse to start: /proc is needed for capability limits, fd hygiene and the "
	    "proxy's process identity",
	    NULL);
	if (statfs("/proc", &sf) < 0) {
		sv_selftest_set(l, SV_SELFTEST_UNAVAILABLE, ST_FATAL, "statfs /proc: %s",
				sv_errno_ename(errno, e, sizeof(e)));
		return;
	}
	if ((unsigned long)sf.f_type != PROC_SUPER_MAGIC) {
		sv_selftest_set(l, SV_SELFTEST_UNAVAILABLE, ST_FATAL,
				"/proc is not procfs (f_type 0x%lx)", (unsigned long)sf.f_type);
		return;
	}
	ssize_t n = sv_selftest_read_file("/proc/self/status", buf, sizeof(buf));
	if (n <= 0) {
		sv_selftest_set(l, SV_SELFTEST_UNAVAILABLE, ST_FATAL, "/proc/self/status: %s",
				n < 0 ? sv_errno_ename((int)-n, e, sizeof(e)) : "empty");
		return;
	}
	sv_selftest_set(l, SV_SELFTEST_OK, 0,
			"procfs at /proc (PROC_SUPER_MAGIC), /proc/self/status read");
	sv_selftest_act(
	    l, "use it for capability limits, fd hygiene and the proxy's process identity", NULL);
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
    {CAP_NET_ADMIN, -1, "CAP_NET_ADMIN", ST_FATAL, "the agent netns (lo up, proxy address)"},
    {CAP_KILL, -1, "CAP_KILL", ST_WEAK, "signals to the agent"},
    {CAP_SYS_PTRACE, -1, "CAP_SYS_PTRACE", ST_WEAK, "proxy reads agent /proc/<pid>/exe"},
    {CAP_DAC_READ_SEARCH, CAP_DAC_OVERRIDE, "CAP_DAC_READ_SEARCH (or CAP_DAC_OVERRIDE)", ST_WEAK,
     "paths and /proc of any mode"},
    {CAP_CHOWN, -1, "CAP_CHOWN", ST_WEAK, "workspace chown"},
    {CAP_SYSLOG, -1, "CAP_SYSLOG", ST_WEAK, "kmsg under dmesg_restrict"},
};

/* @set by libcap's names ("cap_kill,cap_setuid"); a set holding more than half of the kernel's
 * @last capabilities is written by what it lacks ("all 41 but cap_sys_module"). */
static void st_cap_set(uint64_t set, int last, char *buf, size_t size)
{
	uint64_t all = last >= 64 ? ~0ULL : (1ULL << last) - 1;
	set &= all;
	bool inverse = __builtin_popcountll(set) * 2 > last;
	uint64_t list = inverse ? all & ~set : set;
	char n[40];
	if (inverse) {
		sv_fmt(n, sizeof(n), list ? "all %d but " : "all %d", last);
		sv_selftest_cat(buf, size, n);
	} else if (!list) {
		sv_selftest_cat(buf, size, "none");
	}
	bool first = true;
	for (int cap = 0; cap < 64; cap++) {
		if (!(list & sv_selftest_bit(cap)))
			continue;
		sv_selftest_cat(buf, size, first ? "" : ",");
		sv_selftest_cat(buf, size, sv_caps_name(cap, n, sizeof(n)));
		first = false;
	}
}

/* "<effective> (bounding: same)" or "<effective> (bounding: <bounding>)". */
static void st_cap_names(uint64_t eff, uint64_t bnd, char *buf, size_t size)
{
	int last = 0;
	while (last < 64 && prctl(PR_CAPBSET_READ, last, 0, 0, 0) >= 0)
		last++;
	buf[0] = '\0';
	st_cap_set(eff, last, buf, size);
	if (bnd == eff) {
		sv_selftest_cat(buf, size, " (bounding: same)");
		return;
	}
	sv_selftest_cat(buf, size, " (bounding: ");
	st_cap_set(bnd, last, buf, size);
	sv_selftest_cat(buf, size, ")");
}

void sv_selftest_probe_caps(const struct sv_selftest_ctx *c, int arg, struct sv_selftest_layer *l)
{
	(void)arg;
	char e[24];
	if (c->caps_errno) {
		sv_selftest_set(l, SV_SELFTEST_UNAVAILABLE, ST_FATAL, "capget: %s",
				sv_errno_ename(c->caps_errno, e, sizeof(e)));
		sv_selftest_act(l, "refuse to start: capabilities cannot be checked", NULL);
		return;
	}
	enum sv_selftest_impact worst = 0;
	char missing[SV_SELFTEST_REASON_MAX] = "", fatal[SV_SELFTEST_ACTION_MAX] = "";
	for (size_t i = 0; i < SV_ARRAY_SIZE(st_caps); i++) {
		const struct st_cap *k = &st_caps[i];
		if ((c->eff & sv_selftest_bit(k->cap)) ||
		    (k->alt >= 0 && (c->eff & sv_selftest_bit(k->alt))))
			continue;
		char one[160];
		sv_fmt(one, sizeof(one), "%s%s (%s)", missing[0] ? ", " : "", k->name, k->use);
		sv_selftest_cat(missing, sizeof(missing), one);
		if (k->impact > worst)
			worst = k->impact;
		if (k->impact == ST_FATAL) {
			sv_selftest_cat(fatal, sizeof(fatal),
					fatal[0] ? ", " : "refuse to start: missing ");
			sv_selftest_cat(fatal, sizeof(fatal), k->name);
		}
	}
	char granted[256], kept[200] = "";
	st_cap_names(c->eff, c->bnd, granted, sizeof(granted));
	st_cap_set(sv_caps_kept_mask() & c->eff, 64, kept, sizeof(kept));
	if (!worst) {
		sv_selftest_set(l, SV_SELFTEST_OK, 0,
				"all %zu needed capabilities effective; kept after setup: %s; "
				"granted: %s",
				SV_ARRAY_SIZE(st_caps), kept, granted);
		sv_selftest_act(l, "keep them for setup, then only those kept; the agent gets none",
				NULL);
		return;
	}
	sv_selftest_set(l, worst == ST_FATAL ? SV_SELFTEST_UNAVAILABLE : SV_SELFTEST_DEGRADED,
			worst, "missing %s; granted %s", missing, granted);
	sv_selftest_act(l, fatal[0] ? fatal : "start; the features named in the reason are weaker",
			NULL);
}

/* "missing CAP_SETUID, CAP_SETGID" / "not root (euid 1000)", for a failed drop. */
static void st_drop_blame(const struct sv_selftest_ctx *c, char *buf, size_t size)
{
	static const struct st_cap *const need[] = {&st_caps[0], &st_caps[1], &st_caps[2]};
	buf[0] = '\0';
	for (size_t i = 0; i < SV_ARRAY_SIZE(need); i++)
		if (!c->caps_errno && !(c->eff & sv_selftest_bit(need[i]->cap))) {
			sv_selftest_cat(buf, size, buf[0] ? ", " : "missing ");
			sv_selftest_cat(buf, size, need[i]->name);
		}
	if (c->euid != 0) {
		char who[48];
		sv_fmt(who, sizeof(who), "%snot root (euid %u)", buf[0] ? "; " : "",
		       (unsigned)c->euid);
		sv_selftest_cat(buf, size, who);
	}
	if (buf[0])
		sv_selftest_cat(buf, size, ": ");
}

void sv_selftest_probe_privdrop(const struct sv_selftest_ctx *c, int arg,
				struct sv_selftest_layer *l)
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
	sv_selftest_act(l, "refuse to start: the agent must never keep the supervisor's privileges",
			NULL);
	if (sv_identity_plan_init(&plan, &id, &err) < 0 || sv_identity_drop(&plan, &err) < 0) {
		const char *name = sv_errno_ename(err.code, e, sizeof(e));
		sv_selftest_set(l, SV_SELFTEST_UNAVAILABLE, ST_FATAL, "%s%s%s%s", blame,
				strstr(err.msg, name) ? "" : name,
				strstr(err.msg, name) ? "" : ": ", err.msg);
		return;
	}
	int back = setuid(0) == 0 ? 0 : errno;
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct d[2];
	memset(d, 0xff, sizeof(d));
	(void)syscall(SYS_capget, &h, d);
	bool caps_left = d[0].effective | d[0].permitted | d[1].effective | d[1].permitted;
	if (back != EPERM || caps_left || getuid() != ST_NOBODY || getgid() != ST_NOBODY) {
		sv_selftest_set(
		    l, SV_SELFTEST_UNAVAILABLE, ST_FATAL,
		    "drop to %d:%d reported success but setuid(0) gave %s, capabilities left: "
		    "%s, uid %u",
		    ST_NOBODY, ST_NOBODY, back ? sv_errno_ename(back, e, sizeof(e)) : "success",
		    caps_left ? "yes" : "no", (unsigned)getuid());
		return;
	}
	sv_selftest_set(
	    l, SV_SELFTEST_OK, 0,
	    "dropped a child to %d:%d: setuid(0) fails with EPERM, no capabilities, empty "
	    "bounding set, no_new_privs, not dumpable",
	    ST_NOBODY, ST_NOBODY);
	sv_selftest_act(l, "drop the agent to its uid/gid with no capabilities before exec", NULL);
}

void sv_selftest_probe_nnp(const struct sv_selftest_ctx *c, int arg, struct sv_selftest_layer *l)
{
	(void)arg;
	char e[24];
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		sv_selftest_set(l, SV_SELFTEST_UNAVAILABLE, ST_FATAL, "PR_SET_NO_NEW_PRIVS: %s",
				sv_errno_ename(errno, e, sizeof(e)));
	} else if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) {
		sv_selftest_set(l, SV_SELFTEST_UNAVAILABLE, ST_FATAL,
				"PR_GET_NO_NEW_PRIVS does not read back 1 after setting it");
	} else {
		sv_selftest_set(l, SV_SELFTEST_OK, 0, "set and read back in a child%s",
				c->nnp ? " (already set on the supervisor by whoever started it)"
				       : "");
		sv_selftest_act(l, "set it on the supervisor (prelude) and on every child", NULL);
		return;
	}
	sv_selftest_act(l, "refuse to start: seccomp filters and Landlock need no_new_privs", NULL);
}

void sv_selftest_probe_seccomp(const struct sv_selftest_ctx *c, int arg,
			       struct sv_selftest_layer *l)
{
	(void)c;
	(void)arg;
	struct sv_seccomp_report r;
	char e[24], outer[96] = "";
	int rc = sv_seccomp_selftest(&r);
	long filters = sv_selftest_status_long("Seccomp_filters");
	if (filters > 0)
		sv_fmt(outer, sizeof(outer), "; stacked on %ld filter(s) already on this process",
		       filters);
	if (rc < 0) {
		sv_selftest_set(l, SV_SELFTEST_UNAVAILABLE, ST_FATAL, "%s: %s%s",
				sv_errno_ename(r.errnum ? r.errnum : -rc, e, sizeof(e)),
				r.detail, outer);
		sv_selftest_act(
		    l, "refuse to start: seccomp is never optional (agent filter, prelude)", NULL);
		return;
	}
	if (!r.notify) {
		sv_selftest_set(l, SV_SELFTEST_DEGRADED, ST_WEAK,
				"agent filter and prelude work, but connect(2) user notification "
				"does not (Linux 5.5+): %s; the proxy will deny every request%s",
				r.notify_detail, outer);
		sv_selftest_act(l, "start; the proxy denies every request (no connection creator)",
				NULL);
		return;
	}
	sv_selftest_set(
	    l, SV_SELFTEST_OK, 0,
	    "agent filter denies memfd_create/seccomp (EPERM) and clone3 (ENOSYS), allows the "
	    "rest; connect(2) user notification works (recv, CONTINUE); the prelude reaches a "
	    "second thread (TSYNC)%s",
	    outer);
	sv_selftest_act(
	    l, "install the prelude on the supervisor and the agent filter last before exec", NULL);
}

void sv_selftest_probe_landlock(const struct sv_selftest_ctx *c, int arg,
				struct sv_selftest_layer *l)
{
	(void)c;
	(void)arg;
	struct sv_err err = {0};
	char e[24];
	int abi = ll_abi_probe(&err);
	if (abi < 0) {
		sv_selftest_set(l, SV_SELFTEST_UNAVAILABLE, ST_WEAK, "%s: %s",
				sv_errno_ename(-abi, e, sizeof(e)), err.msg);
		sv_selftest_act(l, "run without Landlock, HIGH finding landlock_unavailable",
				"refuse to start");
		return;
	}
	int denials = ll_selftest_denied_open(&err);
	if (denials < 0) {
		sv_selftest_set(l, SV_SELFTEST_UNAVAILABLE, ST_WEAK, "ABI %d reported, but %s: %s",
				abi, sv_errno_ename(-denials, e, sizeof(e)), err.msg);
		sv_selftest_act(
		    l, "run without working Landlock (it does not enforce here), HIGH finding",
		    "refuse to start");
		return;
	}
	uint64_t have = LL_FS_V1 | (abi >= 2 ? LL_FS_REFER : 0) | (abi >= 3 ? LL_FS_TRUNCATE : 0) |
			(abi >= 5 ? LL_FS_IOCTL_DEV : 0);
	char missing[192] = "";
	if (LL_FS_ALL & ~have)
		ll_fs_names(LL_FS_ALL & ~have, missing, sizeof(missing));
	if (abi < ST_LANDLOCK_SCOPE)
		sv_selftest_cat(missing, sizeof(missing),
				missing[0] ? ",scopes (ABI 6)" : "scopes (ABI 6)");
	char known[48] = "";
	if (abi > LL_ABI_KNOWN)
		sv_fmt(known, sizeof(known), " (this build uses up to ABI %d)", LL_ABI_KNOWN);
	if (missing[0]) {
		sv_selftest_set(
		    l, SV_SELFTEST_DEGRADED, ST_WEAK,
		    "ABI %d: denied open verified (%d denial(s), EACCES), but %s missing", abi,
		    denials, missing);
		sv_selftest_act(l, "enforce the rest, HIGH finding landlock_degraded",
				abi < 2 ? "refuse to start: REFER (ABI 2) is missing"
					: "enforce the rest, HIGH finding landlock_degraded");
		return;
	}
	sv_selftest_set(
	    l, SV_SELFTEST_OK, 0,
	    "ABI %d%s: a ruleset denied open with EACCES in a child (%d denial(s)); every "
	    "default right and scope available",
	    abi, known, denials);
	sv_selftest_act(l, "enforce the policy's paths", NULL);
}
