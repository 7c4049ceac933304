/* Unit tests for the proxy's SSRF guard (netns/px_ssrf.c, contract §8 "SSRF", §13 fix 25).
 *
 * Every range is pinned at its first and last address and just outside; the mode precedence,
 * the control-plane ports, the all-or-nothing rule and each deny reason string are checked
 * through plans built from policies loaded by the real INI loader and decided by px_policy.
 */
#include <arpa/inet.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netns/proxy/px_policy.h"
#include "netns/proxy/px_ssrf.h"

static struct pol_policy pol;
static struct px_decision dec;
static char detail[256];

static struct px_ssrf_ip ip(const char *s)
{
	struct px_ssrf_ip a;
	ck_assert_msg(px_ssrf_ip_parse(s, &a) == 0, "cannot parse '%s'", s);
	return a;
}

static enum px_ssrf_class cls(const char *s)
{
	struct px_ssrf_ip a = ip(s);
	return px_ssrf_classify(&a, NULL);
}

static struct pol_cidr cidr(const char *s)
{
	struct pol_cidr c;
	struct sv_err e = {0};
	ck_assert_msg(pol_cidr_parse(s, &c, &e) == 0, "cidr '%s': %s", s, e.msg);
	return c;
}

static void load(const char *text)
{
	struct sv_err e = {0};
	pol_init(&pol);
	int r = pol_load_buffer("test.ini", text, strlen(text), &pol, &e);
	ck_assert_msg(r == 0, "policy did not load: %s", e.msg);
}

static void teardown(void)
{
	pol_free(&pol);
}

#define ck_class(addr, want) ck_assert_msg(cls(addr) == (want), "%s: class %d", addr, cls(addr))

/* --- classification boundaries ------------------------------------------------------------- */

START_TEST(always_blocked_ipv4_ranges_at_their_edges)
{
	const char *in[] = {"0.0.0.0",	       "0.255.255.255",	  "127.0.0.0",
			    "127.0.0.1",       "127.255.255.255", "169.254.0.0",
			    "169.254.169.254", "169.254.255.255"};
	const char *out[] = {"1.0.0.0", "126.255.255.255", "128.0.0.0", "169.253.255.255",
			     "169.255.0.0"};
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++)
		ck_class(in[i], PX_SSRF_ALWAYS_BLOCKED);
	for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++)
		ck_class(out[i], PX_SSRF_PUBLIC);
}
END_TEST

START_TEST(internal_ipv4_ranges_at_their_edges)
{
	/* first, last, just below, just above */
	static const char *const t[][4] = {
	    {"10.0.0.0", "10.255.255.255", "9.255.255.255", "11.0.0.0"},
	    {"100.64.0.0", "100.127.255.255", "100.63.255.255", "100.128.0.0"},
	    {"172.16.0.0", "172.31.255.255", "172.15.255.255", "172.32.0.0"},
	    {"192.0.0.0", "192.0.0.255", "191.255.255.255", "192.0.1.0"},
	    {"192.0.2.0", "192.0.2.255", "192.0.1.255", "192.0.3.0"},
	    {"192.168.0.0", "192.168.255.255", "192.167.255.255", "192.169.0.0"},
	    {"198.18.0.0", "198.19.255.255", "198.17.255.255", "198.20.0.0"},
	    {"198.51.100.0", "198.51.100.255", "198.51.99.255", "198.51.101.0"},
	    {"203.0.113.0", "203.0.113.255", "203.0.112.255", "203.0.114.0"},
	    {"224.0.0.0", "239.255.255.255", "223.255.255.255", NULL},
	    {"240.0.0.0", "255.255.255.255", NULL, NULL},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		ck_class(t[i][0], PX_SSRF_INTERNAL);
		ck_class(t[i][1], PX_SSRF_INTERNAL);
		if (t[i][2])
			ck_class(t[i][2], PX_SSRF_PUBLIC);
		if (t[i][3])
			ck_class(t[i][3], PX_SSRF_PUBLIC);
	}
	ck_class("8.8.8.8", PX_SSRF_PUBLIC);
	ck_class("93.184.216.34", PX_SSRF_PUBLIC);
}
END_TEST

