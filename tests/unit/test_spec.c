/* Unit tests for supervisor/spec.c: the main-process spec (JSON, base64url, legacy split) and
 * the resolution order of contract §1.4.
 *
 * JSON inputs are fed from exact-length heap copies (no NUL after them) so ASan catches any read
 * past the end. A spec must never be "repaired": every bad input here has to be refused.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor/json.h"
#include "supervisor/spec.h"

static int parse_json(const char *text, struct sv_spec *out, struct sv_err *err)
{
	size_t len = strlen(text);
	char *copy = malloc(len ? len : 1);
	ck_assert_ptr_nonnull(copy);
	memcpy(copy, text, len);
	memset(out, 0, sizeof(*out));
	int r = sv_spec_parse_json(copy, len, out, err);
	free(copy);
	return r;
}

static void assert_argv(const struct sv_spec *s, const char *const *want, size_t n)
{
	ck_assert_uint_eq(s->argc, n);
	for (size_t i = 0; i < n; i++)
		ck_assert_str_eq(s->argv[i], want[i]);
	ck_assert_ptr_null(s->argv[n]);
}

/* The JSON is refused; the message names the variable and contains @why. */
static void assert_json_fails(const char *text, const char *why)
{
	struct sv_spec s;
	struct sv_err err = {0};
	int r = parse_json(text, &s, &err);
	ck_assert_msg(r < 0, "accepted: %s", text);
	ck_assert_ptr_null(s.argv);
	ck_assert_msg(strstr(err.msg, SV_SPEC_ENV) != NULL, "'%s' does not name the variable",
		      err.msg);
	ck_assert_msg(strstr(err.msg, why) != NULL, "%s: got '%s', want '%s'", text, err.msg, why);
}

/* Byte offset reported by a JSON error message, or -1. */
static long reported_offset(const char *msg)
{
	const char *at = strstr(msg, " at byte ");
	return at ? strtol(at + 9, NULL, 10) : -1;
}

#define GOOD_TAIL ",\"command\":[\"/bin/true\"],\"tty\":false}"

START_TEST(json_keeps_argv_boundaries)
{
	struct sv_spec s;
	struct sv_err err = {0};
	const char *text =
	    "{\"version\":1,\"command\":[\"/bin/sh\",\"-c\",\"printf '%s' 'a b'\"],\"tty\":false}";
	ck_assert_msg(parse_json(text, &s, &err) == 0, "%s", err.msg);
	static const char *const want[] = {"/bin/sh", "-c", "printf '%s' 'a b'"};
	assert_argv(&s, want, 3);
	ck_assert(!s.tty);
	ck_assert_int_eq(s.source, SV_SPEC_FROM_JSON);
	sv_spec_free(&s);
	ck_assert_ptr_null(s.argv);
	ck_assert_uint_eq(s.argc, 0);
}
END_TEST

START_TEST(json_tty_true_and_field_order_free)
{
	struct sv_spec s;
	struct sv_err err = {0};
	ck_assert_int_eq(parse_json(" { \"tty\" : true , \"command\" : [ \"sh\" , \"\" ] ,"
				    " \"version\" : 1 } \n",
				    &s, &err),
			 0);
	static const char *const want[] = {"sh", ""}; /* only command[0] must be non-empty */
	assert_argv(&s, want, 2);
	ck_assert(s.tty);
	sv_spec_free(&s);
}
END_TEST

START_TEST(json_unknown_fields_are_ignored)
{
	struct sv_spec s;
	struct sv_err err = {0};
	const char *text =
	    "{\"extra\":{\"a\":[1,{\"b\":null}],\"c\":\"d\"},\"version\":1,"
	    "\"list\":[[],{},\"x\",-1.5e3,true],\"command\":[\"/bin/echo\",\"hi\"],"
	    "\"Version\":99,\"tty\":false,\"env\":{\"TERM\":\"x\"},\"n\":null,\"z\":\"\\u0000\"}";
	ck_assert_msg(parse_json(text, &s, &err) == 0, "%s", err.msg);
	static const char *const want[] = {"/bin/echo", "hi"};
	assert_argv(&s, want, 2);
	sv_spec_free(&s);
}
END_TEST

