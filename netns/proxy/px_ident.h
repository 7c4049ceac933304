/* Egress proxy: which binary is on the other end of an accepted connection (contract §8
 * "Binary identity", §13 fixes 18 and 19), decided from the kernel's facts in /proc only.
 *
 * Private to netns/. Never trusts what the agent says about itself (argv, cmdline, environment,
 * its own view of paths). Every call does blocking /proc reads and may take milliseconds: call
 * it from a worker thread, never from the event loop. Thread-safe: no static buffers, no globals.
 */
#ifndef PX_IDENT_H
#define PX_IDENT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "supervisor/err.h"

/* §8: "ancestors via PPid: up to 64 levels". */
#define PX_IDENT_ANCESTORS_MAX 64
/* Longest executable path kept (the kernel's PATH_MAX); longer fails closed. */
#define PX_IDENT_PATH_MAX 4096
/* Deny reasons are sv_err messages. */
#define PX_IDENT_REASON_MAX SV_ERR_MSG_MAX
/* Owner PIDs remembered for logs; every owner is still checked (§13 fix 19). */
#define PX_IDENT_OWNERS_MAX 16

/* Work bounds of one resolution (ours; §8 is silent). The fd tables of the sandbox's processes
 * are read fewest open files first; a table longer than PX_IDENT_MAX_FDS_PER_PROC, or than what
 * is left of PX_IDENT_MAX_FDS_TOTAL for this request, is not read. If the socket was found in
 * the tables read, the decision stands on those owners (px_ident.n_unexamined counts the
 * tables left out: the largest ones). If it was not, the lookup fails closed (-E2BIG): only a
 * process holding more open files than the others can cause that, for its own connections; no
 * number of processes holding many files can make another process's lookup fail (issue 17). */
#define PX_IDENT_MAX_PROCS	  16384 /* processes examined (descendants + the rest of /proc) */
#define PX_IDENT_MAX_FDS_PER_PROC 65536 /* entries of one /proc/<pid>/fd */
#define PX_IDENT_MAX_FDS_TOTAL	  65536 /* fd links listed in one resolution */

/* The fixed deny reasons of §8, exact. Other failures start with "failed to resolve peer
 * binary" as upstream's do. */
#define PX_IDENT_REASON_NOT_SPAWNED "entrypoint process not yet spawned"
#define PX_IDENT_REASON_AMBIGUOUS   "ambiguous shared socket ownership"

/* One running executable. */
struct px_ident_bin {
	pid_t pid; /* the process running it */
	dev_t dev; /* the running image's inode (stat of /proc/<pid>/exe) */
	ino_t ino;
	bool deleted; /* the kernel marked the link " (deleted)" and the suffix was removed */
	char path[PX_IDENT_PATH_MAX]; /* readlink /proc/<pid>/exe, as the process's root sees it */
};

/* The identity of a connection: ~270 KiB, so allocate it on the heap (a musl thread has a 128 KiB
 * stack). Filled by px_ident_resolve(). */
struct px_ident {
	unsigned long long inode;  /* the client socket's inode */
	unsigned long long cookie; /* its socket cookie (sock_diag), 0 when the /proc table said */
	struct px_ident_bin exe;  /* the owner with the lowest PID (all owners are equivalent) */
	size_t n_ancestors;	  /* parent first, up to the entrypoint (included) or PID 1 (not) */
	struct px_ident_bin ancestors[PX_IDENT_ANCESTORS_MAX];
	size_t n_owners; /* processes holding the socket (may exceed PX_IDENT_OWNERS_MAX) */
	size_t n_unexamined; /* processes whose fd tables were past the work bounds (see above) */
	pid_t owners[PX_IDENT_OWNERS_MAX]; /* the lowest PIDs among them, ascending */
	char reason[PX_IDENT_REASON_MAX];  /* on failure: the deny reason, else "" */
};

/* A NETLINK_SOCK_DIAG socket in the namespace of @sock_in_ns (the proxy listener: the agent's
 * namespace), made by a short-lived thread that joins it (CAP_SYS_ADMIN, CAP_NET_ADMIN), so the
 * caller never moves. Thread-safe lookups. Returns 0 and *@out (free with px_diag_close) or
 * -errno with @err naming the step; callers then fall back to the /proc tables. */
struct px_diag;
int px_diag_open(int sock_in_ns, struct px_diag **out, struct sv_err *err);
void px_diag_close(struct px_diag *d);

/* The inode (and socket cookie, the SO_COOKIE value, into @cookie when not NULL) of the
 * ESTABLISHED connection local==@client, remote==@proxy: one exact inet_diag
 * lookup (v4-mapped addresses asked as IPv4). 0, -ENOENT (no such connection, or not
 * ESTABLISHED), or -errno (netlink failure: fall back to px_ident_socket_inode). */
