/* Unit tests for layer-7, credential and middleware validation and the model's deep copy
 * (supervisor/policy/policy_l7.c, policy_copy.c; openshell-l7-contract.md §5).
 *
 * Black-box ports of OpenShell's named validation cases (l7_validate.rs tests and the
 * validate_* tests of openshell-supervisor-network l7/mod.rs), in our words: each builds a
 * policy in the model, runs pol_validate_full and pins the error or warning it must produce.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "pol_build.h"

static struct pol_policy pol;
static char warnings[8192];
static struct sv_err err;

static void setup(void)
{
	pol_init(&pol);
	warnings[0] = '\0';
	err = (struct sv_err){0};
}

static void teardown(void)
{
	pol_free(&pol);
}

static void collect(void *ctx, const char *field, const char *msg)
{
	(void)ctx;
	size_t n = strlen(warnings);
	snprintf(warnings + n, sizeof(warnings) - n, "%s: %s\n", field, msg);
}

static int check(void)
{
	warnings[0] = '\0';
	err = (struct sv_err){0};
	return pol_validate_full(&pol, collect, NULL, &err);
}

#define ck_valid()                                                                          \
	ck_assert_msg(check() == 0, "unexpected error: %s", err.msg)
#define ck_error(want)                                                                      \
	do {                                                                                \
		ck_assert_msg(check() == -EINVAL, "expected error '%s'", (want));           \
		ck_assert_msg(strstr(err.msg, (want)), "error '%s' lacks '%s'", err.msg, (want)); \
	} while (0)
#define ck_warns(want)                                                                      \
	do {                                                                                \
		ck_assert_msg(check() == 0, "unexpected error: %s", err.msg);               \
		ck_assert_msg(strstr(warnings, (want)), "warnings '%s' lack '%s'", warnings,  \
			      (want));                                                      \
	} while (0)
#define ck_no_warning() ck_assert_msg(warnings[0] == '\0', "unexpected warnings: %s", warnings)

static struct pol_endpoint *ep(const char *proto)
{
	struct pol_endpoint *e = tb_endpoint(&pol, "api", "api.example.com", 443);
	ck_assert_int_eq(pol_protocol_parse(proto, &e->protocol, NULL), 0);
	return e;
}

/* --- l7_validate.rs ------------------------------------------------------------------------ */

START_TEST(valid_rest_endpoint_with_preset_has_no_errors_or_warnings)
{
	ep("rest")->access = POL_ACCESS_READ_ONLY;
	ck_valid();
	ck_no_warning();
}
END_TEST

START_TEST(unknown_protocol_rejected_by_the_shared_parser)
{
	enum pol_protocol p;
	struct sv_err e = {0};
	ck_assert_int_eq(pol_protocol_parse("ftp", &p, &e), -EINVAL);
	ck_assert_str_eq(e.msg, "unknown protocol 'ftp' (expected tcp, rest, websocket, graphql, "
				"sql, json-rpc, or mcp)");
	ck_assert_int_eq(pol_protocol_parse("JSON-RPC", &p, NULL), 0);
	ck_assert_int_eq(p, POL_PROTO_JSONRPC);
	ck_assert_int_eq(pol_protocol_parse("Mcp", &p, NULL), 0);
	ck_assert_int_eq(p, POL_PROTO_MCP);
	ck_assert(!pol_protocol_is_l7(POL_PROTO_TCP));
	ck_assert(pol_protocol_is_l7(POL_PROTO_SQL));
}
END_TEST

START_TEST(rules_and_access_together_rejected)
{
	struct pol_endpoint *e = ep("rest");
	e->access = POL_ACCESS_FULL;
	tb_rule(e, "GET", "/**");
	ck_error("network.api.endpoints[0]: rules and access are mutually exclusive");
}
END_TEST

START_TEST(jsonrpc_access_preset_rejected_with_one_message)
{
	ep("json-rpc")->access = POL_ACCESS_FULL;
	ck_error("protocol json-rpc does not support access presets; use explicit rules with "
		 "allow.method such as \"*\"");
}
END_TEST

START_TEST(mcp_access_preset_rejected_naming_allow_all)
{
	ep("mcp")->access = POL_ACCESS_FULL;
	ck_error("set mcp.allow_all_known_mcp_methods: true");
}
END_TEST

START_TEST(jsonrpc_without_rules_rejected)
{
	ep("json-rpc");
	ck_error("protocol json-rpc requires explicit rules with allow.method");
}
END_TEST

START_TEST(protocol_without_rules_or_access_rejected)
{
	ep("graphql");
	ck_error("protocol requires rules or access to define allowed traffic");
}
END_TEST

