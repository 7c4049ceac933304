/* Unit tests for the gateway policy conversion (session/gw_policy.c): protobuf-c SandboxPolicy
 * messages built here go through gw_policy_convert into the same model the INI loader fills.
 *
 * Each test pins one rule: a default, a validation that names its field, a layer-7 field
 * converted, that INI and gateway sources give the same model, or that the reverse conversion
 * (gw_policy_to_proto) gives back every field. One test decodes hand-written
 * wire bytes, so a wrong field number in session/proto/sandbox.proto fails it.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pol_build.h"
#include "session/gateway/gw_policy.h"
#include "supervisor/log.h"

/* --- building messages --------------------------------------------------------------------- */

struct ep_spec {
	const char *host;
	uint32_t port;
	uint32_t *ports;
	size_t n_ports;
	char **ips;
	size_t n_ips;
	const char *protocol, *access, *tls;
};

/* Everything a test message points at lives here, so one reset frees it all. */
struct msgs {
	Openshell__Sandbox__V1__SandboxPolicy pol;
	Openshell__Sandbox__V1__FilesystemPolicy fs;
	Openshell__Sandbox__V1__LandlockPolicy ll;
	Openshell__Sandbox__V1__ProcessPolicy proc;
	Openshell__Sandbox__V1__SandboxPolicy__NetworkPoliciesEntry ent[4];
	Openshell__Sandbox__V1__SandboxPolicy__NetworkPoliciesEntry *entp[4];
	Openshell__Sandbox__V1__NetworkPolicyRule rule[4];
	Openshell__Sandbox__V1__NetworkEndpoint ep[4][4];
	Openshell__Sandbox__V1__NetworkEndpoint *epp[4][4];
	Openshell__Sandbox__V1__NetworkBinary bin[4][4];
	Openshell__Sandbox__V1__NetworkBinary *binp[4][4];
	Openshell__Sandbox__V1__L7Rule l7;
	Openshell__Sandbox__V1__L7Rule *l7p;
};

static struct msgs M;

static void msgs_reset(void)
{
	memset(&M, 0, sizeof(M));
	openshell__sandbox__v1__sandbox_policy__init(&M.pol);
	openshell__sandbox__v1__filesystem_policy__init(&M.fs);
	openshell__sandbox__v1__landlock_policy__init(&M.ll);
	openshell__sandbox__v1__process_policy__init(&M.proc);
	openshell__sandbox__v1__l7_rule__init(&M.l7);
	M.l7p = &M.l7;
}

static void set_fs(bool include_workdir, char **ro, size_t n_ro, char **rw, size_t n_rw)
{
	M.fs.include_workdir = include_workdir;
	M.fs.read_only = ro;
	M.fs.n_read_only = n_ro;
	M.fs.read_write = rw;
	M.fs.n_read_write = n_rw;
	M.pol.filesystem = &M.fs;
}

/* Add rule @key with @n_eps endpoints and the binaries in @bins (NULL-terminated). */
static void add_rule(const char *key, const struct ep_spec *eps, size_t n_eps, const char **bins)
{
	size_t r = M.pol.n_network_policies;
	openshell__sandbox__v1__sandbox_policy__network_policies_entry__init(&M.ent[r]);
	openshell__sandbox__v1__network_policy_rule__init(&M.rule[r]);
	M.ent[r].key = (char *)key;
	M.ent[r].value = &M.rule[r];
	M.rule[r].name = (char *)key;
	for (size_t i = 0; i < n_eps; i++) {
		Openshell__Sandbox__V1__NetworkEndpoint *e = &M.ep[r][i];
		openshell__sandbox__v1__network_endpoint__init(e);
		e->host = (char *)(eps[i].host ? eps[i].host : "");
		e->port = eps[i].port;
		e->ports = eps[i].ports;
		e->n_ports = eps[i].n_ports;
		e->allowed_ips = eps[i].ips;
		e->n_allowed_ips = eps[i].n_ips;
		if (eps[i].protocol)
			e->protocol = (char *)eps[i].protocol;
		if (eps[i].access)
			e->access = (char *)eps[i].access;
		if (eps[i].tls)
			e->tls = (char *)eps[i].tls;
		M.epp[r][i] = e;
	}
	M.rule[r].endpoints = M.epp[r];
	M.rule[r].n_endpoints = n_eps;
	size_t nb = 0;
	for (; bins && bins[nb]; nb++) {
		openshell__sandbox__v1__network_binary__init(&M.bin[r][nb]);
		M.bin[r][nb].path = (char *)bins[nb];
		M.binp[r][nb] = &M.bin[r][nb];
	}
	M.rule[r].binaries = M.binp[r];
	M.rule[r].n_binaries = nb;
	M.entp[r] = &M.ent[r];
	M.pol.network_policies = M.entp;
	M.pol.n_network_policies = r + 1;
}

