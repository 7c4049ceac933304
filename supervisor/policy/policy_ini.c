/* The INI policy format (docs/policy.md): reading a file into the model, and writing it back.
 *
 * inih does the tokenising; a line reader in front of it rejects what inih would silently
 * truncate or misread (long lines, NUL and control bytes, bad or repeated section headers), and
 * the handler rejects every unknown or invalid key. Every error names "<file>:<line>". A failed
 * load never leaves a half-filled policy behind.
 */
#include "policy_int.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <ini.h>

#if INI_HANDLER_LINENO != 1 || INI_STOP_ON_FIRST_ERROR != 1 || INI_ALLOW_MULTILINE != 0 || \
    INI_ALLOW_INLINE_COMMENTS != 1 || INI_MAX_LINE != 4096 || INI_USE_STACK != 1
#error "inih must be configured with INIH_DEFINES (static/deps.mk)"
#endif

/* inih needs room for "\r\n" and NUL after the longest line (ini.h, INI_MAX_LINE). */
#define INI_LINE_MAX (INI_MAX_LINE - 3)
/* inih keeps 49 bytes of a section name; "network." takes 8 of them. */
#define INI_SECTION_MAX	  49
#define INI_NET_PREFIX	  "network."
#define INI_RULE_NAME_MAX (INI_SECTION_MAX - (int)(sizeof(INI_NET_PREFIX) - 1))

enum sec {
	SEC_NONE,
	SEC_FILESYSTEM,
	SEC_LANDLOCK,
	SEC_PROCESS,
	SEC_NETWORK,
	SEC_ENDPOINT,	/* [network.NAME.endpoint.ID] */
	SEC_MIDDLEWARE, /* [middleware.NAME] */
};
#define INI_HEADER_MAX 512 /* bytes of a section header we look at (ours, not inih's) */
static const char *const sec_names[] = {"", "filesystem", "landlock", "process"};

enum scalar { K_INCLUDE_WORKDIR, K_COMPATIBILITY, K_RUN_AS_USER, K_RUN_AS_GROUP, K_SCALARS };

struct ini {
	const char *name;
	const char *buf;
	size_t len, off;
	int lineno; /* lines handed to inih so far */
	struct pol_policy *p;
	struct sv_err *err;
	int rc; /* first failure, -errno */
	enum sec cur;
	int sec_line[SEC_NETWORK];
	int key_line[K_SCALARS];
	/* the [network.NAME] section being read */
	struct pol_network_rule *rule;
	int rule_line, hostless_line;
	struct pol_cidr *ips;
	size_t n_ips, total_ips;
	size_t n_plain;		   /* endpoints from `endpoint =` lines (before any sub-section) */
	struct pol_strv sub_names; /* endpoint sub-section headers seen, for duplicates */
	size_t ep;		   /* the [network.NAME.endpoint.ID] being read: its index */
	unsigned ep_seen, mw_seen; /* keys given once */
	int ep_line;
	struct pol_middleware *mw; /* the [middleware.NAME] being read */
};