START_TEST(json_unknown_field_must_still_be_valid_json)
{
	assert_json_fails("{\"x\":[1,],\"version\":1" GOOD_TAIL, "trailing comma");
	assert_json_fails("{\"x\":tru,\"version\":1" GOOD_TAIL, "expected true or false");
	assert_json_fails("{\"x\":\"\xff\",\"version\":1" GOOD_TAIL, "invalid UTF-8");
}
END_TEST

START_TEST(json_each_missing_field_is_named)
{
	assert_json_fails("{\"command\":[\"a\"],\"tty\":false}", "missing field 'version'");
	assert_json_fails("{\"version\":1,\"tty\":false}", "missing field 'command'");
	assert_json_fails("{\"version\":1,\"command\":[\"a\"]}", "missing field 'tty'");
	assert_json_fails("{}", "missing field");
	/* Field names are case-sensitive: "Version" is an unknown field. */
	assert_json_fails("{\"Version\":1,\"command\":[\"a\"],\"tty\":false}",
			  "missing field 'version'");
}
END_TEST

START_TEST(json_duplicate_field_is_rejected)
{
	static const struct {
		const char *text;
		const char *key;
	} dups[] = {
	    {"{\"version\":1,\"version\":1,\"command\":[\"a\"],\"tty\":false}", "\"version\""},
	    {"{\"version\":1,\"command\":[\"a\"],\"command\":[\"b\"],\"tty\":false}",
	     "\"command\""},
	    {"{\"version\":1,\"command\":[\"a\"],\"tty\":false,\"tty\":true}", "\"tty\""},
	};
	for (size_t i = 0; i < SV_ARRAY_SIZE(dups); i++) {
		struct sv_spec s;
		struct sv_err err = {0};
		ck_assert_int_eq(parse_json(dups[i].text, &s, &err), -EINVAL);
		ck_assert_ptr_null(s.argv);
		ck_assert_msg(strstr(err.msg, "duplicate field"), "%s", err.msg);
		ck_assert_ptr_nonnull(strstr(err.msg, SV_SPEC_ENV));
		/* The offset is the repeated key or the comma just before it. */
		const char *second = strstr(strstr(dups[i].text, dups[i].key) + 1, dups[i].key);
		long key_at = (long)(second - dups[i].text);
		long off = reported_offset(err.msg);
		ck_assert_msg(off == key_at || off == key_at - 1, "offset %ld, key at %ld: %s", off,
			      key_at, err.msg);
	}
}
END_TEST

START_TEST(json_version_must_be_exactly_one)
{
	assert_json_fails("{\"version\":0" GOOD_TAIL, "unsupported " SV_SPEC_ENV " version 0");
	assert_json_fails("{\"version\":2" GOOD_TAIL, "unsupported " SV_SPEC_ENV " version 2");
	assert_json_fails("{\"version\":4294967297" GOOD_TAIL, "version 4294967297");
	assert_json_fails("{\"version\":18446744073709551617" GOOD_TAIL, "integer out of range");
	assert_json_fails("{\"version\":1.0" GOOD_TAIL, "expected a non-negative integer");
	assert_json_fails("{\"version\":1e0" GOOD_TAIL, "expected a non-negative integer");
	assert_json_fails("{\"version\":-1" GOOD_TAIL, "expected a non-negative integer");
	assert_json_fails("{\"version\":\"1\"" GOOD_TAIL, "invalid number");
	assert_json_fails("{\"version\":null" GOOD_TAIL, "invalid number");
	assert_json_fails("{\"version\":01" GOOD_TAIL, "leading zero");
}
END_TEST

