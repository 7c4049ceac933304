/* The egress proxy's SSRF guard (contract §8 "SSRF", §13 fix 25): which addresses are always
 * blocked or internal, which allowed_ips entries are valid, and the all-or-nothing check of a
 * destination's resolved addresses under OpenShell's mode precedence.
 *
 * Pure code: it must never resolve a name, open a socket, or let any policy reach an
 * always-blocked address.
 */
#include "px_ssrf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <string.h>

#include "supervisor/err.h"

struct range {
	uint8_t prefix;
	uint8_t addr[16];
	const char *what;
};

/* Never reachable, whatever the policy (contract §8): the proxy's own host and the cloud
 * metadata service live here. All of 0.0.0.0/8, not just 0.0.0.0: Linux connects 0.0.0.0 to
 * the local host, and no other "this network" address is a valid destination (RFC 1122). */
static const struct range v4_blocked[] = {
    {8, {0}, "this network (0.0.0.0/8)"},
    {8, {127}, "loopback"},
    {16, {169, 254}, "link-local"},
};

/* Not globally reachable (IANA special-purpose registry): refused unless the policy names the
 * destination (allowed_ips, an IP-literal host, an exact host name). */
static const struct range v4_internal[] = {
    {8, {10}, "private (RFC 1918)"},
    {10, {100, 64}, "shared address space (RFC 6598)"},
    {12, {172, 16}, "private (RFC 1918)"},
    {24, {192, 0, 0}, "IETF protocol assignments"},
    {24, {192, 0, 2}, "documentation (TEST-NET-1)"},
    {16, {192, 168}, "private (RFC 1918)"},
    {15, {198, 18}, "benchmarking"},
    {24, {198, 51, 100}, "documentation (TEST-NET-2)"},
    {24, {203, 0, 113}, "documentation (TEST-NET-3)"},
    {4, {224}, "multicast"},
    {4, {240}, "reserved (240.0.0.0/4, broadcast)"},
};

/* IPv6 prefixes whose last 32 bits are an IPv4 address that is what a connection actually
 * reaches: a connect() to ::ffff:a.b.c.d is an IPv4 connection, a NAT64 translator forwards
 * 64:ff9b::a.b.c.d to a.b.c.d (RFC 6052), and the deprecated IPv4-compatible ::a.b.c.d is
 * carried to a.b.c.d by the kernel's automatic sit tunnel where that module is loaded. Such
 * addresses are classified as that IPv4 address, so the IPv4 rules cannot be bypassed through
 * them (:: and ::1 are judged as IPv6 first). Network-specific NAT64 prefixes (RFC 7050
 * discovery) are not learned; the local-use 64:ff9b:1::/48 is internal below. The mapped and
 * compatible forms are dialled as the IPv4 address itself (px_ssrf_ip_normalize). */
static const struct range v6_embeds_v4[] = {
    {96, {[10] = 0xff, [11] = 0xff}, "IPv4-mapped"},
    {96, {0x00, 0x64, 0xff, 0x9b}, "NAT64"},
    {96, {0}, "IPv4-compatible"},
};

static const struct range v6_blocked[] = {
    {128, {0}, "unspecified"},
    {128, {[15] = 1}, "loopback"},
    {10, {0xfe, 0x80}, "link-local"},
};

static const struct range v6_internal[] = {
    /* Checked after the /96 prefixes above, which it contains: the rest of ::/8 is
     * reserved, and so is 64:ff9b:1::/48. */
    {8, {0}, "reserved (::/8)"},
    {64, {0x01, 0x00}, "discard-only"},
    {32, {0x20, 0x01, 0x00, 0x00}, "Teredo"},
    {48, {0x20, 0x01, 0x00, 0x02}, "benchmarking"},
    {32, {0x20, 0x01, 0x0d, 0xb8}, "documentation"},
    {16, {0x20, 0x02}, "6to4 (deprecated)"},
    {20, {0x3f, 0xff}, "documentation"},
    {7, {0xfc}, "unique local (ULA)"},
    {10, {0xfe, 0xc0}, "site-local (deprecated)"},
    {8, {0xff}, "multicast"},
};

