/* The policy model's lifetime: freeing, deep copying and comparing every field, layer 7 and
 * middlewares included.
 *
 * One place knows the whole shape of struct pol_policy, so a field added to policy.h is freed,
 * copied and compared here or nowhere. Nothing here validates: a copy is as valid as its source.
 */
#include "policy.h"

#include <stdlib.h>
#include <string.h>

/* --- freeing ------------------------------------------------------------------------------- */

static void matcher_clear(struct pol_matcher *m)
{
	free(m->key);
	pol_strv_free(&m->globs);
}

static void matchers_free(struct pol_matcher *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		matcher_clear(&v[i]);
	free(v);
}

static void l7_rule_clear(struct pol_l7_rule *r)
{
	free(r->method);
	free(r->path);
	free(r->command);
	matchers_free(r->query, r->n_query);
	free(r->operation_type);
	free(r->operation_name);
	pol_strv_free(&r->fields);
	matchers_free(r->tool, r->tool ? 1 : 0);
	matchers_free(r->params, r->n_params);
}

static void l7_rules_free(struct pol_l7_rule *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		l7_rule_clear(&v[i]);
	free(v);
}

static void gql_op_clear(struct pol_gql_op *o)
{
	free(o->id);
	free(o->operation_type);
	free(o->operation_name);
	pol_strv_free(&o->fields);
}

void pol_endpoint_free(struct pol_endpoint *e)
{
	free(e->host);
	free(e->ports);
	free(e->allowed_ips);
	free(e->path);
	free(e->access_raw);
	l7_rules_free(e->rules, e->n_rules);
	l7_rules_free(e->deny_rules, e->n_deny_rules);
	free(e->credential_signing);
	free(e->signing_service);
	free(e->signing_region);
	free(e->credential_binding);
	free(e->persisted_queries);
	for (size_t i = 0; e->gql_ops && i < e->n_gql_ops; i++)
		gql_op_clear(&e->gql_ops[i]);
	free(e->gql_ops);
	memset(e, 0, sizeof(*e));
}

void pol_network_rule_free(struct pol_network_rule *r)
{
	free(r->name);
	for (size_t i = 0; r->endpoints && i < r->n_endpoints; i++)
		pol_endpoint_free(&r->endpoints[i]);
	free(r->endpoints);
	pol_strv_free(&r->binaries);
	memset(r, 0, sizeof(*r));
}

void pol_middleware_free(struct pol_middleware *m)
{
	free(m->name);
	free(m->middleware);
	free(m->on_error);
	free(m->config_json);
	pol_strv_free(&m->include);
	pol_strv_free(&m->exclude);
	memset(m, 0, sizeof(*m));
}

void pol_free(struct pol_policy *p)
{
	pol_strv_free(&p->read_only);
	pol_strv_free(&p->read_write);
	free(p->run_as_user);
	free(p->run_as_group);
	for (size_t i = 0; p->rules && i < p->n_rules; i++)
		pol_network_rule_free(&p->rules[i]);
	free(p->rules);
	for (size_t i = 0; p->middlewares && i < p->n_middlewares; i++)
		pol_middleware_free(&p->middlewares[i]);
	free(p->middlewares);
	free(p->source);
	pol_init(p);
}

/* --- copying ------------------------------------------------------------------------------- */
/* Every helper fills a zeroed destination in place; on failure what it copied stays there for
 * the free functions above (array counts are set as soon as the array exists). */

static int str_copy(char **d, const char *s)
{
	*d = s ? strdup(s) : NULL;
	return s && !*d ? -ENOMEM : 0;
}

static int strv_copy(struct pol_strv *d, const struct pol_strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		if (pol_strv_push(d, s->v[i]) < 0)
			return -ENOMEM;
	return 0;
}

/* calloc(@n) into *@d, or NULL for n == 0. */
static int arr_new(void *d, size_t n, size_t size)
{
	void **p = d;
	*p = n ? calloc(n, size) : NULL;
	return n && !*p ? -ENOMEM : 0;
}

static int matcher_copy(struct pol_matcher *d, const struct pol_matcher *s)
{
	d->any = s->any;
	if (str_copy(&d->key, s->key) < 0)
		return -ENOMEM;
	return strv_copy(&d->globs, &s->globs);
}