__attribute__((format(printf, 4, 5))) static int fail(struct ini *c, int code, int line,
						      const char *fmt, ...)
{
	char msg[SV_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	sv_vfmt(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->rc == 0)
		c->rc = sv_err_set(c->err, code, "%s:%d: %s", c->name, line, msg);
	return c->rc;
}

/* A validator failed and filled c->err: put "<file>:<line>: <key>: " in front. */
static int fail_key(struct ini *c, int r, int line, const char *key)
{
	if (c->rc == 0) {
		sv_err_prefix(c->err, "%s:%d: %s", c->name, line, key);
		c->rc = r;
	}
	return r;
}

static int oom(struct ini *c, int line)
{
	return fail(c, ENOMEM, line, "out of memory");
}

/* --- network sections ---------------------------------------------------------------------- */

/* End of a [network.NAME] section: check it and give every endpoint the section's allowed_ips. */
static int rule_finish(struct ini *c)
{
	struct pol_network_rule *rule = c->rule;
	if (!rule)
		return 0;
	c->rule = NULL;
	_cleanup_free_ struct pol_cidr *ips = sv_steal_ptr(&c->ips);
	size_t n = c->n_ips;
	c->n_ips = 0;
	if (rule->n_endpoints == 0)
		return fail(c, EINVAL, c->rule_line, "[network.%s]: rule has no endpoint",
			    rule->name);
	if (c->hostless_line && n == 0)
		return fail(c, EINVAL, c->hostless_line,
			    "endpoint: a hostless endpoint needs allowed_ips in [network.%s]",
			    rule->name);
	size_t plain = c->n_plain < rule->n_endpoints ? c->n_plain : rule->n_endpoints;
	c->n_plain = SIZE_MAX;
	if (n && plain == 0)
		return fail(c, EINVAL, c->rule_line,
			    "[network.%s]: allowed_ips applies to `endpoint =` lines and there are "
			    "none; give an endpoint section its own allowed_ips",
			    rule->name);
	if (n && plain > (POL_ENDPOINT_IPS_MAX - c->total_ips) / n)
		return fail(c, E2BIG, c->rule_line,
			    "[network.%s]: endpoints x allowed_ips exceed %d entries in total",
			    rule->name, POL_ENDPOINT_IPS_MAX);
	c->total_ips += plain * n;
	for (size_t i = 0; n && i < plain; i++) {
		struct pol_endpoint *e = &rule->endpoints[i];
		if (!(e->allowed_ips = malloc(n * sizeof(*ips))))
			return oom(c, c->rule_line);
		memcpy(e->allowed_ips, ips, n * sizeof(*ips));
		e->n_allowed_ips = n;
	}
	return 0;
}

static int rule_start(struct ini *c, const char *name, int line)
{
	struct sv_err e = {0};
	if ((size_t)strlen(name) > (size_t)INI_RULE_NAME_MAX)
		return fail(c, EINVAL, line, "[network.%.*s...]: rule name is longer than %d bytes",
			    16, name, INI_RULE_NAME_MAX);
	if (pol_rule_name_check(name, &e) < 0)
		return fail(c, EINVAL, line, "[network.%s]: %s", name, e.msg);
	struct pol_policy *p = c->p;
	for (size_t i = 0; i < p->n_rules; i++)
		if (strcmp(p->rules[i].name, name) == 0)
			return fail(c, EINVAL, line, "duplicate section [network.%s]", name);
	if (p->n_rules >= POL_RULES_MAX)
		return fail(c, E2BIG, line, "too many network rules (max %d)", POL_RULES_MAX);
	struct pol_network_rule *rules = realloc(p->rules, (p->n_rules + 1) * sizeof(*rules));
	if (!rules)
		return oom(c, line);
	p->rules = rules;
	struct pol_network_rule *rule = &rules[p->n_rules];
	memset(rule, 0, sizeof(*rule));
	if (!(rule->name = strdup(name)))
		return oom(c, line);
	p->n_rules++;
	c->rule = rule;
	c->rule_line = line;
	c->hostless_line = 0;
	return 0;
}

/* "host:443", "host:443,8443", "[::1]:443", ":443" (hostless). */
static int endpoint_parse(const char *v, struct pol_endpoint *e, struct sv_err *err)
{
	char host[POL_HOST_MAX + 1];
	const char *ports;
	size_t hn;
	if (v[0] == '[') {
		const char *close = strchr(v, ']');
		if (!close || close[1] != ':')
			return sv_err_set(err, EINVAL, "expected '[IPv6]:port' (got '%.64s')", v);
		hn = (size_t)(close - v - 1);
		if (hn == 0 || !memchr(v + 1, ':', hn))
			return sv_err_set(err, EINVAL,
					  "brackets are for IPv6 addresses (got '%.64s')", v);
		v++;
		ports = close + 2;
	} else {
		const char *colon = strchr(v, ':');
		if (!colon)
			return sv_err_set(err, EINVAL,
					  "missing port: expected host:port (got '%.64s')", v);
		if (strchr(colon + 1, ':'))
			return sv_err_set(
			    err, EINVAL,
			    "an IPv6 address must be in brackets: [::1]:443 (got '%.64s')", v);
		hn = (size_t)(colon - v);
		ports = colon + 1;
	}
	if (hn > POL_HOST_MAX)
		return sv_err_set(err, EINVAL, "host is longer than %d bytes", POL_HOST_MAX);
	e->kind = POL_HOST_NONE;
	if (hn > 0) {
		char raw[POL_HOST_MAX + 1];
		memcpy(raw, v, hn);
		raw[hn] = '\0';
		int r = pol_host_canon(raw, host, sizeof(host), &e->kind, err);
		if (r < 0)
			return r;
		if (!(e->host = strdup(host)))
			return sv_err_set(err, ENOMEM, "out of memory");
	}
	if (!(e->ports = calloc(POL_PORTS_MAX, sizeof(*e->ports))))
		return sv_err_set(err, ENOMEM, "out of memory");
	for (const char *p = ports;;) {
		char num[8];
		while (*p == ' ' || *p == '\t')
			p++;
		size_t n = strcspn(p, ", \t");
		const char *end = p + n;
		while (*end == ' ' || *end == '\t')
			end++;
		unsigned long long port = 0;
		if (n == 0 || n >= sizeof(num))
			return sv_err_set(err, EINVAL,
					  "port must be a number in 1..65535 (got '%.*s')",
					  (int)(n < 16 ? n : 16), p);
		memcpy(num, p, n);
		num[n] = '\0';
		if (sv_parse_uint(num, 1, 65535, &port) < 0)
			return sv_err_set(err, ERANGE,
					  "port must be a number in 1..65535 (got '%s')", num);
		for (size_t i = 0; i < e->n_ports; i++)
			if (e->ports[i] == port)
				return sv_err_set(err, EINVAL, "duplicate port %s", num);
		if (e->n_ports >= POL_PORTS_MAX)
			return sv_err_set(err, E2BIG, "too many ports (max %d)", POL_PORTS_MAX);
		e->ports[e->n_ports++] = (uint16_t)port;
		if (*end == '\0')
			return 0;
		if (*end != ',')
			return sv_err_set(err, EINVAL, "ports are separated by ',' (got '%.64s')",
					  ports);
		p = end + 1;
	}
}

static int net_key(struct ini *c, const char *key, const char *v, int line)
{
	struct pol_network_rule *rule = c->rule;
	struct sv_err *err = c->err;
	int r;
	if (strcmp(key, "endpoint") == 0) {
		if (rule->n_endpoints >= POL_RULE_ITEMS_MAX)
			return fail(c, E2BIG, line, "endpoint: too many in one rule (max %d)",
				    POL_RULE_ITEMS_MAX);
		struct pol_endpoint e = {0};
		if ((r = endpoint_parse(v, &e, err)) < 0) {
			free(e.host);
			free(e.ports);
			return fail_key(c, r, line, key);
		}
		struct pol_endpoint *eps =
		    realloc(rule->endpoints, (rule->n_endpoints + 1) * sizeof(*eps));
		if (!eps) {
			free(e.host);
			free(e.ports);
			return oom(c, line);
		}
		rule->endpoints = eps;
		eps[rule->n_endpoints++] = e;
		if (e.kind == POL_HOST_NONE && !c->hostless_line)
			c->hostless_line = line;
		return 0;
	}
	if (strcmp(key, "binary") == 0) {
		if ((r = pol_binary_check(v, err)) < 0)
			return fail_key(c, r, line, key);
		if (rule->binaries.n >= POL_RULE_ITEMS_MAX)
			return fail(c, E2BIG, line, "binary: too many in one rule (max %d)",
				    POL_RULE_ITEMS_MAX);
		return pol_strv_push(&rule->binaries, v) < 0 ? oom(c, line) : 0;
	}
	if (strcmp(key, "allowed_ips") == 0) {
		struct pol_cidr cidr;
		if ((r = pol_cidr_parse(v, &cidr, err)) < 0)
			return fail_key(c, r, line, key);
		if (c->n_ips >= POL_RULE_ITEMS_MAX)
			return fail(c, E2BIG, line, "allowed_ips: too many in one rule (max %d)",
				    POL_RULE_ITEMS_MAX);
		struct pol_cidr *ips = realloc(c->ips, (c->n_ips + 1) * sizeof(*ips));
		if (!ips)
			return oom(c, line);
		c->ips = ips;
		ips[c->n_ips++] = cidr;
		return 0;
	}
	return fail(c, EINVAL, line, "unknown key '%.64s' in [network.%s]", key, rule->name);
}

/* --- [network.NAME.endpoint.ID] ------------------------------------------------------------ */

static int endpoint_finish(struct ini *c)
{
	if (c->cur != SEC_ENDPOINT)
		return 0;
	c->cur = SEC_NONE;
	struct pol_endpoint *e = &c->rule->endpoints[c->ep];
	if (e->n_ports == 0)
		return fail(c, EINVAL, c->ep_line, "port: an endpoint section needs a port");
	if (e->kind == POL_HOST_NONE && e->n_allowed_ips == 0)
		return fail(c, EINVAL, c->ep_line,
			    "host: an endpoint section without a host needs allowed_ips");
	return 0;
}

/* "<rule>.endpoint.<id>" (the part after "network."), with <id> of letters, digits, '_', '-'. */
static bool is_endpoint_section(const char *name, size_t *rule_len)
{
	const char *mark = NULL;
	for (const char *p = strstr(name, ".endpoint."); p; p = strstr(p + 1, ".endpoint."))
		mark = p;
	if (!mark || mark == name)
		return false;
	const char *id = mark + 10;
	if (!*id)
		return false;
	for (const char *p = id; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
			return false;
	*rule_len = (size_t)(mark - name);
	return true;
}

static int endpoint_start(struct ini *c, const char *name, size_t rule_len, int line)
{
	struct pol_network_rule *rule = c->rule;
	if (!rule || strlen(rule->name) != rule_len || strncmp(rule->name, name, rule_len) != 0)
		return fail(c, EINVAL, line,
			    "[network.%s] must follow its rule's section [network.%.*s]", name,
			    (int)rule_len, name);
	if (pol_strv_contains(&c->sub_names, name))
		return fail(c, EINVAL, line, "duplicate section [network.%s]", name);
	if (pol_strv_push(&c->sub_names, name) < 0)
		return oom(c, line);
	if (rule->n_endpoints >= POL_RULE_ITEMS_MAX)
		return fail(c, E2BIG, line, "[network.%s]: too many endpoints in one rule (max %d)",
			    name, POL_RULE_ITEMS_MAX);
	struct pol_endpoint *eps = realloc(rule->endpoints, (rule->n_endpoints + 1) * sizeof(*eps));
	if (!eps)
		return oom(c, line);
	rule->endpoints = eps;
	memset(&eps[rule->n_endpoints], 0, sizeof(*eps));
	if (c->n_plain == SIZE_MAX)
		c->n_plain = rule->n_endpoints;
	c->ep = rule->n_endpoints++;
	c->ep_seen = 0;
	c->ep_line = line;
	c->cur = SEC_ENDPOINT;
	return 0;
}

static int ep_key(struct ini *c, const char *key, const char *v, int line)
{
	struct pol_endpoint *e = &c->rule->endpoints[c->ep];
	struct sv_err *err = c->err;
	int r;
	if (strcmp(key, "host") == 0) {
		char canon[POL_HOST_MAX + 1];
		if (e->host)
			return fail(c, EINVAL, line, "host: duplicate key");
		if ((r = pol_host_canon(v, canon, sizeof(canon), &e->kind, err)) < 0)
			return fail_key(c, r, line, key);
		return (e->host = strdup(canon)) ? 0 : oom(c, line);
	}
	if (strcmp(key, "port") == 0) {
		char spec[INI_LINE_MAX + 2];
		struct pol_endpoint tmp = {0};
		if (e->n_ports)
			return fail(c, EINVAL, line, "port: duplicate key");
		sv_fmt(spec, sizeof(spec), ":%s", v);
		r = endpoint_parse(spec, &tmp, err);
		free(tmp.host);
		if (r < 0) {
			free(tmp.ports);
			return fail_key(c, r, line, key);
		}
		e->ports = tmp.ports;
		e->n_ports = tmp.n_ports;
		return 0;
	}
	if (strcmp(key, "allowed_ips") == 0) {
		struct pol_cidr cidr;
		if ((r = pol_cidr_parse(v, &cidr, err)) < 0)
			return fail_key(c, r, line, key);
		if (e->n_allowed_ips >= POL_RULE_ITEMS_MAX || c->total_ips >= POL_ENDPOINT_IPS_MAX)
			return fail(c, E2BIG, line, "allowed_ips: too many (max %d per endpoint)",
				    POL_RULE_ITEMS_MAX);
		struct pol_cidr *ips =
		    realloc(e->allowed_ips, (e->n_allowed_ips + 1) * sizeof(*ips));
		if (!ips)
			return oom(c, line);
		e->allowed_ips = ips;
		ips[e->n_allowed_ips++] = cidr;
		c->total_ips++;
		return 0;
	}
	struct sv_err e2 = {0};
	if ((r = pol_ini_endpoint_key(e, &c->ep_seen, key, v, &e2)) < 0)
		return fail(c, -r, line, "%.64s: %s", key, e2.msg);
	return 0;
}

/* --- [middleware.NAME] --------------------------------------------------------------------- */

static int middleware_start(struct ini *c, const char *name, int line)
{
	struct pol_policy *p = c->p;
	struct sv_err e = {0};
	_cleanup_free_ char *dec = NULL;
	if (pol_ini_key_decode(name, strlen(name), &dec, &e) < 0)
		return fail(c, EINVAL, line, "[middleware.%.64s]: %s", name, e.msg);
	for (size_t i = 0; i < p->n_middlewares; i++)
		if (strcmp(p->middlewares[i].name, dec) == 0)
			return fail(c, EINVAL, line, "duplicate section [middleware.%.64s]", name);
	if (p->n_middlewares >= POL_MIDDLEWARES_MAX)
		return fail(c, E2BIG, line, "too many middleware sections (max %d)",
			    POL_MIDDLEWARES_MAX);
	struct pol_middleware *v = realloc(p->middlewares, (p->n_middlewares + 1) * sizeof(*v));
	if (!v)
		return oom(c, line);
	p->middlewares = v;
	c->mw = &v[p->n_middlewares++];
	memset(c->mw, 0, sizeof(*c->mw));
	c->mw->name = sv_steal_ptr(&dec);
	c->mw_seen = 0;
	c->cur = SEC_MIDDLEWARE;
	return 0;
}

static int mw_key(struct ini *c, const char *key, const char *v, int line)
{
	struct sv_err e = {0};
	int r = pol_ini_middleware_key(c->mw, &c->mw_seen, key, v, &e);
	return r < 0 ? fail(c, -r, line, "%.64s: %s", key, e.msg) : 0;
}

/* --- the other sections -------------------------------------------------------------------- */

static int scalar_once(struct ini *c, enum scalar k, const char *key, int line)
{
	if (c->key_line[k])
		return fail(c, EINVAL, line, "%s: duplicate key (first set on line %d)", key,
			    c->key_line[k]);
	c->key_line[k] = line;
	return 0;
}

static int fs_key(struct ini *c, const char *key, const char *v, int line)
{
	struct pol_policy *p = c->p;
	if (strcmp(key, "include_workdir") == 0) {
		if (scalar_once(c, K_INCLUDE_WORKDIR, key, line) < 0)
			return c->rc;
		if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0)
			return fail(c, EINVAL, line, "%s: expected true or false (got '%.64s')",
				    key, v);
		p->include_workdir = v[0] == 't';
		return 0;
	}
	bool rw = strcmp(key, "read_write") == 0;
	if (!rw && strcmp(key, "read_only") != 0)
		return fail(c, EINVAL, line, "unknown key '%.64s' in [filesystem]", key);
	int r = pol_fs_path_check(v, rw, c->err);
	if (r < 0)
		return fail_key(c, r, line, key);
	_cleanup_free_ char *norm = NULL;
	if (pol_path_normalize(v, &norm) < 0)
		return oom(c, line);
	if (pol_strv_contains(rw ? &p->read_only : &p->read_write, norm))
		return fail(c, EINVAL, line, "%s: '%.64s' is already listed in %s", key, norm,
			    rw ? "read_only" : "read_write");
	if (!pol_strv_contains(rw ? &p->read_write : &p->read_only, norm) &&
	    p->read_only.n + p->read_write.n >= POL_PATHS_MAX)
		return fail(c, E2BIG, line, "%s: too many filesystem paths (max %d in total)", key,
			    POL_PATHS_MAX);
	r = pol_fs_add(p, rw, norm, c->err);
	return r < 0 ? fail_key(c, r, line, key) : 0;
}

static int identity_key(struct ini *c, enum scalar k, const char *key, const char *v, int line)
{
	char canon[24];
	if (scalar_once(c, k, key, line) < 0)
		return c->rc;
	/* Numbers are stored canonically ("007" -> "7"), so "00" is caught as root. */
	unsigned long long id;
	if (v[0] >= '0' && v[0] <= '9' && sv_parse_uint(v, 0, POL_ID_MAX, &id) == 0) {
		sv_fmt(canon, sizeof(canon), "%llu", id);
		v = canon;
	}
	int r = pol_identity_check(v, c->err);
	if (r < 0)
		return fail_key(c, r, line, key);
	char **slot = k == K_RUN_AS_USER ? &c->p->run_as_user : &c->p->run_as_group;
	return (*slot = strdup(v)) ? 0 : oom(c, line);
}

static int handler(void *user, const char *section, const char *key, const char *v, int line)
{
	struct ini *c = user;
	(void)section; /* c->cur tracks it: the line reader validated every header */
	if (c->rc)
		return 0;
	if (strstr(v, " #") || strstr(v, "\t#"))
		fail(c, EINVAL, line,
		     "%.64s: '#' starts a comment only at the start of a line; use ';' inline",
		     key);
	else if (c->cur == SEC_NONE)
		fail(c, EINVAL, line, "key '%.64s' outside any section", key);
	else if (c->cur == SEC_FILESYSTEM)
		fs_key(c, key, v, line);
	else if (c->cur == SEC_LANDLOCK && strcmp(key, "compatibility") == 0) {
		if (scalar_once(c, K_COMPATIBILITY, key, line) == 0) {
			if (strcmp(v, "best_effort") == 0)
				c->p->landlock_compat = POL_BEST_EFFORT;
			else if (strcmp(v, "hard_requirement") == 0)
				c->p->landlock_compat = POL_HARD_REQUIREMENT;
			else
				fail(c, EINVAL, line,
				     "%s: expected best_effort or hard_requirement (got '%.64s')",
				     key, v);
		}
	} else if (c->cur == SEC_PROCESS && strcmp(key, "run_as_user") == 0)
		identity_key(c, K_RUN_AS_USER, key, v, line);
	else if (c->cur == SEC_PROCESS && strcmp(key, "run_as_group") == 0)
		identity_key(c, K_RUN_AS_GROUP, key, v, line);
	else if (c->cur == SEC_NETWORK)
		net_key(c, key, v, line);
	else if (c->cur == SEC_ENDPOINT)
		ep_key(c, key, v, line);
	else if (c->cur == SEC_MIDDLEWARE)
		mw_key(c, key, v, line);
	else
		fail(c, EINVAL, line, "unknown key '%.64s' in [%s]", key, sec_names[c->cur]);
	return c->rc == 0;
}

/* --- the line reader in front of inih ------------------------------------------------------ */

static int section_start(struct ini *c, const char *s, int line)
{
	const char *close = strchr(s, ']');
	if (!close)
		return fail(c, EINVAL, line, "section header has no closing ']'");
	const char *rest = close + 1;
	while (*rest == ' ' || *rest == '\t' || *rest == '\r' || *rest == '\n')
		rest++;
	if (*rest && *rest != ';')
		return fail(c, EINVAL, line, "unexpected text after the section header");
	char name[INI_HEADER_MAX];
	size_t n = (size_t)(close - s - 1);
	if (n >= sizeof(name))
		return fail(c, EINVAL, line, "section header is longer than %d bytes",
			    INI_HEADER_MAX - 1);
	sv_fmt(name, sizeof(name), "%.*s", (int)n, s + 1);
	if (endpoint_finish(c) < 0)
		return c->rc;
	size_t pl = sizeof(INI_NET_PREFIX) - 1, rule_len = 0;
	if (n > pl && strncmp(name, INI_NET_PREFIX, pl) == 0 &&
	    is_endpoint_section(name + pl, &rule_len))
		return endpoint_start(c, name + pl, rule_len, line);
	if (rule_finish(c) < 0)
		return c->rc;
	for (enum sec k = SEC_FILESYSTEM; k < SEC_NETWORK; k++) {
		if (strcmp(name, sec_names[k]) != 0 || n != strlen(sec_names[k]))
			continue;
		if (c->sec_line[k])
			return fail(c, EINVAL, line, "duplicate section [%s] (first on line %d)",
				    name, c->sec_line[k]);
		c->sec_line[k] = line;
		c->cur = k;
		return 0;
	}
	if (n > 11 && strncmp(name, "middleware.", 11) == 0)
		return middleware_start(c, name + 11, line);
	if (n > pl && strncmp(name, INI_NET_PREFIX, pl) == 0) {
		c->cur = SEC_NETWORK;
		if (n - pl > (size_t)INI_RULE_NAME_MAX)
			return fail(c, EINVAL, line,
				    "[%.24s...]: rule name is longer than %d bytes", name,
				    INI_RULE_NAME_MAX);
		return rule_start(c, name + pl, line);
	}
	if (strcmp(name, "network") == 0 || strcmp(name, INI_NET_PREFIX) == 0)
		return fail(c, EINVAL, line, "a network rule needs a name: [network.NAME]");
	return fail(c, EINVAL, line,
		    "unknown section [%.64s] (expected filesystem, landlock, process, "
		    "network.NAME, network.NAME.endpoint.ID or middleware.NAME)",
		    name);
}

/* fgets() for inih over (buf, len), checking each line before inih sees it. */
static char *read_line(char *str, int num, void *stream)
{
	struct ini *c = stream;
	if (c->rc || c->off >= c->len)
		return NULL;
	const char *s = c->buf + c->off;
	size_t rest = c->len - c->off;
	const char *nl = memchr(s, '\n', rest);
	size_t n = nl ? (size_t)(nl - s) + 1 : rest;
	size_t content = n - (nl != NULL);
	int line = c->lineno + 1;
	if (content > 0 && s[content - 1] == '\r')
		content--;
	if (content > INI_LINE_MAX || n + 1 > (size_t)num) {
		fail(c, EINVAL, line, "line is longer than %d bytes", INI_LINE_MAX);
		return NULL;
	}
	for (size_t i = 0; i < content; i++) {
		unsigned char ch = (unsigned char)s[i];
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
			fail(c, EINVAL, line, "control character 0x%02x in line", ch);
			return NULL;
		}
	}
	memcpy(str, s, n);
	str[n] = '\0';
	c->off += n;
	c->lineno = line;
	const char *t = str;
	if (line == 1 && n >= 3 && memcmp(t, "\xEF\xBB\xBF", 3) == 0)
		t += 3; /* inih skips a UTF-8 BOM on the first line */
	while (*t == ' ' || *t == '\t')
		t++;
	if (*t == '[' && section_start(c, t, line) < 0)
		return NULL;
	return str;
}

