/* The INI spelling of an endpoint's layer-7 and credential fields ([network.NAME.endpoint.ID])
 * and of network middlewares ([middleware.NAME]): reading keys and writing them back.
 *
 * Keys map one to one onto struct pol_endpoint / pol_middleware (docs/policy.md). Values that
 * INI cannot carry raw are written quoted with %XX escapes, so pol_describe's text always reads
 * back to the same model. Meaning is checked later by pol_validate_full; here only syntax.
 */
#include "policy_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor/json.h"

static int oom(struct sv_err *err)
{
	return sv_err_set(err, ENOMEM, "out of memory");
}

static int hexval(char c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
				      : -1;
}

/* Percent-decode @s[0..n) into a new string; NUL and bad escapes refused. */
static int pct_decode(const char *s, size_t n, char **out, struct sv_err *err)
{
	char *d = malloc(n + 1);
	size_t o = 0;
	if (!d)
		return oom(err);
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '%') {
			d[o++] = s[i];
			continue;
		}
		int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
		int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
			free(d);
			return sv_err_set(err, EINVAL, "bad %%XX escape in '%.64s'", s);
		}
		d[o++] = (char)(hi * 16 + lo);
		i += 2;
	}
	d[o] = '\0';
	*out = d;
	return 0;
}

int pol_ini_value(const char *v, char **out, struct sv_err *err)
{
	size_t n = strlen(v);
	if (v[0] != '"') {
		*out = strdup(v);
		return *out ? 0 : oom(err);
	}
	if (n < 2 || v[n - 1] != '"')
		return sv_err_set(err, EINVAL, "a quoted value must end in '\"' (got '%.64s')", v);
	return pct_decode(v + 1, n - 2, out, err);
}

int pol_ini_key_decode(const char *k, size_t n, char **out, struct sv_err *err)
{
	return pct_decode(k, n, out, err);
}

/* --- writing values ------------------------------------------------------------------------ */

static bool raw_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || s[0] == '"' || s[0] == ' ' || s[0] == '\t' || s[n - 1] == ' ' ||
	    s[n - 1] == '\t')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			return false;
		if ((c == ';' || c == '#') && i > 0 && (s[i - 1] == ' ' || s[i - 1] == '\t'))
			return false;
	}
	return true;
}

void pol_ini_put_value(struct pol_sbuf *b, const char *s)
{
	if (raw_ok(s)) {
		pol_sbuf_put(b, "%s", s);
		return;
	}
	pol_sbuf_put(b, "\"");
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p <= 0x20 || *p == 0x7f || *p == '%' || *p == '"' || *p == ';' || *p == '#')
			pol_sbuf_put(b, "%%%02X", *p);
		else
			pol_sbuf_put(b, "%c", *p);
	}
	pol_sbuf_put(b, "\"");
}

/* A map key inside an INI key: %XX for what would end or split the key, and for the '.' of a
 * key ending in ".any" (which would read as the any-list suffix). */
void pol_ini_put_key(struct pol_sbuf *b, const char *k)
{
	size_t n = strlen(k);
	bool any_tail = n >= 4 && strcmp(k + n - 4, ".any") == 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)k[i];
		bool esc =
		    c <= 0x20 || c >= 0x7f || strchr("%=:;#[]\"", c) || (any_tail && i == n - 4);
		if (esc)
			pol_sbuf_put(b, "%%%02X", c);
		else
			pol_sbuf_put(b, "%c", c);
	}
	if (n == 0)
		pol_sbuf_put(b, "%%00"); /* never valid: an empty key is refused on reading */
}

/* --- reading endpoint keys ----------------------------------------------------------------- */

static int bool_val(const char *key, const char *v, bool *out, struct sv_err *err)
{
	if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0)
		return sv_err_set(err, EINVAL, "%s: expected true or false (got '%.64s')", key, v);
	*out = v[0] == 't';
	return 0;
}

static int positive(const char *key, const char *v, uint32_t *out, struct sv_err *err)
{
	unsigned long long n;
	if (sv_parse_uint(v, 1, UINT32_MAX, &n) < 0)
		return sv_err_set(err, ERANGE, "%s must be a positive integer (got '%.64s')", key,
				  v);
	*out = (uint32_t)n;
	return 0;
}