START_TEST(ipv6_ranges_at_their_edges)
{
	ck_class("::", PX_SSRF_ALWAYS_BLOCKED);
	ck_class("::1", PX_SSRF_ALWAYS_BLOCKED);
	ck_class("fe80::", PX_SSRF_ALWAYS_BLOCKED);
	ck_class("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", PX_SSRF_ALWAYS_BLOCKED);
	ck_class("fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", PX_SSRF_PUBLIC);
	ck_class("fec0::", PX_SSRF_INTERNAL); /* site-local, just above link-local */
	ck_class("fc00::", PX_SSRF_INTERNAL);
	ck_class("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", PX_SSRF_INTERNAL);
	ck_class("fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", PX_SSRF_PUBLIC);
	ck_class("fe00::", PX_SSRF_PUBLIC);
	ck_class("::1:0:0", PX_SSRF_INTERNAL); /* ::/8 outside the IPv4-compatible ::/96 */
	ck_class("ff02::1", PX_SSRF_INTERNAL);
	ck_class("2001:db8::1", PX_SSRF_INTERNAL);
	ck_class("2001::1", PX_SSRF_INTERNAL);
	ck_class("2002:c000:0201::1", PX_SSRF_INTERNAL);
	ck_class("100::1", PX_SSRF_INTERNAL);
	ck_class("2001:4860:4860::8888", PX_SSRF_PUBLIC);
	ck_class("2606:4700:4700::1111", PX_SSRF_PUBLIC);
}
END_TEST

START_TEST(ipv4_mapped_and_nat64_addresses_classify_as_their_ipv4)
{
	ck_class("::ffff:127.0.0.1", PX_SSRF_ALWAYS_BLOCKED);
	ck_class("::ffff:169.254.169.254", PX_SSRF_ALWAYS_BLOCKED);
	ck_class("::ffff:0.0.0.0", PX_SSRF_ALWAYS_BLOCKED);
	ck_class("::ffff:10.0.0.1", PX_SSRF_INTERNAL);
	ck_class("::ffff:8.8.8.8", PX_SSRF_PUBLIC);
	ck_class("64:ff9b::7f00:1", PX_SSRF_ALWAYS_BLOCKED);
	ck_class("64:ff9b::a9fe:a9fe", PX_SSRF_ALWAYS_BLOCKED);
	ck_class("64:ff9b::a00:1", PX_SSRF_INTERNAL);
	ck_class("64:ff9b::808:808", PX_SSRF_PUBLIC);
	ck_class("64:ff9b:1::808:808", PX_SSRF_INTERNAL); /* local-use NAT64 */
	/* The deprecated IPv4-compatible form (::a.b.c.d) too: a sit tunnel carries it there. */
	ck_class("::127.0.0.1", PX_SSRF_ALWAYS_BLOCKED);
	ck_class("::169.254.169.254", PX_SSRF_ALWAYS_BLOCKED);
	ck_class("::2", PX_SSRF_ALWAYS_BLOCKED); /* 0.0.0.2 */
	ck_class("::10.0.0.1", PX_SSRF_INTERNAL);
	ck_class("::8.8.8.8", PX_SSRF_PUBLIC);
	const char *what = NULL;
	struct px_ssrf_ip a = ip("::ffff:169.254.169.254");
	ck_assert_int_eq(px_ssrf_classify(&a, &what), PX_SSRF_ALWAYS_BLOCKED);
	ck_assert_str_eq(what, "link-local");
	/* ::1 and :: stay IPv6 loopback and unspecified, not 0.0.0.x. */
	struct px_ssrf_ip l6 = ip("::1");
	ck_assert_int_eq(px_ssrf_classify(&l6, &what), PX_SSRF_ALWAYS_BLOCKED);
	ck_assert_str_eq(what, "loopback");
	struct px_ssrf_ip c = ip("::127.0.0.1");
	ck_assert_int_eq(px_ssrf_classify(&c, &what), PX_SSRF_ALWAYS_BLOCKED);
	ck_assert_str_eq(what, "loopback");
}
END_TEST

/* --- addresses ----------------------------------------------------------------------------- */

START_TEST(ip_literals_are_parsed_strictly)
{
	const char *bad[] = {"127.1",	  "0x7f.0.0.1",	  "010.0.0.1", "1.2.3.4.5",
			     "[1.2.3.4]", "fe80::1%eth0", "",	       "[]",
			     "localhost", "2130706433",	  "1.2.3.4 ",  "[::1"};
	struct px_ssrf_ip a;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(px_ssrf_ip_parse(bad[i], &a) == -EINVAL, "'%s' accepted", bad[i]);
	ck_assert_int_eq(px_ssrf_ip_parse(NULL, &a), -EINVAL);
	a = ip("[::1]");
	ck_assert_uint_eq(a.family, 6);
	ck_assert_uint_eq(a.addr[15], 1);
	a = ip("1.2.3.4");
	ck_assert_uint_eq(a.family, 4);
	ck_assert_uint_eq(a.addr[3], 4);
}
END_TEST