int pol_load_buffer(const char *name, const char *buf, size_t len, struct pol_policy *out,
		    struct sv_err *err)
{
	pol_init(out);
	if (len > POL_FILE_MAX)
		return sv_err_set(err, EFBIG, "%s: policy file is larger than %d bytes", name,
				  POL_FILE_MAX);
	struct ini c = {
	    .name = name, .buf = buf, .len = len, .p = out, .err = err, .n_plain = SIZE_MAX};
	int r = ini_parse_stream(read_line, &c, handler, &c);
	if (c.rc == 0 && r > 0)
		fail(&c, EINVAL, r, "expected 'key = value', '[section]' or a comment");
	else if (c.rc == 0 && r < 0)
		fail(&c, EIO, c.lineno, "parser failure %d", r);
	if (c.rc == 0 && endpoint_finish(&c) == 0)
		rule_finish(&c);
	free(c.ips);
	pol_strv_free(&c.sub_names);
	if (c.rc == 0 && !(out->source = strdup(name)))
		c.rc = sv_err_set(err, ENOMEM, "%s: out of memory", name);
	if (c.rc == 0 && pol_validate_full(out, pol_warn_log, (void *)name, err) < 0) {
		sv_err_prefix(err, "%s", name);
		c.rc = -EINVAL;
	}
	if (c.rc < 0)
		pol_free(out);
	return c.rc;
}
