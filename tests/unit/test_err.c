/* Unit tests for supervisor/err.c: bounded formatting and log-safe tokens. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor/err.h"

START_TEST(plain_paths_stay_bare)
{
	char b[64];
	ck_assert_uint_eq(sv_fmt_token(b, sizeof(b), "/usr/bin/python3.11"), 19);
	ck_assert_str_eq(b, "/usr/bin/python3.11");
	sv_fmt_token(b, sizeof(b), "/opt/a_b+c,d@e%f~g-h");
	ck_assert_str_eq(b, "/opt/a_b+c,d@e%f~g-h");
}
END_TEST

START_TEST(anything_that_could_pass_for_log_syntax_is_quoted_and_escaped)
{
	char b[128];
	sv_fmt_token(b, sizeof(b), "/tmp/x -> good:443 [policy:canary");
	ck_assert_str_eq(b, "\"/tmp/x -> good:443 [policy:canary\"");
	sv_fmt_token(b, sizeof(b), "/tmp/a\"b\\c\nd");
	ck_assert_str_eq(b, "\"/tmp/a\\\"b\\\\c\\x0ad\"");
	sv_fmt_token(b, sizeof(b), "");
	ck_assert_str_eq(b, "\"\"");
	sv_fmt_token(b, sizeof(b), NULL);
	ck_assert_str_eq(b, "\"\"");
}
END_TEST

START_TEST(a_quoted_token_cut_short_still_closes_its_quote)
{
	char b[12];
	size_t n = sv_fmt_token(b, sizeof(b), "/tmp/a b c d e f g");
	ck_assert_uint_eq(n, strlen(b));
	ck_assert_uint_lt(n, sizeof(b));
	ck_assert_int_eq(b[0], '"');
	ck_assert_int_eq(b[n - 1], '"');
}
END_TEST

static Suite *err_suite(void)
{
	Suite *s = suite_create("err");
	TCase *tc = tcase_create("token");
	tcase_add_test(tc, plain_paths_stay_bare);
	tcase_add_test(tc, anything_that_could_pass_for_log_syntax_is_quoted_and_escaped);
	tcase_add_test(tc, a_quoted_token_cut_short_still_closes_its_quote);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(err_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
