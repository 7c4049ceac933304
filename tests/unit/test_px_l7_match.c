/* Unit tests for netns/proxy/l7/px_l7_match.c and px_l7_glob.c: the Rego L7 decision of
 * contract §2.1-2.4 as black-box cases mirroring OpenShell's opa.rs l7_* tests (named after
 * them), plus the two glob dialects and endpoint route selection.
 *
 * Policies are built in memory (the INI loader has no L7 syntax yet); every string is a
 * literal the code only reads.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "netns/proxy/l7/px_l7.h"

/* EP() sets enforce; a case may override it. */
#pragma GCC diagnostic ignored "-Woverride-init"

#define S(x) ((char *)(x))

static uint16_t port8080[] = {8080}, port443[] = {443}, port80[] = {80};
static char *curl_v[] = {S("/usr/bin/curl")};

static struct pol_l7_rule rest_rules[] = {
    {.method = S("GET"), .path = S("/repos/**")},
    {.method = S("POST"), .path = S("/repos/*/issues")},
};
static char *foo_glob[] = {S("foo-*")};
static char *foo_bar_globs[] = {S("foo-*"), S("bar-*")};
static struct pol_matcher q_download[] = {{.key = S("tag"), .globs = {foo_glob, 1}}};
static struct pol_matcher q_search[] = {
    {.key = S("tag"), .globs = {foo_bar_globs, 2}, .any = true}};
static struct pol_l7_rule query_rules[] = {
    {.method = S("GET"), .path = S("/download"), .query = q_download, .n_query = 1},
    {.method = S("GET"), .path = S("/search"), .query = q_search, .n_query = 1},
};
static char *true_glob[] = {S("true")};
static struct pol_matcher q_force[] = {{.key = S("force"), .globs = {true_glob, 1}}};
static struct pol_l7_rule gh_deny[] = {
    {.method = S("POST"), .path = S("/repos/*/pulls/*/reviews")},
    {.method = S("PUT"), .path = S("/repos/*/branches/*/protection")},
    {.method = S("*"), .path = S("/repos/*/rulesets")},
};
static struct pol_l7_rule restricted_deny[] = {
    {.method = S("POST"), .path = S("/admin/**"), .query = q_force, .n_query = 1},
};

#define EP(h, pp, ...)                                                          \
	{                                                                       \
		.kind = POL_HOST_NAME, .host = S(h), .ports = pp, .n_ports = 1, \
		.enforcement = POL_ENFORCE_ENFORCE, __VA_ARGS__                 \
	}

static struct pol_endpoint ep_rest[] = {EP("api.example.com", port8080, .protocol = POL_PROTO_REST,
					   .rules = rest_rules, .n_rules = 2, .rules_set = true)};
static struct pol_endpoint ep_ro[] = {
    EP("api.readonly.com", port8080, .protocol = POL_PROTO_REST, .access = POL_ACCESS_READ_ONLY)};
static struct pol_endpoint ep_full[] = {EP("api.full.com", port8080, .protocol = POL_PROTO_REST,
					   .access = POL_ACCESS_FULL,
					   .enforcement = POL_ENFORCE_AUDIT)};
static struct pol_endpoint ep_query[] = {EP("api.query.com", port8080, .protocol = POL_PROTO_REST,
					    .rules = query_rules, .n_rules = 2, .rules_set = true)};
static struct pol_endpoint ep_gh[] = {EP("api.github.com", port443, .protocol = POL_PROTO_REST,
					 .access = POL_ACCESS_READ_WRITE, .deny_rules = gh_deny,
					 .n_deny_rules = 3, .deny_rules_set = true)};
static struct pol_endpoint ep_restricted[] = {
    EP("api.restricted.com", port443, .protocol = POL_PROTO_REST, .access = POL_ACCESS_FULL,
       .deny_rules = restricted_deny, .n_deny_rules = 1, .deny_rules_set = true)};
static struct pol_endpoint ep_l4[] = {EP("l4only.example.com", port443)};

#define RULE(n, eps)                                                                         \
	{                                                                                    \
		.name = S(n), .endpoints = eps, .n_endpoints = sizeof(eps) / sizeof(eps[0]), \
		.binaries = {                                                                \
			curl_v,                                                              \
			1                                                                    \
		}                                                                            \
	}

