/* Main-process spec decoding: JSON, base64url, legacy whitespace split, and resolution order.
 *
 * Every fault names the variable and the position. Nothing here executes anything or consults a
 * shell: argv boundaries from the input are kept exactly.
 */
#include "spec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

void sv_spec_free(struct sv_spec *spec)
{
	if (!spec->argv)
		return;
	for (size_t i = 0; i < spec->argc; i++)
		free(spec->argv[i]);
	free(spec->argv);
	spec->argv = NULL;
	spec->argc = 0;
}

const char *sv_spec_source_name(enum sv_spec_source src)
{
	switch (src) {
	case SV_SPEC_FROM_ARGV:
		return "argv";
	case SV_SPEC_FROM_JSON:
		return SV_SPEC_ENV;
	case SV_SPEC_FROM_LEGACY:
		return SV_SPEC_LEGACY_ENV;
	case SV_SPEC_FROM_DEFAULT:
	default:
		return "default";
	}
}

/* Append a string (consumed) to a growing NULL-terminated argv. */
static int argv_push(struct sv_spec *s, char *word)
{
	if (s->argc + 1 >= SV_SPEC_ARGS_MAX) {
		free(word);
		return -E2BIG;
	}
	char **n = realloc(s->argv, (s->argc + 2) * sizeof(*n));
	if (!n) {
		free(word);
		return -ENOMEM;
	}
	s->argv = n;
	s->argv[s->argc++] = word;
	s->argv[s->argc] = NULL;
	return 0;
}

static int parse_command(struct sv_json *j, struct sv_spec *s, struct sv_err *err)
{
	int r = sv_json_array_begin(j, err);
	if (r < 0)
		return r;
	while ((r = sv_json_array_next(j, err)) > 0) {
		char *word;
		size_t at = j->pos;
		r = sv_json_string(j, &word, NULL, false, err);
		if (r < 0)
			return r;
		if (s->argc == 0 && word[0] == '\0') {
			free(word);
			j->pos = at;
			return sv_json_fail(j, err, "command[0] must not be empty");
		}
		r = argv_push(s, word);
		if (r < 0)
			return sv_err_set(err, r, "%s: command has too many arguments", j->what);
	}
	return r;
}

int sv_spec_parse_json(const char *text, size_t len, struct sv_spec *out, struct sv_err *err)
{
	struct sv_json j;
	struct sv_spec s = {.source = SV_SPEC_FROM_JSON};
	bool have_version = false, have_command = false, have_tty = false;
	uint64_t version = 0;
	int r;

	sv_json_init(&j, SV_SPEC_ENV, text, len);
	r = sv_json_object_begin(&j, err);
	if (r < 0)
		return r;
	for (;;) {
		_cleanup_free_ char *key = NULL;
		size_t key_at = j.pos;
		r = sv_json_object_next(&j, &key, err);
		if (r < 0)
			goto fail;
		if (r == 0)
			break;
		bool *seen = NULL;
		if (strcmp(key, "version") == 0)
			seen = &have_version;
		else if (strcmp(key, "command") == 0)
			seen = &have_command;
		else if (strcmp(key, "tty") == 0)
			seen = &have_tty;
		if (seen && *seen) {
			j.pos = key_at;
			r = sv_json_fail(&j, err, "duplicate field");
			goto fail;
		}
		if (seen == &have_version)
			r = sv_json_uint(&j, &version, err);
		else if (seen == &have_command)
			r = parse_command(&j, &s, err);
		else if (seen == &have_tty)
			r = sv_json_bool(&j, &s.tty, err);
		else
			r = sv_json_skip(&j, err); /* unknown fields are ignored, as serde does */
		if (r < 0)
			goto fail;
		if (seen)
			*seen = true;
	}
	r = sv_json_end(&j, err);
	if (r < 0)
		goto fail;
	if (!have_version || !have_command || !have_tty) {
		r = sv_err_set(err, EINVAL, "%s: missing field '%s'", SV_SPEC_ENV,
			       !have_version ? "version" : !have_command ? "command" : "tty");
		goto fail;
	}
	if (version != SV_SPEC_VERSION) {
		r = sv_err_set(err, EINVAL, "unsupported %s version %llu", SV_SPEC_ENV,
			       (unsigned long long)version);
		goto fail;
	}
	if (s.argc == 0) {
		r = sv_err_set(err, EINVAL, "%s: command must not be empty", SV_SPEC_ENV);
		goto fail;
	}
	*out = s;
	return 0;
fail:
	sv_spec_free(&s);
	return r;
}

