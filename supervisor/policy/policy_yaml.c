/* The YAML policy format, OpenShell's own (contract §3.5, docs/policy.md): the event walker and
 * the top of the schema (version, filesystem_policy, landlock, process).
 *
 * Same model and same validation as the INI and gateway loaders; every error names
 * "<file>:<line>:<col>: <field>". It never accepts what OpenShell's deny_unknown_fields parser
 * would refuse, never follows an alias, and never leaves a half-filled policy behind.
 */
#include "policy_yaml.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- errors and the field path ------------------------------------------------------------- */

int pol_yaml_fail(struct pol_yaml *c, const yaml_mark_t *m, int code, const char *fmt, ...)
{
	if (c->rc)
		return c->rc;
	char msg[SV_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	sv_vfmt(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->rc = sv_err_set(c->err, code, "%s:%zu:%zu: %s%s%s", c->name, m->line + 1, m->column + 1,
			   c->path, c->path_len ? ": " : "", msg);
	return c->rc;
}

int pol_yaml_fail_err(struct pol_yaml *c, const yaml_mark_t *m, int r, const struct sv_err *e)
{
	return pol_yaml_fail(c, m, -r, "%s", e->msg);
}

static size_t push(struct pol_yaml *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static size_t push(struct pol_yaml *c, const char *fmt, ...)
{
	size_t old = c->path_len;
	va_list ap;
	va_start(ap, fmt);
	c->path_len += sv_vfmt(c->path + old, sizeof(c->path) - old, fmt, ap);
	va_end(ap);
	return old;
}

size_t pol_yaml_push_key(struct pol_yaml *c, const char *key)
{
	return push(c, c->path_len ? ".%s" : "%s", key);
}

size_t pol_yaml_push_index(struct pol_yaml *c, size_t i)
{
	return push(c, "[%zu]", i);
}

void pol_yaml_pop(struct pol_yaml *c, size_t len)
{
	c->path_len = len;
	c->path[len] = '\0';
}

/* --- events -------------------------------------------------------------------------------- */

static const char *ev_what(const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		return "a scalar";
	case YAML_SEQUENCE_START_EVENT:
		return "a list";
	case YAML_MAPPING_START_EVENT:
		return "a mapping";
	default:
		return "the end of a collection";
	}
}

/* Where a reader error (bad encoding, a control byte) sits: libyaml gives only the offset. */
static yaml_mark_t offset_mark(const struct pol_yaml *c, size_t off)
{
	yaml_mark_t m = {.index = off};
	const unsigned char *s = c->parser.input.string.start;
	size_t len = (size_t)(c->parser.input.string.end - s);
	for (size_t i = 0; i < off && i < len; i++) {
		if (s[i] == '\n') {
			m.line++;
			m.column = 0;
		} else if ((s[i] & 0xc0) != 0x80) {
			m.column++;
		}
	}
	return m;
}

static int parse_error(struct pol_yaml *c)
{
	const yaml_parser_t *ps = &c->parser;
	pol_yaml_pop(c, 0);
	switch (ps->error) {
	case YAML_MEMORY_ERROR:
		return pol_yaml_fail(c, &ps->mark, ENOMEM, "out of memory");
	case YAML_READER_ERROR: {
		yaml_mark_t m = offset_mark(c, ps->problem_offset);
		return pol_yaml_fail(c, &m, EINVAL, "invalid YAML: %s", ps->problem);
	}
	default:
		if (ps->context)
			return pol_yaml_fail(c, &ps->problem_mark, EINVAL, "invalid YAML: %s %s",
					     ps->problem ? ps->problem : "error", ps->context);
		return pol_yaml_fail(c, &ps->problem_mark, EINVAL, "invalid YAML: %s",
				     ps->problem ? ps->problem : "error");
	}
}

int pol_yaml_next(struct pol_yaml *c)
{
	if (c->rc)
		return c->rc;
	if (c->have_ev)
		yaml_event_delete(&c->ev);
	c->have_ev = false;
	if (!yaml_parser_parse(&c->parser, &c->ev))
		return parse_error(c);
	c->have_ev = true;
	const yaml_event_t *ev = &c->ev;
	const yaml_char_t *anchor = NULL, *tag = NULL;
	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		return pol_yaml_fail_here(c, EINVAL, "aliases (*%.64s) are not supported",
					  (const char *)ev->data.alias.anchor);
	case YAML_SCALAR_EVENT:
		anchor = ev->data.scalar.anchor;
		tag = ev->data.scalar.tag;
		break;
	case YAML_SEQUENCE_START_EVENT:
		anchor = ev->data.sequence_start.anchor;
		tag = ev->data.sequence_start.tag;
		break;
	case YAML_MAPPING_START_EVENT:
		anchor = ev->data.mapping_start.anchor;
		tag = ev->data.mapping_start.tag;
		break;
	default:
		return 0;
	}
	if (anchor)
		return pol_yaml_fail_here(c, EINVAL, "anchors (&%.64s) are not supported",
					  (const char *)anchor);
	if (tag) {
		/* A tag's %-escapes are decoded by libyaml: quote it only when it is printable. */
		const char *t = (const char *)tag;
		bool printable = strlen(t) <= 64;
		for (const char *q = t; printable && *q; q++)
			printable = *q > 0x20 && *q < 0x7f;
		return pol_yaml_fail_here(c, EINVAL, "tags%s%s%s are not supported",
					  printable ? " (" : "", printable ? t : "",
					  printable ? ")" : "");
	}
	return 0;
}

int pol_yaml_expect(struct pol_yaml *c, yaml_event_type_t type, const char *what)
{
	if (c->ev.type == type)
		return 0;
	if (c->ev.type == YAML_SCALAR_EVENT && pol_yaml_is_null(c))
		return pol_yaml_fail_here(c, EINVAL, "expected %s, got null", what);
	return pol_yaml_fail_here(c, EINVAL, "expected %s, got %s", what, ev_what(&c->ev));
}

int pol_yaml_enter(struct pol_yaml *c)
{
	if (++c->depth > POL_YAML_DEPTH_MAX)
		return pol_yaml_fail_here(c, EINVAL, "nested deeper than %d levels",
					  POL_YAML_DEPTH_MAX);
	return 0;
}

void pol_yaml_leave(struct pol_yaml *c)
{
	c->depth--;
}

/* --- scalars ------------------------------------------------------------------------------- */

static const char *sval(const struct pol_yaml *c)
{
	return (const char *)c->ev.data.scalar.value;
}

bool pol_yaml_is_plain(const struct pol_yaml *c)
{
	return c->ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

bool pol_yaml_is_null(const struct pol_yaml *c)
{
	if (c->ev.type != YAML_SCALAR_EVENT || !pol_yaml_is_plain(c))
		return false;
	const char *v = sval(c);
	return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
	       !strcmp(v, "NULL");
}

/* The current scalar as a C string: no NUL inside, no control byte (a tab is fine). */
int pol_yaml_text(struct pol_yaml *c, const char *what, const char **out)
{
	if (pol_yaml_expect(c, YAML_SCALAR_EVENT, what) < 0)
		return c->rc;
	if (pol_yaml_is_null(c))
		return pol_yaml_fail_here(c, EINVAL, "expected %s, got null", what);
	const char *v = sval(c);
	size_t n = c->ev.data.scalar.length;
	if (strlen(v) != n)
		return pol_yaml_fail_here(c, EINVAL, "value contains a NUL byte");
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)v[i];
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return pol_yaml_fail_here(c, EINVAL, "value contains control byte 0x%02x",
						  ch);
	}
	*out = v;
	return 0;
}

