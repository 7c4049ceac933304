/* Layer-7, credential and middleware validation of the policy model (openshell-l7-contract.md
 * §5), with OpenShell's messages behind our field paths, and the spellings every loader shares.
 *
 * Errors stop at the first one (struct sv_err holds one message); warnings all go to the
 * caller's pol_warn_fn. Nothing here enforces, allocates or touches the system.
 */
#include "policy_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>


#define LOC_MAX 512 /* bytes of a field path */

/* --- the checker --------------------------------------------------------------------------- */

struct chk {
	pol_warn_fn warn;
	void *ctx;
	struct sv_err *err;
	int rc; /* first error, -EINVAL */
};

__attribute__((format(printf, 3, 4))) static void bad(struct chk *c, const char *loc,
						      const char *fmt, ...)
{
	if (c->rc)
		return;
	char msg[SV_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	sv_vfmt(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->rc = sv_err_set(c->err, EINVAL, "%s: %s", loc, msg);
}

__attribute__((format(printf, 3, 4))) static void warn(struct chk *c, const char *loc,
						       const char *fmt, ...)
{
	if (!c->warn || c->rc)
		return;
	char msg[SV_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	sv_vfmt(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->warn(c->ctx, loc, msg);
}

static bool empty(const char *s)
{
	return !s || !*s;
}

static const char *S(const char *s)
{
	return s ? s : "";
}

/* OpenShell's check_glob_syntax: unbalanced brackets or braces are likely typos. */
static void glob_check(struct chk *c, const char *loc, const char *g)
{
	int depth = 0;
	for (const char *p = g; *p; p++) {
		if (*p == ']' && depth == 0) {
			warn(c, loc, "glob pattern '%s' has unmatched ']'", g);
			return;
		}
		depth += *p == '[' ? 1 : *p == ']' ? -1 : 0;
	}
	if (depth > 0) {
		warn(c, loc, "glob pattern '%s' has unclosed '['", g);
		return;
	}
	for (const char *p = g; *p; p++) {
		if (*p == '}' && depth == 0) {
			warn(c, loc, "glob pattern '%s' has unmatched '}'", g);
			return;
		}
		depth += *p == '{' ? 1 : *p == '}' ? -1 : 0;
	}
	if (depth > 0)
		warn(c, loc, "glob pattern '%s' has unclosed '{'", g);
}

static bool glob_has_wildcard(const char *g)
{
	return g && strpbrk(g, "*?[]{}") != NULL;
}

/* Rust glob::Pattern semantics reduced to '*' (any run, '/' included) and '?' (one byte):
 * enough to ask whether a method matcher covers "tools/call". */
static bool simple_glob(const char *p, const char *t)
{
	const char *star = NULL, *mark = NULL;
	while (*t) {
		if (*p == '*') {
			star = p++;
			mark = t;
		} else if (*p == '?' || *p == *t) {
			p++;
			t++;
		} else if (star) {
			p = star + 1;
			t = ++mark;
		} else {
			return false;
		}
	}
	while (*p == '*')
		p++;
	return !*p;
}

static bool method_covers_tools_call(const char *m)
{
	return m && (strcmp(m, "tools/call") == 0 || strcmp(m, "*") == 0 ||
		     simple_glob(m, "tools/call"));
}

static bool matcher_has_wildcard(const struct pol_matcher *m)
{
	for (size_t i = 0; i < m->globs.n; i++)
		if (glob_has_wildcard(m->globs.v[i]))
			return true;
	return false;
}

static void matcher_check(struct chk *c, const char *loc, const struct pol_matcher *m)
{
	char at[LOC_MAX];
	sv_fmt(at, sizeof(at), "%s%s", loc, m->any ? ".any" : "");
	if (m->globs.n == 0) {
		bad(c, at, m->any ? "list must not be empty" : "expected glob string");
		return;
	}
	if (!m->any && m->globs.n != 1) {
		bad(c, loc, "a plain matcher holds one glob; use `any` for several");
		return;
	}
	if (m->globs.n > POL_L7_ITEMS_MAX) {
		bad(c, at, "too many globs (max %d)", POL_L7_ITEMS_MAX);
		return;
	}
	for (size_t i = 0; i < m->globs.n; i++)
		glob_check(c, at, m->globs.v[i]);
}

/* A query or params map: "<loc>.<key>" per entry; keys non-empty and unique. */
static void matcher_map_check(struct chk *c, const char *loc, const struct pol_matcher *v, size_t n)
{
	char at[LOC_MAX];
	if (n > POL_L7_ITEMS_MAX) {
		bad(c, loc, "too many matchers (max %d)", POL_L7_ITEMS_MAX);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (empty(v[i].key)) {
			bad(c, loc, "matcher key must not be empty");
			return;
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(v[j].key, v[i].key) == 0) {
				bad(c, loc, "duplicate key '%s'", v[i].key);
				return;
			}
		sv_fmt(at, sizeof(at), "%s.%s", loc, v[i].key);
		matcher_check(c, at, &v[i]);
	}
}

static const struct pol_matcher *param_named(const struct pol_l7_rule *r, const char *key)
{
	for (size_t i = 0; i < r->n_params; i++)
		if (r->params[i].key && strcmp(r->params[i].key, key) == 0)
			return &r->params[i];
	return NULL;
}

static bool rule_has_tool_selector(const struct pol_l7_rule *r)
{
	return r->tool || param_named(r, "name");
}

static bool rule_has_graphql(const struct pol_l7_rule *r)
{
	return !empty(r->operation_type) || !empty(r->operation_name) || r->fields.n > 0;
}

static bool rule_has_transport(const struct pol_l7_rule *r)
{
	return r->method || r->path || r->n_query > 0;
}

static bool rule_has_path_or_query(const struct pol_l7_rule *r)
{
	return !empty(r->path) || r->n_query > 0;
}

/* A `rules` entry that allows nothing: OpenShell's "no allow clause" (query alone counts as
 * nothing, as in both of its validators). */
static bool rule_is_empty(const struct pol_l7_rule *r)
{
	return empty(r->method) && empty(r->path) && empty(r->command) &&
	       empty(r->operation_type) && empty(r->operation_name) && r->fields.n == 0 &&
	       r->n_params == 0 && !r->tool;
}

static const char *const rest_methods = "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, *";
static const char *const ws_methods = "GET, WEBSOCKET_TEXT, *";

static bool method_known(enum pol_protocol proto, const char *m)
{
	static const char *const rest[] = {"GET",    "HEAD",  "POST",	 "PUT",
					   "DELETE", "PATCH", "OPTIONS", "*"};
	static const char *const ws[] = {"GET", "WEBSOCKET_TEXT", "*"};
	const char *const *v = proto == POL_PROTO_WEBSOCKET ? ws : rest;
	size_t n = proto == POL_PROTO_WEBSOCKET ? SV_ARRAY_SIZE(ws) : SV_ARRAY_SIZE(rest);
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(m, v[i]) == 0)
			return true;
	return false;
}

static void method_warn(struct chk *c, const char *loc, enum pol_protocol proto, const char *m)
{
	if ((proto == POL_PROTO_REST || proto == POL_PROTO_WEBSOCKET) && !empty(m) &&
	    !method_known(proto, m))
		warn(c, loc, "Unknown HTTP/WebSocket method '%s'. Standard methods: %s.", m,
		     proto == POL_PROTO_WEBSOCKET ? ws_methods : rest_methods);
}

static void graphql_rule_check(struct chk *c, const char *loc, const char *op_type,
			       const char *op_name, const struct pol_strv *fields)
{
	char at[LOC_MAX];
	if (empty(op_type)) {
		sv_fmt(at, sizeof(at), "%s.operation_type", loc);
		{
			bad(c, at, "required for GraphQL L7 rules");
			return;
		}
	}
	if (strcasecmp(op_type, "query") != 0 && strcasecmp(op_type, "mutation") != 0 &&
	    strcasecmp(op_type, "subscription") != 0 && strcmp(op_type, "*") != 0) {
		sv_fmt(at, sizeof(at), "%s.operation_type", loc);
		{
			bad(c, at, "expected query, mutation, subscription, or *, got '%s'",
			    op_type);
			return;
		}
	}
	if (!empty(op_name)) {
		sv_fmt(at, sizeof(at), "%s.operation_name", loc);
		glob_check(c, at, op_name);
	}
	sv_fmt(at, sizeof(at), "%s.fields", loc);
	if (fields->n > POL_L7_ITEMS_MAX) {
		bad(c, at, "too many fields (max %d)", POL_L7_ITEMS_MAX);
		return;
	}
	for (size_t i = 0; i < fields->n; i++) {
		if (!*fields->v[i]) {
			bad(c, at, "field glob must not be empty");
			return;
		}
		glob_check(c, at, fields->v[i]);
	}
}

struct ep_ctx {
	const struct pol_endpoint *e;
	const char *loc;
	bool mcp_strict;
	bool mcp_allow_all;
	bool mcp_tool_allow_selectors;
	bool ws_graphql_policy;
};

static void mcp_tool_matcher(struct chk *c, const struct ep_ctx *x, const char *loc,
			     const struct pol_matcher *m)
{
	matcher_check(c, loc, m);
	if (!x->mcp_strict && matcher_has_wildcard(m))
		bad(c, loc,
		    "wildcard tool-name matchers require mcp.strict_tool_names to remain "
		    "enabled");
}

/* OpenShell's validate_jsonrpc_rule_fields, for allow and deny rules alike. */
static void jsonrpc_rule_check(struct chk *c, const struct ep_ctx *x, const char *rl,
			       const struct pol_l7_rule *r)
{
	char at[LOC_MAX];
	const char *m = S(r->method);
	enum pol_protocol proto = x->e->protocol;
	if (proto == POL_PROTO_JSONRPC) {
		sv_fmt(at, sizeof(at), "%s.method", rl);
		if (!*m)
			bad(c, at, "required for json-rpc L7 rules");
		else if (strcmp(m, "*") != 0 && glob_has_wildcard(m))
			bad(c, at,
			    "generic JSON-RPC method rules do not support glob or wildcard "
			    "matchers; use \"*\" to allow all methods or an exact method name");
		if (r->n_params)
			bad(c, rl, "JSON-RPC rules do not support params matchers yet");
		sv_fmt(at, sizeof(at), "%s.tool", rl);
		if (r->tool)
			bad(c, at, "MCP tool matching is only valid for protocol mcp");
		if (rule_has_path_or_query(r))
			bad(c, rl, "json-rpc L7 rules must use method, not path/query");
		return;
	}
	if (proto == POL_PROTO_MCP) {
		sv_fmt(at, sizeof(at), "%s.method", rl);
		if (*m) {
			glob_check(c, at, m);
			if (glob_has_wildcard(m) && strncmp(m, "tools/", 6) != 0)
				bad(c, at,
				    "MCP method globs are only valid for the tools/ method "
				    "family; omit method to use the endpoint method profile");
		}
		if (!*m && !x->mcp_allow_all)
			bad(c, at, "required when mcp.allow_all_known_mcp_methods is false");
		else if (rule_has_tool_selector(r) && *m && strcmp(m, "tools/call") != 0)
			bad(c, at,
			    "must be tools/call when an MCP rule uses tool or params.name, got "
			    "'%s'",
			    m);
		if (r->tool) {
			sv_fmt(at, sizeof(at), "%s.tool", rl);
			mcp_tool_matcher(c, x, at, r->tool);
		}
		if (r->tool && param_named(r, "name"))
			bad(c, rl, "MCP rules must use either tool or params.name, not both");
		for (size_t i = 0; i < r->n_params; i++) {
			sv_fmt(at, sizeof(at), "%s.params.%s", rl, S(r->params[i].key));
			if (strcmp(S(r->params[i].key), "name") != 0)
				bad(c, at, "MCP tool argument matching is not supported yet");
			else
				mcp_tool_matcher(c, x, at, &r->params[i]);
		}
		if (rule_has_path_or_query(r))
			bad(c, rl, "mcp L7 rules must use method/tool, not path/query");
		return;
	}
	sv_fmt(at, sizeof(at), "%s.tool", rl);
	if (r->tool)
		bad(c, at, "MCP tool matching is only valid for protocol mcp");
	sv_fmt(at, sizeof(at), "%s.params", rl);
	if (r->n_params)
		bad(c, at, "params matching is only valid for protocol mcp");
}

static void graphql_fields_check(struct chk *c, const struct ep_ctx *x, const char *rl,
				 const struct pol_l7_rule *r, bool deny)
{
	enum pol_protocol proto = x->e->protocol;
	bool gql = rule_has_graphql(r);
	if (proto == POL_PROTO_WEBSOCKET && gql && rule_has_transport(r))
		bad(c, rl,
		    "WebSocket GraphQL %s rules must not combine method/path/query with "
		    "operation_type/operation_name/fields",
		    deny ? "deny" : "allow");
	if (proto == POL_PROTO_GRAPHQL || (proto == POL_PROTO_WEBSOCKET && gql))
		graphql_rule_check(c, rl, r->operation_type, r->operation_name, &r->fields);
	else if (gql)
		warn(c, rl,
		     "GraphQL rule fields are ignored unless protocol is graphql or websocket");
}

static void allow_rule_check(struct chk *c, const struct ep_ctx *x, size_t i)
{
	const struct pol_l7_rule *r = &x->e->rules[i];
	char rl[LOC_MAX], at[LOC_MAX];
	sv_fmt(rl, sizeof(rl), "%s.rules[%zu].allow", x->loc, i);
	method_warn(c, x->loc, x->e->protocol, r->method);
	sv_fmt(at, sizeof(at), "%s.query", rl);
	matcher_map_check(c, at, r->query, r->n_query);
	if (!empty(r->path)) {
		sv_fmt(at, sizeof(at), "%s.path", rl);
		glob_check(c, at, r->path);
	}
	if (x->mcp_tool_allow_selectors && !rule_has_tool_selector(r) &&
	    (method_covers_tools_call(r->method) || (empty(r->method) && x->mcp_allow_all)))
		bad(c, rl,
		    "method matcher allows every tool call and conflicts with MCP tool allow "
		    "rules; "
		    "add tool or params.name to narrow tools/call, or remove the tool allow rules");
	jsonrpc_rule_check(c, x, rl, r);
	if (x->ws_graphql_policy && r->method && strcasecmp(r->method, "WEBSOCKET_TEXT") == 0)
		bad(c, rl,
		    "WebSocket endpoints with GraphQL operation policy must use "
		    "operation_type/operation_name/fields rules for client messages instead of "
		    "WEBSOCKET_TEXT");
	graphql_fields_check(c, x, rl, r, false);
}

static void deny_rule_check(struct chk *c, const struct ep_ctx *x, size_t i)
{
	const struct pol_l7_rule *r = &x->e->deny_rules[i];
	char dl[LOC_MAX], at[LOC_MAX];
	sv_fmt(dl, sizeof(dl), "%s.deny_rules[%zu]", x->loc, i);
	if (x->mcp_tool_allow_selectors && method_covers_tools_call(r->method) &&
	    !rule_has_tool_selector(r))
		bad(c, dl,
		    "method matcher denies every tool call and conflicts with MCP tool allow "
		    "rules; "
		    "add tool or params.name to deny specific tools, or remove the tool allow "
		    "rules");
	method_warn(c, dl, x->e->protocol, r->method);
	if (r->path) {
		sv_fmt(at, sizeof(at), "%s.path", dl);
		glob_check(c, at, r->path);
	}
	sv_fmt(at, sizeof(at), "%s.query", dl);
	matcher_map_check(c, at, r->query, r->n_query);
	jsonrpc_rule_check(c, x, dl, r);
	if (!empty(r->command) && x->e->protocol == POL_PROTO_REST)
		warn(c, dl, "command is for SQL protocol, not REST");
	graphql_fields_check(c, x, dl, r, true);
}

/* OpenShell's validate_l7_endpoint_semantics (l7_validate.rs), every message. */
static void semantics_check(struct chk *c, const char *loc, const struct pol_endpoint *e)
{
	enum pol_protocol proto = e->protocol;
	const char *pname = pol_protocol_name(proto);
	bool l7 = pol_protocol_is_l7(proto), mcp = proto == POL_PROTO_MCP;
	bool jsonrpc = proto == POL_PROTO_JSONRPC, access = e->access != POL_ACCESS_NONE;
	bool has_rules = e->n_rules > 0, has_deny = e->n_deny_rules > 0;
	bool allow_all = e->mcp_allow_all_known_mcp_methods == POL_TRUE;
	bool deny_all = has_rules;
	for (size_t i = 0; i < e->n_rules; i++)
		deny_all = deny_all && rule_is_empty(&e->rules[i]);

	if (proto == POL_PROTO_TCP && (access || has_rules || has_deny))
		bad(c, loc,
		    "protocol tcp does not support access, rules, or deny_rules; remove those L7 "
		    "fields");
	if (has_rules && access)
		bad(c, loc, "rules and access are mutually exclusive");
	if ((jsonrpc || mcp) && access) {
		if (mcp)
			bad(c, loc,
			    "protocol %s does not support access presets; use rules/deny_rules or "
			    "set "
			    "mcp.allow_all_known_mcp_methods: true for an allow-all MCP policy",
			    pname);
		else
			bad(c, loc,
			    "protocol %s does not support access presets; use explicit rules with "
			    "allow.method such as \"*\"",
			    pname);
	}
	if (jsonrpc && !has_rules && !access)
		bad(c, loc, "protocol %s requires explicit rules with allow.method", pname);
	if (mcp && !has_rules && !access && !allow_all)
		bad(c, loc,
		    "protocol mcp requires rules when mcp.allow_all_known_mcp_methods is false");
	if (deny_all && !(mcp && allow_all))
		bad(c, loc,
		    "rules would deny all traffic (no allow clause found). Use `access: full` or "
		    "add "
		    "allow clauses to rules.");
	if (has_deny && !l7)
		bad(c, loc, "deny_rules require protocol (L7 inspection must be enabled)");
	if (has_deny && !mcp && !has_rules && !access)
		bad(c, loc, "deny_rules require rules or access to define the base allow set");
	if (l7 && !mcp && !jsonrpc && !has_rules && !access)
		bad(c, loc, "protocol requires rules or access to define allowed traffic");
}

/* validate_explicit_tcp_additional_fields: tcp is plain L4, so L7-only fields are errors. */
static void tcp_fields_check(struct chk *c, const char *loc, const struct pol_endpoint *e)
{
	if (e->protocol != POL_PROTO_TCP)
		return;
	struct {
		const char *name;
		bool set;
	} f[] = {
	    {"enforcement", e->enforcement != POL_ENFORCE_AUDIT},
	    {"path", !empty(e->path)},
	    {"allow_encoded_slash", e->allow_encoded_slash},
	    {"websocket_credential_rewrite", e->websocket_credential_rewrite},
	    {"request_body_credential_rewrite", e->request_body_credential_rewrite},
	    {"persisted_queries", !empty(e->persisted_queries)},
	    {"graphql_persisted_queries", e->n_gql_ops > 0},
	    {"graphql_max_body_bytes", e->graphql_max_body_bytes > 0},
	    {"json_rpc_max_body_bytes", e->json_rpc_max_body_bytes > 0},
	    {"mcp.strict_tool_names", e->mcp_strict_tool_names != POL_UNSET},
	    {"mcp.allow_all_known_mcp_methods", e->mcp_allow_all_known_mcp_methods != POL_UNSET},
	    {"credential_signing", !empty(e->credential_signing)},
	    {"signing_service", !empty(e->signing_service)},
	    {"signing_region", !empty(e->signing_region)},
	    {"credential_binding", e->credential_binding != NULL},
	};
	char list[LOC_MAX];
	size_t o = 0;
	list[0] = '\0';
	for (size_t i = 0; i < SV_ARRAY_SIZE(f); i++)
		if (f[i].set)
			o += sv_fmt(list + o, sizeof(list) - o, "%s%s", o ? ", " : "", f[i].name);
	if (o)
		bad(c, loc, "protocol tcp does not support L7-only fields: %s; remove those fields",
		    list);
}

static bool port_listed(const struct pol_endpoint *e, uint16_t port)
{
	for (size_t i = 0; i < e->n_ports; i++)
		if (e->ports[i] == port)
			return true;
	return false;
}

static void credentials_check(struct chk *c, const char *loc, const struct pol_endpoint *e)
{
	const char *cs = e->credential_signing;
	if (cs && strcmp(cs, "sigv4") != 0 && strcmp(cs, "sigv4:body") != 0 &&
	    strcmp(cs, "sigv4:no_body") != 0)
		bad(c, loc,
		    "unknown credential_signing '%s' (expected sigv4, sigv4:body or "
		    "sigv4:no_body)",
		    cs);
	if (!empty(cs) && empty(e->signing_service))
		bad(c, loc, "credential_signing is set but signing_service is empty");
	if (!empty(cs) && e->request_body_credential_rewrite)
		bad(c, loc,
		    "credential_signing and request_body_credential_rewrite are mutually "
		    "exclusive");
	if (e->credential_binding && !*e->credential_binding)
		bad(c, loc, "credential_binding.provider must not be empty");
	if (e->websocket_credential_rewrite && e->protocol != POL_PROTO_REST &&
	    e->protocol != POL_PROTO_WEBSOCKET)
		warn(
		    c, loc,
		    "websocket_credential_rewrite is ignored unless protocol is rest or websocket");
	if (e->request_body_credential_rewrite && e->protocol != POL_PROTO_REST)
		warn(c, loc, "request_body_credential_rewrite is ignored unless protocol is rest");
}

static void graphql_endpoint_check(struct chk *c, const char *loc, const struct pol_endpoint *e)
{
	char at[LOC_MAX];
	const char *pq = e->persisted_queries;
	if (pq && strcmp(pq, "deny") != 0 && strcmp(pq, "allow_registered") != 0)
		bad(c, loc, "persisted_queries must be 'deny' or 'allow_registered', got '%s'", pq);
	if (e->protocol != POL_PROTO_GRAPHQL && e->protocol != POL_PROTO_WEBSOCKET &&
	    (pq || e->n_gql_ops || e->graphql_max_body_bytes))
		warn(c, loc,
		     "GraphQL-specific endpoint fields are ignored unless protocol is graphql or "
		     "websocket");
	if (e->protocol != POL_PROTO_JSONRPC && e->protocol != POL_PROTO_MCP &&
	    e->json_rpc_max_body_bytes)
		warn(c, loc,
		     "JSON-RPC-specific endpoint fields are ignored unless protocol is json-rpc or "
		     "mcp");
	if (e->n_gql_ops > POL_L7_ITEMS_MAX)
		bad(c, loc, "too many graphql_persisted_queries (max %d)", POL_L7_ITEMS_MAX);
	for (size_t i = 0; i < e->n_gql_ops && !c->rc; i++) {
		const struct pol_gql_op *o = &e->gql_ops[i];
		sv_fmt(at, sizeof(at), "%s.graphql_persisted_queries[%s]", loc, S(o->id));
		if (empty(o->id))
			bad(c, at, "id must not be empty");
		for (size_t j = 0; j < i; j++)
			if (strcmp(S(e->gql_ops[j].id), S(o->id)) == 0)
				bad(c, at, "duplicate id");
		graphql_rule_check(c, at, o->operation_type, o->operation_name, &o->fields);
	}
}

static void endpoint_check(struct chk *c, const char *loc, const struct pol_endpoint *e)
{
	enum pol_protocol proto = e->protocol;
	if (proto > POL_PROTO_MCP || e->tls > POL_TLS_PASSTHROUGH ||
	    e->enforcement > POL_ENFORCE_ENFORCE || e->access > POL_ACCESS_UNKNOWN ||
	    e->mcp_strict_tool_names > POL_TRUE || e->mcp_allow_all_known_mcp_methods > POL_TRUE) {
		bad(c, loc, "invalid enumeration value");
		return;
	}
	if ((e->access == POL_ACCESS_UNKNOWN) != (e->access_raw != NULL)) {
		bad(c, loc, "access: an unknown preset keeps its spelling, a known one none");
		return;
	}
	if (e->n_rules > POL_L7_ITEMS_MAX || e->n_deny_rules > POL_L7_ITEMS_MAX) {
		bad(c, loc, "too many rules or deny_rules (max %d each)", POL_L7_ITEMS_MAX);
		return;
	}
	if ((e->n_rules && !e->rules_set) || (e->n_deny_rules && !e->deny_rules_set)) {
		bad(c, loc, "rules present but not marked set");
		return;
	}
	if (proto == POL_PROTO_MCP && e->kind == POL_HOST_NONE)
		bad(c, loc,
		    "protocol mcp requires host; protocol alone is not a wildcard endpoint");
	if (e->path) {
		if (e->path[0] != '/' && strcmp(e->path, "**") != 0)
			bad(c, loc, "endpoint path must start with '/' or be '**', got '%s'",
			    e->path);
		char at[LOC_MAX];
		sv_fmt(at, sizeof(at), "%s.path", loc);
		glob_check(c, at, e->path);
	}
	if (e->rules_set && e->n_rules == 0)
		bad(c, loc,
		    "rules list cannot be empty (would deny all traffic). Use `access: full` or "
		    "remove rules.");
	if (e->deny_rules_set && e->n_deny_rules == 0)
		bad(c, loc,
		    "deny_rules list cannot be empty (would have no effect). Remove it if no "
		    "denials are needed.");

	semantics_check(c, loc, e);
	tcp_fields_check(c, loc, e);
	graphql_endpoint_check(c, loc, e);
	if (e->mcp_strict_tool_names != POL_UNSET && proto != POL_PROTO_MCP)
		bad(c, loc, "mcp.strict_tool_names is only valid for protocol mcp");
	if (e->mcp_allow_all_known_mcp_methods != POL_UNSET && proto != POL_PROTO_MCP)
		bad(c, loc, "mcp.allow_all_known_mcp_methods is only valid for protocol mcp");
	credentials_check(c, loc, e);
	if (e->tls == POL_TLS_TERMINATE || e->tls == POL_TLS_PASSTHROUGH)
		warn(
		    c, loc,
		    "'tls: %s' is deprecated; TLS termination is now automatic. Use 'tls: skip' to "
		    "disable.",
		    pol_tls_name(e->tls));
	if (e->tls == POL_TLS_SKIP && proto != POL_PROTO_NONE && port_listed(e, 443))
		warn(c, loc,
		     "'tls: skip' with L7 rules on port 443 — L7 inspection cannot work on "
		     "encrypted "
		     "traffic");
	if (proto == POL_PROTO_SQL && e->enforcement == POL_ENFORCE_ENFORCE)
		bad(c, loc,
		    "SQL enforcement requires full SQL parsing (not available in v1). Use "
		    "`enforcement: audit`.");
	struct ep_ctx x = {.e = e, .loc = loc};
	x.mcp_strict = e->mcp_strict_tool_names != POL_FALSE;
	x.mcp_allow_all = e->mcp_allow_all_known_mcp_methods == POL_TRUE;
	for (size_t i = 0; proto == POL_PROTO_MCP && i < e->n_rules; i++)
		x.mcp_tool_allow_selectors =
		    x.mcp_tool_allow_selectors || rule_has_tool_selector(&e->rules[i]);
	if (proto == POL_PROTO_WEBSOCKET) {
		x.ws_graphql_policy =
		    e->n_gql_ops > 0 ||
		    (!empty(e->persisted_queries) && strcmp(e->persisted_queries, "deny") != 0);
		for (size_t i = 0; i < e->n_rules; i++)
			x.ws_graphql_policy = x.ws_graphql_policy || rule_has_graphql(&e->rules[i]);
		for (size_t i = 0; i < e->n_deny_rules; i++)
			x.ws_graphql_policy =
			    x.ws_graphql_policy || rule_has_graphql(&e->deny_rules[i]);
	}
	for (size_t i = 0; i < e->n_deny_rules && !c->rc; i++)
		deny_rule_check(c, &x, i);
	for (size_t i = 0; i < e->n_rules && !c->rc; i++)
		allow_rule_check(c, &x, i);
	if (e->access == POL_ACCESS_UNKNOWN)
		warn(c, loc,
		     "unsupported L7 access preset '%s' ignored; expected one of: read-only, "
		     "read-write, full",
		     S(e->access_raw));
}

/* --- middlewares --------------------------------------------------------------------------- */

/* OpenShell's host pattern: exact name, or a glob where '*' stays inside one label and a whole
 * first label '**' covers one or more labels (the proxy matches with the same rules). */
static bool label_glob(const char *p, size_t pn, const char *t, size_t tn)
{
	size_t pi = 0, ti = 0, star = SIZE_MAX, mark = 0;
	while (ti < tn) {
		if (pi < pn && p[pi] == '*') {
			star = pi++;
			mark = ti;
		} else if (pi < pn && p[pi] == t[ti]) {
			pi++;
			ti++;
		} else if (star != SIZE_MAX) {
			pi = star + 1;
			ti = ++mark;
		} else {
			return false;
		}
	}
	while (pi < pn && p[pi] == '*')
		pi++;
	return pi == pn;
}

bool pol_host_pattern_match(const char *pattern, const char *host)
{
	if (!pattern || !host || !*host)
		return false;
	if (strncmp(pattern, "**.", 3) == 0) {
		const char *rest = pattern + 3;
		for (const char *dot = strchr(host, '.'); dot; dot = strchr(dot + 1, '.'))
			if (pol_host_pattern_match(rest, dot + 1))
				return true;
		return false;
	}
	for (;;) {
		size_t pn = strcspn(pattern, "."), tn = strcspn(host, ".");
		if (!label_glob(pattern, pn, host, tn))
			return false;
		if (!pattern[pn] || !host[tn])
			return !pattern[pn] && !host[tn];
		pattern += pn + 1;
		host += tn + 1;
	}
}

bool pol_middleware_selects(const struct pol_middleware *m, const char *host)
{
	bool in = false;
	for (size_t i = 0; !in && i < m->include.n; i++)
		in = pol_host_pattern_match(m->include.v[i], host);
	for (size_t i = 0; in && i < m->exclude.n; i++)
		in = !pol_host_pattern_match(m->exclude.v[i], host);
	return in;
}

static void middleware_check(struct chk *c, const struct pol_policy *p, size_t i)
{
	const struct pol_middleware *m = &p->middlewares[i];
	char loc[LOC_MAX], canon[POL_HOST_MAX + 1];
	sv_fmt(loc, sizeof(loc), "network_middlewares.%s", S(m->name));
	if (empty(m->name)) {
		bad(c, loc, "name must not be empty");
		return;
	}
	/* Bounded like a rule name: the INI header [middleware.NAME] must stay readable even when
	 * every byte of the name is written percent-encoded. */
	if (strlen(m->name) > POL_RULE_NAME_MAX) {
		bad(c, loc, "name is longer than %d bytes", POL_RULE_NAME_MAX);
		return;
	}
	for (size_t j = 0; j < i; j++) {
		if (strcmp(S(p->middlewares[j].name), m->name) == 0) {
			bad(c, loc, "duplicate middleware name");
			return;
		}
		if (p->middlewares[j].order == m->order) {
			bad(c, loc,
			    "middleware configs '%s' and '%s' have the same order %d; orders "
			    "must be unique",
			    p->middlewares[j].name, m->name, (int)m->order);
			return;
		}
	}
	if (empty(m->middleware)) {
		bad(c, loc, "middleware must not be empty");
		return;
	}
	if (m->on_error && *m->on_error && strcmp(m->on_error, "fail_closed") != 0 &&
	    strcmp(m->on_error, "fail_open") != 0) {
		bad(c, loc, "invalid on_error '%s'", m->on_error);
		return;
	}
	if (m->include.n == 0) {
		bad(c, loc, "endpoint selector must include at least one host pattern");
		return;
	}
	if (m->include.n + m->exclude.n > POL_MIDDLEWARE_PATTERNS_MAX) {
		bad(c, loc, "too many selector patterns (%zu > %d)", m->include.n + m->exclude.n,
		    POL_MIDDLEWARE_PATTERNS_MAX);
		return;
	}
	const struct pol_strv *lists[] = {&m->include, &m->exclude};
	for (size_t l = 0; l < 2; l++) {
		for (size_t j = 0; j < lists[l]->n; j++) {
			struct sv_err e = {0};
			enum pol_host_kind kind;
			const char *pat = lists[l]->v[j];
			if (pol_host_canon(pat, canon, sizeof(canon), &kind, &e) < 0) {
				bad(c, loc, "endpoint selector pattern '%s' is invalid: %s", pat,
				    e.msg);
				return;
			}
			if (strcmp(canon, pat) != 0) {
				bad(c, loc, "endpoint selector pattern '%s' is not canonical", pat);
				return;
			}
		}
	}
	bool fail_closed = empty(m->on_error) || strcmp(m->on_error, "fail_closed") == 0;
	for (size_t r = 0; fail_closed && r < p->n_rules; r++) {
		const struct pol_network_rule *rule = &p->rules[r];
		for (size_t j = 0; j < rule->n_endpoints; j++) {
			const struct pol_endpoint *e = &rule->endpoints[j];
			if (e->tls != POL_TLS_SKIP || !e->host)
				continue;
			/* A glob endpoint may overlap a selector: refuse when either pattern
			 * matches the other's text, or the selector covers the exact host. */
			bool hit = pol_middleware_selects(m, e->host);
			for (size_t k = 0; !hit && e->kind == POL_HOST_GLOB && k < m->include.n;
			     k++)
				hit = pol_host_pattern_match(e->host, m->include.v[k]) ||
				      strcmp(e->host, m->include.v[k]) == 0;
			if (hit) {
				bad(c, loc,
				    "middleware config '%s' selects network policy '%s' tls: "
				    "skip endpoint '%s'",
				    m->name, rule->name, e->host);
				return;
			}
		}
	}
}

/* --- entry points -------------------------------------------------------------------------- */

int pol_validate_full(const struct pol_policy *p, pol_warn_fn warn_fn, void *ctx,
		      struct sv_err *err)
{
	int r = pol_validate_l4(p, err);
	if (r < 0)
		return r;
	struct chk c = {.warn = warn_fn, .ctx = ctx, .err = err};
	char loc[LOC_MAX];
	for (size_t i = 0; i < p->n_rules && !c.rc; i++) {
		const struct pol_network_rule *rule = &p->rules[i];
		for (size_t j = 0; j < rule->n_endpoints && !c.rc; j++) {
			sv_fmt(loc, sizeof(loc), "network.%s.endpoints[%zu]", rule->name, j);
			endpoint_check(&c, loc, &rule->endpoints[j]);
		}
	}
	if (p->n_middlewares > POL_MIDDLEWARES_MAX)
		bad(&c, "network_middlewares", "too many middleware configs (%zu > %d)",
		    p->n_middlewares, POL_MIDDLEWARES_MAX);
	for (size_t i = 0; i < p->n_middlewares && !c.rc; i++)
		middleware_check(&c, p, i);
	return c.rc;
}

int pol_validate(const struct pol_policy *p, struct sv_err *err)
{
	return pol_validate_full(p, NULL, NULL, err);
}
