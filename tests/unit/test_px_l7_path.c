/* Unit tests for netns/proxy/l7/px_l7_path.c: the request-target canonicaliser of contract
 * §2.5, as black-box cases mirroring OpenShell's l7/path.rs tests (named after them).
 *
 * Inputs are copied to exact-length heap buffers so ASan catches any read past the end.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "netns/proxy/l7/px_l7.h"

static char out[PX_L7_CANON_MAX];
static struct px_l7_canon cn;

static int canon_opt(const char *in, bool slash, enum px_l7_path_err *why)
{
	size_t n = strlen(in);
	char *b = malloc(n ? n : 1);
	ck_assert_ptr_nonnull(b);
	memcpy(b, in, n);
	int r = px_l7_path_canon(b, n, slash, out, sizeof(out), &cn, why);
	if (cn.query) /* keep the query comparable after the input buffer is gone */
		cn.query = in + (cn.query - b);
	free(b);
	return r;
}

#define OK(in, want)                                            \
	do {                                                    \
		enum px_l7_path_err w_;                         \
		ck_assert_int_eq(canon_opt(in, false, &w_), 0); \
		ck_assert_str_eq(out, want);                    \
		ck_assert_uint_eq(cn.path_len, strlen(want));   \
	} while (0)
#define OK_SLASH(in, want)                                     \
	do {                                                   \
		enum px_l7_path_err w_;                        \
		ck_assert_int_eq(canon_opt(in, true, &w_), 0); \
		ck_assert_str_eq(out, want);                   \
	} while (0)
#define ERR(in, want_why)                                             \
	do {                                                          \
		enum px_l7_path_err w_;                               \
		ck_assert_int_eq(canon_opt(in, false, &w_), -EINVAL); \
		ck_assert_int_eq(w_, want_why);                       \
	} while (0)
#define ERR_SLASH(in, want_why)                                      \
	do {                                                         \
		enum px_l7_path_err w_;                              \
		ck_assert_int_eq(canon_opt(in, true, &w_), -EINVAL); \
		ck_assert_int_eq(w_, want_why);                      \
	} while (0)

START_TEST(literal_dot_segments_resolve)
{
	OK("/a/./b", "/a/b");
	OK("/a/b/.", "/a/b/");
	OK("/a/../b", "/b");
	OK("/a/b/..", "/a/");
}
END_TEST

START_TEST(percent_encoded_dot_segments_resolve_the_same_way)
{
	OK("/public/%2e%2e/secret", "/secret");
	OK("/public/%2E%2E/secret", "/secret");
	OK("/public/%2e/secret", "/public/secret");
}
END_TEST

START_TEST(traversal_above_root_is_rejected)
{
	ERR("/..", PX_L7_PATH_TRAVERSAL);
	ERR("/a/../..", PX_L7_PATH_TRAVERSAL);
	ERR("/a/%2e%2e/%2e%2e", PX_L7_PATH_TRAVERSAL);
}
END_TEST

START_TEST(doubled_slashes_collapse)
{
	OK("//", "/");
	OK("//public//../secret", "/secret");
	OK("/public//secret", "/public/secret");
}
END_TEST

START_TEST(encoded_slash_rejected_by_default)
{
	ERR("/a/%2f/b", PX_L7_PATH_ENCODED_SLASH);
	ERR("/public/..%2fsecret", PX_L7_PATH_ENCODED_SLASH);
}
END_TEST

START_TEST(encoded_slash_preserved_when_opted_in)
{
	OK_SLASH("/a/%2f/b", "/a/%2F/b");
	OK_SLASH("/a/%2F/b", "/a/%2F/b");
}
END_TEST

