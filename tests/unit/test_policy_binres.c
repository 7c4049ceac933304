/* Unit tests for policy binary symlink resolution (supervisor/policy/policy_binres.c): paths
 * resolved inside a fake root built in a temporary directory, the link and its target both
 * kept in the rule, and the resolved rules carried to the proxy child (px_pack).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "netns/proxy/px_pack.h"
#include "supervisor/log.h"
#include "supervisor/policy/policy.h"
#include "tests/unit/pol_build.h"

static char root[64];

static void mk(const char *rel, bool dir)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s%s", root, rel);
	if (dir) {
		ck_assert_int_eq(mkdir(p, 0755), 0);
		return;
	}
	int fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0755);
	ck_assert_int_ge(fd, 0);
	close(fd);
}

static void ln(const char *target, const char *rel)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s%s", root, rel);
	ck_assert_int_eq(symlink(target, p), 0);
}

/* A merged-/usr image: /bin -> usr/bin, python3 -> python3.11, an absolute link, a chain, a
 * dangling link, a loop, and links that try to climb out of the root. */
static void setup(void)
{
	sv_log_setup(SV_LOG_ERROR, SV_LOG_TEXT);
	snprintf(root, sizeof(root), "/tmp/test-binres-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(root));
	mk("/usr", true);
	mk("/usr/bin", true);
	mk("/usr/local", true);
	mk("/usr/local/bin", true);
	mk("/usr/bin/python3.11", false);
	mk("/usr/bin/curl", false);
	ln("usr/bin", "/bin");
	ln("python3.11", "/usr/bin/python3");
	ln("/usr/bin/python3", "/usr/local/bin/py");		  /* absolute, then relative */
	ln("../../../../../../usr/bin/curl", "/usr/local/bin/c"); /* ".." clamps at the root */
	ln("/etc/passwd", "/usr/local/bin/host");		  /* absent inside the root */
	ln("nowhere", "/usr/bin/dangling");
	ln("loop2", "/usr/bin/loop1");
	ln("loop1", "/usr/bin/loop2");
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	ck_assert_int_eq(system(cmd), 0);
}

static int resolve(const char *path, char *out)
{
	return pol_binary_resolve(root, path, out, PATH_MAX);
}

START_TEST(links_resolve_inside_the_root_and_never_leave_it)
{
	char out[PATH_MAX];
	ck_assert_int_eq(resolve("/usr/bin/python3", out), 0);
	ck_assert_str_eq(out, "/usr/bin/python3.11");
	ck_assert_int_eq(resolve("/bin/python3", out), 0); /* a directory link on the way */
	ck_assert_str_eq(out, "/usr/bin/python3.11");
	ck_assert_int_eq(resolve("/usr/local/bin/py", out), 0); /* absolute target: from root */
	ck_assert_str_eq(out, "/usr/bin/python3.11");
	ck_assert_int_eq(resolve("/usr/local/bin/c", out), 0); /* ".." stops at the root */
	ck_assert_str_eq(out, "/usr/bin/curl");
	ck_assert_int_eq(resolve("/usr/bin/curl", out), 0); /* not a link: itself */
	ck_assert_str_eq(out, "/usr/bin/curl");
	ck_assert_int_eq(resolve("/usr/bin/./x/../curl", out), -ENOENT); /* x does not exist */
	/* The host's /etc/passwd exists, the root's does not: never looked up outside. */
	ck_assert_int_eq(resolve("/usr/local/bin/host", out), -ENOENT);
	ck_assert_int_eq(resolve("/usr/bin/dangling", out), -ENOENT);
	ck_assert_int_eq(resolve("/usr/bin/loop1", out), -ELOOP);
	ck_assert_int_eq(resolve("/usr/bin/curl/x", out), -ENOTDIR);
	ck_assert_int_eq(resolve("usr/bin/curl", out), -EINVAL);
}
END_TEST

/* Images keep tools in user-owned trees (conda, pyenv shims): their links are followed too. */
START_TEST(a_link_owned_by_another_user_is_followed)
{
	if (geteuid() != 0)
		return; /* lchown to another user needs root; CI runs as root */
	char p[PATH_MAX], out[PATH_MAX];
	ln("/usr/bin/curl", "/usr/local/bin/user-link");
	snprintf(p, sizeof(p), "%s/usr/local/bin/user-link", root);
	ck_assert_int_eq(lchown(p, 1000, 1000), 0);
	ck_assert_int_eq(resolve("/usr/local/bin/user-link", out), 0);
	ck_assert_str_eq(out, "/usr/bin/curl");
}
END_TEST

static struct pol_policy policy_with(const char *const *bins, size_t n)
{
	struct pol_policy p;
	pol_init(&p);
	tb_endpoint(&p, "r", "example.com", 443);
	pol_strv_free(&p.rules[0].binaries);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(pol_strv_push(&p.rules[0].binaries, bins[i]), 0);
	return p;
}

START_TEST(rules_keep_the_link_and_gain_the_target_once)
{
	static const char *const bins[] = {"/usr/bin/python3", "/usr/bin/*",   "/usr/bin/dangling",
					   "/usr/bin/loop1",   "/bin/python3", "/usr/bin/curl"};
	struct pol_policy p = policy_with(bins, 6);
	ck_assert_int_eq(pol_resolve_binaries(&p, root), 1); /* one target for both links */
	const struct pol_strv *b = &p.rules[0].binaries;
	ck_assert_uint_eq(b->n, 7);
	for (size_t i = 0; i < 6; i++)
		ck_assert_str_eq(b->v[i], bins[i]); /* nothing the policy said is touched */
	ck_assert_str_eq(b->v[6], "/usr/bin/python3.11");
	ck_assert_int_eq(pol_resolve_binaries(&p, root), 0); /* idempotent: a reload adds none */
	ck_assert_uint_eq(p.rules[0].binaries.n, 7);

	/* The proxy child receives the policy through px_pack: the target goes with it. */
	uint8_t *blob = NULL;
	size_t len = 0;
	struct pol_policy back;
	struct sv_err err = {0};
	ck_assert_int_eq(px_pack_policy(&p, &blob, &len), 0);
	ck_assert_msg(px_unpack_policy(blob, len, &back, &err) == 0, "%s", err.msg);
	ck_assert_uint_eq(back.rules[0].binaries.n, 7);
	ck_assert_str_eq(back.rules[0].binaries.v[6], "/usr/bin/python3.11");
	free(blob);
	pol_free(&back);
	pol_free(&p);
}
END_TEST

START_TEST(a_full_rule_gets_no_target_and_stays_literal)
{
	struct pol_policy p;
	pol_init(&p);
	tb_endpoint(&p, "r", "example.com", 443);
	pol_strv_free(&p.rules[0].binaries);
	char name[32];
	for (int i = 0; i < POL_RULE_ITEMS_MAX - 1; i++) {
		snprintf(name, sizeof(name), "/opt/b%d", i);
		ck_assert_int_eq(pol_strv_push(&p.rules[0].binaries, name), 0);
	}
	ck_assert_int_eq(pol_strv_push(&p.rules[0].binaries, "/usr/bin/python3"), 0);
	ck_assert_int_eq(pol_resolve_binaries(&p, root), 0);
	ck_assert_uint_eq(p.rules[0].binaries.n, POL_RULE_ITEMS_MAX);
	pol_free(&p);
}
END_TEST

static Suite *binres_suite(void)
{
	Suite *s = suite_create("policy_binres");
	TCase *tc = tcase_create("resolve");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, links_resolve_inside_the_root_and_never_leave_it);
	tcase_add_test(tc, a_link_owned_by_another_user_is_followed);
	tcase_add_test(tc, rules_keep_the_link_and_gain_the_target_once);
	tcase_add_test(tc, a_full_rule_gets_no_target_and_stays_literal);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(binres_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
