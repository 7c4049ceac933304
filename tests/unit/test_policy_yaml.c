/* Unit tests for the YAML policy loader (OpenShell's format, contract §3.5) and for policy file
 * discovery (§3.4).
 *
 * Every schema field is checked in the model; every refusal (unknown key at each level, wrong
 * type, duplicate key, alias, anchor, tag, depth, size) is checked with its exact
 * "file:line:col: field: fault" message. Discovery runs against a fake root; no test reads the
 * real /etc.
 */
#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "supervisor/log.h"
#include "supervisor/policy/policy.h"

#define NAME "policy.yaml"

static int load(const char *text, struct pol_policy *p, struct sv_err *err)
{
	return pol_load_yaml_buffer(NAME, text, strlen(text), p, err);
}

static bool policy_is_empty(const struct pol_policy *p)
{
	return p->read_only.n == 0 && p->read_write.n == 0 && p->n_rules == 0 && !p->rules &&
	       !p->run_as_user && !p->run_as_group && !p->source && !p->middlewares;
}

/* Loading @text fails with exactly @want, and nothing is left half-filled. */
#define ck_yaml_fails(text, want)                                           \
	do {                                                                \
		struct pol_policy p_;                                       \
		struct sv_err e_ = {0};                                     \
		int r_ = load((text), &p_, &e_);                            \
		ck_assert_msg(r_ < 0, "expected failure for:\n%s", (text)); \
		ck_assert_str_eq(e_.msg, (want));                           \
		ck_assert(policy_is_empty(&p_));                            \
	} while (0)

static struct pol_policy ok(const char *text)
{
	struct pol_policy p;
	struct sv_err e = {0};
	int r = load(text, &p, &e);
	ck_assert_msg(r == 0, "load failed: %s\n%s", e.msg, text);
	return p;
}

#define V1 "version: 1\n"

/* --- every field reaches the model --------------------------------------------------------- */

static const char full[] =
    "# every field of OpenShell's schema\n"
    "version: 1\n"
    "filesystem_policy:\n"
    "  include_workdir: true\n"
    "  read_only: [/usr, /lib, '/etc//']\n"
    "  read_write: [/sandbox, /tmp]\n"
    "landlock: {compatibility: hard_requirement}\n"
    "process:\n"
    "  run_as_user: sandbox\n"
    "  run_as_group: \"007\"\n"
    "network_policies:\n"
    "  gh:\n"
    "    name: github\n"
    "    endpoints:\n"
    "      - host: API.GitHub.com\n"
    "        path: /repos/**\n"
    "        ports: [443, 8443]\n"
    "        protocol: REST\n"
    "        tls: skip\n"
    "        enforcement: enforce\n"
    "        rules:\n"
    "          - allow:\n"
    "              method: GET\n"
    "              path: /repos/*/issues\n"
    "              query:\n"
    "                state: open\n"
    "                label: {any: [bug, 'good first issue']}\n"
    "        deny_rules:\n"
    "          - method: DELETE\n"
    "            path: /**\n"
    "            command: DROP\n"
    "        allow_encoded_slash: true\n"
    "        websocket_credential_rewrite: true\n"
    "        allow_uninspected_credentials: true\n"
    "        credential_signing: sigv4\n"
    "        signing_service: s3\n"
    "        signing_region: eu-west-1\n"
    "        credential_binding: {provider: github}\n"
    "      - allowed_ips: [10.0.0.0/8, 'fd00::/8']\n"
    "        port: 5432\n"
    "        access: read-only\n"
    "        protocol: sql\n"
    "      - host: gql.example.com\n"
    "        port: 443\n"
    "        protocol: graphql\n"
    "        access: strange\n"
    "        tls: whatever\n"
    "        persisted_queries: allow_registered\n"
    "        graphql_max_body_bytes: 131072\n"
    "        graphql_persisted_queries:\n"
    "          abc123: {operation_type: query, operation_name: Viewer, fields: [viewer]}\n"
    /* A deny rule: allow rules together with access are a validation error. */
    "        deny_rules:\n"
    "          - {operation_type: query, operation_name: Viewer, fields: [a, b]}\n"
    "      - host: mcp.example.com\n"
    "        port: 443\n"
    "        protocol: mcp\n"
    "        json_rpc: {max_body_bytes: 1000}\n"
    /* Here, not on the first endpoint: with credential_signing it is a validation error. */
    "        request_body_credential_rewrite: true\n"
    "        mcp: {max_body_bytes: 2000, strict_tool_names: false,\n"
    "              allow_all_known_mcp_methods: true}\n"
    "        rules:\n"
    "          - allow:\n"
    "              method: tools/call\n"
    "              tool: {any: [search, fetch]}\n"
    "    binaries:\n"
    "      - {path: /usr/bin/gh, harness: true}\n"
    "      - path: '/usr/lib/**/node'\n"
    "  plain:\n"
    "    endpoints: [{host: '*.pypi.org', port: 443}]\n"
    "network_middlewares:\n"
    "  guard:\n"
    "    name: Content guard\n"
    "    middleware: content-guard\n"
    "    order: -5\n"
    "    on_error: fail_closed\n"
    "    endpoints: {include: [gql.example.com], exclude: ['*.pypi.org']}\n"
    "    config:\n"
    "      mode: redact\n"
    "      terms: [a, \"b\\\"c\", 1, 2.5, +3, 0x10, true, ~, '7']\n"
    "      nested: {k: [{}, []]}\n";

