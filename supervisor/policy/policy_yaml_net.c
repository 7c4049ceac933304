/* The YAML policy format, network half: `network_policies` (endpoints with every layer-7 and
 * credential field, binaries) and `network_middlewares`, into the model as written (presets are
 * not expanded; the proxy does that).
 *
 * Field checks happen where the value stands, so errors carry its line and column; each
 * finished endpoint and rule also goes through pol_validate() on its own, so the whole-policy
 * rules report at the endpoint or rule they concern. Nothing here may accept a port outside
 * 1..65535 or a query matcher other than a string or {any: [...]}.
 */
#include "policy_yaml.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Append one zeroed element to *arr (n elements of @size); NULL when out of memory. */
static void *grow(void *arr, size_t *n, size_t size)
{
	void **a = arr;
	char *v = realloc(*a, (*n + 1) * size);
	if (!v)
		return NULL;
	*a = v;
	memset(v + *n * size, 0, size);
	return v + (*n)++ * size;
}

static int oom(struct pol_yaml *c)
{
	return pol_yaml_fail_here(c, ENOMEM, "out of memory");
}

/* --- matchers (query, tool, params) -------------------------------------------------------- */

static int glob_item(struct pol_yaml *c, void *obj, size_t i)
{
	(void)i;
	struct pol_strv *sv = obj;
	const char *v;
	if (pol_yaml_text(c, "a glob string", &v) < 0)
		return c->rc;
	return pol_strv_push(sv, v) < 0 ? oom(c) : 0;
}

/* The value of `any:` (the current event): a non-empty list of strings. */
static int any_list(struct pol_yaml *c, struct pol_matcher *m)
{
	yaml_mark_t at = c->ev.start_mark;
	m->any = true;
	if (pol_yaml_list(c, POL_YAML_ITEMS_MAX, glob_item, &m->globs) < 0)
		return c->rc;
	if (m->globs.n == 0)
		return pol_yaml_fail(c, &at, EINVAL, "'any' needs at least one glob");
	return 0;
}

/* `"glob"` or `{any: ["glob", ...]}`, nothing else (OpenShell's QueryMatcherDef). */
static int matcher(struct pol_yaml *c, struct pol_matcher *m)
{
	if (c->ev.type == YAML_SCALAR_EVENT) {
		const char *v;
		if (pol_yaml_text(c, "a glob string", &v) < 0)
			return c->rc;
		return pol_strv_push(&m->globs, v) < 0 ? oom(c) : 0;
	}
	if (c->ev.type != YAML_MAPPING_START_EVENT)
		return pol_yaml_fail_here(
		    c, EINVAL, "a matcher is a glob string or {any: [globs]}, not a list");
	yaml_mark_t at = c->ev.start_mark;
	char key[POL_YAML_KEY_MAX + 1];
	int r;
	if (pol_yaml_enter(c) < 0)
		return c->rc;
	bool seen = false;
	while ((r = pol_yaml_next_key(c, key, sizeof(key))) == 0) {
		if (strcmp(key, "any") != 0)
			return pol_yaml_fail_here(
			    c, EINVAL, "unknown key '%.64s': a matcher object is {any: [globs]}",
			    key);
		if (seen)
			return pol_yaml_fail_here(c, EINVAL, "duplicate key 'any'");
		seen = true;
		size_t old = pol_yaml_push_key(c, key);
		if (pol_yaml_next(c) < 0 || any_list(c, m) < 0)
			return c->rc;
		pol_yaml_pop(c, old);
	}
	if (r < 0)
		return r;
	pol_yaml_leave(c);
	if (!seen)
		return pol_yaml_fail(c, &at, EINVAL, "a matcher object needs 'any: [globs]'");
	return 0;
}

