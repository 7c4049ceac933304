/* The YAML policy format: `network_middlewares`, whose free-form `config` object is kept as
 * compact JSON (the model's config_json), keys in document order.
 *
 * The supervisor runs no middleware (docs/policy.md); this only reads the stanza faithfully so
 * the policy round-trips and the proxy can deny what a middleware selects. It never accepts a
 * duplicate key inside `config` or nesting past POL_YAML_DEPTH_MAX.
 */
#include "policy_yaml.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- YAML to JSON -------------------------------------------------------------------------- */

struct jbuf {
	char *s;
	size_t len, cap;
};

static int jput(struct jbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		if (cap > 8 * (size_t)POL_FILE_MAX)
			return -E2BIG;
		char *ns = realloc(b->s, cap);
		if (!ns)
			return -ENOMEM;
		b->s = ns;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
	return 0;
}

static int jstr(struct jbuf *b, const char *s)
{
	int r = jput(b, "\"", 1);
	for (; r == 0 && *s; s++) {
		char esc[8];
		if (*s == '"' || *s == '\\') {
			esc[0] = '\\';
			esc[1] = *s;
			r = jput(b, esc, 2);
		} else if (*s == '\t') {
			r = jput(b, "\\t", 2);
		} else {
			r = jput(b, s, 1);
		}
	}
	return r ? r : jput(b, "\"", 1);
}

/* JSON's own number grammar: emitted as written. */
static bool is_json_number(const char *s)
{
	if (*s == '-')
		s++;
	if (*s == '0')
		s++;
	else if (*s >= '1' && *s <= '9')
		s += strspn(s, "0123456789");
	else
		return false;
	if (*s == '.') {
		size_t n = strspn(++s, "0123456789");
		if (!n)
			return false;
		s += n;
	}
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '+' || *s == '-')
			s++;
		size_t n = strspn(s, "0123456789");
		if (!n)
			return false;
		s += n;
	}
	return *s == '\0';
}

/* Other YAML 1.2 core-schema numbers ("+1", "007", "0x1f", "0o17", "1.", ".5") in JSON form. */
static bool yaml_number(const char *s, char *out, size_t size)
{
	char *end = NULL;
	errno = 0;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'o') && s[2]) {
		const char *d = s + 2;
		if (strspn(d, s[1] == 'x' ? "0123456789abcdefABCDEF" : "01234567") != strlen(d))
			return false;
		unsigned long long v = strtoull(d, &end, s[1] == 'x' ? 16 : 8);
		return errno == 0 && sv_fmt(out, size, "%llu", v) < size;
	}
	const char *d = s + (*s == '+' || *s == '-');
	if (!*d || strspn(d, "0123456789.eE+-") != strlen(d) || !strpbrk(d, "0123456789"))
		return false;
	double v = strtod(s, &end);
	if (*end || errno || !isfinite(v))
		return false;
	return sv_fmt(out, size, "%.17g", v) < size;
}

static int jscalar(struct pol_yaml *c, struct jbuf *b)
{
	const char *v;
	char num[64];
	if (pol_yaml_is_null(c))
		return jput(b, "null", 4);
	if (pol_yaml_text(c, "a value", &v) < 0)
		return c->rc;
	if (!pol_yaml_is_plain(c))
		return jstr(b, v);
	if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "TRUE"))
		return jput(b, "true", 4);
	if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "FALSE"))
		return jput(b, "false", 5);
	if (is_json_number(v))
		return jput(b, v, strlen(v));
	if (yaml_number(v, num, sizeof(num)))
		return jput(b, num, strlen(num));
	return jstr(b, v);
}

static int jvalue(struct pol_yaml *c, struct jbuf *b);

static int jobject(struct pol_yaml *c, struct jbuf *b)
{
	char key[POL_YAML_KEY_MAX + 1];
	struct pol_strv keys = {0};
	int r = pol_yaml_enter(c) < 0 ? c->rc : jput(b, "{", 1);
	while (r == 0 && (r = pol_yaml_next_key(c, key, sizeof(key))) == 0) {
		if (pol_strv_contains(&keys, key))
			r = pol_yaml_fail_here(c, EINVAL, "duplicate key '%.64s'", key);
		else if (keys.n >= POL_YAML_ITEMS_MAX)
			r = pol_yaml_fail_here(c, E2BIG, "too many entries (max %d)",
					       POL_YAML_ITEMS_MAX);
		else if (pol_strv_push(&keys, key) < 0)
			r = -ENOMEM;
		if (r == 0 && keys.n > 1)
			r = jput(b, ",", 1);
		if (r == 0 && (r = jstr(b, key)) == 0)
			r = jput(b, ":", 1);
		if (r < 0)
			break;
		size_t old = pol_yaml_push_key(c, key);
		if ((r = pol_yaml_next(c)) == 0 && (r = jvalue(c, b)) == 0)
			pol_yaml_pop(c, old);
	}
	pol_strv_free(&keys);
	if (r < 0)
		return r;
	pol_yaml_leave(c);
	return jput(b, "}", 1);
}

