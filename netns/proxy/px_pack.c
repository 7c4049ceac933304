/* The network rules of a policy as a length-prefixed binary blob (see px_pack.h).
 *
 * Integers are little-endian; a string is a u32 length and its bytes (0xffffffff: NULL; no NUL
 * inside); a list is a u32 count and its items. The reader never allocates more than the bytes
 * left could describe, and never trusts an enum, a count or a length it has not checked.
 */
#include "netns/proxy/px_pack.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define PK_MAGIC   0x31505850u /* "PXP1" */
#define PK_NULL	   0xffffffffu
#define PK_STR_MAX ((uint32_t)POL_FILE_MAX) /* longest string: a whole policy file */

/* ------------------------------------------------------------------------------- writing */

struct wr {
	uint8_t *buf;
	size_t len, cap;
	int err;
};

static void put(struct wr *w, const void *p, size_t n)
{
	if (w->err)
		return;
	if (w->len + n > PX_PACK_MAX) {
		w->err = -E2BIG;
		return;
	}
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap : 1024;
		while (cap < w->len + n)
			cap *= 2;
		uint8_t *nb = realloc(w->buf, cap);
		if (!nb) {
			w->err = -ENOMEM;
			return;
		}
		w->buf = nb;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
}

static void put_u8(struct wr *w, unsigned v)
{
	uint8_t b = (uint8_t)v;
	put(w, &b, 1);
}

static void put_u16(struct wr *w, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
	put(w, b, 2);
}

static void put_u32(struct wr *w, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
	put(w, b, 4);
}

static void put_count(struct wr *w, size_t n)
{
	if (n >= PK_NULL) {
		w->err = w->err ? w->err : -E2BIG;
		return;
	}
	put_u32(w, (uint32_t)n);
}

static void put_str(struct wr *w, const char *s)
{
	if (!s) {
		put_u32(w, PK_NULL);
		return;
	}
	size_t n = strlen(s);
	if (n > PK_STR_MAX) {
		w->err = w->err ? w->err : -E2BIG;
		return;
	}
	put_u32(w, (uint32_t)n);
	put(w, s, n);
}

static void put_strv(struct wr *w, const struct pol_strv *sv)
{
	put_count(w, sv->n);
	for (size_t i = 0; i < sv->n; i++)
		put_str(w, sv->v[i]);
}

static void put_matcher(struct wr *w, const struct pol_matcher *m)
{
	put_str(w, m->key);
	put_strv(w, &m->globs);
	put_u8(w, m->any);
}

static void put_l7_rule(struct wr *w, const struct pol_l7_rule *r)
{
	put_str(w, r->method);
	put_str(w, r->path);
	put_str(w, r->command);
	put_count(w, r->n_query);
	for (size_t i = 0; i < r->n_query; i++)
		put_matcher(w, &r->query[i]);
	put_str(w, r->operation_type);
	put_str(w, r->operation_name);
	put_strv(w, &r->fields);
	put_u8(w, r->tool != NULL);
	if (r->tool)
		put_matcher(w, r->tool);
	put_count(w, r->n_params);
	for (size_t i = 0; i < r->n_params; i++)
		put_matcher(w, &r->params[i]);
}

static void put_endpoint(struct wr *w, const struct pol_endpoint *e)
{
	put_u8(w, e->kind);
	put_str(w, e->host);
	put_count(w, e->n_ports);
	for (size_t i = 0; i < e->n_ports; i++)
		put_u16(w, e->ports[i]);
	put_count(w, e->n_allowed_ips);
	for (size_t i = 0; i < e->n_allowed_ips; i++) {
		put_u8(w, e->allowed_ips[i].family);
		put_u8(w, e->allowed_ips[i].prefix);
		put(w, e->allowed_ips[i].addr, sizeof(e->allowed_ips[i].addr));
	}
	put_str(w, e->path);
	put_u8(w, e->protocol);
	put_u8(w, e->tls);
	put_u8(w, e->tls_set);
	put_u8(w, e->enforcement);
	put_u8(w, e->access);
	put_str(w, e->access_raw);
	put_count(w, e->n_rules);
	for (size_t i = 0; i < e->n_rules; i++)
		put_l7_rule(w, &e->rules[i]);
	put_u8(w, e->rules_set);
	put_count(w, e->n_deny_rules);
	for (size_t i = 0; i < e->n_deny_rules; i++)
		put_l7_rule(w, &e->deny_rules[i]);
	put_u8(w, e->deny_rules_set);
	put_u8(w, e->allow_encoded_slash);
	put_u8(w, e->websocket_credential_rewrite);
	put_u8(w, e->request_body_credential_rewrite);
	put_u8(w, e->allow_uninspected_credentials);
	put_u8(w, e->provider_credentialed);
	put_u8(w, e->advisor_proposed);
	put_str(w, e->credential_signing);
	put_str(w, e->signing_service);
	put_str(w, e->signing_region);
	put_str(w, e->credential_binding);
	put_str(w, e->persisted_queries);
	put_count(w, e->n_gql_ops);
	for (size_t i = 0; i < e->n_gql_ops; i++) {
		put_str(w, e->gql_ops[i].id);
		put_str(w, e->gql_ops[i].operation_type);
		put_str(w, e->gql_ops[i].operation_name);
		put_strv(w, &e->gql_ops[i].fields);
	}
	put_u32(w, e->graphql_max_body_bytes);
	put_u32(w, e->json_rpc_max_body_bytes);
	put_u8(w, e->mcp_strict_tool_names);
	put_u8(w, e->mcp_allow_all_known_mcp_methods);
}