static struct pol_network_rule rules[] = {
    RULE("rest_api", ep_rest), RULE("readonly_api", ep_ro),
    RULE("full_api", ep_full), RULE("query_api", ep_query),
    RULE("github_api", ep_gh), RULE("deny_with_query", ep_restricted),
    RULE("l4_only", ep_l4),
};
static struct pol_policy pol = {.version = 1, .rules = rules, .n_rules = 7};

static struct px_l7_verdict v;

static bool eval_q(const char *host, uint16_t port, const char *method, const char *path,
		   const struct px_l7_qparam *q, size_t nq, const char *exe)
{
	struct px_query pq = {.host = host, .port = port, .exe = exe};
	struct px_l7_request r = {.method = method, .path = path, .query = q, .n_query = nq};
	ck_assert_int_eq(px_l7_evaluate(&pol, &pq, &r, &v), 0);
	return v.allowed;
}

static bool eval(const char *host, uint16_t port, const char *method, const char *path)
{
	return eval_q(host, port, method, path, NULL, 0, "/usr/bin/curl");
}

#define QP(k, v)                                                                       \
	{                                                                              \
		.key = k, .key_len = sizeof(k) - 1, .val = v, .val_len = sizeof(v) - 1 \
	}

START_TEST(l7_get_allowed_by_rules)
{
	ck_assert(eval("api.example.com", 8080, "GET", "/repos/myorg/foo"));
	ck_assert_str_eq(v.reason, "");
}
END_TEST

START_TEST(l7_post_allowed_by_rules)
{
	ck_assert(eval("api.example.com", 8080, "POST", "/repos/myorg/issues"));
}
END_TEST

START_TEST(l7_delete_denied_by_rules)
{
	ck_assert(!eval("api.example.com", 8080, "DELETE", "/repos/myorg/foo"));
}
END_TEST

START_TEST(l7_get_wrong_path_denied)
{
	ck_assert(!eval("api.example.com", 8080, "GET", "/admin/settings"));
	ck_assert(
	    !eval("api.example.com", 8080, "POST", "/repos/a/b/issues")); /* '*' is one segment */
}
END_TEST

START_TEST(l7_readonly_preset_cases)
{
	ck_assert(eval("api.readonly.com", 8080, "GET", "/anything"));
	ck_assert(eval("api.readonly.com", 8080, "HEAD", "/anything"));
	ck_assert(eval("api.readonly.com", 8080, "OPTIONS", "/anything"));
	ck_assert(!eval("api.readonly.com", 8080, "POST", "/anything"));
	ck_assert(!eval("api.readonly.com", 8080, "DELETE", "/anything"));
}
END_TEST

START_TEST(l7_full_preset_allows_everything)
{
	static const char *const m[] = {"GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"};
	for (size_t i = 0; i < 7; i++)
		ck_assert_msg(eval("api.full.com", 8080, m[i], "/any/path"), "%s", m[i]);
}
END_TEST

START_TEST(l7_method_matching_case_insensitive)
{
	ck_assert(eval("api.example.com", 8080, "get", "/repos/myorg/foo"));
}
END_TEST

START_TEST(l7_path_glob_matching)
{
	ck_assert(eval("api.example.com", 8080, "GET", "/repos/org/repo"));
	ck_assert(eval("api.example.com", 8080, "GET", "/repos/org/repo/deep/er"));
	ck_assert(!eval("api.example.com", 8080, "GET", "/reposx"));
}
END_TEST

START_TEST(l7_query_glob_allows_matching_duplicate_values)
{
	struct px_l7_qparam q[] = {QP("tag", "foo-a"), QP("tag", "foo-b"), QP("extra", "ignored")};
	ck_assert(eval_q("api.query.com", 8080, "GET", "/download", q, 3, "/usr/bin/curl"));
}
END_TEST

START_TEST(l7_query_glob_denies_on_mismatched_duplicate_value)
{
	struct px_l7_qparam q[] = {QP("tag", "foo-a"), QP("tag", "evil")};
	ck_assert(!eval_q("api.query.com", 8080, "GET", "/download", q, 2, "/usr/bin/curl"));
}
END_TEST