static const uint16_t control_plane_ports[] = {2379, 2380, 6443, 10250, 10255};

/* Do @a and @b agree on their first @nbits bits? */
static bool bits_equal(const uint8_t *a, const uint8_t *b, unsigned nbits)
{
	unsigned bytes = nbits / 8, rem = nbits % 8;
	if (memcmp(a, b, bytes) != 0)
		return false;
	if (rem == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff00u >> rem);
	return ((a[bytes] ^ b[bytes]) & mask) == 0;
}

/* Two networks overlap iff they agree on the shorter prefix. */
static bool nets_overlap(const uint8_t *a, unsigned pa, const uint8_t *b, unsigned pb)
{
	return bits_equal(a, b, pa < pb ? pa : pb);
}

static const struct range *find(const struct range *t, size_t n, const uint8_t *addr,
				unsigned prefix)
{
	for (size_t i = 0; i < n; i++)
		if (nets_overlap(t[i].addr, t[i].prefix, addr, prefix))
			return &t[i];
	return NULL;
}

#define FIND(table, addr, prefix) find((table), SV_ARRAY_SIZE(table), (addr), (prefix))

/* --- addresses ----------------------------------------------------------------------------- */

int px_ssrf_ip_parse(const char *s, struct px_ssrf_ip *out)
{
	char buf[INET6_ADDRSTRLEN + 1];
	size_t n = s ? strlen(s) : 0;
	bool bracketed = n >= 2 && s[0] == '[' && s[n - 1] == ']';
	if (bracketed) {
		s++;
		n -= 2;
	}
	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	struct px_ssrf_ip ip = {0};
	if (strchr(buf, ':')) {
		if (inet_pton(AF_INET6, buf, ip.addr) != 1)
			return -EINVAL;
		ip.family = 6;
	} else {
		/* inet_pton, not inet_aton: no "127.1", "0x7f.1" or leading zeros. */
		if (bracketed || inet_pton(AF_INET, buf, ip.addr) != 1)
			return -EINVAL;
		ip.family = 4;
	}
	*out = ip;
	return 0;
}

int px_ssrf_ip_from_sockaddr(const struct sockaddr *sa, socklen_t len, struct px_ssrf_ip *out)
{
	struct px_ssrf_ip ip = {0};
	if (!sa || len < (socklen_t)sizeof(sa_family_t))
		return -EINVAL;
	if (sa->sa_family == AF_INET) {
		if (len < (socklen_t)sizeof(struct sockaddr_in))
			return -EINVAL;
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
		memcpy(ip.addr, &in->sin_addr, 4);
		ip.family = 4;
	} else if (sa->sa_family == AF_INET6) {
		if (len < (socklen_t)sizeof(struct sockaddr_in6))
			return -EINVAL;
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		memcpy(ip.addr, &in6->sin6_addr, 16);
		ip.family = 6;
	} else {
		return -EAFNOSUPPORT;
	}
	*out = ip;
	return 0;
}

socklen_t px_ssrf_ip_to_sockaddr(const struct px_ssrf_ip *ip, uint16_t port,
				 struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (ip->family == 4) {
		struct sockaddr_in *in = (struct sockaddr_in *)(void *)ss;
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		memcpy(&in->sin_addr, ip->addr, 4);
		return sizeof(*in);
	}
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)ss;
	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons(port);
	memcpy(&in6->sin6_addr, ip->addr, 16);
	return sizeof(*in6);
}

void px_ssrf_ip_normalize(struct px_ssrf_ip *ip)
{
	static const uint8_t zero[16];
	if (ip->family != 6)
		return;
	/* IPv4-mapped, or IPv4-compatible other than 0.0.0.x (:: and ::1 among them, refused). */
	if (!bits_equal(ip->addr, v6_embeds_v4[0].addr, 96) &&
	    !(bits_equal(ip->addr, zero, 96) && !bits_equal(ip->addr, zero, 120)))
		return;
	uint8_t v4[4];
	memcpy(v4, ip->addr + 12, 4);
	memset(ip->addr, 0, sizeof(ip->addr));
	memcpy(ip->addr, v4, 4);
	ip->family = 4;
}