START_TEST(null_and_control_bytes_rejected)
{
	ERR("/a%00b", PX_L7_PATH_CONTROL);
	ERR("/a%0Ab", PX_L7_PATH_CONTROL);
	ERR("/a%0Db", PX_L7_PATH_CONTROL);
	ERR("/a%7Fb", PX_L7_PATH_CONTROL);
	ERR("/a%09b", PX_L7_PATH_CONTROL);
	ERR("/a\nb", PX_L7_PATH_CONTROL);
	ERR("/a\tb", PX_L7_PATH_CONTROL);
	ERR("/a\x01", PX_L7_PATH_CONTROL);
}
END_TEST

START_TEST(fragment_rejected)
{
	ERR("/a#b", PX_L7_PATH_FRAGMENT);
}
END_TEST

START_TEST(absolute_form_strips_authority)
{
	OK("http://host/a/../b", "/b");
	OK("https://host", "/");
	OK("http://host:443/foo", "/foo");
	ERR("http:///foo", PX_L7_PATH_MALFORMED);
}
END_TEST

START_TEST(origin_form_with_embedded_url_is_not_stripped_as_absolute_form)
{
	OK("/fetch/http://example.test?next=http://other.test", "/fetch/http:/example.test");
	ck_assert_ptr_nonnull(cn.query);
	ck_assert_uint_eq(cn.query_len, strlen("next=http://other.test"));
	ck_assert_int_eq(memcmp(cn.query, "next=http://other.test", cn.query_len), 0);
}
END_TEST

START_TEST(legitimate_percent_encoded_bytes_round_trip)
{
	OK("/files/hello%20world.txt", "/files/hello%20world.txt");
	OK("/search/a%3Fb", "/search/a%3Fb");
	OK("/users/%40alice", "/users/@alice");
}
END_TEST

START_TEST(path_parameters_stripped_by_default)
{
	OK("/a;jsessionid=xyz/b", "/a/b");
	OK("/public;x=1/../secret", "/secret");
}
END_TEST

/* OpenShell's path_parameters_preserved_when_disabled has no counterpart: the relay never
 * turns stripping off, so neither does our API. This pins that stripping is unconditional. */
START_TEST(path_parameters_are_stripped_even_with_encoded_slash_opt_in)
{
	OK_SLASH("/a;jsessionid=xyz/b", "/a/b");
}
END_TEST

START_TEST(non_ascii_raw_byte_rejected)
{
	ERR("/a\xc3\xa9", PX_L7_PATH_NON_ASCII);
}
END_TEST

START_TEST(percent_encoded_non_ascii_bytes_round_trip)
{
	OK("/users/caf%C3%A9", "/users/caf%C3%A9");
}
END_TEST

START_TEST(empty_and_root_equivalent)
{
	OK("", "/");
	OK("/", "/");
	ERR("a/b", PX_L7_PATH_MALFORMED);
	ERR("*", PX_L7_PATH_MALFORMED);
}
END_TEST

START_TEST(path_too_long_rejected)
{
	char *p = malloc(PX_L7_PATH_MAX + 2);
	p[0] = '/';
	memset(p + 1, 'a', PX_L7_PATH_MAX);
	p[PX_L7_PATH_MAX + 1] = '\0';
	ERR(p, PX_L7_PATH_TOO_LONG);
	p[PX_L7_PATH_MAX] = '\0'; /* exactly the cap: accepted */
	enum px_l7_path_err w;
	ck_assert_int_eq(canon_opt(p, false, &w), 0);
	free(p);
}
END_TEST

START_TEST(mixed_case_percent_normalizes_to_uppercase)
{
	OK("/a/caf%c3%a9", "/a/caf%C3%A9");
}
END_TEST

START_TEST(rewritten_flag_reflects_transformation)
{
	OK("/a", "/a");
	ck_assert(!cn.rewritten);
	OK("/a/../b", "/b");
	ck_assert(cn.rewritten);
	OK("/a/caf%c3%a9", "/a/caf%C3%A9");
	ck_assert(cn.rewritten);
	OK("http://h/a", "/a"); /* compared with the path part only */
	ck_assert(!cn.rewritten);
}
END_TEST