START_TEST(mapped_addresses_normalise_to_ipv4)
{
	struct px_ssrf_ip a = ip("::ffff:10.1.2.3"), b = ip("10.1.2.3");
	ck_assert(!px_ssrf_ip_equal(&a, &b));
	px_ssrf_ip_normalize(&a);
	ck_assert(px_ssrf_ip_equal(&a, &b));
	char s[64];
	px_ssrf_ip_format(&a, s, sizeof(s));
	ck_assert_str_eq(s, "10.1.2.3");
	struct px_ssrf_ip c = ip("64:ff9b::a01:203");
	px_ssrf_ip_normalize(&c); /* NAT64 is classified, never rewritten */
	ck_assert_uint_eq(c.family, 6);
	struct px_ssrf_ip d = ip("::10.1.2.3"); /* IPv4-compatible: dialled as IPv4 */
	px_ssrf_ip_normalize(&d);
	ck_assert(px_ssrf_ip_equal(&d, &b));
	struct px_ssrf_ip l6 = ip("::1");
	px_ssrf_ip_normalize(&l6);
	ck_assert_uint_eq(l6.family, 6);
}
END_TEST

START_TEST(sockaddr_round_trip)
{
	struct sockaddr_storage ss;
	struct px_ssrf_ip a = ip("2001:db8::7"), b;
	socklen_t len = px_ssrf_ip_to_sockaddr(&a, 8443, &ss);
	ck_assert_uint_eq(len, sizeof(struct sockaddr_in6));
	ck_assert_uint_eq(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), 8443);
	ck_assert_int_eq(px_ssrf_ip_from_sockaddr((struct sockaddr *)&ss, len, &b), 0);
	ck_assert(px_ssrf_ip_equal(&a, &b));
	a = ip("93.184.216.34");
	len = px_ssrf_ip_to_sockaddr(&a, 443, &ss);
	ck_assert_uint_eq(len, sizeof(struct sockaddr_in));
	ck_assert_int_eq(ss.ss_family, AF_INET);
	ck_assert_int_eq(px_ssrf_ip_from_sockaddr((struct sockaddr *)&ss, len, &b), 0);
	ck_assert(px_ssrf_ip_equal(&a, &b));
	ck_assert_int_eq(px_ssrf_ip_from_sockaddr((struct sockaddr *)&ss, 4, &b), -EINVAL);
	ss.ss_family = AF_UNIX;
	ck_assert_int_eq(px_ssrf_ip_from_sockaddr((struct sockaddr *)&ss, sizeof(ss), &b),
			 -EAFNOSUPPORT);
}
END_TEST

/* --- allowed_ips entries ------------------------------------------------------------------- */

START_TEST(allowed_ips_entries_overlapping_always_blocked_ranges_are_invalid)
{
	const char *bad[] = {"0.0.0.0/0",
			     "::/0",
			     "127.0.0.1",
			     "127.0.0.0/8",
			     "126.0.0.0/7",
			     "169.254.169.254",
			     "169.254.0.0/16",
			     "168.0.0.0/7",
			     "128.0.0.0/1",
			     "0.0.0.0/8",
			     "0.1.0.0/16",
			     "fe80::/10",
			     "fe80::1",
			     "::1",
			     "::ffff:127.0.0.1",
			     "::ffff:0:0/96",
			     "::ffff:168.0.0.0/103",
			     "64:ff9b::/96",
			     "64:ff9b::7f00:1",
			     "::/8",
			     "8000::/1"};
	const char *good[] = {
	    "10.0.0.0/8",	   "1.0.0.0/8",		 "192.168.0.0/16", "93.184.216.34",
	    "::ffff:10.0.0.0/104", "64:ff9b::a00:0/104", "fd00::/8",	   "2000::/3",
	    "2001:db8::/32"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct pol_cidr c = cidr(bad[i]);
		ck_assert_msg(px_ssrf_cidr_is_always_blocked(&c), "'%s' accepted", bad[i]);
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct pol_cidr c = cidr(good[i]);
		ck_assert_msg(!px_ssrf_cidr_is_always_blocked(&c), "'%s' refused", good[i]);
	}
	struct pol_cidr broken = {.family = 4, .prefix = 33};
	ck_assert(px_ssrf_cidr_is_always_blocked(&broken));
}
END_TEST