static int str_once(const char *key, const char *v, char **slot, struct sv_err *err)
{
	if (*slot)
		return sv_err_set(err, EINVAL, "%s: duplicate key", key);
	return pol_ini_value(v, slot, err);
}

static int glob_push(struct pol_strv *sv, const char *v, struct sv_err *err)
{
	char *g = NULL;
	int r = pol_ini_value(v, &g, err);
	if (r < 0)
		return r;
	if (sv->n >= POL_L7_ITEMS_MAX) {
		free(g);
		return sv_err_set(err, E2BIG, "too many values (max %d)", POL_L7_ITEMS_MAX);
	}
	char **nv = realloc(sv->v, (sv->n + 1) * sizeof(*nv));
	if (!nv) {
		free(g);
		return oom(err);
	}
	nv[sv->n++] = g;
	sv->v = nv;
	return 0;
}

/* "<k>" or "<k>.any" of a matcher map: find or add the matcher. */
static int map_matcher(struct pol_matcher **v, size_t *n, const char *spec, const char *val,
		       struct sv_err *err)
{
	size_t len = strlen(spec);
	bool any = len > 4 && strcmp(spec + len - 4, ".any") == 0;
	_cleanup_free_ char *key = NULL;
	int r = pct_decode(spec, any ? len - 4 : len, &key, err);
	if (r < 0)
		return r;
	if (!*key)
		return sv_err_set(err, EINVAL, "empty matcher key");
	struct pol_matcher *m = NULL;
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*v)[i].key, key) == 0)
			m = &(*v)[i];
	if (!m) {
		if (*n >= POL_L7_ITEMS_MAX)
			return sv_err_set(err, E2BIG, "too many matchers (max %d)",
					  POL_L7_ITEMS_MAX);
		struct pol_matcher *nv = realloc(*v, (*n + 1) * sizeof(*nv));
		if (!nv)
			return oom(err);
		*v = nv;
		m = &nv[(*n)++];
		memset(m, 0, sizeof(*m));
		m->key = sv_steal_ptr(&key);
		m->any = any;
	} else if (m->any != any || !any) {
		return sv_err_set(err, EINVAL,
				  "matcher '%.64s' given twice (repeat only the '.any' form)",
				  m->key);
	}
	return glob_push(&m->globs, val, err);
}

static int tool_matcher(struct pol_l7_rule *r, bool any, const char *val, struct sv_err *err)
{
	if (!r->tool) {
		if (!(r->tool = calloc(1, sizeof(*r->tool))))
			return oom(err);
		r->tool->any = any;
	} else if (r->tool->any != any || !any) {
		return sv_err_set(err, EINVAL, "tool given twice (repeat only tool.any)");
	}
	return glob_push(&r->tool->globs, val, err);
}

/* rule.N / deny.N: find rule N (1-based), adding it when N is the next number. */
static int rule_at(struct pol_l7_rule **v, size_t *n, bool *set, const char *num, size_t len,
		   struct pol_l7_rule **out, struct sv_err *err)
{
	char buf[8];
	unsigned long long i;
	if (len == 0 || len >= sizeof(buf))
		return sv_err_set(err, EINVAL, "a rule number is expected");
	memcpy(buf, num, len);
	buf[len] = '\0';
	if (sv_parse_uint(buf, 1, POL_L7_ITEMS_MAX, &i) < 0 || buf[0] == '0')
		return sv_err_set(err, EINVAL, "rule number must be 1..%d (got '%s')",
				  POL_L7_ITEMS_MAX, buf);
	if (i > *n + 1)
		return sv_err_set(err, EINVAL, "rules are numbered from 1 in order: %s follows %zu",
				  buf, *n);
	if (i == *n + 1) {
		struct pol_l7_rule *nv = realloc(*v, (*n + 1) * sizeof(*nv));
		if (!nv)
			return oom(err);
		*v = nv;
		memset(&nv[*n], 0, sizeof(nv[*n]));
		(*n)++;
		*set = true;
	}
	*out = &(*v)[i - 1];
	return 0;
}