static bool policy_is_empty(const struct pol_policy *p)
{
	return p->read_only.n == 0 && p->read_write.n == 0 && p->n_rules == 0 && !p->rules &&
	       !p->run_as_user && !p->run_as_group && !p->source;
}

#define ck_convert_fails(want)                                                                    \
	do {                                                                                      \
		struct pol_policy p_;                                                             \
		struct sv_err e_ = {0};                                                           \
		int r_ = gw_policy_convert(&M.pol, &p_, false, &e_);                              \
		ck_assert_msg(r_ < 0, "expected a failure containing '%s'", (want));              \
		ck_assert_msg(strstr(e_.msg, (want)), "message '%s' lacks '%s'", e_.msg, (want)); \
		ck_assert_msg(strncmp(e_.msg, "gateway policy: ", 16) == 0, "no prefix: %s",      \
			      e_.msg);                                                            \
		ck_assert(policy_is_empty(&p_));                                                  \
	} while (0)

static void convert_ok(struct pol_policy *p, void *unused)
{
	struct sv_err e = {0};
	(void)unused;
	int r = gw_policy_convert(&M.pol, p, unused != NULL, &e);
	ck_assert_msg(r == 0, "unexpected failure: %s", e.msg);
	ck_assert_int_eq(pol_validate(p, &e), 0);
}

static void setup(void)
{
	sv_log_setup(SV_LOG_ERROR, SV_LOG_TEXT); /* validation warnings are tested in test_policy_l7 */
	msgs_reset();
}

/* --- defaults ------------------------------------------------------------------------------ */

START_TEST(empty_message_is_workdir_only_best_effort_no_egress)
{
	struct pol_policy p;
	convert_ok(&p, NULL);
	ck_assert_uint_eq(p.version, 1);
	ck_assert(p.include_workdir); /* filesystem absent: contract §3.1 runtime default */
	ck_assert_uint_eq(p.read_only.n + p.read_write.n, 0);
	ck_assert_int_eq(p.landlock_compat, POL_BEST_EFFORT);
	ck_assert_ptr_null(p.run_as_user);
	ck_assert_ptr_null(p.run_as_group);
	ck_assert_uint_eq(p.n_rules, 0);
	ck_assert_str_eq(p.source, "gateway");
	pol_free(&p);
}
END_TEST

START_TEST(present_filesystem_keeps_include_workdir_false)
{
	char *ro[] = {"/usr"};
	set_fs(false, ro, 1, NULL, 0);
	struct pol_policy p;
	convert_ok(&p, NULL);
	ck_assert(!p.include_workdir);
	pol_free(&p);
}
END_TEST

/* --- the model filled ---------------------------------------------------------------------- */

START_TEST(full_policy_fills_the_model)
{
	char *ro[] = {"/usr", "//lib/./x/", "/usr"};
	char *rw[] = {"/tmp", "/sandbox"};
	set_fs(true, ro, 3, rw, 2);
	M.ll.compatibility = "hard_requirement";
	M.pol.landlock = &M.ll;
	M.proc.run_as_user = "007";
	M.proc.run_as_group = "sandbox";
	M.pol.process = &M.proc;
	uint32_t ports[] = {443, 8443};
	struct ep_spec eps[] = {{.host = "PyPI.org", .port = 80, .ports = ports, .n_ports = 2},
				{.host = "*.pythonhosted.org", .port = 443}};
	const char *bins[] = {"/usr/bin/pip", "/usr/lib/**/python3*", NULL};
	add_rule("pypi", eps, 2, bins);

	struct pol_policy p;
	convert_ok(&p, NULL);
	ck_assert_uint_eq(p.read_only.n, 2); /* normalised, duplicate folded */
	ck_assert_str_eq(p.read_only.v[0], "/usr");
	ck_assert_str_eq(p.read_only.v[1], "/lib/x");
	ck_assert_uint_eq(p.read_write.n, 2);
	ck_assert_str_eq(p.read_write.v[1], "/sandbox");
	ck_assert_int_eq(p.landlock_compat, POL_HARD_REQUIREMENT);
	ck_assert_str_eq(p.run_as_user, "7");
	ck_assert_str_eq(p.run_as_group, "sandbox");
	ck_assert_uint_eq(p.n_rules, 1);
	const struct pol_network_rule *r = &p.rules[0];
	ck_assert_str_eq(r->name, "pypi");
	ck_assert_uint_eq(r->n_endpoints, 2);
	ck_assert_int_eq(r->endpoints[0].kind, POL_HOST_NAME);
	ck_assert_str_eq(r->endpoints[0].host, "pypi.org");
	ck_assert_uint_eq(r->endpoints[0].n_ports, 2); /* `ports` wins over `port` */
	ck_assert_uint_eq(r->endpoints[0].ports[0], 443);
	ck_assert_uint_eq(r->endpoints[0].ports[1], 8443);
	ck_assert_int_eq(r->endpoints[1].kind, POL_HOST_GLOB);
	ck_assert_uint_eq(r->endpoints[1].n_ports, 1);
	ck_assert_uint_eq(r->endpoints[1].ports[0], 443);
	ck_assert_uint_eq(r->binaries.n, 2);
	ck_assert_str_eq(r->binaries.v[1], "/usr/lib/**/python3*");
	pol_free(&p);
}
END_TEST

