/* struct pol_policy back into the gateway's SandboxPolicy protobuf (for UpdateConfig): every
 * field of the model, the reverse of gw_policy_convert.
 *
 * Every part of the message is its own heap allocation, exactly as protobuf-c's unpacker makes
 * them, so protobuf_c_message_free_unpacked frees a finished or half-built message alike. It
 * only reads the policy and never logs.
 */
#include "gw_policy.h"

#include <stdlib.h>
#include <string.h>

typedef Openshell__Sandbox__V1__SandboxPolicy Policy;
typedef Openshell__Sandbox__V1__NetworkEndpoint Endpoint;
typedef Openshell__Sandbox__V1__L7QueryMatcher Matcher;

/* A zeroed message of @d's type, initialised (defaults, descriptor) as protobuf-c does. */
static void *msg_new(const ProtobufCMessageDescriptor *d)
{
	void *m = calloc(1, d->sizeof_message);
	if (m)
		protobuf_c_message_init(d, m);
	return m;
}

static char *dupz(const char *s)
{
	return strdup(s ? s : "");
}

/* Allocate @n pointers into *@v (NULL for n == 0) and set *@count only once they exist. */
static int arr(void *v, size_t *count, size_t n)
{
	void ***p = v;
	*p = n ? calloc(n, sizeof(void *)) : NULL;
	if (n && !*p)
		return -ENOMEM;
	*count = n;
	return 0;
}

static int strv_out(char ***v, size_t *n, const struct pol_strv *sv)
{
	if (arr(v, n, sv->n) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < sv->n; i++)
		if (!((*v)[i] = dupz(sv->v[i])))
			return -ENOMEM;
	return 0;
}

static Matcher *matcher_out(const struct pol_matcher *m)
{
	Matcher *q = msg_new(&openshell__sandbox__v1__l7_query_matcher__descriptor);
	if (!q)
		return NULL;
	if (m->any) {
		q->glob = dupz("");
		if (!q->glob || strv_out(&q->any, &q->n_any, &m->globs) < 0)
			goto fail;
	} else if (!(q->glob = dupz(m->globs.n ? m->globs.v[0] : ""))) {
		goto fail;
	}
	return q;
fail:
	protobuf_c_message_free_unpacked(&q->base, NULL);
	return NULL;
}

/* L7Allow and L7DenyRule share a shape; their map entry types differ, hence the macro. */
/* NOLINTBEGIN(bugprone-macro-parentheses): T, QE and PE are type names */
#define DEFINE_RULE_OUT(fn, T, QE, qd, PE, pd)                                                   \
	static int fn(const struct pol_l7_rule *r, T *a)                                         \
	{                                                                                        \
		const struct pol_matcher *name = NULL;                                           \
		for (size_t i = 0; i < r->n_params; i++)                                         \
			if (r->params[i].key && strcmp(r->params[i].key, "name") == 0)           \
				name = &r->params[i];                                            \
		bool tool = r->tool && !name;                                                    \
		if (!(a->method = dupz(r->method)) || !(a->path = dupz(r->path)) ||              \
		    !(a->command = dupz(r->command)) ||                                          \
		    !(a->operation_type = dupz(r->operation_type)) ||                            \
		    !(a->operation_name = dupz(r->operation_name)) ||                            \
		    strv_out(&a->fields, &a->n_fields, &r->fields) < 0 ||                        \
		    arr(&a->query, &a->n_query, r->n_query) < 0 ||                               \
		    arr(&a->params, &a->n_params, r->n_params + tool) < 0)                       \
			return -ENOMEM;                                                          \
		for (size_t i = 0; i < r->n_query; i++) {                                        \
			QE *e = msg_new(&(qd));                                                  \
			if (!(a->query[i] = e) || !(e->key = dupz(r->query[i].key)) ||           \
			    !(e->value = matcher_out(&r->query[i])))                             \
				return -ENOMEM;                                                  \
		}                                                                                \
		for (size_t i = 0; i < r->n_params + tool; i++) {                                \
			const struct pol_matcher *m = i < r->n_params ? &r->params[i] : r->tool; \
			PE *e = msg_new(&(pd));                                                  \
			if (!(a->params[i] = e) ||                                               \
			    !(e->key = dupz(i < r->n_params ? m->key : "name")) ||               \
			    !(e->value = matcher_out(m)))                                        \
				return -ENOMEM;                                                  \
		}                                                                                \
		return 0;                                                                        \
	}

