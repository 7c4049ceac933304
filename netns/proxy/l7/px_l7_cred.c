/* The credential step of the in-tunnel relays (px_l7_cred.h): every head about to go upstream
 * is handed to px_cred_rewrite_inplace with the proxy's current store (px_creds.h), the CONNECT
 * host and port and the wall clock (l7 contract §3.3, §3.4; docs/credentials.md).
 *
 * Must never log or keep a credential: the error text names only the location.
 */
#include "netns/proxy/l7/px_l7_cred.h"

#include <errno.h>
#include <time.h>

#include "netns/proxy/l7/px_cred.h"
#include "netns/proxy/px_creds.h"

/* credential_expires_at_ms is wall-clock epoch milliseconds. */
static int64_t wall_ms(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
		return INT64_MAX; /* no clock: every expiring value counts as expired */
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int px_l7_cred_rewrite(const struct px_l7_cred_req *r, char *head, size_t len, size_t cap,
		       struct sv_err *err)
{
	const struct px_cred_scope scope = {.host = r->host, .port = r->port, .now_ms = wall_ms()};
	struct px_cred_stats st = {0};
	int n = px_cred_rewrite_inplace(px_creds_current(), &scope, head, len, cap, &st);
	if (n >= 0)
		return n;
	const char *where = st.location ? st.location : "request head";
	switch (n) {
	case PX_CRED_E_MISMATCH:
		return sv_err_set(err, EACCES,
				  "credential placeholder in the %s is not bound to "
				  "this endpoint",
				  where);
	case PX_CRED_E_UNAVAIL:
		return sv_err_set(err, ENOENT,
				  "credential placeholder in the %s could not be "
				  "resolved",
				  where);
	case -ENOBUFS:
		return sv_err_set(err, ENOBUFS,
				  "request head too large after credential "
				  "substitution");
	default:
		return sv_err_set(err, -n,
				  "credential substitution failed: the head does not "
				  "parse");
	}
}