START_TEST(mcp_without_rules_needs_allow_all_known_methods)
{
	struct pol_endpoint *e = ep("mcp");
	ck_error("protocol mcp requires rules when mcp.allow_all_known_mcp_methods is false");
	e->mcp_allow_all_known_mcp_methods = POL_TRUE;
	ck_valid();
}
END_TEST

START_TEST(rules_without_any_allow_clause_rejected_except_mcp_allow_all)
{
	struct pol_endpoint *e = ep("rest");
	struct pol_l7_rule *r = tb_rule(e, NULL, NULL);
	tb_matcher(&r->query, &r->n_query, "q", false, TB_GLOBS("x"));
	ck_error("rules would deny all traffic (no allow clause found)");
	pol_free(&pol);
	e = ep("mcp");
	tb_rule(e, NULL, NULL);
	e->mcp_allow_all_known_mcp_methods = POL_TRUE;
	ck_valid();
}
END_TEST

START_TEST(deny_rules_need_a_protocol_and_a_base_allow_set)
{
	struct pol_endpoint *e = tb_endpoint(&pol, "api", "api.example.com", 443);
	tb_deny(e, "DELETE", "/**");
	ck_error("deny_rules require protocol (L7 inspection must be enabled)");
	e->protocol = POL_PROTO_REST;
	ck_error("deny_rules require rules or access to define the base allow set");
	e->access = POL_ACCESS_READ_WRITE;
	ck_valid();
}
END_TEST

START_TEST(explicit_tcp_is_plain_l4_and_rejects_l7_fields)
{
	struct pol_endpoint *e = ep("tcp");
	ck_valid();
	e->access = POL_ACCESS_FULL;
	ck_error("protocol tcp does not support access, rules, or deny_rules; remove those L7 "
		 "fields");
	e->access = POL_ACCESS_NONE;
	e->enforcement = POL_ENFORCE_ENFORCE;
	e->credential_signing = tb_dup("sigv4");
	e->signing_service = tb_dup("rds");
	e->credential_binding = tb_dup("database");
	e->mcp_strict_tool_names = POL_FALSE;
	ck_error("protocol tcp does not support L7-only fields: enforcement, mcp.strict_tool_names, "
		 "credential_signing, signing_service, credential_binding; remove those fields");
}
END_TEST

/* --- l7/mod.rs validate_* ------------------------------------------------------------------ */

START_TEST(credential_rewrite_flags_warn_outside_their_protocols)
{
	struct pol_endpoint *e = tb_endpoint(&pol, "api", "gateway.example.com", 443);
	e->websocket_credential_rewrite = true;
	ck_warns("network.api.endpoints[0]: websocket_credential_rewrite is ignored unless "
		 "protocol is rest or websocket");
	e->websocket_credential_rewrite = false;
	e->protocol = POL_PROTO_WEBSOCKET;
	e->access = POL_ACCESS_READ_ONLY;
	e->request_body_credential_rewrite = true;
	ck_warns("request_body_credential_rewrite is ignored unless protocol is rest");
}
END_TEST

START_TEST(websocket_graphql_rules_accepted_and_checked)
{
	struct pol_endpoint *e = ep("websocket");
	struct pol_l7_rule *r = tb_rule(e, NULL, NULL);
	r->operation_type = tb_dup("subscription");
	ck_valid();
	free(r->operation_type);
	r->operation_type = NULL;
	r->operation_name = tb_dup("OnEvent");
	ck_error("rules[0].allow.operation_type: required for GraphQL L7 rules");
	r->operation_type = tb_dup("query");
	r->method = tb_dup("GET");
	ck_error("WebSocket GraphQL allow rules must not combine method/path/query");
	free(r->method);
	r->method = NULL;
	tb_rule(e, "WEBSOCKET_TEXT", "**");
	ck_error("rules[1].allow: WebSocket endpoints with GraphQL operation policy must use "
		 "operation_type/operation_name/fields rules");
}
END_TEST

START_TEST(jsonrpc_rules_need_exact_methods_and_no_params_or_paths)
{
	struct pol_endpoint *e = ep("json-rpc");
	struct pol_l7_rule *r = tb_rule(e, NULL, "/rpc");
	ck_error("rules[0].allow.method: required for json-rpc L7 rules");
	r->method = tb_dup("eth_*");
	ck_error("generic JSON-RPC method rules do not support glob or wildcard matchers");
	free(r->method);
	r->method = tb_dup("*");
	ck_error("rules[0].allow: json-rpc L7 rules must use method, not path/query");
	free(r->path);
	r->path = NULL;
	ck_valid();
	tb_matcher(&r->params, &r->n_params, "name", false, TB_GLOBS("x"));
	ck_error("JSON-RPC rules do not support params matchers yet");
}
END_TEST

