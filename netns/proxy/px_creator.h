/* Egress proxy: who created each connection to the proxy, recorded in PID 1 when the agent
 * called connect(2) (its seccomp monitor, supervisor/isolation/connmon.c), taken once by PID 1's
 * identity answer for that connection (px_parent.c), and judged by the proxy process beside the
 * current holders (issue 17 item 1: a socket cannot borrow another binary's name).
 *
 * A bounded table (PX_CREATOR_CAP entries, PX_CREATOR_TTL_MS, oldest evicted): losing a record
 * only ever denies. Thread-safe (one mutex). Never blocks on I/O.
 */
#ifndef PX_CREATOR_H
#define PX_CREATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "netns/proxy/px_ident.h"

struct pol_policy;

#define PX_CREATOR_CAP	     2048
#define PX_CREATOR_TTL_MS    (10ULL * 60 * 1000) /* connect → request head; older records go */
#define PX_CREATOR_BYTES_MAX 16384	      /* exe + ancestor paths of one record */

/* The deny reason when a connection has no record (exact; tests match it). */
#define PX_CREATOR_REASON_NONE "connection was not made through the sandbox's monitored connect"

/* What is known of a connection's creator. 0 is "no record": the safe default of a zeroed
 * answer. Anything but PX_CREATOR_FOUND (and FOUND with too_long) denies. */
enum px_creator_state {
	PX_CREATOR_MISSING = 0,	 /* the monitor runs and recorded nothing for this socket */
	PX_CREATOR_UNAVAILABLE, /* the monitor cannot run here (no seccomp user notification) */
	PX_CREATOR_FOUND,
};

/* The deny reason when connects cannot be monitored at all (exact; tests match it). */
#define PX_CREATOR_REASON_UNAVAILABLE                                                          \
	"connection creator unknown: this kernel offers no connect monitor (seccomp user "     \
	"notification)"

/* One record, owned by the caller of px_ident_creator_lookup; free with px_creator_release. */
struct px_creator {
	unsigned long long cookie; /* SO_COOKIE of the socket */
	unsigned long long inode;  /* its sockfs inode */
	pid_t pid;		   /* the thread that called connect(2) */
	bool too_long;		   /* the paths did not fit PX_CREATOR_BYTES_MAX: judge as denied */
	const char *exe;	   /* its executable (into buf) */
	const char *ancestors[PX_IDENT_ANCESTORS_MAX]; /* nearest first (into buf) */
	size_t n_ancestors;
	char *buf;
};

/* Record that @id (exe and ancestors of the caller of connect) created the socket @cookie /
 * @inode at @now_ms. The first record of a socket wins (a later connect on the same socket by
 * another binary changes nothing); a record with the same inode and another cookie is a dead
 * socket's and is replaced. Returns 0, -EEXIST (already recorded) or -ENOMEM. */
int px_creator_put(const struct px_ident *id, pid_t pid, unsigned long long cookie,
		   unsigned long long inode, uint64_t now_ms);

/* Take (remove and return) the record of the socket @inode, which must also carry @cookie when
 * @cookie is not 0 (sock_diag knew it). Returns 0 with @out filled, or -ENOENT (none, expired,
 * or another socket's). */
int px_ident_creator_lookup(unsigned long long inode, unsigned long long cookie, uint64_t now_ms,
			    struct px_creator *out);

void px_creator_release(struct px_creator *c);

/* Is the connect monitor running (set once by PID 1 at setup)? Default true: a process that
 * never says (the proxy process, unit tests) finds no records and denies. */
void px_creator_set_monitored(bool on);

/* What PID 1 answers for the socket @inode/@cookie: PX_CREATOR_UNAVAILABLE when not monitored,
 * else px_ident_creator_lookup's record (FOUND, @out owned) or MISSING. */
enum px_creator_state px_creator_take(unsigned long long inode, unsigned long long cookie,
				      uint64_t now_ms, struct px_creator *out);

/* A record from its parts (an identity answer decoded by the proxy process): paths copied.
 * Returns 0 or -ENOMEM (then @out is released). */
int px_creator_from(struct px_creator *out, pid_t pid, bool too_long, const char *exe,
		    const char *const *ancestors, size_t n_ancestors);

/* The creator check of one request for @host:@port under @pol (NULL: deny all): true when
 * @st is FOUND, the record is complete and the policy allows its exe and ancestors there.
 * Otherwise false and @reason (@size bytes) says why, naming the creator when known. */
bool px_creator_allowed(enum px_creator_state st, const struct px_creator *c,
			const struct pol_policy *pol, const char *host, uint16_t port, char *reason,
			size_t size);

/* Records held now (expired ones included until they are evicted). */
size_t px_creator_count(void);

/* Drop every record (tests, and a policy reload never needs it). */
void px_creator_reset(void);

#endif
