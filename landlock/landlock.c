/* Landlock: probe the ABI, build a ruleset in the parent, restrict the child (contract §4).
 *
 * The parent opens every path as root (fix 5), skips only the paths that fail (fix 6), says
 * loudly what it cannot enforce (fix 7) and gives files file rights (fix 8). ll_enforce()
 * runs between fork and exec: it must never allocate, log or call anything not
 * async-signal-safe.
 */
#include "landlock/landlock.h"

#include <fcntl.h>
#include <linux/landlock.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "supervisor/log.h"

#define COMP "landlock"

/* Installed UAPI headers may predate the newer ABIs; the values are fixed kernel ABI. */
#ifndef __NR_landlock_create_ruleset
#define __NR_landlock_create_ruleset 444
#endif
#ifndef __NR_landlock_add_rule
#define __NR_landlock_add_rule 445
#endif
#ifndef __NR_landlock_restrict_self
#define __NR_landlock_restrict_self 446
#endif
#ifndef LANDLOCK_CREATE_RULESET_VERSION
#define LANDLOCK_CREATE_RULESET_VERSION (1U << 0)
#endif
#ifndef LANDLOCK_CREATE_RULESET_ERRATA
#define LANDLOCK_CREATE_RULESET_ERRATA (1U << 1)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif
#ifndef LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#endif
#ifndef LANDLOCK_SCOPE_SIGNAL
#define LANDLOCK_SCOPE_SIGNAL (1ULL << 1)
#endif
#ifndef LANDLOCK_RESTRICT_SELF_LOG_SAME_EXEC_OFF
#define LANDLOCK_RESTRICT_SELF_LOG_SAME_EXEC_OFF  (1U << 0)
#define LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON	  (1U << 1)
#define LANDLOCK_RESTRICT_SELF_LOG_SUBDOMAINS_OFF (1U << 2)
#endif

/* Our public bits are the kernel's; keep them in lock-step. */
_Static_assert(LL_FS_REFER == LANDLOCK_ACCESS_FS_REFER, "refer bit");
_Static_assert(LL_FS_TRUNCATE == LANDLOCK_ACCESS_FS_TRUNCATE, "truncate bit");
_Static_assert(LL_FS_IOCTL_DEV == LANDLOCK_ACCESS_FS_IOCTL_DEV, "ioctl_dev bit");
_Static_assert(LL_FS_V1 == ((LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1), "ABI 1 rights");
_Static_assert(LL_SCOPE_ABSTRACT_UNIX == LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET, "scope bit");
_Static_assert(LL_SCOPE_SIGNAL == LANDLOCK_SCOPE_SIGNAL, "scope bit");
_Static_assert(LL_AUDIT_NEW_EXEC_ON == LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON, "audit bit");

/* The ruleset attribute as of ABI 6; the installed header may only know the first field.
 * Older kernels accept the larger size as long as the fields they lack are zero. */
struct ll_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;
	uint64_t scoped;
};

/* ABI that introduced each feature (kernel Documentation/userspace-api/landlock.rst). */
enum {
	LL_ABI_REFER = 2,
	LL_ABI_TRUNCATE = 3,
	LL_ABI_IOCTL_DEV = 5,
	LL_ABI_SCOPES = 6,
	LL_ABI_AUDIT = 7,
};

static int ll_create_ruleset(const struct ll_ruleset_attr *attr, size_t size, uint32_t flags)
{
	return (int)syscall(__NR_landlock_create_ruleset, attr, size, flags);
}

static int ll_add_rule(int ruleset_fd, const struct landlock_path_beneath_attr *attr)
{
	return (int)syscall(__NR_landlock_add_rule, ruleset_fd, LANDLOCK_RULE_PATH_BENEATH, attr,
			    0);
}

static int ll_restrict_self(int ruleset_fd, uint32_t flags)
{
	return (int)syscall(__NR_landlock_restrict_self, ruleset_fd, flags);
}

