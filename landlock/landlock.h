/* Landlock filesystem and IPC sandboxing for agent children (contract §4, §13 fixes 5-8).
 *
 * Two phases: ll_prepare() runs in the parent as root, opens every path O_PATH and builds the
 * ruleset; ll_enforce() runs in the child after the privilege drop and only restricts itself.
 * This module never drops a whole ruleset because one path failed, and never degrades silently.
 */
#ifndef LL_LANDLOCK_H
#define LL_LANDLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "supervisor/err.h"

/* Filesystem rights, the kernel's LANDLOCK_ACCESS_FS_* bits, grouped by the ABI adding them. */
#define LL_FS_EXECUTE	 (1ULL << 0)
#define LL_FS_WRITE_FILE (1ULL << 1)
#define LL_FS_READ_FILE	 (1ULL << 2)
#define LL_FS_READ_DIR	 (1ULL << 3)
#define LL_FS_REFER	 (1ULL << 13)	    /* ABI 2: cross-directory rename and link */
#define LL_FS_TRUNCATE	 (1ULL << 14)	    /* ABI 3 */
#define LL_FS_IOCTL_DEV	 (1ULL << 15)	    /* ABI 5 */
#define LL_FS_V1	 ((1ULL << 13) - 1) /* execute .. make_sym */
#define LL_FS_V2	 (LL_FS_V1 | LL_FS_REFER)
#define LL_FS_V3	 (LL_FS_V2 | LL_FS_TRUNCATE)
#define LL_FS_ALL	 (LL_FS_V3 | LL_FS_IOCTL_DEV)
/* What hard_requirement insists on: OpenShell's fixed V2 set. Rights and scopes of later ABIs
 * are used when the kernel has them and reported as a HIGH finding when it does not. */
#define LL_FS_HARD_FLOOR LL_FS_V2
/* What a read_only rule grants on a directory, and on any other inode (contract §4). */
#define LL_FS_RO_DIR  (LL_FS_EXECUTE | LL_FS_READ_FILE | LL_FS_READ_DIR)
#define LL_FS_RO_FILE (LL_FS_EXECUTE | LL_FS_READ_FILE)
/* The only rights the kernel accepts on a non-directory rule. */
#define LL_FS_FILE_MASK \
	(LL_FS_EXECUTE | LL_FS_WRITE_FILE | LL_FS_READ_FILE | LL_FS_TRUNCATE | LL_FS_IOCTL_DEV)

/* IPC scopes (ABI 6), the kernel's LANDLOCK_SCOPE_* bits. */
#define LL_SCOPE_ABSTRACT_UNIX (1ULL << 0) /* no connect to abstract sockets made outside */
#define LL_SCOPE_SIGNAL	       (1ULL << 1) /* no signals to processes outside the domain */
#define LL_SCOPE_ALL	       (LL_SCOPE_ABSTRACT_UNIX | LL_SCOPE_SIGNAL)

/* Audit of denials (ABI 7), the kernel's LANDLOCK_RESTRICT_SELF_LOG_* flags. The default (0)
 * is the kernel's: denials between restrict and exec (the supervisor's own exec of the agent)
 * are audited, the agent's own denials after exec are not, because an exploring agent would
 * flood the host's audit log. Audit is observability: a kernel without it never fails a
 * hard_requirement. */
#define LL_AUDIT_SAME_EXEC_OFF	(1U << 0)
#define LL_AUDIT_NEW_EXEC_ON	(1U << 1)
#define LL_AUDIT_SUBDOMAINS_OFF (1U << 2)
#define LL_AUDIT_ALL		(LL_AUDIT_SAME_EXEC_OFF | LL_AUDIT_NEW_EXEC_ON | LL_AUDIT_SUBDOMAINS_OFF)

/* The newest ABI whose features this module knows (7: audit flags, Linux 6.15). */
#define LL_ABI_KNOWN 7

enum ll_compat {
	LL_BEST_EFFORT = 0,  /* degrade with a HIGH finding naming what is missing */
	LL_HARD_REQUIREMENT, /* refuse: no Landlock, a path, no rules, or an ABI 2 right missing */
};

