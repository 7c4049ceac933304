/* Test helpers: build layer-7 policies directly in the model, for validation, copy and
 * round-trip tests (test_policy_l7.c, test_gw_policy.c, test_px_policy.c).
 *
 * Allocation failures abort the test (ck_assert): these are fixtures, not code under test.
 */
#ifndef TEST_POL_BUILD_H
#define TEST_POL_BUILD_H

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor/policy/policy.h"

static inline char *tb_dup(const char *s)
{
	char *d = s ? strdup(s) : NULL;
	ck_assert(!s || d);
	return d;
}

static inline void *tb_grow(void *v, size_t *n, size_t size)
{
	char *p = realloc(v, (*n + 1) * size);
	ck_assert_ptr_nonnull(p);
	memset(p + *n * size, 0, size);
	(*n)++;
	return p;
}

/* A new rule @name (binary /usr/bin/curl) in @p with one endpoint @host:@port. */
static inline struct pol_endpoint *tb_endpoint(struct pol_policy *p, const char *name,
					       const char *host, uint16_t port)
{
	struct pol_network_rule *r = NULL;
	for (size_t i = 0; i < p->n_rules; i++)
		if (strcmp(p->rules[i].name, name) == 0)
			r = &p->rules[i];
	if (!r) {
		p->rules = tb_grow(p->rules, &p->n_rules, sizeof(*p->rules));
		r = &p->rules[p->n_rules - 1];
		r->name = tb_dup(name);
		ck_assert_int_eq(pol_strv_push(&r->binaries, "/usr/bin/curl"), 0);
	}
	r->endpoints = tb_grow(r->endpoints, &r->n_endpoints, sizeof(*r->endpoints));
	struct pol_endpoint *e = &r->endpoints[r->n_endpoints - 1];
	char canon[POL_HOST_MAX + 1];
	ck_assert_int_eq(pol_host_canon(host, canon, sizeof(canon), &e->kind, NULL), 0);
	e->host = tb_dup(canon);
	e->ports = calloc(1, sizeof(*e->ports));
	ck_assert_ptr_nonnull(e->ports);
	e->ports[0] = port;
	e->n_ports = 1;
	return e;
}

static inline struct pol_l7_rule *tb_rule(struct pol_endpoint *e, const char *method,
					  const char *path)
{
	e->rules = tb_grow(e->rules, &e->n_rules, sizeof(*e->rules));
	e->rules_set = true;
	struct pol_l7_rule *r = &e->rules[e->n_rules - 1];
	r->method = tb_dup(method);
	r->path = tb_dup(path);
	return r;
}

static inline struct pol_l7_rule *tb_deny(struct pol_endpoint *e, const char *method,
					  const char *path)
{
	e->deny_rules = tb_grow(e->deny_rules, &e->n_deny_rules, sizeof(*e->deny_rules));
	e->deny_rules_set = true;
	struct pol_l7_rule *r = &e->deny_rules[e->n_deny_rules - 1];
	r->method = tb_dup(method);
	r->path = tb_dup(path);
	return r;
}

/* Append a matcher to a map (@key) with the given globs (NULL-terminated); @any as written. */
static inline struct pol_matcher *tb_matcher(struct pol_matcher **v, size_t *n, const char *key,
					     bool any, const char *const *globs)
{
	*v = tb_grow(*v, n, sizeof(**v));
	struct pol_matcher *m = &(*v)[*n - 1];
	m->key = tb_dup(key);
	m->any = any;
	for (; globs && *globs; globs++)
		ck_assert_int_eq(pol_strv_push(&m->globs, *globs), 0);
	return m;
}

#define TB_GLOBS(...) ((const char *const[]){__VA_ARGS__, NULL})

static inline void tb_tool(struct pol_l7_rule *r, bool any, const char *const *globs)
{
	size_t n = 0;
	tb_matcher(&r->tool, &n, NULL, any, globs);
}

static inline struct pol_middleware *tb_middleware(struct pol_policy *p, const char *name,
						   const char *include, int32_t order)
{
	p->middlewares = tb_grow(p->middlewares, &p->n_middlewares, sizeof(*p->middlewares));
	struct pol_middleware *m = &p->middlewares[p->n_middlewares - 1];
	m->name = tb_dup(name);
	m->middleware = tb_dup("builtin.redact");
	m->order = order;
	if (include)
		ck_assert_int_eq(pol_strv_push(&m->include, include), 0);
	return m;
}