START_TEST(l7_query_any_allows_if_every_value_matches_any_pattern)
{
	struct px_l7_qparam q[] = {QP("tag", "foo-a"), QP("tag", "bar-b")};
	ck_assert(eval_q("api.query.com", 8080, "GET", "/search", q, 2, "/usr/bin/curl"));
	struct px_l7_qparam q2[] = {QP("tag", "foo-a"), QP("tag", "baz-b")};
	ck_assert(!eval_q("api.query.com", 8080, "GET", "/search", q2, 2, "/usr/bin/curl"));
}
END_TEST

START_TEST(l7_query_missing_required_key_denied)
{
	ck_assert(!eval_q("api.query.com", 8080, "GET", "/download", NULL, 0, "/usr/bin/curl"));
}
END_TEST

START_TEST(l7_query_glob_stops_at_dots_like_rego_default_delimiter)
{
	/* glob.match(p, [], v) defaults to the "." delimiter: '*' does not cross it. */
	struct px_l7_qparam q[] = {QP("tag", "foo-1.2")};
	ck_assert(!eval_q("api.query.com", 8080, "GET", "/download", q, 1, "/usr/bin/curl"));
	struct px_l7_qparam q2[] = {QP("tag", "foo-a/b")};
	ck_assert(eval_q("api.query.com", 8080, "GET", "/download", q2, 1, "/usr/bin/curl"));
}
END_TEST

START_TEST(l7_no_request_on_l4_only_endpoint)
{
	ck_assert(!eval("l4only.example.com", 443, "GET", "/anything"));
}
END_TEST

START_TEST(l7_wrong_binary_denied_even_with_matching_rules)
{
	ck_assert(!eval_q("api.example.com", 8080, "GET", "/repos/myorg/foo", NULL, 0,
			  "/usr/bin/python3"));
	struct px_query pq = {.host = "api.example.com",
			      .port = 8080,
			      .exe = "/usr/bin/python3",
			      .endpoint_only = true};
	struct px_l7_request r = {.method = "GET", .path = "/repos/myorg/foo"};
	ck_assert_int_eq(px_l7_evaluate(&pol, &pq, &r, &v), 0);
	ck_assert(v.allowed); /* l7_get_allowed_by_rules_when_binary_identity_relaxed */
}
END_TEST

START_TEST(l7_deny_reason_populated)
{
	ck_assert(!eval("api.example.com", 8080, "DELETE", "/repos/myorg/foo"));
	ck_assert_str_eq(v.reason, "DELETE /repos/myorg/foo not permitted by policy");
}
END_TEST

START_TEST(l7_deny_rule_cases)
{
	/* l7_deny_rule_blocks_allowed_method_path */
	ck_assert(!eval("api.github.com", 443, "POST", "/repos/myorg/pulls/123/reviews"));
	/* l7_deny_reason_populated_when_deny_rule_matches */
	ck_assert_str_eq(v.reason, "POST /repos/myorg/pulls/123/reviews blocked by deny rule");
	/* l7_deny_rule_allows_non_matching_requests */
	ck_assert(eval("api.github.com", 443, "GET", "/repos/myorg/issues"));
	/* l7_deny_rule_allows_same_method_different_path */
	ck_assert(eval("api.github.com", 443, "POST", "/repos/myorg/issues"));
	/* l7_deny_rule_blocks_wildcard_method */
	ck_assert(!eval("api.github.com", 443, "GET", "/repos/myorg/rulesets"));
	/* l7_deny_rule_blocks_put_protection */
	ck_assert(!eval("api.github.com", 443, "PUT", "/repos/myorg/branches/main/protection"));
	/* DELETE is only in full: not permitted, not "blocked" */
	ck_assert(!eval("api.github.com", 443, "DELETE", "/repos/myorg/x"));
	ck_assert_str_eq(v.reason, "DELETE /repos/myorg/x not permitted by policy");
}
END_TEST