START_TEST(json_command_shape_is_enforced)
{
	assert_json_fails("{\"version\":1,\"command\":[],\"tty\":false}",
			  "command must not be empty");
	assert_json_fails("{\"version\":1,\"command\":[\"\"],\"tty\":false}",
			  "command[0] must not be empty");
	assert_json_fails("{\"version\":1,\"command\":[\"\",\"x\"],\"tty\":false}",
			  "command[0] must not be empty");
	assert_json_fails("{\"version\":1,\"command\":[\"a\",1],\"tty\":false}",
			  "expected a string");
	assert_json_fails("{\"version\":1,\"command\":[null],\"tty\":false}", "expected a string");
	assert_json_fails("{\"version\":1,\"command\":[[\"a\"]],\"tty\":false}",
			  "expected a string");
	assert_json_fails("{\"version\":1,\"command\":\"/bin/sh -c x\",\"tty\":false}",
			  "expected an array");
	assert_json_fails("{\"version\":1,\"command\":null,\"tty\":false}", "expected an array");
}
END_TEST

START_TEST(json_error_names_offset_of_bad_element)
{
	const char *text = "{\"version\":1,\"command\":[\"a\", 7],\"tty\":false}";
	struct sv_spec s;
	struct sv_err err = {0};
	ck_assert_int_eq(parse_json(text, &s, &err), -EINVAL);
	ck_assert_int_eq(reported_offset(err.msg), (long)(strchr(text, '7') - text));
	ck_assert_ptr_nonnull(strstr(err.msg, SV_SPEC_ENV ": invalid JSON: "));
}
END_TEST

START_TEST(json_tty_must_be_a_bool)
{
	assert_json_fails("{\"version\":1,\"command\":[\"a\"],\"tty\":1}",
			  "expected true or false");
	assert_json_fails("{\"version\":1,\"command\":[\"a\"],\"tty\":\"true\"}",
			  "expected true or false");
	assert_json_fails("{\"version\":1,\"command\":[\"a\"],\"tty\":null}",
			  "expected true or false");
}
END_TEST

START_TEST(json_trailing_garbage_and_commas_are_rejected)
{
	const char *text = "{\"version\":1,\"command\":[\"a\"],\"tty\":false} x";
	struct sv_spec s;
	struct sv_err err = {0};
	ck_assert_int_eq(parse_json(text, &s, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "trailing characters"));
	ck_assert_int_eq(reported_offset(err.msg), (long)(strrchr(text, 'x') - text));
	assert_json_fails("{\"version\":1,\"command\":[\"a\"],\"tty\":false}}", "trailing");
	assert_json_fails("{\"version\":1,\"command\":[\"a\"],\"tty\":false,}", "trailing comma");
	assert_json_fails("{\"version\":1,\"command\":[\"a\",],\"tty\":false}", "trailing comma");
	assert_json_fails("{\"version\":1,,\"command\":[\"a\"],\"tty\":false}",
			  "expected a string");
	assert_json_fails("{\"version\":1,\"command\":[\"a\"],\"tty\":false", "expected ','");
	assert_json_fails("", "expected an object at byte 0");
	assert_json_fails("[]", "expected an object at byte 0");
}
END_TEST

START_TEST(json_argv_escapes_decode)
{
	struct sv_spec s;
	struct sv_err err = {0};
	const char *text = "{\"version\":1,\"command\":[\"/bin/printf\",\"\\u00e9\\ud83d\\ude00"
			   "\\n\\t\\\"\\\\\"],\"tty\":false}";
	ck_assert_msg(parse_json(text, &s, &err) == 0, "%s", err.msg);
	static const char *const want[] = {"/bin/printf", "\xc3\xa9\xf0\x9f\x98\x80\n\t\"\\"};
	assert_argv(&s, want, 2);
	sv_spec_free(&s);
}
END_TEST

