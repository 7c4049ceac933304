/* The policy model: restrictive default, validation of every field, whole-policy validation.
 *
 * Loader-independent: nothing here knows a file format (the INI reader and writer are in
 * policy_ini.c) and nothing here touches the filesystem (baseline enrichment is in
 * policy_enrich.c). Validators quote bad values but never echo control characters.
 */
#include "policy_int.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define QUOTE_MAX 72 /* bytes of a bad value quoted in a message */

/* A printable, bounded copy of @s for messages: control bytes become '?', long values "...". */
static const char *quote(const char *s, char *buf, size_t size)
{
	size_t i = 0, o = 0;
	for (; s[i] && o + 4 < size && i < QUOTE_MAX; i++) {
		unsigned char c = (unsigned char)s[i];
		buf[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	if (s[i] && o + 4 <= size) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

#define Q(s) quote((s), (char[QUOTE_MAX + 8]){0}, QUOTE_MAX + 8)

static bool has_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* --- string vectors ------------------------------------------------------------------------ */

static int strv_push_owned(struct pol_strv *sv, char *s)
{
	char **v = realloc(sv->v, (sv->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	v[sv->n++] = s;
	sv->v = v;
	return 0;
}

int pol_strv_push(struct pol_strv *sv, const char *s)
{
	char *copy = strdup(s);
	if (!copy)
		return -ENOMEM;
	int r = strv_push_owned(sv, copy);
	if (r < 0)
		free(copy);
	return r;
}

bool pol_strv_contains(const struct pol_strv *sv, const char *s)
{
	for (size_t i = 0; i < sv->n; i++)
		if (strcmp(sv->v[i], s) == 0)
			return true;
	return false;
}

void pol_strv_free(struct pol_strv *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	sv->v = NULL;
	sv->n = 0;
}

/* --- lifetime ------------------------------------------------------------------------------ */

void pol_init(struct pol_policy *p)
{
	memset(p, 0, sizeof(*p));
	p->version = 1;
	p->include_workdir = true;
	p->landlock_compat = POL_BEST_EFFORT;
}

/* Contract §3.2: no identity, no network rules (all egress denied). */
static const char *const default_ro[] = {"/usr", "/lib", "/proc",   "/dev/urandom",
					 "/app", "/etc", "/var/log"};
static const char *const default_rw[] = {"/tmp", "/dev/null"};

int pol_set_default(struct pol_policy *p, struct sv_err *err)
{
	pol_init(p);
	int r = 0;
	for (size_t i = 0; r == 0 && i < SV_ARRAY_SIZE(default_ro); i++)
		r = pol_strv_push(&p->read_only, default_ro[i]);
	for (size_t i = 0; r == 0 && i < SV_ARRAY_SIZE(default_rw); i++)
		r = pol_strv_push(&p->read_write, default_rw[i]);
	if (r == 0 && !(p->source = strdup("default")))
		r = -ENOMEM;
	if (r < 0) {
		pol_free(p);
		return sv_err_set(err, -r, "restrictive default policy: out of memory");
	}
	return 0;
}

/* --- filesystem paths ---------------------------------------------------------------------- */

/* Call @fn on each '/'-separated component of @p (empty ones included, except the leading). */
static bool path_any_component(const char *p, bool (*fn)(const char *c, size_t n))
{
	const char *c = p + (*p == '/');
	for (;;) {
		const char *end = strchr(c, '/');
		size_t n = end ? (size_t)(end - c) : strlen(c);
		if (fn(c, n))
			return true;
		if (!end)
			return false;
		c = end + 1;
	}
}

static bool comp_is_dotdot(const char *c, size_t n)
{
	return n == 2 && c[0] == '.' && c[1] == '.';
}

static bool comp_is_named(const char *c, size_t n)
{
	return !(n == 0 || (n == 1 && c[0] == '.'));
}

/* Would the normalised path end in a blank? INI trims values, so it could not be read back. */
static bool path_ends_blank(const char *p)
{
	char last = '\0';
	for (const char *c = p; *c;) {
		while (*c == '/')
			c++;
		const char *end = strchrnul(c, '/');
		if (comp_is_named(c, (size_t)(end - c)))
			last = end[-1];
		c = end;
	}
	return last == ' ' || last == '\t';
}

int pol_fs_path_check(const char *path, bool read_write, struct sv_err *err)
{
	size_t len = strnlen(path, POL_PATH_MAX + 1);
	if (len > POL_PATH_MAX)
		return sv_err_set(err, ENAMETOOLONG, "path is longer than %d bytes (got '%s')",
				  POL_PATH_MAX, Q(path));
	if (path[0] != '/')
		return sv_err_set(err, EINVAL, "path must be absolute (got '%s')", Q(path));
	if (has_ctl(path))
		return sv_err_set(err, EINVAL, "path contains a control character (got '%s')",
				  Q(path));
	if (path_any_component(path, comp_is_dotdot))
		return sv_err_set(err, EINVAL, "path must not contain a '..' component (got '%s')",
				  Q(path));
	if (path_ends_blank(path))
		return sv_err_set(err, EINVAL, "path must not end in a blank (got '%s')", Q(path));
	if (read_write && !path_any_component(path, comp_is_named))
		return sv_err_set(err, EINVAL,
				  "read-write '/' is overly broad: name the directories instead");
	return 0;
}

int pol_path_normalize(const char *path, char **out)
{
	size_t len = strlen(path);
	char *buf = malloc(len + 2);
	if (!buf)
		return -ENOMEM;
	size_t o = 0;
	const char *c = path;
	while (*c) {
		while (*c == '/')
			c++;
		const char *end = strchrnul(c, '/');
		size_t n = (size_t)(end - c);
		if (comp_is_named(c, n)) {
			buf[o++] = '/';
			memcpy(buf + o, c, n);
			o += n;
		}
		c = end;
	}
	if (o == 0)
		buf[o++] = '/';
	buf[o] = '\0';
	*out = buf;
	return 0;
}

int pol_fs_add(struct pol_policy *p, bool read_write, const char *path, struct sv_err *err)
{
	int r = pol_fs_path_check(path, read_write, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *norm = NULL;
	if (pol_path_normalize(path, &norm) < 0)
		return sv_err_set(err, ENOMEM, "out of memory");
	struct pol_strv *sv = read_write ? &p->read_write : &p->read_only;
	if (pol_strv_contains(sv, norm))
		return 0;
	if (strv_push_owned(sv, norm) < 0)
		return sv_err_set(err, ENOMEM, "out of memory");
	norm = NULL;
	return 1;
}

/* --- identities, names, binaries ----------------------------------------------------------- */

int pol_identity_check(const char *id, struct sv_err *err)
{
	size_t n = strnlen(id, POL_NAME_MAX + 1);
	bool numeric = n > 0;
	for (size_t i = 0; i < n; i++)
		numeric = numeric && is_digit(id[i]);
	if (numeric) {
		unsigned long long v = 0;
		int r = sv_parse_uint(id, 0, ULLONG_MAX, &v);
		if (r == 0 && v == 0)
			return sv_err_set(err, EINVAL, "must not be root (got '%s')", Q(id));
		if (r < 0 || v > POL_ID_MAX)
			return sv_err_set(err, ERANGE, "numeric id must be in 1..%llu (got '%s')",
					  POL_ID_MAX, Q(id));
		if (id[0] == '0')
			return sv_err_set(err, EINVAL, "numeric id has leading zeros (got '%s')",
					  Q(id));
		return 0;
	}
	if (n == 0)
		return sv_err_set(err, EINVAL, "must not be empty");
	if (n > POL_NAME_MAX)
		return sv_err_set(err, EINVAL, "name is longer than %d bytes (got '%s')",
				  POL_NAME_MAX, Q(id));
	bool ok = id[0] != '-' && strcmp(id, ".") != 0 && strcmp(id, "..") != 0;
	for (size_t i = 0; ok && i < n; i++)
		ok = is_alnum(id[i]) || id[i] == '.' || id[i] == '_' || id[i] == '-';
	if (!ok)
		return sv_err_set(err, EINVAL,
				  "not a portable name: use letters, digits, '.', '_', '-', not "
				  "starting with '-' (got '%s')",
				  Q(id));
	if (strcmp(id, "root") == 0)
		return sv_err_set(err, EINVAL, "must not be root (got '%s')", Q(id));
	return 0;
}

int pol_rule_name_check(const char *name, struct sv_err *err)
{
	size_t n = strnlen(name, POL_RULE_NAME_MAX + 1);
	if (n == 0)
		return sv_err_set(err, EINVAL, "rule name must not be empty");
	if (n > POL_RULE_NAME_MAX)
		return sv_err_set(err, EINVAL, "rule name is longer than %d bytes (got '%s')",
				  POL_RULE_NAME_MAX, Q(name));
	for (size_t i = 0; i < n; i++)
		if (!is_alnum(name[i]) && !strchr("._-", name[i]))
			return sv_err_set(err, EINVAL,
					  "rule name may only hold letters, digits, '.', '_', '-' "
					  "(got '%s')",
					  Q(name));
	return 0;
}

static bool comp_bad_binary(const char *c, size_t n)
{
	if (!comp_is_named(c, n) || comp_is_dotdot(c, n))
		return true;
	for (size_t i = 0; i + 1 < n; i++)
		if (c[i] == '*' && c[i + 1] == '*' && n != 2)
			return true;
	return false;
}

int pol_binary_check(const char *path, struct sv_err *err)
{
	size_t len = strnlen(path, POL_PATH_MAX + 1);
	if (len > POL_PATH_MAX)
		return sv_err_set(err, ENAMETOOLONG, "path is longer than %d bytes (got '%s')",
				  POL_PATH_MAX, Q(path));
	if (path[0] != '/')
		return sv_err_set(err, EINVAL, "binary path must be absolute (got '%s')", Q(path));
	if (has_ctl(path))
		return sv_err_set(err, EINVAL, "path contains a control character (got '%s')",
				  Q(path));
	const char *bad = strpbrk(path, "?[]{}\\");
	if (bad)
		return sv_err_set(err, EINVAL,
				  "unsupported glob character '%c': only '*' and '**' (got '%s')",
				  *bad, Q(path));
	if (path[1] == '\0' || path_any_component(path, comp_bad_binary))
		return sv_err_set(
		    err, EINVAL,
		    "binary path must be canonical (no '//', '.', '..', trailing '/') "
		    "and '**' must be a whole component (got '%s')",
		    Q(path));
	/* As for filesystem paths: INI trims values, so one ending in a blank could not be
	 * written back, and every loader refuses it alike. */
	if (path_ends_blank(path))
		return sv_err_set(err, EINVAL, "path must not end in a blank (got '%s')", Q(path));
	return 0;
}

/* --- hosts and addresses ------------------------------------------------------------------- */

/* Strict dotted quad: four decimal fields 0..255 without leading zeros, nothing else. */
static bool ipv4_parse(const char *s, size_t n, uint8_t out[4])
{
	size_t i = 0;
	for (int f = 0; f < 4; f++) {
		if (f > 0) {
			if (i >= n || s[i] != '.')
				return false;
			i++;
		}
		size_t start = i;
		unsigned v = 0;
		while (i < n && is_digit(s[i]) && i - start < 3)
			v = v * 10 + (unsigned)(s[i++] - '0');
		if (i == start || v > 255 || (s[start] == '0' && i - start > 1))
			return false;
		out[f] = (uint8_t)v;
	}
	return i == n;
}

static bool ipv6_parse(const char *s, size_t n, uint8_t out[16])
{
	char buf[INET6_ADDRSTRLEN + 1];
	if (n >= sizeof(buf))
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return inet_pton(AF_INET6, buf, out) == 1;
}

static int host_glob_check(const char *h, size_t labels, struct sv_err *err)
{
	if (strcmp(h, "*") == 0 || strcmp(h, "**") == 0)
		return sv_err_set(err, EINVAL, "wildcard host '%s' would match every host", h);
	if (labels <= 2)
		return sv_err_set(
		    err, EINVAL,
		    "TLD wildcard is not allowed: a wildcard host needs at least three "
		    "labels, like '*.example.com' (got '%s')",
		    Q(h));
	const char *l = h;
	for (size_t i = 0; i < labels; i++) {
		const char *end = strchrnul(l, '.');
		size_t n = (size_t)(end - l);
		const char *star = memchr(l, '*', n);
		const char *dstar = n >= 2 ? strstr(l, "**") : NULL;
		if (i == 0 && dstar && dstar < end && n != 2)
			return sv_err_set(
			    err, EINVAL, "'**' is only allowed as the whole first label (got '%s')",
			    Q(h));
		if (i > 0 && star && i == labels - 1)
			return sv_err_set(err, EINVAL,
					  "a wildcard is not allowed in the last label (got '%s')",
					  Q(h));
		if (i > 0 && star && (n != 1))
			return sv_err_set(
			    err, EINVAL,
			    "a wildcard after the first label must be a whole label '*' "
			    "(got '%s')",
			    Q(h));
		l = end + 1;
	}
	return 0;
}

/* A label inet_aton() would read as a number (decimal, octal or 0x-hex): such hosts are IPv4
 * literals in disguise ("0x7f.1", "2130706433"), accepted only as a strict dotted quad. */
static bool label_is_number(const char *l, size_t n)
{
	size_t i = 0;
	bool hex = n >= 2 && l[0] == '0' && l[1] == 'x';
	if (hex)
		i = 2;
	for (; i < n; i++)
		if (!is_digit(l[i]) && !(hex && l[i] >= 'a' && l[i] <= 'f'))
			return false;
	return true;
}

int pol_host_canon(const char *host, char *buf, size_t size, enum pol_host_kind *kind,
		   struct sv_err *err)
{
	size_t n = strlen(host);
	if (n == 0)
		return sv_err_set(err, EINVAL, "host must not be empty");
	if (size < POL_HOST_MAX + 1)
		return sv_err_set(err, EINVAL, "host buffer too small");
	uint8_t a[16];
	if (strchr(host, ':')) {
		if (!ipv6_parse(host, n, a))
			return sv_err_set(err, EINVAL, "invalid IPv6 address (got '%s')", Q(host));
		inet_ntop(AF_INET6, a, buf, (socklen_t)size);
		*kind = POL_HOST_IPV6;
		return 0;
	}
	if (n > POL_HOST_MAX)
		return sv_err_set(err, EINVAL, "host is longer than %d bytes (got '%s')",
				  POL_HOST_MAX, Q(host));
	size_t labels = 0, start = 0;
	bool star = false, numeric = true;
	for (size_t i = 0; i <= n; i++) {
		char c = host[i];
		if (c == '.' || c == '\0') {
			if (i == start)
				return sv_err_set(err, EINVAL, "host has an empty label (got '%s')",
						  Q(host));
			if (i - start > POL_LABEL_MAX)
				return sv_err_set(err, EINVAL,
						  "host label is longer than %d bytes (got '%s')",
						  POL_LABEL_MAX, Q(host));
			numeric = numeric && label_is_number(buf + start, i - start);
			labels++;
			start = i + 1;
			buf[i] = c;
			continue;
		}
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (!is_alnum(c) && c != '-' && c != '_' && c != '*')
			return sv_err_set(err, EINVAL, "invalid character in host (got '%s')",
					  Q(host));
		star = star || c == '*';
		buf[i] = c;
	}
	if (star) {
		int r = host_glob_check(buf, labels, err);
		if (r < 0)
			return r;
		*kind = POL_HOST_GLOB;
		return 0;
	}
	if (numeric) {
		if (!ipv4_parse(buf, n, a))
			return sv_err_set(
			    err, EINVAL, "invalid IPv4 address: use a plain dotted quad (got '%s')",
			    Q(host));
		*kind = POL_HOST_IPV4;
		return 0;
	}
	*kind = POL_HOST_NAME;
	return 0;
}

static unsigned cidr_bits(const struct pol_cidr *c)
{
	return c->family == 4 ? 32 : 128;
}

static bool cidr_host_bits_zero(const struct pol_cidr *c)
{
	for (unsigned i = c->prefix; i < cidr_bits(c); i++)
		if (c->addr[i / 8] & (0x80u >> (i % 8)))
			return false;
	return true;
}

size_t pol_cidr_format(const struct pol_cidr *c, char *buf, size_t size)
{
	char a[INET6_ADDRSTRLEN];
	if (!inet_ntop(c->family == 4 ? AF_INET : AF_INET6, c->addr, a, sizeof(a)))
		a[0] = '\0';
	return sv_fmt(buf, size, "%s/%u", a, (unsigned)c->prefix);
}

int pol_cidr_parse(const char *s, struct pol_cidr *out, struct sv_err *err)
{
	struct pol_cidr c = {0};
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	if (memchr(s, ':', alen)) {
		c.family = 6;
		if (!ipv6_parse(s, alen, c.addr))
			return sv_err_set(err, EINVAL, "invalid IPv6 address (got '%s')", Q(s));
	} else {
		c.family = 4;
		if (!ipv4_parse(s, alen, c.addr))
			return sv_err_set(err, EINVAL, "invalid IPv4 address (got '%s')", Q(s));
	}
	unsigned long long prefix = cidr_bits(&c);
	if (slash && sv_parse_uint(slash + 1, 0, cidr_bits(&c), &prefix) < 0)
		return sv_err_set(err, ERANGE, "prefix length must be 0..%u (got '%s')",
				  cidr_bits(&c), Q(s));
	c.prefix = (uint8_t)prefix;
	if (!cidr_host_bits_zero(&c)) {
		for (unsigned i = c.prefix; i < cidr_bits(&c); i++)
			c.addr[i / 8] &= (uint8_t) ~(0x80u >> (i % 8));
		char net[64];
		pol_cidr_format(&c, net, sizeof(net));
		return sv_err_set(err, EINVAL, "host bits are set; did you mean '%s'? (got '%s')",
				  net, Q(s));
	}
	*out = c;
	return 0;
}

/* --- whole-policy validation --------------------------------------------------------------- */

static int validate_fs(const struct pol_strv *sv, bool rw, struct sv_err *err)
{
	const char *key = rw ? "read_write" : "read_only";
	for (size_t i = 0; i < sv->n; i++) {
		int r = pol_fs_path_check(sv->v[i], rw, err);
		if (r < 0) {
			sv_err_prefix(err, "%s", key);
			return r;
		}
		_cleanup_free_ char *norm = NULL;
		if (pol_path_normalize(sv->v[i], &norm) < 0)
			return sv_err_set(err, ENOMEM, "out of memory");
		if (strcmp(norm, sv->v[i]) != 0)
			return sv_err_set(err, EINVAL, "%s: path is not normalised (got '%s')", key,
					  Q(sv->v[i]));
		for (size_t j = 0; j < i; j++)
			if (strcmp(sv->v[j], sv->v[i]) == 0)
				return sv_err_set(err, EINVAL, "%s: duplicate path '%s'", key,
						  Q(sv->v[i]));
	}
	return 0;
}

static int validate_endpoint(const struct pol_endpoint *e, struct sv_err *err)
{
	if (e->kind == POL_HOST_NONE) {
		if (e->host)
			return sv_err_set(err, EINVAL, "hostless endpoint has a host");
		if (e->n_allowed_ips == 0)
			return sv_err_set(err, EINVAL, "hostless endpoint needs allowed_ips");
	} else {
		char canon[POL_HOST_MAX + 1];
		enum pol_host_kind kind = POL_HOST_NONE;
		if (!e->host)
			return sv_err_set(err, EINVAL, "endpoint has no host");
		int r = pol_host_canon(e->host, canon, sizeof(canon), &kind, err);
		if (r < 0)
			return r;
		if (kind != e->kind || strcmp(canon, e->host) != 0)
			return sv_err_set(err, EINVAL, "host is not canonical (got '%s')",
					  Q(e->host));
	}
	if (e->n_ports == 0 || e->n_ports > POL_PORTS_MAX)
		return sv_err_set(err, EINVAL, "endpoint needs 1..%d ports", POL_PORTS_MAX);
	for (size_t i = 0; i < e->n_ports; i++) {
		if (e->ports[i] == 0)
			return sv_err_set(err, ERANGE, "port must be in 1..65535 (got '0')");
		for (size_t j = 0; j < i; j++)
			if (e->ports[j] == e->ports[i])
				return sv_err_set(err, EINVAL, "duplicate port %u", e->ports[i]);
	}
	if (e->n_allowed_ips > POL_RULE_ITEMS_MAX)
		return sv_err_set(err, E2BIG, "too many allowed_ips (max %d)", POL_RULE_ITEMS_MAX);
	for (size_t i = 0; i < e->n_allowed_ips; i++) {
		const struct pol_cidr *c = &e->allowed_ips[i];
		if ((c->family != 4 && c->family != 6) || c->prefix > cidr_bits(c) ||
		    !cidr_host_bits_zero(c))
			return sv_err_set(err, EINVAL, "allowed_ips entry %zu is invalid", i);
	}
	return 0;
}

static int validate_rule(const struct pol_network_rule *rule, struct sv_err *err)
{
	if (rule->n_endpoints == 0)
		return sv_err_set(err, EINVAL, "rule has no endpoint");
	if (rule->n_endpoints > POL_RULE_ITEMS_MAX || rule->binaries.n > POL_RULE_ITEMS_MAX)
		return sv_err_set(err, E2BIG, "too many endpoints or binaries (max %d each)",
				  POL_RULE_ITEMS_MAX);
	for (size_t i = 0; i < rule->n_endpoints; i++) {
		int r = validate_endpoint(&rule->endpoints[i], err);
		if (r < 0) {
			sv_err_prefix(err, "endpoint %zu", i + 1);
			return r;
		}
	}
	for (size_t i = 0; i < rule->binaries.n; i++) {
		int r = pol_binary_check(rule->binaries.v[i], err);
		if (r < 0) {
			sv_err_prefix(err, "binary");
			return r;
		}
	}
	return 0;
}

int pol_validate_l4(const struct pol_policy *p, struct sv_err *err)
{
	if (p->version != 1)
		return sv_err_set(err, EINVAL, "unsupported policy version %u", p->version);
	if (p->landlock_compat != POL_BEST_EFFORT && p->landlock_compat != POL_HARD_REQUIREMENT)
		return sv_err_set(err, EINVAL, "compatibility: invalid value");
	if (p->read_only.n + p->read_write.n > POL_PATHS_MAX)
		return sv_err_set(err, E2BIG, "too many filesystem paths (%zu > %d)",
				  p->read_only.n + p->read_write.n, POL_PATHS_MAX);
	int r = validate_fs(&p->read_only, false, err);
	if (r == 0)
		r = validate_fs(&p->read_write, true, err);
	if (r < 0)
		return r;
	const char *ids[] = {p->run_as_user, p->run_as_group};
	const char *id_keys[] = {"run_as_user", "run_as_group"};
	for (size_t i = 0; i < 2; i++) {
		if (ids[i] && (r = pol_identity_check(ids[i], err)) < 0) {
			sv_err_prefix(err, "%s", id_keys[i]);
			return r;
		}
	}
	if (p->n_rules > POL_RULES_MAX)
		return sv_err_set(err, E2BIG, "too many network rules (max %d)", POL_RULES_MAX);
	size_t ips = 0;
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct pol_network_rule *rule = &p->rules[i];
		if (!rule->name || (r = pol_rule_name_check(rule->name, err)) < 0)
			return rule->name ? r : sv_err_set(err, EINVAL, "network rule has no name");
		for (size_t j = 0; j < i; j++)
			if (strcmp(p->rules[j].name, rule->name) == 0)
				return sv_err_set(err, EINVAL, "duplicate network rule '%s'",
						  rule->name);
		if ((r = validate_rule(rule, err)) < 0) {
			sv_err_prefix(err, "network rule '%s'", rule->name);
			return r;
		}
		for (size_t j = 0; j < rule->n_endpoints; j++)
			ips += rule->endpoints[j].n_allowed_ips;
	}
	if (ips > POL_ENDPOINT_IPS_MAX)
		return sv_err_set(err, E2BIG,
				  "too many allowed_ips entries over all endpoints "
				  "(%zu > %d)",
				  ips, POL_ENDPOINT_IPS_MAX);
	return 0;
}
