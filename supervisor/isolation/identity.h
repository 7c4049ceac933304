/* The agent's identity (contract §6.1, §6.2): resolving who the agent runs as from the policy,
 * the driver's environment and the image's own /etc/passwd and /etc/group, and dropping to it
 * in the forked child.
 *
 * Resolution runs in the parent during setup and never trusts the image's account files: they
 * are read with hard bounds and never through NSS. The drop runs between fork and exec and must
 * stay async-signal-safe: no malloc, no stdio, no logging; everything it needs is in the plan.
 * Nothing here ever lets the agent run as root, with uid 0, gid 0 or group 0 among its groups.
 */
#ifndef SV_IDENTITY_H
#define SV_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "supervisor/err.h"

/* Bounds on the image's account files, contract §6.1 (upstream `SP/identity.rs`). */
#define SV_ACCT_FILE_MAX  1048576 /* bytes in /etc/passwd or /etc/group: 1 MiB */
#define SV_ACCT_LINE_MAX  8192	  /* bytes in one line, without its newline */
#define SV_ACCT_FIELD_MAX 1024	  /* bytes in one ':'-separated field */

#define SV_ID_MAX	   4294967294U /* highest usable uid/gid, contract §1.3 (u32::MAX - 1) */
#define SV_ID_GROUPS_MAX   64	       /* supplementary groups handed to the agent (ours) */
#define SV_ID_PATH_MAX	   4096	       /* HOME and account file paths */
#define SV_ID_CAP_FALLBACK 63	       /* highest capability tried when the kernel cannot say */

#define SV_ID_DEFAULT_USER    "sandbox"	 /* §6.1: omitted fields without driver input */
#define SV_ID_NUMERIC_HOME    "/sandbox" /* §6.2: HOME for numeric users */
#define SV_ID_DEFAULT_WORKDIR "/sandbox"

/* --- resolution (parent, setup phase) --------------------------------------------------- */

struct sv_identity_input {
	const char *run_as_user;  /* borrowed; policy process.run_as_user; NULL or "" = omitted */
	const char *run_as_group; /* borrowed; NULL or "" = omitted */
	const char *sandbox_uid;  /* OPENSHELL_SANDBOX_UID; NULL or "" = unset (Docker sets "") */
	const char *sandbox_gid;  /* OPENSHELL_SANDBOX_GID; NULL or "" = unset */
	const char *oci_user;	  /* OPENSHELL_OCI_IMAGE_USER; NULL = absent, "" = present, empty */
	const char *root;	  /* the image's root directory; NULL = "/" */
	const char *workdir;	  /* --workdir: HOME for OCI identities; NULL = "/sandbox" */
};

struct sv_identity {
	uid_t uid;
	gid_t gid;
	gid_t groups[SV_ID_GROUPS_MAX]; /* supplementary groups, sorted, no duplicates */
	size_t n_groups;
	bool numeric;			  /* the user was a number: no passwd entry needed */
	bool oci;			  /* a component came from the OCI USER declaration */
	char user[SV_ACCT_FIELD_MAX + 1]; /* USER for the agent */
	char home[SV_ID_PATH_MAX];	  /* HOME for the agent */
	char shell[16];			  /* SHELL for the agent */
	const char *source;		  /* static text naming where the identity came from */
};

/* Fill the driver fields of @in from the supervisor's environment (getenv). */
void sv_identity_input_from_env(struct sv_identity_input *in);

/* Decide the agent's identity (decision table in identity.c). Returns 0, or -errno with @err
 * naming the variable or policy field at fault; every form of root gives -EPERM and a message
 * starting "refusing to run the agent as root". */
int sv_identity_resolve(const struct sv_identity_input *in, struct sv_identity *out,
			struct sv_err *err);

/* --- HOME, USER, SHELL for the child environment (§6.2) ------------------------------------ */

struct sv_identity_env {
	const char *home; /* borrowed from the identity; NULL: OPENSHELL_USER_ENVIRONMENT has it */
	const char *user;
	const char *shell;
};

void sv_identity_env_values(const struct sv_identity *id, bool user_defines_home,
			    bool user_defines_user, bool user_defines_shell,
			    struct sv_identity_env *out);

/* --- the drop (child, between fork and exec) ----------------------------------------------- */

/* Everything the child needs, prepared in the parent; plain data, safe to use after fork. */
struct sv_identity_plan {
	uid_t uid;
	gid_t gid;
	gid_t groups[SV_ID_GROUPS_MAX];
	size_t n_groups;
	int cap_last;	     /* highest capability number the kernel knows */
	bool cap_last_exact; /* false: cap_last is SV_ID_CAP_FALLBACK; EINVAL above the real one
			      * is tolerated */
	bool securebits;     /* set and lock SECBIT_NOROOT, NO_CAP_AMBIENT_RAISE, KEEP_CAPS off */
	bool ambient;	     /* the kernel has ambient capabilities (Linux ≥ 4.3) */
};