static int rule_key(struct pol_l7_rule *r, const char *k, const char *v, struct sv_err *err)
{
	if (!*k)
		return strcmp(v, "{}") == 0
			   ? 0
			   : sv_err_set(err, EINVAL, "a bare rule key takes '{}' (got '%.64s')", v);
	static const struct {
		const char *name;
		size_t off;
	} strs[] = {
	    {"method", offsetof(struct pol_l7_rule, method)},
	    {"path", offsetof(struct pol_l7_rule, path)},
	    {"command", offsetof(struct pol_l7_rule, command)},
	    {"operation_type", offsetof(struct pol_l7_rule, operation_type)},
	    {"operation_name", offsetof(struct pol_l7_rule, operation_name)},
	};
	for (size_t i = 0; i < SV_ARRAY_SIZE(strs); i++)
		if (strcmp(k, strs[i].name) == 0)
			return str_once(k, v, (char **)((char *)r + strs[i].off), err);
	if (strcmp(k, "field") == 0)
		return glob_push(&r->fields, v, err);
	if (strcmp(k, "tool") == 0 || strcmp(k, "tool.any") == 0)
		return tool_matcher(r, k[4] == '.', v, err);
	if (strncmp(k, "query.", 6) == 0)
		return map_matcher(&r->query, &r->n_query, k + 6, v, err);
	if (strncmp(k, "params.", 7) == 0)
		return map_matcher(&r->params, &r->n_params, k + 7, v, err);
	return sv_err_set(err, EINVAL, "unknown rule key '%.64s'", k);
}

static int gql_op_key(struct pol_endpoint *e, const char *spec, const char *v, struct sv_err *err)
{
	const char *dot = strrchr(spec, '.');
	if (!dot || dot == spec)
		return sv_err_set(err, EINVAL, "expected graphql_persisted_query.<id>.<field>");
	_cleanup_free_ char *id = NULL;
	int r = pct_decode(spec, (size_t)(dot - spec), &id, err);
	if (r < 0)
		return r;
	struct pol_gql_op *o = NULL;
	for (size_t i = 0; i < e->n_gql_ops; i++)
		if (strcmp(e->gql_ops[i].id, id) == 0)
			o = &e->gql_ops[i];
	if (!o) {
		if (e->n_gql_ops >= POL_L7_ITEMS_MAX)
			return sv_err_set(err, E2BIG, "too many persisted queries");
		struct pol_gql_op *nv = realloc(e->gql_ops, (e->n_gql_ops + 1) * sizeof(*nv));
		if (!nv)
			return oom(err);
		e->gql_ops = nv;
		o = &nv[e->n_gql_ops++];
		memset(o, 0, sizeof(*o));
		o->id = sv_steal_ptr(&id);
	}
	const char *f = dot + 1;
	if (strcmp(f, "operation_type") == 0)
		return str_once(f, v, &o->operation_type, err);
	if (strcmp(f, "operation_name") == 0)
		return str_once(f, v, &o->operation_name, err);
	if (strcmp(f, "field") == 0)
		return glob_push(&o->fields, v, err);
	return sv_err_set(err, EINVAL, "unknown persisted query key '%.64s'", f);
}

/* Keys given at most once per endpoint, beyond the string ones (NULL until set). */
enum once {
	O_PORT = 1u << 0,
	O_PROTOCOL = 1u << 1,
	O_TLS = 1u << 2,
	O_ENFORCEMENT = 1u << 3,
	O_ACCESS = 1u << 4,
	O_SLASH = 1u << 5,
	O_WS_REWRITE = 1u << 6,
	O_BODY_REWRITE = 1u << 7,
	O_UNINSPECTED = 1u << 8,
	O_PROVIDER = 1u << 9,
	O_ADVISOR = 1u << 10,
	O_GQL_MAX = 1u << 11,
	O_RPC_MAX = 1u << 12,
	O_STRICT = 1u << 13,
	O_ALLOW_ALL = 1u << 14,
	O_HOST = 1u << 15,
};

static int once(unsigned *seen, unsigned bit, const char *key, struct sv_err *err)
{
	if (*seen & bit)
		return sv_err_set(err, EINVAL, "%s: duplicate key", key);
	*seen |= bit;
	return 0;
}

static int tristate(const char *key, const char *v, enum pol_tristate *out, struct sv_err *err)
{
	bool b = false;
	int r = bool_val(key, v, &b, err);
	if (r == 0)
		*out = b ? POL_TRUE : POL_FALSE;
	return r;
}