DEFINE_RULE_OUT(allow_out, Openshell__Sandbox__V1__L7Allow,
		Openshell__Sandbox__V1__L7Allow__QueryEntry,
		openshell__sandbox__v1__l7_allow__query_entry__descriptor,
		Openshell__Sandbox__V1__L7Allow__ParamsEntry,
		openshell__sandbox__v1__l7_allow__params_entry__descriptor)
DEFINE_RULE_OUT(deny_out, Openshell__Sandbox__V1__L7DenyRule,
		Openshell__Sandbox__V1__L7DenyRule__QueryEntry,
		openshell__sandbox__v1__l7_deny_rule__query_entry__descriptor,
		Openshell__Sandbox__V1__L7DenyRule__ParamsEntry,
		openshell__sandbox__v1__l7_deny_rule__params_entry__descriptor)
/* NOLINTEND(bugprone-macro-parentheses) */

static int l7_out(const struct pol_endpoint *p, Endpoint *e)
{
	if (!(e->protocol = dupz(pol_protocol_name(p->protocol))) ||
	    !(e->tls = dupz(p->tls_set ? pol_tls_name(p->tls) : "")) ||
	    !(e->enforcement = dupz(p->enforcement == POL_ENFORCE_ENFORCE ? "enforce" : "")) ||
	    !(e->access = dupz(pol_access_name(p))) || !(e->path = dupz(p->path)) ||
	    !(e->persisted_queries = dupz(p->persisted_queries)) ||
	    !(e->credential_signing = dupz(p->credential_signing)) ||
	    !(e->signing_service = dupz(p->signing_service)) ||
	    !(e->signing_region = dupz(p->signing_region)))
		return -ENOMEM;
	if (arr(&e->rules, &e->n_rules, p->n_rules) < 0 ||
	    arr(&e->deny_rules, &e->n_deny_rules, p->n_deny_rules) < 0 ||
	    arr(&e->graphql_persisted_queries, &e->n_graphql_persisted_queries, p->n_gql_ops) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < p->n_rules; i++) {
		Openshell__Sandbox__V1__L7Rule *r =
		    msg_new(&openshell__sandbox__v1__l7_rule__descriptor);
		if (!(e->rules[i] = r) ||
		    !(r->allow = msg_new(&openshell__sandbox__v1__l7_allow__descriptor)) ||
		    allow_out(&p->rules[i], r->allow) < 0)
			return -ENOMEM;
	}
	for (size_t i = 0; i < p->n_deny_rules; i++) {
		Openshell__Sandbox__V1__L7DenyRule *d =
		    msg_new(&openshell__sandbox__v1__l7_deny_rule__descriptor);
		if (!(e->deny_rules[i] = d) || deny_out(&p->deny_rules[i], d) < 0)
			return -ENOMEM;
	}
	for (size_t i = 0; i < p->n_gql_ops; i++) {
		const struct pol_gql_op *o = &p->gql_ops[i];
		Openshell__Sandbox__V1__NetworkEndpoint__GraphqlPersistedQueriesEntry *q = msg_new(
		    &openshell__sandbox__v1__network_endpoint__graphql_persisted_queries_entry__descriptor);
		Openshell__Sandbox__V1__GraphqlOperation *op = NULL;
		if (!(e->graphql_persisted_queries[i] = q) || !(q->key = dupz(o->id)) ||
		    !(q->value = op =
			  msg_new(&openshell__sandbox__v1__graphql_operation__descriptor)) ||
		    !(op->operation_type = dupz(o->operation_type)) ||
		    !(op->operation_name = dupz(o->operation_name)) ||
		    strv_out(&op->fields, &op->n_fields, &o->fields) < 0)
			return -ENOMEM;
	}
	e->allow_encoded_slash = p->allow_encoded_slash;
	e->websocket_credential_rewrite = p->websocket_credential_rewrite;
	e->request_body_credential_rewrite = p->request_body_credential_rewrite;
	e->allow_uninspected_credentials = p->allow_uninspected_credentials;
	e->provider_credentialed = p->provider_credentialed;
	e->advisor_proposed = p->advisor_proposed;
	e->graphql_max_body_bytes = p->graphql_max_body_bytes;
	e->json_rpc_max_body_bytes = p->json_rpc_max_body_bytes;
	if (p->credential_binding &&
	    (!(e->credential_binding =
		   msg_new(&openshell__sandbox__v1__network_credential_binding__descriptor)) ||
	     !(e->credential_binding->provider = dupz(p->credential_binding))))
		return -ENOMEM;
	if (p->mcp_strict_tool_names != POL_UNSET ||
	    p->mcp_allow_all_known_mcp_methods != POL_UNSET) {
		Openshell__Sandbox__V1__McpOptions *m =
		    msg_new(&openshell__sandbox__v1__mcp_options__descriptor);
		if (!(e->mcp = m))
			return -ENOMEM;
		if (p->mcp_strict_tool_names != POL_UNSET) {
			m->_strict_tool_names_case =
			    OPENSHELL__SANDBOX__V1__MCP_OPTIONS___STRICT_TOOL_NAMES_STRICT_TOOL_NAMES;
			m->strict_tool_names = p->mcp_strict_tool_names == POL_TRUE;
		}
		if (p->mcp_allow_all_known_mcp_methods != POL_UNSET) {
			m->_allow_all_known_mcp_methods_case =
			    OPENSHELL__SANDBOX__V1__MCP_OPTIONS___ALLOW_ALL_KNOWN_MCP_METHODS_ALLOW_ALL_KNOWN_MCP_METHODS;
			m->allow_all_known_mcp_methods =
			    p->mcp_allow_all_known_mcp_methods == POL_TRUE;
		}
	}
	return 0;
}