static struct pol_matcher *matcher_add(struct pol_yaml *c, struct pol_matcher **arr, size_t *n,
				       const char *key, const yaml_mark_t *km)
{
	for (size_t i = 0; i < *n; i++) {
		if (strcmp((*arr)[i].key, key) == 0) {
			pol_yaml_fail(c, km, EINVAL, "duplicate key '%.64s'", key);
			return NULL;
		}
	}
	if (*n >= POL_YAML_ITEMS_MAX) {
		pol_yaml_fail(c, km, E2BIG, "too many entries (max %d)", POL_YAML_ITEMS_MAX);
		return NULL;
	}
	struct pol_matcher *m = grow(arr, n, sizeof(*m));
	if (!m || !(m->key = strdup(key))) {
		oom(c);
		return NULL;
	}
	return m;
}

static int query_entry(struct pol_yaml *c, void *obj, const char *key, const yaml_mark_t *km)
{
	struct pol_l7_rule *r = obj;
	struct pol_matcher *m = matcher_add(c, &r->query, &r->n_query, key, km);
	return m ? matcher(c, m) : c->rc;
}

/* MCP `params`: a matcher, or a map of further params, flattened to "a.b" keys (as OpenShell
 * flattens them). A map whose first key is `any` is a matcher. */
static int params_value(struct pol_yaml *c, struct pol_l7_rule *r, const char *key,
			const yaml_mark_t *km);

static int params_object(struct pol_yaml *c, struct pol_l7_rule *r, const char *prefix)
{
	yaml_mark_t at = c->ev.start_mark;
	char key[POL_YAML_KEY_MAX + 1];
	int rc;
	if (pol_yaml_enter(c) < 0)
		return c->rc;
	size_t n = 0;
	while ((rc = pol_yaml_next_key(c, key, sizeof(key))) == 0) {
		yaml_mark_t km = c->ev.start_mark;
		if (n++ == 0 && strcmp(key, "any") == 0) {
			struct pol_matcher *m =
			    matcher_add(c, &r->params, &r->n_params, prefix, &at);
			size_t old = pol_yaml_push_key(c, key);
			if (!m || pol_yaml_next(c) < 0 || any_list(c, m) < 0)
				return c->rc;
			pol_yaml_pop(c, old);
			if ((rc = pol_yaml_next_key(c, key, sizeof(key))) == 0)
				return pol_yaml_fail_here(
				    c, EINVAL,
				    "unknown key '%.64s': a matcher object is {any: [globs]}", key);
			break;
		}
		size_t len = strlen(prefix) + 1 + strlen(key) + 1;
		_cleanup_free_ char *full = malloc(len);
		if (!full)
			return oom(c);
		sv_fmt(full, len, "%s.%s", prefix, key);
		size_t old = pol_yaml_push_key(c, key);
		if (pol_yaml_next(c) < 0 || params_value(c, r, full, &km) < 0)
			return c->rc;
		pol_yaml_pop(c, old);
	}
	if (rc < 0)
		return rc;
	pol_yaml_leave(c);
	if (n == 0)
		return pol_yaml_fail(c, &at, EINVAL, "a params object must not be empty");
	return 0;
}

static int params_value(struct pol_yaml *c, struct pol_l7_rule *r, const char *key,
			const yaml_mark_t *km)
{
	if (c->ev.type == YAML_MAPPING_START_EVENT)
		return params_object(c, r, key);
	struct pol_matcher *m = matcher_add(c, &r->params, &r->n_params, key, km);
	return m ? matcher(c, m) : c->rc;
}

static int params_entry(struct pol_yaml *c, void *obj, const char *key, const yaml_mark_t *km)
{
	return params_value(c, obj, key, km);
}

/* --- layer-7 rules ------------------------------------------------------------------------- */

#define RULE_STR(field)                                                      \
	static int r_##field(struct pol_yaml *c, void *obj)                  \
	{                                                                    \
		return pol_yaml_str(c, &((struct pol_l7_rule *)obj)->field); \
	}
RULE_STR(method)
RULE_STR(path)
RULE_STR(command)
RULE_STR(operation_type)
RULE_STR(operation_name)