int pol_ini_endpoint_key(struct pol_endpoint *e, unsigned *seen, const char *key, const char *v,
			 struct sv_err *err)
{
	int r;
	static const struct {
		const char *name;
		size_t off;
		unsigned bit;
	} bools[] = {
	    {"allow_encoded_slash", offsetof(struct pol_endpoint, allow_encoded_slash), O_SLASH},
	    {"websocket_credential_rewrite",
	     offsetof(struct pol_endpoint, websocket_credential_rewrite), O_WS_REWRITE},
	    {"request_body_credential_rewrite",
	     offsetof(struct pol_endpoint, request_body_credential_rewrite), O_BODY_REWRITE},
	    {"allow_uninspected_credentials",
	     offsetof(struct pol_endpoint, allow_uninspected_credentials), O_UNINSPECTED},
	    {"provider_credentialed", offsetof(struct pol_endpoint, provider_credentialed),
	     O_PROVIDER},
	    {"advisor_proposed", offsetof(struct pol_endpoint, advisor_proposed), O_ADVISOR},
	};
	static const struct {
		const char *name;
		size_t off;
	} strs[] = {
	    {"path", offsetof(struct pol_endpoint, path)},
	    {"credential_signing", offsetof(struct pol_endpoint, credential_signing)},
	    {"signing_service", offsetof(struct pol_endpoint, signing_service)},
	    {"signing_region", offsetof(struct pol_endpoint, signing_region)},
	    {"credential_binding", offsetof(struct pol_endpoint, credential_binding)},
	    {"persisted_queries", offsetof(struct pol_endpoint, persisted_queries)},
	};
	for (size_t i = 0; i < SV_ARRAY_SIZE(bools); i++)
		if (strcmp(key, bools[i].name) == 0)
			return once(seen, bools[i].bit, key, err) < 0
				   ? -EINVAL
				   : bool_val(key, v, (bool *)((char *)e + bools[i].off), err);
	for (size_t i = 0; i < SV_ARRAY_SIZE(strs); i++)
		if (strcmp(key, strs[i].name) == 0)
			return str_once(key, v, (char **)((char *)e + strs[i].off), err);
	if (strcmp(key, "protocol") == 0) {
		if ((r = once(seen, O_PROTOCOL, key, err)) < 0)
			return r;
		return pol_protocol_parse(v, &e->protocol, err);
	}
	if (strcmp(key, "tls") == 0) {
		if ((r = once(seen, O_TLS, key, err)) < 0)
			return r;
		e->tls = pol_tls_parse(v);
		e->tls_set = true;
		if (e->tls == POL_TLS_AUTO && strcmp(v, "auto") != 0)
			return sv_err_set(err, EINVAL,
					  "tls: expected skip, auto, terminate or passthrough (got "
					  "'%.64s')",
					  v);
		return 0;
	}
	if (strcmp(key, "enforcement") == 0) {
		if ((r = once(seen, O_ENFORCEMENT, key, err)) < 0)
			return r;
		if (strcmp(v, "enforce") != 0 && strcmp(v, "audit") != 0)
			return sv_err_set(
			    err, EINVAL, "enforcement: expected enforce or audit (got '%.64s')", v);
		e->enforcement = v[0] == 'e' ? POL_ENFORCE_ENFORCE : POL_ENFORCE_AUDIT;
		return 0;
	}
	if (strcmp(key, "access") == 0) {
		if ((r = once(seen, O_ACCESS, key, err)) < 0)
			return r;
		e->access = pol_access_parse(v);
		if (e->access == POL_ACCESS_UNKNOWN)
			return pol_ini_value(v, &e->access_raw, err);
		return 0;
	}
	if (strcmp(key, "graphql_max_body_bytes") == 0)
		return once(seen, O_GQL_MAX, key, err) < 0
			   ? -EINVAL
			   : positive(key, v, &e->graphql_max_body_bytes, err);
	if (strcmp(key, "json_rpc_max_body_bytes") == 0)
		return once(seen, O_RPC_MAX, key, err) < 0
			   ? -EINVAL
			   : positive(key, v, &e->json_rpc_max_body_bytes, err);
	if (strcmp(key, "mcp.strict_tool_names") == 0)
		return once(seen, O_STRICT, key, err) < 0
			   ? -EINVAL
			   : tristate(key, v, &e->mcp_strict_tool_names, err);
	if (strcmp(key, "mcp.allow_all_known_mcp_methods") == 0)
		return once(seen, O_ALLOW_ALL, key, err) < 0
			   ? -EINVAL
			   : tristate(key, v, &e->mcp_allow_all_known_mcp_methods, err);
	if (strncmp(key, "graphql_persisted_query.", 24) == 0)
		return gql_op_key(e, key + 24, v, err);
	bool deny = strncmp(key, "deny.", 5) == 0;
	if (deny || strncmp(key, "rule.", 5) == 0) {
		const char *num = key + 5, *dot = strchr(num, '.');
		size_t len = dot ? (size_t)(dot - num) : strlen(num);
		struct pol_l7_rule *rule = NULL;
		r = deny ? rule_at(&e->deny_rules, &e->n_deny_rules, &e->deny_rules_set, num, len,
				   &rule, err)
			 : rule_at(&e->rules, &e->n_rules, &e->rules_set, num, len, &rule, err);
		if (r < 0)
			return r;
		return rule_key(rule, dot ? dot + 1 : "", v, err);
	}
	return sv_err_set(err, EINVAL, "unknown key '%.64s' in an endpoint section", key);
}