size_t px_ssrf_ip_format(const struct px_ssrf_ip *ip, char *buf, size_t size)
{
	char a[INET6_ADDRSTRLEN];
	if (!inet_ntop(ip->family == 4 ? AF_INET : AF_INET6, ip->addr, a, sizeof(a)))
		a[0] = '\0';
	return sv_fmt(buf, size, "%s", a);
}

bool px_ssrf_ip_equal(const struct px_ssrf_ip *a, const struct px_ssrf_ip *b)
{
	return a->family == b->family && memcmp(a->addr, b->addr, a->family == 4 ? 4 : 16) == 0;
}

/* --- classification ------------------------------------------------------------------------ */

static enum px_ssrf_class classify_v4(const uint8_t *a, const char **what)
{
	const struct range *r;
	if ((r = FIND(v4_blocked, a, 32))) {
		*what = r->what;
		return PX_SSRF_ALWAYS_BLOCKED;
	}
	if ((r = FIND(v4_internal, a, 32))) {
		*what = r->what;
		return PX_SSRF_INTERNAL;
	}
	*what = "public";
	return PX_SSRF_PUBLIC;
}

enum px_ssrf_class px_ssrf_classify(const struct px_ssrf_ip *ip, const char **what)
{
	const char *unused;
	if (!what)
		what = &unused;
	if (ip->family == 4)
		return classify_v4(ip->addr, what);
	if (ip->family != 6) {
		*what = "unknown address family";
		return PX_SSRF_ALWAYS_BLOCKED;
	}
	const struct range *r;
	if ((r = FIND(v6_blocked, ip->addr, 128))) {
		*what = r->what;
		return PX_SSRF_ALWAYS_BLOCKED;
	}
	if (FIND(v6_embeds_v4, ip->addr, 128))
		return classify_v4(ip->addr + 12, what);
	if ((r = FIND(v6_internal, ip->addr, 128))) {
		*what = r->what;
		return PX_SSRF_INTERNAL;
	}
	*what = "public";
	return PX_SSRF_PUBLIC;
}

static bool cidr_is_well_formed(const struct pol_cidr *c)
{
	return (c->family == 4 && c->prefix <= 32) || (c->family == 6 && c->prefix <= 128);
}

bool px_ssrf_cidr_is_always_blocked(const struct pol_cidr *c)
{
	if (!cidr_is_well_formed(c))
		return true; /* fail closed: treat as invalid */
	if (c->family == 4)
		return FIND(v4_blocked, c->addr, c->prefix) != NULL;
	if (FIND(v6_blocked, c->addr, c->prefix))
		return true;
	for (size_t i = 0; i < SV_ARRAY_SIZE(v6_embeds_v4); i++) {
		const struct range *e = &v6_embeds_v4[i];
		if (c->prefix <= e->prefix) {
			/* The network covers the whole embedding prefix, loopback included. */
			if (bits_equal(c->addr, e->addr, c->prefix))
				return true;
		} else if (bits_equal(c->addr, e->addr, e->prefix) &&
			   FIND(v4_blocked, c->addr + 12, (unsigned)(c->prefix - e->prefix))) {
			return true;
		}
	}
	return false;
}

bool px_ssrf_cidr_contains(const struct pol_cidr *c, const struct px_ssrf_ip *ip)
{
	if (!cidr_is_well_formed(c))
		return false;
	struct px_ssrf_ip n = *ip;
	px_ssrf_ip_normalize(&n);
	if (c->family == 4)
		return n.family == 4 && bits_equal(c->addr, n.addr, c->prefix);
	uint8_t a[16] = {[10] = 0xff, [11] = 0xff};
	if (n.family == 4)
		memcpy(a + 12, n.addr, 4);
	else if (n.family == 6)
		memcpy(a, n.addr, 16);
	else
		return false;
	return bits_equal(c->addr, a, c->prefix);
}

bool px_ssrf_port_is_control_plane(uint16_t port)
{
	for (size_t i = 0; i < SV_ARRAY_SIZE(control_plane_ports); i++)
		if (control_plane_ports[i] == port)
			return true;
	return false;
}

