/* The gateway's SandboxPolicy (contract §3.1) converted into struct pol_policy.
 *
 * Same model, same validators, same final pol_validate() as the INI loader (policy_ini.c), so a
 * rule means the same thing whichever source it came from. Every error names the protobuf field
 * path. A failed conversion never leaves a half-filled policy behind.
 */
#include "gw_policy.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "supervisor/log.h"

#define COMP "gateway"

/* Shown quoted in messages: at most this many bytes of a gateway-supplied key. */
#define GW_QUOTE_MAX 64

/* protobuf-c never leaves a string NULL after unpacking; messages built in code might. */
#define S(s) ((s) ? (s) : "")

struct conv {
	struct pol_policy *p;
	struct sv_err *err;
	size_t total_ips;
};

/* A gateway string made safe for a message: printable ASCII only, bounded. */
static const char *quote(const char *s, char *buf, size_t size)
{
	size_t i = 0;
	for (; s && s[i] && i + 4 < size && i < GW_QUOTE_MAX; i++) {
		unsigned char c = (unsigned char)s[i];
		buf[i] = (c < 0x20 || c >= 0x7f || c == '"') ? '?' : (char)c;
	}
	if (s && s[i] && i + 4 < size) {
		memcpy(buf + i, "...", 3);
		i += 3;
	}
	buf[i] = '\0';
	return buf;
}