START_TEST(json_argv_rejects_nul_bad_utf8_and_controls)
{
	assert_json_fails("{\"version\":1,\"command\":[\"a\\u0000b\"],\"tty\":false}",
			  "NUL character in string");
	assert_json_fails("{\"version\":1,\"command\":[\"\\u0000\"],\"tty\":false}",
			  "NUL character in string");
	assert_json_fails("{\"version\":1,\"command\":[\"a\xc0\x80\"],\"tty\":false}",
			  "invalid UTF-8");
	assert_json_fails("{\"version\":1,\"command\":[\"a\xed\xa0\x80\"],\"tty\":false}",
			  "invalid UTF-8");
	assert_json_fails("{\"version\":1,\"command\":[\"a\nb\"],\"tty\":false}",
			  "control character");
	assert_json_fails("{\"version\":1,\"command\":[\"a\tb\"],\"tty\":false}",
			  "control character");
	assert_json_fails("{\"version\":1,\"command\":[\"\\ud800\"],\"tty\":false}",
			  "unpaired high surrogate");
	assert_json_fails("{\"version\":1,\"command\":[\"\\q\"],\"tty\":false}", "invalid escape");
}
END_TEST

START_TEST(json_deep_nesting_is_bounded)
{
	/* 100000 nested arrays in an unknown field: refused cleanly, no stack exhaustion. */
	size_t depth = 100000;
	const char *head = "{\"version\":1,\"x\":";
	size_t hl = strlen(head);
	char *text = malloc(hl + 2 * depth + sizeof(GOOD_TAIL));
	ck_assert_ptr_nonnull(text);
	memcpy(text, head, hl);
	memset(text + hl, '[', depth);
	memset(text + hl + depth, ']', depth);
	memcpy(text + hl + 2 * depth, GOOD_TAIL, sizeof(GOOD_TAIL));
	assert_json_fails(text, "nesting too deep");
	free(text);
	/* A modest nesting in an unknown field is fine. */
	struct sv_spec s;
	struct sv_err err = {0};
	ck_assert_int_eq(
	    parse_json("{\"version\":1,\"x\":[[[[[[[[{\"y\":[[]]}]]]]]]]]" GOOD_TAIL, &s, &err), 0);
	sv_spec_free(&s);
}
END_TEST

START_TEST(b64url_rfc4648_vectors_unpadded)
{
	static const struct {
		const char *enc;
		const char *dec;
	} v[] = {
	    {"", ""},		{"Zg", "f"},	      {"Zm8", "fo"},	      {"Zm9v", "foo"},
	    {"Zm9vYg", "foob"}, {"Zm9vYmE", "fooba"}, {"Zm9vYmFy", "foobar"},
	};
	for (size_t i = 0; i < SV_ARRAY_SIZE(v); i++) {
		unsigned char out[16];
		size_t bad = 999;
		long n = sv_b64url_decode(v[i].enc, strlen(v[i].enc), out, &bad);
		ck_assert_int_eq(n, (long)strlen(v[i].dec));
		ck_assert_int_eq(memcmp(out, v[i].dec, (size_t)n), 0);
	}
}
END_TEST

START_TEST(b64url_uses_the_url_safe_alphabet)
{
	unsigned char out[8];
	size_t bad = 0;
	/* 0xfb 0xff encodes to "+/8" in standard base64 and "-_8" in base64url. */
	ck_assert_int_eq(sv_b64url_decode("-_8", 3, out, &bad), 2);
	ck_assert_int_eq(out[0], 0xfb);
	ck_assert_int_eq(out[1], 0xff);
	ck_assert_int_eq(sv_b64url_decode("____", 4, out, &bad), 3);
	ck_assert_int_eq(out[0] & out[1] & out[2], 0xff);
	ck_assert_int_eq(sv_b64url_decode("AAAA", 4, out, &bad), 3);
	ck_assert_int_eq(out[0] | out[1] | out[2], 0);
}
END_TEST