static const struct {
	uint64_t bit;
	const char *name;
	int abi;
} ll_fs_table[] = {
    {LANDLOCK_ACCESS_FS_EXECUTE, "execute", 1},
    {LANDLOCK_ACCESS_FS_WRITE_FILE, "write_file", 1},
    {LANDLOCK_ACCESS_FS_READ_FILE, "read_file", 1},
    {LANDLOCK_ACCESS_FS_READ_DIR, "read_dir", 1},
    {LANDLOCK_ACCESS_FS_REMOVE_DIR, "remove_dir", 1},
    {LANDLOCK_ACCESS_FS_REMOVE_FILE, "remove_file", 1},
    {LANDLOCK_ACCESS_FS_MAKE_CHAR, "make_char", 1},
    {LANDLOCK_ACCESS_FS_MAKE_DIR, "make_dir", 1},
    {LANDLOCK_ACCESS_FS_MAKE_REG, "make_reg", 1},
    {LANDLOCK_ACCESS_FS_MAKE_SOCK, "make_sock", 1},
    {LANDLOCK_ACCESS_FS_MAKE_FIFO, "make_fifo", 1},
    {LANDLOCK_ACCESS_FS_MAKE_BLOCK, "make_block", 1},
    {LANDLOCK_ACCESS_FS_MAKE_SYM, "make_sym", 1},
    {LANDLOCK_ACCESS_FS_REFER, "refer", LL_ABI_REFER},
    {LANDLOCK_ACCESS_FS_TRUNCATE, "truncate", LL_ABI_TRUNCATE},
    {LANDLOCK_ACCESS_FS_IOCTL_DEV, "ioctl_dev", LL_ABI_IOCTL_DEV},
};

static const char *const ll_scope_names[] = {"abstract_unix_socket", "signal"};

static uint64_t ll_fs_for_abi(int abi)
{
	uint64_t r = 0;
	for (size_t i = 0; i < SV_ARRAY_SIZE(ll_fs_table); i++)
		if (ll_fs_table[i].abi <= abi)
			r |= ll_fs_table[i].bit;
	return r;
}

/* Append @s to @buf at *@len, keeping it NUL-terminated. */
static void ll_append(char *buf, size_t size, size_t *len, const char *s)
{
	if (*len >= size)
		return;
	*len += sv_fmt(buf + *len, size - *len, "%s", s);
}

size_t ll_fs_names(uint64_t rights, char *buf, size_t size)
{
	size_t len = 0;
	if (size)
		buf[0] = '\0';
	for (size_t i = 0; i < SV_ARRAY_SIZE(ll_fs_table); i++) {
		if (!(rights & ll_fs_table[i].bit))
			continue;
		if (len)
			ll_append(buf, size, &len, ",");
		ll_append(buf, size, &len, ll_fs_table[i].name);
	}
	if (!len)
		ll_append(buf, size, &len, "none");
	return len;
}

static size_t ll_scope_list(uint64_t scopes, char *buf, size_t size)
{
	size_t len = 0;
	if (size)
		buf[0] = '\0';
	for (size_t i = 0; i < SV_ARRAY_SIZE(ll_scope_names); i++) {
		if (!(scopes & (1ULL << i)))
			continue;
		if (len)
			ll_append(buf, size, &len, ",");
		ll_append(buf, size, &len, ll_scope_names[i]);
	}
	if (!len)
		ll_append(buf, size, &len, "none");
	return len;
}

/* "TRUNCATE (ABI 3), IOCTL_DEV (ABI 5), scopes abstract_unix_socket,signal (ABI 6)" */
static size_t ll_missing_describe(uint64_t fs, uint64_t scopes, char *buf, size_t size)
{
	size_t len = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < SV_ARRAY_SIZE(ll_fs_table); i++) {
		if (!(fs & ll_fs_table[i].bit))
			continue;
		char upper[32];
		size_t j;
		for (j = 0; j < sizeof(upper) - 1 && ll_fs_table[i].name[j]; j++) {
			char c = ll_fs_table[i].name[j];
			upper[j] = (char)(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
		}
		upper[j] = '\0';
		char one[64];
		sv_fmt(one, sizeof(one), "%s%s (ABI %d)", len ? ", " : "", upper,
		       ll_fs_table[i].abi);
		ll_append(buf, size, &len, one);
	}
	if (scopes) {
		char names[64];
		ll_scope_list(scopes, names, sizeof(names));
		char one[96];
		sv_fmt(one, sizeof(one), "%sscopes %s (ABI %d)", len ? ", " : "", names,
		       LL_ABI_SCOPES);
		ll_append(buf, size, &len, one);
	}
	return len;
}