START_TEST(every_schema_field_reaches_the_model)
{
	struct pol_policy p = ok(full);
	ck_assert_str_eq(p.source, NAME);
	ck_assert_uint_eq(p.version, 1);
	ck_assert(p.include_workdir);
	ck_assert_uint_eq(p.read_only.n, 3);
	ck_assert_str_eq(p.read_only.v[2], "/etc");
	ck_assert_uint_eq(p.read_write.n, 2);
	ck_assert_str_eq(p.read_write.v[0], "/sandbox");
	ck_assert_int_eq(p.landlock_compat, POL_HARD_REQUIREMENT);
	ck_assert_str_eq(p.run_as_user, "sandbox");
	ck_assert_str_eq(p.run_as_group, "7"); /* canonical, as INI stores it */

	ck_assert_uint_eq(p.n_rules, 2);
	const struct pol_network_rule *gh = &p.rules[0];
	ck_assert_str_eq(gh->name, "github"); /* `name` wins over the map key */
	ck_assert_str_eq(p.rules[1].name, "plain");
	ck_assert_uint_eq(gh->n_endpoints, 4);
	ck_assert_uint_eq(gh->binaries.n, 2);
	ck_assert_str_eq(gh->binaries.v[1], "/usr/lib/**/node");

	const struct pol_endpoint *e = &gh->endpoints[0];
	ck_assert_int_eq(e->kind, POL_HOST_NAME);
	ck_assert_str_eq(e->host, "api.github.com");
	ck_assert_str_eq(e->path, "/repos/**");
	ck_assert_uint_eq(e->n_ports, 2);
	ck_assert_uint_eq(e->ports[0], 443);
	ck_assert_uint_eq(e->ports[1], 8443);
	ck_assert_int_eq(e->protocol, POL_PROTO_REST);
	ck_assert_int_eq(e->tls, POL_TLS_SKIP);
	ck_assert(e->tls_set);
	ck_assert_int_eq(e->enforcement, POL_ENFORCE_ENFORCE);
	ck_assert_int_eq(e->access, POL_ACCESS_NONE);
	ck_assert(e->rules_set);
	ck_assert_uint_eq(e->n_rules, 1);
	const struct pol_l7_rule *r = &e->rules[0];
	ck_assert_str_eq(r->method, "GET");
	ck_assert_str_eq(r->path, "/repos/*/issues");
	ck_assert_uint_eq(r->n_query, 2);
	ck_assert_str_eq(r->query[0].key, "state");
	ck_assert(!r->query[0].any);
	ck_assert_uint_eq(r->query[0].globs.n, 1);
	ck_assert_str_eq(r->query[0].globs.v[0], "open");
	ck_assert_str_eq(r->query[1].key, "label");
	ck_assert(r->query[1].any);
	ck_assert_uint_eq(r->query[1].globs.n, 2);
	ck_assert_str_eq(r->query[1].globs.v[1], "good first issue");
	ck_assert(e->deny_rules_set);
	ck_assert_uint_eq(e->n_deny_rules, 1);
	ck_assert_str_eq(e->deny_rules[0].method, "DELETE");
	ck_assert_str_eq(e->deny_rules[0].path, "/**");
	ck_assert_str_eq(e->deny_rules[0].command, "DROP");
	ck_assert(e->allow_encoded_slash && e->websocket_credential_rewrite &&
		  !e->request_body_credential_rewrite && e->allow_uninspected_credentials);
	ck_assert(!e->provider_credentialed && !e->advisor_proposed);
	ck_assert_str_eq(e->credential_signing, "sigv4");
	ck_assert_str_eq(e->signing_service, "s3");
	ck_assert_str_eq(e->signing_region, "eu-west-1");
	ck_assert_str_eq(e->credential_binding, "github");

	e = &gh->endpoints[1];
	ck_assert_int_eq(e->kind, POL_HOST_NONE);
	ck_assert_ptr_null(e->host);
	ck_assert_uint_eq(e->n_ports, 1);
	ck_assert_uint_eq(e->ports[0], 5432);
	ck_assert_uint_eq(e->n_allowed_ips, 2);
	ck_assert_uint_eq(e->allowed_ips[0].family, 4);
	ck_assert_uint_eq(e->allowed_ips[0].prefix, 8);
	ck_assert_uint_eq(e->allowed_ips[1].family, 6);
	ck_assert_int_eq(e->access, POL_ACCESS_READ_ONLY);
	ck_assert_int_eq(e->protocol, POL_PROTO_SQL);
	ck_assert(!e->tls_set && !e->rules_set && !e->deny_rules_set);

	e = &gh->endpoints[2];
	ck_assert_int_eq(e->protocol, POL_PROTO_GRAPHQL);
	ck_assert_int_eq(e->access, POL_ACCESS_UNKNOWN);
	ck_assert_str_eq(e->access_raw, "strange");
	ck_assert_int_eq(e->tls, POL_TLS_AUTO);
	ck_assert(e->tls_set);
	ck_assert_int_eq(e->enforcement, POL_ENFORCE_AUDIT);
	ck_assert_str_eq(e->persisted_queries, "allow_registered");
	ck_assert_uint_eq(e->graphql_max_body_bytes, 131072);
	ck_assert_uint_eq(e->n_gql_ops, 1);
	ck_assert_str_eq(e->gql_ops[0].id, "abc123");
	ck_assert_str_eq(e->gql_ops[0].operation_type, "query");
	ck_assert_str_eq(e->gql_ops[0].operation_name, "Viewer");
	ck_assert_uint_eq(e->gql_ops[0].fields.n, 1);
	ck_assert_str_eq(e->deny_rules[0].operation_type, "query");
	ck_assert_str_eq(e->deny_rules[0].operation_name, "Viewer");
	ck_assert_uint_eq(e->deny_rules[0].fields.n, 2);
	ck_assert_str_eq(e->deny_rules[0].fields.v[1], "b");
	ck_assert_ptr_null(e->deny_rules[0].method);

	e = &gh->endpoints[3];
	ck_assert_int_eq(e->protocol, POL_PROTO_MCP);
	ck_assert(e->request_body_credential_rewrite);
	ck_assert_uint_eq(e->json_rpc_max_body_bytes, 2000); /* mcp's limit wins, as OpenShell's */
	ck_assert_int_eq(e->mcp_strict_tool_names, POL_FALSE);
	ck_assert_int_eq(e->mcp_allow_all_known_mcp_methods, POL_TRUE);
	r = &e->rules[0];
	ck_assert_ptr_nonnull(r->tool);
	ck_assert_ptr_null(r->tool->key);
	ck_assert(r->tool->any);
	ck_assert_uint_eq(r->tool->globs.n, 2);
	/* MCP params parse (flattened "a.b" keys) but the validator refuses them as OpenShell
	 * does ("not supported yet"): see mcp_params_are_read_then_refused_by_validation. */
	ck_assert_uint_eq(r->n_params, 0);

	e = &p.rules[1].endpoints[0];
	ck_assert_int_eq(e->kind, POL_HOST_GLOB);
	ck_assert_str_eq(e->host, "*.pypi.org");

	ck_assert_uint_eq(p.n_middlewares, 1);
	const struct pol_middleware *m = &p.middlewares[0];
	ck_assert_str_eq(m->name, "guard");
	ck_assert_str_eq(m->middleware, "content-guard");
	ck_assert_int_eq(m->order, -5);
	ck_assert_str_eq(m->on_error, "fail_closed");
	ck_assert_uint_eq(m->include.n, 1);
	ck_assert_str_eq(m->include.v[0], "gql.example.com");
	ck_assert_str_eq(m->exclude.v[0], "*.pypi.org");
	ck_assert_str_eq(m->config_json,
			 "{\"mode\":\"redact\",\"terms\":[\"a\",\"b\\\"c\",1,2.5,3,16,"
			 "true,null,\"7\"],\"nested\":{\"k\":[{},[]]}}");
	pol_free(&p);
}
END_TEST

