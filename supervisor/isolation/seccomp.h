/* Seccomp filters: the agent's deny-list (contract §5.1) and the supervisor prelude (§5.2).
 *
 * Filters are compiled with libseccomp in the parent and kept as plain BPF, so installing one in
 * a forked child is two system calls and async-signal-safe. Never call libseccomp after fork;
 * install the agent filter last, right before exec. docs/security.md lists every rule and why.
 */
#ifndef SV_SECCOMP_H
#define SV_SECCOMP_H

#include <linux/filter.h>
#include <stdbool.h>

#include "supervisor/err.h"

/* Options for sv_seccomp_build_agent. SV_SECCOMP_LOG: install with SECCOMP_FILTER_FLAG_LOG so
 * EPERM/ENOSYS denials are audited too. SV_SECCOMP_DENY_INET: socket(AF_INET/AF_INET6) → EPERM
 * (network mode Block, §5.1; never for gateway policies). */
#define SV_SECCOMP_LOG	     (1U << 0)
#define SV_SECCOMP_DENY_INET (1U << 1)
/* SV_SECCOMP_NOTIFY_CONNECT: connect(2) → SECCOMP_RET_USER_NOTIF, installed with a listener that
 * the child hands to PID 1 (supervisor/isolation/connmon.h), and MSG_FASTOPEN sends → EOPNOTSUPP
 * (an implicit connect nobody would see). */
#define SV_SECCOMP_NOTIFY_CONNECT (1U << 2)

/* A compiled filter. prog.filter is owned (heap); free with sv_seccomp_prog_free. */
struct sv_seccomp_prog {
	struct sock_fprog prog;
	unsigned int flags; /* SECCOMP_FILTER_FLAG_* passed on install (LOG, NEW_LISTENER), TSYNC
			     * excluded */
};

/* Build the agent filter into @out (which is overwritten, not freed). Returns 0 or -errno. */
int sv_seccomp_build_agent(struct sv_seccomp_prog *out, unsigned int opts, struct sv_err *err);

/* Build the supervisor prelude filter into @out. Returns 0 or -errno. */
int sv_seccomp_build_prelude(struct sv_seccomp_prog *out, struct sv_err *err);

/* Build the proxy process's allow-list into @out (docs/security.md "The proxy process"):
 * default EPERM; its loop, sockets (AF_UNIX, AF_INET, AF_INET6), splice, threads (clone with
 * CLONE_THREAD and no CLONE_NEW*), read-only opens and getaddrinfo allowed; clone3 ENOSYS;
 * exec, ptrace, mounts, namespaces, modules, kexec, bpf, keys, io_uring, process_vm_* and
 * pidfd_getfd kill the process. Returns 0 or -errno. */
int sv_seccomp_build_proxy(struct sv_seccomp_prog *out, struct sv_err *err);

/* Set PR_SET_NO_NEW_PRIVS, then install @p on the calling thread, or on every thread of the
 * process when @tsync (which also gives every thread no_new_privs). Async-signal-safe: no
 * allocation, no libseccomp. Returns 0, or the user-notification listener fd (> 2, O_CLOEXEC,
 * the caller's to close) when @p was built with SV_SECCOMP_NOTIFY_CONNECT, or -errno (-ESRCH: a
 * thread could not be synchronised). */
int sv_seccomp_install(const struct sv_seccomp_prog *p, bool tsync, struct sv_err *err);

/* Build and install the prelude on every supervisor thread (TSYNC). Call once, after the
 * network namespace and other mount/bpf work is done and before any child or session exists.
 * Irreversible. Returns 0 or -errno; callers fail closed on error. */
int sv_seccomp_apply_supervisor_prelude(struct sv_err *err);

/* Release @p's program; @p may be zeroed or already freed. */
void sv_seccomp_prog_free(struct sv_seccomp_prog *p);

/* What --self-test learned about seccomp on this kernel. */
struct sv_seccomp_report {
	bool built;	   /* both filters compiled */
	bool agent_denies; /* agent filter: memfd_create/seccomp → EPERM, clone3 → ENOSYS */
	bool agent_allows; /* agent filter: getpid and an open of / still work */
	bool tsync;	   /* prelude with TSYNC reached a second thread (mount → EPERM there) */
	bool notify;	   /* connect(2) user notification round trip (recv, CONTINUE) works */
	int errnum;	   /* first failure (positive errno), 0 when every probe passed */
	char detail[SV_ERR_MSG_MAX]; /* what failed, empty when all passed */
	char notify_detail[SV_ERR_MSG_MAX]; /* why @notify is false (not counted as a failure) */
};

/* Probe in forked children; the calling process is never filtered. Waits for those children by
 * pid, so call it where no reaper thread runs (the --self-test command). Returns 0 when every
 * probe passed, else -errno of the first failure (details in @r). */
int sv_seccomp_selftest(struct sv_seccomp_report *r);

#endif