START_TEST(mcp_tool_selectors_follow_the_method_profile)
{
	struct pol_endpoint *e = ep("mcp");
	e->mcp_allow_all_known_mcp_methods = POL_TRUE;
	struct pol_l7_rule *r = tb_rule(e, NULL, NULL);
	tb_tool(r, true, TB_GLOBS("read_status", "submit_*"));
	ck_valid();
	r = tb_rule(e, "tools/call", NULL);
	tb_tool(r, false, TB_GLOBS("submit_report"));
	tb_matcher(&r->params, &r->n_params, "arguments.scope", false, TB_GLOBS("main"));
	ck_error("rules[1].allow.params.arguments.scope: MCP tool argument matching is not "
		 "supported yet");
}
END_TEST

START_TEST(mcp_tool_selectors_need_a_method_without_the_profile)
{
	struct pol_endpoint *e = ep("mcp");
	struct pol_l7_rule *r = tb_rule(e, NULL, NULL);
	tb_tool(r, false, TB_GLOBS("read_status"));
	ck_error("rules[0].allow.method: required when mcp.allow_all_known_mcp_methods is false");
	r->method = tb_dup("initialize");
	ck_error("rules[0].allow.method: must be tools/call when an MCP rule uses tool or "
		 "params.name, got 'initialize'");
}
END_TEST

START_TEST(mcp_method_globs_only_for_the_tools_family)
{
	struct pol_endpoint *e = ep("mcp");
	tb_rule(e, "vendor/extension", NULL);
	tb_rule(e, "tools/*", NULL);
	ck_valid();
	tb_rule(e, "vendor/*", NULL);
	ck_error("rules[2].allow.method: MCP method globs are only valid for the tools/ method "
		 "family");
}
END_TEST

START_TEST(mcp_wildcard_tools_need_strict_tool_names)
{
	struct pol_endpoint *e = ep("mcp");
	e->mcp_strict_tool_names = POL_FALSE;
	struct pol_l7_rule *r = tb_rule(e, "tools/call", NULL);
	tb_tool(r, false, TB_GLOBS("read_*"));
	ck_error("rules[0].allow.tool: wildcard tool-name matchers require mcp.strict_tool_names "
		 "to remain enabled");
	e->mcp_strict_tool_names = POL_TRUE;
	ck_valid();
}
END_TEST

START_TEST(mcp_endpoint_needs_a_host)
{
	struct pol_endpoint *e = ep("mcp");
	e->mcp_allow_all_known_mcp_methods = POL_TRUE;
	free(e->host);
	e->host = NULL;
	e->kind = POL_HOST_NONE;
	e->allowed_ips = calloc(1, sizeof(*e->allowed_ips));
	ck_assert_int_eq(pol_cidr_parse("10.0.0.0/8", e->allowed_ips, NULL), 0);
	e->n_allowed_ips = 1;
	ck_error("protocol mcp requires host; protocol alone is not a wildcard endpoint");
}
END_TEST

START_TEST(mcp_broad_tools_call_rules_conflict_with_tool_allow_rules)
{
	struct pol_endpoint *e = ep("mcp");
	struct pol_l7_rule *r = tb_rule(e, "tools/call", NULL);
	tb_tool(r, false, TB_GLOBS("read_status"));
	tb_deny(e, "tools/call", NULL);
	ck_error("deny_rules[0]: method matcher denies every tool call and conflicts with MCP "
		 "tool allow rules");
	pol_free(&pol);
	e = ep("mcp");
	r = tb_rule(e, "tools/call", NULL);
	tb_tool(r, false, TB_GLOBS("read_status"));
	tb_rule(e, "tools/*", NULL);
	ck_error("rules[1].allow: method matcher allows every tool call and conflicts with MCP "
		 "tool allow rules");
}
END_TEST

START_TEST(mcp_options_only_for_mcp)
{
	struct pol_endpoint *e = ep("rest");
	e->access = POL_ACCESS_FULL;
	e->mcp_strict_tool_names = POL_TRUE;
	ck_error("mcp.strict_tool_names is only valid for protocol mcp");
	e->mcp_strict_tool_names = POL_UNSET;
	e->mcp_allow_all_known_mcp_methods = POL_FALSE;
	ck_error("mcp.allow_all_known_mcp_methods is only valid for protocol mcp");
}
END_TEST