static int b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

long sv_b64url_decode(const char *in, size_t len, unsigned char *out, size_t *bad_pos)
{
	size_t o = 0;
	uint32_t acc = 0;
	unsigned bits = 0;
	if (len % 4 == 1) {
		*bad_pos = len - 1; /* a single trailing symbol carries fewer than 8 bits */
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		int v = b64url_value((unsigned char)in[i]);
		if (v < 0) {
			*bad_pos = i;
			return -EINVAL;
		}
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	/* Leftover bits must be zero, or two encodings would decode the same (non-canonical). */
	if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
		*bad_pos = len - 1;
		return -EINVAL;
	}
	return (long)o;
}

int sv_spec_parse_env(const char *value, struct sv_spec *out, struct sv_err *err)
{
	size_t plen = strlen(SV_SPEC_B64_PREFIX);
	if (strncmp(value, SV_SPEC_B64_PREFIX, plen) != 0)
		return sv_spec_parse_json(value, strlen(value), out, err);

	const char *b64 = value + plen;
	size_t len = strlen(b64);
	if (len / 4 * 3 > SV_SPEC_TEXT_MAX)
		return sv_err_set(err, E2BIG, "%s: base64url payload is too large", SV_SPEC_ENV);
	_cleanup_free_ unsigned char *buf = malloc(len / 4 * 3 + 3);
	if (!buf)
		return sv_err_set(err, ENOMEM, "%s: out of memory", SV_SPEC_ENV);
	size_t bad = 0;
	long n = sv_b64url_decode(b64, len, buf, &bad);
	if (n < 0)
		return sv_err_set(err, EINVAL,
				  "%s: invalid base64url at character %zu (after the '%s' prefix)",
				  SV_SPEC_ENV, bad, SV_SPEC_B64_PREFIX);
	return sv_spec_parse_json((const char *)buf, (size_t)n, out, err);
}

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int sv_spec_parse_legacy(const char *value, struct sv_spec *out, struct sv_err *err)
{
	struct sv_spec s = {.source = SV_SPEC_FROM_LEGACY};
	const char *p = value;
	while (*p) {
		while (*p && is_ws(*p))
			p++;
		if (!*p)
			break;
		const char *start = p;
		while (*p && !is_ws(*p))
			p++;
		char *word = strndup(start, (size_t)(p - start));
		int r = word ? argv_push(&s, word) : -ENOMEM;
		if (r < 0) {
			sv_spec_free(&s);
			return sv_err_set(err, r, "%s: %s", SV_SPEC_LEGACY_ENV,
					  r == -ENOMEM ? "out of memory" : "too many words");
		}
	}
	if (s.argc == 0)
		return sv_err_set(err, EINVAL, "%s: command is empty", SV_SPEC_LEGACY_ENV);
	*out = s;
	return 0;
}

static int spec_from_words(char *const *words, size_t n, bool tty, enum sv_spec_source src,
			   struct sv_spec *out, struct sv_err *err)
{
	struct sv_spec s = {.tty = tty, .source = src};
	for (size_t i = 0; i < n; i++) {
		char *w = strdup(words[i]);
		int r = w ? argv_push(&s, w) : -ENOMEM;
		if (r < 0) {
			sv_spec_free(&s);
			return sv_err_set(err, r, "main process argv: %s",
					  r == -ENOMEM ? "out of memory" : "too many arguments");
		}
	}
	*out = s;
	return 0;
}

int sv_spec_resolve(char *const *args, size_t nargs, bool interactive, const char *spec_env,
		    const char *legacy_env, struct sv_spec *out, struct sv_err *err)
{
	static char *const default_argv[] = {"/bin/bash", "-l"};

	if (nargs > 0) {
		if (args[0][0] == '\0')
			return sv_err_set(err, EINVAL, "main process argv: command must not be empty");
		return spec_from_words(args, nargs, interactive, SV_SPEC_FROM_ARGV, out, err);
	}
	/* Drivers blank variables they do not use ("" is how Docker unsets): empty = absent. */
	if (spec_env && *spec_env)
		return sv_spec_parse_env(spec_env, out, err);
	if (legacy_env && *legacy_env)
		return sv_spec_parse_legacy(legacy_env, out, err);
	return spec_from_words(default_argv, SV_ARRAY_SIZE(default_argv), true,
			       SV_SPEC_FROM_DEFAULT, out, err);
}