/* Seccomp mode of this process from /proc/self/status, or -1 when unknown. */
static int ll_seccomp_mode(void)
{
	_cleanup_close_ int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	char buf[4096];
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == sizeof(buf) - 1)
			break;
	}
	buf[len] = '\0';
	const char *p = strstr(buf, "\nSeccomp:");
	if (!p)
		return -1;
	p += strlen("\nSeccomp:");
	while (*p == ' ' || *p == '\t')
		p++;
	return (*p >= '0' && *p <= '2') ? *p - '0' : -1;
}

int ll_abi_probe(struct sv_err *err)
{
	int abi = ll_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	if (abi >= 1)
		return abi;
	if (abi >= 0)
		return sv_err_set(err, EPROTO, "Landlock probe returned ABI %d", abi);
	int e = errno;
	int filtered = ll_seccomp_mode() == 2;
	switch (e) {
	case ENOSYS:
		return sv_err_set(err, e,
				  "Landlock is not built into this kernel (needs "
				  "CONFIG_SECURITY_LANDLOCK=y)%s",
				  filtered ? ", or a seccomp filter on this process hides it" : "");
	case EOPNOTSUPP:
		return sv_err_set(err, e,
				  "Landlock is built into this kernel but disabled at boot (add "
				  "\"landlock\" to the lsm= kernel parameter or CONFIG_LSM)%s",
				  filtered ? ", or a seccomp filter on this process fakes that"
					   : "");
	case EPERM:
		return sv_err_set(err, e,
				  "Landlock syscalls are blocked%s (container seccomp profile?)",
				  filtered ? " by a seccomp filter on this process" : "");
	default:
		return sv_err_set(err, e, "Landlock probe failed: %s", strerror(e));
	}
}

void ll_spec_init(struct ll_spec *spec)
{
	memset(spec, 0, sizeof(*spec));
	spec->compat = LL_BEST_EFFORT;
	spec->fs_rights = LL_FS_ALL;
	spec->scopes = LL_SCOPE_ALL;
	spec->root_fd = -1;
}

static const char *ll_compat_name(enum ll_compat c)
{
	return c == LL_HARD_REQUIREMENT ? "hard_requirement" : "best_effort";
}

static int ll_spec_check(const struct ll_spec *spec, struct sv_err *err)
{
	if (spec->compat != LL_BEST_EFFORT && spec->compat != LL_HARD_REQUIREMENT)
		return sv_err_set(err, EINVAL, "landlock: unknown compatibility %d",
				  (int)spec->compat);
	if (spec->fs_rights & ~LL_FS_ALL)
		return sv_err_set(err, EINVAL, "landlock: unknown filesystem rights 0x%llx",
				  (unsigned long long)(spec->fs_rights & ~LL_FS_ALL));
	if (!spec->fs_rights)
		return sv_err_set(err, EINVAL, "landlock: no filesystem rights to handle");
	if (spec->scopes & ~LL_SCOPE_ALL)
		return sv_err_set(err, EINVAL, "landlock: unknown scopes 0x%llx",
				  (unsigned long long)(spec->scopes & ~LL_SCOPE_ALL));
	if (spec->audit & ~LL_AUDIT_ALL)
		return sv_err_set(err, EINVAL, "landlock: unknown audit flags 0x%x",
				  spec->audit & ~LL_AUDIT_ALL);
	if (spec->max_abi < 0)
		return sv_err_set(err, EINVAL, "landlock: max_abi %d is negative", spec->max_abi);
	for (int rw = 0; rw < 2; rw++) {
		const char *const *v = rw ? spec->read_write : spec->read_only;
		size_t n = rw ? spec->n_read_write : spec->n_read_only;
		for (size_t i = 0; i < n; i++)
			if (!v || !v[i] || v[i][0] != '/')
				return sv_err_set(err, EINVAL,
						  "landlock: %s[%zu]: path must be absolute",
						  rw ? "read_write" : "read_only", i);
	}
	return 0;
}