START_TEST(sql_enforce_rejected)
{
	struct pol_endpoint *e = ep("sql");
	e->access = POL_ACCESS_READ_ONLY;
	ck_valid();
	e->enforcement = POL_ENFORCE_ENFORCE;
	ck_error("SQL enforcement requires full SQL parsing (not available in v1). Use "
		 "`enforcement: audit`.");
}
END_TEST

START_TEST(tls_terminate_and_passthrough_are_deprecated_warnings)
{
	struct pol_endpoint *e = ep("rest");
	e->access = POL_ACCESS_FULL;
	ck_valid();
	ck_no_warning(); /* rest on 443 without tls: nothing to say */
	e->tls = POL_TLS_TERMINATE;
	e->tls_set = true;
	ck_warns("'tls: terminate' is deprecated; TLS termination is now automatic. Use 'tls: "
		 "skip' to disable.");
	e->tls = POL_TLS_PASSTHROUGH;
	ck_warns("'tls: passthrough' is deprecated");
}
END_TEST

START_TEST(tls_skip_with_l7_on_443_warns)
{
	struct pol_endpoint *e = ep("rest");
	e->access = POL_ACCESS_FULL;
	e->tls = POL_TLS_SKIP;
	e->tls_set = true;
	ck_warns("'tls: skip' with L7 rules on port 443");
	e->ports[0] = 8080;
	ck_valid();
	ck_no_warning();
}
END_TEST

START_TEST(unsupported_access_preset_warns)
{
	struct pol_endpoint *e = ep("rest");
	e->access = POL_ACCESS_UNKNOWN;
	e->access_raw = tb_dup("read-mostly");
	ck_warns("unsupported L7 access preset 'read-mostly' ignored; expected one of: "
		 "read-only, read-write, full");
	ck_assert_str_eq(pol_access_name(e), "read-mostly");
	ck_assert_int_eq(pol_access_parse("read-mostly"), POL_ACCESS_UNKNOWN);
	ck_assert_int_eq(pol_access_parse("read-write"), POL_ACCESS_READ_WRITE);
}
END_TEST

START_TEST(graphql_rules_and_persisted_queries_checked)
{
	struct pol_endpoint *e = ep("graphql");
	struct pol_l7_rule *r = tb_rule(e, NULL, NULL);
	r->operation_type = tb_dup("upsert");
	ck_error("rules[0].allow.operation_type: expected query, mutation, subscription, or *, "
		 "got 'upsert'");
	free(r->operation_type);
	r->operation_type = tb_dup("mutation");
	e->persisted_queries = tb_dup("allow_all");
	ck_error("persisted_queries must be 'deny' or 'allow_registered', got 'allow_all'");
	free(e->persisted_queries);
	e->persisted_queries = tb_dup("allow_registered");
	e->gql_ops = calloc(1, sizeof(*e->gql_ops));
	e->n_gql_ops = 1;
	e->gql_ops[0].id = tb_dup("h1");
	ck_error("graphql_persisted_queries[h1].operation_type: required for GraphQL L7 rules");
	e->gql_ops[0].operation_type = tb_dup("query");
	ck_valid();
	e->protocol = POL_PROTO_REST;
	free(r->operation_type);
	r->operation_type = NULL;
	r->method = tb_dup("GET");
	ck_warns("GraphQL-specific endpoint fields are ignored unless protocol is graphql or "
		 "websocket");
}
END_TEST

START_TEST(endpoint_path_must_be_absolute_or_double_star)
{
	struct pol_endpoint *e = ep("rest");
	e->access = POL_ACCESS_FULL;
	e->path = tb_dup("graphql");
	ck_error("endpoint path must start with '/' or be '**', got 'graphql'");
	free(e->path);
	e->path = tb_dup("**");
	ck_valid();
}
END_TEST

START_TEST(query_matchers_checked_and_globs_warned)
{
	struct pol_endpoint *e = ep("rest");
	struct pol_l7_rule *r = tb_rule(e, "GET", "/repos/**");
	tb_matcher(&r->query, &r->n_query, "repo", false, TB_GLOBS("NVIDIA/*"));
	tb_matcher(&r->query, &r->n_query, "tag", true, TB_GLOBS("v1", "v2"));
	ck_valid();
	ck_no_warning();
	struct pol_matcher *m = tb_matcher(&r->query, &r->n_query, "state", true, NULL);
	ck_error("network.api.endpoints[0].rules[0].allow.query.state.any: list must not be empty");
	ck_assert_int_eq(pol_strv_push(&m->globs, "[open"), 0);
	ck_warns("rules[0].allow.query.state.any: glob pattern '[open' has unclosed '['");
	free(m->globs.v[0]);
	m->globs.v[0] = tb_dup("{a,b");
	ck_warns("glob pattern '{a,b' has unclosed '{'");
}
END_TEST