/* --- destination validation ---------------------------------------------------------------- */

const char *px_ssrf_reason(enum px_ssrf_verdict v)
{
	switch (v) {
	case PX_SSRF_ALLOW:
		return "";
	case PX_SSRF_DENY_INTERNAL:
		return "internal address";
	case PX_SSRF_DENY_ALLOWED_IPS:
		return "allowed_ips check failed";
	case PX_SSRF_DENY_DECLARED:
		return "declared endpoint check failed";
	case PX_SSRF_DENY_INVALID_ALLOWED_IPS:
		return "invalid allowed_ips in policy";
	}
	return "internal address";
}

const char *px_ssrf_mode_name(enum px_ssrf_mode m)
{
	switch (m) {
	case PX_SSRF_PUBLIC_ONLY:
		return "public-only";
	case PX_SSRF_ALLOWED_IPS:
		return "allowed_ips";
	case PX_SSRF_IP_LITERAL:
		return "ip-literal";
	case PX_SSRF_DECLARED_HOST:
		return "declared-host";
	}
	return "unknown";
}

/* The verdict a mode denies with (OpenShell's DestinationDenialKind per mode). */
static enum px_ssrf_verdict mode_denial(enum px_ssrf_mode m)
{
	switch (m) {
	case PX_SSRF_ALLOWED_IPS:
	case PX_SSRF_IP_LITERAL:
		return PX_SSRF_DENY_ALLOWED_IPS;
	case PX_SSRF_DECLARED_HOST:
		return PX_SSRF_DENY_DECLARED;
	case PX_SSRF_PUBLIC_ONLY:
		return PX_SSRF_DENY_INTERNAL;
	}
	return PX_SSRF_DENY_INTERNAL;
}