START_TEST(defaults_follow_openshell)
{
	/* No filesystem stanza: the model's include_workdir true; with it, absent means false. */
	struct pol_policy p = ok(V1);
	ck_assert(p.include_workdir);
	ck_assert_int_eq(p.landlock_compat, POL_BEST_EFFORT);
	ck_assert_ptr_null(p.run_as_user);
	ck_assert_uint_eq(p.n_rules, 0);
	pol_free(&p);
	p = ok(V1
	       "filesystem_policy: {read_only: [/usr]}\n"
	       "process: {run_as_user: '', run_as_group: '1000'}\nlandlock: {compatibility: ''}\n");
	ck_assert(!p.include_workdir);
	ck_assert_ptr_null(p.run_as_user); /* "" is OpenShell's omitted */
	ck_assert_str_eq(p.run_as_group, "1000");
	ck_assert_int_eq(p.landlock_compat, POL_BEST_EFFORT);
	pol_free(&p);
	/* The map key names a rule without `name`; `port` becomes the one-element port list. */
	p = ok(V1 "network_policies:\n  pypi:\n    endpoints:\n      - host: pypi.org\n"
		  "        port: 443\n        json_rpc: {max_body_bytes: 9}\n");
	ck_assert_str_eq(p.rules[0].name, "pypi");
	ck_assert_uint_eq(p.rules[0].endpoints[0].n_ports, 1);
	ck_assert_uint_eq(p.rules[0].endpoints[0].json_rpc_max_body_bytes, 9);
	ck_assert_uint_eq(p.rules[0].binaries.n, 0);
	pol_free(&p);
}
END_TEST

/* The same policy in YAML and INI gives the same model (compared through pol_describe). */
START_TEST(yaml_and_ini_give_the_same_model)
{
	const char *yaml =
	    V1 "filesystem_policy:\n  include_workdir: true\n"
	       "  read_only: [/usr, /etc]\n  read_write: [/tmp]\n"
	       "landlock: {compatibility: hard_requirement}\n"
	       "process: {run_as_user: sandbox, run_as_group: '1000'}\n"
	       "network_policies:\n  pypi:\n    endpoints:\n"
	       "      - {host: pypi.org, ports: [443, 80], allowed_ips: [10.1.0.0/16]}\n"
	       "      - {allowed_ips: [10.1.0.0/16], port: 8080}\n"
	       "    binaries: [{path: /usr/bin/pip}]\n";
	const char *ini = "[filesystem]\ninclude_workdir = true\nread_only = /usr\n"
			  "read_only = /etc\nread_write = /tmp\n"
			  "[landlock]\ncompatibility = hard_requirement\n"
			  "[process]\nrun_as_user = sandbox\nrun_as_group = 1000\n"
			  "[network.pypi]\nendpoint = pypi.org:443,80\nendpoint = :8080\n"
			  "allowed_ips = 10.1.0.0/16\nbinary = /usr/bin/pip\n";
	struct pol_policy a = ok(yaml), b;
	struct sv_err e = {0};
	ck_assert_msg(pol_load_buffer("x", ini, strlen(ini), &b, &e) == 0, "%s", e.msg);
	free(a.source);
	free(b.source);
	a.source = strdup("same");
	b.source = strdup("same");
	char *da = NULL, *db = NULL;
	ck_assert_int_eq(pol_describe(&a, &da), 0);
	ck_assert_int_eq(pol_describe(&b, &db), 0);
	ck_assert_str_eq(da, db);
	free(da);
	free(db);
	pol_free(&a);
	pol_free(&b);
}
END_TEST

/* --- refusals, each with its exact position ------------------------------------------------ */