START_TEST(empty_rule_lists_rejected)
{
	struct pol_endpoint *e = ep("rest");
	e->access = POL_ACCESS_FULL;
	e->deny_rules_set = true;
	ck_error("deny_rules list cannot be empty (would have no effect)");
	e->deny_rules_set = false;
	e->access = POL_ACCESS_NONE;
	e->rules_set = true;
	ck_error("rules list cannot be empty (would deny all traffic)");
}
END_TEST

START_TEST(deny_rule_query_matchers_checked)
{
	struct pol_endpoint *e = ep("rest");
	e->access = POL_ACCESS_FULL;
	struct pol_l7_rule *d = tb_deny(e, "POST", "/admin/**");
	tb_matcher(&d->query, &d->n_query, "force", true, TB_GLOBS("true", "yes"));
	ck_valid();
	tb_matcher(&d->query, &d->n_query, "x", true, NULL);
	ck_error("deny_rules[0].query.x.any: list must not be empty");
}
END_TEST

START_TEST(unknown_http_methods_and_sql_commands_on_rest_warn)
{
	struct pol_endpoint *e = ep("rest");
	tb_rule(e, "FETCH", "/**");
	ck_warns("Unknown HTTP/WebSocket method 'FETCH'. Standard methods: GET, HEAD, POST, PUT, "
		 "DELETE, PATCH, OPTIONS, *.");
	struct pol_l7_rule *d = tb_deny(e, "GET", "/x");
	d->command = tb_dup("DROP");
	ck_warns("deny_rules[0]: command is for SQL protocol, not REST");
}
END_TEST

START_TEST(credential_signing_checked)
{
	struct pol_endpoint *e = ep("rest");
	e->access = POL_ACCESS_FULL;
	e->credential_signing = tb_dup("hmac");
	ck_error("unknown credential_signing 'hmac'");
	free(e->credential_signing);
	e->credential_signing = tb_dup("sigv4:body");
	ck_error("credential_signing is set but signing_service is empty");
	e->signing_service = tb_dup("bedrock");
	ck_valid();
	e->request_body_credential_rewrite = true;
	ck_error("credential_signing and request_body_credential_rewrite are mutually exclusive");
}
END_TEST

START_TEST(middlewares_checked)
{
	struct pol_endpoint *e = ep("rest");
	e->access = POL_ACCESS_FULL;
	struct pol_middleware *m = tb_middleware(&pol, "redact", "*.example.com", 1);
	ck_valid();
	m->on_error = tb_dup("retry");
	ck_error("network_middlewares.redact: invalid on_error 'retry'");
	free(m->on_error);
	m->on_error = NULL;
	tb_middleware(&pol, "audit", "api.example.com", 1);
	m = &pol.middlewares[0];
	ck_error("middleware configs 'redact' and 'audit' have the same order 1");
	pol.middlewares[1].order = 2;
	ck_valid();
	pol_strv_free(&pol.middlewares[1].include);
	ck_error("endpoint selector must include at least one host pattern");
	ck_assert_int_eq(pol_strv_push(&pol.middlewares[1].include, "API.example.com"), 0);
	ck_error("endpoint selector pattern 'API.example.com' is not canonical");
	free(pol.middlewares[1].include.v[0]);
	pol.middlewares[1].include.v[0] = tb_dup("other.example.org");
	e->tls = POL_TLS_SKIP;
	e->tls_set = true;
	e->ports[0] = 8443;
	ck_error("middleware config 'redact' selects network policy 'api' tls: skip endpoint "
		 "'api.example.com'");
	ck_assert(pol_middleware_selects(m, "api.example.com"));
	ck_assert(!pol_middleware_selects(m, "example.com"));
}
END_TEST

START_TEST(host_patterns_follow_label_globs)
{
	ck_assert(pol_host_pattern_match("*.example.com", "a.example.com"));
	ck_assert(!pol_host_pattern_match("*.example.com", "a.b.example.com"));
	ck_assert(pol_host_pattern_match("**.example.com", "a.b.example.com"));
	ck_assert(!pol_host_pattern_match("**.example.com", "example.com"));
	ck_assert(pol_host_pattern_match("api-*.example.com", "api-1.example.com"));
	ck_assert(pol_host_pattern_match("a.example.com", "a.example.com"));
	ck_assert(!pol_host_pattern_match("a.example.com", "b.example.com"));
}
END_TEST