static void say(char *detail, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(char *detail, size_t size, const char *fmt, ...)
{
	if (!detail || size == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	sv_vfmt(detail, size, fmt, ap);
	va_end(ap);
}

static enum px_ssrf_verdict deny_control_plane(const struct px_ssrf_plan *plan, char *detail,
					       size_t size)
{
	say(detail, size, "port %u is a blocked control-plane port, connection rejected",
	    (unsigned)plan->port);
	return mode_denial(plan->mode);
}

static enum px_ssrf_verdict check_allowed_ips(const struct px_ssrf_plan *plan, char *detail,
					      size_t size)
{
	if (plan->n_allowed_ips == 0 || !plan->allowed_ips) {
		say(detail, size, "hostless endpoint has no allowed_ips");
		return PX_SSRF_DENY_INVALID_ALLOWED_IPS;
	}
	for (size_t i = 0; i < plan->n_allowed_ips; i++) {
		const struct pol_cidr *c = &plan->allowed_ips[i];
		if (!cidr_is_well_formed(c)) {
			say(detail, size, "allowed_ips entry %zu is malformed", i + 1);
			return PX_SSRF_DENY_INVALID_ALLOWED_IPS;
		}
		if (px_ssrf_cidr_is_always_blocked(c)) {
			char net[64];
			pol_cidr_format(c, net, sizeof(net));
			say(detail, size,
			    "allowed_ips entry %s falls within always-blocked range "
			    "(loopback/link-local/unspecified)",
			    net);
			return PX_SSRF_DENY_INVALID_ALLOWED_IPS;
		}
	}
	return PX_SSRF_ALLOW;
}

enum px_ssrf_verdict px_ssrf_plan(const char *host, uint16_t port, const struct pol_endpoint *ep,
				  bool exact_declared, struct px_ssrf_plan *plan, char *detail,
				  size_t size)
{
	*plan = (struct px_ssrf_plan){.mode = PX_SSRF_PUBLIC_ONLY, .port = port};
	say(detail, size, "%s", "");
	if (ep && (ep->n_allowed_ips > 0 || ep->kind == POL_HOST_NONE)) {
		plan->mode = PX_SSRF_ALLOWED_IPS;
		plan->allowed_ips = ep->allowed_ips;
		plan->n_allowed_ips = ep->n_allowed_ips;
		enum px_ssrf_verdict v = check_allowed_ips(plan, detail, size);
		if (v != PX_SSRF_ALLOW)
			return v;
	} else if (host && px_ssrf_ip_parse(host, &plan->literal) == 0) {
		plan->mode = PX_SSRF_IP_LITERAL;
		px_ssrf_ip_normalize(&plan->literal);
		const char *what;
		if (px_ssrf_classify(&plan->literal, &what) == PX_SSRF_ALWAYS_BLOCKED) {
			char a[INET6_ADDRSTRLEN];
			px_ssrf_ip_format(&plan->literal, a, sizeof(a));
			say(detail, size,
			    "%s is an always-blocked address (%s), connection rejected", a, what);
			return PX_SSRF_DENY_ALLOWED_IPS;
		}
	} else if (exact_declared) {
		plan->mode = PX_SSRF_DECLARED_HOST;
	}
	if (plan->mode != PX_SSRF_PUBLIC_ONLY && px_ssrf_port_is_control_plane(port))
		return deny_control_plane(plan, detail, size);
	return PX_SSRF_ALLOW;
}

/* Is one (normalised) resolved address acceptable under @plan? Says why not in @detail. */
static bool address_ok(const struct px_ssrf_plan *plan, const char *host,
		       const struct px_ssrf_ip *ip, char *detail, size_t size)
{
	const char *what;
	enum px_ssrf_class cls = px_ssrf_classify(ip, &what);
	char a[INET6_ADDRSTRLEN];
	px_ssrf_ip_format(ip, a, sizeof(a));
	if (plan->mode == PX_SSRF_PUBLIC_ONLY) {
		if (cls == PX_SSRF_PUBLIC)
			return true;
		say(detail, size, "%s resolves to internal address %s (%s), connection rejected",
		    host, a, what);
		return false;
	}
	if (cls == PX_SSRF_ALWAYS_BLOCKED) {
		say(detail, size,
		    "%s resolves to always-blocked address %s (%s), connection rejected", host, a,
		    what);
		return false;
	}
	switch (plan->mode) {
	case PX_SSRF_ALLOWED_IPS:
		for (size_t i = 0; i < plan->n_allowed_ips; i++)
			if (px_ssrf_cidr_contains(&plan->allowed_ips[i], ip))
				return true;
		break;
	case PX_SSRF_IP_LITERAL:
		if (px_ssrf_ip_equal(ip, &plan->literal))
			return true;
		break;
	case PX_SSRF_DECLARED_HOST:
		return true;
	case PX_SSRF_PUBLIC_ONLY:
		break;
	}
	say(detail, size, "%s resolves to %s which is not in allowed_ips, connection rejected",
	    host, a);
	return false;
}

enum px_ssrf_verdict px_ssrf_filter(const struct px_ssrf_plan *plan, const char *host,
				    const struct px_ssrf_ip *resolved, size_t n,
				    struct px_ssrf_ip *out, size_t *n_out, char *detail,
				    size_t size)
{
	enum px_ssrf_verdict deny = mode_denial(plan->mode);
	*n_out = 0;
	say(detail, size, "%s", "");
	if (!host)
		host = "";
	if (plan->mode != PX_SSRF_PUBLIC_ONLY && px_ssrf_port_is_control_plane(plan->port))
		return deny_control_plane(plan, detail, size);
	if (plan->mode == PX_SSRF_ALLOWED_IPS) {
		enum px_ssrf_verdict v = check_allowed_ips(plan, detail, size);
		if (v != PX_SSRF_ALLOW)
			return v;
	}
	if (n == 0 || !resolved) {
		say(detail, size, "DNS resolution returned no addresses for %s", host);
		return deny;
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		struct px_ssrf_ip ip = resolved[i];
		px_ssrf_ip_normalize(&ip);
		if (!address_ok(plan, host, &ip, detail, size))
			return deny; /* all or nothing: one bad answer denies the destination */
		bool dup = false;
		for (size_t j = 0; j < k && !dup; j++)
			dup = px_ssrf_ip_equal(&out[j], &ip);
		if (!dup)
			out[k++] = ip;
	}
	*n_out = k;
	return PX_SSRF_ALLOW;
}
