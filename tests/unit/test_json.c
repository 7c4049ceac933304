/* Unit tests for supervisor/json.c, the strict bounded JSON pull parser.
 *
 * Every input is copied into a heap buffer of its exact length with no NUL after it, so ASan
 * flags any read past buf+len. Tests must never depend on the parser seeing a terminator.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor/json.h"

struct jbuf {
	struct sv_json j;
	char *copy; /* exactly len bytes, not terminated */
};

static void jb_open_n(struct jbuf *b, const char *text, size_t len)
{
	b->copy = malloc(len ? len : 1);
	ck_assert_ptr_nonnull(b->copy);
	memcpy(b->copy, text, len);
	sv_json_init(&b->j, "TESTVAR", b->copy, len);
}

static void jb_open(struct jbuf *b, const char *text)
{
	jb_open_n(b, text, strlen(text));
}

static void jb_close(struct jbuf *b)
{
	free(b->copy);
	b->copy = NULL;
}

/* Parse one top-level string value and its end; returns the rc, fills out/outlen on success. */
static int parse_string(const char *text, bool allow_nul, char **out, size_t *outlen,
			struct sv_err *err)
{
	struct jbuf b;
	jb_open(&b, text);
	*out = NULL;
	int r = sv_json_string(&b.j, out, outlen, allow_nul, err);
	if (r == 0) {
		r = sv_json_end(&b.j, err);
		if (r < 0) {
			free(*out);
			*out = NULL;
		}
	}
	jb_close(&b);
	return r;
}

static void assert_string(const char *json, const char *want, size_t want_len)
{
	struct sv_err err = {0};
	char *s;
	size_t n = 0;
	int r = parse_string(json, false, &s, &n, &err);
	ck_assert_msg(r == 0, "%s: rc %d (%s)", json, r, err.msg);
	ck_assert_uint_eq(n, want_len);
	ck_assert_msg(memcmp(s, want, want_len) == 0, "%s: decoded bytes differ", json);
	ck_assert_int_eq(s[n], '\0');
	free(s);
}

static void assert_string_fails(const char *json, size_t len, const char *why)
{
	struct jbuf b;
	struct sv_err err = {0};
	char *s = NULL;
	jb_open_n(&b, json, len);
	int r = sv_json_string(&b.j, &s, NULL, false, &err);
	jb_close(&b);
	ck_assert_msg(r == -EINVAL, "input %zu bytes accepted (rc %d)", len, r);
	ck_assert_ptr_null(s);
	ck_assert_int_eq(err.code, EINVAL);
	ck_assert_msg(strstr(err.msg, why) != NULL, "message '%s' lacks '%s'", err.msg, why);
	ck_assert_msg(strncmp(err.msg, "TESTVAR: invalid JSON: ", 23) == 0, "msg '%s'", err.msg);
}

static int skip_all(const char *text, struct sv_err *err)
{
	struct jbuf b;
	jb_open(&b, text);
	int r = sv_json_skip(&b.j, err);
	if (r == 0)
		r = sv_json_end(&b.j, err);
	jb_close(&b);
	return r;
}

/* "[[[...]]]" with @depth levels, heap allocated. */
static char *nested_arrays(size_t depth)
{
	char *s = malloc(2 * depth + 1);
	ck_assert_ptr_nonnull(s);
	memset(s, '[', depth);
	memset(s + depth, ']', depth);
	s[2 * depth] = '\0';
	return s;
}

START_TEST(simple_escapes_decode_to_their_bytes)
{
	assert_string("\"a\\\"b\\\\c\\/d\"", "a\"b\\c/d", 7);
	assert_string("\"\\b\\f\\n\\r\\t\"", "\b\f\n\r\t", 5);
	assert_string("\"\"", "", 0);
	assert_string("  \"x\"  ", "x", 1);
}
END_TEST