START_TEST(port_out_of_range_names_line_column_and_field)
{
	ck_yaml_fails(V1 "network_policies:\n"
			 "  gh:\n"
			 "    endpoints:\n"
			 "      - host: github.com\n"
			 "        port: 70000\n",
		      "policy.yaml:6:15: network_policies.gh.endpoints[0].port: "
		      "must be 1..65535 (got 70000)");
	ck_yaml_fails(V1 "network_policies:\n  gh:\n    endpoints:\n"
			 "      - {host: a.com, port: 0}\n",
		      "policy.yaml:5:29: network_policies.gh.endpoints[0].port: "
		      "must be 1..65535 (got 0)");
	ck_yaml_fails(V1 "network_policies:\n  gh:\n    endpoints:\n"
			 "      - {host: a.com, ports: [443, -1]}\n",
		      "policy.yaml:5:36: network_policies.gh.endpoints[0].ports[1]: "
		      "must be 1..65535 (got -1)");
	ck_yaml_fails(V1 "network_policies:\n  gh:\n    endpoints:\n"
			 "      - {host: a.com, ports: [443, 443]}\n",
		      "policy.yaml:5:36: network_policies.gh.endpoints[0].ports[1]: "
		      "duplicate port 443");
	ck_yaml_fails(V1 "network_policies:\n  gh:\n    endpoints:\n"
			 "      - {host: a.com, port: 443, ports: [80]}\n",
		      "policy.yaml:5:41: network_policies.gh.endpoints[0].ports: "
		      "'port' and 'ports' are mutually exclusive");
	ck_yaml_fails(V1 "network_policies:\n  gh:\n    endpoints:\n"
			 "      - {host: a.com}\n",
		      "policy.yaml:5:9: network_policies.gh.endpoints[0]: "
		      "an endpoint needs 'port' or 'ports'");
	ck_yaml_fails(V1 "network_policies:\n  gh:\n    endpoints:\n"
			 "      - {port: 443}\n",
		      "policy.yaml:5:9: network_policies.gh.endpoints[0]: "
		      "an endpoint needs 'host' (or 'allowed_ips' without a host)");
}
END_TEST

START_TEST(unknown_keys_refused_at_every_level)
{
	ck_yaml_fails(V1 "filesystem: {}\n",
		      "policy.yaml:2:1: unknown key 'filesystem' (expected version, "
		      "filesystem_policy, landlock, process, network_policies, "
		      "network_middlewares)");
	ck_yaml_fails(V1 "filesystem_policy: {read_only: [/usr], writable: [/tmp]}\n",
		      "policy.yaml:2:40: filesystem_policy: unknown key 'writable' (expected "
		      "include_workdir, read_only, read_write)");
	ck_yaml_fails(V1 "landlock: {mode: hard}\n",
		      "policy.yaml:2:12: landlock: unknown key 'mode' (expected compatibility)");
	ck_yaml_fails(V1 "process: {user: x}\n",
		      "policy.yaml:2:11: process: unknown key 'user' (expected run_as_user, "
		      "run_as_group)");
	ck_yaml_fails(V1 "network_policies:\n  a:\n    hosts: []\n",
		      "policy.yaml:4:5: network_policies.a: unknown key 'hosts' (expected name, "
		      "endpoints, binaries)");
	ck_yaml_fails(V1 "network_policies:\n  a:\n    endpoints:\n      - host: a.com\n"
			 "        port: 443\n        timeout: 5\n",
		      "policy.yaml:7:9: network_policies.a.endpoints[0]: unknown key 'timeout'");
	ck_yaml_fails(V1 "network_policies:\n  a:\n    endpoints: [{host: a.com, port: 1}]\n"
			 "    binaries: [{path: /bin/x, sha256: ab}]\n",
		      "policy.yaml:5:31: network_policies.a.binaries[0]: unknown key 'sha256' "
		      "(expected path, harness)");
	const char *l7 = V1 "network_policies:\n  a:\n    endpoints:\n      - host: a.com\n"
			    "        port: 443\n        protocol: rest\n";
	char buf[1024];
	snprintf(buf, sizeof(buf), "%s        rules: [{allow: {method: GET}, deny: {}}]\n", l7);
	ck_yaml_fails(buf, "policy.yaml:8:40: network_policies.a.endpoints[0].rules[0]: unknown "
			   "key 'deny' (expected allow)");
	snprintf(buf, sizeof(buf), "%s        rules: [{allow: {verb: GET}}]\n", l7);
	ck_yaml_fails(buf, "policy.yaml:8:26: network_policies.a.endpoints[0].rules[0].allow: "
			   "unknown key 'verb' (expected method, path, command, query, "
			   "operation_type, operation_name, fields, tool, params)");
	snprintf(buf, sizeof(buf), "%s        deny_rules: [{method: GET, host: x}]\n", l7);
	ck_yaml_fails(buf, "policy.yaml:8:36: network_policies.a.endpoints[0].deny_rules[0]: "
			   "unknown key 'host' (expected method, path, command, query, "
			   "operation_type, operation_name, fields, tool, params)");
	snprintf(buf, sizeof(buf), "%s        credential_binding: {provider: p, key: k}\n", l7);
	ck_yaml_fails(buf, "policy.yaml:8:43: network_policies.a.endpoints[0].credential_binding: "
			   "unknown key 'key' (expected provider)");
	snprintf(buf, sizeof(buf), "%s        json_rpc: {max_body: 5}\n", l7);
	ck_yaml_fails(buf, "policy.yaml:8:20: network_policies.a.endpoints[0].json_rpc: unknown "
			   "key 'max_body' (expected max_body_bytes)");
	snprintf(buf, sizeof(buf), "%s        mcp: {strict: true}\n", l7);
	ck_yaml_fails(buf, "policy.yaml:8:15: network_policies.a.endpoints[0].mcp: unknown key "
			   "'strict' (expected max_body_bytes, strict_tool_names, "
			   "allow_all_known_mcp_methods)");
	snprintf(buf, sizeof(buf),
		 "%s        graphql_persisted_queries: {q1: {operation_type: query, op: x}}\n", l7);
	ck_yaml_fails(buf, "policy.yaml:8:65: "
			   "network_policies.a.endpoints[0].graphql_persisted_queries.q1: unknown "
			   "key 'op' (expected operation_type, operation_name, fields)");
	ck_yaml_fails(V1 "network_middlewares:\n  g:\n    middleware: m\n    when: always\n",
		      "policy.yaml:5:5: network_middlewares.g: unknown key 'when' (expected name, "
		      "middleware, order, config, on_error, endpoints)");
	ck_yaml_fails(V1 "network_middlewares:\n  g: {middleware: m, endpoints: {only: [a]}}\n",
		      "policy.yaml:3:34: network_middlewares.g.endpoints: unknown key 'only' "
		      "(expected include, exclude)");
}
END_TEST