static int matchers_copy(struct pol_matcher **d, size_t *dn, const struct pol_matcher *s, size_t n)
{
	if (arr_new(d, n, sizeof(**d)) < 0)
		return -ENOMEM;
	*dn = n;
	for (size_t i = 0; i < n; i++)
		if (matcher_copy(&(*d)[i], &s[i]) < 0)
			return -ENOMEM;
	return 0;
}

static int l7_rule_copy(struct pol_l7_rule *d, const struct pol_l7_rule *s)
{
	size_t one = 0;
	if (str_copy(&d->method, s->method) < 0 || str_copy(&d->path, s->path) < 0 ||
	    str_copy(&d->command, s->command) < 0 ||
	    matchers_copy(&d->query, &d->n_query, s->query, s->n_query) < 0 ||
	    str_copy(&d->operation_type, s->operation_type) < 0 ||
	    str_copy(&d->operation_name, s->operation_name) < 0 ||
	    strv_copy(&d->fields, &s->fields) < 0 ||
	    matchers_copy(&d->tool, &one, s->tool, s->tool ? 1 : 0) < 0 ||
	    matchers_copy(&d->params, &d->n_params, s->params, s->n_params) < 0)
		return -ENOMEM;
	return 0;
}

static int l7_rules_copy(struct pol_l7_rule **d, size_t *dn, const struct pol_l7_rule *s, size_t n)
{
	if (arr_new(d, n, sizeof(**d)) < 0)
		return -ENOMEM;
	*dn = n;
	for (size_t i = 0; i < n; i++)
		if (l7_rule_copy(&(*d)[i], &s[i]) < 0)
			return -ENOMEM;
	return 0;
}

static int gql_op_copy(struct pol_gql_op *d, const struct pol_gql_op *s)
{
	if (str_copy(&d->id, s->id) < 0 || str_copy(&d->operation_type, s->operation_type) < 0 ||
	    str_copy(&d->operation_name, s->operation_name) < 0 ||
	    strv_copy(&d->fields, &s->fields) < 0)
		return -ENOMEM;
	return 0;
}

static int endpoint_copy(struct pol_endpoint *d, const struct pol_endpoint *s)
{
	/* Scalars first (a struct copy), then every owned pointer replaced by its own copy. */
	*d = *s;
	d->host = NULL;
	d->ports = NULL;
	d->allowed_ips = NULL;
	d->path = d->access_raw = d->credential_signing = d->signing_service = NULL;
	d->signing_region = d->credential_binding = d->persisted_queries = NULL;
	d->rules = d->deny_rules = NULL;
	d->gql_ops = NULL;
	d->n_ports = d->n_allowed_ips = d->n_rules = d->n_deny_rules = d->n_gql_ops = 0;
	if (str_copy(&d->host, s->host) < 0 ||
	    arr_new(&d->ports, s->n_ports, sizeof(*d->ports)) < 0)
		return -ENOMEM;
	if (s->n_ports)
		memcpy(d->ports, s->ports, s->n_ports * sizeof(*d->ports));
	d->n_ports = s->n_ports;
	if (arr_new(&d->allowed_ips, s->n_allowed_ips, sizeof(*d->allowed_ips)) < 0)
		return -ENOMEM;
	if (s->n_allowed_ips)
		memcpy(d->allowed_ips, s->allowed_ips, s->n_allowed_ips * sizeof(*d->allowed_ips));
	d->n_allowed_ips = s->n_allowed_ips;
	if (str_copy(&d->path, s->path) < 0 || str_copy(&d->access_raw, s->access_raw) < 0 ||
	    l7_rules_copy(&d->rules, &d->n_rules, s->rules, s->n_rules) < 0 ||
	    l7_rules_copy(&d->deny_rules, &d->n_deny_rules, s->deny_rules, s->n_deny_rules) < 0 ||
	    str_copy(&d->credential_signing, s->credential_signing) < 0 ||
	    str_copy(&d->signing_service, s->signing_service) < 0 ||
	    str_copy(&d->signing_region, s->signing_region) < 0 ||
	    str_copy(&d->credential_binding, s->credential_binding) < 0 ||
	    str_copy(&d->persisted_queries, s->persisted_queries) < 0 ||
	    arr_new(&d->gql_ops, s->n_gql_ops, sizeof(*d->gql_ops)) < 0)
		return -ENOMEM;
	d->n_gql_ops = s->n_gql_ops;
	for (size_t i = 0; i < s->n_gql_ops; i++)
		if (gql_op_copy(&d->gql_ops[i], &s->gql_ops[i]) < 0)
			return -ENOMEM;
	return 0;
}

