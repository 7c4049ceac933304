/* Private to session/ and its unit tests: what the log push queue holds right now.
 *
 * The push itself is declared in session/session.h (gw_logs_install/attach/detach); this only
 * exposes counters so a test can see the queue bound and the drop count without a gateway.
 */
#ifndef GW_LOGS_H
#define GW_LOGS_H

#include <stdbool.h>
#include <stddef.h>

#define GW_LOG_QUEUE_MAX 1024 /* contract §10: lines held while the gateway is slow or away */
#define GW_LOG_BATCH_MAX 50   /* lines per PushSandboxLogsRequest */

struct gw_logs_stats {
	size_t queued;	       /* lines waiting */
	unsigned long dropped; /* dropped since the last flush said so */
	bool disabled;	       /* UNAUTHENTICATED: off for good */
};

void gw_logs_stats(struct gw_logs_stats *out);

#endif
