/* google.protobuf.Struct <-> compact JSON text, for a network middleware's `config` (the policy
 * model keeps it as JSON so the INI file and logs can show it).
 *
 * Both directions are bounded (depth SV_JSON_DEPTH_MAX, GW_STRUCT_JSON_MAX bytes) and never
 * trust the input: NaN and infinities, which JSON cannot carry, are refused.
 */
#include "gw_policy.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor/json.h"

struct jbuf {
	char *s;
	size_t len, cap;
	int rc;
};

static void jput(struct jbuf *b, const char *s, size_t n)
{
	if (b->rc)
		return;
	if (b->len + n + 1 > GW_STRUCT_JSON_MAX) {
		b->rc = -E2BIG;
		return;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->s, cap);
		if (!p) {
			b->rc = -ENOMEM;
			return;
		}
		b->s = p;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void jputs(struct jbuf *b, const char *s)
{
	jput(b, s, strlen(s));
}

static void jstring(struct jbuf *b, const char *s)
{
	jputs(b, "\"");
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		char esc[8];
		if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			jput(b, esc, 2);
		} else if (*p < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", *p);
			jputs(b, esc);
		} else {
			jput(b, (const char *)p, 1);
		}
	}
	jputs(b, "\"");
}

/* The shortest "%.Ng" that reads back as the same double, so JSON -> Struct -> JSON is stable. */
static void jnumber(struct jbuf *b, double v)
{
	char num[40];
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(num, sizeof(num), "%.*g", prec, v);
		if (strtod(num, NULL) == v)
			break;
	}
	jputs(b, num);
}

static void jstruct(struct jbuf *b, const Google__Protobuf__Struct *s, int depth);

static void jvalue(struct jbuf *b, const Google__Protobuf__Value *v, int depth)
{
	if (depth > SV_JSON_DEPTH_MAX) {
		b->rc = b->rc ? b->rc : -ELOOP;
		return;
	}
	switch (v ? v->kind_case : GOOGLE__PROTOBUF__VALUE__KIND__NOT_SET) {
	case GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE:
		if (!isfinite(v->number_value)) {
			b->rc = b->rc ? b->rc : -EDOM;
			return;
		}
		jnumber(b, v->number_value);
		return;
	case GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE:
		jstring(b, v->string_value);
		return;
	case GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE:
		jputs(b, v->bool_value ? "true" : "false");
		return;
	case GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE:
		jstruct(b, v->struct_value, depth + 1);
		return;
	case GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE:
		jputs(b, "[");
		for (size_t i = 0; v->list_value && i < v->list_value->n_values; i++) {
			if (i)
				jputs(b, ",");
			jvalue(b, v->list_value->values[i], depth + 1);
		}
		jputs(b, "]");
		return;
	default:
		jputs(b, "null");
		return;
	}
}

static void jstruct(struct jbuf *b, const Google__Protobuf__Struct *s, int depth)
{
	if (depth > SV_JSON_DEPTH_MAX) {
		b->rc = b->rc ? b->rc : -ELOOP;
		return;
	}
	jputs(b, "{");
	for (size_t i = 0; s && i < s->n_fields; i++) {
		if (i)
			jputs(b, ",");
		jstring(b, s->fields[i] ? s->fields[i]->key : "");
		jputs(b, ":");
		jvalue(b, s->fields[i] ? s->fields[i]->value : NULL, depth + 1);
	}
	jputs(b, "}");
}

int gw_struct_to_json(const Google__Protobuf__Struct *s, char **out, struct sv_err *err)
{
	struct jbuf b = {0};
	jstruct(&b, s, 0);
	if (b.rc) {
		free(b.s);
		return sv_err_set(err, -b.rc,
				  b.rc == -EDOM	   ? "a number is not finite"
				  : b.rc == -ELOOP ? "nested deeper than %d levels"
				  : b.rc == -E2BIG ? "longer than %d bytes as JSON"
						   : "out of memory",
				  b.rc == -ELOOP ? SV_JSON_DEPTH_MAX : GW_STRUCT_JSON_MAX);
	}
	/* What the JSON reader refuses (bad UTF-8 in a string) must not get into the model: the
	 * text has to read back, for the INI file and for gw_struct_from_json. */
	struct sv_json j;
	struct sv_err e = {0};
	sv_json_init(&j, "config", b.s, b.len);
	if (sv_json_skip(&j, &e) < 0 || sv_json_end(&j, &e) < 0) {
		free(b.s);
		return sv_err_set(err, EINVAL, "not representable as JSON: %s", e.msg);
	}
	*out = b.s;
	return 0;
}