static int r_query(struct pol_yaml *c, void *obj)
{
	return pol_yaml_dict(c, POL_YAML_ITEMS_MAX, query_entry, obj);
}

static int r_fields(struct pol_yaml *c, void *obj)
{
	return pol_yaml_strv(c, &((struct pol_l7_rule *)obj)->fields, POL_YAML_ITEMS_MAX);
}

static int r_tool(struct pol_yaml *c, void *obj)
{
	struct pol_l7_rule *r = obj;
	if (!(r->tool = calloc(1, sizeof(*r->tool))))
		return oom(c);
	return matcher(c, r->tool);
}

static int r_params(struct pol_yaml *c, void *obj)
{
	return pol_yaml_dict(c, POL_YAML_ITEMS_MAX, params_entry, obj);
}

/* L7AllowDef and L7DenyRuleDef have the same fields. */
static const struct pol_yaml_field l7_fields[] = {
    {"method", r_method},
    {"path", r_path},
    {"command", r_command},
    {"query", r_query},
    {"operation_type", r_operation_type},
    {"operation_name", r_operation_name},
    {"fields", r_fields},
    {"tool", r_tool},
    {"params", r_params},
};

struct allow_ctx {
	struct pol_l7_rule *r;
	bool seen;
};

static int r_allow(struct pol_yaml *c, void *obj)
{
	struct allow_ctx *a = obj;
	a->seen = true;
	return pol_yaml_struct(c, l7_fields, SV_ARRAY_SIZE(l7_fields), a->r);
}

static const struct pol_yaml_field rule_wrap_fields[] = {{"allow", r_allow}};

static int rules_item(struct pol_yaml *c, void *obj, size_t i)
{
	(void)i;
	struct pol_endpoint *e = obj;
	yaml_mark_t at = c->ev.start_mark;
	struct allow_ctx a = {.r = grow(&e->rules, &e->n_rules, sizeof(*e->rules))};
	if (!a.r)
		return oom(c);
	if (pol_yaml_struct(c, rule_wrap_fields, SV_ARRAY_SIZE(rule_wrap_fields), &a) < 0)
		return c->rc;
	if (!a.seen)
		return pol_yaml_fail(c, &at, EINVAL, "missing key 'allow'");
	return 0;
}

static int deny_item(struct pol_yaml *c, void *obj, size_t i)
{
	(void)i;
	struct pol_endpoint *e = obj;
	struct pol_l7_rule *r = grow(&e->deny_rules, &e->n_deny_rules, sizeof(*r));
	if (!r)
		return oom(c);
	return pol_yaml_struct(c, l7_fields, SV_ARRAY_SIZE(l7_fields), r);
}

/* --- endpoints ----------------------------------------------------------------------------- */

struct ep_ctx {
	struct pol_yaml *c;
	struct pol_endpoint *e;
	bool port, ports; /* which of the two was written */
	bool json_rpc, mcp;
	uint32_t json_rpc_bytes, mcp_bytes;
	struct pol_gql_op *op; /* the persisted query being read */
};

#define EP(obj) (((struct ep_ctx *)(obj))->e)

static int e_host(struct pol_yaml *c, void *obj)
{
	struct pol_endpoint *e = EP(obj);
	const char *v;
	char canon[POL_HOST_MAX + 1];
	struct sv_err err = {0};
	if (pol_yaml_text(c, "a host name", &v) < 0)
		return c->rc;
	if (!*v) /* OpenShell's empty string: no host (a hostless endpoint) */
		return 0;
	int r = pol_host_canon(v, canon, sizeof(canon), &e->kind, &err);
	if (r < 0)
		return pol_yaml_fail_err(c, &c->ev.start_mark, r, &err);
	return (e->host = strdup(canon)) ? 0 : oom(c);
}

static int e_path(struct pol_yaml *c, void *obj)
{
	return pol_yaml_str_opt(c, &EP(obj)->path);
}