START_TEST(query_matchers_are_a_string_or_any_list)
{
	const char *head = V1 "network_policies:\n  a:\n    endpoints:\n      - host: a.com\n"
			      "        port: 443\n        protocol: rest\n        rules:\n"
			      "          - allow:\n              method: GET\n";
	char buf[1024];
	snprintf(buf, sizeof(buf), "%s              query: {q: {glob: 'a*'}}\n", head);
	ck_yaml_fails(buf, "policy.yaml:11:27: network_policies.a.endpoints[0].rules[0].allow."
			   "query.q: unknown key 'glob': a matcher object is {any: [globs]}");
	snprintf(buf, sizeof(buf), "%s              query: {q: {any: []}}\n", head);
	ck_yaml_fails(buf, "policy.yaml:11:32: network_policies.a.endpoints[0].rules[0].allow."
			   "query.q.any: 'any' needs at least one glob");
	snprintf(buf, sizeof(buf), "%s              query: {q: {any: [a], glob: b}}\n", head);
	ck_yaml_fails(buf, "policy.yaml:11:37: network_policies.a.endpoints[0].rules[0].allow."
			   "query.q: unknown key 'glob': a matcher object is {any: [globs]}");
	snprintf(buf, sizeof(buf), "%s              query: {q: [a, b]}\n", head);
	ck_yaml_fails(buf, "policy.yaml:11:26: network_policies.a.endpoints[0].rules[0].allow."
			   "query.q: a matcher is a glob string or {any: [globs]}, not a list");
	snprintf(buf, sizeof(buf), "%s              query: {q: {}}\n", head);
	ck_yaml_fails(buf, "policy.yaml:11:26: network_policies.a.endpoints[0].rules[0].allow."
			   "query.q: a matcher object needs 'any: [globs]'");
	snprintf(buf, sizeof(buf), "%s              query: {q: {any: [{x: 1}]}}\n", head);
	ck_yaml_fails(buf, "policy.yaml:11:33: network_policies.a.endpoints[0].rules[0].allow."
			   "query.q.any[0]: expected a glob string, got a mapping");
}
END_TEST

START_TEST(wrong_types_name_line_and_column)
{
	ck_yaml_fails("version: '1'\n",
		      "policy.yaml:1:10: version: expected a decimal integer (got the quoted "
		      "string '1')");
	ck_yaml_fails("version: 2\n",
		      "policy.yaml:1:10: version: unsupported policy version 2 (only 1)");
	ck_yaml_fails("filesystem_policy: {}\n",
		      "policy.yaml:1:1: missing key 'version' (must be 1)");
	ck_yaml_fails(V1 "filesystem_policy:\n  read_only: /usr\n",
		      "policy.yaml:3:14: filesystem_policy.read_only: expected a list, got a "
		      "scalar");
	ck_yaml_fails(V1 "filesystem_policy:\n  include_workdir: yes\n",
		      "policy.yaml:3:20: filesystem_policy.include_workdir: expected true or "
		      "false (got 'yes')");
	ck_yaml_fails(V1 "filesystem_policy:\n  include_workdir: \"true\"\n",
		      "policy.yaml:3:20: filesystem_policy.include_workdir: expected true or "
		      "false (got the quoted string 'true')");
	ck_yaml_fails(V1 "filesystem_policy:\n  read_only: [usr]\n",
		      "policy.yaml:3:15: filesystem_policy.read_only[0]: path must be absolute "
		      "(got 'usr')");
	ck_yaml_fails(V1 "filesystem_policy:\n  read_only: [/usr]\n  read_write: [/usr/]\n",
		      "policy.yaml:4:16: filesystem_policy.read_write[0]: '/usr' is already "
		      "listed in read_only");
	ck_yaml_fails(V1 "filesystem_policy:\n  read_only: [~]\n",
		      "policy.yaml:3:15: filesystem_policy.read_only[0]: expected a path, got "
		      "null");
	ck_yaml_fails(V1 "landlock:\n  compatibility: hard\n",
		      "policy.yaml:3:18: landlock.compatibility: expected best_effort or "
		      "hard_requirement (got 'hard')");
	ck_yaml_fails(V1 "process: {run_as_user: root}\n",
		      "policy.yaml:2:24: process.run_as_user: must not be root (got 'root')");
	ck_yaml_fails(V1 "process: {run_as_user: [a]}\n",
		      "policy.yaml:2:24: process.run_as_user: expected a user or group, got a "
		      "list");
	ck_yaml_fails(V1 "network_policies: []\n",
		      "policy.yaml:2:19: network_policies: expected a mapping, got a list");
	ck_yaml_fails(V1 "network_policies:\n  a:\n    endpoints: [{host: 'a b', port: 1}]\n",
		      "policy.yaml:4:24: network_policies.a.endpoints[0].host: invalid character "
		      "in host (got 'a b')");
	ck_yaml_fails(V1 "network_policies:\n  a:\n    endpoints: [{host: '*.com', port: 1}]\n",
		      "policy.yaml:4:24: network_policies.a.endpoints[0].host: TLD wildcard is "
		      "not allowed: a wildcard host needs at least three labels, like "
		      "'*.example.com' (got '*.com')");
	ck_yaml_fails(V1 "network_policies:\n  a:\n    endpoints: [{host: a.com, port: 1,"
			 " protocol: ftp}]\n",
		      "policy.yaml:4:50: network_policies.a.endpoints[0].protocol: unknown "
		      "protocol 'ftp' (expected rest, websocket, graphql, sql, json-rpc, mcp or "
		      "tcp)");
	ck_yaml_fails(V1 "network_policies:\n  a:\n    endpoints: [{host: a.com, port: 1,"
			 " graphql_max_body_bytes: 0}]\n",
		      "policy.yaml:4:64: network_policies.a.endpoints[0].graphql_max_body_bytes: "
		      "must be 1..4294967295 (got 0)");
	ck_yaml_fails(V1 "network_policies:\n  a:\n    endpoints: [{allowed_ips: [10.0.0.1/8],"
			 " port: 1}]\n",
		      "policy.yaml:4:32: network_policies.a.endpoints[0].allowed_ips[0]: host "
		      "bits are set; did you mean '10.0.0.0/8'? (got '10.0.0.1/8')");
	ck_yaml_fails(V1 "network_policies:\n  a:\n    endpoints: [{host: a.com, port: 1}]\n"
			 "    binaries: [{harness: true}]\n",
		      "policy.yaml:5:16: network_policies.a.binaries[0]: missing key 'path'");
	ck_yaml_fails(V1 "network_policies:\n  a:\n    endpoints: [{host: a.com, port: 1}]\n"
			 "    binaries: [{path: bin/x}]\n",
		      "policy.yaml:5:23: network_policies.a.binaries[0].path: binary path must be "
		      "absolute (got 'bin/x')");
	ck_yaml_fails(V1 "network_policies:\n  a:\n    name: 'has space'\n"
			 "    endpoints: [{host: a.com, port: 1}]\n",
		      "policy.yaml:4:11: network_policies.a: rule name may only hold letters, "
		      "digits, '.', '_', '-' (got 'has space')");
	ck_yaml_fails(V1 "network_policies:\n  a: {endpoints: []}\n",
		      "policy.yaml:3:3: network_policies.a: a rule needs at least one endpoint");
	ck_yaml_fails(V1 "network_middlewares:\n  g: {order: 1}\n",
		      "policy.yaml:3:6: network_middlewares.g: missing key 'middleware'");
	ck_yaml_fails(V1 "network_middlewares:\n  g: {middleware: m, order: 2147483648}\n",
		      "policy.yaml:3:29: network_middlewares.g.order: must be "
		      "-2147483648..2147483647 (got 2147483648)");
	ck_yaml_fails(V1 "network_middlewares:\n  g: {middleware: m, config: [1]}\n",
		      "policy.yaml:3:30: network_middlewares.g.config: expected a mapping, got a "
		      "list");
	ck_yaml_fails(V1 "network_policies:\n  a:\n    endpoints: [{host: \"a\\0b\", port: 1}]\n",
		      "policy.yaml:4:24: network_policies.a.endpoints[0].host: value contains a "
		      "NUL byte");
	ck_yaml_fails(V1 "network_policies:\n  a:\n    endpoints: [{host: \"a\\nb\", port: 1}]\n",
		      "policy.yaml:4:24: network_policies.a.endpoints[0].host: value contains "
		      "control byte 0x0a");
}
END_TEST