static int endpoint_out(const struct pol_endpoint *p, Endpoint *e)
{
	char cidr[64];
	if (!(e->host = dupz(p->host)) ||
	    arr(&e->allowed_ips, &e->n_allowed_ips, p->n_allowed_ips) < 0)
		return -ENOMEM;
	/* Both, as OpenShell's YAML conversion writes them: `ports` wins when read back. */
	e->port = p->n_ports ? p->ports[0] : 0;
	if (p->n_ports && !(e->ports = calloc(p->n_ports, sizeof(*e->ports))))
		return -ENOMEM;
	e->n_ports = p->n_ports;
	for (size_t i = 0; i < p->n_ports; i++)
		e->ports[i] = p->ports[i];
	for (size_t i = 0; i < p->n_allowed_ips; i++) {
		pol_cidr_format(&p->allowed_ips[i], cidr, sizeof(cidr));
		if (!(e->allowed_ips[i] = strdup(cidr)))
			return -ENOMEM;
	}
	return l7_out(p, e);
}

static int rule_out(const struct pol_network_rule *r, Openshell__Sandbox__V1__NetworkPolicyRule *o)
{
	if (!(o->name = dupz(r->name)) || arr(&o->endpoints, &o->n_endpoints, r->n_endpoints) < 0 ||
	    arr(&o->binaries, &o->n_binaries, r->binaries.n) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < r->n_endpoints; i++) {
		Endpoint *e = msg_new(&openshell__sandbox__v1__network_endpoint__descriptor);
		if (!(o->endpoints[i] = e) || endpoint_out(&r->endpoints[i], e) < 0)
			return -ENOMEM;
	}
	for (size_t i = 0; i < r->binaries.n; i++) {
		Openshell__Sandbox__V1__NetworkBinary *b =
		    msg_new(&openshell__sandbox__v1__network_binary__descriptor);
		if (!(o->binaries[i] = b) || !(b->path = dupz(r->binaries.v[i])))
			return -ENOMEM;
	}
	return 0;
}

