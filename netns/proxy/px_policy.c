/* The egress proxy's policy decision (contract §8 "Matching"): endpoint and binary matching with
 * OpenShell's glob semantics, the matched rule, and the exact deny reasons of its Rego policy.
 *
 * It must never grant on anything but the kernel's facts passed in (exe, ancestors): cmdline is
 * only echoed in reasons. It allocates nothing and never fails open on malformed input.
 */
#include "px_policy.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "supervisor/err.h"

/* --- globs --------------------------------------------------------------------------------- */

static char fold(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* One label or path component @t against a pattern component @p where '*' matches any run of
 * bytes, empty included. All stars are alike inside one component, so the usual greedy match
 * with a single backtrack point is exact. */
static bool comp_match(const char *p, size_t pn, const char *t, size_t tn, bool ci)
{
	size_t pi = 0, ti = 0, star = SIZE_MAX, mark = 0;
	while (ti < tn) {
		if (pi < pn && p[pi] == '*') {
			star = pi++;
			mark = ti;
		} else if (pi < pn && (ci ? fold(p[pi]) == fold(t[ti]) : p[pi] == t[ti])) {
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

static size_t comp_len(const char *c, char sep)
{
	return (size_t)(strchrnul(c, sep) - c);
}

/* The component after the one at @c (of length @n), or NULL past the last one. */
static const char *comp_next(const char *c, size_t n)
{
	return c[n] ? c + n + 1 : NULL;
}

static bool comp_is_dstar(const char *c, size_t n)
{
	return n == 2 && c[0] == '*' && c[1] == '*';
}

/* @text against @pat component by component. A '**' component is "one component, then any
 * number more"; like '*' in a character glob, only the most recent '**' ever needs to absorb
 * more, so one backtrack point suffices and the match stays polynomial whatever the agent
 * names its directories. */
static bool glob_match(const char *pat, const char *text, char sep, bool ci)
{
	const char *p = pat, *t = text;
	const char *back_p = NULL, *back_t = NULL; /* resume points after the last '**' */
	for (;;) {
		size_t pn = p ? comp_len(p, sep) : 0;
		if (p && comp_is_dstar(p, pn)) {
			if (!t)
				return false; /* '**' needs at least one component */
			p = back_p = comp_next(p, pn);
			t = back_t = comp_next(t, comp_len(t, sep));
			continue;
		}
		if (!t) {
			if (!p)
				return true;
		} else if (p) {
			size_t tn = comp_len(t, sep);
			if (comp_match(p, pn, t, tn, ci)) {
				p = comp_next(p, pn);
				t = comp_next(t, tn);
				continue;
			}
		}
		/* Mismatch: let the last '**' take one more component, if there is one. */
		if (!back_t)
			return false;
		back_t = comp_next(back_t, comp_len(back_t, sep));
		p = back_p;
		t = back_t;
	}
}

static bool host_is_matchable(const char *host)
{
	if (!host || !*host)
		return false;
	for (const char *l = host;;) {
		size_t n = comp_len(l, '.');
		if (n == 0)
			return false;
		if (!l[n])
			return true;
		l += n + 1;
	}
}

bool px_policy_host_glob_match(const char *pattern, const char *host)
{
	return pattern && host_is_matchable(host) && glob_match(pattern, host, '.', true);
}

bool px_policy_path_glob_match(const char *pattern, const char *path)
{
	return pattern && path && path[0] == '/' && glob_match(pattern, path, '/', false);
}

/* --- endpoints and binaries ---------------------------------------------------------------- */

static bool port_listed(const struct pol_endpoint *e, uint16_t port)
{
	for (size_t i = 0; i < e->n_ports; i++)
		if (e->ports[i] == port)
			return true;
	return false;
}

static bool host_exact(const struct pol_endpoint *e, const char *host)
{
	if (e->kind == POL_HOST_IPV6) {
		unsigned char a[16], b[16];
		if (inet_pton(AF_INET6, e->host, a) == 1 && inet_pton(AF_INET6, host, b) == 1)
			return memcmp(a, b, sizeof(a)) == 0;
	}
	return strcasecmp(e->host, host) == 0;
}

bool px_policy_endpoint_matches(const struct pol_endpoint *e, const char *host, uint16_t port)
{
	if (!e || !host || !port_listed(e, port))
		return false;
	switch (e->kind) {
	case POL_HOST_NONE:
		return true;
	case POL_HOST_GLOB:
		return px_policy_host_glob_match(e->host, host);
	case POL_HOST_NAME:
	case POL_HOST_IPV4:
	case POL_HOST_IPV6:
		return e->host && host_exact(e, host);
	}
	return false;
}

static bool binary_matches_path(const char *pattern, const char *path)
{
	if (!path)
		return false;
	if (strchr(pattern, '*'))
		return px_policy_path_glob_match(pattern, path);
	return strcmp(pattern, path) == 0;
}

bool px_policy_binary_matches(const struct pol_network_rule *r, const char *exe,
			      const char *const *ancestors, size_t n_ancestors)
{
	for (size_t i = 0; i < r->binaries.n; i++) {
		const char *b = r->binaries.v[i];
		if (!b)
			continue;
		if (binary_matches_path(b, exe))
			return true;
		for (size_t j = 0; j < n_ancestors; j++)
			if (binary_matches_path(b, ancestors[j]))
				return true;
	}
	return false;
}

enum px_bin_class px_policy_binary_class(const struct pol_policy *p, const char *path)
{
	enum px_bin_class c = PX_BIN_NONE;
	if (!p || !path || p->n_rules > POL_RULES_MAX)
		return PX_BIN_NONE;
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct pol_network_rule *r = &p->rules[i];
		for (size_t j = 0; j < r->binaries.n; j++) {
			const char *b = r->binaries.v[j];
			if (!b || !binary_matches_path(b, path))
				continue;
			if (!strchr(b, '*'))
				return PX_BIN_EXACT;
			c = PX_BIN_GLOB;
		}
	}
	return c;
}

bool px_policy_binary_is_candidate(const struct pol_policy *p, const char *path)
{
	return px_policy_binary_class(p, path) != PX_BIN_NONE;
}

bool px_binary_identity_is_relaxed(const char *value)
{
	static const char *const relaxed[] = {"relaxed", "disabled", "endpoint-only", "false", "0"};
	if (!value)
		return false;
	while (*value == ' ' || *value == '\t')
		value++;
	size_t n = strlen(value);
	while (n && (value[n - 1] == ' ' || value[n - 1] == '\t' || value[n - 1] == '\n' ||
		     value[n - 1] == '\r'))
		n--;
	for (size_t i = 0; i < SV_ARRAY_SIZE(relaxed); i++)
		if (strlen(relaxed[i]) == n && strncasecmp(value, relaxed[i], n) == 0)
			return true;
	return false;
}

/* --- reasons ------------------------------------------------------------------------------- */

/* Appends into a fixed buffer; once full, the text ends in "..." and further appends vanish. */
struct reason_buf {
	char *buf;
	size_t size, len;
	bool cut;
};

static void rb_add(struct reason_buf *rb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void rb_add(struct reason_buf *rb, const char *fmt, ...)
{
	if (rb->cut)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(rb->buf + rb->len, rb->size - rb->len, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < rb->size - rb->len) {
		rb->len += (size_t)n;
		return;
	}
	rb->cut = true;
	rb->len = rb->size - 1;
	memcpy(rb->buf + rb->len - 3, "...", 4);
}

static void rb_add_lower(struct reason_buf *rb, const char *s)
{
	for (; *s && !rb->cut; s++)
		rb_add(rb, "%c", fold(*s));
}

static void rb_add_list(struct reason_buf *rb, const char *const *v, size_t n, const char *sep)
{
	for (size_t i = 0; i < n; i++)
		rb_add(rb, "%s%s", i ? sep : "", v[i] ? v[i] : "");
}

static void rb_add_binary_miss(struct reason_buf *rb, const struct pol_network_rule *r,
			       const struct px_query *q)
{
	rb_add(rb, "binary '%s' not allowed in policy '%s' (ancestors: [", q->exe ? q->exe : "",
	       r->name);
	rb_add_list(rb, q->ancestors, q->n_ancestors, " -> ");
	rb_add(rb, "], cmdline: [");
	rb_add_list(rb, q->cmdline, q->n_cmdline, ", ");
	rb_add(rb, "])");
	if (!q->binary_is_symlink)
		return;
	for (size_t i = 0; i < r->binaries.n; i++) {
		const char *b = r->binaries.v[i];
		if (!b || strchr(b, '*') || !q->binary_is_symlink(q->symlink_ctx, b))
			continue;
		rb_add(
		    rb,
		    ". SYMLINK HINT: policy binary '%s' is a symlink, but the kernel reports the "
		    "resolved target (/proc/<pid>/exe); list the canonical path in the policy "
		    "(run 'readlink -f %s' inside the sandbox)",
		    b, b);
		return;
	}
}

/* --- the decision -------------------------------------------------------------------------- */

/* Interim (docs/policy.md "What is enforced"): the proxy inspects REST and WebSocket (issue 13);
 * an endpoint with another inspection protocol (graphql, sql, json-rpc, mcp) must never pass
 * traffic as plain L4. `tls: skip` makes OpenShell relay such an endpoint raw, so that one
 * stays L4. */
static bool endpoint_needs_l7(const struct pol_endpoint *e)
{
	return pol_protocol_is_l7(e->protocol) && !px_policy_endpoint_is_rest(e) &&
	       e->tls != POL_TLS_SKIP;
}

bool px_policy_endpoint_is_rest(const struct pol_endpoint *e)
{
	return (e->protocol == POL_PROTO_REST || e->protocol == POL_PROTO_WEBSOCKET) &&
	       e->tls != POL_TLS_SKIP;
}

/* OpenShell reads the tunnel's TLS mode from the first matching endpoint that carries an
 * endpoint config (a non-tcp protocol, allowed_ips or a tls field) (l7 contract §1.1). */
static bool endpoint_has_config(const struct pol_endpoint *e)
{
	return (e->protocol != POL_PROTO_NONE && e->protocol != POL_PROTO_TCP) ||
	       e->n_allowed_ips > 0 || e->tls_set;
}

/* Which plain-L4 endpoints rule_endpoint considers. */
enum ep_pick {
	EP_ANY,		/* every matching endpoint */
	EP_NAMED,	/* matching endpoints that name a host, exactly or by glob */
	EP_NAMED_IPS,	/* matching endpoints that name a host and carry allowed_ips */
	EP_HOSTLESS,	/* matching hostless endpoints (they always carry allowed_ips) */
};

/* The first plain-L4 endpoint of @r admitting the query among those @pick selects; NULL when
 * none qualifies. Also reports an exact (non-glob, non-hostless) match and (@l7) the first
 * admitting endpoint that needs layer-7 inspection. */
static const struct pol_endpoint *rule_endpoint(const struct pol_network_rule *r,
						const struct px_query *q, const char *host,
						enum ep_pick pick, bool *exact,
						const struct pol_endpoint **l7)
{
	const struct pol_endpoint *first = NULL;
	for (size_t i = 0; i < r->n_endpoints; i++) {
		const struct pol_endpoint *e = &r->endpoints[i];
		if (!px_policy_endpoint_matches(e, host, q->port))
			continue;
		if (endpoint_needs_l7(e)) {
			if (l7 && !*l7)
				*l7 = e;
			continue;
		}
		if (exact && e->kind != POL_HOST_NONE && e->kind != POL_HOST_GLOB)
			*exact = true;
		if ((pick == EP_NAMED || pick == EP_NAMED_IPS) && e->kind == POL_HOST_NONE)
			continue;
		if (pick == EP_NAMED_IPS && e->n_allowed_ips == 0)
			continue;
		if (pick == EP_HOSTLESS && e->kind != POL_HOST_NONE)
			continue;
		if (!first)
			first = e;
	}
	return first;
}

/* The first network middleware (in policy order) selecting @host; NULL when none. A host too
 * long to be a DNS name selects the first middleware: fail closed. */
static const struct pol_middleware *middleware_for(const struct pol_policy *p, const char *host)
{
	char lower[POL_HOST_MAX + 1];
	size_t n = strlen(host);
	if (p->n_middlewares == 0)
		return NULL;
	if (n > POL_HOST_MAX)
		return &p->middlewares[0];
	for (size_t i = 0; i <= n; i++)
		lower[i] = fold(host[i]);
	for (size_t i = 0; i < p->n_middlewares; i++)
		if (pol_middleware_selects(&p->middlewares[i], lower))
			return &p->middlewares[i];
	return NULL;
}

static bool name_before(const char *a, const char *b)
{
	return !b || strcmp(a, b) < 0;
}

void px_policy_decide(const struct pol_policy *p, const struct px_query *q, struct px_decision *d)
{
	memset(d, 0, sizeof(*d));
	struct reason_buf rb = {.buf = d->reason, .size = sizeof(d->reason)};
	const char *host = q->host ? q->host : "";
	if (!p || p->n_rules == 0) {
		rb_add(&rb, "%s", PX_REASON_NO_RULES);
		return;
	}
	if (p->n_rules > POL_RULES_MAX) {
		/* pol_validate() forbids this; refuse rather than scan an unchecked policy. */
		rb_add(&rb, "policy has more than %d network rules", POL_RULES_MAX);
		return;
	}

	bool miss[POL_RULES_MAX] = {false};
	bool any_endpoint = false, exact = false;
	const struct pol_network_rule *ips_rule = NULL, *hostless_rule = NULL, *named_rule = NULL;
	const struct pol_network_rule *l7_rule = NULL;
	const struct pol_endpoint *ips_ep = NULL, *hostless_ep = NULL, *named_ep = NULL;
	const struct pol_endpoint *l7_ep = NULL;
	bool cfg_seen = false, tls_skip = false, inspect = false;
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct pol_network_rule *r = &p->rules[i];
		if (!r->name)
			continue;
		bool rule_exact = false;
		const struct pol_endpoint *l7 = NULL;
		const struct pol_endpoint *e = rule_endpoint(r, q, host, EP_ANY, &rule_exact, &l7);
		if (!e && !l7)
			continue;
		any_endpoint = true;
		if (!q->endpoint_only &&
		    !px_policy_binary_matches(r, q->exe, q->ancestors, q->n_ancestors)) {
			miss[i] = true;
			continue;
		}
		for (size_t k = 0; k < r->n_endpoints; k++) {
			const struct pol_endpoint *x = &r->endpoints[k];
			if (!px_policy_endpoint_matches(x, host, q->port))
				continue;
			if (!cfg_seen && endpoint_has_config(x)) {
				cfg_seen = true;
				tls_skip = x->tls == POL_TLS_SKIP;
			}
			inspect = inspect || px_policy_endpoint_is_rest(x);
		}
		if (!e) {
			if (name_before(r->name, l7_rule ? l7_rule->name : NULL)) {
				l7_rule = r;
				l7_ep = l7;
			}
			continue;
		}
		exact = exact || rule_exact;
		if (name_before(r->name, d->rule ? d->rule->name : NULL)) {
			d->rule = r;
			d->endpoint = e;
		}
		const struct pol_endpoint *with_ips =
		    rule_endpoint(r, q, host, EP_NAMED_IPS, NULL, NULL);
		if (with_ips && name_before(r->name, ips_rule ? ips_rule->name : NULL)) {
			ips_rule = r;
			ips_ep = with_ips;
		}
		const struct pol_endpoint *hl = rule_endpoint(r, q, host, EP_HOSTLESS, NULL, NULL);
		if (hl && name_before(r->name, hostless_rule ? hostless_rule->name : NULL)) {
			hostless_rule = r;
			hostless_ep = hl;
		}
		const struct pol_endpoint *ne = rule_endpoint(r, q, host, EP_NAMED, NULL, NULL);
		if (ne && name_before(r->name, named_rule ? named_rule->name : NULL)) {
			named_rule = r;
			named_ep = ne;
		}
	}

	const struct pol_middleware *mw = d->rule ? middleware_for(p, host) : NULL;
	if (d->rule && !mw) {
		d->allow = true;
		d->exact_declared = exact;
		d->tls_skip = tls_skip;
		d->inspect = inspect && !tls_skip;
		/* The endpoint whose allowed_ips the SSRF guard applies. OpenShell takes the first
		 * one with allowed_ips across all allowing rules, so a hostless rule (`:443` with
		 * allowed_ips) silently restricted every host another rule names on that port: a
		 * false denial. Here a hostless endpoint's addresses apply only to names no
		 * allowing endpoint names; an endpoint that names the host keeps its own. */
		if (ips_ep)
			d->endpoint = ips_ep;
		else if (named_ep)
			d->endpoint = named_ep;
		else if (hostless_ep)
			d->endpoint = hostless_ep;
		return;
	}
	if (mw) {
		d->rule = NULL;
		d->endpoint = NULL;
		rb_add(&rb, "endpoint ");
		rb_add_lower(&rb, host);
		rb_add(&rb,
		       ":%u is selected by network middleware '%s' (%s), which is not run by this "
		       "supervisor yet",
		       (unsigned)q->port, mw->name ? mw->name : "",
		       mw->middleware ? mw->middleware : "");
		return;
	}
	if (l7_ep) {
		rb_add(&rb, "endpoint ");
		rb_add_lower(&rb, host);
		rb_add(&rb,
		       ":%u in policy '%s' requires layer-7 inspection (protocol %s), which is not "
		       "enforced by this supervisor yet",
		       (unsigned)q->port, l7_rule->name, pol_protocol_name(l7_ep->protocol));
		return;
	}
	if (!any_endpoint) {
		rb_add(&rb, "endpoint ");
		rb_add_lower(&rb, host);
		rb_add(&rb, ":%u is not allowed by any policy", (unsigned)q->port);
		return;
	}
	/* One part per rule whose endpoint matched but whose binaries did not, in name order
	 * (Rego iterates policy names sorted). Selection by "next larger name" keeps this free of
	 * allocation; names are unique (pol_validate). */
	const char *last = NULL;
	for (bool first = true; !rb.cut; first = false) {
		const struct pol_network_rule *next = NULL;
		for (size_t i = 0; i < p->n_rules; i++) {
			const struct pol_network_rule *r = &p->rules[i];
			if (!miss[i] || (last && strcmp(r->name, last) <= 0))
				continue;
			if (name_before(r->name, next ? next->name : NULL))
				next = r;
		}
		if (!next)
			break;
		if (!first)
			rb_add(&rb, "; ");
		rb_add_binary_miss(&rb, next, q);
		last = next->name;
	}
}