static void ll_skip_note(struct ll_report *r, const char *path, const char *why)
{
	static const char more[] = ", ...";
	size_t len = strlen(r->skipped);
	r->n_skipped++;
	if (len >= 3 && !strcmp(r->skipped + len - 3, "..."))
		return; /* already full; entries themselves end with ')' */
	char one[256];
	size_t n = sv_fmt(one, sizeof(one), "%s%s (%s)", len ? ", " : "", path, why);
	if (len + n + sizeof(more) <= sizeof(r->skipped))
		ll_append(r->skipped, sizeof(r->skipped), &len, one);
	else
		ll_append(r->skipped, sizeof(r->skipped), &len, len ? more : "...");
}

/* Rights for one rule: read_only directories read and execute, read_write directories get
 * everything handled, non-directories only the file rights (the kernel rejects the rest). */
static uint64_t ll_rule_rights(uint64_t handled, bool rw, bool dir)
{
	if (dir)
		return rw ? handled : handled & LL_FS_RO_DIR;
	return (rw ? handled : LL_FS_RO_FILE) & handled & LL_FS_FILE_MASK;
}

/* Add one path. Returns 1 when a rule was added, 0 when best_effort skipped it, -errno when
 * hard_requirement refuses. */
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#define LL_RESOLVE_IN_ROOT 0x10

/* struct open_how of <linux/openat2.h>. */
struct ll_open_how {
	uint64_t flags;
	uint64_t mode;
	uint64_t resolve;
};

/* O_PATH open of @path, beneath @root_fd when it is >= 0 (absolute symlinks and ".." stay
 * inside it). */
static int ll_open_path(int root_fd, const char *path)
{
	if (root_fd < 0)
		return open(path, O_PATH | O_CLOEXEC);
	struct ll_open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = LL_RESOLVE_IN_ROOT};
	int fd = (int)syscall(SYS_openat2, root_fd, path, &how, sizeof(how));
	if (fd >= 0 || errno != ENOSYS)
		return fd;
	/* Before 5.6: relative to the root; the fence's own symlinks are in its skeleton only. */
	while (*path == '/')
		path++;
	return openat(root_fd, *path ? path : ".", O_PATH | O_CLOEXEC);
}

static int ll_add_path(int ruleset_fd, const char *path, bool rw, struct ll_prepared *out,
		       int root_fd, struct sv_err *err)
{
	const bool hard = out->compat == LL_HARD_REQUIREMENT;
	const char *list = rw ? "read_write" : "read_only";
	const char *what = "open";
	_cleanup_close_ int fd = ll_open_path(root_fd, path);
	int e = fd < 0 ? errno : 0;
	struct stat st;
	if (!e && fstat(fd, &st) < 0) {
		what = "fstat";
		e = errno;
	}
	uint64_t rights = 0;
	if (!e) {
		rights = ll_rule_rights(out->report.fs_handled, rw, S_ISDIR(st.st_mode));
		if (!rights) /* nothing this rule could grant: no rule at all is the same */
			return 0;
		struct landlock_path_beneath_attr pb = {.allowed_access = rights, .parent_fd = fd};
		if (ll_add_rule(ruleset_fd, &pb) < 0) {
			what = "landlock_add_rule";
			e = errno;
		}
	}
	if (!e) {
		if (sv_log_enabled(SV_LOG_DEBUG)) {
			char names[256];
			ll_fs_names(rights, names, sizeof(names));
			sv_debug(COMP, "landlock_rule", "%s %s: %s", list, path, names);
		}
		return 1;
	}
	if (hard)
		return sv_err_set(err, e, "landlock (hard_requirement): %s path %s: %s: %s", list,
				  path, what, strerror(e));
	ll_skip_note(&out->report, path, strerror(e));
	if (e == ENOENT) {
		sv_debug(COMP, "landlock_path_missing", "skipping missing %s path %s", list, path);
	} else {
		char msg[512];
		sv_fmt(msg, sizeof(msg), "Skipping inaccessible Landlock path %s: %s: %s", path,
		       what, strerror(e));
		sv_log_ocsf("CONFIG:OTHER", SV_SEV_MED, "DEGRADED", "landlock_degraded", msg,
			    SV_KVS({"path", path}, {"list", list}, {"compat", "best_effort"}));
	}
	return 0;
}