START_TEST(hostless_endpoint_with_allowed_ips)
{
	char *ips[] = {"10.0.5.0/24", "fd00::1"};
	struct ep_spec eps[] = {{.port = 5432, .ips = ips, .n_ips = 2}};
	add_rule("db", eps, 1, NULL);
	struct pol_policy p;
	convert_ok(&p, NULL);
	const struct pol_endpoint *e = &p.rules[0].endpoints[0];
	ck_assert_int_eq(e->kind, POL_HOST_NONE);
	ck_assert_ptr_null(e->host);
	ck_assert_uint_eq(e->n_allowed_ips, 2);
	ck_assert_uint_eq(e->allowed_ips[0].family, 4);
	ck_assert_uint_eq(e->allowed_ips[0].prefix, 24);
	ck_assert_uint_eq(e->allowed_ips[1].family, 6);
	ck_assert_uint_eq(e->allowed_ips[1].prefix, 128);
	pol_free(&p);
}
END_TEST

/* The same policy from the INI loader and from the gateway is the same model. */
START_TEST(ini_and_gateway_give_the_same_model)
{
	static const char ini[] =
	    "[filesystem]\ninclude_workdir = false\nread_only = /usr\n"
	    "read_write = /tmp\n[landlock]\ncompatibility = hard_requirement\n"
	    "[process]\nrun_as_user = 1000\n"
	    "[network.api]\nendpoint = api.example.com:443,8443\n"
	    "binary = /usr/bin/curl\n";
	struct pol_policy a, b;
	struct sv_err e = {0};
	ck_assert_int_eq(pol_load_buffer("t.ini", ini, sizeof(ini) - 1, &a, &e), 0);
	char *ro[] = {"/usr"}, *rw[] = {"/tmp"};
	set_fs(false, ro, 1, rw, 1);
	M.ll.compatibility = "hard_requirement";
	M.pol.landlock = &M.ll;
	M.proc.run_as_user = "1000";
	M.pol.process = &M.proc;
	uint32_t ports[] = {443, 8443};
	struct ep_spec eps[] = {{.host = "api.example.com", .ports = ports, .n_ports = 2}};
	const char *bins[] = {"/usr/bin/curl", NULL};
	add_rule("api", eps, 1, bins);
	convert_ok(&b, NULL);
	ck_assert(gw_policy_static_equal(&a, &b));
	ck_assert(gw_policy_network_equal(&a, &b));
	pol_free(&a);
	pol_free(&b);
}
END_TEST

START_TEST(generations_compare_static_and_network_parts_apart)
{
	char *ro[] = {"/usr"};
	set_fs(true, ro, 1, NULL, 0);
	struct ep_spec eps[] = {{.host = "a.example", .port = 443}};
	add_rule("a", eps, 1, NULL);
	struct pol_policy a, b, c;
	convert_ok(&a, NULL);
	M.ep[0][0].port = 444;
	convert_ok(&b, NULL);
	ck_assert(gw_policy_static_equal(&a, &b));
	ck_assert(!gw_policy_network_equal(&a, &b));
	char *ro2[] = {"/usr", "/opt"};
	set_fs(true, ro2, 2, NULL, 0);
	convert_ok(&c, NULL);
	ck_assert(!gw_policy_static_equal(&b, &c));
	ck_assert(gw_policy_network_equal(&b, &c));
	pol_free(&a);
	pol_free(&b);
	pol_free(&c);
}
END_TEST