START_TEST(duplicate_keys_refused)
{
	ck_yaml_fails(V1 "version: 1\n", "policy.yaml:2:1: duplicate key 'version'");
	ck_yaml_fails(V1 "process: {run_as_user: a, run_as_user: b}\n",
		      "policy.yaml:2:27: process: duplicate key 'run_as_user'");
	ck_yaml_fails(V1 "network_policies:\n  a: {endpoints: [{host: a.com, port: 1}]}\n"
			 "  a: {endpoints: [{host: b.com, port: 1}]}\n",
		      "policy.yaml:4:3: network_policies: duplicate key 'a'");
	ck_yaml_fails(V1 "network_policies:\n  a: {endpoints: [{host: a.com, port: 1}]}\n"
			 "  b: {name: a, endpoints: [{host: b.com, port: 1}]}\n",
		      "policy.yaml:4:13: network_policies.b: duplicate network rule name 'a'");
	ck_yaml_fails(V1 "network_policies:\n  a:\n    endpoints:\n      - host: a.com\n"
			 "        port: 1\n        protocol: mcp\n        rules:\n"
			 "          - allow: {params: {a.b: x, a: {b: y}}}\n",
		      "policy.yaml:9:42: network_policies.a.endpoints[0].rules[0].allow.params.a.b:"
		      " duplicate key 'a.b'");
	ck_yaml_fails(V1 "network_middlewares:\n  g: {middleware: m, config: {a: 1, a: 2}}\n",
		      "policy.yaml:3:37: network_middlewares.g.config: duplicate key 'a'");
}
END_TEST

START_TEST(aliases_anchors_and_tags_refused)
{
	ck_yaml_fails(V1 "filesystem_policy:\n  read_only: &ro [/usr]\n  read_write: *ro\n",
		      "policy.yaml:3:14: filesystem_policy.read_only: anchors (&ro) are not "
		      "supported");
	ck_yaml_fails(V1 "filesystem_policy:\n  read_only: *ro\n",
		      "policy.yaml:3:14: filesystem_policy.read_only: aliases (*ro) are not "
		      "supported");
	ck_yaml_fails(V1 "filesystem_policy:\n  read_only: !!seq [/usr]\n",
		      "policy.yaml:3:14: filesystem_policy.read_only: tags "
		      "(tag:yaml.org,2002:seq) are not supported");
	ck_yaml_fails(V1 "filesystem_policy:\n  read_only: !<x%0Ay> [/usr]\n",
		      "policy.yaml:3:14: filesystem_policy.read_only: tags are not supported");
	ck_yaml_fails(V1 "<<: {landlock: {}}\n",
		      "policy.yaml:2:1: unknown key '<<' (expected version, filesystem_policy, "
		      "landlock, process, network_policies, network_middlewares)");
}
END_TEST

