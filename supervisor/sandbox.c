/* Preparing and applying the agent's isolation (policy → identity, Landlock, seccomp).
 *
 * Everything slow or allocating happens in sv_sandbox_prepare, in the parent, as root. The child
 * hook only makes system calls on prepared data, in minijail's order: identity and capabilities,
 * no_new_privs and hardening, Landlock, then seccomp as the very last step before exec.
 */
#include "sandbox.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "spawn.h"

#define COMP "sandbox"

/* Device and terminal nodes an agent on a PTY needs (our addition to contract §3.3): the
 * controlling terminal, new PTYs (script, tmux), and the harmless character devices. */
static const char *const tty_rw_baseline[] = {"/dev/tty", "/dev/pts", "/dev/ptmx"};
static const char *const dev_ro_baseline[] = {"/dev/zero", "/dev/full", "/dev/random"};

static bool path_exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

static int add_baseline(struct pol_policy *p, struct sv_err *err)
{
	for (size_t i = 0; i < SV_ARRAY_SIZE(tty_rw_baseline); i++) {
		const char *path = tty_rw_baseline[i];
		if (!path_exists(path) || pol_strv_contains(&p->read_only, path))
			continue; /* an explicit read-only choice is never widened */
		int r = pol_fs_add(p, true, path, err);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < SV_ARRAY_SIZE(dev_ro_baseline); i++) {
		const char *path = dev_ro_baseline[i];
		if (!path_exists(path) || pol_strv_contains(&p->read_write, path))
			continue;
		int r = pol_fs_add(p, false, path, err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* mkdir -p @path; directories this creates belong to the agent (contract §2 step 14: only newly
 * created ones are chowned, never pre-existing image directories). */
static int make_dirs_for_agent(const char *path, uid_t uid, gid_t gid, struct sv_err *err)
{
	char buf[POL_PATH_MAX + 1];
	if (sv_fmt(buf, sizeof(buf), "%s", path) >= sizeof(buf) - 1)
		return sv_err_set(err, ENAMETOOLONG, "%s: path too long", path);
	for (char *p = buf + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(buf, 0755) == 0) {
			if (chown(buf, uid, gid) < 0)
				return sv_err_set(err, errno, "cannot hand %s to uid %u: %s", buf,
						  (unsigned)uid, strerror(errno));
			sv_log_kv(SV_LOG_INFO, COMP, "directory_created", "created for the agent",
				  SV_KVS({"path", buf}));
		} else if (errno != EEXIST) {
			return sv_err_set(err, errno, "cannot create %s: %s", buf, strerror(errno));
		}
		*p = c;
		if (c == '\0')
			break;
	}
	struct stat st;
	if (stat(buf, &st) < 0 || !S_ISDIR(st.st_mode))
		return sv_err_set(err, ENOTDIR, "%s is not a directory", buf);
	return 0;
}

static int prepare_filesystem(struct sv_sandbox *sb, const char *workdir, struct sv_err *err)
{
	struct pol_policy *p = &sb->policy;
	int r;
	if (workdir && p->include_workdir) {
		if (strcmp(workdir, "/") == 0) {
			sv_warn(COMP, "workdir_is_root",
				"workdir is /: not granted read-write (the whole filesystem)");
		} else if (pol_strv_contains(&p->read_only, workdir)) {
			sv_log_kv(SV_LOG_WARN, COMP, "workdir_read_only",
				  "the policy lists the workdir read-only: kept read-only",
				  SV_KVS({"path", workdir}));
		} else {
			r = make_dirs_for_agent(workdir, sb->id.uid, sb->id.gid, err);
			if (r < 0)
				return r;
			r = pol_fs_add(p, true, workdir, err);
			if (r < 0) {
				sv_err_prefix(err, "--workdir");
				return r;
			}
		}
	}
	/* Missing read_write paths under /dev or /proc are not ours to create. */
	for (size_t i = 0; i < p->read_write.n; i++) {
		const char *path = p->read_write.v[i];
		if (path_exists(path) || strncmp(path, "/dev/", 5) == 0 ||
		    strncmp(path, "/proc/", 6) == 0)
			continue;
		r = make_dirs_for_agent(path, sb->id.uid, sb->id.gid, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int prepare_landlock(struct sv_sandbox *sb, struct sv_err *err)
{
	struct ll_spec spec;
	ll_spec_init(&spec);
	spec.read_only = (const char *const *)sb->policy.read_only.v;
	spec.n_read_only = sb->policy.read_only.n;
	spec.read_write = (const char *const *)sb->policy.read_write.v;
	spec.n_read_write = sb->policy.read_write.n;
	spec.compat = sb->policy.landlock_compat == POL_HARD_REQUIREMENT ? LL_HARD_REQUIREMENT
									 : LL_BEST_EFFORT;
	spec.root_fd = sb->fence.root_fd; /* -1 without a fence */
	return ll_prepare(&spec, &sb->landlock, err);
}

static int prepare_fence(struct sv_sandbox *sb, const char *workdir, struct sv_err *err)
{
	const struct sv_fence_spec spec = {
	    .read_only = (const char *const *)sb->policy.read_only.v,
	    .n_read_only = sb->policy.read_only.n,
	    .read_write = (const char *const *)sb->policy.read_write.v,
	    .n_read_write = sb->policy.read_write.n,
	    .hard = sb->policy.landlock_compat == POL_HARD_REQUIREMENT,
	    .workdir = workdir,
	};
	return sv_fence_prepare(&sb->fence, &spec, err);
}

static int resolve_identity(struct sv_sandbox *sb, const char *workdir, struct sv_err *err)
{
	struct sv_identity_input in;
	memset(&in, 0, sizeof(in));
	sv_identity_input_from_env(&in);
	in.run_as_user = sb->policy.run_as_user;
	in.run_as_group = sb->policy.run_as_group;
	in.root = "/";
	in.workdir = workdir;
	return sv_identity_resolve(&in, &sb->id, err); /* logs identity_resolved */
}

int sv_sandbox_prepare(struct sv_sandbox *sb, const struct sv_sandbox_opts *o, struct sv_err *err)
{
	memset(sb, 0, sizeof(*sb));
	pol_init(&sb->policy);
	sb->landlock.ruleset_fd = -1;
	sb->fence = (struct sv_fence)SV_FENCE_INIT;
	sb->netns = (struct nns)NNS_INIT;

	int r = 0;
	bool gateway = o->policy != NULL;
	if (gateway) {
		sb->policy = *o->policy; /* moved */
		pol_init(o->policy);
	} else if ((r = pol_load(o->policy_file, NULL, &sb->policy, err)) < 0) {
		return r;
	}
	unsigned flags = !gateway || sb->policy.n_rules ? POL_ENRICH_PROXY : 0;
	r = pol_enrich(&sb->policy, "/", flags, err);
	if (r >= 0) /* pol_enrich returns how many paths it added */
		r = add_baseline(&sb->policy, err);
	/* The agent's root mirrors ours: a rule naming a symlink also matches its target. */
	if (r >= 0 && (r = pol_resolve_binaries(&sb->policy, "/")) < 0)
		sv_err_set(err, -r, "binary paths: out of memory");
	if (r < 0) {
		sv_err_prefix(err, "policy baseline");
		return r;
	}
	sv_log_kv(SV_LOG_INFO, COMP, "policy_loaded", "policy in force",
		  SV_KVS({"source", sb->policy.source},
			 {"landlock", sb->policy.landlock_compat == POL_HARD_REQUIREMENT
					      ? "hard_requirement"
					      : "best_effort"}));
	if ((r = resolve_identity(sb, o->workdir, err)) < 0)
		return r;
	if ((r = prepare_filesystem(sb, o->workdir, err)) < 0)
		return r;
	if ((r = sv_identity_plan_init(&sb->plan, &sb->id, err)) < 0)
		return r;
	/* Never a silent fallback to the container's network (contract §13 fix 1). */
	if ((r = nns_create(&sb->netns, err)) < 0) {
		sv_err_prefix(err, "network namespace (the agent is never given the container's "
				   "network)");
		return r;
	}
	/* The fence first: Landlock's rules must name the inodes the agent will see there. */
	if ((r = prepare_fence(sb, o->workdir, err)) < 0)
		return r;
	if ((r = prepare_landlock(sb, err)) < 0) {
		sv_err_prefix(err, "landlock (hard_requirement)");
		return r;
	}
	unsigned int sc_opts = o->notify_connect ? SV_SECCOMP_NOTIFY_CONNECT : 0;
	if ((r = sv_seccomp_build_agent(&sb->seccomp, sc_opts, err)) < 0) {
		sv_err_prefix(err, "seccomp");
		return r;
	}
	return 0;
}

int sv_sandbox_child_hook(void *ctx, struct sv_err *err)
{
	const struct sv_sandbox *sb = ctx;
	/* First: setns needs CAP_SYS_ADMIN, and the agent filter denies it. */
	int r = nns_join(&sb->netns);
	if (r < 0)
		return sv_err_set(err, r, "cannot join the agent network namespace");
	/* Then the mount fence: setns and chroot need the capabilities the drop takes away. */
	if ((r = sv_fence_enter(&sb->fence, err)) < 0)
		return r;
	r = sv_identity_drop(&sb->plan, err);
	if (r < 0)
		return r;
	if ((r = sv_identity_harden(err)) < 0)
		return r;
	r = ll_enforce(&sb->landlock, err);
	if (r < 0) {
		if (sb->landlock.compat == LL_HARD_REQUIREMENT)
			return r;
		/* best_effort: said loudly, then carry on (the writer is one write(2), fork-safe). */
		sv_log_ocsf("FINDING:OPEN", SV_SEV_HIGH, "DEGRADED", "landlock_enforce_failed",
			    err->msg, NULL, 0);
	}
	/* Last: after this, only exec. The filter denies adding another one. */
	r = sv_seccomp_install(&sb->seccomp, false, err);
	if (r <= 0)
		return r;
	/* A connect-notifying filter: PID 1's monitor gets the listener before exec; without it
	 * every connect would fail (ENOSYS), so failing here is the honest answer. */
	int listener = r;
	r = sv_spawn_child_pass_fd(listener);
	close(listener);
	if (r < 0)
		return sv_err_set(err, -r, "cannot hand the seccomp listener to the supervisor");
	return 0;
}

void sv_sandbox_free(struct sv_sandbox *sb)
{
	nns_close(&sb->netns);
	sv_fence_close(&sb->fence);
	ll_prepared_close(&sb->landlock);
	sv_seccomp_prog_free(&sb->seccomp);
	pol_free(&sb->policy);
}