START_TEST(cidr_contains_across_mapped_forms)
{
	struct pol_cidr c = cidr("10.0.0.0/8"), m = cidr("::ffff:10.0.0.0/104"),
			u = cidr("fd00::/8");
	struct px_ssrf_ip a = ip("10.1.2.3"), am = ip("::ffff:10.1.2.3"), o = ip("11.0.0.0");
	struct px_ssrf_ip u1 = ip("fd12::1"), ll = ip("fe80::1");
	ck_assert(px_ssrf_cidr_contains(&c, &a));
	ck_assert(px_ssrf_cidr_contains(&c, &am));
	ck_assert(px_ssrf_cidr_contains(&m, &a));
	ck_assert(!px_ssrf_cidr_contains(&c, &o));
	ck_assert(px_ssrf_cidr_contains(&u, &u1));
	ck_assert(!px_ssrf_cidr_contains(&u, &ll));
	ck_assert(!px_ssrf_cidr_contains(&c, &u1));
}
END_TEST

START_TEST(control_plane_ports)
{
	const uint16_t yes[] = {2379, 2380, 6443, 10250, 10255};
	const uint16_t no[] = {443, 80, 2378, 2381, 6442, 10251, 10254, 10256};
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		ck_assert(px_ssrf_port_is_control_plane(yes[i]));
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		ck_assert(!px_ssrf_port_is_control_plane(no[i]));
}
END_TEST

START_TEST(reason_strings_are_the_contract_ones)
{
	ck_assert_str_eq(px_ssrf_reason(PX_SSRF_ALLOW), "");
	ck_assert_str_eq(px_ssrf_reason(PX_SSRF_DENY_INTERNAL), "internal address");
	ck_assert_str_eq(px_ssrf_reason(PX_SSRF_DENY_ALLOWED_IPS), "allowed_ips check failed");
	ck_assert_str_eq(px_ssrf_reason(PX_SSRF_DENY_DECLARED), "declared endpoint check failed");
	ck_assert_str_eq(px_ssrf_reason(PX_SSRF_DENY_INVALID_ALLOWED_IPS),
			 "invalid allowed_ips in policy");
	ck_assert_str_eq(px_ssrf_mode_name(PX_SSRF_PUBLIC_ONLY), "public-only");
	ck_assert_str_eq(px_ssrf_mode_name(PX_SSRF_ALLOWED_IPS), "allowed_ips");
	ck_assert_str_eq(px_ssrf_mode_name(PX_SSRF_IP_LITERAL), "ip-literal");
	ck_assert_str_eq(px_ssrf_mode_name(PX_SSRF_DECLARED_HOST), "declared-host");
}
END_TEST

/* --- destinations: decide, plan, filter ---------------------------------------------------- */

static struct px_ssrf_plan plan;
static struct px_ssrf_ip out[16];
static size_t n_out;

/* Decide @host:@port for curl against the loaded policy (must be allowed) and plan it. */
static enum px_ssrf_verdict plan_for(const char *host, uint16_t port)
{
	struct px_query q = {.host = host, .port = port, .exe = "/usr/bin/curl"};
	px_policy_decide(&pol, &q, &dec);
	ck_assert_msg(dec.allow, "policy denied %s:%u: %s", host, port, dec.reason);
	return px_ssrf_plan(host, port, dec.endpoint, dec.exact_declared, &plan, detail,
			    sizeof(detail));
}

/* Filter a comma-free list of up to 8 addresses through the current plan. */
static enum px_ssrf_verdict filter(const char *host, const char *const *addrs, size_t n)
{
	struct px_ssrf_ip in[8];
	ck_assert_uint_le(n, 8);
	for (size_t i = 0; i < n; i++)
		in[i] = ip(addrs[i]);
	return px_ssrf_filter(&plan, host, in, n, out, &n_out, detail, sizeof(detail));
}

