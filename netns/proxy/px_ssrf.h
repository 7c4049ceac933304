/* The proxy's SSRF guard (contract §8 "SSRF", §13 fix 25): classify IP addresses and decide
 * which resolved addresses of an allowed destination the proxy may dial.
 *
 * Pure functions over addresses and the policy model: no resolution, no sockets, no logging.
 * They never widen what the policy allows; when in doubt they deny.
 */
#ifndef PX_SSRF_H
#define PX_SSRF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "supervisor/policy/policy.h"

/* An IP address as the guard sees it. */
struct px_ssrf_ip {
	uint8_t family;	  /* 4 or 6, as in struct pol_cidr */
	uint8_t addr[16]; /* network byte order; IPv4 uses the first 4 bytes */
};

/* --- addresses --------------------------------------------------------------------------- */

/* Parse a strict IP literal: a dotted quad (no leading zeros, no "127.1" or "0x7f.1" forms) or
 * an IPv6 address, optionally in brackets ("[::1]"). No zone ids. The result is not
 * normalised. Returns 0 or -EINVAL. */
int px_ssrf_ip_parse(const char *s, struct px_ssrf_ip *out);

/* From a resolver's or accept()'s address (AF_INET or AF_INET6). 0 or -EAFNOSUPPORT/-EINVAL. */
int px_ssrf_ip_from_sockaddr(const struct sockaddr *sa, socklen_t len, struct px_ssrf_ip *out);

/* The address to dial: AF_INET for family 4, AF_INET6 otherwise; @port in host order.
 * Returns the length to pass to connect(2). */
socklen_t px_ssrf_ip_to_sockaddr(const struct px_ssrf_ip *ip, uint16_t port,
				 struct sockaddr_storage *ss);

/* An IPv4-mapped IPv6 address (::ffff:a.b.c.d) becomes the IPv4 address a.b.c.d, which is
 * what a connect() to it reaches; anything else is left alone. */
void px_ssrf_ip_normalize(struct px_ssrf_ip *ip);

/* "a.b.c.d" or the inet_ntop IPv6 form into @buf (at least 46 bytes); returns the length. */
size_t px_ssrf_ip_format(const struct px_ssrf_ip *ip, char *buf, size_t size);

bool px_ssrf_ip_equal(const struct px_ssrf_ip *a, const struct px_ssrf_ip *b);

/* --- classification (the tables in px_ssrf.c say why each range is there) ------------------- */

enum px_ssrf_class {
	PX_SSRF_PUBLIC = 0,
	PX_SSRF_INTERNAL,	/* refused by default; a policy may allow it (allowed_ips, ...) */
	PX_SSRF_ALWAYS_BLOCKED, /* refused whatever the policy says */
};

/* Always blocked: 0.0.0.0/8 (0.0.0.0 reaches the local host on Linux), 127.0.0.0/8,
 * 169.254.0.0/16, ::, ::1, fe80::/10, and those IPv4 ranges behind ::ffff:0:0/96 (mapped) and
 * 64:ff9b::/96 (NAT64 well-known prefix).
 * Internal: 10/8, 100.64/10, 172.16/12, 192.0.0/24, 192.0.2/24, 192.168/16, 198.18/15,
 * 198.51.100/24, 203.0.113/24, 224/4 (multicast), 240/4 (reserved, 255.255.255.255), the same
 * behind the two IPv4-embedding prefixes, and the IPv6 ranges ::/8 (reserved, IPv4-compatible
 * ::/96, local-use NAT64 64:ff9b:1::/48), 100::/64, 2001::/32 (Teredo), 2001:2::/48,
 * 2001:db8::/32, 2002::/16 (6to4), 3fff::/20, fc00::/7 (ULA), fec0::/10, ff00::/8.
 * @what (optional) receives a static name of the range ("loopback", "private (RFC 1918)"). */
enum px_ssrf_class px_ssrf_classify(const struct px_ssrf_ip *ip, const char **what);

/* Does the network @c contain an always-blocked address (directly or through an IPv4-embedding
 * IPv6 prefix)? Such an allowed_ips entry is invalid: 0.0.0.0/0, ::/0, 127.0.0.1, 169.254.0.0/16,
 * ::ffff:127.0.0.1 all are. */
