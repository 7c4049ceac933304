/* PID 1's connect monitor: seccomp user notifications for the agent's connect(2) calls.
 *
 * One thread (never the event loop) reads every sandboxed child's listener, records who made
 * each connection to the egress proxy (netns/proxy/px_creator.h), and always lets the call
 * proceed (SECCOMP_USER_NOTIF_FLAG_CONTINUE): it must never deny, delay on the agent's behalf
 * beyond its own reads, or touch anything but the caller's sockaddr and socket.
 */
#ifndef SV_CONNMON_H
#define SV_CONNMON_H

#include <stdbool.h>

#include "supervisor/err.h"

/* Test-only: "1" runs the sandbox as on a kernel without user notification (no monitor; the
 * proxy then denies every request). It can only take the monitor away. */
#define SV_CONNMON_TEST_OFF_ENV "OPENSHELL_TEST_NO_CONNECT_MONITOR"

/* Does this kernel offer what the monitor needs (user notification with CONTINUE, 5.5+)?
 * Cheap: two seccomp() queries, no filter installed. */
bool sv_connmon_supported(void);

/* Start the thread (after the capability drop: it inherits the kept set). Listeners handed
 * to sv_connmon_add from then on are served. Returns 0 or -errno. Idempotent. */
int sv_connmon_start(struct sv_err *err);

/* Take ownership of a listener fd (the spawn fd sink). Non-blocking: one epoll_ctl. */
void sv_connmon_add(int fd);

/* Proxy connections recorded, notifications answered, and failures since start. */
struct sv_connmon_stats {
	unsigned long long notifications;
	unsigned long long recorded;
	unsigned long long failed;
};
void sv_connmon_stats(struct sv_connmon_stats *out);

/* Does @addr (@len bytes, as passed to connect) name the egress proxy, 10.200.0.1:3128, as IPv4
 * or v4-mapped IPv6? Exposed for tests. */
bool sv_connmon_is_proxy(const void *addr, unsigned int len);

#endif