START_TEST(warnings_reach_the_callback_with_the_field)
{
	struct pol_endpoint *e = ep("rest");
	e->access = POL_ACCESS_FULL;
	e->tls = POL_TLS_TERMINATE;
	e->tls_set = true;
	ck_assert_int_eq(check(), 0);
	ck_assert_str_eq(warnings, "network.api.endpoints[0]: 'tls: terminate' is deprecated; TLS "
				   "termination is now automatic. Use 'tls: skip' to disable.\n");
	/* pol_validate is the same check without the warnings. */
	ck_assert_int_eq(pol_validate(&pol, NULL), 0);
}
END_TEST

/* --- copy and equality --------------------------------------------------------------------- */

START_TEST(full_policy_is_valid)
{
	pol_free(&pol);
	tb_full_policy(&pol);
	ck_valid();
}
END_TEST

START_TEST(copy_is_deep_and_equal_in_every_field)
{
	pol_free(&pol);
	tb_full_policy(&pol);
	struct pol_policy c;
	ck_assert_int_eq(pol_copy(&pol, &c), 0);
	ck_assert(pol_equal(&pol, &c));
	ck_assert_str_eq(c.source, "test");
	/* Independent: changing the copy leaves the source alone, and equality notices. */
	struct pol_l7_rule *r = &c.rules[0].endpoints[0].rules[0];
	ck_assert_ptr_ne(r->query, pol.rules[0].endpoints[0].rules[0].query);
	r->query[1].globs.v[1][0] = 'X';
	ck_assert(!pol_equal(&pol, &c));
	r->query[1].globs.v[1][0] = 'c';
	ck_assert(pol_equal(&pol, &c));
	c.rules[1].endpoints[0].mcp_strict_tool_names = POL_FALSE;
	ck_assert(!pol_network_equal(&pol, &c));
	c.rules[1].endpoints[0].mcp_strict_tool_names = POL_TRUE;
	free(c.middlewares[0].config_json);
	c.middlewares[0].config_json = tb_dup("{}");
	ck_assert(!pol_network_equal(&pol, &c));
	pol_free(&c);
}
END_TEST


/* --- INI spelling and round trips ---------------------------------------------------------- */

static void ck_ini_round_trip(const struct pol_policy *src)
{
	char *text = NULL, *again = NULL;
	struct pol_policy back;
	struct sv_err e = {0};
	ck_assert_int_eq(pol_describe(src, &text), 0);
	ck_assert_msg(pol_load_buffer("described", text, strlen(text), &back, &e) == 0,
		      "%s\n---\n%s", e.msg, text);
	ck_assert_msg(pol_equal(src, &back), "not the same policy after:\n%s", text);
	ck_assert_int_eq(pol_describe(&back, &again), 0);
	ck_assert_str_eq(strchr(text, '\n'), strchr(again, '\n')); /* all but the source line */
	free(text);
	free(again);
	pol_free(&back);
}

START_TEST(every_field_round_trips_through_ini)
{
	pol_free(&pol);
	tb_full_policy(&pol);
	ck_ini_round_trip(&pol);
}
END_TEST

START_TEST(awkward_values_and_keys_round_trip_through_ini)
{
	struct pol_endpoint *e = ep("rest");
	struct pol_l7_rule *r = tb_rule(e, "GET", " /a ;b #c");
	tb_matcher(&r->query, &r->n_query, "x.any", false, TB_GLOBS("\"quoted\""));
	tb_matcher(&r->query, &r->n_query, "a=b:c;d e%", true, TB_GLOBS("", "100%", "t\tab"));
	r = tb_rule(e, "POST", "");
	tb_rule(e, NULL, "/only-path");
	e = tb_endpoint(&pol, "hostless", "api.example.com", 9);
	free(e->host);
	e->host = NULL;
	e->kind = POL_HOST_NONE;
	e->allowed_ips = calloc(2, sizeof(*e->allowed_ips));
	ck_assert_int_eq(pol_cidr_parse("10.1.0.0/16", &e->allowed_ips[0], NULL), 0);
	ck_assert_int_eq(pol_cidr_parse("fd00::/8", &e->allowed_ips[1], NULL), 0);
	e->n_allowed_ips = 2;
	/* A second endpoint with its own allowed_ips: per-endpoint lists now have a spelling. */
	e = tb_endpoint(&pol, "hostless", "db.example.com", 5432);
	e->allowed_ips = calloc(1, sizeof(*e->allowed_ips));
	ck_assert_int_eq(pol_cidr_parse("10.2.0.0/16", &e->allowed_ips[0], NULL), 0);
	e->n_allowed_ips = 1;
	ck_assert_int_eq(pol_validate(&pol, NULL), 0);
	ck_ini_round_trip(&pol);
}
END_TEST

