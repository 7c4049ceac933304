/* Who the agent runs as (contract §6.1) and HOME/USER/SHELL for it (§6.2).
 *
 * Runs in the parent during setup. Reads only the image's own account files, bounded (passwd.c),
 * never NSS. Must never resolve to root: uid 0, gid 0 and membership of group 0 are refused in
 * every spelling, whatever the policy or the driver says (§13 fix 4).
 *
 * Decision table. P = policy run_as_user / run_as_group ("" counts as omitted); UID/GID =
 * OPENSHELL_SANDBOX_UID/_GID ("" counts as unset, as Docker and Podman send them); OCI =
 * OPENSHELL_OCI_IMAGE_USER, "user[:group]", where present-but-empty differs from absent.
 *
 *  driver environment            policy           result
 *  ----------------------------  ---------------  -------------------------------------------
 *  OCI non-empty + UID or GID    any              fatal: OCI conflicts with UID/GID
 *  only one of UID, GID          any              fatal: must be supplied together
 *  UID + GID (OCI absent or "")  omitted          uid=UID gid=GID, numeric (both 1..2^32-2)
 *                                user/group set   must resolve to UID/GID, else fatal conflict
 *  OCI present, no UID/GID       both set         the policy alone (as with no driver input)
 *                                user omitted     user from OCI: "" → fatal "OCI USER is
 *                                                 required because run_as_user is omitted";
 *                                                 a number needs no passwd entry; a name must
 *                                                 be in the image's /etc/passwd
 *                                group omitted    OCI ":group" (number, or name in /etc/group;
 *                                                 "user:" is fatal), else the primary gid of
 *                                                 the OCI user from /etc/passwd (by name, or by
 *                                                 uid for a number; none → fatal)
 *  nothing                       omitted fields   become "sandbox", which must then exist in
 *                                                 the image's passwd / group
 *
 *  Policy and OCI values: "root", 0, a name whose uid or gid is 0 → "refusing to run the agent
 *  as root"; numbers above 4294967294 and malformed values (empty, control characters,
 *  whitespace, ':', over 1 KiB) → fatal. Unknown names → fatal (we cannot drop to a name).
 *  Supplementary groups: a named user gets its gid plus every /etc/group entry listing it (at
 *  most 64; group 0 among them is fatal); a numeric user gets none.
 *  HOME: the workdir when any component came from OCI; /sandbox for a numeric user; else the
 *  passwd home if absolute, else /home/<user>. USER: the name, "sandbox" for a number.
 *  SHELL: /bin/bash (§6.2), or /bin/sh when the image has no /bin/bash.
 */
#include "identity.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "supervisor/log.h"

#define COMP	     "identity"
#define ROOT_REFUSED "refusing to run the agent as root"

static const char *nonempty(const char *s)
{
	return s && *s ? s : NULL;
}

/* The primary group of the OCI user @w, from the image's passwd. */
static int oci_primary_gid(struct sv_acct_ctx *c, const char *decl, const struct sv_acct_user *w,
			   gid_t *gid, struct sv_err *err)
{
	struct sv_pwent pw = w->pw;
	if (w->numeric) {
		int r = sv_acct_ctx_load(c, SV_ACCT_PASSWD, err);
		if (r < 0)
			return r;
		r = sv_passwd_find_uid(&c->pw, w->uid, &pw, err);
		if (r < 0)
			return r;
		if (r == 0)
			return sv_err_set(
			    err, ENOENT,
			    "OPENSHELL_OCI_IMAGE_USER '%.64s' has a numeric uid and no "
			    "group, and %s has no entry for uid %u to take the primary "
			    "group from",
			    decl, c->pw.path, (unsigned)w->uid);
	}
	if (pw.gid == 0)
		return sv_err_set(err, EPERM,
				  ROOT_REFUSED ": the primary group of OPENSHELL_OCI_IMAGE_USER "
					       "'%.64s' is gid 0 (%s:%u)",
				  decl, c->pw.path, pw.line);
	*gid = pw.gid;
	return 0;
}