static void ll_finding(const char *event, const char *msg, const struct ll_report *r)
{
	char abi[16];
	sv_fmt(abi, sizeof(abi), "%d", r->abi);
	sv_log_ocsf("FINDING:OPEN", SV_SEV_HIGH, "DEGRADED", event, msg,
		    SV_KVS({"abi", abi}, {"compat", ll_compat_name(r->compat)}));
}

/* Negotiate what the ABI in use can do; fills the report. Returns 0 or a hard refusal. */
static int ll_negotiate(const struct ll_spec *spec, struct ll_report *r, struct sv_err *err)
{
	uint64_t fs_ok = ll_fs_for_abi(r->abi);
	uint64_t scopes_ok = r->abi >= LL_ABI_SCOPES ? LL_SCOPE_ALL : 0;
	r->fs_handled = spec->fs_rights & fs_ok;
	r->fs_missing = spec->fs_rights & ~fs_ok;
	r->scopes = spec->scopes & scopes_ok;
	r->scopes_missing = spec->scopes & ~scopes_ok;
	if (r->abi >= LL_ABI_AUDIT) {
		r->restrict_flags = spec->audit;
	} else {
		r->restrict_flags = 0;
		r->audit_missing = spec->audit;
	}
	if (!r->fs_missing && !r->scopes_missing)
		return 0;
	char missing[384];
	char abi[48];
	if (r->abi != r->kernel_abi)
		sv_fmt(abi, sizeof(abi), "ABI %d (capped, kernel ABI %d)", r->abi, r->kernel_abi);
	else
		sv_fmt(abi, sizeof(abi), "ABI %d", r->abi);
	/* hard_requirement refuses where OpenShell does: a right of its V2 set missing. What lies
	 * above ABI 2 is ours; its absence is a finding under either setting. */
	uint64_t floor_missing = r->fs_missing & LL_FS_HARD_FLOOR;
	if (spec->compat == LL_HARD_REQUIREMENT && floor_missing) {
		ll_missing_describe(floor_missing, 0, missing, sizeof(missing));
		return sv_err_set(err, EOPNOTSUPP,
				  "landlock (hard_requirement): Landlock %s cannot enforce %s", abi,
				  missing);
	}
	ll_missing_describe(r->fs_missing, r->scopes_missing, missing, sizeof(missing));
	char msg[512];
	sv_fmt(msg, sizeof(msg), "Landlock %s: %s unavailable; enforcing the rest", abi, missing);
	ll_finding("landlock_degraded", msg, r);
	return 0;
}