START_TEST(l7_deny_rule_query_cases)
{
	struct px_l7_qparam t[] = {QP("force", "true")};
	struct px_l7_qparam f[] = {QP("force", "false")};
	struct px_l7_qparam tf[] = {QP("force", "true"), QP("force", "false")};
	ck_assert(
	    !eval_q("api.restricted.com", 443, "POST", "/admin/settings", t, 1, "/usr/bin/curl"));
	ck_assert(
	    eval_q("api.restricted.com", 443, "POST", "/admin/settings", f, 1, "/usr/bin/curl"));
	ck_assert(
	    !eval_q("api.restricted.com", 443, "POST", "/admin/settings", tf, 2, "/usr/bin/curl"));
	/* l7_deny_rule_without_matching_query_key_allows */
	ck_assert(
	    eval_q("api.restricted.com", 443, "POST", "/admin/settings", NULL, 0, "/usr/bin/curl"));
}
END_TEST

START_TEST(l7_head_allowed_where_get_is_allowed)
{
	ck_assert(eval("api.example.com", 8080, "HEAD", "/repos/myorg/foo"));
}
END_TEST

START_TEST(l7_options_not_implicitly_allowed_by_get)
{
	ck_assert(!eval("api.example.com", 8080, "OPTIONS", "/repos/myorg/foo"));
}
END_TEST

START_TEST(l7_head_denied_when_only_post_allowed)
{
	static struct pol_l7_rule post[] = {{.method = S("POST"), .path = S("/")}};
	static struct pol_endpoint e[] = {EP("h.test", port80, .protocol = POL_PROTO_REST,
					     .rules = post, .n_rules = 1, .rules_set = true)};
	static struct pol_network_rule r[] = {RULE("p", e)};
	struct pol_policy p = {.version = 1, .rules = r, .n_rules = 1};
	struct px_query pq = {.host = "h.test", .port = 80, .exe = "/usr/bin/curl"};
	struct px_l7_request rq = {.method = "HEAD", .path = "/"};
	ck_assert_int_eq(px_l7_evaluate(&p, &pq, &rq, &v), 0);
	ck_assert(!v.allowed);
}
END_TEST

START_TEST(l7_head_blocked_by_deny_rule_targeting_get)
{
	static struct pol_l7_rule deny[] = {{.method = S("GET"), .path = S("/protected")}};
	static struct pol_endpoint e[] = {EP("h.test", port80, .protocol = POL_PROTO_REST,
					     .access = POL_ACCESS_FULL, .deny_rules = deny,
					     .n_deny_rules = 1)};
	static struct pol_network_rule r[] = {RULE("p", e)};
	struct pol_policy p = {.version = 1, .rules = r, .n_rules = 1};
	struct px_query pq = {.host = "h.test", .port = 80, .exe = "/usr/bin/curl"};
	struct px_l7_request rq = {.method = "HEAD", .path = "/protected"};
	ck_assert_int_eq(px_l7_evaluate(&p, &pq, &rq, &v), 0);
	ck_assert(!v.allowed);
	ck_assert_str_eq(v.reason, "HEAD /protected blocked by deny rule");
	rq.path = "/other";
	ck_assert_int_eq(px_l7_evaluate(&p, &pq, &rq, &v), 0);
	ck_assert(v.allowed);
}
END_TEST

START_TEST(l7_endpoint_path_scopes_rest_and_graphql_on_same_host)
{
	static struct pol_l7_rule any[] = {{.method = S("*"), .path = S("/**")}};
	static struct pol_l7_rule gql[] = {{.operation_type = S("query")}};
	static struct pol_endpoint e[] = {
	    EP("api.github.test", port443, .path = S("/repos/**"), .protocol = POL_PROTO_REST,
	       .rules = any, .n_rules = 1, .rules_set = true),
	    EP("api.github.test", port443, .path = S("/graphql"), .protocol = POL_PROTO_GRAPHQL,
	       .rules = gql, .n_rules = 1, .rules_set = true),
	};
	static struct pol_network_rule r[] = {RULE("mixed_api", e)};
	struct pol_policy p = {.version = 1, .rules = r, .n_rules = 1};
	struct px_query pq = {.host = "api.github.test", .port = 443, .exe = "/usr/bin/curl"};
	struct px_l7_request rq = {.method = "POST", .path = "/repos/org/repo/issues"};
	ck_assert_int_eq(px_l7_evaluate(&p, &pq, &rq, &v), 0);
	ck_assert(v.allowed);
	/* The REST "*" rule must not reach /graphql: its endpoint path does not match. */
	rq.path = "/graphql";
	ck_assert_int_eq(px_l7_evaluate(&p, &pq, &rq, &v), 0);
	ck_assert(!v.allowed);
	/* Route selection picks the endpoint by path specificity. */
	const struct pol_endpoint *eps[] = {&e[0], &e[1]};
	ck_assert_ptr_eq(px_l7_select_endpoint(eps, 2, "/graphql"), &e[1]);
	ck_assert_ptr_eq(px_l7_select_endpoint(eps, 2, "/repos/a"), &e[0]);
	ck_assert_ptr_eq(px_l7_select_endpoint(eps, 2, "/repos"), &e[0]);
	ck_assert_ptr_null(px_l7_select_endpoint(eps, 2, "/users"));
}
END_TEST