static void sort_groups(gid_t *g, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		gid_t v = g[i];
		size_t j = i;
		for (; j > 0 && g[j - 1] > v; j--)
			g[j] = g[j - 1];
		g[j] = v;
	}
}

/* Named users: their gid plus their /etc/group memberships; numeric users: none. */
static int fill_groups(struct sv_acct_ctx *c, const struct sv_acct_user *w, struct sv_identity *out,
		       struct sv_err *err)
{
	out->n_groups = 0;
	if (w->numeric)
		return 0;
	out->groups[out->n_groups++] = out->gid;
	int r = sv_acct_ctx_load(c, SV_ACCT_GROUP, err);
	if (r == 0)
		r = sv_group_memberships(&c->gr, w->pw.name, out->groups, SV_ID_GROUPS_MAX,
					 &out->n_groups, err);
	if (r < 0)
		return r;
	sort_groups(out->groups, out->n_groups);
	return 0;
}

static void fill_env(const struct sv_identity_input *in, const struct sv_acct_user *w,
		     struct sv_identity *out)
{
	if (w->numeric)
		sv_fmt(out->user, sizeof(out->user), "%s", SV_ID_DEFAULT_USER);
	else
		sv_fmt(out->user, sizeof(out->user), "%s", w->pw.name);

	if (out->oci)
		sv_fmt(out->home, sizeof(out->home), "%s",
		       nonempty(in->workdir) ? in->workdir : SV_ID_DEFAULT_WORKDIR);
	else if (w->numeric)
		sv_fmt(out->home, sizeof(out->home), "%s", SV_ID_NUMERIC_HOME);
	else if (w->pw.dir[0] == '/')
		sv_fmt(out->home, sizeof(out->home), "%s", w->pw.dir);
	else
		sv_fmt(out->home, sizeof(out->home), "/home/%s", w->pw.name);

	/* §6.2 says /bin/bash; an image without bash gets a SHELL that exists. */
	const char *root = nonempty(in->root) ? in->root : "/";
	char path[SV_ID_PATH_MAX];
	struct stat st;
	sv_fmt(path, sizeof(path), "%s%sbin/bash", root, root[strlen(root) - 1] == '/' ? "" : "/");
	bool bash = stat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111);
	sv_fmt(out->shell, sizeof(out->shell), "%s", bash ? "/bin/bash" : "/bin/sh");
}

static int resolve_driver(struct sv_acct_ctx *c, const struct sv_identity_input *in, const char *pu,
			  const char *pg, struct sv_acct_user *w, struct sv_identity *out,
			  struct sv_err *err)
{
	unsigned uid = 0, gid = 0;
	int r = sv_acct_parse_id(in->sandbox_uid, "OPENSHELL_SANDBOX_UID", "uid", &uid, err);
	if (r == 0)
		r = sv_acct_parse_id(in->sandbox_gid, "OPENSHELL_SANDBOX_GID", "gid", &gid, err);
	if (r < 0)
		return r;
	if (pu) {
		if ((r = sv_acct_user_lookup(c, pu, "run_as_user", w, err)) < 0)
			return r;
		if (w->uid != uid)
			return sv_err_set(err, EINVAL,
					  "run_as_user '%.64s' (uid %u) conflicts with "
					  "OPENSHELL_SANDBOX_UID=%u",
					  pu, (unsigned)w->uid, uid);
	}
	if (pg) {
		gid_t g;
		if ((r = sv_acct_group_lookup(c, pg, "run_as_group", &g, err)) < 0)
			return r;
		if (g != gid)
			return sv_err_set(err, EINVAL,
					  "run_as_group '%.64s' (gid %u) conflicts with "
					  "OPENSHELL_SANDBOX_GID=%u",
					  pg, (unsigned)g, gid);
	}
	/* The platform's identity is numeric (upstream writes the numbers into the policy). */
	memset(w, 0, sizeof(*w));
	w->uid = uid;
	w->numeric = true;
	out->gid = gid;
	out->source = "OPENSHELL_SANDBOX_UID/GID";
	return 0;
}