int pol_yaml_str(struct pol_yaml *c, char **out)
{
	const char *v;
	if (pol_yaml_text(c, "a string", &v) < 0)
		return c->rc;
	if (!(*out = strdup(v)))
		return pol_yaml_fail_here(c, ENOMEM, "out of memory");
	return 0;
}

int pol_yaml_str_opt(struct pol_yaml *c, char **out)
{
	const char *v;
	*out = NULL;
	if (pol_yaml_text(c, "a string", &v) < 0)
		return c->rc;
	if (*v && !(*out = strdup(v)))
		return pol_yaml_fail_here(c, ENOMEM, "out of memory");
	return 0;
}

int pol_yaml_bool(struct pol_yaml *c, bool *out)
{
	const char *v;
	if (pol_yaml_text(c, "true or false", &v) < 0)
		return c->rc;
	static const char *const t[] = {"true", "True", "TRUE"};
	static const char *const f[] = {"false", "False", "FALSE"};
	for (size_t i = 0; pol_yaml_is_plain(c) && i < SV_ARRAY_SIZE(t); i++) {
		if (!strcmp(v, t[i]) || !strcmp(v, f[i])) {
			*out = !strcmp(v, t[i]);
			return 0;
		}
	}
	return pol_yaml_fail_here(c, EINVAL, "expected true or false (got %s'%.64s')",
				  pol_yaml_is_plain(c) ? "" : "the quoted string ", v);
}

