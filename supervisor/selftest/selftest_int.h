/* Private to the self-test: what selftest.c (runner, layer table, output), selftest_proc.c and
 * selftest_env.c (the probes) share. Never include it anywhere else; the public API is
 * selftest.h. Nothing declared here may change the calling process's state, except the probes,
 * which run only in a child forked by sv_selftest_fork_probe.
 */
#ifndef SV_SELFTEST_INT_H
#define SV_SELFTEST_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "selftest.h"

#define ST_WEAK	 SV_SELFTEST_WEAKER
#define ST_FATAL SV_SELFTEST_FATAL

/* What every probe may read: facts the parent gathered without changing anything. */
struct sv_selftest_ctx {
	pid_t pid;
	uid_t euid;
	int caps_errno; /* capget failed: no facts about capabilities */
	uint64_t eff, bnd;
	bool nnp; /* no_new_privs already set on the caller */
	bool require_pid_limit;
};

/* ---- helpers (selftest.c) ------------------------------------------------------------------ */

/* Fill @l's status, impact and reason (printf-style @fmt). */
void sv_selftest_set(struct sv_selftest_layer *l, enum sv_selftest_status s,
		     enum sv_selftest_impact impact, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Both actions; @hard NULL means the same as @be. */
void sv_selftest_act(struct sv_selftest_layer *l, const char *be, const char *hard);
/* Append @s to the fixed buffer @buf, keeping it NUL-terminated. */
void sv_selftest_cat(char *buf, size_t size, const char *s);
/* Read up to @size - 1 bytes of @path, NUL-terminated. Returns the length or -errno. */
ssize_t sv_selftest_read_file(const char *path, char *buf, size_t size);
/* A number from /proc/self/status ("Seccomp_filters"), or -1 when unknown. */
long sv_selftest_status_long(const char *key);
/* One line of a /proc/sys file, trailing white space cut; "" when unreadable. Returns @buf. */
const char *sv_selftest_sysctl(const char *path, char *buf, size_t size);
/* The capability mask bit of @cap. */
uint64_t sv_selftest_bit(int cap);

/* ---- probes: each runs in a probe child and fills @l; @arg picks a variant ------------------ */

/* selftest_proc.c */
void sv_selftest_probe_pid1(const struct sv_selftest_ctx *c, int arg, struct sv_selftest_layer *l);
void sv_selftest_probe_proc(const struct sv_selftest_ctx *c, int arg, struct sv_selftest_layer *l);
void sv_selftest_probe_caps(const struct sv_selftest_ctx *c, int arg, struct sv_selftest_layer *l);
void sv_selftest_probe_privdrop(const struct sv_selftest_ctx *c, int arg,
				struct sv_selftest_layer *l);
void sv_selftest_probe_nnp(const struct sv_selftest_ctx *c, int arg, struct sv_selftest_layer *l);
void sv_selftest_probe_seccomp(const struct sv_selftest_ctx *c, int arg,
			       struct sv_selftest_layer *l);
void sv_selftest_probe_landlock(const struct sv_selftest_ctx *c, int arg,
				struct sv_selftest_layer *l);

/* selftest_env.c; for the namespace probe @arg indexes userns, pidns, mountns, netns */
void sv_selftest_probe_ns(const struct sv_selftest_ctx *c, int arg, struct sv_selftest_layer *l);
void sv_selftest_probe_netlink(const struct sv_selftest_ctx *c, int arg,
			       struct sv_selftest_layer *l);
void sv_selftest_probe_pids(const struct sv_selftest_ctx *c, int arg, struct sv_selftest_layer *l);
void sv_selftest_probe_kmsg(const struct sv_selftest_ctx *c, int arg, struct sv_selftest_layer *l);
void sv_selftest_probe_gpu(const struct sv_selftest_ctx *c, int arg, struct sv_selftest_layer *l);

/* selftest_fence.c: the mount fence, pathname sockets outside the policy, /proc restriction */
void sv_selftest_probe_fence(const struct sv_selftest_ctx *c, int arg,
			     struct sv_selftest_layer *l);

#endif