START_TEST(documents_depth_syntax_and_size)
{
	ck_yaml_fails("", "policy.yaml:1:1: the policy is empty ('version' is required)");
	ck_yaml_fails("# nothing\n",
		      "policy.yaml:2:1: the policy is empty ('version' is required)");
	ck_yaml_fails("---\n~\n", "policy.yaml:2:1: the policy is empty ('version' is required)");
	ck_yaml_fails("[1]\n", "policy.yaml:1:1: expected a mapping, got a list");
	ck_yaml_fails(V1 "---\nversion: 1\n", "policy.yaml:2:1: only one YAML document is allowed");
	ck_yaml_fails(V1 "landlock: {compatibility: best_effort\n",
		      "policy.yaml:3:1: invalid YAML: did not find expected ',' or '}' while "
		      "parsing a flow mapping");
	ck_yaml_fails("version: 1\n\tlandlock: {}\n",
		      "policy.yaml:2:1: invalid YAML: found a tab character that violates "
		      "indentation while scanning a plain scalar");
	ck_yaml_fails("version: 1\x01\n",
		      "policy.yaml:1:11: invalid YAML: control characters are not allowed");
	/* A middleware's free-form config may nest, but not past POL_YAML_DEPTH_MAX. */
	ck_yaml_fails(V1 "network_middlewares:\n  g: {middleware: m, config: {a: [[[[[[[[[[[["
			 "[[[[1]]]]]]]]]]]]]]]]}}\n",
		      "policy.yaml:3:46: network_middlewares.g.config.a[0][0][0][0][0][0][0][0]"
		      "[0][0][0][0]: nested deeper than 16 levels");

	struct pol_policy p;
	struct sv_err e = {0};
	size_t n = POL_FILE_MAX + 1;
	char *big = malloc(n + 1);
	ck_assert_ptr_nonnull(big);
	memset(big, '#', n);
	big[n] = '\0';
	ck_assert_int_eq(pol_load_yaml_buffer(NAME, big, n, &p, &e), -EFBIG);
	ck_assert_str_eq(e.msg, "policy.yaml: policy file is larger than 1048576 bytes");
	big[0] = '\n';
	ck_assert_int_eq(pol_load_yaml_buffer(NAME, big, n - 1, &p, &e), -EINVAL); /* no version */
	free(big);
}
END_TEST

/* --- files and discovery ------------------------------------------------------------------- */

static char root[64];