/* --- L7: converted whole, refused by the proxy (test_px_policy), never widened to L4 ------- */

START_TEST(l7_endpoints_are_converted_with_their_fields)
{
	struct ep_spec eps[] = {{.host = "api.github.com", .port = 443, .protocol = "rest"},
				{.host = "github.com", .port = 443},
				{.host = "x.github.com", .port = 443, .access = "read-only",
				 .protocol = "REST"},
				{.host = "y.github.com", .port = 443, .tls = "terminate"}};
	add_rule("github", eps, 4, NULL);
	struct ep_spec tcp[] = {{.host = "mail.example", .port = 25, .protocol = "tcp",
				 .tls = "skip"}};
	add_rule("mail", tcp, 1, NULL);
	Openshell__Sandbox__V1__L7Allow allow = OPENSHELL__SANDBOX__V1__L7_ALLOW__INIT;
	allow.method = "GET";
	allow.path = "/repos/**";
	M.l7.allow = &allow;
	M.ep[0][0].rules = &M.l7p;
	M.ep[0][0].n_rules = 1;
	M.ep[0][0].enforcement = "enforce";
	struct pol_policy p;
	convert_ok(&p, NULL);
	ck_assert_uint_eq(p.n_rules, 2);
	ck_assert_uint_eq(p.rules[0].n_endpoints, 4);
	const struct pol_endpoint *e = &p.rules[0].endpoints[0];
	ck_assert_int_eq(e->protocol, POL_PROTO_REST);
	ck_assert_int_eq(e->enforcement, POL_ENFORCE_ENFORCE);
	ck_assert(e->rules_set);
	ck_assert_uint_eq(e->n_rules, 1);
	ck_assert_str_eq(e->rules[0].method, "GET");
	ck_assert_str_eq(e->rules[0].path, "/repos/**");
	ck_assert_ptr_null(e->rules[0].command);
	ck_assert_int_eq(p.rules[0].endpoints[1].protocol, POL_PROTO_NONE);
	ck_assert_int_eq(p.rules[0].endpoints[2].protocol, POL_PROTO_REST);
	ck_assert_int_eq(p.rules[0].endpoints[2].access, POL_ACCESS_READ_ONLY);
	ck_assert_int_eq(p.rules[0].endpoints[3].tls, POL_TLS_TERMINATE);
	ck_assert(p.rules[0].endpoints[3].tls_set);
	ck_assert_int_eq(p.rules[1].endpoints[0].protocol, POL_PROTO_TCP);
	ck_assert_int_eq(p.rules[1].endpoints[0].tls, POL_TLS_SKIP);
	pol_free(&p);
}
END_TEST

START_TEST(invalid_l7_endpoint_fails_naming_the_field)
{
	struct ep_spec eps[] = {{.host = "a.example", .port = 443, .protocol = "rest"}};
	add_rule("r", eps, 1, NULL);
	ck_convert_fails("network.r.endpoints[0]: protocol requires rules or access to define "
			 "allowed traffic");
	msgs_reset();
	struct ep_spec eps2[] = {{.host = "a.example", .port = 443, .protocol = "ftp"}};
	add_rule("r", eps2, 1, NULL);
	ck_convert_fails("network_policies[\"r\"].endpoints[0].protocol: unknown protocol 'ftp'");
	/* The gateway-side rule: GraphQL operation types exactly query, mutation, subscription. */
	msgs_reset();
	struct ep_spec eps3[] = {{.host = "a.example", .port = 443, .protocol = "graphql"}};
	add_rule("r", eps3, 1, NULL);
	Openshell__Sandbox__V1__L7Allow allow = OPENSHELL__SANDBOX__V1__L7_ALLOW__INIT;
	allow.operation_type = "*";
	M.l7.allow = &allow;
	M.ep[0][0].rules = &M.l7p;
	M.ep[0][0].n_rules = 1;
	ck_convert_fails("endpoints[0].rules[0].allow.operation_type must be query, mutation, or "
			 "subscription");
	allow.operation_type = "query";
	struct pol_policy p;
	convert_ok(&p, NULL);
	pol_free(&p);
}
END_TEST

START_TEST(relative_read_only_path_names_its_index)
{
	char *ro[] = {"/usr", "usr/lib"};
	set_fs(true, ro, 2, NULL, 0);
	ck_convert_fails("filesystem.read_only[1]: path must be absolute");
}
END_TEST

START_TEST(read_write_root_is_refused)
{
	char *rw[] = {"/"};
	set_fs(true, NULL, 0, rw, 1);
	ck_convert_fails("filesystem.read_write[0]:");
}
END_TEST