int px_pack_policy(const struct pol_policy *p, uint8_t **out, size_t *len)
{
	struct wr w = {0};
	put_u32(&w, PK_MAGIC);
	put_str(&w, p->source);
	put_count(&w, p->n_rules);
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct pol_network_rule *r = &p->rules[i];
		put_str(&w, r->name);
		put_count(&w, r->n_endpoints);
		for (size_t k = 0; k < r->n_endpoints; k++)
			put_endpoint(&w, &r->endpoints[k]);
		put_strv(&w, &r->binaries);
	}
	put_count(&w, p->n_middlewares);
	for (size_t i = 0; i < p->n_middlewares; i++) {
		const struct pol_middleware *m = &p->middlewares[i];
		put_str(&w, m->name);
		put_str(&w, m->middleware);
		put_str(&w, m->on_error);
		put_str(&w, m->config_json);
		put_strv(&w, &m->include);
		put_strv(&w, &m->exclude);
		put_u32(&w, (uint32_t)m->order);
	}
	if (w.err) {
		free(w.buf);
		return w.err;
	}
	*out = w.buf;
	*len = w.len;
	return 0;
}

/* ------------------------------------------------------------------------------- reading */

struct rd {
	const uint8_t *buf;
	size_t len, off;
	int err; /* first failure, sticky */
	struct sv_err *e;
};

static bool fail(struct rd *r, int code, const char *what)
{
	if (!r->err) {
		r->err = code;
		sv_err_set(r->e, code == -ENOMEM ? ENOMEM : EINVAL, "policy blob: offset %zu: %s",
			   r->off, what);
	}
	return false;
}

static bool take(struct rd *r, void *dst, size_t n)
{
	if (r->err)
		return false;
	if (r->len - r->off < n)
		return fail(r, -EINVAL, "truncated");
	memcpy(dst, r->buf + r->off, n);
	r->off += n;
	return true;
}