START_TEST(b64url_rejects_standard_alphabet_and_padding_with_position)
{
	static const struct {
		const char *in;
		size_t pos;
	} bad[] = {
	    {"+/8", 0},	 {"-/8", 1},	{"Zg==", 2},	 {"Zm8=", 3},	    {"Zm9vYg==", 6},
	    {"Zm 9", 2}, {"Zm9v\n", 4}, {"Zm9vY.Fy", 5}, {"\xc3\xa9QQ", 0},
	};
	for (size_t i = 0; i < SV_ARRAY_SIZE(bad); i++) {
		unsigned char out[16];
		size_t pos = 999;
		long n = sv_b64url_decode(bad[i].in, strlen(bad[i].in), out, &pos);
		ck_assert_msg(n == -EINVAL, "'%s' accepted", bad[i].in);
		ck_assert_msg(pos == bad[i].pos, "'%s': position %zu, want %zu", bad[i].in, pos,
			      bad[i].pos);
	}
}
END_TEST

START_TEST(b64url_rejects_length_one_mod_four)
{
	static const char *const bad[] = {"A", "Zm9vY", "Zm9vYmFyZ"};
	for (size_t i = 0; i < SV_ARRAY_SIZE(bad); i++) {
		unsigned char out[16];
		size_t pos = 999;
		ck_assert_int_eq(sv_b64url_decode(bad[i], strlen(bad[i]), out, &pos), -EINVAL);
		ck_assert_uint_eq(pos, strlen(bad[i]) - 1);
	}
}
END_TEST

START_TEST(b64url_rejects_noncanonical_trailing_bits)
{
	/* "Zg" is canonical for "f"; "Zh".."Zv" carry nonzero leftover bits. Same for "Zm8". */
	static const char *const bad[] = {"Zh", "Zv", "Z_", "Zm9", "Zm-", "Zm9vYh"};
	for (size_t i = 0; i < SV_ARRAY_SIZE(bad); i++) {
		unsigned char out[16];
		size_t pos = 999;
		ck_assert_msg(sv_b64url_decode(bad[i], strlen(bad[i]), out, &pos) == -EINVAL,
			      "'%s' accepted", bad[i]);
		ck_assert_uint_eq(pos, strlen(bad[i]) - 1);
	}
}
END_TEST

/* URL-safe unpadded base64 encoder used only to build test inputs. */
static char *b64url_encode(const char *in)
{
	static const char alpha[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t n = strlen(in);
	char *out = malloc(n / 3 * 4 + 5);
	ck_assert_ptr_nonnull(out);
	size_t o = 0;
	const unsigned char *p = (const unsigned char *)in;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		out[o++] = alpha[(v >> 18) & 63];
		out[o++] = alpha[(v >> 12) & 63];
		if (i + 1 < n)
			out[o++] = alpha[(v >> 6) & 63];
		if (i + 2 < n)
			out[o++] = alpha[v & 63];
	}
	out[o] = '\0';
	return out;
}

START_TEST(env_base64url_prefix_decodes_end_to_end)
{
	const char *json =
	    "{\"version\":1,\"command\":[\"/bin/sh\",\"-c\",\"echo a b ~?>\"],\"tty\":true}";
	char *enc = b64url_encode(json);
	/* The sample carries bytes that encode to '-' or '_' so the URL-safe path is exercised. */
	ck_assert_msg(strpbrk(enc, "-_") != NULL, "test vector lacks URL-safe characters: %s", enc);
	size_t vl = strlen(SV_SPEC_B64_PREFIX) + strlen(enc) + 1;
	char *value = malloc(vl);
	ck_assert_ptr_nonnull(value);
	sv_fmt(value, vl, "%s%s", SV_SPEC_B64_PREFIX, enc);
	struct sv_spec s = {0};
	struct sv_err err = {0};
	ck_assert_msg(sv_spec_parse_env(value, &s, &err) == 0, "%s", err.msg);
	static const char *const want[] = {"/bin/sh", "-c", "echo a b ~?>"};
	assert_argv(&s, want, 3);
	ck_assert(s.tty);
	ck_assert_int_eq(s.source, SV_SPEC_FROM_JSON);
	sv_spec_free(&s);
	free(value);
	free(enc);
}
END_TEST