START_TEST(path_in_both_lists_is_refused)
{
	char *ro[] = {"/data"}, *rw[] = {"/data/"};
	set_fs(true, ro, 1, rw, 1);
	ck_convert_fails("filesystem.read_write[0]: '/data' is already listed in read_only");
}
END_TEST

START_TEST(too_many_paths_refused)
{
	static char bufs[POL_PATHS_MAX + 1][16];
	static char *ro[POL_PATHS_MAX + 1];
	for (size_t i = 0; i <= POL_PATHS_MAX; i++) {
		snprintf(bufs[i], sizeof(bufs[i]), "/p%zu", i);
		ro[i] = bufs[i];
	}
	set_fs(true, ro, POL_PATHS_MAX + 1, NULL, 0);
	ck_convert_fails("too many filesystem paths");
}
END_TEST

START_TEST(bad_host_names_rule_and_endpoint)
{
	struct ep_spec eps[] = {{.host = "ok.example", .port = 443}, {.host = "a..b", .port = 443}};
	add_rule("pypi", eps, 2, NULL);
	ck_convert_fails("network_policies[\"pypi\"].endpoints[1].host: host has an empty label");
}
END_TEST

START_TEST(missing_or_out_of_range_port_refused)
{
	struct ep_spec eps[] = {{.host = "a.example"}};
	add_rule("r", eps, 1, NULL);
	ck_convert_fails("network_policies[\"r\"].endpoints[0].port: port must be in 1..65535 "
			 "(got 0)");
	msgs_reset();
	uint32_t ports[] = {443, 70000};
	struct ep_spec eps2[] = {{.host = "a.example", .ports = ports, .n_ports = 2}};
	add_rule("r", eps2, 1, NULL);
	ck_convert_fails("endpoints[0].ports[1]: port must be in 1..65535 (got 70000)");
}
END_TEST

START_TEST(duplicate_port_refused)
{
	uint32_t ports[] = {443, 443};
	struct ep_spec eps[] = {{.host = "a.example", .ports = ports, .n_ports = 2}};
	add_rule("r", eps, 1, NULL);
	ck_convert_fails("endpoints[0].ports[1]: duplicate port 443");
}
END_TEST

START_TEST(hostless_without_allowed_ips_refused)
{
	struct ep_spec eps[] = {{.port = 443}};
	add_rule("any", eps, 1, NULL);
	ck_convert_fails("network_policies[\"any\"].endpoints[0].allowed_ips: a hostless endpoint "
			 "needs allowed_ips");
}
END_TEST

START_TEST(bad_cidr_names_its_index)
{
	char *ips[] = {"10.0.0.0/8", "10.0.0.1/8"};
	struct ep_spec eps[] = {{.host = "a.example", .port = 443, .ips = ips, .n_ips = 2}};
	add_rule("r", eps, 1, NULL);
	ck_convert_fails("endpoints[0].allowed_ips[1]:");
}
END_TEST

START_TEST(rule_without_endpoints_refused)
{
	add_rule("empty", NULL, 0, NULL);
	ck_convert_fails("network_policies[\"empty\"].endpoints: rule has no endpoint");
}
END_TEST

START_TEST(bad_rule_key_is_quoted_safely)
{
	struct ep_spec eps[] = {{.host = "a.example", .port = 443}};
	add_rule("bad name\x01\"", eps, 1, NULL);
	ck_convert_fails("network_policies[\"bad name??\"]: rule name may only hold");
}
END_TEST

START_TEST(duplicate_rule_key_refused)
{
	struct ep_spec eps[] = {{.host = "a.example", .port = 443}};
	add_rule("r", eps, 1, NULL);
	add_rule("r", eps, 1, NULL);
	ck_convert_fails("network_policies[\"r\"]: duplicate key");
}
END_TEST

START_TEST(relative_binary_refused)
{
	struct ep_spec eps[] = {{.host = "a.example", .port = 443}};
	const char *bins[] = {"/usr/bin/ok", "curl", NULL};
	add_rule("r", eps, 1, bins);
	ck_convert_fails("network_policies[\"r\"].binaries[1].path: binary path must be absolute");
}
END_TEST

START_TEST(tcp_protocol_needs_a_dns_name)
{
	struct ep_spec eps[] = {{.host = "10.1.2.3", .port = 25, .protocol = "tcp"}};
	add_rule("r", eps, 1, NULL);
	ck_convert_fails("endpoints[0].host: a tcp endpoint needs a DNS host name");
}
END_TEST