int pol_ini_middleware_key(struct pol_middleware *m, unsigned *seen, const char *key, const char *v,
			   struct sv_err *err)
{
	if (strcmp(key, "middleware") == 0)
		return str_once(key, v, &m->middleware, err);
	if (strcmp(key, "on_error") == 0)
		return str_once(key, v, &m->on_error, err);
	if (strcmp(key, "include") == 0 || strcmp(key, "exclude") == 0) {
		struct pol_strv *sv = key[0] == 'i' ? &m->include : &m->exclude;
		if (m->include.n + m->exclude.n >= POL_MIDDLEWARE_PATTERNS_MAX)
			return sv_err_set(err, E2BIG, "%s: too many patterns (max %d)", key,
					  POL_MIDDLEWARE_PATTERNS_MAX);
		return pol_strv_push(sv, v) < 0 ? oom(err) : 0;
	}
	if (strcmp(key, "order") == 0) {
		if (once(seen, O_PORT, key, err) < 0)
			return -EINVAL;
		const char *d = v[0] == '-' ? v + 1 : v;
		unsigned long long n;
		if (sv_parse_uint(d, 0, v[0] == '-' ? 2147483648ULL : 2147483647ULL, &n) < 0)
			return sv_err_set(err, ERANGE,
					  "order: expected a 32-bit integer (got '%.64s')", v);
		m->order = v[0] == '-' ? (int32_t)(-(long long)n) : (int32_t)n;
		return 0;
	}
	if (strcmp(key, "config") == 0) {
		int r = str_once(key, v, &m->config_json, err);
		if (r < 0)
			return r;
		struct sv_json j;
		sv_json_init(&j, "config", m->config_json, strlen(m->config_json));
		if (sv_json_peek(&j) != SV_JSON_OBJECT)
			return sv_err_set(err, EINVAL, "config: expected a JSON object");
		if ((r = sv_json_skip(&j, err)) < 0 || (r = sv_json_end(&j, err)) < 0)
			return r;
		return 0;
	}
	return sv_err_set(err, EINVAL, "unknown key '%.64s' in a middleware section", key);
}

/* --- writing ------------------------------------------------------------------------------- */

static void put_str(struct pol_sbuf *b, const char *key, const char *v)
{
	if (!v)
		return;
	pol_sbuf_put(b, "%s = ", key);
	pol_ini_put_value(b, v);
	pol_sbuf_put(b, "\n");
}

static void put_matcher(struct pol_sbuf *b, const char *prefix, const struct pol_matcher *m)
{
	for (size_t i = 0; i < m->globs.n; i++) {
		pol_sbuf_put(b, "%s", prefix);
		if (m->key) {
			pol_sbuf_put(b, ".");
			pol_ini_put_key(b, m->key);
		}
		pol_sbuf_put(b, "%s = ", m->any ? ".any" : "");
		pol_ini_put_value(b, m->globs.v[i]);
		pol_sbuf_put(b, "\n");
	}
}

