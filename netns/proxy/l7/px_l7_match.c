/* The L7 REST decision of OpenShell's Rego (contract §2.1-2.4): access presets, allow rules,
 * deny rules with their query semantics, endpoint path scoping and route selection, and the
 * exact deny reasons.
 *
 * Pure over struct pol_policy: no I/O, no logging. A glob error anywhere fails the whole
 * evaluation (the caller closes the tunnel), as a Rego builtin error does.
 */
#include "netns/proxy/l7/px_l7.h"

#include <errno.h>
#include <string.h>

#include "netns/proxy/l7/px_l7_int.h"

/* §2.2 presets, expanded only when an endpoint has no rules. */
static struct pol_l7_rule rest_read_only[] = {
    {.method = "GET", .path = "**"},
    {.method = "HEAD", .path = "**"},
    {.method = "OPTIONS", .path = "**"},
};
static struct pol_l7_rule rest_read_write[] = {
    {.method = "GET", .path = "**"},	 {.method = "HEAD", .path = "**"},
    {.method = "OPTIONS", .path = "**"}, {.method = "POST", .path = "**"},
    {.method = "PUT", .path = "**"},	 {.method = "PATCH", .path = "**"},
};
static struct pol_l7_rule any_full[] = {
    {.method = "*", .path = "**"},
};
static struct pol_l7_rule ws_read_only[] = {
    {.method = "GET", .path = "**"},
};
static struct pol_l7_rule ws_read_write[] = {
    {.method = "GET", .path = "**"},
    {.method = "WEBSOCKET_TEXT", .path = "**"},
};

void px_l7_matcher_compile(const struct pol_endpoint *ep, struct px_l7_matcher *m)
{
	memset(m, 0, sizeof(*m));
	m->ep = ep;
	if (ep->protocol == POL_PROTO_JSONRPC || ep->protocol == POL_PROTO_MCP)
		return; /* JSON-RPC family: method rules are JSON-RPC methods, not REST */
	m->deny = ep->deny_rules;
	m->n_deny = ep->n_deny_rules;
	if (ep->n_rules > 0) {
		m->allow = ep->rules;
		m->n_allow = ep->n_rules;
		return;
	}
	bool ws = ep->protocol == POL_PROTO_WEBSOCKET;
	switch (ep->protocol == POL_PROTO_GRAPHQL ? POL_ACCESS_NONE : ep->access) {
	case POL_ACCESS_READ_ONLY:
		m->allow = ws ? ws_read_only : rest_read_only;
		m->n_allow = ws ? SV_ARRAY_SIZE(ws_read_only) : SV_ARRAY_SIZE(rest_read_only);
		break;
	case POL_ACCESS_READ_WRITE:
		m->allow = ws ? ws_read_write : rest_read_write;
		m->n_allow = ws ? SV_ARRAY_SIZE(ws_read_write) : SV_ARRAY_SIZE(rest_read_write);
		break;
	case POL_ACCESS_FULL:
		m->allow = any_full;
		m->n_allow = 1;
		break;
	default:
		break; /* none, unknown, or GraphQL operation presets: no REST rules */
	}
}

/* Rego method_matches: "*" any; case-insensitive equality; a GET rule also matches HEAD. */
static bool method_matches(const char *actual, const char *rule)
{
	if (strcmp(rule, "*") == 0 || px_l7_ieq(actual, strlen(actual), rule))
		return true;
	return px_l7_ieq(actual, strlen(actual), "HEAD") && px_l7_ieq(rule, strlen(rule), "GET");
}

/* Rego path_matches: "**" all; otherwise glob with '/' delimiter. NULL (absent) never. */
static int path_matches(const char *path, const char *rule)
{
	if (!rule)
		return 0;
	if (strcmp(rule, "**") == 0)
		return 1;
	return px_l7_glob_match(rule, path, strlen(path), '/');
}

/* A query value against a matcher: any of its globs, no delimiter list (so '.'). */
static int value_matches(const struct pol_matcher *qm, const struct px_l7_qparam *v)
{
	for (size_t g = 0; g < qm->globs.n; g++) {
		int r = px_l7_glob_match(qm->globs.v[g], v->val, v->val_len, '.');
		if (r != 0)
			return r;
	}
	return 0;
}

static bool key_is(const struct px_l7_qparam *p, const char *key)
{
	return p->key_len == strlen(key) && memcmp(p->key, key, p->key_len) == 0;
}

/* Allow side: each configured key present, and every value of it matching. */
static int allow_query(const struct pol_l7_rule *rule, const struct px_l7_request *r)
{
	for (size_t k = 0; k < rule->n_query; k++) {
		const struct pol_matcher *qm = &rule->query[k];
		size_t seen = 0;
		for (size_t i = 0; i < r->n_query; i++) {
			if (!qm->key || !key_is(&r->query[i], qm->key))
				continue;
			seen++;
			int m = value_matches(qm, &r->query[i]);
			if (m <= 0)
				return m;
		}
		if (seen == 0)
			return 0;
	}
	return 1;
}