int ll_prepare(const struct ll_spec *spec, struct ll_prepared *out, struct sv_err *err)
{
	memset(out, 0, sizeof(*out));
	out->ruleset_fd = -1;
	out->compat = spec->compat;
	struct ll_report *r = &out->report;
	r->compat = spec->compat;
	int rc = ll_spec_check(spec, err);
	if (rc < 0)
		return rc;
	const bool hard = spec->compat == LL_HARD_REQUIREMENT;

	struct sv_err perr = {0};
	r->kernel_abi = ll_abi_probe(&perr);
	if (r->kernel_abi < 0) {
		if (hard)
			return sv_err_set(err, perr.code, "landlock (hard_requirement): %s",
					  perr.msg);
		char msg[SV_ERR_MSG_MAX + 64];
		sv_fmt(msg, sizeof(msg), "Running WITHOUT Landlock: %s", perr.msg);
		ll_finding("landlock_unavailable", msg, r);
		return 0;
	}
	r->abi = r->kernel_abi;
	if (spec->max_abi && spec->max_abi < r->abi)
		r->abi = spec->max_abi;
	rc = ll_negotiate(spec, r, err);
	if (rc < 0)
		return rc;

	struct ll_ruleset_attr attr = {.handled_access_fs = r->fs_handled, .scoped = r->scopes};
	_cleanup_close_ int rfd = ll_create_ruleset(&attr, sizeof(attr), 0);
	if (rfd < 0) {
		int e = errno;
		if (hard)
			return sv_err_set(err, e,
					  "landlock (hard_requirement): cannot create ruleset: %s",
					  strerror(e));
		char msg[256];
		sv_fmt(msg, sizeof(msg), "Running WITHOUT Landlock: cannot create ruleset: %s",
		       strerror(e));
		ll_finding("landlock_unavailable", msg, r);
		return 0;
	}

	for (int rw = 0; rw < 2; rw++) {
		const char *const *v = rw ? spec->read_write : spec->read_only;
		size_t n = rw ? spec->n_read_write : spec->n_read_only;
		for (size_t i = 0; i < n; i++) {
			rc = ll_add_path(rfd, v[i], rw, out, spec->root_fd, err);
			if (rc < 0)
				return rc;
			r->n_rules += (size_t)rc;
		}
	}

	if (r->n_rules == 0) {
		size_t total = spec->n_read_only + spec->n_read_write;
		if (hard)
			return sv_err_set(
			    err, ENOENT, "landlock (hard_requirement): no usable paths (%zu given)",
			    total);
		char msg[LL_SKIPPED_MAX + 128];
		sv_fmt(msg, sizeof(msg),
		       "Running WITHOUT Landlock: no usable paths (%zu given%s%s)", total,
		       r->n_skipped ? ", skipped: " : "", r->skipped);
		ll_finding("landlock_unavailable", msg, r);
		return 0;
	}

	out->ruleset_fd = sv_steal_fd(&rfd);
	out->restrict_flags = r->restrict_flags;
	r->enforced = true;
	char summary[2048];
	ll_report_format(r, summary, sizeof(summary));
	sv_log_ocsf("CONFIG:ENABLED", SV_SEV_INFO, "APPLIED", "landlock_prepared", summary, NULL,
		    0);
	return 0;
}

/* Short names for the errors restrict_self can give; strerror is not async-signal-safe. */
static const char *ll_enforce_hint(int e)
{
	switch (e) {
	case E2BIG:
		return "too many nested Landlock domains";
	case EPERM:
		return "no_new_privs not set and no CAP_SYS_ADMIN";
	case EBADF:
	case EBADFD:
		return "not a Landlock ruleset fd";
	case EINVAL:
		return "flags not supported by this kernel";
	default:
		return "unexpected error";
	}
}

int ll_enforce(const struct ll_prepared *p, struct sv_err *err)
{
	if (!p || p->ruleset_fd < 0)
		return 0;
	int nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
	if (nnp != 1 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		int e = errno;
		return sv_err_set(err, e, "landlock: PR_SET_NO_NEW_PRIVS: errno %d", e);
	}
	if (ll_restrict_self(p->ruleset_fd, p->restrict_flags) < 0) {
		int e = errno;
		return sv_err_set(err, e, "landlock_restrict_self: errno %d (%s)", e,
				  ll_enforce_hint(e));
	}
	return 0;
}

void ll_prepared_close(struct ll_prepared *p)
{
	if (!p)
		return;
	if (p->ruleset_fd >= 0)
		close(p->ruleset_fd);
	p->ruleset_fd = -1;
}

size_t ll_report_format(const struct ll_report *r, char *buf, size_t size)
{
	char fs[256], scopes[64], missing[384];
	ll_fs_names(r->fs_handled, fs, sizeof(fs));
	ll_scope_list(r->scopes, scopes, sizeof(scopes));
	ll_missing_describe(r->fs_missing, r->scopes_missing, missing, sizeof(missing));
	return sv_fmt(buf, size,
		      "abi=%d kernel_abi=%d enforced=%s compat=%s fs=%s scopes=%s "
		      "restrict_flags=0x%x rules=%zu skipped=%zu%s%s%s missing=%s%s",
		      r->abi, r->kernel_abi, r->enforced ? "yes" : "no", ll_compat_name(r->compat),
		      fs, scopes, r->restrict_flags, r->n_rules, r->n_skipped,
		      r->n_skipped ? " [" : "", r->skipped, r->n_skipped ? "]" : "",
		      missing[0] ? missing : "none",
		      r->audit_missing ? " audit_flags=unavailable" : "");
}