#define FILTER(host, ...)                                  \
	filter((host), (const char *const[]){__VA_ARGS__}, \
	       sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

static void ck_denied_with(enum px_ssrf_verdict v, enum px_ssrf_verdict want)
{
	ck_assert_msg(v == want, "verdict %s, want %s (%s)", px_ssrf_reason(v),
		      px_ssrf_reason(want), detail);
	ck_assert_uint_eq(n_out, 0);
}

static void ck_out(size_t n, const char *const *want)
{
	ck_assert_uint_eq(n_out, n);
	for (size_t i = 0; i < n; i++) {
		char s[64];
		px_ssrf_ip_format(&out[i], s, sizeof(s));
		ck_assert_str_eq(s, want[i]);
	}
}

START_TEST(default_mode_allows_only_public_addresses)
{
	load("[network.web]\nendpoint = *.example.com:443,6443\nbinary = /usr/bin/curl\n");
	ck_assert_int_eq(plan_for("a.example.com", 443), PX_SSRF_ALLOW);
	ck_assert_int_eq(plan.mode, PX_SSRF_PUBLIC_ONLY);
	ck_assert_int_eq(FILTER("a.example.com", "93.184.216.34"), PX_SSRF_ALLOW);
	ck_out(1, (const char *const[]){"93.184.216.34"});
	const char *internal[] = {"10.0.0.1", "127.0.0.1", "169.254.169.254",	 "0.0.0.0",
				  "::1",      "fd00::1",   "::ffff:192.168.1.1", "100.64.0.1"};
	for (size_t i = 0; i < sizeof(internal) / sizeof(internal[0]); i++) {
		n_out = 99;
		ck_denied_with(filter("a.example.com", &internal[i], 1), PX_SSRF_DENY_INTERNAL);
	}
	ck_assert_str_eq(px_ssrf_reason(PX_SSRF_DENY_INTERNAL), "internal address");
	/* Control-plane ports are only refused in the modes that may reach internal hosts. */
	ck_assert_int_eq(plan_for("a.example.com", 6443), PX_SSRF_ALLOW);
	ck_assert_int_eq(FILTER("a.example.com", "93.184.216.34"), PX_SSRF_ALLOW);
}
END_TEST

START_TEST(resolution_is_all_or_nothing)
{
	load("[network.web]\nendpoint = *.example.com:443\nbinary = /usr/bin/curl\n");
	ck_assert_int_eq(plan_for("a.example.com", 443), PX_SSRF_ALLOW);
	ck_denied_with(FILTER("a.example.com", "93.184.216.34", "10.0.0.1"), PX_SSRF_DENY_INTERNAL);
	ck_assert_str_eq(
	    detail, "a.example.com resolves to internal address 10.0.0.1 (private (RFC 1918)), "
		    "connection rejected");
	ck_denied_with(FILTER("a.example.com", "::ffff:127.0.0.1", "93.184.216.34"),
		       PX_SSRF_DENY_INTERNAL);
	ck_denied_with(filter("a.example.com", NULL, 0), PX_SSRF_DENY_INTERNAL);
	ck_assert_str_eq(detail, "DNS resolution returned no addresses for a.example.com");
}
END_TEST

START_TEST(validated_addresses_are_normalised_deduplicated_and_in_order)
{
	load("[network.web]\nendpoint = *.example.com:443\nbinary = /usr/bin/curl\n");
	ck_assert_int_eq(plan_for("a.example.com", 443), PX_SSRF_ALLOW);
	ck_assert_int_eq(FILTER("a.example.com", "2606:4700::1111", "::ffff:8.8.8.8",
				"93.184.216.34", "8.8.8.8", "2606:4700::1111"),
			 PX_SSRF_ALLOW);
	ck_out(3, (const char *const[]){"2606:4700::1111", "8.8.8.8", "93.184.216.34"});
	ck_assert_uint_eq(out[1].family, 4);
}
END_TEST

START_TEST(private_address_needs_allowed_ips_or_an_exact_host)
{
	/* A glob host: 10.x is internal, denied. */
	load("[network.web]\nendpoint = *.corp.example:443\nbinary = /usr/bin/curl\n");
	ck_assert_int_eq(plan_for("db.corp.example", 443), PX_SSRF_ALLOW);
	ck_denied_with(FILTER("db.corp.example", "10.0.5.7"), PX_SSRF_DENY_INTERNAL);
	pol_free(&pol);

	/* The same glob with allowed_ips: allowed inside the list only. */
	load("[network.web]\nendpoint = *.corp.example:443\nallowed_ips = 10.0.5.0/24\n"
	     "binary = /usr/bin/curl\n");
	ck_assert_int_eq(plan_for("db.corp.example", 443), PX_SSRF_ALLOW);
	ck_assert_int_eq(plan.mode, PX_SSRF_ALLOWED_IPS);
	ck_assert_int_eq(FILTER("db.corp.example", "10.0.5.7"), PX_SSRF_ALLOW);
	ck_denied_with(FILTER("db.corp.example", "10.0.6.1"), PX_SSRF_DENY_ALLOWED_IPS);
	ck_assert_str_eq(detail, "db.corp.example resolves to 10.0.6.1 which is not in "
				 "allowed_ips, connection rejected");
	ck_denied_with(FILTER("db.corp.example", "8.8.8.8"), PX_SSRF_DENY_ALLOWED_IPS);
	ck_denied_with(FILTER("db.corp.example", "10.0.5.7", "10.0.6.1"), PX_SSRF_DENY_ALLOWED_IPS);
	ck_assert_str_eq(px_ssrf_reason(PX_SSRF_DENY_ALLOWED_IPS), "allowed_ips check failed");
}
END_TEST

START_TEST(exact_declared_host_may_be_private_but_never_always_blocked)
{
	load("[network.db]\nendpoint = db.internal:5432\nbinary = /usr/bin/curl\n");
	ck_assert_int_eq(plan_for("db.internal", 5432), PX_SSRF_ALLOW);
	ck_assert_int_eq(plan.mode, PX_SSRF_DECLARED_HOST);
	ck_assert_int_eq(FILTER("db.internal", "10.1.1.1", "fd00::5"), PX_SSRF_ALLOW);
	ck_denied_with(FILTER("db.internal", "127.0.0.1"), PX_SSRF_DENY_DECLARED);
	ck_assert_str_eq(detail, "db.internal resolves to always-blocked address 127.0.0.1 "
				 "(loopback), connection rejected");
	ck_denied_with(FILTER("db.internal", "169.254.169.254"), PX_SSRF_DENY_DECLARED);
	ck_denied_with(FILTER("db.internal", "10.1.1.1", "::ffff:169.254.169.254"),
		       PX_SSRF_DENY_DECLARED);
	ck_assert_str_eq(px_ssrf_reason(PX_SSRF_DENY_DECLARED), "declared endpoint check failed");
}
END_TEST

START_TEST(loopback_and_metadata_denied_even_when_allowed_ips_lists_them)
{
	const char *lists[] = {"127.0.0.1",   "169.254.169.254",  "0.0.0.0/0",
			       "127.0.0.0/8", "::ffff:127.0.0.1", "::/0"};
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		char text[256];
		snprintf(
		    text, sizeof(text),
		    "[network.meta]\nendpoint = meta.example.com:80\nallowed_ips = 10.0.0.0/8\n"
		    "allowed_ips = %s\nbinary = /usr/bin/curl\n",
		    lists[i]);
		load(text);
		ck_assert_int_eq(plan_for("meta.example.com", 80),
				 PX_SSRF_DENY_INVALID_ALLOWED_IPS);
		ck_assert_ptr_nonnull(strstr(detail, "falls within always-blocked range"));
		/* The filter re-checks the list: a plan cannot be used to bypass it. */
		n_out = 99;
		ck_denied_with(FILTER("meta.example.com", "10.0.0.1"),
			       PX_SSRF_DENY_INVALID_ALLOWED_IPS);
		pol_free(&pol);
	}
	ck_assert_str_eq(px_ssrf_reason(PX_SSRF_DENY_INVALID_ALLOWED_IPS),
			 "invalid allowed_ips in policy");
	struct px_ssrf_ip lo = ip("127.0.0.1");
	struct pol_cidr all = cidr("127.0.0.0/8");
	struct px_ssrf_plan forged = {
	    .mode = PX_SSRF_ALLOWED_IPS, .port = 80, .allowed_ips = &all, .n_allowed_ips = 1};
	ck_assert_int_eq(px_ssrf_filter(&forged, "x", &lo, 1, out, &n_out, NULL, 0),
			 PX_SSRF_DENY_INVALID_ALLOWED_IPS);
}
END_TEST