/* --- JSON -> Struct ------------------------------------------------------------------------ */

static int parse_struct(struct sv_json *j, Google__Protobuf__Struct **out, int depth,
			struct sv_err *err);

static int parse_value(struct sv_json *j, Google__Protobuf__Value **out, int depth,
		       struct sv_err *err)
{
	Google__Protobuf__Value *v = calloc(1, sizeof(*v));
	if (!v)
		return sv_err_set(err, ENOMEM, "out of memory");
	google__protobuf__value__init(v);
	*out = v;
	if (depth > SV_JSON_DEPTH_MAX)
		return sv_json_fail(j, err, "nested too deeply");
	int r = 0;
	bool bv;
	switch (sv_json_peek(j)) {
	case SV_JSON_NULL:
		v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE;
		return sv_json_skip(j, err);
	case SV_JSON_BOOL:
		if ((r = sv_json_bool(j, &bv, err)) == 0) {
			v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE;
			v->bool_value = bv;
		}
		return r;
	case SV_JSON_NUMBER: {
		size_t start = j->pos;
		while (start < j->len && strchr(" \t\r\n", j->buf[start]))
			start++;
		if ((r = sv_json_skip(j, err)) < 0)
			return r;
		char num[64];
		size_t n = j->pos - start;
		if (n >= sizeof(num))
			return sv_json_fail(j, err, "number too long");
		memcpy(num, j->buf + start, n);
		num[n] = '\0';
		v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
		v->number_value = strtod(num, NULL);
		if (!isfinite(v->number_value))
			return sv_json_fail(j, err, "number out of range");
		return 0;
	}
	case SV_JSON_STRING:
		v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
		return sv_json_string(j, &v->string_value, NULL, false, err);
	case SV_JSON_OBJECT:
		v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE;
		return parse_struct(j, &v->struct_value, depth + 1, err);
	case SV_JSON_ARRAY: {
		Google__Protobuf__ListValue *l = calloc(1, sizeof(*l));
		if (!l)
			return sv_err_set(err, ENOMEM, "out of memory");
		google__protobuf__list_value__init(l);
		v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE;
		v->list_value = l;
		if ((r = sv_json_array_begin(j, err)) < 0)
			return r;
		while ((r = sv_json_array_next(j, err)) > 0) {
			Google__Protobuf__Value **vs = realloc(
			    l->values, (l->n_values + 1) * sizeof(Google__Protobuf__Value *));
			if (!vs)
				return sv_err_set(err, ENOMEM, "out of memory");
			l->values = vs;
			vs[l->n_values] = NULL;
			r = parse_value(j, &vs[l->n_values], depth + 1, err);
			l->n_values++;
			if (r < 0)
				return r;
		}
		return r;
	}
	default:
		return sv_json_fail(j, err, "expected a JSON value");
	}
}

static int parse_struct(struct sv_json *j, Google__Protobuf__Struct **out, int depth,
			struct sv_err *err)
{
	Google__Protobuf__Struct *s = calloc(1, sizeof(*s));
	if (!s)
		return sv_err_set(err, ENOMEM, "out of memory");
	google__protobuf__struct__init(s);
	*out = s;
	int r = sv_json_object_begin(j, err);
	if (r < 0)
		return r;
	char *key = NULL;
	while ((r = sv_json_object_next(j, &key, err)) > 0) {
		Google__Protobuf__Struct__FieldsEntry **fs = realloc(
		    s->fields, (s->n_fields + 1) * sizeof(Google__Protobuf__Struct__FieldsEntry *));
		Google__Protobuf__Struct__FieldsEntry *f = calloc(1, sizeof(*f));
		if (fs)
			s->fields = fs;
		if (!fs || !f) {
			free(f);
			free(key);
			return sv_err_set(err, ENOMEM, "out of memory");
		}
		google__protobuf__struct__fields_entry__init(f);
		f->key = key;
		fs[s->n_fields++] = f;
		if ((r = parse_value(j, &f->value, depth + 1, err)) < 0)
			return r;
	}
	return r;
}

int gw_struct_from_json(const char *json, Google__Protobuf__Struct **out, struct sv_err *err)
{
	struct sv_json j;
	sv_json_init(&j, "config", json, strlen(json));
	*out = NULL;
	int r = parse_struct(&j, out, 0, err);
	if (r == 0)
		r = sv_json_end(&j, err);
	if (r < 0 && *out) {
		protobuf_c_message_free_unpacked(&(*out)->base, NULL);
		*out = NULL;
	}
	return r;
}