static uint32_t get_u32(struct rd *r)
{
	uint8_t b[4] = {0};
	if (!take(r, b, 4))
		return 0;
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint16_t get_u16(struct rd *r)
{
	uint8_t b[2] = {0};
	if (!take(r, b, 2))
		return 0;
	return (uint16_t)(b[0] | b[1] << 8);
}

/* An enum or a flag: any value above @max is malformed. */
static unsigned get_u8(struct rd *r, unsigned max, const char *what)
{
	uint8_t b = 0;
	if (!take(r, &b, 1))
		return 0;
	if (b > max) {
		fail(r, -EINVAL, what);
		return 0;
	}
	return b;
}

static bool get_bool(struct rd *r)
{
	return get_u8(r, 1, "flag out of range") != 0;
}

/* A count of items each at least @min_size bytes long, and at most @max. */
static size_t get_count(struct rd *r, size_t max, size_t min_size, const char *what)
{
	uint32_t n = get_u32(r);
	if (r->err)
		return 0;
	if (n > max || (size_t)n * min_size > r->len - r->off) {
		fail(r, -EINVAL, what);
		return 0;
	}
	return n;
}

static void *get_array(struct rd *r, size_t n, size_t size)
{
	if (r->err || n == 0)
		return NULL;
	void *p = calloc(n, size);
	if (!p)
		fail(r, -ENOMEM, "out of memory");
	return p;
}

/* NULL with r->err unset: the string was absent. */
static char *get_str(struct rd *r)
{
	uint32_t n = get_u32(r);
	if (r->err || n == PK_NULL)
		return NULL;
	if (n > PK_STR_MAX || n > r->len - r->off) {
		fail(r, -EINVAL, "string too long");
		return NULL;
	}
	if (memchr(r->buf + r->off, '\0', n)) {
		fail(r, -EINVAL, "NUL inside a string");
		return NULL;
	}
	char *s = malloc((size_t)n + 1);
	if (!s) {
		fail(r, -ENOMEM, "out of memory");
		return NULL;
	}
	memcpy(s, r->buf + r->off, n);
	s[n] = '\0';
	r->off += n;
	return s;
}

/* A string that must be present. */
static char *get_str_req(struct rd *r, const char *what)
{
	char *s = get_str(r);
	if (!s && !r->err)
		fail(r, -EINVAL, what);
	return s;
}

static void get_strv(struct rd *r, struct pol_strv *sv)
{
	size_t n = get_count(r, PX_PACK_MAX, 4, "too many strings");
	if (!(sv->v = get_array(r, n, sizeof(char *))))
		return;
	for (size_t i = 0; i < n && !r->err; i++) {
		sv->v[i] = get_str_req(r, "absent string in a list");
		if (sv->v[i])
			sv->n = i + 1;
	}
}

static void get_matcher(struct rd *r, struct pol_matcher *m)
{
	m->key = get_str(r);
	get_strv(r, &m->globs);
	m->any = get_bool(r);
}

static void get_matchers(struct rd *r, struct pol_matcher **out, size_t *n_out)
{
	size_t n = get_count(r, POL_RULE_ITEMS_MAX, 9, "too many matchers");
	if (!(*out = get_array(r, n, sizeof(**out))))
		return;
	for (size_t i = 0; i < n && !r->err; i++) {
		*n_out = i + 1;
		get_matcher(r, &(*out)[i]);
	}
}

static void get_l7_rule(struct rd *r, struct pol_l7_rule *l)
{
	l->method = get_str(r);
	l->path = get_str(r);
	l->command = get_str(r);
	get_matchers(r, &l->query, &l->n_query);
	l->operation_type = get_str(r);
	l->operation_name = get_str(r);
	get_strv(r, &l->fields);
	if (get_bool(r) && !r->err) {
		if ((l->tool = get_array(r, 1, sizeof(*l->tool))))
			get_matcher(r, l->tool);
	}
	get_matchers(r, &l->params, &l->n_params);
}

static void get_l7_rules(struct rd *r, struct pol_l7_rule **out, size_t *n_out)
{
	size_t n = get_count(r, POL_RULE_ITEMS_MAX, 30, "too many layer-7 rules");
	if (!(*out = get_array(r, n, sizeof(**out))))
		return;
	for (size_t i = 0; i < n && !r->err; i++) {
		*n_out = i + 1;
		get_l7_rule(r, &(*out)[i]);
	}
}

static void get_endpoint(struct rd *r, struct pol_endpoint *e, size_t *ips_left)
{
	e->kind = (enum pol_host_kind)get_u8(r, POL_HOST_IPV6, "host kind out of range");
	e->host = get_str(r);
	if (!r->err && (e->host == NULL) != (e->kind == POL_HOST_NONE))
		fail(r, -EINVAL, "host does not match its kind");
	size_t n = get_count(r, POL_PORTS_MAX, 2, "too many ports");
	if ((e->ports = get_array(r, n, sizeof(*e->ports)))) {
		for (size_t i = 0; i < n && !r->err; i++)
			e->ports[i] = get_u16(r);
		e->n_ports = n;
	}
	n = get_count(r, *ips_left, 18, "too many allowed_ips");
	*ips_left -= n;
	if ((e->allowed_ips = get_array(r, n, sizeof(*e->allowed_ips)))) {
		for (size_t i = 0; i < n && !r->err; i++) {
			struct pol_cidr *c = &e->allowed_ips[i];
			take(r, &c->family, 1);
			take(r, &c->prefix, 1);
			take(r, c->addr, sizeof(c->addr));
			if (!r->err && !((c->family == 4 && c->prefix <= 32) ||
					 (c->family == 6 && c->prefix <= 128)))
				fail(r, -EINVAL, "allowed_ips entry out of range");
		}
		e->n_allowed_ips = n;
	}
	e->path = get_str(r);
	e->protocol = (enum pol_protocol)get_u8(r, POL_PROTO_MCP, "protocol out of range");
	e->tls = (enum pol_tls)get_u8(r, POL_TLS_PASSTHROUGH, "tls out of range");
	e->tls_set = get_bool(r);
	e->enforcement =
	    (enum pol_enforcement)get_u8(r, POL_ENFORCE_ENFORCE, "enforcement out of range");
	e->access = (enum pol_access)get_u8(r, POL_ACCESS_UNKNOWN, "access out of range");
	e->access_raw = get_str(r);
	get_l7_rules(r, &e->rules, &e->n_rules);
	e->rules_set = get_bool(r);
	get_l7_rules(r, &e->deny_rules, &e->n_deny_rules);
	e->deny_rules_set = get_bool(r);
	e->allow_encoded_slash = get_bool(r);
	e->websocket_credential_rewrite = get_bool(r);
	e->request_body_credential_rewrite = get_bool(r);
	e->allow_uninspected_credentials = get_bool(r);
	e->provider_credentialed = get_bool(r);
	e->advisor_proposed = get_bool(r);
	e->credential_signing = get_str(r);
	e->signing_service = get_str(r);
	e->signing_region = get_str(r);
	e->credential_binding = get_str(r);
	e->persisted_queries = get_str(r);
	n = get_count(r, POL_RULE_ITEMS_MAX, 16, "too many persisted queries");
	if ((e->gql_ops = get_array(r, n, sizeof(*e->gql_ops)))) {
		for (size_t i = 0; i < n && !r->err; i++) {
			struct pol_gql_op *op = &e->gql_ops[i];
			e->n_gql_ops = i + 1;
			op->id = get_str_req(r, "persisted query without an id");
			op->operation_type = get_str(r);
			op->operation_name = get_str(r);
			get_strv(r, &op->fields);
		}
	}
	e->graphql_max_body_bytes = get_u32(r);
	e->json_rpc_max_body_bytes = get_u32(r);
	e->mcp_strict_tool_names = (enum pol_tristate)get_u8(r, POL_TRUE, "tristate out of range");
	e->mcp_allow_all_known_mcp_methods =
	    (enum pol_tristate)get_u8(r, POL_TRUE, "tristate out of range");
}

int px_unpack_policy(const uint8_t *buf, size_t len, struct pol_policy *out, struct sv_err *err)
{
	struct rd r = {.buf = buf, .len = len, .e = err};
	pol_init(out);
	if (len > PX_PACK_MAX)
		fail(&r, -EINVAL, "blob too large");
	if (get_u32(&r) != PK_MAGIC && !r.err)
		fail(&r, -EINVAL, "bad magic");
	out->source = get_str(&r);
	size_t n = get_count(&r, POL_RULES_MAX, 12, "too many network rules");
	if ((out->rules = get_array(&r, n, sizeof(*out->rules)))) {
		size_t ips_left = POL_ENDPOINT_IPS_MAX;
		for (size_t i = 0; i < n && !r.err; i++) {
			struct pol_network_rule *nr = &out->rules[i];
			out->n_rules = i + 1;
			nr->name = get_str_req(&r, "network rule without a name");
			size_t ne = get_count(&r, POL_RULE_ITEMS_MAX, 40, "too many endpoints");
			if ((nr->endpoints = get_array(&r, ne, sizeof(*nr->endpoints)))) {
				for (size_t k = 0; k < ne && !r.err; k++) {
					nr->n_endpoints = k + 1;
					get_endpoint(&r, &nr->endpoints[k], &ips_left);
				}
			}
			get_strv(&r, &nr->binaries);
		}
	}
	n = get_count(&r, POL_RULES_MAX, 28, "too many middlewares");
	if ((out->middlewares = get_array(&r, n, sizeof(*out->middlewares)))) {
		for (size_t i = 0; i < n && !r.err; i++) {
			struct pol_middleware *m = &out->middlewares[i];
			out->n_middlewares = i + 1;
			m->name = get_str_req(&r, "middleware without a name");
			m->middleware = get_str(&r);
			m->on_error = get_str(&r);
			m->config_json = get_str(&r);
			get_strv(&r, &m->include);
			get_strv(&r, &m->exclude);
			m->order = (int32_t)get_u32(&r);
		}
	}
	if (!r.err && r.off != r.len)
		fail(&r, -EINVAL, "trailing bytes");
	if (r.err) {
		pol_free(out);
		return r.err;
	}
	return 0;
}