/* One policy using every field of the model, valid, for copy and round-trip tests. */
static inline void tb_full_policy(struct pol_policy *p)
{
	pol_init(p);
	ck_assert_int_eq(pol_strv_push(&p->read_only, "/usr"), 0);
	ck_assert_int_eq(pol_strv_push(&p->read_write, "/tmp"), 0);
	p->run_as_user = tb_dup("sandbox");
	p->run_as_group = tb_dup("1000");
	p->landlock_compat = POL_HARD_REQUIREMENT;
	p->include_workdir = false;

	struct pol_endpoint *e = tb_endpoint(p, "github", "api.github.com", 443);
	e->protocol = POL_PROTO_REST;
	e->enforcement = POL_ENFORCE_ENFORCE;
	e->tls = POL_TLS_TERMINATE;
	e->tls_set = true;
	e->path = tb_dup("/repos/**");
	e->allow_encoded_slash = true;
	e->websocket_credential_rewrite = true;
	e->allow_uninspected_credentials = true;
	e->provider_credentialed = true;
	e->advisor_proposed = true;
	e->credential_signing = tb_dup("sigv4");
	e->signing_service = tb_dup("execute-api");
	e->signing_region = tb_dup("us-east-1");
	e->credential_binding = tb_dup("github-app");
	struct pol_l7_rule *r = tb_rule(e, "GET", "/repos/**");
	tb_matcher(&r->query, &r->n_query, "per_page", false, TB_GLOBS("1*"));
	tb_matcher(&r->query, &r->n_query, "state", true, TB_GLOBS("open", "closed"));
	tb_rule(e, "POST", "/repos/*/issues");
	struct pol_l7_rule *d = tb_deny(e, "POST", "/repos/*/issues/*/lock");
	tb_matcher(&d->query, &d->n_query, "force", false, TB_GLOBS("true"));
	e->allowed_ips = calloc(1, sizeof(*e->allowed_ips));
	ck_assert_int_eq(pol_cidr_parse("10.0.5.0/24", &e->allowed_ips[0], NULL), 0);
	e->n_allowed_ips = 1;

	e = tb_endpoint(p, "github", "api.github.com", 443);
	e->protocol = POL_PROTO_GRAPHQL;
	e->path = tb_dup("/graphql");
	e->persisted_queries = tb_dup("allow_registered");
	e->graphql_max_body_bytes = 131072;
	e->gql_ops = calloc(1, sizeof(*e->gql_ops));
	ck_assert_ptr_nonnull(e->gql_ops);
	e->n_gql_ops = 1;
	e->gql_ops[0].id = tb_dup("abc123");
	e->gql_ops[0].operation_type = tb_dup("query");
	e->gql_ops[0].operation_name = tb_dup("Viewer");
	ck_assert_int_eq(pol_strv_push(&e->gql_ops[0].fields, "viewer"), 0);
	r = tb_rule(e, NULL, NULL);
	r->operation_type = tb_dup("query");
	r->operation_name = tb_dup("List*");
	ck_assert_int_eq(pol_strv_push(&r->fields, "repository"), 0);
	ck_assert_int_eq(pol_strv_push(&r->fields, "viewer"), 0);

	e = tb_endpoint(p, "tools", "mcp.example.com", 443);
	e->protocol = POL_PROTO_MCP;
	e->json_rpc_max_body_bytes = 32768;
	e->mcp_strict_tool_names = POL_TRUE;
	e->mcp_allow_all_known_mcp_methods = POL_TRUE;
	r = tb_rule(e, "tools/call", NULL);
	tb_matcher(&r->params, &r->n_params, "name", true, TB_GLOBS("read_*", "list_*"));
	r = tb_rule(e, NULL, NULL);
	tb_tool(r, false, TB_GLOBS("status"));
	d = tb_deny(e, "tools/call", NULL);
	tb_tool(d, false, TB_GLOBS("delete_*"));

	e = tb_endpoint(p, "tools", "rpc.example.com", 8443);
	e->protocol = POL_PROTO_JSONRPC;
	e->json_rpc_max_body_bytes = 4096;
	tb_rule(e, "eth_call", NULL);

	e = tb_endpoint(p, "db", "db.example.com", 5432);
	e->protocol = POL_PROTO_SQL;
	e->access = POL_ACCESS_READ_ONLY;
	r = tb_rule(e, NULL, NULL);
	(void)r;
	e->access = POL_ACCESS_NONE;
	e->rules[0].command = tb_dup("SELECT");

	e = tb_endpoint(p, "ws", "ws.example.com", 443);
	e->protocol = POL_PROTO_WEBSOCKET;
	e->access = POL_ACCESS_UNKNOWN;
	e->access_raw = tb_dup("read-mostly");
	e->request_body_credential_rewrite = false;

	e = tb_endpoint(p, "raw", "*.internal.example.com", 22);
	e->protocol = POL_PROTO_TCP;
	e->tls = POL_TLS_SKIP;
	e->tls_set = true;

	e = tb_endpoint(p, "raw", "git.example.com", 9418);
	e->tls = POL_TLS_AUTO;
	e->tls_set = true;

	struct pol_middleware *m = tb_middleware(p, "redact", "**.example.com", 5);
	m->on_error = tb_dup("fail_open");
	m->config_json = tb_dup("{\"mode\":\"strict\",\"n\":2}");
	ck_assert_int_eq(pol_strv_push(&m->exclude, "api.github.com"), 0);
	ck_assert_int_eq(pol_strv_push(&m->include, "api.github.com"), 0);
	p->source = tb_dup("test");
}

#endif
