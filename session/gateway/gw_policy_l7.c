/* The gateway's layer-7, credential and middleware policy fields into struct pol_policy.
 *
 * Strings are copied as sent ("" = absent, the proto3 default); meaning is checked once, by
 * pol_validate_full, after the whole policy is converted. Every failure names the protobuf
 * field path. Nothing here enforces anything.
 */
#include "gw_policy.h"

#include <stdlib.h>
#include <string.h>

#define S(s) ((s) ? (s) : "")

static int oom(struct sv_err *err)
{
	return sv_err_set(err, ENOMEM, "out of memory");
}

/* "" (absent) -> NULL; anything else copied. */
static int opt_str(char **dst, const char *s, struct sv_err *err)
{
	*dst = NULL;
	if (!s || !*s)
		return 0;
	return (*dst = strdup(s)) ? 0 : oom(err);
}

static int strv_in(struct pol_strv *dst, char **v, size_t n, struct sv_err *err)
{
	for (size_t i = 0; i < n; i++)
		if (pol_strv_push(dst, S(v[i])) < 0)
			return oom(err);
	return 0;
}

/* OpenShell's matcher_proto_to_def: a non-empty `any` wins, else the single `glob`. */
static int matcher_in(const char *key, const Openshell__Sandbox__V1__L7QueryMatcher *m,
		      struct pol_matcher *out, struct sv_err *err)
{
	if (key && !(out->key = strdup(key)))
		return oom(err);
	if (m && m->n_any) {
		out->any = true;
		return strv_in(&out->globs, m->any, m->n_any, err);
	}
	return pol_strv_push(&out->globs, m ? S(m->glob) : "") < 0 ? oom(err) : 0;
}

/* L7Allow and L7DenyRule are the same shape with distinct generated types: one body for both. */
#define DEFINE_RULE_IN(fn, T)                                                                      \
	static int fn(const char *at, const T *a, struct pol_l7_rule *out, struct sv_err *err)     \
	{                                                                                          \
		if (!a)                                                                            \
			return 0;                                                                  \
		if (a->n_query > POL_L7_ITEMS_MAX || a->n_params > POL_L7_ITEMS_MAX ||             \
		    a->n_fields > POL_L7_ITEMS_MAX)                                                \
			return sv_err_set(err, E2BIG, "%s: too many matchers or fields (max %d)",  \
					  at, POL_L7_ITEMS_MAX);                                   \
		if (opt_str(&out->method, a->method, err) < 0 ||                                   \
		    opt_str(&out->path, a->path, err) < 0 ||                                       \
		    opt_str(&out->command, a->command, err) < 0 ||                                 \
		    opt_str(&out->operation_type, a->operation_type, err) < 0 ||                   \
		    opt_str(&out->operation_name, a->operation_name, err) < 0 ||                   \
		    strv_in(&out->fields, a->fields, a->n_fields, err) < 0)                        \
			return -ENOMEM;                                                            \
		if (a->n_query && !(out->query = calloc(a->n_query, sizeof(*out->query))))         \
			return oom(err);                                                           \
		out->n_query = a->n_query;                                                         \
		for (size_t i = 0; i < a->n_query; i++)                                            \
			if (matcher_in(a->query[i] ? S(a->query[i]->key) : "",                     \
				       a->query[i] ? a->query[i]->value : NULL, &out->query[i],    \
				       err) < 0)                                                   \
				return -ENOMEM;                                                    \
		if (a->n_params && !(out->params = calloc(a->n_params, sizeof(*out->params))))     \
			return oom(err);                                                           \
		out->n_params = a->n_params;                                                       \
		for (size_t i = 0; i < a->n_params; i++)                                           \
			if (matcher_in(a->params[i] ? S(a->params[i]->key) : "",                   \
				       a->params[i] ? a->params[i]->value : NULL, &out->params[i], \
				       err) < 0)                                                   \
				return -ENOMEM;                                                    \
		return 0;                                                                          \
	}

DEFINE_RULE_IN(allow_in, Openshell__Sandbox__V1__L7Allow)
DEFINE_RULE_IN(deny_in, Openshell__Sandbox__V1__L7DenyRule)