static int resolve_oci(struct sv_acct_ctx *c, const char *oci, const char *pu, const char *pg,
		       struct sv_acct_user *w, struct sv_identity *out, struct sv_err *err)
{
	char decl[SV_ACCT_FIELD_MAX * 2 + 2];
	if (strlen(oci) >= sizeof(decl))
		return sv_err_set(err, EINVAL, "OPENSHELL_OCI_IMAGE_USER: '%.64s...' is too long",
				  oci);
	sv_fmt(decl, sizeof(decl), "%s", oci);
	char *colon = strchr(decl, ':');
	const char *ou = decl, *og = NULL;
	if (colon) {
		*colon = '\0';
		og = colon + 1;
	}
	struct sv_acct_user ow;
	bool ow_done = false;
	int r;

	out->source = "OPENSHELL_OCI_IMAGE_USER";
	if (!pu) {
		if (!*ou)
			return sv_err_set(err, EINVAL,
					  "OCI USER is required because run_as_user is omitted "
					  "(OPENSHELL_OCI_IMAGE_USER is empty)");
		if ((r = sv_acct_user_lookup(c, ou, "OPENSHELL_OCI_IMAGE_USER", &ow, err)) < 0)
			return r;
		ow_done = true;
		*w = ow;
		out->oci = true;
	} else if ((r = sv_acct_user_lookup(c, pu, "run_as_user", w, err)) < 0) {
		return r;
	}

	if (pg)
		return sv_acct_group_lookup(c, pg, "run_as_group", &out->gid, err);
	out->oci = true;
	if (og) {
		if (!*og)
			return sv_err_set(err, EINVAL,
					  "OPENSHELL_OCI_IMAGE_USER '%.64s' has an empty group "
					  "component",
					  oci);
		return sv_acct_group_lookup(c, og, "OPENSHELL_OCI_IMAGE_USER group", &out->gid,
					    err);
	}
	if (!*ou)
		return sv_err_set(err, EINVAL,
				  "OCI USER is required because run_as_group is omitted "
				  "(OPENSHELL_OCI_IMAGE_USER is empty)");
	if (!ow_done && (r = sv_acct_user_lookup(c, ou, "OPENSHELL_OCI_IMAGE_USER", &ow, err)) < 0)
		return r;
	return oci_primary_gid(c, oci, &ow, &out->gid, err);
}

static int resolve_policy(struct sv_acct_ctx *c, const char *pu, const char *pg,
			  struct sv_acct_user *w, struct sv_identity *out, struct sv_err *err)
{
	out->source = pu || pg ? "policy" : "default";
	int r = sv_acct_user_lookup(c, pu ? pu : SV_ID_DEFAULT_USER,
				    pu ? "run_as_user" : "run_as_user (omitted, default 'sandbox')",
				    w, err);
	if (r == 0)
		r = sv_acct_group_lookup(c, pg ? pg : SV_ID_DEFAULT_USER,
					 pg ? "run_as_group"
					    : "run_as_group (omitted, default 'sandbox')",
					 &out->gid, err);
	return r;
}

static int resolve(struct sv_acct_ctx *c, const struct sv_identity_input *in,
		   struct sv_identity *out, struct sv_err *err)
{
	const char *pu = nonempty(in->run_as_user), *pg = nonempty(in->run_as_group);
	const char *eu = nonempty(in->sandbox_uid), *eg = nonempty(in->sandbox_gid);
	struct sv_acct_user w = {0};
	int r;

