/* Egress proxy: chaining through a corporate HTTP proxy (contract §1.2 --upstream-proxy*,
 * OpenShell's upstream_proxy.rs). PID 1 parses and checks the options and reads the credential
 * (px_upstream_new), sends the result to the proxy process (PX_MSG_UPSTREAM); there each allowed
 * dial goes to the upstream proxy with "CONNECT <validated ip>:<port>" (or the host name with
 * --upstream-proxy-connect-by-hostname) unless --upstream-no-proxy says direct.
 *
 * Private to netns/. Policy and SSRF decisions are never changed here: only where an already
 * validated destination is dialled. The credential never reaches a log line or an error.
 */
#ifndef PX_UPSTREAM_H
#define PX_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "netns/proxy/px_ssrf.h"
#include "supervisor/err.h"

#define PX_UPSTREAM_RESP_MAX	    8192  /* CONNECT response head, as OpenShell */
#define PX_UPSTREAM_HANDSHAKE_MS    30000 /* contract §8 limits: upstream-proxy CONNECT 30 s */
#define PX_UPSTREAM_NO_PROXY_MAX    64
#define PX_UPSTREAM_CRED_MAX	    4096

/* The options as given (NULL / false: absent). */
struct px_upstream_args {
	const char *url;	/* --upstream-proxy http://host:port */
	const char *no_proxy;	/* --upstream-no-proxy a,b,c */
	const char *auth_file;	/* --upstream-proxy-auth-file (user:pass) */
	bool auth_allow_insecure;
	bool by_hostname;
};

struct px_upstream;

/* PID 1, setup phase: check @a as OpenShell does (any present-but-invalid value is an error,
 * @err naming the option), read the credential file, resolve the proxy's host (blocking).
 * Returns 0 with *@out NULL when no upstream proxy is configured, 0 with *@out (owned,
 * px_upstream_free) or -errno. */
int px_upstream_new(const struct px_upstream_args *a, struct px_upstream **out,
		    struct sv_err *err);
void px_upstream_free(struct px_upstream *u);
/* "host:port no_proxy_entries=N connect_target=validated-ip|hostname" (no credential). */
void px_upstream_describe(const struct px_upstream *u, char *buf, size_t size);

/* The PX_MSG_UPSTREAM datagram (header included) for @u into @buf; its length or -E2BIG. */
int px_upstream_encode(const struct px_upstream *u, uint8_t *buf, size_t size);
/* The proxy process: decode it (every field checked; -EPROTO with @err). */
int px_upstream_decode(const uint8_t *buf, size_t len, struct px_upstream **out,
		       struct sv_err *err);

/* Where to dial the validated destination @host:@port with addresses @addrs (*@n of them):
 * true = through the upstream proxy; false = directly, with @addrs possibly narrowed to the
 * ones --upstream-no-proxy names (loopback destinations are always direct). */
bool px_upstream_route(const struct px_upstream *u, const char *host, uint16_t port,
		       struct px_ssrf_ip *addrs, size_t *n);
bool px_upstream_by_hostname(const struct px_upstream *u);
/* The proxy's own address. */
socklen_t px_upstream_addr(const struct px_upstream *u, struct sockaddr_storage *ss);

/* One CONNECT handshake on a socket connected to the upstream proxy. */
struct px_uphs;
/* Send "CONNECT <target> HTTP/1.1" (target = @ip formatted, or @host when @ip is NULL) on
 * @fd. 0 and *@out, or -errno (the caller tries the next address). */
int px_uphs_start(const struct px_upstream *u, int fd, const struct px_ssrf_ip *ip,
		  const char *host, uint16_t port, struct px_uphs **out);
/* @fd is readable: 1 when the proxy answered 200 (its head consumed, nothing after it read),
 * 0 when more is needed, -1 on a refusal or a malformed or oversized answer (see
 * px_uphs_error). */
int px_uphs_step(struct px_uphs *h, int fd);
const char *px_uphs_error(const struct px_uphs *h);
void px_uphs_free(struct px_uphs *h);

#endif