static const char l7_ini[] =
    "[network.github]\n"
    "endpoint = github.com:443\n"
    "binary = /usr/bin/gh\n"
    "\n"
    "[network.github.endpoint.api]\n"
    "host = api.github.com\n"
    "port = 443\n"
    "protocol = rest\n"
    "enforcement = enforce\n"
    "rule.1.method = GET\n"
    "rule.1.path = /repos/**\n"
    "rule.1.query.state.any = open\n"
    "rule.1.query.state.any = closed\n"
    "rule.2.method = POST\n"
    "rule.2.path = /repos/*/issues\n"
    "deny.1.method = DELETE\n"
    "deny.1.path = /repos/**\n"
    "\n"
    "[network.github.endpoint.raw]\n"
    "host = git.example.com\n"
    "port = 22, 2222\n"
    "tls = skip\n"
    "\n"
    "[middleware.redact]\n"
    "middleware = builtin.redact\n"
    "order = -3\n"
    "include = *.internal.example.com\n"
    "config = {\"mode\": \"strict\"}\n";

START_TEST(ini_spells_endpoint_sections_rules_and_middlewares)
{
	struct sv_err e = {0};
	pol_free(&pol);
	ck_assert_msg(pol_load_buffer("l7.ini", l7_ini, strlen(l7_ini), &pol, &e) == 0, "%s",
		      e.msg);
	ck_assert_uint_eq(pol.n_rules, 1);
	const struct pol_network_rule *r = &pol.rules[0];
	ck_assert_uint_eq(r->n_endpoints, 3);
	ck_assert_int_eq(r->endpoints[0].protocol, POL_PROTO_NONE);
	const struct pol_endpoint *api = &r->endpoints[1];
	ck_assert_str_eq(api->host, "api.github.com");
	ck_assert_int_eq(api->protocol, POL_PROTO_REST);
	ck_assert_int_eq(api->enforcement, POL_ENFORCE_ENFORCE);
	ck_assert_uint_eq(api->n_rules, 2);
	ck_assert_uint_eq(api->rules[0].n_query, 1);
	ck_assert(api->rules[0].query[0].any);
	ck_assert_uint_eq(api->rules[0].query[0].globs.n, 2);
	ck_assert_str_eq(api->deny_rules[0].method, "DELETE");
	ck_assert_uint_eq(r->endpoints[2].n_ports, 2);
	ck_assert_int_eq(r->endpoints[2].tls, POL_TLS_SKIP);
	ck_assert_uint_eq(pol.n_middlewares, 1);
	ck_assert_int_eq(pol.middlewares[0].order, -3);
	ck_assert_str_eq(pol.middlewares[0].config_json, "{\"mode\": \"strict\"}");
	ck_ini_round_trip(&pol);
}
END_TEST

#define ck_ini_fails(text, want)                                                          \
	do {                                                                              \
		struct pol_policy p_;                                                     \
		struct sv_err e_ = {0};                                                   \
		ck_assert_int_lt(pol_load_buffer("x.ini", (text), strlen(text), &p_, &e_), 0); \
		ck_assert_msg(strstr(e_.msg, (want)), "'%s' lacks '%s'", e_.msg, (want));  \
		ck_assert_uint_eq(p_.n_rules, 0);                                          \
	} while (0)

START_TEST(ini_l7_syntax_errors_name_file_and_line)
{
	ck_ini_fails("[network.a]\nbinary = /b\n[network.b.endpoint.1]\nport = 1\nhost = h.example\n",
		     "x.ini:3: [network.b.endpoint.1] must follow its rule's section [network.b]");
	ck_ini_fails("[network.a]\n[network.a.endpoint.1]\nhost = h.example\nport = 443\nbogus = 1\n",
		     "x.ini:5: bogus: unknown key 'bogus' in an endpoint section");
	ck_ini_fails("[network.a]\n[network.a.endpoint.1]\nhost = h.example\nport = 443\n"
		     "protocol = rest\nrule.2.method = GET\n",
		     "x.ini:6: rule.2.method: rules are numbered from 1 in order");
	ck_ini_fails("[network.a]\n[network.a.endpoint.1]\nhost = h.example\n",
		     "x.ini:2: port: an endpoint section needs a port");
	ck_ini_fails("[network.a]\n[network.a.endpoint.1]\nhost = h.example\nport = 443\n"
		     "protocol = gopher\n",
		     "unknown protocol 'gopher'");
	ck_ini_fails("[network.a]\n[network.a.endpoint.1]\nhost = h.example\nport = 443\n"
		     "protocol = rest\n",
		     "network.a.endpoints[0]: protocol requires rules or access");
	ck_ini_fails("[network.a]\n[network.a.endpoint.1]\nhost = h.example\nport = 443\n"
		     "access = full\nrule.1.path = \"/x\n",
		     "a quoted value must end in '\"'");
	ck_ini_fails("[middleware.m]\nmiddleware = x\ninclude = a.example.com\nconfig = [1]\n",
		     "config: expected a JSON object");
	ck_ini_fails("[network.a]\nallowed_ips = 10.0.0.0/8\n[network.a.endpoint.1]\n"
		     "host = h.example\nport = 443\n",
		     "allowed_ips applies to `endpoint =` lines");
}
END_TEST