START_TEST(env_base64url_errors_name_variable_and_position)
{
	struct sv_spec s = {0};
	struct sv_err err = {0};
	ck_assert_int_eq(sv_spec_parse_env("base64url:Zm9v+w", &s, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, SV_SPEC_ENV));
	ck_assert_msg(strstr(err.msg, "character 4"), "%s", err.msg);
	ck_assert_int_eq(sv_spec_parse_env("base64url:e30=", &s, &err), -EINVAL);
	ck_assert_msg(strstr(err.msg, "character 3"), "%s", err.msg);
	/* Decoded text that is not a spec is reported as a JSON fault. */
	ck_assert_int_eq(sv_spec_parse_env("base64url:e30", &s, &err), -EINVAL); /* "{}" */
	ck_assert_msg(strstr(err.msg, "missing field 'version'"), "%s", err.msg);
	ck_assert_int_eq(sv_spec_parse_env("base64url:", &s, &err), -EINVAL);
	ck_assert_msg(strstr(err.msg, "expected an object at byte 0"), "%s", err.msg);
	ck_assert_ptr_null(s.argv);
}
END_TEST

START_TEST(env_plain_json_is_parsed)
{
	struct sv_spec s = {0};
	struct sv_err err = {0};
	ck_assert_int_eq(
	    sv_spec_parse_env("{\"version\":1,\"command\":[\"ls\"],\"tty\":false}", &s, &err), 0);
	ck_assert_str_eq(s.argv[0], "ls");
	sv_spec_free(&s);
	/* Without the exact prefix the value is JSON, and this is not JSON. */
	ck_assert_int_eq(sv_spec_parse_env("Base64url:e30", &s, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "expected an object"));
}
END_TEST

START_TEST(legacy_splits_on_any_ascii_whitespace)
{
	struct sv_spec s = {0};
	struct sv_err err = {0};
	ck_assert_int_eq(sv_spec_parse_legacy("  sleep \t\tinfinity\n \r\v\f--x  ", &s, &err), 0);
	static const char *const want[] = {"sleep", "infinity", "--x"};
	assert_argv(&s, want, 3);
	ck_assert(!s.tty);
	ck_assert_int_eq(s.source, SV_SPEC_FROM_LEGACY);
	sv_spec_free(&s);
	/* No shell quoting: quotes stay part of the words. */
	ck_assert_int_eq(sv_spec_parse_legacy("sh -c 'echo a b'", &s, &err), 0);
	static const char *const want2[] = {"sh", "-c", "'echo", "a", "b'"};
	assert_argv(&s, want2, 5);
	sv_spec_free(&s);
}
END_TEST

START_TEST(legacy_empty_or_blank_is_an_error)
{
	static const char *const bad[] = {"", " ", " \t\n\r\v\f "};
	for (size_t i = 0; i < SV_ARRAY_SIZE(bad); i++) {
		struct sv_spec s = {0};
		struct sv_err err = {0};
		ck_assert_int_eq(sv_spec_parse_legacy(bad[i], &s, &err), -EINVAL);
		ck_assert_ptr_nonnull(strstr(err.msg, SV_SPEC_LEGACY_ENV));
		ck_assert_ptr_nonnull(strstr(err.msg, "empty"));
		ck_assert_ptr_null(s.argv);
	}
}
END_TEST

#define SPEC_JSON "{\"version\":1,\"command\":[\"from-spec\"],\"tty\":false}"