__attribute__((format(printf, 3, 4))) static int fail(struct conv *c, int code, const char *fmt,
						      ...)
{
	char msg[SV_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	sv_vfmt(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return sv_err_set(c->err, code, "%s", msg);
}

/* A validator filled c->err: put the field path in front. */
__attribute__((format(printf, 3, 4))) static int fail_at(struct conv *c, int r, const char *fmt,
							 ...)
{
	char field[256];
	va_list ap;
	va_start(ap, fmt);
	sv_vfmt(field, sizeof(field), fmt, ap);
	va_end(ap);
	sv_err_prefix(c->err, "%s", field);
	return r;
}

static int oom(struct conv *c)
{
	return fail(c, ENOMEM, "out of memory");
}

/* --- filesystem, landlock, process --------------------------------------------------------- */

static int fs_path(struct conv *c, bool rw, size_t i, const char *v)
{
	const char *key = rw ? "read_write" : "read_only";
	struct pol_policy *p = c->p;
	v = S(v);
	int r = pol_fs_path_check(v, rw, c->err);
	if (r < 0)
		return fail_at(c, r, "filesystem.%s[%zu]", key, i);
	_cleanup_free_ char *norm = NULL;
	if (pol_path_normalize(v, &norm) < 0)
		return oom(c);
	char q[GW_QUOTE_MAX + 8];
	if (pol_strv_contains(rw ? &p->read_only : &p->read_write, norm))
		return fail(c, EINVAL, "filesystem.%s[%zu]: '%s' is already listed in %s", key, i,
			    quote(norm, q, sizeof(q)), rw ? "read_only" : "read_write");
	if (!pol_strv_contains(rw ? &p->read_write : &p->read_only, norm) &&
	    p->read_only.n + p->read_write.n >= POL_PATHS_MAX)
		return fail(c, E2BIG,
			    "filesystem.%s[%zu]: too many filesystem paths (max %d in total)", key,
			    i, POL_PATHS_MAX);
	r = pol_fs_add(p, rw, norm, c->err);
	return r < 0 ? fail_at(c, r, "filesystem.%s[%zu]", key, i) : 0;
}

static int filesystem(struct conv *c, const Openshell__Sandbox__V1__FilesystemPolicy *fs)
{
	/* Absent: no paths, workdir included (contract §3.1, the runtime model's default). */
	c->p->include_workdir = fs ? fs->include_workdir : true;
	if (!fs)
		return 0;
	for (size_t i = 0; i < fs->n_read_only; i++) {
		int r = fs_path(c, false, i, fs->read_only[i]);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < fs->n_read_write; i++) {
		int r = fs_path(c, true, i, fs->read_write[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Unlike OpenShell (anything but "hard_requirement" is best effort) an unknown value is an
 * error: a misspelt hard_requirement must not quietly become best effort. */
static int landlock(struct conv *c, const Openshell__Sandbox__V1__LandlockPolicy *ll)
{
	const char *v = ll ? S(ll->compatibility) : "";
	char q[GW_QUOTE_MAX + 8];
	if (!*v || strcmp(v, "best_effort") == 0)
		c->p->landlock_compat = POL_BEST_EFFORT;
	else if (strcmp(v, "hard_requirement") == 0)
		c->p->landlock_compat = POL_HARD_REQUIREMENT;
	else
		return fail(c, EINVAL,
			    "landlock.compatibility: expected best_effort or hard_requirement "
			    "(got '%s')",
			    quote(v, q, sizeof(q)));
	return 0;
}

/* "" = omitted; numbers stored canonically as the INI loader does ("007" -> "7"). */
static int identity(struct conv *c, const char *key, const char *v, char **slot)
{
	if (!v || !*v)
		return 0;
	char canon[24];
	unsigned long long id;
	if (v[0] >= '0' && v[0] <= '9' && sv_parse_uint(v, 0, POL_ID_MAX, &id) == 0) {
		sv_fmt(canon, sizeof(canon), "%llu", id);
		v = canon;
	}
	int r = pol_identity_check(v, c->err);
	if (r < 0)
		return fail_at(c, r, "process.%s", key);
	return (*slot = strdup(v)) ? 0 : oom(c);
}

/* --- network ------------------------------------------------------------------------------- */

static int endpoint_ports(struct conv *c, const char *at,
			  const Openshell__Sandbox__V1__NetworkEndpoint *e,
			  struct pol_endpoint *out)
{
	/* `ports` wins over `port` (contract §3.4). */
	size_t n = e->n_ports ? e->n_ports : 1;
	if (n > POL_PORTS_MAX)
		return fail(c, E2BIG, "%s.ports: too many ports (max %d)", at, POL_PORTS_MAX);
	if (!(out->ports = calloc(n, sizeof(*out->ports))))
		return oom(c);
	for (size_t i = 0; i < n; i++) {
		uint32_t port = e->n_ports ? e->ports[i] : e->port;
		if (port < 1 || port > 65535) {
			if (e->n_ports)
				return fail(c, ERANGE,
					    "%s.ports[%zu]: port must be in 1..65535 (got %u)", at,
					    i, port);
			return fail(c, ERANGE, "%s.port: port must be in 1..65535 (got %u)", at,
				    port);
		}
		for (size_t j = 0; j < out->n_ports; j++)
			if (out->ports[j] == port)
				return fail(c, EINVAL, "%s.ports[%zu]: duplicate port %u", at, i,
					    port);
		out->ports[out->n_ports++] = (uint16_t)port;
	}
	return 0;
}

static int endpoint_ips(struct conv *c, const char *at,
			const Openshell__Sandbox__V1__NetworkEndpoint *e, struct pol_endpoint *out)
{
	if (e->n_allowed_ips == 0)
		return 0;
	if (e->n_allowed_ips > POL_RULE_ITEMS_MAX)
		return fail(c, E2BIG, "%s.allowed_ips: too many entries (max %d)", at,
			    POL_RULE_ITEMS_MAX);
	if (e->n_allowed_ips > POL_ENDPOINT_IPS_MAX - c->total_ips)
		return fail(c, E2BIG, "%s.allowed_ips: more than %d entries over all endpoints", at,
			    POL_ENDPOINT_IPS_MAX);
	if (!(out->allowed_ips = calloc(e->n_allowed_ips, sizeof(*out->allowed_ips))))
		return oom(c);
	for (size_t i = 0; i < e->n_allowed_ips; i++) {
		int r = pol_cidr_parse(S(e->allowed_ips[i]), &out->allowed_ips[i], c->err);
		if (r < 0)
			return fail_at(c, r, "%s.allowed_ips[%zu]", at, i);
		out->n_allowed_ips++;
	}
	c->total_ips += out->n_allowed_ips;
	return 0;
}

static int endpoint(struct conv *c, const char *at,
		    const Openshell__Sandbox__V1__NetworkEndpoint *e, struct pol_endpoint *out)
{
	const char *host = S(e->host);
	out->kind = POL_HOST_NONE;
	if (*host) {
		char canon[POL_HOST_MAX + 1];
		int r = pol_host_canon(host, canon, sizeof(canon), &out->kind, c->err);
		if (r < 0)
			return fail_at(c, r, "%s.host", at);
		if (!(out->host = strdup(canon)))
			return oom(c);
	}
	if (strcmp(S(e->protocol), "tcp") == 0 && out->kind != POL_HOST_NAME &&
	    out->kind != POL_HOST_GLOB)
		return fail(c, EINVAL, "%s.host: a tcp endpoint needs a DNS host name", at);
	int r = endpoint_ports(c, at, e, out);
	if (r == 0)
		r = endpoint_ips(c, at, e, out);
	if (r < 0)
		return r;
	if (out->kind == POL_HOST_NONE && out->n_allowed_ips == 0)
		return fail(c, EINVAL, "%s.allowed_ips: a hostless endpoint needs allowed_ips", at);
	return gw_endpoint_l7_in(at, e, out, c->err);
}

/* One network_policies entry into c->p->rules (already sized). 0 or -errno. */
static int rule(struct conv *c, const char *key, const Openshell__Sandbox__V1__NetworkPolicyRule *v)
{
	char q[GW_QUOTE_MAX + 8];
	char at[POL_RULE_NAME_MAX + 64]; /* network_policies["<name>"].endpoints[N] */
	struct pol_policy *p = c->p;
	int r = pol_rule_name_check(key, c->err);
	if (r < 0)
		return fail_at(c, r, "network_policies[\"%s\"]", quote(key, q, sizeof(q)));
	for (size_t i = 0; i < p->n_rules; i++)
		if (p->rules[i].name && strcmp(p->rules[i].name, key) == 0)
			return fail(c, EINVAL, "network_policies[\"%s\"]: duplicate key", key);
	size_t n_eps = v ? v->n_endpoints : 0, n_bins = v ? v->n_binaries : 0;
	if (n_eps == 0)
		return fail(c, EINVAL, "network_policies[\"%s\"].endpoints: rule has no endpoint",
			    key);
	if (n_eps > POL_RULE_ITEMS_MAX || n_bins > POL_RULE_ITEMS_MAX)
		return fail(c, E2BIG,
			    "network_policies[\"%s\"]: too many endpoints or binaries "
			    "(max %d each)",
			    key, POL_RULE_ITEMS_MAX);
	struct pol_network_rule *out = &p->rules[p->n_rules];
	memset(out, 0, sizeof(*out));
	if (!(out->endpoints = calloc(n_eps, sizeof(*out->endpoints))))
		return oom(c);
	/* From here the rule is counted, so pol_free() releases whatever it holds. */
	if (!(out->name = strdup(key))) {
		free(out->endpoints);
		out->endpoints = NULL;
		return oom(c);
	}
	p->n_rules++;
	for (size_t i = 0; i < n_bins; i++) {
		const char *path = v->binaries[i] ? S(v->binaries[i]->path) : "";
		if ((r = pol_binary_check(path, c->err)) < 0)
			return fail_at(c, r, "network_policies[\"%s\"].binaries[%zu].path", key, i);
		if (pol_strv_push(&out->binaries, path) < 0)
			return oom(c);
	}
	for (size_t i = 0; i < n_eps; i++) {
		static const Openshell__Sandbox__V1__NetworkEndpoint empty =
		    OPENSHELL__SANDBOX__V1__NETWORK_ENDPOINT__INIT;
		const Openshell__Sandbox__V1__NetworkEndpoint *e =
		    v->endpoints[i] ? v->endpoints[i] : &empty;
		sv_fmt(at, sizeof(at), "network_policies[\"%s\"].endpoints[%zu]", key, i);
		struct pol_endpoint *ep = &out->endpoints[out->n_endpoints++];
		if ((r = endpoint(c, at, e, ep)) < 0)
			return r;
	}
	return 0;
}

static int network(struct conv *c, const Openshell__Sandbox__V1__SandboxPolicy *msg)
{
	size_t n = msg->n_network_policies;
	if (n == 0)
		return 0;
	if (n > POL_RULES_MAX)
		return fail(c, E2BIG, "network_policies: too many network rules (max %d)",
			    POL_RULES_MAX);
	if (!(c->p->rules = calloc(n, sizeof(*c->p->rules))))
		return oom(c);
	for (size_t i = 0; i < n; i++) {
		const Openshell__Sandbox__V1__SandboxPolicy__NetworkPoliciesEntry *ent =
		    msg->network_policies[i];
		int r = rule(c, ent && ent->key ? ent->key : "", ent ? ent->value : NULL);
		if (r < 0)
			return r;
	}
	return 0;
}

int gw_policy_convert(const Openshell__Sandbox__V1__SandboxPolicy *msg, struct pol_policy *out,
		      bool log_warnings, struct sv_err *err)
{
	pol_init(out);
	struct conv c = {.p = out, .err = err};
	int r = 0;
	/* The proto's version 0 is "unset"; the model knows only version 1. */
	if (msg->version > 1)
		r = fail(&c, EINVAL, "version: unsupported policy version %u", msg->version);
	if (r == 0)
		r = filesystem(&c, msg->filesystem);
	if (r == 0)
		r = landlock(&c, msg->landlock);
	if (r == 0 && msg->process)
		r = identity(&c, "run_as_user", msg->process->run_as_user, &out->run_as_user);
	if (r == 0 && msg->process)
		r = identity(&c, "run_as_group", msg->process->run_as_group, &out->run_as_group);
	if (r == 0)
		r = network(&c, msg);
	if (r == 0)
		r = gw_middlewares_in(msg, out, err);
	if (r == 0 && !(out->source = strdup("gateway")))
		r = oom(&c);
	if (r == 0)
		r = pol_validate_full(out, log_warnings ? pol_warn_log : NULL, out->source, err);
	if (r < 0) {
		sv_err_prefix(err, "gateway policy");
		pol_free(out);
		return r;
	}
	return 0;
}

/* --- comparing generations ----------------------------------------------------------------- */

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

bool gw_policy_static_equal(const struct pol_policy *a, const struct pol_policy *b)
{
	return a->include_workdir == b->include_workdir && strv_eq(&a->read_only, &b->read_only) &&
	       strv_eq(&a->read_write, &b->read_write) &&
	       a->landlock_compat == b->landlock_compat && str_eq(a->run_as_user, b->run_as_user) &&
	       str_eq(a->run_as_group, b->run_as_group);
}

bool gw_policy_network_equal(const struct pol_policy *a, const struct pol_policy *b)
{
	return pol_network_equal(a, b);
}