START_TEST(ip_literal_host_is_its_own_allowed_ips)
{
	load("[network.lit]\nendpoint = 10.0.0.5:5432\nendpoint = 127.0.0.1:8080\n"
	     "endpoint = 169.254.169.254:80\nendpoint = [::ffff:127.0.0.1]:80\n"
	     "endpoint = [::127.0.0.1]:80\nbinary = /usr/bin/curl\n");
	ck_assert_int_eq(plan_for("10.0.0.5", 5432), PX_SSRF_ALLOW);
	ck_assert_int_eq(plan.mode, PX_SSRF_IP_LITERAL);
	ck_assert_int_eq(FILTER("10.0.0.5", "10.0.0.5"), PX_SSRF_ALLOW);
	ck_denied_with(FILTER("10.0.0.5", "10.0.0.6"), PX_SSRF_DENY_ALLOWED_IPS);
	ck_assert_int_eq(plan_for("127.0.0.1", 8080), PX_SSRF_DENY_ALLOWED_IPS);
	ck_assert_int_eq(plan_for("169.254.169.254", 80), PX_SSRF_DENY_ALLOWED_IPS);
	ck_assert_int_eq(plan_for("::127.0.0.1", 80), PX_SSRF_DENY_ALLOWED_IPS);
	ck_assert_int_eq(plan_for("::ffff:127.0.0.1", 80), PX_SSRF_DENY_ALLOWED_IPS);
	ck_assert_str_eq(detail, "127.0.0.1 is an always-blocked address (loopback), connection "
				 "rejected");
	/* Even a plan that slipped through refuses the address at the filter. */
	ck_denied_with(FILTER("127.0.0.1", "127.0.0.1"), PX_SSRF_DENY_ALLOWED_IPS);
}
END_TEST