/* Parent: copy @id into @plan, read /proc/sys/kernel/cap_last_cap and probe what the kernel
 * supports. Logs what it could not find. */
int sv_identity_plan_init(struct sv_identity_plan *plan, const struct sv_identity *id,
			  struct sv_err *err);

/* Child, as root: setgroups → setresgid (verified) → empty the capability bounding set →
 * securebits → setresuid (verified) → setuid(0) must fail → no ambient, inheritable, permitted
 * or effective capabilities left → sv_identity_harden. Any failed or unverifiable step returns
 * -errno with @err filled; the caller must then _exit without exec. Async-signal-safe. */
int sv_identity_drop(const struct sv_identity_plan *plan, struct sv_err *err);

/* Child: PR_SET_NO_NEW_PRIVS=1, RLIMIT_CORE 0/0, PR_SET_DUMPABLE=0, each verified (contract
 * §6.1 harden_child_process, §13 fix 14). Part of sv_identity_drop; exposed for children that
 * keep the supervisor's identity. Async-signal-safe. */
int sv_identity_harden(struct sv_err *err);

/* An sv_spawn hook: @plan is a const struct sv_identity_plan *. */
int sv_identity_hook(void *plan, struct sv_err *err);

/* --- the image's account files (passwd.c) ---------------------------------------------------- */

enum sv_acct_kind {
	SV_ACCT_PASSWD, /* name:passwd:uid:gid:gecos:dir:shell */
	SV_ACCT_GROUP,	/* name:passwd:gid:member,member */
};

struct sv_acct_file {
	enum sv_acct_kind kind;
	char path[SV_ID_PATH_MAX]; /* what was opened, for messages */
	char *buf;		   /* owned; the whole file */
	size_t len;
	bool missing;		/* the file does not exist: every lookup finds nothing */
	unsigned skipped;	/* malformed lines ignored */
	unsigned first_skipped; /* line number of the first of them, 0 if none */
};

struct sv_pwent {
	char name[SV_ACCT_FIELD_MAX + 1];
	uid_t uid;
	gid_t gid;
	char dir[SV_ACCT_FIELD_MAX + 1];
	unsigned line;
};

struct sv_grent {
	char name[SV_ACCT_FIELD_MAX + 1];
	gid_t gid;
	unsigned line;
};

/* Read <root>/<rel> (e.g. "etc/passwd"): a regular file, not a symlink, at most
 * SV_ACCT_FILE_MAX bytes. A missing file is not an error (f->missing). Counts malformed lines. */
int sv_acct_open(struct sv_acct_file *f, enum sv_acct_kind kind, const char *root, const char *rel,
		 struct sv_err *err);
void sv_acct_close(struct sv_acct_file *f);

/* Lookups return 1 when found, 0 when not, -errno on an ambiguous or malformed match (a
 * malformed or oversized line naming @name is an error, never silently skipped). */
int sv_passwd_find_name(const struct sv_acct_file *f, const char *name, struct sv_pwent *out,
			struct sv_err *err);
int sv_passwd_find_uid(const struct sv_acct_file *f, uid_t uid, struct sv_pwent *out,
		       struct sv_err *err);
int sv_group_find_name(const struct sv_acct_file *f, const char *name, struct sv_grent *out,
		       struct sv_err *err);
/* Append to @gids (capacity @max, *@n in use) every group listing @user as a member, without
 * duplicates. -E2BIG past @max; -EPERM when one of them is gid 0. */
int sv_group_memberships(const struct sv_acct_file *f, const char *user, gid_t *gids, size_t max,
			 size_t *n, struct sv_err *err);

/* Turning one user or group spec (a name or a number) into an id against the image's
 * accounts, reading each file on first need. @what names the input for messages
 * ("run_as_user"). "root", id 0 and names with id 0 give -EPERM ("refusing to run the agent
 * as root"); an unknown name -ENOENT; a malformed spec -EINVAL; a number past SV_ID_MAX
 * -ERANGE. */
struct sv_acct_ctx {
	const char *root; /* borrowed; the image root, NULL = "/" */
	struct sv_acct_file pw, gr;
	bool pw_open, gr_open;
};

struct sv_acct_user {
	uid_t uid;
	bool numeric;
	struct sv_pwent pw; /* named users: their passwd entry */
};

int sv_acct_parse_id(const char *v, const char *what, const char *kind, unsigned *out,
		     struct sv_err *err);
int sv_acct_user_lookup(struct sv_acct_ctx *c, const char *spec, const char *what,
			struct sv_acct_user *out, struct sv_err *err);
int sv_acct_group_lookup(struct sv_acct_ctx *c, const char *spec, const char *what, gid_t *out,
			 struct sv_err *err);
/* Open the passwd or group file if not yet open; the file is then c->pw or c->gr. */
int sv_acct_ctx_load(struct sv_acct_ctx *c, enum sv_acct_kind kind, struct sv_err *err);
void sv_acct_ctx_close(struct sv_acct_ctx *c);

#endif