int px_diag_socket_inode(struct px_diag *d, const struct sockaddr *client, socklen_t client_len,
			 const struct sockaddr *proxy, socklen_t proxy_len,
			 unsigned long long *inode, unsigned long long *cookie, struct sv_err *err);

/* Where a resolution looks. All optional (a NULL context: the /proc tables and no scope). */
struct px_ident_ctx {
	struct px_diag *diag; /* socket inode through sock_diag instead of /proc/<pid>/net/tcp */
	pid_t scope;	      /* the supervisor's PID: its descendants are the sandbox */
	pid_t helper;	      /* the proxy process (0: none): holds only the proxy's own ends of
			       * connections, so its fd table is never read */
};

/* Resolve the identity of the agent-side end of an accepted connection.
 *
 * @entrypoint is the agent's main PID (0 when not spawned yet: fails with -ESRCH and the reason
 * PX_IDENT_REASON_NOT_SPAWNED). @client is the accepted socket's peer address (getpeername) and
 * @proxy its local address (getsockname), IPv4 or IPv6; v4-mapped IPv6 equals IPv4.
 *
 * Steps (§8): find the socket inode of the ESTABLISHED connection local==@client,
 * remote==@proxy (through @ctx->diag, else the rows of /proc/<entrypoint>/net/tcp, then tcp6);
 * find every process holding "socket:[inode]": the entrypoint's descendants breadth-first
 * through /proc/<pid>/task/<tid>/children and the other descendants of @ctx->scope (not
 * @ctx->scope itself), their fd tables read fewest open files first within the work bounds;
 * only when none of those holds it and all were read, @ctx->scope and every other
 * /proc/<pid> (a socket passed out of the sandbox); for each owner, the executable
 * (" (deleted)" removed only when the kernel added it, fix 18) and its ancestors (parents up
 * to the entrypoint, included, or up to PID 1 or @ctx->scope, both excluded). Owners that
 * would not be judged alike by policy fail with PX_IDENT_REASON_AMBIGUOUS (fix 19): alike means
 * the same running executable (path and inode) and the same set of ancestor executables once
 * the owner's own executable is left out, so a fork() child still running its parent's image
 * matches its parent, while an inherited socket in a process that exec'd something else does
 * not. A process whose fd table cannot be read (EACCES: no CAP_SYS_PTRACE) fails closed.
 *
 * Returns 0 and fills @out (borrowed, caller-allocated), or -errno with @out->reason and @err
 * (may be NULL) set to the deny reason: -ESRCH not spawned, -ENOENT no such connection or no
 * owner, -ENOTUNIQ ambiguous, -E2BIG a work bound was hit, -ESTALE a process changed while
 * being read, other -errno from /proc. */
int px_ident_resolve(const struct px_ident_ctx *ctx, pid_t entrypoint,
		     const struct sockaddr *client, socklen_t client_len,
		     const struct sockaddr *proxy, socklen_t proxy_len, struct px_ident *out,
		     struct sv_err *err);

/* The socket inode of the ESTABLISHED connection local==@client, remote==@proxy as seen in
 * @netns_pid's network namespace (/proc/<netns_pid>/net/tcp, then tcp6). Returns 0, -ENOENT
 * (no such row), -EAFNOSUPPORT/-EINVAL (bad address) or -errno (neither table readable). */
int px_ident_socket_inode(pid_t netns_pid, const struct sockaddr *client, socklen_t client_len,
			  const struct sockaddr *proxy, socklen_t proxy_len,
			  unsigned long long *inode, struct sv_err *err);

/* @out->exe and ->ancestors of @pid (a thread ID works too): parents up to PID 1 or @scope (the
 * supervisor), both excluded, as px_ident_resolve reads them for an owner. Blocking /proc reads.
 * Returns 0 or -errno (-ESTALE: reparented or exec'd meanwhile). */
int px_ident_lineage(pid_t pid, pid_t scope, struct px_ident *out, struct sv_err *err);

/* The executable @pid runs, into @out (borrowed). " (deleted)" is removed, and @out->deleted
 * set, only when the raw link target is not that very inode in the process's root (a live file
 * literally named "x (deleted)" keeps its name). Returns 0, -ESTALE if the process exec'd
 * meanwhile, -ENAMETOOLONG, or -errno. */
int px_ident_exe_read(pid_t pid, struct px_ident_bin *out, struct sv_err *err);

/* The agent's root as this process's /proc names it (sv_fence.root_seen; "" or NULL: "/").
 * Agents run chrooted in the mount fence, so /proc/<pid>/exe read from outside is this prefix
 * plus the path the agent sees; px_ident_exe_read strips it. Set once at setup, before the
 * proxy starts; @prefix is copied. */
void px_ident_set_root_prefix(const char *prefix);

#endif