START_TEST(l7_route_selection_prefers_path_specific_endpoint_and_last_of_equals)
{
	static struct pol_endpoint e[] = {
	    EP("h", port443, .path = NULL),
	    EP("h", port443, .path = S("/v1/*")),
	    EP("h", port443, .path = S("/v1/chat")),
	    EP("h", port443, .path = S("/v1/chat")),
	};
	const struct pol_endpoint *eps[] = {&e[0], &e[1], &e[2], &e[3]};
	ck_assert_ptr_eq(px_l7_select_endpoint(eps, 4, "/v1/chat"), &e[3]);
	ck_assert_ptr_eq(px_l7_select_endpoint(eps, 4, "/v1/other/deep"), &e[1]);
	ck_assert_ptr_eq(px_l7_select_endpoint(eps, 4, "/v2"), &e[0]);
	ck_assert_uint_eq(px_l7_endpoint_path_specificity("/v1/**"), 4);
	ck_assert_uint_eq(px_l7_endpoint_path_specificity(NULL), 0);
}
END_TEST

START_TEST(websocket_presets_and_jsonrpc_endpoints)
{
	static struct pol_endpoint ws =
	    EP("h", port443, .protocol = POL_PROTO_WEBSOCKET, .access = POL_ACCESS_READ_WRITE);
	struct px_l7_matcher m;
	px_l7_matcher_compile(&ws, &m);
	struct px_l7_request r = {.method = "WEBSOCKET_TEXT", .path = "/ws"};
	ck_assert_int_eq(px_l7_matcher_allows(&m, &r), 1);
	r.method = "POST";
	ck_assert_int_eq(px_l7_matcher_allows(&m, &r), 0);
	ws.access = POL_ACCESS_READ_ONLY;
	px_l7_matcher_compile(&ws, &m);
	r.method = "WEBSOCKET_TEXT";
	ck_assert_int_eq(px_l7_matcher_allows(&m, &r), 0);
	/* Presets are ignored once rules exist; JSON-RPC rules are never REST rules. */
	static struct pol_l7_rule get_a[] = {{.method = S("GET"), .path = S("/a")}};
	static struct pol_endpoint rest =
	    EP("h", port443, .protocol = POL_PROTO_REST, .access = POL_ACCESS_FULL, .rules = get_a,
	       .n_rules = 1);
	px_l7_matcher_compile(&rest, &m);
	r.method = "DELETE";
	r.path = "/a";
	ck_assert_int_eq(px_l7_matcher_allows(&m, &r), 0);
	rest.protocol = POL_PROTO_JSONRPC;
	px_l7_matcher_compile(&rest, &m);
	r.method = "GET";
	ck_assert_int_eq(px_l7_matcher_allows(&m, &r), 0);
	/* An allow rule without a path never matches. */
	static struct pol_l7_rule nopath[] = {{.method = S("GET")}};
	static struct pol_endpoint np =
	    EP("h", port443, .protocol = POL_PROTO_REST, .rules = nopath, .n_rules = 1);
	px_l7_matcher_compile(&np, &m);
	ck_assert_int_eq(px_l7_matcher_allows(&m, &r), 0);
}
END_TEST