START_TEST(unicode_escapes_become_utf8)
{
	assert_string("\"\\u0041\"", "A", 1);
	assert_string("\"\\u00e9\"", "\xc3\xa9", 2);
	assert_string("\"\\u00E9\"", "\xc3\xa9", 2);
	assert_string("\"\\u20ac\"", "\xe2\x82\xac", 3);
	assert_string("\"\\uffff\"", "\xef\xbf\xbf", 3);
}
END_TEST

START_TEST(surrogate_pairs_become_four_byte_utf8)
{
	assert_string("\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80", 4);
	assert_string("\"\\uD83D\\uDE00x\"", "\xf0\x9f\x98\x80x", 5);
	assert_string("\"\\ud800\\udc00\"", "\xf0\x90\x80\x80", 4); /* U+10000 */
	assert_string("\"\\udbff\\udfff\"", "\xf4\x8f\xbf\xbf", 4); /* U+10FFFF */
}
END_TEST

START_TEST(lone_or_misordered_surrogates_are_rejected)
{
	assert_string_fails("\"\\udc00\"", 8, "lone low surrogate");
	assert_string_fails("\"\\ud800\"", 8, "unpaired high surrogate");
	assert_string_fails("\"\\ud800x\"", 9, "unpaired high surrogate");
	assert_string_fails("\"\\ud800\\u0041\"", 14, "unpaired high surrogate");
	assert_string_fails("\"\\ud800\\ud800\"", 14, "unpaired high surrogate");
}
END_TEST

START_TEST(bad_escapes_are_rejected)
{
	assert_string_fails("\"\\x\"", 4, "invalid escape");
	assert_string_fails("\"\\a\"", 4, "invalid escape");
	assert_string_fails("\"\\'\"", 4, "invalid escape");
	assert_string_fails("\"\\u12\"", 6, "invalid \\u escape");
	assert_string_fails("\"\\u12g4\"", 8, "invalid \\u escape");
	assert_string_fails("\"\\u", 3, "invalid \\u escape");
	assert_string_fails("\"abc\\", 5, "unterminated string");
	/* An escaped NUL byte (backslash then 0x00) is not an escape. */
	assert_string_fails("\"\\\0\"", 4, "invalid escape");
}
END_TEST

START_TEST(escape_error_offset_points_at_the_escape)
{
	struct sv_err err = {0};
	char *s;
	ck_assert_int_eq(parse_string("\"abc\\qdef\"", false, &s, NULL, &err), -EINVAL);
	/* The backslash is byte 4, the bad letter byte 5: the report must land on one of them
	 * or just after. */
	const char *at = strstr(err.msg, " at byte ");
	ck_assert_ptr_nonnull(at);
	long pos = strtol(at + 9, NULL, 10);
	ck_assert_msg(pos >= 4 && pos <= 6, "offset %ld in '%s'", pos, err.msg);
}
END_TEST

