/* The credential store (openshell-l7-contract.md §3.1, §3.4-§3.6): installing a provider
 * environment snapshot with the static-binding validation, retained revisions and identity
 * epochs, the placeholders handed to the agent, and resolving one placeholder for an endpoint.
 *
 * Never copies a value anywhere but the store; every freed value is wiped first. Messages name
 * rules and keys, never values.
 */
#include "netns/proxy/l7/px_cred_int.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "netns/proxy/l7/px_l7_int.h"

void px_cred_wipe(void *p, size_t n)
{
	if (!p)
		return;
	memset(p, 0, n);
	__asm__ __volatile__("" : : "r"(p) : "memory");
}

char *px_cred_strndup(const char *s, size_t n)
{
	char *d = malloc(n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

static void free_secret(char *v, size_t n)
{
	px_cred_wipe(v, n);
	free(v);
}

void px_cred_var_free(struct pc_var *v)
{
	free(v->key);
	free_secret(v->value, v->value_len);
	free(v->identity);
	for (size_t i = 0; i < v->n_eps; i++) {
		free(v->eps[i].host);
		free(v->eps[i].path);
	}
	free(v->eps);
	memset(v, 0, sizeof(*v));
}

void px_cred_gen_free(struct pc_gen *g)
{
	for (size_t i = 0; i < g->n; i++) {
		free(g->e[i].key);
		free_secret(g->e[i].value, g->e[i].value_len);
	}
	free(g->e);
	memset(g, 0, sizeof(*g));
}

void px_cred_epoch_free(struct pc_epoch *e)
{
	free(e->key);
	free(e->identity);
	free(e->revs);
	memset(e, 0, sizeof(*e));
}

struct px_cred_store *px_cred_store_new(void)
{
	return calloc(1, sizeof(struct px_cred_store));
}

static void free_vars(struct pc_var *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		px_cred_var_free(&v[i]);
	free(v);
}

static void clear_gens(struct px_cred_store *s)
{
	for (size_t i = 0; i < s->n_gens; i++)
		px_cred_gen_free(&s->gens[i]);
	s->n_gens = 0;
}

void px_cred_store_free(struct px_cred_store *s)
{
	if (!s)
		return;
	free_vars(s->vars, s->n_vars);
	clear_gens(s);
	for (size_t i = 0; i < s->n_known; i++)
		free(s->known[i]);
	free(s->known);
	for (size_t i = 0; i < s->n_epochs; i++)
		px_cred_epoch_free(&s->epochs[i]);
	free(s->epochs);
	free(s);
}

uint64_t px_cred_store_revision(const struct px_cred_store *s)
{
	return s ? s->revision : 0;
}

size_t px_cred_store_count(const struct px_cred_store *s)
{
	return s ? s->n_vars : 0;
}

const char *px_cred_store_key(const struct px_cred_store *s, size_t i)
{
	return s && i < s->n_vars ? s->vars[i].key : NULL;
}

int px_cred_store_placeholder(const struct px_cred_store *s, size_t i, char *buf, size_t size)
{
	if (!s || i >= s->n_vars)
		return -EINVAL;
	const struct pc_var *v = &s->vars[i];
	size_t n;
	if (v->handle[0])
		n = sv_fmt(buf, size, PX_CRED_PREFIX "s%s_%s", v->handle, v->key);
	else if (s->revision)
		n = sv_fmt(buf, size, PX_CRED_PREFIX "v%llu_%s", (unsigned long long)s->revision,
			   v->key);
	else
		n = sv_fmt(buf, size, PX_CRED_PREFIX "%s", v->key);
	return n + 1 >= size ? -ENOBUFS : (int)n;
}

/* ---- tokens (§3.1) ------------------------------------------------------------------------ */

bool px_cred_key_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_';
}

bool px_cred_alias_char(unsigned char c)
{
	return px_cred_key_char(c) || c == '-' || c == '.' || c == '~';
}

bool px_cred_is_hex64(const char *h, size_t n)
{
	if (n != 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
			return false;
	return true;
}

static bool all_key_chars(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!px_cred_key_char((unsigned char)s[i]))
			return false;
	return n > 0;
}

/* "v<digits>_KEY" or "s<64hex>_KEY" (the reserved namespace of §3.1). */
static bool split_rev(const char *s, size_t n, uint64_t *rev, bool *ok_rev, const char **key,
		      size_t *kn)
{
	if (n < 3 || s[0] != 'v')
		return false;
	const char *us = memchr(s, '_', n);
	if (!us || us == s + 1)
		return false;
	uint64_t r = 0;
	*ok_rev = true;
	for (const char *p = s + 1; p < us; p++) {
		if (*p < '0' || *p > '9')
			return false;
		unsigned d = (unsigned)(*p - '0');
		if (r > (UINT64_MAX - d) / 10)
			*ok_rev = false; /* Rust's parse fails: not a revisioned placeholder */
		r = r * 10 + d;
	}
	*key = us + 1;
	*kn = n - (size_t)(us + 1 - s);
	*rev = r;
	return all_key_chars(*key, *kn);
}

static bool split_stable(const char *s, size_t n, const char **handle, const char **key, size_t *kn)
{
	if (n < 67 || s[0] != 's' || s[65] != '_' || !px_cred_is_hex64(s + 1, 64))
		return false;
	*handle = s + 1;
	*key = s + 66;
	*kn = n - 66;
	return all_key_chars(*key, *kn);
}

static bool reserved_key(const char *k, size_t n)
{
	uint64_t r;
	bool ok;
	const char *h, *kk;
	size_t kn;
	return split_rev(k, n, &r, &ok, &kk, &kn) || split_stable(k, n, &h, &kk, &kn);
}

bool px_cred_tok_parse(const char *t, size_t n, struct pc_tok *o)
{
	const size_t pl = sizeof(PX_CRED_PREFIX) - 1, al = sizeof(PX_CRED_ALIAS) - 1;
	memset(o, 0, sizeof(*o));
	if (n > pl && memcmp(t, PX_CRED_PREFIX, pl) == 0) {
		const char *s = t + pl;
		size_t sn = n - pl;
		bool ok_rev = false;
		if (split_stable(s, sn, &o->handle, &o->key, &o->key_len)) {
			o->form = PF_STABLE;
			return true;
		}
		if (split_rev(s, sn, &o->rev, &ok_rev, &o->key, &o->key_len) && ok_rev) {
			o->form = PF_REV;
			return true;
		}
		if (!all_key_chars(s, sn))
			return false;
		o->form = PF_CANON;
		o->key = s;
		o->key_len = sn;
		return true;
	}
	const char *m = n > al ? memmem(t, n, PX_CRED_ALIAS, al) : NULL;
	if (!m || m == t)
		return false;
	for (const char *p = t; p < m; p++)
		if (!px_cred_alias_char((unsigned char)*p))
			return false;
	o->key = m + al;
	o->key_len = n - (size_t)(o->key - t);
	if (!all_key_chars(o->key, o->key_len))
		return false;
	o->form = PF_ALIAS;
	return true;
}

/* ---- lookup and binding match (§3.4) ------------------------------------------------------ */

static bool key_eq(const char *a, const char *k, size_t kn)
{
	return strlen(a) == kn && memcmp(a, k, kn) == 0;
}

static const struct pc_var *find_var(const struct px_cred_store *s, const char *k, size_t kn)
{
	for (size_t i = 0; i < s->n_vars; i++)
		if (key_eq(s->vars[i].key, k, kn))
			return &s->vars[i];
	return NULL;
}

static bool is_known(const struct px_cred_store *s, const char *k, size_t kn)
{
	for (size_t i = 0; i < s->n_known; i++)
		if (key_eq(s->known[i], k, kn))
			return true;
	return false;
}

static const struct pc_epoch *find_epoch(const struct px_cred_store *s, const char *k, size_t kn)
{
	for (size_t i = 0; i < s->n_epochs; i++)
		if (key_eq(s->epochs[i].key, k, kn))
			return &s->epochs[i];
	return NULL;
}

/* HostPattern: labels compared one by one (glob per label), "**" standing for one or more
 * labels. Hosts with an empty label never match. */
static bool host_match_at(const char *pat, const char *host)
{
	const char *pd = strchr(pat, '.'), *hd = strchr(host, '.');
	size_t pn = pd ? (size_t)(pd - pat) : strlen(pat);
	size_t hn = hd ? (size_t)(hd - host) : strlen(host);
	char pl[256], hl[256];
	if (pn >= sizeof(pl) || hn >= sizeof(hl) || hn == 0)
		return false;
	memcpy(pl, pat, pn);
	pl[pn] = '\0';
	memcpy(hl, host, hn);
	hl[hn] = '\0';
	if (strcmp(pl, "**") == 0) {
		/* consume this host label, then either stay on ** or move past it */
		if (!hd)
			return !pd;
		if (host_match_at(pat, hd + 1))
			return true;
		return pd ? host_match_at(pd + 1, hd + 1) : false;
	}
	if (fnmatch(pl, hl, 0) != 0)
		return false;
	if (!pd || !hd)
		return !pd && !hd;
	return host_match_at(pd + 1, hd + 1);
}

static bool host_matches(const char *pat, const char *host)
{
	char h[256];
	size_t n = strlen(host);
	if (n == 0 || n >= sizeof(h))
		return false;
	for (size_t i = 0; i < n; i++)
		h[i] = (char)px_l7_lower((unsigned char)host[i]);
	h[n] = '\0';
	if (h[0] == '.' || h[n - 1] == '.' || strstr(h, ".."))
		return false;
	return host_match_at(pat, h);
}

static bool var_allowed(const struct pc_var *v, const struct pc_view *w)
{
	if (!v || !v->bound)
		return false;
	for (size_t i = 0; i < v->n_eps; i++)
		if (v->eps[i].port == w->port && host_matches(v->eps[i].host, w->host) &&
		    px_l7_endpoint_path_matches(v->eps[i].path, w->path))
			return true;
	return false;
}

struct pc_hit {
	const char *value;
	size_t len;
	int64_t exp;
};

static bool exact(const struct px_cred_store *s, const struct pc_tok *t, struct pc_hit *h)
{
	const struct pc_var *v;
	switch (t->form) {
	case PF_STABLE:
		v = find_var(s, t->key, t->key_len);
		if (!v || !v->handle[0] || memcmp(v->handle, t->handle, 64) != 0)
			return false;
		*h = (struct pc_hit){v->value, v->value_len, v->exp};
		return true;
	case PF_CANON:
		v = find_var(s, t->key, t->key_len);
		if (!v)
			return false;
		*h = (struct pc_hit){v->value, v->value_len, v->exp};
		return true;
	case PF_REV:
		for (size_t g = s->n_gens; g-- > 0;) {
			if (s->gens[g].rev != t->rev)
				continue;
			for (size_t i = 0; i < s->gens[g].n; i++) {
				const struct pc_gent *e = &s->gens[g].e[i];
				if (key_eq(e->key, t->key, t->key_len)) {
					*h = (struct pc_hit){e->value, e->value_len, e->exp};
					return true;
				}
			}
		}
		return false;
	case PF_ALIAS:
		return false;
	}
	return false;
}

bool px_cred_known(const struct px_cred_store *s, const char *tok, size_t n)
{
	struct pc_tok t;
	struct pc_hit h;
	return s && px_cred_tok_parse(tok, n, &t) && exact(s, &t, &h);
}

int px_cred_resolve(const struct pc_view *w, const char *tok, size_t n, const char **val,
		    size_t *vlen)
{
	const struct px_cred_store *s = w->s;
	struct pc_tok t;
	struct pc_hit h;
	if (!s || !px_cred_tok_parse(tok, n, &t))
		return PX_CRED_E_UNAVAIL;
	bool bound = is_known(s, t.key, t.key_len);
	if (bound && !var_allowed(find_var(s, t.key, t.key_len), w))
		return PX_CRED_E_MISMATCH;
	/* Bound keys resolve only through the revisioned or stable-handle forms. */
	if (bound && (t.form == PF_CANON || t.form == PF_ALIAS))
		return PX_CRED_E_UNAVAIL;
	if (!exact(s, &t, &h)) {
		if (t.form != PF_REV && t.form != PF_ALIAS)
			return PX_CRED_E_UNAVAIL;
		if (t.form == PF_REV && bound) {
			/* An aged-out revision falls back only within the identity epoch. */
			const struct pc_epoch *e = find_epoch(s, t.key, t.key_len);
			bool in = false;
			for (size_t i = 0; e && i < e->n; i++)
				in = in || e->revs[i] == t.rev;
			if (!in)
				return PX_CRED_E_UNAVAIL;
		}
		struct pc_tok c = {PF_CANON, t.key, t.key_len, 0, NULL};
		if (!exact(s, &c, &h))
			return PX_CRED_E_UNAVAIL;
	}
	if (h.exp > 0 && h.exp <= w->now_ms)
		return PX_CRED_E_UNAVAIL;
	if (memchr(h.value, '\r', h.len) || memchr(h.value, '\n', h.len) ||
	    memchr(h.value, '\0', h.len))
		return PX_CRED_E_UNAVAIL;
	*val = h.value;
	*vlen = h.len;
	return 0;
}

/* ---- install (§3.2, §3.5, §3.6) ----------------------------------------------------------- */

static bool in_list(const char *const *l, size_t n, const char *k)
{
	for (size_t i = 0; i < n; i++)
		if (l[i] && strcmp(l[i], k) == 0)
			return true;
	return false;
}

static const struct px_cred_binding_in *find_binding(const struct px_cred_input *in, const char *k)
{
	for (size_t i = 0; i < in->n_bindings; i++)
		if (in->bindings[i].key && strcmp(in->bindings[i].key, k) == 0)
			return &in->bindings[i];
	return NULL;
}

static bool env_has(const struct px_cred_input *in, const char *k)
{
	for (size_t i = 0; i < in->n_vars; i++)
		if (in->vars[i].key && strcmp(in->vars[i].key, k) == 0)
			return true;
	return false;
}

/* HostPattern::new: non-empty, no whitespace or braces, no empty label, a valid glob. */
static bool host_pattern_ok(const char *h)
{
	if (!h || !*h || h[0] == '.' || h[strlen(h) - 1] == '.' || strstr(h, ".."))
		return false;
	for (const char *p = h; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c <= ' ' || c == 0x7f || c == '{' || c == '}')
			return false;
	}
	/* glob::Pattern refuses an unclosed '[' and "***" */
	int depth = 0;
	for (const char *p = h; *p; p++) {
		if (*p == '[')
			depth++;
		else if (*p == ']' && depth)
			depth--;
	}
	return depth == 0 && !strstr(h, "***") && strlen(h) < 254;
}