static int port_add(struct pol_yaml *c, struct pol_endpoint *e)
{
	unsigned long long v = 0;
	if (pol_yaml_uint(c, 1, 65535, &v) < 0)
		return c->rc;
	for (size_t i = 0; i < e->n_ports; i++)
		if (e->ports[i] == v)
			return pol_yaml_fail_here(c, EINVAL, "duplicate port %llu", v);
	if (e->n_ports >= POL_PORTS_MAX)
		return pol_yaml_fail_here(c, E2BIG, "too many ports (max %d)", POL_PORTS_MAX);
	uint16_t *p = grow(&e->ports, &e->n_ports, sizeof(*p));
	if (!p)
		return oom(c);
	*p = (uint16_t)v;
	return 0;
}

static int e_port(struct pol_yaml *c, void *obj)
{
	struct ep_ctx *x = obj;
	if (x->ports)
		return pol_yaml_fail_here(c, EINVAL, "'port' and 'ports' are mutually exclusive");
	x->port = true;
	return port_add(c, x->e);
}

static int ports_item(struct pol_yaml *c, void *obj, size_t i)
{
	(void)i;
	return port_add(c, obj);
}

static int e_ports(struct pol_yaml *c, void *obj)
{
	struct ep_ctx *x = obj;
	if (x->port)
		return pol_yaml_fail_here(c, EINVAL, "'port' and 'ports' are mutually exclusive");
	if (pol_yaml_list(c, POL_PORTS_MAX, ports_item, x->e) < 0)
		return c->rc;
	x->ports = x->e->n_ports > 0; /* `ports: []` is no ports, as in OpenShell */
	return 0;
}

static const struct {
	const char *name;
	enum pol_protocol v;
} protocols[] = {
    {"tcp", POL_PROTO_TCP},	    {"rest", POL_PROTO_REST}, {"websocket", POL_PROTO_WEBSOCKET},
    {"graphql", POL_PROTO_GRAPHQL}, {"sql", POL_PROTO_SQL},   {"json-rpc", POL_PROTO_JSONRPC},
    {"mcp", POL_PROTO_MCP},
};

/* Case-insensitive, as OpenShell's l7_validate reads it (l7 contract §2.1). */
static int e_protocol(struct pol_yaml *c, void *obj)
{
	const char *v;
	if (pol_yaml_text(c, "a protocol", &v) < 0)
		return c->rc;
	EP(obj)->protocol = POL_PROTO_NONE;
	if (!*v)
		return 0;
	for (size_t i = 0; i < SV_ARRAY_SIZE(protocols); i++) {
		if (strcasecmp(v, protocols[i].name) == 0) {
			EP(obj)->protocol = protocols[i].v;
			return 0;
		}
	}
	return pol_yaml_fail_here(c, EINVAL,
				  "unknown protocol '%.64s' (expected rest, websocket, graphql, "
				  "sql, json-rpc, mcp or tcp)",
				  v);
}

/* l7 contract §1.1: only skip changes anything; terminate and passthrough are deprecated
 * aliases of auto; any other string is auto. "" is OpenShell's absent. */
static int e_tls(struct pol_yaml *c, void *obj)
{
	struct pol_endpoint *e = EP(obj);
	const char *v;
	if (pol_yaml_text(c, "a string", &v) < 0)
		return c->rc;
	e->tls_set = *v != '\0';
	e->tls = !strcmp(v, "skip")	     ? POL_TLS_SKIP
		 : !strcmp(v, "terminate")   ? POL_TLS_TERMINATE
		 : !strcmp(v, "passthrough") ? POL_TLS_PASSTHROUGH
					     : POL_TLS_AUTO;
	return 0;
}