	if (nonempty(in->oci_user) && (eu || eg))
		return sv_err_set(err, EINVAL,
				  "OPENSHELL_OCI_IMAGE_USER conflicts with non-empty "
				  "OPENSHELL_SANDBOX_UID/OPENSHELL_SANDBOX_GID: a driver sets one "
				  "or the other");
	if (!eu != !eg)
		return sv_err_set(
		    err, EINVAL,
		    "OPENSHELL_SANDBOX_UID and OPENSHELL_SANDBOX_GID must be supplied "
		    "together (%s is set, %s is not)",
		    eu ? "OPENSHELL_SANDBOX_UID" : "OPENSHELL_SANDBOX_GID",
		    eu ? "OPENSHELL_SANDBOX_GID" : "OPENSHELL_SANDBOX_UID");
	if (eu)
		r = resolve_driver(c, in, pu, pg, &w, out, err);
	else if (in->oci_user && !(pu && pg))
		r = resolve_oci(c, in->oci_user, pu, pg, &w, out, err);
	else
		r = resolve_policy(c, pu, pg, &w, out, err);
	if (r < 0)
		return r;
	out->uid = w.uid;
	out->numeric = w.numeric;
	/* Belt and braces: every path above already refused these. */
	if (out->uid == 0 || out->gid == 0)
		return sv_err_set(err, EPERM, ROOT_REFUSED ": resolved to uid %u gid %u",
				  (unsigned)out->uid, (unsigned)out->gid);
	if ((r = fill_groups(c, &w, out, err)) < 0)
		return r;
	fill_env(in, &w, out);
	return 0;
}

int sv_identity_resolve(const struct sv_identity_input *in, struct sv_identity *out,
			struct sv_err *err)
{
	struct sv_acct_ctx c = {.root = in->root};
	memset(out, 0, sizeof(*out));
	int r = resolve(&c, in, out, err);
	sv_acct_ctx_close(&c);
	if (r < 0) {
		memset(out, 0, sizeof(*out));
		return r;
	}
	char uid[16], gid[16], ng[16];
	sv_fmt(uid, sizeof(uid), "%u", (unsigned)out->uid);
	sv_fmt(gid, sizeof(gid), "%u", (unsigned)out->gid);
	sv_fmt(ng, sizeof(ng), "%zu", out->n_groups);
	sv_log_kv(SV_LOG_INFO, COMP, "identity_resolved", "agent identity resolved",
		  SV_KVS({"uid", uid}, {"gid", gid}, {"groups", ng}, {"user", out->user},
			 {"home", out->home}, {"source", out->source}));
	return 0;
}

void sv_identity_input_from_env(struct sv_identity_input *in)
{
	in->sandbox_uid = getenv("OPENSHELL_SANDBOX_UID");
	in->sandbox_gid = getenv("OPENSHELL_SANDBOX_GID");
	in->oci_user = getenv("OPENSHELL_OCI_IMAGE_USER");
}

void sv_identity_env_values(const struct sv_identity *id, bool user_defines_home,
			    bool user_defines_user, bool user_defines_shell,
			    struct sv_identity_env *out)
{
	out->home = user_defines_home ? NULL : id->home;
	out->user = user_defines_user ? NULL : id->user;
	out->shell = user_defines_shell ? NULL : id->shell;
}

/* --- the drop ------------------------------------------------------------------------------
 *
 * libcap is deliberately not used: cap_get_proc() allocates, and since libcap 2.43 even the
 * thin wrappers (cap_drop_bound) may route through libpsx's all-threads machinery. The raw
 * prctl/capget/capset calls below are what those wrappers do, and plainly async-signal-safe.
 *
 * Securebits: SECBIT_NOROOT and SECBIT_NO_CAP_AMBIENT_RAISE are set and locked, KEEP_CAPS is
 * forced off and locked, before setresuid, while CAP_SETPCAP is still effective. They are
 * defence in depth: with an empty bounding and inheritable set, uid 0 could gain nothing at
 * exec anyway. SECBIT_NO_SETUID_FIXUP is NOT set: the kernel's fixup at setresuid is what
 * empties the permitted and effective sets, and we want that (then verify with capget).
 * PR_SET_DUMPABLE=0 lasts until execve (which resets it for a same-uid exec); RLIMIT_CORE 0/0
 * is what keeps core dumps off afterwards (hard limit 0, no CAP_SYS_RESOURCE to raise it).
 */