START_TEST(mode_precedence_allowed_ips_then_literal_then_declared)
{
	load("[network.a]\nendpoint = 10.0.0.5:5432\nendpoint = db.corp:5432\n"
	     "allowed_ips = 10.0.9.0/24\nbinary = /usr/bin/curl\n"
	     "[network.b]\nendpoint = 10.0.0.7:5432\nendpoint = db.lan:5432\n"
	     "binary = /usr/bin/curl\n");
	/* allowed_ips beats the IP literal: 10.0.0.5 itself is not in 10.0.9.0/24. */
	ck_assert_int_eq(plan_for("10.0.0.5", 5432), PX_SSRF_ALLOW);
	ck_assert_int_eq(plan.mode, PX_SSRF_ALLOWED_IPS);
	ck_denied_with(FILTER("10.0.0.5", "10.0.0.5"), PX_SSRF_DENY_ALLOWED_IPS);
	/* allowed_ips beats the exact declared host. */
	ck_assert_int_eq(plan_for("db.corp", 5432), PX_SSRF_ALLOW);
	ck_assert(dec.exact_declared);
	ck_assert_int_eq(plan.mode, PX_SSRF_ALLOWED_IPS);
	/* The literal beats the exact declared flag. */
	ck_assert_int_eq(plan_for("10.0.0.7", 5432), PX_SSRF_ALLOW);
	ck_assert_int_eq(plan.mode, PX_SSRF_IP_LITERAL);
	ck_assert_int_eq(plan_for("db.lan", 5432), PX_SSRF_ALLOW);
	ck_assert_int_eq(plan.mode, PX_SSRF_DECLARED_HOST);
}
END_TEST

START_TEST(control_plane_ports_refused_outside_the_default_mode)
{
	load("[network.k8s]\nendpoint = api.corp:6443\nendpoint = *.k8s.corp:2379\n"
	     "endpoint = 10.0.0.1:10250\nbinary = /usr/bin/curl\n"
	     "[network.ips]\nendpoint = :10255\nendpoint = :2380\nallowed_ips = 10.0.0.0/8\n"
	     "binary = /usr/bin/curl\n");
	ck_assert_int_eq(plan_for("api.corp", 6443), PX_SSRF_DENY_DECLARED);
	ck_assert_str_eq(detail, "port 6443 is a blocked control-plane port, connection rejected");
	ck_assert_int_eq(plan_for("10.0.0.1", 10250), PX_SSRF_DENY_ALLOWED_IPS);
	ck_assert_int_eq(plan_for("node.corp", 10255), PX_SSRF_DENY_ALLOWED_IPS);
	ck_assert_int_eq(plan_for("etcd.corp", 2380), PX_SSRF_DENY_ALLOWED_IPS);
	/* The default mode does not refuse the port (public addresses only anyway). */
	ck_assert_int_eq(plan_for("etcd.k8s.corp", 2379), PX_SSRF_ALLOW);
	ck_assert_int_eq(plan.mode, PX_SSRF_PUBLIC_ONLY);
	/* The filter refuses it too, whatever the addresses. */
	struct px_ssrf_plan p = {.mode = PX_SSRF_DECLARED_HOST, .port = 2380};
	struct px_ssrf_ip a = ip("10.0.0.1");
	ck_assert_int_eq(px_ssrf_filter(&p, "x", &a, 1, out, &n_out, NULL, 0),
			 PX_SSRF_DENY_DECLARED);
	ck_assert_uint_eq(n_out, 0);
}
END_TEST

START_TEST(hostless_endpoint_restricts_any_name_to_allowed_ips)
{
	load("[network.db]\nendpoint = :5432\nallowed_ips = 10.0.5.0/24\nallowed_ips = fd00::/8\n"
	     "binary = /usr/bin/curl\n");
	ck_assert_int_eq(plan_for("whatever.example", 5432), PX_SSRF_ALLOW);
	ck_assert_int_eq(plan.mode, PX_SSRF_ALLOWED_IPS);
	ck_assert_int_eq(FILTER("whatever.example", "10.0.5.1", "fd00::1"), PX_SSRF_ALLOW);
	ck_denied_with(FILTER("whatever.example", "8.8.8.8"), PX_SSRF_DENY_ALLOWED_IPS);
	/* A hostless endpoint that somehow lost its list is refused, not opened up. */
	struct pol_endpoint bare = {.kind = POL_HOST_NONE};
	ck_assert_int_eq(px_ssrf_plan("x", 5432, &bare, false, &plan, NULL, 0),
			 PX_SSRF_DENY_INVALID_ALLOWED_IPS);
}
END_TEST