/* A plain decimal integer ("+" allowed, as YAML's core schema does). */
static int dec(struct pol_yaml *c, const char *v, bool *neg, unsigned long long *out)
{
	const char *s = v;
	*neg = *s == '-';
	if (*s == '-' || *s == '+')
		s++;
	if (!pol_yaml_is_plain(c) || !*s || strspn(s, "0123456789") != strlen(s))
		return pol_yaml_fail_here(c, EINVAL, "expected a decimal integer (got %s'%.64s')",
					  pol_yaml_is_plain(c) ? "" : "the quoted string ", v);
	unsigned long long n = 0;
	for (; *s; s++) {
		if (n > (ULLONG_MAX - 9) / 10)
			return pol_yaml_fail_here(c, ERANGE, "number is too large (got '%.64s')",
						  v);
		n = n * 10 + (unsigned)(*s - '0');
	}
	*out = n;
	return 0;
}

int pol_yaml_uint(struct pol_yaml *c, unsigned long long min, unsigned long long max,
		  unsigned long long *out)
{
	const char *v = "";
	bool neg = false;
	unsigned long long n = 0;
	if (pol_yaml_text(c, "an integer", &v) < 0 || dec(c, v, &neg, &n) < 0)
		return c->rc;
	if ((neg && n) || n < min || n > max)
		return pol_yaml_fail_here(c, ERANGE, "must be %llu..%llu (got %s)", min, max, v);
	*out = n;
	return 0;
}

int pol_yaml_int32(struct pol_yaml *c, int32_t *out)
{
	const char *v = "";
	bool neg = false;
	unsigned long long n = 0;
	if (pol_yaml_text(c, "an integer", &v) < 0 || dec(c, v, &neg, &n) < 0)
		return c->rc;
	if (n > (neg ? 2147483648ULL : 2147483647ULL))
		return pol_yaml_fail_here(c, ERANGE, "must be -2147483648..2147483647 (got %s)", v);
	*out = neg ? (int32_t)(-(long long)n) : (int32_t)n;
	return 0;
}

/* --- collections --------------------------------------------------------------------------- */

/* The next key of a mapping, or 1 at its end. */
int pol_yaml_next_key(struct pol_yaml *c, char *key, size_t size)
{
	if (pol_yaml_next(c) < 0)
		return c->rc;
	if (c->ev.type == YAML_MAPPING_END_EVENT)
		return 1;
	const char *v = "";
	if (c->ev.type != YAML_SCALAR_EVENT)
		return pol_yaml_fail_here(c, EINVAL, "a key must be a string, not %s",
					  ev_what(&c->ev));
	if (pol_yaml_is_null(c))
		return pol_yaml_fail_here(c, EINVAL, "a key must not be null or empty");
	if (pol_yaml_text(c, "a key", &v) < 0)
		return c->rc;
	if (strlen(v) >= size)
		return pol_yaml_fail_here(c, EINVAL, "key is longer than %zu bytes", size - 1);
	memcpy(key, v, strlen(v) + 1);
	return 0;
}