static void put_rule(struct pol_sbuf *b, const char *kind, size_t n, const struct pol_l7_rule *r)
{
	char k[64];
	bool any = false;
	const char *const strs[] = {r->method, r->path, r->command, r->operation_type,
				    r->operation_name};
	const char *const names[] = {"method", "path", "command", "operation_type",
				     "operation_name"};
	for (size_t i = 0; i < SV_ARRAY_SIZE(strs); i++) {
		if (!strs[i])
			continue;
		sv_fmt(k, sizeof(k), "%s.%zu.%s", kind, n, names[i]);
		put_str(b, k, strs[i]);
		any = true;
	}
	for (size_t i = 0; i < r->fields.n; i++) {
		sv_fmt(k, sizeof(k), "%s.%zu.field", kind, n);
		put_str(b, k, r->fields.v[i]);
		any = true;
	}
	sv_fmt(k, sizeof(k), "%s.%zu.query", kind, n);
	for (size_t i = 0; i < r->n_query; i++, any = true)
		put_matcher(b, k, &r->query[i]);
	sv_fmt(k, sizeof(k), "%s.%zu.params", kind, n);
	for (size_t i = 0; i < r->n_params; i++, any = true)
		put_matcher(b, k, &r->params[i]);
	if (r->tool) {
		sv_fmt(k, sizeof(k), "%s.%zu.tool", kind, n);
		put_matcher(b, k, r->tool);
		any = true;
	}
	if (!any)
		pol_sbuf_put(b, "%s.%zu = {}\n", kind, n);
}

static bool endpoint_is_plain(const struct pol_endpoint *e)
{
	return !e->path && e->protocol == POL_PROTO_NONE && !e->tls_set &&
	       e->enforcement == POL_ENFORCE_AUDIT && e->access == POL_ACCESS_NONE &&
	       !e->rules_set && !e->deny_rules_set && !e->allow_encoded_slash &&
	       !e->websocket_credential_rewrite && !e->request_body_credential_rewrite &&
	       !e->allow_uninspected_credentials && !e->provider_credentialed &&
	       !e->advisor_proposed && !e->credential_signing && !e->signing_service &&
	       !e->signing_region && !e->credential_binding && !e->persisted_queries &&
	       !e->n_gql_ops && !e->graphql_max_body_bytes && !e->json_rpc_max_body_bytes &&
	       e->mcp_strict_tool_names == POL_UNSET &&
	       e->mcp_allow_all_known_mcp_methods == POL_UNSET;
}

bool pol_ini_rule_is_plain(const struct pol_network_rule *r)
{
	for (size_t i = 0; i < r->n_endpoints; i++) {
		const struct pol_endpoint *e = &r->endpoints[i], *f = &r->endpoints[0];
		if (!endpoint_is_plain(e) || e->n_allowed_ips != f->n_allowed_ips ||
		    (e->n_allowed_ips && memcmp(e->allowed_ips, f->allowed_ips,
						e->n_allowed_ips * sizeof(*e->allowed_ips)) != 0))
			return false;
	}
	return true;
}