static int validate(const struct px_cred_input *in, struct sv_err *err)
{
	for (size_t i = 0; i < in->n_non_secret; i++) {
		if (!in->non_secret[i] || in_list(in->non_secret, i, in->non_secret[i]))
			return sv_err_set(
			    err, EINVAL,
			    "provider environment repeats a non-secret environment key");
	}
	for (size_t i = 0; i < in->n_bindings; i++) {
		const struct px_cred_binding_in *b = &in->bindings[i];
		if (!b->key || find_binding(in, b->key) != b)
			return sv_err_set(err, EINVAL,
					  "static credential bindings repeat an environment key");
		if (in_list(in->non_secret, in->n_non_secret, b->key))
			return sv_err_set(
			    err, EINVAL,
			    "provider environment classifies a key as both credential "
			    "and non-secret configuration");
	}
	for (size_t i = 0; i < in->n_vars; i++) {
		const char *k = in->vars[i].key;
		if (!k || (!find_binding(in, k) && !in_list(in->non_secret, in->n_non_secret, k)))
			return sv_err_set(
			    err, EINVAL,
			    "provider environment contains an unclassified credential "
			    "key");
	}
	for (size_t i = 0; i < in->n_bindings; i++)
		if (!env_has(in, in->bindings[i].key))
			goto missing;
	for (size_t i = 0; i < in->n_non_secret; i++)
		if (!env_has(in, in->non_secret[i]))
			goto missing;
	for (size_t i = 0; i < in->n_bindings; i++) {
		const struct px_cred_binding_in *b = &in->bindings[i];
		if (!b->identity || !*b->identity)
			return sv_err_set(err, EINVAL,
					  "static credential binding has no provider credential "
					  "identity");
		if (b->n_endpoints == 0)
			return sv_err_set(err, EINVAL,
					  "static credential binding has no authorized endpoints");
		if (b->handle && *b->handle && !px_cred_is_hex64(b->handle, strlen(b->handle)))
			return sv_err_set(err, EINVAL,
					  "static credential binding has an invalid workload "
					  "credential handle");
		for (size_t e = 0; e < b->n_endpoints; e++) {
			const struct px_cred_endpoint_in *ep = &b->endpoints[e];
			if (ep->port == 0 || ep->port > 65535 || !host_pattern_ok(ep->host))
				return sv_err_set(err, EINVAL,
						  "static credential binding contains an invalid "
						  "endpoint");
		}
	}
	return 0;
missing:
	return sv_err_set(err, EINVAL,
			  "provider environment metadata references a missing environment key");
}