START_TEST(resolve_argv_beats_spec_and_legacy)
{
	char *args[] = {"/bin/echo", "a b", NULL};
	struct sv_spec s = {0};
	struct sv_err err = {0};
	ck_assert_int_eq(sv_spec_resolve(args, 2, false, SPEC_JSON, "from-legacy", &s, &err), 0);
	static const char *const want[] = {"/bin/echo", "a b"};
	assert_argv(&s, want, 2);
	ck_assert(!s.tty);
	ck_assert_int_eq(s.source, SV_SPEC_FROM_ARGV);
	ck_assert(s.argv[0] != args[0]); /* owned copies */
	sv_spec_free(&s);
	/* Even a broken spec does not matter when argv is given. */
	ck_assert_int_eq(sv_spec_resolve(args, 2, false, "{bad", NULL, &s, &err), 0);
	sv_spec_free(&s);
}
END_TEST

START_TEST(resolve_interactive_sets_tty_for_argv_only)
{
	char *args[] = {"/bin/sh", NULL};
	struct sv_spec s = {0};
	struct sv_err err = {0};
	ck_assert_int_eq(sv_spec_resolve(args, 1, true, NULL, NULL, &s, &err), 0);
	ck_assert(s.tty);
	sv_spec_free(&s);
	/* The spec's own tty flag decides for the spec, -i or not. */
	ck_assert_int_eq(sv_spec_resolve(NULL, 0, true, SPEC_JSON, NULL, &s, &err), 0);
	ck_assert(!s.tty);
	sv_spec_free(&s);
}
END_TEST

START_TEST(resolve_spec_beats_legacy)
{
	struct sv_spec s = {0};
	struct sv_err err = {0};
	ck_assert_int_eq(sv_spec_resolve(NULL, 0, false, SPEC_JSON, "from-legacy", &s, &err), 0);
	ck_assert_str_eq(s.argv[0], "from-spec");
	ck_assert_int_eq(s.source, SV_SPEC_FROM_JSON);
	sv_spec_free(&s);
	/* A spec that fails to decode is fatal; it never falls back to the legacy variable. */
	ck_assert_int_eq(
	    sv_spec_resolve(NULL, 0, false, "{\"version\":2}", "from-legacy", &s, &err), -EINVAL);
	ck_assert_ptr_null(s.argv);
	ck_assert_ptr_nonnull(strstr(err.msg, SV_SPEC_ENV));
}
END_TEST

START_TEST(resolve_legacy_beats_default)
{
	struct sv_spec s = {0};
	struct sv_err err = {0};
	ck_assert_int_eq(sv_spec_resolve(NULL, 0, false, NULL, "sleep infinity", &s, &err), 0);
	static const char *const want[] = {"sleep", "infinity"};
	assert_argv(&s, want, 2);
	ck_assert_int_eq(s.source, SV_SPEC_FROM_LEGACY);
	sv_spec_free(&s);
	ck_assert_int_eq(sv_spec_resolve(NULL, 0, false, NULL, "   ", &s, &err), -EINVAL);
}
END_TEST

START_TEST(resolve_empty_variables_count_as_absent)
{
	struct sv_spec s = {0};
	struct sv_err err = {0};
	ck_assert_int_eq(sv_spec_resolve(NULL, 0, false, "", "sleep 1", &s, &err), 0);
	ck_assert_int_eq(s.source, SV_SPEC_FROM_LEGACY);
	sv_spec_free(&s);
	ck_assert_int_eq(sv_spec_resolve(NULL, 0, false, "", "", &s, &err), 0);
	ck_assert_int_eq(s.source, SV_SPEC_FROM_DEFAULT);
	sv_spec_free(&s);
}
END_TEST

START_TEST(resolve_default_is_login_bash_on_a_tty)
{
	struct sv_spec s = {0};
	struct sv_err err = {0};
	ck_assert_int_eq(sv_spec_resolve(NULL, 0, false, NULL, NULL, &s, &err), 0);
	static const char *const want[] = {"/bin/bash", "-l"};
	assert_argv(&s, want, 2);
	ck_assert(s.tty);
	ck_assert_int_eq(s.source, SV_SPEC_FROM_DEFAULT);
	sv_spec_free(&s);
}
END_TEST