START_TEST(unknown_tls_and_enforcement_refused)
{
	struct ep_spec eps[] = {{.host = "a.example", .port = 443, .tls = "maybe"}};
	add_rule("r", eps, 1, NULL);
	ck_convert_fails("endpoints[0].tls: expected skip, passthrough or terminate (got 'maybe')");
	msgs_reset();
	struct ep_spec eps2[] = {{.host = "a.example", .port = 443}};
	add_rule("r", eps2, 1, NULL);
	M.ep[0][0].enforcement = "strict";
	ck_convert_fails("endpoints[0].enforcement: expected enforce or audit");
}
END_TEST

START_TEST(unknown_landlock_compatibility_refused)
{
	M.ll.compatibility = "hard-requirement";
	M.pol.landlock = &M.ll;
	ck_convert_fails("landlock.compatibility: expected best_effort or hard_requirement "
			 "(got 'hard-requirement')");
}
END_TEST

START_TEST(root_identity_refused)
{
	M.proc.run_as_user = "root";
	M.pol.process = &M.proc;
	ck_convert_fails("process.run_as_user: must not be root");
	msgs_reset();
	M.proc.run_as_group = "0";
	M.pol.process = &M.proc;
	ck_convert_fails("process.run_as_group: must not be root");
}
END_TEST

START_TEST(unsupported_version_refused)
{
	M.pol.version = 2;
	ck_convert_fails("version: unsupported policy version 2");
}
END_TEST

/* --- the wire ------------------------------------------------------------------------------ */

/* SandboxPolicy written by hand from contract §3.1's field numbers:
 *   2 filesystem { 1 include_workdir: true, 2 read_only: "/usr" }
 *   3 landlock { 1 compatibility: "hard_requirement" }
 *   4 process { 1 run_as_user: "1000" }
 *   5 network_policies { key "p", value { 1 name "p",
 *        2 endpoints { 1 host "h.io", 9 ports [443] (packed) }, 3 binaries { 1 path "/b" } } } */
START_TEST(wire_bytes_from_the_contract_decode_and_convert)
{
	static const uint8_t wire[] = {
	    0x12, 0x08, 0x08, 0x01, 0x12, 0x04, '/',  'u',  's',  'r',	0x1a, 0x12, 0x0a, 0x10,
	    'h',  'a',	'r',  'd',  '_',  'r',	'e',  'q',  'u',  'i',	'r',  'e',  'm',  'e',
	    'n',  't',	0x22, 0x06, 0x0a, 0x04, '1',  '0',  '0',  '0',	0x2a, 0x1a, 0x0a, 0x01,
	    'p',  0x12, 0x15, 0x0a, 0x01, 'p',	0x12, 0x0a, 0x0a, 0x04, 'h',  '.',  'i',  'o',
	    0x4a, 0x02, 0xbb, 0x03, 0x1a, 0x04, 0x0a, 0x02, '/',  'b',
	};
	Openshell__Sandbox__V1__SandboxPolicy *msg =
	    openshell__sandbox__v1__sandbox_policy__unpack(NULL, sizeof(wire), wire);
	ck_assert_ptr_nonnull(msg);
	struct pol_policy p;
	struct sv_err e = {0};
	ck_assert_msg(gw_policy_convert(msg, &p, false, &e) == 0, "%s", e.msg);
	ck_assert(p.include_workdir);
	ck_assert_uint_eq(p.read_only.n, 1);
	ck_assert_str_eq(p.read_only.v[0], "/usr");
	ck_assert_int_eq(p.landlock_compat, POL_HARD_REQUIREMENT);
	ck_assert_str_eq(p.run_as_user, "1000");
	ck_assert_uint_eq(p.n_rules, 1);
	ck_assert_str_eq(p.rules[0].name, "p");
	ck_assert_str_eq(p.rules[0].endpoints[0].host, "h.io");
	ck_assert_uint_eq(p.rules[0].endpoints[0].n_ports, 1);
	ck_assert_uint_eq(p.rules[0].endpoints[0].ports[0], 443);
	ck_assert_str_eq(p.rules[0].binaries.v[0], "/b");
	pol_free(&p);
	openshell__sandbox__v1__sandbox_policy__free_unpacked(msg, NULL);
}
END_TEST


/* --- the reverse conversion ---------------------------------------------------------------- */