#define SECBITS_SET                                                           \
	(SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE | \
	 SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED | SECBIT_KEEP_CAPS_LOCKED)

static int read_cap_last(int *out)
{
	_cleanup_close_ int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	char buf[16];
	ssize_t n;
	do
		n = read(fd, buf, sizeof(buf) - 1);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n < 0 ? -errno : -EINVAL;
	buf[n] = '\0';
	if (buf[n - 1] == '\n')
		buf[n - 1] = '\0';
	unsigned long long v;
	int r = sv_parse_uint(buf, 0, SV_ID_CAP_FALLBACK, &v);
	if (r < 0)
		return r;
	*out = (int)v;
	return 0;
}

static bool have_effective_cap(int cap)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct d[2] = {{0}};
	if (syscall(SYS_capget, &h, d) < 0)
		return false;
	return d[cap / 32].effective & (1U << (cap % 32));
}

int sv_identity_plan_init(struct sv_identity_plan *plan, const struct sv_identity *id,
			  struct sv_err *err)
{
	memset(plan, 0, sizeof(*plan));
	if (id->uid == 0 || id->gid == 0)
		return sv_err_set(err, EPERM, ROOT_REFUSED ": uid %u gid %u", (unsigned)id->uid,
				  (unsigned)id->gid);
	if (id->n_groups > SV_ID_GROUPS_MAX)
		return sv_err_set(err, E2BIG, "more than %d supplementary groups",
				  SV_ID_GROUPS_MAX);
	plan->uid = id->uid;
	plan->gid = id->gid;
	plan->n_groups = id->n_groups;
	memcpy(plan->groups, id->groups, id->n_groups * sizeof(gid_t));
	sort_groups(plan->groups, plan->n_groups);
	for (size_t i = 0; i < plan->n_groups; i++)
		if (plan->groups[i] == 0)
			return sv_err_set(err, EPERM, ROOT_REFUSED ": group 0 among its groups");

	plan->cap_last_exact = true;
	if (read_cap_last(&plan->cap_last) < 0) {
		/* No /proc yet: the kernel answers EINVAL to PR_CAPBSET_READ past its last cap. */
		int c = 0;
		while (c <= SV_ID_CAP_FALLBACK && prctl(PR_CAPBSET_READ, c, 0, 0, 0) >= 0)
			c++;
		plan->cap_last = c - 1;
		if (c == 0 || c > SV_ID_CAP_FALLBACK) {
			plan->cap_last = SV_ID_CAP_FALLBACK;
			plan->cap_last_exact = false;
		}
		sv_warn(COMP, "cap_last_cap_unreadable",
			"/proc/sys/kernel/cap_last_cap unreadable; clearing capabilities 0..%d%s",
			plan->cap_last, plan->cap_last_exact ? " (probed)" : "");
	}

	plan->ambient = prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, 0, 0, 0) >= 0;
	bool secbits_known = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0) >= 0;
	plan->securebits = secbits_known && have_effective_cap(CAP_SETPCAP);
	if (!plan->securebits)
		sv_warn(COMP, "securebits_unavailable",
			"not locking securebits for the agent (%s); relying on the empty bounding "
			"set, no_new_privs and the capability checks",
			secbits_known ? "CAP_SETPCAP is not effective" : "the kernel has none");
	sv_debug(COMP, "privilege_drop_planned",
		 "uid=%u gid=%u groups=%zu cap_last=%d ambient=%d securebits=%d",
		 (unsigned)plan->uid, (unsigned)plan->gid, plan->n_groups, plan->cap_last,
		 plan->ambient, plan->securebits);
	return 0;
}

static const char *errname(int e)
{
	switch (e) {
	case EPERM:
		return "EPERM";
	case EINVAL:
		return "EINVAL";
	case EACCES:
		return "EACCES";
	case ENOSYS:
		return "ENOSYS";
	case EFAULT:
		return "EFAULT";
	case ENOMEM:
		return "ENOMEM";
	case EAGAIN:
		return "EAGAIN";
	default:
		return "error";
	}
}