START_TEST(hostless_allowed_ips_never_restrict_a_host_another_rule_names)
{
	/* OpenShell applies the first allowed_ips across all allowing rules, so a hostless rule
	 * on the same port turned an exact host's public answer into a denial. Not here. */
	load(
	    "[network.a_plain]\nendpoint = api.x.com:443\nbinary = /usr/bin/curl\n"
	    "[network.z_ips]\nendpoint = :443\nallowed_ips = 10.0.0.0/8\nbinary = /usr/bin/curl\n");
	ck_assert_int_eq(plan_for("api.x.com", 443), PX_SSRF_ALLOW);
	ck_assert_int_ne(plan.mode, PX_SSRF_ALLOWED_IPS);
	ck_assert_int_eq(FILTER("api.x.com", "93.184.216.34"), PX_SSRF_ALLOW);
	/* A name only the hostless rule admits stays inside its addresses. */
	ck_assert_int_eq(plan_for("other.x.com", 443), PX_SSRF_ALLOW);
	ck_assert_int_eq(plan.mode, PX_SSRF_ALLOWED_IPS);
	ck_denied_with(FILTER("other.x.com", "93.184.216.34"), PX_SSRF_DENY_ALLOWED_IPS);
	ck_assert_int_eq(FILTER("other.x.com", "10.2.3.4"), PX_SSRF_ALLOW);
}
END_TEST

START_TEST(allowed_ips_of_an_endpoint_naming_the_host_restrict_it_across_rules)
{
	/* An endpoint that names the host with allowed_ips (in any allowing rule) still
	 * restricts that host, as in OpenShell. */
	load("[network.a_plain]\nendpoint = api.x.com:443\nbinary = /usr/bin/curl\n"
	     "[network.b_ips]\nendpoint = api.x.com:443\nallowed_ips = 10.0.0.0/8\n"
	     "binary = /usr/bin/curl\n");
	ck_assert_int_eq(plan_for("api.x.com", 443), PX_SSRF_ALLOW);
	ck_assert_int_eq(plan.mode, PX_SSRF_ALLOWED_IPS);
	ck_denied_with(FILTER("api.x.com", "93.184.216.34"), PX_SSRF_DENY_ALLOWED_IPS);
	ck_assert_int_eq(FILTER("api.x.com", "10.2.3.4"), PX_SSRF_ALLOW);
}
END_TEST

static Suite *px_ssrf_suite(void)
{
	Suite *s = suite_create("px_ssrf");
	TCase *tc = tcase_create("classify");
	tcase_add_test(tc, always_blocked_ipv4_ranges_at_their_edges);
	tcase_add_test(tc, internal_ipv4_ranges_at_their_edges);
	tcase_add_test(tc, ipv6_ranges_at_their_edges);
	tcase_add_test(tc, ipv4_mapped_and_nat64_addresses_classify_as_their_ipv4);
	tcase_add_test(tc, ip_literals_are_parsed_strictly);
	tcase_add_test(tc, mapped_addresses_normalise_to_ipv4);
	tcase_add_test(tc, sockaddr_round_trip);
	tcase_add_test(tc, allowed_ips_entries_overlapping_always_blocked_ranges_are_invalid);
	tcase_add_test(tc, cidr_contains_across_mapped_forms);
	tcase_add_test(tc, control_plane_ports);
	tcase_add_test(tc, reason_strings_are_the_contract_ones);
	suite_add_tcase(s, tc);

	tc = tcase_create("destinations");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, default_mode_allows_only_public_addresses);
	tcase_add_test(tc, resolution_is_all_or_nothing);
	tcase_add_test(tc, validated_addresses_are_normalised_deduplicated_and_in_order);
	tcase_add_test(tc, private_address_needs_allowed_ips_or_an_exact_host);
	tcase_add_test(tc, exact_declared_host_may_be_private_but_never_always_blocked);
	tcase_add_test(tc, loopback_and_metadata_denied_even_when_allowed_ips_lists_them);
	tcase_add_test(tc, ip_literal_host_is_its_own_allowed_ips);
	tcase_add_test(tc, mode_precedence_allowed_ips_then_literal_then_declared);
	tcase_add_test(tc, control_plane_ports_refused_outside_the_default_mode);
	tcase_add_test(tc, hostless_endpoint_restricts_any_name_to_allowed_ips);
	tcase_add_test(tc, hostless_allowed_ips_never_restrict_a_host_another_rule_names);
	tcase_add_test(tc, allowed_ips_of_an_endpoint_naming_the_host_restrict_it_across_rules);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(px_ssrf_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