static int middleware_out(const struct pol_middleware *m,
			  Openshell__Sandbox__V1__NetworkMiddlewareConfig *o, struct sv_err *err)
{
	Openshell__Sandbox__V1__MiddlewareEndpointSelector *sel;
	o->order = m->order;
	if (!(o->name = dupz(m->name)) || !(o->middleware = dupz(m->middleware)) ||
	    !(o->on_error = dupz(m->on_error)) ||
	    !(o->endpoints = sel =
		  msg_new(&openshell__sandbox__v1__middleware_endpoint_selector__descriptor)) ||
	    strv_out(&sel->include, &sel->n_include, &m->include) < 0 ||
	    strv_out(&sel->exclude, &sel->n_exclude, &m->exclude) < 0)
		return sv_err_set(err, ENOMEM, "out of memory");
	int r;
	if (m->config_json && (r = gw_struct_from_json(m->config_json, &o->config, err)) < 0) {
		sv_err_prefix(err, "network_middlewares[\"%.64s\"]", m->name ? m->name : "");
		return r;
	}
	return 0;
}

static int policy_out(const struct pol_policy *p, Policy *m, struct sv_err *err)
{
	m->version = p->version;
	Openshell__Sandbox__V1__FilesystemPolicy *fs;
	Openshell__Sandbox__V1__LandlockPolicy *ll;
	Openshell__Sandbox__V1__ProcessPolicy *pr;
	if (!(m->filesystem = fs =
		  msg_new(&openshell__sandbox__v1__filesystem_policy__descriptor)) ||
	    strv_out(&fs->read_only, &fs->n_read_only, &p->read_only) < 0 ||
	    strv_out(&fs->read_write, &fs->n_read_write, &p->read_write) < 0 ||
	    !(m->landlock = ll = msg_new(&openshell__sandbox__v1__landlock_policy__descriptor)) ||
	    !(ll->compatibility =
		  dupz(p->landlock_compat == POL_HARD_REQUIREMENT ? "hard_requirement"
								  : "best_effort")) ||
	    !(m->process = pr = msg_new(&openshell__sandbox__v1__process_policy__descriptor)) ||
	    !(pr->run_as_user = dupz(p->run_as_user)) ||
	    !(pr->run_as_group = dupz(p->run_as_group)) ||
	    arr(&m->network_policies, &m->n_network_policies, p->n_rules) < 0 ||
	    arr(&m->network_middlewares, &m->n_network_middlewares, p->n_middlewares) < 0)
		return sv_err_set(err, ENOMEM, "out of memory");
	fs->include_workdir = p->include_workdir;
	for (size_t i = 0; i < p->n_rules; i++) {
		Openshell__Sandbox__V1__SandboxPolicy__NetworkPoliciesEntry *ent = msg_new(
		    &openshell__sandbox__v1__sandbox_policy__network_policies_entry__descriptor);
		if (!(m->network_policies[i] = ent) || !(ent->key = dupz(p->rules[i].name)) ||
		    !(ent->value =
			  msg_new(&openshell__sandbox__v1__network_policy_rule__descriptor)) ||
		    rule_out(&p->rules[i], ent->value) < 0)
			return sv_err_set(err, ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < p->n_middlewares; i++) {
		Openshell__Sandbox__V1__SandboxPolicy__NetworkMiddlewaresEntry *ent = msg_new(
		    &openshell__sandbox__v1__sandbox_policy__network_middlewares_entry__descriptor);
		if (!(m->network_middlewares[i] = ent) ||
		    !(ent->key = dupz(p->middlewares[i].name)) ||
		    !(ent->value =
			  msg_new(&openshell__sandbox__v1__network_middleware_config__descriptor)))
			return sv_err_set(err, ENOMEM, "out of memory");
		int r = middleware_out(&p->middlewares[i], ent->value, err);
		if (r < 0)
			return r;
	}
	return 0;
}

int gw_policy_to_proto(const struct pol_policy *p, Policy **out, struct sv_err *err)
{
	Policy *m = msg_new(&openshell__sandbox__v1__sandbox_policy__descriptor);
	if (!m)
		return sv_err_set(err, ENOMEM, "out of memory");
	int r = policy_out(p, m, err);
	if (r < 0) {
		gw_policy_proto_free(m);
		return r;
	}
	*out = m;
	return 0;
}

void gw_policy_proto_free(Policy *msg)
{
	if (msg)
		protobuf_c_message_free_unpacked(&msg->base, NULL);
}