/* OpenShell sends an MCP `tool` matcher as params["name"]: do the same to a model. */
static void tool_to_params(struct pol_policy *p)
{
	for (size_t i = 0; i < p->n_rules; i++)
		for (size_t j = 0; j < p->rules[i].n_endpoints; j++) {
			struct pol_endpoint *e = &p->rules[i].endpoints[j];
			struct pol_l7_rule *lists[] = {e->rules, e->deny_rules};
			size_t ns[] = {e->n_rules, e->n_deny_rules};
			for (size_t l = 0; l < 2; l++)
				for (size_t k = 0; k < ns[l]; k++) {
					struct pol_l7_rule *r = &lists[l][k];
					if (!r->tool)
						continue;
					r->params = tb_grow(r->params, &r->n_params, sizeof(*r->params));
					r->params[r->n_params - 1] = *r->tool;
					r->params[r->n_params - 1].key = tb_dup("name");
					free(r->tool);
					r->tool = NULL;
				}
		}
}

/* Pack, unpack (as the wire would) and convert back. */
static void through_the_wire(const struct pol_policy *src, struct pol_policy *back, uint8_t **bytes,
			     size_t *len)
{
	Openshell__Sandbox__V1__SandboxPolicy *msg = NULL;
	struct sv_err e = {0};
	ck_assert_msg(gw_policy_to_proto(src, &msg, &e) == 0, "%s", e.msg);
	*len = openshell__sandbox__v1__sandbox_policy__get_packed_size(msg);
	*bytes = malloc(*len + 1);
	ck_assert_ptr_nonnull(*bytes);
	openshell__sandbox__v1__sandbox_policy__pack(msg, *bytes);
	gw_policy_proto_free(msg);
	Openshell__Sandbox__V1__SandboxPolicy *in =
	    openshell__sandbox__v1__sandbox_policy__unpack(NULL, *len, *bytes);
	ck_assert_ptr_nonnull(in);
	ck_assert_msg(gw_policy_convert(in, back, false, &e) == 0, "%s", e.msg);
	openshell__sandbox__v1__sandbox_policy__free_unpacked(in, NULL);
}

START_TEST(every_field_survives_model_to_proto_to_model)
{
	struct pol_policy full, back, again;
	tb_full_policy(&full);
	tool_to_params(&full);
	ck_assert_int_eq(pol_validate(&full, NULL), 0);
	uint8_t *b1, *b2;
	size_t n1, n2;
	through_the_wire(&full, &back, &b1, &n1);
	ck_assert(pol_equal(&full, &back));
	ck_assert_str_eq(back.source, "gateway");
	/* And stable: the second trip gives the same bytes. */
	through_the_wire(&back, &again, &b2, &n2);
	ck_assert(pol_equal(&back, &again));
	ck_assert_uint_eq(n1, n2);
	ck_assert(memcmp(b1, b2, n1) == 0);
	/* Spot checks that the fields are really there, not equally missing. */
	const struct pol_endpoint *e = &back.rules[0].endpoints[0];
	ck_assert_str_eq(e->credential_binding, "github-app");
	ck_assert_str_eq(e->rules[0].query[1].globs.v[1], "closed");
	ck_assert(e->rules[0].query[1].any);
	ck_assert_str_eq(back.middlewares[0].config_json, "{\"mode\":\"strict\",\"n\":2}");
	ck_assert_int_eq(back.rules[1].endpoints[0].mcp_allow_all_known_mcp_methods, POL_TRUE);
	free(b1);
	free(b2);
	pol_free(&full);
	pol_free(&back);
	pol_free(&again);
}
END_TEST

START_TEST(tool_matcher_goes_out_as_params_name)
{
	struct pol_policy full, back;
	tb_full_policy(&full);
	uint8_t *b;
	size_t n;
	through_the_wire(&full, &back, &b, &n);
	const struct pol_l7_rule *r = &back.rules[1].endpoints[0].rules[1];
	ck_assert_ptr_null(r->tool);
	ck_assert_uint_eq(r->n_params, 1);
	ck_assert_str_eq(r->params[0].key, "name");
	ck_assert_str_eq(r->params[0].globs.v[0], "status");
	free(b);
	pol_free(&full);
	pol_free(&back);
}
END_TEST

START_TEST(middleware_config_must_be_a_json_object)
{
	struct pol_policy full;
	tb_full_policy(&full);
	free(full.middlewares[0].config_json);
	full.middlewares[0].config_json = tb_dup("[1,2]");
	Openshell__Sandbox__V1__SandboxPolicy *msg = NULL;
	struct sv_err e = {0};
	ck_assert_int_lt(gw_policy_to_proto(&full, &msg, &e), 0);
	ck_assert_ptr_null(msg);
	ck_assert_ptr_nonnull(strstr(e.msg, "network_middlewares[\"redact\"]"));
	pol_free(&full);
}
END_TEST