START_TEST(decision_strings)
{
	ck_assert_str_eq(px_l7_decision(true, POL_ENFORCE_ENFORCE, false, false), "allow");
	ck_assert_str_eq(px_l7_decision(true, POL_ENFORCE_AUDIT, false, true), "allow_upgrade");
	ck_assert_str_eq(px_l7_decision(false, POL_ENFORCE_AUDIT, false, false), "audit");
	ck_assert_str_eq(px_l7_decision(false, POL_ENFORCE_ENFORCE, false, false), "deny");
	ck_assert_str_eq(px_l7_decision(true, POL_ENFORCE_AUDIT, true, false), "deny");
}
END_TEST

static int gm(const char *p, const char *val, char d)
{
	return px_l7_glob_match(p, val, strlen(val), d);
}

START_TEST(rego_glob_with_slash_delimiter)
{
	ck_assert_int_eq(gm("/repos/*", "/repos/a", '/'), 1);
	ck_assert_int_eq(gm("/repos/*", "/repos/a/b", '/'), 0);
	ck_assert_int_eq(gm("/repos/**", "/repos/a/b", '/'), 1);
	ck_assert_int_eq(gm("/repos/**", "/repos", '/'), 0);
	ck_assert_int_eq(gm("/repos/**/x", "/repos/x", '/'), 1);
	ck_assert_int_eq(gm("/repos/**/x", "/repos/a/b/x", '/'), 1);
	ck_assert_int_eq(gm("**/x", "x", '/'), 1);
	ck_assert_int_eq(gm("**", "/anything/at/all", '/'), 1);
	ck_assert_int_eq(gm("/a?c", "/abc", '/'), 1);
	ck_assert_int_eq(gm("/a?c", "/a/c", '/'), 0);
	ck_assert_int_eq(gm("/v[0-9]/x", "/v2/x", '/'), 1);
	ck_assert_int_eq(gm("/v[!0-9]/x", "/vz/x", '/'), 1);
	ck_assert_int_eq(gm("/a\\*", "/a*", '/'), 1);
	ck_assert_int_eq(gm("/a\\*", "/ab", '/'), 0);
	ck_assert_int_eq(gm("/a**b", "/axyb", '/'), 1); /* not a whole part: two '*' */
	ck_assert_int_eq(gm("/a**b", "/ax/yb", '/'), 0);
	ck_assert_int_eq(gm("", "", '/'), 1);
	ck_assert_int_eq(gm("", "/", '/'), 0);
	ck_assert_int_eq(gm("/{a,b}", "/a", '/'), 1);
	ck_assert_int_eq(gm("/{a,b}", "/c", '/'), 0);
	ck_assert_int_eq(gm("/repos/*/{issues,pulls/*}", "/repos/x/pulls/3", '/'), 1);
	ck_assert_int_eq(gm("/repos/*/{issues,pulls/*}", "/repos/x/pulls", '/'), 0);
	ck_assert_int_eq(gm("/x{,y}", "/x", '/'), 0); /* empty alternatives are dropped */
	ck_assert_int_eq(gm("/x{,y}", "/xy", '/'), 1);
	ck_assert_int_eq(gm("/x{}", "/x", '/'), 1);
	ck_assert_int_eq(gm("/{a,{b,c}d}", "/cd", '/'), 1);
	ck_assert_int_eq(gm("{**/a,b}", "x/y/a", '/'), 1);
	ck_assert_int_eq(gm("/a,b", "/a,b", '/'), 1); /* ',' outside braces is literal */
	ck_assert_int_eq(gm("/{a,b", "/a", '/'), -EINVAL);
	ck_assert_int_eq(gm("/a}", "/a}", '/'), -EINVAL);
	ck_assert_int_eq(gm("/[a", "/a", '/'), -EINVAL);
	ck_assert_int_eq(px_l7_glob_match("*", "a\0b", 3, '/'), -EINVAL);
}
END_TEST

START_TEST(rego_glob_with_dot_delimiter)
{
	ck_assert_int_eq(gm("foo-*", "foo-a", '.'), 1);
	ck_assert_int_eq(gm("foo-*", "foo-a.b", '.'), 0);
	ck_assert_int_eq(gm("foo-**", "foo-a.b", '.'), 0); /* "**" mid-part is two '*' */
	ck_assert_int_eq(gm("**", "a.b.c", '.'), 1);
	ck_assert_int_eq(gm("*.example.com", "a.example.com", '.'), 1);
	ck_assert_int_eq(gm("*.example.com", "a.b.example.com", '.'), 0);
	ck_assert_int_eq(gm("**.example.com", "a.b.example.com", '.'), 1);
	ck_assert_int_eq(gm("a*", "a/b", '.'), 1); /* '/' is an ordinary byte here */
}
END_TEST