/* l7 contract §2.4: only the literal "enforce" enforces. */
static int e_enforcement(struct pol_yaml *c, void *obj)
{
	const char *v;
	if (pol_yaml_text(c, "a string", &v) < 0)
		return c->rc;
	EP(obj)->enforcement = !strcmp(v, "enforce") ? POL_ENFORCE_ENFORCE : POL_ENFORCE_AUDIT;
	return 0;
}

static int e_access(struct pol_yaml *c, void *obj)
{
	struct pol_endpoint *e = EP(obj);
	const char *v;
	if (pol_yaml_text(c, "a string", &v) < 0)
		return c->rc;
	free(e->access_raw);
	e->access_raw = NULL;
	e->access = !*v			       ? POL_ACCESS_NONE
		    : !strcmp(v, "read-only")  ? POL_ACCESS_READ_ONLY
		    : !strcmp(v, "read-write") ? POL_ACCESS_READ_WRITE
		    : !strcmp(v, "full")       ? POL_ACCESS_FULL
					       : POL_ACCESS_UNKNOWN;
	if (e->access == POL_ACCESS_UNKNOWN && !(e->access_raw = strdup(v)))
		return oom(c);
	return 0;
}

static int e_rules(struct pol_yaml *c, void *obj)
{
	EP(obj)->rules_set = true;
	return pol_yaml_list(c, POL_YAML_ITEMS_MAX, rules_item, EP(obj));
}

static int e_deny_rules(struct pol_yaml *c, void *obj)
{
	EP(obj)->deny_rules_set = true;
	return pol_yaml_list(c, POL_YAML_ITEMS_MAX, deny_item, EP(obj));
}

static int ip_item(struct pol_yaml *c, void *obj, size_t i)
{
	(void)i;
	struct pol_endpoint *e = obj;
	const char *v;
	struct pol_cidr cidr;
	struct sv_err err = {0};
	if (pol_yaml_text(c, "an address or CIDR", &v) < 0)
		return c->rc;
	int r = pol_cidr_parse(v, &cidr, &err);
	if (r < 0)
		return pol_yaml_fail_err(c, &c->ev.start_mark, r, &err);
	struct pol_cidr *slot = grow(&e->allowed_ips, &e->n_allowed_ips, sizeof(*slot));
	if (!slot)
		return oom(c);
	*slot = cidr;
	return 0;
}

static int e_allowed_ips(struct pol_yaml *c, void *obj)
{
	return pol_yaml_list(c, POL_RULE_ITEMS_MAX, ip_item, EP(obj));
}

#define EP_BOOL(field)                                      \
	static int e_##field(struct pol_yaml *c, void *obj) \
	{                                                   \
		return pol_yaml_bool(c, &EP(obj)->field);   \
	}
EP_BOOL(allow_encoded_slash)
EP_BOOL(websocket_credential_rewrite)
EP_BOOL(request_body_credential_rewrite)
EP_BOOL(allow_uninspected_credentials)

#define EP_STR(field)                                        \
	static int e_##field(struct pol_yaml *c, void *obj)  \
	{                                                    \
		return pol_yaml_str_opt(c, &EP(obj)->field); \
	}
EP_STR(persisted_queries)
EP_STR(credential_signing)
EP_STR(signing_service)
EP_STR(signing_region)

/* A body limit: OpenShell's 0 means "default", so an explicit 0 is refused (l7 contract §5). */
static int body_bytes(struct pol_yaml *c, uint32_t *out)
{
	unsigned long long v = 0;
	if (pol_yaml_uint(c, 1, UINT32_MAX, &v) < 0)
		return c->rc;
	*out = (uint32_t)v;
	return 0;
}

static int e_graphql_max_body_bytes(struct pol_yaml *c, void *obj)
{
	return body_bytes(c, &EP(obj)->graphql_max_body_bytes);
}

static int g_operation_type(struct pol_yaml *c, void *obj)
{
	return pol_yaml_str_opt(c, &((struct pol_gql_op *)obj)->operation_type);
}

static int g_operation_name(struct pol_yaml *c, void *obj)
{
	return pol_yaml_str_opt(c, &((struct pol_gql_op *)obj)->operation_name);
}