int pol_yaml_struct(struct pol_yaml *c, const struct pol_yaml_field *fields, size_t n, void *obj)
{
	if (pol_yaml_expect(c, YAML_MAPPING_START_EVENT, "a mapping") < 0 || pol_yaml_enter(c) < 0)
		return c->rc;
	uint64_t seen = 0;
	char key[POL_YAML_KEY_MAX + 1];
	int r;
	while ((r = pol_yaml_next_key(c, key, sizeof(key))) == 0) {
		size_t i = 0;
		while (i < n && strcmp(fields[i].key, key) != 0)
			i++;
		if (i == n && n > 12)
			return pol_yaml_fail_here(c, EINVAL, "unknown key '%.64s'", key);
		if (i == n) {
			char want[SV_ERR_MSG_MAX / 2];
			size_t o = 0;
			for (size_t j = 0; j < n; j++)
				o += sv_fmt(want + o, sizeof(want) - o, "%s%s", j ? ", " : "",
					    fields[j].key);
			return pol_yaml_fail_here(c, EINVAL, "unknown key '%.64s' (expected %s)",
						  key, want);
		}
		if (seen & (1ULL << i))
			return pol_yaml_fail_here(c, EINVAL, "duplicate key '%s'", key);
		seen |= 1ULL << i;
		size_t old = pol_yaml_push_key(c, key);
		if (pol_yaml_next(c) < 0 || fields[i].fn(c, obj) < 0)
			return c->rc;
		pol_yaml_pop(c, old);
	}
	pol_yaml_leave(c);
	return r < 0 ? r : 0;
}

int pol_yaml_dict(struct pol_yaml *c, size_t max, pol_yaml_entry_fn fn, void *obj)
{
	if (pol_yaml_expect(c, YAML_MAPPING_START_EVENT, "a mapping") < 0 || pol_yaml_enter(c) < 0)
		return c->rc;
	struct pol_strv keys = {0};
	char key[POL_YAML_KEY_MAX + 1];
	int r;
	while ((r = pol_yaml_next_key(c, key, sizeof(key))) == 0) {
		if (pol_strv_contains(&keys, key)) {
			r = pol_yaml_fail_here(c, EINVAL, "duplicate key '%.64s'", key);
			break;
		}
		if (keys.n >= max) {
			r = pol_yaml_fail_here(c, E2BIG, "too many entries (max %zu)", max);
			break;
		}
		if (pol_strv_push(&keys, key) < 0) {
			r = pol_yaml_fail_here(c, ENOMEM, "out of memory");
			break;
		}
		yaml_mark_t km = c->ev.start_mark;
		size_t old = pol_yaml_push_key(c, key);
		if ((r = pol_yaml_next(c)) < 0 || (r = fn(c, obj, key, &km)) < 0)
			break;
		pol_yaml_pop(c, old);
	}
	pol_strv_free(&keys);
	if (r < 0)
		return c->rc;
	pol_yaml_leave(c);
	return 0;
}

int pol_yaml_list(struct pol_yaml *c, size_t max, pol_yaml_item_fn fn, void *obj)
{
	if (pol_yaml_expect(c, YAML_SEQUENCE_START_EVENT, "a list") < 0 || pol_yaml_enter(c) < 0)
		return c->rc;
	for (size_t i = 0;; i++) {
		if (pol_yaml_next(c) < 0)
			return c->rc;
		if (c->ev.type == YAML_SEQUENCE_END_EVENT)
			break;
		if (i >= max)
			return pol_yaml_fail_here(c, E2BIG, "too many entries (max %zu)", max);
		size_t old = pol_yaml_push_index(c, i);
		if (fn(c, obj, i) < 0)
			return c->rc;
		pol_yaml_pop(c, old);
	}
	pol_yaml_leave(c);
	return 0;
}

struct strv_ctx {
	struct pol_strv *sv;
};

static int strv_item(struct pol_yaml *c, void *obj, size_t i)
{
	(void)i;
	struct strv_ctx *s = obj;
	char *v = NULL;
	if (pol_yaml_str(c, &v) < 0)
		return c->rc;
	char **nv = realloc(s->sv->v, (s->sv->n + 1) * sizeof(*nv));
	if (!nv) {
		free(v);
		return pol_yaml_fail_here(c, ENOMEM, "out of memory");
	}
	nv[s->sv->n++] = v;
	s->sv->v = nv;
	return 0;
}

int pol_yaml_strv(struct pol_yaml *c, struct pol_strv *sv, size_t max)
{
	struct strv_ctx s = {sv};
	return pol_yaml_list(c, max > sv->n ? max - sv->n : 0, strv_item, &s);
}

/* --- version, filesystem_policy, landlock, process ----------------------------------------- */

static int f_version(struct pol_yaml *c, void *obj)
{
	struct pol_policy *p = obj;
	unsigned long long v = 0;
	if (pol_yaml_uint(c, 0, UINT32_MAX, &v) < 0)
		return c->rc;
	if (v != 1)
		return pol_yaml_fail_here(c, EINVAL, "unsupported policy version %llu (only 1)", v);
	p->version = (uint32_t)v;
	return 0;
}