START_TEST(query_suffix_is_returned_separately)
{
	OK("/a?q=1&r=2", "/a");
	ck_assert_uint_eq(cn.query_len, 7);
	ck_assert_int_eq(memcmp(cn.query, "q=1&r=2", 7), 0);
	OK("/a/../b?x=%zz/../", "/b"); /* the query is never decoded or judged */
	ck_assert_int_eq(memcmp(cn.query, "x=%zz/../", cn.query_len), 0);
	OK("/a", "/a");
	ck_assert_ptr_null(cn.query);
}
END_TEST

START_TEST(regression_public_slash_dotdot_secret)
{
	OK("/public/../secret", "/secret");
}
END_TEST

START_TEST(regression_public_slash_percent_dotdot_secret)
{
	OK("/public/%2e%2e/secret", "/secret");
	OK("/public/%2E%2E/secret", "/secret");
}
END_TEST

START_TEST(regression_percent_encoded_slash_in_dotdot_rejected)
{
	ERR("/public/%2E%2E%2Fsecret", PX_L7_PATH_ENCODED_SLASH);
}
END_TEST

START_TEST(regression_double_slash_prefix)
{
	OK("//public/../secret", "/secret");
}
END_TEST

START_TEST(regression_dot_slash_dotdot)
{
	OK("/public/./../secret", "/secret");
}
END_TEST

START_TEST(regression_dotdot_with_path_parameter_is_resolved_not_smuggled)
{
	OK("/public/..;/secret", "/secret");
	OK("/public/..;x/secret", "/secret");
	OK("/public/..;jsessionid=xyz/secret", "/secret");
	OK("/public/.;/secret", "/public/secret");
	OK("/public/.;x/secret", "/public/secret");
}
END_TEST

START_TEST(regression_percent_encoded_dotdot_with_path_parameter)
{
	OK("/public/%2e%2e;/secret", "/secret");
	OK("/public/..%3B/secret", "/secret");
	OK("/public/..%3b/secret", "/secret");
}
END_TEST

START_TEST(regression_chained_dotdot_with_path_parameters_hits_root_guard)
{
	ERR("/public/..;/..;/secret", PX_L7_PATH_TRAVERSAL);
	ERR("/api/v1/..;/..;/..;/admin/keys", PX_L7_PATH_TRAVERSAL);
	ERR("/..;", PX_L7_PATH_TRAVERSAL);
}
END_TEST

START_TEST(regression_dotdot_behind_encoded_slash_is_rejected_when_opted_in)
{
	ERR_SLASH("/public/..%2fsecret", PX_L7_PATH_RESIDUAL_DOT);
	ERR_SLASH("/public/..%2f..%2fsecret", PX_L7_PATH_RESIDUAL_DOT);
	ERR_SLASH("/public/.%2fsecret", PX_L7_PATH_RESIDUAL_DOT);
	OK_SLASH("/repos/group%2fproject/issues", "/repos/group%2Fproject/issues");
}
END_TEST

START_TEST(encoded_slash_detection_on_canonical_paths_is_exact)
{
	OK_SLASH("/repos/group%2fproject/issues", "/repos/group%2Fproject/issues");
	ck_assert(px_l7_path_has_encoded_slash(out, cn.path_len));
	OK("/public/secret", "/public/secret");
	ck_assert(!px_l7_path_has_encoded_slash(out, cn.path_len));
	OK("/a/%252F/b", "/a/%252F/b");
	ck_assert(!px_l7_path_has_encoded_slash(out, cn.path_len));
	OK("/a/100%25/b", "/a/100%25/b");
	ck_assert(!px_l7_path_has_encoded_slash(out, cn.path_len));
}
END_TEST