START_TEST(nul_is_refused_unless_allowed)
{
	struct sv_err err = {0};
	char *s;
	size_t n;
	ck_assert_int_eq(parse_string("\"a\\u0000b\"", false, &s, &n, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "NUL character in string"));
	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(parse_string("\"a\\u0000b\"", true, &s, &n, &err), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_int_eq(memcmp(s, "a\0b", 3), 0);
	free(s);
}
END_TEST

START_TEST(raw_control_characters_are_rejected_at_their_offset)
{
	static const char ctl[] = {0x01, 0x09, 0x0a, 0x0d, 0x1f, 0x00};
	for (size_t i = 0; i < sizeof(ctl); i++) {
		char in[6] = {'"', 'a', 'b', ctl[i], '"', 0};
		struct jbuf b;
		struct sv_err err = {0};
		char *s = NULL;
		jb_open_n(&b, in, 5);
		ck_assert_int_eq(sv_json_string(&b.j, &s, NULL, true, &err), -EINVAL);
		jb_close(&b);
		ck_assert_msg(strstr(err.msg, "control character in string at byte 3"),
			      "ctl 0x%02x: '%s'", ctl[i], err.msg);
	}
	/* DEL (0x7f) is not a control character in JSON. */
	assert_string("\"a\x7f\"", "a\x7f", 2);
}
END_TEST

START_TEST(valid_utf8_passes_through)
{
	assert_string("\"\xc3\xa9\"", "\xc3\xa9", 2);
	assert_string("\"\xe2\x82\xac\"", "\xe2\x82\xac", 3);
	assert_string("\"\xf0\x9f\x98\x80\"", "\xf0\x9f\x98\x80", 4);
	assert_string("\"\xf4\x8f\xbf\xbf\"", "\xf4\x8f\xbf\xbf", 4);
	assert_string("\"\xed\x9f\xbf\"", "\xed\x9f\xbf", 3); /* U+D7FF, just below surrogates */
}
END_TEST

START_TEST(invalid_utf8_is_rejected_at_its_offset)
{
	static const char *const bad[] = {
	    "\x80",		/* lone continuation */
	    "\xbf",		/* lone continuation */
	    "\xc0\x80",		/* overlong NUL */
	    "\xc1\xbf",		/* overlong */
	    "\xe0\x80\x80",	/* overlong 3-byte */
	    "\xe0\x9f\xbf",	/* overlong 3-byte */
	    "\xed\xa0\x80",	/* encoded surrogate D800 */
	    "\xed\xbf\xbf",	/* encoded surrogate DFFF */
	    "\xf0\x80\x80\x80", /* overlong 4-byte */
	    "\xf4\x90\x80\x80", /* above U+10FFFF */
	    "\xf5\x80\x80\x80", /* invalid lead */
	    "\xff",		/* invalid lead */
	    "\xc3",		/* truncated by the closing quote */
	    "\xe2\x82",		/* truncated */
	    "\xc3\x41",		/* continuation missing */
	};
	for (size_t i = 0; i < SV_ARRAY_SIZE(bad); i++) {
		char in[16];
		size_t n = strlen(bad[i]);
		in[0] = '"';
		in[1] = 'x';
		memcpy(in + 2, bad[i], n);
		in[2 + n] = '"';
		struct jbuf b;
		struct sv_err err = {0};
		char *s = NULL;
		jb_open_n(&b, in, n + 3);
		ck_assert_int_eq(sv_json_string(&b.j, &s, NULL, true, &err), -EINVAL);
		jb_close(&b);
		ck_assert_msg(strstr(err.msg, "invalid UTF-8 at byte 2"), "case %zu: '%s'", i,
			      err.msg);
	}
	/* A sequence cut off by the end of the buffer must not be read past. */
	assert_string_fails("\"\xf0\x9f", 3, "invalid UTF-8");
}
END_TEST

START_TEST(unterminated_string_stops_at_buffer_end)
{
	assert_string_fails("\"abc", 4, "unterminated string");
	assert_string_fails("\"", 1, "unterminated string");
	assert_string_fails("abc", 3, "expected a string at byte 0");
	assert_string_fails("", 0, "expected a string at byte 0");
}
END_TEST

START_TEST(uint_accepts_plain_integers_only)
{
	static const struct {
		const char *in;
		uint64_t want;
	} ok[] = {
	    {"0", 0},
	    {"1", 1},
	    {" 42 ", 42},
	    {"18446744073709551615", UINT64_MAX},
	};
	for (size_t i = 0; i < SV_ARRAY_SIZE(ok); i++) {
		struct jbuf b;
		struct sv_err err = {0};
		uint64_t v = 7;
		jb_open(&b, ok[i].in);
		ck_assert_msg(sv_json_uint(&b.j, &v, &err) == 0, "%s: %s", ok[i].in, err.msg);
		ck_assert_int_eq(sv_json_end(&b.j, &err), 0);
		jb_close(&b);
		ck_assert_msg(v == ok[i].want, "%s", ok[i].in);
	}
	static const struct {
		const char *in;
		const char *why;
	} bad[] = {
	    {"-1", "expected a non-negative integer"},
	    {"1.0", "expected a non-negative integer"},
	    {"1e3", "expected a non-negative integer"},
	    {"18446744073709551616", "integer out of range"},
	    {"99999999999999999999999", "integer out of range"},
	    {"01", "leading zero"},
	    {"-", "invalid number"},
	    {"1.", "invalid number"},
	    {"1e", "invalid number"},
	    {"true", "invalid number"},
	    {"\"1\"", "invalid number"},
	};
	for (size_t i = 0; i < SV_ARRAY_SIZE(bad); i++) {
		struct jbuf b;
		struct sv_err err = {0};
		uint64_t v = 7;
		jb_open(&b, bad[i].in);
		ck_assert_int_eq(sv_json_uint(&b.j, &v, &err), -EINVAL);
		jb_close(&b);
		ck_assert_msg(strstr(err.msg, bad[i].why), "%s: '%s'", bad[i].in, err.msg);
		ck_assert_msg(v == 7, "%s: output written on failure", bad[i].in);
	}
}
END_TEST

START_TEST(bool_reads_true_and_false_only)
{
	static const char *const bad[] = {"1", "\"true\"", "null", "tru", "True", ""};
	struct jbuf b;
	struct sv_err err = {0};
	bool v = false;
	jb_open(&b, " true");
	ck_assert_int_eq(sv_json_bool(&b.j, &v, &err), 0);
	jb_close(&b);
	ck_assert(v);
	jb_open(&b, "false");
	ck_assert_int_eq(sv_json_bool(&b.j, &v, &err), 0);
	jb_close(&b);
	ck_assert(!v);
	for (size_t i = 0; i < SV_ARRAY_SIZE(bad); i++) {
		jb_open(&b, bad[i]);
		ck_assert_int_eq(sv_json_bool(&b.j, &v, &err), -EINVAL);
		jb_close(&b);
		ck_assert_ptr_nonnull(strstr(err.msg, "expected true or false"));
	}
}
END_TEST

START_TEST(peek_classifies_without_consuming)
{
	static const struct {
		const char *in;
		enum sv_json_type t;
	} cases[] = {
	    {"null", SV_JSON_NULL},  {"true", SV_JSON_BOOL},  {"false", SV_JSON_BOOL},
	    {" -1", SV_JSON_NUMBER}, {"7", SV_JSON_NUMBER},   {"\"s\"", SV_JSON_STRING},
	    {"[", SV_JSON_ARRAY},    {"\n{", SV_JSON_OBJECT}, {"", SV_JSON_BAD},
	    {"   ", SV_JSON_BAD},    {"x", SV_JSON_BAD},      {"+1", SV_JSON_BAD},
	};
	for (size_t i = 0; i < SV_ARRAY_SIZE(cases); i++) {
		struct jbuf b;
		jb_open(&b, cases[i].in);
		ck_assert_int_eq(sv_json_peek(&b.j), cases[i].t);
		ck_assert_int_eq(sv_json_peek(&b.j), cases[i].t); /* still there */
		jb_close(&b);
	}
}
END_TEST

START_TEST(skip_accepts_every_value_kind)
{
	static const char *const ok[] = {
	    "null",
	    "true",
	    "false",
	    "0",
	    "-0",
	    "1.5",
	    "-1.5e-3",
	    "1E+5",
	    "\"s\\u00e9\"",
	    "[]",
	    "{}",
	    "[1,\"a\",null,[true],{\"k\":[]}]",
	    " { \"a\" : { \"b\" : [ 1 , 2 ] } } ",
	    "\"a\\u0000b\"", /* skipping tolerates NUL: only kept strings must not hold one */
	};
	for (size_t i = 0; i < SV_ARRAY_SIZE(ok); i++) {
		struct sv_err err = {0};
		ck_assert_msg(skip_all(ok[i], &err) == 0, "%s: %s", ok[i], err.msg);
	}
}
END_TEST

START_TEST(skip_rejects_malformed_values)
{
	static const struct {
		const char *in;
		const char *why;
	} bad[] = {
	    {"nul", "invalid literal"},
	    {"nulll", "trailing characters"},
	    {"tru", "expected true or false"},
	    {"01", "leading zero"},
	    {".5", "expected a value"},
	    {"+1", "expected a value"},
	    {"", "unexpected end of input"},
	    {"[1,]", "trailing comma"},
	    {"[1,2,]", "trailing comma"},
	    {"{\"a\":1,}", "trailing comma"},
	    {"[1 2]", "expected ',' or ']'"},
	    {"{\"a\":1 \"b\":2}", "expected ',' or '}'"},
	    {"{\"a\" 1}", "expected ':'"},
	    {"{1:2}", "expected a string"},
	    {"{\"a\":}", "expected a value"},
	    {"[,1]", "expected a value"},
	    {"[", "unexpected end of input"},
	    {"[1", "expected ',' or ']'"},
	    {"{\"a\":1", "expected ',' or '}'"},
	    {"{\"\\u0000\":1}", "NUL character"},
	    {"[1]]", "trailing characters after the value at byte 3"},
	    {"{} x", "trailing characters after the value at byte 3"},
	};
	for (size_t i = 0; i < SV_ARRAY_SIZE(bad); i++) {
		struct sv_err err = {0};
		ck_assert_msg(skip_all(bad[i].in, &err) == -EINVAL, "'%s' accepted", bad[i].in);
		ck_assert_msg(strstr(err.msg, bad[i].why), "'%s': got '%s', want '%s'", bad[i].in,
			      err.msg, bad[i].why);
	}
}
END_TEST

START_TEST(nesting_is_bounded_by_depth_max)
{
	struct sv_err err = {0};
	char *s = nested_arrays(SV_JSON_DEPTH_MAX);
	ck_assert_msg(skip_all(s, &err) == 0, "depth %d refused: %s", SV_JSON_DEPTH_MAX, err.msg);
	free(s);
	s = nested_arrays(SV_JSON_DEPTH_MAX + 1);
	ck_assert_int_eq(skip_all(s, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "nesting too deep"));
	free(s);
}
END_TEST

START_TEST(very_deep_nesting_fails_without_crashing)
{
	struct sv_err err = {0};
	char *s = nested_arrays(200000);
	ck_assert_int_eq(skip_all(s, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "nesting too deep"));
	free(s);
	/* Objects nest the same way. */
	size_t depth = 100000;
	char *o = malloc(6 * depth + 1);
	ck_assert_ptr_nonnull(o);
	for (size_t i = 0; i < depth; i++)
		memcpy(o + 5 * i, "{\"a\":", 5);
	memset(o + 5 * depth, '}', depth);
	o[6 * depth] = '\0';
	ck_assert_int_eq(skip_all(o, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "nesting too deep"));
	free(o);
}
END_TEST

START_TEST(object_iteration_yields_keys_in_order)
{
	struct jbuf b;
	struct sv_err err = {0};
	char *key = NULL;
	jb_open(&b, "{ \"one\" : 1 , \"two\":\"x\", \"\":[] }");
	ck_assert_int_eq(sv_json_object_begin(&b.j, &err), 0);
	static const char *const want[] = {"one", "two", ""};
	for (size_t i = 0; i < SV_ARRAY_SIZE(want); i++) {
		ck_assert_int_eq(sv_json_object_next(&b.j, &key, &err), 1);
		ck_assert_str_eq(key, want[i]);
		free(key);
		ck_assert_int_eq(sv_json_skip(&b.j, &err), 0);
	}
	ck_assert_int_eq(sv_json_object_next(&b.j, &key, &err), 0);
	ck_assert_int_eq(sv_json_end(&b.j, &err), 0);
	jb_close(&b);
}
END_TEST

START_TEST(array_iteration_counts_elements)
{
	struct jbuf b;
	struct sv_err err = {0};
	int r, n = 0;
	jb_open(&b, "[ 1 ,2,\n\t3 ]");
	ck_assert_int_eq(sv_json_array_begin(&b.j, &err), 0);
	while ((r = sv_json_array_next(&b.j, &err)) > 0) {
		uint64_t v;
		ck_assert_int_eq(sv_json_uint(&b.j, &v, &err), 0);
		ck_assert_uint_eq(v, (uint64_t)++n);
	}
	ck_assert_int_eq(r, 0);
	ck_assert_int_eq(n, 3);
	jb_close(&b);
	jb_open(&b, "[]");
	ck_assert_int_eq(sv_json_array_begin(&b.j, &err), 0);
	ck_assert_int_eq(sv_json_array_next(&b.j, &err), 0);
	jb_close(&b);
}
END_TEST

START_TEST(begin_rejects_wrong_container)
{
	struct jbuf b;
	struct sv_err err = {0};
	jb_open(&b, "[1]");
	ck_assert_int_eq(sv_json_object_begin(&b.j, &err), -EINVAL);
	ck_assert_str_eq(err.msg, "TESTVAR: invalid JSON: expected an object at byte 0");
	jb_close(&b);
	jb_open(&b, "  {}");
	ck_assert_int_eq(sv_json_array_begin(&b.j, &err), -EINVAL);
	ck_assert_str_eq(err.msg, "TESTVAR: invalid JSON: expected an array at byte 2");
	jb_close(&b);
}
END_TEST

START_TEST(fail_formats_name_message_and_offset)
{
	struct sv_json j;
	struct sv_err err = {0};
	sv_json_init(&j, "SOMEVAR", "abcdef", 6);
	j.pos = 4;
	ck_assert_int_eq(sv_json_fail(&j, &err, "boom"), -EINVAL);
	ck_assert_int_eq(err.code, EINVAL);
	ck_assert_str_eq(err.msg, "SOMEVAR: invalid JSON: boom at byte 4");
	/* A NULL error sink is allowed. */
	ck_assert_int_eq(sv_json_fail(&j, NULL, "boom"), -EINVAL);
}
END_TEST

static Suite *json_suite(void)
{
	Suite *s = suite_create("json");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, simple_escapes_decode_to_their_bytes);
	tcase_add_test(tc, unicode_escapes_become_utf8);
	tcase_add_test(tc, surrogate_pairs_become_four_byte_utf8);
	tcase_add_test(tc, lone_or_misordered_surrogates_are_rejected);
	tcase_add_test(tc, bad_escapes_are_rejected);
	tcase_add_test(tc, escape_error_offset_points_at_the_escape);
	tcase_add_test(tc, nul_is_refused_unless_allowed);
	tcase_add_test(tc, raw_control_characters_are_rejected_at_their_offset);
	tcase_add_test(tc, valid_utf8_passes_through);
	tcase_add_test(tc, invalid_utf8_is_rejected_at_its_offset);
	tcase_add_test(tc, unterminated_string_stops_at_buffer_end);
	tcase_add_test(tc, uint_accepts_plain_integers_only);
	tcase_add_test(tc, bool_reads_true_and_false_only);
	tcase_add_test(tc, peek_classifies_without_consuming);
	tcase_add_test(tc, skip_accepts_every_value_kind);
	tcase_add_test(tc, skip_rejects_malformed_values);
	tcase_add_test(tc, nesting_is_bounded_by_depth_max);
	tcase_add_test(tc, very_deep_nesting_fails_without_crashing);
	tcase_add_test(tc, object_iteration_yields_keys_in_order);
	tcase_add_test(tc, array_iteration_counts_elements);
	tcase_add_test(tc, begin_rejects_wrong_container);
	tcase_add_test(tc, fail_formats_name_message_and_offset);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(json_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