static int f_include_workdir(struct pol_yaml *c, void *obj)
{
	return pol_yaml_bool(c, &((struct pol_policy *)obj)->include_workdir);
}

/* As the INI loader: normalised, no path in both lists, POL_PATHS_MAX in total. */
static int fs_item(struct pol_yaml *c, struct pol_policy *p, bool rw)
{
	const char *v;
	struct sv_err e = {0};
	if (pol_yaml_text(c, "a path", &v) < 0)
		return c->rc;
	int r = pol_fs_path_check(v, rw, &e);
	if (r < 0)
		return pol_yaml_fail_err(c, &c->ev.start_mark, r, &e);
	_cleanup_free_ char *norm = NULL;
	if (pol_path_normalize(v, &norm) < 0)
		return pol_yaml_fail_here(c, ENOMEM, "out of memory");
	if (pol_strv_contains(rw ? &p->read_only : &p->read_write, norm))
		return pol_yaml_fail_here(c, EINVAL, "'%.64s' is already listed in %s", norm,
					  rw ? "read_only" : "read_write");
	if (!pol_strv_contains(rw ? &p->read_write : &p->read_only, norm) &&
	    p->read_only.n + p->read_write.n >= POL_PATHS_MAX)
		return pol_yaml_fail_here(c, E2BIG, "too many filesystem paths (max %d in total)",
					  POL_PATHS_MAX);
	if ((r = pol_fs_add(p, rw, norm, &e)) < 0)
		return pol_yaml_fail_err(c, &c->ev.start_mark, r, &e);
	return 0;
}

static int ro_item(struct pol_yaml *c, void *obj, size_t i)
{
	(void)i;
	return fs_item(c, obj, false);
}

static int rw_item(struct pol_yaml *c, void *obj, size_t i)
{
	(void)i;
	return fs_item(c, obj, true);
}

static int f_read_only(struct pol_yaml *c, void *obj)
{
	return pol_yaml_list(c, POL_YAML_ITEMS_MAX, ro_item, obj);
}

static int f_read_write(struct pol_yaml *c, void *obj)
{
	return pol_yaml_list(c, POL_YAML_ITEMS_MAX, rw_item, obj);
}

static const struct pol_yaml_field fs_fields[] = {
    {"include_workdir", f_include_workdir},
    {"read_only", f_read_only},
    {"read_write", f_read_write},
};

/* OpenShell's YAML parser defaults include_workdir to false inside the stanza (contract §3.5);
 * without the stanza the model's default (true) stands. */
static int f_filesystem(struct pol_yaml *c, void *obj)
{
	((struct pol_policy *)obj)->include_workdir = false;
	return pol_yaml_struct(c, fs_fields, SV_ARRAY_SIZE(fs_fields), obj);
}

/* Stricter than OpenShell, which reads any other string as best_effort: a misspelt
 * hard_requirement must not quietly weaken the sandbox. */
static int f_compatibility(struct pol_yaml *c, void *obj)
{
	struct pol_policy *p = obj;
	const char *v;
	if (pol_yaml_text(c, "a string", &v) < 0)
		return c->rc;
	if (!*v || !strcmp(v, "best_effort"))
		p->landlock_compat = POL_BEST_EFFORT;
	else if (!strcmp(v, "hard_requirement"))
		p->landlock_compat = POL_HARD_REQUIREMENT;
	else
		return pol_yaml_fail_here(
		    c, EINVAL, "expected best_effort or hard_requirement (got '%.64s')", v);
	return 0;
}

static const struct pol_yaml_field landlock_fields[] = {{"compatibility", f_compatibility}};

static int f_landlock(struct pol_yaml *c, void *obj)
{
	return pol_yaml_struct(c, landlock_fields, SV_ARRAY_SIZE(landlock_fields), obj);
}