static char *lower_dup(const char *s)
{
	char *d = px_cred_strndup(s, strlen(s));
	for (char *p = d; p && *p; p++)
		*p = (char)px_l7_lower((unsigned char)*p);
	return d;
}

static int copy_binding(struct pc_var *v, const struct px_cred_binding_in *b)
{
	v->bound = true;
	v->identity = px_cred_strndup(b->identity, strlen(b->identity));
	v->eps = calloc(b->n_endpoints, sizeof(*v->eps));
	if (!v->identity || !v->eps)
		return -ENOMEM;
	v->n_eps = b->n_endpoints;
	for (size_t e = 0; e < b->n_endpoints; e++) {
		v->eps[e].host = lower_dup(b->endpoints[e].host);
		v->eps[e].port = (uint16_t)b->endpoints[e].port;
		const char *p = b->endpoints[e].path ? b->endpoints[e].path : "";
		v->eps[e].path = px_cred_strndup(p, strlen(p));
		if (!v->eps[e].host || !v->eps[e].path)
			return -ENOMEM;
	}
	if (b->handle && *b->handle)
		memcpy(v->handle, b->handle, 65);
	return 0;
}

/* The variables of @in worth keeping (valid, not reserved, first of duplicates). */
static int build_vars(const struct px_cred_input *in, bool with_bindings, struct pc_var **out,
		      size_t *n)
{
	struct pc_var *v = calloc(in->n_vars ? in->n_vars : 1, sizeof(*v));
	size_t k = 0;
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < in->n_vars; i++) {
		const struct px_cred_var_in *x = &in->vars[i];
		size_t kn = x->key ? strnlen(x->key, PX_CRED_KEY_MAX + 1) : 0;
		if (!x->key || !x->value || kn > PX_CRED_KEY_MAX || !all_key_chars(x->key, kn) ||
		    reserved_key(x->key, kn))
			continue;
		bool dup = false;
		for (size_t j = 0; j < k && !dup; j++)
			dup = strcmp(v[j].key, x->key) == 0;
		if (dup)
			continue;
		struct pc_var *d = &v[k++];
		d->value_len = strlen(x->value);
		d->key = px_cred_strndup(x->key, kn);
		d->value = px_cred_strndup(x->value, d->value_len);
		d->exp = x->expires_at_ms;
		const struct px_cred_binding_in *b =
		    with_bindings ? find_binding(in, x->key) : NULL;
		if (!d->key || !d->value || (b && copy_binding(d, b) < 0)) {
			free_vars(v, k);
			return -ENOMEM;
		}
	}
	*out = v;
	*n = k;
	return 0;
}