static int rule_copy(struct pol_network_rule *d, const struct pol_network_rule *s)
{
	if (str_copy(&d->name, s->name) < 0 ||
	    arr_new(&d->endpoints, s->n_endpoints, sizeof(*d->endpoints)) < 0)
		return -ENOMEM;
	d->n_endpoints = s->n_endpoints;
	for (size_t i = 0; i < s->n_endpoints; i++)
		if (endpoint_copy(&d->endpoints[i], &s->endpoints[i]) < 0)
			return -ENOMEM;
	return strv_copy(&d->binaries, &s->binaries);
}

static int middleware_copy(struct pol_middleware *d, const struct pol_middleware *s)
{
	d->order = s->order;
	if (str_copy(&d->name, s->name) < 0 || str_copy(&d->middleware, s->middleware) < 0 ||
	    str_copy(&d->on_error, s->on_error) < 0 ||
	    str_copy(&d->config_json, s->config_json) < 0 ||
	    strv_copy(&d->include, &s->include) < 0 || strv_copy(&d->exclude, &s->exclude) < 0)
		return -ENOMEM;
	return 0;
}

static int policy_copy(const struct pol_policy *s, struct pol_policy *d)
{
	d->version = s->version;
	d->include_workdir = s->include_workdir;
	d->landlock_compat = s->landlock_compat;
	if (strv_copy(&d->read_only, &s->read_only) < 0 ||
	    strv_copy(&d->read_write, &s->read_write) < 0 ||
	    str_copy(&d->run_as_user, s->run_as_user) < 0 ||
	    str_copy(&d->run_as_group, s->run_as_group) < 0 ||
	    str_copy(&d->source, s->source) < 0 ||
	    arr_new(&d->rules, s->n_rules, sizeof(*d->rules)) < 0)
		return -ENOMEM;
	d->n_rules = s->n_rules;
	for (size_t i = 0; i < s->n_rules; i++)
		if (rule_copy(&d->rules[i], &s->rules[i]) < 0)
			return -ENOMEM;
	if (arr_new(&d->middlewares, s->n_middlewares, sizeof(*d->middlewares)) < 0)
		return -ENOMEM;
	d->n_middlewares = s->n_middlewares;
	for (size_t i = 0; i < s->n_middlewares; i++)
		if (middleware_copy(&d->middlewares[i], &s->middlewares[i]) < 0)
			return -ENOMEM;
	return 0;
}

int pol_copy(const struct pol_policy *src, struct pol_policy *dst)
{
	pol_init(dst);
	if (policy_copy(src, dst) == 0)
		return 0;
	pol_free(dst);
	return -ENOMEM;
}

/* --- comparing ----------------------------------------------------------------------------- */

static bool str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool strv_eq(const struct pol_strv *a, const struct pol_strv *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i], b->v[i]) != 0)
			return false;
	return true;
}

static bool mem_eq(const void *a, const void *b, size_t n)
{
	return n == 0 || memcmp(a, b, n) == 0;
}

static bool matchers_eq(const struct pol_matcher *a, const struct pol_matcher *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!str_eq(a[i].key, b[i].key) || a[i].any != b[i].any ||
		    !strv_eq(&a[i].globs, &b[i].globs))
			return false;
	return true;
}

static bool l7_rules_eq(const struct pol_l7_rule *a, const struct pol_l7_rule *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct pol_l7_rule *x = &a[i], *y = &b[i];
		if (!str_eq(x->method, y->method) || !str_eq(x->path, y->path) ||
		    !str_eq(x->command, y->command) || x->n_query != y->n_query ||
		    !matchers_eq(x->query, y->query, x->n_query) ||
		    !str_eq(x->operation_type, y->operation_type) ||
		    !str_eq(x->operation_name, y->operation_name) ||
		    !strv_eq(&x->fields, &y->fields) || !x->tool != !y->tool ||
		    (x->tool && !matchers_eq(x->tool, y->tool, 1)) || x->n_params != y->n_params ||
		    !matchers_eq(x->params, y->params, x->n_params))
			return false;
	}
	return true;
}