START_TEST(endpoint_path_rust_glob)
{
	ck_assert(px_l7_endpoint_path_matches("", "/v1/messages"));
	ck_assert(px_l7_endpoint_path_matches("/**", "/v1/messages"));
	ck_assert(px_l7_endpoint_path_matches("/v1/**", "/v1"));
	ck_assert(px_l7_endpoint_path_matches("/v1/**", "/v1/messages"));
	ck_assert(px_l7_endpoint_path_matches("/v*/messages", "/v1/messages"));
	ck_assert(px_l7_endpoint_path_matches("/v1/*", "/v1/chat/messages"));
	ck_assert(!px_l7_endpoint_path_matches("/v1/**", "/v2/messages"));
	ck_assert(!px_l7_endpoint_path_matches("/v1/**", "/v10"));
	ck_assert(!px_l7_endpoint_path_matches("/v1/*/messages", "/v1/chat/completions"));
	ck_assert(px_l7_endpoint_path_matches("[", "["));
	ck_assert(!px_l7_endpoint_path_matches("[", "/v1/messages"));
	ck_assert(px_l7_endpoint_path_matches("/a/**/b", "/a/b"));
	ck_assert(px_l7_endpoint_path_matches("/a/**/b", "/a/x/y/b"));
	ck_assert(!px_l7_endpoint_path_matches("/a**", "/abc")); /* invalid: only itself */
	ck_assert(px_l7_endpoint_path_matches("/[!x]", "/y"));
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("px_l7_match");
	TCase *tc = tcase_create("match");
	tcase_add_test(tc, l7_get_allowed_by_rules);
	tcase_add_test(tc, l7_post_allowed_by_rules);
	tcase_add_test(tc, l7_delete_denied_by_rules);
	tcase_add_test(tc, l7_get_wrong_path_denied);
	tcase_add_test(tc, l7_readonly_preset_cases);
	tcase_add_test(tc, l7_full_preset_allows_everything);
	tcase_add_test(tc, l7_method_matching_case_insensitive);
	tcase_add_test(tc, l7_path_glob_matching);
	tcase_add_test(tc, l7_query_glob_allows_matching_duplicate_values);
	tcase_add_test(tc, l7_query_glob_denies_on_mismatched_duplicate_value);
	tcase_add_test(tc, l7_query_any_allows_if_every_value_matches_any_pattern);
	tcase_add_test(tc, l7_query_missing_required_key_denied);
	tcase_add_test(tc, l7_query_glob_stops_at_dots_like_rego_default_delimiter);
	tcase_add_test(tc, l7_no_request_on_l4_only_endpoint);
	tcase_add_test(tc, l7_wrong_binary_denied_even_with_matching_rules);
	tcase_add_test(tc, l7_deny_reason_populated);
	tcase_add_test(tc, l7_deny_rule_cases);
	tcase_add_test(tc, l7_deny_rule_query_cases);
	tcase_add_test(tc, l7_head_allowed_where_get_is_allowed);
	tcase_add_test(tc, l7_options_not_implicitly_allowed_by_get);
	tcase_add_test(tc, l7_head_denied_when_only_post_allowed);
	tcase_add_test(tc, l7_head_blocked_by_deny_rule_targeting_get);
	tcase_add_test(tc, l7_endpoint_path_scopes_rest_and_graphql_on_same_host);
	tcase_add_test(tc, l7_route_selection_prefers_path_specific_endpoint_and_last_of_equals);
	tcase_add_test(tc, websocket_presets_and_jsonrpc_endpoints);
	tcase_add_test(tc, decision_strings);
	tcase_add_test(tc, rego_glob_with_slash_delimiter);
	tcase_add_test(tc, rego_glob_with_dot_delimiter);
	tcase_add_test(tc, endpoint_path_rust_glob);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