static int push_gen(struct px_cred_store *s, const struct pc_var *v, size_t n, uint64_t rev)
{
	struct pc_gen g = {rev, calloc(n ? n : 1, sizeof(struct pc_gent)), 0};
	if (!g.e)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (v[i].handle[0])
			continue; /* stable handles never enter the retained generations */
		struct pc_gent *e = &g.e[g.n++];
		e->key = px_cred_strndup(v[i].key, strlen(v[i].key));
		e->value = px_cred_strndup(v[i].value, v[i].value_len);
		e->value_len = v[i].value_len;
		e->exp = v[i].exp;
		if (!e->key || !e->value) {
			px_cred_gen_free(&g);
			return -ENOMEM;
		}
	}
	if (s->n_gens == PX_CRED_GENERATIONS) {
		px_cred_gen_free(&s->gens[0]);
		memmove(&s->gens[0], &s->gens[1], (PX_CRED_GENERATIONS - 1) * sizeof(s->gens[0]));
		s->n_gens--;
	}
	s->gens[s->n_gens++] = g;
	return 0;
}

/* Do the bound keys and their identities differ between the store and @v? */
static bool identities_changed(const struct px_cred_store *s, const struct pc_var *v, size_t n)
{
	size_t a = 0, b = 0;
	for (size_t i = 0; i < s->n_vars; i++)
		a += s->vars[i].bound;
	for (size_t i = 0; i < n; i++) {
		if (!v[i].bound)
			continue;
		b++;
		const struct pc_var *o = find_var(s, v[i].key, strlen(v[i].key));
		if (!o || !o->bound || strcmp(o->identity, v[i].identity) != 0)
			return true;
	}
	return a != b;
}