START_TEST(middleware_config_struct_becomes_compact_json_and_nan_is_refused)
{
	Google__Protobuf__Value num = GOOGLE__PROTOBUF__VALUE__INIT, str = GOOGLE__PROTOBUF__VALUE__INIT;
	num.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
	num.number_value = 0.1;
	str.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
	str.string_value = "a\"b\\c\n";
	Google__Protobuf__Struct__FieldsEntry f1 = GOOGLE__PROTOBUF__STRUCT__FIELDS_ENTRY__INIT,
					      f2 = GOOGLE__PROTOBUF__STRUCT__FIELDS_ENTRY__INIT;
	f1.key = "n";
	f1.value = &num;
	f2.key = "s";
	f2.value = &str;
	Google__Protobuf__Struct__FieldsEntry *fs[] = {&f1, &f2};
	Google__Protobuf__Struct st = GOOGLE__PROTOBUF__STRUCT__INIT;
	st.fields = fs;
	st.n_fields = 2;
	char *json = NULL;
	struct sv_err e = {0};
	ck_assert_int_eq(gw_struct_to_json(&st, &json, &e), 0);
	ck_assert_str_eq(json, "{\"n\":0.1,\"s\":\"a\\\"b\\\\c\\u000a\"}");
	Google__Protobuf__Struct *back = NULL;
	ck_assert_int_eq(gw_struct_from_json(json, &back, &e), 0);
	char *again = NULL;
	ck_assert_int_eq(gw_struct_to_json(back, &again, &e), 0);
	ck_assert_str_eq(json, again);
	protobuf_c_message_free_unpacked(&back->base, NULL);
	free(json);
	free(again);
	num.number_value = 0.0 / 0.0;
	ck_assert_int_lt(gw_struct_to_json(&st, &json, &e), 0);
	ck_assert_ptr_nonnull(strstr(e.msg, "not finite"));
}
END_TEST

static Suite *gw_policy_suite(void)
{
	Suite *s = suite_create("gw_policy");
	TCase *tc = tcase_create("convert");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, empty_message_is_workdir_only_best_effort_no_egress);
	tcase_add_test(tc, present_filesystem_keeps_include_workdir_false);
	tcase_add_test(tc, full_policy_fills_the_model);
	tcase_add_test(tc, hostless_endpoint_with_allowed_ips);
	tcase_add_test(tc, ini_and_gateway_give_the_same_model);
	tcase_add_test(tc, generations_compare_static_and_network_parts_apart);
	tcase_add_test(tc, every_field_survives_model_to_proto_to_model);
	tcase_add_test(tc, tool_matcher_goes_out_as_params_name);
	tcase_add_test(tc, middleware_config_struct_becomes_compact_json_and_nan_is_refused);
	tcase_add_test(tc, middleware_config_must_be_a_json_object);
	tcase_add_test(tc, l7_endpoints_are_converted_with_their_fields);
	tcase_add_test(tc, invalid_l7_endpoint_fails_naming_the_field);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, relative_read_only_path_names_its_index);
	tcase_add_test(tc, read_write_root_is_refused);
	tcase_add_test(tc, path_in_both_lists_is_refused);
	tcase_add_test(tc, too_many_paths_refused);
	tcase_add_test(tc, bad_host_names_rule_and_endpoint);
	tcase_add_test(tc, missing_or_out_of_range_port_refused);
	tcase_add_test(tc, duplicate_port_refused);
	tcase_add_test(tc, hostless_without_allowed_ips_refused);
	tcase_add_test(tc, bad_cidr_names_its_index);
	tcase_add_test(tc, rule_without_endpoints_refused);
	tcase_add_test(tc, bad_rule_key_is_quoted_safely);
	tcase_add_test(tc, duplicate_rule_key_refused);
	tcase_add_test(tc, relative_binary_refused);
	tcase_add_test(tc, tcp_protocol_needs_a_dns_name);
	tcase_add_test(tc, unknown_tls_and_enforcement_refused);
	tcase_add_test(tc, unknown_landlock_compatibility_refused);
	tcase_add_test(tc, root_identity_refused);
	tcase_add_test(tc, unsupported_version_refused);
	suite_add_tcase(s, tc);

	tc = tcase_create("wire");
	tcase_add_test(tc, wire_bytes_from_the_contract_decode_and_convert);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(gw_policy_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