/* "privilege drop: <what>: EPERM (errno 1)". Formats into fixed buffers only. */
static int fail(struct sv_err *err, int e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct sv_err *err, int e, const char *fmt, ...)
{
	char what[256];
	va_list ap;
	va_start(ap, fmt);
	sv_vfmt(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (e <= 0)
		e = EPERM;
	return sv_err_set(err, e, "privilege drop: %s: %s (errno %d)", what, errname(e), e);
}

static int drop_groups(const struct sv_identity_plan *p, struct sv_err *err)
{
	if (setgroups(p->n_groups, p->groups) < 0)
		return fail(err, errno, "setgroups(%zu groups)", p->n_groups);
	gid_t got[SV_ID_GROUPS_MAX + 1];
	int n = getgroups(SV_ID_GROUPS_MAX + 1, got);
	if (n < 0)
		return fail(err, errno, "getgroups");
	bool same = (size_t)n == p->n_groups;
	for (size_t i = 0; same && i < p->n_groups; i++)
		same = got[i] == p->groups[i]; /* the kernel keeps the list sorted, as the plan */
	if (!same)
		return fail(err, EPERM,
			    "supplementary groups differ after setgroups (%d, want %zu)", n,
			    p->n_groups);
	return 0;
}

static int drop_gid(const struct sv_identity_plan *p, struct sv_err *err)
{
	gid_t g = p->gid, r, e, s;
	if (setresgid(g, g, g) < 0)
		return fail(err, errno, "setresgid(%u)", (unsigned)g);
	if (getresgid(&r, &e, &s) < 0)
		return fail(err, errno, "getresgid");
	gid_t fs = (gid_t)setfsgid((gid_t)-1); /* an invalid id only reads the current one */
	if (r != g || e != g || s != g || fs != g)
		return fail(err, EPERM, "gids are %u/%u/%u fs %u after setresgid(%u)", (unsigned)r,
			    (unsigned)e, (unsigned)s, (unsigned)fs, (unsigned)g);
	return 0;
}

/* Past the real last cap the kernel says EINVAL; only a guessed cap_last may run into it. */
static bool past_last_cap(const struct sv_identity_plan *p, int cap, int e)
{
	return e == EINVAL && !p->cap_last_exact && cap > 0;
}

static int drop_bounding(const struct sv_identity_plan *p, struct sv_err *err)
{
	for (int c = 0; c <= p->cap_last; c++) {
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) == 0)
			continue;
		int e = errno;
		if (past_last_cap(p, c, e))
			break;
		/* Without CAP_SETPCAP: acceptable only for a cap that is already gone. */
		if (e == EPERM && prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 0)
			continue;
		return fail(err, e, "cannot drop capability %d from the bounding set", c);
	}
	for (int c = 0; c <= p->cap_last; c++) {
		int in = prctl(PR_CAPBSET_READ, c, 0, 0, 0);
		if (in == 0)
			continue;
		if (in < 0 && past_last_cap(p, c, errno))
			break;
		return fail(err, in < 0 ? errno : EPERM,
			    "capability %d is still in the bounding set", c);
	}
	return 0;
}

static int lock_securebits(const struct sv_identity_plan *p, struct sv_err *err)
{
	if (!p->securebits)
		return 0;
	int cur = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
	if (cur < 0)
		return fail(err, errno, "PR_GET_SECUREBITS");
	unsigned long want = ((unsigned long)cur | SECBITS_SET) & ~(unsigned long)SECBIT_KEEP_CAPS;
	if (prctl(PR_SET_SECUREBITS, want, 0, 0, 0) < 0)
		return fail(err, errno, "PR_SET_SECUREBITS(%#lx)", want);
	cur = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
	if (cur < 0 || (unsigned long)cur != want)
		return fail(err, EPERM, "securebits are %#x, want %#lx", cur, want);
	return 0;
}