static int remember_known(struct px_cred_store *s, const char *k)
{
	if (is_known(s, k, strlen(k)))
		return 0;
	char **n = realloc(s->known, (s->n_known + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	s->known = n;
	if (!(n[s->n_known] = px_cred_strndup(k, strlen(k))))
		return -ENOMEM;
	s->n_known++;
	return 0;
}

static int update_epochs(struct px_cred_store *s)
{
	/* keep epochs only for keys bound now without a handle */
	size_t w = 0;
	for (size_t i = 0; i < s->n_epochs; i++) {
		struct pc_epoch *e = &s->epochs[i];
		const struct pc_var *v = find_var(s, e->key, strlen(e->key));
		if (v && v->bound && !v->handle[0])
			s->epochs[w++] = *e;
		else
			px_cred_epoch_free(e);
	}
	s->n_epochs = w;
	for (size_t i = 0; i < s->n_vars; i++) {
		const struct pc_var *v = &s->vars[i];
		if (!v->bound || v->handle[0])
			continue;
		struct pc_epoch *e = (struct pc_epoch *)find_epoch(s, v->key, strlen(v->key));
		if (!e) {
			struct pc_epoch *ne = realloc(s->epochs, (s->n_epochs + 1) * sizeof(*ne));
			if (!ne)
				return -ENOMEM;
			s->epochs = ne;
			e = &ne[s->n_epochs];
			memset(e, 0, sizeof(*e));
			e->key = px_cred_strndup(v->key, strlen(v->key));
			e->identity = px_cred_strndup(v->identity, strlen(v->identity));
			if (!e->key || !e->identity) {
				px_cred_epoch_free(e);
				return -ENOMEM;
			}
			s->n_epochs++;
		} else if (strcmp(e->identity, v->identity) != 0) {
			char *id = px_cred_strndup(v->identity, strlen(v->identity));
			if (!id)
				return -ENOMEM;
			free(e->identity);
			e->identity = id;
			e->n = 0;
		}
		bool have = false;
		for (size_t r = 0; r < e->n; r++)
			have = have || e->revs[r] == s->revision;
		if (have)
			continue;
		uint64_t *nr = realloc(e->revs, (e->n + 1) * sizeof(*nr));
		if (!nr)
			return -ENOMEM;
		e->revs = nr;
		nr[e->n++] = s->revision;
	}
	return 0;
}

void px_cred_store_revoke(struct px_cred_store *s, uint64_t revision)
{
	if (!s)
		return;
	free_vars(s->vars, s->n_vars);
	s->vars = NULL;
	s->n_vars = 0;
	clear_gens(s);
	s->revision = revision;
}

int px_cred_store_install(struct px_cred_store *s, const struct px_cred_input *in,
			  struct sv_err *err)
{
	if (in->bindings_enforced) {
		int r = validate(in, err);
		if (r < 0) {
			px_cred_store_revoke(s, in->revision);
			return r;
		}
	}
	struct pc_var *v = NULL;
	size_t n = 0;
	int r = build_vars(in, in->bindings_enforced, &v, &n);
	if (r < 0)
		return sv_err_set(err, ENOMEM, "provider environment: out of memory");
	if (identities_changed(s, v, n))
		clear_gens(s);
	free_vars(s->vars, s->n_vars);
	s->vars = v;
	s->n_vars = n;
	s->revision = in->revision;
	r = in->revision ? push_gen(s, v, n, in->revision) : 0;
	for (size_t i = 0; r == 0 && i < n; i++)
		if (v[i].bound)
			r = remember_known(s, v[i].key);
	if (r == 0)
		r = update_epochs(s);
	if (r < 0) {
		px_cred_store_revoke(s, in->revision); /* fail closed */
		return sv_err_set(err, ENOMEM, "provider environment: out of memory");
	}
	return 0;
}
