/* The mount fence: the agent's own mount namespace, built once at setup, bubblewrap-style, in
 * which only the policy's paths exist (read_only ones bound read-only, recursively) over an
 * empty read-only tmpfs root, with a new procfs that hides other users' processes.
 *
 * It stands independently of Landlock: it also holds where Landlock is missing or old. Children
 * join it with sv_fence_enter() between fork and exec. Nothing here ever mounts in the
 * supervisor's own mount namespace: all mounting happens in a short-lived helper child.
 */
#ifndef SV_FENCE_H
#define SV_FENCE_H

#include <stdbool.h>
#include <stddef.h>

#include "supervisor/err.h"

/* One mount of the agent's view, in the order it is made (parents before children). */
struct sv_fence_mount {
	char *path; /* owned: canonical absolute path, the same in both views */
	bool rw;    /* writable bind; else recursively read-only */
	bool dir;   /* the source is a directory (else a file, device or socket) */
	bool proc;  /* a new procfs (hidepid=invisible) instead of a bind */
};

/* What the helper builds: computed in the parent (allocating), executed by the helper with
 * system calls only. */
struct sv_fence_plan {
	struct sv_fence_mount *mounts; /* owned */
	size_t n;
	char **skeleton; /* owned: tmpfs directories made as ancestors; each shows the symlinks of
			  * its source directory (merged-usr /bin, /dev/fd), nothing else */
	size_t n_skeleton;
	size_t n_missing; /* policy paths that do not exist (skipped, as Landlock skips them) */
	char *workdir_stub; /* owned or NULL: the workdir when no policy path shows it; made an
			     * empty directory so the agent can start there, as it can under
			     * Landlock (which lets it chdir but not read) */
};

struct sv_fence_spec {
	const char *const *read_only; /* borrowed absolute paths */
	size_t n_read_only;
	const char *const *read_write; /* borrowed absolute paths */
	size_t n_read_write;
	bool hard; /* hard_requirement: a fence that cannot be built refuses the start */
	const char *workdir; /* borrowed or NULL: where children start */
	/* Optional: called once in the parent while the helper child builds the namespace (start-up
	 * work that does not depend on it, such as the network namespace), never after fork in the
	 * child. Not called when no helper runs: the caller checks for that. */
	void (*overlap)(void *ctx);
	void *overlap_ctx;
};

#define SV_FENCE_SEEN_MAX 1024

struct sv_fence {
	int mntns_fd;	      /* owned, O_CLOEXEC: the agent's mount namespace; -1: no fence */
	int root_fd;	      /* owned, O_PATH: the agent's root directory inside it */
	bool proc_restricted; /* /proc is a new procfs with hidepid=invisible */
	size_t n_mounts;
	/* The agent's root as the supervisor's /proc names it ("/proc/<agent>/root" reads this,
	 * "" when it is "/"): the kernel prefixes it to every path of an agent process read
	 * from outside (/proc/<pid>/exe), since the fence's mounts are not reachable from the
	 * supervisor's root. Strip it to get the path the agent sees. */
	char root_seen[SV_FENCE_SEEN_MAX];
};

#define SV_FENCE_INIT {.mntns_fd = -1, .root_fd = -1}

/* Build the plan from the policy lists: each path resolved with realpath (paths under /proc
 * are taken as /proc itself), merged (read_write wins, as Landlock's union does), nested
 * entries dropped where their ancestor already gives the same or more access, ordered parents
 * first. Missing paths are counted and skipped. */
int sv_fence_plan_build(const struct sv_fence_spec *spec, struct sv_fence_plan *plan,
			struct sv_err *err);
void sv_fence_plan_free(struct sv_fence_plan *plan);

/* At setup, as root, single-threaded, before the supervisor's seccomp prelude: build the
 * agent's mount namespace in a helper child and keep an fd to it. @f is always initialised.
 * When mount namespaces or bind mounts are refused: best_effort returns 0 with no fence and
 * a HIGH finding (mount_fence_unavailable); hard returns -errno with @err saying why. A /proc
 * that cannot be remounted with hidepid is bound as it is, with a HIGH finding
 * (proc_unrestricted), under either setting. */
int sv_fence_prepare(struct sv_fence *f, const struct sv_fence_spec *spec, struct sv_err *err);

/* In the child, before the privilege drop (setns and chroot need CAP_SYS_ADMIN and
 * CAP_SYS_CHROOT): join the agent's mount namespace and chroot into the agent's root there;
 * the working directory is then that root, so chdir to the workdir afterwards. No-op without
 * a fence. Async-signal-safe. */
int sv_fence_enter(const struct sv_fence *f, struct sv_err *err);

void sv_fence_close(struct sv_fence *f);

#endif