START_TEST(canonical_output_never_contains_dot_segments)
{
	static const char *const in[] = {
	    "/public/..;/secret",
	    "/public/.;/secret",
	    "/public/%2e%2e;/secret",
	    "/a;jsessionid=xyz/b",
	    "/public//../secret",
	    "/a/b/..",
	    "/a/b/.",
	};
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		enum px_l7_path_err w;
		if (canon_opt(in[i], false, &w) != 0)
			continue;
		ck_assert_ptr_null(strstr(out, "/../"));
		ck_assert_ptr_null(strstr(out, "/./"));
		size_t n = strlen(out);
		ck_assert(!(n >= 3 && strcmp(out + n - 3, "/..") == 0));
		ck_assert(!(n >= 2 && strcmp(out + n - 2, "/.") == 0));
	}
}
END_TEST

START_TEST(reencoding_uses_the_pchar_set_and_upper_case_hex)
{
	OK("/a%20b%7e%21%2a%3a%40%3d", "/a%20b~!*:@=");
	OK("/x\"y{z}", "/x%22y%7Bz%7D");
	OK("/%25", "/%25");
	ERR("/%", PX_L7_PATH_BAD_PERCENT);
	ERR("/%4", PX_L7_PATH_BAD_PERCENT);
	ERR("/%g0", PX_L7_PATH_BAD_PERCENT);
	ck_assert_str_eq(px_l7_path_strerror(PX_L7_PATH_TRAVERSAL),
			 "request-target's `..` segment would escape the path root");
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("px_l7_path");
	TCase *tc = tcase_create("canon");
	tcase_add_test(tc, literal_dot_segments_resolve);
	tcase_add_test(tc, percent_encoded_dot_segments_resolve_the_same_way);
	tcase_add_test(tc, traversal_above_root_is_rejected);
	tcase_add_test(tc, doubled_slashes_collapse);
	tcase_add_test(tc, encoded_slash_rejected_by_default);
	tcase_add_test(tc, encoded_slash_preserved_when_opted_in);
	tcase_add_test(tc, null_and_control_bytes_rejected);
	tcase_add_test(tc, fragment_rejected);
	tcase_add_test(tc, absolute_form_strips_authority);
	tcase_add_test(tc, origin_form_with_embedded_url_is_not_stripped_as_absolute_form);
	tcase_add_test(tc, legitimate_percent_encoded_bytes_round_trip);
	tcase_add_test(tc, path_parameters_stripped_by_default);
	tcase_add_test(tc, path_parameters_are_stripped_even_with_encoded_slash_opt_in);
	tcase_add_test(tc, non_ascii_raw_byte_rejected);
	tcase_add_test(tc, percent_encoded_non_ascii_bytes_round_trip);
	tcase_add_test(tc, empty_and_root_equivalent);
	tcase_add_test(tc, path_too_long_rejected);
	tcase_add_test(tc, mixed_case_percent_normalizes_to_uppercase);
	tcase_add_test(tc, rewritten_flag_reflects_transformation);
	tcase_add_test(tc, query_suffix_is_returned_separately);
	tcase_add_test(tc, regression_public_slash_dotdot_secret);
	tcase_add_test(tc, regression_public_slash_percent_dotdot_secret);
	tcase_add_test(tc, regression_percent_encoded_slash_in_dotdot_rejected);
	tcase_add_test(tc, regression_double_slash_prefix);
	tcase_add_test(tc, regression_dot_slash_dotdot);
	tcase_add_test(tc, regression_dotdot_with_path_parameter_is_resolved_not_smuggled);
	tcase_add_test(tc, regression_percent_encoded_dotdot_with_path_parameter);
	tcase_add_test(tc, regression_chained_dotdot_with_path_parameters_hits_root_guard);
	tcase_add_test(tc, regression_dotdot_behind_encoded_slash_is_rejected_when_opted_in);
	tcase_add_test(tc, encoded_slash_detection_on_canonical_paths_is_exact);
	tcase_add_test(tc, canonical_output_never_contains_dot_segments);
	tcase_add_test(tc, reencoding_uses_the_pchar_set_and_upper_case_hex);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