static int g_fields(struct pol_yaml *c, void *obj)
{
	return pol_yaml_strv(c, &((struct pol_gql_op *)obj)->fields, POL_YAML_ITEMS_MAX);
}

static const struct pol_yaml_field gql_fields[] = {
    {"operation_type", g_operation_type},
    {"operation_name", g_operation_name},
    {"fields", g_fields},
};

static int gql_entry(struct pol_yaml *c, void *obj, const char *key, const yaml_mark_t *km)
{
	(void)km;
	struct pol_endpoint *e = obj;
	struct pol_gql_op *op = grow(&e->gql_ops, &e->n_gql_ops, sizeof(*op));
	if (!op || !(op->id = strdup(key)))
		return oom(c);
	return pol_yaml_struct(c, gql_fields, SV_ARRAY_SIZE(gql_fields), op);
}

static int e_graphql_persisted_queries(struct pol_yaml *c, void *obj)
{
	return pol_yaml_dict(c, POL_YAML_ITEMS_MAX, gql_entry, EP(obj));
}

static int b_provider(struct pol_yaml *c, void *obj)
{
	const char *v;
	if (pol_yaml_text(c, "a provider name", &v) < 0)
		return c->rc;
	if (!*v)
		return pol_yaml_fail_here(c, EINVAL, "must not be empty");
	return (*(char **)obj = strdup(v)) ? 0 : oom(c);
}

static const struct pol_yaml_field binding_fields[] = {{"provider", b_provider}};

static int e_credential_binding(struct pol_yaml *c, void *obj)
{
	struct pol_endpoint *e = EP(obj);
	yaml_mark_t at = c->ev.start_mark;
	if (pol_yaml_struct(c, binding_fields, 1, &e->credential_binding) < 0)
		return c->rc;
	if (!e->credential_binding)
		return pol_yaml_fail(c, &at, EINVAL, "missing key 'provider'");
	return 0;
}

static int j_max_body_bytes(struct pol_yaml *c, void *obj)
{
	return body_bytes(c, obj);
}

static const struct pol_yaml_field json_rpc_fields[] = {{"max_body_bytes", j_max_body_bytes}};

static int e_json_rpc(struct pol_yaml *c, void *obj)
{
	struct ep_ctx *x = obj;
	x->json_rpc = true;
	return pol_yaml_struct(c, json_rpc_fields, 1, &x->json_rpc_bytes);
}

static int tristate(struct pol_yaml *c, enum pol_tristate *out)
{
	bool b;
	if (pol_yaml_bool(c, &b) < 0)
		return c->rc;
	*out = b ? POL_TRUE : POL_FALSE;
	return 0;
}

static int m_max_body_bytes(struct pol_yaml *c, void *obj)
{
	return body_bytes(c, &((struct ep_ctx *)obj)->mcp_bytes);
}

static int m_strict_tool_names(struct pol_yaml *c, void *obj)
{
	return tristate(c, &EP(obj)->mcp_strict_tool_names);
}

static int m_allow_all_known_mcp_methods(struct pol_yaml *c, void *obj)
{
	return tristate(c, &EP(obj)->mcp_allow_all_known_mcp_methods);
}

static const struct pol_yaml_field mcp_fields[] = {
    {"max_body_bytes", m_max_body_bytes},
    {"strict_tool_names", m_strict_tool_names},
    {"allow_all_known_mcp_methods", m_allow_all_known_mcp_methods},
};

static int e_mcp(struct pol_yaml *c, void *obj)
{
	((struct ep_ctx *)obj)->mcp = true;
	return pol_yaml_struct(c, mcp_fields, SV_ARRAY_SIZE(mcp_fields), obj);
}