/* What to enforce. Fill with ll_spec_init() first, then set the paths. */
struct ll_spec {
	const char *const *read_only; /* borrowed, n_read_only absolute paths */
	size_t n_read_only;
	const char *const *read_write; /* borrowed, n_read_write absolute paths */
	size_t n_read_write;
	enum ll_compat compat;
	uint64_t fs_rights; /* LL_FS_* to handle; default LL_FS_ALL. Network rights are never
			     * handled here: handling TCP without port rules would block all TCP. */
	uint64_t scopes;    /* LL_SCOPE_*; default LL_SCOPE_ALL */
	unsigned int audit; /* LL_AUDIT_*; default 0 (see above) */
	int max_abi;	    /* 0: use what the kernel offers; N: behave as if it offered at most
			     * ABI N (pin to upstream's V2, or exercise old-kernel paths) */
	int root_fd;	    /* -1 (default): open paths in this process's view; else resolve
			     * them beneath this directory (the mount fence's root), so rules
			     * name the inodes the agent will see (its own /proc) */
};

#define LL_SKIPPED_MAX 1024

/* What will be enforced, for logs and --self-test. */
struct ll_report {
	enum ll_compat compat;
	int kernel_abi; /* ABI the kernel reported, or -errno from the probe */
	int abi;	/* ABI in use (kernel_abi capped by max_abi); 0: none */
	bool enforced;	/* a ruleset will be applied by ll_enforce() */
	uint64_t fs_handled;
	uint64_t fs_missing; /* requested, not available */
	uint64_t scopes;
	uint64_t scopes_missing;
	unsigned int restrict_flags; /* passed to landlock_restrict_self */
	unsigned int audit_missing;  /* requested audit flags the ABI lacks */
	size_t n_rules;
	size_t n_skipped;
	char skipped[LL_SKIPPED_MAX]; /* "path (reason), ..." possibly truncated with "..." */
};

/* The parent's handle on a built ruleset. Safe to enforce in many children. */
struct ll_prepared {
	int ruleset_fd; /* owned, O_CLOEXEC; -1: nothing to enforce */
	unsigned int restrict_flags;
	enum ll_compat compat;
	struct ll_report report;
};

/* Defaults: best_effort, LL_FS_ALL, LL_SCOPE_ALL, kernel audit defaults, no paths. */
void ll_spec_init(struct ll_spec *spec);

/* The running Landlock ABI (>= 1), or -ENOSYS (not built into this kernel, or a filter
 * pretending so), -EOPNOTSUPP (built in, disabled at boot), -EPERM (blocked, likely by a
 * seccomp profile) or another -errno, with @err saying which. */
int ll_abi_probe(struct sv_err *err);

/* Phase 1, in the parent as root before any privilege drop: probe, negotiate, open each path
 * O_PATH|O_CLOEXEC, add one rule per path with rights chosen by inode type. @out is always
 * initialised (close it with ll_prepared_close even on failure). best_effort: returns 0 and
 * logs HIGH findings (landlock_unavailable, landlock_degraded) when something is missing;
 * out->report.enforced says whether anything will be enforced. hard_requirement: returns
 * -errno with @err naming what is missing when Landlock is unavailable, a path cannot be
 * opened, no rule remains or a right of LL_FS_HARD_FLOOR is missing; rights and scopes above
 * ABI 2 are a HIGH finding (landlock_degraded) under both settings. */
int ll_prepare(const struct ll_spec *spec, struct ll_prepared *out, struct sv_err *err);

/* Phase 2, in the child after the privilege drop, before seccomp and exec. Async-signal-safe:
 * sets PR_SET_NO_NEW_PRIVS if not set yet and calls landlock_restrict_self. Returns 0 (also
 * when @p holds nothing to enforce) or -errno with @err filled; it never logs. On failure a
 * best_effort caller (p->compat) may continue after reporting landlock_enforce_failed; a
 * hard_requirement caller must not exec. */
int ll_enforce(const struct ll_prepared *p, struct sv_err *err);

/* In the parent once no more children will be spawned with @p. Idempotent. */
void ll_prepared_close(struct ll_prepared *p);

/* One-line summary: "abi=7 enforced=yes compat=best_effort fs=... scopes=... rules=9 ...". */
size_t ll_report_format(const struct ll_report *r, char *buf, size_t size);

/* Names of LL_FS_* bits ("execute,read_file"), or "none". */
size_t ll_fs_names(uint64_t rights, char *buf, size_t size);

/* --self-test: fork a child that restricts itself (READ_FILE|READ_DIR handled, one rule for
 * /dev/null) and checks /dev/null still opens while "/" and /proc/self/status (readable by
 * file mode a moment earlier) are denied with EACCES. Returns the number of denials seen (1
 * or 2; /proc may be absent) when Landlock denied as it must, -errno otherwise with @err
 * saying what happened (-ENOTRECOVERABLE: a denied path opened). */
int ll_selftest_denied_open(struct sv_err *err);

#endif
