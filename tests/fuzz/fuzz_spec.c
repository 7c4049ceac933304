/* libFuzzer target for the main-process spec parsers (supervisor/spec.c, supervisor/json.c).
 *
 * Feeds arbitrary bytes to the JSON spec parser (exact-length buffer, no terminator), and a
 * NUL-terminated copy to the env decoder (plain JSON or base64url:) and the legacy splitter.
 * Checks invariants on every result; it must never accept a spec the supervisor could not exec.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor/env.h"
#include "supervisor/json.h"
#include "supervisor/spec.h"
#include "tests/fuzz/fuzz.h"

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Valid UTF-8 without surrogates, overlongs or code points past U+10FFFF. */
static bool utf8_ok(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		size_t len;
		uint32_t cp;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			len = 2, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			len = 3, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			len = 4, cp = c & 0x07;
		else
			return false;
		if (n - i < len)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

/* Shape shared by every successful parse. */
static void check_spec(const struct sv_spec *s)
{
	FUZZ_CHECK(s->argc > 0);
	FUZZ_CHECK(s->argc < SV_SPEC_ARGS_MAX);
	FUZZ_CHECK(s->argv != NULL);
	FUZZ_CHECK(s->argv[s->argc] == NULL);
	FUZZ_CHECK(s->argv[0] != NULL && s->argv[0][0] != '\0');
	for (size_t i = 0; i < s->argc; i++)
		FUZZ_CHECK(s->argv[i] != NULL);
}

static void check_json_spec(const struct sv_spec *s)
{
	check_spec(s);
	FUZZ_CHECK(s->source == SV_SPEC_FROM_JSON);
	for (size_t i = 0; i < s->argc; i++)
		FUZZ_CHECK(utf8_ok((const unsigned char *)s->argv[i], strlen(s->argv[i])));
}

static void check_error(int r, const struct sv_err *err, const struct sv_spec *s)
{
	FUZZ_CHECK(r < 0);
	FUZZ_CHECK(err->code == -r);
	FUZZ_CHECK(err->msg[0] != '\0');
	FUZZ_CHECK(memchr(err->msg, '\0', sizeof(err->msg)) != NULL);
	FUZZ_CHECK(s->argv == NULL); /* the output is untouched on failure */
}

static void fuzz_json(const uint8_t *data, size_t size)
{
	/* An exact-length heap copy: any read past the end is an ASan report. */
	char *buf = malloc(size ? size : 1);
	if (!buf)
		return;
	if (size)
		memcpy(buf, data, size);
	struct sv_spec s = {0};
	struct sv_err err = {0};
	int r = sv_spec_parse_json(buf, size, &s, &err);
	if (r == 0) {
		check_json_spec(&s);
		sv_spec_free(&s);
		FUZZ_CHECK(s.argv == NULL);
	} else {
		check_error(r, &err, &s);
		FUZZ_CHECK(strstr(err.msg, SV_SPEC_ENV) != NULL);
	}

	/* The generic skipper must agree with itself: it either consumes a value or fails. */
	struct sv_json j;
	sv_json_init(&j, "fuzz", buf, size);
	memset(&err, 0, sizeof(err));
	r = sv_json_skip(&j, &err);
	FUZZ_CHECK(j.pos <= size);
	if (r < 0)
		FUZZ_CHECK(strstr(err.msg, " at byte ") != NULL);
	free(buf);
}

static void fuzz_text(const char *text, size_t len)
{
	struct sv_spec s = {0};
	struct sv_err err = {0};
	int r = sv_spec_parse_env(text, &s, &err);
	if (r == 0) {
		check_json_spec(&s);
		sv_spec_free(&s);
	} else {
		check_error(r, &err, &s);
	}

	memset(&err, 0, sizeof(err));
	r = sv_spec_parse_legacy(text, &s, &err);
	if (r == 0) {
		check_spec(&s);
		FUZZ_CHECK(s.source == SV_SPEC_FROM_LEGACY);
		FUZZ_CHECK(!s.tty);
		size_t total = 0;
		for (size_t i = 0; i < s.argc; i++) {
			size_t wl = strlen(s.argv[i]);
			FUZZ_CHECK(wl > 0);
			for (size_t k = 0; k < wl; k++)
				FUZZ_CHECK(!is_space(s.argv[i][k]));
			total += wl;
		}
		FUZZ_CHECK(total <= len);
		sv_spec_free(&s);
	} else {
		check_error(r, &err, &s);
		/* Only an empty or blank value (or out of memory) is refused. */
		for (const char *p = text; *p && r == -EINVAL; p++)
			FUZZ_CHECK(is_space(*p));
	}

	/* The user-environment reader is lenient and must never crash. */
	memset(&err, 0, sizeof(err));
	(void)sv_env_user_defines(text, "TERM", &err);
}

static void fuzz_b64(const uint8_t *data, size_t size)
{
	unsigned char *out = malloc(size * 3 / 4 + 3);
	if (!out)
		return;
	size_t bad = (size_t)-1;
	long n = sv_b64url_decode((const char *)data, size, out, &bad);
	if (n >= 0) {
		size_t want = size / 4 * 3 + (size % 4 ? size % 4 - 1 : 0);
		FUZZ_CHECK((size_t)n == want);
		FUZZ_CHECK(size % 4 != 1);
	} else {
		FUZZ_CHECK(n == -EINVAL);
		FUZZ_CHECK(bad < size);
	}
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_json(data, size);
	fuzz_b64(data, size);

	char *text = malloc(size + 1);
	if (!text)
		return 0;
	if (size)
		memcpy(text, data, size);
	text[size] = '\0';
	fuzz_text(text, strlen(text));
	free(text);
	return 0;
}