static const struct pol_yaml_field ep_fields[] = {
    {"host", e_host},
    {"path", e_path},
    {"port", e_port},
    {"ports", e_ports},
    {"protocol", e_protocol},
    {"tls", e_tls},
    {"enforcement", e_enforcement},
    {"access", e_access},
    {"rules", e_rules},
    {"allowed_ips", e_allowed_ips},
    {"deny_rules", e_deny_rules},
    {"allow_encoded_slash", e_allow_encoded_slash},
    {"websocket_credential_rewrite", e_websocket_credential_rewrite},
    {"request_body_credential_rewrite", e_request_body_credential_rewrite},
    {"allow_uninspected_credentials", e_allow_uninspected_credentials},
    {"persisted_queries", e_persisted_queries},
    {"graphql_persisted_queries", e_graphql_persisted_queries},
    {"graphql_max_body_bytes", e_graphql_max_body_bytes},
    {"credential_signing", e_credential_signing},
    {"signing_service", e_signing_service},
    {"signing_region", e_signing_region},
    {"credential_binding", e_credential_binding},
    {"json_rpc", e_json_rpc},
    {"mcp", e_mcp},
};

/* pol_validate() on a policy holding just @rule, so its complaint can carry a position. */
static int validate_alone(struct pol_yaml *c, const yaml_mark_t *at,
			  const struct pol_network_rule *rule, const char *strip)
{
	struct pol_policy one;
	struct sv_err err = {0};
	pol_init(&one);
	one.rules = (struct pol_network_rule *)rule;
	one.n_rules = 1;
	int r = pol_validate(&one, &err);
	if (r == 0)
		return 0;
	size_t n = strlen(strip);
	const char *msg = strncmp(err.msg, strip, n) == 0 ? err.msg + n : err.msg;
	return pol_yaml_fail(c, at, -r, "%s", msg);
}

static int endpoint_item(struct pol_yaml *c, void *obj, size_t i)
{
	(void)i;
	struct pol_network_rule *rule = obj;
	yaml_mark_t at = c->ev.start_mark;
	struct ep_ctx x = {.c = c};
	if (!(x.e = grow(&rule->endpoints, &rule->n_endpoints, sizeof(*x.e))))
		return oom(c);
	if (pol_yaml_struct(c, ep_fields, SV_ARRAY_SIZE(ep_fields), &x) < 0)
		return c->rc;
	struct pol_endpoint *e = x.e;
	/* The proto has one JSON-RPC body limit; OpenShell prefers the mcp stanza's. */
	if (x.mcp)
		e->json_rpc_max_body_bytes = x.mcp_bytes;
	else if (x.json_rpc)
		e->json_rpc_max_body_bytes = x.json_rpc_bytes;
	if (!x.port && !x.ports)
		return pol_yaml_fail(c, &at, EINVAL, "an endpoint needs 'port' or 'ports'");
	if (e->kind == POL_HOST_NONE && e->n_allowed_ips == 0)
		return pol_yaml_fail(c, &at, EINVAL,
				     "an endpoint needs 'host' (or 'allowed_ips' without a host)");
	if (e->n_allowed_ips > POL_ENDPOINT_IPS_MAX - c->total_ips)
		return pol_yaml_fail(c, &at, E2BIG,
				     "too many allowed_ips entries over all endpoints (max %d)",
				     POL_ENDPOINT_IPS_MAX);
	c->total_ips += e->n_allowed_ips;
	struct pol_network_rule alone = {
	    .name = (char *)"endpoint", .endpoints = e, .n_endpoints = 1};
	return validate_alone(c, &at, &alone, "network rule 'endpoint': endpoint 1: ");
}

/* --- rules --------------------------------------------------------------------------------- */

struct rule_ctx {
	struct pol_network_rule *rule;
	char *name; /* `name:` as written, owned */
	yaml_mark_t name_mark;
};

static int n_name(struct pol_yaml *c, void *obj)
{
	struct rule_ctx *x = obj;
	x->name_mark = c->ev.start_mark;
	return pol_yaml_str_opt(c, &x->name);
}