static int rules_in(const char *at, const Openshell__Sandbox__V1__NetworkEndpoint *e,
		    struct pol_endpoint *out, struct sv_err *err)
{
	char rat[512];
	if (e->n_rules > POL_L7_ITEMS_MAX || e->n_deny_rules > POL_L7_ITEMS_MAX)
		return sv_err_set(err, E2BIG, "%s: too many rules or deny_rules (max %d each)", at,
				  POL_L7_ITEMS_MAX);
	if (e->n_rules && !(out->rules = calloc(e->n_rules, sizeof(*out->rules))))
		return oom(err);
	out->n_rules = e->n_rules;
	out->rules_set = e->n_rules > 0;
	for (size_t i = 0; i < e->n_rules; i++) {
		sv_fmt(rat, sizeof(rat), "%s.rules[%zu].allow", at, i);
		int r = allow_in(rat, e->rules[i] ? e->rules[i]->allow : NULL, &out->rules[i], err);
		if (r < 0)
			return r;
	}
	if (e->n_deny_rules && !(out->deny_rules = calloc(e->n_deny_rules, sizeof(*out->rules))))
		return oom(err);
	out->n_deny_rules = e->n_deny_rules;
	out->deny_rules_set = e->n_deny_rules > 0;
	for (size_t i = 0; i < e->n_deny_rules; i++) {
		sv_fmt(rat, sizeof(rat), "%s.deny_rules[%zu]", at, i);
		int r = deny_in(rat, e->deny_rules[i], &out->deny_rules[i], err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int gql_ops_in(const char *at, const Openshell__Sandbox__V1__NetworkEndpoint *e,
		      struct pol_endpoint *out, struct sv_err *err)
{
	size_t n = e->n_graphql_persisted_queries;
	if (n > POL_L7_ITEMS_MAX)
		return sv_err_set(err, E2BIG, "%s.graphql_persisted_queries: too many (max %d)", at,
				  POL_L7_ITEMS_MAX);
	if (n && !(out->gql_ops = calloc(n, sizeof(*out->gql_ops))))
		return oom(err);
	out->n_gql_ops = n;
	for (size_t i = 0; i < n; i++) {
		const Openshell__Sandbox__V1__NetworkEndpoint__GraphqlPersistedQueriesEntry *q =
		    e->graphql_persisted_queries[i];
		const Openshell__Sandbox__V1__GraphqlOperation *op = q ? q->value : NULL;
		struct pol_gql_op *o = &out->gql_ops[i];
		if (!(o->id = strdup(q ? S(q->key) : "")) ||
		    opt_str(&o->operation_type, op ? op->operation_type : NULL, err) < 0 ||
		    opt_str(&o->operation_name, op ? op->operation_name : NULL, err) < 0 ||
		    (op && strv_in(&o->fields, op->fields, op->n_fields, err) < 0))
			return oom(err);
	}
	return 0;
}

static bool gql_type_ok(const char *t)
{
	return t && (strcmp(t, "query") == 0 || strcmp(t, "mutation") == 0 ||
		     strcmp(t, "subscription") == 0);
}

static enum pol_tristate tristate(bool set, bool v)
{
	return !set ? POL_UNSET : v ? POL_TRUE : POL_FALSE;
}

int gw_endpoint_l7_in(const char *at, const Openshell__Sandbox__V1__NetworkEndpoint *e,
		      struct pol_endpoint *out, struct sv_err *err)
{
	const char *protocol = S(e->protocol), *tls = S(e->tls), *enf = S(e->enforcement);
	int r;
	if (*protocol && (r = pol_protocol_parse(protocol, &out->protocol, err)) < 0) {
		sv_err_prefix(err, "%s.protocol", at);
		return r;
	}
	/* Unlike OpenShell (any other string is silently auto / audit), a value we do not know
	 * is refused: a typo must not change what the policy means. */
	if (*tls && strcmp(tls, "skip") != 0 && strcmp(tls, "terminate") != 0 &&
	    strcmp(tls, "passthrough") != 0 && strcmp(tls, "auto") != 0)
		return sv_err_set(err, EINVAL,
				  "%s.tls: expected skip, passthrough or terminate (got '%.64s')",
				  at, tls);
	out->tls_set = *tls != '\0';
	out->tls = pol_tls_parse(tls);
	if (*enf && strcmp(enf, "enforce") != 0 && strcmp(enf, "audit") != 0)
		return sv_err_set(err, EINVAL,
				  "%s.enforcement: expected enforce or audit (got '%.64s')", at,
				  enf);
	out->enforcement = strcmp(enf, "enforce") == 0 ? POL_ENFORCE_ENFORCE : POL_ENFORCE_AUDIT;
	out->access = pol_access_parse(S(e->access));
	if (out->access == POL_ACCESS_UNKNOWN && !(out->access_raw = strdup(e->access)))
		return oom(err);
	if ((r = rules_in(at, e, out, err)) < 0 || (r = gql_ops_in(at, e, out, err)) < 0)
		return r;
	if (opt_str(&out->path, e->path, err) < 0 ||
	    opt_str(&out->persisted_queries, e->persisted_queries, err) < 0 ||
	    opt_str(&out->credential_signing, e->credential_signing, err) < 0 ||
	    opt_str(&out->signing_service, e->signing_service, err) < 0 ||
	    opt_str(&out->signing_region, e->signing_region, err) < 0)
		return -ENOMEM;
	if (e->credential_binding &&
	    !(out->credential_binding = strdup(S(e->credential_binding->provider))))
		return oom(err);
	out->allow_encoded_slash = e->allow_encoded_slash;
	out->websocket_credential_rewrite = e->websocket_credential_rewrite;
	out->request_body_credential_rewrite = e->request_body_credential_rewrite;
	out->allow_uninspected_credentials = e->allow_uninspected_credentials;
	out->provider_credentialed = e->provider_credentialed;
	out->advisor_proposed = e->advisor_proposed;
	out->graphql_max_body_bytes = e->graphql_max_body_bytes;
	out->json_rpc_max_body_bytes = e->json_rpc_max_body_bytes;
	/* OpenShell's gateway-side validator (openshell-policy lib.rs) is stricter than the
	 * runtime one for GraphQL: no "*" operation type. */
	if (out->protocol == POL_PROTO_GRAPHQL) {
		for (size_t i = 0; i < out->n_rules; i++)
			if (!gql_type_ok(out->rules[i].operation_type))
				return sv_err_set(
				    err, EINVAL,
				    "%s.rules[%zu].allow.operation_type must be query, "
				    "mutation, or subscription",
				    at, i);
		for (size_t i = 0; i < out->n_deny_rules; i++)
			if (!gql_type_ok(out->deny_rules[i].operation_type))
				return sv_err_set(
				    err, EINVAL,
				    "%s.deny_rules[%zu].operation_type must be query, "
				    "mutation, or subscription",
				    at, i);
		for (size_t i = 0; i < out->n_gql_ops; i++)
			if (!gql_type_ok(out->gql_ops[i].operation_type))
				return sv_err_set(
				    err, EINVAL,
				    "%s.graphql_persisted_queries[%.64s].operation_type "
				    "must be query, mutation, or subscription",
				    at, out->gql_ops[i].id);
	}
	if (e->mcp) {
		out->mcp_strict_tool_names = tristate(
		    e->mcp->_strict_tool_names_case ==
			OPENSHELL__SANDBOX__V1__MCP_OPTIONS___STRICT_TOOL_NAMES_STRICT_TOOL_NAMES,
		    e->mcp->strict_tool_names);
		out->mcp_allow_all_known_mcp_methods = tristate(
		    e->mcp->_allow_all_known_mcp_methods_case ==
			OPENSHELL__SANDBOX__V1__MCP_OPTIONS___ALLOW_ALL_KNOWN_MCP_METHODS_ALLOW_ALL_KNOWN_MCP_METHODS,
		    e->mcp->allow_all_known_mcp_methods);
	}
	return 0;
}

int gw_middlewares_in(const Openshell__Sandbox__V1__SandboxPolicy *msg, struct pol_policy *p,
		      struct sv_err *err)
{
	size_t n = msg->n_network_middlewares;
	if (n == 0)
		return 0;
	if (n > POL_MIDDLEWARES_MAX)
		return sv_err_set(err, E2BIG,
				  "network_middlewares: too many middleware configs (%zu > %d)", n,
				  POL_MIDDLEWARES_MAX);
	if (!(p->middlewares = calloc(n, sizeof(*p->middlewares))))
		return oom(err);
	p->n_middlewares = n;
	for (size_t i = 0; i < n; i++) {
		const Openshell__Sandbox__V1__SandboxPolicy__NetworkMiddlewaresEntry *ent =
		    msg->network_middlewares[i];
		const Openshell__Sandbox__V1__NetworkMiddlewareConfig *v = ent ? ent->value : NULL;
		struct pol_middleware *m = &p->middlewares[i];
		const char *key = ent ? S(ent->key) : "";
		if (!(m->name = strdup(key)))
			return oom(err);
		if (!v)
			continue;
		m->order = v->order;
		if (opt_str(&m->middleware, v->middleware, err) < 0 ||
		    opt_str(&m->on_error, v->on_error, err) < 0)
			return -ENOMEM;
		if (v->endpoints && (v->endpoints->n_include + v->endpoints->n_exclude >
				     POL_MIDDLEWARE_PATTERNS_MAX))
			return sv_err_set(
			    err, E2BIG,
			    "network_middlewares[\"%.64s\"].endpoints: too many selector "
			    "patterns (max %d)",
			    key, POL_MIDDLEWARE_PATTERNS_MAX);
		if (v->endpoints &&
		    (strv_in(&m->include, v->endpoints->include, v->endpoints->n_include, err) <
			 0 ||
		     strv_in(&m->exclude, v->endpoints->exclude, v->endpoints->n_exclude, err) < 0))
			return -ENOMEM;
		int r;
		if (v->config && (r = gw_struct_to_json(v->config, &m->config_json, err)) < 0) {
			sv_err_prefix(err, "network_middlewares[\"%.64s\"].config", key);
			return r;
		}
	}
	return 0;
}