static void root_setup(void)
{
	strcpy(root, "/tmp/test_policy_yaml.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(root));
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void root_teardown(void)
{
	nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *at(char *buf, const char *rel)
{
	snprintf(buf, PATH_MAX, "%s%s", root, rel);
	return buf;
}

/* Write @text to @rel under the fake root, creating its directories. */
static void put(const char *rel, const char *text)
{
	char path[PATH_MAX];
	at(path, rel);
	for (char *s = path + strlen(root) + 1; *s; s++)
		if (*s == '/') {
			*s = '\0';
			mkdir(path, 0755);
			*s = '/';
		}
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

#define YAML_OPENSHELL V1 "filesystem_policy: {read_only: [/from-openshell-yaml]}\n"
#define YAML_NAVIGATOR V1 "filesystem_policy: {read_only: [/from-navigator-yaml]}\n"
#define INI_OPENSHELL  "[filesystem]\nread_only = /from-ini\n"

/* pol_load under the fake root; returns the first read_only path, and what stderr got. */
static const char *discover(char *log, size_t size)
{
	static char first[PATH_MAX];
	char path[PATH_MAX];
	int saved = dup(2);
	int fd = open(at(path, "/stderr.log"), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	dup2(fd, 2);
	struct pol_policy p;
	struct sv_err e = {0};
	int r = pol_load(NULL, root, &p, &e);
	dup2(saved, 2);
	close(saved);
	ssize_t n = pread(fd, log, size - 1, 0);
	log[n > 0 ? n : 0] = '\0';
	close(fd);
	ck_assert_msg(r == 0, "%s", e.msg);
	bool dflt = strcmp(p.source, "default") == 0;
	snprintf(first, sizeof(first), "%s", dflt ? p.source : p.read_only.v[0]);
	pol_free(&p);
	return first;
}

START_TEST(discovery_order_yaml_legacy_ini_default)
{
	char log[4096], want[PATH_MAX * 2];
	sv_log_setup(SV_LOG_WARN, SV_LOG_TEXT);
	ck_assert_str_eq(discover(log, sizeof(log)), "default");
	put("/etc/openshell/policy.ini", INI_OPENSHELL);
	ck_assert_str_eq(discover(log, sizeof(log)), "/from-ini");
	ck_assert_ptr_null(strstr(log, "policy_file_ignored"));
	put("/etc/navigator/policy.yaml", YAML_NAVIGATOR);
	ck_assert_str_eq(discover(log, sizeof(log)), "/from-navigator-yaml");
	snprintf(want, sizeof(want),
		 "used=%s/etc/navigator/policy.yaml ignored=%s/etc/openshell/policy.ini", root,
		 root);
	ck_assert_msg(strstr(log, want), "log lacks '%s':\n%s", want, log);
	put("/etc/openshell/policy.yaml", YAML_OPENSHELL);
	ck_assert_str_eq(discover(log, sizeof(log)), "/from-openshell-yaml");
	snprintf(want, sizeof(want),
		 "used=%s/etc/openshell/policy.yaml ignored=%s/etc/navigator/policy.yaml", root,
		 root);
	ck_assert_msg(strstr(log, want), "log lacks '%s':\n%s", want, log);
	snprintf(want, sizeof(want),
		 "used=%s/etc/openshell/policy.yaml ignored=%s/etc/openshell/policy.ini", root,
		 root);
	ck_assert_msg(strstr(log, want), "log lacks '%s':\n%s", want, log);
}
END_TEST

START_TEST(discovery_never_falls_through_a_broken_yaml)
{
	char path[PATH_MAX];
	put("/etc/openshell/policy.ini", INI_OPENSHELL);
	put("/etc/openshell/policy.yaml", V1 "filesystem_policy: {read_write: [/]}\n");
	sv_log_setup(SV_LOG_ERROR,
		     SV_LOG_TEXT); /* the policy_file_ignored warning is not judged here */
	struct pol_policy p;
	struct sv_err e = {0};
	ck_assert_int_eq(pol_load(NULL, root, &p, &e), -EINVAL);
	char want[PATH_MAX + 128];
	snprintf(want, sizeof(want),
		 "%s:2:34: filesystem_policy.read_write[0]: read-write '/' is overly broad: "
		 "name the directories instead",
		 at(path, "/etc/openshell/policy.yaml"));
	ck_assert_str_eq(e.msg, want);
	ck_assert(policy_is_empty(&p));
}
END_TEST

START_TEST(explicit_file_format_by_extension_then_content)
{
	char path[PATH_MAX];
	put("/etc/openshell/policy.yaml", YAML_OPENSHELL);
	struct pol_policy p;
	struct sv_err e = {0};
	put("/x.yaml", YAML_NAVIGATOR);
	ck_assert_int_eq(pol_load(at(path, "/x.yaml"), root, &p, &e), 0);
	ck_assert_str_eq(p.read_only.v[0], "/from-navigator-yaml");
	ck_assert_str_eq(p.source, path);
	pol_free(&p);
	put("/x.yml", YAML_NAVIGATOR);
	ck_assert_int_eq(pol_load(at(path, "/x.yml"), NULL, &p, &e), 0);
	pol_free(&p);
	/* The extension decides: INI text in a .yaml file is read (and refused) as YAML. */
	put("/wrong.yaml", INI_OPENSHELL);
	ck_assert_int_eq(pol_load(at(path, "/wrong.yaml"), root, &p, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "wrong.yaml:1:1: expected a mapping, got a list"));
	put("/p.ini", INI_OPENSHELL);
	ck_assert_int_eq(pol_load(at(path, "/p.ini"), root, &p, &e), 0);
	ck_assert_str_eq(p.read_only.v[0], "/from-ini");
	pol_free(&p);
	/* No known extension: the content decides. */
	put("/policy",
	    "\xEF\xBB\xBF# comment\n; another\n\n  [filesystem]\nread_only = /from-ini\n");
	ck_assert_int_eq(pol_load(at(path, "/policy"), root, &p, &e), 0);
	ck_assert_str_eq(p.read_only.v[0], "/from-ini");
	pol_free(&p);
	put("/policy", "# comment\n" YAML_NAVIGATOR);
	ck_assert_int_eq(pol_load(at(path, "/policy"), root, &p, &e), 0);
	ck_assert_str_eq(p.read_only.v[0], "/from-navigator-yaml");
	pol_free(&p);
	ck_assert_int_eq(pol_load(at(path, "/absent.yaml"), root, &p, &e), -ENOENT);
	ck_assert(policy_is_empty(&p));
}
END_TEST

START_TEST(format_guess_rules)
{
	ck_assert_int_eq(pol_format_guess("a.yaml", "[x]", 3), POL_FORMAT_YAML);
	ck_assert_int_eq(pol_format_guess("a.yml", "[x]", 3), POL_FORMAT_YAML);
	ck_assert_int_eq(pol_format_guess("a.ini", "version: 1", 10), POL_FORMAT_INI);
	ck_assert_int_eq(pol_format_guess(NULL, "", 0), POL_FORMAT_YAML);
	ck_assert_int_eq(pol_format_guess(NULL, "\r\n\t[process]", 12), POL_FORMAT_INI);
	ck_assert_int_eq(pol_format_guess(NULL, "#[x]\nversion: 1", 15), POL_FORMAT_YAML);
	ck_assert_int_eq(pol_format_guess("yaml", "; c\n[a]", 7), POL_FORMAT_INI);
}
END_TEST

START_TEST(yaml_file_reader_limits)
{
	char path[PATH_MAX];
	struct pol_policy p;
	struct sv_err e = {0};
	ck_assert_int_eq(pol_load_yaml_file(at(path, "/none.yaml"), &p, &e), -ENOENT);
	mkdir(at(path, "/dir.yaml"), 0755);
	ck_assert_int_eq(pol_load_yaml_file(path, &p, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "not a regular file"));
	put("/ok.yaml", YAML_OPENSHELL);
	ck_assert_int_eq(pol_load_yaml_file(at(path, "/ok.yaml"), &p, &e), 0);
	ck_assert_str_eq(p.source, path);
	pol_free(&p);
}
END_TEST

START_TEST(mcp_params_are_read_then_refused_by_validation)
{
	struct pol_policy p;
	struct sv_err err = {0};
	ck_assert_int_lt(load("version: 1\nnetwork_policies:\n  m:\n    endpoints:\n"
			      "      - host: mcp.example.com\n        port: 443\n"
			      "        protocol: mcp\n        rules:\n          - allow:\n"
			      "              method: tools/call\n"
			      "              params: {repo: {owner: NVIDIA}}\n"
			      "    binaries: [{path: /usr/bin/x}]\n",
			      &p, &err),
			 0);
	ck_assert_msg(strstr(err.msg, "params.repo.owner") &&
			  strstr(err.msg, "not supported"),
		      "%s", err.msg);
}
END_TEST

static Suite *yaml_suite(void)
{
	Suite *s = suite_create("policy_yaml");
	TCase *tc = tcase_create("schema");
	tcase_add_test(tc, every_schema_field_reaches_the_model);
	tcase_add_test(tc, mcp_params_are_read_then_refused_by_validation);
	tcase_add_test(tc, defaults_follow_openshell);
	tcase_add_test(tc, yaml_and_ini_give_the_same_model);
	tcase_add_test(tc, port_out_of_range_names_line_column_and_field);
	tcase_add_test(tc, unknown_keys_refused_at_every_level);
	tcase_add_test(tc, query_matchers_are_a_string_or_any_list);
	tcase_add_test(tc, wrong_types_name_line_and_column);
	tcase_add_test(tc, duplicate_keys_refused);
	tcase_add_test(tc, aliases_anchors_and_tags_refused);
	tcase_add_test(tc, documents_depth_syntax_and_size);
	tcase_add_test(tc, format_guess_rules);
	suite_add_tcase(s, tc);

	tc = tcase_create("files");
	tcase_add_checked_fixture(tc, root_setup, root_teardown);
	tcase_add_test(tc, discovery_order_yaml_legacy_ini_default);
	tcase_add_test(tc, discovery_never_falls_through_a_broken_yaml);
	tcase_add_test(tc, explicit_file_format_by_extension_then_content);
	tcase_add_test(tc, yaml_file_reader_limits);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(yaml_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