/* Deny side: no query matches anything; otherwise each configured key present with at least
 * one matching value. */
static int deny_query(const struct pol_l7_rule *rule, const struct px_l7_request *r)
{
	for (size_t k = 0; k < rule->n_query; k++) {
		const struct pol_matcher *qm = &rule->query[k];
		bool hit = false;
		for (size_t i = 0; i < r->n_query && !hit; i++) {
			if (!qm->key || !key_is(&r->query[i], qm->key))
				continue;
			int m = value_matches(qm, &r->query[i]);
			if (m < 0)
				return m;
			hit = m == 1;
		}
		if (!hit)
			return 0;
	}
	return 1;
}

static int rule_matches(const struct pol_l7_rule *rule, const struct px_l7_request *r, bool deny)
{
	if (!rule->method || !method_matches(r->method, rule->method))
		return 0;
	int m = path_matches(r->path, rule->path);
	if (m <= 0)
		return m;
	return deny ? deny_query(rule, r) : allow_query(rule, r);
}

static int any_rule(const struct pol_l7_rule *rules, size_t n, const struct px_l7_request *r,
		    bool deny)
{
	for (size_t i = 0; i < n; i++) {
		int m = rule_matches(&rules[i], r, deny);
		if (m != 0)
			return m;
	}
	return 0;
}

int px_l7_matcher_allows(const struct px_l7_matcher *m, const struct px_l7_request *r)
{
	return any_rule(m->allow, m->n_allow, r, false);
}

int px_l7_matcher_denies(const struct px_l7_matcher *m, const struct px_l7_request *r)
{
	return any_rule(m->deny, m->n_deny, r, true);
}

const struct pol_endpoint *px_l7_select_endpoint(const struct pol_endpoint *const *eps, size_t n,
						 const char *path)
{
	const struct pol_endpoint *best = NULL;
	size_t best_spec = 0;
	for (size_t i = 0; i < n; i++) {
		if (!px_l7_endpoint_path_matches(eps[i]->path, path))
			continue;
		size_t s = px_l7_endpoint_path_specificity(eps[i]->path);
		if (!best || s >= best_spec) {
			best = eps[i];
			best_spec = s;
		}
	}
	return best;
}

/* Rego endpoint_path_matches_request: an absent or empty path matches every request. */
static int endpoint_path_ok(const struct pol_endpoint *ep, const char *path)
{
	if (!ep->path || !*ep->path)
		return 1;
	return path_matches(path, ep->path);
}

int px_l7_evaluate(const struct pol_policy *p, const struct px_query *q,
		   const struct px_l7_request *r, struct px_l7_verdict *v)
{
	bool allow = false, deny = false;

	memset(v, 0, sizeof(*v));
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct pol_network_rule *nr = &p->rules[i];
		bool host_ok = false;
		for (size_t e = 0; e < nr->n_endpoints && !host_ok; e++)
			host_ok = px_policy_endpoint_matches(&nr->endpoints[e], q->host, q->port);
		if (!host_ok ||
		    (!q->endpoint_only &&
		     !px_policy_binary_matches(nr, q->exe, q->ancestors, q->n_ancestors)))
			continue;
		for (size_t e = 0; e < nr->n_endpoints; e++) {
			const struct pol_endpoint *ep = &nr->endpoints[e];
			struct px_l7_matcher m;
			if (!px_policy_endpoint_matches(ep, q->host, q->port))
				continue;
			int ok = endpoint_path_ok(ep, r->path);
			if (ok < 0)
				return ok;
			if (!ok)
				continue;
			px_l7_matcher_compile(ep, &m);
			int a = allow ? 0 : px_l7_matcher_allows(&m, r);
			int d = deny ? 0 : px_l7_matcher_denies(&m, r);
			if (a < 0 || d < 0)
				return -EINVAL;
			allow = allow || a == 1;
			deny = deny || d == 1;
		}
	}
	v->allowed = allow && !deny;
	if (!v->allowed)
		sv_fmt(v->reason, sizeof(v->reason), "%s %s %s", r->method, r->path,
		       deny ? "blocked by deny rule" : "not permitted by policy");
	return 0;
}

const char *px_l7_decision(bool allowed, enum pol_enforcement enforcement, bool force_deny,
			   bool upgrade)
{
	if (force_deny)
		return "deny";
	if (allowed)
		return upgrade ? "allow_upgrade" : "allow";
	return enforcement == POL_ENFORCE_ENFORCE ? "deny" : "audit";
}