static int jarray(struct pol_yaml *c, struct jbuf *b)
{
	int r = pol_yaml_enter(c) < 0 ? c->rc : jput(b, "[", 1);
	for (size_t i = 0; r == 0; i++) {
		if ((r = pol_yaml_next(c)) < 0)
			break;
		if (c->ev.type == YAML_SEQUENCE_END_EVENT)
			break;
		if (i >= POL_YAML_ITEMS_MAX)
			return pol_yaml_fail_here(c, E2BIG, "too many entries (max %d)",
						  POL_YAML_ITEMS_MAX);
		size_t old = pol_yaml_push_index(c, i);
		if ((i && (r = jput(b, ",", 1)) < 0) || (r = jvalue(c, b)) < 0)
			break;
		pol_yaml_pop(c, old);
	}
	if (r < 0)
		return r;
	pol_yaml_leave(c);
	return jput(b, "]", 1);
}

static int jvalue(struct pol_yaml *c, struct jbuf *b)
{
	int r;
	if (c->ev.type == YAML_MAPPING_START_EVENT)
		r = jobject(c, b);
	else if (c->ev.type == YAML_SEQUENCE_START_EVENT)
		r = jarray(c, b);
	else
		r = jscalar(c, b);
	if (r < 0 && !c->rc)
		return pol_yaml_fail_here(c, -r, r == -ENOMEM ? "out of memory" : "too large");
	return r;
}

/* --- network_middlewares ------------------------------------------------------------------- */

struct mw_ctx {
	struct pol_middleware *m;
	bool middleware;
};

/* A display name in OpenShell; the model names a middleware by its map key (its identity in
 * OpenShell's proto map too), so this is type-checked and not kept. */
static int m_name(struct pol_yaml *c, void *obj)
{
	(void)obj;
	const char *v;
	return pol_yaml_text(c, "a string", &v);
}

static int m_middleware(struct pol_yaml *c, void *obj)
{
	struct mw_ctx *x = obj;
	x->middleware = true;
	return pol_yaml_str(c, &x->m->middleware);
}

static int m_order(struct pol_yaml *c, void *obj)
{
	return pol_yaml_int32(c, &((struct mw_ctx *)obj)->m->order);
}

/* A map of JSON values, as OpenShell's BTreeMap<String, serde_json::Value>. */
static int m_config(struct pol_yaml *c, void *obj)
{
	struct mw_ctx *x = obj;
	struct jbuf b = {0};
	if (pol_yaml_expect(c, YAML_MAPPING_START_EVENT, "a mapping") < 0)
		return c->rc;
	if (jvalue(c, &b) < 0) {
		free(b.s);
		return c->rc;
	}
	x->m->config_json = b.s;
	return 0;
}

static int m_on_error(struct pol_yaml *c, void *obj)
{
	return pol_yaml_str_opt(c, &((struct mw_ctx *)obj)->m->on_error);
}

static int s_include(struct pol_yaml *c, void *obj)
{
	return pol_yaml_strv(c, &((struct pol_middleware *)obj)->include, POL_YAML_ITEMS_MAX);
}

static int s_exclude(struct pol_yaml *c, void *obj)
{
	return pol_yaml_strv(c, &((struct pol_middleware *)obj)->exclude, POL_YAML_ITEMS_MAX);
}

static const struct pol_yaml_field selector_fields[] = {
    {"include", s_include},
    {"exclude", s_exclude},
};

static int m_endpoints(struct pol_yaml *c, void *obj)
{
	return pol_yaml_struct(c, selector_fields, SV_ARRAY_SIZE(selector_fields),
			       ((struct mw_ctx *)obj)->m);
}

static const struct pol_yaml_field mw_fields[] = {
    {"name", m_name},	  {"middleware", m_middleware}, {"order", m_order},
    {"config", m_config}, {"on_error", m_on_error},	{"endpoints", m_endpoints},
};

static int mw_entry(struct pol_yaml *c, void *obj, const char *key, const yaml_mark_t *km)
{
	(void)km; /* the map's own duplicate check covers the key */
	struct pol_policy *p = obj;
	yaml_mark_t at = c->ev.start_mark;
	struct pol_middleware *m = realloc(p->middlewares, (p->n_middlewares + 1) * sizeof(*m));
	if (!m)
		return pol_yaml_fail_here(c, ENOMEM, "out of memory");
	p->middlewares = m;
	struct mw_ctx x = {.m = &m[p->n_middlewares++]};
	memset(x.m, 0, sizeof(*x.m));
	if (!(x.m->name = strdup(key)))
		return pol_yaml_fail(c, &at, ENOMEM, "out of memory");
	if (pol_yaml_struct(c, mw_fields, SV_ARRAY_SIZE(mw_fields), &x) < 0)
		return c->rc;
	if (!x.middleware)
		return pol_yaml_fail(c, &at, EINVAL, "missing key 'middleware'");
	return 0;
}

int pol_yaml_network_middlewares(struct pol_yaml *c, void *obj)
{
	return pol_yaml_dict(c, POL_YAML_ITEMS_MAX, mw_entry, obj);
}