static int n_endpoints(struct pol_yaml *c, void *obj)
{
	return pol_yaml_list(c, POL_RULE_ITEMS_MAX, endpoint_item, ((struct rule_ctx *)obj)->rule);
}

static int b_path(struct pol_yaml *c, void *obj)
{
	const char *v;
	struct sv_err err = {0};
	if (pol_yaml_text(c, "a path", &v) < 0)
		return c->rc;
	int r = pol_binary_check(v, &err);
	if (r < 0)
		return pol_yaml_fail_err(c, &c->ev.start_mark, r, &err);
	return pol_strv_push(obj, v) < 0 ? oom(c) : 0;
}

/* Deprecated in OpenShell and ignored there too; still typed. */
static int b_harness(struct pol_yaml *c, void *obj)
{
	(void)obj;
	bool ignored;
	return pol_yaml_bool(c, &ignored);
}

static const struct pol_yaml_field binary_fields[] = {
    {"path", b_path},
    {"harness", b_harness},
};

static int binary_item(struct pol_yaml *c, void *obj, size_t i)
{
	(void)i;
	struct pol_strv *sv = obj;
	yaml_mark_t at = c->ev.start_mark;
	size_t before = sv->n;
	if (pol_yaml_struct(c, binary_fields, SV_ARRAY_SIZE(binary_fields), sv) < 0)
		return c->rc;
	if (sv->n == before)
		return pol_yaml_fail(c, &at, EINVAL, "missing key 'path'");
	return 0;
}

static int n_binaries(struct pol_yaml *c, void *obj)
{
	return pol_yaml_list(c, POL_RULE_ITEMS_MAX, binary_item,
			     &((struct rule_ctx *)obj)->rule->binaries);
}

static const struct pol_yaml_field rule_fields[] = {
    {"name", n_name},
    {"endpoints", n_endpoints},
    {"binaries", n_binaries},
};

/* The rule is attached to the policy before it is filled, so a failure anywhere inside leaves
 * nothing the final pol_free() does not reach. */
static int rule_entry(struct pol_yaml *c, void *obj, const char *key, const yaml_mark_t *km)
{
	struct pol_policy *p = obj;
	if (p->n_rules >= POL_RULES_MAX)
		return pol_yaml_fail(c, km, E2BIG, "too many network rules (max %d)",
				     POL_RULES_MAX);
	struct rule_ctx x = {.rule = grow(&p->rules, &p->n_rules, sizeof(*p->rules))};
	if (!x.rule)
		return oom(c);
	if (pol_yaml_struct(c, rule_fields, SV_ARRAY_SIZE(rule_fields), &x) < 0) {
		free(x.name);
		return c->rc;
	}
	/* OpenShell: the rule's name is `name`, else the map key. */
	const yaml_mark_t *at = x.name ? &x.name_mark : km;
	x.rule->name = x.name ? x.name : strdup(key);
	if (!x.rule->name)
		return oom(c);
	struct sv_err err = {0};
	int r = pol_rule_name_check(x.rule->name, &err);
	if (r < 0)
		return pol_yaml_fail_err(c, at, r, &err);
	for (size_t i = 0; i + 1 < p->n_rules; i++)
		if (strcmp(p->rules[i].name, x.rule->name) == 0)
			return pol_yaml_fail(c, at, EINVAL, "duplicate network rule name '%s'",
					     x.rule->name);
	if (x.rule->n_endpoints == 0)
		return pol_yaml_fail(c, km, EINVAL, "a rule needs at least one endpoint");
	char strip[POL_RULE_NAME_MAX + 32];
	sv_fmt(strip, sizeof(strip), "network rule '%s': ", x.rule->name);
	return validate_alone(c, km, x.rule, strip);
}

int pol_yaml_network_policies(struct pol_yaml *c, void *obj)
{
	return pol_yaml_dict(c, POL_RULES_MAX + 1, rule_entry, obj);
}