bool pol_endpoint_equal(const struct pol_endpoint *a, const struct pol_endpoint *b)
{
	if (a->kind != b->kind || !str_eq(a->host, b->host) || a->n_ports != b->n_ports ||
	    !mem_eq(a->ports, b->ports, a->n_ports * sizeof(*a->ports)) ||
	    a->n_allowed_ips != b->n_allowed_ips ||
	    !mem_eq(a->allowed_ips, b->allowed_ips, a->n_allowed_ips * sizeof(*a->allowed_ips)))
		return false;
	if (!str_eq(a->path, b->path) || a->protocol != b->protocol || a->tls != b->tls ||
	    a->tls_set != b->tls_set || a->enforcement != b->enforcement ||
	    a->access != b->access || !str_eq(a->access_raw, b->access_raw) ||
	    a->rules_set != b->rules_set || a->n_rules != b->n_rules ||
	    !l7_rules_eq(a->rules, b->rules, a->n_rules) ||
	    a->deny_rules_set != b->deny_rules_set || a->n_deny_rules != b->n_deny_rules ||
	    !l7_rules_eq(a->deny_rules, b->deny_rules, a->n_deny_rules))
		return false;
	if (a->allow_encoded_slash != b->allow_encoded_slash ||
	    a->websocket_credential_rewrite != b->websocket_credential_rewrite ||
	    a->request_body_credential_rewrite != b->request_body_credential_rewrite ||
	    a->allow_uninspected_credentials != b->allow_uninspected_credentials ||
	    a->provider_credentialed != b->provider_credentialed ||
	    a->advisor_proposed != b->advisor_proposed ||
	    !str_eq(a->credential_signing, b->credential_signing) ||
	    !str_eq(a->signing_service, b->signing_service) ||
	    !str_eq(a->signing_region, b->signing_region) ||
	    !str_eq(a->credential_binding, b->credential_binding))
		return false;
	if (!str_eq(a->persisted_queries, b->persisted_queries) || a->n_gql_ops != b->n_gql_ops ||
	    a->graphql_max_body_bytes != b->graphql_max_body_bytes ||
	    a->json_rpc_max_body_bytes != b->json_rpc_max_body_bytes ||
	    a->mcp_strict_tool_names != b->mcp_strict_tool_names ||
	    a->mcp_allow_all_known_mcp_methods != b->mcp_allow_all_known_mcp_methods)
		return false;
	for (size_t i = 0; i < a->n_gql_ops; i++) {
		const struct pol_gql_op *x = &a->gql_ops[i], *y = &b->gql_ops[i];
		if (!str_eq(x->id, y->id) || !str_eq(x->operation_type, y->operation_type) ||
		    !str_eq(x->operation_name, y->operation_name) ||
		    !strv_eq(&x->fields, &y->fields))
			return false;
	}
	return true;
}

bool pol_network_equal(const struct pol_policy *a, const struct pol_policy *b)
{
	if (a->n_rules != b->n_rules || a->n_middlewares != b->n_middlewares)
		return false;
	for (size_t i = 0; i < a->n_rules; i++) {
		const struct pol_network_rule *x = &a->rules[i], *y = &b->rules[i];
		if (!str_eq(x->name, y->name) || x->n_endpoints != y->n_endpoints ||
		    !strv_eq(&x->binaries, &y->binaries))
			return false;
		for (size_t j = 0; j < x->n_endpoints; j++)
			if (!pol_endpoint_equal(&x->endpoints[j], &y->endpoints[j]))
				return false;
	}
	for (size_t i = 0; i < a->n_middlewares; i++) {
		const struct pol_middleware *x = &a->middlewares[i], *y = &b->middlewares[i];
		if (!str_eq(x->name, y->name) || !str_eq(x->middleware, y->middleware) ||
		    !str_eq(x->on_error, y->on_error) || !str_eq(x->config_json, y->config_json) ||
		    !strv_eq(&x->include, &y->include) || !strv_eq(&x->exclude, &y->exclude) ||
		    x->order != y->order)
			return false;
	}
	return true;
}

bool pol_equal(const struct pol_policy *a, const struct pol_policy *b)
{
	return a->version == b->version && a->include_workdir == b->include_workdir &&
	       strv_eq(&a->read_only, &b->read_only) && strv_eq(&a->read_write, &b->read_write) &&
	       a->landlock_compat == b->landlock_compat && str_eq(a->run_as_user, b->run_as_user) &&
	       str_eq(a->run_as_group, b->run_as_group) && pol_network_equal(a, b);
}
