/* The credential-substitution step of the in-tunnel relays (l7 contract §3.3, issue 14): called
 * on every parsed request head just before it is forwarded upstream, on L7 (REST) tunnels and on
 * the passthrough relay of terminated L4 tunnels.
 *
 * The default (px_l7_cred.c) changes nothing. It must never log a resolved value, and never
 * block: it runs on the proxy's event loop.
 */
#ifndef PX_L7_CRED_H
#define PX_L7_CRED_H

#include <stddef.h>
#include <stdint.h>

#include "netns/proxy/l7/px_l7.h"
#include "supervisor/err.h"

struct px_l7_cred_req {
	const char *host; /* the CONNECT host, lower case */
	uint16_t port;	  /* the CONNECT port */
	bool tls;	  /* the tunnel is terminated TLS */
	const struct px_l7_req *req;	 /* the parsed head as the agent sent it (borrowed) */
	const struct pol_endpoint *ep;	 /* the L7 endpoint chosen; NULL on the passthrough relay */
	const char *redacted_path;	 /* canonical path with placeholders as [CREDENTIAL] */
};

/* Rewrite the upstream head in @head (@len bytes, exactly what px_l7_req_rewrite produced,
 * CRLFCRLF included) in place; @cap bytes are writable. Returns the new length (== @len when
 * nothing changed), or: -EACCES → the relay answers 403 credential_endpoint_mismatch, any other
 * -errno → 500 credential_unavailable; the tunnel then closes and nothing goes upstream. @err
 * says why for the log (never a secret). */
int px_l7_cred_rewrite(const struct px_l7_cred_req *r, char *head, size_t len, size_t cap,
		       struct sv_err *err);

#endif