bool px_ssrf_cidr_is_always_blocked(const struct pol_cidr *c);

/* Is @ip inside @c? An IPv4 address also matches the IPv6 network holding its mapped form. */
bool px_ssrf_cidr_contains(const struct pol_cidr *c, const struct px_ssrf_ip *ip);

/* Ports of cluster control planes (etcd 2379/2380, kube-apiserver 6443, kubelet 10250/10255),
 * refused in every mode that may reach internal addresses. */
bool px_ssrf_port_is_control_plane(uint16_t port);

/* --- destination validation (contract §8 mode precedence) ---------------------------------- */

/* The host-alias / trusted-gateway mode of OpenShell (host.openshell.internal and friends
 * pinned from /etc/hosts) is not implemented: those names go through the modes below like any
 * other name, so a link-local gateway is refused. */
enum px_ssrf_mode {
	PX_SSRF_PUBLIC_ONLY = 0, /* default: every address must be public */
	PX_SSRF_ALLOWED_IPS,	 /* the endpoint's allowed_ips: inside one entry, never blocked */
	PX_SSRF_IP_LITERAL,	 /* host is an IP literal: exactly that address, never blocked */
	PX_SSRF_DECLARED_HOST,	 /* exact declared name: internal allowed, always-blocked not */
};

enum px_ssrf_verdict {
	PX_SSRF_ALLOW = 0,
	PX_SSRF_DENY_INTERNAL,		  /* "internal address" */
	PX_SSRF_DENY_ALLOWED_IPS,	  /* "allowed_ips check failed" */
	PX_SSRF_DENY_DECLARED,		  /* "declared endpoint check failed" */
	PX_SSRF_DENY_INVALID_ALLOWED_IPS, /* "invalid allowed_ips in policy" */
};

/* The exact reason of contract §8 for the ssrf_denied detail ("" for PX_SSRF_ALLOW). */
const char *px_ssrf_reason(enum px_ssrf_verdict v);
/* "public-only", "allowed_ips", "ip-literal", "declared-host", for logs. */
const char *px_ssrf_mode_name(enum px_ssrf_mode m);

struct px_ssrf_plan {
	enum px_ssrf_mode mode;
	uint16_t port;
	const struct pol_cidr *allowed_ips; /* PX_SSRF_ALLOWED_IPS: borrowed from the endpoint */
	size_t n_allowed_ips;
	struct px_ssrf_ip literal; /* PX_SSRF_IP_LITERAL: normalised; dial it, do not resolve */
};

/* The detail strings below are diagnostics for logs, in OpenShell's wording ("api.x resolves to
 * internal address 10.0.0.1, connection rejected"); the proxy answers with px_ssrf_reason().
 * @detail may be NULL (then @size is ignored). */

/* Choose the mode before resolving, for the request @host (as requested, brackets allowed) and
 * @port that the policy allowed through @ep (px_decision.endpoint, borrowed; NULL = none) with
 * px_decision.exact_declared. Precedence: @ep has allowed_ips (or is hostless) → ALLOWED_IPS,
 * and any entry overlapping an always-blocked range makes the whole list invalid; else @host is
 * an IP literal → IP_LITERAL (denied at once when always blocked); else @exact_declared →
 * DECLARED_HOST; else PUBLIC_ONLY. Control-plane ports are denied in all but PUBLIC_ONLY.
 * @plan is always filled (it borrows from @ep: keep the policy alive while using it). */
enum px_ssrf_verdict px_ssrf_plan(const char *host, uint16_t port, const struct pol_endpoint *ep,
				  bool exact_declared, struct px_ssrf_plan *plan, char *detail,
				  size_t size);

/* Check every resolved address of @host against @plan, all or nothing: one failing address
 * (or none at all) denies the destination with the mode's verdict. On PX_SSRF_ALLOW, @out
 * (room for @n entries) holds the addresses to dial, normalised, duplicates dropped, in the
 * resolver's order, and *@n_out their count; on a denial *@n_out is 0. */
enum px_ssrf_verdict px_ssrf_filter(const struct px_ssrf_plan *plan, const char *host,
				    const struct px_ssrf_ip *resolved, size_t n,
				    struct px_ssrf_ip *out, size_t *n_out, char *detail,
				    size_t size);

#endif