void pol_ini_put_endpoint(struct pol_sbuf *b, const char *rule, size_t n,
			  const struct pol_endpoint *e)
{
	char cidr[64];
	pol_sbuf_put(b, "\n[network.%s.endpoint.%zu]\n", rule, n);
	if (e->host)
		pol_sbuf_put(b, "host = %s\n", e->host);
	pol_sbuf_put(b, "port = ");
	for (size_t i = 0; i < e->n_ports; i++)
		pol_sbuf_put(b, "%s%u", i ? "," : "", e->ports[i]);
	pol_sbuf_put(b, "\n");
	for (size_t i = 0; i < e->n_allowed_ips; i++) {
		pol_cidr_format(&e->allowed_ips[i], cidr, sizeof(cidr));
		pol_sbuf_put(b, "allowed_ips = %s\n", cidr);
	}
	if (e->protocol != POL_PROTO_NONE)
		pol_sbuf_put(b, "protocol = %s\n", pol_protocol_name(e->protocol));
	if (e->tls_set)
		pol_sbuf_put(b, "tls = %s\n", pol_tls_name(e->tls));
	if (e->enforcement == POL_ENFORCE_ENFORCE)
		pol_sbuf_put(b, "enforcement = enforce\n");
	if (e->access != POL_ACCESS_NONE)
		put_str(b, "access", pol_access_name(e));
	put_str(b, "path", e->path);
	const struct {
		const char *name;
		bool v;
	} bools[] = {
	    {"allow_encoded_slash", e->allow_encoded_slash},
	    {"websocket_credential_rewrite", e->websocket_credential_rewrite},
	    {"request_body_credential_rewrite", e->request_body_credential_rewrite},
	    {"allow_uninspected_credentials", e->allow_uninspected_credentials},
	    {"provider_credentialed", e->provider_credentialed},
	    {"advisor_proposed", e->advisor_proposed},
	};
	for (size_t i = 0; i < SV_ARRAY_SIZE(bools); i++)
		if (bools[i].v)
			pol_sbuf_put(b, "%s = true\n", bools[i].name);
	put_str(b, "credential_signing", e->credential_signing);
	put_str(b, "signing_service", e->signing_service);
	put_str(b, "signing_region", e->signing_region);
	put_str(b, "credential_binding", e->credential_binding);
	put_str(b, "persisted_queries", e->persisted_queries);
	if (e->graphql_max_body_bytes)
		pol_sbuf_put(b, "graphql_max_body_bytes = %u\n", e->graphql_max_body_bytes);
	if (e->json_rpc_max_body_bytes)
		pol_sbuf_put(b, "json_rpc_max_body_bytes = %u\n", e->json_rpc_max_body_bytes);
	if (e->mcp_strict_tool_names != POL_UNSET)
		pol_sbuf_put(b, "mcp.strict_tool_names = %s\n",
			     e->mcp_strict_tool_names == POL_TRUE ? "true" : "false");
	if (e->mcp_allow_all_known_mcp_methods != POL_UNSET)
		pol_sbuf_put(b, "mcp.allow_all_known_mcp_methods = %s\n",
			     e->mcp_allow_all_known_mcp_methods == POL_TRUE ? "true" : "false");
	for (size_t i = 0; i < e->n_gql_ops; i++) {
		const struct pol_gql_op *o = &e->gql_ops[i];
		const char *const vals[] = {o->operation_type, o->operation_name};
		const char *const names[] = {"operation_type", "operation_name"};
		bool any = false;
		for (size_t k = 0; k < 2; k++) {
			if (!vals[k])
				continue;
			pol_sbuf_put(b, "graphql_persisted_query.");
			pol_ini_put_key(b, o->id ? o->id : "");
			pol_sbuf_put(b, ".%s = ", names[k]);
			pol_ini_put_value(b, vals[k]);
			pol_sbuf_put(b, "\n");
			any = true;
		}
		/* An entry with nothing set has no spelling; validation refuses it anyway. */
		(void)any;
		for (size_t k = 0; k < o->fields.n; k++) {
			pol_sbuf_put(b, "graphql_persisted_query.");
			pol_ini_put_key(b, o->id ? o->id : "");
			pol_sbuf_put(b, ".field = ");
			pol_ini_put_value(b, o->fields.v[k]);
			pol_sbuf_put(b, "\n");
		}
	}
	for (size_t i = 0; i < e->n_rules; i++)
		put_rule(b, "rule", i + 1, &e->rules[i]);
	for (size_t i = 0; i < e->n_deny_rules; i++)
		put_rule(b, "deny", i + 1, &e->deny_rules[i]);
}

void pol_ini_put_middleware(struct pol_sbuf *b, const struct pol_middleware *m)
{
	pol_sbuf_put(b, "\n[middleware.");
	pol_ini_put_key(b, m->name ? m->name : "");
	pol_sbuf_put(b, "]\n");
	put_str(b, "middleware", m->middleware);
	put_str(b, "on_error", m->on_error);
	pol_sbuf_put(b, "order = %d\n", (int)m->order);
	for (size_t i = 0; i < m->include.n; i++)
		pol_sbuf_put(b, "include = %s\n", m->include.v[i]);
	for (size_t i = 0; i < m->exclude.n; i++)
		pol_sbuf_put(b, "exclude = %s\n", m->exclude.v[i]);
	put_str(b, "config", m->config_json);
}