START_TEST(resolve_empty_argv0_is_an_error)
{
	char *args[] = {"", "x", NULL};
	struct sv_spec s = {0};
	struct sv_err err = {0};
	ck_assert_int_eq(sv_spec_resolve(args, 2, false, SPEC_JSON, NULL, &s, &err), -EINVAL);
	ck_assert_ptr_null(s.argv);
	ck_assert_ptr_nonnull(strstr(err.msg, "must not be empty"));
}
END_TEST

START_TEST(source_names_are_stable)
{
	ck_assert_str_eq(sv_spec_source_name(SV_SPEC_FROM_ARGV), "argv");
	ck_assert_str_eq(sv_spec_source_name(SV_SPEC_FROM_JSON), SV_SPEC_ENV);
	ck_assert_str_eq(sv_spec_source_name(SV_SPEC_FROM_LEGACY), SV_SPEC_LEGACY_ENV);
	ck_assert_str_eq(sv_spec_source_name(SV_SPEC_FROM_DEFAULT), "default");
}
END_TEST

static Suite *spec_suite(void)
{
	Suite *s = suite_create("spec");
	TCase *tc = tcase_create("json");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, json_keeps_argv_boundaries);
	tcase_add_test(tc, json_tty_true_and_field_order_free);
	tcase_add_test(tc, json_unknown_fields_are_ignored);
	tcase_add_test(tc, json_unknown_field_must_still_be_valid_json);
	tcase_add_test(tc, json_each_missing_field_is_named);
	tcase_add_test(tc, json_duplicate_field_is_rejected);
	tcase_add_test(tc, json_version_must_be_exactly_one);
	tcase_add_test(tc, json_command_shape_is_enforced);
	tcase_add_test(tc, json_error_names_offset_of_bad_element);
	tcase_add_test(tc, json_tty_must_be_a_bool);
	tcase_add_test(tc, json_trailing_garbage_and_commas_are_rejected);
	tcase_add_test(tc, json_argv_escapes_decode);
	tcase_add_test(tc, json_argv_rejects_nul_bad_utf8_and_controls);
	tcase_add_test(tc, json_deep_nesting_is_bounded);
	suite_add_tcase(s, tc);

	tc = tcase_create("base64url");
	tcase_add_test(tc, b64url_rfc4648_vectors_unpadded);
	tcase_add_test(tc, b64url_uses_the_url_safe_alphabet);
	tcase_add_test(tc, b64url_rejects_standard_alphabet_and_padding_with_position);
	tcase_add_test(tc, b64url_rejects_length_one_mod_four);
	tcase_add_test(tc, b64url_rejects_noncanonical_trailing_bits);
	tcase_add_test(tc, env_base64url_prefix_decodes_end_to_end);
	tcase_add_test(tc, env_base64url_errors_name_variable_and_position);
	tcase_add_test(tc, env_plain_json_is_parsed);
	suite_add_tcase(s, tc);

	tc = tcase_create("legacy_and_resolution");
	tcase_add_test(tc, legacy_splits_on_any_ascii_whitespace);
	tcase_add_test(tc, legacy_empty_or_blank_is_an_error);
	tcase_add_test(tc, resolve_argv_beats_spec_and_legacy);
	tcase_add_test(tc, resolve_interactive_sets_tty_for_argv_only);
	tcase_add_test(tc, resolve_spec_beats_legacy);
	tcase_add_test(tc, resolve_legacy_beats_default);
	tcase_add_test(tc, resolve_empty_variables_count_as_absent);
	tcase_add_test(tc, resolve_default_is_login_bash_on_a_tty);
	tcase_add_test(tc, resolve_empty_argv0_is_an_error);
	tcase_add_test(tc, source_names_are_stable);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(spec_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