static Suite *l7_suite(void)
{
	Suite *s = suite_create("policy_l7");
	TCase *tc = tcase_create("l7_validate");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, valid_rest_endpoint_with_preset_has_no_errors_or_warnings);
	tcase_add_test(tc, unknown_protocol_rejected_by_the_shared_parser);
	tcase_add_test(tc, rules_and_access_together_rejected);
	tcase_add_test(tc, jsonrpc_access_preset_rejected_with_one_message);
	tcase_add_test(tc, mcp_access_preset_rejected_naming_allow_all);
	tcase_add_test(tc, jsonrpc_without_rules_rejected);
	tcase_add_test(tc, protocol_without_rules_or_access_rejected);
	tcase_add_test(tc, mcp_without_rules_needs_allow_all_known_methods);
	tcase_add_test(tc, rules_without_any_allow_clause_rejected_except_mcp_allow_all);
	tcase_add_test(tc, deny_rules_need_a_protocol_and_a_base_allow_set);
	tcase_add_test(tc, explicit_tcp_is_plain_l4_and_rejects_l7_fields);
	suite_add_tcase(s, tc);

	tc = tcase_create("validate_l7_policies");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, credential_rewrite_flags_warn_outside_their_protocols);
	tcase_add_test(tc, websocket_graphql_rules_accepted_and_checked);
	tcase_add_test(tc, jsonrpc_rules_need_exact_methods_and_no_params_or_paths);
	tcase_add_test(tc, mcp_tool_selectors_follow_the_method_profile);
	tcase_add_test(tc, mcp_tool_selectors_need_a_method_without_the_profile);
	tcase_add_test(tc, mcp_method_globs_only_for_the_tools_family);
	tcase_add_test(tc, mcp_wildcard_tools_need_strict_tool_names);
	tcase_add_test(tc, mcp_endpoint_needs_a_host);
	tcase_add_test(tc, mcp_broad_tools_call_rules_conflict_with_tool_allow_rules);
	tcase_add_test(tc, mcp_options_only_for_mcp);
	tcase_add_test(tc, sql_enforce_rejected);
	tcase_add_test(tc, tls_terminate_and_passthrough_are_deprecated_warnings);
	tcase_add_test(tc, tls_skip_with_l7_on_443_warns);
	tcase_add_test(tc, unsupported_access_preset_warns);
	tcase_add_test(tc, graphql_rules_and_persisted_queries_checked);
	tcase_add_test(tc, endpoint_path_must_be_absolute_or_double_star);
	tcase_add_test(tc, query_matchers_checked_and_globs_warned);
	tcase_add_test(tc, empty_rule_lists_rejected);
	tcase_add_test(tc, deny_rule_query_matchers_checked);
	tcase_add_test(tc, unknown_http_methods_and_sql_commands_on_rest_warn);
	tcase_add_test(tc, credential_signing_checked);
	tcase_add_test(tc, middlewares_checked);
	tcase_add_test(tc, host_patterns_follow_label_globs);
	tcase_add_test(tc, warnings_reach_the_callback_with_the_field);
	suite_add_tcase(s, tc);

	tc = tcase_create("copy");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, full_policy_is_valid);
	tcase_add_test(tc, copy_is_deep_and_equal_in_every_field);
	suite_add_tcase(s, tc);

	tc = tcase_create("ini");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, every_field_round_trips_through_ini);
	tcase_add_test(tc, awkward_values_and_keys_round_trip_through_ini);
	tcase_add_test(tc, ini_spells_endpoint_sections_rules_and_middlewares);
	tcase_add_test(tc, ini_l7_syntax_errors_name_file_and_line);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(l7_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