static int drop_uid(const struct sv_identity_plan *p, struct sv_err *err)
{
	uid_t u = p->uid, r, e, s;
	if (setresuid(u, u, u) < 0)
		return fail(err, errno, "setresuid(%u)", (unsigned)u);
	if (getresuid(&r, &e, &s) < 0)
		return fail(err, errno, "getresuid");
	uid_t fs = (uid_t)setfsuid((uid_t)-1);
	if (r != u || e != u || s != u || fs != u)
		return fail(err, EPERM, "uids are %u/%u/%u fs %u after setresuid(%u)", (unsigned)r,
			    (unsigned)e, (unsigned)s, (unsigned)fs, (unsigned)u);
	/* §13 fix 3: prove the way back is closed. */
	if (setuid(0) == 0)
		return sv_err_set(err, EPERM, "privilege drop failed: setuid(0) succeeded");
	if (setgid(0) == 0)
		return sv_err_set(err, EPERM, "privilege drop failed: setgid(0) succeeded");
	return 0;
}

static int drop_caps(const struct sv_identity_plan *p, struct sv_err *err)
{
	if (p->ambient) {
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
			return fail(err, errno, "PR_CAP_AMBIENT_CLEAR_ALL");
		for (int c = 0; c <= p->cap_last; c++) {
			int in = prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, c, 0, 0);
			if (in == 0 || (in < 0 && past_last_cap(p, c, errno)))
				continue;
			return fail(err, in < 0 ? errno : EPERM, "capability %d is still ambient",
				    c);
		}
	}
	/* Lowering is always allowed: this clears an inheritable set the runtime left behind
	 * (the setuid fixup does not touch it) and anything a NO_SETUID_FIXUP bit kept. */
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct d[2] = {{0}};
	if (syscall(SYS_capset, &h, d) < 0)
		return fail(err, errno, "capset(0)");
	if (syscall(SYS_capget, &h, d) < 0)
		return fail(err, errno, "capget");
	for (int i = 0; i < 2; i++)
		if (d[i].effective || d[i].permitted || d[i].inheritable)
			return fail(err, EPERM,
				    "capabilities remain (word %d: eff %#x prm %#x inh %#x)", i,
				    d[i].effective, d[i].permitted, d[i].inheritable);
	return 0;
}

int sv_identity_harden(struct sv_err *err)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return fail(err, errno, "PR_SET_NO_NEW_PRIVS");
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		return fail(err, EPERM, "no_new_privs is not set after PR_SET_NO_NEW_PRIVS");
	struct rlimit rl = {0, 0};
	if (setrlimit(RLIMIT_CORE, &rl) < 0)
		return fail(err, errno, "setrlimit(RLIMIT_CORE, 0/0)");
	if (getrlimit(RLIMIT_CORE, &rl) < 0 || rl.rlim_cur != 0 || rl.rlim_max != 0)
		return fail(err, EPERM, "RLIMIT_CORE is not 0/0 after setrlimit");
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return fail(err, errno, "PR_SET_DUMPABLE(0)");
	if (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0)
		return fail(err, EPERM, "still dumpable after PR_SET_DUMPABLE(0)");
	return 0;
}

int sv_identity_drop(const struct sv_identity_plan *p, struct sv_err *err)
{
	int r;
	if (p->uid == 0 || p->gid == 0)
		return sv_err_set(err, EPERM, "privilege drop: " ROOT_REFUSED);
	if ((r = drop_groups(p, err)) < 0 || (r = drop_gid(p, err)) < 0 ||
	    (r = drop_bounding(p, err)) < 0 || (r = lock_securebits(p, err)) < 0 ||
	    (r = drop_uid(p, err)) < 0 || (r = drop_caps(p, err)) < 0)
		return r;
	return sv_identity_harden(err);
}

int sv_identity_hook(void *plan, struct sv_err *err)
{
	return sv_identity_drop(plan, err);
}