/* "" means omitted (OpenShell's empty string); numbers are stored canonically as in INI. */
static int identity(struct pol_yaml *c, char **slot)
{
	const char *v;
	char canon[24];
	if (pol_yaml_text(c, "a user or group", &v) < 0)
		return c->rc;
	if (!*v)
		return 0;
	unsigned long long id;
	if (v[0] >= '0' && v[0] <= '9' && sv_parse_uint(v, 0, POL_ID_MAX, &id) == 0) {
		sv_fmt(canon, sizeof(canon), "%llu", id);
		v = canon;
	}
	struct sv_err e = {0};
	int r = pol_identity_check(v, &e);
	if (r < 0)
		return pol_yaml_fail_err(c, &c->ev.start_mark, r, &e);
	if (!(*slot = strdup(v)))
		return pol_yaml_fail_here(c, ENOMEM, "out of memory");
	return 0;
}

static int f_run_as_user(struct pol_yaml *c, void *obj)
{
	return identity(c, &((struct pol_policy *)obj)->run_as_user);
}

static int f_run_as_group(struct pol_yaml *c, void *obj)
{
	return identity(c, &((struct pol_policy *)obj)->run_as_group);
}

static const struct pol_yaml_field process_fields[] = {
    {"run_as_user", f_run_as_user},
    {"run_as_group", f_run_as_group},
};

static int f_process(struct pol_yaml *c, void *obj)
{
	return pol_yaml_struct(c, process_fields, SV_ARRAY_SIZE(process_fields), obj);
}

static const struct pol_yaml_field top_fields[] = {
    {"version", f_version},
    {"filesystem_policy", f_filesystem},
    {"landlock", f_landlock},
    {"process", f_process},
    {"network_policies", pol_yaml_network_policies},
    {"network_middlewares", pol_yaml_network_middlewares},
};

/* --- the document -------------------------------------------------------------------------- */

static int document(struct pol_yaml *c)
{
	/* STREAM-START, then one DOCUMENT-START holding a mapping, then the ends. */
	if (pol_yaml_next(c) < 0 || pol_yaml_next(c) < 0)
		return c->rc;
	if (c->ev.type == YAML_STREAM_END_EVENT)
		return pol_yaml_fail_here(c, EINVAL, "the policy is empty ('version' is required)");
	if (pol_yaml_next(c) < 0)
		return c->rc;
	yaml_mark_t start = c->doc = c->ev.start_mark;
	if (pol_yaml_is_null(c))
		return pol_yaml_fail_here(c, EINVAL, "the policy is empty ('version' is required)");
	struct pol_policy *p = c->p;
	p->version = 0;
	if (pol_yaml_struct(c, top_fields, SV_ARRAY_SIZE(top_fields), p) < 0)
		return c->rc;
	if (p->version == 0)
		return pol_yaml_fail(c, &start, EINVAL, "missing key 'version' (must be 1)");
	if (pol_yaml_next(c) < 0 || pol_yaml_next(c) < 0)
		return c->rc;
	if (c->ev.type != YAML_STREAM_END_EVENT)
		return pol_yaml_fail_here(c, EINVAL, "only one YAML document is allowed");
	return 0;
}

int pol_load_yaml_buffer(const char *name, const char *buf, size_t len, struct pol_policy *out,
			 struct sv_err *err)
{
	pol_init(out);
	if (len > POL_FILE_MAX)
		return sv_err_set(err, EFBIG, "%s: policy file is larger than %d bytes", name,
				  POL_FILE_MAX);
	struct pol_yaml c = {.name = name, .err = err, .p = out};
	if (!yaml_parser_initialize(&c.parser))
		return sv_err_set(err, ENOMEM, "%s: out of memory", name);
	yaml_parser_set_input_string(&c.parser, (const unsigned char *)buf, len);
	document(&c);
	if (c.have_ev)
		yaml_event_delete(&c.ev);
	yaml_parser_delete(&c.parser);
	if (c.rc == 0 && !(out->source = strdup(name)))
		c.rc = sv_err_set(err, ENOMEM, "%s: out of memory", name);
	/* Fields were checked where they stand; this is the backstop for whole-policy rules, and
	 * where the accepted-with-warning settings of §5 are logged. */
	if (c.rc == 0 && pol_validate_full(out, pol_warn_log, (void *)name, err) < 0) {
		sv_err_prefix(err, "%s:%zu:%zu", name, c.doc.line + 1, c.doc.column + 1);
		c.rc = -EINVAL;
	}
	if (c.rc < 0)
		pol_free(out);
	return c.rc;
}
